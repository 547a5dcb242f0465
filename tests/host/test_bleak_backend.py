"""End to end over the twin's radio: a MicroPython-API GATT server, reached through bleak.

The server below is written only against MicroPython's ``bluetooth`` API (it is not the
firmware); the client side uses only bleak's public API with the twin backend.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from tremorlift.twin.radio.ble_emulation import FLAG_WRITE_ENCRYPTED, create_bluetooth_module
from tremorlift.twin.radio.bleak_backend import (
    twin_backend,
    twin_client_backend,
    twin_scanner_backend,
)
from tremorlift.twin.radio.link import Radio

SERVICE = "7a1f0001-4c3b-4e0c-9b5a-2d8e6f1c3a70"
NOTIFY_CHAR = "7a1f0002-4c3b-4e0c-9b5a-2d8e6f1c3a70"
WRITE_CHAR = "7a1f0003-4c3b-4e0c-9b5a-2d8e6f1c3a70"
SECURE_CHAR = "7a1f0004-4c3b-4e0c-9b5a-2d8e6f1c3a70"
COMPANY_ID = 0xFFFF


# --- a small GATT server written against MicroPython's bluetooth API --------------------
class MiniServer:
    def __init__(self, bluetooth: Any, name: str, secure_flags: int = 0) -> None:
        self.ble = ble = bluetooth.BLE()
        ble.active(True)
        ble.config(gap_name=name, mtu=247, bond=True, le_secure=True)
        ble.irq(self._irq)
        u = bluetooth.UUID
        chars = (
            (u(NOTIFY_CHAR), bluetooth.FLAG_NOTIFY),
            (u(WRITE_CHAR), bluetooth.FLAG_WRITE | bluetooth.FLAG_READ),
            (u(SECURE_CHAR), bluetooth.FLAG_WRITE | secure_flags),
        )
        ((self.h_notify, self.h_write, self.h_secure),) = ble.gatts_register_services(
            ((u(SERVICE), chars),)
        )
        ble.gatts_write(self.h_write, b"hello")
        service_le = bytes(u(SERVICE))
        self.adv = b"\x02\x01\x06" + bytes([17, 0x07]) + service_le
        self.resp = bytes([len(name) + 1, 0x09]) + name.encode()
        self.resp += bytes([6, 0xFF]) + struct.pack("<H", COMPANY_ID) + b"\x01\x50\x00"
        self.conns: list[int] = []
        self.events: list[tuple[Any, ...]] = []
        self.advertise()

    def advertise(self) -> None:
        self.ble.gap_advertise(20_000, self.adv, resp_data=self.resp)

    def _irq(self, event: int, data: tuple[Any, ...]) -> Any:
        if event == 30:  # _IRQ_SET_SECRET: a bond's keys, kept (as a firmware with a store)
            self.events.append(("secret", data[0], bytes(data[1])))
            return True
        if event == 1:  # _IRQ_CENTRAL_CONNECT
            conn, addr_type, addr = data
            self.conns.append(conn)
            self.events.append(("connect", conn, addr_type, bytes(addr)))
        elif event == 2:  # _IRQ_CENTRAL_DISCONNECT
            self.conns.remove(data[0])
            self.events.append(("disconnect", data[0]))
            self.advertise()
        elif event == 3:  # _IRQ_GATTS_WRITE
            conn, handle = data
            self.events.append(("write", handle, self.ble.gatts_read(handle)))
        elif event == 21:  # _IRQ_MTU_EXCHANGED
            self.events.append(("mtu", data[0], data[1]))
        elif event == 28:  # _IRQ_ENCRYPTION_UPDATE
            self.events.append(("encryption", *data))

    def seen(self, kind: str) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == kind]


# --- helpers -------------------------------------------------------------------------
def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro_fn(), 20.0))


async def start(name: str = "TL-TEST", **server_kwargs: Any) -> tuple[Radio, MiniServer, type]:
    radio = Radio(seed=7)
    bluetooth = await create_bluetooth_module(radio)
    server = MiniServer(bluetooth, name, **server_kwargs)
    await server.ble.settle()
    return radio, server, twin_backend(radio)


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


# --- tests ---------------------------------------------------------------------------
def test_scan_reports_name_address_rssi_uuids_and_manufacturer_data() -> None:
    async def body() -> None:
        radio, server, backend = await start()
        radio.set_rssi(server.ble.address, -47)
        found = await BleakScanner.discover(0.3, return_adv=True, backend=backend)
        device, adv = found[server.ble.address]
        assert device.name == "TL-TEST" and adv.local_name == "TL-TEST"
        assert adv.rssi == -47
        assert adv.service_uuids == [SERVICE]
        assert adv.manufacturer_data == {COMPANY_ID: b"\x01\x50\x00"}
        # A service filter that does not match hides the device.
        other = await BleakScanner.discover(
            0.2, backend=backend, service_uuids=["0000180d-0000-1000-8000-00805f9b34fb"]
        )
        assert other == []

    run(body)


def test_connect_mtu_services_notify_write_read() -> None:
    async def body() -> None:
        radio, server, backend = await start()
        device = await BleakScanner.find_device_by_name("TL-TEST", 1.0, backend=backend)
        assert device is not None
        received: list[bytes] = []
        async with BleakClient(device, backend=backend) as client:
            assert client.is_connected
            assert client.mtu_size == 247
            assert ("mtu", server.conns[0], 247) in server.events
            service = client.services.get_service(SERVICE)
            assert service is not None
            props = {c.uuid: c.properties for c in service.characteristics}
            assert props[NOTIFY_CHAR] == ["notify"]
            assert props[WRITE_CHAR] == ["read", "write"]
            notify_char = client.services.get_characteristic(NOTIFY_CHAR)
            assert notify_char is not None
            assert [d.uuid[4:8] for d in notify_char.descriptors] == ["2902"]
            assert notify_char.max_write_without_response_size == 244

            def on_notify(sender: Any, data: bytearray) -> None:
                assert isinstance(data, bytearray) and sender.uuid == NOTIFY_CHAR
                received.append(bytes(data))

            await client.start_notify(NOTIFY_CHAR, on_notify)
            conn = server.conns[0]
            for seq in range(6):
                server.ble.gatts_notify(conn, server.h_notify, struct.pack("<I", seq) + bytes(240))
            await wait_for(lambda: len(received) == 6)
            assert [len(r) for r in received] == [244] * 6
            assert [struct.unpack_from("<I", r)[0] for r in received] == list(range(6))

            await client.write_gatt_char(WRITE_CHAR, b"\x09\x07", response=True)
            assert server.seen("write")[-1] == ("write", server.h_write, b"\x09\x07")
            await client.write_gatt_char(WRITE_CHAR, b"\x0a", response=False)
            await wait_for(lambda: server.seen("write")[-1][2] == b"\x0a")
            server.ble.gatts_write(server.h_write, b"state")
            assert await client.read_gatt_char(WRITE_CHAR) == bytearray(b"state")

            await client.stop_notify(NOTIFY_CHAR)
            server.ble.gatts_notify(conn, server.h_notify, b"late")
            await asyncio.sleep(0.05)
            assert len(received) == 6
        await wait_for(lambda: server.seen("disconnect") != [])
        assert server.seen("connect")[0][2:] == (1, bytes.fromhex("C07E4C000001"))

    run(body)


def test_notifications_faster_than_the_link_raise_enomem_and_arrive_in_order() -> None:
    async def body() -> None:
        radio, server, backend = await start()
        received: list[int] = []
        async with BleakClient(server.ble.address, backend=backend) as client:
            await client.start_notify(
                NOTIFY_CHAR, lambda _c, d: received.append(struct.unpack_from("<I", d)[0])
            )
            conn = server.conns[0]
            sent = backoffs = 0
            # A firmware-like sender: 4 notifications per 2 ms poll is ~2000/s, five times
            # what the link carries, so the pool fills and the sender must back off.
            while sent < 150:
                for _ in range(min(4, 150 - sent)):
                    try:
                        server.ble.gatts_notify(
                            conn, server.h_notify, struct.pack("<I", sent) + bytes(240)
                        )
                    except OSError as exc:
                        assert exc.errno == 12  # ENOMEM
                        backoffs += 1
                        break
                    sent += 1
                await asyncio.sleep(0.002)
            await wait_for(lambda: len(received) == 150)
            assert received == list(range(150))
            assert backoffs > 0 and server.ble.notify_enomem == backoffs

    run(body)


def test_link_drop_calls_back_both_sides_and_reconnect_works() -> None:
    async def body() -> None:
        radio, server, backend = await start()
        dropped = asyncio.Event()
        client = BleakClient(server.ble.address, lambda _c: dropped.set(), backend=backend)
        await client.connect()
        assert radio.drop_link(server.ble.address) == 2
        await asyncio.wait_for(dropped.wait(), 2.0)
        assert not client.is_connected
        await wait_for(lambda: server.seen("disconnect") != [])
        with pytest.raises(BleakError):
            await client.read_gatt_char(WRITE_CHAR)
        # The server re-advertises from its disconnect IRQ; a new client gets in.
        async with BleakClient(server.ble.address, backend=backend) as again:
            assert again.mtu_size == 247
            assert await again.read_gatt_char(WRITE_CHAR) == bytearray(b"hello")
        assert len(server.seen("connect")) == 2

    run(body)


def test_encrypted_write_refused_until_paired_and_bond_survives_reconnect() -> None:
    async def body() -> None:
        radio, server, backend = await start(secure_flags=FLAG_WRITE_ENCRYPTED)
        async with BleakClient(server.ble.address, backend=backend) as client:
            with pytest.raises(BleakGATTProtocolError) as refused:
                await client.write_gatt_char(SECURE_CHAR, b"\x01", response=True)
            assert refused.value.code == 0x0F  # Insufficient Encryption
            assert server.seen("write") == []
            await client.pair()
            await wait_for(lambda: server.seen("encryption") != [])
            _, conn, encrypted, _authenticated, bonded, key_size = server.seen("encryption")[-1]
            assert (encrypted, bonded, key_size) == (1, 1, 16)
            await client.write_gatt_char(SECURE_CHAR, b"\x01", response=True)
            assert server.seen("write")[-1] == ("write", server.h_secure, b"\x01")
        # Bonded: the next connection is encrypted without pairing again.
        async with BleakClient(server.ble.address, backend=backend) as client:
            await client.write_gatt_char(SECURE_CHAR, b"\x02", response=True)
            assert server.seen("write")[-1][2] == b"\x02"

    run(body)


def test_att_errors_and_missing_device_surface_as_bleak_errors() -> None:
    async def body() -> None:
        radio, server, backend = await start()
        async with BleakClient(server.ble.address, backend=backend) as client:
            with pytest.raises(BleakGATTProtocolError) as not_readable:
                await client.read_gatt_char(SECURE_CHAR)
            assert not_readable.value.code == 0x02  # Read Not Permitted
        with pytest.raises(BleakDeviceNotFoundError):
            await BleakClient("C1:00:00:00:00:99", backend=backend, timeout=0.2).connect()

    run(body)


def test_separate_scanner_and_client_classes_and_notification_loss() -> None:
    async def body() -> None:
        radio, server, _ = await start()
        devices = await BleakScanner.discover(0.3, backend=twin_scanner_backend(radio))
        assert [d.address for d in devices] == [server.ble.address]
        radio.notification_loss = 0.5
        received: list[bytes] = []
        async with BleakClient(devices[0], backend=twin_client_backend(radio)) as client:
            await client.start_notify(NOTIFY_CHAR, lambda _c, d: received.append(bytes(d)))
            for _ in range(200):
                while True:
                    try:
                        server.ble.gatts_notify(server.conns[0], server.h_notify, b"x" * 20)
                        break
                    except OSError:
                        await asyncio.sleep(0.002)
            await wait_for(lambda: server.ble.tx_idle())
            await asyncio.sleep(0.05)
        dropped = radio.link.notifications_dropped
        assert dropped + len(received) == 200
        assert 60 < dropped < 140  # ~half, from the radio's seeded RNG

    run(body)
