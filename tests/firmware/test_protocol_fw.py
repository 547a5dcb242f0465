"""The firmware's protocol encoder (firmware/lib/tremorlift_fw/protocol.py) against docs/protocol.md.

CPython unit tests with bytes written out by hand from the document, the golden vectors in
tests/vectors, and the same checks plus zero-allocation proofs under real MicroPython.
"""

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from micropython_runner import run_micropython
from on_micropython import protocol_checks as checks  # tests/firmware is on sys.path
from tremorlift_fw import protocol as p

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
RUNNER = ROOT / "tests" / "mpy" / "run.mjs"


# --- independent references (bit by bit, straight from the definitions) -------------------


def crc16_reference(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def cobs_decode_reference(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        assert code != 0, "0x00 inside a COBS frame"
        block = data[i + 1 : i + code]
        assert len(block) == code - 1, "COBS block runs past the end"
        out += block
        i += code
        if code != 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def encode(msg: bytes) -> bytes:
    out = bytearray(p.serial_encoded_max(len(msg)))
    n = p.serial_encode(msg, len(msg), out)
    assert n <= len(out)
    return bytes(out[:n])


def crc_le(msg: bytes) -> bytes:
    return struct.pack("<H", crc16_reference(msg))


def line_for(command: bytes, *, lower: bool = False) -> bytes:
    text = (command + crc_le(command)).hex()
    return b">" + (text if lower else text.upper()).encode() + b"\n"


# --- constants ------------------------------------------------------------------------------


def test_constants_match_the_document():
    assert (p.VERSION, p.MSG_SAMPLES, p.MSG_RESPONSE, p.MSG_STATUS, p.MSG_INFO) == (1, 1, 2, 3, 4)
    assert (p.FLAG_RESENT, p.FLAG_GAP_BEFORE, p.FLAG_STREAM_START) == (1, 2, 4)
    assert (p.HEADER_BYTES, p.SAMPLE_BYTES, p.MAX_SAMPLES) == (16, 12, 19)
    assert (p.STATUS_BYTES, p.INFO_BASE_BYTES, p.RESPONSE_BYTES) == (44, 27, 5)
    ops = [p.OP_START, p.OP_STOP, p.OP_CONFIGURE, p.OP_BUZZ, p.OP_IDENTIFY, p.OP_STATUS_NOW]
    ops += [p.OP_SET_TRANSPORT, p.OP_RESEND, p.OP_GET_INFO, p.OP_REBOOT]
    assert ops == list(range(1, 11))
    results = [p.RES_OK, p.RES_UNKNOWN_OPCODE, p.RES_BAD_LENGTH, p.RES_OUT_OF_RANGE]
    results += [p.RES_BAD_STATE, p.RES_NOT_AVAILABLE, p.RES_NOT_AUTHORISED]
    results += [p.RES_HARDWARE_ERROR, p.RES_BUSY]
    assert results == list(range(9))
    st_flags = [p.ST_STREAMING, p.ST_IMU_MISSING, p.ST_IMU_FAULT, p.ST_LOW_BATTERY]
    st_flags += [p.ST_SAFE_MODE, p.ST_SERIAL_TRANSPORT, p.ST_FIFO_OVERFLOW, p.ST_ENCRYPTED]
    assert st_flags == [1 << b for b in range(8)]
    assert p.BUZZ_PATTERNS_MS == {
        1: (80,),
        2: (150, 100, 150),
        3: (300, 150, 300, 150, 300),
        4: (40,),
    }


# --- CRC ----------------------------------------------------------------------------------


def test_crc16_check_value():
    assert p.crc16(b"123456789", 9) == 0x29B1


def test_crc16_uses_only_the_first_n_bytes_and_chains():
    data = b"123456789garbage"
    assert p.crc16(data, 9) == 0x29B1
    assert p.crc16(data, 0) == 0xFFFF
    assert p.crc16(b"6789", 4, p.crc16(b"12345", 5)) == 0x29B1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_crc16_matches_the_bitwise_definition(data):
    assert p.crc16(bytearray(data), len(data)) == crc16_reference(data)
    assert p.crc16(memoryview(data), len(data)) == crc16_reference(data)


# --- serial framing (CRC + COBS) -------------------------------------------------------------


def test_serial_encode_empty_message():
    # Only the CRC of nothing (0xFFFF): one block of two bytes, then the delimiter.
    assert encode(b"") == bytes([0x03, 0xFF, 0xFF, 0x00])


def test_serial_encode_all_zero_message():
    msg = bytes(5)
    c0, c1 = crc_le(msg)
    assert c0 and c1  # both CRC bytes non-zero for this input: one final 3-byte block
    # Every zero becomes a code 0x01 (empty block), the CRC closes the last block.
    assert encode(msg) == bytes([1, 1, 1, 1, 1, 3, c0, c1, 0])


def _run_with_nonzero_crc(length: int, suffix: bytes = b"") -> bytes:
    # A run of one non-zero byte (then suffix) whose CRC has no zero byte, so the
    # block boundaries below are exactly where the test says.
    for fill in range(1, 256):
        msg = bytes([fill]) * length + suffix
        if 0 not in crc_le(msg):
            return msg
    raise AssertionError("no fill byte found")


def test_serial_encode_254_byte_run_ends_without_an_extra_block():
    msg = _run_with_nonzero_crc(252)  # message + CRC = exactly 254 non-zero bytes
    assert encode(msg) == b"\xff" + msg + crc_le(msg) + b"\x00"


def test_serial_encode_255_byte_run_spills_into_a_second_block():
    msg = _run_with_nonzero_crc(253)  # 255 non-zero bytes: 254 in a full block, 1 after
    data = msg + crc_le(msg)
    assert encode(msg) == b"\xff" + data[:254] + b"\x02" + data[254:] + b"\x00"


def test_serial_encode_zero_right_after_a_full_block():
    msg = _run_with_nonzero_crc(254, b"\x00")
    # 0xFF block (no implied zero), then the zero as an empty block, then the CRC block.
    expected = b"\xff" + msg[:254] + b"\x01" + b"\x03" + crc_le(msg) + b"\x00"
    assert encode(msg) == expected


def test_serial_encode_document_example():
    msg = (VECTORS / "samples_basic.bin").read_bytes()
    framed = encode(msg)
    assert framed == (VECTORS / "serial_samples_basic.bin").read_bytes()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_serial_encode_round_trips(msg):
    framed = encode(msg)
    assert framed[-1] == 0
    assert 0 not in framed[:-1]
    assert len(framed) <= p.serial_encoded_max(len(msg))
    assert cobs_decode_reference(framed[:-1]) == msg + crc_le(msg)


def test_serial_encode_reads_only_n_bytes_and_writes_into_a_larger_buffer():
    msg = bytearray(b"\x01\x02\x00\x03trailing")
    out = bytearray(b"\xaa" * 64)
    n = p.serial_encode(msg, 4, out)
    assert bytes(out[:n]) == encode(b"\x01\x02\x00\x03")
    assert out[n:] == b"\xaa" * (64 - n)


# --- SAMPLES header -------------------------------------------------------------------------


def test_pack_samples_header_document_example():
    buf = bytearray(b"\xee" * 40)
    p.pack_samples_header(buf, p.FLAG_STREAM_START, 2, 42, 1000, 1_000_000)
    # docs/protocol.md section 4, annotated example.
    assert buf[:16] == bytes.fromhex("01010402 2a000000 e8030000 40420f00")
    assert buf[16:] == b"\xee" * 24  # the samples area is left alone


def test_pack_samples_header_extremes():
    buf = bytearray(16)
    flags = p.FLAG_RESENT | p.FLAG_GAP_BEFORE
    p.pack_samples_header(buf, flags, 19, 0xFFFFFFFF, 0x89ABCDEF, (1 << 30) - 1)
    assert buf == bytes.fromhex("01010313 ffffffff efcdab89 ffffff3f")


# --- RESPONSE -------------------------------------------------------------------------------


def test_pack_response():
    buf = bytearray(8)
    assert p.pack_response(buf, p.OP_RESEND, 0xA5, p.RES_BUSY) == 5
    assert buf == bytes([0x01, 0x02, 0x08, 0xA5, 0x08, 0, 0, 0])


def test_pack_response_bad_line():
    buf = bytearray(5)
    p.pack_response(buf, 0, 0, p.RES_BAD_LENGTH)
    assert buf == bytes.fromhex("0102000002")


# --- STATUS ---------------------------------------------------------------------------------

STATUS_ARGS = dict(
    flags=p.ST_STREAMING | p.ST_SERIAL_TRANSPORT,
    battery_mv=4012,
    uptime_s=3600,
    fifo_overflows=1,
    frames_dropped=2,
    notify_backoffs=0x01020304,
    i2c_errors=5,
    imu_reinits=6,
    next_seq=0xDEADBEEF,
    next_sample_index=70000,
    fw_version=(0, 1, 9),
    boot_id=0x1234,
)
# docs/protocol.md section 7, field by field.
STATUS_BYTES = bytes.fromhex(
    "01 03"  # version, STATUS
    "21 00"  # flags: STREAMING | SERIAL_TRANSPORT
    "ac 0f"  # battery_mv 4012
    "10 0e 00 00"  # uptime_s 3600
    "01 00 00 00"  # fifo_overflows
    "02 00 00 00"  # frames_dropped
    "04 03 02 01"  # notify_backoffs
    "05 00 00 00"  # i2c_errors
    "06 00 00 00"  # imu_reinits
    "ef be ad de"  # next_seq
    "70 11 01 00"  # next_sample_index 70000
    "00 01 09"  # firmware 0.1.9
    "01"  # protocol_version again
    "34 12"  # boot_id
)


def _pack_status(buf, offset):
    a = STATUS_ARGS
    return p.pack_status(
        buf, offset, a["flags"], a["battery_mv"], a["uptime_s"], a["fifo_overflows"],
        a["frames_dropped"], a["notify_backoffs"], a["i2c_errors"], a["imu_reinits"],
        a["next_seq"], a["next_sample_index"], a["fw_version"], a["boot_id"],
    )  # fmt: skip


def test_pack_status():
    assert len(STATUS_BYTES) == 44
    buf = bytearray(44)
    assert _pack_status(buf, 0) == 44
    assert buf == STATUS_BYTES


def test_pack_status_at_an_offset_after_a_response():
    buf = bytearray(60)
    n = p.pack_response(buf, p.OP_STATUS_NOW, 3, p.RES_OK)
    n += _pack_status(buf, n)
    assert n == 49
    assert buf[:n] == bytes.fromhex("0102060300") + STATUS_BYTES
    assert buf[n:] == bytes(11)


# --- INFO -----------------------------------------------------------------------------------

# docs/protocol.md section 7: an MPU-6050 on a classic ESP32, 200 Hz, +-8 g, +-1000 dps.
INFO_BYTES = (
    bytes.fromhex(
        "01 04"  # version, INFO
        "00 01 00"  # firmware 0.1.0
        "01"  # imu_kind MPU-6050
        "01"  # board ESP32
        "c8 00"  # odr_hz 200
        "08"  # accel_range_g
        "e8 03"  # gyro_range_dps 1000
        "62 00"  # dlpf_hz 98
        "00 10"  # accel_lsb_per_g 4096
        "48 01"  # gyro_lsb_per_dps_x10 328
        "13"  # samples_per_frame 19
        "2c 01"  # ring_frames 300
        "cd ab"  # boot_id
        "f7 00"  # att_mtu 247
        "00"  # reserved
        "07"  # name_len
    )
    + b"TL-00FF"
)


def _pack_info(buf, offset, name=b"TL-00FF"):
    return p.pack_info(
        buf, offset, (0, 1, 0), 1, 1, 200, 8, 1000, 98, 4096, 328, 19, 300, 0xABCD, 247, name
    )


def test_pack_info():
    buf = bytearray(64)
    assert _pack_info(buf, 0) == 34
    assert buf[:34] == INFO_BYTES
    assert buf[34:] == bytes(30)


def test_pack_info_as_a_configure_answer():
    buf = bytearray(80)
    n = p.pack_response(buf, p.OP_CONFIGURE, 9, p.RES_OK)
    n += _pack_info(buf, n, bytearray(b"TL-00FF"))
    assert buf[:n] == bytes.fromhex("0102030900") + INFO_BYTES


def test_pack_info_name_lengths():
    buf = bytearray(64)
    assert _pack_info(buf, 0, b"") == 27
    assert buf[26] == 0
    assert _pack_info(buf, 0, b"A" * 20) == 47
    assert buf[26] == 20 and buf[27:47] == b"A" * 20
    with pytest.raises(ValueError):
        _pack_info(buf, 0, b"A" * 21)


# --- samples per frame ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("att_mtu", "expected"),
    [(23, 1), (0, 1), (30, 1), (31, 1), (43, 2), (100, 6), (246, 18), (247, 19), (517, 19)],
)
def test_samples_per_frame_for_mtu(att_mtu, expected):
    assert p.samples_per_frame_for_mtu(att_mtu) == expected
    if att_mtu >= 31:  # a frame of that size fits the notification payload (MTU - 3)
        assert 16 + 12 * expected <= att_mtu - 3


# --- LineDecoder ------------------------------------------------------------------------------


def feed_all(dec: p.LineDecoder, data: bytes) -> list:
    """Feeds data in one chunk and drains every line; returns results with command bytes."""
    results = []
    r = dec.feed(data, len(data))
    while r:
        results.append(bytes(dec.command[:r]) if r > 0 else r)
        r = dec.feed(b"", 0)
    return results


def test_line_decoder_good_line_both_cases():
    cmd = bytes([p.OP_GET_INFO, 7])
    assert line_for(cmd) == b">090770D7\n"  # docs/protocol.md section 8 example + its CRC
    for lower in (False, True):
        dec = p.LineDecoder()
        line = line_for(cmd, lower=lower)
        assert dec.feed(line, len(line)) == 2
        assert dec.command[:2] == cmd


def test_line_decoder_returns_command_length_for_arguments():
    cmd = bytes([p.OP_CONFIGURE, 1]) + struct.pack("<HBHH", 400, 16, 2000, 0)
    dec = p.LineDecoder()
    assert feed_all(dec, line_for(cmd)) == [cmd]


def test_line_decoder_only_reads_n_bytes():
    dec = p.LineDecoder()
    data = bytearray(line_for(b"\x01\x02") + b">garbage")
    assert dec.feed(data, len(data) - 8) == 2
    assert dec.feed(data, 0) == 0


@pytest.mark.parametrize(
    "bad",
    [
        b">09G770D7\n",  # not hex
        b">0907 70D7\n",  # space inside
        b">09070D7\n",  # odd number of digits
        b">090770D6\n",  # wrong CRC
        b">\n",  # nothing
        b">FFFF\n",  # a CRC (of nothing) but no command byte
    ],
)
def test_line_decoder_bad_lines(bad):
    dec = p.LineDecoder()
    assert dec.feed(bad, len(bad)) == -1
    good = line_for(b"\x06\x01")
    assert dec.feed(good, len(good)) == 2  # the next line is unaffected


def test_line_decoder_one_byte_command_is_passed_on():
    # Too short to carry a token: the control layer answers it BAD_LENGTH with its opcode.
    dec = p.LineDecoder()
    assert feed_all(dec, line_for(b"\x09")) == [b"\x09"]


def test_line_decoder_length_limit():
    dec = p.LineDecoder(max_line=11)
    ok = line_for(b"\x01\x02\x03")  # '>' + 10 digits = 11 characters
    assert len(ok) == 12
    assert feed_all(dec, ok) == [b"\x01\x02\x03"]
    assert feed_all(dec, line_for(b"\x01\x02\x03\x04")) == [-1]
    assert feed_all(dec, ok) == [b"\x01\x02\x03"]


def test_line_decoder_default_limit_is_600_characters():
    dec = p.LineDecoder()
    cmd = bytes(range(1, 256)) + bytes(range(1, 43))  # 297 bytes + CRC = '>' + 598 digits
    line = line_for(cmd)
    assert len(line) - 1 == 599
    assert feed_all(dec, line) == [cmd]
    too_long = b">" + b"0" * 600 + b"\n"  # 601 characters before the newline
    assert feed_all(dec, too_long) == [-1]


def test_line_decoder_split_across_feeds():
    cmd = bytes([p.OP_RESEND, 4]) + struct.pack("<IH", 123456, 50)
    line = line_for(cmd)
    for cut in range(1, len(line)):
        dec = p.LineDecoder()
        assert dec.feed(line[:cut], cut) == 0
        rest = line[cut:]
        assert dec.feed(rest, len(rest)) == len(cmd)
        assert dec.command[: len(cmd)] == cmd
    dec = p.LineDecoder()
    got = [dec.feed(bytes([b]), 1) for b in line]
    assert got == [0] * (len(line) - 1) + [len(cmd)]


def test_line_decoder_ignores_noise_between_lines_and_accepts_crlf():
    a, b = line_for(b"\x01\x01"), line_for(b"\x02\x02")
    data = b"hello\x03\x00" + a[:-1] + b"\r\n" + b"junk\n" + b
    dec = p.LineDecoder()
    assert feed_all(dec, data) == [b"\x01\x01", b"\x02\x02"]


def test_line_decoder_several_lines_in_one_chunk_then_more_data():
    lines = [line_for(bytes([op, op])) for op in (1, 2, 3, 4)]
    dec = p.LineDecoder()
    chunk = lines[0] + lines[1] + lines[2][:4]
    assert dec.feed(chunk, len(chunk)) == 2
    assert dec.command[:2] == b"\x01\x01"
    # The caller reads again before draining: the kept bytes still come first.
    rest = lines[2][4:] + lines[3]
    assert dec.feed(rest, len(rest)) == 2
    assert dec.command[:2] == b"\x02\x02"
    assert dec.pending > 0
    assert dec.feed(b"", 0) == 2
    assert dec.command[:2] == b"\x03\x03"
    assert dec.feed(b"", 0) == 2
    assert dec.command[:2] == b"\x04\x04"
    assert dec.feed(b"", 0) == 0
    assert dec.pending == 0


def test_line_decoder_new_start_inside_a_line():
    # A lost newline costs the broken line (answered as bad) but not the next one.
    dec = p.LineDecoder()
    good = line_for(b"\x09\x07")
    data = b">0907" + good
    assert feed_all(dec, data) == [-1, b"\x09\x07"]


def test_line_decoder_backlog_overflow_reports_the_cut_line_bad():
    dec = p.LineDecoder(max_line=20)  # backlog of 20 bytes
    first = line_for(b"\x01\x01")  # 10 bytes
    second = line_for(b"\x02\x02\x02\x02")  # 14 bytes
    third = line_for(b"\x03\x03")
    chunk = first + second + second  # 28 bytes after the first line: 8 dropped
    assert dec.feed(chunk, len(chunk)) == 2
    assert dec.bytes_dropped == 38 - 10 - 20
    results = [dec.feed(b"", 0)]
    assert results == [4]  # the second line survived whole
    # The copy of the second line was cut: its remainder is lost, so it must come out bad.
    assert dec.feed(third, len(third)) == -1
    assert feed_all(dec, b"") == [b"\x03\x03"]


def test_line_decoder_reset_forgets_a_partial_line():
    dec = p.LineDecoder()
    dec.feed(b">0907", 5)
    dec.reset()
    line = line_for(b"\x05\x06\x0a")
    assert feed_all(dec, b"70D7\n" + line) == [b"\x05\x06\x0a"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=6),
    st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=20),
)
def test_line_decoder_any_chunking_gives_every_command(commands, cuts):
    stream = b"".join(line_for(c) for c in commands)
    dec = p.LineDecoder()
    got = []
    i = 0
    k = 0
    while i < len(stream):
        size = cuts[k % len(cuts)]
        k += 1
        chunk = bytearray(stream[i : i + size])
        i += size
        r = dec.feed(chunk, len(chunk))
        while r:
            got.append(bytes(dec.command[:r]) if r > 0 else r)
            r = dec.feed(chunk, 0)
    assert got == commands


# --- golden vectors (tests/vectors) -------------------------------------------------------------

ALL_VECTORS = checks.vector_names(str(VECTORS))
# Decode-only vectors (STATUS/INFO with appended bytes) are bytes a version-1 encoder never writes.
ENCODED_VECTORS = [
    name for name in ALL_VECTORS if not checks.load_vector(str(VECTORS), name)[0].get("decode_only")
]


def test_golden_vectors_are_present():
    prefixes = {name.split("_")[0] for name in ENCODED_VECTORS}
    assert prefixes == {"samples", "status", "info", "response", "serial"}


@pytest.mark.parametrize("name", ENCODED_VECTORS)
def test_golden_vector(name):
    assert checks.check_vector(str(VECTORS), name)


def test_golden_vectors_all_encoded():
    assert checks.check_vectors(str(VECTORS)) == len(ENCODED_VECTORS)


def test_invalid_command_lines_are_refused():
    assert checks.check_invalid_lines(str(VECTORS)) >= 4


@pytest.mark.parametrize("path", sorted(VECTORS.glob("command_*.bin")), ids=lambda q: q.stem)
def test_command_vectors_survive_the_line_decoder(path):
    cmd = path.read_bytes()
    dec = p.LineDecoder()
    assert feed_all(dec, line_for(cmd, lower=True) + line_for(cmd)) == [cmd, cmd]


# --- under real MicroPython ------------------------------------------------------------------


@pytest.mark.mpy
def test_under_micropython_vectors_and_zero_allocation():
    proc = run_micropython(
        Path(checks.__file__),
        mounts=((ROOT / "firmware" / "lib", "/lib"), (VECTORS, "/vectors")),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no-alloc calls 19" in proc.stdout
    assert proc.stdout.rstrip().endswith("OK")
