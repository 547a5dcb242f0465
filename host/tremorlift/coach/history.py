"""The history index: one row per recorded session, for trends across sessions.

An SQLite file ``history.sqlite`` in the user data folder (platformdirs, or
``$TREMORLIFT_DATA_DIR``), mode 0600 like the sessions it points to. Each row holds the session
file's path and a JSON summary (:func:`summarize`); trends are computed from the summaries, so
the index never needs the session files again and survives their being moved (a re-add with the
new path replaces nothing but adds the new row; ``--add`` on the same path updates it).

A session is known by its ``session_id`` (:func:`session_id`): a copy of a file is the same
session, counted once (:func:`load_history`); rows whose file has gone are left out by
:func:`split_missing`; :func:`remove_sessions` takes a session out of the index.

Summary (``summarize``), all figures SI or %::

    {"session_id", "created_utc", "created_unix_s", "duration_s", "samples_lost", "sets", "reps",
     "best_velocity_mps", "warmup_tremor_rms_mps2",
     "devices": [{"name", "placement", "samples", "samples_lost"}],
     "exercises": {NAME: {"sets", "reps", "best_velocity_mps", "velocity_loss_at_stop_pct",
                          "reps_to_stop", "warmup_tremor_rms_mps2", "velocity_asymmetry_pct",
                          "tremor_ratio", "loads"}}}

``velocity_loss_at_stop_pct`` is the mean velocity loss of the dynamic sets at their last rep
(where the lifter stopped); ``reps_to_stop`` the mean rep number at which a velocity-loss stop
alert came (None when none did); ``warmup_tremor_rms_mps2`` the engine's tremor baseline, learnt
in the first still seconds of the session; ``loads`` one ``[load_kg, best_velocity_mps]`` per
lifting set recorded with its load (``collect --load-kg``), from which :func:`trends` fits the
exercise's load-velocity profile and estimated 1RM (``analysis.loadvelocity``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tremorlift import paths
from tremorlift.analysis.contract import EngineResult, SessionResult
from tremorlift.analysis.loadvelocity import mvt_mps, set_points
from tremorlift.analysis.loadvelocity import profile as load_velocity_profile
from tremorlift.analysis.loadvelocity import words as load_velocity_words
from tremorlift.errors import UserError

INDEX_NAME = "history.sqlite"
INDEX_VERSION = 1
# Warm-up tremor this far above the person's usual (median of earlier sessions) suggests they
# have not recovered from earlier training; below it, day-to-day variation.
RAISED_BASELINE_RATIO = 1.3
MIN_EARLIER_SESSIONS = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    path           TEXT PRIMARY KEY,
    created_utc    TEXT NOT NULL,
    created_unix_s REAL NOT NULL,
    added_unix_s   REAL NOT NULL,
    summary        TEXT NOT NULL
);
"""


def data_dir() -> Path:
    return paths.data_dir()


def index_path() -> Path:
    return data_dir() / INDEX_NAME


# ============================================================================ summary


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _exercise_figures(result: EngineResult, exercise: str) -> dict[str, Any]:
    sets = [s for s in result["sets"] if s.get("exercise", "unknown") == exercise]
    dyn = [s for s in sets if s["kind"] == "dynamic" and s["reps"]]
    vel = [r["mean_concentric_velocity_mps"] for s in dyn for r in s["reps"]]
    stops = [
        a for a in result["alerts"] if a.get("kind") == "velocity_loss" and a.get("level") == "stop"
    ]
    reps_to_stop: list[float] = []
    for s in dyn:
        hit = [a for a in stops if s["start_s"] <= a["t_s"] <= s["end_s"] + 1.0]
        if hit:
            reps_to_stop.append(sum(1 for r in s["reps"] if r["end_s"] <= hit[0]["t_s"] + 1e-6))
    return {
        "sets": len(sets),
        "reps": sum(len(s["reps"]) for s in sets),
        "best_velocity_mps": _r(max(vel)) if vel else None,
        "velocity_loss_at_stop_pct": _r(_mean([float(s["velocity_loss_pct"]) for s in dyn]), 2),
        "reps_to_stop": _r(_mean(reps_to_stop), 2),
        "warmup_tremor_rms_mps2": result.get("tremor_baseline_rms_mps2"),
        "loads": [[x, _r(v)] for x, v in set_points(dyn)],
    }


def summarize(
    result: SessionResult,
    *,
    created_utc: str,
    created_unix_s: float,
    duration_s: float,
    devices: list[dict[str, Any]],
    session_id: str = "",
) -> dict[str, Any]:
    """A session's summary for the index from its analysis result (single or multi-sensor)."""
    from tremorlift.analysis.combine import device_results

    per_dev = device_results(result)
    names = sorted({s.get("exercise", "unknown") for r in per_dev for s in r["sets"]})
    exercises: dict[str, dict[str, Any]] = {}
    for ex in names:
        figs = [_exercise_figures(r, ex) for r in per_dev]

        def pick(key: str, how: Any, figs: list[dict[str, Any]] = figs) -> Any:
            vals = [f[key] for f in figs if f[key] is not None]
            return how(vals) if vals else None

        # Two sensors see the same sets: count them once (the larger count), average the rest.
        row = {
            "sets": pick("sets", max),
            "reps": pick("reps", max),
            "best_velocity_mps": pick("best_velocity_mps", max),
            "velocity_loss_at_stop_pct": _r(pick("velocity_loss_at_stop_pct", _mean), 2),
            "reps_to_stop": _r(pick("reps_to_stop", _mean), 2),
            "warmup_tremor_rms_mps2": _r(pick("warmup_tremor_rms_mps2", _mean)),
            "velocity_asymmetry_pct": None,
            "tremor_ratio": None,
            "loads": figs[0]["loads"],  # the first sensor's sets (two sensors see the same)
        }
        ex_sets = [s for s in per_dev[0]["sets"] if s.get("exercise", "unknown") == ex]
        rows = [
            a for a in result.get("asymmetry", [])
            if any(min(a["end_s"], s["end_s"]) > max(a["start_s"], s["start_s"]) for s in ex_sets)
        ]  # fmt: skip
        va = [v for a in rows if (v := a.get("velocity_asymmetry_pct")) is not None]
        tr = [v for a in rows if (v := a.get("tremor_ratio")) is not None]
        row["velocity_asymmetry_pct"] = _r(_mean(va), 2)
        row["tremor_ratio"] = _r(_mean(tr), 3)
        exercises[ex] = row
    best = [
        e["best_velocity_mps"] for e in exercises.values() if e["best_velocity_mps"] is not None
    ]
    base = [r.get("tremor_baseline_rms_mps2") for r in per_dev]
    base_known = [b for b in base if b is not None]
    return {
        "session_id": session_id or legacy_session_id(created_utc, created_unix_s),
        "created_utc": created_utc,
        "created_unix_s": created_unix_s,
        "duration_s": round(duration_s, 3),
        "samples_lost": sum(int(d.get("samples_lost") or 0) for d in devices),
        "sets": sum(e["sets"] or 0 for e in exercises.values()),
        "reps": sum(e["reps"] or 0 for e in exercises.values()),
        "best_velocity_mps": max(best) if best else None,
        "warmup_tremor_rms_mps2": _r(_mean(base_known)),
        "devices": devices,
        "exercises": exercises,
    }


def summarize_session(session_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Open a session file and summarise it (stored analysis, or the engine run now)."""
    from tremorlift.coach.results import (
        recorded_samples_lost,
        samples_lost,
        session_analysis,
        usable_arrays,
    )
    from tremorlift.store.reader import SessionReader

    with SessionReader(session_path) as reader:
        arrays = usable_arrays(reader)
        result = session_analysis(reader)
        devices = [
            {
                "name": a.name,
                "placement": pl,
                "samples": len(a),
                # The larger of the collector's count and the holes left in the file.
                "samples_lost": max(samples_lost(a), recorded_samples_lost(reader, a.device) or 0),
            }
            for a, pl in arrays
        ]
        t_end = max((float(a.t_s[-1]) for a, _ in arrays), default=0.0)
        duration = max(t_end, float(result.get("duration_s") or 0.0))
        try:
            created_unix_s = float(reader.meta.get("created_unix_s", "nan"))
        except ValueError:
            created_unix_s = float("nan")
        if created_unix_s != created_unix_s:  # NaN: fall back to the file's time
            created_unix_s = Path(session_path).stat().st_mtime
        return summarize(
            result,
            created_utc=reader.meta.get("created_utc", ""),
            created_unix_s=created_unix_s,
            duration_s=duration,
            devices=devices,
            session_id=session_id(reader.meta),
        )


def legacy_session_id(created_utc: str, created_unix_s: float) -> str:
    """The identity of a session whose file has no ``session_id`` (older files): a hash of its
    creation stamp, which a copy of the file keeps."""
    stamp = f"{created_utc}|{float(created_unix_s)!r}".encode()
    return hashlib.sha256(stamp).hexdigest()[:32]


def session_id(meta: dict[str, str]) -> str:
    """A session file's identity from its meta table (``session_id``, else the legacy hash)."""
    sid = meta.get("session_id", "")
    if sid:
        return sid
    try:
        unix_s = float(meta.get("created_unix_s", "nan"))
    except ValueError:
        unix_s = float("nan")
    return legacy_session_id(meta.get("created_utc", ""), unix_s)


# ============================================================================ index


@contextlib.contextmanager
def _open_index(path: Path | None = None, *, create: bool) -> Iterator[sqlite3.Connection | None]:
    p = index_path() if path is None else path
    if not p.exists() and not create:
        yield None
        return
    try:
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Created 0600 before SQLite opens it: the index says when and how someone trained.
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        db = sqlite3.connect(p, isolation_level=None)
    except OSError as exc:
        raise UserError(f"{p}: cannot open the history index ({exc.strerror or exc})") from None
    except sqlite3.Error as exc:
        raise UserError(f"{p}: cannot open the history index ({exc})") from None
    try:
        db.executescript(_SCHEMA)
        db.execute("INSERT OR IGNORE INTO meta VALUES ('index_version', ?)", (str(INDEX_VERSION),))
        yield db
    except sqlite3.Error as exc:
        raise UserError(
            f"{p}: damaged history index ({exc}); move it away to start a new one"
        ) from None
    finally:
        db.close()


def register_session(
    session_path: str | os.PathLike[str],
    summary: dict[str, Any] | None = None,
    *,
    index: Path | None = None,
) -> dict[str, Any]:
    """Add (or update) a session in the history index; returns the summary stored.

    ``summary`` from :func:`summarize` (the collector has the analysis at hand); None reads the
    session file and summarises it.
    """
    path = Path(session_path).resolve()
    if summary is None:
        summary = summarize_session(path)
    text = json.dumps(summary, sort_keys=True, allow_nan=False)
    with _open_index(index, create=True) as db:
        assert db is not None
        db.execute(
            "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?)",
            (
                str(path),
                summary.get("created_utc", ""),
                float(summary.get("created_unix_s", 0.0)),
                time.time(),
                text,
            ),
        )
    return summary


def _key(summary: dict[str, Any]) -> str:
    """The session's identity in a stored summary (rows indexed before ids had none)."""
    sid = summary.get("session_id")
    if sid:
        return str(sid)
    return legacy_session_id(
        str(summary.get("created_utc", "")), float(summary.get("created_unix_s", 0.0))
    )


def _rows(db: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT path, added_unix_s, summary FROM sessions ORDER BY created_unix_s, path"
    ).fetchall()
    out = []
    for path, added_unix_s, text in rows:
        try:
            s = json.loads(text)
        except ValueError:
            continue  # one bad row must not hide the rest
        s["path"] = path
        s["session_id"] = _key(s)
        s["_added_unix_s"] = added_unix_s
        out.append(s)
    return out


def load_history(index: Path | None = None) -> list[dict[str, Any]]:
    """Every indexed session once, oldest first: its summary plus ``path``.

    Rows of the same session (a copied or moved file indexed again) count once: the row whose
    file is still there, else the one indexed last."""
    with _open_index(index, create=False) as db:
        if db is None:
            return []
        rows = _rows(db)
    best: dict[str, dict[str, Any]] = {}
    for s in rows:
        rank = (Path(s["path"]).exists(), s["_added_unix_s"])
        kept = best.get(s["session_id"])
        if kept is None or rank >= (Path(kept["path"]).exists(), kept["_added_unix_s"]):
            best[s["session_id"]] = s
    chosen = {id(s) for s in best.values()}
    out = [s for s in rows if id(s) in chosen]
    for s in out:
        del s["_added_unix_s"]
    return out


def split_missing(sessions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The sessions whose file is still there, and the paths of those whose file is not."""
    present = [s for s in sessions if Path(s["path"]).exists()]
    missing = [s["path"] for s in sessions if not Path(s["path"]).exists()]
    return present, missing


# A session ID given to ``--remove`` may be shortened to this many characters or more.
MIN_ID_PREFIX = 6


def remove_sessions(which: str, index: Path | None = None) -> list[dict[str, Any]]:
    """Take a session out of the index (its file is left alone): ``which`` is a session file's
    path or a session ID (or its first characters, at least ``MIN_ID_PREFIX``). Every row of
    that session goes, copies included. Returns the rows removed; UserError when none match."""
    with _open_index(index, create=False) as db:
        rows = [] if db is None else _rows(db)
        target = str(Path(which).resolve())
        ids = {s["session_id"] for s in rows if s["path"] == target}
        if not ids and Path(which).is_file():
            from tremorlift.store.reader import SessionReader

            with SessionReader(which) as reader:
                ids = {session_id(reader.meta)}
        if not ids and len(which) >= MIN_ID_PREFIX:
            ids = {s["session_id"] for s in rows if s["session_id"].startswith(which.lower())}
            if len(ids) > 1:
                raise UserError(
                    f"{which!r} starts {len(ids)} session IDs; give more of it: "
                    + ", ".join(sorted(ids))
                )
        gone = [s for s in rows if s["session_id"] in ids]
        if not gone:
            raise UserError(
                f"{which}: no such session in the history (give a session file's path or an ID "
                "from `tremorlift history`)"
            )
        assert db is not None
        db.executemany("DELETE FROM sessions WHERE path = ?", [(s["path"],) for s in gone])
    for s in gone:
        del s["_added_unix_s"]
    return gone


# ============================================================================ trends


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def trends(sessions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per exercise: one point per session (oldest first) and a verdict on the latest one.

    Each point carries the session's figures and ``warmup_vs_usual``: its warm-up tremor
    divided by the median of the earlier sessions' (None until there are enough of them).
    """
    out: dict[str, dict[str, Any]] = {}
    names = sorted({ex for s in sessions for ex in s.get("exercises", {})})
    for ex in names:
        points: list[dict[str, Any]] = []
        for s in sessions:
            e = s.get("exercises", {}).get(ex)
            if e is None:
                continue
            earlier = [
                p["warmup_tremor_rms_mps2"]
                for p in points
                if p["warmup_tremor_rms_mps2"] is not None
            ]
            usual = _median(earlier) if len(earlier) >= MIN_EARLIER_SESSIONS else None
            w = e.get("warmup_tremor_rms_mps2")
            points.append({
                "path": s["path"], "created_utc": s.get("created_utc", ""), **e,
                "warmup_usual_rms_mps2": _r(usual),
                "warmup_vs_usual": _r(w / usual, 3) if (w is not None and usual) else None,
            })  # fmt: skip
        loads = [(float(x), float(v)) for p in points for x, v in p.get("loads") or []]
        out[ex] = {
            "sessions": points,
            "verdicts": _verdicts(points),
            "load_velocity": load_velocity_profile(loads, mvt_mps(ex)),
        }
    return out


def _verdicts(points: list[dict[str, Any]]) -> list[str]:
    if not points:
        return []
    last = points[-1]
    earlier = points[:-1]
    says: list[str] = []
    best_before = _median(
        [p["best_velocity_mps"] for p in earlier if p["best_velocity_mps"] is not None]
    )
    if last["best_velocity_mps"] is not None and best_before:
        d = 100.0 * (last["best_velocity_mps"] / best_before - 1.0)
        trend = "faster than" if d > 3 else "slower than" if d < -3 else "about as fast as"
        says.append(
            f"best velocity {last['best_velocity_mps']:.2f} m/s: {trend} your usual {best_before:.2f} m/s ({d:+.0f} %)"
        )
    reps_before = _median([p["reps_to_stop"] for p in earlier if p["reps_to_stop"] is not None])
    if last["reps_to_stop"] is not None and reps_before:
        says.append(
            f"reached the velocity-loss limit after {last['reps_to_stop']:.1f} reps (usually {reps_before:.1f})"
        )
    ratio = last["warmup_vs_usual"]
    if ratio is not None:
        if ratio >= RAISED_BASELINE_RATIO:
            says.append(
                f"warm-up tremor {ratio:.1f}x your usual: raised. You may be under-recovered from "
                "earlier training; consider a lighter session or more rest"
            )
        else:
            says.append(f"warm-up tremor {ratio:.1f}x your usual: normal")
    elif last["warmup_tremor_rms_mps2"] is not None:
        says.append(
            f"warm-up tremor: not enough earlier sessions to compare (need {MIN_EARLIER_SESSIONS})"
        )
    asym = [p["velocity_asymmetry_pct"] for p in points if p["velocity_asymmetry_pct"] is not None]
    if asym:
        side = "left" if asym[-1] > 0 else "right"
        says.append(
            f"left-right velocity difference {abs(asym[-1]):.0f} % ({side} faster) in the latest session"
        )
    return says


def format_history(sessions: list[dict[str, Any]], tr: dict[str, dict[str, Any]]) -> str:
    def f(x: Any, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    lines = [
        f"{'id':8} {'date (UTC)':16} {'exercise':16} {'duration':>8} {'sets':>4} {'reps':>4} {'best m/s':>8} {'lost':>6}  file"
    ]
    for s in sessions:
        date = (s.get("created_utc") or "")[:16].replace("T", " ")
        exs = ",".join(s.get("exercises", {})) or "-"
        lines.append(
            f"{_key(s)[:8]:8} {date:16} {exs[:16]:16} {s['duration_s'] / 60:7.1f}m {s['sets']:>4} {s['reps']:>4} "
            f"{f(s.get('best_velocity_mps'), '8.2f'):>8} {s.get('samples_lost', 0):>6}  {s['path']}"
        )
    if not sessions:
        lines.append(
            "(no sessions recorded yet: `tremorlift history --add SESSION` indexes a file)"
        )
    for ex, t in tr.items():
        lines += ["", f"== {ex} =="]
        lines.append(
            f"{'date (UTC)':16} {'best m/s':>8} {'VL end %':>8} {'reps->stop':>10} {'warm-up tremor m/s2':>20} {'vs usual':>8} {'L-R %':>6}"
        )
        for p in t["sessions"]:
            date = (p.get("created_utc") or "")[:16].replace("T", " ")
            lines.append(
                f"{date:16} {f(p['best_velocity_mps'], '8.2f'):>8} {f(p['velocity_loss_at_stop_pct'], '8.0f'):>8} "
                f"{f(p['reps_to_stop'], '10.1f'):>10} {f(p['warmup_tremor_rms_mps2'], '20.3f'):>20} "
                f"{f(p['warmup_vs_usual'], '7.1f') + ('x' if p['warmup_vs_usual'] is not None else ''):>8} "
                f"{f(p['velocity_asymmetry_pct'], '6.0f'):>6}"
            )
        for v in t["verdicts"]:
            lines.append(f"  - {v}")
        if t.get("load_velocity"):
            lines.append(f"  - {load_velocity_words(t['load_velocity'], ex)}")
    return "\n".join(lines) + "\n"
