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


@dataclass
class LiveAlert:
    t_s: float
    level: str  # info, warn, stop
    kind: str
    message: str
    device: str = ""


@dataclass
class LiveState:
    """A snapshot of the whole session, refreshed several times a second."""

    session_path: str = ""
    elapsed_s: float = 0.0
    devices: list[DeviceStats] = field(default_factory=list)
    set_number: int = 0
    set_kind: str = ""
    rep_number: int = 0
    last_rep_velocity_mps: float | None = None
    best_rep_velocity_mps: float | None = None
    velocity_loss_pct: float | None = None
    vl_threshold_pct: float | None = None
    tremor_rms_mps2: float | None = None
    tremor_peak_hz: float | None = None
    tremor_cause: str | None = None
    moving: bool = False
    alerts: list[LiveAlert] = field(default_factory=list)
