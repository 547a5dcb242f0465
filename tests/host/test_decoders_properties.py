"""Property tests: decoders never raise anything but ProtocolError; encode/decode round trips hold."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from tremorlift import protocol as p
from tremorlift.timebase import StreamTracker
from tremorlift.transport import serial_framing as sf

FAST = settings(max_examples=300, deadline=None)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
i16 = st.integers(-32768, 32767)

DECODERS = [
    p.decode_samples,
    p.decode_status,
    p.decode_info,
    p.decode_response,
    p.decode_message,
    p.decode_command,
    sf.cobs_decode,
    sf.decode_frame,
    sf.decode_command_line,
]


def _only_protocol_errors(data: bytes) -> None:
    for decode in DECODERS:
        try:
            decode(data)
        except p.ProtocolError as exc:
            assert exc.kind and str(exc)


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_protocol_error(data: bytes) -> None:
    _only_protocol_errors(data)


@FAST
@given(u8, st.integers(0, 30), st.binary(max_size=260))
def test_plausible_headers_only_raise_protocol_error(msg_type: int, n: int, rest: bytes) -> None:
    # Bytes that pass the first checks reach the deeper ones.
    _only_protocol_errors(bytes([1, msg_type % 6, 0, n]) + rest)
    _only_protocol_errors(bytes([1, 2, msg_type % 12, 0, 0]) + rest)


@FAST
@given(st.lists(st.binary(max_size=80), max_size=8))
def test_batch_decoder_only_raises_protocol_error(frames: list[bytes]) -> None:
    try:
        batch = p.decode_samples_batch(frames)
    except p.ProtocolError:
        return
    assert len(batch) == len(frames)


@FAST
@given(st.lists(st.binary(max_size=400), max_size=12))
def test_frame_reader_survives_anything(chunks: list[bytes]) -> None:
    reader = sf.FrameReader(max_frame_bytes=256)
    for chunk in chunks:
        for msg in reader.feed(chunk):
            assert msg[0] == p.VERSION and msg[1] in p.MSG_NAMES
        assert reader.pending_bytes <= 256


samples_frames = st.builds(
    lambda flags, seq, first, tick, rows: (flags, seq, first, tick, rows),
    u8,
    u32,
    u32,
    u32,
    st.lists(st.lists(i16, min_size=6, max_size=6), min_size=1, max_size=19),
)


@FAST
@given(samples_frames)
def test_samples_round_trip(args: tuple[int, int, int, int, list[list[int]]]) -> None:
    flags, seq, first, tick, rows = args
    data = p.encode_samples(flags, seq, first, tick, rows)
    assert len(data) == 16 + 12 * len(rows)
    f = p.decode_samples(data)
    assert (f.flags, f.n_samples, f.seq, f.first_sample_index, f.tick_us) == (
        flags,
        len(rows),
        seq,
        first,
        tick,
    )
    assert f.samples_raw.tolist() == rows
    batch = p.decode_samples_batch([data, data])
    assert batch.frame(1) == f


@FAST
@given(samples_frames, st.binary(max_size=40), st.binary(max_size=40))
def test_serial_round_trip_with_noise_around(
    args: tuple[int, int, int, int, list[list[int]]], before: bytes, after: bytes
) -> None:
    msg = p.encode_samples(*args)
    reader = sf.FrameReader()
    # noise ends in a delimiter so it cannot merge into the frame
    got = reader.feed(before + b"\x00" + sf.encode_frame(msg) + after)
    assert msg in got


@FAST
@given(st.binary(max_size=700))
def test_cobs_round_trip(data: bytes) -> None:
    enc = sf.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + 1 + len(data) // 254
    assert sf.cobs_decode(enc) == data


statuses = st.builds(
    p.Status,
    u16, u16, u32, u32, u32, u32, u32, u32, u32, u32,
    st.tuples(u8, u8, u8), u8, u16,
)  # fmt: skip


@FAST
@given(statuses, st.binary(max_size=20))
def test_status_round_trip(status: p.Status, appended: bytes) -> None:
    data = p.encode_status(status)
    assert len(data) == p.STATUS_BYTES
    assert p.decode_status(data + appended) == status


# Scale factors: 0 (no IMU) or fine enough that full scale stays physical (<= 50 g, 50 rad/s).
accel_lsb = st.one_of(st.just(0), st.integers(656, 0xFFFF))
gyro_lsb_x10 = st.one_of(st.just(0), st.integers(115, 0xFFFF))
infos = st.builds(
    p.DeviceInfo,
    st.tuples(u8, u8, u8), u8, u8, u16, u8, u16, u16, accel_lsb, gyro_lsb_x10, u8, u16, u16, u16,
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
)  # fmt: skip


@FAST
@given(infos, st.binary(max_size=20))
def test_info_and_response_round_trip(info: p.DeviceInfo, appended: bytes) -> None:
    data = p.encode_info(info)
    assert p.decode_info(data + appended) == info
    r = p.decode_response(p.encode_response(p.OP_GET_INFO, 5, p.RES_OK, data))
    assert r.detail == info and r.ok


@FAST
@given(st.sampled_from(sorted(p.COMMAND_ARGS)), u8, st.data())
def test_command_round_trip(opcode: int, token: int, data: st.DataObject) -> None:
    fmt, names = p.COMMAND_ARGS[opcode]
    bits = {"B": 8, "H": 16, "I": 32}
    args = [data.draw(st.integers(0, (1 << bits[c]) - 1)) for c in fmt[1:]]
    cmd = p.encode_command(opcode, token, *args)
    decoded = p.decode_command(cmd)
    assert (decoded.opcode, decoded.token, list(decoded.args.values())) == (opcode, token, args)
    assert list(decoded.args) == list(names)
    assert sf.decode_command_line(sf.encode_command_line(cmd)) == cmd


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 59), min_size=1, max_size=150), st.sets(st.integers(0, 59), max_size=20)
)
def test_tracker_accounts_for_every_sample_in_any_order(order: list[int], gaps: set[int]) -> None:
    # 60 frames of 5 samples, device-side gaps of 3 samples before the frames in `gaps`
    first = []
    index = 0
    for k in range(60):
        if k in gaps and k > 0:
            index += 3
        first.append(index)
        index += 5
    frames = [
        p.decode_samples(
            p.encode_samples(
                p.FLAG_GAP_BEFORE if (k in gaps and k > 0) else 0, k, first[k], 0, np.zeros((5, 6))
            )
        )
        for k in range(60)
    ]
    t = StreamTracker()
    for k in order:
        # anything after the first arrival of a later frame is a resend
        f = frames[k]
        resent = p.decode_samples(
            p.encode_samples(f.flags | p.FLAG_RESENT, f.seq, f.first_sample_index, 0, f.samples_raw)
        )
        t.add(resent)
    got = set(order)
    assert t.frames_received == len(got) and t.duplicates == len(order) - len(got)
    assert t.samples_received == 5 * len(got)
    assert t.samples_expected == t.samples_received + t.samples_lost
    lo, hi = min(got), max(got)
    missing = [s for a, c in t.missing_seq_ranges() for s in range(a, a + c)]
    assert missing == [k for k in range(lo, hi + 1) if k not in got]
    # once every frame in [lo, hi] is in, the only loss left is the device's
    for k in range(lo, hi + 1):
        f = frames[k]
        t.add(
            p.decode_samples(
                p.encode_samples(
                    f.flags | p.FLAG_RESENT, f.seq, f.first_sample_index, 0, f.samples_raw
                )
            )
        )
    assert t.samples_lost == t.samples_lost_on_device == 3 * len([k for k in gaps if lo < k <= hi])


@FAST
@given(infos, i16)
def test_an_accepted_info_never_decodes_a_count_past_the_physical_limits(
    info: p.DeviceInfo, count: int
) -> None:
    """Whatever INFO the decoder accepts, no raw count (per axis) decodes beyond 50 g or 50 rad/s."""
    info = p.decode_info(p.encode_info(info))
    if info.accel_lsb_per_g and info.gyro_lsb_per_dps_x10:
        raw = np.full((1, 6), count, np.int16)
        raw[0, 0] = raw[0, 3] = -32768
        accel, gyro = p.raw_to_si(raw, info)
        assert np.abs(accel).max() <= p.MAX_ACCEL_G * p.STANDARD_GRAVITY_MPS2
        assert np.abs(gyro).max() <= p.MAX_GYRO_RADPS


@FAST
@given(infos, st.integers(1, 655), st.integers(1, 114))
def test_an_info_whose_scale_is_not_physical_is_refused(
    info: p.DeviceInfo, accel_lsb: int, gyro_lsb_x10: int
) -> None:
    for bad, what in (
        ({"accel_lsb_per_g": accel_lsb}, "accel_lsb_per_g"),
        ({"gyro_lsb_per_dps_x10": gyro_lsb_x10}, "gyro_lsb_per_dps_x10"),
    ):
        data = p.encode_info(replace(info, **bad))
        try:
            p.decode_info(data)
        except p.ProtocolError as exc:
            assert exc.kind == "not_physical" and what in str(exc) and "not a physical" in str(exc)
        else:
            raise AssertionError(f"{bad} accepted")
