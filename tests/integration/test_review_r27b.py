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


# -- 5. "_id": null in bulk.load / couchcore load is rejected (invalid_id) ------------------------
# CouchDB refuses "_id": null itself (400 illegal_docid, "Document id must be a string":
# https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-docs); a generated id
# added the document again on every run of the same load

def _null_id_rows() -> list:
    return [{"_id": None, "v": "dict-null"}, {"_id": "keep", "v": 1}, b'{"_id": null, "v": "bytes-null"}',
            b'{"v": "bytes-noid", "_id" :null}', {"v": "no-id"}, (9, {"_id": None, "v": "pair"}),
            (10, b'{"_id":null}')]


@pytest.mark.parametrize("mode", [{}, {"skip_existing": True}, {"upsert": True}])
def test_bulk_load_rejects_null_id_from_dicts_and_bytes(db, mode):
    from couchcore.bulk import load

    for run in range(2):
        rows = _null_id_rows()
        report = load(db, rows, **mode)
        assert sorted(f.error for f in report.failures if f.error == "invalid_id") == ["invalid_id"] * 5, \
            report.failures
        assert all("_id is null" in f.reason for f in report.failures if f.error == "invalid_id")
        assert rows[0] == {"_id": None, "v": "dict-null"}  # the caller's dict is left as it was
    values = sorted(str(d.get("v")) for d in [r.doc for r in db.view("_all_docs", include_docs=True)])
    assert values == ["1", "no-id", "no-id"]  # only the document without _id is new each run


def test_bulk_load_rejects_null_id_from_json_lines(db, tmp_path):
    from couchcore import bulk

    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"_id": null, "v": "nullid"}\n{"_id": "keep", "v": 1}\n{"v":2,"_id":null}\n'
                     + b"".join(b'{"_id": "x%d"}\n' % i for i in range(50)) + b'{ "_id" : null }\n')
    for _ in range(2):
        with open(path, "rb") as f:
            report = bulk.load(db, bulk.JsonLines(f, chunk=64), skip_existing=True)
        assert sorted((f.line, f.error) for f in report.failures) == [(1, "invalid_id"), (3, "invalid_id"),
                                                                       (54, "invalid_id")]
    assert db.info()["doc_count"] == 51


def test_cli_load_rejects_null_id_and_a_rerun_adds_nothing(db, couch_url, tmp_path):
    import json

    from tests.helpers import run_cli

    source = tmp_path / "in2.jsonl"
    source.write_bytes(b'{"_id": null, "v": "nullid"}\n{"_id": "keep", "v": 1}\n')
    rejects = tmp_path / "rej.jsonl"
    for extra in ((), ("--skip-existing",)):
        proc = run_cli("load", f"{couch_url}/{db.name}", source, "--rejects", rejects, *extra)
        assert proc.returncode == 1, proc.stderr
        records = [json.loads(line) for line in rejects.read_bytes().splitlines()]
        assert [(r["_load_error"]["line"], r["_load_error"]["error"]) for r in records] == [(1, "invalid_id")]
        assert "_id is null" in records[0]["_load_error"]["reason"]
        assert b"rejected 1" in proc.stderr + proc.stdout
    assert [d["_id"] for d in [r.doc for r in db.view("_all_docs", include_docs=True)]] == ["keep"]
    assert db.info()["doc_count"] == 1
