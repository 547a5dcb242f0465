#!/usr/bin/env python3
"""Copy the built firmware (build/, from `make firmware`) to a board with mpremote (`make flash`).

    python tools/flash.py --port /dev/ttyUSB0 [--build build] [--hard-reset] [--dry-run]

MicroPython itself must already be on the board (esptool, once). This copies the tree:
each folder of build/ (lib/...) recursively, each top-level file (main.py, boot.py) to
the root. Before copying, the packages under /lib that build/lib replaces are removed on
the board: MicroPython imports a .py before a .mpy of the same name, so a stale source
file from an earlier copy would otherwise shadow the new build. Finally the board is
soft-reset from its normal REPL, which runs boot.py and main.py (a soft reset from
mpremote's raw REPL would skip main.py).

Exit status: 0 done, 1 mpremote failed, 2 bad arguments (no such port, no build).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

# mpremote's own shortcuts: a0 = /dev/ttyACM0, u0 = /dev/ttyUSB0, c0 = COM0.
_SHORTCUT = re.compile(r"^([auc])(\d+)$")
_SHORTCUT_PREFIX = {"a": "/dev/ttyACM", "u": "/dev/ttyUSB", "c": "COM"}
# Ctrl-D in MicroPython's normal REPL: soft reset, then boot.py and main.py run.
_CTRL_D = b"\x04"
_SOFT_REBOOT_BANNER = b"soft reboot"
SOFT_RESET_WAIT_S = 3.0

# Runs on the board before the copy: remove what the build replaces, make sure /lib exists.
_PREPARE = """\
import os
def _rm(p):
    try:
        mode = os.stat(p)[0]
    except OSError:
        return
    if mode & 0x4000:
        for e in os.listdir(p):
            _rm(p + '/' + e)
        os.rmdir(p)
    else:
        os.remove(p)
for _p in {paths!r}:
    _rm(_p)
try:
    os.mkdir('/lib')
except OSError:
    pass
"""


class FlashError(Exception):
    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def resolve_port(port: str) -> str:
    """The serial device for PORT; FlashError (exit 2) if there is no such port."""
    m = _SHORTCUT.match(port)
    if m:
        port = _SHORTCUT_PREFIX[m.group(1)] + m.group(2)
    if port.startswith("port:"):
        port = port[len("port:") :]
    if os.path.exists(port):
        return port
    # Windows COM ports and some others are not files: ask pyserial what is attached.
    from serial.tools import list_ports

    attached = [p.device for p in list_ports.comports()]
    if port in attached:
        return port
    listing = ", ".join(sorted(attached)) or "none"
    raise FlashError(f"no serial port {port!r} (attached: {listing})")


def _copy_entry(entry: Path, dest: str, remove: list[str], commands: list[list[str]]) -> None:
    if entry.is_dir():
        # The folder is removed on the board first, so mpremote creates dest and copies the
        # folder's contents into it (were dest there, it would copy into dest/<name>).
        remove.append(dest)
        commands.append(["fs", "cp", "-r", str(entry), f":{dest}"])
    else:
        commands.append(["fs", "cp", str(entry), f":{dest}"])


def board_paths(build: Path) -> tuple[list[str], list[str], list[list[str]]]:
    """(paths to remove on the board, files copied, mpremote fs commands) for a build tree."""
    if not build.is_dir() or not any(build.iterdir()):
        raise FlashError(f"nothing to flash in {build}/: run `make firmware` first")
    remove: list[str] = []
    commands: list[list[str]] = []
    for entry in sorted(build.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and entry.name == "lib":
            # Each package of lib/ separately, so other libraries on the board stay.
            for item in sorted(entry.iterdir()):
                _copy_entry(item, f"/lib/{item.name}", remove, commands)
        else:
            _copy_entry(entry, f"/{entry.name}", remove, commands)
    copied = sorted(f"/{p.relative_to(build).as_posix()}" for p in build.rglob("*") if p.is_file())
    return remove, copied, commands


def mpremote_command(port: str, build: Path, *, hard_reset: bool) -> tuple[list[str], list[str]]:
    """The single mpremote invocation (one connection) and the files it copies."""
    remove, copied, commands = board_paths(build)
    argv = [sys.executable, "-m", "mpremote", "connect", port]
    argv += ["exec", _PREPARE.format(paths=remove)]
    for cmd in commands:
        argv += ["+", *cmd]
    if hard_reset:
        argv += ["+", "reset"]
    return argv, copied


def soft_reset(port: str, wait_s: float = SOFT_RESET_WAIT_S) -> bool:
    """Ctrl-D at the normal REPL (where mpremote leaves the board); True if it rebooted."""
    import serial

    with serial.Serial(port, 115200, timeout=0.1) as ser:
        ser.write(b"\r" + _CTRL_D)
        seen = b""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            seen += ser.read(256)
            if _SOFT_REBOOT_BANNER in seen:
                return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--port", required=True, help="serial port, e.g. /dev/ttyUSB0, COM3, a0, u0"
    )
    parser.add_argument(
        "--build", type=Path, default=Path("build"), help="tree from `make firmware`"
    )
    parser.add_argument(
        "--hard-reset", action="store_true", help="machine.reset() instead of a soft reset"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the mpremote command, touch nothing"
    )
    args = parser.parse_args(argv)
    try:
        if args.dry_run:
            port = args.port
        else:
            port = resolve_port(args.port)
        cmd, copied = mpremote_command(port, args.build, hard_reset=args.hard_reset)
    except FlashError as exc:
        print(f"flash: {exc}", file=sys.stderr)
        return exc.status
    if args.dry_run:
        for i, part in enumerate(cmd):
            print(repr(part) if i == cmd.index("exec") + 1 else part)
        return 0
    print(f"flash: copying {len(copied)} files from {args.build}/ to {port}")
    proc = subprocess.run(cmd, check=False)
    if proc.returncode != 0:
        print(f"flash: mpremote failed (exit {proc.returncode})", file=sys.stderr)
        return 1
    if args.hard_reset:
        print("flash: done; the board was hard-reset")
        return 0
    if soft_reset(port):
        print("flash: done; the board soft-reset and is running main.py")
    else:
        print("flash: copied, but the board did not confirm a soft reset: press its reset button")
    return 0


if __name__ == "__main__":
    sys.exit(main())
