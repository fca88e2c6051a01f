"""Tornado and asyncio: awaitables, async for, callback=, and @relax generator handlers."""

import asyncio
import os
import uuid

import couchcore
import couchcore.aio
import couchcore.tornado

URL = os.environ.get("COUCHDB_URL", "http://127.0.0.1:5984")
name = f"guide-async-{uuid.uuid4().hex[:8]}"


async def with_asyncio() -> None:
    # couchcore.aio: every method of the sync Server/Database, returning an awaitable
    async with couchcore.aio.Server(URL, max_clients=10) as server:
        db = await server.db(name, create=True)
        await db.save([{"_id": f"d{i:02d}", "n": i} for i in range(20)])
        doc = await db.update_doc("d00", lambda d: {**d, "n": 100})
        assert doc.n == 100

        # called inside a running loop a method returns a Task already under way: gather many
        docs = await asyncio.gather(*(db.get(f"d{i:02d}") for i in range(1, 20)))
        assert [d.n for d in docs] == list(range(1, 20))

        # streamed results: async for (no await needed), rows parsed as chunks arrive
        ids = [row.id async for row in db.view("_all_docs")]
        assert len(ids) == 20
        result = await db.view("_all_docs", limit=1)  # awaited: a ViewResult, streaming
        meta = await result.ameta("total_rows")  # reads just the start of the stream
        assert meta["total_rows"] == 20

        async for change in db.follow(since=0, one_off=True):  # a follower, async
            assert change["id"].startswith("d")

        try:
            await db.get("missing")
        except couchcore.NotFound as exc:
            print("asyncio:", exc.status, exc.error)
        else:
            raise AssertionError("a missing document raises NotFound")


async def with_tornado() -> None:
    server = couchcore.tornado.Server(URL)
    db = await server.db(name)

    # the callback style: fn(result, status); a failure arrives as a failed Status
    answers: asyncio.Queue = asyncio.Queue()
    db.get("d01", callback=lambda doc, status: answers.put_nowait((doc, status)))
    db.get("missing", callback=lambda doc, status: answers.put_nowait((doc, status)))
    got = [await answers.get(), await answers.get()]
    by_ok = {status.ok: (doc, status) for doc, status in got}
    assert by_ok[True][0].n == 1 and by_ok[True][1].code == 200
    assert by_ok[False][1].error is couchcore.NotFound and by_ok[False][1].code == 404

    # @relax: a generator handler in the seed's style, `doc = yield db.get(...)`
    @couchcore.tornado.relax
    def handler(docid):
        doc = yield db.get(docid)
        rows = yield db.view("_all_docs", limit=3)  # a streamed result is read whole
        return doc.n, [row.id for row in rows]

    n, first = await handler("d02")
    assert n == 2 and first == ["d00", "d01", "d02"]
    server.close()
    print("tornado: ok")


async def main() -> None:
    try:
        await with_asyncio()
        await with_tornado()
    finally:
        async with couchcore.aio.Server(URL) as server:
            await server.delete(name)


asyncio.run(main())
