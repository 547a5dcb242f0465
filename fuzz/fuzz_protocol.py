"""Coverage-guided fuzzing of the host's protocol decoders (host/tremorlift/protocol.py).

    .venv/bin/python fuzz/fuzz_protocol.py          # FUZZ_SECONDS (default 60) of fuzzing

Every decoder must either return or raise ProtocolError, whatever the bytes; what decodes
must encode back to the same bytes (the encoders are the protocol's other half).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np  # noqa: F401 - imported before instrumentation: only our code is traced

sys.path.insert(0, str(Path(__file__).resolve().parent))
import atheris  # noqa: E402
import common  # noqa: E402

with atheris.instrument_imports():
    from tremorlift import protocol  # noqa: E402
    from tremorlift.protocol import ProtocolError  # noqa: E402


def _check_round_trip(data: bytes, msg: object) -> None:
    if isinstance(msg, protocol.SamplesFrame):
        again = protocol.encode_samples(
            msg.flags, msg.seq, msg.first_sample_index, msg.tick_us, msg.samples_raw
        )
        assert again == data, "SAMPLES does not re-encode to its bytes"
    elif isinstance(msg, protocol.Status):
        assert protocol.encode_status(msg) == data[: protocol.STATUS_BYTES], "STATUS round trip"
    elif isinstance(msg, protocol.DeviceInfo):
        again = protocol.encode_info(msg)
        n = protocol.INFO_BASE_BYTES + len(msg.name)
        # Byte 25 is reserved: the reader ignores it, the encoder writes 0.
        assert again[:25] + again[26:] == data[:25] + data[26:n], "INFO round trip"
    elif isinstance(msg, protocol.Response):
        assert protocol.encode_response(msg.opcode, msg.token, msg.result, msg.payload) == data


def test_one_input(data: bytes) -> None:
    decoders = (
        protocol.decode_message,
        protocol.decode_samples,
        protocol.decode_status,
        protocol.decode_info,
        protocol.decode_response,
    )
    for decode in decoders:
        try:
            msg = decode(data)
        except ProtocolError:
            continue
        _check_round_trip(data, msg)
    try:
        cmd = protocol.decode_command(data)
    except ProtocolError:
        pass
    else:
        if cmd.opcode in protocol.COMMAND_ARGS:
            args = list(cmd.args.values())
            assert protocol.encode_command(cmd.opcode, cmd.token, *args) == data, (
                "command round trip"
            )
    # The batch decoder must agree with the one-frame decoder on every split of the input.
    if len(data) >= 2:
        cut = data[0] % len(data)
        frames = [data[:cut], data[cut:]] if cut else [data]
        try:
            batch = protocol.decode_samples_batch(frames)
        except ProtocolError:
            for f in frames:  # at least one frame must really be bad
                try:
                    protocol.decode_samples(f)
                except ProtocolError:
                    break
            else:
                raise AssertionError("batch refused frames the single decoder accepts") from None
        else:
            for i, f in enumerate(frames):
                assert batch.frame(i) == protocol.decode_samples(f), (
                    "batch and single decoders differ"
                )


def seeds() -> list[bytes]:
    return common.vector_bytes()


if __name__ == "__main__":
    common.run("protocol", test_one_input, seeds)
