"""Where the MicroPython twin's binary is, and what it is.

``make micropython-twin`` (a dependency of ``make test`` and ``make demo``) builds MicroPython's
unix port with Bluetooth on NimBLE from ``../shared/vendor/`` into ``.cache/micropython-nimble/``
of the checkout. :func:`find` returns that build or raises :class:`MicroPythonUnavailable`
with the reason (a clone without the vendored source beside it has no binary: the twin then
runs on CPython, and the MicroPython twin's tests skip with that reason).
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[4]
CACHE_DIR = CHECKOUT / ".cache" / "micropython-nimble"
# An explicit binary (and the source tree its asyncio package comes from), e.g. a build kept
# elsewhere: TREMORLIFT_MICROPYTHON=/path/to/micropython TREMORLIFT_MICROPYTHON_SRC=/path/to/src.
ENV_BINARY = "TREMORLIFT_MICROPYTHON"
ENV_SOURCE = "TREMORLIFT_MICROPYTHON_SRC"


class MicroPythonUnavailable(RuntimeError):
    """The MicroPython twin cannot run here (the message says why and what to do)."""


@dataclass(frozen=True)
class MicroPythonBuild:
    binary: Path
    asyncio_dir: Path  # extmod/asyncio of the same source (not frozen into this build)
    version: str  # e.g. "1.29.0-preview"


def _source_root() -> Path:
    return Path(os.environ.get(ENV_SOURCE) or CACHE_DIR / "src" / "micropython")


def find() -> MicroPythonBuild:
    """The built binary, or MicroPythonUnavailable saying why not."""
    binary = Path(os.environ.get(ENV_BINARY) or CACHE_DIR / "micropython")
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise MicroPythonUnavailable(
            f"the MicroPython twin is not built ({binary} missing): `make micropython-twin` "
            "builds it from ../shared/vendor/ beside the checkout"
        )
    asyncio_dir = _source_root() / "extmod" / "asyncio"
    if not (asyncio_dir / "__init__.py").is_file():
        raise MicroPythonUnavailable(
            f"MicroPython's asyncio package is missing at {asyncio_dir}: "
            "`make micropython-twin` unpacks it beside the binary"
        )
    return MicroPythonBuild(binary, asyncio_dir, _version(str(binary)))


def available() -> str | None:
    """None when the MicroPython twin can run, else the reason it cannot."""
    try:
        find()
    except MicroPythonUnavailable as exc:
        return str(exc)
    return None


@functools.cache
def _version(binary: str) -> str:
    out = subprocess.run(
        [binary, "-c", "import sys; print('.'.join(str(p) for p in sys.implementation.version[:3]) + ('-' + sys.implementation.version[3] if sys.implementation.version[3] else ''))"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    if out.returncode != 0 or not out.stdout.strip():
        raise MicroPythonUnavailable(f"{binary} does not run: {out.stderr.strip()[:200]}")
    return out.stdout.strip()
