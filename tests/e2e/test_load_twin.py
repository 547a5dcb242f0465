"""Load and stop policy through the real collector and the digital twin: `collect --load-kg
--stop-policy` stores both in the session's settings, the final analysis uses the policy and
puts the load on every lifting set, and the history keeps the set loads."""

from __future__ import annotations

import json

import pytest
from tremorlift.cli import main
from tremorlift.coach.history import load_history
from tremorlift.store.final import session_settings, stored_final
from tremorlift.store.reader import SessionReader

pytestmark = pytest.mark.slow


def test_collect_records_the_load_and_the_stop_policy(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TREMORLIFT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TREMORLIFT_CONFIG_DIR", str(tmp_path / "config"))
    session = tmp_path / "load.tlsession"
    rc = main([
        "collect", "--simulate", "demo", "--speed", "6", "--any", "--scan-timeout", "1",
        "--exercise", "squat", "--load-kg", "82.5", "--stop-policy", "at-limit", "--no-ui",
        "--no-sound", "--no-speech", "--session", str(session),
    ])  # fmt: skip
    assert rc == 0
    with SessionReader(session) as r:
        settings = session_settings(r)
        final = stored_final(r)
    assert settings["load_kg"] == 82.5 and settings["stop_policy"] == "at-limit"
    assert final is not None and final["stop_policy"] == "at-limit"
    lifting = [s for s in final["sets"] if s["kind"] == "dynamic"]
    assert lifting and all(s["load_kg"] == 82.5 for s in lifting)
    assert not [
        a for a in final["alerts"] if a["kind"] == "velocity_loss" and a["level"] == "warn"
    ]  # at-limit: the first call is the stop
    (row,) = [s for s in load_history() if s["path"] == str(session.resolve())]
    loads = row["exercises"]["squat"]["loads"]
    assert [x for x, _ in loads] == [82.5] * len(lifting)
    capsys.readouterr()
    assert main(["history", "--json", "-"]) == 0
    prof = json.loads(capsys.readouterr().out)["trends"]["squat"]["load_velocity"]
    assert prof["one_rm_kg"] is None and "2 different loads" in prof["refused"]
