"""Accuracy of the analysis engine on generated scenarios and on the real recordings.

First the shared real gym sets (bench/real_sets.py: tremorlift beside two plain peak counters,
per exercise family), then the generated scenarios. Prints rep precision/recall/F1 (overall and for non-rotating lifts), the exact-count rate per
set, mean concentric velocity MAE, velocity-loss alert timing, tremor sensitivity/specificity per
second, median frequency error and cause accuracy; then runs the open ``paradigma`` tremor
pipeline on the same recordings (in its own virtual environment) and prints both side by side.

Seeds 100 and up are never used for tuning (tuning uses 0-9). Usage:
    bench/bench_accuracy.py [--seeds 100,101] [--scenarios a,b] [--short] [--no-paradigma]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))
sys.path.insert(0, str(ROOT / "bench"))

from tremorlift.analysis import Engine, analyze_recordings, run_engine  # noqa: E402
from tremorlift.analysis.alerts import threshold_pct  # noqa: E402
from tremorlift.twin.motion.generator import SCENARIOS, generate  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
PARADIGMA_PY = ROOT / ".venv-paradigma" / "bin" / "python"
# The limb does not rotate with the rep only where the sensor moves with the bar: on the
# forearm in these lifts (0.02-0.18 rad per rep). On the thigh a squat, deadlift or lunge turns
# the sensor by 0.85-1.45 rad, and a curl turns the forearm by ~2 rad (docs/motion-model.md).
NON_ROTATING = {
    ("forearm", "bench"),
    ("forearm", "squat"),
    ("forearm", "deadlift"),
    ("forearm", "overhead-press"),
}
BLOCK_S = 1.0
GOAL = "strength"


# ----------------------------------------------------------------------------- matching
def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def match_reps(det: list[dict[str, Any]], truth: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """One-to-one: a detected rep matches the truth rep it overlaps most, if that overlap covers
    at least half of the shorter of the two."""
    pairs = []
    for i, d in enumerate(det):
        for j, t in enumerate(truth):
            ov = _overlap(d["start_s"], d["end_s"], t["start_s"], t["end_s"])
            short = min(d["end_s"] - d["start_s"], t["end_s"] - t["start_s"])
            if short > 0 and ov >= 0.5 * short:
                pairs.append((ov, i, j))
    pairs.sort(reverse=True)
    used_d, used_t, out = set(), set(), []
    for _, i, j in pairs:
        if i not in used_d and j not in used_t:
            used_d.add(i)
            used_t.add(j)
            out.append((i, j))
    return out


def seconds_mask(spans: list[dict[str, Any]], n_s: int) -> np.ndarray:
    """Per 1-s bin: covered at least half by the spans."""
    cover = np.zeros(n_s)
    for sp in spans:
        a, b = max(0.0, sp["start_s"]), min(float(n_s), sp["end_s"])
        for k in range(int(math.floor(a)), int(math.ceil(b))):
            if 0 <= k < n_s:
                cover[k] += _overlap(a, b, k, k + 1)
    return cover >= 0.5


def vl_threshold_rep(mv: list[float], thr_pct: float) -> int | None:
    best = 0.0
    for k, v in enumerate(mv):
        best = max(best, v)
        if best > 0.0 and 100.0 * (1.0 - v / best) >= thr_pct:
            return k
    return None


# ----------------------------------------------------------------------------- scoring
class Tally:
    def __init__(self) -> None:
        self.tp = self.fp = self.fn = 0
        self.tp_nr = self.fp_nr = self.fn_nr = 0
        self.sets = self.sets_exact = 0
        self.vel_err: list[float] = []
        self.peak_err: list[float] = []
        self.alert_sets = self.alert_ok = self.stop_early = self.false_warn_sets = (
            self.quiet_sets
        ) = 0
        self.sec_tp = self.sec_fn = self.sec_tn = self.sec_fp = 0
        self.freq_err: list[float] = []
        self.cause_n = self.cause_ok = 0
        self.par_tp = self.par_fn = self.par_tn = self.par_fp = 0
        self.par_freq_err: list[float] = []
        self.par_time_s = 0.0
        self.engine_time_s = 0.0
        self.audio_s = 0.0
        self.rows: list[str] = []


def score_device(
    tal: Tally, res: dict[str, Any], truth: dict[str, Any], thr_pct: float, label: str
) -> None:
    det_sets = [s for s in res["sets"] if s["kind"] == "dynamic"]
    det_reps = [r for s in det_sets for r in s["reps"]]
    tr_sets = [s for s in truth["sets"] if s["kind"] == "dynamic"]
    tr_reps = [dict(r, exercise=s["exercise"]) for s in tr_sets for r in s["reps"]]
    pairs = match_reps(det_reps, tr_reps)
    tp = len(pairs)
    fp = len(det_reps) - tp
    fn = len(tr_reps) - tp
    tal.tp += tp
    tal.fp += fp
    tal.fn += fn
    kinds = {(truth["placement"], s["exercise"]) for s in tr_sets}
    if kinds and kinds <= NON_ROTATING:
        tal.tp_nr += tp
        tal.fp_nr += fp
        tal.fn_nr += fn
    for i, j in pairs:
        tal.vel_err.append(
            abs(
                det_reps[i]["mean_concentric_velocity_mps"]
                - tr_reps[j]["mean_concentric_velocity_mps"]
            )
        )
        tal.peak_err.append(abs(det_reps[i]["peak_velocity_mps"] - tr_reps[j]["peak_velocity_mps"]))
    # Exact count per truth set; alert timing per truth set.
    vl_alerts = [a for a in res["alerts"] if a["kind"] == "velocity_loss"]
    for s in tr_sets:
        lo, hi = s["start_s"] - 1.0, s["end_s"] + 1.0
        n_det = sum(1 for r in det_reps if lo <= 0.5 * (r["start_s"] + r["end_s"]) <= hi)
        tal.sets += 1
        tal.sets_exact += int(n_det == len(s["reps"]))
        mv = [r["mean_concentric_velocity_mps"] for r in s["reps"]]
        k_thr = vl_threshold_rep(mv, thr_pct)
        ends = np.array([r["end_s"] for r in s["reps"]])

        def rep_of(t: float, ends: np.ndarray = ends) -> int:
            return int(np.argmin(np.abs(ends - t)))

        in_set = [a for a in vl_alerts if lo <= a["t_s"] <= hi + 2.0]
        warns = [rep_of(a["t_s"]) for a in in_set if a["level"] == "warn"]
        stops = [rep_of(a["t_s"]) for a in in_set if a["level"] == "stop"]
        if k_thr is None:
            tal.quiet_sets += 1
            tal.false_warn_sets += int(bool(warns))
            continue
        tal.alert_sets += 1
        tal.alert_ok += int(bool(warns) and abs(warns[0] - k_thr) <= 1)
        tal.stop_early += int(bool(stops) and stops[0] < k_thr)
    # Tremor per second.
    n_s = int(math.floor(truth["duration_s"]))
    tmask = seconds_mask(truth["tremor_spans"], n_s)
    dmask = seconds_mask(res["tremor_episodes"], n_s)
    tal.sec_tp += int(np.sum(tmask & dmask))
    tal.sec_fn += int(np.sum(tmask & ~dmask))
    tal.sec_tn += int(np.sum(~tmask & ~dmask))
    tal.sec_fp += int(np.sum(~tmask & dmask))
    for ep in res["tremor_episodes"]:
        best, best_ov = None, 0.0
        for sp in truth["tremor_spans"]:
            ov = _overlap(ep["start_s"], ep["end_s"], sp["start_s"], sp["end_s"])
            if ov > best_ov:
                best, best_ov = sp, ov
        if best is None:
            continue
        tal.freq_err.append(abs(ep["peak_hz"] - best["freq_hz"]))
        causes = {
            sp["cause"]
            for sp in truth["tremor_spans"]
            if _overlap(ep["start_s"], ep["end_s"], sp["start_s"], sp["end_s"]) > 0
        }
        tal.cause_n += 1
        tal.cause_ok += int(ep["cause"] in causes)
    tal.rows.append(
        f"  {label:34} reps {tp:3d}/{len(tr_reps):3d} (+{fp} fp)  sets exact {sum(1 for _ in tr_sets)}  "
        f"tremor s {int(np.sum(tmask & dmask))}/{int(tmask.sum())} fp {int(np.sum(~tmask & dmask))}"
    )


def run_paradigma(t_s: np.ndarray, gyro_radps: np.ndarray) -> dict[str, Any] | None:
    if not PARADIGMA_PY.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        np.savez(src, t_s=t_s, gyro_dps=np.degrees(gyro_radps))
        proc = subprocess.run(
            [str(PARADIGMA_PY), str(ROOT / "bench" / "paradigma_runner.py"), str(src), str(dst)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            print(f"  paradigma failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return None
        return json.loads(dst.read_text())


def paradigma_episodes(p: dict[str, Any]) -> list[dict[str, Any]]:
    w = p["window_s"]
    return [
        {"start_s": s, "end_s": s + w, "peak_hz": f}
        for s, c, f in zip(p["start_s"], p["tremor"], p["peak_hz"], strict=True)
        if c
    ]


def score_paradigma(tal: Tally, p: dict[str, Any], truth: dict[str, Any]) -> None:
    n_s = int(math.floor(truth["duration_s"]))
    tmask = seconds_mask(truth["tremor_spans"], n_s)
    eps = paradigma_episodes(p)
    dmask = seconds_mask(eps, n_s)
    tal.par_tp += int(np.sum(tmask & dmask))
    tal.par_fn += int(np.sum(tmask & ~dmask))
    tal.par_tn += int(np.sum(~tmask & ~dmask))
    tal.par_fp += int(np.sum(~tmask & dmask))
    for ep in eps:
        best, best_ov = None, 0.0
        for sp in truth["tremor_spans"]:
            ov = _overlap(ep["start_s"], ep["end_s"], sp["start_s"], sp["end_s"])
            if ov > best_ov:
                best, best_ov = sp, ov
        if best is not None:
            tal.par_freq_err.append(abs(ep["peak_hz"] - best["freq_hz"]))
    tal.par_time_s += p["elapsed_s"]


# ----------------------------------------------------------------------------- real recordings
def load_pd_phone(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.loadtxt(path, delimiter=",")
    t = (raw[:, 0] - raw[0, 0]) * 1e-9
    keep = np.concatenate(([True], np.diff(t) > 0))
    t, acc = t[keep], raw[keep, 1:4]
    fs = 100.0
    tu = np.arange(0.0, t[-1], 1.0 / fs)
    acc_u = np.column_stack([np.interp(tu, t, acc[:, k]) for k in range(3)])
    return tu, acc_u


def real_gym_sets() -> list[str]:
    """The shared real gym sets beside the two plain peak counters (bench/real_sets.py)."""
    from real_sets import GYM_DIR, format_table, load_gym_sets, score_all

    if not GYM_DIR.is_dir():
        return [f"Real gym sets: {GYM_DIR} is missing"]
    sets = load_gym_sets()
    t0 = time.perf_counter()
    scores, _ = score_all(sets)
    spent = time.perf_counter() - t0
    return [
        f"Real gym sets: {len(sets)} sets, Apple Watch on the left wrist, 100 Hz (gym_wrist_applewatch, "
        f"CC BY-SA 4.0); counts against the lifter's own; {spent:.0f} s",
        "  found = a set overlaps the labelled one; exact/±1/MAE/prec/recall on the rep count;",
        "  early stop = velocity-loss stop while half the set's reps were still to come; warn≤3 = a",
        "  warn at rep 3 or earlier; tremor = share of set time inside tremor episodes; holds and",
        "  rest = hold sets and rest-tremor notices (there are none in these recordings)",
        *format_table(scores),
    ]


def real_recordings(use_paradigma: bool) -> list[str]:
    lines = real_gym_sets()
    pd_dir = DATASETS / "pd_tremor_phone" / "2458"
    if pd_dir.is_dir():
        lines.append(
            "Real: pd_tremor_phone (patient 2458, phone accelerometer ~100 Hz, no gyroscope; UPDRS rest tremor RH 2, LH 1, legs 0)"
        )
        for f in sorted(pd_dir.glob("T_-_REST_TREMOR_AMPLITUDE_*.csv")) + sorted(
            pd_dir.glob("T_-_POSTURAL_TREMOR*.csv")
        ):
            t, acc = load_pd_phone(f)
            part = f.name.split("_-_")[1] + " " + f.name.split("_-_")[2]
            eng = Engine(100.0)
            res = run_engine(eng, t, acc, np.zeros_like(acc), 100)
            eps = res["tremor_episodes"]
            covered = sum(min(e["end_s"], t[-1]) - e["start_s"] for e in eps) / max(
                t[-1] - 3.0, 1.0
            )
            hz = [e["peak_hz"] for e in eps]
            causes = sorted({e["cause"] for e in eps})
            lines.append(
                f"  {part:40} tremor {100 * covered:5.1f} % of the time, peak {np.median(hz) if hz else float('nan'):4.1f} Hz, "
                f"causes {causes or '-'}, rest alert {'yes' if any(a['kind'] == 'rest_tremor' for a in res['alerts']) else 'no'}"
            )
        lines.append(
            "  paradigma: not run on these (its tremor pipeline needs a gyroscope; the phone recorded none)"
        )
    bar = DATASETS / "barbell_collar_log"
    for name in ("barbell_log.csv", "session1.csv"):
        f = bar / name
        if not f.exists():
            continue
        text = f.read_bytes().decode("utf-16")
        rows = [r.split(",") for r in text.splitlines()[1:] if r.strip()]
        arr = np.array([[float(c) for c in r[:8]] for r in rows if len(r) >= 8])
        t = (arr[:, 1] - arr[0, 1]) / 1000.0
        keep = np.concatenate(([True], np.diff(t) > 0))
        arr, t = arr[keep], t[keep]
        tu = np.arange(0.0, t[-1], 0.01)
        acc = np.column_stack([np.interp(tu, t, arr[:, k]) for k in (2, 3, 4)])
        gyr = np.column_stack([np.interp(tu, t, arr[:, k]) for k in (5, 6, 7)])
        ids = arr[:, 0]
        n_dev = len({int(i) for i in ids if i > 0})
        res = run_engine(Engine(100.0), tu, acc, gyr, 100)
        n_ours = sum(len(s["reps"]) for s in res["sets"] if s["kind"] == "dynamic")
        lines.append(
            f"Real: barbell_collar_log/{name}: device counted {n_dev} reps, engine {n_ours} (device ids are not ground truth)"
        )
    return lines


# ----------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="100,101")
    ap.add_argument("--scenarios", default=",".join(s for s in SCENARIOS if s != "demo"))
    ap.add_argument("--short", action="store_true", help="short scenarios (quick check)")
    ap.add_argument("--no-paradigma", action="store_true")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    scenarios = args.scenarios.split(",")
    use_par = not args.no_paradigma and PARADIGMA_PY.exists()
    thr = threshold_pct(GOAL, None)
    tal = Tally()
    n_runs = 0
    for sc in scenarios:
        for seed in seeds:
            imu = "icm42688" if seed % 2 == 0 else "mpu6050"
            scen = generate(sc, seed, imu=imu, short=args.short)
            recs = []
            for dev in scen.devices:
                recs.append(
                    _Rec(
                        dev.name,
                        dev.t_s,
                        dev.accel_mps2,
                        dev.gyro_radps,
                        scen.sample_rate_hz,
                        dev.placement,
                    )
                )
            # As a lifter would run it: the exercise named when the scenario has one.
            names = {s["exercise"] for d in scen.devices for s in d.truth["sets"]}
            exercise = names.pop() if len(names) == 1 else None
            t0 = time.perf_counter()
            res_all = analyze_recordings(recs, exercise=exercise, goal=GOAL, block_s=BLOCK_S)
            tal.engine_time_s += time.perf_counter() - t0
            results = res_all.get("devices") or [res_all]
            for dev, res in zip(scen.devices, results, strict=True):
                tal.audio_s += float(dev.t_s[-1])
                score_device(tal, res, dev.truth, thr, f"{sc}/{seed}/{dev.name} ({imu})")
                if use_par:
                    p = run_paradigma(dev.t_s, dev.gyro_radps)
                    if p is not None:
                        score_paradigma(tal, p, dev.truth)
            n_runs += 1
    pr = tal.tp / max(1, tal.tp + tal.fp)
    rc = tal.tp / max(1, tal.tp + tal.fn)
    f1 = 2 * pr * rc / max(1e-9, pr + rc)
    pr_nr = tal.tp_nr / max(1, tal.tp_nr + tal.fp_nr)
    rc_nr = tal.tp_nr / max(1, tal.tp_nr + tal.fn_nr)
    f1_nr = 2 * pr_nr * rc_nr / max(1e-9, pr_nr + rc_nr)
    sens = tal.sec_tp / max(1, tal.sec_tp + tal.sec_fn)
    spec = tal.sec_tn / max(1, tal.sec_tn + tal.sec_fp)
    out = []
    out.append(
        f"Generated scenarios: {len(scenarios)} x seeds {seeds} = {n_runs} runs, {tal.audio_s / 60:.1f} min of data, goal {GOAL} ({thr:.0f} %)"
    )
    if args.verbose:
        out += tal.rows
    out.append(f"  reps: precision {pr:.3f}  recall {rc:.3f}  F1 {f1:.3f}   (goal F1 >= 0.98)")
    out.append(
        f"  reps, non-rotating lifts only: precision {pr_nr:.3f}  recall {rc_nr:.3f}  F1 {f1_nr:.3f}"
    )
    out.append(
        f"  exact rep count per set: {tal.sets_exact}/{tal.sets} = {tal.sets_exact / max(1, tal.sets):.3f}"
    )
    out.append(
        f"  mean concentric velocity MAE {np.mean(tal.vel_err) if tal.vel_err else float('nan'):.3f} m/s (goal <= 0.05); peak velocity MAE {np.mean(tal.peak_err) if tal.peak_err else float('nan'):.3f} m/s; n = {len(tal.vel_err)}"
    )
    out.append(
        f"  velocity-loss alert within one rep of the threshold rep: {tal.alert_ok}/{tal.alert_sets} sets = {tal.alert_ok / max(1, tal.alert_sets):.3f} (goal >= 0.90); "
        f"stop before the threshold rep: {tal.stop_early}; warn in sets that never crossed: {tal.false_warn_sets}/{tal.quiet_sets}"
    )
    out.append(
        f"  tremor per second: sensitivity {sens:.3f} (goal >= 0.95)  specificity {spec:.3f} (goal >= 0.97)  [{tal.sec_tp + tal.sec_fn} tremor s, {tal.sec_tn + tal.sec_fp} quiet s]"
    )
    out.append(
        f"  tremor frequency error: median {np.median(tal.freq_err) if tal.freq_err else float('nan'):.3f} Hz (goal <= 0.3) over {len(tal.freq_err)} episodes"
    )
    out.append(
        f"  tremor cause accuracy: {tal.cause_ok}/{tal.cause_n} = {tal.cause_ok / max(1, tal.cause_n):.3f}"
    )
    out.append(
        f"  engine time: {tal.engine_time_s:.2f} s for {tal.audio_s:.0f} s of data ({tal.audio_s / max(tal.engine_time_s, 1e-9):.0f}x real time, {BLOCK_S:.0f} s blocks)"
    )
    if use_par:
        ps = tal.par_tp / max(1, tal.par_tp + tal.par_fn)
        pp = tal.par_tn / max(1, tal.par_tn + tal.par_fp)
        out.append(
            "Side by side with paradigma 1.1.2 (gyroscope tremor pipeline: 4 s windows, rest-tremor 3-7 Hz classifier) on the same recordings:"
        )
        out.append(
            f"  {'':12} {'sensitivity':>11} {'specificity':>11} {'median freq err':>15} {'time':>8}"
        )
        out.append(
            f"  {'tremorlift':12} {sens:11.3f} {spec:11.3f} {np.median(tal.freq_err) if tal.freq_err else float('nan'):13.3f} Hz {tal.engine_time_s:7.2f}s"
        )
        out.append(
            f"  {'paradigma':12} {ps:11.3f} {pp:11.3f} {np.median(tal.par_freq_err) if tal.par_freq_err else float('nan'):13.3f} Hz {tal.par_time_s:7.2f}s"
        )
        out.append(
            "  (paradigma targets Parkinsonian rest tremor only; the engine's time covers all of its analysis, paradigma's only tremor)"
        )
    elif not args.no_paradigma:
        out.append("paradigma: not installed (make bench-accuracy creates .venv-paradigma)")
    if not args.no_real:
        out = real_recordings(use_par) + out
    print("\n".join(out))
    return 0


class _Rec:
    def __init__(
        self,
        name: str,
        t_s: np.ndarray,
        accel: np.ndarray,
        gyro: np.ndarray,
        fs: float,
        placement: str,
    ) -> None:
        (
            self.name,
            self.t_s,
            self.accel_mps2,
            self.gyro_radps,
            self.sample_rate_hz,
            self.placement,
        ) = name, t_s, accel, gyro, fs, placement


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
