"""Round 28 review (benchmarks/results/reviewer-r28.md finding 5): ``del db[id]`` and
``db.delete(doc)`` delete one leaf of a document. On a document with conflicts another leaf
becomes the current revision, so the document is still there; the docstrings now say so and
how to remove it (delete every leaf). These tests hold couchcore to what CouchDB documents
(https://docs.couchdb.org/en/stable/replication/conflicts.html)."""

from __future__ import annotations

import asyncio
import os

import pytest

import couchcore
import couchcore.aio


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


# -- an open_attachment() stream as put_attachment() content (reviewer-round-r28, "also seen") ----
# It has read() and so counted as a file object, but read() took no size: sync urllib3 raised
# TypeError ("read() takes 1 positional argument but 2 were given"), sync pycurl OutcomeUnknown
# (curl error 42), whose message said the upload may have been applied. read(size) now reads it
# like a binary file, so an attachment is copied without holding it in memory
# (https://docs.couchdb.org/en/stable/api/document/attachments.html#put--db-docid-attname)

BLOB = bytes(range(256)) * 12_289  # ~3 MB: several chunks on every backend


def test_an_attachment_stream_is_put_attachment_content(db):
    src = {"_id": "src"}
    db.save(src)
    db.put_attachment(src, BLOB, "blob.bin", "application/x-test")
    dest = {"_id": "dest"}
    db.save(dest)
    with db.open_attachment("src", "blob.bin") as stream:
        db.put_attachment(dest, stream, "copy.bin", stream.content_type)
    assert db.get_attachment("dest", "copy.bin") == BLOB
    stub = db.get("dest")["_attachments"]["copy.bin"]
    assert stub["length"] == len(BLOB) and stub["content_type"] == "application/x-test"


def test_read_with_a_size_reads_like_a_binary_file(db):
    doc = {"_id": "r"}
    db.save(doc)
    db.put_attachment(doc, BLOB, "blob.bin")
    stream = db.open_attachment("r", "blob.bin")
    first = stream.read(1000)
    second = stream.read(70_000)
    assert (len(first), len(second)) == (1000, 70_000)
    rest = stream.read()
    assert first + second + rest == BLOB
    assert stream.read(10) == b"" and stream.read(10) == b""  # at the end, as a file
    with pytest.raises(couchcore.StreamConsumed):
        stream.read()  # the one pass is used: a whole read gets nothing more, said so
    with pytest.raises(couchcore.StreamConsumed):
        list(stream)


def test_a_small_read_size_returns_every_byte(db):
    doc = {"_id": "s"}
    db.save(doc)
    db.put_attachment(doc, BLOB[:50_000], "small.bin")
    stream = db.open_attachment("s", "small.bin")
    pieces = []
    while True:
        piece = stream.read(4096)
        if not piece:
            break
        assert len(piece) <= 4096
        pieces.append(piece)
    assert b"".join(pieces) == BLOB[:50_000] and all(len(p) == 4096 for p in pieces[:-1])


def test_an_async_attachment_stream_as_content_is_refused_clearly(db, couch_url):
    doc = {"_id": "a"}
    db.save(doc)
    db.put_attachment(doc, b"abc", "a.txt")

    async def main() -> None:
        async with couchcore.aio.Server(couch_url) as server:
            adb = await server.db(db.name)
            stream = await adb.open_attachment("a", "a.txt")
            fresh = await adb.get("a")
            with pytest.raises(couchcore.InvalidInput, match="aread"):
                await adb.put_attachment(fresh, stream, "b.txt")
            assert await stream.aread() == b"abc"  # untouched: still readable

    asyncio.run(main())


# reviewer-round-r28b (HIGH): a stream already read, passed again (a retry after a Conflict), was
# spooled from its end and stored as a 0-byte attachment, reported ok; read() after it gave b""
def test_a_used_attachment_stream_is_refused_not_stored_empty(db):
    src = {"_id": "u"}
    db.save(src)
    db.put_attachment(src, BLOB, "blob.bin")
    stale = {"_id": "v"}
    db.save(stale)
    db.save({**stale})  # stale["_rev"] is now old
    stream = db.open_attachment("u", "blob.bin")
    with pytest.raises(couchcore.Conflict):
        db.put_attachment({"_id": "v", "_rev": stale["_rev"]}, stream, "copy.bin")
    fresh = db.get("v")
    with pytest.raises(couchcore.StreamConsumed):
        db.put_attachment(fresh, stream, "copy.bin")  # the retry with the same stream
    with pytest.raises(couchcore.StreamConsumed):
        stream.read()
    assert "_attachments" not in db.get("v")  # nothing stored, empty or not


def test_a_copy_without_filename_is_refused_before_reading(db):
    doc = {"_id": "w"}
    db.save(doc)
    db.put_attachment(doc, b"xyz", "x.bin")
    stream = db.open_attachment("w", "x.bin")
    with pytest.raises(couchcore.InvalidInput, match="filename"):
        db.put_attachment(db.get("w"), stream)
    assert stream.read() == b"xyz"  # untouched


def test_a_large_copy_goes_through_a_temporary_file_with_its_length(db):
    big = os.urandom(9 * 1024 * 1024 + 5)  # over the 8 MiB kept in memory
    doc = {"_id": "big"}
    db.save(doc)
    db.put_attachment(doc, big, "big.bin")
    dest = {"_id": "big2"}
    db.save(dest)
    db.put_attachment(dest, db.open_attachment("big", "big.bin"), "big.bin")
    assert db.get_attachment("big2", "big.bin") == big
    assert db.get("big2")["_attachments"]["big.bin"]["length"] == len(big)
    assert dest["_attachments"]["big.bin"].get("length") == len(big)
