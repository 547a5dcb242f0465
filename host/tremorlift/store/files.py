"""Writing a file so that it is either complete or untouched: the one way tremorlift does it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from tremorlift.errors import UserError


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder: written, synced
    to disk, renamed over ``path``, and the folder synced, so a crash leaves the old file or the
    new one, never half of either. The new file gets the permissions the umask gives a new
    file (0600 with ``private=True``: a recording, settings with a device's address). Raises
    UserError naming the file when it cannot be written."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise UserError(f"{target}: cannot write ({exc.strerror or exc})") from None
    try:
        try:
            if private:
                os.fchmod(fd, 0o600)
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600 whatever the umask
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # the rename itself to disk (not on every system)
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as exc:
        raise UserError(f"{target}: cannot write ({exc.strerror or exc})") from None
