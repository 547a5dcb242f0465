"""The engine on short scenarios from the motion generator (tuning seeds 0-9 only)."""

from __future__ import annotations

import pytest
from tremorlift.analysis import Engine, run_engine
from tremorlift.twin.motion.generator import generate


def matched(det: list[dict], truth: list[dict]) -> list[tuple[dict, dict]]:
    """Each truth rep with the detected rep whose middle falls inside it."""
    out = []
    for tr in truth:
        hits = [d for d in det if tr["start_s"] <= 0.5 * (d["start_s"] + d["end_s"]) <= tr["end_s"]]
        if len(hits) == 1:
            out.append((hits[0], tr))
    return out


@pytest.mark.parametrize(
    ("scenario", "seed", "vel_tol_mps"),
    [("squat-forearm", 4, 0.03), ("bench-to-failure", 6, 0.03), ("curl-3x10", 4, 0.08)],
)
def test_reps_and_velocity_on_rotating_and_non_rotating_lifts(
    scenario: str, seed: int, vel_tol_mps: float
) -> None:
    rec = generate(scenario, seed, short=True, keep_kinematics=False).devices[0]
    res = run_engine(
        Engine(rec.truth["sample_rate_hz"]), rec.t_s, rec.accel_mps2, rec.gyro_radps, 200
    )
    det = [r for s in res["sets"] if s["kind"] == "dynamic" for r in s["reps"]]
    truth = [r for s in rec.truth["sets"] for r in s["reps"]]
    pairs = matched(det, truth)
    assert len(det) == len(truth) == len(pairs)
    # Speed is claimed for the reps the engine says it measured well (quality >= 0.5): most of
    # them, within the tolerance; the rest say they are not to be trusted.
    good = [(d, tr) for d, tr in pairs if d["quality"] >= 0.5]
    assert len(good) >= 0.6 * len(pairs)
    err = [
        abs(d["mean_concentric_velocity_mps"] - tr["mean_concentric_velocity_mps"])
        for d, tr in good
    ]
    assert sum(err) / len(err) <= vel_tol_mps  # mean absolute error
    assert max(err) <= 0.2  # and no rep far off (a grinding rep near failure is the worst)
    # Sets: as many as the truth has, separated by the rest.
    assert len([s for s in res["sets"] if s["kind"] == "dynamic"]) == len(rec.truth["sets"])


def test_wall_sit_holds_and_their_tremor_are_found() -> None:
    rec = generate("wall-sit", 2, short=True, keep_kinematics=False).devices[0]
    res = run_engine(Engine(200.0), rec.t_s, rec.accel_mps2, rec.gyro_radps, 200)
    holds = [s for s in res["sets"] if s["kind"] == "hold"]
    truth = [s for s in rec.truth["sets"] if s["kind"] == "hold"]
    assert len(holds) == len(truth)
    for h, tr in zip(holds, truth, strict=True):
        assert h["start_s"] == pytest.approx(tr["start_s"], abs=4.0)
        assert h["end_s"] == pytest.approx(tr["end_s"], abs=4.0)
        assert h["reps"] == [] and h["velocity_loss_pct"] is None
        # Tremor grows through a hold to failure: a positive rate, in % per second.
        assert 0.0 < h["tremor_growth_pct_per_s"] < 20.0
    assert all(
        e["cause"] == "fatigue"
        for e in res["tremor_episodes"]
        if any(h["start_s"] <= e["start_s"] <= h["end_s"] for h in holds)
    )
