"""Writing files so that each is either complete or untouched: the one way tremorlift does it.

A file is written under a temporary name in its own folder, synced to disk, renamed over its
target, and the folder is synced, so a crash leaves the old file or the new one, never half of
either. A target that is a device or a pipe (``/dev/null``, a FIFO) is written in place. The temporary file is created with mode 0666 (0600 when private) and the kernel takes the
umask off, so a new file gets the permissions any new file of the user's gets (``private=True``:
0600 whatever the umask, for what says when and how someone trained or which devices are theirs).

:func:`write_atomic` writes one file from memory; :class:`StagedFiles` stages several that are
written by path (a CSV or Parquet writer) and renames them together once all are complete.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from types import TracebackType

from tremorlift.errors import UserError

_MODE_SHARED = 0o666  # less the umask
_MODE_PRIVATE = 0o600


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, private: bool = False) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` complete or not at all (module docstring).
    Raises UserError naming the file when it cannot be written."""
    target = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        if _is_special(target):
            # A device or a pipe (/dev/null, /dev/stdout, a FIFO) is written to, never renamed
            # over: as root that would put a plain file in place of /dev/null.
            with target.open("wb") as f:
                f.write(raw)
            return
        with StagedFiles(private=private) as staged:
            tmp = staged.stage(target)
            with tmp.open("wb") as f:
                f.write(raw)
            staged.commit()
    except OSError as exc:
        raise UserError(f"{target}: cannot write ({exc.strerror or exc})") from None


def _is_special(target: Path) -> bool:
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


class StagedFiles:
    """Files that appear together or not at all::

        with StagedFiles() as staged:
            write_table(staged.stage(out / "a.csv"))
            write_table(staged.stage(out / "b.csv"))
            staged.commit()

    ``stage`` creates an empty temporary file beside the target and returns its path;
    ``commit`` syncs every staged file, renames each over its target and syncs the folders.
    Leaving the block without a commit (an error) deletes the temporary files. OSError passes
    through, for the caller to word."""

    def __init__(self, *, private: bool = False) -> None:
        self._mode = _MODE_PRIVATE if private else _MODE_SHARED
        self._staged: list[tuple[Path, Path]] = []  # (temporary, target)
        self._renamed: list[Path] = []
        self._committed = False

    def stage(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        folder = target.parent if str(target.parent) else Path(".")
        for _ in range(100):
            tmp = folder / f".{target.name}.{secrets.token_hex(4)}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self._mode)
            except FileExistsError:
                continue
            os.close(fd)
            self._staged.append((tmp, target))
            return tmp
        raise FileExistsError(f"no free temporary name beside {target}")

    def commit(self) -> None:
        for tmp, _ in self._staged:
            fd = os.open(tmp, os.O_RDWR)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for tmp, target in self._staged:
            os.replace(tmp, target)
            self._renamed.append(target)
        self._committed = True
        for folder in {tmp.parent for tmp, _ in self._staged}:
            with contextlib.suppress(OSError):  # the renames to disk (not on every system)
                dir_fd = os.open(folder, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)

    @property
    def renamed(self) -> list[Path]:
        """Targets already renamed into place (all of them once ``commit`` returns)."""
        return list(self._renamed)

    def discard(self) -> None:
        """Delete the temporary files not renamed yet (a failed commit keeps what it renamed)."""
        for tmp, target in self._staged:
            if target not in self._renamed:
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._committed:
            self.discard()
