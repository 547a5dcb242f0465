"""``tremorlift pair``: pair with a wearable and remember it as yours."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import TYPE_CHECKING

from tremorlift.analysis import PLACEMENTS
from tremorlift.commands._checks import check_between, check_scenario
from tremorlift.errors import UserError

if TYPE_CHECKING:
    from tremorlift.transport.pairing import PairedWearable

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
    p.add_argument(
        "--name",
        metavar="NAME",
        help="your name for the wearable, e.g. left-forearm (up to 24 letters and digits joined "
        "by - _ or .); a name starting left- or right- sets the limb, one ending in a "
        "placement sets the placement. With --device naming a wearable already paired: rename "
        "it (no radio needed)",
    )
    p.add_argument(
        "--limb",
        choices=("left", "right"),
        help="the side the wearable is worn on (default: from --name, else not recorded)",
    )
    p.add_argument(
        "--placement",
        choices=PLACEMENTS,
        help="where on the limb it is worn (default: from --name, else not recorded)",
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

    label = {"label": args.name, "limb": args.limb, "placement": args.placement}
    if args.simulate is None:
        entry, status = await pair_wearable(args.device, scan_timeout_s=args.timeout, **label)
    else:
        from tremorlift.twin.wearable import TwinFleet

        async with TwinFleet(args.simulate, seed=args.seed) as fleet:
            entry, status = await pair_wearable(
                args.device, backend=fleet.backend, scan_timeout_s=args.timeout, twin=True, **label
            )
    print(
        f"paired with {_described(entry)}: link encrypted, commands accepted "
        f"(firmware {'.'.join(map(str, status.fw_version))})"
    )


def _described(w: PairedWearable) -> str:
    """``left-forearm (TL-1A2B, F3:..., left forearm)``: the names, address and where it is worn."""
    where = " ".join(x for x in (w.limb, w.placement) if x)
    inner = ", ".join(x for x in (w.name if w.label else None, w.address, where) if x)
    return f"{w.shown_name} ({inner})"


def _list() -> int:
    from tremorlift.transport.pairing import load_paired

    wearables = load_paired()
    if not wearables:
        print("no paired wearable (pair one with `tremorlift pair`)")
        return 0
    print(f"{'name':24} {'limb':5} {'placement':9} {'wearable':10} {'address':17} paired")
    for w in wearables:
        print(
            f"{w.label or '-':24} {w.limb or '-':5} {w.placement or '-':9} {w.name:10} "
            f"{w.address:17} {w.paired_utc}{'  (twin)' if w.twin else ''}"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    from tremorlift.transport.pairing import (
        find,
        forget,
        label_settings,
        load_paired,
        paired_path,
        rename,
    )

    if args.list:
        return _list()
    if args.forget is not None:
        gone = forget(args.forget)
        if gone is None:
            raise UserError(f"{args.forget}: not in the paired list ({paired_path()})")
        print(f"forgot {_described(gone)}")
        return 0
    label_settings(args.name, args.limb, args.placement)  # bad names: exit 2 before any radio
    relabel = args.name is not None or args.limb is not None or args.placement is not None
    if relabel and args.device is not None:
        if find(load_paired(), args.device, args.device) is not None:
            entry = rename(args.device, args.name, limb=args.limb, placement=args.placement)
            print(f"renamed: {_described(entry)}")
            return 0
    check_between("--timeout", args.timeout, 0.5, 120, " s")
    if args.simulate is not None:
        check_scenario(args.simulate)
    logging.getLogger("bumble").setLevel(logging.ERROR)
    asyncio.run(_pair(args))
    return 0
