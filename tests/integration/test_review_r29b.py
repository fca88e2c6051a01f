"""Reviewer r29b's findings (benchmarks/results/reviewer-r29b.md), faults made by
:class:`couchcore.testing.FaultyProxy` in front of the test server.

* MEDIUM 1: a write whose answer does not come within the read timeout raises
  :class:`~couchcore.errors.WriteTimeout`, both an ``OutcomeUnknown`` (it may have been
  applied: read it back) and a ``ReadTimeout``, on every backend; it is never sent again.
* LOW 3: ``maxsize`` is the number of idle connections kept per host, not a cap; urllib3's
  "Connection pool is full, discarding connection" warning per extra connection is gone.
* LOW 2: on a Server over several nodes, a node answering 502/503/504 is set aside; a
  GET/HEAD goes on to the next node, a write gets the 503 (never sent twice).
* LOW 4: the errors guide shows how to send a ``save(list)`` again after ``OutcomeUnknown``
  (a 409 whose stored body equals the one sent was the first attempt's write); the recipe
  shown is run here.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import re
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import couchcore
import couchcore._nodes
from couchcore import bulk
from couchcore.testing import FaultyProxy

from tests.helpers import async_backends, proxied_db

#: the read timeout of the clients under test, and how long the proxy holds an answer
TIMEOUT = 1.0
HOLD = 3.0

SYNC = ["urllib3", "pycurl"]
#: (facade, engine) of the async facades
ASYNC = [("aio", b) for b in async_backends()] + [("tornado", b) for b in async_backends()]


def _skip_missing(backend: str) -> None:
    if backend == "pycurl":
        pytest.importorskip("pycurl")


@pytest.fixture
def proxied(couch_url):
    """(proxy, database name, auth, direct Database): a FaultyProxy in front of the test
    server and a fresh database (one copy per shard: a read right after a write sees it)."""
    yield from proxied_db(couch_url, "r29b")


def _check_write_timeout(exc: BaseException, method: str, auth: Any) -> None:
    assert isinstance(exc, couchcore.WriteTimeout), repr(exc)
    assert isinstance(exc, couchcore.OutcomeUnknown) and isinstance(exc, couchcore.ReadTimeout)
    assert isinstance(exc, builtins.TimeoutError) and isinstance(exc, couchcore.TimeoutError)
    assert exc.method == method
    text = str(exc)
    assert f"{method} may or may not have been applied" in text, text
    assert "read timeout" in text and "read the document back" in text, text
    assert isinstance(exc.__cause__, couchcore.ReadTimeout)
    if auth:
        assert auth[1] not in text


# -- MEDIUM 1: a write whose answer times out -------------------------------------------------------


@pytest.mark.parametrize("backend", SYNC)
def test_a_timed_out_save_is_outcome_unknown_and_not_resent(proxied, backend):
    _skip_missing(backend)
    proxy, name, auth, direct = proxied
    proxy.delay("POST", f"/{name}", seconds=HOLD)
    db = couchcore.Server(proxy.url, auth=auth, backend=backend, timeout=TIMEOUT, retries=3).db(name)
    with pytest.raises(couchcore.OutcomeUnknown) as info:
        db.save({"_id": "w1", "v": 1})
    _check_write_timeout(info.value, "POST", auth)
    assert [m for m, _ in proxy.seen].count("POST") == 1  # never re-sent
    assert direct.get("w1")["v"] == 1  # it was applied: the reason it must not pass for a plain timeout


@pytest.mark.parametrize("backend", SYNC)
@pytest.mark.parametrize("what", ["put_attachment", "delete"])
def test_a_timed_out_put_or_delete_is_outcome_unknown(proxied, backend, what):
    _skip_missing(backend)
    proxy, name, auth, direct = proxied
    doc = {"_id": "w2"}
    direct.save(doc)
    db = couchcore.Server(proxy.url, auth=auth, backend=backend, timeout=TIMEOUT).db(name)
    method = "PUT" if what == "put_attachment" else "DELETE"
    proxy.delay(method, f"/{name}/w2", seconds=HOLD)
    with pytest.raises(couchcore.ReadTimeout) as info:
        if what == "put_attachment":
            db.put_attachment(doc, b"abc", "a.txt", "text/plain")
        else:
            db.delete(doc)
    _check_write_timeout(info.value, method, auth)
    assert [m for m, _ in proxy.seen].count(method) == 1


@pytest.mark.parametrize("backend", SYNC)
def test_a_timed_out_read_stays_a_plain_read_timeout(proxied, backend):
    """A GET is no write: its timeout is a ReadTimeout only (it changed nothing)."""
    _skip_missing(backend)
    proxy, name, auth, direct = proxied
    direct.save({"_id": "r1"})
    proxy.delay("GET", f"/{name}/r1", seconds=HOLD)
    db = couchcore.Server(proxy.url, auth=auth, backend=backend, timeout=TIMEOUT).db(name)
    with pytest.raises(couchcore.ReadTimeout) as info:
        db.get("r1")
    assert not isinstance(info.value, couchcore.OutcomeUnknown), repr(info.value)


@pytest.mark.parametrize("facade, engine", ASYNC)
def test_a_timed_out_save_is_outcome_unknown_on_the_async_facades(proxied, facade, engine):
    proxy, name, auth, direct = proxied
    proxy.delay("POST", f"/{name}", seconds=HOLD)
    module = couchcore.aio if facade == "aio" else pytest.importorskip("couchcore.tornado")

    async def main() -> BaseException:
        async with module.Server(proxy.url, auth=auth, backend=engine, timeout=TIMEOUT, retries=3) as server:
            db = await server.db(name)
            try:
                await db.save({"_id": "w3", "v": 3})
            except couchcore.CouchcoreError as exc:
                return exc
            raise AssertionError("the stalled save returned")

    exc = asyncio.run(main())
    _check_write_timeout(exc, "POST", auth)
    assert [m for m, _ in proxy.seen].count("POST") == 1
    assert direct.get("w3")["v"] == 3


@pytest.mark.parametrize("backend", SYNC)
def test_bulk_load_counts_timed_out_batches_as_written(proxied, backend):
    """bulk.load reconciles a batch whose answer timed out (a WriteTimeout): every document
    written once, none reported failed (pycurl runs its batches through iter_many)."""
    _skip_missing(backend)
    proxy, name, auth, direct = proxied
    proxy.delay("POST", f"/{name}/_bulk_docs", seconds=HOLD, count=2)
    db = couchcore.Server(proxy.url, auth=auth, backend=backend, timeout=TIMEOUT).db(name)
    docs = [{"_id": f"b{i:04d}", "n": i} for i in range(400)]
    report = bulk.load(db, docs, batch_size=100, concurrency=2, backoff=0.05, max_backoff=0.2)
    assert not report.failed and report.unknown == 0 and report.written == 400 and report.retried == 2, report
    assert direct.info()["doc_count"] == 400


def test_a_timed_out_write_with_session_auth_asks_nothing_more(proxied):
    """A WriteTimeout is also a ConnectionError, after which SessionAuth checks its session
    when a body's connection broke (CouchDB may close before reading a refused body); not
    after a timeout: the stalled server would cost one more timeout for nothing."""
    proxy, name, auth, direct = proxied
    if not auth:
        pytest.skip("the test server takes no credentials")
    db = couchcore.Server(proxy.url, auth=couchcore.SessionAuth(*auth), timeout=TIMEOUT).db(name)
    assert db.exists()  # logged in
    seen = len(proxy.seen)
    proxy.delay("POST", f"/{name}/_bulk_docs", seconds=HOLD)
    with pytest.raises(couchcore.WriteTimeout):
        db.save({"_id": "s1"})
    assert [m for m, _ in proxy.seen[seen:]] == ["POST"], proxy.seen[seen:]


# -- LOW 3: maxsize is the number of connections kept, quietly ----------------------------------------


def test_maxsize_keeps_connections_without_a_warning_flood(proxied, caplog):
    """16 threads x 10 GETs on one urllib3 Server with maxsize=2, each answer held 20 ms so
    that they overlap: more than 2 connections are open at once (maxsize is no cap, as the
    docs now say), every answer is right, no WARNING is logged (urllib3 logged one per
    connection it closed: "Connection pool is full, discarding connection"), and the 2 kept
    serve the sequential requests after the burst (no new connection)."""
    proxy, name, auth, direct = proxied
    direct.save([{"_id": f"d{i:02d}", "i": i} for i in range(16)])
    proxy.delay("GET", f"/{name}/d", seconds=0.02, count=16 * 10)
    server = couchcore.Server(proxy.url, auth=auth, backend="urllib3", maxsize=2)
    db = server.db(name)
    wrong: list[Any] = []
    start = threading.Barrier(16)

    def work(i: int) -> None:
        start.wait()
        for _ in range(10):
            doc = db.get(f"d{i:02d}")
            if doc["i"] != i:
                wrong.append(doc)

    try:
        with caplog.at_level(logging.WARNING):
            threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        assert not wrong
        assert proxy.connections > 2  # not a cap
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert not warnings, warnings[:3]
        opened = proxy.connections
        for i in range(5):
            assert db.get(f"d{i:02d}")["i"] == i
        assert proxy.connections == opened  # the kept ones were reused
    finally:
        server.close()


def test_maxsize_is_documented_as_kept_not_a_cap():
    from couchcore.transport.base import TransportOptions

    for doc in (TransportOptions.__doc__, couchcore.Server.__doc__):
        assert "not a cap" in doc or "not a limit" in doc, doc


# -- LOW 2: several nodes, one answering 503 ------------------------------------------------------------


@pytest.fixture
def three_nodes(proxied):
    """Three "nodes" of one Server: loopback proxies in front of the one test server (each
    its own host:port), the first one's proxy being ``proxied``'s."""
    proxy, name, auth, direct = proxied
    others = [FaultyProxy(_upstream(proxy)) for _ in range(2)]
    try:
        yield [proxy, *others], name, auth, direct
    finally:
        for p in others:
            p.close()


def _upstream(proxy: FaultyProxy) -> str:
    host, port = proxy.upstream
    return f"http://{host}:{port}"


def _unavailable(proxy: FaultyProxy, status: int = 503) -> None:
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE"):
        proxy.respond(method, "/", status, b'{"error":"service_unavailable","reason":"injected"}', count=10**6)


@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.parametrize("backend", SYNC)
def test_a_node_answering_503_is_set_aside_and_reads_go_on(three_nodes, backend, status, monkeypatch):
    _skip_missing(backend)
    monkeypatch.setattr(couchcore._nodes, "BENCH", 30.0)  # set aside for the whole test
    proxies, name, auth, direct = three_nodes
    direct.save([{"_id": f"g{i}", "i": i} for i in range(3)])
    _unavailable(proxies[1], status)
    server = couchcore.Server([p.url for p in proxies], auth=auth, backend=backend, retries=0)
    try:
        db = server.db(name)
        for k in range(12):  # every read right, the view streamed too
            assert db.get(f"g{k % 3}")["i"] == k % 3
            assert [r.id for r in db.view("_all_docs")] == ["g0", "g1", "g2"]
            assert f"g{k % 3}" in db
        assert len(proxies[1].seen) == 1  # tried once, then set aside
        assert server._transport.nodes[1].failures == 1
    finally:
        server.close()


@pytest.mark.parametrize("backend", SYNC)
def test_a_write_meeting_a_503_node_gets_it_once_then_the_node_is_set_aside(three_nodes, backend, monkeypatch):
    _skip_missing(backend)
    monkeypatch.setattr(couchcore._nodes, "BENCH", 30.0)
    proxies, name, auth, direct = three_nodes
    _unavailable(proxies[1])
    server = couchcore.Server([p.url for p in proxies], auth=auth, backend=backend, retries=0)
    failed = []
    try:
        db = server.db(name)
        for k in range(9):
            try:
                db.save({"_id": f"w{k}"})
            except couchcore.ServerError as exc:
                assert exc.status == 503
                failed.append(k)
    finally:
        server.close()
    assert len(failed) == 1, failed  # not sent again elsewhere: a write is never sent twice
    assert [m for m, _ in proxies[1].seen] == ["POST"]
    stored = {r.id for r in direct.view("_all_docs")}
    assert stored == {f"w{k}" for k in range(9) if k not in failed}


@pytest.mark.parametrize("backend", SYNC)
def test_every_node_answering_503_gives_the_503(three_nodes, backend):
    _skip_missing(backend)
    proxies, name, auth, direct = three_nodes
    for p in proxies:
        _unavailable(p)
    server = couchcore.Server([p.url for p in proxies], auth=auth, backend=backend, retries=0)
    try:
        with pytest.raises(couchcore.ServerError) as info:
            server.db(name).get("x")
        assert info.value.status == 503
        assert [len(p.seen) for p in proxies] == [1, 1, 1]  # each tried once
    finally:
        server.close()


@pytest.mark.parametrize("facade, engine", ASYNC)
def test_a_node_answering_503_is_set_aside_on_the_async_facades(three_nodes, facade, engine, monkeypatch):
    monkeypatch.setattr(couchcore._nodes, "BENCH", 30.0)
    proxies, name, auth, direct = three_nodes
    direct.save([{"_id": f"g{i}", "i": i} for i in range(3)])
    _unavailable(proxies[2])
    module = couchcore.aio if facade == "aio" else pytest.importorskip("couchcore.tornado")

    async def main() -> list[Any]:
        async with module.Server([p.url for p in proxies], auth=auth, backend=engine, retries=0) as server:
            db = await server.db(name)
            got = []
            for k in range(9):
                got.append((await db.get(f"g{k % 3}"))["i"])
                got.append([r.id async for r in db.view("_all_docs")])
            return got

    got = asyncio.run(main())
    assert got == [x for k in range(9) for x in (k % 3, ["g0", "g1", "g2"])]
    assert len(proxies[2].seen) == 1


# -- LOW 4: sending save(list) again after OutcomeUnknown ------------------------------------------------

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "errors.rst"


def _recipe() -> str:
    """The code block of the guide's section on sending a write again after OutcomeUnknown."""
    text = GUIDE.read_text()
    section = text.split("Sending a write again after ``OutcomeUnknown``", 1)
    assert len(section) == 2, "the errors guide has no section on sending a write again after OutcomeUnknown"
    block = re.search(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", section[1])
    assert block, "the section shows no code"
    return textwrap.dedent(block.group(1))


@pytest.mark.parametrize("cut", ["answer lost", "answer timed out"])
def test_the_guides_recipe_settles_a_save_list_after_outcome_unknown(proxied, cut):
    """The answer of save(list) is lost (or held past the read timeout) after CouchDB wrote
    the documents: sent again as is, every document is a conflict (the finding); the guide's
    recipe takes those whose stored body equals ours as written: nothing pending, every
    document with its stored _rev, each stored once."""
    proxy, name, auth, direct = proxied
    db = couchcore.Server(proxy.url, auth=auth, timeout=TIMEOUT).db(name)
    docs = [{"_id": f"r{i:02d}", "n": i} for i in range(15)] + [{"n": 100 + i} for i in range(5)]
    if cut == "answer lost":
        proxy.cut_after_send("POST", f"/{name}/_bulk_docs")
    else:
        proxy.delay("POST", f"/{name}/_bulk_docs", seconds=HOLD)
    namespace = {"couchcore": couchcore, "db": db, "docs": docs}
    exec(compile(_recipe(), str(GUIDE), "exec"), namespace)
    result = namespace["result"]
    assert result.ok, result.pending
    assert [m for m, t in proxy.seen if "_bulk_docs" in t] == ["POST", "POST"]  # the first one, and the recipe's
    rows = {r.id: r.value["rev"] for r in direct.view("_all_docs")}
    assert len(rows) == 20  # each once (the 5 without _id got theirs before the first send)
    assert all(rows[d["_id"]] == d["_rev"] for d in docs)


@pytest.mark.parametrize("fault", ["withdrawal_503", "reads_503"])
def test_the_guides_recipe_keeps_an_id_with_a_stored_write_behind_a_conflict(proxied, fault):
    """Round 31: the recipe looked at the last write of an id only. A list holding an id
    twice, sent again: the first write a cluster's 202 that lost and stays stored
    (``stored_as_conflict``: its withdrawal failed) or of unknown fate (``unknown_outcome``:
    its leaves could not be read), the second a plain conflict whose body equals the stored
    one: the recipe took the second as its own first write and dropped the id from pending,
    the stored row with it. The 202 is a cluster's (the lost-update state is made with
    new_edits=false and the proxy answers the second _bulk_docs with it, as in
    test_review_r30_lead)."""
    import json

    from tests.integration.test_review_r30_lead import OURS, THEIRS, _live, _two_children

    proxy, name, auth, direct = proxied
    first = _two_children(direct)
    proxy.cut_after_send("POST", f"/{name}/_bulk_docs")  # the first save: its answer is lost
    proxy.respond("POST", f"/{name}/_bulk_docs", 201, json.dumps(
        [{"ok": True, "id": "k", "rev": OURS, "accepted": True},
         {"id": "k", "error": "conflict", "reason": "Document update conflict."}]).encode(), count=1)
    if fault == "withdrawal_503":
        proxy.respond("POST", f"/{name}/_bulk_docs", 503, b'{"error":"x","reason":"y"}', count=3)
    else:
        proxy.respond("GET", "open_revs", 503, b'{"error":"x","reason":"y"}', count=3)
    db = couchcore.Server(proxy.url, auth=auth, retries=0).db(name)
    docs = [{"_id": "k", "_rev": first, "log": ["B"]}, {"_id": "k", "_rev": first, "log": ["B"]}]
    assert {k: v for k, v in direct.get("k").items() if k != "_rev"} == {"_id": "k", "log": ["B"]}  # = docs[1]
    namespace = {"couchcore": couchcore, "db": db, "docs": docs}
    exec(compile(_recipe(), str(GUIDE), "exec"), namespace)
    result = namespace["result"]
    entry = result.pending.get("k")
    assert entry is not None, "the recipe dropped an id whose other write is stored"
    error = "stored_as_conflict" if fault == "withdrawal_503" else "unknown_outcome"
    assert entry["error"] == "conflict" and [e["error"] for e in entry.get("others", [])] == [error], entry
    assert docs[1]["_rev"] == first  # not taken for written
    assert _live(direct) == [THEIRS, OURS]


def test_save_and_outcome_unknown_docstrings_point_to_the_recipe():
    for doc in (couchcore.Database.save.__doc__, couchcore.OutcomeUnknown.__doc__):
        assert '"conflict"' in doc and "equals the one" in doc and "guide" in doc, doc


def test_a_plain_second_save_reports_the_first_writes_as_conflicts(proxied):
    """Why the recipe is needed (unchanged behaviour): sent again as it is, each document the
    lost request wrote is pending with "conflict"."""
    proxy, name, auth, direct = proxied
    db = couchcore.Server(proxy.url, auth=auth).db(name)
    docs = [{"_id": f"c{i}", "n": i} for i in range(5)]
    proxy.cut_after_send("POST", f"/{name}/_bulk_docs")
    with pytest.raises(couchcore.OutcomeUnknown):
        db.save(docs)
    again = db.save(docs)
    assert sorted(again.pending) == [f"c{i}" for i in range(5)]
    assert {p["error"] for p in again.pending.values()} == {"conflict"}


def test_the_guides_recipe_takes_the_stored_row_of_an_id_held_twice(proxied):
    """reviewer-round-r31b MEDIUM 1: a list holding an id twice, the first request's answer
    lost: CouchDB stored the first write and refused the second; sent again, both rows are
    plain conflicts, and the recipe compared the stored body with the last row only, so the
    first attempt's own write stayed pending in ``others`` (a merge() applied it again)."""
    proxy, name, auth, direct = proxied
    db = couchcore.Server(proxy.url, auth=auth, timeout=TIMEOUT).db(name)
    docs = [{"_id": "a", "v": 1}, {"_id": "a", "v": 2}, {"_id": "b", "v": 1}]
    proxy.cut_after_send("POST", f"/{name}/_bulk_docs")
    namespace = {"couchcore": couchcore, "db": db, "docs": docs}
    exec(compile(_recipe(), str(GUIDE), "exec"), namespace)
    result = namespace["result"]
    stored = direct.get("a")
    assert stored["v"] == 1  # the first write of the id, applied by the first request
    assert docs[0]["_rev"] == stored["_rev"] and docs[2]["_rev"] == direct.get("b")["_rev"]
    entry = result.pending["a"]  # the second write was refused by the first request as well
    assert entry["doc"] is docs[1] and entry["error"] == "conflict", entry
    assert not entry.get("others"), entry  # the stored write left pending
    assert list(result.pending) == ["a"]
