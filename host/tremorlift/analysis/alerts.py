"""Velocity-loss alert policy: graded zones, goal presets, one rep of grace, reset per set."""

from __future__ import annotations

from dataclasses import dataclass

GOAL_THRESHOLDS_PCT = {"power": 10.0, "strength": 20.0, "hypertrophy": 30.0}
DEFAULT_GOAL = "strength"
INFO_MARGIN_PCT = 5.0  # stay silent until within this many points of the threshold
# Graded zones of velocity loss (upper bounds, %), for display.
ZONES = (
    (10.0, "fresh"),
    (20.0, "moderate"),
    (30.0, "high"),
    (40.0, "very high"),
    (float("inf"), "near failure"),
)


def threshold_pct(goal: str | None, vl_threshold_pct: float | None) -> float:
    """An explicit threshold wins over a goal preset; without either, the strength preset."""
    if vl_threshold_pct is not None:
        if not 0.0 < vl_threshold_pct < 100.0:
            raise ValueError(
                f"velocity-loss threshold must be between 0 and 100 %, got {vl_threshold_pct}"
            )
        return float(vl_threshold_pct)
    g = goal or DEFAULT_GOAL
    if g not in GOAL_THRESHOLDS_PCT:
        raise ValueError(f"unknown goal {g!r} (choose from {', '.join(GOAL_THRESHOLDS_PCT)})")
    return GOAL_THRESHOLDS_PCT[g]


def zone(vl_pct: float) -> str:
    for upper, name in ZONES:
        if vl_pct < upper:
            return name
    return ZONES[-1][1]


@dataclass
class VlDecision:
    level: str  # "info" | "warn" | "stop"
    velocity_loss_pct: float
    message: str


class VelocityLossPolicy:
    """Per set: info once within the margin, warn at the first rep past the threshold, stop at
    the next rep past it. Every state variable lives here and is cleared by ``new_set``."""

    def __init__(self, threshold: float, enabled: bool = True) -> None:
        self.threshold_pct = threshold
        self.enabled = enabled
        self.new_set()

    def new_set(self) -> None:
        self.best_mps = 0.0
        self._info_sent = False
        self._warned = False
        self._stopped = False

    def on_rep(self, rep_index: int, mean_velocity_mps: float) -> tuple[float, VlDecision | None]:
        """Returns (velocity loss of this rep vs the fastest so far, decision or None)."""
        self.best_mps = max(self.best_mps, mean_velocity_mps)
        vl = 100.0 * (1.0 - mean_velocity_mps / self.best_mps) if self.best_mps > 0 else 0.0
        if not self.enabled or self._stopped:
            return vl, None
        thr = self.threshold_pct
        n = rep_index + 1
        if vl >= thr:
            if self._warned:
                self._stopped = True
                return vl, VlDecision(
                    "stop",
                    vl,
                    f"rep {n}: velocity loss {vl:.0f} % past {thr:.0f} % again: end the set",
                )
            self._warned = True
            self._info_sent = True
            return vl, VlDecision(
                "warn",
                vl,
                f"rep {n}: velocity loss {vl:.0f} % reached the {thr:.0f} % threshold: last rep",
            )
        if vl >= thr - INFO_MARGIN_PCT and not self._info_sent:
            self._info_sent = True
            return vl, VlDecision(
                "info",
                vl,
                f"rep {n}: velocity loss {vl:.0f} %, within {INFO_MARGIN_PCT:.0f} % of {thr:.0f} %",
            )
        return vl, None
