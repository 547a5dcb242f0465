"""Recording a session: one SQLite database per recording (schema in ``store/schema.py`` and
docs/session-format.md); reading it back is ``store/reader.py``.

Frames are stored exactly as received, so nothing is lost to a decoding choice made at recording
time; samples are decoded, put on a time base and converted to SI units when the file is read.

:class:`SessionWriter` batches inserts and commits at least every ``commit_interval_s`` (0.5 s),
from a background thread as well as from the caller, so a SIGKILL loses at most the last
interval and the file still opens (SQLite's WAL keeps every committed transaction); it
checkpoints at creation and on :meth:`SessionWriter.checkpoint`, so the main file alone is whole
to within seconds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tremorlift import __version__
from tremorlift.errors import UserError
from tremorlift.protocol import (
    DeviceInfo,
    Status,
    decode_info,
    decode_samples,
    decode_status,
)
from tremorlift.store.schema import APPLICATION, APPLICATION_ID, FORMAT_VERSION, SCHEMA

COMMIT_INTERVAL_S = 0.5


def _write_problem(exc: sqlite3.Error) -> str:
    """What a failed write means for the lifter's recording, in words."""
    text = str(exc)
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in text:
        return (
            "the disk is full: recording stopped; everything recorded until the last save "
            "(within a second) is kept in the file"
        )
    return f"cannot write the session ({text}); what was saved before is kept"


def _json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, allow_nan=False, default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


# ============================================================================ writer


class SessionWriter:
    """Records one session to a new file.

    All ``add_*`` methods may be called from one thread (the collector's event loop); a daemon
    thread commits what is pending every ``commit_interval_s`` even when nothing new arrives.
    Times are host seconds since the session started (``host_s()``, a monotonic clock).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        commit_interval_s: float = COMMIT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
        meta: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._t0 = clock()
        self.commit_interval_s = commit_interval_s
        try:
            # Created here, exclusively and with mode 0600 (a recording is personal data);
            # SQLite gives its -wal and -shm files the database file's permissions.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise UserError(f"{self.path}: already exists; choose another file name") from None
        except OSError as exc:
            raise UserError(f"{self.path}: cannot create: {exc.strerror}") from None
        os.close(fd)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: committed transactions survive a process kill; only an OS crash
            # or power cut can roll back the last ones.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            self._db.execute("BEGIN")
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    self._db.execute(stmt)
            now = dt.datetime.now(dt.UTC)
            rows = {
                "application": APPLICATION,
                "format_version": str(FORMAT_VERSION),
                "tremorlift_version": __version__,
                "created_utc": now.isoformat(timespec="milliseconds"),
                "created_unix_s": repr(now.timestamp()),
                # Stable across copies and moves of the file: what the history counts once.
                "session_id": uuid.uuid4().hex,
                "host_clock": "seconds since created_utc on the recording host's monotonic clock",
            }
            rows.update(meta or {})
            self._db.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", rows.items())
            self._db.execute("COMMIT")
            # The tables and meta into the main file at once: a copy of it alone is a session.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            with contextlib.suppress(Exception):
                self._db.close()
            with contextlib.suppress(OSError):
                self.path.unlink()
            raise UserError(f"{self.path}: cannot create a session: {exc}") from None
        self._lock = threading.Lock()
        self._pending: dict[str, list[tuple[Any, ...]]] = {
            "frames": [],
            "infos": [],
            "statuses": [],
            "events": [],
            "analysis": [],
            "stats": [],
            "meta": [],
        }
        self._n_pending = 0
        self._last_commit = clock()
        self._closed = False
        self._error: sqlite3.Error | None = None
        self.frames_written = 0
        self.commits = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(
                target=self._flusher, name="session-flusher", daemon=True
            )
            self._thread.start()

    # --- time -----------------------------------------------------------------------------
    def host_s(self) -> float:
        """Seconds since the session was created, on the host's monotonic clock."""
        return self._clock() - self._t0

    def _t(self, host_s: float | None) -> float:
        return self.host_s() if host_s is None else float(host_s)

    # --- inserts --------------------------------------------------------------------------
    def add_device(
        self, address: str, name: str | None = None, placement: str | None = None
    ) -> int:
        """Register a device (idempotent by address); returns its id for the other calls."""
        with self._lock:
            self._check_open()
            row = self._db.execute(
                "SELECT device FROM devices WHERE address = ?", (address,)
            ).fetchone()
            if row is not None:
                if name is not None or placement is not None:
                    self._db.execute(
                        "UPDATE devices SET name = coalesce(?, name), placement = coalesce(?, placement) "
                        "WHERE device = ?",
                        (name, placement, row[0]),
                    )
                return int(row[0])
            cur = self._db.execute(
                "INSERT INTO devices(address, name, placement, added_s) VALUES (?, ?, ?, ?)",
                (address, name, placement, self.host_s()),
            )
            assert cur.lastrowid is not None
            return int(cur.lastrowid)

    def add_info(
        self, device: int, raw: bytes, *, boot: int = 0, host_s: float | None = None
    ) -> DeviceInfo:
        """Store an INFO message (at connect, after CONFIGURE, after a reboot)."""
        info = decode_info(raw)
        row = (
            device, boot, self._t(host_s), bytes(raw), info.name, ".".join(map(str, info.fw_version)),
            info.imu_kind, info.board, info.odr_hz, info.accel_range_g, info.gyro_range_dps,
            info.dlpf_hz, info.accel_lsb_per_g, info.gyro_lsb_per_dps_x10, info.samples_per_frame,
            info.ring_frames, info.att_mtu, info.boot_id,
        )  # fmt: skip
        self._queue("infos", row)
        return info

    def add_frame(
        self, device: int, raw: bytes, *, boot: int = 0, host_s: float | None = None
    ) -> None:
        """Store one SAMPLES frame exactly as received. (device, boot, seq) is unique: a resend
        fills its hole, a duplicate is ignored. ``boot`` is StreamTracker's boot ordinal."""
        frame = decode_samples(raw)
        self._queue(
            "frames",
            (device, boot, frame.seq, self._t(host_s), frame.first_sample_index, frame.n_samples,
             frame.flags, bytes(raw)),
        )  # fmt: skip

    def add_status(
        self, device: int, raw: bytes, *, boot: int = 0, host_s: float | None = None
    ) -> Status:
        status = decode_status(raw)
        self._queue(
            "statuses", (device, boot, self._t(host_s), bytes(raw), status.boot_id, status.flags)
        )
        return status

    def add_event(
        self,
        kind: str,
        data: dict[str, Any] | None = None,
        *,
        device: int | None = None,
        host_s: float | None = None,
    ) -> None:
        """An event or alert (rep end, velocity-loss alert, disconnect, ...), data as JSON."""
        self._queue("events", (device, self._t(host_s), kind, _json(data or {})))

    def add_analysis(
        self,
        kind: str,
        result: dict[str, Any],
        *,
        device: int | None = None,
        host_s: float | None = None,
    ) -> None:
        self._queue("analysis", (device, self._t(host_s), kind, _json(result)))

    def add_stats(
        self, data: dict[str, Any], *, device: int | None = None, host_s: float | None = None
    ) -> None:
        """Link and loss figures (frames, duplicates, resends, corrupt, ...), as JSON."""
        self._queue("stats", (device, self._t(host_s), _json(data)))

    def set_meta(self, key: str, value: str) -> None:
        """Set (or replace) one meta entry: the session's settings, sensor names, its ending."""
        self._queue("meta", (key, value))

    def checkpoint(self) -> None:
        """Commit, then copy the write-ahead log into the main file (without blocking readers),
        so the main file alone is whole to within the last checkpoint if the process is killed."""
        with self._lock:
            self._check_open()
            self._commit_locked()
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                self._error = exc
                raise UserError(f"{self.path}: {_write_problem(exc)}") from None

    _INSERTS = {
        "frames": "INSERT OR IGNORE INTO frames VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        "infos": "INSERT INTO infos VALUES (" + ", ".join(["?"] * 18) + ")",
        "statuses": "INSERT INTO statuses VALUES (?, ?, ?, ?, ?, ?)",
        "events": "INSERT INTO events(device, host_s, kind, data) VALUES (?, ?, ?, ?)",
        "analysis": "INSERT INTO analysis(device, host_s, kind, result) VALUES (?, ?, ?, ?)",
        "stats": "INSERT INTO stats(device, host_s, data) VALUES (?, ?, ?)",
        "meta": "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
    }

    def _queue(self, table: str, row: tuple[Any, ...]) -> None:
        with self._lock:
            self._check_open()
            self._pending[table].append(row)
            self._n_pending += 1
            if self._clock() - self._last_commit >= self.commit_interval_s:
                self._commit_locked()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self.path}: session writer is closed")
        if self._error is not None:
            raise UserError(f"{self.path}: {_write_problem(self._error)}")

    def _commit_locked(self) -> None:
        if self._n_pending:
            try:
                self._db.execute("BEGIN")
                try:
                    for table, rows in self._pending.items():
                        if rows:
                            cur = self._db.executemany(self._INSERTS[table], rows)
                            if table == "frames":
                                self.frames_written += max(cur.rowcount, 0)
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:  # a full disk may have rolled it back already
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                # Disk full, file removed, I/O error: the rows stay queued; every later call
                # reports it (the recording cannot go on silently losing data). What was
                # committed before stays in the file.
                self._error = exc
                raise UserError(f"{self.path}: {_write_problem(exc)}") from None
            for rows in self._pending.values():
                rows.clear()
            self._n_pending = 0
            self.commits += 1
        self._last_commit = self._clock()

    def flush(self) -> None:
        """Commit everything queued now."""
        with self._lock:
            self._check_open()
            self._commit_locked()

    def _flusher(self) -> None:
        # Every row is committed within half an interval of being queued (plus the commit
        # itself), even when the caller stops adding rows.
        while not self._stop.wait(self.commit_interval_s / 2):
            with self._lock:
                if self._closed or self._error is not None:
                    return
                if self._n_pending:
                    try:
                        self._commit_locked()
                    except UserError:
                        return  # kept in self._error; the caller's next call raises it

    def close(self) -> None:
        """Commit, checkpoint and leave a single self-contained file (journal mode DELETE)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._closed:
                return
            try:
                if self._error is None:
                    self._commit_locked()
            finally:
                self._closed = True
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self._db.execute("PRAGMA journal_mode=DELETE")
                self._db.close()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
