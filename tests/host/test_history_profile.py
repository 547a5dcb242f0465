"""The load-velocity profile and estimated 1RM across the history (`history --json` and its
listing), from sessions recorded with their load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tremorlift.analysis.loadvelocity import MVT_MPS
from tremorlift.coach.history import (
    format_history,
    load_history,
    register_session,
    summarize,
    trends,
)

A_MPS, B_MPS_PER_KG = 1.30, 0.0075  # the truth: v = A - B * load


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "data"
    monkeypatch.setenv("TREMORLIFT_DATA_DIR", str(d))
    return d


def _session(day: int, loads_kg: list[float], rng: np.random.Generator) -> dict[str, Any]:
    sets = []
    for k, load in enumerate(loads_kg):
        v1 = A_MPS - B_MPS_PER_KG * load + rng.normal(0.0, 0.02)
        reps = [
            {"start_s": 100.0 * k + 3 * i, "end_s": 100.0 * k + 3 * i + 2,
             "mean_concentric_velocity_mps": v1 * (1 - 0.05 * i), "velocity_loss_pct": 5.0 * i}
            for i in range(5)
        ]  # fmt: skip
        sets.append({
            "kind": "dynamic", "start_s": 100.0 * k, "end_s": 100.0 * k + 14, "exercise": "squat",
            "velocity_loss_pct": 20.0, "reps": reps, "best_velocity_mps": v1, "load_kg": load,
        })  # fmt: skip
    result = {
        "sample_rate_hz": 200.0, "duration_s": 500.0, "tremor_baseline_rms_mps2": 0.03,
        "velocity_loss_threshold_pct": 20.0, "sets": sets, "tremor_episodes": [], "alerts": [],
    }  # fmt: skip
    return summarize(
        result, created_utc=f"2026-03-{day:02d}T18:00:00.000+00:00",
        created_unix_s=1.77e9 + day * 86400, duration_s=500.0,
        devices=[{"name": "main", "placement": "thigh", "samples": 1, "samples_lost": 0}],
    )  # fmt: skip


def test_history_trends_and_listing_give_the_profile_and_1rm(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    for day, loads in ((1, [60.0, 80.0]), (2, [100.0, 110.0]), (3, [70.0, 90.0, 120.0])):
        path = tmp_path / f"s{day}.tlsession"
        path.write_bytes(b"")  # the index lists only sessions whose file is there
        register_session(path, _session(day, loads, rng))
    tr = trends(load_history())
    prof = json.loads(json.dumps(tr))["squat"]["load_velocity"]  # as history --json writes it
    truth = (A_MPS - MVT_MPS["squat"]) / B_MPS_PER_KG  # 133.3 kg
    assert prof["points"] == 7 and prof["distinct_loads"] == 7 and prof["refused"] is None
    lo, hi = prof["one_rm_ci_kg"]
    assert lo <= truth <= hi and lo < prof["one_rm_kg"] < hi
    assert prof["mvt_mps"] == 0.30 and "Fieller" in prof["method"]
    text = format_history(load_history(), tr)
    assert f"Estimated 1RM {prof['one_rm_kg']:.0f} kg (95 % interval {lo:.0f}-{hi:.0f} kg)" in text


def test_one_load_is_refused_with_the_reason(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "s.tlsession"
    path.write_bytes(b"")
    register_session(path, _session(1, [80.0, 80.0], rng))
    tr = trends(load_history())
    prof = tr["squat"]["load_velocity"]
    assert prof["one_rm_kg"] is None and "2 different loads" in prof["refused"]
    text = format_history(load_history(), tr)
    assert "no load-velocity profile: needs sets at 2 different loads" in text
