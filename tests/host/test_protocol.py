"""Host protocol against the golden vectors (tests/vectors/) and docs/protocol.md."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tremorlift import protocol as p
from tremorlift.transport import serial_framing as sf

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _load(name: str, sub: str = "") -> tuple[bytes, dict[str, Any]]:
    d = VECTORS / sub if sub else VECTORS
    return (d / f"{name}.bin").read_bytes(), json.loads((d / f"{name}.json").read_text())


def _names(msg_type: str) -> list[str]:
    out = []
    for j in sorted(VECTORS.glob("*.json")):
        if json.loads(j.read_text())["msg_type"] == msg_type:
            out.append(j.stem)
    return out


def test_every_vector_has_its_pair_and_a_known_type() -> None:
    kinds = {
        "SAMPLES",
        "RESPONSE",
        "STATUS",
        "INFO",
        "COMMAND",
        "SERIAL_FRAME",
        "SERIAL_COMMAND_LINE",
    }
    for d, allowed in ((VECTORS, kinds), (VECTORS / "invalid", {"INVALID"})):
        bins = {f.stem for f in d.glob("*.bin")}
        jsons = {f.stem for f in d.glob("*.json")}
        assert bins == jsons
        for name in jsons:
            data, meta = _load(name, "" if d == VECTORS else "invalid")
            assert meta["msg_type"] in allowed, name
            assert meta["description"], name
            assert meta["size_bytes"] == len(data), name
    # The brief's minimum set is present.
    for name in [
        "samples_basic", "samples_full19", "samples_one", "status_basic", "info_basic",
        "response_ok_info", "response_error", "response_resend", "command_start",
        "command_configure", "command_buzz", "command_resend", "serial_samples_basic",
        "serial_command_get_info",
    ]:  # fmt: skip
        assert (VECTORS / f"{name}.bin").is_file(), name


def test_samples_basic_is_the_annotated_example_of_the_doc() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    block = doc.split("### Annotated example")[1].split("```")[1]
    hex_bytes = "".join(line.split("  ")[0].replace(" ", "") for line in block.strip().splitlines())
    data, _ = _load("samples_basic")
    assert data == bytes.fromhex(hex_bytes)


@pytest.mark.parametrize("name", _names("SAMPLES"))
def test_samples_vectors_decode(name: str) -> None:
    data, meta = _load(name)
    frame = p.decode_samples(data)
    assert frame.flags == meta["flags"]
    assert frame.flag_names == meta["flag_names"]
    assert frame.n_samples == meta["n_samples"]
    assert frame.seq == meta["seq"]
    assert frame.first_sample_index == meta["first_sample_index"]
    assert frame.tick_us == meta["tick_us"]
    assert frame.samples_raw.dtype == np.int16
    assert frame.samples_raw.shape == (meta["n_samples"], 6)
    assert frame.samples_raw.tolist() == meta["samples"]
    # and back
    encoded = p.encode_samples(
        meta["flags"], meta["seq"], meta["first_sample_index"], meta["tick_us"], meta["samples"]
    )
    assert encoded == data


def test_batch_decoder_matches_single_decoder() -> None:
    names = _names("SAMPLES")
    frames = [_load(n)[0] for n in names] * 3
    batch = p.decode_samples_batch(frames)
    assert len(batch) == len(frames)
    for i, raw in enumerate(frames):
        assert batch.frame(i) == p.decode_samples(raw)
    single = [p.decode_samples(f) for f in frames]
    expected_index = np.concatenate(
        [np.arange(f.first_sample_index, f.end_sample_index) for f in single]
    )
    assert np.array_equal(batch.sample_index, expected_index)
    assert np.array_equal(batch.samples_raw, np.concatenate([f.samples_raw for f in single]))


def test_batch_decoder_empty_and_bad_frame_position() -> None:
    batch = p.decode_samples_batch([])
    assert len(batch) == 0 and batch.samples_raw.shape == (0, 6)
    good, _ = _load("samples_basic")
    bad = bytearray(good)
    bad[0] = 2
    with pytest.raises(p.ProtocolError, match="frame 2") as e:
        p.decode_samples_batch([good, good, bytes(bad)])
    assert e.value.kind == "bad_version"
    with pytest.raises(p.ProtocolError, match="frame 1") as e:
        p.decode_samples_batch([good, good[:-1]])
    # n_samples says 2 but 3 samples of bytes are there: a length mismatch, found per frame.
    with pytest.raises(p.ProtocolError, match="frame 0") as e:
        p.decode_samples_batch([good + bytes(12)])
    assert e.value.kind == "length_mismatch"


def _check_status(st: p.Status, meta: dict[str, Any]) -> None:
    for key in (
        "flags", "battery_mv", "uptime_s", "fifo_overflows", "frames_dropped", "notify_backoffs",
        "i2c_errors", "imu_reinits", "next_seq", "next_sample_index", "fw_protocol_version", "boot_id",
    ):  # fmt: skip
        assert getattr(st, key) == meta[key], key
    assert list(st.fw_version) == meta["fw_version"]
    assert st.flag_names == meta["flag_names"]


def _check_info(info: p.DeviceInfo, meta: dict[str, Any]) -> None:
    for key in (
        "imu_kind", "board", "odr_hz", "accel_range_g", "gyro_range_dps", "dlpf_hz",
        "accel_lsb_per_g", "gyro_lsb_per_dps_x10", "samples_per_frame", "ring_frames", "boot_id",
        "att_mtu", "name",
    ):  # fmt: skip
        assert getattr(info, key) == meta[key], key
    assert list(info.fw_version) == meta["fw_version"]
    assert len(info.name) == meta["name_len"]
    assert math.isclose(info.accel_mps2_per_lsb, meta["accel_mps2_per_lsb"], rel_tol=1e-12)
    assert math.isclose(info.gyro_radps_per_lsb, meta["gyro_radps_per_lsb"], rel_tol=1e-12)


@pytest.mark.parametrize("name", _names("STATUS"))
def test_status_vectors(name: str) -> None:
    data, meta = _load(name)
    st = p.decode_status(data)
    _check_status(st, meta)
    assert p.decode_message(data) == st
    if not meta.get("decode_only"):
        assert p.encode_status(st) == data


@pytest.mark.parametrize("name", _names("INFO"))
def test_info_vectors(name: str) -> None:
    data, meta = _load(name)
    info = p.decode_info(data)
    _check_info(info, meta)
    assert info.imu_name == "ICM-42688-P" and info.board_name == "ESP32-S3"
    if not meta.get("decode_only"):
        assert p.encode_info(info) == data


@pytest.mark.parametrize("name", _names("RESPONSE"))
def test_response_vectors(name: str) -> None:
    data, meta = _load(name)
    r = p.decode_response(data)
    assert (r.opcode, r.token, r.result) == (meta["opcode"], meta["token"], meta["result"])
    assert r.result_name == meta["result_name"]
    if meta["opcode_name"] is not None:
        assert r.opcode_name == meta["opcode_name"]
    assert r.payload.hex() == meta["payload_hex"]
    payload = meta["payload"]
    if payload is None:
        assert r.detail is None
    elif "vector" in payload:
        inner, inner_meta = _load(payload["vector"])
        assert r.payload == inner
        assert isinstance(r.detail, p.DeviceInfo | p.Status)
        if payload["msg_type"] == "INFO":
            assert isinstance(r.detail, p.DeviceInfo)
            _check_info(r.detail, inner_meta)
        else:
            assert isinstance(r.detail, p.Status)
            _check_status(r.detail, inner_meta)
    elif "first_seq" in payload:
        assert r.detail == p.ResendQueued(payload["first_seq"], payload["count"])
        assert p.encode_resend_queued(payload["first_seq"], payload["count"]) == r.payload
    else:
        assert r.detail == p.ResendUnavailable(payload["oldest_seq"], payload["next_seq"])
        assert p.encode_resend_unavailable(payload["oldest_seq"], payload["next_seq"]) == r.payload
    assert p.encode_response(r.opcode, r.token, r.result, r.payload) == data


_HELPERS = {
    "START": p.start,
    "STOP": p.stop,
    "CONFIGURE": p.configure,
    "BUZZ": p.buzz,
    "IDENTIFY": p.identify,
    "STATUS_NOW": p.status_now,
    "SET_TRANSPORT": p.set_transport,
    "RESEND": p.resend,
    "GET_INFO": p.get_info,
    "REBOOT": p.reboot,
}


@pytest.mark.parametrize("name", _names("COMMAND"))
def test_command_vectors_encode(name: str) -> None:
    data, meta = _load(name)
    assert p.OPCODE_NAMES[meta["opcode"]] == meta["command"]
    # generic encoder, arguments in the order of section 6
    _, arg_names = p.COMMAND_ARGS[meta["opcode"]]
    assert list(meta["args"]) == list(arg_names)
    assert p.encode_command(meta["opcode"], meta["token"], *meta["args"].values()) == data
    # the per-command helper, by keyword
    assert _HELPERS[meta["command"]](**meta["args"], token=meta["token"]) == data
    # and what the device decodes
    cmd = p.decode_command(data)
    assert (cmd.opcode, cmd.token, cmd.args, cmd.name) == (
        meta["opcode"],
        meta["token"],
        meta["args"],
        meta["command"],
    )


def test_every_opcode_has_a_command_vector() -> None:
    covered = {json.loads((VECTORS / f"{n}.json").read_text())["opcode"] for n in _names("COMMAND")}
    assert covered == set(p.OPCODE_NAMES)


def test_serial_samples_vector() -> None:
    data, meta = _load("serial_samples_basic")
    message, _ = _load(meta["message_vector"])
    assert message.hex() == meta["message_hex"]
    assert sf.crc16(message) == meta["crc16"]
    assert data == bytes.fromhex(meta["cobs_hex"]) + b"\x00"
    assert sf.encode_frame(message) == data
    assert sf.cobs_decode(data[:-1]) == message + meta["crc16"].to_bytes(2, "little")
    reader = sf.FrameReader()
    assert reader.feed(data) == [message]
    assert reader.corrupt == 0


def test_serial_command_line_vector() -> None:
    data, meta = _load("serial_command_get_info")
    command, _ = _load(meta["command_vector"])
    assert command.hex() == meta["command_hex"]
    assert sf.crc16(command) == meta["crc16"]
    assert data.decode("ascii") == meta["line"]
    assert sf.encode_command_line(command) == data
    assert sf.decode_command_line(data) == command
    assert sf.decode_command_line(data.lower()) == command  # either case of hex is accepted
    assert b"\x03" not in data  # never Ctrl-C on the console


_DECODERS = {
    "samples": p.decode_samples,
    "status": p.decode_status,
    "info": p.decode_info,
    "response": p.decode_response,
    "any": p.decode_message,
}


def _invalid(decoder: str) -> list[str]:
    d = VECTORS / "invalid"
    return [
        j.stem for j in sorted(d.glob("*.json")) if json.loads(j.read_text())["decoder"] == decoder
    ]


@pytest.mark.parametrize("name", [n for k in _DECODERS for n in _invalid(k)])
def test_invalid_messages_are_refused_with_their_error(name: str) -> None:
    data, meta = _load(name, "invalid")
    with pytest.raises(p.ProtocolError) as e:
        _DECODERS[meta["decoder"]](data)
    assert e.value.kind == meta["error"], str(e.value)
    assert isinstance(e.value, ValueError)
    assert str(e.value)


@pytest.mark.parametrize("name", _invalid("serial"))
def test_invalid_serial_frames_are_dropped_and_counted(name: str) -> None:
    data, meta = _load(name, "invalid")
    with pytest.raises(p.ProtocolError) as e:
        sf.decode_frame(data[:-1])
    assert e.value.kind == meta["error"]
    reader = sf.FrameReader()
    good, _ = _load("serial_samples_basic")
    # the bad frame costs only itself: the good frame after it comes through
    assert reader.feed(data + good) == [_load("samples_basic")[0]]
    assert reader.corrupt == 1
    assert reader.corrupt_by_kind[meta["error"]] == 1


@pytest.mark.parametrize("name", _invalid("serial_line"))
def test_invalid_command_lines(name: str) -> None:
    data, meta = _load(name, "invalid")
    with pytest.raises(p.ProtocolError) as e:
        sf.decode_command_line(data)
    assert e.value.kind == meta["error"]


def test_every_invalid_vector_is_exercised() -> None:
    decoders = {json.loads(j.read_text())["decoder"] for j in (VECTORS / "invalid").glob("*.json")}
    assert decoders <= set(_DECODERS) | {"serial", "serial_line"}


def test_raw_to_si_uses_info_scale() -> None:
    info = p.decode_info(_load("info_basic")[0])
    frame = p.decode_samples(_load("samples_basic")[0])
    accel, gyro = p.raw_to_si(frame.samples_raw, info)
    assert accel.shape == (2, 3) and gyro.shape == (2, 3)
    assert accel[0, 2] == pytest.approx(9.80665)  # 4096 counts = 1 g at +-8 g
    assert gyro[0, 0] == pytest.approx(131 / 32.8 * math.pi / 180)
    assert gyro[1, 0] == pytest.approx(-32768 / 32.8 * math.pi / 180)
    with pytest.raises(ValueError):
        p.raw_to_si(np.zeros((3, 5), np.int16), info)


def test_encoders_refuse_values_that_do_not_fit() -> None:
    with pytest.raises(p.ProtocolError):
        p.resend(1 << 32, 1)
    with pytest.raises(p.ProtocolError):
        p.configure(70000, 8, 1000)
    with pytest.raises(p.ProtocolError):
        p.buzz(1, 256)
    with pytest.raises(p.ProtocolError):
        p.start(token=-1)
    with pytest.raises(p.ProtocolError):
        p.encode_command(p.OP_BUZZ, 0, 1)  # one argument missing
    with pytest.raises(p.ProtocolError):
        p.encode_samples(0, 0, 0, 0, np.zeros((20, 6)))
    # out-of-range values the device must judge are still sent
    assert p.configure(123, 3, 7, token=9) == bytes([3, 9, 123, 0, 3, 7, 0, 0, 0])
    assert p.encode_raw_command(0x42, 1, b"\x01") == b"\x42\x01\x01"


def test_command_decoder_lengths() -> None:
    with pytest.raises(p.ProtocolError) as e:
        p.decode_command(b"\x03\x01\xc8\x00")
    assert e.value.kind == "length_mismatch"
    unknown = p.decode_command(b"\x42\x07abc")
    assert unknown.opcode == 0x42 and unknown.extra == b"abc" and unknown.name == "opcode 0x42"


def test_samples_per_frame_for_mtu() -> None:
    assert p.samples_per_frame_for_mtu(247) == 19
    assert p.samples_per_frame_for_mtu(23) == 1
    assert p.samples_per_frame_for_mtu(100) == 6
    assert p.MAX_SAMPLES_FRAME_BYTES == 244


def test_constants_match_the_doc_tables() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    for code, name in p.RESULT_NAMES.items():
        assert f"| {code} | `{name}` |" in doc
    for op, name in p.OPCODE_NAMES.items():
        assert f"| `0x{op:02X}` | {name} |" in doc
    for pattern, shape in p.BUZZ_PATTERNS_MS.items():
        assert len(shape) % 2 == 1 and f"| {pattern} |" in doc
