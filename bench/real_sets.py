"""Scoring on the shared real gym sets: tremorlift beside two plain peak counters.

The recordings are ``../shared/datasets/gym_wrist_applewatch`` (164 sets, Apple Watch on the left
wrist, 100 Hz, CC BY-SA 4.0; attribution in that folder's README). Each file holds one set with the
lifter's idle time around it, so finding the set is part of the job. Ground truth is the lifter's
rep count and the set's window; per-rep times are not labelled.

The two plain counters are the baselines a sports scientist would try first. Their thresholds were
fixed before looking at these recordings (textbook values for arm exercise at 0.25-1 Hz):

- ``accel peaks``: accelerometer band-passed 0.2-2 Hz (2nd-order Butterworth, zero phase),
  projected on its principal axis over the recording; peaks at least 1 s apart with a prominence
  of at least 0.5 m/s^2.
- ``gyro peaks``: gyroscope low-passed at 2 Hz, the axis with the most variance; peaks at least
  1 s apart with a prominence of at least 0.5 rad/s.

A counter's peaks form sets where they follow each other within 8 s, three peaks at least.

With ``--live`` it also feeds each recording as the collector does (0.2 s blocks) and says how
soon rep 1 of the set reaches the lifter: when the set is recognised, and as a provisional rep 1
(``analysis/first_rep.py``), with the provisional claims made outside the set. Per-rep times are
not labelled, so rep 1 is taken as the set window's first 1/N (N the true rep count), and a claim
counts for rep 1 when it starts at most 1.5 s before the window and ends within 1.6 of those.

Usage: bench/real_sets.py [--family NAME] [--stop-policy one-more|at-limit] [--live] [--verbose]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from tremorlift.analysis import Engine, run_engine  # noqa: E402

GYM_DIR = ROOT.parent / "shared" / "datasets" / "gym_wrist_applewatch" / "sets"
PLAIN_PEAK_DISTANCE_S = 1.0
PLAIN_ACCEL_PROMINENCE_MPS2 = 0.5
PLAIN_GYRO_PROMINENCE_RADPS = 0.5
PLAIN_SET_GAP_S = 8.0
PLAIN_MIN_PEAKS = 3
BLOCK_S = 1.0


@dataclass
class RealSet:
    name: str
    family: str
    t_s: np.ndarray
    accel_mps2: np.ndarray
    gyro_radps: np.ndarray
    true_reps: int
    window_s: tuple[float, float]

    @property
    def sample_rate_hz(self) -> float:
        return float(1.0 / np.median(np.diff(self.t_s)))


def load_gym_sets(folder: Path = GYM_DIR) -> list[RealSet]:
    out = []
    for path in sorted(folder.glob("*.csv.gz")):
        truth = json.loads(path.with_name(path.name[: -len(".csv.gz")] + ".truth.json").read_text())
        with gzip.open(path, "rt") as fh:
            a = np.loadtxt(fh, delimiter=",", skiprows=1)
        out.append(
            RealSet(
                truth["id"],
                truth["group"],
                a[:, 0],
                a[:, 1:4],
                a[:, 4:7],
                int(truth["true_reps"]),
                (float(truth["set_window_s"][0]), float(truth["set_window_s"][1])),
            )
        )
    return out


# ----------------------------------------------------------------------------- plain counters
def _peak_sets(t: np.ndarray, peaks: np.ndarray) -> list[tuple[float, float, int]]:
    sets: list[list[float]] = []
    for tp in t[peaks].tolist():
        if sets and tp - sets[-1][-1] <= PLAIN_SET_GAP_S:
            sets[-1].append(tp)
        else:
            sets.append([tp])
    return [(s[0], s[-1], len(s)) for s in sets if len(s) >= PLAIN_MIN_PEAKS]


def plain_accel_counter(rs: RealSet) -> list[tuple[float, float, int]]:
    fs = rs.sample_rate_hz
    sos = signal.butter(2, [0.2, 2.0], btype="bandpass", fs=fs, output="sos")
    x = signal.sosfiltfilt(sos, rs.accel_mps2, axis=0)
    _, _, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    p = x @ vt[0]
    peaks, _ = signal.find_peaks(
        p, distance=int(PLAIN_PEAK_DISTANCE_S * fs), prominence=PLAIN_ACCEL_PROMINENCE_MPS2
    )
    return _peak_sets(rs.t_s, peaks)


def plain_gyro_counter(rs: RealSet) -> list[tuple[float, float, int]]:
    fs = rs.sample_rate_hz
    sos = signal.butter(2, 2.0, btype="lowpass", fs=fs, output="sos")
    g = signal.sosfiltfilt(sos, rs.gyro_radps, axis=0)
    p = g[:, int(np.argmax(g.var(axis=0)))]
    peaks, _ = signal.find_peaks(
        p, distance=int(PLAIN_PEAK_DISTANCE_S * fs), prominence=PLAIN_GYRO_PROMINENCE_RADPS
    )
    return _peak_sets(rs.t_s, peaks)


# ----------------------------------------------------------------------------- scoring
@dataclass
class Score:
    """Counting and judgement over a group of real sets."""

    sets: int = 0
    found: int = 0
    exact: int = 0
    within1: int = 0
    abs_err: list[int] = field(default_factory=list)
    counted: int = 0
    true: int = 0
    hit: int = 0
    premature_stops: int = 0
    early_warns: int = 0
    set_s: float = 0.0
    tremor_s: float = 0.0
    holds: int = 0
    rest_notices: int = 0
    judged: bool = False  # velocity, tremor and holds apply (tremorlift only)

    def add_count(self, counted: int, true: int, found: bool) -> None:
        self.sets += 1
        self.found += int(found)
        self.exact += int(counted == true)
        self.within1 += int(abs(counted - true) <= 1)
        self.abs_err.append(abs(counted - true))
        self.counted += counted
        self.true += true
        self.hit += min(counted, true)

    def row(self) -> dict[str, float]:
        n = max(1, self.sets)
        return {
            "sets": self.sets,
            "found": self.found / n,
            "exact": self.exact / n,
            "within1": self.within1 / n,
            "mae": float(np.mean(self.abs_err)) if self.abs_err else float("nan"),
            "precision": self.hit / max(1, self.counted),
            "recall": self.hit / max(1, self.true),
            "premature_stops": self.premature_stops,
            "early_warns": self.early_warns,
            "tremor_share": self.tremor_s / self.set_s if self.set_s else float("nan"),
            "holds": self.holds,
            "rest_notices": self.rest_notices,
        }


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def count_in_window(
    sets: Iterable[tuple[float, float, int]], window: tuple[float, float]
) -> tuple[int, bool]:
    """Reps of the detected sets that overlap the labelled set (all of them: a set cut in two
    still counts its reps once)."""
    w0, w1 = window
    hits = [n for s0, s1, n in sets if _overlap(s0, s1, w0, w1) > 0 or w0 <= s0 <= w1]
    return sum(hits), bool(hits)


def analyse_engine(rs: RealSet, **engine_kw: Any) -> dict[str, Any]:
    fs = rs.sample_rate_hz
    engine = Engine(fs, **engine_kw)
    return run_engine(
        engine, rs.t_s, rs.accel_mps2, rs.gyro_radps, max(1, int(round(BLOCK_S * fs)))
    )


def score_engine(score: Score, rs: RealSet, res: dict[str, Any]) -> dict[str, Any]:
    score.judged = True
    dyn = [s for s in res["sets"] if s["kind"] == "dynamic"]
    counted, found = count_in_window(
        ((s["start_s"], s["end_s"], len(s["reps"])) for s in dyn), rs.window_s
    )
    score.add_count(counted, rs.true_reps, found)
    w0, w1 = rs.window_s
    score.set_s += w1 - w0
    score.tremor_s += sum(
        _overlap(e["start_s"], e["end_s"], w0, w1) for e in res["tremor_episodes"]
    )
    score.holds += sum(1 for s in res["sets"] if s["kind"] == "hold")
    score.rest_notices += sum(1 for a in res["alerts"] if a["kind"] == "rest_tremor")
    # A velocity-loss call is premature when the lifter went on for half the set or more
    # (stop) or when it comes at rep 3 or earlier (warn). Rep numbers count within the set the
    # alert fell in, from the labelled set's start.
    for a in res["alerts"]:
        if a["kind"] != "velocity_loss" or a["level"] not in ("warn", "stop"):
            continue
        rep_no = _rep_number_at(dyn, a["t_s"])
        if a["level"] == "stop" and rs.true_reps - rep_no >= rs.true_reps / 2:
            score.premature_stops += 1
        if a["level"] == "warn" and rep_no <= 3:
            score.early_warns += 1
    return {"counted": counted, "found": found}


def _rep_number_at(dyn: list[dict[str, Any]], t_s: float) -> int:
    for s in dyn:
        ends = [r["end_s"] for r in s["reps"]]
        if ends and s["start_s"] <= t_s <= s["end_s"] + 1e-6:
            return int(np.searchsorted(ends, t_s + 1e-6))
    return 0


Counter = Callable[[RealSet], list[tuple[float, float, int]]]
COUNTERS: dict[str, Counter] = {
    "accel peaks": plain_accel_counter,
    "gyro peaks": plain_gyro_counter,
}


def score_all(
    sets: list[RealSet], verbose: bool = False, stop_policy: str | None = None
) -> tuple[dict[str, dict[str, Score]], list[str]]:
    """{method: {family or "all": Score}} and per-set lines (verbose)."""
    scores: dict[str, dict[str, Score]] = defaultdict(lambda: defaultdict(Score))
    lines = []
    for rs in sets:
        res = analyse_engine(rs, stop_policy=stop_policy)
        got = {}
        for fam in (rs.family, "all"):
            got = score_engine(scores["tremorlift"][fam], rs, res)
        for name, fn in COUNTERS.items():
            c, f = count_in_window(fn(rs), rs.window_s)
            for fam in (rs.family, "all"):
                scores[name][fam].add_count(c, rs.true_reps, f)
        if verbose:
            lines.append(
                f"  {rs.family:14} {rs.name:50} true {rs.true_reps:3d}  tremorlift {got['counted']:3d}"
            )
    return scores, lines


def format_table(scores: dict[str, dict[str, Score]]) -> list[str]:
    out = [
        f"  {'family':14} {'method':11} {'sets':>4} {'found':>6} {'exact':>6} {'±1':>6} {'MAE':>5} "
        f"{'prec':>5} {'recall':>6} {'early stop':>10} {'warn≤3':>6} {'tremor':>6} {'holds':>5} {'rest':>4}"
    ]
    families = sorted(scores["tremorlift"], key=lambda f: (f == "all", f))
    for fam in families:
        for method in ("tremorlift", *COUNTERS):
            sc = scores[method][fam]
            r = sc.row()
            judged = (
                f"{r['premature_stops']:10d} {r['early_warns']:6d} {100 * r['tremor_share']:5.0f}% "
                f"{r['holds']:5d} {r['rest_notices']:4d}"
                if sc.judged
                else f"{'':10} {'':6} {'':6} {'':5} {'':4}"
            )
            out.append(
                f"  {fam if method == 'tremorlift' else '':14} {method:11} {r['sets']:4d} "
                f"{r['found']:6.1%} {r['exact']:6.1%} {r['within1']:6.1%} {r['mae']:5.2f} "
                f"{r['precision']:5.2f} {r['recall']:6.2f} {judged}"
            )
    return out


LIVE_BLOCK_S = 0.2


def live_first_rep(sets: list[RealSet]) -> list[str]:
    """How soon rep 1 is shown, fed as the collector feeds the engine (see the module text)."""
    recognised: list[float] = []
    told: list[float] = []  # provisional rep 1: shown after the claimed movement's own end
    false_claims = 0
    idle_s = 0.0
    for rs in sets:
        fs = rs.sample_rate_hz
        engine = Engine(fs)
        n = max(1, int(round(LIVE_BLOCK_S * fs)))
        t0 = float(rs.t_s[0])
        w0, w1 = rs.window_s
        rep1_end = w0 + (w1 - w0) / rs.true_reps
        idle_s += float(rs.t_s[-1]) - t0 - (w1 - w0)
        first_shown: float | None = None
        claimed = False
        for i in range(0, rs.t_s.size, n):
            j = min(i + n, rs.t_s.size)
            fed_s = float(rs.t_s[j - 1])
            for ev in engine.feed(rs.t_s[i:j], rs.accel_mps2[i:j], rs.gyro_radps[i:j]):
                end_s = ev.t_s + t0
                if ev.kind == "rep" and first_shown is None and w0 - 2 <= end_s <= w1 + 2:
                    first_shown = fed_s
                elif ev.kind == "rep_provisional":
                    start_s = float(ev.data["start_s"]) + t0
                    if not claimed and w0 - 1.5 <= start_s and end_s <= w0 + 1.6 * (rep1_end - w0):
                        claimed = True
                        told.append(fed_s - end_s)
                    elif not w0 - 1.5 <= start_s <= w1 + 1.0:
                        false_claims += 1
        engine.finish()
        if first_shown is not None:
            recognised.append(first_shown - rep1_end)
    r = np.array(recognised)
    lines = [
        f"Rep 1 live ({LIVE_BLOCK_S:.1f} s blocks):",
        f"  with its set, once recognised: {r.size} sets, median {np.median(r):.1f} s, "
        f"p90 {np.percentile(r, 90):.1f} s after the estimated end of rep 1",
    ]
    if told:
        t = np.array(told)
        lines.append(
            f"  provisional rep 1: {t.size} of {len(sets)} sets, shown median {np.median(t):.2f} s, "
            f"p90 {np.percentile(t, 90):.2f} s after the movement ended; {false_claims} claims "
            f"outside the sets in {idle_s / 60:.0f} min of idle time "
            f"({false_claims / max(idle_s, 1.0) * 3600:.0f} per hour)"
        )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", help="only this exercise family (e.g. BicepCurl)")
    ap.add_argument(
        "--stop-policy", choices=("one-more", "at-limit"), help="the engine's stop policy"
    )
    ap.add_argument("--live", action="store_true", help="also how soon rep 1 is shown live")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if not GYM_DIR.is_dir():
        print(f"real sets: {GYM_DIR} is missing", file=sys.stderr)
        return 2
    sets = load_gym_sets()
    if args.family:
        sets = [s for s in sets if s.family == args.family]
    scores, lines = score_all(sets, args.verbose, args.stop_policy)
    print(
        f"Real gym sets ({len(sets)}, Apple Watch on the left wrist, 100 Hz; "
        "gym_wrist_applewatch, CC BY-SA 4.0):"
    )
    print("\n".join(lines + format_table(scores)))
    if args.live:
        print("\n".join(live_first_rep(sets)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
