"""Streaming analysis of IMU samples: orientation, reps, velocity loss, tremor, alerts (pure, no I/O)."""

from tremorlift.analysis.engine import MIN_SAMPLE_RATE_HZ, Engine, Event
from tremorlift.analysis.limbs import compare_limbs
from tremorlift.analysis.offline import analyze_recordings, run_engine

__all__ = [
    "Engine",
    "Event",
    "MIN_SAMPLE_RATE_HZ",
    "analyze_recordings",
    "compare_limbs",
    "run_engine",
]
