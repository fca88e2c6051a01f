"""Round 28c, the three findings of benchmarks/results/reviewer-r28c.md. Each test of a fix failed
before it (a tar copy of the tree with the previous files) and passes on PouchDB Server and on
Apache CouchDB 3.5; ``couchdb_only`` marks what PouchDB Server cannot do (partitioned
databases). The controls say what held before too."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from couchcore.bulk import Rejected


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
