"""USB serial transport over pyserial: the only module in tremorlift that imports pyserial.

Device -> host: COBS frames with CRC-16, split on 0x00 (docs/protocol.md section 8).
Host -> device: ASCII command lines. A reader thread does the blocking reads and hands bytes to
the event loop; the loop decodes them, so the sink is always called from the loop.

A port that cannot be used is a :class:`SerialPortError` (a ``UserError``: one line, exit 2),
never a retryable ``ConnectionError``: at once when the port does not exist and was never opened
(a mistyped ``--serial``) or access is denied; after ``VANISHED_GRACE_S`` when a port that was
open went away (unplugged; an ESP32-S3/C3 on native USB also re-enumerates when it resets, so the
port gets that long to come back) or keeps failing to open. Other failures to open stay
``ConnectionError``, which the collector retries.
"""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time

import serial
from serial.tools import list_ports

from tremorlift.errors import UserError
from tremorlift.transport import MessageSink
from tremorlift.transport.serial_framing import FrameReader, encode_command_line

READ_CHUNK_BYTES = 4096
READ_TIMEOUT_S = 0.05
VANISHED_GRACE_S = 3.0  # how long a port that was open may be gone before the link gives up
POLL_S = 0.1
_MISSING_ERRNOS = (errno.ENOENT, errno.ENODEV, errno.ENXIO)
_DENIED_ERRNOS = (errno.EACCES, errno.EPERM)
# Ports opened in this process, and since when each has been unusable after that.
_opened: set[str] = set()
_failing_since: dict[str, float] = {}


class SerialPortError(UserError):
    """A serial port that does not exist, went away, or may not be opened (one line, exit 2)."""

    def __init__(self, port: str, message: str) -> None:
        super().__init__(f"{port}: {message}")
        self.port = port


def _is_device_path(port: str) -> bool:
    """A file-system path (``/dev/ttyACM0``), not a pyserial URL or a Windows ``COM3``."""
    return port.startswith("/") and "://" not in port


def _present(port: str) -> bool:
    return not _is_device_path(port) or os.path.exists(port)


def _ports_hint() -> str:
    try:
        found = sorted(p.device for p in list_ports.comports())
    except Exception:  # noqa: BLE001 - a hint only: never let it hide the real error
        found = []
    if found:
        return f"serial ports present: {', '.join(found[:6])}"
    return "no serial port is present (`ls /dev/ttyACM* /dev/ttyUSB*`)"


def _missing(port: str) -> SerialPortError:
    return SerialPortError(
        port,
        f"no such serial port: is the wearable plugged in and the name right? ({_ports_hint()})",
    )


def _denied(port: str, exc: BaseException) -> SerialPortError:
    return SerialPortError(
        port,
        f"permission denied opening the serial port ({exc}); on Linux add yourself to the group "
        "that owns it (`ls -l` it; usually dialout: `sudo usermod -aG dialout $USER`, then log "
        "in again)",
    )


def _vanished(port: str) -> SerialPortError:
    return SerialPortError(
        port,
        f"the serial port went away and did not come back within {VANISHED_GRACE_S:g} s "
        "(unplugged, or the cable or board failed); what was recorded is kept",
    )


def check_port(port: str) -> None:
    """SerialPortError at once when ``port`` is a device path that does not exist or that this
    user may not open; for the collector to call before it creates a session file."""
    if not _present(port):
        raise _missing(port)
    if _is_device_path(port) and not os.access(port, os.R_OK | os.W_OK):
        raise _denied(port, PermissionError(errno.EACCES, os.strerror(errno.EACCES)))


# USB-to-UART bridges that ESP32 boards without USB of their own (DevKitC and its clones) carry
# the REPL through, by USB vendor and product id. Boards with native USB (ESP32-S3, -C3:
# Espressif's 0x303A) are not limited by a UART.
UART_BRIDGES = {
    (0x10C4, 0xEA60): "CP210x",
    (0x1A86, 0x7523): "CH340",
    (0x1A86, 0x5523): "CH341",
    (0x1A86, 0x55D4): "CH9102",
    (0x0403, 0x6001): "FT232R",
    (0x0403, 0x6015): "FT231X",
}
# MicroPython's REPL UART on those boards: 115200 baud 8N1 = 11 520 bytes/s, of which the
# stream may take 90 % (the firmware refuses the same rates: serial_link.fits_link).
UART_BYTES_PER_S = 115200 // 10
UART_STREAM_SHARE = 0.9
_HEADER_BYTES, _SAMPLE_BYTES, _MAX_SAMPLES, _STATUS_BYTES = 16, 12, 19, 44
_FRAME_MAX_AGE_MS = 40


def stream_bytes_per_s(odr_hz: int) -> int:
    """Bytes/s a stream at odr_hz needs on serial (as the firmware counts it): 12 bytes a
    sample; per frame (the samples 40 ms holds, at most 19) a 16-byte header, the CRC, the COBS
    code byte and the delimiter; one STATUS message a second."""
    spf = max(1, min(_MAX_SAMPLES, odr_hz * _FRAME_MAX_AGE_MS // 1000))
    frames_per_s = -(-odr_hz // spf)
    return odr_hz * _SAMPLE_BYTES + frames_per_s * (_HEADER_BYTES + 4) + _STATUS_BYTES + 5


def uart_bridge(port: str) -> str | None:
    """The UART bridge chip behind ``port`` (e.g. "CP210x"), or None (native USB, or unknown)."""
    try:
        ports = list_ports.comports()
    except Exception:  # noqa: BLE001 - unknown is "not known to be a bridge"
        return None
    for info in ports:
        if info.device == port or (
            _is_device_path(port) and os.path.realpath(port) == os.path.realpath(info.device)
        ):
            if info.vid is None or info.pid is None:
                return None
            return UART_BRIDGES.get((info.vid, info.pid))
    return None


def check_stream_fits(port: str, odr_hz: int) -> None:
    """UserError before streaming when ``port`` is a UART bridge too slow for ``odr_hz``."""
    bridge = uart_bridge(port)
    if bridge is None:
        return
    need = stream_bytes_per_s(odr_hz)
    if need > UART_BYTES_PER_S * UART_STREAM_SHARE:
        limit = UART_BYTES_PER_S * UART_STREAM_SHARE
        fitting = next(r for r in (500, 400, 200, 100, 50) if stream_bytes_per_s(r) <= limit)
        raise SerialPortError(
            port,
            f"{odr_hz} Hz needs {need / 1000:.1f} kB/s, more than this board's {bridge} USB-UART "
            f"bridge carries at 115200 baud ({UART_BYTES_PER_S / 1000:.1f} kB/s); use --rate "
            f"{fitting} or less on serial, BLE, or a board with native "
            "USB (ESP32-S3, -C3)",
        )


def _errno(exc: BaseException) -> int | None:
    code = getattr(exc, "errno", None)
    if code is None and isinstance(exc.__cause__, OSError):
        code = exc.__cause__.errno
    return code if isinstance(code, int) else None


class SerialLink:
    """One wired connection to a wearable's USB serial port."""

    kind = "serial"

    def __init__(self, port: str, sink: MessageSink, *, baudrate: int = 115200) -> None:
        self.address = port
        self.name = port
        self._sink = sink
        self._baudrate = baudrate
        self._serial: serial.Serial | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._reader = FrameReader()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._write_lock = asyncio.Lock()

    @property
    def frames_corrupt(self) -> int:
        return self._reader.corrupt

    async def open(self) -> None:
        """Open the port and start reading. SerialPortError when the port is missing (at once,
        or after ``VANISHED_GRACE_S`` if it was open before), denied, or keeps failing;
        ConnectionError for a failure worth retrying."""
        self._loop = asyncio.get_running_loop()
        name = self.address
        if not _present(name):
            if name not in _opened:
                raise _missing(name)
            deadline = _failing_since.setdefault(name, time.monotonic()) + VANISHED_GRACE_S
            while not _present(name):
                if time.monotonic() >= deadline:
                    raise _vanished(name)
                await asyncio.sleep(POLL_S)
        try:
            await self._open_port()
        except (serial.SerialException, OSError) as exc:
            code = _errno(exc)
            if code in _DENIED_ERRNOS:
                raise _denied(name, exc) from None
            if name not in _opened and code in _MISSING_ERRNOS:
                raise _missing(name) from None
            if name in _opened:
                since = _failing_since.setdefault(name, time.monotonic())
                if time.monotonic() - since >= VANISHED_GRACE_S:
                    raise SerialPortError(
                        name,
                        f"the serial port has failed to open for {VANISHED_GRACE_S:g} s ({exc}); "
                        "what was recorded is kept",
                    ) from None
            raise ConnectionError(f"{name}: cannot open serial port: {exc}") from exc
        _opened.add(name)
        _failing_since.pop(name, None)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._read_loop, name=f"serial {self.address}", daemon=True
        )
        self._thread.start()

    async def _open_port(self) -> None:
        port = serial.Serial()
        port.port = self.address
        port.baudrate = self._baudrate
        port.timeout = READ_TIMEOUT_S
        # Opening the port must not reset the board: classic ESP32 dev boards wire DTR/RTS to
        # EN and GPIO0 (the auto-reset circuit), so both are held inactive before open().
        port.dtr = False
        port.rts = False
        await asyncio.to_thread(port.open)
        self._serial = port

    def _read_loop(self) -> None:
        port = self._serial
        assert port is not None and self._loop is not None
        while not self._stop.is_set():
            try:
                chunk = port.read(READ_CHUNK_BYTES)
            except (serial.SerialException, OSError, TypeError):
                # TypeError: pyserial raises it when the fd is closed under a blocked read.
                if not self._stop.is_set():
                    # The grace for the port to come back starts now, not at the next open.
                    _failing_since.setdefault(self.address, time.monotonic())
                    self._loop.call_soon_threadsafe(self._sink.on_disconnect, "serial port lost")
                return
            if chunk:
                self._loop.call_soon_threadsafe(self._deliver, chunk, time.monotonic())

    def _deliver(self, chunk: bytes, host_time_s: float) -> None:
        for message in self._reader.feed(chunk):
            self._sink.on_message(message, host_time_s)

    async def send_command(self, command: bytes) -> None:
        port = self._serial
        if port is None:
            raise ConnectionError(f"{self.address}: not open")
        line = encode_command_line(command)
        async with self._write_lock:
            try:
                await asyncio.to_thread(port.write, line)
            except (serial.SerialException, OSError) as exc:
                raise ConnectionError(f"{self.address}: write failed: {exc}") from exc

    async def read_info(self) -> bytes | None:
        return None  # serial has no characteristic reads: the collector sends GET_INFO

    async def close(self) -> None:
        self._stop.set()
        port, self._serial = self._serial, None
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 1.0)
            self._thread = None
        if port is not None:
            port.close()
