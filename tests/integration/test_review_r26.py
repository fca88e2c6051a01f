"""Round 26 review: silent wrong results and newcomer faults found by comparing couchcore's
answers with curl against Apache CouchDB 3.5 and with the CouchDB documentation. Each
test failed before its fix (benchmarks/results/reviewer-r26.md)."""

from __future__ import annotations

import pytest

import couchcore


# -- iterview with key= and inclusive_end=False ----------------------------------------------

def _by_k(db) -> None:
    db.save([{"_id": f"d{i}", "k": 2} for i in range(3)] + [{"_id": "e0", "k": 3}]
            + [{"_id": "_design/a", "views": {"by_k": {"map": "function(d){ emit(d.k, null) }"}}}])


@pytest.mark.parametrize("page_size", [1, 2, 10])
@pytest.mark.parametrize(("options", "ids"), [
    # PouchDB Server ignores endkey_docid
    pytest.param({"key": 2, "endkey_docid": "d2", "inclusive_end": False}, ["d0", "d1"],
                 marks=pytest.mark.couchdb_only),
    ({"key": 2, "inclusive_end": False}, []),
    pytest.param({"key": 2, "endkey_docid": "d1"}, ["d0", "d1"], marks=pytest.mark.couchdb_only),
    ({"key": 2, "inclusive_end": True}, ["d0", "d1", "d2"]),
])
def test_iterview_with_key_keeps_inclusive_end(db, is_couchdb, page_size, options, ids):
    # https://docs.couchdb.org/en/stable/api/ddoc/views.html: inclusive_end says whether the
    # end (key, endkey_docid) is included. iterview turned key into startkey = endkey and
    # dropped inclusive_end: key=2, inclusive_end=False gave every row of key 2, where
    # CouchDB (view(), curl) gives none
    _by_k(db)
    got = [r.id for r in db.iterview("a/by_k", page_size=page_size, **options)]
    assert got == ids
    if is_couchdb:  # PouchDB Server ignores inclusive_end next to key
        assert [r.id for r in db.view("a/by_k", **options)] == ids
