"""Alert feedback on the laptop: channels, fallbacks, warn vs stop, never blocking (fake players)."""

from __future__ import annotations

import asyncio
import sys
import threading
import types
from typing import Any

import numpy as np
import pytest
from tremorlift.collect import feedback as fb
from tremorlift.collect.feedback import (
    Feedback,
    SoundDevicePlayer,
    find_speech_command,
    speech_argv,
    tone,
)
from tremorlift.protocol import BUZZ_PATTERNS_MS, BUZZ_STOP, BUZZ_WARN

WARN = {
    "t_s": 10.0,
    "level": "warn",
    "kind": "velocity_loss",
    "message": "rep 5: velocity loss 21 %",
}
STOP = {"t_s": 12.0, "level": "stop", "kind": "velocity_loss", "message": "rep 6: end the set"}


class FakePlayer:
    def __init__(self, block: threading.Event | None = None, fail: bool = False) -> None:
        self.played: list[tuple[np.ndarray, int]] = []
        self.started = threading.Event()
        self.block = block
        self.fail = fail
        self.done = threading.Event()

    def play(self, samples: np.ndarray, sample_rate_hz: int) -> None:
        self.started.set()
        if self.block is not None:
            assert self.block.wait(10.0)
        if self.fail:
            raise RuntimeError("device unplugged")
        self.played.append((samples, sample_rate_hz))
        self.done.set()


class FakeProc:
    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.terminated = False

    def poll(self) -> int | None:
        return None  # still speaking

    def terminate(self) -> None:
        self.terminated = True


class Spawner:
    def __init__(self) -> None:
        self.procs: list[FakeProc] = []

    def __call__(self, argv: list[str]) -> FakeProc:
        p = FakeProc(argv)
        self.procs.append(p)
        return p


def _make(**kw: Any) -> tuple[Feedback, FakePlayer, Spawner, list[str]]:
    player = kw.pop("player", FakePlayer())
    spawn = Spawner()
    rings: list[str] = []
    f = Feedback(
        tone_player=player,
        speech_command=["/usr/bin/espeak-ng"],
        spawn=spawn,
        ring=rings.append,
        detect=False,
        **kw,
    )
    return f, player, spawn, rings


def _dominant_hz(samples: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[np.argmax(spec)])


def test_warn_and_stop_use_every_channel_and_differ() -> None:
    buzzed: list[int] = []

    async def buzz(pattern: int) -> None:
        buzzed.append(pattern)

    async def main() -> tuple[Any, Any]:
        f, player, spawn, rings = _make(buzz=buzz)
        d1 = f.deliver(WARN)
        await asyncio.sleep(0)
        f.close()  # lets the queued sound and speech finish
        f2, player2, spawn2, rings2 = _make(buzz=buzz)
        d2 = f2.deliver(STOP)
        await f2.aclose()
        return (d1, player, spawn, rings), (d2, player2, spawn2, rings2)

    (d1, p1, s1, r1), (d2, p2, s2, r2) = asyncio.run(main())
    assert d1.channels == ("haptic", "sound", "speech") and d2.channels == (
        "haptic",
        "sound",
        "speech",
    )
    assert d1.skipped["bell"] == "not needed" and r1 == [] and r2 == []
    assert buzzed == [BUZZ_WARN, BUZZ_STOP]
    (w, rate_w), (s, rate_s) = p1.played[0], p2.played[0]
    assert rate_w == rate_s == fb.TONE_SAMPLE_RATE_HZ
    assert _dominant_hz(w, rate_w) == pytest.approx(fb.TONE_HZ["warn"], abs=3)
    assert _dominant_hz(s, rate_s) == pytest.approx(fb.TONE_HZ["stop"], abs=3)
    assert s.size > w.size  # the stop rhythm is longer
    assert s1.procs[0].argv[-2:] == ["--", "one more rep at most"]
    assert s2.procs[0].argv[-1].startswith("stop")
    assert s1.procs[0].argv[:1] == ["/usr/bin/espeak-ng"] and "-a" in s1.procs[0].argv


def test_tone_follows_the_buzz_rhythm() -> None:
    for level, pattern in (("warn", BUZZ_WARN), ("stop", BUZZ_STOP)):
        x = tone(level, 8000)
        ms = BUZZ_PATTERNS_MS[pattern]
        assert x.size == sum(int(8000 * m / 1000) for m in ms)
        assert x.dtype == np.float32 and 0.3 < float(np.max(np.abs(x))) <= fb.TONE_AMPLITUDE + 1e-6
        # Silent exactly in the pauses; the edges are ramped (no click).
        on = np.abs(x) > 1e-4
        first_pause = slice(int(8 * ms[0]) + 2, int(8 * (ms[0] + ms[1])) - 2)
        assert not on[first_pause].any()
        assert abs(x[0]) < 1e-3 and abs(x[-1]) < 0.05


def test_deliver_returns_while_the_sound_is_still_playing() -> None:
    release = threading.Event()
    f, player, spawn, _ = _make(player=FakePlayer(block=release))
    d = f.deliver(WARN)
    # deliver has returned although the player has not finished (it waits for `release`).
    assert "sound" in d.channels
    assert player.started.wait(5.0)
    assert not player.done.is_set()
    release.set()
    f.close()
    assert player.done.is_set() and len(player.played) == 1


def test_switched_off_channels_fall_back_to_the_bell() -> None:
    f, player, spawn, rings = _make(sound=False, speech=False)
    d = f.deliver(STOP)
    assert d.channels == ("bell",)
    assert d.skipped["sound"] == "switched off" and d.skipped["speech"] == "switched off"
    assert d.skipped["haptic"] == "no sensor to buzz"
    assert rings == ["stop"] and player.played == [] and spawn.procs == []
    f2, _, _, rings2 = _make(sound=False, speech=False, bell=False)
    assert f2.deliver(WARN).channels == () and rings2 == []
    f.close()
    f2.close()


def test_info_alerts_are_not_sounded() -> None:
    f, player, spawn, rings = _make()
    d = f.deliver({"t_s": 1.0, "level": "info", "kind": "velocity_loss", "message": "close"})
    assert d.channels == () and rings == []
    f.close()
    assert player.played == [] and spawn.procs == []


def test_haptic_needs_a_running_loop() -> None:
    async def buzz(pattern: int) -> None:
        raise AssertionError("not reached")

    f, _, _, _ = _make(buzz=buzz)
    d = f.deliver(WARN)  # called outside any event loop
    assert "haptic" not in d.channels and d.skipped["haptic"] == "no running event loop"
    f.close()


def test_a_failing_buzz_is_recorded_not_raised() -> None:
    async def buzz(pattern: int) -> None:
        raise ConnectionError("sensor gone")

    async def main() -> Feedback:
        f, _, _, _ = _make(buzz=buzz, sound=False, speech=False)
        assert f.deliver(WARN).channels == ("haptic", "bell")
        await f.aclose()
        return f

    f = asyncio.run(main())
    assert any("sensor gone" in e for e in f.errors)


def test_a_failing_player_rings_the_bell_and_is_not_used_again() -> None:
    f, player, spawn, rings = _make(player=FakePlayer(fail=True), speech=False)
    assert f.deliver(WARN).channels == ("sound",)
    f.close()
    assert rings == ["warn"]  # the worker fell back when the tone failed
    assert "sound" in f.unavailable and any("device unplugged" in e for e in f.errors)
    f2 = Feedback(tone_player=player, spawn=spawn, ring=rings.append, speech=False, detect=False)
    f2.unavailable["sound"] = f.unavailable["sound"]
    assert f2.deliver(STOP).channels == ("bell",)
    f2.close()


def test_alerts_beyond_the_queue_are_dropped_not_delayed() -> None:
    release = threading.Event()
    f, player, spawn, rings = _make(player=FakePlayer(block=release), speech=False)
    assert f.deliver(WARN).channels == ("sound",)
    assert player.started.wait(5.0)  # the worker holds the first job
    got = [f.deliver(WARN) for _ in range(fb.WORK_QUEUE_SIZE + 1)]
    assert [("sound" in d.channels) for d in got] == [True] * fb.WORK_QUEUE_SIZE + [False]
    assert got[-1].channels == ("bell",) and got[-1].skipped["sound"] == "busy with earlier alerts"
    # A stop outranks waiting warnings: they are dropped and the stop is queued.
    assert f.deliver(STOP).channels == ("sound",)
    release.set()
    f.close()
    levels = [_dominant_hz(s, r) for s, r in player.played]
    assert len(levels) == 2 and levels[-1] == pytest.approx(fb.TONE_HZ["stop"], abs=3)


def test_newer_speech_cuts_off_older_speech() -> None:
    f, _, spawn, _ = _make(sound=False)
    f.deliver(WARN)
    f.deliver(dict(WARN, kind="tremor"))
    f.close()
    assert len(spawn.procs) == 2 and spawn.procs[0].terminated and not spawn.procs[1].terminated


def test_speech_command_per_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    have = {"say": "/usr/bin/say", "espeak": "/usr/bin/espeak"}
    monkeypatch.setattr(fb.shutil, "which", lambda name: have.get(name))
    assert find_speech_command("darwin") == ["/usr/bin/say"]
    assert find_speech_command("linux") == ["/usr/bin/espeak"]
    have["espeak-ng"] = "/usr/bin/espeak-ng"
    assert find_speech_command("linux") == ["/usr/bin/espeak-ng"]
    have.clear()
    assert find_speech_command("linux") is None
    assert speech_argv(["/usr/bin/say"], "stop", "-stop") == ["/usr/bin/say", "--", "-stop"]
    f = Feedback(tone_player=FakePlayer(), ring=lambda level: None)  # detection finds nothing
    assert "speech" in f.unavailable
    assert f.deliver(WARN).channels == ("sound",)
    f.close()


def test_sounddevice_probe_reports_why_it_cannot_play(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = types.ModuleType("sounddevice")

    def no_device(kind: str) -> Any:
        raise ValueError("No output device matching")

    mod.query_devices = no_device  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sounddevice", mod)
    why = SoundDevicePlayer().probe()
    assert why is not None and "no audio output device" in why

    played: list[Any] = []
    mod.query_devices = lambda kind: {"name": "speakers"}  # type: ignore[attr-defined]
    mod.play = lambda data, rate, blocking: played.append((data.size, rate, blocking))  # type: ignore[attr-defined]
    p = SoundDevicePlayer()
    assert p.probe() is None
    p.play(tone("warn"), 44100)
    assert played == [(tone("warn").size, 44100, True)]
    # Without a device the Feedback falls back at construction, not at the first alert.
    mod.query_devices = no_device  # type: ignore[attr-defined]
    rings: list[str] = []
    f = Feedback(speech=False, ring=rings.append)
    assert "sound" in f.unavailable and f.deliver(WARN).channels == ("bell",)
    f.close()


def test_from_settings_switches_channels() -> None:
    s = types.SimpleNamespace(haptic=False, sound=True, speech=False)
    f = Feedback.from_settings(s, tone_player=FakePlayer(), ring=lambda level: None, detect=False)
    assert f.enabled == {"haptic": False, "sound": True, "speech": False, "bell": True}
    f.close()
