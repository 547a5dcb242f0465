"""One wearable's channel: its link across reconnects, commands, recording and live feed.

Link callbacks only enqueue (``on_message``); a consumer task decodes, accounts for every sample
index (``timebase.StreamTracker``), stores frames exactly as received (``store.session``), has
missing frames resent (``collect.resend``) and feeds the analysis engine in sequence order
(``collect.feed``). The queue between callback and consumer is bounded: when it is full the
newest message is dropped and counted, and the resend path recovers it, so a stalled consumer
never grows memory.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from tremorlift import protocol
from tremorlift.analysis import Engine
from tremorlift.analysis.contract import EngineResult
from tremorlift.collect.feed import LiveFeed
from tremorlift.collect.live import DeviceStats
from tremorlift.collect.resend import CommandError, Resender
from tremorlift.errors import UserError
from tremorlift.timebase import StreamTracker
from tremorlift.transport import Link

if TYPE_CHECKING:
    from tremorlift.collect.collector import Collector

COMMAND_TIMEOUT_S = 3.0
REPEAT_AFTER_S = 0.4  # a repeatable command with no answer by then is sent again
QUEUE_MAX_MESSAGES = 50_000  # ~8 minutes of frames of one device at 1 kHz
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 4.0)  # between reconnect attempts, then the last one repeats

LinkFactory = Callable[["DeviceChannel"], Link]


async def wait_either(event: asyncio.Event, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError:
        pass


class DeviceChannel:
    """Everything about one wearable: link, loss accounting, recording, live analysis."""

    def __init__(
        self,
        collector: Collector,
        label: str,
        make_link: LinkFactory,
        transport: str,
        *,
        name: str | None = None,
    ) -> None:
        self.collector = collector
        self.label = label
        self.user_name = name  # the name the user gave the wearable (`pair --name`), if any
        # Monotonic time since which there has been no link (None while linked).
        self.unlinked_since: float | None = time.monotonic()
        self._make_link = make_link
        self.link: Link | None = None
        self.stats = DeviceStats(name=name or label, address=label, transport=transport)
        self.tracker = StreamTracker()
        self.info: protocol.DeviceInfo | None = None
        self.device_id: int | None = None
        self.engine: Engine | None = None
        self.result: EngineResult | None = None
        self._queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue(QUEUE_MAX_MESSAGES)
        self.queue_overflows = 0
        self._lost = asyncio.Event()
        self._pending: dict[tuple[int, int], asyncio.Future[protocol.Response]] = {}
        self._tokens = itertools.cycle(range(1, 256))
        self.resender = Resender(
            self.command, self.tracker.missing_seq_ranges, lambda: self.tracker.boot,
            self._record_event,
        )  # fmt: skip
        self.frames_corrupt = 0
        self.samples_resent = 0  # samples that first arrived in a RESENT frame: recovered
        self._corrupt_closed_links = 0  # frames a closed link's own framing dropped (serial CRC)
        self.last_status: protocol.Status | None = None
        self._ever_connected = False
        self.want_odr_hz: int | None = None  # CONFIGURE to this rate before the first START
        self.feed: LiveFeed | None = None  # sequence-ordered samples for the engine
        self._last_seq = -1  # highest frame seq seen in the current boot
        self.alert_to_buzz_ms: list[float] = []

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
        # A lost answer is a lost notification like any other: a command that may be repeated
        # is sent again (same token) until one answer arrives, not waited for once in vain.
        repeat_s = REPEAT_AFTER_S if opcode in protocol.REPEATABLE_OPCODES else timeout_s
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                await link.send_command(command)
                left_s = deadline - time.monotonic()
                try:
                    return await asyncio.wait_for(asyncio.shield(fut), min(repeat_s, left_s))
                except TimeoutError:
                    if left_s <= repeat_s:
                        raise
        except TimeoutError as exc:
            raise CommandError(
                f"{self.label}: no answer to {protocol.OPCODE_NAMES.get(opcode, opcode)}"
            ) from exc
        except ConnectionError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            self._pending.pop((opcode, token), None)
            fut.cancel()  # no-op once answered; otherwise nobody is left to read it

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
        return None if self.feed is None else self.feed.received_at(engine_t_s)

    def complete_between(self, start_engine_s: float, end_engine_s: float) -> bool:
        """Whether the live engine had every sample between the two engine times."""
        return self.feed is None or self.feed.complete_between(start_engine_s, end_engine_s)

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
        resender = asyncio.create_task(
            self.resender.run(stop, self._resending), name=f"resend {self.label}"
        )
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
                    await wait_either(stop, delay)
                    continue
                attempt = 0
                self.unlinked_since = None
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
                    self.unlinked_since = time.monotonic()
            if self.link is not None and not self._lost.is_set():
                # STOP first, so no new holes open while the last ones are asked for (the
                # wearable serves RESEND from its ring whether it streams or not).
                try:
                    await self.checked(protocol.stop())
                except CommandError:
                    pass
                await self._drain_briefly()
                if self.collector.options.resend:
                    await self.resender.final(self._lost)
                await self._drain_briefly()
        finally:
            await self._drop_link()
            self.stats.state = "stopped"
            resender.cancel()
            await self._queue.put((b"", 0.0))  # wake the consumer so it can finish
            await asyncio.gather(resender, return_exceptions=True)
            await consumer
            if self.feed is not None:
                self.feed.flush_all(time.monotonic())
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
            if exc.kind == "bad_version":  # retrying cannot help: say so and give up
                raise UserError(
                    f"{self.label}: {exc}; this collector speaks protocol {protocol.VERSION}"
                ) from exc
            if exc.kind == "not_physical":  # its scale factors cannot be right: give up
                raise UserError(f"{self.label}: {exc}") from exc
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
            self.stats.name = self.user_name or info.name or self.label
            self.device_id = session.add_device(
                self.link.address, self.stats.name, self.collector.options.placement
            )
            self.stats.address = self.link.address
        session.add_info(self.device_id, raw, boot=self.tracker.boot)
        self.info = info
        self.stats.att_mtu = info.att_mtu
        if self.engine is None and self.collector.options.analyse:
            o = self.collector.options
            self.engine = Engine(
                float(info.odr_hz), exercise=o.exercise, goal=o.goal,
                vl_threshold_pct=o.vl_threshold_pct, placement=o.placement,
                alerts_enabled=o.alerts_enabled, stop_policy=o.stop_policy,
            )  # fmt: skip
            self.feed = LiveFeed(
                float(info.odr_hz), o.live_resend_wait_s, on_segment=self._record_timebase
            )
        if self._ever_connected:
            self.stats.reconnects += 1
            self._record_event("reconnect", {"rebooted": rebooted})
        self._ever_connected = True
        if self.stats.transport.startswith("serial"):
            # A board has both links and streams over BLE from power-on (and again after every
            # reset): over USB it must be told to send its frames there.
            await self.checked(protocol.set_transport(protocol.TRANSPORT_SERIAL))
        await self.checked(protocol.start())

    # ---------------------------------------------------------------- consumer
    async def _consume(self) -> None:
        while True:
            deadline = self.feed.next_deadline() if self.feed is not None else None
            try:
                if deadline is None:
                    message, t_mono = await self._queue.get()
                else:
                    timeout = max(0.0, deadline - time.monotonic())
                    message, t_mono = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                self._flush_feed()  # a hole's wait ran out: go on over it
                continue
            if not message:
                if self.link is None and self.stats.state == "stopped":
                    return
                continue
            try:
                self._handle(message, t_mono)
                # Drain what else is waiting, then feed the analysis once for the lot.
                while not self._queue.empty():
                    message, t_mono = self._queue.get_nowait()
                    if not message:
                        self._flush_feed()
                        return
                    self._handle(message, t_mono)
                self._flush_feed()
            except UserError as exc:
                # The session file cannot be written (a full disk): the session ends now, what
                # was saved stays, and the error is reported once it has ended.
                self.collector.fail(exc)
                return

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
            self.stats.battery_pct = protocol.battery_pct(status.battery_mv)
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
        if self.feed is not None:
            self.feed.add(frame, outcome.boot, host_s, time.monotonic())
        if outcome.new_boot or frame.seq != self._last_seq + 1:
            self.resender.wake.set()  # a new hole before this frame: ask for it now
        self._last_seq = max(self._last_seq, frame.seq) if not outcome.new_boot else frame.seq

    # ---------------------------------------------------------------- live analysis
    def _flush_feed(self) -> None:
        if self.feed is None or self.engine is None or self.info is None:
            return
        self.feed.expire(time.monotonic())
        block = self.feed.due()
        if block is None:
            return
        t, raw = block
        accel, gyro = protocol.raw_to_si(raw, self.info)
        for event in self.engine.feed(t, accel, gyro):
            self.collector.on_engine_event(self, event)

    def finish_analysis(self) -> EngineResult | None:
        self._flush_feed()
        if self.engine is None:
            return None
        for event in self.engine.finish():
            self.collector.on_engine_event(self, event)
        self.result = self.engine.result()
        return self.result

    # ---------------------------------------------------------------- resend
    def _resending(self) -> bool:
        return (
            self.collector.options.resend
            and self.link is not None
            and self.stats.state == "streaming"
        )

    # ---------------------------------------------------------------- bookkeeping
    def _record_timebase(self, boot: int, first_index: int, t0_s: float, rate_hz: float) -> None:
        self._record_event(
            "live_timebase",
            {"boot": boot, "first_index": first_index, "t0_s": t0_s, "rate_hz": rate_hz},
        )

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
        if self.feed is not None:
            s.live_holes_given_up = self.feed.holes_given_up
            s.live_max_wait_ms = round(1000.0 * self.feed.max_wait_s, 1)
            s.live_degraded = self.feed.degraded(time.monotonic())
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
            resend_requests=self.resender.requests,
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
