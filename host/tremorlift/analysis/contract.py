"""The analysis output as types: what ``Engine.result()``, ``tremorlift analyze --json`` and the
collector's stored results hold (docs/analysis-output.md, key for key).

Types only (plus the allowed-value tuples read off the ``Literal`` kinds): importing this module
costs nothing, so the commands and the coach modules use it freely. Every time is in seconds from
the first sample; velocities are vertical (earth frame), positive up.

No ``from __future__ import annotations`` here: the annotations are evaluated when the classes
are made, so ``__required_keys__`` knows the ``NotRequired`` keys (tests check results with it).
"""

from typing import Any, Literal, NotRequired, TypedDict, TypeGuard, get_args

# ============================================================================ kinds

Placement = Literal["wrist", "forearm", "thigh", "shank"]
Goal = Literal["power", "strength", "hypertrophy"]
SetKind = Literal["dynamic", "hold"]
Zone = Literal["fresh", "moderate", "high", "very high", "near failure"]
TremorCause = Literal["fatigue", "instability", "rest", "other"]
AlertLevel = Literal["info", "warn", "stop"]
AlertKind = Literal["velocity_loss", "tremor", "hold", "rest_tremor", "recovery", "asymmetry"]
EventKind = Literal[
    "set_start", "rep", "set_end", "tremor_episode", "alert", "rep_provisional", "rep_withdrawn"
]

# The same lists as tuples, for argparse ``choices`` and value checks.
PLACEMENTS: tuple[Placement, ...] = get_args(Placement)
GOALS: tuple[Goal, ...] = get_args(Goal)
SET_KINDS: tuple[SetKind, ...] = get_args(SetKind)
TREMOR_CAUSES: tuple[TremorCause, ...] = get_args(TremorCause)
ALERT_LEVELS: tuple[AlertLevel, ...] = get_args(AlertLevel)
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)


def is_goal(value: object) -> TypeGuard[Goal]:
    return value in GOALS


def is_placement(value: object) -> TypeGuard[Placement]:
    return value in PLACEMENTS


# ============================================================================ reps and sets


class Rep(TypedDict):
    """One rep of a dynamic set (the whole movement, eccentric and concentric)."""

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
    quality: float  # 0-1: how well the velocity was measured
    velocity_loss_pct: float  # against the fastest well-measured rep so far
    zone: Zone
    tremor_rms_mps2: float | None  # None before the first tremor window
    tremor_index: NotRequired[float]  # from rep 3 on


class DynamicSet(TypedDict):
    kind: Literal["dynamic"]
    start_s: float
    end_s: float
    exercise: str  # "unknown" when not given
    velocity_loss_pct: float
    reps: list[Rep]
    rep_count: int
    reps_measured_well: int
    max_velocity_loss_pct: float
    best_velocity_mps: float
    fatigue_vs_set1_pct: float | None
    time_under_tension_s: float
    tremor_rms_max_mps2: float | None
    tremor_recovery_s: float | None  # recovery: tremor back at the quiet level (None: not seen)
    # A session's final analysis (store.final): the load lifted, kg, as recorded (None: not given)
    load_kg: NotRequired[float | None]


class Hold(TypedDict):
    """An isometric hold: static effort with raised tremor-band activity or sway."""

    kind: Literal["hold"]
    start_s: float
    end_s: float
    exercise: str
    velocity_loss_pct: None
    reps: list[Rep]  # always empty
    duration_s: float
    time_to_tremor_onset_s: float | None
    tremor_growth_pct_per_s: float | None
    tremor_rms_max_mps2: float | None
    posture_drift_deg: float
    stop_reason: str | None  # "violent shaking", "loss of form: sway", "loss of form: posture ..."
    tremor_recovery_s: float | None


Set = DynamicSet | Hold


# ============================================================================ tremor and alerts


class TremorEpisode(TypedDict):
    start_s: float
    end_s: float
    peak_hz: float
    rms_mps2: float
    rms_max_mps2: float
    growth_ratio: float
    power_3_7_hz_m2ps4: float
    power_8_12_hz_m2ps4: float
    spectral_entropy: float
    tremor_stability_index_hz: float | None
    cause: TremorCause
    device: NotRequired[str]  # with two or more sensors, in the merged list


class Alert(TypedDict):
    t_s: float
    level: AlertLevel
    kind: AlertKind
    message: str
    velocity_loss_pct: NotRequired[float]  # velocity-loss alerts: the loss that decided
    device: NotRequired[str]  # with two or more sensors, in the merged list
    # A session's final analysis (store.final): the lifting set (1, 2, ... per sensor, holds
    # apart) and the rep the alert was raised in, as the collector numbers them live.
    set: NotRequired[int | None]
    rep: NotRequired[int | None]


class AsymmetryRow(TypedDict):
    """One pair of sets seen by two sensors (first against second)."""

    start_s: float
    end_s: float
    kind: SetKind
    # exp(mean ln(v_first / v_second)) - 1 over the set's paired reps, % (analysis/limbs.py)
    velocity_asymmetry_pct: float | None
    velocity_asymmetry_ci_pct: list[float] | None  # its 95 % interval [low, high]
    paired_reps: int  # reps measured well by both sensors, paired in time
    tremor_ratio: float | None  # first / second peak tremor RMS


class LoadVelocityProfile(TypedDict):
    """One exercise's load-velocity line and estimated 1RM (analysis/loadvelocity.py)."""

    points: int
    distinct_loads: int
    slope_mps_per_kg: float | None
    intercept_mps: float | None
    residual_se_mps: float | None
    r2: float | None
    mvt_mps: float | None
    one_rm_kg: float | None
    one_rm_ci_kg: list[float] | None
    confidence: float
    method: str
    refused: str | None
    interval_note: NotRequired[str]


# ============================================================================ results


class EngineResult(TypedDict):
    """What one engine finds in one sensor's samples (``Engine.result()``)."""

    sample_rate_hz: float
    placement: Placement | None
    velocity_loss_threshold_pct: float
    # when the velocity-loss stop comes: "one-more" (a rep after the warn) or "at-limit"
    stop_policy: NotRequired[str]
    duration_s: float
    tremor: str  # "analysed" or "not analysed: R Hz is below 50 Hz"
    tremor_baseline_rms_mps2: float | None
    sets: list[Set]
    tremor_episodes: list[TremorEpisode]
    alerts: list[Alert]


class DeviceResult(EngineResult):
    """One sensor's result, named (a device name, or the file name for a CSV)."""

    name: str
    input_warnings: NotRequired[list[str]]


class SessionResult(EngineResult):
    """The whole analysis (``tremorlift analyze --json``). One sensor: its result as it is. Two or
    more: the first sensor's keys, ``devices`` (one result each), ``tremor_episodes`` and
    ``alerts`` merged over the sensors (each carrying ``device``), ``asymmetry`` for two."""

    name: NotRequired[str]
    input_warnings: NotRequired[list[str]]
    devices: NotRequired[list[DeviceResult]]
    asymmetry: NotRequired[list[AsymmetryRow]]
    settings: NotRequired[dict[str, Any]]  # a session's final analysis: the settings it used


# ============================================================================ live events


class SetStartData(TypedDict):
    kind: SetKind


class RepData(Rep):
    rep: int  # rep number within the set, from 1


# What each event kind carries (``Event.data``): set_start SetStartData, rep RepData, set_end Set,
# tremor_episode TremorEpisode, alert Alert.
EventData = SetStartData | RepData | DynamicSet | Hold | TremorEpisode | Alert
