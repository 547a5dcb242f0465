"""Register-level emulators of the supported IMUs and of the I2C bus they hang on.

The firmware's drivers talk to these exactly as to the chips: register reads and writes over
an object with machine.I2C's memory methods. Each emulator keeps a register file, the chip's
FIFO at its real capacity, and produces samples at the rate its registers configure when the
twin's clock calls advance(dt_us).

Portable: runs under CPython and MicroPython (no numpy, dataclasses or typing at run time), so
the same emulator backs the CPython tests, the MicroPython allocation tests and the twin.
Reading a FIFO does not allocate, so a driver's read_fifo can be checked with the heap locked.

Samples and time: a sample is produced only while the chip is awake and its FIFO is on, and
the source callable is asked for it by index: samples_produced, 0 for the first sample the
emulator ever puts into its FIFO, counting on across FIFO resets and chip resets. Samples lost
to a FIFO overflow were produced all the same, so indices keep matching time.

Why one long module: it is mounted as one file into MicroPython for the firmware's tests and
the MicroPython twin, and its emulators share the bus and FIFO machinery.
"""

import math

GRAVITY_MPS2 = 9.80665
_DPS_PER_RADPS = 180.0 / math.pi
_EIO = 5
_ENODEV = 19
_ONE_SECOND_US = 1000000
# (errno, text) pairs so that .errno is set under CPython as under MicroPython.
_STRERROR = {_EIO: "EIO", _ENODEV: "ENODEV"}


def still_source(sample_index: int) -> tuple:
    """The default source: lying still, z up (+1 g on z, no rotation)."""
    return (0.0, 0.0, GRAVITY_MPS2, 0.0, 0.0, 0.0)


def quantise(value: float, lsb_per_unit: float, lowest: int = -32768) -> int:
    """value x lsb_per_unit rounded half up, saturated to [lowest, 32767]; NaN reads as 0."""
    x = value * lsb_per_unit
    if x != x:
        return 0
    if x >= 32767:
        return 32767
    if x <= lowest:
        return lowest
    return int(math.floor(x + 0.5))


class FakeI2C:
    """An I2C bus with emulated devices on it and injectable errors.

    Transactions to an address without a device raise OSError(ENODEV), like a missing ACK.
    error_rate (0..1) makes that share of transactions fail with OSError(EIO); fail_next(n)
    makes the next n fail. errors counts every failed transaction.
    """

    def __init__(self, seed: int = 1) -> None:
        self._devices: dict = {}
        self._error_rate = 0.0
        self._error_threshold = 0  # error_rate x 2**30, compared with 30-bit random numbers
        self._rng = seed & 0x7FFFFFFF
        self._fail_next = 0
        self._fail_errno = _EIO
        self.errors = 0
        self.transactions = 0

    @property
    def error_rate(self) -> float:
        return self._error_rate

    @error_rate.setter
    def error_rate(self, rate: float) -> None:
        if not 0 <= rate <= 1:
            raise ValueError("error_rate must be within 0..1")
        self._error_rate = rate
        self._error_threshold = int(rate * 0x40000000)

    def fail_next(self, n: int, errno: int = _EIO) -> None:
        """Make the next n transactions raise OSError(errno)."""
        self._fail_next = n
        self._fail_errno = errno

    def attach(self, device) -> None:
        self._devices[device.address] = device

    def detach(self, address: int) -> None:
        """Remove the device at address (as if unplugged)."""
        self._devices.pop(address, None)

    def scan(self) -> list:
        return sorted(self._devices)

    def _device(self, addr):
        # Nothing here allocates unless a transaction fails (the exception itself).
        self.transactions += 1
        if self._fail_next > 0:
            self._fail_next -= 1
            self.errors += 1
            raise OSError(self._fail_errno, _STRERROR.get(self._fail_errno, "I/O error"))
        if self._error_threshold:
            self._rng = (self._rng * 1103515245 + 12345) & 0x7FFFFFFF
            if (self._rng >> 1) < self._error_threshold:
                self.errors += 1
                raise OSError(_EIO, _STRERROR[_EIO])
        device = self._devices.get(addr)
        if device is None:
            self.errors += 1
            raise OSError(_ENODEV, _STRERROR[_ENODEV])
        return device

    def readfrom_mem_into(self, addr: int, memaddr: int, buf, *, addrsize: int = 8) -> None:
        self._device(addr).read_into(memaddr, buf)

    def readfrom_mem(self, addr: int, memaddr: int, nbytes: int, *, addrsize: int = 8) -> bytes:
        buf = bytearray(nbytes)
        self._device(addr).read_into(memaddr, buf)
        return bytes(buf)

    def writeto_mem(self, addr: int, memaddr: int, buf, *, addrsize: int = 8) -> None:
        self._device(addr).write(memaddr, buf)


class _Fifo:
    """A byte ring buffer of fixed capacity."""

    def __init__(self, capacity):
        self.capacity = capacity
        self._buf = bytearray(capacity)
        self._head = 0  # index of the oldest byte
        self.level = 0

    def clear(self):
        self._head = 0
        self.level = 0

    def push(self, data, n):
        """Append data[0:n], overwriting the oldest bytes if full; returns bytes overwritten."""
        cap = self.capacity
        buf = self._buf
        tail = (self._head + self.level) % cap
        for i in range(n):
            buf[tail] = data[i]
            tail = tail + 1 if tail + 1 < cap else 0
        level = self.level + n
        lost = 0
        if level > cap:
            lost = level - cap
            self._head = (self._head + lost) % cap
            level = cap
        self.level = level
        return lost

    def pop_into(self, out, start, n):
        """Move up to n bytes into out[start:]; returns how many were moved."""
        cap = self.capacity
        buf = self._buf
        head = self._head
        take = n if n < self.level else self.level
        end = start + take
        i = start
        while i < end:
            out[i] = buf[head]
            head = head + 1 if head + 1 < cap else 0
            i += 1
        self._head = head
        self.level -= take
        return take


def _fill(out, start, end, value):
    while start < end:
        out[start] = value
        start += 1


class _Emulator:
    """What both emulators share: the register file, burst access, time and sample production."""

    _FIFO_DATA_REG = 0
    _fifo: _Fifo  # each chip builds its own, with its own capacity

    def __init__(self, address, source):
        self.address = address
        self.source = source if source is not None else still_source
        self.regs = bytearray(128)
        self.samples_produced = 0
        self.fifo_overflows = 0  # times the FIFO was full when a sample arrived
        self._acc = 0  # unproduced fraction of a sample, in microseconds x samples per second

    # I2C side. A burst that reaches the FIFO data register stays on it (the address does not
    # advance there), so the rest of the burst is FIFO bytes.
    def read_into(self, memaddr: int, buf) -> None:
        n = len(buf)
        reg = memaddr & 0x7F
        i = 0
        while i < n:
            if reg == self._FIFO_DATA_REG:
                self._read_fifo(buf, i, n - i)
                return
            buf[i] = self._read_reg(reg)
            reg = (reg + 1) & 0x7F
            i += 1

    def write(self, memaddr: int, buf) -> None:
        reg = memaddr & 0x7F
        for i in range(len(buf)):
            self._write_reg(reg, buf[i])
            if reg != self._FIFO_DATA_REG:
                reg = (reg + 1) & 0x7F

    @property
    def fifo_level_bytes(self) -> int:
        return self._fifo.level  # each chip builds its FIFO (self._fifo) with its own capacity

    # Time side.
    @property
    def odr_hz(self) -> float:
        """Sample rate the registers configure now (Hz; a float when not a whole number)."""
        num, den = self._rate()
        if den == 0:
            return 0
        return num // den if num % den == 0 else num / den

    def advance(self, dt_us: int) -> int:
        """Produce the samples the chip makes in dt_us (microseconds); returns how many.

        The fraction of a sample left over is carried to the next call, so a long run yields
        exactly floor(odr x total time) samples however the time is sliced.
        """
        if dt_us <= 0:
            return 0
        num, den = self._rate()
        if den == 0 or not self._producing():
            self._acc = 0
            return 0
        period = den * _ONE_SECOND_US
        self._acc += dt_us * num
        n = int(self._acc // period)  # int() in case dt_us came as a float
        self._acc -= n * period
        for _ in range(n):
            values = self.source(self.samples_produced)
            self.samples_produced += 1
            self._produce(values)
        return n

    # Chip side (subclasses).
    def _rate(self):
        return 0, 0

    def _producing(self):
        return False

    def _produce(self, values):
        raise NotImplementedError

    def _read_reg(self, reg):
        return self.regs[reg]

    def _write_reg(self, reg, value):
        self.regs[reg] = value

    def _read_fifo(self, buf, start, n):
        raise NotImplementedError


# --- MPU-6050 / MPU-6500 -----------------------------------------------------------------
# RM-MPU-6000A-00 rev 4.2 (sections "RM 4.x"); MPU-6500 from RM-MPU-6500A-00 rev 2.1.
_MPU_SMPLRT_DIV = 0x19  # RM 4.2
_MPU_CONFIG = 0x1A  # RM 4.3: DLPF_CFG[2:0]; MPU-6500 FIFO_MODE bit 6
_MPU_GYRO_CONFIG = 0x1B  # RM 4.4: FS_SEL[4:3]
_MPU_ACCEL_CONFIG = 0x1C  # RM 4.5: AFS_SEL[4:3]
_MPU_FIFO_EN = 0x23  # RM 4.6: TEMP 7, XG 6, YG 5, ZG 4, ACCEL 3 (slave bits not emulated)
_MPU_INT_STATUS = 0x3A  # RM 4.16: FIFO_OFLOW_INT bit 4, DATA_RDY_INT bit 0; cleared by reading
_MPU_ACCEL_XOUT_H = 0x3B  # RM 4.17-4.19: accel 0x3B-0x40, temp 0x41-0x42, gyro 0x43-0x48
_MPU_SIGNAL_PATH_RESET = 0x68  # RM 4.26
_MPU_USER_CTRL = 0x6A  # RM 4.27: FIFO_EN bit 6, FIFO_RESET bit 2, SIG_COND_RESET bit 0
_MPU_PWR_MGMT_1 = 0x6B  # RM 4.28: DEVICE_RESET bit 7, SLEEP bit 6, CYCLE bit 5; reset 0x40
_MPU_FIFO_COUNTH = 0x72  # RM 4.30: reading COUNTH latches COUNTH and COUNTL
_MPU_FIFO_COUNTL = 0x73
_MPU_FIFO_R_W = 0x74  # RM 4.31
_MPU_WHO_AM_I = 0x75  # RM 4.32
_MPU_READ_ONLY = (_MPU_INT_STATUS, _MPU_FIFO_COUNTH, _MPU_FIFO_COUNTL, _MPU_WHO_AM_I)
# Gyro LSB per deg/s by FS_SEL (product spec PS-MPU-6000A 6.1); accel LSB/g is 16384 >> AFS_SEL.
_MPU_GYRO_LSB_PER_DPS = (131.0, 65.5, 32.8, 16.4)
_MPU_TEMP_25C_RAW = -3920  # (25 - 36.53) x 340 (RM 4.18)


class Mpu6050Emulator(_Emulator):
    """MPU-6050 (who_am_i 0x68, 1024-byte FIFO) or MPU-6500 (who_am_i 0x70, 512-byte FIFO).

    Overflow, per RM 4.31: "When the FIFO buffer has overflowed, the oldest data will be lost
    and new data will be written to the FIFO", and INT_STATUS.FIFO_OFLOW_INT is set. Emulated
    byte by byte, so (1024 not being a multiple of 12) the packet boundaries drift as on the
    chip. The MPU-6500 with CONFIG.FIFO_MODE = 1 instead keeps the old data and drops the new.
    Rate: the gyro output rate (8 kHz with DLPF_CFG 0 or 7, else 1 kHz) / (1 + SMPLRT_DIV).
    Not emulated: cycle mode (treated as asleep), external sensors, FIFO writes, self-test.
    """

    _FIFO_DATA_REG = _MPU_FIFO_R_W

    def __init__(self, address: int = 0x68, who_am_i: int = 0x68, source=None) -> None:
        super().__init__(address, source)
        self.who_am_i = who_am_i
        self.is_mpu6500 = who_am_i == 0x70
        self.fifo_capacity_bytes = 512 if self.is_mpu6500 else 1024
        self._fifo = _Fifo(self.fifo_capacity_bytes)
        self._packet = bytearray(14)
        self._last_fifo_byte = 0
        self.reset()

    def reset(self) -> None:
        """Power-on / DEVICE_RESET state: all registers 0 but PWR_MGMT_1 (asleep) and WHO_AM_I."""
        regs = self.regs
        for i in range(len(regs)):
            regs[i] = 0
        regs[_MPU_PWR_MGMT_1] = 0x40
        regs[_MPU_WHO_AM_I] = self.who_am_i
        self._fifo.clear()
        self._acc = 0

    def _rate(self):
        dlpf_cfg = self.regs[_MPU_CONFIG] & 0x07
        gyro_rate_hz = 8000 if dlpf_cfg == 0 or dlpf_cfg == 7 else 1000
        return gyro_rate_hz, 1 + self.regs[_MPU_SMPLRT_DIV]

    def _producing(self):
        regs = self.regs
        return (
            not regs[_MPU_PWR_MGMT_1] & 0x60  # neither SLEEP nor CYCLE
            and regs[_MPU_USER_CTRL] & 0x40
            and regs[_MPU_FIFO_EN] & 0xF8
        )

    def _produce(self, values):
        regs = self.regs
        accel_lsb_per_mps2 = (16384 >> ((regs[_MPU_ACCEL_CONFIG] >> 3) & 3)) / GRAVITY_MPS2
        gyro_lsb_per_radps = (
            _MPU_GYRO_LSB_PER_DPS[(regs[_MPU_GYRO_CONFIG] >> 3) & 3] * _DPS_PER_RADPS
        )
        # Data registers, big-endian (RM 4.17-4.19).
        for axis in range(6):
            scale = accel_lsb_per_mps2 if axis < 3 else gyro_lsb_per_radps
            raw = quantise(values[axis], scale)
            reg = _MPU_ACCEL_XOUT_H + 2 * axis + (0 if axis < 3 else 2)
            regs[reg] = (raw >> 8) & 0xFF
            regs[reg + 1] = raw & 0xFF
        regs[0x41] = (_MPU_TEMP_25C_RAW >> 8) & 0xFF
        regs[0x42] = _MPU_TEMP_25C_RAW & 0xFF
        # FIFO packet: the enabled registers in address order (RM 4.31).
        fifo_en = regs[_MPU_FIFO_EN]
        packet = self._packet
        n = 0
        if fifo_en & 0x08:
            for reg in range(0x3B, 0x41):
                packet[n] = regs[reg]
                n += 1
        if fifo_en & 0x80:
            packet[n] = regs[0x41]
            packet[n + 1] = regs[0x42]
            n += 2
        for bit, reg in ((0x40, 0x43), (0x20, 0x45), (0x10, 0x47)):
            if fifo_en & bit:
                packet[n] = regs[reg]
                packet[n + 1] = regs[reg + 1]
                n += 2
        fifo = self._fifo
        if fifo.level + n > fifo.capacity:
            regs[_MPU_INT_STATUS] |= 0x10
            self.fifo_overflows += 1
            if self.is_mpu6500 and regs[_MPU_CONFIG] & 0x40:
                regs[_MPU_INT_STATUS] |= 0x01
                return  # FIFO_MODE 1: the new data is not written
        fifo.push(packet, n)
        regs[_MPU_INT_STATUS] |= 0x01

    def _read_reg(self, reg):
        regs = self.regs
        if reg == _MPU_INT_STATUS:
            value = regs[reg]
            regs[reg] = 0
            return value
        if reg == _MPU_FIFO_COUNTH:
            level = self._fifo.level
            regs[_MPU_FIFO_COUNTH] = (level >> 8) & 0xFF
            regs[_MPU_FIFO_COUNTL] = level & 0xFF
        return regs[reg]

    def _write_reg(self, reg, value):
        regs = self.regs
        if reg == _MPU_PWR_MGMT_1:
            if value & 0x80:
                self.reset()
            else:
                regs[reg] = value
        elif reg == _MPU_USER_CTRL:
            if value & 0x04:
                self._fifo.clear()
            if value & 0x01:
                for r in range(0x3B, 0x49):
                    regs[r] = 0
            regs[reg] = value & 0xF8  # the reset bits clear themselves
        elif reg == _MPU_SIGNAL_PATH_RESET:
            if value & 0x04:
                for r in range(0x43, 0x49):
                    regs[r] = 0
            if value & 0x02:
                for r in range(0x3B, 0x41):
                    regs[r] = 0
            if value & 0x01:
                regs[0x41] = regs[0x42] = 0
        elif reg == _MPU_FIFO_R_W or reg in _MPU_READ_ONLY or 0x3B <= reg <= 0x60:
            pass  # read-only, or a FIFO write (not emulated)
        else:
            regs[reg] = value

    def _read_fifo(self, buf, start, n):
        # Reading an empty FIFO returns the last byte read from it again (RM 4.31).
        taken = self._fifo.pop_into(buf, start, n)
        if taken:
            self._last_fifo_byte = buf[start + taken - 1]
        _fill(buf, start + taken, start + n, self._last_fifo_byte)


# --- ICM-42688-P ---------------------------------------------------------------------------
# DS-000347, "User Bank 0 Register Map - Descriptions"; FIFO packets in section 6.
_ICM_DEVICE_CONFIG = 0x11  # SOFT_RESET_CONFIG bit 0
_ICM_FIFO_CONFIG = 0x16  # FIFO_MODE[7:6]: 00 bypass, 01 stream, 1x stop-on-full
_ICM_TEMP_DATA1 = 0x1D  # TEMP_DATA1/0, then ACCEL_DATA_X1.. GYRO_DATA_Z0 up to 0x2A
_ICM_INT_STATUS = 0x2D  # RESET_DONE 4, DATA_RDY 3, FIFO_FULL 1; cleared by reading
_ICM_FIFO_COUNTH = 0x2E  # reading it latches FIFO_COUNTH and FIFO_COUNTL
_ICM_FIFO_COUNTL = 0x2F
_ICM_FIFO_DATA = 0x30
_ICM_SIGNAL_PATH_RESET = 0x4B  # FIFO_FLUSH bit 1
_ICM_INTF_CONFIG0 = 0x4C  # FIFO_COUNT_REC 6, FIFO_COUNT_ENDIAN 5, SENSOR_DATA_ENDIAN 4 (1 = big)
_ICM_INTF_CONFIG1 = 0x4D
_ICM_PWR_MGMT0 = 0x4E  # GYRO_MODE[3:2] (11 LN), ACCEL_MODE[1:0] (10 LP, 11 LN)
_ICM_GYRO_CONFIG0 = 0x4F  # GYRO_FS_SEL[7:5] (0 = 2000 dps), GYRO_ODR[3:0]
_ICM_ACCEL_CONFIG0 = 0x50  # ACCEL_FS_SEL[7:5] (0 = 16 g), ACCEL_ODR[3:0]
_ICM_GYRO_CONFIG1 = 0x51
_ICM_GYRO_ACCEL_CONFIG0 = 0x52
_ICM_ACCEL_CONFIG1 = 0x53
_ICM_TMST_CONFIG = 0x54
_ICM_FIFO_CONFIG1 = 0x5F  # HIRES 4, TMST_FSYNC 3, TEMP 2, GYRO 1, ACCEL 0
_ICM_FIFO_LOST_PKT0 = 0x6C  # FIFO_LOST_PKT0/1: packets that did not fit, little-endian
_ICM_WHO_AM_I = 0x75
_ICM_REG_BANK_SEL = 0x76
_ICM_READ_ONLY_LOW = 0x1D  # 0x1D..0x38: data, status and FIFO registers
_ICM_READ_ONLY_HIGH = 0x38
# Reset values of the registers the drivers use (DS-000347 register descriptions).
_ICM_RESET_VALUES = (
    (_ICM_INT_STATUS, 0x10),
    (_ICM_INTF_CONFIG0, 0x30),
    (_ICM_INTF_CONFIG1, 0x91),
    (_ICM_GYRO_CONFIG0, 0x06),
    (_ICM_ACCEL_CONFIG0, 0x06),
    (_ICM_GYRO_CONFIG1, 0x16),
    (_ICM_GYRO_ACCEL_CONFIG0, 0x11),
    (_ICM_ACCEL_CONFIG1, 0x0D),
    (_ICM_TMST_CONFIG, 0x23),
    (_ICM_WHO_AM_I, 0x47),
)
# GYRO_ODR / ACCEL_ODR code -> rate as (numerator, denominator) Hz; 0 is reserved.
_ICM_ODR = (
    (0, 0),
    (32000, 1),
    (16000, 1),
    (8000, 1),
    (4000, 1),
    (2000, 1),
    (1000, 1),
    (200, 1),
    (100, 1),
    (50, 1),
    (25, 1),
    (25, 2),
    (25, 4),
    (25, 8),
    (25, 16),
    (500, 1),
)
_ICM_GYRO_LSB_PER_DPS = (16.4, 32.8, 65.5, 131.0, 262.0, 524.3, 1048.6, 2097.2)  # by FS_SEL
_ICM_FIFO_BYTES = 2048
_ICM_INVALID = -32768  # sensor data value of a sensor that is off or not ready
# Start-up from off to valid data (DS-000347 Table 1: gyroscope 30 ms; Table 2: accelerometer
# 10 ms). Samples taken before then carry a settling error that decays linearly to zero here:
# up to _ICM_STARTUP_GYRO_RADPS and _ICM_STARTUP_ACCEL_MPS2 on every axis.
_ICM_GYRO_STARTUP_US = 30_000
_ICM_ACCEL_STARTUP_US = 10_000
_ICM_STARTUP_GYRO_RADPS = 0.5
_ICM_STARTUP_ACCEL_MPS2 = 2.0


class Icm42688Emulator(_Emulator):
    """ICM-42688-P with its 2048-byte FIFO, in 16-bit packets.

    Packets (DS-000347 6.1): accel + gyro enabled -> packet 3 (16 bytes: header, accel, gyro,
    temperature, timestamp); accel or gyro alone -> packet 1 or 2 (8 bytes: header, data,
    temperature). Header 0x40 accel | 0x20 gyro | 0x08 ODR timestamp (FIFO_TMST_FSYNC_EN), plus
    bits 1:0 on the first packet after an ODR change. A sensor that is off reads -32768; valid
    data saturates at -32767..32767 so that -32768 stays the invalid marker. An empty FIFO reads
    0xFF. Sample and count byte order and count unit follow INTF_CONFIG0.

    Full FIFO: DS-000347 counts packets that could not be written in FIFO_LOST_PKT0/1 and flags
    INT_STATUS.FIFO_FULL_INT; the emulator drops each packet that does not fit whole, counts it
    there and raises FIFO_FULL_INT (also when the FIFO becomes exactly full).
    Start-up: after a sensor is switched on (PWR_MGMT0), its samples settle for the datasheet's
    start-up time (accel 10 ms, gyro 30 ms) with a decaying error added (``startup_samples``
    counts the samples produced so); time passes for it in ``advance`` whether or not the FIFO
    is on.
    Rate: the gyro ODR when the gyro is on, else the accel ODR. Not emulated: the 20-byte
    high-resolution packet 4 (FIFO_HIRES_EN), accel low-power averaging, APEX, banks 1-4 beyond
    storing their registers.
    """

    _FIFO_DATA_REG = _ICM_FIFO_DATA

    def __init__(self, address: int = 0x68, source=None) -> None:
        super().__init__(address, source)
        self.fifo_capacity_bytes = _ICM_FIFO_BYTES
        self._fifo = _Fifo(_ICM_FIFO_BYTES)
        self._packet = bytearray(16)
        self._other_banks = [bytearray(128) for _ in range(4)]
        self._bank = 0
        self._count_latch = 0
        self._odr_changed = 0
        self.fifo_lost_packets = 0
        self._gyro_on_us = _ICM_GYRO_STARTUP_US  # time since the gyro was switched on
        self._accel_on_us = _ICM_ACCEL_STARTUP_US
        self.startup_samples = 0  # samples produced before both sensors had settled
        self.reset()

    def reset(self) -> None:
        """Power-on / soft-reset state."""
        regs = self.regs
        for i in range(len(regs)):
            regs[i] = 0
        for bank in self._other_banks:
            for i in range(len(bank)):
                bank[i] = 0
        for reg, value in _ICM_RESET_VALUES:
            regs[reg] = value
        self._bank = 0
        self._fifo.clear()
        self.fifo_lost_packets = 0
        self._odr_changed = 0
        self._acc = 0

    def _modes(self):
        pwr = self.regs[_ICM_PWR_MGMT0]
        accel_on = (pwr & 0x03) >= 2
        gyro_on = (pwr & 0x0C) == 0x0C
        return accel_on, gyro_on

    def _rate(self):
        accel_on, gyro_on = self._modes()
        reg = _ICM_GYRO_CONFIG0 if gyro_on or not accel_on else _ICM_ACCEL_CONFIG0
        return _ICM_ODR[self.regs[reg] & 0x0F]

    def advance(self, dt_us: int) -> int:
        if dt_us > 0 and not self._producing():
            # The sensors settle whether or not anything goes into the FIFO.
            self._gyro_on_us = min(_ICM_GYRO_STARTUP_US, self._gyro_on_us + dt_us)
            self._accel_on_us = min(_ICM_ACCEL_STARTUP_US, self._accel_on_us + dt_us)
        return super().advance(dt_us)

    def _settle(self, values):
        # The start-up error of the sample now produced; one sample period passes.
        gyro_left = _ICM_GYRO_STARTUP_US - self._gyro_on_us
        accel_left = _ICM_ACCEL_STARTUP_US - self._accel_on_us
        if gyro_left <= 0 and accel_left <= 0:
            return values
        num, den = self._rate()
        period_us = den * _ONE_SECOND_US // num
        self.startup_samples += 1
        out = list(values)
        if accel_left > 0:
            err = _ICM_STARTUP_ACCEL_MPS2 * accel_left / _ICM_ACCEL_STARTUP_US
            for axis in range(3):
                out[axis] += err
        if gyro_left > 0:
            err = _ICM_STARTUP_GYRO_RADPS * gyro_left / _ICM_GYRO_STARTUP_US
            for axis in range(3, 6):
                out[axis] += err
        self._gyro_on_us = min(_ICM_GYRO_STARTUP_US, self._gyro_on_us + period_us)
        self._accel_on_us = min(_ICM_ACCEL_STARTUP_US, self._accel_on_us + period_us)
        return out

    def _producing(self):
        regs = self.regs
        accel_on, gyro_on = self._modes()
        return (
            (accel_on or gyro_on)
            and regs[_ICM_FIFO_CONFIG] & 0xC0
            and regs[_ICM_FIFO_CONFIG1] & 0x03
        )

    def _put16(self, buf, i, value, big_endian):
        if big_endian:
            buf[i] = (value >> 8) & 0xFF
            buf[i + 1] = value & 0xFF
        else:
            buf[i] = value & 0xFF
            buf[i + 1] = (value >> 8) & 0xFF

    def _produce(self, values):
        regs = self.regs
        accel_on, gyro_on = self._modes()
        values = self._settle(values)
        big = bool(regs[_ICM_INTF_CONFIG0] & 0x10)
        accel_lsb_per_mps2 = (2048 << (regs[_ICM_ACCEL_CONFIG0] >> 5 & 3)) / GRAVITY_MPS2
        gyro_lsb_per_radps = _ICM_GYRO_LSB_PER_DPS[regs[_ICM_GYRO_CONFIG0] >> 5] * _DPS_PER_RADPS
        raw = [0, 0, 0, 0, 0, 0]
        for axis in range(6):
            on = accel_on if axis < 3 else gyro_on
            scale = accel_lsb_per_mps2 if axis < 3 else gyro_lsb_per_radps
            raw[axis] = quantise(values[axis], scale, -32767) if on else _ICM_INVALID
            self._put16(regs, 0x1F + 2 * axis, raw[axis], big)
        self._put16(regs, _ICM_TEMP_DATA1, 0, big)  # 25 degC
        regs[_ICM_INT_STATUS] |= 0x08  # DATA_RDY

        fifo_config1 = regs[_ICM_FIFO_CONFIG1]
        with_accel = fifo_config1 & 0x01
        with_gyro = fifo_config1 & 0x02
        packet = self._packet
        header = (0x40 if with_accel else 0) | (0x20 if with_gyro else 0)
        if with_accel and with_gyro and fifo_config1 & 0x08:
            header |= 0x08
        packet[0] = header | self._odr_changed
        n = 1
        for axis in range(6):
            if (axis < 3 and with_accel) or (axis >= 3 and with_gyro):
                self._put16(packet, n, raw[axis], big)
                n += 2
        packet[n] = 0  # temperature, 25 degC
        n += 1
        if with_accel and with_gyro:
            num, den = self._rate()
            timestamp_us = (self.samples_produced * den * _ONE_SECOND_US // num) & 0xFFFF
            self._put16(packet, n, timestamp_us, big)
            n += 2
        fifo = self._fifo
        if fifo.level + n > fifo.capacity:
            self.fifo_lost_packets += 1
            self.fifo_overflows += 1
            regs[_ICM_INT_STATUS] |= 0x02
            return
        self._odr_changed = 0
        fifo.push(packet, n)
        if fifo.level == fifo.capacity:
            regs[_ICM_INT_STATUS] |= 0x02

    def _read_reg(self, reg):
        if reg == _ICM_REG_BANK_SEL:
            return self._bank
        if self._bank:
            return self._other_banks[self._bank - 1][reg]
        regs = self.regs
        if reg == _ICM_INT_STATUS:
            value = regs[reg]
            regs[reg] = 0
            return value
        if reg == _ICM_FIFO_COUNTH or reg == _ICM_FIFO_COUNTL:
            intf = regs[_ICM_INTF_CONFIG0]
            if reg == _ICM_FIFO_COUNTH:
                level = self._fifo.level
                self._count_latch = level // self._packet_bytes() if intf & 0x40 else level
            count = self._count_latch
            # FIFO_COUNT_ENDIAN 1 (big): COUNTH holds the high byte; 0 (little): the low byte.
            high = (reg == _ICM_FIFO_COUNTH) == bool(intf & 0x20)
            return (count >> 8) & 0xFF if high else count & 0xFF
        if reg == _ICM_FIFO_LOST_PKT0:
            return self.fifo_lost_packets & 0xFF
        if reg == _ICM_FIFO_LOST_PKT0 + 1:
            return (self.fifo_lost_packets >> 8) & 0xFF
        return regs[reg]

    def _packet_bytes(self):
        both = (self.regs[_ICM_FIFO_CONFIG1] & 0x03) == 0x03
        return 16 if both else 8

    def _write_reg(self, reg, value):
        if reg == _ICM_REG_BANK_SEL:
            self._bank = value & 0x07 if (value & 0x07) <= 4 else 0
            return
        if self._bank:
            self._other_banks[self._bank - 1][reg] = value
            return
        regs = self.regs
        if reg == _ICM_DEVICE_CONFIG:
            if value & 0x01:
                self.reset()
            else:
                regs[reg] = value
        elif reg == _ICM_SIGNAL_PATH_RESET:
            if value & 0x02:
                self._fifo.clear()
        elif reg == _ICM_GYRO_CONFIG0 or reg == _ICM_ACCEL_CONFIG0:
            if (regs[reg] ^ value) & 0x0F:
                self._odr_changed |= 0x01 if reg == _ICM_GYRO_CONFIG0 else 0x02
            regs[reg] = value
        elif reg == _ICM_PWR_MGMT0:
            was_accel, was_gyro = self._modes()
            regs[reg] = value
            accel_on, gyro_on = self._modes()
            if gyro_on and not was_gyro:
                self._gyro_on_us = 0
            if accel_on and not was_accel:
                self._accel_on_us = 0
        elif _ICM_READ_ONLY_LOW <= reg <= _ICM_READ_ONLY_HIGH or reg == _ICM_WHO_AM_I:
            pass
        elif reg == _ICM_FIFO_LOST_PKT0 or reg == _ICM_FIFO_LOST_PKT0 + 1:
            pass
        else:
            regs[reg] = value

    def _read_fifo(self, buf, start, n):
        taken = self._fifo.pop_into(buf, start, n)
        _fill(buf, start + taken, start + n, 0xFF)  # an empty FIFO reads 0xFF
