"""``tremorlift history``: every recorded session and, per exercise, the trends across them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tremorlift.commands._output import add_json_option, write_json

ORDER = 75


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "history",
        help="list recorded sessions and per-exercise trends",
        description=(
            "List the sessions in the history index (date, exercise, duration, sets, reps, best "
            "velocity, samples lost) and per exercise: best velocity, velocity loss where the "
            "sets ended, reps to the velocity-loss stop, warm-up tremor against your usual, "
            "left-right asymmetry. `collect` adds each session; --add indexes existing files. A session "
            "is counted once however many copies of its file were indexed; sessions whose file "
            "is gone are left out."
        ),
    )
    p.add_argument("--add", metavar="SESSION", nargs="+", help="index these session files and exit")
    p.add_argument("--exercise", metavar="NAME", help="only sessions and trends of this exercise")
    p.add_argument(
        "--remove",
        metavar="SESSION|ID",
        help="take a session out of the history (by its file or the ID in the list; the file "
        "is left in place) and exit",
    )
    add_json_option(p, "the sessions and trends (instead of the table)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tremorlift.coach.history import (
        format_history,
        load_history,
        register_session,
        remove_sessions,
        split_missing,
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
    if args.remove:
        gone = remove_sessions(args.remove)
        sid = gone[0]["session_id"]
        print(
            f"removed session {sid} from the history ({', '.join(s['path'] for s in gone)}; "
            "files left in place)"
        )
        return 0
    sessions, missing = split_missing(load_history())
    if missing:
        # Said once, on stderr: the rows stay in the index in case the files come back.
        print(
            f"tremorlift: note: {len(missing)} session file(s) no longer exist and are left out "
            f"({', '.join(missing)}); `tremorlift history --remove PATH` drops one for good",
            file=sys.stderr,
        )
    if args.exercise:
        from tremorlift.settings import check_exercise

        ex = check_exercise(args.exercise)
        sessions = [s for s in sessions if ex in s.get("exercises", {})]
    tr = trends(sessions)
    if args.exercise:
        tr = {k: v for k, v in tr.items() if k == ex}
    if args.json:
        write_json(args.json, {"sessions": sessions, "trends": tr})
    else:
        sys.stdout.write(format_history(sessions, tr))
    return 0
