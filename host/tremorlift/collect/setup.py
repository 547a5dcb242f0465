"""``tremorlift collect``'s set-up: finds the wearables (or starts the digital twin), creates
the session file with its settings, runs the :class:`~tremorlift.collect.collector.Collector`,
and, however the session ends (its duration, Ctrl-C, SIGTERM, SIGHUP, every wearable lost for
good, a failed port), stores the session's final analysis and writes the summary.

This is the one module of the live path that may import the twin (``tremorlift.twin``), and only
to start it: the collector itself reaches a twin wearable through bleak or a serial port, exactly
as it reaches a real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from tremorlift.collect.channel import DeviceChannel, LinkFactory
from tremorlift.collect.collector import CollectOptions, Collector, EventSink, Listener
from tremorlift.errors import UserError
from tremorlift.store import final as final_analysis
from tremorlift.store.files import write_atomic
from tremorlift.store.reader import SessionReader
from tremorlift.store.session import SessionWriter

# The signals that end a session cleanly (finalised, summary written) instead of killing it.
ENDING_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


@dataclass
class CollectConfig:
    """Everything ``tremorlift collect`` was asked to do (parsed and validated by the CLI)."""

    devices: list[str]
    serial: str | None = None  # a port, or "twin" for the emulated wearable's pseudo-terminal
    simulate: str | None = None
    speed: float = 1.0
    seed: int = 0
    imu: str = "icm42688"
    odr_hz: int | None = None
    session_path: str | None = None
    summary_json: str | None = None
    ui: bool = True
    scan_timeout_s: float = 5.0
    options: CollectOptions | None = None
    feedback: Any = None  # tremorlift.collect.feedback.Feedback, or None for no sound
    # The twin's runtime (tremorlift.twin.runtime): "micropython", "cpython", or None for the
    # MicroPython twin where it can run; fault_kinds are the --inject kinds it must take.
    twin: str | None = None
    fault_kinds: tuple[str, ...] = ()
    # The connection interval the twin's radio paces its links at (ms); None: the radio's
    # default (30 ms, what BlueZ picks).
    twin_interval_ms: float | None = None
    # BLE without `devices`: connect only to wearables in the paired-devices file
    # (tremorlift.transport.pairing). The CLI sets it unless --any is given.
    paired_only: bool = False
    # The session's event stream: each listener is added to Collector.listeners (--events).
    listeners: list[Listener] = field(default_factory=list)
    # The live page's server (collect.web.WebServer, --web): started before the wearables are
    # looked for, given the collector, closed after the session's last event.
    web: Any = None


async def _ble_targets(
    cfg: CollectConfig, backend: type | None, emit: EventSink
) -> list[tuple[str, str]]:
    from tremorlift.transport import ble  # noqa: PLC0415 - bleak is only imported when used

    found = await ble.scan(cfg.scan_timeout_s, backend=backend)
    if cfg.devices:
        targets = []
        for want in cfg.devices:
            match = next(
                (w for w in found if want.upper() in (w.name.upper(), w.address.upper())), None
            )
            if match is None:
                raise UserError(
                    f"wearable {want} not found (seen: {', '.join(w.name for w in found) or 'none'})"
                )
            targets.append((match.name, match.address))
        return targets
    if cfg.paired_only:
        from tremorlift.transport.pairing import only_paired  # noqa: PLC0415

        found = only_paired(found, cfg.simulate)
    if not found:
        raise UserError(
            "no tremorlift wearable found: is it on and advertising? (`tremorlift scan`)"
        )
    for w in found:
        emit(f"found {w.name} ({w.address}, {w.rssi_dbm} dBm)")
    return [(w.name, w.address) for w in found]


Hook = Callable[[Collector, Any], Coroutine[Any, Any, None]]


async def collect(
    cfg: CollectConfig, emit: EventSink, ui: Any = None, hook: Hook | None = None
) -> dict[str, Any]:
    """Run ``tremorlift collect``: returns the summary (also written to ``cfg.summary_json``).

    ``hook(collector, fleet)`` runs as a task beside the session (``fleet`` is the twin or
    None): fault injection and tests use it to act on the link mid-session.
    """
    options = cfg.options or CollectOptions()
    try:
        if cfg.web is None:
            return await _collect(cfg, options, emit, ui, hook)
        await cfg.web.start()
        try:
            return await _collect(cfg, options, emit, ui, hook)
        finally:
            await cfg.web.close()
    finally:
        for listener in cfg.listeners:
            close = getattr(listener, "close", None)
            if close is not None:
                close()  # an event file (--events) is complete once the session is


async def _collect(
    cfg: CollectConfig, options: CollectOptions, emit: EventSink, ui: Any, hook: Hook | None
) -> dict[str, Any]:
    from tremorlift import paths  # noqa: PLC0415

    fleet = None
    if cfg.serial not in (None, "twin") and cfg.simulate is None:
        from tremorlift.transport.serial import check_port  # noqa: PLC0415

        check_port(cfg.serial)  # a missing port fails here, before any session file exists
    if cfg.simulate is not None:
        from tremorlift.twin import runtime  # noqa: PLC0415 - bumble only for the twin

        twin_transport = "serial" if cfg.serial is not None else "ble"
        kind, note = runtime.choose(
            cfg.twin, speed=cfg.speed, transport=twin_transport, fault_kinds=cfg.fault_kinds
        )
        if note:
            emit(note)
        radio = (
            {} if cfg.twin_interval_ms is None else {"connection_interval_ms": cfg.twin_interval_ms}
        )
        fleet = runtime.make_fleet(
            cfg.simulate, runtime=kind, seed=cfg.seed, speed=cfg.speed, imu=cfg.imu,
            transport=twin_transport, odr_hz=cfg.odr_hz or 200, radio_kwargs=radio,
        )  # fmt: skip
        await fleet.start()
        if options.duration_s is None:
            options.duration_s = fleet.duration_s / cfg.speed + 2.0
        emit(
            f"twin: scenario {cfg.simulate} (seed {cfg.seed}), {len(fleet.wearables)} wearable(s), "
            f"{fleet.duration_s:.0f} s of motion at {cfg.speed:g}x"
        )
    try:
        # Find the wearables before anything is created, so a failed scan leaves no empty file.
        if cfg.serial is not None:
            transport = "serial-twin" if fleet is not None else "serial"
            ports = (
                [w.serial.slave_path for w in fleet.wearables if w.serial]
                if fleet
                else [cfg.serial]
            )
            targets = [(port, port) for port in ports]
        else:
            transport = "ble-twin" if fleet is not None else "ble"
            backend = fleet.backend if fleet is not None else None
            targets = await _ble_targets(cfg, backend, emit)
        session_path = cfg.session_path or str(paths.new_session_path())
        # A twin sped up X times is recorded on the lifter's timeline: the session clock runs
        # X times faster than the host's, so stored times match the wearable's own.
        scale = cfg.speed if fleet is not None else 1.0
        t0 = time.monotonic()
        session = SessionWriter(
            session_path,
            clock=lambda: t0 + (time.monotonic() - t0) * scale,
            meta={"exercise": options.exercise or "", "time_scale": repr(scale)},
        )
    except BaseException:
        if fleet is not None:
            await fleet.close()
        raise
    collector: Collector | None = None
    try:
        final_analysis.store_settings(session, _settings(cfg, options))
        collector = Collector(
            session,
            options,
            transport=transport,
            emit=emit,
            on_alert=getattr(ui, "on_alert", None),
            feedback=cfg.feedback,
            time_scale=scale,
        )
        _add_devices(collector, cfg, targets, transport, fleet, emit)
        collector.listeners.extend(cfg.listeners)
        if cfg.web is not None:
            cfg.web.attach(collector)
        if fleet is not None:
            collector.summary_extra["twin"] = runtime.twin_info(fleet)
        if cfg.odr_hz is not None:
            for ch in collector.channels:
                ch.want_odr_hz = cfg.odr_hz
        on_tick = ui.update if ui is not None else None
        hook_task: asyncio.Task[None] | None = (
            asyncio.create_task(hook(collector, fleet)) if hook is not None else None
        )
        with _ending_signals(collector, emit):
            try:
                summary = await collector.run(on_tick)
            finally:
                if hook_task is not None:
                    hook_task.cancel()
                    await asyncio.gather(hook_task, return_exceptions=True)
            summary = _finalise(collector, session, summary, emit)
            collector.publish(
                "session_end", None, ended_by=summary.get("ended_by"), final=summary.get("final"),
                samples_lost=summary["samples_lost"],
            )  # fmt: skip
    finally:
        session.close()
        if fleet is not None:
            await fleet.close()
    if cfg.summary_json:
        write_atomic(cfg.summary_json, json.dumps(summary, indent=2) + "\n")
    if collector is not None and collector.failure is not None:
        raise collector.failure
    return summary


def _settings(cfg: CollectConfig, options: CollectOptions) -> dict[str, Any]:
    """What the session is recorded with: the analysis reads them back (``store.final``)."""
    feedback = cfg.feedback
    return {
        "exercise": options.exercise, "goal": options.goal,
        "vl_threshold_pct": options.vl_threshold_pct, "placement": options.placement,
        "alerts_enabled": options.alerts_enabled,
        "stop_policy": options.stop_policy, "load_kg": options.load_kg,
        "feedback": {
            "haptic": options.haptic,
            "sound": bool(getattr(feedback, "sound", False)),
            "speech": bool(getattr(feedback, "speech", False)),
        },
        "live_resend_wait_s": options.live_resend_wait_s,
    }  # fmt: skip


def _finalise(
    collector: Collector, session: SessionWriter, summary: dict[str, Any], emit: EventSink
) -> dict[str, Any]:
    """The session's final analysis from everything it stored, stored beside the live alerts;
    the summary gains it and where the live calls differed from it. A session file that can no
    longer be written (a full disk) keeps what it holds, and the summary says so."""
    try:
        return _store_final(collector, session, summary, emit)
    except UserError as exc:
        emit(f"final analysis not stored: {exc}")
        collector.failure = collector.failure or exc
        return summary


def _store_final(
    collector: Collector, session: SessionWriter, summary: dict[str, Any], emit: EventSink
) -> dict[str, Any]:
    session.set_meta(
        final_analysis.SENSORS_KEY,
        json.dumps(
            {
                ch.stats.address: {"name": ch.stats.name, "limb": collector.lifts[id(ch)].limb}
                for ch in collector.channels
            }
        ),
    )
    session.flush()
    ended_by = summary.get("ended_by", "")
    try:
        with SessionReader(session.path) as reader:
            has_samples = reader.frame_count() > 0
            final = final_analysis.compute_final(reader) if has_samples else None
    except UserError as exc:
        emit(f"final analysis not made: {exc}")
        final = None
    if final is None:
        return summary
    final_analysis.store_final(session, final, ended_by)
    session.flush()
    rows = final_analysis.compare_alerts(summary["live_alerts"], final)
    summary["final"] = {
        "devices": [
            {"name": d.get("name"), "sets": sum(1 for s in d["sets"] if s["kind"] == "dynamic"),
             "holds": sum(1 for s in d["sets"] if s["kind"] == "hold"),
             "reps": sum(len(s["reps"]) for s in d["sets"])}
            for d in (final.get("devices") or [final])
        ],
        "alerts": [
            {k: a.get(k) for k in ("t_s", "level", "kind", "device", "set", "rep")}
            for a in final["alerts"]
        ],
        "live_alerts_agreeing": sum(1 for r in rows if r["agree"]),
        "live_alerts_differing": [r for r in rows if not r["agree"]],
    }  # fmt: skip
    differ = summary["final"]["live_alerts_differing"]
    if differ:
        emit(f"final analysis: {len(differ)} alert(s) differ from what was said live")
    return summary


@contextlib.contextmanager
def _ending_signals(collector: Collector, emit: EventSink) -> Any:
    """Ctrl-C, SIGTERM and SIGHUP end the session the same clean way as its duration."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig, name in ENDING_SIGNALS.items():

        def ending(name: str = name) -> None:
            emit(f"{name}: ending the session (finalising; this takes a few seconds)")
            collector.stop(name)

        try:
            loop.add_signal_handler(sig, ending)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _add_devices(
    collector: Collector, cfg: CollectConfig, targets: list[tuple[str, str]], transport: str,
    fleet: Any, emit: EventSink,
) -> None:  # fmt: skip
    if cfg.serial is not None:
        from tremorlift.transport.serial import SerialLink  # noqa: PLC0415

        def serial_link(port: str) -> LinkFactory:
            return lambda ch: SerialLink(port, ch)

        for name, port in targets:
            collector.add_device(name, serial_link(port))
        return
    from tremorlift.transport.ble import BleLink  # noqa: PLC0415
    from tremorlift.transport.pairing import link_options, sensor_names  # noqa: PLC0415

    backend = fleet.backend if fleet is not None else None
    named = sensor_names()  # the user's name and limb for each paired wearable

    # Pairing per connection (transport.pairing.link_options): a named, unpaired wearable pairs
    # on connect; twin links pair on demand (the twin's bonds live in its memory).
    def ble_link(name: str, address: str) -> LinkFactory:
        def make(ch: DeviceChannel) -> BleLink:
            # Per connection: a wearable paired on its first connect is known on the next.
            options = link_options(
                named=bool(cfg.devices), twin=fleet is not None, name=name, address=address,
                emit=emit,
            )  # fmt: skip
            return BleLink(address, ch, backend=backend, kind=transport, **options)

        return make

    for name, address in targets:
        user_name, limb = named.get(address.upper(), (None, None))
        collector.add_device(name, ble_link(name, address), name=user_name, limb=limb)
