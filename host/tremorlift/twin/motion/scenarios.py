"""Session plans for the motion generator: exercises, limb poses and the scenario catalogue.

A scenario builder turns a seed into a device-independent :class:`SessionPlan`: a timeline of limb
moves (each one "go to this pose of this exercise"), oscillations (walking, fidgeting), tremor
episodes, impacts and the ground-truth set/rep boundaries. :mod:`tremorlift.twin.motion.generator` renders
the plan for each worn sensor (placement, mount, asymmetry) into IMU signals.

Poses are 6-vectors ``[pivot_x_m, pivot_y_m, pivot_z_m, theta_rad, phi_rad, psi_rad]`` in a
world frame with x forward, y left, z up: the pivot is the proximal joint of the segment that
carries the sensor (elbow for the forearm, hip for the thigh, ankle for the shank), ``theta`` the
segment's angle in the sagittal plane measured from hanging straight down towards forward, ``phi``
the roll about the segment's long axis (pro/supination), ``psi`` the heading. Named poses never
set ``psi``: only walking turns the body.

Why one long module: it is a catalogue, each scenario a short builder over the same exercise
and pose tables; they read best side by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tremorlift.analysis import PLACEMENTS as PLACEMENTS  # the one list (the generator re-exports)

# Placements on the forearm segment (the wrist strap is its distal end): the hand holds the load.
HAND_PLACEMENTS = ("forearm", "wrist")

# Sensor offset from the pivot in the segment's "hanging" frame (segment along -z), metres:
# distance along the segment and the skin radius in front of the bone axis.
SEGMENT_LEVER_M = {"forearm": 0.20, "wrist": 0.25, "thigh": 0.22, "shank": 0.25}
SKIN_RADIUS_M = {"forearm": 0.035, "wrist": 0.028, "thigh": 0.075, "shank": 0.045}
# Elbow to the middle of the grip: the point that stays put in fixed-hand exercises.
GRIP_FROM_ELBOW_M = 0.33

# Rest pose (standing, arms hanging): pivot height and segment angle.
_REST_POSE = {
    "forearm": (0.0, 0.2, 1.05, 0.10, 0.0),
    "wrist": (0.0, 0.2, 1.05, 0.10, 0.0),
    "thigh": (0.0, 0.1, 0.90, 0.0, 0.0),
    "shank": (0.0, 0.1, 0.08, math.pi, 0.0),
}


def segment(placement: str) -> str:
    """The limb segment a placement sits on (the wrist strap is on the forearm)."""
    return "forearm" if placement in HAND_PLACEMENTS else placement


def rest_pose(placement: str, side_sign: float = 1.0) -> np.ndarray:
    x, y, z, th, ph = _REST_POSE[placement]
    return np.array([x, y * side_sign, z, th, ph, 0.0])


# ---------------------------------------------------------------------------------------------
# Exercises


@dataclass(frozen=True)
class Exercise:
    """Kinematic and fatigue parameters of one exercise (ranges are sampled per seed).

    Velocities refer to the exercise's reference point (bar for barbell lifts, hand for curls):
    they set the phase durations (duration = reference ROM / mean velocity); the ground truth
    reports the *sensor's* own vertical velocity, which differs by the limb geometry.
    """

    name: str
    kind: str  # "dynamic" | "hold"
    placements: tuple[str, ...]
    concentric_first: bool = False
    ref_rom_m: tuple[float, float] = (0.5, 0.6)
    v1_mps: tuple[float, float] = (0.6, 0.8)  # first-rep mean concentric velocity (fresh)
    mvt_mps: float = 0.3  # minimal velocity threshold: the last rep before failure
    decline_exp: tuple[float, float] = (1.5, 2.0)  # p of the velocity-loss curve
    eccentric_s: tuple[float, float] = (1.4, 2.2)
    turn_pause_s: tuple[float, float] = (0.0, 0.25)  # at the turnaround
    between_pause_s: tuple[float, float] = (0.6, 1.4)  # at the start pose between reps
    sticking: float = 0.0  # maximal sticking-region velocity dip near failure (fraction)
    sticking_at: float = 0.35  # where in the concentric phase the dip sits (0..1)
    racked: bool = False
    reps_to_failure: tuple[int, int] = (8, 12)
    tremor_load: float = 1.5  # tremor amplitude multiplier of the load (S11/S13: x1.5-3)
    tremor_mass_drop_hz: float = 0.8  # physiological frequency drop from the held mass
    # Direction (world, before the heading turn) in which the concentric phase moves the load:
    # truth velocities and ROM are the sensor's along it (up for lifts, down for pull-downs,
    # backwards for rows).
    concentric_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    # The hand holds a handle that stays put (pull-ups, push-ups): the forearm only tilts.
    fixed_hand: bool = False
    # Grip/strap vibration level of this exercise relative to the lifter's own (cable machines
    # and a hanging body shake the strap more than a free dumbbell).
    floor_factor: float = 1.0


_DYNAMIC_FIELDS = (
    "placements concentric_first ref_rom_m v1_mps mvt_mps decline_exp eccentric_s turn_pause_s "
    "between_pause_s sticking sticking_at racked reps_to_failure tremor_load tremor_mass_drop_hz "
    "floor_factor"
).split()
_F = ("forearm", "wrist")

# One row per exercise, columns as in _DYNAMIC_FIELDS (algorithms.md section 10.1 and 6.3).
# fmt: off
_DYNAMIC_TABLE: dict[str, tuple[object, ...]] = {
    #                 placements                          conc1  ref ROM m     V1 m/s        MVT   p           ecc s       turn s      between s   stick at   rack  N fail   load  mass Hz floor
    "squat":          (("thigh", "shank", *_F),           False, (0.50, 0.70), (0.60, 0.95), 0.31, (1.8, 2.5), (1.4, 2.2), (0.0, 0.25), (0.7, 1.5), 0.35, 0.40, True,  (8, 13),  2.0, 1.0, 0.8),
    "bench":          (_F,                                False, (0.35, 0.50), (0.50, 0.80), 0.17, (1.3, 1.8), (1.2, 2.0), (0.0, 0.30), (0.5, 1.2), 0.50, 0.30, True,  (8, 12),  1.8, 1.2, 0.8),
    "deadlift":       (("thigh", *_F),                    True,  (0.45, 0.60), (0.45, 0.60), 0.20, (1.0, 1.3), (1.0, 1.8), (0.3, 0.8),  (0.5, 1.3), 0.20, 0.30, False, (6, 10),  2.2, 1.0, 1.0),
    "overhead-press": (_F,                                True,  (0.45, 0.60), (0.50, 0.80), 0.19, (1.0, 1.4), (1.2, 1.8), (0.2, 0.6),  (0.3, 1.0), 0.30, 0.35, True,  (7, 11),  1.8, 1.0, 0.9),
    "curl":           (_F,                                True,  (0.50, 0.65), (0.50, 0.80), 0.25, (1.3, 1.8), (1.4, 2.2), (0.1, 0.5),  (0.2, 0.8), 0.20, 0.45, False, (10, 14), 1.6, 0.8, 0.8),
    "lunge":          (("thigh", *_F),                    False, (0.35, 0.50), (0.50, 0.80), 0.30, (1.5, 2.2), (1.0, 1.8), (0.0, 0.30), (0.8, 1.6), 0.20, 0.40, False, (10, 15), 1.5, 0.5, 0.6),
    "lat-pulldown":   (_F,                                True,  (0.40, 0.55), (0.45, 0.70), 0.25, (1.3, 1.8), (1.2, 2.0), (0.0, 0.40), (0.2, 0.8), 0.20, 0.40, False, (10, 15), 1.6, 0.8, 1.4),
    "cable-row":      (_F,                                True,  (0.35, 0.50), (0.45, 0.70), 0.25, (1.3, 1.8), (1.0, 1.8), (0.0, 0.40), (0.2, 0.8), 0.20, 0.40, False, (10, 15), 1.6, 0.8, 1.4),
    "pull-up":        (_F,                                True,  (0.35, 0.50), (0.40, 0.65), 0.23, (1.0, 1.5), (1.2, 2.0), (0.0, 0.50), (0.3, 1.2), 0.30, 0.40, False, (8, 13),  2.0, 1.0, 1.1),
    "push-up":        (_F,                                False, (0.25, 0.35), (0.45, 0.75), 0.25, (1.3, 1.8), (0.8, 1.4), (0.0, 0.20), (0.0, 0.5), 0.20, 0.40, False, (15, 25), 1.5, 0.5, 0.9),
}
# Fixed-hand exercises and load directions that are not "up".
_DYNAMIC_EXTRA: dict[str, dict[str, object]] = {
    "lat-pulldown": {"concentric_axis": (0.0, 0.0, -1.0)},
    "cable-row": {"concentric_axis": (-1.0, 0.0, 0.0)},
    "pull-up": {"fixed_hand": True},
    "push-up": {"fixed_hand": True},
}
# fmt: on

EXERCISES: dict[str, Exercise] = {
    **{
        name: Exercise(
            name,
            "dynamic",
            **dict(zip(_DYNAMIC_FIELDS, row, strict=True)),  # type: ignore[arg-type]
            **_DYNAMIC_EXTRA.get(name, {}),  # type: ignore[arg-type]
        )
        for name, row in _DYNAMIC_TABLE.items()
    },
    **{
        e.name: e
        for e in (
            Exercise("wall-sit", "hold", ("thigh",), tremor_load=1.8, tremor_mass_drop_hz=0.5),
            Exercise("plank", "hold", ("thigh",), tremor_load=1.6, tremor_mass_drop_hz=0.5),
            Exercise("curl-hold", "hold", _F, tremor_load=1.8, tremor_mass_drop_hz=0.8),
            Exercise(
                "single-leg-balance", "hold", ("shank",), tremor_load=1.2, tremor_mass_drop_hz=0.0
            ),
            Exercise("seated", "hold", _F, tremor_load=1.0, tremor_mass_drop_hz=0.0),
        )
    },
}


@dataclass(frozen=True)
class Body:
    """One worn sensor's limb: placement, side and the per-device geometry scale (asymmetry)."""

    placement: str
    side_sign: float = 1.0  # +1 left limb (y > 0), -1 right limb
    rom_scale: float = 1.0


def exercise_poses(
    body: Body, exercise: str, ref_rom_m: float, rep_angle_rad: float
) -> dict[str, np.ndarray]:
    """Absolute poses ``setup`` (before unrack / after rerack), ``start`` and ``turn`` (turnaround).

    ``ref_rom_m`` and ``rep_angle_rad`` are drawn per set by the builder (same for both limbs);
    ``body.rom_scale`` makes one limb move slightly more than the other.
    """
    base = rest_pose(body.placement, body.side_sign)
    rom = ref_rom_m * body.rom_scale
    ang = rep_angle_rad * body.rom_scale

    def p(
        dx: float = 0.0,
        dz: float = 0.0,
        th: float | None = None,
        ph: float | None = None,
        ref: np.ndarray | None = None,
    ) -> np.ndarray:
        q = (base if ref is None else ref).copy()
        q[0] += dx
        q[2] += dz
        if th is not None:
            q[3] = th
        if ph is not None:
            q[4] = ph
        return q

    pl = segment(body.placement)
    if pl == "forearm":
        if exercise == "bench":
            setup = p(0.0, -0.35, math.pi - 0.05)
            start = p(0.12, -0.35, math.pi - 0.05)
            turn = p(0.03, -rom, math.pi - 0.05 + ang, 0.05, ref=start)
        elif exercise == "squat":
            # Hands on the bar behind the neck: forearm points up and back (theta past -pi/2).
            setup = p(-0.10, 0.45, 0.5 - math.pi, -0.8)
            start = p(-0.05, 0.06, ref=setup)
            turn = p(0.08, -rom, 0.5 - math.pi - ang, ref=start)
        elif exercise == "overhead-press":
            setup = p(0.05, 0.10, math.pi - 0.15, -0.6)
            start = p(0.0, 0.05, ref=setup)
            turn = p(-0.02, rom, math.pi - 0.15 + ang, ref=start)
        elif exercise == "deadlift":
            setup = p(0.10, -rom - 0.02, 0.05, -0.9)
            start = setup.copy()
            turn = p(-0.05, rom, 0.05 + ang, ref=start)
        elif exercise == "curl":
            setup = p(0.0, 0.0, 0.15, 0.0)
            start = setup.copy()
            turn = p(0.03, 0.02, 0.15 + ang, 0.30)
        elif exercise == "curl-hold":
            setup = p(0.02, 0.0, math.pi / 2, 0.2)
            start, turn = setup.copy(), setup.copy()
        elif exercise == "seated":
            setup = p(0.25, -0.45, math.pi / 2 + 0.1, -1.2)
            start, turn = setup.copy(), setup.copy()
        elif exercise == "lunge":
            # Bodyweight lunge, arms hanging: the elbow drops with the hips, the arm swings a bit.
            setup = base.copy()
            start = base.copy()
            turn = p(-0.03, -0.9 * rom, base[3] + ang)
        elif exercise == "lat-pulldown":
            # Seated, hands on the bar overhead: the forearm points up and stays nearly vertical
            # while the hands travel down with the bar.
            setup = p(0.08, 0.50, math.pi - 0.12, -1.2)
            start = setup.copy()
            turn = p(0.04, 0.50 - rom, math.pi - 0.12 + ang, -1.3)
        elif exercise == "cable-row":
            # Seated, handle in front at hip height: the forearm points forward, the hands travel
            # back to the abdomen.
            setup = p(0.40, -0.45, math.pi / 2 - 0.1, -1.4)
            start = setup.copy()
            turn = p(0.40 - rom, -0.43, math.pi / 2 - 0.1 + ang, -1.3)
        elif exercise in ("pull-up", "push-up"):
            # The hand holds a bar (pull-up: overhead; push-up: on the floor) and stays put; the
            # elbow swings round it, so the forearm tilts and the wrist barely translates.
            if exercise == "pull-up":
                grip = base[:3] + np.array([0.05, 0.0, 0.95])
                th0, th1, ph = math.pi - 0.08, math.pi - 0.08 - ang, -1.3
            else:
                grip = base[:3] + np.array([0.55, 0.0, -1.05])
                th0, th1, ph = 0.10, 0.10 - ang, -1.5

            def on_grip(th: float) -> np.ndarray:
                q = base.copy()
                q[:3] = grip - GRIP_FROM_ELBOW_M * np.array([math.sin(th), 0.0, -math.cos(th)])
                q[3], q[4] = th, ph
                return q

            setup = on_grip(th0)
            start = setup.copy()
            turn = on_grip(th1)
        else:
            raise ValueError(f"{exercise} with a forearm sensor is not modelled")
    elif pl == "thigh":
        if exercise == "squat":
            setup = p(0.0, -0.05)
            start = base.copy()
            turn = p(-0.25 * rom / 0.6, -0.85 * rom, ang)
        elif exercise == "deadlift":
            setup = p(-0.30, -0.75 * rom, ang)
            start = setup.copy()
            turn = p(-0.02, -0.01, 0.05)
        elif exercise == "lunge":
            setup = base.copy()
            start = base.copy()
            turn = p(-0.05, -rom, ang)
        elif exercise == "wall-sit":
            setup = p(-0.15, -0.45, math.pi / 2 - 0.05)
            start, turn = setup.copy(), setup.copy()
        elif exercise == "plank":
            setup = p(-0.50, -0.55, -math.pi / 2 + 0.1)
            start, turn = setup.copy(), setup.copy()
        else:
            raise ValueError(f"{exercise} with a thigh sensor is not modelled")
    elif pl == "shank":
        if exercise == "squat":
            setup = base.copy()
            start = base.copy()
            turn = p(th=math.pi - 0.45 * ang)
        elif exercise == "single-leg-balance":
            setup = p(th=math.pi - 0.05)
            start, turn = setup.copy(), setup.copy()
        else:
            raise ValueError(f"{exercise} with a shank sensor is not modelled")
    else:
        raise ValueError(f"unknown placement {pl}")
    return {"setup": setup, "start": start, "turn": turn}


# Segment angle change of one rep (radians), drawn per set: thigh/shank flexion in squats and
# lunges, elbow flexion in curls, a small forearm tilt in the non-rotating presses and in the
# fixed-hand exercises (about 15-30 degrees). The wrist placement uses the forearm's values.
_REP_ANGLE_RAD: dict[tuple[str, str], tuple[float, float]] = {
    ("lunge", "forearm"): (0.05, 0.20),
    ("lat-pulldown", "forearm"): (0.25, 0.50),
    ("cable-row", "forearm"): (0.25, 0.55),
    ("pull-up", "forearm"): (0.25, 0.50),
    ("push-up", "forearm"): (0.20, 0.45),
    ("squat", "thigh"): (1.20, 1.45),
    ("squat", "shank"): (1.10, 1.45),  # scaled by 0.45 in exercise_poses -> 0.5-0.65 rad ankle
    ("squat", "forearm"): (0.04, 0.10),
    ("bench", "forearm"): (0.08, 0.16),
    ("overhead-press", "forearm"): (0.08, 0.18),
    ("deadlift", "forearm"): (0.02, 0.06),
    ("deadlift", "thigh"): (0.85, 1.05),
    ("curl", "forearm"): (1.90, 2.20),
    ("lunge", "thigh"): (1.10, 1.35),
}


# ---------------------------------------------------------------------------------------------
# Session plan


@dataclass
class Move:
    """Go smoothly to a named pose (or by ``delta``) over ``dur_s`` with a minimum-jerk profile."""

    t0_s: float
    dur_s: float
    exercise: str | None = None
    pose: str | None = None
    depth: float = 1.0  # fraction of the start->turn path (rep-to-rep ROM jitter)
    delta: np.ndarray | None = None  # relative move (fidgets, turns) instead of a named pose
    dip: float = 0.0  # sticking-region velocity dip (fraction of the profile)
    dip_at: float = 0.35
    ref_rom_m: float = 0.0
    rep_angle_rad: float = 0.0


@dataclass
class Oscillation:
    """Windowed periodic motion (walking in place/arm swing) added on top of the moves."""

    t0_s: float
    dur_s: float
    kind: str  # "walk" | "shake"
    freq_hz: float
    amp_scale: float = 1.0  # walk: times the placement's swing; shake: amplitude in rad


@dataclass
class TremorEpisode:
    """A narrow-band oscillation of the limb with a time-varying frequency and amplitude."""

    t0_s: float
    dur_s: float
    cause: str  # "fatigue" | "instability" | "rest" | "other"
    f_start_hz: float
    f_end_hz: float
    rms_start_mps2: float
    rms_end_mps2: float
    growth_exp: float = 1.0  # envelope shape: rms_start + (rms_end - rms_start) * tau**growth_exp
    wander_hz: float = 0.3  # std of the frequency wander (Ornstein-Uhlenbeck)
    am_depth: float = 0.15  # std of the slow amplitude modulation (fraction)
    report: bool = True  # False for the ever-present baseline physiological tremor
    fade_s: float = 0.4


@dataclass
class FloorSpan:
    """Grip and strap vibration while the hand holds a load: broadband, centred on the strap's
    resonance, always there (not a tremor episode, never reported)."""

    t0_s: float
    dur_s: float
    rms_mps2: float
    fade_s: float = 0.5


@dataclass
class RepTruth:
    start_s: float
    end_s: float
    concentric_start_s: float
    concentric_end_s: float


@dataclass
class SetTruth:
    kind: str
    exercise: str
    start_s: float
    end_s: float
    reps: list[RepTruth] = field(default_factory=list)
    concentric_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)


@dataclass
class SessionPlan:
    name: str
    duration_s: float
    placement: str
    moves: list[Move] = field(default_factory=list)
    oscillations: list[Oscillation] = field(default_factory=list)
    tremors: list[TremorEpisode] = field(default_factory=list)
    sets: list[SetTruth] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    impacts: list[tuple[float, float]] = field(default_factory=list)  # (t_s, peak_mps2)
    floors: list[FloorSpan] = field(default_factory=list)
    devices: list[tuple[str, Body]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Builder


class Builder:
    """Appends timed blocks to a :class:`SessionPlan`, drawing every free parameter from ``rng``."""

    def __init__(
        self, name: str, placement: str, rng: np.random.Generator, *, short: bool = False
    ) -> None:
        self.rng = rng
        self.short = short
        self.t_s = 0.0
        self.plan = SessionPlan(name, 0.0, placement)
        self.placement = placement
        # Person-level traits drawn once per seed.
        self.tremor_f0_hz = float(rng.uniform(8.6, 11.2))
        # RMS; times the load factor (<= 2.2) it stays below the 0.1 m/s^2 span threshold.
        self.tremor_base_mps2 = float(rng.uniform(0.02, 0.035))
        self.tremor_gain = float(rng.uniform(2.5, 5.0))  # k: fatigue amplitude multiplier
        self.tremor_exp = float(rng.uniform(1.5, 2.5))  # gamma of the fatigue growth
        self.fatigue_carry = 0.0  # set-to-set residual fatigue (0..1)
        self.current_exercise: str | None = None
        self.lifter: dict[str, tuple[float, float, float, float, float]] = {}
        self.speed_scale = float(
            rng.uniform(0.9, 1.1)
        )  # this lifter's velocity relative to typical
        # Grip/strap vibration of a hand holding a load (3-15 Hz; the real wrist sets: about
        # 0.35 m/s^2 RMS in quiet moments near a set, 0.6-1.1 during it, more with cable
        # machines); lognormal per lifter.
        self.grip_floor_mps2 = float(np.clip(rng.lognormal(math.log(0.85), 0.30), 0.3, 1.8))

    # -- primitives ---------------------------------------------------------------------------
    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def move(self, dur_s: float, exercise: str | None, pose: str | None, **kw: object) -> None:
        self.plan.moves.append(Move(self.t_s, dur_s, exercise, pose, **kw))  # type: ignore[arg-type]
        self.t_s += dur_s

    def wait(self, dur_s: float) -> None:
        self.t_s += max(0.0, dur_s)

    def event(self, kind: str, t_s: float | None = None) -> None:
        self.plan.events.append((self.t_s if t_s is None else t_s, kind))

    def go_rest(self, dur_s: float | None = None) -> None:
        self.move(dur_s or self.u(1.5, 2.5), None, "rest")
        self.current_exercise = None

    def fidget(self) -> None:
        """A short small movement that is not a rep: shake out, adjust grip, touch the face."""
        self.event("fidget")
        d = np.zeros(6)
        d[0] = self.u(-0.04, 0.04)
        d[2] = self.u(-0.06, 0.06)
        d[3] = self.u(-0.25, 0.25)
        d[4] = self.u(-0.4, 0.4)
        if self.rng.random() < 0.3:
            # Bigger: wipe the face, fix the strap, check the phone.
            d[2] *= 4.0
            d[3] *= 3.0
        out_s = self.u(0.5, 1.2)
        self.move(out_s, None, None, delta=d)
        if self.rng.random() < 0.35:
            # Shake the hand/arm loose: a few fast 2.5-4.5 Hz swings.
            dur = self.u(1.0, 2.5)
            self.plan.oscillations.append(
                Oscillation(self.t_s, dur, "shake", self.u(2.5, 4.5), self.u(0.08, 0.25))
            )
            self.wait(dur)
        self.wait(self.u(0.2, 1.0))
        self.move(self.u(0.5, 1.2), None, None, delta=-d)

    def walk(self, dur_s: float) -> None:
        self.event("walk")
        f = self.u(0.8, 1.0)  # stride frequency
        self.plan.oscillations.append(Oscillation(self.t_s, dur_s, "walk", f))
        # Turn around somewhere along the way (heading only; named poses keep psi).
        turn = np.zeros(6)
        turn[5] = self.u(-math.pi, math.pi)
        t_turn = self.u(0.8, 1.5)
        self.plan.moves.append(Move(self.t_s + 0.4 * dur_s, t_turn, None, None, delta=turn))
        self.wait(dur_s)

    def rest(self, dur_s: float, *, allow_walk: bool = True) -> None:
        """Rest between sets at the rest pose with fidgets and sometimes a short walk."""
        end = self.t_s + dur_s
        self.wait(self.u(1.0, 3.0))
        if allow_walk and dur_s > 25 and self.rng.random() < 0.7:
            self.walk(min(self.u(6.0, 15.0), dur_s * 0.3))
        while end - self.t_s > 8.0:
            self.wait(self.u(2.0, min(12.0, end - self.t_s - 5.0)))
            if end - self.t_s > 5.0:
                self.fidget()
        self.t_s = max(self.t_s, end)
        # Residual fatigue halves over a rest (tremor carry-over is modest after a normal set).
        self.fatigue_carry *= 0.5

    def rest_length_s(self, lo: float, hi: float) -> float:
        if self.short:
            return self.u(8.0, 14.0)
        return self.u(lo, hi)

    # -- sets ---------------------------------------------------------------------------------
    def dynamic_set(
        self, exercise: str, n_reps: int | None, *, set_index: int = 0, intensity: float = 1.0
    ) -> None:
        """One set: ``n_reps`` reps, or to technical failure if ``None``.

        Velocity of rep n (1-based) follows V_n = V1 (1 - VL_fail ((n-1)/(N-1))**p) (1 + eps),
        VL_fail = 1 - MVT/V1 (algorithms.md section 10.1), with N the reps to failure.
        """
        ex = EXERCISES[exercise]
        rng = self.rng
        if exercise not in self.lifter:
            # This lifter's range of motion, joint excursion, fresh first-rep velocity, reps to
            # failure and velocity-loss shape for the day's load: drawn once per exercise.
            self.lifter[exercise] = (
                self.u(*ex.ref_rom_m),
                self.u(*_REP_ANGLE_RAD[(exercise, segment(self.placement))]),
                self.u(*ex.v1_mps) * self.speed_scale,
                self.u(*ex.reps_to_failure),
                self.u(*ex.decline_exp),
            )
        rom, angle, v1_fresh, n_fail_fresh, p = self.lifter[exercise]
        # intensity > 1: a lighter load (faster, more reps in reserve); set-to-set fatigue slows
        # the first rep by ~3 % per set and shortens the reps to failure.
        v1 = v1_fresh * intensity * (1.0 - 0.03 * set_index - 0.1 * self.fatigue_carry)
        v1 = max(v1, ex.mvt_mps + 0.15)
        n_fail = max(
            3,
            round(
                n_fail_fresh
                * intensity**3
                * (1.0 - 0.08 * set_index)
                * (1.0 - 0.3 * self.fatigue_carry)
            ),
        )
        n = n_fail if n_reps is None else min(n_reps, n_fail)
        vl_fail = 1.0 - ex.mvt_mps / v1
        ecc_s = self.u(*ex.eccentric_s)
        kw = {"ref_rom_m": rom, "rep_angle_rad": angle}

        # Walk to the station and set up.
        setup_t0 = self.t_s
        if self.current_exercise != exercise:
            if ex.racked:
                self.move(self.u(1.5, 2.5), exercise, "setup", **kw)
            elif exercise in ("deadlift",):
                self.move(self.u(2.0, 3.0), exercise, "setup", **kw)  # bend down to the bar
            else:
                self.move(self.u(1.0, 1.8), exercise, "setup", **kw)
            self.current_exercise = exercise
        self.wait(self.u(0.8, 2.0))
        if ex.racked:
            self.event("unrack")
            self.plan.impacts.append((self.t_s + 0.05, self.u(5.0, 12.0)))
            self.move(self.u(0.7, 1.1), exercise, "start", **kw)
            self.wait(self.u(1.0, 2.0))

        set_truth = SetTruth(
            "dynamic", exercise, self.t_s, self.t_s, concentric_axis=ex.concentric_axis
        )
        fatigue0 = self.fatigue_carry
        # Continuity: in many real sets the next rep follows with no still moment. Per set, the
        # chance that a rep boundary has a pause: none (half of the sets), some, or most (the real wrist sets: median share 0.28, quartiles 0-0.64).
        style = rng.random()
        if style < 0.5:
            p_pause = 0.0
        elif style < 0.8:
            p_pause = self.u(0.1, 0.5)
        else:
            p_pause = self.u(0.5, 1.0)
        p_turn = self.u(0.0, 0.5)  # and at the turnaround
        for i in range(n):
            frac = i / (n_fail - 1) if n_fail > 1 else 1.0
            v = v1 * (1.0 - vl_fail * frac**p) * (1.0 + float(rng.normal(0.0, 0.03)))
            v = max(v, 0.6 * ex.mvt_mps)
            depth = float(np.clip(rng.normal(1.0, 0.03), 0.92, 1.06))
            conc_s = rom * depth / v
            # Sticking region appears as the rep slows towards the MVT.
            slow = float(np.clip((v1 - v) / max(v1 - ex.mvt_mps, 1e-3), 0.0, 1.0))
            dip = ex.sticking * slow**1.5
            ecc = ecc_s * float(rng.uniform(0.95, 1.08))
            rep_start = self.t_s
            if ex.concentric_first:
                conc_start = self.t_s
                self.move(
                    conc_s, exercise, "turn", depth=depth, dip=dip, dip_at=ex.sticking_at, **kw
                )
                conc_end = self.t_s
                if rng.random() < p_turn:
                    self.wait(self.u(*ex.turn_pause_s) * (1.0 + frac))
                self.move(ecc, exercise, "start", **kw)
            else:
                self.move(ecc, exercise, "turn", depth=depth, **kw)
                if rng.random() < p_turn:
                    self.wait(self.u(*ex.turn_pause_s))
                conc_start = self.t_s
                self.move(conc_s, exercise, "start", dip=dip, dip_at=ex.sticking_at, **kw)
                conc_end = self.t_s
            set_truth.reps.append(RepTruth(rep_start, self.t_s, conc_start, conc_end))
            if i < n - 1:
                if rng.random() < p_pause + 0.5 * frac**3:
                    # Lockout/dead-stop pauses grow towards failure (breathing between hard reps).
                    self.wait(self.u(*ex.between_pause_s) * (1.0 + 1.2 * frac**2))
                else:
                    self.wait(self.u(0.0, 0.08))  # straight into the next rep
        set_truth.end_s = self.t_s
        self.plan.sets.append(set_truth)
        fatigue_end = float(np.clip(n / n_fail, 0.0, 1.0))
        self._fatigue_tremor(ex, set_truth.start_s, set_truth.end_s, fatigue0, fatigue_end)
        self.fatigue_carry = max(self.fatigue_carry, 0.5 * fatigue_end)

        self.wait(self.u(0.5, 1.5))
        if ex.racked:
            self.event("rerack")
            self.move(self.u(0.7, 1.1), exercise, "setup", **kw)
            self.plan.impacts.append((self.t_s - 0.02, self.u(15.0, 45.0)))
            self.wait(self.u(0.5, 1.5))
        self._grip_floor(setup_t0, self.t_s, ex.floor_factor)

    def _grip_floor(self, t0: float, t1: float, factor: float) -> None:
        """Grip/strap vibration while a hand-worn sensor's hand holds the load (per set level)."""
        if self.placement not in HAND_PLACEMENTS or t1 - t0 < 1.0:
            return
        level = self.grip_floor_mps2 * factor * float(np.exp(self.rng.normal(0.0, 0.2)))
        self.plan.floors.append(FloorSpan(max(0.0, t0), t1 - max(0.0, t0), level))

    def hold(self, exercise: str, dur_s: float, *, to_failure: bool = True) -> None:
        """An isometric hold; tremor grows with time under load, a 4-6 Hz component emerges late."""
        ex = EXERCISES[exercise]
        if self.short:
            dur_s = min(dur_s, self.u(15.0, 25.0))
        self.move(self.u(1.5, 3.0), exercise, "setup")
        self.current_exercise = exercise
        self.wait(self.u(0.3, 0.8))
        start = self.t_s
        self.wait(dur_s)
        self.plan.sets.append(SetTruth("hold", exercise, start, self.t_s))
        if exercise == "curl-hold":
            self._grip_floor(start, self.t_s, 0.8)
        f_end = 1.0 if to_failure else 0.6
        if exercise == "single-leg-balance":
            # Postural sway dominates: 1-3 Hz corrections growing as the ankle tires.
            self.plan.tremors.append(
                TremorEpisode(
                    start,
                    dur_s,
                    "instability",
                    self.u(1.5, 2.6),
                    self.u(1.3, 2.2),
                    self.u(0.12, 0.2),
                    self.u(0.3, 0.5),
                    1.2,
                    wander_hz=0.15,
                    am_depth=0.3,
                )
            )
            self._fatigue_tremor(ex, start, self.t_s, self.fatigue_carry, 0.5)
        else:
            self._fatigue_tremor(ex, start, self.t_s, self.fatigue_carry, f_end)
            # Mild sway below the span threshold: holds are not perfectly still.
            self.plan.tremors.append(
                TremorEpisode(
                    start,
                    dur_s,
                    "instability",
                    self.u(1.2, 2.5),
                    self.u(1.2, 2.5),
                    0.02,
                    self.u(0.03, 0.06),
                    1.0,
                    wander_hz=0.15,
                    report=False,
                )
            )
            if to_failure and dur_s >= 15:
                # Slow 4-6 Hz tremor emerging late in a fatiguing hold (Lippold, S9).
                t_on = start + dur_s * self.u(0.5, 0.65)
                peak = self._tremor_rms(ex, f_end) * self.u(0.5, 0.8)
                self.plan.tremors.append(
                    TremorEpisode(
                        t_on,
                        self.t_s - t_on,
                        "fatigue",
                        self.u(5.0, 5.8),
                        self.u(4.5, 5.2),
                        0.01,
                        peak,
                        1.3,
                        wander_hz=0.2,
                    )
                )
        self.fatigue_carry = max(self.fatigue_carry, 0.5 * f_end)
        self.wait(self.u(0.2, 0.6))

    def _tremor_rms(self, ex: Exercise, fatigue: float) -> float:
        """A(F) = A0 * L * (1 + (k - 1) * F**gamma), algorithms.md section 10.2."""
        return (
            self.tremor_base_mps2
            * ex.tremor_load
            * (1.0 + (self.tremor_gain - 1.0) * fatigue**self.tremor_exp)
        )

    def _fatigue_tremor(self, ex: Exercise, t0: float, t1: float, f0: float, f1: float) -> None:
        f_start = self.tremor_f0_hz - ex.tremor_mass_drop_hz * self.u(0.6, 1.2)
        f_end = f_start - self.u(0.3, 0.8) * f1  # slows with fatigue
        self.plan.tremors.append(
            TremorEpisode(
                t0,
                t1 - t0,
                "fatigue",
                f_start,
                f_end,
                self._tremor_rms(ex, f0),
                self._tremor_rms(ex, f1),
                self.tremor_exp,
                wander_hz=0.25,
            )
        )

    def rest_tremor_block(self, dur_s: float) -> None:
        """Seated rest with Parkinsonian-like 4-6 Hz tremor that pauses during voluntary moves."""
        self.move(self.u(1.5, 2.5), "seated", "setup")
        self.current_exercise = "seated"
        end = self.t_s + dur_s
        f = self.u(4.2, 5.8)
        amp = self.u(0.3, 1.2)
        while end - self.t_s > 6.0:
            ep = min(self.u(10.0, 30.0), end - self.t_s - 2.0)
            self.plan.tremors.append(
                TremorEpisode(
                    self.t_s,
                    ep,
                    "rest",
                    f + self.u(-0.2, 0.2),
                    f + self.u(-0.2, 0.2),
                    amp * self.u(0.7, 1.0),
                    amp * self.u(0.9, 1.5),
                    1.0,
                    wander_hz=0.2,
                    am_depth=0.3,
                    fade_s=1.5,
                )
            )
            self.wait(ep)
            if end - self.t_s > 6.0:
                # Voluntary movement suppresses rest tremor; it re-emerges a few seconds later.
                self.fidget()
                self.wait(self.u(2.0, 5.0))
        self.t_s = max(self.t_s, end)

    def finish(self, tail_s: float = 3.0) -> SessionPlan:
        if self.current_exercise is not None:
            self.go_rest()
        self.wait(tail_s)
        self.plan.duration_s = self.t_s
        # The ever-present physiological tremor (below the span threshold; never reported). During
        # sets and holds the same oscillator continues as the set's own (louder, slower) tremor
        # episode, so the baseline is laid only into the gaps, cross-fading at the edges.
        busy = sorted(
            (e.t0_s, e.t0_s + e.dur_s)
            for e in self.plan.tremors
            if e.cause == "fatigue" and e.f_start_hz > 7.0
        )
        t = 0.0
        for b0, b1 in busy + [(self.t_s, self.t_s)]:
            if b0 - t > 1.0:
                self.plan.tremors.append(
                    TremorEpisode(
                        max(0.0, t - 0.4),
                        min(self.t_s, b0 + 0.4) - max(0.0, t - 0.4),
                        "other",
                        self.tremor_f0_hz,
                        self.tremor_f0_hz,
                        self.tremor_base_mps2,
                        self.tremor_base_mps2,
                        1.0,
                        wander_hz=0.35,
                        report=False,
                    )
                )
            t = max(t, b1)
        return self.plan


# ---------------------------------------------------------------------------------------------
# Scenario catalogue


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    description: str
    placement: str
    build: Callable[[Builder], None]
    devices: tuple[tuple[str, float], ...] = (("main", 1.0),)  # (device name, side sign)


def _sets(
    b: Builder,
    exercise: str,
    n_sets: int,
    reps: int | None,
    rest_s: tuple[float, float],
    **kw: float,
) -> None:
    n_sets = min(n_sets, 2) if b.short else n_sets
    for k in range(n_sets):
        b.dynamic_set(exercise, reps, set_index=k, **kw)
        if k < n_sets - 1:
            b.go_rest()
            b.rest(b.rest_length_s(*rest_s))


def _start(b: Builder) -> None:
    b.wait(b.u(3.0, 6.0))


def _squat_5x5(b: Builder) -> None:
    _start(b)
    _sets(b, "squat", 5, 5, (30.0, 55.0))


def _bench_to_failure(b: Builder) -> None:
    _start(b)
    b.dynamic_set("bench", 5, intensity=1.05)  # warm-up set
    b.go_rest()
    b.rest(b.rest_length_s(40.0, 70.0))
    b.dynamic_set("bench", None, set_index=1)


def _curl_3x10(b: Builder) -> None:
    _start(b)
    _sets(b, "curl", 3, 10, (35.0, 60.0))


def _wall_sit(b: Builder) -> None:
    _start(b)
    b.hold("wall-sit", b.u(45.0, 80.0))
    b.rest(b.rest_length_s(30.0, 45.0), allow_walk=False)
    b.hold("wall-sit", b.u(30.0, 60.0))


def _plank(b: Builder) -> None:
    _start(b)
    b.hold("plank", b.u(40.0, 75.0))
    b.go_rest()
    b.rest(b.rest_length_s(30.0, 45.0), allow_walk=False)
    b.hold("plank", b.u(30.0, 55.0))


def _single_leg_balance(b: Builder) -> None:
    _start(b)
    n = 2 if b.short else 3
    for k in range(n):
        b.hold("single-leg-balance", b.u(25.0, 45.0))
        b.go_rest()
        if k < n - 1:
            b.rest(b.rest_length_s(15.0, 25.0), allow_walk=False)


def _rest_tremor(b: Builder) -> None:
    _start(b)
    b.rest_tremor_block(b.u(30.0, 45.0) if b.short else b.u(90.0, 150.0))
    b.go_rest()
    b.wait(b.u(5.0, 10.0))
    # A light set: no fatigue tremor, and rest tremor stays away while moving.
    b.dynamic_set("curl", 8, intensity=1.1)


def _two_sensors(b: Builder) -> None:
    _start(b)
    _sets(b, "squat", 3, 6, (30.0, 50.0))


def _deadlift_3x5(b: Builder) -> None:
    _start(b)
    n = 2 if b.short else 3
    for k in range(n):
        b.dynamic_set("deadlift", 5, set_index=k)
        b.event("fidget")  # stand up without the bar: a slow move, not a rep
        b.go_rest(b.u(2.0, 3.0))
        if k < n - 1:
            b.rest(b.rest_length_s(40.0, 70.0))


def _lunge(b: Builder) -> None:
    _start(b)
    _sets(b, "lunge", 3, int(b.u(8, 12)), (30.0, 50.0))


def _overhead_press(b: Builder) -> None:
    _start(b)
    _sets(b, "overhead-press", 3, int(b.u(5, 8)), (40.0, 70.0))


def _squat_forearm(b: Builder) -> None:
    _start(b)
    _sets(b, "squat", 3, 5, (35.0, 55.0))


def _mixed_workout(b: Builder) -> None:
    _start(b)
    order = ["bench", "curl", "overhead-press"]
    b.rng.shuffle(order)
    doubled = int(b.rng.integers(0, 3))
    for j, ex in enumerate(order):
        n_sets = 2 if (j == doubled and not b.short) else 1
        for k in range(n_sets):
            b.dynamic_set(
                ex,
                None if (k == n_sets - 1 and b.rng.random() < 0.4) else int(b.u(5, 9)),
                set_index=k,
            )
            b.go_rest()
            b.rest(b.rest_length_s(18.0, 28.0))
        if j == 1:
            b.hold("curl-hold", b.u(25.0, 45.0))
            b.go_rest()
            b.rest(b.rest_length_s(15.0, 25.0))


def _lat_pulldown(b: Builder) -> None:
    _start(b)
    _sets(b, "lat-pulldown", 3, int(b.u(10, 13)), (45.0, 75.0))


def _cable_row(b: Builder) -> None:
    _start(b)
    _sets(b, "cable-row", 3, int(b.u(10, 15)), (45.0, 75.0))


def _pull_up(b: Builder) -> None:
    _start(b)
    _sets(b, "pull-up", 3, int(b.u(8, 12)), (60.0, 90.0))


def _push_up(b: Builder) -> None:
    _start(b)
    _sets(b, "push-up", 2, int(b.u(15, 22)), (40.0, 70.0))


def _bodyweight_lunge(b: Builder) -> None:
    _start(b)
    # Quick alternating bodyweight lunges, about 1.6-2 s each with no stop between them.
    n_sets = 1 if b.short else 2
    for k in range(n_sets):
        b.dynamic_set("lunge", 20 if not b.short else 12, set_index=k, intensity=1.45)
        if k < n_sets - 1:
            b.go_rest()
            b.rest(b.rest_length_s(30.0, 50.0))


def _demo(b: Builder) -> None:
    # A lifter whose tremor clearly rises with fatigue, so a short run shows every feature.
    b.tremor_base_mps2 = max(b.tremor_base_mps2, 0.03)
    b.tremor_gain = max(b.tremor_gain, 4.0)
    b.wait(b.u(2.0, 3.0))
    b.dynamic_set("bench", 3, intensity=1.05)
    b.go_rest()
    b.rest(b.u(6.0, 8.0), allow_walk=False)
    b.dynamic_set("bench", 6, set_index=1, intensity=0.8)
    b.go_rest()
    b.wait(b.u(2.0, 3.0))
    b.hold("curl-hold", b.u(14.0, 16.0))


SCENARIOS: dict[str, ScenarioSpec] = {
    s.name: s
    for s in (
        ScenarioSpec(
            "squat-5x5", "back squat 5x5, thigh sensor, 30-55 s rests", "thigh", _squat_5x5
        ),
        ScenarioSpec(
            "bench-to-failure",
            "bench press warm-up set + a set to failure, forearm sensor",
            "forearm",
            _bench_to_failure,
        ),
        ScenarioSpec(
            "curl-3x10", "dumbbell curl 3x10, forearm sensor (rotating lift)", "forearm", _curl_3x10
        ),
        ScenarioSpec(
            "wall-sit", "two wall-sit holds to near failure, thigh sensor", "thigh", _wall_sit
        ),
        ScenarioSpec(
            "single-leg-balance",
            "single-leg stance holds with 1-3 Hz sway, shank sensor",
            "shank",
            _single_leg_balance,
        ),
        ScenarioSpec(
            "rest-tremor",
            "seated 4-6 Hz rest tremor episodes, then a light curl set, forearm",
            "forearm",
            _rest_tremor,
        ),
        ScenarioSpec(
            "two-sensors",
            "squat 3x6 with left and right thigh sensors (mild asymmetry)",
            "thigh",
            _two_sensors,
            (("left", 1.0), ("right", -1.0)),
        ),
        ScenarioSpec(
            "deadlift-3x5",
            "deadlift 3x5 from the floor, thigh sensor (concentric first)",
            "thigh",
            _deadlift_3x5,
        ),
        ScenarioSpec("lunge", "reverse lunges 3 sets, front-leg thigh sensor", "thigh", _lunge),
        ScenarioSpec(
            "overhead-press",
            "standing press 3 sets, forearm sensor (non-rotating)",
            "forearm",
            _overhead_press,
        ),
        ScenarioSpec(
            "squat-forearm",
            "back squat 3x5 with a forearm sensor (non-rotating)",
            "forearm",
            _squat_forearm,
        ),
        ScenarioSpec(
            "mixed-workout",
            "bench, curl and press sets plus an isometric curl hold, forearm",
            "forearm",
            _mixed_workout,
        ),
        ScenarioSpec("plank", "two plank holds, thigh sensor", "thigh", _plank),
        ScenarioSpec(
            "lat-pulldown",
            "lat pull-down 3 sets, wrist sensor (hands travel with the bar, forearm upright)",
            "wrist",
            _lat_pulldown,
        ),
        ScenarioSpec(
            "cable-row",
            "seated cable row 3 sets, wrist sensor (forearm forward, hands travel back)",
            "wrist",
            _cable_row,
        ),
        ScenarioSpec(
            "pull-up",
            "assisted pull-ups 3 sets, wrist sensor (hands fixed on the bar, forearm tilts)",
            "wrist",
            _pull_up,
        ),
        ScenarioSpec(
            "push-up",
            "push-ups 2 sets, wrist sensor (hands fixed on the floor, forearm tilts)",
            "wrist",
            _push_up,
        ),
        ScenarioSpec(
            "bodyweight-lunge",
            "bodyweight lunges back to back (20 per set), wrist sensor, arms hanging",
            "wrist",
            _bodyweight_lunge,
        ),
        ScenarioSpec(
            "demo",
            "~85 s: two bench sets (second one slowing) and an isometric hold, forearm",
            "forearm",
            _demo,
        ),
    )
}


def build_plan(spec: ScenarioSpec, rng: np.random.Generator, *, short: bool = False) -> SessionPlan:
    b = Builder(spec.name, spec.placement, rng, short=short)
    spec.build(b)
    plan = b.finish()
    for name, side in spec.devices:
        # Mild asymmetry: one limb moves a few percent more than the other.
        scale = 1.0 if len(spec.devices) == 1 else float(rng.uniform(0.93, 1.07))
        plan.devices.append((name, Body(spec.placement, side, scale)))
    return plan
