"""The wearable's small peripherals: status LED, haptic motor, battery monitor.

Each takes machine objects built elsewhere (app.main() on the board, the emulation in tests)
and is driven by update(now_ms) calls from the application's loop, so patterns follow the
clock it is given and nothing here sleeps.
"""

from micropython import const

# LED modes and their patterns: durations in ms, on, off, on, off, ... repeated.
LED_OFF = const(0)
LED_ADVERTISING = const(1)
LED_CONNECTED = const(2)
LED_STREAMING = const(3)
LED_NO_IMU = const(4)
LED_IDENTIFY = const(5)
LED_PATTERNS_MS = {
    LED_OFF: (),  # always off
    LED_ADVERTISING: (100, 1900),  # slow blink
    LED_CONNECTED: None,  # solid on
    LED_STREAMING: (60, 140, 60, 740),  # heartbeat: two short beats a second
    LED_NO_IMU: (80, 80, 80, 460),  # fast double blink
    LED_IDENTIFY: (100, 100),  # fast blink
}


def _pattern_on(pattern, elapsed_ms):
    # True if a repeating on/off pattern is in an "on" part elapsed_ms after it started.
    if pattern is None:
        return True
    period_ms = 0
    for d in pattern:
        period_ms += d
    if period_ms == 0:
        return False
    t = elapsed_ms % period_ms
    on = True
    for d in pattern:
        if t < d:
            return on
        t -= d
        on = not on
    return False


class Led:
    """The status LED (a machine.Pin output); active_low for LEDs wired to 3V3."""

    def __init__(self, pin, active_low=False):
        self._pin = pin
        self._active_low = active_low
        self.mode = LED_OFF
        self._mode_start_ms = 0
        self._identify_until_ms = None
        self._identify_start_ms = 0
        self.lit = None
        self.set(False)

    def set(self, on):
        if on != self.lit:
            self.lit = on
            self._pin.value(1 if on != self._active_low else 0)

    def set_mode(self, mode, now_ms):
        if mode != self.mode:
            self.mode = mode
            self._mode_start_ms = now_ms

    def identify(self, seconds, now_ms, clock):
        self._identify_until_ms = clock.ticks_add(now_ms, seconds * 1000)
        self._identify_start_ms = now_ms

    def update(self, now_ms, clock):
        if self._identify_until_ms is not None:
            if clock.ticks_diff(self._identify_until_ms, now_ms) > 0:
                elapsed = clock.ticks_diff(now_ms, self._identify_start_ms)
                self.set(_pattern_on(LED_PATTERNS_MS[LED_IDENTIFY], elapsed))
                return
            self._identify_until_ms = None
        elapsed = clock.ticks_diff(now_ms, self._mode_start_ms)
        self.set(_pattern_on(LED_PATTERNS_MS[self.mode], elapsed))

    @property
    def identifying(self):
        return self._identify_until_ms is not None


class Haptic:
    """Vibration motor on a PWM pin (through a transistor); plays on/off patterns."""

    def __init__(self, pwm, freq_hz):
        self._pwm = pwm
        pwm.duty_u16(0)
        pwm.freq(freq_hz)
        self._pattern = None
        self._start_ms = 0
        self._duty = 0
        self._applied = 0

    def play(self, pattern_ms, intensity_pct, now_ms):
        """Start pattern_ms (on, off, on, ... in ms) at intensity_pct (1-100), replacing any."""
        self._pattern = pattern_ms
        self._start_ms = now_ms
        self._duty = intensity_pct * 65535 // 100

    @property
    def busy(self):
        return self._pattern is not None

    def update(self, now_ms, clock):
        duty = 0
        if self._pattern is not None:
            t = clock.ticks_diff(now_ms, self._start_ms)
            on = True
            for d in self._pattern:
                if t < d:
                    duty = self._duty if on else 0
                    break
                t -= d
                on = not on
            else:
                self._pattern = None  # finished
        if duty != self._applied:
            self._applied = duty
            self._pwm.duty_u16(duty)


class Battery:
    """LiPo voltage through a resistor divider into an ADC pin (machine.ADC with read_uv)."""

    def __init__(self, adc, divider_num, divider_den, empty_mv, full_mv):
        self._adc = adc
        self._num = divider_num
        self._den = divider_den
        self._empty_mv = empty_mv
        self._full_mv = full_mv

    def read_mv(self):
        """Battery voltage in mV, 0 if it cannot be measured."""
        if self._adc is None:
            return 0
        try:
            uv = self._adc.read_uv()
        except (OSError, AttributeError):
            return 0
        return uv * self._num // self._den // 1000

    def percent(self, mv):
        """0-100 (linear between empty and full), 255 when unknown (mv 0)."""
        if mv <= 0:
            return 255
        if mv <= self._empty_mv:
            return 0
        if mv >= self._full_mv:
            return 100
        return (mv - self._empty_mv) * 100 // (self._full_mv - self._empty_mv)
