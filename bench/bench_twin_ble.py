"""Notification throughput through the digital twin's BLE stack.

Emulated peripherals (MicroPython ``bluetooth`` API on Bumble) notify 244-byte frames to a
bleak client using the twin backend, over the virtual radio. A firmware-like sender backs
off 1 ms on ENOMEM. Prints received frames/s and kB/s, ENOMEM count, sequence gaps and the
process's CPU share, for: the raw stack (Bumble's immediate link), the paced radio at a 7.5 ms
and a 30 ms connection interval, two links, and the product's load (2 devices x 1 kHz, 19
samples per frame = 24 kB/s). bench/bench_radio.py measures the firmware itself on the radio.

Usage: bench/bench_twin_ble.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import time
from typing import Any

from bleak import BleakClient
from tremorlift import protocol
from tremorlift.twin.radio.ble_emulation import BLE, UUID, create_ble
from tremorlift.twin.radio.bleak_backend import twin_backend
from tremorlift.twin.radio.link import Radio

SERVICE = protocol.SERVICE_UUID
DATA = protocol.DATA_UUID
FRAME_BYTES = 244
FLAG_NOTIFY = 0x0010


async def _peripheral(radio: Radio) -> tuple[BLE, int]:
    ble = await create_ble(radio)
    ble.active(True)
    ble.config(mtu=247)
    ((handle,),) = ble.gatts_register_services(((UUID(SERVICE), ((UUID(DATA), FLAG_NOTIFY),)),))
    ble.gap_advertise(20_000, b"\x02\x01\x06")
    await ble.settle()
    return ble, handle


async def _send(ble: BLE, handle: int, rate_hz: float, seconds: float, c: dict[str, int]) -> None:
    conn = ble.connections[0]
    frame = bytearray(FRAME_BYTES)
    period_s = 1.0 / rate_hz if rate_hz else 0.0
    next_s = t_end = time.perf_counter()
    t_end += seconds
    while time.perf_counter() < t_end:
        struct.pack_into("<I", frame, 4, c["sent"])
        try:
            ble.gatts_notify(conn, handle, frame)
        except OSError:
            c["enomem"] += 1
            await asyncio.sleep(0.001)
            continue
        c["sent"] += 1
        if period_s:
            next_s += period_s
            await asyncio.sleep(max(0.0, next_s - time.perf_counter()))
        elif c["sent"] % 8 == 0:
            await asyncio.sleep(0)


async def run(devices: int, rate_hz: float, seconds: float, interval_ms: float | None) -> None:
    radio = Radio(seed=1, connection_interval_ms=interval_ms)
    backend = twin_backend(radio)
    peripherals = [await _peripheral(radio) for _ in range(devices)]
    clients: list[BleakClient] = []
    boxes: list[dict[str, int]] = []
    for ble, _ in peripherals:
        client = BleakClient(ble.address, backend=backend)
        await client.connect()
        box = {"n": 0, "last": -1, "gaps": 0}

        def on_data(_c: Any, data: bytearray, box: dict[str, int] = box) -> None:
            seq = struct.unpack_from("<I", data, 4)[0]
            box["gaps"] += seq != box["last"] + 1
            box["last"] = seq
            box["n"] += 1

        await client.start_notify(DATA, on_data)
        clients.append(client)
        boxes.append(box)
    counters = [{"sent": 0, "enomem": 0} for _ in peripherals]
    cpu0_s, t0_s = time.process_time(), time.perf_counter()
    await asyncio.gather(
        *(_send(b, h, rate_hz, seconds, c) for (b, h), c in zip(peripherals, counters, strict=True))
    )
    await asyncio.sleep(0.2)
    wall_s, cpu_s = time.perf_counter() - t0_s, time.process_time() - cpu0_s
    frames = sum(b["n"] for b in boxes)
    rate = "max" if not rate_hz else f"{rate_hz:.1f}/s"
    pacing = f"{interval_ms:g} ms interval" if interval_ms else "none"
    print(
        f"devices={devices} send={rate} pacing={pacing}: {frames / wall_s:6.0f} frames/s "
        f"{frames * FRAME_BYTES / wall_s / 1e3:6.1f} kB/s received; sent={sum(c['sent'] for c in counters)} "
        f"received={frames} gaps={sum(b['gaps'] for b in boxes)} "
        f"enomem={sum(c['enomem'] for c in counters)} cpu={100 * cpu_s / wall_s:.0f}%"
    )
    for client in clients:
        await client.disconnect()
    await radio.close()


async def main(seconds: float) -> None:
    await run(1, 0, seconds, None)
    await run(1, 0, seconds, 7.5)
    await run(1, 0, seconds, 30.0)
    await run(2, 0, seconds, 7.5)
    await run(2, 1000 / 19, seconds, 30.0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    asyncio.run(main(parser.parse_args().seconds))
