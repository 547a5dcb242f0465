"""A session's one true answer: the final analysis of everything it stored.

Live, the collector analyses what has arrived so far and tells the lifter at once; the radio may
have lost frames that came back later, or never. However a session ends, its complete stored
data is analysed once more with the session's own settings and stored as its ``final`` analysis;
the alerts the lifter was told live stay stored beside it as ``alert`` events (with their set,
rep and whether the live engine had every sample). ``report``, ``history``, ``export`` and
``analyze`` all read the final analysis, so they agree; a session that was never finalised (the
collector was killed, the power went) is finalised by the first command that opens it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tremorlift.analysis.contract import EngineResult, SessionResult
from tremorlift.errors import UserError
from tremorlift.store.reader import SessionReader
from tremorlift.store.session import SessionWriter

FINAL_KIND = "final"  # the analysis row holding the final analysis (device NULL: all sensors)
SETTINGS_KEY = "settings"  # meta key: the settings the session was recorded with, as JSON
SENSORS_KEY = "sensors"  # meta key: per device address, the user's name and limb, as JSON
FINALISED_KEY = "finalised_utc"
ENDED_BY_KEY = "ended_by"
# A session whose write-ahead log changed this recently may still be recording: it is analysed
# but not written to.
STILL_RECORDING_S = 15.0
# A final alert belongs to the rep whose end it is within this many seconds of (alert times and
# rep ends are rounded to 1 ms and 0.1 ms).
REP_MATCH_S = 0.01
# Alerts that no rep raised (tremor, holds) match a live alert of the same kind within this.
TIME_MATCH_S = 3.0


# ------------------------------------------------------------------ settings
def session_settings(reader: SessionReader) -> dict[str, Any]:
    """The settings the session was recorded with (empty for a session older than them)."""
    try:
        settings = json.loads(reader.meta.get(SETTINGS_KEY, "{}"))
    except ValueError:
        settings = {}
    if not isinstance(settings, dict):
        settings = {}
    if not settings.get("exercise") and reader.meta.get("exercise"):
        settings["exercise"] = reader.meta["exercise"]
    return settings


def sensors(reader: SessionReader) -> dict[str, dict[str, Any]]:
    """Per device address: the user's name and limb for it (``pair --name``), if recorded."""
    try:
        data = json.loads(reader.meta.get(SENSORS_KEY, "{}"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def store_settings(writer: SessionWriter, settings: dict[str, Any]) -> None:
    writer.set_meta(SETTINGS_KEY, json.dumps(settings, sort_keys=True))


# ------------------------------------------------------------------ samples
class SessionDevice:
    """One device of a session file, its samples read block by block and checked on the way."""

    def __init__(
        self, path: Path, reader: SessionReader, samples: Any, placement: str | None,
        exercise: str | None,
    ) -> None:  # fmt: skip
        self.path = path
        self.samples = samples
        self.name = samples.name
        self.placement = placement
        self.exercise = exercise or None
        self.sample_rate_hz = float(np.median(samples.rate_hz))
        self.warnings: list[str] = []
        self.reader = reader

    def close(self) -> None:
        self.reader.close()

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        from tremorlift.store.csv_input import MIN_DURATION_S, InputNotes

        notes = InputNotes(self.sample_rate_hz)
        t_prev = -np.inf
        t_first: float | None = None
        for t, acc, gyr in self.samples.blocks():
            if not (np.isfinite(t).all() and np.isfinite(acc).all() and np.isfinite(gyr).all()):
                raise UserError(f"{self.path}: device {self.name}: samples are not finite numbers")
            if t[0] <= t_prev or (t.size > 1 and bool((np.diff(t) <= 0).any())):
                raise UserError(f"{self.path}: device {self.name}: time does not increase")
            t_prev = float(t[-1])
            t_first = float(t[0]) if t_first is None else t_first
            notes.update(t, acc, gyr)
            yield t, acc, gyr
        if t_first is not None and t_prev - t_first < MIN_DURATION_S:
            self.warnings.append(
                f"the recording lasts only {t_prev - t_first:.2f} s: too short to analyse"
            )
        self.warnings += notes.warnings()


def session_sources(reader: SessionReader) -> list[SessionDevice]:
    """Every device of the session that holds samples, as analysis sources. Samples the
    collector's live analysis saw are put on its time base (``live_timebase`` events), so the
    final analysis is fed what the live one was; the rest keep their fitted clock."""
    exercise = session_settings(reader).get("exercise")
    anchors: dict[int | None, list[dict[str, Any]]] = {}
    for rec in reader.events("live_timebase"):
        anchors.setdefault(rec.device, []).append(rec.data)
    out = []
    for dev in reader.devices():
        samples = reader.sample_stream(dev.device)
        if len(samples) >= 2:
            samples.use_live_timebase(anchors.get(dev.device, []))
            out.append(SessionDevice(reader.path, reader, samples, dev.placement, exercise))
    return out


# ------------------------------------------------------------------ the analysis
def compute_final(reader: SessionReader, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Analyse every stored sample with the session's settings (``overrides`` on top: the
    ``analyze`` flags). The result has the layout of docs/analysis-output.md, its alerts carry
    the set and rep they belong to, and ``settings`` says what was used."""
    from tremorlift.analysis.offline import analyze_streams

    settings = session_settings(reader)
    for key, value in (overrides or {}).items():
        if value is not None:
            settings[key] = value
    sources = session_sources(reader)
    if not sources:
        raise UserError(f"{reader.path}: the session holds no samples")
    if settings.get("placement"):
        for src in sources:
            src.placement = settings["placement"]
    try:
        result = analyze_streams(
            sources,
            exercise=settings.get("exercise") or None,
            goal=settings.get("goal"),
            vl_threshold_pct=settings.get("vl_threshold_pct"),
            alerts_enabled=settings.get("alerts_enabled", True),
            stop_policy=settings.get("stop_policy"),
        )
    except ValueError as exc:  # e.g. a sample rate too low
        raise UserError(f"{reader.path}: {exc}") from None
    result["input_warnings"] = [
        w if len(sources) == 1 else f"{s.name}: {w}" for s in sources for w in s.warnings
    ]
    if reader.wal_missing:
        result["input_warnings"].append(
            f"{reader.path.name} was never closed and its {reader.path.name}-wal file is not "
            "beside it: the last seconds recorded (after its last save) are missing"
        )
    number_alerts(result)
    for dev in result.get("devices", [result]):
        for s in dev["sets"]:
            if s["kind"] == "dynamic":
                s["load_kg"] = settings.get("load_kg")
    result["settings"] = settings
    final: dict[str, Any] = {**result}  # stored as JSON, read back untyped
    return final


def number_alerts(result: SessionResult) -> None:
    """Give every alert the lifting set (1, 2, ... per sensor, holds apart) and the rep it was
    raised in, as the collector numbers them live."""
    per_device: list[EngineResult] = [*result["devices"]] if "devices" in result else [result]
    by_name = {d.get("name"): d for d in per_device}
    for dev in per_device:
        for alert in dev.get("alerts", []):
            alert["set"], alert["rep"] = _set_and_rep(dev, float(alert["t_s"]))
    if result.get("devices"):
        for alert in result.get("alerts", []):
            found = by_name.get(alert.get("device"))
            if found is not None:
                alert["set"], alert["rep"] = _set_and_rep(found, float(alert["t_s"]))


def _set_and_rep(device_result: EngineResult, t_s: float) -> tuple[int | None, int | None]:
    lifting = [s for s in device_result.get("sets", []) if s.get("kind") == "dynamic"]
    for n, s in enumerate(lifting, 1):
        if float(s["start_s"]) - REP_MATCH_S <= t_s <= float(s["end_s"]) + REP_MATCH_S:
            rep = next(
                (
                    j
                    for j, r in enumerate(s.get("reps", []), 1)
                    if abs(float(r["end_s"]) - t_s) <= REP_MATCH_S
                ),
                None,
            )
            return n, rep
    return None, None


# ------------------------------------------------------------------ reading it back
def stored_final(reader: SessionReader) -> dict[str, Any] | None:
    """The final analysis stored in the session (the latest), or None."""
    recs = [r for r in reader.analyses(FINAL_KIND) if r.device is None]
    return dict(recs[-1].data) if recs else None


def live_alerts(reader: SessionReader) -> list[dict[str, Any]]:
    """What the lifter was told live: the collector's ``alert`` events, in order, with the
    sensor's name, the set and rep, whether it was complete, and when (session seconds)."""
    names: dict[int | None, str] = {d.device: d.name or d.address for d in reader.devices()}
    out = []
    for rec in reader.events("alert"):
        d = rec.data
        out.append(
            {
                "t_s": d.get("t_s"),
                "session_s": round(rec.host_s, 3),
                "level": d.get("level"),
                "kind": d.get("kind"),
                "message": d.get("message"),
                "device": names.get(rec.device, ""),
                "set": d.get("set"),
                "rep": d.get("rep"),
                "complete": bool(d.get("complete", True)),
            }  # fmt: skip
        )
    return out


def compare_alerts(live: list[dict[str, Any]], final: dict[str, Any]) -> list[dict[str, Any]]:
    """Each live alert beside the final alert it agrees with, and each final alert that was
    never told live: rows ``{"live": ..., "final": ..., "agree": bool}``. Velocity-loss alerts
    agree on the sensor, level, set and rep; others on the sensor, level and kind within
    ``TIME_MATCH_S``. Only warn and stop alerts are compared (info notes are not the call)."""
    several = bool(final.get("devices"))
    final_alerts = [a for a in final.get("alerts", []) if a.get("level") in ("warn", "stop")]
    unmatched = list(final_alerts)
    rows = []
    for la in (a for a in live if a.get("level") in ("warn", "stop")):
        match = None
        for fa in unmatched:
            if fa.get("kind") != la.get("kind") or fa.get("level") != la.get("level"):
                continue
            if several and fa.get("device") != la.get("device"):
                continue
            if la.get("kind") == "velocity_loss":
                ok = (fa.get("set"), fa.get("rep")) == (la.get("set"), la.get("rep"))
            else:
                ok = abs(float(fa["t_s"]) - float(la.get("t_s") or 0.0)) <= TIME_MATCH_S
            if ok:
                match = fa
                break
        if match is not None:
            unmatched.remove(match)
        rows.append({"live": la, "final": match, "agree": match is not None})
    rows += [{"live": None, "final": fa, "agree": False} for fa in unmatched]
    return rows


# ------------------------------------------------------------------ finalising a file
def finalise_file(path: str | os.PathLike[str], ended_by: str | None = None) -> dict[str, Any]:
    """The session's final analysis: the stored one, or computed now and stored in the file
    (a session the collector could not finalise). A file still being recorded, or one that
    cannot be written, is analysed without being changed."""
    path = Path(path)
    with SessionReader(path) as reader:
        final = stored_final(reader)
        if final is not None:
            return final
        final = compute_final(reader)
    if _still_recording(path):
        return final
    with contextlib.suppress(sqlite3.Error, OSError):
        _append_final(path, final, ended_by or "finalised when next opened (the recording "
                      "was not ended by the collector)")  # fmt: skip
    return final


def _still_recording(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    try:
        return time.time() - wal.stat().st_mtime < STILL_RECORDING_S
    except OSError:
        return False


def _append_final(path: Path, final: dict[str, Any], ended_by: str) -> None:
    db = sqlite3.connect(path, isolation_level=None, timeout=1.0)
    try:
        row = db.execute("SELECT max(host_s) FROM frames").fetchone()
        host_s = float(row[0]) if row and row[0] is not None else 0.0
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO analysis(device, host_s, kind, result) VALUES (NULL, ?, ?, ?)",
            (host_s, FINAL_KIND, json.dumps(final, allow_nan=False)),
        )
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (FINALISED_KEY, now))
        db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (ENDED_BY_KEY, ended_by))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
    finally:
        db.close()


def store_final(writer: SessionWriter, final: dict[str, Any], ended_by: str) -> None:
    """Store the final analysis through the collector's own writer (the normal ending)."""
    writer.add_analysis(FINAL_KIND, final)
    writer.set_meta(FINALISED_KEY, dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"))
    writer.set_meta(ENDED_BY_KEY, ended_by)
