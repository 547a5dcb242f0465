"""Firmware tests import the firmware's own modules (firmware/lib) and the `micropython` shim."""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
for _path in (
    _ROOT / "firmware" / "lib",
    Path(__file__).resolve().parent / "shims",
    Path(__file__).resolve().parent / "fakes",  # fake `bluetooth` module and the emulated-board rig
):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


import importlib  # noqa: E402

import pytest  # noqa: E402

# Imported at collection, before any test runs: the test fake (first on sys.path). Checked, so a
# `bluetooth` module left by something else can never pass for it.
_FAKE_BLUETOOTH = importlib.import_module("bluetooth")
assert Path(_FAKE_BLUETOOTH.__file__).parent.name == "fakes", _FAKE_BLUETOOTH


@pytest.fixture(autouse=True)
def _fake_bluetooth_module(monkeypatch):
    """The firmware's BleLink imports `bluetooth` when it is built: make that the test fake,
    whatever an earlier test left in sys.modules (the digital twin installs its own)."""
    monkeypatch.setitem(sys.modules, "bluetooth", _FAKE_BLUETOOTH)
