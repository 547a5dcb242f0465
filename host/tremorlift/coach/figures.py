"""The report's figures: the only module that imports matplotlib. It uses the object-oriented
API on the Agg backend (no pyplot global state, no display needed). Colours are the Okabe-Ito
palette, which stays distinguishable with the common colour-vision deficiencies; causes also
differ by hatch. Each figure function returns the figure and what it drew (for the tests)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from tremorlift.analysis.contract import (  # noqa: E402
    Alert,
    AsymmetryRow,
    DeviceResult,
    Set,
    TremorCause,
    TremorEpisode,
)
from tremorlift.analysis.recovery import RECOVERY_RMS_MPS2  # noqa: E402
from tremorlift.coach.results import (  # noqa: E402
    TremorSeries,
)

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
# The recovery curve has settled once it stays at or below the settled level this long (as the
# engine's recovery reads 6 still windows, 3 s).
SETTLE_HOLD_S = 3.0


# A figure and what it drew (for the tests and the report's checks).
Drawn = tuple[Figure, dict[str, Any]]


@dataclass
class Sensor:
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


def fig_velocity(sensor: Sensor) -> tuple[Figure, dict[str, Any]] | None:
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
    sensors: list[Sensor], sets: list[Set], episodes: list[TremorEpisode]
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


def hold_growths(sensor: Sensor) -> dict[int, float | None]:
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


def fig_holds(sensor: Sensor) -> tuple[Figure, dict[str, Any]] | None:
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


def settled_level_mps2(sensor: Sensor) -> float | None:
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


def recovery_curves(sensor: Sensor) -> list[tuple[int, np.ndarray, np.ndarray, float | None]]:
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


def fig_recovery(sensor: Sensor) -> tuple[Figure, dict[str, Any]] | None:
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
    sensors: list[Sensor], asymmetry: list[AsymmetryRow]
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


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()
