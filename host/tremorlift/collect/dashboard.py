"""The live terminal dashboard: the only module in tremorlift that imports rich.

``Dashboard`` redraws a ``LiveState`` a few times a second; ``EventPrinter`` is the ``--no-ui``
alternative that prints one line per event instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tremorlift.collect.live import DeviceStats, LiftState, LiveAlert, LiveState

_LEVEL_STYLE = {"info": "cyan", "warn": "bold yellow", "stop": "bold white on red"}
# The terminal the dashboard is laid out for (the classic size; larger ones show it as is).
SCREEN_COLUMNS, SCREEN_ROWS = 80, 24
ALERT_LOG_LINES = 3  # the latest alerts listed under the banner
# Speed colour: the loss so far against the limit (warn zone from this fraction of it).
WARN_FRACTION_OF_LIMIT = 0.75

# A 3x5 pixel font drawn with half blocks (3 text rows): the rep number, the last rep's speed
# and the velocity loss are readable from the rack, two metres from the screen.
_FONT = {
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "001", "001", "001"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
    ".": ("0", "0", "0", "0", "1"),
    "-": ("000", "000", "111", "000", "000"),
    "%": ("101", "001", "010", "100", "101"),
    " ": ("0", "0", "0", "0", "0"),
}
_HALF = {("1", "1"): "\u2588", ("1", "0"): "\u2580", ("0", "1"): "\u2584", ("0", "0"): " "}


def big(text: str) -> list[str]:
    """``text`` (digits, ``.``, ``-``, ``%``, space) as three rows of half-block glyphs."""
    glyphs = [_FONT[c] for c in text]
    rows = []
    for r in range(3):
        top, bottom = 2 * r, 2 * r + 1
        parts = []
        for g in glyphs:
            low = g[bottom] if bottom < 5 else "0" * len(g[0])
            parts.append("".join(_HALF[(a, b)] for a, b in zip(g[top], low, strict=True)))
        rows.append(" ".join(parts))
    return rows


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def _speed_style(lift: LiftState, limit_pct: float | None) -> str:
    """Green while the loss is well inside the limit, yellow close to it, red past it."""
    if lift.velocity_loss_pct is None or limit_pct is None:
        return "bold"
    if lift.velocity_loss_pct >= limit_pct:
        return "bold red"
    if lift.velocity_loss_pct >= WARN_FRACTION_OF_LIMIT * limit_pct:
        return "bold yellow"
    return "bold green"


def _big_cell(label: str, value: str, style: str) -> Text:
    cell = Text(label + "\n", style="dim")
    cell.append("\n".join(big(value)), style=style)
    return cell


def _lift_panel(lift: LiftState, vl_threshold_pct: float | None) -> Panel:
    """One sensor: rep, last rep speed and velocity loss in large digits, then set and tremor."""
    title = lift.name + (f" ({lift.limb})" if lift.limb else "")
    style = _speed_style(lift, vl_threshold_pct)
    top = Table.grid(padding=(0, 3))
    top.add_column(no_wrap=True)
    top.add_column(no_wrap=True)
    speed = "-" if lift.last_rep_velocity_mps is None else f"{lift.last_rep_velocity_mps:.2f}"
    top.add_row(
        _big_cell(
            "rep (set not yet sure)" if lift.rep_provisional else "rep",
            str(lift.rep_number or "-"),
            "dim" if lift.rep_provisional else "bold",
        ),
        _big_cell("last rep m/s (limb)", speed, style),
    )
    loss = "-" if lift.velocity_loss_pct is None else f"{lift.velocity_loss_pct:.0f}%"
    limit = "-" if vl_threshold_pct is None else f"{vl_threshold_pct:.0f} %"
    vl = _big_cell(f"velocity loss (limit {limit})", loss, style)
    if lift.set_kind == "hold" and lift.in_set:
        set_label = f"hold {lift.hold_number}"
    else:
        set_label = "-" if lift.set_number == 0 else str(lift.set_number)
        if lift.set_number and not lift.in_set:
            set_label += " (done)"
    tremor = _fmt(lift.tremor_rms_mps2, ".3f", " m/s2")
    if lift.tremor_peak_hz is not None:
        tremor += f" {lift.tremor_peak_hz:.1f} Hz"
    if lift.tremor_cause:
        tremor += f" {lift.tremor_cause}"
    small = Text(no_wrap=True, overflow="ellipsis")
    small.append(f"set {set_label}  best {_fmt(lift.best_rep_velocity_mps, '.2f', ' m/s')}\n")
    small.append(f"tremor {tremor}")
    return Panel(Group(top, vl, small), title=Text(title, style="bold"), title_align="left")


def _device_line(d: DeviceStats) -> Text:
    """One line per wearable (the samples received are in the closing summary)."""
    if d.battery_pct is not None:
        battery = f"battery {d.battery_pct} %"
    else:
        battery = "battery -" if d.battery_mv is None else f"battery {d.battery_mv / 1000:.2f} V"
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{d.name} ", style="bold")
    line.append(f"{d.state} {d.rate_hz:.0f} Hz  ")
    # "missing": samples not (yet) received; resends fill most of them while the set goes on.
    line.append(f"{d.samples_lost} missing", style="red" if d.samples_lost else "green")
    if d.frames_corrupt:
        line.append(f"  {d.frames_corrupt} corrupt")
    if d.reconnects:
        line.append(f"  {d.reconnects} reconn.")
    line.append(f"  {battery}")
    return line


def render(state: LiveState) -> Group:
    """Build the dashboard for one snapshot (pure: used by tests too). It fits 80x24 with up to
    two sensors: a header, one line per wearable, the sensors' panels side by side, the latest
    warn or stop as a banner and the last alerts."""
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append(f"tremorlift  {state.elapsed_s:6.1f} s", style="bold")
    links = sorted({d.transport for d in state.devices})
    if links:
        head.append(f"  {'/'.join(links)}")
    if state.session_path:
        # The file's name; its full path is printed when the session ends.
        head.append(f"  recording to {Path(state.session_path).name}", style="dim")
    parts: list[Any] = [head]
    parts += [_device_line(d) for d in state.devices]
    lifts = Table.grid(padding=(0, 1), expand=True)
    panels: list[Any] = [_lift_panel(lift, state.vl_threshold_pct) for lift in state.lifts]
    for _ in panels or ["-"]:
        lifts.add_column(ratio=1)
    lifts.add_row(*(panels or [Text("waiting for a wearable", style="dim")]))
    parts.append(lifts)
    degraded = [d for d in state.devices if d.live_degraded]
    if degraded:
        # The live results went on over holes the link lost: say so where the lifter looks.
        parts.append(
            Text(
                "live figures skip samples the link lost: "
                + ", ".join(f"{d.name} ({d.live_holes_given_up} gaps)" for d in degraded)
                + "; the saved session has all that resends brought",
                style="bold yellow",
            )
        )
    latest = state.alerts[-1] if state.alerts else None
    if latest is not None and latest.level in ("warn", "stop"):
        parts.append(
            Panel(
                Text(
                    f"{latest.level.upper()}: {latest.message}",
                    style=_LEVEL_STYLE[latest.level],
                    justify="center",
                ),
                style=_LEVEL_STYLE[latest.level],
            )
        )
    for a in state.alerts[-ALERT_LOG_LINES:]:
        # What and where in one line each; the banner above carries the latest one's words.
        where = a.device + (f" set {a.set}" if a.set else "") + (f" rep {a.rep}" if a.rep else "")
        line = Text(f"{a.t_s:7.1f} s ", no_wrap=True, overflow="ellipsis")
        line.append(f"{a.level:5}", style=_LEVEL_STYLE.get(a.level, ""))
        line.append(f" {a.kind.replace('_', ' ')}  {where}")
        parts.append(line)
    return Group(*parts)


class Dashboard:
    """Context manager that keeps the terminal showing the latest snapshot."""

    def __init__(
        self, stream: TextIO | None = None, refresh_hz: float = 4.0, *, no_color: bool = False
    ) -> None:
        # no_color: plain text attributes only (bold, reverse), as https://no-color.org asks;
        # rich also obeys NO_COLOR in the environment by itself.
        self._console = Console(file=stream or sys.stdout, no_color=no_color or None)
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
