"""The streaming analysis engine: one per sensor, fed blocks of samples, causal.

``collect`` feeds it live and ``analyze`` feeds it a recording; both get the same results from
the same samples because the engine does not depend on how the samples are split into blocks
(leftovers shorter than one fusion group wait for the next block). Memory is bounded: filter
states, a few seconds of ring buffers, one movement period (capped) and per-set summaries.

The engine coordinates its helpers: ``GravityTracker`` (orientation), ``VerticalMotion``
(vertical acceleration and stillness), ``CycleTracker`` (sets and reps by periodicity),
``RepBounds`` (each rep's bounds and velocity), ``TremorSpectra`` (tremor windows), and the
trackers of tremor episodes (``episodes``), holds (``holds``) and recovery (``recovery``). It
feeds them, collects their events, and keeps the dynamic sets' bookkeeping itself.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from scipy import signal

from tremorlift.analysis import PLACEMENTS
from tremorlift.analysis import alerts as vl_alerts
from tremorlift.analysis.bounds import RepBounds, rep_columns
from tremorlift.analysis.contract import AlertKind, AlertLevel, EngineResult
from tremorlift.analysis.cycles import CycleTracker
from tremorlift.analysis.dsp import StreamingSos
from tremorlift.analysis.episodes import (
    BASELINE_FLOOR_MPS2,
    MAX_WINDOWS_KEPT,
    TREMOR_INDEX_FACTOR,
    TREMOR_MIN_RMS_MPS2,
    EpisodeTracker,
)
from tremorlift.analysis.events import Event, alert_event
from tremorlift.analysis.first_rep import FirstRepWatch
from tremorlift.analysis.holds import HoldStep, HoldTracker, was_setup, without_alerts_of
from tremorlift.analysis.orientation import GravityTracker
from tremorlift.analysis.recovery import RecoveryTracker
from tremorlift.analysis.reps import Rep, concentric_sign
from tremorlift.analysis.tremor import (
    HOP_S,
    MOVING_TREMOR_BAND_HZ,
    SWAY_BAND_HZ,
    TREMOR_BAND_HZ,
    WINDOW_S,
    TremorSpectra,
    TremorWindows,
)
from tremorlift.analysis.vertical import VerticalMotion

MIN_SAMPLE_RATE_HZ = 25.0  # reps and sets are found on a 25 Hz grid
TREMOR_MIN_RATE_HZ = 50.0  # tremor up to 15 Hz needs margin below Nyquist
# Gravity and posture changes are kept out of the tremor spectra (the lowest band they use, the
# voluntary movement's, starts here).
TREMOR_HIGHPASS_HZ = 0.5
SET_GAP_S = 15.0  # no rep for this long ends a set
# One movement that looked like the start of a rhythm (a fidget, a re-grip) is no set.
MIN_SET_REPS = 2
# A tremor window's cycle-to-cycle stability index is computed only from the tremor floor up and
# with this share of its power at the peak (below, the cycles are noise).
TSI_MIN_CONCENTRATION = 0.5


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
        stop_policy: str | None = None,
        live: bool = True,
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
        self._policy = vl_alerts.VelocityLossPolicy(
            self.threshold_pct, enabled=alerts_enabled, stop_policy=stop_policy
        )
        self.stop_policy = self._policy.stop_policy
        self._gravity = GravityTracker(self.fs)
        hp = signal.butter(2, TREMOR_HIGHPASS_HZ, btype="highpass", fs=self.fs, output="sos")
        self._hp = StreamingSos(hp, 6)
        self._vertical = VerticalMotion(self.fs)
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
            self._spectra = TremorSpectra(self.fs, TREMOR_MIN_RMS_MPS2, TSI_MIN_CONCENTRATION)
        self._cycles = CycleTracker(self.fs)
        self._reps = RepBounds(self.fs, concentric_sign(exercise))
        # Rep 1 before its set is recognised: a live claim, never part of the result, so an
        # offline run (``live=False``) is spared it.
        self._first_rep = FirstRepWatch(self.fs, concentric_sign(exercise)) if live else None
        self._set_index = -1
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
        for _, rep, set_index in self._reps.finish(self._cycles.finish()):
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
            "stop_policy": self.stop_policy,
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
        a_vert, fast_quiet, a_lin = self._vertical.update(acc, gyr_c, up)
        columns = rep_columns(t, a_vert, gyr_c, fast_quiet, a_lin)
        self._reps.push(columns)
        if self._first_rep is not None:
            self._first_rep.push(columns)
        # Reps are handled in time order (when they were known), so results do not depend on
        # how the stream was cut into blocks.
        self._reps.add(self._cycles.update(t, acc, gyr_c, fast_quiet))
        reps = self._reps.settle(self._t_last)
        if not self.tremor_analysed:
            for found_s, rep, set_index in reps:
                self._advance(found_s, events)
                self._on_rep(rep, set_index, events)
            self._advance(self._t_last, events)
            self._check_first_rep(events)
            return events
        # The tremor path only yields a window every hop (0.5 s): small live blocks wait here
        # and are filtered together once a window is complete (causal filters with carried
        # state give the same samples however the stream is cut).
        self._tq.append((t, x, up))
        self._tq_n += t.size
        if self._tq_n < self._spectra.samples_to_next_window():
            for _, rep, set_index in reps:
                self._on_rep(rep, set_index, events)
            self._check_first_rep(events)
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
        self._check_first_rep(events)
        return events

    def _advance(self, t_now: float, events: list[Event]) -> None:
        """No rep for SET_GAP_S ends a set."""
        if self._set is not None and t_now - self._last_rep_end_s > SET_GAP_S:
            self._end_set(events)

    # ------------------------------------------------------------------ reps and sets
    def _check_first_rep(self, events: list[Event]) -> None:
        """Rep 1 of a set not yet recognised, told as soon as it ends (``first_rep``)."""
        if self._first_rep is None:
            return
        for kind, rep in self._first_rep.check(self._set is not None):
            if kind == "rep_withdrawn" or rep is None:
                events.append(Event(self._t_last, "rep_withdrawn", {"reason": "no set"}))
                continue
            d: dict[str, Any] = dict(rep.as_dict(), rep=1, velocity_loss_pct=0.0)
            d["zone"] = vl_alerts.zone(0.0)
            events.append(Event(rep.end_s, "rep_provisional", d))

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
        if self._first_rep is not None:
            self._first_rep.set_recognised(rep.start_s)
        events.append(Event(rep.start_s, "set_start", {"kind": "dynamic"}))

    def _end_set(self, events: list[Event]) -> None:
        s = self._set
        assert s is not None
        self._set = None
        if self._first_rep is not None:
            self._first_rep.set_recognised(self._last_rep_end_s)
        reps = s["reps"]
        if len(reps) < MIN_SET_REPS:
            # One movement that looked like the start of a rhythm is no set; what it alerted
            # (nothing can: no warn before rep 4) goes with it.
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
            if self._first_rep is not None and self._first_rep.withdraw():
                events.append(Event(step.started_s, "rep_withdrawn", {"reason": "hold"}))
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
