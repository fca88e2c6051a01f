"""Round 28c, the three findings of benchmarks/results/reviewer-r28c.md. Each test of a fix failed
before it (a tar copy of the tree with the previous files) and passes on PouchDB Server and on
Apache CouchDB 3.5; ``couchdb_only`` marks what PouchDB Server cannot do (partitioned
databases). The controls say what held before too."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import quote

import pytest

from couchcore.bulk import Rejected
from tests.helpers import unique_name
from tests.integration.test_bulk import proxied


@pytest.fixture
def db(one_copy_db):
    """One copy per shard (n=1): _all_docs and views right after a write see it on a cluster too."""
    return one_copy_db


def run_cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "couchcore.cli", *map(str, args)], capture_output=True,
                          timeout=timeout)


def db_url(couch_url: str, name: str) -> str:
    return f"{couch_url.rstrip('/')}/{name}"


def stored(db) -> dict:
    return {row.id: {k: v for k, v in row.doc.items() if k != "_rev"}
            for row in db.view("_all_docs", include_docs=True)}


# -- 1: a rejects file is JSON Lines whatever the input's layout ----------------------------------
# `couchcore load --rejects FILE` promises a file that "can be loaded again as it is"; an element of
# an indented JSON array was copied as it was, over several lines, and loading the file again
# rejected each of those lines as invalid_json. Each record is one line now: JSON text that spans
# lines loses the whitespace between its tokens (every string and number kept as it was), JSON
# text on one line is kept byte for byte.

_ELEMENT = {"_id": "j2", "text": "two  spaces, a \"quote\", an escaped\nnewline and caf\u00e9", "price": 1.50,
            "n": [1, {"deep": True}], "none": None}


def _indented_array(newline: str) -> bytes:
    docs = [{"_id": "j1", "a": 1}, _ELEMENT, {"_id": "j3", "a": 3}]
    return json.dumps(docs, indent=2, ensure_ascii=False).replace("\n", newline).replace("1.5", "1.50").encode()


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_rejected_element_of_an_indented_json_array_is_one_line_and_loads_again(
        tmp_path, couch_url, db, newline):
    db.save({"_id": "j2", "was": "here"})  # a create-only load refuses j2 as a conflict
    source = tmp_path / "docs.json"
    source.write_bytes(_indented_array(newline))
    rejects = tmp_path / "rejects.jsonl"
    proc = run_cli("load", db_url(couch_url, db.name), source, "--rejects", rejects, "--quiet")
    assert proc.returncode == 1, proc.stderr
    lines = rejects.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 2, lines  # one record, one line
    record = json.loads(lines[0])
    assert record["_load_error"]["error"] == "conflict" and record["_load_error"]["line"] == 6
    assert {k: v for k, v in record.items() if k != "_load_error"} == _ELEMENT
    # the tokens as they were: the number's spelling, the string's escapes and non-ASCII text
    assert b'"price":1.50' in lines[0]
    assert b'"text":"two  spaces, a \\"quote\\", an escaped\\nnewline and caf\xc3\xa9"' in lines[0]
    # the user deletes what was in the way and loads the rejects file again, as it is
    current = db.get("j2")
    db.delete(current)
    again = run_cli("load", db_url(couch_url, db.name), rejects, "--rejects", tmp_path / "again.jsonl", "--quiet")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.jsonl").read_bytes() == b""
    assert stored(db)["j2"] == _ELEMENT


def test_a_one_line_document_is_kept_byte_for_byte(tmp_path, couch_url, db):
    """Control (held before): JSON Lines input is one line per document already; its record
    keeps the document's text exactly (spaces, tabs, number spelling)."""
    db.save({"_id": "k", "was": "here"})
    line = b'{"_id": "k",\t "price": 1.50,  "s": "a  b"}'
    source = tmp_path / "docs.jsonl"
    source.write_bytes(line + b"\n")
    rejects = tmp_path / "rejects.jsonl"
    proc = run_cli("load", db_url(couch_url, db.name), source, "--rejects", rejects, "--quiet")
    assert proc.returncode == 1, proc.stderr
    record = rejects.read_bytes()
    assert record.count(b"\n") == 1 and record.endswith(b'"_id": "k",\t "price": 1.50,  "s": "a  b"}\n'), record


def test_rejected_record_of_json_text_over_lines():
    """``Rejected.record()`` itself (the library's rejects records): one line for text that spans
    lines, each token as it was; text on one line as it was."""
    text = b'{\r\n  "_id" : "x",\n\t"s": "a \\"}\\" {\\\\",\n  "n": -1.0e+2,\n  "e": {\n  }\n}\n'
    record = Rejected(3, "x", "conflict", "Document update conflict.", text).record()
    assert b"\n" not in record and b"\r" not in record
    assert record == (b'{"_load_error":{"line":3,"error":"conflict","reason":"Document update conflict."},'
                      b'"_id":"x","s":"a \\"}\\" {\\\\","n":-1.0e+2,"e":{}}')
    assert json.loads(record)["s"] == 'a "}" {\\'
    one = b'{ "_id" : "x",  "n": 1.50 }'
    assert Rejected(1, "x", "conflict", None, one).record().endswith(b',"_id" : "x",  "n": 1.50 }')
    empty = b"{\n}"
    assert json.loads(Rejected(1, None, "conflict", None, empty).record()) == {
        "_load_error": {"line": 1, "error": "conflict", "reason": None}}


def test_a_csv_row_with_a_quoted_newline_is_one_line(tmp_path, couch_url, db):
    """Control (held before): CSV rows become documents, re-serialised: one line each."""
    db.save({"_id": "c1", "was": "here"})
    source = tmp_path / "docs.csv"
    source.write_bytes(b'_id,text\r\nc1,"two\r\nlines"\r\nc2,ok\r\n')
    rejects = tmp_path / "rejects.jsonl"
    proc = run_cli("load", db_url(couch_url, db.name), source, "--rejects", rejects, "--quiet")
    assert proc.returncode == 1, proc.stderr
    lines = rejects.read_bytes().split(b"\n")
    assert len(lines) == 2 and json.loads(lines[0])["text"] == "two\r\nlines"


# -- 2: couchcore build-view builds a partitioned view --------------------------------------------
# A view of a partitioned design document can only be queried through a partition
# (/{db}/_partition/{p}/_design/{ddoc}/_view/{v}); CouchDB answered build-view's plain query with
# 400 query_parse_error "`partition` parameter is mandatory", exit 2. CouchDB indexes each shard
# on its own, so build_view now queries one partition of each shard range (GET /{db}/_shards,
# GET /{db}/_shards/{p}:x). https://docs.couchdb.org/en/stable/partitioned-dbs/index.html ,
# https://docs.couchdb.org/en/stable/api/database/shard.html

PARTS = [f"s{i}" for i in range(30)]


@pytest.fixture
def partitioned(server):
    name = unique_name("r28c-part")
    db = server.create(name, partitioned=True, q=4, n=1)
    try:
        assert db.save([{"_id": f"{p}:{j}", "n": j} for p in PARTS for j in range(3)]).ok
        assert db.save([{"_id": "_design/v", "views": {"n": {"map": "function(d){ emit(d.n, null) }"}}},
                        {"_id": "_design/g", "options": {"partitioned": False},
                         "views": {"n": {"map": "function(d){ emit(d.n, null) }"}}}]).ok
        yield db
    finally:
        server.delete(name)


def _couch_get(couch_url: str, path: str) -> object:
    """CouchDB's JSON answer to a raw ``GET path`` (no couchcore in between)."""
    import base64
    import urllib.request

    from couchcore._urls import split_credentials

    base, user, password = split_credentials(couch_url)
    request = urllib.request.Request(base.rstrip("/") + path)
    if user is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.mark.couchdb_only
def test_build_view_queries_one_partition_of_each_shard_range(couch_url, partitioned, backend):
    proxy, via = proxied(partitioned, backend)
    try:
        out = via.build_view("v/n", timeout=120)
        seen = list(proxy.seen)
    finally:
        proxy.close()
    assert out["view"] == "v/n"
    prefix = f"/{partitioned.name}/_partition/"
    queried = [target[len(prefix):].split("/", 1)[0] for method, target in seen
               if method == "GET" and target.startswith(prefix) and "/_design/v/_view/n" in target]
    shards = _couch_get(couch_url, f"/{partitioned.name}/_shards")["shards"]
    assert len(shards) == 4
    ranges = [_couch_get(couch_url, f"/{partitioned.name}/_shards/{quote(p + ':x', safe='')}")["range"]
              for p in queried]
    assert sorted(ranges) == sorted(shards), (queried, ranges)  # each range once
    # every shard's index holds its documents now: read without building
    rows = sum(len(partitioned.partition(p).view("v/n", update="false").all()) for p in PARTS)
    assert rows == len(PARTS) * 3


@pytest.mark.couchdb_only
def test_cli_builds_a_partitioned_view(couch_url, partitioned):
    proc = run_cli("build-view", db_url(couch_url, partitioned.name), "_design/v/_view/n")
    assert proc.returncode == 0, proc.stderr
    assert b"built _design/v/_view/n in" in proc.stderr and b"admin:" not in proc.stderr
    rows = sum(len(partitioned.partition(p).view("v/n", update="false").all()) for p in PARTS)
    assert rows == len(PARTS) * 3


@pytest.mark.couchdb_only
def test_a_global_view_of_a_partitioned_database_is_queried_as_it_is(partitioned, backend):
    """Control (held before): a design document with ``"partitioned": false`` is one query."""
    proxy, via = proxied(partitioned, backend)
    try:
        assert via.build_view("g/n", timeout=120)["attempts"] == 1
        seen = list(proxy.seen)
    finally:
        proxy.close()
    assert not [t for _, t in seen if "/_partition/" in t or "/_shards" in t], seen


def test_cli_errors_start_with_the_command_and_help_lists_exit_statuses(couch_url, db):
    proc = run_cli("build-view", db_url(couch_url, db.name), "nope/n", "--quiet")
    assert proc.returncode == 2
    err = proc.stderr.decode().strip()
    assert err.startswith("couchcore build-view: ") and len(err.splitlines()) == 1, err
    assert "admin:" not in err
    proc = run_cli("build-view", db_url(couch_url, db.name), "not-a-view-name")
    assert proc.returncode == 2 and proc.stderr.decode().startswith("couchcore build-view: invalid view name")
    usage = run_cli("build-view", "--help")
    assert usage.returncode == 0
    text = " ".join(usage.stdout.decode().split())
    assert "Exit status: 0 built, 1 --timeout expired first" in text and "2 could not run" in text, text
    assert "130 interrupted" in text and "partitioned" in text


# -- 3: merge of several stale writes of one id ---------------------------------------------------
# save([edit1_of_m, edit2_of_m]) with both stale: CouchDB refuses both (two conflict rows). The
# resolution's merge(fn) re-applied only the later one and reported ok: the earlier was in
# pending["m"]["others"], never merged. merge now calls fn once per write of the id in the caller's
# order, each on the result so far, and writes the result once; overwrite()/resolve() write the
# last one, which supersedes the earlier ones (as writing the list one at a time would).


def _append(mine, theirs):
    return {**theirs, "l": theirs["l"] + mine["l"]}


def _two_stale_edits(db):
    db.save({"_id": "m", "l": []})
    stale = dict(db.get("m"))
    db.save({**db.get("m"), "l": ["s"]})
    first, second = {**stale, "l": ["a"]}, {**stale, "l": ["b"]}
    return first, second


def test_merge_applies_every_stale_write_of_an_id_in_order(db):
    first, second = _two_stale_edits(db)
    resolution = db.save([first, second])
    assert list(resolution.pending) == ["m"] and resolution.pending["m"]["doc"] is second
    assert [e["doc"] for e in resolution.pending["m"]["others"]] == [first]
    calls = []

    def fn(mine, theirs):
        calls.append((list(mine["l"]), list(theirs["l"])))
        return _append(mine, theirs)

    again = resolution.merge(fn)
    assert again.ok and not again.pending, again.pending
    assert calls == [(["a"], ["s"]), (["b"], ["s", "a"])]
    assert db.get("m")["l"] == ["s", "a", "b"]
    assert again.resolved["m"] is second and second["l"] == ["s", "a", "b"] and second["_rev"] == db.get("m")["_rev"]


def test_save_with_merge_applies_every_stale_write_of_an_id(db):
    first, second = _two_stale_edits(db)
    resolution = db.save([first, second], merge=_append)
    assert resolution.ok, resolution.pending
    assert db.get("m")["l"] == ["s", "a", "b"]


def test_a_write_the_merge_skips_stays_pending(db):
    first, second = _two_stale_edits(db)
    resolution = db.save([first, second])
    again = resolution.merge(lambda mine, theirs: None if mine["l"] == ["a"] else _append(mine, theirs))
    assert db.get("m")["l"] == ["s", "b"]
    assert again.resolved["m"] is second
    assert list(again.pending) == ["m"] and again.pending["m"]["doc"] is first
    assert again.pending["m"]["error"] == "conflict" and "others" not in again.pending["m"]
    last = again.merge(_append)  # merged later, onto what the server holds then
    assert last.ok and db.get("m")["l"] == ["s", "b", "a"]


def test_a_merge_skipping_every_write_leaves_the_id_pending_as_it_was(db):
    first, second = _two_stale_edits(db)
    resolution = db.save([first, second])
    again = resolution.merge(lambda mine, theirs: None)
    assert again.pending["m"]["doc"] is second and [e["doc"] for e in again.pending["m"]["others"]] == [first]
    assert db.get("m")["l"] == ["s"]


@pytest.mark.parametrize("how", ["overwrite", "resolve"])
def test_overwrite_and_resolve_write_the_last_write_of_an_id(db, how):
    """Control of the documented rule: the later write of an id supersedes the earlier ones."""
    first, second = _two_stale_edits(db)
    resolution = db.save([first, second])
    if how == "resolve":
        second["_rev"] = db.get("m")["_rev"]  # the caller brings the last one up to date
    again = getattr(resolution, how)()
    assert again.ok and db.get("m")["l"] == ["b"]


def test_resolve_refused_again_keeps_every_write_pending(db):
    first, second = _two_stale_edits(db)
    resolution = db.save([first, second])
    again = resolution.resolve()  # sent as it is: stale again
    assert again.pending["m"]["doc"] is second and again.pending["m"]["error"] == "conflict"
    assert [e["doc"] for e in again.pending["m"]["others"]] == [first]


def test_the_docstrings_say_what_happens_to_several_writes_of_an_id():
    from couchcore.models import ConflictResolution
    from couchcore.protocol.shapes import PendingWrite

    merge_doc = " ".join(ConflictResolution.merge.__doc__.split())
    assert "once per write of an id" in merge_doc and "in the caller's order" in merge_doc
    assert "supersedes" in " ".join(ConflictResolution.overwrite.__doc__.split())
    assert "merge" in " ".join(PendingWrite.__doc__.split()) and "in turn" in " ".join(PendingWrite.__doc__.split())
    assert "merges each of them in turn" in " ".join(ConflictResolution.__doc__.split())
