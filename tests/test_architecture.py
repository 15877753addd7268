"""The package keeps the shape DESIGN.md and docs/architecture.md describe:
the import-linter layering contracts hold, no module imports itself back
through others, and no module grows past 500 lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

SOURCE = Path(__file__).resolve().parent.parent
MAX_LINES = 500


def test_layering_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint)], cwd=SOURCE, capture_output=True, text=True, check=False,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert " 0 broken" in proc.stdout.split("Contracts:")[-1]


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("eib", cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported == module or module.startswith(imported + "."):
                continue  # a module's own package (__init__) is not a cycle
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain is not None and not imported.startswith(module + "."):
                cycles.append(" -> ".join([module, *chain]))
    assert cycles == []


def test_no_module_over_500_lines() -> None:
    long = {
        str(path.relative_to(SOURCE)): count
        for path in sorted((SOURCE / "eib").rglob("*.py"))
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
