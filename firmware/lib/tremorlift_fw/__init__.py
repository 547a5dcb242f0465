"""tremorlift firmware: MicroPython code for the ESP32 + IMU wearable.

config.py holds every pin and option; protocol.py encodes the wire protocol
(docs/protocol.md); drivers/ reads the IMU's FIFO; app.py ties them together
and is started by the board's main.py. Nothing here touches hardware at import
time: the machine and bluetooth objects are built in app.main() and passed in.
"""
