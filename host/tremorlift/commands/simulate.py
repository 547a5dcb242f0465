"""``tremorlift simulate``: write a synthetic IMU recording (CSV) and its ground truth (JSON).

Output: ``FILE.csv`` with header ``t,ax,ay,az,gx,gy,gz`` (s; m/s^2 specific force incl. gravity;
rad/s; sensor axes) and ``FILE.truth.json`` (docs/motion-model.md). Scenarios with two sensors
write ``FILE-<device>.csv`` and ``FILE-<device>.truth.json`` for each (e.g. ``run-left.csv``)
unless ``--device`` picks one, which is then written to ``FILE.csv``. Every file is written to a
temporary name next to it and renamed when all are complete, so nothing is left half-written.
Without ``--out`` (or with ``--out -``) the CSV of one sensor goes to stdout and no truth is
written (``tremorlift simulate --scenario curl-3x10 | head``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from tremorlift.commands._checks import ScenarioHelpFormatter, scenario_lines
from tremorlift.errors import UserError
from tremorlift.store.files import StagedFiles
from tremorlift.twin import IMUS

ORDER = 60


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "simulate",
        help="generate a synthetic IMU recording with ground truth",
        description="Generate a physics-based synthetic recording of a limb-worn IMU (CSV) and its ground truth (JSON).",
        formatter_class=ScenarioHelpFormatter,
    )
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--scenario", metavar="NAME", help="scenario name (listed below)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--out",
        metavar="FILE.csv",
        help="output CSV path; truth goes to FILE.truth.json (default or '-': the CSV to stdout, "
        "no truth)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=200.0,
        metavar="HZ",
        help="sample rate, 50-2000 Hz (default 200)",
    )
    p.add_argument(
        "--imu",
        choices=IMUS,
        default="icm42688",
        help="sensor model (default icm42688)",
    )
    p.add_argument(
        "--device", metavar="NAME", help="for multi-sensor scenarios: write only this device"
    )
    p.add_argument(
        "--short", action="store_true", help="shorter variant (two sets, short rests and holds)"
    )
    p.set_defaults(run=run)


def _base(out: Path) -> Path:
    return out.with_suffix("") if out.suffix.lower() == ".csv" else out


def _write_csv(dest: Path | TextIO, t_s: np.ndarray, accel: np.ndarray, gyro: np.ndarray) -> None:
    data = np.column_stack([t_s, accel, gyro])
    if not isinstance(dest, Path):
        dest.write("t,ax,ay,az,gx,gy,gz\n")
        np.savetxt(dest, data, fmt=["%.6f"] + ["%.7g"] * 6, delimiter=",")
        return
    with open(dest, "w", encoding="ascii", newline="\n") as fh:
        _write_csv(fh, t_s, accel, gyro)


def _to_stdout(args: argparse.Namespace, motion: Any) -> int:
    """One sensor's CSV on stdout (nothing else there); the summary line on stderr."""
    scenario = motion.generate(
        args.scenario, args.seed, sample_rate_hz=args.rate, imu=args.imu, short=args.short,
        keep_kinematics=False,
    )  # fmt: skip
    rec = scenario.devices[0] if args.device is None else scenario.device(args.device)
    _write_csv(sys.stdout, rec.t_s, rec.accel_mps2, rec.gyro_radps)
    sys.stdout.flush()
    print(
        f"stdout: {rec.name} ({rec.t_s.size} samples, {rec.t_s.size / args.rate:.1f} s); "
        "ground truth only with --out",
        file=sys.stderr,
    )
    return 0


def run(args: argparse.Namespace) -> int:
    from tremorlift.twin.motion import generator as motion

    if args.list:
        print("\n".join(scenario_lines()))
        return 0
    if not args.scenario:
        raise UserError("--scenario is required (or --list); valid: " + ", ".join(motion.SCENARIOS))
    if args.scenario not in motion.SCENARIOS:
        raise UserError(f"unknown scenario {args.scenario!r}; valid: {', '.join(motion.SCENARIOS)}")
    if not (motion.MIN_RATE_HZ <= args.rate <= motion.MAX_RATE_HZ):
        raise UserError(
            f"--rate {args.rate:g} Hz is outside {motion.MIN_RATE_HZ:g}-{motion.MAX_RATE_HZ:g} Hz"
        )
    spec = motion.SCENARIOS[args.scenario]
    device_names = [d for d, _ in spec.devices]
    if args.device is not None and args.device not in device_names:
        raise UserError(
            f"scenario {args.scenario} has no device {args.device!r}; devices: {', '.join(device_names)}"
        )
    if args.out in (None, "-"):
        if args.device is None and len(device_names) > 1:
            raise UserError(
                f"scenario {args.scenario} has {len(device_names)} sensors and stdout takes one: "
                f"give --device ({', '.join(device_names)}) or --out FILE.csv for all"
            )
        return _to_stdout(args, motion)
    out = Path(args.out)
    directory = out.parent if str(out.parent) else Path(".")
    if not directory.is_dir():
        raise UserError(f"{out}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise UserError(f"{out}: directory {directory} is not writable")

    scenario = motion.generate(
        args.scenario,
        args.seed,
        sample_rate_hz=args.rate,
        imu=args.imu,
        short=args.short,
        keep_kinematics=False,
    )
    base = _base(out)
    targets: list[tuple[Path, Path, motion.DeviceRecording]] = []
    if args.device is not None or len(scenario.devices) == 1:
        rec = scenario.devices[0] if args.device is None else scenario.device(args.device)
        targets.append(
            (base.with_name(base.name + ".csv"), base.with_name(base.name + ".truth.json"), rec)
        )
    else:
        for rec in scenario.devices:
            stem = f"{base.name}-{rec.name}"
            targets.append(
                (base.with_name(stem + ".csv"), base.with_name(stem + ".truth.json"), rec)
            )

    for csv_path, truth_path, _ in targets:
        for final in (csv_path, truth_path):
            if final.is_dir():
                raise UserError(f"{final}: cannot write: is a directory")

    # The outputs appear together or not at all, with the permissions the umask gives.
    staged = StagedFiles()
    try:
        with staged:
            for csv_path, truth_path, rec in targets:
                _write_csv(staged.stage(csv_path), rec.t_s, rec.accel_mps2, rec.gyro_radps)
                with staged.stage(truth_path).open("w", encoding="utf-8") as fh:
                    json.dump(rec.truth, fh, indent=1)
                    fh.write("\n")
            staged.commit()
    except OSError as exc:
        # Leave no partial set of outputs: whatever a failed commit had already renamed goes too.
        for path in staged.renamed:
            path.unlink(missing_ok=True)
        raise UserError(f"{out}: cannot write: {exc.strerror or exc}") from None
    for csv_path, truth_path, rec in targets:
        print(
            f"{csv_path} ({rec.t_s.size} samples, {rec.t_s.size / args.rate:.1f} s) + {truth_path.name}"
        )
    return 0
