"""Per-rep kinematics: the velocity of one rep found by ``cycles``, and how well it was measured.

Inside a rep's bounds (rest, turn, rest) the vertical earth-frame acceleration is integrated and
the residual drift is removed linearly between the zero-velocity instants: both ends and the
turn-arounds of a rotating limb (zero-velocity update). A constant accelerometer offset or tilt
leak therefore cancels per rep. The concentric phase is the run of velocity in the lifting
direction around its peak (up, unless the exercise lifts the load by pulling the limb down).

Each rep carries a quality figure in [0, 1], the lowest of four:
- drift: the velocity the raw integral still had at the rep's end (offsets, tilt leaks, a bound
  cut mid-motion), against the rep's peak speed;
- ends: how still a turning limb was at the rep's bounds (its angular rate there against its
  peak; a bound found mid-motion shows up here);
- travel: vertical range against ``QUALITY_ROM_M`` (a hand fixed to a handle barely moves
  vertically, so its speed says little about the load's);
- verticality: the vertical share of the linear acceleration's RMS, 0 at 0.3 or less, 1 at 0.7 or
  more (rows and flies move mostly sideways).
Velocity-loss alerts use only reps of quality ``MIN_QUALITY`` or better.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

from tremorlift.analysis.dsp import principal_axis

# Stillness: the sum of these three ratios (low-passed linear acceleration, its jerk and the
# angular rate, each over its scale) stays below one.
STILL_ACCEL_MPS2 = 0.3
STILL_JERK_MPS3 = 1.0
STILL_GYRO_RADPS = 0.3
# The fast stillness test: a 0.08 s mean of vertical acceleration and angular rate (its first
# null near 12 Hz suppresses tremor and strap wobble) below these. A rep that paused at rest ends
# where the limb became still, without waiting for the next rep.
FAST_STILL_WINDOW_S = 0.08
FAST_STILL_ACCEL_MPS2 = 0.35
FAST_STILL_GYRO_RADPS = 0.25
FAST_STILL_HOLD_S = 0.03
TURN_MIN_RAD = 0.35  # rotation range above which turn-arounds serve as zero-velocity instants
EDGE_FRACTION = 0.05  # phase edges: where |v| exceeds this share of the peak
# For a minimum-jerk phase, the part above 5 % of the peak speed lasts 88.1 % of the phase and
# covers 99.6 % of its distance (v ~ 30 tau^2 (1 - tau)^2, crossing at tau = 0.0595).
EDGE_DURATION_SHARE = 0.881
EDGE_DISPLACEMENT_SHARE = 0.996
MIN_QUALITY = 0.5
QUALITY_ROM_M = 0.05
QUALITY_TURNING_RADPS = 0.3  # below this peak angular rate the limb is not turning
# Exercises that lift the load by moving the sensor down (the limb pulls a handle down).
CONCENTRIC_DOWN = ("lat-pulldown", "pulldown", "pull-down", "pushdown", "triceps-pushdown")


@dataclass
class Rep:
    start_s: float
    end_s: float
    concentric_start_s: float
    concentric_end_s: float
    mean_concentric_velocity_mps: float
    peak_velocity_mps: float
    rom_m: float
    concentric_s: float
    eccentric_s: float
    time_under_tension_s: float
    quality: float  # 0-1, see the module docstring

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


def concentric_sign(exercise: str | None) -> float:
    """+1 when the concentric phase raises the sensor, -1 when it lowers it."""
    return -1.0 if exercise is not None and exercise.lower() in CONCENTRIC_DOWN else 1.0


def _turnarounds(gyro: np.ndarray, dt: float) -> np.ndarray:
    """Sample indices where a limb that rotates with the lift reverses: extremes of its angle
    about the main rotation axis. There the velocity is zero too, which pins down errors that
    change with the limb angle (accelerometer offsets seen from a rotating sensor)."""
    if gyro.shape[0] < 3:
        return np.zeros(0, dtype=np.int64)
    angle = np.cumsum(gyro @ principal_axis(gyro)) * dt
    if float(angle.max() - angle.min()) < TURN_MIN_RAD:
        return np.zeros(0, dtype=np.int64)
    prom = max(TURN_MIN_RAD, 0.4 * float(angle.max() - angle.min()))
    hi, _ = find_peaks(angle, prominence=prom)
    lo, _ = find_peaks(-angle, prominence=prom)
    return np.sort(np.concatenate((hi, lo)))


def _zupt_velocity(a: np.ndarray, gyro: np.ndarray, dt: float, detrend: bool) -> np.ndarray:
    """Integrates vertical acceleration over one movement period. With ``detrend`` the residual
    drift is removed piecewise linearly between the zero-velocity instants: both ends, and the
    turn-arounds of a rotating limb."""
    v = np.cumsum(a) * dt
    if not detrend:
        return v
    anchors = np.concatenate(([0], _turnarounds(gyro, dt), [v.size - 1]))
    return v - np.interp(
        np.arange(v.size), anchors, np.concatenate(([0.0], v[anchors[1:-1]], [float(v[-1])]))
    )


def measure_rep(
    t_s: np.ndarray,
    a_vert_mps2: np.ndarray,
    gyro_radps: np.ndarray,
    sign: float = 1.0,
    a_lin_mps2: np.ndarray | None = None,
) -> Rep | None:
    """Kinematics of one rep from the samples between its bounds (rest, turn, rest).

    ``a_vert_mps2``: vertical linear acceleration (up +); ``gyro_radps`` (N, 3) offset-corrected.
    ``sign``: -1 when the concentric phase lowers the sensor. ``a_lin_mps2``: the magnitude of
    the whole linear acceleration, for how vertical the movement was. None only for a bound pair too
    short to integrate; a rep with no measurable lift gets speed 0 and quality 0.
    """
    n = t_s.size
    if n < 5:
        return None
    dt = float(np.median(np.diff(t_s)))
    v_raw = np.cumsum(a_vert_mps2) * dt
    v = sign * _zupt_velocity(a_vert_mps2, gyro_radps, dt, detrend=True)
    z = np.cumsum(v) * dt
    speed_peak = float(np.abs(v).max())
    moving = np.flatnonzero(np.abs(v) > EDGE_FRACTION * max(speed_peak, 1e-9))
    r0, r1 = (int(moving[0]), int(moving[-1])) if moving.size else (0, n - 1)
    start, end = float(t_s[r0]), float(t_s[r1])
    quality = _quality(v_raw, speed_peak, gyro_radps, float(np.ptp(z)), dt)
    if a_lin_mps2 is not None and a_lin_mps2.size == n:
        # Vertical share of the movement: a row or a fly moves mostly sideways, and its vertical
        # speed says little about the load.
        share = float(np.sqrt(np.mean(a_vert_mps2**2) / max(float(np.mean(a_lin_mps2**2)), 1e-9)))
        quality = round(min(quality, max(0.0, min(1.0, (share - 0.3) / 0.4))), 2)
    phase = _concentric(t_s, v, z)
    if phase is None:
        return Rep(
            start, end, start, end, 0.0, 0.0, float(np.ptp(z)), 0.0, end - start, end - start, 0.0
        )
    cs, ce, mean_v, peak, rom = phase
    conc = ce - cs
    return Rep(
        start_s=start,
        end_s=end,
        concentric_start_s=cs,
        concentric_end_s=ce,
        mean_concentric_velocity_mps=mean_v,
        peak_velocity_mps=peak,
        rom_m=rom,
        concentric_s=conc,
        eccentric_s=max(0.0, (end - start) - conc),
        time_under_tension_s=end - start,
        quality=quality,
    )


def _concentric(
    t: np.ndarray, v: np.ndarray, z: np.ndarray
) -> tuple[float, float, float, float, float] | None:
    """(start, end, mean velocity, peak velocity, range) of the lifting phase, or None."""
    z0 = z[0]
    i_top = int(np.argmax(z))
    if (z.max() - z0) < (z0 - z.min()):  # rest at the top (squat, bench): down, then up
        i_bot = int(np.argmin(z))
        i_top = i_bot + int(np.argmax(z[i_bot:]))
    else:  # rest at the bottom (curl, deadlift): up, then down
        i_bot = int(np.argmin(z[: i_top + 1]))
    if i_top <= i_bot:
        return None
    vc = v[i_bot : i_top + 1]
    peak = float(vc.max())
    if peak <= 0.0:
        return None
    # The phase is the run of upward velocity around its peak, measured between the crossings
    # of a fraction of the peak (robust to noise and residual drift near zero), then extended to
    # the whole phase assuming smooth (minimum-jerk-like) starts and stops.
    ip = int(np.argmax(vc))
    low = vc <= EDGE_FRACTION * peak
    before = np.flatnonzero(low[:ip])
    after = np.flatnonzero(low[ip:])
    a0 = int(before[-1]) + 1 if before.size else 0
    a1 = ip + int(after[0]) - 1 if after.size else vc.size - 1
    c0, c1 = i_bot + a0, i_bot + a1
    if c1 <= c0:
        return None
    inner_s = float(t[c1] - t[c0])
    pad = 0.5 * (inner_s / EDGE_DURATION_SHARE - inner_s)
    mean_v = float(z[c1] - z[c0]) / inner_s * EDGE_DURATION_SHARE / EDGE_DISPLACEMENT_SHARE
    return float(t[c0]) - pad, float(t[c1]) + pad, mean_v, peak, float(z[i_top] - z[i_bot])


def _quality(
    v_raw: np.ndarray, speed_peak: float, gyro: np.ndarray, rom_m: float, dt_s: float
) -> float:
    drift = abs(float(v_raw[-1])) / max(2.0 * speed_peak, 0.05)
    q_drift = 1.0 - min(1.0, drift)
    # The limb's own turning: a 0.1 s mean first (strap wobble and tremor at 8-13 Hz rock the
    # sensor at rates as large as a slow rep's).
    k_mean = max(1, min(int(round(0.1 / max(dt_s, 1e-6))), gyro.shape[0]))
    smooth = np.cumsum(np.vstack((np.zeros((1, 3)), gyro)), axis=0)
    rate = np.linalg.norm((smooth[k_mean:] - smooth[:-k_mean]) / k_mean, axis=1)
    peak_rate = float(rate.max())
    q_ends = 1.0
    if peak_rate >= QUALITY_TURNING_RADPS:
        k = max(1, rate.size // 20)
        ends = 0.5 * (float(rate[:k].mean()) + float(rate[-k:].mean()))
        q_ends = 1.0 - min(1.0, 2.0 * ends / peak_rate)
    q_travel = min(1.0, rom_m / QUALITY_ROM_M)
    return round(min(q_drift, q_ends, q_travel), 2)
