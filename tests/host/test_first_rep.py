"""Rep 1 told as soon as it ends, before its set is recognised (analysis/first_rep.py), and what
the live state and the event stream make of the claim."""

from __future__ import annotations

import numpy as np
import pytest
from tremorlift.analysis import Engine
from tremorlift.analysis import first_rep as fr
from tremorlift.analysis.bounds import rep_columns
from tremorlift.analysis.events import Event
from tremorlift.collect.collector import CollectOptions, Collector
from tremorlift.store.session import SessionWriter
from tremorlift.twin.motion.generator import generate

FS_HZ = 100.0
DEPTH_M = 0.4
REP_S = 2.5


def _squat_columns(rest_before_s: float, rest_after_s: float, seed: int = 0):
    """A wrist that rests, squats once (down DEPTH_M and back up, a cosine in REP_S) and rests:
    the columns the engine gives the watch (t, vertical accel, gyro, still flag, |a_lin|)."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, rest_before_s + REP_S + rest_after_s, 1.0 / FS_HZ)
    tau = np.clip(t - rest_before_s, 0.0, REP_S)
    moving = (t >= rest_before_s) & (t <= rest_before_s + REP_S)
    w = 2.0 * np.pi / REP_S
    a_vert = np.where(moving, -0.5 * DEPTH_M * w**2 * np.cos(w * tau), 0.0)
    a_vert = a_vert + rng.normal(0.0, 0.02, t.size)
    gyro = rng.normal(0.0, 0.01, (t.size, 3))
    still = np.zeros(t.size)
    return t, a_vert, gyro, still, np.abs(a_vert)


def _watch(cols, block_n: int, set_open=lambda t_s: False):
    t, a, g, s, lin = cols
    w = fr.FirstRepWatch(FS_HZ, 1.0)
    out = []
    for i in range(0, t.size, block_n):
        j = min(i + block_n, t.size)
        w.push(rep_columns(t[i:j], a[i:j], g[i:j], s[i:j], lin[i:j]))
        for kind, rep in w.check(set_open(float(t[j - 1]))):
            out.append((kind, float(t[j - 1]), rep))
    return out


def test_a_lone_squat_after_rest_is_told_at_its_end_and_withdrawn_when_no_set_follows():
    cols = _squat_columns(rest_before_s=3.0, rest_after_s=fr.WITHDRAW_S + 2.0)
    found = _watch(cols, block_n=5)
    assert [k for k, _, _ in found] == ["rep_provisional", "rep_withdrawn"]
    (_, told_at_s, rep), (_, withdrawn_at_s, _) = found
    end_s = 3.0 + REP_S
    assert rep is not None and abs(rep.end_s - end_s) < 0.3
    assert told_at_s - end_s < 0.5  # as soon as it ends
    # Up DEPTH_M in half the rep, a cosine: mean concentric speed 2 * DEPTH_M / REP_S.
    assert rep.mean_concentric_velocity_mps == pytest.approx(2 * DEPTH_M / REP_S, rel=0.15)
    assert withdrawn_at_s == pytest.approx(rep.end_s + fr.WITHDRAW_S, abs=0.3)


def test_the_claim_does_not_depend_on_how_the_stream_is_cut():
    cols = _squat_columns(rest_before_s=3.0, rest_after_s=3.0)
    runs = []
    for n in (1, 7, 50, 1000):
        runs.append(
            [
                (k, rep and round(rep.mean_concentric_velocity_mps, 6))
                for k, _, rep in _watch(cols, n)
            ]
        )
    assert runs[0] and all(r == runs[0] for r in runs)


def test_no_claim_without_rest_before_nor_while_a_set_is_open():
    # Moving straight in (no REST_MIN_S of calm before the movement): no claim.
    assert _watch(_squat_columns(rest_before_s=0.2, rest_after_s=3.0), 10) == []
    # A set already recognised: its reps are the set's, not claims.
    assert _watch(_squat_columns(3.0, 3.0), 10, set_open=lambda t_s: True) == []


def test_a_recognised_set_settles_the_claim():
    cols = _squat_columns(rest_before_s=3.0, rest_after_s=fr.WITHDRAW_S + 2.0)
    # The set is recognised 4 s after the rep ends, and over again 2 s later.
    found = _watch(cols, 10, set_open=lambda t_s: 3.0 + REP_S + 4.0 <= t_s <= 3.0 + REP_S + 6.0)
    assert [k for k, _, _ in found] == ["rep_provisional"]  # never withdrawn


def test_engine_tells_a_twin_curl_set_rep_1_before_the_set_and_keeps_its_result():
    dev = generate("curl-3x10", 100, sample_rate_hz=200.0).devices[0]
    truth = dev.truth["sets"][2]["reps"][0]  # rep 1 of set 3 (a rest before it)
    eng = Engine(200.0, placement=dev.placement)
    events: list[tuple[Event, float]] = []
    n = 10  # 50 ms blocks, as live
    for i in range(0, dev.t_s.size, n):
        j = min(i + n, dev.t_s.size)
        for ev in eng.feed(dev.t_s[i:j], dev.accel_mps2[i:j], dev.gyro_radps[i:j]):
            events.append((ev, float(dev.t_s[j - 1])))
    claims = [
        (ev, fed) for ev, fed in events
        if ev.kind == "rep_provisional" and abs(ev.t_s - truth["end_s"]) < 0.6
    ]  # fmt: skip
    assert len(claims) == 1
    claim, told_at_s = claims[0]
    assert told_at_s - truth["end_s"] < 0.5
    assert claim.data["mean_concentric_velocity_mps"] == pytest.approx(
        truth["mean_concentric_velocity_mps"], rel=0.25
    )
    set_starts = [fed for ev, fed in events if ev.kind == "set_start" and fed > told_at_s]
    assert set_starts and set_starts[0] - told_at_s > 1.0  # it came well before the set


def test_live_state_and_event_stream_show_the_claim_then_the_set(tmp_path):
    session = SessionWriter(tmp_path / "s.tlsession", background=False)
    collector = Collector(session, CollectOptions(), transport="ble")
    ch = collector.add_device("TL-TEST", lambda _ch: None)  # type: ignore[arg-type,return-value]
    published: list[dict] = []
    collector.listeners.append(published.append)
    lift = collector.lifts[id(ch)]
    claim = {"start_s": 10.0, "end_s": 12.5, "mean_concentric_velocity_mps": 0.41, "rep": 1,
             "zone": "fresh", "quality": 0.8}  # fmt: skip
    collector.on_engine_event(ch, Event(12.5, "rep_provisional", claim))
    assert (lift.rep_number, lift.rep_provisional, lift.last_rep_velocity_mps) == (1, True, 0.41)
    collector.on_engine_event(ch, Event(24.5, "rep_withdrawn", {}))
    assert (lift.rep_number, lift.rep_provisional, lift.last_rep_velocity_mps) == (0, False, None)
    collector.on_engine_event(ch, Event(40.0, "rep_provisional", dict(claim, end_s=40.0)))
    collector.on_engine_event(ch, Event(37.5, "set_start", {"kind": "dynamic"}))
    assert (lift.rep_number, lift.rep_provisional) == (0, False)
    collector.on_engine_event(ch, Event(40.0, "rep", dict(claim, velocity_loss_pct=0.0)))
    assert (lift.rep_number, lift.rep_provisional) == (1, False)
    types = [e["type"] for e in published]
    assert types == ["rep_provisional", "rep_withdrawn", "rep_provisional", "set_start", "rep"]
    assert published[0]["set"] == 1 and published[0]["velocity_mps"] == 0.41
    session.close()


def test_claims_never_change_the_result_so_offline_runs_skip_them():
    from tremorlift.analysis import run_engine

    dev = generate("squat-5x5", 3, sample_rate_hz=200.0).devices[0]
    results = []
    for live in (True, False):
        eng = Engine(200.0, placement=dev.placement, live=live)
        results.append(run_engine(eng, dev.t_s, dev.accel_mps2, dev.gyro_radps, 10))
    assert results[0] == results[1]


def test_a_hold_that_begins_takes_the_claim_back_at_once():
    cols = _squat_columns(rest_before_s=3.0, rest_after_s=fr.WITHDRAW_S + 2.0)
    t, a, g, s, lin = cols
    w = fr.FirstRepWatch(FS_HZ, 1.0)
    kinds = []
    withdrawn = False
    for i in range(0, t.size, 10):
        k = slice(i, i + 10)
        w.push(rep_columns(t[k], a[k], g[k], s[k], lin[k]))
        kinds += [k for k, _ in w.check(False)]
        if kinds == ["rep_provisional"] and t[i] > 3.0 + REP_S + 1.0 and not withdrawn:
            assert w.withdraw() is True  # the engine's hold started: it says rep_withdrawn
            assert w.withdraw() is False
            withdrawn = True
    assert withdrawn and kinds == ["rep_provisional"]  # no second withdrawal later


def test_the_collector_says_why_a_claim_was_withdrawn(tmp_path):
    session = SessionWriter(tmp_path / "s.tlsession", background=False)
    collector = Collector(session, CollectOptions(), transport="ble")
    ch = collector.add_device("TL-TEST", lambda _ch: None)  # type: ignore[arg-type,return-value]
    lines: list[str] = []
    collector.emit_line = lines.append
    claim = {"start_s": 1.0, "end_s": 3.0, "mean_concentric_velocity_mps": 0.3}
    collector.on_engine_event(ch, Event(3.0, "rep_provisional", claim))
    collector.on_engine_event(ch, Event(5.0, "rep_withdrawn", {"reason": "hold"}))
    assert any("withdrawn: a hold began" in line for line in lines), lines
    session.close()
