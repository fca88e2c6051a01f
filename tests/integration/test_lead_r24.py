"""Fixes of round 24 found by the lead (each test failed before its fix)."""

from __future__ import annotations

import pytest

import couchcore


def test_open_revs_and_atts_since_take_a_set_of_revisions(db):
    # a set of revisions (e.g. the leaves a caller collected) was refused with
    # "InvalidDocument: cannot serialise as JSON"; open_revs=set() sent open_revs=[] and got the
    # current document back instead of an empty list
    # https://docs.couchdb.org/en/stable/api/document/common.html#get--db-docid
    first = {"_id": "d", "n": 1}
    db.save(first)
    second = {"_id": "d", "_rev": first["_rev"], "n": 2}
    db.save(second)
    as_list = db.get("d", open_revs=[first["_rev"], second["_rev"]], revs=False)
    as_set = db.get("d", open_revs={first["_rev"], second["_rev"]}, revs=False)
    key = lambda item: item["ok"]["_rev"]  # noqa: E731
    assert sorted(as_set, key=key) == sorted(as_list, key=key)
    assert {item["ok"]["_rev"] for item in as_set} == {first["_rev"], second["_rev"]}
    assert db.get("d", open_revs=set()) == []
    assert db.get_many(["d"], open_revs=[]) == [[]]
    assert db.get("d", atts_since={first["_rev"]})["n"] == 2


@pytest.mark.parametrize("value", [5, "1-abc", [1], {"1-a": True}, None])
def test_bad_open_revs_fail_before_sending(db, value):
    with pytest.raises(couchcore.InvalidInput, match="open_revs must be \"all\" or a list of revision strings"):
        db.get("d", open_revs=value)
    with pytest.raises(couchcore.InvalidInput, match="open_revs"):
        db.get_many(["d"], open_revs=value)
    with pytest.raises(couchcore.InvalidInput, match="atts_since must be a list of revision strings"):
        db.get("d", atts_since=value)


@pytest.mark.parametrize("name", ["_design/app", "_design/app/"])
def test_a_design_document_id_is_no_view_name(db, name):
    # view("_design/app") was read as view "app" of a design document named "_design" and
    # answered 404 not_found (missing design document) instead of saying what is wrong
    with pytest.raises(couchcore.InvalidInput, match="invalid view name"):
        db.view(name)
    with pytest.raises(couchcore.InvalidInput):
        db.show(name)



@pytest.mark.parametrize("value", [["x"], {"a": 1}, float("nan"), b"bytes"])
def test_a_config_value_that_is_no_scalar_fails_before_sending(value):
    # said "cannot encode ... as a query parameter", after asking the server for the node's
    # name: nothing listens on this port, so any request would fail with a connection error
    from couchcore.testing import free_port

    server = couchcore.Server(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(couchcore.InvalidInput, match="a config value is a str, int, float or bool"):
        server.config("couchdb/max_dbs_open", value)


def test_a_config_value_is_set_and_read_back(server):
    try:
        server.config("r24lead/flag", True)
        server.config("r24lead/n", 3)
        assert server.config("r24lead") == {"flag": "true", "n": "3"}
    finally:
        server.config("r24lead/flag", delete=True)
        server.config("r24lead/n", delete=True)


def _load(*args, input=None):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "couchcore.cli", "load", *map(str, args)], input=input,
                          capture_output=True, timeout=180)


def test_resume_refuses_an_input_file_rewritten_since_the_checkpoint(tmp_path, couch_url, server, db_name):
    # the same file name, other records of the same length: the loader skipped the first
    # records "confirmed" by the checkpoint (records of the old file) and never loaded the new ones
    source = tmp_path / "docs.jsonl"
    checkpoint = tmp_path / "cp.json"
    url = f"{couch_url}/{db_name}"
    source.write_bytes(b"".join(b'{"_id": "a%d"}\n' % i for i in range(6)))
    proc = _load(url, source, "--create", "--quiet", "--resume", checkpoint)
    assert proc.returncode == 0, proc.stderr
    import json

    size = source.stat().st_size
    assert json.loads(checkpoint.read_bytes())["head"].startswith(f"{size}:")
    source.write_bytes(b"".join(b'{"_id": "b%d"}\n' % i for i in range(6)))
    proc = _load(url, source, "--quiet", "--resume", checkpoint)
    assert proc.returncode == 2
    assert f"first {size} bytes".encode() in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(row.id for row in server[db_name].view("_all_docs")) == [f"a{i}" for i in range(6)]
    # records appended to the same file: resumed, the new ones loaded, nothing sent twice
    source.write_bytes(b"".join(b'{"_id": "a%d"}\n' % i for i in range(9)))
    proc = _load(url, source, "--quiet", "--resume", checkpoint)
    assert proc.returncode == 0, proc.stderr
    assert sorted(row.id for row in server[db_name].view("_all_docs")) == [f"a{i}" for i in range(9)]
    # another --resume file: a new load of the new file (its records conflict with nothing)
    source.write_bytes(b"".join(b'{"_id": "b%d"}\n' % i for i in range(6)))
    proc = _load(url, source, "--quiet", "--resume", tmp_path / "cp2.json")
    assert proc.returncode == 0, proc.stderr
    assert len(list(server[db_name].view("_all_docs"))) == 15
