"""``bool()`` of a streamed result says whether it has items, as ``len() > 0`` would
(as the old library's ``ViewResults`` did): ``if db.view(...):`` was always true."""

from __future__ import annotations

import asyncio
import os

import pytest

import couchcore


def _fill(db):
    db.save([{"_id": f"d{i}", "n": i} for i in range(5)])
    db.save({"_id": "_design/t", "views": {"by_n": {"map": "function(doc){ if (doc.n !== undefined) emit(doc.n, null); }"}}})


def test_view_truth_reads_ahead_to_the_first_row_only(one_copy_db):
    db = one_copy_db
    _fill(db)
    empty = db.view("t/by_n", startkey=100)
    assert not empty
    assert empty.all() == []
    some = db.view("t/by_n", startkey=3)
    assert some
    assert [row.key for row in some] == [3, 4]  # the row read ahead is still yielded, once
    assert db.view("_all_docs", keys=["d1"])
    whole = db.view("t/by_n")
    assert len(whole) == 5 and whole  # read whole: the list's truth


def test_truth_while_iterating_is_a_clear_error(one_copy_db):
    db = one_copy_db
    _fill(db)
    result = db.view("t/by_n")
    rows = iter(result)
    next(rows)
    with pytest.raises(TypeError, match="being streamed"):
        bool(result)
    assert [row.key for row in rows] == [1, 2, 3, 4]


def test_changes_truth(one_copy_db):
    db = one_copy_db
    assert not db.changes()
    _fill(db)
    changes = db.changes()
    assert changes
    assert sorted(c["id"] for c in changes) == ["_design/t", "d0", "d1", "d2", "d3", "d4"]
    assert not db.changes(since=db.changes().last_seq)


def test_async_result_truth_needs_it_read(couch_url):
    import couchcore.aio as aio

    name = "truth-" + os.urandom(5).hex()

    async def main():
        async with aio.Server(couch_url) as server:
            await server.create(name, n=1)
            db = await server.db(name)
            try:
                await db.save([{"_id": "a"}, {"_id": "b"}])
                result = await db.view("_all_docs")
                with pytest.raises(TypeError, match="aall"):
                    bool(result)
                assert [row.id for row in await result.aall()] == ["a", "b"] and result
                empty = await db.view("_all_docs", startkey="z")
                assert await empty.aall() == [] and not empty
            finally:
                await server.delete(name)

    asyncio.run(asyncio.wait_for(main(), 30))
