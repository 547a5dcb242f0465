"""Gravity direction and vertical linear acceleration from accelerometer + gyroscope.

Orientation comes from x-io's Fusion AHRS (``imufusion``, the only importer of it in the
package). Fusion is sequential, so it runs on short groups of samples (about 50 Hz): each
group's mean angular rate integrates exactly like the individual samples to first order, and
the gravity direction inside a group is interpolated between group ends. That keeps the
Python work per second of data small while every sample still gets its own estimate.
"""

from __future__ import annotations

import imufusion
import numpy as np

STANDARD_GRAVITY_MPS2 = 9.80665
FUSION_RATE_HZ = 50.0
FUSION_GAIN = 0.5
# Ignore the accelerometer while it disagrees with the estimate by more than this: lifts
# accelerate at a good fraction of g, which would otherwise tilt the estimated vertical.
ACCEL_REJECTION_DEG = 10.0
REJECTION_TIMEOUT_S = 5.0
GYRO_RANGE_DPS = 2000.0
# A group counts as still (for gyro bias and gravity magnitude) below these.
STILL_GYRO_RADPS = 0.05
STILL_ACCEL_SPREAD_MPS2 = 0.25  # max-min of |a| within a group (noise, tremor below this)
BIAS_SMOOTHING = 0.05  # weight of one still block in the running gyro-offset estimate
GRAVITY_FOLLOW = 0.5  # weight of one still chunk in the still-magnitude estimate
LEARN_CHUNK_GROUPS = 25  # offsets are learnt from chunks of this many fusion groups (0.5 s)
REST_CHUNKS = 4  # a rest that teaches the offsets lasts this many chunks (2 s)
STILL_TURN_MAX_DEG = 0.5  # gravity may move this much across that rest
REST_RATE_SPREAD_RADPS = 0.01  # the chunks' mean rates agree to this


class GravityTracker:
    """Streams (accel, gyro) blocks whose length is a multiple of ``group``; returns per sample
    the unit gravity direction in the sensor frame ("up" as the accelerometer sees it)."""

    def __init__(self, sample_rate_hz: float) -> None:
        self.group = max(1, int(round(sample_rate_hz / FUSION_RATE_HZ)))
        fusion_rate_hz = sample_rate_hz / self.group
        settings = imufusion.AhrsSettings()
        settings.gain = FUSION_GAIN
        settings.gyroscope_range = GYRO_RANGE_DPS
        settings.acceleration_rejection = ACCEL_REJECTION_DEG
        settings.magnetic_rejection = 0.0
        settings.rejection_timeout = float(int(REJECTION_TIMEOUT_S * fusion_rate_hz))
        settings.sample_rate = float(fusion_rate_hz)
        self._ahrs = imufusion.Ahrs()
        self._ahrs.set_settings(settings)
        self.gyro_bias_radps = np.zeros(3)
        self.gravity_mps2 = STANDARD_GRAVITY_MPS2
        self._prev_up: np.ndarray | None = None
        self._bias_known = False
        self._chunk_acc: list[np.ndarray] = []
        self._chunk_gyr: list[np.ndarray] = []
        self._chunk_fill = 0
        self._rest: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def update(
        self, accel_mps2: np.ndarray, gyro_radps: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Returns (unit gravity direction per sample, gyro minus the offset in effect per sample)."""
        n = accel_mps2.shape[0]
        g = self.group
        assert n % g == 0, "blocks must hold whole fusion groups"
        m = n // g
        acc_groups = accel_mps2.reshape(m, g, 3).mean(axis=1)
        gyr_groups = gyro_radps.reshape(m, g, 3).mean(axis=1)
        acc_s = accel_mps2.reshape(m, g, 3)
        gyr_s = gyro_radps.reshape(m, g, 3)
        ahrs = self._ahrs
        up_groups = np.empty((m, 3))
        bias_groups = np.empty((m, 3))
        k = 0
        while k < m:
            # Offsets are learnt per fixed chunk of groups, counted from the first sample, and
            # apply from the next chunk on: causal, and the same whatever the block sizes.
            take = min(m - k, LEARN_CHUNK_GROUPS - self._chunk_fill)
            bias_groups[k : k + take] = self.gyro_bias_radps
            gyr_dps = np.degrees(gyr_groups[k : k + take] - self.gyro_bias_radps)
            acc_g = acc_groups[k : k + take] / self.gravity_mps2
            for j in range(take):  # one C call per group (~50 Hz), not per sample
                ahrs.update_no_magnetometer(gyr_dps[j], acc_g[j])
                up_groups[k + j] = ahrs.get_gravity()
            self._chunk_acc.append(acc_s[k : k + take])
            self._chunk_gyr.append(gyr_s[k : k + take])
            self._chunk_fill += take
            k += take
            if self._chunk_fill == LEARN_CHUNK_GROUPS:
                chunk_acc = np.concatenate(self._chunk_acc)
                self._learn_still(
                    chunk_acc.mean(axis=1), chunk_acc, np.concatenate(self._chunk_gyr)
                )
                self._chunk_acc, self._chunk_gyr, self._chunk_fill = [], [], 0
        prev = up_groups[0] if self._prev_up is None else self._prev_up
        self._prev_up = up_groups[-1].copy()
        # Sample j of group k lies between the estimates after groups k-1 and k.
        before = np.vstack((prev[None, :], up_groups[:-1]))
        w = ((np.arange(g) + 1.0) / g)[None, :, None]
        up = (1.0 - w) * before[:, None, :] + w * up_groups[:, None, :]
        up = up.reshape(n, 3)
        up /= np.linalg.norm(up, axis=1, keepdims=True) + 1e-12
        gyro_corr = gyro_radps - np.repeat(bias_groups, g, axis=0)
        return up, gyro_corr

    def _learn_still(self, acc_groups: np.ndarray, acc: np.ndarray, gyro: np.ndarray) -> None:
        """Gyro offset and the still accelerometer magnitude from a rest: REST_CHUNKS chunks in a
        row whose groups read a steady angular rate and a steady acceleration magnitude, and
        across which gravity's direction stays within STILL_TURN_MAX_DEG. A limb turning slowly
        also reads a steady rate; only gravity standing still while the gyro reads that rate
        proves it is an offset (0.02 rad/s turns gravity by 2.3 degrees in 2 s)."""
        gyr_mean = gyro.mean(axis=1)
        tol = STILL_GYRO_RADPS if self._bias_known else 3 * STILL_GYRO_RADPS
        if not (np.linalg.norm(gyr_mean - self.gyro_bias_radps, axis=1) < tol).all():
            self._rest = []  # turning: no rest (the cheap test first, most chunks end here)
            return
        spread = np.abs(gyro - gyr_mean[:, None, :]).max(axis=(1, 2))
        norms = np.linalg.norm(acc, axis=2)
        acc_spread = norms.max(axis=1) - norms.min(axis=1)
        still = (spread < 4 * STILL_GYRO_RADPS) & (acc_spread < STILL_ACCEL_SPREAD_MPS2)
        if not still.all():
            self._rest = []
            return
        self._rest.append(
            (acc_groups.mean(axis=0), gyr_mean.mean(axis=0), acc_groups[0], acc_groups[-1])
        )
        if len(self._rest) < REST_CHUNKS:
            return
        rest, self._rest = self._rest, []
        first, last = rest[0][2], rest[-1][3]
        cos = float(first @ last) / (float(np.linalg.norm(first) * np.linalg.norm(last)) + 1e-12)
        rates = np.array([r[1] for r in rest])
        if (
            np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))) > STILL_TURN_MAX_DEG
            or float(np.ptp(rates, axis=0).max()) > REST_RATE_SPREAD_RADPS
        ):
            return
        alpha = BIAS_SMOOTHING if self._bias_known else 1.0
        self.gyro_bias_radps = (1 - alpha) * self.gyro_bias_radps + alpha * rates.mean(axis=0)
        # The magnitude a still accelerometer reads depends on posture (offsets and scale errors
        # project differently), so it follows the current still posture quickly.
        beta = GRAVITY_FOLLOW if self._bias_known else 1.0
        self.gravity_mps2 = (1 - beta) * self.gravity_mps2 + beta * float(
            np.mean([np.linalg.norm(r[0]) for r in rest])
        )
        self._bias_known = True
