"""Round 27, fixes of reviewer-r27.md findings 1, 2, 4 and 5 (3 is elsewhere). Each test
failed before its fix (see the commit that added it) and passes on PouchDB Server and on
Apache CouchDB 3.5; ``couchdb_only`` marks what PouchDB Server answers differently."""

from __future__ import annotations

import pytest

import couchcore


@pytest.fixture
def db(one_copy_db):
    """One copy per shard (n=1): _all_docs right after a write sees it on a cluster too."""
    return one_copy_db


# -- 4. find()/iterfind() leave None options out, as view()/get()/changes() do ----------------
# https://docs.couchdb.org/en/stable/api/database/find.html: every _find body field is typed
# (integer, array, boolean, string); CouchDB refuses null for each with 400

_FIND_OPTIONS = ["limit", "skip", "sort", "fields", "r", "conflicts", "update", "stable", "execution_stats",
                 "bookmark", "use_index"]


def _find_docs(db):
    db.save([{"_id": f"f{i}", "k": i % 3} for i in range(9)])
    return sorted(d["_id"] for d in db.find({"k": 1})["docs"])


@pytest.mark.parametrize("option", _FIND_OPTIONS)
def test_find_leaves_none_options_out(db, option):
    expected = _find_docs(db)
    assert expected == ["f1", "f4", "f7"]
    assert sorted(d["_id"] for d in db.find({"k": 1}, **{option: None})["docs"]) == expected
    # _explain takes the same body
    assert db.explain({"k": 1}, **{option: None})["selector"] == {"k": {"$eq": 1}}


@pytest.mark.parametrize("option", _FIND_OPTIONS)
def test_iterfind_leaves_none_options_out(db, option):
    expected = _find_docs(db)
    assert sorted(d["_id"] for d in db.iterfind({"k": 1}, page_size=2, **{option: None})) == expected


@pytest.mark.parametrize("option", _FIND_OPTIONS)
def test_find_none_options_on_the_async_facade(db, couch_url, option):
    import asyncio

    expected = _find_docs(db)

    async def main() -> tuple[list[str], list[str]]:
        async with couchcore.aio.Server(couch_url) as aserver:
            adb = await aserver.db(db.name)
            found = await adb.find({"k": 1}, **{option: None})
            paged = [d["_id"] async for d in adb.iterfind({"k": 1}, page_size=2, **{option: None})]
            return sorted(d["_id"] for d in found["docs"]), sorted(paged)

    assert asyncio.run(main()) == (expected, expected)


@pytest.mark.couchdb_only  # PouchDB Server has no partitioned databases
def test_partition_find_leaves_none_options_out(server, db_name):
    db = server.create(db_name, partitioned=True, n=1)
    try:
        db.save([{"_id": f"p1:x{i}", "k": i % 2} for i in range(6)] + [{"_id": "p2:y", "k": 1}])
        part = db.partition("p1")
        for option in _FIND_OPTIONS:
            assert sorted(d["_id"] for d in part.find({"k": 1}, **{option: None})["docs"]) == \
                ["p1:x1", "p1:x3", "p1:x5"], option
            assert sorted(d["_id"] for d in part.iterfind({"k": 1}, page_size=2, **{option: None})) == \
                ["p1:x1", "p1:x3", "p1:x5"], option
            assert part.explain({"k": 1}, **{option: None})["selector"] == {"k": {"$eq": 1}}, option
    finally:
        server.delete(db_name)
