"""IMU drivers (firmware/lib/tremorlift_fw/drivers) against their register-level emulators.

The expected register values below are written out from the datasheets (RM-MPU-6000A rev 4.2,
RM-MPU-6500A rev 2.1, ICM-42688-P DS-000347), not taken from the drivers, so a wrong bit
position in a driver or an emulator shows up here.
"""

import math
import random
from pathlib import Path

import numpy as np
import pytest
from micropython_runner import run_micropython
from tremorlift.twin.board.imu_emulator import (
    GRAVITY_MPS2,
    FakeI2C,
    Icm42688Emulator,
    Mpu6050Emulator,
)
from tremorlift_fw import drivers
from tremorlift_fw.drivers import ICM42688, MPU6050
from tremorlift_fw.drivers._common import PACKET_EMPTY, PACKET_INVALID, PACKET_OK

ROOT = Path(__file__).resolve().parents[2]


def no_sleep(ms: int) -> None:
    pass


CHIPS = ("mpu6050", "mpu6500", "icm42688")
KINDS = {"mpu6050": 1, "mpu6500": 2, "icm42688": 3}
NAMES = {"mpu6050": "MPU-6050", "mpu6500": "MPU-6500", "icm42688": "ICM-42688-P"}


def make_emulator(chip: str, address: int = 0x68, source=None):
    if chip == "icm42688":
        return Icm42688Emulator(address=address, source=source)
    return Mpu6050Emulator(
        address=address, who_am_i=0x70 if chip == "mpu6500" else 0x68, source=source
    )


def make(chip: str, address: int = 0x68, source=None):
    bus = FakeI2C()
    emu = make_emulator(chip, address, source)
    bus.attach(emu)
    # While the driver waits (a reset, the sensors' start-up) the chip's time passes.
    driver = drivers.detect(bus, (address,), sleep_ms=lambda ms: emu.advance(ms * 1000))
    assert driver is not None
    return bus, emu, driver


# --- expected values, from the datasheets ------------------------------------------------------
# MPU: SMPLRT_DIV and chip rate (400 Hz: chip at 1 kHz, resampled 5:2 by the driver).
MPU_DIV = {50: 19, 100: 9, 200: 4, 400: 0, 500: 1, 1000: 0}
CHIP_ODR = {50: 50, 100: 100, 200: 200, 400: 1000, 500: 500, 1000: 1000}
# DLPF_CFG nearest 0.4 x ODR among filters at or below Nyquist (RM 4.3 table; gyro bandwidth).
MPU_AUTO_DLPF = {
    50: (4, 20),
    100: (3, 42),
    200: (2, 98),
    400: (1, 188),
    500: (1, 188),
    1000: (1, 188),
}
MPU6500_AUTO_DLPF = {
    50: (4, 20),
    100: (3, 41),
    200: (2, 92),
    400: (1, 184),
    500: (1, 184),
    1000: (1, 184),
}
MPU_FS = {250: 0x00, 500: 0x08, 1000: 0x10, 2000: 0x18}
MPU_AFS = {2: 0x00, 4: 0x08, 8: 0x10, 16: 0x18}
# ICM: ODR codes, FS_SEL codes, UI filter code (ODR/2 or max(400, ODR)/4,5,8,10,16,20,40).
ICM_ODR_CODE = {50: 0x09, 100: 0x08, 200: 0x07, 400: 0x06, 500: 0x0F, 1000: 0x06}
ICM_GYRO_FS = {2000: 0, 1000: 1, 500: 2, 250: 3}
ICM_ACCEL_FS = {16: 0, 8: 1, 4: 2, 2: 3}
ICM_AUTO_FILTER = {
    50: (6, 20),
    100: (4, 40),
    200: (2, 80),
    400: (3, 125),
    500: (0, 250),
    1000: (0, 500),
}
ACCEL_LSB_PER_G = {2: 16384, 4: 8192, 8: 4096, 16: 2048}
GYRO_LSB_PER_DPS = {250: 131.0, 500: 65.5, 1000: 32.8, 2000: 16.4}
GYRO_X10 = {250: 1310, 500: 655, 1000: 328, 2000: 164}

MPU_REG = {
    "SMPLRT_DIV": 0x19,
    "CONFIG": 0x1A,
    "GYRO_CONFIG": 0x1B,
    "ACCEL_CONFIG": 0x1C,
    "ACCEL_CONFIG2": 0x1D,
}
MPU_FIFO_EN, MPU_INT_STATUS, MPU_USER_CTRL, MPU_PWR_MGMT_1 = 0x23, 0x3A, 0x6A, 0x6B
ICM_FIFO_CONFIG, ICM_INT_STATUS, ICM_INTF_CONFIG0, ICM_PWR_MGMT0 = 0x16, 0x2D, 0x4C, 0x4E
ICM_GYRO_CONFIG0, ICM_ACCEL_CONFIG0, ICM_GYRO_ACCEL_CONFIG0, ICM_FIFO_CONFIG1 = (
    0x4F,
    0x50,
    0x52,
    0x5F,
)


def quantised(values, accel_range_g: int, gyro_range_dps: int, lowest: int) -> tuple:
    """Counts the chip reports for SI values (round half up, saturate)."""
    out = []
    for axis, v in enumerate(values):
        if axis < 3:
            x = v / GRAVITY_MPS2 * ACCEL_LSB_PER_G[accel_range_g]
        else:
            x = math.degrees(v) * GYRO_LSB_PER_DPS[gyro_range_dps]
        out.append(max(lowest, min(32767, math.floor(x + 0.5))))
    return tuple(out)


def expected_stream(table, first: int, count: int, odr_hz: int, ranges, lowest: int) -> np.ndarray:
    """Driver output for chip samples first..first+count-1 (5:2 linear resampling at 400 Hz)."""
    q = [quantised(table[i], *ranges, lowest) for i in range(first, first + count)]
    if odr_hz != 400:
        return np.array(q, dtype=np.int64).reshape(-1, 6)
    rows = []
    for k in range(count):
        if k % 5 == 0:
            rows.append(q[k])
        elif k % 5 == 3:
            rows.append(tuple((a + b) // 2 for a, b in zip(q[k - 1], q[k], strict=True)))
    return np.array(rows, dtype=np.int64).reshape(-1, 6)


def random_table(seed: int, n: int, accel_range_g: int, gyro_range_dps: int) -> list:
    """n samples spread over +-1.15 x the full scale (so some saturate), distinct per axis."""
    rng = random.Random(seed)
    a_max = accel_range_g * GRAVITY_MPS2 * 1.15
    g_max = math.radians(gyro_range_dps) * 1.15
    return [
        tuple(rng.uniform(-a_max, a_max) for _ in range(3))
        + tuple(rng.uniform(-g_max, g_max) for _ in range(3))
        for _ in range(n)
    ]


def lowest_for(chip: str) -> int:
    # The ICM-42688-P keeps -32768 as its invalid-data marker.
    return -32767 if chip == "icm42688" else -32768


# --- detection and init ---------------------------------------------------------------------
@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("address", [0x68, 0x69])
def test_detect_finds_each_chip_by_who_am_i(chip: str, address: int) -> None:
    bus = FakeI2C()
    emu = make_emulator(chip, address)
    bus.attach(emu)
    driver = drivers.detect(bus, sleep_ms=no_sleep)
    assert driver is not None
    assert type(driver) is (ICM42688 if chip == "icm42688" else MPU6050)
    assert (driver.KIND, driver.NAME, driver.address) == (KINDS[chip], NAMES[chip], address)
    # init() woke the chip on its low-noise/gyro clock and set the ICM's byte order.
    if chip == "icm42688":
        assert emu.regs[ICM_PWR_MGMT0] == 0x0F
        assert emu.regs[ICM_INTF_CONFIG0] == 0x00
    else:
        assert emu.regs[MPU_PWR_MGMT_1] == 0x01


def test_detect_empty_bus_and_wrong_who_am_i_give_none() -> None:
    assert drivers.detect(FakeI2C(), sleep_ms=no_sleep) is None
    bus = FakeI2C()
    bus.attach(Mpu6050Emulator(who_am_i=0x12))  # not an IMU this firmware knows
    assert drivers.detect(bus, sleep_ms=no_sleep) is None
    bus.attach(Icm42688Emulator(address=0x69))  # the next address still gets tried
    found = drivers.detect(bus, sleep_ms=no_sleep)
    assert found is not None and found.KIND == drivers.IMU_ICM42688P and found.address == 0x69


@pytest.mark.parametrize("who_am_i", [0x98, 0x72, 0x73])
def test_gy521_clone_ids_are_taken_as_mpu6050_and_stream(who_am_i: int) -> None:
    # Many GY-521 modules carry MPU-6050 clones answering these ids (0x98 most often).
    table = random_table(5, 5000, 8, 1000)
    bus = FakeI2C()
    emu = Mpu6050Emulator(who_am_i=who_am_i, source=lambda i: table[i])
    bus.attach(emu)
    driver = drivers.detect(bus, sleep_ms=no_sleep)
    assert driver is not None and type(driver) is MPU6050
    assert (driver.KIND, driver.NAME, driver.who_am_i) == (
        drivers.IMU_MPU6050,
        "MPU-6050",
        who_am_i,
    )
    driver.configure(200, 8, 1000)
    driver.fifo_start()
    got = poll_all(emu, driver, random.Random(3), 50, 10_000)
    assert len(got) > 0
    assert np.array_equal(got, expected_stream(table, 0, len(got), 200, (8, 1000), -32768))


def test_mpu_overflow_flush_resets_the_fifo_while_it_is_disabled() -> None:
    # RM 4.27: FIFO_RESET is done with FIFO_EN cleared, then the FIFO is enabled again.
    bus, emu, driver = make("mpu6050")
    driver.configure(1000, 8, 1000)
    driver.fifo_start()
    writes: list[int] = []
    write = bus.writeto_mem

    def logged(addr, memaddr, buf, *, addrsize=8):
        if memaddr == 0x6A:
            writes.append(bytes(buf)[0])
        write(addr, memaddr, buf, addrsize=addrsize)

    bus.writeto_mem = logged
    emu.advance(700_000)
    assert driver.read_fifo(bytearray(12 * 64), 64) == -1
    assert writes == [0x00, 0x04, 0x40]


def test_constructor_touches_no_bus_and_init_checks_who_am_i() -> None:
    bus = FakeI2C()
    MPU6050(bus)
    ICM42688(bus, 0x69)
    assert bus.transactions == 0
    with pytest.raises(OSError):
        MPU6050(bus, sleep_ms=no_sleep).init()  # nothing there
    bus.attach(Mpu6050Emulator(who_am_i=0x12))
    with pytest.raises(OSError):
        MPU6050(bus, sleep_ms=no_sleep).init()
    with pytest.raises(OSError):
        ICM42688(bus, sleep_ms=no_sleep).init()  # an MPU-like chip is not an ICM


@pytest.mark.parametrize("chip", CHIPS)
def test_init_resets_and_restores_the_last_configuration(chip: str) -> None:
    bus, emu, driver = make(chip)
    driver.configure(200, 4, 500)
    snapshot = bytes(emu.regs)
    scribble = 0x19 if chip != "icm42688" else ICM_GYRO_ACCEL_CONFIG0
    bus.writeto_mem(0x68, scribble, b"\x3c")
    driver.init()  # what the firmware does after I2C errors
    assert bytes(emu.regs) == snapshot


# --- configuration -----------------------------------------------------------------------------
@pytest.mark.parametrize("chip", CHIPS)
def test_configure_every_supported_combination(chip: str) -> None:
    bus, emu, driver = make(chip)
    assert set(driver.ODRS_HZ) >= {100, 200, 400, 1000}
    assert driver.ACCEL_RANGES_G == (2, 4, 8, 16)
    assert driver.GYRO_RANGES_DPS == (250, 500, 1000, 2000)
    for odr in driver.ODRS_HZ:
        for arange in driver.ACCEL_RANGES_G:
            for grange in driver.GYRO_RANGES_DPS:
                driver.configure(odr, arange, grange)
                regs = emu.regs
                assert emu.odr_hz == CHIP_ODR[odr]
                if chip == "icm42688":
                    code, bw = ICM_AUTO_FILTER[odr]
                    assert regs[ICM_GYRO_CONFIG0] == (ICM_GYRO_FS[grange] << 5) | ICM_ODR_CODE[odr]
                    assert (
                        regs[ICM_ACCEL_CONFIG0] == (ICM_ACCEL_FS[arange] << 5) | ICM_ODR_CODE[odr]
                    )
                    assert regs[ICM_GYRO_ACCEL_CONFIG0] == code * 0x11
                else:
                    code, bw = (MPU6500_AUTO_DLPF if chip == "mpu6500" else MPU_AUTO_DLPF)[odr]
                    assert regs[MPU_REG["SMPLRT_DIV"]] == MPU_DIV[odr]
                    assert regs[MPU_REG["CONFIG"]] == code  # DLPF on: gyro output rate 1 kHz
                    assert regs[MPU_REG["GYRO_CONFIG"]] == MPU_FS[grange]
                    assert regs[MPU_REG["ACCEL_CONFIG"]] == MPU_AFS[arange]
                    if chip == "mpu6500":
                        assert regs[MPU_REG["ACCEL_CONFIG2"]] == code
                assert (driver.odr_hz, driver.accel_range_g, driver.gyro_range_dps) == (
                    odr,
                    arange,
                    grange,
                )
                assert driver.dlpf_hz == bw
                assert driver.accel_lsb_per_g == ACCEL_LSB_PER_G[arange]
                assert driver.gyro_lsb_per_dps_x10 == GYRO_X10[grange]
    # The interface's examples: 4096 LSB/g at 8 g, 328 (32.8 LSB per deg/s) at 1000 dps.
    driver.configure(200, 8, 1000)
    assert (driver.accel_lsb_per_g, driver.gyro_lsb_per_dps_x10) == (4096, 328)


@pytest.mark.parametrize(
    ("chip", "odr", "dlpf", "want_code", "want_hz"),
    [
        ("mpu6050", 1000, 100, 2, 98),
        ("mpu6050", 1000, 5, 6, 5),
        ("mpu6050", 100, 50, 3, 42),  # 98 Hz would be above the 50 Hz Nyquist frequency
        ("mpu6500", 200, 35, 3, 41),
        ("icm42688", 1000, 100, 4, 100),
        ("icm42688", 1000, 240, 1, 250),
        ("icm42688", 100, 10, 7, 10),
    ],
)
def test_explicit_filter_picks_the_nearest(
    chip: str, odr: int, dlpf: int, want_code: int, want_hz: int
) -> None:
    _, emu, driver = make(chip)
    driver.configure(odr, 8, 1000, dlpf)
    assert driver.dlpf_hz == want_hz
    if chip == "icm42688":
        assert emu.regs[ICM_GYRO_ACCEL_CONFIG0] == want_code * 0x11
    else:
        assert emu.regs[MPU_REG["CONFIG"]] == want_code


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize(
    "args",
    [
        (300, 8, 1000, 0),
        (0, 8, 1000, 0),
        (2000, 8, 1000, 0),
        (200, 3, 1000, 0),
        (200, 32, 1000, 0),
        (200, 8, 125, 0),
        (200, 8, 4000, 0),
        (200, 8, 1000, -1),
        (200, 8, 1000, 101),  # above Nyquist at 200 Hz
        (400, 8, 1000, 201),
    ],
)
def test_refused_values_raise_value_error_and_change_nothing(chip: str, args: tuple) -> None:
    bus, emu, driver = make(chip)
    driver.configure(200, 8, 1000)
    before = bytes(emu.regs)
    transactions = bus.transactions
    with pytest.raises(ValueError):
        driver.configure(*args)
    assert bytes(emu.regs) == before
    assert bus.transactions == transactions
    assert (driver.odr_hz, driver.accel_range_g, driver.gyro_range_dps) == (200, 8, 1000)


# --- reading the FIFO ----------------------------------------------------------------------------
def poll_all(emu, driver, rng: random.Random, n_chip_samples: int, max_dt_us: int) -> np.ndarray:
    """Advance the emulator in random steps, reading with random max_samples, then drain."""
    out = memoryview(bytearray(12 * 64))
    rows = []
    start = emu.samples_produced
    while emu.samples_produced - start < n_chip_samples:
        emu.advance(rng.randint(1, max_dt_us))
        want = rng.randint(1, 64)
        n = driver.read_fifo(out, want)
        assert 0 <= n <= want
        rows.append(np.frombuffer(out[: 12 * n], dtype="<i2").reshape(-1, 6).astype(np.int64))
    while (n := driver.read_fifo(out, 64)) > 0:
        rows.append(np.frombuffer(out[: 12 * n], dtype="<i2").reshape(-1, 6).astype(np.int64))
    assert n == 0
    return np.concatenate(rows)


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize(
    ("odr", "ranges"), [(100, (2, 250)), (400, (8, 1000)), (1000, (16, 2000)), (200, (4, 500))]
)
def test_read_fifo_returns_exactly_the_samples_fed(chip: str, odr: int, ranges: tuple) -> None:
    n_chip = 1200
    table = random_table(CHIPS.index(chip) * 10_000 + odr, n_chip + 200, *ranges)
    _, emu, driver = make(chip, source=lambda i: table[i])
    driver.configure(odr, *ranges)
    driver.fifo_start()
    rng = random.Random(odr)
    # At most 10 samples between polls, against 32 read on average: even the 512-byte MPU-6500
    # FIFO (42 samples) never overflows.
    max_dt_us = 10_000_000 // CHIP_ODR[odr]
    got = poll_all(emu, driver, rng, n_chip, max_dt_us)
    produced = emu.samples_produced
    want = expected_stream(table, 0, produced, odr, ranges, lowest_for(chip))
    assert got.shape == want.shape
    assert np.array_equal(got, want)
    assert (got == 32767).any() and (got <= -32767).any()  # saturation was exercised
    assert driver.fifo_overflows == 0 and driver.invalid_samples == 0


@pytest.mark.parametrize("chip", CHIPS)
def test_max_samples_is_respected_and_the_rest_stays_queued(chip: str) -> None:
    table = random_table(7, 100, 8, 1000)
    _, emu, driver = make(chip, source=lambda i: table[i])
    driver.configure(1000, 8, 1000)
    driver.fifo_start()
    emu.advance(20_000)
    out = bytearray(12 * 20)
    assert driver.read_fifo(out, 3) == 3
    assert driver.read_fifo(out, 0) == 0
    assert driver.read_fifo(out, 20) == 17
    got = np.frombuffer(out, dtype="<i2").reshape(-1, 6)[:17]
    assert np.array_equal(got, expected_stream(table, 3, 17, 1000, (8, 1000), lowest_for(chip)))


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("odr", [1000, 400])
def test_overflow_is_detected_counted_and_reading_resumes(chip: str, odr: int) -> None:
    table = random_table(3, 5000, 8, 1000)
    _, emu, driver = make(chip, source=lambda i: table[i])
    driver.configure(odr, 8, 1000)
    driver.fifo_start()
    out = bytearray(12 * 64)
    emu.advance(700_000)  # 700 samples: well past every FIFO's capacity
    assert emu.fifo_overflows > 0
    assert driver.read_fifo(out, 64) == -1
    assert driver.fifo_overflows == 1
    assert emu.fifo_level_bytes == 0
    first = emu.samples_produced
    got = poll_all(emu, driver, random.Random(1), 300, 8000)
    want = expected_stream(
        table, first, emu.samples_produced - first, odr, (8, 1000), lowest_for(chip)
    )
    assert np.array_equal(got, want)
    assert driver.fifo_overflows == 1


@pytest.mark.parametrize("chip", CHIPS)
def test_overflow_during_the_flush_is_counted_once(chip: str) -> None:
    # Samples keep arriving (and being dropped) between the status read and the flush, which
    # sets the chip's overflow flag again: the same overflow must not be reported twice.
    table = random_table(4, 5000, 8, 1000)
    _, emu, driver = make(chip, source=lambda i: table[i])
    driver.configure(1000, 8, 1000)
    driver.fifo_start()
    out = bytearray(12 * 64)
    flush = driver._fifo_reset

    def late_flush() -> None:
        emu.advance(50_000)  # 50 more samples into the still-full FIFO
        flush()

    driver._fifo_reset = late_flush
    emu.advance(700_000)
    assert driver.read_fifo(out, 64) == -1
    driver._fifo_reset = flush
    poll_all(emu, driver, random.Random(2), 100, 8000)
    assert driver.fifo_overflows == 1


@pytest.mark.parametrize(
    ("chip", "status_reg", "flag"), [("mpu6050", 0x3A, 0x10), ("icm42688", 0x2D, 0x02)]
)
def test_overflow_flag_alone_is_enough(chip: str, status_reg: int, flag: int) -> None:
    _, emu, driver = make(chip)
    driver.configure(1000, 8, 1000)
    driver.fifo_start()
    emu.advance(5000)
    emu.regs[status_reg] |= flag  # the chip raised its overflow/full flag
    assert driver.read_fifo(bytearray(120), 10) == -1
    assert driver.fifo_overflows == 1 and emu.fifo_level_bytes == 0


class BusAdvancingDuringFifoReads(FakeI2C):
    """A bus on which the chip keeps sampling while the FIFO is being read."""

    def __init__(self, fifo_reg: int, dt_us: int) -> None:
        super().__init__()
        self.emulator = None
        self.fifo_reg = fifo_reg
        self.dt_us = dt_us

    def readfrom_mem_into(self, addr: int, memaddr: int, buf, *, addrsize: int = 8) -> None:
        super().readfrom_mem_into(addr, memaddr, buf)
        if memaddr == self.fifo_reg and self.emulator is not None:
            self.emulator.advance(self.dt_us)


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("dt_us", [0, 1000, 100_000])
def test_overflow_while_reading_is_caught(chip: str, dt_us: int) -> None:
    """A nearly full FIFO that overflows during the read must not yield shifted data."""
    emu = make_emulator(chip)
    bus = BusAdvancingDuringFifoReads(0x30 if chip == "icm42688" else 0x74, dt_us)
    bus.attach(emu)
    driver = drivers.detect(bus, sleep_ms=no_sleep)
    assert driver is not None
    driver.configure(1000, 8, 1000)
    driver.fifo_start()
    capacity_samples = emu.fifo_capacity_bytes // (16 if chip == "icm42688" else 12)
    emu.advance(1000 * (capacity_samples - 4))  # just under full
    bus.emulator = emu
    out = bytearray(12 * 200)
    n = driver.read_fifo(out, 200)
    if dt_us == 100_000:  # 100 samples arrive during the first burst: overflow
        assert n == -1 and driver.fifo_overflows == 1
    else:
        assert n == capacity_samples - 4 and driver.fifo_overflows == 0


def test_icm_invalid_packets_are_skipped_and_counted() -> None:
    bus, emu, driver = make("icm42688")
    driver.configure(100, 8, 1000)
    driver.fifo_start()
    bus.writeto_mem(0x68, ICM_PWR_MGMT0, b"\x03")  # gyro off: its data reads -32768
    emu.advance(100_000)
    out = bytearray(12 * 20)
    assert driver.read_fifo(out, 20) == 0
    assert driver.invalid_samples == 10
    bus.writeto_mem(0x68, ICM_PWR_MGMT0, b"\x0f")
    emu.advance(50_000)
    assert driver.read_fifo(out, 20) == 5
    assert driver.fifo_overflows == 0


def test_icm_packet_checks() -> None:
    driver = ICM42688(FakeI2C())
    packet = bytearray(16)
    packet[0] = 0x68
    assert driver._check_packet(packet, 0) == PACKET_OK
    assert driver._check_packet(bytearray(b"\xff" * 16), 0) == PACKET_EMPTY
    packet[9:11] = b"\x00\x80"  # gyro y = -32768
    assert driver._check_packet(packet, 0) == PACKET_INVALID
    packet[9:11] = b"\x80\x00"  # +128: fine
    assert driver._check_packet(packet, 0) == PACKET_OK


def test_icm_misaligned_stream_is_reported_as_a_gap() -> None:
    bus, emu, driver = make("icm42688")
    driver.configure(1000, 8, 1000)
    driver.fifo_start()
    emu.advance(5000)
    bus.writeto_mem(0x68, ICM_FIFO_CONFIG1, b"\x01")  # accel-only 8-byte packets from now on
    emu.advance(4000)
    out = bytearray(12 * 20)
    assert driver.read_fifo(out, 20) == 5  # the good packets before the foreign ones
    assert driver.read_fifo(out, 20) == -1
    assert driver.fifo_overflows == 1
    driver.fifo_start()
    emu.advance(3000)
    assert driver.read_fifo(out, 20) == 3


@pytest.mark.parametrize("chip", CHIPS)
def test_i2c_errors_raise_oserror(chip: str) -> None:
    bus, emu, driver = make(chip)
    driver.configure(200, 8, 1000)
    driver.fifo_start()
    emu.advance(50_000)
    out = bytearray(12 * 20)
    bus.fail_next(1)
    with pytest.raises(OSError) as err:
        driver.read_fifo(out, 20)
    assert err.value.errno == 5
    assert bus.errors == 1
    assert driver.read_fifo(out, 20) == 10  # nothing was lost by the failed poll
    bus.error_rate = 1.0
    for call in (
        lambda: driver.read_fifo(out, 20),
        lambda: driver.configure(100, 8, 1000),
        driver.init,
        driver.fifo_start,
    ):
        with pytest.raises(OSError):
            call()
    assert drivers.detect(bus, sleep_ms=no_sleep) is None
    bus.error_rate = 0.0
    bus.detach(0x68)
    with pytest.raises(OSError) as err:
        driver.read_fifo(out, 20)
    assert err.value.errno == 19


# --- the emulators themselves ------------------------------------------------------------------
def test_fake_i2c_scan_errors_and_rates() -> None:
    bus = FakeI2C(seed=5)
    bus.attach(Mpu6050Emulator(0x69))
    bus.attach(Icm42688Emulator(0x68))
    assert bus.scan() == [0x68, 0x69]
    assert bus.readfrom_mem(0x69, 0x75, 1) == b"\x68"
    assert bus.readfrom_mem(0x68, 0x75, 1) == b"\x47"
    with pytest.raises(OSError):
        bus.readfrom_mem(0x10, 0x75, 1)
    bus.fail_next(2, errno=19)
    for _ in range(2):
        with pytest.raises(OSError) as err:
            bus.readfrom_mem(0x68, 0x75, 1)
        assert err.value.errno == 19
    bus.error_rate = 0.25
    failures = 0
    for _ in range(4000):
        try:
            bus.readfrom_mem(0x68, 0x75, 1)
        except OSError:
            failures += 1
    assert 850 < failures < 1150
    assert bus.errors == failures + 3
    with pytest.raises(ValueError):
        bus.error_rate = 1.5


def test_mpu_emulator_reset_sleep_and_rate() -> None:
    bus = FakeI2C()
    emu = Mpu6050Emulator()
    bus.attach(emu)
    assert emu.regs[MPU_PWR_MGMT_1] == 0x40  # power-on: asleep
    bus.writeto_mem(0x68, MPU_USER_CTRL, b"\x40")
    bus.writeto_mem(0x68, MPU_FIFO_EN, b"\x78")
    assert emu.advance(100_000) == 0  # asleep
    bus.writeto_mem(0x68, MPU_PWR_MGMT_1, b"\x01")
    bus.writeto_mem(0x68, 0x1A, b"\x01")  # DLPF on: 1 kHz
    bus.writeto_mem(0x68, 0x19, b"\x02")  # / 3: 333.33 Hz
    assert emu.odr_hz == pytest.approx(1000 / 3)
    rng = random.Random(2)
    elapsed_us = 0
    total = 0
    while elapsed_us < 3_000_000:
        dt = rng.randint(1, 7000)
        elapsed_us += dt
        total += emu.advance(dt)
        assert total == elapsed_us * 1000 // (3 * 1_000_000)  # never drifts from odr x time
    bus.writeto_mem(0x68, 0x1A, b"\x00")  # DLPF off: 8 kHz gyro rate
    assert emu.odr_hz == pytest.approx(8000 / 3)
    bus.writeto_mem(0x68, MPU_PWR_MGMT_1, b"\x80")  # DEVICE_RESET
    assert emu.regs[0x19] == 0 and emu.regs[0x1A] == 0 and emu.regs[MPU_PWR_MGMT_1] == 0x40
    assert emu.fifo_level_bytes == 0 and emu.advance(10_000) == 0


def _raw_mpu_bytes(values, accel_range_g, gyro_range_dps) -> bytes:
    counts = quantised(values, accel_range_g, gyro_range_dps, -32768)
    return np.array(counts, dtype=">i2").tobytes()


@pytest.mark.parametrize("fifo_mode", [0, 1])
def test_mpu_fifo_overflow_behaviour(fifo_mode: int) -> None:
    """MPU-6050 (and MPU-6500 FIFO_MODE 0): oldest bytes lost. MPU-6500 FIFO_MODE 1: new dropped."""
    table = random_table(11, 200, 16, 2000)
    who = 0x68 if fifo_mode == 0 else 0x70
    bus = FakeI2C()
    emu = Mpu6050Emulator(who_am_i=who, source=lambda i: table[i])
    bus.attach(emu)
    for reg, value in (
        (MPU_PWR_MGMT_1, 0x01),
        (0x1A, 0x01 | (0x40 * fifo_mode)),
        (0x1B, 0x18),
        (0x1C, 0x18),
    ):
        bus.writeto_mem(0x68, reg, bytes([value]))
    bus.writeto_mem(0x68, MPU_FIFO_EN, b"\x78")
    bus.writeto_mem(0x68, MPU_USER_CTRL, b"\x44")
    assert emu.advance(100_000) == 100
    stream = b"".join(_raw_mpu_bytes(table[i], 16, 2000) for i in range(100))
    capacity = emu.fifo_capacity_bytes
    status = bus.readfrom_mem(0x68, MPU_INT_STATUS, 1)[0]
    assert status & 0x10  # FIFO_OFLOW_INT
    assert bus.readfrom_mem(0x68, MPU_INT_STATUS, 1)[0] == 0  # cleared by the read
    count_bytes = bus.readfrom_mem(0x68, 0x72, 2)
    level = int.from_bytes(count_bytes, "big")
    content = bus.readfrom_mem(0x68, 0x74, level)
    if fifo_mode == 0:
        assert capacity == 1024 and level == 1024
        assert content == stream[-1024:]  # the newest bytes, boundaries shifted
    else:
        assert capacity == 512 and level == 504  # 42 whole samples kept, the rest dropped
        assert content == stream[:504]
    assert bus.readfrom_mem(0x68, 0x74, 2) == content[-1:] * 2  # empty: the last byte again


def test_emulator_quantisation_and_saturation() -> None:
    values = [(0.0, 0.0, GRAVITY_MPS2, 1.0, 0.0, 0.0)]
    _, emu, driver = make("mpu6050", source=lambda i: values[0])
    driver.configure(100, 8, 2000)
    driver.fifo_start()
    emu.advance(10_000)
    out = bytearray(12)
    assert driver.read_fifo(out, 1) == 1
    # 1 g at +-8 g = 4096; 1 rad/s = 57.2958 dps x 16.4 = 939.65 -> 940.
    assert np.frombuffer(out, "<i2").tolist() == [0, 0, 4096, 940, 0, 0]
    values[0] = (20 * GRAVITY_MPS2, -20 * GRAVITY_MPS2, 0.0, 100.0, -100.0, float("nan"))
    driver.configure(100, 16, 2000)
    emu.advance(10_000)
    assert driver.read_fifo(out, 1) == 1
    assert np.frombuffer(out, "<i2").tolist() == [32767, -32768, 0, 32767, -32768, 0]
    _, emu, driver = make("icm42688", source=lambda i: values[0])
    driver.configure(100, 16, 2000)
    driver.fifo_start()
    emu.advance(10_000)
    assert driver.read_fifo(out, 1) == 1
    assert np.frombuffer(out, "<i2").tolist() == [32767, -32767, 0, 32767, -32767, 0]


def test_icm_emulator_registers_fifo_full_and_rates() -> None:
    bus = FakeI2C()
    emu = Icm42688Emulator()
    bus.attach(emu)
    assert emu.regs[ICM_INTF_CONFIG0] == 0x30 and emu.regs[ICM_GYRO_CONFIG0] == 0x06
    assert emu.advance(100_000) == 0  # sensors off
    bus.writeto_mem(0x68, ICM_PWR_MGMT0, b"\x0f")
    assert emu.advance(100_000) == 0  # FIFO in bypass
    bus.writeto_mem(0x68, ICM_FIFO_CONFIG1, b"\x0f")
    bus.writeto_mem(0x68, ICM_FIFO_CONFIG, b"\x40")
    assert emu.odr_hz == 1000
    assert emu.advance(150_000) == 150
    assert emu.fifo_level_bytes == 2048 and emu.fifo_lost_packets == 22
    assert bus.readfrom_mem(0x68, ICM_INT_STATUS, 1)[0] & 0x02  # FIFO_FULL_INT
    assert bus.readfrom_mem(0x68, 0x2E, 2) == (2048).to_bytes(2, "big")  # default: big-endian bytes
    assert bus.readfrom_mem(0x68, 0x6C, 2) == (22).to_bytes(2, "little")
    bus.writeto_mem(0x68, ICM_INTF_CONFIG0, b"\x40")  # count in records, little-endian
    assert bus.readfrom_mem(0x68, 0x2E, 2) == (128).to_bytes(2, "little")
    first = bus.readfrom_mem(0x68, 0x30, 16)
    assert first[0] & 0xFC == 0x68  # packet 3 header with ODR timestamp
    bus.writeto_mem(0x68, 0x4B, b"\x02")  # FIFO_FLUSH
    assert emu.fifo_level_bytes == 0
    assert bus.readfrom_mem(0x68, 0x30, 3) == b"\xff\xff\xff"  # empty FIFO
    bus.writeto_mem(0x68, ICM_GYRO_CONFIG0, b"\x0b")  # 12.5 Hz
    total = sum(emu.advance(80_000) for _ in range(100))  # 8 s
    assert total == 100
    bus.writeto_mem(0x68, 0x76, b"\x01")  # bank 1: its registers are separate
    bus.writeto_mem(0x68, 0x4F, b"\x99")
    bus.writeto_mem(0x68, 0x76, b"\x00")
    assert emu.regs[ICM_GYRO_CONFIG0] == 0x0B
    bus.writeto_mem(0x68, 0x11, b"\x01")  # soft reset
    assert emu.regs[ICM_GYRO_CONFIG0] == 0x06 and emu.regs[ICM_INT_STATUS] == 0x10
    assert emu.fifo_level_bytes == 0


# --- the same checks under real MicroPython ---------------------------------------------------
@pytest.mark.mpy
def test_drivers_under_micropython_allocation_free() -> None:
    result = run_micropython(
        "tests/firmware/on_micropython/drivers/check_drivers.py",
        mounts=(("firmware/lib", "/lib"), ("host/tremorlift/twin/board", "/twin")),
        paths=("/lib", "/twin"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DRIVERS OK" in result.stdout
    assert result.stdout.count("allocation-free") == 9
