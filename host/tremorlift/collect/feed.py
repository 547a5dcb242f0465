"""The live analysis feed of one wearable: frames in sequence order, from complete data.

Frames reach the collector out of order when the radio loses some and RESEND brings them back.
The feed hands the engine samples strictly in sequence order: a frame that arrives after a hole
is held until the hole is filled or the wait for it (``wait_s``, the ``live_resend_wait_s``
setting) runs out. Only then does the engine go on over the hole, and that stretch of the
timeline is remembered as incomplete, so an alert raised on a rep that had to be computed with
missing samples says so. A resent frame that arrives after its wait ran out is recorded (the
final analysis uses it) but not fed: the live engine has moved on.

Engine time is the wearable's sample clock anchored at the host time the first frame of each
stream segment arrived (a reboot or a new stream starts a new segment after the last sample fed).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tremorlift import protocol

LIVE_RESEND_WAIT_S = 0.8  # default wait for a hole to be filled by RESEND (host seconds)
MAX_HELD_FRAMES = 4000  # a hole that holds back more frames than this is given up at once
RECENT_GAPS_S = 60.0  # "degraded" means a hole was given up within this many seconds


@dataclass
class _Held:
    frame: protocol.SamplesFrame
    boot: int
    host_s: float


class LiveFeed:
    """Sequence-ordered samples of one wearable for its engine.

    ``add`` takes every new (not duplicate) frame with its boot ordinal, the session time it was
    received and the host's monotonic time; ``due`` releases what may be fed now as
    ``(t_s, raw)`` blocks in feed time; ``next_deadline`` says when a held frame's wait runs out.
    """

    def __init__(
        self,
        rate_hz: float,
        wait_s: float = LIVE_RESEND_WAIT_S,
        on_segment: Callable[[int, int, float, float], None] | None = None,
    ) -> None:
        self.rate_hz = float(rate_hz)
        # Told (boot, first sample index, its feed time, rate) at each new time segment, so the
        # final analysis can put the stored samples on the same time base (store.final).
        self._on_segment = on_segment
        self.wait_s = float(wait_s)
        self._boot = -1
        self._next_seq: int | None = None
        self._held: dict[int, _Held] = {}
        self._hole_since: float | None = None  # monotonic time the current hole was first seen
        self._seg_t0_s = 0.0
        self._seg_index0 = 0
        self._end_index: int | None = None
        self._last_t_s = -np.inf
        self._blocks_t: list[npt.NDArray[np.float64]] = []
        self._blocks_raw: list[npt.NDArray[np.int16]] = []
        # (first feed time, last feed time, session time received) of recent frames fed, to
        # find when the collector got the sample an alert refers to.
        self._fed_frames: collections.deque[tuple[float, float, float]] = collections.deque(
            maxlen=4000
        )
        self.t0_s: float | None = None  # feed time of the engine's t = 0
        self.incomplete: list[tuple[float, float]] = []  # feed-time spans fed with a hole
        self._last_given_up_s: float | None = None  # monotonic time a hole was last given up
        self.holes_given_up = 0
        self.max_wait_s = 0.0

    # ------------------------------------------------------------------ input
    def add(self, frame: protocol.SamplesFrame, boot: int, host_s: float, now_s: float) -> None:
        if boot != self._boot:
            self._give_up_all(now_s)  # the old boot's holes can never be filled now
            self._boot = boot
            self._next_seq = None
            self._end_index = None  # sample indices restart: a new time segment
        if self._next_seq is None:
            self._next_seq = frame.seq
        if frame.seq < self._next_seq or frame.seq in self._held:
            return  # resent after its wait ran out (recorded, not fed live), or a duplicate
        self._held[frame.seq] = _Held(frame, boot, host_s)
        self._release(now_s)
        if self._held and self._hole_since is None:
            self._hole_since = now_s
        if len(self._held) > MAX_HELD_FRAMES:
            self._give_up_hole(now_s)

    def expire(self, now_s: float) -> None:
        """Give up the current hole (and any after it) whose wait has run out."""
        while self._hole_since is not None and now_s - self._hole_since >= self.wait_s:
            self._give_up_hole(now_s)

    def next_deadline(self) -> float | None:
        """Monotonic time at which the current hole's wait runs out, or None."""
        return None if self._hole_since is None else self._hole_since + self.wait_s

    def _release(self, now_s: float) -> float | None:
        """Feed the held frames that follow on; the feed time of the first one fed, if any."""
        first_t_s = None
        while self._next_seq in self._held:
            t_s = self._append(self._held.pop(self._next_seq))
            first_t_s = t_s if first_t_s is None else first_t_s
            self._next_seq += 1
        if first_t_s is not None and self._hole_since is not None:
            self.max_wait_s = max(self.max_wait_s, now_s - self._hole_since)
            self._hole_since = now_s if self._held else None
        return first_t_s

    def _give_up_hole(self, now_s: float) -> None:
        if not self._held:
            self._hole_since = None
            return
        self.holes_given_up += 1
        t_before = self._last_t_s
        self._next_seq = min(self._held)
        t_after = self._release(now_s)
        # The span between the last sample fed before the hole and the first after it.
        self.incomplete.append((t_before, self._last_t_s if t_after is None else t_after))
        self._last_given_up_s = now_s
        self._hole_since = now_s if self._held else None

    def _give_up_all(self, now_s: float) -> None:
        while self._held:
            self._give_up_hole(now_s)
        self._hole_since = None

    def _append(self, h: _Held) -> float:
        """Queue one frame's samples for the engine; the feed time of its first sample."""
        frame = h.frame
        rate = self.rate_hz
        new_segment = (
            frame.stream_start
            or self._end_index is None
            or (frame.first_sample_index < self._end_index)
        )
        if new_segment:
            # A new time segment: anchored at this frame's host time, after the last sample fed.
            n = frame.n_samples
            self._seg_t0_s = max(h.host_s - (n - 1) / rate, self._last_t_s + 1.0 / rate)
            self._seg_index0 = frame.first_sample_index
            if self._on_segment is not None:
                self._on_segment(h.boot, self._seg_index0, self._seg_t0_s, rate)
        idx = np.arange(frame.first_sample_index, frame.end_sample_index)
        t = self._seg_t0_s + (idx - self._seg_index0) / rate
        self._blocks_t.append(t)
        self._blocks_raw.append(frame.samples_raw)
        self._fed_frames.append((float(t[0]), float(t[-1]), h.host_s))
        self._end_index = frame.end_sample_index
        self._last_t_s = float(t[-1])
        return float(t[0])

    # ------------------------------------------------------------------ output
    def due(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int16]] | None:
        """Samples released since the last call, in order, as (feed time, raw int16 rows)."""
        if not self._blocks_t:
            return None
        t = np.concatenate(self._blocks_t)
        raw = np.concatenate(self._blocks_raw)
        self._blocks_t.clear()
        self._blocks_raw.clear()
        if self.t0_s is None:
            self.t0_s = float(t[0])
        return t, raw

    def flush_all(self, now_s: float) -> None:
        """At the end: feed whatever is held, holes and all."""
        self._give_up_all(now_s)

    def received_at(self, engine_t_s: float) -> float | None:
        """Session time at which the collector received the sample at engine time ``engine_t_s``."""
        if self.t0_s is None:
            return None
        t = self.t0_s + engine_t_s
        for first, last, host_s in reversed(self._fed_frames):
            if first - 1e-9 <= t <= last + 1e-9:
                return host_s
            if last < t:
                return None
        return None

    def complete_between(self, start_engine_s: float, end_engine_s: float) -> bool:
        """Whether every sample between the two engine times was fed (no hole given up there)."""
        if self.t0_s is None:
            return True
        lo, hi = self.t0_s + start_engine_s, self.t0_s + end_engine_s
        return not any(a < hi and b > lo for a, b in self.incomplete)

    def degraded(self, now_s: float) -> bool:
        """Whether a hole had to be given up recently (live results computed over missing data)."""
        last = self._last_given_up_s
        return last is not None and now_s - last < RECENT_GAPS_S
