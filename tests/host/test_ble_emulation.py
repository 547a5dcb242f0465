"""MicroPython's bluetooth API on the twin's Bumble peripheral, checked from a raw Bumble central."""

from __future__ import annotations

import asyncio
import errno
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from bumble import hci
from bumble.att import ATT_Error
from bumble.core import UUID as BumbleUUID
from bumble.device import Connection, Peer
from tremorlift.twin.radio import ble_emulation as emu
from tremorlift.twin.radio.link import Radio

SVC = "7a1f0001-4c3b-4e0c-9b5a-2d8e6f1c3a70"
CHAR_A = "7a1f0002-4c3b-4e0c-9b5a-2d8e6f1c3a70"
CHAR_B = "7a1f0003-4c3b-4e0c-9b5a-2d8e6f1c3a70"


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro_fn(), 20.0))


async def until(cond: Callable[[], bool], timeout_s: float = 3.0) -> None:
    """Wait for cond() (the paced radio carries data at its connection events)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not cond():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.005)


class Recorder:
    """An IRQ handler that copies what it is given (memoryviews die with the call)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, tuple[Any, ...]]] = []
        self.read_result: int | None = None
        self.keep_secrets = True  # _IRQ_SET_SECRET: the application's key store keeps them
        self.addr_types: list[type] = []

    def __call__(self, event: int, data: tuple[Any, ...]) -> Any:
        self.addr_types += [type(x) for x in data if not isinstance(x, int)]
        self.events.append(
            (event, tuple(bytes(x) if isinstance(x, memoryview) else x for x in data))
        )
        if event == emu._IRQ_GATTS_READ_REQUEST:
            return self.read_result
        if event == emu._IRQ_SET_SECRET:
            return self.keep_secrets
        return None

    def of(self, event: int) -> list[tuple[Any, ...]]:
        return [d for e, d in self.events if e == event]


async def peripheral(
    radio_kwargs: dict[str, Any] | None = None, **kwargs: Any
) -> tuple[Radio, emu.BLE, Recorder]:
    radio = Radio(seed=3, **(radio_kwargs or {}))
    ble = await emu.create_ble(radio, **kwargs)
    rec = Recorder()
    ble.irq(rec)
    ble.active(True)
    return radio, ble, rec


async def connect(radio: Radio, ble: emu.BLE) -> tuple[Connection, Peer]:
    """Advertise, then connect a bare Bumble central (no MTU exchange: ATT_MTU stays 23)."""
    ble.gap_advertise(20_000, b"\x02\x01\x06")
    await ble.settle()
    central = await radio.central()
    connection = await central.connect(hci.Address(ble.address), timeout=2.0)
    peer = Peer(connection)
    await peer.discover_services()
    for service in peer.services:
        await service.discover_characteristics()
        for characteristic in service.characteristics:
            await characteristic.discover_descriptors()
    return connection, peer


def char(peer: Peer, uuid: str) -> Any:
    (found,) = peer.get_characteristics_by_uuid(BumbleUUID(uuid))
    return found


def test_module_shape_flags_and_uuid() -> None:
    async def body() -> None:
        radio = Radio()
        module = await emu.create_bluetooth_module(radio)
        public = sorted(n for n in vars(module) if not n.startswith("_"))
        assert public == [
            "BLE",
            "FLAG_INDICATE",
            "FLAG_NOTIFY",
            "FLAG_READ",
            "FLAG_WRITE",
            "FLAG_WRITE_NO_RESPONSE",
            "UUID",
        ]
        assert module.BLE() is module.BLE()  # a singleton per device
        assert (module.FLAG_READ, module.FLAG_WRITE_NO_RESPONSE, module.FLAG_WRITE) == (2, 4, 8)
        assert (module.FLAG_NOTIFY, module.FLAG_INDICATE) == (0x10, 0x20)
        assert (emu.FLAG_READ_ENCRYPTED, emu.FLAG_WRITE_ENCRYPTED) == (0x0200, 0x1000)

    run(body)
    u = emu.UUID
    assert u(0x180D) == u(b"\x0d\x18") == u("180d") and bytes(u(0x180D)) == b"\x0d\x18"
    assert bytes(u(0x12345678)) == b"\x78\x56\x34\x12"
    long = u(SVC)
    assert bytes(long) == bytes(reversed(bytes.fromhex(SVC.replace("-", ""))))
    assert u(bytes(long)) == long and str(long) == SVC and len({long, u(SVC)}) == 1
    assert repr(u(0x2902)) == "UUID(0x2902)"
    for bad in ("12345", b"\x01\x02\x03", 1 << 40):
        with pytest.raises(ValueError):
            u(bad)


def test_config_activity_and_registration_rules() -> None:
    async def body() -> None:
        radio = Radio()
        ble = await emu.create_ble(radio)
        with pytest.raises(OSError) as inactive:
            ble.gap_advertise(100_000, b"")
        assert inactive.value.errno == errno.EPERM
        assert ble.active() is False and ble.active(True) is True
        addr_type, mac = ble.config("mac")
        assert addr_type == 1 and mac.hex(":").upper() == ble.address
        ble.config(gap_name="TL-0A0B", mtu=247, bond=True, le_secure=True, mitm=False, io=3)
        assert ble.config("gap_name") == b"TL-0A0B" and ble.config("mtu") == 247
        with pytest.raises(ValueError):
            ble.config("bogus")
        with pytest.raises(OSError):
            ble.config(mtu=22)
        with pytest.raises(OSError):
            ble.gap_advertise(100_000, bytes(32))  # longer than legacy advertising allows

        services = (
            (
                emu.UUID(SVC),
                (
                    (emu.UUID(CHAR_A), emu.FLAG_NOTIFY),
                    (emu.UUID(CHAR_B), emu.FLAG_WRITE, ((emu.UUID(0x2901), 0x01),)),
                ),
            ),
            (emu.UUID(0x180F), ((emu.UUID(0x2A19), emu.FLAG_READ),)),
        )
        handles = ble.gatts_register_services(services)
        assert [len(h) for h in handles] == [3, 1]  # CCCD of CHAR_A is not returned
        (a, b, b_desc), (battery,) = handles
        assert a < b < b_desc < battery
        assert ble.gatts_register_services(services) == handles  # replaces, same layout
        assert ble.gatts_read(a) == b""
        ble.gatts_write(battery, b"\x55")
        assert ble.gatts_read(battery) == b"\x55"
        with pytest.raises(OSError) as bad_handle:
            ble.gatts_read(999)
        assert bad_handle.value.errno == errno.EINVAL
        ble.gap_advertise(100_000, b"\x02\x01\x06")
        with pytest.raises(OSError) as busy:
            ble.gatts_register_services(services)
        assert busy.value.errno == errno.EBUSY
        ble.gap_advertise(None)
        await ble.settle()
        assert ble.op_errors == []

    run(body)


def test_client_writes_reads_buffers_and_read_request_irq() -> None:
    async def body() -> None:
        radio, ble, rec = await peripheral()
        ((h_w, h_r),) = ble.gatts_register_services(
            (
                (
                    emu.UUID(SVC),
                    ((emu.UUID(CHAR_A), emu.FLAG_WRITE), (emu.UUID(CHAR_B), emu.FLAG_READ)),
                ),
            )
        )
        connection, peer = await connect(radio, ble)
        (conn, addr_type, addr) = rec.of(emu._IRQ_CENTRAL_CONNECT)[0]
        assert addr_type == 1 and addr == bytes.fromhex("C07E4C000001")
        assert memoryview in rec.addr_types

        w, r = char(peer, CHAR_A), char(peer, CHAR_B)
        await peer.write_value(w, bytes(range(30)), with_response=True)
        assert rec.of(emu._IRQ_GATTS_WRITE)[-1] == (conn, h_w)
        assert ble.gatts_read(h_w) == bytes(range(20))  # cut to the default 20-byte buffer
        ble.gatts_set_buffer(h_w, 8, True)
        await peer.write_value(w, b"abcde", with_response=True)
        await peer.write_value(w, b"fghij", with_response=True)
        assert ble.gatts_read(h_w) == b"abcdefgh" and ble.gatts_read(h_w) == b""  # append mode

        with pytest.raises(ATT_Error) as not_readable:
            await peer.read_value(w)
        assert not_readable.value.error_code == 0x02
        with pytest.raises(ATT_Error) as not_writable:
            await peer.write_value(r, b"x", with_response=True)
        assert not_writable.value.error_code == 0x03

        ble.gatts_write(h_r, b"value")
        assert await peer.read_value(r) == b"value"
        assert rec.of(emu._IRQ_GATTS_READ_REQUEST)[-1] == (conn, h_r)
        rec.read_result = 0x0F  # the handler denies the read with Insufficient Encryption
        with pytest.raises(ATT_Error) as denied:
            await peer.read_value(r)
        assert denied.value.error_code == 0x0F

        await connection.disconnect()
        await asyncio.sleep(0.01)
        assert rec.of(emu._IRQ_CENTRAL_DISCONNECT) == [(conn, 1, bytes.fromhex("C07E4C000001"))]
        assert ble.irq_errors == []

    run(body)


def test_notify_pool_enomem_truncation_and_send_update() -> None:
    async def body() -> None:
        # A controller with 2 ACL buffers: 2 notifications go to it, 4 more wait in the host
        # holding the 4 transmit buffers, and a 7th before the next connection event fails.
        radio, ble, rec = await peripheral({"acl_buffers": 2}, notify_buffers=4)
        ((h_n,),) = ble.gatts_register_services(
            ((emu.UUID(SVC), ((emu.UUID(CHAR_A), emu.FLAG_NOTIFY | emu.FLAG_READ),)),)
        )
        connection, peer = await connect(radio, ble)
        conn = ble.connections[0]
        got: list[bytes] = []
        await peer.subscribe(char(peer, CHAR_A), got.append)

        for i in range(6):
            ble.gatts_notify(conn, h_n, bytes([i]) * 30)
        assert ble.tx_pending() == 4
        with pytest.raises(OSError) as full:
            ble.gatts_notify(conn, h_n, b"x")
        assert full.value.errno == errno.ENOMEM and ble.notify_enomem == 1
        await until(lambda: ble.tx_pending() == 0)  # connection events drain the pool
        ble.gatts_write(h_n, b"stored")
        ble.gatts_notify(conn, h_n)  # data=None sends the stored value
        await until(lambda: len(got) == 7)
        # No MTU exchange: ATT_MTU 23, so 30-byte values arrive cut to 20 bytes.
        assert got == [bytes([i]) * 20 for i in range(6)] + [b"stored"]
        assert ble.notifications_truncated == 6

        ble.gatts_write(h_n, b"update", True)  # send_update notifies the subscriber
        await until(lambda: len(got) == 8)
        assert got[-1] == b"update"
        with pytest.raises(OSError) as nobody:
            ble.gatts_notify(conn + 7, h_n, b"x")
        assert nobody.value.errno == errno.ENOTCONN

        for _ in range(4):  # queued notifications return to the pool when the link drops
            ble.gatts_notify(conn, h_n, b"q")
        radio.drop_link(ble.address)
        await asyncio.sleep(0.01)
        assert ble.tx_pending() == 0 and ble.connections == []

    run(body)


def test_mtu_indicate_encryption_irqs_and_handler_errors() -> None:
    async def body() -> None:
        radio, ble, rec = await peripheral()
        ble.config(mtu=247, bond=True, le_secure=True)
        ((h_i,),) = ble.gatts_register_services(
            ((emu.UUID(SVC), ((emu.UUID(CHAR_A), emu.FLAG_INDICATE),)),)
        )
        connection, peer = await connect(radio, ble)
        conn = ble.connections[0]
        assert await peer.request_mtu(247) == 247
        assert rec.of(emu._IRQ_MTU_EXCHANGED) == [(conn, 247)]

        got: list[bytes] = []
        await peer.subscribe(char(peer, CHAR_A), got.append, prefer_notify=False)
        ble.gatts_write(h_i, b"ind")
        ble.gatts_indicate(conn, h_i)
        await until(lambda: rec.of(emu._IRQ_GATTS_INDICATE_DONE) != [])
        assert got == [b"ind"] and rec.of(emu._IRQ_GATTS_INDICATE_DONE) == [(conn, h_i, 0)]

        await connection.pair()
        await until(lambda: rec.of(emu._IRQ_ENCRYPTION_UPDATE) != [])
        assert rec.of(emu._IRQ_ENCRYPTION_UPDATE) == [(conn, 1, 0, 1, 16)]
        # The bond's keys were offered to the application's store first: the peer's, then ours.
        central_key = bytes([1]) + bytes(hci.Address("C0:7E:4C:00:00:01"))
        assert [(t, k) for t, k, _v in rec.of(emu._IRQ_SET_SECRET)] == [
            (2, central_key),
            (1, central_key),
        ]

        def broken(event: int, data: tuple[Any, ...]) -> None:
            raise RuntimeError("handler bug")

        ble.irq(broken)
        ble.gatts_write(h_i, b"x")
        ble.gap_disconnect(conn)
        await ble.settle()
        await asyncio.sleep(0.01)
        assert ble.connections == []
        assert [str(e) for e in ble.irq_errors] == ["handler bug"]  # printed, not raised
        assert struct.calcsize("<BH") == 3

    run(body)


def test_keys_the_store_refuses_leave_no_bond() -> None:
    async def body() -> None:
        radio, ble, rec = await peripheral()
        ble.config(bond=True, le_secure=True)
        rec.keep_secrets = False  # e.g. a host pairing outside the firmware's pairing window
        connection, _peer = await connect(radio, ble)
        conn = ble.connections[0]
        await connection.pair()
        await until(lambda: rec.of(emu._IRQ_ENCRYPTION_UPDATE) != [])
        assert rec.of(emu._IRQ_ENCRYPTION_UPDATE) == [(conn, 1, 0, 0, 16)]  # not bonded
        await connection.disconnect()
        await until(lambda: ble.connections == [])
        await ble.settle()
        # The central still holds its keys; the wearable kept none: re-encryption fails.
        ble.gap_advertise(20_000, b"\x02\x01\x06")
        await ble.settle()
        central = await radio.central()
        again = await central.connect(hci.Address(ble.address), timeout=2.0)
        with pytest.raises(Exception):  # noqa: B017 - Bumble raises its HCI error types
            await asyncio.wait_for(again.encrypt(), 2.0)
        assert not again.is_encrypted

    run(body)
