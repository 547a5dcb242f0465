"""Left-right velocity asymmetry on the twin's two-sensor squats, against the generator's truth.

Per seed: the true asymmetry (the generator's per-rep mean concentric velocities, left against
right), what ``analysis.limbs`` reports (figure, 95 % interval, verdict), and each sensor's own
velocity scale error (the mean log ratio measured / true over its well-measured reps). The
scale errors' spread across sensors is the figure ``limbs.VELOCITY_SCALE_SD_BY_IMU`` holds:
it is the part of the uncertainty that more reps do not shrink.

``--scale L,R`` overrides the two limbs' range-of-motion scales (the scenario draws them from
0.93-1.07), to see larger asymmetries through the same model. Seeds 0-19 set the constants;
seeds 100 and up are left for checking. Usage:
    bench/bench_asymmetry.py [--seeds 0-19] [--imu icm42688,mpu6050] [--scale 1.0,0.85]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from tremorlift.analysis import analyze_recordings, limbs  # noqa: E402
from tremorlift.twin.motion import generator  # noqa: E402

SCENARIO = "two-sensors"


@dataclass
class _Rec:
    name: str
    t_s: np.ndarray
    accel_mps2: np.ndarray
    gyro_radps: np.ndarray
    sample_rate_hz: float
    placement: str


@contextlib.contextmanager
def limb_scales(scales: tuple[float, float] | None) -> Iterator[None]:
    """While open, two-sensor plans use these range-of-motion scales (left, right)."""
    if scales is None:
        yield
        return
    original = generator.build_plan

    def build(spec, rng, *, short=False):  # type: ignore[no-untyped-def]
        plan = original(spec, rng, short=short)
        plan.devices = [
            (n, replace(b, rom_scale=s)) for (n, b), s in zip(plan.devices, scales, strict=True)
        ]
        return plan

    generator.build_plan = build
    try:
        yield
    finally:
        generator.build_plan = original


def _truth_reps(truth: dict) -> list[dict]:
    return [r for s in truth["sets"] for r in s["reps"]]


def _match(rep: dict, truth_reps: list[dict]) -> dict | None:
    best, best_overlap = None, 0.0
    for r in truth_reps:
        o = min(rep["concentric_end_s"], r["concentric_end_s"]) - max(
            rep["concentric_start_s"], r["concentric_start_s"]
        )
        if o > best_overlap:
            best, best_overlap = r, o
    return best


def measure(seed: int, imu: str, scales: tuple[float, float] | None = None) -> dict:
    """One seed: truth and reported asymmetry (left vs right, %) and each side's scale error."""
    with limb_scales(scales):
        sc = generator.generate(SCENARIO, seed, imu=imu, keep_kinematics=False)
    recs = [
        _Rec(d.name, d.t_s, d.accel_mps2, d.gyro_radps, sc.sample_rate_hz, d.placement)
        for d in sc.devices
    ]
    result = analyze_recordings(recs, exercise="squat")
    by_name = {d["name"]: d for d in result["devices"]}
    left, right = by_name["left"], by_name["right"]
    tl, tr = (_truth_reps(sc.device(n).truth) for n in ("left", "right"))
    truth_d = [
        math.log(a["mean_concentric_velocity_mps"] / b["mean_concentric_velocity_mps"])
        for a, b in zip(tl, tr, strict=True)
    ]
    scale_err = {}
    for name, res, truth in (("left", left, tl), ("right", right, tr)):
        logs = []
        for s in res["sets"]:
            for r in s["reps"]:
                t = _match(r, truth)
                if (
                    t is not None
                    and r["quality"] >= limbs.MIN_QUALITY
                    and r["mean_concentric_velocity_mps"] > 0
                ):
                    logs.append(
                        math.log(
                            r["mean_concentric_velocity_mps"] / t["mean_concentric_velocity_mps"]
                        )
                    )
        scale_err[name] = float(np.mean(logs)) if logs else math.nan
    pairs = [p for sa in left["sets"] for sb in right["sets"] for p in limbs.paired_reps(sa, sb)]
    v = limbs.velocity_asymmetry(pairs, limbs.VELOCITY_SCALE_SD_BY_IMU[imu])
    return {
        "seed": seed,
        "truth_pct": 100.0 * math.expm1(float(np.mean(truth_d))),
        "reported": v,
        "scale_err": scale_err,
    }


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-19")
    ap.add_argument("--imu", default="icm42688,mpu6050")
    ap.add_argument("--scale", help="left,right range-of-motion scales (default: the scenario's)")
    args = ap.parse_args()
    scales = tuple(float(x) for x in args.scale.split(",")) if args.scale else None
    for imu in args.imu.split(","):
        print(
            f"\n{SCENARIO}, imu {imu}, scale sd in use {100 * limbs.VELOCITY_SCALE_SD_BY_IMU[imu]:.1f} %"
        )
        print(" seed  truth L-R   reported L-R (95 % interval)      verdict        scale err L / R")
        diffs, agree, reported, within = [], 0, 0, 0
        n_seeds = len(_seeds(args.seeds))
        for seed in _seeds(args.seeds):
            m = measure(seed, imu, scales)  # type: ignore[arg-type]
            v = m["reported"]
            el, er = m["scale_err"]["left"], m["scale_err"]["right"]
            if math.isfinite(el - er):
                diffs.append(el - er)
            if v is None:
                print(f" {seed:4}  {m['truth_pct']:+8.2f} %   (too few paired reps)")
                continue
            lo, hi = v["velocity_asymmetry_ci_pct"]
            inside = lo <= m["truth_pct"] <= hi
            within += inside
            if v["reported"]:
                reported += 1
                right_sign = (v["velocity_asymmetry_pct"] > 0) == (m["truth_pct"] > 0)
                agree += right_sign
                verdict = ("left" if v["velocity_asymmetry_pct"] > 0 else "right") + " faster"
                verdict += "" if right_sign else " (WRONG)"
            else:
                verdict = f"none beyond {max(abs(lo), abs(hi)):.0f} %"
            print(
                f" {seed:4}  {m['truth_pct']:+8.2f} %   {v['velocity_asymmetry_pct']:+7.2f} % "
                f"({lo:+6.1f} to {hi:+6.1f} %)  {verdict:22} {100 * el:+5.1f} / {100 * er:+5.1f} %"
                f"{'' if inside else '  truth outside'}"
            )
        d = np.asarray(diffs)
        print(
            f"sensor scale error: L-R difference rms {100 * math.sqrt(float(np.mean(d**2))):.2f} % "
            f"-> per-sensor sd {100 * math.sqrt(float(np.mean(d**2)) / 2):.2f} % "
            f"({len(d)} seeds with both sides measured); reported {reported}, right sign {agree}; truth inside the "
            f"interval {within} of {n_seeds}"
        )


if __name__ == "__main__":
    main()
