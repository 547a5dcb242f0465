"""Which wearables are yours: the paired-devices file, and pairing one (``tremorlift pair``).

The wearable only takes commands over an encrypted, bonded link (docs/protocol.md, 9). The
bond itself (the keys) is kept by the operating system's Bluetooth stack (BlueZ,
CoreBluetooth, WinRT) and by the wearable; this module only records which wearables the user
paired, so ``tremorlift collect`` connects to those and to no one else's unless told to.

The file is ``paired.json`` in the user's data folder (``tremorlift.paths``), readable by the
user only (0600), replaced atomically on every change::

    {"version": 1, "wearables": [{"address": "F3:12:34:56:1A:2B", "name": "TL-1A2B",
                                  "paired_utc": "2026-11-22T02:00:00Z", "twin": false}]}

The digital twin: a twin wearable keeps its bonds in memory for the life of the emulated
board, so a bond made by ``tremorlift pair --simulate`` is gone when that process ends while
the record here stays. Twin sessions therefore pair again on connect when a command is refused
for want of encryption (``link_options``); the record still decides whom the collector
connects to.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tremorlift import paths, protocol
from tremorlift.errors import UserError

if TYPE_CHECKING:  # bleak is only imported when a radio is used
    from tremorlift.transport.ble import BleLink, FoundWearable

FILE_NAME = "paired.json"
FILE_VERSION = 1
RESPONSE_TIMEOUT_S = 3.0
_CHECK_TOKEN = 0x5A


@dataclass(frozen=True)
class PairedWearable:
    address: str
    name: str
    paired_utc: str
    twin: bool = False


def paired_path() -> Path:
    return paths.data_dir() / FILE_NAME


def load_paired(path: Path | None = None) -> list[PairedWearable]:
    """The paired wearables, oldest first ([] when nothing was paired yet)."""
    p = paired_path() if path is None else path
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UserError(
            f"{p}: cannot read the paired-devices file ({exc.strerror or exc})"
        ) from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
            raise ValueError(f"not a version {FILE_VERSION} paired-devices file")
        return [
            PairedWearable(
                str(w["address"]), str(w["name"]), str(w["paired_utc"]), bool(w.get("twin", False))
            )
            for w in data["wearables"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"{p}: damaged paired-devices file ({exc}); move it away and pair again"
        ) from None


def _save(wearables: list[PairedWearable], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = json.dumps(
        {"version": FILE_VERSION, "wearables": [asdict(w) for w in wearables]}, indent=2
    )
    # mkstemp creates the file 0600; the rename makes the change all-or-nothing.
    fd, tmp = tempfile.mkstemp(prefix=".paired-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def record_paired(
    address: str,
    name: str,
    *,
    twin: bool = False,
    now: dt.datetime | None = None,
    path: Path | None = None,
) -> PairedWearable:
    """Add (or refresh) a wearable in the paired-devices file."""
    p = paired_path() if path is None else path
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = PairedWearable(address.upper(), name, stamp, twin)
    kept = [w for w in load_paired(p) if w.address.upper() != entry.address]
    try:
        _save([*kept, entry], p)
    except OSError as exc:
        raise UserError(
            f"{p}: cannot write the paired-devices file ({exc.strerror or exc})"
        ) from None
    return entry


def forget(target: str, *, path: Path | None = None) -> PairedWearable | None:
    """Remove a wearable (by name or address) from the file; the one removed, or None."""
    p = paired_path() if path is None else path
    wearables = load_paired(p)
    gone = find(wearables, target, target)
    if gone is None:
        return None
    _save([w for w in wearables if w is not gone], p)
    return gone


def find(wearables: list[PairedWearable], address: str, name: str) -> PairedWearable | None:
    """The record for this address (or, failing that, this name), if any."""
    for w in wearables:
        if w.address.upper() == address.upper():
            return w
    for w in wearables:
        if w.name.upper() == name.upper():
            return w
    return None


def no_paired_message(simulate: str | None) -> str:
    how = f"tremorlift pair --simulate {simulate}" if simulate else "tremorlift pair"
    return (
        f"no paired wearable: pair yours first with `{how}`, name one with --device, "
        "or pass --any to use any wearable in range"
    )


def only_paired(found: list[FoundWearable], simulate: str | None = None) -> list[FoundWearable]:
    """The wearables found that are in the paired-devices file (UserError if none is)."""
    paired = load_paired()
    if not paired:
        raise UserError(no_paired_message(simulate))
    mine = [w for w in found if find(paired, w.address, "") is not None]
    if not mine:
        seen = ", ".join(w.name for w in found) or "none"
        raise UserError(
            f"none of your paired wearables ({', '.join(w.name for w in paired)}) is in range "
            f"(seen: {seen}); name another with --device or pass --any"
        )
    return mine


def link_options(
    *, named: bool, twin: bool, name: str, address: str, emit: Callable[[str], None]
) -> dict[str, Any]:
    """Pairing arguments for the collector's ``BleLink`` to one wearable.

    A wearable named with --device that is not in the paired-devices file is paired on connect
    and recorded. In a twin session every link pairs on demand (the twin's bonds do not outlive
    its process). Otherwise the system's stack holds the bond, and a refused command is a
    ``PairingRequired`` error naming ``tremorlift pair``.
    """
    known = find(load_paired(), address, "") is not None
    pair_now = named and not known

    def on_paired(link: BleLink) -> None:
        emit(f"{link.name}: paired")
        if named and not known:
            record_paired(address, name, twin=twin)

    return {"pair": pair_now, "pair_on_demand": twin, "on_paired": on_paired, "name": name}


class _ResponseSink:
    """Collects the RESPONSE messages of a short pairing connection."""

    def __init__(self) -> None:
        self.responses: asyncio.Queue[protocol.Response] = asyncio.Queue()
        self.lost = False

    def on_message(self, message: bytes, host_time_s: float) -> None:
        if len(message) >= 2 and message[1] == protocol.MSG_RESPONSE:
            with contextlib.suppress(protocol.ProtocolError):
                self.responses.put_nowait(protocol.decode_response(message))

    def on_disconnect(self, reason: str) -> None:
        self.lost = True


def choose(found: list[FoundWearable], target: str | None) -> FoundWearable:
    """The wearable to pair: the one named, or the only one in range."""
    if target is not None:
        for w in found:
            if target.upper() in (w.name.upper(), w.address.upper()):
                return w
        raise UserError(
            f"wearable {target} not found (seen: {', '.join(w.name for w in found) or 'none'})"
        )
    if not found:
        raise UserError(
            "no tremorlift wearable found: is it on and advertising? (`tremorlift scan`)"
        )
    if len(found) > 1:
        raise UserError(
            f"{len(found)} wearables in range ({', '.join(w.name for w in found)}): choose one with --device"
        )
    return found[0]


async def pair_wearable(
    target: str | None,
    *,
    backend: type | None = None,
    scan_timeout_s: float = 5.0,
    twin: bool = False,
    emit: Callable[[str], None] = print,
) -> tuple[PairedWearable, protocol.Status]:
    """Scan, connect, pair, prove a control write now succeeds, and record the wearable.

    Returns the record and the STATUS read after pairing (its ENCRYPTED flag is set).
    """
    from tremorlift.transport import ble  # noqa: PLC0415 - bleak only when pairing

    found = await ble.scan(scan_timeout_s, backend=backend)
    w = choose(found, target)
    emit(f"pairing with {w.name} ({w.address})")
    sink = _ResponseSink()
    link = ble.BleLink(
        w.address, sink, backend=backend, kind="ble-twin" if twin else "ble", name=w.name
    )
    try:
        try:
            await link.open()
            await link.pair()
        except ConnectionError as exc:
            raise UserError(str(exc)) from None
        # A harmless command: the wearable answers it only over an encrypted link.
        try:
            await link.send_command(protocol.status_now(_CHECK_TOKEN))
            resp = await asyncio.wait_for(sink.responses.get(), RESPONSE_TIMEOUT_S)
            status = protocol.decode_status(await link.read_status())
        except (ConnectionError, TimeoutError, protocol.ProtocolError) as exc:
            raise UserError(
                f"{w.name}: paired, but the check command failed: {exc or 'no answer'}"
            ) from None
        if resp.opcode != protocol.OP_STATUS_NOW or not resp.ok:
            raise UserError(f"{w.name}: paired, but STATUS_NOW was answered {resp.result_name}")
        if not status.flags & protocol.ST_ENCRYPTED:
            raise UserError(f"{w.name}: paired, but the wearable reports an unencrypted link")
    finally:
        await link.close()
    return record_paired(w.address, w.name, twin=twin), status
