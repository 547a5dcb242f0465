"""IMU error models for the motion generator: what a real MPU-6050 or ICM-42688-P adds to the truth.

Order of the chain (as on the chip): true specific force / angular rate at the internal rate ->
scale-factor and cross-axis errors -> on-chip low-pass (DLPF) -> decimation to the ODR ->
bias (per-session constant + random walk) and white noise -> 16-bit quantisation at the configured
full scale with saturation -> back to SI. Numbers: algorithms.md section 10.4 and the datasheets
(MPU-6000/6050 Product Specification rev 3.4 section 6.1-6.2 and register 26 DLPF_CFG table;
ICM-42688-P datasheet DS-000347 section 3.1-3.2 and the UI filter block).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

GRAVITY_MPS2 = 9.80665
DEG_TO_RAD = math.pi / 180.0
FULL_SCALE_COUNTS = 32768  # int16 output registers / FIFO words


@dataclass(frozen=True)
class ImuModel:
    name: str
    accel_noise_ug_per_rthz: float  # white-noise density
    gyro_noise_mdps_per_rthz: float
    accel_bias_mg: float  # max |zero-g offset| per axis, uniform +-
    gyro_bias_dps: float  # max |zero-rate offset| per axis (after a rough calibration)
    accel_bias_walk_mg_per_rts: float  # bias random walk
    gyro_bias_walk_dps_per_rts: float
    scale_error: float  # max |scale-factor error| (fraction)
    cross_axis: float  # max |cross-axis sensitivity| (fraction)
    dlpf_choices_hz: tuple[float, ...]  # selectable on-chip low-pass bandwidths
    dlpf_fraction_of_odr: float  # 0 = pick the widest choice below Nyquist


IMU_MODELS: dict[str, ImuModel] = {
    # MPU-6050: 400 ug/rtHz, 0.005 dps/rtHz; zero-g +-50 mg (X/Y) / +-80 mg (Z); ZRO +-20 dps
    # uncalibrated (we use +-3 dps: boards are usually bias-trimmed at start-up); DLPF_CFG table.
    "mpu6050": ImuModel(
        "mpu6050",
        400.0,
        5.0,
        50.0,
        3.0,
        0.1,
        0.01,
        0.02,
        0.02,
        (260.0, 184.0, 94.0, 44.0, 21.0, 10.0, 5.0),
        0.0,
    ),
    # ICM-42688-P: 70 ug/rtHz, 2.8 mdps/rtHz; offsets +-20 mg, +-0.5 dps; UI filter at ODR/4.
    "icm42688": ImuModel("icm42688", 70.0, 2.8, 20.0, 0.5, 0.02, 0.002, 0.005, 0.01, (), 0.25),
}


def dlpf_cutoff_hz(model: ImuModel, odr_hz: float) -> float:
    """The on-chip low-pass bandwidth used at ``odr_hz`` (recommended config: about ODR/2 or less)."""
    if model.dlpf_fraction_of_odr > 0:
        return model.dlpf_fraction_of_odr * odr_hz
    below = [f for f in model.dlpf_choices_hz if f <= 0.5 * odr_hz]
    return max(below) if below else min(model.dlpf_choices_hz)


def _lowpass(x: np.ndarray, cutoff_hz: float, fs_hz: float) -> np.ndarray:
    """Second-order Butterworth, causal like the chip, started in steady state (no start-up step)."""
    cutoff_hz = min(cutoff_hz, 0.45 * fs_hz)
    sos = signal.butter(2, cutoff_hz, fs=fs_hz, output="sos")
    zi = signal.sosfilt_zi(sos)
    out = np.empty_like(x)
    for ax in range(x.shape[1]):
        out[:, ax], _ = signal.sosfilt(sos, x[:, ax], zi=zi * x[0, ax])
    return out


def _error_matrix(rng: np.random.Generator, scale: float, cross: float) -> np.ndarray:
    m = np.eye(3) + np.diag(rng.uniform(-scale, scale, 3))
    off = rng.uniform(-cross, cross, (3, 3))
    np.fill_diagonal(off, 0.0)
    return m + off


def _quantise(x: np.ndarray, lsb: float) -> np.ndarray:
    counts = np.clip(np.rint(x / lsb), -FULL_SCALE_COUNTS, FULL_SCALE_COUNTS - 1)
    return counts * lsb


@dataclass(frozen=True)
class ImuSettings:
    odr_hz: float
    accel_range_g: float = 8.0
    gyro_range_dps: float = 1000.0


def apply_imu(
    accel_mps2: np.ndarray,
    gyro_radps: np.ndarray,
    fs_internal_hz: float,
    decimation: int,
    model: ImuModel,
    settings: ImuSettings,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Turn true sensor-frame signals at the internal rate into what the chip reports at the ODR."""
    odr = settings.odr_hz
    cutoff = dlpf_cutoff_hz(model, odr)
    # einsum, not @: a BLAS call per (N,3)x(3,3) product is slow when its threads compete.
    acc = np.einsum(
        "ij,nj->ni", _error_matrix(rng, model.scale_error, model.cross_axis), accel_mps2
    )
    gyr = np.einsum(
        "ij,nj->ni", _error_matrix(rng, model.scale_error, model.cross_axis), gyro_radps
    )
    acc = _lowpass(acc, cutoff, fs_internal_hz)[::decimation]
    gyr = _lowpass(gyr, cutoff, fs_internal_hz)[::decimation]
    n = acc.shape[0]
    dt = 1.0 / odr
    # Noise bandwidth: the DLPF's (ENBW of a 2nd-order Butterworth ~1.11 fc) or Nyquist.
    bw_hz = min(0.5 * odr, 1.11 * cutoff)
    acc_sigma = model.accel_noise_ug_per_rthz * 1e-6 * GRAVITY_MPS2 * math.sqrt(bw_hz)
    gyr_sigma = model.gyro_noise_mdps_per_rthz * 1e-3 * DEG_TO_RAD * math.sqrt(bw_hz)
    acc_bias = rng.uniform(-1, 1, 3) * model.accel_bias_mg * 1e-3 * GRAVITY_MPS2
    gyr_bias = rng.uniform(-1, 1, 3) * model.gyro_bias_dps * DEG_TO_RAD
    acc_walk = np.cumsum(
        rng.normal(
            0, model.accel_bias_walk_mg_per_rts * 1e-3 * GRAVITY_MPS2 * math.sqrt(dt), (n, 3)
        ),
        axis=0,
    )
    gyr_walk = np.cumsum(
        rng.normal(0, model.gyro_bias_walk_dps_per_rts * DEG_TO_RAD * math.sqrt(dt), (n, 3)), axis=0
    )
    acc = acc + acc_bias + acc_walk + rng.normal(0, acc_sigma, (n, 3))
    gyr = gyr + gyr_bias + gyr_walk + rng.normal(0, gyr_sigma, (n, 3))
    acc = _quantise(acc, settings.accel_range_g * GRAVITY_MPS2 / FULL_SCALE_COUNTS)
    gyr = _quantise(gyr, settings.gyro_range_dps * DEG_TO_RAD / FULL_SCALE_COUNTS)
    return acc, gyr
