"""Preallocated ring of recent SAMPLES frames: the send queue and the RESEND store.

Frame `seq` lives in slot `seq % n_frames`. Three counters describe the ring:
oldest_seq (the oldest frame still held), next_seq (the seq the next new frame gets) and
send_seq (the next frame never sent yet). A frame overwritten before it was ever sent is
counted in frames_dropped. All counters are small ints (2^30 frames is centuries), so the
hot path never allocates.
"""

from micropython import const

_HEADER_BYTES = const(16)
_SAMPLE_BYTES = const(12)
_MAX_SAMPLES = const(19)
FRAME_BYTES = const(244)  # 16 + 19 x 12


class Ring:
    def __init__(self, n_frames):
        if n_frames < 2:
            raise ValueError("a ring needs at least 2 frames")
        self.n_frames = n_frames
        self._buf = bytearray(n_frames * FRAME_BYTES)
        mv = memoryview(self._buf)
        # Slicing a memoryview allocates on MicroPython: every view is made here, once.
        self.frames = [mv[i * FRAME_BYTES : (i + 1) * FRAME_BYTES] for i in range(n_frames)]
        self.samples = [
            mv[i * FRAME_BYTES + _HEADER_BYTES : (i + 1) * FRAME_BYTES] for i in range(n_frames)
        ]
        self.counts = bytearray(n_frames)  # n_samples of each slot's frame
        self.oldest_seq = 0
        self.next_seq = 0
        self.send_seq = 0
        self.frames_dropped = 0

    def claim(self):
        """The slot frame next_seq will be written to (the oldest frame's, when full).

        The oldest frame counts as held until commit() or spoil(), so reading into the slot
        and finding nothing to write costs no frame.
        """
        return self.next_seq % self.n_frames

    def _give_up_oldest(self):
        if self.next_seq - self.oldest_seq >= self.n_frames:
            if self.send_seq <= self.oldest_seq:
                self.frames_dropped += 1
                self.send_seq = self.oldest_seq + 1
            self.oldest_seq += 1

    def commit(self, n_samples):
        """The claimed slot now holds a frame of n_samples samples: it becomes next_seq."""
        self._give_up_oldest()
        self.counts[self.next_seq % self.n_frames] = n_samples
        self.next_seq += 1

    def spoil(self):
        """Something was written into the claimed slot but no frame made: its old frame is gone."""
        self._give_up_oldest()

    def holds(self, seq):
        return self.oldest_seq <= seq < self.next_seq

    def unsent(self):
        return self.next_seq - self.send_seq

    def frame_bytes(self, seq):
        return _HEADER_BYTES + _SAMPLE_BYTES * self.counts[seq % self.n_frames]
