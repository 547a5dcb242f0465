# boot.py: intentionally empty. The firmware starts from main.py, after boot has finished,
# so that the REPL and mpremote always come up first (see main.py for the safe-mode check).
