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
        "sample rate 20.0 Hz is below",
    ),
    "short": (
        f"{HEADER}\n" + "".join(f"{k * 0.005:.3f},0,0,9.8,0,0,0\n" for k in range(200)),
        "lasts 0.99 s (200 samples); need at least 2 s",
    ),
    "blank-inside": (
        f"{HEADER}\n0,0,0,9.8,0,0,0\n\n0.01,0,0,9.8,0,0,0\n",
        "line 3: empty line inside the data",
    ),
    "too-much-g": (
        f"{HEADER}\n0,0,0,9.8,0,0,0\n0.005,300,400,9.8,0,0,0\n",
        "line 3: |a| = 500.1 m/s^2 is beyond 50 g",
    ),
    "too-fast-spin": (
        f"{HEADER}\n0,0,0,9.8,0,0,0\n0.005,0,0,9.8,0,0,0\n0.01,0,0,9.8,0,60,0\n",
        "line 4: |omega| = 60 rad/s is beyond 50 rad/s",
    ),
    "inf": (f"{HEADER}\n0,0,0,9.8,0,0,0\n0.005,0,0,9.8,0,-inf,0\n", "line 3: gy is not a finite"),
    "binary": ("\x00\x01\x02", "missing columns"),
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
    from tremorlift.store.reader import SessionReader

    path = write_session(tmp_path / "two.tlsession", "two-sensors", seed=2, analysis="engine")
    out = tmp_path / "two.json"
    code, _, err = run_cli(["analyze", str(path), "--json", str(out)], capsys)
    assert code == 0, err
    res = json.loads(out.read_text())
    assert [d["name"] for d in res["devices"]] == ["left", "right"]
    assert "asymmetry" in res
    # The collector's live engine result stored in the session and the offline analysis agree.
    with SessionReader(path) as reader:
        stored = {r.device: r.data for r in reader.analyses("live")}
    live_counts = [[len(s["reps"]) for s in d["sets"]] for _, d in sorted(stored.items())]
    assert [[len(s["reps"]) for s in d["sets"]] for d in res["devices"]] == live_counts


# --- streaming: the CSV is read in blocks; block boundaries, compression and the reading path
# (pyarrow, or line by line once a block does not parse) do not change anything.


def _rows(t: np.ndarray, acc: np.ndarray, gyr: np.ndarray) -> str:
    data = np.column_stack((t, acc, gyr))
    return "\n".join(",".join(f"{v:.5f}" for v in row) for row in data) + "\n"


@pytest.fixture(scope="module")
def lifting_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tremorlift.twin.motion.generator import generate

    dev = generate("squat-5x5", 3, sample_rate_hz=100.0, short=True).devices[0]
    path = tmp_path_factory.mktemp("lift") / "squat.csv"
    path.write_text(HEADER + "\n" + _rows(dev.t_s, dev.accel_mps2, dev.gyro_radps))
    return path


def _analyze(source: object) -> dict:
    from tremorlift.analysis.offline import analyze_streams

    return analyze_streams([source], goal="strength")


def test_block_boundaries_do_not_change_the_result(lifting_csv: Path, tmp_path: Path) -> None:
    from tremorlift.analysis.offline import analyze_recordings
    from tremorlift.store.csv_input import Recording, open_csv

    data = np.loadtxt(lifting_csv, delimiter=",", skiprows=1)
    rate = open_csv(lifting_csv).sample_rate_hz
    assert rate == pytest.approx(100.0)
    whole = Recording("squat.csv", data[:, 0], data[:, 1:4], data[:, 4:7], rate)
    expected = analyze_recordings([whole], goal="strength", block_s=1e9)  # one block
    assert expected["sets"], "the recording should hold sets for this test to mean something"
    for block_bytes in (100, 4096, 50_000, 1 << 30):
        stream = open_csv(lifting_csv, block_bytes=block_bytes)
        assert _analyze(stream) == expected, block_bytes
        assert stream.warnings == []
    # Trailing blank lines make the last block go line by line; same result.
    padded = tmp_path / "squat.csv"
    padded.write_text(lifting_csv.read_text() + "\n\n \n")
    assert _analyze(open_csv(padded, block_bytes=50_000)) == expected


def test_gzip_csv_is_read_like_the_plain_file(
    lifting_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import gzip

    gz = tmp_path / "squat.csv.gz"
    gz.write_bytes(gzip.compress(lifting_csv.read_bytes()))
    code, plain, _ = run_cli(["analyze", str(lifting_csv), "--json", "-"], capsys)
    assert code == 0
    code, packed, err = run_cli(["analyze", str(gz), "--json", "-"], capsys)
    assert code == 0, err
    assert json.loads(packed) == dict(json.loads(plain), name="squat.csv.gz")
    # A cut-off compressed file is one error line, exit 2.
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    code, out, err = run_cli(["analyze", str(cut), "--json", str(tmp_path / "o.json")], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "cut.csv.gz" in err
    assert "truncated or damaged" in err or "cells (file truncated?)" in err
    assert not (tmp_path / "o.json").exists()


DEEP_LINE = 9000  # well past the first block the reader takes (about 4000 lines)
DEEP_BAD = {
    "nan": (lambda c: c.__setitem__(1, "nan"), "ax is not a finite number"),
    "text": (lambda c: c.__setitem__(2, "1.0.0"), "ay = '1.0.0' is not a number"),
    "huge-g": (lambda c: c.__setitem__(3, "600"), "|a| = 600 m/s^2 is beyond 50 g"),
    "backwards": (lambda c: c.__setitem__(0, "1.0"), "time does not increase (1 s after"),
    "short-row": (lambda c: c.__delitem__(slice(4, None)), "4 of 7 cells"),
}


@pytest.mark.parametrize("gz", [False, True], ids=["csv", "gz"])
@pytest.mark.parametrize("case", sorted(DEEP_BAD))
def test_bad_row_deep_in_a_long_file_is_named(
    case: str, gz: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import gzip

    fs = 200.0
    n = 12_000
    t = np.arange(n) / fs
    acc = np.tile([0.0, 0.0, G_MPS2], (n, 1))
    lines = (HEADER + "\n" + _rows(t, acc, np.zeros((n, 3)))).splitlines()
    cells = lines[DEEP_LINE - 1].split(",")
    edit, expected = DEEP_BAD[case]
    edit(cells)
    lines[DEEP_LINE - 1] = ",".join(cells)
    text = "\n".join(lines) + "\n"
    src = tmp_path / ("long.csv.gz" if gz else "long.csv")
    src.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    out = tmp_path / "out.json"
    code, stdout, err = run_cli(["analyze", str(src), "--json", str(out)], capsys)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert f"{src.name}: line {DEEP_LINE}: {expected}" in line
    assert stdout == "" and not out.exists()


def test_gaps_long_refused_short_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fs = 200.0
    t = np.arange(4000) / fs
    t[3000:] += 2.0  # a 2 s hole
    acc = np.tile([0.0, 0.0, G_MPS2], (t.size, 1))
    src = tmp_path / "hole.csv"
    src.write_text(HEADER + "\n" + _rows(t, acc, np.zeros((t.size, 3))))
    code, _, err = run_cli(["analyze", str(src)], capsys)
    assert code == 2
    assert "hole.csv: line 3002: 2.01 s gap in time" in err and len(err.strip().splitlines()) == 1
    t = np.arange(4000) / fs
    t[3000:] += 0.1  # 20 samples missing
    src.write_text(HEADER + "\n" + _rows(t, acc, np.zeros((t.size, 3))))
    code, out, err = run_cli(["analyze", str(src), "--json", "-"], capsys)
    assert code == 0, err
    (warning,) = json.loads(out)["input_warnings"]
    assert warning.startswith("1 gap in time, 0.10 s of samples missing")
    code, out, _ = run_cli(["analyze", str(src)], capsys)
    assert code == 0 and "input: 1 gap in time" in out


def test_clipped_accelerometer_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fs = 200.0
    n = 2000
    t = np.arange(n) / fs
    acc = np.tile([0.0, 0.0, G_MPS2], (n, 1))
    acc[:, 0] = 12.0 * np.sin(2 * np.pi * 0.5 * t)
    acc[:, 0] = np.clip(acc[:, 0], -8 * G_MPS2 / 8, 8 * G_MPS2 / 8)  # held at +/-1 g ...
    src = tmp_path / "clip.csv"
    src.write_text(HEADER + "\n" + _rows(t, acc, np.zeros((n, 3))))
    code, out, _ = run_cli(["analyze", str(src), "--json", "-"], capsys)
    assert code == 0 and json.loads(out)["input_warnings"] == []  # ... 1 g is no full scale
    acc[:, 0] = np.clip(12.0 * np.sin(2 * np.pi * 0.5 * t) * 2, -2 * G_MPS2, 2 * G_MPS2)
    src.write_text(HEADER + "\n" + _rows(t, acc, np.zeros((n, 3))))
    code, out, _ = run_cli(["analyze", str(src), "--json", "-"], capsys)
    assert code == 0
    (warning,) = json.loads(out)["input_warnings"]
    assert "accelerometer held at +/-2.00 g" in warning and "clipped" in warning


def test_session_samples_stream_in_blocks_as_arrays_gives_them(tmp_path: Path) -> None:
    from coach_sessions import write_session
    from tremorlift.store.reader import SessionReader

    path = write_session(tmp_path / "two.tlsession", "two-sensors", seed=3, analysis="engine")
    with SessionReader(path) as reader:
        for dev in reader.devices():
            arr = reader.arrays(dev.device)
            assert len(arr) > 1000
            for frames_per_block in (1, 7, 100_000):
                stream = reader.sample_stream(dev.device, frames_per_block=frames_per_block)
                assert stream.in_order and len(stream) == len(arr)
                assert stream.rate_hz == arr.rate_hz
                blocks = list(stream.blocks())
                assert len(blocks) == -(-reader.frame_count(dev.device) // frames_per_block)
                for got, want in zip(
                    (np.concatenate([b[k] for b in blocks]) for k in range(3)),
                    (arr.t_s, arr.accel_mps2, arr.gyro_radps),
                    strict=True,
                ):
                    np.testing.assert_array_equal(got, want)


def test_session_with_lost_frames_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from coach_sessions import write_session

    path = write_session(tmp_path / "lost.tlsession", "demo", drop_frames=(40, 41, 300))
    code, out, err = run_cli(["analyze", str(path), "--json", "-"], capsys)
    assert code == 0, err
    warnings = json.loads(out)["input_warnings"]
    assert any(w.startswith("2 gaps in time") for w in warnings), warnings
