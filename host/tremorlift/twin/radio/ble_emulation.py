"""MicroPython's ``bluetooth`` module, implemented on a Bumble peripheral.

The wearable's firmware (``firmware/lib/tremorlift_fw/ble.py``) is written against
MicroPython's low-level ``bluetooth.BLE`` API as it behaves on ESP32 (NimBLE, synchronous
IRQ events). This module gives it the same API on a real Bumble host stack whose
controller sits on the twin's virtual radio (``tremorlift.twin.radio.link``), so the firmware
runs unchanged in CPython and a bleak central reaches it over real ATT/GATT/SMP.

Typical use, inside the running asyncio loop::

    radio = Radio(seed=1)
    bluetooth = await create_bluetooth_module(radio)   # one per emulated wearable
    ble = bluetooth.BLE()                               # that wearable's singleton
    install_bluetooth_module(bluetooth)                 # `import bluetooth` finds it

Behaviour, following MicroPython 1.2x on ESP32 (NimBLE):

* IRQs use MicroPython's event codes and data tuples and are delivered synchronously
  from the stack's context (an asyncio callback of the loop). Addresses are read-only
  ``memoryview`` objects in display byte order (``bytes(addr).hex()`` reads like the
  printed address). An exception in the handler is printed and swallowed, as
  MicroPython does ("Unhandled exception in IRQ callback handler"); it is also kept
  in ``BLE.irq_errors`` so tests can fail on it.
* ``gatts_register_services`` returns a tuple (one per service) of tuples of value
  handles, characteristics and their descriptors flattened in definition order. A
  CCCD is added to each notify/indicate characteristic (not returned). Descriptor
  flags are NimBLE ATT flags (read 0x01, write 0x02), as on ESP32.
* Local values: each value starts empty with a 20-byte buffer; a client write is cut to
  the buffer (``gatts_set_buffer`` sizes it, ``append=True`` appends and
  ``gatts_read`` then clears; resizing empties the value); a local ``gatts_write``
  grows the buffer.
* ``gatts_notify(conn, handle, data=None)`` sends the stored value when ``data`` is
  None, regardless of the client's subscription. The notification goes to the host stack
  at once, and holds one of ``notify_buffers`` transmit buffers shared by all connections
  (NimBLE's mbuf pool) until the host has handed all of it to the controller; when they are
  all held ``gatts_notify`` raises ``OSError(ENOMEM)``. The host hands ACL packets over only
  while the controller has free buffers, and the controller frees them at the connection
  events that carry them (``tremorlift.twin.radio.link``), so this back-pressure follows the
  radio's connection interval and per-event budget as on a board; notifications still in the
  host are discarded on disconnection. A value longer than ATT_MTU - 3 is truncated
  silently, as NimBLE's ``ble_att_truncate_to_mtu`` does.
* Permission flags: a characteristic without read (write) flags answers Read (Write)
  Not Permitted; ``FLAG_READ_ENCRYPTED``/``FLAG_WRITE_ENCRYPTED`` map to Bumble's
  READ/WRITE_REQUIRES_ENCRYPTION so an unencrypted access gets ATT error 0x0F from
  the stack before the firmware sees anything.
* ``_IRQ_GATTS_READ_REQUEST`` is raised before each client read of a characteristic
  (ESP32 uses synchronous events, so it is supported there); a non-zero integer return
  value is sent as the ATT error.
* Pairing is Bumble's SMP with the ``bond``/``le_secure``/``mitm``/``io`` config; keys
  live in the device's in-memory key store for the life of the BLE object, so a
  bonded central re-encrypts after reconnecting. ``_IRQ_ENCRYPTION_UPDATE`` fires when
  a pairing or re-encryption completes. A bonding pairing offers the keys through
  ``_IRQ_SET_SECRET`` (sec_type 2 then 1, key = address type + address, value = the LTK)
  before that event; if the handler does not return True the bond is dropped (that host
  cannot re-encrypt later) and the event says not bonded. A re-encryption says bonded when
  the handler kept that host's keys. ``_IRQ_GET_SECRET`` is not raised (the keys stay in
  Bumble's key store) and passkey entry is not emulated (the twin's central pairs "Just
  Works").
* Advertising is legacy advertising with the exact ``adv_data``/``resp_data`` bytes;
  the interval is rounded down to 625 us. As on NimBLE, advertising stops when a
  central connects and does not resume by itself.
* Operations that need the stack (advertising, disconnecting) return at once, like the
  real API, and run in order on the loop; ``await ble.settle()`` waits for them.

The module object made by :func:`make_bluetooth_module` carries only what MicroPython's
module carries: ``BLE``, ``UUID``, ``FLAG_READ``, ``FLAG_WRITE``, ``FLAG_NOTIFY``,
``FLAG_INDICATE`` and ``FLAG_WRITE_NO_RESPONSE``. The other flags (``FLAG_READ_ENCRYPTED``
= 0x0200, ``FLAG_WRITE_ENCRYPTED`` = 0x1000, ...) are, as on the board, the firmware's
own constants; this module defines them for tests.

Why one long module: it is one API surface, MicroPython's ``bluetooth`` module, kept beside
the documentation it models; its GAP, GATT server, GATT client and IRQ parts share the
connection table.
"""

from __future__ import annotations

import asyncio
import errno
import struct
import sys
import traceback
import types
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from bumble import att, hci
from bumble.core import UUID as BumbleUUID
from bumble.device import AdvertisingType, Connection, Device
from bumble.gatt import Characteristic, Descriptor, Service
from bumble.pairing import PairingConfig, PairingDelegate

from tremorlift.twin.radio.link import REASON_REMOTE_USER_TERMINATED, Radio

# MicroPython docs, library/bluetooth.rst ("The event codes are").
_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_GATTS_READ_REQUEST = 4
_IRQ_GATTS_INDICATE_DONE = 20
_IRQ_MTU_EXCHANGED = 21
_IRQ_CONNECTION_UPDATE = 27
_IRQ_ENCRYPTION_UPDATE = 28
_IRQ_GET_SECRET = 29
_IRQ_SET_SECRET = 30
_IRQ_PASSKEY_ACTION = 31
# NimBLE's key-store object types as MicroPython passes them (our keys, the peer's keys).
_SEC_TYPE_OUR = 1
_SEC_TYPE_PEER = 2

# extmod/modbluetooth.h, MP_BLUETOOTH_CHARACTERISTIC_FLAG_*.
FLAG_BROADCAST = 0x0001
FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020
FLAG_AUTHENTICATED_SIGNED_WRITE = 0x0040
FLAG_AUX_WRITE = 0x0100
FLAG_READ_ENCRYPTED = 0x0200
FLAG_READ_AUTHENTICATED = 0x0400
FLAG_READ_AUTHORIZED = 0x0800
FLAG_WRITE_ENCRYPTED = 0x1000
FLAG_WRITE_AUTHENTICATED = 0x2000
FLAG_WRITE_AUTHORIZED = 0x4000
_CHARACTERISTIC_PROPERTIES_MASK = 0x00FF  # the low byte is the GATT properties field

# NimBLE BLE_ATT_F_* flags: what a descriptor's flags mean on ESP32.
_DESC_READ = 0x01
_DESC_WRITE = 0x02
_DESC_READ_ENC = 0x04
_DESC_READ_AUTHEN = 0x08
_DESC_READ_AUTHOR = 0x10
_DESC_WRITE_ENC = 0x20
_DESC_WRITE_AUTHEN = 0x40
_DESC_WRITE_AUTHOR = 0x80

DEFAULT_ATTR_LEN = 20  # MP_BLUETOOTH_DEFAULT_ATTR_LEN
DEFAULT_MTU = 256  # NimBLE's BLE_ATT_PREFERRED_MTU default on ESP-IDF
ATT_DEFAULT_MTU = 23
ATT_MAX_MTU = 517
LEGACY_ADV_MAX_BYTES = 31
ADV_INTERVAL_UNIT_US = 625
# Transmit pool: NimBLE on ESP-IDF has 12 msys blocks of 256 bytes by default and a
# 244-byte notification plus headers can need two, so 8 whole notifications in flight.
DEFAULT_NOTIFY_BUFFERS = 8
_ATT_HANDLE_VALUE_NOTIFICATION = 0x1B
_ENCRYPTION_KEY_SIZE = 16
_ADDR_TYPE_RANDOM = 1


def _mp_oserror(code: int) -> OSError:
    # MicroPython raises OSError(errno) with just the number as its argument.
    return OSError(code, errno.errorcode.get(code, str(code)))


class UUID:
    """MicroPython's ``bluetooth.UUID``: from an int (16/32-bit), a str or a buffer.

    A str is hex digits with optional dashes (4, 8 or 32 digits, most significant
    first); a buffer is the UUID's little-endian bytes (2, 4 or 16). ``bytes(uuid)``
    gives the little-endian bytes, as MicroPython's buffer protocol does.
    """

    __slots__ = ("_le",)
    _le: bytes

    def __init__(self, value: int | str | bytes | bytearray | memoryview | UUID) -> None:
        if isinstance(value, UUID):
            self._le = value._le
        elif isinstance(value, int):
            if 0 <= value <= 0xFFFF:
                self._le = struct.pack("<H", value)
            elif value <= 0xFFFFFFFF:
                self._le = struct.pack("<I", value)
            else:
                raise ValueError("invalid UUID")
        elif isinstance(value, str):
            digits = value.replace("-", "")
            if value.lower().startswith("0x"):
                digits = value[2:]
            if len(digits) not in (4, 8, 32):
                raise ValueError("invalid UUID")
            self._le = bytes(reversed(bytes.fromhex(digits)))
        else:
            raw = bytes(value)
            if len(raw) not in (2, 4, 16):
                raise ValueError("invalid UUID")
            self._le = raw

    def __bytes__(self) -> bytes:
        return self._le

    def __buffer__(self, flags: int) -> memoryview:
        return memoryview(self._le)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UUID) and other._le == self._le

    def __hash__(self) -> int:
        return hash(self._le)

    def __str__(self) -> str:
        if len(self._le) == 16:
            h = bytes(reversed(self._le)).hex()
            return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        return "0x" + bytes(reversed(self._le)).hex()

    def __repr__(self) -> str:
        if len(self._le) == 16:
            return f"UUID('{self}')"
        return f"UUID({self})"

    def to_bumble(self) -> BumbleUUID:
        return BumbleUUID.from_bytes(self._le)


class _Value:
    """One entry of the local GATT value store (MicroPython's gatts_db)."""

    __slots__ = ("data", "alloc", "append", "flags", "attribute", "is_descriptor")

    def __init__(self, flags: int, is_descriptor: bool) -> None:
        self.data = bytearray()
        self.alloc = DEFAULT_ATTR_LEN
        self.append = False
        self.flags = flags
        self.is_descriptor = is_descriptor
        self.attribute: Any = None

    def readable(self) -> bool:
        return bool(self.flags & (_DESC_READ if self.is_descriptor else FLAG_READ))

    def writable(self) -> bool:
        if self.is_descriptor:
            return bool(self.flags & _DESC_WRITE)
        return bool(self.flags & (FLAG_WRITE | FLAG_WRITE_NO_RESPONSE | FLAG_AUX_WRITE))


class _Link:
    """Per-connection state of the peripheral."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        # Notifications not yet wholly handed to the controller: for each, the count of ACL
        # packets the host had queued when its last packet went in (see BLE._release_tx).
        self.held: deque[int] = deque()
        self.pairing = False
        self.bonded = False


# (read, read encrypted, authenticated, authorised, write, write encrypted, authenticated,
# authorised) bits: MicroPython's characteristic flags and NimBLE's descriptor flags.
_CHARACTERISTIC_BITS = (
    FLAG_READ, FLAG_READ_ENCRYPTED, FLAG_READ_AUTHENTICATED, FLAG_READ_AUTHORIZED,
    FLAG_WRITE | FLAG_WRITE_NO_RESPONSE | FLAG_AUX_WRITE, FLAG_WRITE_ENCRYPTED,
    FLAG_WRITE_AUTHENTICATED, FLAG_WRITE_AUTHORIZED,
)  # fmt: skip
_DESCRIPTOR_BITS = (
    _DESC_READ, _DESC_READ_ENC, _DESC_READ_AUTHEN, _DESC_READ_AUTHOR,
    _DESC_WRITE, _DESC_WRITE_ENC, _DESC_WRITE_AUTHEN, _DESC_WRITE_AUTHOR,
)  # fmt: skip


def _permissions(flags: int, bits: tuple[int, ...]) -> att.Attribute.Permissions:
    """Bumble attribute permissions for MicroPython/NimBLE flags, read by ``bits``."""
    read, read_enc, read_authen, read_author, write, write_enc, write_authen, write_author = bits
    p = att.Attribute.Permissions(0)
    if flags & read:
        p |= att.Attribute.READABLE
        if flags & read_enc:
            p |= att.Attribute.READ_REQUIRES_ENCRYPTION
        if flags & read_authen:
            p |= att.Attribute.READ_REQUIRES_AUTHENTICATION
        if flags & read_author:
            p |= att.Attribute.READ_REQUIRES_AUTHORIZATION
    if flags & write:
        p |= att.Attribute.WRITEABLE
        if flags & write_enc:
            p |= att.Attribute.WRITE_REQUIRES_ENCRYPTION
        if flags & write_authen:
            p |= att.Attribute.WRITE_REQUIRES_AUTHENTICATION
        if flags & write_author:
            p |= att.Attribute.WRITE_REQUIRES_AUTHORIZATION
    return p


class BLE:
    """MicroPython's ``bluetooth.BLE`` on a Bumble device. Build with :func:`create_ble`."""

    def __init__(self, radio: Radio, device: Device, *, notify_buffers: int) -> None:
        self._radio = radio
        self._device = device
        self.notify_buffers = notify_buffers
        self._active = False
        self._handler: Callable[[int, tuple[Any, ...]], Any] | None = None
        self._values: dict[int, _Value] = {}
        self._links: dict[int, _Link] = {}
        self._base_attribute_count = len(device.gatt_server.attributes)
        self._base_service_count = len(device.gatt_server.services)
        self._advertising = False
        self._adv_data = b""
        self._resp_data = b""
        self._mtu = DEFAULT_MTU
        self._rxbuf = 1024
        self._addr_mode = _ADDR_TYPE_RANDOM
        self._bond = False
        self._le_secure = False
        self._mitm = False
        self._io = PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT
        self._ops: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._run_ops())
        # Observability for tests and the twin's reports.
        self.irq_errors: list[BaseException] = []
        self.op_errors: list[BaseException] = []
        self.notifications_queued = 0
        self.notifications_sent = 0
        self.notifications_truncated = 0
        self.notify_enomem = 0
        self._bonded_peers: set[bytes] = set()  # hosts whose keys the application stored
        device.gatt_server.max_mtu = self._mtu
        device.pairing_config_factory = self._pairing_config
        device.on(device.EVENT_CONNECTION, self._on_connection)

    # --- identity ---------------------------------------------------------------
    @property
    def address(self) -> str:
        """The device's address as bleak reports it, e.g. ``"F3:12:34:56:1A:2B"``."""
        return self._device.random_address.to_string(False)

    @property
    def device(self) -> Device:
        """The underlying Bumble device (for the twin's own checks)."""
        return self._device

    # --- configuration ------------------------------------------------------------
    def active(self, active: bool | None = None, /) -> bool:
        if active is None:
            return self._active
        if active and not self._active:
            self._active = True
        elif not active and self._active:
            self._active = False
            self._clear_services()
            self._advertising = False
            self._enqueue(self._device.stop_advertising)
            for conn_handle in list(self._links):
                self.gap_disconnect(conn_handle)
        return self._active

    def config(self, *args: str, **kwargs: Any) -> Any:
        if args:
            if len(args) != 1 or kwargs:
                raise TypeError("config takes one parameter name or keyword arguments")
            name = args[0]
            if name == "mac":
                self._require_active()
                raw = bytes(self._device.random_address)
                return (self._addr_mode, bytes(reversed(raw)))
            if name == "gap_name":
                return self._device.name.encode()
            if name == "mtu":
                return self._mtu
            if name == "rxbuf":
                return self._rxbuf
            raise ValueError("unknown config param")
        for name, value in kwargs.items():
            if name == "gap_name":
                self._set_gap_name(
                    value.decode() if isinstance(value, bytes | bytearray) else str(value)
                )
            elif name == "mtu":
                if not ATT_DEFAULT_MTU <= int(value) <= ATT_MAX_MTU:
                    raise _mp_oserror(errno.EINVAL)
                self._mtu = int(value)
                self._device.gatt_server.max_mtu = self._mtu
            elif name == "rxbuf":
                self._rxbuf = int(value)
            elif name == "addr_mode":
                # Only random static addresses route on Bumble's LocalLink.
                if int(value) != _ADDR_TYPE_RANDOM:
                    raise _mp_oserror(errno.EINVAL)
            elif name == "bond":
                self._bond = bool(value)
            elif name == "le_secure":
                self._le_secure = bool(value)
            elif name == "mitm":
                self._mitm = bool(value)
            elif name == "io":
                self._io = PairingDelegate.IoCapability(int(value))
            else:
                raise ValueError("unknown config param")
        return None

    def irq(self, handler: Callable[[int, tuple[Any, ...]], Any] | None, /) -> None:
        self._handler = handler

    # --- GAP -----------------------------------------------------------------------
    def gap_advertise(
        self,
        interval_us: int | None,
        adv_data: Any = None,
        *,
        resp_data: Any = None,
        connectable: bool = True,
    ) -> None:
        self._require_active()
        if interval_us is None:
            self._advertising = False
            self._enqueue(self._device.stop_advertising)
            return
        if adv_data is not None:
            self._adv_data = bytes(adv_data)
        if resp_data is not None:
            self._resp_data = bytes(resp_data)
        if (
            len(self._adv_data) > LEGACY_ADV_MAX_BYTES
            or len(self._resp_data) > LEGACY_ADV_MAX_BYTES
        ):
            raise _mp_oserror(errno.EINVAL)
        interval_ms = (int(interval_us) // ADV_INTERVAL_UNIT_US) * ADV_INTERVAL_UNIT_US / 1000.0
        if connectable:
            adv_type = AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE
        elif self._resp_data:
            adv_type = AdvertisingType.UNDIRECTED_SCANNABLE
        else:
            adv_type = AdvertisingType.UNDIRECTED
        adv, resp = self._adv_data, self._resp_data
        self._advertising = True

        async def start() -> None:
            await self._device.start_advertising(
                advertising_type=adv_type,
                own_address_type=hci.OwnAddressType.RANDOM,
                advertising_data=adv,
                scan_response_data=resp,
                advertising_interval_min=interval_ms,
                advertising_interval_max=interval_ms,
            )

        self._enqueue(start)

    def gap_disconnect(self, conn_handle: int, /) -> bool:
        self._require_active()
        link = self._links.get(conn_handle)
        if link is None:
            return False
        connection = link.connection

        async def disconnect() -> None:
            if connection.handle in self._device.connections:
                await connection.disconnect(reason=REASON_REMOTE_USER_TERMINATED)

        self._enqueue(disconnect)
        return True

    def gap_passkey(self, conn_handle: int, action: int, passkey: int, /) -> None:
        # The twin's central pairs Just Works, so no passkey action is ever pending.
        raise _mp_oserror(errno.EINVAL)

    def gap_pair(self, conn_handle: int, /) -> None:
        self._require_active()
        link = self._links.get(conn_handle)
        if link is None:
            raise _mp_oserror(errno.ENOTCONN)
        connection = link.connection
        self._enqueue(connection.pair)

    # --- GATT server ------------------------------------------------------------------
    def gatts_register_services(
        self, services_definition: Iterable[Any], /
    ) -> tuple[tuple[int, ...], ...]:
        self._require_active()
        if self._advertising or self._links:
            # NimBLE's ble_gatts_reset() refuses while advertising or connected.
            raise _mp_oserror(errno.EBUSY)
        self._clear_services()
        server = self._device.gatt_server
        result: list[tuple[int, ...]] = []
        for service_def in services_definition:
            service_uuid, characteristics_def = service_def[0], service_def[1]
            characteristics: list[Characteristic] = []
            entries: list[tuple[Any, list[Any]]] = []
            for char_def in characteristics_def:
                uuid, flags = UUID(char_def[0]), int(char_def[1])
                descriptors_def = char_def[2] if len(char_def) > 2 else ()
                value = _Value(flags, is_descriptor=False)
                descriptors: list[Descriptor] = []
                descriptor_values = []
                for desc_def in descriptors_def:
                    d_value = _Value(int(desc_def[1]), is_descriptor=True)
                    descriptor = Descriptor(
                        UUID(desc_def[0]).to_bumble(),
                        self._descriptor_permissions(d_value.flags),
                        att.AttributeValue(
                            read=self._make_read(d_value), write=self._make_write(d_value)
                        ),
                    )
                    d_value.attribute = descriptor
                    descriptors.append(descriptor)
                    descriptor_values.append(d_value)
                characteristic: Characteristic[bytes] = Characteristic(
                    UUID(uuid).to_bumble(),
                    Characteristic.Properties(flags & _CHARACTERISTIC_PROPERTIES_MASK),
                    self._characteristic_permissions(flags),
                    att.AttributeValue(read=self._make_read(value), write=self._make_write(value)),
                    descriptors,
                )
                value.attribute = characteristic
                characteristics.append(characteristic)
                entries.append((value, descriptor_values))
            server.add_service(Service(UUID(service_uuid).to_bumble(), characteristics))
            handles: list[int] = []
            for value, descriptor_values in entries:
                handles.append(value.attribute.handle)
                self._values[value.attribute.handle] = value
                for d_value in descriptor_values:
                    handles.append(d_value.attribute.handle)
                    self._values[d_value.attribute.handle] = d_value
            result.append(tuple(handles))
        server.attributes_by_handle = {a.handle: a for a in server.attributes}
        return tuple(result)

    def gatts_read(self, value_handle: int, /) -> bytes:
        self._require_active()
        value = self._value(value_handle)
        data = bytes(value.data)
        if value.append:
            value.data = bytearray()
        return data

    def gatts_write(self, value_handle: int, data: Any, send_update: bool = False, /) -> None:
        self._require_active()
        value = self._value(value_handle)
        raw = bytes(data)
        if len(raw) > value.alloc:
            value.alloc = len(raw)
        value.data = bytearray(raw)
        if not send_update:
            return
        server = self._device.gatt_server
        for conn_handle, link in self._links.items():
            cccd = server.subscribers.get(link.connection, {}).get(value_handle, b"\x00\x00")
            if cccd[0] & 0x01:
                self.gatts_notify(conn_handle, value_handle)
            elif cccd[0] & 0x02:
                self.gatts_indicate(conn_handle, value_handle)

    def gatts_notify(self, conn_handle: int, value_handle: int, data: Any = None, /) -> None:
        self._require_active()
        link = self._links.get(conn_handle)
        if link is None:
            raise _mp_oserror(errno.ENOTCONN)
        value = self._value(value_handle)
        payload = bytes(value.data) if data is None else bytes(data)
        if self.tx_pending() >= self.notify_buffers:
            self.notify_enomem += 1
            raise _mp_oserror(errno.ENOMEM)
        connection = link.connection
        pdu = struct.pack("<BH", _ATT_HANDLE_VALUE_NOTIFICATION, value_handle) + payload
        if len(pdu) > connection.att_mtu:  # opcode + handle + ATT_MTU - 3 bytes
            pdu = pdu[: connection.att_mtu]
            self.notifications_truncated += 1
        self.notifications_queued += 1
        self._device.send_l2cap_pdu(connection.handle, att.ATT_CID, pdu)
        self.notifications_sent += 1
        queue = self._acl_queue()
        if queue is not None:
            link.held.append(queue.queued)

    def gatts_indicate(self, conn_handle: int, value_handle: int, data: Any = None, /) -> None:
        self._require_active()
        link = self._links.get(conn_handle)
        if link is None:
            raise _mp_oserror(errno.ENOTCONN)
        value = self._value(value_handle)
        payload = bytes(value.data) if data is None else bytes(data)
        connection = link.connection

        async def indicate() -> None:
            status = 0
            try:
                await self._device.gatt_server.indicate_subscriber(
                    connection, value.attribute, payload, force=True
                )
            except TimeoutError:
                status = errno.ETIMEDOUT
            except asyncio.CancelledError:
                status = errno.ENOTCONN
            self._irq(_IRQ_GATTS_INDICATE_DONE, (conn_handle, value_handle, status))

        asyncio.get_running_loop().create_task(indicate())

    def gatts_set_buffer(self, value_handle: int, length: int, append: bool = False, /) -> None:
        self._require_active()
        value = self._value(value_handle)
        # As mp_bluetooth_gatts_db_resize: the buffer is reallocated and starts empty.
        value.alloc = int(length)
        value.append = bool(append)
        value.data = bytearray()

    # --- twin-side helpers (not part of MicroPython's API) --------------------------
    async def settle(self) -> None:
        """Wait until every stack operation requested so far has run."""
        await self._ops.join()

    @property
    def connections(self) -> list[int]:
        """Connection handles of the connected centrals."""
        return list(self._links)

    def tx_pending(self) -> int:
        """Notifications holding transmit buffers (not yet handed to the controller)."""
        queue = self._acl_queue()
        # The host's queue sends in order: packets queued minus those still waiting in it
        # is how many it has handed to the controller. (One counter for all connections: a
        # wearable serves one central at a time.)
        handed = 0 if queue is None else queue.queued - len(queue._packets)
        held = 0
        for link in self._links.values():
            while link.held and link.held[0] <= handed:
                link.held.popleft()
            held += len(link.held)
        return held

    def tx_idle(self) -> bool:
        """True when every notification sent has been carried (controller buffers free too)."""
        queue = self._acl_queue()
        return self.tx_pending() == 0 and (queue is None or queue.pending == 0)

    def _acl_queue(self) -> Any:
        return self._device.host.le_acl_packet_queue

    async def close(self) -> None:
        """Stop the emulation's tasks (the radio keeps the Bumble device)."""
        self._worker.cancel()
        await asyncio.gather(self._worker, return_exceptions=True)

    # --- internals --------------------------------------------------------------------
    def _require_active(self) -> None:
        if not self._active:
            raise _mp_oserror(errno.EPERM)

    def _value(self, handle: int) -> _Value:
        value = self._values.get(handle)
        if value is None:
            raise _mp_oserror(errno.EINVAL)
        return value

    def _irq(self, event: int, data: tuple[Any, ...]) -> Any:
        handler = self._handler
        if handler is None:
            return None
        try:
            return handler(event, data)
        except Exception as exc:  # MicroPython prints it and carries on
            self.irq_errors.append(exc)
            print("Unhandled exception in IRQ callback handler", file=sys.stderr)
            traceback.print_exception(exc, file=sys.stderr)
            return None

    def _enqueue(self, op: Callable[[], Awaitable[None]]) -> None:
        self._ops.put_nowait(op)

    async def _run_ops(self) -> None:
        task = asyncio.current_task()
        while True:
            op = await self._ops.get()
            try:
                await op()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the worker alive; record what failed
                self.op_errors.append(exc)
            finally:
                self._ops.task_done()
            # Some Bumble HCI waits swallow a cancellation; honour it here instead.
            if task is not None and task.cancelling():
                return

    def _clear_services(self) -> None:
        server = self._device.gatt_server
        del server.attributes[self._base_attribute_count :]
        del server.services[self._base_service_count :]
        server.attributes_by_handle = {a.handle: a for a in server.attributes}
        self._values.clear()

    def _set_gap_name(self, name: str) -> None:
        self._device.name = name
        device_name_uuid = BumbleUUID.from_16_bits(0x2A00)
        for attribute in self._device.gatt_server.attributes:
            if isinstance(attribute, Characteristic) and attribute.uuid == device_name_uuid:
                attribute.value = name.encode()

    @staticmethod
    def _characteristic_permissions(flags: int) -> att.Attribute.Permissions:
        return _permissions(flags, _CHARACTERISTIC_BITS)

    @staticmethod
    def _descriptor_permissions(flags: int) -> att.Attribute.Permissions:
        return _permissions(flags, _DESCRIPTOR_BITS)

    def _make_read(self, value: _Value) -> Callable[[Connection], bytes]:
        def read(connection: Connection) -> bytes:
            if not value.readable():
                raise att.ATT_Error(att.ATT_READ_NOT_PERMITTED_ERROR)
            result = self._irq(_IRQ_GATTS_READ_REQUEST, (connection.handle, value.attribute.handle))
            if isinstance(result, int) and result != 0:
                raise att.ATT_Error(result)
            return bytes(value.data)

        return read

    def _make_write(self, value: _Value) -> Callable[[Connection, bytes], None]:
        def write(connection: Connection, data: bytes) -> None:
            if not value.writable():
                raise att.ATT_Error(att.ATT_WRITE_NOT_PERMITTED_ERROR)
            if value.append:
                room = max(0, value.alloc - len(value.data))
                value.data += data[:room]
            else:
                value.data = bytearray(data[: value.alloc])
            self._irq(_IRQ_GATTS_WRITE, (connection.handle, value.attribute.handle))

        return write

    def _pairing_config(self, _connection: Connection) -> PairingConfig:
        return PairingConfig(
            sc=self._le_secure,
            mitm=self._mitm,
            bonding=self._bond,
            delegate=PairingDelegate(io_capability=self._io),
        )

    def _addr_tuple(self, connection: Connection) -> tuple[int, int, memoryview]:
        address = connection.peer_address
        addr_type = 0 if address.is_public else 1
        return (
            connection.handle,
            addr_type,
            memoryview(bytes(reversed(bytes(address)))).toreadonly(),
        )

    # --- stack events -------------------------------------------------------------
    def _on_connection(self, connection: Connection) -> None:
        if connection.role != hci.Role.PERIPHERAL or not self._active:
            return
        link = _Link(connection)
        self._links[connection.handle] = link
        self._advertising = False  # the controller stops advertising on connection
        connection.on(
            connection.EVENT_DISCONNECTION, lambda reason: self._on_disconnection(link, reason)
        )
        connection.on(
            connection.EVENT_CONNECTION_ATT_MTU_UPDATE,
            lambda: self._irq(_IRQ_MTU_EXCHANGED, (connection.handle, connection.att_mtu)),
        )
        connection.on(
            connection.EVENT_CONNECTION_PARAMETERS_UPDATE,
            lambda: self._on_parameters_update(connection),
        )
        connection.on(connection.EVENT_PAIRING_START, lambda: self._on_pairing_start(link))
        connection.on(connection.EVENT_PAIRING, lambda keys: self._on_pairing(link, keys))
        connection.on(
            connection.EVENT_PAIRING_FAILURE, lambda _reason: self._on_pairing_failure(link)
        )
        connection.on(
            connection.EVENT_CONNECTION_ENCRYPTION_CHANGE, lambda: self._on_encryption_change(link)
        )
        self._irq(_IRQ_CENTRAL_CONNECT, self._addr_tuple(connection))

    def _on_disconnection(self, link: _Link, _reason: int) -> None:
        connection = link.connection
        if self._links.get(connection.handle) is not link:
            return
        del self._links[connection.handle]
        # Notifications still in the host die with the connection; their buffers come back.
        link.held.clear()
        self._irq(_IRQ_CENTRAL_DISCONNECT, self._addr_tuple(connection))

    def _on_parameters_update(self, connection: Connection) -> None:
        p = connection.parameters
        self._irq(
            _IRQ_CONNECTION_UPDATE,
            (
                connection.handle,
                int(p.connection_interval / 1.25),
                int(p.peripheral_latency),
                int(p.supervision_timeout / 10),
                0,
            ),
        )

    def _on_pairing_start(self, link: _Link) -> None:
        link.pairing = True

    def _on_pairing(self, link: _Link, keys: Any) -> None:
        link.pairing = False
        link.bonded = False
        if self._bond and keys is not None and keys.ltk is not None:
            # As NimBLE under MicroPython: the new keys go to the application's store through
            # _IRQ_SET_SECRET (the peer's, then ours); a store that refuses them (or no
            # handler) leaves no bond, so that host cannot re-encrypt later.
            address = link.connection.peer_address
            key = memoryview(bytes([0 if address.is_public else 1]) + bytes(address)).toreadonly()
            value = memoryview(bytes(keys.ltk.value)).toreadonly()
            stored = [
                bool(self._irq(_IRQ_SET_SECRET, (sec_type, key, value)))
                for sec_type in (_SEC_TYPE_PEER, _SEC_TYPE_OUR)
            ]
            if all(stored):
                self._bonded_peers.add(address.address_bytes)
                link.bonded = True
            else:
                self._bonded_peers.discard(address.address_bytes)
                keystore = self._device.keystore
                if keystore is not None:
                    name = str(address)
                    self._enqueue(lambda: keystore.delete(name))
        self._encryption_irq(link)

    def _on_pairing_failure(self, link: _Link) -> None:
        link.pairing = False
        self._encryption_irq(link)

    def _on_encryption_change(self, link: _Link) -> None:
        # During pairing NimBLE reports once, when key distribution is over.
        if not link.pairing:
            # Re-encryption with stored keys: bonded if the application kept them.
            link.bonded = link.connection.peer_address.address_bytes in self._bonded_peers
            self._encryption_irq(link)

    def _encryption_irq(self, link: _Link) -> None:
        connection = link.connection
        encrypted = connection.is_encrypted
        key_size = connection.encryption_key_size or (_ENCRYPTION_KEY_SIZE if encrypted else 0)
        authenticated = bool(encrypted and self._mitm and connection.authenticated)
        self._irq(
            _IRQ_ENCRYPTION_UPDATE,
            (connection.handle, int(encrypted), int(authenticated), int(link.bonded), key_size),
        )


async def create_ble(
    radio: Radio,
    *,
    address: str | None = None,
    name: str = "MPY BTSTACK",
    notify_buffers: int = DEFAULT_NOTIFY_BUFFERS,
) -> BLE:
    """An emulated MicroPython BLE on a new Bumble device of ``radio`` (inactive, like at boot)."""
    device = await radio.new_device(name, address)
    ble = BLE(radio, device, notify_buffers=notify_buffers)
    radio.on_close(ble.close)
    return ble


def make_bluetooth_module(ble: BLE) -> types.ModuleType:
    """A module object shaped like MicroPython's ``bluetooth``; ``BLE()`` returns ``ble``."""
    module = types.ModuleType("bluetooth", "MicroPython's bluetooth module on the tremorlift twin.")

    def BLE_() -> BLE:  # noqa: N802 - MicroPython's constructor name
        return ble

    module.BLE = BLE_  # type: ignore[attr-defined]
    module.UUID = UUID  # type: ignore[attr-defined]
    module.FLAG_READ = FLAG_READ  # type: ignore[attr-defined]
    module.FLAG_WRITE = FLAG_WRITE  # type: ignore[attr-defined]
    module.FLAG_NOTIFY = FLAG_NOTIFY  # type: ignore[attr-defined]
    module.FLAG_INDICATE = FLAG_INDICATE  # type: ignore[attr-defined]
    module.FLAG_WRITE_NO_RESPONSE = FLAG_WRITE_NO_RESPONSE  # type: ignore[attr-defined]
    return module


async def create_bluetooth_module(radio: Radio, **kwargs: Any) -> types.ModuleType:
    """:func:`create_ble` then :func:`make_bluetooth_module`."""
    return make_bluetooth_module(await create_ble(radio, **kwargs))


async def create_peripherals(radio: Radio, count: int, **kwargs: Any) -> list[types.ModuleType]:
    """``count`` emulated ``bluetooth`` modules on ``radio``, each its own device."""
    return [await create_bluetooth_module(radio, **kwargs) for _ in range(count)]


def install_bluetooth_module(module: types.ModuleType) -> None:
    """Make ``import bluetooth`` return ``module`` (UUID and FLAG_* are the same for all)."""
    sys.modules["bluetooth"] = module
