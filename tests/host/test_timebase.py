"""Time base (tick unwrap, rate and drift fits) and loss accounting (StreamTracker)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from tremorlift import protocol as p
from tremorlift.timebase import (
    IntervalSet,
    RobustLineFit,
    SegmentClock,
    StreamTracker,
    fit_clock,
    unwrap_tick_near,
    unwrap_ticks,
)

WRAP = 1 << 30
_ROW = np.zeros((19, 6), np.int16)


def frame(seq: int, first: int, n: int = 19, flags: int = 0, tick: int = 0) -> p.SamplesFrame:
    return p.decode_samples(p.encode_samples(flags, seq, first, tick % WRAP, _ROW[:n]))


# --------------------------------------------------------------------------- ticks


def test_unwrap_ticks_across_several_wraps() -> None:
    true = np.arange(0, 5 * WRAP, 300_000_000, dtype=np.int64) + 12345
    assert np.array_equal(unwrap_ticks(true % WRAP), true)
    assert unwrap_ticks([]).size == 0


def test_unwrap_tick_near() -> None:
    assert unwrap_tick_near(5, 3 * WRAP) == 3 * WRAP + 5
    assert unwrap_tick_near(WRAP - 5, 3 * WRAP + 10) == 3 * WRAP - 5
    assert unwrap_tick_near(100, 0) == 100


# --------------------------------------------------------------------------- fits


def test_robust_fit_ignores_one_sided_latency_and_outliers() -> None:
    rng = np.random.default_rng(0)
    x = np.arange(0, 200_000, 19)
    y = 2.0 + x / 401.0 + 0.005 + rng.exponential(0.01, x.size)
    y[::97] += 3.0  # stalls: late by seconds
    fit = RobustLineFit(1 / 400.0, 200, envelope="lower", max_points=64)
    for xi, yi in zip(x, y, strict=True):
        fit.add(int(xi), float(yi))
    assert len(fit.points()[0]) <= 64  # bounded memory
    res = fit.fit()
    assert res is not None
    slope, intercept = res
    assert 1 / slope == pytest.approx(401.0, rel=2e-5)
    assert intercept == pytest.approx(2.005, abs=0.002)


def test_robust_fit_needs_two_points_and_splits() -> None:
    fit = RobustLineFit(1.0, 10, envelope="mean")
    assert fit.fit() is None
    fit.add(0, 0.0)
    assert fit.fit() is None
    for x in range(1, 100):
        fit.add(x, 2.0 * x)
    res = fit.fit()
    assert res is not None and res[0] == pytest.approx(2.0)
    tail = fit.split(50)
    assert fit.points()[0].max() < 50 <= tail.points()[0].min()
    with pytest.raises(ValueError):
        RobustLineFit(1.0, 0)


def _simulate(
    seconds: float,
    true_rate_hz: float,
    drift_ppm: float,
    seed: int = 0,
    n: int = 19,
    tick0_s: float = 1000.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = int(seconds * true_rate_hz / n)
    idx = np.arange(frames, dtype=np.int64) * n
    t_first = 3.0 + idx / true_rate_hz  # host clock, when each frame's first sample was taken
    host = t_first + (n - 1) / true_rate_hz + 0.0075 + rng.exponential(0.015, frames)
    device_s = tick0_s + (t_first - 3.0) / (1 + drift_ppm * 1e-6)
    ticks = np.round(device_s * 1e6).astype(np.int64) % WRAP
    return idx, ticks, host, t_first


def test_segment_clock_recovers_rate_drift_and_sample_times() -> None:
    idx, ticks, host, t_first = _simulate(300, 401.7, 40.0)
    clock = SegmentClock(400.0)
    for i in range(idx.size):
        clock.add_frame(int(idx[i]), 19, int(ticks[i]), float(host[i]))
    assert clock.rate_hz == pytest.approx(401.7, rel=2e-5)
    assert clock.device_rate_hz == pytest.approx(401.7 * (1 + 40e-6), rel=2e-6)
    drift = clock.drift_ppm
    assert drift is not None and drift == pytest.approx(40.0, abs=5.0)
    err_s = clock.time_s(idx) - t_first
    # Times sit on the host clock at the smallest latency seen (7.5 ms here), steadily.
    assert err_s.min() > 0.0 and err_s.max() < 0.012
    assert np.ptp(err_s) < 0.002
    # device time base: ticks unwrapped across the 2^30 us wrap (1074 s) continue smoothly
    dev = clock.device_time_s(idx)
    assert np.all(np.diff(dev) > 0)


def test_segment_clock_early_uses_device_ticks_then_nominal() -> None:
    clock = SegmentClock(200.0)
    assert clock.rate_hz == 200.0
    with pytest.raises(ValueError):
        clock.time_s([0])
    idx, ticks, host, _ = _simulate(3, 203.0, 0.0, n=10)
    for i in range(idx.size):
        clock.add_frame(int(idx[i]), 10, int(ticks[i]), float(host[i]))
    # 3 s is too short for the host fit but enough for the tick fit: 203 Hz, not the nominal 200
    assert clock.drift_ppm is None
    assert clock.rate_hz == pytest.approx(203.0, rel=1e-4)


def test_segment_clock_tick_wrap_in_the_middle() -> None:
    idx, ticks, host, _ = _simulate(40, 1000.0, 0.0, tick0_s=WRAP / 1e6 - 10)
    assert np.any(np.diff(ticks) < 0)  # the wrap is in there
    clock = SegmentClock(1000.0)
    for i in range(idx.size):
        clock.add_frame(int(idx[i]), 19, int(ticks[i]), float(host[i]))
    assert clock.device_rate_hz == pytest.approx(1000.0, rel=1e-6)


def test_fit_clock_offline_in_any_order() -> None:
    idx, ticks, host, t_first = _simulate(60, 399.0, 0.0)
    order = np.random.default_rng(2).permutation(idx.size)
    clock = fit_clock(idx[order], np.full(idx.size, 19), ticks[order], host[order], 400.0)
    assert clock.rate_hz == pytest.approx(399.0, rel=5e-5)
    assert np.all(np.abs(clock.time_s(idx) - t_first - 0.0075) < 0.005)


def test_segment_clock_memory_is_bounded() -> None:
    clock = SegmentClock(1000.0, max_points=64)
    for k in range(100_000):
        clock.add_frame(k * 19, 19, (k * 19_000) % WRAP, k * 0.019 + 0.01)
    assert len(clock._host.points()[0]) <= 64
    assert len(clock._device.points()[0]) <= 64
    assert clock.rate_hz == pytest.approx(1000.0, rel=1e-6)


# --------------------------------------------------------------------------- interval sets


def test_interval_set_against_a_python_set() -> None:
    rng = random.Random(4)
    s = IntervalSet()
    ref: set[int] = set()
    for _ in range(400):
        a = rng.randrange(0, 500)
        b = a + rng.randrange(0, 12)
        new = s.add(a, b)
        assert new == len(set(range(a, b)) - ref)
        ref |= set(range(a, b))
        lo, hi = sorted((rng.randrange(0, 520), rng.randrange(0, 520)))
        assert s.covered(lo, hi) == len([v for v in ref if lo <= v < hi])
        holes = [v for f, c in s.holes(lo, hi) for v in range(f, f + c)]
        assert holes == [v for v in range(lo, hi) if v not in ref]
        v = rng.randrange(0, 520)
        assert s.contains(v) == (v in ref)
    for a, b in s.intervals():
        assert a < b
    ints = s.intervals()
    assert all(ints[i][1] < ints[i + 1][0] for i in range(len(ints) - 1))


# --------------------------------------------------------------------------- stream tracker


def test_tracker_in_order_stream_has_no_loss() -> None:
    t = StreamTracker(400.0)
    for k in range(50):
        out = t.add(frame(k, 19 * k, flags=p.FLAG_STREAM_START if k == 0 else 0), host_s=k * 0.05)
        assert out.kind == "new" and out.boot == 0 and not out.new_boot
    assert t.samples_expected == t.samples_received == 50 * 19
    assert t.samples_lost == 0 and t.missing_seq_ranges() == [] and t.lost_ranges() == []
    (seg,) = t.segments()
    assert seg.started_by_stream_start and seg.first_seq == 0 and seg.end_seq == 50


def test_tracker_missing_frames_then_resend_fills_them() -> None:
    t = StreamTracker()
    for k in range(20):
        if k in (5, 6, 12):
            continue
        t.add(frame(k, 10 * k, n=10, flags=p.FLAG_STREAM_START if k == 0 else 0), host_s=k * 0.1)
    assert t.missing_seq_ranges() == [(5, 2), (12, 1)]
    assert t.lost_ranges() == [(0, 50, 20), (0, 120, 10)]
    assert t.samples_lost == 30 and t.samples_lost_on_device == 0
    # resend arrives, in reverse and with one duplicate
    assert t.add(frame(12, 120, n=10, flags=p.FLAG_RESENT), host_s=3.0).kind == "filled"
    assert t.add(frame(6, 60, n=10, flags=p.FLAG_RESENT), host_s=3.1).kind == "filled"
    assert t.add(frame(6, 60, n=10, flags=p.FLAG_RESENT), host_s=3.2).kind == "duplicate"
    assert t.add(frame(5, 50, n=10, flags=p.FLAG_RESENT)).kind == "filled"
    assert t.missing_seq_ranges() == [] and t.samples_lost == 0
    assert t.duplicates == 1 and t.resent_received == 3
    assert t.samples_received == 200


def test_tracker_status_reveals_a_lost_tail() -> None:
    t = StreamTracker()
    for k in range(10):
        t.add(frame(k, 19 * k))
    st = p.Status(1, 0, 0, 0, 0, 0, 0, 0, next_seq=14, next_sample_index=0, fw_version=(1, 0, 0),
                  fw_protocol_version=1, boot_id=77)  # fmt: skip
    assert not t.observe_status(st)
    assert t.boot_id == 77
    assert t.missing_seq_ranges() == [(10, 4)]


def test_tracker_device_gap_is_told_apart_from_radio_loss() -> None:
    t = StreamTracker()
    t.add(frame(0, 0, flags=p.FLAG_STREAM_START))
    t.add(frame(1, 19))
    # FIFO overflow on the device: 100 samples never read
    t.add(frame(2, 138, flags=p.FLAG_GAP_BEFORE))
    t.add(frame(3, 157))
    # radio loss of frame 5, then a device gap right after it: cannot be split yet
    t.add(frame(6, 500, flags=p.FLAG_GAP_BEFORE))
    assert t.device_gap_ranges() == [(0, 38, 100)]
    assert t.lost_ranges() == [(0, 38, 100), (0, 176, 324)]
    assert t.missing_seq_ranges() == [(4, 2)]
    t.add(frame(4, 176, flags=p.FLAG_RESENT))
    t.add(frame(5, 195, flags=p.FLAG_RESENT))
    assert t.device_gap_ranges() == [(0, 38, 100), (0, 214, 286)]
    assert t.samples_lost == t.samples_lost_on_device == 386
    assert t.missing_seq_ranges() == []


def test_tracker_stream_restart_makes_a_new_segment() -> None:
    t = StreamTracker()
    for k in range(5):
        t.add(frame(k, 19 * k, flags=p.FLAG_STREAM_START if k == 0 else 0), host_s=k * 0.05)
    # STOP ... START: indices keep counting, samples between streams are not expected
    for k in range(5, 10):
        t.add(
            frame(k, 1000 + 19 * (k - 5), flags=p.FLAG_STREAM_START if k == 5 else 0),
            host_s=10 + k * 0.05,
        )
    segs = t.segments()
    assert [(s.first_seq, s.end_seq, s.first_index, s.end_index) for s in segs] == [
        (0, 5, 0, 95),
        (5, 10, 1000, 1095),
    ]
    assert t.samples_lost == 0 and t.stream_starts == 2
    out = t.add(frame(10, 1095), host_s=11.0)
    assert out.clock is t.clock(0, 7) and out.clock is not t.clock(0, 2)


def test_tracker_late_stream_start_splits_the_segment() -> None:
    t = StreamTracker()
    for k in range(5):
        t.add(frame(k, 19 * k, flags=p.FLAG_STREAM_START if k == 0 else 0), host_s=k * 0.05)
    for k in range(6, 10):  # frame 5 (the STREAM_START) is lost
        t.add(frame(k, 1000 + 19 * (k - 5)), host_s=10 + k * 0.05)
    assert len(t.segments()) == 1
    assert t.missing_seq_ranges() == [(5, 1)]
    t.add(frame(5, 1000, flags=p.FLAG_STREAM_START | p.FLAG_RESENT), host_s=12.0)
    segs = t.segments()
    assert [(s.first_seq, s.first_index, s.end_index) for s in segs] == [
        (0, 0, 95),
        (5, 1000, 1095),
    ]
    assert t.samples_lost == 0
    # the clock points of frames 6..9 moved to the new segment's clock
    new_clock = t.clock(0, 6)
    assert new_clock is not None and new_clock is not t.clock(0, 1)
    assert new_clock._host.points()[0].min() >= 1000


def test_tracker_reboot_by_index_and_by_boot_id() -> None:
    t = StreamTracker()
    t.observe_boot_id(100)
    for k in range(30):
        t.add(frame(k, 19 * k, flags=p.FLAG_STREAM_START if k == 0 else 0))
    # device rebooted: seq and index start again
    out = t.add(frame(0, 0, flags=p.FLAG_STREAM_START))
    assert out.new_boot and out.boot == 1 and out.kind == "new"
    assert t.reboots == 1 and t.boot_id is None
    assert not t.observe_boot_id(200)  # the new boot learns its id
    t.add(frame(1, 19))
    # then a STATUS with yet another boot_id: another reboot, before any frame of it
    assert t.observe_boot_id(300)
    assert t.boot == 2
    t.add(frame(0, 0, flags=p.FLAG_STREAM_START))
    segs = t.segments()
    assert [(s.boot, s.boot_id, s.samples_expected) for s in segs] == [
        (0, 100, 570),
        (1, 200, 38),
        (2, 300, 19),
    ]
    assert t.samples_lost == 0


def test_tracker_live_duplicate_is_not_a_reboot() -> None:
    t = StreamTracker()
    t.add(frame(0, 0))
    t.add(frame(1, 19))
    out = t.add(frame(1, 19))
    assert out.kind == "duplicate" and not out.new_boot and t.reboots == 0


def test_tracker_mid_stream_connect_and_random_arrival_order() -> None:
    rng = random.Random(9)
    frames = [frame(k, 1000 + 19 * k) for k in range(100, 400)]
    lost = set(rng.sample(range(len(frames)), 40))
    t = StreamTracker()
    for i, f in enumerate(frames):
        if i not in lost:
            t.add(f)
    received = [frames[i].seq for i in range(len(frames)) if i not in lost]
    # Connected mid-stream: frames before the first received are not asked for, nor (without
    # a STATUS) those after the last.
    expected = sorted(frames[i].seq for i in lost if min(received) < frames[i].seq < max(received))
    missing = [s for first, c in t.missing_seq_ranges() for s in range(first, first + c)]
    assert missing == expected
    # the resend, shuffled, with duplicates
    resend = [
        p.decode_samples(p.encode_samples(p.FLAG_RESENT, f.seq, f.first_sample_index, 0, _ROW))
        for f in frames
    ]
    rng.shuffle(resend)
    for f in resend:
        t.add(f)
    assert t.missing_seq_ranges() == [] and t.samples_lost == 0
    assert t.duplicates == len(frames) - len(lost)
    assert t.samples_expected == 300 * 19
