"""Unit tests of the sans-I/O protocol layer: operations driven with canned responses.

No server and no sockets: each operation generator is pumped by hand with Response
objects built from recorded Apache CouchDB 3.5.0 bodies (tests/data, made by
tests/record_fixtures.py).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

import couchcore
from couchcore import codec
from couchcore.errors import (
    Conflict,
    Gone,
    InvalidDatabaseName,
    InvalidDocument,
    InvalidInput,
    InvalidOption,
    MissingRevision,
    NotFound,
    ParseError,
    PreconditionFailed,
    ServerError,
    Unauthorized,
)
from couchcore.models import ConflictResolution, Document
from couchcore.protocol import attachments, changes, database, documents, server, views
from couchcore.protocol.messages import Request, Response
from couchcore.protocol.paths import db_path, doc_path, validate_db_name, view_path


def fixture(fixtures_dir, name):
    return (fixtures_dir / f"{name}.body").read_bytes()


def resp(status, body=b"", headers=None, method="GET", url="http://127.0.0.1:5984/x"):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return Response(status, headers or {"Content-Type": "application/json"}, body=body, method=method, url=url)


class Pump:
    """Drive an operation: answer each request with the next canned response."""

    def __init__(self, op):
        self.op = op
        self.requests: list[Request] = []

    def run(self, *responses):
        answers = list(responses)
        try:
            req = next(self.op)
            while True:
                self.requests.append(req)
                if not answers:
                    raise AssertionError(f"unexpected extra request {req}")
                req = self.op.send(answers.pop(0))
        except StopIteration as stop:
            assert not answers, f"{len(answers)} canned responses left unused"
            return stop.value


def query_of(req: Request) -> dict:
    return dict(parse_qsl(urlsplit(req.target).query))


# -- codec -------------------------------------------------------------------------


def test_view_query_json_encodes_keys_and_booleans():
    query, body = codec.view_query(
        {"key": "abc", "startkey": ["a", 1], "endkey": {}, "descending": True, "limit": 5,
         "include_docs": False, "stale": "ok", "startkey_docid": "x y"}
    )
    q = dict(query)
    assert q["key"] == '"abc"'
    assert q["startkey"] == '["a",1]'
    assert q["endkey"] == "{}"
    assert q["descending"] == "true"
    assert q["include_docs"] == "false"
    assert q["limit"] == "5"
    assert q["stale"] == "ok"
    assert q["startkey_docid"] == "x y"  # a plain string, not JSON
    assert body is None


def test_view_query_keys_go_in_body_none_is_null_for_json_options_only():
    query, body = codec.view_query({"keys": ["a", 2, None], "limit": None, "key": None,
                                    "endkey": codec.NOT_GIVEN})
    assert query == [("key", "null")]  # JSON null; limit=None and NOT_GIVEN are left out
    assert body == {"keys": ["a", 2, None]}


@pytest.mark.parametrize(
    "opts",
    [{"include_doc": True}, {"limit": -1}, {"limit": "5"}, {"descending": "yes"}, {"group_level": True},
     {"keys": "abc"}, {"key": float("nan")}, {"startkey": {1, 2}}],
)
def test_view_query_rejects_bad_options(opts):
    with pytest.raises(couchcore.InvalidInput):
        codec.view_query(opts)


def test_unicode_and_big_ints_in_keys():
    query, _ = codec.view_query({"key": ["é☃", 2**70]})
    assert dict(query)["key"] == '["é☃",1180591620717411303424]'


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": float("inf")}, {"x": {1, 2}}, {"x": object()}])
def test_dumps_rejects_non_json(bad):
    with pytest.raises(InvalidDocument):
        codec.dumps(bad)


def test_loads_raises_parse_error():
    with pytest.raises(ParseError):
        codec.loads(b'{"a": ')
    with pytest.raises(ParseError):
        codec.loads(b"\xff\xfe")
    assert codec.loads(b'{"big": 1180591620717411303429}') == {"big": 1180591620717411303429}


# -- paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "docid, encoded",
    [
        ("a/b", "a%2Fb"),
        ("a+b", "a%2Bb"),
        ("a b", "a%20b"),
        ("a?b", "a%3Fb"),
        ("a#b", "a%23b"),
        ("100%", "100%25"),
        ("é☃", "%C3%A9%E2%98%83"),
        ("_design/x y", "_design/x%20y"),
        ("_local/a/b", "_local/a%2Fb"),
    ],
)
def test_doc_path_encoding_round_trips(docid, encoded):
    path = doc_path("db", docid)
    assert path == f"/db/{encoded}"
    segment = path[len("/db/"):]
    assert unquote(segment) == docid


@pytest.mark.parametrize("name", ["a", "abc", "a1_$()+-/b", "_users", "_replicator", "_global_changes",
                                  "team/_replicator", "x" * 238])
def test_valid_db_names(name):
    assert validate_db_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "1abc", "Bad Name", "_private", "a.b", "a b", "x" * 239, None, 5, "é"])
def test_invalid_db_names(name):
    with pytest.raises(InvalidDatabaseName) as info:
        validate_db_name(name)
    assert isinstance(info.value, ValueError)


def test_db_path_escapes_slash():
    assert db_path("a/b") == "/a%2Fb"


@pytest.mark.parametrize(
    "name, path",
    [
        ("_all_docs", "/db/_all_docs"),
        ("d/by_n", "/db/_design/d/_view/by_n"),
        ("_design/d/_view/by_n", "/db/_design/d/_view/by_n"),
        ("d x/v?", "/db/_design/d%20x/_view/v%3F"),
    ],
)
def test_view_path(name, path):
    assert view_path("db", name) == path


@pytest.mark.parametrize("name", ["by_n", "a/b/c", "_design/d/_show/x", "/v", "d/", 3])
def test_bad_view_names(name):
    with pytest.raises(InvalidInput):
        view_path("db", name)


# -- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, status, cls, error",
    [
        ("err_missing_doc", 404, NotFound, "not_found"),
        ("err_missing_db", 404, NotFound, "not_found"),
        ("err_conflict", 409, Conflict, "conflict"),
        ("err_db_exists", 412, PreconditionFailed, "file_exists"),
        ("err_temp_view_gone", 410, Gone, "gone"),
        ("err_unauthorized", 401, Unauthorized, "unauthorized"),
        ("err_bad_db_name", 400, couchcore.BadRequest, "illegal_database_name"),
        ("err_compact_no_content_type", 415, couchcore.UnsupportedMediaType, "bad_content_type"),
    ],
)
def test_error_mapping_from_recorded_bodies(fixtures_dir, name, status, cls, error):
    r = resp(status, fixture(fixtures_dir, name), url="http://127.0.0.1:5984/fx/x")
    exc = r.error()
    assert type(exc) is cls and isinstance(exc, couchcore.HTTPError)
    assert exc.status == status and exc.error == error and exc.reason
    with pytest.raises(cls):
        r.json()


def test_server_error_and_unknown_status():
    assert isinstance(resp(503, b"oops").error(), ServerError)
    exc = resp(418, b"").error()
    assert type(exc) is couchcore.HTTPError and exc.status == 418


def test_credentials_never_in_error_messages():
    r = resp(404, {"error": "not_found", "reason": "missing"}, url="http://admin:s3cret@127.0.0.1:5984/db/x")
    exc = r.error()
    assert "s3cret" not in str(exc) and "s3cret" not in repr(exc) and "s3cret" not in exc.url
    terr = couchcore.ConnectionError("cannot connect", "http://admin:s3cret@host:1/db")
    assert "s3cret" not in str(terr)


def test_server_and_credentials_repr_hide_password():
    s = couchcore.Server("http://admin:s3cret@127.0.0.1:9/")
    assert "s3cret" not in repr(s) and "s3cret" not in repr(s.credentials) and "s3cret" not in s.url
    db = s._database("x")
    assert "s3cret" not in repr(db) and "s3cret" not in db.url


# -- server operations -------------------------------------------------------------


def test_version_from_welcome(fixtures_dir):
    ctx = server.ServerContext()
    assert Pump(server.version(ctx)).run(resp(200, fixture(fixtures_dir, "welcome"))) == "3.5.0"


def test_uuid_cache_refills_in_batches(fixtures_dir):
    ctx = server.ServerContext(uuid_batch=3)
    pump = Pump(server.take_uuids(ctx, 2))
    ids = pump.run(resp(200, fixture(fixtures_dir, "uuids")))
    assert len(ids) == 2 and len(ctx.uuids) == 1
    assert query_of(pump.requests[0]) == {"count": "3"}
    # the third comes from the cache: no request at all
    assert Pump(server.take_uuids(ctx, 1)).run() not in ids


def test_config_uses_node_local_then_caches_prefix(fixtures_dir):
    ctx = server.ServerContext()
    body = fixture(fixtures_dir, "config_section")
    pump = Pump(server.config(ctx, "couchdb"))
    assert pump.run(resp(200, body), resp(200, body))["js_engine"] == "quickjs"
    assert [r.path for r in pump.requests] == ["/_node/_local/_config/couchdb", "/_node/_local/_config/couchdb"]
    pump = Pump(server.config(ctx, "couchdb/uuid", "abc"))
    assert pump.run(resp(200, b'"old"')) is None
    assert pump.requests[0].method == "PUT" and pump.requests[0].body == b'"abc"'


def test_config_falls_back_to_membership_node():
    ctx = server.ServerContext()
    pump = Pump(server.config(ctx, "couchdb/uuid", delete=True))
    old = pump.run(resp(404, {"error": "not_found", "reason": "missing"}),
                   resp(200, {"all_nodes": ["node1@127.0.0.1"], "cluster_nodes": ["node1@127.0.0.1"]}),
                   resp(200, b'"old-value"'))
    assert old == "old-value"
    assert pump.requests[-1].method == "DELETE"
    assert pump.requests[-1].path == "/_node/node1@127.0.0.1/_config/couchdb/uuid"


def test_config_rejects_bad_names_before_sending():
    with pytest.raises(InvalidInput):
        next(server.config(server.ServerContext(), "a/b/c"))
    with pytest.raises(InvalidInput):
        next(server.config(server.ServerContext(), "section", value="x"))


def test_stats_path(fixtures_dir):
    ctx = server.ServerContext()
    ctx.node_prefix = "/_node/_local"
    pump = Pump(server.stats(ctx, "couchdb/request_time"))
    data = pump.run(resp(200, fixture(fixtures_dir, "stats_request_time")))
    assert "value" in data
    assert pump.requests[0].path == "/_node/_local/_stats/couchdb/request_time"
    with pytest.raises(NotFound):
        Pump(server.stats(ctx, "nope/nothing")).run(resp(404, {"error": "not_found", "reason": "missing"}))


def test_create_db_validates_name_before_sending():
    with pytest.raises(InvalidDatabaseName):
        next(server.create_db(server.ServerContext(), "Bad Name"))


def test_open_db_creates_when_missing():
    ctx = server.ServerContext()
    pump = Pump(server.open_db(ctx, "newdb", create=True))
    assert pump.run(resp(404, b""), resp(201, {"ok": True})) == "newdb"
    assert [(r.method, r.path) for r in pump.requests] == [("HEAD", "/newdb"), ("PUT", "/newdb")]
    with pytest.raises(NotFound):
        Pump(server.open_db(ctx, "newdb")).run(resp(404, b""))


@pytest.mark.parametrize("typo, meant", [("continous", "continuous"), ("create_taget", "create_target"),
                                          ("docids", "doc_ids"), ("winning_rev_only", "winning_revs_only")])
def test_replicate_option_typos_raise_before_sending(typo, meant):
    # CouchDB 3.5 ignores unknown fields: continous=True ran a one-shot replication, silently
    for doc_id in (None, "job1"):
        extra = {"_id": doc_id} if doc_id else {}
        with pytest.raises(InvalidOption, match=f"did you mean '{meant}'"):
            next(server.replicate(server.ServerContext(), "http://h/a", "http://h/b", **{typo: True}, **extra))


def test_replicate_passes_fields_it_does_not_know():
    req = next(server.replicate(server.ServerContext(), "http://h/a", "http://h/b", continuous=True,
                                note="nightly copy", worker_processes=2))
    assert json.loads(req.body) == {"source": "http://h/a", "target": "http://h/b", "continuous": True,
                                    "note": "nightly copy", "worker_processes": 2}


def test_replicate_with_id_writes_replicator_doc():
    ctx = server.ServerContext()
    pump = Pump(server.replicate(ctx, "http://h/a", "http://h/b", _id="job1", continuous=True))
    pump.run(resp(201, {"ok": True, "id": "job1", "rev": "1-x"}))
    req = pump.requests[0]
    assert (req.method, req.path) == ("PUT", "/_replicator/job1")
    assert json.loads(req.body) == {"source": "http://h/a", "target": "http://h/b", "continuous": True}


# -- documents ---------------------------------------------------------------------


def test_get_doc_decodes_values(fixtures_dir):
    doc = Pump(documents.get_doc(server.ServerContext(), "fx", "005")).run(resp(200, fixture(fixtures_dir, "doc")))
    assert isinstance(doc, Document) and doc._id == "005" and doc.big == 1180591620717411303429


def test_get_doc_options_encoding():
    pump = Pump(documents.get_doc(server.ServerContext(), "db", "x", open_revs=["1-a", "2-b"], revs=True))
    pump.run(resp(200, [{"ok": {"_id": "x", "_rev": "1-a"}}]))
    q = query_of(pump.requests[0])
    assert q == {"open_revs": '["1-a","2-b"]', "revs": "true"}
    pump = Pump(documents.get_doc(server.ServerContext(), "db", "x", open_revs="all"))
    pump.run(resp(200, []))
    assert query_of(pump.requests[0]) == {"open_revs": "all"}
    with pytest.raises(InvalidInput):
        next(documents.get_doc(server.ServerContext(), "db", "x", bogus=1))


def test_get_many_keeps_order_and_none_for_missing(fixtures_dir):
    pump = Pump(documents.get_docs(server.ServerContext(), "fx", ["000", "nope", "001"]))
    body = fixture(fixtures_dir, "all_docs_keys_missing_include_docs")
    keys = [row.get("key") for row in json.loads(body)["rows"]]
    result = pump.run(resp(200, body))
    assert len(result) == len(keys)
    for key, doc in zip(keys, result):
        assert doc is None or doc["_id"] == key
    req = pump.requests[0]
    assert req.method == "POST" and req.path == "/fx/_all_docs"
    assert json.loads(req.body) == {"keys": ["000", "nope", "001"]}
    assert query_of(req) == {"include_docs": "true"}


def test_bulk_save_reports_each_failure(fixtures_dir):
    ctx = server.ServerContext()
    docs = [{"_id": "001"}, {"_id": "new1", "v": 1}]
    pump = Pump(documents.save_docs(ctx, "fx", docs, facade=None, single=False))
    result = pump.run(resp(201, fixture(fixtures_dir, "bulk_docs_conflict")))
    assert isinstance(result, ConflictResolution)
    assert list(result.pending) == ["001"] and result.pending["001"]["error"] == "conflict"
    assert result.pending["001"]["doc"] is docs[0]
    assert list(result.resolved) == ["new1"] and docs[1]["_rev"].startswith("1-")
    assert "_rev" not in docs[0]


def test_save_assigns_cached_uuids():
    ctx = server.ServerContext(uuid_batch=10)
    docs = [{"a": 1}, {"_id": "given"}, {"b": 2}]
    pump = Pump(documents.save_docs(ctx, "db", docs, None, False))
    uuids = [f"u{i}" for i in range(10)]
    pump.run(
        resp(200, {"uuids": uuids}),
        resp(201, [{"ok": True, "id": d, "rev": "1-x"} for d in ("u0", "given", "u1")]),
    )
    assert [d["_id"] for d in docs] == ["u0", "given", "u1"]
    assert len(ctx.uuids) == 8
    sent = json.loads(pump.requests[1].body)["docs"]
    assert [d["_id"] for d in sent] == ["u0", "given", "u1"]


def test_two_documents_of_one_id_are_settled_apart_when_the_cluster_accepted_one():
    # CouchDB 3.5, 3-node cluster (recorded): one copy had not yet applied the first write of
    # m1, so it stored the document without _rev (202-style "accepted") while the other
    # copies refused it; the update beside it was written. The accepted revision was kept
    # per _id: it went to BOTH documents, and the update's _rev went back to 1-... with
    # nothing pending (a lost write reported as written).
    ctx = server.ServerContext()
    mine = {"_id": "m1", "mine": "no rev"}
    update = {"_id": "m1", "_rev": "1-first", "v": 1}
    pump = Pump(documents.save_docs(ctx, "db", [mine, update], None, False))
    leaves = [{"ok": {"_id": "m1", "_rev": "2-upd", "v": 1, "_revisions": {"start": 2, "ids": ["upd", "first"]}}},
              {"ok": {"_id": "m1", "_rev": "1-mine", "mine": "no rev", "_revisions": {"start": 1, "ids": ["mine"]}}}]
    after = [leaves[0], {"ok": {"_id": "m1", "_rev": "2-gone", "_deleted": True,
                                "_revisions": {"start": 2, "ids": ["gone", "mine"]}}}]
    result = pump.run(
        resp(201, [{"ok": True, "id": "m1", "rev": "1-mine", "accepted": True},
                   {"ok": True, "id": "m1", "rev": "2-upd"}]),
        resp(200, leaves),  # _accepted_lost: every leaf
        resp(201, [{"ok": True, "id": "m1", "rev": "2-gone"}]),  # the lost revision withdrawn
        resp(200, after),
    )
    assert update["_rev"] == "2-upd" and result.resolved["m1"] is update and "_rev" not in mine
    assert result.pending["m1"]["doc"] is mine and result.pending["m1"]["error"] == "conflict"
    assert not result.ok and "m1" not in result.accepted
    withdraw = json.loads(pump.requests[2].body)["docs"][0]
    assert withdraw["_deleted"] and withdraw["_revisions"]["ids"][1:] == ["mine"]


def test_single_conflict_raises_with_resolution():
    ctx = server.ServerContext()
    doc = {"_id": "a", "_rev": "1-old"}
    pump = Pump(documents.save_docs(ctx, "db", [doc], None, True))
    with pytest.raises(Conflict) as info:
        pump.run(resp(201, [{"id": "a", "error": "conflict", "reason": "Document update conflict."}]))
    assert info.value.resolution.pending["a"]["doc"] is doc


def test_force_overwrites_with_server_rev():
    ctx = server.ServerContext()
    doc = {"_id": "a", "v": 2}
    pump = Pump(documents.save_docs(ctx, "db", [doc], None, True, force=True))
    result = pump.run(
        resp(201, [{"id": "a", "error": "conflict", "reason": "Document update conflict."}]),
        resp(200, {"total_rows": 1, "rows": [{"id": "a", "key": "a", "value": {"rev": "3-srv"}}]}),
        resp(201, [{"ok": True, "id": "a", "rev": "4-new"}]),
    )
    assert result.ok and doc["_rev"] == "4-new"
    assert json.loads(pump.requests[2].body)["docs"][0]["_rev"] == "3-srv"


def test_merge_calls_fn_and_skips_none():
    ctx = server.ServerContext()
    docs = [{"_id": "a", "v": 1}, {"_id": "b", "v": 1}]
    seen = []

    def merge(local, remote):
        seen.append((local["_id"], remote["v"]))
        return None if local["_id"] == "b" else {**remote, "v": local["v"] + remote["v"]}

    conflict = [{"id": i, "error": "conflict", "reason": "c"} for i in ("a", "b")]
    server_rows = {"rows": [{"id": i, "key": i, "value": {"rev": "2-s"}, "doc": {"_id": i, "_rev": "2-s", "v": 10}}
                            for i in ("a", "b")]}
    pump = Pump(documents.save_docs(ctx, "db", docs, None, False, merge=merge))
    result = pump.run(resp(201, conflict), resp(200, server_rows), resp(201, [{"ok": True, "id": "a", "rev": "3-m"}]))
    assert seen == [("a", 10), ("b", 10)]
    assert list(result.resolved) == ["a"] and docs[0] == {"_id": "a", "_rev": "3-m", "v": 11}
    assert list(result.pending) == ["b"]


@pytest.mark.parametrize("bad", [[{"x": float("nan")}], [["not", "a", "dict"]], [{"s": {1}}]])
def test_bad_documents_fail_before_sending(bad):
    with pytest.raises(InvalidDocument):
        next(documents.save_docs(server.ServerContext(), "db", bad, None, False))


def test_an_id_couchdb_refuses_fails_a_single_document_and_is_pending_in_a_list():
    with pytest.raises(InvalidDocument):
        next(documents.save_docs(server.ServerContext(), "db", [{"_id": 5}], None, True))
    with pytest.raises(StopIteration) as done:  # nothing to send
        next(documents.save_docs(server.ServerContext(), "db", [{"_id": 5}], None, False))
    assert done.value.value.pending["_id:5"]["error"] == "illegal_docid"  # ("_id:" and its JSON text)


def test_delete_needs_rev_before_sending():
    with pytest.raises(MissingRevision):
        next(documents.delete_doc(server.ServerContext(), "db", {"_id": "a"}))
    with pytest.raises(InvalidDocument):
        next(documents.delete_doc(server.ServerContext(), "db", "a"))


def test_delete_updates_rev():
    doc = {"_id": "a b", "_rev": "1-x"}
    pump = Pump(documents.delete_doc(server.ServerContext(), "db", doc))
    pump.run(resp(200, {"ok": True, "id": "a b", "rev": "2-y"}))
    assert pump.requests[0].target == "/db/a%20b?rev=1-x" and doc["_rev"] == "2-y"


def test_copy_destination_header_and_rev_lookup():
    pump = Pump(documents.copy_doc(server.ServerContext(), "db", {"_id": "src", "_rev": "1-a"}, {"_id": "d/e", "_rev": "2-b"}))
    assert pump.run(resp(201, {"ok": True, "id": "d/e", "rev": "3-c"})) == "3-c"
    req = pump.requests[0]
    assert req.method == "COPY" and req.headers["Destination"] == "d%2Fe?rev=2-b" and query_of(req) == {"rev": "1-a"}
    pump = Pump(documents.copy_doc(server.ServerContext(), "db", "src", "dst"))
    assert pump.run(resp(201, {"ok": True}), resp(200, {"_id": "dst", "_rev": "1-z"})) == "1-z"
    pump = Pump(documents.copy_doc(server.ServerContext(), "db", "src", "é ?+"))
    pump.run(resp(201, {"ok": True, "id": "é ?+", "rev": "1-q"}))
    assert pump.requests[0].headers["Destination"] == "%C3%A9%20%3F%2B"


def test_revisions_newest_first():
    pump = Pump(documents.revisions(server.ServerContext(), "db", "a"))
    revs = pump.run(resp(200, {"_id": "a", "_rev": "3-c", "_revisions": {"start": 3, "ids": ["c", "b", "a"]}}))
    assert revs == ["3-c", "2-b", "1-a"]


# -- views -------------------------------------------------------------------------


def test_view_with_keys_is_a_post(fixtures_dir):
    pump = Pump(views.view(server.ServerContext(), "fx", "d/by_n", keys=[3, 99, 1], include_docs=True))
    result = pump.run(resp(200, fixture(fixtures_dir, "view_by_n_keys")))
    req = pump.requests[0]
    assert req.method == "POST" and json.loads(req.body) == {"keys": [3, 99, 1]} and req.stream
    rows = list(result)
    assert [r.key for r in rows] == [3, 1] or any(r.error for r in rows) or len(rows) >= 2


def test_view_errors_raise_before_streaming():
    with pytest.raises(NotFound):
        Pump(views.view(server.ServerContext(), "db", "d/nope")).run(resp(404, {"error": "not_found", "reason": "missing_named_view"}))
    with pytest.raises(InvalidOption):
        next(views.view(server.ServerContext(), "db", "d/v", include_doc=True))


def test_temp_view_emulated_when_gone_and_always_cleaned_up(fixtures_dir):
    ctx = server.ServerContext()
    pump = Pump(views.temp_view(ctx, "fx", "function(d){emit(d.n,null)}", limit=5))
    result = pump.run(
        resp(410, fixture(fixtures_dir, "err_temp_view_gone")),
        resp(201, {"ok": True, "id": "_design/tmp", "rev": "1-t"}),
        resp(200, fixture(fixtures_dir, "view_by_n_limit5")),
        resp(200, {"ok": True}),
        resp(202, {"ok": True}),
    )
    assert [r.key for r in result] == [0, 1, 2, 3, 4]
    methods = [r.method for r in pump.requests]
    assert methods == ["POST", "PUT", "GET", "DELETE", "POST"]
    ddoc_path = pump.requests[1].path
    assert pump.requests[3].path == ddoc_path and query_of(pump.requests[3]) == {"rev": "1-t"}
    # then the index files no design document uses go (the throw-away one's among them)
    assert pump.requests[4].path == "/fx/_view_cleanup"
    assert ctx.temp_view is False
    # a failing query still removes the throw-away design document
    pump = Pump(views.temp_view(ctx, "fx", "function(d){ syntax error"))
    with pytest.raises(ServerError):
        pump.run(resp(201, {"ok": True, "rev": "1-t"}), resp(500, {"error": "compilation_error", "reason": "x"}),
                 resp(200, {"ok": True}), resp(202, {"ok": True}))
    assert [r.method for r in pump.requests] == ["PUT", "GET", "DELETE", "POST"]


def test_temp_view_cleanup_after_transport_error():
    ctx = server.ServerContext()
    ctx.temp_view = False
    op = views.temp_view(ctx, "db", "function(d){emit(1,1)}")
    put = next(op)
    get = op.send(resp(201, {"ok": True, "rev": "1-t"}))
    assert get.method == "GET"
    delete = op.throw(couchcore.ReadTimeout("read timed out"))
    assert delete.method == "DELETE"
    cleanup = op.send(resp(200, {"ok": True}))
    assert (cleanup.method, cleanup.path) == ("POST", "/db/_view_cleanup")
    with pytest.raises(couchcore.ReadTimeout):
        op.send(resp(202, {"ok": True}))
    assert put.method == "PUT"


@pytest.mark.parametrize("answer", ["403", "500", "transport"])
def test_temp_view_rows_survive_a_failed_index_cleanup(fixtures_dir, answer):
    """The rows are read before POST /{db}/_view_cleanup: its failure is not the query's."""
    ctx = server.ServerContext()
    ctx.temp_view = False
    op = views.temp_view(ctx, "fx", "function(d){emit(d.n,null)}", limit=5)
    next(op)
    op.send(resp(201, {"ok": True, "rev": "1-t"}))
    assert op.send(resp(200, fixture(fixtures_dir, "view_by_n_limit5"))).method == "DELETE"
    assert op.send(resp(200, {"ok": True})).path == "/fx/_view_cleanup"
    with pytest.raises(StopIteration) as done:
        if answer == "transport":
            op.throw(couchcore.ConnectionError("connection reset"))
        else:
            op.send(resp(int(answer), {"error": "forbidden" if answer == "403" else "unknown_error",
                                       "reason": "x"}))
    assert [r.key for r in done.value.value] == [0, 1, 2, 3, 4]


def test_temp_view_asks_no_cleanup_when_the_design_document_stays():
    # the DELETE was refused (its answer is not the query's): its index is in use, no cleanup
    ctx = server.ServerContext()
    ctx.temp_view = False
    pump = Pump(views.temp_view(ctx, "fx", "function(d){emit(1,1)}"))
    result = pump.run(resp(201, {"ok": True, "rev": "1-t"}), resp(200, {"total_rows": 0, "offset": 0, "rows": []}),
                      resp(409, {"error": "conflict", "reason": "Document update conflict."}))
    assert list(result) == [] and [r.method for r in pump.requests] == ["PUT", "GET", "DELETE"]


def test_temp_view_waits_for_the_design_document_on_a_cluster(fixtures_dir):
    # CouchDB 3.5, 3-node cluster: the query right after the PUT met a copy without the new
    # design document and answered this 404 although the write had succeeded
    ctx = server.ServerContext()
    ctx.temp_view = False
    updated = {"error": "not_found", "reason": "Design document was updated or deleted."}
    pump = Pump(views.temp_view(ctx, "fx", "function(d){emit(d.n,null)}", limit=5))
    result = pump.run(
        resp(201, {"ok": True, "rev": "1-t"}),
        resp(404, updated), resp(404, {"error": "not_found", "reason": "missing"}),
        resp(200, fixture(fixtures_dir, "view_by_n_limit5")),
        resp(200, {"ok": True}),
        resp(202, {"ok": True}),
    )
    assert [r.key for r in result] == [0, 1, 2, 3, 4]
    assert [r.method for r in pump.requests] == ["PUT", "GET", "GET", "GET", "DELETE", "POST"]
    assert [r.delay for r in pump.requests[1:4]] == [0.0, 0.1, 0.2]
    # bounded: a design document that never shows up ends in NotFound, and is still deleted
    pump = Pump(views.temp_view(ctx, "fx", "function(d){emit(d.n,null)}"))
    with pytest.raises(NotFound):
        pump.run(resp(201, {"ok": True, "rev": "1-t"}), *[resp(404, updated)] * views._TMP_DDOC_ATTEMPTS,
                 resp(200, {"ok": True}), resp(202, {"ok": True}))
    assert sum(r.delay for r in pump.requests) < 10
    # a database deleted meanwhile is not waited for
    pump = Pump(views.temp_view(ctx, "fx", "function(d){emit(d.n,null)}"))
    with pytest.raises(NotFound):
        pump.run(resp(201, {"ok": True, "rev": "1-t"}),
                 resp(404, {"error": "not_found", "reason": "Database does not exist."}),
                 resp(404, {"error": "not_found", "reason": "Database does not exist."}))
    assert [r.method for r in pump.requests] == ["PUT", "GET", "DELETE"]


def test_temp_view_refused_design_document_raises_the_servers_error():
    # a database member (not admin) may not write design documents: 403, not a KeyError
    ctx = server.ServerContext()
    ctx.temp_view = False
    pump = Pump(views.temp_view(ctx, "fx", "function(d){emit(1,1)}"))
    with pytest.raises(couchcore.Forbidden):
        pump.run(resp(403, {"error": "forbidden", "reason": "You are not a db or server admin."}))
    assert [r.method for r in pump.requests] == ["PUT"]


def test_list_show_update_paths():
    ctx = server.ServerContext()
    pump = Pump(views.list_fn(ctx, "db", "d/lst", "other/v", options={"limit": 2, "format": "csv"}))
    r = pump.run(resp(200, b"a,b\n", headers={"Content-Type": "text/csv"}))
    assert r.body == b"a,b\n" and r.headers["content-type"] == "text/csv"
    assert pump.requests[0].path == "/db/_design/d/_list/lst/other/v"
    assert query_of(pump.requests[0]) == {"limit": "2", "format": "csv"}
    pump = Pump(views.show_fn(ctx, "db", "d/sh", "a/b"))
    assert pump.run(resp(200, {"x": 1})).body == {"x": 1}
    assert pump.requests[0].path == "/db/_design/d/_show/sh/a%2Fb"
    pump = Pump(views.update_fn(ctx, "db", "_design/d/_update/up", "id1", body={"v": 1}))
    pump.run(resp(201, b"done", headers={"Content-Type": "text/plain"}))
    assert pump.requests[0].method == "PUT" and pump.requests[0].path == "/db/_design/d/_update/up/id1"


# -- changes, attachments, database --------------------------------------------------


def test_changes_request_encoding():
    req = changes.changes_request("db", {"since": 5, "feed": "longpoll", "heartbeat": True, "include_docs": True,
                                         "doc_ids": ["a", "b"], "params": {"x": [1]}})
    q = query_of(req)
    assert q["since"] == "5" and q["heartbeat"] == "30000" and q["filter"] == "_doc_ids" and q["x"] == "[1]"
    assert req.method == "POST" and json.loads(req.body) == {"doc_ids": ["a", "b"]}
    with pytest.raises(InvalidOption):
        changes.changes_request("db", {"sinse": 1})
    with pytest.raises(InvalidOption):
        changes.changes_request("db", {"feed": "eventsource"})


def test_changes_normal(fixtures_dir):
    result = Pump(changes.changes(server.ServerContext(), "fx", limit=5)).run(resp(200, fixture(fixtures_dir, "changes_normal")))
    assert len(result["results"]) == 5 and isinstance(result["last_seq"], str)
    assert all(isinstance(c["seq"], str) for c in result["results"])


def test_attachment_put_streams_file_and_updates_rev(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 1000)
    doc = {"_id": "d", "_rev": "1-a"}
    with open(path, "rb") as f:
        pump = Pump(attachments.put_attachment(server.ServerContext(), "db", doc, f))
        pump.run(resp(201, {"ok": True, "id": "d", "rev": "2-b"}))
    req = pump.requests[0]
    assert req.path == "/db/d/data.bin" and req.headers["Content-Length"] == "1000"
    assert req.headers["Content-Type"] == "application/octet-stream" and hasattr(req.body, "read")
    assert doc["_rev"] == "2-b"
    with pytest.raises(MissingRevision):
        next(attachments.delete_attachment(server.ServerContext(), "db", {"_id": "d"}, "x"))


def test_purge_body():
    pump = Pump(database.purge(server.ServerContext(), "db", [{"_id": "a", "_rev": "1-x"}, {"_id": "a", "_rev": "2-y"}]))
    pump.run(resp(201, {"purge_seq": None, "purged": {"a": ["1-x", "2-y"]}}))
    assert json.loads(pump.requests[0].body) == {"a": ["1-x", "2-y"]}


def test_compact_sends_json_content_type():
    pump = Pump(database.compact(server.ServerContext(), "db", "_design/d"))
    assert pump.run(resp(202, {"ok": True})) is True
    assert pump.requests[0].path == "/db/_compact/d"
    assert pump.requests[0].headers["Content-Type"] == "application/json"


def _first_request(op) -> Request:
    req = next(op)
    op.close()
    return req


@pytest.mark.parametrize("build", [
    lambda ctx: views.view_request("db", "_all_docs", {"keys": ["a"]}),
    lambda ctx: _first_request(views.temp_view(ctx, "db", "function(doc){emit(1)}", keys=[1])),
    lambda ctx: _first_request(views.list_fn(ctx, "db", "app/l", "v", options={"keys": [1]})),
    lambda ctx: changes.changes_request("db", {"doc_ids": ["a"], "filter": "_doc_ids"}),
    lambda ctx: _first_request(database.find(ctx, "db", {"n": 1})),
    lambda ctx: _first_request(documents.get_docs(ctx, "db", ["a", "b"])),
    lambda ctx: _first_request(documents.current_revs(ctx, "db", ["a"])),
], ids=["view-keys", "temp_view", "list-keys", "changes-doc_ids", "find", "all_docs-keys", "current_revs"])
def test_read_only_posts_are_marked_idempotent(build):
    """A POST that only reads may be sent again when its connection breaks (drivers.RetryPolicy)."""
    req = build(server.ServerContext())
    assert req.method == "POST" and req.idempotent is True


def test_writing_posts_stay_non_idempotent():
    ctx = server.ServerContext()
    req = _first_request(views.update_fn(ctx, "db", "app/u", None, body={"a": 1}))
    assert req.method == "POST" and req.idempotent is False
