"""Getting started: connect, create a database, write, read, query, clean up."""

import os
import uuid

import couchcore

# the server: credentials in the URL (percent-encoded) or auth=("admin", "secret")
server = couchcore.Server(os.environ.get("COUCHDB_URL", "http://127.0.0.1:5984"))
print("CouchDB", server.version())

name = f"guide-start-{uuid.uuid4().hex[:8]}"
db = server.db(name, create=True)  # server[name] when it exists already
try:
    # write: _id and _rev are set on the dict in place
    doc = {"_id": "e1", "kind": "click", "n": 1}
    db.save(doc)
    assert doc["_rev"].startswith("1-")

    # update: save it again with its _rev
    doc["n"] = 2
    db.save(doc)
    assert doc["_rev"].startswith("2-")

    # several documents in one request (_bulk_docs); ids come from the server's uuids
    result = db.save([{"kind": "view"}, {"kind": "view"}, {"kind": "click"}])
    assert result.ok and len(result.resolved) == 3

    # read: a Document is a dict with attribute access
    e1 = db.get("e1")
    assert e1.kind == "click" and e1["n"] == 2
    assert db.get(["e1", "nope"])[1] is None  # several ids, one request; None when missing

    # a view: rows stream in as the server sends them
    db.save({"_id": "_design/ev", "views": {
        "by_kind": {"map": "function (d) { if (d.kind) emit(d.kind, 1) }", "reduce": "_count"}}})
    counts = {row.key: row.value for row in db.view("ev/by_kind", group=True)}
    print(counts)
    assert counts == {"click": 2, "view": 2}

    # errors are couchcore exceptions
    try:
        db.get("nope")
    except couchcore.NotFound as exc:
        print("missing:", exc.status, exc.reason)
    else:
        raise AssertionError("a missing document raises NotFound")
finally:
    server.delete(name)
    server.close()
