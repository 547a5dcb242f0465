"""store.files: a file is written whole or not at all, with the permissions the umask gives (0600
when private), and several staged files appear together."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from tremorlift.errors import UserError
from tremorlift.store.files import StagedFiles, write_atomic


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_replace_and_permissions(tmp_path: Path, umask: None) -> None:
    path = tmp_path / "out.json"
    write_atomic(path, "first\n")
    assert path.read_text() == "first\n" and _mode(path) == 0o644
    write_atomic(path, b"\x00second")
    assert path.read_bytes() == b"\x00second" and _mode(path) == 0o644
    os.umask(0o077)
    write_atomic(path, "third")
    assert path.read_text() == "third" and _mode(path) == 0o600
    os.umask(0)
    write_atomic(path, "private", private=True)
    assert path.read_text() == "private" and _mode(path) == 0o600
    assert _leftovers(tmp_path) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()  # a folder where the file should go: the rename fails
    (tmp_path / "taken" / "x").write_text("kept")
    with pytest.raises(UserError, match=r"taken: cannot write"):
        write_atomic(tmp_path / "taken", "new")
    assert (tmp_path / "taken" / "x").read_text() == "kept"
    assert _leftovers(tmp_path) == []
    with pytest.raises(UserError, match="cannot write"):
        write_atomic(tmp_path / "no-such-folder" / "f.txt", "x")


def test_staged_files_appear_together_or_not_at_all(tmp_path: Path, umask: None) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    b.write_text("old b")
    with pytest.raises(RuntimeError), StagedFiles() as staged:
        staged.stage(a).write_text("new a")
        staged.stage(b).write_text("new b")
        assert len(_leftovers(tmp_path)) == 2
        raise RuntimeError("the writer failed")
    assert not a.exists() and b.read_text() == "old b" and _leftovers(tmp_path) == []
    with StagedFiles(private=True) as staged:
        staged.stage(a).write_text("new a")
        staged.stage(b).write_text("new b")
        assert not a.exists()
        staged.commit()
    assert a.read_text() == "new a" and b.read_text() == "new b"
    assert _mode(a) == _mode(b) == 0o600 and staged.renamed == [a, b]
    assert _leftovers(tmp_path) == []


def test_a_pipe_or_device_is_written_to_not_replaced(tmp_path: Path) -> None:
    # `analyze --json /dev/null` as root once put a plain file in place of /dev/null. A FIFO
    # stands in for the device here (the test must not risk the machine's /dev/null).
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so the writer's open does not block
    try:
        write_atomic(fifo, '{"sets": []}\n')
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still the pipe
        assert os.read(reader, 100) == b'{"sets": []}\n'
    finally:
        os.close(reader)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.fifo"]  # no temporary left
