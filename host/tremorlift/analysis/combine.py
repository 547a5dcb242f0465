"""One session's result from its sensors' results: the one place two or more sensors are merged,
used by ``analyze`` (offline), the coach modules (a stored session) and the live collector.

Pure Python (no numpy): importing it is cheap.
"""

from __future__ import annotations

from typing import cast

from tremorlift.analysis.contract import (
    Alert,
    AsymmetryRow,
    DeviceResult,
    SessionResult,
    TremorEpisode,
)
from tremorlift.analysis.limbs import compare_limbs


def combine_devices(
    results: list[DeviceResult],
    *,
    alerts_enabled: bool = True,
    asymmetry: tuple[list[AsymmetryRow], list[Alert]] | None = None,
) -> SessionResult:
    """The session's result (docs/analysis-output.md, top level). One sensor: its result as it
    is. Two or more: the first sensor's keys without ``name``, every result under ``devices``,
    tremor episodes and alerts merged in time order, each carrying ``device``, and for the first
    two sensors ``asymmetry`` rows and alerts (``compare_limbs``; ``asymmetry`` passes rows and
    alerts already computed, as an older session file stores them).

    ``alerts_enabled`` is the master switch: off, the comparison raises no alerts (the engines,
    built with the same switch, raised none either)."""
    if not results:
        raise ValueError("no sensor results to combine")
    first = results[0]
    if len(results) == 1:
        return {**first}
    if asymmetry is None:
        asymmetry = compare_limbs(first["name"], first, results[1]["name"], results[1])
    rows, asym_alerts = asymmetry
    episodes: list[TremorEpisode] = [
        {**e, "device": r["name"]} for r in results for e in r["tremor_episodes"]
    ]
    alerts: list[Alert] = [{**a, "device": r["name"]} for r in results for a in r["alerts"]]
    if alerts_enabled:
        alerts += asym_alerts
    out: SessionResult = {
        "sample_rate_hz": first["sample_rate_hz"],
        "placement": first["placement"],
        "velocity_loss_threshold_pct": first["velocity_loss_threshold_pct"],
        "duration_s": first["duration_s"],
        "tremor": first["tremor"],
        "tremor_baseline_rms_mps2": first["tremor_baseline_rms_mps2"],
        "sets": first["sets"],
        "tremor_episodes": sorted(episodes, key=lambda e: e["start_s"]),
        "alerts": sorted(alerts, key=lambda a: a["t_s"]),
        "devices": results,
        "asymmetry": rows,
    }
    if "stop_policy" in first:
        out["stop_policy"] = first["stop_policy"]
    if "input_warnings" in first:
        out["input_warnings"] = first["input_warnings"]
    return out


def device_results(result: SessionResult) -> list[DeviceResult]:
    """Per-sensor results: ``devices`` of a multi-sensor result, else the one result (named
    ``""`` when it carries no name)."""
    devs = result.get("devices")
    if devs:
        return devs
    # A one-sensor result has no ``devices`` or ``asymmetry``: it is a device result.
    return [cast(DeviceResult, {**result, "name": result.get("name", "")})]
