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
