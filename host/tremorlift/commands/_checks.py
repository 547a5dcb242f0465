"""Argument checks shared by several sub-commands (one wording for one mistake)."""

from __future__ import annotations

from tremorlift.errors import UserError


def check_scenario(name: str) -> None:
    """A twin scenario name must be one of the motion generator's."""
    from tremorlift.twin.motion.generator import SCENARIOS

    if name not in SCENARIOS:
        raise UserError(f"unknown scenario {name!r}; one of: {', '.join(sorted(SCENARIOS))}")


def check_between(flag: str, value: float, low: float, high: float, unit: str = "") -> None:
    if not low <= value <= high:
        raise UserError(f"{flag} must be between {low:g} and {high:g}{unit}, got {value:g}")
