"""A command's answer is a notification and can be lost: the channel repeats the commands that
may be repeated (same token) and never repeats the ones the lifter would feel twice."""

from __future__ import annotations

import asyncio

import pytest
from tremorlift import protocol
from tremorlift.collect import channel as channel_mod
from tremorlift.collect.channel import DeviceChannel
from tremorlift.collect.resend import CommandError


class LossyLink:
    """Answers every command, but the first ``lose`` answers never arrive."""

    address = "AA:BB:CC:DD:EE:FF"

    def __init__(self, ch: DeviceChannel, lose: int) -> None:
        self.ch = ch
        self.lose = lose
        self.sent: list[bytes] = []

    async def send_command(self, command: bytes) -> None:
        self.sent.append(command)
        if len(self.sent) <= self.lose:
            return
        answer = protocol.encode_response(command[0], command[1], protocol.RES_OK)
        asyncio.get_running_loop().call_soon(self.ch._handle, answer, 0.0)


def _channel(lose: int) -> tuple[DeviceChannel, LossyLink]:
    ch = DeviceChannel(None, "TL-TEST", lambda _ch: None, "ble")  # type: ignore[arg-type]
    link = LossyLink(ch, lose)
    ch.link = link  # type: ignore[assignment]
    return ch, link


@pytest.fixture(autouse=True)
def quick_repeat(monkeypatch):
    monkeypatch.setattr(channel_mod, "REPEAT_AFTER_S", 0.02)


def test_start_whose_answer_is_lost_is_repeated_with_the_same_token():
    async def go():
        ch, link = _channel(lose=2)
        resp = await ch.command(protocol.start(), timeout_s=1.0)
        return resp, link.sent

    resp, sent = asyncio.run(go())
    assert resp.ok and resp.opcode == protocol.OP_START
    assert len(sent) == 3 and len(set(sent)) == 1  # the same bytes, token included
    assert resp.token == sent[0][1]


def test_buzz_is_sent_once_even_when_its_answer_is_lost():
    async def go():
        ch, link = _channel(lose=1)
        with pytest.raises(CommandError, match="no answer to BUZZ"):
            await ch.command(protocol.buzz(1, 100), timeout_s=0.1)
        return link.sent

    assert len(asyncio.run(go())) == 1


def test_repeats_stop_at_the_command_timeout():
    async def go():
        ch, link = _channel(lose=1000)
        with pytest.raises(CommandError, match="no answer to GET_INFO"):
            await ch.command(protocol.get_info(), timeout_s=0.1)
        return link.sent, ch._pending

    sent, pending = asyncio.run(go())
    assert 3 <= len(sent) <= 6 and not pending


def test_which_commands_repeat():
    assert protocol.OP_BUZZ not in protocol.REPEATABLE_OPCODES
    assert protocol.OP_REBOOT not in protocol.REPEATABLE_OPCODES
    assert protocol.OP_RESEND not in protocol.REPEATABLE_OPCODES
    assert protocol.OP_START in protocol.REPEATABLE_OPCODES
