"""The firmware's own copies of the wire's values equal the host protocol module's.

MicroPython cannot import the host package, so the firmware keeps private ``const()`` copies of
what the protocol defines (frame layout in the ring, flags in the sampler, IMU kinds in the
drivers, command limits in control, GATT UUIDs in ble, battery limits in config). This test reads
the firmware sources with ``ast`` (under CPython, nothing is imported or run) and holds every copy
to ``tremorlift.protocol``, the one source; and it checks that every option in ``config.py`` is
read by the firmware, so no setting exists that changes nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from tremorlift import protocol

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
PACKAGE = FIRMWARE / "lib" / "tremorlift_fw"


def module_values(rel: str) -> dict[str, Any]:
    """Module-level ``NAME = const(LITERAL)`` and ``NAME = LITERAL`` of a firmware source."""
    tree = ast.parse((PACKAGE / rel).read_text(encoding="utf-8"), filename=rel)
    out: dict[str, Any] = {}
    for node in tree.body:
        if not (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            continue
        value = node.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            if value.func.id != "const" or len(value.args) != 1:
                continue
            value = value.args[0]
        try:
            out[node.targets[0].id] = ast.literal_eval(value)
        except ValueError:
            continue  # not a literal (a computed table, a call)
    return out


# (firmware module, its name, tremorlift.protocol's name)
COPIES = [
    ("ring.py", "_HEADER_BYTES", "HEADER_BYTES"),
    ("ring.py", "_SAMPLE_BYTES", "SAMPLE_BYTES"),
    ("ring.py", "_MAX_SAMPLES", "MAX_SAMPLES"),
    ("ring.py", "FRAME_BYTES", "MAX_SAMPLES_FRAME_BYTES"),
    ("sampler.py", "_FLAG_GAP_BEFORE", "FLAG_GAP_BEFORE"),
    ("sampler.py", "_FLAG_STREAM_START", "FLAG_STREAM_START"),
    ("drivers/_common.py", "SAMPLE_BYTES", "SAMPLE_BYTES"),
    ("drivers/_common.py", "IMU_NONE", "IMU_NONE"),
    ("drivers/_common.py", "IMU_MPU6050", "IMU_MPU6050"),
    ("drivers/_common.py", "IMU_MPU6500", "IMU_MPU6500"),
    ("drivers/_common.py", "IMU_ICM42688P", "IMU_ICM42688P"),
    ("control.py", "_MAX_RESEND", "RESEND_MAX_COUNT"),
    ("control.py", "_MAX_IDENTIFY_S", "IDENTIFY_MAX_S"),
    ("control.py", "TRANSPORT_BLE", "TRANSPORT_BLE"),
    ("control.py", "TRANSPORT_SERIAL", "TRANSPORT_SERIAL"),
    ("control.py", "ODRS_HZ", "CONFIGURE_ODRS_HZ"),
    ("control.py", "ACCEL_RANGES_G", "CONFIGURE_ACCEL_RANGES_G"),
    ("control.py", "GYRO_RANGES_DPS", "CONFIGURE_GYRO_RANGES_DPS"),
    ("ble.py", "SERVICE_UUID", "SERVICE_UUID"),
    ("ble.py", "DATA_UUID", "DATA_UUID"),
    ("ble.py", "CONTROL_UUID", "CONTROL_UUID"),
    ("ble.py", "STATUS_UUID", "STATUS_UUID"),
    ("ble.py", "INFO_UUID", "INFO_UUID"),
    ("ble.py", "_COMPANY_ID", "MANUFACTURER_ID"),
    ("config.py", "NAME_PREFIX", "NAME_PREFIX"),
    ("config.py", "BATTERY_EMPTY_MV", "BATTERY_EMPTY_MV"),
    ("config.py", "BATTERY_FULL_MV", "BATTERY_FULL_MV"),
]


@pytest.mark.parametrize(("module", "name", "host_name"), COPIES)
def test_firmware_copy_equals_the_protocol(module: str, name: str, host_name: str) -> None:
    values = module_values(module)
    assert name in values, f"{module} no longer defines {name}: update this table"
    assert values[name] == getattr(protocol, host_name), f"{module}:{name} != protocol.{host_name}"


def test_firmware_protocol_module_agrees_name_for_name() -> None:
    """The firmware's protocol.py uses the host's names: every public value both define agrees."""
    fw = {k: v for k, v in module_values("protocol.py").items() if not k.startswith("_")}
    shared = sorted(k for k in fw if hasattr(protocol, k))
    assert len(shared) >= 40, shared  # message types, flags, sizes, opcodes, results, status bits
    assert {k: fw[k] for k in shared} == {k: getattr(protocol, k) for k in shared}


def test_the_parser_reads_what_it_claims() -> None:
    """Guards the test itself: a copy that changed would be seen."""
    ring = module_values("ring.py")
    assert ring["_HEADER_BYTES"] == 16 and ring["FRAME_BYTES"] == 244
    assert module_values("control.py")["ODRS_HZ"] == (100, 200, 400, 1000)


def test_every_config_option_is_read_by_the_firmware() -> None:
    names = set(module_values("config.py"))
    tree = ast.parse((PACKAGE / "config.py").read_text(encoding="utf-8"))
    names |= {  # non-literal options (BOARDS is a dict of dicts: still a literal; be thorough)
        n.targets[0].id
        for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
    }
    read: set[str] = set()
    for path in [FIRMWARE / "main.py", *PACKAGE.rglob("*.py")]:
        if path.name == "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "config"
            ):
                read.add(node.attr)
    assert sorted(names - read) == []
