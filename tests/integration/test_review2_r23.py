"""Second review of round 23's fixes: what the first reviewer's new checks must still let
through, and the case-insensitive headers and Tornado helpers they introduced, probed on
the real test server (and on Apache CouchDB 3.5 with ``COUCHDB_URL``). Each test failed
before its fix."""

from __future__ import annotations

import asyncio
import copy
import json
import pickle

import pytest

import couchcore
from tests.helpers import async_backends as _async_backends
import couchcore.tornado


# -- security(): every object CouchDB takes is sent ---------------------------------------

@pytest.mark.parametrize("value", [
    # couch_db:validate_security_object checks "readers" only when there is no "members"
    # (members defaults to readers): next to members CouchDB 3.5 stores any readers
    # (curl: {"ok":true}); couchcore refused these with InvalidInput
    {"members": {"names": ["bob"]}, "readers": "anything"},
    {"members": {"names": ["bob"]}, "readers": {"names": [1]}},
    {"members": {"roles": []}, "readers": []},
    # and the shapes it always accepted
    {},
    {"admins": {}},
    {"admins": {"names": [], "other": 5}, "extra": {"x": 1}},
    {"couchdb_auth_only": True, "members": {"roles": ["_admin"]}},
    {"admins": {"names": ["\u00e9l\u00e8ve", "\u65e5\u672c"]}, "members": {"roles": ["r\u00f4le"]}},
    {"readers": {"names": ["old"], "roles": ["style"]}},
    {"admins": {"names": ("a", "b")}},
])
def test_security_sends_every_object_couchdb_accepts(one_copy_db, value):
    # https://docs.couchdb.org/en/stable/api/database/security.html
    db = one_copy_db  # a cluster reads _security from one copy per shard
    assert db.security(value)["ok"] is True
    stored = db.security()
    for key, part in json.loads(json.dumps(value)).items():  # (a tuple goes out as a list)
        assert stored[key] == part


def test_security_still_checks_readers_without_members(db):
    # members defaults to readers: then readers is what CouchDB checks (500 no_majority)
    with pytest.raises(couchcore.InvalidInput, match="readers"):
        db.security({"readers": {"names": [1]}})
    with pytest.raises(couchcore.InvalidInput, match="members"):
        db.security({"members": "bob", "readers": {"names": ["bob"]}})


# -- the case-insensitive headers of errors and statuses ----------------------------------

def _not_found(db) -> couchcore.NotFound:
    with pytest.raises(couchcore.NotFound) as info:
        db.get("missing")
    return info.value


def test_an_errors_headers_stay_case_insensitive_when_copied_or_changed(db):
    # HTTPError.headers is documented as a case-insensitive mapping; dict's own copy(),
    # update(), setdefault(), pop() and del bypassed it: copy().get("Content-Type") was
    # None, update({"X-Trace": ..}) stored a key get("X-Trace") missed, pop/del KeyError
    headers = _not_found(db).headers
    assert headers.get("Content-Type", "").startswith("application/json")
    copied = headers.copy()
    assert copied.get("Content-Type") == headers["content-type"]
    assert copy.copy(headers)["CONTENT-TYPE"] == headers["content-type"]
    merged = headers | {"X-Extra": "1"}
    assert merged["x-extra"] == "1" and merged.get("Content-Type") == headers["content-type"]
    copied.update({"X-Trace": "a"}, Other="b")
    copied.update([("X-Pair", "c")])
    assert (copied.get("X-Trace"), copied.get("x-trace"), copied["OTHER"], copied["x-pair"]) == ("a", "a", "b", "c")
    assert copied.setdefault("X-Default", "d") == "d" and copied["x-default"] == "d"
    assert copied.setdefault("CONTENT-TYPE", "nope") == headers["content-type"]
    assert copied.pop("Content-Type") == headers["content-type"] and "content-type" not in copied
    assert copied.pop("Content-Type", None) is None
    del copied["X-TRACE"]
    assert "x-trace" not in copied
    copied |= {"X-Or": "e"}
    assert copied["x-or"] == "e"
    assert "content-type" in headers  # the error's own headers were not touched
    assert all(key == key.lower() for key in copied)


def test_a_pickled_error_keeps_its_case_insensitive_headers(db):
    err = _not_found(db)
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(err, proto))
        assert type(back) is type(err) and str(back) == str(err)
        assert back.headers.get("Content-Type") == err.headers["content-type"]
        assert back.headers.copy().get("Content-Type") == err.headers["content-type"]


# -- couchcore.tornado.relax: iterview / iterfind ----------------------------------------

@pytest.mark.parametrize("async_backend", _async_backends())
def test_relax_gives_every_row_and_document_of_iterview_and_iterfind(couch_url, one_copy_db, async_backend):
    # a callback got the list of every row/document (2820e30), but yielding the same call in
    # a relax handler raised tornado's BadYieldError ("yielded unknown object <Paged ...>"):
    # a generator handler cannot 'async for'
    db = one_copy_db  # a cluster's _all_docs reads one copy per shard
    db.save([{"_id": f"d{i:02}", "n": i} for i in range(11)])

    @couchcore.tornado.relax
    def handler(tdb):
        rows = yield tdb.iterview("_all_docs", page_size=3, limit=8)
        docs = yield tdb.iterfind({"n": {"$gte": 4}}, page_size=2)
        both = yield [tdb.iterview("_all_docs", page_size=4), tdb.get("d00")]
        return [r.id for r in rows], sorted(d["n"] for d in docs), len(both[0]), both[1]["n"]

    async def main():
        tdb = couchcore.tornado.Database(f"{couch_url}/{db.name}", backend=async_backend)
        return await handler(tdb)

    ids, found, count, first = asyncio.run(main())
    assert ids == [f"d{i:02}" for i in range(8)]
    assert found == list(range(4, 11))
    assert (count, first) == (11, 0)


# -- a session cookie in an error's headers ------------------------------------------------

_REFRESHED = ("AuthSession=YWRtaW46NkIwRTNDMzE6LqCpukVLNSFnuHlVvw7vvkVT3AQYdWOB0Q98HHPdjsk; Version=1; "
              "Expires=Tue, 01-Dec-2026 03:27:05 GMT; Max-Age=600; Path=/; HttpOnly")


def test_an_errors_headers_hide_the_session_cookie_couchdb_refreshed():
    # CouchDB 3.5 refreshes a SessionAuth cookie on any answer once a tenth of its timeout
    # has passed, errors included: a NotFound 70 s after the login carried
    # "set-cookie: AuthSession=<token>" in e.headers, in every pickle of the exception (a
    # token that logs anyone in as that user). Canned answer of that real exchange:
    from couchcore.protocol.messages import Response

    token = "YWRtaW46NkIwRTNDMzE6LqCpukVLNSFnuHlVvw7vvkVT3AQYdWOB0Q98HHPdjsk"
    resp = Response(404, {"Content-Type": "application/json", "Set-Cookie": _REFRESHED},
                    body=b'{"error":"not_found","reason":"missing"}', method="GET",
                    url="http://127.0.0.1:5984/db/nope")
    err = resp.error()
    assert isinstance(err, couchcore.NotFound)
    assert err.headers["Set-Cookie"].startswith("AuthSession=<hidden>; Version=1;")
    assert "Max-Age=600" in err.headers["set-cookie"] and err.headers.get("Content-Type") == "application/json"
    for blob in [pickle.dumps(err, proto) for proto in range(pickle.HIGHEST_PROTOCOL + 1)]:
        assert token.encode() not in blob
    assert token not in repr(vars(err)) and token not in repr(vars(copy.deepcopy(err)))
    assert token in resp.headers["set-cookie"]  # the response keeps it: SessionAuth reads it there


def test_a_callbacks_status_headers_hide_the_session_cookie():
    # the same refreshed cookie reached a tornado callback's Status.headers (on success and on
    # error), where it was logged or pickled with the status
    from couchcore.models import Status
    from couchcore.protocol.messages import Response

    token = "YWRtaW46NkIwRTNDMzE6LqCpukVLNSFnuHlVvw7vvkVT3AQYdWOB0Q98HHPdjsk"
    resp = Response(200, {"Content-Type": "application/json", "Set-Cookie": _REFRESHED, "ETag": '"1-a"'},
                    body=b'{"ok":true}', method="GET", url="http://127.0.0.1:5984/db/doc")
    for status in (Status(200, None, resp.headers, resp), Status(404, resp.error(), resp.headers, resp)):
        assert status.headers["set-cookie"].startswith("AuthSession=<hidden>; Version=1;")
        assert status.headers["etag"] == '"1-a"'
        assert token not in repr(status.headers)
        assert token not in repr([getattr(status, name) for name in ("code", "headers")])
    assert token in resp.headers["set-cookie"]  # the response keeps it: SessionAuth reads it there
