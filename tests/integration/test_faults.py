"""Fault injection (issue 11 item 2): the server restarted under a bulk load and under a
continuous changes feed, a view response cut mid-row, a stalled server, connection resets
under concurrent load.

The network misbehaves through :class:`couchcore.testing.FaultyProxy`, a loopback proxy the
tests control. A restart is real by default: the tests start their own PouchDB Server with
its data on disk (``PouchDBServer(on_disk=True)``), SIGKILL it mid-operation and start it
again on the same port over the same files. With ``COUCHDB_URL`` set the server is shared
and must not be restarted: the restart is emulated by the proxy in front of it
(``stop_forwarding``: every open connection reset, new ones refused; then
``resume_forwarding``).

``COUCHCORE_FAULT_DOCS`` sets the size of the interrupted loads (default 10000; the issue's
200000 runs in a few minutes against Apache CouchDB).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any, Callable

import pytest

import couchcore
from couchcore import bulk
from couchcore.testing import FaultyProxy, PouchDBServer
from couchcore._urls import split_credentials

from tests.helpers import node_urls, unique_name

N_DOCS = int(os.environ.get("COUCHCORE_FAULT_DOCS", "10000"))
SYNC_BACKENDS = ["urllib3", "pycurl"]
ALL_BACKENDS = SYNC_BACKENDS + ["aio"]


def _skip_missing(backend: str) -> None:
    if backend == "pycurl":
        pytest.importorskip("pycurl")
    if backend == "aio":
        pytest.importorskip("tornado")


class Restartable:
    """A server the test may take down and bring back: ``url`` (no credentials),
    ``auth``, ``restart()`` (returns once it answers again), ``real`` (a real process
    restart, False for the proxy emulation)."""

    def __init__(self, url: str, auth: tuple[str, str] | None, restart: Callable[[], Any], real: bool) -> None:
        self.url = url
        self.auth = auth
        self._restart = restart
        self.real = real
        self.restarts = 0

    def restart(self) -> None:
        self._restart()
        self.restarts += 1

    def server(self, backend: str = "pycurl", **options: Any) -> couchcore.Server:
        return couchcore.Server(self.url, auth=self.auth, backend=backend, **options)


@pytest.fixture(scope="module")
def restartable():
    shared = node_urls(os.environ.get("COUCHDB_URL"))
    if shared:
        base, user, password = split_credentials(shared[0])
        proxy = FaultyProxy(base)

        def emulate() -> None:
            proxy.stop_forwarding()
            time.sleep(1.0)  # down for a while: connections refused
            proxy.resume_forwarding()

        try:
            yield Restartable(proxy.url, (user, password) if user else None, emulate, real=False)
        finally:
            proxy.close()
        return
    pouch = PouchDBServer(on_disk=True)
    pouch.start()
    try:
        user, password = pouch.admin
        yield Restartable(f"http://127.0.0.1:{pouch.port}", (user, password), pouch.restart, real=True)
    finally:
        pouch.stop()


@pytest.fixture
def proxied(couch_url):
    """A FaultyProxy in front of the session's server and a Database behind it (the
    database is created directly, then reached through the proxy)."""
    base, user, password = split_credentials(couch_url)
    proxy = FaultyProxy(base)
    name = unique_name("faults")
    server = couchcore.Server(couch_url)
    server.create(name, n=1)  # one copy: _all_docs right after a load counts every write (conftest.one_copy_db)
    try:
        yield proxy, name, ((user, password) if user else None)
    finally:
        proxy.close()
        try:
            server.delete(name)
        except couchcore.NotFound:
            pass


def _numbers(db: couchcore.Database) -> collections.Counter:
    """How often each ``n`` occurs among the documents of ``db``."""
    seen: collections.Counter = collections.Counter()
    for row in db.iterview("_all_docs", page_size=5000, include_docs=True):
        if not row.id.startswith("_design/"):
            seen[row.doc["n"]] += 1
    return seen


# -- (a) the server killed and restarted during a large load ---------------------------------------


def test_server_restarted_during_a_bulk_load(restartable):
    """``bulk.load`` of N documents without ids (the loader makes them): the server goes down
    a quarter of the way through. Afterwards every document is there exactly once and
    nothing was rejected (a rejected document would also have to be absent)."""
    server = restartable.server()
    db = server.create(unique_name("faults-load"), n=1)  # one copy: _numbers reads every write
    try:
        restart_done = threading.Event()
        started = threading.Event()

        def progress(report: bulk.LoadReport) -> None:
            if report.written >= N_DOCS // 4 and not started.is_set():
                started.set()
                threading.Thread(target=lambda: (restartable.restart(), restart_done.set()), daemon=True).start()

        rejected: list[bulk.Rejected] = []
        docs = ({"n": i, "pad": "p" * 40} for i in range(N_DOCS))
        report = bulk.load(db, docs, batch_size=500, concurrency=4, retries=40, backoff=0.1, max_backoff=1.0,
                           on_reject=rejected.append, progress=progress)
        assert restart_done.wait(60), "the restart did not finish"
        assert report.retried >= 1, f"the load never met the restart: {report}"
        numbers = _numbers(restartable.server()[db.name])
        written_rejects = [r for r in rejected if r.doc is not None and numbers.get(json.loads(r.doc)["n"])]
        assert written_rejects == [], "rejected documents that were written"
        assert rejected == []
        assert report.written == N_DOCS
        assert sorted(numbers) == list(range(N_DOCS)) and set(numbers.values()) == {1}
    finally:
        restartable.server().delete(db.name)


def test_server_restarted_during_couchcore_load(restartable, tmp_path):
    """The ``couchcore load`` command with ``--rejects`` and ``--resume`` while the server
    goes down and comes back: exit 0, every line loaded exactly once, an empty rejects file."""
    server = restartable.server()
    name = unique_name("faults-cli")
    db = server.create(name, n=1)  # one copy: _numbers reads every write
    source = tmp_path / "in.jsonl"
    with open(source, "w") as f:
        for i in range(N_DOCS):
            f.write(json.dumps({"n": i, "pad": "q" * 40}) + "\n")
    rejects, checkpoint = tmp_path / "rejects.jsonl", tmp_path / "load.ckpt"
    env = dict(os.environ, COUCHDB_USER=restartable.auth[0], COUCHDB_PASSWORD=restartable.auth[1]) \
        if restartable.auth else dict(os.environ)
    env.pop("COUCHDB_URL", None)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "couchcore.cli", "load", f"{restartable.url}/{name}", str(source),
             "--batch-size", "500", "--concurrency", "4", "--retries", "40", "--rejects", str(rejects),
             "--resume", str(checkpoint), "--quiet"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if db.info()["doc_count"] >= N_DOCS // 4:
                    break
            except couchcore.TransportError:
                pass
            time.sleep(0.05)
        assert proc.poll() is None, f"the load ended before the restart: {proc.communicate()}"
        restartable.restart()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode(errors="replace")
        assert rejects.read_bytes() == b"" if rejects.exists() else True
        numbers = _numbers(server[name])
        assert sorted(numbers) == list(range(N_DOCS)) and set(numbers.values()) == {1}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.delete(name)


# -- (b) a continuous changes feed across a restart ------------------------------------------------


@pytest.mark.parametrize("engine", ALL_BACKENDS)
def test_continuous_changes_across_a_restart(restartable, engine):
    """Every change is delivered once: 30 written before the restart, 30 after it."""
    _skip_missing(engine)
    server = restartable.server("pycurl" if engine == "aio" else engine)
    db = server.create(unique_name("faults-feed"))
    try:
        db.save([{"_id": f"before-{i:03d}"} for i in range(30)])
        received: list[str] = []
        errors: list[BaseException] = []
        want = {f"before-{i:03d}" for i in range(30)} | {f"after-{i:03d}" for i in range(30)}

        if engine == "aio":
            from couchcore import aio

            adb = aio.Database(f"{restartable.url}/{db.name}", auth=restartable.auth)
            feed: Any = adb.changes(feed="continuous", since=0, heartbeat=500)

            def consume() -> None:
                async def run() -> None:
                    async for change in feed:
                        received.append(change["id"])
                        if want <= set(received):
                            break

                try:
                    asyncio.run(asyncio.wait_for(run(), 90))
                except BaseException as exc:  # reported below
                    errors.append(exc)
        else:
            feed = db.changes(feed="continuous", since=0, heartbeat=500)

            def consume() -> None:
                try:
                    for change in feed:
                        received.append(change["id"])
                        if want <= set(received):
                            break
                except BaseException as exc:
                    errors.append(exc)

        reader = threading.Thread(target=consume, daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while len(received) < 30 and time.monotonic() < deadline and not errors:
            time.sleep(0.05)
        assert len(received) == 30, (received, errors)
        restartable.restart()
        db.save([{"_id": f"after-{i:03d}"} for i in range(30)])
        reader.join(90)
        assert not reader.is_alive() and errors == [], errors
        counts = collections.Counter(received)
        assert set(counts) == want and set(counts.values()) == {1}, counts
        assert feed.reconnects >= 1
    finally:
        restartable.server().delete(db.name)


# -- (c) a view response truncated mid-row ---------------------------------------------------------


def _mid_row_offset(body: bytes) -> int:
    """A byte offset inside the 100th row of a view or changes body (in its ``"id"`` value)."""
    pos = 0
    for _ in range(100):
        pos = body.index(b'"id":"', pos + 1)
    return pos + 8


def _raw_body(url: str, auth: Any) -> bytes:
    import base64
    import urllib.request

    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.read()


def _read_all(backend: str, url: str, auth: Any, what: str, **options: Any) -> Any:
    """Read a whole streamed result (view rows or normal changes) on ``backend``."""
    if backend == "aio":
        from couchcore import aio

        async def run() -> list:
            adb = aio.Database(url, auth=auth, retries=0, **options)
            if what == "changes":
                return [c async for c in adb.changes()]
            return [row async for row in adb.view(what, include_docs=True)]

        return asyncio.run(run())
    db = couchcore.Database(url, auth=auth, backend=backend, retries=0, **options)
    if what == "changes":
        return list(db.changes())
    return list(db.view(what, include_docs=True))


@pytest.fixture(scope="module")
def cut_db(couch_url):
    """A database of 200 documents and a view, read through a fresh proxy by each test."""
    base, user, password = split_credentials(couch_url)
    auth = (user, password) if user else None
    server = couchcore.Server(couch_url)
    db = server.create(unique_name("faults-cut"), n=1)  # one copy: every read sees all 200 (conftest.one_copy_db)
    db.save([{"_id": f"doc-{i:04d}", "n": i, "pad": "x" * 30} for i in range(200)])
    db.save({"_id": "_design/by", "views": {"n": {"map": "function (doc) { emit(doc.n, null); }"}}})
    db.view("by/n", limit=1).rows  # build the index now
    bodies: dict[str, bytes] = {}
    for what, target in PATHS.items():
        bodies[what] = _raw_body(f"{base}/{db.name}{target}", auth)
    try:
        yield base, db.name, auth, bodies
    finally:
        server.delete(db.name)


PATHS = {"changes": "/_changes", "_all_docs": "/_all_docs?include_docs=true",
         "by/n": "/_design/by/_view/n?include_docs=true"}


@pytest.mark.parametrize("how", ["fin", "reset", "clean"])
@pytest.mark.parametrize("what", ["_all_docs", "by/n", "changes"])
@pytest.mark.parametrize("engine", ALL_BACKENDS)
def test_a_response_cut_mid_row_is_an_error(cut_db, engine, what, how):
    """The answer stops inside a row: closed (``fin``), reset (``reset``) or a complete
    HTTP message whose JSON stops there (``clean``). Always a couchcore error, never a
    shorter list of rows; the same read without the fault gives every row."""
    _skip_missing(engine)
    base, name, auth, bodies = cut_db
    proxy = FaultyProxy(base)
    try:
        url = f"{proxy.url}/{name}"
        assert len(_read_all(engine, url, auth, what)) >= 200
        path = PATHS[what].split("?")[0]
        proxy.truncate("GET", path, at=_mid_row_offset(bodies[what]), reset=how == "reset", clean=how == "clean")
        with pytest.raises(couchcore.CouchcoreError) as exc:
            got = _read_all(engine, url, auth, what)
            pytest.fail(f"a cut response gave {len(got)} items instead of an error")
        assert isinstance(exc.value, (couchcore.TransportError, couchcore.ParseError)), repr(exc.value)
        assert proxy.fired == 1
    finally:
        proxy.close()


# -- (d) a stalled server ----------------------------------------------------------------------------


@pytest.mark.timing  # asserts a duration: deselected by default (make test-timing)
@pytest.mark.parametrize("engine", ALL_BACKENDS)
def test_a_stalled_server_costs_one_read_timeout(proxied, engine):
    """The server answers, the proxy holds the answer 3 s; with ``timeout=0.6`` the read
    timeout fires once (the request is not sent again: a timeout is never retried)."""
    _skip_missing(engine)
    proxy, name, auth = proxied
    proxy.delay("GET", f"/{name}/_all_docs", seconds=3.0, count=5)
    url = f"{proxy.url}/{name}"
    started = time.monotonic()
    with pytest.raises(couchcore.ReadTimeout):
        if engine == "aio":
            from couchcore import aio

            async def run() -> Any:
                return await aio.Database(url, auth=auth, timeout=0.6, retries=3).view("_all_docs")

            asyncio.run(run())
        else:
            list(couchcore.Database(url, auth=auth, backend=engine, timeout=0.6, retries=3).view("_all_docs"))
    elapsed = time.monotonic() - started
    sent = [t for m, t in proxy.seen if "/_all_docs" in t]
    assert len(sent) == 1, sent
    assert 0.5 <= elapsed < 2.0, elapsed


# -- (e) resets under concurrent load --------------------------------------------------------------


def test_resets_under_concurrent_get_many(proxied):
    """``get_many(concurrency=16)`` on pycurl while 10 of its 300 requests are reset: the
    reset reads are sent again (a GET is safe to repeat) and every document arrives."""
    pytest.importorskip("pycurl")
    proxy, name, auth = proxied
    db = couchcore.Database(f"{proxy.url}/{name}", auth=auth, backend="pycurl")
    db.save([{"_id": f"doc-{i:04d}", "n": i} for i in range(300)])
    for i in range(0, 300, 30):
        proxy.drop("GET", f"/doc-{i:04d}", reset=True)
    docs = db.get_many([f"doc-{i:04d}" for i in range(300)], concurrency=16)
    assert [d["n"] for d in docs] == list(range(300))
    assert proxy.fired == 10


def test_resets_without_retries_leave_the_other_reads_complete(proxied):
    """With ``retries=0`` (couchcore sends each read once; libcurl itself may still send a
    GET again on a new connection when a reused one broke before any answer) the other
    290 reads run to completion: each reached the server, and what is returned is right."""
    pytest.importorskip("pycurl")
    proxy, name, auth = proxied
    db = couchcore.Database(f"{proxy.url}/{name}", auth=auth, backend="pycurl")
    db.save([{"_id": f"doc-{i:04d}", "n": i} for i in range(300)])
    for i in range(0, 300, 30):
        proxy.drop("GET", f"/doc-{i:04d}", reset=True)
    ids = [f"doc-{i:04d}" for i in range(300)]
    try:
        with couchcore.call_options(retries=0):
            docs = db.get_many(ids, concurrency=16)
    except couchcore.ConnectionError as exc:
        assert any(f"/doc-{i:04d}" in str(exc) for i in range(0, 300, 30)), exc
    else:
        assert [d["n"] for d in docs] == list(range(300))
    fetched = {t.split("?")[0].rsplit("/", 1)[1] for m, t in proxy.seen if m == "GET"}
    assert fetched >= set(ids)
    assert proxy.fired == 10


def test_resets_under_a_concurrent_bulk_load(proxied):
    """The loader (pycurl, 8 batches in flight) meets resets before a batch reached the
    server and cuts after it did: every document is written exactly once, none rejected."""
    pytest.importorskip("pycurl")
    proxy, name, auth = proxied
    db = couchcore.Database(f"{proxy.url}/{name}", auth=auth, backend="pycurl")
    proxy.drop("POST", "/_bulk_docs", reset=True, count=3)
    proxy.cut_after_send("POST", "/_bulk_docs", count=3)
    rejected: list = []
    report = bulk.load(db, ({"n": i} for i in range(3000)), batch_size=100, concurrency=8, backoff=0.05,
                       on_reject=rejected.append)
    assert rejected == [] and report.written == 3000
    assert proxy.fired == 6
    numbers = _numbers(db)
    assert sorted(numbers) == list(range(3000)) and set(numbers.values()) == {1}
