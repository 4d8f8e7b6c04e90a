"""The house rules of the package layout, checked on the package's own source (its AST).

The four rooms (DESIGN.md): ``readers`` (files to frames), ``engine`` (arrays and frames in and out),
``runs`` (a command's work end to end) and ``outputs`` (folders, tables, maps, pages). Arrows point down:
the CLI calls runs; runs call readers, the engine and outputs; outputs read engine results; the engine
reads reader frames. Imports inside functions count: an import moved into a function still ties two
modules together.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "circles"
ROOMS = ("readers", "engine", "runs", "outputs")
# What each room may import, besides itself and the top-level errors and _version modules.
MAY_IMPORT = {
    "readers": set(),
    "engine": {"readers"},
    "outputs": {"engine", "readers"},
    "runs": {"readers", "engine", "outputs"},
}
SHARED = {"errors", "_version", "constants"}
# Arrows that still point up, each to be removed; the list can only shrink (each entry must still
# exist), so a new wrong arrow fails at once. Issue 17 emptied it: facilities and demand are placed by
# engine/placement, a road-line layer becomes a network in engine/network, runs/load joins the two.
KNOWN_UPWARD: set[tuple[str, str]] = set()
KNOWN_CYCLES: list[set[str]] = []


@cache
def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(p for p in parts if p != "__init__") or "circles"
        out[name] = ast.parse(path.read_text(encoding="utf-8"))
    return out


def _resolve(module: str, node: ast.ImportFrom, *, is_package: bool) -> str:
    """The dotted name (relative to circles) that ``from ... import`` refers to."""
    base = [] if module == "circles" else module.split(".")
    if not is_package:
        base = base[:-1]
    up = node.level - 1
    base = base[: len(base) - up] if up else base
    return ".".join([*base, *(node.module.split(".") if node.module else [])]) or "circles"


def _imports() -> list[tuple[str, str, list[str], int]]:
    """(importer, imported module, names, line) for every import of a circles module, anywhere in a file."""
    out = []
    for name, tree in _modules().items():
        is_package = (PACKAGE / name.replace(".", "/") / "__init__.py").exists() or name == "circles"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                out.append((name, _resolve(name, node, is_package=is_package),
                            [a.name for a in node.names], node.lineno))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("circles"):
                out.append((name, node.module.removeprefix("circles").lstrip(".") or "circles",
                            [a.name for a in node.names], node.lineno))
    return out


def _room(module: str) -> str:
    return module.split(".")[0]


IMPORTS = _imports()


def test_every_module_is_in_a_room_or_at_the_door():
    top = {m for m in _modules() if "." not in m}
    assert top <= {"circles", "errors", "cli", "_version", "__main__", "_moved", "constants", *ROOMS}, top


def test_no_import_cycles():
    graph = nx.DiGraph()
    for importer, imported, names, _ in IMPORTS:
        # "from .engine import synthetic" imports the module synthetic, not the package's __init__.
        targets = [f"{imported}.{n}" for n in names if f"{imported}.{n}" in _modules()] or [imported]
        for target in targets:
            if target != importer and target in _modules() and importer != "circles":
                graph.add_edge(importer, target)
    cycles = [set(c) for c in nx.simple_cycles(graph)]
    assert [c for c in cycles if c not in KNOWN_CYCLES] == [], cycles[:5]
    assert all(c in cycles for c in KNOWN_CYCLES), "a known cycle is gone: remove it from KNOWN_CYCLES"


@pytest.mark.parametrize("room", ROOMS)
def test_arrows_point_down(room):
    upward = {(importer, imported) for importer, imported, _, _ in IMPORTS
              if _room(importer) == room and _room(imported) in ROOMS
              and _room(imported) not in {room, *MAY_IMPORT[room]}}
    known = {k for k in KNOWN_UPWARD if _room(k[0]) == room}
    assert known <= upward, f"fixed, so remove from KNOWN_UPWARD: {sorted(known - upward)}"
    wrong = [f"{importer}:{line} imports {imported}" for importer, imported, _, line in IMPORTS
             if (importer, imported) in upward - known]
    wrong += [f"{importer}:{line} imports {imported}" for importer, imported, _, line in IMPORTS
              if _room(importer) == room and imported in {"cli", "circles"}]
    assert not wrong, wrong


def test_no_private_name_is_imported_across_modules():
    private = [f"{importer}:{line} takes {imported}.{n}" for importer, imported, names, line in IMPORTS
               for n in names if n.startswith("_") and not n.startswith("__") and imported != importer
               and n != "_version"]
    assert not private, private


def _numbers(tree: ast.Module) -> list[tuple[float, int]]:
    return [(n.value, n.lineno) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, float)]


@pytest.mark.parametrize("value", [2.62, 4.5])
def test_domain_constants_are_written_once(value):
    """Persons per household and the walking speed live in circles/constants.py alone."""
    found = [f"{name}:{line}" for name, tree in _modules().items() if name != "constants"
             for number, line in _numbers(tree) if number == value]
    assert not found, found


def test_the_snap_cap_and_study_area_are_read_in_placement_only():
    """Every part of a run places points through engine/placement (the cap, the study area)."""
    readers = [f"{name}:{n.lineno}" for name, tree in _modules().items()
               if name not in {"engine.placement", "engine.network", "readers.profiles"}
               for n in ast.walk(tree)
               if isinstance(n, ast.Attribute) and n.attr in {"snap_cap_metres", "study_area", "in_study_area"}]
    assert not readers, readers
