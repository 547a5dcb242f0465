"""Velocity-loss alert policy: graded zones, goal presets, reset per set.

Only reps measured well (``quality >= MIN_QUALITY``, see ``reps``) take part: they set the
reference (the set's fastest) and they raise alerts. A warn comes at the first well-measured rep
past the threshold, never before rep ``MIN_WARN_REP``; a stop needs a second well-measured rep past
it right after (one noisy rep never stops a set).
"""

from __future__ import annotations

from dataclasses import dataclass

GOAL_THRESHOLDS_PCT = {"power": 10.0, "strength": 20.0, "hypertrophy": 30.0}
DEFAULT_GOAL = "strength"
INFO_MARGIN_PCT = 5.0  # stay silent until within this many points of the threshold
MIN_WARN_REP = 4  # the first reps of a set settle the reference; no warn before this rep
MIN_QUALITY = 0.5
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
    """Per set: info once within the margin, warn at the first well-measured rep past the
    threshold (from rep MIN_WARN_REP), stop when the next well-measured rep is past it too. Every
    state variable lives here and is cleared by ``new_set``."""

    def __init__(self, threshold: float, enabled: bool = True) -> None:
        self.threshold_pct = threshold
        self.enabled = enabled
        self.new_set()

    def new_set(self) -> None:
        self.best_mps = 0.0
        self._info_sent = False
        self._warned = False
        self._stopped = False
        self._last_good_past = False

    def on_rep(
        self, rep_index: int, mean_velocity_mps: float, quality: float = 1.0
    ) -> tuple[float, VlDecision | None]:
        """Returns (velocity loss of this rep vs the fastest well-measured rep so far, decision
        or None)."""
        good = quality >= MIN_QUALITY
        if good:
            self.best_mps = max(self.best_mps, mean_velocity_mps)
        vl = 100.0 * (1.0 - mean_velocity_mps / self.best_mps) if self.best_mps > 0 else 0.0
        if not self.enabled or self._stopped or not good:
            return vl, None
        thr = self.threshold_pct
        n = rep_index + 1
        past = vl >= thr
        prev_past, self._last_good_past = self._last_good_past, past
        if past and n >= MIN_WARN_REP:
            if self._warned and prev_past:
                self._stopped = True
                return vl, VlDecision(
                    "stop",
                    vl,
                    f"rep {n}: velocity loss {vl:.0f} %, past {thr:.0f} % on two reps running: end the set",
                )
            if not self._warned:
                self._warned = True
                self._info_sent = True
                return vl, VlDecision(
                    "warn",
                    vl,
                    f"rep {n}: velocity loss {vl:.0f} % reached the {thr:.0f} % threshold: one more rep at most",
                )
            return vl, None
        if n >= 2 and vl >= thr - INFO_MARGIN_PCT and not self._info_sent:
            self._info_sent = True
            return vl, VlDecision(
                "info",
                vl,
                f"rep {n}: velocity loss {vl:.0f} %, {thr - vl:.0f} points below the {thr:.0f} % threshold",
            )
        return vl, None
