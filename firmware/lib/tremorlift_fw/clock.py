"""The board's clock: MicroPython's wrapping tick counters and asyncio sleeps.

Everything that needs time takes a clock object with this interface instead of calling
`time` directly, so the same code runs on an emulated clock in tests and in the twin
(host/tremorlift/twin/machine_emulation.py has the CPython clocks).
"""

import time

try:
    import asyncio
except ImportError:  # MicroPython before asyncio was renamed
    import uasyncio as asyncio


class BoardClock:
    """time.ticks_* (microseconds and milliseconds, wrapping at 2^30) plus asyncio.sleep_ms."""

    def ticks_us(self):
        return time.ticks_us()

    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def ticks_add(self, a, delta):
        return time.ticks_add(a, delta)

    def sleep_ms(self, ms):
        # Not a coroutine: an `async def` would allocate a generator (about 96 bytes) at every
        # call. asyncio.sleep_ms returns MicroPython's preallocated singleton, awaited as is.
        return asyncio.sleep_ms(ms)
