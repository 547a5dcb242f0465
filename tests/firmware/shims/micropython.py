"""CPython stand-in for MicroPython's `micropython` module, so firmware imports under pytest.

Only what the firmware uses: `const` is the identity (MicroPython folds it at compile time),
and the heap lock is a no-op (the real allocation checks run under MicroPython itself).
"""


def const(value):
    return value


def heap_lock():
    return 0


def heap_unlock():
    return 0
