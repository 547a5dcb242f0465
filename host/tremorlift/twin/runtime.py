"""Which twin runs the firmware: the MicroPython twin or the CPython twin.

* ``micropython`` (:mod:`tremorlift.twin.micropython`): the firmware on the real MicroPython
  binary with the NimBLE host stack, one process per board, in real time. The default wherever
  the binary is built (``make micropython-twin``).
* ``cpython`` (:mod:`tremorlift.twin.wearable`): the firmware inside the host's own process, on
  the project's model of MicroPython's ``bluetooth`` module; it can run faster than real time
  and take the faults that reach into the board (I2C errors, a stalled IMU read, corrupted
  serial bytes).

:func:`choose` picks one and says why when it is not the one asked for (or the default);
:func:`make_fleet` builds its fleet; :func:`twin_info` is the summary's ``twin`` block.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tremorlift.errors import UserError

RUNTIMES = ("micropython", "cpython")
# Faults that act inside the board's process (twin/radio/faults.py): the CPython twin only.
IN_PROCESS_FAULTS = frozenset(("i2c-error", "fifo-overflow", "corrupt"))


def choose(
    requested: str | None,
    *,
    speed: float = 1.0,
    transport: str = "ble",
    fault_kinds: Iterable[str] = (),
) -> tuple[str, str | None]:
    """(runtime, note). ``requested`` None is the default: MicroPython where it can run.

    The note says why the CPython twin runs instead of the default. A MicroPython twin asked
    for explicitly that cannot run is a UserError naming the reason.
    """
    if requested not in (None, *RUNTIMES):
        raise UserError(f"unknown twin runtime {requested!r}: one of {', '.join(RUNTIMES)}")
    if requested == "cpython":
        return "cpython", None
    in_process = sorted(set(fault_kinds) & IN_PROCESS_FAULTS)
    reason = None
    if speed != 1.0:
        reason = f"the MicroPython twin runs in real time only (speed {speed:g} asked)"
    elif in_process:
        reason = f"the faults {', '.join(in_process)} reach into the board's process"
    else:
        from tremorlift.twin.micropython import build  # noqa: PLC0415

        reason = build.available()
    if reason is None:
        return "micropython", None
    if requested == "micropython":
        raise UserError(f"--twin micropython cannot run: {reason}")
    return "cpython", f"the CPython twin runs this session: {reason}"


def make_fleet(scenario: str, *, runtime: str, **kwargs: Any) -> Any:
    """The fleet of ``runtime`` (TwinFleet's interface either way), not started yet."""
    if runtime == "micropython":
        from tremorlift.twin.micropython.fleet import MicroPythonFleet  # noqa: PLC0415

        return MicroPythonFleet(scenario, **kwargs)
    from tremorlift.twin.wearable import TwinFleet  # noqa: PLC0415

    return TwinFleet(scenario, **kwargs)


def connection_interval_ms(radio: Any) -> float | None:
    """The connection interval the twin's radio paces its links at (ms), if it paces them."""
    if radio is None:
        return None
    for attr in ("connection_interval_ms", "conn_interval_ms", "conn_event_interval_ms"):
        value = getattr(radio, attr, None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def twin_info(fleet: Any) -> dict[str, Any]:
    """The summary's ``twin`` block: which runtime ran the firmware, on which MicroPython and
    BLE host, and the connection interval of its radio."""
    micropython = getattr(fleet, "runtime", "cpython") == "micropython"
    build = getattr(fleet, "build", None)
    return {
        "runtime": "micropython" if micropython else "cpython",
        "micropython_version": build.version if micropython and build is not None else None,
        "ble_host": "nimble" if micropython else "emulated",
        "connection_interval_ms": connection_interval_ms(getattr(fleet, "radio", None)),
    }
