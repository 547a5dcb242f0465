"""Runs a script under real MicroPython: the WebAssembly port from npm, run by node.

That run is the authority on MicroPython compatibility, so a missing port is a failure, not a
skip: `make test` installs it (`make node`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "mpy" / "run.mjs"


def node_or_fail() -> str:
    """The node executable, with the MicroPython WebAssembly port installed beside the tests."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "@micropython").is_dir():
        pytest.fail("node and the MicroPython WebAssembly port are needed: run `make node`")
    return node


def run_micropython(
    script: str | Path,
    *,
    mounts: Sequence[tuple[str | Path, str]] = (("firmware/lib", "/lib"),),
    paths: Sequence[str] = ("/lib",),
    heap_mib: int | None = None,
    timeout_s: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``mounts`` copy host folders (relative to the repository) into MicroPython's file system;
    ``paths`` go first on its sys.path. Returns the finished process (exit 1 if it raised)."""
    cmd = [node_or_fail(), str(RUNNER)]
    if heap_mib is not None:
        cmd += ["--heap-mib", str(heap_mib)]
    for host, mp in mounts:
        cmd += ["--mount", f"{host}:{mp}"]
    for p in paths:
        cmd += ["--path", p]
    cmd.append(str(script))
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
