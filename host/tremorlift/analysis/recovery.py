"""Recovery after a set or hold: how long the tremor takes to fall back to the quiet level, and a
warning when it is still raised RECOVERY_CHECK_S after.

The tracker watches the last set or hold that ended (``arm``) until a new one starts
(``disarm``): from its end on, the level of the still windows is compared with
RECOVERY_RMS_MPS2; the first time it is below, the set's ``tremor_recovery_s`` is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tremorlift.analysis.events import Event, alert_event

# Quiet again: the still level above the baseline is below this, about half the tremor floor
# of a limb at rest.
RECOVERY_RMS_MPS2 = 0.05
# A usual rest between sets: tremor still raised after it says the lifter has not recovered
# (after a strong effort it can stay raised for hours; algorithms.md, Lippold).
RECOVERY_CHECK_S = 120.0
# The still level is the median of the last 6 still windows (3 s): one calm window is not
# recovery.
RECOVERY_LEVEL_WINDOWS = 6


@dataclass
class _Watch:
    entry: dict[str, Any]  # the set's or hold's result entry
    end_s: float
    alerted: bool = False
    done: bool = False


class RecoveryTracker:
    """Fed every tremor window (``update``); ``arm`` when a set or hold ended, ``disarm`` when
    one starts."""

    def __init__(self) -> None:
        self._watch: _Watch | None = None
        self._recent_static_amp: list[float] = []

    def arm(self, entry: dict[str, Any]) -> None:
        """Watches the set or hold ``entry`` (a result entry; its ``tremor_recovery_s`` is
        written when the tremor is quiet again)."""
        self._watch = _Watch(entry, float(entry["end_s"]))

    def disarm(self) -> None:
        self._watch = None

    def update(self, center_s: float, amp_mps2: float, static: bool) -> list[Event]:
        """One tremor window: its centre, tremor amplitude above the baseline, and whether the
        limb was still."""
        if static:
            self._recent_static_amp.append(amp_mps2)
            self._recent_static_amp = self._recent_static_amp[-RECOVERY_LEVEL_WINDOWS:]
        w = self._watch
        if w is None or w.done or center_s < w.end_s or not static:
            return []
        since = center_s - w.end_s
        level = float(np.median(self._recent_static_amp)) if self._recent_static_amp else amp_mps2
        if level < RECOVERY_RMS_MPS2:
            w.entry["tremor_recovery_s"] = round(since, 2)
            w.done = True
            return []
        if since >= RECOVERY_CHECK_S and not w.alerted:
            w.alerted = True
            return [
                alert_event(
                    center_s,
                    "warn",
                    "recovery",
                    f"tremor still {level:.2f} m/s2 above baseline {since / 60:.0f} min after the set: rest longer",
                )
            ]
        return []

    def finish(self) -> list[Event]:
        """The end of the data: a recovery not seen by then stays None, and nothing is watched."""
        self._watch = None
        return []
