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
from tests.integration.test_review_r30_lead import OURS, _lost_save, _lost_update


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
    with pytest.raises(couchcore.OutcomeUnknown) as info:
        if what == "save":
            db.save({"_id": "k", "_rev": direct.get("k", rev=OURS)["_rev"], "log": ["B"]})
        else:
            db.update_doc("k", lambda doc: {**doc, "log": ["B"]})
    exc = info.value
    assert isinstance(exc.__cause__, ParseError), repr(exc.__cause__)
    method, path = ("POST", f"/{name}/_bulk_docs") if what == "save" else ("PUT", f"/{name}/k")
    assert exc.method == method and exc.url.endswith(path), (exc.method, exc.url)
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
