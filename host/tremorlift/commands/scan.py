"""``tremorlift scan``: list the wearables in range."""

from __future__ import annotations

import argparse
import asyncio
import sys

from tremorlift.commands._checks import ScenarioHelpFormatter, check_between, check_scenario
from tremorlift.commands._output import add_json_option, write_json

ORDER = 10


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scan",
        help="list tremorlift wearables in range",
        description="Scan for tremorlift wearables: name, address, signal strength, battery.",
        formatter_class=ScenarioHelpFormatter,
    )
    p.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="scan for S seconds (default 5)"
    )
    p.add_argument(
        "--simulate",
        metavar="SCENARIO",
        help="scan the digital twin's radio (wearables playing SCENARIO) instead of Bluetooth",
    )
    add_json_option(p, "the wearables found (instead of the table)")
    p.set_defaults(run=run)


async def _scan(args: argparse.Namespace) -> list[dict[str, object]]:
    from tremorlift.transport.ble import scan

    if args.simulate is None:
        found = await scan(args.timeout)
    else:
        from tremorlift.twin.wearable import TwinFleet

        async with TwinFleet(args.simulate) as fleet:
            found = await scan(args.timeout, backend=fleet.backend)
    return [
        {"name": w.name, "address": w.address, "rssi_dbm": w.rssi_dbm, "battery_pct": w.battery_pct,
         "protocol_version": w.protocol_version}
        for w in found
    ]  # fmt: skip


def run(args: argparse.Namespace) -> int:
    check_between("--timeout", args.timeout, 0.5, 120, " s")
    if args.simulate is not None:
        check_scenario(args.simulate)
    rows = asyncio.run(_scan(args))
    if args.json:
        write_json(args.json, rows)
    if not rows:
        print(
            "no tremorlift wearable found (is it switched on, charged and not connected elsewhere?)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        return 0
    print(f"{'name':10} {'address':18} {'signal':>8} {'battery':>8}  protocol")
    for r in rows:
        battery = "-" if r["battery_pct"] is None else f"{r['battery_pct']} %"
        print(
            f"{r['name']!s:10} {r['address']!s:18} {r['rssi_dbm']!s:>4} dBm {battery:>8}  "
            f"v{r['protocol_version']}"
        )
    return 0
