"""``db.build_view(name, timeout=..., progress=...)``: build an index and wait for it
(issue 15, item 11).

The views here are made slow on purpose (the map function spins a few milliseconds per
document), so building their index takes seconds and the waiting, progress and timeout
paths really run against the server. A canned-response test at the end covers CouchDB's
``500 timeout`` answers, which a test server does not give on demand.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

import couchcore
import couchcore.tornado as ct
from couchcore.protocol import indexes
from couchcore.protocol.messages import Response
from couchcore.protocol.server import ServerContext

DOCS = 200


def slow_ddoc(ms_per_doc: int) -> dict:
    spin = f"var t = Date.now(); while (Date.now() - t < {ms_per_doc}) {{}}"
    return {"_id": "_design/s", "views": {"by_n": {"map": f"function(d){{ {spin}; if (d.n !== undefined) emit(d.n, null) }}"}}}


@pytest.fixture
def db(one_copy_db):
    """A fresh database with ONE copy of each shard (``n=1``; PouchDB Server ignores it).
    A cluster builds a view's index on the copies a query reads, one per shard
    (https://docs.couchdb.org/en/stable/cluster/sharding.html#quorum: views read one copy
    whatever the quorum), and a later ``stale=ok`` read may reach another copy whose index
    is still being built in the background: with one copy, "built" means built for every
    read."""
    return one_copy_db


@pytest.fixture
def filled(db):
    assert db.save([{"_id": f"d{i:04d}", "n": i} for i in range(DOCS)]).ok
    return db


def stale_rows(db) -> int:
    """Rows the index holds right now, without triggering a build."""
    return len(db.view("s/by_n", stale="ok").all())


def test_build_view_waits_until_the_index_is_built(filled):
    filled.save(slow_ddoc(0))
    out = filled.build_view("s/by_n")
    assert out["view"] == "s/by_n" and out["attempts"] >= 1 and out["elapsed"] > 0
    assert stale_rows(filled) == DOCS


def test_progress_is_reported_while_building(filled, is_couchdb):
    filled.save(slow_ddoc(10))  # >= 2 s of building
    seen: list[dict] = []
    out = filled.build_view("_design/s/_view/by_n", progress=seen.append, poll=0.3)
    assert stale_rows(filled) == DOCS
    assert len(seen) >= 2 and out["attempts"] == len(seen) + 1
    assert [s["elapsed"] for s in seen] == sorted(s["elapsed"] for s in seen)
    assert all(s["view"] == "_design/s/_view/by_n" and s["attempts"] >= 1 for s in seen)
    if is_couchdb:  # CouchDB lists an indexer task per shard, with its progress
        assert any(s["tasks"] >= 1 and s["percent"] is not None for s in seen), seen


def test_timeout_raises_and_the_server_goes_on_building(filled):
    filled.save(slow_ddoc(10))
    t0 = time.monotonic()
    with pytest.raises(couchcore.IndexBuildTimeout, match=r"'s/by_n'.*timeout=0.5s") as info:
        filled.build_view("s/by_n", timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert isinstance(info.value, couchcore.TimeoutError) and isinstance(info.value, TimeoutError)
    assert info.value.status is not None and info.value.status["view"] == "s/by_n"
    filled.build_view("s/by_n")  # waiting again finishes the same build
    assert stale_rows(filled) == DOCS


def test_a_missing_view_is_not_found(filled):
    filled.save(slow_ddoc(0))
    with pytest.raises(couchcore.NotFound):
        filled.build_view("s/nope")
    with pytest.raises(couchcore.NotFound):
        filled.build_view("absent/by_n")


def test_bad_arguments_raise_before_anything_is_sent():
    dead = couchcore.Server("http://127.0.0.1:9", retries=0)._database("offline")
    for bad in ({"name": "_all_docs"}, {"name": "a/b/c"}, {"name": "s/v", "timeout": -1},
                {"name": "s/v", "timeout": "5"}, {"name": "s/v", "poll": 0},
                {"name": "s/v", "progress": "bar"}):
        with pytest.raises(couchcore.InvalidInput):
            dead.build_view(**bad)


def test_async_build_view(couch_url, filled, backend):
    # each sync backend stands for an async one: Tornado's client, libcurl on the loop
    abackend = "tornado" if backend == "urllib3" else "pycurl"
    filled.save(slow_ddoc(10))

    async def main():
        server = ct.Server(couch_url, backend=abackend)
        seen: list[dict] = []
        out = await server._database(filled.name).build_view("s/by_n", progress=seen.append, poll=0.3)
        server.close()
        return out, seen

    out, seen = asyncio.run(asyncio.wait_for(main(), 60))
    assert out["attempts"] == len(seen) + 1 and stale_rows(filled) == DOCS


# -- CouchDB's 500 timeout, on canned responses ------------------------------------------------


def canned(status: int, body) -> Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Response(status, {"Content-Type": "application/json"}, body=data, method="GET",
                    url="http://127.0.0.1:5984/big/_design/s/_view/by_n")


def test_server_timeouts_mean_still_building():
    """``500 timeout`` and a ``timeout`` error inside a 200 body are retried, with progress
    from the shards' indexer tasks in between (CouchDB 3.5 ``_active_tasks`` format)."""
    seen: list[dict] = []
    op = indexes.build_view(ServerContext(), "big", "s/by_n", progress=seen.append, poll=1)
    tasks = [
        {"type": "indexer", "database": "shards/00000000-7fffffff/big.1700000000", "design_document": "_design/s",
         "progress": 40, "changes_done": 400, "total_changes": 1000, "node": "couchdb@127.0.0.1"},
        {"type": "indexer", "database": "shards/80000000-ffffffff/big.1700000000", "design_document": "_design/s",
         "progress": 60, "changes_done": 600, "total_changes": 1000, "node": "couchdb@127.0.0.1"},
        {"type": "indexer", "database": "shards/00000000-7fffffff/other.1700000000", "design_document": "_design/s",
         "progress": 1, "changes_done": 1, "total_changes": 1000, "node": "couchdb@127.0.0.1"},
        {"type": "replication", "database": "big"},
    ]
    answers = [
        canned(500, {"error": "timeout", "reason": "The request could not be processed in a reasonable amount of time."}),
        canned(200, tasks),
        canned(200, b'{"total_rows":0,"rows":[\r\n\r\n],\n"error":"timeout","reason":"fabric timeout"}'),
        canned(200, tasks[:1]),
        canned(200, {"total_rows": 2000, "offset": 2000, "rows": []}),
    ]
    sent = []
    req = next(op)
    try:
        while True:
            sent.append((req.path, req.timeout))
            req = op.send(answers.pop(0))
    except StopIteration as stop:
        out = stop.value
    assert out["attempts"] == 3 and not answers
    assert [p for p, _ in sent] == ["/big/_design/s/_view/by_n", "/_active_tasks"] * 2 + ["/big/_design/s/_view/by_n"]
    assert sent[0][1] == 1.0  # each query waits at most `poll` seconds when progress is wanted
    assert [(s["tasks"], s["percent"], s["changes_done"], s["total_changes"]) for s in seen] == [
        (2, 50.0, 1000, 2000), (1, 40.0, 400, 1000)]


def test_a_server_too_busy_to_report_progress_still_gives_the_timeout():
    """While a slow map function runs, PouchDB Server's one event loop cannot answer
    ``/_active_tasks``: the progress poll is best effort, so the caller still gets
    IndexBuildTimeout (not the poll's connection error), with the figures left None."""
    op = indexes.build_view(ServerContext(), "big", "s/by_n", timeout=0.01, poll=0.5)
    req = next(op)
    time.sleep(0.02)
    req = op.throw(couchcore.ReadTimeout("read timed out", req.path))
    assert req.path == "/_active_tasks" and req.timeout == 0.5
    with pytest.raises(couchcore.IndexBuildTimeout) as info:
        op.throw(couchcore.ConnectionError("Connection died", req.path))
    assert info.value.status["percent"] is None and info.value.status["attempts"] == 1


def test_other_server_errors_are_raised():
    op = indexes.build_view(ServerContext(), "big", "s/by_n")
    next(op)
    with pytest.raises(couchcore.ServerError, match="os_process_error"):
        op.send(canned(500, {"error": "os_process_error", "reason": "map function crashed"}))


# -- the command line ---------------------------------------------------------------------------


def db_url(couch_url: str, name: str) -> str:
    return f"{couch_url.rstrip('/')}/{name}"


def test_cli_builds_with_a_progress_bar(couch_url, filled, backend, capsys):
    from couchcore.cli import main

    if backend != "urllib3":
        pytest.skip("the command picks its own backend: run once")
    filled.save(slow_ddoc(10))
    assert main(["build-view", db_url(couch_url, filled.name), "s/by_n", "--poll", "0.3"]) == 0
    err = capsys.readouterr().err
    assert "building s/by_n" in err and "100%" in err and "built s/by_n in" in err
    assert "admin:" not in err  # no credentials on the terminal
    assert stale_rows(filled) == DOCS


def test_cli_exit_status_on_timeout_and_on_errors(couch_url, filled, backend, capsys):
    from couchcore.cli import main

    if backend != "urllib3":
        pytest.skip("the command picks its own backend: run once")
    filled.save(slow_ddoc(10))
    url = db_url(couch_url, filled.name)
    assert main(["build-view", url, "s/by_n", "--timeout", "0.5", "--quiet"]) == 1
    assert "was not built within timeout=0.5s" in capsys.readouterr().err
    assert main(["build-view", url, "s/nope", "--quiet"]) == 2
    assert main(["build-view", url, "not-a-view-name", "--quiet"]) == 2
    assert main(["build-view", url, "s/by_n", "--timeout", "-3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "admin:" not in err and err.count("couchcore build-view:") == 3
    assert main(["build-view", url, "s/by_n", "--quiet"]) == 0  # the build went on meanwhile


def test_cli_refused_view_name_prints_one_line_and_no_bar(couch_url, db, backend, capsys):
    """A view name refused before anything is sent: the error line alone (the progress bar is
    drawn at the first progress report, not before)."""
    from couchcore.cli import main

    if backend != "urllib3":
        pytest.skip("the command picks its own backend: run once")
    assert main(["build-view", db_url(couch_url, db.name), "not-a-view-name"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("couchcore build-view: invalid view name") and len(err.splitlines()) == 1, err
    assert "building" not in err
