"""Which wearables are yours: the paired-devices file, and pairing one (``tremorlift pair``).

The wearable only takes commands over an encrypted, bonded link (docs/protocol.md, 9). The
bond itself (the keys) is kept by the operating system's Bluetooth stack (BlueZ,
CoreBluetooth, WinRT) and by the wearable; this module only records which wearables the user
paired, so ``tremorlift collect`` connects to those and to no one else's unless told to.

The file is ``paired.json`` in the user's data folder (``tremorlift.paths``), readable by the
user only (0600), replaced atomically on every change::

    {"version": 1, "wearables": [{"address": "F3:12:34:56:1A:2B", "name": "TL-1A2B",
                                  "paired_utc": "2026-11-22T02:00:00Z", "twin": false,
                                  "label": "left-forearm", "limb": "left",
                                  "placement": "forearm"}]}

``name`` is the name the wearable advertises; ``label`` the user's own name for it
(``tremorlift pair --name``), ``limb`` the side it is worn on (``left``/``right``, from the
label's ``left-``/``right-`` prefix or ``--limb``) and ``placement`` where on that limb (from
``--placement`` or a label ending in a placement, ``left-forearm``). All three are optional and
absent from files written before they existed. :func:`sensor_names` gives the collector
``{address: (name, limb)}``.

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
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tremorlift import paths, protocol
from tremorlift.analysis import PLACEMENTS
from tremorlift.errors import UserError
from tremorlift.store.files import write_atomic

if TYPE_CHECKING:  # bleak is only imported when a radio is used
    from tremorlift.transport.ble import BleLink, FoundWearable

FILE_NAME = "paired.json"
FILE_VERSION = 1
RESPONSE_TIMEOUT_S = 3.0
_CHECK_TOKEN = 0x5A
LIMBS = ("left", "right")
LABEL_MAX_CHARS = 24
# A label: ASCII letters and digits, with '-', '_' or '.' between them (no spaces, no control or
# look-alike characters), so it prints the same in a terminal, a CSV cell and a file name.
_LABEL = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*")
_ADDRESS = re.compile(r"(?:[0-9A-Fa-f]{2}[-:_.]){5}[0-9A-Fa-f]{2}")


@dataclass(frozen=True)
class PairedWearable:
    address: str
    name: str  # as the wearable advertises it
    paired_utc: str
    twin: bool = False
    label: str | None = None  # the user's name for it (``pair --name``)
    limb: str | None = None  # "left" | "right"
    placement: str | None = None  # one of analysis.PLACEMENTS

    @property
    def shown_name(self) -> str:
        """The user's name for the wearable, else the one it advertises."""
        return self.label or self.name


def check_label(label: str) -> str:
    """A valid ``--name`` (returned as given), else UserError saying what is allowed."""
    if not label:
        raise UserError("--name must not be empty")
    if len(label) > LABEL_MAX_CHARS or not _LABEL.fullmatch(label):
        shown = label if label.isprintable() else repr(label)
        raise UserError(
            f"--name {shown[:40]!r} is not a usable name: up to {LABEL_MAX_CHARS} ASCII letters "
            "and digits, joined by '-', '_' or '.' (e.g. left-forearm)"
        )
    if _ADDRESS.fullmatch(label):
        raise UserError(f"--name {label!r} looks like a Bluetooth address; choose a name")
    return label


def limb_from_label(label: str) -> str | None:
    """``left`` or ``right`` for a label starting ``left-``/``right-`` (or ``_``/``.``), else None."""
    low = label.lower()
    for limb in LIMBS:
        if len(low) > len(limb) and low.startswith(limb) and low[len(limb)] in "-_.":
            return limb
    return None


def placement_from_label(label: str) -> str | None:
    """The placement a label ends in (``left-forearm`` -> ``forearm``), else None."""
    last = re.split(r"[-_.]", label.lower())[-1]
    return last if last in PLACEMENTS else None


def label_settings(
    label: str | None, limb: str | None, placement: str | None
) -> tuple[str | None, str | None, str | None]:
    """(label, limb, placement) checked, with the limb and placement a label implies filled in.

    UserError when the label is not valid, when a limb or placement is not one of the allowed
    values, or when ``limb`` contradicts the label's own side (``--name left-arm --limb right``).
    """
    if label is not None:
        check_label(label)
    if limb is not None:
        limb = limb.lower()
        if limb not in LIMBS:
            raise UserError(f"--limb must be left or right, got {limb!r}")
    if placement is not None:
        placement = placement.lower()
        if placement not in PLACEMENTS:
            raise UserError(
                f"--placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}"
            )
    if label is not None:
        implied = limb_from_label(label)
        if implied is not None and limb is not None and implied != limb:
            raise UserError(f"--name {label} says {implied}, but --limb says {limb}")
        limb = limb or implied
        placement = placement or placement_from_label(label)
    return label, limb, placement


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
                str(w["address"]),
                str(w["name"]),
                str(w["paired_utc"]),
                bool(w.get("twin", False)),
                _optional(w, "label"),
                _optional(w, "limb", LIMBS),
                _optional(w, "placement", PLACEMENTS),
            )
            for w in data["wearables"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"{p}: damaged paired-devices file ({exc}); move it away and pair again"
        ) from None


def _optional(w: dict[str, Any], key: str, allowed: tuple[str, ...] | None = None) -> str | None:
    value = w.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or (allowed is not None and value not in allowed):
        raise ValueError(f"{key} {value!r} of {w.get('address')} is not valid")
    if key == "label" and not _LABEL.fullmatch(value):
        raise ValueError(f"label {value!r} of {w.get('address')} is not valid")
    return value


def _save(wearables: list[PairedWearable], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Unset optional fields are left out: the file stays readable by earlier versions' readers.
    rows = [{k: v for k, v in asdict(w).items() if v is not None} for w in wearables]
    body = json.dumps({"version": FILE_VERSION, "wearables": rows}, indent=2)
    write_atomic(path, body + "\n", private=True)  # whole or not at all, 0600


def _check_label_free(wearables: list[PairedWearable], address: str, label: str | None) -> None:
    """UserError when another wearable already answers to ``label``."""
    if label is None:
        return
    for w in wearables:
        if w.address.upper() == address.upper():
            continue
        if label.upper() in ((w.label or "").upper(), w.name.upper()):
            raise UserError(
                f"--name {label}: already the name of {w.shown_name} ({w.address}); "
                "choose another or rename that one first"
            )


def _write(wearables: list[PairedWearable], p: Path) -> None:
    try:
        _save(wearables, p)
    except OSError as exc:
        raise UserError(
            f"{p}: cannot write the paired-devices file ({exc.strerror or exc})"
        ) from None


def record_paired(
    address: str,
    name: str,
    *,
    twin: bool = False,
    label: str | None = None,
    limb: str | None = None,
    placement: str | None = None,
    now: dt.datetime | None = None,
    path: Path | None = None,
) -> PairedWearable:
    """Add (or refresh) a wearable in the paired-devices file.

    A wearable paired again keeps the label, limb and placement it had unless new ones are given.
    """
    p = paired_path() if path is None else path
    label, limb, placement = label_settings(label, limb, placement)
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    wearables = load_paired(p)
    _check_label_free(wearables, address, label)
    old = next((w for w in wearables if w.address.upper() == address.upper()), None)
    if old is not None and label is None:
        label = old.label
        limb = limb or old.limb
        placement = placement or old.placement
    entry = PairedWearable(address.upper(), name, stamp, twin, label, limb, placement)
    kept = [w for w in wearables if w.address.upper() != entry.address]
    _write([*kept, entry], p)
    return entry


def rename(
    target: str,
    label: str | None,
    *,
    limb: str | None = None,
    placement: str | None = None,
    path: Path | None = None,
) -> PairedWearable:
    """Give a paired wearable (found by address, advertised name or label) a new label, limb or
    placement, keeping the rest of its record. UserError if it is not paired or the label is
    taken. A new label without ``limb`` takes the side it implies, else keeps the old one."""
    p = paired_path() if path is None else path
    wearables = load_paired(p)
    w = find(wearables, target, target)
    if w is None:
        raise UserError(f"{target}: not in the paired list ({p}); pair it first")
    label, limb, placement = label_settings(label, limb, placement)
    _check_label_free(wearables, w.address, label)
    new = PairedWearable(
        w.address,
        w.name,
        w.paired_utc,
        w.twin,
        label if label is not None else w.label,
        limb or w.limb,
        placement or w.placement,
    )
    if label is not None and limb is None:
        # A new name that says its side wins over the old side; one that says none keeps it.
        new = PairedWearable(**{**asdict(new), "limb": limb_from_label(label) or w.limb})
    _write([new if x is w else x for x in wearables], p)
    return new


def sensor_names(path: Path | None = None) -> dict[str, tuple[str, str | None]]:
    """``{address (upper case): (name, limb)}`` for every paired wearable: the user's name for it
    (its advertised name when it has none) and its limb (``"left"``, ``"right"`` or None)."""
    return {w.address.upper(): (w.shown_name, w.limb) for w in load_paired(path)}


def sensor_name(address: str, device_name: str, path: Path | None = None) -> tuple[str, str | None]:
    """(name, limb) of one wearable: found by its BLE address, else (over USB serial, where the
    address is the port) by the name it reports in INFO; ``(device_name, None)`` if unpaired."""
    wearables = load_paired(path)
    w = find(wearables, address, "")
    if w is None:
        w = next((x for x in wearables if x.name.upper() == device_name.upper()), None)
    return (device_name, None) if w is None else (w.shown_name, w.limb)


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
    """The record for this address (or, failing that, this label or advertised name), if any."""
    for w in wearables:
        if w.address.upper() == address.upper():
            return w
    if not name:
        return None
    for w in wearables:
        if (w.label or "").upper() == name.upper():
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
            f"none of your paired wearables ({', '.join(w.shown_name for w in paired)}) is in range "
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
    label: str | None = None,
    limb: str | None = None,
    placement: str | None = None,
    emit: Callable[[str], None] = print,
) -> tuple[PairedWearable, protocol.Status]:
    """Scan, connect, pair, prove a control write now succeeds, and record the wearable (with
    ``label``, ``limb`` and ``placement`` when given: see :func:`label_settings`).

    Returns the record and the STATUS read after pairing (its ENCRYPTED flag is set).
    """
    from tremorlift.transport import ble  # noqa: PLC0415 - bleak only when pairing

    label_settings(label, limb, placement)  # a bad name is refused before the radio starts
    found = await ble.scan(scan_timeout_s, backend=backend)
    w = choose(found, target)
    _check_label_free(load_paired(), w.address, label)
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
    entry = record_paired(w.address, w.name, twin=twin, label=label, limb=limb, placement=placement)
    return entry, status
