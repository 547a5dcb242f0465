"""Whole-recording analysis: the live engine fed block by block, one engine per sensor.

:func:`analyze_recordings` takes recordings held in memory; :func:`analyze_streams` takes sensors
whose samples arrive as an iterable of ``(t_s, accel_mps2, gyro_radps)`` blocks (a CSV or session
file read in pieces), so a long recording is never in memory at once. Both give the same result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

from tremorlift.analysis.combine import combine_devices
from tremorlift.analysis.contract import DeviceResult, EngineResult, SessionResult
from tremorlift.analysis.engine import Engine


class SensorRecording(Protocol):
    name: str
    t_s: np.ndarray
    accel_mps2: np.ndarray
    gyro_radps: np.ndarray
    sample_rate_hz: float
    placement: str | None


class SensorStream(Protocol):
    name: str
    sample_rate_hz: float
    placement: str | None

    def blocks(self) -> Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]: ...


def run_engine(
    engine: Engine, t_s: np.ndarray, accel_mps2: np.ndarray, gyro_radps: np.ndarray, block_n: int
) -> EngineResult:
    for i in range(0, t_s.size, block_n):
        engine.feed(t_s[i : i + block_n], accel_mps2[i : i + block_n], gyro_radps[i : i + block_n])
    engine.finish()
    return engine.result()


def analyze_recordings(
    recordings: Sequence[SensorRecording],
    *,
    exercise: str | None = None,
    goal: str | None = None,
    vl_threshold_pct: float | None = None,
    alerts_enabled: bool = True,
    block_s: float = 1.0,
    stop_policy: str | None = None,
) -> SessionResult:
    """The analyze JSON (docs/analysis-output.md). Raises ValueError for an unusable sample rate."""
    return analyze_streams(
        [_InMemory(rec, max(1, int(round(block_s * rec.sample_rate_hz)))) for rec in recordings],
        exercise=exercise,
        goal=goal,
        vl_threshold_pct=vl_threshold_pct,
        alerts_enabled=alerts_enabled,
        stop_policy=stop_policy,
    )


class _InMemory:
    """A recording held in memory, handed out in blocks of ``block_n`` samples."""

    def __init__(self, rec: SensorRecording, block_n: int) -> None:
        self.name, self.sample_rate_hz, self.placement = rec.name, rec.sample_rate_hz, rec.placement
        self._rec, self._n = rec, block_n

    def blocks(self) -> Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        r, n = self._rec, self._n
        for i in range(0, r.t_s.size, n):
            yield r.t_s[i : i + n], r.accel_mps2[i : i + n], r.gyro_radps[i : i + n]


def analyze_streams(
    streams: Sequence[SensorStream],
    *,
    exercise: str | None = None,
    goal: str | None = None,
    vl_threshold_pct: float | None = None,
    alerts_enabled: bool = True,
    stop_policy: str | None = None,
) -> SessionResult:
    """As :func:`analyze_recordings`, each sensor's blocks fed to its engine as they come (the
    engine's result does not depend on the block size). Raises ValueError for an unusable rate."""
    results: list[DeviceResult] = []
    for src in streams:
        engine = Engine(
            src.sample_rate_hz,
            exercise=exercise,
            goal=goal,
            vl_threshold_pct=vl_threshold_pct,
            placement=src.placement,
            alerts_enabled=alerts_enabled,
            stop_policy=stop_policy,
            live=False,
        )
        for t_s, accel_mps2, gyro_radps in src.blocks():
            engine.feed(t_s, accel_mps2, gyro_radps)
        engine.finish()
        results.append({**engine.result(), "name": src.name})
    return combine_devices(results, alerts_enabled=alerts_enabled)
