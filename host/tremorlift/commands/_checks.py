"""Argument checks shared by several sub-commands (one wording for one mistake)."""

from __future__ import annotations

import argparse

from tremorlift.errors import UserError
from tremorlift.settings import VL_THRESHOLD_MAX_PCT, VL_THRESHOLD_MIN_PCT


def check_scenario(name: str) -> None:
    """A twin scenario name must be one of the motion generator's."""
    from tremorlift.twin.motion.generator import SCENARIOS

    if name not in SCENARIOS:
        raise UserError(f"unknown scenario {name!r}; one of: {', '.join(sorted(SCENARIOS))}")


def check_between(flag: str, value: float, low: float, high: float, unit: str = "") -> None:
    if not low <= value <= high:
        raise UserError(f"{flag} must be between {low:g} and {high:g}{unit}, got {value:g}")


def check_vl_threshold(flag: str, value: float) -> None:
    """The one threshold range (settings.VL_THRESHOLD_MIN_PCT/MAX_PCT: why these)."""
    check_between(flag, value, VL_THRESHOLD_MIN_PCT, VL_THRESHOLD_MAX_PCT, " %")


def scenario_lines() -> list[str]:
    """One line per twin scenario: name, placement, what it plays (and its sensors)."""
    from tremorlift.twin.motion.scenarios import SCENARIOS

    width = max(len(n) for n in SCENARIOS)
    lines = []
    for name, spec in SCENARIOS.items():
        devs = (
            "" if len(spec.devices) == 1 else f" [devices: {', '.join(d for d, _ in spec.devices)}]"
        )
        lines.append(f"{name:<{width}}  {spec.placement:<7}  {spec.description}{devs}")
    return lines


class ScenarioHelpFormatter(argparse.HelpFormatter):
    """Help that ends with the twin's scenarios, read only when the help is printed (building
    the parser stays free of the twin)."""

    def format_help(self) -> str:
        import textwrap

        from tremorlift.twin.motion.scenarios import SCENARIOS

        indent = " " * (2 + max(len(n) for n in SCENARIOS) + 2 + 7 + 2)
        listing = "\n".join(
            textwrap.fill(line, width=max(self._width, 60), initial_indent="  ",
                          subsequent_indent=indent)
            for line in scenario_lines()
        )  # fmt: skip
        return f"{super().format_help()}\nscenarios (--simulate SCENARIO):\n{listing}\n"
