"""Hardware-in-the-loop tests: a real board running the firmware, on the serial port --port.

    pytest tests/hil --port /dev/ttyACM0

Without --port every test marked `hil` is skipped (`make test` needs no board). The
`board` fixture speaks the USB serial framing of docs/protocol.md section 8 with pyserial:
commands go out as ASCII lines, messages come back COBS-framed with a CRC.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest
import serial
from tremorlift import protocol as proto
from tremorlift.transport.serial_framing import FrameReader, encode_command_line

# How long the firmware gets to answer one command (a CONFIGURE re-initialises the IMU).
RESPONSE_TIMEOUT_S = 2.0
# After the port opens the board may be rebooting (some USB-UART bridges reset it).
BOOT_TIMEOUT_S = 8.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--port", default=None):
        return
    skip = pytest.mark.skip(reason="needs a board: pass --port (e.g. --port /dev/ttyACM0)")
    for item in items:
        if "hil" in item.keywords:
            item.add_marker(skip)


class BoardLink:
    """One board on a serial port: send commands, read decoded messages."""

    def __init__(self, port: serial.Serial) -> None:
        self.port = port
        self.reader = FrameReader()
        self._tokens = itertools.cycle(range(1, 256))
        self.unsolicited: list[proto.Message] = []  # messages read while waiting for a RESPONSE

    def token(self) -> int:
        return next(self._tokens)

    def send(self, command: bytes) -> None:
        self.port.write(encode_command_line(command))
        self.port.flush()

    def send_line(self, line: bytes) -> None:
        self.port.write(line)
        self.port.flush()

    def read(self, timeout_s: float) -> list[proto.Message]:
        """Messages that arrive within timeout_s (returns early once something arrived)."""
        deadline = time.monotonic() + timeout_s
        out: list[proto.Message] = []
        while time.monotonic() < deadline and not out:
            data = self.port.read(max(1, self.port.in_waiting))
            if data:
                out += [proto.decode_message(m) for m in self.reader.feed(data)]
        return out

    def collect(self, duration_s: float) -> list[proto.Message]:
        """Every message read during duration_s."""
        deadline = time.monotonic() + duration_s
        out: list[proto.Message] = []
        while time.monotonic() < deadline:
            out += self.read(deadline - time.monotonic())
        return out

    def wait_response(self, opcode: int, token: int, timeout_s: float) -> proto.Response | None:
        deadline = time.monotonic() + timeout_s
        found = None
        while found is None and time.monotonic() < deadline:
            for msg in self.read(deadline - time.monotonic()):
                matches = isinstance(msg, proto.Response) and (msg.opcode, msg.token) == (
                    opcode,
                    token,
                )
                if matches and found is None:
                    found = msg
                else:
                    # Kept in arrival order, including what came in the same read after
                    # the answer (the first SAMPLES frame after START, for one).
                    self.unsolicited.append(msg)
        return found

    def request(self, command: bytes, timeout_s: float = RESPONSE_TIMEOUT_S) -> proto.Response:
        """Send a command and return its RESPONSE (matched by opcode and token)."""
        self.send(command)
        response = self.wait_response(command[0], command[1], timeout_s)
        if response is None:
            raise AssertionError(
                f"no RESPONSE to {proto.OPCODE_NAMES.get(command[0], command[0])} within "
                f"{timeout_s} s (corrupt frames: {self.reader.corrupt}, last error: "
                f"{self.reader.last_error})"
            )
        return response


@pytest.fixture(scope="module")
def board(request: pytest.FixtureRequest) -> Iterator[BoardLink]:
    port_name = request.config.getoption("--port")
    try:
        port = serial.Serial(port_name, 115200, timeout=0.05, write_timeout=2)
    except serial.SerialException as exc:
        pytest.fail(f"cannot open {port_name}: {exc}")
    link = BoardLink(port)
    try:
        # Wait until the firmware answers (it may be booting, or a bridge just reset it).
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        answered = None
        while answered is None and time.monotonic() < deadline:
            token = link.token()
            link.send(proto.get_info(token))
            answered = link.wait_response(proto.OP_GET_INFO, token, 0.5)
        if answered is None:
            pytest.fail(f"no answer on {port_name}: is the tremorlift firmware running (main.py)?")
        # Start every module from a quiet board: not streaming, samples on BLE.
        link.request(proto.stop(link.token()))
        link.request(proto.set_transport(proto.TRANSPORT_BLE, token=link.token()))
        link.collect(0.2)
        link.unsolicited.clear()
        yield link
    finally:
        try:
            link.send(proto.stop(link.token()))
            link.send(proto.set_transport(proto.TRANSPORT_BLE, token=link.token()))
        finally:
            port.close()
