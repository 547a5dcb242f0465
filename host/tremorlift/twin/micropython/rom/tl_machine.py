# The twin board's `machine` module, for the MicroPython twin (runs inside MicroPython only).
#
# MicroPython's unix port has no Pin, I2C, PWM, ADC, WDT or reset, so tl_boot.py installs this
# module as `machine` before the firmware starts. It is the ESP32 board around the chip:
#
# - I2C bus 0 carries the IMU register emulator (twin/board/imu_emulator.py), brought up to the
#   present on every transaction by this process's own clock (time.ticks_us). Its samples come
#   from the motion generator in the host process, fetched over the downlink pipe (HostFeed).
# - Pins and PWM start in the ESP32's power-on states: an output starts low, an input floats to
#   its pull, and machine.PWM(pin) without freq/duty runs at 5 kHz, 50 % duty at once.
# - WDT is the board's hardware watchdog: the host process resets the board (restarts this
#   process, keeping its flash folder) when it is not fed within its timeout. feed() tells the
#   host at most every _FEED_REPORT_MS. reset() asks the host for that restart and never returns.
# - ADC reads the battery voltage the host set (through the board's 2:1 divider).
#
# Messages to the host are text lines on the uplink pipe (see twin/micropython/wearable.py).

import gc
import struct
import time

import machine_emulation as _emu
from imu_emulator import FakeI2C, Icm42688Emulator, Mpu6050Emulator

Signal = None
ResetRequested = _emu.ResetRequested

_up = None  # uplink pipe (board -> host), a binary file
_down = None  # downlink pipe (host -> board), a binary file
_unique_id = b"\x24\x0a\xc4\x00\x00\x00"
_FEED_REPORT_MS = 200
_battery_mv = 3950
# ESP32 port: machine.PWM(pin) alone starts at 5 kHz, duty 50 % (docs: esp32 quickref, PWM).
_PWM_DEFAULT_FREQ_HZ = 5000
_PWM_DEFAULT_DUTY_U16 = 32768


def host_gone():
    # The host process ended without stopping this board: nothing more will be fed or asked,
    # so the board process ends too rather than run on as an orphan.
    import sys

    sys.exit(3)


def _send(line):
    if _up is None:
        return
    try:
        _up.write(line)
    except OSError:
        host_gone()


# --- pins ------------------------------------------------------------------------------------
class Pin(_emu.Pin):
    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        super().__init__(id, mode, pull, value=value)
        self.history = None  # a board keeps no record; the host is told about PWM only


class PWM(_emu.PWM):
    def __init__(self, pin, *, freq=None, duty_u16=None):
        super().__init__(pin)
        self.log = None
        pin_id = pin.id if hasattr(pin, "id") else pin
        self._pin_id = pin_id
        self.freq(_PWM_DEFAULT_FREQ_HZ if freq is None else freq)
        self.duty_u16(_PWM_DEFAULT_DUTY_U16 if duty_u16 is None else duty_u16)

    def freq(self, value=None):
        if value is not None and value != self._freq:
            _send(f"pwm {self._pin_id} freq {value}\n".encode())
        return super().freq(value)

    def duty_u16(self, value=None):
        if value is not None and value != self._duty_u16:
            _send(f"pwm {self._pin_id} duty_u16 {value}\n".encode())
        return super().duty_u16(value)


class ADC(_emu.ADC):
    """An ADC pin; each reads the battery through the board's 2:1 divider (only the battery's
    pin is wired on this board)."""

    def __init__(self, pin, *, atten=None):
        super().__init__(pin, atten=atten)
        self.set_battery_mv(_battery_mv)


# --- the IMU on I2C bus 0 ----------------------------------------------------------------------
_CHUNK_HEADER = struct.calcsize("<IIHH")  # rate (mHz), first index, count, reserved
_SAMPLE_BYTES = 24  # six float32: ax ay az (m/s^2), gx gy gz (rad/s)
_CHUNK_MAX = 512
_AHEAD = 3  # chunks asked for beyond the one in use (3 x 12 KB fit the 64 KB pipe)


class HostFeed:
    """The IMU emulator's sample source: samples of the motion generator by index, at the rate
    the chip runs at, fetched from the host in chunks of half a second, _AHEAD chunks ahead."""

    def __init__(self, emulator):
        self._emu = emulator
        self._buf = bytearray(_CHUNK_HEADER + _CHUNK_MAX * _SAMPLE_BYTES)
        self._mv = memoryview(self._buf)
        self._rate_mhz = -1
        self._first = 0
        self._n = 0
        self._asked = []  # (rate_mhz, first) of fetches sent and not yet read, oldest first
        self.waits = 0

    def _ask(self, rate_mhz, first):
        for a in self._asked:
            if a[0] == rate_mhz and a[1] == first:
                return
        n = rate_mhz // 2000
        n = 32 if n < 32 else (_CHUNK_MAX if n > _CHUNK_MAX else n)
        self._asked.append((rate_mhz, first))
        _send(f"fetch {rate_mhz} {first} {n}\n".encode())

    def _read(self, start, n):
        mv = self._mv
        got = 0
        while got < n:
            k = _down.readinto(mv[start + got : start + n])
            if not k:
                host_gone()
            got += k

    def _next_chunk(self, rate_mhz, index):
        self._ask(rate_mhz, index)
        self.waits += 1
        self._read(0, _CHUNK_HEADER)
        rate, first, n, _ = struct.unpack_from("<IIHH", self._buf, 0)
        self._read(_CHUNK_HEADER, n * _SAMPLE_BYTES)
        asked = self._asked
        for i in range(len(asked)):
            if asked[i][0] == rate and asked[i][1] == first:
                asked.pop(i)
                break
        self._rate_mhz = rate
        self._first = first
        self._n = n
        if rate == rate_mhz:
            # The next chunks, while this one is used: the board keeps _AHEAD chunks (1.5 s)
            # in flight, so a host busy for a while never leaves the chip without samples.
            nxt = first + n
            for _ in range(_AHEAD):
                self._ask(rate, nxt)
                nxt += n

    def __call__(self, index):
        odr = self._emu.odr_hz
        rate_mhz = int(odr * 1000 + 0.5)
        while not (self._rate_mhz == rate_mhz and self._first <= index < self._first + self._n):
            self._next_chunk(rate_mhz, index)
        return struct.unpack_from(
            "<6f", self._buf, _CHUNK_HEADER + (index - self._first) * _SAMPLE_BYTES
        )


class ClockedBus:
    """The I2C bus with the chips brought up to this process's clock before each transaction."""

    def __init__(self, bus, emulators):
        self.bus = bus
        self._emulators = emulators
        self._last_us = time.ticks_us()

    def _sync(self):
        now = time.ticks_us()
        dt = time.ticks_diff(now, self._last_us)
        if dt > 0:
            self._last_us = now
            for emu in self._emulators:
                emu.advance(dt)

    def scan(self):
        self._sync()
        return self.bus.scan()

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        self._sync()
        self.bus.readfrom_mem_into(addr, memaddr, buf, addrsize=addrsize)

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        self._sync()
        return self.bus.readfrom_mem(addr, memaddr, nbytes, addrsize=addrsize)

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        self._sync()
        self.bus.writeto_mem(addr, memaddr, buf, addrsize=addrsize)


I2C = _emu.I2C
SoftI2C = _emu.I2C
imu = None  # the IMU emulator (set by init)


# --- watchdog and reset ------------------------------------------------------------------------
class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout_ms = timeout
        self._reported_ms = time.ticks_ms()
        self._first = True
        _send(f"wdt {timeout}\n".encode())

    def feed(self):
        now = time.ticks_ms()
        if self._first:
            # The first feed comes from the firmware's main loop: it is up. Its heap, as a
            # user at the REPL would read it (after a collection).
            self._first = False
            gc.collect()
            _send(f"heap {gc.mem_free()} {gc.mem_alloc()}\n".encode())
        if time.ticks_diff(now, self._reported_ms) >= _FEED_REPORT_MS:
            self._reported_ms = now
            _send(b"feed\n")


def reset():
    # A hard reset: the host stops this process and starts the board again. Nothing after
    # this call runs, as on the chip.
    _send(b"reset\n")
    while True:
        time.sleep_ms(1000)


def soft_reset():
    reset()


def unique_id():
    return _unique_id


def freq(hz=None):
    return 240_000_000 if hz is None else None


def idle():
    time.sleep_ms(0)


# --- the board ---------------------------------------------------------------------------------
def init(up, down, imu_kind, battery_mv, unique_id_hex):
    """Wire the board: the uplink and downlink pipes, the IMU on I2C bus 0, the battery."""
    global _up, _down, _unique_id, imu, _battery_mv
    _up = up
    _down = down
    if unique_id_hex:
        _unique_id = bytes(int(unique_id_hex[i : i + 2], 16) for i in range(0, 12, 2))
    if imu_kind == "none":
        emulator = None
    elif imu_kind == "mpu6050":
        emulator = Mpu6050Emulator()
    else:
        emulator = Icm42688Emulator()
    bus = FakeI2C()
    if emulator is not None:
        emulator.source = HostFeed(emulator)
        bus.attach(emulator)
    imu = emulator
    _emu.attach_i2c_bus(0, ClockedBus(bus, [emulator] if emulator is not None else []))
    _emu.attach_i2c_bus(1, FakeI2C())
    _battery_mv = battery_mv
