"""Faults injected into the twin while the collector records: nothing is lost that the wearable
still holds, and what is lost for good is recorded as an explicit gap, never bridged."""

from __future__ import annotations

import asyncio
import json
import logging

import numpy as np
import pytest
from tremorlift.collect.collector import CollectOptions
from tremorlift.collect.setup import CollectConfig, collect
from tremorlift.store.reader import SessionReader
from tremorlift.twin.radio.faults import FaultInjector, parse_inject

pytestmark = pytest.mark.slow
SPEED = 4.0


def _run(tmp_path, spec, duration_s, **kw):
    logging.getLogger("bumble").setLevel(logging.ERROR)
    cfg = CollectConfig(
        devices=[], simulate="squat-5x5", speed=SPEED, session_path=str(tmp_path / "s.tlsession"),
        summary_json=str(tmp_path / "summary.json"), ui=False, scan_timeout_s=1.0,
        options=CollectOptions(duration_s=duration_s, analyse=False), **kw,
    )  # fmt: skip
    lines: list[str] = []
    summary = asyncio.run(
        collect(cfg, lines.append, None, FaultInjector(parse_inject(spec), lines.append))
    )
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(json.dumps(summary))
    return summary, lines


def _arrays(tmp_path):
    with SessionReader(tmp_path / "s.tlsession") as r:
        arrays = r.all_arrays()
        infos = r.infos(1)
    assert len(arrays) == 1
    return next(iter(arrays.values())), infos


def test_short_disconnect_and_lost_notifications_lose_nothing(tmp_path):
    summary, lines = _run(tmp_path, "drop=0.05,disconnect@8:2", 12.0)
    rec = summary["recovery"]
    assert [i["kind"] for i in summary["injected"]] == ["drop", "disconnect"]
    # One outage; a handshake whose answer was among the lost notifications is simply retried.
    assert rec["disconnects"] == 1 and rec["reconnects"] >= 1, "\n".join(lines)
    assert rec["samples_recovered_by_resend"] > 0  # drop=0.05 did cost frames, and they came back
    assert summary["samples_lost"] == 0, (rec, "\n".join(lines))
    assert summary["samples_received"] >= 0.7 * 12 * SPEED * 200
    a, _ = _arrays(tmp_path)
    assert np.all(np.diff(a.sample_index) == 1)  # one segment, every index present
    assert np.all(np.diff(a.t_s) > 0)


@pytest.fixture(scope="module")
def long_outage(tmp_path_factory):
    # 60 s of the wearable's time without a link: far past its resend ring.
    tmp_path = tmp_path_factory.mktemp("outage")
    summary, lines = _run(tmp_path, "disconnect@6:60", 22.0)
    a, _ = _arrays(tmp_path)
    return summary, lines, a


def test_outage_longer_than_the_ring_is_an_explicit_gap(long_outage):
    summary, lines, a = long_outage
    dev = summary["devices"][0]
    assert dev["disconnects"] == 1, lines
    assert summary["samples_lost"] > 0
    ranges = summary["recovery"]["lost_ranges"]
    assert ranges and sum(r[3] for r in ranges) == summary["samples_lost"]
    biggest = max(ranges, key=lambda r: r[3])
    assert biggest[3] >= 20 * 200  # most of the outage, in samples
    assert summary["recovery"]["samples_lost_on_device"] == 0  # lost on the link, not the IMU
    # The session keeps the hole: sample indices jump across it by exactly what was lost.
    jumps = np.flatnonzero(np.diff(a.sample_index) > 1)
    assert jumps.size >= 1
    j = jumps[np.argmax(np.diff(a.sample_index)[jumps])]
    assert int(a.sample_index[j + 1] - a.sample_index[j] - 1) == biggest[3]
    assert np.all(np.diff(a.t_s) > 0)


def test_outage_gap_keeps_its_duration_on_the_timeline(long_outage):
    _, _, a = long_outage
    d = np.diff(a.sample_index)
    j = int(np.argmax(d))
    gap_s = float(a.t_s[j + 1] - a.t_s[j])
    # The session runs on the wearable's timeline (the twin's speed-up is taken out).
    assert gap_s == pytest.approx(int(d[j]) / 200, rel=0.05)


def test_reboot_opens_a_new_segment_on_the_same_timeline(tmp_path):
    summary, lines = _run(tmp_path, "reboot@8", 10.0)
    rec = summary["recovery"]
    assert rec["reboots_seen"] == 1, lines
    assert rec["reconnects"] == 1
    assert summary["samples_lost"] == 0
    a, infos = _arrays(tmp_path)
    assert sorted(set(a.boot.tolist())) == [0, 1]
    assert len(set(a.segment.tolist())) == 2
    assert len({i.boot_id for _, _, i in infos}) == 2
    assert np.all(np.diff(a.t_s) > 0)  # the second boot follows the first on one timeline
    first_of_new = int(np.flatnonzero(a.boot == 1)[0])
    assert a.sample_index[first_of_new] == 0  # indices restart after the reset
    assert np.count_nonzero(a.boot == 1) > 2 * SPEED * 200  # and the stream goes on


def test_reboot_on_serial_restarts_the_stream(tmp_path):
    # The USB link survives the reset: only STATUS (new boot_id, not streaming) tells, and the
    # collector must start the stream again rather than wait on a silent wearable.
    summary, lines = _run(tmp_path, "reboot@6", 8.0, serial="twin")
    rec = summary["recovery"]
    assert rec["reboots_seen"] == 1, lines
    assert summary["samples_lost"] == 0
    a, _ = _arrays(tmp_path)
    assert np.count_nonzero(a.boot == 1) > 4 * SPEED * 200, lines
    assert np.all(np.diff(a.t_s) > 0)


def test_corrupt_serial_frames_are_dropped_and_resent(tmp_path):
    summary, lines = _run(tmp_path, "corrupt=0.01", 10.0, serial="twin")
    assert summary["transport"] == "serial-twin"
    rec = summary["recovery"]
    assert (
        summary["frames_corrupt"] > 0 and rec["frames_corrupt_dropped"] == summary["frames_corrupt"]
    )
    assert rec["frames_resent"] > 0
    assert summary["samples_lost"] == 0, (rec, lines)


def test_i2c_errors_are_counted_and_the_stream_goes_on(tmp_path):
    summary, lines = _run(tmp_path, "i2c-error=0.02", 8.0)
    counters = summary["devices"][0]["device_counters"]
    assert counters["i2c_errors"] > 10, lines
    assert summary["recovery"]["i2c_errors"] == counters["i2c_errors"]
    # Retried reads lose nothing; a re-initialised IMU shows as a device-side gap, nothing else.
    rec = summary["recovery"]
    assert rec["samples_lost_in_transit"] == 0
    if counters["imu_reinits"] == 0:
        assert rec["samples_lost_on_device"] == 0
    assert summary["samples_received"] >= 0.7 * 8 * SPEED * 200


def test_fifo_overflow_is_a_device_gap(tmp_path):
    summary, lines = _run(tmp_path, "fifo-overflow@6", 8.0)
    dev = summary["devices"][0]
    assert dev["device_counters"]["fifo_overflows"] >= 1
    assert "FIFO_OVERFLOW" in dev["device_counters"]["flags"]
    gaps = dev["device_gap_ranges"]
    assert len(gaps) == 1, (gaps, lines)
    rec = summary["recovery"]
    # Twice what the FIFO holds was not read; about half of it overflowed and is gone.
    assert rec["samples_lost_on_device"] == gaps[0][2] > 50
    assert rec["samples_lost_in_transit"] == 0
    assert summary["samples_lost"] == rec["samples_lost_on_device"]
    a, _ = _arrays(tmp_path)
    j = np.flatnonzero(np.diff(a.sample_index) > 1)
    assert j.size == 1 and int(a.sample_index[j[0] + 1] - a.sample_index[j[0]] - 1) == gaps[0][2]
