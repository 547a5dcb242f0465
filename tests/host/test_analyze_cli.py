"""``tremorlift analyze``: CSV validation (one line, exit 2, nothing written) and the outputs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from tremorlift.cli import main

G_MPS2 = 9.80665
HEADER = "t,ax,ay,az,gx,gy,gz"


def write_csv(
    path: Path, fs_hz: float = 200.0, seconds: float = 40.0, tremor_hz: float | None = 9.0
) -> Path:
    n = int(seconds * fs_hz)
    t = np.arange(n) / fs_hz
    rng = np.random.default_rng(1)
    acc = np.column_stack((np.zeros(n), np.zeros(n), np.full(n, G_MPS2))) + rng.normal(
        0, 0.02, (n, 3)
    )
    if tremor_hz is not None:
        on = t > 15
        acc[on, 0] += 0.4 * np.sin(2 * np.pi * tremor_hz * t[on])
    gyr = rng.normal(0, 0.003, (n, 3))
    rows = "\n".join(",".join(f"{v:.6f}" for v in row) for row in np.column_stack((t, acc, gyr)))
    path.write_text(HEADER + "\n" + rows + "\n")
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_the_documented_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "still.csv")
    out = tmp_path / "out.json"
    code, _, err = run_cli(
        ["analyze", str(src), "--json", str(out), "--goal", "power", "--exercise", "curl"], capsys
    )
    assert code == 0, err
    res = json.loads(out.read_text())
    assert res["sample_rate_hz"] == pytest.approx(200.0)
    assert res["velocity_loss_threshold_pct"] == 10.0
    assert {"sets", "tremor_episodes", "alerts"} <= res.keys()
    (ep,) = res["tremor_episodes"]
    assert set(ep) >= {"start_s", "end_s", "peak_hz", "rms_mps2", "cause"}
    assert ep["peak_hz"] == pytest.approx(9.0, abs=0.3)
    assert ep["cause"] in {"fatigue", "instability", "rest", "other"}


def test_table_and_json_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "s.csv", seconds=20.0, tremor_hz=None)
    code, out, _ = run_cli(["analyze", str(src)], capsys)
    assert code == 0
    assert "tremor episodes:" in out and "alerts:" in out and "(no sets found)" in out
    code, out, _ = run_cli(["analyze", str(src), "--json", "-"], capsys)
    assert code == 0
    assert json.loads(out)["sets"] == []


BAD_CASES = {
    "missing": ("t,ax,ay,az,gx,gy\n0,0,0,9.8,0,0\n", "missing column gz"),
    "text": (
        f"{HEADER}\n0,0,0,9.8,0,0,0\n0.005,0,abc,9.8,0,0,0\n",
        "line 3: ay = 'abc' is not a number",
    ),
    "backwards": (
        f"{HEADER}\n0,0,0,9.8,0,0,0\n0.01,0,0,9.8,0,0,0\n0.005,0,0,9.8,0,0,0\n",
        "line 4: time does not increase",
    ),
    "nan": (
        f"{HEADER}\n0,0,0,9.8,0,0,0\n0.005,nan,0,9.8,0,0,0\n",
        "line 3: ax is not a finite number",
    ),
    "empty": ("", "empty file"),
    "header-only": (f"{HEADER}\n", "no samples"),
    "truncated": (
        f"{HEADER}\n0,0,0,9.8,0,0,0\n0.005,0,0,9.8",
        "line 3: 4 of 7 cells (file truncated?)",
    ),
    "slow": (
        f"{HEADER}\n" + "".join(f"{k * 0.05:.2f},0,0,9.8,0,0,0\n" for k in range(200)),
        "below 50 Hz",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected = BAD_CASES[case]
    src = tmp_path / f"{case}.csv"
    src.write_text(text)
    out = tmp_path / "out.json"
    code, stdout, err = run_cli(["analyze", str(src), "--json", str(out)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert src.name in lines[0] and expected in lines[0]
    assert "Traceback" not in err and stdout == ""
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [src]  # no temporary file left behind either


def test_missing_file_and_bad_threshold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["analyze", str(tmp_path / "nope.csv")], capsys)
    assert code == 2 and "no such file" in err
    src = write_csv(tmp_path / "s.csv", seconds=5.0, tremor_hz=None)
    code, _, err = run_cli(["analyze", str(src), "--vl-threshold", "150"], capsys)
    assert code == 2 and "--vl-threshold" in err


def test_sqlite_file_that_is_not_a_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "other.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE x (a)")
    con.commit()
    con.close()
    code, _, err = run_cli(["analyze", str(db), "--json", str(tmp_path / "o.json")], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "not a tremorlift session" in err
    assert not (tmp_path / "o.json").exists()


def test_session_file_with_two_sensors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from coach_sessions import write_session
    from tremorlift.session import SessionReader

    path = write_session(tmp_path / "two.tlsession", "two-sensors", seed=2, analysis="engine")
    out = tmp_path / "two.json"
    code, _, err = run_cli(["analyze", str(path), "--json", str(out)], capsys)
    assert code == 0, err
    res = json.loads(out.read_text())
    assert [d["name"] for d in res["devices"]] == ["left", "right"]
    assert "asymmetry" in res
    # The collector's live engine result stored in the session and the offline analysis agree.
    with SessionReader(path) as reader:
        stored = {r.device: r.data for r in reader.analyses("session")}
    live_counts = [[len(s["reps"]) for s in d["sets"]] for _, d in sorted(stored.items())]
    assert [[len(s["reps"]) for s in d["sets"]] for d in res["devices"]] == live_counts
