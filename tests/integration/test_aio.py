"""``couchcore.aio``: the async facade under an asyncio name, on plain asyncio (issue 15, item 10)."""

from __future__ import annotations

import asyncio
import inspect

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
            db = await server.db(name, create=True)
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
