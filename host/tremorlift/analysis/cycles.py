"""Sets and reps found by periodicity: what real reps share, whatever the limb does.

Reps on a real wrist, forearm, thigh or shank follow each other without a still moment, the hand
may stay on a handle while the forearm only tilts, and a press may keep the forearm vertical. What
every set still shows is one repeating pattern of orientation change and acceleration per rep.
The tracker follows that pattern, independent of how the sensor is worn:

1. The accelerometer (gravity included, so a tilt shows as a change of its projection) and the
   gyroscope integrated to angles are low-passed at 2.5 Hz and resampled on a 25 Hz grid; gaps in
   the data longer than ``MAX_GAP_S`` end what was being followed.
2. Every second (every 4 s within a set) the last 8, 14 and 20 s are tested for periodicity: the six channels, each sensor's
   three scaled by their joint RMS, are projected on their principal axis and correlated with
   themselves over lags of 1-9 s (unbiased, normalised by the window's energy, so a window
   that is only partly periodic scores lower).
   The period is the first lag within 80 % of the best correlation. A set opens on a window
   that correlates at ``MIN_PERIODICITY`` or more and moves more than sensor noise.
3. In a set, the projection on the set's own axis minus its mean over the last period is
   followed by a zig-zag: an extreme counts once the signal has turned back by a share of the
   set's swing. A rep is rest -> excursion -> rest. The rest side is the one that gives more whole
   reps over the set's first cycles (a rep that ends on the other side would leave a half rep
   at each end). A rep ends at its rest-side extreme, confirmed by the turn (back-to-back reps)
   or sooner by stillness once the limb is back most of the way (a pause at rest: the live
   alert must not wait for the next rep).
4. The set ends when no extreme comes for ``SET_END_PERIODS`` periods (at least
   ``SET_END_MIN_S``), at a gap, or at the end of the data.

Only extremes whose swing is comparable to the set's typical swing count, so a set-up move or a
fidget next to the set does not. Walking (arm swing at 0.8-1.2 s with a heel strike every half
cycle) is told apart by its period and the step rhythm in the acceleration magnitude.

Why one long module: the grid, the periodicity tests and the rep counter share one state (the
set's axis, period and recent reps) that every step reads and updates; split, that state would
have to be passed around whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from tremorlift.analysis.dsp import StreamingSos, principal_axis

GRID_HZ = 25.0
PRE_RATE_HZ = 50.0
LOWPASS_HZ = 2.5
LOWPASS_ORDER = 4  # tremor (4-12 Hz) must not reach the rep signal
MAX_GAP_S = 1.0
WINDOWS_S = (8.0, 14.0, 20.0)
HOP_S = 0.5
IDLE_TEST_HOPS = 2  # out of a set, periodicity is tested every this many hops
IN_SET_TEST_HOPS = 8  # in a set only its period is followed, every this many hops
PERIOD_MIN_S = 1.0
PERIOD_MAX_S = 9.0
PERIOD_PICK_SHARE = 0.8  # first autocorrelation peak within this share of the best
MIN_PERIODICITY = 0.5
GOOD_PERIODICITY = 0.8
MIN_CYCLES_IN_WINDOW = 2.5  # a window must hold this many periods to show one
CONFIRM_HOPS = 2  # consecutive periodic hops (with a similar period) that open a set
PERIOD_AGREE = 0.25
REP_DURATION_PERIODS = (0.45, 2.0)  # a rep lasts this many periods
FIRST_REP_MIN_CORRELATION = 0.6
SET_GAP_PERIODS = 0.5  # a pause this long between two cycles: not reps of one set
# A rep repeats the set's own shape: its six-channel path, resampled to SHAPE_POINTS, correlates
# with the median of the set's recent reps at least this much (a set-up move, a step off the
# machine or a re-grip does not).
SHAPE_POINTS = 24
SHAPE_MIN_CORRELATION = 0.35
SHAPES_KEPT = 5
SHAPES_TO_JUDGE = 3  # reps of the set's own rhythm collected before shapes are judged
SHAPE_PERIODS = (0.7, 1.4)  # reps that serve as the set's shape last this many periods
# Below these (RMS over the window) the sensor only shows noise, strap wobble or tremor.
MOVE_MIN_ACCEL_MPS2 = 0.35
MOVE_MIN_ANGLE_RAD = 0.05
SWING_SHARE = 0.45  # a turn of this share of the set's swing confirms an extreme
SWING_HALF_LIFE_S = 20.0
DWELL_BAND_SHARE = 0.2  # "near an extreme": within this share of the swing
DWELL_RATIO = 1.5  # one side rests this much more than the other: it is the rest side
REP_MIN_SWING_SHARE = 0.4  # an excursion smaller than this share of the typical swing is no rep
REP_MAX_SWING_SHARE = 3.0
RETURN_SHARE = 0.6  # back this share of the excursion, and still: the rep has ended
SET_END_PERIODS = 2.5
SET_END_MIN_S = 6.0
BUFFER_S = 60.0
# Walking: arm swing (one cycle per two steps) at this period or faster, with the step rhythm
# (twice the swing frequency) in the acceleration magnitude.
WALK_MAX_PERIOD_S = 1.4
WALK_STEP_SHARE = 0.35


@dataclass
class Cycle:
    """One rep found by periodicity: rest -> excursion -> rest, times in the input's seconds."""

    start_s: float
    turn_s: float  # the excursion's extreme
    end_s: float
    period_s: float
    set_index: int  # counts sets from 0 over the stream
    by_stillness: bool  # ended by stillness near rest, not by the next rep's turn
    shape: np.ndarray | None = None  # (SHAPE_POINTS, 6), unit norm: the rep's own path
    found_s: float = 0.0  # when the tracker knew (input time of the grid sample)


@dataclass
class _Extreme:
    i: int  # grid index (absolute)
    value: float
    sign: int  # +1 maximum, -1 minimum


def periodicity(z: np.ndarray, fs_hz: float = GRID_HZ) -> tuple[float, float]:
    """(correlation, period in s) of the principal-axis projection of ``z`` (N, 6)."""
    n = z.shape[0]
    zc = z - z.mean(axis=0)
    p = zc @ principal_axis(zc)
    spec = np.fft.rfft(p, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[:n]
    # Unbiased, but normalised by the whole window's energy (not the overlap's): a window with
    # one movement in it does not look periodic because its quiet parts correlate.
    lags = np.arange(n)
    r = ac / (float(ac[0]) + 1e-12) * n / np.maximum(n - lags, 1)
    lo = int(PERIOD_MIN_S * fs_hz)
    hi = min(int(PERIOD_MAX_S * fs_hz), int(n / MIN_CYCLES_IN_WINDOW))
    if hi <= lo + 2:
        return 0.0, 0.0
    peaks, _ = signal.find_peaks(r[: hi + 1])
    peaks = peaks[peaks >= lo]
    if peaks.size == 0:
        return 0.0, 0.0
    best = float(r[peaks].max())
    if best <= 0.0:
        return best, float(peaks[int(np.argmax(r[peaks]))] / fs_hz)
    first = peaks[np.flatnonzero(r[peaks] >= PERIOD_PICK_SHARE * best)[0]]
    return float(r[first]), float(first / fs_hz)


def _sensor_rms(z: np.ndarray) -> tuple[float, float]:
    """RMS about the mean of the accelerometer's three channels and of the angles' three."""
    ms = ((z - z.mean(axis=0)) ** 2).mean(axis=0)
    return float(np.sqrt(ms[0:3].sum())), float(np.sqrt(ms[3:6].sum()))


def _scales(rms_a: float, rms_g: float) -> np.ndarray:
    """Per-channel divisors: each sensor's three channels by their joint RMS, but no less than
    the movement floor (a sensor that only sees noise is not blown up to matter as much as one
    that sees the reps)."""
    sa, sg = max(rms_a, MOVE_MIN_ACCEL_MPS2), max(rms_g, MOVE_MIN_ANGLE_RAD)
    return np.array([sa, sa, sa, sg, sg, sg])


class CycleTracker:
    """Streams (t, accel, gyro, still) blocks; returns the reps (Cycles) as they end."""

    def __init__(self, sample_rate_hz: float) -> None:
        self.fs = float(sample_rate_hz)
        # Means of k samples first (about PRE_RATE_HZ; their first null lies at that rate, far
        # above the band kept), so the low-pass runs on few samples.
        self._k = max(1, int(round(self.fs / PRE_RATE_HZ)))
        pre_fs = self.fs / self._k
        cutoff = min(LOWPASS_HZ, 0.4 * pre_fs)
        sos = signal.butter(LOWPASS_ORDER, cutoff, btype="lowpass", fs=pre_fs, output="sos")
        self._lp = StreamingSos(sos, 6)
        self._carry_t = np.zeros(0)
        self._carry_x = np.zeros((0, 7))
        # The low-pass delays the grid signal; extremes are mapped back by its group delay.
        b, a = signal.sos2tf(sos)
        _, gd = signal.group_delay((b, a), w=[0.5], fs=pre_fs)
        self._delay_s = float(gd[0]) / pre_fs
        self._buf_n = int(BUFFER_S * GRID_HZ)
        self._t = np.zeros(0)
        self._x = np.zeros((0, 6))  # accel (m/s^2), angle (rad)
        self._still = np.zeros(0, dtype=bool)
        self._mag = np.zeros(0)  # |accel| (m/s^2), for the step rhythm of walking
        self._i0 = 0  # absolute grid index of self._t[0]
        self._angle = np.zeros(3)
        self._prev_t: float | None = None
        self._prev_y: np.ndarray | None = None
        self._grid_t0: float | None = None  # time of grid sample 0 of this stretch
        self._grid_k = 0  # next grid sample of this stretch
        self._since_hop = 0
        self._hops = 0
        self._walk_seen_i = -(10**9)  # grid index of the last window that showed walking
        self.sets_opened = 0
        self._candidates: list[tuple[float, float]] = []
        self._last_rep_i = -(10**9)  # grid index where the last set's last rep ended
        self._set: _SetState | None = None

    # ------------------------------------------------------------------ streaming
    def update(
        self, t_s: np.ndarray, accel_mps2: np.ndarray, gyro_radps: np.ndarray, still: np.ndarray
    ) -> list[Cycle]:
        if t_s.size == 0:
            return []
        t_all = np.concatenate((self._carry_t, t_s))
        x_all = np.vstack((self._carry_x, np.column_stack((accel_mps2, gyro_radps, still))))
        k = self._k
        n = (t_all.size // k) * k
        self._carry_t, self._carry_x = t_all[n:], x_all[n:]
        if n == 0:
            return []
        t_s = t_all[:n].reshape(-1, k).mean(axis=1)
        x = x_all[:n].reshape(-1, k, 7)
        # The still flag is taken as it is (a filtered flag would lag the end of a rep): a mean of
        # samples is still when all of them are.
        y = np.column_stack((self._lp(x[:, :, 0:6].mean(axis=1)), x[:, :, 6].min(axis=1)))
        out: list[Cycle] = []
        # Split at gaps: a gap ends the set being followed (its reps cannot be seen whole).
        t_all = t_s if self._prev_t is None else np.concatenate(([self._prev_t], t_s))
        gaps = np.flatnonzero(np.diff(t_all) > MAX_GAP_S)
        offset = 0 if self._prev_t is None else 1
        cuts = [0, *(int(g) + 1 - offset for g in gaps), t_s.size]
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            if a > 0 or (self._prev_t is not None and t_s[0] - self._prev_t > MAX_GAP_S):
                out += self._gap()
            if b > a:
                out += self._resample(t_s[a:b], y[a:b])
        return out

    def finish(self) -> list[Cycle]:
        return self._close_set(final=True)

    def _gap(self) -> list[Cycle]:
        out = self._close_set(final=True)
        self._prev_t = self._prev_y = self._grid_t0 = None
        self._grid_k = 0
        self._t = np.zeros(0)
        self._x = np.zeros((0, 6))
        self._still = np.zeros(0, dtype=bool)
        self._mag = np.zeros(0)
        self._i0 += self._buf_n  # absolute indices never repeat
        self._since_hop = 0
        return out

    def _resample(self, t: np.ndarray, y: np.ndarray) -> list[Cycle]:
        if self._prev_t is None:
            self._prev_t, self._prev_y = float(t[0]), y[0].copy()
            self._grid_t0, self._grid_k = float(t[0]), 0
        assert self._prev_y is not None and self._grid_t0 is not None
        tt = np.concatenate(([self._prev_t], t))
        yy = np.vstack((self._prev_y[None, :], y))
        k_end = int(np.floor((float(t[-1]) - self._grid_t0) * GRID_HZ + 1e-9)) + 1
        self._prev_t, self._prev_y = float(t[-1]), y[-1].copy()
        if k_end <= self._grid_k:
            return []
        tg = self._grid_t0 + np.arange(self._grid_k, k_end) / GRID_HZ
        self._grid_k = k_end
        g = np.column_stack([np.interp(tg, tt, yy[:, k]) for k in range(7)])
        # Angles: the gyro integrated on the grid (drift is removed per window and per period).
        ang = self._angle + np.cumsum(g[:, 3:6], axis=0) / GRID_HZ
        self._angle = ang[-1].copy()
        x = np.column_stack((g[:, 0:3], ang))
        return self._append(tg, x, g[:, 6] > 0.5, np.linalg.norm(g[:, 0:3], axis=1))

    def _append(
        self, tg: np.ndarray, x: np.ndarray, still: np.ndarray, mag: np.ndarray
    ) -> list[Cycle]:
        """Takes grid samples one hop at a time (hops fall on fixed grid counts), so results do
        not depend on how the input was cut into blocks."""
        out: list[Cycle] = []
        hop_n = int(HOP_S * GRID_HZ)
        k = 0
        while k < tg.size:
            take = min(tg.size - k, hop_n - self._since_hop)
            self._push(tg[k : k + take], x[k : k + take], still[k : k + take], mag[k : k + take])
            if self._set is not None:
                out += self._set.follow(self)
            self._since_hop += take
            k += take
            if self._since_hop >= hop_n:
                self._since_hop = 0
                out += self._hop()
        return out

    def _push(self, tg: np.ndarray, x: np.ndarray, still: np.ndarray, mag: np.ndarray) -> None:
        self._t = np.concatenate((self._t, tg))
        self._x = np.vstack((self._x, x))
        self._still = np.concatenate((self._still, still))
        self._mag = np.concatenate((self._mag, mag))
        over = self._t.size - self._buf_n
        if over > 0:
            self._t, self._x = self._t[over:], self._x[over:]
            self._still, self._mag = self._still[over:], self._mag[over:]
            self._i0 += over

    # ------------------------------------------------------------------ periodicity
    def _window_test(self, max_n: int | None = None) -> tuple[float, float, float] | None:
        """Best (correlation, period, window length) over the window lengths, or None. Windows
        longer than ``max_n`` samples are not tried."""
        best: tuple[float, float, float] | None = None
        for w_s in WINDOWS_S:
            n = int(w_s * GRID_HZ)
            if self._t.size < n or (max_n is not None and n > max_n):
                break
            z = _detrend(self._x[-n:])
            rms_a, rms_g = _sensor_rms(z)
            if rms_a < MOVE_MIN_ACCEL_MPS2 and rms_g < MOVE_MIN_ANGLE_RAD:
                continue
            r, period = periodicity(z / _scales(rms_a, rms_g))
            if period <= 0.0 or r < MIN_PERIODICITY:
                continue
            if period <= WALK_MAX_PERIOD_S and self._walking(n, period):
                self._walk_seen_i = self._i0 + self._t.size - 1
                continue
            if best is None or r > best[0]:
                best = (r, period, w_s)
            if r >= GOOD_PERIODICITY:
                break  # clear enough: longer windows would only cost time
        return best

    def _walking(self, n: int, period_s: float) -> bool:
        """A step rhythm at twice the swing frequency in |accel|: walking, not reps."""
        m = self._mag[-n:] - self._mag[-n:].mean()
        lag = int(round(0.5 * period_s * GRID_HZ))
        if lag < 2 or m.size <= 2 * lag:
            return False
        a, b = m[:-lag], m[lag:]
        den = float(np.sqrt((a * a).sum() * (b * b).sum())) + 1e-12
        return float((a * b).sum()) / den >= WALK_STEP_SHARE

    def _hop(self) -> list[Cycle]:
        self._hops += 1
        if self._set is not None:
            self._set.update_swing()
            # In a set the rhythm is only followed (its period).
            if self._hops % IN_SET_TEST_HOPS == 0:
                test = self._window_test()
                if test is not None:
                    self._set.observe_period(test[1])
            return self._set.check_end(self)
        if self._hops % IDLE_TEST_HOPS:
            return []
        # A new set's window never reaches back into the reps of the set before it.
        fresh_n = self._i0 + self._t.size - 1 - self._last_rep_i
        test = self._window_test(fresh_n)
        if test is None:
            self._candidates = []
            return []
        _, period, w_s = test
        self._candidates = (self._candidates + [(period, w_s)])[-CONFIRM_HOPS:]
        periods = [c[0] for c in self._candidates]
        if len(periods) < CONFIRM_HOPS or max(periods) > (1 + PERIOD_AGREE) * min(periods):
            return []
        self._candidates = []
        n = int(w_s * GRID_HZ)
        self._set = _SetState.open(self, n, period, self.sets_opened)
        self.sets_opened += 1
        return self._set.replay(self)

    def _close_set(self, final: bool) -> list[Cycle]:
        s = self._set
        self._set = None
        if s is None:
            return []
        out = s.close(self) if final else []
        self._last_rep_i = max(self._last_rep_i, s.last_rep_i)
        return out

    # ------------------------------------------------------------------ helpers for sets
    def grid_time(self, i_abs: int) -> float:
        """Input time of a grid sample, corrected for the low-pass delay."""
        k = min(max(i_abs - self._i0, 0), self._t.size - 1)
        return float(self._t[k]) - self._delay_s

    def raw_time(self, i_abs: int) -> float:
        k = min(max(i_abs - self._i0, 0), self._t.size - 1)
        return float(self._t[k])

    def rows(self, i_abs_from: int) -> slice:
        return slice(max(0, i_abs_from - self._i0), self._t.size)


class _ZigZag:
    """Extremes of a signal that count once it has turned back by ``delta``."""

    def __init__(self) -> None:
        self.mode = 0  # +1 following a maximum, -1 a minimum, 0 undecided
        self.hi = (-1, -np.inf)
        self.lo = (-1, np.inf)

    @property
    def candidate(self) -> tuple[int, float]:
        return self.hi if self.mode == 1 else self.lo

    def step(self, i: int, v: float, delta: float) -> _Extreme | None:
        if v > self.hi[1]:
            self.hi = (i, v)
        if v < self.lo[1]:
            self.lo = (i, v)
        if self.mode >= 0 and self.hi[1] - v >= delta and self.hi[0] >= 0:
            e = _Extreme(self.hi[0], self.hi[1], 1)
            self.mode, self.lo = -1, (i, v)
            return e
        if self.mode <= 0 and v - self.lo[1] >= delta and self.lo[0] >= 0:
            e = _Extreme(self.lo[0], self.lo[1], -1)
            self.mode, self.hi = 1, (i, v)
            return e
        return None


class _SetState:
    """A set being followed: its axis, scales, period, extremes and reps so far."""

    def __init__(
        self,
        axis: np.ndarray,
        mean: np.ndarray,
        scales: np.ndarray,
        period_s: float,
        swing: float,
        index: int,
    ) -> None:
        self.axis = axis
        self.mean = mean
        self.scales = scales
        self.period_s = period_s
        self.periods = [period_s]
        self.amp = swing
        self.q_recent = np.zeros(0)
        self.index = index
        self.zig = _ZigZag()
        self.ext: list[_Extreme] = []
        self.rest_sign = 0
        self.rest_prev: _Extreme | None = None
        self.first_rest: _Extreme | None = None
        self.shapes: list[np.ndarray] = []
        self.turn: _Extreme | None = None  # excursion whose rep has not been reported
        self.walked_i = -1
        self.last_rep_i = -1
        self.opened_i = -1
        self.q_hist = np.zeros(0)
        self.next_i = 0  # absolute grid index of the next sample to follow

    @classmethod
    def open(cls, tr: CycleTracker, n: int, period_s: float, index: int) -> _SetState:
        z = tr._x[-n:]
        zd = _detrend(z)
        scales = _scales(*_sensor_rms(zd))
        axis = principal_axis(zd / scales)
        q = _minus_running_mean((z - z.mean(axis=0)) / scales @ axis, period_s)
        q = q[-max(int(4.0 * GRID_HZ), int(2.0 * period_s * GRID_HZ)) :]
        swing = _spread(q)
        s = cls(axis, z.mean(axis=0), scales, period_s, max(swing, 1e-6), index)
        s.next_i = tr._i0 + tr._t.size - n
        s.opened_i = tr._i0 + tr._t.size - 1
        return s

    def replay(self, tr: CycleTracker) -> list[Cycle]:
        """Follows the window the set was found in; keeps the extremes that look like the set's
        own (back from the newest), so a set-up move or fidget before it is no rep."""
        rows = tr.rows(self.next_i)
        self._follow_samples(tr, emit=False)
        self.ext = self._conforming_tail(self.ext)
        if len(self.ext) >= 2:
            self.rest_sign = self._dwell_side(tr, rows) or self._pick_rest_sign(self.ext)
        out = self._walk(tr, tr._i0 + tr._t.size - 1)
        # Reps of a set follow one another: a replayed cycle set apart from the next by a pause
        # is a movement before the set.
        while len(out) >= 2 and out[1].start_s - out[0].end_s > SET_GAP_PERIODS * self.period_s:
            out = out[1:]
        # The first replayed cycle may be the set-up (lifting the weight into place, gripping
        # the handle): it counts only if it looks like the reps after it.
        later = [c.shape for c in out[1:] if c.shape is not None]
        if len(later) >= 3 and out[0].shape is not None:
            ref = np.median(np.stack(later), axis=0)
            if _correlation(out[0].shape, ref) < FIRST_REP_MIN_CORRELATION:
                out = out[1:]
        return out

    def follow(self, tr: CycleTracker) -> list[Cycle]:
        return self._follow_samples(tr, emit=True)

    def _follow_samples(self, tr: CycleTracker, emit: bool) -> list[Cycle]:
        rows = tr.rows(self.next_i)
        x = tr._x[rows]
        out: list[Cycle] = []
        if x.shape[0] == 0:
            return out
        still = tr._still[rows]
        p = ((x - self.mean) / self.scales) @ self.axis
        both = np.concatenate((self.q_hist, p))
        q = _minus_running_mean(both, self.period_s)[self.q_hist.size :]
        hist_n = max(1, int(round(self.period_s * GRID_HZ)))
        self.q_hist = both[-hist_n:]
        self.q_recent = np.concatenate((self.q_recent, q))[-max(int(4.0 * GRID_HZ), 2 * hist_n) :]
        delta = SWING_SHARE * self.amp
        base = tr._i0 + rows.start
        for k in range(q.size):
            i = base + k
            e = self.zig.step(i, float(q[k]), delta)
            if e is not None:
                self.ext.append(e)
                if emit:
                    if self.rest_sign == 0 and len(self.ext) >= 2:
                        self.rest_sign = self._pick_rest_sign(self.ext)
                    out += self._walk(tr, i)
            if emit and still[k] and self.turn is not None:
                out += self._early_end(tr, i)
        self.ext = self.ext[-16:]
        self.next_i = base + q.size
        return out

    def _conforming_tail(self, ext: list[_Extreme]) -> list[_Extreme]:
        if len(ext) < 3:
            return ext
        sw = np.abs(np.diff([e.value for e in ext]))
        typical = float(np.median(sw[-min(len(sw), 4) :]))
        keep = len(ext) - 1
        while keep > 0:
            if not REP_MIN_SWING_SHARE * typical <= sw[keep - 1] <= REP_MAX_SWING_SHARE * typical:
                break
            keep -= 1
        return ext[keep:]

    def _dwell_side(self, tr: CycleTracker, rows: slice) -> int:
        """The side the limb rests on between reps: where it dwells, and where it is still
        (0 when neither side clearly dominates, as with reps back to back)."""
        if len(self.ext) < 3:
            return 0
        first = self.ext[0].i - tr._i0
        x = tr._x[rows][max(0, first - rows.start) :]
        still = tr._still[rows][max(0, first - rows.start) :]
        p = ((x - self.mean) / self.scales) @ self.axis
        q = _minus_running_mean(p, self.period_s)
        lo, hi = np.percentile(q, 5), np.percentile(q, 95)
        band = DWELL_BAND_SHARE * (hi - lo)
        near_hi, near_lo = q >= hi - band, q <= lo + band
        score_hi = float(near_hi.mean()) + float((near_hi & still).mean())
        score_lo = float(near_lo.mean()) + float((near_lo & still).mean())
        if score_hi >= DWELL_RATIO * score_lo:
            return 1
        if score_lo >= DWELL_RATIO * score_hi:
            return -1
        return 0

    @staticmethod
    def _pick_rest_sign(ext: list[_Extreme]) -> int:
        """The side that makes more whole reps (rest, excursion, rest) of these extremes; a tie
        goes to the side the set started from."""
        n_hi = sum(1 for e in ext if e.sign == 1)
        n_lo = len(ext) - n_hi
        if n_hi == n_lo:
            return ext[0].sign
        return 1 if n_hi > n_lo else -1

    def _walk(self, tr: CycleTracker, now_i: int) -> list[Cycle]:
        out: list[Cycle] = []
        if self.rest_sign == 0:
            return out
        for e in self.ext:
            if e.i <= self.walked_i:
                continue
            self.walked_i = e.i
            if e.sign == self.rest_sign:
                if self.first_rest is None:
                    self.first_rest = e
                if self.turn is not None and self.rest_prev is not None:
                    if e.i - self.rest_prev.i < REP_DURATION_PERIODS[0] * self.period_s * GRID_HZ:
                        continue  # a wobble within one rep (a double hump), not its end
                    c = self._cycle(tr, self.rest_prev, self.turn, e, now_i, False)
                    if c is not None:
                        out.append(c)
                self.rest_prev, self.turn = e, None
            elif self.rest_prev is not None:
                # Of the excursions since the last rest, the rep turns at the largest.
                if self.turn is None or abs(e.value - self.rest_prev.value) > abs(
                    self.turn.value - self.rest_prev.value
                ):
                    self.turn = e
        return out

    def _returned(self) -> tuple[_Extreme, _Extreme, float] | None:
        """(rest, turn, value now) when the last excursion has come back most of the way to
        rest (RETURN_SHARE), else None."""
        turn, rest = self.turn, self.rest_prev
        if turn is None or rest is None or self.zig.mode != self.rest_sign:
            return None
        i, v = self.zig.candidate
        excursion = abs(turn.value - rest.value)
        if i <= turn.i or excursion <= 0 or abs(turn.value - v) < RETURN_SHARE * excursion:
            return None
        return rest, turn, v

    def _early_end(self, tr: CycleTracker, now_i: int) -> list[Cycle]:
        """A rep whose limb is back most of the way to rest and still has ended: report it now
        (its rest-side extreme is only confirmed when the next rep starts)."""
        back = self._returned()
        if back is None:
            return []
        rest, turn, v = back
        c = self._cycle(tr, rest, turn, _Extreme(now_i, v, self.rest_sign), now_i, True)
        self.turn = None  # reported; the confirmed rest extreme will only move rest_prev
        return [] if c is None else [c]

    def _cycle(
        self,
        tr: CycleTracker,
        rest0: _Extreme,
        turn: _Extreme,
        rest1: _Extreme,
        now_i: int,
        by_still: bool,
    ) -> Cycle | None:
        typical = 0.8 * self.amp  # a typical rep's excursion is most of the signal's spread
        excursion = 0.5 * (abs(turn.value - rest0.value) + abs(turn.value - rest1.value))
        share = excursion / max(typical, 1e-9)
        if not REP_MIN_SWING_SHARE <= share <= REP_MAX_SWING_SHARE:
            return None
        dur_periods = (rest1.i - rest0.i) / GRID_HZ / max(self.period_s, 1e-6)
        if dur_periods < REP_DURATION_PERIODS[0]:
            return None
        if not by_still and dur_periods > REP_DURATION_PERIODS[1] and rest0 is not self.first_rest:
            return None  # too slow for the set's rhythm (the first rep may start in the idle)
        shape = self._shape(tr, rest0.i, turn.i, rest1.i)
        if shape is not None and len(self.shapes) >= SHAPES_TO_JUDGE:
            ref = np.median(np.stack(self.shapes), axis=0)
            if _correlation(shape, ref) < SHAPE_MIN_CORRELATION:
                return None
        if shape is not None and SHAPE_PERIODS[0] <= dur_periods <= SHAPE_PERIODS[1]:
            self.shapes = (self.shapes + [shape])[-SHAPES_KEPT:]
        self.last_rep_i = rest1.i
        # A rest extreme far from the turn (the lowest point of a long pause, or of the idle
        # before the set) bounds the rep at one period from its turn.
        reach = int(round(self.period_s * GRID_HZ))
        i0 = max(rest0.i, turn.i - reach)
        i1 = min(rest1.i, turn.i + reach)
        # A rep ended by stillness ends where the (unfiltered) still flag came on.
        end_s = tr.raw_time(now_i) if by_still else tr.grid_time(i1)
        return Cycle(
            start_s=tr.grid_time(i0),
            turn_s=tr.grid_time(turn.i),
            end_s=max(end_s, tr.grid_time(turn.i)),
            period_s=self.period_s,
            set_index=self.index,
            by_stillness=by_still,
            shape=shape,
            found_s=tr.raw_time(now_i),
        )

    def _shape(self, tr: CycleTracker, i0: int, i_turn: int, i1: int) -> np.ndarray | None:
        """The rep's six-channel path, each half (rest to turn, turn to rest) resampled on its
        own: a grinding concentric near failure stretches one half, not the shape."""
        rows = slice(max(0, i0 - tr._i0), max(0, i1 - tr._i0) + 1)
        x = tr._x[rows]
        k_turn = min(max(i_turn - max(i0, tr._i0), 1), x.shape[0] - 2)
        if x.shape[0] < 5:
            return None
        z = _detrend((x - self.mean) / self.scales)
        half = SHAPE_POINTS // 2
        parts = []
        for seg in (z[: k_turn + 1], z[k_turn:]):
            u = np.linspace(0.0, 1.0, seg.shape[0])
            grid = np.linspace(0.0, 1.0, half)
            parts.append(np.column_stack([np.interp(grid, u, seg[:, k]) for k in range(6)]))
        sh = np.vstack(parts)
        sh -= sh.mean(axis=0)
        return sh / (float(np.sqrt((sh * sh).sum())) + 1e-12)

    def update_swing(self) -> None:
        """Every hop: the set's swing is the spread of its last two periods (at least 4 s), and
        falls no faster than by half in ``SWING_HALF_LIFE_S`` (a pause must not shrink it to the
        noise)."""
        if self.q_recent.size < 4:
            return
        spread = _spread(self.q_recent)
        self.amp = max(spread, self.amp * 0.5 ** (HOP_S / SWING_HALF_LIFE_S))

    def observe_period(self, period_s: float) -> None:
        self.periods = (self.periods + [period_s])[-9:]
        self.period_s = float(np.median(self.periods))

    def check_end(self, tr: CycleTracker) -> list[Cycle]:
        now = tr._i0 + tr._t.size - 1
        if tr._walk_seen_i > self.last_rep_i:
            return tr._close_set(final=False)  # the lifter walked off: the set is over
        quiet_s = (now - max(self.last_rep_i, self.opened_i)) / GRID_HZ
        if quiet_s >= max(SET_END_MIN_S, SET_END_PERIODS * self.period_s):
            return tr._close_set(final=True)
        return []

    def close(self, tr: CycleTracker) -> list[Cycle]:
        """At the set's end: a last excursion that came back most of the way is a rep."""
        back = self._returned()
        if back is None:
            return []
        rest, turn, v = back
        self.turn = None
        i = self.zig.candidate[0]
        now_i = tr._i0 + tr._t.size - 1
        c = self._cycle(tr, rest, turn, _Extreme(i, v, self.rest_sign), now_i, False)
        return [] if c is None else [c]


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    return float((a * b).sum() / (np.sqrt((a * a).sum() * (b * b).sum()) + 1e-12))


def _spread(x: np.ndarray) -> float:
    """95th minus 5th percentile (nearest rank), cheaply."""
    n = x.size
    lo, hi = int(0.05 * (n - 1)), int(round(0.95 * (n - 1)))
    part = np.partition(x, (lo, hi))
    return float(part[hi] - part[lo])


def _detrend(z: np.ndarray) -> np.ndarray:
    """``z`` (N, k) minus its least-squares line, per column."""
    n = z.shape[0]
    u = np.arange(n) - 0.5 * (n - 1)
    zc = z - z.mean(axis=0)
    slope = (u @ zc) / float(u @ u) if n > 1 else np.zeros(z.shape[1])
    return zc - u[:, None] * slope[None, :]


def _minus_running_mean(p: np.ndarray, period_s: float) -> np.ndarray:
    """``p`` minus its causal mean over the last period (over what there is at the start)."""
    n = max(1, int(round(period_s * GRID_HZ)))
    c = np.concatenate(([0.0], np.cumsum(p)))
    idx = np.arange(p.size)
    lo = np.maximum(0, idx - n + 1)
    return p - (c[idx + 1] - c[lo]) / (idx + 1 - lo)
