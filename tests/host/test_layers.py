"""The package's layers, checked on its import statements (including imports inside functions).

From the bottom: ``protocol`` (the wire) and ``analysis`` (pure signal analysis) stand alone;
``timebase`` knows only the wire; ``transport`` and ``store`` build on those; ``collect`` (the
live path) and ``coach`` (what is read afterwards) on top; ``commands`` and ``cli`` wire it all
to the command line. The digital twin is reached only by the commands and by the ``collect``
set-up, which starts it; everything else talks to a twin wearable as to a real one. What runs
under MicroPython (``twin/board``) imports nothing from the host package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "host" / "tremorlift"


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every tremorlift module (or package) the file imports, wherever the import is."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("tremorlift")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("tremorlift"):
                # "from tremorlift import protocol" imports tremorlift.protocol
                out |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
    return out


MODULES = {_module(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _importers_of(target: str) -> set[str]:
    return {m for m, imps in MODULES.items() if any(_within(i, target) for i in imps)}


def test_the_layout_is_found() -> None:
    assert "tremorlift.collect.setup" in MODULES and "tremorlift.analysis.engine" in MODULES
    assert MODULES["tremorlift.collect.setup"]  # the parser sees imports


def test_only_the_commands_and_the_collect_setup_reach_the_twin() -> None:
    allowed = ("tremorlift.twin", "tremorlift.commands", "tremorlift.collect.setup")
    offenders = sorted(
        m for m in _importers_of("tremorlift.twin") if not any(_within(m, a) for a in allowed)
    )
    assert offenders == []


@pytest.mark.parametrize(
    "layer, may_use",
    [
        ("tremorlift.analysis", ("tremorlift.analysis",)),
        ("tremorlift.protocol", ()),
        ("tremorlift.timebase", ("tremorlift.protocol",)),
        ("tremorlift.twin.board", ()),
        ("tremorlift.errors", ()),
        (
            "tremorlift.transport",
            (
                "tremorlift.transport",
                "tremorlift.protocol",
                "tremorlift.errors",
                "tremorlift.paths",
                "tremorlift.analysis",
                "tremorlift.store.files",
            ),
        ),  # fmt: skip
        (
            "tremorlift.store",
            (
                "tremorlift.store",
                "tremorlift.protocol",
                "tremorlift.timebase",
                "tremorlift.errors",
                "tremorlift.analysis",
                "tremorlift.paths",
                "tremorlift.__version__",
            ),
        ),  # fmt: skip
        (
            "tremorlift.coach",
            (
                "tremorlift.coach",
                "tremorlift.store",
                "tremorlift.analysis",
                "tremorlift.errors",
                "tremorlift.protocol",
                "tremorlift.paths",
            ),
        ),  # fmt: skip
    ],
)
def test_a_layer_imports_only_what_is_below_it(layer: str, may_use: tuple[str, ...]) -> None:
    bad = {
        m: sorted(i for i in imps if i != "tremorlift" and not any(_within(i, u) for u in may_use))
        for m, imps in MODULES.items()
        if _within(m, layer)
    }
    assert {m: i for m, i in bad.items() if i} == {}


def test_nothing_below_the_live_path_imports_it() -> None:
    for upper in (
        "tremorlift.collect",
        "tremorlift.coach",
        "tremorlift.commands",
        "tremorlift.cli",
    ):
        users = {
            m
            for m in _importers_of(upper)
            if not any(_within(m, u) for u in ("tremorlift.collect", "tremorlift.commands",
                                               "tremorlift.cli", "tremorlift.coach"))
        }  # fmt: skip
        assert users == set(), upper
