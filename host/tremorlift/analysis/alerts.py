"""Velocity-loss alert policy: graded zones, goal presets, reset per set.

Only reps measured well take part: quality ``>= MIN_QUALITY`` (see ``reps``) and a speed within
``PLAUSIBLE_RANGE`` of the median of the set's recent well-measured reps (a rep whose lifting
phase was not found reads near zero; real rep-to-rep noise on a wrist is about 10-15 %). Each rep shows
its own loss against the fastest rep. A warn comes at the first rep whose own loss, or the loss of
the mean of the last two such reps against the best such mean of the set, is past the threshold,
never before rep ``MIN_WARN_REP``: it costs the lifter at most one rep. A stop needs the two-rep
loss (rep-to-rep noise shrinks by about 1.4) past the threshold on two reps running after the
warn, so one noisy rep never stops a set.

The stop policy says when the stop comes (``STOP_POLICIES``):

- ``one-more`` (the default): the warn at the first rep past the limit says "one more rep at
  most"; the stop comes at the next rep that confirms the loss (the two-rep loss past the limit
  on two reps running), usually the very next one.
- ``at-limit``: the first rep past the limit is the stop itself ("stop now"); no warn comes
  before it. One noisy slow rep can end a set under this policy.

Both alert words say which policy is in force. The real-set bench (bench/real_sets.py) scores
the default; ``--stop-policy at-limit`` scores the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from tremorlift.analysis.contract import AlertLevel, Goal, Zone, is_goal

StopPolicy = Literal["one-more", "at-limit"]
STOP_POLICIES: tuple[StopPolicy, ...] = get_args(StopPolicy)
DEFAULT_STOP_POLICY: StopPolicy = "one-more"

GOAL_THRESHOLDS_PCT: dict[Goal, float] = {"power": 10.0, "strength": 20.0, "hypertrophy": 30.0}
DEFAULT_GOAL: Goal = "strength"
INFO_MARGIN_PCT = 5.0  # stay silent until within this many points of the threshold
MIN_WARN_REP = 4  # the first reps of a set settle the reference; no warn before this rep
MIN_QUALITY = 0.25  # to take part at all
STOP_MIN_QUALITY = 0.5  # for each of the two reps that confirm a stop
PLAUSIBLE_RANGE = (0.5, 1.6)  # x the median of the last PLAUSIBLE_REPS well-measured reps
PLAUSIBLE_REPS = 5
REFERENCE_MAX_RATIO = 1.35
# Graded zones of velocity loss (upper bounds, %), for display.
ZONES: tuple[tuple[float, Zone], ...] = (
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
    if not is_goal(g):
        raise ValueError(f"unknown goal {g!r} (choose from {', '.join(GOAL_THRESHOLDS_PCT)})")
    return GOAL_THRESHOLDS_PCT[g]


def check_stop_policy(policy: str | None) -> StopPolicy:
    """The stop policy named, or the default for None; ValueError for an unknown name."""
    if policy is None:
        return DEFAULT_STOP_POLICY
    for known in STOP_POLICIES:
        if policy == known:
            return known
    raise ValueError(f"unknown stop policy {policy!r} (choose from {', '.join(STOP_POLICIES)})")


def zone(vl_pct: float) -> Zone:
    for upper, name in ZONES:
        if vl_pct < upper:
            return name
    return ZONES[-1][1]


@dataclass
class VlDecision:
    level: AlertLevel
    velocity_loss_pct: float
    message: str


class VelocityLossPolicy:
    """Per set: info once within the margin, warn from rep MIN_WARN_REP at the first rep whose own
    or two-rep loss is past the threshold, stop when the two-rep loss is past it on two reps
    running (``one-more``), or the stop at that first rep (``at-limit``); see the module
    docstring. Every state variable lives here and is cleared by ``new_set``."""

    def __init__(
        self, threshold: float, enabled: bool = True, stop_policy: str | None = None
    ) -> None:
        self.threshold_pct = threshold
        self.enabled = enabled
        self.stop_policy = check_stop_policy(stop_policy)
        self.new_set()

    def new_set(self) -> None:
        self.best_mps = 0.0
        self._good: list[float] = []
        self._info_sent = False
        self._warned = False
        self._stopped = False
        self._last_good_past = False

    def _reference_reps(self) -> list[float]:
        g = self._good
        if len(g) < 3:
            return list(g)
        med = _median_high(g)
        return [v for v in g if v <= REFERENCE_MAX_RATIO * med]

    def _plausible(self, v: float) -> bool:
        if len(self._good) < 3:
            return v > 0.0
        med = _median_high(self._good[-PLAUSIBLE_REPS:])
        return PLAUSIBLE_RANGE[0] * med <= v <= PLAUSIBLE_RANGE[1] * med

    def on_rep(
        self, rep_index: int, mean_velocity_mps: float, quality: float = 1.0
    ) -> tuple[float, VlDecision | None]:
        """Returns (this rep's velocity loss vs the fastest well-measured rep so far, decision or
        None)."""
        v = mean_velocity_mps
        good = quality >= MIN_QUALITY and self._plausible(v)
        if good:
            self._good.append(v)
        # The reference is the fastest rep, and the best two-rep mean, among reps not faster
        # than REFERENCE_MAX_RATIO x the set's median: a first rep whose bound reached into the
        # set-up reads fast, and would make every later rep look slow.
        ref = self._reference_reps()
        self.best_mps = max(ref) if ref else 0.0
        vl = 100.0 * (1.0 - v / self.best_mps) if self.best_mps > 0 else 0.0
        if not good or len(self._good) < 2:
            return vl, None
        pairs = [0.5 * (a + b) for a, b in zip(ref[:-1], ref[1:], strict=True)] or [v]
        pair = 0.5 * (self._good[-1] + self._good[-2])
        vl2 = 100.0 * (1.0 - pair / max(max(pairs), pair))
        if not self.enabled or self._stopped:
            return vl, None
        thr = self.threshold_pct
        n = rep_index + 1
        past = vl2 >= thr and quality >= STOP_MIN_QUALITY
        prev_past, self._last_good_past = self._last_good_past, past
        if n >= MIN_WARN_REP and not self._warned and (vl >= thr or vl2 >= thr):
            # The first call may come from this rep alone: it costs the lifter at most one rep.
            self._warned = True
            self._info_sent = True
            worst = max(vl, vl2)
            if self.stop_policy == "at-limit":
                self._stopped = True
                return vl, VlDecision(
                    "stop",
                    worst,
                    f"rep {n}: velocity loss {worst:.0f} %: this rep passed the {thr:.0f} % "
                    "limit: stop now",
                )
            return vl, VlDecision(
                "warn",
                worst,
                f"rep {n}: velocity loss {worst:.0f} %: this rep passed the {thr:.0f} % limit: "
                "one more rep at most, then stop",
            )
        if past and prev_past and self._warned and n >= MIN_WARN_REP:
            self._stopped = True
            return vl, VlDecision(
                "stop",
                vl2,
                f"rep {n}: velocity loss {vl2:.0f} % over the last two reps, still past the "
                f"{thr:.0f} % limit: stop now",
            )
        worst = max(vl, vl2)
        if worst >= thr - INFO_MARGIN_PCT and not self._info_sent:
            self._info_sent = True
            text = (
                f"{thr - worst:.0f} points below the {thr:.0f} % limit"
                if worst < thr
                else f"past the {thr:.0f} % limit, but the set's first reps only settle its "
                "reference: go on"
            )
            return vl, VlDecision("info", worst, f"rep {n}: velocity loss {worst:.0f} %, {text}")
        return vl, None


def _median_high(values: list[float]) -> float:
    """The median, or of an even count the higher of the middle two."""
    return float(sorted(values)[len(values) // 2])
