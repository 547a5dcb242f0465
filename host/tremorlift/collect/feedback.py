"""Deliver a warn/stop alert to the lifter at once: a buzz on the sensor, a tone and spoken words
on the laptop, the terminal bell when nothing else can sound.

:meth:`Feedback.deliver` returns immediately and says which channels it used. Nothing runs on
the caller's thread that can wait: the buzz is an asyncio task on the running loop, tones and
speech go to one worker thread (a bounded queue: alerts that cannot be taken right away are
dropped, never queued up to sound late), speech is a child process that is not waited for.

Warn and stop differ on every channel: the sensor buzzes BUZZ_WARN (2 pulses) or BUZZ_STOP
(3 longer pulses); the tone follows the same rhythm at a low or a high pitch; the words differ
("one more rep at most" / "stop now"); the bell rings once or twice.

The players are injected (``tone_player``, ``speech_command``, ``spawn``, ``bell``) so tests run
without audio; the defaults use ``sounddevice`` (PortAudio) and ``espeak-ng``/``espeak``/``say``.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from tremorlift.protocol import BUZZ_PATTERNS_MS, BUZZ_STOP, BUZZ_WARN

DELIVERY_CHANNELS = ("haptic", "sound", "speech", "bell")
LEVELS = ("warn", "stop")
TONE_SAMPLE_RATE_HZ = 44100
# Low pitch for "one more rep at most", high for "stop now"; both sit where laptop speakers
# are loud and hearing is most sensitive, and are a fifth apart so they are told apart easily.
TONE_HZ = {"warn": 660.0, "stop": 990.0}
TONE_AMPLITUDE = 0.4  # of full scale
TONE_RAMP_S = 0.005  # raised-cosine edges: no click at the start and end of each pulse
BUZZ_PATTERN = {"warn": BUZZ_WARN, "stop": BUZZ_STOP}
# Spoken words per (level, alert kind); short enough to be over before the next rep starts.
PHRASES = {
    ("warn", "velocity_loss"): "one more rep at most",
    ("stop", "velocity_loss"): "stop now",
    ("warn", "tremor"): "shaking is rising",
    ("stop", "tremor"): "stop. too much shaking",
    ("warn", "hold"): "hold is shaking",
    ("stop", "hold"): "stop. end the hold",
    ("warn", "recovery"): "rest longer",
    ("warn", "asymmetry"): "one side is lagging",
}
DEFAULT_PHRASE = {"warn": "warning", "stop": "stop"}
ESPEAK_WORDS_PER_MIN = {"warn": 175, "stop": 160}
ESPEAK_AMPLITUDE = {"warn": 120, "stop": 180}  # espeak's 0-200 scale
WORK_QUEUE_SIZE = 2


class TonePlayer(Protocol):
    """Plays mono float samples and returns when done (called on the worker thread only)."""

    def play(self, samples: npt.NDArray[np.float32], sample_rate_hz: int) -> None: ...


class SoundDevicePlayer:
    """Tone output through PortAudio (``sounddevice``).

    :meth:`probe` returns None when usable, else why not (no package, no PortAudio library, no
    output device), so the caller can fall back.
    """

    def __init__(self) -> None:
        self._sd: Any = None

    def probe(self) -> str | None:
        try:
            import sounddevice as sd  # type: ignore[import-untyped]  # loads PortAudio
        except ImportError:
            return "sounddevice is not installed"
        except OSError as exc:  # the package is there but PortAudio is not
            return f"PortAudio unavailable ({exc})"
        try:
            sd.query_devices(kind="output")
        except Exception as exc:  # sounddevice raises its own PortAudioError or ValueError
            return f"no audio output device ({exc})"
        self._sd = sd
        return None

    def play(self, samples: npt.NDArray[np.float32], sample_rate_hz: int) -> None:
        if self._sd is None:
            raise RuntimeError("SoundDevicePlayer.play before a successful probe")
        self._sd.play(samples, sample_rate_hz, blocking=True)


def tone(level: str, sample_rate_hz: int = TONE_SAMPLE_RATE_HZ) -> npt.NDArray[np.float32]:
    """The alert tone: the sensor's buzz rhythm for ``level`` played as pulses of a pure tone."""
    pattern_ms = BUZZ_PATTERNS_MS[BUZZ_PATTERN[level]]
    freq_hz = TONE_HZ[level]
    ramp_n = int(TONE_RAMP_S * sample_rate_hz)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp_n) / ramp_n)
    parts = []
    for i, ms in enumerate(pattern_ms):
        n = int(sample_rate_hz * ms / 1000)
        if i % 2:  # odd entries are the pauses
            parts.append(np.zeros(n))
            continue
        pulse = TONE_AMPLITUDE * np.sin(2 * np.pi * freq_hz * np.arange(n) / sample_rate_hz)
        pulse[:ramp_n] *= ramp
        pulse[n - ramp_n :] *= ramp[::-1]
        parts.append(pulse)
    return np.concatenate(parts).astype(np.float32)


def find_speech_command(platform: str = sys.platform) -> list[str] | None:
    """The text-to-speech program of this OS (the text is appended), or None if there is none."""
    if platform == "darwin":
        say = shutil.which("say")
        return [say] if say else None
    for name in ("espeak-ng", "espeak"):
        exe = shutil.which(name)
        if exe:
            return [exe]
    return None


def speech_argv(command: Sequence[str], level: str, text: str) -> list[str]:
    argv = list(command)
    if "espeak" in argv[0].rsplit("/", 1)[-1]:
        argv += ["-s", str(ESPEAK_WORDS_PER_MIN[level]), "-a", str(ESPEAK_AMPLITUDE[level])]
    # "--" so a phrase can never be read as an option.
    return argv + ["--", text]


def _spawn_quiet(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _ring_terminal(level: str) -> None:
    # Two bells for stop; terminals that merge them still ring.
    sys.stderr.write("\a" * (2 if level == "stop" else 1))
    sys.stderr.flush()


@dataclass(frozen=True)
class Delivery:
    """What :meth:`Feedback.deliver` did with one alert."""

    level: str
    channels: tuple[str, ...]  # the channels that took it, in DELIVERY_CHANNELS order
    skipped: dict[str, str] = field(default_factory=dict)  # channel -> why not


class Feedback:
    """Alert delivery on the laptop side. Construct once per collection; ``close()`` at the end.

    ``buzz`` is the collector's coroutine function that sends BUZZ to the sensor(s); it is
    started as a task on the loop running when :meth:`deliver` is called.
    """

    def __init__(
        self,
        *,
        haptic: bool = True,
        sound: bool = True,
        speech: bool = True,
        bell: bool = True,
        buzz: Callable[[int], Awaitable[None]] | None = None,
        tone_player: TonePlayer | None = None,
        speech_command: Sequence[str] | None = None,
        spawn: Callable[[list[str]], Any] = _spawn_quiet,
        ring: Callable[[str], None] = _ring_terminal,
        detect: bool = True,
    ) -> None:
        """``detect=False`` skips looking for the default tone player and speech program (only
        the injected ones are used)."""
        self.enabled = {"haptic": haptic, "sound": sound, "speech": speech, "bell": bell}
        self._buzz = buzz
        self._spawn = spawn
        self._ring = ring
        self.unavailable: dict[str, str] = {}
        self.errors: list[str] = []  # failures seen on the worker thread, newest last
        self._player: TonePlayer | None = tone_player
        if self._player is None and sound and detect:
            sd_player = SoundDevicePlayer()
            why = sd_player.probe()
            if why is None:
                self._player = sd_player
            else:
                self.unavailable["sound"] = why
        elif self._player is None:
            self.unavailable["sound"] = "no tone player"
        self._speech_cmd = list(speech_command) if speech_command else None
        if self._speech_cmd is None and speech and detect:
            self._speech_cmd = find_speech_command()
        if self._speech_cmd is None:
            self.unavailable["speech"] = "no text-to-speech program (espeak-ng, espeak or say)"
        self._tasks: set[asyncio.Task[None]] = set()
        self._speech_proc: Any = None
        self._queue: queue.Queue[tuple[str, bool, str | None] | None] = queue.Queue(WORK_QUEUE_SIZE)
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Any, **kw: Any) -> Feedback:
        """Channels switched on or off as in a :class:`tremorlift.settings.Settings`."""
        return cls(haptic=settings.haptic, sound=settings.sound, speech=settings.speech, **kw)

    # ------------------------------------------------------------------ delivery
    def deliver(self, alert: Mapping[str, Any]) -> Delivery:
        """Deliver an engine alert (``level``, ``kind``, ``message``). info alerts are screen
        only and return with no channel used. Never blocks."""
        level = str(alert.get("level", ""))
        if level not in LEVELS:
            return Delivery(
                level, (), {c: f"{level or 'no'} level is not sounded" for c in DELIVERY_CHANNELS}
            )
        kind = str(alert.get("kind", ""))
        used: list[str] = []
        skipped: dict[str, str] = {}

        if not self.enabled["haptic"]:
            skipped["haptic"] = "switched off"
        elif self._buzz is None:
            skipped["haptic"] = "no sensor to buzz"
        elif self._start_buzz(BUZZ_PATTERN[level]):
            used.append("haptic")
        else:
            skipped["haptic"] = "no running event loop"

        want_sound = self._usable("sound", skipped)
        want_speech = self._usable("speech", skipped)
        phrase = PHRASES.get((level, kind), DEFAULT_PHRASE[level]) if want_speech else None
        if want_sound or want_speech:
            if self._enqueue((level, want_sound, phrase)):
                used += ["sound"] * want_sound + ["speech"] * want_speech
            else:
                why = "busy with earlier alerts"
                skipped.update(
                    {c: why for c, w in (("sound", want_sound), ("speech", want_speech)) if w}
                )

        # The bell is the last resort: only when nothing on the laptop will sound.
        if "sound" in used or "speech" in used:
            skipped["bell"] = "not needed"
        elif not self.enabled["bell"]:
            skipped["bell"] = "switched off"
        else:
            try:
                self._ring(level)
                used.append("bell")
            except (OSError, ValueError) as exc:  # closed or broken stderr
                skipped["bell"] = str(exc)
        return Delivery(level, tuple(c for c in DELIVERY_CHANNELS if c in used), skipped)

    def _usable(self, channel: str, skipped: dict[str, str]) -> bool:
        if not self.enabled[channel]:
            skipped[channel] = "switched off"
            return False
        with self._lock:
            why = self.unavailable.get(channel)
        if why is not None:
            skipped[channel] = why
            return False
        return True

    def _start_buzz(self, pattern: int) -> bool:
        assert self._buzz is not None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        task = loop.create_task(self._run_buzz(pattern))
        self._tasks.add(task)  # keep a reference until done (the loop holds only a weak one)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _run_buzz(self, pattern: int) -> None:
        assert self._buzz is not None
        try:
            await self._buzz(pattern)
        except Exception as exc:  # a lost link must not take the collector down
            self._note_error(f"haptic: {type(exc).__name__}: {exc}")

    def _enqueue(self, job: tuple[str, bool, str | None]) -> bool:
        if self._closed:
            return False
        if job[0] == "stop":
            self._drop_queued()  # a stop outranks whatever warn is still waiting
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            return False
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="feedback-audio", daemon=True)
            self._worker.start()
        return True

    def _drop_queued(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()

    # ------------------------------------------------------------------ worker thread
    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            level, sound, phrase = job
            if phrase is not None:
                self._say(level, phrase)  # starts at once; the tone plays over its first syllable
            if sound:
                self._play(level)

    def _play(self, level: str) -> None:
        assert self._player is not None
        try:
            self._player.play(tone(level), TONE_SAMPLE_RATE_HZ)
        except Exception as exc:  # device unplugged, PortAudio error: fall back from now on
            with self._lock:
                self.unavailable["sound"] = f"tone failed ({exc})"
            self._note_error(f"sound: {type(exc).__name__}: {exc}")
            if self.enabled["bell"]:
                with contextlib.suppress(OSError, ValueError):
                    self._ring(level)

    def _say(self, level: str, phrase: str) -> None:
        assert self._speech_cmd is not None
        prev = self._speech_proc
        if prev is not None and prev.poll() is None:
            # Words that would finish after the next alert's are stale: cut them off.
            with contextlib.suppress(OSError):
                prev.terminate()
        try:
            self._speech_proc = self._spawn(speech_argv(self._speech_cmd, level, phrase))
        except OSError as exc:
            with self._lock:
                self.unavailable["speech"] = f"cannot run {self._speech_cmd[0]} ({exc})"
            self._note_error(f"speech: {exc}")

    def _note_error(self, msg: str) -> None:
        with self._lock:
            self.errors = (self.errors + [msg])[-20:]

    # ------------------------------------------------------------------ shutdown
    def close(self, timeout_s: float = 3.0) -> None:
        """Let queued sounds finish (up to ``timeout_s``), then stop the worker thread."""
        if self._closed:
            return
        self._closed = True
        if self._worker is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout_s)
            self._worker.join(timeout_s)

    async def aclose(self, timeout_s: float = 3.0) -> None:
        """Await pending buzzes, then :meth:`close` (in a thread, so the loop keeps running)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
        await asyncio.to_thread(self.close, timeout_s)
