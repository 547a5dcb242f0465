"""Isometric holds: static effort with raised tremor-band activity or sway, at least HOLD_MIN_S.

A hold starts when most of the last HOLD_VOTE_WINDOWS tremor windows of a still limb show effort:
physiological tremor (7 Hz and up) above the person's baseline, or sway. It ends when the limb
moves, when the effort stops for HOLD_QUIET_END_S (sitting down in place), or when a rep starts;
a "hold" just before a set's first rep was its set-up and is dropped with what it alerted. During
a hold the tracker times the tremor onset (twice the hold's first seconds), keeps the posture's
drift, and calls a stop once on violent shaking or loss of form. Holds are never looked for
inside a dynamic set or within HOLD_NOT_AFTER_REP_S after a rep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tremorlift.analysis.episodes import (
    BASELINE_FLOOR_MPS2,
    MAX_WINDOWS_KEPT,
    SWAY_MIN_PEAK_HZ,
    SWAY_MIN_RMS_MPS2,
    TREMOR_INDEX_FACTOR,
    TREMOR_MIN_RMS_MPS2,
    TremorReading,
)
from tremorlift.analysis.events import Event, alert_event

# ---- starting
# Shorter static efforts are a pause or a re-grip, not a hold.
HOLD_MIN_S = 5.0
# Effort is judged over the last 8 windows (4 s) ...
HOLD_VOTE_WINDOWS = 8
# ... of which this share must show it (tremor flickers around its threshold).
HOLD_MIN_VOTE_SHARE = 0.7
# Effort: tremor this many times the person's baseline ...
HOLD_TREMOR_FACTOR = 1.2
# ... at a physiological peak (a hold strains the muscle: 7 Hz and up); a 3-7 Hz rhythm while
# nothing else happens is rest tremor instead.
HOLD_MIN_PEAK_HZ = 7.0
# The static test looks at a 3 s window: stillness began about 1.5 s before it shows.
HOLD_START_LAG_S = 1.5
# A limb that rested for a while before straining: the hold began this long before the first
# effort window (the window's own length).
HOLD_EFFORT_LEAD_S = 3.0
# Rest after a dynamic set (re-racking, shaking out the arms) is not a hold for this long.
HOLD_NOT_AFTER_REP_S = 20.0
# A "hold" that ended this close before a set's first rep was its set-up (holding the handles,
# settling on the bench); so was one that lasted less than HOLD_MIN_S before a rep.
HOLD_DROP_BEFORE_REP_S = 15.0

# ---- during
# The hold's own level is the median of its first 4 effort windows (2 s).
HOLD_REFERENCE_WINDOWS = 4
# Still but no effort for this long: the hold ended where the quiet began.
HOLD_QUIET_END_S = 2.0
# The static test lags movement by half its 3 s window: the hold ended this long before.
HOLD_END_LAG_S = 1.5
# Violent shaking: this many times the hold's first seconds (and at least twice the tremor floor,
# so a quiet start does not make every later window violent), or this much at all.
HOLD_VIOLENT_FACTOR = 6.0
HOLD_VIOLENT_RMS_MPS2 = 1.5
# Loss of form: the limb's tilt drifted this far since the hold began ...
HOLD_DRIFT_STOP_DEG = 12.0
# ... or it sways this much (1-3 Hz).
HOLD_SWAY_STOP_RMS_MPS2 = 0.6
# A tremor growth rate is fitted over at least this many effort windows (2 s).
HOLD_GROWTH_MIN_WINDOWS = 4
# A dropped hold's alerts are those raised from its start until this long after its end.
HOLD_ALERT_SLACK_S = 1.0


@dataclass
class HoldStep:
    """What one call did: a hold started (at ``started_s``), ended (``ended``, the result entry,
    for the engine to record), or was dropped as a set-up (``dropped``, whose alerts go); and
    the alerts it raised."""

    started_s: float | None = None
    ended: dict[str, Any] | None = None
    dropped: dict[str, Any] | None = None
    alerts: list[Event] = field(default_factory=list)


def was_setup(hold: dict[str, Any], first_rep_start_s: float) -> bool:
    """A recorded hold that ended shortly before a set's first rep was its set-up."""
    return float(hold["end_s"]) >= first_rep_start_s - HOLD_DROP_BEFORE_REP_S


def without_alerts_of(hold: dict[str, Any], alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``alerts`` less what a hold that turned out to be a set's set-up alerted."""
    return [
        a
        for a in alerts
        if not (
            a["kind"] == "hold"
            and hold["start_s"] <= a["t_s"] <= hold["end_s"] + HOLD_ALERT_SLACK_S
        )
    ]


class HoldTracker:
    """Follows one sensor's holds window by window (``update``); ``on_rep`` when a rep starts,
    ``finish`` at the end of the data. ``hold`` is the hold in progress (its result entry)."""

    def __init__(self, exercise: str | None) -> None:
        self.exercise = exercise or "unknown"
        self.hold: dict[str, Any] | None = None
        self._static_since: float | None = None
        self._votes: list[tuple[float, bool]] = []  # (window centre, effort) while no hold
        self._windows: list[tuple[float, float]] = []  # (window centre, amplitude) of the hold
        self._quiet_since: float | None = None
        self._up0: np.ndarray | None = None
        self._ref_rms: float | None = None
        self._stop_sent = False
        self._info_sent = False

    @property
    def active(self) -> bool:
        return self.hold is not None

    # ------------------------------------------------------------------ per window
    def update(
        self,
        r: TremorReading,
        up: np.ndarray,
        *,
        in_set: bool,
        last_rep_end_s: float,
        baseline_mps2: float | None,
        t_last_s: float,
    ) -> HoldStep:
        """One tremor window ``r`` with the gravity direction ``up`` at its end; ``in_set``: a
        dynamic set is on; ``t_last_s``: the latest sample seen (a hold ends no later)."""
        if r.static:
            if self._static_since is None:
                self._static_since = r.center_s
        else:
            self._static_since = None
        base = max(baseline_mps2 or 0.0, BASELINE_FLOOR_MPS2)
        if self.hold is None:
            in_rep_zone = in_set or (r.t_end_s - last_rep_end_s) < HOLD_NOT_AFTER_REP_S
            return self._watch(r, up, base, in_rep_zone)
        if not r.static:
            return HoldStep(ended=self._end(r.t_end_s - HOLD_END_LAG_S, t_last_s))
        effort = r.amp_mps2 >= HOLD_TREMOR_FACTOR * base or r.sway_amp_mps2 >= SWAY_MIN_RMS_MPS2
        if not effort:
            # Still but no longer straining (sitting down in place): the hold ended where the
            # quiet began.
            if self._quiet_since is None:
                self._quiet_since = r.center_s
            if r.center_s - self._quiet_since >= HOLD_QUIET_END_S:
                return HoldStep(ended=self._end(self._quiet_since, t_last_s))
            return HoldStep()
        self._quiet_since = None
        return HoldStep(alerts=self._follow(r, up))

    def on_rep(self, rep_start_s: float, t_last_s: float) -> HoldStep:
        """A rep starting at ``rep_start_s`` ends the hold in progress, or shows it was the
        set-up (still before the first reps of a set, or inside a set found late)."""
        h = self.hold
        if h is None:
            return HoldStep()
        if (
            rep_start_s - float(h["end_s"]) < HOLD_DROP_BEFORE_REP_S
            or rep_start_s < float(h["start_s"]) + HOLD_MIN_S
        ):
            self.hold = None
            self._votes = []
            self._static_since = None
            return HoldStep(dropped=h)
        return HoldStep(ended=self._end(rep_start_s, t_last_s))

    def finish(self, t_end_s: float, t_last_s: float) -> HoldStep:
        if self.hold is None:
            return HoldStep()
        return HoldStep(ended=self._end(t_end_s, t_last_s))

    # ------------------------------------------------------------------ stages
    def _watch(self, r: TremorReading, up: np.ndarray, base: float, in_rep_zone: bool) -> HoldStep:
        """No hold yet: votes on effort, and starts a hold when enough windows show it."""
        effort = (r.amp_mps2 >= HOLD_TREMOR_FACTOR * base and r.peak_hz >= HOLD_MIN_PEAK_HZ) or (
            r.sway_amp_mps2 >= SWAY_MIN_RMS_MPS2 and r.sway_peak_hz >= SWAY_MIN_PEAK_HZ
        )
        vote = bool(r.static and effort and not in_rep_zone)
        self._votes = (self._votes + [(r.center_s, vote)])[-HOLD_VOTE_WINDOWS:]
        if (
            self._static_since is None
            or len(self._votes) < HOLD_VOTE_WINDOWS
            or sum(v for _, v in self._votes) < HOLD_MIN_VOTE_SHARE * HOLD_VOTE_WINDOWS
            or r.center_s - self._static_since < HOLD_MIN_S
        ):
            return HoldStep()
        # The hold began when the limb came to rest, unless it rested for a while first (then
        # shortly before the effort showed).
        first_effort = next(c for c, v in self._votes if v)
        start = max(self._static_since - HOLD_START_LAG_S, first_effort - HOLD_EFFORT_LEAD_S)
        start = max(0.0, start)
        self.hold = {
            "kind": "hold",
            "start_s": round(start, 3),
            "end_s": round(start, 3),
            "exercise": self.exercise,
            "velocity_loss_pct": None,
            "reps": [],
            "time_to_tremor_onset_s": None,
            "posture_drift_deg": 0.0,
            "stop_reason": None,
        }
        self._windows = []
        self._quiet_since = None
        self._up0 = up.copy()
        self._ref_rms = None
        self._stop_sent = False
        self._info_sent = False
        return HoldStep(started_s=start)

    def _follow(self, r: TremorReading, up: np.ndarray) -> list[Event]:
        """An effort window of the hold in progress: onset, drift and stop."""
        h = self.hold
        assert h is not None
        center, amp = r.center_s, r.amp_mps2
        alerts: list[Event] = []
        self._windows.append((center, amp))
        self._windows = self._windows[-MAX_WINDOWS_KEPT:]
        if self._ref_rms is None and len(self._windows) >= HOLD_REFERENCE_WINDOWS:
            first = [a for _, a in self._windows[:HOLD_REFERENCE_WINDOWS]]
            self._ref_rms = max(float(np.median(first)), BASELINE_FLOOR_MPS2)
        h["end_s"] = round(center, 3)
        ref = self._ref_rms
        if (
            ref is not None
            and h["time_to_tremor_onset_s"] is None
            and amp >= max(TREMOR_INDEX_FACTOR * ref, TREMOR_MIN_RMS_MPS2)
        ):
            h["time_to_tremor_onset_s"] = round(center - h["start_s"], 3)
            if not self._info_sent:
                self._info_sent = True
                alerts.append(
                    alert_event(
                        center,
                        "info",
                        "hold",
                        f"hold: tremor {amp / ref:.1f}x the start after {center - h['start_s']:.0f} s (controlled shaking is fine)",
                    )
                )
        drift_deg = (
            float(np.degrees(np.arccos(np.clip(np.dot(up, self._up0), -1, 1))))
            if self._up0 is not None
            else 0.0
        )
        h["posture_drift_deg"] = round(max(h.get("posture_drift_deg", 0.0), drift_deg), 2)
        reason = _stop_reason(amp, r.sway_amp_mps2, ref, drift_deg)
        if reason and not self._stop_sent:
            self._stop_sent = True
            h["stop_reason"] = reason
            alerts.append(alert_event(center, "stop", "hold", f"hold: {reason}: end the hold"))
        return alerts

    def _end(self, t_s: float, t_last_s: float) -> dict[str, Any]:
        h = self.hold
        assert h is not None
        self.hold = None
        self._votes = []
        self._static_since = None
        h["end_s"] = round(max(h["end_s"], min(t_s, t_last_s)), 3)
        h["duration_s"] = round(h["end_s"] - h["start_s"], 3)
        win = self._windows
        if len(win) >= HOLD_GROWTH_MIN_WINDOWS:
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
        return h


def _stop_reason(
    amp_mps2: float, sway_amp_mps2: float, ref_mps2: float | None, drift_deg: float
) -> str | None:
    if amp_mps2 >= HOLD_VIOLENT_RMS_MPS2 or (
        ref_mps2 is not None
        and amp_mps2 >= HOLD_VIOLENT_FACTOR * ref_mps2
        and amp_mps2 >= 2 * TREMOR_MIN_RMS_MPS2
    ):
        return "violent shaking"
    if drift_deg >= HOLD_DRIFT_STOP_DEG:
        return f"loss of form: posture drifted {drift_deg:.0f} deg"
    if sway_amp_mps2 >= HOLD_SWAY_STOP_RMS_MPS2:
        return "loss of form: sway"
    return None
