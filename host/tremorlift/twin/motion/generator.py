"""Physics-based motion generator for a limb-worn IMU in strength training.

A scenario (see :mod:`tremorlift.twin.motion.scenarios`) is a seeded timeline of limb moves:
eccentric and concentric phases with minimum-jerk velocity profiles (a sticking-region dip near
failure), pauses, fatigue-driven velocity loss, unrack/rerack, fidgets and walking between sets,
isometric holds. :func:`generate` renders it for every worn sensor on an internal grid of at least
800 Hz:

* the limb is a rigid segment (forearm, thigh or shank) whose proximal joint (elbow, hip, ankle)
  translates and which rotates by closed-form Euler angles, so orientation and angular velocity
  are exact; the sensor sits on the skin at a lever from the joint, so its acceleration is
  ``a_joint + alpha x d + omega x (omega x d)``;
* accel = R^T (a_world + g z_up) (specific force; still and level reads +9.81 on the up axis),
  gyro = R^T omega;
* tremor is a small narrow-band angular oscillation of the segment (consistent in gyro and accel,
  including its tilt of gravity) plus a linear component, with frequency wander and amplitude
  modulation;
* the IMU model (:mod:`tremorlift.twin.motion.sensor`) adds scale/cross-axis errors, DLPF, bias,
  noise, quantisation and saturation, and racking impacts ride on top.

Ground truth (interfaces.md section 6) comes from the generator's own state, never from the signal.

Why one long module: the rendering is one chain (plan, kinematics, rigid-body acceleration,
IMU model) whose stages share the internal grid and frames; the scenarios and the IMU model,
which stand on their own, are modules of their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.polynomial import Polynomial
from scipy import signal
from scipy.interpolate import CubicSpline

from tremorlift.twin.motion.scenarios import (
    EXERCISES,
    PLACEMENTS,
    SCENARIOS,
    SEGMENT_LEVER_M,
    SKIN_RADIUS_M,
    Body,
    ScenarioSpec,
    SessionPlan,
    TremorEpisode,
    build_plan,
    exercise_poses,
    rest_pose,
)
from tremorlift.twin.motion.sensor import GRAVITY_MPS2, IMU_MODELS, ImuSettings, apply_imu

__all__ = [
    "SCENARIOS",
    "IMU_MODELS",
    "PLACEMENTS",
    "EXERCISES",
    "DeviceRecording",
    "Kinematics",
    "Scenario",
    "MotionSource",
    "generate",
    "TREMOR_SPAN_MIN_RMS_MPS2",
    "MIN_RATE_HZ",
    "MAX_RATE_HZ",
]

MIN_RATE_HZ = 50.0
MAX_RATE_HZ = 2000.0
MIN_INTERNAL_RATE_HZ = 800.0  # DLPF and impacts are modelled above the output rate
# A tremor span is reported where the tremor's 1-s moving RMS reaches this level: twice to five
# times the ever-present physiological baseline (0.02-0.05 m/s^2 RMS here; S2 modal 0.01 g peak).
TREMOR_SPAN_MIN_RMS_MPS2 = 0.10
TREMOR_SPAN_MIN_S = 1.5
TREMOR_SPAN_MERGE_S = 0.5
TREMOR_LINEAR_FRACTION = 0.3  # linear (translational) part relative to the angular part
Z_UP = np.array([0.0, 0.0, 1.0])

# Sensor axes in the segment's hanging frame (columns x, y, z): x along the segment towards the
# distal end, z out of the skin. Forearm: on the back of the wrist; thigh/shank: on the front.
_MOUNTS = {
    "forearm": np.array([[0.0, 0.0, -1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]]).T,
    "wrist": np.array([[0.0, 0.0, -1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]]).T,
    "thigh": np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]).T,
    "shank": np.array([[0.0, 0.0, -1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]]).T,
}
MOUNT_MISALIGNMENT_RAD = math.radians(3.0)  # per-axis std of the strap's misalignment

# Walking in place/arm swing amplitudes per placement: segment swing (rad) and joint bounce (m).
_WALK_SWING_RAD = {"forearm": 0.25, "wrist": 0.25, "thigh": 0.35, "shank": 0.45}
_WALK_BOUNCE_M = 0.025

# Strap wobble and grip vibration ("floor"): the sensor rocks on the strap about one axis around
# a point a few centimetres away and shakes linearly across it, driven broadband around the
# strap's resonance. Real wrist sets: a broad peak at 9.5-13.5 Hz (centre ~11.5 Hz, Q ~3) and a
# 9-14 Hz accel/gyro ratio of 4.7 m/s^2 per rad/s (an effective lever of ~6.5 cm at 11.5 Hz):
# rocking on a 4.6 cm lever plus linear shaking on the two other axes at 0.7 of its level.
FLOOR_LEVER_M = 0.046
FLOOR_LINEAR_FRACTION = 0.7
FLOOR_FREQ_HZ = (10.0, 13.0)
FLOOR_Q = (1.8, 3.2)
# Strap wobble excited by the limb's own acceleration (RMS per m/s^2 of smoothed |a|).
_FLOOR_MOTION_GAIN = {
    "forearm": (0.12, 0.25),
    "wrist": (0.15, 0.30),
    "thigh": (0.04, 0.10),
    "shank": (0.05, 0.12),
}
# Relaxed limb, no load: strap and physiological micro-motion. Hand placements: the real
# recordings' quietest moments near a set are far louder (0.25-0.43 m/s^2), but the hand is then
# mostly still on the handle; no data for a relaxed hanging arm or a leg strap (kept small).
FLOOR_REST_MPS2 = {
    "forearm": (0.03, 0.07),
    "wrist": (0.03, 0.07),
    "thigh": (0.01, 0.02),
    "shank": (0.01, 0.02),
}


@dataclass
class Kinematics:
    """The generator's own state at the output rate (for tests and debugging)."""

    pos_m: np.ndarray  # (N,3) sensor position, world (x fwd, y left, z up)
    vel_mps: np.ndarray  # (N,3)
    acc_mps2: np.ndarray  # (N,3) world acceleration (no gravity, no tremor)
    rot_world_from_sensor: np.ndarray  # (N,3,3)
    accel_true_mps2: np.ndarray  # (N,3) sensor frame, motion + tremor + impacts, no sensor errors
    gyro_true_radps: np.ndarray  # (N,3)
    tremor_accel_mps2: np.ndarray  # (N,3) tremor contribution alone (sensor frame)
    floor_accel_mps2: np.ndarray  # (N,3) grip/strap vibration alone (sensor frame; not tremor)


@dataclass
class DeviceRecording:
    name: str
    placement: str
    t_s: np.ndarray  # (N,)
    accel_mps2: np.ndarray  # (N,3) specific force, sensor frame, gravity included
    gyro_radps: np.ndarray  # (N,3)
    truth: dict[str, Any]
    kinematics: Kinematics | None = field(default=None, repr=False)


@dataclass
class Scenario:
    name: str
    seed: int
    sample_rate_hz: float
    devices: list[DeviceRecording]

    def device(self, name: str) -> DeviceRecording:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)


# ---------------------------------------------------------------------------------------------
# Velocity profiles


@lru_cache(maxsize=256)
def _profile(dip_milli: int, dip_at_centi: int) -> tuple[Polynomial, Polynomial, Polynomial]:
    """Normalised position X(tau), velocity g(tau) and dg/dtau on [0, 1].

    Minimum-jerk velocity 30 tau^2 (1-tau)^2 (peak/mean 1.875, algorithms.md 10.1: 1.6-2.0)
    times (1 - dip * B(tau)), B a polynomial bump peaking at ``dip_at``: the sticking region of
    heavy reps (first peak, minimum, second peak). Polynomials keep X, v and a exact.
    """
    dip = dip_milli / 1000.0
    tau = Polynomial([0.0, 1.0])
    g = 30.0 * tau**2 * (1 - tau) ** 2
    if dip > 0:
        a = max(1, round(dip_at_centi / 100.0 * 10))
        b = max(1, 10 - a)
        bump = tau**a * (1 - tau) ** b
        peak = (a / (a + b)) ** a * (b / (a + b)) ** b
        g = g * (1 - dip * bump / peak)
    x = g.integ()
    total = x(1.0) - x(0.0)
    g = g / total
    x = g.integ(lbnd=0.0)
    return x, g, g.deriv()


# ---------------------------------------------------------------------------------------------
# Rotations


def _rot_seg(theta: np.ndarray, phi: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """R = Rz(psi) Ry(-theta) Rz(phi), shape (N,3,3), multiplied out element by element (stacked
    3x3 matmuls are slow in numpy)."""
    ct, st = np.cos(theta), np.sin(theta)
    cf, sf = np.cos(phi), np.sin(phi)
    cp, sp = np.cos(psi), np.sin(psi)
    # A = Ry(-theta) Rz(phi) = [[ct cf, -ct sf, -st], [sf, cf, 0], [st cf, -st sf, ct]]
    a0 = (ct * cf, -ct * sf, -st)
    a1 = (sf, cf, np.zeros_like(ct))
    r = np.empty((theta.shape[0], 3, 3))
    for j in range(3):
        r[:, 0, j] = cp * a0[j] - sp * a1[j]
        r[:, 1, j] = sp * a0[j] + cp * a1[j]
    r[:, 2, 0], r[:, 2, 1], r[:, 2, 2] = st * cf, -st * sf, ct
    return r


def _small_rotation(rng: np.random.Generator, std_rad: float) -> np.ndarray:
    v = rng.normal(0.0, std_rad, 3)
    ang = float(np.linalg.norm(v))
    if ang < 1e-12:
        return np.eye(3)
    k = v / ang
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(ang) * kx + (1 - math.cos(ang)) * kx @ kx


# ---------------------------------------------------------------------------------------------
# Rendering one device


def _ou(
    rng: np.random.Generator, dur_s: float, t_rel_s: np.ndarray, tau_s: float, sigma: float
) -> np.ndarray:
    """Ornstein-Uhlenbeck noise (std ``sigma``, correlation time ``tau_s``) over ``dur_s``, made at
    5 Hz and cubic-spline interpolated at ``t_rel_s``: cheap, smooth enough to differentiate twice
    (tremor angles: a rougher modulation would put its own second derivative into the
    acceleration), and the same realisation whatever the output rate."""
    fs_lo = 5.0
    n_lo = int(dur_s * fs_lo) + 4
    a = math.exp(-1.0 / (tau_s * fs_lo))
    w = rng.normal(0.0, sigma * math.sqrt(1 - a * a), n_lo)
    w[0] = rng.normal(0.0, sigma)
    x = signal.lfilter([1.0], [1.0, -a], w)
    return CubicSpline(np.arange(n_lo), x)(t_rel_s * fs_lo)


def _fade(n: int, fs_hz: float, fade_s: float) -> np.ndarray:
    w = np.ones(n)
    m = min(int(fade_s * fs_hz), n // 3)
    if m > 1:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(m) / m)
        w[:m] = ramp
        w[n - m :] = ramp[::-1]
    return w


@dataclass
class _Rendered:
    pos: np.ndarray
    vel: np.ndarray
    acc: np.ndarray
    rot: np.ndarray
    accel: np.ndarray
    gyro: np.ndarray
    tremor_acc: np.ndarray
    floor_acc: np.ndarray
    spans: list[dict[str, Any]]
    psi: np.ndarray  # heading of the body (rad)


def _render_pose(
    plan: SessionPlan, body: Body, n: int, fs: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pose (N,6), its rate and acceleration from the plan's moves and oscillations."""
    pose = np.zeros((n, 6))
    rate = np.zeros((n, 6))
    acc = np.zeros((n, 6))
    step = np.zeros((n + 1, 6))
    cur = rest_pose(body.placement, body.side_sign)
    pose[:] = cur
    pose_cache: dict[tuple[str, float, float], dict[str, np.ndarray]] = {}
    for mv in sorted(plan.moves, key=lambda m: m.t0_s):
        if mv.delta is not None:
            target = cur + mv.delta
        elif mv.pose == "rest":
            target = rest_pose(body.placement, body.side_sign)
            target[5] = cur[5]
        else:
            assert mv.exercise is not None and mv.pose is not None
            key = (mv.exercise, mv.ref_rom_m, mv.rep_angle_rad)
            poses = pose_cache.get(key)
            if poses is None:
                poses = exercise_poses(body, mv.exercise, mv.ref_rom_m, mv.rep_angle_rad)
                pose_cache[key] = poses
            target = poses[mv.pose].copy()
            if mv.pose == "turn" and mv.depth != 1.0:
                target = poses["start"] + mv.depth * (poses["turn"] - poses["start"])
            target[5] = cur[5]
        delta = target - cur
        i0 = min(n, math.ceil(mv.t0_s * fs - 1e-9))
        i1 = min(n, math.ceil((mv.t0_s + mv.dur_s) * fs - 1e-9))
        if i1 > i0:
            tau = (np.arange(i0, i1) / fs - mv.t0_s) / mv.dur_s
            xp, gp, dgp = _profile(round(mv.dip * 1000), round(mv.dip_at * 100))
            pose[i0:i1] += np.outer(xp(tau), delta)
            rate[i0:i1] += np.outer(gp(tau), delta / mv.dur_s)
            acc[i0:i1] += np.outer(dgp(tau), delta / mv.dur_s**2)
        step[i1] += delta
        cur = target
    pose += np.cumsum(step[:n], axis=0)

    for osc in plan.oscillations:
        i0 = max(0, int(osc.t0_s * fs))
        i1 = min(n, int((osc.t0_s + osc.dur_s) * fs))
        if i1 - i0 < 4:
            continue
        t = np.arange(i0, i1) / fs
        layer = np.zeros((i1 - i0, 6))
        ph = 2 * np.pi * osc.freq_hz * (t - osc.t0_s)
        if osc.kind == "shake":
            w = _fade(i1 - i0, fs, 0.3) * osc.amp_scale
            layer[:, 3] = w * np.sin(ph)
            layer[:, 4] = 1.5 * w * np.sin(ph + 0.8)
        else:
            w = _fade(i1 - i0, fs, 1.0) * osc.amp_scale
            layer[:, 3] = _WALK_SWING_RAD[body.placement] * w * np.sin(ph)
            layer[:, 2] = _WALK_BOUNCE_M * w * np.sin(2 * ph)
        d1 = np.gradient(layer, 1.0 / fs, axis=0)
        pose[i0:i1] += layer
        rate[i0:i1] += d1
        acc[i0:i1] += np.gradient(d1, 1.0 / fs, axis=0)
    return pose, rate, acc


def _render_device(
    plan: SessionPlan, body: Body, fs: float, seeds: np.random.SeedSequence
) -> _Rendered:
    """Render one sensor. Every random part has its own seed stream, so the realisation (and the
    truth derived from it) is the same at any output rate."""
    mount_seed, impact_seed, *tremor_seeds, floor_seed = seeds.spawn(3 + len(plan.tremors))
    rng = np.random.default_rng(mount_seed)
    n = int(round(plan.duration_s * fs))
    pose, rate, pacc = _render_pose(plan, body, n, fs)
    theta, phi, psi = pose[:, 3], pose[:, 4], pose[:, 5]
    dth, dph, dps = rate[:, 3], rate[:, 4], rate[:, 5]
    r_seg = _rot_seg(theta, phi, psi)
    # World angular velocity of Rz(psi) Ry(-theta) Rz(phi), from the Euler-angle rates:
    # psi' z + Rz(psi) (-theta' y) + Rz(psi) Ry(-theta) (phi' z); the last axis is R_seg's z
    # column because Rz(phi) leaves z alone.
    cp, sp = np.cos(psi), np.sin(psi)
    omega = np.zeros((n, 3))
    omega[:, 2] = dps
    omega[:, 0] += sp * dth
    omega[:, 1] += -cp * dth
    omega += r_seg[:, :, 2] * dph[:, None]
    alpha = np.gradient(omega, 1.0 / fs, axis=0)

    mount = _MOUNTS[body.placement] @ _small_rotation(rng, MOUNT_MISALIGNMENT_RAD)
    lever = SEGMENT_LEVER_M[body.placement]
    d_seg = np.array([0.0, 0.0, -lever]) + SKIN_RADIUS_M[body.placement] * mount[:, 2]
    d_w = np.einsum("nij,j->ni", r_seg, d_seg)
    pos = pose[:, :3] + d_w
    vel = rate[:, :3] + np.cross(omega, d_w)
    acc = pacc[:, :3] + np.cross(alpha, d_w) + np.cross(omega, np.cross(omega, d_w))
    rot = np.einsum("nij,jk->nik", r_seg, mount)
    rot_t = np.transpose(rot, (0, 2, 1))
    accel = np.einsum("nij,nj->ni", rot_t, acc + GRAVITY_MPS2 * Z_UP)
    gyro = np.einsum("nij,nj->ni", rot_t, omega)

    tremor_acc = np.zeros((n, 3))
    tremor_gyro = np.zeros((n, 3))
    spans: list[dict[str, Any]] = []
    lever_s = mount.T @ d_seg  # sensor position relative to the joint, sensor frame
    seg_axis_s = mount.T @ np.array([0.0, 0.0, -1.0])
    tremor_scale = float(rng.uniform(0.9, 1.1))  # per-limb asymmetry
    for ep, ep_seed in zip(plan.tremors, tremor_seeds, strict=True):
        span = _add_tremor(
            ep,
            tremor_scale,
            fs,
            n,
            accel,
            lever_s,
            seg_axis_s,
            tremor_acc,
            tremor_gyro,
            np.random.default_rng(ep_seed),
        )
        spans.extend(span)
    floor_acc, floor_gyro = _floor(
        plan, body, fs, n, acc, accel, seg_axis_s, np.random.default_rng(floor_seed)
    )
    accel = accel + tremor_acc + floor_acc
    gyro = gyro + tremor_gyro + floor_gyro
    rng_impact = np.random.default_rng(impact_seed)
    for t_imp, peak in plan.impacts:
        _add_impact(t_imp, peak, fs, accel, gyro, rng_impact)
    spans.sort(key=lambda s: s["start_s"])
    return _Rendered(pos, vel, acc, rot, accel, gyro, tremor_acc, floor_acc, spans, psi)


def _moving_rms(x: np.ndarray, w: int) -> np.ndarray:
    c = np.concatenate(([0.0], np.cumsum(x * x)))
    i = np.arange(x.size)
    lo = np.clip(i - w // 2, 0, x.size)
    hi = np.clip(i + (w - w // 2), 0, x.size)
    return np.sqrt((c[hi] - c[lo]) / np.maximum(hi - lo, 1))


def _floor(
    plan: SessionPlan,
    body: Body,
    fs: float,
    n: int,
    acc_world: np.ndarray,
    accel_clean: np.ndarray,
    seg_axis_s: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Grip and strap vibration: the sensor rocks on its strap about a point FLOOR_LEVER_M away,
    a broadband resonance (white noise through a resonance, per lifter/strap 10-13 Hz, Q
    1.8-3.2, shaped in the frequency domain). Its RMS is the root-sum-square of a small resting floor, the grip floor while the
    hand holds a load (plan.floors) and a part proportional to the limb's own smoothed
    acceleration (strap wobble set off by the movement, steps when walking). Accel and gyro stay
    consistent (tangential acceleration, angle rate, tilt of gravity). Not a tremor episode: it
    never makes a tremor span."""
    if n < 16:
        return np.zeros((n, 3)), np.zeros((n, 3))
    f_w = float(rng.uniform(*FLOOR_FREQ_HZ))
    q = float(rng.uniform(*FLOOR_Q))
    gain = float(rng.uniform(*_FLOOR_MOTION_GAIN[body.placement]))
    rest = float(rng.uniform(*FLOOR_REST_MPS2[body.placement]))
    lever = -seg_axis_s + 0.5 * rng.normal(size=3)
    lever *= FLOOR_LEVER_M / np.linalg.norm(lever)
    # One rocking axis (a strap rocks about its hinge; several axes at once would add a coning
    # drift to the orientation), perpendicular to the lever; the linear shake spans the rest.
    axis = np.cross(lever, rng.normal(size=3))
    axis /= np.linalg.norm(axis)
    tang = np.cross(axis, lever)
    lin = np.stack([lever / np.linalg.norm(lever), axis])

    level2 = np.full(n, rest * rest)
    for fl in plan.floors:
        i0 = max(0, int(fl.t0_s * fs))
        i1 = min(n, int((fl.t0_s + fl.dur_s) * fs))
        if i1 - i0 > 4:
            level2[i0:i1] += (fl.rms_mps2 * _fade(i1 - i0, fs, fl.fade_s)) ** 2
    a_motion = _moving_rms(np.linalg.norm(acc_world, axis=1), max(1, int(0.3 * fs)))
    level2 += (gain * a_motion) ** 2
    # Smooth the level (0.2 s) so its own derivatives stay small next to the vibration's.
    w = max(1, int(0.2 * fs))
    level = np.sqrt(np.convolve(level2, np.ones(w) / w, mode="same"))

    # Tangential acceleration with a resonance spectrum, made in the frequency domain so that
    # the angle (its double integral) is exact and band-limited: nothing below 1.5 Hz.
    f = np.fft.rfftfreq(n, 1.0 / fs)
    spec = np.fft.rfft(rng.normal(size=(n, 3)), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = 1.0 / (1.0 + 1j * q * (f / f_w - f_w / f))
        # Times a 2nd-order high-pass at f_w, so the angle (acceleration / omega^2) is itself
        # resonant and does not wander at low frequencies.
        r2 = (f / f_w) ** 2
        h = np.where(f > 1.5, h * r2 / (1.0 + r2), 0.0)
        h_ang = np.where(f > 1.5, h / -((2 * math.pi * f) ** 2), 0.0)
    ang_unit = np.fft.irfft(spec[:, 0] * h_ang, n=n)
    shake = np.fft.irfft(spec[:, 1:] * h[:, None], n=n, axis=0)
    dd = np.gradient(np.gradient(ang_unit, 1.0 / fs), 1.0 / fs)
    rot_rms = float(np.sqrt(np.mean(dd * dd))) * float(np.linalg.norm(tang))
    shake /= float(np.sqrt(np.mean(shake * shake)))
    # Total RMS = level: rocking part 1, each linear axis FLOOR_LINEAR_FRACTION.
    norm = level / math.sqrt(1.0 + 2.0 * FLOOR_LINEAR_FRACTION**2)
    ang = ang_unit * norm / rot_rms
    dang = np.gradient(ang, 1.0 / fs)
    ddang = np.gradient(dang, 1.0 / fs)
    # A small rotation by ang about axis tilts the measured specific force by -(ang axis) x f.
    acc_s = (
        np.outer(ddang, tang)
        + (FLOOR_LINEAR_FRACTION * norm)[:, None] * (shake @ lin)
        - np.cross(np.outer(ang, axis), accel_clean)
    )
    return acc_s, np.outer(dang, axis)


def _add_tremor(
    ep: TremorEpisode,
    scale: float,
    fs: float,
    n: int,
    accel_clean: np.ndarray,
    lever_s: np.ndarray,
    seg_axis_s: np.ndarray,
    out_acc: np.ndarray,
    out_gyro: np.ndarray,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Add one tremor episode as a small rotation of the segment about a random axis
    perpendicular to it (plus a linear part); return its reportable spans."""
    i0 = max(0, int(ep.t0_s * fs))
    i1 = min(n, int((ep.t0_s + ep.dur_s) * fs))
    m = i1 - i0
    if m < int(0.5 * fs):
        return []
    t_rel = np.arange(i0, i1) / fs - ep.t0_s
    tau = np.clip(t_rel / ep.dur_s, 0.0, 1.0)
    f = (
        ep.f_start_hz
        + (ep.f_end_hz - ep.f_start_hz) * tau
        + _ou(rng, ep.dur_s, t_rel, 0.7, ep.wander_hz)
    )
    f = np.maximum(f, 0.5)
    phase = 2 * np.pi * np.cumsum(f) / fs + rng.uniform(0, 2 * np.pi)
    env = ep.rms_start_mps2 + (ep.rms_end_mps2 - ep.rms_start_mps2) * tau**ep.growth_exp
    am = np.clip(1.0 + _ou(rng, ep.dur_s, t_rel, 1.5, ep.am_depth), 0.2, None)
    level = env * _fade(m, fs, ep.fade_s) * scale
    amp = level * am / math.sqrt(1 + TREMOR_LINEAR_FRACTION**2)

    axis = rng.normal(size=3)
    axis -= axis.dot(seg_axis_s) * seg_axis_s
    axis /= np.linalg.norm(axis)
    tangential = np.cross(axis, lever_s)
    lever_eff = float(np.linalg.norm(tangential))
    omega_rad = 2 * np.pi * f
    # Angle whose second derivative is the wanted tangential acceleration amp*sqrt(2)*sin(phase).
    ang = -amp * math.sqrt(2) / (lever_eff * omega_rad**2) * np.sin(phase)
    dang = np.gradient(ang, 1.0 / fs)
    ddang = np.gradient(dang, 1.0 / fs)
    lin_dir = rng.normal(size=3)
    lin_dir /= np.linalg.norm(lin_dir)
    lin = TREMOR_LINEAR_FRACTION * amp * math.sqrt(2) * np.sin(phase + rng.uniform(0, 2 * np.pi))
    # Small rotation by ang*axis tilts the measured specific force by -(ang*axis) x f.
    contrib = (
        np.outer(ddang, tangential)
        + np.outer(lin, lin_dir)
        - np.cross(np.outer(ang, axis), accel_clean[i0:i1])
    )
    out_acc[i0:i1] += contrib
    out_gyro[i0:i1] += np.outer(dang, axis)
    if not ep.report:
        return []
    return _spans(ep, contrib, f, level * am, i0, fs)


def _spans(
    ep: TremorEpisode, contrib: np.ndarray, f: np.ndarray, amp: np.ndarray, i0: int, fs: float
) -> list[dict[str, Any]]:
    """Reportable spans of one episode: where its RMS over one second (from the generator's own
    amplitude, envelope times the random modulation: the tremor that is really there, which is
    what a sensor can see) reaches TREMOR_SPAN_MIN_RMS_MPS2 for TREMOR_SPAN_MIN_S; dips shorter
    than TREMOR_SPAN_MERGE_S inside a span do not split it. Frequency: the power-weighted mean
    of the instantaneous frequency; RMS: of the realised signal."""
    w = max(1, int(round(fs)))
    c = np.concatenate(([0.0], np.cumsum(amp * amp)))
    lo = np.clip(np.arange(amp.size) - w // 2, 0, amp.size)
    hi = np.clip(np.arange(amp.size) + (w - w // 2), 0, amp.size)
    rms_1s = np.sqrt((c[hi] - c[lo]) / np.maximum(hi - lo, 1))
    above = rms_1s >= TREMOR_SPAN_MIN_RMS_MPS2
    # Close short dips (the modulation wanders with a 1.5 s time constant).
    gap = int(round(TREMOR_SPAN_MERGE_S * fs))
    e = np.flatnonzero(np.diff(np.concatenate(([0], above.astype(np.int8), [0]))))
    for b, a in zip(e[1::2][:-1].tolist(), e[2::2].tolist(), strict=True):
        if a - b <= gap:
            above[b:a] = True
    edges = np.flatnonzero(np.diff(np.concatenate(([0], above.astype(np.int8), [0]))))
    out = []
    for a, b in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        if (b - a) / fs < TREMOR_SPAN_MIN_S:
            continue
        p = np.einsum("ij,ij->i", contrib[a:b], contrib[a:b])
        out.append(
            {
                "start_s": round((i0 + a) / fs, 4),
                "end_s": round((i0 + b) / fs, 4),
                "freq_hz": round(float(np.sum(f[a:b] * p) / np.sum(p)), 3),
                "rms_mps2": round(float(np.sqrt(np.mean(p))), 4),
                "cause": ep.cause,
            }
        )
    return out


def _add_impact(
    t_s: float,
    peak_mps2: float,
    fs: float,
    accel: np.ndarray,
    gyro: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Bar hitting the rack/hooks: a damped ringing of tens of Hz, several g, ~20 ms."""
    i0 = int(t_s * fs)
    m = int(0.12 * fs)
    if i0 < 0 or i0 + m > accel.shape[0]:
        return
    t = np.arange(m) / fs
    ring = np.exp(-t / rng.uniform(0.01, 0.02)) * np.sin(2 * np.pi * rng.uniform(40.0, 90.0) * t)
    d = rng.normal(size=3)
    d /= np.linalg.norm(d)
    accel[i0 : i0 + m] += peak_mps2 * np.outer(ring, d)
    g = rng.normal(size=3)
    g /= np.linalg.norm(g)
    gyro[i0 : i0 + m] += peak_mps2 * 0.02 * np.outer(ring, g)


# ---------------------------------------------------------------------------------------------
# Truth


def _truth(
    plan: SessionPlan,
    rec: _Rendered,
    fs: float,
    name: str,
    body: Body,
    seed: int,
    rate: float,
    imu: str,
) -> dict[str, Any]:
    n = rec.vel.shape[0]

    def idx(t: float) -> int:
        return min(n - 1, max(0, int(round(t * fs))))

    sets = []
    for s in plan.sets:
        reps = []
        axis = np.asarray(s.concentric_axis, dtype=float)
        for r in s.reps:
            a, b = idx(r.concentric_start_s), idx(r.concentric_end_s)
            # Named poses are placed in world axes (the heading only turns the segment), so
            # the load direction is a world direction too.
            u = axis
            vz = rec.vel[a : b + 1] @ u
            z = rec.pos @ u
            reps.append(
                {
                    "start_s": round(r.start_s, 4),
                    "end_s": round(r.end_s, 4),
                    "concentric_start_s": round(r.concentric_start_s, 4),
                    "concentric_end_s": round(r.concentric_end_s, 4),
                    "mean_concentric_velocity_mps": round(float(np.mean(vz)), 4),
                    "peak_velocity_mps": round(float(np.max(vz)), 4),
                    "rom_m": round(float(z[b] - z[a]), 4),
                }
            )
        sets.append(
            {
                "kind": s.kind,
                "exercise": s.exercise,
                "start_s": round(s.start_s, 4),
                "end_s": round(s.end_s, 4),
                "reps": reps,
            }
        )
    return {
        "scenario": plan.name,
        "seed": seed,
        "sample_rate_hz": rate,
        "device": name,
        "placement": body.placement,
        "imu": imu,
        "duration_s": round(plan.duration_s, 4),
        "sets": sets,
        "tremor_spans": rec.spans,
        "events": [{"t_s": round(t, 4), "kind": k} for t, k in sorted(plan.events)],
    }


# ---------------------------------------------------------------------------------------------
# Public API


def _check(scenario: str, sample_rate_hz: float, imu: str) -> ScenarioSpec:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; valid: {', '.join(SCENARIOS)}")
    if not (MIN_RATE_HZ <= sample_rate_hz <= MAX_RATE_HZ):
        raise ValueError(
            f"sample rate {sample_rate_hz} Hz outside {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} Hz"
        )
    if imu not in IMU_MODELS:
        raise ValueError(f"unknown imu {imu!r}; valid: {', '.join(IMU_MODELS)}")
    return SCENARIOS[scenario]


def generate(
    scenario: str,
    seed: int,
    *,
    sample_rate_hz: float = 200.0,
    imu: str = "icm42688",
    short: bool = False,
    accel_range_g: float = 8.0,
    gyro_range_dps: float = 1000.0,
    keep_kinematics: bool = True,
) -> Scenario:
    """Render ``scenario`` for ``seed``: one :class:`DeviceRecording` per worn sensor.

    ``short`` caps sets at two, rests at 8-14 s and holds at 15-25 s (for tests). ValueError on
    an unknown scenario/IMU or a rate outside 50-2000 Hz. Deterministic for a given argument set.
    """
    spec = _check(scenario, sample_rate_hz, imu)
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x7E3011F7])
    plan_seed, *dev_seeds = ss.spawn(1 + 2 * len(spec.devices))
    plan = build_plan(spec, np.random.default_rng(plan_seed), short=short)
    k = max(1, math.ceil(MIN_INTERNAL_RATE_HZ / sample_rate_hz))
    fs = sample_rate_hz * k
    settings = ImuSettings(sample_rate_hz, accel_range_g, gyro_range_dps)
    devices = []
    for j, (name, body) in enumerate(plan.devices):
        rec = _render_device(plan, body, fs, dev_seeds[2 * j])
        accel, gyro = apply_imu(
            rec.accel,
            rec.gyro,
            fs,
            k,
            IMU_MODELS[imu],
            settings,
            np.random.default_rng(dev_seeds[2 * j + 1]),
        )
        t = np.arange(accel.shape[0]) / sample_rate_hz
        kin = None
        if keep_kinematics:
            kin = Kinematics(
                rec.pos[::k],
                rec.vel[::k],
                rec.acc[::k],
                rec.rot[::k],
                rec.accel[::k],
                rec.gyro[::k],
                rec.tremor_acc[::k],
                rec.floor_acc[::k],
            )
        truth = _truth(plan, rec, fs, name, body, int(seed), float(sample_rate_hz), imu)
        devices.append(DeviceRecording(name, body.placement, t, accel, gyro, truth, kin))
    return Scenario(scenario, int(seed), float(sample_rate_hz), devices)


class MotionSource:
    """Per-sample source for the IMU register emulators: ``source(i) -> (ax, ay, az, gx, gy, gz)``.

    SI units, sensor axes, gravity included. The scenario is rendered once (lazily, on the first
    call or :meth:`prepare`) at ``sample_rate_hz`` (set it to the emulated chip's ODR) and kept as
    a list of tuples, so a call is one index operation. With ``loop`` the recording repeats
    (every scenario starts and ends at rest, so the seam is a still period); with
    ``reseed_each_loop`` each repetition is rendered afresh with seed+1, seed+2, ... so endless
    runs never hold more than one scenario in memory. Without ``loop`` the last sample repeats.
    """

    def __init__(
        self,
        scenario: str = "demo",
        seed: int = 0,
        *,
        sample_rate_hz: float = 200.0,
        imu: str = "icm42688",
        device: str | int = 0,
        loop: bool = True,
        reseed_each_loop: bool = False,
        short: bool = False,
    ) -> None:
        _check(scenario, sample_rate_hz, imu)
        self.scenario = scenario
        self.seed = int(seed)
        self.sample_rate_hz = float(sample_rate_hz)
        self.imu = imu
        self.device = device
        self.loop = loop
        self.reseed_each_loop = reseed_each_loop
        self.short = short
        self._samples: Sequence[tuple[float, float, float, float, float, float]] = ()
        self._loop_index = 0
        self._loop_start = 0
        self._fixed = False  # wraps a given recording: never re-rendered
        self.truth: dict[str, Any] | None = None

    @classmethod
    def from_recording(cls, rec: DeviceRecording, *, loop: bool = True) -> MotionSource:
        src = cls(
            rec.truth["scenario"],
            rec.truth["seed"],
            sample_rate_hz=rec.truth["sample_rate_hz"],
            loop=loop,
        )
        src._set(rec)
        src._fixed = True
        return src

    def _set(self, rec: DeviceRecording) -> None:
        data = np.hstack([rec.accel_mps2, rec.gyro_radps])
        self._samples = [tuple(row) for row in data.tolist()]
        self.truth = rec.truth

    def _render(self, loop_index: int) -> None:
        seed = self.seed + (loop_index if self.reseed_each_loop else 0)
        sc = generate(
            self.scenario,
            seed,
            sample_rate_hz=self.sample_rate_hz,
            imu=self.imu,
            short=self.short,
            keep_kinematics=False,
        )
        rec = sc.devices[self.device] if isinstance(self.device, int) else sc.device(self.device)
        self._set(rec)
        self._loop_index = loop_index

    def prepare(self) -> MotionSource:
        if not self._samples:
            self._render(0)
        return self

    def set_sample_rate(self, sample_rate_hz: float) -> None:
        """Re-render at a new rate (the emulated chip's ODR changed)."""
        if self._fixed and sample_rate_hz != self.sample_rate_hz:
            raise ValueError("a MotionSource wrapping a recording has a fixed sample rate")
        if sample_rate_hz != self.sample_rate_hz:
            _check(self.scenario, sample_rate_hz, self.imu)
            self.sample_rate_hz = float(sample_rate_hz)
            self._samples = ()
            self._loop_start = 0

    def __call__(self, sample_index: int) -> tuple[float, float, float, float, float, float]:
        if not self._samples:
            self._render(0)
            self._loop_start = 0
        n = len(self._samples)
        i = sample_index - self._loop_start
        if 0 <= i < n:
            return self._samples[i]
        if not self.loop:
            return self._samples[min(max(i, 0), n - 1)]
        if not self.reseed_each_loop or self._fixed:
            return self._samples[(sample_index - self._loop_start) % n]
        if i < 0:  # went back before this repetition: start over
            self._render(0)
            self._loop_start = 0
            return self(sample_index)
        while i >= n:  # forward into later repetitions, one at a time
            self._loop_start += n
            self._render(self._loop_index + 1)
            n = len(self._samples)
            i = sample_index - self._loop_start
        return self._samples[i]
