"""MPU-6050 (and MPU-6500) over I2C, read through its hardware FIFO.

Registers from the MPU-6000/MPU-6050 Register Map and Descriptions, RM-MPU-6000A-00 rev 4.2
(sections given as "RM 4.x"); the MPU-6500 differences from RM-MPU-6500A-00 rev 2.1.

FIFO packet: FIFO_EN = XG|YG|ZG|ACCEL writes, at every sample, the registers in address order:
ACCEL_XOUT_H..ACCEL_ZOUT_L then GYRO_XOUT_H..GYRO_ZOUT_L: 12 bytes, big-endian, the wire order
(ax ay az gx gy gz) once each pair is swapped.

Overflow (RM 4.31): "When the FIFO buffer has overflowed, the oldest data will be lost and new
data will be written to the FIFO" and INT_STATUS.FIFO_OFLOW_INT is set. The 1024-byte FIFO is
not a multiple of 12 bytes, so after an overflow the packet boundaries are lost: the driver
resets the FIFO and reports -1.
"""

from micropython import const

from ._common import IMU_MPU6050, IMU_MPU6500, FifoImu

_EIO = const(5)
_ENODEV = const(19)

_SMPLRT_DIV = const(0x19)  # RM 4.2: sample rate = gyro output rate / (1 + SMPLRT_DIV)
_CONFIG = const(0x1A)  # RM 4.3: EXT_SYNC_SET[5:3], DLPF_CFG[2:0]; MPU-6500: FIFO_MODE bit 6
_GYRO_CONFIG = const(0x1B)  # RM 4.4: FS_SEL[4:3]
_ACCEL_CONFIG = const(0x1C)  # RM 4.5: AFS_SEL[4:3]
# MPU-6500 only (RM-MPU-6500A register 29): ACCEL_FCHOICE_B bit 3, A_DLPF_CFG[2:0].
_ACCEL_CONFIG2 = const(0x1D)
_FIFO_EN = const(0x23)  # RM 4.6
_INT_STATUS = const(0x3A)  # RM 4.16: cleared by reading it
_USER_CTRL = const(0x6A)  # RM 4.27
_PWR_MGMT_1 = const(0x6B)  # RM 4.28: reset value 0x40 (asleep)
_FIFO_COUNTH = const(0x72)  # RM 4.30: reading COUNTH latches COUNTH and COUNTL
_FIFO_R_W = const(0x74)  # RM 4.31
_WHO_AM_I = const(0x75)  # RM 4.32

_FIFO_EN_XG_YG_ZG_ACCEL = const(0x78)  # RM 4.6: XG_FIFO_EN bit 6, YG 5, ZG 4, ACCEL_FIFO_EN 3
_INT_FIFO_OFLOW = const(0x10)  # RM 4.16: FIFO_OFLOW_INT bit 4
_USER_FIFO_EN = const(0x40)  # RM 4.27: FIFO_EN bit 6
_USER_FIFO_RESET = const(0x04)  # RM 4.27: FIFO_RESET bit 2 (self-clearing)
_PWR_DEVICE_RESET = const(0x80)  # RM 4.28: DEVICE_RESET bit 7 (self-clearing)
# RM 4.28: CLKSEL 1 (PLL on the X gyro, as the register map recommends), SLEEP 0.
_PWR_CLK_PLL_XGYRO = const(0x01)

_WHO_AM_I_MPU6050 = const(0x68)  # RM 4.32 (bits 6:1 = 0x34; does not follow AD0)
_WHO_AM_I_MPU6500 = const(0x70)  # RM-MPU-6500A register 117
# GY-521 "MPU-6050" modules often carry clones that answer other ids but keep the MPU-6050
# registers this driver uses (power, config, ranges, FIFO, INT_STATUS): 0x98 is the most
# common, 0x72 and 0x73 are seen too (the ids accepted by public MPU-6050 drivers). Their
# FIFO size is not documented: the smaller one (512 B) is assumed for 0x72/0x73.
_WHO_AM_I_CLONES_1024 = (0x98,)
_WHO_AM_I_CLONES_512 = (0x72, 0x73)
_FIFO_BYTES_MPU6050 = const(1024)  # product spec PS-MPU-6000A 7.17
_FIFO_BYTES_MPU6500 = const(512)  # MPU-6500 product spec: 512-byte FIFO
_RESET_WAIT_MS = const(100)  # after DEVICE_RESET before the registers are usable
_WAKE_WAIT_MS = const(10)  # PLL settling after leaving sleep

# Gyro bandwidth (Hz) per DLPF_CFG 1..6, which run the gyro at 1 kHz (RM 4.3). DLPF_CFG 0 and 7
# switch the filter off (8 kHz gyro) and are never used: the accelerometer stays at 1 kHz.
_DLPF_MPU6050 = ((188, 1), (98, 2), (42, 3), (20, 4), (10, 5), (5, 6))
_DLPF_MPU6500 = ((184, 1), (92, 2), (41, 3), (20, 4), (10, 5), (5, 6))  # RM-MPU-6500A register 26
_GYRO_OUTPUT_RATE_HZ = const(1000)


class MPU6050(FifoImu):
    """MPU-6050 / MPU-6500 driver; init() tells them apart by WHO_AM_I."""

    KIND = IMU_MPU6050
    NAME = "MPU-6050"
    WHO_AM_I_VALUES = (_WHO_AM_I_MPU6050, _WHO_AM_I_MPU6500, 0x98, 0x72, 0x73)
    _PACKET_BYTES = 12
    _DATA_OFFSET = 0
    _BIG_ENDIAN = True
    _FIFO_DATA_REG = _FIFO_R_W

    def __init__(self, i2c, address=0x68, *, sleep_ms=None):
        super().__init__(i2c, address, sleep_ms=sleep_ms)
        self._status = bytearray(1)
        self._count = bytearray(2)
        self._fifo_capacity = _FIFO_BYTES_MPU6050
        self._dlpf_table = _DLPF_MPU6050
        self.who_am_i = 0  # the id the chip answered (init)

    def init(self):
        """Check WHO_AM_I, reset, wake on the gyro clock; restore the last configure()."""
        who = self._read(_WHO_AM_I)
        if who == _WHO_AM_I_MPU6500:
            self.KIND = IMU_MPU6500
            self.NAME = "MPU-6500"
            self._fifo_capacity = _FIFO_BYTES_MPU6500
            self._dlpf_table = _DLPF_MPU6500
        elif who == _WHO_AM_I_MPU6050 or who in _WHO_AM_I_CLONES_1024:
            self.KIND = IMU_MPU6050
            self.NAME = "MPU-6050"
            self._fifo_capacity = _FIFO_BYTES_MPU6050
            self._dlpf_table = _DLPF_MPU6050
        elif who in _WHO_AM_I_CLONES_512:
            self.KIND = IMU_MPU6050
            self.NAME = "MPU-6050"
            self._fifo_capacity = _FIFO_BYTES_MPU6500
            self._dlpf_table = _DLPF_MPU6050
        else:
            raise OSError(_ENODEV, "no such IMU")
        self.who_am_i = who
        self._write(_PWR_MGMT_1, _PWR_DEVICE_RESET)
        self._sleep_ms(_RESET_WAIT_MS)
        self._write(_PWR_MGMT_1, _PWR_CLK_PLL_XGYRO)
        self._sleep_ms(_WAKE_WAIT_MS)
        if self._read(_PWR_MGMT_1) != _PWR_CLK_PLL_XGYRO:
            raise OSError(_EIO, "IMU not ready")  # still asleep or resetting: not usable
        self._reapply_config()

    def _filter_options(self, chip_odr_hz):
        return self._dlpf_table

    def _apply_config(self, chip_odr_hz, accel_range_g, gyro_range_dps, filter_code):
        self._write(_CONFIG, filter_code)  # FIFO_MODE 0 on the MPU-6500: overwrite, as the 6050
        self._write(_SMPLRT_DIV, _GYRO_OUTPUT_RATE_HZ // chip_odr_hz - 1)
        self._write(_GYRO_CONFIG, _range_code(gyro_range_dps, 250) << 3)
        self._write(_ACCEL_CONFIG, _range_code(accel_range_g, 2) << 3)
        if self.KIND == IMU_MPU6500:
            # Accelerometer filter of the same index (FCHOICE_B 0: filtered, 1 kHz).
            self._write(_ACCEL_CONFIG2, filter_code)

    def fifo_start(self):
        """Empty the FIFO and start writing accel + gyro into it at the sample rate."""
        self._write(_USER_CTRL, 0)
        self._write(_FIFO_EN, _FIFO_EN_XG_YG_ZG_ACCEL)
        self._write(_USER_CTRL, _USER_FIFO_RESET)
        self._read(_INT_STATUS)  # clears an overflow flag left from before
        self._write(_USER_CTRL, _USER_FIFO_EN)
        self._phase = 0
        self._resync = False

    def fifo_stop(self):
        self._write(_USER_CTRL, 0)
        self._write(_FIFO_EN, 0)
        self._write(_USER_CTRL, _USER_FIFO_RESET)

    def _fifo_level(self):
        # INT_STATUS first: reading it clears FIFO_OFLOW_INT, so an overflow after this read is
        # seen at the next poll (or by the count reaching the capacity).
        i2c = self._i2c
        i2c.readfrom_mem_into(self.address, _INT_STATUS, self._status)
        i2c.readfrom_mem_into(self.address, _FIFO_COUNTH, self._count)
        count = (self._count[0] << 8) | self._count[1]
        if self._status[0] & _INT_FIFO_OFLOW or count >= self._fifo_capacity:
            return -1
        return count

    def _fifo_reset(self):
        # RM 4.27: FIFO_RESET only while FIFO_EN is 0; the FIFO is enabled again afterwards.
        self._write(_USER_CTRL, 0)
        self._write(_USER_CTRL, _USER_FIFO_RESET)
        self._write(_USER_CTRL, _USER_FIFO_EN)

    def _overflow_flag(self):
        return self._read(_INT_STATUS) & _INT_FIFO_OFLOW


def _range_code(value, smallest):
    # 2/4/8/16 g and 250/500/1000/2000 dps are codes 0..3 (RM 4.4, 4.5).
    code = 0
    while smallest < value:
        smallest <<= 1
        code += 1
    return code
