"""Limb asymmetry (analysis/limbs.py): sign and naming, reps paired in time, the uncertainty that
decides whether an asymmetry is reported, and the sign against the twin's own truth."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
from tremorlift.analysis import analyze_recordings, limbs
from tremorlift.analysis.limbs import compare_limbs, t_975
from tremorlift.twin.motion import generator


def _rep(t: float, v: float, quality: float = 0.9) -> dict:
    return {
        "start_s": t, "end_s": t + 2.0, "concentric_start_s": t + 1.0,
        "concentric_end_s": t + 1.8, "mean_concentric_velocity_mps": v, "quality": quality,
    }  # fmt: skip


def _set(start: float, velocities: list[float], tremor: float = 0.1, **kw: float) -> dict:
    reps = [_rep(start + 3.0 * i, v) for i, v in enumerate(velocities)]
    return {
        "kind": "dynamic", "start_s": start, "end_s": start + 3.0 * len(reps),
        "reps": reps, "tremor_rms_max_mps2": tremor, **kw,
    }  # fmt: skip


def _result(sets: list[dict], **kw: str) -> dict:
    return {"sets": sets, **kw}


WOBBLE = [1.0, 1.01, 0.99, 1.005, 0.995]  # rep-to-rep scatter, the same on both sides


def _sides(ratio: float, n_sets: int = 3) -> tuple[dict, dict]:
    """Two sensors over the same sets, the first ``ratio`` times as fast, rep by rep."""
    second = [_set(100.0 * k, [0.5 * w for w in WOBBLE]) for k in range(n_sets)]
    first = [_set(100.0 * k, [0.5 * ratio * w for w in WOBBLE]) for k in range(n_sets)]
    return _result(first), _result(second)


def test_the_faster_limb_is_named_whichever_order_the_sensors_come_in() -> None:
    fast, slow = _sides(1.25)
    rows, alerts = compare_limbs("left-thigh", fast, "right-thigh", slow)
    assert [r["velocity_asymmetry_pct"] for r in rows] == pytest.approx([25.0] * 3, abs=0.01)
    assert all(r["paired_reps"] == 5 for r in rows)
    lo, hi = rows[0]["velocity_asymmetry_ci_pct"]
    assert 0 < lo < 25 < hi
    (v,) = alerts
    assert v["level"] == "warn" and v["kind"] == "asymmetry" and v["t_s"] == 215.0
    assert v["message"].startswith("left-thigh moved faster than right-thigh: by 25 % (95 %")
    assert "over 15 paired reps" in v["message"]
    # The other order: the figure changes sign (first - second), the sentence does not.
    rows, alerts = compare_limbs("right-thigh", slow, "left-thigh", fast)
    assert rows[0]["velocity_asymmetry_pct"] == pytest.approx(-20.0, abs=0.01)
    assert alerts[0]["message"].startswith("left-thigh moved faster than right-thigh: by 25 %")


def test_an_asymmetry_within_its_uncertainty_is_not_reported() -> None:
    a, b = _sides(1.05)
    rows, alerts = compare_limbs("a", a, "b", b)
    (v,) = alerts
    assert v["level"] == "info"
    bound = max(abs(x) for x in rows[0]["velocity_asymmetry_ci_pct"])
    assert v["message"].startswith("no velocity asymmetry between a and b beyond ")
    assert "(15 paired reps; measured +5 %)" in v["message"]
    # The bound comes from the sensors' scale error, which more reps do not shrink.
    half = limbs.Z_95 * math.sqrt(2) * limbs.VELOCITY_SCALE_SD
    many = limbs.velocity_asymmetry([(1.05 * w, w) for w in WOBBLE * 20])
    assert many is not None
    assert many["velocity_asymmetry_ci_pct"][1] == pytest.approx(
        100 * math.expm1(math.log(1.05) + half), abs=0.3
    )
    assert bound > 5
    # A less precise IMU widens it.
    fast, slow = _sides(1.12)
    _, alerts_mpu = compare_limbs("a", fast, "b", slow, imu="mpu6050")
    _, alerts_icm = compare_limbs("a", fast, "b", slow, imu="icm42688")
    assert "no velocity asymmetry" in alerts_mpu[0]["message"]
    assert "moved faster" in alerts_icm[0]["message"]


def test_reps_pair_in_time_and_poorly_measured_ones_are_left_out() -> None:
    left = _set(0.0, [0.60, 0.60, 0.60, 0.60, 0.60, 0.60])
    right = _set(0.0, [0.50, 0.50, 0.50, 0.50, 0.50, 0.50])
    # The right sensor missed its second rep; its first rep was poorly measured; the left one
    # found a rep of zero speed (nothing lifted) at its end.
    right["reps"] = [dict(right["reps"][0], quality=0.2)] + right["reps"][2:]
    left["reps"].append(_rep(18.0, 0.0, quality=0.0))
    pairs = limbs.paired_reps(left, right)  # type: ignore[arg-type]
    assert pairs == [(0.60, 0.50)] * 4
    # A right rep a whole phase late does not pair with the left one it barely touches.
    late = _set(0.0, [0.5] * 6)
    late["reps"] = [_rep(3.0 * i + 0.7, 0.5) for i in range(6)]
    assert limbs.paired_reps(left, late) == []  # type: ignore[arg-type]
    # Too few pairs: no figure, no alert.
    rows, alerts = compare_limbs("l", _result([left]), "r", _result([late]))
    assert rows[0]["velocity_asymmetry_pct"] is None and rows[0]["paired_reps"] == 0
    assert alerts == []


def test_limbs_join_the_names_and_tremor_asymmetry_is_kept() -> None:
    a = _result([_set(100.0 * k, [0.5] * 5, tremor=0.3) for k in range(3)], limb="left")
    b = _result([_set(100.0 * k, [0.5] * 5, tremor=0.1) for k in range(3)], limb="right")
    rows, alerts = compare_limbs("TL-AAAA", a, "right-arm", b)
    assert [r["tremor_ratio"] for r in rows] == [3.0, 3.0, 3.0]
    assert [x["level"] for x in alerts] == ["info", "info"]
    assert "between TL-AAAA (left) and right-arm beyond" in alerts[0]["message"]
    assert alerts[1]["message"] == "TL-AAAA (left) shows more tremor than right-arm in 3 of 3 sets"


def test_student_t_quantiles() -> None:
    assert t_975(1) == 12.706 and t_975(10) == 2.228
    for df, t in ((11, 2.201), (20, 2.086), (30, 2.042), (120, 1.980)):
        assert t_975(df) == pytest.approx(t, abs=0.002)


# ---------------------------------------------------------------------------- the twin's truth


@dataclass
class _Rec:
    name: str
    t_s: np.ndarray
    accel_mps2: np.ndarray
    gyro_radps: np.ndarray
    sample_rate_hz: float
    placement: str


def _generate(seed: int, scales: tuple[float, float] | None, monkeypatch) -> generator.Scenario:
    if scales is not None:
        original = generator.build_plan

        def build(spec, rng, *, short=False):  # type: ignore[no-untyped-def]
            plan = original(spec, rng, short=short)
            plan.devices = [
                (n, replace(b, rom_scale=s)) for (n, b), s in zip(plan.devices, scales, strict=True)
            ]
            return plan

        monkeypatch.setattr(generator, "build_plan", build)
    try:
        return generator.generate("two-sensors", seed, keep_kinematics=False)
    finally:
        monkeypatch.undo()


# Seeds 100 and up were not used to measure the scale error in limbs.py. The scenario's own
# limbs differ by at most 7 % (mostly within the uncertainty); the other two cases make one
# limb's range of motion 13-15 % smaller, through the same motion and sensor model.
CASES = [(seed, None) for seed in range(100, 105)]
CASES += [(seed, (1.0, 0.85)) for seed in range(105, 110)]
CASES += [(seed, (0.87, 1.0)) for seed in range(110, 115)]


@pytest.mark.slow
def test_the_sign_is_the_twins_wherever_an_asymmetry_is_reported(monkeypatch) -> None:
    table = []
    for seed, scales in CASES:
        sc = _generate(seed, scales, monkeypatch)
        # The right sensor first: the order the sensors come in must not matter.
        recs = [
            _Rec(d.name, d.t_s, d.accel_mps2, d.gyro_radps, sc.sample_rate_hz, d.placement)
            for d in reversed(sc.devices)
        ]
        result = analyze_recordings(recs, exercise="squat")
        assert [d["name"] for d in result["devices"]] == ["right", "left"]
        tl, tr = (
            [
                r["mean_concentric_velocity_mps"]
                for s in sc.device(n).truth["sets"]
                for r in s["reps"]
            ]
            for n in ("left", "right")
        )
        truth_pct = 100 * math.expm1(float(np.mean(np.log(np.divide(tl, tr)))))
        (v,) = [
            a
            for a in result["alerts"]
            if a["kind"] == "asymmetry"
            and ("moved faster" in a["message"] or a["message"].startswith("no velocity"))
        ]
        table.append((seed, scales, round(truth_pct, 2), v["message"]))
        if "moved faster" in v["message"]:
            said = v["message"].split(" moved faster")[0]
            assert said == ("left" if truth_pct > 0 else "right"), table[-1]
        else:
            bound = float(v["message"].split(" beyond ")[1].split(" %")[0])
            assert abs(truth_pct) <= bound + 1.0, table[-1]
    reported = [row for row in table if "moved faster" in row[3]]
    # The check has something to check: most of the clear asymmetries are reported.
    assert len([row for row in reported if row[1] is not None]) >= 5, table
