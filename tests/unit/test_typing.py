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


# Each line marked "# wrong" misuses a facade flavour in a way that fails at run time (TypeError:
# the sync/async member does not work on the other flavour, or a value is not what the code
# assumes); mypy must report an error on exactly those lines.
WRONG_FLAVOUR = '''
from typing import Any
import couchcore, couchcore.aio, couchcore.tornado

async def dunders(adb: couchcore.aio.Database, aserver: couchcore.aio.Server,
                  tdb: couchcore.tornado.Database) -> None:
    "a" in adb                                        # wrong: cannot await; use await adb.contains("a")
    len(adb)                                          # wrong
    for docid in adb:                                 # wrong: async for
        pass
    list(adb)                                         # wrong
    adb["a"] = {"n": 1}                               # wrong: await adb.save(doc)
    del adb["a"]                                      # wrong: await adb.delete(doc)
    "events" in aserver                               # wrong: await aserver.exists("events")
    len(aserver)                                      # wrong
    for name in aserver:                              # wrong: async for
        pass
    del aserver["events"]                             # wrong
    "a" in tdb                                        # wrong (the tornado flavour too)
    await adb["a"]                                    # (right: an awaitable)

async def results(db: couchcore.Database, adb: couchcore.aio.Database) -> None:
    rows = await adb.view("app/v")
    for row in rows:                                  # wrong: an async result; async for
        pass
    list(rows)                                        # wrong
    len(rows)                                         # wrong
    rows[0]                                           # wrong
    rows.all()                                        # wrong: await rows.aall()
    rows.read_meta()                                  # wrong: await rows.ameta()
    stream = await adb.open_attachment("a", "f.txt")
    for chunk in stream:                              # wrong
        pass
    stream.read()                                     # wrong: await stream.aread()
    sync_rows = db.view("app/v")
    async for row in sync_rows:                       # wrong: a sync result; plain for
        pass
    await sync_rows.aall()                            # wrong: .all()
    await sync_rows.ameta()                           # wrong: .read_meta()
    async for chunk in db.open_attachment("a", "f.txt"):  # wrong
        pass
    await db.open_attachment("a", "f.txt").aread()    # wrong
    async for change in db.changes():                 # wrong
        pass

async def resolutions(db: couchcore.Database, adb: couchcore.aio.Database) -> None:
    saved = await adb.save({"_id": "a"})
    saved.resolve().pending                           # wrong: await it first
    again: couchcore.ConflictResolution = await saved.overwrite()  # wrong: the async flavour's
    await db.save({"_id": "a"}).resolve()             # wrong: sync, nothing to await

async def paging(db: couchcore.Database, adb: couchcore.aio.Database) -> None:
    for row in adb.iterview("_all_docs"):             # wrong: async for
        pass
    for change in adb.follow(since=0):                # wrong: async for
        pass
    async for row in db.iterview("_all_docs"):        # wrong: plain for
        pass
    async for doc in db.iterfind({"n": 1}):           # wrong
        pass
    async for change in db.follow(since=0):           # wrong
        pass
    async for row in adb.iterview("_all_docs"):       # (right)
        pass
    db.follow(since=None)                             # wrong: a sequence, 0 or "now" (InvalidInput)
    async for change in db.changes(feed="continuous"):  # wrong: plain for
        pass
    afeed = adb.changes(feed="continuous")
    for change in afeed:                              # wrong: async for
        pass
    list(afeed)                                       # wrong
    async for change in afeed:                        # (right)
        pass

def accessors(db: couchcore.Database) -> None:
    changes = db.changes()
    changes["last_seq"] + 1                           # wrong: a str on CouchDB 2+
    changes["results"][0] + 1                         # wrong: a change is a dict
    changes.get("pending") + 1                        # wrong: None when not sent
    changes.headers["etag"] + 1                       # wrong: str
    changes.keys() + 1                                # wrong
'''


def test_flavour_misuse_is_caught(tmp_path: Path) -> None:
    """Sync-only members of the async facade's objects (dunders that cannot await, plain
    ``for`` over a streamed result, ``.all()``/``.read()``), async-only members of the
    sync facade's results, resolutions used as the wrong flavour, and the typed
    accessors of ChangesResult: mypy reports each marked line, and no other."""
    program = tmp_path / "wrong_flavour.py"
    program.write_text(WRONG_FLAVOUR)
    done = _mypy("--python-version", "3.11", str(program))
    marked = {i for i, line in enumerate(WRONG_FLAVOUR.splitlines(), 1) if "# wrong" in line}
    reported = {int(line.split(":")[1]) for line in done.stdout.splitlines()
                if "wrong_flavour.py:" in line and ": error:" in line}
    assert reported == marked, (sorted(marked - reported), sorted(reported - marked), done.stdout)


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
