"""The tremorlift wire protocol, version 1 (docs/protocol.md), host side: bytes <-> dataclasses and numpy.

Every decoder here raises only :class:`ProtocolError` on bad input. Encoders exist for every message
so the host can send commands and tests can build device messages; the firmware has its own encoder
(``firmware/lib/tremorlift_fw/protocol.py``) and both are held to the golden vectors in
``tests/vectors/``.

Why one long module: it is the wire contract, every message's layout, constant and decoder in
one place, so the firmware's copies, the golden vectors and docs/protocol.md are held to one
source; split, the layouts would drift apart.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

# --- versions and message types (section 1, 2) ------------------------------------------------
VERSION = 1

# --- advertising and GATT (section 2, 3) -------------------------------------------------------
SERVICE_UUID = "7a1f0001-4c3b-4e0c-9b5a-2d8e6f1c3a70"
DATA_UUID = "7a1f0002-4c3b-4e0c-9b5a-2d8e6f1c3a70"
CONTROL_UUID = "7a1f0003-4c3b-4e0c-9b5a-2d8e6f1c3a70"
STATUS_UUID = "7a1f0004-4c3b-4e0c-9b5a-2d8e6f1c3a70"
INFO_UUID = "7a1f0005-4c3b-4e0c-9b5a-2d8e6f1c3a70"
NAME_PREFIX = "TL-"  # advertised name: prefix + last 4 hex digits of the MAC
MANUFACTURER_ID = 0xFFFF  # company id of the advertised manufacturer data (for prototypes)
# The advertised battery_pct and the STATUS battery_mv: linear between these (a LiPo cell).
BATTERY_EMPTY_MV = 3300
BATTERY_FULL_MV = 4150
BATTERY_PCT_UNKNOWN = 255
MSG_SAMPLES = 0x01
MSG_RESPONSE = 0x02
MSG_STATUS = 0x03
MSG_INFO = 0x04
MSG_NAMES = {
    MSG_SAMPLES: "SAMPLES",
    MSG_RESPONSE: "RESPONSE",
    MSG_STATUS: "STATUS",
    MSG_INFO: "INFO",
}

# --- SAMPLES (section 4) ----------------------------------------------------------------------
FLAG_RESENT = 0x01
FLAG_GAP_BEFORE = 0x02
FLAG_STREAM_START = 0x04
SAMPLE_FLAG_NAMES = {
    FLAG_RESENT: "RESENT",
    FLAG_GAP_BEFORE: "GAP_BEFORE",
    FLAG_STREAM_START: "STREAM_START",
}
HEADER_BYTES = 16
SAMPLE_BYTES = 12
AXES = 6
MAX_SAMPLES = 19
MAX_SAMPLES_FRAME_BYTES = HEADER_BYTES + SAMPLE_BYTES * MAX_SAMPLES  # 244
TICK_WRAP_US = 1 << 30  # MicroPython's time.ticks_us() period on the ESP32 ports
_SAMPLES_HEADER = struct.Struct("<BBBBIII")

# --- RESPONSE (section 5) ---------------------------------------------------------------------
RESPONSE_BYTES = 5
RES_OK = 0
RES_UNKNOWN_OPCODE = 1
RES_BAD_LENGTH = 2
RES_OUT_OF_RANGE = 3
RES_BAD_STATE = 4
RES_NOT_AVAILABLE = 5
RES_NOT_AUTHORISED = 6
RES_HARDWARE_ERROR = 7
RES_BUSY = 8
RESULT_NAMES = {
    RES_OK: "OK",
    RES_UNKNOWN_OPCODE: "UNKNOWN_OPCODE",
    RES_BAD_LENGTH: "BAD_LENGTH",
    RES_OUT_OF_RANGE: "OUT_OF_RANGE",
    RES_BAD_STATE: "BAD_STATE",
    RES_NOT_AVAILABLE: "NOT_AVAILABLE",
    RES_NOT_AUTHORISED: "NOT_AUTHORISED",
    RES_HARDWARE_ERROR: "HARDWARE_ERROR",
    RES_BUSY: "BUSY",
}

# --- commands (section 6) ---------------------------------------------------------------------
OP_START = 0x01
OP_STOP = 0x02
OP_CONFIGURE = 0x03
OP_BUZZ = 0x04
OP_IDENTIFY = 0x05
OP_STATUS_NOW = 0x06
OP_SET_TRANSPORT = 0x07
OP_RESEND = 0x08
OP_GET_INFO = 0x09
OP_REBOOT = 0x0A
OPCODE_NAMES = {
    OP_START: "START",
    OP_STOP: "STOP",
    OP_CONFIGURE: "CONFIGURE",
    OP_BUZZ: "BUZZ",
    OP_IDENTIFY: "IDENTIFY",
    OP_STATUS_NOW: "STATUS_NOW",
    OP_SET_TRANSPORT: "SET_TRANSPORT",
    OP_RESEND: "RESEND",
    OP_GET_INFO: "GET_INFO",
    OP_REBOOT: "REBOOT",
}
# Commands whose second copy changes nothing the first did not (section 6, "Repeating a command"):
# a host whose answer was lost sends them again with the same token. CONFIGURE repeats the same
# settings; BUZZ, IDENTIFY, RESEND and REBOOT are not repeated (a second buzz or reset is felt).
REPEATABLE_OPCODES = frozenset(
    {OP_START, OP_STOP, OP_CONFIGURE, OP_STATUS_NOW, OP_SET_TRANSPORT, OP_GET_INFO}
)
# Argument layout of each command (struct format after the 2-byte opcode/token) and the names of
# its fields, in order. The same table drives encoding and decoding.
COMMAND_ARGS: dict[int, tuple[str, tuple[str, ...]]] = {
    OP_START: ("", ()),
    OP_STOP: ("", ()),
    OP_CONFIGURE: ("<HBHH", ("odr_hz", "accel_range_g", "gyro_range_dps", "dlpf_hz")),
    OP_BUZZ: ("<BB", ("pattern", "intensity_pct")),
    OP_IDENTIFY: ("<B", ("seconds",)),
    OP_STATUS_NOW: ("", ()),
    OP_SET_TRANSPORT: ("<B", ("transport",)),
    OP_RESEND: ("<IH", ("first_seq", "count")),
    OP_GET_INFO: ("", ()),
    OP_REBOOT: ("", ()),
}
TRANSPORT_BLE = 0
TRANSPORT_SERIAL = 1
RESEND_MAX_COUNT = 1024
IDENTIFY_MAX_S = 60
# CONFIGURE: the values every supported IMU takes (section 6); anything else is OUT_OF_RANGE.
CONFIGURE_ODRS_HZ = (100, 200, 400, 1000)
CONFIGURE_ACCEL_RANGES_G = (2, 4, 8, 16)
CONFIGURE_GYRO_RANGES_DPS = (250, 500, 1000, 2000)
BUZZ_TAP = 1
BUZZ_WARN = 2
BUZZ_STOP = 3
BUZZ_CONNECTED = 4
BUZZ_PATTERNS_MS = {1: (80,), 2: (150, 100, 150), 3: (300, 150, 300, 150, 300), 4: (40,)}
_RESEND_OK = struct.Struct("<IH")
_RESEND_NOT_AVAILABLE = struct.Struct("<II")

# --- STATUS and INFO (section 7) --------------------------------------------------------------
STATUS_BYTES = 44
ST_STREAMING = 1
ST_IMU_MISSING = 2
ST_IMU_FAULT = 4
ST_LOW_BATTERY = 8
ST_SAFE_MODE = 16
ST_SERIAL_TRANSPORT = 32
ST_FIFO_OVERFLOW = 64
ST_ENCRYPTED = 128
STATUS_FLAG_NAMES = {
    ST_STREAMING: "STREAMING",
    ST_IMU_MISSING: "IMU_MISSING",
    ST_IMU_FAULT: "IMU_FAULT",
    ST_LOW_BATTERY: "LOW_BATTERY",
    ST_SAFE_MODE: "SAFE_MODE",
    ST_SERIAL_TRANSPORT: "SERIAL_TRANSPORT",
    ST_FIFO_OVERFLOW: "FIFO_OVERFLOW",
    ST_ENCRYPTED: "ENCRYPTED",
}
_STATUS = struct.Struct("<BBHHIIIIIIIIBBBBH")
INFO_BASE_BYTES = 27
INFO_NAME_MAX = 20
_INFO = struct.Struct("<BBBBBBBHBHHHHBHHHBB")
IMU_NONE = 0
IMU_MPU6050 = 1
IMU_MPU6500 = 2
IMU_ICM42688P = 3
IMU_LSM6DSOX = 4
IMU_NAMES = {0: "none", 1: "MPU-6050", 2: "MPU-6500", 3: "ICM-42688-P", 4: "LSM6DSOX"}
BOARD_UNKNOWN = 0
BOARD_ESP32 = 1
BOARD_ESP32S3 = 2
BOARD_ESP32C3 = 3
BOARD_EMULATED = 255
BOARD_NAMES = {0: "unknown", 1: "ESP32", 2: "ESP32-S3", 3: "ESP32-C3", 255: "emulated"}

STANDARD_GRAVITY_MPS2 = 9.80665
# Beyond these a reading is not a body-worn sensor's (the same limits refuse a CSV's rows). An
# INFO whose scale factors would let one raw count range (+-32768) decode past them is refused:
# a real IMU's ranges (2-16 g, 250-2000 deg/s, docs/protocol.md section 6) stay within them per
# axis at full scale (16 g; 34.9 rad/s).
MAX_ACCEL_G = 50.0
MAX_GYRO_RADPS = 50.0
RAW_FULL_SCALE_COUNTS = 32768

assert _SAMPLES_HEADER.size == HEADER_BYTES
assert _STATUS.size == STATUS_BYTES
assert _INFO.size == INFO_BASE_BYTES


class ProtocolError(ValueError):
    """Bytes that are not a valid version-1 message.

    ``kind`` names the failure with the words of ``tests/vectors/README.md``: ``truncated``,
    ``length_mismatch``, ``bad_n_samples``, ``bad_version``, ``bad_type``, ``bad_field``,
    ``bad_crc``, ``bad_cobs``, ``bad_hex``, ``too_long``.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _flag_names(flags: int, names: dict[int, str]) -> list[str]:
    return [name for bit, name in names.items() if flags & bit]


def battery_pct(battery_mv: int) -> int | None:
    """Charge in % from a battery voltage, as the wearable advertises it (linear between
    ``BATTERY_EMPTY_MV`` and ``BATTERY_FULL_MV``, rounded down); None when not measured (0)."""
    if battery_mv <= 0:
        return None
    frac_x100 = 100 * (battery_mv - BATTERY_EMPTY_MV) // (BATTERY_FULL_MV - BATTERY_EMPTY_MV)
    return min(100, max(0, frac_x100))


# ============================================================================ dataclasses


@dataclass(frozen=True, eq=False)
class SamplesFrame:
    """One SAMPLES frame. ``samples_raw`` is (n_samples, 6) int16: ax ay az gx gy gz, IMU axes."""

    flags: int
    n_samples: int
    seq: int
    first_sample_index: int
    tick_us: int
    samples_raw: npt.NDArray[np.int16]

    @property
    def resent(self) -> bool:
        return bool(self.flags & FLAG_RESENT)

    @property
    def gap_before(self) -> bool:
        return bool(self.flags & FLAG_GAP_BEFORE)

    @property
    def stream_start(self) -> bool:
        return bool(self.flags & FLAG_STREAM_START)

    @property
    def end_sample_index(self) -> int:
        """Index one past the last sample of this frame."""
        return self.first_sample_index + self.n_samples

    @property
    def flag_names(self) -> list[str]:
        return _flag_names(self.flags, SAMPLE_FLAG_NAMES)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SamplesFrame):
            return NotImplemented
        return (
            self.flags == other.flags
            and self.n_samples == other.n_samples
            and self.seq == other.seq
            and self.first_sample_index == other.first_sample_index
            and self.tick_us == other.tick_us
            and np.array_equal(self.samples_raw, other.samples_raw)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable array inside: not hashable


@dataclass(frozen=True)
class SamplesBatch:
    """Many SAMPLES frames decoded at once, in the order given.

    Per frame (length F): ``flags``, ``n_samples``, ``seq``, ``first_sample_index``, ``tick_us``
    and ``sample_offset`` (where the frame's samples start in ``samples_raw``). Per sample
    (length N = sum of n_samples): ``samples_raw`` (N, 6) int16 and ``sample_index`` (N,) int64.
    """

    flags: npt.NDArray[np.uint8]
    n_samples: npt.NDArray[np.uint8]
    seq: npt.NDArray[np.uint32]
    first_sample_index: npt.NDArray[np.uint32]
    tick_us: npt.NDArray[np.uint32]
    sample_offset: npt.NDArray[np.int64]
    samples_raw: npt.NDArray[np.int16]
    sample_index: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.seq.shape[0])

    def frame(self, i: int) -> SamplesFrame:
        start = int(self.sample_offset[i])
        n = int(self.n_samples[i])
        return SamplesFrame(
            flags=int(self.flags[i]),
            n_samples=n,
            seq=int(self.seq[i]),
            first_sample_index=int(self.first_sample_index[i]),
            tick_us=int(self.tick_us[i]),
            samples_raw=self.samples_raw[start : start + n],
        )


@dataclass(frozen=True)
class Status:
    """A STATUS message (section 7)."""

    flags: int
    battery_mv: int
    uptime_s: int
    fifo_overflows: int
    frames_dropped: int
    notify_backoffs: int
    i2c_errors: int
    imu_reinits: int
    next_seq: int
    next_sample_index: int
    fw_version: tuple[int, int, int]
    fw_protocol_version: int
    boot_id: int

    @property
    def flag_names(self) -> list[str]:
        return _flag_names(self.flags, STATUS_FLAG_NAMES)

    @property
    def streaming(self) -> bool:
        return bool(self.flags & ST_STREAMING)


@dataclass(frozen=True)
class DeviceInfo:
    """An INFO message (section 7): what the device is and how it samples now."""

    fw_version: tuple[int, int, int]
    imu_kind: int
    board: int
    odr_hz: int
    accel_range_g: int
    gyro_range_dps: int
    dlpf_hz: int
    accel_lsb_per_g: int
    gyro_lsb_per_dps_x10: int
    samples_per_frame: int
    ring_frames: int
    boot_id: int
    att_mtu: int
    name: str

    @property
    def accel_mps2_per_lsb(self) -> float:
        """Acceleration of one raw count, m/s^2 (0.0 if the device reports no scale)."""
        if self.accel_lsb_per_g == 0:
            return 0.0
        return STANDARD_GRAVITY_MPS2 / self.accel_lsb_per_g

    @property
    def gyro_radps_per_lsb(self) -> float:
        """Angular rate of one raw count, rad/s (0.0 if the device reports no scale)."""
        if self.gyro_lsb_per_dps_x10 == 0:
            return 0.0
        return math.pi / 180.0 / (self.gyro_lsb_per_dps_x10 / 10.0)

    @property
    def imu_name(self) -> str:
        return IMU_NAMES.get(self.imu_kind, f"unknown ({self.imu_kind})")

    @property
    def board_name(self) -> str:
        return BOARD_NAMES.get(self.board, f"unknown ({self.board})")


@dataclass(frozen=True)
class ResendQueued:
    """Payload of RESEND answered OK: the frames actually queued."""

    first_seq: int
    count: int


@dataclass(frozen=True)
class ResendUnavailable:
    """Payload of RESEND answered NOT_AVAILABLE: the ring holds [oldest_seq, next_seq)."""

    oldest_seq: int
    next_seq: int


ResponseDetail = DeviceInfo | Status | ResendQueued | ResendUnavailable


@dataclass(frozen=True)
class Response:
    """A RESPONSE message. ``detail`` is the decoded payload when the command defines one."""

    opcode: int
    token: int
    result: int
    payload: bytes = b""
    detail: ResponseDetail | None = None

    @property
    def ok(self) -> bool:
        return self.result == RES_OK

    @property
    def result_name(self) -> str:
        return RESULT_NAMES.get(self.result, f"result {self.result}")

    @property
    def opcode_name(self) -> str:
        return OPCODE_NAMES.get(self.opcode, f"opcode 0x{self.opcode:02X}")


@dataclass(frozen=True)
class Command:
    """A host -> device command, as decoded from its bytes."""

    opcode: int
    token: int
    args: dict[str, int] = field(default_factory=dict)
    extra: bytes = b""  # argument bytes of an opcode this version does not define

    @property
    def name(self) -> str:
        return OPCODE_NAMES.get(self.opcode, f"opcode 0x{self.opcode:02X}")


# ============================================================================ decoders


def _bytes(data: Any) -> bytes:
    """Accept bytes-like input; anything else is a ProtocolError, not a TypeError."""
    if isinstance(data, bytes):
        return data
    try:
        return bytes(memoryview(data))
    except TypeError as exc:
        raise ProtocolError("truncated", f"expected bytes, got {type(data).__name__}") from exc


def _check_header(data: bytes, msg_type: int) -> None:
    if len(data) < 2:
        raise ProtocolError("truncated", f"message of {len(data)} bytes has no header")
    if data[0] != VERSION:
        raise ProtocolError(
            "bad_version",
            f"protocol_version {data[0]} is not supported (this reader knows {VERSION})",
        )
    if data[1] != msg_type:
        raise ProtocolError(
            "bad_type",
            f"msg_type 0x{data[1]:02X} where {MSG_NAMES[msg_type]} (0x{msg_type:02X}) was expected",
        )


def decode_samples(frame: bytes | bytearray | memoryview) -> SamplesFrame:
    """Decode one SAMPLES frame; the samples array is a read-only view of a copy of the bytes."""
    data = _bytes(frame)
    if len(data) < HEADER_BYTES:
        _check_header(data, MSG_SAMPLES)
        raise ProtocolError(
            "truncated", f"SAMPLES frame of {len(data)} bytes is shorter than its 16-byte header"
        )
    _check_header(data, MSG_SAMPLES)
    _, _, flags, n, seq, first, tick = _SAMPLES_HEADER.unpack_from(data)
    if n == 0 or n > MAX_SAMPLES:
        raise ProtocolError("bad_n_samples", f"SAMPLES n_samples {n} is outside 1..{MAX_SAMPLES}")
    if len(data) != HEADER_BYTES + SAMPLE_BYTES * n:
        raise ProtocolError(
            "length_mismatch",
            f"SAMPLES frame is {len(data)} bytes but n_samples {n} needs {HEADER_BYTES + SAMPLE_BYTES * n}",
        )
    samples = np.frombuffer(data, dtype="<i2", offset=HEADER_BYTES).reshape(n, AXES)
    return SamplesFrame(flags, n, seq, first, tick, samples)


_HEADER_DTYPE = np.dtype(
    [
        ("version", "u1"),
        ("msg_type", "u1"),
        ("flags", "u1"),
        ("n_samples", "u1"),
        ("seq", "<u4"),
        ("first_sample_index", "<u4"),
        ("tick_us", "<u4"),
    ]
)


def decode_samples_batch(frames: Sequence[bytes]) -> SamplesBatch:
    """Decode many SAMPLES frames at once (vectorised per frame length).

    Raises ProtocolError naming the first bad frame (by position) if any frame is invalid.
    """
    count = len(frames)
    lengths = np.fromiter((len(f) for f in frames), dtype=np.int64, count=count)
    flags = np.zeros(count, np.uint8)
    n_samples = np.zeros(count, np.uint8)
    seq = np.zeros(count, np.uint32)
    first = np.zeros(count, np.uint32)
    tick = np.zeros(count, np.uint32)
    valid_len = (lengths >= HEADER_BYTES + SAMPLE_BYTES) & (lengths <= MAX_SAMPLES_FRAME_BYTES)
    valid_len &= (lengths - HEADER_BYTES) % SAMPLE_BYTES == 0
    if not bool(valid_len.all()):
        bad = int(np.flatnonzero(~valid_len)[0])
        _raise_for_frame(frames, bad)
    n_by_len = ((lengths - HEADER_BYTES) // SAMPLE_BYTES).astype(np.int64)
    sample_offset = np.zeros(count, np.int64)
    if count:
        np.cumsum(n_by_len[:-1], out=sample_offset[1:])
    total = int(n_by_len.sum())
    samples_raw = np.empty((total, AXES), np.int16)
    lengths_present = np.unique(lengths)
    for length in lengths_present:
        n_expected = (int(length) - HEADER_BYTES) // SAMPLE_BYTES
        whole = lengths_present.size == 1  # the usual case: every frame full
        rows = np.arange(count) if whole else np.flatnonzero(lengths == length)
        blob = b"".join(frames if whole else [frames[int(i)] for i in rows])
        # One record per frame: header fields and the samples block, read in place.
        rec_dtype = np.dtype([("hdr", _HEADER_DTYPE), ("s", "<i2", (n_expected, AXES))])
        rec = np.frombuffer(blob, rec_dtype)
        hdr = rec["hdr"]
        ok = (
            (hdr["version"] == VERSION)
            & (hdr["msg_type"] == MSG_SAMPLES)
            & (hdr["n_samples"] == n_expected)
        )
        if not bool(ok.all()):
            _raise_for_frame(frames, int(rows[np.flatnonzero(~ok)[0]]))
        flags[rows] = hdr["flags"]
        n_samples[rows] = hdr["n_samples"]
        seq[rows] = hdr["seq"]
        first[rows] = hdr["first_sample_index"]
        tick[rows] = hdr["tick_us"]
        if whole:
            samples_raw[:] = rec["s"].reshape(-1, AXES)
        else:
            dest = sample_offset[rows][:, None] + np.arange(n_expected)[None, :]
            samples_raw[dest.ravel()] = rec["s"].reshape(-1, AXES)
    # Per-sample index: first_sample_index of its frame plus its position in the frame.
    sample_index = np.repeat(first.astype(np.int64) - sample_offset, n_by_len) + np.arange(
        total, dtype=np.int64
    )
    return SamplesBatch(
        flags, n_samples, seq, first, tick, sample_offset, samples_raw, sample_index
    )


def _raise_for_frame(frames: Sequence[bytes], i: int) -> None:
    try:
        decode_samples(frames[i])
    except ProtocolError as exc:
        raise ProtocolError(exc.kind, f"frame {i}: {exc}") from None
    raise ProtocolError("bad_field", f"frame {i}: inconsistent")  # pragma: no cover - decode agrees


def decode_status(msg: bytes | bytearray | memoryview) -> Status:
    """Decode STATUS; longer messages (fields appended within version 1) are accepted."""
    data = _bytes(msg)
    _check_header(data, MSG_STATUS)
    if len(data) < STATUS_BYTES:
        raise ProtocolError(
            "truncated", f"STATUS of {len(data)} bytes is shorter than {STATUS_BYTES}"
        )
    v = _STATUS.unpack_from(data)
    return Status(
        flags=v[2],
        battery_mv=v[3],
        uptime_s=v[4],
        fifo_overflows=v[5],
        frames_dropped=v[6],
        notify_backoffs=v[7],
        i2c_errors=v[8],
        imu_reinits=v[9],
        next_seq=v[10],
        next_sample_index=v[11],
        fw_version=(v[12], v[13], v[14]),
        fw_protocol_version=v[15],
        boot_id=v[16],
    )


def decode_info(msg: bytes | bytearray | memoryview) -> DeviceInfo:
    """Decode INFO; bytes after the name (fields appended within version 1) are ignored."""
    data = _bytes(msg)
    _check_header(data, MSG_INFO)
    if len(data) < INFO_BASE_BYTES:
        raise ProtocolError(
            "truncated", f"INFO of {len(data)} bytes is shorter than {INFO_BASE_BYTES}"
        )
    v = _INFO.unpack_from(data)
    name_len = v[18]
    if name_len > INFO_NAME_MAX:
        raise ProtocolError("bad_field", f"INFO name_len {name_len} is above {INFO_NAME_MAX}")
    if len(data) < INFO_BASE_BYTES + name_len:
        raise ProtocolError(
            "truncated", f"INFO of {len(data)} bytes is too short for its {name_len}-character name"
        )
    _check_scale(v[11], v[12])
    raw_name = data[INFO_BASE_BYTES : INFO_BASE_BYTES + name_len]
    try:
        name = raw_name.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ProtocolError("bad_field", f"INFO name {raw_name!r} is not ASCII") from exc
    return DeviceInfo(
        fw_version=(v[2], v[3], v[4]),
        imu_kind=v[5],
        board=v[6],
        odr_hz=v[7],
        accel_range_g=v[8],
        gyro_range_dps=v[9],
        dlpf_hz=v[10],
        accel_lsb_per_g=v[11],
        gyro_lsb_per_dps_x10=v[12],
        samples_per_frame=v[13],
        ring_frames=v[14],
        boot_id=v[15],
        att_mtu=v[16],
        name=name,
    )


def _check_scale(accel_lsb_per_g: int, gyro_lsb_per_dps_x10: int) -> None:
    """ProtocolError('not_physical') when a full-scale raw count would decode past
    ``MAX_ACCEL_G`` or ``MAX_GYRO_RADPS`` (0 = no scale, an IMU missing, stays allowed)."""
    if accel_lsb_per_g:
        full_g = RAW_FULL_SCALE_COUNTS / accel_lsb_per_g
        if full_g > MAX_ACCEL_G:
            raise ProtocolError(
                "not_physical",
                f"INFO accel_lsb_per_g {accel_lsb_per_g} makes full scale {full_g:.4g} g, beyond "
                f"{MAX_ACCEL_G:g} g: not a physical reading",
            )
    if gyro_lsb_per_dps_x10:
        full_radps = math.radians(RAW_FULL_SCALE_COUNTS / (gyro_lsb_per_dps_x10 / 10.0))
        if full_radps > MAX_GYRO_RADPS:
            raise ProtocolError(
                "not_physical",
                f"INFO gyro_lsb_per_dps_x10 {gyro_lsb_per_dps_x10} makes full scale "
                f"{full_radps:.4g} rad/s, beyond {MAX_GYRO_RADPS:g} rad/s: not a physical reading",
            )


def decode_response(msg: bytes | bytearray | memoryview) -> Response:
    """Decode RESPONSE and, for the commands that define one, its payload into ``detail``."""
    data = _bytes(msg)
    _check_header(data, MSG_RESPONSE)
    if len(data) < RESPONSE_BYTES:
        raise ProtocolError(
            "truncated", f"RESPONSE of {len(data)} bytes is shorter than {RESPONSE_BYTES}"
        )
    opcode, token, result = data[2], data[3], data[4]
    payload = data[RESPONSE_BYTES:]
    detail: ResponseDetail | None = None
    what = (
        f"{OPCODE_NAMES.get(opcode, hex(opcode))} {RESULT_NAMES.get(result, str(result))} payload"
    )
    try:
        if result == RES_OK and opcode in (OP_GET_INFO, OP_CONFIGURE):
            detail = decode_info(payload)
        elif result == RES_OK and opcode == OP_STATUS_NOW:
            detail = decode_status(payload)
        elif opcode == OP_RESEND and result == RES_OK:
            if len(payload) < _RESEND_OK.size:
                raise ProtocolError("truncated", f"{len(payload)} bytes, {_RESEND_OK.size} needed")
            detail = ResendQueued(*_RESEND_OK.unpack_from(payload))
        elif opcode == OP_RESEND and result == RES_NOT_AVAILABLE:
            if len(payload) < _RESEND_NOT_AVAILABLE.size:
                raise ProtocolError(
                    "truncated", f"{len(payload)} bytes, {_RESEND_NOT_AVAILABLE.size} needed"
                )
            detail = ResendUnavailable(*_RESEND_NOT_AVAILABLE.unpack_from(payload))
    except ProtocolError as exc:
        raise ProtocolError(exc.kind, f"RESPONSE to {what}: {exc}") from None
    return Response(opcode, token, result, payload, detail)


Message = SamplesFrame | Response | Status | DeviceInfo


def decode_message(msg: bytes | bytearray | memoryview) -> Message:
    """Decode any device -> host message by its ``msg_type``."""
    data = _bytes(msg)
    if len(data) < 2:
        raise ProtocolError("truncated", f"message of {len(data)} bytes has no header")
    if data[0] != VERSION:
        raise ProtocolError(
            "bad_version",
            f"protocol_version {data[0]} is not supported (this reader knows {VERSION})",
        )
    decoder = _DECODERS.get(data[1])
    if decoder is None:
        raise ProtocolError(
            "bad_type", f"msg_type 0x{data[1]:02X} is not defined in version {VERSION}"
        )
    return decoder(data)


_DECODERS: dict[int, Any] = {
    MSG_SAMPLES: decode_samples,
    MSG_RESPONSE: decode_response,
    MSG_STATUS: decode_status,
    MSG_INFO: decode_info,
}


def decode_command(data_in: bytes | bytearray | memoryview) -> Command:
    """Decode command bytes (what the device receives); unknown opcodes keep their bytes in ``extra``."""
    data = _bytes(data_in)
    if len(data) < 2:
        raise ProtocolError("truncated", f"command of {len(data)} bytes has no opcode and token")
    opcode, token = data[0], data[1]
    spec = COMMAND_ARGS.get(opcode)
    if spec is None:
        return Command(opcode, token, {}, data[2:])
    fmt, names = spec
    size = struct.calcsize(fmt) if fmt else 0
    if len(data) - 2 != size:
        raise ProtocolError(
            "length_mismatch",
            f"{OPCODE_NAMES[opcode]} takes {size} argument bytes, got {len(data) - 2}",
        )
    values = struct.unpack_from(fmt, data, 2) if fmt else ()
    return Command(opcode, token, dict(zip(names, values, strict=True)))


# ============================================================================ encoders


def _check_uint(name: str, value: int, bits: int) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool):
        raise ProtocolError("bad_field", f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not 0 <= value < (1 << bits):
        raise ProtocolError("bad_field", f"{name} {value} does not fit in {bits} bits")
    return value


def encode_command(opcode: int, token: int = 0, *args: int) -> bytes:
    """Command bytes: opcode, token, then the opcode's arguments in the order of section 6.

    Unknown opcodes take no arguments here (use :func:`encode_raw_command` to send anything).
    Only field widths are checked: whether a value is supported is the device's to answer.
    """
    _check_uint("opcode", opcode, 8)
    _check_uint("token", token, 8)
    fmt, names = COMMAND_ARGS.get(opcode, ("", ()))
    if len(args) != len(names):
        raise ProtocolError(
            "bad_field",
            f"{OPCODE_NAMES.get(opcode, hex(opcode))} takes {len(names)} arguments ({', '.join(names)}), got {len(args)}",
        )
    widths = {"B": 8, "H": 16, "I": 32}
    checked = [_check_uint(n, a, widths[c]) for n, a, c in zip(names, args, fmt[1:], strict=True)]
    return bytes((opcode, token)) + (struct.pack(fmt, *checked) if fmt else b"")


def encode_raw_command(opcode: int, token: int, args: bytes = b"") -> bytes:
    """Command bytes with arbitrary argument bytes (for testing the device's error answers)."""
    return bytes((_check_uint("opcode", opcode, 8), _check_uint("token", token, 8))) + bytes(args)


def start(token: int = 0) -> bytes:
    return encode_command(OP_START, token)


def stop(token: int = 0) -> bytes:
    return encode_command(OP_STOP, token)


def configure(
    odr_hz: int, accel_range_g: int, gyro_range_dps: int, dlpf_hz: int = 0, *, token: int = 0
) -> bytes:
    return encode_command(OP_CONFIGURE, token, odr_hz, accel_range_g, gyro_range_dps, dlpf_hz)


def buzz(pattern: int, intensity_pct: int, *, token: int = 0) -> bytes:
    return encode_command(OP_BUZZ, token, pattern, intensity_pct)


def identify(seconds: int, *, token: int = 0) -> bytes:
    return encode_command(OP_IDENTIFY, token, seconds)


def status_now(token: int = 0) -> bytes:
    return encode_command(OP_STATUS_NOW, token)


def set_transport(transport: int, *, token: int = 0) -> bytes:
    return encode_command(OP_SET_TRANSPORT, token, transport)


def resend(first_seq: int, count: int, *, token: int = 0) -> bytes:
    return encode_command(OP_RESEND, token, first_seq, count)


def get_info(token: int = 0) -> bytes:
    return encode_command(OP_GET_INFO, token)


def reboot(token: int = 0) -> bytes:
    return encode_command(OP_REBOOT, token)


def encode_samples(
    flags: int, seq: int, first_sample_index: int, tick_us: int, samples_raw: npt.ArrayLike
) -> bytes:
    """A SAMPLES frame (what the firmware sends); for tests and replays."""
    arr = np.asarray(samples_raw)
    if arr.ndim != 2 or arr.shape[1] != AXES or not 1 <= arr.shape[0] <= MAX_SAMPLES:
        raise ProtocolError(
            "bad_n_samples", f"samples_raw must be (1..{MAX_SAMPLES}, 6), got {arr.shape}"
        )
    if arr.size and (int(arr.min()) < -32768 or int(arr.max()) > 32767):
        raise ProtocolError("bad_field", "samples_raw values must fit in int16")
    header = _SAMPLES_HEADER.pack(
        VERSION,
        MSG_SAMPLES,
        _check_uint("flags", flags, 8),
        arr.shape[0],
        _check_uint("seq", seq, 32),
        _check_uint("first_sample_index", first_sample_index, 32),
        _check_uint("tick_us", tick_us, 32),
    )
    return header + arr.astype("<i2").tobytes()


def encode_status(status: Status) -> bytes:
    s = status
    return _STATUS.pack(
        VERSION, MSG_STATUS, s.flags, s.battery_mv, s.uptime_s, s.fifo_overflows, s.frames_dropped,
        s.notify_backoffs, s.i2c_errors, s.imu_reinits, s.next_seq, s.next_sample_index,
        *s.fw_version, s.fw_protocol_version, s.boot_id,
    )  # fmt: skip


def encode_info(info: DeviceInfo) -> bytes:
    i = info
    try:
        name = i.name.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ProtocolError("bad_field", f"INFO name {i.name!r} is not ASCII") from exc
    if len(name) > INFO_NAME_MAX:
        raise ProtocolError("bad_field", f"INFO name {i.name!r} is longer than {INFO_NAME_MAX}")
    return _INFO.pack(
        VERSION, MSG_INFO, *i.fw_version, i.imu_kind, i.board, i.odr_hz, i.accel_range_g,
        i.gyro_range_dps, i.dlpf_hz, i.accel_lsb_per_g, i.gyro_lsb_per_dps_x10,
        i.samples_per_frame, i.ring_frames, i.boot_id, i.att_mtu, 0, len(name),
    ) + name  # fmt: skip


def encode_response(opcode: int, token: int, result: int, payload: bytes = b"") -> bytes:
    return bytes(
        (VERSION, MSG_RESPONSE, _check_uint("opcode", opcode, 8), _check_uint("token", token, 8),
         _check_uint("result", result, 8))
    ) + bytes(payload)  # fmt: skip


def encode_resend_queued(first_seq: int, count: int) -> bytes:
    return _RESEND_OK.pack(first_seq, count)


def encode_resend_unavailable(oldest_seq: int, next_seq: int) -> bytes:
    return _RESEND_NOT_AVAILABLE.pack(oldest_seq, next_seq)


# ============================================================================ units


def raw_to_si(
    samples_raw: npt.NDArray[np.int16], info: DeviceInfo
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Raw counts (n, 6) -> (accel_mps2 (n, 3), gyro_radps (n, 3)) with INFO's scale factors."""
    raw = np.asarray(samples_raw)
    if raw.ndim != 2 or raw.shape[1] != AXES:
        raise ValueError(f"samples_raw must be (n, 6), got {raw.shape}")
    if info.accel_lsb_per_g == 0 or info.gyro_lsb_per_dps_x10 == 0:
        raise ValueError(f"device {info.name or '?'} reports no scale factors (IMU missing?)")
    accel = raw[:, :3].astype(np.float64) * info.accel_mps2_per_lsb
    gyro = raw[:, 3:].astype(np.float64) * info.gyro_radps_per_lsb
    return accel, gyro


def samples_per_frame_for_mtu(att_mtu: int) -> int:
    """Samples per frame the device uses at an ATT MTU (section 3)."""
    return max(1, min(MAX_SAMPLES, (att_mtu - 3 - HEADER_BYTES) // SAMPLE_BYTES))
