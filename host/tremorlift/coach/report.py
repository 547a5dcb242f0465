"""A session report: one self-contained HTML file (figures inlined as base64 PNG) plus the PNGs
and a plain-language summary, for someone who has never read a paper on tremor.

The only module that imports matplotlib; it uses the object-oriented API on the Agg backend (no
pyplot global state, no display needed). Colours are the Okabe-Ito palette, which stays
distinguishable with the common colour-vision deficiencies; causes also differ by hatch.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from tremorlift.analysis.combine import device_results  # noqa: E402
from tremorlift.analysis.contract import (  # noqa: E402
    Alert,
    AsymmetryRow,
    DeviceResult,
    SessionResult,
    Set,
    TremorCause,
    TremorEpisode,
)
from tremorlift.analysis.recovery import RECOVERY_RMS_MPS2  # noqa: E402
from tremorlift.coach.results import (  # noqa: E402
    TremorSeries,
    recorded_samples_lost,
    samples_lost,
    session_analysis,
    tremor_series,
    usable_arrays,
)
from tremorlift.errors import UserError  # noqa: E402
from tremorlift.store.files import write_atomic  # noqa: E402
from tremorlift.store.final import compare_alerts, live_alerts  # noqa: E402
from tremorlift.store.reader import SessionReader  # noqa: E402

# Okabe-Ito.
BLUE = "#0072B2"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#999999"
DARK_GREY = "#555555"
BLACK = "#000000"
CAUSE_COLOURS = {"fatigue": ORANGE, "instability": BLUE, "rest": PURPLE, "other": DARK_GREY}
CAUSE_HATCH = {"fatigue": "//", "instability": "\\\\", "rest": "xx", "other": ".."}
CAUSE_WORDS = {
    "fatigue": "tiring muscles",
    "instability": "wobbling (balance)",
    "rest": "shaking at rest",
    "other": "other shaking",
}
LEVEL_COLOURS = {"info": SKY, "warn": ORANGE, "stop": VERMILLION}
LEVEL_MARKERS = {"info": "o", "warn": "s", "stop": "X"}
DEVICE_COLOURS = (BLUE, ORANGE, GREEN, PURPLE)
BAR_OK = BLUE
BAR_PAST_LIMIT = ORANGE
DPI = 100
RECOVERY_WINDOW_S = 180.0
STOP_POLICY_WORDS = {
    "one-more": " (a warning at the first rep past it, the stop at the next rep that confirms it)",
    "at-limit": " (the stop at the first rep past it)",
}
# The recovery curve has settled once it stays at or below the settled level this long (as the
# engine's recovery reads 6 still windows, 3 s).
SETTLE_HOLD_S = 3.0
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


@dataclass
class _Sensor:
    name: str
    placement: str | None
    result: DeviceResult
    series: TremorSeries | None
    samples: int
    lost: int


# ============================================================================ figures


def _shade_sets(ax: Axes, sets: list[Set]) -> None:
    for s in sets:
        ax.axvspan(s["start_s"], s["end_s"], color="#DDDDDD", zorder=0, lw=0)


def _shade_episodes(ax: Axes, episodes: list[TremorEpisode]) -> None:
    for e in episodes:
        c = e.get("cause", "other")
        ax.axvspan(
            e["start_s"], e["end_s"], facecolor=CAUSE_COLOURS.get(c, GREY), alpha=0.35,
            hatch=CAUSE_HATCH.get(c, ""), edgecolor=CAUSE_COLOURS.get(c, GREY), lw=0, zorder=1,
        )  # fmt: skip


def _cause_legend(causes: list[TremorCause]) -> list[Patch]:
    handles = [Patch(facecolor="#DDDDDD", label="set or hold")]
    for c in ("fatigue", "instability", "rest", "other"):
        if c in causes:
            handles.append(
                Patch(
                    facecolor=CAUSE_COLOURS[c],
                    alpha=0.5,
                    hatch=CAUSE_HATCH[c],
                    edgecolor=CAUSE_COLOURS[c],
                    label=CAUSE_WORDS[c],
                )
            )
    return handles


def speed_cutoffs_mps(s: Set, thr_pct: float) -> list[float | None]:
    """Per rep, the set's limit on the speed axis: the reference that rep's loss was measured
    against (its speed / (1 - loss)), times (1 - threshold). A rep is past the limit exactly
    when its speed is at or below this; the reference can move during a set (a faster rep, or
    a first rep set aside as too fast for the set: analysis/alerts.py)."""
    out: list[float | None] = []
    prev: float | None = None
    for r in s["reps"]:
        v, vl = r["mean_concentric_velocity_mps"], r.get("velocity_loss_pct")
        ref = v / (1.0 - vl / 100.0) if vl is not None and vl < 99.0 else prev
        prev = ref
        out.append(None if ref is None else ref * (1.0 - thr_pct / 100.0))
    return out


def fig_velocity(sensor: _Sensor) -> tuple[Figure, dict[str, Any]] | None:
    sets = [s for s in sensor.result["sets"] if s["kind"] == "dynamic" and s["reps"]]
    if not sets:
        return None
    thr = float(sensor.result.get("velocity_loss_threshold_pct") or 20.0)
    n = len(sets)
    widths = [max(4, len(s["reps"])) for s in sets]
    fig = Figure(figsize=(max(7.0, 0.55 * sum(widths) + 1.5), 4.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, n, sharey=True, squeeze=False, width_ratios=widths)[0]
    vmax = max(r["mean_concentric_velocity_mps"] for s in sets for r in s["reps"])
    bars = past = 0
    cutoffs: list[list[float | None]] = []
    labels: list[list[str]] = []
    for i, (ax, s) in enumerate(zip(axes, sets, strict=True)):
        v = np.array([r["mean_concentric_velocity_mps"] for r in s["reps"]])
        vl = np.array(
            [
                r.get("velocity_loss_pct", 100.0 * (1 - x / max(v.max(), 1e-9)))
                for r, x in zip(s["reps"], v, strict=True)
            ]
        )
        colours = [BAR_PAST_LIMIT if x >= thr else BAR_OK for x in vl]
        reps = np.arange(1, v.size + 1)
        drawn = ax.bar(reps, v, width=0.7, color=colours, zorder=2)
        # Each bar's speed on it, and its loss under the number.
        text = [f"{x:.2f}\n-{max(0.0, y):.0f}%" for x, y in zip(v, vl, strict=True)]
        ax.bar_label(drawn, labels=text, padding=2, fontsize=7, zorder=4)
        labels.append(text)
        bars += v.size
        past += int((vl >= thr).sum())
        cut = speed_cutoffs_mps(s, thr)
        cutoffs.append([None if c is None else round(c, 4) for c in cut])
        known = [(k, c) for k, c in enumerate(cut) if c is not None]
        if known:
            xs = np.r_[[reps[k] - 0.5 for k, _ in known], reps[known[-1][0]] + 0.5]
            ys = np.r_[[c for _, c in known], known[-1][1]]
            ax.plot(xs, ys, color=BLACK, ls="--", lw=1.2, drawstyle="steps-post", zorder=3,
                    gid="limit")  # fmt: skip
            ax.annotate(
                f"limit {known[0][1]:.2f} m/s", (reps[known[0][0]] - 0.5, known[0][1]),
                xytext=(1, -9), textcoords="offset points", fontsize=7,
            )  # fmt: skip
        ax.set_ylim(0, vmax * 1.35)
        ax.set_xticks(reps)
        ax.set_xlabel("rep")
        ax.set_title(f"set {i + 1}: {s.get('exercise', '')}".rstrip(": "), fontsize=10)
    axes[0].set_ylabel("average limb speed while lifting (m/s)")
    handles = [
        Patch(color=BAR_OK, label="rep (m/s; % slower than the best)"),
        Patch(color=BAR_PAST_LIMIT, label=f"rep {thr:.0f} % or more slower"),
        Line2D([], [], color=BLACK, ls="--", lw=1.2, label=f"limit: best rep less {thr:.0f} %"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False, fontsize=9)
    fig.suptitle("Limb speed of each rep, and the speed limit of each set", fontsize=12)
    return fig, {
        "bars": bars, "bars_past_limit": past, "sets": n, "cutoff_mps": cutoffs,
        "bar_labels": labels,
    }  # fmt: skip


def fig_tremor(
    sensors: list[_Sensor], sets: list[Set], episodes: list[TremorEpisode]
) -> tuple[Figure, dict[str, Any]]:
    fig = Figure(figsize=(10.0, 5.5), dpi=DPI, layout="constrained")
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    for ax in (ax1, ax2):
        _shade_sets(ax, sets)
        _shade_episodes(ax, episodes)
    lines = 0
    for k, s in enumerate(sensors):
        if s.series is None or not s.series.t_s.size:
            continue
        c = DEVICE_COLOURS[k % len(DEVICE_COLOURS)] if len(sensors) > 1 else BLACK
        label = s.name if len(sensors) > 1 else None
        ax1.plot(s.series.t_s, s.series.rms_mps2, color=c, lw=1.0, label=label, zorder=3)
        ax2.plot(s.series.t_s, s.series.peak_hz, ".", color=c, ms=3, zorder=3)
        lines += 1
    band = sensors[0].series.band_hz if sensors and sensors[0].series else (3.0, 15.0)
    ax1.set_ylabel("shaking strength\n(m/s², RMS)")
    ax2.set_ylabel("shaking speed\n(Hz = shakes per second)")
    ax2.set_xlabel("time since the start of the recording (s)")
    ax2.set_ylim(band[0] - 0.5, band[1] + 0.5)
    ax1.set_ylim(bottom=0)
    causes = sorted({e.get("cause", "other") for e in episodes})
    handles = _cause_legend(causes)
    if len(sensors) > 1:
        handles += ax1.get_legend_handles_labels()[0]
    fig.legend(
        handles=handles, loc="outside lower center", ncols=min(6, len(handles)), frameon=False
    )
    fig.suptitle(
        f"Shaking (tremor, {band[0]:.0f}-{band[1]:.0f} Hz) over the session, coloured by likely cause",
        fontsize=12,
    )
    return fig, {"episodes": len(episodes), "causes": causes, "lines": lines}


def _window(series: TremorSeries, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
    m = (series.t_s >= t0) & (series.t_s <= t1)
    return series.t_s[m] - t0, series.rms_mps2[m]


def hold_trend(t: np.ndarray, r: np.ndarray) -> tuple[float, np.ndarray] | None:
    """The exponential trend of a hold's shaking as drawn (least squares on log RMS): its
    growth in % per second and the line's values at ``t``; None when it cannot be fitted."""
    if t.size < 4 or not np.all(r > 0):
        return None
    slope, icpt = np.polyfit(t, np.log(r), 1)
    return float(100.0 * (np.exp(slope) - 1.0)), np.exp(icpt + slope * t)


def hold_growths(sensor: _Sensor) -> dict[int, float | None]:
    """Per hold (its index in the sensor's sets): the growth the holds figure draws, % per
    second; the engine's figure where there is no curve to draw."""
    out: dict[int, float | None] = {}
    for i, h in enumerate(sensor.result["sets"]):
        if h["kind"] != "hold":
            continue
        fit = None
        if sensor.series is not None and sensor.series.t_s.size:
            fit = hold_trend(*_window(sensor.series, h["start_s"], h["end_s"]))
        out[i] = fit[0] if fit is not None else h.get("tremor_growth_pct_per_s")
    return out


def fig_holds(sensor: _Sensor) -> tuple[Figure, dict[str, Any]] | None:
    holds = [s for s in sensor.result["sets"] if s["kind"] == "hold"]
    if not holds or sensor.series is None or not sensor.series.t_s.size:
        return None
    fig = Figure(figsize=(8.0, 4.2), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    drawn = 0
    growths: list[float | None] = []
    for i, h in enumerate(holds):
        t, r = _window(sensor.series, h["start_s"], h["end_s"])
        if t.size < 2:
            continue
        fit = hold_trend(t, r)
        growth = f", trend {fit[0]:+.1f} %/s" if fit is not None else ""
        c = DEVICE_COLOURS[i % len(DEVICE_COLOURS)]
        ax.plot(
            t,
            r,
            color=c,
            lw=1.5,
            label=f"hold {i + 1}: {h.get('exercise', '')} ({h['end_s'] - h['start_s']:.0f} s{growth})",
        )
        if fit is not None:
            ax.plot(t, fit[1], color=c, ls="--", lw=1.0, gid=f"trend-{i}")
        growths.append(None if fit is None else round(fit[0], 3))
        onset = h.get("time_to_tremor_onset_s")
        if onset is not None:
            ax.axvline(onset, color=c, ls=":", lw=1.0)
        drawn += 1
    if not drawn:
        return None
    ax.set_xlabel("time since the hold started (s)")
    ax.set_ylabel("shaking strength (m/s², RMS)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", frameon=False, title="dashed: trend; dotted: shaking took off")
    fig.suptitle("Shaking during holds: it grows as the muscles tire", fontsize=12)
    return fig, {"holds": drawn, "growth_pct_per_s": growths}


def settled_level_mps2(sensor: _Sensor) -> float | None:
    """Where the recovery curve counts as settled: the warm-up level plus the engine's
    recovery margin (RECOVERY_RMS_MPS2); None without a warm-up level."""
    base = sensor.result.get("tremor_baseline_rms_mps2")
    return None if base is None else float(base) + RECOVERY_RMS_MPS2


def settle_time_s(t: np.ndarray, r: np.ndarray, level: float) -> float | None:
    """The first time on the curve from which it stays at or below ``level`` for
    SETTLE_HOLD_S; None when it never does within the curve."""
    for i in range(t.size):
        if t[-1] < t[i] + SETTLE_HOLD_S:
            return None  # too little curve left to tell
        span = (t >= t[i]) & (t <= t[i] + SETTLE_HOLD_S)
        if bool(np.all(r[span] <= level)):
            return float(t[i])
    return None


def recovery_curves(sensor: _Sensor) -> list[tuple[int, np.ndarray, np.ndarray, float | None]]:
    """Per set or hold with a curve after it: (its index, time since its end, RMS, the time
    the curve settled or None). The recovery figure and the summary both read these."""
    sets = sensor.result["sets"]
    if sensor.series is None or not sensor.series.t_s.size:
        return []
    level = settled_level_mps2(sensor)
    out = []
    for i, s in enumerate(sets):
        nxt = sets[i + 1]["start_s"] if i + 1 < len(sets) else np.inf
        t, r = _window(sensor.series, s["end_s"], min(s["end_s"] + RECOVERY_WINDOW_S, nxt))
        if t.size < 2:
            continue
        out.append((i, t, r, None if level is None else settle_time_s(t, r, level)))
    return out


def fig_recovery(sensor: _Sensor) -> tuple[Figure, dict[str, Any]] | None:
    sets = sensor.result["sets"]
    curves = recovery_curves(sensor)
    if not curves:
        return None
    fig = Figure(figsize=(8.0, 4.2), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    settled: list[float | None] = []
    for i, t, r, at in curves:
        colour = DEVICE_COLOURS[i % len(DEVICE_COLOURS)]
        label = f"after {_set_label(sets, i)}" + (
            (": settled at once" if at < 0.5 else f": settled in {at:.0f} s")
            if at is not None
            else ": not settled in view"
        )
        ax.plot(t, r, color=colour, ls=("-", "--", ":", "-.")[(i // 4) % 4], lw=1.5, label=label)
        if at is not None:
            y = float(np.interp(at, t, r))
            ax.plot([at], [y], marker="o", ms=7, mfc="none", mec=colour, mew=1.5, zorder=4)
        settled.append(None if at is None else round(at, 2))
    base = sensor.result.get("tremor_baseline_rms_mps2")
    level = settled_level_mps2(sensor)
    if base is not None and level is not None:
        ax.axhline(base, color=BLACK, ls=":", lw=1.2, label="your warm-up level")
        ax.axhline(level, color=GREY, ls="--", lw=1.0, label="settled: below this line for 3 s")
    ax.set_xlabel("time since the set ended (s)")
    ax.set_ylabel("shaking strength (m/s², RMS)")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, title="circle: where the curve settled")
    fig.suptitle("Settling down after each set (lower is calmer)", fontsize=12)
    return fig, {"curves": len(curves), "settled_s": settled, "settled_level_mps2": level}


def _set_label(sets: list[Set], i: int) -> str:
    """'set 2' or 'hold 1': sets and holds are numbered apart, as in the summary."""
    kind = sets[i]["kind"]
    n = sum(1 for s in sets[: i + 1] if s["kind"] == kind)
    return f"{'hold' if kind == 'hold' else 'set'} {n}"


def fig_left_right(
    sensors: list[_Sensor], asymmetry: list[AsymmetryRow]
) -> tuple[Figure, dict[str, Any]] | None:
    if len(sensors) < 2:
        return None
    a, b = sensors[0], sensors[1]
    pairs = []
    for sa in a.result["sets"]:
        sb = max(
            b.result["sets"],
            key=lambda x: min(x["end_s"], sa["end_s"]) - max(x["start_s"], sa["start_s"]),
            default=None,
        )
        if sb is not None and min(sb["end_s"], sa["end_s"]) > max(sb["start_s"], sa["start_s"]):
            pairs.append((sa, sb))
    if not pairs:
        return None

    def mean_v(s: Set) -> float:
        v = [r["mean_concentric_velocity_mps"] for r in s["reps"]]
        return float(np.mean(v)) if v else 0.0

    fig = Figure(figsize=(9.0, 4.2), dpi=DPI, layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    x = np.arange(1, len(pairs) + 1)
    w = 0.38
    for ax, getter, ylabel in (
        (ax1, mean_v, "average limb speed while lifting (m/s)"),
        (
            ax2,
            lambda s: float(s.get("tremor_rms_max_mps2") or 0.0),
            "strongest shaking (m/s², RMS)",
        ),
    ):
        ax.bar(
            x - w / 2, [getter(p[0]) for p in pairs], width=w, color=DEVICE_COLOURS[0], label=a.name
        )
        ax.bar(
            x + w / 2, [getter(p[1]) for p in pairs], width=w, color=DEVICE_COLOURS[1], label=b.name
        )
        ax.set_xticks(
            x,
            [_set_label(a.result["sets"], a.result["sets"].index(p[0])) for p in pairs],
        )
        ax.set_ylabel(ylabel)
    ax1.set_title("speed", fontsize=10)
    ax2.set_title("shaking", fontsize=10)
    ax1.legend(frameon=False)
    fig.suptitle(f"{a.name} against {b.name}, set by set", fontsize=12)
    return fig, {"pairs": len(pairs)}


def fig_alerts(
    alerts: list[Alert], sets: list[Set], duration_s: float
) -> tuple[Figure, dict[str, Any]]:
    fig = Figure(figsize=(10.0, 3.2), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    _shade_sets(ax, sets)
    rows = {"info": 0, "warn": 1, "stop": 2}
    for level, y in rows.items():
        pts = [a for a in alerts if a.get("level") == level]
        if pts:
            ax.scatter(
                [a["t_s"] for a in pts],
                [y] * len(pts),
                s=90,
                marker=LEVEL_MARKERS[level],
                color=LEVEL_COLOURS[level],
                zorder=3,
                label=level,
            )
        for a in pts:
            ax.annotate(
                a.get("kind", "").replace("_", " "),
                (a["t_s"], y),
                xytext=(4, 7),
                textcoords="offset points",
                fontsize=8,
            )
    ax.set_yticks(list(rows.values()), ["note", "warning", "stop"])
    ax.set_ylim(-0.7, 2.7)
    ax.set_xlim(0, max(duration_s, max((a["t_s"] for a in alerts), default=0.0)) * 1.03 + 1)
    ax.set_xlabel("time since the start of the recording (s)")
    if not alerts:
        ax.text(
            0.5, 0.5, "no alerts in this session", transform=ax.transAxes, ha="center", va="center"
        )
    fig.suptitle("When tremorlift spoke up (grey: sets and holds)", fontsize=12)
    return fig, {"alerts": len(alerts)}


# ============================================================================ tables

REP_COLUMNS = (
    ("set", "set"), ("rep", "rep"), ("mean_mps", "mean speed (m/s)"),
    ("peak_mps", "peak speed (m/s)"), ("rom_m", "range of motion (m)"),
    ("tut_s", "time under tension (s)"), ("loss_pct", "loss (%)"), ("load_kg", "load (kg)"),
)  # fmt: skip


def rep_rows(sensor: _Sensor) -> list[dict[str, Any]]:
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


def _sensor_sentence(s: _Sensor) -> str:
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
    result: SessionResult, sensors: list[_Sensor], meta: dict[str, str],
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


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


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
) -> tuple[SessionResult, list[_Sensor], dict[str, str], list[dict[str, Any]]]:
    """The session's final analysis, its sensors (with their tremor curves), meta and how the
    live calls compared: what the report is drawn from."""
    with SessionReader(session) as reader:
        arrays = usable_arrays(reader)
        result = session_analysis(reader, arrays)
        live_rows = compare_alerts(live_alerts(reader), cast(dict[str, Any], result))
        meta = dict(reader.meta)
        lost = {
            a.device: max(samples_lost(a), recorded_samples_lost(reader, a.device) or 0)
            for a, _ in arrays
        }
    per_dev = device_results(result)
    sensors: list[_Sensor] = []
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
            _Sensor(r.get("name") or (arr.name if arr is not None else f"sensor {k + 1}"), pl, r, series,
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
    figs: list[tuple[str, tuple[Figure, dict[str, Any]] | None]] = [
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
            data = _png(fig)
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
