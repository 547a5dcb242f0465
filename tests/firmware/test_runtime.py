"""The firmware runtime (app, sampler, ring, control, ble, serial_link, board) on an emulated board.

CPython: the real drivers against the register-level IMU emulators, the machine emulation and
a fake `bluetooth` module (tests/firmware/fakes). The same rig runs under real MicroPython in
test_runtime_mpy.py, which is the authority on allocation.
"""

import random
import struct

import bluetooth
import pytest
import rig as R
from tremorlift.twin.board import machine_emulation
from tremorlift_fw import app as app_module
from tremorlift_fw import ble as ble_module
from tremorlift_fw import config, protocol
from tremorlift_fw.board import Haptic
from tremorlift_fw.ring import Ring

P = protocol
ACCEL_1G_AT_8G = 4096


def frames_of(rig):
    rig.collect()
    return [R.parse_frame(f) for f in rig.frames]


def assert_consecutive(frames):
    for a, b in zip(frames, frames[1:], strict=False):
        assert b[2] == a[2] + 1, (a[:5], b[:5])
        if not b[0] & (P.FLAG_GAP_BEFORE | P.FLAG_STREAM_START):
            assert b[3] == a[3] + a[1], (a[:5], b[:5])


def streaming_rig(**kw):
    mtu = kw.pop("mtu", 247)
    rig = R.Rig(**kw)
    rig.connect(mtu)
    assert rig.command(R.start_cmd())[4] == P.RES_OK
    return rig


def test_frames_consecutive_with_correct_samples_and_ticks():
    source_calls = []

    def source(i):
        source_calls.append(i)
        return (i * 0.01, -i * 0.01, 9.80665, 0.0, 0.0, 0.001 * (i % 7))

    rig = streaming_rig(source=source)
    rig.run_ms(3000)
    frames = frames_of(rig)
    assert frames[0][0] == P.FLAG_STREAM_START
    assert all(f[0] == 0 for f in frames[1:])
    assert_consecutive(frames)
    total = sum(f[1] for f in frames)
    assert total == rig.emu.samples_produced == 600
    # Every sample arrives, in order, with the IMU's values (ax = i * 0.01 m/s^2 at 4096 LSB/g).
    k = 0
    for _flags, n, _seq, first, _tick, data in frames:
        assert first == k
        for s in range(n):
            ax, ay, az = struct.unpack_from("<hhh", data, 12 * s)
            expected = round((k + s) * 0.01 / 9.80665 * ACCEL_1G_AT_8G)
            assert abs(ax - expected) <= 1 and az == ACCEL_1G_AT_8G
        k += n
    # tick_us: the newest sample of a poll is at the read, one 5 ms period between samples.
    for (_, _n0, _, first0, tick0, _), (_, _, _, first1, tick1, _) in zip(
        frames, frames[1:], strict=False
    ):
        assert (tick1 - tick0) % (1 << 30) == (first1 - first0) * 5000


def test_partial_frames_wait_at_most_frame_max_age():
    rig = streaming_rig(mtu=247)
    # 200 Hz, a poll every 10 ms: 2 samples a poll. A frame stays open while its oldest sample
    # would still be younger than FRAME_MAX_AGE_MS (40 ms) at the next poll: 8 samples.
    sizes = []
    for _ in range(4):
        rig.step()
        sizes.append([f[1] for f in frames_of(rig)])
    assert sizes == [[], [], [], [8]]
    assert rig.app.sampler.open_samples == 0
    # At 1 kHz, frames fill the MTU: 19 samples, the rest carried to the next frame.
    fast = R.Rig()
    fast.connect(247)
    cfg = struct.pack("<HBHH", 1000, 8, 1000, 0)
    assert fast.command(R.command(P.OP_CONFIGURE, 1, cfg))[4] == P.RES_OK
    assert fast.command(R.start_cmd())[4] == P.RES_OK
    fast.run_ms(200)
    frames = frames_of(fast)
    assert [f[1] for f in frames[:-1]] == [19] * (len(frames) - 1)
    assert sum(f[1] for f in frames) + fast.app.sampler.open_samples == fast.emu.samples_produced


def test_start_refused_until_a_frame_fits_the_mtu():
    rig = R.Rig()
    rig.connect(23)  # no MTU exchange: a one-sample frame (28 bytes) does not fit in 20
    assert rig.command(R.start_cmd(1))[4] == P.RES_BAD_STATE
    assert not rig.app.streaming
    rig.connect(31)
    assert rig.command(R.start_cmd(2))[4] == P.RES_OK


@pytest.mark.parametrize(
    ("mtu", "spf"), [(31, 1), (50, 2), (100, 6), (185, 13), (247, 19), (517, 19)]
)
def test_frame_size_follows_the_mtu(mtu, spf):
    rig = streaming_rig(mtu=mtu)
    assert rig.command(R.command(P.OP_STOP, 2))[4] == P.RES_OK
    cfg = struct.pack("<HBHH", 1000, 8, 1000, 0)
    assert rig.command(R.command(P.OP_CONFIGURE, 3, cfg))[4] == P.RES_OK
    rig.frames.clear()
    rig.command(R.start_cmd(4))
    rig.run_ms(210, dt_ms=30)  # 30 samples a poll: enough for full frames
    frames = frames_of(rig)
    assert max(f[1] for f in frames) == spf
    assert all(len(raw) <= mtu - 3 for raw in rig.frames)
    info = rig.command(R.command(P.OP_GET_INFO, 5))
    assert info[5 + 18] == spf and struct.unpack_from("<H", info, 5 + 23)[0] == mtu


def test_ring_counts_frames_overwritten_before_sending():
    ring = Ring(4)
    for n in range(1, 7):
        ring.claim()
        ring.commit(n)
    assert (ring.oldest_seq, ring.next_seq, ring.frames_dropped, ring.send_seq) == (2, 6, 2, 2)
    ring.send_seq = 6
    ring.claim()
    ring.commit(1)
    assert ring.frames_dropped == 2  # the overwritten frame had been sent


def test_resend_serves_frames_flagged_resent_and_ring_unchanged():
    rig = streaming_rig(ring_frames=16)
    rig.run_ms(2000)  # 400 samples in 50 frames of 8: the ring holds the last 16
    originals = {R.parse_frame(f)[2]: f for f in rig.frames}
    ring = rig.app.ring
    assert ring.oldest_seq == ring.next_seq - 16
    rig.command(R.command(P.OP_STOP, 9))
    resp = rig.command(R.command(P.OP_RESEND, 10, struct.pack("<IH", 30, 10)))
    assert resp[:5] == bytes((1, 2, P.OP_RESEND, 10, P.RES_OK))
    first, count = struct.unpack_from("<IH", resp, 5)
    assert (first, count) == (ring.oldest_seq, 40 - ring.oldest_seq)
    busy = rig.command(R.command(P.OP_RESEND, 11, struct.pack("<IH", 40, 2)))
    assert busy == bytes((1, 2, P.OP_RESEND, 11, P.RES_BUSY))
    rig.frames.clear()
    rig.run_ms(50)
    resent = [R.parse_frame(f) for f in rig.frames]
    assert [f[2] for f in resent] == list(range(first, first + count))
    for f, raw in zip(resent, rig.frames, strict=True):
        assert f[0] & P.FLAG_RESENT
        original = originals[f[2]]
        assert raw[3:] == original[3:] and raw[2] == original[2] | P.FLAG_RESENT
        slot = ring.frames[f[2] % ring.n_frames]
        assert slot[2] & P.FLAG_RESENT == 0  # the stored frame is unchanged
    gone = rig.command(R.command(P.OP_RESEND, 12, struct.pack("<IH", 0, 5)))
    assert gone[4] == P.RES_NOT_AVAILABLE
    assert struct.unpack_from("<II", gone, 5) == (ring.oldest_seq, ring.next_seq)
    future = rig.command(R.command(P.OP_RESEND, 13, struct.pack("<IH", ring.next_seq, 1)))
    assert future[4] == P.RES_NOT_AVAILABLE
    assert (
        rig.command(R.command(P.OP_RESEND, 14, struct.pack("<IH", 0, 0)))[4] == P.RES_OUT_OF_RANGE
    )
    assert (
        rig.command(R.command(P.OP_RESEND, 15, struct.pack("<IH", 0, 1025)))[4]
        == P.RES_OUT_OF_RANGE
    )


def test_frames_dropped_when_nobody_listens():
    rig = streaming_rig(ring_frames=8)
    rig.ble.disconnect()
    rig.run_ms(1200)  # 240 samples in 30 frames of 8, nobody to send them to
    rig.connect()
    resp = rig.command(R.command(P.OP_STATUS_NOW, 1))
    status = resp[5:]
    assert struct.unpack_from("<I", status, 14)[0] == rig.app.ring.frames_dropped == 30 - 8
    rig.frames.clear()
    rig.run_ms(100)
    seqs = [R.parse_frame(f)[2] for f in rig.frames]
    # Sending resumes at the oldest frame the ring still holds (frames 0-21 were overwritten
    # unsent); frames made meanwhile may overwrite one more. Nothing after it is missing.
    dropped = rig.app.ring.frames_dropped
    assert dropped in (22, 23) and seqs[0] == dropped
    assert seqs == list(range(dropped, dropped + len(seqs)))


CONFIG_OK = struct.pack("<HBHH", 400, 16, 2000, 0)


@pytest.mark.parametrize(
    ("cmd", "result", "payload_len"),
    [
        (b"", P.RES_BAD_LENGTH, 0),
        (b"\x01", P.RES_BAD_LENGTH, 0),
        (b"\x63\x07", P.RES_UNKNOWN_OPCODE, 0),
        (b"\x00\x07", P.RES_UNKNOWN_OPCODE, 0),
        (b"\x01\x07\x00", P.RES_BAD_LENGTH, 0),
        (b"\x03\x07" + CONFIG_OK[:-1], P.RES_BAD_LENGTH, 0),
        (b"\x03\x07" + struct.pack("<HBHH", 300, 8, 1000, 0), P.RES_OUT_OF_RANGE, 0),
        (b"\x03\x07" + struct.pack("<HBHH", 200, 3, 1000, 0), P.RES_OUT_OF_RANGE, 0),
        (b"\x03\x07" + struct.pack("<HBHH", 200, 8, 125, 0), P.RES_OUT_OF_RANGE, 0),
        (b"\x03\x07" + struct.pack("<HBHH", 200, 8, 1000, 900), P.RES_OUT_OF_RANGE, 0),
        (b"\x03\x07" + CONFIG_OK, P.RES_OK, 27 + 7),
        (b"\x04\x07\x01\x50", P.RES_OK, 0),
        (b"\x04\x07\x05\x50", P.RES_OUT_OF_RANGE, 0),
        (b"\x04\x07\x01\x00", P.RES_OUT_OF_RANGE, 0),
        (b"\x04\x07\x01\x65", P.RES_OUT_OF_RANGE, 0),
        (b"\x04\x07\x01", P.RES_BAD_LENGTH, 0),
        (b"\x05\x07\x03", P.RES_OK, 0),
        (b"\x05\x07\x00", P.RES_OUT_OF_RANGE, 0),
        (b"\x05\x07\x3d", P.RES_OUT_OF_RANGE, 0),
        (b"\x06\x07", P.RES_OK, 44),
        (b"\x06\x07\x00", P.RES_BAD_LENGTH, 0),
        (b"\x07\x07\x00", P.RES_OK, 0),
        (b"\x07\x07\x01", P.RES_OUT_OF_RANGE, 0),  # no serial port on this board
        (b"\x07\x07\x02", P.RES_OUT_OF_RANGE, 0),
        (b"\x08\x07\x00\x00\x00\x00\x01", P.RES_BAD_LENGTH, 0),
        (b"\x09\x07", P.RES_OK, 27 + 7),
        (b"\x0a\x07", P.RES_OK, 0),
        (b"\x02\x07", P.RES_OK, 0),
    ],
)
def test_command_results(cmd, result, payload_len):
    rig = R.Rig()
    rig.connect()
    resp = rig.command(cmd)
    opcode = cmd[0] if cmd else 0
    token = cmd[1] if len(cmd) >= 2 else 0
    assert resp[:5] == bytes((1, 2, opcode, token, result))
    assert len(resp) == 5 + payload_len


def test_configure_while_streaming_is_bad_state_and_configure_applies():
    rig = streaming_rig()
    assert rig.command(b"\x03\x01" + CONFIG_OK)[4] == P.RES_BAD_STATE
    rig.command(R.command(P.OP_STOP, 2))
    resp = rig.command(b"\x03\x03" + CONFIG_OK)
    assert resp[4] == P.RES_OK
    info = resp[5:]
    assert info[:2] == bytes((1, 4))
    odr, accel, gyro, dlpf, lsb_g, lsb_dps = struct.unpack_from("<HBHHHH", info, 7)
    assert (odr, accel, gyro, lsb_g, lsb_dps) == (400, 16, 2000, 2048, 164)
    assert info[27:] == b"TL-2B3C" and rig.ble.values[rig.h_info] == info


def test_start_stop_buzz_identify_reboot_effects():
    rig = R.Rig()
    rig.connect()
    assert rig.command(R.start_cmd())[4] == P.RES_OK
    assert rig.command(R.start_cmd(2))[4] == P.RES_OK  # already streaming: goes on
    assert rig.app.status_flags() & P.ST_STREAMING
    rig.command(R.command(P.OP_STOP, 3))
    rig.run_ms(100)
    made = rig.app.ring.next_seq
    rig.run_ms(100)
    assert rig.app.ring.next_seq == made  # stopped
    # BUZZ WARN at 50 %: 150 on, 100 off, 150 on on the haptic PWM.
    rig.pwm.log.clear()
    rig.command(R.command(P.OP_BUZZ, 4, b"\x02\x32"))
    for _ in range(50):
        rig.step(10)
    duty = [v for what, v in rig.pwm.log if what == "duty_u16"]
    assert duty == [65535 * 50 // 100, 0, 65535 * 50 // 100, 0]
    # IDENTIFY 1 s: the LED blinks fast (100 ms on/off), then goes back to its mode.
    rig.led_pin.history.clear()
    rig.command(R.command(P.OP_IDENTIFY, 5, b"\x01"))
    for _ in range(100):
        rig.step(10)
    assert len(rig.led_pin.history) >= 9
    assert not rig.app.led.identifying
    # REBOOT: answered, then the reset ~100 ms later.
    rig.command(R.command(P.OP_REBOOT, 6))
    assert rig.resets == 0
    rig.step(50)
    assert rig.resets == 0
    rig.step(60)
    assert rig.resets == 1


def test_status_now_notifies_status_too():
    rig = streaming_rig()
    rig.run_ms(1200)
    rig.statuses.clear()
    resp = rig.command(R.command(P.OP_STATUS_NOW, 8))
    status = resp[5:]
    assert len(status) == 44 and status[:2] == bytes((1, 3))
    (flags, battery_mv, uptime_s) = struct.unpack_from("<HHI", status, 2)
    assert flags & P.ST_STREAMING and battery_mv == 3900 and uptime_s == 1
    next_seq, next_index = struct.unpack_from("<II", status, 30)
    assert (next_seq, next_index) == (rig.app.ring.next_seq, rig.app.sampler.next_sample_index)
    assert (
        status[38:42] == bytes((*config.FW_VERSION, 1))
        and struct.unpack_from("<H", status, 42)[0] == 0x1234
    )
    rig.step()
    rig.collect()
    assert rig.statuses and rig.statuses[-1][:2] == bytes((1, 3))


def test_fuzzed_control_writes_each_get_one_response_and_streaming_goes_on():
    rng = random.Random(7)
    rig = streaming_rig()
    valid = [
        bytes((P.OP_STATUS_NOW, 1)),
        bytes((P.OP_GET_INFO, 2)),
        b"\x03\x03" + CONFIG_OK,
        b"\x04\x04\x01\x10",
        b"\x08\x05" + struct.pack("<IH", 3, 2),
        b"\x05\x06\x02",
    ]
    for _i in range(300):
        kind = rng.random()
        if kind < 0.3:
            cmd = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        else:
            cmd = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 3)):
                what = rng.random()
                if what < 0.4 and cmd:
                    cmd[rng.randrange(len(cmd))] = rng.randrange(256)
                elif what < 0.7:
                    cmd = cmd[: rng.randrange(len(cmd) + 1)]
                else:
                    cmd += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
            cmd = bytes(cmd)
        if cmd[:1] in (bytes((P.OP_REBOOT,)), bytes((P.OP_STOP,)), bytes((P.OP_SET_TRANSPORT,))):
            continue  # these legitimately end or divert the stream
        resp = rig.command(cmd)
        assert resp[:2] == bytes((1, 2)) and resp[2] == (cmd[0] if cmd else 0)
        assert resp[4] <= P.RES_BUSY
        rig.step()
    rig.run_ms(200)
    frames = [f for f in frames_of(rig) if not f[0] & P.FLAG_RESENT]
    assert_consecutive(frames)
    assert sum(f[1] for f in frames) + rig.app.sampler.open_samples == rig.emu.samples_produced
    assert rig.app.streaming


def test_enomem_backs_off_counts_and_loses_nothing():
    rig = streaming_rig()
    rig.run_ms(100)
    rig.ble.enomem_next(3)
    for _ in range(20):
        rig.step()
    rig.run_ms(300)
    assert rig.app.notify_backoffs == 3 and rig.ble.enomem_raised == 3
    assert rig.ble.disconnect_requests == 0
    frames = frames_of(rig)
    assert_consecutive(frames)
    assert sum(f[1] for f in frames) + rig.app.sampler.open_samples == rig.emu.samples_produced
    status = rig.command(R.command(P.OP_STATUS_NOW, 1))[5:]
    assert struct.unpack_from("<I", status, 18)[0] == 3


def test_enomem_backoff_waits_before_retrying():
    rig = streaming_rig()
    rig.run_ms(40)  # the first frame (8 samples at 200 Hz) goes out
    rig.collect()
    rig.run_ms(30)  # the next one is due at the next poll
    sent = rig.ble.notify_count
    rig.ble.enomem_next(1)
    rig.advance(10)
    rig.app.pump()  # refused: backs off NOTIFY_BACKOFF_MS
    rig.advance(config.NOTIFY_BACKOFF_MS - 10)
    rig.app.pump()
    assert rig.ble.notify_count == sent
    rig.advance(10)
    rig.app.pump()
    assert rig.ble.notify_count > sent


def test_enomem_on_a_response_still_answers_once():
    rig = streaming_rig()
    rig.ble.enomem_next(1)
    rig.ble.write_control(rig.h_control, R.command(P.OP_GET_INFO, 9))
    rig.app.service()
    rig.collect()
    assert not rig.responses[1:]  # only START's so far
    rig.step()
    rig.collect()
    assert [r[2:4] for r in rig.responses] == [bytes((1, 1)), bytes((9, 9))]


def test_i2c_errors_retried_then_imu_reinitialised_with_gap():
    rig = streaming_rig()
    rig.run_ms(200)
    rig.bus.fail_next(config.I2C_RETRIES)  # recovered by retrying
    rig.run_ms(100)
    assert rig.app.imu_reinits == 0 and rig.app.i2c_errors == config.I2C_RETRIES
    rig.bus.fail_next(config.I2C_RETRIES + 1)
    rig.run_ms(300)
    assert rig.app.imu_reinits == 1
    assert rig.app.status_flags() & P.ST_IMU_FAULT
    frames = frames_of(rig)
    gaps = [f for f in frames if f[0] & P.FLAG_GAP_BEFORE]
    assert len(gaps) == 1
    assert_consecutive(frames)
    # Indices still follow time: the last sample's index matches the samples produced.
    last = frames[-1]
    assert abs(last[3] + last[1] + rig.app.sampler.open_samples - rig.emu.samples_produced) <= 2


def test_fifo_overflow_marks_gap_and_estimates_lost_samples():
    rig = streaming_rig()
    rig.run_ms(100)
    rig.advance(1500)  # the loop stalls 1.5 s: the 1 KB FIFO (85 samples) overflows
    rig.run_ms(200)
    frames = frames_of(rig)
    gap = [f for f in frames if f[0] & P.FLAG_GAP_BEFORE]
    assert len(gap) == 1 and rig.app.sampler.fifo_overflows == 1
    assert rig.app.status_flags() & P.ST_FIFO_OVERFLOW
    assert_consecutive(frames)
    last = frames[-1]
    assert abs(last[3] + last[1] + rig.app.sampler.open_samples - rig.emu.samples_produced) <= 2


def test_no_imu_keeps_advertising_answers_and_finds_it_later():
    rig = R.Rig(imu=None)
    assert rig.app.status_flags() & P.ST_IMU_MISSING
    assert rig.ble.adv is not None
    rig.step()
    assert rig.app.led.mode == app_module.LED_NO_IMU
    rig.connect()
    assert rig.command(R.start_cmd())[4] == P.RES_HARDWARE_ERROR
    assert rig.command(b"\x03\x02" + CONFIG_OK)[4] == P.RES_HARDWARE_ERROR
    info = rig.command(R.command(P.OP_GET_INFO, 3))
    assert info[5 + 5] == 0  # imu_kind none
    # The IMU turns up (a loose connector reseated): found at the next detection round.
    from tremorlift.twin.board import imu_emulator

    rig.emu = imu_emulator.Icm42688Emulator()
    rig.bus.attach(rig.emu)
    rig.run_ms(app_module.IMU_DETECT_RETRY_MS + 20)
    assert rig.app.imu is not None and not rig.app.status_flags() & P.ST_IMU_MISSING
    assert rig.command(R.start_cmd(4))[4] == P.RES_OK
    rig.run_ms(100)
    assert frames_of(rig)


def test_gatt_table_and_advertising_match_the_protocol():
    rig = R.Rig()
    ble = rig.ble
    (service_uuid, chars) = ble.services[0]
    assert service_uuid == bluetooth.UUID("7a1f0001-4c3b-4e0c-9b5a-2d8e6f1c3a70")
    flags = [c[1] for c in chars]
    assert [c[0].value for c in chars] == [
        f"7a1f000{i}-4c3b-4e0c-9b5a-2d8e6f1c3a70" for i in (2, 3, 4, 5)
    ]
    # Control is write-encrypted by default (config.REQUIRE_ENCRYPTED_CONTROL, 0x1000).
    assert flags == [0x10, 0x08 | 0x10 | 0x1000, 0x02 | 0x10, 0x02]
    assert ble.buffers[rig.h_control] >= 20
    assert ble._config["mtu"] == 247 and ble._config["gap_name"] == "TL-2B3C"
    interval_us, adv, resp, connectable = ble.adv
    assert interval_us == 100_000 and connectable
    uuid_le = bytes(reversed(bytes.fromhex("7a1f00014c3b4e0c9b5a2d8e6f1c3a70")))
    assert adv == b"\x02\x01\x06" + b"\x11\x07" + uuid_le + b"\x05\x12\x06\x00\x0c\x00"
    assert len(adv) <= 31
    pct = (3900 - 3300) * 100 // (4150 - 3300)
    assert resp == b"\x08\x09TL-2B3C" + bytes(
        (6, 0xFF, 0xFF, 0xFF, 1, pct, rig.app.status_flags() & 0xFF)
    )
    # Advertising resumes after a disconnect; the status and info values are readable.
    rig.connect()
    assert ble.adv is None
    ble.disconnect()
    rig.app.service()
    assert ble.adv is not None
    assert ble.values[rig.h_info][:2] == bytes((1, 4)) and ble.values[rig.h_status][:2] == bytes(
        (1, 3)
    )


def test_encrypted_control_flag_and_status(monkeypatch):
    monkeypatch.setattr(config, "REQUIRE_ENCRYPTED_CONTROL", True)
    rig = R.Rig()
    assert rig.ble.handles["7a1f0003-4c3b-4e0c-9b5a-2d8e6f1c3a70"][1] == 0x08 | 0x10 | 0x1000
    rig.connect()
    rig.ble.encrypt(True)
    rig.app.service()
    assert rig.app.status_flags() & P.ST_ENCRYPTED


def test_name_and_uuid_helpers():
    assert ble_module.name_from_mac(b"\x01\x02\x03\x04\x1a\x2b") == "TL-1A2B"
    assert ble_module.uuid128_le("00000000-0000-0000-0000-000000000001")[0] == 1


def cobs_decode(data):
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        out += data[i + 1 : i + code]
        i += code
        if code < 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def serial_messages(raw):
    msgs = []
    for chunk in bytes(raw).split(b"\x00")[:-1]:
        decoded = cobs_decode(chunk)
        body, crc = decoded[:-2], struct.unpack("<H", decoded[-2:])[0]
        assert P.crc16(body, len(body)) == crc
        msgs.append(body)
    return msgs


def command_line(cmd):
    crc = P.crc16(cmd, len(cmd))
    return b">" + (cmd + struct.pack("<H", crc)).hex().encode() + b"\n"


def test_serial_transport_frames_out_and_command_lines_in():
    rig = R.Rig(serial=True)
    rig.connect()
    rig.port.feed(b"noise\r\n" + command_line(R.command(P.OP_SET_TRANSPORT, 1, b"\x01")))
    rig.port.feed(command_line(R.start_cmd(2)).upper().replace(b"\n", b"\r"))
    rig.port.feed(b">0102zz\n" + b">" + b"0" * 700 + b"\n")
    rig.run_ms(1100)
    msgs = serial_messages(rig.port.out)
    responses = [m for m in msgs if m[1] == P.MSG_RESPONSE]
    assert responses[:2] == [bytes((1, 2, 7, 1, 0)), bytes((1, 2, 1, 2, 0))]
    assert responses[2:] == [bytes((1, 2, 0, 0, P.RES_BAD_LENGTH))] * 2
    frames = [R.parse_frame(m) for m in msgs if m[1] == P.MSG_SAMPLES]
    assert max(f[1] for f in frames) <= 19 and frames[0][0] == P.FLAG_STREAM_START
    assert_consecutive(frames)
    assert sum(f[1] for f in frames) + rig.app.sampler.open_samples == rig.emu.samples_produced
    assert any(
        m[1] == P.MSG_STATUS and struct.unpack_from("<H", m, 2)[0] & P.ST_SERIAL_TRANSPORT
        for m in msgs
    )
    rig.collect()
    assert not rig.frames  # nothing went over BLE meanwhile
    # Back to BLE from the serial side.
    rig.port.feed(command_line(R.command(P.OP_SET_TRANSPORT, 3, b"\x00")))
    rig.run_ms(100)
    assert rig.frames


def test_tick_us_wraps_at_2_30():
    rig = streaming_rig(start_us=(1 << 30) - 50_000)
    rig.run_ms(200)
    frames = frames_of(rig)
    assert all(0 <= f[4] < (1 << 30) for f in frames)
    assert_consecutive(frames)
    for a, b in zip(frames, frames[1:], strict=False):
        assert (b[4] - a[4]) % (1 << 30) == (b[3] - a[3]) * 5000


def test_safe_mode_button_and_flag():
    clock = machine_emulation.ManualClock()

    class PressedAfter:
        # BOOT is a strapping pin: it can only be pressed after the board has started.
        def __init__(self, low_after_reads):
            self.reads = 0
            self.low_after = low_after_reads

        def value(self):
            self.reads += 1
            clock.advance_ms(10)
            return 0 if self.reads > self.low_after else 1

    assert app_module.safe_mode_requested(PressedAfter(3), clock, 1500, poll_ms=0)
    assert not app_module.safe_mode_requested(PressedAfter(1000), clock, 1500, poll_ms=0)
    # Low from the first read on (stuck or shorted pin): never a press.
    assert not app_module.safe_mode_requested(PressedAfter(0), clock, 1500, poll_ms=0)
    rig = R.Rig()
    rig.app.safe_mode = True
    assert rig.app.status_flags() & P.ST_SAFE_MODE


def test_watchdog_fed_and_battery_low_flag():
    rig = R.Rig(battery_mv=3350)
    rig.run_ms(1100)
    assert rig.wdt.feeds > 100 and not rig.wdt.expired()
    assert rig.app.status_flags() & P.ST_LOW_BATTERY
    assert rig.app.battery.percent(0) == 255


def test_led_modes_follow_state():
    rig = R.Rig()
    rig.step()
    assert rig.app.led.mode == app_module.LED_ADVERTISING
    rig.connect()
    rig.step()
    assert rig.app.led.mode == app_module.LED_CONNECTED and rig.led_pin.value() == 1
    rig.command(R.start_cmd())
    rig.step()
    assert rig.app.led.mode == app_module.LED_STREAMING


def test_run_drives_the_loop_on_an_asyncio_clock():
    import asyncio

    rig = R.Rig()
    rig.connect()
    rig.command(R.start_cmd())

    async def scenario():
        task = asyncio.create_task(rig.app.run())
        for _ in range(100):
            rig.emu.advance(1000)
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert frames_of(rig)


def test_app_main_builds_the_board_from_config(monkeypatch):
    """app.main() on the emulated machine: pins from config, BLE, serial, then asyncio.run."""
    import sys

    from tremorlift.twin.board import imu_emulator
    from tremorlift_fw import serial_link

    machine = machine_emulation.install()
    bus = imu_emulator.FakeI2C()
    bus.attach(imu_emulator.Icm42688Emulator())
    machine.attach_i2c_bus(0, bus)
    monkeypatch.setattr(serial_link, "UsbSerialPort", R.FakePort)
    ran = []

    def fake_run(coro):
        ran.append(coro.cr_frame.f_locals["self"])  # the App whose run() it is
        coro.close()

    monkeypatch.setattr(app_module.asyncio, "run", fake_run)
    from tremorlift_fw import clock as clock_module

    # CPython's time has no ticks_*: the board clock is swapped for the emulated one.
    monkeypatch.setattr(clock_module, "BoardClock", machine_emulation.ManualClock)
    try:
        app_module.main()
    finally:
        del sys.modules["machine"]
    assert len(ran) == 1
    app = ran[0]
    assert app.imu is not None and app.imu.KIND == 3 and app.board_kind == 1
    assert app.name.startswith("TL-") and app.wdt is not None


def test_haptic_pwm_is_off_from_its_first_cycle():
    # machine.PWM(pin) on an ESP32 starts the output at 5 kHz, 50 % duty, which pulses the
    # motor at boot: the firmware gives the frequency and duty 0 to the constructor.
    class BoardPwm(machine_emulation.PWM):
        def __init__(self, pin, *, freq=None, duty_u16=None):
            super().__init__(
                pin,
                freq=5000 if freq is None else freq,
                duty_u16=32768 if duty_u16 is None else duty_u16,
            )

    class Board:
        Pin = machine_emulation.Pin
        PWM = BoardPwm

    pwm = app_module.haptic_pwm(Board, 25)
    assert pwm.log == [("freq", config.HAPTIC_PWM_FREQ_HZ)]
    Haptic(pwm, config.HAPTIC_PWM_FREQ_HZ)
    assert all(v == 0 for k, v in pwm.log if k == "duty_u16")


def test_gap_advertise_refused_is_retried_with_backoff():
    # NimBLE's gap_advertise raises OSError while the stack is busy (e.g. still closing the
    # last link): the firmware must not crash (and reset-loop) but try again later.
    rig = R.Rig()
    rig.connect()
    real = rig.ble.gap_advertise
    calls = []

    def refusing(*args, **kw):
        calls.append(rig.clock.ticks_ms())
        if len(calls) <= 3:
            raise OSError(16)  # EBUSY
        real(*args, **kw)

    rig.ble.gap_advertise = refusing
    rig.ble.disconnect()
    rig.run_ms(2000)
    assert len(calls) == 4 and rig.app.ble.advertising
    assert rig.app.ble.advertise_errors == 3
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert gaps[0] >= app_module.ADVERTISE_RETRY_MIN_MS and gaps[1] >= 2 * gaps[0] - 10


def test_an_event_raised_while_the_loop_takes_the_last_one_is_not_lost():
    # The IRQ handler can run between any two bytecodes of the loop: an MTU update raised
    # while take_mtu_change() consumes the previous one must still be seen.
    import sys

    rig = R.Rig()
    rig.connect(mtu=0)
    ble = rig.app.ble
    rig.ble.exchange_mtu(100)
    fired = []

    def tracer(frame, event, arg):
        if frame.f_code.co_name != "take_mtu_change":
            return None

        def local(frame, event, arg):
            if event == "line" and not fired and frame.f_lineno > frame.f_code.co_firstlineno + 1:
                fired.append(frame.f_lineno)
                rig.ble.exchange_mtu(247)  # the IRQ, mid-way through the take
            return local

        return local

    sys.settrace(tracer)
    try:
        first = ble.take_mtu_change()
    finally:
        sys.settrace(None)
    assert fired and first
    assert ble.take_mtu_change(), "the MTU update raised during the take was lost"
    assert not ble.take_mtu_change()
    assert ble.att_mtu == 247


def test_ring_memory_comes_in_small_blocks():
    # One 73 KB block may not exist on a classic ESP32 heap (grown from IDF memory in
    # pieces) and is then missing for NimBLE: the ring is made of blocks of 16 frames.
    import gc

    from tremorlift_fw import ring as ring_module

    ring = Ring(config.RING_FRAMES)
    owned = [
        o
        for o in gc.get_referents(*vars(ring).values())
        if isinstance(o, bytearray) and o is not ring.counts
    ]
    assert (
        owned and max(len(b) for b in owned) <= ring_module.CHUNK_FRAMES * ring_module.FRAME_BYTES
    )
    assert sum(len(b) for b in owned) == config.RING_FRAMES * ring_module.FRAME_BYTES
    assert len({id(f.obj) for f in ring.frames}) == -(
        -config.RING_FRAMES // ring_module.CHUNK_FRAMES
    )
    assert all(len(f) == ring_module.FRAME_BYTES for f in ring.frames)
    assert all(len(s) == ring_module.FRAME_BYTES - 16 for s in ring.samples)
