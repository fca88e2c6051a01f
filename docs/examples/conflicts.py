"""Conflicts: save with merge= and force=, ConflictResolution for lists, update_doc."""

import os
import uuid

import couchcore

server = couchcore.Server(os.environ.get("COUCHDB_URL", "http://127.0.0.1:5984"))
name = f"guide-conflicts-{uuid.uuid4().hex[:8]}"
db = server.db(name, create=True)
try:
    db.save({"_id": "counter", "n": 0, "tags": ["a"]})
    stale = db.get("counter")  # this copy's _rev is about to become old
    db.save({**db.get("counter"), "n": 10})  # another writer gets in first

    # a single document's conflict raises Conflict (a 409)...
    try:
        db.save({**stale, "n": 1})
    except couchcore.Conflict as exc:
        print("conflict:", exc.status, exc.reason)
        assert isinstance(exc.resolution, couchcore.ConflictResolution)  # its pending document
        assert set(exc.resolution.pending) == {"counter"}
    else:
        raise AssertionError("a stale _rev raises Conflict")

    # ...unless merge= resolves it: fn(mine, theirs) returns what to write
    # (re-read and re-applied if yet another writer gets in between)
    mine = {**stale, "tags": ["a", "b"]}
    db.save(mine, merge=lambda mine, theirs: {**theirs, "tags": sorted(set(theirs["tags"]) | set(mine["tags"]))})
    current = db.get("counter")
    assert current.n == 10 and current.tags == ["a", "b"]

    # force=True writes ours over whatever revision is current
    db.save({**stale, "n": 99}, force=True)
    assert db.get("counter").n == 99

    # a list: nothing raises; every document is resolved or pending with its reason
    a, b = db.get("counter"), {"_id": "fresh", "n": 1}
    db.save({**db.get("counter"), "n": 100})  # makes `a` stale
    result = db.save([{**a, "n": 5}, b])
    assert isinstance(result, couchcore.ConflictResolution)
    assert set(result.resolved) == {"fresh"} and set(result.pending) == {"counter"}
    print("pending:", {k: v["error"] for k, v in result.pending.items()})
    # resolve the pending ones: .merge(fn), .overwrite(), or .resolve() after editing them
    result.merge(lambda mine, theirs: {**theirs, "n": theirs["n"] + mine["n"]})
    assert result.ok and db.get("counter").n == 105

    # read-modify-write in one call: fn(current or None) -> new document, retried on 409
    for _ in range(3):
        db.update_doc("hits", lambda d: {**(d or {}), "n": (d or {}).get("n", 0) + 1})
    assert db.get("hits").n == 3
    print("conflicts: ok")
finally:
    server.delete(name)
    server.close()
