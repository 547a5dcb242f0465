"""``tremorlift report SESSION``: an HTML report with figures, and a plain-language summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ORDER = 70


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="write an HTML report (figures + summary) for a session",
        description=(
            "Write one self-contained HTML file (figures embedded) and the figures as PNG: rep "
            "speeds and velocity loss per set, tremor over time by cause, holds, recovery after "
            "sets, left against right, alerts. Prints a plain-language summary."
        ),
    )
    p.add_argument("session", metavar="SESSION", help="session file")
    p.add_argument(
        "--out", metavar="DIR", help="output folder (default: SESSION-report/ beside the session)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tremorlift.coach.report import build_report
    from tremorlift.store.reader import SessionReader

    session = Path(args.session)
    SessionReader(session).close()  # a bad file fails here, before anything is created
    out = Path(args.out) if args.out else session.with_name(session.name + "-report")
    rep = build_report(session, out)
    sys.stdout.write(rep.summary)
    print(f"report: {rep.html_path}")
    return 0
