"""The callback style of ``follow`` on the async facades: ``db.follow(callback=fn)`` calls
``fn(seq, changes)`` per batch, as ``db.changes(feed="continuous", callback=fn)`` does. It
handed ``fn(follower, status)`` an async follower, which a plain callback cannot iterate."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

import couchcore
import couchcore.tornado
from tests.helpers import eventually, unique_name


@pytest.fixture
def db(one_copy_db):
    """One copy per shard: a cluster's _changes sees every acknowledged write at once."""
    return one_copy_db


def test_a_plain_callback_gets_the_changes_in_batches(couch_url, db):
    """A one_off follower's changes reach a plain function, each batch with its last seq."""
    db.save([{"_id": f"d{i}"} for i in range(5)])

    async def main():
        adb = await couchcore.tornado.Server(couch_url).db(db.name)
        calls = []
        follower = adb.follow(since=0, one_off=True, callback=lambda seq, changes: calls.append((seq, changes)))
        await asyncio.wait_for(follower.wait(), 30)  # a one_off follower ends once caught up
        await follower.wait()  # again: at once
        return calls, follower

    calls, follower = asyncio.run(main())
    ids = [c["id"] for _, changes in calls for c in changes]
    assert sorted(ids) == [f"d{i}" for i in range(5)] and len(ids) == 5
    assert all(seq == changes[-1]["seq"] for seq, changes in calls)
    assert follower.error is None and follower.delivered == 5


def test_a_coroutine_callback_and_stop(couch_url, db):
    """A coroutine function is awaited; stop() ends the task of a longpoll follower."""
    async def main():
        adb = await couchcore.tornado.Server(couch_url).db(db.name)
        seen = []

        async def callback(seq, changes):
            await asyncio.sleep(0)
            seen.extend(c["id"] for c in changes)

        follower = adb.follow(since="now", callback=callback, latency=0.05)
        await asyncio.sleep(0.3)
        await adb.save([{"_id": "later1"}, {"_id": "later2"}])
        await eventually(lambda: len(seen) == 2, timeout=30)
        follower.stop()
        await asyncio.wait_for(follower.wait(), 30)
        return seen

    assert sorted(asyncio.run(main())) == ["later1", "later2"]


def test_an_error_that_ends_the_follower_is_logged_and_kept(couch_url, caplog):
    """A 404 ends the follower: logged without the password, kept in .error."""
    async def main():
        adb = couchcore.tornado.Database(f"{couch_url.rstrip('/')}/{unique_name('missing')}")
        follower = adb.follow(since=0, callback=lambda seq, changes: None)
        await asyncio.wait_for(follower.wait(), 30)
        return follower

    follower = asyncio.run(main())
    assert isinstance(follower.error, couchcore.NotFound)
    assert "stopped" in caplog.text
    password = urlsplit(couch_url).password
    assert not password or password not in caplog.text


def test_bad_callbacks_are_refused(couch_url, db):
    """Not callable: InvalidInput; no running loop: RuntimeError, before any request."""
    adb = couchcore.tornado.Database(f"{couch_url.rstrip('/')}/{db.name}")
    with pytest.raises(couchcore.InvalidInput):
        adb.follow(callback="not callable")
    with pytest.raises(RuntimeError, match="running event loop"):
        adb.follow(callback=lambda seq, changes: None)
