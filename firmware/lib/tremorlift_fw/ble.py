"""BLE peripheral: GATT table, advertising, connection state (docs/protocol.md, 3).

The only module that imports `bluetooth` (for its UUID type, inside BleLink so importing this
module touches nothing); the BLE object itself is passed in, so tests and the twin use
emulated ones. The IRQ handler only records what happened into preallocated state and sets
`pending`; the application's loop calls process() to act on it (advertise again, hand
control writes to the command parser). Notifications are sent by the caller through
notify_data / notify_control / notify_status, which report ENOMEM instead of raising.

Security (docs/protocol.md, 9): the stack is set up for bonding with LE Secure Connections,
"Just Works" (the wearable has no display or keyboard). With require_encrypted_control the
control characteristic is registered write-encrypted, so the stack itself refuses a write on
an unencrypted link (NimBLE: ATT error 0x05 for a central that never paired, 0x0F for a bonded
one not re-encrypted yet) and the firmware never sees it. The bond keys
the stack asks to keep (_IRQ_SET_SECRET / _IRQ_GET_SECRET) go to the BondStore passed in
(bonds.py); without one they are refused and bonds last until the next reset.

Pairing window (docs/protocol.md, 9): a new pairing is taken only while pairing_open is True
(the application opens it for PAIRING_WINDOW_MS after power-on and after a press of the pairing
button). Outside it, the new keys are not stored (_IRQ_SET_SECRET answers False) and a link
that became encrypted through a new pairing (keys offered during this connection, or an
encryption without a bond) is marked refused: its commands are answered NOT_AUTHORISED and the
application disconnects it. A host bonded before re-encrypts with its stored keys (no new keys,
bonded) and is never refused.
"""

from micropython import const

from . import config

# MicroPython bluetooth IRQ event codes (docs.micropython.org, library/bluetooth).
_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_MTU_EXCHANGED = const(21)
_IRQ_CONNECTION_UPDATE = const(27)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
# bonds.py's sec_types of a host's keys (our keys for it, its keys): new ones mean a pairing.
_SEC_TYPE_OUR = const(1)
_SEC_TYPE_PEER = const(2)

# Characteristic flags (bluetooth.FLAG_*; the WRITE_ENCRYPTED value from the same docs).
_FLAG_READ = const(0x0002)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)
_FLAG_WRITE_ENCRYPTED = const(0x1000)

_ENOMEM = const(12)

# GATT (docs/protocol.md, 3): base 7a1fXXXX-4c3b-4e0c-9b5a-2d8e6f1c3a70.
SERVICE_UUID = "7a1f0001-4c3b-4e0c-9b5a-2d8e6f1c3a70"
DATA_UUID = "7a1f0002-4c3b-4e0c-9b5a-2d8e6f1c3a70"
CONTROL_UUID = "7a1f0003-4c3b-4e0c-9b5a-2d8e6f1c3a70"
STATUS_UUID = "7a1f0004-4c3b-4e0c-9b5a-2d8e6f1c3a70"
INFO_UUID = "7a1f0005-4c3b-4e0c-9b5a-2d8e6f1c3a70"

# Advertising data types (Bluetooth Core Supplement, part A, 1).
_AD_FLAGS = const(0x01)
_AD_UUID128_COMPLETE = const(0x07)
_AD_NAME_COMPLETE = const(0x09)
_AD_CONN_INTERVAL_RANGE = const(0x12)
_AD_MANUFACTURER = const(0xFF)
_AD_FLAGS_GENERAL_NO_BREDR = const(0x06)
_COMPANY_ID = const(0xFFFF)  # reserved for tests/prototypes

DEFAULT_MTU = const(23)
# A write request carries at most MTU - 3 = 244 bytes: longer commands are still answered.
_CONTROL_BUFFER_BYTES = const(244)
# Control writes kept between two process() calls; each keeps its first bytes and its length.
_CMD_SLOTS = const(8)
_CMD_KEEP_BYTES = const(16)


def uuid128_le(uuid_str):
    """The 16 bytes of a 128-bit UUID as sent over the air (little-endian)."""
    hexdigits = uuid_str.replace("-", "")
    out = bytearray(16)
    for i in range(16):
        out[15 - i] = int(hexdigits[2 * i : 2 * i + 2], 16)
    return bytes(out)


def _ad(ad_type, payload):
    return bytes((len(payload) + 1, ad_type)) + payload


def adv_payload():
    """Advertising data: flags, the service's 128-bit UUID, the connection interval range."""
    interval = bytes(
        (
            config.CONN_INTERVAL_MIN_UNITS & 0xFF,
            config.CONN_INTERVAL_MIN_UNITS >> 8,
            config.CONN_INTERVAL_MAX_UNITS & 0xFF,
            config.CONN_INTERVAL_MAX_UNITS >> 8,
        )
    )
    return (
        _ad(_AD_FLAGS, bytes((_AD_FLAGS_GENERAL_NO_BREDR,)))
        + _ad(_AD_UUID128_COMPLETE, uuid128_le(SERVICE_UUID))
        + _ad(_AD_CONN_INTERVAL_RANGE, interval)
    )


def scan_response(name, protocol_version, battery_pct, status_flags):
    """Scan response: complete local name and manufacturer data (company 0xFFFF)."""
    manufacturer = bytes(
        (
            _COMPANY_ID & 0xFF,
            _COMPANY_ID >> 8,
            protocol_version,
            battery_pct & 0xFF,
            status_flags & 0xFF,
        )
    )
    return _ad(_AD_NAME_COMPLETE, name.encode()) + _ad(_AD_MANUFACTURER, manufacturer)


def name_from_mac(mac):
    """TL-XXXX: the prefix and the address's last four hex digits, upper case."""
    return f"{config.NAME_PREFIX}{mac[-2]:02X}{mac[-1]:02X}"


def make_ble():
    """The board's BLE singleton (used by app.main() only)."""
    import bluetooth

    return bluetooth.BLE()


class BleLink:
    def __init__(self, ble, require_encrypted_control=False, bonds=None):
        import bluetooth

        self._ble = ble
        self.bonds = bonds
        self.require_encrypted_control = require_encrypted_control
        self.conn_handle = None
        self.h_control = -1
        self.encrypted = False
        self.bonded = False
        self.security_changes = 0
        self._security_seen = 0
        # Pairing window: set by the application; read by the IRQ handler.
        self.pairing_open = True
        self.refused = False  # this link paired outside the window
        self.pairings_refused = 0
        self._new_keys = False  # a host's keys were offered during this connection
        # The handler goes in before the stack starts: NimBLE reads the stored bonds (through
        # _IRQ_GET_SECRET) while it starts, to resolve bonded peers' private addresses.
        ble.irq(self._irq)
        ble.active(True)
        ble.config(mtu=config.PREFERRED_MTU)
        ble.config(
            bond=True,
            le_secure=True,
            mitm=False,
            io=config.BLE_IO_CAPABILITY,
        )
        control_flags = _FLAG_WRITE | _FLAG_NOTIFY
        if require_encrypted_control:
            control_flags |= _FLAG_WRITE_ENCRYPTED
        service = (
            bluetooth.UUID(SERVICE_UUID),
            (
                (bluetooth.UUID(DATA_UUID), _FLAG_NOTIFY),
                (bluetooth.UUID(CONTROL_UUID), control_flags),
                (bluetooth.UUID(STATUS_UUID), _FLAG_READ | _FLAG_NOTIFY),
                (bluetooth.UUID(INFO_UUID), _FLAG_READ),
            ),
        )
        ((self.h_data, self.h_control, self.h_status, self.h_info),) = ble.gatts_register_services(
            (service,)
        )
        ble.gatts_set_buffer(self.h_control, _CONTROL_BUFFER_BYTES)
        self.mac = bytes(ble.config("mac")[1])
        self.name = name_from_mac(self.mac)
        ble.config(gap_name=self.name)
        self._adv = adv_payload()
        self.att_mtu = DEFAULT_MTU
        self.advertising = False
        self.advertise_errors = 0
        self.connects = 0
        self.disconnects = 0
        # IRQ -> loop hand-over (the IRQ handler only writes these).
        self.pending = False
        self._connection_events = 0
        self._connection_seen = 0
        self._mtu_events = 0
        self._mtu_seen = 0
        self._cmd = [bytearray(_CMD_KEEP_BYTES) for _ in range(_CMD_SLOTS)]
        self._cmd_len = [0] * _CMD_SLOTS
        self._cmd_head = 0  # next slot the IRQ writes
        self._cmd_tail = 0  # next slot next_command() reads
        self.command = self._cmd[0]
        self.commands_dropped = 0

    # --- IRQ side: record only ---------------------------------------------------------
    def _irq(self, event, data):
        # The two key-store events answer the stack directly (and touch no loop state).
        if event == _IRQ_GET_SECRET:
            bonds = self.bonds
            return None if bonds is None else bonds.get(data[0], data[1], data[2])
        if event == _IRQ_SET_SECRET:
            if data[2] is not None and (data[0] == _SEC_TYPE_OUR or data[0] == _SEC_TYPE_PEER):
                self._new_keys = True
                if not self.pairing_open:
                    return False  # a new host outside the pairing window: not kept
            bonds = self.bonds
            return False if bonds is None else bonds.set(data[0], data[1], data[2])
        if event == _IRQ_CENTRAL_CONNECT:
            self.conn_handle = data[0]
            self.att_mtu = DEFAULT_MTU
            self.encrypted = False
            self.bonded = False
            self.refused = False
            self._new_keys = False
            self.advertising = False
            self.connects += 1
            self._connection_events += 1
        elif event == _IRQ_CENTRAL_DISCONNECT:
            if data[0] == self.conn_handle:
                self.conn_handle = None
                self.att_mtu = DEFAULT_MTU
                self.encrypted = False
                self.bonded = False
            self.disconnects += 1
            self._connection_events += 1
        elif event == _IRQ_GATTS_WRITE:
            if data[1] == self.h_control:
                self._record_command(self._ble.gatts_read(self.h_control))
        elif event == _IRQ_MTU_EXCHANGED:
            if data[0] == self.conn_handle:
                self.att_mtu = data[1]
                self._mtu_events += 1
        elif event == _IRQ_ENCRYPTION_UPDATE:
            # (conn_handle, encrypted, authenticated, bonded, key_size)
            if data[0] == self.conn_handle:
                self.encrypted = bool(data[1])
                self.bonded = bool(data[3])
                if self.encrypted and not self.pairing_open and (self._new_keys or not self.bonded):
                    # Paired just now, outside the window (a bonded host re-encrypts instead).
                    self.refused = True
                    self.encrypted = False
                    self.pairings_refused += 1
                self.security_changes += 1
        self.pending = True
        return None

    def _record_command(self, value):
        # The stack keeps only the last written value, so each write is copied out now.
        head = self._cmd_head
        if head - self._cmd_tail >= _CMD_SLOTS:
            self.commands_dropped += 1
            return
        slot = head % _CMD_SLOTS
        n = len(value)
        keep = n if n < _CMD_KEEP_BYTES else _CMD_KEEP_BYTES
        buf = self._cmd[slot]
        for i in range(keep):
            buf[i] = value[i]
        self._cmd_len[slot] = n
        self._cmd_head = head + 1

    # --- loop side --------------------------------------------------------------------
    # Each change is a counter the IRQ handler only increments and the loop only compares
    # with the value it saw last: a read-then-clear of a flag would lose an event raised
    # between the read and the clear (a lost MTU update leaves 1-sample frames).
    def take_connection_change(self):
        n = self._connection_events
        if n == self._connection_seen:
            return False
        self._connection_seen = n
        return True

    def take_security_change(self):
        n = self.security_changes
        if n == self._security_seen:
            return False
        self._security_seen = n
        return True

    def take_mtu_change(self):
        n = self._mtu_events
        if n == self._mtu_seen:
            return False
        self._mtu_seen = n
        return True

    def next_command(self):
        """Length of the oldest unprocessed control write (its bytes, at most 16, are then in
        command), or -1 if there is none."""
        if self._cmd_tail == self._cmd_head:
            self.pending = False
            return -1
        slot = self._cmd_tail % _CMD_SLOTS
        self._cmd_tail += 1
        self.command = self._cmd[slot]
        return self._cmd_len[slot]

    @property
    def connected(self):
        return self.conn_handle is not None

    def advertise(self, protocol_version, battery_pct, status_flags):
        """Start (or update) advertising; False if the stack refused (OSError: busy, or the
        controller still tearing the last link down): the caller tries again later."""
        try:
            self._ble.gap_advertise(
                config.ADV_INTERVAL_US,
                adv_data=self._adv,
                resp_data=scan_response(self.name, protocol_version, battery_pct, status_flags),
                connectable=True,
            )
        except OSError:
            self.advertising = False
            self.advertise_errors += 1
            return False
        self.advertising = True
        return True

    def set_status(self, msg):
        self._ble.gatts_write(self.h_status, msg)

    def set_info(self, msg):
        self._ble.gatts_write(self.h_info, msg)

    def _notify(self, handle, data):
        # 1 sent, 0 no connection, -1 the stack is out of buffers (ENOMEM), -2 other error.
        conn = self.conn_handle
        if conn is None:
            return 0
        try:
            self._ble.gatts_notify(conn, handle, data)
        except OSError as e:
            return -1 if e.args and e.args[0] == _ENOMEM else -2
        return 1

    def notify_data(self, data):
        return self._notify(self.h_data, data)

    def notify_control(self, data):
        return self._notify(self.h_control, data)

    def notify_status(self, data):
        return self._notify(self.h_status, data)

    def disconnect(self):
        if self.conn_handle is not None:
            try:
                self._ble.gap_disconnect(self.conn_handle)
            except OSError:
                pass
