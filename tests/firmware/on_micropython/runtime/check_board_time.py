# Runs under real MicroPython (tests/mpy/run.mjs) with firmware/lib, host/tremorlift/twin/board
# and tests/firmware/fakes on sys.path. Board defects that only show over long times or at the
# IMU's start-up, each reported on its own line, "OK <name>: ..." or "FAIL <name>: ...":
#   sleep_ms   BoardClock.sleep_ms allocates nothing per await (heap locked)
#   uptime     the loop allocates nothing once the uptime is past 2^30 ms (12.4 days)
#   gap_10min  the samples lost while the IMU was missing 10 min are counted (> 8.9 min)
#   gap_25min  ... and 25 min (> 17.9 min, a whole ticks_us wrap)
#   icm_start  no ICM-42688-P start-up sample reaches a frame, at START and after a re-init
#   serial_uart  on a UART-bridged board (115200 baud) a rate whose stream needs more than the
#              UART carries is refused on serial (CONFIGURE, SET_TRANSPORT); native USB takes it
# Allocation is measured with gc.mem_alloc() and the collector off, so a defect prints a byte
# count instead of raising under heap_lock (which hangs this WebAssembly port); only code already
# measured at 0 bytes is then run again with the heap locked.

import gc
import struct

import micropython
import rig as R
from tremorlift_fw import clock as board_clock
from tremorlift_fw import protocol as P

try:
    import machine_emulation as M
except ImportError:
    from tremorlift.twin.board import machine_emulation as M

_TICKS_MAX = (1 << 30) - 1
results = []


def report(name, ok, detail):
    results.append(ok)
    print(("OK " if ok else "FAIL ") + name + ": " + detail)


class WrapClock:
    """ManualClock's interface with ticks kept wrapped, so it stays on small ints (no
    allocation of its own) however long the board has been up."""

    def __init__(self, start_us=1_000_000):
        self.us = start_us & _TICKS_MAX
        self.ms = (start_us // 1000) & _TICKS_MAX
        self._sub_ms_us = start_us % 1000

    def advance_us(self, dt_us):
        self.us = (self.us + dt_us) & _TICKS_MAX
        t = self._sub_ms_us + dt_us
        self.ms = (self.ms + t // 1000) & _TICKS_MAX
        self._sub_ms_us = t % 1000

    def advance_ms(self, dt_ms):
        self.us = (self.us + dt_ms * 1000) & _TICKS_MAX
        self.ms = (self.ms + dt_ms) & _TICKS_MAX

    def ticks_us(self):
        return self.us

    def ticks_ms(self):
        return self.ms

    def ticks_diff(self, a, b):
        return M.ticks_diff(a, b)

    def ticks_add(self, a, delta):
        return M.ticks_add(a, delta)


def allocated(fn, *args):
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    fn(*args)
    after = gc.mem_alloc()
    gc.enable()
    return after - before


# --- sleep_ms ----------------------------------------------------------------------------------
# MicroPython's asyncio.sleep_ms returns one preallocated SingletonGenerator that the scheduler
# drives with send(None). This port's asyncio runs on JavaScript promises (and allocates for
# them), so the test puts in a copy of the core's singleton and drives the coroutine as the
# core's scheduler does.
class _SingletonSleep:
    def __init__(self):
        self.state = None
        self.exc = StopIteration()

    def __iter__(self):
        return self

    def __next__(self):
        if self.state is not None:
            self.state = None
            return None
        self.exc.__traceback__ = None
        raise self.exc


_sgen = _SingletonSleep()


class _CoreAsyncio:
    @staticmethod
    def sleep_ms(t):
        _sgen.state = t
        return _sgen


board_clock.asyncio = _CoreAsyncio
bc = board_clock.BoardClock()


async def pump_loop(clock, n):
    for _ in range(n):
        await clock.sleep_ms(0)


def resume(coro, n):
    for _ in range(n):
        coro.send(None)


coro = pump_loop(bc, 1000)
resume(coro, 10)  # warm-up: first-use allocations are allowed here
per_await = allocated(resume, coro, 200) / 200
if per_await == 0:
    micropython.heap_lock()
    resume(coro, 200)
    micropython.heap_unlock()
    report("sleep_ms", True, "0 bytes per await, 200 awaits with the heap locked")
else:
    report("sleep_ms", False, f"{per_await} bytes allocated per await")


# --- uptime past 2^30 ms -----------------------------------------------------------------------
def loop_iterations(rig, n):
    app = rig.app
    for _ in range(n):
        app.pump()
        app.service()
        app.indicators()


def measure_loop(rig, iterations):
    total = 0
    for i in range(iterations):
        rig.advance(10)  # the emulator allocates (floats); only the firmware is measured
        total += allocated(loop_iterations, rig, 1)
        if i % 50 == 49:
            rig.collect()
    return total


rig = R.Rig(ring_frames=300, clock=WrapClock())
for _ in range(5):  # 5 x 2^28 ms = 15.5 days up; each step within ticks_diff's range
    rig.clock.advance_ms(1 << 28)
    rig.app.service()
rig.connect(247)
rig.command(R.start_cmd())
rig.led_pin.history = None
rig.pwm.log = None
for _ in range(200):
    rig.step()
rig.collect()
rig.frames = []
rig.statuses = []
spent = measure_loop(rig, 300)
uptime_s = struct.unpack_from("<BBHHI", rig.statuses[-1], 0)[4] if rig.statuses else -1
expected_s = (5 << 28) // 1000 + 5
if spent == 0:
    micropython.heap_lock()
    for _ in range(100):
        rig.app.pump()
        rig.app.service()
    micropython.heap_unlock()
ok = spent == 0 and abs(uptime_s - expected_s) <= 2
report(
    "uptime",
    ok,
    f"{spent} bytes over 300 loop iterations at {uptime_s} s up (expected ~{expected_s} s)",
)


# --- the loss estimate after a long IMU outage -------------------------------------------------
def outage(name, minutes):
    rate_hz = 200
    rig = R.Rig(ring_frames=300, clock=WrapClock())
    rig.connect(247)
    rig.command(R.start_cmd())
    rig.run_ms(1000)
    emu = rig.emu
    rig.bus.detach(emu.address)
    for _ in range(minutes * 60):  # the IMU is gone: the board looks for it every 3 s
        rig.clock.advance_ms(1000)
        rig.app.pump()
        rig.app.service()
        rig.collect()
    before = [R.parse_frame(f) for f in rig.frames]
    rig.bus.attach(emu)
    rig.run_ms(4000)
    frames = [R.parse_frame(f) for f in rig.frames]
    after = frames[len(before) :]
    gaps = [f for f in after if f[0] & P.FLAG_GAP_BEFORE]
    if not before or not gaps:
        report(name, False, "no gap frame after the IMU came back")
        return
    live_before = [f for f in before if f[1]]
    jump = gaps[0][3] - (live_before[-1][3] + live_before[-1][1])
    expected = minutes * 60 * rate_hz
    # The IMU is found again at the next 3 s detection retry after it came back.
    ok = expected - 2 * rate_hz <= jump <= expected + 4 * rate_hz
    report(
        name,
        ok,
        f"sample index jumped {jump} over a {minutes} min outage (expected ~{expected})",
    )


outage("gap_10min", 10)
outage("gap_25min", 25)


# --- ICM-42688-P start-up samples --------------------------------------------------------------
def icm_start():
    holder = []

    def imu_sleep_ms(ms):  # the board blocks; the chip lives on
        rig = holder[0] if holder else None
        if rig is not None:
            rig.emu.advance(ms * 1000)
            rig.clock.advance_ms(ms)

    rig = R.Rig(imu="icm42688", clock=WrapClock(), imu_sleep_ms=imu_sleep_ms)
    holder.append(rig)
    # Detection ran in the constructor with no rig to advance yet: power the sensors again now
    # (init() soft-resets the chip and switches them on), as a board does at start.
    rig.app.imu.init()
    rig.connect(247)
    rig.command(R.start_cmd())  # at once: the sensors are still starting
    rig.run_ms(300)
    rig.bus.fail_next(4)  # bus errors -> re-initialisation mid-stream
    rig.run_ms(300)
    bad = 0
    total = 0
    for raw in rig.frames:
        f = R.parse_frame(raw)
        for k in range(f[1]):
            ax, ay, az, gx, gy, gz = struct.unpack_from("<hhhhhh", f[5], 12 * k)
            total += 1
            if gx or gy or gz or ax or ay or abs(az - 4096) > 2:
                bad += 1
    ok = bad == 0 and rig.emu.startup_samples == 0 and rig.app.imu_reinits == 1 and total > 0
    report(
        "icm_start",
        ok,
        f"{bad} of {total} samples off the still reading; {rig.emu.startup_samples} start-up "
        f"samples went into the FIFO; {rig.app.imu_reinits} re-init",
    )


icm_start()


# --- USB serial through a UART bridge ----------------------------------------------------------
def serial_uart():
    from tremorlift_fw.serial_link import UART_BRIDGE_BYTES_PER_S, stream_bytes_per_s

    def configure(rig, odr_hz):
        args = struct.pack("<HBHH", odr_hz, 8, 1000, 0)
        return rig.command(R.command(P.OP_CONFIGURE, 2, args))[4]

    def to_serial(rig):
        return rig.command(R.command(P.OP_SET_TRANSPORT, 3, b"\x01"))[4]

    uart = R.Rig(imu="icm42688", serial=True, serial_link_bytes_per_s=UART_BRIDGE_BYTES_PER_S)
    uart.connect()
    got = [configure(uart, 1000), to_serial(uart), configure(uart, 400), to_serial(uart)]
    got += [configure(uart, 1000), configure(uart, 200)]
    want = [P.RES_OK, P.RES_OUT_OF_RANGE, P.RES_OK, P.RES_OK, P.RES_OUT_OF_RANGE, P.RES_OK]
    native = R.Rig(imu="icm42688", serial=True)  # native USB: no known limit
    native.connect()
    got_native = [configure(native, 1000), to_serial(native)]
    need = stream_bytes_per_s(1000, 40)
    ok = got == want and got_native == [P.RES_OK, P.RES_OK] and uart.app.odr_hz == 200
    report(
        "serial_uart",
        ok,
        f"1 kHz needs {need} B/s, the UART carries {UART_BRIDGE_BYTES_PER_S}: results {got} "
        f"(want {want}), native USB {got_native}",
    )


serial_uart()

print("BOARD TIME DONE", len(results), "checks")
