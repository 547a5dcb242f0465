"""``tremorlift pair``: pair with a wearable and remember it as yours."""

from __future__ import annotations

import argparse
import asyncio
import logging

from tremorlift.commands._checks import check_between, check_scenario
from tremorlift.errors import UserError

ORDER = 15


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pair",
        help="pair with a wearable (needed before it takes commands) and remember it",
        description="Pair with a tremorlift wearable over BLE (LE Secure Connections, bonded), check "
        "that it now takes commands, and record it in the paired-devices file, so `tremorlift "
        "collect` connects to it (and only to your wearables) without --device.",
    )
    p.add_argument(
        "--device",
        metavar="NAME|ADDR",
        help="the wearable to pair (default: the only one in range)",
    )
    p.add_argument(
        "--simulate",
        metavar="SCENARIO",
        help="pair with the digital twin's wearable (playing SCENARIO) instead",
    )
    p.add_argument("--seed", type=int, default=0, help="twin scenario seed (default 0)")
    p.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="scan for S seconds (default 5)"
    )
    p.add_argument("--list", action="store_true", help="list the paired wearables and exit")
    p.add_argument(
        "--forget",
        metavar="NAME|ADDR",
        help="remove a wearable from the paired list (also remove the bond in your "
        "system's Bluetooth settings)",
    )
    p.set_defaults(run=run)


async def _pair(args: argparse.Namespace) -> None:
    from tremorlift.transport.pairing import pair_wearable

    if args.simulate is None:
        entry, status = await pair_wearable(args.device, scan_timeout_s=args.timeout)
    else:
        from tremorlift.twin.wearable import TwinFleet

        async with TwinFleet(args.simulate, seed=args.seed) as fleet:
            entry, status = await pair_wearable(
                args.device, backend=fleet.backend, scan_timeout_s=args.timeout, twin=True
            )
    print(
        f"paired with {entry.name} ({entry.address}): link encrypted, commands accepted "
        f"(firmware {'.'.join(map(str, status.fw_version))})"
    )


def run(args: argparse.Namespace) -> int:
    from tremorlift.transport.pairing import forget, load_paired, paired_path

    if args.list:
        wearables = load_paired()
        if not wearables:
            print("no paired wearable (pair one with `tremorlift pair`)")
            return 0
        for w in wearables:
            print(f"{w.name:10} {w.address:18} paired {w.paired_utc}{'  (twin)' if w.twin else ''}")
        return 0
    if args.forget is not None:
        gone = forget(args.forget)
        if gone is None:
            raise UserError(f"{args.forget}: not in the paired list ({paired_path()})")
        print(f"forgot {gone.name} ({gone.address})")
        return 0
    check_between("--timeout", args.timeout, 0.5, 120, " s")
    if args.simulate is not None:
        check_scenario(args.simulate)
    logging.getLogger("bumble").setLevel(logging.ERROR)
    asyncio.run(_pair(args))
    return 0
