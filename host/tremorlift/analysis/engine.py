"""The streaming analysis engine: one per sensor, fed blocks of samples, causal.

``collect`` feeds it live and ``analyze`` feeds it a recording; both get the same results from
the same samples because the engine does not depend on how the samples are split into blocks
(leftovers shorter than one fusion group wait for the next block). Memory is bounded: filter
states, a few seconds of ring buffers, one movement period (capped) and per-set summaries.

The engine coordinates its helpers: ``GravityTracker`` (orientation), ``CycleTracker`` (sets
and reps by periodicity) and ``measure_rep`` (velocity), ``TremorSpectra`` (tremor windows), and
the trackers of tremor episodes (``episodes``), holds (``holds``) and recovery (``recovery``). It
feeds them, collects their events and keeps the dynamic sets' bookkeeping itself.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from scipy import signal

from tremorlift.analysis import PLACEMENTS
from tremorlift.analysis import alerts as vl_alerts
from tremorlift.analysis.contract import AlertKind, AlertLevel, EngineResult
from tremorlift.analysis.cycles import Cycle, CycleTracker
from tremorlift.analysis.dsp import (
    StreamingBoxcar,
    StreamingSos,
    principal_axis,
    run_lengths,
    runs,
)
from tremorlift.analysis.episodes import (
    BASELINE_FLOOR_MPS2,
    MAX_WINDOWS_KEPT,
    TREMOR_INDEX_FACTOR,
    TREMOR_MIN_RMS_MPS2,
    EpisodeTracker,
)
from tremorlift.analysis.events import Event, alert_event
from tremorlift.analysis.holds import HoldStep, HoldTracker, was_setup, without_alerts_of
from tremorlift.analysis.orientation import GravityTracker
from tremorlift.analysis.recovery import RecoveryTracker
from tremorlift.analysis.reps import (
    FAST_STILL_ACCEL_MPS2,
    FAST_STILL_GYRO_RADPS,
    FAST_STILL_HOLD_S,
    FAST_STILL_WINDOW_S,
    STILL_GYRO_RADPS,
    STILL_JERK_MPS3,
    Rep,
    concentric_sign,
    measure_rep,
)
from tremorlift.analysis.tremor import (
    HOP_S,
    MOVING_TREMOR_BAND_HZ,
    SWAY_BAND_HZ,
    TREMOR_BAND_HZ,
    WINDOW_S,
    TremorSpectra,
    TremorWindows,
)

MIN_SAMPLE_RATE_HZ = 25.0  # reps and sets are found on a 25 Hz grid
TREMOR_MIN_RATE_HZ = 50.0  # tremor up to 15 Hz needs margin below Nyquist
STILL_LOWPASS_HZ = 2.0
TREMOR_HIGHPASS_HZ = 0.5
SET_GAP_S = 15.0  # no rep for this long ends a set
MIN_SET_REPS = 2
REP_RING_S = 40.0  # full-rate samples kept for measuring reps (a set is found up to 20 s late)
SETTLE_PERIODS = 0.3  # a rep's end waits this share of a period for the limb to come to rest
SETTLE_MIN_S = 0.2
SETTLE_MAX_S = 1.0
TURNING_RATE_RADPS = 0.5  # a limb whose angular rate peaks above this turns with the rep
TURN_CLEARANCE_PERIODS = 0.2  # a rep's bound lies at least this far from its turn
GRAVITY_QUIET_S = 0.2
OFFSET_FORGET = 0.98  # weight of older postures in the accelerometer-offset fit
OFFSET_RIDGE = 0.5  # pulls unobserved offset directions to zero
OFFSET_MAX_MPS2 = 1.5


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


class Engine:
    """Streaming analysis of one six-axis sensor; see docs/analysis-output.md for ``result()``."""

    def __init__(
        self,
        sample_rate_hz: float,
        *,
        exercise: str | None = None,
        goal: str | None = None,
        vl_threshold_pct: float | None = None,
        placement: str | None = None,
        alerts_enabled: bool = True,
    ) -> None:
        if not np.isfinite(sample_rate_hz) or sample_rate_hz < MIN_SAMPLE_RATE_HZ:
            raise ValueError(
                f"sample rate {sample_rate_hz:.1f} Hz is below {MIN_SAMPLE_RATE_HZ:.0f} Hz needed to count reps"
            )
        if placement is not None and placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
        self.fs = float(sample_rate_hz)
        self.tremor_analysed = self.fs >= TREMOR_MIN_RATE_HZ
        self.exercise = exercise
        self.placement = placement
        self.goal = goal
        self.alerts_enabled = alerts_enabled  # the one master switch for every alert path
        self.threshold_pct = vl_alerts.threshold_pct(goal, vl_threshold_pct)
        self._policy = vl_alerts.VelocityLossPolicy(self.threshold_pct, enabled=alerts_enabled)
        self._gravity = GravityTracker(self.fs)
        lp = signal.butter(2, STILL_LOWPASS_HZ, btype="lowpass", fs=self.fs, output="sos")
        hp = signal.butter(2, TREMOR_HIGHPASS_HZ, btype="highpass", fs=self.fs, output="sos")
        self._lp = StreamingSos(lp, 6)
        self._hp = StreamingSos(hp, 6)
        # At low rates the still test keeps at least 3 samples of mean and 2 of hold (one calm
        # sample can be the instant a moving limb's acceleration crosses zero).
        self._box = StreamingBoxcar(max(3, int(round(FAST_STILL_WINDOW_S * self.fs))), 4)
        self._quiet_hold_n = max(2, int(round(FAST_STILL_HOLD_S * self.fs)))
        self._quiet_run = 0
        if self.tremor_analysed:
            self._bp_tremor = StreamingSos(
                signal.butter(4, TREMOR_BAND_HZ, btype="bandpass", fs=self.fs, output="sos"), 3
            )
            self._bp_moving = StreamingSos(
                signal.butter(4, MOVING_TREMOR_BAND_HZ, btype="bandpass", fs=self.fs, output="sos"),
                3,
            )
            self._bp_sway = StreamingSos(
                signal.butter(4, SWAY_BAND_HZ, btype="bandpass", fs=self.fs, output="sos"), 3
            )
            self._spectra = TremorSpectra(self.fs, TREMOR_MIN_RMS_MPS2, 0.5)
        self._cycles = CycleTracker(self.fs)
        self._concentric_sign = concentric_sign(exercise)
        self._ring: list[np.ndarray] = []  # blocks of (t, vertical accel, gyro x3, still)
        self._ring_n = 0
        self._pending: list[Cycle] = []  # reps found, waiting for their end to settle
        self._last_bound: tuple[int, float] | None = None  # (set, end) of the last rep measured
        self._set_index = -1
        self._prev_lp: np.ndarray | None = None
        self._g0 = 9.80665
        self._quiet_len = 0
        self._quiet_sum = 0.0
        self._quiet_up = np.zeros(3)
        self._quiet_cnt = 0
        self._u0 = np.array([0.0, 0.0, 1.0])
        self._acc_offset = np.zeros(3)
        self._fit_xx = np.zeros((4, 4))
        self._fit_xy = np.zeros(4)
        self._tq: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # held for the tremor path
        self._tq_n = 0
        self._leftover_t = np.zeros(0)
        self._leftover_x = np.zeros((0, 6))
        self._t0: float | None = None
        self._t_last = -np.inf
        # Results (bounded by the session's content, not its length).
        self._sets: list[dict[str, Any]] = []
        self._alerts: list[dict[str, Any]] = []
        # Dynamic set in progress.
        self._set: dict[str, Any] | None = None
        self._set_windows: list[tuple[float, float]] = []
        self._set_tremor_high_reps = 0
        self._set_tremor_warned = False
        self._last_rep_end_s = -np.inf
        self._best_set1_mps: float | None = None
        # Tremor episodes (with the baseline and exertion), holds and recovery.
        self._tremor = EpisodeTracker()
        self._holds = HoldTracker(exercise)
        self._recovery = RecoveryTracker()

    # ------------------------------------------------------------------ streaming API
    def feed(self, t_s: np.ndarray, accel_mps2: np.ndarray, gyro_radps: np.ndarray) -> list[Event]:
        t = np.asarray(t_s, dtype=float).reshape(-1)
        acc = np.asarray(accel_mps2, dtype=float).reshape(-1, 3)
        gyr = np.asarray(gyro_radps, dtype=float).reshape(-1, 3)
        if not (t.size == acc.shape[0] == gyr.shape[0]):
            raise ValueError("t_s, accel_mps2 and gyro_radps must have the same number of samples")
        if t.size == 0:
            return []
        if self._t0 is None:
            self._t0 = float(t[0])
        x = np.hstack((acc, gyr))
        t_all = np.concatenate((self._leftover_t, t - self._t0))
        x_all = np.vstack((self._leftover_x, x))
        g = self._gravity.group
        n_use = (t_all.size // g) * g
        self._leftover_t, self._leftover_x = t_all[n_use:], x_all[n_use:]
        if n_use == 0:
            return []
        return self._process(t_all[:n_use], x_all[:n_use])

    def finish(self) -> list[Event]:
        events: list[Event] = []
        self._pending += self._cycles.finish()
        for _, rep, set_index in self._settle(np.inf):
            self._on_rep(rep, set_index, events)
        t_end = self._t_last if np.isfinite(self._t_last) else 0.0
        self._collect(self._tremor.finish(), events)
        self._on_hold_step(self._holds.finish(t_end, self._t_last), events)
        if self._set is not None:
            self._end_set(events)
        self._collect(self._recovery.finish(), events)
        return events

    def result(self) -> EngineResult:
        baseline = self._tremor.baseline_mps2
        result: dict[str, Any] = {
            "sample_rate_hz": round(self.fs, 3),
            "placement": self.placement,
            "velocity_loss_threshold_pct": self.threshold_pct,
            "duration_s": round(float(self._t_last), 3) if np.isfinite(self._t_last) else 0.0,
            "tremor": "analysed"
            if self.tremor_analysed
            else f"not analysed: {self.fs:.1f} Hz is below {TREMOR_MIN_RATE_HZ:.0f} Hz",
            "tremor_baseline_rms_mps2": None if baseline is None else round(baseline, 4),
            "sets": [dict(s) for s in self._sets],
            "tremor_episodes": [dict(e) for e in self._tremor.episodes],
            "alerts": [dict(a) for a in self._alerts],
        }
        return cast(EngineResult, result)  # the keys of docs/analysis-output.md

    # ------------------------------------------------------------------ per block
    def _process(self, t: np.ndarray, x: np.ndarray) -> list[Event]:
        events: list[Event] = []
        acc, gyr = x[:, 0:3], x[:, 3:6]
        self._t_last = float(t[-1])
        up, gyr_c = self._gravity.update(acc, gyr)
        lp = self._lp(np.hstack((acc, gyr_c)))
        # Still = little jerk, little rotation and the still magnitude of gravity: a smooth lift
        # always has jerk or acceleration (acceleration peaks where jerk crosses zero), while a
        # slow phase near constant speed would pass an acceleration-only test.
        prev = self._prev_lp if self._prev_lp is not None else lp[0, 0:3]
        jerk = np.diff(np.vstack((prev[None, :], lp[:, 0:3])), axis=0) * self.fs
        self._prev_lp = lp[-1, 0:3].copy()
        quiet = (
            np.linalg.norm(jerk, axis=1) / STILL_JERK_MPS3
            + np.linalg.norm(lp[:, 3:6], axis=1) / STILL_GYRO_RADPS
        )
        a_norm = np.linalg.norm(lp[:, 0:3], axis=1)
        g0 = self._gravity_reference(quiet < 0.5, a_norm, up)
        a_vert = np.einsum("ij,ij->i", acc, up) - g0
        box = self._box(np.column_stack((a_vert, gyr_c)))
        calm = (np.abs(box[:, 0]) < FAST_STILL_ACCEL_MPS2) & (
            np.linalg.norm(box[:, 1:4], axis=1) < FAST_STILL_GYRO_RADPS
        )
        # Calm for FAST_STILL_HOLD_S in a row (carried across blocks).
        run, self._quiet_run = run_lengths(calm, self._quiet_run)
        fast_quiet = run >= self._quiet_hold_n
        a_lin = np.linalg.norm(acc - up * g0[:, None], axis=1)
        self._ring_push(t, a_vert, gyr_c, fast_quiet, a_lin)
        # Reps are handled in time order (when they were known), so results do not depend on
        # how the stream was cut into blocks.
        self._pending += self._cycles.update(t, acc, gyr_c, fast_quiet)
        reps = self._settle(self._t_last)
        if not self.tremor_analysed:
            for found_s, rep, set_index in reps:
                self._advance(found_s, events)
                self._on_rep(rep, set_index, events)
            self._advance(self._t_last, events)
            return events
        # The tremor path only yields a window every hop (0.5 s): small live blocks wait here
        # and are filtered together once a window is complete (causal filters with carried
        # state give the same samples however the stream is cut).
        self._tq.append((t, x, up))
        self._tq_n += t.size
        if self._tq_n < self._spectra.samples_to_next_window():
            for _, rep, set_index in reps:
                self._on_rep(rep, set_index, events)
            return events
        t = np.concatenate([q[0] for q in self._tq])
        x = np.concatenate([q[1] for q in self._tq])
        up = np.concatenate([q[2] for q in self._tq])
        acc = x[:, 0:3]
        self._tq, self._tq_n = [], 0
        hp = self._hp(x)
        bp_t = self._bp_tremor(acc)
        bp_s = self._bp_sway(acc)
        bp_m = self._bp_moving(acc)
        power = np.column_stack(
            (
                np.einsum("ij,ij->i", bp_t, bp_t),
                np.einsum("ij,ij->i", bp_s, bp_s),
                np.einsum("ij,ij->i", bp_m, bp_m),
            )
        )
        windows = self._spectra.update(t, hp[:, 0:3], hp[:, 3:6], power)
        idx = np.clip(np.searchsorted(t, windows.t_end_s), 0, t.size - 1)
        self._on_windows(windows, up[idx], reps, events)
        return events

    def _gravity_reference(
        self, quiet: np.ndarray, a_norm: np.ndarray, up: np.ndarray
    ) -> np.ndarray:
        """Per sample, what a still accelerometer would read in the current orientation.

        Offsets and scale errors make that depend on posture: |a| ~ G + b . up (b: the offset in
        sensor axes). The reference is the mean magnitude of the latest quiet stretch (from 0.2 s
        into it), plus b . (up - up of that stretch), with b fitted over the session's quiet
        postures. So a limb that rotates during a lift (curl, thigh in a squat) does not see the
        offset change as vertical acceleration. Quiet stretches carry across blocks.
        """
        n_min = int(GRAVITY_QUIET_S * self.fs)
        skip = n_min // 2
        g0 = np.empty(a_norm.size)
        starts, stops, vals = runs(quiet)
        for a, b, v in zip(starts.tolist(), stops.tolist(), vals.tolist(), strict=True):
            if not v:
                self._end_quiet_stretch()
                g0[a:b] = self._g0 + (up[a:b] - self._u0) @ self._acc_offset
                continue
            pos = self._quiet_len + np.arange(b - a)  # position inside the quiet stretch
            use = pos >= skip
            csum = self._quiet_sum + np.cumsum(np.where(use, a_norm[a:b], 0.0))
            cup = self._quiet_up + np.cumsum(np.where(use[:, None], up[a:b], 0.0), axis=0)
            ccnt = self._quiet_cnt + np.cumsum(use)
            ready = pos >= n_min
            first_ready = int(np.argmax(ready)) if ready.any() else b - a
            # Before the stretch is long enough the previous reference holds.
            g0[a : a + first_ready] = (
                self._g0 + (up[a : a + first_ready] - self._u0) @ self._acc_offset
            )
            if ready.any():
                cnt = np.maximum(ccnt[first_ready:], 1)[:, None]
                g0[a + first_ready : b] = csum[first_ready:] / cnt[:, 0]
                self._g0 = float(csum[-1] / ccnt[-1])
                self._u0 = cup[-1] / ccnt[-1]
            self._quiet_len += b - a
            self._quiet_sum = float(csum[-1])
            self._quiet_up = cup[-1].copy()
            self._quiet_cnt = int(ccnt[-1])
        return g0

    def _end_quiet_stretch(self) -> None:
        """A finished quiet stretch is one observation (posture, magnitude) for the offset fit."""
        if self._quiet_len >= int(GRAVITY_QUIET_S * self.fs) and self._quiet_cnt > 0:
            x = np.concatenate(([1.0], self._quiet_up / self._quiet_cnt))
            y = self._quiet_sum / self._quiet_cnt
            self._fit_xx = OFFSET_FORGET * self._fit_xx + np.outer(x, x)
            self._fit_xy = OFFSET_FORGET * self._fit_xy + x * y
            ridge = np.diag([0.0, 1.0, 1.0, 1.0]) * OFFSET_RIDGE
            try:
                sol = np.linalg.solve(self._fit_xx + ridge, self._fit_xy)
                self._acc_offset = np.clip(sol[1:], -OFFSET_MAX_MPS2, OFFSET_MAX_MPS2)
            except np.linalg.LinAlgError:
                pass
        self._quiet_len = 0
        self._quiet_sum = 0.0
        self._quiet_up = np.zeros(3)
        self._quiet_cnt = 0

    def _ring_push(
        self,
        t: np.ndarray,
        a_vert: np.ndarray,
        gyro: np.ndarray,
        still: np.ndarray,
        a_lin: np.ndarray,
    ) -> None:
        """Full-rate columns kept for measuring reps: t, vertical acceleration, gyro (3),
        still flag, |linear acceleration|."""
        self._ring.append(np.column_stack((t, a_vert, gyro, still, a_lin)))
        self._ring_n += t.size
        keep_n = int(REP_RING_S * self.fs)
        while self._ring and self._ring_n - self._ring[0].shape[0] >= keep_n:
            self._ring_n -= self._ring.pop(0).shape[0]

    def _ring_array(self) -> np.ndarray:
        ring = np.concatenate(self._ring) if len(self._ring) > 1 else self._ring[0]
        self._ring, self._ring_n = [ring], ring.shape[0]
        return ring

    def _settle(self, t_now: float) -> list[tuple[float, Rep, int]]:
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
                start = self._bound(ring, start, c.turn_s, c.period_s, wait_s)
            end, known = c.end_s, c.found_s
            if not c.by_stillness:
                end = self._bound(ring, c.end_s, c.turn_s, c.period_s, wait_s, from_s=start)
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
        self,
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

    def _advance(self, t_now: float, events: list[Event]) -> None:
        """No rep for SET_GAP_S ends a set."""
        if self._set is not None and t_now - self._last_rep_end_s > SET_GAP_S:
            self._end_set(events)

    # ------------------------------------------------------------------ reps and sets
    def _on_rep(self, rep: Rep, set_index: int, events: list[Event]) -> None:
        if self._set is not None and (
            set_index != self._set_index or rep.start_s - self._last_rep_end_s > SET_GAP_S
        ):
            self._end_set(events)
        self._set_index = set_index
        self._add_rep(rep, events)

    def _add_rep(self, rep: Rep, events: list[Event]) -> None:
        self._on_hold_step(self._holds.on_rep(rep.start_s, self._t_last), events)
        if self._set is None:
            self._start_set(rep, events)
        s = self._set
        assert s is not None
        n = len(s["reps"])
        vl, decision = self._policy.on_rep(n, rep.mean_concentric_velocity_mps, rep.quality)
        d: dict[str, Any] = dict(rep.as_dict())
        d["velocity_loss_pct"] = round(vl, 2)
        d["zone"] = vl_alerts.zone(vl)
        rms = [
            r
            for (tw, r) in self._set_windows
            if rep.start_s <= tw - WINDOW_S / 2 <= rep.end_s + HOP_S
        ]
        d["tremor_rms_mps2"] = round(float(np.median(rms)), 4) if rms else None
        s["reps"].append(d)
        s["end_s"] = round(rep.end_s, 4)
        self._last_rep_end_s = rep.end_s
        self._tremor.exertion_ended(rep.end_s)
        events.append(Event(rep.end_s, "rep", dict(d, rep=n + 1)))  # rep number within the set
        if decision is not None:
            self._alert(
                rep.end_s,
                decision.level,
                "velocity_loss",
                decision.message,
                events,
                velocity_loss_pct=round(decision.velocity_loss_pct, 2),
            )
        self._rep_tremor_check(d, n, events)

    def _rep_tremor_check(self, rep: dict[str, Any], n: int, events: list[Event]) -> None:
        s = self._set
        assert s is not None
        reps = s["reps"]
        ref = [r["tremor_rms_mps2"] for r in reps[:2] if r["tremor_rms_mps2"] is not None]
        cur = rep["tremor_rms_mps2"]
        if n < 2 or not ref or cur is None:
            return
        base = max(float(np.median(ref)), BASELINE_FLOOR_MPS2)
        cur = max(cur, BASELINE_FLOOR_MPS2)
        rep["tremor_index"] = round(float(np.log10(cur / base)), 3)
        if cur >= TREMOR_INDEX_FACTOR * base:
            self._set_tremor_high_reps += 1
        else:
            self._set_tremor_high_reps = 0
        if self._set_tremor_high_reps >= 2 and not self._set_tremor_warned:
            self._set_tremor_warned = True
            self._alert(
                rep["end_s"],
                "warn",
                "tremor",
                f"rep {n + 1}: tremor {cur / base:.1f}x the set's first reps for 2 reps running",
                events,
            )

    def _start_set(self, rep: Rep, events: list[Event]) -> None:
        # A set is recognised some seconds into it: a "hold" recorded meanwhile, or just before
        # it, was the set-up (holding the handles, settling on the bench), not a hold.
        for h in [h for h in self._sets if h["kind"] == "hold"]:
            if was_setup(h, rep.start_s):
                self._sets.remove(h)
                self._alerts = without_alerts_of(h, self._alerts)
        self._set = {
            "kind": "dynamic",
            "start_s": round(rep.start_s, 4),
            "end_s": round(rep.end_s, 4),
            "exercise": self.exercise or "unknown",
            "velocity_loss_pct": 0.0,
            "reps": [],
        }
        self._set_windows = []
        self._tremor.new_set()
        self._set_tremor_high_reps = 0
        self._set_tremor_warned = False
        self._policy.new_set()
        self._recovery.disarm()
        events.append(Event(rep.start_s, "set_start", {"kind": "dynamic"}))

    def _end_set(self, events: list[Event]) -> None:
        s = self._set
        assert s is not None
        self._set = None
        reps = s["reps"]
        if len(reps) < MIN_SET_REPS:
            # One movement that looked like the start of a rhythm (a fidget, a re-grip) is no
            # set; what it alerted (nothing can: no warn before rep 4) goes with it.
            return
        good = [r for r in reps if r["quality"] >= vl_alerts.MIN_QUALITY] or reps
        mv = [r["mean_concentric_velocity_mps"] for r in good]
        best = max(mv)
        s["rep_count"] = len(reps)
        s["reps_measured_well"] = sum(1 for r in reps if r["quality"] >= vl_alerts.MIN_QUALITY)
        s["velocity_loss_pct"] = round(100.0 * (1.0 - mv[-1] / best), 2) if best > 0 else 0.0
        s["max_velocity_loss_pct"] = round(
            max((r["velocity_loss_pct"] for r in good), default=0.0), 2
        )
        s["best_velocity_mps"] = round(best, 4)
        if self._best_set1_mps is None and best > 0:
            self._best_set1_mps = best
        s["fatigue_vs_set1_pct"] = (
            round(100.0 * (1.0 - best / self._best_set1_mps), 2) if self._best_set1_mps else None
        )
        s["time_under_tension_s"] = round(sum(r["time_under_tension_s"] for r in reps), 3)
        rms = [r for (_, r) in self._set_windows]
        s["tremor_rms_max_mps2"] = round(max(rms), 4) if rms else None
        s["tremor_recovery_s"] = None
        self._record_set(s, events)

    def _record_set(self, s: dict[str, Any], events: list[Event]) -> None:
        """A set or hold that ended: kept, announced, and its recovery watched."""
        self._sets.append(s)
        events.append(Event(s["end_s"], "set_end", dict(s)))
        self._recovery.arm(s)

    # ------------------------------------------------------------------ tremor windows
    def _on_windows(
        self,
        w: TremorWindows,
        up: np.ndarray,
        reps: list[tuple[float, Rep, int]],
        events: list[Event],
    ) -> None:
        """Each tremor window (two per second), after the reps known by its end: the episode
        tracker reads it, then the holds, episodes and recovery follow it."""
        k = 0
        for i in range(len(w)):
            t_end = float(w.t_end_s[i])
            while k < len(reps) and reps[k][0] <= t_end:
                self._on_rep(reps[k][1], reps[k][2], events)
                k += 1
            self._advance(t_end, events)
            in_set = self._set is not None
            r = self._tremor.read(
                w,
                i,
                set_start_s=float(self._set["start_s"]) if self._set is not None else None,
                holding=self._holds.active,
            )
            if in_set:
                self._set_windows.append((t_end, r.band_amp_mps2))
                self._set_windows = self._set_windows[-MAX_WINDOWS_KEPT:]
            step = self._holds.update(
                r,
                up[i],
                in_set=in_set,
                last_rep_end_s=self._last_rep_end_s,
                baseline_mps2=self._tremor.baseline_mps2,
                t_last_s=self._t_last,
            )
            self._on_hold_step(step, events)
            exertion = in_set or self._holds.active
            self._collect(self._tremor.track(w, i, r, exertion), events)
            self._collect(self._recovery.update(r.center_s, r.amp_mps2, r.static), events)
        for _, rep, set_index in reps[k:]:
            self._on_rep(rep, set_index, events)

    def _on_hold_step(self, step: HoldStep, events: list[Event]) -> None:
        if step.started_s is not None:
            self._recovery.disarm()
            events.append(Event(step.started_s, "set_start", {"kind": "hold"}))
        self._collect(step.alerts, events)
        if step.dropped is not None:
            self._alerts = without_alerts_of(step.dropped, self._alerts)
        if step.ended is not None:
            self._tremor.exertion_ended(step.ended["end_s"])
            self._record_set(step.ended, events)

    # ------------------------------------------------------------------ alerts
    def _collect(self, found: list[Event], events: list[Event]) -> None:
        """Events from the trackers, in order; alerts only when alerts are on (the one master
        switch), and then kept for the result."""
        for e in found:
            if e.kind == "alert":
                if not self.alerts_enabled:
                    continue
                self._alerts.append(dict(e.data))
            events.append(e)

    def _alert(
        self,
        t: float,
        level: AlertLevel,
        kind: AlertKind,
        message: str,
        events: list[Event],
        **extra: Any,
    ) -> None:
        self._collect([alert_event(t, level, kind, message, **extra)], events)
