"""A session's analysis as the coach features use it: its final analysis (``store.final``), or
for a session without samples what the collector stored live; plus figures that need the
samples themselves (tremor over time, samples lost).

Shared by ``report``, ``history`` and ``export``; no plotting here (matplotlib stays in figures.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from tremorlift.analysis.combine import combine_devices
from tremorlift.analysis.contract import Alert, AsymmetryRow, DeviceResult, SessionResult
from tremorlift.errors import UserError
from tremorlift.store.reader import DeviceArrays, Record, SessionReader

# Tremor over time, computed from the samples for plots: 2 s Hann windows every 0.5 s give
# 0.5 Hz resolution, enough to tell 4-6 Hz rest tremor from 8-12 Hz physiological tremor.
SERIES_WINDOW_S = 2.0
SERIES_HOP_S = 0.5
# Peak frequency is only meaningful where there is something to measure: below this band RMS
# the "peak" is the noise floor's.
SERIES_PEAK_MIN_RMS_MPS2 = 0.03


@dataclass(frozen=True)
class TremorSeries:
    """Band-limited shaking of one sensor, one value per window (window centres in t_s)."""

    t_s: npt.NDArray[np.float64]
    rms_mps2: npt.NDArray[np.float64]  # RMS acceleration within the tremor band
    peak_hz: npt.NDArray[np.float64]  # frequency of the strongest component (NaN where quiet)
    band_hz: tuple[float, float]


def _is_engine_result(data: dict[str, Any]) -> bool:
    return isinstance(data.get("sets"), list) and isinstance(data.get("alerts"), list)


def _device_name(reader: SessionReader, device: int | None) -> str:
    for d in reader.devices():
        if d.device == device:
            return d.name or (d.info.name if d.info else None) or d.address
    return "session"


def stored_analysis(reader: SessionReader) -> SessionResult | None:
    """The analysis the collector stored, combined over sensors; None if there is none.

    A combined result the collector stored (device None, with ``devices``) is taken as it is.
    Otherwise, per device, the latest ``session`` record wins, failing that the latest record of
    any kind that has the engine's shape (a per-set record holds the state up to that set); the
    per-device results are then combined by ``analysis.combine_devices``, with the left/right
    comparison the collector stored beside them when there is one.
    """
    best: dict[int | None, Record] = {}
    asymmetry: Record | None = None
    for rec in reader.analyses():
        if rec.kind == "asymmetry" and isinstance(rec.data.get("rows"), list):
            asymmetry = rec  # the collector's left/right comparison, stored beside the results
            continue
        if not _is_engine_result(rec.data):
            continue
        cur = best.get(rec.device)
        if cur is None or rec.kind == "session" or cur.kind != "session":
            best[rec.device] = rec
    if not best:
        return None
    if None in best and "devices" in best[None].data:
        return cast(SessionResult, dict(best[None].data))  # already combined by the collector
    placements = {d.device: d.placement for d in reader.devices()}
    results: list[DeviceResult] = []
    for device in sorted(best, key=lambda d: -1 if d is None else d):
        r = dict(best[device].data)
        r.setdefault("name", _device_name(reader, device))
        if r.get("placement") is None:
            r["placement"] = placements.get(device) if device is not None else None
        results.append(cast(DeviceResult, r))  # stored as the engine's result, as JSON
    stored: tuple[list[AsymmetryRow], list[Alert]] | None = None
    if asymmetry is not None and len(results) >= 2:
        stored = (asymmetry.data["rows"], list(asymmetry.data.get("alerts") or []))
    return combine_devices(results, asymmetry=stored)


def usable_arrays(reader: SessionReader) -> list[tuple[DeviceArrays, str | None]]:
    """Each device's samples with its placement (devices without samples left out)."""
    out = []
    for dev in reader.devices():
        arr = reader.arrays(dev.device)
        if len(arr) >= 2:
            out.append((arr, dev.placement))
    return out


def session_analysis(reader: SessionReader) -> SessionResult:
    """The session's final analysis (``store.final``): the one stored when the session ended,
    or computed now from its samples and stored (a session the collector could not finalise).
    A session without samples falls back on what the collector stored live."""
    from tremorlift.store.final import finalise_file

    if reader.frame_count() > 0:
        return cast(SessionResult, finalise_file(reader.path))
    stored = stored_analysis(reader)
    if stored is None:
        raise UserError(f"{reader.path}: the session holds no samples and no stored analysis")
    return stored


def recorded_samples_lost(reader: SessionReader, device: int) -> int | None:
    """The collector's own count of a device's lost samples (its last stats row), if stored.
    It also knows of losses after the last frame that arrived, which the index cannot show."""
    figure = None
    for rec in reader.stats():
        if rec.device == device and isinstance(rec.data.get("samples_lost"), int):
            figure = int(rec.data["samples_lost"])
    return figure


def samples_lost(arr: DeviceArrays) -> int:
    """Samples missing from the recording: holes in the sample index within each stream
    segment (radio losses not filled by a resend, and device FIFO overflows, which the firmware
    counts into the index)."""
    lost = 0
    for s in np.unique(arr.segment):
        idx = arr.sample_index[arr.segment == s]
        if idx.size:
            lost += int(idx.max() - idx.min() + 1 - np.unique(idx).size)
    return lost


def tremor_series(
    t_s: npt.NDArray[np.float64], accel_mps2: npt.NDArray[np.float64], sample_rate_hz: float
) -> TremorSeries:
    """Tremor-band RMS and peak frequency over time from the accelerometer (all three axes).

    Each window is detrended (removing gravity and slow movement), Hann-weighted and
    transformed; the band's power is summed over axes, so the value does not depend on how the
    sensor is turned.
    """
    from tremorlift.analysis.tremor import TREMOR_BAND_HZ

    band = (float(TREMOR_BAND_HZ[0]), float(TREMOR_BAND_HZ[1]))
    n_win = int(round(SERIES_WINDOW_S * sample_rate_hz))
    hop = max(1, int(round(SERIES_HOP_S * sample_rate_hz)))
    empty = np.empty(0)
    if t_s.size < n_win:
        return TremorSeries(empty, empty, empty, band)
    starts = np.arange(0, t_s.size - n_win + 1, hop)
    idx = starts[:, None] + np.arange(n_win)[None, :]
    seg = accel_mps2[idx]  # (W, n, 3)
    # Linear detrend per window and axis (least squares against a centred ramp).
    ramp = np.arange(n_win) - (n_win - 1) / 2.0
    seg = seg - seg.mean(axis=1, keepdims=True)
    slope = np.einsum("wna,n->wa", seg, ramp) / float(ramp @ ramp)
    seg = seg - slope[:, None, :] * ramp[None, :, None]
    w = np.hanning(n_win)
    spec = np.fft.rfft(seg * w[None, :, None], axis=1)
    psd = (np.abs(spec) ** 2).sum(axis=2) * (2.0 / (sample_rate_hz * float(w @ w)))  # (W, F)
    f = np.fft.rfftfreq(n_win, 1.0 / sample_rate_hz)
    m = (f >= band[0]) & (f <= band[1])
    df = float(f[1] - f[0])
    rms = np.sqrt(psd[:, m].sum(axis=1) * df)
    peak = f[m][np.argmax(psd[:, m], axis=1)].astype(float)
    peak[rms < SERIES_PEAK_MIN_RMS_MPS2] = np.nan
    centres = t_s[starts + n_win // 2]
    return TremorSeries(centres.astype(float), rms, peak, band)
