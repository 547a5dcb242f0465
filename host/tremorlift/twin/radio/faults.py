"""Fault injection for the digital twin: ``tremorlift collect --simulate SCENARIO --inject SPEC``.

SPEC is a comma-separated list of faults:

==========================  ===================================================================
``disconnect@T[:SECONDS]``  the radio link drops at T and stays down SECONDS (default 2): the
                            wearable is out of range, so nothing it advertises is heard and
                            the collector's reconnection attempts fail until it is back (BLE)
``drop=P``                  that fraction (0..1) of notifications is lost on the air (BLE)
``corrupt=P``               that fraction of the messages on the USB serial line arrives with a
                            flipped bit (serial); the CRC catches it and the frame is resent
``i2c-error=P``             that fraction of I2C transactions with the IMU fails (EIO)
``fifo-overflow@T[:SECONDS]`` the firmware does not read the IMU for SECONDS (default: twice
                            what the IMU's FIFO holds), so the FIFO overflows and the samples
                            are lost on the device (reported as a device-side gap)
``reboot@T``                the wearable resets (new boot_id, sample indices from 0)
==========================  ===================================================================

Each timed fault may end in ``/N`` to hit only the N-th wearable (1-based); by default every
wearable of the scenario gets it.

Times (T and SECONDS) are in the **wearable's** seconds, counted from the moment the collector
has the first wearable streaming. With ``--speed 4`` a ``disconnect@20:8`` happens 5 s of host
time into the stream and lasts 2 s of host time, but to the wearable it is 8 s without a link,
which is what decides whether its resend ring (``INFO.ring_frames``) bridges the outage. The
probabilities apply from that same moment to the end of the session.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tremorlift.errors import UserError

KINDS_TIMED = ("disconnect", "fifo-overflow", "reboot")
KINDS_RATE = ("drop", "corrupt", "i2c-error")
DEFAULT_OUTAGE_S = 2.0
STREAM_WAIT_POLL_S = 0.05
_FIFO_STALL_FACTOR = 2.0  # stall this many times what the FIFO holds: an overflow for sure

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_TIMED_RE = re.compile(
    rf"^(?P<kind>[a-z0-9-]+)@(?P<at>{_NUMBER})(?::(?P<dur>{_NUMBER}))?(?:/(?P<dev>\d+))?$"
)
_RATE_RE = re.compile(rf"^(?P<kind>[a-z0-9-]+)=(?P<p>{_NUMBER})$")


@dataclass(frozen=True)
class Fault:
    """One fault. Timed faults have ``at_s`` (wearable seconds after streaming started);
    ``duration_s`` is the outage (disconnect) or the stall (fifo-overflow); rate faults have
    ``probability``. ``device`` is a 0-based wearable index, None for every wearable."""

    kind: str
    at_s: float | None = None
    duration_s: float | None = None
    probability: float | None = None
    device: int | None = None

    def spec(self) -> str:
        """The fault written back in SPEC syntax."""
        if self.probability is not None:
            return f"{self.kind}={self.probability:g}"
        text = f"{self.kind}@{self.at_s:g}"
        if self.duration_s is not None:
            text += f":{self.duration_s:g}"
        if self.device is not None:
            text += f"/{self.device + 1}"
        return text


def parse_inject(spec: str) -> list[Fault]:
    """Parse SPEC strictly; UserError naming the bad part otherwise."""
    if not spec or not spec.strip():
        raise UserError("--inject: empty fault list")
    faults: list[Fault] = []
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            raise UserError(f"--inject: empty item in {spec!r}")
        faults.append(_parse_one(part))
    for kind in KINDS_RATE:
        if sum(f.kind == kind for f in faults) > 1:
            raise UserError(f"--inject: {kind}= given more than once")
    return faults


def _parse_one(part: str) -> Fault:
    m = _RATE_RE.match(part)
    if m is not None:
        kind = m["kind"]
        if kind not in KINDS_RATE:
            raise UserError(f"--inject: {part!r}: {_unknown(kind)}")
        p = float(m["p"])
        if not 0.0 <= p <= 1.0:
            raise UserError(f"--inject: {part!r}: probability must be within 0..1")
        return Fault(kind, probability=p)
    m = _TIMED_RE.match(part)
    if m is None:
        raise UserError(
            f"--inject: {part!r} is not KIND@T[:SECONDS][/N] or KIND=P "
            "(e.g. disconnect@20:5, drop=0.05, reboot@30)"
        )
    kind = m["kind"]
    if kind not in KINDS_TIMED:
        raise UserError(f"--inject: {part!r}: {_unknown(kind)}")
    at_s = float(m["at"])
    duration_s = float(m["dur"]) if m["dur"] is not None else None
    if kind == "reboot" and duration_s is not None:
        raise UserError(f"--inject: {part!r}: reboot takes no duration")
    if duration_s is not None and not duration_s > 0:
        raise UserError(f"--inject: {part!r}: the duration must be positive")
    device = None
    if m["dev"] is not None:
        device = int(m["dev"]) - 1
        if device < 0:
            raise UserError(f"--inject: {part!r}: wearables are numbered from 1")
    if kind == "disconnect" and duration_s is None:
        duration_s = DEFAULT_OUTAGE_S
    return Fault(kind, at_s=at_s, duration_s=duration_s, device=device)


def _unknown(kind: str) -> str:
    timed = ", ".join(f"{k}@T" for k in KINDS_TIMED)
    rates = ", ".join(f"{k}=P" for k in KINDS_RATE)
    return f"unknown fault {kind!r} (one of {timed}, {rates})"


def check_faults(faults: list[Fault], *, serial: bool) -> None:
    """Refuse faults the chosen transport cannot have (UserError)."""
    for f in faults:
        if serial and f.kind in ("disconnect", "drop"):
            raise UserError(f"--inject: {f.spec()} needs the BLE link (drop --serial)")
        if not serial and f.kind == "corrupt":
            raise UserError(f"--inject: {f.spec()} damages the serial line: it needs --serial")


# ============================================================================ mechanics


def _controller_of(radio: Any, address: str) -> Any:
    for controller in radio.link.controllers:
        if controller.random_address.to_string(False).upper() == address.upper():
            return controller
    raise RuntimeError(f"no controller on the radio has address {address}")


def set_out_of_range(radio: Any, address: str, out: bool) -> int:
    """Take a wearable out of radio range (its links drop and its advertising goes unheard, so
    no connection can be made) or bring it back. Returns the link ends closed."""
    advertiser = _controller_of(radio, address).le_legacy_advertiser
    if out:
        # An instance attribute shadows the method the advertising timer calls: the timer keeps
        # running (the firmware still believes it advertises) but no PDU reaches the air.
        advertiser.send_advertising_data = lambda: None
        return int(radio.drop_link(address))
    advertiser.__dict__.pop("send_advertising_data", None)
    return 0


def fifo_hold_s(wearable: Any) -> float:
    """Seconds of samples the wearable's IMU FIFO holds at its configured rate."""
    emu = wearable.emulator
    odr_hz = float(emu.odr_hz) or 200.0
    bytes_per_sample = 16 if type(emu).__name__.startswith("Icm") else 12
    return emu.fifo_capacity_bytes / bytes_per_sample / odr_hz


def stall_imu_reads(wearable: Any, device_s: float) -> None:
    """The firmware reads nothing from the IMU for ``device_s`` wearable seconds, as when a long
    blocking call holds the main loop; the chip keeps sampling into its FIFO meanwhile."""
    sampler = wearable.app.sampler
    sampler.poll = lambda: 0  # instance attribute: shadows Sampler.poll until removed
    loop = asyncio.get_running_loop()
    loop.call_later(device_s / wearable.clock.speed, sampler.__dict__.pop, "poll", None)


# ============================================================================ the hook


class FaultInjector:
    """Runs a list of faults against a TwinFleet; use as ``collect``'s ``hook``.

    ``injected`` lists what was done (spec, wearable, host and wearable time); the collector's
    summary carries it as ``"injected"``.
    """

    def __init__(self, faults: list[Fault], emit: Callable[[str], None] | None = None) -> None:
        self.faults = list(faults)
        self.emit = emit or (lambda _line: None)
        self.injected: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, collector: Any, fleet: Any) -> None:
        if fleet is None:
            raise UserError("--inject needs --simulate")
        collector.summary_extra["injected"] = self.injected
        # (The CLI has checked the spec; a wearable number the scenario lacks is only known now.)
        for f in [
            f for f in self.faults if f.device is not None and f.device >= len(fleet.wearables)
        ]:
            self.emit(
                f"inject: {f.spec()} ignored: the scenario has {len(fleet.wearables)} wearable(s)"
            )
            self.faults.remove(f)
        while not any(ch.stats.state == "streaming" for ch in collector.channels):
            await asyncio.sleep(STREAM_WAIT_POLL_S)
        t0 = time.monotonic()
        speed = fleet.speed
        for f in self.faults:
            if f.probability is not None:
                self._apply_rate(f, fleet)
                self._note(f, None, t0, speed)
        try:
            for f in sorted(
                (f for f in self.faults if f.at_s is not None), key=lambda f: f.at_s or 0.0
            ):
                assert f.at_s is not None
                delay_s = t0 + f.at_s / speed - time.monotonic()
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
                targets = range(len(fleet.wearables)) if f.device is None else [f.device]
                for i in targets:
                    try:
                        await self._apply_timed(f, fleet, i)
                    except Exception as exc:  # noqa: BLE001 - a twin fault must not end the session
                        self.emit(f"inject: {f.spec()} failed on wearable {i + 1}: {exc!r}")
                        continue
                    self._note(f, i, t0, speed, fleet.wearables[i].name)
            await asyncio.Event().wait()  # keep the outages' restore tasks alive to the end
        finally:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if fleet.radio is not None:  # whatever is still out of range comes back
                for w in fleet.wearables:
                    if w.address is not None:
                        set_out_of_range(fleet.radio, w.address, False)

    def _note(
        self, f: Fault, device: int | None, t0: float, speed: float, name: str | None = None
    ) -> None:
        elapsed_s = time.monotonic() - t0
        entry: dict[str, Any] = {"fault": f.spec(), "kind": f.kind}
        if device is not None:
            entry["device"] = device  # index in the scenario's wearables (the /N of the spec - 1)
            entry["name"] = name
        if f.probability is not None:
            entry["probability"] = f.probability
        if f.duration_s is not None:
            entry["duration_s"] = f.duration_s
        entry["host_s"] = round(elapsed_s, 3)
        entry["device_s"] = round(elapsed_s * speed, 3)
        self.injected.append(entry)
        self.emit(
            f"inject: {f.spec()}"
            + (f" on wearable {device + 1} ({name})" if name and device is not None else "")
        )

    @staticmethod
    def _apply_rate(f: Fault, fleet: Any) -> None:
        p = float(f.probability or 0.0)
        if f.kind == "drop":
            fleet.radio.notification_loss = p
        for w in fleet.wearables:
            if f.kind == "corrupt" and w.serial is not None:
                w.serial.corrupt_message_probability = p
            elif f.kind == "i2c-error":
                w.bus.error_rate = p

    async def _apply_timed(self, f: Fault, fleet: Any, index: int) -> None:
        w = fleet.wearables[index]
        if f.kind == "reboot":
            await w.reboot()
        elif f.kind == "fifo-overflow":
            stall_s = (
                f.duration_s if f.duration_s is not None else _FIFO_STALL_FACTOR * fifo_hold_s(w)
            )
            stall_imu_reads(w, stall_s)
        elif f.kind == "disconnect":
            assert f.duration_s is not None
            set_out_of_range(fleet.radio, w.address, True)
            task = asyncio.create_task(self._restore_after(fleet, w, f.duration_s / fleet.speed))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _restore_after(fleet: Any, w: Any, host_s: float) -> None:
        await asyncio.sleep(host_s)
        set_out_of_range(fleet.radio, w.address, False)
