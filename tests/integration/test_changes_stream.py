"""Normal and longpoll ``_changes`` stream through the row parser (issue 15, item 8).

``db.changes()`` returns a :class:`couchcore._results.ChangesResult`: iterating it yields
the changes as they arrive without keeping them; ``last_seq``/``pending`` are known once
it has been read; ``result["results"]``, ``result["last_seq"]`` and ``dict(result)``
still give the old whole-dict view. The memory figure is in ``tests/unit/test_memory.py``.
"""

from __future__ import annotations

import asyncio

import pytest

import couchcore
import couchcore.tornado as ct
from couchcore._results import ChangesResult
from couchcore.testing import RowReplayServer


@pytest.fixture
def db(one_shard_db):
    # one shard: feed order is insertion order; one copy of it: a cluster's _changes reads
    # one copy, which may lag behind acknowledged writes
    # (https://docs.couchdb.org/en/stable/cluster/sharding.html#quorum)
    return one_shard_db


def add(db, start, stop):
    assert db.save([{"_id": f"d{i:02d}", "n": i} for i in range(start, stop)]).ok


def test_changes_is_a_streamed_result_of_change_dicts(db):
    add(db, 0, 5)
    result = db.changes(include_docs=True)
    assert isinstance(result, ChangesResult)
    seen = []
    for change in result:
        assert isinstance(change, dict) and isinstance(change["doc"], couchcore.Document)
        seen.append(change["id"])
    assert seen == ["d00", "d01", "d02", "d03", "d04"]
    assert result.last_seq is not None  # known once the body was read
    assert [c["id"] for c in db.changes(since=result.last_seq)] == []


def test_last_seq_before_iterating_keeps_the_changes_for_the_iteration(db):
    add(db, 0, 3)
    result = db.changes()
    last = result.last_seq
    assert last is not None
    assert [c["id"] for c in result] == ["d00", "d01", "d02"]
    add(db, 3, 4)
    assert [c["id"] for c in db.changes(since=last)] == ["d03"]


def test_the_old_dict_view_still_works(db):
    add(db, 0, 4)
    result = db.changes(limit=2)
    assert [c["id"] for c in result["results"]] == ["d00", "d01"]
    assert "last_seq" in result and result["last_seq"] == result.last_seq
    whole = dict(db.changes(limit=2))
    assert set(whole) >= {"results", "last_seq"} and len(whole["results"]) == 2
    assert db.changes().get("nope", 42) == 42
    items = dict(db.changes().items())
    assert [c["id"] for c in items["results"]] == ["d00", "d01", "d02", "d03"] and "last_seq" in items
    assert len(db.changes().all()) == 4
    with pytest.raises(KeyError):
        db.changes()["nope"]


@pytest.mark.couchdb_only  # PouchDB Server does not send "pending"
def test_pending_is_known_after_reading(db):
    add(db, 0, 5)
    result = db.changes(limit=2)
    assert len(list(result)) == 2
    assert result.pending == 3


def test_a_large_normal_feed_streams():
    """250k changes: the first change is in hand while the server is still sending."""
    n = 250_000
    with RowReplayServer() as replay:
        db = couchcore.Database(f"{replay.url}/rows-{n}")
        result = db.changes()
        it = iter(result)
        first = next(it)
        assert first["id"] == "doc00000000"
        assert not replay.done.is_set() and replay.sent < replay.body_size(n) / 2
        count = 1 + sum(1 for _ in it)
        assert count == n and result.last_seq.startswith(f"{n}-") and result.pending == 0


def test_async_changes_stream_with_async_for_and_await_gives_the_whole(couch_url, db, backend):
    # each sync backend stands for an async one: Tornado's client, libcurl on the loop
    abackend = "tornado" if backend == "urllib3" else "pycurl"
    add(db, 0, 3)

    async def main():
        server = ct.Server(couch_url, backend=abackend)
        adb = server._database(db.name)
        streamed = adb.changes()
        assert [c["id"] async for c in streamed] == ["d00", "d01", "d02"]
        assert streamed.last_seq is not None and streamed.done()
        whole = await adb.changes()
        assert [c["id"] for c in whole["results"]] == ["d00", "d01", "d02"]
        assert whole["last_seq"] == whole.last_seq
        server.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_async_large_feed_streams():
    n = 250_000

    async def main():
        with RowReplayServer() as replay:
            server = ct.Server(replay.url)
            adb = server._database(f"rows-{n}")
            feed = adb.changes()
            count = 0
            async for change in feed:
                if count == 0:
                    assert not replay.done.is_set()
                count += 1
            assert count == n and feed.last_seq.startswith(f"{n}-")
            server.close()

    asyncio.run(asyncio.wait_for(main(), 120))
