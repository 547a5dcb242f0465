"""Whole-recording analysis: the live engine fed block by block, one engine per sensor.

:func:`analyze_recordings` takes recordings held in memory; :func:`analyze_streams` takes sensors
whose samples arrive as an iterable of ``(t_s, accel_mps2, gyro_radps)`` blocks (a CSV or session
file read in pieces), so a long recording is never in memory at once. Both give the same result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from tremorlift.analysis.engine import Engine
from tremorlift.analysis.limbs import compare_limbs


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
) -> dict[str, Any]:
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
) -> dict[str, Any]:
    """The analyze JSON (docs/analysis-output.md). Raises ValueError for an unusable sample rate."""
    return analyze_streams(
        [_InMemory(rec, max(1, int(round(block_s * rec.sample_rate_hz)))) for rec in recordings],
        exercise=exercise,
        goal=goal,
        vl_threshold_pct=vl_threshold_pct,
        alerts_enabled=alerts_enabled,
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
) -> dict[str, Any]:
    """As :func:`analyze_recordings`, each sensor's blocks fed to its engine as they come (the
    engine's result does not depend on the block size). Raises ValueError for an unusable rate."""
    results: list[dict[str, Any]] = []
    for src in streams:
        engine = Engine(
            src.sample_rate_hz,
            exercise=exercise,
            goal=goal,
            vl_threshold_pct=vl_threshold_pct,
            placement=src.placement,
            alerts_enabled=alerts_enabled,
        )
        for t_s, accel_mps2, gyro_radps in src.blocks():
            engine.feed(t_s, accel_mps2, gyro_radps)
        engine.finish()
        r = engine.result()
        r["name"] = src.name
        results.append(r)
    return _combine(results, alerts_enabled)


def _combine(results: list[dict[str, Any]], alerts_enabled: bool) -> dict[str, Any]:
    """One sensor's result as it is; two or more under ``devices`` with merged episodes/alerts."""
    first = results[0]
    if len(results) == 1:
        return first
    out = {k: v for k, v in first.items() if k not in ("name",)}
    out["devices"] = results
    episodes: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for r in results:
        episodes += [dict(e, device=r["name"]) for e in r["tremor_episodes"]]
        alerts += [dict(a, device=r["name"]) for a in r["alerts"]]
    rows, asym_alerts = compare_limbs(
        results[0]["name"], results[0], results[1]["name"], results[1]
    )
    out["asymmetry"] = rows
    if alerts_enabled:
        alerts += asym_alerts
    out["tremor_episodes"] = sorted(episodes, key=lambda e: e["start_s"])
    out["alerts"] = sorted(alerts, key=lambda a: a["t_s"])
    return out
