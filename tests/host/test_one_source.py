"""Each list of allowed values and each shared constant has one owner, and its users agree with it
(the firmware's own copies are held to the protocol in tests/firmware/test_const_copies.py)."""

from __future__ import annotations

import dataclasses

import pytest
from tremorlift import protocol, settings
from tremorlift.analysis import GOALS, PLACEMENTS
from tremorlift.analysis.alerts import GOAL_THRESHOLDS_PCT
from tremorlift.cli import main


def test_twin_imus_have_an_emulator_and_a_noise_model_each() -> None:
    from tremorlift.twin import IMUS
    from tremorlift.twin.motion.sensor import IMU_MODELS
    from tremorlift.twin.wearable import IMUS as EMULATORS

    assert set(IMUS) == set(EMULATORS) == set(IMU_MODELS)


def test_twin_placements_are_the_analysis_placements() -> None:
    from tremorlift.twin.motion import scenarios

    assert scenarios.PLACEMENTS is PLACEMENTS
    assert set(scenarios.SEGMENT_LEVER_M) == set(scenarios.SKIN_RADIUS_M) == set(PLACEMENTS)


def test_goals_and_feedback_switches() -> None:
    assert set(GOAL_THRESHOLDS_PCT) == set(GOALS)
    fields = {f.name for f in dataclasses.fields(settings.Settings)}
    assert set(settings.FEEDBACK_SWITCHES) <= fields
    assert {k.removeprefix("feedback.") for k in settings.KEYS if k.startswith("feedback.")} == set(
        settings.FEEDBACK_SWITCHES
    )


def test_wire_values_live_in_the_protocol_module() -> None:
    from tremorlift.transport import ble

    for name in ("SERVICE_UUID", "DATA_UUID", "CONTROL_UUID", "STATUS_UUID", "INFO_UUID"):
        assert getattr(ble, name) is getattr(protocol, name)
    assert ble.NAME_PREFIX is protocol.NAME_PREFIX


@pytest.mark.parametrize(
    ("mv", "pct"),
    [(0, None), (3000, 0), (3300, 0), (3725, 50), (4149, 99), (4150, 100), (4300, 100)],
)
def test_battery_pct_as_the_wearable_advertises_it(mv: int, pct: int | None) -> None:
    assert protocol.battery_pct(mv) == pct


def test_collect_offers_the_rates_configure_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect", "--simulate", "demo", "--rate", "300"]) == 2
    err = capsys.readouterr().err
    assert "--rate must be one of 100, 200, 400, 1000 Hz, got 300" in err
