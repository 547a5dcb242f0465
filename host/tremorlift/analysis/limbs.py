"""Asymmetry between two limbs: per set, from two engines' results over the same session."""

from __future__ import annotations

from tremorlift.analysis.contract import Alert, AsymmetryRow, EngineResult, Set

VELOCITY_ASYMMETRY_PCT = 10.0
TREMOR_ASYMMETRY_RATIO = 1.5
CONSISTENT_MIN_SETS = 2


def _overlap(a: Set, b: Set) -> float:
    return min(a["end_s"], b["end_s"]) - max(a["start_s"], b["start_s"])


def _mean_velocity(s: Set) -> float | None:
    v = [r["mean_concentric_velocity_mps"] for r in s["reps"]]
    return sum(v) / len(v) if v else None


def compare_limbs(
    left_name: str, left: EngineResult, right_name: str, right: EngineResult
) -> tuple[list[AsymmetryRow], list[Alert]]:
    """Returns (per-set asymmetry rows, alerts). Sets pair up by time overlap.

    Velocity asymmetry is (left - right) / max(left, right) of the set's mean concentric
    velocity, in %; tremor asymmetry is the ratio of the sets' peak tremor RMS (left / right).
    An asymmetry is "consistent" when at least two paired sets lean the same way past the limit.
    """
    rows: list[AsymmetryRow] = []
    for sa in left["sets"]:
        best = max(right["sets"], key=lambda sb: _overlap(sa, sb), default=None)
        if best is None or _overlap(sa, best) <= 0:
            continue
        row: AsymmetryRow = {
            "start_s": sa["start_s"],
            "end_s": sa["end_s"],
            "kind": sa["kind"],
            "velocity_asymmetry_pct": None,
            "tremor_ratio": None,
        }
        va, vb = _mean_velocity(sa), _mean_velocity(best)
        if va is not None and vb is not None and max(va, vb) > 0:
            row["velocity_asymmetry_pct"] = round(100.0 * (va - vb) / max(va, vb), 2)
        ta, tb = sa.get("tremor_rms_max_mps2"), best.get("tremor_rms_max_mps2")
        if ta and tb:
            row["tremor_ratio"] = round(ta / tb, 3)
        rows.append(row)
    alerts: list[Alert] = []
    vel = [r["velocity_asymmetry_pct"] for r in rows if r["velocity_asymmetry_pct"] is not None]
    for sign, side, other in ((1, left_name, right_name), (-1, right_name, left_name)):
        lean = [
            r
            for r in rows
            if r["velocity_asymmetry_pct"] is not None
            and sign * r["velocity_asymmetry_pct"] >= VELOCITY_ASYMMETRY_PCT
        ]
        if len(lean) >= CONSISTENT_MIN_SETS and len(lean) * 2 > len(vel):
            alerts.append(
                {
                    "t_s": lean[CONSISTENT_MIN_SETS - 1]["end_s"],
                    "level": "warn",
                    "kind": "asymmetry",
                    "message": f"{side} moved faster than {other} in {len(lean)} of {len(vel)} sets (>= {VELOCITY_ASYMMETRY_PCT:.0f} %)",
                }
            )
    trem = [r["tremor_ratio"] for r in rows if r["tremor_ratio"] is not None]
    for high, side, other in ((True, left_name, right_name), (False, right_name, left_name)):
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
    return rows, alerts
