"""The async facade (``couchcore.tornado``) against the real test server.

Every test drives its own event loop with :func:`arun` (no pytest plugin needed). The
sync ``db`` fixture creates (and drops) a fresh database; the tests reach it through an
async :class:`couchcore.tornado.Server` built once for the session and used from many
loops in turn. :class:`Proxy` is a transparent TCP proxy to the test server that
counts connections and can cut them: it is how the tests see what the server sees
(no mocked HTTP anywhere).
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
import os
import tempfile
from urllib.parse import urlsplit

import pytest
import tornado.gen
import tornado.httpclient
import tornado.web

import couchcore
import couchcore.tornado as ct
from couchcore.testing import TCPProxy
from tests.helpers import eventually, nothing_in_flight
from couchcore import Document, Row, Status

TAGS = ["a", "b", "c"]
DDOC = {
    "_id": "_design/t",
    "views": {
        "by_n": {"map": "function(doc){ if (doc.n !== undefined) emit(doc.n, doc.tag); }"},
        "sum": {"map": "function(doc){ if (doc.tag) emit(doc.tag, doc.n); }", "reduce": "_sum"},
    },
    "lists": {
        "csv": "function(head, req){ start({headers: {'Content-Type': 'text/csv'}});"
               " var row; while (row = getRow()) { send(row.key + ',' + row.value + '\\n'); } }",
    },
    "shows": {
        "json": "function(doc, req){ return {json: {id: doc ? doc._id : null, n: doc ? doc.n : null}}; }",
    },
    "updates": {
        "bump": "function(doc, req){ doc.n = (doc.n || 0) + 1; return [doc, JSON.stringify({n: doc.n})]; }",
        "echo": "function(doc, req){ return [null, {json: {got: JSON.parse(req.body)}}]; }",
    },
}


def arun(coro, timeout: float = 30.0):
    """Run ``coro`` on a fresh event loop (with a safety timeout)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="session")
def aserver(couch_url):
    server = ct.Server(couch_url)
    yield server
    server.close()


@pytest.fixture(scope="module")
def sserver(couch_url):
    """A sync server to set up data (the shared ``server`` fixture is parametrized over
    the sync backends, which would only run these async tests twice)."""
    server = couchcore.Server(couch_url)
    yield server
    server.close()


@pytest.fixture
def db(sserver):
    """A fresh database (sync handle), dropped afterwards. One copy of each shard (``n=1``,
    PouchDB Server ignores it): a cluster reads views, ``_changes`` and ``_security`` from
    one copy, which may not have applied a write the others acknowledged yet
    (https://docs.couchdb.org/en/stable/cluster/sharding.html#quorum); these tests are
    about the async facade, the cluster's behaviour is tested in test_cluster.py. (A purge,
    too, reaches the other copies "in an eventually consistent manner":
    https://docs.couchdb.org/en/stable/cluster/purging.html)"""
    database = sserver.create("ct-" + os.urandom(6).hex(), n=1)
    yield database
    try:
        sserver.delete(database.name)
    except couchcore.NotFound:
        pass


@pytest.fixture
def adb(aserver, db):
    """The async twin of ``db`` (same database)."""
    return aserver._database(db.name)


def keeps_alive(server) -> bool:
    """Whether ``server``'s async backend reuses connections (pycurl: yes; Tornado's
    simple client: a connection per request)."""
    return type(server._transport).__name__ == "CurlLoopTransport"


def make_docs(db, n=6):
    docs = [{"_id": f"d{i:02d}", "n": i, "tag": TAGS[i % 3]} for i in range(n)]
    assert db.save(docs + [dict(DDOC)]).ok
    return docs


# -- the facade ------------------------------------------------------------------------------


def _public(cls) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_") and callable(inspect.getattr_static(cls, n))}


def test_sync_and_async_facades_expose_the_same_operations():
    assert _public(couchcore.Server) == _public(ct.Server)
    assert _public(couchcore.Database) == _public(ct.Database)
    assert ct.Server.is_async and ct.Database.is_async and not couchcore.Database.is_async
    # every operation of the core API is there without per-backend code, with callback=
    for api, cls in ((couchcore._api.ServerAPI, ct.Server), (couchcore._api.DatabaseAPI, ct.Database)):
        for name in _public(api) - couchcore._callbacks.NO_CALLBACK:
            method = getattr(cls, name)
            assert getattr(method, "couchcore_callback", False), name
            assert method.__wrapped__ is inspect.getattr_static(api, name), name


def test_an_operation_added_to_the_core_later_works_unchanged(aserver, monkeypatch):
    from couchcore.protocol.messages import Request

    def up(ctx):  # what another issue would add to the protocol layer + DatabaseAPI
        resp = yield Request("GET", "/")
        return resp.status

    monkeypatch.setattr(couchcore._api.ServerAPI, "welcome_status", lambda self: self._run(up(self._ctx)),
                        raising=False)
    couchcore._callbacks.add_callbacks(ct.Server)
    try:
        assert arun(aserver.welcome_status()) == 200
        assert couchcore.Server(aserver._url_with_credentials()).welcome_status() == 200

        async def with_callback():
            got = asyncio.get_running_loop().create_future()
            aserver.welcome_status(callback=lambda result, status: got.set_result((result, status.code)))
            return await got

        assert arun(with_callback()) == (200, 200)
    finally:
        if "welcome_status" in ct.Server.__dict__:
            delattr(ct.Server, "welcome_status")


def test_methods_return_tasks_in_a_loop_and_coroutines_outside(aserver):
    coro = aserver.version()
    assert inspect.iscoroutine(coro)
    assert isinstance(asyncio.run(coro), str)

    async def main():
        task = aserver.version()
        assert isinstance(task, asyncio.Task)
        return await task

    assert isinstance(arun(main()), str)


def test_database_built_directly_from_a_url(couch_url, db):
    async def main():
        direct = ct.Database(f"{couch_url}/{db.name}")
        assert direct.is_async and isinstance(direct.server, ct.Server)
        assert await direct.exists()
        direct.server.close()

    arun(main())


# -- operation families ----------------------------------------------------------------------


def test_server_operations(aserver, couch_url):
    async def main():
        assert isinstance(await aserver.version(), str)
        assert isinstance(await aserver.info(), dict)
        assert "_users" in await aserver.all_dbs() or isinstance(await aserver.all_dbs(), list)
        uuids = await aserver.uuids(3)
        assert len(uuids) == 3 and len(set(uuids)) == 3
        assert isinstance(await aserver.tasks(), list)
        assert isinstance(await aserver.stats(), dict)
        assert isinstance(await aserver.membership(), dict)
        name = "ct-" + os.urandom(5).hex()
        created = await aserver.create(name)
        assert isinstance(created, ct.Database) and created.name == name
        with pytest.raises(couchcore.PreconditionFailed):
            await aserver.create(name)
        assert await aserver.exists(name)
        assert name in [n async for n in aserver]
        assert (await aserver[name]).name == name
        opened = await aserver.db(name + "-new", create=True)
        assert await opened.exists()
        await aserver.delete(opened.name)
        await aserver.delete(name)
        assert not await aserver.exists(name)
        with pytest.raises(couchcore.NotFound):
            await aserver.db(name)
        with pytest.raises(couchcore.InvalidDatabaseName):
            await aserver.create("Bad Name")

    arun(main())


def test_config_set_get_delete(aserver):
    async def main():
        key = "couchcore_async/k" + os.urandom(4).hex()
        assert await aserver.config(key, "v1") is None
        assert await aserver.config(key) == "v1"
        assert await aserver.config(key, delete=True) == "v1"
        with pytest.raises(couchcore.NotFound):
            await aserver.config(key)

    arun(main())


def test_database_operations(adb):
    async def main():
        info = await adb.info()
        assert info["db_name"] == adb.name and info["doc_count"] == 0
        assert await adb.exists()
        assert await adb.compact() is True
        assert await adb.cleanup() is True
        assert isinstance(await adb.commit(), dict)
        sec = await adb.security()
        assert isinstance(sec, Document)

    arun(main())


@pytest.mark.couchdb_only  # PouchDB Server has no _purge, design-doc _info, _compact/{ddoc} or real _stats
def test_operations_only_couchdb_has(adb, db, aserver):
    make_docs(db, 3)

    async def main():
        doc = await adb.get("d01")
        purged = await adb.purge([doc])
        assert doc["_rev"] in purged["purged"]["d01"]
        with pytest.raises(couchcore.NotFound):
            await adb.get("d01")
        assert (await adb.info("t"))["name"] == "t"
        assert await adb.compact("t") is True
        assert "value" in await aserver.stats("couchdb/request_time")
        with pytest.raises(couchcore.NotFound):
            await aserver.stats("nope/nothing")

    arun(main())


def test_document_operations(adb):
    async def main():
        doc = {"_id": "doc1", "title": "Hello", "u": "é☃", "n": 2**70}
        result = await adb.save(doc)
        assert isinstance(result, couchcore.ConflictResolution) and result.ok and doc["_rev"].startswith("1-")
        got = await adb.get("doc1")
        assert isinstance(got, Document) and got.title == "Hello" and got.u == "é☃" and got.n == 2**70
        assert (await adb["doc1"])._rev == doc["_rev"]
        # a conflict raises, carrying the resolution; force overwrites
        stale = dict(got, _rev="1-00000000000000000000000000000000")
        with pytest.raises(couchcore.Conflict) as info:
            await adb.save(stale)
        assert "doc1" in info.value.resolution.pending
        stale["title"] = "forced"
        assert (await adb.save(stale, force=True)).ok
        assert (await adb.get("doc1")).title == "forced"
        # merge runs the user function inside the (async-driven) operation
        old = dict(await adb.get("doc1"))
        await adb.save(dict(old, title="server"))
        merged = await adb.save(dict(old, extra=1), merge=lambda local, server: dict(server, extra=local["extra"]))
        assert merged.ok
        assert {(await adb.get("doc1")).title, (await adb.get("doc1")).extra} == {"server", 1}
        # a list: per-doc outcome, uuids for docs without _id
        docs = [{"n": i} for i in range(3)] + [{"_id": "doc1", "n": 9}]
        res = await adb.save(docs)
        assert len(res.resolved) == 3 and list(res.pending) == ["doc1"]
        # resolutions are awaitables too
        again = await res.overwrite()
        assert again.ok and (await adb.get("doc1")).n == 9
        many = await adb.get(["doc1", "missing", docs[0]["_id"]])
        assert many[0]["_id"] == "doc1" and many[1] is None and many[2]["n"] == 0
        assert [d and d["_id"] for d in await adb.get_many(["doc1", "nope"], concurrency=2)] == ["doc1", None]
        assert await adb.contains("doc1") and not await adb.contains("nope")
        new_rev = await adb.copy("doc1", "doc2")
        assert (await adb.get("doc2")).n == 9 and isinstance(new_rev, (str, type(None)))
        revs = await adb.revisions("doc1")
        assert len(revs) >= 3 and revs[0] == (await adb.get("doc1"))._rev
        deleted = await adb.delete(await adb.get("doc2"))
        assert deleted["ok"]
        with pytest.raises(couchcore.NotFound):
            await adb.get("doc2")
        assert sorted([i async for i in adb]) == sorted(["doc1"] + [d["_id"] for d in docs[:3]])

    arun(main())


def test_attachments_bytes_file_iterator_and_streamed_download(adb):
    async def main():
        doc = {"_id": "att"}
        await adb.save(doc)
        await adb.put_attachment(doc, b"\x00\x01binary", "bin.dat", "application/octet-stream")
        await adb.put_attachment(doc, "héllo", "hello.txt")
        payload = os.urandom(300_000)
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            f.write(payload)
            f.flush()
            f.seek(0)
            await adb.put_attachment(doc, f)  # streamed with body_producer, named after the file
            name = os.path.basename(f.name)
        assert doc["_rev"].startswith("4-")
        assert await adb.get_attachment("att", "bin.dat") == b"\x00\x01binary"
        assert (await adb.get_attachment(doc, "hello.txt")).decode("utf-8") == "héllo"
        stream = await adb.open_attachment("att", name)
        assert stream.length == len(payload)
        chunks = [c async for c in stream]
        assert b"".join(chunks) == payload and len(chunks) >= 1
        with pytest.raises(TypeError, match="async for"):
            list(await adb.open_attachment("att", name))
        await adb.delete_attachment(doc, "bin.dat")
        with pytest.raises(couchcore.NotFound):
            await adb.get_attachment("att", "bin.dat")
        # a request body from an (async) iterator of chunks goes out chunked
        from couchcore.protocol.messages import Request

        async def chunks_gen():
            for part in (b'{"_id": "from-', b'iterator", ', b'"n": 7}'):
                yield part

        resp = await adb.server._transport.send(Request("PUT", f"/{adb.name}/from-iterator", body=chunks_gen(),
                                                        headers={"Content-Type": "application/json"}))
        assert resp.status == 201
        assert (await adb.get("from-iterator")).n == 7

    arun(main())


def test_views_stream_with_async_for(adb, db):
    make_docs(db)

    async def main():
        result = await adb.view("t/by_n")
        assert isinstance(result, couchcore.ViewResult)
        rows = [row async for row in result]
        assert [r.key for r in rows] == list(range(6)) and all(isinstance(r, Row) for r in rows)
        assert result.total_rows == 6
        with pytest.raises(RuntimeError, match="already iterated"):
            [r async for r in result]
        keyed = await (await adb.view("_design/t/_view/by_n", keys=[3, 1])).aall()
        assert [r.id for r in keyed] == ["d03", "d01"]
        with_docs = await (await adb.view("t/by_n", include_docs=True, limit=2)).aall()
        assert with_docs[1].doc["tag"] == "b"
        reduced = await (await adb.view("t/sum", group=True)).aall()
        assert {r.key: r.value for r in reduced} == {"a": 3, "b": 5, "c": 7}
        async with await adb.view("_all_docs") as early:
            async for _ in early:
                break
        temp = await adb.query("function(doc){ if (doc.n > 3) emit(doc.n, null); }")
        assert [r.key for r in temp] == [4, 5]
        assert (await adb.list("t/csv", "by_n", limit=2)).body == b"0,a\n1,b\n"
        assert (await adb.show("t/json", "d02")).body == {"id": "d02", "n": 2}
        bumped = await adb.update("t/bump", "d01")
        assert bumped.status in (200, 201) and (await adb.get("d01")).n == 2
        assert (await adb.update("t/echo", body={"a": [1, "é"]})).body == {"got": {"a": [1, "é"]}}
        created = await adb.create_index(["n"], name="by-n", ddoc="mango-n")
        assert created["result"] in ("created", "exists")
        found = await adb.find({"n": {"$gt": 3}}, sort=[{"n": "asc"}], fields=["_id"])
        assert [d["_id"] for d in found["docs"]] == ["d04", "d05"]
        with pytest.raises(couchcore.NotFound):
            await adb.view("t/missing")

    arun(main())


def test_sync_and_async_streams_refuse_the_other_iteration(adb, db):
    make_docs(db, 3)
    sync_result = db.view("_all_docs")

    async def main():
        with pytest.raises(TypeError, match="plain 'for'"):
            async for _ in sync_result:
                pass
        async_result = await adb.view("_all_docs")
        with pytest.raises(TypeError, match="'async for'"):
            for _ in async_result:
                pass
        async_result.close()
        with pytest.raises(TypeError, match="'async for'"):
            for _ in adb.changes(feed="continuous"):
                pass
        with pytest.raises(TypeError, match="plain 'for'"):
            async for _ in db.changes(feed="continuous"):
                pass
        with pytest.raises(TypeError, match="await db.contains"):
            "x" in adb  # noqa: B015
        with pytest.raises(TypeError, match="async for"):
            list(adb)

    arun(main())
    sync_result.close()


def test_changes_normal_and_longpoll(adb, db):
    make_docs(db, 3)

    async def main():
        normal = await adb.changes()
        assert len(normal["results"]) == 4 and "last_seq" in normal
        since = normal["last_seq"]
        waiting = adb.changes(feed="longpoll", since=since)
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await adb.save({"_id": "late"})
        got = await waiting
        assert [c["id"] for c in got["results"]] == ["late"]

    arun(main())


def test_continuous_feed_delivers_live_changes_and_stops(adb):
    async def main():
        feed = adb.changes(feed="continuous", heartbeat=500)
        assert isinstance(feed, ct.ChangesFeed)
        seen = []

        async def consume():
            async for change in feed:
                seen.append(change["id"])

        task = asyncio.create_task(consume())
        for i in range(3):
            await adb.save({"_id": f"live{i}"})
        await eventually(lambda: len(seen) == 3)
        feed.stop()
        await asyncio.wait_for(task, 5)
        assert seen == ["live0", "live1", "live2"]
        await eventually(lambda: adb.server._transport.active == 0)

    arun(main())


def test_continuous_feed_reconnects_without_loss_or_repeats(couch_url, aserver, db):
    """Cut the feed's connection twice while documents keep arriving: every change
    is delivered exactly once across the reconnections."""

    async def main():
        async with TCPProxy(couch_url) as proxy:
            via_proxy = ct.Server(proxy.url)
            feed = via_proxy._database(db.name).changes(feed="continuous", heartbeat=500)
            writer = aserver._database(db.name)
            seen = []

            async def consume():
                async for change in feed:
                    seen.append(change["id"])
                    if len(seen) == 30:
                        return

            task = asyncio.create_task(consume())
            expected = []
            for round_ in range(3):
                for i in range(10):
                    docid = f"r{round_}-{i:02d}"
                    expected.append(docid)
                    await writer.save({"_id": docid})
                await eventually(lambda: len(seen) >= 10 * round_ + 3)
                if round_ < 2:
                    proxy.cut()  # mid-stream: some of the round may still be in flight
            await asyncio.wait_for(task, 10)
            # each exactly once (CouchDB 3 databases are sharded: a feed resumed with
            # since= interleaves the shards, so only PouchDB Server keeps write order)
            assert len(seen) == len(set(seen)) == 30 and sorted(seen) == sorted(expected)
            assert feed.reconnects >= 2 and proxy.total >= 3
            via_proxy.close()

    arun(main())


# -- callbacks ---------------------------------------------------------------------------------


def test_callback_style_success_and_failure(adb, db):
    make_docs(db, 3)

    async def main():
        loop = asyncio.get_running_loop()
        calls: list = []
        done = asyncio.Event()

        def cb(result, status):
            calls.append((result, status))
            if len(calls) == 4:
                done.set()

        assert isinstance(adb.get("d01", callback=cb), asyncio.Task)
        adb.get("nope", callback=cb)
        adb.view("t/by_n", callback=cb)
        adb.save({"_id": "d01"}, callback=cb)  # conflict
        await asyncio.wait_for(done.wait(), 10)
        by_kind = {type(r).__name__ if s.ok else s.error.__name__: (r, s) for r, s in calls}
        doc, status = by_kind["Document"]
        assert isinstance(status, Status) and status.ok and status.code == 200 and status.error is None
        assert status.headers.get("content-type", "").startswith("application/json") and status.response.status == 200
        missing, status = by_kind["NotFound"]
        assert missing is None and not status.ok and status.code == 404 and status.error is couchcore.NotFound
        assert isinstance(status.exception, couchcore.NotFound) and status.error is not None
        rows, status = by_kind["ViewResult"]
        assert [r.key for r in rows] == [0, 1, 2] and len(rows) == 3  # read whole: a plain for works
        _, status = by_kind["Conflict"]
        assert status.code == 409 and status.exception.resolution is not None
        assert loop.is_running()

    arun(main())


def test_callback_gets_bad_input_and_transport_errors_as_a_failed_status(adb):
    async def main():
        got = []
        adb.get(42, callback=lambda r, s: got.append(s))
        dead = ct.Server("http://user:secret@127.0.0.1:9", connect_timeout=2)
        dead.version(callback=lambda r, s: got.append(s))
        await eventually(lambda: len(got) == 2)
        errors = {s.error for s in got}
        assert couchcore.InvalidInput in errors or any(issubclass(e, couchcore.InvalidInput) for e in errors)
        transport_status = next(s for s in got if issubclass(s.error, couchcore.TransportError))
        assert transport_status.code is None and "secret" not in str(transport_status.exception)

    arun(main())


def test_a_callback_that_raises_is_logged_and_the_loop_goes_on(adb, caplog):
    async def main():
        def bad(result, status):
            raise RuntimeError("boom in callback")

        task = adb.exists(callback=bad)
        assert await task is True  # the task itself succeeds
        return await adb.exists()

    with caplog.at_level(logging.ERROR, logger="couchcore.tornado"):
        assert arun(main()) is True
    assert "boom in callback" in caplog.text


def test_coroutine_callbacks_are_awaited(adb):
    async def main():
        got = asyncio.get_running_loop().create_future()

        async def cb(result, status):
            await asyncio.sleep(0)
            got.set_result((result, status.ok))

        adb.exists(callback=cb)
        return await got

    assert arun(main()) == (True, True)


def test_changes_callback_batches_logs_errors_and_goes_on(adb, caplog):
    async def main():
        batches = []

        def cb(seq, changes):
            batches.append([c["id"] for c in changes])
            if changes[0]["id"] == "boom":
                raise ValueError("callback failure")

        feed = adb.changes(callback=cb, latency=0.2)
        assert isinstance(feed, ct.ChangesFeed)
        await adb.save([{"_id": "a1"}, {"_id": "a2"}])
        await eventually(lambda: sum(map(len, batches)) == 2)
        await adb.save({"_id": "boom"})
        await eventually(lambda: ["boom"] in batches)
        await adb.save({"_id": "after"})
        await eventually(lambda: ["after"] in batches)
        assert sorted(batches[0]) == ["a1", "a2"]  # one batch: both arrived within the latency
        feed.stop()
        await asyncio.wait_for(feed.wait(), 5)
        await eventually(lambda: adb.server._transport.active == 0)

    with caplog.at_level(logging.ERROR):
        arun(main())
    assert "callback failure" in caplog.text


def test_normal_feed_with_callback_is_called_once(adb):
    async def main():
        await adb.save({"_id": "x"})
        got = asyncio.get_running_loop().create_future()
        adb.changes(feed="normal", callback=lambda result, status: got.set_result((result, status)))
        result, status = await got
        assert status.ok and [c["id"] for c in result["results"]] == ["x"]

    arun(main())


def test_callback_needs_a_running_loop(aserver):
    with pytest.raises(RuntimeError, match="running event loop"):
        aserver.version(callback=lambda r, s: None)


# -- relax ---------------------------------------------------------------------------------------


def test_relax_generator_style_in_asyncio_and_exceptions_at_the_yield(adb, db):
    make_docs(db, 3)

    @ct.relax
    def fetch(docid):
        doc = yield adb.get(docid)
        rows = yield adb.view("t/by_n")  # read whole: a plain for works
        both = yield [adb.get("d00"), adb.exists()]
        try:
            yield adb.get("missing")
        except couchcore.NotFound as exc:
            missing = exc.status
        return doc.n, [r.key for r in rows], both[0]._id, both[1], missing

    async def main():
        return await fetch("d02")  # a Future of the generator's return value

    assert arun(main()) == (2, [0, 1, 2], "d00", True, 404)

    async def native():
        return 1

    assert ct.relax(native) is native


def test_relax_in_a_tornado_request_handler(adb, db):
    make_docs(db, 2)

    class DocHandler(tornado.web.RequestHandler):
        @ct.relax
        def get(self, docid):
            try:
                doc = yield adb.get(docid)
            except couchcore.NotFound:
                self.set_status(404)
                self.write({"error": "not_found"})
                return
            self.write({"id": doc._id, "n": doc.n})

    async def main():
        app = tornado.web.Application([(r"/doc/(.*)", DocHandler)])
        http = app.listen(0, "127.0.0.1")
        port = next(iter(http._sockets.values())).getsockname()[1]
        client = tornado.httpclient.AsyncHTTPClient(force_instance=True)
        try:
            ok = await client.fetch(f"http://127.0.0.1:{port}/doc/d01")
            missing = await client.fetch(f"http://127.0.0.1:{port}/doc/zz", raise_error=False)
        finally:
            client.close()
            http.stop()
        return ok.body, missing.code

    body, code = arun(main())
    assert couchcore.codec.loads(body) == {"id": "d01", "n": 1} and code == 404


# -- concurrency, cancellation, errors ------------------------------------------------------------


def test_gather_of_hundreds_stays_within_max_clients(couch_url, db):
    make_docs(db, 5)

    async def main():
        async with TCPProxy(couch_url) as proxy:
            server = ct.Server(proxy.url, max_clients=8)
            d = server._database(db.name)
            docs = await asyncio.gather(*(d.get(f"d{i % 5:02d}") for i in range(300)))
            assert [doc.n for doc in docs] == [i % 5 for i in range(300)]
            assert proxy.peak <= 8
            # kept alive (pycurl backend): the 300 gets share at most max_clients connections
            assert proxy.total <= 8 if keeps_alive(server) else proxy.total == 300
            assert server._transport.active == 0
            server.close()
            return proxy.peak

    assert arun(main()) >= 2


def test_cancelling_a_waiting_request_closes_its_connection(couch_url, db):
    async def main():
        async with TCPProxy(couch_url) as proxy:
            server = ct.Server(proxy.url, max_clients=2)
            d = server._database(db.name)
            since = (await d.changes())["last_seq"]
            # PouchDB Server and CouchDB both hold a longpoll open until a change
            first = asyncio.ensure_future(d.changes(feed="longpoll", since=since))
            second = asyncio.ensure_future(d.changes(feed="longpoll", since=since))
            queued = asyncio.ensure_future(d.info())  # no free slot: waits, sends nothing
            await eventually(lambda: proxy.open == 2)
            # the first changes request's connection is reused by a longpoll when kept alive
            assert server._transport.active == 2 and proxy.total == (2 if keeps_alive(server) else 3)
            for task in (first, second, queued):
                task.cancel()
            await asyncio.gather(first, second, queued, return_exceptions=True)
            await eventually(lambda: proxy.open == 0)  # the server side saw both close
            assert server._transport.active == 0 and proxy.total == (2 if keeps_alive(server) else 3)
            assert nothing_in_flight(server._transport)
            assert (await d.info())["db_name"] == db.name  # slots were given back
            server.close()

    arun(main())


def test_http_errors_are_couchcore_exceptions(adb, aserver):
    async def main():
        with pytest.raises(couchcore.NotFound) as info:
            await adb.get("nope")
        err = info.value
        assert err.status == 404 and err.method == "GET" and err.url.endswith("/nope") and "admin" not in err.url
        with pytest.raises(couchcore.NotFound):
            await aserver._database("no-such-db-" + os.urandom(4).hex()).info()
        with pytest.raises(couchcore.InvalidInput):
            await adb.get(42)
        with pytest.raises(couchcore.InvalidOption):
            adb.changes(feed="continuous", bogus=1)

    arun(main())


def test_wrong_password_is_unauthorized(couch_url):
    # a made-up user: failed logins as 'admin' would trip CouchDB 3's account lockout
    parts = urlsplit(couch_url)
    bad = ct.Server(f"http://nobody-{os.urandom(4).hex()}:wrong-password@{parts.hostname}:{parts.port}")

    async def main():
        with pytest.raises(couchcore.Unauthorized) as info:
            await bad.config()
        assert "wrong-password" not in str(info.value)

    arun(main())
    bad.close()


def test_bad_options_are_rejected_up_front(couch_url):
    with pytest.raises(couchcore.InvalidOption):
        ct.Server(couch_url, max_clients=0)
    with pytest.raises(couchcore.InvalidOption):
        ct.Server(couch_url, backend="urllib3")
    with pytest.raises(couchcore.InvalidOption):
        ct.Server(couch_url, no_such_option=1)


def test_request_body_of_the_wrong_type_is_invalid_input(adb):
    from couchcore.protocol.messages import Request

    async def main():
        with pytest.raises(couchcore.InvalidInput):
            await adb.server._transport.send(Request("PUT", f"/{adb.name}/x", body=12345))

        def bad_chunks():
            yield b'{"a":'
            yield 42

        with pytest.raises(couchcore.InvalidInput, match="bytes"):
            await adb.server._transport.send(Request("PUT", f"/{adb.name}/x", body=bad_chunks()))
        with pytest.raises(couchcore.InvalidInput):
            await adb.put_attachment({"_id": "x"}, 3.14, "f.txt")
        await eventually(lambda: adb.server._transport.active == 0)

    arun(main())


def test_one_server_serves_several_event_loops_in_turn(aserver):
    for _ in range(3):
        assert isinstance(arun(aserver.version()), str)
    assert len([loop for loop in aserver._transport._states if not loop.is_closed()]) == 0


def test_file_body_is_streamed_not_read_whole(adb):
    class Reader(io.RawIOBase):
        """A 2 MB body that records the largest read asked of it."""

        def __init__(self):
            self.left = 2 * 1024 * 1024
            self.largest = 0

        def readable(self):
            return True

        def read(self, n=-1):
            self.largest = max(self.largest, n)
            take = min(n, self.left)
            self.left -= take
            return b"x" * take

    async def main():
        doc = {"_id": "big"}
        await adb.save(doc)
        reader = Reader()
        await adb.put_attachment(doc, reader, "big.txt", "text/plain")
        assert 0 < reader.largest <= 64 * 1024
        stream = await adb.open_attachment("big", "big.txt")
        total = 0
        async for chunk in stream:
            total += len(chunk)
        assert total == 2 * 1024 * 1024

    arun(main())


def test_file_body_with_short_reads_arrives_whole_and_in_order(adb):
    """A file read of the size libcurl asks for is handed over as it is; short reads
    (a pipe, a socket) leave bytes waiting, and those go first: the body that arrives is
    the file's bytes in order, whatever the mix of full and short reads."""
    data = bytes(range(256)) * (3 * 1024 * 1024 // 256 + 7)  # 3 MB and a bit, not all alike

    class ShortReads(io.RawIOBase):
        """``data``, each read giving the size asked, 1,000 bytes or one byte less in turn."""

        def __init__(self):
            self.pos = 0
            self.turn = 0
            self.full = self.short = 0

        def readable(self):
            return True

        def read(self, n=-1):
            self.turn += 1
            want = (n, 1000, n - 1)[self.turn % 3]
            take = data[self.pos:self.pos + max(0, want)]
            self.pos += len(take)
            self.full += len(take) == n
            self.short += 0 < len(take) < n
            return take

    async def main():
        doc = {"_id": "short-reads"}
        await adb.save(doc)
        reader = ShortReads()
        await adb.put_attachment(doc, reader, "s.bin", "application/octet-stream")
        assert reader.full and reader.short  # both kinds of read happened
        assert await adb.get_attachment("short-reads", "s.bin") == data
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:  # a plain file: every read full
            f.write(data)
            f.flush()
            f.seek(5)
            await adb.put_attachment(doc, f, "f.bin")
        assert await adb.get_attachment("short-reads", "f.bin") == data[5:]

    arun(main())
