# Runs firmware/main.py under real MicroPython with the emulated `machine` (mounted at /fw).
# 1. Safe mode: BOOT pressed while the LED is lit after start (a strapping pin cannot be held
#    while the board starts): main.py prints its line and returns (REPL free).
# 2. BOOT low from the first sample (what "held at start" would look like): not safe mode;
#    app.main() then fails (no I2C bus): printed, CRASH_RESET_DELAY_MS later a reset.
# 3. Ctrl-C (KeyboardInterrupt) before the watchdog started: REPL free, no reset.
# 4. Ctrl-C after the watchdog started: the no-start file is written and the board resets;
#    the next start finds it, deletes it and leaves the REPL free without starting anything.
# 5. A package left as .old by an interrupted switch-over is put back.
# Prints "MAIN OK" at the end.
import os
import time

import machine_emulation

machine_emulation.install()
from tremorlift_fw import app, config  # noqa: E402

config.SAFE_MODE_WINDOW_MS = 60
config.CRASH_RESET_DELAY_MS = 50
main_py = open("/fw/main.py").read()
NO_START = "/tl_nostart"
BoardPin = machine_emulation.Pin
lit = []


class PressedAfterStart(BoardPin):
    # GPIO0 reads high (released) for the first reads, then low: pressed during the window.
    def __init__(self, id, *args, **kw):
        super().__init__(id, *args, **kw)
        self.reads = 0
        if id == 2:
            lit.append(self)

    def value(self, x=None):
        if x is None and self.id == 0:
            self.reads += 1
            return 1 if self.reads < 3 else 0
        return super().value(x)


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def run_main():
    exec(main_py, {"__name__": "__main__"})


# 1. pressed after start
machine_emulation.Pin = PressedAfterStart
run_main()
machine_emulation.Pin = BoardPin
if machine_emulation.resets:
    raise AssertionError("safe mode must not reset")
if not lit or lit[0].history[:2] != [1, 0]:
    raise AssertionError("the LED must be lit during the safe-mode window")

# 2. low from the start: not safe mode; the app fails and the board resets
machine_emulation.drive_pin(0, 0)
t0 = time.ticks_ms()
try:
    run_main()
    raise AssertionError("main.py returned although app.main() failed")
except machine_emulation.ResetRequested:
    pass
machine_emulation.drive_pin(0, None)
waited_ms = time.ticks_diff(time.ticks_ms(), t0)
if waited_ms < config.SAFE_MODE_WINDOW_MS + config.CRASH_RESET_DELAY_MS:
    raise AssertionError("reset after only " + str(waited_ms) + " ms")
if len(machine_emulation.resets) != 1:
    raise AssertionError("one reset expected")
del machine_emulation.resets[:]


# 3. Ctrl-C before the watchdog
def interrupted_early():
    raise KeyboardInterrupt


def interrupted_running():
    app.start_watchdog()
    raise KeyboardInterrupt


app.main = interrupted_early
run_main()
if machine_emulation.resets or exists(NO_START) or app.watchdog_running():
    raise AssertionError("Ctrl-C before the watchdog: REPL free, no reset, no no-start file")

# 4. Ctrl-C with the watchdog running
app.main = interrupted_running
try:
    run_main()
    raise AssertionError("Ctrl-C with the watchdog running must reset the board")
except machine_emulation.ResetRequested:
    pass
if not exists(NO_START):
    raise AssertionError("the reset must lead into no-start")
app._watchdog = None  # the reset stopped it


def must_not_start():
    raise AssertionError("no-start must not start the application")


app.main = must_not_start
app.check_safe_mode = must_not_start
run_main()
if exists(NO_START):
    raise AssertionError("no-start holds for one start only")
if len(machine_emulation.resets) != 1:
    raise AssertionError("one reset expected")

# 5. an interrupted package switch-over
app.check_safe_mode = lambda: False
app.main = lambda: None
os.rename("/lib/tremorlift_fw", "/lib/tremorlift_fw.old")
run_main()
if not exists("/lib/tremorlift_fw/app.py") or exists("/lib/tremorlift_fw.old"):
    raise AssertionError("the .old package must be put back")
print("MAIN OK")
