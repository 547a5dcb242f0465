"""The firmware runtime under real MicroPython (the WebAssembly port run by node): the authority.

on_micropython/runtime/check_runtime.py proves App.pump() (and the whole loop: pump, service, indicators)
allocates nothing with micropython.heap_lock(), with gc.mem_free() flat, and repeats the main
behaviour checks; on_micropython/runtime/check_main.py runs firmware/main.py (safe mode, crash -> reset).
"""

import re

import pytest
from micropython_runner import run_micropython

MOUNTS = (
    ("firmware/lib", "/lib"),
    ("host/tremorlift/twin/board", "/twin"),
    ("tests/firmware/fakes", "/fakes"),
)


def run_mpy(script: str, *extra_mounts: tuple[str, str], heap_mib: int = 12) -> str:
    # A small heap: this port's gc.mem_free() walks the whole heap on every call.
    result = run_micropython(
        script, mounts=MOUNTS + extra_mounts, paths=("/lib", "/twin", "/fakes"), heap_mib=heap_mib
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.mpy
def test_runtime_hot_path_allocation_free_under_micropython() -> None:
    out = run_mpy("tests/firmware/on_micropython/runtime/check_runtime.py")
    assert "RUNTIME OK" in out
    assert "mpu6050 200 Hz: 300 locked polls" in out
    assert "icm42688 1000 Hz: 300 locked polls" in out
    sizes = re.search(r"icm42688 1000 Hz: .* sizes (\d+) - (\d+)", out)
    assert sizes is not None and int(sizes.group(2)) == 19
    assert "gc.mem_free() change over 500 loop iterations: 0 bytes" in out


@pytest.mark.mpy
def test_main_py_safe_mode_and_crash_reset_under_micropython() -> None:
    out = run_mpy(
        "tests/firmware/on_micropython/runtime/check_main.py", ("firmware", "/fw"), heap_mib=8
    )
    assert "safe mode" in out
    assert "MAIN OK" in out
