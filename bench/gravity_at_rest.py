"""How far the gravity tracker's "up" is from the accelerometer's own direction while the sensor
truly rests, on the shared real gym recordings (Apple Watch, left wrist, 100 Hz; CC BY-SA 4.0).

A rest is a stretch of at least 0.5 s with |gyro| < 0.05 rad/s and |a| within 0.3 m/s^2 of its
median: there the accelerometer reads gravity alone, so its direction is the truth. Prints the
share of rests (judged at their last second) whose estimate is more than 5 degrees off.

Usage: bench/gravity_at_rest.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))
sys.path.insert(0, str(ROOT / "bench"))

from real_sets import load_gym_sets  # noqa: E402
from tremorlift.analysis.dsp import runs  # noqa: E402
from tremorlift.analysis.orientation import GravityTracker  # noqa: E402

REST_GYRO_RADPS = 0.05
REST_ACCEL_MPS2 = 0.3
REST_MIN_S = 0.5
OFF_DEG = 5.0


def rest_errors_deg(t: np.ndarray, acc: np.ndarray, gyr: np.ndarray) -> list[float]:
    fs = float(1.0 / np.median(np.diff(t)))
    tracker = GravityTracker(fs)
    n = (t.size // tracker.group) * tracker.group
    up, _ = tracker.update(acc[:n], gyr[:n])
    mag = np.linalg.norm(acc[:n], axis=1)
    rest = (np.linalg.norm(gyr[:n], axis=1) < REST_GYRO_RADPS) & (
        np.abs(mag - np.median(mag)) < REST_ACCEL_MPS2
    )
    out = []
    starts, stops, vals = runs(rest)
    for a, b, v in zip(starts.tolist(), stops.tolist(), vals.tolist(), strict=True):
        if not v or b - a < REST_MIN_S * fs:
            continue
        k = slice(max(a, b - int(fs)), b)
        truth = acc[:n][k].mean(axis=0)
        est = up[k].mean(axis=0)
        cos = float(truth @ est) / (np.linalg.norm(truth) * np.linalg.norm(est) + 1e-12)
        out.append(float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))))
    return out


def main() -> int:
    errs: list[float] = []
    for rs in load_gym_sets():
        errs += rest_errors_deg(rs.t_s, rs.accel_mps2, rs.gyro_radps)
    e = np.array(errs)
    print(
        f"gravity at rest (real wrist recordings): {e.size} rests, "
        f"{100 * np.mean(e > OFF_DEG):.1f} % more than {OFF_DEG:.0f} deg off, "
        f"median {np.median(e):.2f} deg, 95th percentile {np.percentile(e, 95):.1f} deg"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
