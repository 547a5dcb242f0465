"""`tremorlift export`: samples, sets, reps, tremor episodes and alerts as CSV and Parquet, and
the session's metadata."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from coach_sessions import write_session
from tremorlift.cli import main
from tremorlift.store.reader import SessionReader


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_session(
        tmp_path_factory.mktemp("exp") / "two.tlsession", "two-sensors", drop_frames=(5,)
    )


def _stored(session: Path) -> tuple[dict[str, np.ndarray], list[dict]]:
    """The samples and the per-sensor results of the session's final analysis (the one answer
    export, report, history and analyze give)."""
    with SessionReader(session) as r:
        arrays = {a.name: a for a in r.all_arrays().values()}
        (final,) = [x.data for x in r.analyses("final")]
    return arrays, final.get("devices") or [final]


def test_csv_export(session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(session), "--format", "csv"]) == 0
    out = session.with_name("two.tlsession-export")
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "alerts.csv",
        "reps.csv",
        "samples-left.csv",
        "samples-right.csv",
        "session.json",
        "sets.csv",
        "tremor_episodes.csv",
    ]
    assert capsys.readouterr().out.count("\n") == 7
    arrays, results = _stored(session)
    data = np.loadtxt(out / "samples-left.csv", delimiter=",", skiprows=1)
    with (out / "samples-left.csv").open() as f:
        assert (
            f.readline().strip()
            == "t_s,sample_index,ax_mps2,ay_mps2,az_mps2,gx_radps,gy_radps,gz_radps"
        )
    a = arrays["left"]
    assert data.shape == (len(a), 8)
    assert np.array_equal(data[:, 1], a.sample_index)  # the lost frame is a hole, not filled
    assert np.allclose(data[:, 0], a.t_s, atol=1e-6)
    assert np.allclose(data[:, 2:5], a.accel_mps2, rtol=1e-8) and np.allclose(
        data[:, 5:8], a.gyro_radps, rtol=1e-8
    )
    with (out / "reps.csv").open() as f:
        reps = list(csv.DictReader(f))
    assert len(reps) == sum(len(s["reps"]) for r in results for s in r["sets"])
    assert {r["device"] for r in reps} == {"left", "right"}
    first = next(s for s in results[0]["sets"] if s["reps"])["reps"][0]
    row = next(r for r in reps if r["device"] == "left")
    assert float(row["mean_concentric_velocity_mps"]) == pytest.approx(
        first["mean_concentric_velocity_mps"]
    )
    with (out / "alerts.csv").open() as f:
        alerts = list(csv.DictReader(f))
    assert len(alerts) >= sum(len(r["alerts"]) for r in results)  # plus asymmetry alerts
    assert all(
        a["level"] in ("info", "warn", "stop") and (a["device"] or a["kind"] == "asymmetry")
        for a in alerts
    )
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_parquet_export(session: Path, tmp_path: Path) -> None:
    out = tmp_path / "pq"
    assert main(["export", str(session), "--format", "parquet", "--out", str(out)]) == 0
    arrays, results = _stored(session)
    t = pq.read_table(out / "samples-right.parquet")
    assert t.column_names == [
        "t_s",
        "sample_index",
        "ax_mps2",
        "ay_mps2",
        "az_mps2",
        "gx_radps",
        "gy_radps",
        "gz_radps",
    ]
    a = arrays["right"]
    assert np.array_equal(t.column("sample_index").to_numpy(), a.sample_index)
    assert np.array_equal(t.column("az_mps2").to_numpy(), a.accel_mps2[:, 2])  # exact floats
    reps = pq.read_table(out / "reps.parquet")
    assert reps.num_rows == sum(len(s["reps"]) for r in results for s in r["sets"])
    assert (
        str(reps.schema.field("set").type) == "int64"
        and str(reps.schema.field("device").type) == "string"
    )
    ep = pq.read_table(out / "tremor_episodes.parquet")
    assert ep.column_names == ["device", "start_s", "end_s", "peak_hz", "rms_mps2", "cause"]


def test_bad_session_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.tlsession"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    assert main(["export", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "o").exists()
    assert main(["export", str(tmp_path / "missing.tlsession")]) == 2


@pytest.fixture(scope="module")
def demo_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two bench sets and an isometric hold."""
    return write_session(tmp_path_factory.mktemp("demo") / "demo.tlsession", "demo")


def test_sets_table_holds_every_set_holds_included(demo_session: Path, tmp_path: Path) -> None:
    out = tmp_path / "sets"
    assert main(["export", str(demo_session), "--out", str(out)]) == 0
    _, results = _stored(demo_session)
    with (out / "sets.csv").open() as f:
        rows = list(csv.DictReader(f))
    expected = [(r["name"], i, s) for r in results for i, s in enumerate(r["sets"], 1)]
    assert len(rows) == len(expected) and rows
    kinds = {s["kind"] for _, _, s in expected}
    assert "hold" in kinds and "dynamic" in kinds  # the scenario has both: none vanishes
    for row, (name, i, s) in zip(rows, expected, strict=True):
        assert (row["device"], int(row["set"]), row["kind"]) == (name, i, s["kind"])
        assert int(row["reps"]) == len(s["reps"])
        assert float(row["start_s"]) == pytest.approx(s["start_s"])
        if s["kind"] == "dynamic":
            assert float(row["best_velocity_mps"]) == pytest.approx(s["best_velocity_mps"])
            assert row["posture_drift_deg"] == ""  # a hold's column, empty on a lifting set
        else:
            assert row["velocity_loss_pct"] == "" and row["reps"] == "0"
            assert float(row["duration_s"]) == pytest.approx(s["duration_s"])
            assert float(row["posture_drift_deg"]) == pytest.approx(s["posture_drift_deg"])


def test_session_json_has_meta_sensors_and_the_analysis_settings(
    session: Path, tmp_path: Path
) -> None:
    out = tmp_path / "meta"
    assert main(["export", str(session), "--format", "parquet", "--out", str(out)]) == 0
    doc = json.loads((out / "session.json").read_text())
    with SessionReader(session) as r:
        meta = dict(r.meta)
        (final,) = [x.data for x in r.analyses("final")]
        addresses = [d.address for d in r.devices()]
    assert doc["meta"]["created_utc"] == meta["created_utc"]
    assert doc["meta"]["session_id"] == meta["session_id"] and len(meta["session_id"]) == 32
    assert [d["address"] for d in doc["sensors"]] == addresses
    assert [d["name"] for d in doc["sensors"]] == ["left", "right"]
    assert {d["placement"] for d in doc["sensors"]} == {"thigh"}
    assert doc["analysis_settings"] == final["settings"]
    assert set(doc) == {"meta", "settings", "sensors", "analysis_settings"}
