"""Board defects that show over long times or at the IMU's start-up, under real MicroPython.

on_micropython/runtime/check_board_time.py runs once and reports each check on its own line; each test
here asserts one of them (the script's docstring says what each checks).
"""

from __future__ import annotations

import pytest
from micropython_runner import run_micropython

MOUNTS = (
    ("firmware/lib", "/lib"),
    ("host/tremorlift/twin/board", "/twin"),
    ("tests/firmware/fakes", "/fakes"),
)


@pytest.fixture(scope="module")
def board_time_output() -> str:
    result = run_micropython(
        "tests/firmware/on_micropython/runtime/check_board_time.py",
        mounts=MOUNTS,
        paths=("/lib", "/twin", "/fakes"),
        heap_mib=12,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BOARD TIME DONE 6 checks" in result.stdout, result.stdout + result.stderr
    return result.stdout


def _line(output: str, name: str) -> str:
    for line in output.splitlines():
        if line.split(" ", 2)[1:2] == [name + ":"]:
            return line
    raise AssertionError(f"no {name} line in:\n{output}")


@pytest.mark.mpy
@pytest.mark.parametrize(
    "check",
    [
        "sleep_ms",  # BoardClock.sleep_ms: 0 bytes per await, heap locked
        "uptime",  # the loop allocates nothing past 2^30 ms of uptime; STATUS uptime right
        "gap_10min",  # samples lost while the IMU was missing 10 min counted (> 8.9 min)
        "gap_25min",  # ... and 25 min (more than one ticks_us wrap)
        "icm_start",  # no ICM-42688-P start-up sample in a frame, at START and after re-init
        "serial_uart",  # 1 kHz refused on a UART-bridged board's serial, taken on native USB
    ],
)
def test_board_time_defects_under_micropython(board_time_output: str, check: str) -> None:
    line = _line(board_time_output, check)
    assert line.startswith("OK "), line
