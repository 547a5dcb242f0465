"""Movement periods, per-period velocity with zero-velocity updates, and reps.

A movement period runs from one still instant to the next. Inside it the vertical earth-frame
acceleration is integrated and the residual drift is removed linearly so that velocity is zero
at both still ends (zero-velocity update); a constant accelerometer offset or tilt leak
therefore cancels per period. A rep is one excursion from the rest position and back: either a
single period that returns (touch-and-go bottom) or two opposite periods split by a pause at
the turn-around. Excursions below the range-of-motion floor (unracking, re-racking, fidgets)
or that never return are not reps. Only vertical displacement is used, so a lift in which the
limb does not rotate is counted exactly like a curl.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

from tremorlift.analysis.dsp import runs

# Stillness: the sum of these three ratios (low-passed linear acceleration, its jerk and the
# angular rate, each over its scale) stays below one.
STILL_ACCEL_MPS2 = 0.3
STILL_JERK_MPS3 = 1.0
STILL_GYRO_RADPS = 0.3
MIN_STILL_S = 0.15
FORCE_STILL_S = (
    0.4  # still (no jerk, no acceleration) this long ends a period whatever the velocity says
)
MARGIN_S = 0.1
# Early end of a period, for live alerts: the slow still test above lags the true end of a
# movement by ~0.5 s (its 2 Hz low-pass keeps ringing from the jerk at a minimum-jerk stop).
# The fast test is a 0.1 s mean of vertical acceleration and angular rate (its first null at
# 10 Hz suppresses tremor) held for 30 ms, and it only ends a period when the integrated
# velocity is back near zero (at mid-movement, where acceleration also crosses zero, it is not).
FAST_STILL_WINDOW_S = 0.08
FAST_STILL_ACCEL_MPS2 = 0.35
FAST_STILL_GYRO_RADPS = 0.25
FAST_STILL_HOLD_S = 0.03
FAST_SETTLED_ABS_MPS = 0.06
FAST_SETTLED_REL = 0.3
FAST_TURN_SETTLED_REL = 0.1  # a turning limb: angular rate below this share of its peak
FAST_MIN_PEAK_MPS = 0.1
MAX_PERIOD_S = 30.0  # longer periods are walking or carrying, not a rep
MIN_PERIOD_S = 0.3
ROM_MIN_M = 0.10  # range-of-motion floor (unrack, re-rack, most fidgets stay below)
ROTATING_MIN_RAD = 0.6  # a period whose limb turns this much is judged by its angle
ROM_MIN_ROTATING_M = 0.03  # displacement floor of a rep of a turning limb (its angle decides)
TURN_MIN_RAD = 0.35  # rotation range above which turn-arounds serve as zero-velocity instants
SPLIT_MIN_DISTANCE_S = 0.8
LOCOMOTION_MAX_CYCLE_S = 1.8  # three or more excursions faster than this in one period (no still pause): walking strides, not reps (a strength rep with its eccentric takes longer)
RETURN_FRACTION = 0.5  # a period "returns" if its net displacement is below this share of its range
PAIR_MAX_GAP_S = 3.0
PAIR_RATIO = (0.5, 2.0)
ORDER_FORGET_S = 8.0  # a pause this long between strokes ends what was learnt about a set
ORDER_VOTES_KEPT = 8
ORDER_FLIP_MARGIN_S = 0.15
STRIDE_GAP_S = 0.0  # below this (periods overlapping by their margin) there was no rest between
MIN_PEAK_VELOCITY_MPS = 0.08
EDGE_FRACTION = 0.05  # phase edges: where |v| exceeds this share of the peak
# For a minimum-jerk phase, the part above 5 % of the peak speed lasts 88.1 % of the phase and
# covers 99.6 % of its distance (v ~ 30 tau^2 (1 - tau)^2, crossing at tau = 0.0595).
EDGE_DURATION_SHARE = 0.881
EDGE_DISPLACEMENT_SHARE = 0.996


@dataclass
class Stroke:
    t_s: np.ndarray
    v_mps: np.ndarray
    z_m: np.ndarray
    angle_rad: np.ndarray  # rotation about the period's main axis (zero at its start)

    @property
    def net_m(self) -> float:
        return float(self.z_m[-1] - self.z_m[0])

    @property
    def excursion_m(self) -> float:
        return float(self.z_m.max() - self.z_m.min())

    @property
    def rotating(self) -> bool:
        return float(self.angle_rad.max() - self.angle_rad.min()) >= ROTATING_MIN_RAD

    def returns(self) -> bool:
        """Back where it started: by the limb's angle when it rotates (gyro integration is exact
        over seconds), else by vertical displacement."""
        if self.rotating:
            rng = float(self.angle_rad.max() - self.angle_rad.min())
            return abs(float(self.angle_rad[-1] - self.angle_rad[0])) < RETURN_FRACTION * rng
        return abs(self.net_m) < RETURN_FRACTION * self.excursion_m

    @property
    def net(self) -> float:
        """Signed net change used to pair the two halves of a split rep."""
        return float(self.angle_rad[-1] - self.angle_rad[0]) if self.rotating else self.net_m


@dataclass
class Rep:
    start_s: float
    end_s: float
    concentric_start_s: float
    concentric_end_s: float
    mean_concentric_velocity_mps: float
    peak_velocity_mps: float
    rom_m: float
    concentric_s: float
    eccentric_s: float
    time_under_tension_s: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


class MovementSegmenter:
    """Streams (t, vertical acceleration, still mask); yields Strokes as periods end."""

    def __init__(self, sample_rate_hz: float) -> None:
        self.fs = sample_rate_hz
        self.dt = 1.0 / sample_rate_hz
        self.min_still_n = int(round(MIN_STILL_S * sample_rate_hz))
        self.force_still_n = int(round(FORCE_STILL_S * sample_rate_hz))
        self.margin_n = int(round(MARGIN_S * sample_rate_hz))
        self.max_n = int(round(MAX_PERIOD_S * sample_rate_hz))
        self._pre_t = np.zeros(0)
        self._pre_a = np.zeros((0, 4))
        self._buf_t: list[np.ndarray] = []
        self._buf_a: list[np.ndarray] = []
        self._buf_n = 0
        self._in_motion = False
        self._discarding = False
        self._still_run = 0
        self._checked_at = 0
        self.fast_hold_n = max(1, int(round(FAST_STILL_HOLD_S * sample_rate_hz)))
        self._fq_run = 0
        self._fq = np.zeros(0, dtype=bool)
        self._fq_len = np.zeros(0, dtype=np.int64)
        self._after_early = False  # a period ended early: the next starts on fast motion

    @property
    def moving(self) -> bool:
        return self._in_motion

    def update(
        self,
        t_s: np.ndarray,
        a_vert: np.ndarray,
        still: np.ndarray,
        gyro_radps: np.ndarray,
        fast_quiet: np.ndarray | None = None,
    ) -> list[Stroke]:
        """``gyro_radps`` (N, 3), offset-corrected: turn-arounds of a rotating limb are extra
        zero-velocity instants inside a period. ``fast_quiet``: the fast stillness test (see
        FAST_STILL_*); without it periods end only by the slow test."""
        out: list[Stroke] = []
        a_vert = np.column_stack((a_vert, gyro_radps))
        fq = np.zeros(t_s.size, dtype=bool) if fast_quiet is None else fast_quiet
        self._fq, self._fq_len, self._fq_run = fq, *_run_lengths(fq, self._fq_run)
        starts, stops, vals = runs(still)
        for s, e, is_still in zip(starts.tolist(), stops.tolist(), vals.tolist(), strict=True):
            pos = s
            while pos < e:
                pos = self._step(t_s, a_vert, pos, e, bool(is_still), out)
        return out

    def _step(
        self, t: np.ndarray, a: np.ndarray, s: int, e: int, is_still: bool, out: list[Stroke]
    ) -> int:
        if not self._in_motion:
            if is_still:
                self._pre_t = np.concatenate((self._pre_t, t[s:e]))[-self.margin_n :]
                self._pre_a = np.concatenate((self._pre_a, a[s:e]))[-self.margin_n :]
                self._discarding = False
                self._after_early = False
                return e
            if self._discarding:
                return e
            if self._after_early:
                # The slow test still rings from the movement that just ended: wait for the
                # fast test to see motion again.
                loud = np.flatnonzero(~self._fq[s:e])
                k = s + int(loud[0]) if loud.size else e
                self._pre_t = np.concatenate((self._pre_t, t[s:k]))[-self.margin_n :]
                self._pre_a = np.concatenate((self._pre_a, a[s:k]))[-self.margin_n :]
                if k == e:
                    return e
                self._after_early = False
                s = k
            self._in_motion = True
            self._buf_t, self._buf_a = [self._pre_t], [self._pre_a]
            self._buf_n = self._pre_t.size
            self._still_run = 0
            self._checked_at = 0
            return s  # the moving samples go through the in-motion branch (early end test)
        if not is_still:
            self._still_run = 0
            self._checked_at = 0
            k_end = self._early_end(t, a, s, e)
            if k_end is not None:
                self._append(t[s:k_end], a[s:k_end])
                stroke = self._close()
                self._after_early = True
                if stroke is not None:
                    out.append(stroke)
                return k_end
            self._append(t[s:e], a[s:e])
            if self._buf_n > self.max_n:
                self._reset(discard=True)
            return e
        # Still samples during motion: end the period once stillness is long enough and the
        # running velocity agrees (a slow grind at constant speed also has ~zero acceleration).
        for need in (self.min_still_n, self.force_still_n):
            if self._still_run < need <= self._still_run + (e - s) and self._checked_at < need:
                k = s + need - self._still_run
                self._append(t[s:k], a[s:k])
                self._still_run = need
                self._checked_at = need
                if need == self.force_still_n or self._velocity_settled():
                    stroke = self._close()
                    if stroke is not None:
                        out.append(stroke)
                    return k
                return k
        self._append(t[s:e], a[s:e])
        self._still_run += e - s
        return e

    def _early_end(self, t: np.ndarray, a: np.ndarray, s: int, e: int) -> int | None:
        """Exclusive end index in [s, e] at which the period ends by the fast test, or None."""
        # At the start of each quiet run, then every 20 ms of it for a while (the velocity may
        # settle a little after the acceleration does).
        q = self._fq_len[s:e] - self.fast_hold_n
        for c in np.flatnonzero((q >= 0) & (q % 4 == 0) & (q <= 40)).tolist():
            k = s + c + 1
            if self._buf_n + (k - s) < MIN_PERIOD_S * self.fs:
                continue
            buf = np.concatenate(self._buf_a + [a[s:k]])
            ang = _main_angle(buf[:, 1:4], self.dt)
            if float(ang.max() - ang.min()) >= ROTATING_MIN_RAD:
                # A limb that turned with the movement has stopped when its turning has: its
                # angular rate (exact) is back near zero from its peak. Its integrated velocity
                # is no guide (offsets seen from a turning sensor drift it).
                rate = np.linalg.norm(buf[:, 1:4], axis=1)
                if float(rate[-self.fast_hold_n :].mean()) < FAST_TURN_SETTLED_REL * float(
                    rate.max()
                ):
                    return k
            elif self._velocity_settled(
                buf, FAST_SETTLED_ABS_MPS, FAST_SETTLED_REL, min_peak_mps=FAST_MIN_PEAK_MPS
            ):
                return k
        return None

    def _velocity_settled(
        self,
        a: np.ndarray | None = None,
        abs_mps: float = 0.12,
        rel: float = 0.35,
        min_peak_mps: float = 0.0,
    ) -> bool:
        if a is None:
            a = np.concatenate(self._buf_a)
        v = np.cumsum(a[:, 0]) * self.dt
        turns = _turnarounds(a[:, 1:4], self.dt)
        # Velocity gained since the last known zero-velocity instant (start or turn-around).
        ref = float(v[turns[-1]]) if turns.size else 0.0
        peak = float(np.abs(v - ref).max()) if v.size else 0.0
        if peak < min_peak_mps:
            return False
        return abs(float(v[-1]) - ref) < max(abs_mps, rel * peak)

    def _append(self, t: np.ndarray, a: np.ndarray) -> None:
        self._buf_t.append(t)
        self._buf_a.append(a)
        self._buf_n += t.size

    def _reset(self, discard: bool) -> None:
        self._in_motion = False
        self._discarding = discard
        self._buf_t, self._buf_a, self._buf_n = [], [], 0
        self._pre_t = np.zeros(0)
        self._pre_a = np.zeros((0, 4))

    def _close(self) -> Stroke | None:
        t = np.concatenate(self._buf_t)
        a = np.concatenate(self._buf_a)
        self._reset(discard=False)
        self._pre_t = t[-self.margin_n :]
        self._pre_a = a[-self.margin_n :]
        if t.size < MIN_PERIOD_S * self.fs:
            return None
        v = _zupt_velocity(a[:, 0], a[:, 1:4], self.dt, detrend=True)
        z = np.cumsum(v) * self.dt
        ang = _main_angle(a[:, 1:4], self.dt)
        if (
            float(np.ptp(ang)) < ROTATING_MIN_RAD
            and float(np.dot(ang - ang.mean(), z - z.mean())) < 0
        ):
            ang = -ang  # signed so that turning "up" raises the sensor: halves of a rep pair up
        # A turning limb keeps the sign of its rotation axis (fixed in sensor axes), not of its
        # displacement: the drift of a turning sensor can make both halves of a rep look "up".
        return Stroke(t, v, z, ang)


def _run_lengths(mask: np.ndarray, carried: int) -> tuple[np.ndarray, int]:
    """Consecutive True samples up to and including each sample, continuing ``carried`` from
    the previous block; and the count carried into the next block."""
    idx = np.arange(mask.size)
    last_false = np.maximum.accumulate(np.where(~mask, idx, -1))
    run = np.where(last_false >= 0, idx - last_false, idx + 1 + carried)
    run[~mask] = 0
    return run, int(run[-1]) if run.size else carried


def _main_angle(gyro: np.ndarray, dt: float) -> np.ndarray:
    """Angle about the main rotation axis of a period, signed so that it first grows."""
    if gyro.shape[0] < 3:
        return np.zeros(gyro.shape[0])
    _, _, vt = np.linalg.svd(gyro - gyro.mean(axis=0), full_matrices=False)
    axis = vt[0] if vt[0][int(np.argmax(np.abs(vt[0])))] > 0 else -vt[0]
    return np.cumsum(gyro @ axis) * dt


def _turnarounds(gyro: np.ndarray, dt: float) -> np.ndarray:
    """Sample indices where a limb that rotates with the lift reverses: extremes of its angle
    about the main rotation axis. There the velocity is zero too, which pins down errors that
    change with the limb angle (accelerometer offsets seen from a rotating sensor)."""
    if gyro.shape[0] < 3:
        return np.zeros(0, dtype=np.int64)
    _, _, vt = np.linalg.svd(gyro - gyro.mean(axis=0), full_matrices=False)
    angle = np.cumsum(gyro @ vt[0]) * dt
    if float(angle.max() - angle.min()) < TURN_MIN_RAD:
        return np.zeros(0, dtype=np.int64)
    prom = max(TURN_MIN_RAD, 0.4 * float(angle.max() - angle.min()))
    hi, _ = find_peaks(angle, prominence=prom)
    lo, _ = find_peaks(-angle, prominence=prom)
    return np.sort(np.concatenate((hi, lo)))


def _zupt_velocity(a: np.ndarray, gyro: np.ndarray, dt: float, detrend: bool) -> np.ndarray:
    """Integrates vertical acceleration over one movement period. With ``detrend`` the residual
    drift is removed piecewise linearly between the zero-velocity instants: both ends, and the
    turn-arounds of a rotating limb."""
    v = np.cumsum(a) * dt
    if not detrend:
        return v
    anchors = np.concatenate(([0], _turnarounds(gyro, dt), [v.size - 1]))
    return v - np.interp(
        np.arange(v.size), anchors, np.concatenate(([0.0], v[anchors[1:-1]], [float(v[-1])]))
    )


class RepBuilder:
    """Turns strokes into reps (range-of-motion filter, pairing of split reps).

    When a rep is split into two strokes by a pause at the turn-around, which two strokes form
    a rep depends on where the rest position is (top for a squat, bottom for a deadlift). With
    three alternating strokes A, B, C in hand, the pause between reps is taken to be the longer
    one: B+C is the rep if the B-C pause is shorter than A-B (A was a set-up move), else A+B.
    """

    def __init__(self, order_hint: float = 0.0) -> None:
        self._pending: list[Stroke] = []
        # Sign of the first half of a rep (-1: down first, squat; +1: up first, curl). Once
        # known, a rep is emitted as soon as its second half ends instead of waiting for a third
        # stroke (live alerts must not wait a rep). Known from the exercise when given, else
        # voted over the set: the pause between reps is the longer one on average, so the
        # half followed by the longer pauses ends a rep. The pause after a set's first stroke
        # does not vote (it follows the set-up: bending to the bar, unracking).
        self._hint = float(np.sign(order_hint))
        self._order = 0.0  # from the first three-stroke decision, until votes exist
        self._votes: dict[float, list[float]] = {1.0: [], -1.0: []}
        self._voted = 0.0
        self._prev: Stroke | None = None
        self._first: Stroke | None = None
        self._n_in_set = 0
        self._last_end_s = -np.inf
        self._last_return_s = np.inf  # duration of the last stroke if it returned

    def _current_order(self) -> float:
        if self._hint:
            return self._hint
        up, down = self._votes[1.0], self._votes[-1.0]
        if up and down:
            # Pauses vary rep to rep: once voted, the order flips only on clear evidence.
            longer_after_up = float(np.mean(up)) - float(np.mean(down))
            voted = -1.0 if longer_after_up > 0 else 1.0
            if self._voted == 0.0 or abs(longer_after_up) >= ORDER_FLIP_MARGIN_S:
                self._voted = voted
            return self._voted
        return self._order

    def _record(self, stroke: Stroke) -> None:
        if self._n_in_set == 0:
            self._first = stroke
        prev = self._prev
        if prev is not None and self._n_in_set >= 2 and _pairs(prev, stroke):
            votes = self._votes[1.0 if prev.net > 0 else -1.0]
            votes.append(_pause(prev, stroke))
            del votes[:-ORDER_VOTES_KEPT]
        self._prev = stroke
        self._n_in_set += 1

    def update(self, stroke: Stroke) -> list[Rep]:
        exc = stroke.excursion_m
        if exc < ROM_MIN_M and not stroke.rotating:
            # Fidget or a wobble at the bottom: keep any pending half. A limb that turns through
            # a rep's angle is judged by that angle instead (its displacement carries the drift
            # of offsets seen from a turning sensor; fidgets turn less than ROTATING_MIN_RAD).
            return []
        if float(stroke.t_s[0]) - self._last_end_s > ORDER_FORGET_S:
            # A new set: its order is learnt again.
            self._order = 0.0
            self._votes = {1.0: [], -1.0: []}
            self._voted = 0.0
            self._prev = None
            self._n_in_set = 0
        gap_s = float(stroke.t_s[0]) - self._last_end_s
        prev_returned = self._last_return_s < np.inf
        self._last_end_s = float(stroke.t_s[-1])
        dur_s = float(stroke.t_s[-1] - stroke.t_s[0])
        self._last_return_s = dur_s if stroke.returns() else np.inf
        if stroke.returns() and prev_returned and gap_s < STRIDE_GAP_S:
            # Out-and-back swings one after another with no rest between (the next began
            # within the margin of the last): strides of walking cut apart by the quick end
            # test, not reps (a lifter rests at least ~0.2 s at the rest position).
            return self.flush()
        if stroke.returns():
            order = self._current_order()
            halves = _halves(stroke)
            if order != 0.0 and halves is not None and _sign(halves[0]) != order:
                # Out and back in the wrong order for this set: the end of one rep and the
                # start of the next with no still pause at the rest position between them.
                return self._update_half(halves[0]) + self._update_half(halves[1])
            if halves is not None and self._hint == 0.0:
                # A whole rep in one movement shows the set's order directly: when a later rep
                # is split by a longer pause at the turn-around, it need not wait a stroke.
                self._order = _sign(halves[0])
            flushed = self.flush()
            parts = split_excursions(stroke)
            if (
                len(parts) >= 3
                and float(np.median([p.t_s[-1] - p.t_s[0] for p in parts])) < LOCOMOTION_MAX_CYCLE_S
            ):
                return flushed  # strides of walking, not reps
            return flushed + [r for part in parts if (r := measure_rep(part)) is not None]
        return self._update_half(stroke)

    def _update_half(self, stroke: Stroke) -> list[Rep]:
        """A stroke that goes one way (half a rep, or a set-up move)."""
        out: list[Rep] = []
        p = self._pending
        first_of_set = self._n_in_set == 0 or (p and p[0] is self._first)
        self._record(stroke)
        order = self._current_order()
        if order != 0.0:
            # Walk what is waiting plus this stroke: a half in the set's first direction
            # followed by one that pairs with it is a rep; anything else is dropped, except a
            # last first-direction half, which waits for its partner.
            seq = [*p, stroke]
            self._pending = []
            i = 0
            while i < len(seq):
                a = seq[i]
                if _sign(a) == order and i + 1 < len(seq) and _pairs(a, seq[i + 1]):
                    rep = measure_rep(_join(a, seq[i + 1]))
                    out += [] if rep is None else [rep]
                    i += 2
                    continue
                if i == len(seq) - 1:
                    self._pending = [a]  # the next stroke may complete it (or prove it stray)
                i += 1
            return out
        if not p:
            self._pending = [stroke]
            return out
        if not _pairs(p[-1], stroke):
            out += self.flush()
            self._pending = [stroke]
            return out
        if len(p) == 1 or (len(p) == 2 and first_of_set):
            # The set's first stroke may be a set-up move (bending to the bar): wait for one
            # more stroke, whose pause votes on the order, before pairing it.
            self._pending = [*p, stroke]
            return out
        a, b = p[-2], p[-1]
        if _pause(b, stroke) < _pause(a, b):
            self._pending = []
            rep = measure_rep(_join(b, stroke))
            first = b
        else:
            self._pending = [stroke]
            rep = measure_rep(_join(a, b))
            first = a
        if rep is not None:
            self._order = float(np.sign(first.net))
        return out if rep is None else out + [rep]

    def flush_due_s(self) -> float | None:
        """When tick() will act on what is pending (None if nothing is)."""
        return float(self._pending[-1].t_s[-1]) + PAIR_MAX_GAP_S if self._pending else None

    def tick(self, t_s: float) -> list[Rep]:
        """Emits a waiting pair once no third stroke can follow any more."""
        if len(self._pending) >= 2 and t_s - float(self._pending[-1].t_s[-1]) >= PAIR_MAX_GAP_S:
            return self.flush()
        if len(self._pending) == 1 and t_s - float(self._pending[0].t_s[-1]) >= PAIR_MAX_GAP_S:
            self._pending = []
        return []

    def flush(self) -> list[Rep]:
        p, self._pending = self._pending, []
        if len(p) >= 2:  # of three, the first was the set-up move
            rep = measure_rep(_join(p[-2], p[-1]))
            return [] if rep is None else [rep]
        return []

    def reset(self) -> None:
        self._pending = []
        self._order = 0.0
        self._votes = {1.0: [], -1.0: []}
        self._voted = 0.0
        self._prev = None
        self._n_in_set = 0


def _halves(s: Stroke) -> tuple[Stroke, Stroke] | None:
    """A returning stroke with one excursion, cut at its extreme; None if it has several."""
    if len(split_excursions(s)) != 1 or s.t_s.size < 5:
        return None
    x = s.angle_rad - s.angle_rad[0] if s.rotating else s.z_m - s.z_m[0]
    i = int(np.argmax(np.abs(x)))
    if i < 2 or i > x.size - 3:
        return None
    a = Stroke(s.t_s[: i + 1], s.v_mps[: i + 1], s.z_m[: i + 1], s.angle_rad[: i + 1])
    b = Stroke(s.t_s[i:], s.v_mps[i:], s.z_m[i:], s.angle_rad[i:])
    return a, b


def _sign(s: Stroke) -> float:
    return 1.0 if s.net > 0 else -1.0


def _active(s: Stroke) -> tuple[float, float]:
    mv = np.flatnonzero(np.abs(s.v_mps) > EDGE_FRACTION * float(np.abs(s.v_mps).max()))
    return float(s.t_s[mv[0]]), float(s.t_s[mv[-1]])


def _pause(a: Stroke, b: Stroke) -> float:
    return _active(b)[0] - _active(a)[1]


def _pairs(a: Stroke, b: Stroke) -> bool:
    if a.rotating != b.rotating:
        return False
    ratio = abs(b.net) / max(abs(a.net), 1e-9)
    return (
        a.net * b.net < 0
        and PAIR_RATIO[0] <= ratio <= PAIR_RATIO[1]
        and _pause(a, b) <= PAIR_MAX_GAP_S
    )


def split_excursions(s: Stroke) -> list[Stroke]:
    """Splits a returning period into its excursions when reps followed without a still pause."""
    if s.rotating:
        z = s.angle_rad - s.angle_rad[0]
        floor = ROTATING_MIN_RAD
    else:
        z = s.z_m - s.z_m[0]
        floor = ROM_MIN_M
    sign = 1.0 if z.max() >= -z.min() else -1.0
    e = sign * z
    fs = 1.0 / float(np.median(np.diff(s.t_s))) if s.t_s.size > 1 else 100.0
    peaks, _ = find_peaks(
        e,
        prominence=max(floor, 0.5 * float(e.max())),
        distance=max(1, int(SPLIT_MIN_DISTANCE_S * fs)),
    )
    if peaks.size < 2:
        return [s]
    cuts = [0]
    for a, b in zip(peaks[:-1], peaks[1:], strict=True):
        cuts.append(int(a + np.argmin(e[a : b + 1])))
    cuts.append(s.t_s.size)
    return [
        Stroke(s.t_s[i:j], s.v_mps[i:j], s.z_m[i:j], s.angle_rad[i:j])
        for i, j in zip(cuts[:-1], cuts[1:], strict=True)
        if j - i > 2
    ]


def _join(a: Stroke, b: Stroke) -> Stroke:
    dt = float(np.median(np.diff(a.t_s))) if a.t_s.size > 1 else 0.01
    gap_t = np.arange(a.t_s[-1] + dt, b.t_s[0] - 0.5 * dt, dt)
    t = np.concatenate((a.t_s, gap_t, b.t_s))
    v = np.concatenate((a.v_mps, np.zeros(gap_t.size), b.v_mps))
    z = np.concatenate((a.z_m, np.full(gap_t.size, a.z_m[-1]), b.z_m - b.z_m[0] + a.z_m[-1]))
    ang = np.concatenate(
        (
            a.angle_rad,
            np.full(gap_t.size, a.angle_rad[-1]),
            b.angle_rad - b.angle_rad[0] + a.angle_rad[-1],
        )
    )
    return Stroke(t, v, z, ang)


def measure_rep(s: Stroke) -> Rep | None:
    t, v, z = s.t_s, s.v_mps, s.z_m
    z0 = z[0]
    i_top = int(np.argmax(z))
    rest_at_top = (z.max() - z0) < (z0 - z.min())
    if rest_at_top:  # squat, bench: down first, then up
        i_bot = int(np.argmin(z))
        i_top = i_bot + int(np.argmax(z[i_bot:]))
    else:  # curl, deadlift: up first, then down
        i_bot = int(np.argmin(z[: i_top + 1]))
    if i_top <= i_bot:
        return None
    vc = v[i_bot : i_top + 1]
    peak = float(vc.max())
    if peak < MIN_PEAK_VELOCITY_MPS:
        return None
    # The concentric phase is the run of upward velocity around its peak, measured between the
    # crossings of a fraction of the peak (robust to the noise and residual drift near zero),
    # then extended to the whole phase assuming smooth (minimum-jerk-like) starts and stops.
    ip = int(np.argmax(vc))
    low = vc <= EDGE_FRACTION * peak
    before = np.flatnonzero(low[:ip])
    after = np.flatnonzero(low[ip:])
    a0 = int(before[-1]) + 1 if before.size else 0
    a1 = ip + int(after[0]) - 1 if after.size else vc.size - 1
    c0, c1 = i_bot + a0, i_bot + a1
    moving = np.flatnonzero(np.abs(v) > EDGE_FRACTION * float(np.abs(v).max()))
    r0, r1 = int(moving[0]), int(moving[-1])
    rom = float(z[i_top] - z[i_bot])
    if rom < (ROM_MIN_ROTATING_M if s.rotating else ROM_MIN_M) or c1 <= c0:
        return None
    start, end = float(t[r0]), float(t[r1])
    inner_s = float(t[c1] - t[c0])
    conc = inner_s / EDGE_DURATION_SHARE
    pad = 0.5 * (conc - inner_s)
    cs, ce = float(t[c0]) - pad, float(t[c1]) + pad
    mean_v = float(z[c1] - z[c0]) / inner_s * EDGE_DURATION_SHARE / EDGE_DISPLACEMENT_SHARE
    return Rep(
        start_s=start,
        end_s=end,
        concentric_start_s=cs,
        concentric_end_s=ce,
        mean_concentric_velocity_mps=mean_v,
        peak_velocity_mps=peak,
        rom_m=rom,
        concentric_s=conc,
        eccentric_s=max(0.0, (end - start) - conc),
        time_under_tension_s=end - start,
    )
