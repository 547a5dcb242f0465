"""Loss against the twin's speed-up, with 20 % of notifications lost, and alert-to-buzz times.

The demo workout (two bench sets, the second slowing into a warning, then a hold) through the
collector and the twin's BLE radio, once per ``--speed``: the twin plays the workout X times
faster and the collector must keep up (decode, record, resend, analyse live). Prints per speed
the samples lost in transit after every resend, the holes the live analysis had to give up,
the longest a frame waited for a hole, and the live alerts with their alert-to-buzz time; and
once at real time without loss, the alert-to-buzz time the lifter gets on a clean link.

    python bench/loss_vs_speed.py [--speeds 1,2,4,8,16] [--drop 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

from tremorlift.collect.collector import CollectOptions
from tremorlift.collect.setup import CollectConfig, collect
from tremorlift.twin.radio.faults import FaultInjector, parse_inject


def run(speed: float, drop: float, folder: Path) -> dict[str, Any]:
    logging.getLogger("bumble").setLevel(logging.ERROR)
    options = CollectOptions(exercise="bench", goal="strength")
    cfg = CollectConfig(
        devices=[], simulate="demo", speed=speed, session_path=str(folder / f"s{speed:g}-{drop:g}"),
        ui=False, scan_timeout_s=1.0, options=options,
    )  # fmt: skip
    hook = FaultInjector(parse_inject(f"drop={drop:g}"), lambda line: None) if drop else None
    return asyncio.run(collect(cfg, lambda line: None, None, hook))


def row(speed: float, drop: float, s: dict[str, Any]) -> str:
    rec = s["recovery"]
    dev = s["devices"][0]
    told = [a for a in s["live_alerts"] if a["level"] in ("warn", "stop")]
    differ = len(s.get("final", {}).get("live_alerts_differing", []))
    buzz = ", ".join(f"{x:.0f}" for x in dev["alert_to_buzz_ms"]) or "-"
    return (
        f"{speed:6g} {drop:5.2f} {s['samples_expected']:9d} {rec['samples_lost_in_transit']:8d} "
        f"{100 * rec['samples_lost_in_transit'] / max(1, s['samples_expected']):6.2f} "
        f"{rec['resend_requests']:7d} {rec['live_holes_given_up']:6d} {dev['live_max_wait_ms']:8.0f} "
        f"{len(told):5d} {differ:6d}  {buzz}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speeds", default="1,2,4,8,16", help="comma-separated speed-ups")
    ap.add_argument("--drop", type=float, default=0.2, help="share of notifications lost")
    args = ap.parse_args()
    speeds = [float(x) for x in args.speeds.split(",")]
    print("demo workout, BLE twin, one wearable at 200 Hz (data: the twin's motion generator)")
    print(
        f"{'speed':>6} {'drop':>5} {'expected':>9} {'lost':>8} {'lost%':>6} {'resends':>7} "
        f"{'holes':>6} {'wait ms':>8} {'calls':>5} {'differ':>6}  alert-to-buzz ms"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(row(1.0, 0.0, run(1.0, 0.0, folder)), flush=True)
        for speed in speeds:
            print(row(speed, args.drop, run(speed, args.drop, folder)), flush=True)


if __name__ == "__main__":
    main()
