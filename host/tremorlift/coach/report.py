"""A session report: one self-contained HTML file (figures inlined as base64 PNG) plus the PNGs
and a plain-language summary, for someone who has never read a paper on tremor. The figures are
drawn by ``coach/figures.py``; this module reads the session, writes the text and tables, and
assembles the page."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from tremorlift.analysis.combine import device_results
from tremorlift.analysis.contract import (
    SessionResult,
)
from tremorlift.analysis.recovery import RECOVERY_RMS_MPS2
from tremorlift.coach.figures import (
    CAUSE_WORDS,
    SETTLE_HOLD_S,
    Drawn,
    Sensor,
    fig_alerts,
    fig_holds,
    fig_left_right,
    fig_recovery,
    fig_tremor,
    fig_velocity,
    hold_growths,
    png_bytes,
    recovery_curves,
    settled_level_mps2,
)
from tremorlift.coach.results import (
    recorded_samples_lost,
    samples_lost,
    session_analysis,
    tremor_series,
    usable_arrays,
)
from tremorlift.errors import UserError
from tremorlift.store.files import write_atomic
from tremorlift.store.final import compare_alerts, live_alerts
from tremorlift.store.reader import SessionReader

STOP_POLICY_WORDS = {
    "one-more": " (a warning at the first rep past it, the stop at the next rep that confirms it)",
    "at-limit": " (the stop at the first rep past it)",
}

REST_TREMOR_NOTE = (
    "This is not a diagnosis. Tiredness, caffeine, cold, stress and some medicines can all cause "
    "a shake at rest. If it keeps coming back, consider talking to a doctor."
)


@dataclass
class ReportOutput:
    html_path: Path
    png_paths: list[Path]
    summary: str
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> what was drawn


# ============================================================================ tables

REP_COLUMNS = (
    ("set", "set"), ("rep", "rep"), ("mean_mps", "mean speed (m/s)"),
    ("peak_mps", "peak speed (m/s)"), ("rom_m", "range of motion (m)"),
    ("tut_s", "time under tension (s)"), ("loss_pct", "loss (%)"), ("load_kg", "load (kg)"),
)  # fmt: skip


def rep_rows(sensor: Sensor) -> list[dict[str, Any]]:
    """One row per rep of every lifting set: set and rep number, mean and peak limb speed,
    range of motion, time under tension, velocity loss and the set's load."""
    rows = []
    dyn = [s for s in sensor.result["sets"] if s["kind"] == "dynamic" and s["reps"]]
    for n, s in enumerate(dyn, 1):
        for j, r in enumerate(s["reps"], 1):
            rows.append({
                "set": n, "rep": j,
                "mean_mps": round(float(r["mean_concentric_velocity_mps"]), 2),
                "peak_mps": _maybe(r.get("peak_velocity_mps"), 2),
                "rom_m": _maybe(r.get("rom_m"), 2),
                "tut_s": _maybe(r.get("time_under_tension_s"), 1),
                "loss_pct": _maybe(r.get("velocity_loss_pct"), 0),
                "load_kg": _maybe(s.get("load_kg"), 1),
            })  # fmt: skip
    return rows


def _maybe(x: Any, nd: int) -> float | None:
    return None if x is None else round(float(x), nd)


def rep_table_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = [
        c for c in REP_COLUMNS if c[0] != "load_kg" or any(r["load_kg"] is not None for r in rows)
    ]
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in cols)
    body = []
    for r in rows:
        cells = "".join(
            f"<td>{'-' if r[k] is None else html.escape(format(r[k], 'g'))}</td>" for k, _ in cols
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        '<section><h2>Each rep</h2>\n<table class="reps">\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table>\n"
        "<p>Speeds are of the limb the sensor is on, not of the bar. Loss: how much slower than "
        "the fastest rep of the set so far. Time under tension: the whole rep, down and up.</p>"
        "</section>"
    )


def load_velocity_for(
    result: SessionResult, history: list[dict[str, Any]], this_session_id: str
) -> tuple[str, dict[str, Any]] | None:
    """The load-velocity profile of the session's exercise from its own sets with a load and
    the history's other sessions of that exercise; None when the session has no exercise or no
    set with a load."""
    from tremorlift.analysis.loadvelocity import mvt_mps, profile, set_points

    main = device_results(result)[0]
    dyn = [s for s in main["sets"] if s["kind"] == "dynamic"]
    names = {s.get("exercise", "unknown") for s in dyn} - {"unknown"}
    if len(names) != 1:
        return None
    (ex,) = names
    own = set_points(dyn)
    if not own:
        return None
    earlier = [
        (float(x), float(v))
        for h in history
        if h.get("session_id") != this_session_id
        for x, v in (h.get("exercises", {}).get(ex, {}).get("loads") or [])
    ]
    return ex, profile(own + earlier, mvt_mps(ex))


# ============================================================================ text


def _sensor_sentence(s: Sensor) -> str:
    lost = f", {s.lost} samples lost" if s.lost else ", no samples lost"
    return f"{s.name} on the {s.placement or 'body'}: {s.samples} samples{lost}"


def _alert_words(a: dict[str, Any]) -> str:
    where = f"set {a['set']} rep {a['rep']}" if a.get("rep") else (
        f"set {a['set']}" if a.get("set") else f"at {float(a.get('t_s') or 0.0):.0f} s"
    )  # fmt: skip
    return f"{a.get('level')} ({str(a.get('kind', '')).replace('_', ' ')}, {where})"


def live_sentence(rows: list[dict[str, Any]]) -> str | None:
    """Where what the lifter was told live differs from the final analysis, in words."""
    told = [r for r in rows if r["live"] is not None]
    if not rows:
        return None
    if all(r["agree"] for r in rows):
        return f"Told live: {len(told)} warnings or stops, each as the final analysis has it."
    parts = []
    for r in rows:
        if r["agree"]:
            continue
        if r["live"] is not None:
            partial = "" if r["live"].get("complete", True) else ", computed over lost samples"
            parts.append(f"{_alert_words(r['live'])} told live{partial}, not in the final analysis")
        else:
            parts.append(f"{_alert_words(r['final'])} found afterwards, not told live")
    return "Live calls that differed: " + "; ".join(parts) + "."


def summary_text(
    result: SessionResult, sensors: list[Sensor], meta: dict[str, str],
    live_rows: list[dict[str, Any]] | None = None,
    load_velocity: tuple[str, dict[str, Any]] | None = None,
) -> str:  # fmt: skip
    """The plain-language summary printed to stdout and put at the top of the HTML."""
    lines: list[str] = []
    dur = float(result.get("duration_s") or 0.0)
    when = (meta.get("created_utc") or "")[:16].replace("T", " ")
    lines.append(
        f"Session {when} UTC, {dur / 60:.1f} min." if when else f"Session of {dur / 60:.1f} min."
    )
    lines.append("Sensors: " + "; ".join(_sensor_sentence(s) for s in sensors) + ".")
    main = sensors[0].result if sensors else device_results(result)[0]
    thr = float(main.get("velocity_loss_threshold_pct") or 20.0)
    sets = main["sets"]
    dyn = [s for s in sets if s["kind"] == "dynamic"]
    holds = [s for s in sets if s["kind"] == "hold"]
    reps = sum(len(s["reps"]) for s in dyn)
    lines.append(
        f"{len(dyn)} sets with {reps} reps, {len(holds)} holds. Velocity-loss limit: {thr:.0f} %"
        + STOP_POLICY_WORDS.get(str(result.get("stop_policy", "")), "")
        + "."
    )
    allv = [r["mean_concentric_velocity_mps"] for s in dyn for r in s["reps"]]
    if allv:
        lines.append(
            f"Best rep: {max(allv):.2f} m/s average limb speed while lifting (the speed of the "
            "limb the sensor is on, not of the bar)."
        )
    stops = [
        a for a in main["alerts"] if a.get("kind") == "velocity_loss" and a.get("level") == "stop"
    ]
    n_kind = {"dynamic": 0, "hold": 0}
    growths = hold_growths(sensors[0]) if sensors else {}
    for k, s in enumerate(sets):
        n_kind[s["kind"]] = i = n_kind.get(s["kind"], 0) + 1  # sets and holds numbered apart
        if s["kind"] == "dynamic" and s["reps"]:
            best = max(r["mean_concentric_velocity_mps"] for r in s["reps"])
            vl = float(s.get("velocity_loss_pct") or 0.0)
            verdict = "past the limit" if vl >= thr else "within the limit"
            stop = [a for a in stops if s["start_s"] <= a["t_s"] <= s["end_s"] + 1.0]
            told = f"; told to stop at {stop[0]['t_s']:.0f} s" if stop else ""
            f1 = s.get("fatigue_vs_set1_pct")
            if i > 1 and f1 is not None and abs(f1) >= 1.0:
                told += (
                    f"; best rep {abs(f1):.0f} % {'slower' if f1 > 0 else 'faster'} than in set 1"
                )
            lines.append(
                f"  Set {i} ({s.get('exercise', 'unknown')}): {len(s['reps'])} reps, best {best:.2f} m/s, "
                f"final rep {vl:.0f} % slower than the best ({verdict}){told}."
            )
        elif s["kind"] == "hold":
            g = growths.get(k, s.get("tremor_growth_pct_per_s"))
            grew = (
                f", shaking {'grew' if g >= 0 else 'fell'} {abs(g):.1f} % per second (the holds "
                "figure's trend)"
                if g is not None
                else ""
            )
            why = f"; ended by {s['stop_reason']}" if s.get("stop_reason") else ""
            lines.append(
                f"  Hold {i} ({s.get('exercise', 'unknown')}): {s['end_s'] - s['start_s']:.0f} s{grew}{why}."
            )
    episodes = result["tremor_episodes"]
    if not episodes:
        lines.append("Tremor: no shaking episodes above your normal level.")
    else:
        by = {
            c: [e for e in episodes if e.get("cause") == c]
            for c in ("fatigue", "instability", "rest", "other")
        }
        parts = [f"{len(v)} from {CAUSE_WORDS[c]}" for c, v in by.items() if v]
        lines.append(f"Tremor: {len(episodes)} episodes ({', '.join(parts)}).")
        if by["fatigue"]:
            lines.append(
                "  Shaking from tiring muscles is normal near the end of hard sets; it should settle within a few minutes of rest."
            )
        if by["instability"]:
            lines.append(
                "  Wobbling means balance or control was being challenged: consider a lighter load or a steadier stance."
            )
        if by["rest"]:
            hz = np.median([e["peak_hz"] for e in by["rest"]])
            lines.append(
                f"  A steady {hz:.0f} Hz shake was found while resting, not after effort. {REST_TREMOR_NOTE}"
            )
    curves = recovery_curves(sensors[0]) if sensors else []
    level = settled_level_mps2(sensors[0]) if sensors else None
    rec = [at for _, _, _, at in curves if at is not None]
    if rec and level is not None:
        lines.append(
            f"Recovery: shaking settled {np.median(rec):.0f} s after a set (median of "
            f"{len(rec)}; settled: at or below {level:.2f} m/s², your warm-up level plus "
            f"{RECOVERY_RMS_MPS2:.2f}, for {SETTLE_HOLD_S:.0f} s)."
        )
    unsettled = len(curves) - len(rec)
    if unsettled and level is not None:
        lines.append(
            f"  After {unsettled} of {len(curves)} sets the shaking had not settled before the "
            "next set or the end of the recording."
        )
    # The session's velocity comparison, with its uncertainty (analysis/limbs.py): the faster
    # limb named only when the difference is beyond what the sensors can tell apart.
    speed_verdicts = [
        a["message"]
        for a in result["alerts"]
        if a["kind"] == "asymmetry"
        and ("moved faster" in a["message"] or a["message"].startswith("no velocity"))
    ]
    if speed_verdicts and len(sensors) >= 2:
        lines.append(f"Left vs right: {speed_verdicts[-1]}.")
    warn = [a for a in result["alerts"] if a.get("level") in ("warn", "stop")]
    lines.append(f"Alerts: {len(result['alerts'])} in all, {len(warn)} warnings or stops.")
    live = live_sentence(live_rows or [])
    if live:
        lines.append(live)
    if load_velocity is not None:
        from tremorlift.analysis.loadvelocity import words

        ex, prof = load_velocity
        lines.append(f"Load and speed: {words(prof, ex)}")
        if prof["slope_mps_per_kg"] is not None:
            lines.append(f"  Method: {prof['method']}, over this and earlier sessions' sets.")
    return "\n".join(lines) + "\n"


# ============================================================================ output


CAPTIONS = {
    "velocity": "Each bar is one rep's average speed while lifting, of the limb the sensor is on (not the bar's): the number on "
    "it in m/s, and under it how much slower than the set's fastest rep. The dashed line is the set's limit on the same "
    "speed axis (the best rep's speed less the velocity-loss limit); "
    "reps that reached the limit are orange. Stopping there keeps fatigue in check.",
    "tremor": "Top: how strongly the sensor shook in the tremor range. Bottom: how fast it shook. Coloured bands mark shaking "
    "episodes and their likely cause; grey bands are sets and holds.",
    "holds": "Shaking during each hold, from its start; the dashed trend's growth per second is the one in the legend and "
    "the summary. Steady growth is normal muscle fatigue; sudden large shaking means end the hold.",
    "recovery": "Shaking after each set ends. The circle marks where the line settled: at or below the grey dashed line (your "
    "warm-up level plus a margin) for 3 s; the summary's time is the same point.",
    "left-right": "The two sensors compared, set by set: average limb speed and strongest shaking.",
    "alerts": "Every alert on the session's timeline: notes, warnings (one more rep at most) and stops.",
}


def read_session(
    session: Path,
) -> tuple[SessionResult, list[Sensor], dict[str, str], list[dict[str, Any]]]:
    """The session's final analysis, its sensors (with their tremor curves), meta and how the
    live calls compared: what the report is drawn from."""
    with SessionReader(session) as reader:
        arrays = usable_arrays(reader)
        result = session_analysis(reader)
        live_rows = compare_alerts(live_alerts(reader), cast(dict[str, Any], result))
        meta = dict(reader.meta)
        lost = {
            a.device: max(samples_lost(a), recorded_samples_lost(reader, a.device) or 0)
            for a, _ in arrays
        }
    per_dev = device_results(result)
    sensors: list[Sensor] = []
    for k, r in enumerate(per_dev):
        arr = next((a for a, _ in arrays if a.name == r.get("name")), None)
        if arr is None and k < len(arrays):
            arr = arrays[k][0]
        pl = r.get("placement") or (arrays[k][1] if k < len(arrays) else None)
        series = None
        if arr is not None and len(arr) >= 2:
            rate = (
                float(np.median(arr.rate_hz))
                if arr.rate_hz
                else float(r.get("sample_rate_hz") or 200.0)
            )
            series = tremor_series(arr.t_s, arr.accel_mps2, rate)
        sensors.append(
            Sensor(r.get("name") or (arr.name if arr is not None else f"sensor {k + 1}"), pl, r, series,
                    len(arr) if arr is not None else 0, lost[arr.device] if arr is not None else 0)
        )  # fmt: skip
    return result, sensors, meta, live_rows


def build_report(
    session: Path, out_dir: Path, history: list[dict[str, Any]] | None = None
) -> ReportOutput:
    """Write ``report.html`` and one PNG per figure into ``out_dir``; return what was written.
    ``history``: the indexed sessions for the load-velocity profile (None: read the index)."""
    if history is None:
        from tremorlift.coach.history import load_history

        try:
            history = load_history()
        except UserError:  # a damaged index costs the report only the earlier sessions' loads
            history = []
    result, sensors, meta, live_rows = read_session(session)
    main = sensors[0]
    figs: list[tuple[str, Drawn | None]] = [
        ("velocity", fig_velocity(main)),
        ("tremor", fig_tremor(sensors, main.result["sets"], result["tremor_episodes"])),
        ("holds", fig_holds(main)),
        ("recovery", fig_recovery(main)),
        ("left-right", fig_left_right(sensors, result.get("asymmetry", []))),
        (
            "alerts",
            fig_alerts(
                result["alerts"], main.result["sets"], float(result.get("duration_s") or 0.0)
            ),
        ),
    ]
    from tremorlift.coach.history import session_id

    lv = load_velocity_for(result, history, session_id(meta))
    text = summary_text(result, sensors, meta, live_rows, lv)
    rows = rep_rows(main)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"{out_dir}: cannot create the report folder ({exc.strerror or exc})"
        ) from None
    pngs: list[Path] = []
    sections: list[str] = []
    info: dict[str, dict[str, Any]] = {}
    try:
        for name, made in figs:
            if made is None:
                continue
            fig, drawn = made
            data = png_bytes(fig)
            title = fig.get_suptitle()
            path = out_dir / f"{name}.png"
            write_atomic(path, data)
            pngs.append(path)
            info[name] = drawn
            b64 = base64.b64encode(data).decode("ascii")
            sections.append(
                f'<section><h2>{html.escape(title)}</h2>\n<img src="data:image/png;base64,{b64}" '
                f'alt="{html.escape(title)}">\n<p>{html.escape(CAPTIONS[name])}</p></section>'
            )
        if rows:
            sections.insert(min(1, len(sections)), rep_table_html(rows))
            info["reps"] = {"rows": len(rows)}
        if lv is not None:
            info["load_velocity"] = lv[1]
        page = _html_page(session.name, text, sections)
        html_path = out_dir / "report.html"
        write_atomic(html_path, page)
    except OSError as exc:
        raise UserError(f"{out_dir}: cannot write the report ({exc.strerror or exc})") from None
    return ReportOutput(html_path, pngs, text, info)


def _html_page(name: str, text: str, sections: list[str]) -> str:
    items = []
    for line in text.rstrip("\n").split("\n"):
        cls = ' class="sub"' if line.startswith("  ") else ""
        items.append(f"<li{cls}>{html.escape(line.strip())}</li>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tremorlift report: {html.escape(name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1040px; margin: 2em auto; padding: 0 1em; color: #111; background: #fff; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.15em; margin-top: 2em; }}
ul.summary {{ background: #f4f4f4; padding: 1em 2em; border-radius: 6px; }}
li.sub {{ margin-left: 1.5em; list-style: circle; }}
img {{ max-width: 100%; height: auto; border: 1px solid #ddd; }}
table.reps {{ border-collapse: collapse; font-variant-numeric: tabular-nums; }}
table.reps th, table.reps td {{ border-bottom: 1px solid #ddd; padding: 0.2em 0.7em; text-align: right; }}
p {{ color: #333; }}
</style></head>
<body>
<h1>tremorlift report: {html.escape(name)}</h1>
<ul class="summary">
{chr(10).join(items)}
</ul>
{chr(10).join(sections)}
<p><small>Velocities are of the sensor on the limb. Tremor figures describe shaking measured by the sensor; they are not a medical assessment.</small></p>
</body></html>
"""
