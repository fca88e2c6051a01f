"""A typed program using every public method of Server and Database, sync and async.

It is a test of the *types*: ``mypy --strict tests/typed_example.py`` must pass
(``tests/unit/test_typing.py`` runs it), and every ``assert_type`` says exactly what a type
checker (and an IDE) sees for the call, so a method that loses its type (``Any``) or
gets a wrong one fails the check. The functions are never called by the test suite;
they would run against a real server (``python tests/typed_example.py URL``).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Awaitable, ItemsView, KeysView, Mapping, ValuesView

import couchcore
import couchcore.aio
from couchcore import ChangesFeed, ChangesResult, ConflictResolution, Document, Result, Row, Status, ViewResult
from couchcore._follow import ChangesFollower
from couchcore._paging import Paged
from couchcore._partition import Partition
from couchcore.aio import AsyncAttachmentStream, AsyncChangesFollower, AsyncConflictResolution, AsyncPaged, AsyncViewResult
from couchcore.protocol.mango import IndexInfo
from couchcore.protocol.messages import Response
from couchcore.protocol.partitions import PartitionInfo
from couchcore.protocol.revs import RevsDiffEntry
from couchcore.protocol.server import DbsInfoRow, SchedulerDocs, SchedulerJobs
from couchcore.protocol.shapes import (
    BuildViewResult,
    CommitResult,
    ConfigSection,
    DatabaseInfo,
    DesignInfo,
    DocResult,
    FindResult,
    IndexCreated,
    LoginResult,
    Membership,
    OkResult,
    PendingWrite,
    PurgeResult,
    Seq,
    ServerInfo,
    SessionInfo,
    ChangesResponse,
)
from couchcore._results import AttachmentStream

if sys.version_info >= (3, 11):
    from typing import assert_type
else:  # pragma: no cover
    from typing_extensions import assert_type

import couchcore.tornado


def sync_server(server: couchcore.Server) -> couchcore.Database:
    assert_type(server.info(), ServerInfo)
    assert_type(server.version(), str)
    assert_type(server.all_dbs(limit=10, descending=True), list[str])
    assert_type(server.uuids(3), list[str])
    assert_type(server.config(), dict[str, ConfigSection])
    assert_type(server.config("couchdb"), ConfigSection | str)
    assert_type(server.config("couchdb/max_dbs_open", "500"), None)
    assert_type(server.config("couchdb/max_dbs_open", delete=True), str)
    assert_type(server.config_reload(), bool)
    assert_type(server.stats("couchdb/request_time"), dict[str, Any])
    assert_type(server.tasks(), list[dict[str, Any]])
    assert_type(server.membership(), Membership)
    assert_type(server.session(), SessionInfo)
    assert_type(server.up(), bool)
    assert_type(server.dbs_info(["a", "b"]), list[DbsInfoRow])
    assert_type(server.scheduler_jobs(limit=5), SchedulerJobs)
    assert_type(server.scheduler_docs(), SchedulerDocs)
    assert_type(server.db_updates(since="now"), ChangesResult)
    assert_type(server.db_updates(feed="continuous", since="now"), ChangesFeed)
    assert_type(server.exists("events"), bool)
    db = server.create("events-copy", partitioned=False, q=2, n=1)
    assert_type(db, couchcore.Database)
    assert_type(server.db("events", create=True), couchcore.Database)
    assert_type(server["events"], couchcore.Database)
    assert_type(server.users, couchcore.Database)
    assert_type(server.replicator, couchcore.Database)
    assert_type(server.replicate("events", db, create_target=True), Document)
    assert_type(server.delete("events-copy"), bool)
    assert_type("events" in server, bool)
    assert_type(list(server), list[str])
    assert_type(server.url, str)
    assert_type(server.urls, list[str])
    assert_type(server.is_async, bool)
    return server.db("events")


def sync_session(url: str) -> None:
    with couchcore.Server(url, auth=couchcore.SessionAuth("admin", "secret")) as server:
        assert_type(server.login(), LoginResult)
        assert_type(server.logout(), OkResult)
        server.close()


def sync_database(db: couchcore.Database) -> None:
    assert_type(db.server, couchcore.Server)
    assert_type(db.url, str)
    assert_type(db.name, str)
    assert_type(db.info(), DatabaseInfo)
    assert_type(db.info()["doc_count"], int)
    assert_type(db.info("app"), DesignInfo)
    assert_type(db.exists(), bool)
    assert_type(db.compact(), bool)
    assert_type(db.compact("app"), bool)
    assert_type(db.cleanup(), bool)
    assert_type(db.commit(), CommitResult)
    assert_type(db.purge({"gone": ["1-abc"]}), PurgeResult)
    assert_type(db.security(), Document)
    assert_type(db.security({"members": {"roles": ["staff"]}}), OkResult)
    assert_type(db.revs_limit(), int)
    assert_type(db.revs_limit(500), None)

    doc = {"_id": "a", "n": 1}
    saved = db.save(doc)
    assert_type(saved, ConflictResolution)
    assert_type(saved.pending, dict[str, PendingWrite])
    assert_type(saved.resolved, dict[str, dict[str, Any]])  # the caller's own dicts, updated in place
    assert_type(db.save([doc, {"n": 2}], merge=lambda local, server: local), ConflictResolution)
    assert_type(saved.ok, bool)
    assert_type(saved.accepted, set[str])
    assert_type(saved.resolve(), ConflictResolution)  # sync: the next resolution itself
    assert_type(saved.overwrite(), ConflictResolution)
    assert_type(saved.merge(lambda local, server: {**server, **local}), ConflictResolution)
    assert_type(db.update_doc("a", lambda current: {**(current or {}), "n": 2}), Document | None)
    got = db.get("a")
    assert_type(got, Document)
    assert_type(db.get("a", open_revs="all"), list[dict[str, Any]])
    assert_type(db.get(["a", ("b", "1-x")]), list[Document | None])
    assert_type(db.get_many(["a", "b"], concurrency=4), list[Document | None])
    assert_type(db.get_many(["a"], open_revs=["1-x"]), list[list[dict[str, Any]] | None])
    assert_type(db["a"], Document)
    assert_type(db.contains("a"), bool)
    assert_type("a" in db, bool)
    assert_type(db.copy("a", "b"), str)
    assert_type(db.revisions("a"), list[str])
    assert_type(db.delete(got), Document)
    assert_type(len(db), int)
    assert_type(list(db), list[str])

    assert_type(db.put_attachment(doc, b"hello", "greeting.txt", "text/plain"), DocResult)
    assert_type(db.get_attachment("a", "greeting.txt"), bytes)
    stream = db.open_attachment(doc, "greeting.txt")
    assert_type(stream, AttachmentStream)
    assert_type(stream.headers, Mapping[str, str])
    assert_type(stream.content_type, str | None)
    assert_type(stream.length, int | None)
    for chunk in stream:
        assert_type(chunk, bytes)
    assert_type(db.open_attachment(doc, "greeting.txt").read(), bytes)
    assert_type(db.delete_attachment(doc, "greeting.txt"), DocResult)

    result = db.view("app/by_n", key=1, include_docs=True)
    assert_type(result, ViewResult)
    assert_type(result.headers, Mapping[str, str])
    assert_type(result.total_rows, int | None)
    assert_type(result.update_seq, Seq | None)
    assert_type(result.read_meta("total_rows"), dict[str, Any])
    for row in result:
        assert_type(row, Row)
    assert_type(result[0], Row)
    assert_type(result[1:], list[Row])
    assert_type(result.all(), list[Row])
    assert_type(db.build_view("app/by_n", timeout=60.0), BuildViewResult)
    assert_type(db.query("function (doc) { emit(doc.n, null); }"), ViewResult)
    assert_type(db.list("app/csv", "by_n", headers={"Accept": "text/csv"}), Result)
    assert_type(db.show("app/page", "a"), Result)
    assert_type(db.update("app/bump", "a", body={"by": 1}), Result)
    assert_type(db.design_docs(), ViewResult)
    assert_type(db.local_docs(), ViewResult)

    assert_type(db.find({"n": {"$gt": 0}}, limit=10), FindResult)
    assert_type(db.find({"n": 1})["docs"], list[Any])
    assert_type(db.explain({"n": 1}), dict[str, Any])
    assert_type(db.create_index(["n"], name="by-n"), IndexCreated)
    assert_type(db.indexes(), list[IndexInfo])
    assert_type(db.delete_index("by-n-ddoc", "by-n"), bool)
    assert_type(db.revs_diff({"a": ["1-x"]}), dict[str, RevsDiffEntry])
    assert_type(db.missing_revs({"a": ["1-x"]}), dict[str, list[str]])

    assert_type(db.changes(since=0, limit=10), ChangesResult)
    changes = db.changes(since=0)
    assert_type(changes.headers, Mapping[str, str])
    for change in changes:
        assert_type(change, dict[str, Any])
    assert_type(changes.last_seq, Seq | None)
    assert_type(changes.pending, int | None)
    assert_type(changes["results"], list[dict[str, Any]])  # the dict of earlier versions
    assert_type(changes["last_seq"], Seq)
    assert_type(changes["pending"], int)
    assert_type(changes[0], dict[str, Any])
    assert_type(changes[:2], list[dict[str, Any]])
    assert_type(changes.get("pending"), int | None)
    assert_type(changes.get("pending", 0), int)
    assert_type(changes.get("last_seq"), Seq | None)
    assert_type(changes.get("results"), list[dict[str, Any]])
    assert_type(changes.keys(), KeysView[str])
    assert_type(changes.values(), ValuesView[object])
    assert_type(changes.items(), ItemsView[str, object])
    assert_type(dict(changes), dict[str, object])
    assert_type(changes.as_dict(), ChangesResponse)
    assert_type(changes.as_dict()["last_seq"], Seq)
    assert_type(db.changes(feed="longpoll", since="now"), ChangesResult)
    assert_type(db.changes(feed="continuous", since="now"), ChangesFeed)
    continuous = db.changes(feed="continuous", since="now", timeout=1000)
    for change in continuous:
        assert_type(change, dict[str, Any])
    assert_type(continuous.last_seq, Seq | None)
    assert_type(db.changes(lambda seq, changes: None, latency=0.5), ChangesFeed)
    feed_kind: str = "normal"
    assert_type(db.changes(feed=feed_kind), ChangesResult | ChangesFeed)

    assert_type(db.push("events-backup", create_target=True), Document)
    assert_type(db.pull("events-backup"), Document)

    paged_rows = db.iterview("app/by_n", page_size=100)
    assert_type(paged_rows, Paged[Row])
    paged_docs = db.iterfind({"n": 1}, page_size=100)
    assert_type(paged_docs, Paged[Document])
    assert_type(db.follow(since=0, one_off=True), ChangesFollower)
    follower = db.follow(since="now")
    assert_type(follower.since, Seq)
    assert_type(follower.pending, int | None)
    for change in follower:
        assert_type(change, dict[str, Any])
    assert_type(paged_rows.pages, int)

    part = db.partition("sensor-1")
    assert_type(part, Partition)
    assert_type(part.info(), PartitionInfo)
    assert_type(part.view("app/by_n"), ViewResult)
    assert_type(part.all_docs(), ViewResult)
    assert_type(part.find({"n": 1}), dict[str, Any])
    assert_type(part.explain({"n": 1}), dict[str, Any])
    assert_type(part.iterview("app/by_n"), Paged[Row])
    assert_type(part.iterfind({"n": 1}), Paged[Document])

    db["b"] = {"n": 3}
    del db["b"]
    assert_type(couchcore.Database("http://127.0.0.1:5984/events"), couchcore.Database)


async def async_server(server: couchcore.aio.Server) -> couchcore.aio.Database:
    assert_type(await server.info(), ServerInfo)
    assert_type(await server.version(), str)
    assert_type(await server.all_dbs(), list[str])
    async for name in server.all_dbs():  # a list result can be iterated at once
        assert_type(name, str)
    async for name in server:
        assert_type(name, str)
    assert_type(await server.uuids(2), list[str])
    assert_type(await server.config(), dict[str, ConfigSection])
    assert_type(await server.config("couchdb"), ConfigSection | str)
    assert_type(await server.config("couchdb/max_dbs_open", 500), None)
    assert_type(await server.config("couchdb/max_dbs_open", delete=True), str)
    assert_type(await server.config_reload(), bool)
    assert_type(await server.stats(), dict[str, Any])
    assert_type(await server.tasks(), list[dict[str, Any]])
    assert_type(await server.membership(), Membership)
    assert_type(await server.session(), SessionInfo)
    assert_type(await server.login(), LoginResult)
    assert_type(await server.logout(), OkResult)
    assert_type(await server.up(), bool)
    assert_type(await server.dbs_info(["a"]), list[DbsInfoRow])
    assert_type(await server.scheduler_jobs(), SchedulerJobs)
    assert_type(await server.scheduler_docs("_replicator"), SchedulerDocs)
    async for event in server.db_updates(feed="continuous", since="now", limit=1):
        assert event["type"] in ("created", "updated", "deleted")
    async for event in server.db_updates(since=0):  # a normal feed, streamed
        assert_type(event, dict[str, Any])
    assert_type(await server.db_updates(since=0), ChangesResult)
    assert_type(await server.exists("events"), bool)
    db = await server.create("events-copy")
    assert_type(db, couchcore.aio.Database)
    assert_type(await server.db("events", create=True), couchcore.aio.Database)
    assert_type(await server["events"], couchcore.aio.Database)
    assert_type(server.users, couchcore.aio.Database)
    assert_type(server.replicator, couchcore.aio.Database)
    assert_type(await server.replicate(db, "events-backup"), Document)
    assert_type(await server.delete("events-copy"), bool)
    assert_type(server.is_async, bool)
    assert_type(server.url, str)
    server.close()
    return await server.db("events")


async def async_database(db: couchcore.aio.Database) -> None:
    assert_type(db.server, couchcore.aio.Server)
    assert_type(db.url, str)
    assert_type(db.is_async, bool)
    assert_type(await db.info(), DatabaseInfo)
    assert_type(await db.info("app"), DesignInfo)
    assert_type(await db.exists(), bool)
    assert_type(await db.compact(), bool)
    assert_type(await db.cleanup(), bool)
    assert_type(await db.commit(), CommitResult)
    assert_type(await db.purge([{"_id": "a", "_rev": "1-x"}]), PurgeResult)
    assert_type(await db.security(), Document)
    assert_type(await db.security({"admins": {"names": ["ops"]}}), OkResult)
    assert_type(await db.revs_limit(), int)
    assert_type(await db.revs_limit(100), None)

    doc = {"_id": "a"}
    saved = await db.save(doc)
    assert_type(saved, AsyncConflictResolution)
    assert_type(saved.pending, dict[str, PendingWrite])
    assert_type(saved.ok, bool)
    assert_type(saved.resolve(), Awaitable[AsyncConflictResolution])  # async: an awaitable of the next one
    assert_type(await saved.resolve(), AsyncConflictResolution)
    assert_type(await saved.overwrite(), AsyncConflictResolution)
    assert_type(await saved.merge(lambda local, server: local), AsyncConflictResolution)
    assert_type(await db.update_doc("a", lambda current: current), Document | None)
    got = await db.get("a")
    assert_type(got, Document)
    assert_type(await db.get("a", open_revs="all"), list[dict[str, Any]])
    assert_type(await db.get(["a", "b"]), list[Document | None])
    assert_type(await db.get_many(["a", "b"]), list[Document | None])
    assert_type(await db["a"], Document)
    assert_type(await db.contains("a"), bool)
    assert_type(await db.copy(got, "b"), str)
    assert_type(await db.revisions("a"), list[str])
    assert_type(await db.delete(got), Document)
    async for docid in db:
        assert_type(docid, str)

    assert_type(await db.put_attachment("a", "text", "note.txt"), DocResult)
    assert_type(await db.get_attachment(got, "note.txt", rev="1-x"), bytes)
    stream = await db.open_attachment("a", "note.txt")
    assert_type(stream, AsyncAttachmentStream)
    assert_type(stream.headers, Mapping[str, str])
    assert_type(stream.content_type, str | None)
    async for chunk in stream:
        assert_type(chunk, bytes)
    assert_type(await (await db.open_attachment("a", "note.txt")).aread(), bytes)
    async for chunk in db.open_attachment("a", "note.txt"):
        assert_type(chunk, bytes)
    assert_type(await db.delete_attachment(got, "note.txt"), DocResult)

    result = await db.view("app/by_n", limit=5)
    assert_type(result, AsyncViewResult)
    assert_type(result.headers, Mapping[str, str])
    assert_type(await result.ameta("total_rows"), dict[str, Any])
    assert_type(result.total_rows, int | None)
    assert_type(result.update_seq, Seq | None)
    async for row in result:
        assert_type(row, Row)
    assert_type(await (await db.view("app/by_n")).aall(), list[Row])
    async for row in db.view("app/by_n"):  # without await: rows as they arrive
        assert_type(row, Row)
    assert_type(await db.build_view("app/by_n"), BuildViewResult)
    assert_type(await db.query("function (doc) { emit(doc._id, 1); }", "_sum"), AsyncViewResult)
    assert_type(await db.list("app/csv", "app/by_n"), Result)
    assert_type(await db.show("app/page"), Result)
    assert_type(await db.update("app/bump", form={"by": "1"}), Result)
    assert_type(await db.design_docs(include_docs=True), AsyncViewResult)
    assert_type(await db.local_docs(), AsyncViewResult)

    assert_type(await db.find({"n": 1}), FindResult)
    assert_type(await db.explain({"n": 1}), dict[str, Any])
    assert_type(await db.create_index([{"n": "desc"}]), IndexCreated)
    assert_type(await db.indexes(), list[IndexInfo])
    assert_type(await db.delete_index("_design/idx", "by-n"), bool)
    assert_type(await db.revs_diff({"a": ["1-x"]}), dict[str, RevsDiffEntry])
    assert_type(await db.missing_revs({"a": ["1-x"]}), dict[str, list[str]])

    assert_type(await db.changes(since=0), ChangesResult)
    whole = await db.changes(since=0)  # awaited: read whole, so the dict-style and plain 'for' access work
    assert_type(whole["last_seq"], Seq)
    assert_type(whole.get("pending"), int | None)
    for change in whole:
        assert_type(change, dict[str, Any])
    running = db.changes(since=0)
    if isinstance(running, couchcore.aio.ChangesTask):  # inside a running loop
        assert_type(running.result(), ChangesResult)
        assert_type(running.last_seq, Seq | None)
        assert_type(running.pending, int | None)
    async for change in db.changes(since=0):
        assert_type(change, dict[str, Any])
    feed = db.changes(feed="continuous", since="now")
    assert_type(feed, couchcore.tornado.ChangesFeed)
    async for change in feed:
        assert_type(change, dict[str, Any])
    assert_type(feed.last_seq, Seq | None)
    assert_type(db.changes(lambda seq, batch: None, latency=0.1), couchcore.tornado.ChangesFeed)
    task = db.changes(lambda result, status: None, feed="normal")
    assert_type(task, "asyncio.Task[ChangesResult | None]")

    assert_type(await db.push("events-backup"), Document)
    assert_type(await db.pull("events-backup"), Document)

    assert_type(db.iterview("_all_docs"), AsyncPaged[Row])
    assert_type(db.iterfind({"n": 1}), AsyncPaged[Document])
    async for row in db.iterview("_all_docs", page_size=50):
        assert_type(row, Row)
    afollower = db.follow(since=0, one_off=True)
    assert_type(afollower, AsyncChangesFollower)
    assert_type(afollower.since, Seq)
    async with afollower:
        async for change in afollower:
            assert_type(change, dict[str, Any])
    async for found in db.iterfind({"n": 1}):
        assert_type(found, Document)
    async for change in db.follow(since="now"):
        assert_type(change, dict[str, Any])

    part = db.partition("sensor-1")
    assert_type(await part.info(), PartitionInfo)
    assert_type(await part.view("app/by_n"), AsyncViewResult)
    async for row in part.all_docs():
        assert_type(row, Row)
    assert_type(await part.find({"n": 1}), dict[str, Any])
    assert_type(await part.explain({"n": 1}), dict[str, Any])
    async for row in part.iterview("app/by_n"):
        assert_type(row, Row)
    async for found in part.iterfind({"n": 1}):
        assert_type(found, Document)
    assert_type(couchcore.aio.Database("http://127.0.0.1:5984/events"), couchcore.aio.Database)


async def tornado_flavour(server: couchcore.tornado.Server) -> None:
    db = await server.db("events")
    assert_type(db, couchcore.tornado.Database)
    assert_type(await db.get("a"), Document)

    # the callback style: every public method takes callback=fn, called with (result or None, Status)
    def got(doc: Document | None, status: Status) -> None:
        assert_type(status.ok, bool)
        assert_type(status.code, int | None)
        assert_type(status.headers, dict[str, str])
        assert_type(status.response, Response | None)

    assert_type(db.get("a", callback=got), "asyncio.Task[Document | None]")
    assert_type(db.get(["a"], callback=lambda docs, status: None), "asyncio.Task[list[Document | None] | None]")
    assert_type(db.view("app/by_n", callback=lambda rows, status: None), "asyncio.Task[ViewResult | None]")

    def got_rows(rows: ViewResult | None, status: Status) -> None:  # read whole first: plain 'for'
        for row in rows or ():
            assert_type(row, Row)

    db.view("app/by_n", callback=got_rows)
    assert_type(server.db("events", callback=lambda found, status: None),
                "asyncio.Task[couchcore.tornado.Database | None]")


def main(url: str) -> None:  # pragma: no cover - needs a server with the design documents above
    with couchcore.Server(url) as server:
        sync_database(sync_server(server))

    async def run() -> None:
        async with couchcore.aio.Server(url) as server:
            await async_database(await async_server(server))

    asyncio.run(run())


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1])
