"""Draw the wiring diagram of each board from hardware/wiring.csv.

The table is the single description of the wiring: every part pin is drawn
with a short stub and the name of its net, so two pins with the same label are
wired together. Nothing about the wiring is typed here, which is why the
diagram cannot drift from the table (tests/hardware/test_wiring.py also checks
that the committed SVGs equal a fresh render).

    python tools/draw_wiring.py           # writes docs/wiring-<board>.svg and the
                                          # wire list in hardware/README.md
    python tools/draw_wiring.py --check   # exit 1 if either is stale

The module also holds the loaders the hardware tests use: `load_wiring`,
`load_bom` and `load_config` (which reads firmware/lib/tremorlift_fw/config.py
with `ast`, so it needs no MicroPython).
"""

from __future__ import annotations

import argparse
import ast
import csv
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIRING_CSV = ROOT / "hardware" / "wiring.csv"
BOM_CSV = ROOT / "hardware" / "bom.csv"
CONFIG_PY = ROOT / "firmware" / "lib" / "tremorlift_fw" / "config.py"
DOCS = ROOT / "docs"

WIRING_COLUMNS = ("board", "net", "ref", "pin", "gpio", "config_key", "exception", "note")

# Drawing geometry, in schemdraw units (1 unit = 0.5 inch at the default scale).
_PIN_PITCH = 0.7
_IC_WIDTH = 3.8
_STUB = 0.6
_MODULE_GAP = 8.5  # room for the net labels right of a module
_PART_GAP = 3.4
_PART_ROW_DROP = 3.0
_TEXT_LINE = 0.55


@dataclass(frozen=True)
class WiringRow:
    """One node of the netlist: a part pin on a net, for one board."""

    board: str
    net: str
    ref: str
    pin: str
    gpio: int | None
    config_key: str
    exception: str
    note: str


def load_wiring(path: Path = WIRING_CSV) -> list[WiringRow]:
    """Read wiring.csv; raise ValueError on a malformed row."""
    rows: list[WiringRow] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != WIRING_COLUMNS:
            raise ValueError(f"{path}: columns must be {','.join(WIRING_COLUMNS)}")
        for line_no, raw in enumerate(reader, start=2):
            gpio_text = raw["gpio"].strip()
            try:
                gpio = int(gpio_text) if gpio_text else None
            except ValueError:
                raise ValueError(f"{path}:{line_no}: gpio {gpio_text!r} is not a number") from None
            for column in ("board", "net", "ref", "pin"):
                if not raw[column].strip():
                    raise ValueError(f"{path}:{line_no}: empty {column}")
            rows.append(
                WiringRow(
                    board=raw["board"].strip(),
                    net=raw["net"].strip(),
                    ref=raw["ref"].strip(),
                    pin=raw["pin"].strip(),
                    gpio=gpio,
                    config_key=raw["config_key"].strip(),
                    exception=raw["exception"].strip(),
                    note=raw["note"].strip(),
                )
            )
    return rows


def load_bom(path: Path = BOM_CSV) -> list[dict[str, str]]:
    """Read bom.csv as a list of dicts (stripped strings)."""
    with path.open(newline="", encoding="utf-8") as f:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(f)]


def bom_rows_for(bom: list[dict[str, str]], board: str) -> list[dict[str, str]]:
    """BOM rows that apply to `board` (column `boards`: `all` or a `;` list)."""
    out = []
    for row in bom:
        boards = row["boards"]
        if boards == "all" or board in boards.split(";"):
            out.append(row)
    return out


def parse_config_text(text: str) -> dict[str, object]:
    """Module-level constants of config.py, evaluated without importing it.

    Handles `NAME = <literal>` and `NAME = const(<literal>)`; anything else is
    skipped. Using ast keeps MicroPython's `micropython.const` out of CPython.
    """
    values: dict[str, object] = {}
    for node in ast.parse(text).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if not isinstance(target, ast.Name):
            continue
        value = node.value
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id == "const"
            and len(value.args) == 1
        ):
            value = value.args[0]
        try:
            values[target.id] = ast.literal_eval(value)
        except ValueError:
            continue
    return values


def load_config(path: Path = CONFIG_PY) -> dict[str, object]:
    return parse_config_text(path.read_text(encoding="utf-8"))


def boards_in(rows: list[WiringRow]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.setdefault(row.board, None)
    return list(seen)


# --- drawing -------------------------------------------------------------------


def _pin_label(row: WiringRow) -> str:
    if row.gpio is None or row.pin == f"IO{row.gpio}":
        return row.pin
    return f"{row.pin} (GPIO{row.gpio})"


def _part_title(ref: str, board_bom: list[dict[str, str]]) -> str:
    """`R1 100k`, `Q1 SS8050`, `U2 MPU-6050 breakout GY-521 / ICM-42688-P breakout`."""
    parts = [r for r in board_bom if r["ref"] == ref]
    if not parts:
        return ref
    if ref.startswith("U"):
        return f"{ref} " + " / ".join(p["part"] for p in parts)
    return f"{ref} " + " / ".join(p["value"] or p["example_mpn"] for p in parts)


def _kind(ref: str) -> str:
    for prefix in ("BT", "SW", "U", "R", "C", "Q", "M"):
        if ref.startswith(prefix):
            return prefix
    if ref.startswith("D"):
        return "LED" if ref == "D2" else "D"
    raise ValueError(f"no symbol for part {ref}")


# Which end of a two-terminal symbol each pin name is (start = top when drawn down).
_TWO_PIN_ENDS = {
    "R": ("1", "2"),
    "C": ("1", "2"),
    "D": ("K", "A"),  # drawn upward from anode: cathode at the top, next to 3V3
    "LED": ("A", "K"),
    "M": ("+", "-"),
    "BT": ("+", "-"),
    "SW": ("COM", "ON"),
}


def render_svg(board: str, rows: list[WiringRow], bom: list[dict[str, str]]) -> str:
    """The wiring diagram of one board as SVG text (deterministic)."""
    import schemdraw
    import schemdraw.elements as elm

    schemdraw.use("svg")
    schemdraw.svgconfig.text = "text"  # plain <text>: no font files, same bytes everywhere

    board_rows = [r for r in rows if r.board == board]
    if not board_rows:
        raise ValueError(f"wiring.csv has no rows for board {board!r}")
    board_bom = bom_rows_for(bom, board)
    by_ref: dict[str, list[WiringRow]] = defaultdict(list)
    for row in board_rows:
        by_ref[row.ref].append(row)

    d = schemdraw.Drawing(show=False)
    d.config(fontsize=11, unit=2.0, lw=1.2, margin=1.5)  # room for text beyond the symbols
    d.add(
        elm.Label()
        .at((0, 2.2))
        .label(
            f"tremorlift wiring: {board}  (pins sharing a net name are wired together)",
            halign="left",
            fontsize=14,
        )
    )
    d.add(
        elm.Label()
        .at((0, 1.5))
        .label(
            "generated from hardware/wiring.csv by tools/draw_wiring.py: edit the table, not this file",
            halign="left",
            fontsize=9,
        )
    )

    modules = sorted((ref for ref in by_ref if _kind(ref) == "U"), key=lambda r: (len(r), r))
    discretes = sorted((ref for ref in by_ref if _kind(ref) != "U"), key=_discrete_order)

    x = 0.0
    lowest_y = 0.0
    for ref in modules:
        # schemdraw stacks right-side pins bottom-up; reversed, the table reads top-down.
        pins = list(reversed(by_ref[ref]))
        height = _PIN_PITCH * (len(pins) + 1)
        ic_pins = [
            elm.IcPin(name=_pin_label(p), side="right", anchorname=f"p{i}")
            for i, p in enumerate(pins)
        ]
        ic = d.add(
            elm.Ic(pins=ic_pins, size=(_IC_WIDTH, height), pinspacing=_PIN_PITCH)
            .at((x, -height))
            .label(_part_title(ref, board_bom), loc="top", fontsize=10)
        )
        for i, p in enumerate(pins):
            start = ic.absanchors[f"p{i}"]
            d.add(elm.Line().at(start).right().length(_STUB))
            d.add(
                elm.Label()
                .at((start.x + _STUB + 0.1, start.y))
                .label(p.net, halign="left", valign="center", fontsize=10, color="blue")
            )
        lowest_y = min(lowest_y, -height)
        x += _IC_WIDTH + _MODULE_GAP

    y_top = lowest_y - 2.0
    x = 0.5
    for ref in discretes:
        kind = _kind(ref)
        pin_rows = {p.pin: p for p in by_ref[ref]}
        title = _part_title(ref, board_bom)
        if kind == "Q":
            q = d.add(elm.BjtNpn(circle=True).at((x + 1.0, y_top - 1.5)).anchor("center"))
            d.add(elm.Label().at((x + 0.2, y_top + 0.9)).label(title, halign="left", fontsize=10))
            for pin_name, anchor, direction in (
                ("B", "base", "left"),
                ("C", "collector", "up"),
                ("E", "emitter", "down"),
            ):
                _stub_with_net(
                    d, elm, q.absanchors[anchor], direction, pin_rows[pin_name], pin_name
                )
            x += _PART_GAP + 1.0
            continue
        top_pin, bottom_pin = _TWO_PIN_ENDS[kind]
        symbol = {
            "R": elm.Resistor,
            "C": elm.Capacitor,
            "D": elm.Diode,
            "LED": elm.LED,
            "M": elm.Motor,
            "BT": elm.Battery,
            "SW": elm.Switch,
        }[kind]
        if kind == "D":
            # Flyback diode: anode at the bottom, so the symbol is drawn upward.
            part = d.add(symbol().at((x + 1.0, y_top - _PART_ROW_DROP)).up())
            top_xy, bottom_xy = part.absanchors["end"], part.absanchors["start"]
        else:
            part = d.add(symbol().at((x + 1.0, y_top)).down())
            top_xy, bottom_xy = part.absanchors["start"], part.absanchors["end"]
        d.add(
            elm.Label()
            .at((x + 1.35, y_top - _PART_ROW_DROP / 2))
            .label(title, halign="left", valign="center", fontsize=10)
        )
        _stub_with_net(d, elm, top_xy, "up", pin_rows[top_pin], top_pin)
        _stub_with_net(d, elm, bottom_xy, "down", pin_rows[bottom_pin], bottom_pin)
        x += _PART_GAP

    # Wire list: the same table read net by net, for whoever solders from the drawing.
    y = y_top - _PART_ROW_DROP - 2.4
    d.add(elm.Label().at((0, y)).label("Wire list", halign="left", fontsize=12))
    for net, nodes in _nets(board_rows):
        y -= _TEXT_LINE
        text = f"{net}:  " + "  --  ".join(nodes)
        d.add(elm.Label().at((0, y)).label(text, halign="left", fontsize=9))
    notes = [r for r in board_rows if r.note or r.exception]
    if notes:
        y -= _TEXT_LINE * 1.6
        d.add(elm.Label().at((0, y)).label("Notes", halign="left", fontsize=12))
        for r in notes:
            y -= _TEXT_LINE
            text = f"{r.ref}.{r.pin}: " + "; ".join(t for t in (r.note, r.exception) if t)
            d.add(elm.Label().at((0, y)).label(text, halign="left", fontsize=9))
    return d.get_imagedata("svg").decode("utf-8")


def _discrete_order(ref: str) -> tuple[int, str]:
    order = ("BT", "SW", "R", "C", "Q", "M", "D")
    for i, prefix in enumerate(order):
        if ref.startswith(prefix):
            return i, ref
    return len(order), ref


def _stub_with_net(d, elm, xy, direction: str, row: WiringRow, pin_name: str) -> None:  # type: ignore[no-untyped-def]
    line = elm.Line().at(xy)
    {"up": line.up, "down": line.down, "left": line.left}[direction]()
    d.add(line.length(_STUB))
    if direction == "up":
        at, halign, valign = (xy.x, xy.y + _STUB + 0.1), "center", "bottom"
    elif direction == "down":
        at, halign, valign = (xy.x, xy.y - _STUB - 0.1), "center", "top"
    else:
        at, halign, valign = (xy.x - _STUB - 0.1, xy.y), "right", "center"
    d.add(
        elm.Label().at(at).label(row.net, halign=halign, valign=valign, fontsize=10, color="blue")
    )
    d.add(
        elm.Label()
        .at((xy.x + 0.12, xy.y + (0.25 if direction == "up" else -0.25)))
        .label(pin_name, halign="left", valign="center", fontsize=7, color="gray")
    )


def _nets(board_rows: list[WiringRow]) -> list[tuple[str, list[str]]]:
    nets: dict[str, list[str]] = {}
    for r in board_rows:
        nets.setdefault(r.net, []).append(f"{r.ref}.{_pin_label(r)}")
    return list(nets.items())


def svg_path(board: str) -> Path:
    return DOCS / f"wiring-{board}.svg"


README = ROOT / "hardware" / "README.md"
_BEGIN = "<!-- wire-list:begin (generated by tools/draw_wiring.py from wiring.csv) -->"
_END = "<!-- wire-list:end -->"


def wire_list_markdown(rows: list[WiringRow]) -> str:
    """Per-board wire lists for hardware/README.md: one line per net, its pins joined."""
    out: list[str] = []
    for board in boards_in(rows):
        board_rows = [r for r in rows if r.board == board]
        out.append(f"#### {board}  ([diagram](../docs/wiring-{board}.svg))")
        out.append("")
        out.append("| net | join these pins | notes |")
        out.append("|---|---|---|")
        for net, _ in _nets(board_rows):
            members = [r for r in board_rows if r.net == net]
            pins = ", ".join(f"{r.ref} {_pin_label(r)}" for r in members)
            notes = "; ".join(
                f"{r.ref} {r.pin}: {t}" for r in members for t in (r.note, r.exception) if t
            )
            out.append(f"| {net} | {pins} | {notes} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def readme_with_wire_list(readme_text: str, rows: list[WiringRow]) -> str:
    """README text with the block between the wire-list markers regenerated."""
    start = readme_text.index(_BEGIN) + len(_BEGIN)
    end = readme_text.index(_END)
    return readme_text[:start] + "\n" + wire_list_markdown(rows) + readme_text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed SVG is stale")
    args = parser.parse_args(argv)
    rows = load_wiring()
    bom = load_bom()
    stale = []
    for board in boards_in(rows):
        svg = render_svg(board, rows, bom)
        path = svg_path(board)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != svg:
                stale.append(path)
        else:
            path.write_text(svg, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    readme = README.read_text(encoding="utf-8")
    fresh_readme = readme_with_wire_list(readme, rows)
    if args.check and fresh_readme != readme:
        stale.append(README)
    elif not args.check and fresh_readme != readme:
        README.write_text(fresh_readme, encoding="utf-8")
        print(f"wrote the wire list in {README.relative_to(ROOT)}")
    for path in stale:
        print(f"stale: {path.relative_to(ROOT)} (run python tools/draw_wiring.py)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
