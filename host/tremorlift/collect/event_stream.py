"""The session's event stream as JSON lines (``tremorlift collect --events FILE|-``).

Each event the collector publishes (``Collector.listeners``, docs/events.md) becomes one JSON
object on one line, flushed at once, so a script reading a pipe or following the file sees every
rep as it happens. Values JSON cannot carry (NaN, infinities) are written as ``null``.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import Any, TextIO

from tremorlift.errors import UserError


def jsonable(value: Any) -> Any:
    """``value`` with tuples as lists and non-finite floats as None: strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """One line of strict JSON (no NaN, no newline inside)."""
    return json.dumps(jsonable(value), allow_nan=False, separators=(",", ":"))


def check_events_target(target: str) -> None:
    """``--events`` takes ``-`` (stdout), a new file in a writable folder, or an existing pipe
    or character device (a FIFO made with mkfifo). An existing regular file is not overwritten."""
    if target == "-":
        return
    path = Path(target)
    if path.exists():
        if stat.S_ISFIFO(path.stat().st_mode) or stat.S_ISCHR(path.stat().st_mode):
            return
        raise UserError(f"--events {target}: already exists; choose another file name")
    parent = path.resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UserError(f"--events {target}: folder {parent} does not exist or is not writable")


class EventLines:
    """A listener for ``Collector.listeners`` that writes each event as one JSON line.

    ``target`` is ``-`` for ``stream`` (stdout by default) or a file path, opened on
    :meth:`open` and closed on :meth:`close` (the stream given is never closed).
    """

    def __init__(self, target: str, stream: TextIO | None = None) -> None:
        self.target = target
        self._stream = stream
        self._own: TextIO | None = None
        self.lines_written = 0

    def open(self) -> EventLines:
        if self.target == "-":
            if self._stream is None:
                self._stream = sys.stdout
        else:
            self._own = open(self.target, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._stream = self._own
        return self

    def close(self) -> None:
        if self._own is not None:
            self._own.close()
            self._own = None

    def __enter__(self) -> EventLines:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, event: dict[str, Any]) -> None:
        if self._stream is None:
            self.open()
        assert self._stream is not None
        try:
            self._stream.write(dumps(event) + "\n")
            self._stream.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): the session goes on and is recorded whole.
            self._stream = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
            self._own = self._stream
            return
        self.lines_written += 1
