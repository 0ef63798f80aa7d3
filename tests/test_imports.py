"""The import graph: no cycles, and the library's layers kept.

The contracts live in pyproject.toml (`[tool.importlinter]`) and `make lint` checks
them too; here the suite checks them, and imports every module of `catalogue` in a
fresh interpreter in dependency order (each module after everything it imports, local
imports included), so a module that imports only because another was loaded first fails
here, not in a user's notebook.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def _contracts() -> list[dict]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return config["contracts"]


def _library_graph() -> grimp.ImportGraph:
    """The library's import graph less the imports the contracts declare ignored."""
    graph = grimp.build_graph("catalogue", cache_dir=None, exclude_type_checking_imports=True)
    for contract in _contracts():
        for line in contract.get("ignore_imports", ()):
            importer, imported = (name.strip() for name in line.split("->"))
            graph.remove_import(importer=importer, imported=imported)
    return graph


def test_the_import_contracts_are_kept() -> None:
    run = subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_every_top_level_module_of_the_library_has_a_layer() -> None:
    """A new package under catalogue/ must be given its place in the layers contract."""
    (layers,) = [c["layers"] for c in _contracts() if c["type"] == "layers"]
    layered = {f"catalogue.{name.strip()}" for layer in layers for name in layer.split("|")}
    children = _library_graph().find_children("catalogue")
    assert children - layered == set()
    assert layered - children == set()


def test_every_library_module_imports_in_dependency_order_in_a_fresh_interpreter() -> None:
    graph = _library_graph()
    modules = set(graph.modules)
    dependencies = {
        m: {d for d in graph.find_modules_directly_imported_by(m) if d in modules} for m in modules
    }
    try:
        order = list(TopologicalSorter(dependencies).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")
    assert set(order) == modules and len(order) > 100
    script = (
        "import importlib, json, sys\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    importlib.import_module(name)\n"
        "print('imported', len(json.loads(sys.argv[1])))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, json.dumps(order)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == f"imported {len(order)}"
