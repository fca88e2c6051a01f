"""Reviewer r29b's findings 1 and 3 and an aside (benchmarks/results/reviewer-r29b.md), faults
made by :class:`couchcore.testing.FaultyProxy` in front of the test server.

* HIGH 1: a load resumed from a checkpoint after batches were given up on (rejected,
  ``unknown_outcome``) sent nothing and reported success. Now a batch given up on is never
  confirmed in the checkpoint: the resumed load sends it again, settled for every mode
  (create-only reconciles its own earlier write, no false conflict), and a resumed load whose
  checkpoint recorded rejections reports them (``LoadReport.earlier``, ``ok`` false; the
  command exits 1), also when it has nothing left to send.
* MEDIUM 3: a GET through ``SessionAuth`` whose login (``POST /_session``) met a broken
  connection raised ``OutcomeUnknown``: the login is retried now (it creates nothing); the
  caller's own write is still never sent again after a break.
* Aside: ``checkpoint="path"`` raises ``InvalidInput`` naming ``Checkpoint.open(path)``.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
from typing import Any, Iterator

import pytest

import couchcore
from couchcore import bulk
from couchcore.testing import FaultyProxy

from tests.helpers import async_backends, proxied_db, run_cli

SYNC = ["urllib3", "pycurl"]


def _skip_missing(backend: str) -> None:
    if backend == "pycurl":
        pytest.importorskip("pycurl")


@pytest.fixture
def proxied(couch_url):
    """(proxy, database name, (user, password) or None, direct Database)."""
    yield from proxied_db(couch_url, "r29c")


def _docs(n: int, new_edits: bool = True) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [{"_id": f"d{i:05d}", "n": i} for i in range(n)]
    if not new_edits:
        for d in docs:
            d["_rev"] = "1-" + f"{d['n']:032x}"
    return docs


def _stored(direct: couchcore.Database) -> dict[str, Any]:
    return {row.id: row.doc for row in direct.view("_all_docs", include_docs=True)}


def _bulk_posts(proxy: FaultyProxy, name: str) -> int:
    return sum(1 for m, t in proxy.seen if m == "POST" and t.startswith(f"/{name}/_bulk_docs"))


# -- HIGH 1: the library -------------------------------------------------------------------------------

MODES = {
    "create": {},
    "skip_existing": {"skip_existing": True},
    "upsert": {"upsert": True},
    "new_edits_false": {"new_edits": False},
}


@pytest.mark.parametrize("fault", ["answer_lost", "reset_before"])
@pytest.mark.parametrize("mode", list(MODES))
def test_a_resumed_load_sends_the_batches_given_up_on_again(proxied, tmp_path, mode, fault):
    """Run 1: the first 6 _bulk_docs requests (a batch is sent twice: retries=1) break,
    either after CouchDB applied them (the answer lost) or before they were forwarded: the
    documents of at least the first batch are rejected as unknown_outcome, the checkpoint is
    not complete and its confirmed prefix stops before them. Run 2, the network fine again, with the same checkpoint: they are sent
    again and settled -- written (create-only reconciles its own earlier write: no conflict)
    or skipped -- and the database holds all 500 once, at their first revision. Run 3: nothing
    left, nothing rejected before: ok."""
    proxy, name, auth, direct = proxied
    kw = MODES[mode]
    new_edits = kw.get("new_edits", True)
    if fault == "answer_lost":
        proxy.cut_after_send("POST", f"/{name}/_bulk_docs", count=6)
    else:
        proxy.drop("POST", f"/{name}/_bulk_docs", count=6, reset=True)
    db = couchcore.Server(proxy.url, auth=auth, backend="urllib3").db(name)
    path = tmp_path / "ck.json"

    def run() -> bulk.LoadReport:
        cp = bulk.Checkpoint.open(path, database=name, input="docs")
        return bulk.load(db, _docs(500, new_edits), batch_size=100, concurrency=1, retries=1, backoff=0.01,
                         checkpoint=cp, **kw)

    r1 = run()
    assert 100 <= r1.unknown == r1.rejected and r1.written + r1.skipped + r1.rejected == 500, r1
    assert all(f.error == bulk.UNKNOWN_OUTCOME for f in r1.failures)
    saved = json.loads(path.read_text())
    # not complete; the confirmed prefix stops before the first document given up on
    confirmed = saved["records"]
    assert saved["complete"] is False and confirmed < min(f.line for f in r1.failures), saved
    assert saved["counts"]["rejected"] == 0 and saved["counts"]["written"] + saved["counts"]["skipped"] == confirmed
    assert not r1.ok
    assert "resume the load with the same checkpoint" in r1.failures[0].reason
    proxy.clear()

    r2 = run()
    assert r2.rejected == 0 and r2.unknown == 0 and r2.ok, r2
    # everything after the confirmed prefix is sent again
    assert r2.read == 500 - confirmed and r2.written + r2.skipped == r2.read, r2
    assert r2.earlier["read"] == confirmed and r2.earlier["rejected"] == 0
    if mode == "create":
        assert r2.skipped == 0  # its own earlier writes reconciled as written, never a conflict
    stored = _stored(direct)
    assert sorted(stored) == [d["_id"] for d in _docs(500)]
    assert all(doc["_rev"].startswith("1-") for doc in stored.values())
    saved = json.loads(path.read_text())
    assert saved["complete"] is True and saved["records"] == 500
    assert saved["counts"]["rejected"] == 0 and saved["counts"]["unknown"] == 0, saved

    posts = _bulk_posts(proxy, name)
    r3 = run()
    assert r3.read == 0 and r3.ok and r3.earlier["read"] == 500 and r3.earlier["rejected"] == 0, r3
    assert _bulk_posts(proxy, name) == posts


def test_a_resumed_complete_load_with_rejections_is_not_ok(proxied, tmp_path):
    """A load whose checkpoint recorded settled rejections (a conflict, input that is no JSON)
    and is complete: a run resumed from it sends nothing, and its report carries the
    recorded counts and is not ok (it said 'read 0, rejected 0' as if all was well)."""
    proxy, name, auth, direct = proxied
    direct.save({"_id": "d00003", "other": True})
    db = couchcore.Server(proxy.url, auth=auth).db(name)
    path = tmp_path / "ck.json"
    items = [json.dumps(d).encode() for d in _docs(10)] + [b"{not json"]

    def run() -> bulk.LoadReport:
        return bulk.load(db, items, batch_size=4, checkpoint=bulk.Checkpoint.open(path, database=name))

    r1 = run()
    assert r1.rejected == 2 and r1.written == 9 and not r1.ok, r1
    assert {f.error for f in r1.failures} == {"conflict", "invalid_json"}
    posts = _bulk_posts(proxy, name)
    r2 = run()
    assert (r2.read, r2.written, r2.rejected) == (0, 0, 0)
    assert r2.earlier == {"read": 11, "written": 9, "skipped": 0, "rejected": 2, "unknown": 0}, r2.earlier
    assert not r2.ok
    assert "before this run (checkpoint): read 11, written 9, skipped 0, rejected 2" in str(r2)
    assert _bulk_posts(proxy, name) == posts


# -- HIGH 1: the command line --------------------------------------------------------------------------


def _cli_url(proxy: FaultyProxy, name: str, auth: Any) -> str:
    if not auth:
        return f"{proxy.url}/{name}"
    return proxy.url.replace("http://", f"http://{auth[0]}:{auth[1]}@") + f"/{name}"


def _lines(path: pathlib.Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("backend", SYNC)
def test_rerunning_the_command_after_given_up_batches_writes_them(proxied, tmp_path, backend):
    """The reviewer's case: `couchcore load ... --resume CK --rejects R` whose first batches
    were reset by the network (3 of 6 batches, 150 of them without _id), then the same
    command again: it sent nothing and exited 0 with the documents missing. Now run 2 sends
    them, exits 0 with every document stored once (the generated ids kept), and the rejects
    file no longer lists them."""
    _skip_missing(backend)
    proxy, name, auth, direct = proxied
    src = tmp_path / "in.jsonl"
    docs = [({"_id": f"d{i:05d}", "n": i} if i % 2 else {"n": i, "noid": True}) for i in range(600)]
    src.write_text("".join(json.dumps(d) + "\n" for d in docs))
    ck, rej = tmp_path / "ck.json", tmp_path / "rej.jsonl"
    cmd = ["load", _cli_url(proxy, name, auth), src, "--batch-size", "100", "--concurrency", "1",
           "--retries", "0", "--resume", ck, "--rejects", rej, "--backend", backend]
    proxy.drop("POST", f"/{name}/_bulk_docs", count=3, reset=True)
    r1 = run_cli(*cmd)
    err1 = r1.stderr.decode()
    assert r1.returncode == 1, err1
    assert "rejected 300 (300 of them outcome unknown" in err1, err1
    assert len(_lines(rej)) == 300
    assert direct.info()["doc_count"] == 300
    left = 600 - json.loads(ck.read_text())["records"]  # after the confirmed prefix: sent again
    assert left >= 300
    proxy.clear()

    r2 = run_cli(*cmd)
    err2 = r2.stderr.decode()
    assert r2.returncode == 0, err2
    assert f"read {left}, written {left}, skipped 0, rejected 0" in err2, err2  # reconciled: no conflict
    stored = _stored(direct)
    assert len(stored) == 600 and sum(1 for d in stored.values() if d.get("noid")) == 300
    assert sorted(d["n"] for d in stored.values()) == list(range(600))
    assert _lines(rej) == []  # settled by run 2: not listed as rejected any more
    saved = json.loads(ck.read_text())
    assert saved["complete"] is True and saved["counts"]["written"] == 600 and saved["counts"]["rejected"] == 0
    assert "run the same command again" in err1  # run 1 said so (in each reject's reason too)


def test_rerunning_a_complete_load_that_rejected_documents_exits_1(proxied, tmp_path):
    """A complete checkpoint that recorded rejections: the same command again has nothing to
    send, and exits 1 saying how many the earlier runs rejected and where they are (it exited
    0 saying 'rejected 0'). --quiet too."""
    proxy, name, auth, direct = proxied
    direct.save({"_id": "d00002", "other": True})
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in _docs(8)) + "{not json\n")
    ck, rej = tmp_path / "ck.json", tmp_path / "rej.jsonl"
    cmd = ["load", _cli_url(proxy, name, auth), src, "--resume", ck, "--rejects", rej]
    r1 = run_cli(*cmd)
    assert r1.returncode == 1, r1.stderr.decode()
    assert len(_lines(rej)) == 2
    posts = _bulk_posts(proxy, name)
    for extra in ([], ["--quiet"]):
        r2 = run_cli(*cmd, *extra)
        err2 = r2.stderr.decode()
        assert r2.returncode == 1, err2
        assert "records 2 document(s) rejected by earlier runs" in err2, err2
        assert "nothing left to send" in err2 and str(rej) in err2
        assert len(_lines(rej)) == 2  # kept: they are in the checkpoint's confirmed part
    assert _bulk_posts(proxy, name) == posts


def test_a_checkpoint_of_an_older_version_complete_with_unknown_rejects_exits_1(proxied, tmp_path):
    """A checkpoint written by the version the reviewer measured (its confirmed prefix ran past
    outcome-unknown rejects, marked complete): resuming it exits 1 and names the counts."""
    proxy, name, auth, direct = proxied
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in _docs(10)))
    ck = tmp_path / "ck.json"
    ck.write_text(json.dumps({"version": 1, "database": "", "input": "", "records": 10, "line": 10, "sent": 10,
                              "id_prefix": "0123456789abcdef012a", "complete": True,
                              "counts": {"read": 10, "written": 4, "skipped": 0, "rejected": 6, "unknown": 6},
                              "head": ""}))
    r = run_cli("load", _cli_url(proxy, name, auth), src, "--resume", ck)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "records 6 document(s) rejected by earlier runs" in err, err
    assert "rejected 6" in err


# -- aside: checkpoint="path" --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [str, pathlib.Path])
def test_a_path_as_checkpoint_is_refused_before_reading_input(proxied, tmp_path, kind):
    proxy, name, auth, direct = proxied
    db = couchcore.Server(proxy.url, auth=auth).db(name)
    started: list[int] = []

    def docs() -> Iterator[dict[str, Any]]:
        started.append(1)
        yield {"_id": "x"}

    with pytest.raises(couchcore.InvalidInput) as info:
        bulk.load(db, docs(), checkpoint=kind(os.fspath(tmp_path / "ck.json")))  # type: ignore[arg-type]
    assert "Checkpoint.open(path)" in str(info.value)
    assert not started and not (tmp_path / "ck.json").exists()
    assert direct.info()["doc_count"] == 0


# -- MEDIUM 3: SessionAuth's login over a broken connection ---------------------------------------------

FAULTS = ["drop", "reset", "answer_lost"]


def _break_login(proxy: FaultyProxy, fault: str) -> None:
    if fault == "answer_lost":
        proxy.cut_after_send("POST", "/_session")
    else:
        proxy.drop("POST", "/_session", reset=fault == "reset")


def _logins(proxy: FaultyProxy) -> int:
    return sum(1 for m, t in proxy.seen if m == "POST" and t.startswith("/_session"))


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("backend", SYNC)
def test_a_get_whose_login_breaks_goes_through(proxied, backend, fault):
    _skip_missing(backend)
    proxy, name, auth, direct = proxied
    if not auth:
        pytest.skip("the test server takes no credentials")
    direct.save({"_id": "g", "n": 7})
    _break_login(proxy, fault)
    server = couchcore.Server(proxy.url, auth=couchcore.SessionAuth(*auth), backend=backend)
    try:
        assert server.db(name).get("g")["n"] == 7
        assert _logins(proxy) == 2 and server.auth.logins == 1
    finally:
        server.close()


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("engine", async_backends())
def test_a_get_whose_login_breaks_goes_through_on_the_async_facade(proxied, engine, fault):
    proxy, name, auth, direct = proxied
    if not auth:
        pytest.skip("the test server takes no credentials")
    direct.save({"_id": "g", "n": 8})
    _break_login(proxy, fault)

    async def main() -> Any:
        async with couchcore.aio.Server(proxy.url, auth=couchcore.SessionAuth(*auth), backend=engine) as server:
            db = await server.db(name)
            return (await db.get("g"))["n"]

    assert asyncio.run(main()) == 8
    assert _logins(proxy) == 2


@pytest.mark.parametrize("backend", SYNC)
def test_the_users_write_is_still_never_sent_again_after_a_break(proxied, backend):
    """(7389aef's rule kept) A write through SessionAuth whose answer is lost raises
    OutcomeUnknown and is sent once, applied once; only the login is repeated."""
    _skip_missing(backend)
    proxy, name, auth, direct = proxied
    if not auth:
        pytest.skip("the test server takes no credentials")
    server = couchcore.Server(proxy.url, auth=couchcore.SessionAuth(*auth), backend=backend)
    try:
        db = server.db(name)
        assert db.exists()
        proxy.cut_after_send("POST", f"/{name}")
        seen = len(proxy.seen)
        with pytest.raises(couchcore.OutcomeUnknown):
            db.save({"_id": "w", "v": 1})
        writes = [(m, t) for m, t in proxy.seen[seen:] if m == "POST" and t.startswith(f"/{name}")]
        assert len(writes) == 1, proxy.seen[seen:]
        assert direct.get("w")["_rev"].startswith("1-")
    finally:
        server.close()
