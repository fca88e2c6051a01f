"""couchcore.bulk.load against the real test server (both sync backends), with a loopback
proxy (couchcore.testing.FaultyProxy) where the network has to misbehave."""

from __future__ import annotations

import json
import time

import pytest

import couchcore
from couchcore import InvalidInput
from couchcore.bulk import ERROR_FIELD, Checkpoint, Loader, load
from couchcore.testing import FaultyProxy, free_port

from tests.helpers import wait_until


@pytest.fixture
def db(one_copy_db):
    """A fresh database with ONE copy of each shard (``n=1``; PouchDB Server ignores it).
    These tests read back what the loader wrote through ``_all_docs``, which a cluster
    reads from one copy of each shard, whatever the quorum
    (https://docs.couchdb.org/en/stable/cluster/sharding.html#quorum): with one copy every
    acknowledged write is there. Writing to a replicated database is tested in
    test_cluster.py."""
    return one_copy_db


def counted(db, expected: int) -> bool:
    """``doc_count`` reaches ``expected``. A cluster counts one copy of each shard, which
    may not have applied every acknowledged write yet: it gets there eventually
    (https://docs.couchdb.org/en/stable/cluster/sharding.html#quorum); a count that stays
    wrong fails with the last value."""
    return wait_until(lambda: db.info()["doc_count"], lambda n: n == expected) == expected


def docs_of(db):
    return {row.id: row.doc for row in db.view("_all_docs", include_docs=True)}


def proxied(db, backend, capture=False):
    """(proxy, the same database reached through the proxy). The transport's own retries
    are off, so what the proxy does reaches the loader."""
    proxy = FaultyProxy(db.server.url, capture=capture)
    creds = db.server.credentials
    server = couchcore.Server(proxy.url, auth=(creds.username, creds.password) if creds else None,
                              backend=backend, retries=0)
    return proxy, server._database(db.name)


def test_load_dicts_in_batches(db):
    docs = [{"i": i} for i in range(2500)]
    seen = []
    report = load(db, iter(docs), batch_size=300, concurrency=3, progress=lambda r: seen.append(r.written))
    assert (report.read, report.written, report.rejected, report.batches) == (2500, 2500, 0, 9)
    assert seen[-1] == 2500 and report.docs_per_second > 0 and "written 2,500" in str(report)
    assert counted(db, 2500)
    stored = docs_of(db)
    assert all(d["_id"] in stored and stored[d["_id"]]["i"] == d["i"] for d in docs)  # ids given in place


def test_json_text_goes_into_the_body_as_it_is(db, backend):
    lines = [b'{ "_id" : "a", "price": 1.50, "name": "caf\\u00e9", "big": 123456789012345678901234567890 }\n',
             b'  {"no_id": true,\t"n": 1e2}\r\n',
             b"{}\n"]
    proxy, via = proxied(db, backend, capture=True)
    try:
        report = load(via, [(n, line) for n, line in enumerate(lines, 1)])
    finally:
        proxy.close()
    assert report.written == 3 and not report.failures
    (body,) = [b for m, t, b in proxy.bodies if t.endswith("/_bulk_docs")]
    assert lines[0] in body  # not decoded and re-encoded: 1.50, \u00e9 and the spacing survive
    assert b'"no_id": true,\t"n": 1e2}\r\n' in body  # an _id spliced in front, the rest as given
    stored = docs_of(db)
    assert stored["a"]["price"] == 1.5 and stored["a"]["name"] == "café"
    generated = sorted(k for k in stored if k != "a")
    assert len(generated) == 2 and all(len(k) == 32 for k in generated)
    assert {stored[k].get("n") for k in generated} == {100, None}


def test_bad_input_is_rejected_with_line_and_reason_and_the_load_goes_on(db):
    items = [
        (1, b'{"_id": "ok1"}'),
        (2, b'{"_id": "broken"'),
        (3, b"[1, 2]"),
        (4, b'{"_id": 5}'),
        (5, b'{"_id": ""}'),
        (6, ValueError("CSV row has 3 fields, the header has 2")),
        (7, {"_id": "nan", "x": float("nan")}),
        (8, "not a document"),
        (9, b'{"_id": "ok2"}'),
        (10, b"   \n"),  # blank: no record
        (11, b'{"a": "\xff"}'),
        (12, b'{"_id": null, "k": 12}'),  # CouchDB refuses a null _id (illegal_docid): no generated id
    ]
    report = load(db, items, batch_size=2, concurrency=2)
    assert report.read == 11 and report.written == 2 and report.rejected == 9
    by_line = {r.line: r for r in report.failures}
    assert {n: r.error for n, r in by_line.items()} == {
        2: "invalid_json", 3: "not_an_object", 4: "invalid_id", 5: "invalid_id", 6: "invalid_input",
        7: "invalid", 8: "not_an_object", 11: "invalid_json", 12: "invalid_id"}
    assert "header has 2" in by_line[6].reason and by_line[3].text == "[1, 2]"
    stored = docs_of(db)
    assert set(stored) == {"ok1", "ok2"}


def test_a_later_duplicate_id_is_a_conflict_and_the_first_one_wins(db):
    docs = [{"_id": "twin", "n": 1}, {"_id": "x1"}, {"_id": "x2"}, {"_id": "twin", "n": 2}, {"_id": "x3"}]
    report = load(db, docs, batch_size=1, concurrency=4)
    assert report.written == 4 and report.rejected == 1
    (rejected,) = report.failures
    assert (rejected.line, rejected.id, rejected.error) == (4, "twin", "conflict")
    assert "line 1" in rejected.reason
    assert db["twin"]["n"] == 1


def test_a_bad_id_in_a_batch_of_1000_rejects_only_that_document(db):
    docs = [{"_id": f"d{i:04d}"} for i in range(1000)]
    docs[500] = {"_id": "_illegal", "n": 500}
    report = load(db, docs, batch_size=1000, concurrency=1)
    assert report.written == 999 and report.rejected == 1
    (rejected,) = report.failures
    assert rejected.line == 501 and rejected.id == "_illegal"
    assert rejected.error in ("illegal_docid", "bad_request", "doc_validation"), rejected
    assert counted(db, 999)


def test_conflicts_skip_existing_and_upsert(db):
    db.save([{"_id": "same", "v": 1}, {"_id": "other", "v": 1}])
    fresh = lambda: [{"_id": "same", "v": 1}, {"_id": "other", "v": 2}, {"_id": "new", "v": 1}]  # noqa: E731

    create_only = load(db, fresh())
    assert create_only.written == 1 and sorted(r.id for r in create_only.failures) == ["other", "same"]
    assert {r.error for r in create_only.failures} == {"conflict"}

    skip = load(db, fresh(), skip_existing=True)
    assert (skip.written, skip.skipped, skip.rejected) == (0, 2, 1)
    assert skip.failures[0].id == "other"

    rev_same = db["same"]["_rev"]
    upsert = load(db, fresh() + [{"_id": "new", "v": 3}], upsert=True, batch_size=2)
    assert (upsert.written, upsert.skipped, upsert.rejected) == (2, 2, 0), upsert.failures
    assert db["other"]["v"] == 2 and db["new"]["v"] == 3  # the later duplicate wins with upsert
    assert db["same"]["_rev"] == rev_same  # unchanged content is not written again


_STUB = {"f.txt": {"content_type": "text/plain", "revpos": 1, "digest": "md5-XrY7u+Ae7tCTyyK7j1rNww==",
                   "length": 5, "stub": True}}


@pytest.mark.couchdb_only  # PouchDB Server's answer to an unknown stub differs
@pytest.mark.parametrize("new_edits", [True, False])
def test_an_attachment_stub_without_data_rejects_only_its_document(db, new_edits):
    # CouchDB answers 412 missing_stub for the whole request after writing every other
    # document: they count as written (they are), only the stub's document is rejected
    docs = [{"_id": f"d{i:02d}", "v": i, **({"_rev": f"1-{i:032x}"} if not new_edits else {})} for i in range(20)]
    docs[7]["_attachments"] = _STUB
    report = load(db, docs, batch_size=20, concurrency=1, new_edits=new_edits)
    assert (report.written, report.rejected) == (19, 1), report.failures
    (rejected,) = report.failures
    assert (rejected.id, rejected.line, rejected.error) == ("d07", 8, "missing_stub")
    stored = {row.id for row in db.view("_all_docs")}
    assert stored == {f"d{i:02d}" for i in range(20)} - {"d07"}
    again = load(db, [dict(d) for d in docs if d["_id"] != "d07"], batch_size=20, new_edits=new_edits)
    assert again.written == (0 if new_edits else 19)  # create-only: each is a conflict now
    assert again.rejected == (19 if new_edits else 0)


def test_new_edits_false_keeps_the_revisions(db):
    docs = [{"_id": "r1", "_rev": "3-0123456789abcdef0123456789abcdef", "v": 1},
            {"_id": "r2", "v": 2},
            b'{"_id": "r3", "_rev": "7-00000000000000000000000000000000"}']
    report = load(db, docs, new_edits=False)
    assert report.written == 2 and report.rejected == 1
    assert report.failures[0].error == "missing_rev"
    assert db["r1"]["_rev"] == "3-0123456789abcdef0123456789abcdef"
    assert db["r3"]["_rev"].startswith("7-")


def test_id_field(db):
    docs = [b'{"sku": "A-1", "n": 1}', {"sku": 2, "n": 2}, {"_id": "given", "sku": "ignored"},
            b'{"sku": [1], "n": 4}']
    report = load(db, docs, id_field="sku")
    assert report.written == 3 and report.rejected == 1 and report.failures[0].error == "invalid_id"
    stored = docs_of(db)
    assert set(stored) == {"A-1", "2", "given"} and stored["A-1"]["n"] == 1


def test_a_rejects_record_loads_again_as_it_is(db):
    db.save({"_id": "taken", "v": 0})
    first = load(db, [b'{"_id": "taken", "v": 1}', b"{oops"])
    records = sorted((r.record() for r in first.failures), key=lambda r: json.loads(r)[ERROR_FIELD]["line"])
    assert [json.loads(r)[ERROR_FIELD]["error"] for r in records] == ["conflict", "invalid_json"]
    assert json.loads(records[0])["v"] == 1 and json.loads(records[1])[ERROR_FIELD]["text"] == "{oops"
    db.delete(db["taken"])
    again = load(db, records + [{ERROR_FIELD: {"error": "x"}, "_id": "dict", "k": 1}])
    assert again.written == 2 and again.rejected == 1 and again.failures[0].error == "invalid_json"
    assert ERROR_FIELD not in db["taken"] and db["taken"]["v"] == 1
    assert db["dict"] == {"_id": "dict", "_rev": db["dict"]["_rev"], "k": 1}


def test_retries_on_503_and_429_honour_retry_after(db, backend):
    proxy, via = proxied(db, backend)
    proxy.respond("POST", "/_bulk_docs", 503, b'{"error":"service_unavailable","reason":"busy"}')
    proxy.respond("POST", "/_bulk_docs", 429, b'{"error":"too_many_requests","reason":"slow down"}',
                  {"Retry-After": "1"})
    try:
        started = time.monotonic()
        report = load(via, [{"_id": f"r{i}"} for i in range(50)], batch_size=25, concurrency=1, backoff=0.01)
        took = time.monotonic() - started
    finally:
        proxy.close()
    assert report.written == 50 and report.rejected == 0 and report.retried == 2 and proxy.fired == 2
    assert took >= 1.0  # Retry-After: 1
    assert counted(db, 50)


def test_a_batch_cut_after_sending_is_reconciled_not_duplicated(db, backend):
    proxy, via = proxied(db, backend)
    proxy.cut_after_send("POST", "/_bulk_docs", count=2)
    docs = [{"n": i} for i in range(60)] + [{"_id": f"named{i}", "n": i} for i in range(60)]
    try:
        report = load(via, docs, batch_size=40, concurrency=2, backoff=0.01)
    finally:
        proxy.close()
    assert proxy.fired == 2 and report.retried >= 2
    assert (report.written, report.rejected) == (120, 0), report.failures
    stored = docs_of(db)
    assert len(stored) == 120  # documents without _id were not written twice
    assert sorted(d["n"] for d in stored.values()) == sorted(list(range(60)) * 2)


def test_retries_are_bounded_and_nothing_is_lost(db, backend):
    proxy, via = proxied(db, backend)
    proxy.respond("POST", "/_bulk_docs", 503, b'{"error":"service_unavailable","reason":"down"}', count=100)
    try:
        report = load(via, [{"_id": f"g{i}"} for i in range(10)], batch_size=5, retries=2, backoff=0.01)
    finally:
        proxy.close()
    assert report.written == 0 and report.rejected == 10 and report.retried == 4
    assert {r.error for r in report.failures} == {"service_unavailable"}
    assert all("gave up after 3 attempts" in r.reason for r in report.failures)


def test_unreachable_server_rejects_everything_after_retries(backend):
    offline = couchcore.Server(f"http://127.0.0.1:{free_port()}", retries=0, backend=backend)
    report = load(offline._database("nowhere"), [{"_id": f"d{i}"} for i in range(5)], batch_size=2,
                  retries=1, backoff=0.01)
    assert report.written == 0 and report.rejected == 5 and report.total == 5
    assert {r.error for r in report.failures} <= {"ConnectError", "ConnectionError"}


def test_nodes_share_the_batches(db, backend):
    proxy, via = proxied(db, backend)
    try:
        report = load(db, [{"_id": f"n{i:03d}"} for i in range(200)], batch_size=10, concurrency=2,
                      nodes=[via.server])
    finally:
        proxy.close()
    assert report.written == 200 and counted(db, 200)
    through_proxy = sum(1 for m, t in proxy.seen if t.endswith("/_bulk_docs"))
    assert 0 < through_proxy < 20  # both nodes took batches


def test_checkpoint_skips_what_was_confirmed(db, tmp_path):
    path = tmp_path / "cp.json"
    cp = Checkpoint.open(path, database="x", input="y")
    loader = Loader(db, [(i, b'{"n": %d}' % i) for i in range(1, 101)], batch_size=10, concurrency=2,
                    checkpoint=cp)
    report = loader.run()
    assert report.written == 100
    saved = json.loads(path.read_text())
    assert saved["records"] == 100 and saved["complete"] and saved["counts"]["written"] == 100
    again = Checkpoint.open(path, database="x", input="y")
    second = load(db, [(i, b'{"n": %d}' % i) for i in range(1, 151)], batch_size=10, checkpoint=again)
    assert second.read == 50 and second.written == 50
    assert counted(db, 150)
    with pytest.raises(InvalidInput, match="another load"):
        Checkpoint.open(path, database="other", input="y")


def test_bad_arguments_fail_before_reading(db):
    consumed = []

    def source():
        consumed.append(1)
        yield {"a": 1}

    for kwargs in ({"batch_size": 0}, {"concurrency": 0}, {"retries": -1},
                   {"upsert": True, "new_edits": False}, {"id_field": "_id"}):
        with pytest.raises(InvalidInput):
            load(db, source(), **kwargs)
    assert not consumed
    # a path, one JSON text or one document is no iterable of documents (each character or
    # key would be "rejected"): refused before anything is sent
    for docs in ("docs.jsonl", b'{"_id": "a"}', {"_id": "a"}):
        with pytest.raises(InvalidInput, match="iterable of documents"):
            load(db, docs)  # type: ignore[arg-type]
    assert db.info()["doc_count"] == 0
