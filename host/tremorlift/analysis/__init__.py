"""Streaming analysis of IMU samples: orientation, reps, velocity loss, tremor, alerts (pure, no I/O).

The package imports its numerical modules on first use, so a command that only needs a list of
allowed values (``PLACEMENTS``) does not pay for numpy and scipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Where a sensor can be worn. The analysis does not need to know (reps are found by periodicity
# and velocity in the earth frame); it is recorded with the result. The one list every command uses.
PLACEMENTS = ("wrist", "forearm", "thigh", "shank")

if TYPE_CHECKING:
    from tremorlift.analysis.engine import MIN_SAMPLE_RATE_HZ, Engine, Event
    from tremorlift.analysis.limbs import compare_limbs
    from tremorlift.analysis.offline import analyze_recordings, run_engine

_LAZY = {
    "Engine": "tremorlift.analysis.engine",
    "Event": "tremorlift.analysis.engine",
    "MIN_SAMPLE_RATE_HZ": "tremorlift.analysis.engine",
    "compare_limbs": "tremorlift.analysis.limbs",
    "analyze_recordings": "tremorlift.analysis.offline",
    "run_engine": "tremorlift.analysis.offline",
}

__all__ = [
    "PLACEMENTS",
    "MIN_SAMPLE_RATE_HZ",
    "Engine",
    "Event",
    "analyze_recordings",
    "compare_limbs",
    "run_engine",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tremorlift.analysis' has no attribute {name!r}")
