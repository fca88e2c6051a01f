"""``Server.db_updates()``: the server's feed of database events (``/_db_updates``).

CouchDB keeps the events in the ``_global_changes`` system database (created by a
cluster's setup; the fixture creates it when missing). PouchDB Server has no such
endpoint, so the server tests are ``couchdb_only``; what is checked before sending
runs everywhere.
https://docs.couchdb.org/en/stable/api/server/common.html#db-updates
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import couchcore
import couchcore.aio as aio
from couchcore.protocol.changes import DB_UPDATES, changes_request
from tests.helpers import unique_name


@pytest.fixture
def admin(server):
    try:
        server.create("_global_changes")
    except couchcore.PreconditionFailed:
        pass
    return server


def events_for(server, name: str, since, want: int, wait: float = 20.0) -> list[tuple[str, str]]:
    """The (db_name, type) events of ``name`` after ``since``, once ``want`` have come
    (a cluster writes them to _global_changes in batches, a moment after the fact)."""
    deadline = time.monotonic() + wait
    while True:
        seen = [(e["db_name"], e["type"]) for e in server.db_updates(since=since) if e["db_name"] == name]
        if len(seen) >= want or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


@pytest.mark.couchdb_only
def test_normal_feed_lists_created_and_deleted(admin):
    since = admin.db_updates(since="now").last_seq
    assert isinstance(since, str)
    name = unique_name("dbu")
    admin.create(name)
    admin.delete(name)
    seen = events_for(admin, name, since, 2)
    # the events of one batch written to _global_changes come in no set order
    assert {(name, "created"), (name, "deleted")} <= set(seen), seen
    result = admin.db_updates(since=since, limit=1)
    assert len(result.all()) == 1 and result.last_seq is not None


@pytest.mark.couchdb_only
def test_descending_and_since_now(admin):
    name = unique_name("dbu")
    since = admin.db_updates(since="now").last_seq
    admin.create(name)
    try:
        assert events_for(admin, name, since, 1)
        newest = admin.db_updates(descending=True, limit=200).all()  # (other clients write too)
        assert (name, "created") in [(e["db_name"], e["type"]) for e in newest]
        assert admin.db_updates(since="now").all() == []  # nothing after now, at once
    finally:
        admin.delete(name)


@pytest.mark.couchdb_only
def test_longpoll_waits_for_the_next_event(admin):
    name = unique_name("dbu")
    since = admin.db_updates(since="now").last_seq
    timer = threading.Timer(0.5, admin.create, (name,))
    timer.start()
    try:
        t0 = time.monotonic()
        result = admin.db_updates(feed="longpoll", since=since, timeout=15000)
        events = result.all()
        assert events and time.monotonic() - t0 < 15, events
        assert result.last_seq is not None
    finally:
        timer.join()
        admin.delete(name)


@pytest.mark.couchdb_only
def test_continuous_feed_delivers_events_as_they_happen(admin):
    name = unique_name("dbu")
    # a seq taken before the events (since="now" is pinned when the feed's thread opens it,
    # which a loaded machine may delay past the create below)
    since = admin.db_updates(since="now").last_seq
    feed = admin.db_updates(feed="continuous", since=since)
    assert isinstance(feed, couchcore.ChangesFeed) and "/_db_updates" in repr(feed)
    seen: list[tuple[str, str]] = []

    def reader():
        for event in feed:
            if event["db_name"] == name:
                seen.append((event["db_name"], event["type"]))
                if {"created", "deleted"} <= {t for _, t in seen}:
                    feed.stop()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    time.sleep(0.5)  # (not needed for correctness: the feed starts from since)
    admin.create(name)
    admin.delete(name)
    thread.join(30)
    feed.stop()
    assert not thread.is_alive() and {(name, "created"), (name, "deleted")} <= set(seen), seen
    assert isinstance(feed.last_seq, str) and feed.last_seq != "now"


@pytest.mark.couchdb_only
def test_continuous_feed_on_the_async_facade(couch_url, admin):
    name = unique_name("dbu")

    async def main():
        server = aio.Server(couch_url)
        since = (await server.db_updates(since="now")).last_seq  # before the event, whatever the load
        feed = server.db_updates(feed="continuous", since=since)
        seen = []

        async def read():
            async for event in feed:
                if event["db_name"] == name:
                    seen.append(event["type"])
                    feed.stop()

        task = asyncio.ensure_future(read())
        await asyncio.sleep(0.5)
        await server.create(name)
        await asyncio.wait_for(task, 30)
        normal = [event async for event in server.db_updates(since=0, limit=1)]  # streamed
        whole = await server.db_updates(since=0, limit=1)  # read whole: plain for
        # one event each, of the same shape (not the same event: on a cluster each node merges
        # the shards of _global_changes in its own order and spells the seqs its own way)
        assert [sorted(e) for e in whole] == [sorted(e) for e in normal] == [["db_name", "seq", "type"]]
        assert whole.last_seq
        await server.delete(name)
        server.close()
        return seen, normal

    seen, normal = asyncio.run(main())
    assert seen == ["created"]
    assert len(normal) == 1


@pytest.mark.couchdb_only
def test_server_close_stops_a_continuous_feed(couch_url, admin):
    server = couchcore.Server(couch_url)
    feed = server.db_updates(feed="continuous", since="now")
    done = threading.Event()

    def reader():
        for _ in feed:
            pass
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    time.sleep(0.5)
    server.close()
    # at most one heartbeat (5 s): CouchDB sends the answer's head with the first one
    assert done.wait(10) and feed.stopped


def test_bad_options_raise_before_anything_is_sent(refused_url):
    dead = couchcore.Server(refused_url, retries=0)
    for bad in ({"filter": "_doc_ids"}, {"include_docs": True}, {"limit": -1}, {"timeout": "5"},
                {"feed": "eventsource"}):
        with pytest.raises(couchcore.InvalidOption):
            dead.db_updates(**bad)
    with pytest.raises(couchcore.InvalidOption):
        dead.db_updates(feed="continuous", heartbeat=1.5)
    # heartbeat=0: CouchDB's /_db_updates then sends newlines without pause and never
    # ends the answer (timeout ignored); its _changes refuses it with a 400
    for feed in ("longpoll", "continuous"):
        with pytest.raises(couchcore.InvalidOption, match="heartbeat"):
            dead.db_updates(feed=feed, heartbeat=0, timeout=500)
    with pytest.raises(couchcore.InvalidOption, match="heartbeat"):
        dead.db_updates(feed="continuous", heartbeat=0)  # not silently the default 5 s
    with pytest.raises(couchcore.InvalidOption, match="heartbeat"):
        changes_request("db", {"feed": "continuous", "heartbeat": 0})


def test_request_shape():
    req = changes_request("", {"since": "now", "heartbeat": True, "feed": "continuous"}, endpoint=DB_UPDATES)
    assert req.method == "GET" and req.path == "/_db_updates"
    assert dict(req.query) == {"since": "now", "heartbeat": "30000", "feed": "continuous"}
    assert req.timeout == pytest.approx(95.0)  # three heartbeats and 5 s before a silent feed is dead
