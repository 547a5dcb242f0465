"""Load-velocity profile of one exercise and the one-repetition maximum (1RM) it predicts.

Each set recorded with its load gives one point: the load (kg) and the set's best rep's mean
concentric velocity (m/s; the fastest rep is the set's least fatigued). Mean concentric velocity
falls close to linearly with load (general load-velocity R^2 about 0.9 in squat, bench and
deadlift; individual profiles closer still), so the profile is the least-squares line

    v = intercept + slope * load,   slope < 0,

and the 1RM is the load at which the line reaches the exercise's minimal velocity threshold
(MVT, the mean velocity of a 1RM lift): ``one_rm = (MVT - intercept) / slope``.

Uncertainty: the 95 % confidence interval of that load by Fieller's method (inverse
regression): every load whose fitted mean velocity is within ``t(0.975, n - 2) * SE(fit)`` of
the MVT. It is exact for normal, equal-variance residuals and covers the load where the true
line meets the MVT at the nominal rate (tests/host/test_loadvelocity.py checks it over seeds). It
needs three sets or more (two points leave no residual to judge the scatter by); with two it
says so and gives the estimate alone. When the slope is not clearly negative at that level the
interval is unbounded and no 1RM is claimed.

The estimate is refused, saying why, with fewer than 2 distinct loads, a slope that is not
negative, or an exercise without a known MVT.

MVT (mean concentric velocity of a 1RM), from the literature (notes: algorithms.md, section
6.3): full back squat 0.30 m/s (MV 0.32 +- 0.03 m/s, n = 80; MPV 0.29 +- 0.05), bench press
0.17 m/s (general MVT), deadlift 0.15 m/s (between-day v@1RM is unreliable, about 0.15-0.18),
barbell hip thrust 0.25 m/s, leg press 0.21 m/s, half squat 0.33 m/s. These are bar speeds. The
wearable sits on a limb: its speed tracks the bar's in presses and squats with the sensor on the
forearm or thigh, but not exactly, so the 1RM is an estimate for the lifter's own trend, not a
tested max.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

# Mean concentric velocity of a 1RM lift, m/s, per exercise name (and its usual spellings).
MVT_MPS: dict[str, float] = {
    "squat": 0.30,
    "back-squat": 0.30,
    "back_squat": 0.30,
    "half-squat": 0.33,
    "half_squat": 0.33,
    "bench": 0.17,
    "bench-press": 0.17,
    "bench_press": 0.17,
    "deadlift": 0.15,
    "hip-thrust": 0.25,
    "hip_thrust": 0.25,
    "leg-press": 0.21,
    "leg_press": 0.21,
}
CONFIDENCE = 0.95
MIN_LOADS = 2  # distinct loads for a line at all
MIN_POINTS_FOR_INTERVAL = 3  # a residual scatter needs a point more than the line has parameters
METHOD = (
    "least-squares line of each set's best-rep mean concentric velocity on load; 1RM where the "
    "line meets the minimal velocity threshold; 95 % confidence interval by Fieller's method"
)


def mvt_mps(exercise: str | None) -> float | None:
    """The minimal velocity threshold of ``exercise`` (m/s), or None when none is known."""
    return MVT_MPS.get((exercise or "").strip().lower())


def profile(
    points: Iterable[tuple[float, float]],
    mvt: float | None,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """The load-velocity line and 1RM from ``(load_kg, velocity_mps)`` points.

    Returns a dict: ``points`` (n), ``distinct_loads``, ``slope_mps_per_kg``,
    ``intercept_mps``, ``residual_se_mps``, ``r2``, ``mvt_mps``, ``one_rm_kg``,
    ``one_rm_ci_kg`` ([low, high] or None), ``confidence``, ``method`` and ``refused`` (None, or
    why no 1RM is given; the line may still be there)."""
    pts = [(float(x), float(v)) for x, v in points if _finite(x) and _finite(v)]
    out: dict[str, Any] = {
        "points": len(pts),
        "distinct_loads": len({x for x, _ in pts}),
        "slope_mps_per_kg": None,
        "intercept_mps": None,
        "residual_se_mps": None,
        "r2": None,
        "mvt_mps": mvt,
        "one_rm_kg": None,
        "one_rm_ci_kg": None,
        "confidence": confidence,
        "method": METHOD,
        "refused": None,
    }
    if out["distinct_loads"] < MIN_LOADS:
        out["refused"] = (
            f"needs sets at {MIN_LOADS} different loads or more, has "
            f"{out['distinct_loads']} (record sets with --load-kg)"
        )
        return out
    x = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    n = x.size
    xm, ym = float(x.mean()), float(y.mean())
    sxx = float(((x - xm) ** 2).sum())
    slope = float(((x - xm) * (y - ym)).sum() / sxx)
    icpt = ym - slope * xm
    resid = y - (icpt + slope * x)
    syy = float(((y - ym) ** 2).sum())
    out["slope_mps_per_kg"] = round(slope, 6)
    out["intercept_mps"] = round(icpt, 4)
    out["r2"] = round(1.0 - float((resid**2).sum()) / syy, 4) if syy > 0 else None
    s = math.sqrt(float((resid**2).sum()) / (n - 2)) if n > 2 else None
    out["residual_se_mps"] = None if s is None else round(s, 4)
    if not slope < 0:
        out["refused"] = (
            f"speed does not fall with load (slope {slope:+.4f} m/s per kg): the line cannot "
            "reach a 1RM"
        )
        return out
    if mvt is None:
        out["refused"] = "no minimal velocity threshold known for this exercise"
        return out
    one_rm = (mvt - icpt) / slope
    out["one_rm_kg"] = round(one_rm, 1)
    if s is None:
        out["refused"] = None
        out["one_rm_ci_kg"] = None
        out["interval_note"] = (
            f"no interval from {n} sets: needs {MIN_POINTS_FOR_INTERVAL} or more to judge the scatter"
        )
        return out
    ci = fieller_interval(slope, xm, ym, sxx, n, s, mvt, confidence)
    if ci is None:
        out["one_rm_kg"] = None
        out["refused"] = (
            "the slope is not clearly negative at the 95 % level: the 1RM interval is unbounded"
        )
        return out
    out["one_rm_ci_kg"] = [round(ci[0], 1), round(ci[1], 1)]
    return out


def fieller_interval(
    slope: float, xm: float, ym: float, sxx: float, n: int, s: float, y0: float, confidence: float
) -> tuple[float, float] | None:
    """The loads x whose fitted mean ``ym + slope (x - xm)`` is within ``t * s *
    sqrt(1/n + (x - xm)^2 / sxx)`` of ``y0``; None when that set is not a bounded interval."""
    from scipy import stats  # only when an interval is computed: the history listing stays light

    t = float(stats.t.ppf(0.5 + confidence / 2.0, n - 2))
    k = (t * s) ** 2
    # (r - b d)^2 <= k (1/n + d^2 / sxx), d = x - xm, r = y0 - ym
    r = y0 - ym
    a = slope**2 - k / sxx
    if a <= 0:
        return None
    b = -2.0 * r * slope
    c = r**2 - k / n
    disc = b * b - 4.0 * a * c
    if disc < 0:
        return None
    root = math.sqrt(disc)
    d0, d1 = (-b - root) / (2.0 * a), (-b + root) / (2.0 * a)
    return xm + min(d0, d1), xm + max(d0, d1)


def set_points(sets: Iterable[Mapping[str, Any]]) -> list[tuple[float, float]]:
    """``(load_kg, best rep velocity)`` of every dynamic set that has both (the best rep: the
    set's ``best_velocity_mps``, else its fastest rep)."""
    out = []
    for s in sets:
        load, v = s.get("load_kg"), s.get("best_velocity_mps")
        if v is None and s.get("reps"):
            v = max(r["mean_concentric_velocity_mps"] for r in s["reps"])
        if s.get("kind", "dynamic") == "dynamic" and load is not None and v is not None:
            out.append((float(load), float(v)))
    return out


def words(p: dict[str, Any], exercise: str) -> str:
    """The profile in one or two sentences for a report or the history listing."""
    if p["slope_mps_per_kg"] is None:
        return f"{exercise}: no load-velocity profile: {p['refused']}."
    b = p["slope_mps_per_kg"]
    line = (
        f"{exercise}: load-velocity line v = {p['intercept_mps']:.2f} {'-' if b < 0 else '+'} "
        f"{abs(b):.4f} x load (m/s, kg) from {p['points']} sets at {p['distinct_loads']} loads"
    )
    if p["refused"]:
        return f"{line}. No 1RM estimate: {p['refused']}."
    ci = p["one_rm_ci_kg"]
    unc = (
        f" (95 % interval {ci[0]:.0f}-{ci[1]:.0f} kg)"
        if ci
        else f" ({p.get('interval_note', 'no interval')})"
    )
    return (
        f"{line}. Estimated 1RM {p['one_rm_kg']:.0f} kg{unc}, where the line reaches "
        f"{p['mvt_mps']:.2f} m/s, the speed of a 1RM in this exercise."
    )


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
