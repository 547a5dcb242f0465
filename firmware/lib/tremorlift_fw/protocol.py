"""The firmware side of the tremorlift wire protocol, version 1 (docs/protocol.md).

Encoders write into buffers the caller preallocated and return how many bytes
they wrote. The functions used on the hot path (pack_samples_header,
pack_response, pack_status, pack_info, crc16, serial_encode, LineDecoder.feed)
allocate nothing on MicroPython: struct.pack_into, indexing and small-int
arithmetic only. tests/firmware/test_protocol_fw.py proves that under
micropython.heap_lock() on real MicroPython.
"""

import struct
from array import array

from micropython import const

# --- Header (docs/protocol.md, 2 and 4) --------------------------------------
VERSION = const(1)
MSG_SAMPLES = const(1)
MSG_RESPONSE = const(2)
MSG_STATUS = const(3)
MSG_INFO = const(4)

# SAMPLES flags (docs/protocol.md, 4).
FLAG_RESENT = const(1)
FLAG_GAP_BEFORE = const(2)
FLAG_STREAM_START = const(4)

# Sizes in bytes.
HEADER_BYTES = const(16)
SAMPLE_BYTES = const(12)
MAX_SAMPLES = const(19)
STATUS_BYTES = const(44)
INFO_BASE_BYTES = const(27)
RESPONSE_BYTES = const(5)
INFO_NAME_MAX = const(20)

# Command opcodes (docs/protocol.md, 6).
OP_START = const(1)
OP_STOP = const(2)
OP_CONFIGURE = const(3)
OP_BUZZ = const(4)
OP_IDENTIFY = const(5)
OP_STATUS_NOW = const(6)
OP_SET_TRANSPORT = const(7)
OP_RESEND = const(8)
OP_GET_INFO = const(9)
OP_REBOOT = const(10)

# RESPONSE result codes (docs/protocol.md, 5).
RES_OK = const(0)
RES_UNKNOWN_OPCODE = const(1)
RES_BAD_LENGTH = const(2)
RES_OUT_OF_RANGE = const(3)
RES_BAD_STATE = const(4)
RES_NOT_AVAILABLE = const(5)
RES_NOT_AUTHORISED = const(6)
RES_HARDWARE_ERROR = const(7)
RES_BUSY = const(8)

# STATUS flags (docs/protocol.md, 7).
ST_STREAMING = const(1)
ST_IMU_MISSING = const(2)
ST_IMU_FAULT = const(4)
ST_LOW_BATTERY = const(8)
ST_SAFE_MODE = const(16)
ST_SERIAL_TRANSPORT = const(32)
ST_FIFO_OVERFLOW = const(64)
ST_ENCRYPTED = const(128)

# BUZZ patterns: on, off, on, ... durations in ms (docs/protocol.md, 6).
BUZZ_PATTERNS_MS = {1: (80,), 2: (150, 100, 150), 3: (300, 150, 300, 150, 300), 4: (40,)}

# struct layouts, little-endian without padding.
# SAMPLES header: version, type, flags, n_samples, seq, first_sample_index, tick_us.
_SAMPLES_HEADER_FMT = "<BBBBIII"
# STATUS: version, type, flags, battery_mv, uptime_s, fifo_overflows, frames_dropped,
# notify_backoffs, i2c_errors, imu_reinits, next_seq, next_sample_index,
# fw major, minor, patch, protocol_version, boot_id.
_STATUS_FMT = "<BBHHIIIIIIIIBBBBH"
# INFO up to name_len: version, type, fw major, minor, patch, imu_kind, board, odr_hz,
# accel_range_g, gyro_range_dps, dlpf_hz, accel_lsb_per_g, gyro_lsb_per_dps_x10,
# samples_per_frame, ring_frames, boot_id, att_mtu, reserved, name_len.
_INFO_FMT = "<BBBBBBBHBHHHHBHHHBB"

# ATT notification overhead: opcode (1) + attribute handle (2).
_ATT_NOTIFY_OVERHEAD = const(3)

# CRC-16/CCITT-FALSE (docs/protocol.md, 8): polynomial 0x1021, MSB first.
_CRC_POLY = const(0x1021)


def _crc_table_entry(index):
    crc = index << 8
    for _ in range(8):
        if crc & 0x8000:
            crc = ((crc << 1) ^ _CRC_POLY) & 0xFFFF
        else:
            crc = (crc << 1) & 0xFFFF
    return crc


# Built once at import (512 bytes): one lookup per message byte instead of 8 shifts.
_CRC_TABLE = array("H", [_crc_table_entry(i) for i in range(256)])


def _hex_table():
    table = bytearray(b"\xff" * 256)
    for i in range(10):
        table[0x30 + i] = i  # '0'..'9'
    for i in range(6):
        table[0x41 + i] = 10 + i  # 'A'..'F'
        table[0x61 + i] = 10 + i  # 'a'..'f'
    return table


# Hex digit value of every byte, 0xFF for "not a hex digit".
_HEX_VALUE = _hex_table()

_CHAR_START = const(0x3E)  # '>'
_CHAR_LF = const(0x0A)
_CHAR_CR = const(0x0D)
_NOT_HEX = const(0xFF)


def pack_samples_header(buf, flags, n_samples, seq, first_sample_index, tick_us):
    """Write the 16-byte SAMPLES header into buf[0:16]; the samples follow at buf[16]."""
    struct.pack_into(
        _SAMPLES_HEADER_FMT,
        buf,
        0,
        VERSION,
        MSG_SAMPLES,
        flags,
        n_samples,
        seq,
        first_sample_index,
        tick_us,
    )


def pack_response(buf, opcode, token, result):
    """Write the 5-byte RESPONSE header into buf[0:5]; returns 5 (the payload goes after)."""
    buf[0] = VERSION
    buf[1] = MSG_RESPONSE
    buf[2] = opcode
    buf[3] = token
    buf[4] = result
    return RESPONSE_BYTES


def pack_status(
    buf,
    offset,
    flags,
    battery_mv,
    uptime_s,
    fifo_overflows,
    frames_dropped,
    notify_backoffs,
    i2c_errors,
    imu_reinits,
    next_seq,
    next_sample_index,
    fw_version,
    boot_id,
):
    """Write a STATUS message at buf[offset:]; returns its length (44).

    fw_version is (major, minor, patch).
    """
    struct.pack_into(
        _STATUS_FMT,
        buf,
        offset,
        VERSION,
        MSG_STATUS,
        flags,
        battery_mv,
        uptime_s,
        fifo_overflows,
        frames_dropped,
        notify_backoffs,
        i2c_errors,
        imu_reinits,
        next_seq,
        next_sample_index,
        fw_version[0],
        fw_version[1],
        fw_version[2],
        VERSION,
        boot_id,
    )
    return STATUS_BYTES


def pack_info(
    buf,
    offset,
    fw_version,
    imu_kind,
    board,
    odr_hz,
    accel_range_g,
    gyro_range_dps,
    dlpf_hz,
    accel_lsb_per_g,
    gyro_lsb_per_dps_x10,
    samples_per_frame,
    ring_frames,
    boot_id,
    att_mtu,
    name,
):
    """Write an INFO message at buf[offset:]; returns its length (27 + len(name)).

    name is the device name as bytes (ASCII, at most 20). Pass a bytes object
    made once at start: it is copied byte by byte, so nothing is allocated.
    """
    name_len = len(name)
    if name_len > INFO_NAME_MAX:
        raise ValueError("name longer than 20 bytes")
    struct.pack_into(
        _INFO_FMT,
        buf,
        offset,
        VERSION,
        MSG_INFO,
        fw_version[0],
        fw_version[1],
        fw_version[2],
        imu_kind,
        board,
        odr_hz,
        accel_range_g,
        gyro_range_dps,
        dlpf_hz,
        accel_lsb_per_g,
        gyro_lsb_per_dps_x10,
        samples_per_frame,
        ring_frames,
        boot_id,
        att_mtu,
        0,
        name_len,
    )
    at = offset + INFO_BASE_BYTES
    for i in range(name_len):
        buf[at + i] = name[i]
    return INFO_BASE_BYTES + name_len


def samples_per_frame_for_mtu(att_mtu):
    """Samples that fit one notification at this ATT MTU: min(19, (mtu - 3 - 16) // 12), at least 1."""
    n = (att_mtu - _ATT_NOTIFY_OVERHEAD - HEADER_BYTES) // SAMPLE_BYTES
    if n > MAX_SAMPLES:
        return MAX_SAMPLES
    if n < 1:
        return 1
    return n


def crc16(buf, n, crc=0xFFFF):
    """CRC-16/CCITT-FALSE of buf[0:n], continuing from crc (0xFFFF starts a new one)."""
    table = _CRC_TABLE
    for i in range(n):
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ buf[i]) & 0xFF]
    return crc


def serial_encoded_max(n):
    """Bytes serial_encode can write for an n-byte message (size of its `out` buffer)."""
    # n + 2 CRC bytes, one COBS code byte per started 254-byte block, the 0x00 delimiter.
    return n + 2 + 1 + (n + 2) // 254 + 1


def serial_encode(msg, n, out):
    """Frame msg[0:n] for the serial line into out; returns the bytes written.

    Appends the CRC-16 of msg[0:n] (little-endian), COBS-encodes the result and
    ends it with the single 0x00 delimiter (docs/protocol.md, 8). The CRC is
    computed in the same pass as the encoding. out needs serial_encoded_max(n) bytes.
    """
    table = _CRC_TABLE
    crc = 0xFFFF
    code_at = 0  # where the current block's code byte goes
    w = 1  # next data byte goes to out[w]
    code = 1  # 1 + data bytes in the current block
    for i in range(n):
        b = msg[i]
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ b) & 0xFF]
        if b:
            out[w] = b
            w += 1
            code += 1
            if code == 0xFF:
                # A full block of 254 non-zero bytes carries no implied zero. The CRC
                # still follows, so a new block always starts here.
                out[code_at] = 0xFF
                code_at = w
                w += 1
                code = 1
        else:
            out[code_at] = code
            code_at = w
            w += 1
            code = 1
    # The two CRC bytes, low first, through the same encoder.
    for k in range(2):
        b = (crc & 0xFF) if k == 0 else (crc >> 8)
        if b:
            out[w] = b
            w += 1
            code += 1
            if code == 0xFF:
                out[code_at] = 0xFF
                code = 1
                if k == 0:
                    code_at = w
                    w += 1
                else:
                    # The data ends with a full block: no empty block after it
                    # (the minimal encoding).
                    code_at = -1
        else:
            out[code_at] = code
            code_at = w
            w += 1
            code = 1
    if code_at >= 0:
        out[code_at] = code
    out[w] = 0
    return w + 1


class LineDecoder:
    """Assembles host->device command lines from the serial input (docs/protocol.md, 8).

    A line is '>' + hex(command + CRC-16 LE) ending in '\\n' (or '\\r'); other
    characters between lines are ignored. feed() returns 0 while no line has
    ended, the command's length (bytes in self.command) for a good line, or -1
    for a bad one (bad hex, odd digits, bad CRC, no command byte, longer than
    max_line characters, or cut short by a new '>').

    feed() stops at the end of the first line it completes and keeps the rest
    of that chunk: after a line, call feed(data, 0) until it returns 0 to get
    the lines that arrived in the same chunk.
    """

    def __init__(self, max_line=600):
        self.max_line = max_line
        # Decoded bytes of the current line: command then its 2 CRC bytes.
        self.command = bytearray(max_line // 2)
        # Input that followed a completed line, processed before new data.
        self._backlog = bytearray(max_line)
        self._backlog_start = 0
        self._backlog_end = 0
        # Bytes lost because the backlog was full; the line they belonged to is reported bad.
        self.bytes_dropped = 0
        self._hole = False  # bytes were dropped at the end of the backlog
        self._in_line = False
        self._line_chars = 0  # characters of the current line, '>' included
        self._n_bytes = 0  # decoded bytes so far
        self._high_nibble = -1  # first digit of a pair, -1 if none pending
        self._bad = False
        self._stop = 0  # where _scan stopped in the buffer it was given

    @property
    def pending(self):
        """Bytes kept from an earlier chunk, not yet looked at."""
        return self._backlog_end - self._backlog_start

    def reset(self):
        """Forget any partial line and kept input."""
        self._backlog_start = self._backlog_end = 0
        self._hole = False
        self._in_line = False

    def feed(self, data, n):
        """Consume data[0:n]; returns 0, a command length (> 0) or -1 (see the class)."""
        if self._backlog_end > self._backlog_start:
            result = self._scan(self._backlog, self._backlog_start, self._backlog_end)
            self._backlog_start = self._stop
            if result:
                self._keep(data, 0, n)
                return result
            self._backlog_start = self._backlog_end = 0
            if self._hole:
                # Bytes were dropped right here: a line open across the gap is bad.
                self._hole = False
                self._bad = self._in_line
        result = self._scan(data, 0, n)
        if result:
            self._keep(data, self._stop, n)
        return result

    def _keep(self, data, start, end):
        # Move what is left of the backlog to its front, then append data[start:end].
        backlog = self._backlog
        kept = self._backlog_end - self._backlog_start
        if self._backlog_start:
            src = self._backlog_start
            for i in range(kept):
                backlog[i] = backlog[src + i]
        room = len(backlog) - kept
        count = end - start
        if self._hole:
            # Input after a hole is dropped until the backlog drains, so the stream
            # has one gap, at the end of the backlog.
            room = 0
        if count > room:
            self.bytes_dropped += count - room
            count = room
            self._hole = True
        for i in range(count):
            backlog[kept + i] = data[start + i]
        self._backlog_start = 0
        self._backlog_end = kept + count

    def _scan(self, data, start, end):
        # Runs the line state machine over data[start:end]; stops after a completed line.
        hex_value = _HEX_VALUE
        command = self.command
        max_line = self.max_line
        in_line = self._in_line
        line_chars = self._line_chars
        n_bytes = self._n_bytes
        high = self._high_nibble
        bad = self._bad
        result = 0
        i = start
        while i < end:
            c = data[i]
            i += 1
            if not in_line:
                if c == _CHAR_START:
                    in_line = True
                    line_chars = 1
                    n_bytes = 0
                    high = -1
                    bad = False
                continue
            if c == _CHAR_LF or c == _CHAR_CR:
                in_line = False
                result = self._finish(n_bytes, high, bad)
                break
            if c == _CHAR_START:
                # A new line began before this one ended: this one is bad, the new
                # one is kept so a lost '\n' costs one command, not two.
                line_chars = 1
                n_bytes = 0
                high = -1
                bad = False
                result = -1
                break
            line_chars += 1
            if bad:
                continue
            if line_chars > max_line:
                bad = True
                continue
            v = hex_value[c]
            if v == _NOT_HEX:
                bad = True
            elif high < 0:
                high = v
            else:
                command[n_bytes] = (high << 4) | v
                n_bytes += 1
                high = -1
        self._in_line = in_line
        self._line_chars = line_chars
        self._n_bytes = n_bytes
        self._high_nibble = high
        self._bad = bad
        self._stop = i
        return result

    def _finish(self, n_bytes, high, bad):
        # A finished line: at least one command byte and the CRC, in whole bytes.
        if bad or high >= 0 or n_bytes < 3:
            return -1
        n = n_bytes - 2
        command = self.command
        if crc16(command, n) != command[n] | (command[n + 1] << 8):
            return -1
        return n
