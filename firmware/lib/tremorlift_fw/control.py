"""Command parser and dispatcher (docs/protocol.md, 5 and 6).

handle(app, cmd, n, out) parses the command in cmd[0:n], acts on the application through
its small command methods and writes exactly one RESPONSE (with its payload) into out,
returning its length. A command that is unknown, too short or too long, out of range or
not allowed now gets its error code; nothing here raises, so streaming goes on whatever a
host writes.
"""

import struct

from micropython import const

from . import protocol

# Argument bytes after opcode and token, per opcode (docs/protocol.md, 6).
_ARG_BYTES = {
    protocol.OP_START: 0,
    protocol.OP_STOP: 0,
    protocol.OP_CONFIGURE: 7,
    protocol.OP_BUZZ: 2,
    protocol.OP_IDENTIFY: 1,
    protocol.OP_STATUS_NOW: 0,
    protocol.OP_SET_TRANSPORT: 1,
    protocol.OP_RESEND: 6,
    protocol.OP_GET_INFO: 0,
    protocol.OP_REBOOT: 0,
}

# Values every supported IMU takes (docs/protocol.md, 6); anything else is OUT_OF_RANGE.
ODRS_HZ = (100, 200, 400, 1000)
ACCEL_RANGES_G = (2, 4, 8, 16)
GYRO_RANGES_DPS = (250, 500, 1000, 2000)
_MAX_RESEND = const(1024)
_MAX_IDENTIFY_S = const(60)

TRANSPORT_BLE = const(0)
TRANSPORT_SERIAL = const(1)

RESPONSE_BUFFER_BYTES = const(80)  # 5 + the longest payload (INFO with a 20-byte name: 47)


def handle(app, cmd, n, out):
    """Answer the command cmd[0:n] into out; returns the RESPONSE length."""
    if n < 1:
        return protocol.pack_response(out, 0, 0, protocol.RES_BAD_LENGTH)
    opcode = cmd[0]
    token = cmd[1] if n >= 2 else 0
    if opcode not in _ARG_BYTES:
        return protocol.pack_response(out, opcode, token, protocol.RES_UNKNOWN_OPCODE)
    if n != 2 + _ARG_BYTES[opcode]:
        return protocol.pack_response(out, opcode, token, protocol.RES_BAD_LENGTH)
    at = protocol.pack_response(out, opcode, token, protocol.RES_OK)
    result = protocol.RES_OK
    if opcode == protocol.OP_START:
        result = app.cmd_start()
    elif opcode == protocol.OP_STOP:
        result = app.cmd_stop()
    elif opcode == protocol.OP_CONFIGURE:
        odr_hz, accel_range_g, gyro_range_dps, dlpf_hz = struct.unpack_from("<HBHH", cmd, 2)
        if app.streaming:
            result = protocol.RES_BAD_STATE
        elif (
            odr_hz not in ODRS_HZ
            or accel_range_g not in ACCEL_RANGES_G
            or gyro_range_dps not in GYRO_RANGES_DPS
        ):
            result = protocol.RES_OUT_OF_RANGE
        else:
            result = app.cmd_configure(odr_hz, accel_range_g, gyro_range_dps, dlpf_hz)
        if result == protocol.RES_OK:
            at += app.pack_info(out, at)
    elif opcode == protocol.OP_BUZZ:
        pattern = cmd[2]
        intensity_pct = cmd[3]
        if pattern not in protocol.BUZZ_PATTERNS_MS or not 1 <= intensity_pct <= 100:
            result = protocol.RES_OUT_OF_RANGE
        else:
            result = app.cmd_buzz(pattern, intensity_pct)
    elif opcode == protocol.OP_IDENTIFY:
        seconds = cmd[2]
        if not 1 <= seconds <= _MAX_IDENTIFY_S:
            result = protocol.RES_OUT_OF_RANGE
        else:
            result = app.cmd_identify(seconds)
    elif opcode == protocol.OP_STATUS_NOW:
        at += app.pack_status(out, at)
        app.cmd_status_now()
    elif opcode == protocol.OP_SET_TRANSPORT:
        result = app.cmd_set_transport(cmd[2])
    elif opcode == protocol.OP_RESEND:
        first_seq, count = struct.unpack_from("<IH", cmd, 2)
        if not 1 <= count <= _MAX_RESEND:
            result = protocol.RES_OUT_OF_RANGE
        elif app.resend_busy():
            result = protocol.RES_BUSY
        else:
            queued_first, queued_count = app.cmd_resend(first_seq, count)
            if queued_count:
                struct.pack_into("<IH", out, at, queued_first, queued_count)
                at += 6
            else:
                result = protocol.RES_NOT_AVAILABLE
                struct.pack_into("<II", out, at, app.ring.oldest_seq, app.ring.next_seq)
                at += 8
    elif opcode == protocol.OP_GET_INFO:
        at += app.pack_info(out, at)
    elif opcode == protocol.OP_REBOOT:
        app.cmd_reboot()
    if result != protocol.RES_OK:
        out[4] = result
        if opcode != protocol.OP_RESEND:
            at = protocol.RESPONSE_BYTES
    return at
