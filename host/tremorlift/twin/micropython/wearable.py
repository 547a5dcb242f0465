"""One wearable of the MicroPython twin: the real MicroPython binary running the firmware.

Each boot of the board is one process of MicroPython's unix port built with NimBLE
(:mod:`tremorlift.twin.micropython.build`), started on ``rom/tl_boot.py``, which mounts the
board's flash folder as ``/`` and runs the firmware's own ``boot.py`` and ``main.py``. The
firmware builds its board itself (``tremorlift_fw.app.main()``, from ``config.py``) on the
``machine`` module of ``rom/tl_machine.py``, and its Bluetooth is the real ``bluetooth.BLE()``:
MicroPython's bindings on the NimBLE host stack, speaking HCI (H4) over the UART named by
``MICROPYBTUART``. That UART is a pseudo-terminal served by a Bumble controller
(:class:`BoardController`) on the twin's virtual radio, so the collector's central reaches the
board through bleak exactly as it reaches the CPython twin.

What this process (the host side) does for the board:

* The motion generator runs here: the board fetches samples by index and rate (``fetch`` lines
  on the uplink pipe) and gets them as float32 chunks on the downlink pipe. The board's IMU
  emulator is clocked by the board process's own clock, in real time.
* The watchdog: once the firmware starts ``machine.WDT``, the board reports its feeds; when
  none arrives within the timeout the board is reset.
* Resets (``machine.reset()``, the watchdog, a power cycle, a process that ends): the process
  is killed, its controller leaves the radio (the central sees a supervision timeout, as when a
  chip resets mid-link), and a new process with a new controller boots from the same flash
  folder, so ``/bonds.bin`` and whatever else the firmware wrote survive, and the board keeps its
  fixed address (NimBLE reads it from the controller, HCI vendor command 0xFC09).

Uplink lines (board -> host): ``fetch <rate mHz> <first> <n>``, ``wdt <timeout ms>``, ``feed``,
``heap <free> <alloc>`` (at the first feed: the firmware is up), ``rom-heap <free> <alloc>``
(before boot.py runs), ``pwm <pin> <freq|duty_u16>
<value>``, ``reset``, ``repl``. Downlink (host -> board): chunks of ``<IIHH`` (rate mHz, first
index, count, 0) and ``count`` x six float32 (ax, ay, az in m/s^2; gx, gy, gz in rad/s).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import pty
import re
import shutil
import signal
import struct
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bumble import hci
from bumble.transport.common import StreamPacketSink, StreamPacketSource

from tremorlift.twin.micropython.build import MicroPythonBuild
from tremorlift.twin.motion.generator import MotionSource
from tremorlift.twin.radio.link import REASON_CONNECTION_TIMEOUT, Radio, TwinController

logger = logging.getLogger(__name__)

ROM_DIR = Path(__file__).resolve().parent / "rom"
BOARD_DIR = Path(__file__).resolve().parents[1] / "board"
# The heap the board process gets (MicroPython's -X heapsize). A classic ESP32 running
# MicroPython 1.29 with Bluetooth active has about 110 KB free for Python; this 64-bit build
# needs more for the same objects (8-byte words), and the firmware's ring alone is 73 KB.
DEFAULT_HEAP_BYTES = 512 * 1024
BATTERY_MV = 3950
READY_TIMEOUT_S = 30.0
WATCHDOG_POLL_S = 0.05
# A board whose process ends on its own this often within RESTART_WINDOW_S stays off.
MAX_QUICK_RESTARTS = 5
RESTART_WINDOW_S = 20.0
_ZEPHYR_READ_STATIC_ADDRESSES = 0xFC09  # HCI vendor command (Zephyr): the chip's static address
_CHUNK_HEADER = struct.Struct("<IIHH")
_READY_LINE = re.compile(r"tremorlift: (TL-[0-9A-F]{4}), IMU")


def prepare_rom(rom_dir: Path, asyncio_dir: Path) -> Path:
    """The read-only folder the board process mounts at /rom: its start-up, its ``machine``,
    the board emulation modules and MicroPython's asyncio (copied here at run time: this build
    has none frozen in, where a board's image has)."""
    rom_dir.mkdir(parents=True, exist_ok=True)
    for src in (ROM_DIR / "tl_boot.py", ROM_DIR / "tl_machine.py"):
        shutil.copy2(src, rom_dir / src.name)
    for name in ("machine_emulation.py", "imu_emulator.py"):
        shutil.copy2(BOARD_DIR / name, rom_dir / name)
    shutil.copytree(
        asyncio_dir, rom_dir / "asyncio", dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("manifest.py", "uasyncio.py", "__pycache__"),
    )  # fmt: skip
    return rom_dir


class BoardController(TwinController):
    """The board's Bluetooth controller: a TwinController on the shared radio whose host is the
    board process's NimBLE, over HCI H4 on a pseudo-terminal.

    It answers the Zephyr vendor command Read Static Addresses (0xFC09) with the board's fixed
    static random address, which NimBLE (built with
    ``MICROPY_BLUETOOTH_USE_ZEPHYR_STATIC_ADDRESS``) takes as its identity address: the board
    keeps one address across resets, as an ESP32 keeps its factory address. It has no public
    address (Bumble's virtual link routes random addresses only)."""

    def __init__(self, name: str, radio: Radio, static_address: str) -> None:
        super().__init__(name, radio.link, radio)
        self.static_address = hci.Address(static_address, hci.Address.RANDOM_DEVICE_ADDRESS)

    def on_packet(self, packet: bytes) -> None:
        opcode = _ZEPHYR_READ_STATIC_ADDRESSES
        if (
            len(packet) >= 4
            and packet[0] == hci.HCI_COMMAND_PACKET
            and packet[1:3] == bytes((opcode & 0xFF, opcode >> 8))
        ):
            # Return parameters: status, number of addresses, address (LE), identity root (16).
            params = bytes((0, 1)) + bytes(self.static_address) + bytes(16)
            self.send_hci_packet(
                hci.HCI_Command_Complete_Event(
                    num_hci_command_packets=1,
                    command_opcode=opcode,
                    return_parameters=hci.HCI_GenericReturnParameters(data=params),
                )
            )
            return
        super().on_packet(packet)

    def detach(self) -> None:
        """Leave the radio (the chip is off): no more advertising, no packets to the host."""
        adv = self.le_legacy_advertiser
        adv.stop()
        adv.enabled = False
        self.host = None
        if self in self.link.controllers:
            self.link.remove_controller(self)


class _HciPty:
    """A pseudo-terminal carrying HCI H4 between the board process (the replica side, named by
    ``MICROPYBTUART``) and its controller (Bumble's packet source and sink on the primary)."""

    def __init__(self) -> None:
        self.primary, self.replica = pty.openpty()
        tty.setraw(self.primary)
        tty.setraw(self.replica)
        self.path = os.ttyname(self.replica)
        self._transports: list[Any] = []
        self.source: StreamPacketSource | None = None
        self.sink: StreamPacketSink | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        read_transport, source = await loop.connect_read_pipe(
            StreamPacketSource, open(self.primary, "rb", closefd=False)
        )
        write_transport, _ = await loop.connect_write_pipe(
            asyncio.BaseProtocol, open(self.primary, "wb", closefd=False)
        )
        self._transports = [read_transport, write_transport]
        self.source = source
        self.sink = StreamPacketSink(write_transport)

    def close(self) -> None:
        for t in self._transports:
            t.close()
        self._transports = []
        for fd in (self.primary, self.replica):
            try:
                os.close(fd)
            except OSError:
                pass


class BoardSerial:
    """The board's USB serial port: a pseudo-terminal whose primary side is the board process's
    stdin and stdout (MicroPython's console, where the firmware's UsbSerialPort reads and
    writes, as on the board); the collector opens ``slave_path``, as it would /dev/ttyACM0.
    It lasts across the board's resets, like a USB-UART bridge's port."""

    def __init__(self) -> None:
        self.primary, self._replica = pty.openpty()
        tty.setraw(self.primary)
        tty.setraw(self._replica)
        self.slave_path = os.ttyname(self._replica)

    def close(self) -> None:
        for fd in (self.primary, self._replica):
            try:
                os.close(fd)
            except OSError:
                pass


class _Uplink(asyncio.Protocol):
    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._on_line = on_line
        self._buf = b""

    def data_received(self, data: bytes) -> None:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            self._on_line(line.decode("ascii", "replace"))


class MicroPythonWearable:
    """One board: its flash folder, its fixed address, and the MicroPython process of each boot."""

    def __init__(
        self,
        build: MicroPythonBuild,
        rom_dir: Path,
        flash_dir: Path,
        radio: Radio,
        make_source: Callable[[float], MotionSource],
        *,
        address: str,
        imu: str = "icm42688",
        battery_mv: int = BATTERY_MV,
        heap_bytes: int = DEFAULT_HEAP_BYTES,
        label: str = "",
        serial: bool = False,
    ) -> None:
        self.build = build
        self.rom_dir = rom_dir
        self.flash_dir = flash_dir
        self.radio = radio
        self.address = address
        self.imu_kind = imu
        self.battery_mv = battery_mv
        self.heap_bytes = heap_bytes
        self.label = label
        self.name: str | None = None
        # With a USB serial port the board's console (stdin/stdout) is that port, as on the
        # board; without one it is read here (the firmware's prints).
        self.serial = BoardSerial() if serial else None
        self.reboots = 0
        self.resets: list[str] = []  # why each reset happened ("watchdog", "machine.reset", ...)
        self.heap: tuple[int, int] | None = None  # (free, allocated) bytes once the firmware is up
        self.heap_by_boot: list[tuple[int, int]] = []
        # (free, allocated) bytes before the firmware runs: the board emulation and its start-up.
        self.rom_heap: tuple[int, int] | None = None
        self.console: collections.deque[str] = collections.deque(maxlen=400)
        self.watchdog_timeout_ms: int | None = None
        self._make_source = make_source
        self._sources: dict[int, MotionSource] = {}
        self._haptic_log: list[tuple[str, int]] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._hci: _HciPty | None = None
        self._controller: BoardController | None = None
        self._down: asyncio.WriteTransport | None = None
        self._up: asyncio.ReadTransport | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._fetches: asyncio.Queue[tuple[int, int, int]] | None = None
        self._last_feed_s = 0.0
        self._up_event: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self._quick_exits: list[float] = []
        self._resume: asyncio.TimerHandle | None = None

    # --- motion ------------------------------------------------------------------------------
    def prepare(self, rate_hz: float) -> None:
        """Render the motion at rate_hz ahead of time (blocking: call in a thread)."""
        key = round(rate_hz * 1000)
        if key not in self._sources:
            self._sources[key] = self._make_source(key / 1000.0).prepare()

    def set_source(self, rate_hz: float, source: MotionSource) -> None:
        """Use an already rendered ``source`` for ``rate_hz``."""
        self._sources[round(rate_hz * 1000)] = source

    async def _serve_fetches(self) -> None:
        assert self._fetches is not None
        while True:
            rate_mhz, first, n = await self._fetches.get()
            if rate_mhz not in self._sources:
                await asyncio.to_thread(self.prepare, rate_mhz / 1000.0)
            src = self._sources[rate_mhz]
            flat = [v for i in range(first, first + n) for v in src(i)]
            chunk = _CHUNK_HEADER.pack(rate_mhz, first, n, 0) + struct.pack(f"<{len(flat)}f", *flat)
            if self._down is not None and not self._down.is_closing():
                self._down.write(chunk)

    # --- the board's messages ----------------------------------------------------------------
    def _on_line(self, line: str) -> None:
        parts = line.split()
        if not parts:
            return
        kind = parts[0]
        if kind == "feed":
            self._last_feed_s = time.monotonic()
        elif kind == "fetch" and len(parts) == 4 and self._fetches is not None:
            self._fetches.put_nowait((int(parts[1]), int(parts[2]), int(parts[3])))
        elif kind == "wdt":
            self.watchdog_timeout_ms = int(parts[1])
            self._last_feed_s = time.monotonic()
        elif kind == "heap":
            self.heap = (int(parts[1]), int(parts[2]))
            self.heap_by_boot.append(self.heap)
            self._last_feed_s = time.monotonic()
            if self._up_event is not None:
                self._up_event.set()
        elif kind == "rom-heap":
            self.rom_heap = (int(parts[1]), int(parts[2]))
        elif kind == "pwm" and len(parts) == 4:
            self._haptic_log.append((parts[2], int(parts[3])))
        elif kind == "reset":
            self._spawn(self.reboot("machine.reset"))
        elif kind == "repl":
            logger.info("%s: the firmware returned to the REPL", self.label or self.address)
        else:
            logger.warning("%s: unknown board message %r", self.label or self.address, line)

    def _on_console(self, line: str) -> None:
        self.console.append(line)
        m = _READY_LINE.search(line)
        if m:
            self.name = m.group(1)
        logger.debug("%s| %s", self.name or self.label, line)

    async def _read_console(self, proc: asyncio.subprocess.Process) -> None:
        stream = proc.stdout if self.serial is None else proc.stderr
        assert stream is not None
        while True:
            raw = await stream.readline()
            if not raw:
                return
            self._on_console(raw.decode("utf-8", "replace").rstrip("\r\n"))

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        """The hardware watchdog, and a process that ends on its own (a crash of the port)."""
        while True:
            if proc.returncode is not None:
                break
            timeout_ms = self.watchdog_timeout_ms
            if (
                timeout_ms is not None
                and time.monotonic() - self._last_feed_s > timeout_ms / 1000.0
            ):
                self._spawn(self.reboot("watchdog"))
                return
            await asyncio.sleep(WATCHDOG_POLL_S)
        if self._stopping or proc is not self._proc:
            return
        now = time.monotonic()
        self._quick_exits = [t for t in self._quick_exits if now - t < RESTART_WINDOW_S] + [now]
        tail = "\n".join(list(self.console)[-15:])
        if len(self._quick_exits) > MAX_QUICK_RESTARTS:
            logger.error("%s: the board keeps stopping (exit %s); left off:\n%s",
                         self.label, proc.returncode, tail)  # fmt: skip
            return
        logger.warning("%s: the board process ended (exit %s); restarting:\n%s",
                       self.label, proc.returncode, tail)  # fmt: skip
        self._spawn(self.reboot(f"exit {proc.returncode}"))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    # --- boots -------------------------------------------------------------------------------
    async def start(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Power the board on and wait until the firmware is up (its main loop runs)."""
        async with self._lock:
            await self._boot()
        await self.wait_up(timeout_s)

    async def wait_up(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        event = self._up_event
        assert event is not None
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
            if self.name is None:  # its console is the serial port: the name the firmware
                self.name = "TL-" + self.address.replace(":", "")[-4:].upper()  # derives
        except TimeoutError:
            tail = "\n".join(list(self.console)[-20:])
            raise RuntimeError(
                f"the MicroPython board {self.label or self.address} did not come up within "
                f"{timeout_s:g} s; its console:\n{tail}"
            ) from None

    async def _boot(self) -> None:
        self._up_event = asyncio.Event()
        self.watchdog_timeout_ms = None
        self.heap = None
        hci_pty = _HciPty()
        await hci_pty.open()
        controller = BoardController(f"ctrl-{self.label or self.address}", self.radio, self.address)
        assert hci_pty.source is not None and hci_pty.sink is not None
        controller.host = hci_pty.sink
        hci_pty.source.set_packet_sink(controller)
        self._hci, self._controller = hci_pty, controller

        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MICROPY")}
        env.update(
            MICROPYBTUART=hci_pty.path,
            TL_FLASH=str(self.flash_dir),
            TL_ROM=str(self.rom_dir),
            TL_UP_FD=str(up_w),
            TL_DOWN_FD=str(down_r),
            TL_IMU=self.imu_kind,
            TL_BATTERY_MV=str(self.battery_mv),
            TL_UNIQUE_ID=self.address.replace(":", "").lower(),
        )
        try:
            proc = await asyncio.create_subprocess_exec(
                str(self.build.binary), "-X", f"heapsize={self.heap_bytes}",
                str(self.rom_dir / "tl_boot.py"),
                stdin=asyncio.subprocess.DEVNULL if self.serial is None else self.serial.primary,
                stdout=asyncio.subprocess.PIPE if self.serial is None else self.serial.primary,
                stderr=asyncio.subprocess.STDOUT if self.serial is None else asyncio.subprocess.PIPE,
                env=env, pass_fds=(up_w, down_r),
                cwd=str(self.flash_dir), start_new_session=True,
            )  # fmt: skip
        finally:
            os.close(up_w)
            os.close(down_r)
        loop = asyncio.get_running_loop()
        self._down, _ = await loop.connect_write_pipe(
            asyncio.BaseProtocol, os.fdopen(down_w, "wb", buffering=0)
        )
        self._up, _ = await loop.connect_read_pipe(
            lambda: _Uplink(self._on_line), os.fdopen(up_r, "rb", buffering=0)
        )
        self._proc = proc
        self._fetches = asyncio.Queue()
        for coro in (self._serve_fetches(), self._read_console(proc), self._watch(proc)):
            self._spawn(coro)

    async def _power_off(self) -> None:
        """The chip stops at once: its process is killed and its controller leaves the radio
        (the central's link times out)."""
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        proc, self._proc = self._proc, None
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        self._tasks = [current] if current in self._tasks else []
        if proc is not None and proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for transport in (self._down, self._up):
            if transport is not None:
                transport.close()
        self._down = self._up = None
        self._fetches = None
        if self._controller is not None:
            self.radio.drop_link(self.address, REASON_CONNECTION_TIMEOUT)
            self._controller.detach()
            self._controller = None
        if self._hci is not None:
            self._hci.close()
            self._hci = None

    async def reboot(self, reason: str = "power cycle") -> None:
        """Reset the board: the process stops where it is and the board boots again from its
        flash folder (what a watchdog reset, machine.reset() or a brownout looks like)."""
        async with self._lock:
            if self._stopping:
                return
            logger.info("%s: reset (%s)", self.label or self.address, reason)
            await self._power_off()
            self.reboots += 1
            self.resets.append(reason)
            await self._boot()

    def hang(self, seconds: float) -> None:
        """The board's CPU stops for ``seconds`` (SIGSTOP; its controller keeps the link): what
        a stuck main loop looks like from outside. Longer than the watchdog's timeout, the
        watchdog resets it."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        os.killpg(proc.pid, signal.SIGSTOP)

        def resume(p: asyncio.subprocess.Process = proc) -> None:
            self._resume = None
            if p.returncode is None:
                try:
                    os.killpg(p.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

        self._resume = asyncio.get_running_loop().call_later(seconds, resume)

    async def stop(self) -> None:
        """Power off for good."""
        self._stopping = True
        async with self._lock:
            await self._power_off()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.serial is not None:
            self.serial.close()

    @property
    def haptic_log(self) -> list[tuple[str, int]]:
        return list(self._haptic_log)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None
