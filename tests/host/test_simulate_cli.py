"""``tremorlift simulate``: CSV + truth round trip, two-sensor naming, listing and errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from tremorlift.cli import main
from tremorlift.twin.motion import generator as motion


def read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, encoding="ascii") as fh:
        header = fh.readline().strip().split(",")
    return header, np.loadtxt(path, delimiter=",", skiprows=1)


def test_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.csv"
    assert (
        main(
            [
                "simulate",
                "--scenario",
                "demo",
                "--seed",
                "3",
                "--out",
                str(out),
                "--rate",
                "100",
                "--imu",
                "mpu6050",
                "--short",
            ]
        )
        == 0
    )
    header, data = read_csv(out)
    assert header == ["t", "ax", "ay", "az", "gx", "gy", "gz"]
    rec = motion.generate("demo", 3, sample_rate_hz=100.0, imu="mpu6050", short=True).devices[0]
    assert data.shape == (rec.t_s.size, 7)
    assert np.allclose(data[:, 0], rec.t_s, atol=1e-6)
    assert np.allclose(data[:, 1:4], rec.accel_mps2, rtol=1e-6, atol=1e-6)
    assert np.allclose(data[:, 4:7], rec.gyro_radps, rtol=1e-6, atol=1e-9)
    truth = json.loads((tmp_path / "run.truth.json").read_text())
    assert truth == json.loads(json.dumps(rec.truth))
    assert truth["imu"] == "mpu6050" and truth["sample_rate_hz"] == 100.0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "run.csv",
        "run.truth.json",
    ]  # no temp files left
    assert "run.csv" in capsys.readouterr().out


def test_two_sensor_naming_and_device_choice(tmp_path: Path) -> None:
    out = tmp_path / "legs.csv"
    assert (
        main(["simulate", "--scenario", "two-sensors", "--seed", "1", "--out", str(out), "--short"])
        == 0
    )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "legs-left.csv",
        "legs-left.truth.json",
        "legs-right.csv",
        "legs-right.truth.json",
    ]
    left = json.loads((tmp_path / "legs-left.truth.json").read_text())
    assert left["device"] == "left"

    one = tmp_path / "one" / "right.csv"
    one.parent.mkdir()
    assert (
        main(
            [
                "simulate",
                "--scenario",
                "two-sensors",
                "--seed",
                "1",
                "--out",
                str(one),
                "--device",
                "right",
                "--short",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in one.parent.iterdir()) == ["right.csv", "right.truth.json"]
    assert json.loads((one.parent / "right.truth.json").read_text())["device"] == "right"
    _, data = read_csv(one)
    _, right = read_csv(tmp_path / "legs-right.csv")
    assert np.array_equal(data, right)


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(motion.SCENARIOS)
    for name, line in zip(motion.SCENARIOS, lines, strict=True):
        assert line.split()[0] == name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "zumba"], "valid: squat-5x5"),
        (["--scenario", "demo", "--rate", "20"], "outside 50-2000"),
        (["--scenario", "demo", "--rate", "4000"], "outside 50-2000"),
        (["--scenario", "two-sensors", "--device", "middle"], "devices: left, right"),
        ([], "--scenario is required"),
    ],
)
def test_bad_arguments_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["simulate", "--out", str(tmp_path / "x.csv"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_destination_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "simulate",
                "--scenario",
                "demo",
                "--short",
                "--out",
                str(tmp_path / "missing" / "x.csv"),
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    # The truth file's name is taken by a directory: the rename fails after the CSV was staged;
    # nothing may be left behind (neither the CSV nor temporary files).
    (tmp_path / "busy.truth.json").mkdir()
    assert (
        main(["simulate", "--scenario", "demo", "--short", "--out", str(tmp_path / "busy.csv")])
        == 2
    )
    err = capsys.readouterr().err
    assert "cannot write" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy.truth.json"]
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # running as root: permissions are not enforced
            pytest.skip("directory permissions are not enforced for this user")
        assert (
            main(["simulate", "--scenario", "demo", "--short", "--out", str(locked / "x.csv")]) == 2
        )
        assert "not writable" in capsys.readouterr().err
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_missing_out_writes_the_csv_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--scenario", "demo", "--short"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("t,ax,ay,az,gx,gy,gz\n") and "--out" in err


def test_failed_rename_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_replace = os.replace
    calls = []

    def flaky_replace(src: str, dst: str | Path) -> None:
        calls.append(dst)
        if len(calls) == 3:  # left CSV and truth renamed, then the disk fills up
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    assert (
        main(
            [
                "simulate",
                "--scenario",
                "two-sensors",
                "--short",
                "--out",
                str(tmp_path / "legs.csv"),
            ]
        )
        == 2
    )
    assert "No space left on device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
