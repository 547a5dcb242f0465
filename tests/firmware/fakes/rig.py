"""An emulated wearable for the firmware tests: App on the emulated machine, IMU and BLE.

Portable (CPython pytest and the MicroPython scripts run by tests/mpy/run.mjs). The IMU
emulator and the machine emulation come from host/tremorlift/twin/board (imported as
tremorlift.twin.* under CPython, as top-level modules from /twin under MicroPython).
"""

import struct

try:
    from tremorlift.twin.board import imu_emulator, machine_emulation
except ImportError:
    import imu_emulator
    import machine_emulation

import bluetooth
from tremorlift_fw import config, protocol
from tremorlift_fw.app import BOARD_EMULATED, App
from tremorlift_fw.board import Battery, Haptic, Led

HEADER_FMT = "<BBBBIII"


def no_sleep(ms):
    pass


class FakePort:
    """A serial port: bytes written by the device collect in `out`; feed() queues input."""

    def __init__(self):
        self.out = bytearray()
        self._in = bytearray()

    def write(self, buf):
        self.out.extend(buf)

    def feed(self, data):
        self._in.extend(data)

    def readinto(self, buf):
        n = min(len(buf), len(self._in))
        for i in range(n):
            buf[i] = self._in[i]
        self._in = self._in[n:]
        return n


def parse_frame(data):
    """SAMPLES frame bytes -> (flags, n, seq, first_index, tick_us, samples bytes)."""
    version, msg_type, flags, n, seq, first, tick = struct.unpack_from(HEADER_FMT, data, 0)
    if version != 1 or msg_type != 1 or len(data) != 16 + 12 * n:
        raise AssertionError("bad SAMPLES frame " + repr(bytes(data[:16])))
    return flags, n, seq, first, tick, bytes(data[16:])


class Rig:
    def __init__(
        self,
        imu="mpu6050",
        ble=True,
        serial=False,
        ring_frames=64,
        start_us=1_000_000,
        source=None,
        boot_id=0x1234,
        battery_mv=3900,
        bond_store=None,
        clock=None,
        imu_sleep_ms=no_sleep,
        serial_link_bytes_per_s=None,
        pair_button=None,
    ):
        # clock: any object with ManualClock's interface (advance_ms, ticks_*); imu_sleep_ms:
        # the drivers' blocking sleep (by default time stands still while they wait).
        self.clock = machine_emulation.ManualClock(start_us) if clock is None else clock
        machine_emulation.set_clock(self.clock)
        self.bus = imu_emulator.FakeI2C()
        if imu == "mpu6050":
            self.emu = imu_emulator.Mpu6050Emulator(source=source)
        elif imu == "mpu6500":
            self.emu = imu_emulator.Mpu6050Emulator(who_am_i=0x70, source=source)
        elif imu == "icm42688":
            self.emu = imu_emulator.Icm42688Emulator(source=source)
        else:
            self.emu = None
        if self.emu is not None:
            self.bus.attach(self.emu)
        self.i2c = machine_emulation.I2C(0, bus=self.bus)
        self.led_pin = machine_emulation.Pin(2, machine_emulation.Pin.OUT)
        self.pwm = machine_emulation.PWM(machine_emulation.Pin(25))
        self.adc = machine_emulation.ADC(machine_emulation.Pin(34))
        self.adc.set_battery_mv(battery_mv, config.BATTERY_DIVIDER_NUM, config.BATTERY_DIVIDER_DEN)
        self.ble = bluetooth.BLE() if ble else None
        self.port = FakePort() if serial else None
        self.resets = 0
        self.wdt = machine_emulation.WDT(timeout=config.WATCHDOG_TIMEOUT_MS)
        self.app = App(
            i2c=self.i2c,
            ble=self.ble,
            clock=self.clock,
            led=Led(self.led_pin, False),
            haptic=Haptic(self.pwm, config.HAPTIC_PWM_FREQ_HZ),
            battery=Battery(
                self.adc,
                config.BATTERY_DIVIDER_NUM,
                config.BATTERY_DIVIDER_DEN,
                config.BATTERY_EMPTY_MV,
                config.BATTERY_FULL_MV,
            ),
            serial=self.port,
            board_kind=BOARD_EMULATED,
            machine_reset=self._reset,
            wdt=self.wdt,
            boot_id=boot_id,
            ring_frames=ring_frames,
            imu_sleep_ms=imu_sleep_ms,
            bond_store=bond_store,
            serial_link_bytes_per_s=serial_link_bytes_per_s,
            pair_button=pair_button,
        )
        self.app.begin()
        if self.ble is not None:
            self.h_data = self.ble.handle_of("7a1f0002-4c3b-4e0c-9b5a-2d8e6f1c3a70")
            self.h_control = self.ble.handle_of("7a1f0003-4c3b-4e0c-9b5a-2d8e6f1c3a70")
            self.h_status = self.ble.handle_of("7a1f0004-4c3b-4e0c-9b5a-2d8e6f1c3a70")
            self.h_info = self.ble.handle_of("7a1f0005-4c3b-4e0c-9b5a-2d8e6f1c3a70")
        self.frames = []  # SAMPLES notifications collected by collect()
        self.responses = []
        self.statuses = []

    def _reset(self):
        self.resets += 1

    def advance(self, dt_ms=10):
        """Time passes: the IMU produces its samples, the clock moves."""
        if self.emu is not None:
            self.emu.advance(dt_ms * 1000)
        self.clock.advance_ms(dt_ms)

    def step(self, dt_ms=10):
        self.advance(dt_ms)
        self.app.pump()
        self.app.service()
        self.app.indicators()

    def run_ms(self, ms, dt_ms=10):
        for _ in range(ms // dt_ms):
            self.step(dt_ms)
        self.collect()

    def connect(self, mtu=247, encrypt=True):
        """A central connects (by default one that has paired: the link is encrypted)."""
        self.ble.connect()
        if mtu:
            self.ble.exchange_mtu(mtu)
        if encrypt:
            self.ble.encrypt(True)
        self.app.service()

    def collect(self):
        """Sort the BLE notifications since last time into frames, responses and statuses."""
        if self.ble is None:
            return
        for handle, data in self.ble.take_notifications():
            if handle == self.h_data:
                self.frames.append(data)
            elif handle == self.h_control:
                self.responses.append(data)
            elif handle == self.h_status:
                self.statuses.append(data)

    def command(self, data):
        """Write data to the control characteristic; returns the RESPONSE it produced."""
        self.collect()
        before = len(self.responses)
        self.ble.write_control(self.h_control, data)
        self.app.service()
        self.collect()
        if len(self.responses) != before + 1:
            raise AssertionError(
                "expected exactly one response, got " + str(len(self.responses) - before)
            )
        return self.responses[-1]


def command(opcode, token, args=b""):
    return bytes((opcode, token)) + args


def start_cmd(token=1):
    return command(protocol.OP_START, token)
