"""The USB serial link when its port is not there, goes away, or may not be opened
(transport/serial.py), on pseudo-terminals standing in for the wearable's port."""

from __future__ import annotations

import asyncio
import errno
import os
import time
from pathlib import Path

import pytest
import serial
from tremorlift.cli import main
from tremorlift.errors import UserError
from tremorlift.transport import serial as link_mod
from tremorlift.transport.serial import SerialLink, SerialPortError, check_port


class Sink:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.lost: list[str] = []
        self.lost_event = asyncio.Event()

    def on_message(self, message: bytes, host_time_s: float) -> None:
        self.messages.append(message)

    def on_disconnect(self, reason: str) -> None:
        self.lost.append(reason)
        self.lost_event.set()


class FakePort:
    """A pseudo-terminal reached through a symlink in tmp_path (the "device node")."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.master, self._slave = os.openpty()
        path.symlink_to(os.ttyname(self._slave))

    def unplug(self) -> None:
        self.path.unlink()
        os.close(self.master)  # reads on the other side now fail (EIO)
        os.close(self._slave)

    def close(self) -> None:
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture(autouse=True)
def _fresh_port_memory(monkeypatch):
    monkeypatch.setattr(link_mod, "_opened", set())
    monkeypatch.setattr(link_mod, "_failing_since", {})
    monkeypatch.setattr(link_mod, "VANISHED_GRACE_S", 0.6)


def test_a_port_that_does_not_exist_fails_at_once() -> None:
    async def run() -> None:
        link = SerialLink("/dev/ttyNOPE", Sink())
        t0 = time.monotonic()
        with pytest.raises(SerialPortError) as info:
            await link.open()
        assert time.monotonic() - t0 < 0.5
        message = str(info.value)
        assert message.startswith("/dev/ttyNOPE: no such serial port: is the wearable plugged in")
        assert "\n" not in message and isinstance(info.value, UserError)
        assert info.value.port == "/dev/ttyNOPE"

    asyncio.run(run())
    with pytest.raises(SerialPortError, match="no such serial port"):
        check_port("/dev/ttyNOPE")
    check_port("loop://")  # a pyserial URL is not a file: nothing to check beforehand


def test_a_port_that_vanishes_gives_up_after_the_grace(tmp_path) -> None:
    port = FakePort(tmp_path / "ttyTEST")

    async def run() -> None:
        sink = Sink()
        link = SerialLink(str(port.path), sink)
        await link.open()
        check_port(str(port.path))
        os.write(port.master, b"\x03\x01\x02\x00")  # one (corrupt) frame: the reader is live
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        port.unplug()
        await asyncio.wait_for(sink.lost_event.wait(), 2.0)
        assert sink.lost == ["serial port lost"]
        await link.close()
        # The collector opens a new link to reconnect: it waits out the grace, then gives up.
        again = SerialLink(str(port.path), Sink())
        with pytest.raises(SerialPortError, match="went away and did not come back within 0.6 s"):
            await again.open()
        assert 0.4 <= time.monotonic() - t0 < 2.0

    try:
        asyncio.run(run())
    finally:
        port.close()


def test_a_port_that_comes_back_within_the_grace_is_reopened(tmp_path) -> None:
    first = FakePort(tmp_path / "ttyTEST")

    async def run() -> None:
        link = SerialLink(str(first.path), Sink())
        await link.open()
        await link.close()
        first.unplug()
        second: list[FakePort] = []

        async def replug() -> None:
            await asyncio.sleep(0.25)  # the board resets and its USB port re-enumerates
            second.append(FakePort(first.path))

        task = asyncio.create_task(replug())
        again = SerialLink(str(first.path), Sink())
        await again.open()
        await task
        await again.send_command(bytes([3, 1]))
        assert os.read(second[0].master, 100).startswith(b">")
        await again.close()
        second[0].close()

    try:
        asyncio.run(run())
    finally:
        first.close()


def test_permission_denied_names_the_group(monkeypatch) -> None:
    def refuse(self: serial.Serial) -> None:
        raise serial.SerialException(
            errno.EACCES, "could not open port: [Errno 13] Permission denied"
        )

    monkeypatch.setattr(serial.Serial, "open", refuse)

    async def run() -> None:
        with pytest.raises(SerialPortError, match="permission denied.*dialout"):
            await SerialLink("loop://", Sink()).open()

    asyncio.run(run())


def test_other_open_failures_are_retried_then_given_up(tmp_path, monkeypatch) -> None:
    port = FakePort(tmp_path / "ttyTEST")

    async def run() -> None:
        link = SerialLink(str(port.path), Sink())
        await link.open()
        await link.close()

        def busy(self: serial.Serial) -> None:
            raise serial.SerialException(errno.EBUSY, "could not open port: [Errno 16] busy")

        monkeypatch.setattr(serial.Serial, "open", busy)
        with pytest.raises(ConnectionError, match="busy") as info:
            await SerialLink(str(port.path), Sink()).open()
        assert not isinstance(info.value, UserError)  # worth a retry, for a while
        await asyncio.sleep(0.7)
        with pytest.raises(SerialPortError, match="has failed to open for 0.6 s"):
            await SerialLink(str(port.path), Sink()).open()

    try:
        asyncio.run(run())
    finally:
        port.close()


def test_collect_on_a_missing_port_is_one_line_exit_2_and_no_session_file(tmp_path, capsys):
    session = tmp_path / "s.tlsession"
    t0 = time.monotonic()
    argv = ["collect", "--serial", "/dev/ttyNOPE", "--no-ui", "--session", str(session)]
    assert main(argv) == 2
    assert time.monotonic() - t0 < 5.0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/dev/ttyNOPE" in err[0] and "no such serial port" in err[0]
    assert list(tmp_path.iterdir()) == []
