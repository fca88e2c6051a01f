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
