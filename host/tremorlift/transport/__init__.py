"""Transports that carry protocol messages between a wearable and the collector.

A transport ("link") delivers every message the device sends (SAMPLES, RESPONSE, STATUS) to a
``MessageSink`` together with the host's receive time, and sends command bytes to the device.
``ble.py`` is the only module that imports bleak; ``serial.py`` the only one that imports pyserial;
``serial_framing.py`` frames the protocol for a byte stream; ``pairing.py`` keeps the bonds.
"""

from __future__ import annotations

from typing import Protocol


class MessageSink(Protocol):
    """Where a link delivers what it receives. Called from the event loop; must only enqueue."""

    def on_message(self, message: bytes, host_time_s: float) -> None: ...

    def on_disconnect(self, reason: str) -> None: ...


class Link(Protocol):
    """One connection to one wearable, whatever carries it."""

    kind: str  # "ble", "ble-twin" or "serial"
    address: str
    name: str

    async def open(self) -> None:
        """Connect and subscribe; after it returns every message reaches the sink."""

    async def send_command(self, command: bytes) -> None:
        """Send one command (docs/protocol.md section 6)."""

    async def read_info(self) -> bytes | None:
        """The INFO message read directly, or None where the transport has no such read."""

    async def close(self) -> None:
        """Disconnect; safe to call twice and after a link loss."""
