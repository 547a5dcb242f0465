"""The collector: connects to wearables, records every frame, rebuilds time, analyses live.

One ``DeviceChannel`` per wearable owns its link across reconnects. Link callbacks only enqueue
(``on_message``); a consumer task decodes, accounts for every sample index
(``timebase.StreamTracker``), stores frames exactly as received (``session.SessionWriter``),
asks the device to resend missing frames from its ring, and feeds the analysis engine. The
queue between callback and consumer is bounded: when it is full the newest message is dropped
and counted, and the resend path recovers it, so a stalled consumer never grows memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tremorlift import protocol
from tremorlift.analysis import Engine, Event, compare_limbs
from tremorlift.collect.live import DeviceStats, LiveAlert, LiveState
from tremorlift.errors import UserError
from tremorlift.store.session import SessionWriter
from tremorlift.timebase import StreamTracker
from tremorlift.transport import Link

COMMAND_TIMEOUT_S = 3.0
RESEND_INTERVAL_S = 0.25  # how often missing frames are looked for
RESEND_RETRY_S = 0.6  # a range asked for and still missing is asked for again after this (a
# lost answer or resent frame must be asked for again well before the ring lets the frame go)
RESEND_TIMEOUT_S = 0.3  # RESEND is answered at once; a lost answer is not waited for long
FINAL_RESEND_S = 2.0  # at the end, how long missing frames are asked for before STOP
QUEUE_MAX_MESSAGES = 50_000  # ~8 minutes of frames of one device at 1 kHz
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 4.0)  # between reconnect attempts, then the last one repeats
STATS_INTERVAL_S = 5.0
BATTERY_FULL_MV = 4150
BATTERY_EMPTY_MV = 3300

LinkFactory = Callable[["DeviceChannel"], Link]
EventSink = Callable[[str], None]


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


class CommandError(Exception):
    """A command the device answered with an error result, or did not answer."""


def battery_pct(mv: int) -> int:
    frac = (mv - BATTERY_EMPTY_MV) / (BATTERY_FULL_MV - BATTERY_EMPTY_MV)
    return int(round(100 * min(1.0, max(0.0, frac))))


class DeviceChannel:
    """Everything about one wearable: link, loss accounting, recording, live analysis."""

    def __init__(
        self,
        collector: Collector,
        label: str,
        make_link: LinkFactory,
        transport: str,
    ) -> None:
        self.collector = collector
        self.label = label
        self._make_link = make_link
        self.link: Link | None = None
        self.stats = DeviceStats(name=label, address=label, transport=transport)
        self.tracker = StreamTracker()
        self.info: protocol.DeviceInfo | None = None
        self.device_id: int | None = None
        self.engine: Engine | None = None
        self.result: dict[str, Any] | None = None
        self._queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue(QUEUE_MAX_MESSAGES)
        self.queue_overflows = 0
        self._lost = asyncio.Event()
        self._pending: dict[tuple[int, int], asyncio.Future[protocol.Response]] = {}
        self._tokens = itertools.cycle(range(1, 256))
        self._resend_asked: dict[tuple[int, int], float] = {}
        self._ring_oldest = (-1, 0)  # (boot, oldest seq the ring holds) from NOT_AVAILABLE
        self.resend_requests = 0
        self.frames_corrupt = 0
        self.samples_resent = 0  # samples that first arrived in a RESENT frame: recovered
        self._corrupt_closed_links = 0  # frames a closed link's own framing dropped (serial CRC)
        self.last_status: protocol.Status | None = None
        self._ever_connected = False
        self.want_odr_hz: int | None = None  # CONFIGURE to this rate before the first START
        # Live analysis feed: contiguous samples by index, converted to SI on the way.
        self._feed_end_index: int | None = None
        self._feed_boot = -1
        self._seg_t0_s = 0.0
        self._seg_index0 = 0
        self._last_t_s = -np.inf
        self._pending_t: list[np.ndarray] = []
        self._pending_raw: list[np.ndarray] = []
        self.engine_t0_s: float | None = None  # feed time of the engine's t = 0
        self.alert_to_buzz_ms: list[float] = []
        # (first feed time, last feed time, session time received) of recent frames fed, to
        # find when the collector got the sample an alert refers to (feed time is device time).
        self._fed_frames: collections.deque[tuple[float, float, float]] = collections.deque(
            maxlen=4000
        )

    # ---------------------------------------------------------------- link callbacks
    def on_message(self, message: bytes, host_time_s: float) -> None:
        try:
            self._queue.put_nowait((message, host_time_s))
        except asyncio.QueueFull:
            self.queue_overflows += 1  # the frame's seq shows up missing and is resent

    def on_disconnect(self, reason: str) -> None:
        self._lost.set()

    # ---------------------------------------------------------------- commands
    async def command(
        self, command: bytes, timeout_s: float = COMMAND_TIMEOUT_S
    ) -> protocol.Response:
        """Send a command and wait for its RESPONSE (matched by opcode and token)."""
        link = self.link
        if link is None:
            raise CommandError(f"{self.label}: not connected")
        opcode = command[0]
        token = next(self._tokens)
        command = bytes([opcode, token]) + command[2:]
        fut: asyncio.Future[protocol.Response] = asyncio.get_running_loop().create_future()
        self._pending[(opcode, token)] = fut
        try:
            await link.send_command(command)
            return await asyncio.wait_for(fut, timeout_s)
        except TimeoutError as exc:
            raise CommandError(
                f"{self.label}: no answer to {protocol.OPCODE_NAMES.get(opcode, opcode)}"
            ) from exc
        except ConnectionError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            self._pending.pop((opcode, token), None)

    async def checked(self, command: bytes) -> protocol.Response:
        resp = await self.command(command)
        if not resp.ok:
            name = protocol.OPCODE_NAMES.get(resp.opcode, str(resp.opcode))
            raise CommandError(
                f"{self.label}: {name} refused: {protocol.RESULT_NAMES.get(resp.result, resp.result)}"
            )
        return resp

    def received_at(self, engine_t_s: float) -> float | None:
        """Session time at which the collector received the sample at engine time ``engine_t_s``."""
        if self.engine_t0_s is None:
            return None
        t = self.engine_t0_s + engine_t_s
        for first, last, host_s in reversed(self._fed_frames):
            if first - 1e-9 <= t <= last + 1e-9:
                return host_s
            if last < t:
                return None
        return None

    async def buzz(
        self, pattern: int, intensity_pct: int = 100, *, since_s: float | None = None
    ) -> None:
        """Haptic pattern on the wearable (best effort: a lost link must not stop the set).

        ``since_s`` is the session time at which the collector received the sample that ended
        the triggering rep: the time from then until the command leaves the collector is kept
        in ``alert_to_buzz_ms`` (the radio's own latency, measured by ``make bench``, comes on
        top of it).
        """
        if since_s is not None:
            elapsed_s = (self.collector.session.host_s() - since_s) / self.collector.time_scale
            self.alert_to_buzz_ms.append(1000.0 * elapsed_s)
        try:
            await self.checked(protocol.buzz(pattern, intensity_pct))
        except CommandError as exc:
            self.collector.emit(f"{self.label}: buzz not delivered: {exc}")

    # ---------------------------------------------------------------- connection
    async def run(self, stop: asyncio.Event) -> None:
        """Connect, stream, and reconnect with backoff until ``stop`` is set."""
        consumer = asyncio.create_task(self._consume(), name=f"consume {self.label}")
        resender = asyncio.create_task(self._resend_loop(stop), name=f"resend {self.label}")
        attempt = 0
        try:
            while not stop.is_set():
                self._lost.clear()
                self.link = self._make_link(self)
                try:
                    await self.link.open()
                    await self._handshake()
                except (ConnectionError, CommandError, protocol.ProtocolError) as exc:
                    await self._drop_link()
                    self.stats.state = "reconnecting"
                    self.collector.emit(f"{self.label}: {exc}")
                    delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                    attempt += 1
                    await _wait_either(stop, delay)
                    continue
                attempt = 0
                self.stats.state = "streaming"
                self.collector.emit(
                    f"{self.label}: streaming at {self.info.odr_hz if self.info else '?'} Hz"
                )
                stop_wait = asyncio.create_task(stop.wait())
                lost_wait = asyncio.create_task(self._lost.wait())
                await asyncio.wait({stop_wait, lost_wait}, return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                lost_wait.cancel()
                if self._lost.is_set() and not stop.is_set():
                    self.stats.disconnects += 1
                    self.stats.state = "reconnecting"
                    self.collector.emit(f"{self.label}: link lost; reconnecting")
                    self._record_event("disconnect", {})
                    await self._drop_link()
            if self.link is not None and not self._lost.is_set():
                await self._final_resend()
                try:
                    await self.checked(protocol.stop())
                except CommandError:
                    pass
                await self._drain_briefly()
        finally:
            await self._drop_link()
            self.stats.state = "stopped"
            resender.cancel()
            await self._queue.put((b"", 0.0))  # wake the consumer so it can finish
            await asyncio.gather(resender, return_exceptions=True)
            await consumer
            self._flush_feed()

    async def _drop_link(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            await link.close()
            self._corrupt_closed_links += getattr(link, "frames_corrupt", 0)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(CommandError(f"{self.label}: link closed"))
        self._pending.clear()

    async def _drain_briefly(self) -> None:
        for _ in range(20):
            if self._queue.empty():
                return
            await asyncio.sleep(0.01)

    async def _handshake(self) -> None:
        assert self.link is not None
        raw = await self.link.read_info()
        if raw is None:
            resp = await self.checked(protocol.get_info())
            if not isinstance(resp.detail, protocol.DeviceInfo):
                raise CommandError(f"{self.label}: GET_INFO answered without INFO")
            raw = resp.payload
        try:
            info = protocol.decode_info(raw)
        except protocol.ProtocolError as exc:
            if exc.kind == "bad_version":  # retrying will not help: say so and give up
                raise UserError(
                    f"{self.label}: {exc}; this collector speaks protocol {protocol.VERSION}"
                ) from exc
            raise
        # A wearable that rebooted has forgotten its configuration (and is not streaming): set
        # the rate again, as on the first connection.
        fresh = not self._ever_connected or (
            self.tracker.boot_id is not None and info.boot_id != self.tracker.boot_id
        )
        if self.want_odr_hz is not None and info.odr_hz != self.want_odr_hz and fresh:
            await self.command(protocol.stop())
            resp = await self.checked(
                protocol.configure(self.want_odr_hz, info.accel_range_g, info.gyro_range_dps, 0)
            )
            if not isinstance(resp.detail, protocol.DeviceInfo):
                raise CommandError(f"{self.label}: CONFIGURE answered without INFO")
            raw = resp.payload
            info = resp.detail
        rebooted = self.tracker.observe_boot_id(info.boot_id)
        self.tracker.set_nominal_rate_hz(info.odr_hz)
        session = self.collector.session
        if self.device_id is None:
            self.device_id = session.add_device(
                self.link.address, info.name, self.collector.options.placement
            )
            self.stats.name = info.name or self.label
            self.stats.address = self.link.address
        session.add_info(self.device_id, raw, boot=self.tracker.boot)
        self.info = info
        self.stats.att_mtu = info.att_mtu
        if self.engine is None and self.collector.options.analyse:
            o = self.collector.options
            self.engine = Engine(
                float(info.odr_hz), exercise=o.exercise, goal=o.goal,
                vl_threshold_pct=o.vl_threshold_pct, placement=o.placement,
                alerts_enabled=o.alerts_enabled,
            )  # fmt: skip
        if self._ever_connected:
            self.stats.reconnects += 1
            self._record_event("reconnect", {"rebooted": rebooted})
        self._ever_connected = True
        await self.checked(protocol.start())

    # ---------------------------------------------------------------- consumer
    async def _consume(self) -> None:
        while True:
            message, t_mono = await self._queue.get()
            if not message:
                if self.link is None and self.stats.state == "stopped":
                    return
                continue
            self._handle(message, t_mono)
            # Drain what else is waiting, then feed the analysis once for the lot.
            while not self._queue.empty():
                message, t_mono = self._queue.get_nowait()
                if not message:
                    self._flush_feed()
                    return
                self._handle(message, t_mono)
            self._flush_feed()

    def _host_s(self, t_mono: float) -> float:
        ago_s = (time.monotonic() - t_mono) * self.collector.time_scale
        return self.collector.session.host_s() - ago_s

    def _handle(self, message: bytes, t_mono: float) -> None:
        kind = message[1] if len(message) >= 2 else -1
        try:
            if kind == protocol.MSG_SAMPLES:
                self._on_samples(message, self._host_s(t_mono))
            elif kind == protocol.MSG_RESPONSE:
                resp = protocol.decode_response(message)
                fut = self._pending.get((resp.opcode, resp.token))
                if fut is not None and not fut.done():
                    fut.set_result(resp)
            elif kind == protocol.MSG_STATUS:
                self._on_status(message, self._host_s(t_mono))
            else:
                raise protocol.ProtocolError("bad_type", f"unexpected message type {kind}")
        except protocol.ProtocolError:
            self.frames_corrupt += 1
            self.stats.frames_corrupt = self.frames_corrupt

    def _on_status(self, message: bytes, host_s: float) -> None:
        assert self.device_id is not None or True
        status = protocol.decode_status(message)
        self.last_status = status
        if self.tracker.observe_status(status):
            self.collector.emit(f"{self.label}: the wearable rebooted; new segment")
            if not status.streaming and self.stats.state == "streaming":
                # The link survived the reset (serial): handshake again to restart the stream.
                self._lost.set()
        if self.device_id is not None:
            self.collector.session.add_status(
                self.device_id, message, boot=self.tracker.boot, host_s=host_s
            )
        if status.battery_mv:
            self.stats.battery_mv = status.battery_mv
            self.stats.battery_pct = battery_pct(status.battery_mv)
        self.stats.notify_backoffs = status.notify_backoffs
        self.stats.fifo_overflows = status.fifo_overflows

    def _on_samples(self, message: bytes, host_s: float) -> None:
        frame = protocol.decode_samples(message)
        outcome = self.tracker.add(frame, host_s)
        if outcome.kind == "duplicate":
            self.stats.duplicates = self.tracker.duplicates
            return
        if outcome.new_boot:
            self.collector.emit(f"{self.label}: sample index restarted: the wearable rebooted")
            self._record_event("reboot", {"boot": outcome.boot})
        if self.device_id is not None:
            self.collector.session.add_frame(
                self.device_id, message, boot=outcome.boot, host_s=host_s
            )
        if frame.resent:
            self.stats.frames_resent += 1
            self.samples_resent += frame.n_samples
        self._queue_feed(frame, outcome.boot, host_s)

    # ---------------------------------------------------------------- live analysis
    def _queue_feed(self, frame: protocol.SamplesFrame, boot: int, host_s: float) -> None:
        """Queue in-order samples for the engine; resent frames that arrive late are recorded
        but not fed (the live engine has moved on; the offline pass at the end sees them)."""
        if self.engine is None or self.info is None:
            return
        rate = float(self.info.odr_hz)
        new_segment = boot != self._feed_boot or frame.stream_start
        if self._feed_end_index is not None and not new_segment:
            if frame.first_sample_index < self._feed_end_index:
                return
        if self._feed_end_index is None or new_segment:
            # A new time segment: anchor it at this frame's host time, after the last sample fed.
            n = frame.n_samples
            self._seg_t0_s = max(host_s - (n - 1) / rate, self._last_t_s + 1.0 / rate)
            self._seg_index0 = frame.first_sample_index
            self._feed_boot = boot
        idx = np.arange(frame.first_sample_index, frame.end_sample_index)
        t = self._seg_t0_s + (idx - self._seg_index0) / rate
        self._pending_t.append(t)
        self._pending_raw.append(frame.samples_raw)
        self._fed_frames.append((float(t[0]), float(t[-1]), host_s))
        self._feed_end_index = frame.end_sample_index
        self._last_t_s = float(t[-1])

    def _flush_feed(self) -> None:
        if not self._pending_t or self.engine is None or self.info is None:
            return
        t = np.concatenate(self._pending_t)
        raw = np.concatenate(self._pending_raw)
        if self.engine_t0_s is None:
            self.engine_t0_s = float(t[0])
        self._pending_t.clear()
        self._pending_raw.clear()
        accel, gyro = protocol.raw_to_si(raw, self.info)
        for event in self.engine.feed(t, accel, gyro):
            self.collector.on_engine_event(self, event)

    def finish_analysis(self) -> dict[str, Any] | None:
        self._flush_feed()
        if self.engine is None:
            return None
        for event in self.engine.finish():
            self.collector.on_engine_event(self, event)
        self.result = self.engine.result()
        return self.result

    # ---------------------------------------------------------------- resend
    async def _resend_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(RESEND_INTERVAL_S)
            if (
                not self.collector.options.resend
                or self.link is None
                or self.stats.state != "streaming"
            ):
                continue
            now = time.monotonic()
            for first_seq, count in self._resendable(self.tracker.missing_seq_ranges()):
                key = (first_seq, count)
                if now - self._resend_asked.get(key, -1e9) < RESEND_RETRY_S:
                    continue
                self._resend_asked[key] = now
                for start in range(first_seq, first_seq + count, protocol.RESEND_MAX_COUNT):
                    n = min(protocol.RESEND_MAX_COUNT, first_seq + count - start)
                    try:
                        # A short timeout: a lost answer must not hold up the ranges behind it
                        # while they age out of the ring (this range is asked again later).
                        resp = await self.command(protocol.resend(start, n), RESEND_TIMEOUT_S)
                    except CommandError:
                        if self.link is None:
                            break
                        continue
                    self.resend_requests += 1
                    if resp.result == protocol.RES_BUSY:
                        self._resend_asked.pop(key, None)  # ask again on the next round
                        break
                    if resp.result == protocol.RES_NOT_AVAILABLE:
                        self._record_event("resend_unavailable", {"first_seq": start, "count": n})
                        if isinstance(resp.detail, protocol.ResendUnavailable):
                            self._ring_oldest = (self.tracker.boot, resp.detail.oldest_seq)
            if len(self._resend_asked) > 10_000:  # bounded: forget the oldest requests
                self._resend_asked = dict(list(self._resend_asked.items())[-1000:])

    def _resendable(self, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The part of ``ranges`` that may still be in the wearable's ring: frames below the
        oldest it reported holding (NOT_AVAILABLE) are gone for good and not asked again."""
        boot, oldest = self._ring_oldest
        if boot != self.tracker.boot:
            return ranges
        out = []
        for first, count in ranges:
            if first + count > oldest:
                start = max(first, oldest)
                out.append((start, first + count - start))
        return out

    async def _final_resend(self) -> None:
        """Before STOP: ask once more for every frame still missing and wait a little for them,
        so frames lost in the last moments are not left as holes the resend loop never saw."""
        if not self.collector.options.resend:
            return
        deadline = time.monotonic() + FINAL_RESEND_S
        gone: set[tuple[int, int]] = set()  # answered NOT_AVAILABLE: out of the ring for good
        while time.monotonic() < deadline and not self._lost.is_set():
            missing = [
                r for r in self._resendable(self.tracker.missing_seq_ranges()) if r not in gone
            ]
            if not missing:
                return
            for first_seq, count in missing:
                for start in range(first_seq, first_seq + count, protocol.RESEND_MAX_COUNT):
                    n = min(protocol.RESEND_MAX_COUNT, first_seq + count - start)
                    try:
                        resp = await self.command(protocol.resend(start, n), RESEND_TIMEOUT_S)
                    except CommandError:
                        continue
                    self.resend_requests += 1
                    if resp.result == protocol.RES_NOT_AVAILABLE:
                        gone.add((first_seq, count))
            await asyncio.sleep(RESEND_INTERVAL_S)

    # ---------------------------------------------------------------- bookkeeping
    def _record_event(self, kind: str, data: dict[str, Any]) -> None:
        self.collector.session.add_event(kind, data, device=self.device_id)

    def refresh_stats(self) -> DeviceStats:
        s = self.stats
        t = self.tracker
        s.samples_expected = t.samples_expected
        s.samples_received = t.samples_received
        s.samples_lost = t.samples_lost
        s.samples_lost_on_device = t.samples_lost_on_device
        s.frames_received = t.frames_received
        s.duplicates = t.duplicates
        s.frames_corrupt = (
            self.frames_corrupt
            + self._corrupt_closed_links
            + getattr(self.link, "frames_corrupt", 0)
        )
        if self.info is not None and t.boot >= 0:
            segs = t.segments()
            clock = t.clock(t.boot, segs[-1].end_seq - 1) if segs else None
            s.rate_hz = clock.device_rate_hz if clock is not None else float(self.info.odr_hz)
        return s

    def summary(self) -> dict[str, Any]:
        s = self.refresh_stats()
        d = asdict(s)
        d.update(
            reboots=self.tracker.reboots,
            stream_starts=self.tracker.stream_starts,
            resend_requests=self.resend_requests,
            alert_to_buzz_ms=[round(x, 1) for x in self.alert_to_buzz_ms],
            host_queue_overflows=self.queue_overflows,
            lost_ranges=[list(r) for r in self.tracker.lost_ranges()],
            device_gap_ranges=[list(r) for r in self.tracker.device_gap_ranges()],
            samples_resent=self.samples_resent,
        )
        st = self.last_status
        if st is not None:  # the wearable's own counters (since its last boot)
            d["device_counters"] = {
                "i2c_errors": st.i2c_errors, "imu_reinits": st.imu_reinits,
                "fifo_overflows": st.fifo_overflows, "frames_dropped": st.frames_dropped,
                "notify_backoffs": st.notify_backoffs, "flags": st.flag_names,
            }  # fmt: skip
        return d


async def _wait_either(event: asyncio.Event, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError:
        pass


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
        self.feedback = feedback  # tremorlift.collect.feedback.Feedback: sound, speech, bell
        self.time_scale = time_scale  # session seconds per host second (the twin's --speed)
        self.channels: list[DeviceChannel] = []
        self.state = LiveState(session_path=str(session.path))
        self.stop_event = asyncio.Event()
        self._t_start = time.monotonic()
        self._alert_tasks: set[asyncio.Task[Any]] = set()
        self.summary_extra: dict[str, Any] = {}  # merged into the summary (e.g. faults injected)
        if options.goal or options.vl_threshold_pct is not None:
            from tremorlift.analysis import alerts as vl_alerts

            self.state.vl_threshold_pct = vl_alerts.threshold_pct(
                options.goal, options.vl_threshold_pct
            )

    def add_device(self, label: str, make_link: LinkFactory) -> DeviceChannel:
        ch = DeviceChannel(self, label, make_link, self.transport)
        self.channels.append(ch)
        return ch

    def emit(self, line: str) -> None:
        self.emit_line(f"{time.monotonic() - self._t_start:7.1f} s  {line}")

    # ---------------------------------------------------------------- engine events
    def on_engine_event(self, ch: DeviceChannel, event: Event) -> None:
        st = self.state
        d = event.data
        if event.kind == "set_start":
            st.set_number += 1
            st.set_kind = str(d.get("kind", "dynamic"))
            st.rep_number = 0
            st.best_rep_velocity_mps = None
            st.velocity_loss_pct = None
            self.emit(f"{ch.stats.name}: set {st.set_number} ({st.set_kind}) started")
        elif event.kind == "rep":
            st.rep_number = int(d.get("rep", st.rep_number + 1))
            v = d.get("mean_concentric_velocity_mps")
            st.last_rep_velocity_mps = v
            if v is not None and (st.best_rep_velocity_mps is None or v > st.best_rep_velocity_mps):
                st.best_rep_velocity_mps = v
            st.velocity_loss_pct = d.get("velocity_loss_pct", st.velocity_loss_pct)
            vtxt = "-" if v is None else f"{v:.2f} m/s"
            self.emit(f"{ch.stats.name}: rep {st.rep_number}: {vtxt}")
        elif event.kind == "set_end":
            self.emit(f"{ch.stats.name}: set {st.set_number} ended")
        elif event.kind == "tremor_episode":
            st.tremor_rms_mps2 = d.get("rms_mps2")
            st.tremor_peak_hz = d.get("peak_hz")
            st.tremor_cause = d.get("cause")
            self.emit(
                f"{ch.stats.name}: tremor {d.get('cause', '?')} at {d.get('peak_hz', 0):.1f} Hz, "
                f"{d.get('rms_mps2', 0):.3f} m/s2"
            )
        elif event.kind == "tremor":
            st.tremor_rms_mps2 = d.get("rms_mps2", st.tremor_rms_mps2)
            st.tremor_peak_hz = d.get("peak_hz", st.tremor_peak_hz)
        elif event.kind == "alert":
            alert = LiveAlert(
                t_s=event.t_s, level=str(d.get("level", "info")), kind=str(d.get("kind", "")),
                message=str(d.get("message", "")), device=ch.stats.name,
            )  # fmt: skip
            st.alerts.append(alert)
            del st.alerts[:-50]
            self.emit(f"ALERT {alert.level.upper()} {alert.kind} [{alert.device}]: {alert.message}")
            self._deliver(ch, alert)
            if self.on_alert is not None:
                res = self.on_alert(ch, alert)
                if asyncio.iscoroutine(res):
                    task = asyncio.ensure_future(res)
                    self._alert_tasks.add(task)
                    task.add_done_callback(self._alert_tasks.discard)
        self.session.add_event(event.kind, {"t_s": event.t_s, **d}, device=ch.device_id)

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
        return self.state

    async def run(self, on_tick: Callable[[LiveState], None] | None = None) -> dict[str, Any]:
        """Run until ``options.duration_s`` passes or ``stop_event`` is set; return the summary."""
        if not self.channels:
            raise UserError("no wearable to collect from")
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
                    break
                if all(t.done() for t in tasks):
                    break
                if on_tick is not None:
                    on_tick(self.snapshot())
                if time.monotonic() >= next_stats:
                    next_stats += STATS_INTERVAL_S
                    for ch in self.channels:
                        self.session.add_stats(ch.summary(), device=ch.device_id)
                await _wait_either(self.stop_event, 0.25)
        finally:
            self.stop_event.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                raise r
        if self._alert_tasks:
            await asyncio.gather(*self._alert_tasks, return_exceptions=True)
        return self.finish()

    def finish(self) -> dict[str, Any]:
        results = []
        for ch in self.channels:
            r = ch.finish_analysis()
            if r is not None:
                r = dict(r, name=ch.stats.name)
                results.append(r)
                self.session.add_analysis("live", r, device=ch.device_id)
        if len(results) == 2:
            rows, asym_alerts = compare_limbs(
                results[0]["name"], results[0], results[1]["name"], results[1]
            )
            self.session.add_analysis("asymmetry", {"rows": rows, "alerts": asym_alerts})
        summary = self.summary()
        for ch in self.channels:
            self.session.add_stats(ch.summary(), device=ch.device_id)
        self.session.add_stats({"summary": summary})
        return summary

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
            "recovery": _recovery(devices),
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
        "i2c_errors": counter("i2c_errors"),
        "imu_reinits": counter("imu_reinits"),
        "fifo_overflows": counter("fifo_overflows"),
        "lost_ranges": [[i] + r for i, d in enumerate(devices) for r in d.get("lost_ranges", [])],
    }


# ==================================================================== the collect command
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
    # BLE without `devices`: connect only to wearables in the paired-devices file
    # (tremorlift.transport.pairing). The CLI sets it unless --any is given.
    paired_only: bool = False


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


Hook = Callable[["Collector", Any], Awaitable[None]]


async def collect(
    cfg: CollectConfig, emit: EventSink, ui: Any = None, hook: Hook | None = None
) -> dict[str, Any]:
    """Run ``tremorlift collect``: returns the summary (also written to ``cfg.summary_json``).

    ``hook(collector, fleet)`` runs as a task beside the session (``fleet`` is the twin or
    None): fault injection and tests use it to act on the link mid-session.
    """
    from tremorlift import paths  # noqa: PLC0415

    options = cfg.options or CollectOptions()
    fleet = None
    if cfg.simulate is not None:
        from tremorlift.twin.wearable import TwinFleet  # noqa: PLC0415 - bumble only for the twin

        fleet = TwinFleet(
            cfg.simulate, seed=cfg.seed, speed=cfg.speed, imu=cfg.imu,
            transport="serial" if cfg.serial is not None else "ble", odr_hz=cfg.odr_hz or 200,
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
    try:
        collector = Collector(
            session,
            options,
            transport=transport,
            emit=emit,
            on_alert=getattr(ui, "on_alert", None),
            feedback=cfg.feedback,
            time_scale=scale,
        )
        if cfg.serial is not None:
            from tremorlift.transport.serial import SerialLink  # noqa: PLC0415

            for name, port in targets:
                collector.add_device(name, lambda ch, port=port: SerialLink(port, ch))
        else:
            from tremorlift.transport.ble import BleLink  # noqa: PLC0415
            from tremorlift.transport.pairing import link_options  # noqa: PLC0415

            # Pairing per connection (tremorlift.transport.pairing.link_options): a named, unpaired wearable
            # pairs on connect; twin links pair on demand (the twin's bonds live in its memory).
            for name, address in targets:
                collector.add_device(
                    name,
                    lambda ch, address=address, name=name: BleLink(
                        address,
                        ch,
                        backend=backend,
                        kind=transport,
                        **link_options(
                            named=bool(cfg.devices),
                            twin=fleet is not None,
                            name=name,
                            address=address,
                            emit=emit,
                        ),
                    ),  # fmt: skip
                )
        if cfg.odr_hz is not None:
            for ch in collector.channels:
                ch.want_odr_hz = cfg.odr_hz
        on_tick = ui.update if ui is not None else None
        hook_task = asyncio.create_task(hook(collector, fleet)) if hook is not None else None
        try:
            summary = await collector.run(on_tick)
        finally:
            if hook_task is not None:
                hook_task.cancel()
                await asyncio.gather(hook_task, return_exceptions=True)
    finally:
        session.close()
        if fleet is not None:
            await fleet.close()
    if cfg.summary_json:
        _write_json_atomic(cfg.summary_json, summary)
    return summary


def _write_json_atomic(path: str, data: dict[str, Any]) -> None:
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415
    import tempfile  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".summary-", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
