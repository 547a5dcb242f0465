"""The digital twin: the firmware on an emulated board and IMU, over a real Bumble BLE stack."""

# The IMU models the twin emulates (a register emulator in board.imu_emulator and a noise model
# in motion.sensor for each): the one list ``collect --imu`` and ``simulate --imu`` offer.
IMUS = ("icm42688", "mpu6050")
