"""`tremorlift report`: the HTML file, its figures (decoded and checked) and the summary."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from coach_sessions import write_session
from matplotlib.image import imread
from tremorlift.cli import main
from tremorlift.coach import figures as fg
from tremorlift.coach import report as rp
from tremorlift.store.reader import SessionReader


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])


def _mask(img: np.ndarray, colour: np.ndarray, tol: float = 0.03) -> np.ndarray:
    return np.all(np.abs(img[:, :, :3] - colour) <= tol, axis=2)


def _runs(row: np.ndarray) -> int:
    r = row.astype(np.int8)
    return int(np.sum(np.diff(np.concatenate(([0], r))) == 1))


def _check_png(path: Path) -> np.ndarray:
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] >= 250 and img.shape[1] >= 500
    non_white = np.any(img[:, :, :3] < 0.95, axis=2).mean()
    assert 0.02 < non_white < 0.9, f"{path.name}: {non_white:.3f} of the pixels drawn"
    return img


REP = {"peak_velocity_mps": 1.0, "rom_m": 0.4}
FABRICATED: dict[str, Any] = {
    "sample_rate_hz": 200.0, "duration_s": 86.0, "velocity_loss_threshold_pct": 20.0,
    "tremor_baseline_rms_mps2": 0.03,
    "sets": [
        {"kind": "dynamic", "start_s": 8.8, "end_s": 24.0, "exercise": "bench", "velocity_loss_pct": 30.0,
         "tremor_recovery_s": 20.0,
         "reps": [dict(REP, start_s=9.0 + 4 * i, end_s=12.0 + 4 * i, mean_concentric_velocity_mps=v, velocity_loss_pct=vl)
                  for i, (v, vl) in enumerate(((0.8, 0.0), (0.7, 12.5), (0.6, 25.0), (0.56, 30.0)))]},
        {"kind": "hold", "start_s": 66.0, "end_s": 82.0, "exercise": "bench", "velocity_loss_pct": None, "reps": [],
         "tremor_growth_pct_per_s": 4.0, "time_to_tremor_onset_s": 6.0, "stop_reason": "violent shaking"},
    ],
    "tremor_episodes": [
        {"start_s": 28.0, "end_s": 34.0, "peak_hz": 5.0, "rms_mps2": 0.2, "cause": "rest"},
        {"start_s": 40.0, "end_s": 46.0, "peak_hz": 2.0, "rms_mps2": 0.2, "cause": "instability"},
        {"start_s": 50.0, "end_s": 56.0, "peak_hz": 10.0, "rms_mps2": 0.2, "cause": "fatigue"},
    ],
    "alerts": [
        {"t_s": 20.0, "level": "warn", "kind": "velocity_loss", "message": "last rep"},
        {"t_s": 23.0, "level": "stop", "kind": "velocity_loss", "message": "end the set"},
        {"t_s": 34.0, "level": "info", "kind": "rest_tremor", "message": "not a diagnosis"},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def fabricated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_session(
        tmp_path_factory.mktemp("rep") / "fab.tlsession", "demo", analysis=FABRICATED
    )


@pytest.fixture(scope="module")
def built(fabricated: Path) -> rp.ReportOutput:
    return rp.build_report(fabricated, fabricated.with_name("fab.tlsession-report"))


def test_report_files_html_and_summary(built: rp.ReportOutput) -> None:
    out = built.html_path.parent
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [
        "alerts.png",
        "holds.png",
        "recovery.png",
        "tremor.png",
        "velocity.png",
    ]  # one sensor: no left-right
    assert sorted(p.name for p in built.png_paths) == pngs
    text = built.summary
    assert "1 sets with 4 reps, 1 holds" in text and "Best rep: 0.80 m/s" in text
    assert "final rep 30 % slower than the best (past the limit); told to stop at 23 s" in text
    assert (
        "3 episodes (1 from tiring muscles, 1 from wobbling (balance), 1 from shaking at rest)"
        in text
    )
    assert "steady 5 Hz shake was found while resting" in text and "not a diagnosis" in text
    html = (out / "report.html").read_text()
    # Self-contained: every image inline, no external reference of any kind.
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html)
    assert "http://" not in html and "https://" not in html
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(imgs) == len(pngs)
    assert sorted(base64.b64decode(b) for b in imgs) == sorted((out / n).read_bytes() for n in pngs)
    assert "not a diagnosis" in html


def test_velocity_bars_match_the_reps(built: rp.ReportOutput) -> None:
    res, tmp_path = built, built.html_path.parent
    drawn = res.figures["velocity"]
    assert (drawn["bars"], drawn["bars_past_limit"], drawn["sets"]) == (4, 2, 1)
    # the best rep (0.80 m/s) less the limit, at every rep
    assert drawn["cutoff_mps"] == [pytest.approx([0.64] * 4, abs=0.002)]
    img = _check_png(tmp_path / "velocity.png")
    ok, past = _mask(img, _rgb(fg.BAR_OK)), _mask(img, _rgb(fg.BAR_PAST_LIMIT))
    rows = np.flatnonzero((ok | past).any(axis=1))
    # Bands of rows holding bar colours: the bars (tall) and the legend's swatches (short).
    bands = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    bars_band = max(bands, key=len)
    assert len(bars_band) > 50
    row = bars_band[-1] - 2  # just above the x axis, where every bar is and no line runs
    assert _runs(ok[row] | past[row]) == 4
    assert _runs(past[row]) == 2 and _runs(ok[row]) == 2


def test_tremor_figure_colours_episodes_by_cause(built: rp.ReportOutput) -> None:
    res, tmp_path = built, built.html_path.parent
    assert res.figures["tremor"]["causes"] == ["fatigue", "instability", "rest"]
    img = _check_png(tmp_path / "tremor.png")
    found = {}
    for cause, colour in fg.CAUSE_COLOURS.items():
        # A span is the cause's colour at alpha 0.35 over the white background.
        found[cause] = int(_mask(img, 0.35 * _rgb(colour) + 0.65, 0.02).sum())
    assert min(found["fatigue"], found["instability"], found["rest"]) > 1000, found
    # No "other" episode: only anti-aliased edges come near its grey.
    assert found["other"] < 0.2 * min(found["fatigue"], found["instability"], found["rest"]), found
    # Holds, recovery and the alert timeline are drawn too.
    for name in ("holds", "recovery", "alerts"):
        _check_png(tmp_path / f"{name}.png")
    alerts = imread(tmp_path / "alerts.png")
    for level in ("warn", "stop", "info"):
        assert _mask(alerts, _rgb(fg.LEVEL_COLOURS[level])).sum() > 30, level


def test_two_sensors_offline_analysis_and_left_right(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = write_session(tmp_path / "two.tlsession", "two-sensors", analysis=None, exercise="squat")
    assert main(["report", str(s), "--out", str(tmp_path / "r")]) == 0
    text = capsys.readouterr().out
    assert "left on the thigh" in text and "right on the thigh" in text and "Left vs right:" in text
    img = _check_png(tmp_path / "r" / "left-right.png")
    assert (
        _mask(img, _rgb(fg.DEVICE_COLOURS[0])).sum() > 500
        and _mask(img, _rgb(fg.DEVICE_COLOURS[1])).sum() > 500
    )
    with SessionReader(s) as r:
        # The report finalised the session (it had never been): its one final analysis.
        assert [x.kind for x in r.analyses()] == ["final"]
    assert main(["report", str(s), "--out", str(tmp_path / "r2")]) == 0
    with SessionReader(s) as r:
        assert [x.kind for x in r.analyses()] == ["final"]  # and only once
    tremor = imread(tmp_path / "r" / "tremor.png")
    assert _mask(tremor, _rgb(fg.DEVICE_COLOURS[0])).sum() > 100  # one line per sensor


def test_bad_session_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.tlsession"
    bad.write_text("t,ax\n")
    assert main(["report", str(bad)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "bad.tlsession-report").exists()


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")
def test_html_renders_in_headless_chromium(fabricated: Path, tmp_path: Path) -> None:
    res = rp.build_report(fabricated, tmp_path / "r")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
         "--window-size=1100,2400", res.html_path.as_uri()],
        check=True, timeout=60, capture_output=True,
    )  # fmt: skip
    img = imread(shot)
    assert img.shape[0] >= 1000
    assert np.any(img[:, :, :3] < 0.9, axis=2).mean() > 0.05  # text and figures, not a blank page
    assert (
        _mask(img, _rgb(fg.BAR_OK), 0.05).sum() > 200
    )  # the velocity figure was drawn in the page
