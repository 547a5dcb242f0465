"""The ``tremorlift`` command: parses arguments and hands over to a sub-command module."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from tremorlift import __version__, commands
from tremorlift.commands._output import set_no_color
from tremorlift.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse exits with status 2 on bad arguments already; keep its one-line message."""


def _command_modules() -> list[ModuleType]:
    mods = [
        importlib.import_module(f"{commands.__name__}.{info.name}")
        for info in pkgutil.iter_modules(commands.__path__)
        if not info.name.startswith("_")
    ]
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tremorlift",
        description="tremorlift: tremor and velocity loss from a wearable IMU, mid-set.",
    )
    parser.add_argument("--version", action="version", version=f"tremorlift {__version__}")
    parser.add_argument(
        "--no-color",
        action="store_true",
        help="no colour in any output (as NO_COLOR=1 in the environment, https://no-color.org)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _command_modules():
        mod.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.no_color:
        set_no_color()
    try:
        return int(args.run(args) or 0)
    except UserError as exc:
        print(f"tremorlift: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("tremorlift: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`tremorlift report ... | head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
