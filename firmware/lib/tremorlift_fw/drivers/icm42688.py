"""ICM-42688-P over I2C, read through its hardware FIFO.

Registers (user bank 0, the only bank used) from the ICM-42688-P datasheet DS-000347, section
"User Bank 0 Register Map - Descriptions", named as there; FIFO packets from section 6.

Packet format used: packet 3 (DS-000347 6.1), 16 bytes, accel + gyro:
    byte 0      header: 0x68 = HEADER_ACCEL | HEADER_GYRO | ODR timestamp (6.2); bit 7
                HEADER_MSG = FIFO empty (an empty FIFO reads as 0xFF bytes)
    bytes 1-6   accel x, y, z   int16
    bytes 7-12  gyro x, y, z    int16
    byte 13     temperature     int8
    bytes 14-15 ODR timestamp   uint16
INTF_CONFIG0 = 0 makes the sample data and FIFO_COUNT little-endian and the count in bytes, so
bytes 1-12 are already in the wire layout (ax ay az gx gy gz, int16 LE) and are copied as is.
A sensor value of -32768 marks invalid data (e.g. the gyro still starting up): such packets are
skipped and counted in invalid_samples. A header without both the accel and the gyro flags (or
with the 20-bit flag) means the reader lost the packet boundaries: the FIFO is reset and the gap
reported like an overflow.

Start-up: the first samples after the sensors are switched on are not valid yet (DS-000347
Table 1: gyroscope start-up time 30 ms from sleep to valid data; Table 2: accelerometer 10 ms).
TDK's own driver (Icm426xxDefs.h) takes 60 ms (gyro) and 20 ms (accel) before it reports data
as correct. So the first fifo_start() after init() waits until 60 ms after the sensors went on
and flushes the FIFO after that: nothing from the start-up reaches a frame. (Without a clock the
wait is the whole 60 ms; it happens once per init, at START or after a re-initialisation.)

Overflow: INT_STATUS.FIFO_FULL_INT (or a count at the 2048-byte capacity) -> the FIFO is flushed
(SIGNAL_PATH_RESET.FIFO_FLUSH) and read_fifo returns -1.
"""

from micropython import const

from ._common import (
    IMU_ICM42688P,
    PACKET_DESYNC,
    PACKET_EMPTY,
    PACKET_INVALID,
    PACKET_OK,
    FifoImu,
)

_EIO = const(5)
_ENODEV = const(19)

# User bank 0 (DS-000347 "User Bank 0 Register Map - Descriptions").
_DEVICE_CONFIG = const(0x11)  # SOFT_RESET_CONFIG bit 0: wait 1 ms afterwards
_FIFO_CONFIG = const(0x16)  # FIFO_MODE[7:6]: 00 bypass, 01 stream-to-FIFO, 1x stop-on-full
_INT_STATUS = const(0x2D)  # RESET_DONE_INT bit 4, FIFO_FULL_INT bit 1; cleared by reading it
_FIFO_COUNTH = const(0x2E)  # FIFO_COUNTH/L; reading FIFO_COUNTH latches both
_FIFO_DATA = const(0x30)
_SIGNAL_PATH_RESET = const(0x4B)  # FIFO_FLUSH bit 1
# FIFO_COUNT_REC bit 6, FIFO_COUNT_ENDIAN bit 5, SENSOR_DATA_ENDIAN bit 4.
_INTF_CONFIG0 = const(0x4C)
_PWR_MGMT0 = const(0x4E)  # GYRO_MODE[3:2], ACCEL_MODE[1:0]: 11 = low noise
_GYRO_CONFIG0 = const(0x4F)  # GYRO_FS_SEL[7:5], GYRO_ODR[3:0]
_ACCEL_CONFIG0 = const(0x50)  # ACCEL_FS_SEL[7:5], ACCEL_ODR[3:0]
_GYRO_ACCEL_CONFIG0 = const(0x52)  # ACCEL_UI_FILT_BW[7:4], GYRO_UI_FILT_BW[3:0] (section 5.5)
_FIFO_CONFIG1 = const(0x5F)  # TMST_FSYNC_EN bit 3, TEMP_EN 2, GYRO_EN 1, ACCEL_EN 0
_WHO_AM_I = const(0x75)
_REG_BANK_SEL = const(0x76)

_WHO_AM_I_ICM42688P = const(0x47)
_INT_RESET_DONE = const(0x10)
_INT_FIFO_FULL = const(0x02)
_FIFO_MODE_BYPASS = const(0x00)
_FIFO_MODE_STREAM = const(0x40)
_FIFO_FLUSH = const(0x02)
_INTF_LITTLE_ENDIAN_BYTES = const(0x00)  # data and count little-endian, count in bytes
_PWR_GYRO_ACCEL_LN = const(0x0F)
_FIFO_ACCEL_GYRO_TEMP_TMST = const(0x0F)  # packet 3 with its ODR timestamp
_FIFO_BYTES = const(2048)

_HEADER_MSG = const(0x80)  # DS-000347 6.2: 1 = FIFO empty
_HEADER_ACCEL_GYRO = const(0x60)  # HEADER_ACCEL bit 6, HEADER_GYRO bit 5
_HEADER_20 = const(0x10)  # 20-bit packet (never enabled here)

_RESET_WAIT_MS = const(1)  # after SOFT_RESET_CONFIG
_MODE_WAIT_MS = const(1)  # no register writes for 200 us after a PWR_MGMT0 change
_STARTUP_MS = const(60)  # sensors on -> valid data (TDK's driver; datasheet: gyro 30 ms)

# GYRO_ODR / ACCEL_ODR codes (same table for both).
_ODR_CODES = {50: 0x09, 100: 0x08, 200: 0x07, 500: 0x0F, 1000: 0x06}
# GYRO_FS_SEL / ACCEL_FS_SEL codes: largest range is code 0.
_GYRO_FS_CODES = {2000: 0, 1000: 1, 500: 2, 250: 3}
_ACCEL_FS_CODES = {16: 0, 8: 1, 4: 2, 2: 3}
# UI filter bandwidth in low-noise mode (section 5.5): code 0 = ODR/2, codes 1..7 =
# max(400 Hz, ODR) / (4, 5, 8, 10, 16, 20, 40).
_UI_FILTER_DIVISORS = (4, 5, 8, 10, 16, 20, 40)


class ICM42688(FifoImu):
    KIND = IMU_ICM42688P
    NAME = "ICM-42688-P"
    WHO_AM_I = _WHO_AM_I_ICM42688P
    who_am_i = _WHO_AM_I_ICM42688P
    _PACKET_BYTES = 16
    _DATA_OFFSET = 1
    _BIG_ENDIAN = False
    _FIFO_DATA_REG = _FIFO_DATA

    def __init__(self, i2c, address=0x68, *, sleep_ms=None):
        super().__init__(i2c, address, sleep_ms=sleep_ms)
        self._level = bytearray(3)  # INT_STATUS, FIFO_COUNTH, FIFO_COUNTL in one burst
        self._fifo_capacity = _FIFO_BYTES
        self._starting = False  # sensors switched on by init(), start-up not yet waited out

    def init(self):
        """Check WHO_AM_I, soft-reset, little-endian data, accel + gyro low-noise mode."""
        if self._read(_WHO_AM_I) != _WHO_AM_I_ICM42688P:
            # Maybe left in another register bank (0x75 means something else there).
            self._write(_REG_BANK_SEL, 0)
            if self._read(_WHO_AM_I) != _WHO_AM_I_ICM42688P:
                raise OSError(_ENODEV, "no such IMU")
        self._write(_DEVICE_CONFIG, 0x01)
        self._sleep_ms(_RESET_WAIT_MS)
        if not self._read(_INT_STATUS) & _INT_RESET_DONE:
            raise OSError(_EIO, "IMU not ready")
        self._write(_INTF_CONFIG0, _INTF_LITTLE_ENDIAN_BYTES)
        self._write(_PWR_MGMT0, _PWR_GYRO_ACCEL_LN)
        self._starting = True
        self._sleep_ms(_MODE_WAIT_MS)
        self._reapply_config()

    def _filter_options(self, chip_odr_hz):
        base_hz = chip_odr_hz if chip_odr_hz > 400 else 400
        options = [(chip_odr_hz // 2, 0)]
        code = 1
        for divisor in _UI_FILTER_DIVISORS:
            options.append((base_hz // divisor, code))
            code += 1
        return options

    def _apply_config(self, chip_odr_hz, accel_range_g, gyro_range_dps, filter_code):
        odr_code = _ODR_CODES[chip_odr_hz]
        self._write(_GYRO_CONFIG0, (_GYRO_FS_CODES[gyro_range_dps] << 5) | odr_code)
        self._write(_ACCEL_CONFIG0, (_ACCEL_FS_CODES[accel_range_g] << 5) | odr_code)
        self._write(_GYRO_ACCEL_CONFIG0, (filter_code << 4) | filter_code)

    def fifo_start(self):
        """Flush the FIFO and stream accel + gyro packets into it (after the sensors' start-up
        time, the first time after init())."""
        if self._starting:
            self._starting = False
            self._sleep_ms(_STARTUP_MS - _MODE_WAIT_MS)
        self._write(_FIFO_CONFIG1, _FIFO_ACCEL_GYRO_TEMP_TMST)
        self._write(_FIFO_CONFIG, _FIFO_MODE_STREAM)
        self._write(_SIGNAL_PATH_RESET, _FIFO_FLUSH)
        self._read(_INT_STATUS)  # clears a FIFO-full flag left from before
        self._phase = 0
        self._resync = False

    def fifo_stop(self):
        self._write(_FIFO_CONFIG, _FIFO_MODE_BYPASS)
        self._write(_FIFO_CONFIG1, 0)
        self._write(_SIGNAL_PATH_RESET, _FIFO_FLUSH)

    def _fifo_level(self):
        level = self._level
        self._i2c.readfrom_mem_into(self.address, _INT_STATUS, level)
        count = level[1] | (level[2] << 8)  # little-endian (INTF_CONFIG0)
        if level[0] & _INT_FIFO_FULL or count >= self._fifo_capacity:
            return -1
        return count

    def _fifo_reset(self):
        self._write(_SIGNAL_PATH_RESET, _FIFO_FLUSH)

    def _overflow_flag(self):
        return self._read(_INT_STATUS) & _INT_FIFO_FULL

    def _check_packet(self, buf, off):
        header = buf[off]
        if header & _HEADER_MSG:
            return PACKET_EMPTY
        if header & (_HEADER_ACCEL_GYRO | _HEADER_20) != _HEADER_ACCEL_GYRO:
            return PACKET_DESYNC
        for j in range(off + 2, off + 13, 2):
            # -32768 little-endian: low byte 0x00, high byte 0x80.
            if buf[j] == 0x80 and buf[j - 1] == 0:
                return PACKET_INVALID
        return PACKET_OK
