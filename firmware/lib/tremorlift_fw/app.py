"""The wearable's application: IMU -> frames -> BLE or USB serial, commands, status.

App ties the parts together. pump() is the hot path (FIFO -> ring -> notifications) and
allocates nothing in steady state; service() handles BLE events, commands and timers;
indicators() drives the LED and the haptic motor. run() calls them from asyncio tasks.
main() builds the real machine/bluetooth objects from config.py (called by /main.py).
"""

from micropython import const

from . import config, control, drivers, protocol
from .board import LED_ADVERTISING, LED_CONNECTED, LED_NO_IMU, LED_STREAMING
from .ring import FRAME_BYTES, Ring
from .sampler import Sampler

try:
    import asyncio
except ImportError:
    import uasyncio as asyncio

BOARD_UNKNOWN = const(0)
BOARD_ESP32 = const(1)
BOARD_ESP32S3 = const(2)
BOARD_ESP32C3 = const(3)
BOARD_EMULATED = const(255)
_BOARD_KINDS = {"esp32": BOARD_ESP32, "esp32s3": BOARD_ESP32S3, "esp32c3": BOARD_ESP32C3}

# How often a missing IMU is looked for again.
IMU_DETECT_RETRY_MS = const(3000)
# gap_advertise refused (OSError): tried again after this, doubling up to the maximum.
ADVERTISE_RETRY_MIN_MS = const(100)
ADVERTISE_RETRY_MAX_MS = const(5000)
# REBOOT answers first, then resets this much later (docs/protocol.md, 6).
REBOOT_DELAY_MS = const(100)
_INDICATOR_INTERVAL_MS = const(20)
_INFO_BUF_BYTES = const(64)
# The smallest ATT MTU a one-sample frame fits: 3 (ATT header) + 16 + 12.
_MIN_STREAM_MTU = const(31)
# The haptic pulse that opens the safe-mode window: 60 % for 80 ms.
_SAFE_MODE_PULSE_DUTY = const(39321)
_SAFE_MODE_PULSE_MS = const(80)

# The board's watchdog once started (start_watchdog): it cannot be stopped, so /main.py asks
# watchdog_running() when Ctrl-C arrives.
_watchdog = None


def start_watchdog(timeout_ms=config.WATCHDOG_TIMEOUT_MS):
    """Start the board's watchdog (once) and return it."""
    global _watchdog
    if _watchdog is None:
        import machine

        _watchdog = machine.WDT(timeout=timeout_ms)
    return _watchdog


def watchdog_running():
    return _watchdog is not None


def _random_boot_id():
    try:
        import os

        b = os.urandom(2)
        return b[0] | (b[1] << 8)
    except (ImportError, AttributeError, NotImplementedError):
        import random

        return random.getrandbits(16)


class App:
    def __init__(
        self,
        *,
        i2c,
        ble,
        clock,
        led,
        haptic,
        battery,
        serial=None,
        board_kind=BOARD_UNKNOWN,
        safe_mode=False,
        name=None,
        machine_reset=None,
        wdt=None,
        boot_id=None,
        ring_frames=config.RING_FRAMES,
        imu_sleep_ms=None,
        bond_store=None,
        serial_link_bytes_per_s=None,
        pair_button=None,
    ):
        self.i2c = i2c
        self.clock = clock
        self.led = led
        self.haptic = haptic
        self.battery = battery
        self.board_kind = board_kind
        self.safe_mode = safe_mode
        self.machine_reset = machine_reset
        self.wdt = wdt
        self.boot_id = _random_boot_id() if boot_id is None else boot_id & 0xFFFF
        self._imu_sleep_ms = imu_sleep_ms
        self.ring = Ring(ring_frames)
        self.sampler = Sampler(self.ring, clock)
        self.imu = None
        self.streaming = False
        self.transport = control.TRANSPORT_BLE if ble is not None else control.TRANSPORT_SERIAL
        # Wanted settings, applied to any IMU found later.
        self.odr_hz = config.ODR_HZ
        self.accel_range_g = config.ACCEL_RANGE_G
        self.gyro_range_dps = config.GYRO_RANGE_DPS
        self.dlpf_hz = config.DLPF_HZ
        # Counters reported in STATUS.
        self.notify_backoffs = 0
        self.i2c_errors = 0
        self.imu_reinits = 0
        self.imu_fault = False
        self.battery_mv = 0
        # Uptime as whole seconds plus the milliseconds after them: one count of milliseconds
        # would pass 2^30 (a small int's limit on the board) after 12.4 days and then allocate
        # a long integer at every loop.
        self.uptime_s = 0
        self._uptime_ms_part = 0
        # Transports.
        self.ble = None
        if ble is not None:
            from .ble import BleLink

            self.ble = BleLink(ble, config.REQUIRE_ENCRYPTED_CONTROL, bond_store)
        self.serial = None
        # What the USB serial link carries (bytes/s), when the board knows it (a UART bridge):
        # a stream that needs more is refused instead of blocking the loop.
        self.serial_link_bytes_per_s = serial_link_bytes_per_s
        if serial is not None:
            from .serial_link import SerialLink

            self.serial = SerialLink(serial, config.SERIAL_RX_LINE_MAX)
        if name is None:
            name = self.ble.name if self.ble is not None else config.NAME_PREFIX + "0000"
        self.name = name
        self._name_bytes = name.encode()
        # Send path: each frame is copied here (so RESENT can be set without touching the
        # stored frame) and sent through the view of its exact length.
        self._tx = bytearray(FRAME_BYTES)
        tx = memoryview(self._tx)
        self._tx_views = [
            tx[: protocol.HEADER_BYTES + protocol.SAMPLE_BYTES * k] for k in range(20)
        ]
        self._backoff_until_ms = 0
        self._backoff = False
        self._resend_next = 0
        self._resend_end = 0
        # Responses and status messages.
        self._resp = bytearray(control.RESPONSE_BUFFER_BYTES)
        self._resp_mv = memoryview(self._resp)
        self._resp_len = 0  # > 0: a BLE response still waiting for buffers in the stack
        self._status = bytearray(protocol.STATUS_BYTES)
        self._status_view = memoryview(self._status)
        self._info = bytearray(_INFO_BUF_BYTES)
        self._status_now = False
        now_ms = clock.ticks_ms()
        self._last_ms = now_ms
        self._next_status_ms = now_ms
        self._next_detect_ms = now_ms
        self._reboot_at_ms = None
        self._adv_key = -1
        self._adv_retry_at_ms = None  # set while advertising failed: when to try again
        self._adv_backoff_ms = ADVERTISE_RETRY_MIN_MS
        # Pairing window: open from power-on, and again after a press of pair_button (a pin,
        # pulled up, low when pressed), for config.PAIRING_WINDOW_MS each time.
        self.pair_button = pair_button
        self._button_was_up = False
        self._pairing_until_ms = clock.ticks_add(now_ms, config.PAIRING_WINDOW_MS)
        self.pairing_open = True
        self.started = False

    # --- start-up ---------------------------------------------------------------------
    def begin(self):
        """Find the IMU, publish INFO/STATUS, start advertising. Called once by run()."""
        self._detect_imu()
        self._update_spf()
        self._publish_info()
        self._refresh_status()
        if self.ble is not None:
            self._advertise()
        self.started = True

    def _detect_imu(self):
        try:
            if self._imu_sleep_ms is None:
                imu = drivers.detect(self.i2c, config.IMU_ADDRESSES)
            else:
                imu = drivers.detect(self.i2c, config.IMU_ADDRESSES, sleep_ms=self._imu_sleep_ms)
        except OSError:
            imu = None
        if imu is not None:
            try:
                imu.configure(self.odr_hz, self.accel_range_g, self.gyro_range_dps, self.dlpf_hz)
            except (OSError, ValueError):
                imu = None
        self.imu = imu
        self._next_detect_ms = self.clock.ticks_add(self.clock.ticks_ms(), IMU_DETECT_RETRY_MS)
        if imu is not None and self.streaming:
            # Came back after being lost mid-stream: carry on, with the gap marked.
            try:
                self.sampler.resume_after_reinit(imu)
            except OSError:
                self.imu = None
        return self.imu is not None

    # --- hot path ---------------------------------------------------------------------
    def pump(self):
        """One step: drain the FIFO into frames, then send what is due. Allocates nothing."""
        if self.streaming and self.imu is not None:
            self._poll_imu()
        self._send_frames()

    def _poll_imu(self):
        tries = 0
        while True:
            try:
                self.sampler.poll()
                return
            except OSError:
                self.i2c_errors += 1
                tries += 1
                if tries > config.I2C_RETRIES:
                    break
        self._reinit_imu()

    def _reinit_imu(self):
        # The bus kept failing: reset and reconfigure the IMU; its FIFO content is lost.
        self.imu_reinits += 1
        self.imu_fault = True
        imu = self.imu
        if imu is None:
            return
        try:
            imu.init()
            imu.configure(self.odr_hz, self.accel_range_g, self.gyro_range_dps, self.dlpf_hz)
            self.sampler.resume_after_reinit(imu)
        except (OSError, ValueError):
            # Gone: treated like a missing IMU, looked for again every few seconds.
            self.imu = None
            self._next_detect_ms = self.clock.ticks_ms()

    def _send_frames(self):
        clock = self.clock
        if self._backoff:
            if clock.ticks_diff(self._backoff_until_ms, clock.ticks_ms()) > 0:
                return
            self._backoff = False
        ring = self.ring
        budget = config.MAX_NOTIFY_PER_POLL
        while budget > 0:
            if ring.send_seq < ring.next_seq:
                r = self._transmit(ring.send_seq, 0)
                if r <= 0:
                    break
                ring.send_seq += 1
            elif self._resend_next < self._resend_end:
                seq = self._resend_next
                if seq >= ring.oldest_seq:
                    r = self._transmit(seq, protocol.FLAG_RESENT)
                    if r <= 0:
                        break
                self._resend_next = seq + 1
            else:
                break
            budget -= 1

    def _transmit(self, seq, extra_flags):
        # Copies frame seq into the send buffer and sends it: 1 sent, <= 0 not sent.
        ring = self.ring
        slot = seq % ring.n_frames
        n = ring.counts[slot]
        tx = self._tx
        self._tx_views[19][:] = ring.frames[slot]
        if extra_flags:
            tx[2] |= extra_flags
        if self.transport == control.TRANSPORT_SERIAL:
            if self.serial is None:
                return 0
            self.serial.send(tx, protocol.HEADER_BYTES + protocol.SAMPLE_BYTES * n)
            return 1
        if self.ble is None:
            return 0
        r = self.ble.notify_data(self._tx_views[n])
        if r < 0:
            # The stack is out of buffers (or the link is going): the frame stays queued.
            if r == -1:
                self.notify_backoffs += 1
            self._backoff = True
            self._backoff_until_ms = self.clock.ticks_add(
                self.clock.ticks_ms(), config.NOTIFY_BACKOFF_MS
            )
        return r

    # --- events, commands, timers -----------------------------------------------------
    def service(self):
        """BLE events, control writes, serial commands, status and detection timers, reboot."""
        clock = self.clock
        now_ms = clock.ticks_ms()
        part = self._uptime_ms_part + clock.ticks_diff(now_ms, self._last_ms)
        self._last_ms = now_ms
        if part >= 1000:
            self.uptime_s += part // 1000
            part %= 1000
        self._uptime_ms_part = part
        if self.wdt is not None:
            self.wdt.feed()
        self._update_pairing_window(now_ms)
        ble = self.ble
        if ble is not None:
            ble.pairing_open = self.pairing_open
            if ble.take_connection_change():
                if not ble.connected:
                    # Resends were for the host that left; it asks again after reconnecting.
                    self._resend_next = self._resend_end = 0
                    self._resp_len = 0
                    # Frames keep their size until the next host's MTU exchange: the ring
                    # fills as it did, and a host that reconnects gets the backlog whole.
                    self._advertise()
                self._publish_info()
            if ble.take_mtu_change():
                self._update_spf()
                self._publish_info()
            if ble.take_security_change():
                self._status_now = True  # STATUS shows ENCRYPTED as soon as the link has it
                if ble.refused:
                    ble.disconnect()  # paired outside the pairing window
            bonds = ble.bonds
            if bonds is not None and bonds.dirty:
                bonds.save()  # new bond keys reach flash here, outside the stack's callback
            if self._resp_len and not self._send_ble_response():
                pass  # still backed off: commands wait so every one gets its answer in order
            else:
                while True:
                    n = ble.next_command()
                    if n < 0:
                        break
                    if ble.refused:
                        cmd = ble.command
                        self._resp_len = protocol.pack_response(
                            self._resp,
                            cmd[0] if n > 0 else 0,
                            cmd[1] if n > 1 else 0,
                            protocol.RES_NOT_AUTHORISED,
                        )
                    else:
                        self._resp_len = control.handle(self, ble.command, n, self._resp)
                    if not self._send_ble_response():
                        break
        if self.serial is not None:
            self.serial.poll_commands(self._serial_command)
        if (
            self._adv_retry_at_ms is not None
            and clock.ticks_diff(now_ms, self._adv_retry_at_ms) >= 0
        ):
            self._advertise()
        if self.imu is None and clock.ticks_diff(now_ms, self._next_detect_ms) >= 0:
            if self._detect_imu():
                self._update_spf()
                self._publish_info()
        if self._status_now or clock.ticks_diff(now_ms, self._next_status_ms) >= 0:
            self._status_now = False
            self._next_status_ms = clock.ticks_add(now_ms, config.STATUS_NOTIFY_INTERVAL_MS)
            self._send_status()
        if self._reboot_at_ms is not None and clock.ticks_diff(now_ms, self._reboot_at_ms) >= 0:
            self._reboot_at_ms = None
            if self.machine_reset is not None:
                self.machine_reset()

    def _update_pairing_window(self, now_ms):
        button = self.pair_button
        if button is not None:
            up = button.value()
            if not up and self._button_was_up:  # pressed (a press held from start is not one)
                self._pairing_until_ms = self.clock.ticks_add(now_ms, config.PAIRING_WINDOW_MS)
                self.pairing_open = True
            self._button_was_up = up
        # Closed once, it stays closed until the next press (ticks_diff wraps after 6.2 days).
        if self.pairing_open and self.clock.ticks_diff(now_ms, self._pairing_until_ms) >= 0:
            self.pairing_open = False

    def _send_ble_response(self):
        ble = self.ble
        if ble is None:
            self._resp_len = 0
            return True
        r = ble.notify_control(self._resp_mv[: self._resp_len])
        if r == -1:
            self.notify_backoffs += 1
            return False
        self._resp_len = 0  # sent, or no link to send it on
        return True

    def _serial_command(self, cmd, n):
        if n < 0:
            k = protocol.pack_response(self._resp, 0, 0, protocol.RES_BAD_LENGTH)
        else:
            k = control.handle(self, cmd, n, self._resp)
        if self.serial is not None:
            self.serial.send(self._resp, k)

    def indicators(self):
        """LED mode and patterns, haptic patterns."""
        clock = self.clock
        now_ms = clock.ticks_ms()
        if self.imu is None:
            mode = LED_NO_IMU
        elif self.streaming:
            mode = LED_STREAMING
        elif self.ble is not None and self.ble.connected:
            mode = LED_CONNECTED
        else:
            mode = LED_ADVERTISING
        if self.led is not None:
            self.led.set_mode(mode, now_ms)
            self.led.update(now_ms, clock)
        if self.haptic is not None:
            self.haptic.update(now_ms, clock)

    # --- status and info ----------------------------------------------------------------
    def status_flags(self):
        flags = 0
        if self.streaming:
            flags |= protocol.ST_STREAMING
        if self.imu is None:
            flags |= protocol.ST_IMU_MISSING
        if self.imu_fault:
            flags |= protocol.ST_IMU_FAULT
        if 0 < self.battery_mv < config.BATTERY_LOW_MV:
            flags |= protocol.ST_LOW_BATTERY
        if self.safe_mode:
            flags |= protocol.ST_SAFE_MODE
        if self.transport == control.TRANSPORT_SERIAL:
            flags |= protocol.ST_SERIAL_TRANSPORT
        if self.sampler.fifo_overflows:
            flags |= protocol.ST_FIFO_OVERFLOW
        if self.ble is not None and self.ble.encrypted:
            flags |= protocol.ST_ENCRYPTED
        return flags

    def pack_status(self, buf, offset):
        return protocol.pack_status(
            buf,
            offset,
            self.status_flags(),
            self.battery_mv,
            self.uptime_s,
            self.sampler.fifo_overflows,
            self.ring.frames_dropped,
            self.notify_backoffs,
            self.i2c_errors,
            self.imu_reinits,
            self.ring.next_seq,
            self.sampler.next_sample_index,
            config.FW_VERSION,
            self.boot_id,
        )

    def pack_info(self, buf, offset):
        imu = self.imu
        if imu is None:
            kind = drivers.IMU_NONE
            odr = accel = gyro = dlpf = lsb_g = lsb_dps = 0
        else:
            kind = imu.KIND
            odr = imu.odr_hz
            accel = imu.accel_range_g
            gyro = imu.gyro_range_dps
            dlpf = imu.dlpf_hz
            lsb_g = imu.accel_lsb_per_g
            lsb_dps = imu.gyro_lsb_per_dps_x10
        return protocol.pack_info(
            buf,
            offset,
            config.FW_VERSION,
            kind,
            self.board_kind,
            odr,
            accel,
            gyro,
            dlpf,
            lsb_g,
            lsb_dps,
            self.sampler.samples_per_frame,
            self.ring.n_frames,
            self.boot_id,
            self.ble.att_mtu if self.ble is not None else 23,
            self._name_bytes,
        )

    def _refresh_status(self):
        if self.battery is not None:
            self.battery_mv = self.battery.read_mv()
        return self.pack_status(self._status, 0)

    def _send_status(self):
        n = self._refresh_status()
        view = self._status_view
        if self.ble is not None:
            self.ble.set_status(view)
            if self.ble.connected:
                self.ble.notify_status(view)
            else:
                self._advertise()
        if self.serial is not None and self.transport == control.TRANSPORT_SERIAL:
            self.serial.send(self._status, n)

    def _publish_info(self):
        if self.ble is not None:
            n = self.pack_info(self._info, 0)
            self.ble.set_info(memoryview(self._info)[:n])

    def _advertise(self):
        # Re-advertises only when what the scan response shows has changed.
        ble = self.ble
        if ble is None or ble.connected:
            self._adv_retry_at_ms = None
            return
        pct = self.battery.percent(self.battery_mv) if self.battery is not None else 255
        flags = self.status_flags() & 0xFF
        key = (pct << 8) | flags
        if ble.advertising and key == self._adv_key:
            return
        if ble.advertise(protocol.VERSION, pct, flags):
            self._adv_key = key
            self._adv_retry_at_ms = None
            self._adv_backoff_ms = ADVERTISE_RETRY_MIN_MS
            return
        # Refused (the stack busy, or still closing the last link): try again later.
        self._adv_key = -1
        self._adv_retry_at_ms = self.clock.ticks_add(self.clock.ticks_ms(), self._adv_backoff_ms)
        self._adv_backoff_ms = min(self._adv_backoff_ms * 2, ADVERTISE_RETRY_MAX_MS)

    def _update_spf(self):
        if self.transport == control.TRANSPORT_SERIAL or self.ble is None:
            spf = protocol.MAX_SAMPLES
        else:
            spf = protocol.samples_per_frame_for_mtu(self.ble.att_mtu)
        self.sampler.samples_per_frame = spf

    # --- command actions (control.handle calls these) -----------------------------------
    def cmd_start(self):
        if self.imu is None:
            return protocol.RES_HARDWARE_ERROR
        ble = self.ble
        if (
            self.transport == control.TRANSPORT_BLE
            and ble is not None
            and ble.connected
            and ble.att_mtu < _MIN_STREAM_MTU
        ):
            return protocol.RES_BAD_STATE  # not even one sample fits a notification yet
        if self.streaming:
            return protocol.RES_OK  # already streaming: the stream simply goes on
        for _ in range(config.I2C_RETRIES + 1):
            try:
                self.sampler.start(self.imu)
                self.streaming = True
                return protocol.RES_OK
            except OSError:
                self.i2c_errors += 1
        return protocol.RES_HARDWARE_ERROR

    def cmd_stop(self):
        if self.streaming:
            self.streaming = False
            try:
                self.sampler.stop()
            except OSError:
                self.i2c_errors += 1
        return protocol.RES_OK

    def cmd_configure(self, odr_hz, accel_range_g, gyro_range_dps, dlpf_hz):
        imu = self.imu
        if imu is None:
            return protocol.RES_HARDWARE_ERROR
        if odr_hz not in imu.ODRS_HZ:
            return protocol.RES_OUT_OF_RANGE
        if self.transport == control.TRANSPORT_SERIAL and not self._serial_fits(odr_hz):
            return protocol.RES_OUT_OF_RANGE  # more than the UART carries
        for _ in range(config.I2C_RETRIES + 1):
            try:
                imu.configure(odr_hz, accel_range_g, gyro_range_dps, dlpf_hz)
            except ValueError:
                return protocol.RES_OUT_OF_RANGE
            except OSError:
                self.i2c_errors += 1
                continue
            self.odr_hz = odr_hz
            self.accel_range_g = accel_range_g
            self.gyro_range_dps = gyro_range_dps
            self.dlpf_hz = dlpf_hz
            self._publish_info()
            return protocol.RES_OK
        return protocol.RES_HARDWARE_ERROR

    def cmd_buzz(self, pattern, intensity_pct):
        if self.haptic is None:
            return protocol.RES_HARDWARE_ERROR
        self.haptic.play(protocol.BUZZ_PATTERNS_MS[pattern], intensity_pct, self.clock.ticks_ms())
        return protocol.RES_OK

    def cmd_identify(self, seconds):
        if self.led is None:
            return protocol.RES_HARDWARE_ERROR
        self.led.identify(seconds, self.clock.ticks_ms(), self.clock)
        return protocol.RES_OK

    def cmd_status_now(self):
        self._status_now = True

    def cmd_set_transport(self, transport):
        if transport == control.TRANSPORT_BLE and self.ble is not None:
            pass
        elif transport == control.TRANSPORT_SERIAL and self.serial is not None:
            if not self._serial_fits(self.odr_hz):
                return protocol.RES_OUT_OF_RANGE  # the rate is more than the UART carries
        else:
            return protocol.RES_OUT_OF_RANGE
        self.transport = transport
        self._update_spf()
        self._publish_info()
        return protocol.RES_OK

    def _serial_fits(self, odr_hz):
        from .serial_link import fits_link

        return fits_link(odr_hz, config.FRAME_MAX_AGE_MS, self.serial_link_bytes_per_s)

    def resend_busy(self):
        return self._resend_next < self._resend_end

    def cmd_resend(self, first_seq, count):
        """Queue the part of first_seq..+count still in the ring; returns (first, count) queued."""
        ring = self.ring
        start = first_seq if first_seq > ring.oldest_seq else ring.oldest_seq
        end = first_seq + count
        if end > ring.next_seq:
            end = ring.next_seq
        if end <= start:
            return 0, 0
        self._resend_next = start
        self._resend_end = end
        return start, end - start

    def cmd_reboot(self):
        self._reboot_at_ms = self.clock.ticks_add(self.clock.ticks_ms(), REBOOT_DELAY_MS)

    # --- asyncio ----------------------------------------------------------------------
    async def run(self):
        """Runs forever: the pump loop (every POLL_INTERVAL_MS) and the indicator loop."""
        if not self.started:
            self.begin()
        indicator_task = asyncio.create_task(self._indicator_loop())
        try:
            await self._pump_loop()
        finally:
            indicator_task.cancel()

    async def _pump_loop(self):
        clock = self.clock
        next_ms = clock.ticks_ms()
        while True:
            self.pump()
            self.service()
            next_ms = clock.ticks_add(next_ms, config.POLL_INTERVAL_MS)
            delay_ms = clock.ticks_diff(next_ms, clock.ticks_ms())
            if delay_ms < 0:
                # Fell behind (a GC pause, a slow bus): the FIFO absorbed it; start afresh.
                next_ms = clock.ticks_ms()
                delay_ms = 0
            await clock.sleep_ms(delay_ms)

    async def _indicator_loop(self):
        while True:
            self.indicators()
            await self.clock.sleep_ms(_INDICATOR_INTERVAL_MS)


# --- the board ---------------------------------------------------------------------------
def board_name():
    """The key of config.BOARDS to use (config.BOARD, or picked by chip when "auto")."""
    if config.BOARD != "auto":
        return config.BOARD
    import sys

    machine_name = getattr(sys.implementation, "_machine", "").upper()
    if "ESP32S3" in machine_name or "ESP32-S3" in machine_name:
        return "xiao-esp32s3"
    if "ESP32C3" in machine_name or "ESP32-C3" in machine_name:
        return "xiao-esp32c3"
    return "esp32-devkitc"


def safe_mode_requested(
    pin, clock, window_ms=config.SAFE_MODE_WINDOW_MS, poll_ms=10, sleep_ms=None
):
    """True if the (pulled-up, active-low) safe-mode button is pressed during window_ms.

    The BOOT button is a strapping pin (GPIO0 on ESP32/S3, GPIO9 on C3): held while the chip
    starts, it selects the ROM bootloader, so it is only sampled after boot, while the board
    signals the window. A press counts only after the pin was seen released: a pin that reads
    low from the first sample on (stuck, or shorted) never locks the wearable in safe mode.
    """
    if sleep_ms is None:
        import time

        sleep_ms = getattr(time, "sleep_ms", None) or (lambda ms: time.sleep(ms / 1000))
    start = clock.ticks_ms()
    released = False
    while clock.ticks_diff(clock.ticks_ms(), start) < window_ms:
        if pin.value():
            released = True
        elif released:
            return True
        sleep_ms(poll_ms)
    return False


def check_safe_mode():
    """Opens the safe-mode window (used by /main.py before anything starts): the LED is lit
    and the haptic motor gives one short pulse, and a press of BOOT while the LED is lit
    (config.SAFE_MODE_WINDOW_MS) is a request for safe mode."""
    import machine

    from .clock import BoardClock

    pins = config.BOARDS[board_name()]
    pin_no = pins.get("safe_mode_pin")
    if pin_no is None:
        return False
    pin = machine.Pin(pin_no, machine.Pin.IN, machine.Pin.PULL_UP)
    clock = BoardClock()
    led = None
    if pins.get("led") is not None:
        led = machine.Pin(pins["led"], machine.Pin.OUT)
        led.value(0 if pins.get("led_active_low", False) else 1)
    pwm = None
    if pins.get("haptic") is not None:
        pwm = machine.PWM(
            machine.Pin(pins["haptic"]),
            freq=config.HAPTIC_PWM_FREQ_HZ,
            duty_u16=_SAFE_MODE_PULSE_DUTY,
        )
    try:
        if pwm is not None:
            import time

            time.sleep_ms(_SAFE_MODE_PULSE_MS)
            pwm.duty_u16(0)
        return safe_mode_requested(pin, clock, config.SAFE_MODE_WINDOW_MS)
    finally:
        if pwm is not None:
            pwm.duty_u16(0)
        if led is not None:
            led.value(1 if pins.get("led_active_low", False) else 0)


def haptic_pwm(machine, pin_no):
    """The haptic motor's PWM, off from its first cycle: machine.PWM(pin) alone starts the
    output at the port's default (5 kHz, 50 % duty on ESP32), which pulses the motor."""
    return machine.PWM(machine.Pin(pin_no), freq=config.HAPTIC_PWM_FREQ_HZ, duty_u16=0)


def main():
    """Build the real board objects from config.py and run the application forever."""
    import machine

    from .ble import make_ble
    from .board import Battery, Haptic, Led
    from .bonds import BondStore
    from .clock import BoardClock
    from .serial_link import UART_BRIDGE_BYTES_PER_S, UsbSerialPort

    name = board_name()
    pins = config.BOARDS[name]
    clock = BoardClock()
    i2c = machine.I2C(
        pins["i2c_id"],
        scl=machine.Pin(pins["scl"]),
        sda=machine.Pin(pins["sda"]),
        freq=config.I2C_FREQ_HZ,
    )
    led = None
    if pins.get("led") is not None:
        led = Led(machine.Pin(pins["led"], machine.Pin.OUT), pins.get("led_active_low", False))
    haptic = None
    if pins.get("haptic") is not None:
        haptic = Haptic(haptic_pwm(machine, pins["haptic"]), config.HAPTIC_PWM_FREQ_HZ)
    adc = None
    if pins.get("battery_adc") is not None:
        adc = machine.ADC(machine.Pin(pins["battery_adc"]))
        try:
            adc.atten(machine.ADC.ATTN_11DB)  # full range up to ~3.1 V at the pin
        except AttributeError:
            pass
    battery = Battery(
        adc,
        config.BATTERY_DIVIDER_NUM,
        config.BATTERY_DIVIDER_DEN,
        config.BATTERY_EMPTY_MV,
        config.BATTERY_FULL_MV,
    )
    pair_button = None
    if pins.get("safe_mode_pin") is not None:
        # BOOT, free once the board has started: a press opens the pairing window again.
        pair_button = machine.Pin(pins["safe_mode_pin"], machine.Pin.IN, machine.Pin.PULL_UP)
    bonds = BondStore(config.BOND_FILE, config.BOND_MAX_PEERS)
    bonds.load()  # before the stack starts: it asks for the stored keys while starting
    app = App(
        i2c=i2c,
        ble=make_ble(),
        clock=clock,
        led=led,
        haptic=haptic,
        battery=battery,
        serial=UsbSerialPort(),
        board_kind=_BOARD_KINDS.get(pins["chip"], BOARD_UNKNOWN),
        machine_reset=machine.reset,
        wdt=start_watchdog(),
        bond_store=bonds,
        # The classic ESP32's USB serial is a UART bridge; the S3's and C3's is native USB.
        serial_link_bytes_per_s=UART_BRIDGE_BYTES_PER_S if pins["chip"] == "esp32" else None,
        pair_button=pair_button,
    )
    app.begin()
    imu = app.imu
    print(
        "tremorlift: {}, IMU {}".format(
            app.name,
            "missing" if imu is None else f"{imu.NAME} (WHO_AM_I 0x{imu.who_am_i:02x})",
        )
    )
    asyncio.run(app.run())
