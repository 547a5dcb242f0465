"""The twin's device clock: MicroPython's ticks API over the host clock, optionally accelerated.

The firmware gets this object where a board gets ``tremorlift_fw.clock.BoardClock``. With
``speed`` above 1 the emulated wearable lives faster than the host (its ticks advance and its
sleeps end ``speed`` times sooner), which is how the demo plays a workout in a minute. A
crystal error in ppm makes the device clock drift against the host clock, as a real one does.
"""

from __future__ import annotations

import asyncio
import time

TICKS_PERIOD = 1 << 30  # MicroPython's ticks_ms/ticks_us wrap here on the ESP32 ports
_TICKS_HALF = TICKS_PERIOD // 2


class EmulatedClock:
    def __init__(self, speed: float = 1.0, *, drift_ppm: float = 0.0, start_us: int = 0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self._rate = self.speed * (1.0 + drift_ppm * 1e-6)
        self._t0_host_s = time.monotonic()
        self._start_us = int(start_us)

    def elapsed_us(self) -> int:
        """Device microseconds since the clock started, never wrapping."""
        return self._start_us + int((time.monotonic() - self._t0_host_s) * self._rate * 1e6)

    def ticks_us(self) -> int:
        return self.elapsed_us() % TICKS_PERIOD

    def ticks_ms(self) -> int:
        return (self.elapsed_us() // 1000) % TICKS_PERIOD

    @staticmethod
    def ticks_diff(a: int, b: int) -> int:
        return ((a - b + _TICKS_HALF) % TICKS_PERIOD) - _TICKS_HALF

    @staticmethod
    def ticks_add(a: int, delta: int) -> int:
        return (a + delta) % TICKS_PERIOD

    def host_seconds(self, device_ms: float) -> float:
        """How long ``device_ms`` of device time lasts on the host."""
        return device_ms / 1000.0 / self._rate

    async def sleep_ms(self, ms: float) -> None:
        await asyncio.sleep(self.host_seconds(ms))
