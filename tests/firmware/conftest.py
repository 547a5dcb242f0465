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
