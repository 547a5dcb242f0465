"""Nobody gets in: pairing through the digital twin (the real firmware on an emulated board,
Bumble's SMP on both ends, bleak's API on the host).

An unpaired central can read INFO and STATUS but its control writes are refused by the stack
(ATT 0x0F); after pair() they are answered and STATUS shows ENCRYPTED; after a link drop the
bond re-encrypts the new link without pairing again. On the command line: `collect` without a
paired wearable refuses and says how to pair, `pair` then `collect` works, `--any` works, and
the paired-devices file, the session and the history index are readable by the user only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import stat
from pathlib import Path

import pytest
from tremorlift import protocol
from tremorlift.cli import main
from tremorlift.transport import pairing
from tremorlift.transport.ble import BleLink, PairingRequired
from tremorlift.twin.wearable import TwinFleet

ATT_INSUFFICIENT_ENCRYPTION = 0x0F


class Sink:
    def __init__(self) -> None:
        self.responses: list[protocol.Response] = []
        self.lost = 0

    def on_message(self, message: bytes, host_time_s: float) -> None:
        if message[1] == protocol.MSG_RESPONSE:
            self.responses.append(protocol.decode_response(message))

    def on_disconnect(self, reason: str) -> None:
        self.lost += 1


async def _answered(link: BleLink, sink: Sink, token: int) -> protocol.Response:
    await link.send_command(protocol.status_now(token))
    for _ in range(100):
        for r in sink.responses:
            if r.token == token:
                return r
        await asyncio.sleep(0.01)
    raise AssertionError(f"no RESPONSE to token {token}")


def _mode(path: Path | str) -> int:
    return stat.S_IMODE(Path(path).stat().st_mode)


def test_unpaired_refused_paired_answered_and_bond_survives_a_link_drop() -> None:
    logging.getLogger("bumble").setLevel(logging.ERROR)

    async def scenario() -> None:
        async with TwinFleet("squat-5x5", short=True) as fleet:
            w = fleet.wearables[0]
            sink = Sink()
            link = BleLink(w.address, sink, backend=fleet.backend, name=w.name)
            await link.open()
            try:
                # Open to anyone: INFO and STATUS.
                info = protocol.decode_info(await link.read_info())
                assert info.name == w.name
                status = protocol.decode_status(await link.read_status())
                assert not status.flags & protocol.ST_ENCRYPTED
                # A control write from the unpaired central: refused by the stack, one clear error.
                with pytest.raises(
                    PairingRequired, match="tremorlift pair --device " + w.name
                ) as ei:
                    await link.send_command(protocol.buzz(protocol.BUZZ_TAP, 100))
                assert int(ei.value.__cause__.code) == ATT_INSUFFICIENT_ENCRYPTION  # type: ignore[union-attr]
                assert "0x0F insufficient encryption" in str(ei.value)
                assert not any(v for k, v in w.haptic_log if k == "duty_u16"), (
                    "nothing reached the motor"
                )
                assert sink.responses == []
                # Paired: the same write is answered and STATUS says ENCRYPTED.
                await link.pair()
                assert (await _answered(link, sink, 7)).ok
                status = protocol.decode_status(await link.read_status())
                assert status.flags & protocol.ST_ENCRYPTED
                assert w.app.ble.bonded
            finally:
                await link.close()
            # The radio path is lost; the next connection is encrypted from the stored bond
            # (a link that may not pair would raise PairingRequired otherwise).
            relink = BleLink(w.address, Sink(), backend=fleet.backend, name=w.name)
            await relink.open()
            try:
                fleet.radio.drop_link(w.address)
                await asyncio.sleep(0.2)
                assert relink._client is not None and not relink._client.is_connected
            finally:
                await relink.close()
            sink3 = Sink()
            again = BleLink(w.address, sink3, backend=fleet.backend, name=w.name)
            await again.open()
            try:
                assert (await _answered(again, sink3, 9)).ok
                assert again.pairings == 0
                assert (
                    protocol.decode_status(await again.read_status()).flags & protocol.ST_ENCRYPTED
                )
            finally:
                await again.close()

    asyncio.run(scenario())


def _collect_args(tmp_path: Path, scenario: str, name: str, *extra: str) -> list[str]:
    return [
        "collect", "--simulate", scenario, "--speed", "4", "--duration", "2.5", "--no-ui",
        "--no-sound", "--no-speech", "--session", str(tmp_path / f"{name}.tlsession"),
        "--summary-json", str(tmp_path / f"{name}.json"), "--scan-timeout", "1.5", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_collect_refuses_without_a_paired_wearable_and_any_overrides(tmp_path, capsys) -> None:
    assert main(_collect_args(tmp_path, "squat-5x5", "refused")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "tremorlift pair --simulate squat-5x5" in err and "--any" in err
    assert not (tmp_path / "refused.tlsession").exists()
    assert main(_collect_args(tmp_path, "squat-5x5", "any", "--any")) == 0
    summary = json.loads((tmp_path / "any.json").read_text())
    assert summary["samples_received"] > 0
    assert not pairing.paired_path().exists()  # --any remembers nobody


@pytest.mark.slow
def test_pair_then_collect_only_the_paired_wearable(tmp_path, capsys) -> None:
    # Two wearables in range: pair insists on a choice.
    assert main(["pair", "--simulate", "two-sensors", "--timeout", "1"]) == 2
    names = re.findall(r"TL-[0-9A-F]{4}", capsys.readouterr().err)
    assert len(names) == 2
    pair = ["pair", "--simulate", "two-sensors", "--timeout", "1", "--device", names[1]]
    assert main([*pair, "--name", "right-thigh"]) == 0
    assert f"paired with right-thigh ({names[1]}, " in capsys.readouterr().out
    paired = pairing.load_paired()
    assert [w.name for w in paired] == [names[1]] and paired[0].twin
    where = (paired[0].label, paired[0].limb, paired[0].placement)
    assert where == ("right-thigh", "right", "thigh")
    assert _mode(pairing.paired_path()) == 0o600
    # collect now takes the paired wearable, and only it (pairing again on connect: a new twin).
    assert main(_collect_args(tmp_path, "two-sensors", "mine")) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "mine.json").read_text())
    assert [d["name"] for d in summary["devices"]] == ["right-thigh"], out  # the name given
    assert summary["samples_received"] > 0
    # Everything the session left behind is the user's alone.
    assert _mode(tmp_path / "mine.tlsession") == 0o600
    from tremorlift.coach.history import index_path

    assert index_path().exists() and _mode(index_path()) == 0o600
    assert main(["pair", "--list"]) == 0
    listed = capsys.readouterr().out
    assert names[1] in listed and "right-thigh" in listed
