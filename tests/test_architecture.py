"""The layering of DESIGN.md holds: no import cycle between trialbook's modules (lazy
imports inside functions count; imports under TYPE_CHECKING do not), the import-linter
contracts of pyproject.toml are kept, and optional weight stays optional (importing
trialbook imports no heavy package)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The import cycles of ``graph``: its strongly connected components of more than one
    module (Tarjan's algorithm; trialbook has a few hundred modules, recursion is fine)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for child in sorted(graph.find_modules_directly_imported_by(node)):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("a", "a.b", "a.c", "a.d"):
        graph.add_module(name)
    graph.add_import(importer="a.b", imported="a.c")
    graph.add_import(importer="a.c", imported="a.b")
    graph.add_import(importer="a.d", imported="a.b")
    assert cycles(graph) == [["a.b", "a.c"]]


def test_no_import_cycles_between_trialbook_modules() -> None:
    graph = grimp.build_graph("trialbook", exclude_type_checking_imports=True)
    internal = grimp.ImportGraph()
    for module in graph.modules:
        internal.add_module(module)
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            # a package's __init__ re-exporting its own submodules is not a cycle of layers
            if not imported.startswith(module + "."):
                internal.add_import(importer=module, imported=imported)
    assert cycles(internal) == []


def test_import_linter_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is part of the dev extra"
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "BROKEN" not in result.stdout and "3 kept, 0 broken" in result.stdout


def test_importing_trialbook_stays_light() -> None:
    code = (
        "import sys, trialbook, trialbook.cli.main; "
        "heavy = [m for m in ('torch', 'ultralytics', 'fastapi', 'tensorboard', 'boto3', "
        "'pandas', 'numpy') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
