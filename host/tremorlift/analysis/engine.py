"""The streaming analysis engine: one per sensor, fed blocks of samples, causal.

``collect`` feeds it live and ``analyze`` feeds it a recording; both get the same results from
the same samples because the engine does not depend on how the samples are split into blocks
(leftovers shorter than one fusion group wait for the next block). Memory is bounded: filter
states, a few seconds of ring buffers, one movement period (capped) and per-set summaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from scipy import signal

from tremorlift.analysis import PLACEMENTS
from tremorlift.analysis import alerts as vl_alerts
from tremorlift.analysis.contract import EngineResult, EventKind
from tremorlift.analysis.cycles import Cycle, CycleTracker
from tremorlift.analysis.dsp import (
    StreamingBoxcar,
    StreamingSos,
    principal_axis,
    run_lengths,
    runs,
)
from tremorlift.analysis.orientation import GravityTracker
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

# Tremor detection, every 0.5 s: one-second RMS of the band-passed accelerometer above the
# person's ever-present level (learnt in the warm-up), plus the spectral shape of a 3 s window.
TREMOR_MIN_RMS_MPS2 = 0.09
TREMOR_MIN_CONCENTRATION = 0.3
TREMOR_MIN_PEAK_HZ = 3.3
REST_BAND_HZ = (3.3, 7.0)
REST_MIN_CONCENTRATION = 0.45
REST_TREMOR_MIN_RMS_MPS2 = 0.02
# During voluntary movement its own harmonics leak into the low tremor band: ask for more.
TREMOR_MOVING_MIN_PEAK_HZ = 5.0
TREMOR_MOVING_MIN_CONCENTRATION = 0.4
STATIC_DISP_M = (
    0.02  # displacement-equivalent RMS of 0.5-3 Hz motion below this: no voluntary movement
)
EPISODE_MAX_GAP_WINDOWS = 1
EPISODE_MIN_S = 1.5
EPISODE_EDGE_S = 0.0
BASELINE_WINDOWS = 8
BASELINE_MAX_RMS_MPS2 = 0.07
# Sway (instability): 1-3 Hz accelerometer RMS while otherwise static.
SWAY_MIN_RMS_MPS2 = 0.09
SWAY_MIN_PEAK_HZ = 1.2  # walking (strides at 0.8-1 Hz) is not sway

# Holds: static effort with raised tremor-band activity.
HOLD_MIN_S = 5.0
HOLD_VOTE_WINDOWS = 8
HOLD_TREMOR_FACTOR = 1.2  # tremor above the quiet level, in units of that level
HOLD_START_LAG_S = 1.5  # the static test looks at a 3 s window: stillness began about 1.5 s earlier
HOLD_EFFORT_LEAD_S = 3.0
HOLD_END_LAG_S = 1.5
HOLD_QUIET_END_S = 2.0
HOLD_NOT_AFTER_REP_S = 20.0
HOLD_VIOLENT_FACTOR = 6.0  # vs the hold's own first seconds
HOLD_VIOLENT_RMS_MPS2 = 1.5
HOLD_DRIFT_STOP_DEG = 12.0
HOLD_SWAY_STOP_RMS_MPS2 = 0.6

# What counts as tremor is relative: a strap-worn sensor on a hand that grips a load reads about
# 0.4 m/s^2 in 3-15 Hz (median, real wrist sets), ten times a still sensor. In a set the level
# that counts is TREMOR_FACTOR times the set's own first seconds; outside sets, while moving or
# shortly after exertion, TREMOR_FACTOR times the median of the last AMBIENT_S of the same kind of
# window (moving or still). Only a limb truly at rest is judged on the absolute floor.
TREMOR_FACTOR = 2.0
SET_REFERENCE_S = 6.0
AMBIENT_S = 60.0  # also keeps a set's first seconds for a set recognised up to 20 s late
AMBIENT_MIN_WINDOWS = 6
# Exertion the rep counter did not see (crunches it could not count, carrying, a sprint):
# VIGOROUS_WINDOWS windows in a row moving this much.
VIGOROUS_DISP_M = 0.05
VIGOROUS_WINDOWS = 12
REST_MIN_S = 5.0  # rest-tremor episodes add up to this long within REST_WINDOW_S (it persists)
REST_WINDOW_S = 30.0
HOLD_DROP_BEFORE_REP_S = 15.0  # a "hold" this close before a set's first rep was its set-up

# Tremor alerts within a dynamic set (vs the set's first reps) and recovery after a set.
TREMOR_INDEX_FACTOR = 2.0
REST_AFTER_EXERTION_S = 120.0
RECOVERY_CHECK_S = 120.0
RECOVERY_RMS_MPS2 = 0.05
BASELINE_FLOOR_MPS2 = 0.02
MAX_WINDOWS_KEPT = 4000  # per set or hold: ~33 min of windows, then the oldest are dropped


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


def _nanmedian(x: list[float]) -> float | None:
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    return round(float(np.median(a)), 4) if a.size else None


@dataclass
class Event:
    """Something the engine found: a rep, a set boundary, a tremor episode or an alert."""

    t_s: float
    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)  # contract.EventData, by kind


@dataclass
class _Episode:
    first_center_s: float
    last_center_s: float
    rms: list[float]
    peak_hz: list[float]
    slow_share: list[float]
    p_slow: list[float]
    p_phys: list[float]
    entropy: list[float]
    tsi: list[float]
    exertion: bool
    static_all: bool
    sway_votes: int = 0
    misses: int = 0
    n: int = 0


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
        self._n_samples = 0
        # Results (bounded by the session's content, not its length).
        self._sets: list[dict[str, Any]] = []
        self._episodes: list[dict[str, Any]] = []
        self._alerts: list[dict[str, Any]] = []
        # Dynamic set in progress.
        self._set: dict[str, Any] | None = None
        self._set_windows: list[tuple[float, float]] = []
        self._set_tremor_high_reps = 0
        self._set_tremor_warned = False
        self._last_rep_end_s = -np.inf
        self._best_set1_mps: float | None = None
        # Holds.
        self._static_run_s = 0.0
        self._hold: dict[str, Any] | None = None
        self._hold_windows: list[tuple[float, float]] = []
        self._hold_up0: np.ndarray | None = None
        self._hold_ref_rms: float | None = None
        self._hold_stop_sent = False
        self._hold_info_sent = False
        # Tremor episodes, baseline, recovery.
        self._episode: _Episode | None = None
        self._baseline_p: list[tuple[float, float, float]] = []
        self._baseline_done = False
        self._base_p_trem = 0.0
        self._base_p_sway = 0.0
        self._base_p_mov = 0.0
        self._baseline: float | None = None
        self._static_since: float | None = None
        self._hold_votes: list[tuple[float, bool]] = []
        self._hold_quiet_since: float | None = None
        self._last_exertion_end_s = -np.inf
        self._rest_flagged = False
        self._rest_like: list[tuple[float, float]] = []  # (end, duration) of 3-7 Hz rest episodes
        self._recovery_watch: dict[str, Any] | None = None
        self._recent_static_amp: list[float] = []
        self._recent_amp: list[tuple[float, float, bool]] = []  # (window end, amp, static)
        self._set_ref: float | None = None
        self._vigorous_run = 0

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
        self._close_episode(events)
        if self._hold is not None:
            self._end_hold(t_end, events)
        if self._set is not None:
            self._end_set(events)
        return events

    def result(self) -> EngineResult:
        result: dict[str, Any] = {
            "sample_rate_hz": round(self.fs, 3),
            "placement": self.placement,
            "velocity_loss_threshold_pct": self.threshold_pct,
            "duration_s": round(float(self._t_last), 3) if np.isfinite(self._t_last) else 0.0,
            "tremor": "analysed"
            if self.tremor_analysed
            else f"not analysed: {self.fs:.1f} Hz is below {TREMOR_MIN_RATE_HZ:.0f} Hz",
            "tremor_baseline_rms_mps2": None
            if self._baseline is None
            else round(self._baseline, 4),
            "sets": [dict(s) for s in self._sets],
            "tremor_episodes": [dict(e) for e in self._episodes],
            "alerts": [dict(a) for a in self._alerts],
        }
        return cast(EngineResult, result)  # the keys of docs/analysis-output.md

    # ------------------------------------------------------------------ per block
    def _process(self, t: np.ndarray, x: np.ndarray) -> list[Event]:
        events: list[Event] = []
        acc, gyr = x[:, 0:3], x[:, 3:6]
        self._t_last = float(t[-1])
        self._n_samples += t.size
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
        if self._hold is not None:
            h = self._hold
            if (
                rep.start_s - float(h["end_s"]) < HOLD_DROP_BEFORE_REP_S
                or rep.start_s < float(h["start_s"]) + HOLD_MIN_S
            ):
                # Still before the first reps of a set (or inside a set found late): the set-up,
                # not a hold.
                self._drop_hold()
            else:
                self._end_hold(rep.start_s, events)
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
        self._last_exertion_end_s = rep.end_s
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
            if float(h["end_s"]) >= rep.start_s - HOLD_DROP_BEFORE_REP_S:
                self._sets.remove(h)
                self._forget_hold_alerts(h)
        self._set = {
            "kind": "dynamic",
            "start_s": round(rep.start_s, 4),
            "end_s": round(rep.end_s, 4),
            "exercise": self.exercise or "unknown",
            "velocity_loss_pct": 0.0,
            "reps": [],
        }
        self._set_windows = []
        self._set_ref = None
        self._set_tremor_high_reps = 0
        self._set_tremor_warned = False
        self._policy.new_set()
        self._recovery_watch = None
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
        self._sets.append(s)
        events.append(Event(s["end_s"], "set_end", dict(s)))
        self._arm_recovery(s, max(rms) if rms else 0.0)

    # ------------------------------------------------------------------ tremor windows
    def _on_windows(
        self,
        w: TremorWindows,
        up: np.ndarray,
        reps: list[tuple[float, Rep, int]],
        events: list[Event],
    ) -> None:
        k = 0
        for i in range(len(w)):  # two windows per second
            t_end = float(w.t_end_s[i])
            while k < len(reps) and reps[k][0] <= t_end:
                self._on_rep(reps[k][1], reps[k][2], events)
                k += 1
            self._advance(t_end, events)
            # The one-second band powers are centred half a second before the window's end.
            center = t_end - 0.5
            p_trem, p_sway, p_mov = (float(x) for x in w.power_1s[i])
            static = float(w.disp_rms_m[i]) < STATIC_DISP_M
            in_rep_zone = (
                self._set is not None or (t_end - self._last_rep_end_s) < HOLD_NOT_AFTER_REP_S
            )
            self._learn_baseline(p_trem, p_sway, p_mov, static)
            if static:
                conc, peak = float(w.concentration[i]), float(w.peak_hz[i])
                p_est = p_trem * min(1.0, conc) - self._base_p_trem
            else:
                # Voluntary movement leaks into the low band: measure above 5 Hz, and only the
                # power concentrated around the spectral peak (the lift's leakage is broadband).
                conc, peak = float(w.moving_concentration[i]), float(w.moving_peak_hz[i])
                p_est = p_mov * min(1.0, conc) - self._base_p_mov
            amp = float(np.sqrt(max(0.0, p_est)))
            sway_amp = float(np.sqrt(max(0.0, p_sway - self._base_p_sway)))
            if sway_amp < amp:
                sway_amp = 0.0  # leakage of a stronger tremor through the sway filter's skirt
            if self._set is not None:
                self._set_windows.append((t_end, amp))
                self._set_windows = self._set_windows[-MAX_WINDOWS_KEPT:]
            self._note_exertion(t_end, float(w.disp_rms_m[i]), static)
            self._recent_amp.append((t_end, amp, static))
            while self._recent_amp and self._recent_amp[0][0] < t_end - AMBIENT_S:
                self._recent_amp.pop(0)
            floor = TREMOR_MIN_RMS_MPS2
            ref = self._reference_level(t_end, static)
            if ref is not None:
                floor = max(floor, TREMOR_FACTOR * ref)
            # A peak on the band's lower edge is the skirt of slower movement, not a rhythm.
            tremor = (
                amp >= floor and conc >= TREMOR_MIN_CONCENTRATION and peak >= TREMOR_MIN_PEAK_HZ
            )
            at_rest = (
                static
                and self._hold is None
                and t_end - self._last_exertion_end_s > REST_AFTER_EXERTION_S
            )
            if (
                at_rest
                and not tremor
                and REST_BAND_HZ[0] <= peak <= REST_BAND_HZ[1]
                and conc >= REST_MIN_CONCENTRATION
            ):
                # At rest a clearly rhythmic 3-7 Hz oscillation counts even when small: the
                # ever-present physiological tremor sits at 8-12 Hz, so it is not this.
                rest_amp = float(np.sqrt(p_trem * conc))
                if rest_amp >= REST_TREMOR_MIN_RMS_MPS2:
                    tremor, amp = True, rest_amp
            holding = self._hold is not None
            sway = (
                holding
                and static
                and sway_amp >= SWAY_MIN_RMS_MPS2
                and w.sway_peak_hz[i] >= SWAY_MIN_PEAK_HZ
            )
            self._update_hold(
                center,
                t_end,
                amp,
                sway_amp,
                static,
                in_rep_zone,
                peak,
                float(w.sway_peak_hz[i]),
                up[i],
                events,
            )
            exertion = self._set is not None or self._hold is not None
            if tremor or sway:
                use_sway = sway and (not tremor or sway_amp > amp)
                self._extend_episode(center, w, i, amp, sway_amp, exertion, static, use_sway)
            elif self._episode is not None:
                self._episode.misses += 1
                if self._episode.misses > EPISODE_MAX_GAP_WINDOWS:
                    self._close_episode(events)
            if static:
                self._recent_static_amp.append(amp)
                self._recent_static_amp = self._recent_static_amp[-6:]
            self._check_recovery(center, amp, static, events)
        for _, rep, set_index in reps[k:]:
            self._on_rep(rep, set_index, events)

    def _reference_level(self, t_end: float, static: bool) -> float | None:
        """The tremor-band level this person shows anyway in this context (None: judge on the
        absolute floor, for a limb truly at rest)."""
        if self._set is not None:
            if self._set_ref is None:
                start = float(self._set["start_s"])
                first = [
                    a for (t, a, _) in self._recent_amp if start <= t <= start + SET_REFERENCE_S
                ]
                if len(first) >= AMBIENT_MIN_WINDOWS or t_end > start + SET_REFERENCE_S + 1.0:
                    self._set_ref = float(np.median(first)) if first else None
            if self._set_ref is not None:
                return self._set_ref
        if static and t_end - self._last_exertion_end_s > REST_AFTER_EXERTION_S:
            return None
        same = [a for (t, a, st) in self._recent_amp if st == static and t >= t_end - AMBIENT_S]
        if len(same) >= AMBIENT_MIN_WINDOWS:
            return float(np.median(same))
        # Moving, with too little seen yet to know this person's level: nothing counts yet.
        return None if static else float("inf")

    def _note_exertion(self, t_end: float, disp_rms_m: float, static: bool) -> None:
        """Sustained vigorous movement is exertion even when no set was counted."""
        self._vigorous_run = (
            self._vigorous_run + 1 if (not static and disp_rms_m >= VIGOROUS_DISP_M) else 0
        )
        if self._vigorous_run >= VIGOROUS_WINDOWS:
            self._last_exertion_end_s = max(self._last_exertion_end_s, t_end)

    def _learn_baseline(self, p_trem: float, p_sway: float, p_mov: float, static: bool) -> None:
        """The ever-present tremor and sensor noise, from the first still seconds (warm-up);
        later tremor is measured above it."""
        if self._baseline_done or not static:
            return
        self._baseline_p.append((p_trem, p_sway, p_mov))
        if len(self._baseline_p) >= BASELINE_WINDOWS:
            arr = np.array(self._baseline_p)
            self._base_p_trem = min(float(np.median(arr[:, 0])), BASELINE_MAX_RMS_MPS2**2)
            self._base_p_sway = min(float(np.median(arr[:, 1])), BASELINE_MAX_RMS_MPS2**2)
            self._base_p_mov = min(float(np.median(arr[:, 2])), BASELINE_MAX_RMS_MPS2**2)
            self._baseline = float(np.sqrt(self._base_p_trem))
            self._baseline_done = True
            self._baseline_p = []

    def _extend_episode(
        self,
        center: float,
        w: TremorWindows,
        i: int,
        amp: float,
        sway_amp: float,
        exertion: bool,
        static: bool,
        sway: bool,
    ) -> None:
        band = float(w.p_slow[i] + w.p_phys[i]) or 1e-30
        e = self._episode
        if e is None:
            e = self._episode = _Episode(
                center, center, [], [], [], [], [], [], [], exertion, static
            )
        e.last_center_s = center
        e.misses = 0
        e.n += 1
        e.exertion = e.exertion or exertion
        e.static_all = e.static_all and static
        e.sway_votes += int(sway)
        e.rms.append(sway_amp if sway else amp)
        e.peak_hz.append(float(w.sway_peak_hz[i]) if sway else float(w.peak_hz[i]))
        e.slow_share.append(float(w.p_fatigue_slow[i]) / band)
        e.p_slow.append(float(w.p_slow[i]))
        e.p_phys.append(float(w.p_phys[i]))
        e.entropy.append(float(w.entropy[i]))
        e.tsi.append(float(w.tsi_hz[i]))
        # Bound the per-episode lists (an episode could last the whole session).
        if len(e.rms) > MAX_WINDOWS_KEPT:
            for lst in (e.rms, e.peak_hz, e.slow_share, e.p_slow, e.p_phys, e.entropy, e.tsi):
                del lst[0]

    def _close_episode(self, events: list[Event]) -> None:
        e = self._episode
        self._episode = None
        if e is None:
            return
        start = max(0.0, e.first_center_s - HOP_S / 2 + EPISODE_EDGE_S)
        end = e.last_center_s + HOP_S / 2 - EPISODE_EDGE_S
        if end - start < EPISODE_MIN_S:
            return
        cause = self._cause(e, start)
        k = max(1, len(e.rms) // 3)
        ep = {
            "start_s": round(start, 3),
            "end_s": round(end, 3),
            "peak_hz": round(float(np.median(e.peak_hz)), 3),
            "rms_mps2": round(float(np.median(e.rms)), 4),
            "rms_max_mps2": round(float(np.max(e.rms)), 4),
            "growth_ratio": round(
                float(np.mean(e.rms[-k:])) / max(float(np.mean(e.rms[:k])), 1e-9), 3
            ),
            "power_3_7_hz_m2ps4": round(float(np.median(e.p_slow)), 6),
            "power_8_12_hz_m2ps4": round(float(np.median(e.p_phys)), 6),
            "spectral_entropy": round(float(np.median(e.entropy)), 4),
            "tremor_stability_index_hz": _nanmedian(e.tsi),
            "cause": cause,
        }
        self._episodes.append(ep)
        events.append(Event(end, "tremor_episode", dict(ep)))
        if cause == "rest" and not self._rest_flagged:
            self._rest_flagged = True
            self._alert(
                end,
                "info",
                "rest_tremor",
                f"rhythmic {ep['peak_hz']:.1f} Hz tremor at rest, not after exertion. This is not a diagnosis; "
                "if it persists, consider seeing a doctor",
                events,
            )

    def _cause(self, e: _Episode, start: float) -> str:
        if e.sway_votes * 2 >= e.n and e.exertion:
            return "instability"
        peak = float(np.median(e.peak_hz))
        if e.exertion:
            k = max(1, len(e.rms) // 3)
            grows = np.mean(e.rms[-k:]) >= 1.3 * np.mean(e.rms[:k])
            slowing = np.mean(e.peak_hz[:k]) - np.mean(e.peak_hz[-k:]) >= 0.5
            slow_emerging = np.mean(e.slow_share[-k:]) >= np.mean(e.slow_share[:k]) + 0.1
            if grows or slowing or slow_emerging or len(e.rms) < 6:
                return "fatigue"
            return "fatigue" if 7.0 <= peak <= 13.0 else "other"
        duration_s = e.last_center_s - e.first_center_s + HOP_S
        if (
            e.static_all
            and 3.0 <= peak <= 7.0
            and start - self._last_exertion_end_s > REST_AFTER_EXERTION_S
        ):
            # Rest tremor comes and goes: it persists when such episodes add up to REST_MIN_S
            # within the last REST_WINDOW_S.
            end = e.last_center_s + HOP_S / 2
            self._rest_like = [(t, d) for t, d in self._rest_like if t >= end - REST_WINDOW_S]
            self._rest_like.append((end, duration_s))
            if sum(d for _, d in self._rest_like) >= REST_MIN_S:
                return "rest"
        return "other"

    # ------------------------------------------------------------------ holds
    def _update_hold(
        self,
        center: float,
        t_end: float,
        amp: float,
        sway_amp: float,
        static: bool,
        in_rep_zone: bool,
        peak_hz: float,
        sway_peak_hz: float,
        up: np.ndarray,
        events: list[Event],
    ) -> None:
        if static:
            if self._static_since is None:
                self._static_since = center
        else:
            self._static_since = None
        if self._hold is None:
            # A hold is static effort, so its tremor is physiological (>= 7 Hz) or sway; a
            # 3-7 Hz rhythm while nothing else happens is rest tremor instead.
            base = max(self._baseline or 0.0, BASELINE_FLOOR_MPS2)
            effort = (amp >= HOLD_TREMOR_FACTOR * base and peak_hz >= 7.0) or (
                sway_amp >= SWAY_MIN_RMS_MPS2 and sway_peak_hz >= SWAY_MIN_PEAK_HZ
            )
            vote = bool(static and effort and not in_rep_zone)
            self._hold_votes = (self._hold_votes + [(center, vote)])[-HOLD_VOTE_WINDOWS:]
            if (
                self._static_since is not None
                and len(self._hold_votes) == HOLD_VOTE_WINDOWS
                and sum(v for _, v in self._hold_votes) >= 0.7 * HOLD_VOTE_WINDOWS
                and center - self._static_since >= HOLD_MIN_S
            ):
                # The hold began when the limb came to rest, unless it rested for a while first
                # (then shortly before the effort showed).
                first_effort = next(c for c, v in self._hold_votes if v)
                start = max(
                    self._static_since - HOLD_START_LAG_S, first_effort - HOLD_EFFORT_LEAD_S
                )
                self._start_hold(max(0.0, start), up, events)
            return
        h = self._hold
        if not static:
            self._end_hold(t_end - HOLD_END_LAG_S, events)
            return
        base = max(self._baseline or 0.0, BASELINE_FLOOR_MPS2)
        effort = amp >= HOLD_TREMOR_FACTOR * base or sway_amp >= SWAY_MIN_RMS_MPS2
        if not effort:
            # Still but no longer straining (sitting down in place): the hold ended where the
            # quiet began.
            if self._hold_quiet_since is None:
                self._hold_quiet_since = center
            if center - self._hold_quiet_since >= HOLD_QUIET_END_S:
                self._end_hold(self._hold_quiet_since, events)
            return
        self._hold_quiet_since = None
        self._hold_windows.append((center, amp))
        self._hold_windows = self._hold_windows[-MAX_WINDOWS_KEPT:]
        if self._hold_ref_rms is None and len(self._hold_windows) >= 4:
            self._hold_ref_rms = max(
                float(np.median([r for _, r in self._hold_windows[:4]])), BASELINE_FLOOR_MPS2
            )
        h["end_s"] = round(center, 3)
        ref = self._hold_ref_rms
        if (
            ref is not None
            and h["time_to_tremor_onset_s"] is None
            and amp >= max(TREMOR_INDEX_FACTOR * ref, TREMOR_MIN_RMS_MPS2)
        ):
            h["time_to_tremor_onset_s"] = round(center - h["start_s"], 3)
            if not self._hold_info_sent:
                self._hold_info_sent = True
                self._alert(
                    center,
                    "info",
                    "hold",
                    f"hold: tremor {amp / ref:.1f}x the start after {center - h['start_s']:.0f} s (controlled shaking is fine)",
                    events,
                )
        drift_deg = (
            float(np.degrees(np.arccos(np.clip(np.dot(up, self._hold_up0), -1, 1))))
            if self._hold_up0 is not None
            else 0.0
        )
        h["posture_drift_deg"] = round(max(h.get("posture_drift_deg", 0.0), drift_deg), 2)
        reason = None
        if amp >= HOLD_VIOLENT_RMS_MPS2 or (
            ref is not None and amp >= HOLD_VIOLENT_FACTOR * ref and amp >= 2 * TREMOR_MIN_RMS_MPS2
        ):
            reason = "violent shaking"
        elif drift_deg >= HOLD_DRIFT_STOP_DEG:
            reason = f"loss of form: posture drifted {drift_deg:.0f} deg"
        elif sway_amp >= HOLD_SWAY_STOP_RMS_MPS2:
            reason = "loss of form: sway"
        if reason and not self._hold_stop_sent:
            self._hold_stop_sent = True
            h["stop_reason"] = reason
            self._alert(center, "stop", "hold", f"hold: {reason}: end the hold", events)

    def _start_hold(self, start: float, up: np.ndarray, events: list[Event]) -> None:
        self._hold = {
            "kind": "hold",
            "start_s": round(start, 3),
            "end_s": round(start, 3),
            "exercise": self.exercise or "unknown",
            "velocity_loss_pct": None,
            "reps": [],
            "time_to_tremor_onset_s": None,
            "posture_drift_deg": 0.0,
            "stop_reason": None,
        }
        self._hold_windows = []
        self._hold_quiet_since = None
        self._hold_up0 = up.copy()
        self._hold_ref_rms = None
        self._hold_stop_sent = False
        self._hold_info_sent = False
        self._recovery_watch = None
        events.append(Event(start, "set_start", {"kind": "hold"}))

    def _drop_hold(self) -> None:
        h = self._hold
        assert h is not None
        self._hold = None
        self._hold_votes = []
        self._static_since = None
        self._forget_hold_alerts(h)

    def _forget_hold_alerts(self, h: dict[str, Any]) -> None:
        """Removes what a hold that turned out to be a set's set-up alerted."""
        self._alerts = [
            a
            for a in self._alerts
            if not (a["kind"] == "hold" and h["start_s"] <= a["t_s"] <= h["end_s"] + 1.0)
        ]

    def _end_hold(self, t: float, events: list[Event]) -> None:
        h = self._hold
        assert h is not None
        self._hold = None
        self._hold_votes = []
        self._static_since = None
        h["end_s"] = round(max(h["end_s"], min(t, self._t_last)), 3)
        h["duration_s"] = round(h["end_s"] - h["start_s"], 3)
        win = self._hold_windows
        if len(win) >= 4:
            tt = np.array([c for c, _ in win])
            # Windows at the floor (amplitude estimated at or below the baseline) count as the
            # floor: a log of ~0 would drag the fitted growth to -100 %/s.
            rr = np.log(np.maximum([r for _, r in win], BASELINE_FLOOR_MPS2))
            slope = float(np.polyfit(tt - tt[0], rr, 1)[0])
            h["tremor_growth_pct_per_s"] = round(100.0 * (np.exp(slope) - 1.0), 3)
        else:
            h["tremor_growth_pct_per_s"] = None
        rms = [r for _, r in win]
        h["tremor_rms_max_mps2"] = round(max(rms), 4) if rms else None
        h["tremor_recovery_s"] = None
        self._last_exertion_end_s = h["end_s"]
        self._sets.append(h)
        events.append(Event(h["end_s"], "set_end", dict(h)))
        self._arm_recovery(h, max(rms) if rms else 0.0)

    # ------------------------------------------------------------------ recovery
    def _arm_recovery(self, s: dict[str, Any], peak_rms: float) -> None:
        self._recovery_watch = {
            "set": s,
            "end_s": float(s["end_s"]),
            "peak": peak_rms,
            "alerted": False,
            "done": False,
        }

    def _check_recovery(self, center: float, amp: float, static: bool, events: list[Event]) -> None:
        w = self._recovery_watch
        if w is None or w["done"] or center < w["end_s"] or not static:
            return
        since = center - w["end_s"]
        level = float(np.median(self._recent_static_amp)) if self._recent_static_amp else amp
        if level < RECOVERY_RMS_MPS2:
            w["set"]["tremor_recovery_s"] = round(since, 2)
            w["done"] = True
            return
        if since >= RECOVERY_CHECK_S and not w["alerted"]:
            w["alerted"] = True
            self._alert(
                center,
                "warn",
                "recovery",
                f"tremor still {level:.2f} m/s2 above baseline {since / 60:.0f} min after the set: rest longer",
                events,
            )

    # ------------------------------------------------------------------ alerts
    def _alert(
        self, t: float, level: str, kind: str, message: str, events: list[Event], **extra: Any
    ) -> None:
        if not self.alerts_enabled:
            return
        a = {"t_s": round(float(t), 3), "level": level, "kind": kind, "message": message, **extra}
        self._alerts.append(a)
        events.append(Event(float(t), "alert", dict(a)))
