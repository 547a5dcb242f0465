"""The digital twin: the firmware on an emulated board and IMU, over a real Bumble BLE stack."""
