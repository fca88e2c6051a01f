"""Round 28b: fixes of benchmarks/results/reviewer-r28b.md, on every backend and facade (sync
urllib3 and pycurl, ``couchcore.aio`` and ``couchcore.tornado`` on pycurl and Tornado, and
``couchcore.tornado``'s ``callback=`` style). Each test failed before its fix (see the commit
that added it) and passes on PouchDB Server and on Apache CouchDB 3.5."""

from __future__ import annotations

import asyncio
import os

import pytest

import couchcore
import couchcore.aio
import couchcore.tornado
from couchcore.errors import StreamConsumed
from tests.helpers import async_backends, unique_name

SIZE = 300_000


@pytest.fixture
def plain_db(couch_url):
    """A fresh database made with the default backend (for the async facades' tests, which
    do not need the sync ``backend`` parameter)."""
    server = couchcore.Server(couch_url)
    name = unique_name()
    database = server.create(name)
    yield database
    try:
        server.delete(name)
    except couchcore.NotFound:
        pass
    server.close()


def _holder(db) -> bytes:
    data = os.urandom(SIZE)
    db.put_attachment({"_id": "att"}, data, "b c.bin", "application/octet-stream")
    return data


# -- 1. an attachment stream is read once: a second read raises, never b"" ----------------------
# GET /{db}/{docid}/{attname} gives the attachment's bytes, Content-Length of them
# (https://docs.couchdb.org/en/stable/api/document/attachments.html#get--db-docid-attname);
# read() after a stopped iteration, after close() or a second time returned b"" (urllib3 after
# close(): a ConnectionError for a network fault that never happened)

def test_a_sync_attachment_stream_is_read_once(db):
    data = _holder(db)

    st = db.open_attachment("att", "b c.bin")
    assert st.length == SIZE and st.read() == data
    with pytest.raises(StreamConsumed, match="already read"):
        st.read()
    with pytest.raises(StreamConsumed):
        list(st)

    st = db.open_attachment("att", "b c.bin")
    for chunk in st:
        assert data.startswith(chunk)
        break
    assert st.length == SIZE
    with pytest.raises(StreamConsumed, match="already read"):
        st.read()

    st = db.open_attachment("att", "b c.bin")
    with pytest.raises(ZeroDivisionError):
        for chunk in st:
            1 / 0
    with pytest.raises(StreamConsumed):
        st.read()

    st = db.open_attachment("att", "b c.bin")
    st.close()
    with pytest.raises(StreamConsumed, match="closed"):
        st.read()
    with db.open_attachment("att", "b c.bin") as st:
        pass
    with pytest.raises(StreamConsumed, match="closed"):
        st.read()
    with db.open_attachment("att", "b c.bin") as st:
        with pytest.raises(StreamConsumed):
            for _ in st:
                st.read()  # a read inside the stream's own iteration

    st = db.open_attachment("att", "b c.bin")
    it = iter(st)
    first = next(it)
    with pytest.raises(StreamConsumed):
        st.read()  # would have been the rest only
    assert first + b"".join(it) == data  # the first iteration goes on

    with db.open_attachment("att", "b c.bin") as st:
        assert st.read() == data  # the connections were given back: a new stream is whole
    st.close()  # after a complete read: nothing to say
    assert db.get_attachment("att", "b c.bin") == data


def _async_facades() -> list[tuple[str, str]]:
    return [(facade, backend) for facade in ("aio", "tornado") for backend in async_backends()]


async def _adb(couch_url: str, name: str, facade: str, backend: str):
    if facade == "aio":
        return await couchcore.aio.Server(couch_url, backend=backend).db(name)
    return couchcore.tornado.Database(f"{couch_url}/{name}", backend=backend)


@pytest.mark.parametrize("facade,backend", _async_facades())
def test_an_async_attachment_stream_is_read_once(couch_url, plain_db, facade, backend):
    data = _holder(plain_db)

    async def main() -> None:
        adb = await _adb(couch_url, plain_db.name, facade, backend)
        try:
            st = await adb.open_attachment("att", "b c.bin")
            assert st.length == SIZE and await st.aread() == data
            with pytest.raises(StreamConsumed, match="already read"):
                await st.aread()
            with pytest.raises(StreamConsumed):
                async for _ in st:
                    pass

            st = await adb.open_attachment("att", "b c.bin")
            async for chunk in st:
                assert data.startswith(chunk)
                break
            await asyncio.sleep(0.05)  # the abandoned generator's aclose() runs
            with pytest.raises(StreamConsumed, match="already read"):
                await st.aread()
            with pytest.raises(StreamConsumed):
                await st.aread()  # at once, too (before any aclose could run)

            st = await adb.open_attachment("att", "b c.bin")
            with pytest.raises(ZeroDivisionError):
                async for _ in st:
                    1 / 0
            with pytest.raises(StreamConsumed):
                await st.aread()

            st = await adb.open_attachment("att", "b c.bin")
            st.close()
            with pytest.raises(StreamConsumed, match="closed"):
                await st.aread()
            async with await adb.open_attachment("att", "b c.bin") as st:
                pass
            with pytest.raises(StreamConsumed, match="closed"):
                await st.aread()

            st = await adb.open_attachment("att", "b c.bin")
            it = st.__aiter__()
            first = await it.__anext__()
            with pytest.raises(StreamConsumed):
                await st.aread()  # would have been the rest only
            assert first + b"".join([c async for c in it]) == data

            async with await adb.open_attachment("att", "b c.bin") as st:
                assert await st.aread() == data
            assert await adb.get_attachment("att", "b c.bin") == data
        finally:
            adb.server.close()

    asyncio.run(asyncio.wait_for(main(), 60))


@pytest.mark.parametrize("backend", async_backends())
def test_a_callback_and_relax_get_the_attachment_whole_every_time(couch_url, plain_db, backend):
    # the buffered stream of the callback= style (and of relax) holds every byte: read()
    # and 'for' give them all, any number of times, also after close() (as documented)
    data = _holder(plain_db)

    @couchcore.tornado.relax
    def handler(tdb):
        stream = yield tdb.open_attachment("att", "b c.bin")
        return stream

    async def main() -> list[bytes]:
        tdb = couchcore.tornado.Database(f"{couch_url}/{plain_db.name}", backend=backend)
        done = asyncio.get_running_loop().create_future()
        got: list[bytes] = []

        def callback(stream, status):
            assert status.ok and stream.length == SIZE
            got.extend([stream.read(), b"".join(stream), stream.read()])
            stream.close()
            got.append(stream.read())
            done.set_result(None)

        try:
            tdb.open_attachment("att", "b c.bin", callback=callback)
            await asyncio.wait_for(done, 30)
            stream = await handler(tdb)
            got.extend([stream.read(), stream.read(), b"".join([c async for c in stream])])
        finally:
            tdb.server.close()
        return got

    got = asyncio.run(main())
    assert len(got) == 7 and all(g == data for g in got)


# -- 2. Server.close() with requests under way: what each facade does, as documented ------------
# The sync backends let what is under way finish (only idle connections close); the async
# facades abort it: reads raise ConnectionError, writes OutcomeUnknown (written or not).
# Sync pycurl: a stream the closing thread was still reading raised pycurl's own error
# ("cannot invoke timeout() - no multi handle"), not a couchcore class; now it finishes.

def _close_doc(cls) -> str:
    return " ".join((cls.close.__doc__ or "").split())


def test_sync_close_lets_streams_under_way_finish(couch_url, db, backend):
    # 3 MB of rows: more than a backend buffers unread (1 MB), so the rest is read after close()
    db.save([{"_id": f"d{i:04d}", "pad": "x" * 1000} for i in range(3000)])
    data = _holder(db)
    server = couchcore.Server(couch_url, backend=backend)
    sdb = server.db(db.name)
    try:
        rows = iter(sdb.view("_all_docs", include_docs=True))
        first = [next(rows) for _ in range(10)]
        st = sdb.open_attachment("att", "b c.bin")
        chunks = iter(st)
        head = next(chunks)
        server.close()  # in the thread that reads them
        assert len(first) + sum(1 for _ in rows) == 3001
        assert head + b"".join(chunks) == data

        out: dict[str, int] = {}
        import threading

        def reader() -> None:
            out["rows"] = sum(1 for _ in sdb.view("_all_docs", include_docs=True))

        thread = threading.Thread(target=reader)
        thread.start()
        server.close()  # from another thread
        thread.join(60)
        assert out["rows"] == 3001
        assert sdb.get("d0001")["_id"] == "d0001"  # usable after close()
    finally:
        server.close()
    doc = _close_doc(couchcore.Server)
    assert "nothing under way is cut" in doc and "other threads keep theirs" in doc


@pytest.mark.parametrize("facade,backend", _async_facades())
def test_async_close_aborts_what_is_under_way_as_documented(couch_url, plain_db, facade, backend):
    plain_db.save([{"_id": f"d{i:04d}", "pad": "x" * 200} for i in range(3000)])

    async def main() -> None:
        adb = await _adb(couch_url, plain_db.name, facade, backend)
        loop = asyncio.get_running_loop()
        try:
            # (doc_ids: the saves below do not end these longpolls)
            longpoll = asyncio.ensure_future(adb.changes(feed="longpoll", since="now", timeout=20000,
                                                         doc_ids=["none"]))
            saves = [asyncio.ensure_future(adb.save({"_id": f"w{i}", "n": i})) for i in range(12)]
            statuses: list = []
            called = loop.create_future()

            def callback(result, status):
                statuses.append(status)
                called.set_result(None)

            adb.changes(feed="longpoll", since="now", timeout=20000, doc_ids=["none"], callback=callback)
            await asyncio.sleep(0.3)  # the longpolls are sent and wait for a change
            adb.server.close()
            with pytest.raises(couchcore.errors.ConnectionError, match="transport was closed"):
                await longpoll
            await asyncio.wait_for(called, 10)
            assert not statuses[0].ok and statuses[0].error is couchcore.errors.ConnectionError
            for i, outcome in enumerate(await asyncio.gather(*saves, return_exceptions=True)):
                if isinstance(outcome, BaseException):
                    assert isinstance(outcome, couchcore.errors.OutcomeUnknown), outcome
                else:
                    assert plain_db.get(f"w{i}")["n"] == i  # an ok save was written
            assert (await adb.get("d0001"))["_id"] == "d0001"  # usable after close()
        finally:
            adb.server.close()

    asyncio.run(asyncio.wait_for(main(), 60))
    cls = couchcore.aio.Server if facade == "aio" else couchcore.tornado.Server
    doc = _close_doc(cls)
    assert "aborted at once" in doc and "OutcomeUnknown" in doc and "may have been written or not" in doc


# -- 3. couchcore.tornado callback= feeds: an error that ends the feed, where it goes ------------
# The seed's ChangesFeed listener and API.md's feed callback get changes (callback(seq, changes)),
# never a Status: the error that ends a running feed (here a missing filter: CouchDB answers
# 404, https://docs.couchdb.org/en/stable/api/database/changes.html) is not passed to the
# callback; it is logged and kept in .error, which the docstrings now say

@pytest.mark.parametrize("backend", async_backends())
def test_a_callback_feed_ended_by_an_error_keeps_it_in_error(couch_url, plain_db, backend, caplog):
    plain_db.save({"_id": "a"})

    async def main():
        tdb = couchcore.tornado.Database(f"{couch_url}/{plain_db.name}", backend=backend)
        called: list = []
        try:
            feed = tdb.changes(callback=lambda seq, changes: called.append(changes), since=0,
                               filter="nosuch/nosuch")
            follower = tdb.follow(since=0, callback=lambda seq, changes: called.append(changes),
                                  filter="nosuch/nosuch")
            await asyncio.wait_for(feed.wait(), 30)
            await asyncio.wait_for(follower.wait(), 30)
        finally:
            tdb.server.close()
        return called, feed.error, follower.error

    with caplog.at_level("ERROR", logger="couchcore.tornado"):
        called, feed_error, follower_error = asyncio.run(main())
    assert called == []
    assert isinstance(feed_error, couchcore.NotFound) and isinstance(follower_error, couchcore.NotFound)
    assert sum("stopped" in r.getMessage() for r in caplog.records) == 2
    for doc in (couchcore.tornado.__doc__, couchcore.tornado.Database.changes.__doc__,
                couchcore.tornado.ChangesFeed.__doc__, couchcore.tornado.ChangesFeed.start.__doc__):
        text = " ".join((doc or "").split())
        assert ".error" in text or ":attr:`error`" in text, doc
    assert "never a ``Status``" in " ".join((couchcore.tornado.__doc__ or "").split())
