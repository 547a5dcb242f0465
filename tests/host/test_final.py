"""The session's final analysis: computed once, stored once, read back by every command; the
live calls compared with it; sessions killed before they were finalised."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from coach_sessions import write_session
from tremorlift.cli import main
from tremorlift.coach.report import live_sentence
from tremorlift.errors import UserError
from tremorlift.store.final import (
    compare_alerts,
    finalise_file,
    number_alerts,
    session_settings,
    store_settings,
)
from tremorlift.store.reader import SessionReader
from tremorlift.store.session import SessionWriter

REP = {"mean_concentric_velocity_mps": 0.5}


def _result(alerts: list[dict]) -> dict:
    sets = [
        {"kind": "dynamic", "start_s": 0.0, "end_s": 10.0,
         "reps": [dict(REP, start_s=2.0 * i, end_s=2.0 * i + 2.0) for i in range(5)]},
        {"kind": "hold", "start_s": 20.0, "end_s": 40.0, "reps": []},
        {"kind": "dynamic", "start_s": 50.0, "end_s": 60.0,
         "reps": [dict(REP, start_s=50.0 + 2 * i, end_s=52.0 + 2 * i) for i in range(5)]},
    ]  # fmt: skip
    return {"sets": sets, "alerts": alerts, "tremor_episodes": []}


def test_alerts_are_numbered_by_lifting_set_and_rep() -> None:
    r = _result(
        [
            {"t_s": 8.0, "level": "warn", "kind": "velocity_loss"},
            {"t_s": 56.0, "level": "stop", "kind": "velocity_loss"},
            {"t_s": 30.0, "level": "stop", "kind": "hold"},
        ]
    )
    number_alerts(r)
    assert [(a["set"], a["rep"]) for a in r["alerts"]] == [(1, 4), (2, 3), (None, None)]


def test_live_calls_are_compared_by_set_and_rep_and_by_time() -> None:
    final = _result(
        [
            {"t_s": 8.0, "level": "warn", "kind": "velocity_loss", "set": 1, "rep": 4},
            {"t_s": 30.0, "level": "stop", "kind": "hold", "set": None, "rep": None},
            {"t_s": 58.0, "level": "stop", "kind": "velocity_loss", "set": 2, "rep": 5},
        ]
    )
    live = [
        {"t_s": 8.02, "level": "warn", "kind": "velocity_loss", "set": 1, "rep": 4},
        {"t_s": 31.5, "level": "stop", "kind": "hold", "set": None, "rep": None},
        {"t_s": 56.0, "level": "stop", "kind": "velocity_loss", "set": 2, "rep": 4,
         "complete": False},
        {"t_s": 9.0, "level": "info", "kind": "velocity_loss", "set": 1, "rep": 5},
    ]  # fmt: skip
    rows = compare_alerts(live, final)
    assert [r["agree"] for r in rows] == [True, True, False, False]
    assert rows[2]["live"]["rep"] == 4 and rows[2]["final"] is None  # a rep too early
    assert rows[3]["live"] is None and rows[3]["final"]["rep"] == 5  # the real one, not told
    text = live_sentence(rows)
    assert text is not None
    assert "stop (velocity loss, set 2 rep 4) told live, computed over lost samples" in text
    assert "stop (velocity loss, set 2 rep 5) found afterwards, not told live" in text
    assert live_sentence(rows[:2]) == (
        "Told live: 2 warnings or stops, each as the final analysis has it."
    )


def test_an_unfinalised_session_is_finalised_once_by_the_first_reader(tmp_path: Path) -> None:
    s = write_session(tmp_path / "a.tlsession", "demo", analysis=None, exercise="bench")
    first = finalise_file(s)
    with SessionReader(s) as r:
        assert [x.kind for x in r.analyses()] == ["final"]
        assert r.meta["ended_by"].startswith("finalised when next opened")
        assert session_settings(r) == {"exercise": "bench"}
    assert finalise_file(s) == first  # read back, not computed again
    with SessionReader(s) as r:
        assert len(r.analyses()) == 1
    assert first["settings"] == {"exercise": "bench"}
    assert all(x["exercise"] == "bench" for x in first["sets"])


def test_the_sessions_settings_are_used_unless_a_flag_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def extra(w: SessionWriter, ids: list[int]) -> None:
        store_settings(w, {"exercise": "bench", "vl_threshold_pct": 7.0, "alerts_enabled": True})

    s = write_session(tmp_path / "b.tlsession", "demo", analysis=None, extra=extra)
    assert main(["analyze", str(s), "--json", "-"]) == 0
    stored = json.loads(capsys.readouterr().out)
    assert stored["velocity_loss_threshold_pct"] == 7.0
    assert main(["analyze", str(s), "--goal", "hypertrophy", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["velocity_loss_threshold_pct"] == 30.0
    assert main(["analyze", str(s), "--no-alerts", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["alerts"] == []
    with SessionReader(s) as r:  # the flags analysed afresh; the stored answer stayed
        (final,) = [x.data for x in r.analyses("final")]
    assert final["velocity_loss_threshold_pct"] == 7.0


def test_a_killed_recording_opens_and_a_copy_without_its_wal_says_what_is_missing(
    tmp_path: Path,
) -> None:
    src = write_session(tmp_path / "src.tlsession", "demo", analysis=None)
    # A recording killed mid-session: the writer is never closed (its WAL stays), and what it
    # holds beyond the last checkpoint is only in the -wal file.
    killed = tmp_path / "killed.tlsession"
    w = SessionWriter(killed, background=False)
    with SessionReader(src) as r:
        d = w.add_device("AA:BB:CC:DD:EE:00", "main", "forearm")
        for _, _, host_s, raw in r.frames(1)[:2]:
            w.add_frame(d, raw, host_s=host_s)
    w.flush()
    copy = tmp_path / "copy.tlsession"
    shutil.copy(killed, copy)  # the main file alone, as a user might copy it
    with SessionReader(copy) as r:
        assert r.wal_missing and r.frame_count() == 0  # the frames were only in the -wal
    with SessionReader(killed) as r:
        assert not r.wal_missing and r.frame_count() == 2
    w.close()


def test_a_file_whose_data_is_only_in_a_missing_wal_says_so(tmp_path: Path) -> None:
    path = tmp_path / "x.tlsession"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA application_id=1414296369")
    db.close()
    with pytest.raises(UserError, match="its data is in x.tlsession-wal, which is missing"):
        SessionReader(path)
