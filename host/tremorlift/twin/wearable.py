"""An emulated tremorlift wearable: the firmware's own modules on an emulated board.

``TwinWearable`` runs ``tremorlift_fw.app.App`` from ``firmware/lib`` unchanged inside the
host's asyncio loop. Its board is emulated piece by piece: the IMU is a register-level emulator
(``imu_emulator``) on a fake I2C bus, clocked by the device clock and fed by the physics-based
motion generator; LED, haptic PWM and battery ADC come from ``machine_emulation``; its radio is
MicroPython's ``bluetooth`` API on a Bumble device (``ble_emulation``) on the shared virtual
radio, or a pseudo-terminal standing in for its USB serial port.

``TwinFleet`` builds the radio and one wearable per sensor of a scenario, and hands the
collector the bleak backend that reaches them.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tremorlift.twin.board import machine_emulation as machine
from tremorlift.twin.board.imu_emulator import FakeI2C, Icm42688Emulator, Mpu6050Emulator
from tremorlift.twin.clock import EmulatedClock
from tremorlift.twin.motion.generator import SCENARIOS, MotionSource, generate
from tremorlift.twin.radio.ble_emulation import create_bluetooth_module, install_bluetooth_module
from tremorlift.twin.radio.bleak_backend import twin_backend
from tremorlift.twin.radio.link import Radio

FIRMWARE_LIB_DIR = Path(__file__).resolve().parents[3] / "firmware" / "lib"
BATTERY_MV = 3950  # a charged cell, part way down
IMUS = {"icm42688": Icm42688Emulator, "mpu6050": Mpu6050Emulator}


def _blocking_sleep(clock: EmulatedClock) -> Callable[[int], None]:
    """The drivers' time.sleep_ms: blocks the board (the loop) for that much device time, so
    the emulated IMU, clocked by the device clock, lives through it (a sensor's start-up)."""

    def sleep_ms(ms: int) -> None:
        time.sleep(clock.host_seconds(ms))

    return sleep_ms


def _micropython_shim() -> types.ModuleType:
    """The parts of MicroPython's ``micropython`` module the firmware uses, for CPython."""
    mod = types.ModuleType(
        "micropython", "MicroPython's micropython module, for the tremorlift twin."
    )

    def const(value: Any) -> Any:
        return value

    def _noop(*_args: Any, **_kwargs: Any) -> None:
        return None

    def schedule(func: Callable[[Any], None], arg: Any) -> None:
        asyncio.get_running_loop().call_soon(func, arg)

    mod.const = const  # type: ignore[attr-defined]
    for name in (
        "heap_lock",
        "heap_unlock",
        "kbd_intr",
        "alloc_emergency_exception_buf",
        "mem_info",
    ):
        setattr(mod, name, _noop)
    mod.schedule = schedule  # type: ignore[attr-defined]
    return mod


def load_firmware() -> types.ModuleType:
    """Import ``tremorlift_fw.app`` from firmware/lib (the very files that go on the board)."""
    if not (FIRMWARE_LIB_DIR / "tremorlift_fw" / "app.py").is_file():
        raise RuntimeError(
            f"firmware not found at {FIRMWARE_LIB_DIR}: the twin runs from a checkout"
        )
    if "micropython" not in sys.modules:
        sys.modules["micropython"] = _micropython_shim()
    if str(FIRMWARE_LIB_DIR) not in sys.path:
        sys.path.insert(0, str(FIRMWARE_LIB_DIR))
    import tremorlift_fw.app as app  # noqa: PLC0415 - after the path and shims are in place

    return app


class ClockedI2C:
    """The fake I2C bus, with the IMU emulators brought up to the device clock's present before
    every transaction: samples appear in the FIFO at the chip's own rate, in device time."""

    def __init__(self, bus: FakeI2C, emulators: list[Any], clock: EmulatedClock) -> None:
        self.bus = bus
        self._emulators = emulators
        self._clock = clock
        self._last_us = clock.elapsed_us()
        self.frozen = False  # fault injection: the IMU stops being read (FIFO overflows)

    def _sync(self) -> None:
        now = self._clock.elapsed_us()
        dt = now - self._last_us
        if dt > 0:
            self._last_us = now
            for emu in self._emulators:
                emu.advance(dt)

    def scan(self) -> list[int]:
        self._sync()
        return self.bus.scan()

    def readfrom_mem_into(self, addr: int, memaddr: int, buf: Any, *, addrsize: int = 8) -> None:
        self._sync()
        self.bus.readfrom_mem_into(addr, memaddr, buf, addrsize=addrsize)

    def readfrom_mem(self, addr: int, memaddr: int, nbytes: int, *, addrsize: int = 8) -> bytes:
        self._sync()
        return self.bus.readfrom_mem(addr, memaddr, nbytes, addrsize=addrsize)

    def writeto_mem(self, addr: int, memaddr: int, buf: Any, *, addrsize: int = 8) -> None:
        self._sync()
        self.bus.writeto_mem(addr, memaddr, buf, addrsize=addrsize)


def chip_rate_hz(odr_hz: int) -> int:
    """The rate the emulated chips run at to give ``odr_hz``: both produce 400 Hz by running at
    1 kHz and letting the driver resample (neither has a native 400 Hz with its filter on)."""
    return 1000 if odr_hz == 400 else odr_hz


class _RateFollowingSource:
    """Feeds the emulated chip from the motion rendered at the chip's own output rate.

    Rendering a scenario takes a good fraction of a second, far longer than the chip's FIFO
    lasts, so renders for the rates the chip is expected to run at are prepared off the event
    loop beforehand (``prepare``); an unexpected rate is rendered on the spot.
    """

    def __init__(self, make_source: Callable[[float], MotionSource], emulator: Any) -> None:
        self._make = make_source
        self._emu = emulator
        self._by_rate: dict[float, MotionSource] = {}
        self._current: MotionSource | None = None
        self._current_rate = -1.0

    def prepare(self, rate_hz: float) -> None:
        if rate_hz not in self._by_rate:
            self._by_rate[rate_hz] = self._make(rate_hz).prepare()

    def __call__(self, sample_index: int) -> tuple[float, float, float, float, float, float]:
        odr = float(self._emu.odr_hz)
        if odr != self._current_rate:
            self.prepare(odr)
            self._current = self._by_rate[odr]
            self._current_rate = odr
        assert self._current is not None
        return self._current(sample_index)


class PtySerial:
    """The board's USB serial port as the twin sees it: the master side of a pseudo-terminal.

    The collector opens the slave side (``slave_path``) with pyserial, as it would /dev/ttyACM0.
    ``write`` and ``readinto`` match ``tremorlift_fw.serial_link``'s port interface.
    """

    def __init__(self) -> None:
        import pty
        import termios
        import tty

        self.master_fd, self._slave_fd = pty.openpty()
        tty.setraw(self._slave_fd)
        attrs = termios.tcgetattr(self._slave_fd)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self._slave_fd, termios.TCSANOW, attrs)
        os.set_blocking(self.master_fd, False)
        self.slave_path = os.ttyname(self._slave_fd)
        self.corrupt_probability = 0.0  # fault injection: bytes damaged on the wire
        self.corrupt_message_probability = 0.0  # fault injection: messages with one bit flipped
        self._rng: Any = None
        self.bytes_written = 0

    def write(self, buf: Any) -> int:
        data = bytes(buf)
        if self.corrupt_message_probability > 0.0 and data:
            import random

            self._rng = self._rng or random.Random(7)
            if self._rng.random() < self.corrupt_message_probability:
                damaged = bytearray(data)
                damaged[self._rng.randrange(len(damaged))] ^= 1 << self._rng.randrange(8)
                data = bytes(damaged)
        if self.corrupt_probability > 0.0:
            import random

            self._rng = self._rng or random.Random(7)
            data = bytes(
                (b ^ (1 << self._rng.randrange(8)))
                if self._rng.random() < self.corrupt_probability
                else b
                for b in data
            )
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master_fd, view)
            except BlockingIOError:
                # The reader is behind; a real USB CDC port blocks the writer the same way.
                import time

                time.sleep(0.0005)
                continue
            view = view[n:]
        self.bytes_written += len(data)
        return len(data)

    def readinto(self, buf: Any) -> int | None:
        try:
            data = os.read(self.master_fd, len(buf))
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno == errno.EIO:  # no reader on the other side yet
                return None
            raise
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        for fd in (self.master_fd, self._slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass


class TwinWearable:
    """One emulated wearable running the real firmware."""

    def __init__(
        self,
        make_source: Callable[[float], MotionSource],
        clock: EmulatedClock,
        *,
        radio: Radio | None = None,
        serial: PtySerial | None = None,
        imu: str = "icm42688",
        battery_mv: int = BATTERY_MV,
        label: str = "",
    ) -> None:
        if imu not in IMUS:
            raise ValueError(f"unknown IMU {imu!r}; one of {', '.join(IMUS)}")
        self.clock = clock
        self.radio = radio
        self.serial = serial
        self.imu_kind = imu
        self.battery_mv = battery_mv
        self.label = label
        self.app: Any = None
        self.ble: Any = None
        self.address: str | None = None
        self.name: str | None = None
        self.bus = FakeI2C()
        self.emulator = IMUS[imu](source=None)
        self.source = _RateFollowingSource(make_source, self.emulator)
        self.emulator.source = self.source
        self.bus.attach(self.emulator)
        self.i2c = ClockedI2C(self.bus, [self.emulator], clock)
        self.haptic_pwm: machine.PWM | None = None
        self.reboots = 0
        self._task: asyncio.Task[None] | None = None
        self._bluetooth: types.ModuleType | None = None
        # The board's flash for its bond keys: kept across reboots, gone with the twin.
        self.flash_dir = tempfile.mkdtemp(prefix="tremorlift-twin-flash-")

    async def start(self) -> None:
        fw = load_firmware()
        if self.radio is not None and self._bluetooth is None:
            self._bluetooth = await create_bluetooth_module(self.radio)
            install_bluetooth_module(self._bluetooth)
        from tremorlift_fw.board import Battery, Haptic, Led  # noqa: PLC0415 - after load_firmware
        from tremorlift_fw.bonds import BondStore  # noqa: PLC0415 - after load_firmware

        ble = self._bluetooth.BLE() if self._bluetooth is not None else None
        self.ble = ble
        # The board as the firmware's own app.main() builds it: its pins from config.BOARDS
        # (the board picked by chip, esp32-devkitc here), the haptic PWM off from its first
        # cycle, the battery behind the configured divider.
        cfg = fw.config
        pins = cfg.BOARDS[fw.board_name()]
        self.haptic_pwm = fw.haptic_pwm(machine, pins["haptic"])
        adc = machine.ADC(machine.Pin(pins["battery_adc"]))
        adc.set_battery_mv(self.battery_mv, cfg.BATTERY_DIVIDER_NUM, cfg.BATTERY_DIVIDER_DEN)
        self.app = fw.App(
            i2c=self.i2c,
            ble=ble,
            clock=self.clock,
            led=Led(machine.Pin(pins["led"], machine.Pin.OUT), pins.get("led_active_low", False)),
            haptic=Haptic(self.haptic_pwm, cfg.HAPTIC_PWM_FREQ_HZ),
            battery=Battery(
                adc,
                cfg.BATTERY_DIVIDER_NUM,
                cfg.BATTERY_DIVIDER_DEN,
                cfg.BATTERY_EMPTY_MV,
                cfg.BATTERY_FULL_MV,
            ),
            serial=self.serial,
            board_kind=fw.BOARD_EMULATED,
            machine_reset=self._machine_reset,
            imu_sleep_ms=_blocking_sleep(self.clock),
            bond_store=self._bond_store(BondStore),
        )
        self.app.begin()
        self.name = self.app.name
        if ble is not None:
            self.address = ble.address
        self._task = asyncio.create_task(self._run(), name=f"twin {self.name}")

    async def _run(self) -> None:
        try:
            await self.app.run()
        except machine.ResetRequested:
            await self.reboot()

    def _bond_store(self, bond_store_class: Any) -> Any:
        store = bond_store_class(os.path.join(self.flash_dir, "bonds.bin"))
        store.load()
        return store

    def _machine_reset(self) -> None:
        raise machine.ResetRequested()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def reboot(self) -> None:
        """Power-cycle the board: links drop, the firmware starts over with a new boot_id and
        sample indices from 0 (what a brownout or watchdog reset looks like to the host)."""
        current = asyncio.current_task()
        if self._task is not None and self._task is not current:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        if self.ble is not None:
            for conn in list(self.ble.connections):
                self.ble.gap_disconnect(conn)
            await self.ble.settle()
            self.ble.active(False)
        self.reboots += 1
        await self.start()

    @property
    def haptic_log(self) -> list[Any]:
        return list(getattr(self.haptic_pwm, "log", []))


class TwinFleet:
    """The virtual radio and one emulated wearable per sensor of a scenario."""

    def __init__(
        self,
        scenario: str,
        *,
        seed: int = 0,
        speed: float = 1.0,
        imu: str = "icm42688",
        transport: str = "ble",
        loop_motion: bool = False,
        short: bool = False,
        odr_hz: int = 200,
        radio_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}")
        self.scenario = scenario
        self.seed = seed
        self.speed = speed
        self.imu = imu
        self.transport = transport
        self.loop_motion = loop_motion
        self.short = short
        self.odr_hz = odr_hz  # the rate the collector will ask for: its motion is rendered ahead
        self.radio_kwargs = radio_kwargs or {}
        self.radio: Radio | None = None
        self.wearables: list[TwinWearable] = []
        self.duration_s = 0.0
        self.truth: list[dict[str, Any]] = []

    @property
    def backend(self) -> type:
        assert self.radio is not None
        return twin_backend(self.radio)

    async def __aenter__(self) -> TwinFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        # The ground truth and the scenario's length come from one render; the sources
        # render again at the chip's rate when the firmware configures it.
        # The firmware imports `bluetooth` from sys.modules; what was there is put back on close.
        self._saved_bluetooth = sys.modules.get("bluetooth")
        sc = await asyncio.to_thread(
            generate, self.scenario, self.seed, imu=self.imu, short=self.short
        )
        self.duration_s = max(float(d.t_s[-1]) for d in sc.devices)
        self.truth = [d.truth for d in sc.devices]
        if self.transport == "ble":
            # The radio's connection events keep to the wearables' clock (--speed).
            kwargs = {"time_scale": self.speed, **self.radio_kwargs}
            self.radio = Radio(seed=self.seed, **kwargs)
        for i, dev in enumerate(sc.devices):
            clock = EmulatedClock(
                self.speed, drift_ppm=(20.0 if i == 0 else -35.0), start_us=1_000_000 * (i + 1)
            )

            def make_source(rate_hz: float, device: int = i) -> MotionSource:
                return MotionSource(
                    self.scenario, self.seed, sample_rate_hz=rate_hz, imu=self.imu, device=device,
                    loop=self.loop_motion, short=self.short,
                )  # fmt: skip

            serial = PtySerial() if self.transport == "serial" else None
            w = TwinWearable(
                make_source, clock, radio=self.radio, serial=serial, imu=self.imu, label=dev.name
            )
            for rate in {200, chip_rate_hz(self.odr_hz)}:
                await asyncio.to_thread(w.source.prepare, float(rate))
            await w.start()
            self.wearables.append(w)

    async def close(self) -> None:
        for w in self.wearables:
            await w.stop()
            if w.serial is not None:
                w.serial.close()
            shutil.rmtree(w.flash_dir, ignore_errors=True)
        if self.radio is not None:
            await self.radio.close()
        saved = getattr(self, "_saved_bluetooth", None)
        if saved is not None:
            sys.modules["bluetooth"] = saved
        else:
            sys.modules.pop("bluetooth", None)
