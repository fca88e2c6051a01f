"""Reviewer r29 MEDIUM 3 at the byte level: an error row other than a ``keys=`` miss raises
ServerError after the rows before it, whichever row parser reads the body and however the
body is cut into chunks (the ``"error"`` key split between two chunks included); a
``not_found`` row stays data. Real HTTP on loopback (couchcore.testing.ScriptedServer).
CouchDB's error rows: https://docs.couchdb.org/en/stable/config/query-servers.html#query_server_config/reduce_limit
"""

from __future__ import annotations

import json

import pytest

import couchcore
import couchcore._rows
from couchcore import errors
from couchcore.testing import ScriptedServer, http_response

PARSERS = ["python"] + (["cython"] if couchcore._rows._CyRowParser is not None else [])

GOOD = [{"key": ["k", i], "value": i} for i in range(5)]
OVERFLOW = {"key": None, "error": "reduce_overflow_error", "reason": "Reduce output must shrink more rapidly: x"}
MISS = {"key": "nope", "error": "not_found"}
TAIL = [{"key": ["k", 9], "value": 9}]


def _body(rows: list[dict]) -> bytes:
    return ('{"rows":[\r\n' + ",\r\n".join(json.dumps(r, separators=(",", ":")) for r in rows) + "\r\n]}\n").encode()


def _server(body: bytes, step: int) -> ScriptedServer:
    def script(request, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(body), step):
            part = body[i:i + step]
            conn.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        conn.sendall(b"0\r\n\r\n")
        return b""
    return ScriptedServer(script)


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("step", [1, 3, 5, 7, 11, 64, 100000])
def test_an_error_row_raises_after_the_rows_before_it(monkeypatch, parser, step):
    monkeypatch.setattr(couchcore._rows, "BACKEND", parser)
    with _server(_body(GOOD + [OVERFLOW] + TAIL), step) as srv:
        db = couchcore.Database(f"{srv.url}/db", retries=0)
        seen = []
        with pytest.raises(errors.ServerError) as info:
            for row in db.view("_all_docs"):
                seen.append(row.value)
        assert seen == [r["value"] for r in GOOD]  # the rows before it, no error row as data
        assert (info.value.error, info.value.reason) == (OVERFLOW["error"], OVERFLOW["reason"])
        with pytest.raises(errors.ServerError):
            db.view("_all_docs").all()
        db.server.close()


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("step", [1, 9, 100000])
def test_a_document_error_row_of_include_docs_raises(monkeypatch, parser, step):
    # a map result (total_rows first) with include_docs=true: fabric's row for a document it
    # could not open, {"key": id, "error": reason}, raises; the rows before it come first
    good = [{"id": "a", "key": "a", "value": {"rev": "1-x"}, "doc": {"_id": "a", "_rev": "1-x"}}]
    body = b'{"total_rows":3,"offset":0,' + _body(good + [MISS, {"key": "b", "error": "timeout"}])[1:]
    monkeypatch.setattr(couchcore._rows, "BACKEND", parser)
    with _server(body, step) as srv:
        db = couchcore.Database(f"{srv.url}/db", retries=0)
        seen = []
        with pytest.raises(errors.ServerError) as info:
            for row in db.view("_all_docs", keys=["a", "nope", "b"], include_docs=True):
                seen.append((row.key, row.error))
        assert seen == [("a", None), ("nope", "not_found")] and info.value.error == "timeout"
        db.server.close()


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("step", [1, 4, 100000])
def test_a_not_found_row_is_data(monkeypatch, parser, step):
    monkeypatch.setattr(couchcore._rows, "BACKEND", parser)
    with _server(_body(GOOD + [MISS] + TAIL), step) as srv:
        db = couchcore.Database(f"{srv.url}/db", retries=0)
        rows = db.view("_all_docs").all()
        assert [(r.key, r.error) for r in rows][-2:] == [("nope", "not_found"), (["k", 9], None)]
        db.server.close()


def test_get_of_a_list_through_all_docs_raises_at_an_error_row():
    # get([ids], <view option>) reads _all_docs?keys&include_docs: a miss is None, a row CouchDB
    # could not open a document for (fabric's {"key": id, "error": reason}) raises
    body = _body([{"id": "a", "key": "a", "value": {"rev": "1-x"}, "doc": {"_id": "a", "_rev": "1-x"}},
                  MISS, {"key": "b", "error": "timeout"}])
    with ScriptedServer(lambda request, conn: http_response(200, body)) as srv:
        db = couchcore.Database(f"{srv.url}/db", retries=0)
        with pytest.raises(errors.ServerError) as info:
            db.get(["a", "nope", "b"], stale="ok")
        assert info.value.error == "timeout"
        db.server.close()
    ok = _body([{"id": "a", "key": "a", "value": {"rev": "1-x"}, "doc": {"_id": "a", "_rev": "1-x"}}, MISS])
    with ScriptedServer(lambda request, conn: http_response(200, ok)) as srv:
        db = couchcore.Database(f"{srv.url}/db", retries=0)
        assert db.get(["a", "nope"], stale="ok") == [{"_id": "a", "_rev": "1-x"}, None]
        db.server.close()


# -- LOW 4 (in part): valid JSON nested too deep is called that, not "malformed" -------------------


DEEP_DOC = b'{"_id":"deepc","a":' + b"[" * 1500 + b"]" * 1500 + b"}"


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("shape, body", [
    ("view", b'{"total_rows":1,"offset":0,"rows":[{"id":"deepc","key":"deepc","value":{},"doc":' + DEEP_DOC + b"}]}"),
    ("continuous", b'{"seq":"1","id":"deepc","changes":[],"doc":' + DEEP_DOC + b"}\n"),
])
def test_too_deep_json_is_called_too_deep(parser, shape, body):
    p = couchcore._rows.make_parser(shape, parser)
    with pytest.raises(errors.ParseError) as info:
        p.feed(body)
        p.close()
    assert "nested deeper than" in str(info.value) and "malformed" not in str(info.value)


@pytest.mark.parametrize("engine", ["orjson", "simplejson"])
def test_too_deep_json_is_called_too_deep_by_the_codec(engine):
    from couchcore import codec

    pytest.importorskip(engine)
    before = codec.use(engine)
    try:
        with pytest.raises(errors.ParseError, match="nested deeper than"):
            codec.loads(DEEP_DOC)
    finally:
        codec.use(before)
