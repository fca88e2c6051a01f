"""``couchcore.aio``: the async facade under an asyncio name, on plain asyncio (issue 15, item 10)."""

from __future__ import annotations

import asyncio
import inspect

import pytest

import couchcore


def test_aio_exposes_the_same_operations_as_the_sync_facade():
    import couchcore.aio as aio

    def public(cls):
        return {n for n in dir(cls) if not n.startswith("_") and callable(inspect.getattr_static(cls, n))}

    assert public(aio.Server) == public(couchcore.Server)
    assert public(aio.Database) == public(couchcore.Database)
    assert aio.Server.is_async and aio.Database.is_async


def test_aio_runs_on_plain_asyncio(couch_url):
    import couchcore.aio as aio

    name = "aio-" + __import__("os").urandom(5).hex()

    async def main():
        assert type(asyncio.get_running_loop()).__module__.startswith("asyncio")
        async with aio.Server(couch_url) as server:
            # one copy of each shard: the _all_docs and _changes reads below come right after
            # the writes, and a cluster reads them from one copy, which may lag (conftest.one_copy_db)
            await server.create(name, n=1)
            db = await server.db(name, create=True)  # exists: create=True leaves it as it is
            try:
                assert type(db) is aio.Database and db.server is server
                assert isinstance(server.version(), asyncio.Task)
                await db.save({"_id": "a", "n": 1})
                saved = await db.update_doc("a", lambda doc: {**doc, "n": doc["n"] + 1})
                assert saved["n"] == 2 and (await db.get("a"))["n"] == 2
                assert [row.id async for row in await db.view("_all_docs")] == ["a"]
                assert [c["id"] async for c in db.changes()] == ["a"]
                direct = aio.Database(f"{couch_url.rstrip('/')}/{name}")
                assert type(direct) is aio.Database and (await direct.get("a"))["n"] == 2
                direct.server.close()
            finally:
                await server.delete(name)

    asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize("backend", ["pycurl", "tornado"])
def test_a_streamed_result_read_on_another_event_loop_is_a_clear_error(couch_url, backend):
    """A streamed result belongs to the event loop that sent its request: ``async for`` on
    another loop raises couchcore's WrongEventLoop (also a RuntimeError) naming the problem,
    whether its body has arrived or not (small view on the test server; 200k rows streamed
    by a RowReplayServer), instead of asyncio's "got Future attached to a different loop"
    (or rows that happen to work); the loop that sent it goes on working."""
    import couchcore.aio as aio
    from couchcore.testing import RowReplayServer

    if backend == "pycurl":
        pytest.importorskip("pycurl")
    server = aio.Server(couch_url, backend=backend)
    name = "aio-" + __import__("os").urandom(5).hex()
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()

    async def rows(result):
        return [row.id async for row in result]

    async def whole(result):
        return await result.aall()

    replay = RowReplayServer()
    try:
        db = first.run_until_complete(server.create(name, n=1))  # one copy: _all_docs sees every write
        first.run_until_complete(db.save([{"_id": f"d{i}"} for i in range(3)]))
        for read in (rows, whole):
            view = first.run_until_complete(db.view("_all_docs"))
            with pytest.raises(couchcore.errors.WrongEventLoop, match="another event loop") as info:
                second.run_until_complete(asyncio.wait_for(read(view), 10))
            assert isinstance(info.value, RuntimeError) and "admin" not in str(info.value)
            assert f"/{name}/_all_docs" in str(info.value)
            view.close()
            again = first.run_until_complete(db.view("_all_docs"))
            got = first.run_until_complete(asyncio.wait_for(read(again), 10))
            assert [getattr(r, "id", r) for r in got] == ["d0", "d1", "d2"]

        big = aio.Server(replay.url, backend=backend)
        view = first.run_until_complete(big._database("rows-200000").view("_all_docs"))
        with pytest.raises(couchcore.errors.WrongEventLoop, match="another event loop"):
            second.run_until_complete(asyncio.wait_for(rows(view), 10))
        view.close()
        view = first.run_until_complete(big._database("rows-20000").view("_all_docs"))
        assert len(first.run_until_complete(asyncio.wait_for(rows(view), 30))) == 20_000
        big.close()
    finally:
        first.run_until_complete(server.delete(name))
        server.close()
        replay.close()
        first.close()
        second.close()
