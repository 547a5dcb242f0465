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

The paced air interface (``Radio(connection_interval_ms=...)``, the default), and why:
Bumble's stock controller completes every ACL packet the moment its host sends it and carries it
at once, 27 bytes at a time, so a host's buffers never fill. A real link moves data only at
connection events. Here, per connection:

* Connection events every ``connection_interval_ms`` (7.5, 15, 30, 50 ms...), chosen by the
  central as a laptop's OS does: BlueZ asks for 30-50 ms (Linux ``hci_core.c``:
  ``le_conn_min_interval = 0x0018``, ``le_conn_max_interval = 0x0028``), macOS and iOS take
  15 ms at best (Apple's Accessory Design Guidelines: Interval Min >= 15 ms), Windows takes
  the peripheral's preferred parameters, 7.5-15 ms when they ask for it (bleak issues #56,
  #357). MicroPython gives a peripheral no call to ask for another interval, so the central's
  choice stands. Default 30 ms (BlueZ). The interval scales with ``time_scale`` (the twin's
  ``--speed``): a sped-up twin sees the same number of events per device second, so its
  firmware meets the same back-pressure as at real time. ``connection_interval_ms=None`` keeps
  Bumble's immediate behaviour (for tests about GATT semantics, not timing).
* Data length extension: both controllers support ``data_length_octets`` (default 251) and the
  peripheral's controller negotiates it at the first connection event, as ESP32 controllers do
  by themselves; both hosts get an LE Data Length Change event. Before that (or with 27), LL
  PDUs carry 27 bytes, so a 251-byte notification takes 10 PDUs.
* A per-event budget: in each event the central and the peripheral alternate LL PDUs, one of
  each per exchange (an empty PDU when one has nothing), as long as either has data, the
  exchanges fit the interval in LE 1M air time (8 us a byte, 10 bytes of framing, a 4-byte MIC
  once encrypted, 150 us between packets; a central with N connections gives each 1/N of the
  interval), and no more than ``max_pdus_per_event`` (default 4:
  iOS is reported to take 4 to 5 packets per event, other stacks up to 6).
* Finite controller buffers: each controller reports ``acl_buffers`` (default 12) LE ACL buffers
  of 251 bytes (HCI LE Read Buffer Size), so its host holds the rest back; a buffer is freed,
  and counted in an HCI Number Of Completed Packets event, at the connection event that carried
  its last byte. A host that overruns them is logged and counted (``buffer_overruns``).
* Received data reaches the host one HCI ACL packet per LL PDU (start, then continuation), as a
  controller hands it over.

LL control procedures (encryption, feature exchange, parameter updates, termination) are not
paced. ``bench/bench_radio.py`` measures the firmware through this radio.

Why one long module: the virtual controller's link layer (advertising, connections, the paced
connection events and their buffers) is one state machine over one shared air; its parts
read and change each other's state every event.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from bumble import hci, ll
from bumble.controller import Connection as ControllerConnection
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

# The paced air interface (module docstring).
DEFAULT_CONNECTION_INTERVAL_MS = 30.0  # BlueZ's le_conn_min_interval, 0x0018 x 1.25 ms
DEFAULT_MAX_PDUS_PER_EVENT = 4
DEFAULT_ACL_BUFFERS = 12  # NimBLE's BLE_ACL_BUF_COUNT in MicroPython's syscfg.h
DLE_MAX_OCTETS = 251  # Core Vol 6 Part B 4.5.10: the largest LL data PDU payload
LL_DEFAULT_OCTETS = 27  # the LL data PDU payload without data length extension
ACL_BUFFER_BYTES = 251  # each controller buffer holds one 251-byte HCI ACL fragment
_CONN_INTERVAL_UNIT_MS = 1.25
# LE 1M PHY air time (Core Vol 6 Part B 2.1 and 4.1.1): 8 us a byte; preamble 1, access
# address 4, header 2 and CRC 3 bytes around the payload, a 4-byte MIC once encrypted, and
# T_IFS = 150 us between packets.
_US_PER_BYTE = 8
_LL_FRAMING_BYTES = 10
_LL_MIC_BYTES = 4
_T_IFS_US = 150
_LE_EVENT_DATA_LENGTH_CHANGE = 1 << 6  # LE event mask bit of LE Data Length Change
_MAX_CATCH_UP_EVENTS = 64  # events one late timer may run (the loop stalled meanwhile)


class _Direction:
    """One direction of a connection: the HCI ACL packets its sending controller holds."""

    def __init__(self) -> None:
        self.sender: ControllerConnection | None = None
        self.packets: deque[hci.HCI_AclDataPacket] = deque()
        self.sent_bytes = 0  # of the oldest packet, already on the air
        self.octets = LL_DEFAULT_OCTETS  # LL PDU payload
        self.completed = 0  # packets finished in the current event, not yet reported

    def next_pdu_bytes(self) -> int:
        """Payload of the next LL PDU (0: an empty PDU)."""
        if not self.packets:
            return 0
        return min(self.octets, len(self.packets[0].data) - self.sent_bytes)

    def send_pdu(self) -> None:
        if not self.packets:
            return
        packet = self.packets[0]
        self.sent_bytes += min(self.octets, len(packet.data) - self.sent_bytes)
        if self.sent_bytes < len(packet.data):
            return
        self.packets.popleft()
        self.sent_bytes = 0
        self.completed += 1
        if self.sender is not None:
            # The sending controller reassembles the L2CAP PDU and puts it on the link.
            self.sender.assembler.feed_packet(packet)

    def report_completed(self) -> None:
        n, self.completed = self.completed, 0
        sender = self.sender
        if n and sender is not None:
            sender.controller.send_hci_packet(
                hci.HCI_Number_Of_Completed_Packets_Event(
                    connection_handles=[sender.handle], num_completed_packets=[n]
                )
            )


class AirConnection:
    """One LE connection on the paced radio: its connection events and both directions."""

    def __init__(self, link: TwinLink, interval_ms: float, max_pdus_per_event: int) -> None:
        self.link = link
        self.interval_ms = interval_ms
        self.max_pdus_per_event = max_pdus_per_event
        self.to_peripheral = _Direction()
        self.to_central = _Direction()
        self.encrypted = False
        self.dle_done = False
        self.closed = False
        self.events = 0  # connection events that carried something
        self.pdus = 0  # data LL PDUs carried, both directions
        self._loop = asyncio.get_running_loop()
        self._anchor_s = self._loop.time()  # event 0; events follow every interval
        self._timer: asyncio.TimerHandle | None = None
        self._next_event_s = 0.0

    @property
    def interval_s(self) -> float:
        """The connection interval in host seconds (device time scaled by the radio)."""
        return self.interval_ms / 1000.0 / self.link.time_scale

    def set_interval(self, interval_ms: float) -> None:
        self._anchor_s = self._loop.time()
        self.interval_ms = interval_ms

    def direction_from(self, connection: ControllerConnection) -> _Direction:
        return self.to_peripheral if connection.role == hci.Role.CENTRAL else self.to_central

    def kick(self) -> None:
        """Make sure a connection event comes while there is something to carry."""
        if self._timer is not None or self.closed:
            return
        now = self._loop.time()
        interval = self.interval_s
        k = max(1, math.ceil((now - self._anchor_s) / interval))
        self._next_event_s = self._anchor_s + k * interval
        self._timer = self._loop.call_at(self._next_event_s, self._on_event)

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for d in (self.to_peripheral, self.to_central):
            d.packets.clear()
            d.sent_bytes = 0
            d.completed = 0

    def _pdu_air_us(self, payload: int) -> int:
        mic = _LL_MIC_BYTES if self.encrypted and payload else 0
        return (_LL_FRAMING_BYTES + payload + mic) * _US_PER_BYTE

    def _on_event(self) -> None:
        self._timer = None
        if self.closed:
            return
        now = self._loop.time()
        interval = self.interval_s
        # A late timer (the loop was busy) runs the events that fell due meanwhile.
        n_events = 1 + min(_MAX_CATCH_UP_EVENTS - 1, int((now - self._next_event_s) / interval))
        if not self.dle_done:
            self._negotiate_data_length()
        for _ in range(n_events):
            if not self._run_event():
                break
        self.to_peripheral.report_completed()
        self.to_central.report_completed()
        if self.to_peripheral.packets or self.to_central.packets:
            self._anchor_s = self._next_event_s + (n_events - 1) * interval
            self.kick()

    def _run_event(self) -> bool:
        """One connection event; False if there was nothing to carry."""
        c2p, p2c = self.to_peripheral, self.to_central
        if not (c2p.packets or p2c.packets):
            return False
        # A central shares its radio time between its connections: each gets its slice.
        central = c2p.sender
        links = 1 if central is None else max(1, len(central.controller.le_connections))
        event_us = self.interval_ms * 1000.0 / links - _T_IFS_US
        elapsed_us = 0.0
        exchanges = 0
        while (c2p.packets or p2c.packets) and exchanges < self.max_pdus_per_event:
            pc, pp = c2p.next_pdu_bytes(), p2c.next_pdu_bytes()
            air_us = self._pdu_air_us(pc) + self._pdu_air_us(pp) + 2 * _T_IFS_US
            if exchanges and elapsed_us + air_us > event_us:
                break
            elapsed_us += air_us
            exchanges += 1
            self.pdus += (pc > 0) + (pp > 0)
            c2p.send_pdu()
            p2c.send_pdu()
        self.events += 1
        return True

    def _negotiate_data_length(self) -> None:
        # The peripheral's controller starts the LL length procedure by itself (ESP32 does):
        # each direction gets the smaller of what its sender can send and its receiver take.
        self.dle_done = True
        central = self.to_peripheral.sender
        peripheral = self.to_central.sender
        if central is None or peripheral is None:
            return
        c_ctrl, p_ctrl = central.controller, peripheral.controller
        c2p = min(c_ctrl.supported_max_tx_octets, p_ctrl.supported_max_rx_octets)
        p2c = min(p_ctrl.supported_max_tx_octets, c_ctrl.supported_max_rx_octets)
        if (c2p, p2c) == (self.to_peripheral.octets, self.to_central.octets):
            return
        self.to_peripheral.octets, self.to_central.octets = c2p, p2c
        for end, tx, rx in ((central, c2p, p2c), (peripheral, p2c, c2p)):
            controller = end.controller
            if controller.le_event_mask & _LE_EVENT_DATA_LENGTH_CHANGE:
                controller.send_hci_packet(
                    hci.HCI_LE_Data_Length_Change_Event(
                        connection_handle=end.handle,
                        max_tx_octets=tx,
                        max_tx_time=_ll_time_us(tx),
                        max_rx_octets=rx,
                        max_rx_time=_ll_time_us(rx),
                    )
                )


def _ll_time_us(octets: int) -> int:
    # Core Vol 6 Part B 4.5.10: the time of an LL PDU of that payload on the 1M PHY, with MIC.
    return (_LL_FRAMING_BYTES + octets + _LL_MIC_BYTES) * _US_PER_BYTE


class TwinLink(LocalLink):
    """Bumble's LocalLink plus radio-level loss of notification PDUs and, when paced, the
    connections' air interface (:class:`AirConnection`)."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng
        self.notification_loss = 0.0
        self.notifications_carried = 0
        self.notifications_dropped = 0
        self.time_scale = 1.0
        self.air: dict[tuple[bytes, bytes], AirConnection] = {}

    @staticmethod
    def air_key(connection: ControllerConnection) -> tuple[bytes, bytes]:
        """(central address, peripheral address) of a connection, seen from either end."""
        if connection.role == hci.Role.CENTRAL:
            return (connection.self_address.address_bytes, connection.peer_address.address_bytes)
        return (connection.peer_address.address_bytes, connection.self_address.address_bytes)

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
        self.paced = radio.connection_interval_ms is not None
        self.buffer_overruns = 0  # ACL packets its host sent beyond the buffers it was given
        if self.paced:
            self.le_acl_data_packet_length = ACL_BUFFER_BYTES
            self.total_num_le_acl_data_packets = radio.acl_buffers
            octets = radio.data_length_octets
            self.supported_max_tx_octets = self.supported_max_rx_octets = octets
            self.supported_max_tx_time = self.supported_max_rx_time = _ll_time_us(octets)

    # --- the paced air interface -------------------------------------------------
    def _air_of(self, connection: ControllerConnection) -> AirConnection | None:
        link = self.link
        assert isinstance(link, TwinLink)
        return link.air.get(TwinLink.air_key(connection))

    def acl_buffers_in_use(self) -> int:
        """LE ACL buffers holding data its host sent that has not been carried yet."""
        n = 0
        for connection in self.le_connections.values():
            air = self._air_of(connection)
            if air is not None:
                n += len(air.direction_from(connection).packets)
        return n

    def on_hci_acl_data_packet(self, packet: hci.HCI_AclDataPacket) -> None:
        if not self.paced:
            super().on_hci_acl_data_packet(packet)
            return
        connection = self.find_le_connection_by_handle(packet.connection_handle)
        air = None if connection is None else self._air_of(connection)
        if connection is None or air is None:
            # A host that has not yet seen the disconnection: the data goes nowhere, as on a chip.
            logger.debug("no LE connection for ACL handle 0x%04X", packet.connection_handle)
            return
        if self.acl_buffers_in_use() >= self.total_num_le_acl_data_packets:
            self.buffer_overruns += 1
            logger.warning("%s: host sent ACL data with no free controller buffer", self.name)
        direction = air.direction_from(connection)
        direction.sender = connection
        direction.packets.append(packet)
        air.kick()

    def on_link_acl_data(
        self, sender_address: hci.Address, transport: PhysicalTransport, data: bytes
    ) -> None:
        connection = self.le_connections.get(sender_address)
        air = None if connection is None or not self.paced else self._air_of(connection)
        if connection is None or air is None:
            super().on_link_acl_data(sender_address, transport, data)
            return
        # One HCI ACL packet per LL PDU received: a start fragment, then continuations.
        if connection.role == hci.Role.CENTRAL:
            octets = air.to_central.octets
        else:
            octets = air.to_peripheral.octets
        for offset in range(0, len(data), octets):
            chunk = data[offset : offset + octets]
            pb = hci.HCI_ACL_PB_FIRST_FLUSHABLE if offset == 0 else hci.HCI_ACL_PB_CONTINUATION
            self.send_hci_packet(hci.HCI_AclDataPacket(connection.handle, pb, 0, len(chunk), chunk))

    def on_hci_le_create_connection_command(self, command: Any) -> Any:
        interval_ms = self.radio.connection_interval_ms
        if interval_ms is not None:
            # The central's OS picks the interval (module docstring), whatever its host asked.
            units = round(interval_ms / _CONN_INTERVAL_UNIT_MS)
            command.connection_interval_min = command.connection_interval_max = units
        return super().on_hci_le_create_connection_command(command)

    def on_hci_le_extended_create_connection_command(self, command: Any) -> Any:
        interval_ms = self.radio.connection_interval_ms
        if interval_ms is not None:
            units = round(interval_ms / _CONN_INTERVAL_UNIT_MS)
            command.connection_interval_mins = [units] * len(command.connection_interval_mins)
            command.connection_interval_maxs = [units] * len(command.connection_interval_maxs)
        return super().on_hci_le_extended_create_connection_command(command)

    def create_le_connection(self, peer_address: hci.Address) -> None:
        pending = self.pending_le_connection
        super().create_le_connection(peer_address)
        connection = self.le_connections.get(peer_address)
        if not self.paced or pending is None or connection is None:
            return
        if isinstance(pending, hci.HCI_LE_Extended_Create_Connection_Command):
            interval = pending.connection_interval_mins[0]  # one set per PHY
        else:
            interval = pending.connection_interval_min
        link = self.link
        assert isinstance(link, TwinLink)
        air = AirConnection(link, interval * _CONN_INTERVAL_UNIT_MS, self.radio.max_pdus_per_event)
        air.to_peripheral.sender = connection
        link.air[TwinLink.air_key(connection)] = air
        air.kick()  # the first event: the data length procedure

    def on_le_connect_ind(self, packet: ll.ConnectInd) -> None:
        adv = self.le_legacy_advertiser
        if not (self.paced and adv.enabled and adv.address == packet.advertiser_address):
            super().on_le_connect_ind(packet)
            return
        # As the stock controller, but the Connection Complete event carries the interval,
        # latency and timeout of the CONNECT_IND (the stock one reports fixed values).
        peer_address = packet.initiator_address
        connection = ControllerConnection(
            controller=self,
            handle=self.allocate_connection_handle(),
            role=hci.Role.PERIPHERAL,
            self_address=packet.advertiser_address,
            peer_address=peer_address,
            link=self.link,
            transport=PhysicalTransport.LE,
            link_type=hci.HCI_Connection_Complete_Event.LinkType.ACL,
        )
        self.le_connections[peer_address] = connection
        air = self._air_of(connection)
        if air is not None:
            air.to_central.sender = connection
        self.send_hci_packet(
            hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.SUCCESS,
                connection_handle=connection.handle,
                role=connection.role,
                peer_address_type=peer_address.address_type,
                peer_address=peer_address,
                connection_interval=packet.interval,
                peripheral_latency=packet.latency,
                supervision_timeout=packet.timeout,
                central_clock_accuracy=0,
            )
        )
        adv.stop()

    def on_hci_le_connection_update_command(self, command: Any) -> None:
        super().on_hci_le_connection_update_command(command)
        connection = self.find_le_connection_by_handle(command.connection_handle)
        air = None if connection is None else self._air_of(connection)
        if air is not None:
            air.set_interval(command.connection_interval_max * _CONN_INTERVAL_UNIT_MS)

    def on_hci_le_set_data_length_command(self, command: Any) -> Any:
        connection = self.find_le_connection_by_handle(command.connection_handle)
        if connection is None:
            status = hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR
        else:
            status = hci.HCI_ErrorCode.SUCCESS
            air = self._air_of(connection)
            if air is not None and not air.dle_done:
                air.kick()  # negotiated at the next event
        return hci.HCI_StatusAndConnectionHandleReturnParameters(
            status=status, connection_handle=command.connection_handle
        )

    def on_le_encryption_change(self, connection: ControllerConnection, status: int) -> None:
        air = self._air_of(connection)
        if air is not None and status == hci.HCI_ErrorCode.SUCCESS:
            air.encrypted = True
        super().on_le_encryption_change(connection, status)

    def on_le_disconnected(self, connection: ControllerConnection, reason: int) -> None:
        link = self.link
        assert isinstance(link, TwinLink)
        air = link.air.pop(TwinLink.air_key(connection), None)
        if air is not None:
            air.close()  # what the controllers still held is lost with the link
        super().on_le_disconnected(connection, reason)

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
        connection_interval_ms: float | None = DEFAULT_CONNECTION_INTERVAL_MS,
        data_length_octets: int = DLE_MAX_OCTETS,
        max_pdus_per_event: int = DEFAULT_MAX_PDUS_PER_EVENT,
        acl_buffers: int = DEFAULT_ACL_BUFFERS,
        time_scale: float = 1.0,
        default_rssi_dbm: int = DEFAULT_RSSI_DBM,
    ) -> None:
        """``connection_interval_ms`` None: Bumble's immediate link (no pacing, no DLE, 64
        buffers of 27 bytes); otherwise the paced air interface of the module docstring.
        ``time_scale``: device seconds per host second (the twin's ``--speed``)."""
        if connection_interval_ms is not None and not 7.5 <= connection_interval_ms <= 4000:
            raise ValueError(f"connection interval {connection_interval_ms} ms: 7.5 to 4000")
        if not LL_DEFAULT_OCTETS <= data_length_octets <= DLE_MAX_OCTETS:
            raise ValueError(f"data length {data_length_octets}: 27 to 251 octets")
        if max_pdus_per_event < 1 or acl_buffers < 1 or time_scale <= 0:
            raise ValueError("max_pdus_per_event, acl_buffers and time_scale must be positive")
        self.rng = random.Random(seed)
        self.link = TwinLink(random.Random(seed + 1))
        self.link.notification_loss = notification_loss
        self.link.time_scale = float(time_scale)
        self.connection_interval_ms = connection_interval_ms
        self.data_length_octets = data_length_octets
        self.max_pdus_per_event = max_pdus_per_event
        self.acl_buffers = acl_buffers
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

    def air_stats(self) -> dict[str, int]:
        """Totals of the paced air interface over the open connections: connection events
        that carried data, LL data PDUs, and ACL packets hosts sent past their buffers."""
        air = list(self.link.air.values())
        overruns = 0
        for controller in self.link.controllers:
            if isinstance(controller, TwinController):
                overruns += controller.buffer_overruns
        return {
            "events": sum(a.events for a in air),
            "pdus": sum(a.pdus for a in air),
            "buffer_overruns": overruns,
        }
