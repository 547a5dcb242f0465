"""The OpenSCAD case renders to a closed STL of the stated size, with the IMU axes on the lid.

Rendering needs the `openscad` program (Debian package `openscad`; `make hardware`
installs it when it can). Without it the render tests skip and only the source
checks run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCAD = ROOT / "hardware" / "enclosure" / "tremorlift_case.scad"
OPENSCAD = shutil.which("openscad")
needs_openscad = pytest.mark.skipif(OPENSCAD is None, reason="openscad is not installed")
RENDER_TIMEOUT_S = 120


def scad_number(name: str) -> float:
    m = re.search(rf"^{name} = ([0-9.]+);", SCAD.read_text(encoding="utf-8"), re.MULTILINE)
    assert m, f"{name} is not a plain number in {SCAD.name}"
    return float(m.group(1))


def scad_vector(name: str) -> list[float]:
    m = re.search(rf"^{name} = \[([0-9., ]+)\];", SCAD.read_text(encoding="utf-8"), re.MULTILINE)
    assert m, f"{name} is not a plain vector in {SCAD.name}"
    return [float(v) for v in m.group(1).split(",")]


def render(tmp_path: Path, name: str, **defines: str) -> Path:
    out = tmp_path / f"{name}.stl"
    # A coarser circle resolution keeps the test quick; the extremes (0 and 90 degrees)
    # stay on every circle, so the bounding boxes are exact.
    cmd = [str(OPENSCAD), "-o", str(out), "-D", "$fn=16"]
    for key, value in defines.items():
        cmd += ["-D", f"{key}={value}"]
    cmd.append(str(SCAD))
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "WARNING" not in result.stderr, result.stderr[-2000:]
    return out


def stl_facets(path: Path) -> list[tuple[float, float, float]]:
    """Vertices of an ASCII STL (OpenSCAD's default export)."""
    text = path.read_text(encoding="ascii")
    assert text.startswith("solid"), "expected an ASCII STL"
    return [
        (float(x), float(y), float(z))
        for x, y, z in re.findall(r"vertex\s+(\S+)\s+(\S+)\s+(\S+)", text)
    ]


def bbox(vertices: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    return tuple(max(v[i] for v in vertices) - min(v[i] for v in vertices) for i in range(3))  # type: ignore[return-value]


def test_source_declares_parts_and_axis_marks() -> None:
    text = SCAD.read_text(encoding="utf-8")
    for needle in (
        'part == "base"',
        'part == "lid"',
        'part == "all"',
        "module axis_marks",
        "strap_loop",
    ):
        assert needle in text
    assert "text(" not in text, "letters are strokes so no font is needed to render"


def test_case_fits_the_bom_cell() -> None:
    # BOM BT1: a cell up to 36 x 30 x 6 mm lies on two ledges, above the boards.
    cell_mm = (36.0, 30.0, 6.0)
    cavity = scad_vector("cavity")
    ledge_w, boss_d = scad_number("ledge_w"), scad_number("boss_d")
    floor_t, lip_h = scad_number("floor_t"), scad_number("lid_lip_h")
    ledge_top_mm = floor_t + 6.5  # ledge_z in the source
    assert re.search(r"^ledge_z = floor_t \+ 6\.5;", SCAD.read_text(encoding="utf-8"), re.MULTILINE)
    assert cavity[0] - 2 * boss_d >= cell_mm[0], "ledges shorter than the cell"
    assert cavity[1] - 2 * ledge_w <= cell_mm[1] - 2.0, "the cell must rest 1 mm on each ledge"
    assert cavity[1] >= cell_mm[1] + 1.0
    assert floor_t + cavity[2] - lip_h - ledge_top_mm >= cell_mm[2], "no room above the ledges"


@needs_openscad
def test_base_renders_to_the_stated_size(tmp_path: Path) -> None:
    vertices = stl_facets(render(tmp_path, "base", part='"base"'))
    cavity = scad_vector("cavity")
    wall, floor_t = scad_number("wall"), scad_number("floor_t")
    strap_t, loop_bar = scad_number("strap_t"), scad_number("loop_bar")
    size = bbox(vertices)
    assert size[0] == pytest.approx(cavity[0] + 2 * wall, abs=0.05)
    loops_mm = 2 * (strap_t + loop_bar + 0.6)
    assert size[1] == pytest.approx(cavity[1] + 2 * wall + loops_mm, abs=0.05)
    assert size[2] == pytest.approx(floor_t + cavity[2], abs=0.05)


@needs_openscad
def test_lid_carries_the_axis_marks(tmp_path: Path) -> None:
    marked = stl_facets(render(tmp_path, "lid", part='"lid"'))
    plain = stl_facets(render(tmp_path, "lid_plain", part='"lid"', show_axes="false"))
    # The engraving adds geometry but stays inside the lid's outline.
    assert len(marked) > len(plain) + 300
    assert bbox(marked) == pytest.approx(bbox(plain), abs=0.05)
