"""Speed and memory of the analysis engine.

Real-time factor on one core for one six-axis 200 Hz stream, at several block sizes (the live
collector feeds small blocks, ``analyze`` 1 s blocks); the engine's own alert delay (signal fed
after a rep's true end before its rep and velocity-loss alert events come out, 50 ms blocks as
live); peak memory of a process that streams a 15 min, 1 h and 2 h session through the
engine (it must stay flat); and ``tremorlift analyze`` as a whole process on a 2 h 200 Hz CSV and on
the same samples as a session file (x real time and peak memory, reading and parsing included).
Usage: bench/bench_engine.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

import numpy as np  # noqa: E402
from tremorlift.analysis import Engine  # noqa: E402
from tremorlift.twin.motion.generator import generate  # noqa: E402

RATE_HZ = 200.0
SCENARIO_CYCLE = (
    "mixed-workout",
    "squat-5x5",
    "wall-sit",
    "curl-3x10",
    "rest-tremor",
    "bench-to-failure",
)


def peak_rss_mb() -> float:
    """High-water resident memory of this process (VmHWM: unlike ru_maxrss on Linux it does not
    carry over the parent's peak across exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


LIVE_BLOCK_S = 0.05  # the collector feeds the engine about this much at a time


def speed(block_s_list: list[float]) -> list[str]:
    rec = generate("mixed-workout", 7, sample_rate_hz=RATE_HZ).devices[0]
    dur = float(rec.t_s[-1])
    lines = [
        f"Engine speed, one core, one six-axis {RATE_HZ:.0f} Hz stream ({dur:.0f} s mixed workout):"
    ]
    live_pct = float("nan")
    for block_s in block_s_list:
        n = max(1, int(block_s * RATE_HZ))
        best = float("inf")
        for _ in range(2):
            eng = Engine(RATE_HZ)
            t0 = time.process_time()
            for i in range(0, rec.t_s.size, n):
                eng.feed(rec.t_s[i : i + n], rec.accel_mps2[i : i + n], rec.gyro_radps[i : i + n])
            eng.finish()
            best = min(best, time.process_time() - t0)
        lines.append(
            f"  blocks of {block_s:5.2f} s: {dur / best:7.0f}x real time  ({1e6 * best / rec.t_s.size:.2f} us per sample)"
        )
        if block_s == LIVE_BLOCK_S:
            live_pct = 100.0 * best / dur
    lines.append(
        f"  live cost per device at {RATE_HZ:.0f} Hz in {LIVE_BLOCK_S * 1000:.0f} ms blocks: "
        f"{live_pct:.2f} % of one core (goal < 2 %)"
    )
    return lines


LATENCY_SCENARIOS = (
    "squat-5x5",
    "bench-to-failure",
    "curl-3x10",
    "deadlift-3x5",
    "lunge",
    "overhead-press",
    "squat-forearm",
    "mixed-workout",
)
LATENCY_BLOCK_S = 0.05


def _overlap_s(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def latency(seeds: list[int]) -> list[str]:
    """Delay from each true rep end to the feed call that emitted its rep (and alert) event,
    in seconds of signal fed: the collector buzzes as soon as feed() returns the alert."""
    rep_delays: list[float] = []
    first_delays: list[float] = []
    alert_delays: list[float] = []
    provisional_delays: list[float] = []  # a provisional rep 1 (analysis/first_rep.py) on a set's rep 1
    provisional_other = 0  # a provisional rep 1 on anything else
    n_first = 0
    for sc in LATENCY_SCENARIOS:
        for seed in seeds:
            imu = "icm42688" if seed % 2 == 0 else "mpu6050"
            for dev in generate(sc, seed, sample_rate_hz=RATE_HZ, imu=imu).devices:
                truth = [(k, r) for s in dev.truth["sets"] for k, r in enumerate(s["reps"])]
                eng = Engine(RATE_HZ, goal="strength", placement=dev.placement)
                n = int(round(LATENCY_BLOCK_S * RATE_HZ))
                emitted: list[tuple[dict, float]] = []
                provisional: list[tuple[dict, float]] = []
                alerts: list[tuple[float, float]] = []  # (alert t_s, fed up to)
                for i in range(0, dev.t_s.size, n):
                    j = min(i + n, dev.t_s.size)
                    fed_s = float(dev.t_s[j - 1])
                    for ev in eng.feed(dev.t_s[i:j], dev.accel_mps2[i:j], dev.gyro_radps[i:j]):
                        if ev.kind == "rep":
                            emitted.append((ev.data, fed_s))
                        elif ev.kind == "rep_provisional":
                            provisional.append((ev.data, fed_s))
                        elif ev.kind == "alert" and ev.data["kind"] == "velocity_loss":
                            alerts.append((float(ev.data["t_s"]), fed_s))
                n_first += sum(1 for k, _ in truth if k == 0)
                for d, fed_s in provisional:
                    firsts = [
                        r for k, r in truth
                        if k == 0 and _overlap_s(d["start_s"], d["end_s"], r["start_s"], r["end_s"])
                        >= 0.5 * (r["end_s"] - r["start_s"])
                    ]  # fmt: skip
                    if firsts:
                        provisional_delays.append(fed_s - float(firsts[0]["end_s"]))
                    else:
                        provisional_other += 1
                used: set[int] = set()
                for d, fed_s in emitted:
                    best, best_ov = None, 0.0
                    for m, (_, r) in enumerate(truth):
                        ov = _overlap_s(d["start_s"], d["end_s"], r["start_s"], r["end_s"])
                        short = min(d["end_s"] - d["start_s"], r["end_s"] - r["start_s"])
                        if m not in used and ov >= 0.5 * short and ov > best_ov:
                            best, best_ov = m, ov
                    if best is None:
                        continue
                    used.add(best)
                    k, r = truth[best]
                    delay = fed_s - float(r["end_s"])
                    (first_delays if k == 0 else rep_delays).append(delay)
                    for t_alert, fed_alert in alerts:
                        if abs(t_alert - d["end_s"]) < 1e-6:
                            alert_delays.append(fed_alert - float(r["end_s"]))

    def figs(x: list[float]) -> str:
        if not x:
            return "none"
        a = 1000.0 * np.array(x)
        return (
            f"median {np.median(a):4.0f} ms, p90 {np.percentile(a, 90):4.0f} ms, "
            f"max {a.max():5.0f} ms, {int(np.sum(a > 150.0))} over 150 ms (n = {a.size})"
        )

    return [
        f"Engine delay after a rep's true end ({len(LATENCY_SCENARIOS)} lift scenarios x seeds {seeds}, "
        f"{LATENCY_BLOCK_S * 1000:.0f} ms blocks; negative = before the end, e.g. a curl's concentric):",
        f"  velocity-loss alerts:      {figs(alert_delays)}   goal: well under 150 ms",
        f"  reps 2+ of a set:          {figs(rep_delays)}",
        f"  first rep of a set:        {figs(first_delays)}   (a set is recognised once its rhythm shows, two to three reps in)",
        f"  ... shown provisionally:   {figs(provisional_delays)}   on {len(provisional_delays)} of {n_first} sets; "
        f"{provisional_other} provisional claims on other movements",
    ]


def write_recordings(directory: Path) -> Path:
    """The scenarios the memory runs loop over, saved once (generating them is the costly part)."""
    path = directory / "recordings.npz"
    arrays = {}
    for k, sc in enumerate(SCENARIO_CYCLE):
        rec = generate(sc, 1000 + k, sample_rate_hz=RATE_HZ, keep_kinematics=False).devices[0]
        arrays[f"t{k}"] = rec.t_s
        arrays[f"x{k}"] = np.hstack((rec.accel_mps2, rec.gyro_radps))
    np.savez(path, **arrays)
    return path


def stream_session(minutes: float, recordings: Path) -> dict[str, float]:
    """Streams ``minutes`` of recorded sessions back to back into one engine (1 s blocks)."""
    data = np.load(recordings)
    recs = [(data[f"t{k}"], data[f"x{k}"]) for k in range(len(SCENARIO_CYCLE))]
    rss0 = peak_rss_mb()
    eng = Engine(RATE_HZ)
    total_s = minutes * 60.0
    t_off = 0.0
    k = 0
    n = int(RATE_HZ)
    while t_off < total_s:
        t_rec, x = recs[k % len(recs)]
        k += 1
        t = t_rec + t_off
        m = int(np.searchsorted(t, total_s))
        for i in range(0, m, n):
            j = min(i + n, m)
            eng.feed(t[i:j], x[i:j, 0:3], x[i:j, 3:6])
        t_off = float(t[-1]) + 1.0 / RATE_HZ
    eng.finish()
    return {
        "minutes": minutes,
        "max_rss_mb": peak_rss_mb(),
        "start_rss_mb": rss0,
        "sets": len(eng.result()["sets"]),
    }


def write_csv(recordings: Path, path: Path, minutes: float) -> float:
    """The saved scenarios back to back as one CSV of ``minutes`` (written in slices); returns
    the duration in seconds."""
    data = np.load(recordings)
    recs = [(data[f"t{k}"], data[f"x{k}"]) for k in range(len(SCENARIO_CYCLE))]
    total_s = minutes * 60.0
    t_off = 0.0
    k = 0
    last = 0.0
    with path.open("w", encoding="ascii") as f:
        f.write("t,ax,ay,az,gx,gy,gz\n")
        while t_off < total_s:
            t_rec, x = recs[k % len(recs)]
            k += 1
            t = t_rec - t_rec[0] + t_off
            m = int(np.searchsorted(t, total_s))
            np.savetxt(f, np.column_stack((t[:m], x[:m])), fmt="%.5f", delimiter=",")
            last = float(t[m - 1]) if m else last
            t_off = float(t[-1]) + 1.0 / RATE_HZ
    return last


def write_session(csv_path: Path, path: Path) -> None:
    """The CSV's samples as a recorded session (one sensor, 19-sample frames, 200 Hz)."""
    from tremorlift import protocol as p
    from tremorlift.store.csv_input import open_csv
    from tremorlift.store.session import SessionWriter

    info = p.DeviceInfo(
        (0, 1, 0), 3, 255, int(RATE_HZ), 8, 1000, 100, 4096, 328, 19, 300, 0x1234, 247, "TL-0001"
    )  # fmt: skip
    n = info.samples_per_frame
    with SessionWriter(path, background=False) as w:
        d = w.add_device("AA:BB:CC:DD:00:01", name="TL-0001", placement="forearm")
        w.add_info(d, p.encode_info(info), host_s=0.1)
        k = 0
        for _, acc, gyr in open_csv(csv_path, block_bytes=n * 60 * 64).blocks():
            raw = np.empty((acc.shape[0], 6), np.int16)
            raw[:, :3] = np.clip(np.rint(acc / info.accel_mps2_per_lsb), -32768, 32767)
            raw[:, 3:] = np.clip(np.rint(gyr / info.gyro_radps_per_lsb), -32768, 32767)
            for i in range(0, raw.shape[0] - n + 1, n):  # whole frames only
                flags = p.FLAG_STREAM_START if k == 0 else 0
                tick = (n * k * 5000) % (1 << 30)
                frame = p.encode_samples(flags, k, n * k, tick, raw[i : i + n])
                w.add_frame(d, frame, host_s=0.2 + (n * k + n - 1) / RATE_HZ)
                k += 1


# The analyze command in a fresh interpreter that reports its own peak RSS (VmHWM) when done:
# ru_maxrss of a child can carry over the forking parent's size.
ANALYZE_CHILD = """
import sys
from tremorlift.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status", encoding="ascii") as f:
    hwm = [line.split()[1] for line in f if line.startswith("VmHWM:")]
sys.stderr.write("VmHWM_kB %s\\n" % (hwm[0] if hwm else "nan"))
sys.exit(code)
"""


def analyze_process(csv_path: Path, duration_s: float, what: str = "CSV") -> str:
    """``tremorlift analyze`` on a file as a child process: wall and CPU time, peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", ANALYZE_CHILD, "analyze", str(csv_path), "--json", os.devnull],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT / "host")),
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        return f"  analyze failed (exit {proc.returncode}): {proc.stderr.strip()}"
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    hwm = [ln.split()[1] for ln in proc.stderr.splitlines() if ln.startswith("VmHWM_kB ")]
    peak_mb = float(hwm[-1]) / 1024.0 if hwm else after.ru_maxrss / 1024.0
    size_mb = csv_path.stat().st_size / 1e6
    return (
        f"  {duration_s / 3600.0:.1f} h {RATE_HZ:.0f} Hz {what} ({size_mb:.0f} MB): {duration_s / wall:6.0f}x real time "
        f"({wall:.1f} s wall, {cpu:.1f} s CPU), peak {peak_mb:.0f} MB RSS"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer block sizes, 2/5/10 min sessions")
    ap.add_argument("--session-minutes", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--recordings", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    pin_one_core()
    if args.session_minutes is not None:  # child process: one memory measurement
        print(json.dumps(stream_session(args.session_minutes, args.recordings)))
        return 0
    out = speed([0.05, 0.1, 1.0] if args.quick else [0.05, 0.095, 0.2, 0.5, 1.0, 10.0])
    out.append("  goal: >= 1000x offline")
    out += latency([100] if args.quick else [100, 101])
    out.append(
        "Peak memory (VmHWM of a fresh process that loads six recorded scenarios and streams them back to back"
        " into one engine in 1 s blocks; goal <= 300 MB, flat):"
    )
    tmp = tempfile.TemporaryDirectory()
    recordings = write_recordings(Path(tmp.name))
    for minutes in [2.0, 5.0, 10.0] if args.quick else [15.0, 60.0, 120.0]:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--session-minutes",
                str(minutes),
                "--recordings",
                str(recordings),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        out.append(
            f"  {minutes:5.0f} min session: peak {r['max_rss_mb']:6.1f} MB (after imports and loading {r['start_rss_mb']:.1f} MB), "
            f"{r['sets']} sets found, {time.perf_counter() - t0:.0f} s wall"
        )
    out.append(
        "tremorlift analyze as a whole process (start-up, reading, parsing, engine, JSON out;"
        " goal >= 1000x real time, <= 300 MB):"
    )
    minutes = 20.0 if args.quick else 120.0
    csv_path = Path(tmp.name) / "recording.csv"
    duration_s = write_csv(recordings, csv_path, minutes)
    out.append(analyze_process(csv_path, duration_s))
    session_path = Path(tmp.name) / "recording.tlsession"
    write_session(csv_path, session_path)
    out.append(analyze_process(session_path, duration_s, "session"))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
