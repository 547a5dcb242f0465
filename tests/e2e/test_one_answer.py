"""One true answer per session, through the twin and the real command line.

Four sessions of the demo workout (two bench sets, the second slowing into a velocity-loss
warning, then a hold) run at the same time in real time, each with a fault on the link: lost
notifications (5 % and 20 %), corrupt serial frames, a disconnect in the middle of the slowing
set. What the lifter was told live must be what the session's final analysis says (same set,
same rep), never computed over samples the link lost; and report, history, export and analyze
must tell the same story. Ctrl-C and SIGTERM in the middle of a session must leave it
finalised, with its summary and its history entry.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tremorlift.store.final import compare_alerts
from tremorlift.store.reader import SessionReader

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "tremorlift.cli"]
WORKOUT = ["--simulate", "demo", "--any", "--exercise", "bench", "--goal", "strength", "--no-ui"]
FAULTS = {
    "drop5": ["--inject", "drop=0.05"],
    "drop20": ["--inject", "drop=0.2"],
    "corrupt": ["--serial", "--inject", "corrupt=0.02"],
    "disconnect": ["--inject", "disconnect@40:3"],  # set 2, around its third and fourth reps
}


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TREMORLIFT_DATA_DIR"] = str(tmp / "data")
    env["TREMORLIFT_CONFIG_DIR"] = str(tmp / "config")
    env["NO_COLOR"] = "1"
    return env


def _collect(tmp: Path, name: str, extra: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "collect", *WORKOUT, *extra, "--session", str(tmp / f"{name}.tlsession"),
         "--summary-json", str(tmp / f"{name}.json")],
        env=_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    tmp = tmp_path_factory.mktemp("one-answer")
    procs = {name: _collect(tmp, name, extra) for name, extra in FAULTS.items()}
    out = {}
    for name, proc in procs.items():
        text, _ = proc.communicate(timeout=400)
        assert proc.returncode == 0, f"{name}:\n{text}"
        out[name] = json.loads((tmp / f"{name}.json").read_text())
        out[name]["log"] = text
    return tmp, out


@pytest.mark.parametrize("name", list(FAULTS))
def test_every_live_call_is_the_final_analysis_call(faulty, name: str) -> None:
    tmp, summaries = faulty
    summary = summaries[name]
    told = [a for a in summary["live_alerts"] if a["level"] in ("warn", "stop")]
    assert told, f"{name}: the slowing set raised no warning live\n{summary['log']}"
    assert all(a["complete"] for a in told), (name, told)
    with SessionReader(tmp / f"{name}.tlsession") as r:
        (final,) = [x.data for x in r.analyses("final")]
    rows = compare_alerts(summary["live_alerts"], final)
    # Every warn and stop told live is in the final analysis (same set, same rep).
    assert all(row["agree"] for row in rows if row["live"] is not None), (name, rows)
    # The final analysis has a warn or stop the lifter was not told only where the live
    # analysis had to go on without samples the link lost.
    if any(row["live"] is None for row in rows):
        assert summary["recovery"]["live_holes_given_up"] > 0, (name, rows)
    vl = [a for a in told if a["kind"] == "velocity_loss"]
    assert vl and all(a["set"] == 2 and a["rep"] is not None for a in vl), vl
    assert all(row["live"] is None for row in summary["final"]["live_alerts_differing"])


def test_nothing_is_lost_in_transit_at_20_percent_loss_in_real_time(faulty) -> None:
    _, summaries = faulty
    s = summaries["drop20"]
    assert s["recovery"]["samples_recovered_by_resend"] > 1000  # the loss was real
    assert s["samples_lost"] == 0, s["recovery"]


def test_report_history_export_and_analyze_agree(faulty) -> None:
    tmp, _ = faulty
    session = tmp / "drop5.tlsession"
    env = _env(tmp)

    def run(*args: str) -> str:
        done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    analysis = json.loads(run("analyze", str(session), "--json", "-"))
    sets = [s for s in analysis["sets"] if s["kind"] == "dynamic"]
    reps = sum(len(s["reps"]) for s in sets)
    alerts = sorted((a["level"], a["kind"], a.get("set"), a.get("rep")) for a in analysis["alerts"])
    assert reps > 0 and alerts

    # export: the reps and alerts tables
    run("export", str(session), "--format", "csv")
    out = session.with_name(session.name + "-export")
    with (out / "reps.csv").open() as f:
        assert len(list(csv.DictReader(f))) == reps
    with (out / "alerts.csv").open() as f:
        exported = list(csv.DictReader(f))
    assert sorted((a["level"], a["kind"]) for a in exported) == [(a[0], a[1]) for a in alerts]

    # history: the session's entry (collect registered it)
    hist = json.loads(run("history", "--json"))
    (entry,) = [e for e in hist["sessions"] if Path(e["path"]).name == session.name]
    assert entry["reps"] == reps

    # report: its summary line counts the same sets and reps
    text = run("report", str(session), "--out", str(tmp / "report"))
    assert f"{len(sets)} sets with {reps} reps" in text, text

    # and the collector's own summary told the same
    summary = json.loads((tmp / "drop5.json").read_text())
    assert summary["final"]["devices"][0]["reps"] == reps
    final_alerts = sorted(
        (a["level"], a["kind"], a["set"], a["rep"]) for a in summary["final"]["alerts"]
    )
    assert final_alerts == alerts


@pytest.mark.parametrize("sig, ended_by", [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_a_signal_mid_session_leaves_it_finalised(tmp_path: Path, sig, ended_by: str) -> None:
    proc = _collect(tmp_path, "s", ["--speed", "4"])
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        lines.append(line)
        if "set 1 started" in line or time.monotonic() > deadline:
            break
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=60)
    text = "".join(lines) + rest
    assert proc.returncode == 0, text
    assert f"{ended_by}: ending the session" in text
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["ended_by"] == ended_by
    assert summary["duration_s"] < 60  # ended early, not by the scenario's end
    assert summary["final"]["devices"][0]["reps"] >= 1
    with SessionReader(tmp_path / "s.tlsession") as r:
        assert [x.kind for x in r.analyses("final")] == ["final"]
        assert r.meta["ended_by"] == ended_by
    assert not (tmp_path / "s.tlsession-wal").exists()  # closed whole
    hist = subprocess.run(
        [*CLI, "history", "--json"], env=_env(tmp_path), capture_output=True, text=True
    )
    assert any(Path(e["path"]).name == "s.tlsession" for e in json.loads(hist.stdout)["sessions"])
