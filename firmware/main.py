# tremorlift firmware entry point: the no-start and safe-mode checks, then the application.
#
# No-start: when the file NO_START_FILE exists, main.py deletes it and returns without
# starting anything, so the REPL is free and no watchdog runs. tools/flash.py creates it and
# resets the board before copying; main.py creates it itself when Ctrl-C arrives after the
# watchdog was started (a started ESP32 watchdog cannot be stopped, and nothing feeds it at
# the REPL): it then resets at once, and the board comes back at a free REPL.
# Safe mode: press BOOT while the LED is lit just after start (see app.check_safe_mode).
# An unhandled exception is printed, then the board waits and resets, so a fault neither
# hangs the wearable nor makes a reset loop too fast to reach the REPL.
import sys

NO_START_FILE = "/tl_nostart"
_PACKAGE = "/lib/tremorlift_fw"


def _take_no_start():
    import os

    try:
        os.remove(NO_START_FILE)
    except OSError:
        return False
    return True


def _recover_package():
    # tools/flash.py switches packages by renaming the old one to .old and the new one into
    # place: a reset between the two renames leaves only .old, which is put back.
    import os

    try:
        os.stat(_PACKAGE)
    except OSError:
        try:
            os.rename(_PACKAGE + ".old", _PACKAGE)
        except OSError:
            pass


def _watchdog_running():
    app = sys.modules.get("tremorlift_fw.app")
    return app is not None and getattr(app, "watchdog_running", lambda: False)()


def _interrupted():
    if not _watchdog_running():
        print("tremorlift: interrupted, REPL free")
        return
    print("tremorlift: interrupted, watchdog running: resetting into no-start")
    import machine

    with open(NO_START_FILE, "w"):
        pass
    machine.reset()


try:
    try:
        if _take_no_start():
            print("tremorlift: no-start: not starting, REPL free")
        else:
            _recover_package()
            from tremorlift_fw import app

            if app.check_safe_mode():
                print("tremorlift: safe mode (BOOT pressed at start): not starting, REPL free")
            else:
                app.main()
    except KeyboardInterrupt:
        raise
    except Exception as e:
        sys.print_exception(e)
        import time

        import machine
        from tremorlift_fw import config

        time.sleep_ms(config.CRASH_RESET_DELAY_MS)
        machine.reset()
except KeyboardInterrupt:
    # A second Ctrl-C while this runs must not leave the board at the REPL with the watchdog
    # running: try again until done.
    while True:
        try:
            _interrupted()
            break
        except KeyboardInterrupt:
            pass
