"""Round 31, the lead's own: the leftovers helper A reported.

* The leaves of a document a cluster's ``202`` write touched are read to decide whether it
  lost; an answer to that read that is no JSON escaped ``save``/``update_doc`` as a bare
  :class:`~couchcore.errors.ParseError`, which says nothing of the write that was stored
  (retrying would apply the edit again). It is an :class:`~couchcore.OutcomeUnknown`
  naming the write, the ``ParseError`` its cause, as for a failed read.
"""
from __future__ import annotations

import pytest

import couchcore
from couchcore.errors import ParseError
from tests.helpers import proxied_db
from tests.integration.test_review_r30_lead import OURS, _lost_save, _lost_update, _write_outcome_unknown


@pytest.fixture
def proxied(couch_url):
    yield from proxied_db(couch_url, "r31")


@pytest.mark.parametrize("what", ["save", "save_list", "update_doc"])
def test_a_leaf_read_that_is_no_json_is_outcome_unknown(proxied, what):
    proxy, name, auth, direct = proxied
    if what == "update_doc":
        _lost_update(proxy, name, direct)
    else:
        _lost_save(proxy, name, direct, [{"ok": True, "id": "k", "rev": OURS, "accepted": True}])
    proxy.respond("GET", "open_revs", 200, b"<html>not json</html>", headers={"Content-Type": "text/html"}, count=1)
    db = couchcore.Server(proxy.url, auth=auth, retries=0).db(name)
    if what == "save_list":
        result = db.save([{"_id": "k", "_rev": direct.get("k", rev=OURS)["_rev"], "log": ["B"]}])
        row = result.pending["k"]
        assert row["error"] == "unknown_outcome", row
        return
    exc = _write_outcome_unknown(db, direct, what)
    assert isinstance(exc.__cause__, ParseError), repr(exc.__cause__)
    assert "@" not in str(exc)


def test_a_202_after_a_missing_stub_recovery_raises_the_reads_own_outcome_unknown(proxied):
    """``save(doc)`` raises the OutcomeUnknown the 202 check made (naming the write, the
    failed read its cause); the ``412 missing_stub`` recovery re-sends through a resolution
    of its own, which kept that exception to itself (a generic one was raised)."""
    proxy, name, auth, direct = proxied
    doc = {"_id": "k", "v": 1}
    direct.save(doc)
    direct.put_attachment(doc, b"abc", "a.txt", "text/plain")
    stored = direct.get("k")
    proxy.respond("POST", f"/{name}/_bulk_docs", 412, b'{"error":"missing_stub","reason":"Missing attachment stub"}')
    proxy.respond("POST", f"/{name}/_bulk_docs", 201,
                  b'[{"ok":true,"id":"k","rev":"3-' + b"c" * 32 + b'","accepted":true}]')
    proxy.respond("GET", "open_revs", 503, b'{"error":"x","reason":"y"}', count=3)
    db = couchcore.Server(proxy.url, auth=auth, retries=0).db(name)
    with pytest.raises(couchcore.OutcomeUnknown) as info:
        db.save({**dict(stored), "v": 2})
    exc = info.value
    assert isinstance(exc.__cause__, couchcore.ServerError) and exc.__cause__.status == 503, repr(exc.__cause__)
    assert "202 Accepted" in str(exc), str(exc)
    assert [m for m, t in proxy.seen if "_bulk_docs" in t] == ["POST", "POST"]  # the recovery re-sent it once


# -- reviewer-round-r31 HIGH 1, HIGH 2a: concurrent 202 checks, a create over our withdrawal ----------


def _check_op(db, rev):
    from couchcore.protocol.documents import _accepted_lost

    return _accepted_lost(db._server._ctx, db.name, "k", rev, None, ("PUT", f"/{db.name}/k"))


def _leaves(direct):
    return {r["ok"]["_rev"]: r["ok"] for r in direct.get("k", open_revs="all")}


def _three_creates(direct):
    """Document ``k`` created by three writers on three copies: three live leaves."""
    revs = ["1-" + c * 32 for c in "abc"]
    direct.save([{"_id": "k", "_rev": rev, "owner": rev[2]} for rev in revs], new_edits=False)
    return revs


def _interleave(db, ops):
    """Drive several operations one request at a time, round-robin (as concurrent
    writers' checks meet the server), each over ``db``'s server; their results."""
    from couchcore.protocol.messages import Request

    results: list = [None] * len(ops)
    pending = {i: (op, None) for i, op in enumerate(ops)}
    while pending:
        for i in list(pending):
            op, answer = pending[i]
            try:
                request = op.send(answer) if answer is not None else next(op)
            except StopIteration as stop:
                results[i] = stop.value
                del pending[i]
                continue

            def one(request=request):
                return (yield request)

            pending[i] = (op, db._run(one()) if isinstance(request, Request) else None)
    return results


def test_concurrent_checks_of_three_202_creates_keep_exactly_one(proxied):
    """HIGH 1: each check saw the others' live leaves, each withdrew its own: every
    revision withdrawn, the document deleted, every writer told "conflict"."""
    proxy, name, auth, direct = proxied
    revs = _three_creates(direct)
    db = couchcore.Server(proxy.url, auth=auth).db(name)
    results = _interleave(db, [_check_op(db, rev) for rev in revs])
    assert results[2] is None, results  # 1-ccc.. ranks first: it stands
    assert all(r is not None and r.withdrawn for r in results[:2]), results
    live = [rev for rev, leaf in _leaves(direct).items() if not leaf.get("_deleted")]
    assert live == [revs[2]] and direct.get("k")["owner"] == "c"


def test_a_202_that_ranks_first_gives_way_to_a_quorum_write(proxied):
    """A sibling that ranks below ours and stays live (no check withdraws it: it was
    stored by a quorum, 201) still wins: ours is withdrawn, after the waits."""
    proxy, name, auth, direct = proxied
    revs = _three_creates(direct)[1:]  # 1-bbb.. (a quorum's 201) and 1-ccc.. (our 202)
    direct.save([{"_id": "k", "_rev": "2-" + "d" * 32, "_deleted": True,
                  "_revisions": {"start": 2, "ids": ["d" * 32, "a" * 32]}}], new_edits=False)
    db = couchcore.Server(proxy.url, auth=auth).db(name)
    lost = db._run(_check_op(db, revs[1]))
    assert lost is not None and lost.withdrawn and revs[0] in lost.reason, lost
    assert direct.get("k")["owner"] == "b"
    reads = [t for m, t in proxy.seen if m == "GET" and "open_revs" in t]
    assert len(reads) == 6  # the first read, four more while 1-bbb.. might be withdrawn, the last


def test_a_create_over_our_withdrawal_is_not_built_on_ours(proxied):
    """HIGH 2a: a create of the document after our withdrawal continues our withdrawn
    branch (our revision in its history): that is no writer building on our content."""
    proxy, name, auth, direct = proxied
    revs = ["1-" + c * 32 for c in "ab"]  # ours 1-aaa.. loses to 1-bbb..
    direct.save([{"_id": "k", "_rev": rev, "owner": rev[2]} for rev in revs], new_edits=False)
    db = couchcore.Server(proxy.url, auth=auth).db(name)
    op = _check_op(db, revs[0])
    from couchcore.protocol.messages import Request

    answer = None
    while True:
        try:
            request = op.send(answer) if answer is not None else next(op)
        except StopIteration as stop:
            lost = stop.value
            break

        def one(request=request):
            return (yield request)

        answer = db._run(one()) if isinstance(request, Request) else None
        if request.method == "POST" and "_bulk_docs" in request.path:
            # the withdrawal is stored: the other writer's revision is withdrawn too (its
            # own check lost to a third), and a writer creates k again
            other = revs[1]
            direct.save([{"_id": "k", "_rev": "2-" + "0" * 32, "_deleted": True,  # ranks below our withdrawal
                          "_revisions": {"start": 2, "ids": ["0" * 32, other[2:]]}}], new_edits=False)
            direct.save({"_id": "k", "owner": "C"})
    assert lost is not None and lost.withdrawn, lost  # not "stands": our content is gone
    assert direct.get("k")["owner"] == "C"
    history = direct.get("k", revs=True)["_revisions"]
    assert history["ids"][-1] == revs[0][2:], history  # the create continued our withdrawn branch


def test_concurrent_checks_of_a_202_update_and_a_202_delete_keep_one(proxied):
    """reviewer-round-r31c HIGH: an update and a delete of one revision, both answered 202,
    the update ranking above: the update lost at once to the deletion of its parent, the
    delete to the live update, and both withdrew (the document deleted, both told
    "conflict"). The checks' order puts a deletion of the parent first (a write on a
    deleted revision loses to it): the update gives way, the delete stands."""
    from couchcore.protocol.documents import _accepted_lost

    proxy, name, auth, direct = proxied
    direct.save({"_id": "k", "owner": "A"})
    first = direct.get("k")["_rev"]
    a = first.split("-")[1]
    update, delete = "2-" + "f" * 32, "2-" + "0" * 32
    direct.save([{"_id": "k", "_rev": update, "owner": "U", "_revisions": {"start": 2, "ids": ["f" * 32, a]}},
                 {"_id": "k", "_rev": delete, "_deleted": True, "_revisions": {"start": 2, "ids": ["0" * 32, a]}}],
                new_edits=False)
    db = couchcore.Server(proxy.url, auth=auth).db(name)
    ops = [_accepted_lost(db._server._ctx, db.name, "k", rev, first, ("PUT", f"/{db.name}/k")) for rev in (update, delete)]
    results = _interleave(db, ops)
    assert results[1] is None, results  # the delete stands
    assert results[0] is not None and results[0].withdrawn, results
    assert not [r for r in direct.get("k", open_revs="all") if not r["ok"].get("_deleted")]  # deleted
