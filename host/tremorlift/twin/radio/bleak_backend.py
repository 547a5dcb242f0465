"""A bleak backend that reaches the digital twin's wearables over the virtual radio.

The collector talks to emulated wearables through bleak's public API only; this module
supplies the backend classes behind it. They drive the radio's Bumble central
(``Radio.central()``), so scanning, connecting, MTU exchange, GATT discovery, reads,
writes, notifications and pairing all run through Bumble's real protocol stack.

Choosing the twin is one argument::

    backend = twin_backend(radio)   # a class usable as bleak's backend= everywhere
    found = await BleakScanner.discover(2.0, return_adv=True, backend=backend)
    async with BleakClient(device, backend=backend) as client:
        ...

``twin_backend(radio)`` returns one class that bleak accepts for both ``BleakScanner``
and ``BleakClient`` (it builds the scanner or the client depending on how bleak calls
it), so code that keeps a single ``backend`` value works unchanged.
``twin_scanner_backend(radio)`` and ``twin_client_backend(radio)`` give the two classes
separately (``BaseBleakScanner`` / ``BaseBleakClient`` subclasses).

Behaviour, chosen to match bleak on BlueZ where platforms differ:

* ``connect()`` exchanges the ATT MTU (asks for 247) and discovers every service,
  characteristic and descriptor; ``mtu_size`` is the negotiated MTU (unlike BlueZ,
  which reports 23). If the central holds a bond for the peer, the link is encrypted
  right after connecting, as BlueZ and CoreBluetooth do for bonded devices.
* ``disconnected_callback`` runs on every disconnection, the client's own included
  (as on BlueZ), so callers should tell their own ``disconnect()`` apart.
* ATT error responses raise ``bleak.exc.BleakGATTProtocolError`` (``.code`` holds the
  ATT error code, e.g. 0x0F Insufficient Encryption); a link lost during an operation
  raises ``BleakError``; an address that never advertises raises
  ``BleakDeviceNotFoundError``.
* ``pair()`` runs SMP "Just Works" with bonding (the central has no display or
  keyboard); ``unpair()`` forgets the bond and disconnects.
* Notification callbacks receive a ``bytearray``; ``start_notify`` prefers
  notifications when a characteristic supports both.
* RSSI in advertisement data is the radio's value for that address
  (``Radio.set_rssi``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CHARACTERISTIC_PROPERTIES, CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble import core, hci
from bumble.att import ATT_Error
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy

from tremorlift.twin.radio.link import Radio

logger = logging.getLogger(__name__)

REQUESTED_MTU = 247  # what desktop stacks ask for; the firmware offers the same

# Bluetooth Core Supplement Part A 1: AD types the scanner decodes.
_AD_UUID16_INCOMPLETE = 0x02
_AD_UUID16_COMPLETE = 0x03
_AD_UUID32_INCOMPLETE = 0x04
_AD_UUID32_COMPLETE = 0x05
_AD_UUID128_INCOMPLETE = 0x06
_AD_UUID128_COMPLETE = 0x07
_AD_NAME_SHORT = 0x08
_AD_NAME_COMPLETE = 0x09
_AD_TX_POWER = 0x0A
_AD_SERVICE_DATA_16 = 0x16
_AD_SERVICE_DATA_32 = 0x20
_AD_SERVICE_DATA_128 = 0x21
_AD_MANUFACTURER = 0xFF
_BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def _uuid_str(le: bytes) -> str:
    """bleak's normalised lowercase 128-bit form of a little-endian UUID."""
    if len(le) == 2:
        return f"0000{int.from_bytes(le, 'little'):04x}{_BASE_UUID_SUFFIX}"
    if len(le) == 4:
        return f"{int.from_bytes(le, 'little'):08x}{_BASE_UUID_SUFFIX}"
    return str(UUID(bytes=bytes(reversed(le))))


def parse_advertising_data(data: bytes, rssi_dbm: int, platform: Any = None) -> AdvertisementData:
    """Decode legacy advertising (+ scan response) bytes into bleak's AdvertisementData."""
    local_name: str | None = None
    short_name: str | None = None
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    uuids: list[str] = []
    tx_power: int | None = None
    i = 0
    while i < len(data):
        length = data[i]
        if length == 0 or i + 1 + length > len(data):
            break  # padding or a truncated structure ends the data
        ad_type, value = data[i + 1], bytes(data[i + 2 : i + 1 + length])
        i += 1 + length
        if ad_type in (_AD_UUID16_INCOMPLETE, _AD_UUID16_COMPLETE):
            uuids += [_uuid_str(value[k : k + 2]) for k in range(0, len(value) - 1, 2)]
        elif ad_type in (_AD_UUID32_INCOMPLETE, _AD_UUID32_COMPLETE):
            uuids += [_uuid_str(value[k : k + 4]) for k in range(0, len(value) - 3, 4)]
        elif ad_type in (_AD_UUID128_INCOMPLETE, _AD_UUID128_COMPLETE):
            uuids += [_uuid_str(value[k : k + 16]) for k in range(0, len(value) - 15, 16)]
        elif ad_type == _AD_NAME_COMPLETE:
            local_name = value.decode("utf-8", "replace")
        elif ad_type == _AD_NAME_SHORT:
            short_name = value.decode("utf-8", "replace")
        elif ad_type == _AD_TX_POWER and value:
            tx_power = int.from_bytes(value[:1], "little", signed=True)
        elif ad_type == _AD_MANUFACTURER and len(value) >= 2:
            manufacturer[int.from_bytes(value[:2], "little")] = value[2:]
        elif ad_type == _AD_SERVICE_DATA_16 and len(value) >= 2:
            service_data[_uuid_str(value[:2])] = value[2:]
        elif ad_type == _AD_SERVICE_DATA_32 and len(value) >= 4:
            service_data[_uuid_str(value[:4])] = value[4:]
        elif ad_type == _AD_SERVICE_DATA_128 and len(value) >= 16:
            service_data[_uuid_str(value[:16])] = value[16:]
    return AdvertisementData(
        local_name=local_name if local_name is not None else short_name,
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=uuids,
        tx_power=tx_power,
        rssi=rssi_dbm,
        platform_data=(platform,),
    )


class _CentralScanning:
    """Reference-counted scanning of the radio's central (one adapter, many scanners)."""

    def __init__(self) -> None:
        self.users = 0
        self.lock = asyncio.Lock()


_scanning_state: dict[int, _CentralScanning] = {}


class TwinScanner(BaseBleakScanner):
    """bleak scanner backend on the radio's central. Use :func:`twin_scanner_backend`."""

    radio: Radio  # bound by twin_scanner_backend

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        if scanning_mode not in ("active", "passive"):
            raise BleakError(f"unknown scanning mode {scanning_mode!r}")
        self._active = scanning_mode == "active"
        self._central: Device | None = None
        self._scanning = False

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        address = advertisement.address.to_string(False)
        # The accumulator merged advertising data and scan response into .data.
        adv = parse_advertising_data(bytes(advertisement.data), advertisement.rssi, advertisement)
        if not self.is_allowed_uuid(adv.service_uuids):
            return
        device = self.create_or_update_device(
            address, address, adv.local_name, advertisement.address, adv
        )
        self.call_detection_callbacks(device, adv)

    async def start(self) -> None:
        self.seen_devices = {}
        central = self._central = await self.radio.central()
        state = _scanning_state.setdefault(id(central), _CentralScanning())
        central.on(central.EVENT_ADVERTISEMENT, self._on_advertisement)
        async with state.lock:
            if state.users == 0:
                await central.start_scanning(active=self._active, filter_duplicates=False)
            state.users += 1
        self._scanning = True

    async def stop(self) -> None:
        central = self._central
        if central is None or not self._scanning:
            return
        self._scanning = False
        central.remove_listener(central.EVENT_ADVERTISEMENT, self._on_advertisement)
        state = _scanning_state[id(central)]
        async with state.lock:
            state.users -= 1
            if state.users == 0:
                await central.stop_scanning()


def _bleak_properties(properties: int) -> list[CharacteristicPropertyName]:
    return [name for bit, name in CHARACTERISTIC_PROPERTIES.items() if properties & bit]


class TwinClient(BaseBleakClient):
    """bleak client backend on the radio's central. Use :func:`twin_client_backend`."""

    radio: Radio  # bound by twin_client_backend

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._name = (
            address_or_ble_device.name
            if isinstance(address_or_ble_device, BLEDevice) and address_or_ble_device.name
            else None
        )
        self._service_filter = services
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._notify_subscribers: dict[int, Callable[[bytes], None]] = {}

    # --- identity and state ----------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        if self._connection is None:
            raise BleakError("Not connected")
        return int(self._connection.att_mtu)

    @property
    def is_connected(self) -> bool:
        connection = self._connection
        return connection is not None and connection.handle in connection.device.connections

    # --- connectivity --------------------------------------------------------------
    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self.is_connected:
            return
        central = await self.radio.central()
        target = hci.Address(self.address, hci.Address.RANDOM_DEVICE_ADDRESS)
        try:
            async with self.radio.connect_lock:
                connection = await central.connect(target, timeout=self._timeout)
        except (TimeoutError, core.TimeoutError) as exc:
            raise BleakDeviceNotFoundError(
                self.address, f"Device with address {self.address} was not found."
            ) from exc
        except core.ConnectionError as exc:
            raise BleakError(f"connection to {self.address} failed: {exc}") from exc
        self._connection = connection
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            peer = self._peer = Peer(connection)
            await self._guard(peer.request_mtu(REQUESTED_MTU))
            keystore = central.keystore
            if keystore is not None and await keystore.get(str(connection.peer_address)):
                await self._guard(connection.encrypt())
            if pair:
                await self.pair()
            await self._discover(peer)
        except BaseException:
            if self.is_connected:
                await connection.disconnect()
            raise

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None or not self.is_connected:
            return
        try:
            await connection.disconnect()
        except core.BaseBumbleError as exc:
            if self.is_connected:
                raise BleakError(f"disconnect failed: {exc}") from exc

    def _on_disconnection(self, _reason: int) -> None:
        self._notify_subscribers.clear()
        callback = self._disconnected_callback
        if callback is not None:
            asyncio.get_running_loop().call_soon(callback)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        connection = self._require_connection()
        try:
            await self._guard(connection.pair())
        except core.ProtocolError as exc:
            raise BleakError(f"pairing with {self.address} failed: {exc}") from exc

    async def unpair(self) -> None:
        keystore = (await self.radio.central()).keystore
        if keystore is not None:
            if self._connection is not None:
                await keystore.delete(str(self._connection.peer_address))
            else:
                await keystore.delete(self.address)
        await self.disconnect()

    # --- GATT --------------------------------------------------------------------------
    async def _discover(self, peer: Peer) -> None:
        await self._guard(peer.discover_services())
        collection = BleakGATTServiceCollection()
        for service in peer.services:
            service_uuid = _uuid_str(service.uuid.to_bytes())
            if self._service_filter is not None and service_uuid not in self._service_filter:
                continue
            await self._guard(service.discover_characteristics())
            b_service = BleakGATTService(service, service.handle, service_uuid)
            collection.add_service(b_service)
            for characteristic in service.characteristics:
                await self._guard(characteristic.discover_descriptors())
                b_char = BleakGATTCharacteristic(
                    characteristic,
                    characteristic.handle,
                    _uuid_str(characteristic.uuid.to_bytes()),
                    _bleak_properties(int(characteristic.properties)),
                    lambda: self.mtu_size - 3,
                    b_service,
                )
                collection.add_characteristic(b_char)
                for descriptor in characteristic.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor,
                            descriptor.handle,
                            _uuid_str(descriptor.type.to_bytes()),
                            b_char,
                        )
                    )
        self.services = collection

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        if use_cached and proxy.handle in peer.gatt_client.cached_values:
            return bytearray(peer.gatt_client.cached_values[proxy.handle][1])
        return bytearray(await self._guard(peer.read_value(proxy)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        proxy: DescriptorProxy = descriptor.obj
        return bytearray(await self._guard(peer.read_value(proxy)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._require_peer()
        await self._guard(peer.write_value(characteristic.obj, bytes(data), with_response=response))

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        peer = self._require_peer()
        await self._guard(peer.write_value(descriptor.obj, bytes(data), with_response=True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        peer = self._require_peer()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        previous = self._notify_subscribers.pop(proxy.handle, None)
        if previous is not None:
            await self._guard(peer.unsubscribe(proxy, previous))

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        self._notify_subscribers[proxy.handle] = deliver
        await self._guard(peer.subscribe(proxy, deliver, prefer_notify=True))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_peer()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        subscriber = self._notify_subscribers.pop(proxy.handle, None)
        await self._guard(peer.gatt_client.unsubscribe(proxy, subscriber, force=True))

    # --- helpers -------------------------------------------------------------------------
    def _require_connection(self) -> Connection:
        if self._connection is None or not self.is_connected:
            raise BleakError("Not connected")
        return self._connection

    def _require_peer(self) -> Peer:
        self._require_connection()
        assert self._peer is not None
        return self._peer

    async def _guard(self, awaitable: Any) -> Any:
        """Await a Bumble operation, translating its failures into bleak's exceptions."""
        try:
            return await awaitable
        except ATT_Error as exc:
            raise BleakGATTProtocolError(int(exc.error_code)) from exc
        except asyncio.CancelledError:
            # Bumble cancels a pending ATT request when the link drops; only our own
            # task's cancellation should propagate as cancellation.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise BleakError(f"{self.address}: disconnected during the operation") from None
        except core.TimeoutError as exc:
            raise BleakError(f"{self.address}: GATT timeout: {exc}") from exc
        except core.BaseBumbleError as exc:
            if not self.is_connected:
                raise BleakError(f"{self.address}: disconnected during the operation") from exc
            raise BleakError(f"{self.address}: {exc}") from exc


def twin_scanner_backend(radio: Radio) -> type[TwinScanner]:
    """A ``BaseBleakScanner`` subclass bound to ``radio`` (pass as ``backend=``)."""
    return type("TwinScannerBackend", (TwinScanner,), {"radio": radio})


def twin_client_backend(radio: Radio) -> type[TwinClient]:
    """A ``BaseBleakClient`` subclass bound to ``radio`` (pass as ``backend=``)."""
    return type("TwinClientBackend", (TwinClient,), {"radio": radio})


def twin_backend(radio: Radio) -> type:
    """One class that works as ``backend=`` for both BleakScanner and BleakClient.

    bleak constructs a client backend with keyword ``timeout`` and
    ``disconnected_callback`` and a scanner backend with neither; the returned class
    builds the matching one. Its ``scanner`` and ``client`` attributes are the two
    classes themselves.
    """
    scanner_cls = twin_scanner_backend(radio)
    client_cls = twin_client_backend(radio)

    class TremorliftTwin:
        scanner = scanner_cls
        client = client_cls

        def __new__(cls, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            if "disconnected_callback" in kwargs or "timeout" in kwargs:
                return client_cls(*args, **kwargs)
            return scanner_cls(*args, **kwargs)

    return TremorliftTwin
