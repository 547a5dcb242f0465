"""What the collector knows at any moment, as plain data for the dashboard and the event log."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DeviceStats:
    """Link and loss figures for one wearable."""

    name: str
    address: str
    transport: str
    state: str = "connecting"  # connecting, streaming, reconnecting, stopped, failed
    rate_hz: float = 0.0
    samples_expected: int = 0
    samples_received: int = 0
    samples_lost: int = 0
    samples_lost_on_device: int = 0  # FIFO overflows: never reached the radio
    frames_received: int = 0
    frames_corrupt: int = 0
    frames_resent: int = 0
    duplicates: int = 0
    reconnects: int = 0
    disconnects: int = 0
    battery_mv: int | None = None
    battery_pct: int | None = None
    notify_backoffs: int = 0
    fifo_overflows: int = 0
    att_mtu: int | None = None
    # The live analysis's view of the link: holes whose wait for a resend ran out (the live
    # results went on without them) and the longest a frame waited for a hole before it.
    live_holes_given_up: int = 0
    live_max_wait_ms: float = 0.0
    live_degraded: bool = False  # a hole was given up within the last minute


@dataclass
class LiveAlert:
    """An alert as the lifter was told it, live."""

    t_s: float  # engine time of the sample that raised it (the rep's end for velocity loss)
    level: str  # info, warn, stop
    kind: str
    message: str
    device: str = ""
    set: int | None = None  # the sensor's lifting set (1, 2, ...) it was raised in, if any
    rep: int | None = None  # the rep within that set that raised it (velocity loss, tremor)
    complete: bool = True  # False: computed over samples the link lost and never resent in time
    session_s: float = 0.0  # session time at which it was raised


@dataclass
class LiftState:
    """What one sensor's live analysis says now (sets and reps are numbered per sensor)."""

    name: str
    limb: str | None = None
    set_number: int = 0  # the lifting set under way or last seen (holds are counted apart)
    sets_done: int = 0
    hold_number: int = 0
    set_kind: str = ""  # "dynamic", "hold" or "" before the first
    in_set: bool = False
    rep_number: int = 0
    # The rep shown is a provisional rep 1: its set is not recognised yet (analysis/first_rep.py).
    rep_provisional: bool = False
    last_rep_velocity_mps: float | None = None
    best_rep_velocity_mps: float | None = None
    velocity_loss_pct: float | None = None
    tremor_rms_mps2: float | None = None
    tremor_peak_hz: float | None = None
    tremor_cause: str | None = None
    last_rep_span_s: tuple[float, float] | None = None  # engine times of the last rep


@dataclass
class LiveState:
    """A snapshot of the whole session, refreshed several times a second."""

    session_path: str = ""
    elapsed_s: float = 0.0
    devices: list[DeviceStats] = field(default_factory=list)
    lifts: list[LiftState] = field(default_factory=list)  # one per sensor, in device order
    vl_threshold_pct: float | None = None
    alerts: list[LiveAlert] = field(default_factory=list)  # the latest, for the screen
