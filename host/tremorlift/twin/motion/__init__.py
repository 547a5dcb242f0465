"""The physics-based motion generator: scenarios, the limb model and the IMU's errors."""
