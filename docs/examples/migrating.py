"""Moving from couchdb-python: its calls and couchcore's, side by side (each line runs)."""

import os
import uuid

import couchcore

URL = os.environ.get("COUCHDB_URL", "http://127.0.0.1:5984")
name = f"guide-migrate-{uuid.uuid4().hex[:8]}"

server = couchcore.Server(URL)  # couchdb.Server(URL)
db = server.create(name)  # server.create(name)
try:
    assert server[name].name == name  # server[name]
    assert name in server  # name in server

    doc = {"_id": "a", "type": "Person", "name": "John Doe"}
    db.save(doc)  # db.save(doc) -> (id, rev); couchcore: doc["_rev"] is set, returns a ConflictResolution
    db["b"] = {"type": "Person", "name": "Mary Jane"}  # db["b"] = {...}
    assert db["a"].name == "John Doe"  # db["a"]: NotFoundKeyError (a KeyError) when missing
    assert "b" in db  # "b" in db
    assert db["a"]._id == "a" and db["a"]["_rev"] == doc["_rev"]  # doc.id, doc.rev

    # db.get(id) returned None for a missing document; couchcore raises NotFound
    try:
        db.get("nope")
    except couchcore.NotFound:  # couchdb.http.ResourceNotFound
        pass
    else:
        raise AssertionError("a missing document raises NotFound")

    # db.update(docs) -> [(ok, id, rev_or_exc), ...]; couchcore: db.save(docs)
    result = db.save([{"type": "City", "name": "Gotham"}, {**db["a"], "name": "J. Doe"}])
    assert result.ok
    # NB: couchdb-python's db.update_doc(name, docid) calls an update *function*:
    # in couchcore that is db.update("ddoc/func", docid); couchcore's update_doc is read-modify-write
    db.update_doc("a", lambda d: {**d, "age": 42})
    assert db["a"].age == 42

    # db.revisions(id) yielded Documents; couchcore gives the revision ids, newest first
    revs = db.revisions("a")
    assert len(revs) == 3 and revs[0] == db["a"]._rev
    assert db.get("a", rev=revs[-1]).name == "John Doe"  # read an old revision (until compaction)

    db.save({"_id": "_design/people", "views": {
        "by_name": {"map": "function (d) { if (d.type == 'Person') emit(d.name, null) }"}}})
    rows = db.view("people/by_name")  # db.view("people/by_name"): rows streamed, not buffered
    assert [row.key for row in rows] == ["J. Doe", "Mary Jane"]
    # db.view(name)["Mary Jane"] / [start:end]: key options instead
    assert [row.id for row in db.view("people/by_name", key="Mary Jane")] == ["b"]
    assert [row.id for row in db.view("people/by_name", startkey="A", endkey="K")] == ["a"]
    paged = [row.key for row in db.iterview("people/by_name", page_size=1)]  # db.iterview(name, batch)
    assert paged == ["J. Doe", "Mary Jane"]
    tmp = db.query("function (d) { if (d.type == 'City') emit(d.name, null) }")  # db.query(map_fun)
    assert [row.key for row in tmp] == ["Gotham"]

    found = db.find({"type": "Person"}, limit=10)  # db.find({"selector": {...}, "limit": 10})
    assert len(found["docs"]) == 2
    # the whole query as the selector is refused before sending (CouchDB would match a field
    # named "selector": none, silently)
    try:
        db.find({"selector": {"type": "Person"}, "limit": 10})
        raise AssertionError("the whole query as the selector raises InvalidInput")
    except couchcore.errors.InvalidInput as exc:
        assert "first argument" in str(exc)
    assert db.explain({"type": "Person"})["index"]["name"] == "_all_docs"  # db.explain(query)
    assert db.indexes()[0]["name"] == "_all_docs"  # db.index()

    db.put_attachment(db["b"], b"hello", "hello.txt", "text/plain")  # same arguments
    assert db.get_attachment("b", "hello.txt") == b"hello"  # couchdb-python: a file-like object

    changes = db.changes(since=0)  # db.changes(since=0): a streamed result, not a dict
    assert {c["id"] for c in changes} >= {"a", "b"}
    assert changes.last_seq
    assert len(db.changes(since=0)["results"]) >= 2  # ["results"] reads it whole, like the dict

    # db.security (a property) is a method: read with security(), write with security(value)
    assert "members" in db.security() or db.security() == {}

    db.delete(db["b"])  # db.delete(doc)
    assert "b" not in db
    assert server.version()  # server.version()
    print("migrating: ok")
finally:
    server.delete(name)  # del server[name]
    server.close()
