"""Asking a wearable for the frames the link lost (RESEND, docs/protocol.md section 6).

The wearable's ring keeps its last frames; the collector asks for every hole in the sequence
numbers it has seen. One :class:`Resender` per device does the asking, both while streaming
(:meth:`Resender.run`, woken at once when a new hole appears) and once more after STOP
(:meth:`Resender.final`), so the two never drift apart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tremorlift import protocol

RESEND_INTERVAL_S = 0.25  # how often holes are looked for when none was reported
# A range asked for and still missing is asked for again after this: a lost answer or a lost
# resent frame must be asked for again well before the live analysis stops waiting for it
# (collect/feed.py: LIVE_RESEND_WAIT_S) and before the ring lets the frame go.
RESEND_RETRY_S = 0.15
RESEND_TIMEOUT_S = 0.15  # RESEND is answered within a few connection events; a lost answer is
# not waited for long (the range is simply asked again)
FINAL_RESEND_S = 2.0  # at the end, how long missing frames are asked for after STOP
MAX_REMEMBERED_REQUESTS = 10_000  # bounded memory of what was asked when

# Holes are asked for as one range when that range is at most this many times the frames
# missing in it, or at most COALESCE_SPAN_FRAMES long: a paced radio (a notification or four per
# connection event) takes its time over frames sent twice, and the wearable answers BUSY to any
# other request meanwhile.
COALESCE_FACTOR = 2
COALESCE_SPAN_FRAMES = 8
MAX_IN_FLIGHT = 3  # RESEND requests awaiting their answer at once

Command = Callable[[bytes, float], Awaitable[protocol.Response]]


def coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``ranges`` (first_seq, count), in order, merged where asking once is cheaper than
    asking several times: neighbours whose merged span stays within ``COALESCE_FACTOR`` times
    the frames missing in it, or within ``COALESCE_SPAN_FRAMES``."""
    out: list[tuple[int, int, int]] = []  # (first, end, frames missing)
    for first, count in sorted(ranges):
        if out:
            f0, e0, m0 = out[-1]
            span, missing = first + count - f0, m0 + count
            if span <= COALESCE_SPAN_FRAMES or span <= COALESCE_FACTOR * missing:
                out[-1] = (f0, first + count, missing)
                continue
        out.append((first, first + count, count))
    return [(f, e - f) for f, e, _ in out]


class CommandError(Exception):
    """A command the device answered with an error result, or did not answer."""


class Resender:
    """The RESEND requests of one wearable.

    ``missing`` gives the holes of the current boot as (first_seq, count) and ``boot`` its
    ordinal (``timebase.StreamTracker``); ``command`` sends one command and returns its answer
    (raising :class:`CommandError`); ``record`` stores a session event.
    """

    def __init__(
        self,
        command: Command,
        missing: Callable[[], list[tuple[int, int]]],
        boot: Callable[[], int],
        record: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self._command = command
        self._missing = missing
        self._boot = boot
        self._record = record
        self._asked_at: dict[tuple[int, int], float] = {}
        self._ring_oldest = (-1, 0)  # (boot, oldest seq the ring holds) from NOT_AVAILABLE
        self.requests = 0
        self.wake = asyncio.Event()  # set when a new hole appears: ask now, not at the next tick
        self._in_flight: set[asyncio.Future[int | None]] = set()

    def resendable(self, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The part of ``ranges`` that may still be in the wearable's ring: frames below the
        oldest it reported holding (NOT_AVAILABLE) are gone for good and not asked again."""
        boot, oldest = self._ring_oldest
        if boot != self._boot():
            return ranges
        out = []
        for first, count in ranges:
            if first + count > oldest:
                start = max(first, oldest)
                out.append((start, first + count - start))
        return out

    async def _ask(self, first_seq: int, count: int) -> int | None:
        """RESEND one range in protocol-sized chunks; the result of the last chunk asked, or None
        when a chunk went unanswered (the range is asked again later)."""
        result = None
        for start in range(first_seq, first_seq + count, protocol.RESEND_MAX_COUNT):
            n = min(protocol.RESEND_MAX_COUNT, first_seq + count - start)
            try:
                # A short timeout: a lost answer must not hold up the ranges behind it while
                # they age out of the ring.
                resp = await self._command(protocol.resend(start, n), RESEND_TIMEOUT_S)
            except CommandError:
                return None
            self.requests += 1
            result = resp.result
            if resp.result == protocol.RES_BUSY:
                return result
            if resp.result == protocol.RES_NOT_AVAILABLE:
                self._record("resend_unavailable", {"first_seq": start, "count": n})
                if isinstance(resp.detail, protocol.ResendUnavailable):
                    self._ring_oldest = (self._boot(), resp.detail.oldest_seq)
        return result

    async def run(self, stop: asyncio.Event, active: Callable[[], bool]) -> None:
        """Ask for every hole while ``active()`` (connected and streaming) until ``stop``."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.wake.wait(), RESEND_INTERVAL_S)
            except TimeoutError:
                pass
            self.wake.clear()
            if not active():
                continue
            now = time.monotonic()
            missing = self.resendable(self._missing())
            due = [key for key in missing if now - self._asked_at.get(key, -1e9) >= RESEND_RETRY_S]
            for key in due:
                self._asked_at[key] = now
            # The wearable serves one RESEND at a time (others are answered BUSY): holes close
            # together are asked for as one range, their frames already here coming twice.
            # Requests are not waited for here: a slow or lost answer must not delay asking
            # for the holes that open meanwhile (each is asked again after RESEND_RETRY_S).
            for first, count in coalesce(due)[: MAX_IN_FLIGHT - len(self._in_flight)]:
                task: asyncio.Future[int | None] = asyncio.ensure_future(self._ask(first, count))
                self._in_flight.add(task)
                task.add_done_callback(self._asked)
            if len(self._asked_at) > MAX_REMEMBERED_REQUESTS:
                self._asked_at = dict(list(self._asked_at.items())[-1000:])
            # Holes still open are looked at again after the retry time, not the full interval.
            if missing:
                await asyncio.sleep(RESEND_RETRY_S / 2)
                self.wake.set()
        for task in list(self._in_flight):
            task.cancel()

    def _asked(self, task: asyncio.Future[int | None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is None and task.result() == protocol.RES_BUSY:
            self._asked_at.clear()  # the wearable was busy: ask again at the next look
            self.wake.set()

    async def final(self, lost: asyncio.Event) -> None:
        """After STOP: ask once more for every frame still missing and wait a little for them,
        so frames lost in the last moments are not left as holes the streaming loop never saw."""
        deadline = time.monotonic() + FINAL_RESEND_S
        gone: set[tuple[int, int]] = set()  # answered NOT_AVAILABLE: out of the ring for good
        while time.monotonic() < deadline and not lost.is_set():
            missing = [r for r in self.resendable(self._missing()) if r not in gone]
            if not missing:
                return
            for key in coalesce(missing):
                if await self._ask(*key) == protocol.RES_NOT_AVAILABLE:
                    gone.update(missing)  # what is left is below the ring's oldest frame
            await asyncio.sleep(RESEND_RETRY_S)
