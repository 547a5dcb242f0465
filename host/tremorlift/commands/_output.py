"""Where a command's output goes: one meaning of ``--json`` for every command, human text on
stderr whenever JSON takes stdout, and colour only when the user has not turned it off."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

STDOUT = "-"
# https://no-color.org: set and not empty means no colour. ``tremorlift --no-color`` sets it
# for the rest of the process, so every coloured output (rich) obeys one switch.
NO_COLOR_ENV = "NO_COLOR"


def add_json_option(p: Any, what: str) -> None:
    """``--json [OUT]``: write ``what`` as JSON to the file OUT, or to stdout (``-``, or no OUT)."""
    p.add_argument(
        "--json",
        nargs="?",
        const=STDOUT,
        metavar="OUT",
        help=f"write {what} as JSON to OUT ('-' or none: stdout)",
    )


def json_to_stdout(*targets: str | None) -> bool:
    return any(t == STDOUT for t in targets)


def human_stream(*json_targets: str | None) -> TextIO:
    """stdout for the human lines, unless one of the JSON outputs is stdout: then stderr, so
    stdout carries nothing but the JSON."""
    return sys.stderr if json_to_stdout(*json_targets) else sys.stdout


def write_json(target: str, data: Any) -> None:
    """``data`` as indented JSON to stdout (``-``) or to a file, written whole or not at all."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    if target == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from tremorlift.store.files import write_atomic

    write_atomic(target, text)  # a UserError naming the file when it cannot be written


def set_no_color() -> None:
    os.environ[NO_COLOR_ENV] = "1"


def no_color() -> bool:
    return os.environ.get(NO_COLOR_ENV, "") != ""
