"""Time base and loss accounting for one device's SAMPLES stream.

The IMU's FIFO is the clock: sample ``k`` was taken at ``k / rate`` seconds on the IMU's own
oscillator, whose true rate differs from the nominal ODR by up to a few percent (MPU-6050 class)
and drifts against the host's clock. Two fits per stream segment recover it:

* device ticks vs sample index (``tick_us`` unwrapped from its 2^30 wrap): the IMU rate on the
  device clock; little noise, so it is usable after half a second;
* host receive time vs sample index: the IMU rate on the host clock. Radio latency is always
  positive, so the fit follows the *lower envelope* of the points (the earliest arrivals), not
  their middle.

Both fits keep a bounded number of points (bucket minima / means over index ranges that widen as
the stream grows), so memory stays constant however long the stream runs.

:class:`StreamTracker` takes decoded frames in any order (live, resent, duplicated) and keeps
what was expected, received and lost, which frames to ask RESEND for, device-side gaps, stream
restarts and reboots.

Why one long module: the robust line fit, the segment clocks and the stream tracker answer one
question together (which sample was taken when, and which are missing); they share their
invariants and are tested as one.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from tremorlift.protocol import TICK_WRAP_US, SamplesFrame, Status

US_PER_S = 1_000_000


# ============================================================================ ticks


def unwrap_ticks(tick_us: npt.ArrayLike, wrap_us: int = TICK_WRAP_US) -> npt.NDArray[np.int64]:
    """Unwrap in-order tick readings (each step shorter than half a wrap) to a monotonic int64."""
    t = np.asarray(tick_us, dtype=np.int64) % wrap_us
    if t.size == 0:
        return t
    step = np.diff(t)
    half = wrap_us // 2
    # Each step is taken modulo the wrap into (-half, half]: a wrap shows as a large negative step.
    step = (step + half) % wrap_us - half
    out = np.empty_like(t)
    out[0] = t[0]
    np.cumsum(step, out=out[1:])
    out[1:] += t[0]
    return out


def unwrap_tick_near(tick_us: int, expected_us: float, wrap_us: int = TICK_WRAP_US) -> int:
    """The unwrapped value of ``tick_us`` (mod ``wrap_us``) nearest to ``expected_us``."""
    base = tick_us % wrap_us
    k = round((expected_us - base) / wrap_us)
    return int(base + k * wrap_us)


# ============================================================================ line fits


def _lower_support_line(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> tuple[float, float] | None:
    """(slope, intercept) of the line under every point (x sorted, distinct) that minimises the
    summed residual: the lower convex hull's edge that spans the mean of x."""
    hull: list[int] = []
    for k in range(x.size):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # b is above or on the segment a-k: not on the lower hull.
            if (x[b] - x[a]) * (y[k] - y[a]) - (y[b] - y[a]) * (x[k] - x[a]) <= 0:
                hull.pop()
            else:
                break
        hull.append(k)
    if len(hull) < 2:
        return None
    xm = float(x.mean())
    for a, b in zip(hull, hull[1:], strict=False):
        if x[b] >= xm:
            slope = float((y[b] - y[a]) / (x[b] - x[a]))
            return slope, float(y[a] - slope * x[a])
    a, b = hull[-2], hull[-1]
    slope = float((y[b] - y[a]) / (x[b] - x[a]))
    return slope, float(y[a] - slope * x[a])


class RobustLineFit:
    """y = intercept + slope * x from a stream of points, in bounded memory.

    Points are grouped into buckets of ``bucket_width`` consecutive x values; each bucket keeps
    either its earliest point relative to the nominal line (``envelope="lower"``, for arrival
    times whose error is one-sided latency) or its mean point (``envelope="mean"``). When more than
    ``max_points`` buckets exist, the width doubles and neighbours merge. The slope is the
    Theil-Sen estimate over bucket points (the median of pairwise slopes: a few bad buckets
    cannot move it); the intercept is the lowest (``lower``) or median (``mean``) residual.

    With ``envelope="lower"`` the line is instead the one that stays under every point with
    the least summed residual (the lower convex hull's edge above the mean x): arrival times
    are the sample times plus a latency that is never negative, so that line is the least
    latency the data allow. Theil-Sen is not used there because a burst of late points (the
    backlog a wearable sends after a reconnect) is many points far above the line, which drags
    a median of slopes, but never the lower hull.
    """

    def __init__(
        self,
        nominal_slope: float,
        bucket_width: int,
        *,
        envelope: Literal["lower", "mean"] = "lower",
        max_points: int = 256,
    ) -> None:
        if bucket_width < 1 or max_points < 4:
            raise ValueError("bucket_width must be >= 1 and max_points >= 4")
        self.nominal_slope = float(nominal_slope)
        self.bucket_width = int(bucket_width)
        self.envelope = envelope
        self.max_points = max_points
        self._x0: int | None = None
        # bucket key -> [x, y] (lower) or [sum_x, sum_y, n] (mean)
        self._buckets: dict[int, list[float]] = {}
        self._cache: tuple[float, float] | None = None
        self.points_added = 0

    def add(self, x: int, y: float) -> None:
        if self._x0 is None:
            self._x0 = int(x)
        key = (int(x) - self._x0) // self.bucket_width
        b = self._buckets.get(key)
        if self.envelope == "lower":
            if b is None or y - self.nominal_slope * x < b[1] - self.nominal_slope * b[0]:
                self._buckets[key] = [float(x), float(y)]
                self._cache = None
        elif b is None:
            self._buckets[key] = [float(x), float(y), 1.0]
            self._cache = None
        else:
            # Moving one bucket's mean a little does not warrant a new Theil-Sen fit each time.
            b[0] += x
            b[1] += y
            b[2] += 1.0
        self.points_added += 1
        if len(self._buckets) > self.max_points:
            self._merge()

    def _merge(self) -> None:
        self.bucket_width *= 2
        merged: dict[int, list[float]] = {}
        for key, b in self._buckets.items():
            k2 = key // 2
            m = merged.get(k2)
            if m is None:
                merged[k2] = list(b)
            elif self.envelope == "lower":
                if b[1] - self.nominal_slope * b[0] < m[1] - self.nominal_slope * m[0]:
                    merged[k2] = list(b)
            else:
                m[0] += b[0]
                m[1] += b[1]
                m[2] += b[2]
        self._buckets = merged
        self._cache = None

    def points(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The bucket points (x, y), sorted by x."""
        if not self._buckets:
            return np.empty(0), np.empty(0)
        arr = np.array(sorted(self._buckets.values()), dtype=np.float64)
        if self.envelope == "lower":
            return arr[:, 0], arr[:, 1]
        return arr[:, 0] / arr[:, 2], arr[:, 1] / arr[:, 2]

    @property
    def span_x(self) -> float:
        x, _ = self.points()
        return float(x[-1] - x[0]) if x.size else 0.0

    def intercept_for(self, slope: float) -> float:
        """Intercept of a line of the given slope through the points (lowest or median residual)."""
        x, y = self.points()
        if x.size == 0:
            raise ValueError("no points")
        r = y - slope * x
        return float(r.min() if self.envelope == "lower" else np.median(r))

    def fit(self) -> tuple[float, float] | None:
        """(slope, intercept), or None before two buckets exist."""
        if self._cache is not None:
            return self._cache
        x, y = self.points()
        if x.size < 2:
            return None
        if self.envelope == "lower":
            line = _lower_support_line(x, y)
            if line is not None:
                self._cache = line
                return line
        i, j = np.triu_indices(x.size, k=1)
        dx = x[j] - x[i]
        slopes = (y[j] - y[i])[dx > 0] / dx[dx > 0]
        if slopes.size == 0:
            return None
        slope = float(np.median(slopes))
        self._cache = (slope, self.intercept_for(slope))
        return self._cache

    def add_many(self, x: npt.ArrayLike, y: npt.ArrayLike) -> None:
        """Add many points at once (vectorised when the fit is still empty)."""
        xs = np.asarray(x, dtype=np.int64)
        ys = np.asarray(y, dtype=np.float64)
        if self._buckets or xs.size == 0:
            for xi, yi in zip(xs.tolist(), ys.tolist(), strict=True):
                self.add(xi, yi)
            return
        self._x0 = int(xs[0])
        rel = xs - self._x0
        # Widen the buckets (by doubling, as add() would) until they fit in max_points.
        while np.unique(rel // self.bucket_width).size > self.max_points:
            self.bucket_width *= 2
        keys = rel // self.bucket_width
        if self.envelope == "lower":
            resid = ys - self.nominal_slope * xs
            order = np.lexsort((resid, keys))
            first = np.ones(order.size, bool)
            first[1:] = keys[order][1:] != keys[order][:-1]
            for i in order[first].tolist():
                self._buckets[int(keys[i])] = [float(xs[i]), float(ys[i])]
        else:
            uniq, inv = np.unique(keys, return_inverse=True)
            sx = np.bincount(inv, weights=xs.astype(np.float64))
            sy = np.bincount(inv, weights=ys)
            cnt = np.bincount(inv).astype(np.float64)
            for k, a, b, c in zip(
                uniq.tolist(), sx.tolist(), sy.tolist(), cnt.tolist(), strict=True
            ):
                self._buckets[int(k)] = [a, b, c]
        self.points_added += int(xs.size)
        self._cache = None

    def split(self, at_x: int) -> RobustLineFit:
        """Move the points with x >= at_x into a new fit (a stream boundary found late)."""
        other = RobustLineFit(
            self.nominal_slope,
            self.bucket_width,
            envelope=self.envelope,
            max_points=self.max_points,
        )
        keep: dict[int, list[float]] = {}
        for key, b in self._buckets.items():
            bx = b[0] / b[2] if self.envelope == "mean" else b[0]
            if bx >= at_x:
                other._buckets[key] = b
            else:
                keep[key] = b
        other._x0 = self._x0
        self._buckets = keep
        self._cache = None
        return other


# ============================================================================ per-segment clock


class SegmentClock:
    """Sample index -> time for one stream segment (from STREAM_START to the next one).

    ``add_frame`` takes every live frame (resent frames arrive late and say nothing about
    latency: leave them out). ``time_s`` maps sample indices to host-clock seconds at the
    earliest latency seen; ``rate_hz`` is the IMU's rate on the host clock, ``device_rate_hz``
    on the device's clock, ``drift_ppm`` how much faster the host clock runs than the device's.
    """

    # Host arrival times jitter by a connection interval or more; below this span the slope from
    # them is worse than the device-tick slope.
    MIN_HOST_SPAN_S = 20.0
    MIN_DEVICE_SPAN_S = 0.5

    def __init__(
        self, nominal_rate_hz: float, *, max_points: int = 256, bucket_s: float = 0.5
    ) -> None:
        if not nominal_rate_hz > 0:
            raise ValueError(f"nominal_rate_hz must be positive, got {nominal_rate_hz}")
        self.nominal_rate_hz = float(nominal_rate_hz)
        width = max(1, int(round(bucket_s * nominal_rate_hz)))
        period_s = 1.0 / nominal_rate_hz
        self._host = RobustLineFit(period_s, width, envelope="lower", max_points=max_points)
        self._device = RobustLineFit(period_s, width, envelope="mean", max_points=max_points)
        self._tick_ref: tuple[int, int] | None = None  # (sample_index, unwrapped tick_us)
        self.frames = 0

    def add_frame(
        self, first_sample_index: int, n_samples: int, tick_us: int, host_s: float | None
    ) -> None:
        # Unwrap against the previous frame at the nominal rate: right unless the two are more
        # than half a wrap (537 s) apart after the rate error, i.e. hours of stream apart.
        if self._tick_ref is None:
            tick = int(tick_us)
        else:
            idx0, tick0 = self._tick_ref
            tick = unwrap_tick_near(
                tick_us, tick0 + (first_sample_index - idx0) * US_PER_S / self.nominal_rate_hz
            )
        self._tick_ref = (first_sample_index, tick)
        self._device.add(first_sample_index, tick / US_PER_S)
        if host_s is not None:
            # The frame left the device after its last sample was read: that sample bounds latency.
            self._host.add(first_sample_index + n_samples - 1, float(host_s))
        self.frames += 1

    def _device_slope(self) -> float | None:
        fit = self._device.fit()
        if fit is None or self._device.span_x / self.nominal_rate_hz < self.MIN_DEVICE_SPAN_S:
            return None
        return fit[0]

    def _host_line(self) -> tuple[float, float] | None:
        x, _ = self._host.points()
        if x.size == 0:
            return None
        fit = self._host.fit()
        if fit is not None and self._host.span_x / self.nominal_rate_hz >= self.MIN_HOST_SPAN_S:
            return fit
        slope = self._device_slope() or 1.0 / self.nominal_rate_hz
        return slope, self._host.intercept_for(slope)

    @property
    def rate_hz(self) -> float:
        """The IMU's sample rate measured on the host clock (nominal until measurable)."""
        line = self._host_line()
        if line is None:
            return self.device_rate_hz
        return 1.0 / line[0]

    @property
    def device_rate_hz(self) -> float:
        """The IMU's sample rate measured on the device clock (nominal until measurable)."""
        slope = self._device_slope()
        return self.nominal_rate_hz if slope is None else 1.0 / slope

    @property
    def drift_ppm(self) -> float | None:
        """(host seconds per device second - 1) * 1e6, once both fits are long enough."""
        fit = self._host.fit()
        dev = self._device_slope()
        if (
            fit is None
            or dev is None
            or self._host.span_x / self.nominal_rate_hz < self.MIN_HOST_SPAN_S
        ):
            return None
        return (fit[0] / dev - 1.0) * 1e6

    def time_s(self, sample_index: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Host-clock time of each sample (needs at least one frame with a host time)."""
        line = self._host_line()
        if line is None:
            raise ValueError("no frame with a host receive time yet")
        slope, intercept = line
        return intercept + slope * np.asarray(sample_index, dtype=np.float64)

    def device_time_s(self, sample_index: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Device-clock time (unwrapped ticks, seconds) of each sample."""
        idx = np.asarray(sample_index, dtype=np.float64)
        fit = self._device.fit()
        if fit is not None:
            return fit[1] + fit[0] * idx
        if self._tick_ref is None:
            raise ValueError("no frame yet")
        idx0, tick0 = self._tick_ref
        return tick0 / US_PER_S + (idx - idx0) / self.nominal_rate_hz

    def split(self, at_index: int) -> SegmentClock:
        """Hand the points at or after ``at_index`` to a new clock (a late STREAM_START)."""
        other = SegmentClock.__new__(SegmentClock)
        other.nominal_rate_hz = self.nominal_rate_hz
        other._host = self._host.split(at_index)
        other._device = self._device.split(at_index)
        other._tick_ref = None
        x, y = other._device.points()
        if x.size:
            other._tick_ref = (int(x[0]), int(round(y[0] * US_PER_S)))
        other.frames = 0
        return other


def fit_clock(
    first_sample_index: npt.ArrayLike,
    n_samples: npt.ArrayLike,
    tick_us: npt.ArrayLike,
    host_s: npt.ArrayLike,
    nominal_rate_hz: float,
) -> SegmentClock:
    """A SegmentClock from the live frames of one segment (offline use, e.g. reading a session)."""
    clock = SegmentClock(nominal_rate_hz)
    idx_in = np.asarray(first_sample_index, dtype=np.int64)
    if idx_in.size == 0:
        return clock
    order = np.argsort(idx_in, kind="stable")
    idx = idx_in[order]
    n = np.asarray(n_samples, dtype=np.int64)[order]
    ticks = np.asarray(tick_us, dtype=np.int64)[order] % TICK_WRAP_US
    hs = np.asarray(host_s, dtype=np.float64)[order]
    # Unwrap each tick against the previous frame's at the nominal rate, as add_frame does.
    step = np.diff(ticks)
    expected = np.diff(idx) * (US_PER_S / nominal_rate_hz)
    step += np.round((expected - step) / TICK_WRAP_US).astype(np.int64) * TICK_WRAP_US
    unwrapped = np.concatenate(([ticks[0]], ticks[0] + np.cumsum(step)))
    clock._device.add_many(idx, unwrapped / US_PER_S)
    live = ~np.isnan(hs)
    clock._host.add_many((idx + n - 1)[live], hs[live])
    clock._tick_ref = (int(idx[-1]), int(unwrapped[-1]))
    clock.frames = int(idx.size)
    return clock


# ============================================================================ interval sets


class IntervalSet:
    """Disjoint half-open integer intervals [start, end), kept merged and sorted."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __len__(self) -> int:
        return len(self._starts)

    def intervals(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends, strict=True))

    def add(self, start: int, end: int) -> int:
        """Add [start, end); return how many values were not covered before."""
        if end <= start:
            return 0
        i = bisect.bisect_left(self._ends, start)  # first interval that ends at/after start
        j = bisect.bisect_right(self._starts, end)  # intervals [i, j) touch or overlap
        covered = 0
        new_start, new_end = start, end
        for k in range(i, j):
            s, e = self._starts[k], self._ends[k]
            covered += max(0, min(e, end) - max(s, start))
            new_start = min(new_start, s)
            new_end = max(new_end, e)
        self._starts[i:j] = [new_start]
        self._ends[i:j] = [new_end]
        return (end - start) - covered

    def contains(self, value: int) -> bool:
        i = bisect.bisect_right(self._starts, value) - 1
        return i >= 0 and value < self._ends[i]

    def covers(self, start: int, end: int) -> bool:
        i = bisect.bisect_right(self._starts, start) - 1
        return i >= 0 and end <= self._ends[i]

    def covered(self, lo: int, hi: int) -> int:
        total = 0
        for s, e in self._overlapping(lo, hi):
            total += min(e, hi) - max(s, lo)
        return total

    def holes(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """Uncovered runs inside [lo, hi) as (first, count)."""
        out: list[tuple[int, int]] = []
        pos = lo
        for s, e in self._overlapping(lo, hi):
            if s > pos:
                out.append((pos, s - pos))
            pos = max(pos, e)
        if pos < hi:
            out.append((pos, hi - pos))
        return out

    def _overlapping(self, lo: int, hi: int) -> Iterable[tuple[int, int]]:
        i = bisect.bisect_right(self._ends, lo)
        while i < len(self._starts) and self._starts[i] < hi:
            yield self._starts[i], self._ends[i]
            i += 1

    @property
    def min(self) -> int | None:
        return self._starts[0] if self._starts else None

    @property
    def max_end(self) -> int | None:
        return self._ends[-1] if self._ends else None

    def last_end_below(self, limit: int) -> int | None:
        """The largest covered value + 1 that is <= limit (None if nothing lies below limit)."""
        i = bisect.bisect_left(self._starts, limit) - 1
        if i < 0:
            return None
        return min(self._ends[i], limit)

    def first_at_or_above(self, value: int) -> int | None:
        """The smallest covered value >= value."""
        i = bisect.bisect_right(self._ends, value)
        if i >= len(self._starts):
            return None
        return max(self._starts[i], value)


# ============================================================================ stream tracker


@dataclass
class SegmentStats:
    """Loss accounting of one stream segment (from a STREAM_START, or first frame seen)."""

    boot: int
    boot_id: int | None
    first_seq: int
    end_seq: int  # one past the highest seq received in the segment
    first_index: int
    end_index: int  # one past the highest sample index received
    samples_expected: int
    samples_received: int
    lost_ranges: list[tuple[int, int]]  # (first_index, count): every index not received
    # The part of lost_ranges lost on the device (GAP_BEFORE): no RESEND can bring it back.
    device_gap_ranges: list[tuple[int, int]]
    missing_seq_ranges: list[tuple[int, int]]  # (first_seq, count): frames to ask RESEND for
    started_by_stream_start: bool

    @property
    def samples_lost(self) -> int:
        return self.samples_expected - self.samples_received

    @property
    def samples_lost_on_device(self) -> int:
        return sum(c for _, c in self.device_gap_ranges)


@dataclass
class FrameOutcome:
    """What :meth:`StreamTracker.add` made of one frame."""

    kind: Literal["new", "filled", "duplicate"]
    boot: int  # ordinal of the boot (0 for the first seen); with seq, unique per frame
    new_boot: bool  # this frame showed the device rebooted
    clock: SegmentClock | None  # the segment's clock (None for a duplicate)


@dataclass
class _Boot:
    ordinal: int
    boot_id: int | None
    seqs: IntervalSet = field(default_factory=IntervalSet)
    indices: IntervalSet = field(default_factory=IntervalSet)
    # (seq, first_index) of each STREAM_START and GAP_BEFORE frame, sorted by seq.
    starts: list[tuple[int, int]] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    # (seq, first_index, end_index) of the newest live (not RESENT) frame.
    last_live: tuple[int, int, int] | None = None
    status_next_seq: int | None = None
    # Clock of each segment, by the seq of its STREAM_START (-1: the segment before any).
    clocks: dict[int, SegmentClock] = field(default_factory=dict)


class StreamTracker:
    """Sequence and sample-index bookkeeping for one device, in any arrival order.

    Frames of one boot have seq and sample index increasing together, which is what lets a
    frame be slotted into place by seq and lets a backwards step reveal a reboot: a live (not
    RESENT) frame whose seq or index is not past the newest live frame starts a new boot, as does
    a STATUS/INFO with a different ``boot_id``.
    """

    def __init__(self, nominal_rate_hz: float = 200.0) -> None:
        self.nominal_rate_hz = float(nominal_rate_hz)
        self._boots: list[_Boot] = [_Boot(0, None)]
        self.frames_received = 0  # unique frames
        self.duplicates = 0
        self.resent_received = 0  # unique frames that came with RESENT
        self.samples_received = 0

    # --- inputs ---------------------------------------------------------------------------
    @property
    def boot(self) -> int:
        return self._boots[-1].ordinal

    @property
    def boot_id(self) -> int | None:
        return self._boots[-1].boot_id

    @property
    def reboots(self) -> int:
        return len(self._boots) - 1

    def observe_boot_id(self, boot_id: int) -> bool:
        """Note the boot_id from STATUS or INFO; return True if it shows a reboot."""
        cur = self._boots[-1]
        if cur.boot_id is None:
            cur.boot_id = boot_id
            return False
        if cur.boot_id == boot_id:
            return False
        self._boots.append(_Boot(cur.ordinal + 1, boot_id))
        return True

    def observe_status(self, status: Status) -> bool:
        """Note a STATUS: its boot_id, and next_seq (frames up to it exist and can be asked for)."""
        rebooted = self.observe_boot_id(status.boot_id)
        self._boots[-1].status_next_seq = status.next_seq
        return rebooted

    def set_nominal_rate_hz(self, rate_hz: float) -> None:
        """The configured ODR (from INFO): used by segments that start from now on."""
        self.nominal_rate_hz = float(rate_hz)

    def add(self, frame: SamplesFrame, host_s: float | None = None) -> FrameOutcome:
        """Account for one decoded frame received at host time ``host_s`` (seconds)."""
        boot = self._boots[-1]
        new_boot = False
        if not frame.resent and boot.last_live is not None:
            seq_l, first_l, end_l = boot.last_live
            if frame.seq == seq_l and frame.first_sample_index == first_l:
                pass  # the same live frame again: a duplicate, handled below
            elif frame.seq <= seq_l or frame.first_sample_index < end_l:
                boot = _Boot(boot.ordinal + 1, None)
                self._boots.append(boot)
                new_boot = True
        if boot.seqs.contains(frame.seq):
            self.duplicates += 1
            return FrameOutcome("duplicate", boot.ordinal, new_boot, None)

        filled = boot.seqs.max_end is not None and frame.seq < boot.seqs.max_end
        boot.seqs.add(frame.seq, frame.seq + 1)
        boot.indices.add(frame.first_sample_index, frame.end_sample_index)
        if frame.gap_before:
            bisect.insort(boot.gaps, (frame.seq, frame.first_sample_index))
        clock = self._clock_for(boot, frame)
        if not frame.resent:
            if boot.last_live is None or frame.seq > boot.last_live[0]:
                boot.last_live = (frame.seq, frame.first_sample_index, frame.end_sample_index)
            clock.add_frame(frame.first_sample_index, frame.n_samples, frame.tick_us, host_s)
        else:
            self.resent_received += 1
        self.frames_received += 1
        self.samples_received += frame.n_samples
        return FrameOutcome("filled" if filled else "new", boot.ordinal, new_boot, clock)

    def _clock_for(self, boot: _Boot, frame: SamplesFrame) -> SegmentClock:
        if frame.stream_start and not any(s == frame.seq for s, _ in boot.starts):
            pos = bisect.bisect_left(boot.starts, (frame.seq, frame.first_sample_index))
            prev_key = boot.starts[pos - 1][0] if pos > 0 else -1
            boot.starts.insert(pos, (frame.seq, frame.first_sample_index))
            prev = boot.clocks.get(prev_key)
            # A STREAM_START that arrives after frames of its stream (it was lost and resent)
            # splits the clock of the segment those frames were put in.
            boot.clocks[frame.seq] = (
                prev.split(frame.first_sample_index)
                if prev is not None
                else SegmentClock(self.nominal_rate_hz)
            )
        key = self._segment_key(boot, frame.seq)
        clock = boot.clocks.get(key)
        if clock is None:
            clock = boot.clocks[key] = SegmentClock(self.nominal_rate_hz)
        return clock

    @staticmethod
    def _segment_key(boot: _Boot, seq: int) -> int:
        pos = bisect.bisect_right(boot.starts, (seq, math.inf)) - 1
        return boot.starts[pos][0] if pos >= 0 else -1

    # --- outputs --------------------------------------------------------------------------
    def clock(self, boot: int, seq: int) -> SegmentClock | None:
        """The clock of the segment holding frame ``seq`` of boot ``boot``."""
        b = self._boots[boot]
        return b.clocks.get(self._segment_key(b, seq))

    def segments(self) -> list[SegmentStats]:
        """Per-segment accounting, oldest first."""
        out: list[SegmentStats] = []
        for b in self._boots:
            out.extend(self._boot_segments(b, b is self._boots[-1]))
        return out

    def _boot_segments(self, b: _Boot, is_current: bool) -> list[SegmentStats]:
        if b.seqs.min is None:
            return []
        # Segment boundaries: (first_seq, first_index, explicit) in seq order.
        bounds: list[tuple[int, int, bool]] = []
        lowest_seq = b.seqs.min
        if not b.starts or lowest_seq < b.starts[0][0]:
            lowest_index = b.indices.min
            assert lowest_index is not None
            bounds.append((lowest_seq, lowest_index, False))
        bounds.extend((s, i, True) for s, i in b.starts)
        stats: list[SegmentStats] = []
        for n, (seq_lo, idx_lo, explicit) in enumerate(bounds):
            last = n == len(bounds) - 1
            seq_hi_limit = bounds[n + 1][0] if not last else None
            idx_hi_limit = bounds[n + 1][1] if not last else None
            seq_end = (
                b.seqs.last_end_below(seq_hi_limit) if seq_hi_limit is not None else b.seqs.max_end
            )
            idx_end = (
                b.indices.last_end_below(idx_hi_limit)
                if idx_hi_limit is not None
                else b.indices.max_end
            )
            assert seq_end is not None and idx_end is not None
            idx_end = max(idx_end, idx_lo)
            seq_end = max(seq_end, seq_lo)
            lost = b.indices.holes(idx_lo, idx_end)
            # Frames the device has sent and we have not seen: holes, plus the tail STATUS told of.
            seq_top = seq_hi_limit if seq_hi_limit is not None else seq_end
            if (
                last
                and is_current
                and b.status_next_seq is not None
                and b.status_next_seq > seq_top
            ):
                seq_top = b.status_next_seq
            missing = b.seqs.holes(seq_lo, seq_top)
            device_gaps: list[tuple[int, int]] = []
            hole_by_end = {first + count: (first, count) for first, count in lost}
            for gseq, gidx in b.gaps:
                if seq_lo <= gseq and (seq_hi_limit is None or gseq < seq_hi_limit):
                    # Only once the frame before the gap is here is the hole's start known to be
                    # the device's: until then part of it may still come by RESEND.
                    if gidx in hole_by_end and b.seqs.contains(gseq - 1):
                        device_gaps.append(hole_by_end[gidx])
            stats.append(
                SegmentStats(
                    boot=b.ordinal,
                    boot_id=b.boot_id,
                    first_seq=seq_lo,
                    end_seq=seq_end,
                    first_index=idx_lo,
                    end_index=idx_end,
                    samples_expected=idx_end - idx_lo,
                    samples_received=b.indices.covered(idx_lo, idx_end),
                    lost_ranges=lost,
                    device_gap_ranges=device_gaps,
                    missing_seq_ranges=missing,
                    started_by_stream_start=explicit,
                )
            )
        return stats

    @property
    def samples_expected(self) -> int:
        return sum(s.samples_expected for s in self.segments())

    @property
    def samples_lost(self) -> int:
        return sum(s.samples_lost for s in self.segments())

    @property
    def samples_lost_on_device(self) -> int:
        return sum(s.samples_lost_on_device for s in self.segments())

    @property
    def stream_starts(self) -> int:
        return sum(len(b.starts) for b in self._boots)

    def lost_ranges(self) -> list[tuple[int, int, int]]:
        """Every missing sample range as (boot, first_index, count)."""
        return [(s.boot, f, c) for s in self.segments() for f, c in s.lost_ranges]

    def device_gap_ranges(self) -> list[tuple[int, int, int]]:
        """Ranges lost on the device (FIFO overflow / IMU re-init) as (boot, first_index, count)."""
        return [(s.boot, f, c) for s in self.segments() for f, c in s.device_gap_ranges]

    def missing_seq_ranges(self) -> list[tuple[int, int]]:
        """Frames of the current boot not yet received, as (first_seq, count): what to RESEND."""
        cur = self._boots[-1]
        return [r for s in self._boot_segments(cur, True) for r in s.missing_seq_ranges]
