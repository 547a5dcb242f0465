# Runs under real MicroPython (tests/mpy/run.mjs), mounted with firmware/lib and the folder of
# host/tremorlift/twin/board/imu_emulator.py on sys.path. Checks each IMU driver against its emulator
# (detection, exact samples at 100/400/1000 Hz, overflow recovery) and that read_fifo allocates
# nothing in steady state: the emulator runs outside the locked region, only read_fifo inside.
# Prints "DRIVERS OK" at the end; any failure raises (exit status 1).

import struct

import micropython
from imu_emulator import GRAVITY_MPS2, FakeI2C, Icm42688Emulator, Mpu6050Emulator, quantise
from tremorlift_fw import drivers

MAX_SAMPLES = 32
DEG_PER_RAD = 57.29577951308232
GYRO_LSB_PER_DPS = {250: 131.0, 500: 65.5, 1000: 32.8, 2000: 16.4}


def no_sleep(ms):
    pass


def source(i):
    # Distinct per axis and sample; a few samples beyond +-4 g / +-500 dps to hit saturation.
    k = (i * 7919) % 1000 - 500  # -500..499
    return (
        k * 0.05,
        -k * 0.03 + 1.0,
        GRAVITY_MPS2 + (i % 13) * 0.1,
        k * 0.02,
        (i % 17) * -0.5,
        k * 0.02 if i % 50 else 12.0,
    )


def expected_counts(i, accel_range_g, gyro_range_dps, lowest):
    values = source(i)
    accel_scale = (32768 // accel_range_g) / GRAVITY_MPS2
    gyro_scale = GYRO_LSB_PER_DPS[gyro_range_dps] * DEG_PER_RAD
    return tuple(
        quantise(values[a], accel_scale if a < 3 else gyro_scale, lowest) for a in range(6)
    )


def expected_stream(first, count, odr_hz, lowest):
    # What the driver must emit for chip samples first..first+count-1 (400 Hz: 5:2 resampling).
    rows = []
    if odr_hz != 400:
        for i in range(first, first + count):
            rows.append(expected_counts(i, 4, 500, lowest))
        return rows
    for i in range(first, first + count):
        phase = (i - first) % 5
        if phase == 0:
            rows.append(expected_counts(i, 4, 500, lowest))
        elif phase == 3:
            s2 = expected_counts(i - 1, 4, 500, lowest)
            s3 = expected_counts(i, 4, 500, lowest)
            rows.append(tuple((s2[a] + s3[a]) >> 1 for a in range(6)))
    return rows


def locked_read(driver, out):
    micropython.heap_lock()
    try:
        return driver.read_fifo(out, MAX_SAMPLES)
    finally:
        micropython.heap_unlock()


def unpack(out, n, into):
    for k in range(n):
        into.append(struct.unpack_from("<6h", out, 12 * k))


def check_chip(name, emulator, kind, lowest):
    bus = FakeI2C()
    bus.attach(emulator)
    emulator.source = source

    def chip_sleep_ms(ms):  # while the driver waits, the chip's time passes
        emulator.advance(ms * 1000)

    driver = drivers.detect(bus, sleep_ms=chip_sleep_ms)
    assert driver is not None and driver.KIND == kind, name
    out_buf = bytearray(12 * MAX_SAMPLES)
    out = memoryview(out_buf)
    for odr_hz in (100, 400, 1000):
        driver.configure(odr_hz, 4, 500)
        driver.fifo_start()
        first = emulator.samples_produced
        got = []
        for poll in range(40):
            emulator.advance(2000 + 1000 * (poll % 7))
            n = locked_read(driver, out)
            assert n >= 0, (name, odr_hz, n)
            unpack(out_buf, n, got)
        while True:  # drain (steady state too: still locked)
            n = locked_read(driver, out)
            if n == 0:
                break
            unpack(out_buf, n, got)
        produced = emulator.samples_produced - first
        want = expected_stream(first, produced, odr_hz, lowest)
        assert got == want, (name, odr_hz, len(got), len(want))
        assert len(got) > 0
        print(name, odr_hz, "Hz:", len(got), "samples exact, read_fifo allocation-free")

    # A nearly full FIFO (read, then its overflow flag checked again), under the lock too.
    driver.configure(1000, 4, 500)
    driver.fifo_start()
    first = emulator.samples_produced
    near_full = emulator.fifo_capacity_bytes // (16 if kind == drivers.IMU_ICM42688P else 12) - 3
    emulator.advance(1000 * near_full)
    got = []
    while True:
        n = locked_read(driver, out)
        if n == 0:
            break
        unpack(out_buf, n, got)
    assert got == expected_stream(first, near_full, 1000, lowest), name

    # Overflow under the heap lock too: detected, counted, FIFO reset, reading resumes aligned.
    emulator.advance(300000)
    assert locked_read(driver, out) == -1
    assert driver.fifo_overflows == 1 and emulator.fifo_level_bytes == 0
    first = emulator.samples_produced
    emulator.advance(10000)
    got = []
    unpack(out_buf, locked_read(driver, out), got)
    assert got == expected_stream(first, 10, 1000, lowest), name
    print(name, "overflow -> -1, resumed exact")

    bus.fail_next(1)
    try:
        driver.read_fifo(out, MAX_SAMPLES)
        raise AssertionError("no OSError")
    except OSError as e:
        assert e.errno == 5
    driver.fifo_stop()


# The lock must be real for the checks above to mean anything.
micropython.heap_lock()
try:
    bytearray(8)
    caught = False
except MemoryError:
    caught = True
finally:
    micropython.heap_unlock()
assert caught, "heap_lock does not stop allocations"

check_chip("MPU-6050", Mpu6050Emulator(), drivers.IMU_MPU6050, -32768)
check_chip("MPU-6500", Mpu6050Emulator(address=0x69, who_am_i=0x70), drivers.IMU_MPU6500, -32768)
check_chip("ICM-42688-P", Icm42688Emulator(), drivers.IMU_ICM42688P, -32767)
assert drivers.detect(FakeI2C(), sleep_ms=no_sleep) is None
print("DRIVERS OK")
