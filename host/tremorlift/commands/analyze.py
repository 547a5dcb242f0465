"""``tremorlift analyze INPUT``: sets, reps, velocity loss, tremor and alerts from a recording."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tremorlift.analysis import GOALS, PLACEMENTS
from tremorlift.analysis.alerts import STOP_POLICIES
from tremorlift.analysis.contract import SessionResult
from tremorlift.commands._checks import (
    VL_THRESHOLD_MAX_PCT,
    VL_THRESHOLD_MIN_PCT,
    check_vl_threshold,
)
from tremorlift.commands._output import add_json_option, write_json
from tremorlift.errors import UserError

ORDER = 40
SQLITE_MAGIC = b"SQLite format 3\x00"
BLOCK_S = 10.0  # block size does not change the result (the engine is block-independent); larger is faster


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="analyse a session file or a six-axis CSV",
        description=(
            "Find sets, reps, velocity loss, tremor episodes and alerts. INPUT is a session file "
            "or a CSV with header t,ax,ay,az,gx,gy,gz (s; m/s^2 with gravity; rad/s)."
        ),
    )
    p.add_argument("input", metavar="INPUT", help="session file or CSV")
    add_json_option(p, "the analysis (instead of the table)")
    p.add_argument("--exercise", metavar="NAME", help="exercise name to put on the sets")
    p.add_argument(
        "--goal",
        choices=GOALS,
        help="velocity-loss preset: 10/20/30 %%",
    )
    p.add_argument(
        "--vl-threshold",
        metavar="PCT",
        type=float,
        help=f"explicit velocity-loss threshold, {VL_THRESHOLD_MIN_PCT:g}-"
        f"{VL_THRESHOLD_MAX_PCT:g} %% (overrides --goal)",
    )
    p.add_argument(
        "--placement",
        choices=PLACEMENTS,
        help="where the sensor was worn (overrides what a session file says; the analysis works without it)",
    )
    p.add_argument(
        "--stop-policy",
        choices=STOP_POLICIES,
        help="when the velocity-loss stop comes: one-more (warn at the first rep past the limit, "
        "stop at the next rep that confirms it; the default) or at-limit (stop at the first rep "
        "past the limit)",
    )
    p.add_argument("--no-alerts", action="store_true", help="master switch: raise no alerts at all")
    p.add_argument(
        "--recompute",
        action="store_true",
        help="a session file: analyse its samples afresh with this tremorlift, instead of "
        "reading the final analysis stored when it ended (flags above imply it)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.vl_threshold is not None:
        check_vl_threshold("--vl-threshold", args.vl_threshold)
    path = Path(args.input)
    if _is_session(path):
        result = _analyse_session(path, args)
    else:
        result = _analyse_csv(path, args)
    if args.json:
        write_json(args.json, result)  # OUT is complete or untouched
    else:
        sys.stdout.write(format_table(result))
    return 0


def _is_session(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _analyse_session(path: Path, args: argparse.Namespace) -> Any:
    """A session's final analysis, with the settings it was recorded with; a flag given here
    overrides its setting and the session is analysed afresh (the stored answer is left)."""
    from tremorlift.store.final import compute_final, finalise_file
    from tremorlift.store.reader import SessionReader

    overrides = {
        "exercise": args.exercise, "goal": args.goal, "vl_threshold_pct": args.vl_threshold,
        "placement": args.placement, "alerts_enabled": False if args.no_alerts else None,
        "stop_policy": args.stop_policy,
    }  # fmt: skip
    if all(v is None for v in overrides.values()) and not args.recompute:
        return finalise_file(path)
    if args.goal is not None and args.vl_threshold is None:
        from tremorlift.analysis.alerts import threshold_pct

        # --goal replaces a threshold the session was recorded with, not only its goal.
        overrides["vl_threshold_pct"] = threshold_pct(args.goal, None)
    with SessionReader(path) as reader:
        return compute_final(reader, overrides)


def _analyse_csv(path: Path, args: argparse.Namespace) -> Any:
    """A CSV, read as a stream (gzip-compressed too): one sensor."""
    from tremorlift.analysis.offline import analyze_streams
    from tremorlift.store.csv_input import open_csv

    source = open_csv(path)
    if args.placement is not None:
        source.placement = args.placement
    try:
        result = analyze_streams(
            [source],
            exercise=args.exercise,
            goal=args.goal,
            vl_threshold_pct=args.vl_threshold,
            alerts_enabled=not args.no_alerts,
            stop_policy=args.stop_policy,
        )
    except ValueError as exc:  # e.g. a sample rate too low for tremor
        raise UserError(f"{path}: {exc}") from None
    finally:
        getattr(source, "close", lambda: None)()
    result["input_warnings"] = list(source.warnings)
    return result


def _f(x: Any, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def format_table(result: SessionResult) -> str:
    from tremorlift.analysis.combine import device_results

    lines: list[str] = []
    several = "devices" in result
    for dev in device_results(result):
        if several:
            lines.append(f"== {dev['name']} ({dev.get('placement') or 'placement unknown'}) ==")
        lines.append(
            f"sample rate {dev['sample_rate_hz']:.1f} Hz, {dev['duration_s']:.1f} s, velocity-loss threshold {dev['velocity_loss_threshold_pct']:.0f} %"
        )
        lines.append(
            f"{'set':>3} {'kind':8} {'exercise':14} {'start s':>8} {'end s':>8} {'reps':>4} {'best m/s':>8} {'VL %':>6} {'tremor m/s2':>11}"
        )
        for i, s in enumerate(dev["sets"], 1):
            lines.append(
                f"{i:>3} {s['kind']:8} {s['exercise'][:14]:14} {s['start_s']:8.1f} {s['end_s']:8.1f} {len(s['reps']):>4} "
                f"{_f(s.get('best_velocity_mps'), '8.2f'):>8} {_f(s.get('velocity_loss_pct'), '6.1f'):>6} {_f(s.get('tremor_rms_max_mps2'), '11.3f'):>11}"
            )
            for j, r in enumerate(s["reps"], 1):
                lines.append(
                    f"      rep {j:>2}: {r['start_s']:7.1f}-{r['end_s']:7.1f} s  mean {r['mean_concentric_velocity_mps']:.2f} m/s  "
                    f"peak {r['peak_velocity_mps']:.2f} m/s  ROM {r['rom_m']:.2f} m  VL {r['velocity_loss_pct']:.0f} %"
                )
        if not dev["sets"]:
            lines.append("    (no sets found)")
        lines.append("")
    lines.append("tremor episodes:")
    for e in result["tremor_episodes"]:
        lines.append(
            f"  {e['start_s']:7.1f}-{e['end_s']:7.1f} s  {e['peak_hz']:5.1f} Hz  {e['rms_mps2']:.3f} m/s2  {e['cause']}"
        )
    if not result["tremor_episodes"]:
        lines.append("  (none)")
    lines.append("alerts:")
    for a in result["alerts"]:
        lines.append(f"  {a['t_s']:7.1f} s  {a['level']:5} {a['kind']:14} {a['message']}")
    if not result["alerts"]:
        lines.append("  (none)")
    for w in result.get("input_warnings") or []:
        lines.append(f"input: {w}")
    return "\n".join(lines) + "\n"
