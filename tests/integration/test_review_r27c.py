"""Round 27, fixes of reviewer-round-r27.md findings 1, 2, 5, 6, 7 and 8 (3 and 4 are
elsewhere; the pure tests are in tests/unit/test_review_r27c.py). Each test failed before its
fix (a tar copy of the tree with the previous files) and passes on PouchDB Server and on
Apache CouchDB 3.5; ``couchdb_only`` marks what PouchDB Server answers differently."""

from __future__ import annotations

import multiprocessing

import pytest

import couchcore
from couchcore import bulk


@pytest.fixture
def db(one_copy_db):
    """One copy per shard (n=1): _all_docs right after a write sees it on a cluster too."""
    return one_copy_db


# -- reviewer finding 2: a load's LoadInputError (and every couchcore error) crosses a Pool --------
# the parent unpickles a worker's exception; LoadInputError could not be rebuilt, so the Pool's
# result thread died and get() waited for ever, the report lost

def _failing_input():
    yield {"_id": "a", "n": 1}
    yield {"_id": "b", "n": 2}
    raise ValueError("bad input row")


def _load_in_child(db):
    return bulk.load(db, _failing_input())


def _conflict_in_child(db):
    db.save({"_id": "a", "n": 3})  # "a" exists: 409


def test_load_input_error_reaches_the_pool_parent(db):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result = pool.apply_async(_load_in_child, (db,))
        with pytest.raises(bulk.LoadInputError) as info:
            result.get(timeout=120)
        # a Conflict raised by save() in the worker arrives with its resolution
        result = pool.apply_async(_conflict_in_child, (db,))
        with pytest.raises(couchcore.Conflict) as conflict:
            result.get(timeout=120)
    exc = info.value
    assert (exc.report.read, exc.report.written, exc.report.rejected) == (2, 2, 0)
    assert type(exc.error) is ValueError and str(exc.error) == "bad input row"  # (__cause__: the Pool's RemoteTraceback)
    assert "the input raised ValueError: bad input row" in str(exc)
    assert sorted(r.id for r in db.view("_all_docs")) == ["a", "b"]
    resolution = conflict.value.resolution
    assert list(resolution.pending) == ["a"] and resolution.pending["a"]["error"] == "conflict"
    assert conflict.value.status == 409 and conflict.value.url.endswith(f"/{db.name}/_bulk_docs")
    # the resolution works in the parent (its Database rebuilt from the pickle)
    assert resolution.overwrite().ok and db.get("a")["n"] == 3
