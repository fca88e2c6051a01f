"""Round 28 review (benchmarks/results/reviewer-r28.md finding 5): ``del db[id]`` and
``db.delete(doc)`` delete one leaf of a document. On a document with conflicts another leaf
becomes the current revision, so the document is still there; the docstrings now say so and
how to remove it (delete every leaf). These tests hold couchcore to what CouchDB documents
(https://docs.couchdb.org/en/stable/replication/conflicts.html)."""

from __future__ import annotations

import pytest

import couchcore


@pytest.fixture
def db(one_copy_db):
    """One copy per shard (n=1): a read right after a write sees it on a cluster too."""
    return one_copy_db


def _conflicted(db: couchcore.Database, docid: str) -> tuple[str, str]:
    """``docid`` with two leaves (written with new_edits=False): (winner, loser) revisions."""
    result = db.save([{"_id": docid, "_rev": "1-aaaa", "v": "a"}, {"_id": docid, "_rev": "1-bbbb", "v": "b"}],
                     new_edits=False)
    assert result.ok, result.pending
    doc = db.get(docid, conflicts=True)
    assert doc is not None and len(doc["_conflicts"]) == 1
    return doc["_rev"], doc["_conflicts"][0]


def test_del_item_of_a_conflicted_document_leaves_the_other_leaf(db):
    winner, loser = _conflicted(db, "c1")
    del db["c1"]
    assert "c1" in db  # the other leaf is the document now, as the docstring says
    doc = db.get("c1", conflicts=True)
    assert doc["_rev"] == loser and "_conflicts" not in doc
    del db["c1"]
    assert "c1" not in db and db.get(["c1"]) == [None]


def test_delete_each_leaf_removes_a_conflicted_document(db):
    winner, loser = _conflicted(db, "c2")
    db.delete({"_id": "c2", "_rev": loser})  # the losing leaf first: the winner stays current
    doc = db.get("c2", conflicts=True)
    assert doc["_rev"] == winner and "_conflicts" not in doc
    db.delete({"_id": "c2", "_rev": winner})
    assert "c2" not in db


def test_the_docstrings_say_a_conflicted_document_survives_one_delete():
    assert "conflicts" in couchcore.Database.__delitem__.__doc__
    assert "leaf" in couchcore.Database.delete.__doc__
