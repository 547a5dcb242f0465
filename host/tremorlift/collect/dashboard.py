"""The live terminal dashboard: the only module in tremorlift that imports rich.

``Dashboard`` redraws a ``LiveState`` a few times a second; ``EventPrinter`` is the ``--no-ui``
alternative that prints one line per event instead.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tremorlift.collect.live import LiftState, LiveAlert, LiveState

# A tremor meter saturates at this RMS (m/s^2): physiological tremor at rest is ~0.01-0.05,
# fatigue tremor late in a set ~0.1-0.3.
TREMOR_FULL_SCALE_MPS2 = 0.3
_LEVEL_STYLE = {"info": "cyan", "warn": "bold yellow", "stop": "bold white on red"}


def _meter(fraction: float, width: int = 24) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "#" * filled + "." * (width - filled)


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def _lift_panel(lift: LiftState, vl_threshold_pct: float | None) -> Table:
    """One sensor's set, rep, speed, velocity loss and tremor."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    title = lift.name + (f" ({lift.limb})" if lift.limb else "")
    grid.add_row(Text(title, style="bold underline"), "")
    if lift.set_kind == "hold" and lift.in_set:
        set_label = f"hold {lift.hold_number}"
    else:
        set_label = "-" if lift.set_number == 0 else str(lift.set_number)
        if lift.set_number and not lift.in_set:
            set_label += " (done)"
    grid.add_row("set", set_label)
    grid.add_row("rep", str(lift.rep_number) if lift.rep_number else "-")
    grid.add_row("last rep", _fmt(lift.last_rep_velocity_mps, ".2f", " m/s"))
    grid.add_row("best rep", _fmt(lift.best_rep_velocity_mps, ".2f", " m/s"))
    vl = _fmt(lift.velocity_loss_pct, ".0f", " %")
    if vl_threshold_pct is not None:
        vl += f"  (stop at {vl_threshold_pct:.0f} %)"
    grid.add_row("velocity loss", vl)
    rms = lift.tremor_rms_mps2 or 0.0
    tremor = (
        f"|{_meter(rms / TREMOR_FULL_SCALE_MPS2, 12)}| {_fmt(lift.tremor_rms_mps2, '.3f', ' m/s2')}"
    )
    if lift.tremor_peak_hz is not None:
        tremor += f" at {lift.tremor_peak_hz:.1f} Hz"
    if lift.tremor_cause:
        tremor += f" ({lift.tremor_cause})"
    grid.add_row("tremor", Text(tremor))
    return grid


def render(state: LiveState) -> Group:
    """Build the dashboard for one snapshot (pure: used by tests too)."""
    links = Table(title="Wearables", expand=True)
    # "missing": samples not (yet) received; resends fill most of them while the set goes on.
    for col in (
        "device",
        "link",
        "state",
        "rate",
        "received",
        "missing",
        "corrupt",
        "reconn.",
        "battery",
    ):
        links.add_column(col)
    for d in state.devices:
        lost_style = "red" if d.samples_lost else "green"
        battery = "-" if d.battery_mv is None else f"{d.battery_mv / 1000:.2f} V"
        if d.battery_pct is not None:
            battery += f" ({d.battery_pct} %)"
        links.add_row(
            d.name,
            d.transport,
            d.state,
            f"{d.rate_hz:.0f} Hz",
            f"{d.samples_received}",
            Text(f"{d.samples_lost}", style=lost_style),
            f"{d.frames_corrupt}",
            f"{d.reconnects}",
            battery,
        )

    lifts = Table.grid(padding=(0, 3), expand=True)
    panels: list[Table | str] = [_lift_panel(lift, state.vl_threshold_pct) for lift in state.lifts]
    for _ in panels or ["-"]:
        lifts.add_column()
    lifts.add_row(*(panels or ["-"]))
    degraded = [d for d in state.devices if d.live_degraded]
    parts: list = [links, Panel(lifts, title=f"Session {state.elapsed_s:6.1f} s")]
    if degraded:
        # The live results went on over holes the link lost: say so where the lifter looks.
        parts.append(
            Text(
                "link: live results computed with lost samples on "
                + ", ".join(f"{d.name} ({d.live_holes_given_up} gaps)" for d in degraded)
                + "; the saved session is complete where resends arrived",
                style="bold yellow",
            )
        )
    latest = state.alerts[-1] if state.alerts else None
    if latest is not None and latest.level in ("warn", "stop"):
        parts.append(
            Panel(
                Text(latest.message, style=_LEVEL_STYLE[latest.level], justify="center"),
                title=latest.level.upper(),
            )
        )
    if state.alerts:
        log = Table.grid(padding=(0, 1))
        for a in state.alerts[-5:]:
            where = (
                a.device + (f" set {a.set}" if a.set else "") + (f" rep {a.rep}" if a.rep else "")
            )
            log.add_row(
                f"{a.t_s:7.1f} s",
                Text(a.level, style=_LEVEL_STYLE.get(a.level, "")),
                where,
                a.message,
            )
        parts.append(Panel(log, title="Alerts"))
    if state.session_path:
        parts.append(Text(f"recording to {state.session_path}", style="dim"))
    return Group(*parts)


class Dashboard:
    """Context manager that keeps the terminal showing the latest snapshot."""

    def __init__(self, stream: TextIO | None = None, refresh_hz: float = 4.0) -> None:
        self._console = Console(file=stream or sys.stdout)
        self._live = Live(console=self._console, refresh_per_second=refresh_hz, transient=False)

    def __enter__(self) -> Dashboard:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def update(self, state: LiveState) -> None:
        self._live.update(render(state))

    def event(self, line: str) -> None:
        self._console.log(line)


class EventPrinter:
    """``--no-ui``: one plain line per event, nothing redrawn."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout

    def __enter__(self) -> EventPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.flush()

    def update(self, state: LiveState) -> None:  # nothing to redraw
        pass

    def event(self, line: str) -> None:
        print(line, file=self._stream, flush=True)


def alert_line(alert: LiveAlert) -> str:
    where = f" [{alert.device}]" if alert.device else ""
    return f"{alert.t_s:8.2f} s  {alert.level.upper():4}  {alert.kind}{where}: {alert.message}"
