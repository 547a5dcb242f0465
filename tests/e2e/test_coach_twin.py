"""The coach's outputs on a session recorded from the digital twin through the real collector:
`collect` (which indexes it in the history), then `report`, `history` and `export`."""

from __future__ import annotations

import csv
import json

import pytest
from tremorlift.cli import main
from tremorlift.store.reader import SessionReader

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("coach")
    mp = pytest.MonkeyPatch()
    mp.setenv("TREMORLIFT_DATA_DIR", str(tmp / "data"))
    mp.setenv("TREMORLIFT_CONFIG_DIR", str(tmp / "config"))
    session = tmp / "demo.tlsession"
    rc = main([
        "collect", "--simulate", "demo", "--speed", "6", "--any", "--scan-timeout", "1",
        "--exercise", "squat", "--goal", "strength", "--no-ui", "--no-sound", "--no-speech",
        "--session", str(session), "--summary-json", str(tmp / "summary.json"),
    ])  # fmt: skip
    assert rc == 0
    yield tmp, session, json.loads((tmp / "summary.json").read_text())
    mp.undo()


def test_report_from_a_twin_session(recorded, capsys, monkeypatch):
    tmp, session, _ = recorded
    monkeypatch.setenv("TREMORLIFT_DATA_DIR", str(tmp / "data"))
    out = tmp / "report"
    assert main(["report", str(session), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "squat" in text and "rep" in text
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3
    assert (out / "velocity.png").stat().st_size > 10_000


def test_history_indexes_the_twin_session(recorded, capsys, monkeypatch):
    tmp, session, summary = recorded
    monkeypatch.setenv("TREMORLIFT_DATA_DIR", str(tmp / "data"))
    assert main(["history", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = data["sessions"] if isinstance(data, dict) else data
    mine = [r for r in rows if str(session) in json.dumps(r)]
    assert len(mine) == 1
    row = json.dumps(mine[0])
    assert "squat" in row
    assert summary["samples_lost"] == 0


def test_export_holds_every_recorded_sample(recorded, monkeypatch):
    tmp, session, summary = recorded
    monkeypatch.setenv("TREMORLIFT_DATA_DIR", str(tmp / "data"))
    out = tmp / "export"
    assert main(["export", str(session), "--format", "csv", "--out", str(out)]) == 0
    sample_files = sorted(out.glob("samples*.csv"))
    assert len(sample_files) == 1
    with sample_files[0].open() as f:
        rows = sum(1 for _ in csv.reader(f)) - 1
    assert rows == summary["samples_received"]
    with SessionReader(session) as r:
        assert rows == sum(len(a) for a in r.all_arrays().values())
    with (out / "reps.csv").open() as f:
        assert sum(1 for _ in csv.reader(f)) - 1 >= 5  # two sets of squats
    assert main(["export", str(session), "--format", "parquet", "--out", str(tmp / "pq")]) == 0
    import pyarrow.parquet as pq

    table = pq.read_table(sorted((tmp / "pq").glob("samples*.parquet"))[0])
    assert table.num_rows == summary["samples_received"]
