"""Streaming analysis of IMU samples: orientation, reps, velocity loss, tremor, alerts (pure, no I/O).

The package imports its numerical modules on first use, so a command that only needs a list of
allowed values (``PLACEMENTS``, ``GOALS``) does not pay for numpy and scipy. The output's types
are in ``contract``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Where a sensor can be worn: the analysis does not need to know (reps are found by periodicity
# and velocity in the earth frame); it is recorded with the result. Goals: the velocity-loss
# presets. The one list of each that every command uses (read off contract's Literal kinds).
from tremorlift.analysis.contract import GOALS, PLACEMENTS

if TYPE_CHECKING:
    from tremorlift.analysis.combine import combine_devices, device_results
    from tremorlift.analysis.engine import MIN_SAMPLE_RATE_HZ, Engine, Event
    from tremorlift.analysis.limbs import compare_limbs
    from tremorlift.analysis.offline import analyze_recordings, run_engine

_LAZY = {
    "combine_devices": "tremorlift.analysis.combine",
    "device_results": "tremorlift.analysis.combine",
    "Engine": "tremorlift.analysis.engine",
    "Event": "tremorlift.analysis.engine",
    "MIN_SAMPLE_RATE_HZ": "tremorlift.analysis.engine",
    "compare_limbs": "tremorlift.analysis.limbs",
    "analyze_recordings": "tremorlift.analysis.offline",
    "run_engine": "tremorlift.analysis.offline",
}

__all__ = [
    "GOALS",
    "PLACEMENTS",
    "MIN_SAMPLE_RATE_HZ",
    "Engine",
    "Event",
    "analyze_recordings",
    "combine_devices",
    "compare_limbs",
    "device_results",
    "run_engine",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tremorlift.analysis' has no attribute {name!r}")
