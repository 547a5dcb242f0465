"""The history index: summaries of sessions, trends per exercise, the `history` command."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from coach_sessions import SAMPLES_PER_FRAME, write_session
from tremorlift.cli import main
from tremorlift.coach.history import (
    index_path,
    load_history,
    register_session,
    summarize,
    summarize_session,
    trends,
)
from tremorlift.coach.results import usable_arrays
from tremorlift.store.reader import SessionReader
from tremorlift.store.session import SessionWriter


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "data"
    monkeypatch.setenv("TREMORLIFT_DATA_DIR", str(d))
    return d


def _result(
    baseline: float, best: float, loss_pct: list[float], *, stop_at_rep: int | None = None
) -> dict[str, Any]:
    reps = [
        {"start_s": 10.0 + 3 * i, "end_s": 12.0 + 3 * i, "mean_concentric_velocity_mps": best * (1 - v / 100),
         "peak_velocity_mps": 1.5 * best, "rom_m": 0.5, "velocity_loss_pct": v}
        for i, v in enumerate(loss_pct)
    ]  # fmt: skip
    alerts = []
    if stop_at_rep is not None:
        alerts.append(
            {
                "t_s": reps[stop_at_rep - 1]["end_s"],
                "level": "stop",
                "kind": "velocity_loss",
                "message": "end the set",
            }
        )
    return {
        "sample_rate_hz": 200.0, "duration_s": 100.0, "tremor_baseline_rms_mps2": baseline,
        "velocity_loss_threshold_pct": 20.0,
        "sets": [{"kind": "dynamic", "start_s": 10.0, "end_s": reps[-1]["end_s"], "exercise": "squat",
                  "velocity_loss_pct": loss_pct[-1], "reps": reps}],
        "tremor_episodes": [], "alerts": alerts,
    }  # fmt: skip


def _summary(result: dict[str, Any], day: int) -> dict[str, Any]:
    return summarize(
        result, created_utc=f"2026-03-{day:02d}T18:00:00.000+00:00", created_unix_s=1.77e9 + day * 86400,
        duration_s=100.0, devices=[{"name": "main", "placement": "thigh", "samples": 20000, "samples_lost": day}],
    )  # fmt: skip


def test_trends_flag_a_raised_warm_up_tremor(tmp_path: Path, data_dir: Path) -> None:
    for day, base, best in ((1, 0.030, 0.60), (2, 0.034, 0.62), (3, 0.032, 0.61), (4, 0.050, 0.55)):
        register_session(
            tmp_path / f"s{day}.tlsession",
            _summary(_result(base, best, [0, 5, 12, 22, 25], stop_at_rep=5), day),
        )
    idx = index_path()
    assert idx == data_dir / "history.sqlite"
    assert stat.S_IMODE(idx.stat().st_mode) == 0o600
    sessions = load_history()
    assert [s["samples_lost"] for s in sessions] == [1, 2, 3, 4]  # oldest first
    tr = trends(sessions)["squat"]
    pts = tr["sessions"]
    assert [p["warmup_vs_usual"] for p in pts[:2]] == [None, None]  # too few earlier sessions
    assert pts[2]["warmup_vs_usual"] == pytest.approx(0.032 / 0.032, rel=1e-3)
    assert pts[3]["warmup_vs_usual"] == pytest.approx(
        0.050 / 0.032, rel=1e-3
    )  # median of 3 earlier
    assert pts[3]["reps_to_stop"] == 5 and pts[3]["velocity_loss_at_stop_pct"] == 25
    assert pts[3]["best_velocity_mps"] == pytest.approx(0.55)
    text = " ".join(tr["verdicts"])
    assert "raised" in text and "under-recovered" in text
    assert "slower than your usual 0.61 m/s" in text


def test_a_normal_warm_up_is_not_flagged(tmp_path: Path) -> None:
    for day, base in ((1, 0.030), (2, 0.034), (3, 0.031)):
        register_session(tmp_path / f"s{day}.tlsession", _summary(_result(base, 0.6, [0, 10]), day))
    verdicts = trends(load_history())["squat"]["verdicts"]
    assert any("normal" in v for v in verdicts) and not any("raised" in v for v in verdicts)


def test_re_adding_a_session_updates_its_row(tmp_path: Path) -> None:
    p = tmp_path / "s.tlsession"
    register_session(p, _summary(_result(0.03, 0.5, [0, 10]), 1))
    register_session(p, _summary(_result(0.03, 0.7, [0, 10]), 1))
    (only,) = load_history()
    assert only["best_velocity_mps"] == pytest.approx(0.7) and only["path"] == str(p.resolve())


def test_history_add_indexes_a_real_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_session(
        tmp_path / "a.tlsession", "demo", drop_frames=(40, 41, 300), created_unix_s=1.77e9
    )
    b = write_session(
        tmp_path / "b.tlsession",
        "two-sensors",
        analysis=None,
        exercise="squat",
        created_unix_s=1.77e9 + 86400,
    )
    assert main(["history", "--add", str(a), str(b)]) == 0
    capsys.readouterr()
    assert main(["history", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    sa, sb = doc["sessions"]
    with SessionReader(a) as r:
        (stored,) = [x.data for x in r.analyses("final")]  # stored by the first reading
        t_end = max(float(arr.t_s[-1]) for arr, _ in usable_arrays(r))
    assert sa["samples_lost"] == 3 * SAMPLES_PER_FRAME
    assert sa["reps"] == sum(len(s["reps"]) for s in stored["sets"])
    best = max(r["mean_concentric_velocity_mps"] for s in stored["sets"] for r in s["reps"])
    assert sa["best_velocity_mps"] == pytest.approx(best)
    assert sa["warmup_tremor_rms_mps2"] == stored["tremor_baseline_rms_mps2"]
    # The session lasts until its last sample (the demo workout: over a minute).
    assert sa["duration_s"] == pytest.approx(t_end, abs=0.01) and sa["duration_s"] > 60
    # b had no stored analysis: the engine ran on its samples; two sensors give an asymmetry.
    assert [d["name"] for d in sb["devices"]] == ["left", "right"] and sb["samples_lost"] == 0
    assert sb["reps"] > 0
    assert sb["exercises"]["squat"]["velocity_asymmetry_pct"] is not None
    assert set(doc["trends"]) == set(sa["exercises"]) | set(sb["exercises"])
    assert main(["history", "--exercise", "squat"]) == 0
    out = capsys.readouterr().out
    assert "== squat ==" in out and str(b.resolve()) in out and str(a.resolve()) not in out


def test_bad_session_leaves_the_index_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register_session(tmp_path / "x.tlsession", _summary(_result(0.03, 0.5, [0, 10]), 1))
    before = index_path().read_bytes()
    bad = tmp_path / "bad.tlsession"
    bad.write_bytes(b"not a session")
    assert main(["history", "--add", str(bad)]) == 2
    assert "bad.tlsession" in capsys.readouterr().err
    assert index_path().read_bytes() == before


def test_empty_history_and_a_damaged_index(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history"]) == 0
    assert "no sessions recorded yet" in capsys.readouterr().out
    assert not data_dir.exists()  # listing creates nothing
    data_dir.mkdir()
    (data_dir / "history.sqlite").write_bytes(b"garbage" * 200)
    assert main(["history"]) == 2
    assert "history index" in capsys.readouterr().err


def test_the_final_asymmetry_and_the_collectors_loss_figures_are_used(tmp_path: Path) -> None:
    def extra(w: SessionWriter, ids: list[int]) -> None:
        # A live comparison the collector stored is not the session's answer: the final is.
        row = {
            "start_s": 0.0,
            "end_s": 1e4,
            "kind": "dynamic",
            "velocity_asymmetry_pct": 42.0,
            "tremor_ratio": 2.0,
        }
        w.add_analysis("asymmetry", {"rows": [row], "alerts": []})
        # The collector counted losses the file cannot show (after the last frame it got).
        w.add_stats({"samples_lost": 5, "frames_received": 10}, device=ids[0])
        w.add_stats({"samples_lost": 77, "frames_received": 20}, device=ids[0])

    s = write_session(tmp_path / "c.tlsession", "two-sensors", exercise="squat", extra=extra)
    summary = summarize_session(s)
    with SessionReader(s) as r:
        (final,) = [x.data for x in r.analyses("final")]
    assert final["asymmetry"]
    assert summary["exercises"]["squat"]["velocity_asymmetry_pct"] != 42.0
    assert summary["exercises"]["squat"]["tremor_ratio"] != 2.0
    assert [d["samples_lost"] for d in summary["devices"]] == [77, 0]
    assert summary["samples_lost"] == 77


# ------------------------------------------------------------------ identity, missing, remove
def test_a_copied_session_counts_once_and_a_gone_file_is_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil
    import sqlite3

    a = write_session(tmp_path / "a.tlsession", "demo", created_unix_s=1.77e9)
    b = write_session(tmp_path / "b.tlsession", "demo", seed=2, created_unix_s=1.77e9 + 60)
    copy = tmp_path / "copy-of-a.tlsession"
    shutil.copyfile(a, copy)
    # An older file, made before sessions had an ID: known by its creation stamp.
    old = write_session(tmp_path / "old.tlsession", "demo", seed=3, created_unix_s=1.77e9 - 60)
    with sqlite3.connect(old) as db:
        db.execute("DELETE FROM meta WHERE key = 'session_id'")
    old_copy = tmp_path / "old-copy.tlsession"
    shutil.copyfile(old, old_copy)
    assert main(["history", "--add", str(a), str(copy), str(b), str(old), str(old_copy)]) == 0
    capsys.readouterr()
    with SessionReader(a) as r:
        sid = r.meta["session_id"]
    assert main(["history", "--json", "-"]) == 0
    out, err = capsys.readouterr()
    sessions = json.loads(out)["sessions"]
    assert len(sessions) == 3 and err == ""
    assert [s["session_id"] == sid for s in sessions].count(True) == 1
    assert len({s["session_id"] for s in sessions}) == 3
    # The original goes: its copy stands in; b goes: left out, said once on stderr.
    a.unlink()
    b.unlink()
    assert main(["history"]) == 0
    out, err = capsys.readouterr()
    assert str(copy.resolve()) in out and str(b.resolve()) not in out
    assert err.count("\n") == 1 and "1 session file(s) no longer exist" in err
    assert str(b.resolve()) in err
    assert main(["history", "--json"]) == 0  # JSON on stdout, the note on stderr
    out, err = capsys.readouterr()
    assert len(json.loads(out)["sessions"]) == 2 and "no longer exist" in err


def test_history_remove_by_path_or_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_session(tmp_path / "a.tlsession", "demo", created_unix_s=1.77e9)
    b = write_session(tmp_path / "b.tlsession", "demo", seed=2, created_unix_s=1.77e9 + 60)
    assert main(["history", "--add", str(a), str(b)]) == 0
    with SessionReader(b) as r:
        b_id = r.meta["session_id"]
    capsys.readouterr()
    assert main(["history"]) == 0
    assert b_id[:8] in capsys.readouterr().out  # the ID to remove it by is listed
    assert main(["history", "--remove", str(a)]) == 0
    assert "files left in place" in capsys.readouterr().out and a.exists()
    assert [Path(s["path"]).name for s in load_history()] == ["b.tlsession"]
    assert main(["history", "--remove", b_id[:8]]) == 0
    assert load_history() == [] and b.exists()
    assert b_id in capsys.readouterr().out
    for gone in (str(a), b_id[:8], "x"):
        assert main(["history", "--remove", gone]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and "no such session in the history" in err
