"""A small fake of MicroPython's `bluetooth` module for the firmware's unit tests.

Portable (CPython and MicroPython). BLE records what the firmware does (GATT table,
advertising, values, notifications) and has test-side methods that play the central:
connect(), exchange_mtu(), write_control(), encrypt(), disconnect(), and raises the key-store
events the stack would (get_secret(), set_secret()). Like the stack, write_control() refuses a
write to a write-encrypted characteristic on a link that is not encrypted (ATT error 0x0F,
no IRQ). Notifications are
copied into a preallocated capture area without allocating, so the MicroPython hot-path test
can run with the heap locked; enomem_next(n) makes the next n notifications fail with
OSError(ENOMEM) like NimBLE when its buffers are full.
"""

FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020
_FLAG_WRITE_ENCRYPTED = 0x1000
_ATT_INSUFFICIENT_ENCRYPTION = 0x0F

_ENOMEM = 12
_CAPTURE_SLOTS = 512
_CAPTURE_BYTES = 256


class UUID:
    def __init__(self, value):
        self.value = value.lower() if isinstance(value, str) else value

    def __eq__(self, other):
        return isinstance(other, UUID) and other.value == self.value

    def __hash__(self):
        return hash(self.value)

    def __repr__(self):
        return "UUID(" + repr(self.value) + ")"


class BLE:
    def __init__(self, mac=b"\x24\x0a\xc4\x1a\x2b\x3c"):
        self._active = False
        self._mac = bytes(mac)
        self._config = {"mtu": 23, "gap_name": ""}
        self._irq = None
        self.services = None
        self.handles = {}  # characteristic UUID string -> (value handle, flags)
        self.values = {}
        self.buffers = {}
        self.adv = None  # (interval_us, adv_data, resp_data, connectable)
        self.adv_count = 0
        self.conn_handle = None
        self.encrypted = False
        self.refused_writes = 0
        self.flags_of = {}  # value handle -> characteristic flags
        self.disconnect_requests = 0
        self._enomem = 0
        self._enomem_exc = OSError(_ENOMEM, "ENOMEM")  # raised as is: no allocation in notify
        self.enomem_raised = 0
        # Notification capture: a ring of (handle, length, bytes) slots.
        self._cap = bytearray(_CAPTURE_SLOTS * _CAPTURE_BYTES)
        self._cap_handle = [0] * _CAPTURE_SLOTS
        self._cap_len = [0] * _CAPTURE_SLOTS
        self.notify_count = 0
        self.taken = 0  # notifications handed out by take_notifications

    # --- the bluetooth.BLE API the firmware uses ------------------------------------
    def active(self, state=None):
        if state is not None:
            self._active = bool(state)
        return self._active

    def config(self, *args, **kwargs):
        if args:
            if args[0] == "mac":
                return (0, self._mac)
            return self._config[args[0]]
        self._config.update(kwargs)
        return None

    def irq(self, handler):
        self._irq = handler

    def gatts_register_services(self, services):
        result = []
        handle = 1
        self.services = services
        for _service_uuid, chars in services:
            handles = []
            for char_uuid, flags in chars:
                handle += 1  # declaration
                handles.append(handle)
                self.handles[char_uuid.value] = (handle, flags)
                self.flags_of[handle] = flags
                self.values[handle] = b""
                self.buffers[handle] = 20
                handle += 1
                if flags & (FLAG_NOTIFY | FLAG_INDICATE):
                    handle += 1  # CCCD
            result.append(tuple(handles))
        return tuple(result)

    def gatts_set_buffer(self, handle, size, append=False):
        self.buffers[handle] = size

    def gatts_write(self, handle, data, send_update=False):
        # Same length as before: copied in place, so a steady status refresh allocates nothing.
        old = self.values.get(handle)
        if isinstance(old, bytearray) and len(old) == len(data):
            for i in range(len(data)):
                old[i] = data[i]
        else:
            self.values[handle] = bytearray(data)

    def gatts_read(self, handle):
        return self.values[handle]

    def gatts_notify(self, conn_handle, value_handle, data=None):
        if conn_handle != self.conn_handle:
            raise OSError(128)  # no such connection
        if self._enomem:
            self._enomem -= 1
            self.enomem_raised += 1
            raise self._enomem_exc
        slot = self.notify_count % _CAPTURE_SLOTS
        n = len(data)
        base = slot * _CAPTURE_BYTES
        cap = self._cap
        for i in range(n):
            cap[base + i] = data[i]
        self._cap_handle[slot] = value_handle
        self._cap_len[slot] = n
        self.notify_count += 1

    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True):
        self.adv = (interval_us, bytes(adv_data or b""), bytes(resp_data or b""), connectable)
        self.adv_count += 1

    def gap_disconnect(self, conn_handle):
        self.disconnect_requests += 1
        return True

    # --- test side: the central -------------------------------------------------------
    def handle_of(self, uuid_str):
        return self.handles[uuid_str.lower()][0]

    def connect(self, conn_handle=64, addr=b"\x11\x22\x33\x44\x55\x66"):
        self.conn_handle = conn_handle
        self.encrypted = False
        self.adv = None
        self._irq(1, (conn_handle, 0, addr))

    def disconnect(self):
        conn = self.conn_handle
        self.conn_handle = None
        self.encrypted = False
        self._irq(2, (conn, 0, b"\x11\x22\x33\x44\x55\x66"))

    def exchange_mtu(self, mtu):
        self._irq(21, (self.conn_handle, mtu))

    def encrypt(self, encrypted=True, bonded=True):
        self.encrypted = bool(encrypted)
        self._irq(28, (self.conn_handle, encrypted, False, bonded and encrypted, 16))

    def write_control(self, handle, data):
        """A client write: 0 when accepted, else the ATT error the stack answered."""
        if self.flags_of.get(handle, 0) & _FLAG_WRITE_ENCRYPTED and not self.encrypted:
            self.refused_writes += 1
            return _ATT_INSUFFICIENT_ENCRYPTION
        limit = self.buffers[handle]
        self.values[handle] = bytes(data[:limit])  # a new write replaces the value
        self._irq(3, (self.conn_handle, handle))
        return 0

    def set_secret(self, sec_type, key, value):
        """The stack asks to store (value None: delete) a key; returns the handler's answer."""
        return self._irq(
            30, (sec_type, memoryview(key), None if value is None else memoryview(value))
        )

    def get_secret(self, sec_type, index, key=None):
        """The stack asks for a stored key (key None: the index'th of sec_type)."""
        return self._irq(29, (sec_type, index, None if key is None else memoryview(key)))

    def enomem_next(self, n):
        self._enomem = n

    def take_notifications(self):
        """[(handle, bytes)] of the notifications since the last call (oldest first)."""
        out = []
        start = self.taken
        if self.notify_count - start > _CAPTURE_SLOTS:
            raise AssertionError("notification capture overrun")
        for k in range(start, self.notify_count):
            slot = k % _CAPTURE_SLOTS
            base = slot * _CAPTURE_BYTES
            out.append(
                (self._cap_handle[slot], bytes(self._cap[base : base + self._cap_len[slot]]))
            )
        self.taken = self.notify_count
        return out
