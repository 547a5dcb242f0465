# Runs under real MicroPython (tests/mpy/run.mjs) with firmware/lib, host/tremorlift/twin/board and
# tests/firmware/fakes on sys.path. The authority on the firmware runtime's allocation:
#  1. App.pump() (FIFO -> ring -> notify, and RESEND serving) runs with the heap locked for
#     hundreds of polls at 200 Hz (MPU-6050, partial frames) and 1 kHz (ICM-42688-P, full
#     frames); the emulated IMU is advanced outside the locked region. Frames must come out
#     consecutive with every sample produced.
#  2. gc.mem_free() stays flat over thousands of full loop iterations (no leak).
#  3. The same behaviours as the CPython tests, briefly: commands and error codes, fuzzed
#     control writes, ENOMEM backoff, I2C errors -> re-init, no IMU, serial framing.
# Prints "RUNTIME OK" at the end; any failure raises (exit status 1).
# Raising an exception while the heap is locked hangs this WebAssembly port, so nothing
# that can raise runs locked except pump() itself (which must not raise).

import gc
import struct
import time

import micropython
import rig as R
from tremorlift_fw import protocol as P

gc.collect()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def check_stream(frames, produced, what):
    total = 0
    prev = None
    for raw in frames:
        f = R.parse_frame(raw)
        if prev is not None:
            check(f[2] == prev[2] + 1, what + ": seq jumps at " + str(f[2]))
            if not f[0] & (P.FLAG_GAP_BEFORE | P.FLAG_STREAM_START):
                check(f[3] == prev[3] + prev[1], what + ": index jumps at " + str(f[2]))
        prev = f
        total += f[1]
    check(total == produced, what + ": " + str(total) + " samples of " + str(produced))
    return total


def locked_pumps(rig, n_polls, dt_us):
    # Returns the wall time spent in pump() (us), a figure for this host, not a board.
    clock = rig.clock
    emu = rig.emu
    app = rig.app
    spent_us = 0
    for i in range(n_polls):
        emu.advance(dt_us)
        clock.advance_us(dt_us)
        t0 = time.ticks_us()
        micropython.heap_lock()
        app.pump()
        micropython.heap_unlock()
        spent_us += time.ticks_diff(time.ticks_us(), t0)
        if i % 16 == 15:
            rig.collect()
    rig.collect()
    return spent_us


# --- 1. zero allocation on the hot path ----------------------------------------------------
def hot_path(imu, odr_hz, n_polls, poll_us):
    rig = R.Rig(imu=imu, ring_frames=300)
    rig.connect(247)
    if odr_hz != 200:
        cfg = struct.pack("<HBHH", odr_hz, 8, 1000, 0)
        check(rig.command(R.command(P.OP_CONFIGURE, 1, cfg))[4] == P.RES_OK, "configure")
    check(rig.command(R.start_cmd(2))[4] == P.RES_OK, "start")
    for _ in range(20):  # warm-up, unlocked: first-use allocations are allowed here
        rig.step()
    rig.collect()
    spent_us = locked_pumps(rig, n_polls, poll_us)
    check_stream(
        rig.frames, rig.emu.samples_produced - rig.app.sampler.open_samples, imu + " locked"
    )
    sizes = [R.parse_frame(f)[1] for f in rig.frames]
    # Resends are served by pump() too: queue some, then serve them locked.
    ring = rig.app.ring
    first = ring.next_seq - 40
    resp = rig.command(R.command(P.OP_RESEND, 3, struct.pack("<IH", first, 40)))
    check(resp[4] == P.RES_OK, "resend queued")
    before = len(rig.frames)
    locked_pumps(rig, 40, 10_000)
    resent = [R.parse_frame(f) for f in rig.frames[before:] if f[2] & P.FLAG_RESENT]
    check([f[2] for f in resent] == list(range(first, first + 40)), "resent seqs")
    live = [f for f in rig.frames if not f[2] & P.FLAG_RESENT]
    check_stream(
        live, rig.emu.samples_produced - rig.app.sampler.open_samples, imu + " live during resend"
    )
    # Samples carry the IMU's values: still, z up, 1 g = 4096 at +-8 g.
    last = R.parse_frame(live[-1])
    check(struct.unpack_from("<hhh", last[5], 0) == (0, 0, 4096), "sample values")
    print(
        imu,
        odr_hz,
        "Hz:",
        n_polls,
        "locked polls,",
        len(live),
        "frames, sizes",
        min(sizes),
        "-",
        max(sizes),
        "| pump() mean",
        spent_us // n_polls,
        "us on this host",
    )
    return rig


hot_path("mpu6050", 200, 300, 10_000)  # 2 samples a poll: partial frames
hot_path("icm42688", 1000, 300, 25_000)  # 25 samples a poll: full frames and the rest

print("heap in use after the hot-path checks:", gc.mem_alloc())
# --- 2. the whole loop: locked, and gc.mem_free() flat ----------------------------------
# pump + service (events, status notifications every second, watchdog) + indicators (LED,
# haptic), i.e. everything the board's loop does between sleeps, with the heap locked.
rig = R.Rig(ring_frames=300)
rig.connect(247)
rig.command(R.start_cmd())
rig.command(R.command(P.OP_BUZZ, 2, b"\x03\x32"))
for _ in range(200):
    rig.step()
rig.collect()
rig.frames = []
rig.statuses = []
app = rig.app
rig.led_pin.history = None  # the emulated pins stop recording (their lists would grow)
rig.pwm.log = None
for _ in range(50):  # settle after the changes above, unlocked
    rig.step()
led_changes = rig.led_pin.changes
for i in range(1000):
    rig.advance(10)
    micropython.heap_lock()
    app.pump()
    app.service()
    app.indicators()
    micropython.heap_unlock()
    if i % 50 == 49:
        rig.collect()
check(len(rig.statuses) >= 9, "status notifications while locked")
check(rig.led_pin.changes - led_changes >= 30, "the LED's heartbeat while locked")
print("heap in use:", gc.mem_alloc())
# The same loop unlocked, watched through gc.mem_free() around the firmware's part only (the
# emulator allocates floats). A function, so the watching itself uses locals, not globals.


def watch_mem_free(rig, iterations):
    app = rig.app
    drop = 0
    for i in range(iterations):
        rig.advance(10)
        free0 = gc.mem_free()
        app.pump()
        app.service()
        app.indicators()
        d = free0 - gc.mem_free()
        if d:
            print("iteration", i, "changed gc.mem_free() by", -d)
        drop += d
        if i % 50 == 49:
            rig.collect()
    return drop


drop = watch_mem_free(rig, 500)
print("gc.mem_free() change over 500 loop iterations:", -drop, "bytes")
check(drop == 0, "the loop allocated " + str(drop) + " bytes")

# --- 3. behaviour --------------------------------------------------------------------------
# Every opcode answered with its code.
rig = R.Rig()
rig.connect()
cases = (
    (b"", 0, P.RES_BAD_LENGTH),
    (b"\x63\x01", 0x63, P.RES_UNKNOWN_OPCODE),
    (b"\x01\x01\x00", 1, P.RES_BAD_LENGTH),
    (b"\x03\x01" + struct.pack("<HBHH", 300, 8, 1000, 0), 3, P.RES_OUT_OF_RANGE),
    (b"\x03\x01" + struct.pack("<HBHH", 400, 4, 500, 0), 3, P.RES_OK),
    (b"\x04\x01\x03\x64", 4, P.RES_OK),
    (b"\x04\x01\x09\x64", 4, P.RES_OUT_OF_RANGE),
    (b"\x05\x01\x02", 5, P.RES_OK),
    (b"\x06\x01", 6, P.RES_OK),
    (b"\x07\x01\x01", 7, P.RES_OUT_OF_RANGE),
    (b"\x08\x01" + struct.pack("<IH", 0, 5), 8, P.RES_NOT_AVAILABLE),
    (b"\x09\x01", 9, P.RES_OK),
    (b"\x01\x01", 1, P.RES_OK),
    (b"\x03\x01" + struct.pack("<HBHH", 400, 4, 500, 0), 3, P.RES_BAD_STATE),
    (b"\x02\x01", 2, P.RES_OK),
    (b"\x0a\x01", 10, P.RES_OK),
)
for cmd, opcode, result in cases:
    resp = rig.command(cmd)
    check(resp[2] == opcode and resp[4] == result, "command " + repr(cmd) + " -> " + repr(resp))
rig.step(200)
check(rig.resets == 1, "reboot")

# Fuzzed writes: thousands of random and mutated commands, each answered with one
# response, and streaming goes on.
rig = R.Rig()
rig.connect()
rig.command(R.start_cmd())
VALID = (
    R.command(P.OP_START, 1),
    R.command(P.OP_CONFIGURE, 2, struct.pack("<HBHH", 400, 8, 1000, 0)),
    R.command(P.OP_BUZZ, 3, bytes((2, 80))),
    R.command(P.OP_IDENTIFY, 4, bytes((3,))),
    R.command(P.OP_STATUS_NOW, 5),
    R.command(P.OP_RESEND, 6, struct.pack("<IH", 0, 4)),
    R.command(P.OP_GET_INFO, 7),
)
seed = 12345


def rand():
    global seed
    seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
    return seed >> 8


for i in range(3000):
    if i % 2:
        n = rand() % 12
        cmd = bytearray(n)
        for k in range(n):
            cmd[k] = rand() & 0xFF
    else:
        cmd = bytearray(VALID[rand() % len(VALID)])
        what = rand() % 3
        if what == 0 and cmd:  # flip bytes
            for _ in range(1 + rand() % 3):
                cmd[rand() % len(cmd)] = rand() & 0xFF
        elif what == 1:  # truncate
            cmd = cmd[: rand() % (len(cmd) + 1)]
        else:  # extend
            cmd += bytes(rand() & 0xFF for _ in range(1 + rand() % 4))
    if len(cmd) and cmd[0] in (P.OP_STOP, P.OP_REBOOT, P.OP_SET_TRANSPORT):
        cmd[0] = 0x40  # these legitimately end or divert the stream
    resp = rig.command(bytes(cmd))
    check(resp[:2] == b"\x01\x02" and resp[4] <= P.RES_BUSY, "fuzz response")
    check(resp[2] == (cmd[0] if len(cmd) else 0), "fuzz response opcode")
    if i % 10 == 0:
        rig.step()
rig.run_ms(100)
live = [f for f in rig.frames if not f[2] & P.FLAG_RESENT]
check_stream(live, rig.emu.samples_produced - rig.app.sampler.open_samples, "fuzz")

# ENOMEM: counted, backed off, nothing lost.
rig = R.Rig()
rig.connect()
rig.command(R.start_cmd())
rig.run_ms(50)
rig.ble.enomem_next(4)
rig.run_ms(400)
check(rig.app.notify_backoffs == 4, "notify_backoffs")
check_stream(rig.frames, rig.emu.samples_produced - rig.app.sampler.open_samples, "enomem")

# I2C errors -> retries, then re-init with a gap.
rig = R.Rig()
rig.connect()
rig.command(R.start_cmd())
rig.run_ms(100)
rig.bus.fail_next(4)
rig.run_ms(200)
check(rig.app.imu_reinits == 1 and rig.app.status_flags() & P.ST_IMU_FAULT, "re-init")
gaps = [f for f in rig.frames if f[2] & P.FLAG_GAP_BEFORE]
check(len(gaps) == 1, "one gap")

# No IMU: advertising, answers, START -> HARDWARE_ERROR.
rig = R.Rig(imu=None)
check(rig.ble.adv is not None and rig.app.status_flags() & P.ST_IMU_MISSING, "no imu")
rig.connect()
check(rig.command(R.start_cmd())[4] == P.RES_HARDWARE_ERROR, "start without imu")

# Serial: command lines in, COBS frames out.
rig = R.Rig(serial=True, ble=False)


def line(cmd):
    body = bytearray(cmd) + struct.pack("<H", P.crc16(cmd, len(cmd)))
    return b">" + "".join(f"{b:02x}" for b in body).encode() + b"\n"


rig.port.feed(line(R.start_cmd(5)))
rig.run_ms(400)  # 80 samples at 200 Hz: frames of 8 samples (FRAME_MAX_AGE_MS)
out = bytes(rig.port.out)
check(out.count(b"\x00") >= 10, "serial messages")
check(out.endswith(b"\x00"), "delimited")
check(rig.app.ring.send_seq == rig.app.ring.next_seq > 0, "all frames sent over serial")

print("heap in use at the end:", gc.mem_alloc())
print("RUNTIME OK")
