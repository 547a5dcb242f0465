"""Bond keys kept on the board's flash, so a paired laptop stays paired across reboots.

MicroPython leaves key storage to the application: while pairing, and whenever it needs a
key, the BLE stack raises _IRQ_SET_SECRET (sec_type, key, value) and _IRQ_GET_SECRET
(sec_type, index, key) and expects the IRQ handler to store or return the bytes. On ESP32
(NimBLE) sec_type is 1 for our own keys and 2 for the peer's, the key is the peer's address
record (type byte + 6 address bytes) and the value is NimBLE's whole key record for that
peer; GET with key None asks for the index'th record of that type (the stack walks all of
them at start-up to fill its resolving list). A SET with no value deletes.

BondStore keeps those records in RAM (newest last), answers both IRQs from RAM, and writes
the file only from the application's loop (save(), when `dirty`): flash writes take tens of
milliseconds and must not run inside the BLE stack's callback. The file is small and
bounded: at most `max_peers` peers (pairing another forgets the oldest), each record at
most 255 bytes of value. Nothing touches the file system until load() or save() is called.

File layout: b"TLB1", then per record: sec_type (u8), key length (u8), value length (u8),
key, value. A damaged or truncated file keeps the records read before the damage.
"""

from micropython import const

from . import config

SEC_TYPE_OUR = const(1)
SEC_TYPE_PEER = const(2)
# The local identity resolving key NimBLE keeps through the same IRQs (key b"irk"): the
# wearable's own, not a paired host, so it never counts against max_peers nor is evicted.
SEC_TYPE_OUR_IRK = const(10)
_MAGIC = b"TLB1"
_MAX_KEY_BYTES = const(16)
_MAX_VALUE_BYTES = const(255)
_MAX_SEC_TYPE = const(15)


class BondStore:
    def __init__(self, path=config.BOND_FILE, max_peers=config.BOND_MAX_PEERS):
        self.path = path
        self.max_peers = max_peers
        self._records = []  # [sec_type, key bytes, value bytes], oldest first
        self.dirty = False  # changed since the last save
        self.load_errors = 0
        self.save_errors = 0
        self.evictions = 0

    def __len__(self):
        return len(self._records)

    def peers(self):
        """The keys (peer address records) held, oldest first, each once: paired hosts only."""
        out = []
        for rec in self._records:
            if rec[0] != SEC_TYPE_OUR_IRK and rec[1] not in out:
                out.append(rec[1])
        return out

    # --- IRQ side (called from the BLE stack's context; RAM only) ----------------------
    def get(self, sec_type, index, key):
        """_IRQ_GET_SECRET: the value for (sec_type, key), or the index'th value of sec_type
        when key is None; None when there is none."""
        if key is None:
            n = 0
            for rec in self._records:
                if rec[0] == sec_type:
                    if n == index:
                        return rec[2]
                    n += 1
            return None
        key = bytes(key)
        for rec in self._records:
            if rec[0] == sec_type and rec[1] == key:
                return rec[2]
        return None

    def set(self, sec_type, key, value):
        """_IRQ_SET_SECRET: store value for (sec_type, key) (value None or empty: delete).
        Returns True when stored or deleted, False when refused or nothing was deleted."""
        if key is None:
            return False
        key = bytes(key)
        if not value:
            kept = [rec for rec in self._records if not (rec[0] == sec_type and rec[1] == key)]
            if len(kept) == len(self._records):
                return False
            self._records = kept
            self.dirty = True
            return True
        if (
            len(key) > _MAX_KEY_BYTES
            or len(value) > _MAX_VALUE_BYTES
            or not 0 <= sec_type <= _MAX_SEC_TYPE
        ):
            return False
        value = bytes(value)
        records = [rec for rec in self._records if not (rec[0] == sec_type and rec[1] == key)]
        if sec_type != SEC_TYPE_OUR_IRK and not any(
            rec[1] == key and rec[0] != SEC_TYPE_OUR_IRK for rec in records
        ):
            # A new peer: make room by forgetting the peer that paired longest ago.
            while self._count_peers(records) >= self.max_peers:
                oldest = None
                for rec in records:
                    if rec[0] != SEC_TYPE_OUR_IRK:
                        oldest = rec[1]
                        break
                records = [rec for rec in records if rec[0] == SEC_TYPE_OUR_IRK or rec[1] != oldest]
                self.evictions += 1
        records.append([sec_type, key, value])
        self._records = records
        self.dirty = True
        return True

    @staticmethod
    def _count_peers(records):
        seen = []
        for rec in records:
            if rec[0] != SEC_TYPE_OUR_IRK and rec[1] not in seen:
                seen.append(rec[1])
        return len(seen)

    # --- loop side: the file ------------------------------------------------------------
    def load(self):
        """Read the file (a missing one is an empty store). Returns the records loaded."""
        self._records = []
        self.dirty = False
        try:
            with open(self.path, "rb") as f:
                # A valid file is never larger than this: anything beyond is ignored.
                data = f.read(
                    len(_MAGIC) + (2 * self.max_peers + 1) * (3 + _MAX_KEY_BYTES + _MAX_VALUE_BYTES)
                )
        except OSError:
            return 0
        if data[: len(_MAGIC)] != _MAGIC:
            self.load_errors += 1
            return 0
        i = len(_MAGIC)
        n = len(data)
        while i < n:
            if i + 3 > n:
                self.load_errors += 1
                break
            sec_type = data[i]
            key_len = data[i + 1]
            value_len = data[i + 2]
            end = i + 3 + key_len + value_len
            if end > n or key_len == 0 or key_len > _MAX_KEY_BYTES or value_len == 0:
                self.load_errors += 1
                break
            key = data[i + 3 : i + 3 + key_len]
            value = data[i + 3 + key_len : end]
            # Through set(): duplicates collapse and the peer limit holds for any file.
            self.set(sec_type, key, value)
            i = end
        self.dirty = False
        return len(self._records)

    def encode(self):
        out = bytearray(_MAGIC)
        for sec_type, key, value in self._records:
            out.append(sec_type)
            out.append(len(key))
            out.append(len(value))
            out.extend(key)
            out.extend(value)
        return out

    def save(self):
        """Write the file if anything changed (a temporary file, then a rename, so a reset
        mid-write leaves the old file whole). Returns True when the file is up to date."""
        if not self.dirty:
            return True
        self.dirty = False  # a failed write is retried after the next change, not every loop
        import os

        tmp = self.path + ".tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(self.encode())
            os.rename(tmp, self.path)
        except OSError:
            self.save_errors += 1
            try:
                os.remove(tmp)
            except OSError:
                pass
            return False
        return True
