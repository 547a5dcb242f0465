"""`tremorlift export`: samples, reps, tremor episodes and alerts as CSV and Parquet."""

from __future__ import annotations

import csv
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
        "tremor_episodes.csv",
    ]
    assert capsys.readouterr().out.count("\n") == 5
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
