"""Coverage-guided fuzzing of the USB serial framing (host/tremorlift/serial_framing.py).

    .venv/bin/python fuzz/fuzz_serial.py            # FUZZ_SECONDS (default 60) of fuzzing

FrameReader must take any byte stream, in any chunking, without raising; give the same
messages however the stream is cut; hold no more than its limit; and only ever return
messages whose CRC and header checked out. COBS and command lines must round-trip.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np  # noqa: F401 - imported before instrumentation: only our code is traced

sys.path.insert(0, str(Path(__file__).resolve().parent))
import atheris  # noqa: E402
import common  # noqa: E402

with atheris.instrument_imports():
    from tremorlift.protocol import MSG_NAMES, VERSION, ProtocolError  # noqa: E402
    from tremorlift.transport import serial_framing as sf  # noqa: E402

MAX_FRAME_BYTES = 300  # small, so overlong runs are reached often


def _feed_all(chunks: list[bytes]) -> tuple[list[bytes], sf.FrameReader]:
    reader = sf.FrameReader(MAX_FRAME_BYTES)
    out: list[bytes] = []
    for chunk in chunks:
        out += reader.feed(chunk)
        assert reader.pending_bytes <= MAX_FRAME_BYTES, "reader holds more than its limit"
    return out, reader


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    n_cuts = fdp.ConsumeIntInRange(0, 8)
    cuts = sorted(fdp.ConsumeIntInRange(0, 4096) for _ in range(n_cuts))
    stream = fdp.ConsumeBytes(fdp.remaining_bytes())
    chunks = []
    prev = 0
    for c in cuts:
        c = min(c, len(stream))
        chunks.append(stream[prev:c])
        prev = max(prev, c)
    chunks.append(stream[prev:])
    whole, _ = _feed_all([stream])
    pieces, _ = _feed_all(chunks)
    assert whole == pieces, "messages depend on how the stream was cut"
    for msg in whole:
        assert len(msg) >= 2 and msg[0] == VERSION and msg[1] in MSG_NAMES
        assert sf.decode_frame(sf.cobs_encode(msg + sf.crc16(msg).to_bytes(2, "little"))) == msg
    # COBS round trip on arbitrary bytes.
    enc = sf.cobs_encode(stream)
    assert 0 not in enc
    assert sf.cobs_decode(enc) == stream
    try:
        sf.cobs_decode(stream)
    except ProtocolError:
        pass
    # Command lines: any line is decoded or refused with ProtocolError; valid ones round-trip.
    try:
        cmd = sf.decode_command_line(stream)
    except ProtocolError:
        pass
    else:
        assert sf.decode_command_line(sf.encode_command_line(cmd)) == cmd
    if 2 <= len(stream) <= 200:
        assert sf.decode_command_line(sf.encode_command_line(stream)) == stream


def seeds() -> list[bytes]:
    frames = [sf.encode_frame(v) for v in common.vector_bytes() if len(v) >= 2]
    return [
        b"".join(frames),
        frames[0][:7] + b"\x00" + frames[-1],
        b"\x01" * 400 + b"\x00",
    ] + frames


if __name__ == "__main__":
    common.run("serial", test_one_input, seeds)
