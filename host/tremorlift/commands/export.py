"""``tremorlift export SESSION --format csv|parquet``: a session's samples, reps, tremor
episodes and alerts as plain tables for spreadsheets, R, pandas and the like.

Files (in ``--out``, default ``SESSION-export/`` beside the session):

* ``samples-DEVICE.csv|parquet`` per sensor: ``t_s`` (s on the session timeline),
  ``sample_index``, ``ax_mps2 ay_mps2 az_mps2`` (m/s^2, gravity included, sensor axes),
  ``gx_radps gy_radps gz_radps`` (rad/s);
* ``reps``: ``device set set_kind exercise rep start_s end_s mean_concentric_velocity_mps
  peak_velocity_mps rom_m velocity_loss_pct``;
* ``tremor_episodes``: ``device start_s end_s peak_hz rms_mps2 cause``;
* ``sets``: one row per set, holds included: ``device set kind exercise start_s end_s
  duration_s reps best_velocity_mps velocity_loss_pct max_velocity_loss_pct
  time_under_tension_s load_kg tremor_rms_max_mps2 tremor_recovery_s time_to_tremor_onset_s
  tremor_growth_pct_per_s posture_drift_deg stop_reason`` (a column that does not apply to the
  kind of set is empty);
* ``alerts``: ``device t_s level kind message``;
* ``session.json`` (whatever the format): the session's ``meta`` table (with ``settings`` and
  ``sensors`` decoded), ``sensors`` (per device: address, recorded name, the user's name and
  limb, placement, firmware, IMU rate) and ``analysis_settings``, the settings the final
  analysis used.

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
SET_COLUMNS = (
    "device", "set", "kind", "exercise", "start_s", "end_s", "duration_s", "reps",
    "best_velocity_mps", "velocity_loss_pct", "max_velocity_loss_pct", "time_under_tension_s",
    "load_kg", "tremor_rms_max_mps2", "tremor_recovery_s", "time_to_tremor_onset_s",
    "tremor_growth_pct_per_s", "posture_drift_deg", "stop_reason",
)  # fmt: skip
EPISODE_COLUMNS = ("device", "start_s", "end_s", "peak_hz", "rms_mps2", "cause")
METADATA_NAME = "session.json"
ALERT_COLUMNS = ("device", "t_s", "level", "kind", "message")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a session's samples, sets, reps, tremor and alerts as CSV or Parquet",
        description="Write a session's samples (per sensor, SI units), sets (holds too), reps, "
        "tremor episodes and alerts as tables, and its metadata as session.json.",
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
    return build_export(session)[0]


def build_export(session: Path) -> tuple[dict[str, Table], dict[str, Any]]:
    """The tables (name -> columns, see :func:`build_tables`) and the session's metadata."""
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
        result = session_analysis(reader)
        metadata = _metadata(reader, result)
    reps: Table = {c: [] for c in REP_COLUMNS}
    sets: Table = {c: [] for c in SET_COLUMNS}
    for dev in device_results(result):
        dname = dev.get("name") or (arrays[0][0].name if arrays else "")
        for si, s in enumerate(dev["sets"], 1):
            row_s = {
                **{c: s.get(c) for c in SET_COLUMNS}, "device": dname, "set": si,
                "exercise": s.get("exercise", "unknown"), "reps": len(s["reps"]),
                "duration_s": s.get("duration_s", s["end_s"] - s["start_s"]),
            }  # fmt: skip
            for c in SET_COLUMNS:
                sets[c].append(row_s[c])
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
    tables["sets"], tables["reps"] = sets, reps
    tables["tremor_episodes"], tables["alerts"] = episodes, alerts
    return tables, metadata


def _metadata(reader: Any, result: Any) -> dict[str, Any]:
    """``session.json``: what the session is, how it was recorded and analysed."""
    import json

    from tremorlift.store.final import SENSORS_KEY, SETTINGS_KEY, sensors, session_settings

    meta: dict[str, Any] = dict(reader.meta)
    for key in (SETTINGS_KEY, SENSORS_KEY):
        if key in meta:
            try:
                meta[key] = json.loads(meta[key])
            except ValueError:
                pass  # kept as the text it is
    named = sensors(reader)
    devices = []
    for d in reader.devices():
        user = named.get(d.address) or {}
        info = d.info
        devices.append({
            "address": d.address, "name": d.name, "user_name": user.get("name"),
            "limb": user.get("limb"), "placement": d.placement,
            "firmware": None if info is None else ".".join(map(str, info.fw_version)),
            "odr_hz": None if info is None else info.odr_hz,
        })  # fmt: skip
    return {
        "meta": meta,
        "settings": session_settings(reader),
        "sensors": devices,
        "analysis_settings": result.get("settings"),
    }


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

    types = {
        "t_s": pa.float64(), "sample_index": pa.int64(), "set": pa.int64(), "rep": pa.int64(),
        "reps": pa.int64(),
    }  # fmt: skip
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
            "stop_reason",
        ):
            typ = pa.string()
        arrays.append(pa.array(v, type=typ or pa.float64()))
    pq.write_table(pa.Table.from_arrays(arrays, names=list(table)), path)


def export(session: Path, fmt: str, out: Path) -> list[Path]:
    import json

    tables, metadata = build_export(session)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    from tremorlift.store.files import StagedFiles

    finals = [out / f"{name}.{fmt}" for name in tables]
    try:
        # Private like the session itself: the tables hold the recorded samples.
        with StagedFiles(private=True) as staged:
            with staged.stage(out / METADATA_NAME).open("w", encoding="utf-8") as f:
                json.dump(metadata, f, indent=2, allow_nan=False, default=str)
                f.write("\n")
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
    return [*finals, out / METADATA_NAME]


def run(args: argparse.Namespace) -> int:
    session = Path(args.session)
    out = Path(args.out) if args.out else session.with_name(session.name + "-export")
    for path in export(session, args.format, out):
        print(path)
    return 0
