"""The emulated board: the IMU register emulator and MicroPython's ``machine`` module.

Both modules must keep running under real MicroPython as well as CPython: the firmware tests
mount this folder into the MicroPython WebAssembly port. Keep them to the subset of Python that
MicroPython implements (no dataclasses, typing at run time, f-string ``=`` or numpy)."""
