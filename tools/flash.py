#!/usr/bin/env python3
"""Copy the built firmware (build/, from `make firmware`) to a board with mpremote (`make flash`).

    python tools/flash.py --port /dev/ttyUSB0 [--build build] [--hard-reset] [--dry-run]

MicroPython itself must already be on the board (esptool, once). The steps:

1. Quiet the board. A running wearable has started its watchdog, which cannot be stopped:
   interrupted at the REPL, it would reset the board in the middle of the copy. So the tool
   sends Ctrl-C, creates the no-start file (firmware/main.py: NO_START_FILE) and hard-resets
   the board; main.py finds the file, deletes it and leaves the REPL free, no watchdog
   running. (Firmware that sees Ctrl-C with its watchdog running does the same by itself.)
2. Copy, then switch over. Each folder of build/ (lib/...) is copied next to the one it
   replaces (`/lib/tremorlift_fw.new`), each top-level file (main.py, boot.py) to
   `/<name>.new`; only when every copy is complete are they renamed into place (the old
   package to `.old`, the new one in, the old one removed). An interrupted copy leaves the
   old firmware whole; a reset between the two renames is repaired by main.py, which puts
   a lone `.old` package back. Renaming the whole package also means no stale .py of an
   earlier copy is left to shadow the new .mpy (MicroPython imports a .py first).
3. The board is soft-reset from its normal REPL, which runs boot.py and main.py (a soft
   reset from mpremote's raw REPL would skip main.py).

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
_CTRL_C = b"\x03"
_CTRL_D = b"\x04"
_SOFT_REBOOT_BANNER = b"soft reboot"
_PROMPT = b">>> "
_BANNER = b"MicroPython v"
SOFT_RESET_WAIT_S = 3.0
# How long a hard-reset board may take to come back at its REPL (a native-USB board's port
# disappears meanwhile).
QUIET_WAIT_S = 15.0
# Keep in step with firmware/main.py.
NO_START_FILE = "/tl_nostart"
_NEW = ".new"

# Typed at the normal REPL after Ctrl-C: no-start at the next start, then a hard reset.
_QUIET_LINE = f"import machine;open({NO_START_FILE!r},'w').close();machine.reset()\r".encode()

_RM = """\
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
"""

# Runs on the board before the copy: finish an interrupted switch-over (a lone .old goes
# back), remove leftovers of an interrupted copy, make /lib.
_PREPARE = (
    _RM
    + """\
for _final in {paths!r}:
    try:
        os.stat(_final)
    except OSError:
        try:
            os.rename(_final + '.old', _final)
        except OSError:
            pass
    _rm(_final + '.new')
    _rm(_final + '.old')
try:
    os.mkdir('/lib')
except OSError:
    pass
"""
)

# Runs on the board after every copy is complete: each new entry takes its final name.
_SWITCH = (
    _RM
    + """\
for _final in {paths!r}:
    _rm(_final + '.old')
    try:
        os.rename(_final, _final + '.old')
    except OSError:
        pass
    os.rename(_final + '.new', _final)
    _rm(_final + '.old')
"""
)


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


def _copy_entry(entry: Path, dest: str, finals: list[str], commands: list[list[str]]) -> None:
    finals.append(dest)
    if entry.is_dir():
        # dest.new is removed first (_PREPARE), so mpremote creates it and copies the
        # folder's contents into it (were it there, it would copy into dest.new/<name>).
        commands.append(["fs", "cp", "-r", str(entry), f":{dest}{_NEW}"])
    else:
        commands.append(["fs", "cp", str(entry), f":{dest}{_NEW}"])


def board_paths(build: Path) -> tuple[list[str], list[str], list[list[str]]]:
    """(final board paths of the entries, files copied, mpremote fs commands) for a build."""
    if not build.is_dir() or not any(build.iterdir()):
        raise FlashError(f"nothing to flash in {build}/: run `make firmware` first")
    finals: list[str] = []
    commands: list[list[str]] = []
    for entry in sorted(build.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and entry.name == "lib":
            # Each package of lib/ separately, so other libraries on the board stay.
            for item in sorted(entry.iterdir()):
                _copy_entry(item, f"/lib/{item.name}", finals, commands)
        else:
            _copy_entry(entry, f"/{entry.name}", finals, commands)
    copied = sorted(f"/{p.relative_to(build).as_posix()}" for p in build.rglob("*") if p.is_file())
    return finals, copied, commands


def mpremote_command(port: str, build: Path, *, hard_reset: bool) -> tuple[list[str], list[str]]:
    """The single mpremote invocation (one connection) and the files it copies: leftovers
    removed, every entry copied to its .new name, then all switched over at the end."""
    finals, copied, commands = board_paths(build)
    argv = [sys.executable, "-m", "mpremote", "connect", port]
    argv += ["exec", _PREPARE.format(paths=finals)]
    for cmd in commands:
        argv += ["+", *cmd]
    # The package goes in before main.py, which imports it.
    argv += ["+", "exec", _SWITCH.format(paths=sorted(finals, key=lambda p: p.endswith(".py")))]
    if hard_reset:
        argv += ["+", "reset"]
    return argv, copied


def _read_until(ser, port: str, markers: tuple[bytes, ...], wait_s: float) -> bool:
    """Reads until each of markers was seen in turn (True) or wait_s passes (False). The port
    stays open (opening it flushes what arrived meanwhile); if it goes away (a native-USB
    board's port disappears while it resets) it is opened again."""
    import serial

    deadline = time.monotonic() + wait_s
    seen = b""
    while time.monotonic() < deadline:
        try:
            if ser is None:
                ser = serial.Serial(port, 115200, timeout=0.1)
            seen += ser.read(256)
        except (OSError, serial.SerialException):
            if ser is not None:
                try:
                    ser.close()
                except (OSError, serial.SerialException):
                    pass
            ser = None
            time.sleep(0.2)
            continue
        at = seen.find(markers[0])
        if at >= 0:
            seen = seen[at + len(markers[0]) :]
            markers = markers[1:]
            if not markers:
                if ser is not None:
                    ser.close()
                return True
        else:
            seen = seen[-256:]
    if ser is not None:
        ser.close()
    return False


def quiet_board(port: str, wait_s: float = QUIET_WAIT_S) -> bool:
    """Step 1: Ctrl-C, no-start file, hard reset; True once the board is back at its REPL."""
    import serial

    ser = serial.Serial(port, 115200, timeout=0.1)
    try:
        ser.write(b"\r" + _CTRL_C)
        time.sleep(0.1)
        ser.write(_CTRL_C)
        # The firmware may reset by itself (Ctrl-C with its watchdog running); otherwise the
        # REPL prompt comes back.
        deadline = time.monotonic() + 2.0
        seen = b""
        while time.monotonic() < deadline and _PROMPT not in seen:
            seen += ser.read(256)
        if b"resetting into no-start" not in seen:
            ser.write(b"\r" + _CTRL_C)
            time.sleep(0.1)
            ser.write(_QUIET_LINE)
            ser.flush()
    except (OSError, serial.SerialException):
        ser.close()
        ser = None
    # The start banner, then the REPL prompt: main.py has finished.
    return _read_until(ser, port, (_BANNER, _PROMPT), wait_s)


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
    if quiet_board(port):
        print("flash: the board is at its REPL, not running the application")
    else:
        print("flash: the board did not come back at a free REPL; copying anyway")
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
