"""Round 24 review: silent wrong results found by comparing couchcore's answers with curl
against Apache CouchDB 3.5 and with the CouchDB documentation. Each test failed before
its fix (benchmarks/results/reviewer-r24.md)."""

from __future__ import annotations

import asyncio
import io

import pytest

import couchcore
import couchcore.aio
from tests.helpers import async_backends as _async_backends


def _emit_k(db) -> None:
    db.save([{"_id": f"d{i}", "k": i % 3} for i in range(7)])
    db.save({"_id": "_design/a", "views": {"by_k": {"map": "function(d){ if ('k' in d) emit(d.k, null) }"}}})


# -- iterview(sorted=False): key paging needs rows in key order ---------------------------

def test_iterview_refuses_sorted_false(db):
    # https://docs.couchdb.org/en/stable/api/ddoc/views.html: sorted=false returns the rows
    # in no key order; iterview's next page starts at the last row's key, so on CouchDB 3.5
    # it repeated and lost rows (8 rows, two of them twice, for a 6-row view), silently
    _emit_k(db)
    with pytest.raises(couchcore.InvalidInput, match="sorted"):
        db.iterview("a/by_k", page_size=2, sorted=False)
    with pytest.raises(couchcore.InvalidInput, match="sorted"):
        db.iterview("_all_docs", page_size=2, sorted=False)
    # sorted=True (CouchDB's default) pages as before
    rows = [(row.key, row.id) for row in db.iterview("a/by_k", page_size=2, sorted=True)]
    assert rows == [(row.key, row.id) for row in db.view("a/by_k")]
    assert len(rows) == 7


def test_partition_iterview_refuses_sorted_false(server, db_name):
    db = server.create(db_name, partitioned=True)
    try:
        with pytest.raises(couchcore.InvalidInput, match="sorted"):
            db.partition("p").iterview("_all_docs", page_size=2, sorted=False)
    finally:
        server.delete(db_name)


@pytest.mark.parametrize("backend_name", _async_backends())
def test_iterview_refuses_sorted_false_async(couch_url, db, backend_name):
    _emit_k(db)

    async def main() -> None:
        adb = couchcore.aio.Database(f"{couch_url}/{db.name}", backend=backend_name)
        with pytest.raises(couchcore.InvalidInput, match="sorted"):
            adb.iterview("a/by_k", page_size=2, sorted=False)

    asyncio.run(main())


# -- get([ids], revs_info/local_seq/meta): _bulk_get leaves them out ------------------------

@pytest.mark.parametrize("option,field", [
    ("revs_info", "_revs_info"),
    # PouchDB Server's GET /{db}/{id}?local_seq=true (meta=true) has no _local_seq
    # (_revs_info) either
    pytest.param("local_seq", "_local_seq", marks=pytest.mark.couchdb_only),
    pytest.param("meta", "_revs_info", marks=pytest.mark.couchdb_only),
])
def test_get_list_returns_what_get_returns_for_revs_info_local_seq_meta(db, option, field):
    # CouchDB 3.5's POST /{db}/_bulk_get?revs_info=true (local_seq, meta) answers the
    # documents without _revs_info/_local_seq (curl); get([ids], revs_info=True) passed
    # them on without the field, silently, where get(id, revs_info=True) has it
    db.save({"_id": "a", "n": 1})
    doc = db.get("a")
    doc["n"] = 2
    db.save(doc)
    single = db.get("a", **{option: True})
    assert field in single
    many = db.get(["a", "missing", "a"], **{option: True})
    assert many[1] is None
    assert many[0] == single and many[2] == single
    assert many[0][field] == single[field]


@pytest.mark.parametrize("backend_name", _async_backends())
def test_get_list_revs_info_async(couch_url, db, backend_name):
    db.save({"_id": "a", "n": 1})
    expected = db.get("a", revs_info=True)

    async def main() -> None:
        adb = couchcore.aio.Database(f"{couch_url}/{db.name}", backend=backend_name)
        docs = await adb.get(["a"], revs_info=True)
        assert docs == [expected]

    asyncio.run(main())


# -- query() on a partitioned database ------------------------------------------------------

def test_query_on_a_partitioned_database(server, db_name):
    # CouchDB 2+ has no _temp_view: query() writes a throw-away design document, which on
    # a partitioned database is partitioned by default, and its view then answered
    # 400 "`partition` parameter is mandatory for queries to this view" (CouchDB 3.5).
    # A global view of a partitioned database says options.partitioned = false:
    # https://docs.couchdb.org/en/stable/partitioned-dbs/index.html
    # one copy per shard: a cluster reads _all_docs from one copy, which may not have applied the
    # throw-away design document's deletion yet (seen on the 3-node cluster through one node)
    db = server.create(db_name, partitioned=True, n=1)
    try:
        db.save([{"_id": "p1:a", "n": 1}, {"_id": "p2:b", "n": 2}])
        rows = db.query("function(d){ emit(d.n, null) }")
        assert [(row.id, row.key) for row in rows] == [("p1:a", 1), ("p2:b", 2)]
        assert [row.value for row in db.query("function(d){ emit(null, d.n) }", "_sum")] == [3]
        assert [row.id for row in db.view("_all_docs")] == ["p1:a", "p2:b"]  # (deleted again)
    finally:
        server.delete(db_name)


# -- save(docs, all_or_nothing=True): CouchDB 2+ refuses it; say why ------------------------

@pytest.mark.couchdb_only
def test_all_or_nothing_refusal_says_why(db):
    # CouchDB 3.5 answers POST /_bulk_docs {"all_or_nothing": true, ...} with 417 and a
    # list of per-document errors ("not_implemented", "all_or_nothing is not supported",
    # curl): couchcore raised a bare "417: Expectation Failed" without CouchDB's reason
    with pytest.raises(couchcore.HTTPError) as info:
        db.save([{"_id": "a"}, {"_id": "b"}], all_or_nothing=True)
    assert info.value.status == 417
    assert info.value.error == "not_implemented"
    assert "all_or_nothing is not supported" in str(info.value)
    assert "a" not in db and "b" not in db


def test_an_error_answered_as_a_list_keeps_the_first_reason():
    from couchcore.protocol.messages import Response

    body = b'[{"id":"a","rev":"0-","error":"not_implemented","reason":"all_or_nothing is not supported"}]'
    err = Response(417, {"content-type": "application/json"}, body, method="POST",
                   url="http://h:5984/db/_bulk_docs").error()
    assert (err.status, err.error, err.reason) == (417, "not_implemented", "all_or_nothing is not supported")


# -- get([(id, rev)], latest=True): the latest leaf, not "missing" ---------------------------

def _three_revisions(db) -> list[str]:
    doc = {"_id": "a", "n": 1}
    db.save(doc)
    revs = [doc["_rev"]]
    for n in (2, 3):
        doc["n"] = n
        db.save(doc)
        revs.append(doc["_rev"])
    return revs


def test_get_pairs_with_latest_give_the_latest_revision(db):
    # https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-get: latest=true
    # answers the latest leaf revision of the one asked for (curl: 3-... for 1-...), as
    # GET /{db}/{id}?rev=1-...&latest=true does; couchcore took the leaf for "another
    # revision" and returned None, as for a revision that does not exist
    revs = _three_revisions(db)
    single = db.get("a", rev=revs[0], latest=True)
    assert single["_rev"] == revs[2]
    found = db.get([("a", revs[0]), ("a", revs[1]), "a", ("a", revs[2]), ("missing", revs[0])], latest=True)
    assert [d and d["_rev"] for d in found] == [revs[2], revs[2], revs[2], revs[2], None]
    assert found[0] == single
    # without latest, each revision as it was
    assert [d["n"] for d in db.get([("a", revs[0]), ("a", revs[1])])] == [1, 2]


@pytest.mark.couchdb_only
def test_get_pairs_with_latest_on_a_branched_revision(db):
    # two leaves descend from 1-...: _bulk_get answers both; GET ?rev=&latest=true (and so
    # get(id, rev=, latest=True)) the winner of them; get([(id, rev)], latest=True) the same
    doc = {"_id": "b", "n": 1}
    db.save(doc)
    base = doc["_rev"]
    branches = [{"_id": "b", "_rev": f"2-{c * 32}", "_revisions": {"start": 2, "ids": [c * 32, base[2:]]},
                 "n": c} for c in "ab"]
    db.save(branches, new_edits=False)
    single = db.get("b", rev=base, latest=True)
    assert single["_rev"] in {branch["_rev"] for branch in branches}
    assert db.get([("b", base)], latest=True) == [single]


@pytest.mark.parametrize("backend_name", _async_backends())
def test_get_pairs_with_latest_async(couch_url, db, backend_name):
    revs = _three_revisions(db)

    async def main() -> None:
        adb = couchcore.aio.Database(f"{couch_url}/{db.name}", backend=backend_name)
        found = await adb.get([("a", revs[0])], latest=True)
        assert [d and d["_rev"] for d in found] == [revs[2]]

    asyncio.run(main())


# -- get([ids], skip=/limit=/descending=...): one entry per id, in order ----------------------

@pytest.mark.parametrize("options", [
    {"skip": 1}, {"limit": 1}, {"descending": True}, {"descending": True, "stale": "ok"},
    {"startkey": "a"}, {"endkey_docid": "b"}, {"inclusive_end": False}, {"group": True},
    {"reduce": False}, {"key": "a"}, {"keys": ["a"]},
])
def test_get_list_refuses_view_options_that_move_rows(db, options):
    # get([ids]) promises one entry per id, in order; view options that select or reorder
    # the rows of _all_docs?keys broke that, silently: get(["a", "b", "zz"], descending=True)
    # was [None, b, a] (a read as missing), skip=1 gave [b, None] (b in a's place)
    db.save([{"_id": "a"}, {"_id": "b"}])
    with pytest.raises(couchcore.InvalidOption, match="one entry per id"):
        db.get(["a", "b", "zz"], **options)


def test_get_list_keeps_the_view_options_that_do_not_move_rows(db):
    db.save([{"_id": "a"}, {"_id": "b"}])
    for options in ({"stale": "ok"}, {"update": False, "conflicts": True}, {"stable": True}):
        assert [d and d["_id"] for d in db.get(["a", "zz", "b"], **options)] == ["a", None, "b"]


# -- put_attachment(doc, ...) then save(doc): the attachment stays -------------------------

def test_save_after_put_attachment_keeps_the_attachment(db):
    # put_attachment updates doc["_rev"] in place, so save(doc) right after is no conflict;
    # but doc had no stub of the new attachment, and a document written without an
    # attachment's stub loses it (https://docs.couchdb.org/en/stable/api/document/common.html,
    # "Updating an Existing Document": attachments not in _attachments are removed): the
    # attachment vanished, silently (CouchDB 3.5 and PouchDB Server)
    doc = {"_id": "a", "n": 0}
    db.save(doc)
    db.put_attachment(doc, b"hello", "a.txt", content_type="text/plain")
    assert doc["_attachments"]["a.txt"]["stub"] is True
    doc["n"] = 1
    db.save(doc)
    assert db.get_attachment("a", "a.txt") == b"hello"
    # a document read with its stubs, a second attachment (a file object), then save
    doc = db.get("a")
    db.put_attachment(doc, io.BytesIO(b"second"), "b.bin")
    doc["n"] = 2
    db.save(doc)
    stored = db.get("a")
    assert sorted(stored["_attachments"]) == ["a.txt", "b.bin"] and stored["n"] == 2
    assert db.get_attachment("a", "b.bin") == b"second"
    # replaced content: the stub names the new revision
    db.put_attachment(doc, b"hello again", "a.txt", content_type="text/plain")
    doc["n"] = 3
    db.save(doc)
    assert db.get_attachment("a", "a.txt") == b"hello again"
    # and delete_attachment drops the stub (save would answer 412 missing_stub for it)
    db.delete_attachment(doc, "b.bin")
    assert "b.bin" not in doc["_attachments"]
    doc["n"] = 4
    db.save(doc)
    assert sorted(db.get("a")["_attachments"]) == ["a.txt"]
