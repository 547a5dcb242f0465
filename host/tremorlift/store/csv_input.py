"""Strict, streaming loader for six-axis CSV recordings: header ``t,ax,ay,az,gx,gy,gz``.

Units: t in seconds, accelerometer in m/s^2 including gravity, gyroscope in rad/s. Columns may
come in any order and extra columns are ignored; a gzip-compressed file (``.csv.gz``) is read the
same way. The file is read in blocks of rows (pyarrow's CSV reader; a line-by-line reader takes
over from the first block it cannot parse, to name the line), so memory does not grow with the
length of the recording. Every problem becomes a one-line :class:`~tremorlift.errors.UserError`
naming the file, and the line where it can.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import numpy as np

from tremorlift.errors import UserError

COLUMNS = ("t", "ax", "ay", "az", "gx", "gy", "gz")
G_MPS2 = 9.80665
MAX_ACCEL_MPS2 = 50.0 * G_MPS2  # |a| beyond this is not a body-worn sensor's reading
MAX_GYRO_RADPS = 50.0
RATE_SAMPLES = 4096  # the sample rate is the median step of the first this many time steps
MIN_DURATION_S = 2.0
MAX_GAP_S = 1.0  # a longer hole in the time column is refused; shorter ones are reported
GAP_PERIODS = 2.5  # a step longer than this many sample periods is a gap (samples missing)
BLOCK_BYTES = 1 << 18  # about 4000 rows: 20 s at 200 Hz
HEADER_MAX_BYTES = 1 << 16
GZIP_MAGIC = b"\x1f\x8b"
# Clipping: the largest magnitude on any axis lies just under a common full scale and is held
# there for at least CLIP_RUN consecutive readings, CLIP_MIN_HELD times in all.
CLIP_RUN = 3
CLIP_MIN_HELD = 3
CLIP_REL_TOL = 1e-3
FULL_SCALES = {
    "accelerometer": tuple(g * G_MPS2 for g in (2, 4, 8, 16, 32)),
    "gyroscope": tuple(np.deg2rad(d) for d in (125, 250, 500, 1000, 2000, 4000)),
}


@dataclass
class Recording:
    """One sensor's samples (rate taken from the time column)."""

    name: str
    t_s: np.ndarray  # (N,)
    accel_mps2: np.ndarray  # (N, 3)
    gyro_radps: np.ndarray  # (N, 3)
    sample_rate_hz: float
    placement: str | None = None
    exercise: str | None = None  # as recorded in a session file
    warnings: list[str] = field(default_factory=list)


class _Clip:
    """Streaming count of readings held at the largest magnitude seen on any axis of a sensor."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.peak = 0.0
        self.held = 0
        self._prev = np.zeros((CLIP_RUN - 1, 3))

    def update(self, x: np.ndarray) -> None:
        if x.shape[0] == 0:
            return
        a = np.abs(np.vstack((self._prev, x)))
        self._prev = a[-(CLIP_RUN - 1) :]
        m = float(a.max())
        if m > self.peak * (1.0 + CLIP_REL_TOL):
            self.peak = m
            self.held = 0
        at = a >= self.peak * (1.0 - CLIP_REL_TOL)
        run = at[CLIP_RUN - 1 :].copy()
        for k in range(1, CLIP_RUN):
            run &= at[CLIP_RUN - 1 - k : at.shape[0] - k]
        self.held += int(np.count_nonzero(run))

    def warning(self) -> str | None:
        if self.held < CLIP_MIN_HELD:
            return None
        if not any(0.97 * fs <= self.peak <= 1.01 * fs for fs in FULL_SCALES[self.what]):
            return None
        unit = (
            f"{self.peak / G_MPS2:.2f} g"
            if self.what == "accelerometer"
            else f"{self.peak:.2f} rad/s"
        )
        return (
            f"{self.what} held at +/-{unit} (its full scale) for {CLIP_RUN} or more readings in a "
            "row: clipped; velocities and tremor amplitudes there are underestimated"
        )


class InputNotes:
    """What ``input_warnings`` says about a sensor's samples, gathered block by block: gaps in
    time (steps over :data:`GAP_PERIODS` sample periods) and readings clipped at full scale."""

    def __init__(self, sample_rate_hz: float) -> None:
        self.period = 1.0 / sample_rate_hz
        self._t: float | None = None
        self._gaps = 0
        self._missing_s = 0.0
        self._longest = (0.0, 0.0)  # (step, time before it)
        self._clips = (_Clip("accelerometer"), _Clip("gyroscope"))

    def update(self, t: np.ndarray, acc: np.ndarray, gyr: np.ndarray) -> tuple[int, float] | None:
        """Takes the next block; returns (row, step) of its longest gap, if it has one."""
        self._clips[0].update(acc)
        self._clips[1].update(gyr)
        if t.size == 0:
            return None
        steps = np.diff(t, prepend=t[0] if self._t is None else self._t)
        self._t = float(t[-1])
        gaps = np.flatnonzero(steps > GAP_PERIODS * self.period)
        if not gaps.size:
            return None
        row = int(gaps[np.argmax(steps[gaps])])
        step = float(steps[row])
        self._gaps += int(gaps.size)
        self._missing_s += float((steps[gaps] - self.period).sum())
        if step > self._longest[0]:
            self._longest = (step, float(t[row]) - step)
        return row, step

    def warnings(self) -> list[str]:
        out = []
        if self._gaps:
            length, after = self._longest
            out.append(
                f"{self._gaps} gap{'s' if self._gaps > 1 else ''} in time, {self._missing_s:.2f} s "
                f"of samples missing (longest {length:.3f} s after {after:.3f} s); analysed as if continuous"
            )
        out += [w for w in (c.warning() for c in self._clips) if w]
        return out


class CsvStream:
    """A CSV recording read block by block: the header is checked and the sample rate taken from
    the first :data:`RATE_SAMPLES` time steps when it is opened; :meth:`blocks` yields
    ``(t_s, accel_mps2, gyro_radps)`` once; :attr:`warnings` is complete after that."""

    placement: str | None = None
    exercise: str | None = None

    def __init__(self, path: str | Path, block_bytes: int = BLOCK_BYTES) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.block_bytes = max(64, int(block_bytes))
        self.warnings: list[str] = []
        self._used = False
        self._gzip = _is_gzip(self.path)
        self._n_header, self._cols = self._read_header()
        self._rows = self._raw_rows()
        self._t_prev: float | None = None
        self._n_rows = 0
        head: list[np.ndarray] = []
        n = 0
        for block in self._rows:
            head.append(block)
            n += block.shape[0]
            if n > RATE_SAMPLES:
                break
        if n == 0:
            raise UserError(f"{self.name}: no samples after the header")
        self._head = np.concatenate(head) if len(head) > 1 else head[0]
        self._check(self._head)
        t = self._head[:, 0]
        if t.size < 2:
            raise UserError(
                f"{self.name}: only {t.size} sample; need at least two to take the rate from t"
            )
        self.sample_rate_hz = float(1.0 / np.median(np.diff(t[: RATE_SAMPLES + 1])))
        if n <= RATE_SAMPLES and t[-1] - t[0] < MIN_DURATION_S:
            raise UserError(
                f"{self.name}: the recording lasts {t[-1] - t[0]:.2f} s ({t.size} samples); "
                f"need at least {MIN_DURATION_S:g} s"
            )
        self.notes = InputNotes(self.sample_rate_hz)

    # ------------------------------------------------------------------ public
    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        if self._used:
            raise RuntimeError("CsvStream.blocks() can be iterated once")
        self._used = True
        first = 0
        block: np.ndarray | None = self._head
        while block is not None:
            if first:
                self._check(block)
            yield self._finish_block(block, first)
            first += block.shape[0]
            block = next(self._rows, None)
        self.warnings += self.notes.warnings()

    # ------------------------------------------------------------------ checks
    def _check(self, data: np.ndarray) -> None:
        """Finite, physical and increasing; ``data`` are the next rows after those checked."""
        first = self._n_rows
        self._n_rows += data.shape[0]
        bad = ~np.isfinite(data)
        if bad.any():
            row = int(np.flatnonzero(bad.any(axis=1))[0])
            col = COLUMNS[int(np.flatnonzero(bad[row])[0])]
            raise UserError(
                f"{self.name}: line {first + row + 2}: {col} is not a finite number (NaN or infinity)"
            )
        for lo, what, limit, unit, bound in (
            (1, "|a|", MAX_ACCEL_MPS2, "m/s^2", "50 g (490.3 m/s^2)"),
            (4, "|omega|", MAX_GYRO_RADPS, "rad/s", "50 rad/s"),
        ):
            sq = np.einsum("ij,ij->i", data[:, lo : lo + 3], data[:, lo : lo + 3])
            over = np.flatnonzero(sq > limit * limit)
            if over.size:
                row = int(over[0])
                raise UserError(
                    f"{self.name}: line {first + row + 2}: {what} = {np.sqrt(sq[row]):.4g} {unit} "
                    f"is beyond {bound}: not a physical reading"
                )
        t = data[:, 0]
        if self._t_prev is not None and t[0] <= self._t_prev:
            raise UserError(
                f"{self.name}: line {first + 2}: time does not increase ({t[0]:.6g} s after {self._t_prev:.6g} s)"
            )
        back = np.flatnonzero(t[1:] <= t[:-1])
        if back.size:
            i = int(back[0])
            raise UserError(
                f"{self.name}: line {first + i + 3}: time does not increase ({t[i + 1]:.6g} s after {t[i]:.6g} s)"
            )
        self._t_prev = float(t[-1])

    def _finish_block(
        self, data: np.ndarray, first: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t, acc, gyr = data[:, 0], data[:, 1:4], data[:, 4:7]
        gap = self.notes.update(t, acc, gyr)
        if gap is not None and gap[1] > MAX_GAP_S:
            row, step = gap
            raise UserError(
                f"{self.name}: line {first + row + 2}: {step:.3g} s gap in time "
                f"(after {t[row] - step:.6g} s); longer than {MAX_GAP_S:g} s, "
                "split the recording there"
            )
        return t, acc, gyr

    # ------------------------------------------------------------------ reading
    def _open(self) -> IO[bytes]:
        try:
            raw: IO[bytes] = self.path.open("rb")
        except FileNotFoundError:
            raise UserError(f"{self.path}: no such file") from None
        except OSError as exc:
            raise UserError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        if self._gzip:
            raw.close()
            return cast(IO[bytes], gzip.open(self.path, "rb"))
        return raw

    def _read_header(self) -> tuple[int, list[int]]:
        f = self._open()
        try:
            with _read_errors(self.name):
                first = f.readline(HEADER_MAX_BYTES)
        finally:
            f.close()
        if not first.strip():
            raise UserError(f"{self.name}: empty file (expected a header {','.join(COLUMNS)})")
        if not first.endswith(b"\n") and len(first) >= HEADER_MAX_BYTES:
            raise UserError(f"{self.name}: the first line is not a CSV header (too long)")
        try:
            text = first.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UserError(f"{self.name}: not a UTF-8 text CSV file") from None
        header = [h.strip().lower() for h in text.splitlines()[0].split(",")]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise UserError(
                f"{self.name}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} (header must name {','.join(COLUMNS)})"
            )
        return len(header), [header.index(c) for c in COLUMNS]

    def _raw_rows(self) -> Iterator[np.ndarray]:
        """(n, 7) float blocks in COLUMNS order, every data line of the file in turn."""
        done = 0
        for block in self._fast_rows():
            if block is None:
                break  # pyarrow could not parse the next block: read on line by line from there
            done += block.shape[0]
            yield block
        else:
            return
        yield from self._slow_rows(done)

    def _fast_rows(self) -> Iterator[np.ndarray | None]:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        names = [f"c{i}" for i in range(self._n_header)]
        use = [names[c] for c in self._cols]
        try:
            stream = pa.input_stream(str(self.path), compression="gzip" if self._gzip else None)
            reader = pcsv.open_csv(
                stream,
                read_options=pcsv.ReadOptions(
                    skip_rows=1, column_names=names, block_size=self.block_bytes, use_threads=False
                ),
                parse_options=pcsv.ParseOptions(quote_char=False, ignore_empty_lines=False),
                convert_options=pcsv.ConvertOptions(
                    include_columns=use,
                    column_types=dict.fromkeys(use, pa.float64()),
                    null_values=[],
                    strings_can_be_null=False,
                ),
            )
        except (pa.ArrowException, OSError, ValueError):
            yield None
            return
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except (pa.ArrowException, OSError, ValueError):
                    yield None
                    return
                if batch.num_rows == 0:
                    continue
                out = np.empty((batch.num_rows, len(COLUMNS)))
                for k, name in enumerate(use):
                    out[:, k] = batch.column(name).to_numpy()
                yield out
        finally:
            reader.close()

    def _slow_rows(self, skip: int) -> Iterator[np.ndarray]:
        """Line by line from data line ``skip`` on: parses what pyarrow would not (trailing blank
        lines) and otherwise names the first line that is wrong."""
        f = self._open()
        text = io.TextIOWrapper(f, encoding="latin-1", newline=None)  # bytes kept 1:1
        n_cols, cols = self._n_header, self._cols
        rows: list[list[float]] = []
        per_block = max(16, self.block_bytes // 64)
        try:
            with _read_errors(self.name):
                lines = iter(text)
                next(lines, None)  # the header
                for _ in range(skip):
                    if next(lines, None) is None:
                        raise UserError(f"{self.name}: cannot parse the data (line endings?)")
                lineno = skip + 1
                blank_at: int | None = None
                for ln in lines:
                    lineno += 1
                    ln = ln.rstrip("\n")
                    if not ln.strip():
                        blank_at = blank_at or lineno
                        continue
                    if blank_at is not None:
                        raise UserError(f"{self.name}: line {blank_at}: empty line inside the data")
                    rows.append(self._parse_line(ln, lineno, n_cols, cols, lines))
                    if len(rows) >= per_block:
                        yield np.array(rows, dtype=float)
                        rows = []
        finally:
            text.close()
        if rows:
            yield np.array(rows, dtype=float)

    def _parse_line(
        self, ln: str, lineno: int, n_cols: int, cols: list[int], rest: Iterator[str]
    ) -> list[float]:
        if not ln.isascii():
            try:
                ln = ln.encode("latin-1").decode("utf-8")
            except UnicodeDecodeError:
                raise UserError(f"{self.name}: line {lineno}: not UTF-8 text") from None
        cells = ln.split(",")
        if len(cells) < n_cols:
            last = " (file truncated?)" if all(not r.strip() for r in rest) else ""
            raise UserError(f"{self.name}: line {lineno}: {len(cells)} of {n_cols} cells{last}")
        if len(cells) > n_cols:
            raise UserError(f"{self.name}: line {lineno}: {len(cells)} cells, header has {n_cols}")
        out = []
        for c, col in zip(cols, COLUMNS, strict=True):
            try:
                out.append(float(cells[c]))
            except ValueError:
                raise UserError(
                    f"{self.name}: line {lineno}: {col} = {cells[c].strip()!r} is not a number"
                ) from None
        return out


@contextlib.contextmanager
def _read_errors(name: str) -> Iterator[None]:
    """Turns a damaged gzip stream or an I/O error while reading into one UserError."""
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise UserError(f"{name}: compressed data is truncated or damaged ({exc})") from None
    except OSError as exc:
        raise UserError(f"{name}: cannot read ({exc.strerror or exc})") from None


def _is_gzip(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(2) == GZIP_MAGIC
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None


def open_csv(path: str | Path, block_bytes: int = BLOCK_BYTES) -> CsvStream:
    """Opens a CSV (or .csv.gz) recording for streaming; raises UserError if it is unusable."""
    return CsvStream(path, block_bytes)


def load_csv(path: str | Path, block_bytes: int = BLOCK_BYTES) -> Recording:
    """The whole recording in memory (streamed and checked as :class:`CsvStream` does)."""
    stream = CsvStream(path, block_bytes)
    parts = list(stream.blocks())
    t = np.concatenate([p[0] for p in parts])
    acc = np.concatenate([p[1] for p in parts])
    gyr = np.concatenate([p[2] for p in parts])
    return Recording(
        stream.name, t, acc, gyr, stream.sample_rate_hz, warnings=list(stream.warnings)
    )
