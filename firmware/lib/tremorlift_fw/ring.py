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
# The ring's memory comes in blocks of this many frames (16 x 244 = 3904 B), not as one
# 73 KB block: on a classic ESP32 the heap grows from IDF memory in pieces and may hold no
# single free block that large, and what one block would take is then missing for NimBLE.
CHUNK_FRAMES = const(16)


class Ring:
    def __init__(self, n_frames):
        if n_frames < 2:
            raise ValueError("a ring needs at least 2 frames")
        self.n_frames = n_frames
        # Slicing a memoryview allocates on MicroPython: every view is made here, once.
        self.frames = []
        self.samples = []
        self._chunks = []
        for first in range(0, n_frames, CHUNK_FRAMES):
            k = n_frames - first if n_frames - first < CHUNK_FRAMES else CHUNK_FRAMES
            chunk = bytearray(k * FRAME_BYTES)
            self._chunks.append(chunk)
            mv = memoryview(chunk)
            for j in range(k):
                self.frames.append(mv[j * FRAME_BYTES : (j + 1) * FRAME_BYTES])
                self.samples.append(mv[j * FRAME_BYTES + _HEADER_BYTES : (j + 1) * FRAME_BYTES])
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
