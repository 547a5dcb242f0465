"""Strict loader for six-axis CSV recordings: header ``t,ax,ay,az,gx,gy,gz``.

Units: t in seconds, accelerometer in m/s^2 including gravity, gyroscope in rad/s. Columns may
come in any order and extra columns are ignored. Every problem becomes a one-line
:class:`~tremorlift.errors.UserError` naming the file, and the line where it can.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tremorlift.errors import UserError

COLUMNS = ("t", "ax", "ay", "az", "gx", "gy", "gz")


@dataclass
class Recording:
    """One sensor's samples (rate taken from the time column)."""

    name: str
    t_s: np.ndarray  # (N,)
    accel_mps2: np.ndarray  # (N, 3)
    gyro_radps: np.ndarray  # (N, 3)
    sample_rate_hz: float
    placement: str | None = None
    exercise: str | None = None  # as recorded in a session file


def load_csv(path: str | Path) -> Recording:
    p = Path(path)
    name = p.name
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise UserError(f"{p}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{name}: not a UTF-8 text CSV file") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise UserError(f"{name}: empty file (expected a header {','.join(COLUMNS)})")
    header = [h.strip().lower() for h in lines[0].split(",")]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise UserError(
            f"{name}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} (header must name {','.join(COLUMNS)})"
        )
    cols = [header.index(c) for c in COLUMNS]
    body = [ln for ln in lines[1:]]
    while body and not body[-1].strip():
        body.pop()
    if not body:
        raise UserError(f"{name}: no samples after the header")
    data = _parse(name, body, len(header), cols)
    t = data[:, 0]
    bad = ~np.isfinite(data)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        col = COLUMNS[int(np.flatnonzero(bad[row])[0])]
        raise UserError(f"{name}: line {row + 2}: {col} is not a finite number (NaN or infinity)")
    if t.size < 2:
        raise UserError(f"{name}: only {t.size} sample; need at least two to take the rate from t")
    dt = np.diff(t)
    back = np.flatnonzero(dt <= 0)
    if back.size:
        i = int(back[0])
        raise UserError(
            f"{name}: line {i + 3}: time does not increase ({t[i + 1]:.6g} s after {t[i]:.6g} s)"
        )
    rate_hz = float(1.0 / np.median(dt))
    return Recording(name, t, data[:, 1:4].copy(), data[:, 4:7].copy(), rate_hz)


def _parse(name: str, body: list[str], n_cols: int, cols: list[int]) -> np.ndarray:
    try:
        arr = np.loadtxt(
            io.StringIO("\n".join(body)), delimiter=",", ndmin=2, dtype=float, usecols=cols
        )
        # loadtxt reads short rows silently when usecols fit; check the width of every row.
        widths = np.fromiter((ln.count(",") + 1 for ln in body), dtype=np.int64, count=len(body))
        if (widths != n_cols).any():
            raise ValueError("ragged")
        if arr.shape[0] != len(body):
            raise ValueError("blank lines")
        return arr
    except ValueError:
        pass
    # Slow path, only to say exactly where the file is wrong.
    for k, ln in enumerate(body):
        cells = ln.split(",")
        lineno = k + 2
        if not ln.strip():
            raise UserError(f"{name}: line {lineno}: empty line inside the data")
        if len(cells) < n_cols:
            last = " (file truncated?)" if k == len(body) - 1 else ""
            raise UserError(f"{name}: line {lineno}: {len(cells)} of {n_cols} cells{last}")
        if len(cells) > n_cols:
            raise UserError(f"{name}: line {lineno}: {len(cells)} cells, header has {n_cols}")
        for c, col in zip(cols, COLUMNS, strict=True):
            try:
                float(cells[c])
            except ValueError:
                raise UserError(
                    f"{name}: line {lineno}: {col} = {cells[c].strip()!r} is not a number"
                ) from None
    raise UserError(f"{name}: cannot parse the data")
