"""Round 28's leftovers on copying an attachment (reviewer-round-r28c.md): a copy keeps the
source's content type unless one is given, and the target's id, name and content type are
checked before the source stream is read (a stream is read once: a refusal after reading it
left the caller with a used stream and nothing stored)
(https://docs.couchdb.org/en/stable/api/document/attachments.html#put--db-docid-attname)."""

from __future__ import annotations

import pytest

import couchcore


@pytest.fixture
def db(one_copy_db):
    """One copy per shard (n=1): a read right after a write sees it on a cluster too."""
    return one_copy_db


def _source(db: couchcore.Database) -> None:
    db.save({"_id": "src"})
    db.put_attachment(db.get("src"), b"\x89PNG-ish bytes", "logo.png", "image/png")


def test_a_copy_keeps_the_sources_content_type(db):
    _source(db)
    dest = {"_id": "dest"}
    db.save(dest)
    # a name with no known extension: the type used to be guessed from it (octet-stream)
    db.put_attachment(dest, db.open_attachment("src", "logo.png"), "logo-copy")
    assert db.get("dest")["_attachments"]["logo-copy"]["content_type"] == "image/png"
    assert dest["_attachments"]["logo-copy"]["content_type"] == "image/png"
    assert db.get_attachment("dest", "logo-copy") == b"\x89PNG-ish bytes"


def test_a_given_content_type_wins_over_the_sources(db):
    _source(db)
    dest = {"_id": "dest"}
    db.save(dest)
    db.put_attachment(dest, db.open_attachment("src", "logo.png"), "raw", "application/octet-stream")
    assert db.get("dest")["_attachments"]["raw"]["content_type"] == "application/octet-stream"


@pytest.mark.parametrize("doc, filename, content_type, error", [
    ({"no": "id"}, "x", None, couchcore.InvalidDocument),
    ({"_id": "dest"}, "", None, couchcore.InvalidInput),
    ({"_id": "dest"}, "x", "text/plain\r\nX-Injected: 1", couchcore.InvalidInput),
])
def test_a_copy_is_checked_before_the_source_is_read(db, doc, filename, content_type, error):
    _source(db)
    stream = db.open_attachment("src", "logo.png")
    with pytest.raises(error):
        db.put_attachment(doc, stream, filename, content_type)
    assert stream.read() == b"\x89PNG-ish bytes"  # untouched: the caller can still use it


# -- upsert of a document carrying a _rev the target lacks (round 28's leftovers) -------------------
# A _rev is the revision being updated (https://docs.couchdb.org/en/stable/api/database/bulk-api.html):
# for an id the target lacks (or deleted) it conflicts every time; an upsert now creates the document.
# A document carrying _revisions (a dump's line) is refused with a reason saying why and what to do.

def test_an_upsert_creates_a_document_whose_rev_the_target_lacks(db):
    import couchcore.bulk

    db.save({"_id": "gone"})
    db.delete(db.get("gone"))
    report = couchcore.bulk.load(db, [{"_id": "new", "_rev": "3-" + "a" * 32, "v": 1},
                                      {"_id": "gone", "_rev": "1-" + "b" * 32, "v": 2}], upsert=True)
    assert report.written == 2 and not report.failures, report.failures
    assert db.get("new")["v"] == 1 and db.get("gone")["v"] == 2


def test_an_upsert_refuses_a_dump_line_saying_why(db):
    import couchcore.bulk

    db.save({"_id": "a", "v": "target"})
    line = {"_id": "a", "_rev": "2-" + "c" * 32, "v": "source",
            "_revisions": {"start": 2, "ids": ["c" * 32, "d" * 32]}}
    report = couchcore.bulk.load(db, [line], upsert=True)
    assert report.written == 0 and len(report.failures) == 1
    assert "carries _revisions" in report.failures[0].reason and "new_edits=False" in report.failures[0].reason
    assert db.get("a")["v"] == "target"
