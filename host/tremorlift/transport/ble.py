"""BLE transport over bleak: the only module in tremorlift that imports bleak.

The same code talks to a real wearable (bleak's platform backend) and to the digital twin
(pass the twin's bleak backend class as ``backend``): choosing the twin is one argument.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

from tremorlift.errors import UserError
from tremorlift.transport import MessageSink

# docs/protocol.md section 3.
SERVICE_UUID = "7a1f0001-4c3b-4e0c-9b5a-2d8e6f1c3a70"
DATA_UUID = "7a1f0002-4c3b-4e0c-9b5a-2d8e6f1c3a70"
CONTROL_UUID = "7a1f0003-4c3b-4e0c-9b5a-2d8e6f1c3a70"
STATUS_UUID = "7a1f0004-4c3b-4e0c-9b5a-2d8e6f1c3a70"
INFO_UUID = "7a1f0005-4c3b-4e0c-9b5a-2d8e6f1c3a70"
NAME_PREFIX = "TL-"
MANUFACTURER_ID = 0xFFFF


@dataclass(frozen=True)
class FoundWearable:
    """A wearable seen while scanning."""

    name: str
    address: str
    rssi_dbm: int
    protocol_version: int | None
    battery_pct: int | None  # None when the advertisement does not say
    status_flags: int | None
    device: BLEDevice


def _parse_advert(device: BLEDevice, adv: Any) -> FoundWearable | None:
    name = adv.local_name or device.name or ""
    uuids = [u.lower() for u in (adv.service_uuids or [])]
    if SERVICE_UUID not in uuids and not name.startswith(NAME_PREFIX):
        return None
    payload = (adv.manufacturer_data or {}).get(MANUFACTURER_ID)
    version = battery = flags = None
    if payload is not None and len(payload) >= 3:
        version, battery, flags = payload[0], payload[1], payload[2]
        if battery == 255:
            battery = None
    return FoundWearable(
        name=name,
        address=device.address,
        rssi_dbm=int(adv.rssi),
        protocol_version=version,
        battery_pct=battery,
        status_flags=flags,
        device=device,
    )


async def scan(timeout_s: float = 5.0, *, backend: type | None = None) -> list[FoundWearable]:
    """Scan for tremorlift wearables; strongest signal first."""
    kwargs: dict[str, Any] = {"return_adv": True}
    if backend is not None:
        kwargs["backend"] = backend
    try:
        found = await BleakScanner.discover(timeout_s, **kwargs)
    except (BleakError, OSError) as exc:
        # No adapter, Bluetooth off, or (Linux) no BlueZ daemon on the system bus.
        raise UserError(f"Bluetooth is not available: {exc or type(exc).__name__}") from exc
    wearables = [w for d, adv in found.values() if (w := _parse_advert(d, adv)) is not None]
    return sorted(wearables, key=lambda w: -w.rssi_dbm)


async def find(
    target: str, timeout_s: float = 10.0, *, backend: type | None = None
) -> FoundWearable | None:
    """Find one wearable by name (``TL-1A2B``) or address."""
    for w in await scan(timeout_s, backend=backend):
        if target.upper() in (w.name.upper(), w.address.upper()):
            return w
    return None


class BleLink:
    """One BLE connection to a wearable.

    Every notification (data, control responses, status) goes to ``sink.on_message`` with the
    host's receive time; a link loss calls ``sink.on_disconnect`` once. A new ``BleakClient`` is
    made for every ``open()`` so no subscription survives from an earlier connection.
    """

    def __init__(
        self,
        target: BLEDevice | str,
        sink: MessageSink,
        *,
        backend: type | None = None,
        kind: str = "ble",
        connect_timeout_s: float = 15.0,
    ) -> None:
        self._target = target
        self._sink = sink
        self._backend = backend
        self.kind = kind
        self._timeout_s = connect_timeout_s
        self._client: BleakClient | None = None
        self._closing = False
        self.address = target.address if isinstance(target, BLEDevice) else target
        self.name = (target.name or self.address) if isinstance(target, BLEDevice) else target

    def _on_notify(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        self._sink.on_message(bytes(data), time.monotonic())

    def _on_disconnected(self, _client: BleakClient) -> None:
        if not self._closing:
            self._sink.on_disconnect("link lost")

    async def open(self) -> None:
        self._closing = False
        kwargs: dict[str, Any] = {"timeout": self._timeout_s}
        if self._backend is not None:
            kwargs["backend"] = self._backend
        client = BleakClient(self._target, self._on_disconnected, **kwargs)
        try:
            await client.connect()
            for uuid in (CONTROL_UUID, STATUS_UUID, DATA_UUID):
                await client.start_notify(uuid, self._on_notify)
        except (BleakError, asyncio.TimeoutError, OSError) as exc:
            self._closing = True
            try:
                await client.disconnect()
            except (BleakError, asyncio.TimeoutError, OSError):
                pass
            raise ConnectionError(f"{self.name}: could not connect: {exc}") from exc
        self._client = client

    @property
    def att_mtu(self) -> int | None:
        return self._client.mtu_size if self._client is not None else None

    async def read_info(self) -> bytes | None:
        if self._client is None:
            raise ConnectionError(f"{self.name}: not connected")
        try:
            return bytes(await self._client.read_gatt_char(INFO_UUID))
        except (BleakError, asyncio.TimeoutError, OSError) as exc:
            raise ConnectionError(f"{self.name}: reading INFO failed: {exc}") from exc

    async def send_command(self, command: bytes) -> None:
        if self._client is None or not self._client.is_connected:
            raise ConnectionError(f"{self.name}: not connected")
        try:
            await self._client.write_gatt_char(CONTROL_UUID, command, response=True)
        except (BleakError, asyncio.TimeoutError, OSError) as exc:
            raise ConnectionError(f"{self.name}: command write failed: {exc}") from exc

    async def close(self) -> None:
        self._closing = True
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.disconnect()
            except (BleakError, asyncio.TimeoutError, OSError):
                pass
