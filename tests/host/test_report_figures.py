"""The report's figures agree with their own data, and its words with its figures: the speed
limit drawn on the speed axis, numbers on the bars, the hold trend's growth, where recovery
settled, the per-rep table and the load-velocity estimate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from coach_sessions import write_session
from matplotlib.lines import Line2D
from tremorlift.coach import figures as fg
from tremorlift.coach import report as rp
from tremorlift.store.final import store_settings
from tremorlift.store.session import SessionWriter


@pytest.fixture(scope="module")
def workout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    def extra(w: SessionWriter, ids: list[int]) -> None:
        store_settings(w, {"exercise": "squat", "alerts_enabled": True, "load_kg": 100.0})

    d = tmp_path_factory.mktemp("fig")
    return write_session(d / "w.tlsession", "mixed-workout", analysis=None, extra=extra)


@pytest.fixture(scope="module")
def read(workout: Path) -> tuple[Any, list[Any], dict[str, str], list[dict[str, Any]]]:
    return rp.read_session(workout)


def test_the_speed_limit_is_drawn_on_the_speed_axis_with_numbers_on_the_bars(read: Any) -> None:
    result, sensors, _, _ = read
    main = sensors[0]
    thr = float(main.result["velocity_loss_threshold_pct"])
    fig, drawn = fg.fig_velocity(main)
    sets = [s for s in main.result["sets"] if s["kind"] == "dynamic" and s["reps"]]
    assert len(fig.axes) == len(sets)  # one speed axis per set, no second (%) axis over it
    for ax, s, cut in zip(fig.axes, sets, drawn["cutoff_mps"], strict=True):
        (limit,) = [ln for ln in ax.get_lines() if ln.get_gid() == "limit"]
        xs, ys = np.asarray(limit.get_xdata()), np.asarray(limit.get_ydata())
        speeds = [r["mean_concentric_velocity_mps"] for r in s["reps"]]
        heights = [b.get_height() for b in ax.patches]
        assert heights == pytest.approx(speeds)
        numbers = [float(t.get_text().split("\n")[0]) for t in ax.texts if "\n" in t.get_text()]
        assert numbers == pytest.approx(speeds, abs=0.006)
        losses = [
            float(t.get_text().split("-")[-1].rstrip("%")) for t in ax.texts if "\n" in t.get_text()
        ]
        assert losses == pytest.approx(
            [max(0.0, r["velocity_loss_pct"]) for r in s["reps"]], abs=0.51
        )
        for k, (b, r) in enumerate(zip(ax.patches, s["reps"], strict=True)):
            # The dashed limit over this bar, read off the drawn line (steps at the bar edges).
            at = float(ys[np.searchsorted(xs, k + 1, side="right") - 1])
            assert at == pytest.approx(cut[k], abs=1e-3)
            # On the speed axis: past the limit exactly when the bar reaches down to the line.
            orange = tuple(b.get_facecolor()[:3]) == pytest.approx(
                tuple(int(fg.BAR_PAST_LIMIT[j : j + 2], 16) / 255 for j in (1, 3, 5))
            )
            assert orange == (r["velocity_loss_pct"] >= thr)
            if abs(b.get_height() - at) > 2e-3:  # not a tie within rounding
                assert orange == (b.get_height() <= at), (k, b.get_height(), at)
        # Where the reference is the set's best rep, the limit is that rep less the threshold.
        best = max(speeds)
        assert any(c == pytest.approx(best * (1 - thr / 100), abs=2e-3) for c in cut)
    assert "limb speed" in fig.axes[0].get_ylabel()


def _growth_of_line(line: Line2D) -> float:
    t, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    return float(100.0 * ((y[-1] / y[0]) ** (1.0 / (t[-1] - t[0])) - 1.0))


def test_the_hold_sentence_states_the_trend_the_figure_draws(read: Any) -> None:
    result, sensors, meta, live = read
    fig, drawn = fg.fig_holds(sensors[0])
    (ax,) = fig.axes
    trends = [ln for ln in ax.get_lines() if str(ln.get_gid()).startswith("trend-")]
    assert trends and len(trends) == drawn["holds"]
    text = rp.summary_text(result, sensors, meta, live)
    for line, g in zip(trends, drawn["growth_pct_per_s"], strict=True):
        slope = _growth_of_line(line)
        assert g == pytest.approx(slope, abs=0.01)
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any(f"trend {slope:+.1f} %/s" in x for x in legend), legend
        said = re.search(r"shaking (grew|fell) ([0-9.]+) % per second", text)
        assert said is not None
        value = float(said.group(2)) * (1 if said.group(1) == "grew" else -1)
        assert value == pytest.approx(slope, abs=0.051)


def _settled_from_curve(t: np.ndarray, r: np.ndarray, level: float) -> float | None:
    """Independently: the first point from which the curve stays at or below the level 3 s."""
    for i, t0 in enumerate(t):
        later = t >= t0
        if t[-1] < t0 + 3.0:
            return None
        if (r[later & (t <= t0 + 3.0)] <= level).all():
            return float(t[i])
    return None


def test_recovery_says_settled_where_the_curve_is_back(read: Any) -> None:
    result, sensors, meta, live = read
    fig, drawn = fg.fig_recovery(sensors[0])
    (ax,) = fig.axes
    level_lines = [ln for ln in ax.get_lines() if ln.get_label().startswith("settled:")]
    (level_line,) = level_lines
    level = float(np.asarray(level_line.get_ydata())[0])
    assert level == pytest.approx(drawn["settled_level_mps2"])
    curves = [ln for ln in ax.get_lines() if ln.get_label().startswith("after ")]
    assert len(curves) == drawn["curves"] >= 2
    said_times = []
    for ln in curves:
        t, r = np.asarray(ln.get_xdata()), np.asarray(ln.get_ydata())
        truth = _settled_from_curve(t, r, level)
        label = ln.get_label()
        m = re.search(r"settled in (\d+) s", label)
        if truth is None:
            assert "not settled" in label
        elif truth < 0.5:
            assert "settled at once" in label
        else:
            assert m is not None and int(m.group(1)) == round(truth), (label, truth)
        if truth is not None:
            said_times.append(truth)
            # the curve really is back there, and was not before
            assert r[(t >= truth) & (t <= truth + 3.0)].max() <= level
    text = rp.summary_text(result, sensors, meta, live)
    m = re.search(r"Recovery: shaking settled (\d+) s after a set \(median of (\d+)", text)
    assert m is not None and int(m.group(2)) == len(said_times)
    assert int(m.group(1)) == round(float(np.median(said_times)))


def test_the_per_rep_table_and_the_load(workout: Path, tmp_path: Path, read: Any) -> None:
    out = rp.build_report(workout, tmp_path / "r", history=[])
    page = out.html_path.read_text()
    table = page[page.index('<table class="reps">') : page.index("</table>")]
    main = read[1][0]
    reps = [r for s in main.result["sets"] if s["kind"] == "dynamic" for r in s["reps"]]
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", table)
    assert len(rows) == len(reps) == out.figures["reps"]["rows"]
    for row, r in zip(rows, reps, strict=True):
        cells = row.split("</td><td>")
        assert float(cells[2]) == pytest.approx(r["mean_concentric_velocity_mps"], abs=0.006)
        assert float(cells[3]) == pytest.approx(r["peak_velocity_mps"], abs=0.006)
        assert float(cells[4]) == pytest.approx(r["rom_m"], abs=0.006)
        assert float(cells[5]) == pytest.approx(r["time_under_tension_s"], abs=0.06)
        assert float(cells[6]) == pytest.approx(r["velocity_loss_pct"], abs=0.51)
        assert float(cells[7]) == 100.0
    for title in ("mean speed (m/s)", "peak speed (m/s)", "range of motion (m)",
                  "time under tension (s)", "loss (%)", "load (kg)"):  # fmt: skip
        assert f"<th>{title}</th>" in table
    # One load in the session and nothing earlier: no 1RM, and why.
    assert "no load-velocity profile: needs sets at 2 different loads" in out.summary


def test_the_report_estimates_the_1rm_from_this_and_earlier_sessions(
    workout: Path, tmp_path: Path
) -> None:
    # Earlier squat sessions at lighter loads, on the line v = 1.30 - 0.0075 load.
    earlier = [
        {"session_id": "earlier", "exercises": {"squat": {"loads": [[40.0, 1.0], [60.0, 0.85],
                                                                    [80.0, 0.70]]}}},
    ]  # fmt: skip
    out = rp.build_report(workout, tmp_path / "r", history=earlier)
    prof = out.figures["load_velocity"]
    assert prof["points"] == 3 + 3 and prof["distinct_loads"] == 4
    assert prof["mvt_mps"] == 0.30
    assert prof["refused"] is None and prof["slope_mps_per_kg"] < 0
    lo, hi = prof["one_rm_ci_kg"]
    assert lo <= prof["one_rm_kg"] <= hi
    # The estimate is where the drawn line meets the squat's MVT.
    at_mvt = (prof["mvt_mps"] - prof["intercept_mps"]) / prof["slope_mps_per_kg"]
    assert prof["one_rm_kg"] == pytest.approx(at_mvt, abs=0.2)
    assert (
        f"Estimated 1RM {prof['one_rm_kg']:.0f} kg (95 % interval {lo:.0f}-{hi:.0f} kg)"
        in out.summary
    )
    assert "Method: least-squares line" in out.summary and "Fieller" in out.summary


def test_the_summary_states_the_stop_policy_and_a_damaged_history_costs_only_the_profile(
    workout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "history.sqlite").write_bytes(b"not a database" * 100)
    monkeypatch.setenv("TREMORLIFT_DATA_DIR", str(data))
    out = rp.build_report(workout, tmp_path / "r")
    assert (
        "Velocity-loss limit: 20 % (a warning at the first rep past it, the stop at the next "
        "rep that confirms it)." in out.summary
    )
    assert "no load-velocity profile: needs sets at 2 different loads" in out.summary
