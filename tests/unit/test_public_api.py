"""Package hygiene: the exported names, the private modules, and the import graph's leaves.

couchcore's public surface is ``couchcore.__all__`` plus the ``__all__`` of its public modules
(those whose dotted name has no ``_`` part). Every other module is private (``couchcore._api``,
``couchcore._rows``, ...): what users need from one is re-exported by ``couchcore``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import couchcore

PACKAGE = Path(couchcore.__file__).resolve().parent
ROOT = PACKAGE.parent
DOCS = ROOT / "docs"

#: the modules users import by name (README.md, docs/): each one's ``__all__`` is documented
USER_MODULES = ["couchcore", "couchcore.aio", "couchcore.tornado", "couchcore.errors", "couchcore.models",
                "couchcore.codec", "couchcore.bulk", "couchcore.dump", "couchcore.auth", "couchcore.cli",
                "couchcore.protocol.shapes"]

#: public modules that are layers for extenders (operations and backends, the test servers),
#: described in README.md's layout and their docstrings rather than in the reference
LAYER_MODULES = {"couchcore.testing"} | {
    f"{pkg}.{info.name}" for pkg in ("couchcore.protocol", "couchcore.transport")
    for info in pkgutil.iter_modules([str(PACKAGE / pkg.split(".")[1])]) if not info.name.startswith("_")}


def _all_modules() -> list[str]:
    names = ["couchcore"]
    for info in pkgutil.walk_packages([str(PACKAGE)], "couchcore."):
        names.append(info.name)
    return sorted(names)


def _is_private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def _public_modules() -> list[str]:
    return [m for m in _all_modules() if not _is_private(m)]


def test_every_module_is_public_by_name_or_private_by_name():
    """The public modules are exactly the ones users import, and the extension layers;
    every other module is named ``_x``."""
    public = set(_public_modules()) - {"couchcore.protocol", "couchcore.transport"}
    assert public == set(USER_MODULES) | LAYER_MODULES - {"couchcore.protocol", "couchcore.transport"}


@pytest.mark.parametrize("module", _public_modules())
def test_public_module_exports_resolve_and_are_public(module):
    mod = importlib.import_module(module)
    if module in ("couchcore.protocol", "couchcore.transport"):  # namespaces of the layers
        return
    exported = getattr(mod, "__all__", None)
    assert exported is not None, f"{module} has no __all__"
    assert len(set(exported)) == len(exported), f"{module}.__all__ repeats a name"
    for name in exported:
        assert not name.startswith("_"), f"{module}.__all__ exports a private name: {name}"
        assert hasattr(mod, name), f"{module}.__all__ names {name}, which it does not have"


@pytest.mark.parametrize("module", USER_MODULES)
def test_no_private_module_is_reachable_by_a_public_name(module):
    """No public name of a user module is itself a private module (``couchcore.rows`` as an
    alias of ``couchcore._rows``); private objects re-exported under public names are fine."""
    mod = importlib.import_module(module)
    for name in getattr(mod, "__all__", ()):
        obj = getattr(mod, name)
        assert not (type(obj).__name__ == "module" and _is_private(obj.__name__)), (module, name)


def _documented() -> tuple[set[int], set[str]]:
    """What the Sphinx sources document: the ids of the objects, and their dotted names
    (``.. autoclass::`` and friends; ``.. automodule::`` with the members autodoc takes)."""
    directive = re.compile(r"^\.\. auto(class|function|data|exception|attribute|method|module)::\s*(\S+)"
                           r"((?:\n   :[^\n]*)*)", re.M)
    ids: set[int] = set()
    names: set[str] = set()

    def add(dotted: str) -> None:
        names.add(dotted)
        module, _, attr = dotted.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            obj = importlib.import_module(dotted)
        ids.add(id(obj))

    for rst in DOCS.rglob("*.rst"):
        if "_build" in rst.parts:
            continue
        for kind, dotted, opts in directive.findall(rst.read_text(encoding="utf-8")):
            if kind != "module":
                add(dotted)
                continue
            if ":no-members:" in opts:
                continue
            chosen = re.search(r":members:\s*([^\n]+)", opts)
            members = ([m.strip() for m in chosen.group(1).split(",")] if chosen
                       else importlib.import_module(dotted).__all__)
            for member in members:
                add(f"{dotted}.{member}")
    return ids, names


DOCUMENTED_IDS, DOCUMENTED_NAMES = _documented()


@pytest.mark.parametrize("module", USER_MODULES)
def test_every_exported_name_is_documented(module):
    """Each name a user module exports has a page in docs/ (under this name or another one
    of the same object, e.g. ``couchcore.NotFound`` as ``couchcore.errors.NotFound``)."""
    mod = importlib.import_module(module)
    missing = [name for name in mod.__all__ if id(getattr(mod, name)) not in DOCUMENTED_IDS
               and f"{module}.{name}" not in DOCUMENTED_NAMES]
    assert missing == []


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


def test_the_console_script_runs_the_cli():
    """pyproject's ``couchcore`` entry point names a function that exists."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    target = re.search(r'^couchcore = "([\w.]+):(\w+)"', text, re.M)
    assert target is not None
    assert callable(getattr(importlib.import_module(target.group(1)), target.group(2)))


def _declared_callbacks(stub_class: str) -> set[str]:
    """The methods of ``stub_class`` in couchcore/_facades.pyi with a ``callback`` parameter."""
    tree = ast.parse((PACKAGE / "_facades.pyi").read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == stub_class)
    return {fn.name for fn in cls.body if isinstance(fn, ast.FunctionDef)
            and any(a.arg == "callback" for a in fn.args.args + fn.args.kwonlyargs)}


@pytest.mark.parametrize("name", ["Server", "Database"])
def test_callback_is_declared_where_ides_see_it(name):
    """Every method of the async facade that takes ``callback=`` at run time (couchcore._callbacks)
    declares it in the typed facades an IDE reads, and no other does."""
    tornado = importlib.import_module("couchcore.tornado")
    cls = getattr(tornado, name)
    at_run_time = {n for n in dir(cls) if not n.startswith("_")
                   and getattr(getattr(cls, n), "couchcore_callback", False)}
    assert at_run_time  # the machinery ran
    assert at_run_time == _declared_callbacks(f"Async{name}API") - {"changes"}
    assert "callback" in inspect.signature(getattr(tornado.Database, "changes")).parameters


def test_import_couchcore_loads_only_the_exception_hierarchy():
    """``import couchcore`` is cheap: the names of ``couchcore.__all__`` other than the
    exceptions are loaded on first use (PEP 562), so no backend, facade or JSON engine yet."""
    import json
    import subprocess
    import sys

    code = "import json, sys, couchcore; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                                           text=True).stdout))
    assert {m for m in loaded if m.startswith("couchcore")} == {"couchcore", "couchcore.errors"}
    for heavy in ("pycurl", "urllib3", "tornado", "orjson", "simplejson", "msgspec", "tqdm"):
        assert heavy not in loaded


def test_lazily_loaded_names_are_the_objects_of_their_modules():
    import importlib

    for name, (module, attr) in couchcore._LAZY.items():
        assert getattr(couchcore, name) is getattr(importlib.import_module(module, "couchcore"), attr), name
        assert name in couchcore.__all__ and name in dir(couchcore)
    from couchcore import ROW_PARSER, Database, NotFound, Server  # from-imports of lazy and eager names

    assert Server is couchcore._sync.Server and Database is couchcore._sync.Database
    assert NotFound is couchcore.errors.NotFound and ROW_PARSER in ("cython", "python")
    assert set(couchcore.__all__) <= set(dir(couchcore))
    assert couchcore.codec.ENGINE in couchcore.codec.ENGINES  # a submodule by attribute, as before
    with pytest.raises(AttributeError):
        couchcore.no_such_name  # noqa: B018
