"""A real board on --port, over USB serial: commands, STATUS/INFO contents, and streaming.

The board must run the tremorlift firmware (make flash PORT=...) with its IMU fitted and
lie still during the run (the gravity check expects about 1 g).
"""

from __future__ import annotations

import numpy as np
import pytest
from tremorlift import protocol as proto

pytestmark = pytest.mark.hil

TICK_WRAP_US = 1 << 30
STREAM_S = 2.0


def _info(board) -> proto.DeviceInfo:
    response = board.request(proto.get_info(board.token()))
    assert response.ok, response.result_name
    assert isinstance(response.detail, proto.DeviceInfo)
    return response.detail


def _status(board) -> proto.Status:
    token = board.token()
    response = board.request(proto.status_now(token))
    assert response.ok, response.result_name
    assert (response.opcode, response.token) == (proto.OP_STATUS_NOW, token)
    assert isinstance(response.detail, proto.Status)
    return response.detail


def test_get_info(board):
    token = board.token()
    response = board.request(proto.get_info(token))
    assert (response.opcode, response.token, response.result) == (proto.OP_GET_INFO, token, 0)
    info = response.detail
    assert isinstance(info, proto.DeviceInfo)
    assert info.imu_kind in (1, 2, 3, 4), "no IMU found: check the wiring (hardware/wiring.csv)"
    assert info.board in (1, 2, 3)
    assert info.odr_hz in (100, 200, 400, 1000)
    assert info.accel_range_g in (2, 4, 8, 16)
    assert info.gyro_range_dps in (250, 500, 1000, 2000)
    # Full scale is +-32768 counts on every supported IMU.
    assert info.accel_lsb_per_g == 32768 // info.accel_range_g
    assert abs(info.gyro_lsb_per_dps_x10 - 327680 / info.gyro_range_dps) <= 1
    assert 0 < info.dlpf_hz <= info.odr_hz
    assert 1 <= info.samples_per_frame <= proto.MAX_SAMPLES
    assert info.att_mtu >= 23
    if info.att_mtu > 23:  # a BLE link is up: frames must fit its notifications
        assert info.samples_per_frame <= proto.samples_per_frame_for_mtu(info.att_mtu)
    assert info.ring_frames > 0
    assert info.name.startswith("TL-") and len(info.name) == 7
    int(info.name[3:], 16)  # last four hex digits of the address


def test_status_now_agrees_with_info_and_counts_time(board):
    info = _info(board)
    first = _status(board)
    assert first.fw_version == info.fw_version
    assert first.boot_id == info.boot_id
    assert first.fw_protocol_version == proto.VERSION
    assert not first.streaming
    assert not first.flags & proto.ST_IMU_MISSING
    board.collect(1.2)
    second = _status(board)
    assert second.boot_id == first.boot_id
    assert 1 <= second.uptime_s - first.uptime_s <= 2
    assert second.next_seq == first.next_seq  # nothing streamed in between


def test_bad_line_and_unknown_opcode_are_answered(board):
    board.send_line(b">0907FFFF\n")  # GET_INFO with a wrong CRC
    bad = board.wait_response(0, 0, 2.0)
    assert bad is not None and bad.result == proto.RES_BAD_LENGTH
    token = board.token()
    unknown = board.request(proto.encode_raw_command(0x7E, token))
    assert (unknown.opcode, unknown.token, unknown.result) == (
        0x7E,
        token,
        proto.RES_UNKNOWN_OPCODE,
    )


def test_start_streams_consecutive_frames(board):
    info = _info(board)
    before = _status(board)
    assert board.request(proto.set_transport(1, token=board.token())).ok
    board.unsolicited.clear()
    try:
        # Frames that arrive while a RESPONSE is awaited land in board.unsolicited.
        assert board.request(proto.start(board.token())).ok
        messages = board.unsolicited[:]
        board.unsolicited.clear()
        messages += board.collect(STREAM_S)
        assert board.request(proto.stop(board.token())).ok
        messages += board.unsolicited
        board.unsolicited.clear()
    finally:
        board.request(proto.set_transport(0, token=board.token()))
    frames = [m for m in messages if isinstance(m, proto.SamplesFrame)]
    expected_frames = STREAM_S * info.odr_hz / info.samples_per_frame
    assert len(frames) >= 0.5 * expected_frames, f"{len(frames)} frames in {STREAM_S} s"

    assert frames[0].stream_start
    assert frames[0].seq == before.next_seq
    for prev, cur in zip(frames, frames[1:], strict=False):
        assert cur.seq == prev.seq + 1, f"seq {prev.seq} -> {cur.seq}"
        assert not cur.resent and not cur.stream_start
        assert 1 <= cur.n_samples <= proto.MAX_SAMPLES
        if cur.gap_before:
            assert cur.first_sample_index > prev.end_sample_index
        else:
            assert cur.first_sample_index == prev.end_sample_index
            # The IMU clock: a frame's first sample follows the previous by n / odr.
            dt_us = (cur.tick_us - prev.tick_us) % TICK_WRAP_US
            nominal_us = prev.n_samples * 1e6 / info.odr_hz
            assert 0.7 * nominal_us <= dt_us <= 1.3 * nominal_us + 10_000

    samples = np.concatenate([f.samples_raw for f in frames]).astype(np.float64)
    accel_g = samples[:, :3] / info.accel_lsb_per_g
    gyro_dps = samples[:, 3:] / (info.gyro_lsb_per_dps_x10 / 10)
    assert 0.85 <= float(np.median(np.linalg.norm(accel_g, axis=1))) <= 1.15
    assert float(np.median(np.abs(gyro_dps))) < 10.0  # lying still

    after = _status(board)
    assert not after.streaming
    assert after.next_seq == frames[-1].seq + 1
