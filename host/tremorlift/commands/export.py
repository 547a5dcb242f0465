"""``tremorlift export SESSION --format csv|parquet``: a session's samples, reps, tremor
episodes and alerts as plain tables for spreadsheets, R, pandas and the like.

Files (in ``--out``, default ``SESSION-export/`` beside the session):

* ``samples-DEVICE.csv|parquet`` per sensor: ``t_s`` (s on the session timeline),
  ``sample_index``, ``ax_mps2 ay_mps2 az_mps2`` (m/s^2, gravity included, sensor axes),
  ``gx_radps gy_radps gz_radps`` (rad/s);
* ``reps``: ``device set set_kind exercise rep start_s end_s mean_concentric_velocity_mps
  peak_velocity_mps rom_m velocity_loss_pct``;
* ``tremor_episodes``: ``device start_s end_s peak_hz rms_mps2 cause``;
* ``alerts``: ``device t_s level kind message``.

Every file is first written to a temporary name in the output folder; only when all are complete
are they renamed into place (``store.files.StagedFiles``), so an error never leaves a half-written
export. The files are readable by the user only, like the session they come from.
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path
from typing import Any

from tremorlift.errors import UserError

ORDER = 72
SAMPLE_COLUMNS = (
    "t_s",
    "sample_index",
    "ax_mps2",
    "ay_mps2",
    "az_mps2",
    "gx_radps",
    "gy_radps",
    "gz_radps",
)
REP_COLUMNS = (
    "device", "set", "set_kind", "exercise", "rep", "start_s", "end_s",
    "mean_concentric_velocity_mps", "peak_velocity_mps", "rom_m", "velocity_loss_pct",
)  # fmt: skip
EPISODE_COLUMNS = ("device", "start_s", "end_s", "peak_hz", "rms_mps2", "cause")
ALERT_COLUMNS = ("device", "t_s", "level", "kind", "message")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a session's samples, reps, tremor and alerts as CSV or Parquet",
        description="Write a session's samples (per sensor, SI units), reps, tremor episodes and alerts as tables.",
    )
    p.add_argument("session", metavar="SESSION", help="session file")
    p.add_argument(
        "--format", choices=("csv", "parquet"), default="csv", help="table format (default csv)"
    )
    p.add_argument(
        "--out", metavar="DIR", help="output folder (default: SESSION-export/ beside the session)"
    )
    p.set_defaults(run=run)


Table = dict[str, Any]  # column name -> list or numpy array


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "device"


def build_tables(session: Path) -> dict[str, Table]:
    """Table name -> columns (name -> values); sample columns are numpy arrays."""
    from tremorlift.analysis.combine import device_results
    from tremorlift.coach.results import session_analysis, usable_arrays
    from tremorlift.store.reader import SessionReader

    tables: dict[str, Table] = {}
    with SessionReader(session) as reader:
        arrays = usable_arrays(reader)
        used: set[str] = set()
        for arr, _ in arrays:
            name = _safe(arr.name)
            while name in used:  # two sensors with the same label
                name += "_"
            used.add(name)
            a, g = arr.accel_mps2, arr.gyro_radps
            tables[f"samples-{name}"] = dict(
                zip(
                    SAMPLE_COLUMNS,
                    (
                        arr.t_s,
                        arr.sample_index,
                        a[:, 0],
                        a[:, 1],
                        a[:, 2],
                        g[:, 0],
                        g[:, 1],
                        g[:, 2],
                    ),
                    strict=True,
                )
            )
        result = session_analysis(reader, arrays)
    reps: Table = {c: [] for c in REP_COLUMNS}
    for dev in device_results(result):
        dname = dev.get("name") or (arrays[0][0].name if arrays else "")
        for si, s in enumerate(dev["sets"], 1):
            for ri, r in enumerate(s["reps"], 1):
                row = (dname, si, s["kind"], s.get("exercise", "unknown"), ri, r["start_s"], r["end_s"],
                       r["mean_concentric_velocity_mps"], r["peak_velocity_mps"], r["rom_m"], r.get("velocity_loss_pct"))  # fmt: skip
                for c, v in zip(REP_COLUMNS, row, strict=True):
                    reps[c].append(v)
    default_dev = result.get("name") or (arrays[0][0].name if len(arrays) == 1 else "")
    episodes: Table = {
        c: [e.get(c, default_dev) if c == "device" else e.get(c) for e in result["tremor_episodes"]]
        for c in EPISODE_COLUMNS
    }
    alerts: Table = {
        c: [a.get(c, default_dev) if c == "device" else a.get(c) for a in result["alerts"]]
        for c in ALERT_COLUMNS
    }
    tables["reps"], tables["tremor_episodes"], tables["alerts"] = reps, episodes, alerts
    return tables


def _write_csv(f: Any, table: Table) -> None:
    import numpy as np

    cols = list(table)
    w = csv.writer(f, lineterminator="\n")
    w.writerow(cols)
    if table and isinstance(next(iter(table.values())), np.ndarray):
        # Bulk formatting: a long recording has millions of values. repr-precision floats.
        mat = np.column_stack([np.asarray(table[c], dtype=float) for c in cols])
        fmt = ["%.6f" if c == "t_s" else "%d" if c == "sample_index" else "%.9g" for c in cols]
        np.savetxt(f, mat, fmt=fmt, delimiter=",")
        return
    for row in zip(*(table[c] for c in cols), strict=True):
        w.writerow(["" if v is None else v for v in row])


def _write_parquet(path: str, table: Table) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"t_s": pa.float64(), "sample_index": pa.int64(), "set": pa.int64(), "rep": pa.int64()}
    arrays = []
    for c, v in table.items():
        typ = types.get(c)
        if typ is None and c in (
            "device",
            "set_kind",
            "exercise",
            "level",
            "kind",
            "message",
            "cause",
        ):
            typ = pa.string()
        arrays.append(pa.array(v, type=typ or pa.float64()))
    pq.write_table(pa.Table.from_arrays(arrays, names=list(table)), path)


def export(session: Path, fmt: str, out: Path) -> list[Path]:
    tables = build_tables(session)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    from tremorlift.store.files import StagedFiles

    finals = [out / f"{name}.{fmt}" for name in tables]
    try:
        # Private like the session itself: the tables hold the recorded samples.
        with StagedFiles(private=True) as staged:
            for final, table in zip(finals, tables.values(), strict=True):
                tmp = staged.stage(final)
                if fmt == "csv":
                    with tmp.open("w", encoding="utf-8", newline="") as f:
                        _write_csv(f, table)
                else:
                    _write_parquet(str(tmp), table)
            staged.commit()
    except OSError as exc:
        raise UserError(f"{out}: cannot write the export ({exc.strerror or exc})") from None
    return finals


def run(args: argparse.Namespace) -> int:
    session = Path(args.session)
    out = Path(args.out) if args.out else session.with_name(session.name + "-export")
    for path in export(session, args.format, out):
        print(path)
    return 0
