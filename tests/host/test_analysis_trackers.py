"""The engine's trackers on their own: holds, tremor episodes and recovery, fed window by window."""

from __future__ import annotations

import numpy as np
import pytest
from tremorlift.analysis import Engine, run_engine
from tremorlift.analysis.episodes import EpisodeTracker, TremorReading
from tremorlift.analysis.holds import HoldTracker
from tremorlift.analysis.recovery import RecoveryTracker
from tremorlift.analysis.tremor import TremorWindows

UP = np.array([0.0, 0.0, 1.0])


def window(
    t_end_s: float,
    *,
    p_trem: float,
    peak_hz: float = 9.0,
    concentration: float = 0.8,
    disp_rms_m: float = 0.0,
) -> TremorWindows:
    """One tremor window as TremorSpectra gives it (only what the episode tracker reads)."""

    def a(x: float) -> np.ndarray:
        return np.array([x])

    return TremorWindows(
        t_end_s=a(t_end_s),
        rms_mps2=a(np.sqrt(p_trem)),
        peak_hz=a(peak_hz),
        sway_peak_hz=a(2.0),
        concentration=a(concentration),
        moving_peak_hz=a(peak_hz),
        moving_concentration=a(concentration),
        p_slow=a(p_trem / 2),
        p_phys=a(p_trem / 2),
        p_fatigue_slow=a(p_trem / 4),
        p_sway=a(0.0),
        p_voluntary=a(0.0),
        entropy=a(0.5),
        gyro_rms_radps=a(0.0),
        gyro_peak_hz=a(peak_hz),
        tsi_hz=a(np.nan),
        power_1s=np.array([[p_trem, 0.0, p_trem]]),
        disp_rms_m=a(disp_rms_m),
    )


def feed(tr: EpisodeTracker, t0_s: float, n: int, **kw: float) -> tuple[float, list]:
    """``n`` windows of a still limb with no set or hold, from ``t0_s``; the events found."""
    events = []
    t = t0_s
    for _ in range(n):
        w = window(t, **kw)
        r = tr.read(w, 0, set_start_s=None, holding=False)
        events += tr.track(w, 0, r, exertion=False)
        t += 0.5
    return t, events


def test_rest_tremor_episodes_become_rest_once_they_persist_and_alert_once() -> None:
    tr = EpisodeTracker()
    t, ev = feed(tr, 3.0, 8, p_trem=0.03**2)  # the warm-up teaches the baseline
    assert tr.baseline_mps2 == pytest.approx(0.03) and ev == []
    t, ev = feed(tr, t, 12, p_trem=0.2**2, peak_hz=5.0)  # 6 s of a 5 Hz rhythm at rest
    t, ev2 = feed(tr, t, 2, p_trem=0.03**2)  # two quiet windows close it
    (ep,) = [e for e in ev + ev2 if e.kind == "tremor_episode"]
    assert ep.data["cause"] == "rest" and ep.data["peak_hz"] == 5.0
    assert ep.data["end_s"] - ep.data["start_s"] == pytest.approx(6.0)
    assert [e.data["kind"] for e in ev + ev2 if e.kind == "alert"] == ["rest_tremor"]
    # A second episode is rest tremor too, with no second notice.
    t, ev = feed(tr, t, 12, p_trem=0.2**2, peak_hz=5.0)
    ev += tr.finish()
    assert [e.data["cause"] for e in ev if e.kind == "tremor_episode"] == ["rest"]
    assert not [e for e in ev if e.kind == "alert"]
    assert len(tr.episodes) == 2


def test_tremor_soon_after_exertion_is_not_rest_tremor_and_short_runs_are_no_episode() -> None:
    tr = EpisodeTracker()
    t, _ = feed(tr, 3.0, 8, p_trem=0.03**2)
    tr.exertion_ended(t - 30.0)  # a set ended 30 s ago
    t, ev = feed(tr, t, 12, p_trem=0.2**2, peak_hz=5.0)
    ev += feed(tr, t, 2, p_trem=0.03**2)[1]
    assert [e.data["cause"] for e in ev if e.kind == "tremor_episode"] == ["other"]
    # Two tremor windows (1 s) are too brief to be an episode.
    t, ev = feed(tr, t + 1.0, 2, p_trem=0.2**2, peak_hz=9.0)
    ev += feed(tr, t, 2, p_trem=0.03**2)[1] + tr.finish()
    assert ev == []


def reading(t_end_s: float, amp_mps2: float, *, static: bool = True) -> TremorReading:
    return TremorReading(
        t_end_s=t_end_s,
        center_s=t_end_s - 0.5,
        static=static,
        band_amp_mps2=amp_mps2,
        amp_mps2=amp_mps2,
        sway_amp_mps2=0.0,
        peak_hz=9.0,
        sway_peak_hz=2.0,
        tremor=False,
        sway=False,
    )


def hold_step(h: HoldTracker, r: TremorReading, up: np.ndarray = UP):
    return h.update(
        r, up, in_set=False, last_rep_end_s=-np.inf, baseline_mps2=0.03, t_last_s=r.t_end_s
    )


def test_a_hold_starts_after_5_s_of_still_effort_and_ends_when_the_limb_moves() -> None:
    h = HoldTracker("wall-sit")
    t = 10.0
    started = []
    for _ in range(11):  # still windows whose tremor is above 1.2x the baseline, at 9 Hz
        started.append(hold_step(h, reading(t, 0.1)).started_s)
        t += 0.5
    # Once the limb has been still for 5 s; stillness showed 1.5 s after it began (the static
    # test's 3 s window), so the hold is backdated to 8 s.
    assert started[:10] == [None] * 10 and started[10] == pytest.approx(8.0) and h.active
    alerts = []
    for amp in [0.1, 0.1, 0.1, 0.1, 0.15, 0.25, 0.3]:  # windows centred at 15-18 s
        alerts += hold_step(h, reading(t, amp)).alerts
        t += 0.5
    # The onset: twice the hold's first four windows, in the window centred at 17.5 s.
    assert h.hold is not None and h.hold["time_to_tremor_onset_s"] == pytest.approx(9.5)
    assert [(a.t_s, a.data["level"], a.data["kind"]) for a in alerts] == [(17.5, "info", "hold")]
    end = hold_step(h, reading(t, 0.1, static=False)).ended
    assert end is not None and not h.active
    # The movement shows 1.5 s late, but not before the last effort window (centred at 18 s).
    assert end["end_s"] == 18.0 and end["duration_s"] == 10.0
    assert end["tremor_rms_max_mps2"] == 0.3 and end["tremor_growth_pct_per_s"] > 0
    assert end["exercise"] == "wall-sit" and end["stop_reason"] is None


def test_a_hold_alerts_its_onset_once_and_stops_on_posture_drift() -> None:
    h = HoldTracker(None)
    t = 10.0
    for _ in range(11):
        hold_step(h, reading(t, 0.1))
        t += 0.5
    alerts = []
    for amp in [0.1, 0.1, 0.1, 0.25, 0.25]:
        alerts += hold_step(h, reading(t, amp)).alerts
        t += 0.5
    assert [(a.data["kind"], a.data["level"]) for a in alerts] == [("hold", "info")]
    tilt = np.radians(15.0)
    tilted = np.array([np.sin(tilt), 0.0, np.cos(tilt)])
    alerts = hold_step(h, reading(t, 0.1), tilted).alerts
    alerts += hold_step(h, reading(t + 0.5, 0.1), tilted).alerts
    assert [a.data["message"] for a in alerts] == [
        "hold: loss of form: posture drifted 15 deg: end the hold"
    ]
    assert h.hold["stop_reason"] == "loss of form: posture drifted 15 deg"
    assert h.hold["posture_drift_deg"] == pytest.approx(15.0)


def test_a_hold_just_before_a_rep_was_the_set_up_and_is_dropped() -> None:
    h = HoldTracker(None)
    t = 10.0
    for _ in range(14):
        hold_step(h, reading(t, 0.1))
        t += 0.5
    assert h.active
    step = h.on_rep(t + 3.0, t + 5.0)
    assert step.dropped is not None and step.ended is None and not h.active
    assert h.finish(t + 10.0, t + 10.0).ended is None


def test_recovery_is_timed_when_the_still_level_falls_and_warned_once_when_it_does_not() -> None:
    rec = RecoveryTracker()
    s = {"end_s": 100.0, "tremor_recovery_s": None}
    rec.arm(s)
    for k in range(20):  # raised for 10 s, then quiet
        rec.update(100.0 + 0.5 * k, 0.2, True)
    for k in range(20, 40):
        assert rec.update(100.0 + 0.5 * k, 0.01, True) == []
    # The level is the median of the last 6 still windows: quiet from the 4th quiet window on.
    assert s["tremor_recovery_s"] == 11.5
    rec = RecoveryTracker()
    s2 = {"end_s": 200.0, "tremor_recovery_s": None}
    rec.arm(s2)
    warns = []
    for k in range(300):  # 150 s of still tremor at 0.2 m/s^2
        warns += rec.update(200.0 + 0.5 * k, 0.2, True)
    (w,) = warns
    assert w.data["kind"] == "recovery" and w.data["level"] == "warn" and w.t_s == 320.0
    assert s2["tremor_recovery_s"] is None
    rec.disarm()
    assert rec.update(400.0, 0.01, True) == [] and s2["tremor_recovery_s"] is None


TAIL_S = 200.0


@pytest.fixture(scope="module")
def set_then_still() -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Two generated bench sets, then TAIL_S of a still forearm (sensor noise only)."""
    from tremorlift.twin.motion.generator import generate

    s = generate("bench-to-failure", 100, short=True, keep_kinematics=False)
    d = s.devices[0]
    fs = s.sample_rate_hz
    n = int(TAIL_S * fs)
    t = d.t_s[-1] + (1 + np.arange(n)) / fs
    acc = d.accel_mps2[-int(fs) :].mean(axis=0) + np.random.default_rng(5).normal(0, 0.02, (n, 3))
    gyr = np.random.default_rng(6).normal(0, 0.003, (n, 3))
    return (
        np.concatenate((d.t_s, t)),
        np.vstack((d.accel_mps2, acc)),
        np.vstack((d.gyro_radps, gyr)),
        fs,
    )


@pytest.mark.parametrize("tremor_mps2", [0.3, 0.04])
def test_the_engine_warns_when_tremor_is_still_raised_two_minutes_after_a_set(
    set_then_still, tremor_mps2: float
) -> None:
    t, acc, gyr, fs = set_then_still
    tail = slice(t.size - int(TAIL_S * fs), None)
    acc = acc.copy()
    acc[tail, :2] += tremor_mps2 * np.sin(2 * np.pi * 5.0 * t[tail])[:, None] * [0.6, 0.8]
    res = run_engine(Engine(fs), t, acc, gyr, int(fs))
    last = [s for s in res["sets"] if s["kind"] == "dynamic"][-1]
    warns = [a for a in res["alerts"] if a["kind"] == "recovery"]
    if tremor_mps2 > 0.1:
        (w,) = warns
        assert 120.0 <= w["t_s"] - last["end_s"] <= 121.0 and last["tremor_recovery_s"] is None
    else:
        assert warns == [] and 0 < last["tremor_recovery_s"] < 30.0
