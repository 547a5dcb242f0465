"""Damaged, truncated, foreign and too-new session files given to analyze / report / export:
one clear error line, exit status 2, nothing written, and the file itself left untouched."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tremorlift import protocol as p
from tremorlift.cli import main
from tremorlift.store.schema import FORMAT_VERSION
from tremorlift.store.session import SessionWriter

INFO = p.DeviceInfo(
    (0, 1, 0), 3, 255, 200, 8, 1000, 100, 4096, 328, 19, 300, 0x1234, 247, "TL-0001"
)
COMMANDS = ("analyze", "report", "export")


def _good(path: Path, n_frames: int = 400) -> Path:
    with SessionWriter(path, background=False) as w:
        d = w.add_device("AA:BB:CC:DD:00:01", name="TL-0001", placement="forearm")
        w.add_info(d, p.encode_info(INFO), host_s=0.1)
        rows = np.zeros((19, 6), np.int16)
        rows[:, 2] = 4096
        for k in range(n_frames):
            flags = p.FLAG_STREAM_START if k == 0 else 0
            raw = p.encode_samples(flags, k, 19 * k, (19 * k * 5000) % (1 << 30), rows)
            w.add_frame(d, raw, host_s=0.2 + (19 * k + 18) / 200.0)
    return path


def _sql(path: Path, statement: str, *args: object) -> None:
    con = sqlite3.connect(path)
    con.execute(statement, args)
    con.commit()
    con.close()


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _garbage_pages(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[4096:12288] = os.urandom(8192)
    path.write_bytes(bytes(data))


def _newer_format(path: Path) -> None:
    _sql(path, "UPDATE meta SET value = ? WHERE key = 'format_version'", str(FORMAT_VERSION + 1))


def _damaged_frame(path: Path) -> None:
    _sql(path, "UPDATE frames SET raw = ? WHERE seq = 7", b"\x01\x01\x00\x05garbage")


def _damaged_info(path: Path) -> None:
    _sql(path, "UPDATE infos SET raw = ?", b"\x02\x04" + bytes(30))


def _info_not_physical(path: Path) -> None:
    # A scale of 100 counts per g would decode a full-scale count as 327.7 g.
    _sql(path, "UPDATE infos SET raw = ?", p.encode_info(replace(INFO, accel_lsb_per_g=100)))


def _not_a_session(path: Path) -> None:
    path.unlink()
    _sql(path, "CREATE TABLE t(x)")


def _text(path: Path) -> None:
    path.write_bytes(b"\x00\xff not a database " * 100)


DAMAGE = {
    "truncated": (_truncated, "damaged|not a readable"),
    "garbage_pages": (_garbage_pages, "damaged|not a readable"),
    "newer_format": (_newer_format, "newer"),
    "damaged_frame": (_damaged_frame, "damaged frame"),
    "damaged_info": (_damaged_info, "damaged INFO"),
    "info_not_physical": (_info_not_physical, "327.7 g, beyond 50 g"),
    "foreign_sqlite": (_not_a_session, "not a tremorlift session"),
    "binary_junk": (_text, ""),
}


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _good(tmp_path_factory.mktemp("good") / "good.tlsession").read_bytes()


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_bad_session_one_error_exit_2_file_untouched(tmp_path, good_bytes, capsys, command, damage):
    path = tmp_path / "s.tlsession"
    path.write_bytes(good_bytes)
    make_bad, pattern = DAMAGE[damage]
    make_bad(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    before = sorted(tmp_path.iterdir())
    argv = [command, str(path)]
    if command == "analyze":
        argv += ["--json", str(tmp_path / "out.json")]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one clear line, no traceback
    assert "Traceback" not in err and path.name in lines[0]
    if pattern:
        assert any(word in lines[0] for word in pattern.split("|")), lines[0]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert sorted(tmp_path.iterdir()) == before  # no report/export folder, no JSON, no journal


def test_the_good_session_is_accepted(tmp_path, good_bytes, capsys):
    # The control: the same file undamaged analyses fine, so the refusals above are the damage's.
    path = tmp_path / "s.tlsession"
    path.write_bytes(good_bytes)
    assert main(["analyze", str(path), "--json", str(tmp_path / "out.json")]) == 0
    assert (tmp_path / "out.json").is_file()
