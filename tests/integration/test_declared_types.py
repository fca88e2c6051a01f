"""The declared types hold at run time, against the real test server.

``tests/typed_example.py`` (checked by mypy in tests/unit/test_typing.py) says what a type
checker sees; these tests take the values a server really returns and check them against
the same types with :func:`typeguard.check_type` (TypedDicts key by key, protocols member
by member, unions, ``Mapping[str, str]`` item by item), read from the annotations where
the declaration is a plain one. Where a member is *not* declared for a flavour (the async
facade's dunders, ``for`` over an async result, ``async for`` over a sync one) the test
checks that it really fails at run time, with a TypeError saying what to use instead.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, ItemsView, KeysView, Mapping, ValuesView, get_args, get_origin, get_type_hints

import pytest
from typeguard import check_type
from typing_extensions import is_typeddict

import couchcore
from tests.helpers import unique_name
import couchcore.aio
from couchcore import AttachmentStream, ChangesResult, ConflictResolution, Document, Row, ViewResult
from couchcore import StreamedResult
from couchcore._follow import ChangesFollower
from couchcore.aio import AsyncAttachmentStream, AsyncChangesFollower, AsyncConflictResolution, AsyncPaged, AsyncViewResult
from couchcore.protocol.shapes import ChangesResponse, DatabaseInfo, DesignInfo, Seq
from couchcore.models import Status

DDOC = {"_id": "_design/t", "views": {"by_n": {"map": "function(doc){ if (doc.n !== undefined) emit(doc.n, null); }"}}}


@pytest.fixture
def db(one_copy_db: couchcore.Database) -> couchcore.Database:
    """One copy of each shard: these tests read views and ``_changes`` right after writing
    (``result[0]``), and a cluster reads them from one copy, which may lag (conftest.one_copy_db)."""
    return one_copy_db


def _returns(member: Any) -> Any:
    """The declared return type of a method or property (its annotation, resolved)."""
    func = member.fget if isinstance(member, property) else member
    return get_type_hints(func)["return"]


def _conflicted(db: couchcore.Database) -> tuple[dict[str, Any], dict[str, Any]]:
    """A document saved twice, and a stale copy of it (its first revision)."""
    doc: dict[str, Any] = {"_id": "c", "n": 1}
    db.save(doc)
    stale = dict(doc)
    doc["n"] = 2
    db.save(doc)
    stale["n"] = 3
    return doc, stale


def check_shape(value: Any, declared: Any) -> None:
    """``check_type``, except that a TypedDict (also nested in one) may hold keys it does not
    declare: servers add their own (PouchDB's ``adapter``, CouchDB's newer fields), and
    the shapes declare the documented ones."""
    if is_typeddict(declared):
        assert isinstance(value, dict), (declared, value)
        missing = declared.__required_keys__ - value.keys()
        assert not missing, (declared.__name__, missing, value)
        for key, annotation in get_type_hints(declared).items():
            if key in value:
                check_shape(value[key], annotation)
        return
    origin, args = get_origin(declared), get_args(declared)
    if origin is list and args and is_typeddict(args[0]):
        assert isinstance(value, list)
        for item in value:
            check_shape(item, args[0])
        return
    check_type(value, declared)


# -- sync -----------------------------------------------------------------------------------


MERGE = (lambda local, server: {**server, **local},)


def test_sync_resolution_methods_return_resolutions(db: couchcore.Database) -> None:
    for method, args in (("resolve", ()), ("overwrite", ()), ("merge", MERGE)):
        _, stale = _conflicted(db)
        saved = db.save([stale])
        check_type(saved, ConflictResolution)
        assert set(saved.pending) == {"c"} and saved.pending["c"]["error"] == "conflict"
        if method == "resolve":  # retried as it is: edit it so that it applies
            saved.pending["c"]["doc"]["_rev"] = db.get("c")["_rev"]
        declared = _returns(getattr(ConflictResolution, method))
        assert declared is ConflictResolution
        again = getattr(saved, method)(*args)
        check_type(again, declared)
        assert again.ok and set(again.resolved) == {"c"}, (method, again.pending)
        assert db.get("c")["n"] == 3
        db.delete(db.get("c"))


def test_sync_result_headers_and_sequences(db: couchcore.Database) -> None:
    db.save([dict(DDOC), {"_id": "a", "n": 1}])
    db.put_attachment(db.get("a"), b"hello", "note.txt", "text/plain")

    result = db.view("t/by_n", update_seq=True)
    check_type(result.headers, _returns(StreamedResult.headers))
    assert result.headers["Content-Type"].startswith("application/json")  # any case
    check_type(result.update_seq, _returns(ViewResult.update_seq))
    check_type(result.update_seq, Seq)  # sent: update_seq=True
    check_type(result[0], Row)
    check_type(result[:1], list[Row])

    stream = db.open_attachment("a", "note.txt")
    check_type(stream.headers, _returns(AttachmentStream.headers))
    assert stream.read() == b"hello"


def test_sync_changes_accessors(db: couchcore.Database) -> None:
    db.save([{"_id": "a"}, {"_id": "b"}])
    changes = db.changes(since=0, limit=1)
    check_type(changes.last_seq, _returns(ChangesResult.last_seq))
    check_type(changes.last_seq, Seq)
    check_type(changes.pending, _returns(ChangesResult.pending))
    check_type(changes.as_dict(), _returns(ChangesResult.as_dict))  # ChangesResponse, key by key
    check_type(changes["results"], list[dict[str, Any]])
    check_type(changes["last_seq"], Seq)
    check_type(changes[0], dict[str, Any])
    check_type(changes[:1], list[dict[str, Any]])
    check_type(changes.get("last_seq"), Seq)
    check_type(changes.get("results"), list[dict[str, Any]])
    check_type(changes.get("pending"), int | None)
    check_type(changes.get("nothing", 0), object)
    check_type(changes.keys(), KeysView[str])
    check_type(changes.values(), ValuesView[object])
    check_type(changes.items(), ItemsView[str, object])
    check_type(dict(changes), dict[str, object])
    check_type(dict(changes), ChangesResponse)
    check_type(changes.headers, Mapping[str, str])
    if "pending" in changes.as_dict():  # CouchDB sends it; PouchDB Server does not always
        check_type(changes["pending"], int)


def test_answers_have_their_declared_shapes(server: couchcore.Server, db: couchcore.Database,
                                            is_couchdb: bool) -> None:
    """Every method returning one of CouchDB's fixed answers (a TypedDict of
    couchcore.protocol.shapes, a list of str, ...): the value the server sends matches the
    method's declared return type, key by key. A method PouchDB Server lacks is skipped
    there (it must work on CouchDB)."""
    from couchcore._api import DatabaseAPI, ServerAPI

    doc: dict[str, Any] = {"_id": "a", "n": 1}
    db.save(doc)
    calls = [
        (ServerAPI.info, server.info), (ServerAPI.version, server.version), (ServerAPI.all_dbs, server.all_dbs),
        (ServerAPI.uuids, server.uuids), (ServerAPI.session, server.session), (ServerAPI.tasks, server.tasks),
        (ServerAPI.up, server.up), (ServerAPI.dbs_info, lambda: server.dbs_info([db.name, "nothing-here"])),
        (ServerAPI.membership, server.membership), (ServerAPI.scheduler_jobs, server.scheduler_jobs),
        (ServerAPI.scheduler_docs, server.scheduler_docs), (ServerAPI.stats, server.stats),
        (DatabaseAPI.commit, db.commit),
        (DatabaseAPI.put_attachment, lambda: db.put_attachment(doc, b"x", "x.txt")),
        (DatabaseAPI.delete_attachment, lambda: db.delete_attachment(doc, "x.txt")),
        (DatabaseAPI.find, lambda: db.find({"n": 1})),
        (DatabaseAPI.create_index, lambda: db.create_index(["n"])),
        (DatabaseAPI.indexes, db.indexes),
        (DatabaseAPI.revs_diff, lambda: db.revs_diff({"a": ["1-abc"]})),
        (DatabaseAPI.missing_revs, lambda: db.missing_revs({"a": ["1-abc"]})),
        (DatabaseAPI.explain, lambda: db.explain({"n": 1})),
        (DatabaseAPI.revisions, lambda: db.revisions("a")),
        (DatabaseAPI.copy, lambda: db.copy("a", "b")),
        (DatabaseAPI.purge, lambda: db.purge({"b": [db.get("b")["_rev"]]})),
        (DatabaseAPI.build_view, lambda: db.build_view("t/by_n", timeout=60)),
    ]
    db.save(dict(DDOC))
    skipped = []
    for method, call in calls:
        try:
            value = call()
        except couchcore.HTTPError as exc:
            if is_couchdb:
                raise
            skipped.append((method.__name__, exc.status))
            continue
        check_shape(value, get_type_hints(method)["return"])
    check_shape(db.info(), DatabaseInfo)
    if is_couchdb:  # PouchDB Server answers {"view_index": "Not implemented."}
        check_shape(db.info("t"), DesignInfo)
    check_shape(db.security(), Document)
    assert len(skipped) <= 4, skipped  # PouchDB Server: _scheduler/*, _purge, _missing_revs


def test_sync_results_do_not_iterate_async(db: couchcore.Database) -> None:
    """What the sync facade's results do not declare (``async for``, ``aall()``) really fails."""
    doc: dict[str, Any] = {"_id": "a"}
    db.save(doc)
    db.put_attachment(doc, b"x", "x.txt")

    async def main() -> None:
        with pytest.raises(TypeError, match="plain 'for'"):
            async for _ in db.view("_all_docs"):
                pass
        with pytest.raises(TypeError, match=r"\.all\(\)"):
            await db.view("_all_docs").aall()
        with pytest.raises(TypeError, match="plain 'for'"):
            async for _ in db.open_attachment("a", "x.txt"):
                pass

    asyncio.run(main())


# -- async ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sserver(couch_url: str) -> Any:
    """A sync server to set the data up (the shared ``server`` fixture is parametrized over
    the sync backends, which would only run the async tests twice)."""
    server = couchcore.Server(couch_url)
    yield server
    server.close()


@pytest.fixture
def sdb(sserver: couchcore.Server) -> Any:
    database = sserver.create(unique_name(), n=1)  # one copy, as ``db``
    yield database
    sserver.delete(database.name)



def arun(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_async_resolutions_are_awaitable(sdb: couchcore.Database, couch_url: str) -> None:
    async def main() -> None:
        async with couchcore.aio.Server(couch_url) as server:
            adb = await server.db(sdb.name)
            for method, args in (("resolve", ()), ("overwrite", ()), ("merge", MERGE)):
                _, stale = _conflicted(sdb)
                saved = await adb.save([stale])
                check_type(saved, AsyncConflictResolution)
                assert set(saved.pending) == {"c"}
                if method == "resolve":
                    saved.pending["c"]["doc"]["_rev"] = sdb.get("c")["_rev"]
                pending = getattr(saved, method)(*args)
                assert inspect.isawaitable(pending)  # Awaitable[AsyncConflictResolution]
                assert not isinstance(pending, ConflictResolution)
                again = await pending
                check_type(again, AsyncConflictResolution)
                assert again.ok and set(again.resolved) == {"c"}, (method, again.pending)
                assert sdb.get("c")["n"] == 3
                sdb.delete(sdb.get("c"))

    arun(main())


def test_async_results_are_the_async_protocols(sdb: couchcore.Database, couch_url: str) -> None:
    sdb.save([dict(DDOC), {"_id": "a", "n": 1}, {"_id": "b", "n": 2}])
    sdb.put_attachment(sdb.get("a"), b"hello", "note.txt", "text/plain")

    async def main() -> None:
        async with couchcore.aio.Server(couch_url) as server:
            adb = await server.db(sdb.name)
            result = await adb.view("t/by_n", update_seq=True)
            check_type(result, AsyncViewResult)
            check_type(result.headers, _returns(AsyncViewResult.headers))
            # what AsyncViewResult leaves out fails here
            with pytest.raises(TypeError, match="async for"):
                for _ in result:
                    pass
            with pytest.raises(TypeError, match="aall"):
                result.all()
            rows = await result.aall()
            check_type(rows, list[Row])
            check_type(result.update_seq, Seq)
            check_type(result.total_rows, int)

            stream = await adb.open_attachment("a", "note.txt")
            check_type(stream, AsyncAttachmentStream)
            check_type(stream.headers, Mapping[str, str])
            with pytest.raises(TypeError, match="async for"):
                stream.read()
            stream = await adb.open_attachment("a", "note.txt")
            assert await stream.aread() == b"hello"

            task = adb.changes(since=0)  # in a running loop: a ChangesTask
            assert isinstance(task, couchcore.aio.ChangesTask)
            whole = await task
            check_type(task.result(), ChangesResult)
            check_type(whole.last_seq, Seq)
            check_type(task.last_seq, _returns(couchcore.aio.ChangesTask.last_seq))
            check_type(whole["results"], list[dict[str, Any]])  # read whole: the sync accessors work
            assert [c["id"] for c in whole] == [c["id"] for c in whole["results"]]
            check_type(whole.as_dict(), ChangesResponse)

    arun(main())


def test_async_facade_dunders_raise(sdb: couchcore.Database, couch_url: str) -> None:
    """The dunders the async facade does not declare (they cannot await) raise TypeError,
    each naming the awaitable to use."""
    sdb.save({"_id": "a"})

    async def main() -> None:
        async with couchcore.aio.Server(couch_url) as server:
            adb = await server.db(sdb.name)
            checks = [
                (lambda: "a" in adb, "await db.contains"),
                (lambda: len(adb), "doc_count"),
                (lambda: iter(adb), "async for"),
                (lambda: list(adb), "async for"),
                (lambda: adb.__setitem__("b", {}), "await db.save"),
                (lambda: adb.__delitem__("a"), "await db.delete"),
                (lambda: sdb.name in server, "await server.exists"),
                (lambda: len(server), "all_dbs"),
                (lambda: list(server), "async for"),
                (lambda: server.__delitem__(sdb.name), "await server.delete"),
            ]
            for call, hint in checks:
                with pytest.raises(TypeError, match=hint):
                    call()
            assert [docid async for docid in adb] == ["a"]  # what the async flavour declares instead
            assert await adb.contains("a")

    arun(main())
    assert sdb.contains("a")  # nothing was sent by the refused calls


def test_paged_and_followers_per_flavour(sdb: couchcore.Database, couch_url: str) -> None:
    """iterview/iterfind/follow/continuous changes: ``for`` on the sync facade, ``async for``
    (AsyncPaged, AsyncChangesFollower, couchcore.tornado.ChangesFeed) on the async one; the
    other way raises TypeError; ``since``/``last_seq`` are Seq."""
    sdb.save([{"_id": "a", "n": 1}, {"_id": "b", "n": 2}])
    follower = sdb.follow(since=0, one_off=True)
    assert sorted(c["id"] for c in follower) == ["a", "b"]  # (a cluster's changes come in any order)
    check_type(follower.since, _returns(ChangesFollower.since))
    check_type([row.id for row in sdb.iterview("_all_docs", page_size=1)], list[str])
    feed = sdb.changes(feed="continuous", since=0, limit=2)
    assert sorted(c["id"] for c in feed) == ["a", "b"]
    check_type(feed.last_seq, _returns(couchcore.ChangesFeed.last_seq))
    check_type(feed.last_seq, Seq)

    async def main() -> None:
        with pytest.raises(TypeError, match="plain 'for'"):
            async for _ in sdb.iterview("_all_docs"):
                pass
        with pytest.raises(TypeError, match="plain 'for'"):
            async for _ in sdb.follow(since=0, one_off=True):
                pass
        async with couchcore.aio.Server(couch_url) as server:
            adb = await server.db(sdb.name)
            paged = adb.iterview("_all_docs", page_size=1)
            check_type(paged, AsyncPaged[Row])
            with pytest.raises(TypeError, match="async for"):
                iter(paged)
            assert [row.id async for row in paged] == ["a", "b"] and paged.pages >= 2
            afollower = adb.follow(since=0, one_off=True)
            check_type(afollower, AsyncChangesFollower)
            with pytest.raises(TypeError, match="async for"):
                iter(afollower)
            assert sorted([c["id"] async for c in afollower]) == ["a", "b"]
            check_type(afollower.since, Seq)
            afeed = adb.changes(feed="continuous", since=0, limit=2)
            with pytest.raises(TypeError, match="async for"):
                iter(afeed)
            assert sorted([c["id"] async for c in afeed]) == ["a", "b"]
            check_type(afeed.last_seq, Seq)
        with pytest.raises(TypeError, match="plain 'for'"):
            async for _ in sdb.changes(feed="continuous", since=0, limit=2):
                pass

    arun(main())


def test_callback_status_fields(sdb: couchcore.Database, couch_url: str) -> None:
    """The Status a callback gets: ``code``, ``headers``, ``response`` as declared, on
    success and on failure; a view handed to a callback is a ViewResult read whole."""
    import couchcore.tornado

    sdb.save({"_id": "a"})
    seen: list[tuple[Any, Status]] = []

    async def main() -> None:
        server = couchcore.tornado.Server(couch_url)
        try:
            tdb = await server.db(sdb.name)
            await tdb.get("a", callback=lambda doc, status: seen.append((doc, status)))
            await tdb.get("missing", callback=lambda doc, status: seen.append((doc, status)))
            await tdb.view("_all_docs", callback=lambda rows, status: seen.append((rows, status)))
        finally:
            server.close()

    arun(main())
    hints = get_type_hints(Status.__init__)
    for value, status in seen:
        check_type(status.code, hints["code"])
        check_type(status.headers, dict[str, str])
        check_type(status.response, hints["response"])
        assert status.response is not None
    assert [status.ok for _, status in seen] == [True, False, True]
    rows = seen[2][0]
    check_type(rows, ViewResult)
    assert [row.id for row in rows] == ["a"]  # plain 'for': read whole before the callback
