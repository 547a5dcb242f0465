"""The MicroPython twin's fleet: the virtual radio and one MicroPython board per sensor.

:class:`MicroPythonFleet` offers the interface of :class:`tremorlift.twin.wearable.TwinFleet`
(``start``/``close``, ``async with``, ``radio``, ``wearables``, ``backend``, ``duration_s``,
``truth``, ``speed``), so whatever sets up a session with the CPython twin can take it instead.
It runs in real time only (each board is a process with its own clock).

Per fleet, in one temporary folder: ``rom/`` (the board's start-up, its ``machine``, the board
emulation and MicroPython's asyncio), ``image/`` (the firmware as ``make firmware`` builds it
for a board: ``.mpy`` files, ``boot.py`` and ``main.py``), and per board a flash folder that
starts as a copy of the image and keeps what the firmware writes across that board's resets.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tremorlift.twin.micropython import build as mp_build
from tremorlift.twin.micropython.wearable import (
    DEFAULT_HEAP_BYTES,
    MicroPythonWearable,
    prepare_rom,
)
from tremorlift.twin.motion.generator import SCENARIOS, MotionSource, generate
from tremorlift.twin.radio.bleak_backend import twin_backend
from tremorlift.twin.radio.link import Radio

logger = logging.getLogger(__name__)

CHECKOUT = mp_build.CHECKOUT
FIRMWARE_DIR = CHECKOUT / "firmware"
BUILD_TOOL = CHECKOUT / "tools" / "build_firmware.py"
_RENDER_RATE_HZ = 200.0  # generate()'s default rate, and the firmware's at boot (config.ODR_HZ)


def chip_rate_hz(odr_hz: int) -> int:
    """The rate the emulated chips run at to give ``odr_hz`` (400 Hz: 1 kHz, resampled by the
    driver), as in the CPython twin."""
    return 1000 if odr_hz == 400 else odr_hz


def firmware_image(out: Path) -> str:
    """The firmware as a board gets it (``make firmware``: .mpy files, boot.py and main.py as
    source) into ``out``; the plain sources when mpy-cross cannot run. Returns which."""
    done = subprocess.run(
        [sys.executable, str(BUILD_TOOL), "--src", str(FIRMWARE_DIR), "--out", str(out)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    if done.returncode == 0:
        return "mpy"
    logger.warning("firmware not compiled (%s): the board runs its sources", done.stderr.strip())
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(FIRMWARE_DIR, out, ignore=shutil.ignore_patterns("__pycache__"))
    return "source"


class MicroPythonFleet:
    """The virtual radio and one MicroPython board running the firmware per sensor."""

    runtime = "micropython"
    ble_host = "nimble"

    def __init__(
        self,
        scenario: str,
        *,
        seed: int = 0,
        speed: float = 1.0,
        imu: str = "icm42688",
        transport: str = "ble",
        loop_motion: bool = False,
        short: bool = False,
        odr_hz: int = 200,
        radio_kwargs: dict[str, Any] | None = None,
        heap_bytes: int = DEFAULT_HEAP_BYTES,
    ) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}")
        if speed != 1.0:
            raise ValueError("the MicroPython twin runs in real time only (speed 1)")
        if transport not in ("ble", "serial"):
            raise ValueError(f"unknown transport {transport!r}")
        self.scenario = scenario
        self.seed = seed
        self.speed = 1.0
        self.imu = imu
        self.transport = transport
        self.loop_motion = loop_motion
        self.short = short
        self.odr_hz = odr_hz
        self.radio_kwargs = radio_kwargs or {}
        self.heap_bytes = heap_bytes
        self.radio: Radio | None = None
        self.wearables: list[MicroPythonWearable] = []
        self.duration_s = 0.0
        self.truth: list[dict[str, Any]] = []
        self.build: mp_build.MicroPythonBuild | None = None
        self.image_kind = ""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def backend(self) -> type:
        assert self.radio is not None
        return twin_backend(self.radio)

    async def __aenter__(self) -> MicroPythonFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def twin_info(self) -> dict[str, Any]:
        """The summary's ``twin`` block."""
        from tremorlift.twin.runtime import twin_info  # noqa: PLC0415

        return twin_info(self)

    async def start(self) -> None:
        self.build = mp_build.find()
        self._tmp = tempfile.TemporaryDirectory(prefix="tremorlift-mpy-twin-")
        root = Path(self._tmp.name)
        try:
            await self._start(root)
        except BaseException:
            await self.close()
            raise

    async def _start(self, root: Path) -> None:
        assert self.build is not None
        rom = await asyncio.to_thread(prepare_rom, root / "rom", self.build.asyncio_dir)
        image = root / "image"
        self.image_kind = await asyncio.to_thread(firmware_image, image)
        sc = await asyncio.to_thread(
            generate, self.scenario, self.seed, sample_rate_hz=_RENDER_RATE_HZ, imu=self.imu,
            short=self.short,
        )  # fmt: skip
        self.duration_s = max(float(d.t_s[-1]) for d in sc.devices)
        self.truth = [d.truth for d in sc.devices]
        self.radio = Radio(seed=self.seed, **self.radio_kwargs)
        for i, dev in enumerate(sc.devices):
            flash = root / f"flash-{i}"
            await asyncio.to_thread(shutil.copytree, image, flash)

            def make_source(rate_hz: float, device: int = i) -> MotionSource:
                return MotionSource(
                    self.scenario, self.seed, sample_rate_hz=rate_hz, imu=self.imu, device=device,
                    loop=self.loop_motion, short=self.short,
                )  # fmt: skip

            w = MicroPythonWearable(
                self.build, rom, flash, self.radio, make_source,
                address=self.radio.allocate_address(), imu=self.imu,
                heap_bytes=self.heap_bytes, label=dev.name, serial=self.transport == "serial",
            )  # fmt: skip
            # The scenario's own render is the 200 Hz source (the firmware's rate at boot).
            w.set_source(_RENDER_RATE_HZ, MotionSource.from_recording(dev, loop=self.loop_motion))
            self.wearables.append(w)
        # The boards boot (their safe-mode window alone takes 2 s) while the motion for the
        # rate the collector will ask for is rendered.
        rate = chip_rate_hz(self.odr_hz)
        await asyncio.gather(
            *(w.start() for w in self.wearables),
            *(asyncio.to_thread(w.prepare, float(rate)) for w in self.wearables),
        )

    async def close(self) -> None:
        for w in self.wearables:
            await w.stop()
        if self.radio is not None:
            await self.radio.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
