"""The session collector: one session with one or more wearables on one timeline.

Each wearable is a :class:`~tremorlift.collect.channel.DeviceChannel`; the collector turns their
engines' events into the live state (``collect.live``, drawn by ``collect.dashboard``) and
delivers warn and stop alerts to the lifter at once: a buzz on the wearable that raised it, and
a tone or spoken words (``collect.feedback``). Every alert the lifter was told is kept as a
:class:`~tremorlift.collect.live.LiveAlert` with the set and rep it belongs to and whether the
live engine had every sample for it; the session's final analysis is computed from the stored
data afterwards (``store.final``) and stored beside them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from tremorlift import protocol
from tremorlift.analysis import Event
from tremorlift.collect.channel import DeviceChannel, LinkFactory, wait_either
from tremorlift.collect.feed import LIVE_RESEND_WAIT_S
from tremorlift.collect.live import LiftState, LiveAlert, LiveState
from tremorlift.errors import UserError
from tremorlift.store.session import SessionWriter

STATS_INTERVAL_S = 5.0
# A wearable without a link for this long (host seconds) is lost for good: when every wearable
# of the session is, the session ends and is finalised instead of waiting for ever.
LOST_FOR_GOOD_S = 120.0
# Alerts other than velocity loss are checked for completeness over this much signal before them.
ALERT_SPAN_S = 10.0
SCREEN_ALERTS = 50  # the latest alerts the live state carries for the screen and the page

EventSink = Callable[[str], None]
# A listener of the session's event stream (``Collector.listeners``): called in the event loop
# with one JSON-ready dict per event; it must only hand the dict on (a queue, a file line).
Listener = Callable[[dict[str, Any]], None]


@dataclass
class CollectOptions:
    duration_s: float | None = None
    exercise: str | None = None
    goal: str | None = None
    vl_threshold_pct: float | None = None
    placement: str | None = None
    alerts_enabled: bool = True
    resend: bool = True
    analyse: bool = True
    haptic: bool = True  # buzz the wearable on warn and stop alerts
    stop_policy: str | None = None  # one-more | at-limit (analysis.alerts); None: the default
    load_kg: float | None = None  # the load of the session's sets, kg
    # How long the live analysis waits for the link's lost frames to be resent before it goes
    # on without them (host seconds): longer is more often complete, shorter is sooner.
    live_resend_wait_s: float = LIVE_RESEND_WAIT_S


class Collector:
    """Runs one session with one or more wearables on one timeline."""

    def __init__(
        self,
        session: SessionWriter,
        options: CollectOptions,
        *,
        transport: str,
        emit: EventSink = lambda line: None,
        on_alert: Callable[[DeviceChannel, LiveAlert], Awaitable[None] | None] | None = None,
        feedback: Any = None,
        time_scale: float = 1.0,
    ) -> None:
        self.session = session
        self.options = options
        self.transport = transport
        self.emit_line = emit
        self.on_alert = on_alert
        self.feedback = feedback  # collect.feedback.Feedback: sound, speech, bell
        self.time_scale = time_scale  # session seconds per host second (the twin's --speed)
        self.channels: list[DeviceChannel] = []
        self.lifts: dict[int, LiftState] = {}  # id(channel) -> its live lift state
        self.live_alerts: list[LiveAlert] = []  # every alert the lifter was told, in order
        self.state = LiveState(session_path=str(session.path))
        self.stop_event = asyncio.Event()
        self.ended_by: str | None = None  # what ended the session, when not the duration
        self.failure: BaseException | None = (
            None  # an error that ended it (raised after finalising)
        )
        self._t_start = time.monotonic()
        self._alert_tasks: set[asyncio.Task[Any]] = set()
        self.summary_extra: dict[str, Any] = {}  # merged into the summary (e.g. faults injected)
        # The machine-readable event stream (collect --events, the live web page): set, rep,
        # alert, tremor and link events, each a dict with "type" (docs/events.md).
        self.listeners: list[Listener] = []
        self._link_seen: dict[int, tuple[str, bool]] = {}
        if options.goal or options.vl_threshold_pct is not None:
            from tremorlift.analysis import alerts as vl_alerts

            self.state.vl_threshold_pct = vl_alerts.threshold_pct(
                options.goal, options.vl_threshold_pct
            )

    def add_device(
        self, label: str, make_link: LinkFactory, *, name: str | None = None,
        limb: str | None = None,
    ) -> DeviceChannel:  # fmt: skip
        """A wearable to collect from; ``name`` and ``limb`` are the user's (``pair --name``)."""
        ch = DeviceChannel(self, label, make_link, self.transport, name=name)
        self.channels.append(ch)
        self.lifts[id(ch)] = LiftState(name=name or label, limb=limb)
        return ch

    def stop(self, reason: str) -> None:
        """End the session (a signal, the user): the channels stop and everything finalises."""
        if self.ended_by is None:
            self.ended_by = reason
        self.stop_event.set()

    def fail(self, exc: Exception) -> None:
        """End the session on an error (the session file cannot be written, a port went away):
        it ends as cleanly as it can, and the error is raised after that."""
        if self.failure is None:
            self.failure = exc
            self.emit(f"ending the session: {exc}")
        self.stop(f"error: {exc}")

    def emit(self, line: str) -> None:
        self.emit_line(f"{time.monotonic() - self._t_start:7.1f} s  {line}")

    def publish(self, event_type: str, ch: DeviceChannel | None, /, **data: Any) -> None:
        """One event to every listener: ``type``, ``session_s``, ``device`` (the sensor's name)
        and the event's own fields."""
        if not self.listeners:
            return
        event: dict[str, Any] = {"type": event_type, "session_s": round(self.session.host_s(), 3)}
        if ch is not None:
            event["device"] = ch.stats.name
            event["limb"] = self.lifts[id(ch)].limb
        event.update(data)
        for listener in list(self.listeners):
            listener(event)

    def state_dict(self) -> dict[str, Any]:
        """The live state now, JSON-ready: what a page that (re)connects draws first."""
        return asdict(self.snapshot())

    # ---------------------------------------------------------------- engine events
    def on_engine_event(self, ch: DeviceChannel, event: Event) -> None:
        lift = self.lifts[id(ch)]
        lift.name = ch.stats.name
        d = event.data
        name = ch.stats.name
        if event.kind == "set_start":
            lift.set_kind = str(d.get("kind", "dynamic"))
            lift.in_set = True
            lift.rep_number = 0
            lift.rep_provisional = False
            lift.best_rep_velocity_mps = None
            lift.velocity_loss_pct = None
            if lift.set_kind == "hold":
                lift.hold_number += 1
                self.emit(f"{name}: hold {lift.hold_number} started")
                self.publish("set_start", ch, t_s=event.t_s, kind="hold", hold=lift.hold_number)
            else:
                # Numbered among the sensor's lifting sets that were kept (a set the engine
                # later drops for having one rep leaves its number to the next).
                lift.set_number = lift.sets_done + 1
                self.emit(f"{name}: set {lift.set_number} started")
                self.publish("set_start", ch, t_s=event.t_s, kind="dynamic", set=lift.set_number)
        elif event.kind == "rep_provisional":
            # Rep 1 as soon as it ends, before its set is recognised: shown as such, and
            # confirmed or replaced by the set's own reps, or withdrawn.
            v = d.get("mean_concentric_velocity_mps")
            lift.rep_number, lift.rep_provisional = 1, True
            lift.last_rep_velocity_mps = lift.best_rep_velocity_mps = v
            lift.velocity_loss_pct = 0.0
            lift.last_rep_span_s = (float(d.get("start_s", event.t_s)), float(event.t_s))
            vtxt = "-" if v is None else f"{v:.2f} m/s"
            self.emit(f"{name}: rep 1? {vtxt} (a set starting, not yet recognised)")
            self.publish(
                "rep_provisional", ch, t_s=event.t_s, set=lift.sets_done + 1, rep=1,
                velocity_mps=v, zone=d.get("zone"), threshold_pct=self.state.vl_threshold_pct,
                quality=d.get("quality"),
            )  # fmt: skip
        elif event.kind == "rep_withdrawn":
            if lift.rep_provisional:
                lift.rep_number, lift.rep_provisional = 0, False
                lift.last_rep_velocity_mps = lift.best_rep_velocity_mps = None
                lift.velocity_loss_pct = None
                why = "a hold began" if d.get("reason") == "hold" else "no set followed"
                self.emit(f"{name}: rep 1? withdrawn: {why}")
                self.publish("rep_withdrawn", ch, t_s=event.t_s, reason=d.get("reason"))
        elif event.kind == "rep":
            lift.rep_provisional = False
            lift.rep_number = int(d.get("rep", lift.rep_number + 1))
            v = d.get("mean_concentric_velocity_mps")
            lift.last_rep_velocity_mps = v
            if v is not None and (
                lift.best_rep_velocity_mps is None or v > lift.best_rep_velocity_mps
            ):
                lift.best_rep_velocity_mps = v
            lift.velocity_loss_pct = d.get("velocity_loss_pct", lift.velocity_loss_pct)
            lift.last_rep_span_s = (float(d.get("start_s", event.t_s)), float(event.t_s))
            vtxt = "-" if v is None else f"{v:.2f} m/s"
            self.emit(f"{name}: set {lift.set_number} rep {lift.rep_number}: {vtxt}")
            self.publish(
                "rep", ch, t_s=event.t_s, set=lift.set_number, rep=lift.rep_number,
                velocity_mps=v, best_velocity_mps=lift.best_rep_velocity_mps,
                velocity_loss_pct=lift.velocity_loss_pct, zone=d.get("zone"),
                threshold_pct=self.state.vl_threshold_pct, quality=d.get("quality"),
            )  # fmt: skip
        elif event.kind == "set_end":
            lift.in_set = False
            if d.get("kind") == "hold":
                self.emit(f"{name}: hold {lift.hold_number} ended")
                self.publish("set_end", ch, t_s=event.t_s, kind="hold", hold=lift.hold_number)
            else:
                lift.sets_done += 1
                lift.set_number = lift.sets_done
                n_reps = len(d.get("reps", []))
                self.emit(f"{name}: set {lift.set_number} ended ({n_reps} reps)")
                self.publish(
                    "set_end", ch, t_s=event.t_s, kind="dynamic", set=lift.set_number,
                    reps=n_reps, velocity_loss_pct=d.get("velocity_loss_pct"),
                )  # fmt: skip
        elif event.kind == "tremor_episode":
            lift.tremor_rms_mps2 = d.get("rms_mps2")
            lift.tremor_peak_hz = d.get("peak_hz")
            lift.tremor_cause = d.get("cause")
            self.emit(
                f"{name}: tremor {d.get('cause', '?')} at {d.get('peak_hz', 0):.1f} Hz, "
                f"{d.get('rms_mps2', 0):.3f} m/s2"
            )
            self.publish(
                "tremor", ch, t_s=event.t_s, cause=d.get("cause"), peak_hz=d.get("peak_hz"),
                rms_mps2=d.get("rms_mps2"), start_s=d.get("start_s"), end_s=d.get("end_s"),
            )  # fmt: skip
        elif event.kind == "alert":
            self._on_alert(ch, lift, event)
            return
        self.session.add_event(event.kind, {"t_s": event.t_s, **d}, device=ch.device_id)

    def _on_alert(self, ch: DeviceChannel, lift: LiftState, event: Event) -> None:
        d = event.data
        kind = str(d.get("kind", ""))
        in_lift = lift.in_set and lift.set_kind == "dynamic"
        rep_raised = kind in ("velocity_loss", "tremor") and in_lift and lift.rep_number > 0
        if rep_raised and lift.last_rep_span_s is not None:
            span = lift.last_rep_span_s
        else:
            span = (event.t_s - ALERT_SPAN_S, event.t_s)
        complete = ch.complete_between(*span)
        message = str(d.get("message", ""))
        if not complete:
            message += " (computed with samples the link lost)"
        alert = LiveAlert(
            t_s=event.t_s, level=str(d.get("level", "info")), kind=kind, message=message,
            device=ch.stats.name, set=lift.set_number if in_lift else None,
            rep=lift.rep_number if rep_raised else None, complete=complete,
            session_s=round(self.session.host_s(), 3),
        )  # fmt: skip
        self.live_alerts.append(alert)
        where = f" set {alert.set}" if alert.set else ""
        where += f" rep {alert.rep}" if alert.rep else ""
        self.emit(f"ALERT {alert.level.upper()} {alert.kind} [{alert.device}{where}]: {message}")
        self.publish(
            "alert", ch, t_s=alert.t_s, level=alert.level, kind=alert.kind, message=message,
            set=alert.set, rep=alert.rep, complete=complete,
        )  # fmt: skip
        self._deliver(ch, alert)
        if self.on_alert is not None:
            res = self.on_alert(ch, alert)
            if asyncio.iscoroutine(res):
                task = asyncio.ensure_future(res)
                self._alert_tasks.add(task)
                task.add_done_callback(self._alert_tasks.discard)
        record = {"t_s": event.t_s, **d, "message": message, "set": alert.set, "rep": alert.rep}
        record["complete"] = complete
        self.session.add_event("alert", record, device=ch.device_id)

    def _deliver(self, ch: DeviceChannel, alert: LiveAlert) -> None:
        """warn and stop reach the lifter at once: a buzz on the wearable that raised it (sent
        from here, so its latency is measured where the command leaves), and sound or speech."""
        if alert.level not in ("warn", "stop"):
            return
        if self.options.haptic and ch.link is not None:
            pattern = protocol.BUZZ_STOP if alert.level == "stop" else protocol.BUZZ_WARN
            # Velocity-loss alerts are raised by a rep whose end is alert.t_s: time from there.
            since = ch.received_at(alert.t_s) if alert.kind == "velocity_loss" else None
            task = asyncio.ensure_future(ch.buzz(pattern, since_s=since))
            self._alert_tasks.add(task)
            task.add_done_callback(self._alert_tasks.discard)
        if self.feedback is not None:
            self.feedback.deliver(
                {"level": alert.level, "kind": alert.kind, "message": alert.message}
            )

    # ---------------------------------------------------------------- running
    def snapshot(self) -> LiveState:
        self.state.elapsed_s = time.monotonic() - self._t_start
        self.state.devices = [ch.refresh_stats() for ch in self.channels]
        self.state.lifts = [self.lifts[id(ch)] for ch in self.channels]
        self.state.alerts = self.live_alerts[-SCREEN_ALERTS:]
        for ch, stats in zip(self.channels, self.state.devices, strict=True):
            seen = (stats.state, stats.live_degraded)
            if self._link_seen.get(id(ch)) != seen:
                self._link_seen[id(ch)] = seen
                self.publish(
                    "link", ch, state=stats.state, degraded=stats.live_degraded,
                    samples_lost=stats.samples_lost, battery_pct=stats.battery_pct,
                )  # fmt: skip
        return self.state

    def _all_lost_for_good(self) -> bool:
        now = time.monotonic()
        return bool(self.channels) and all(
            ch.unlinked_since is not None and now - ch.unlinked_since >= LOST_FOR_GOOD_S
            for ch in self.channels
        )

    async def run(self, on_tick: Callable[[LiveState], None] | None = None) -> dict[str, Any]:
        """Run until ``options.duration_s`` passes or ``stop_event`` is set; return the summary."""
        if not self.channels:
            raise UserError("no wearable to collect from")
        self.publish(
            "session_start", None, session=str(self.session.path),
            devices=[ch.stats.name for ch in self.channels],
            threshold_pct=self.state.vl_threshold_pct,
        )  # fmt: skip
        tasks = [
            asyncio.create_task(ch.run(self.stop_event), name=f"device {ch.label}")
            for ch in self.channels
        ]
        deadline = (
            None if self.options.duration_s is None else self._t_start + self.options.duration_s
        )
        next_stats = time.monotonic() + STATS_INTERVAL_S
        try:
            while not self.stop_event.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    self.ended_by = self.ended_by or "duration"
                    break
                if all(t.done() for t in tasks):
                    break
                if self._all_lost_for_good():
                    self.emit(f"no wearable for {LOST_FOR_GOOD_S:.0f} s: ending the session")
                    self.ended_by = self.ended_by or "wearable lost"
                    break
                if on_tick is not None:
                    on_tick(self.snapshot())
                if time.monotonic() >= next_stats:
                    next_stats += STATS_INTERVAL_S
                    try:
                        for ch in self.channels:
                            self.session.add_stats(ch.summary(), device=ch.device_id)
                        self.session.checkpoint()
                    except UserError as exc:  # the session file cannot be written
                        self.fail(exc)
                        break
                await wait_either(self.stop_event, 0.25)
        finally:
            self.stop_event.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                if not isinstance(r, Exception):
                    raise r
                # A failed port or a wearable speaking another protocol: the session ends, is
                # finalised with what it holds, and the error is raised after that.
                self.failure = self.failure or r
                self.ended_by = self.ended_by or f"error: {r}"
        if self._alert_tasks:
            await asyncio.gather(*self._alert_tasks, return_exceptions=True)
        return self.finish()

    def finish(self) -> dict[str, Any]:
        """The live engines' last events and results, stored; the live summary returned (the
        alerts told live are stored as they were raised, as ``alert`` events)."""
        for ch in self.channels:
            r = ch.finish_analysis()
            try:
                if r is not None:
                    result = dict(r, name=ch.stats.name)
                    self.session.add_analysis("live", result, device=ch.device_id)
                self.session.add_stats(ch.summary(), device=ch.device_id)
            except UserError as exc:  # a full disk: the summary still says what happened
                self.failure = self.failure or exc
        return self.summary()

    def summary(self) -> dict[str, Any]:
        devices = [ch.summary() for ch in self.channels]
        return {
            "transport": self.transport,
            "devices": devices,
            "samples_expected": sum(d["samples_expected"] for d in devices),
            "samples_received": sum(d["samples_received"] for d in devices),
            "samples_lost": sum(d["samples_lost"] for d in devices),
            "frames_received": sum(d["frames_received"] for d in devices),
            "frames_corrupt": sum(d["frames_corrupt"] for d in devices),
            "reconnects": sum(d["reconnects"] for d in devices),
            "duration_s": round(time.monotonic() - self._t_start, 3),
            "session": str(self.session.path),
            "ended_by": self.ended_by or "all wearables stopped",
            "recovery": _recovery(devices),
            "live_alerts": [
                {
                    "t_s": a.t_s,
                    "level": a.level,
                    "kind": a.kind,
                    "device": a.device,
                    "set": a.set,
                    "rep": a.rep,
                    "complete": a.complete,
                    "message": a.message,
                }  # fmt: skip
                for a in self.live_alerts
            ],
            **self.summary_extra,
        }


def _recovery(devices: list[dict[str, Any]]) -> dict[str, Any]:
    """What the link lost and what the collector got back, over every wearable."""

    def total(key: str) -> int:
        return sum(int(d.get(key, 0)) for d in devices)

    def counter(key: str) -> int:
        return sum(int(d.get("device_counters", {}).get(key, 0)) for d in devices)

    lost = total("samples_lost")
    on_device = total("samples_lost_on_device")
    return {
        "disconnects": total("disconnects"),
        "reconnects": total("reconnects"),
        "reboots_seen": total("reboots"),
        "resend_requests": total("resend_requests"),
        "frames_resent": total("frames_resent"),
        "samples_recovered_by_resend": total("samples_resent"),
        "duplicates": total("duplicates"),
        "frames_corrupt_dropped": total("frames_corrupt"),
        "samples_lost": lost,
        "samples_lost_on_device": on_device,  # FIFO overflow / IMU re-init: no resend can help
        "samples_lost_in_transit": lost - on_device,
        "live_holes_given_up": total("live_holes_given_up"),
        "i2c_errors": counter("i2c_errors"),
        "imu_reinits": counter("imu_reinits"),
        "fifo_overflows": counter("fifo_overflows"),
        "lost_ranges": [[i] + r for i, d in enumerate(devices) for r in d.get("lost_ranges", [])],
    }
