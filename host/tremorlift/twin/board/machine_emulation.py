"""Emulated MicroPython `machine` pieces and clocks, for the firmware tests and the twin.

Portable Python: runs under CPython and MicroPython (no typing, dataclasses or numpy at run
time), so the same emulation backs the CPython tests, the MicroPython allocation tests and
the digital twin. install() returns a module object usable as `machine`.

Clocks (the firmware takes its clock injected, see firmware/lib/tremorlift_fw/clock.py):
ManualClock is advanced by hand (deterministic tests); HostClock follows the host's
monotonic clock and sleeps with asyncio (the twin).
"""

try:
    import time as _time

    _monotonic_ns = _time.monotonic_ns
except AttributeError:  # MicroPython: no monotonic_ns
    _monotonic_ns = None  # type: ignore[assignment]

_TICKS_MAX = 0x3FFFFFFF  # MicroPython's ticks wrap at 2^30
_TICKS_HALF = 0x20000000


def ticks_add(a, delta):
    return (a + delta) & _TICKS_MAX


def ticks_diff(a, b):
    # Written without 2^30 itself, which is not a small int on a 32-bit MicroPython.
    d = (a - b) & _TICKS_MAX
    if d >= _TICKS_HALF:
        d = d - _TICKS_MAX - 1
    return d


class ManualClock:
    """A clock that moves only when told: advance_us()/advance_ms(). sleep_ms advances it.

    start_us lets a test start near the 2^30 wrap.
    """

    def __init__(self, start_us=0):
        self.now_us = start_us

    def advance_us(self, dt_us):
        self.now_us += dt_us

    def advance_ms(self, dt_ms):
        self.now_us += dt_ms * 1000

    def ticks_us(self):
        return self.now_us & _TICKS_MAX

    def ticks_ms(self):
        return (self.now_us // 1000) & _TICKS_MAX

    def ticks_diff(self, a, b):
        return ticks_diff(a, b)

    def ticks_add(self, a, delta):
        return ticks_add(a, delta)

    async def sleep_ms(self, ms):
        self.now_us += ms * 1000
        try:
            import asyncio
        except ImportError:
            import uasyncio as asyncio  # type: ignore[import-not-found,no-redef]
        await asyncio.sleep(0)


class HostClock:
    """Real time on CPython: time.monotonic_ns for ticks, asyncio.sleep for sleeps."""

    def __init__(self):
        self._origin_ns = _monotonic_ns()

    def _elapsed_us(self):
        return (_monotonic_ns() - self._origin_ns) // 1000

    def ticks_us(self):
        return self._elapsed_us() & _TICKS_MAX

    def ticks_ms(self):
        return (self._elapsed_us() // 1000) & _TICKS_MAX

    def ticks_diff(self, a, b):
        return ticks_diff(a, b)

    def ticks_add(self, a, delta):
        return ticks_add(a, delta)

    async def sleep_ms(self, ms):
        import asyncio

        await asyncio.sleep(ms / 1000)


class ResetRequested(Exception):
    """Raised by reset(): the emulated board would restart here."""


# Levels the outside world holds on input pins, by pin id (drive_pin), e.g. a button held
# at start; applied when the firmware creates the Pin.
_INPUT_LEVELS: dict = {}


def drive_pin(pin_id, level):
    """Hold pin pin_id at level (0/1) for Pins created from now on (None: release)."""
    if level is None:
        _INPUT_LEVELS.pop(pin_id, None)
    else:
        _INPUT_LEVELS[pin_id] = 1 if level else 0


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        # An input floats to its pull: high with PULL_UP, low otherwise, until driven.
        self._level = 1 if pull == Pin.PULL_UP else 0
        # Level after each change of an output; set to None to stop recording (a recording
        # list grows, which allocation checks would see).
        self.history = []
        self.changes = 0
        if value is not None:
            self._level = 1 if value else 0
        if mode == Pin.IN and id in _INPUT_LEVELS:
            self._level = _INPUT_LEVELS[id]

    def init(self, mode=-1, pull=-1, *, value=None):
        if mode != -1:
            self.mode = mode
        if pull != -1:
            self.pull = pull
        if value is not None:
            self.value(value)

    def value(self, x=None):
        if x is None:
            return self._level
        level = 1 if x else 0
        if level != self._level:
            self.changes += 1
            if self.history is not None:
                self.history.append(level)
        self._level = level
        return None

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def drive(self, level):
        """Test side: what the outside world puts on an input pin (a button pressed -> 0)."""
        self._level = 1 if level else 0

    def __call__(self, x=None):
        return self.value(x)


class PWM:
    def __init__(self, pin, *, freq=None, duty_u16=None):
        self.pin = pin
        self._freq = 0
        self._duty_u16 = 0
        self.log = []  # ("freq", hz) / ("duty_u16", value) per change; None: not recorded
        self.changes = 0
        if freq is not None:
            self.freq(freq)
        if duty_u16 is not None:
            self.duty_u16(duty_u16)

    def freq(self, value=None):
        if value is None:
            return self._freq
        if value != self._freq:
            self.changes += 1
            if self.log is not None:
                self.log.append(("freq", value))
        self._freq = value
        return None

    def duty_u16(self, value=None):
        if value is None:
            return self._duty_u16
        if not 0 <= value <= 65535:
            raise ValueError("duty_u16 out of range")
        if value != self._duty_u16:
            self.changes += 1
            if self.log is not None:
                self.log.append(("duty_u16", value))
        self._duty_u16 = value
        return None

    def deinit(self):
        self.duty_u16(0)


class ADC:
    """An ADC pin; its input is set with set_pin_uv() or set_battery_mv() (through a divider)."""

    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    FULL_SCALE_UV = 3_100_000  # ESP32 at 11 dB attenuation

    def __init__(self, pin, *, atten=None):
        self.pin = pin
        self._atten = atten
        self.pin_uv = 0

    def atten(self, value):
        self._atten = value

    def set_pin_uv(self, uv):
        self.pin_uv = uv

    def set_battery_mv(self, battery_mv, divider_num=2, divider_den=1):
        """The pin voltage for this battery voltage behind a (R1 + R2) / R2 = num/den divider."""
        self.pin_uv = battery_mv * 1000 * divider_den // divider_num

    def read_uv(self):
        return self.pin_uv

    def read_u16(self):
        v = self.pin_uv * 65535 // self.FULL_SCALE_UV
        return 65535 if v > 65535 else v


# Buses that machine.I2C(id, ...) binds to, by id (set with attach_i2c_bus).
_I2C_BUSES: dict = {}


def attach_i2c_bus(bus_id, bus):
    """Make machine.I2C(bus_id, ...) talk to bus (e.g. imu_emulator.FakeI2C)."""
    _I2C_BUSES[bus_id] = bus


class I2C:
    """machine.I2C with the memory methods the drivers use, delegating to a FakeI2C."""

    def __init__(self, id=0, *, scl=None, sda=None, freq=400_000, bus=None):
        self.id = id
        self.freq = freq
        self.bus = bus if bus is not None else _I2C_BUSES.get(id)
        if self.bus is None:
            raise OSError(19, f"no emulated bus attached for I2C({id})")

    def scan(self):
        return self.bus.scan()

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        self.bus.readfrom_mem_into(addr, memaddr, buf, addrsize=addrsize)

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        return self.bus.readfrom_mem(addr, memaddr, nbytes, addrsize=addrsize)

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        self.bus.writeto_mem(addr, memaddr, buf, addrsize=addrsize)


SoftI2C = I2C

# The clock WDT checks against (set_clock); defaults to the host's monotonic clock.
_clock = None


def set_clock(clock):
    global _clock
    _clock = clock


def _now_ms():
    if _clock is not None:
        return _clock.ticks_ms()
    if _monotonic_ns is not None:
        return (_monotonic_ns() // 1_000_000) & _TICKS_MAX
    return _time.ticks_ms()


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout_ms = timeout
        self.feeds = 0
        self._last_ms = _now_ms()

    def feed(self):
        self.feeds += 1
        self._last_ms = _now_ms()

    def expired(self):
        """True if the board would have been reset: no feed within timeout_ms."""
        return ticks_diff(_now_ms(), self._last_ms) > self.timeout_ms


_unique_id = b"\x24\x0a\xc4\x1a\x2b\x3c"
resets: list = []  # emulated time (ms) of each reset()


def unique_id():
    return _unique_id


def set_unique_id(value):
    global _unique_id
    _unique_id = bytes(value)


def reset():
    resets.append(_now_ms())
    raise ResetRequested()


def soft_reset():
    reset()


def freq(hz=None):
    return 240_000_000 if hz is None else None


def install(name="machine"):
    """Put this emulation into sys.modules under name (default `machine`) and return it."""
    import sys

    module = sys.modules[__name__]
    sys.modules[name] = module
    return module
