"""What the FIFO-based IMU drivers share: bus helpers, the read loop, filter choice, 400 Hz.

Each chip driver subclasses FifoImu and supplies the chip-specific parts (how to read the FIFO
level and detect an overflow, how a FIFO packet looks, how to reset the FIFO). The read loop
here is the firmware's hot path: it allocates nothing (every buffer and every memoryview slice
is made in __init__; `for i in range(...)` compiles to a plain counter loop in MicroPython).

400 Hz: neither chip can sample at exactly 400 Hz with its filter on (the MPU-6050 divides a
1 kHz clock by 1 + SMPLRT_DIV, the ICM-42688-P has no 400 Hz ODR), so at 400 Hz the chip runs
at 1 kHz and the driver resamples 5:2 with linear interpolation: from every five chip samples
s0..s4 (t = 0..4 ms) it emits s0 (t = 0 ms) and (s2 + s3) // 2 (t = 2.5 ms). The output is
exactly uniform, needs only integer arithmetic, and the chip's low-pass (set below 200 Hz)
keeps the interpolation error small (gain cos(pi f / 1 kHz): 0.9995 at 10 Hz).
"""

import time

from micropython import const


def _time_sleep_ms(ms):
    # MicroPython has time.sleep_ms; CPython (the tests and the twin) only time.sleep.
    sleep_ms = getattr(time, "sleep_ms", None)
    if sleep_ms is not None:
        sleep_ms(ms)
    else:
        time.sleep(ms / 1000)


# imu_kind as in docs/protocol.md (INFO message).
IMU_NONE = const(0)
IMU_MPU6050 = const(1)
IMU_MPU6500 = const(2)
IMU_ICM42688P = const(3)

SAMPLE_BYTES = const(12)  # wire layout: ax ay az gx gy gz, int16 little-endian
# FIFO packets read per I2C transaction at most. 16 keeps a burst at 192-256 bytes (well inside
# the ESP32 I2C driver's limits) while a 10 ms poll at 1 kHz needs only one burst.
BURST_SAMPLES = const(16)

# What _check_packet says about a FIFO packet.
PACKET_OK = const(0)
PACKET_INVALID = const(1)  # the chip marked the data invalid: skip it, count it
PACKET_EMPTY = const(2)  # the FIFO ran dry (or read past its end): stop
PACKET_DESYNC = const(3)  # not a packet of the configured format: the stream is misaligned

# Chip output rate used for the 5:2 resampled 400 Hz stream.
_RESAMPLED_ODR_HZ = const(400)
_RESAMPLED_CHIP_ODR_HZ = const(1000)


def pick_filter(options, output_odr_hz, dlpf_hz):
    """Choose a low-pass from options ((bandwidth_hz, code), ...) for a stream at output_odr_hz.

    dlpf_hz 0 asks for the bandwidth nearest 0.4 x ODR; otherwise the one nearest dlpf_hz.
    Only filters at or below the output Nyquist frequency are candidates; ties go to the lower
    bandwidth. Returns (bandwidth_hz, code); ValueError if dlpf_hz is out of range.
    """
    nyquist_hz = output_odr_hz // 2
    if dlpf_hz < 0 or dlpf_hz > nyquist_hz:
        raise ValueError(f"dlpf_hz must be 0 (auto) or 1..{nyquist_hz} at {output_odr_hz} Hz")
    target_hz = dlpf_hz if dlpf_hz else output_odr_hz * 2 // 5
    best = None
    for bandwidth_hz, code in options:
        if bandwidth_hz > nyquist_hz:
            continue
        if best is None:
            best = (bandwidth_hz, code)
            continue
        err = abs(bandwidth_hz - target_hz)
        best_err = abs(best[0] - target_hz)
        if err < best_err or (err == best_err and bandwidth_hz < best[0]):
            best = (bandwidth_hz, code)
    if best is None:
        raise ValueError(f"no low-pass filter below {nyquist_hz} Hz")
    return best


class FifoImu:
    """Base of the IMU drivers (see drivers/mpu6050.py and drivers/icm42688.py)."""

    KIND = IMU_NONE
    NAME = ""
    ODRS_HZ = (50, 100, 200, 400, 500, 1000)
    ACCEL_RANGES_G = (2, 4, 8, 16)
    GYRO_RANGES_DPS = (250, 500, 1000, 2000)
    # LSB per deg/s x 10 at each gyro range (datasheets: 131, 65.5, 32.8, 16.4 LSB/(deg/s)).
    _GYRO_LSB_PER_DPS_X10 = {250: 1310, 500: 655, 1000: 328, 2000: 164}

    # Set by subclasses.
    _PACKET_BYTES = SAMPLE_BYTES  # bytes of one FIFO packet
    _DATA_OFFSET = 0  # where ax starts inside a packet
    _BIG_ENDIAN = True  # byte order of the samples in the FIFO
    _FIFO_DATA_REG = 0

    def __init__(self, i2c, address=0x68, *, sleep_ms=None):
        # No bus traffic here: the chip is first touched by init().
        self._i2c = i2c
        self.address = address
        self._sleep_ms = sleep_ms if sleep_ms is not None else _time_sleep_ms
        self._reg = bytearray(1)
        self._burst = bytearray(BURST_SAMPLES * self._PACKET_BYTES)
        burst = memoryview(self._burst)
        # Slicing a memoryview allocates in MicroPython, so every burst size is sliced now.
        self._bursts = [burst[: n * self._PACKET_BYTES] for n in range(BURST_SAMPLES + 1)]
        self._hold = [0, 0, 0, 0, 0, 0]  # s2 of the current 5:2 block (small ints: no allocation)
        self._hold_ok = False
        self._phase = 0  # position in the 5:2 block
        self._resample = False
        self._resync = False
        self._config = None
        self._fifo_capacity = 1024  # bytes; set by the chip driver
        self.fifo_overflows = 0
        self.invalid_samples = 0
        self.odr_hz = 0
        self.accel_range_g = 0
        self.gyro_range_dps = 0
        self.dlpf_hz = 0
        self.accel_lsb_per_g = 0
        self.gyro_lsb_per_dps_x10 = 0

    # --- bus helpers ------------------------------------------------------------------
    def _write(self, reg, value):
        self._reg[0] = value
        self._i2c.writeto_mem(self.address, reg, self._reg)

    def _read(self, reg):
        self._i2c.readfrom_mem_into(self.address, reg, self._reg)
        return self._reg[0]

    # --- configuration ----------------------------------------------------------------
    def configure(self, odr_hz, accel_range_g, gyro_range_dps, dlpf_hz=0):
        """Set output rate, ranges and low-pass; ValueError (and no bus traffic) if unsupported."""
        if odr_hz not in self.ODRS_HZ:
            raise ValueError(f"odr_hz {odr_hz!r} not in {self.ODRS_HZ}")
        if accel_range_g not in self.ACCEL_RANGES_G:
            raise ValueError(f"accel_range_g {accel_range_g!r} not in {self.ACCEL_RANGES_G}")
        if gyro_range_dps not in self.GYRO_RANGES_DPS:
            raise ValueError(f"gyro_range_dps {gyro_range_dps!r} not in {self.GYRO_RANGES_DPS}")
        resample = odr_hz == _RESAMPLED_ODR_HZ
        chip_odr_hz = _RESAMPLED_CHIP_ODR_HZ if resample else odr_hz
        bandwidth_hz, filter_code = pick_filter(self._filter_options(chip_odr_hz), odr_hz, dlpf_hz)
        self._apply_config(chip_odr_hz, accel_range_g, gyro_range_dps, filter_code)
        self._resample = resample
        self._phase = 0
        self.odr_hz = odr_hz
        self.accel_range_g = accel_range_g
        self.gyro_range_dps = gyro_range_dps
        self.dlpf_hz = bandwidth_hz
        self.accel_lsb_per_g = 32768 // accel_range_g
        self.gyro_lsb_per_dps_x10 = self._GYRO_LSB_PER_DPS_X10[gyro_range_dps]
        self._config = (odr_hz, accel_range_g, gyro_range_dps, dlpf_hz)

    def _reapply_config(self):
        # After a reset (init() from the caller's recovery path) restore the last configuration.
        if self._config is not None:
            self.configure(*self._config)

    # --- FIFO -------------------------------------------------------------------------
    def read_fifo(self, out, max_samples, first=0):
        """Move up to max_samples samples from the FIFO into out (12 bytes each, see module doc),
        the first of them at sample position `first` of out (so a partly filled frame can be
        continued without slicing, which would allocate).

        Returns the number written, or -1 after an overflow (the FIFO has been reset and
        fifo_overflows counted). Allocates nothing; I2C errors propagate as OSError.
        """
        if self._resync:
            self._resync = False
            level = -1
        else:
            level = self._fifo_level()
        if level < 0:
            return self._overflowed()
        # A FIFO more than half full could overflow while it is being read, which would shift
        # the data under the reader: then the overflow flag is checked again afterwards.
        recheck = level > self._fifo_capacity >> 1
        packet_bytes = self._PACKET_BYTES
        raw = level // packet_bytes
        if self._resample:
            raw = self._raw_for_outputs(raw, max_samples)
        elif raw > max_samples:
            raw = max_samples
        written = first
        burst = self._burst
        while raw > 0:
            n = raw if raw < BURST_SAMPLES else BURST_SAMPLES
            self._i2c.readfrom_mem_into(self.address, self._FIFO_DATA_REG, self._bursts[n])
            raw -= n
            off = 0
            end = n * packet_bytes
            while off < end:
                state = self._check_packet(burst, off)
                if state == PACKET_EMPTY:
                    return written - first
                if state == PACKET_DESYNC:
                    # Keep what was read; the next call resets the FIFO and reports the gap.
                    self._resync = True
                    return written - first
                if self._resample:
                    written = self._resample_packet(off, state, out, written)
                elif state == PACKET_OK:
                    self._copy_sample(off, out, written)
                    written += 1
                else:
                    self.invalid_samples += 1
                off += packet_bytes
        if recheck and self._overflow_flag():
            return self._overflowed()
        return written - first

    def _overflowed(self):
        self._fifo_reset()
        # Samples dropped between reading the status and the flush leave the flag set again:
        # clear it now, or the next read would report this same overflow a second time.
        self._overflow_flag()
        self._phase = 0
        self.fifo_overflows += 1
        return -1

    def _raw_for_outputs(self, raw_available, max_outputs):
        # How many chip samples can be consumed without emitting more than max_outputs.
        phase = self._phase
        n = 0
        outputs = 0
        while n < raw_available:
            if phase == 0 or phase == 3:
                if outputs == max_outputs:
                    break
                outputs += 1
            n += 1
            phase = phase + 1 if phase < 4 else 0
        return n

    def _copy_sample(self, off, out, index):
        # Unrolled: this runs for every sample, and a loop costs MicroPython about twice as much.
        s = self._burst
        i = off + self._DATA_OFFSET
        o = index * SAMPLE_BYTES
        if self._BIG_ENDIAN:  # swap each pair
            out[o] = s[i + 1]
            out[o + 1] = s[i]
            out[o + 2] = s[i + 3]
            out[o + 3] = s[i + 2]
            out[o + 4] = s[i + 5]
            out[o + 5] = s[i + 4]
            out[o + 6] = s[i + 7]
            out[o + 7] = s[i + 6]
            out[o + 8] = s[i + 9]
            out[o + 9] = s[i + 8]
            out[o + 10] = s[i + 11]
            out[o + 11] = s[i + 10]
        else:
            out[o] = s[i]
            out[o + 1] = s[i + 1]
            out[o + 2] = s[i + 2]
            out[o + 3] = s[i + 3]
            out[o + 4] = s[i + 4]
            out[o + 5] = s[i + 5]
            out[o + 6] = s[i + 6]
            out[o + 7] = s[i + 7]
            out[o + 8] = s[i + 8]
            out[o + 9] = s[i + 9]
            out[o + 10] = s[i + 10]
            out[o + 11] = s[i + 11]

    def _value(self, i):
        # int16 at byte i of the burst buffer, in the FIFO's byte order.
        src = self._burst
        if self._BIG_ENDIAN:
            v = (src[i] << 8) | src[i + 1]
        else:
            v = src[i] | (src[i + 1] << 8)
        return v - 65536 if v & 0x8000 else v

    def _resample_packet(self, off, state, out, written):
        phase = self._phase
        self._phase = phase + 1 if phase < 4 else 0
        ok = state == PACKET_OK
        if phase == 0:
            if ok:
                self._copy_sample(off, out, written)
                return written + 1
            self.invalid_samples += 1
        elif phase == 2:
            self._hold_ok = ok
            if ok:
                i = off + self._DATA_OFFSET
                hold = self._hold
                for axis in range(6):
                    hold[axis] = self._value(i + 2 * axis)
        elif phase == 3:
            if ok and self._hold_ok:
                i = off + self._DATA_OFFSET
                o = written * SAMPLE_BYTES
                hold = self._hold
                for axis in range(6):
                    v = (hold[axis] + self._value(i + 2 * axis)) >> 1
                    out[o + 2 * axis] = v & 0xFF
                    out[o + 2 * axis + 1] = (v >> 8) & 0xFF
                return written + 1
            self.invalid_samples += 1
        return written

    # --- chip-specific (subclasses) --------------------------------------------------------
    def _filter_options(self, chip_odr_hz):
        raise NotImplementedError

    def _apply_config(self, chip_odr_hz, accel_range_g, gyro_range_dps, filter_code):
        raise NotImplementedError

    def _fifo_level(self):
        raise NotImplementedError

    def _fifo_reset(self):
        raise NotImplementedError

    def _overflow_flag(self):
        # Reads (and so clears) the chip's overflow / FIFO-full status flag.
        raise NotImplementedError

    def _check_packet(self, buf, off):
        return PACKET_OK
