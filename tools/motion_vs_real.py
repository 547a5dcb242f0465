"""Compare the motion generator with real wrist-worn gym recordings, statistic by statistic.

Usage::

    .venv/bin/python tools/motion_vs_real.py [--real DIR] [--seeds N] [--rate HZ]

Reads the real sets (``DIR/sets/*.csv.gz`` with ``*.truth.json``: ``true_reps`` and
``set_window_s``), renders the generator's wrist/forearm scenarios for seeds 0..N-1 at the real
recordings' rate, and computes the same statistics for both with the same code (:func:`set_stats`,
:func:`idle_stats`). Prints one table: median and interquartile range per statistic.

Statistics of one set (inside its window, the set's rep count known):

* ``floor_3_15``: RMS of the vector norm of the 3-15 Hz band-passed acceleration (m/s^2);
* ``peak_floor_hz``: frequency of the largest 3-15 Hz spectral peak (Welch, summed over axes);
* ``move_05_3``: the same RMS for 0.5-3 Hz;
* ``gyro_rms``: RMS of the gyro norm (rad/s);
* ``period_s``: set duration / reps;
* ``period_cv``: rep-to-rep variation, std/mean of the intervals between the rep cycles' peaks
  found on the dominant slow acceleration component (0.1-2.5 Hz, first principal axis, peaks at
  least 0.6 periods apart, the ``reps`` most prominent);
* ``pause_share``: share of rep boundaries with a still pause: the interval between two
  neighbouring cycle peaks and the one between two neighbouring troughs are each searched for a
  still stretch of at least 0.3 s (norm of the 0.25-s moving mean of the gyro below 0.15 rad/s
  and below 12 % of its 90th percentile in the set, at least 0.03 rad/s); the share is
  taken at the turn (peaks or troughs) where the lifter pauses more, i.e. between reps;
* ``tilt_deg``: forearm tilt per rep, the largest angle between two gravity directions (1.5 Hz
  low-passed acceleration) inside one peak-to-peak cycle, median over the set's cycles.

Idle statistics: the same 3-15 Hz RMS and gyro RMS outside the set windows (2 s margin), in
stretches of at least 4 s; for the generator this is the rest between sets with its walking and
fidgets.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy import signal

REAL_DIR = Path("/work/shared/datasets/gym_wrist_applewatch")
# Scenarios with a sensor on the wrist or forearm and an exercise family the real sets have
# (presses, curls, pulls, rows); push-ups and lunges can be added with --scenarios.
GEN_SCENARIOS = (
    "curl-3x10",
    "bench-to-failure",
    "overhead-press",
    "mixed-workout",
    "lat-pulldown",
    "pull-up",
    "cable-row",
)
STILL_GYRO_RADPS = 0.15
STILL_MIN_S = 0.3
IDLE_MARGIN_S = 2.0
IDLE_MIN_S = 4.0


def _band(x: np.ndarray, fs: float, lo: float, hi: float) -> np.ndarray:
    hi = min(hi, 0.45 * fs)
    sos = signal.butter(4, [lo, hi], btype="bandpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, x, axis=0)


def _lowpass(x: np.ndarray, fs: float, fc: float) -> np.ndarray:
    sos = signal.butter(2, fc, fs=fs, output="sos")
    return signal.sosfiltfilt(sos, x, axis=0)


def _rms_norm(x: np.ndarray) -> float:
    return float(math.sqrt(np.mean(np.sum(x * x, axis=1))))


def _still_runs(gyro: np.ndarray, fs: float) -> np.ndarray:
    """Boolean mask of still samples in runs of at least STILL_MIN_S: the norm of the 0.25-s
    moving mean of the gyro (vibration averages out) below STILL_GYRO_RADPS and below 12 % of
    its own 90th percentile in the set (lifts that barely rotate the forearm), at least 0.03."""
    w = max(1, int(0.25 * fs))
    k = np.ones(w) / w
    g = np.linalg.norm(
        np.column_stack([np.convolve(gyro[:, j], k, mode="same") for j in range(3)]), axis=1
    )
    thr = max(0.03, min(STILL_GYRO_RADPS, 0.12 * float(np.percentile(g, 90))))
    still = g < thr
    out = np.zeros_like(still)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], still.astype(np.int8), [0]))))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if (b - a) / fs >= STILL_MIN_S:
            out[a:b] = True
    return out


def _cycle_marks(acc: np.ndarray, fs: float, reps: int) -> tuple[np.ndarray, np.ndarray]:
    """Peaks and troughs of the dominant slow acceleration component, one per rep cycle."""
    slow = _band(acc, fs, 0.1, 2.5)
    _, _, vt = np.linalg.svd(slow - slow.mean(0), full_matrices=False)
    s = slow @ vt[0]
    dist = max(1, int(0.6 * acc.shape[0] / reps))
    marks = []
    for x in (s, -s):
        pk, props = signal.find_peaks(x, distance=dist, prominence=0.0)
        keep = np.sort(pk[np.argsort(props["prominences"])[::-1][:reps]])
        marks.append(keep)
    return marks[0], marks[1]


def set_stats(acc: np.ndarray, gyro: np.ndarray, fs: float, reps: int) -> dict[str, float]:
    """Statistics of one set; ``acc``/``gyro`` cover exactly the set window."""
    n = acc.shape[0]
    out: dict[str, float] = {}
    out["floor_3_15"] = _rms_norm(_band(acc, fs, 3.0, 15.0))
    f, p = signal.welch(acc - acc.mean(0), fs=fs, nperseg=min(n, int(4 * fs)), axis=0)
    band = (f >= 3.0) & (f <= 15.0)
    out["peak_floor_hz"] = float(f[band][np.argmax(p[band].sum(axis=1))])
    out["move_05_3"] = _rms_norm(_band(acc, fs, 0.5, 3.0))
    out["gyro_rms"] = _rms_norm(gyro)
    out["period_s"] = n / fs / reps
    peaks, troughs = _cycle_marks(acc, fs, reps)
    iv = np.diff(peaks) / fs
    out["period_cv"] = float(np.std(iv) / np.mean(iv)) if iv.size >= 3 else math.nan
    still = _still_runs(gyro, fs)
    shares = []
    for marks in (peaks, troughs):
        if marks.size >= 3:
            shares.append(
                float(
                    np.mean([still[a:b].any() for a, b in zip(marks[:-1], marks[1:], strict=True)])
                )
            )
    out["pause_share"] = max(shares) if shares else math.nan
    grav = _lowpass(acc, fs, 1.5)
    grav /= np.linalg.norm(grav, axis=1, keepdims=True)
    step = max(1, int(fs / 25))
    tilts = []
    for a, b in zip(peaks[:-1], peaks[1:], strict=True):
        u = grav[a:b:step]
        if u.shape[0] >= 2:
            tilts.append(math.degrees(math.acos(float(np.clip(np.min(u @ u.T), -1.0, 1.0)))))
    out["tilt_deg"] = float(np.median(tilts)) if tilts else math.nan
    return out


def idle_stats(acc: np.ndarray, gyro: np.ndarray, fs: float) -> dict[str, float]:
    """Activity around a set, and the floor of its quiet seconds (1-s windows with a gyro RMS
    below 0.3 rad/s; median 3-15 Hz RMS over them)."""
    hf = _band(acc, fs, 3.0, 15.0)
    out = {"idle_3_15": _rms_norm(hf), "idle_gyro": _rms_norm(gyro)}
    w = int(fs)
    quiet = [
        _rms_norm(hf[j : j + w])
        for j in range(0, acc.shape[0] - w + 1, w)
        if _rms_norm(gyro[j : j + w]) < 0.3
    ]
    if quiet:
        out["idle_quiet_3_15"] = float(np.median(quiet))
    return out


def _idle_pieces(n: int, fs: float, windows: list[tuple[float, float]]) -> list[slice]:
    busy = np.zeros(n, dtype=bool)
    m = int(IDLE_MARGIN_S * fs)
    for a, b in windows:
        busy[max(0, int(a * fs) - m) : min(n, int(b * fs) + m)] = True
    edges = np.flatnonzero(np.diff(np.concatenate(([1], busy.astype(np.int8), [1]))))
    return [
        slice(a, b)
        for a, b in zip(edges[::2], edges[1::2], strict=True)
        if (b - a) >= IDLE_MIN_S * fs
    ]


def real_stats(root: Path) -> tuple[list[dict[str, float]], list[dict[str, float]], float]:
    sets, idles = [], []
    fs_seen = 100.0
    for tp in sorted((root / "sets").glob("*.truth.json")):
        truth = json.loads(tp.read_text())
        with gzip.open(tp.with_name(tp.name.replace(".truth.json", ".csv.gz")), "rt") as fh:
            data = np.loadtxt(fh, delimiter=",", skiprows=1)
        t, acc, gyro = data[:, 0], data[:, 1:4], data[:, 4:7]
        fs = (t.size - 1) / (t[-1] - t[0])
        fs_seen = fs
        a, b = truth["set_window_s"]
        i0, i1 = int(a * fs), min(t.size, int(b * fs))
        st = set_stats(acc[i0:i1], gyro[i0:i1], fs, int(truth["true_reps"]))
        st["group"] = truth["group"]  # type: ignore[assignment]
        sets.append(st)
        for sl in _idle_pieces(t.size, fs, [(a, b)]):
            idles.append(idle_stats(acc[sl], gyro[sl], fs))
    return sets, idles, fs_seen


def generator_stats(
    scenarios: tuple[str, ...], seeds: int, rate_hz: float
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    from tremorlift.twin.motion.generator import SCENARIOS, generate

    sets, idles = [], []
    for name in scenarios:
        if name not in SCENARIOS:
            print(f"(generator has no scenario {name}: skipped)", file=sys.stderr)
            continue
        for seed in range(seeds):
            rec = generate(name, seed, sample_rate_hz=rate_hz, keep_kinematics=False).devices[0]
            fs = rec.truth["sample_rate_hz"]
            windows = []
            for s in rec.truth["sets"]:
                if s["kind"] != "dynamic" or len(s["reps"]) < 2:
                    continue
                a, b = s["start_s"], s["end_s"]
                windows.append((a, b))
                i0, i1 = int(a * fs), int(b * fs)
                st = set_stats(rec.accel_mps2[i0:i1], rec.gyro_radps[i0:i1], fs, len(s["reps"]))
                st["group"] = f"{name}/{s['exercise']}"  # type: ignore[assignment]
                sets.append(st)
            windows += [
                (s["start_s"], s["end_s"]) for s in rec.truth["sets"] if s["kind"] == "hold"
            ]
            for sl in _idle_pieces(rec.t_s.size, fs, windows):
                idles.append(idle_stats(rec.accel_mps2[sl], rec.gyro_radps[sl], fs))
    return sets, idles


SET_KEYS = (
    ("floor_3_15", "3-15 Hz accel RMS during sets (m/s^2)", "{:.2f}"),
    ("peak_floor_hz", "largest 3-15 Hz spectral peak during sets (Hz)", "{:.1f}"),
    ("move_05_3", "0.5-3 Hz accel RMS during sets (m/s^2)", "{:.2f}"),
    ("gyro_rms", "gyro RMS during sets (rad/s)", "{:.2f}"),
    ("period_s", "rep period (s)", "{:.2f}"),
    ("period_cv", "rep-to-rep period variation (CV)", "{:.2f}"),
    ("pause_share", "share of rep boundaries with a still pause >= 0.3 s", "{:.2f}"),
    ("tilt_deg", "forearm tilt range per rep (deg)", "{:.0f}"),
)
IDLE_KEYS = (
    ("idle_3_15", "3-15 Hz accel RMS between sets (m/s^2)", "{:.2f}"),
    ("idle_gyro", "gyro RMS between sets (rad/s)", "{:.2f}"),
    ("idle_quiet_3_15", "3-15 Hz accel RMS in quiet seconds between sets (m/s^2)", "{:.3f}"),
)


def _summary(rows: list[dict[str, float]], key: str, fmt: str) -> str:
    v = np.array([r[key] for r in rows if key in r], dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "-"
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return f"{fmt.format(med)} ({fmt.format(q1)}-{fmt.format(q3)})"


def table(
    real: tuple[list, list], gen: tuple[list, list], *, real_label: str, gen_label: str
) -> str:
    lines = [
        f"| statistic | {real_label} | {gen_label} |",
        "|---|---|---|",
    ]
    for key, label, fmt in SET_KEYS:
        lines.append(f"| {label} | {_summary(real[0], key, fmt)} | {_summary(gen[0], key, fmt)} |")
    for key, label, fmt in IDLE_KEYS:
        lines.append(f"| {label} | {_summary(real[1], key, fmt)} | {_summary(gen[1], key, fmt)} |")
    return "\n".join(lines)


def by_group(rows: list[dict[str, float]]) -> str:
    groups = sorted({str(r["group"]) for r in rows})
    keys = ("floor_3_15", "period_s", "period_cv", "pause_share", "tilt_deg", "gyro_rms")
    lines = ["| group | sets | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for g in groups:
        sub = [r for r in rows if r["group"] == g]
        cells = []
        for k in keys:
            v = np.array([r[k] for r in sub], dtype=float)
            v = v[np.isfinite(v)]
            cells.append(f"{np.median(v):.2f}" if v.size else "-")
        lines.append(f"| {g} | {len(sub)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--real", type=Path, default=REAL_DIR)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rate", type=float, default=None, help="generator rate (default: real rate)")
    ap.add_argument("--groups", action="store_true", help="also print per-group medians")
    ap.add_argument("--scenarios", default=",".join(GEN_SCENARIOS))
    args = ap.parse_args(argv)
    real_sets, real_idle, fs = real_stats(args.real)
    rate = args.rate or round(fs)
    gen = generator_stats(tuple(args.scenarios.split(",")), args.seeds, float(rate))
    print(
        table(
            (real_sets, real_idle),
            gen,
            real_label=f"real ({len(real_sets)} sets)",
            gen_label=f"generator ({len(gen[0])} sets, seeds 0-{args.seeds - 1})",
        )
    )
    if args.groups:
        print()
        print(by_group(real_sets))
        print()
        print(by_group(gen[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
