"""The wearable's firmware streaming through the twin's paced radio, per connection interval.

For each connection interval the laptop may pick (7.5, 15, 30, 50 ms) and each sample rate
(200, 400, 1000 Hz), one emulated wearable (the firmware's own App on the CPython twin, at real
time) streams to a bleak client for a few seconds over the paced virtual radio
(tremorlift.twin.radio.link: connection events, data length extension, a per-event packet budget,
12 controller buffers). The client pairs, configures the rate and starts the stream as the
collector does, and counts what arrives; it never asks for RESEND, so a lost sample is one the
link could not carry in time.

Printed per row: samples/s received, samples lost (holes in the sample index, live frames only),
the firmware's ENOMEM back-offs (its STATUS counter), back-offs per second, the frames still
waiting in the ring when the run ends, mean samples per frame, and connection events per second
that carried data.

    python bench/bench_radio.py [--seconds S] [--intervals 7.5,15,30,50] [--rates 200,400,1000]
        [--no-dle] [--max-pdus N] [--twin cpython|micropython]

With --twin micropython the firmware runs on MicroPython's unix port with NimBLE (real
`bluetooth` bindings, NimBLE's mbuf pool and host flow control) against the same paced
controller.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import struct
import sys
import time
from typing import Any

from bleak import BleakClient
from tremorlift import protocol
from tremorlift.twin.wearable import TwinFleet

DATA_UUID = "7a1f0002-4c3b-4e0c-9b5a-2d8e6f1c3a70"
CONTROL_UUID = "7a1f0003-4c3b-4e0c-9b5a-2d8e6f1c3a70"
STATUS_UUID = "7a1f0004-4c3b-4e0c-9b5a-2d8e6f1c3a70"
SETTLE_S = 1.0  # after START, before counting: the stream's first frames and the queue fill


class _Counter:
    def __init__(self) -> None:
        self.counting = False
        self.samples = 0
        self.frames = 0
        self.first_index: int | None = None
        self.next_index: int | None = None
        self.lost = 0
        self.last_seq = -1
        self.responses: list[bytes] = []
        self.statuses: list[protocol.Status] = []

    def on_data(self, _char: Any, data: bytearray) -> None:
        version, msg_type, flags, n, _seq, first, _tick = struct.unpack_from("<BBBBIII", data)
        if msg_type != protocol.MSG_SAMPLES or flags & protocol.FLAG_RESENT:
            return
        self.last_seq = max(self.last_seq, _seq)
        if not self.counting:
            self.next_index = first + n
            return
        if self.next_index is not None and first > self.next_index:
            self.lost += first - self.next_index
        self.next_index = first + n
        self.samples += n
        self.frames += 1

    def on_control(self, _char: Any, data: bytearray) -> None:
        self.responses.append(bytes(data))

    def on_status(self, _char: Any, data: bytearray) -> None:
        self.statuses.append(protocol.decode_status(bytes(data)))


async def _status_now(client: BleakClient, counter: _Counter) -> protocol.Status:
    """A fresh STATUS (the firmware's own counters), asked for with STATUS_NOW."""
    before = len(counter.statuses)
    await _command(client, counter, protocol.OP_STATUS_NOW, b"")
    deadline = time.monotonic() + 5.0
    while len(counter.statuses) == before:
        if time.monotonic() > deadline:
            raise RuntimeError("no STATUS after STATUS_NOW")
        await asyncio.sleep(0.01)
    return counter.statuses[-1]


async def _command(client: BleakClient, counter: _Counter, opcode: int, args: bytes) -> int:
    before = len(counter.responses)
    await client.write_gatt_char(CONTROL_UUID, bytes((opcode, 1)) + args, response=True)
    deadline = time.monotonic() + 5.0
    while len(counter.responses) == before:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no response to opcode {opcode}")
        await asyncio.sleep(0.01)
    return counter.responses[-1][4]


async def run_one(
    interval_ms: float, rate_hz: int, seconds: float, dle: bool, max_pdus: int, twin: str
) -> dict[str, Any]:
    radio_kwargs: dict[str, Any] = {
        "connection_interval_ms": interval_ms,
        "max_pdus_per_event": max_pdus,
    }
    if not dle:
        radio_kwargs["data_length_octets"] = 27
    fleet: Any
    if twin == "micropython":
        from tremorlift.twin.micropython.fleet import MicroPythonFleet

        fleet = MicroPythonFleet("squat-5x5", short=True, odr_hz=rate_hz, radio_kwargs=radio_kwargs)
    else:
        fleet = TwinFleet("squat-5x5", short=True, odr_hz=rate_hz, radio_kwargs=radio_kwargs)
    await fleet.start()
    try:
        wearable = fleet.wearables[0]
        counter = _Counter()
        async with BleakClient(wearable.address, backend=fleet.backend) as client:
            await client.pair()
            await client.start_notify(CONTROL_UUID, counter.on_control)
            await client.start_notify(DATA_UUID, counter.on_data)
            await client.start_notify(STATUS_UUID, counter.on_status)
            config = struct.pack("<HBHH", rate_hz, 8, 1000, 0)
            if await _command(client, counter, protocol.OP_CONFIGURE, config) != 0:
                raise RuntimeError(f"CONFIGURE {rate_hz} Hz refused")
            if await _command(client, counter, protocol.OP_START, b"") != 0:
                raise RuntimeError("START refused")
            await asyncio.sleep(SETTLE_S)
            assert fleet.radio is not None
            backoffs0 = (await _status_now(client, counter)).notify_backoffs
            events0 = fleet.radio.air_stats()["events"]
            counter.counting = True
            t0 = time.monotonic()
            await asyncio.sleep(seconds)
            counter.counting = False
            elapsed_s = time.monotonic() - t0
            events = fleet.radio.air_stats()["events"] - events0
            status = await _status_now(client, counter)
            backoffs = status.notify_backoffs - backoffs0
            result = {
                "interval_ms": interval_ms,
                "rate_hz": rate_hz,
                "samples_per_s": counter.samples / elapsed_s,
                "lost": counter.lost,
                "backoffs": backoffs,
                "backoffs_per_s": backoffs / elapsed_s,
                # Frames made but not received yet when the run ended (STATUS's next_seq).
                "backlog_frames": max(0, status.next_seq - 1 - counter.last_seq),
                "samples_per_frame": counter.samples / max(1, counter.frames),
                "events_per_s": events / elapsed_s,
                "overruns": fleet.radio.air_stats()["buffer_overruns"],
            }
            await _command(client, counter, protocol.OP_STOP, b"")
    finally:
        await fleet.close()
    return result


async def main(
    seconds: float, intervals: list[float], rates: list[int], dle: bool, max_pdus: int, twin: str
) -> int:
    logging.getLogger("bumble").setLevel(logging.ERROR)
    print(
        f"Firmware ({twin} twin) streaming over the paced twin radio "
        f"({'DLE 251' if dle else 'no DLE, 27'}-byte "
        f"LL PDUs, {max_pdus} PDUs/event at most, 12 controller buffers), {seconds:g} s per row "
        "at real "
        "time, no RESEND"
    )
    header = (
        f"{'interval ms':>11} {'rate Hz':>7} {'samples/s':>9} {'lost':>6} {'back-offs':>9} "
        f"{'/s':>6} {'backlog':>7} {'spf':>5} {'events/s':>8}"
    )
    print(header)
    print("-" * len(header))
    failed = 0
    for interval_ms in intervals:
        for rate_hz in rates:
            try:
                r = await run_one(interval_ms, rate_hz, seconds, dle, max_pdus, twin)
            except Exception as exc:  # noqa: BLE001 - a row that fails is reported, not fatal
                # e.g. a saturated link: NimBLE out of buffers answers a control write with ATT
                # 0x11 (Insufficient Resources), and a STATUS notification is refused.
                print(f"{interval_ms:>11g} {rate_hz:>7} failed: {type(exc).__name__}: {exc}")
                failed += 1
                continue
            print(
                f"{r['interval_ms']:>11g} {r['rate_hz']:>7} {r['samples_per_s']:>9.0f} "
                f"{r['lost']:>6} {r['backoffs']:>9} {r['backoffs_per_s']:>6.1f} "
                f"{r['backlog_frames']:>7} {r['samples_per_frame']:>5.1f} {r['events_per_s']:>8.1f}",
                flush=True,
            )
            if r["overruns"]:
                print("the host overran the controller's ACL buffers", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--intervals", default="7.5,15,30,50")
    parser.add_argument("--rates", default="200,400,1000")
    parser.add_argument("--no-dle", action="store_true", help="27-byte LL PDUs (no DLE)")
    parser.add_argument("--max-pdus", type=int, default=4, help="exchanges per event at most")
    parser.add_argument(
        "--twin",
        choices=("cpython", "micropython"),
        default="cpython",
        help="the in-process twin, or the firmware on MicroPython's unix port with NimBLE "
        "(make micropython-twin builds it)",
    )
    a = parser.parse_args()
    sys.exit(
        asyncio.run(
            main(
                a.seconds,
                [float(x) for x in a.intervals.split(",")],
                [int(x) for x in a.rates.split(",")],
                not a.no_dle,
                a.max_pdus,
                a.twin,
            )
        )
    )
