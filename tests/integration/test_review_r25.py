"""Round 25 review: silent wrong results and newcomer faults found by comparing couchcore's
answers with curl against Apache CouchDB 3.5 and with the CouchDB documentation. Each
test failed before its fix (benchmarks/results/reviewer-r25.md)."""

from __future__ import annotations

import threading

import pytest

import couchcore


def _five(db) -> None:
    db.save([{"_id": f"d{i}", "n": i} for i in range(5)])


# -- seq_interval: "seq": null on most changes ---------------------------------------------

@pytest.mark.couchdb_only  # PouchDB Server ignores seq_interval (every change has its seq)
def test_continuous_feed_last_seq_survives_null_seqs_of_seq_interval(one_shard_db):
    # https://docs.couchdb.org/en/stable/api/database/changes.html (seq_interval): CouchDB
    # 3.5 computes the seq of every Nth change only, the others carry "seq": null (curl).
    # The feed took that null as its since: feed.last_seq was None, and a reconnect (or a
    # resume from last_seq) read the whole database again from 0
    db = one_shard_db
    _five(db)
    everything = db.changes().all()
    feed = db.changes(feed="continuous", since=0, seq_interval=2, timeout=2000)
    seen = []
    for change in feed:
        seen.append(change)
        if len(seen) == 2:
            break
    feed.stop()
    assert seen[1]["seq"] is None  # CouchDB's answer, as it is
    assert feed.last_seq is not None
    assert feed.last_seq == seen[0]["seq"]
    # resuming from it repeats at most seq_interval - 1 changes, never the whole feed
    again = db.changes(since=feed.last_seq).all()
    assert [c["id"] for c in again] == [c["id"] for c in everything[1:]]


@pytest.mark.couchdb_only
def test_follower_since_survives_null_seqs_of_seq_interval(one_shard_db):
    db = one_shard_db
    _five(db)
    follower = db.follow(since=0, one_off=True, seq_interval=2)
    seen = []
    for change in follower:
        seen.append(change)
        if change["seq"] is None:
            break
    follower.stop()
    assert follower.since == seen[0]["seq"]
    # the follower can be started again from it
    rest = [c["id"] for c in db.follow(since=follower.since, one_off=True)]
    assert rest == [c["id"] for c in db.changes().all()][1:]


@pytest.mark.couchdb_only
def test_changes_callback_gets_a_seq_with_seq_interval(one_shard_db):
    # 4 changes: the last one's seq is null (seq_interval=2), whatever the batches; the
    # callback was handed that null as the batch's seq
    db = one_shard_db
    db.save([{"_id": f"d{i}"} for i in range(4)])
    calls = []
    done = threading.Event()

    def callback(seq, changes):
        calls.append((seq, [c["seq"] for c in changes]))
        if sum(len(c[1]) for c in calls) >= 4:
            done.set()

    feed = db.changes(callback, since=0, seq_interval=2, timeout=2000)
    assert done.wait(30)
    feed.stop()
    feed.join(10)
    for seq, seqs in calls:
        known = [s for s in seqs if s is not None]
        assert seq is not None
        if known:
            assert seq == known[-1]
    assert calls[-1][1][-1] is None  # (CouchDB's null, as it is, in the change itself)
