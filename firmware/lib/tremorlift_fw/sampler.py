"""Drains the IMU's FIFO into SAMPLES frames in the ring (docs/protocol.md, 4).

poll() runs every config.POLL_INTERVAL_MS. It reads the FIFO straight into the sample area
of the ring's next slot, up to samples_per_frame samples per frame, and keeps reading until
the FIFO is empty. Frames fill the MTU: a partly filled last frame stays open and the next
poll continues it (the driver writes at a sample offset), unless its oldest sample would be
older than config.FRAME_MAX_AGE_MS by then, so no sample waits longer than that to go out.

Timing: the IMU's own clock is the sample clock. After the FIFO ran dry, its newest sample
was taken at about the time of the last read, so sample k of a poll's T samples was taken
at read_tick - (T - 1 - k) x period. tick_us is that, modulo 2^30 (the wrap of ticks_us).

Losses: on a FIFO overflow (read_fifo returns -1, the driver has reset the FIFO) or an IMU
re-initialisation, the samples the IMU produced but nobody read are estimated from the
ticks since the last read that emptied the FIFO; sample_index jumps by that many and the
next frame carries GAP_BEFORE.

Allocates nothing: only small ints, preallocated views and protocol.pack_samples_header.
"""

from micropython import const

from . import config, protocol

_FLAG_GAP_BEFORE = const(2)
_FLAG_STREAM_START = const(4)
_ONE_SECOND_US = const(1_000_000)
_POLL_INTERVAL_US = config.POLL_INTERVAL_MS * 1000
_FRAME_MAX_AGE_US = config.FRAME_MAX_AGE_MS * 1000
# ticks_diff of two ticks_us values is only right within 2^29 us (8.9 min): longer gaps (an IMU
# missing for minutes) are measured in milliseconds, good for 2^29 ms (6.2 days).
_LONG_GAP_MS = const(300_000)


class Sampler:
    def __init__(self, ring, clock):
        self.ring = ring
        self.clock = clock
        self.imu = None
        self.samples_per_frame = 1
        self.period_us = 5000
        self.next_sample_index = 0  # index the next sample read will get
        self.fifo_overflows = 0
        self.gaps = 0
        self.samples_lost = 0  # estimated, across all gaps
        self._flags = 0  # flags for the next frame
        self._last_empty_us = 0  # tick of the last read that left the FIFO empty
        self._last_empty_ms = 0  # the same moment in ticks_ms (for gaps longer than 8.9 min)
        self._read_since_empty = 0  # samples read since then
        self._newest_us = 0  # tick of the newest sample read (the FIFO was drained then)
        self._open_n = 0  # samples in the partly filled frame at ring.claim(), not committed

    def start(self, imu):
        """Begin a stream: (re)start the FIFO; the next frame carries STREAM_START."""
        self.imu = imu
        self.period_us = _ONE_SECOND_US // imu.odr_hz
        imu.fifo_start()
        self._flags = _FLAG_STREAM_START
        self._last_empty_us = self.clock.ticks_us()
        self._last_empty_ms = self.clock.ticks_ms()
        self._newest_us = self._last_empty_us
        self._read_since_empty = 0
        self._open_n = 0

    def stop(self):
        self.flush()
        if self.imu is not None:
            self.imu.fifo_stop()

    def resume_after_reinit(self, imu):
        """The IMU was re-initialised mid-stream: count what it produced meanwhile as lost."""
        self.flush()
        self.imu = imu
        self.period_us = _ONE_SECOND_US // imu.odr_hz
        # The FIFO restarts first (a driver may wait out its sensors' start-up there), so the
        # gap covers everything up to the first sample the FIFO will hold.
        imu.fifo_start()
        self._gap(self.clock.ticks_us())

    def _gap(self, now_us):
        clock = self.clock
        now_ms = clock.ticks_ms()
        elapsed_ms = clock.ticks_diff(now_ms, self._last_empty_ms)
        if elapsed_ms < _LONG_GAP_MS:
            produced = clock.ticks_diff(now_us, self._last_empty_us) // self.period_us
        else:
            rate_hz = _ONE_SECOND_US // self.period_us
            produced = (elapsed_ms // 1000) * rate_hz + (elapsed_ms % 1000) * rate_hz // 1000
        lost = produced - self._read_since_empty
        if lost > 0:
            self.next_sample_index += lost
            self.samples_lost += lost
        self.gaps += 1
        self._flags |= _FLAG_GAP_BEFORE
        self._last_empty_us = now_us
        self._last_empty_ms = now_ms
        self._read_since_empty = 0

    @property
    def open_samples(self):
        """Samples read into the partly filled frame that is not yet a frame in the ring."""
        return self._open_n

    def flush(self):
        """Close the partly filled frame, if any (STOP, re-init, a smaller frame size)."""
        n = self._open_n
        if n:
            first_seq = self.ring.next_seq
            self.ring.commit(n)
            self._open_n = 0
            self._finish(first_seq, self._flags, self._newest_us)

    def poll(self):
        """Drain the FIFO into frames; returns the frames made. OSError from the bus propagates."""
        ring = self.ring
        imu = self.imu
        if imu is None:
            return 0
        clock = self.clock
        spf = self.samples_per_frame
        if self._open_n >= spf:
            self.flush()
        made = 0
        group_seq = ring.next_seq  # first frame of the samples read since the last timing fix
        group_flags = self._flags
        while True:
            slot = ring.claim()
            have = self._open_n
            n = imu.read_fifo(ring.samples[slot], spf - have, have)
            if n < 0:
                # Overflow: what was read before it keeps its own timing, then the gap.
                if have:
                    ring.commit(have)  # the driver may have written past it: counts say how much
                    made += 1
                else:
                    ring.spoil()  # the driver may have written some samples before noticing
                self._open_n = 0
                self._finish(group_seq, group_flags, self._newest_us)
                self.fifo_overflows += 1
                self._gap(clock.ticks_us())
                group_seq = ring.next_seq
                group_flags = self._flags
                continue
            total = have + n
            if n > 0:
                # The FIFO was drained to here: its newest sample is about now.
                self._newest_us = clock.ticks_us()
                self.next_sample_index += n
                self._read_since_empty += n
            if total >= spf:
                ring.commit(total)
                self._open_n = 0
                made += 1
                continue  # more may be waiting
            # A partly filled frame: keep it open for the next poll while its oldest sample
            # would still be younger than FRAME_MAX_AGE_MS then; otherwise send it as it is.
            # Nothing new this poll (the IMU paused): do not hold what there is.
            if total and (
                n == 0 or (total - 1) * self.period_us + _POLL_INTERVAL_US > _FRAME_MAX_AGE_US
            ):
                ring.commit(total)
                self._open_n = 0
                made += 1
            else:
                self._open_n = total
            break
        self._finish(group_seq, group_flags, self._newest_us)
        self._last_empty_us = clock.ticks_us()
        self._last_empty_ms = clock.ticks_ms()
        self._read_since_empty = 0
        return made

    def _finish(self, first_seq, flags, now_us):
        # Writes the headers of frames first_seq..next_seq-1, newest first: the newest sample
        # was taken at about now_us, each one before it one period earlier.
        ring = self.ring
        seq = ring.next_seq - 1
        if seq < first_seq:
            return
        n_frames = ring.n_frames
        counts = ring.counts
        frames = ring.frames
        period_us = self.period_us
        # The open (uncommitted) frame holds the newest samples, after every committed one.
        index = self.next_sample_index - self._open_n
        behind = self._open_n  # samples from a frame's first sample to the newest, minus one
        oldest = ring.oldest_seq
        while seq >= first_seq and seq >= oldest:
            slot = seq % n_frames
            n = counts[slot]
            index -= n
            behind += n
            protocol.pack_samples_header(
                frames[slot],
                flags if seq == first_seq else 0,
                n,
                seq,
                index,
                self.clock.ticks_add(now_us, -(behind - 1) * period_us),
            )
            seq -= 1
        # Flags were for the group's first frame; if it got made, they are spent.
        if ring.next_seq > first_seq:
            self._flags = 0
