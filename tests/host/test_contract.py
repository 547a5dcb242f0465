"""The analysis output against its typed contract (analysis/contract.py, docs/analysis-output.md),
and the one two-sensor merge (analysis/combine.py)."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import numpy as np
import pytest
from tremorlift.analysis import analyze_recordings, combine_devices, device_results
from tremorlift.analysis import contract as c
from tremorlift.twin.motion.generator import generate

DOC = Path(__file__).resolve().parents[2] / "docs" / "analysis-output.md"


def check(value: Any, typ: Any, where: str = "result") -> None:
    """Fails unless ``value`` has type ``typ`` (TypedDicts key for key, Literals, unions)."""
    origin = get_origin(typ)
    if typ is Any:
        return
    if typ is type(None):
        assert value is None, f"{where}: {value!r} is not None"
    elif typ is float:
        assert isinstance(value, int | float) and not isinstance(value, bool), f"{where}: {value!r}"
    elif typ in (int, str, bool):
        assert isinstance(value, typ) and not (typ is int and isinstance(value, bool)), where
    elif origin is Literal:
        assert value in get_args(typ), f"{where}: {value!r} not one of {get_args(typ)}"
    elif origin in (Union, types.UnionType):
        errors = []
        for option in get_args(typ):
            try:
                check(value, option, where)
                return
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"{where}: {value!r} matches none of {typ}: {errors}")
    elif origin is list:
        assert isinstance(value, list), f"{where}: not a list"
        for i, item in enumerate(value):
            check(item, get_args(typ)[0], f"{where}[{i}]")
    elif typing.is_typeddict(typ):
        assert isinstance(value, dict), f"{where}: not a dict"
        hints = typing.get_type_hints(typ)
        missing = typ.__required_keys__ - value.keys()
        extra = value.keys() - hints.keys()
        assert not missing, f"{where}: {typ.__name__} lacks {sorted(missing)}"
        assert not extra, f"{where}: {typ.__name__} has no key {sorted(extra)}"
        for k, v in value.items():
            check(v, hints[k], f"{where}.{k}")
    else:
        raise AssertionError(f"{where}: cannot check type {typ!r}")


class _Rec:
    def __init__(self, dev: Any) -> None:
        self.name, self.t_s = dev.name, dev.t_s
        self.accel_mps2, self.gyro_radps = dev.accel_mps2, dev.gyro_radps
        self.sample_rate_hz, self.placement = 200.0, dev.placement


@pytest.fixture(scope="module")
def two_sensors() -> c.SessionResult:
    scenario = generate("two-sensors", 1)
    return analyze_recordings([_Rec(d) for d in scenario.devices])


def test_two_sensor_analysis_follows_the_contract(two_sensors: c.SessionResult) -> None:
    r = two_sensors
    check(r, c.SessionResult)
    for dev in r["devices"]:
        check(dev, c.DeviceResult, f"devices[{dev['name']}]")
    kinds = {s["kind"] for d in r["devices"] for s in d["sets"]}
    assert kinds == {"dynamic", "hold"}  # both set shapes were checked
    assert r["tremor_episodes"] and r["alerts"] and r["asymmetry"]
    assert all("device" in e for e in r["tremor_episodes"])
    assert device_results(r) == r["devices"]


def test_contract_names_every_key_the_document_names() -> None:
    """Each backquoted snake_case key in the document's tables is a key of some TypedDict."""
    text = DOC.read_text(encoding="utf-8")
    tables = "\n".join(line for line in text.splitlines() if line.startswith("|"))
    doc_keys = set(re.findall(r"`([a-z][a-z0-9_]*_[a-z0-9_]*|[a-z]+)`", tables))
    known: set[str] = set()
    for obj in vars(c).values():
        if typing.is_typeddict(obj):
            known |= set(typing.get_type_hints(obj))
    values = set(c.ALERT_KINDS + c.ALERT_LEVELS + c.TREMOR_CAUSES + c.SET_KINDS)
    values |= {"moderate", "high", "fresh"}  # zone names
    assert doc_keys - known - values == set()


def _result(name: str, velocities_mps: list[float], alerts: list[c.Alert]) -> c.DeviceResult:
    sets: list[c.Set] = []
    for i, v in enumerate(velocities_mps):
        rep: c.Rep = {
            "start_s": 100.0 * i, "end_s": 100.0 * i + 3, "concentric_start_s": 100.0 * i + 1,
            "concentric_end_s": 100.0 * i + 2, "mean_concentric_velocity_mps": v,
            "peak_velocity_mps": 2 * v, "rom_m": 0.5, "concentric_s": 1.0, "eccentric_s": 1.0,
            "time_under_tension_s": 3.0, "quality": 1.0, "velocity_loss_pct": 0.0,
            "zone": "fresh", "tremor_rms_mps2": 0.1,
        }  # fmt: skip
        sets.append({
            "kind": "dynamic", "start_s": 100.0 * i, "end_s": 100.0 * i + 10, "exercise": "squat",
            "velocity_loss_pct": 0.0, "reps": [rep, rep], "rep_count": 2, "reps_measured_well": 2,
            "max_velocity_loss_pct": 0.0, "best_velocity_mps": v, "fatigue_vs_set1_pct": None,
            "time_under_tension_s": 6.0, "tremor_rms_max_mps2": 0.1, "tremor_recovery_s": None,
        })  # fmt: skip
    return {
        "sample_rate_hz": 200.0, "placement": "thigh", "velocity_loss_threshold_pct": 20.0,
        "duration_s": 400.0, "tremor": "analysed", "tremor_baseline_rms_mps2": 0.02,
        "sets": sets, "tremor_episodes": [], "alerts": alerts, "name": name,
    }  # fmt: skip


def test_the_merge_honours_the_master_switch_for_asymmetry_alerts() -> None:
    told: c.Alert = {"t_s": 5.0, "level": "warn", "kind": "velocity_loss", "message": "x"}
    left = _result("left", [0.60, 0.62, 0.61], [told])
    right = _result("right", [0.50, 0.51, 0.50], [])
    on = combine_devices([left, right])
    check(on, c.SessionResult)
    asym = [a for a in on["alerts"] if a["kind"] == "asymmetry"]
    assert (
        len(asym) == 1 and asym[0]["level"] == "warn" and "left moved faster" in asym[0]["message"]
    )
    assert [a["t_s"] for a in on["alerts"]] == sorted(a["t_s"] for a in on["alerts"])
    assert {a.get("device") for a in on["alerts"] if a["kind"] != "asymmetry"} == {"left"}
    assert len(on["asymmetry"]) == 3 and on["devices"] == [left, right] and "name" not in on
    # The same results with alerts off (the engines then raised none): the merge raises none.
    quiet = combine_devices([dict(left, alerts=[]), dict(right, alerts=[])], alerts_enabled=False)
    assert quiet["alerts"] == [] and quiet["asymmetry"] == on["asymmetry"]
    # Rows and alerts stored beside the results are used as they are, and silenced likewise.
    stored = combine_devices([left, right], asymmetry=(on["asymmetry"], asym))
    assert stored == on
    assert combine_devices([left, right], alerts_enabled=False, asymmetry=([], asym))["alerts"] == [
        dict(told, device="left")
    ]


def test_one_sensor_is_its_own_result_and_nothing_is_a_value_error() -> None:
    one = _result("only", [0.5], [])
    assert combine_devices([one]) == one
    assert device_results(combine_devices([one])) == [one]
    with pytest.raises(ValueError):
        combine_devices([])


def test_allowed_values_are_the_literal_kinds() -> None:
    from tremorlift import settings
    from tremorlift.analysis import GOALS, PLACEMENTS
    from tremorlift.analysis.alerts import GOAL_THRESHOLDS_PCT, ZONES

    assert PLACEMENTS == ("wrist", "forearm", "thigh", "shank")
    assert GOALS == tuple(GOAL_THRESHOLDS_PCT) == settings.GOALS
    assert tuple(name for _, name in ZONES) == get_args(c.Zone)
    assert np.all(np.diff([b for b, _ in ZONES]) > 0)
