"""hardware/bom.csv: complete, consistent with the wiring table, the divider ratio in config.py
and the arithmetic of hardware/power.md."""

from __future__ import annotations

import importlib.util
import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import cast

import pytest

ROOT = Path(__file__).resolve().parents[2]
POWER_MD = ROOT / "hardware" / "power.md"

BOM_COLUMNS = [
    "ref", "option", "boards", "qty", "role", "part", "value", "manufacturer", "example_mpn",
    "unit_price_usd_min", "unit_price_usd_max", "alternatives", "notes",
]  # fmt: skip
# Parts that are wired (the rest, such as the case and the strap, are not in wiring.csv).
ELECTRICAL_PREFIXES = ("U", "R", "C", "D", "Q", "M", "BT", "SW")
# Highest voltage a LiPo reaches on charge, and the top of the ADC range at 11 dB
# attenuation that all three chips share (ESP32-C3 is the lowest, about 2.5 V).
CELL_FULL_V = Fraction(42, 10)
ADC_MAX_V = Fraction(25, 10)


def _load_tool():  # type: ignore[no-untyped-def]
    if "draw_wiring" in sys.modules:
        return sys.modules["draw_wiring"]
    spec = importlib.util.spec_from_file_location("draw_wiring", ROOT / "tools" / "draw_wiring.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["draw_wiring"] = module
    spec.loader.exec_module(module)
    return module


dw = _load_tool()


def parse_ohms(value: str) -> Fraction:
    """`100k` -> 100000, `4k7` -> 4700, `330R` -> 330, `1M` -> 1000000."""
    m = re.fullmatch(r"(\d+)([RkM])(\d*)", value)
    if not m:
        raise ValueError(f"not a resistor value: {value!r}")
    scale = {"R": 1, "k": 1_000, "M": 1_000_000}[m.group(2)]
    return Fraction(f"{m.group(1)}.{m.group(3) or 0}") * scale


def divider_ratio(board: str, rows: list, bom: list[dict[str, str]]) -> tuple[Fraction, str, str]:  # type: ignore[type-arg]
    """(R_top + R_bottom) / R_bottom of the battery divider, found from the netlist.

    The sense net is the one the board's battery_adc GPIO is on; the bottom resistor
    runs from it to GND, the top one from it to the cell side.
    """
    board_rows = [r for r in rows if r.board == board]
    sense = next(r.net for r in board_rows if r.config_key == "battery_adc")
    nets_of: dict[str, dict[str, str]] = {}
    for r in board_rows:
        nets_of.setdefault(r.ref, {})[r.pin] = r.net
    top = bottom = None
    top_net = ""
    for ref, pins in nets_of.items():
        if not ref.startswith("R") or sense not in pins.values():
            continue
        other = [net for net in pins.values() if net != sense]
        assert len(other) == 1, f"{board}: {ref} has both ends on {sense}"
        if other[0] == "GND":
            assert bottom is None, f"{board}: two resistors from {sense} to GND"
            bottom = ref
        else:
            assert top is None, f"{board}: two resistors into {sense}"
            top, top_net = ref, other[0]
    assert top and bottom, f"{board}: no complete divider on {sense}"
    values = {r["ref"]: r["value"] for r in dw.bom_rows_for(bom, board)}
    r_top, r_bottom = parse_ohms(values[top]), parse_ohms(values[bottom])
    return (r_top + r_bottom) / r_bottom, top_net, f"{top}={values[top]}, {bottom}={values[bottom]}"


@pytest.fixture(scope="module")
def bom() -> list[dict[str, str]]:
    return dw.load_bom()


@pytest.fixture(scope="module")
def rows() -> list:  # type: ignore[type-arg]
    return dw.load_wiring()


@pytest.fixture(scope="module")
def config() -> dict[str, object]:
    return dw.load_config()


def test_bom_columns_and_fields(bom: list[dict[str, str]]) -> None:
    with dw.BOM_CSV.open(encoding="utf-8") as f:
        assert f.readline().strip().split(",") == BOM_COLUMNS
    for row in bom:
        where = f"bom.csv {row['ref']} {row['option']}"
        assert int(row["qty"]) >= 1, where
        for column in ("role", "part", "manufacturer", "example_mpn", "boards"):
            assert row[column], f"{where}: empty {column}"
        low, high = float(row["unit_price_usd_min"]), float(row["unit_price_usd_max"])
        assert 0 < low <= high, f"{where}: price range {low}-{high}"


def test_bom_has_every_required_part(bom: list[dict[str, str]]) -> None:
    text = "\n".join(" ".join(r.values()) for r in bom)
    for needle in (
        "XIAO ESP32S3", "XIAO ESP32C3", "ESP32-DevKitC", "GY-521", "ICM-42688-P",
        "LiPo", "protection circuit", "charger", "vibration motor", "transistor",
        "flyback", "LED", "battery divider", "strap", "case",
    ):  # fmt: skip
        assert needle in text, f"bom.csv lacks {needle!r}"
    assert next(r for r in bom if r["example_mpn"] == "113991114")["ref"] == "U1"


def test_boards_in_bom_match_config(bom: list[dict[str, str]], config: dict[str, object]) -> None:
    boards = set(cast(dict[str, object], config["BOARDS"]))
    for row in bom:
        if row["boards"] != "all":
            assert set(row["boards"].split(";")) <= boards, row["ref"]
    assert {r["option"] for r in bom if r["ref"] == "U1"} == boards


def test_every_wired_part_is_in_the_bom_and_back(bom: list[dict[str, str]], rows: list) -> None:  # type: ignore[type-arg]
    for board in dw.boards_in(rows):
        wired = {r.ref for r in rows if r.board == board}
        listed = {
            r["ref"]
            for r in dw.bom_rows_for(bom, board)
            if r["ref"].startswith(ELECTRICAL_PREFIXES)
        }
        assert wired - listed == set(), f"{board}: wired but not in bom.csv"
        assert listed - wired == set(), f"{board}: in bom.csv but never wired"


@pytest.mark.parametrize("board", ["xiao-esp32s3", "xiao-esp32c3", "esp32-devkitc"])
def test_divider_matches_config(board: str, bom, rows, config) -> None:  # type: ignore[no-untyped-def]
    ratio, top_net, which = divider_ratio(board, rows, bom)
    configured = Fraction(config["BATTERY_DIVIDER_NUM"], config["BATTERY_DIVIDER_DEN"])
    assert ratio == configured, f"{board}: {which} gives {ratio}, config.py says {configured}"
    assert top_net == "VBAT", f"{board}: the divider must hang off the switched cell (VBAT)"
    assert CELL_FULL_V / ratio <= ADC_MAX_V, f"{board}: a full cell overdrives the ADC pin"


def test_divider_mismatch_is_caught(bom, rows, config) -> None:  # type: ignore[no-untyped-def]
    changed = [dict(r, value="200k") if r["ref"] == "R1" else r for r in bom]
    ratio, _, _ = divider_ratio("xiao-esp32s3", rows, changed)
    assert ratio == 3
    assert ratio != Fraction(config["BATTERY_DIVIDER_NUM"], config["BATTERY_DIVIDER_DEN"])


def test_parse_ohms() -> None:
    assert parse_ohms("100k") == 100_000
    assert parse_ohms("4k7") == 4_700
    assert parse_ohms("330R") == 330
    assert parse_ohms("1M") == 1_000_000
    with pytest.raises(ValueError):
        parse_ohms("100 kohm")


# --- power.md arithmetic ---------------------------------------------------------------


def _power_tables(text: str) -> list[list[float]]:
    """Numeric rows of every table whose header ends in `total (mA) | life (h) |`."""
    out: list[list[float]] = []
    in_table = False
    for line in text.splitlines():
        if line.startswith("| state |"):
            in_table = line.rstrip().endswith("| total (mA) | life (h) |")
            continue
        if in_table and line.startswith("|---"):
            continue
        if in_table and line.startswith("| "):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            out.append([float(c) for c in cells[1:]])
        else:
            in_table = False
    return out


def _usable_mah(text: str) -> tuple[int, float, int]:
    m = re.search(r"(\d+) mAh x ([0-9.]+) = (\d+) mAh", text)
    assert m, "power.md must state the usable capacity as `C mAh x k = U mAh`"
    return int(m.group(1)), float(m.group(2)), int(m.group(3))


def check_power_arithmetic(text: str) -> list[str]:
    errors = []
    capacity, derate, usable = _usable_mah(text)
    if round(capacity * derate) != usable:
        errors.append(f"{capacity} mAh x {derate} is not {usable} mAh")
    for values in _power_tables(text):
        *parts, total, life = values
        if abs(sum(parts) - total) > 0.051:
            errors.append(f"row {values}: parts add up to {sum(parts):.2f}, not {total}")
        if abs(usable / total - life) > 0.051:
            errors.append(f"row {values}: {usable} mAh / {total} mA = {usable / total:.2f} h")
    return errors


def test_power_budget_arithmetic() -> None:
    text = POWER_MD.read_text(encoding="utf-8")
    assert len(_power_tables(text)) == 20  # 4 builds x 5 states
    assert check_power_arithmetic(text) == []


def test_power_budget_arithmetic_slip_is_caught() -> None:
    text = POWER_MD.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| streaming 200 Hz |"))
    slipped = text.replace(row, row.replace("| 41.0 |", "| 40.0 |"), 1)
    assert slipped != text
    assert check_power_arithmetic(slipped) != []


def test_power_budget_uses_the_bom_cell(bom: list[dict[str, str]]) -> None:
    capacity, _, _ = _usable_mah(POWER_MD.read_text(encoding="utf-8"))
    cell = next(r for r in bom if r["ref"] == "BT1")
    assert cell["value"] == f"{capacity} mAh"
    assert "protection" in cell["part"]


def test_power_budget_says_it_is_not_measured() -> None:
    text = POWER_MD.read_text(encoding="utf-8")
    assert "Nothing has been measured" in text
    for source in ("[S1]", "[S3]", "[S5]", "[S6]", "[S7]"):
        assert text.count(source) >= 2, f"{source} is listed but never cited (or the reverse)"
