"""The first rep of a set, told as soon as it ends, before the set itself is recognised.

A set is recognised by its rhythm (``cycles``), which needs two or three reps: alone, rep 1
would reach the lifter seconds late. ``FirstRepWatch`` looks at one movement at a time instead:
a limb at rest (calm for ``REST_MIN_S``), an excursion away from the rest position, and a return
most of the way back ending where the limb stops or turns to go again. That is what rep 1 of
any set looks like from a wrist, forearm, thigh or shank (down and up for a squat or bench, up
and down for a curl or deadlift). The movement is measured as any rep is (``reps.measure_rep``)
and announced as a ``rep_provisional`` event.

Many movements between sets look the same (re-racking, a sip of water), so the claim is
provisional: once a set is recognised it stands or is replaced by the set's own reps (the
``set_start`` and ``rep`` events that follow), and if no set follows within ``WITHDRAW_S``, or
a hold begins, it is withdrawn (``rep_withdrawn``). The final analysis never reads it.

The watch looks at the data on a fixed grid of times (every ``CHECK_S`` of the stream), so what
it finds does not depend on how the stream is cut into blocks.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from tremorlift.analysis.bounds import TURNING_RATE_RADPS
from tremorlift.analysis.dsp import StreamingBoxcar, principal_axis
from tremorlift.analysis.reps import Rep, measure_rep

CHECK_S = 0.1  # the movement in progress is looked at this often (stream time)
# Calm: a limb that does not lift. The engine's stillness flag is stricter than a wrist holding
# a dumbbell ready to lift ever is; the watch's own is a 0.2 s mean of the angular rate and the
# vertical acceleration, each below a fraction of what a rep shows.
CALM_WINDOW_S = 0.2
CALM_GYRO_RADPS = 0.35
CALM_ACCEL_MPS2 = 0.5
# A slow eccentric at steady speed has neither acceleration nor rotation: calm also needs the
# vertical speed, integrated with a leak (so offsets do not pile up), below this.
CALM_SPEED_MPS = 0.2
CALM_LEAK_S = 1.5
REST_MIN_S = 0.6  # a rep 1 starts from rest: the limb calm at least this long before it
MAX_REP_S = 6.0  # a movement longer than this, still going, is not one rep
MIN_REP_S = 0.6  # nor is one shorter than this, there and back
MIN_PHASE_S = 0.25  # each way (away, back) lasts at least this
MIN_TURN_RAD = 0.5  # excursion of a limb that turns with the lift (about 30 degrees)
MIN_RISE_M = 0.12  # excursion of one that translates (vertical travel)
RETURN_SHARE = 0.8  # back at least this share of the excursion
WITHDRAW_S = 12.0  # no set recognised this long after the movement ended: it was not a set
END_STILL_S = 0.1  # stillness this long after the return ends the movement
RING_S = REST_MIN_S + MAX_REP_S + 1.0


class FirstRepWatch:
    """Fed the same full-rate columns as ``RepBounds`` (``bounds.rep_columns``), and told whether a set is
    open (``check``); returns ``("rep_provisional", Rep)`` when a lone movement that looks like
    a first rep has ended and ``("rep_withdrawn", None)`` when no set followed it."""

    def __init__(self, sample_rate_hz: float, concentric_sign: float) -> None:
        self.fs = float(sample_rate_hz)
        self._sign = concentric_sign
        self._blocks: list[np.ndarray] = []  # rep_columns, with calm as the still flag
        self._ring = np.zeros((0, 7))  # the blocks, joined when looked at
        self._next_check_s: float | None = None
        self._claimed_end_s: float | None = None  # the provisional rep awaiting a set
        self._after_s = -np.inf  # only movements starting after this are looked at
        self._calm = StreamingBoxcar(int(round(CALM_WINDOW_S * self.fs)), 2)
        leak = float(np.exp(-1.0 / (CALM_LEAK_S * self.fs)))
        self._leak_ba = (np.array([1.0 / self.fs]), np.array([1.0, -leak]))
        self._leak_state = np.zeros(1)

    def push(self, columns: np.ndarray) -> None:
        """A block of ``bounds.rep_columns``."""
        if columns.shape[0] == 0:
            return
        a_vert, gyro = columns[:, 1], columns[:, 2:5]
        level = self._calm(np.column_stack((np.linalg.norm(gyro, axis=1), np.abs(a_vert))))
        speed, self._leak_state = signal.lfilter(*self._leak_ba, a_vert, zi=self._leak_state)
        calm = (
            (level[:, 0] < CALM_GYRO_RADPS)
            & (level[:, 1] < CALM_ACCEL_MPS2)
            & (np.abs(speed) < CALM_SPEED_MPS)
        )
        block = columns.copy()
        block[:, 5] = calm | (columns[:, 5] > 0.5)
        self._blocks.append(block)

    def _join(self) -> None:
        if self._blocks:
            ring = np.vstack([self._ring, *self._blocks])
            self._blocks = []
            self._ring = ring[np.searchsorted(ring[:, 0], ring[-1, 0] - RING_S) :]

    def set_recognised(self, t_s: float) -> None:
        """A set was recognised (its reps are told from now) or has ended: the claim, if any, is
        settled, and nothing before ``t_s`` (the set's first rep, or its last) is looked at
        again."""
        self._claimed_end_s = None
        self._after_s = max(self._after_s, t_s)

    def withdraw(self) -> bool:
        """Take back the claim, if any (a hold began: the movement was getting into it)."""
        claimed, self._claimed_end_s = self._claimed_end_s is not None, None
        return claimed

    def check(self, set_open: bool) -> list[tuple[str, Rep | None]]:
        """The grid times passed since the last call, in order."""
        if not self._blocks:
            return []
        t_last = float(self._blocks[-1][-1, 0])
        if self._next_check_s is None:
            self._next_check_s = (np.floor(self._blocks[0][0, 0] / CHECK_S) + 1) * CHECK_S
        if self._next_check_s > t_last:
            return []
        self._join()
        out: list[tuple[str, Rep | None]] = []
        while self._next_check_s <= t_last:
            now = self._next_check_s
            self._next_check_s = round(now + CHECK_S, 9)
            if set_open:
                self._claimed_end_s = None
                continue
            if self._claimed_end_s is not None:
                if now - self._claimed_end_s >= WITHDRAW_S:
                    self._claimed_end_s = None
                    out.append(("rep_withdrawn", None))
                continue
            rep = self._look(now)
            if rep is not None:
                self._claimed_end_s = rep.end_s
                self._after_s = rep.end_s
                out.append(("rep_provisional", rep))
        return out

    # ------------------------------------------------------------------ one movement
    def _look(self, now: float) -> Rep | None:
        ring = self._ring[: np.searchsorted(self._ring[:, 0], now, side="right")]
        t, still = ring[:, 0], ring[:, 5] > 0.5
        i0 = _movement_start(t, still, self._after_s)
        if i0 is None or now - t[i0] > MAX_REP_S + END_STILL_S:
            return None
        seg = ring[i0:]
        end = _end_of_return(seg, self.fs)
        if end is None:
            return None
        seg = seg[: end + 1]
        if seg[-1, 0] - seg[0, 0] < MIN_REP_S:
            return None
        rep = measure_rep(seg[:, 0], seg[:, 1], seg[:, 2:5], self._sign, a_lin_mps2=seg[:, 6])
        if rep is None or rep.mean_concentric_velocity_mps <= 0.0:
            return None
        return rep


def _movement_start(t: np.ndarray, still: np.ndarray, after_s: float) -> int | None:
    """Index of the last calm sample before the movement in progress, if that calm lasted
    ``REST_MIN_S`` and the movement began after ``after_s``; None at rest or without one."""
    moving = np.flatnonzero(~still)
    if moving.size == 0:
        return None
    # The still runs before the last moving sample, as [first, last] indices.
    edges = np.diff(np.concatenate(([0], still[: moving[-1]].astype(np.int8), [0])))
    firsts, lasts = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    # The movement in progress began after the last rest (shorter calm, a slow turn at the
    # bottom, is part of it).
    rests = np.flatnonzero(t[lasts] - t[firsts] >= REST_MIN_S)
    if rests.size == 0:
        return None
    j = int(lasts[rests[-1]])
    return None if t[j] <= after_s else j


def _end_of_return(seg: np.ndarray, fs: float) -> int | None:
    """Index where a there-and-back movement from rest (``seg[0]``) ended: the limb calm again
    for ``END_STILL_S``, or turning to go out again, after coming back ``RETURN_SHARE`` of its
    excursion. The excursion is the limb's angle about its main axis when it turns with the lift,
    else (or when that angle stays small: a forearm upright under a press) its vertical travel.
    None while it has not (yet)."""
    dt = 1.0 / fs
    gyro = seg[:, 2:5]
    if seg.shape[0] >= 3 and float(np.linalg.norm(gyro, axis=1).max()) >= TURNING_RATE_RADPS:
        end = _returned(seg, gyro @ principal_axis(gyro), MIN_TURN_RAD, fs)
        if end is not None:
            return end
    return _returned(seg, np.cumsum(seg[:, 1]) * dt, MIN_RISE_M, fs)


def _returned(seg: np.ndarray, rate: np.ndarray, least: float, fs: float) -> int | None:
    """``_end_of_return`` on one signal: ``rate`` (angular rate, or vertical velocity) and the
    excursion of its integral that counts (``least``)."""
    pos = np.cumsum(rate) / fs
    i_turn = int(np.argmax(np.abs(pos)))
    excursion = float(pos[i_turn])
    if abs(excursion) < least or seg[i_turn, 0] - seg[0, 0] < MIN_PHASE_S:
        return None
    back = np.flatnonzero(np.abs(pos[i_turn:]) <= (1.0 - RETURN_SHARE) * abs(excursion))
    if back.size == 0:
        return None
    i_back = i_turn + int(back[0])
    # From there, the first stop: the rate turning away from rest, or calm for END_STILL_S
    # (the movement ended where that calm began).
    turned = np.flatnonzero(rate[i_back:] * np.sign(excursion) > 0.0)
    n_calm = max(1, int(round(END_STILL_S * fs)))
    calm_sum = np.cumsum(np.concatenate(([0], seg[i_back:, 5] > 0.5)))
    settled = np.flatnonzero(calm_sum[n_calm:] - calm_sum[:-n_calm] == n_calm)
    ends = [i_back + int(turned[0])] if turned.size else []
    if settled.size:
        ends.append(i_back + int(settled[0]))
    if not ends:
        return None
    end = min(ends)
    return end if seg[end, 0] - seg[i_turn, 0] >= MIN_PHASE_S else None
