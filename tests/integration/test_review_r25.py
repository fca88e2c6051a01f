"""Round 25 review: silent wrong results and newcomer faults found by comparing couchcore's
answers with curl against Apache CouchDB 3.5 and with the CouchDB documentation. Each
test failed before its fix (benchmarks/results/reviewer-r25.md)."""

from __future__ import annotations

import asyncio
import threading

import pytest

import couchcore
import couchcore.aio
from tests.helpers import async_backends as _async_backends


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


# -- boolean options CouchDB reads as false when they are not "true" ------------------------

@pytest.mark.parametrize("options", [
    {"include_docs": 1}, {"include_docs": "yes"}, {"descending": 1}, {"conflicts": "True"},
    {"attachments": 1}, {"att_encoding_info": 0},
])
def test_changes_refuses_non_bool_booleans(db, options):
    # CouchDB 3.5: _changes?include_docs=1 answers the changes without docs, descending=1
    # in ascending order (only "true" is true): a silent wrong result
    _five(db)
    with pytest.raises(couchcore.InvalidOption, match=next(iter(options))):
        db.changes(**options)
    with pytest.raises(couchcore.InvalidOption, match=next(iter(options))):
        db.changes(feed="continuous", **options)
    with pytest.raises(couchcore.InvalidInput, match=next(iter(options))):  # (descending: follow's own)
        db.follow(**options)


def test_changes_still_takes_bools_and_their_text(db):
    _five(db)
    with_docs = db.changes(include_docs=True).all()
    assert all(c["doc"]["_id"] == c["id"] for c in with_docs)
    assert all("doc" in c for c in db.changes(include_docs="true").all())
    assert all("doc" not in c for c in db.changes(include_docs="false").all())


def test_db_updates_refuses_non_bool_descending(server):
    with pytest.raises(couchcore.InvalidOption, match="descending"):
        server.db_updates(descending=1)


@pytest.mark.parametrize("style", ["alldocs", True, "ALL_DOCS"])
def test_changes_refuses_unknown_style(db, style):
    # CouchDB 3.5 answers _changes?style=x with 500 function_clause (a server crash report)
    with pytest.raises(couchcore.InvalidOption, match="style"):
        db.changes(style=style)


@pytest.mark.parametrize("since", [b"0", [1], {"seq": 1}, True, 1.5])
def test_changes_refuses_since_of_the_wrong_type(db, since):
    # since=b"0" was sent as the text "b'0'" (str() of the bytes)
    with pytest.raises(couchcore.InvalidOption, match="since"):
        db.changes(since=since)


def test_changes_params_must_be_a_dict(db):
    # params="x": AttributeError 'str' object has no attribute 'items' from inside couchcore
    with pytest.raises(couchcore.InvalidOption, match="params"):
        db.changes(filter="app/f", params="type=a")


@pytest.mark.parametrize("options", [
    {"conflicts": 1}, {"revs": "yes"}, {"revs_info": 1}, {"deleted_conflicts": 1}, {"latest": "True"},
    {"attachments": 1}, {"meta": 1}, {"rev": 1},
])
def test_get_refuses_non_bool_booleans(db, options):
    # CouchDB 3.5: GET /db/a?conflicts=1 answers without _conflicts, revs=1 without
    # _revisions (only "true" is true): the document came back without them, silently
    db.save({"_id": "a"})
    with pytest.raises(couchcore.InvalidInput, match=next(iter(options))):
        db.get("a", **options)
    with pytest.raises(couchcore.InvalidInput, match=next(iter(options))):
        db.get_many(["a"], **options)


def test_get_still_takes_bools_and_their_text(db):
    db.save({"_id": "a"})
    assert "_revisions" in db.get("a", revs=True)
    assert "_revisions" in db.get("a", revs="true")
    assert "_revisions" not in db.get("a", revs=False)
    assert "_revisions" not in db.get("a", revs=None)


# -- auth=(user, password) of the wrong types -----------------------------------------------

@pytest.mark.parametrize("auth", [(None, "admin"), (None, None), ("", "pw"), (b"admin", b"admin"),
                                  ("admin", b"admin"), ("admin", 123), ("admin", None), ("a:b", "pw")])
def test_basic_auth_pair_of_the_wrong_types_is_refused(couch_url, auth):
    # (None, "admin"): no credentials were sent at all, silently (session(): name None);
    # bytes or an int were sent as their repr ("b'admin'"): "401 Name or password is
    # incorrect" for the right credentials; "a:b" is read by the server as user "a"
    from couchcore._urls import split_credentials

    base = split_credentials(couch_url)[0]
    with pytest.raises(couchcore.InvalidInput, match="auth") as caught:
        couchcore.Server(base, auth=auth)
    assert "admin" not in str(caught.value) and "pw" not in str(caught.value)
    with pytest.raises(couchcore.InvalidInput, match="auth"):
        couchcore.Database(f"{base}/somedb", auth=auth)


def test_url_user_with_a_colon_is_refused():
    with pytest.raises(couchcore.InvalidInput, match="':'"):
        couchcore.Server("http://a%3Ab:pw@127.0.0.1:5984")


def test_basic_auth_pair_still_works(couch_url, server):
    from couchcore._urls import split_credentials

    base, user, password = split_credentials(couch_url)
    if user is None:
        pytest.skip("the test server has no credentials")
    assert couchcore.Server(base, auth=(user, password)).session()["userCtx"]["name"] == user
    assert couchcore.Server(base, auth=[user, password]).session()["userCtx"]["name"] == user


# -- a huge key: the error's URL took minutes to redact --------------------------------------

@pytest.mark.timing
@pytest.mark.parametrize("call", ["view", "get"])
def test_a_huge_key_is_refused_in_linear_time(db, call):
    # CouchDB 3.5 refuses a request line over ~8 KB (curl the same). The
    # URL of the error is redacted (user:password@) by a regex whose scheme part was tried
    # at every letter: n**2 steps for a run of n letters. Before the fix 20k characters took
    # 0.65 s, 100k ~16 s, a key of 2M characters hours, at 100% CPU, before raising
    huge = "x" * 200_000
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            if call == "view":
                db.view("_all_docs", key=huge).all()
            else:
                db.get(huge)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "the error for a 200k-character key took more than 20 s"
    # CouchDB 3.5: a 400, or the connection reset while the request is sent (as with curl);
    # PouchDB Server: 431
    assert isinstance(outcome[0], (couchcore.HTTPError, couchcore.TransportError))
    assert ":admin@" not in str(outcome[0]) and "xxxx" in str(outcome[0])


def test_redaction_still_hides_credentials_next_to_long_runs():
    from couchcore.errors import redact_url

    text = "GET 1http://u:secret@h/db?key=%22" + "x1" * 5000 + "%22 and ftp+x://a:b@c"
    out = redact_url(text)
    assert "secret" not in out and "a:b@" not in out
    assert out.startswith("GET 1http://***@h/db?key=%22x1x1") and out.endswith("ftp+x://***@c")


# -- a descending continuous feed: every change again, without end ---------------------------

@pytest.mark.parametrize("descending", [True, "true"])
def test_continuous_feed_refuses_descending(one_copy_db, descending):
    db = one_copy_db  # one copy per shard: _changes right after the five writes
    # CouchDB 3.5 answers _changes?feed=continuous&descending=true with every change, newest
    # first, then last_seq, heartbeat or not, and ignores since when descending (curl): the
    # feed reconnected from last_seq and delivered every change again, without end (200
    # changes delivered for a database of 66 and still going)
    _five(db)
    with pytest.raises(couchcore.InvalidOption, match="descending"):
        db.changes(feed="continuous", descending=descending)
    with pytest.raises(couchcore.InvalidOption, match="descending"):
        db.changes(lambda seq, changes: None, descending=descending)
    newest_first = db.changes(descending=True).all()  # the normal feed is the way
    assert len(newest_first) == 5


@pytest.mark.parametrize("backend_name", _async_backends())
def test_continuous_feed_refuses_descending_async(couch_url, db, backend_name):
    async def main() -> None:
        adb = couchcore.aio.Database(f"{couch_url}/{db.name}", backend=backend_name)
        with pytest.raises(couchcore.InvalidOption, match="descending"):
            adb.changes(feed="continuous", descending=True)

    asyncio.run(main())


# -- view= without filter="_view": every change ----------------------------------------------

def test_changes_view_option_filters_by_the_view(one_copy_db):
    db = one_copy_db  # one copy per shard: _changes right after the design document is saved
    # CouchDB 3.5 reads _changes?view=a/v only with filter=_view (curl: view=a/nored alone
    # answered all 66 changes, with filter=_view 64); doc_ids= and selector= already set
    # their filter, view= did not, so every change came back, silently
    db.save([{"_id": f"d{i}", "n": i} for i in range(6)])
    db.save({"_id": "_design/a", "views": {"big": {"map": "function(d){ if (d.n > 3) emit(d._id) }"}}})
    ids = sorted(c["id"] for c in db.changes(view="a/big").all())
    assert ids == ["d4", "d5"]
    assert sorted(c["id"] for c in db.changes(filter="_view", view="a/big").all()) == ids
    follower = db.follow(since=0, one_off=True, view="a/big")
    assert sorted(c["id"] for c in follower) == ids


@pytest.mark.parametrize("options", [
    {"view": "a/big", "filter": "app/f"}, {"doc_ids": ["a"], "filter": "_design"},
    {"selector": {"n": 1}, "filter": "_view"}, {"doc_ids": ["a"], "selector": {"n": 1}},
])
def test_changes_refuses_a_builtin_filter_option_with_another_filter(db, options):
    # CouchDB ignores view=/doc_ids=/selector= under another filter: all its changes, silently
    with pytest.raises(couchcore.InvalidOption, match="works with filter"):
        db.changes(**options)


@pytest.mark.parametrize("options", [{"new_edits": 0}, {"new_edits": "false"}, {"all_or_nothing": 1}])
def test_save_refuses_non_bool_bulk_options(db, options):
    # CouchDB 3.5: {"new_edits": 0, "docs": [...]} answers 500 unknown_error function_clause
    with pytest.raises(couchcore.InvalidInput, match=next(iter(options))):
        db.save([{"_id": "a", "_rev": "1-abc"}], **options)
    assert "a" not in db


def test_save_new_edits_false_still_works(db):
    db.save([{"_id": "a", "_rev": "1-abc", "v": 1}], new_edits=False)
    assert db.get("a")["_rev"] == "1-abc"
