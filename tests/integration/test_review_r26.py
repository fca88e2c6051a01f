"""Round 26 review: silent wrong results and newcomer faults found by comparing couchcore's
answers with curl against Apache CouchDB 3.5 and with the CouchDB documentation. Each
test failed before its fix (benchmarks/results/reviewer-r26.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

import couchcore
import couchcore.aio
from tests.helpers import async_backends as _async_backends


@pytest.fixture
def db(one_copy_db):
    """Views, _all_docs and _changes read one copy per shard on a cluster: one copy (n=1)
    holds every acknowledged write, so these tests see their own writes at once."""
    return one_copy_db


# -- iterview with key= and inclusive_end=False ----------------------------------------------

def _by_k(db) -> None:
    db.save([{"_id": f"d{i}", "k": 2} for i in range(3)] + [{"_id": "e0", "k": 3}]
            + [{"_id": "_design/a", "views": {"by_k": {"map": "function(d){ emit(d.k, null) }"}}}])


@pytest.mark.parametrize("page_size", [1, 2, 10])
@pytest.mark.parametrize(("options", "ids"), [
    # PouchDB Server ignores endkey_docid
    pytest.param({"key": 2, "endkey_docid": "d2", "inclusive_end": False}, ["d0", "d1"],
                 marks=pytest.mark.couchdb_only),
    ({"key": 2, "inclusive_end": False}, []),
    pytest.param({"key": 2, "endkey_docid": "d1"}, ["d0", "d1"], marks=pytest.mark.couchdb_only),
    ({"key": 2, "inclusive_end": True}, ["d0", "d1", "d2"]),
])
def test_iterview_with_key_keeps_inclusive_end(db, is_couchdb, page_size, options, ids):
    # https://docs.couchdb.org/en/stable/api/ddoc/views.html: inclusive_end says whether the
    # end (key, endkey_docid) is included. iterview turned key into startkey = endkey and
    # dropped inclusive_end: key=2, inclusive_end=False gave every row of key 2, where
    # CouchDB (view(), curl) gives none
    _by_k(db)
    got = [r.id for r in db.iterview("a/by_k", page_size=page_size, **options)]
    assert got == ids
    if is_couchdb:  # PouchDB Server ignores inclusive_end next to key
        assert [r.id for r in db.view("a/by_k", **options)] == ids


# -- follow(limit=0) -----------------------------------------------------------------------

@pytest.mark.parametrize("one_off", [True, False])
def test_follow_refuses_a_limit_of_zero_per_request(db, one_off):
    # follow's limit is per request: with 0 every answer is empty, pending never reaches 0,
    # so one_off asked again ~350 times a second for ever (and a longpoll follower never
    # delivered the pending changes)
    db.save({"_id": "x"})
    with pytest.raises(couchcore.InvalidOption, match="per request"):
        db.follow(since=0, one_off=one_off, limit=0)
    # limit=1 still pages through everything, one change per request
    assert [c["id"] for c in db.follow(since=0, one_off=True, limit=1)] == ["x"]


@pytest.mark.parametrize("backend_name", _async_backends())
def test_follow_refuses_a_limit_of_zero_per_request_async(couch_url, db, backend_name):
    async def main() -> None:
        adb = couchcore.aio.Database(f"{couch_url}/{db.name}", backend=backend_name)
        with pytest.raises(couchcore.InvalidOption, match="per request"):
            adb.follow(since=0, one_off=True, limit=0)

    asyncio.run(main())


# -- option names that collided with couchcore's own parameters ------------------------------

@pytest.mark.couchdb_only  # PouchDB Server has no partitioned databases
def test_partition_view_and_all_docs_take_key(server, db_name, couch_url):
    # Partition.view passed the partition as a parameter named `key` to the protocol
    # layer: the view option key= collided with it (TypeError: multiple values for 'key')
    db = server.create(db_name, partitioned=True, n=1)  # one copy: _all_docs reads one copy per shard
    try:
        db.save([{"_id": f"p1:x{i}", "k": i % 2} for i in range(4)] + [{"_id": "p2:y", "k": 1}]
                + [{"_id": "_design/pv", "views": {"by_k": {"map": "function(d){ emit(d.k, null) }"}}}])
        part = db.partition("p1")
        assert [r.id for r in part.view("pv/by_k", key=1)] == ["p1:x1", "p1:x3"]
        assert [r.id for r in part.all_docs(key="p1:x2")] == ["p1:x2"]
        assert [r.id for r in part.view("pv/by_k", key=1, limit=1)] == ["p1:x1"]

        async def main() -> list[list[str]]:
            async with couchcore.aio.Server(couch_url) as aserver:
                apart = (await aserver.db(db_name)).partition("p1")
                return [[r.id async for r in apart.view("pv/by_k", key=1)],
                        [r.id async for r in apart.all_docs(key="p1:x2")]]

        assert asyncio.run(main()) == [["p1:x1", "p1:x3"], ["p1:x2"]]
    finally:
        server.delete(db_name)


def test_design_functions_take_query_parameters_named_like_couchcores_own(db):
    # show/list/update options become req.query; the names name, db, ctx, docid, body and
    # view_name collided with couchcore's parameters (TypeError before anything was sent)
    db.save([{"_id": "d0", "k": 1}, {"_id": "_design/a",
             "views": {"by_k": {"map": "function(d){ if (d.k) emit(d.k, null) }"}},
             "shows": {"s": "function(doc, req){ return JSON.stringify(req.query) }"},
             "lists": {"l": "function(head, req){ send(JSON.stringify(req.query)) }"},
             "updates": {"u": "function(doc, req){ return [null, JSON.stringify(req.query)] }"}}])
    query = {"name": "x", "db": "y", "ctx": "z", "docid": "w", "view_name": "v"}
    assert json.loads(db.show("a/s", "d0", **query).raw) == query
    assert json.loads(db.list("a/l", "by_k", **query).raw) == query
    assert json.loads(db.update("a/u", **query).raw) == query


# -- os.fork(): a child must not share its parent's connections or uuids --------------------

def _in_child(work, meanwhile=lambda: None) -> bytes:
    """Run ``work()`` in a forked child while the parent runs ``meanwhile()``; the child's
    bytes come back through a pipe."""
    import os
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, work())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        meanwhile()
    finally:
        with os.fdopen(read_end, "rb") as pipe:
            out = pipe.read()
        status = os.waitpid(pid, 0)[1]
    assert status == 0
    return out


def test_a_forked_child_gets_its_own_answers(db):
    # the child inherited the parent's kept-alive connection: both read answers from one
    # socket, and db.get(a) returned another process's document (38-48 % of the reads),
    # or waited the whole read timeout
    db.save([{"_id": f"d{i}"} for i in range(4)])
    db.get("d0")  # a kept-alive connection in the pool, before the fork
    wrong = []

    def parent() -> None:
        wrong.append(sum(db.get("d2")["_id"] != "d2" for _ in range(150)))

    child_wrong = _in_child(lambda: str(sum(db.get("d1")["_id"] != "d1" for _ in range(150))).encode(), parent)
    assert (wrong, child_wrong) == ([0], b"0")
    assert db.get("d3")["_id"] == "d3"  # and the parent's connection still works


def test_a_forked_child_does_not_reuse_the_parents_uuids(db):
    # the cached server uuids were inherited: parent and child gave their new documents the
    # same _id, and save(doc, force=True) overwrote the other process's document
    db.save({"warm": 1})  # fetches a batch of uuids, most of them stay cached

    def child() -> bytes:
        doc = {"who": "child"}
        db.save(doc)
        return doc["_id"].encode()

    child_id = _in_child(child).decode()
    doc = {"who": "parent"}
    db.save(doc, force=True)
    assert doc["_id"] != child_id
    assert db.get(child_id)["who"] == "child"


# -- node-local endpoints on a Server over several nodes ------------------------------------

class _Recorder:
    """A transport stand-in that records which node got which request (NodePool routes
    requests among transports; which one answers is all this checks)."""

    def __init__(self, name: str, log: list) -> None:
        self.base_url, self.options, self.credentials = f"http://{name}", None, None
        self.name, self.log = name, log

    def send(self, request):
        from couchcore.protocol.messages import Response

        self.log.append((self.name, request.path))
        return Response(200, {}, b"{}")  # (NodePool reads the status: 502/503/504 fail over)

    def close(self) -> None:
        pass


def test_node_local_requests_go_to_the_first_node_only():
    from couchcore._nodes import NodePool
    from couchcore.protocol.messages import Request
    log: list = []
    pool = NodePool([_Recorder(n, log) for n in ("n1", "n2", "n3")])
    for _ in range(3):
        pool.send(Request("GET", "/_node/_local/_config/couchdb"))
        pool.send(Request("PUT", "/_node/_local/_config/s/k", body=b'"v"'))
        pool.send(Request("GET", "/_all_dbs"))
    assert {n for n, path in log if path.startswith("/_node/_local/")} == {"n1"}
    assert {n for n, path in log if path == "/_all_dbs"} == {"n1", "n2", "n3"}


@pytest.mark.couchdb_only
def test_config_on_a_server_over_several_nodes_sets_and_reads_the_first_node(couch_urls, backend):
    # config is each node's own (/_node/_local/_config: the node that answers); the
    # setting went to whichever node was next in turn and the next read to another one:
    # NotFound or the old value, and nothing said which node had it
    server = couchcore.Server(couch_urls, backend=backend)
    key = "couchcore_test_r26/k"
    try:
        server.config(key, "v1")
        assert [server.config(key) for _ in range(6)] == ["v1"] * 6
        assert couchcore.Server(couch_urls[0]).config(key) == "v1"
        for url in couch_urls[1:]:
            with pytest.raises(couchcore.NotFound):
                couchcore.Server(url).config(key)
        assert server.config(key, delete=True) == "v1"
    finally:
        for url in couch_urls:
            with contextlib.suppress(couchcore.NotFound):
                couchcore.Server(url).config(key, delete=True)


# -- save(list): one document CouchDB refuses the whole request for -------------------------

@pytest.mark.couchdb_only  # PouchDB Server has no max_document_size
def test_save_list_with_one_document_over_the_size_limit_writes_the_others(db):
    # CouchDB answers 413 for the whole _bulk_docs when one document is over
    # max_document_size (8 MB by default) and writes none: save(list) raised
    # RequestEntityTooLarge and wrote nothing, where a list reports per document
    docs = [{"_id": f"s{i}"} for i in range(5)]
    docs.insert(2, {"_id": "huge", "x": "a" * (9 * 1024 * 1024)})
    result = db.save(docs)
    assert set(result.pending) == {"huge"}
    assert result.pending["huge"]["error"] == "document_too_large"
    assert all(doc["_rev"].startswith("1-") for doc in docs if doc["_id"] != "huge")
    assert sorted(r.id for r in db.view("_all_docs")) == [f"s{i}" for i in range(5)]
    with pytest.raises(couchcore.RequestEntityTooLarge):
        db.save({"_id": "huge2", "x": "a" * (9 * 1024 * 1024)})


def test_save_list_with_a_stub_of_nothing_writes_the_others(db):
    # one document with an attachment stub that names nothing: CouchDB answers 412
    # missing_stub for the whole request, yet stores the other documents (the other
    # shards; sometimes after the answer). save(list) raised PreconditionFailed, with the
    # others' _rev set or not depending on timing
    for round_ in range(5):
        good = [{"_id": f"g{round_}-{i}", "n": i} for i in range(6)]
        bad = {"_id": f"b{round_}", "_attachments": {"a.txt": {"stub": True}}}
        result = db.save([good[0], good[1], bad, *good[2:]])
        assert set(result.pending) == {bad["_id"]}
        assert result.pending[bad["_id"]]["error"] in ("missing_stub", "precondition_failed")
        for doc in good:
            assert doc["_rev"].startswith("1-")
            assert db.get(doc["_id"])["n"] == doc["n"]
    with pytest.raises(couchcore.PreconditionFailed):
        db.save({"_id": "b", "_attachments": {"a.txt": {"stub": True}}})


# -- misuse of a streamed result: couchcore's own exceptions ---------------------------------

def test_streamed_result_misuse_raises_couchcore_errors(db):
    # len() during the iteration raised a bare TypeError and a second iteration a bare
    # RuntimeError: `except couchcore.CouchcoreError` missed both
    db.save([{"_id": f"d{i}"} for i in range(3)])
    view = db.view("_all_docs")
    next(iter(view))
    with pytest.raises(couchcore.StreamMisuse) as info:
        len(view)
    assert isinstance(info.value, (couchcore.CouchcoreError, TypeError))
    view = db.view("_all_docs")
    assert len(list(view)) == 3  # list() still skips the length hint while it streams
    with pytest.raises(couchcore.StreamConsumed) as consumed:
        list(view)
    assert isinstance(consumed.value, (couchcore.CouchcoreError, RuntimeError))
    for result in (db.changes(), db.iterview("_all_docs", page_size=2)):
        assert len(list(result)) == 3
        with pytest.raises(couchcore.StreamConsumed):
            list(result)


# -- bulk.load(id_field=): a row without its key -------------------------------------------

def test_load_with_id_field_rejects_rows_without_it_so_a_rerun_adds_nothing(db):
    # a row whose id field was missing or null got a random id on every run: a second run of
    # the same load added it again (--skip-existing could not know it)
    from couchcore.bulk import load
    rows = [{"sku": "A1", "q": 1}, {"sku": "", "q": 2}, {"sku": None, "q": 3}, {"q": 4}, {"sku": 7, "q": 5},
            b'{"sku": null, "q": 6}', b'{"q": 7}', b'{"sku": "B2", "q": 8}']
    for run in range(2):
        report = load(db, [dict(r) if isinstance(r, dict) else r for r in rows], id_field="sku",
                      skip_existing=True, upsert=run > 0)
        assert report.rejected == 5
        assert sorted(f.error for f in report.failures) == ["invalid_id"] * 5
    assert sorted(r.id for r in db.view("_all_docs")) == ["7", "A1", "B2"]


@pytest.mark.couchdb_only  # PouchDB Server has no max_document_size
def test_a_refused_large_document_stays_pending_when_its_id_comes_again_later(db):
    # the 413 halves were written as separate requests, each forgetting which ids the
    # other had refused: the later document of the id was written and took the refused
    # one's pending entry away, so nothing was reported for a document that was not stored
    big = {"_id": "a", "v": "big", "x": "a" * (9 * 1024 * 1024)}
    small = {"_id": "a", "v": "small"}
    result = db.save([big, small, {"_id": "c"}])
    assert set(result.pending) == {"a"} and result.pending["a"]["doc"] is big
    assert result.pending["a"]["error"] == "document_too_large"
    assert "_rev" not in big and db.get("a")["v"] == "small"


def test_replicating_a_list_with_a_stub_of_nothing_writes_the_others(db):
    # new_edits=False (replication, dump | load --new-edits-false): one document whose stub
    # names nothing made CouchDB refuse the request with 412 (storing some of the others
    # anyway) and save(list) raised for all; new_edits=False writes a revision once however
    # often it is sent, so the list is split until the refused document stands alone
    good = [{"_id": f"g{i}", "_rev": "1-abc", "n": i} for i in range(6)]
    bad = {"_id": "b", "_rev": "1-abd", "_attachments": {"a.txt": {"stub": True}}}
    result = db.save([good[0], bad, *good[1:]], new_edits=False)
    assert set(result.pending) == {"b"}
    for doc in good:
        assert db.get(doc["_id"])["_rev"] == "1-abc"


def test_a_stub_of_nothing_next_to_two_documents_of_one_id(db):
    # the recovery resent both documents of id a and decided "written" by id: it read _rev
    # from the copy that was not written (KeyError, no result), or lost the second a's outcome
    for t in range(8):  # ids on either shard: whether CouchDB stored a before answering varies
        first, second = {"_id": f"a{t}", "v": 1}, {"_id": f"a{t}", "v": 2}
        bad = {"_id": f"b{t}", "_attachments": {"x": {"stub": True}}}
        result = db.save([first, second, bad])
        assert set(result.pending) == {f"a{t}", f"b{t}"}
        assert result.pending[f"b{t}"]["error"] in ("missing_stub", "precondition_failed")
        assert result.pending[f"a{t}"]["doc"] is second and result.pending[f"a{t}"]["error"] == "conflict"
        assert first["_rev"].startswith("1-") and "_rev" not in second
        assert db.get(f"a{t}")["v"] == 1


@pytest.mark.couchdb_only  # PouchDB Server has no max_document_size
def test_a_refused_large_document_stays_pending_next_to_a_stub_of_nothing(db):
    # the half [small a, stub of nothing] went through the stub recovery, which did not know
    # the other half had refused the big a: writing the small a took the big one's entry
    big = {"_id": "a", "v": "big", "x": "a" * (9 * 1024 * 1024)}
    small = {"_id": "a", "v": "small"}
    bad = {"_id": "b", "_attachments": {"x": {"stub": True}}}
    result = db.save([big, {"_id": "o1"}, small, bad])
    assert set(result.pending) == {"a", "b"}
    assert result.pending["a"]["doc"] is big and result.pending["a"]["error"] == "document_too_large"
    assert "_rev" not in big and small["_rev"].startswith("1-") and db.get("a")["v"] == "small"


def test_follower_misuse_raises_couchcore_errors(db):
    # a follower iterated twice raised a bare RuntimeError (the round's fresh review)
    db.save({"_id": "x"})
    follower = db.follow(since=0, one_off=True)
    assert [c["id"] for c in follower] == ["x"]
    with pytest.raises(couchcore.StreamConsumed):
        list(follower)
