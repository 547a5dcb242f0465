"""``tremorlift collect`` refuses what it cannot do before anything is created."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tremorlift.cli import main


def test_a_speed_the_collector_cannot_keep_up_with_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = tmp_path / "s.tlsession"
    argv = ["collect", "--simulate", "demo", "--any", "--no-ui", "--session", str(session)]
    assert main([*argv, "--speed", "16"]) == 2
    err = capsys.readouterr().err
    assert "--speed must be in (0, 8]" in err and "cannot keep up" in err
    assert not session.exists()


def test_a_serial_port_that_does_not_exist_fails_at_once_with_no_file_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = tmp_path / "s.tlsession"
    t0 = time.monotonic()
    code = main(["collect", "--serial", "/dev/ttyNOPE", "--no-ui", "--session", str(session)])
    assert code == 2 and time.monotonic() - t0 < 5
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/dev/ttyNOPE" in err[0]
    assert list(tmp_path.iterdir()) == []
