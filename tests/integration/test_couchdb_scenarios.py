"""Scenarios from Apache CouchDB's own integration tests (``test/elixir/test/*.exs``, tag
3.5.0) that couchcore got wrong, against the real test server (issue 16):

1. ``None`` is a JSON value: ``key=None`` sends ``key=null`` (views, ``_all_docs``,
   temporary views, list functions).
2. Design-function output that is not JSON: the raw body, its text and content type.
3. Update handlers answering 302 or another non-error status: a Result, never an
   exception, redirects never followed; form and other bodies; request headers; the
   same request headers from every backend.
4. Attachments of an older revision (``rev=``, a document's ``_rev``).
5. Small endpoints: ``all_dbs`` options, ``revs_limit``, ``config_reload``, ``session``.
"""

from __future__ import annotations

import asyncio
import io

import pytest

import couchcore
from couchcore import codec
from couchcore.testing import ScriptedServer, http_response

# -- 1. None is a JSON value ------------------------------------------------------------

NULLS = {
    "_id": "_design/n",
    "views": {"by_k": {"map": "function(doc){ if ('k' in doc) emit(doc.k, doc.n); }"}},
    "lists": {
        "keys": "function(head, req){ start({headers: {'Content-Type': 'application/json'}});"
                " var out = []; var row; while (row = getRow()) { out.push(row.id); }"
                " send(JSON.stringify(out)); }",
    },
}
MAP_K = "function(doc){ if ('k' in doc) emit(doc.k, doc.n); }"


@pytest.fixture
def db(one_copy_db):
    """A fresh database with ONE copy of each shard (``n=1``; PouchDB Server ignores it):
    these tests read views, ``_all_docs`` and list functions right after writing, and a
    cluster serves those from one copy of each shard, which may not have applied a write
    the others acknowledged yet (https://docs.couchdb.org/en/stable/cluster/sharding.html#quorum;
    seen on the 3-node cluster under load even after three full reads in a row). With one
    copy a read sees every acknowledged write (see conftest.one_copy_db)."""
    return one_copy_db


def make_nulls(db, nulls=6):
    """``z00``.. with ``k: null`` and five docs with other keys (``0``, ``false``, ``""``, ``[]``, ``"a"``)."""
    docs = [{"_id": f"z{i:02d}", "k": None, "n": i} for i in range(nulls)]
    others = [0, False, "", [], "a"]
    docs += [{"_id": f"o{i}", "k": k, "n": 100 + i} for i, k in enumerate(others)]
    assert db.save(docs + [dict(NULLS)]).ok
    return [d["_id"] for d in docs[:nulls]]


def row_ids(rows):
    return [r.id for r in rows]


def test_key_none_selects_the_rows_with_a_null_key(db):
    nulls = make_nulls(db)
    rows = db.view("n/by_k", key=None).all()
    assert row_ids(rows) == nulls and all(r.key is None for r in rows)
    assert len(db.view("n/by_k")) == len(nulls) + 5  # not given: every row


@pytest.mark.parametrize("start, end", [("startkey", "endkey"), ("start_key", "end_key")])
def test_startkey_and_endkey_none_bound_the_range_at_null(db, start, end):
    nulls = make_nulls(db)
    assert row_ids(db.view("n/by_k", **{start: None, end: None})) == nulls
    assert row_ids(db.view("n/by_k", **{end: None})) == nulls  # null collates first
    after_null = db.view("n/by_k", **{start: None, "skip": len(nulls)})
    assert [r.key for r in after_null][:2] == [False, 0]
    assert row_ids(db.view("n/by_k", **{start: None, end: None, "descending": True})) == nulls[::-1]


def test_keys_may_contain_null(db):
    nulls = make_nulls(db, 2)
    assert row_ids(db.view("n/by_k", keys=[None, "a"])) == nulls + ["o4"]


@pytest.mark.couchdb_only  # PouchDB Server ignores startkey_docid (TEST-SERVER.md)
@pytest.mark.parametrize("start, start_id, end, end_id", [
    ("startkey", "startkey_docid", "endkey", "endkey_docid"),
    ("start_key", "start_key_doc_id", "end_key", "end_key_doc_id"),
])
def test_paging_from_a_null_key_with_docid_bounds(db, start, start_id, end, end_id):
    """As CouchDB's view_collation tests do: a page of the null-key rows by doc id."""
    nulls = make_nulls(db, 12)
    page = db.view("n/by_k", **{start: None, start_id: "z03", end: None, end_id: "z08"})
    assert row_ids(page) == nulls[3:9]
    first = db.view("n/by_k", **{start: None, start_id: "z05", "limit": 4})
    assert row_ids(first) == nulls[5:9]


@pytest.mark.couchdb_only  # PouchDB Server's _all_docs treats key=null as no key
def test_all_docs_key_none_matches_nothing(db):
    make_nulls(db, 2)
    assert db.view("_all_docs", key=None).all() == []  # ids are strings: none equals null
    assert db.view("_all_docs", endkey=None).all() == []
    assert len(db.view("_all_docs", startkey=None)) == 8


def test_temp_view_key_none(db):
    nulls = make_nulls(db, 3)
    assert row_ids(db.query(MAP_K, key=None)) == nulls
    assert row_ids(db.query(MAP_K, startkey=None, endkey=None)) == nulls


def test_list_function_over_a_view_with_key_none(db):
    nulls = make_nulls(db, 3)
    assert db.list("n/keys", "by_k", key=None).body == nulls
    assert db.list("n/keys", "by_k", startkey=None, endkey=None).body == nulls
    assert len(db.list("n/keys", "by_k").body) == 8


def test_plain_options_given_as_none_are_not_given(db):
    """``limit``, ``skip``, ``descending``, ... have no null value: ``None`` leaves them out."""
    nulls = make_nulls(db, 2)
    rows = db.view("n/by_k", key=None, limit=None, skip=None, descending=None, startkey_docid=None)
    assert row_ids(rows) == nulls


def test_not_given_sentinel_leaves_an_option_out():
    query, body = codec.view_query({"key": codec.NOT_GIVEN, "startkey": None, "limit": codec.NOT_GIVEN})
    assert query == [("startkey", "null")] and body is None
    assert not codec.NOT_GIVEN and repr(codec.NOT_GIVEN) == "NOT_GIVEN"


def test_keys_none_is_not_a_list_of_keys():
    """``keys`` is a list (``null`` is no list of keys): ``keys=None`` is refused, before sending."""
    offline = couchcore.Server("http://127.0.0.1:9", retries=0, connect_timeout=0.5)._database("x")
    with pytest.raises(couchcore.InvalidOption, match="keys"):
        offline.view("n/by_k", keys=None)
    assert codec.view_query({"keys": codec.NOT_GIVEN}) == ([], None)


@pytest.mark.parametrize("options", [
    {"startkey": None, "start_key": 5},       # CouchDB reads whichever comes last
    {"start_key": "a", "startkey": None},
    {"endkey": 1, "end_key": None},
    {"startkey_docid": "a", "start_key_doc_id": "b"},
    {"endkey_docid": "a", "end_key_doc_id": "b"},
])
def test_an_option_and_its_alias_both_given_are_refused(options):
    """``startkey=None`` now means ``null``, so a defaults dict that leaves ``startkey=None``
    beside a caller's ``start_key`` would send both: refused before sending."""
    offline = couchcore.Server("http://127.0.0.1:9", retries=0, connect_timeout=0.5)._database("x")
    with pytest.raises(couchcore.InvalidOption, match="alias"):
        offline.view("n/by_k", **options)
    # either spelling alone, or a plain docid alias left out with None, is fine
    assert codec.view_query({"startkey_docid": None, "start_key_doc_id": "b"})[0] == [("start_key_doc_id", "b")]
    assert codec.view_query({"start_key": codec.NOT_GIVEN, "startkey": None})[0] == [("startkey", "null")]


def test_get_many_ids_is_unaffected_by_null_keys(db):
    make_nulls(db, 2)
    docs = db.get(["z00", "nope", "z01"])
    assert [d["_id"] if d else None for d in docs] == ["z00", None, "z01"]


# -- 2. design-function output that is not JSON ------------------------------------------

FUNCS = {
    "_id": "_design/f",
    "views": {"by_n": {"map": "function(doc){ if (doc.n !== undefined) emit(doc.n, null); }"}},
    "lists": {
        # no content type set: CouchDB labels the output application/json
        "plain": "function(head, req){ send('head'); var row; while (row = getRow()) { send(row.key); }"
                 " send('tail'); }",
        "lying": "function(head, req){ start({headers: {'Content-Type': 'application/json'}}); send('head');"
                 " var row; while (row = getRow()) { send(row.key); } send('tail'); }",
        "html": "function(head, req){ start({headers: {'Content-Type': 'text/html; charset=utf-8'}});"
                " send('<ul>'); var row; while (row = getRow()) { send('<li>é' + row.key); } send('</ul>'); }",
    },
    "shows": {
        "html": "function(doc, req){ return {body: '<p>' + doc._id + ' é</p>',"
                " headers: {'Content-Type': 'text/html; charset=utf-8'}}; }",
        "lying": "function(doc, req){ return {body: 'not { json', headers: {'Content-Type': 'application/json'}}; }",
        "png": "function(doc, req){ return {base64: 'iVBORw0KGgo=', headers: {'Content-Type': 'image/png'}}; }",
        "json": "function(doc, req){ return {json: {id: doc._id}}; }",
        "accept": "function(doc, req){ provides('html', function(){ return '<b>' + doc._id + '</b>'; });"
                  " provides('json', function(){ return toJSON({id: doc._id}); }); }",
    },
    "updates": {
        "lying": "function(doc, req){ return [null, {body: 'ok!', headers: {'Content-Type': 'application/json'}}]; }",
        "count": "function(doc, req){ doc.count = (doc.count || 0) + 1;"
                 " return [doc, {code: 302, headers: {Location: '/elsewhere'}, body: 'moved'}]; }",
        "accepted": "function(doc, req){ return [null, {code: 202, json: {accepted: true}}]; }",
        "refuse": "function(doc, req){ return [null, {code: 409, json: {error: 'conflict', reason: 'nope'}}]; }",
        "form": "function(doc, req){ return [null, {json: {form: req.form,"
                " type: req.headers['Content-Type'] || null, body: req.body}}]; }",
        "accept": "function(doc, req){ return [null, {body: 'accept=' + req.headers['Accept']}]; }",
    },
}


def make_funcs(db):
    docs = [{"_id": f"d{i}", "n": i} for i in range(10)]
    assert db.save(docs + [dict(FUNCS)]).ok


@pytest.mark.parametrize("name", ["f/plain", "f/lying"])
def test_list_output_that_is_not_json_is_the_raw_body(db, name):
    make_funcs(db)
    result = db.list(name, "by_n")
    assert result.status == 200
    assert result.body == result.raw == b"head0123456789tail"
    assert result.text == "head0123456789tail"
    assert result.content_type == result.headers["Content-Type"].split(";")[0].strip()


def test_list_html_with_a_charset_is_text(db):
    make_funcs(db)
    result = db.list("f/html", "by_n", limit=2)
    assert result.content_type == "text/html" and result.charset == "utf-8"
    assert result.raw == "<ul><li>é0<li>é1</ul>".encode("utf-8") == result.body
    assert result.text == "<ul><li>é0<li>é1</ul>"


def test_show_output_that_is_not_json(db):
    make_funcs(db)
    html = db.show("f/html", "d1")
    assert html.body == "<p>d1 é</p>".encode("utf-8") and html.text == "<p>d1 é</p>"
    assert html.content_type == "text/html" and html.charset == "utf-8"
    lying = db.show("f/lying", "d1")
    assert lying.content_type == "application/json" and lying.body == b"not { json" and lying.text == "not { json"
    assert db.show("f/json", "d2").body == {"id": "d2"}
    assert db.show("f/json", "d2").text.strip() == '{"id":"d2"}'  # the raw JSON text


@pytest.mark.couchdb_only  # PouchDB Server does not decode a show function's base64 body
def test_show_binary_output_has_no_text(db):
    make_funcs(db)
    png = db.show("f/png", "d1")
    assert png.content_type == "image/png" and png.body == b"\x89PNG\r\n\x1a\n" and png.text is None


def test_update_output_that_is_not_json(db):
    make_funcs(db)
    result = db.update("f/lying")
    assert result.body == b"ok!" and result.text == "ok!" and result.content_type == "application/json"


# -- 3. update handlers answering 302 or another status; bodies; headers --------------------


def test_update_answering_302_is_a_result_and_is_applied_once(db):
    make_funcs(db)
    result = db.update("f/count", "d3")
    assert result.status == 302 and result.headers["Location"] == "/elsewhere"
    assert result.body == b"moved"
    assert db.get("d3")["count"] == 1  # applied once, redirect not followed
    assert db.update("f/count", "d3").status == 302 and db.get("d3")["count"] == 2


def test_update_answering_202_and_409(db):
    make_funcs(db)
    accepted = db.update("f/accepted")
    assert accepted.status == 202 and accepted.body == {"accepted": True}
    with pytest.raises(couchcore.Conflict) as exc:
        db.update("f/refuse")
    assert exc.value.reason == "nope"


def test_update_with_a_form_body(db):
    make_funcs(db)
    result = db.update("f/form", form={"a": "1", "b": "é &="})
    assert result.body["form"] == {"a": "1", "b": "é &="}
    assert result.body["type"] == "application/x-www-form-urlencoded"
    as_pairs = db.update("f/form", "d1", form=[("x", "y")])
    assert as_pairs.body["form"] == {"x": "y"}
    via_type = db.update("f/form", body={"a": "1"}, content_type="application/x-www-form-urlencoded")
    assert via_type.body["form"] == {"a": "1"} and via_type.body["body"] == "a=1"
    # the caller's parameters of the form type are kept (they were replaced by the bare type)
    with_charset = db.update("f/form", form={"a": "é"}, content_type="application/x-www-form-urlencoded; charset=utf-8")
    assert with_charset.body["type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert with_charset.body["form"] == {"a": "é"}


def test_update_with_any_body_and_its_content_type(db):
    make_funcs(db)
    text = db.update("f/form", body="a=1", content_type="text/plain;charset=utf-8")
    assert text.body["body"] == "a=1" and text.body["type"] == "text/plain;charset=utf-8"
    raw = db.update("f/form", body=b"<x/>", content_type="application/xml")
    assert raw.body["body"] == "<x/>" and raw.body["type"] == "application/xml"
    as_json = db.update("f/form", body={"j": [1]})
    assert as_json.body["type"] == "application/json" and as_json.body["body"] == '{"j":[1]}'


@pytest.mark.couchdb_only  # PouchDB Server shows the handler a form type when none was sent
def test_update_with_an_untyped_body_sends_no_content_type(db):
    make_funcs(db)
    untyped = db.update("f/form", body="a=1")
    assert untyped.body["body"] == "a=1" and untyped.body["type"] is None and untyped.body["form"] == {}


def test_request_headers_reach_update_show_and_list(db):
    make_funcs(db)
    assert db.update("f/accept", headers={"Accept": "text/x-test"}).body == b"accept=text/x-test"
    assert db.update("f/accept").body == b"accept=*/*"
    assert db.list("f/plain", "by_n", limit=1, headers={"Accept": "text/plain"}).body == b"head0tail"


@pytest.mark.couchdb_only  # PouchDB Server does not choose provides() by Accept
def test_show_provides_is_chosen_by_accept(db):
    make_funcs(db)
    html = db.show("f/accept", "d4", headers={"Accept": "text/html"})
    assert html.content_type == "text/html" and html.body == b"<b>d4</b>"
    as_json = db.show("f/accept", "d4", headers={"Accept": "application/json"})
    assert as_json.content_type == "application/json" and as_json.body == {"id": "d4"}


@pytest.mark.parametrize("kwargs", [
    {"form": "a=1"},
    {"form": {"a": 1}},
    {"form": {"a": "1"}, "body": "x"},
    {"body": object()},
    {"body": "x", "content_type": 5},
    {"headers": {"Accept": 1}},
    {"headers": ["Accept"]},
    {"body": "x", "content_type": "text/plain", "headers": {"Content-Type": "text/html"}},
])
def test_bad_update_arguments_raise_before_sending(kwargs):
    offline = couchcore.Server("http://127.0.0.1:9", retries=0, connect_timeout=0.5)._database("x")
    with pytest.raises(couchcore.InvalidInput):
        offline.update("f/form", **kwargs)


# ---- what every backend sends, and that none follows a redirect (loopback server) ----


def recorder() -> ScriptedServer:
    """Records every request; answers ``{"ok":true}``, or ``302`` to ``/elsewhere`` for a
    target containing ``redirect``."""
    def script(request, conn):
        if "redirect" in request.target:
            return http_response("302 Found", b"moved", content_type="text/plain", headers={"Location": "/elsewhere"})
        if request.method == "GET" and request.target == "/db":  # what info() checks it got
            return http_response(200, b'{"db_name":"db"}')
        return http_response(200, b'{"ok":true}')

    return ScriptedServer(script)


def _run_on_every_backend(url: str, call) -> dict[str, object]:
    """``call(db)`` with each sync backend and the async facade; their results by name."""
    import couchcore.tornado as ct

    results: dict[str, object] = {}
    for backend in ("urllib3", "pycurl"):
        server = couchcore.Server(url, auth=("u", "p"), backend=backend)
        try:
            results[backend] = call(server._database("db"))
        finally:
            server.close()

    async def in_loop():
        server = ct.Server(url, auth=("u", "p"))
        try:
            return await call(server._database("db"))
        finally:
            server.close()

    results["tornado"] = asyncio.run(in_loop())
    return results


CALLS = {
    "update with a str body and no content type": lambda db: db.update("d/u", "x", body="a=1"),
    "update without a body": lambda db: db.update("d/u"),
    "update with a form": lambda db: db.update("d/u", "x", form={"a": "1"}),
    "update with bytes and a content type": lambda db: db.update("d/u", body=b"\x00", content_type="a/b"),
    "show with an Accept header": lambda db: db.show("d/s", "x", headers={"Accept": "text/html"}),
    "compact (a POST without a body)": lambda db: db.compact(),
    "database info (a GET)": lambda db: db.info(),
    "an attachment streamed from a file object": lambda db: db.put_attachment(
        {"_id": "x", "_rev": "1-a"}, io.BytesIO(b"0123456789" * 10), "f.bin"),
}


@pytest.mark.parametrize("what", list(CALLS))
def test_every_backend_sends_the_same_request_headers(what):
    with recorder() as server:
        _run_on_every_backend(server.url, CALLS[what])
        assert len(server.requests) == 3
        sent = {}
        for backend, request in zip(("urllib3", "pycurl", "tornado"), server.requests):
            method, target, headers, body = request.method, request.target, request.headers, request.body
            # hop-by-hop framing a backend may choose (Tornado cannot keep connections alive)
            connection = headers.pop("connection", None)
            assert connection in (None, "close", "keep-alive"), (backend, connection)
            sent[backend] = (method, target, headers, body)
        assert sent["urllib3"] == sent["pycurl"] == sent["tornado"], sent
        method, target, headers, body = sent["urllib3"]
        assert headers["user-agent"] == f"couchcore/{couchcore.__version__}"
        if what.startswith("update with a str"):
            assert "content-type" not in headers and body == b"a=1" and method == "PUT"
        if what == "update without a body":
            assert "content-type" not in headers and headers["content-length"] == "0" and method == "POST"
        if what == "update with a form":
            assert headers["content-type"] == "application/x-www-form-urlencoded" and body == b"a=1"
        if what.startswith("show"):
            assert headers["accept"] == "text/html" and method == "GET"


def test_caller_headers_replace_defaults_whatever_their_case():
    """``accept``/``user-agent`` in any case replace couchcore's own (one header each),
    the same on every backend (urllib3 and libcurl used to send both, so CouchDB saw
    ``Accept: application/json, text/html``)."""
    with recorder() as server:
        _run_on_every_backend(server.url, lambda db: db.show(
            "d/s", "x", headers={"accept": "text/html", "user-agent": "me/1", "AUTHORIZATION": "Bearer t"}))
        assert len(server.requests) == 3
        for lines in (r.header_lines for r in server.requests):
            names = [name for name, _ in lines]
            for name, value in (("accept", "text/html"), ("user-agent", "me/1"), ("authorization", "Bearer t")):
                assert names.count(name) == 1 and dict(lines)[name] == value, lines


def test_transport_option_headers_replace_defaults_whatever_their_case():
    """``Server(headers={"user-agent": ...})``: one User-Agent (the caller's) and one Accept
    (the operation's) from every backend; urllib3 and libcurl sent both of each."""
    import couchcore.tornado as ct

    options = {"headers": {"user-agent": "mine/2", "accept": "text/plain", "x-extra": "1"}}
    with recorder() as server:
        for backend in ("urllib3", "pycurl"):
            couchcore.Server(server.url, backend=backend, **options)._database("db").info()

        async def in_loop():
            await ct.Server(server.url, **options)._database("db").info()

        asyncio.run(in_loop())
        assert len(server.requests) == 3
        for lines in (r.header_lines for r in server.requests):
            names = [name for name, _ in lines]
            for name, value in (("user-agent", "mine/2"), ("accept", "application/json"), ("x-extra", "1")):
                assert names.count(name) == 1 and dict(lines)[name] == value, lines


def test_lower_case_accept_reaches_the_function(db):
    make_funcs(db)
    assert db.update("f/accept", headers={"accept": "text/x-test"}).body == b"accept=text/x-test"


@pytest.mark.parametrize("headers", [
    {"X Y": "1"},                   # not a token: servers drop the connection
    {"X-\u00e9": "1"},
    {"": "1"},
    {"X-A": "\u20ac"},              # not Latin-1: each backend failed its own way
    {"X-A": " padded"},             # Tornado refused it, the others stripped it
    {"X-A": "a\x7fb"},
    {"Content-Length": "5"},        # framing is couchcore's: this one hung until the timeout
    {"transfer-encoding": "chunked"},
    {"Connection": "close"},
])
@pytest.mark.parametrize("call", ["show", "list", "update"])
def test_bad_request_headers_raise_before_sending(call, headers):
    offline = couchcore.Server("http://127.0.0.1:9", retries=0, connect_timeout=0.5)._database("x")
    with pytest.raises(couchcore.InvalidInput):
        if call == "show":
            offline.show("f/s", "d", headers=headers)
        elif call == "list":
            offline.list("f/l", "v", headers=headers)
        else:
            offline.update("f/u", body="a=1", headers=headers)


@pytest.mark.parametrize("headers", [{"Content-Type": "text/plain"}, {"content-type": "application/json"}])
@pytest.mark.parametrize("keys", [None, [1]])
def test_list_and_show_refuse_a_content_type_header(headers, keys):
    """A list with ``keys`` POSTs them as JSON, so a Content-Type header replaced couchcore's
    (CouchDB: 415 bad_content_type); show and list send no body of the caller's."""
    offline = couchcore.Server("http://127.0.0.1:9", retries=0, connect_timeout=0.5)._database("x")
    with pytest.raises(couchcore.InvalidInput, match="Content-Type"):
        offline.list("f/l", "v", headers=headers, **({} if keys is None else {"keys": keys}))
    with pytest.raises(couchcore.InvalidInput, match="Content-Type"):
        offline.show("f/s", "d", headers=headers)


def test_no_backend_follows_a_redirect():
    with recorder() as server:
        results = _run_on_every_backend(server.url, lambda db: db.update("d/redirect", "x", body="a=1"))
        assert [r.target for r in server.requests] == ["/db/_design/d/_update/redirect/x"] * 3
        for backend, result in results.items():
            assert result.status == 302 and result.headers["location"] == "/elsewhere", backend
            assert result.body == b"moved"
        shown = _run_on_every_backend(server.url, lambda db: db.show("d/redirect", "x"))
        assert len(server.requests) == 6 and all(r.status == 302 for r in shown.values())


# -- 4. attachments of an older revision -------------------------------------------------


@pytest.fixture
def revisions(db):
    """One attachment in three revisions: v1, replaced by v2, then deleted.
    Returns ``(doc at rev 1 with the attachment, rev1, rev2, rev3)``."""
    doc = {"_id": "att", "kind": "test"}
    db.put_attachment(doc, b"version one", "a.txt", "text/plain")
    rev1 = doc["_rev"]
    at_rev1 = db.get("att")
    db.put_attachment(doc, b"version two", "a.txt", "text/plain")
    rev2 = doc["_rev"]
    db.delete_attachment(doc, "a.txt")
    return at_rev1, rev1, rev2, doc["_rev"]


def test_get_attachment_at_a_revision(db, revisions):
    at_rev1, rev1, rev2, rev3 = revisions
    assert db.get_attachment("att", "a.txt", rev=rev1) == b"version one"
    assert db.get_attachment("att", "a.txt", rev=rev2) == b"version two"
    with pytest.raises(couchcore.NotFound):
        db.get_attachment("att", "a.txt")  # deleted in the current revision
    with pytest.raises(couchcore.NotFound):
        db.get_attachment("att", "a.txt", rev=rev3)


def test_a_documents_rev_is_the_revision_read(db, revisions):
    at_rev1, rev1, rev2, rev3 = revisions
    assert at_rev1["_rev"] == rev1
    assert db.get_attachment(at_rev1, "a.txt") == b"version one"
    assert db.get_attachment(at_rev1, "a.txt", rev=rev2) == b"version two"  # rev= wins
    assert db.get_attachment({"_id": "att", "_rev": rev2}, "a.txt") == b"version two"


def test_open_attachment_at_a_revision(db, revisions):
    at_rev1, rev1, rev2, rev3 = revisions
    with db.open_attachment("att", "a.txt", rev=rev2) as stream:
        assert b"".join(stream) == b"version two"
    with db.open_attachment(at_rev1, "a.txt") as stream:
        assert stream.read() == b"version one"
    with pytest.raises(couchcore.NotFound):
        db.open_attachment({"_id": "att", "_rev": rev3}, "a.txt")


@pytest.mark.parametrize("rev", ["", 3, b"1-abc"])
def test_bad_attachment_rev_raises_before_sending(rev):
    offline = couchcore.Server("http://127.0.0.1:9", retries=0, connect_timeout=0.5)._database("x")
    with pytest.raises(couchcore.InvalidInput):
        offline.get_attachment("att", "a.txt", rev=rev)
    with pytest.raises(couchcore.InvalidInput):
        offline.open_attachment("att", "a.txt", rev=rev)


# -- 5. small endpoints --------------------------------------------------------------------


@pytest.fixture
def four_dbs(server):
    prefix = "scen-" + couchcore._api.os.urandom(4).hex()
    names = [f"{prefix}-{c}" for c in "abcd"]
    for name in names:
        server.create(name)
    yield names
    for name in names:
        try:
            server.delete(name)
        except couchcore.NotFound:
            pass


@pytest.mark.couchdb_only  # PouchDB Server's _all_dbs ignores every option
def test_all_dbs_options(server, four_dbs):
    a, b, c, d = four_dbs
    assert server.all_dbs(start_key=b, end_key=c) == [b, c]
    assert server.all_dbs(start_key=a, limit=2) == [a, b]
    assert server.all_dbs(start_key=a, end_key=d, skip=1, limit=2) == [b, c]
    assert server.all_dbs(start_key=d, end_key=a, descending=True) == [d, c, b, a]
    everything = server.all_dbs()
    assert set(four_dbs) <= set(everything) and everything == sorted(everything)


@pytest.mark.parametrize("kwargs", [{"limit": -1}, {"skip": "1"}, {"descending": 1}, {"start_key": {1}},
                                    {"limit": True}])
def test_all_dbs_bad_options_raise_before_sending(kwargs):
    offline = couchcore.Server("http://127.0.0.1:9", retries=0, connect_timeout=0.5)
    with pytest.raises(couchcore.InvalidInput):
        offline.all_dbs(**kwargs)


@pytest.mark.couchdb_only  # PouchDB Server has no _revs_limit
def test_revs_limit_get_and_set(db):
    assert db.revs_limit() == 1000
    assert db.revs_limit(7) is None
    assert db.revs_limit() == 7


@pytest.mark.parametrize("n", [0, -1, True, "5", 2.5])
def test_revs_limit_bad_values_raise_before_sending(n):
    offline = couchcore.Server("http://127.0.0.1:9", retries=0, connect_timeout=0.5)._database("x")
    with pytest.raises(couchcore.InvalidInput):
        offline.revs_limit(n)


@pytest.mark.couchdb_only  # PouchDB Server has no /_node/_local/_config/_reload
def test_config_reload(server):
    assert server.config_reload() is True


def test_session(server, couch_url):
    from couchcore._urls import split_credentials

    _, user, _ = split_credentials(couch_url)
    info = server.session()
    assert info["ok"] is True
    assert info["userCtx"]["name"] == user and "_admin" in info["userCtx"]["roles"]
    assert "authenticated" in info["info"]


def test_session_anonymous(couch_url):
    from couchcore._urls import split_credentials

    base, _, _ = split_credentials(couch_url)
    anonymous = couchcore.Server(base, backend="urllib3")
    try:
        assert anonymous.session()["userCtx"]["name"] is None
    finally:
        anonymous.close()


# -- the async facade runs the same operations ----------------------------------------------


@pytest.fixture
def plain_db(couch_url):
    """A fresh database through the default backend only (for the async test, which
    the backend-parametrized ``db`` fixture would run twice)."""
    server = couchcore.Server(couch_url)
    database = server.create("scen-" + couchcore._api.os.urandom(6).hex(), n=1)  # one copy: see ``db``
    yield database
    server.delete(database.name)
    server.close()


def test_async_facade_new_operations(couch_url, plain_db, is_couchdb):
    """``couchcore.tornado`` gets every new operation from api.py unchanged."""
    import couchcore.tornado as ct

    db = plain_db
    make_funcs(db)
    nulls = make_nulls(db, 2)
    doc = {"_id": "att"}
    db.put_attachment(doc, b"one", "a.txt")
    rev1 = doc["_rev"]
    db.put_attachment(doc, b"two", "a.txt")

    async def main():
        server = ct.Server(couch_url)
        try:
            adb = server._database(db.name)
            assert [r.id for r in await (await adb.view("n/by_k", key=None)).aall()] == nulls
            moved = await adb.update("f/count", "d1")
            assert moved.status == 302 and moved.headers["location"] == "/elsewhere"
            formed = await adb.update("f/form", form={"a": "b"})
            assert formed.body["form"] == {"a": "b"}
            listed = await adb.list("f/plain", "by_n", startkey=5, limit=2)
            assert listed.body == b"head56tail" and listed.text == "head56tail"
            assert await adb.get_attachment("att", "a.txt", rev=rev1) == b"one"
            assert await (await adb.open_attachment({"_id": "att", "_rev": rev1}, "a.txt")).aread() == b"one"
            assert (await server.session())["userCtx"]["roles"]
            assert db.name in await server.all_dbs(start_key=db.name, end_key=db.name) or not is_couchdb
            if is_couchdb:
                assert await server.all_dbs(start_key=db.name, end_key=db.name) == [db.name]
                assert await adb.revs_limit(5) is None and await adb.revs_limit() == 5
                assert await server.config_reload() is True
        finally:
            server.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert db.get("d1")["count"] == 1


# -- Result on canned responses (no server) ---------------------------------------------------


@pytest.mark.parametrize("content_type, raw, body, text, charset", [
    ("application/json", b'{"a":1}', {"a": 1}, '{"a":1}', "utf-8"),
    ("application/json", b"head0tail", b"head0tail", "head0tail", "utf-8"),
    ("application/json; charset=utf-8", b"", b"", "", "utf-8"),
    ("application/vnd.x+json", b"[1]", [1], "[1]", "utf-8"),
    ("text/html; charset=ISO-8859-1", "é".encode("latin-1"), "é".encode("latin-1"), "é", "iso-8859-1"),
    ('text/plain; charset="utf-8"', "☃".encode(), "☃".encode(), "☃", "utf-8"),
    ("text/csv", b"1,2\n", b"1,2\n", "1,2\n", "utf-8"),
    ("image/png", b"\x89PNG", b"\x89PNG", None, None),
    ("application/octet-stream; charset=x-unknown-charset", b"x", b"x", None, "x-unknown-charset"),
    (None, b"moved", b"moved", None, None),
])
def test_result_of_canned_responses(content_type, raw, body, text, charset):
    headers = {"Content-Type": content_type} if content_type else {}
    result = couchcore.Result(raw, headers, 200)
    assert result.raw == raw and result.body == body and result.text == text and result.charset == charset
    assert result.content_type == (content_type or "").split(";")[0].strip().lower()
    assert result.headers.get("content-type") == content_type  # case-insensitive


def test_update_operation_on_canned_responses():
    """The sans-I/O operation: the request it builds, and a 302 answer as a Result."""
    from couchcore.protocol import views
    from couchcore.protocol.messages import Response
    from couchcore.protocol.server import ServerContext

    op = views.update_fn(ServerContext(), "db", "app/edit", "a b", form=[("x", "1 2"), ("y", "é")], options={"q": None, "r": 2})
    request = next(op)
    assert (request.method, request.target) == ("PUT", "/db/_design/app/_update/edit/a%20b?r=2")
    assert request.headers == {"Accept": "*/*", "Content-Type": "application/x-www-form-urlencoded"}
    assert request.body == b"x=1+2&y=%C3%A9"
    with pytest.raises(StopIteration) as stop:
        op.send(Response(302, [("Location", "/x"), ("Content-Type", "text/plain")], body=b"moved"))
    result = stop.value.value
    assert (result.status, result.headers["location"], result.body, result.text) == (302, "/x", b"moved", "moved")
    op = views.update_fn(ServerContext(), "db", "app/edit", headers={"Accept": "text/html", "X-A": "b"})
    request = next(op)
    assert request.method == "POST" and request.body == b""
    assert request.headers == {"Accept": "text/html", "X-A": "b"}  # no Content-Type: none decided
    with pytest.raises(couchcore.ServerError):
        op.send(Response(500, [("Content-Type", "application/json")], body=b'{"error":"x","reason":"y"}'))
