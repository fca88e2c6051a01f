"""Following changes: a normal feed, a continuous feed, a callback feed, a follower."""

import os
import threading
import time
import uuid

import couchcore

server = couchcore.Server(os.environ.get("COUCHDB_URL", "http://127.0.0.1:5984"))
name = f"guide-changes-{uuid.uuid4().hex[:8]}"
db = server.db(name, create=True)
try:
    db.save([{"_id": f"a{i}", "n": i} for i in range(5)])

    # a normal feed: streamed like a view; last_seq is known once it has been read
    changes = db.changes(since=0)
    ids = sorted(change["id"] for change in changes)
    assert ids == [f"a{i}" for i in range(5)]
    since = changes.last_seq  # opaque: store it and hand it back later
    print("caught up at", since)

    # a continuous feed from `since`: blocks for new changes, reconnects by itself;
    # stop() it from any thread (or just break out of the loop)
    feed = db.changes(feed="continuous", since=since, include_docs=True)

    def writer() -> None:
        for i in range(3):
            db.save({"_id": f"b{i}", "n": i})

    threading.Thread(target=writer).start()
    seen = []
    for change in feed:
        seen.append(change["doc"]["_id"])
        if len(seen) == 3:
            feed.stop()
    assert sorted(seen) == ["b0", "b1", "b2"]

    # callback style: fn(seq, changes) from a background thread, in batches gathered
    # over `latency` seconds
    got: list = []
    feed = db.changes(since=since, feed="continuous", callback=lambda seq, batch: got.extend(batch), latency=0.1)
    deadline = time.monotonic() + 30
    while len(got) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    feed.stop()
    feed.join(timeout=10)
    assert sorted(c["id"] for c in got) == ["b0", "b1", "b2"]

    # a follower: a longpoll loop that retries transient failures with backoff and
    # resumes from .since; one_off=True ends once caught up
    follower = db.follow(since=0, one_off=True)
    assert len({change["id"] for change in follower}) == 8
    print("follower resumes from", follower.since)
    print("changes: ok")
finally:
    server.delete(name)
    server.close()
