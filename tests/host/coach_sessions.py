"""Session files for the coach-feature tests: motion-generator recordings encoded as the
firmware would send them (INFO + SAMPLES frames) and stored with SessionWriter."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from tremorlift import protocol as p
from tremorlift.store.final import store_final
from tremorlift.store.session import SessionWriter
from tremorlift.twin.motion.generator import Scenario, generate

RATE_HZ = 200
ACCEL_LSB_PER_G = 4096  # +-8 g
GYRO_LSB_PER_DPS_X10 = 328  # +-1000 dps
SAMPLES_PER_FRAME = 19


def info(name: str) -> p.DeviceInfo:
    return p.DeviceInfo(
        (1, 0, 0), p.IMU_ICM42688P, p.BOARD_EMULATED, RATE_HZ, 8, 1000, 80,
        ACCEL_LSB_PER_G, GYRO_LSB_PER_DPS_X10, SAMPLES_PER_FRAME, 512, 0x1234, 247, name,
    )  # fmt: skip


@lru_cache(maxsize=8)
def scenario(name: str, seed: int = 1) -> Scenario:
    return generate(name, seed, sample_rate_hz=RATE_HZ, short=True, keep_kinematics=False)


def to_raw(accel_mps2: np.ndarray, gyro_radps: np.ndarray) -> np.ndarray:
    a = np.round(accel_mps2 / p.STANDARD_GRAVITY_MPS2 * ACCEL_LSB_PER_G)
    g = np.round(np.rad2deg(gyro_radps) * GYRO_LSB_PER_DPS_X10 / 10.0)
    return np.clip(np.hstack((a, g)), -32768, 32767).astype(np.int16)


def write_session(
    path: Path,
    scenario_name: str,
    *,
    seed: int = 1,
    analysis: str | dict[str, Any] | None = "engine",
    drop_frames: tuple[int, ...] = (),
    exercise: str | None = None,
    created_unix_s: float | None = None,
    extra: Callable[[SessionWriter, list[int]], None] | None = None,
) -> Path:
    """A session of the scenario's every sensor. ``analysis``: "engine" stores the engine's
    result per device as the collector's live result (the session is then finalised by the
    first command that reads it), a dict is stored as the session's final analysis, None stores
    none.
    ``drop_frames``: frame numbers lost on the radio (never resent). ``extra(writer, device_ids)``
    adds more rows before the file is closed."""
    sc = scenario(scenario_name, seed)
    meta = {"exercise": exercise} if exercise else {}
    if created_unix_s is not None:
        import datetime as dt

        when = dt.datetime.fromtimestamp(created_unix_s, dt.UTC)
        meta |= {
            "created_unix_s": repr(created_unix_s),
            "created_utc": when.isoformat(timespec="milliseconds"),
        }
    with SessionWriter(path, background=False, meta=meta) as w:
        ids: list[int] = []
        for k, dev in enumerate(sc.devices):
            d = w.add_device(f"AA:BB:CC:DD:EE:{k:02X}", name=dev.name, placement=dev.placement)
            ids.append(d)
            w.add_info(d, p.encode_info(info(f"TL-{k}")), host_s=0.0)
            raw = to_raw(dev.accel_mps2, dev.gyro_radps)
            n = raw.shape[0] // SAMPLES_PER_FRAME * SAMPLES_PER_FRAME
            for f, first in enumerate(range(0, n, SAMPLES_PER_FRAME)):
                if f in drop_frames:
                    continue
                rows = raw[first : first + SAMPLES_PER_FRAME]
                tick = int(round(1e6 * first / RATE_HZ)) & 0xFFFFFFFF
                flags = p.FLAG_STREAM_START if f == 0 else 0
                frame = p.encode_samples(flags, f, first, tick, rows)
                w.add_frame(d, frame, host_s=0.5 + (first + SAMPLES_PER_FRAME - 1) / RATE_HZ + 0.01)
            if analysis == "engine":
                from tremorlift.analysis import Engine, run_engine

                ex = exercise or (dev.truth["sets"][0]["exercise"] if dev.truth["sets"] else None)
                eng = Engine(float(RATE_HZ), exercise=ex, placement=dev.placement)
                t = 0.5 + np.arange(raw.shape[0]) / RATE_HZ
                acc = raw[:, :3] * (p.STANDARD_GRAVITY_MPS2 / ACCEL_LSB_PER_G)
                gyr = np.deg2rad(raw[:, 3:] / (GYRO_LSB_PER_DPS_X10 / 10.0))
                w.add_analysis("live", run_engine(eng, t, acc, gyr, RATE_HZ), device=d)
        if isinstance(analysis, dict):
            store_final(w, analysis, "test")
        if extra is not None:
            extra(w, ids)
    return path
