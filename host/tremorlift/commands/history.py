"""``tremorlift history``: every recorded session and, per exercise, the trends across them."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

ORDER = 75


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "history",
        help="list recorded sessions and per-exercise trends",
        description=(
            "List the sessions in the history index (date, exercise, duration, sets, reps, best "
            "velocity, samples lost) and per exercise: best velocity, velocity loss where the "
            "sets ended, reps to the velocity-loss stop, warm-up tremor against your usual, "
            "left-right asymmetry. `collect` adds each session; --add indexes existing files."
        ),
    )
    p.add_argument("--add", metavar="SESSION", nargs="+", help="index these session files and exit")
    p.add_argument("--exercise", metavar="NAME", help="only sessions and trends of this exercise")
    p.add_argument("--json", action="store_true", help="print the history as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tremorlift.coach.history import (
        format_history,
        load_history,
        register_session,
        summarize_session,
        trends,
    )

    if args.add:
        # Summarise every file first: one bad file leaves the index untouched.
        summaries = [(path, summarize_session(path)) for path in args.add]
        for path, summary in summaries:
            register_session(path, summary)
            print(f"indexed {path}: {summary['sets']} sets, {summary['reps']} reps")
        return 0
    sessions = load_history()
    if args.exercise:
        from tremorlift.settings import check_exercise

        ex = check_exercise(args.exercise)
        sessions = [s for s in sessions if ex in s.get("exercises", {})]
    tr = trends(sessions)
    if args.exercise:
        tr = {k: v for k, v in tr.items() if k == ex}
    if args.json:
        json.dump({"sessions": sessions, "trends": tr}, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_history(sessions, tr))
    return 0
