"""Reading a session file back: devices, frames decoded onto a time base in SI units, events,
analyses and link figures (schema in ``store/schema.py``). :class:`SessionReader` opens the file
read-only and never modifies it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tremorlift.errors import UserError
from tremorlift.protocol import (
    FLAG_RESENT,
    FLAG_STREAM_START,
    DeviceInfo,
    ProtocolError,
    Status,
    decode_info,
    decode_samples_batch,
    decode_status,
    raw_to_si,
)
from tremorlift.store.schema import APPLICATION, APPLICATION_ID, FORMAT_VERSION, TABLES
from tremorlift.timebase import fit_clock

# ============================================================================ reader


@dataclass(frozen=True)
class DeviceRecord:
    device: int
    address: str
    name: str | None
    placement: str | None
    info: DeviceInfo | None  # the latest INFO recorded


@dataclass(frozen=True)
class DeviceArrays:
    """One device's samples on the session timeline (sorted by t_s).

    ``t_s``: host seconds since the session started; ``sample_index``/``boot``/``segment``
    identify each sample; ``accel_mps2``/``gyro_radps`` are (N, 3) in the IMU's axes.
    """

    device: int
    name: str
    t_s: npt.NDArray[np.float64]
    accel_mps2: npt.NDArray[np.float64]
    gyro_radps: npt.NDArray[np.float64]
    sample_index: npt.NDArray[np.int64]
    boot: npt.NDArray[np.int64]
    segment: npt.NDArray[np.int64]
    rate_hz: list[float]  # measured IMU rate of each segment (host clock)

    def __len__(self) -> int:
        return int(self.t_s.shape[0])


@dataclass(frozen=True)
class Record:
    """A row of events / analysis / stats."""

    device: int | None
    host_s: float
    kind: str
    data: dict[str, Any]


class SessionReader:
    """Opens a session read-only; anything that is not a readable session raises UserError."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"{self.path}: no such session file")
        # Looked at before SQLite opens the file (opening it may create a fresh -wal).
        self.wal_missing = self._wal_missing()
        uri = "file:" + urllib.parse.quote(str(self.path.resolve())) + "?mode=ro"
        try:
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise UserError(f"{self.path}: cannot open: {exc}") from None
        try:
            self._validate()
        except UserError:
            self._db.close()
            raise
        except sqlite3.Error as exc:
            self._db.close()
            raise UserError(f"{self.path}: not a readable tremorlift session ({exc})") from None

    def _validate(self) -> None:
        tables = {
            r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if "meta" not in tables:
            raise UserError(f"{self.path}: {self._why_no_tables()}")
        self.meta: dict[str, str] = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if self.meta.get("application") != APPLICATION:
            raise UserError(f"{self.path}: not a tremorlift session")
        try:
            version = int(self.meta.get("format_version", ""))
        except ValueError:
            raise UserError(
                f"{self.path}: bad format_version {self.meta.get('format_version')!r}"
            ) from None
        if version > FORMAT_VERSION:
            raise UserError(
                f"{self.path}: session format {version} is newer than this tremorlift reads "
                f"({FORMAT_VERSION}); upgrade tremorlift"
            )
        missing = [t for t in TABLES if t not in tables]
        if missing:
            raise UserError(f"{self.path}: damaged session (missing tables: {', '.join(missing)})")
        problems = [r[0] for r in self._db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise UserError(f"{self.path}: damaged session file ({'; '.join(problems)})")

    def _wal_missing(self) -> bool:
        """A file left in write-ahead-log mode (its recording was never closed) without its
        ``-wal`` beside it: what was recorded after its last checkpoint is not in it."""
        try:
            with self.path.open("rb") as f:
                header = f.read(20)
        except OSError:
            return False
        wal_mode = len(header) >= 20 and header[18] == 2 and header[19] == 2
        return wal_mode and not self.path.with_name(self.path.name + "-wal").exists()

    def _why_no_tables(self) -> str:
        """A file with no tables: an empty session whose data sits in a missing ``-wal`` file (a
        recording killed before its first checkpoint, copied without it), or not a session."""
        try:
            with self.path.open("rb") as f:
                header = f.read(100)
        except OSError:
            header = b""
        if self.wal_missing:
            wal = self.path.with_name(self.path.name + "-wal")
            return (
                f"not a finished session file: its data is in {wal.name}, which is missing "
                "(the recording was killed before it was saved whole); copy that file beside "
                "it and open it again"
            )
        ours = len(header) >= 72 and int.from_bytes(header[68:72], "big") == APPLICATION_ID
        if ours:
            return "a tremorlift session that holds nothing yet (no meta table)"
        return "not a tremorlift session (no meta table)"

    @contextlib.contextmanager
    def _query(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._db
        except sqlite3.Error as exc:
            raise UserError(f"{self.path}: damaged session file ({exc})") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SessionReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plain tables ---------------------------------------------------------------------
    def devices(self) -> list[DeviceRecord]:
        with self._query() as db:
            rows = db.execute(
                "SELECT device, address, name, placement FROM devices ORDER BY device"
            ).fetchall()
            out = []
            for device, address, name, placement in rows:
                info_row = db.execute(
                    "SELECT raw FROM infos WHERE device = ? ORDER BY host_s DESC LIMIT 1", (device,)
                ).fetchone()
                out.append(
                    DeviceRecord(
                        device,
                        address,
                        name,
                        placement,
                        self._info(info_row[0]) if info_row else None,
                    )
                )
        return out

    def _info(self, raw: bytes) -> DeviceInfo:
        try:
            return decode_info(raw)
        except ProtocolError as exc:
            raise UserError(f"{self.path}: damaged INFO record ({exc})") from None

    def infos(self, device: int) -> list[tuple[int, float, DeviceInfo]]:
        """(boot, host_s, info) of every INFO recorded for a device, oldest first."""
        with self._query() as db:
            rows = db.execute(
                "SELECT boot, host_s, raw FROM infos WHERE device = ? ORDER BY host_s", (device,)
            ).fetchall()
        return [(int(b), float(h), self._info(r)) for b, h, r in rows]

    def statuses(self, device: int) -> list[tuple[int, float, Status]]:
        with self._query() as db:
            rows = db.execute(
                "SELECT boot, host_s, raw FROM statuses WHERE device = ? ORDER BY host_s", (device,)
            ).fetchall()
        try:
            return [(int(b), float(h), decode_status(r)) for b, h, r in rows]
        except ProtocolError as exc:
            raise UserError(f"{self.path}: damaged STATUS record ({exc})") from None

    def frame_count(self, device: int | None = None) -> int:
        with self._query() as db:
            if device is None:
                return int(db.execute("SELECT count(*) FROM frames").fetchone()[0])
            return int(
                db.execute("SELECT count(*) FROM frames WHERE device = ?", (device,)).fetchone()[0]
            )

    def frames(self, device: int) -> list[tuple[int, int, float, bytes]]:
        """(boot, seq, host_s, raw) of every stored frame of a device, by boot then seq."""
        with self._query() as db:
            rows = db.execute(
                "SELECT boot, seq, host_s, raw FROM frames WHERE device = ? ORDER BY boot, seq",
                (device,),
            ).fetchall()
        return [(int(b), int(s), float(h), bytes(r)) for b, s, h, r in rows]

    def _records(self, table: str, col: str, kind: str | None) -> list[Record]:
        kind_col = "NULL" if table == "stats" else "kind"
        sql = f"SELECT device, host_s, {kind_col}, {col} FROM {table}"
        args: tuple[Any, ...] = ()
        if kind is not None and table != "stats":
            sql += " WHERE kind = ?"
            args = (kind,)
        sql += " ORDER BY host_s, id"
        with self._query() as db:
            rows = db.execute(sql, args).fetchall()
        try:
            return [Record(d, float(h), k or "stats", json.loads(v)) for d, h, k, v in rows]
        except ValueError as exc:
            raise UserError(f"{self.path}: damaged {table} record ({exc})") from None

    def events(self, kind: str | None = None) -> list[Record]:
        return self._records("events", "data", kind)

    def analyses(self, kind: str | None = None) -> list[Record]:
        return self._records("analysis", "result", kind)

    def stats(self) -> list[Record]:
        return self._records("stats", "data", None)

    # --- samples --------------------------------------------------------------------------
    def arrays(self, device: int) -> DeviceArrays:
        """All of a device's samples: decoded, on the session timeline, in SI units."""
        rows = self.frames(device)
        record = next((d for d in self.devices() if d.device == device), None)
        if record is None:
            raise UserError(f"{self.path}: no device {device}")
        infos = self.infos(device)
        name = record.name or (record.info.name if record.info else record.address)
        empty = np.empty((0, 3))
        if not rows:
            z = np.empty(0, np.int64)
            return DeviceArrays(device, name, np.empty(0), empty, empty, z, z, z, [])
        boots = np.array([r[0] for r in rows], np.int64)
        host = np.array([r[2] for r in rows], np.float64)
        try:
            batch = decode_samples_batch([r[3] for r in rows])
        except ProtocolError as exc:
            raise UserError(f"{self.path}: damaged frame record ({exc})") from None
        # Segments: within a boot, frames in seq order; a STREAM_START frame opens a new one.
        opens = (batch.flags & FLAG_STREAM_START) != 0
        opens[0] = True
        opens[1:] |= boots[1:] != boots[:-1]
        seg_of_frame = np.cumsum(opens) - 1
        seg = int(seg_of_frame[-1])
        n_per_frame = batch.n_samples.astype(np.int64)
        seg_of_sample = np.repeat(seg_of_frame, n_per_frame)
        t_parts: list[npt.NDArray[np.float64]] = []
        acc_parts: list[npt.NDArray[np.float64]] = []
        gyr_parts: list[npt.NDArray[np.float64]] = []
        idx_parts: list[npt.NDArray[np.int64]] = []
        boot_parts: list[npt.NDArray[np.int64]] = []
        seg_parts: list[npt.NDArray[np.int64]] = []
        rates: list[float] = []
        for s in range(seg + 1):
            frames_in = np.flatnonzero(seg_of_frame == s)
            info = _info_in_effect(infos, int(boots[frames_in[0]]), float(host[frames_in].min()))
            if info is None:
                raise UserError(
                    f"{self.path}: device {name} has frames but no INFO (scale factors unknown)"
                )
            live = frames_in[(batch.flags[frames_in] & FLAG_RESENT) == 0]
            if live.size == 0:
                live = frames_in  # only resent frames: their arrival times are all there is
            clock = fit_clock(
                batch.first_sample_index[live], n_per_frame[live], batch.tick_us[live], host[live],
                nominal_rate_hz=float(info.odr_hz or 100),
            )  # fmt: skip
            rates.append(clock.rate_hz)
            sample_rows: slice | npt.NDArray[np.intp] = (
                slice(None) if seg == 0 else np.flatnonzero(seg_of_sample == s)
            )
            idx = batch.sample_index[sample_rows]
            try:
                accel, gyro = raw_to_si(batch.samples_raw[sample_rows], info)
            except ValueError as exc:
                raise UserError(f"{self.path}: device {name}: {exc}") from None
            t_parts.append(clock.time_s(idx))
            acc_parts.append(accel)
            gyr_parts.append(gyro)
            idx_parts.append(idx)
            boot_parts.append(np.full(idx.size, boots[frames_in[0]], np.int64))
            seg_parts.append(np.full(idx.size, s, np.int64))
        t = np.concatenate(t_parts)
        # Already in time order in the usual case (frames by seq, one boot); sort only if not.
        order: slice | npt.NDArray[np.intp] = slice(None)
        if t.size > 1 and not bool(np.all(t[1:] >= t[:-1])):
            order = np.argsort(t, kind="stable")
        return DeviceArrays(
            device=device,
            name=name,
            t_s=t[order],
            accel_mps2=np.concatenate(acc_parts)[order],
            gyro_radps=np.concatenate(gyr_parts)[order],
            sample_index=np.concatenate(idx_parts)[order],
            boot=np.concatenate(boot_parts)[order],
            segment=np.concatenate(seg_parts)[order],
            rate_hz=rates,
        )

    def sample_stream(self, device: int, frames_per_block: int = 256) -> DeviceSamples:
        """A device's samples as :meth:`arrays` gives them, read in blocks of frames so a long
        session is never in memory at once (see :class:`DeviceSamples`). The frames are read
        and checked once here, to fit each segment's clock; :meth:`DeviceSamples.blocks` reads
        them again block by block."""
        record = next((d for d in self.devices() if d.device == device), None)
        if record is None:
            raise UserError(f"{self.path}: no device {device}")
        name = record.name or (record.info.name if record.info else record.address)
        infos = self.infos(device)
        boots_l: list[npt.NDArray[np.int64]] = []
        host_l: list[npt.NDArray[np.float64]] = []
        flags_l: list[npt.NDArray[np.uint8]] = []
        n_l: list[npt.NDArray[np.int64]] = []
        first_l: list[npt.NDArray[np.int64]] = []
        tick_l: list[npt.NDArray[np.int64]] = []
        for rows in self._frame_chunks(device, frames_per_block):
            batch = self._decode(rows)
            boots_l.append(np.array([r[0] for r in rows], np.int64))
            host_l.append(np.array([r[1] for r in rows], np.float64))
            flags_l.append(batch.flags)
            n_l.append(batch.n_samples.astype(np.int64))
            first_l.append(batch.first_sample_index.astype(np.int64))
            tick_l.append(batch.tick_us.astype(np.int64))
        if not boots_l:
            return DeviceSamples(self, device, name, [], [], np.empty(0, np.int64), 0, True, 1)
        boots = np.concatenate(boots_l)
        host = np.concatenate(host_l)
        flags = np.concatenate(flags_l)
        n_per_frame = np.concatenate(n_l)
        first = np.concatenate(first_l)
        ticks = np.concatenate(tick_l)
        opens = (flags & FLAG_STREAM_START) != 0
        opens[0] = True
        opens[1:] |= boots[1:] != boots[:-1]
        seg_of_frame = np.cumsum(opens) - 1
        seg_infos: list[DeviceInfo] = []
        clocks = []
        t_first = np.empty(first.size)
        t_last = np.empty(first.size)
        for s in range(int(seg_of_frame[-1]) + 1):
            frames_in = np.flatnonzero(seg_of_frame == s)
            info = _info_in_effect(infos, int(boots[frames_in[0]]), float(host[frames_in].min()))
            if info is None:
                raise UserError(
                    f"{self.path}: device {name} has frames but no INFO (scale factors unknown)"
                )
            live = frames_in[(flags[frames_in] & FLAG_RESENT) == 0]
            if live.size == 0:
                live = frames_in  # only resent frames: their arrival times are all there is
            clock = fit_clock(
                first[live], n_per_frame[live], ticks[live], host[live],
                nominal_rate_hz=float(info.odr_hz or 100),
            )  # fmt: skip
            try:
                t_first[frames_in] = clock.time_s(first[frames_in])
                t_last[frames_in] = clock.time_s(first[frames_in] + n_per_frame[frames_in] - 1)
            except ValueError as exc:
                raise UserError(f"{self.path}: device {name}: {exc}") from None
            seg_infos.append(info)
            clocks.append(clock)
        # In time order frame after frame (the usual case) the blocks can go out as read;
        # otherwise DeviceSamples falls back to arrays(), which sorts.
        in_order = bool(np.all(t_last >= t_first)) and bool(np.all(t_first[1:] > t_last[:-1]))
        starts = [
            (int(boots[f]), int(first[f]))
            for f in (np.flatnonzero(seg_of_frame == s)[0] for s in range(len(clocks)))
        ]
        return DeviceSamples(
            self, device, name, seg_infos, clocks, seg_of_frame, int(n_per_frame.sum()),
            in_order, frames_per_block, starts,
        )  # fmt: skip

    def _frame_chunks(self, device: int, n: int) -> Iterator[list[tuple[int, float, bytes]]]:
        """(boot, host_s, raw) of a device's frames by boot then seq, ``n`` frames at a time."""
        with self._query() as db:
            cur = db.execute(
                "SELECT boot, host_s, raw FROM frames WHERE device = ? ORDER BY boot, seq",
                (device,),
            )
            try:
                while True:
                    rows = cur.fetchmany(max(1, n))
                    if not rows:
                        return
                    yield [(int(b), float(h), bytes(r)) for b, h, r in rows]
            finally:
                cur.close()

    def _decode(self, rows: list[tuple[int, float, bytes]]) -> Any:
        try:
            return decode_samples_batch([r[2] for r in rows])
        except ProtocolError as exc:
            raise UserError(f"{self.path}: damaged frame record ({exc})") from None

    def all_arrays(self) -> dict[int, DeviceArrays]:
        """Every device's arrays, keyed by device id, on the same timeline."""
        return {d.device: self.arrays(d.device) for d in self.devices()}


class _LinearClock:
    """Sample times at a fixed rate from one anchored sample (the live analysis's time base)."""

    def __init__(self, t0_s: float, index0: int, rate_hz: float) -> None:
        self.t0_s, self.index0, self.rate_hz = t0_s, index0, rate_hz

    def time_s(self, sample_index: npt.ArrayLike) -> npt.NDArray[np.float64]:
        idx = np.asarray(sample_index, dtype=np.float64)
        return self.t0_s + (idx - self.index0) / self.rate_hz


class DeviceSamples:
    """One device's samples, streamed: ``blocks()`` yields ``(t_s, accel_mps2, gyro_radps)`` in
    time order, the same samples as :meth:`SessionReader.arrays` (which it uses, holding
    everything, only when frames overlap in time and must be sorted). ``rate_hz`` is the measured
    IMU rate of each segment; ``n_samples`` the total. Use while the reader is open."""

    def __init__(
        self,
        reader: SessionReader,
        device: int,
        name: str,
        infos: list[DeviceInfo],
        clocks: list[Any],
        seg_of_frame: npt.NDArray[np.int64],
        n_samples: int,
        in_order: bool,
        frames_per_block: int,
        segment_starts: list[tuple[int, int]] | None = None,
    ) -> None:
        self.reader = reader
        self._segment_starts = segment_starts or []  # (boot, first sample index) per segment
        self.device = device
        self.name = name
        self.rate_hz = [float(c.rate_hz) for c in clocks]
        self.n_samples = n_samples
        self.in_order = in_order
        self._infos = infos
        self._clocks = clocks
        self._seg_of_frame = seg_of_frame
        self._frames_per_block = frames_per_block

    def __len__(self) -> int:
        return self.n_samples

    def use_live_timebase(self, anchors: list[dict[str, Any]]) -> int:
        """Put each segment the collector's live analysis saw on the live analysis's own time
        base (``collect.feed``: the first sample's arrival, then the nominal rate), so the final
        analysis is fed exactly what the live one was; segments it never saw keep their fitted
        clock. ``anchors``: the session's ``live_timebase`` events of this device. Returns how
        many segments were put on it."""
        done = 0
        for s, (boot, first_index) in enumerate(self._segment_starts):
            mine = [a for a in anchors if a.get("boot") == boot]
            # The live segment that opened at or before this stored segment's first sample.
            before = [a for a in mine if int(a["first_index"]) <= first_index]
            anchor = max(before, key=lambda a: int(a["first_index"])) if before else (
                min(mine, key=lambda a: int(a["first_index"])) if mine else None
            )  # fmt: skip
            if anchor is None:
                continue
            self._clocks[s] = _LinearClock(
                float(anchor["t0_s"]), int(anchor["first_index"]), float(anchor["rate_hz"])
            )
            self.rate_hz[s] = float(anchor["rate_hz"])
            done += 1
        return done

    def blocks(
        self,
    ) -> Iterator[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]]:
        if self.n_samples == 0:
            return
        if not self.in_order:
            arr = self.reader.arrays(self.device)
            step = max(1, self._frames_per_block * 32)
            for i in range(0, len(arr), step):
                yield (
                    arr.t_s[i : i + step],
                    arr.accel_mps2[i : i + step],
                    arr.gyro_radps[i : i + step],
                )
            return
        done = 0
        path = self.reader.path
        for rows in self.reader._frame_chunks(self.device, self._frames_per_block):
            batch = self.reader._decode(rows)
            segs = self._seg_of_frame[done : done + len(rows)]
            done += len(rows)
            if segs.size != len(rows):
                raise UserError(f"{path}: the session changed while it was read")
            n_per_frame = batch.n_samples.astype(np.int64)
            t_parts, acc_parts, gyr_parts = [], [], []
            for s in np.unique(segs):
                if segs[0] == segs[-1]:
                    sample_rows: slice | npt.NDArray[np.intp] = slice(None)
                else:
                    sample_rows = np.flatnonzero(np.repeat(segs == s, n_per_frame))
                try:
                    accel, gyro = raw_to_si(batch.samples_raw[sample_rows], self._infos[int(s)])
                except ValueError as exc:
                    raise UserError(f"{path}: device {self.name}: {exc}") from None
                t_parts.append(self._clocks[int(s)].time_s(batch.sample_index[sample_rows]))
                acc_parts.append(accel)
                gyr_parts.append(gyro)
            if len(t_parts) == 1:
                yield t_parts[0], acc_parts[0], gyr_parts[0]
            else:
                yield np.concatenate(t_parts), np.concatenate(acc_parts), np.concatenate(gyr_parts)


def _info_in_effect(
    infos: list[tuple[int, float, DeviceInfo]], boot: int, first_host_s: float
) -> DeviceInfo | None:
    """The INFO that applied to a segment: the last one of its boot recorded before its first
    frame arrived (CONFIGURE is refused while streaming, so it cannot change mid-segment); failing
    that, the first of its boot, then the first at all."""
    same_boot = [(h, i) for b, h, i in infos if b == boot]
    before = [i for h, i in same_boot if h <= first_host_s]
    if before:
        return before[-1]
    if same_boot:
        return same_boot[0][1]
    return infos[0][2] if infos else None
