"""The test suite's helpers, imported by test modules as ``from tests.helpers import ...``.

Fixtures live in ``tests/conftest.py``; plain functions the tests call live here (a test
module never imports ``conftest``). Fake servers live in :mod:`couchcore.testing`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import simplejson
from hypothesis import strategies as st

from couchcore import _rows as rows_mod
from couchcore.models import Document, Row
from couchcore.testing import RESET, ScriptedServer, http_response

T = TypeVar("T")

__all__ = ["unique_name", "node_urls", "wait_until", "eventually", "nothing_in_flight", "reset_on_write", "FIXTURES",
           "CY_SKIP", "expected", "canon", "assert_same", "cuts", "proxied_db"]

#: the recorded CouchDB responses (tests/record_fixtures.py records them; committed);
#: COUCHCORE_FIXTURES may point elsewhere
FIXTURES = Path(os.environ.get("COUCHCORE_FIXTURES") or Path(__file__).resolve().parent / "data" / "couchdb-3.5.0")


def unique_name(prefix: str = "test") -> str:
    """A database (or document) name no other test uses: ``prefix-<12 hex digits>``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def node_urls(value: str | None) -> list[str]:
    """The node URLs in ``COUCHDB_URL``: one URL, or several nodes of one cluster
    separated by spaces and/or commas (the ``cluster`` profile)."""
    return [u for u in re.split(r"[\s,]+", value or "") if u]


def _member_status(url: str, user: str, password: str, name: str) -> int:
    """The status of ``GET /{name}`` sent by ``user`` to the node at ``url`` (credential-free)."""
    import couchcore

    member = couchcore.Server(url, auth=(user, password), retries=0)
    try:
        member.db(name).info()
        return 200
    except couchcore.HTTPError as exc:
        return exc.status
    finally:
        member.close()


@contextlib.contextmanager
def member_db(admin: Any, user: str, password: str, prefix: str) -> Iterator[Any]:
    """A new database on ``admin``'s server (named from ``prefix``) whose only member is the
    ``_users`` account ``user`` with ``password``, made afresh (a former one is replaced);
    the database and the account are deleted after the block.
    https://docs.couchdb.org/en/stable/api/database/security.html

    The block starts once ``user`` is let into the database through each of ``admin``'s
    node URLs. On a CouchDB cluster the ``PUT /{db}/_security`` answers ``ok`` once a
    majority of the shard copies took the object (fabric_db_meta:set_security), and every
    request is first checked against one copy of the node asked (chttpd_auth_request's
    get_security, its local copy first), which may still hold the old object: the
    member's first request was refused "403 You are not allowed to access this db."
    (the account likewise needs the node's view of ``_users``: 401 until then)."""
    users = admin.db("_users", create="_users" not in admin.all_dbs())
    uid = f"org.couchdb.user:{user}"
    if uid in users:
        users.delete(users.get(uid))
    users.save({"_id": uid, "name": user, "password": password, "roles": [], "type": "user"})
    db = admin.create(unique_name(prefix))
    try:
        db.security({"admins": {"names": [], "roles": []}, "members": {"names": [user], "roles": []}})
        for url in admin.urls:
            wait_until(lambda: _member_status(url, user, password, db.name), lambda status: status == 200,
                       timeout=30.0)
        yield db
    finally:
        admin.delete(db.name)
        users.delete(users.get(uid))


def wait_until(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 10.0,
               interval: float = 0.05) -> T:
    """Call ``read()`` until ``done(value)`` holds and return that value; fail with the
    last value after ``timeout`` seconds. For what a CouchDB cluster makes visible
    eventually, not at once: a write acknowledged by ``w`` of ``n`` copies is read from
    one copy by ``_changes``, views and ``_security``
    (https://docs.couchdb.org/en/stable/cluster/sharding.html#quorum)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s; last value: {value!r}")
        time.sleep(interval)


async def eventually(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01) -> None:
    """Wait (on the running loop) until ``predicate()`` is true, or fail after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


def nothing_in_flight(transport: Any) -> bool:
    """No request of the running loop is left in the async backend's own bookkeeping
    (Tornado's client, or the curl engine's multi handle)."""
    state = transport._state()
    if hasattr(state, "client"):
        return not state.client.active and not state.client.queue
    return not state.active



def reset_on_write() -> ScriptedServer:
    """A fake server that keeps connections alive for reads (``GET``/``HEAD`` answered ``"1"``)
    and resets the connection of any other request once it has read it: a write that may
    have been applied, whose answer never comes."""
    return ScriptedServer(lambda request, conn: http_response(200, b'"1"') if request.method in ("GET", "HEAD")
                          else RESET)

# -- the row parser's oracle (tests/unit/test_rows.py, tests/integration/test_fuzz.py) ---------------------------

try:
    from couchcore_ext import _rows as _cy_rows  # noqa: F401

    CY_SKIP = None
except Exception as e:  # pragma: no cover - depends on the build
    CY_SKIP = f"couchcore_ext._rows is not built ({type(e).__name__}: {e}); run `python -m couchcore_ext.build`"


def _doc(d):
    return Document(d) if type(d) is dict else d


def expected(shape: str, body: bytes):
    """What the parser must produce for a whole, valid body (oracle: simplejson)."""
    if shape == "continuous":
        items, meta, done = [], {}, False
        for line in body.split(b"\n"):
            if not line.strip(b" \t\r\n"):
                continue
            d = simplejson.loads(line)
            if "last_seq" in d:
                meta.update(d)
                done = True
            elif "error" in d and "seq" not in d:
                meta.update(d)
            else:
                if d.get("doc") is not None:
                    d["doc"] = _doc(d["doc"])
                items.append(d)
        return items, meta, done
    top = simplejson.loads(body)
    key = rows_mod.ROWS_KEY[shape]
    meta = {k: v for k, v in top.items() if k != key}
    rows = top.get(key, [])
    if shape == "view":
        items = []
        for d in rows:
            value = d.get("value") if ("value" in d or "error" not in d) else d.get("reason")
            doc = d.get("doc")
            items.append(Row(d.get("id"), d.get("key"), value, _doc(doc) if doc is not None else None, d.get("error")))
    elif shape == "changes":
        items = rows
        for d in items:
            if d.get("doc") is not None:
                d["doc"] = _doc(d["doc"])
    elif shape == "bulk_get":
        items = rows
        for d in items:
            for e in d.get("docs", []):
                if type(e) is dict and type(e.get("ok")) is dict:
                    e["ok"] = Document(e["ok"])
    else:  # find
        items = [Document(d) for d in rows]
    return items, meta, True



def canon(x):
    """A strict, type-revealing form for comparisons (1 != 1.0, dict != Document, order)."""
    if isinstance(x, Row):
        return ("Row", canon(x.id), canon(x.key), canon(x.value), canon(x.doc), canon(x.error))
    if isinstance(x, dict):
        return (type(x).__name__, tuple((k, canon(v)) for k, v in x.items()))
    if isinstance(x, list):
        return ("list", tuple(canon(v) for v in x))
    if isinstance(x, float):
        return ("float", x.hex())
    return (type(x).__name__, x)


def assert_same(got, want):
    assert canon(got[0]) == canon(want[0])
    assert canon(got[1]) == canon(want[1])
    assert got[2] == want[2]


def cuts(data, draw):
    pts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=12))))
    out, prev = [], 0
    for p in pts:
        out.append(data[prev:p])
        prev = p
    out.append(data[prev:])
    return out


def async_backends() -> list[str]:
    """The backends of the async facades here: pycurl's engine when pycurl is installed, Tornado's."""
    try:
        import pycurl  # noqa: F401
    except ImportError:
        return ["tornado"]
    return ["pycurl", "tornado"]


def run_cli(*args: Any, input: bytes | None = None, timeout: float = 180) -> "subprocess.CompletedProcess[bytes]":
    """``python -m couchcore.cli ARGS`` in a fresh process, its output captured."""
    return subprocess.run([sys.executable, "-m", "couchcore.cli", *map(str, args)], input=input,
                          capture_output=True, timeout=timeout)


def cli_db_fixtures(prefix: str) -> tuple[Any, Any]:
    """Fixtures ``admin`` (a Server on the test server, per module) and ``name`` (a new
    database name starting with ``prefix``, the database deleted afterwards if it was made):
    ``admin, name = cli_db_fixtures("cli-")`` in a test module of the command line."""
    import pytest

    import couchcore

    @pytest.fixture(scope="module")
    def admin(couch_url: str) -> Iterator[couchcore.Server]:
        server = couchcore.Server(couch_url)
        yield server
        server.close()

    @pytest.fixture
    def name(admin: couchcore.Server) -> Iterator[str]:
        created = f"{prefix}{uuid.uuid4().hex[:10]}"
        yield created
        if created in admin:
            admin.delete(created)

    return admin, name


def proxied_db(couch_url: str, prefix: str) -> Iterator[tuple[Any, str, tuple[str, str] | None, Any]]:
    """For a fixture to ``yield from``: ``(proxy, database name, (user, password) or None,
    direct Database)``: a :class:`~couchcore.testing.FaultyProxy` in front of the test
    server and a fresh database (one copy per shard: a read right after a write sees it),
    both gone afterwards."""
    import couchcore
    from couchcore._urls import split_credentials
    from couchcore.testing import FaultyProxy

    base, user, password = split_credentials(couch_url)
    proxy = FaultyProxy(base)
    name = unique_name(prefix)
    admin = couchcore.Server(couch_url)
    direct = admin.create(name, n=1)
    try:
        yield proxy, name, ((user, password) if user else None), direct
    finally:
        proxy.close()
        try:
            admin.delete(name)
        except couchcore.NotFound:
            pass
        admin.close()
