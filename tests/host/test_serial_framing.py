"""USB serial framing: CRC-16, COBS, the frame reader's resynchronisation and bounds, command lines."""

from __future__ import annotations

import random

import pytest
from tremorlift import protocol as p
from tremorlift.transport import serial_framing as sf


def _messages(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        rows = [[rng.randint(-32768, 32767) for _ in range(6)] for _ in range(rng.randint(1, 19))]
        out.append(
            p.encode_samples(rng.randint(0, 7), k, 19 * k, rng.randint(0, (1 << 30) - 1), rows)
        )
    return out


def test_crc16_check_value_and_chaining() -> None:
    assert sf.crc16(b"123456789") == 0x29B1
    assert sf.crc16(b"") == 0xFFFF
    assert sf.crc16(b"6789", sf.crc16(b"12345")) == 0x29B1


def test_crc16_against_a_bitwise_reference() -> None:
    def ref(data: bytes) -> int:
        crc = 0xFFFF
        for b in data:
            crc ^= b << 8
            for _ in range(8):
                crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
                crc &= 0xFFFF
        return crc

    rng = random.Random(3)
    for n in range(0, 300, 7):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert sf.crc16(data) == ref(data)


@pytest.mark.parametrize(
    ("data", "encoded"),
    [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255)) + b"\x01"),
        (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    ],
)
def test_cobs_known_encodings(data: bytes, encoded: bytes) -> None:
    assert sf.cobs_encode(data) == encoded
    assert sf.cobs_decode(encoded) == data


def test_cobs_decoder_accepts_a_final_full_block_without_trailer() -> None:
    # Encoders differ on whether a final 254-byte run gets an empty block after it; both decode.
    run = bytes(range(1, 255))
    assert sf.cobs_decode(b"\xff" + run) == run


@pytest.mark.parametrize("bad", [b"", b"\x05\x11\x22", b"\x02\x00", b"\x03\x11\x00"])
def test_cobs_decoder_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(p.ProtocolError) as e:
        sf.cobs_decode(bad)
    assert e.value.kind == "bad_cobs"


def test_reader_splits_a_stream_fed_in_any_chunking() -> None:
    msgs = _messages(60)
    stream = b"".join(sf.encode_frame(m) for m in msgs)
    rng = random.Random(1)
    for _ in range(5):
        reader = sf.FrameReader()
        got: list[bytes] = []
        pos = 0
        while pos < len(stream):
            step = rng.randint(1, 300)
            got += reader.feed(stream[pos : pos + step])
            pos += step
        assert got == msgs
        assert reader.corrupt == 0 and reader.messages == len(msgs)
    # one byte at a time
    reader = sf.FrameReader()
    got = [m for b in stream for m in reader.feed(bytes([b]))]
    assert got == msgs


def test_reader_resynchronises_after_garbage_and_mid_stream_start() -> None:
    msgs = _messages(10)
    frames = [sf.encode_frame(m) for m in msgs]
    reader = sf.FrameReader()
    # Start in the middle of frame 0, then a stray print between frames 3 and 4.
    stream = frames[0][7:] + b"".join(frames[1:4]) + b"Traceback: oops\r\n" + b"".join(frames[4:])
    got = reader.feed(stream)
    # Lost: the partial frame 0, and frame 4 (the print ran into it: no 0x00 between them).
    assert got == msgs[1:4] + msgs[5:]
    assert reader.corrupt == 2
    # A print that ends with its own 0x00 costs nothing but itself.
    reader = sf.FrameReader()
    got = reader.feed(frames[0] + b"noise\x00" + frames[1])
    assert got == msgs[:2] and reader.corrupt == 1


def test_reader_bounds_its_buffer_on_an_endless_run_without_delimiter() -> None:
    reader = sf.FrameReader(max_frame_bytes=512)
    rng = random.Random(5)
    for _ in range(200):
        junk = bytes(rng.randrange(1, 256) for _ in range(997))
        assert reader.feed(junk) == []
        assert reader.pending_bytes <= 512
    assert reader.corrupt == 1  # one overlong run counted once, not per chunk
    assert reader.corrupt_by_kind["too_long"] == 1
    assert reader.bytes_discarded >= 200 * 997 - 512
    # It recovers at the next delimiter: the tail of the junk run is dropped with it.
    msg = _messages(1)[0]
    assert reader.feed(b"\x00" + sf.encode_frame(msg)) == [msg]


def test_reader_drops_an_overlong_frame_that_arrives_whole() -> None:
    reader = sf.FrameReader(max_frame_bytes=300)
    msg = _messages(1)[0]
    assert reader.feed(bytes([1]) * 400 + b"\x00" + sf.encode_frame(msg)) == [msg]
    assert reader.corrupt_by_kind["too_long"] == 1


def test_reader_checks_header_version_once_per_frame_and_remembers_it() -> None:
    msg = bytearray(_messages(1)[0])
    msg[0] = 7
    reader = sf.FrameReader()
    assert reader.feed(sf.encode_frame(bytes(msg)) * 3) == []
    assert reader.corrupt_by_kind["bad_version"] == 3
    assert reader.unknown_versions == {7}
    # an unknown message type within version 1 is dropped too
    assert reader.feed(sf.encode_frame(b"\x01\x09abc")) == []
    assert reader.corrupt_by_kind["bad_type"] == 1


def test_reader_passes_all_message_types() -> None:
    info = p.DeviceInfo((1, 0, 0), 3, 255, 200, 8, 1000, 80, 4096, 328, 19, 512, 7, 247, "TL-0001")
    msgs = [p.encode_info(info), p.encode_response(p.OP_START, 3, p.RES_OK), _messages(1)[0]]
    reader = sf.FrameReader()
    assert reader.feed(b"".join(sf.encode_frame(m) for m in msgs)) == msgs


def test_command_line_round_trip_and_format() -> None:
    for cmd in [
        p.start(1),
        p.configure(400, 16, 2000, 0, token=200),
        p.resend(123456, 1024, token=3),
    ]:
        line = sf.encode_command_line(cmd)
        assert line.startswith(b">") and line.endswith(b"\n") and line.count(b"\n") == 1
        assert all(c in b"0123456789ABCDEF" for c in line[1:-1])
        assert sf.decode_command_line(line) == cmd
        assert sf.decode_command_line(line.replace(b"\n", b"\r\n")) == cmd
    with pytest.raises(p.ProtocolError):
        sf.encode_command_line(b"\x01")
    with pytest.raises(p.ProtocolError) as e:
        sf.encode_command_line(bytes(300))
    assert e.value.kind == "too_long"
    with pytest.raises(p.ProtocolError) as e:
        sf.decode_command_line(b"0907FFFF\n")
    assert e.value.kind == "bad_hex"
    with pytest.raises(p.ProtocolError) as e:
        sf.decode_command_line(b">09 70D7\n")
    assert e.value.kind == "bad_hex"
