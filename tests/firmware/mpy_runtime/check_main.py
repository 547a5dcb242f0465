# Runs firmware/main.py under real MicroPython with the emulated `machine` (mounted at /fw).
# 1. The safe-mode button held at start: main.py prints its line and returns (REPL free).
# 2. app.main() fails (no I2C bus): the exception is printed, the board waits
#    CRASH_RESET_DELAY_MS and resets (the emulated reset raises ResetRequested).
# Prints "MAIN OK" at the end.
import time

import machine_emulation

machine_emulation.install()
from tremorlift_fw import config  # noqa: E402

config.SAFE_MODE_WINDOW_MS = 60
config.CRASH_RESET_DELAY_MS = 50
main_py = open("/fw/main.py").read()

machine_emulation.drive_pin(0, 0)  # BOOT held (GPIO0 on every supported board)
exec(main_py, {"__name__": "__main__"})
if machine_emulation.resets:
    raise AssertionError("safe mode must not reset")

machine_emulation.drive_pin(0, None)
t0 = time.ticks_ms()
try:
    exec(main_py, {"__name__": "__main__"})
    raise AssertionError("main.py returned although app.main() failed")
except machine_emulation.ResetRequested:
    pass
waited_ms = time.ticks_diff(time.ticks_ms(), t0)
if waited_ms < config.SAFE_MODE_WINDOW_MS + config.CRASH_RESET_DELAY_MS:
    raise AssertionError("reset after only " + str(waited_ms) + " ms")
if len(machine_emulation.resets) != 1:
    raise AssertionError("one reset expected")
print("MAIN OK")
