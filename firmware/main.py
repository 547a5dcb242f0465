# tremorlift firmware entry point: the safe-mode check, then the application.
# Holding the BOOT button while the board starts skips the application and leaves the REPL
# free. An unhandled exception is printed, then the board waits and resets, so a fault
# neither hangs the wearable nor makes a reset loop too fast to reach the REPL.
import sys

try:
    from tremorlift_fw import app

    if app.check_safe_mode():
        print("tremorlift: safe mode (button held at start): not starting, REPL free")
    else:
        app.main()
except Exception as e:
    sys.print_exception(e)
    import time

    import machine
    from tremorlift_fw import config

    time.sleep_ms(config.CRASH_RESET_DELAY_MS)
    machine.reset()
