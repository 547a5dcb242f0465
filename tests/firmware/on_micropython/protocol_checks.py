# Checks of the firmware protocol encoder that run unchanged under CPython and
# real MicroPython. test_protocol_fw.py imports this module under CPython (with
# the `micropython` const shim) and runs it as a script under the MicroPython
# WebAssembly port, where it also proves that the hot-path functions allocate
# nothing (micropython.heap_lock() turns any allocation into MemoryError).
#
# Under MicroPython: node tests/mpy/run.mjs --mount firmware/lib:/lib --path /lib
#   --mount tests/vectors:/vectors tests/firmware/on_micropython/protocol_checks.py
import json
import os
import struct
import sys

from tremorlift_fw import protocol as p

# Vector families this encoder produces (command_* and invalid/ are inputs to the device).
ENCODED_PREFIXES = ("samples_", "status_", "info_", "response_", "serial_")


class CheckFailed(Exception):
    pass


def _expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def load_vector(vectors_dir, name):
    with open(vectors_dir + "/" + name + ".json") as f:
        fields = json.load(f)
    with open(vectors_dir + "/" + name + ".bin", "rb") as f:
        data = f.read()
    return fields, data


def vector_names(vectors_dir):
    names = []
    for entry in os.listdir(vectors_dir):
        if not entry.endswith(".json"):
            continue
        for prefix in ENCODED_PREFIXES:
            if entry.startswith(prefix):
                names.append(entry[:-5])
    names.sort()
    return names


def _name_bytes(fields):
    return fields["name"].encode()


def encode_message(vectors_dir, fields):
    """Build the message the vector's fields describe with the firmware encoder."""
    kind = fields["msg_type"]
    buf = bytearray(512)
    if kind == "SAMPLES":
        n = fields["n_samples"]
        p.pack_samples_header(
            buf, fields["flags"], n, fields["seq"], fields["first_sample_index"], fields["tick_us"]
        )
        for k in range(n):
            row = fields["samples"][k]
            struct.pack_into(
                "<hhhhhh",
                buf,
                p.HEADER_BYTES + p.SAMPLE_BYTES * k,
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
            )
        return bytes(buf[: p.HEADER_BYTES + p.SAMPLE_BYTES * n])
    if kind == "STATUS":
        n = encode_status(buf, 0, fields)
        return bytes(buf[:n])
    if kind == "INFO":
        n = encode_info(buf, 0, fields)
        return bytes(buf[:n])
    if kind == "RESPONSE":
        n = p.pack_response(buf, fields["opcode"], fields["token"], fields["result"])
        payload = fields["payload"]
        if payload is None:
            pass
        elif "vector" in payload:
            inner, _ = load_vector(vectors_dir, payload["vector"])
            if payload["msg_type"] == "INFO":
                n += encode_info(buf, n, inner)
            else:
                n += encode_status(buf, n, inner)
        elif "first_seq" in payload:
            struct.pack_into("<IH", buf, n, payload["first_seq"], payload["count"])
            n += 6
        elif "oldest_seq" in payload:
            struct.pack_into("<II", buf, n, payload["oldest_seq"], payload["next_seq"])
            n += 8
        else:
            raise CheckFailed("unknown RESPONSE payload " + repr(payload))
        _expect(bytes(buf[p.RESPONSE_BYTES : n]).hex() == fields["payload_hex"], "payload_hex")
        return bytes(buf[:n])
    if kind == "SERIAL_FRAME":
        inner, _ = load_vector(vectors_dir, fields["message_vector"])
        msg = encode_message(vectors_dir, inner)
        _expect(msg.hex() == fields["message_hex"], "message_hex")
        _expect(p.crc16(msg, len(msg)) == fields["crc16"], "crc16")
        out = bytearray(p.serial_encoded_max(len(msg)))
        n = p.serial_encode(msg, len(msg), out)
        _expect(bytes(out[: n - 1]).hex() == fields["cobs_hex"], "cobs_hex")
        return bytes(out[:n])
    raise CheckFailed("not an encoded message type: " + kind)


def encode_status(buf, offset, f):
    fw = f["fw_version"]
    return p.pack_status(
        buf,
        offset,
        f["flags"],
        f["battery_mv"],
        f["uptime_s"],
        f["fifo_overflows"],
        f["frames_dropped"],
        f["notify_backoffs"],
        f["i2c_errors"],
        f["imu_reinits"],
        f["next_seq"],
        f["next_sample_index"],
        (fw[0], fw[1], fw[2]),
        f["boot_id"],
    )


def encode_info(buf, offset, f):
    fw = f["fw_version"]
    return p.pack_info(
        buf,
        offset,
        (fw[0], fw[1], fw[2]),
        f["imu_kind"],
        f["board"],
        f["odr_hz"],
        f["accel_range_g"],
        f["gyro_range_dps"],
        f["dlpf_hz"],
        f["accel_lsb_per_g"],
        f["gyro_lsb_per_dps_x10"],
        f["samples_per_frame"],
        f["ring_frames"],
        f["boot_id"],
        f["att_mtu"],
        _name_bytes(f),
    )


def check_serial_command_line(vectors_dir, fields, line):
    """The line decodes to the command vector's bytes, whole and one byte at a time."""
    _, command = load_vector(vectors_dir, fields["command_vector"])
    _expect(command.hex() == fields["command_hex"], "command_hex")
    for text in (line, line.lower()):
        dec = p.LineDecoder()
        n = dec.feed(text, len(text))
        _expect(n == len(command), "line length")
        _expect(bytes(dec.command[:n]) == command, "line bytes")
        dec = p.LineDecoder()
        got = 0
        one = bytearray(1)
        for b in text:
            one[0] = b
            r = dec.feed(one, 1)
            if r:
                got = r
        _expect(got == len(command), "split line length")
        _expect(bytes(dec.command[:got]) == command, "split line bytes")


def check_vector(vectors_dir, name):
    fields, data = load_vector(vectors_dir, name)
    if fields.get("decode_only"):
        return False
    _expect(len(data) == fields["size_bytes"], name + ": size_bytes")
    if fields["msg_type"] == "SERIAL_COMMAND_LINE":
        _expect(data == fields["line"].encode(), name + ": line")
        check_serial_command_line(vectors_dir, fields, data)
        return True
    got = encode_message(vectors_dir, fields)
    if got != data:
        raise CheckFailed(name + ": encoded " + got.hex() + " expected " + data.hex())
    return True


def check_invalid_lines(vectors_dir):
    """Every bad command line in invalid/ is answered as a bad line (-1)."""
    checked = 0
    sub = vectors_dir + "/invalid"
    for entry in sorted(os.listdir(sub)):
        if not entry.endswith(".json"):
            continue
        fields, data = load_vector(sub, entry[:-5])
        if fields["decoder"] != "serial_line":
            continue
        dec = p.LineDecoder()
        _expect(dec.feed(data, len(data)) == -1, entry + ": not refused")
        checked += 1
    return checked


def check_vectors(vectors_dir):
    encoded = 0
    for name in vector_names(vectors_dir):
        if check_vector(vectors_dir, name):
            encoded += 1
    return encoded


# --- zero allocation ------------------------------------------------------------


_STEP_NAMES = (
    "p.pack_samples_header",
    "p.pack_response",
    "p.pack_info",
    "p.pack_status",
    "p.crc16",
    "p.serial_encode",
    "p.samples_per_frame_for_mtu",
    "dec.feed",
    "dec.feed",
    "dec.feed",
    "dec.feed",
    "dec.feed",
    "dec.feed",
    "dec.feed",
    "dec.feed",
    "p.crc16",
    "p.serial_encode",
    "dec.feed",
    "p.pack_samples_header",
)


def check_no_alloc():
    """Runs every hot-path function with the heap locked; returns the calls made."""
    import micropython

    frame = bytearray(p.HEADER_BYTES + p.MAX_SAMPLES * p.SAMPLE_BYTES)
    msg = bytearray(64)
    out = bytearray(p.serial_encoded_max(len(frame)))
    fw = (1, 2, 3)
    name = b"TL-1A2B"
    big_seq = 0xFFFFFFF0  # a big int on MicroPython: made here, only read while locked
    for i in range(len(frame)):
        frame[i] = (i * 7) & 0xFF
    line = bytearray(b">090770D7\n")
    two_lines = bytearray(b"noise>090770d7\r\n>090770D7\n")
    first_half = bytearray(b">0907")
    second_half = bytearray(b"70D7\n")
    bad_line = bytearray(b">09G770D7\n")
    long_line = bytearray(b">" + b"00" * 320 + b"\n")
    frame_mv = memoryview(frame)
    out_mv = memoryview(out)
    line_mv = memoryview(line)
    dec = p.LineDecoder()
    step = -1
    # Calls are written out one by one: a call through f(*args) would itself allocate.
    micropython.heap_lock()
    try:
        step = 1
        p.pack_samples_header(frame, p.FLAG_STREAM_START, p.MAX_SAMPLES, big_seq, 1000, 999_999)
        step = 2
        r1 = p.pack_response(msg, p.OP_GET_INFO, 7, p.RES_OK)
        step = 3
        r2 = p.pack_info(
            msg, r1, fw, 3, 2, 400, 8, 1000, 160, 4096, 328, 19, 300, 0xBEEF, 247, name
        )
        step = 4
        r3 = p.pack_status(
            msg, 5, 0xC9, 3712, 86461, 3, 70000, 513, 2, 1, big_seq, 2345678, fw, 0xBEEF
        )
        step = 5
        c = p.crc16(frame, len(frame))
        step = 6
        n = p.serial_encode(frame, len(frame), out)
        step = 7
        spf = p.samples_per_frame_for_mtu(247)
        step = 8
        f1 = dec.feed(line, len(line))
        step = 9
        f2 = dec.feed(two_lines, len(two_lines))
        step = 10
        f3 = dec.feed(two_lines, 0)
        step = 11
        f4 = dec.feed(two_lines, 0)
        step = 12
        f5 = dec.feed(first_half, len(first_half))
        step = 13
        f6 = dec.feed(second_half, len(second_half))
        step = 14
        f7 = dec.feed(bad_line, len(bad_line))
        step = 15
        f8 = dec.feed(long_line, len(long_line))
        step = 16
        c_mv = p.crc16(frame_mv, len(frame))
        step = 17
        n_mv = p.serial_encode(frame_mv, len(frame), out_mv)
        step = 18
        f9 = dec.feed(line_mv, len(line))
        step = 19
        p.pack_samples_header(frame_mv, 0, 1, 0, 0, 0)
        step = 0
    except MemoryError:
        pass
    finally:
        micropython.heap_unlock()
    if step:
        raise CheckFailed("call " + str(step) + " (" + _STEP_NAMES[step - 1] + ") allocated")
    _expect(r1 == 5 and r2 == 34 and r3 == 44 and spf == 19, "pack lengths")
    _expect(c == c_mv and n == n_mv, "memoryview arguments")
    _expect(out[n - 1] == 0 and n == len(frame) + 4, "serial_encode under lock")
    got = (f1, f2, f3, f4, f5, f6, f7, f8, f9)
    _expect(got == (2, 2, 2, 0, 0, 2, -1, -1, 2), "feed results under lock: " + repr(got))
    return len(_STEP_NAMES)


def check_no_alloc_detects_allocation():
    """The lock really is on: an allocating call must fail (guards the check above)."""
    import micropython

    micropython.heap_lock()
    try:
        bytearray(8)
    except MemoryError:
        return True
    finally:
        micropython.heap_unlock()
    raise CheckFailed("heap_lock did not stop an allocation")


def main(vectors_dir):
    _expect(p.crc16(b"123456789", 9) == 0x29B1, "crc16 check value")
    encoded = check_vectors(vectors_dir)
    _expect(encoded >= 10, "too few golden vectors: " + str(encoded))
    lines = check_invalid_lines(vectors_dir)
    _expect(lines >= 3, "too few invalid line vectors")
    print("vectors encoded", encoded, "invalid lines", lines)
    if sys.implementation.name == "micropython":
        check_no_alloc_detects_allocation()
        print("no-alloc calls", check_no_alloc())
    print("OK")


if sys.implementation.name == "micropython":
    main("/vectors")
