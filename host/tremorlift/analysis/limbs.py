"""Asymmetry between two limbs from two sensors' results over the same session.

Which sensor is which: the comparison is always "first against second", in the order the two
results are given, and every sentence names the sensors (their names carry the side when the
user named them ``left-...``/``right-...`` with ``tremorlift pair --name``; a result's ``limb``
key, where present, is added to the name). A positive ``velocity_asymmetry_pct`` means the
first sensor's limb moved faster.

Velocity: the two sensors see the same reps at the same time, so reps are paired by the overlap
of their concentric phases, and only reps measured well on both sides (quality at least
``reps.MIN_QUALITY``) count. Each pair gives d = ln(v_first / v_second); the asymmetry is
exp(mean d) - 1, in %. Its uncertainty has two parts:

- the scatter of d over the paired reps (Student's t, 95 %);
- each sensor's own velocity scale error, which is the same for every rep of a session and so
  does not average out over reps. On the twin it comes from the accelerometer's zero-g offset
  (the sensor-frame offset projects differently onto the vertical as the limb turns, and the
  zero-velocity updates only remove its linear part): with the offsets set to zero the two
  sensors agree to within 1 %, with them the per-sensor scale error has the standard deviation
  ``VELOCITY_SCALE_SD`` measured by ``bench/bench_asymmetry.py``.

An asymmetry is reported only when its 95 % interval excludes zero; otherwise the result says
there is no asymmetry beyond the interval's larger end. Tremor asymmetry is the ratio of the
sets' peak tremor RMS (first / second), flagged when at least two paired sets (and most of
them) lean the same way past ``TREMOR_ASYMMETRY_RATIO``.
"""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    from tremorlift.analysis.contract import Alert, AsymmetryRow, EngineResult, Set

VELOCITY_ASYMMETRY_PCT = 10.0  # reported asymmetries this large (or larger) are warnings
TREMOR_ASYMMETRY_RATIO = 1.5
CONSISTENT_MIN_SETS = 2
MIN_QUALITY = 0.5  # reps.MIN_QUALITY (not imported: this module stays free of numpy)
MIN_PAIRED_REPS = 4  # fewer well-measured pairs give no velocity figure
PAIR_OVERLAP = 0.5  # two reps pair when their concentric phases share this much of the shorter
Z_95 = 1.959964
# Per-sensor velocity scale error: the standard deviation, across sensors, of ln(measured / true
# mean concentric velocity), which stays the same over a session. Measured on the twin by
# bench/bench_asymmetry.py (two-sensors scenario, seeds 0-59): the two sensors' errors differed
# by 5.3 % rms with the ICM-42688-P (3.74 % per sensor; 95 % of the differences within 10.9 %)
# and by 9.0 % rms with the MPU-6050 (6.35 % per sensor; seeds 0-19, 17 with both sides
# measured), whose zero-g offsets are 2.5-4 times larger. Rounded up here.
VELOCITY_SCALE_SD_BY_IMU = {"icm42688": 0.040, "mpu6050": 0.070}
VELOCITY_SCALE_SD = VELOCITY_SCALE_SD_BY_IMU["icm42688"]
# Student's t at 97.5 % for 1-10 degrees of freedom; above that a Cornish-Fisher expansion.
_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def t_975(df: int) -> float:
    """Two-sided 95 % quantile of Student's t with ``df`` degrees of freedom (df >= 1)."""
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = Z_95
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def _overlap(a: Set, b: Set) -> float:
    return min(a["end_s"], b["end_s"]) - max(a["start_s"], b["start_s"])


def _well_measured(rep: dict[str, Any]) -> bool:
    return (
        rep.get("quality", 1.0) >= MIN_QUALITY
        and rep.get("mean_concentric_velocity_mps", 0.0) > 0.0
    )


def paired_reps(sa: Set, sb: Set) -> list[tuple[float, float]]:
    """(v_first, v_second) of the reps both sensors measured well, paired by the overlap of
    their concentric phases (each rep used once, in time order)."""
    ra = [r for r in sa["reps"] if _well_measured(dict(r))]
    rb = [r for r in sb["reps"] if _well_measured(dict(r))]
    pairs: list[tuple[float, float]] = []
    j = 0
    for a in ra:
        a0, a1 = a["concentric_start_s"], a["concentric_end_s"]
        while j < len(rb) and rb[j]["concentric_end_s"] <= a0:
            j += 1
        if j == len(rb):
            break
        b = rb[j]
        b0, b1 = b["concentric_start_s"], b["concentric_end_s"]
        shared = min(a1, b1) - max(a0, b0)
        if shared > PAIR_OVERLAP * max(1e-6, min(a1 - a0, b1 - b0)):
            pairs.append((a["mean_concentric_velocity_mps"], b["mean_concentric_velocity_mps"]))
            j += 1
    return pairs


def velocity_asymmetry(
    pairs: list[tuple[float, float]], scale_sd: float = VELOCITY_SCALE_SD
) -> dict[str, Any] | None:
    """Asymmetry of paired velocities (first vs second): ``velocity_asymmetry_pct`` (exp(mean
    ln ratio) - 1, %), ``velocity_asymmetry_ci_pct`` ([low, high], 95 %: the reps' scatter and
    both sensors' scale errors), ``paired_reps`` and ``reported`` (the interval excludes 0).
    None with fewer than ``MIN_PAIRED_REPS`` pairs."""
    if len(pairs) < MIN_PAIRED_REPS:
        return None
    d = [math.log(a / b) for a, b in pairs]
    n = len(d)
    mean = statistics.fmean(d)
    stat = t_975(n - 1) * statistics.stdev(d) / math.sqrt(n)
    half = math.hypot(stat, Z_95 * math.sqrt(2.0) * scale_sd)
    lo, hi = mean - half, mean + half
    return {
        "velocity_asymmetry_pct": round(100.0 * math.expm1(mean), 2),
        "velocity_asymmetry_ci_pct": [
            round(100.0 * math.expm1(lo), 2),
            round(100.0 * math.expm1(hi), 2),
        ],
        "paired_reps": n,
        "reported": lo > 0.0 or hi < 0.0,
    }


def _label(name: str, result: EngineResult) -> str:
    """The sensor's name, with its limb added when the result carries one the name lacks."""
    limb = cast("dict[str, object]", result).get("limb")
    if isinstance(limb, str) and limb and limb not in name.lower():
        return f"{name} ({limb})"
    return name


def compare_limbs(
    first_name: str,
    first: EngineResult,
    second_name: str,
    second: EngineResult,
    *,
    imu: str | None = None,
) -> tuple[list[AsymmetryRow], list[Alert]]:
    """Returns (per-set asymmetry rows, alerts); sets pair up by time overlap.

    Each row: ``start_s``, ``end_s``, ``kind``, ``velocity_asymmetry_pct`` (first vs second from
    the set's paired reps, see the module docstring; None with too few), its 95 % interval
    ``velocity_asymmetry_ci_pct`` and ``paired_reps``, and ``tremor_ratio`` (first / second).
    Alerts: one for the whole session's paired reps when there are enough of them: ``warn`` when
    the asymmetry is beyond its uncertainty and at least ``VELOCITY_ASYMMETRY_PCT``, ``info``
    when beyond its uncertainty but smaller, and ``info`` saying there is no asymmetry beyond the
    interval's larger end otherwise; and the tremor alert described above. ``imu`` picks the
    sensors' scale error (``VELOCITY_SCALE_SD_BY_IMU``; the ICM-42688's when unknown).
    """
    scale_sd = VELOCITY_SCALE_SD_BY_IMU.get(imu or "", VELOCITY_SCALE_SD)
    name_a, name_b = _label(first_name, first), _label(second_name, second)
    rows: list[AsymmetryRow] = []
    all_pairs: list[tuple[float, float]] = []
    last_paired_end_s = 0.0
    for sa in first["sets"]:
        best = max(second["sets"], key=lambda sb: _overlap(sa, sb), default=None)
        if best is None or _overlap(sa, best) <= 0:
            continue
        row: AsymmetryRow = {
            "start_s": sa["start_s"],
            "end_s": sa["end_s"],
            "kind": sa["kind"],
            "velocity_asymmetry_pct": None,
            "velocity_asymmetry_ci_pct": None,
            "paired_reps": 0,
            "tremor_ratio": None,
        }
        if sa["kind"] == "dynamic" and best["kind"] == "dynamic":
            pairs = paired_reps(sa, best)
            row["paired_reps"] = len(pairs)
            v = velocity_asymmetry(pairs, scale_sd)
            if v is not None:
                row["velocity_asymmetry_pct"] = v["velocity_asymmetry_pct"]
                row["velocity_asymmetry_ci_pct"] = v["velocity_asymmetry_ci_pct"]
            if pairs:
                all_pairs += pairs
                last_paired_end_s = max(last_paired_end_s, sa["end_s"], best["end_s"])
        ta, tb = sa.get("tremor_rms_max_mps2"), best.get("tremor_rms_max_mps2")
        if ta and tb:
            row["tremor_ratio"] = round(ta / tb, 3)
        rows.append(row)
    alerts: list[Alert] = []
    session = velocity_asymmetry(all_pairs, scale_sd)
    if session is not None:
        alerts.append(_velocity_alert(session, name_a, name_b, last_paired_end_s))
    alerts += _tremor_alerts(rows, name_a, name_b)
    return rows, alerts


def _velocity_alert(v: dict[str, Any], name_a: str, name_b: str, t_s: float) -> Alert:
    pct = v["velocity_asymmetry_pct"]
    lo, hi = v["velocity_asymmetry_ci_pct"]
    n = v["paired_reps"]
    if v["reported"]:
        # Said from the faster side, so the figure and its interval are positive.
        fast, slow = (name_a, name_b) if pct > 0 else (name_b, name_a)
        size, low, high = pct, lo, hi
        if pct < 0:  # second against first: the ratios inverted

            def inv(x: float) -> float:
                return 100.0 * (100.0 / (100.0 + x) - 1.0)

            size, low, high = inv(pct), inv(hi), inv(lo)
        level: Literal["info", "warn"] = "warn" if size >= VELOCITY_ASYMMETRY_PCT else "info"
        message = (
            f"{fast} moved faster than {slow}: by {size:.0f} % (95 % interval {low:.0f}-"
            f"{high:.0f} %) over {n} paired reps"
        )
    else:
        level = "info"
        message = (
            f"no velocity asymmetry between {name_a} and {name_b} beyond "
            f"{max(abs(lo), abs(hi)):.0f} % ({n} paired reps; measured {pct:+.0f} %)"
        )
    return {"t_s": t_s, "level": level, "kind": "asymmetry", "message": message}


def _tremor_alerts(rows: list[AsymmetryRow], name_a: str, name_b: str) -> list[Alert]:
    alerts: list[Alert] = []
    trem = [r["tremor_ratio"] for r in rows if r["tremor_ratio"] is not None]
    for high, side, other in ((True, name_a, name_b), (False, name_b, name_a)):
        lean = [
            r
            for r in rows
            if r["tremor_ratio"] is not None
            and (
                r["tremor_ratio"] >= TREMOR_ASYMMETRY_RATIO
                if high
                else r["tremor_ratio"] <= 1 / TREMOR_ASYMMETRY_RATIO
            )
        ]
        if len(lean) >= CONSISTENT_MIN_SETS and len(lean) * 2 > len(trem):
            alerts.append(
                {
                    "t_s": lean[CONSISTENT_MIN_SETS - 1]["end_s"],
                    "level": "info",
                    "kind": "asymmetry",
                    "message": f"{side} shows more tremor than {other} in {len(lean)} of {len(trem)} sets",
                }
            )
    return alerts
