"""The stop policy and the load as session settings: stored with the session, used by its final
analysis (``analyze`` reads them; a flag overrides), and the load on each lifting set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from coach_sessions import write_session
from tremorlift.cli import main
from tremorlift.store.final import store_settings
from tremorlift.store.session import SessionWriter


def _vl_alerts(result: dict) -> list[tuple[str, int | None, int | None]]:
    return [
        (a["level"], a.get("set"), a.get("rep"))
        for a in result["alerts"]
        if a["kind"] == "velocity_loss" and a["level"] in ("warn", "stop")
    ]


def test_the_sessions_stop_policy_and_load_reach_the_final_analysis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def extra(w: SessionWriter, ids: list[int]) -> None:
        store_settings(
            w, {"exercise": "curl", "alerts_enabled": True, "vl_threshold_pct": 10.0,
                "stop_policy": "at-limit", "load_kg": 82.5},
        )  # fmt: skip

    s = write_session(tmp_path / "p.tlsession", "curl-3x10", analysis=None, extra=extra)
    assert main(["analyze", str(s), "--json", "-"]) == 0
    at_limit = json.loads(capsys.readouterr().out)
    assert at_limit["stop_policy"] == "at-limit"
    assert at_limit["settings"]["load_kg"] == 82.5
    lifting = [x for x in at_limit["sets"] if x["kind"] == "dynamic"]
    assert lifting and all(x["load_kg"] == 82.5 for x in lifting)
    calls = _vl_alerts(at_limit)
    assert calls and {lvl for lvl, _, _ in calls} == {"stop"}  # the stop is the first call
    for a in at_limit["alerts"]:
        if a["kind"] == "velocity_loss" and a["level"] == "stop":
            assert "stop now" in a["message"] and "passed the 10 % limit" in a["message"]
    assert main(["analyze", str(s), "--stop-policy", "one-more", "--json", "-"]) == 0
    one_more = json.loads(capsys.readouterr().out)
    assert one_more["stop_policy"] == "one-more"
    warns = {(st, rep) for lvl, st, rep in _vl_alerts(one_more) if lvl == "warn"}
    stops = {(st, rep) for lvl, st, rep in _vl_alerts(one_more) if lvl == "stop"}
    # Each at-limit stop is a one-more warn at the same rep; a one-more stop comes later.
    assert {(st, rep) for _, st, rep in calls} == warns
    for st, rep in stops:
        assert any(w_st == st and w_rep < rep for w_st, w_rep in warns)
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(s), "--stop-policy", "never"])
    assert exc.value.code == 2


def test_collect_takes_load_and_policy_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["collect", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--load-kg KG" in text and "--stop-policy" in text and "at-limit" in text
