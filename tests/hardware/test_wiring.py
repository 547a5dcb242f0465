"""hardware/wiring.csv against the firmware's config.py, the chips' datasheets and the drawings.

The firmware's pins live only in firmware/lib/tremorlift_fw/config.py; the
wiring table says where each one is soldered. `wiring_errors` compares them in
both directions and applies the electrical rules of each chip. The mutation
tests below prove that it catches the mistakes it is meant to catch.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("draw_wiring", ROOT / "tools" / "draw_wiring.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["draw_wiring"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


dw = _load_tool()

# Keys of a BOARDS entry that are GPIO numbers (the rest are options such as chip, i2c_id).
PIN_KEYS = ("sda", "scl", "imu_int", "led", "haptic", "battery_adc", "safe_mode_pin")
# Pins the firmware drives: a strapping pin here could change how the chip boots.
OUTPUT_KEYS = frozenset({"sda", "scl", "led", "haptic"})


@dataclasses.dataclass(frozen=True)
class Chip:
    """Datasheet facts the wiring must respect."""

    gpios: frozenset[int]  # GPIOs that exist on the chip
    strapping: frozenset[int]  # sampled at reset (boot mode, flash voltage, ...)
    adc1: frozenset[int]  # ADC1 channels; ADC2 is shared with the radio
    reserved: frozenset[int]  # flash/PSRAM/USB: never for our use
    input_only: frozenset[int]
    boot_button: int


CHIPS = {
    # ESP32 datasheet: strapping GPIO0, 2, 5 (MTDI 12, MTDO 15); ADC1 = GPIO32-39,
    # ADC2 cannot be read while the radio is on; GPIO6-11 are the flash bus; 34-39 input only.
    "esp32": Chip(
        gpios=frozenset(set(range(0, 40)) - {20, 24, 28, 29, 30, 31}),
        strapping=frozenset({0, 2, 5, 12, 15}),
        adc1=frozenset(range(32, 40)),
        reserved=frozenset(range(6, 12)),
        input_only=frozenset(range(34, 40)),
        boot_button=0,
    ),
    # ESP32-S3 datasheet: strapping GPIO0, 3, 45, 46; ADC1 = GPIO1-10; GPIO26-32 flash,
    # 33-37 octal PSRAM (the XIAO's module has it), 19/20 USB.
    "esp32s3": Chip(
        gpios=frozenset(set(range(0, 22)) | set(range(26, 49))),
        strapping=frozenset({0, 3, 45, 46}),
        adc1=frozenset(range(1, 11)),
        reserved=frozenset(set(range(26, 38)) | {19, 20}),
        input_only=frozenset(),
        boot_button=0,
    ),
    # ESP32-C3 datasheet: strapping GPIO2, 8, 9; ADC1 = GPIO0-4 (ADC2 = GPIO5 is not
    # usable with the radio); GPIO12-17 flash, 18/19 USB.
    "esp32c3": Chip(
        gpios=frozenset(range(0, 22)),
        strapping=frozenset({2, 8, 9}),
        adc1=frozenset(range(0, 5)),
        reserved=frozenset(set(range(12, 18)) | {18, 19}),
        input_only=frozenset(),
        boot_button=9,
    ),
}

# Board silkscreen label -> GPIO (Seeed XIAO pin lists; DevKitC labels are IO<n>).
BOARD_LABELS: dict[str, dict[str, int]] = {
    "xiao-esp32s3": {
        "D0": 1,
        "D1": 2,
        "D2": 3,
        "D3": 4,
        "D4": 5,
        "D5": 6,
        "D6": 43,
        "D7": 44,
        "D8": 7,
        "D9": 8,
        "D10": 9,
        "LED": 21,
        "BOOT": 0,
    },
    "xiao-esp32c3": {
        "D0": 2,
        "D1": 3,
        "D2": 4,
        "D3": 5,
        "D4": 6,
        "D5": 7,
        "D6": 21,
        "D7": 20,
        "D8": 8,
        "D9": 9,
        "D10": 10,
        "BOOT": 9,
    },
    "esp32-devkitc": {**{f"IO{n}": n for n in CHIPS["esp32"].gpios}, "BOOT": 0},
}


def wiring_errors(config: dict[str, object], rows: list) -> list[str]:  # type: ignore[type-arg]
    """Every disagreement between config and the table, and every broken electrical rule."""
    errors: list[str] = []
    boards = config.get("BOARDS")
    if not isinstance(boards, dict):
        return ["config.py has no BOARDS dict"]
    table_boards = {r.board for r in rows}
    for board in sorted(table_boards - set(boards)):
        errors.append(f"wiring.csv board {board!r} is not a key of config.BOARDS")
    for board in sorted(set(boards) - table_boards):
        errors.append(f"config.BOARDS[{board!r}] has no rows in wiring.csv")

    for board, pins in sorted(boards.items()):
        board_rows = [r for r in rows if r.board == board]
        if not board_rows:
            continue
        chip = CHIPS.get(str(pins.get("chip")))
        if chip is None:
            errors.append(f"{board}: unknown chip {pins.get('chip')!r}")
            continue
        by_key: dict[str, list] = {}  # type: ignore[type-arg]
        for r in board_rows:
            if r.config_key:
                by_key.setdefault(r.config_key, []).append(r)
            if r.gpio is not None and not r.config_key:
                errors.append(f"{board}: {r.ref}.{r.pin} has GPIO{r.gpio} but no config_key")
            if r.config_key and r.gpio is None:
                errors.append(f"{board}: {r.ref}.{r.pin} names {r.config_key} but has no gpio")
            if r.gpio is not None and r.ref != "U1":
                errors.append(f"{board}: GPIO{r.gpio} given on {r.ref}, not on the board U1")

        # Config -> table.
        for key in PIN_KEYS:
            gpio = pins.get(key)
            found = by_key.get(key, [])
            if gpio is None:
                if found:
                    errors.append(f"{board}: {key} is None in config.py but wired in wiring.csv")
                continue
            if not found:
                errors.append(f"{board}: config {key}=GPIO{gpio} is missing from wiring.csv")
            for r in found:
                if r.gpio != gpio:
                    errors.append(
                        f"{board}: {key} is GPIO{gpio} in config.py but GPIO{r.gpio} "
                        f"({r.ref}.{r.pin}) in wiring.csv"
                    )
        # Table -> config.
        for key in sorted(set(by_key) - set(PIN_KEYS)):
            errors.append(f"{board}: wiring.csv config_key {key!r} is not a pin key config knows")
        for key in sorted(set(by_key) & set(PIN_KEYS)):
            if key not in pins:
                errors.append(f"{board}: wiring.csv wires {key} but config.BOARDS lacks it")

        # Electrical rules.
        used: dict[int, str] = {}
        for key in PIN_KEYS:
            gpio = pins.get(key)
            if gpio is None:
                continue
            if not isinstance(gpio, int) or gpio not in chip.gpios:
                errors.append(f"{board}: {key}=GPIO{gpio} does not exist on {pins['chip']}")
                continue
            if gpio in used:
                errors.append(f"{board}: GPIO{gpio} used twice ({used[gpio]} and {key})")
            used[gpio] = key
            if gpio in chip.reserved:
                errors.append(f"{board}: {key}=GPIO{gpio} is a flash/PSRAM/USB pin")
            if key in OUTPUT_KEYS and gpio in chip.input_only:
                errors.append(f"{board}: {key}=GPIO{gpio} is input-only")
            if key == "haptic" and gpio in chip.strapping:
                # The base resistor and transistor load the pin at reset: never allowed.
                errors.append(f"{board}: haptic=GPIO{gpio} is a strapping pin")
        if pins.get("battery_adc") is not None and pins["battery_adc"] not in chip.adc1:
            errors.append(
                f"{board}: battery_adc=GPIO{pins['battery_adc']} is not an ADC1 channel "
                "(ADC2 is unusable while BLE runs)"
            )
        if pins.get("safe_mode_pin") is not None and pins["safe_mode_pin"] != chip.boot_button:
            errors.append(
                f"{board}: safe_mode_pin=GPIO{pins['safe_mode_pin']} is not the BOOT button "
                f"(GPIO{chip.boot_button})"
            )
        for r in board_rows:
            if r.gpio is None:
                continue
            if r.gpio in chip.strapping and not r.exception:
                errors.append(
                    f"{board}: {r.ref}.{r.pin} uses strapping pin GPIO{r.gpio} "
                    "without an exception in wiring.csv"
                )
            if r.exception and r.gpio not in chip.strapping:
                errors.append(f"{board}: {r.ref}.{r.pin} has an exception but is no strapping pin")
            labels = BOARD_LABELS.get(board, {})
            if labels and labels.get(r.pin) != r.gpio:
                errors.append(
                    f"{board}: board pin {r.pin} is GPIO{labels.get(r.pin)}, not GPIO{r.gpio}"
                )
        gpio_nets: dict[int, set[str]] = {}
        for r in board_rows:
            if r.gpio is not None:
                gpio_nets.setdefault(r.gpio, set()).add(r.net)
        for gpio, nets in sorted(gpio_nets.items()):
            if len(nets) > 1:
                errors.append(f"{board}: GPIO{gpio} is on several nets {sorted(nets)}")
    return errors


# --- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="module")
def config_text() -> str:
    return dw.CONFIG_PY.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def rows() -> list:  # type: ignore[type-arg]
    return dw.load_wiring()


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"mutation anchor {old!r} must occur once"
    return text.replace(old, new)


# --- the real files ----------------------------------------------------------------


def test_config_is_parsed_without_micropython(config_text: str) -> None:
    config = dw.parse_config_text(config_text)
    assert set(config["BOARDS"]) == {"xiao-esp32s3", "xiao-esp32c3", "esp32-devkitc"}
    assert config["BATTERY_DIVIDER_NUM"] == 2  # const(2) unwrapped


def test_firmware_pins_agree_with_wiring_table(config_text: str, rows: list) -> None:  # type: ignore[type-arg]
    assert wiring_errors(dw.parse_config_text(config_text), rows) == []


def test_every_config_pin_is_in_the_table(config_text: str, rows: list) -> None:  # type: ignore[type-arg]
    boards = dw.parse_config_text(config_text)["BOARDS"]
    wired = {(r.board, r.config_key, r.gpio) for r in rows if r.config_key}
    for board, pins in boards.items():
        for key in PIN_KEYS:
            if pins[key] is not None:
                assert (board, key, pins[key]) in wired


def test_every_net_connects_two_pins_or_is_on_board(rows: list) -> None:  # type: ignore[type-arg]
    nets: dict[tuple[str, str], list] = {}  # type: ignore[type-arg]
    for r in rows:
        nets.setdefault((r.board, r.net), []).append(r)
    for (board, net), nodes in nets.items():
        if len(nodes) == 1:
            assert "on-board" in nodes[0].note, f"{board} net {net} has one pin only"


def test_no_part_pin_is_on_two_nets(rows: list) -> None:  # type: ignore[type-arg]
    seen: dict[tuple[str, str, str], str] = {}
    for r in rows:
        key = (r.board, r.ref, r.pin)
        assert key not in seen, f"{key} is on {seen[key]} and {r.net}"
        seen[key] = r.net


# --- the check can fail ------------------------------------------------------------


def test_mutated_config_pin_is_caught(config_text: str, rows: list) -> None:  # type: ignore[type-arg]
    mutated = _replace_once(config_text, '"sda": 5,  # D4', '"sda": 7,  # D4')
    errors = wiring_errors(dw.parse_config_text(mutated), rows)
    assert any("xiao-esp32s3: sda is GPIO7 in config.py but GPIO5" in e for e in errors), errors


def test_pin_missing_from_table_is_caught(config_text: str, rows: list) -> None:  # type: ignore[type-arg]
    trimmed = [r for r in rows if not (r.board == "xiao-esp32c3" and r.config_key == "imu_int")]
    errors = wiring_errors(dw.parse_config_text(config_text), trimmed)
    assert any("config imu_int=GPIO5 is missing" in e for e in errors), errors


def test_pin_unknown_to_config_is_caught(config_text: str, rows: list) -> None:  # type: ignore[type-arg]
    extra = dw.WiringRow("esp32-devkitc", "BUZZER", "U1", "IO26", 26, "buzzer", "", "")
    errors = wiring_errors(dw.parse_config_text(config_text), [*rows, extra])
    assert any("'buzzer' is not a pin key" in e for e in errors), errors


def test_board_unknown_to_config_is_caught(config_text: str, rows: list) -> None:  # type: ignore[type-arg]
    extra = dw.WiringRow("xiao-esp32c6", "GND", "U1", "GND", None, "", "", "")
    errors = wiring_errors(dw.parse_config_text(config_text), [*rows, extra])
    assert any("'xiao-esp32c6' is not a key" in e for e in errors), errors


def _move_pin(config_text: str, rows: list, board: str, key: str, old: str, new: str, gpio: int):  # type: ignore[no-untyped-def,type-arg]
    """Move one pin consistently in config and table, so only the electrical rules can object."""
    config = dw.parse_config_text(_replace_once(config_text, old, new))
    moved = [
        dataclasses.replace(r, gpio=gpio, pin=_label_for(board, gpio))
        if r.board == board and r.config_key == key
        else r
        for r in rows
    ]
    return wiring_errors(config, moved)


def _label_for(board: str, gpio: int) -> str:
    return next(label for label, n in BOARD_LABELS[board].items() if n == gpio)


def test_haptic_on_strapping_pin_is_caught(config_text: str, rows: list) -> None:  # type: ignore[type-arg]
    errors = _move_pin(
        config_text, rows, "xiao-esp32c3", "haptic", '"haptic": 4,', '"haptic": 2,', 2
    )
    assert "xiao-esp32c3: haptic=GPIO2 is a strapping pin" in errors
    assert any("strapping pin GPIO2 without an exception" in e for e in errors)


def test_battery_on_adc2_is_caught(config_text: str, rows: list) -> None:  # type: ignore[type-arg]
    errors = _move_pin(
        config_text,
        rows,
        "xiao-esp32c3",
        "battery_adc",
        '"battery_adc": 3,',
        '"battery_adc": 5,',
        5,
    )
    assert any("battery_adc=GPIO5 is not an ADC1 channel" in e for e in errors), errors


def test_devkitc_battery_on_adc2_is_caught(config_text: str, rows: list) -> None:  # type: ignore[type-arg]
    errors = _move_pin(
        config_text,
        rows,
        "esp32-devkitc",
        "battery_adc",
        '"battery_adc": 34,',
        '"battery_adc": 26,',
        26,
    )
    assert any("battery_adc=GPIO26 is not an ADC1 channel" in e for e in errors), errors


def test_gpio_used_twice_is_caught(config_text: str, rows: list) -> None:  # type: ignore[type-arg]
    errors = _move_pin(
        config_text, rows, "xiao-esp32s3", "imu_int", '"imu_int": 4,', '"imu_int": 1,', 1
    )
    assert any("GPIO1 used twice" in e for e in errors), errors


def test_output_on_input_only_pin_is_caught(config_text: str, rows: list) -> None:  # type: ignore[type-arg]
    errors = _move_pin(
        config_text, rows, "esp32-devkitc", "haptic", '"haptic": 25,', '"haptic": 35,', 35
    )
    assert "esp32-devkitc: haptic=GPIO35 is input-only" in errors


def test_strapping_pin_without_exception_is_caught(config_text: str, rows: list) -> None:  # type: ignore[type-arg]
    bare = [dataclasses.replace(r, exception="") if r.config_key == "led" else r for r in rows]
    errors = wiring_errors(dw.parse_config_text(config_text), bare)
    assert any(
        "esp32-devkitc: U1.IO2 uses strapping pin GPIO2 without an exception" in e for e in errors
    )


def test_wrong_board_label_is_caught(config_text: str, rows: list) -> None:  # type: ignore[type-arg]
    relabelled = [
        dataclasses.replace(r, pin="D5")
        if r.board == "xiao-esp32s3" and r.config_key == "sda"
        else r
        for r in rows
    ]
    errors = wiring_errors(dw.parse_config_text(config_text), relabelled)
    assert "xiao-esp32s3: board pin D5 is GPIO6, not GPIO5" in errors


def test_safe_mode_off_the_boot_button_is_caught(config_text: str, rows: list) -> None:  # type: ignore[type-arg]
    errors = _move_pin(
        config_text,
        rows,
        "xiao-esp32c3",
        "safe_mode_pin",
        '"safe_mode_pin": 9,',
        '"safe_mode_pin": 8,',
        8,
    )
    assert any("safe_mode_pin=GPIO8 is not the BOOT button" in e for e in errors), errors


# --- the drawings ------------------------------------------------------------------------


@pytest.mark.parametrize("board", ["xiao-esp32s3", "xiao-esp32c3", "esp32-devkitc"])
def test_committed_svg_equals_a_fresh_render(board: str, rows: list) -> None:  # type: ignore[type-arg]
    fresh = dw.render_svg(board, rows, dw.load_bom())
    committed = dw.svg_path(board)
    assert committed.exists(), f"run python tools/draw_wiring.py to create {committed.name}"
    assert committed.read_text(encoding="utf-8") == fresh, (
        f"{committed.name} is stale: run python tools/draw_wiring.py"
    )


def test_svg_shows_every_table_row(rows: list) -> None:  # type: ignore[type-arg]
    svg = dw.render_svg("xiao-esp32c3", rows, dw.load_bom())
    for r in rows:
        if r.board == "xiao-esp32c3":
            assert f"{r.ref}.{dw._pin_label(r)}" in svg
            assert r.net in svg


def test_svg_changes_when_the_table_changes(rows: list) -> None:  # type: ignore[type-arg]
    bom = dw.load_bom()
    moved = [
        dataclasses.replace(r, net="I2C_SDA_X")
        if r.board == "xiao-esp32s3" and r.net == "I2C_SDA"
        else r
        for r in rows
    ]
    assert dw.render_svg("xiao-esp32s3", moved, bom) != dw.render_svg("xiao-esp32s3", rows, bom)


def test_readme_wire_list_equals_a_fresh_render(rows: list) -> None:  # type: ignore[type-arg]
    readme = dw.README.read_text(encoding="utf-8")
    assert dw.readme_with_wire_list(readme, rows) == readme, (
        "the wire list in hardware/README.md is stale: run python tools/draw_wiring.py"
    )


def test_readme_wire_list_follows_the_table(rows: list) -> None:  # type: ignore[type-arg]
    text = dw.wire_list_markdown(rows)
    assert "| I2C_SDA | U1 D4 (GPIO5), U2 SDA |" in text
    moved = [
        dataclasses.replace(r, pin="D9", gpio=8)
        if r.config_key == "sda" and r.board == "xiao-esp32s3"
        else r
        for r in rows
    ]
    assert dw.wire_list_markdown(moved) != text
