"""Bulk loading and dumping, from Python and from the shell (couchcore load / dump)."""

import io
import json
import os
import subprocess
import sys
import tempfile
import uuid

import couchcore
import couchcore.bulk
import couchcore.dump

URL = os.environ.get("COUCHDB_URL", "http://127.0.0.1:5984").rstrip("/")
server = couchcore.Server(URL)
name, copy = f"guide-bulk-{uuid.uuid4().hex[:8]}", f"guide-bulk-copy-{uuid.uuid4().hex[:8]}"
db = server.db(name, create=True)
tmp = tempfile.mkdtemp()
try:
    # from Python: any iterable, read lazily; dicts or JSON object text (bytes, sent as is)
    def documents():
        for i in range(5000):
            yield {"_id": f"u{i:05d}", "n": i}
        yield b'{"_id": "raw-1", "n": -1}'  # JSON text: validated, never decoded and re-encoded
        yield b'{"_id": 42}'  # not a valid id: rejected with its reason, the rest goes on

    report = couchcore.bulk.load(db, documents(), batch_size=1000, concurrency=4)
    print(report)  # read, written, skipped, rejected, retried; docs/s, elapsed
    assert report.written == 5001 and report.rejected == 1
    assert report.failures[0].error == "invalid_id"

    # loading again: existing ids are conflicts, unless their content is the same (skip_existing)
    again = couchcore.bulk.load(db, ({"_id": f"u{i:05d}", "n": i} for i in range(10)), skip_existing=True)
    assert again.skipped == 10 and again.written == 0

    # dump: one JSON line per revision a copy needs (here: each document's _rev and _revisions),
    # live documents in id order, then conflicts and deleted documents (none here)
    buf = io.BytesIO()
    dumped = couchcore.dump.dump(db, buf)
    assert dumped.docs == 5001 and len(buf.getvalue().splitlines()) == 5001

    # the shell: couchcore dump DB_URL FILE, couchcore load DB_URL FILE --create
    cli = [sys.executable, "-m", "couchcore.cli"]
    out = os.path.join(tmp, "dump.jsonl")
    subprocess.run([*cli, "dump", f"{URL}/{name}", out, "--quiet"], check=True)
    # the dump holds each document's _rev: --new-edits-false stores them as they are (a copy
    # with the same revisions; `couchcore dump A --attachments | couchcore load B ...` works too)
    rejects = os.path.join(tmp, "rejects.jsonl")
    done = subprocess.run([*cli, "load", f"{URL}/{copy}", out, "--create", "--new-edits-false",
                           "--rejects", rejects, "--quiet"])
    assert done.returncode == 0  # 0: all written, 1: some rejected (see --rejects), 2: could not start
    assert server[copy].info()["doc_count"] == 5001
    assert server[copy].get("u00042")._rev == db.get("u00042")._rev
    with open(out, "rb") as f:
        assert json.loads(f.readline())["_id"] == "raw-1"  # id order: "r" < "u"
    print("bulk: ok")
finally:
    for n in (name, copy):
        if n in server:
            server.delete(n)
    server.close()
