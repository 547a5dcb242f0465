"""``tremorlift config``: show and change the per-exercise settings (goal or velocity-loss
threshold, sensor placement, feedback channels)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tremorlift.analysis import GOALS, PLACEMENTS
from tremorlift.analysis.alerts import STOP_POLICIES

ORDER = 80


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "config",
        help="show or change settings (per exercise)",
        description=(
            "Show the settings in effect (built-in < [default] < [exercise.NAME] < command-line "
            f"flags), or change them. Keys: goal ({'|'.join(GOALS)}), vl_threshold_pct "
            f"(explicit velocity-loss limit, %), placement ({'|'.join(PLACEMENTS)}), "
            f"stop_policy ({'|'.join(STOP_POLICIES)}: the velocity-loss stop a rep after the "
            "warn, or at the first rep past the limit), load_kg (the load lifted, kg: set it per "
            "exercise for the load-velocity profile), "
            "feedback.haptic / feedback.sound / feedback.speech / feedback.screen (on|off; screen: "
            "the live dashboard in collect)."
        ),
    )
    p.add_argument(
        "--exercise",
        dest="show_exercise",
        metavar="NAME",
        help="the exercise whose settings to show, set or unset (before or after ACTION)",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    s = sub.add_parser("set", help="set KEY to VALUE in [default] or [exercise.NAME]")
    s.add_argument("--exercise", metavar="NAME", help="set it for this exercise only")
    s.add_argument("key", metavar="KEY")
    s.add_argument("value", metavar="VALUE")
    u = sub.add_parser("unset", help="remove KEY from [default] or [exercise.NAME]")
    u.add_argument("--exercise", metavar="NAME", help="remove it for this exercise only")
    u.add_argument("key", metavar="KEY")
    sub.add_parser("path", help="print the settings file's path")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tremorlift.errors import UserError
    from tremorlift.settings import (
        ConfigFile,
        check_exercise,
        check_key,
        config_path,
        effective_settings,
        parse_value,
    )

    action = getattr(args, "action", None)
    if action == "path":
        print(config_path())
        return 0
    if action in ("set", "unset"):
        # `config --exercise squat set ...` and `config set --exercise squat ...` mean the same.
        given = [n for n in (args.show_exercise, args.exercise) if n]
        if len({check_exercise(n) for n in given}) > 1:
            raise UserError(f"--exercise given twice with different names: {' and '.join(given)}")
        ex = check_exercise(given[0]) if given else None
        key = check_key(args.key)
        cfg = ConfigFile.load()  # raises before anything is written if the file is bad
        table = cfg.table(ex)
        where = f"[exercise.{ex}]" if ex else "[default]"
        if action == "set":
            table[key] = parse_value(key, args.value)
            cfg.save()
            print(f"{where} {key} = {_show(table[key])}  ({cfg.path})")
        else:
            if key not in table:
                raise UserError(f"{key} is not set in {where} of {cfg.path}")
            del table[key]
            cfg.save()
            print(f"{where} {key} removed  ({cfg.path})")
        return 0
    settings = effective_settings(args.show_exercise)
    sys.stdout.write(format_settings(settings, config_path()))
    return 0


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_settings(settings: Any, path: Any) -> str:
    from tremorlift.settings import KEYS

    head = f"exercise {settings.exercise}" if settings.exercise else "defaults (no exercise given)"
    lines = [f"settings for {head}", f"file: {path}", ""]
    for k in KEYS:
        lines.append(
            f"  {k:18} {_show(settings.value(k)):12} from {settings.sources.get(k, 'built-in')}"
        )
    basis = (
        "explicit threshold" if settings.vl_threshold_pct is not None else f"goal {settings.goal}"
    )
    lines.append("")
    lines.append(f"velocity-loss limit in effect: {settings.threshold_pct:g} % ({basis})")
    return "\n".join(lines) + "\n"
