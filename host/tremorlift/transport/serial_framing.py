"""USB serial framing (docs/protocol.md section 8): CRC-16, COBS, the frame reader, command lines.

Device -> host: message + CRC-16/CCITT-FALSE (little-endian), COBS-encoded, then one 0x00.
Host -> device: ``>`` + hex(command + CRC-16 LE) + ``\\n``.
"""

from __future__ import annotations

import binascii
import struct
from collections import Counter

from tremorlift.protocol import MSG_NAMES, VERSION, ProtocolError

CRC_INIT = 0xFFFF
CRC_BYTES = 2
DELIMITER = 0x00
LINE_START = ord(">")
LINE_END = ord("\n")
MAX_LINE_CHARS = 600  # the firmware answers longer lines BAD_LENGTH
# Longest device -> host message in version 1 is a 244-byte SAMPLES frame; RESPONSE/STATUS/INFO
# are well under 100 bytes but may grow by appended fields. 1 KiB of encoded bytes leaves room
# for both and still bounds what a run of garbage without 0x00 can make the reader hold.
MAX_ENCODED_FRAME_BYTES = 1024
_CRC = struct.Struct("<H")


def crc16(data: bytes | bytearray | memoryview, crc: int = CRC_INIT) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR).

    binascii.crc_hqx is exactly this polynomial, unreflected, with a caller-chosen initial value.
    """
    return binascii.crc_hqx(bytes(data), crc)


def cobs_encode(data: bytes | bytearray | memoryview) -> bytes:
    """COBS-encode (without the trailing delimiter): the result contains no 0x00."""
    out = bytearray()
    for chunk in bytes(data).split(b"\x00"):
        # Each run between zeros becomes code (len + 1) + run; the zero is implied by the next
        # code. Runs of 254 or more go out as 0xFF blocks, which imply no zero.
        while len(chunk) >= 254:
            out.append(0xFF)
            out += chunk[:254]
            chunk = chunk[254:]
        out.append(len(chunk) + 1)
        out += chunk
    return bytes(out)


def cobs_decode(data: bytes | bytearray | memoryview) -> bytes:
    """Decode one COBS frame (without its delimiter); ProtocolError('bad_cobs') if malformed."""
    src = bytes(data)
    n = len(src)
    if n == 0:
        raise ProtocolError("bad_cobs", "empty COBS frame")
    out = bytearray()
    i = 0
    while i < n:
        code = src[i]
        if code == 0:
            raise ProtocolError("bad_cobs", f"0x00 inside a COBS frame at byte {i}")
        end = i + code
        if end > n:
            raise ProtocolError(
                "bad_cobs", f"COBS code {code} at byte {i} runs past the end of the {n}-byte frame"
            )
        block = src[i + 1 : end]
        if 0 in block:
            raise ProtocolError("bad_cobs", f"0x00 inside a COBS frame after byte {i}")
        out += block
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encode_frame(message: bytes | bytearray | memoryview) -> bytes:
    """What the device sends for ``message`` on serial: COBS(message + CRC LE) + 0x00."""
    msg = bytes(message)
    return cobs_encode(msg + _CRC.pack(crc16(msg))) + b"\x00"


def decode_frame(encoded: bytes | bytearray | memoryview) -> bytes:
    """One COBS frame (delimiter removed) -> the message; checks COBS, CRC and the header."""
    raw = cobs_decode(encoded)
    if len(raw) < CRC_BYTES + 2:
        raise ProtocolError(
            "truncated", f"serial frame of {len(raw)} bytes is too short for a message and CRC"
        )
    msg, (crc_rx,) = raw[:-CRC_BYTES], _CRC.unpack_from(raw, len(raw) - CRC_BYTES)
    crc_calc = crc16(msg)
    if crc_rx != crc_calc:
        raise ProtocolError(
            "bad_crc", f"serial frame CRC 0x{crc_rx:04X}, computed 0x{crc_calc:04X}"
        )
    if msg[0] != VERSION:
        raise ProtocolError(
            "bad_version", f"serial frame carries protocol_version {msg[0]}, not {VERSION}"
        )
    if msg[1] not in MSG_NAMES:
        raise ProtocolError("bad_type", f"serial frame carries unknown msg_type 0x{msg[1]:02X}")
    return msg


class FrameReader:
    """Splits a device's serial byte stream into messages (CRC and header checked, CRC removed).

    Resynchronises at every 0x00: a partial frame at the start, a stray ``print`` or line noise
    costs at most the frame it touches. Memory is bounded: a run of more than
    ``max_frame_bytes`` without a delimiter is dropped (counted once in ``corrupt``) rather than
    accumulated.
    """

    def __init__(self, max_frame_bytes: int = MAX_ENCODED_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._discarding = False  # inside an overlong run: skip to the next delimiter
        self.messages = 0
        self.corrupt = 0
        self.corrupt_by_kind: Counter[str] = Counter()
        self.bytes_discarded = 0
        self.last_error: str | None = None
        # Versions we refused, so a caller can say "device speaks version N" once, not per frame.
        self.unknown_versions: set[int] = set()

    def _reject(self, kind: str, message: str, nbytes: int) -> None:
        self.corrupt += 1
        self.corrupt_by_kind[kind] += 1
        self.bytes_discarded += nbytes
        self.last_error = message

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Consume bytes; return the complete, valid messages they finish (in order)."""
        out: list[bytes] = []
        chunk = bytes(data)
        parts = chunk.split(b"\x00")
        # parts[:-1] each end at a delimiter; parts[-1] is an unfinished tail.
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if self._discarding:
                if last:
                    self.bytes_discarded += len(part)
                else:
                    self.bytes_discarded += len(part) + 1
                    self._discarding = False
                continue
            if last:
                self._buf += part
                if len(self._buf) > self.max_frame_bytes:
                    self._reject(
                        "too_long",
                        f"{len(self._buf)} bytes without a frame delimiter",
                        len(self._buf),
                    )
                    self._buf.clear()
                    self._discarding = True
                continue
            if self._buf:
                self._buf += part
                frame = bytes(self._buf)
                self._buf.clear()
            else:
                frame = part
            if not frame:
                continue  # back-to-back delimiters: an empty frame carries nothing and is harmless
            if len(frame) > self.max_frame_bytes:
                self._reject("too_long", f"frame of {len(frame)} encoded bytes", len(frame) + 1)
                continue
            try:
                msg = decode_frame(frame)
            except ProtocolError as exc:
                if exc.kind == "bad_version":
                    self.unknown_versions.add(cobs_decode(frame)[0])
                self._reject(exc.kind, str(exc), len(frame) + 1)
                continue
            self.messages += 1
            out.append(msg)
        return out

    @property
    def pending_bytes(self) -> int:
        """Bytes held waiting for a delimiter (never more than ``max_frame_bytes``)."""
        return len(self._buf)


def encode_command_line(command: bytes | bytearray | memoryview) -> bytes:
    """A command as the serial line the firmware reads: ``>`` hex(command + CRC LE) ``\\n``."""
    cmd = bytes(command)
    if len(cmd) < 2:
        raise ProtocolError("truncated", f"command of {len(cmd)} bytes has no opcode and token")
    body = (cmd + _CRC.pack(crc16(cmd))).hex().upper().encode("ascii")
    if len(body) + 1 > MAX_LINE_CHARS:
        raise ProtocolError(
            "too_long", f"command of {len(cmd)} bytes makes a line over {MAX_LINE_CHARS} characters"
        )
    return b">" + body + b"\n"


def decode_command_line(line: bytes | bytearray | memoryview) -> bytes:
    """One line (``>`` .. optional ``\\r``/``\\n``) -> the command bytes, CRC checked."""
    text = bytes(line).rstrip(b"\r\n")
    if len(text) > MAX_LINE_CHARS:
        raise ProtocolError(
            "too_long", f"command line of {len(text)} characters (at most {MAX_LINE_CHARS})"
        )
    if not text.startswith(b">"):
        raise ProtocolError("bad_hex", "command line does not start with '>'")
    hex_part = text[1:]
    try:
        if len(hex_part) % 2:
            raise ValueError("odd number of hex digits")
        raw = bytes.fromhex(hex_part.decode("ascii"))
        if len(raw) * 2 != len(hex_part):
            raise ValueError("whitespace inside the hex")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("bad_hex", f"command line is not hex: {exc}") from None
    if len(raw) < 2 + CRC_BYTES:
        raise ProtocolError(
            "truncated", f"command line carries {len(raw)} bytes, at least 4 needed"
        )
    cmd, (crc_rx,) = raw[:-CRC_BYTES], _CRC.unpack_from(raw, len(raw) - CRC_BYTES)
    if crc16(cmd) != crc_rx:
        raise ProtocolError(
            "bad_crc", f"command line CRC 0x{crc_rx:04X}, computed 0x{crc16(cmd):04X}"
        )
    return cmd
