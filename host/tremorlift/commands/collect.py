"""``tremorlift collect``: record and analyse live from one or more wearables (or the twin)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tremorlift import protocol
from tremorlift.analysis import GOALS, PLACEMENTS
from tremorlift.analysis.alerts import STOP_POLICIES
from tremorlift.commands._checks import (
    VL_THRESHOLD_MAX_PCT,
    VL_THRESHOLD_MIN_PCT,
    ScenarioHelpFormatter,
    check_between,
    check_scenario,
    check_vl_threshold,
)
from tremorlift.commands._output import human_stream, no_color
from tremorlift.errors import UserError
from tremorlift.twin import IMUS

if TYPE_CHECKING:
    from tremorlift.collect.setup import CollectConfig

ORDER = 20
# The fastest twin speed-up the collector keeps up with: with 20 % of notifications lost, the
# demo workout loses nothing in transit up to 8x and starts to lose at 16x (bench/
# loss_vs_speed.py on a 2-core laptop-class machine; a slower machine warns after the session).
MAX_TWIN_SPEED = 8.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "collect",
        help="connect to wearables, record the session and analyse it live",
        description="Connect to one or more tremorlift wearables over BLE (or USB serial, or the "
        "digital twin with --simulate), record every frame to a session file and analyse live. "
        "The live log (--no-ui) and warnings go to stderr; stdout gets the closing summary, or "
        "only the JSON with --summary-json -.",
        formatter_class=ScenarioHelpFormatter,
    )
    p.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="NAME|ADDR",
        help="wearable to use (repeat for two; one not paired yet is paired on connect); "
        "default: every paired wearable found (see `tremorlift pair`)",
    )
    p.add_argument(
        "--any",
        action="store_true",
        help="without --device: use every wearable in range, paired or not",
    )
    p.add_argument(
        "--scan-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="look for wearables for S seconds before connecting (default 5)",
    )
    p.add_argument(
        "--serial",
        nargs="?",
        const="twin",
        metavar="PORT",
        help="use USB serial on PORT instead of BLE (with --simulate: the twin's serial port)",
    )
    p.add_argument(
        "--simulate", metavar="SCENARIO", help="collect from the digital twin playing SCENARIO"
    )
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help=f"twin speed-up, at most {MAX_TWIN_SPEED:g} (default 1)",
    )
    p.add_argument(
        "--twin",
        choices=("micropython", "cpython"),
        help="with --simulate: run the firmware on the MicroPython binary with NimBLE (the "
        "default where it is built; real time only) or inside this process (CPython; any speed)",
    )
    p.add_argument(
        "--twin-interval-ms",
        type=float,
        choices=(7.5, 15.0, 30.0, 50.0),
        metavar="MS",
        help="with --simulate: the connection interval the twin's radio paces its links at "
        "(7.5, 15, 30 or 50 ms; default 30, what BlueZ picks)",
    )
    p.add_argument("--seed", type=int, default=0, help="twin scenario seed (default 0)")
    p.add_argument("--imu", choices=IMUS, default=IMUS[0], help="twin IMU model")
    p.add_argument(
        "--rate", type=int, metavar="HZ", help="configure the wearable's sample rate first"
    )
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument(
        "--session", metavar="FILE", help="session file to create (default: in the data folder)"
    )
    p.add_argument("--exercise", metavar="NAME", help="exercise name, e.g. squat")
    p.add_argument("--goal", choices=GOALS, help="velocity-loss goal preset")
    p.add_argument(
        "--vl-threshold",
        type=float,
        metavar="PCT",
        help=f"explicit velocity-loss threshold, {VL_THRESHOLD_MIN_PCT:g}-"
        f"{VL_THRESHOLD_MAX_PCT:g} %%",
    )
    p.add_argument("--placement", choices=PLACEMENTS, help="where the wearable is strapped")
    p.add_argument(
        "--stop-policy",
        choices=STOP_POLICIES,
        help="when the velocity-loss stop comes: one-more (warn at the first rep past the limit, "
        "stop at the next rep that confirms it; the default) or at-limit (stop at once)",
    )
    p.add_argument(
        "--load-kg",
        type=float,
        metavar="KG",
        help="the load lifted in this session's sets, kg (for the load-velocity profile and 1RM)",
    )
    p.add_argument("--no-alerts", action="store_true", help="master switch: no alerts of any kind")
    p.add_argument(
        "--no-haptic", action="store_true", help="no buzz on the wearable for warn and stop"
    )
    p.add_argument("--no-sound", action="store_true", help="no tone on the laptop")
    p.add_argument("--no-speech", action="store_true", help="no spoken words on the laptop")
    p.add_argument(
        "--summary-json",
        metavar="OUT",
        help="write the link and loss summary as JSON to OUT ('-': stdout, human text on stderr)",
    )
    p.add_argument(
        "--events",
        metavar="OUT",
        help="write every set, rep, alert, tremor and link event as one JSON line to OUT as it "
        "happens ('-': stdout, human text on stderr; docs/events.md)",
    )
    p.add_argument(
        "--web",
        metavar="[HOST:]PORT",
        help="serve the live page for a phone at the rack on PORT (0: any free port), on this "
        "machine only; with HOST (e.g. 0.0.0.0:8080) on the network, behind a secret address "
        "printed with its QR code",
    )
    p.add_argument(
        "--no-ui", action="store_true", help="one line per event instead of the dashboard"
    )
    p.add_argument(
        "--inject",
        metavar="SPEC",
        help="with --simulate: faults to inject, e.g. disconnect@20:5,drop=0.05,reboot@40 "
        "(times in the wearable's seconds after streaming starts; see tremorlift.twin.radio.faults)",
    )
    p.set_defaults(run=run)


def _validate(args: argparse.Namespace) -> None:
    if args.simulate is not None:
        check_scenario(args.simulate)
    elif args.serial == "twin":
        raise UserError("--serial needs a PORT (e.g. /dev/ttyACM0) unless --simulate is given")
    if not 0 < args.speed <= MAX_TWIN_SPEED:
        raise UserError(
            f"--speed must be in (0, {MAX_TWIN_SPEED:g}], got {args.speed:g}: faster than that "
            "the collector cannot keep up with the twin (samples are lost and the session would "
            "not be a true recording; bench/loss_vs_speed.py measures it)"
        )
    if args.duration is not None and not args.duration > 0:
        raise UserError(f"--duration must be positive, got {args.duration:g}")
    if args.vl_threshold is not None:
        check_vl_threshold("--vl-threshold", args.vl_threshold)
    check_between("--scan-timeout", args.scan_timeout, 0.5, 120, " s")
    if args.rate is not None and args.rate not in protocol.CONFIGURE_ODRS_HZ:
        rates = ", ".join(map(str, protocol.CONFIGURE_ODRS_HZ))
        raise UserError(f"--rate must be one of {rates} Hz, got {args.rate}")
    if args.rate is not None and args.serial not in (None, "twin") and args.simulate is None:
        # A board whose USB is a 115200-baud UART bridge cannot carry 1 kHz: say so now.
        from tremorlift.transport.serial import check_stream_fits

        check_stream_fits(args.serial, args.rate)
    if args.session is not None:
        if Path(args.session).exists():
            raise UserError(f"{args.session}: already exists; choose another file name")
        parent = Path(args.session).resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UserError(f"{args.session}: folder {parent} does not exist or is not writable")
    if args.summary_json is not None and args.summary_json != "-":
        parent = Path(args.summary_json).resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UserError(
                f"{args.summary_json}: folder {parent} does not exist or is not writable"
            )
    if args.events is not None:
        from tremorlift.collect.event_stream import check_events_target

        if args.events == "-" and args.summary_json == "-":
            raise UserError("--events - and --summary-json - both write to stdout: give one a file")
        check_events_target(args.events)
    if args.web is not None:
        from tremorlift.collect.web import parse_web_spec

        args.web_address = parse_web_spec(args.web)
    if args.twin_interval_ms is not None and args.simulate is None:
        raise UserError("--twin-interval-ms needs --simulate: it paces the digital twin's radio")
    if args.inject is not None:
        if args.simulate is None:
            raise UserError("--inject needs --simulate: faults are injected into the digital twin")
        from tremorlift.twin.radio.faults import check_faults, parse_inject

        check_faults(parse_inject(args.inject), serial=args.serial is not None)
    if args.twin is not None:
        if args.simulate is None:
            raise UserError("--twin needs --simulate: it picks how the digital twin runs")
        if args.twin == "micropython":
            from tremorlift.twin import runtime

            runtime.choose(
                "micropython", speed=args.speed,
                transport="serial" if args.serial is not None else "ble",
                fault_kinds=_fault_kinds(args),
            )  # fmt: skip
    if args.serial is None and not args.device and not args.any:
        # BLE takes only the user's own wearables: say how to pair before scanning for nothing.
        from tremorlift.transport.pairing import load_paired, no_paired_message

        if not load_paired():
            raise UserError(no_paired_message(args.simulate))


def _json_targets(args: argparse.Namespace) -> tuple[str | None, ...]:
    """Every option that can send JSON to stdout (``-``)."""
    return (args.summary_json, getattr(args, "events", None))


def _streams(args: argparse.Namespace, cfg: CollectConfig) -> None:
    """--events and --web: the session's events as JSON lines, and the live page's server."""
    if args.events is not None:
        from tremorlift.collect.event_stream import EventLines

        cfg.listeners.append(EventLines(args.events))
    if args.web is not None:
        from tremorlift.collect.web import WebServer, is_loopback, new_token

        host, port = args.web_address
        cfg.web = WebServer(
            host, port, token=None if is_loopback(host) else new_token(),
            announce=lambda text: print(text, file=sys.stderr, flush=True),
        )  # fmt: skip


def _fault_kinds(args: argparse.Namespace) -> tuple[str, ...]:
    if args.inject is None:
        return ()
    from tremorlift.twin.radio.faults import parse_inject

    return tuple(f.kind for f in parse_inject(args.inject))


def run(args: argparse.Namespace) -> int:
    _validate(args)
    # The BLE stacks log every late notification after an unsubscribe as a warning; the
    # dashboard and the summary already account for each frame.
    logging.getLogger("bumble").setLevel(logging.ERROR)
    from tremorlift.coach.history import register_session
    from tremorlift.collect.collector import CollectOptions
    from tremorlift.collect.dashboard import Dashboard, EventPrinter
    from tremorlift.collect.feedback import Feedback
    from tremorlift.collect.setup import CollectConfig, collect
    from tremorlift.settings import effective_settings

    # The config file's per-exercise settings, with the flags given here on top.
    settings = effective_settings(args.exercise, {
        "goal": args.goal, "vl_threshold_pct": args.vl_threshold, "placement": args.placement,
        "haptic": False if args.no_haptic else None, "sound": False if args.no_sound else None,
        "speech": False if args.no_speech else None, "screen": False if args.no_ui else None,
        "stop_policy": args.stop_policy, "load_kg": args.load_kg,
    })  # fmt: skip
    options = CollectOptions(
        duration_s=args.duration, exercise=args.exercise, goal=settings.goal,
        vl_threshold_pct=settings.vl_threshold_pct, placement=settings.placement,
        alerts_enabled=not args.no_alerts, haptic=settings.haptic,
        stop_policy=settings.stop_policy, load_kg=settings.load_kg,
    )  # fmt: skip
    cfg = CollectConfig(
        devices=args.device, serial=args.serial, simulate=args.simulate, speed=args.speed,
        seed=args.seed, imu=args.imu, odr_hz=args.rate, session_path=args.session,
        summary_json=None if args.summary_json == "-" else args.summary_json,
        ui=settings.screen, options=options,
        feedback=Feedback(haptic=False, sound=settings.sound, speech=settings.speech),
        paired_only=not args.any, scan_timeout_s=args.scan_timeout,
        twin=args.twin, fault_kinds=_fault_kinds(args), twin_interval_ms=args.twin_interval_ms,
    )  # fmt: skip
    # Human text never shares stdout with JSON: with a JSON stream on stdout, the dashboard
    # and the closing lines go to stderr. The plain live log (and every in-session error in it)
    # is always on stderr.
    out = human_stream(*_json_targets(args))
    use_dashboard = cfg.ui and out.isatty()
    ui = Dashboard(out, no_color=no_color()) if use_dashboard else EventPrinter(sys.stderr)
    _streams(args, cfg)
    hook = None
    if args.inject is not None:
        from tremorlift.twin.radio.faults import FaultInjector, parse_inject

        hook = FaultInjector(parse_inject(args.inject), emit=ui.event)
    with ui:
        try:
            summary = asyncio.run(collect(cfg, ui.event, ui, hook))
        except KeyboardInterrupt:
            raise
    if args.summary_json == "-":
        print(json.dumps(summary, indent=2), flush=True)
    lost = summary["samples_lost"]
    print(
        f"{summary['transport']}: {len(summary['devices'])} wearable(s), {summary['samples_received']} samples "
        f"received, {lost} lost, {summary['frames_corrupt']} corrupt frames, {summary['reconnects']} reconnects "
        f"in {summary['duration_s']:.1f} s",
        file=out,
    )
    if summary.get("injected"):
        rec = summary["recovery"]
        print(
            f"injected {', '.join(i['fault'] for i in summary['injected'])}: "
            f"{rec['samples_recovered_by_resend']} samples recovered by resend, "
            f"{rec['samples_lost_in_transit']} lost in transit, {rec['samples_lost_on_device']} lost on "
            f"the device, {rec['reboots_seen']} reboots seen",
            file=out,
        )
    in_transit = summary["recovery"]["samples_lost_in_transit"]
    if args.simulate is not None and args.speed > 1 and in_transit and not args.inject:
        print(
            f"tremorlift: warning: {in_transit} samples lost in transit at --speed {args.speed:g}: "
            "this machine did not keep up with the twin; use a lower --speed",
            file=sys.stderr,
        )
    final = summary.get("final")
    if final is not None:
        told = final["live_alerts_agreeing"]
        differ = final["live_alerts_differing"]
        print(
            f"final analysis: {sum(d['sets'] for d in final['devices'])} sets, "
            f"{sum(d['reps'] for d in final['devices'])} reps; live calls: {told} as the final "
            f"analysis has them" + (f", {len(differ)} differed" if differ else ""),
            file=out,
        )
    print(f"session recorded to {summary['session']} (ended by {summary['ended_by']})", file=out)
    try:
        register_session(summary["session"])
    except UserError as exc:  # the recording is safe; only the history index missed it
        print(f"tremorlift: warning: not added to the history: {exc}", file=sys.stderr)
    return 0
