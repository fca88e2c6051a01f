"""Attachments: stream a file up, stream it back down in chunks, read a revision's copy."""

import hashlib
import os
import tempfile
import uuid

import couchcore

server = couchcore.Server(os.environ.get("COUCHDB_URL", "http://127.0.0.1:5984"))
name = f"guide-att-{uuid.uuid4().hex[:8]}"
db = server.db(name, create=True)
path = None
try:
    # a 3 MB file, streamed from disk: put_attachment never reads it whole
    with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as f:
        for i in range(48):
            f.write(hashlib.sha256(str(i).encode()).digest() * 2048)  # 64 KiB each
        path = f.name
    sha = hashlib.sha256(open(path, "rb").read()).hexdigest()

    doc = {"_id": "report"}
    db.save(doc)
    with open(path, "rb") as content:
        db.put_attachment(doc, content, filename="data.bin", content_type="application/octet-stream")
    assert doc["_rev"].startswith("2-")  # put_attachment updates the document's _rev

    # stream it back: an AttachmentStream yields byte chunks as they arrive
    digest, size = hashlib.sha256(), 0
    with db.open_attachment("report", "data.bin") as stream:
        print("content type", stream.content_type, "length", stream.length)
        for chunk in stream:
            digest.update(chunk)
            size += len(chunk)
    assert digest.hexdigest() == sha and size == os.path.getsize(path)

    # small ones: bytes in, bytes out; a document's _rev selects the revision read
    first = dict(doc)
    db.put_attachment(doc, b"v1", filename="note.txt", content_type="text/plain")
    v1 = dict(doc)
    db.put_attachment(doc, b"v2", filename="note.txt", content_type="text/plain")
    assert db.get_attachment("report", "note.txt") == b"v2"
    assert db.get_attachment(v1, "note.txt") == b"v1"  # the revision v1 names
    try:
        db.get_attachment(first, "note.txt")  # that revision had no note.txt
    except couchcore.NotFound:
        pass
    else:
        raise AssertionError("revision 2 had no note.txt")
    db.delete_attachment(doc, "note.txt")
    assert "note.txt" not in db.get("report").get("_attachments", {})
    print("attachments: ok")
finally:
    if path:
        os.unlink(path)
    server.delete(name)
    server.close()
