# The twin board's start-up (runs inside MicroPython only): what an ESP32's boot ROM and
# MicroPython's own start-up do before the firmware's boot.py and main.py run.
#
# Started by twin/micropython/wearable.py as `micropython tl_boot.py`, with
#   TL_FLASH   the board's flash folder (boot.py, main.py, lib/, and what the firmware writes:
#              /bonds.bin, ...), mounted as the file system root "/" as on the board;
#   TL_ROM     this folder (the board modules and asyncio, which a board has frozen in its
#              image), mounted read-only at "/rom" and put on sys.path before "/lib";
#   TL_UP_FD, TL_DOWN_FD   the pipes to and from the host (tl_machine.py);
#   TL_IMU, TL_BATTERY_MV, TL_UNIQUE_ID   what is on the board;
#   MICROPYBTUART   the HCI UART (a pseudo-terminal served by the host's Bluetooth controller).
# Then boot.py and main.py run as scripts, as on the board; when main.py returns, the board
# sits at its REPL (nothing feeds a watchdog the firmware started).
import gc
import os
import select
import sys

import vfs

_up = open("/dev/fd/" + os.getenv("TL_UP_FD"), "wb")
_down = open("/dev/fd/" + os.getenv("TL_DOWN_FD"), "rb")

import tl_machine  # noqa: E402 - from this folder, before the file system is switched

tl_machine.init(
    _up,
    _down,
    os.getenv("TL_IMU") or "icm42688",
    int(os.getenv("TL_BATTERY_MV") or "3950"),
    os.getenv("TL_UNIQUE_ID") or "",
)
sys.modules["machine"] = tl_machine

_rom = os.getenv("TL_ROM")
_flash = os.getenv("TL_FLASH")
try:
    vfs.umount("/")  # the unix port's view of the host's file system, if mounted
except OSError:
    pass
vfs.mount(vfs.VfsPosix(_flash), "/")
vfs.mount(vfs.VfsPosix(_rom), "/rom", readonly=True)
os.chdir("/")
sys.path[:] = ["", "/rom", "/lib"]
del _rom, _flash


def _run(name):
    try:
        os.stat(name)
    except OSError:
        return
    with open(name) as f:
        source = f.read()
    code = compile(source, name, "exec")
    del source
    exec(code, {"__name__": "__main__", "__file__": name})


# The heap the board emulation itself takes (reported, so the firmware's own share is known).
gc.collect()
_up.write(f"rom-heap {gc.mem_free()} {gc.mem_alloc()}\n".encode())

try:
    _run("boot.py")
    _run("main.py")
except KeyboardInterrupt:
    print("KeyboardInterrupt")
except Exception as e:  # noqa: BLE001 - the board prints it and goes on to its REPL
    sys.print_exception(e)
print("MicroPython board: at the REPL")
tl_machine._send(b"repl\n")
# At the REPL the board waits (its Bluetooth stack still runs), until the host resets it or
# goes away (the downlink pipe then reads as ended).
_idle = select.poll()
_idle.register(_down, select.POLLIN)
while True:
    if _idle.poll(1000) and not _down.read(4096):
        tl_machine.host_gone()
