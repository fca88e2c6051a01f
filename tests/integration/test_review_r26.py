"""Round 26 review: silent wrong results and newcomer faults found by comparing couchcore's
answers with curl against Apache CouchDB 3.5 and with the CouchDB documentation. Each
test failed before its fix (benchmarks/results/reviewer-r26.md)."""

from __future__ import annotations

import asyncio

import pytest

import couchcore
import couchcore.aio
from tests.helpers import async_backends as _async_backends


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


# -- follow(limit=0) -----------------------------------------------------------------------

@pytest.mark.parametrize("one_off", [True, False])
def test_follow_refuses_a_limit_of_zero_per_request(db, one_off):
    # follow's limit is per request: with 0 every answer is empty, pending never reaches 0,
    # so one_off asked again ~350 times a second for ever (and a longpoll follower never
    # delivered the pending changes)
    db.save({"_id": "x"})
    with pytest.raises(couchcore.InvalidOption, match="per request"):
        db.follow(since=0, one_off=one_off, limit=0)
    # limit=1 still pages through everything, one change per request
    assert [c["id"] for c in db.follow(since=0, one_off=True, limit=1)] == ["x"]


@pytest.mark.parametrize("backend_name", _async_backends())
def test_follow_refuses_a_limit_of_zero_per_request_async(couch_url, db, backend_name):
    async def main() -> None:
        adb = couchcore.aio.Database(f"{couch_url}/{db.name}", backend=backend_name)
        with pytest.raises(couchcore.InvalidOption, match="per request"):
            adb.follow(since=0, one_off=True, limit=0)

    asyncio.run(main())
