"""The static types: the generated facade declarations are current, ``mypy --strict``
passes on the package and on ``tests/typed_example.py`` (every public method of
Server/Database, sync and async, with ``assert_type``), and a wrong type claim in such
a program is caught (so the check cannot pass by everything being ``Any``).

No server is needed: these run mypy and the generator only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(600)


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", *args], cwd=ROOT, capture_output=True,
                          text=True)


def test_generated_facades_are_current() -> None:
    """``couchcore/_facades.pyi`` is what tools/gen_facades.py makes of api.py/partition.py now."""
    done = subprocess.run([sys.executable, "tools/gen_facades.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr + done.stdout


def test_mypy_strict_package() -> None:
    done = _mypy("couchcore")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr


def test_mypy_strict_typed_example() -> None:
    done = _mypy("tests/typed_example.py")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr


WRONG = '''
import couchcore, couchcore.aio
from typing import assert_type

def sync(db: couchcore.Database) -> None:
    assert_type(db.get("a"), dict[str, int])          # it is a Document
    assert_type(db.info()["doc_count"], str)          # it is an int

async def aio(db: couchcore.aio.Database) -> None:
    assert_type(await db.get(["a"]), list[str])       # it is list[Document | None]
    assert_type(db.view("app/v"), couchcore.ViewResult)  # an awaitable of one, not one
    doc = db.get("a")
    doc["n"]                                          # not subscriptable before await
'''


def test_wrong_claims_are_caught(tmp_path: Path) -> None:
    """The types are real: each false claim of WRONG is an error (``Any`` would let them pass)."""
    program = tmp_path / "wrong_types.py"
    program.write_text(WRONG)
    done = _mypy("--python-version", "3.11", str(program))
    assert done.returncode == 1, done.stdout
    # (by name: mypy's cache may report the path of an earlier run of the same file)
    errors = [line for line in done.stdout.splitlines() if "wrong_types.py:" in line and ": error:" in line]
    assert len(errors) == 5, done.stdout


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def _used(*functions: str) -> set[str]:
    import ast

    tree = ast.parse((ROOT / "tests" / "typed_example.py").read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in functions:
            names |= {sub.attr for sub in ast.walk(node) if isinstance(sub, ast.Attribute)}
    return names


def test_typed_example_uses_every_public_method() -> None:
    """A method added to Server/Database (either flavour) must be added to the example too."""
    import couchcore
    import couchcore.aio
    from couchcore._partition import Partition

    sync = _used("sync_server", "sync_session", "sync_database")
    asyncio_ = _used("async_server", "async_database")
    missing = {
        "Server": _public(couchcore.Server) - sync,
        "Database": _public(couchcore.Database) - sync,
        "Partition (sync)": _public(Partition) - {"key", "db"} - sync,
        "aio.Server": _public(couchcore.aio.Server) - asyncio_,
        "aio.Database": _public(couchcore.aio.Database) - asyncio_,
        "Partition (async)": _public(Partition) - {"key", "db"} - asyncio_,
    }
    assert not any(missing.values()), missing
