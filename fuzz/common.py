"""Shared set-up of the fuzzers: seed corpus from the golden vectors, bounded run time."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors"
DEFAULT_SECONDS = 60


def corpus_dir(name: str, seeds: Callable[[], list[bytes]]) -> Path:
    """A working corpus for ``name`` under the system temp folder, seeded on first use."""
    base = Path(os.environ.get("TREMORLIFT_FUZZ_CORPUS", "/tmp/tremorlift-fuzz")) / name
    base.mkdir(parents=True, exist_ok=True)
    if not any(base.iterdir()):
        for i, seed in enumerate(seeds()):
            (base / f"seed-{i:03d}").write_bytes(seed)
    return base


def vector_bytes() -> list[bytes]:
    """Every golden vector's bytes (valid and invalid ones)."""
    return [p.read_bytes() for p in sorted(VECTORS.rglob("*.bin"))]


def run(
    name: str, test_one_input: Callable[[bytes], None], seeds: Callable[[], list[bytes]]
) -> None:
    import atheris  # noqa: PLC0415 - only the fuzzers need it

    seconds = int(os.environ.get("FUZZ_SECONDS", DEFAULT_SECONDS))
    corpus = corpus_dir(name, seeds)
    args = [sys.argv[0], f"-max_total_time={seconds}", "-print_final_stats=1", "-timeout=10"]
    args += sys.argv[1:] + [str(corpus)]
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()
