"""The package's five layers: who may import whom (shared/DESIGN.md, "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "convcalc"
LAYERS = ("calc", "compute", "io", "present", "cli")
"""Lowest first: a module imports from its own layer or the ones before it."""

TOP_LEVEL = {"__init__.py", "__main__.py", "errors.py", "py.typed"}


def layer_of(module: str) -> str | None:
    """The layer a dotted convcalc module belongs to, or None for the top level."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def imported_modules(source: str) -> set[str]:
    """Every convcalc module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name == "convcalc" or name.startswith("convcalc.")}


def module_name(path: Path) -> str:
    """``convcalc/calc/geometry.py`` -> ``convcalc.calc.geometry``."""
    return "convcalc." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def wrong_way(source: str, module: str) -> list[str]:
    """The imports of one module that point up the layers (or anywhere into cli)."""
    own = layer_of(module)
    if own is None:
        return []
    allowed = set(LAYERS[: LAYERS.index(own) + 1])
    return sorted(
        name
        for name in imported_modules(source)
        if (theirs := layer_of(name)) is not None and theirs not in allowed
    )


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_layers(path: Path) -> None:
    assert wrong_way(path.read_text(encoding="utf-8"), module_name(path)) == []


def test_the_scan_sees_a_wrong_way_import() -> None:
    source = "import numpy\n\ndef f():\n    from convcalc.present import tables\n"
    assert wrong_way(source, "convcalc.calc.geometry") == [
        "convcalc.present",
        "convcalc.present.tables",
    ]
    assert wrong_way(source, "convcalc.cli.shape") == []
    assert wrong_way("import convcalc.cli.main\n", "convcalc.present.tables") == [
        "convcalc.cli.main"
    ]


def test_the_top_level_holds_only_the_five_layers_and_the_error_family() -> None:
    entries = {p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"}
    assert entries == TOP_LEVEL | set(LAYERS)


def test_calc_never_imports_numpy_or_pillow() -> None:
    for path in (PACKAGE / "calc").rglob("*.py"):
        source = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            alias.name.split(".")[0]
            for node in ast.walk(source)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (
                node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
            )
        }
        assert not names & {"numpy", "PIL", "rich"}, path
