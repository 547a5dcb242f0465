"""IMU drivers: find the IMU on the bus and read its FIFO (MPU-6050/6500, ICM-42688-P).

Every driver takes the bus (a machine.I2C-compatible object) and touches nothing until init().
imu_kind values are those of docs/protocol.md (INFO message).
"""

from ._common import IMU_ICM42688P, IMU_MPU6050, IMU_MPU6500, IMU_NONE  # noqa: F401
from .icm42688 import ICM42688
from .mpu6050 import MPU6050

_WHO_AM_I = 0x75  # the same register on both families


def detect(i2c, addresses=(0x68, 0x69), *, sleep_ms=None):
    """Return an init()-ed driver for the first IMU found at addresses, or None.

    An address that does not answer, answers with an unknown WHO_AM_I or fails init() is
    skipped. sleep_ms replaces time.sleep_ms for the reset waits (tests).
    """
    who_buf = bytearray(1)
    for address in addresses:
        try:
            i2c.readfrom_mem_into(address, _WHO_AM_I, who_buf)
        except OSError:
            continue
        who = who_buf[0]
        if who in MPU6050.WHO_AM_I_VALUES:
            driver = MPU6050(i2c, address, sleep_ms=sleep_ms)
        elif who == ICM42688.WHO_AM_I:
            driver = ICM42688(i2c, address, sleep_ms=sleep_ms)
        else:
            continue
        try:
            driver.init()
        except OSError:
            continue
        return driver
    return None
