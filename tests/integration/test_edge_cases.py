"""Edge cases found in review: each test failed before its fix."""

from __future__ import annotations

import gc
import time

import pytest

import couchcore
from couchcore.bulk import load
from couchcore.testing import LoopbackServer, read_request_head
from couchcore._urls import redact_url, split_credentials
from tests.helpers import unique_name


def test_redact_url_with_at_sign_in_password():
    assert redact_url("http://user:p@ss@host:1/db") == "http://***@host:1/db"
    with pytest.raises(couchcore.InvalidInput):
        split_credentials("localhost:5984")


def test_read_timeout_is_an_idle_timeout_not_a_speed_limit(backend):
    """A feed sending one heartbeat byte every 0.4 s outlives a 1 s read timeout."""
    connections = []

    def trickle(conn):
        read_request_head(conn)
        connections.append(conn)
        if len(connections) > 1:  # asked again after the clean end (heartbeat, no timeout): gone
            body = b'{"error":"not_found","reason":"Database does not exist."}'
            conn.sendall(b"HTTP/1.1 404 Object Not Found\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(6):
            conn.sendall(b"1\r\n\n\r\n")
            time.sleep(0.4)
        line = b'{"last_seq":"5-x","pending":0}\n'
        conn.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(line), line))

    with LoopbackServer(trickle) as srv:
        db = couchcore.Server(srv.url, backend=backend, timeout=1, retries=0)._database("db")
        feed = db.changes(feed="continuous", heartbeat=400)
        started = time.monotonic()
        with pytest.raises(couchcore.NotFound):
            list(feed)
        assert feed.last_seq == "5-x" and feed.reconnects == 0 and len(connections) == 2
        assert time.monotonic() - started >= 2.0


def test_silent_server_still_times_out(backend):
    with LoopbackServer(lambda conn: (read_request_head(conn), time.sleep(5))) as srv:
        server = couchcore.Server(srv.url, backend=backend, timeout=0.5, retries=0)
        started = time.monotonic()
        with pytest.raises(couchcore.ReadTimeout):
            server.version()
        assert time.monotonic() - started < 3


def test_closing_an_unread_stream_releases_it(one_copy_db, backend):
    db = one_copy_db  # one copy: the _all_docs read after the writes counts them all (conftest)
    db.save([{"_id": f"d{i}"} for i in range(5)])
    result = db.view("_all_docs")
    result.close()
    if backend == "pycurl":
        assert not db.server._transport.engine.active
    assert len(db.view("_all_docs").all()) == 5


def test_a_streamed_result_dropped_unread_releases_it(one_copy_db, backend):
    db = one_copy_db  # one copy: the _all_docs read after the writes counts them all (conftest)
    # never iterated, never closed, then dropped (e.g. an exception before the loop)
    db.save([{"_id": f"d{i}"} for i in range(5)])
    for _ in range(3):
        result = db.view("_all_docs")
        del result
    gc.collect()
    if backend == "pycurl":
        assert not db.server._transport.engine.active
    assert len(db.view("_all_docs").all()) == 5


@pytest.mark.timing  # asserts a duration: deselected by default (make test-timing)
def test_requests_start_at_once_while_a_stream_is_half_read(db, backend):
    # a streamed response bigger than the reader's buffer, left half-read: the pycurl engine
    # waited in select() on that stream's socket before starting each new request (~0.5 s each)
    for start in range(0, 4000, 1000):
        db.save([{"_id": f"d{i:05d}", "pad": "x" * 500} for i in range(start, start + 1000)])
    rows = iter(db.view("_all_docs", include_docs=True))
    assert next(rows).id == "d00000"
    started = time.monotonic()
    for i in range(10):
        ids = [f"d{j:05d}" for j in range(i * 10, i * 10 + 10)]
        assert [doc["_id"] for doc in db.get_many(ids)] == ids
    assert time.monotonic() - started < 2.5  # 10 x 0.5 s before
    assert sum(1 for _ in rows) == 3999


def test_save_with_none_id_gets_a_uuid(db):
    doc = {"_id": None, "v": 1}
    db.save(doc)
    assert isinstance(doc["_id"], str) and doc["_rev"].startswith("1-") and db.get(doc["_id"])["v"] == 1


def test_save_rejects_unknown_options_before_sending(db):
    with pytest.raises(couchcore.InvalidInput):
        db.save({"_id": "x"}, batch="ok")
    assert "x" not in db


def test_bulk_failures_are_never_collapsed():
    offline = couchcore.Server("http://127.0.0.1:9", retries=0)._database("nowhere")
    docs = [{"n": i} for i in range(25)] + [{"_id": "same"}] * 3
    report = load(offline, docs, batch_size=10, retries=1, backoff=0.01)  # (the loader retries connection failures)
    assert report.written == 0 and len(report.failed) == 28 and report.total == 28


def test_get_many_on_a_deleted_database_raises(server):
    name = unique_name("gone")
    db = server.create(name)
    db.save({"_id": "a"})
    server.delete(name)
    with pytest.raises(couchcore.NotFound):
        db.get_many(["a", "b"])


def test_get_many_rejects_bad_ids_before_sending(db):
    with pytest.raises(couchcore.InvalidInput):
        db.get_many(["a", 5])


def test_config_booleans_are_json_booleans(server):
    key = "couchcore_test/" + unique_name("flag")
    try:
        server.config(key, True)
        assert server.config(key) == "true"
    finally:
        server.config(key, delete=True)


@pytest.mark.parametrize("bad", [{"a": 5}, {"a": []}])
def test_purge_rejects_bad_revisions(db, bad):
    with pytest.raises(couchcore.InvalidInput):
        db.purge(bad)


def test_create_index_rejects_a_string(db):
    with pytest.raises(couchcore.InvalidInput):
        db.create_index("name")
