"""The ``_changes`` feed against the real test server: normal, longpoll, continuous
(iterator and callback style), and reconnection after a dropped connection.

Sequences are opaque (strings on CouchDB 2+, integers on PouchDB Server): the tests
only ever hand a sequence back to the server, never compute with one.
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import quote

import pytest

import couchcore
from couchcore.testing import FaultyProxy, LoopbackServer, read_request_head
from couchcore import Document
from couchcore._urls import split_credentials
from tests.helpers import wait_until

FILTERS = {
    "_id": "_design/f",
    "filters": {
        "even": "function(doc, req){ return doc.n % 2 == 0; }",
        "tag": "function(doc, req){ return doc.tag == req.query.tag; }",
    },
}


@pytest.fixture
def db(one_shard_db):
    """A fresh database with ONE shard and ONE copy of it (PouchDB Server ignores ``q`` and
    ``n``). CouchDB 2+ merges the feeds of several shards in no particular order
    (https://docs.couchdb.org/en/stable/api/database/changes.html: "partially ordered");
    one shard keeps insertion order. A cluster's ``_changes`` reads one copy of each shard,
    which may not have applied a write the others acknowledged yet
    (https://docs.couchdb.org/en/stable/cluster/sharding.html#quorum); with one copy every
    acknowledged write is in the feed. These tests are about couchcore's feed handling;
    the sharded, replicated feed is tested in test_cluster.py."""
    return one_shard_db


def add_docs(db, start, stop, prefix="d"):
    docs = [{"_id": f"{prefix}{i:02d}", "n": i, "tag": "ab"[i % 2]} for i in range(start, stop)]
    assert db.save(docs).ok
    return docs


def change_ids(changes):
    return [c["id"] for c in changes]


def all_changes(db, **options):
    return db.changes(**options)["results"]


# -- a proxy in front of the test server ---------------------------------------------------


@pytest.fixture
def proxy_factory(couch_url, backend):
    """Make ``(proxy, db_through_proxy)`` for the test's database: a
    :class:`~couchcore.testing.FaultyProxy` in front of the test server that keeps every
    answer it relays (``proxy.answers``). With ``cut_first_changes_at=k`` the first
    ``_changes`` answer is cut in the middle of its (k+1)-th change line: the client has
    received k whole changes and part of the next one."""
    _, user, password = split_credentials(couch_url)
    made = []

    def make(db, cut_first_changes_at=None):
        proxy = FaultyProxy(couch_url, capture=True)
        if cut_first_changes_at is not None:
            # the pause: the client reads the k changes before the connection fails (else
            # pycurl may see the failure while opening and re-send as if nothing arrived)
            proxy.cut_before("GET", "/_changes", b'"changes"', occurrence=cut_first_changes_at + 1, pause=0.2)
        server = couchcore.Server(proxy.url, auth=(user, password) if user else None, backend=backend)
        made.append((proxy, server))
        return proxy, server._database(db.name)

    yield make
    for proxy, server in made:
        server.close()
        proxy.close()


def changes_requests(proxy):
    """The targets of the ``_changes`` requests that went through ``proxy``, in order."""
    return [target for _, target in proxy.seen if "_changes" in target]


def consume(feed, until, on_count=None, timeout=20.0):
    """Iterate ``feed`` in a thread until ``until`` changes arrived (or timeout); returns them."""
    got: list = []
    errors: list = []

    def run():
        try:
            for change in feed:
                got.append(change)
                if on_count and len(got) in on_count:
                    on_count[len(got)]()
                if len(got) >= until:
                    return
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        feed.stop()
        t.join(5)
        pytest.fail(f"feed delivered only {len(got)} of {until} changes within {timeout}s: {change_ids(got)}")
    if errors:
        raise errors[0]
    return got


# -- normal and longpoll -------------------------------------------------------------------


def test_normal_feed(db):
    add_docs(db, 0, 5)
    result = db.changes()
    assert set(dict(result)) >= {"results", "last_seq"}  # iterating the result itself yields changes
    assert change_ids(result["results"]) == ["d00", "d01", "d02", "d03", "d04"]
    assert all_changes(db, since=result["last_seq"]) == []
    first = result["results"][0]
    assert first["changes"][0]["rev"].startswith("1-") and "doc" not in first
    assert all(not isinstance(c["seq"], (bool, float)) for c in result["results"])


def test_normal_feed_since_and_limit(db):
    add_docs(db, 0, 6)
    results = all_changes(db)
    since = results[2]["seq"]
    assert change_ids(all_changes(db, since=since)) == ["d03", "d04", "d05"]
    limited = db.changes(since=since, limit=2)
    assert change_ids(limited["results"]) == ["d03", "d04"]
    assert change_ids(all_changes(db, since=limited["last_seq"])) == ["d05"]
    assert all_changes(db, since=results[-1]["seq"]) == []


def test_normal_feed_since_now(db):
    add_docs(db, 0, 3)
    result = db.changes(since="now")
    assert result["results"] == []
    add_docs(db, 3, 4)
    assert change_ids(all_changes(db, since=result["last_seq"])) == ["d03"]


def test_normal_feed_include_docs_and_updates(db):
    docs = add_docs(db, 0, 3)
    docs[0]["v"] = "updated"
    db.save(docs[0])
    db.delete(docs[1])
    results = all_changes(db, include_docs=True)
    assert change_ids(results) == ["d02", "d00", "d01"]
    by_id = {c["id"]: c for c in results}
    assert isinstance(by_id["d00"]["doc"], Document) and by_id["d00"]["doc"]["v"] == "updated"
    assert by_id["d00"]["changes"][0]["rev"].startswith("2-")
    assert by_id["d01"]["deleted"] is True and by_id["d01"]["doc"]["_deleted"] is True
    assert by_id["d02"]["doc"]["n"] == 2


def test_normal_feed_descending(db):
    add_docs(db, 0, 3)
    assert change_ids(all_changes(db, descending=True)) == ["d02", "d01", "d00"]


def test_doc_ids_filter(db):
    add_docs(db, 0, 6)
    assert sorted(change_ids(all_changes(db, doc_ids=["d04", "d01", "nope"]))) == ["d01", "d04"]
    assert change_ids(all_changes(db, doc_ids=("d02",), include_docs=True)) == ["d02"]


def test_design_doc_filter_function(db):
    db.save(dict(FILTERS))
    add_docs(db, 0, 7)
    assert change_ids(all_changes(db, filter="f/even")) == ["d00", "d02", "d04", "d06"]
    assert change_ids(all_changes(db, filter="f/tag", params={"tag": "b"})) == ["d01", "d03", "d05"]
    since = all_changes(db)[3]["seq"]  # f, d00, d01, d02
    assert change_ids(all_changes(db, filter="f/even", since=since, limit=1)) == ["d04"]


@pytest.mark.couchdb_only  # a filter naming a missing function kills/wedges PouchDB Server
def test_missing_filter_function_is_not_found(db):
    db.save(dict(FILTERS))
    with pytest.raises(couchcore.NotFound):
        db.changes(filter="f/nope")


def test_longpoll_returns_existing_changes_at_once(db):
    add_docs(db, 0, 3)
    t0 = time.monotonic()
    result = db.changes(feed="longpoll", since=0)
    assert change_ids(result["results"]) == ["d00", "d01", "d02"]
    assert time.monotonic() - t0 < 5


def test_longpoll_waits_for_the_next_change(db):
    add_docs(db, 0, 2)
    last = db.changes()["last_seq"]
    timer = threading.Timer(0.3, lambda: add_docs(db, 2, 3))
    timer.start()
    t0 = time.monotonic()
    result = db.changes(feed="longpoll", since=last, include_docs=True)
    results = result["results"]  # the result streams: reading it is what waits for the change
    elapsed = time.monotonic() - t0
    timer.join()
    assert change_ids(result["results"]) == ["d02"] and result["results"][0]["doc"]["n"] == 2
    assert 0.2 < elapsed < 10
    assert change_ids(all_changes(db, since=result["last_seq"])) == []


def test_longpoll_with_doc_ids_and_filter(db):
    db.save(dict(FILTERS))
    add_docs(db, 0, 2)
    last = db.changes()["last_seq"]
    timer = threading.Timer(0.2, lambda: add_docs(db, 2, 6))
    timer.start()
    result = db.changes(feed="longpoll", since=last, filter="f/even")
    timer.join()
    assert change_ids(result["results"])[0] == "d02"
    assert set(change_ids(result["results"])) <= {"d02", "d04"}
    assert change_ids(db.changes(feed="longpoll", since=last, doc_ids=["d05"])["results"]) == ["d05"]


@pytest.mark.couchdb_only  # PouchDB Server ignores timeout: its longpoll waits for a change forever
def test_longpoll_timeout_returns_empty(db):
    add_docs(db, 0, 1)
    last = db.changes()["last_seq"]
    t0 = time.monotonic()
    result = db.changes(feed="longpoll", since=last, timeout=300)
    assert result["results"] == [] and time.monotonic() - t0 < 10
    assert "last_seq" in result


@pytest.mark.parametrize("options", [
    {"feed": "sideways"},
    {"bogus": True},
    {"limit": -1},
    {"limit": "5"},
    {"heartbeat": -5},
    {"timeout": 1.5},
    {"doc_ids": "d01"},
])
def test_bad_options_raise_before_any_request(options):
    dead = couchcore.Server("http://127.0.0.1:9", retries=0)._database("offline")
    with pytest.raises(couchcore.InvalidOption):
        dead.changes(**options)
    if options.get("feed") is None:
        with pytest.raises(couchcore.InvalidOption):
            dead.changes(feed="continuous", **options)


def test_changes_of_missing_database(server):
    with pytest.raises(couchcore.NotFound):
        server._database("no-such-db-couchcore").changes()


# -- continuous: iteration ---------------------------------------------------------------


def test_continuous_limit_and_include_docs(db):
    add_docs(db, 0, 6)
    feed = db.changes(feed="continuous", limit=3, include_docs=True)
    assert isinstance(feed, couchcore.ChangesFeed)
    t0 = time.monotonic()
    got = list(feed)  # ends by itself after limit changes
    assert time.monotonic() - t0 < 10
    assert change_ids(got) == ["d00", "d01", "d02"]
    assert [c["doc"]["n"] for c in got] == [0, 1, 2] and isinstance(got[0]["doc"], Document)
    assert feed.last_seq == got[-1]["seq"] and feed.delivered == 3
    # resume where it stopped, with the opaque seq handed back as is
    rest = list(db.changes(feed="continuous", since=feed.last_seq, limit=3))
    assert change_ids(rest) == ["d03", "d04", "d05"]


def test_continuous_delivers_live_changes(db):
    add_docs(db, 0, 2)
    feed = db.changes(feed="continuous", since=db.changes()["last_seq"], heartbeat=1000)
    timer = threading.Timer(0.2, lambda: add_docs(db, 2, 5))
    timer.start()
    got = consume(feed, 3)
    feed.stop()
    timer.join()
    assert change_ids(got) == ["d02", "d03", "d04"]
    assert feed.reconnects == 0


def test_continuous_since_now(db):
    add_docs(db, 0, 3)
    feed = db.changes(feed="continuous", since="now")
    timer = threading.Timer(0.3, lambda: add_docs(db, 3, 4))
    timer.start()
    got = consume(feed, 1)
    feed.stop()
    timer.join()
    assert change_ids(got) == ["d03"]


def test_continuous_doc_ids_and_filter(db):
    db.save(dict(FILTERS))
    add_docs(db, 0, 8)
    assert change_ids(db.changes(feed="continuous", doc_ids=["d03", "d06"], limit=2)) == ["d03", "d06"]
    assert change_ids(db.changes(feed="continuous", filter="f/even", limit=3)) == ["d00", "d02", "d04"]
    assert change_ids(db.changes(feed="continuous", filter="f/tag", params={"tag": "b"}, limit=2)) == ["d01", "d03"]


def test_continuous_heartbeat_keeps_an_idle_feed_open(db, proxy_factory):
    proxy, pdb = proxy_factory(db)
    add_docs(db, 0, 1)
    feed = pdb.changes(feed="continuous", heartbeat=100)
    timer = threading.Timer(1.0, lambda: add_docs(db, 1, 2))
    timer.start()
    got = consume(feed, 2)
    feed.stop()
    timer.join()
    assert change_ids(got) == ["d00", "d01"]
    assert feed.reconnects == 0 and len(changes_requests(proxy)) == 1
    assert "heartbeat=100" in changes_requests(proxy)[0]
    answer = next(body for _, target, body in proxy.answers if "_changes" in target)
    heartbeats = bytes(answer).count(b"\r\n\n\r\n")  # chunks holding only "\n"
    assert heartbeats >= 3


def test_continuous_heartbeat_true_means_default(db, proxy_factory):
    proxy, pdb = proxy_factory(db)
    add_docs(db, 0, 1)
    assert change_ids(pdb.changes(feed="continuous", heartbeat=True, limit=1)) == ["d00"]
    assert "heartbeat=30000" in changes_requests(proxy)[0]


def test_continuous_timeout_is_not_overridden_by_a_default_heartbeat(db, proxy_factory):
    """CouchDB ignores ``timeout`` when ``heartbeat`` is sent: the feed must not add one then."""
    proxy, pdb = proxy_factory(db)
    add_docs(db, 0, 1)
    assert change_ids(pdb.changes(feed="continuous", timeout=500, limit=1)) == ["d00"]
    line = changes_requests(proxy)[0]
    assert "timeout=500" in line and "heartbeat" not in line


@pytest.mark.couchdb_only  # PouchDB Server's continuous feed ignores timeout and never ends
def test_continuous_feed_ends_after_server_timeout(db):
    add_docs(db, 0, 2)
    feed = db.changes(feed="continuous", timeout=500)
    t0 = time.monotonic()
    got = list(feed)
    assert change_ids(got) == ["d00", "d01"] and time.monotonic() - t0 < 15
    assert feed.last_seq == feed.meta["last_seq"]


def blocked_reader(feed, ids):
    """Iterate ``feed`` in a thread until it has delivered the changes of ``ids`` and
    waits for more; returns ``(thread, got, outcome)``: ``outcome`` gets ``"ended"`` or the
    exception the iteration ended with."""
    got, outcome = [], []

    def run():
        try:
            for change in feed:
                got.append(change)
            outcome.append("ended")
        except BaseException as exc:  # reported by the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(lambda: len(got), lambda n: n >= len(ids))
    assert change_ids(got) == ids
    time.sleep(0.2)  # now blocked waiting for more
    assert thread.is_alive()
    return thread, got, outcome


@pytest.mark.parametrize("how", ["feed.stop", "Server.close"])
def test_stopping_from_another_thread_ends_a_blocked_iteration(db, couch_url, backend, how):
    """``feed.stop()``, or ``Server.close()`` of the Server the feed reads through, from
    another thread ends a continuous feed that a thread is blocked in: promptly, as a plain
    end (not a reconnect and a wait for the next heartbeat); the Server stays usable."""
    add_docs(db, 0, 2)
    own = couchcore.Server(couch_url, backend=backend)
    feed = own._database(db.name).changes(feed="continuous")  # default heartbeat: 30 s of silence
    thread, _, outcome = blocked_reader(feed, ["d00", "d01"])
    t0 = time.monotonic()
    feed.stop() if how == "feed.stop" else own.close()
    assert time.monotonic() - t0 < 2, f"{how}() itself blocked"
    thread.join(5)
    assert outcome == ["ended"], f"iteration did not end after {how}()"
    assert time.monotonic() - t0 < 3
    assert feed.stopped and feed.reconnects == 0 and feed.error is None
    assert "stopped" in repr(feed)
    assert list(feed) == []  # a stopped feed yields nothing
    again = own._database(db.name).changes(feed="continuous", since=0, limit=2)
    assert change_ids(list(again)) == ["d00", "d01"]
    own.close()


def test_breaking_out_of_iteration_releases_the_connection(db):
    add_docs(db, 0, 3)
    for _ in range(12):  # more than the pool size
        feed = db.changes(feed="continuous")
        for change in feed:
            assert change["id"] == "d00"
            break
        feed.stop()
    assert change_ids(all_changes(db)) == ["d00", "d01", "d02"]


# -- continuous: callback style -------------------------------------------------------------


def test_callback_style_batches_with_latency(db):
    add_docs(db, 0, 5)
    calls, lock = [], threading.Lock()

    def on_changes(seq, changes):
        with lock:
            calls.append((seq, list(changes)))

    feed = db.changes(feed="continuous", callback=on_changes, latency=0.2)
    assert isinstance(feed, couchcore.ChangesFeed)
    deadline = time.monotonic() + 10
    while sum(len(c) for _, c in calls) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    add_docs(db, 5, 6)
    while sum(len(c) for _, c in calls) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    feed.stop()
    feed.join(5)
    assert feed._thread is not None and not feed._thread.is_alive()
    assert time.monotonic() - t0 < 3
    delivered = [c for _, batch in calls for c in batch]
    assert change_ids(delivered) == ["d00", "d01", "d02", "d03", "d04", "d05"]
    assert len(calls[0][1]) > 1, "changes arriving together should be batched"
    for seq, batch in calls:
        assert seq == batch[-1]["seq"]
    assert feed.error is None


def test_callback_without_feed_option_is_continuous(db):
    add_docs(db, 0, 2)
    seen, done = [], threading.Event()

    def on_changes(seq, changes):
        seen.extend(changes)
        if len(seen) >= 2:
            done.set()

    feed = db.changes(callback=on_changes, include_docs=True)
    assert done.wait(10)
    feed.stop()
    feed.join(5)
    assert change_ids(seen) == ["d00", "d01"] and seen[1]["doc"]["n"] == 1


def test_callback_that_raises_is_logged_and_the_feed_goes_on(db, caplog):
    add_docs(db, 0, 1)
    seen, done = [], threading.Event()

    def on_changes(seq, changes):
        seen.extend(change_ids(changes))
        if "d00" in change_ids(changes):
            raise ValueError("callback boom")
        if "d01" in seen:
            done.set()

    with caplog.at_level(logging.ERROR, logger="couchcore.changes"):
        feed = db.changes(feed="continuous", callback=on_changes, latency=0)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
        add_docs(db, 1, 2)
        assert done.wait(10), f"feed stopped after the callback raised: saw {seen}"
        feed.stop()
        feed.join(5)
    assert seen == ["d00", "d01"]
    records = [r for r in caplog.records if r.name == "couchcore.changes" and r.exc_info]
    assert records and "callback boom" in str(records[0].exc_info[1])


def test_callback_feed_on_missing_database_reports_the_error(server, caplog):
    db = server._database("no-such-db-couchcore")
    calls = []
    with caplog.at_level(logging.ERROR, logger="couchcore.changes"):
        feed = db.changes(feed="continuous", callback=lambda seq, changes: calls.append(changes))
        feed.join(10)
    assert calls == [] and isinstance(feed.error, couchcore.NotFound)
    assert any("no-such-db-couchcore" in r.getMessage() for r in caplog.records)


# -- reconnection ------------------------------------------------------------------------------


def test_reconnects_after_a_cut_mid_change_without_loss_or_repeats(db, proxy_factory):
    proxy, pdb = proxy_factory(db, cut_first_changes_at=4)
    add_docs(db, 0, 10)
    feed = pdb.changes(feed="continuous", include_docs=True)
    feed.retry_delay = 0.05
    got = consume(feed, 13, on_count={10: lambda: add_docs(db, 10, 13)})
    feed.stop()
    assert change_ids(got) == [f"d{i:02d}" for i in range(13)]
    assert [c["doc"]["n"] for c in got] == list(range(13))
    assert feed.reconnects >= 1
    requests = changes_requests(proxy)
    assert len(requests) >= 2
    assert "since=" not in requests[0]
    # the second request resumes after the 4th change, the last one wholly delivered
    assert f"since={quote(str(got[3]['seq']), safe='')}" in requests[1]
    assert feed.last_seq == got[-1]["seq"]


def test_reconnects_after_an_idle_cut(db, proxy_factory):
    proxy, pdb = proxy_factory(db)
    add_docs(db, 0, 3)
    feed = pdb.changes(feed="continuous", heartbeat=200)
    feed.retry_delay = 0.05

    def cut_then_write():
        time.sleep(0.3)
        proxy.cut()
        time.sleep(0.3)
        add_docs(db, 3, 5)

    got = consume(feed, 5, on_count={3: lambda: threading.Thread(target=cut_then_write, daemon=True).start()})
    feed.stop()
    assert change_ids(got) == ["d00", "d01", "d02", "d03", "d04"]
    assert feed.reconnects >= 1
    requests = changes_requests(proxy)
    assert len(requests) >= 2 and f"since={quote(str(got[2]['seq']), safe='')}" in requests[-1]


def test_reconnect_keeps_the_limit(db, proxy_factory):
    proxy, pdb = proxy_factory(db, cut_first_changes_at=2)
    add_docs(db, 0, 8)
    feed = pdb.changes(feed="continuous", limit=5)
    feed.retry_delay = 0.05
    got = list(feed)
    assert change_ids(got) == ["d00", "d01", "d02", "d03", "d04"]
    assert feed.reconnects >= 1 and "limit=3" in changes_requests(proxy)[1]


def test_feed_gives_up_after_max_retries(db, proxy_factory):
    proxy, pdb = proxy_factory(db)
    feed = pdb.changes(feed="continuous")
    feed.retry_delay = 0.01
    feed.max_retries = 2
    proxy.close()  # nobody listens any more
    with pytest.raises(couchcore.ConnectionError):
        list(feed)
    assert feed.reconnects == 2


def test_feed_backs_off_when_the_server_keeps_ending_it(backend):
    closing = LoopbackServer(lambda conn: (read_request_head(conn), conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")))
    try:
        feed = couchcore.Server(closing.url, backend=backend, retries=0)._database("db").changes(feed="continuous")
        feed.retry_delay = 0.05
        errors = []

        def run():
            try:
                for _ in feed:
                    pass
            except couchcore.CouchcoreError as exc:
                errors.append(exc)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        time.sleep(1.0)
        feed.stop()
        t.join(5)
        # exponential backoff from 50 ms: about 5 attempts in a second, not a busy loop
        assert closing.connections <= 10, f"{closing.connections} reconnects in 1 s"
        assert not t.is_alive()

        feed = couchcore.Server(closing.url, backend=backend, retries=0)._database("db").changes(feed="continuous")
        feed.retry_delay = 0.01
        feed.max_retries = 3
        with pytest.raises(couchcore.TransportError):
            list(feed)  # no progress at all: give up like after connection failures
    finally:
        closing.close()


def test_sync_callback_needs_continuous_feed(db):
    with pytest.raises(couchcore.InvalidInput):
        db.changes(feed="normal", callback=lambda seq, changes: None)


def test_since_now_is_pinned_to_a_sequence(db):
    db.save({"_id": "before"})
    feed = db.changes(feed="continuous", since="now")
    results = []

    def consume():
        for change in feed:
            results.append(change["id"])
            feed.stop()

    import threading

    t = threading.Thread(target=consume)
    t.start()
    deadline = time.monotonic() + 10
    while feed.last_seq == "now" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feed.last_seq != "now"  # resolved from the database's update_seq before connecting
    db.save({"_id": "after"})
    t.join(15)
    assert results == ["after"]
