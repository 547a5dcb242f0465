"""The SQLite session file: writer, reader, refusal of bad files, and survival of SIGKILL."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from tremorlift import protocol as p
from tremorlift.errors import UserError
from tremorlift.store.reader import SessionReader
from tremorlift.store.schema import FORMAT_VERSION
from tremorlift.store.session import SessionWriter

INFO = p.DeviceInfo(
    (1, 2, 3), 3, 255, 400, 8, 1000, 160, 4096, 328, 19, 512, 0xBEEF, 247, "TL-1A2B"
)


def _frames(
    n: int, rate_hz: float = 400.0, start_seq: int = 0, start_index: int = 0
) -> list[tuple[bytes, float]]:
    """n live frames of 19 samples with a known pattern, and their host arrival times."""
    out = []
    for k in range(n):
        first = start_index + 19 * k
        idx = np.arange(first, first + 19)
        rows = np.zeros((19, 6), np.int16)
        rows[:, 2] = 4096
        rows[:, 0] = (idx % 1000).astype(np.int16)
        rows[:, 3] = 328  # 10 deg/s
        flags = p.FLAG_STREAM_START if k == 0 else 0
        tick = int(round(1e6 * first / rate_hz)) % (1 << 30)
        out.append(
            (
                p.encode_samples(flags, start_seq + k, first, tick, rows),
                1.0 + (first + 18) / rate_hz + 0.01,
            )
        )
    return out


def _write(path: Path, frames: list[tuple[bytes, float]], **kw: object) -> None:
    with SessionWriter(path, background=False) as w:
        d = w.add_device("AA:BB:CC:DD:1A:2B", name="left", placement="forearm")
        w.add_info(d, p.encode_info(INFO), host_s=0.5)
        for raw, host_s in frames:
            w.add_frame(d, raw, host_s=host_s)


def test_round_trip_arrays_in_si_on_the_timeline(tmp_path: Path) -> None:
    path = tmp_path / "s.tlsession"
    frames = _frames(200)
    _write(path, frames)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not Path(str(path) + "-wal").exists()  # closed: one self-contained file
    with SessionReader(path) as r:
        assert r.meta["format_version"] == str(FORMAT_VERSION)
        (dev,) = r.devices()
        assert (dev.address, dev.name, dev.placement, dev.info) == (
            "AA:BB:CC:DD:1A:2B",
            "left",
            "forearm",
            INFO,
        )
        a = r.arrays(dev.device)
        assert len(a) == 200 * 19
        assert np.array_equal(a.sample_index, np.arange(200 * 19))
        assert np.allclose(a.accel_mps2[:, 2], 9.80665)
        assert np.allclose(a.accel_mps2[:, 0], (a.sample_index % 1000) * 9.80665 / 4096)
        assert np.allclose(a.gyro_radps[:, 0], np.deg2rad(10.0))
        assert np.all(np.diff(a.t_s) > 0)
        # sample k was taken at 1.0 + k / 400 s; the time base puts it there plus the 10 ms latency
        assert np.allclose(a.t_s, 1.0 + a.sample_index / 400.0 + 0.01, atol=1e-3)
        assert a.rate_hz[0] == pytest.approx(400.0, rel=1e-4)
        # raw bytes are kept exactly
        stored = r.frames(dev.device)
        assert [row[3] for row in stored] == [f for f, _ in frames]


def test_resend_fills_a_hole_and_a_duplicate_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "s.tlsession"
    frames = _frames(20)
    with SessionWriter(path, background=False) as w:
        d = w.add_device("dev")
        w.add_info(d, p.encode_info(INFO), host_s=0.0)
        for k, (raw, h) in enumerate(frames):
            if k != 7:
                w.add_frame(d, raw, host_s=h)
        w.add_frame(d, frames[3][0], host_s=9.0)  # duplicate: the first copy stays
        f7 = p.decode_samples(frames[7][0])
        resent = p.encode_samples(
            p.FLAG_RESENT, f7.seq, f7.first_sample_index, f7.tick_us, f7.samples_raw
        )
        w.add_frame(d, resent, host_s=9.5)
        w.flush()
        assert w.frames_written == 20
    with SessionReader(path) as r:
        rows = r.frames(d)
        assert [s for _, s, _, _ in rows] == list(range(20))
        assert rows[3][2] == frames[3][1]
        assert rows[7][3] == resent
        a = r.arrays(d)
        assert np.array_equal(a.sample_index, np.arange(20 * 19))
        # the resent frame's late arrival did not bend the time base
        assert np.allclose(a.t_s, 1.0 + a.sample_index / 400.0 + 0.01, atol=1e-3)


def test_boots_segments_and_two_devices(tmp_path: Path) -> None:
    path = tmp_path / "s.tlsession"
    with SessionWriter(path, background=False) as w:
        d1 = w.add_device("one")
        d2 = w.add_device("two", name="right")
        assert w.add_device("one") == d1
        for d in (d1, d2):
            w.add_info(d, p.encode_info(INFO), host_s=0.0)
        for raw, h in _frames(50):
            w.add_frame(d1, raw, host_s=h)
            w.add_frame(d2, raw, host_s=h + 0.002)
        # device one reboots: same seqs again in boot 1, 100 s later
        for raw, h in _frames(10):
            w.add_frame(d1, raw, boot=1, host_s=h + 100.0)
        w.add_event("rep_end", {"rep": 1, "mcv_mps": 0.61}, device=d1, host_s=3.0)
        w.add_event("alert", {"kind": "velocity_loss", "pct": 21.5}, host_s=4.0)
        w.add_analysis("set", {"reps": 5, "values": np.arange(3)}, device=d1)
        w.add_stats({"duplicates": 0, "corrupt": np.int64(2)}, device=d2)
        st = p.Status(1, 3700, 10, 0, 0, 0, 0, 0, 60, 1140, (1, 2, 3), 1, 0xBEEF)
        w.add_status(d1, p.encode_status(st), host_s=2.0)
    with SessionReader(path) as r:
        arrays = r.all_arrays()
        assert set(arrays) == {d1, d2}
        a1 = arrays[d1]
        assert len(a1) == 60 * 19
        assert set(a1.boot.tolist()) == {0, 1} and set(a1.segment.tolist()) == {0, 1}
        assert np.all(np.diff(a1.t_s) > 0)
        assert a1.t_s[a1.boot == 1].min() > 100.0
        assert arrays[d2].name == "right"
        assert np.allclose(arrays[d2].t_s - a1.t_s[a1.boot == 0], 0.002, atol=1e-3)  # one timeline
        assert [e.kind for e in r.events()] == ["rep_end", "alert"]
        assert r.events("alert")[0].data == {"kind": "velocity_loss", "pct": 21.5}
        assert r.analyses()[0].data["values"] == [0, 1, 2]
        assert r.stats()[0].data == {"corrupt": 2, "duplicates": 0}
        assert r.statuses(d1)[0][2] == st


def test_writer_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "s.tlsession"
    path.write_text("precious")
    with pytest.raises(UserError, match="already exists"):
        SessionWriter(path)
    assert path.read_text() == "precious"
    with pytest.raises(UserError, match="cannot create"):
        SessionWriter(tmp_path / "no" / "dir" / "s.tlsession")


def test_writer_rejects_bad_messages_before_storing(tmp_path: Path) -> None:
    with SessionWriter(tmp_path / "s.tlsession", background=False) as w:
        d = w.add_device("x")
        with pytest.raises(p.ProtocolError):
            w.add_frame(d, b"\x01\x01\x00")
        with pytest.raises(p.ProtocolError):
            w.add_info(d, b"\x01\x04")
    w.close()  # closing twice is harmless
    with pytest.raises(ValueError):
        w.add_event("late")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reader_refuses_bad_files_without_touching_them(tmp_path: Path) -> None:
    good = tmp_path / "good.tlsession"
    _write(good, _frames(300))
    cases: dict[str, tuple[bytes | None, str]] = {}
    # not SQLite at all
    cases["text.tlsession"] = (b"time,ax\n0,1\n" * 50, "not a readable")
    # truncated: a session cut short
    data = good.read_bytes()
    cases["trunc.tlsession"] = (data[: len(data) // 2], "damaged|not a readable")
    # corrupt: a page of garbage in the middle
    mangled = bytearray(data)
    mangled[8192:12288] = os.urandom(4096)
    cases["mangled.tlsession"] = (bytes(mangled), "damaged|not a readable")
    for name, (content, pattern) in cases.items():
        path = tmp_path / name
        assert content is not None
        path.write_bytes(content)
        before = _digest(path)
        with pytest.raises(UserError, match=pattern) as e:
            with SessionReader(path) as r:
                for d in r.devices():
                    r.arrays(d.device)
        assert str(path) in str(e.value)
        assert _digest(path) == before
    # another SQLite database
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t(x)")
    con.commit()
    con.close()
    before = _digest(other)
    with pytest.raises(UserError, match="not a tremorlift session"):
        SessionReader(other)
    assert _digest(other) == before
    # a newer format version
    newer = tmp_path / "newer.tlsession"
    newer.write_bytes(good.read_bytes())
    con = sqlite3.connect(newer)
    con.execute(
        "UPDATE meta SET value = ? WHERE key = 'format_version'", (str(FORMAT_VERSION + 1),)
    )
    con.commit()
    con.close()
    before = _digest(newer)
    with pytest.raises(UserError, match="newer"):
        SessionReader(newer)
    assert _digest(newer) == before
    with pytest.raises(UserError, match="no such"):
        SessionReader(tmp_path / "missing.tlsession")


def test_background_commit_without_further_writes(tmp_path: Path) -> None:
    path = tmp_path / "s.tlsession"
    w = SessionWriter(path, commit_interval_s=0.1)
    try:
        d = w.add_device("x")
        w.add_info(d, p.encode_info(INFO), host_s=0.0)
        for raw, h in _frames(5):
            w.add_frame(d, raw, host_s=h)
        deadline = time.monotonic() + 5.0
        while w.commits == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        # a second connection sees the frames while the writer is still open
        with SessionReader(path) as r:
            assert r.frame_count() == 5
    finally:
        w.close()


_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from tremorlift import protocol as p
    from tremorlift.store.session import SessionWriter
    info = p.DeviceInfo((1, 2, 3), 3, 255, 400, 8, 1000, 160, 4096, 328, 19, 512, 1, 247, "TL-1A2B")
    w = SessionWriter(sys.argv[1])
    d = w.add_device("AA")
    w.add_info(d, p.encode_info(info))
    rows = np.ones((19, 6), np.int16)
    seq = 0
    while True:
        w.add_frame(d, p.encode_samples(4 if seq == 0 else 0, seq, 19 * seq, 0, rows))
        if seq % 10 == 0:
            print(seq, time.monotonic(), flush=True)
        seq += 1
        time.sleep(0.001)
    """
)


def test_sigkill_loses_at_most_the_last_second(tmp_path: Path) -> None:
    path = tmp_path / "killed.tlsession"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the writer is up and writing
        assert first.startswith("0 "), proc.stderr.read() if proc.stderr else ""
        time.sleep(2.0)
        t_kill = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    progress = [
        (int(s), float(t)) for s, t in (line.split() for line in (first + out).splitlines())
    ]
    must_have = max(s for s, t in progress if t <= t_kill - 1.0)
    assert must_have >= 500  # the child really wrote for a while
    with SessionReader(path) as r:
        (dev,) = r.devices()
        seqs = [s for _, s, _, _ in r.frames(dev.device)]
        assert seqs == list(range(len(seqs)))  # a prefix: nothing in the middle missing
        assert len(seqs) > must_have
        a = r.arrays(dev.device)
        assert len(a) == 19 * len(seqs)


def test_write_errors_are_reported_not_swallowed(tmp_path: Path) -> None:
    path = tmp_path / "s.tlsession"
    w = SessionWriter(path, background=False)
    d = w.add_device("x")
    w.add_frame(d, _frames(1)[0][0], host_s=1.0)
    w.flush()
    # the database becomes unwritable under the writer (as with a full disk or a lost volume)
    w._db.execute("PRAGMA query_only = ON")
    w.add_frame(d, _frames(2)[1][0], host_s=2.0)
    with pytest.raises(UserError, match="cannot write"):
        w.flush()
    with pytest.raises(UserError, match="cannot write"):
        w.add_event("after")
    w.close()
    with SessionReader(path) as r:
        assert r.frame_count() == 1


def test_a_full_disk_says_so_and_keeps_what_was_saved(tmp_path: Path) -> None:
    path = tmp_path / "s.tlsession"
    w = SessionWriter(path, background=False)
    d = w.add_device("AA:BB:CC:DD:1A:2B")
    w.add_info(d, p.encode_info(INFO), host_s=0.5)
    frames = _frames(400)
    for raw, host_s in frames[:10]:
        w.add_frame(d, raw, host_s=host_s)
    w.flush()
    # The file may not grow any more: SQLite answers as it does on a full disk (SQLITE_FULL).
    pages = w._db.execute("PRAGMA page_count").fetchone()[0]
    w._db.execute(f"PRAGMA max_page_count = {pages + 1}")
    with pytest.raises(UserError, match="the disk is full") as err:
        for raw, host_s in frames[10:]:
            w.add_frame(d, raw, host_s=host_s)
        w.flush()
    assert "rollback" not in str(err.value)  # not SQLite's follow-up complaint
    with pytest.raises(UserError, match="the disk is full"):
        w.add_event("after")
    w.close()
    with SessionReader(path) as r:
        assert r.frame_count() >= 10  # everything saved before is there
        assert len(r.arrays(d)) >= 10 * 19


def test_wal_files_are_private_while_recording(tmp_path: Path) -> None:
    path = tmp_path / "s.tlsession"
    with SessionWriter(path, background=False) as w:
        d = w.add_device("x")
        w.add_frame(d, _frames(1)[0][0], host_s=1.0)
        w.flush()
        for suffix in ("", "-wal", "-shm"):
            side = Path(str(path) + suffix)
            assert side.exists() and stat.S_IMODE(side.stat().st_mode) == 0o600, suffix
