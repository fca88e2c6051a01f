"""Round 27, fixes of reviewer-r27.md findings 1, 2, 4 and 5 (3 is elsewhere). Each test
failed before its fix (see the commit that added it) and passes on PouchDB Server and on
Apache CouchDB 3.5; ``couchdb_only`` marks what PouchDB Server answers differently."""

from __future__ import annotations

import pytest

import couchcore


@pytest.fixture
def db(one_copy_db):
    """One copy per shard (n=1): _all_docs right after a write sees it on a cluster too."""
    return one_copy_db


# -- 4. find()/iterfind() leave None options out, as view()/get()/changes() do ----------------
# https://docs.couchdb.org/en/stable/api/database/find.html: every _find body field is typed
# (integer, array, boolean, string); CouchDB refuses null for each with 400

_FIND_OPTIONS = ["limit", "skip", "sort", "fields", "r", "conflicts", "update", "stable", "execution_stats",
                 "bookmark", "use_index"]


def _find_docs(db):
    db.save([{"_id": f"f{i}", "k": i % 3} for i in range(9)])
    return sorted(d["_id"] for d in db.find({"k": 1})["docs"])


@pytest.mark.parametrize("option", _FIND_OPTIONS)
def test_find_leaves_none_options_out(db, option):
    expected = _find_docs(db)
    assert expected == ["f1", "f4", "f7"]
    assert sorted(d["_id"] for d in db.find({"k": 1}, **{option: None})["docs"]) == expected
    # _explain takes the same body
    assert db.explain({"k": 1}, **{option: None})["selector"] == {"k": {"$eq": 1}}


@pytest.mark.parametrize("option", _FIND_OPTIONS)
def test_iterfind_leaves_none_options_out(db, option):
    expected = _find_docs(db)
    assert sorted(d["_id"] for d in db.iterfind({"k": 1}, page_size=2, **{option: None})) == expected


@pytest.mark.parametrize("option", _FIND_OPTIONS)
def test_find_none_options_on_the_async_facade(db, couch_url, option):
    import asyncio

    expected = _find_docs(db)

    async def main() -> tuple[list[str], list[str]]:
        async with couchcore.aio.Server(couch_url) as aserver:
            adb = await aserver.db(db.name)
            found = await adb.find({"k": 1}, **{option: None})
            paged = [d["_id"] async for d in adb.iterfind({"k": 1}, page_size=2, **{option: None})]
            return sorted(d["_id"] for d in found["docs"]), sorted(paged)

    assert asyncio.run(main()) == (expected, expected)


@pytest.mark.couchdb_only  # PouchDB Server has no partitioned databases
def test_partition_find_leaves_none_options_out(server, db_name):
    db = server.create(db_name, partitioned=True, n=1)
    try:
        db.save([{"_id": f"p1:x{i}", "k": i % 2} for i in range(6)] + [{"_id": "p2:y", "k": 1}])
        part = db.partition("p1")
        for option in _FIND_OPTIONS:
            assert sorted(d["_id"] for d in part.find({"k": 1}, **{option: None})["docs"]) == \
                ["p1:x1", "p1:x3", "p1:x5"], option
            assert sorted(d["_id"] for d in part.iterfind({"k": 1}, page_size=2, **{option: None})) == \
                ["p1:x1", "p1:x3", "p1:x5"], option
            assert part.explain({"k": 1}, **{option: None})["selector"] == {"k": {"$eq": 1}}, option
    finally:
        server.delete(db_name)


# -- 5. "_id": null in bulk.load / couchcore load is rejected (invalid_id) ------------------------
# CouchDB refuses "_id": null itself (400 illegal_docid, "Document id must be a string":
# https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-docs); a generated id
# added the document again on every run of the same load

def _null_id_rows() -> list:
    return [{"_id": None, "v": "dict-null"}, {"_id": "keep", "v": 1}, b'{"_id": null, "v": "bytes-null"}',
            b'{"v": "bytes-noid", "_id" :null}', {"v": "no-id"}, (9, {"_id": None, "v": "pair"}),
            (10, b'{"_id":null}')]


@pytest.mark.parametrize("mode", [{}, {"skip_existing": True}, {"upsert": True}])
def test_bulk_load_rejects_null_id_from_dicts_and_bytes(db, mode):
    from couchcore.bulk import load

    for run in range(2):
        rows = _null_id_rows()
        report = load(db, rows, **mode)
        assert sorted(f.error for f in report.failures if f.error == "invalid_id") == ["invalid_id"] * 5, \
            report.failures
        assert all("_id is null" in f.reason for f in report.failures if f.error == "invalid_id")
        assert rows[0] == {"_id": None, "v": "dict-null"}  # the caller's dict is left as it was
    values = sorted(str(d.get("v")) for d in [r.doc for r in db.view("_all_docs", include_docs=True)])
    assert values == ["1", "no-id", "no-id"]  # only the document without _id is new each run


def test_bulk_load_rejects_null_id_from_json_lines(db, tmp_path):
    from couchcore import bulk

    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"_id": null, "v": "nullid"}\n{"_id": "keep", "v": 1}\n{"v":2,"_id":null}\n'
                     + b"".join(b'{"_id": "x%d"}\n' % i for i in range(50)) + b'{ "_id" : null }\n')
    for _ in range(2):
        with open(path, "rb") as f:
            report = bulk.load(db, bulk.JsonLines(f, chunk=64), skip_existing=True)
        assert sorted((f.line, f.error) for f in report.failures) == [(1, "invalid_id"), (3, "invalid_id"),
                                                                       (54, "invalid_id")]
    assert db.info()["doc_count"] == 51


def test_cli_load_rejects_null_id_and_a_rerun_adds_nothing(db, couch_url, tmp_path):
    import json

    from tests.helpers import run_cli

    source = tmp_path / "in2.jsonl"
    source.write_bytes(b'{"_id": null, "v": "nullid"}\n{"_id": "keep", "v": 1}\n')
    rejects = tmp_path / "rej.jsonl"
    for extra in ((), ("--skip-existing",)):
        proc = run_cli("load", f"{couch_url}/{db.name}", source, "--rejects", rejects, *extra)
        assert proc.returncode == 1, proc.stderr
        records = [json.loads(line) for line in rejects.read_bytes().splitlines()]
        assert [(r["_load_error"]["line"], r["_load_error"]["error"]) for r in records] == [(1, "invalid_id")]
        assert "_id is null" in records[0]["_load_error"]["reason"]
        assert b"rejected 1" in proc.stderr + proc.stdout
    assert [d["_id"] for d in [r.doc for r in db.view("_all_docs", include_docs=True)]] == ["keep"]
    assert db.info()["doc_count"] == 1


# -- 2. Server / Database / SessionAuth / Partition cross processes (pickle) and deepcopy --------
# they were refused with a bare "TypeError: cannot pickle '_thread.lock' object", also as the
# arguments of a multiprocessing Pool under fork; now rebuilt from their configuration there

def _work_in_child(db, n: int) -> tuple[int, str, str]:
    """Run in a worker process: a write and a read through the Database it was handed."""
    import os

    doc = {"_id": f"child-{os.getpid()}-{n}", "n": n}
    db.save(doc)
    return os.getpid(), db.get(doc["_id"])["_id"], db.info()["db_name"]


def _session_in_child(server) -> str:
    return server.session()["userCtx"]["name"]


def _credentials(couch_url):
    from couchcore._urls import split_credentials

    base, user, password = split_credentials(couch_url)
    return base, user, password


def _check_workers(results, db, n):
    import os

    assert sorted(r[1] for r in results) == sorted(f"child-{pid}-{i}" for (pid, _, _), i in zip(results, range(n)))
    assert {r[2] for r in results} == {db.name}
    assert os.getpid() not in {r[0] for r in results}
    assert sum(1 for row in db.view("_all_docs") if row.id.startswith("child-")) == n


@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_database_as_the_argument_of_a_pool(db, method):
    import multiprocessing

    db.info()  # the parent has connections (and, on pycurl, a curl handle) open
    with multiprocessing.get_context(method).Pool(2) as pool:
        results = pool.starmap(_work_in_child, [(db, i) for i in range(4)])
    _check_workers(results, db, 4)
    assert db.info()["db_name"] == db.name  # the parent's Server still works


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_database_to_a_process_pool_executor(db, method):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    db.info()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as pool:
        results = list(pool.map(_work_in_child, [db] * 3, range(3)))
    _check_workers(results, db, 3)


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_server_with_session_auth_to_a_pool(couch_url, backend, method):
    import multiprocessing

    base, user, password = _credentials(couch_url)
    if user is None:
        pytest.skip("needs a server with an admin")
    server = couchcore.Server(base, auth=couchcore.SessionAuth(user, password), backend=backend)
    assert server.session()["userCtx"]["name"] == user  # logged in here: the cookie is not sent along
    with multiprocessing.get_context(method).Pool(2) as pool:
        assert pool.map(_session_in_child, [server, server]) == [user, user]
    server.close()


def _round_trips(obj):
    import copy
    import pickle

    return [pickle.loads(pickle.dumps(obj)), pickle.loads(pickle.dumps(obj, protocol=0)), copy.deepcopy(obj)]


def test_pickle_and_deepcopy_rebuild_each_object(couch_url, backend, db):
    import copy

    base, user, password = _credentials(couch_url)
    server = db.server
    for s in _round_trips(server):
        assert type(s) is type(server) and s is not server and s._transport is not server._transport
        assert (s.url, s.urls, s.options, repr(s)) == (server.url, server.urls, server.options, repr(server))
        assert s._ctx is not server._ctx
        assert s.version() == server.version()
        s.close()
    for d in _round_trips(db):
        assert type(d) is type(db) and d.name == db.name and d.server._transport is not server._transport
        d.save({"_id": f"copy-{id(d)}"})
        assert f"copy-{id(d)}" in db
    # one Server of several Databases in one pickle stays one Server
    import pickle

    a, b = pickle.loads(pickle.dumps([db, db.server.db(db.name)]))
    assert a.server is b.server
    # copy.copy shares the connections, as before
    shallow = copy.copy(db)
    assert shallow.server is server and copy.copy(server)._transport is server._transport
    if user is not None:
        auth = couchcore.SessionAuth(user, password)
        for a in _round_trips(auth):
            assert type(a) is couchcore.SessionAuth and repr(a) == repr(auth) and not a.logged_in
            assert a._login_lock is not auth._login_lock
            with couchcore.Server(base, auth=a, backend=backend) as s:
                assert s.session()["userCtx"]["name"] == user
        for cls in (couchcore.JWTAuth, couchcore.ProxyAuth):
            one = cls("someone")
            assert [repr(x) for x in _round_trips(one)] == [repr(one)] * 3


@pytest.mark.couchdb_only  # PouchDB Server has no partitioned databases
def test_a_partition_crosses_processes(server, db_name):
    import multiprocessing

    db = server.create(db_name, partitioned=True, n=1)
    try:
        db.save([{"_id": f"p1:x{i}"} for i in range(3)] + [{"_id": "p2:y"}])
        part = db.partition("p1")
        for p in _round_trips(part):
            assert p.key == "p1" and p.db.name == db_name and p.db.server._transport is not server._transport
            assert [r.id for r in p.all_docs()] == ["p1:x0", "p1:x1", "p1:x2"]
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            assert pool.map(_partition_ids, [part]) == [["p1:x0", "p1:x1", "p1:x2"]]
    finally:
        server.delete(db_name)


def _partition_ids(part) -> list[str]:
    return [r.id for r in part.all_docs()]


def test_credentials_stay_out_of_reprs_and_messages(couch_url, backend):
    import pickle

    base, user, _ = _credentials(couch_url)
    secret = "pw-r27b-Zq9"
    url = base.replace("://", f"://{user or 'nobody'}:{secret}@")
    for server in (couchcore.Server(url, backend=backend), couchcore.Server(base, auth=("nobody", secret)),
                   couchcore.Server(base, auth=couchcore.SessionAuth("nobody", secret))):
        for s in [server, *_round_trips(server)]:
            shown = [repr(s), str(s), repr(vars(s)), repr(s._config), repr(s._database("x")), repr(vars(s._database("x")))]
            assert not any(secret in text for text in shown), shown
        assert secret.encode() in pickle.dumps(server)  # the pickle carries them (documented)
        with pytest.raises(couchcore.CouchcoreError) as info:
            pickle.loads(pickle.dumps(server)).session() if server.auth is None else \
                pickle.loads(pickle.dumps(server)).login()
        assert secret not in str(info.value) and secret not in repr(info.value)


def test_async_facades_pickle_and_deepcopy(db, couch_url):
    import asyncio

    import couchcore.aio
    import couchcore.tornado

    async def main(mod) -> list[str]:
        server = mod.Server(couch_url)
        adb = await server.db(db.name)
        names = []
        for copy_ in _round_trips(adb):
            assert type(copy_) is type(adb) and copy_.server._transport is not server._transport
            names.append((await copy_.info())["db_name"])
            copy_.server.close()
        server.close()
        return names

    for mod in (couchcore.aio, couchcore.tornado):
        assert asyncio.run(main(mod)) == [db.name] * 3


def test_a_cluster_server_crosses_processes(couch_urls, db_name):
    # a Server over several nodes of one cluster (a NodePool): rebuilt with every node
    import multiprocessing

    server = couchcore.Server(couch_urls)
    db = server.create(db_name, n=1)
    try:
        for s in _round_trips(server):
            assert s.urls == server.urls and len(s.urls) == len(couch_urls) and s._transport is not server._transport
            assert db_name in s
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            results = pool.starmap(_work_in_child, [(db, i) for i in range(3)])
        _check_workers(results, db, 3)
    finally:
        server.delete(db_name)
        server.close()


# -- 1. _local/ documents: CouchDB does no conflict detection on them ---------------------------
# https://docs.couchdb.org/en/stable/api/local.html; CouchDB 3.5 accepts any _rev (stale, made
# up, none) for a _local document and never answers 409, so couchcore's conflict handling,
# which waits for a 409, protected nothing there

def test_update_doc_refuses_local_ids_before_sending(db, refused_url, backend):
    calls = []
    db.save({"_id": "_local/ctr", "n": 1})
    with pytest.raises(couchcore.InvalidInput, match="no conflict detection on _local documents"):
        db.update_doc("_local/ctr", lambda d: calls.append(d) or {"n": 2})
    assert calls == [] and db.get("_local/ctr")["n"] == 1
    # nothing is sent: a server that refuses connections would raise ConnectError first
    with couchcore.Server(refused_url, backend=backend, retries=0) as nowhere:
        offline = nowhere._database("anything")
        with pytest.raises(couchcore.InvalidInput, match="_local"):
            offline.update_doc("_local/x", lambda d: {"n": 1})
        assert not isinstance(pytest.raises(couchcore.CouchcoreError, offline.update_doc, "_local/x",
                                            lambda d: {"n": 1}).value, couchcore.TransportError)
    # ordinary ids are unchanged
    assert db.update_doc("plain", lambda d: {"n": (d or {}).get("n", 0) + 1})["n"] == 1


def test_update_doc_refuses_local_ids_on_the_async_facades(db, couch_url):
    import asyncio

    import couchcore.aio
    import couchcore.tornado

    async def main(mod) -> None:
        async with mod.Server(couch_url) as server:
            adb = await server.db(db.name)
            with pytest.raises(couchcore.InvalidInput, match="_local"):
                await adb.update_doc("_local/ctr", lambda d: {"n": 1})
            with pytest.raises(couchcore.InvalidOption, match="_local"):
                await adb.save({"_id": "_local/ctr", "n": 1}, merge=lambda local, server: local)

    for mod in (couchcore.aio, couchcore.tornado):
        asyncio.run(main(mod))
    with pytest.raises(couchcore.NotFound):
        db.get("_local/ctr")


def test_save_refuses_merge_on_local_ids(db):
    merges = []

    def merge(local, server):
        merges.append(local)
        return local

    with pytest.raises(couchcore.InvalidOption, match="no conflict detection on _local documents"):
        db.save({"_id": "_local/cfg", "v": 1}, merge=merge)
    with pytest.raises(couchcore.InvalidOption, match="'_local/cfg'"):
        db.save([{"_id": "a"}, {"_id": "_local/cfg", "v": 1}], merge=merge)
    assert merges == [] and "a" not in db
    with pytest.raises(couchcore.NotFound):
        db.get("_local/cfg")
    db.save({"_id": "_local/cfg", "v": 1})  # without merge: saved
    assert db.get("_local/cfg")["v"] == 1


@pytest.mark.couchdb_only  # PouchDB Server checks a _local document's _rev; CouchDB does not
def test_a_stale_rev_on_a_local_document_overwrites_without_conflict_as_documented(db):
    # what save()'s docstring now says: no Conflict ever comes for a _local id
    doc = {"_id": "_local/cfg", "v": 1}
    db.save(doc)
    stale = dict(doc)
    newer = db.get("_local/cfg")
    newer["v"] = 2
    db.save(newer)
    stale["v"] = -1
    db.save(stale)  # no Conflict
    assert db.get("_local/cfg")["v"] == -1
    db.save({"_id": "_local/cfg", "v": 3}, force=True)  # no _rev at all: no Conflict either
    assert db.get("_local/cfg")["v"] == 3


def _local_rows():
    return [{"_id": "_local/cfg", "v": "from-load"}, {"_id": "plain", "v": 1}, b'{"_id": "_local/b", "v": 2}',
            b'{"_id": "\\u005flocal/esc", "v": 3}', (7, {"_id": "_local/new", "v": 4}), {"_id": "x_local/y"}]


@pytest.mark.parametrize("mode", [{}, {"skip_existing": True}])
def test_bulk_load_does_not_overwrite_local_documents_without_upsert(db, mode):
    from couchcore.bulk import load

    db.save({"_id": "_local/cfg", "v": "original"})
    report = load(db, _local_rows(), **mode)
    assert sorted((f.id, f.error) for f in report.failures) == [
        ("_local/b", "local_document"), ("_local/cfg", "local_document"), ("_local/esc", "local_document"),
        ("_local/new", "local_document")]
    assert all("no conflict detection on _local documents" in f.reason and "upsert" in f.reason
               for f in report.failures)
    assert report.written == 2 and report.rejected == 4
    assert db.get("_local/cfg")["v"] == "original"
    for docid in ("_local/b", "_local/esc", "_local/new"):
        with pytest.raises(couchcore.NotFound):
            db.get(docid)


def test_bulk_load_json_lines_with_local_documents(db, tmp_path):
    from couchcore import bulk

    db.save({"_id": "_local/cfg", "v": "original"})
    path = tmp_path / "l3.jsonl"
    path.write_bytes(b"".join(b'{"_id": "d%d"}\n' % i for i in range(30)) + b'{"_id":"_local/cfg","v":"from-load"}\n'
                     + b'{"_id": "d30", "note": "_local/ in a value"}\n')
    with open(path, "rb") as f:
        report = bulk.load(db, bulk.JsonLines(f, chunk=64), batch_size=7)
    assert [(f.line, f.id, f.error) for f in report.failures] == [(31, "_local/cfg", "local_document")]
    assert report.written == 31 and db.get("_local/cfg")["v"] == "original"


def test_cli_load_rejects_local_documents_and_says_why(db, couch_url, tmp_path):
    import json

    from tests.helpers import run_cli

    db.save({"_id": "_local/cfg", "v": "original"})
    source = tmp_path / "l3.jsonl"
    source.write_bytes(b'{"_id":"_local/cfg","v":"from-load"}\n{"_id":"plain","v":1}\n')
    rejects = tmp_path / "rej.jsonl"
    proc = run_cli("load", f"{couch_url}/{db.name}", source, "--rejects", rejects)
    assert proc.returncode == 1, proc.stderr
    (record,) = [json.loads(line) for line in rejects.read_bytes().splitlines()]
    assert record["_id"] == "_local/cfg" and record["_load_error"]["error"] == "local_document"
    assert "no conflict detection" in record["_load_error"]["reason"]
    proc = run_cli("load", f"{couch_url}/{db.name}", source, "--skip-existing")
    assert proc.returncode == 1
    assert b"local_document" in proc.stderr and b"no conflict detection on _local documents" in proc.stderr
    assert db.get("_local/cfg")["v"] == "original"


@pytest.mark.couchdb_only  # PouchDB Server checks a _local document's _rev: upsert meets 409 there
def test_upsert_still_overwrites_local_documents(db, couch_url, tmp_path):
    from couchcore.bulk import load
    from tests.helpers import run_cli

    db.save({"_id": "_local/cfg", "v": "original"})
    report = load(db, _local_rows(), upsert=True)
    assert report.rejected == 0, report.failures
    assert db.get("_local/cfg")["v"] == "from-load" and db.get("_local/esc")["v"] == 3
    source = tmp_path / "l3.jsonl"
    source.write_bytes(b'{"_id":"_local/cfg","v":"from-cli"}\n{"_id":"plain","v":1}\n')
    proc = run_cli("load", f"{couch_url}/{db.name}", source, "--upsert", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert db.get("_local/cfg")["v"] == "from-cli"
