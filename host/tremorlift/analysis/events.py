"""What the analysis emits while it runs: one ``Event`` per rep, set boundary, tremor episode or
alert, in the order the engine found them (docs/analysis-output.md has the keys of ``data``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tremorlift.analysis.contract import AlertKind, AlertLevel, EventKind


@dataclass
class Event:
    """Something the engine found: a rep, a set boundary, a tremor episode or an alert."""

    t_s: float
    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)  # contract.EventData, by kind


def alert_event(
    t_s: float, level: AlertLevel, kind: AlertKind, message: str, **extra: Any
) -> Event:
    """An alert as the engine emits it; whether it is kept is the engine's master switch."""
    a = {"t_s": round(float(t_s), 3), "level": level, "kind": kind, "message": message, **extra}
    return Event(float(t_s), "alert", a)
