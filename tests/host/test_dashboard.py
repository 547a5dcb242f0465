"""The live dashboard fits an 80x24 terminal: the lifter's numbers large, a panel per sensor,
the alert banner in view, nothing cut."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from tremorlift.collect.dashboard import SCREEN_COLUMNS, SCREEN_ROWS, big, render
from tremorlift.collect.live import DeviceStats, LiftState, LiveAlert, LiveState

STOP = "velocity loss 27 % is past your 20 % limit: end the set now"


def _state(sensors: int, *, alerts: int = 6, degraded: bool = False) -> LiveState:
    names = [("left-forearm", "left"), ("right-forearm", "right")][:sensors]
    devices = [
        DeviceStats(
            name=n, address=f"AA:BB:CC:DD:EE:0{i}", transport="ble", state="streaming",
            rate_hz=1000, samples_received=1_234_567, samples_lost=12, frames_corrupt=3,
            reconnects=2, battery_mv=3910, battery_pct=80, live_degraded=degraded,
            live_holes_given_up=4,
        )
        for i, (n, _) in enumerate(names)
    ]  # fmt: skip
    lifts = [
        LiftState(
            name=n, limb=limb, set_number=12, in_set=True, set_kind="dynamic", rep_number=18,
            last_rep_velocity_mps=0.47 + i / 100, best_rep_velocity_mps=0.71,
            velocity_loss_pct=27.0 + i, tremor_rms_mps2=0.123, tremor_peak_hz=9.8,
            tremor_cause="fatigue",
        )
        for i, (n, limb) in enumerate(names)
    ]  # fmt: skip
    levels = ["info", "warn", "stop"]
    log = [
        LiveAlert(t_s=100.0 + k, level=levels[k % 3], kind="velocity_loss", message=STOP,
                  device=names[0][0], set=12, rep=10 + k)
        for k in range(alerts)
    ]  # fmt: skip
    return LiveState(
        session_path="/home/lifter/.local/share/tremorlift/2026-12-06T05-40-00.tlsession",
        elapsed_s=3599.9, devices=devices, lifts=lifts, vl_threshold_pct=20.0, alerts=log,
    )  # fmt: skip


def _screen(state: LiveState) -> list[str]:
    console = Console(
        file=io.StringIO(), width=SCREEN_COLUMNS, height=SCREEN_ROWS, record=True, no_color=True
    )
    console.print(render(state))
    return console.export_text().rstrip("\n").splitlines()


def test_big_digits_are_three_rows() -> None:
    rows = big("0.5")
    assert len(rows) == 3 and len({len(r) for r in rows}) == 1
    assert rows == ["█▀█   █▀▀", "█ █   ▀▀█", "▀▀▀ ▀ ▀▀▀"]


@pytest.mark.parametrize("sensors", [1, 2])
@pytest.mark.parametrize("degraded", [False, True])
def test_dashboard_fits_80_by_24_with_nothing_cut(sensors: int, degraded: bool) -> None:
    state = _state(sensors, degraded=degraded)
    lines = _screen(state)
    assert (SCREEN_COLUMNS, SCREEN_ROWS) == (80, 24)
    assert len(lines) <= SCREEN_ROWS, "\n".join(lines)
    assert max(len(line) for line in lines) <= SCREEN_COLUMNS
    text = "\n".join(lines)
    assert "…" not in text, text  # no line shortened
    # The numbers a lifter needs, in large digits: rep, last rep speed, velocity loss; for
    # each sensor, in its own panel, side by side.
    for lift in state.lifts:
        assert f"{lift.name} ({lift.limb})" in text
        for figure in (str(lift.rep_number), f"{lift.last_rep_velocity_mps:.2f}"):
            for row in big(figure):
                assert row in text, figure
        for row in big(f"{lift.velocity_loss_pct:.0f}%"):
            assert row in text
        assert "limit 20 %" in text and "fatigue" in text
        top_row = next(line for line in lines if f"{lift.name} ({lift.limb})" in line)
        assert top_row.count("╭") == sensors  # the panels share their rows
    # The banner: the latest alert's full words; the log lists the last three.
    banner = [line for line in lines if "STOP:" in line]
    assert len(banner) == 1 and STOP in " ".join(text.split())
    assert sum("velocity loss  left-forearm" in line for line in lines) == 3
    for d in state.devices:
        assert f"{d.name} streaming 1000 Hz  12 missing  3 corrupt  2 reconn." in text
        assert "battery 80 %" in text
    assert ("live figures skip samples the link lost" in text) == degraded


def test_big_digit_rows_are_the_widest_text() -> None:
    # The rep and speed digits take three rows and three columns a glyph: larger than any
    # other text on the screen.
    lines = _screen(_state(1, alerts=0))
    rep_rows = [line for line in lines if big("18")[0] in line]
    assert rep_rows and all(big("0.47")[0] in line for line in rep_rows)
    assert not any("STOP" in line for line in lines)  # no alert yet: no banner


def test_a_provisional_rep_1_is_shown_as_not_yet_sure() -> None:
    state = _state(1, alerts=0)
    lift = state.lifts[0]
    lift.in_set, lift.rep_number, lift.rep_provisional = False, 1, True
    lift.velocity_loss_pct, lift.last_rep_velocity_mps = 0.0, 0.52
    text = "\n".join(_screen(state))
    assert "rep (set not yet sure)" in text
    for row in big("1"):
        assert row in text
    lift.rep_provisional = False
    assert "not yet sure" not in "\n".join(_screen(state))
