"""Every pin and option of the tremorlift firmware, in one place.

Nothing here touches hardware: these are plain numbers and strings that the
application reads when it builds its drivers. Pick the board with BOARD; the
pin map of each supported board is in BOARDS. hardware/wiring.csv must agree
with these pins (a test checks it).
"""

from micropython import const

# Firmware version (reported in STATUS and INFO; the protocol's is protocol.VERSION).
FW_VERSION = (0, 1, 0)

# --- Board ---------------------------------------------------------------
# One of the keys of BOARDS. "auto" picks by the chip MicroPython reports
# (sys.implementation._machine) and falls back to "esp32-devkitc".
BOARD = "auto"

# Pin numbers are GPIO numbers. None means "not fitted".
# led_active_low: the XIAO boards' user LED is wired to 3V3 (on when low).
# safe_mode_pin: the BOOT button on every supported board. It is a strapping
# pin (held while the chip starts, it selects the ROM bootloader), so it is read
# only after boot: pressing it while the LED is lit at start (SAFE_MODE_WINDOW_MS)
# skips auto-start and leaves the REPL free.
BOARDS = {
    # Seeed Studio XIAO ESP32-S3: D4/D5 are the I2C pins, user LED on GPIO21.
    "xiao-esp32s3": {
        "chip": "esp32s3",
        "i2c_id": 0,
        "sda": 5,  # D4
        "scl": 6,  # D5
        "imu_int": 4,  # D3 (optional: the firmware polls the FIFO)
        "led": 21,  # on-board user LED
        "led_active_low": True,
        "haptic": 1,  # D0 -> 1 kohm -> NPN base driving the vibration motor
        "battery_adc": 2,  # D1, ADC1_CH1, middle of a 2 x 100 kohm divider
        "safe_mode_pin": 0,  # BOOT button (pulled up, low when held)
    },
    # Seeed Studio XIAO ESP32-C3: no user LED on the board, so an external one.
    "xiao-esp32c3": {
        "chip": "esp32c3",
        "i2c_id": 0,
        "sda": 6,  # D4
        "scl": 7,  # D5
        "imu_int": 5,  # D3 (optional)
        "led": 10,  # D10 -> 330 ohm -> LED -> GND
        "led_active_low": False,
        "haptic": 4,  # D2 (GPIO2 and GPIO8/9 are strapping pins: avoided)
        "battery_adc": 3,  # D1 = A1, ADC1_CH3
        "safe_mode_pin": 9,  # BOOT button
    },
    # Espressif ESP32-DevKitC (classic ESP32-WROOM-32).
    "esp32-devkitc": {
        "chip": "esp32",
        "i2c_id": 0,
        "sda": 21,
        "scl": 22,
        "imu_int": 19,  # optional
        "led": 2,  # on-board LED on most DevKitC clones
        "led_active_low": False,
        "haptic": 25,
        "battery_adc": 34,  # ADC1_CH6, input only
        "safe_mode_pin": 0,  # BOOT button
    },
}

# --- I2C and IMU -----------------------------------------------------------
I2C_FREQ_HZ = const(400_000)
# 7-bit addresses tried in order (AD0 low, AD0 high).
IMU_ADDRESSES = (0x68, 0x69)
I2C_RETRIES = const(3)  # a failed transaction is retried this often before re-init

# Defaults applied at boot (changeable with the CONFIGURE command).
ODR_HZ = const(200)
ACCEL_RANGE_G = const(8)
GYRO_RANGE_DPS = const(1000)
DLPF_HZ = const(0)  # 0: the driver picks the filter nearest 0.4 x ODR

# --- Streaming -------------------------------------------------------------
# Frame layout and sizes are the protocol's (protocol.py, docs/protocol.md 4).
# Preallocated ring of recent frames, kept for RESEND. Each slot holds one
# frame (up to 16 + 19 x 12 = 244 bytes). With frames filled as FRAME_MAX_AGE_MS
# allows (8 samples at 200 Hz, 16 at 400 Hz, 19 at 1 kHz), 300 slots = 73 KB hold
# 12 s at 200 and 400 Hz and 5.7 s at 1 kHz. That fits the ~110 KB heap of a classic
# ESP32 with BLE active (allocated in 16-frame blocks, ring.py: no single 73 KB block is
# needed); on a board with PSRAM raise it to 560 for 10 s at 1 kHz.
RING_FRAMES = const(300)
# How often the FIFO is drained (ms). The smallest FIFO (MPU-6050, 1024 B)
# holds 85 samples: 85 ms at 1 kHz, so 10 ms leaves ample margin.
POLL_INTERVAL_MS = const(10)
# A partly filled frame waits for more samples only while its oldest sample is younger than
# this: frames fill the MTU at 400 Hz and above (16-19 samples), hold 8 at 200 Hz, and no
# sample waits longer than this before it is sent (the latency the collector sees).
FRAME_MAX_AGE_MS = const(40)
# Notifications sent per poll at most; the rest wait in the ring.
MAX_NOTIFY_PER_POLL = const(4)
# After gatts_notify raises ENOMEM the sender waits this long before retrying.
NOTIFY_BACKOFF_MS = const(20)

# --- BLE -------------------------------------------------------------------
NAME_PREFIX = "TL-"  # advertised name: prefix + last 4 hex digits of the MAC
ADV_INTERVAL_US = const(100_000)
PREFERRED_MTU = const(247)
# Peripheral's preferred connection interval, advertised (AD type 0x12), in units of
# 1.25 ms. MicroPython gives a peripheral no call to request it after connecting: the
# central's choice stands (BlueZ 30-50 ms, macOS 15 ms, Windows 7.5-15 ms), and the stream
# fits all of them (bench/bench_radio.py).
CONN_INTERVAL_MIN_UNITS = const(6)  # 7.5 ms
CONN_INTERVAL_MAX_UNITS = const(12)  # 15 ms
STATUS_NOTIFY_INTERVAL_MS = const(1000)

# --- USB serial ------------------------------------------------------------
# USB serial is the wired alternative; see docs/protocol.md (serial framing).
SERIAL_RX_LINE_MAX = const(600)

# --- Power, LED, haptics ---------------------------------------------------
# Battery: ADC reading -> mV at the pin -> x divider ratio.
BATTERY_DIVIDER_NUM = const(2)  # (R1 + R2) / R2 with R1 = R2 = 100 kohm
BATTERY_DIVIDER_DEN = const(1)
BATTERY_LOW_MV = const(3400)
BATTERY_FULL_MV = const(4150)
BATTERY_EMPTY_MV = const(3300)
HAPTIC_PWM_FREQ_HZ = const(200)
# Watchdog: the board resets if the main loop stalls this long.
WATCHDOG_TIMEOUT_MS = const(8000)
# After an unhandled exception the board waits this long, then resets.
CRASH_RESET_DELAY_MS = const(5000)
# How long the LED stays lit at start for a press of the safe-mode button.
SAFE_MODE_WINDOW_MS = const(2000)

# --- Security ----------------------------------------------------------------
# When True the control characteristic is registered write-encrypted: the BLE
# stack refuses writes from a central that has not paired (docs/protocol.md, 9).
# Status, info and advertising stay readable by anyone.
REQUIRE_ENCRYPTED_CONTROL = True
# Pairing: LE Secure Connections, bonding, "Just Works" (the wearable has no
# display or keyboard: io capability 3 = NoInputNoOutput in MicroPython's list).
BLE_IO_CAPABILITY = const(3)
# Bond keys are kept on the board's flash in this file (loaded at start, written
# after a pairing), so a paired laptop re-encrypts after the wearable reboots.
BOND_FILE = "/bonds.bin"
# Laptops or phones remembered at most; pairing one more forgets the oldest.
BOND_MAX_PEERS = const(4)
# A new host may pair only this long after power-on or after a press of the BOOT button
# (once the board has started); afterwards only hosts bonded before get in (docs/protocol.md).
PAIRING_WINDOW_MS = const(60_000)
