"""Package hygiene: the exported names, and the import graph's leaves."""

from __future__ import annotations

import ast
from pathlib import Path

import couchcore

PACKAGE = Path(couchcore.__file__).resolve().parent


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, anywhere in the file (inside functions too), relative
    imports written with their leading dots."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


def test_errors_is_a_leaf_module():
    """couchcore.errors imports nothing of couchcore (every other module may import it)."""
    inside = [n for n in _imports(PACKAGE / "errors.py") if n.startswith(".") or n.split(".")[0] == "couchcore"]
    assert inside == []
