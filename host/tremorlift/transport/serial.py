"""USB serial transport over pyserial: the only module in tremorlift that imports pyserial.

Device -> host: COBS frames with CRC-16, split on 0x00 (docs/protocol.md section 8).
Host -> device: ASCII command lines. A reader thread does the blocking reads and hands bytes to
the event loop; the loop decodes them, so the sink is always called from the loop.
"""

from __future__ import annotations

import asyncio
import threading
import time

import serial

from tremorlift.transport import MessageSink
from tremorlift.transport.serial_framing import FrameReader, encode_command_line

READ_CHUNK_BYTES = 4096
READ_TIMEOUT_S = 0.05


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
        self._loop = asyncio.get_running_loop()
        port = serial.Serial()
        port.port = self.address
        port.baudrate = self._baudrate
        port.timeout = READ_TIMEOUT_S
        # Opening the port must not reset the board: classic ESP32 dev boards wire DTR/RTS to
        # EN and GPIO0 (the auto-reset circuit), so both are held inactive before open().
        port.dtr = False
        port.rts = False
        try:
            await asyncio.to_thread(port.open)
        except (serial.SerialException, OSError) as exc:
            raise ConnectionError(f"{self.address}: cannot open serial port: {exc}") from exc
        self._serial = port
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._read_loop, name=f"serial {self.address}", daemon=True
        )
        self._thread.start()

    def _read_loop(self) -> None:
        port = self._serial
        assert port is not None and self._loop is not None
        while not self._stop.is_set():
            try:
                chunk = port.read(READ_CHUNK_BYTES)
            except (serial.SerialException, OSError, TypeError):
                # TypeError: pyserial raises it when the fd is closed under a blocked read.
                if not self._stop.is_set():
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
