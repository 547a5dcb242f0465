"""The digital twin's virtual radio: Bumble controllers on one Bumble ``LocalLink``.

Every emulated wearable and the collector's central each own a real Bumble host stack
(HCI, L2CAP, ATT/GATT, SMP) on top of their own ``bumble.controller.Controller``; the
controllers exchange link-layer PDUs over one shared :class:`TwinLink`. Nothing above
the controllers is simulated: MTU exchange, GATT discovery, notifications, pairing and
encryption all run through Bumble's protocol code.

Usage (inside a running asyncio loop)::

    radio = Radio(seed=1)
    central = await radio.central()          # the collector's adapter (one per radio)
    device = await radio.new_device("TL-1A2B", radio.allocate_address())

``tremorlift.twin.radio.ble_emulation`` builds MicroPython ``bluetooth.BLE`` objects on
devices from :meth:`Radio.new_device`; ``tremorlift.twin.radio.bleak_backend`` drives the
central through bleak's API.

What the radio adds to Bumble's stock controller (``TwinController``), and why:

* Legacy advertising only (no LE extended advertising feature bit): ESP32 NimBLE
  under MicroPython advertises with legacy PDUs, and Bumble's stock controller never
  transmits scan-response data (its SCAN_RSP reports repeat the advertising data).
  Here an active scanner gets the advertiser's real scan response, as SCAN_REQ/SCAN_RSP
  would deliver it; ``ADV_SCAN_IND``/``ADV_NONCONN_IND`` advertising is carried too.
* The advertising interval is honoured in its HCI unit (0.625 ms).
* RSSI per advertiser is settable (:meth:`Radio.set_rssi`), default ``-60`` dBm.
* LE Create Connection Cancel completes the pending connection with status 0x02 as the
  specification requires (the stock controller leaves it pending forever).

Fault injection:

* :meth:`Radio.drop_link` ends every connection of one address on both ends at once with
  reason 0x08 (connection supervision timeout), as when a wearable walks out of range.
* ``Radio.notification_loss`` (0..1) drops that fraction of ATT Handle Value
  Notification PDUs on the air, chosen with the radio's seeded RNG, in both directions.
  A real link layer retransmits until the supervision timeout, so this models PDUs a
  stack discards (host buffer overruns), which is how notifications go missing in
  practice. Counted in ``link.notifications_dropped``.

Link capacity (used by the emulated peripheral stack to pace its notification queue):
``conn_event_interval_ms`` (default 7.5 ms, the interval the firmware asks for) and
``pdus_per_event`` (default 3). 3 x 244-byte notifications per 7.5 ms is ~98 kB/s,
about what Espressif quotes for ESP32 notifications (measured through the whole stack:
~91 kB/s for one link, ~147 kB/s for two). ``pdus_per_event=None`` sends each batch as
soon as the controller has completed the previous one (140-210 kB/s for one link on a
2-core machine, limited by CPython running both stacks). ``bench/bench_twin_ble.py``
prints these figures.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from bumble import hci, ll
from bumble.controller import Controller, LegacyAdvertiser
from bumble.core import PhysicalTransport
from bumble.device import Device
from bumble.host import Host
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

logger = logging.getLogger(__name__)

# Bluetooth Core 5.3 Vol 1 Part F: HCI error codes used as disconnect reasons.
REASON_CONNECTION_TIMEOUT = 0x08
REASON_REMOTE_USER_TERMINATED = 0x13
REASON_UNKNOWN_CONNECTION_ID = 0x02

# Vol 4 Part E 7.8.5: advertising types of LE Set Advertising Parameters.
_ADV_IND = 0x00
_ADV_SCAN_IND = 0x02
_ADV_NONCONN_IND = 0x03
_HCI_ADV_UNIT_MS = 0.625  # advertising interval unit

# Vol 3 Part A 3: L2CAP basic header (length u16, CID u16); ATT fixed channel 0x0004.
_L2CAP_ATT_CID = 0x0004
_ATT_HANDLE_VALUE_NOTIFICATION = 0x1B

DEFAULT_RSSI_DBM = -60
CENTRAL_ADDRESS = "C0:7E:4C:00:00:01"  # random static (two top bits set)


class TwinLink(LocalLink):
    """Bumble's LocalLink plus radio-level loss of notification PDUs."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng
        self.notification_loss = 0.0
        self.notifications_carried = 0
        self.notifications_dropped = 0

    def send_acl_data(
        self,
        sender_controller: Controller,
        destination_address: hci.Address,
        transport: PhysicalTransport,
        data: bytes,
    ) -> None:
        # `data` is one whole L2CAP PDU (the sending controller reassembled the HCI
        # fragments), so the ATT opcode sits right after the 4-byte L2CAP header.
        if (
            transport == PhysicalTransport.LE
            and len(data) >= 5
            and struct.unpack_from("<H", data, 2)[0] == _L2CAP_ATT_CID
            and data[4] == _ATT_HANDLE_VALUE_NOTIFICATION
        ):
            if self.notification_loss > 0.0 and self.rng.random() < self.notification_loss:
                self.notifications_dropped += 1
                return
            self.notifications_carried += 1
        super().send_acl_data(sender_controller, destination_address, transport, data)


class _TwinLegacyAdvertiser(LegacyAdvertiser):
    def _on_timer_fired(self) -> None:
        self.send_advertising_data()
        interval_s = max(1, self.advertising_interval_min) * _HCI_ADV_UNIT_MS / 1000.0
        self.timer_handle = asyncio.get_running_loop().call_later(interval_s, self._on_timer_fired)

    def send_advertising_data(self) -> None:
        if not self.enabled:
            return
        if self.advertising_type == _ADV_IND:
            pdu: ll.AdvertisingPdu = ll.AdvInd(
                advertiser_address=self.address, data=self.advertising_data
            )
        elif self.advertising_type in (_ADV_SCAN_IND, _ADV_NONCONN_IND):
            # The receiving TwinController asks this advertiser whether it is scannable.
            pdu = ll.AdvNonConnInd(advertiser_address=self.address, data=self.advertising_data)
        else:  # directed advertising is not used by the wearable
            return
        self.controller.send_advertising_pdu(pdu)


class TwinController(Controller):
    """Bumble's controller with the fixes listed in the module docstring."""

    le_features = Controller.le_features & ~(
        hci.LeFeatureMask.LE_EXTENDED_ADVERTISING | hci.LeFeatureMask.LE_PERIODIC_ADVERTISING
    )

    def __init__(self, name: str, link: TwinLink, radio: Radio) -> None:
        super().__init__(name, link=link)
        self.radio = radio
        self.le_legacy_advertiser = _TwinLegacyAdvertiser(self)

    def _advertiser_of(self, address: hci.Address) -> LegacyAdvertiser | None:
        for c in self.link.controllers:
            adv = c.le_legacy_advertiser
            if c is not self and adv.enabled and adv.address == address:
                return adv
        return None

    def on_ll_advertising_pdu(self, packet: ll.AdvertisingPdu) -> None:
        if isinstance(packet, ll.AdvNonConnInd):
            self.on_advertising_pdu(packet)  # type: ignore[arg-type]
        else:
            super().on_ll_advertising_pdu(packet)

    def on_advertising_pdu(self, pdu: Any) -> None:
        advertiser = self._advertiser_of(pdu.advertiser_address)
        if advertiser is None:
            return
        adv_type = advertiser.advertising_type
        event_types = hci.HCI_LE_Advertising_Report_Event.EventType
        if self.le_scan_enable:
            rssi = self.radio.rssi_dbm(pdu.advertiser_address.to_string(False))
            report_type = {
                _ADV_IND: event_types.ADV_IND,
                _ADV_SCAN_IND: event_types.ADV_SCAN_IND,
                _ADV_NONCONN_IND: event_types.ADV_NONCONN_IND,
            }[adv_type]
            reports = [
                hci.HCI_LE_Advertising_Report_Event.Report(
                    event_type=report_type,
                    address_type=pdu.advertiser_address.address_type,
                    address=pdu.advertiser_address,
                    data=advertiser.advertising_data,
                    rssi=rssi,
                )
            ]
            # Active scanning: the SCAN_REQ/SCAN_RSP exchange, answered by the advertiser.
            if self.le_scan_type == 1 and adv_type in (_ADV_IND, _ADV_SCAN_IND):
                reports.append(
                    hci.HCI_LE_Advertising_Report_Event.Report(
                        event_type=event_types.SCAN_RSP,
                        address_type=pdu.advertiser_address.address_type,
                        address=pdu.advertiser_address,
                        data=advertiser.scan_response_data,
                        rssi=rssi,
                    )
                )
            for report in reports:
                self.send_hci_packet(hci.HCI_LE_Advertising_Report_Event([report]))
        pending = self.pending_le_connection
        if (
            adv_type == _ADV_IND
            and pending is not None
            and pending.peer_address == pdu.advertiser_address
        ):
            self.create_le_connection(pdu.advertiser_address)

    def on_hci_le_create_connection_cancel_command(self, _command: Any) -> Any:
        pending = self.pending_le_connection
        self.pending_le_connection = None
        if pending is not None:
            # Vol 4 Part E 7.8.13: the cancelled attempt completes with Unknown
            # Connection Identifier, after the command's own Command Complete.
            event = hci.HCI_LE_Connection_Complete_Event(
                status=REASON_UNKNOWN_CONNECTION_ID,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=pending.peer_address.address_type,
                peer_address=pending.peer_address,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            )
            asyncio.get_running_loop().call_soon(self.send_hci_packet, event)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)


class TwinHost(Host):
    """Bumble's host, minus one race: a command's waiter cancelled (a timeout, or tasks
    cancelled at shutdown) whose clean-up has not run yet when the controller's answer arrives.
    Bumble then sets a result on the cancelled future and logs InvalidStateError; the late
    answer has nobody to go to, and the waiter's clean-up releases the command slot."""

    def on_command_processed(self, event: Any) -> None:
        if self.pending_response is not None and self.pending_response.done():
            return
        super().on_command_processed(event)


class Radio:
    """One shared radio channel: N emulated peripherals and one central.

    Must be created and used inside a running asyncio loop (Bumble controllers bind to it).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        notification_loss: float = 0.0,
        conn_event_interval_ms: float = 7.5,
        pdus_per_event: int | None = 3,
        default_rssi_dbm: int = DEFAULT_RSSI_DBM,
    ) -> None:
        self.rng = random.Random(seed)
        self.link = TwinLink(random.Random(seed + 1))
        self.link.notification_loss = notification_loss
        self.conn_event_interval_ms = conn_event_interval_ms
        self.pdus_per_event = pdus_per_event
        self.default_rssi_dbm = default_rssi_dbm
        self._rssi_dbm: dict[str, int] = {}
        self._central: Device | None = None
        self._central_lock = asyncio.Lock()
        self._used_addresses: set[str] = {CENTRAL_ADDRESS}
        self.devices: list[Device] = []
        # Serialises connection attempts: a controller has one pending LE connection.
        self.connect_lock = asyncio.Lock()
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Register a coroutine function that :meth:`close` awaits."""
        self._closers.append(closer)

    async def close(self) -> None:
        """Stop every task the radio's devices started (call before leaving the loop)."""
        closers, self._closers = self._closers, []
        for closer in closers:
            await closer()

    # --- radio conditions -----------------------------------------------------
    @property
    def notification_loss(self) -> float:
        """Fraction (0..1) of notification PDUs lost on the air."""
        return self.link.notification_loss

    @notification_loss.setter
    def notification_loss(self, fraction: float) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"notification_loss must be in 0..1, got {fraction}")
        self.link.notification_loss = fraction

    def set_rssi(self, address: str, rssi_dbm: int) -> None:
        """RSSI the central reports for advertisements from ``address``."""
        self._rssi_dbm[address.upper()] = int(rssi_dbm)

    def rssi_dbm(self, address: str) -> int:
        return self._rssi_dbm.get(address.upper(), self.default_rssi_dbm)

    # --- building ---------------------------------------------------------------
    def allocate_address(self) -> str:
        """A fresh random static address, reproducible from the radio's seed."""
        while True:
            raw = bytes([0xC0 | self.rng.randrange(0x40)]) + self.rng.randbytes(5)
            address = ":".join(f"{b:02X}" for b in raw)
            if address not in self._used_addresses:
                self._used_addresses.add(address)
                return address

    async def new_device(self, name: str, address: str | None = None) -> Device:
        """A powered-on Bumble device (host + TwinController) on this radio."""
        if address is None:
            address = self.allocate_address()
        self._used_addresses.add(address.upper())
        controller = TwinController(f"ctrl-{name}", self.link, self)
        device = Device(
            name=name,
            address=hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS),
            host=TwinHost(controller, AsyncPipeSink(controller)),
        )
        await device.power_on()
        self.devices.append(device)
        return device

    async def central(self) -> Device:
        """The collector's central (created on first use; one per radio, like one adapter)."""
        async with self._central_lock:
            if self._central is None:
                central = await self.new_device("tremorlift-host", CENTRAL_ADDRESS)
                # The host pairs "Just Works" (no display, no keyboard) and bonds, as a
                # desktop OS does when it has no UI prompt to show.
                central.pairing_config_factory = lambda _connection: PairingConfig(
                    sc=True,
                    mitm=False,
                    bonding=True,
                    delegate=PairingDelegate(
                        io_capability=PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT
                    ),
                )
                self._central = central
            return self._central

    # --- fault injection ---------------------------------------------------------
    def drop_link(self, address: str, reason: int = REASON_CONNECTION_TIMEOUT) -> int:
        """End every LE connection to or from ``address`` on both ends at once.

        Both hosts get an HCI Disconnection Complete with ``reason`` (default 0x08,
        supervision timeout), with no LL_TERMINATE_IND exchanged, as when the radio
        path is lost. Returns the number of connection ends closed (2 per link).
        """
        target = hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
        ends = [
            (controller, connection)
            for controller in self.link.controllers
            for connection in list(controller.le_connections.values())
            if target.address_bytes
            in (connection.self_address.address_bytes, connection.peer_address.address_bytes)
        ]
        for controller, connection in ends:
            if controller.le_connections.get(connection.peer_address) is connection:
                controller.on_le_disconnected(connection, reason)
        return len(ends)

    def connected_addresses(self, address: str) -> list[str]:
        """Addresses of the peers ``address`` currently has a link with (controller view)."""
        target = hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
        peers = []
        for controller in self.link.controllers:
            for connection in controller.le_connections.values():
                if connection.self_address.address_bytes == target.address_bytes:
                    peers.append(connection.peer_address.to_string(False))
        return peers
