"""The analysis on the 164 real gym sets in ../shared/datasets/gym_wrist_applewatch (Apple Watch
on a left wrist, 100 Hz, the lifter's own rep counts; CC BY-SA 4.0). Floors well below today's
figures (bench/real_sets.py prints them), so a change that breaks real lifting shows here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from real_sets import GYM_DIR, load_gym_sets, score_all  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scores() -> dict:
    if not GYM_DIR.is_dir():
        # CI and the benchmarks find the shared datasets beside the checkout; a clone elsewhere
        # has none to score against.
        pytest.skip(f"{GYM_DIR} is missing: the shared datasets sit beside the checkout")
    sets = load_gym_sets()
    assert len(sets) == 164
    return score_all(sets)[0]


def test_every_real_set_is_found_and_counted_closer_than_plain_peak_counters(scores) -> None:
    ours = scores["tremorlift"]["all"].row()
    assert ours["found"] >= 0.98
    assert ours["within1"] >= 0.70
    assert ours["exact"] >= 0.38
    assert ours["mae"] <= 1.5
    assert ours["precision"] >= 0.9 and ours["recall"] >= 0.9
    for counter in ("accel peaks", "gyro peaks"):
        plain = scores[counter]["all"].row()
        assert ours["exact"] > plain["exact"] and ours["within1"] > plain["within1"]
        assert ours["mae"] < plain["mae"] and ours["precision"] > plain["precision"]


def test_no_holds_rest_tremor_or_early_warnings_in_ordinary_sets(scores) -> None:
    ours = scores["tremorlift"]["all"].row()
    assert ours["holds"] == 0
    assert ours["rest_notices"] == 0
    assert ours["early_warns"] == 0
    assert ours["premature_stops"] <= 2
    assert ours["tremor_share"] <= 0.15  # shaking flagged in a small part of set time
