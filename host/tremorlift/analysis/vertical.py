"""Vertical acceleration and stillness, per sample, for finding and measuring reps.

From the accelerometer, the bias-corrected gyroscope and the gravity direction
(``orientation.GravityTracker``): the vertical linear acceleration (the accelerometer along
"up", less what a still accelerometer reads in this posture), the magnitude of the linear
acceleration, and a fast stillness flag (a rep that pauses at rest ends where the limb became
still). Filter states, the current quiet stretch and the offset fit carry across blocks.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from tremorlift.analysis.dsp import StreamingBoxcar, StreamingSos, run_lengths, runs
from tremorlift.analysis.orientation import STANDARD_GRAVITY_MPS2
from tremorlift.analysis.reps import (
    FAST_STILL_ACCEL_MPS2,
    FAST_STILL_GYRO_RADPS,
    FAST_STILL_HOLD_S,
    FAST_STILL_WINDOW_S,
    STILL_GYRO_RADPS,
    STILL_JERK_MPS3,
)

# The quiet test (jerk and rotation) looks at motion below this: tremor and strap wobble above it
# would keep a resting limb from ever looking quiet.
STILL_LOWPASS_HZ = 2.0
# A quiet stretch gives the still magnitude once it has lasted this long (the first half of
# it left out: the limb is still settling).
GRAVITY_QUIET_S = 0.2
OFFSET_FORGET = 0.98  # weight of older postures in the accelerometer-offset fit
OFFSET_RIDGE = 0.5  # pulls unobserved offset directions to zero
OFFSET_MAX_MPS2 = 1.5  # a larger fitted offset is not a real accelerometer's (clipped)


class VerticalMotion:
    """Streams (accel, gyro, up) blocks; ``update`` returns per sample the vertical linear
    acceleration (m/s^2), the fast stillness flag and the linear acceleration's magnitude."""

    def __init__(self, sample_rate_hz: float) -> None:
        self.fs = float(sample_rate_hz)
        lp = signal.butter(2, STILL_LOWPASS_HZ, btype="lowpass", fs=self.fs, output="sos")
        self._lp = StreamingSos(lp, 6)
        # At low rates the still test keeps at least 3 samples of mean and 2 of hold (one calm
        # sample can be the instant a moving limb's acceleration crosses zero).
        self._box = StreamingBoxcar(max(3, int(round(FAST_STILL_WINDOW_S * self.fs))), 4)
        self._quiet_hold_n = max(2, int(round(FAST_STILL_HOLD_S * self.fs)))
        self._quiet_run = 0
        self._prev_lp: np.ndarray | None = None
        self._g0 = STANDARD_GRAVITY_MPS2
        self._quiet_len = 0
        self._quiet_sum = 0.0
        self._quiet_up = np.zeros(3)
        self._quiet_cnt = 0
        self._u0 = np.array([0.0, 0.0, 1.0])
        self._acc_offset = np.zeros(3)
        self._fit_xx = np.zeros((4, 4))
        self._fit_xy = np.zeros(4)

    def update(
        self, acc: np.ndarray, gyr_c: np.ndarray, up: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 3) accelerometer (m/s^2), bias-corrected gyroscope (rad/s) and unit "up" ->
        vertical linear acceleration, still flag, |linear acceleration|."""
        lp = self._lp(np.hstack((acc, gyr_c)))
        # Still = little jerk, little rotation and the still magnitude of gravity: a smooth lift
        # always has jerk or acceleration (acceleration peaks where jerk crosses zero), while a
        # slow phase near constant speed would pass an acceleration-only test.
        prev = self._prev_lp if self._prev_lp is not None else lp[0, 0:3]
        jerk = np.diff(np.vstack((prev[None, :], lp[:, 0:3])), axis=0) * self.fs
        self._prev_lp = lp[-1, 0:3].copy()
        quiet = (
            np.linalg.norm(jerk, axis=1) / STILL_JERK_MPS3
            + np.linalg.norm(lp[:, 3:6], axis=1) / STILL_GYRO_RADPS
        )
        a_norm = np.linalg.norm(lp[:, 0:3], axis=1)
        g0 = self._gravity_reference(quiet < 0.5, a_norm, up)
        a_vert = np.einsum("ij,ij->i", acc, up) - g0
        box = self._box(np.column_stack((a_vert, gyr_c)))
        calm = (np.abs(box[:, 0]) < FAST_STILL_ACCEL_MPS2) & (
            np.linalg.norm(box[:, 1:4], axis=1) < FAST_STILL_GYRO_RADPS
        )
        # Calm for FAST_STILL_HOLD_S in a row (carried across blocks).
        run, self._quiet_run = run_lengths(calm, self._quiet_run)
        fast_quiet = run >= self._quiet_hold_n
        a_lin = np.linalg.norm(acc - up * g0[:, None], axis=1)
        return a_vert, fast_quiet, a_lin

    def _gravity_reference(
        self, quiet: np.ndarray, a_norm: np.ndarray, up: np.ndarray
    ) -> np.ndarray:
        """Per sample, what a still accelerometer would read in the current orientation.

        Offsets and scale errors make that depend on posture: |a| ~ G + b . up (b: the offset in
        sensor axes). The reference is the mean magnitude of the latest quiet stretch (from 0.2 s
        into it), plus b . (up - up of that stretch), with b fitted over the session's quiet
        postures. So a limb that rotates during a lift (curl, thigh in a squat) does not see the
        offset change as vertical acceleration. Quiet stretches carry across blocks.
        """
        n_min = int(GRAVITY_QUIET_S * self.fs)
        skip = n_min // 2
        g0 = np.empty(a_norm.size)
        starts, stops, vals = runs(quiet)
        for a, b, v in zip(starts.tolist(), stops.tolist(), vals.tolist(), strict=True):
            if not v:
                self._end_quiet_stretch()
                g0[a:b] = self._g0 + (up[a:b] - self._u0) @ self._acc_offset
                continue
            pos = self._quiet_len + np.arange(b - a)  # position inside the quiet stretch
            use = pos >= skip
            csum = self._quiet_sum + np.cumsum(np.where(use, a_norm[a:b], 0.0))
            cup = self._quiet_up + np.cumsum(np.where(use[:, None], up[a:b], 0.0), axis=0)
            ccnt = self._quiet_cnt + np.cumsum(use)
            ready = pos >= n_min
            first_ready = int(np.argmax(ready)) if ready.any() else b - a
            # Before the stretch is long enough the previous reference holds.
            g0[a : a + first_ready] = (
                self._g0 + (up[a : a + first_ready] - self._u0) @ self._acc_offset
            )
            if ready.any():
                cnt = np.maximum(ccnt[first_ready:], 1)[:, None]
                g0[a + first_ready : b] = csum[first_ready:] / cnt[:, 0]
                self._g0 = float(csum[-1] / ccnt[-1])
                self._u0 = cup[-1] / ccnt[-1]
            self._quiet_len += b - a
            self._quiet_sum = float(csum[-1])
            self._quiet_up = cup[-1].copy()
            self._quiet_cnt = int(ccnt[-1])
        return g0

    def _end_quiet_stretch(self) -> None:
        """A finished quiet stretch is one observation (posture, magnitude) for the offset fit."""
        if self._quiet_len >= int(GRAVITY_QUIET_S * self.fs) and self._quiet_cnt > 0:
            x = np.concatenate(([1.0], self._quiet_up / self._quiet_cnt))
            y = self._quiet_sum / self._quiet_cnt
            self._fit_xx = OFFSET_FORGET * self._fit_xx + np.outer(x, x)
            self._fit_xy = OFFSET_FORGET * self._fit_xy + x * y
            ridge = np.diag([0.0, 1.0, 1.0, 1.0]) * OFFSET_RIDGE
            try:
                sol = np.linalg.solve(self._fit_xx + ridge, self._fit_xy)
                self._acc_offset = np.clip(sol[1:], -OFFSET_MAX_MPS2, OFFSET_MAX_MPS2)
            except np.linalg.LinAlgError:
                pass
        self._quiet_len = 0
        self._quiet_sum = 0.0
        self._quiet_up = np.zeros(3)
        self._quiet_cnt = 0
