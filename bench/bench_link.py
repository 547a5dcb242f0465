"""Link benchmark: the collector against the digital twin, measured.

Prints, at real-time speed (the twin's clock = the host's):
- end-to-end latency from a sample leaving the emulated IMU's FIFO (the firmware's driver read)
  to the decoded sample in the collector, p50 / p99 / max;
- sustained throughput with two emulated wearables at 1 kHz six-axis: samples lost;
- the collector's CPU per device (decode, accounting, recording, live analysis), and the whole
  process's CPU (which also runs both emulated wearables and both Bumble stacks).

    python bench/bench_link.py [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from typing import Any

import numpy as np
from tremorlift.collect.channel import DeviceChannel
from tremorlift.collect.collector import CollectOptions
from tremorlift.collect.setup import CollectConfig, collect
from tremorlift.twin.radio.link import DEFAULT_CONNECTION_INTERVAL_MS

# The twin radio's connection interval (BlueZ's choice; MicroPython cannot ask for another).
CONN_INTERVAL_MS = DEFAULT_CONNECTION_INTERVAL_MS


def _instrument(
    fleet: Any,
    collector: Any,
    fifo_reads: dict[str, list[tuple[float, int, int]]],
    decoded: dict[str, list[tuple[float, int, int]]],
    busy_s: dict[str, float],
) -> None:
    """Wrap the firmware's FIFO reads and the collector's message handling with timers."""
    for w in fleet.wearables:
        app = w.app
        imu = app.imu
        sampler = app.sampler
        log = fifo_reads.setdefault(w.name, [])
        orig_read = imu.read_fifo

        def read_fifo(
            out: Any,
            max_samples: int,
            at: int = 0,
            orig_read: Any = orig_read,
            sampler: Any = sampler,
            log: list[tuple[float, int, int]] = log,
        ) -> int:
            first = sampler.next_sample_index
            n = orig_read(out, max_samples, at)
            if n > 0:
                log.append((time.monotonic(), first, n))
            return n

        imu.read_fifo = read_fifo

    for ch in collector.channels:
        orig_handle = ch._handle
        orig_flush = ch._flush_feed
        name = ch.label

        def handle(
            message: bytes, t_mono: float, ch: DeviceChannel = ch, orig: Any = orig_handle
        ) -> None:
            t0 = time.perf_counter()
            orig(message, t_mono)
            now = time.monotonic()
            if len(message) >= 16 and message[1] == 1:
                first = int.from_bytes(message[8:12], "little")
                decoded.setdefault(ch.stats.name, []).append((now, first, message[3]))
            busy_s[ch.label] = busy_s.get(ch.label, 0.0) + time.perf_counter() - t0

        def flush(orig: Any = orig_flush, name: str = name) -> None:
            t0 = time.perf_counter()
            orig()
            busy_s[name] = busy_s.get(name, 0.0) + time.perf_counter() - t0

        ch._handle = handle  # type: ignore[method-assign]
        ch._flush_feed = flush  # type: ignore[method-assign]


def _latencies_ms(
    reads: list[tuple[float, int, int]], decoded: list[tuple[float, int, int]]
) -> np.ndarray:
    """Per sample: decode time - FIFO read time (sample indices restart only on reboot)."""
    read_t: dict[int, float] = {}
    for t, first, n in reads:
        for i in range(first, first + n):
            read_t[i] = t
    out = []
    for t, first, n in decoded:
        for i in range(first, first + n):
            if i in read_t:
                out.append((t - read_t[i]) * 1000.0)
    return np.asarray(out)


async def _run(scenario: str, seconds: float, odr_hz: int) -> dict[str, Any]:
    fifo_reads: dict[str, list[tuple[float, int, int]]] = {}
    decoded: dict[str, list[tuple[float, int, int]]] = {}
    busy_s: dict[str, float] = {}
    marks: dict[str, float] = {}

    async def hook(collector: Any, fleet: Any) -> None:
        while not all(ch.stats.state == "streaming" for ch in collector.channels):
            await asyncio.sleep(0.05)
        _instrument(fleet, collector, fifo_reads, decoded, busy_s)
        marks["t0"] = time.monotonic()
        marks["cpu0"] = time.process_time()

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cfg = CollectConfig(
            devices=[], simulate=scenario, speed=1.0, odr_hz=odr_hz, twin="cpython",
            session_path=f"{tmp}/bench.tlsession",
            ui=False, scan_timeout_s=1.0, options=CollectOptions(duration_s=seconds),
        )  # fmt: skip
        summary = await collect(cfg, lambda line: None, None, hook)
    wall = time.monotonic() - marks["t0"]
    cpu = time.process_time() - marks["cpu0"]
    lat = (
        np.concatenate([_latencies_ms(fifo_reads.get(n, []), decoded.get(n, [])) for n in decoded])
        if decoded
        else np.zeros(0)
    )
    return {
        "summary": summary,
        "latency_ms": lat,
        "wall_s": wall,
        "process_cpu_s": cpu,
        "busy_s": busy_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each run (default 30)")
    ap.add_argument(
        "--alert-seconds",
        type=float,
        default=70.0,
        help="length of the real-time demo workout run for alert timing (default 70)",
    )
    args = ap.parse_args()

    print("== link: one wearable at 200 Hz, real time, BLE through bleak + Bumble ==")
    r = asyncio.run(_run("squat-5x5", args.seconds, 200))
    lat = r["latency_ms"]
    s = r["summary"]
    print(
        f"latency FIFO read -> decoded sample: p50 {np.percentile(lat, 50):.1f} ms, "
        f"p99 {np.percentile(lat, 99):.1f} ms, max {lat.max():.1f} ms over {lat.size} samples "
        f"(goal: p99 < 50 ms + one {CONN_INTERVAL_MS} ms connection interval)"
    )
    print(f"samples lost {s['samples_lost']} of {s['samples_expected']}")

    print("== link: two wearables at 1 kHz six-axis, real time ==")
    r = asyncio.run(_run("two-sensors", args.seconds, 1000))
    s = r["summary"]
    lat = r["latency_ms"]
    rate = s["samples_received"] / max(r["wall_s"], 1e-9)
    print(
        f"received {s['samples_received']} samples ({rate:.0f} samples/s in all), lost {s['samples_lost']} "
        f"of {s['samples_expected']}, corrupt frames {s['frames_corrupt']}"
    )
    if lat.size:
        print(
            f"latency at 1 kHz: p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms"
        )
    for name, busy in sorted(r["busy_s"].items()):
        print(
            f"collector CPU for {name}: {100 * busy / r['wall_s']:.1f} % of one core "
            f"(decode, accounting, recording, live analysis)"
        )
    print(
        f"whole process (collector + two emulated wearables + two Bumble stacks): "
        f"{100 * r['process_cpu_s'] / r['wall_s']:.0f} % of one core"
    )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")

    print("== alert to buzz: the demo workout at real-time speed ==")
    r = asyncio.run(_run("demo", args.alert_seconds, 200))
    lat = r["latency_ms"]
    buzz = np.asarray([x for d in r["summary"]["devices"] for x in d["alert_to_buzz_ms"]])
    if buzz.size:
        link = float(np.percentile(lat, 50)) if lat.size else float("nan")
        print(
            f"velocity-loss alerts: {buzz.size}; from the collector receiving the rep's last sample to "
            f"the BUZZ command leaving it: median {np.median(buzz):.0f} ms, max {buzz.max():.0f} ms "
            f"(plus the link's {link:.0f} ms median from the wearable's FIFO; goal: under 200 ms "
            f"from the end of the rep)"
        )
    else:
        print("no velocity-loss alert was raised in the demo workout: nothing to time")


if __name__ == "__main__":
    main()
