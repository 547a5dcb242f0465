"""End to end: the collector against the digital twin (firmware on an emulated board, Bumble
radio, bleak with the twin backend; or the twin's USB serial port on a pseudo-terminal)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from tremorlift.collect.collector import CollectOptions
from tremorlift.collect.setup import CollectConfig, collect
from tremorlift.store.reader import SessionReader

pytestmark = pytest.mark.slow


def _run(tmp_path, hook=None, **kw):
    duration_s = kw.pop("duration_s")
    cfg = CollectConfig(
        devices=[], session_path=str(tmp_path / "s.tlsession"), summary_json=str(tmp_path / "summary.json"),
        ui=False, scan_timeout_s=1.0, options=CollectOptions(duration_s=duration_s), **kw,
    )  # fmt: skip
    lines: list[str] = []
    summary = asyncio.run(collect(cfg, lines.append, None, hook))
    # On failure, say where samples went: device-side FIFO gaps, host queue, link.
    keys = (
        "samples_lost",
        "samples_lost_on_device",
        "fifo_overflows",
        "frames_resent",
        "resend_requests",
        "lost_ranges",
        "host_queue_overflows",
        "disconnects",
        "reconnects",
    )
    lines.append(repr([{k: d.get(k) for k in keys} for d in summary["devices"]]))
    return summary, lines


def _check_session(tmp_path, summary, rate_hz):
    with SessionReader(tmp_path / "s.tlsession") as r:
        arrays = r.all_arrays()
    assert len(arrays) == len(summary["devices"])
    for a in arrays.values():
        assert (
            len(a) == sum(d["samples_received"] for d in summary["devices"]) // len(arrays)
            or len(arrays) > 1
        )
        dt = np.diff(a.t_s)
        assert np.all(dt > 0)
        # The session's time base is host time; the twin runs faster than the host by `speed`.
        return a


def test_ble_400hz_60s_of_device_time_loses_nothing(tmp_path):
    speed = 3.0
    summary, lines = _run(
        tmp_path, simulate="squat-5x5", speed=speed, odr_hz=400, duration_s=60 / speed + 1
    )
    assert summary["transport"] == "ble-twin"
    assert summary["samples_lost"] == 0, lines
    assert summary["frames_corrupt"] == 0
    assert summary["samples_received"] == summary["samples_expected"]
    # 60 s of the wearable's time at 400 Hz, less the few seconds of connecting.
    assert summary["samples_received"] >= 0.85 * 60 * 400, summary
    dev = summary["devices"][0]
    assert dev["att_mtu"] == 247
    assert abs(dev["rate_hz"] - 400) < 2
    a = _check_session(tmp_path, summary, 400)
    assert len(a) == summary["samples_received"]
    # The session is on the wearable's timeline even though the twin ran 3x faster.
    assert 1.0 / float(np.median(np.diff(a.t_s))) == pytest.approx(400, rel=0.01)
    # Still between reps, |a| is gravity: the samples decode to physical units.
    assert 9.0 < float(np.median(np.linalg.norm(a.accel_mps2, axis=1))) < 10.6


def test_link_drop_mid_session_reconnects_into_the_same_session(tmp_path):
    async def drop_once(collector, fleet):
        await asyncio.sleep(4.0)
        w = fleet.wearables[0]
        assert fleet.radio.drop_link(w.address) == 2

    summary, lines = _run(
        tmp_path, hook=drop_once, simulate="squat-5x5", speed=2.0, duration_s=14.0
    )
    dev = summary["devices"][0]
    assert dev["disconnects"] == 1, lines
    assert summary["reconnects"] == 1
    # The wearable kept sampling into its ring while the link was down; what it could not
    # notify went out after the reconnect, or was resent on request.
    assert summary["samples_lost"] == 0, (summary, lines)
    assert summary["samples_received"] >= 0.8 * 14 * 2 * 200
    with SessionReader(tmp_path / "s.tlsession") as r:
        kinds = [e.kind for e in r.events()]
        assert "disconnect" in kinds and "reconnect" in kinds
        assert len(r.devices()) == 1


def test_serial_400hz_loses_nothing(tmp_path):
    speed = 2.0
    summary, lines = _run(
        tmp_path, simulate="squat-5x5", serial="twin", speed=speed, odr_hz=400, duration_s=10.0
    )
    assert summary["transport"] == "serial-twin"
    assert summary["samples_lost"] == 0, lines
    assert summary["frames_corrupt"] == 0
    assert summary["samples_received"] >= 0.8 * 10 * speed * 400
    a = _check_session(tmp_path, summary, 400)
    assert len(a) == summary["samples_received"]
