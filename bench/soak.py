"""Soak test: two emulated wearables at 1 kHz through the real collector, with random faults.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 1000] [--seed 1] [--keep DIR]

Runs the collector against the digital twin (``two-sensors``: two wearables on one radio) in
real time for ``--minutes`` of wall time while a seeded random plan of faults plays out:
short link outages on either wearable (each shorter than the wearable's resend ring),
notifications lost on the air throughout, and one reboot of the first wearable. Prints what
was lost (in transit: the goal is 0; on the device and across the reboot: stated apart, they
cannot be resent by design), memory (RSS) from start to end, reconnects and resend volume.
Exit status 1 if anything was lost in transit (outside a boot that ended in a reboot) or memory
grew by more than ``--max-rss-growth-mb`` after the first interval (imports and renders done).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tremorlift import protocol
from tremorlift.collect.collector import CollectOptions
from tremorlift.collect.setup import CollectConfig, collect
from tremorlift.store.reader import SessionReader
from tremorlift.twin.radio.faults import Fault, FaultInjector

RSS_SAMPLE_INTERVAL_S = 15.0


def rss_mb() -> float:
    """Resident set size of this process (Linux /proc), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def fault_plan(minutes: float, seed: int, drop: float) -> list[Fault]:
    """Random outages every 30-70 s on either wearable, one reboot near 60 % of the run,
    notification loss throughout. Times in the wearables' seconds (= wall seconds here)."""
    rng = random.Random(seed)
    total_s = minutes * 60.0
    faults = [Fault("drop", probability=drop)]
    reboot_at = round(total_s * 0.6, 1)
    t = rng.uniform(15.0, 30.0)
    while t < total_s - 20.0:
        if abs(t - reboot_at) < 15.0:  # a reset mid-recovery takes the ring with it: keep apart
            t += 15.0
            continue
        faults.append(
            Fault("disconnect", at_s=round(t, 1), duration_s=round(rng.uniform(0.5, 2.5), 1),
                  device=rng.randrange(2))
        )  # fmt: skip
        t += rng.uniform(30.0, 70.0)
    faults.append(Fault("reboot", at_s=reboot_at, device=0))
    return faults


def reboot_gaps_s(session: Path) -> list[float]:
    """Per reboot seen: host seconds between the last sample of a boot and the first of the next."""
    gaps = []
    with SessionReader(session) as r:
        for a in r.all_arrays().values():
            change = np.flatnonzero(np.diff(a.boot) != 0)
            gaps.extend(float(a.t_s[i + 1] - a.t_s[i]) for i in change)
    return gaps


async def soak(args: argparse.Namespace, session: Path) -> dict[str, Any]:
    faults = fault_plan(args.minutes, args.seed, args.drop)
    lines: list[str] = []

    def emit(line: str) -> None:
        lines.append(line)
        if args.verbose:
            print(line, flush=True)

    injector = FaultInjector(faults, emit)
    rss: list[tuple[float, float]] = [(0.0, rss_mb())]
    t0 = time.monotonic()

    async def hook(collector: Any, fleet: Any) -> None:
        async def sample_rss() -> None:
            while True:
                await asyncio.sleep(RSS_SAMPLE_INTERVAL_S)
                rss.append((time.monotonic() - t0, rss_mb()))

        sampler = asyncio.create_task(sample_rss())
        try:
            await injector(collector, fleet)
        finally:
            sampler.cancel()

    cfg = CollectConfig(
        devices=[], simulate="two-sensors", speed=1.0, seed=args.seed, odr_hz=args.rate,
        session_path=str(session), ui=False, scan_timeout_s=2.0,
        options=CollectOptions(duration_s=args.minutes * 60.0),
    )  # fmt: skip
    summary = await collect(cfg, emit, None, hook)
    rss.append((time.monotonic() - t0, rss_mb()))
    summary["rss_mb"] = rss
    summary["fault_plan"] = [f.spec() for f in faults]
    return summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="wall time to run (default 10)")
    p.add_argument(
        "--rate", type=int, default=1000, choices=protocol.CONFIGURE_ODRS_HZ, help="IMU rate, Hz"
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the fault plan and the scenario")
    p.add_argument("--drop", type=float, default=0.02, help="notification loss throughout (0..1)")
    p.add_argument("--max-rss-growth-mb", type=float, default=40.0)
    p.add_argument("--keep", metavar="DIR", help="keep the session and summary in DIR")
    p.add_argument(
        "--verbose", action="store_true", help="print the collector's events as they come"
    )
    args = p.parse_args()
    if not args.minutes > 0:
        p.error("--minutes must be positive")
    logging.getLogger("bumble").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="tremorlift-soak-") as tmp:
        out = Path(args.keep) if args.keep else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        session = out / "soak.tlsession"
        if session.exists():
            session.unlink()
        wall0 = time.monotonic()
        summary = asyncio.run(soak(args, session))
        wall_s = time.monotonic() - wall0
        gaps = reboot_gaps_s(session)
        if args.keep:
            (out / "soak-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    rec = summary["recovery"]
    # Frames still unsent (or being resent) when a wearable reset died with its RAM: count the
    # losses of every boot that ended in a reboot apart from those of the running boots.
    last_boot = {i: d["reboots"] for i, d in enumerate(summary["devices"])}  # boots count from 0
    lost_before_reboot = sum(r[3] for r in rec["lost_ranges"] if r[1] < last_boot[r[0]])
    # Device-side gaps (FIFO overflow) of those boots are already counted "on device".
    lost_before_reboot -= sum(
        r[2]
        for i, d in enumerate(summary["devices"])
        for r in d.get("device_gap_ranges", [])
        if r[0] < last_boot[i]
    )
    lost_in_transit = rec["samples_lost_in_transit"] - lost_before_reboot
    rss = summary["rss_mb"]
    warm = (
        rss[1][1] if len(rss) > 2 else rss[0][1]
    )  # after the first interval: imports, renders done
    growth = rss[-1][1] - warm
    print(
        f"soak: {len(summary['devices'])} wearables at {args.rate} Hz, {wall_s / 60:.1f} min wall time"
    )
    print(f"faults injected: {len(summary.get('injected', []))} "
          f"({', '.join(i['fault'] for i in summary.get('injected', []))})")  # fmt: skip
    print(
        f"samples: expected {summary['samples_expected']}, received {summary['samples_received']}"
    )
    print(f"  lost in transit:  {lost_in_transit}  (goal 0)")
    print(f"  lost in a boot that ended in a reboot: {lost_before_reboot}")
    print(f"  lost on device:   {rec['samples_lost_on_device']}  (FIFO overflow / IMU re-init)")
    print(f"  reboots seen:     {rec['reboots_seen']}, time without samples across them: "
          f"{', '.join(f'{g:.2f} s' for g in gaps) or '-'}")  # fmt: skip
    print(f"link: {rec['disconnects']} disconnects, {rec['reconnects']} reconnects, "
          f"{rec['resend_requests']} RESEND requests, {rec['frames_resent']} frames resent "
          f"({rec['samples_recovered_by_resend']} samples recovered), {rec['duplicates']} duplicates")  # fmt: skip
    print("rss: " + ", ".join(f"{t:.0f} s {m:.1f} MiB" for t, m in rss))
    print(f"rss: start {rss[0][1]:.1f} MiB, warm {warm:.1f} MiB, end {rss[-1][1]:.1f} MiB "
          f"(growth after warm-up {growth:+.1f} MiB)")  # fmt: skip
    ok = lost_in_transit == 0 and growth <= args.max_rss_growth_mb
    if rec["samples_lost_in_transit"]:
        print(f"lost ranges: {rec['lost_ranges'][:20]}")
    print("soak: OK" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
