"""The bulk loader and a cluster's ``202 Accepted`` rows (``"accepted": true``).

A CouchDB cluster answers ``202`` when it stored a document on fewer copies than its write
quorum, which also happens when a copy that had not got an earlier write accepted one the
other copies refused as a conflict (https://docs.couchdb.org/en/stable/cluster/theory.html):
the row says ``"ok": true`` but the revision lost. ``save(list)`` checks such rows
(``couchcore.protocol.documents._accepted_lost``); the loader counted them written. Now
``write_batch`` runs the same check for each accepted row of a ``202``: one that stands is
written, one that lost is withdrawn and is the ``409`` one node would have answered
(create-only: rejected as ``conflict`` with the check's reason), one that could not be
withdrawn is rejected as ``stored_as_conflict``, one whose leaves could not be read is
rejected as ``unknown_outcome`` and held (never confirmed by a checkpoint).

The race is a cluster's, so the state it leaves (our revision beside the other writer's,
both live leaves) is made with ``new_edits=false`` and a ``FaultyProxy`` answers the load's
``_bulk_docs`` with the cluster's ``202`` (as test_review_r30_lead.py does for ``save``);
the first tests drive ``write_batch`` with canned answers (as test_cluster.py does).
"""

from __future__ import annotations

import json

import pytest

import couchcore
from couchcore.bulk import UNKNOWN_OUTCOME, Checkpoint, load
from couchcore.protocol import server
from couchcore.protocol.bulk import write_batch
from couchcore.protocol.messages import Response

from tests.helpers import proxied_db
from tests.integration.test_cluster import pump

OURS = "1-" + "f" * 32  # our create, stored beside the other writer's (a higher id: it wins)
BODY_K = {"_id": "k", "owner": "B"}
BODY_S = {"_id": "s", "v": 1}


# -- write_batch with canned answers -----------------------------------------------------------


def resp(status, body, method="POST", url="http://127.0.0.1:15984/db/_bulk_docs"):
    return Response(status, {"Content-Type": "application/json"}, body=json.dumps(body).encode(),
                    method=method, url=url)


def leaves(*revs):
    """An ``open_revs=all&revs=true`` answer: one live leaf per ``(rev, ancestors...)``."""
    items = []
    for rev, *ancestors in revs:
        start, ids = int(rev.split("-")[0]), [r.split("-", 1)[1] for r in (rev, *ancestors)]
        items.append({"ok": {"_id": "x", "_rev": rev, "_revisions": {"start": start, "ids": ids}}})
    return resp(200, items, method="GET", url="http://127.0.0.1:15984/db/x")


def batch(*docs, **options):
    bodies = [json.dumps(d).encode() for d in docs]
    return write_batch(server.ServerContext(), "db", [d["_id"] for d in docs], bodies, **options)


def row(docid, rev, accepted=True):
    return {"ok": True, "id": docid, "rev": rev, **({"accepted": True} if accepted else {})}


def test_a_201_answer_costs_no_further_request():
    out, sent = pump(batch({"_id": "a"}, {"_id": "b"}), resp(201, [row("a", "1-a", False), row("b", "1-b", False)]))
    assert (out.written, out.rejected, out.unknown) == (2, [], []) and len(sent) == 1


def test_an_accepted_row_that_stands_is_written_and_one_that_lost_is_a_conflict_with_the_reason():
    out, sent = pump(batch({"_id": "s"}, {"_id": "f", "v": 99}),
                     resp(202, [row("s", "1-5555"), row("f", "1-774d")]),
                     leaves(("1-5555",)),  # s: ours alone
                     leaves(("1-7a7e",), ("1-774d",)),  # f: another writer's create beside ours
                     resp(201, []),  # the withdrawal (new_edits=false)
                     leaves(("1-7a7e",)))  # read again: nobody built on ours
    assert out.written == 1 and out.unknown == [] and out.unsettled == []
    [(i, error, reason)] = out.rejected
    assert (i, error) == (1, "conflict") and "1-7a7e" in reason and "couchcore withdrew 1-774d" in reason
    assert [(r.method, r.path) for r in sent] == [("POST", "/db/_bulk_docs"), ("GET", "/db/s"), ("GET", "/db/f"),
                                                  ("POST", "/db/_bulk_docs"), ("GET", "/db/f")]
    assert dict(sent[1].query) == {"open_revs": "all", "revs": "true", "r": "3"}  # every copy's leaves
    withdrawal = json.loads(sent[3].body)
    assert withdrawal["new_edits"] is False and withdrawal["docs"][0]["_deleted"] is True


def test_each_row_is_checked_to_its_end_before_the_next():
    """The rows of one answer are checked one at a time (3eed115..7459095 checked them
    together, their waits shared or their losers withdrawn in one request: with every such
    schedule a lower writer reaching a row just as the top one gave way made both withdraw,
    reviewer-round-r32.md HIGH 1 and -r32b.md HIGH). a ranks above a sibling that stays (a
    201: a gives way after 1.5 s), b above one its writer withdraws after the first wait (b
    stands), c lost at once: each withdrawn right after the read that decided it."""
    a_live, b_live = leaves(("1-f",), ("1-1",)), leaves(("1-f",), ("1-2",))
    b_gone = resp(200, [{"ok": {"_id": "x", "_rev": "1-f", "_revisions": {"start": 1, "ids": ["f"]}}},
                        {"ok": {"_id": "x", "_rev": "2-9", "_deleted": True,
                                "_revisions": {"start": 2, "ids": ["9", "2"]}}}], method="GET")
    out, sent = pump(batch({"_id": "a"}, {"_id": "b"}, {"_id": "c"}),
                     resp(202, [row("a", "1-f"), row("b", "1-f"), row("c", "1-0")]),
                     a_live, a_live, a_live, a_live, a_live, resp(201, []), leaves(("1-1",)),  # a gives way
                     b_live, b_gone,  # b stands
                     leaves(("1-0",), ("1-9",)), resp(201, []), leaves(("1-9",)))  # c lost at once
    assert out.written == 1 and sorted((i, e) for i, e, _ in out.rejected) == [(0, "conflict"), (2, "conflict")]
    assert [(r.method, r.path.rsplit("/", 1)[1], r.delay) for r in sent[1:]] == [
        ("GET", "a", 0), ("GET", "a", 0.2), ("GET", "a", 0.3), ("GET", "a", 0.5), ("GET", "a", 0.5),
        ("POST", "_bulk_docs", 0), ("GET", "a", 0),
        ("GET", "b", 0), ("GET", "b", 0.2),
        ("GET", "c", 0), ("POST", "_bulk_docs", 0), ("GET", "c", 0)]
    assert [[d["_id"] for d in json.loads(r.body)["docs"]] for r in sent[1:] if r.method == "POST"] == [["a"], ["c"]]


def test_a_refused_withdrawal_is_reported_for_its_own_row():
    out, sent = pump(batch({"_id": "a"}, {"_id": "c"}),
                     resp(202, [row("a", "1-0"), row("c", "1-0")]),
                     leaves(("1-0",), ("1-9",)), resp(201, []), leaves(("1-9",)),
                     leaves(("1-0",), ("1-8",)),
                     resp(201, [{"id": "c", "error": "forbidden", "reason": "no deletions"}]),  # c's refused
                     leaves(("1-0",), ("1-8",)))
    assert sorted((i, e) for i, e, _ in out.rejected) == [(0, "conflict"), (1, "stored_as_conflict")]
    assert "forbidden: no deletions" in dict((i, r) for i, _, r in out.rejected)[1]


def test_an_update_is_judged_on_the_rev_it_was_sent_with():
    # the body's _rev is the parent: a sibling on it is a concurrent writer, an older branch is not
    lost, _ = pump(batch({"_id": "f", "_rev": "1-a"}, upsert=False),
                   resp(202, [row("f", "2-b")]), leaves(("2-b", "1-a"), ("2-c", "1-a")), resp(201, []),
                   leaves(("2-c", "1-a")))
    assert [e for _, e, _ in lost.rejected] == ["conflict"]
    stands, _ = pump(batch({"_id": "f", "_rev": "2-a"}),
                     resp(202, [row("f", "3-b")]), leaves(("3-b", "2-a", "1-r"), ("2-z", "1-r")))
    assert stands.written == 1 and stands.rejected == []


def test_upsert_writes_a_lost_row_over_the_current_revision():
    out, sent = pump(batch({"_id": "f", "v": 99}, upsert=True),
                     resp(202, [row("f", "1-774d")]), leaves(("1-7a7e",), ("1-774d",)), resp(201, []),
                     leaves(("1-7a7e",)),
                     resp(200, {"rows": [{"id": "f", "key": "f", "value": {"rev": "1-7a7e"},
                                          "doc": {"_id": "f", "_rev": "1-7a7e", "v": 1}}]},
                          method="POST", url="http://127.0.0.1:15984/db/_all_docs"),
                     resp(201, [row("f", "2-9999", False)]))
    assert (out.written, out.rejected, out.unknown) == (1, [], [])
    assert json.loads(sent[-1].body)["docs"][0] == {"_id": "f", "v": 99, "_rev": "1-7a7e"}


def test_a_row_whose_leaves_cannot_be_read_is_unknown():
    fail = resp(503, {"error": "x", "reason": "y"}, method="GET", url="http://127.0.0.1:15984/db/f")
    out, _ = pump(batch({"_id": "f"}), resp(202, [row("f", "1-774d")]), fail, fail, fail)
    assert out.written == 0 and out.rejected == []
    [(i, reason)] = out.unknown
    assert i == 0 and "was stored as 1-774d" in reason and "whether it lost" in reason


def test_new_edits_false_rows_are_not_checked():
    # a replicated revision has no concurrent writer to lose to (save(list) does not check them either)
    out, sent = pump(batch({"_id": "f", "_rev": "1-a"}, new_edits=False), resp(202, []))
    assert out.written == 1 and len(sent) == 1


# -- the loader through a proxy that answers as the cluster did --------------------------------


@pytest.fixture
def proxied(couch_url):
    yield from proxied_db(couch_url, "bulk202")


def _race(direct, same=False):
    """Document ``k`` with two live leaves: the other writer's create (``owner`` A, or B as
    ours when ``same``) and ours; document ``s`` stored once. Returns (their rev, s's rev)."""
    direct.save({"_id": "k", "owner": "B" if same else "A"})
    theirs = direct.get("k")["_rev"]
    direct.save([{**BODY_K, "_rev": OURS}], new_edits=False)
    direct.save(dict(BODY_S))
    return theirs, direct.get("s")["_rev"]


def _answer_202(proxy, name, s_rev):
    """The load's first _bulk_docs is answered as the cluster answers it: both rows accepted."""
    rows = [{"ok": True, "id": "s", "rev": s_rev, "accepted": True},
            {"ok": True, "id": "k", "rev": OURS, "accepted": True}]
    proxy.respond("POST", f"/{name}/_bulk_docs", 202, json.dumps(rows).encode(),
                  headers={"Content-Type": "application/json"}, count=1)


def _live(direct):
    return sorted(r["ok"]["_rev"] for r in direct.get("k", open_revs="all") if not r["ok"].get("_deleted"))


def _via(proxy, name, auth, backend):
    return couchcore.Server(proxy.url, auth=auth, backend=backend, retries=0).db(name)


@pytest.mark.parametrize("mode", ["create", "skip_existing", "skip_same", "upsert"])
def test_a_lost_accepted_row_is_no_write(proxied, backend, mode):
    proxy, name, auth, direct = proxied
    theirs, s_rev = _race(direct, same=mode == "skip_same")
    _answer_202(proxy, name, s_rev)
    options = {"upsert": mode == "upsert", "skip_existing": mode.startswith("skip")}
    report = load(_via(proxy, name, auth, backend), [dict(BODY_S), dict(BODY_K)], **options)
    assert report.unknown == 0 and report.read == 2 and report.total == 2, report
    if mode == "upsert":  # written over the other writer's revision, as after a 409
        assert (report.written, report.rejected) == (2, 0), report.failures
        [current] = _live(direct)
        assert current.startswith("2-") and direct.get("k")["owner"] == "B"
    elif mode == "skip_same":  # the other writer stored the same content
        assert (report.written, report.skipped, report.rejected) == (1, 1, 0), report.failures
        assert _live(direct) == [theirs]
    else:
        assert (report.written, report.rejected) == (1, 1), report
        [rejected] = report.failures
        assert (rejected.id, rejected.line, rejected.error) == ("k", 2, "conflict")
        assert theirs in rejected.reason and f"couchcore withdrew {OURS}" in rejected.reason, rejected.reason
        assert json.loads(rejected.record())["owner"] == "B"  # the rejects record loads again
        assert _live(direct) == [theirs]
    # s stood: no withdrawal for it (the batch, k's withdrawal, and upsert's write over theirs)
    posts = [t for m, t in proxy.seen if m == "POST" and "_bulk_docs" in t]
    assert len(posts) == (3 if mode == "upsert" else 2), proxy.seen
    assert direct.get("s")["_rev"] == s_rev


def test_a_lost_row_that_cannot_be_withdrawn_is_rejected_and_confirmed(proxied, backend, tmp_path):
    proxy, name, auth, direct = proxied
    theirs, s_rev = _race(direct)
    _answer_202(proxy, name, s_rev)
    proxy.respond("POST", f"/{name}/_bulk_docs", 503, b'{"error":"x","reason":"y"}', count=3)
    cp = Checkpoint.open(tmp_path / "cp.json")
    report = load(_via(proxy, name, auth, backend), [dict(BODY_S), dict(BODY_K)], checkpoint=cp)
    assert (report.written, report.rejected, report.unknown) == (1, 1, 0), report
    [rejected] = report.failures
    assert rejected.error == "stored_as_conflict" and f"could not withdraw {OURS}" in rejected.reason
    assert _live(direct) == sorted([theirs, OURS])  # stored beside theirs, as the reason says
    # a refusal, settled: the checkpoint confirms it, a resumed load sends nothing and says so
    again = Checkpoint.open(tmp_path / "cp.json")
    assert again.complete and again.records == 2 and again.counts["rejected"] == 1
    resumed = load(_via(proxy, name, auth, backend), [dict(BODY_S), dict(BODY_K)], checkpoint=again)
    assert resumed.batches == 0 and resumed.earlier["rejected"] == 1 and not resumed.ok


def test_a_row_whose_fate_cannot_be_read_is_unknown_and_held(proxied, backend, tmp_path):
    proxy, name, auth, direct = proxied
    theirs, s_rev = _race(direct)
    _answer_202(proxy, name, s_rev)
    proxy.respond("GET", "/k?open_revs", 503, b'{"error":"x","reason":"y"}', count=3)
    cp = Checkpoint.open(tmp_path / "cp.json")
    report = load(_via(proxy, name, auth, backend), [dict(BODY_S), dict(BODY_K)], checkpoint=cp)
    assert (report.written, report.rejected, report.unknown) == (1, 1, 1), report
    [rejected] = report.failures
    assert rejected.error == UNKNOWN_OUTCOME and "whether it lost" in rejected.reason
    assert "resume the load" in rejected.reason  # the load's own advice follows
    assert not report.ok and report.unsettled == 0
    # held as a batch given up on: not confirmed, so resuming sends the batch again (reconciled)
    again = Checkpoint.open(tmp_path / "cp.json")
    assert not again.complete and again.records == 0
    resumed = load(_via(proxy, name, auth, backend), [dict(BODY_S), dict(BODY_K)], checkpoint=again)
    # ours is the winning leaf (the higher revision id) and has our content: counted written
    assert (resumed.written, resumed.rejected, resumed.unknown) == (2, 0, 0), resumed.failures
    assert Checkpoint.open(tmp_path / "cp.json").complete


def test_couchcore_load_writes_a_lost_row_to_the_rejects_file(proxied, tmp_path):
    """The command as a user runs it (a subprocess, its default backend): exit 1, the lost
    row in the rejects file with the check's reason, the row that stood counted written."""
    import subprocess
    import sys

    proxy, name, auth, direct = proxied
    theirs, s_rev = _race(direct)
    _answer_202(proxy, name, s_rev)
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(json.dumps(d).encode() + b"\n" for d in (BODY_S, BODY_K)))
    url = proxy.url.replace("://", f"://{auth[0]}:{auth[1]}@") if auth else proxy.url
    proc = subprocess.run([sys.executable, "-m", "couchcore.cli", "load", f"{url}/{name}", str(source),
                           "--rejects", str(tmp_path / "rejects.jsonl")], capture_output=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert b"written 1, skipped 0, rejected 1" in proc.stderr, proc.stderr
    [record] = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_bytes().splitlines()]
    error = record.pop("_load_error")
    assert record == BODY_K and (error["line"], error["error"]) == (2, "conflict")
    assert f"couchcore withdrew {OURS}" in error["reason"] and theirs in error["reason"]
    assert _live(direct) == [theirs]
