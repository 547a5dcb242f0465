"""BLE transport over bleak: the only module in tremorlift that imports bleak.

The same code talks to a real wearable (bleak's platform backend) and to the digital twin
(pass the twin's bleak backend class as ``backend``): choosing the twin is one argument.

Pairing (docs/protocol.md, 9): the wearable's control characteristic needs an encrypted,
bonded link. ``BleLink.pair()`` runs bleak's ``pair()`` (LE Secure Connections, "Just Works"
on the wearable's side); the operating system keeps the bond (BlueZ, CoreBluetooth, WinRT)
and re-encrypts on later connections. A command refused for want of encryption raises
``PairingRequired`` (a one-line ``UserError`` naming ``tremorlift pair``), unless the link was
made with ``pair_on_demand``, in which case it pairs and sends the command again once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakDBusError, BleakError, BleakGATTProtocolError

from tremorlift.errors import UserError
from tremorlift.protocol import (  # docs/protocol.md sections 2 and 3
    CONTROL_UUID,
    DATA_UUID,
    INFO_UUID,
    MANUFACTURER_ID,
    NAME_PREFIX,
    SERVICE_UUID,
    STATUS_UUID,
)
from tremorlift.transport import MessageSink

# ATT errors that mean "pair first": Insufficient Authentication, Insufficient Encryption Key
# Size, Insufficient Encryption (Bluetooth Core, Vol 3, Part F, 3.4.1.1).
ATT_SECURITY_ERRORS = frozenset((0x05, 0x0C, 0x0F))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BleakGATTProtocolError):
        code = int(exc.code)
        name = getattr(exc.code, "name", "")
        return f"ATT error 0x{code:02X} {name.replace('_', ' ').lower()}".rstrip()
    return str(exc) or type(exc).__name__


class PairingRequired(UserError):
    """The wearable refused a command because the link is not encrypted with a bond."""


def is_security_refusal(exc: BaseException) -> bool:
    """True when a failed GATT operation was refused for want of pairing/encryption."""
    if isinstance(exc, BleakGATTProtocolError):
        return int(exc.code) in ATT_SECURITY_ERRORS
    if isinstance(exc, BleakDBusError):
        # BlueZ reports these as org.bluez.Error.NotPermitted "Not paired" (or NotAuthorized).
        text = f"{exc.dbus_error} {exc.dbus_error_details or ''}".lower()
        return "not paired" in text or "notauthorized" in text or "authentication" in text
    return False


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


# What to check when the scan cannot start (no adapter, adapter off, no BlueZ, no rights).
NO_ADAPTER_HINT = (
    "check that BlueZ runs (`systemctl status bluetooth`), that the adapter is powered "
    "(`bluetoothctl power on`) and that this user may use it (member of the `bluetooth` group)"
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
        raise UserError(
            f"Bluetooth is not available ({exc or type(exc).__name__}): {NO_ADAPTER_HINT}"
        ) from exc
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
        connect_timeout_s: float = 10.0,
        pair: bool = False,
        pair_on_demand: bool = False,
        on_paired: Callable[[BleLink], None] | None = None,
        name: str | None = None,
    ) -> None:
        """``pair``: pair right after connecting (before subscribing). ``pair_on_demand``: pair
        when a command is refused for want of encryption, then send it again (once per
        connection). ``on_paired(link)`` runs after every successful pairing."""
        self._target = target
        self._sink = sink
        self._backend = backend
        self.kind = kind
        self._timeout_s = connect_timeout_s
        self._pair_on_connect = pair
        self._pair_on_demand = pair_on_demand
        self._on_paired = on_paired
        self._client: BleakClient | None = None
        self._closing = False
        self.paired_here = False  # this connection ran pair() successfully
        self.pairings = 0  # pair() runs that succeeded, over every open()
        self.address = target.address if isinstance(target, BLEDevice) else target
        self.name = name or (
            (target.name or self.address) if isinstance(target, BLEDevice) else target
        )

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
        self.paired_here = False
        try:
            # The whole connection, service discovery included, within the timeout: a stack
            # whose discovery hangs (a request never answered) is tried again instead of holding
            # the wearable off the air while its ring of unsent frames runs out.
            await asyncio.wait_for(client.connect(), self._timeout_s)
            self._client = client
            if self._pair_on_connect:
                await self._pair(client)
            for uuid in (CONTROL_UUID, STATUS_UUID, DATA_UUID):
                await client.start_notify(uuid, self._on_notify)
        except (TimeoutError, BleakError, OSError) as exc:
            self._closing = True
            self._client = None
            try:
                await client.disconnect()
            except (TimeoutError, BleakError, OSError):
                pass
            raise ConnectionError(f"{self.name}: could not connect: {exc}") from exc

    async def _pair(self, client: BleakClient) -> None:
        try:
            await client.pair()
        except (TimeoutError, BleakError, OSError) as exc:
            raise ConnectionError(f"{self.name}: pairing failed: {exc}") from exc
        self.paired_here = True
        self.pairings += 1
        if self._on_paired is not None:
            self._on_paired(self)

    async def pair(self) -> None:
        """Pair (and bond) with the connected wearable; ``ConnectionError`` if it fails."""
        if self._client is None or not self._client.is_connected:
            raise ConnectionError(f"{self.name}: not connected")
        await self._pair(self._client)

    @property
    def att_mtu(self) -> int | None:
        return self._client.mtu_size if self._client is not None else None

    async def read_info(self) -> bytes | None:
        if self._client is None:
            raise ConnectionError(f"{self.name}: not connected")
        try:
            return bytes(await self._client.read_gatt_char(INFO_UUID))
        except (TimeoutError, BleakError, OSError) as exc:
            raise ConnectionError(f"{self.name}: reading INFO failed: {exc}") from exc

    async def read_status(self) -> bytes:
        """The STATUS characteristic's value, read directly (open to any central)."""
        if self._client is None:
            raise ConnectionError(f"{self.name}: not connected")
        try:
            return bytes(await self._client.read_gatt_char(STATUS_UUID))
        except (TimeoutError, BleakError, OSError) as exc:
            raise ConnectionError(f"{self.name}: reading STATUS failed: {exc}") from exc

    async def send_command(self, command: bytes) -> None:
        client = self._client
        if client is None or not client.is_connected:
            raise ConnectionError(f"{self.name}: not connected")
        try:
            await client.write_gatt_char(CONTROL_UUID, command, response=True)
            return
        except (TimeoutError, BleakError, OSError) as exc:
            if not is_security_refusal(exc):
                raise ConnectionError(f"{self.name}: command write failed: {exc}") from exc
            if not self._pair_on_demand or self.paired_here:
                raise PairingRequired(
                    f"{self.name}: the wearable refused a command because the link is not "
                    f"encrypted ({_describe(exc)}); pair it first: tremorlift pair --device {self.name}"
                ) from exc
        await self._pair(client)
        try:
            await client.write_gatt_char(CONTROL_UUID, command, response=True)
        except (TimeoutError, BleakError, OSError) as exc:
            raise ConnectionError(
                f"{self.name}: command write failed after pairing: {exc}"
            ) from exc

    async def close(self) -> None:
        self._closing = True
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.disconnect()
            except (TimeoutError, BleakError, OSError):
                pass
