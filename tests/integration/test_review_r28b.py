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
