"""The pairing window under real MicroPython: new hosts pair only in the first 60 s after
power-on or after a press of the button; afterwards their pairing is refused (keys not kept,
commands NOT_AUTHORISED, the link dropped) while a host bonded before still re-encrypts.
on_micropython/security/check_pairing_window.py plays the stack's key-store and encryption events."""

import pytest
from micropython_runner import run_micropython

MOUNTS = (
    ("firmware/lib", "/lib"),
    ("host/tremorlift/twin/board", "/twin"),
    ("tests/firmware/fakes", "/fakes"),
)


@pytest.mark.mpy
def test_pairing_window_under_micropython() -> None:
    result = run_micropython(
        "tests/firmware/on_micropython/security/check_pairing_window.py",
        mounts=MOUNTS,
        paths=("/lib", "/twin", "/fakes"),
        heap_mib=12,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PAIRING WINDOW OK" in result.stdout
    assert "refused pairings: 3" in result.stdout
