"""Round 28, faults the previous round left (helper brief "r28 left"). Each test failed before
its fix (a tar copy of the tree with the previous files) and passes on PouchDB Server and on
Apache CouchDB 3.5; ``couchdb_only`` marks what PouchDB Server answers differently."""

from __future__ import annotations

import json
import os

import pytest

import couchcore
from couchcore.testing import FaultyProxy
from tests.helpers import member_db, unique_name
from tests.integration.test_bulk import proxied
from tests.integration.test_review_r27c import _couch_says, _requests
from tests.integration.test_review_r27e import PASSWORD, _base, _make_stale, _traffic


@pytest.fixture
def db(one_copy_db):
    """One copy per shard (n=1): _all_docs right after a write sees it on a cluster too."""
    return one_copy_db


def _posts(proxy) -> list[list[object]]:
    """The ``_id`` of every document of every ``POST /{db}/_bulk_docs`` the proxy saw."""
    return [[doc.get("_id") for doc in json.loads(body)["docs"]]
            for method, target, body in proxy.bodies if method == "POST" and "/_bulk_docs" in target]


# -- 1: a non-str scalar _id in save(list) ---------------------------------------------------------
# CouchDB refuses the whole POST /{db}/_bulk_docs (400 illegal_docid, "Document id must be a
# string") for one such document (https://docs.couchdb.org/en/stable/api/document/common.html).
# It was refused before sending already, but pending was keyed by the raw value (5, True, 1.5)
# while ConflictResolution.pending is dict[str, PendingWrite]; resolve()/overwrite() of such a
# resolution raised TypeError for a list _id and merge() InvalidInput for a number

_SCALARS = [(5, "_id:5"), (True, "_id:true"), (1.5, "_id:1.5"), (-0.25, "_id:-0.25"), (["l"], '_id:["l"]')]


def test_a_non_str_id_is_pending_under_its_json_text(db, backend):
    docs = [{"_id": "a", "n": 0}] + [{"_id": bad, "n": i} for i, (bad, _) in enumerate(_SCALARS, 1)]
    proxy, via = proxied(db, backend, capture=True)
    try:
        resolution = via.save(docs)
        assert _posts(proxy) == [["a"]]  # the refused ones never sent
    finally:
        proxy.close()
    assert list(resolution.resolved) == ["a"]
    assert all(type(key) is str for key in resolution.pending)
    assert sorted(resolution.pending) == sorted(key for _, key in _SCALARS)
    for doc, (bad, key) in zip(docs[1:], _SCALARS):
        entry = resolution.pending[key]
        assert entry["doc"] is doc and doc["_id"] == bad and type(doc["_id"]) is type(bad)
        assert (entry["error"], entry["reason"]) == ("illegal_docid", "Document id must be a string")
    assert [row.id for row in db.view("_all_docs")] == ["a"]


@pytest.mark.parametrize("how", ["resolve", "overwrite", "merge"])
def test_resolving_leaves_a_refused_id_pending_and_unsent(db, backend, how):
    docs = [{"_id": bad, "n": i} for i, (bad, _) in enumerate(_SCALARS)] + [{"_id": "b", "n": 9}]
    db.save({"_id": "b", "n": 1})
    proxy, via = proxied(db, backend, capture=True)
    try:
        resolution = via.save(docs)
        assert set(resolution.pending) == {key for _, key in _SCALARS} | {"b"}
        assert resolution.pending["b"]["error"] == "conflict"
        again = (resolution.merge(lambda local, server: {**local, "merged": True}) if how == "merge"
                 else getattr(resolution, how)())
        sent = [docid for post in _posts(proxy) for docid in post]
    finally:
        proxy.close()
    assert all(not isinstance(docid, (int, float, list)) for docid in sent), sent
    # "b" sent as it is (resolve) conflicts again; overwrite and merge write it
    assert set(again.pending) == {key for _, key in _SCALARS} | ({"b"} if how == "resolve" else set())
    assert all(again.pending[key]["doc"]["_id"] == bad and again.pending[key]["error"] == "illegal_docid"
               for bad, key in _SCALARS)
    stored = {row.id: row.doc for row in db.view("_all_docs", include_docs=True)}
    assert set(stored) == {"b"}  # no "5", "true", ... written under the JSON text
    assert stored["b"]["n"] == (1 if how == "resolve" else 9)


# reviewer-round-r28 (LOW): keyed by the bare JSON text, {"_id": 5} shared the key "5" with the
# document "5" of the same list: merge wrote the int-id document's content into document "5",
# force/overwrite dropped it from the report. "_id:5" is no id CouchDB accepts
@pytest.mark.parametrize("how", ["merge", "overwrite", "force"])
def test_a_non_str_id_never_shares_a_key_with_a_str_id_of_the_same_text(db, couch_url, backend, how):
    db.save({"_id": "5", "x": "stored"})
    docs = [{"_id": 5, "x": "int"}, {"_id": "5", "x": "str"}]
    via = couchcore.Server(couch_url, backend=backend)[db.name]
    try:
        if how == "force":
            resolution = via.save(docs, force=True)
        else:
            first = via.save(docs)
            assert set(first.pending) == {"_id:5", "5"}
            resolution = (first.merge(lambda local, server: {**server, **local}) if how == "merge"
                          else first.overwrite())
    finally:
        via.server.close()
    assert set(resolution.pending) == {"_id:5"}
    assert resolution.pending["_id:5"]["doc"]["x"] == "int" and resolution.pending["_id:5"]["error"] == "illegal_docid"
    assert db.get("5")["x"] == "str"  # the int-id document's content never reached "5"


# -- 2: "_rev": null in save(list) ---------------------------------------------------------------
# CouchDB 3.5 does not take "_rev": null for "no revision": it refuses the whole _bulk_docs with
# 400 bad_request "Invalid rev format" (PouchDB Server writes the document). It was left to the
# halving of the 400 (9 POSTs for 16 documents); now it is one of the refusals the client can
# tell itself: the refused request, one GET /{db} (is it partitioned?), the others once more

@pytest.mark.couchdb_only  # PouchDB Server takes "_rev": null for no revision
def test_a_null_rev_costs_two_requests(db, couch_url, backend):
    status, body = _couch_says(couch_url, db.name, [{"_id": "raw", "_rev": None}])
    assert (status, body) == (400, {"error": "bad_request", "reason": "Invalid rev format"})
    db.save({"_id": "old", "v": 1})
    docs = [{"_id": f"d{i}", "v": i} for i in range(16)]
    docs[5]["_rev"] = None
    docs[11] = {**db.get("old"), "v": 2}
    proxy, via = proxied(db, backend)
    try:
        resolution = via.save(docs)
        assert _requests(proxy) == (2, 1)
    finally:
        proxy.close()
    assert list(resolution.pending) == ["d5"]
    entry = resolution.pending["d5"]
    assert entry["doc"] is docs[5] and (entry["error"], entry["reason"]) == ("bad_request", "Invalid rev format")
    assert "_rev" in docs[5] and docs[5]["_rev"] is None  # the document as given
    assert set(resolution.resolved) == {d["_id"] for d in docs} - {"d5"}
    assert {row.id: row.doc["v"] for row in db.view("_all_docs", include_docs=True)} == {
        **{f"d{i}": i for i in range(16) if i not in (5, 11)}, "old": 2}


# -- 3: one _id twice in a save(list), both refused ----------------------------------------------
# pending keeps one entry per _id: the later document of the list (the one force/merge and
# resolve()/overwrite() write again; once it is written the earlier ones count as superseded),
# the earlier ones in its "others". The refusals the client tells itself after a 400 (a _rev
# CouchDB cannot parse) were recorded before the rest was sent again, so an earlier document's
# later refusal (a conflict) took the entry and the later document went to "others": force=
# then wrote the earlier, superseded document and dropped the later one from the report

def _entries(entry) -> list[tuple[object, str]]:
    return [(e["doc"]["n"], e["error"]) for e in [*entry.get("others", []), entry]]


def test_the_later_document_of_an_id_keeps_the_entry(db):
    db.save({"_id": "x", "n": 0})
    docs = [{"_id": "x", "n": 1}, {"_id": "x", "n": 2, "_rev": "bad"}]
    resolution = db.save(docs)
    entry = resolution.pending["x"]
    assert entry["doc"] is docs[1] and entry["others"][0]["doc"] is docs[0]
    assert _entries(entry) == [(1, "conflict"), (2, "bad_request")]
    # overwrite() writes the later document, on the current revision
    again = resolution.overwrite()
    assert again.ok and db.get("x")["n"] == 2
    # force=: the conflict of the earlier document is not retried over the later one's refusal
    docs = [{"_id": "x", "n": 3}, {"_id": "x", "n": 4, "_rev": "bad"}]
    resolution = db.save(docs, force=True)
    assert list(resolution.pending) == ["x"] and _entries(resolution.pending["x"]) == [(3, "conflict"),
                                                                                        (4, "bad_request")]
    assert db.get("x")["n"] == 2  # the superseded document not written
    # in the caller's order however they are recorded
    docs = [{"_id": "x", "n": 5, "_rev": "bad"}, {"_id": "x", "n": 6}]
    assert _entries(db.save(docs).pending["x"]) == [(5, "bad_request"), (6, "conflict")]


@pytest.mark.couchdb_only  # PouchDB Server answers 500 for a "_foo" member
def test_the_later_document_keeps_the_entry_when_both_are_refused_whole(db):
    docs = [{"_id": "y", "n": 1, "_foo": 1}, {"_id": "y", "n": 2, "_rev": "bad"}, {"_id": "z", "n": 3}]
    resolution = db.save(docs)
    assert list(resolution.resolved) == ["z"]
    entry = resolution.pending["y"]
    assert entry["doc"] is docs[1] and _entries(entry) == [(1, "doc_validation"), (2, "bad_request")]


# -- 5: SessionAuth, a connection broken under a body sent with a revoked cookie ------------------
# CouchDB serves a request whose session cookie it no longer takes as anonymous, answers 401
# at once where anonymous users may not go, and may close the connection before reading a large
# body: Tornado's client (from a few MB) and libcurl (tens of MB) see the break, not the 401.
# The session is renewed and the error raised (OutcomeUnknown, "a retry now works"); the request
# is NOT sent again. Round 28 first sent it again when CouchDB's answers after the break said the
# cookie was revoked (11cf7c0), but a cookie revoked after CouchDB applied the write (a password
# re-saved, a new server secret, a node restart) looks the same, and the write was then applied
# twice (reviewer-round-r28.md, HIGH): reverted. Whether a write whose answer was lost was applied
# is the caller's to find out (https://docs.couchdb.org/en/stable/api/server/authn.html#cookie-authentication)

DATA = os.urandom(3 * 1024 * 1024 + 17)


@pytest.fixture
def admin_server(couch_url):
    server = couchcore.Server(couch_url)
    yield server
    server.close()


@pytest.fixture
def member(admin_server):
    """(database name, user name): a database whose only member is a new ``_users`` account."""
    user = unique_name("r28l")
    with member_db(admin_server, user, PASSWORD, "r28l") as db:
        yield db.name, user


def _body(kind: str, tmp_path, data: bytes):
    if kind == "bytes":
        return data
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return open(path, "rb")


@pytest.mark.couchdb_only  # PouchDB Server's cookie has no Max-Age; the same path is taken there
@pytest.mark.parametrize("kind", ["file", "bytes"])
def test_a_break_under_a_body_is_not_sent_again_and_a_retry_works(couch_url, admin_server, member, backend, kind,
                                                                  tmp_path):
    """The proxy forwards the request (CouchDB refuses it: 401) and breaks the connection
    instead of passing the answer on, as CouchDB's early close does: the session is renewed,
    the request not sent again (the client cannot tell a refused write from an applied one),
    and the caller's retry goes through."""
    name, user = member
    base = _base(couch_url)
    proxy = FaultyProxy(base)
    auth = couchcore.SessionAuth(user, PASSWORD)
    server = couchcore.Server(proxy.url, auth=auth, backend=backend, retries=0)
    body = _body(kind, tmp_path, DATA)
    try:
        db = server.db(name)
        doc = {"_id": "d"}
        db.save(doc)
        _make_stale(admin_server, base, user, auth)
        proxy.cut_after_send("PUT", "att.bin")
        seen = len(proxy.seen)
        with pytest.raises(couchcore.OutcomeUnknown) as info:
            db.put_attachment(doc, body, "att.bin")
        assert "a retry now works" in str(info.value) and PASSWORD not in str(info.value)
        assert _traffic(proxy, seen) == ["PUT att.bin", "GET /_session", "POST /_session"]
        assert proxy.fired == 1 and auth.logins == 2
        if kind == "file":
            body.seek(0)
        db.put_attachment(doc, body, "att.bin")  # the caller's retry
        assert db.get_attachment("d", "att.bin") == DATA and doc["_rev"].startswith("2-")
    finally:
        if kind == "file":
            body.close()
        server.close()
        proxy.close()


@pytest.mark.couchdb_only  # (as above)
def test_a_break_where_anonymous_users_may_write_is_not_sent_again(couch_url, admin_server, backend, tmp_path):
    """A database without members (anonymous users may write): the request served as
    anonymous was applied; it is not sent again, and is there once."""
    user = unique_name("r28l")
    with member_db(admin_server, user, PASSWORD, "r28l") as db:
        db.security({})  # public again
        base = _base(couch_url)
        proxy = FaultyProxy(base)
        auth = couchcore.SessionAuth(user, PASSWORD)
        server = couchcore.Server(proxy.url, auth=auth, backend=backend, retries=0)
        try:
            via = server.db(db.name)
            doc = {"_id": "d"}
            via.save(doc)
            _make_stale(admin_server, base, user, auth)
            proxy.cut_after_send("PUT", "att.bin")
            seen = len(proxy.seen)
            with pytest.raises(couchcore.OutcomeUnknown) as info:
                via.put_attachment(doc, DATA, "att.bin")
            assert "a retry now works" in str(info.value) and PASSWORD not in str(info.value)
            assert _traffic(proxy, seen) == ["PUT att.bin", "GET /_session", "POST /_session"]
            assert auth.logins == 2
            assert db.get_attachment("d", "att.bin") == DATA  # applied once, as anonymous
            assert db.get("d")["_rev"].startswith("2-")
        finally:
            server.close()
            proxy.close()


# -- 4: _load_cli.InputError through pickle ------------------------------------------------------
# Listed as left by round 27 ("drops its text attribute when pickled"); checked: it does not.
# BaseException.__reduce__ gives (cls, args, __dict__): InputError(message) is rebuilt (its text
# defaults to "") and __dict__ then restores text. No fix; this guards it (it passed before)

def test_input_error_round_trips_pickle_with_its_text():
    import copy
    import pickle

    from couchcore._load_cli import InputError

    error = InputError("not valid CSV: unexpected end of data", 'a,"b\n')
    error.add_note("line 7")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        again = pickle.loads(pickle.dumps(error, protocol))
        assert (type(again), again.args, again.text, again.__notes__) == (
            InputError, error.args, 'a,"b\n', ["line 7"]), protocol
    assert copy.deepcopy(error).text == 'a,"b\n'
