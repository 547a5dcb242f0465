"""Where each rep found by ``cycles`` truly starts and ends, and its measurement.

``cycles`` finds a rep's rest-side bounds on a low-passed 25 Hz signal, which for a limb that
translates without turning follows the acceleration rather than the position: the limb may stop
before or after them. ``RepBounds`` keeps the last REP_RING_S of full-rate samples and moves each
bound to a zero-velocity instant nearby: the still sample nearest it (a pause at rest), else the
limb's turn-around. Between the two the rep is measured (``reps.measure_rep``).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from tremorlift.analysis.cycles import Cycle
from tremorlift.analysis.dsp import principal_axis
from tremorlift.analysis.reps import Rep, measure_rep

# Full-rate samples kept for measuring reps: a set is recognised up to 20 s late, and its first
# reps are measured then.
REP_RING_S = 40.0
# A rep's end waits this share of a period (within SETTLE_MIN_S-SETTLE_MAX_S) for the limb to
# come to rest before it is taken at the turn-around into the next rep.
SETTLE_PERIODS = 0.3
SETTLE_MIN_S = 0.2
SETTLE_MAX_S = 1.0
# A limb whose angular rate peaks above this turns with the rep: its reversals are zeros of the
# angular rate about its main axis (else of its vertical velocity).
TURNING_RATE_RADPS = 0.5
# A rep's bound lies at least this share of a period from its turn (a pause at the turn, the
# chest in a bench press, is not the rest).
TURN_CLEARANCE_PERIODS = 0.2


def rep_columns(
    t: np.ndarray, a_vert: np.ndarray, gyro: np.ndarray, still: np.ndarray, a_lin: np.ndarray
) -> np.ndarray:
    """The full-rate columns reps are measured on, one row per sample: t, vertical
    acceleration, gyro (3), still flag, |linear acceleration| (``RepBounds`` and
    ``first_rep.FirstRepWatch`` keep them)."""
    return np.column_stack((t, a_vert, gyro, still, a_lin))


class RepBounds:
    """Fed every block's full-rate columns (``push``) and the reps ``cycles`` found (``add``);
    ``settle`` returns the reps whose end has settled, measured, in order; ``finish`` the rest
    at the end of the data."""

    def __init__(self, sample_rate_hz: float, concentric_sign: float) -> None:
        self.fs = float(sample_rate_hz)
        self._concentric_sign = concentric_sign
        self._ring: list[np.ndarray] = []  # blocks of (t, vertical accel, gyro x3, still, |a_lin|)
        self._ring_n = 0
        self._pending: list[Cycle] = []  # reps found, waiting for their end to settle
        self._last_bound: tuple[int, float] | None = None  # (set, end) of the last rep measured

    def add(self, cycles: list[Cycle]) -> None:
        self._pending += cycles

    def finish(self, cycles: list[Cycle]) -> list[tuple[float, Rep, int]]:
        """The last reps ``cycles`` found (its ``finish``), and every rep still pending."""
        self._pending += cycles
        return self.settle(np.inf)

    def push(self, columns: np.ndarray) -> None:
        """A block of ``rep_columns``, kept for measuring reps."""
        self._ring.append(columns)
        self._ring_n += columns.shape[0]
        keep_n = int(REP_RING_S * self.fs)
        while self._ring and self._ring_n - self._ring[0].shape[0] >= keep_n:
            self._ring_n -= self._ring.pop(0).shape[0]

    def _ring_array(self) -> np.ndarray:
        ring = np.concatenate(self._ring) if len(self._ring) > 1 else self._ring[0]
        self._ring, self._ring_n = [ring], ring.shape[0]
        return ring

    def settle(self, t_now: float) -> list[tuple[float, Rep, int]]:
        """Measures the reps whose end has settled, in order.

        A rep's rest-side bound comes from a low-passed signal that need not be position-like
        (for a limb that translates without turning it follows the acceleration), so it can fall
        before or after the limb truly stops. The end is therefore the still sample nearest the
        bound within ``SETTLE_PERIODS`` (a pause at rest) or, when the limb goes straight into the
        next rep, the turn-around nearest the bound (see ``_turnaround``). A rep's start is the
        previous rep's end in the same set, or for a set's first rep found the same way. Which
        sample ends a rep does not depend on how the stream was cut; only when it is known does.
        """
        out: list[tuple[float, Rep, int]] = []
        while self._pending and self._ring:
            c = self._pending[0]
            ring = self._ring_array()
            t, still = ring[:, 0], ring[:, 5] > 0.5
            wait_s = min(max(SETTLE_PERIODS * c.period_s, SETTLE_MIN_S), SETTLE_MAX_S)
            if not c.by_stillness and t_now < c.end_s + wait_s:
                k0, k1 = np.searchsorted(t, [c.end_s, t_now])
                if not still[k0 : k1 + 1].any():
                    break  # the limb may still stop, or turn, within the wait
            self._pending.pop(0)
            start = c.start_s
            last = self._last_bound
            if last is not None and last[0] == c.set_index and abs(last[1] - start) < c.period_s:
                start = last[1]
            else:
                start = _bound(ring, start, c.turn_s, c.period_s, wait_s)
            end, known = c.end_s, c.found_s
            if not c.by_stillness:
                end = _bound(ring, c.end_s, c.turn_s, c.period_s, wait_s, from_s=start)
                known = max(known, min(end, c.end_s + wait_s))
            i0, i1 = np.searchsorted(t, [start, end])
            seg = ring[i0 : i1 + 1]
            rep = measure_rep(
                seg[:, 0], seg[:, 1], seg[:, 2:5], self._concentric_sign, a_lin_mps2=seg[:, 6]
            )
            self._last_bound = (c.set_index, end)
            if rep is not None:
                out.append((known, rep, c.set_index))
        return out


def _bound(
    ring: np.ndarray,
    b_s: float,
    turn_s: float,
    period_s: float,
    wait_s: float,
    from_s: float | None = None,
) -> float:
    """A zero-velocity instant for a rep bound found near ``b_s``: the still sample nearest
    it within ``wait_s`` (a pause at rest), or else the limb's turn-around (``_turnaround``;
    for an end, the first after the turn, integrating from the rep's start ``from_s``).
    Only samples on the bound's side of the rep's turn, a fifth of a period away from it,
    count (a pause at the turn, the chest in a bench press, is not the rest)."""
    t, still = ring[:, 0], ring[:, 5] > 0.5
    lo, hi = b_s - wait_s, b_s + wait_s
    clear = TURN_CLEARANCE_PERIODS * period_s
    if b_s >= turn_s:
        lo = max(lo, turn_s + clear)
    else:
        hi = min(hi, turn_s - clear)
    k0, k1 = np.searchsorted(t, [lo, hi])
    quiet = np.flatnonzero(still[k0:k1])
    if quiet.size:
        return float(t[k0 + quiet[int(np.argmin(np.abs(t[k0 + quiet] - b_s)))]])
    turn = _turnaround(ring, b_s, turn_s, period_s, wait_s, from_s)
    if turn is None or (turn - turn_s) * (b_s - turn_s) <= 0:
        return b_s  # none, or one on the far side of the turn: that is the turn itself
    return turn


def _turnaround(
    ring: np.ndarray,
    b_s: float,
    turn_s: float,
    period_s: float,
    reach_s: float,
    from_s: float | None = None,
) -> float | None:
    """Where the limb reverses at its rest side near ``b_s``: a zero of the angular rate about
    its main axis when it turns, else a zero of its vertical velocity. Given ``from_s`` (a rep's
    start, where the velocity is zero), the velocity is integrated from there and the first
    reversal after the turn is taken; without it, the velocity is integrated from half a period
    before and detrended, and the reversal nearest ``b_s`` is taken. Only reversals of the right
    direction count: if the limb is lower (or turned less) at the turn than at the start, it
    rests high and the bound is where it starts back down. None if there is none."""
    t = ring[:, 0]
    lo = from_s if from_s is not None else min(b_s, turn_s) - 0.5 * period_s
    k0, k1 = np.searchsorted(t, [lo, max(b_s, turn_s) + reach_s])
    seg = ring[k0:k1]
    if seg.shape[0] < 8:
        return None
    dt = float(np.median(np.diff(seg[:, 0])))
    gyro = seg[:, 2:5]
    if float(np.linalg.norm(gyro, axis=1).max()) >= TURNING_RATE_RADPS:
        x = gyro @ principal_axis(gyro)
    else:
        x = np.cumsum(seg[:, 1]) * dt
        if from_s is None:
            x = signal.detrend(x)
    pos = np.cumsum(x) * dt
    i_ref = 0 if from_s is not None else int(np.searchsorted(seg[:, 0], b_s))
    i_turn = int(np.searchsorted(seg[:, 0], turn_s))
    i_ref, i_turn = min(i_ref, seg.shape[0] - 1), min(i_turn, seg.shape[0] - 1)
    rising = pos[i_turn] > pos[i_ref]  # at rest the limb is at a minimum: x goes - to +
    neg = np.signbit(x)
    cross = np.flatnonzero(neg[:-1] & ~neg[1:]) if rising else np.flatnonzero(~neg[:-1] & neg[1:])
    ts = seg[cross, 0]
    if from_s is not None:
        after = ts[(ts > turn_s + TURN_CLEARANCE_PERIODS * period_s) & (ts <= b_s + reach_s)]
        return float(after[0]) if after.size else None
    near = np.flatnonzero(np.abs(ts - b_s) <= reach_s)
    if near.size == 0:
        return None
    return float(ts[near[int(np.argmin(np.abs(ts[near] - b_s)))]])
