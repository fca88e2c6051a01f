"""save(list)'s C fast paths (couchcore_ext._scan.bulk_ok and plain_ids) change nothing but speed.

``_bulk_write`` and ``save_docs`` are driven by hand (sans-I/O, as tests/unit/test_protocol.py)
twice on deep copies of the same state: once with the C functions, once with them switched off
(the Python path alone), for generated documents and ``_bulk_docs`` answers: the common shape
(CouchDB 3.5's and PouchDB Server's, checked with curl: ``[{"ok":true,"id":"a","rev":"1-..."},...]``)
and near-misses of it. The documents, ``resolved``, ``pending``, ``accepted``, ``failed_here``,
any next request and any exception must be the same.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from couchcore import _scan
from couchcore.models import ConflictResolution, Document
from couchcore.protocol import documents, server
from couchcore.protocol.messages import Response

pytestmark = pytest.mark.skipif(_scan.bulk_ok is None, reason="couchcore_ext not built")

REV = "1-967a00dff5e02add41819138abb3284d"


def common(docs: list[dict[str, Any]], revs: list[str]) -> bytes:
    """The answer as CouchDB 3.5 sends it (raw UTF-8, no spaces, ok/id/rev)."""
    parts = [f'{{"ok":true,"id":{json.dumps(d["_id"], ensure_ascii=False)},"rev":{json.dumps(r)}}}'
             for d, r in zip(docs, revs)]
    return ("[" + ",".join(parts) + "]\n").encode("utf-8", "surrogatepass")


def _index(docs: list[Any], obj: Any) -> Any:
    for i, d in enumerate(docs):
        if d is obj:
            return i
    return ("not a sent doc", obj)


def _state(docs: list[Any], res: ConflictResolution, failed_here: set[str]) -> Any:
    pending = {}
    for k, entry in res.pending.items():
        e = dict(entry)
        e["doc"] = _index(docs, e["doc"])
        if "others" in e:
            e["others"] = [{**o, "doc": _index(docs, o["doc"])} for o in e["others"]]
        pending[k] = e
    return (copy.deepcopy(docs), {k: _index(docs, v) for k, v in res.resolved.items()}, pending,
            set(res.accepted), set(failed_here))


def drive(docs: list[Any], body: bytes, start: Any, fast: bool, status: int = 201,
          new_edits: bool | None = None) -> tuple[Any, bool | None]:
    """Run _bulk_write on copies of ``docs``/``start`` answered with ``body``; the outcome and
    what bulk_ok returned (None: not called)."""
    docs = copy.deepcopy(docs)
    pending, resolved, accepted, failed_here = copy.deepcopy(start)
    res = ConflictResolution(None)
    # (pending/resolved entries refer to the sent documents, as in a real request)
    res.pending.update({k: {**v, "doc": docs[v["doc"]]} for k, v in pending.items()})
    res.resolved.update({k: docs[v] for k, v in resolved.items()})
    res.accepted.update(accepted)
    called: list[bool] = []

    def spy(*args: Any) -> bool:
        called.append(_scan.bulk_ok(*args))  # type: ignore[misc]
        return called[-1]

    monkeypatch = pytest.MonkeyPatch()  # (not the fixture: hypothesis runs many inputs per test)
    monkeypatch.setattr(documents, "_bulk_ok", spy if fast else None)
    options = {} if new_edits is None else {"new_edits": new_edits}
    op = documents._bulk_write(server.ServerContext(), "db", docs, b"[]", res, options, failed_here=failed_here)
    nxt: Any = None
    try:
        req = next(op)
        assert req.method == "POST" and req.path == "/db/_bulk_docs"
        req2 = op.send(Response(status, {"Content-Type": "application/json"}, body=body, method="POST",
                                url="http://127.0.0.1:5984/db/_bulk_docs"))
        nxt = (req2.method, req2.path, req2.body)  # (the settling of an "accepted" write: stop here)
        outcome: Any = "yielded"
    except StopIteration:
        outcome = "done"
    except Exception as exc:  # noqa: BLE001 - compared between the two paths
        outcome = (type(exc).__name__, str(exc))
    monkeypatch.undo()
    return (outcome, nxt, _state(docs, res, failed_here)), (called[0] if called else None)


def same(docs: list[Any], body: bytes, start: Any, **kw: Any) -> bool | None:
    fast, took = drive(docs, body, start, True, **kw)
    slow, _ = drive(docs, body, start, False, **kw)
    assert fast == slow
    return took


NO_STATE: Any = ({}, {}, set(), set())

ids = st.one_of(
    st.text(min_size=1, max_size=12),
    st.sampled_from(["a", "b", "é", "日本", "q\"x", "back\\slash", "tab\tid", "ctl\x01", "😀", "a/b", "sp ace",
                     "\u2028", "partition:x"]),
)
revs = st.one_of(st.just(REV), st.from_regex(r"[0-9]{1,3}-[0-9a-f]{32}", fullmatch=True),
                 st.text(max_size=6))


@st.composite
def batches(draw: Any) -> tuple[list[dict[str, Any]], list[str], Any]:
    n = draw(st.integers(1, 8))
    pool = draw(st.lists(ids, min_size=1, max_size=n, unique=True))
    docs = [{"_id": draw(st.sampled_from(pool)), "v": i} for i in range(n)]
    if draw(st.booleans()):
        docs[draw(st.integers(0, n - 1))]["_rev"] = "1-old"
    rv = [draw(revs) for _ in range(n)]
    known = [d["_id"] for d in docs] + ["other"]
    pending = {k: {"doc": draw(st.integers(0, n - 1)), "error": "conflict", "reason": "r"}
               for k in draw(st.lists(st.sampled_from(known), max_size=3, unique=True))}
    resolved = {k: draw(st.integers(0, n - 1)) for k in draw(st.lists(st.sampled_from(known), max_size=2))}
    accepted = set(draw(st.lists(st.sampled_from(known), max_size=2)))
    failed = set(draw(st.lists(st.sampled_from(known), max_size=2)))
    return docs, rv, (pending, resolved, accepted, failed)


def _result(doc: dict[str, Any], rev: Any) -> dict[str, Any]:
    return {"ok": True, "id": doc["_id"], "rev": rev}


MUTATIONS = [
    "none", "error", "accepted", "reorder", "extra_field", "drop", "duplicate", "ws_inside", "ws_ends",
    "field_order", "escaped_id", "escaped_rev", "ascii_json", "ok_false", "rev_number", "no_rev", "truncated",
    "garbage", "object", "empty", "ok_string", "unicode_rev", "id_prefix", "spaces_json", "crlf",
]


def mutate(kind: str, docs: list[dict[str, Any]], rv: list[str], pick: int) -> bytes:
    n = len(docs)
    k = pick % n
    results: list[Any] = [_result(d, r) for d, r in zip(docs, rv)]
    if kind == "none":
        return common(docs, rv)
    if kind == "error":
        results[k] = {"id": docs[k]["_id"], "error": "conflict", "reason": "Document update conflict."}
    elif kind == "accepted":
        results[k] = {"ok": True, "id": docs[k]["_id"], "rev": rv[k], "accepted": True}
    elif kind == "reorder":
        results = results[k:] + results[:k] if n > 1 else results
        results.reverse()
    elif kind == "extra_field":
        results[k]["x"] = 1
    elif kind == "drop":
        del results[k]
    elif kind == "duplicate":
        results.insert(k, dict(results[k]))
    elif kind == "field_order":
        results[k] = {"id": docs[k]["_id"], "ok": True, "rev": rv[k]}
    elif kind == "ok_false":
        results[k]["ok"] = False
    elif kind == "rev_number":
        results[k]["rev"] = 1
    elif kind == "no_rev":
        del results[k]["rev"]
    elif kind == "object":
        return json.dumps({"ok": True}).encode()
    elif kind == "empty":
        return b"[]"
    elif kind == "ok_string":
        results[k]["ok"] = "true"
    elif kind == "unicode_rev":
        results[k]["rev"] = "1-é"
    elif kind == "id_prefix":
        results[k]["id"] = docs[k]["_id"] + "x"
    text = common(docs, rv).decode("utf-8", "surrogatepass")
    if kind in ("none", "error", "accepted", "reorder", "extra_field", "drop", "duplicate", "field_order",
                "ok_false", "rev_number", "no_rev", "ok_string", "unicode_rev", "id_prefix"):
        text = json.dumps(results, ensure_ascii=False, separators=(",", ":"))
    elif kind == "ws_inside":
        text = text.replace(",", ", ", 1) if pick % 2 else text.replace('":', '": ', 1)
    elif kind == "ws_ends":
        text = " \r\n\t" + text + " \n"
    elif kind == "crlf":
        text = text.rstrip("\n") + "\r\n"
    elif kind == "escaped_id":
        i = text.find('"id":"', pick % len(text))
        i = text.find('"id":"') + 6 if i < 0 else i + 6
        if text[i] not in '\\"' and ord(text[i]) < 0x10000:  # the id's first character as \uXXXX
            text = text[:i] + "\\u%04x" % ord(text[i]) + text[i + 1:]
    elif kind == "escaped_rev":
        text = text.replace("1-", "1\\u002d", 1)
    elif kind == "ascii_json":
        text = json.dumps(results, ensure_ascii=True, separators=(",", ":"))
    elif kind == "spaces_json":
        text = json.dumps(results)
    elif kind == "truncated":
        text = text[: max(1, len(text) * pick % len(text))]
    elif kind == "garbage":
        text = text.rstrip() + "x"
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(), st.sampled_from(MUTATIONS), st.integers(0, 1000), st.sampled_from([None, True, False]))
def test_fast_path_equals_python_path(batch: Any, kind: str, pick: int, new_edits: Any) -> None:
    docs, rv, start = batch
    body = mutate(kind, docs, rv, pick)
    took = same(docs, body, start, new_edits=new_edits)
    plain_revs = all(r and r.isascii() and r.isprintable() and "\\" not in r and '"' not in r for r in rv)
    plain_ids = all("\\" not in d["_id"] and '"' not in d["_id"] and all(ord(c) >= 0x20 for c in d["_id"])
                    for d in docs)
    if kind in ("none", "ws_ends", "crlf") and plain_revs and plain_ids:
        assert took is True  # the common shape is taken by the fast path
    if took:  # only the common shape itself (whitespace around it allowed), never a near-miss
        sent_revs = [r["rev"] for r in json.loads(body)]  # (two results of one id may be swapped)
        assert body.strip(b" \t\r\n") == common(docs, sent_revs).strip()


@pytest.mark.parametrize("docid", ["a", "é", "日本", "😀", "q\"x", "b\\s", "c\x01", "\u2028", "\ud800"])
@pytest.mark.parametrize("form", ["raw", "ascii"])
def test_each_kind_of_id(docid: str, form: str) -> None:
    docs = [{"_id": "first"}, {"_id": docid}, {"_id": "last"}]
    rv = [REV, "2-" + "b" * 32, "3-c"]
    if form == "raw":
        body = common(docs, rv)
    else:
        body = json.dumps([_result(d, r) for d, r in zip(docs, rv)], separators=(",", ":")).encode()
    took = same(docs, body, NO_STATE)
    raw_plain = docid.isascii() and docid.isprintable() and docid not in ('q"x', "b\\s")
    # raw UTF-8 ids (as CouchDB and PouchDB send them) are taken; any escape falls back
    assert took is (form == "raw" and docid not in ('q"x', "b\\s", "c\x01", "\ud800")
                    or form == "ascii" and raw_plain)


def test_written_documents_get_their_rev_and_clear_earlier_failures() -> None:
    docs = [{"_id": "a"}, {"_id": "b", "_rev": "1-x"}, {"_id": "a"}]
    rv = ["1-a", "2-b", "2-a"]
    start = ({"b": {"doc": 1, "error": "conflict", "reason": "r"}, "a": {"doc": 0, "error": "conflict", "reason": "r"}},
             {}, {"b", "zz"}, {"a"})
    fast, took = drive(docs, common(docs, rv), start, True)
    assert took is True and fast == drive(docs, common(docs, rv), start, False)[0]
    outcome, _, (after, resolved, pending, accepted, failed) = fast
    assert [d["_rev"] for d in after] == rv
    assert resolved == {"a": 2, "b": 1} and list(pending) == ["a"] and accepted == {"zz"}


def test_failure_changes_nothing() -> None:
    assert _scan.bulk_ok is not None
    docs = [{"_id": "a"}, {"_id": "b"}]
    good = common(docs, [REV, REV])
    for body in (good[:-3], good.replace(b'"b"', b'"c"'), good.replace(b"[", b"[ ", 1), b"", b"[]",
                 good.replace(b'"ok":true', b'"ok":true,"accepted":true', 1)):
        pending: dict[str, Any] = {"a": {}}
        resolved: dict[str, Any] = {}
        settled = {"b"}
        assert _scan.bulk_ok(docs, body, pending, resolved, settled, set()) is False
        assert docs == [{"_id": "a"}, {"_id": "b"}] and pending == {"a": {}} and not resolved and settled == {"b"}
    assert _scan.bulk_ok([], b"[]", {}, {}, set(), set()) is False
    assert _scan.bulk_ok([{"_id": 1}], b'[{"ok":true,"id":1,"rev":"1-a"}]', {}, {}, set(), set()) is False


# -- save_docs' id check: plain_ids skips the loop over leading plain documents ------------------

class Sub(dict):  # type: ignore[type-arg]
    pass


doc_values = st.one_of(
    st.builds(lambda i: {"_id": i}, st.one_of(ids, st.just(""), st.just("_design/x"), st.just("_x"), st.none(),
                                              st.integers(), st.just(["l"]))),
    st.builds(lambda i: Document(_id=i), ids),
    st.builds(lambda i: Sub(_id=i), ids),
    st.just({"v": 1}),
    st.just({"_id": None, "v": 2}),
)


def _drive_save(docs: list[Any], fast: bool) -> Any:
    docs = copy.deepcopy(docs)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(documents, "_plain_ids", _scan.plain_ids if fast else None)
    monkeypatch.setattr(documents, "_bulk_ok", None)
    op = documents.save_docs(server.ServerContext(uuid_batch=20), "db", docs, None, False)
    sent: list[Any] = []
    try:
        req = next(op)
        while True:
            sent.append((req.method, req.path, req.body))
            if req.path == "/_uuids":
                body = json.dumps({"uuids": [f"u{i}" for i in range(20)]}).encode()
            else:
                body = json.dumps([_result(d, REV) for d in json.loads(req.body)["docs"]]).encode()
            req = op.send(Response(201, {"Content-Type": "application/json"}, body=body))
    except StopIteration as stop:
        res = stop.value
        outcome: Any = (sorted(res.resolved), sorted(res.pending.items(), key=lambda kv: str(kv[0])).__repr__())
    except Exception as exc:  # noqa: BLE001 - compared between the two paths
        outcome = (type(exc).__name__, str(exc))
    monkeypatch.undo()
    return outcome, sent, docs, [type(d) for d in docs]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(doc_values, min_size=1, max_size=6))
def test_plain_ids_equals_the_loop(docs: list[Any]) -> None:
    assert _scan.plain_ids is not None
    first = _scan.plain_ids(docs, Document)
    expect = next((i for i, d in enumerate(docs)
                   if not (type(d) in (dict, Document) and type(d.get("_id")) is str and d["_id"]
                           and d["_id"][0] != "_")), len(docs))
    assert first == expect
    assert _drive_save(docs, True) == _drive_save(docs, False)
