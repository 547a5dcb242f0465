#!/usr/bin/env python3
"""Type-check the firmware against the MicroPython ESP32 stubs (`make typecheck-firmware`).

The checker is pyright (pinned in package.json). The stubs (micropython-esp32-stubs, pinned
in requirements-stubs.txt, installed with `pip install --target .stubs`) replace CPython's
standard library: `typeshedPath` points at them, so `time`, `struct`, `asyncio`, `array`...
are MicroPython's (time.ticks_us exists, time.perf_counter does not), and the port modules
(machine, bluetooth, micropython, esp32) come from the same folder through `stubPath`.
Pyright is given a Python interpreter that reports no search paths, so nothing resolves to
the CPython installation: importing a module MicroPython does not have is an error.

Exit status: 0 clean, 1 type errors (listed), 2 bad set-up (no stubs, no pyright).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUBS_PACKAGE = "micropython_esp32_stubs"
STUBS_REQUIREMENTS = ROOT / "requirements-stubs.txt"

# Checks on top of pyright's "standard" mode.
PYRIGHT_SETTINGS = {
    "typeCheckingMode": "standard",
    # MicroPython ignores annotations, so the firmware may use any 3.11 annotation syntax.
    "pythonVersion": "3.11",
    "pythonPlatform": "Linux",
    # The stubs are stub-only packages: no source behind them is expected.
    "reportMissingModuleSource": "none",
    "reportMissingImports": "error",
    "reportUnusedCoroutine": "error",
    "reportUnnecessaryTypeIgnoreComment": "warning",
}


class SetupError(Exception):
    pass


def expected_stubs_version() -> str:
    for line in STUBS_REQUIREMENTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("micropython-esp32-stubs=="):
            return line.split("==", 1)[1]
    raise SetupError(f"{STUBS_REQUIREMENTS.name} does not pin micropython-esp32-stubs")


def check_stubs(stubs: Path) -> None:
    version = expected_stubs_version()
    if not (stubs / "stdlib" / "VERSIONS").is_file() or not (stubs / "machine.pyi").is_file():
        raise SetupError(f"no MicroPython stubs in {stubs}/: run `make stubs`")
    if not (stubs / f"{STUBS_PACKAGE}-{version}.dist-info").is_dir():
        raise SetupError(
            f"{stubs}/ does not hold micropython-esp32-stubs {version}: run `make stubs`"
        )


def find_pyright(explicit: str | None) -> list[str]:
    if explicit:
        return [explicit]
    local = ROOT / "node_modules" / ".bin" / "pyright"
    if local.exists():
        return [str(local)]
    raise SetupError("pyright not found in node_modules: run `make node` (npm ci)")


def pyright_config(src: Path, stubs: Path, workdir: Path) -> dict[str, object]:
    """A pyrightconfig.json for workdir (pyright wants paths relative to the config file)."""

    def rel(path: Path) -> str:
        return os.path.relpath(path.resolve(), workdir)

    extra = [src / "lib"] if (src / "lib").is_dir() else []
    return {
        "include": [rel(src)],
        "exclude": ["**/__pycache__", "**/.*"],
        "typeshedPath": rel(stubs),
        "stubPath": rel(stubs),
        "extraPaths": [rel(p) for p in extra],
        **PYRIGHT_SETTINGS,
    }


def run(src: Path, stubs: Path, pyright: list[str]) -> tuple[int, dict[str, object]]:
    """Runs pyright; returns (exit status, its JSON report)."""
    with tempfile.TemporaryDirectory(prefix="typecheck-firmware-") as tmp:
        workdir = Path(tmp)
        (workdir / "pyrightconfig.json").write_text(json.dumps(pyright_config(src, stubs, workdir)))
        # An "interpreter" with no search paths: pyright then resolves imports only from the
        # stubs and the firmware, never from a CPython site-packages or standard library.
        no_python = workdir / "no-python"
        no_python.write_text("#!/bin/sh\nexit 1\n")
        no_python.chmod(0o755)
        proc = subprocess.run(
            [*pyright, "--outputjson", "-p", str(workdir), "--pythonpath", str(no_python)],
            capture_output=True,
            text=True,
            check=False,
            cwd=workdir,
        )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise SetupError(
            f"pyright failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout[:500]}"
        ) from exc
    return proc.returncode, report


def format_report(report: dict[str, object], root: Path) -> list[str]:
    lines = []
    for diag in report.get("generalDiagnostics", []):  # type: ignore[union-attr]
        path = Path(diag["file"])
        try:
            shown = path.relative_to(root)
        except ValueError:
            shown = path
        start = diag["range"]["start"]
        rule = f" ({diag['rule']})" if diag.get("rule") else ""
        lines.append(
            f"{shown}:{start['line'] + 1}:{start['character'] + 1}: {diag['severity']}: {diag['message']}{rule}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT / "firmware", help="firmware tree")
    parser.add_argument(
        "--stubs", type=Path, default=ROOT / ".stubs", help="pip --target folder of the stubs"
    )
    parser.add_argument(
        "--pyright", default=None, help="pyright executable (default: node_modules)"
    )
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    try:
        if not args.src.is_dir():
            raise SetupError(f"no firmware folder at {args.src}")
        check_stubs(args.stubs)
        if shutil.which("node") is None:
            raise SetupError("node not found (pyright runs on node)")
        status, report = run(args.src, args.stubs, find_pyright(args.pyright))
    except SetupError as exc:
        print(f"typecheck_firmware: {exc}", file=sys.stderr)
        return 2
    for line in format_report(report, Path.cwd()):
        print(line)
    summary = report.get("summary", {})
    assert isinstance(summary, dict)
    errors = summary.get("errorCount", 0)
    elapsed_s = time.monotonic() - t0
    print(
        f"typecheck_firmware: {summary.get('filesAnalyzed', 0)} files, {errors} errors, "
        f"{summary.get('warningCount', 0)} warnings (pyright {report.get('version', '?')}, "
        f"{elapsed_s:.1f} s)"
    )
    if status not in (0, 1):
        print(f"typecheck_firmware: pyright exit {status}", file=sys.stderr)
        return 2
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
