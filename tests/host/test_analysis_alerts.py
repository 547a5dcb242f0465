"""Velocity-loss alert policy (pure logic); limb asymmetry is in test_limbs.py."""

from __future__ import annotations

import pytest
from tremorlift.analysis.alerts import GOAL_THRESHOLDS_PCT, VelocityLossPolicy, threshold_pct, zone


def run(
    policy: VelocityLossPolicy, velocities: list[float], quality: list[float] | None = None
) -> list[tuple[int, str]]:
    out = []
    for i, v in enumerate(velocities):
        _, d = policy.on_rep(i, v, 1.0 if quality is None else quality[i])
        if d is not None:
            out.append((i, d.level))
    return out


def test_presets_and_explicit_threshold() -> None:
    assert GOAL_THRESHOLDS_PCT == {"power": 10.0, "strength": 20.0, "hypertrophy": 30.0}
    assert threshold_pct("power", None) == 10.0
    assert threshold_pct(None, None) == 20.0
    assert threshold_pct("hypertrophy", 12.5) == 12.5
    with pytest.raises(ValueError):
        threshold_pct("endurance", None)
    with pytest.raises(ValueError):
        threshold_pct(None, 0.0)


def test_warn_at_the_first_rep_past_stop_when_the_two_rep_loss_stays_past() -> None:
    p = VelocityLossPolicy(20.0)
    # Own losses 0, 3, 5, 22 (warn), 20, 26, 28; two-rep means .985, .96, .865, .79, .77, .73
    # -> 0, 2.5, 12, 19.8 (not past), 21.8 (past), 25.9 (past again: stop).
    assert run(p, [1.0, 0.97, 0.95, 0.78, 0.80, 0.74, 0.72]) == [(3, "warn"), (6, "stop")]


def test_info_within_the_margin_and_no_warn_before_rep_4() -> None:
    assert run(VelocityLossPolicy(20.0), [1.0, 0.98, 0.85, 0.82]) == [(2, "info")]
    # 30 % at rep 2 is past the threshold, but the first reps only set the reference.
    assert run(VelocityLossPolicy(20.0), [1.0, 0.7, 0.7]) == [(1, "info")]


def test_loss_is_from_the_fastest_rep_not_the_first() -> None:
    p = VelocityLossPolicy(10.0)
    assert run(p, [0.8, 1.0, 0.95, 0.89]) == [(2, "info"), (3, "warn")]


def test_one_noisy_rep_never_stops_a_set() -> None:
    p = VelocityLossPolicy(20.0)
    assert run(p, [1.0, 0.98, 0.99, 0.97, 0.70, 0.98, 0.97, 0.99]) == [(4, "warn")]


def test_poorly_measured_and_implausible_reps_do_not_alert_or_set_the_reference() -> None:
    # A rep whose lifting phase was not found reads near zero: not plausible, no alert.
    assert run(VelocityLossPolicy(20.0), [1.0, 0.98, 0.99, 0.02, 0.97]) == []
    # A poorly measured slow rep is shown but not used.
    q = [1.0, 1.0, 1.0, 0.1, 1.0]
    assert run(VelocityLossPolicy(20.0), [1.0, 0.98, 0.99, 0.6, 0.97], q) == []
    # A first rep far faster than the set (its bound reached into the set-up) is no reference.
    # (At rep 2 it is all there is: a note, then nothing once the set's median shows it.)
    assert run(VelocityLossPolicy(20.0), [1.6, 1.0, 0.98, 0.97, 0.99, 0.96]) == [(1, "info")]


def test_state_resets_per_set_and_master_switch() -> None:
    p = VelocityLossPolicy(20.0)
    assert run(p, [1.0, 0.97, 0.96, 0.7, 0.7, 0.7]) == [(3, "warn"), (5, "stop")]
    p.new_set()
    assert run(p, [0.6, 0.59]) == []  # no carry-over of the previous set's best or state
    off = VelocityLossPolicy(20.0, enabled=False)
    assert run(off, [1.0, 0.9, 0.9, 0.5, 0.4, 0.4]) == []


def test_zones_are_graded() -> None:
    assert [zone(v) for v in (5, 15, 25, 35, 45)] == [
        "fresh",
        "moderate",
        "high",
        "very high",
        "near failure",
    ]


def _messages(policy: VelocityLossPolicy, velocities: list[float]) -> list[tuple[int, str, str]]:
    out = []
    for i, v in enumerate(velocities):
        _, d = policy.on_rep(i, v, 1.0)
        if d is not None:
            out.append((i, d.level, d.message))
    return out


def test_stop_policy_one_more_warns_then_stops_a_rep_later() -> None:
    got = _messages(VelocityLossPolicy(20.0), [1.0, 0.97, 0.96, 0.7, 0.7, 0.7])
    assert [(i, lvl) for i, lvl, _ in got] == [(3, "warn"), (5, "stop")]
    warn, stop = got[0][2], got[1][2]
    assert "this rep passed the 20 % limit: one more rep at most" in warn
    assert stop.endswith("stop now") and "last rep" not in warn + stop


def test_stop_policy_at_limit_stops_at_the_first_rep_past() -> None:
    p = VelocityLossPolicy(20.0, stop_policy="at-limit")
    got = _messages(p, [1.0, 0.97, 0.96, 0.7, 0.7, 0.7])
    assert [(i, lvl) for i, lvl, _ in got] == [(3, "stop")]
    assert "this rep passed the 20 % limit: stop now" in got[0][2]
    # Reset per set, as the other policy.
    p.new_set()
    assert [lvl for _, lvl, _ in _messages(p, [1.0, 0.99, 0.98, 0.97])] == []
    with pytest.raises(ValueError, match="unknown stop policy"):
        VelocityLossPolicy(20.0, stop_policy="never")


def test_the_note_counts_points_not_percent_of_the_limit() -> None:
    got = _messages(VelocityLossPolicy(20.0), [1.0, 0.98, 0.83])
    assert got == [(2, "info", "rep 3: velocity loss 17 %, 3 points below the 20 % limit")]
