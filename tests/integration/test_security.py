"""Security (issue 11 item 4): no input reaches another endpoint, and no password leaks.

* Ids, attachment names, design and function names, index names and partition keys are
  always quoted into one path segment each: the exact request path is asserted on a
  loopback recorder for every path builder and every backend (a client library that
  squashes ``/../`` segments would otherwise turn ``db.delete_attachment(doc, "..")`` into
  ``DELETE /db/``), and on the real server nothing else is reached.
* A known password with ``@ : / # % ?`` and non-ASCII characters, given percent-encoded in
  the URL, as ``auth=`` and as ``COUCHDB_PASSWORD``, appears in no exception message or
  repr, no log record (couchcore and urllib3 at DEBUG), no rejects or checkpoint file of
  ``couchcore load`` and no output of ``couchcore dump``.
* Replication endpoints carry credentials in the ``auth`` object, never in a URL.
* TLS verification is on by default on every backend: tests/integration/test_transport.py
  (``test_tls_verification_is_on_by_default`` and the host-name check) keeps it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
import sys
from typing import Any, Callable
from urllib.parse import quote

import pytest

import couchcore
from couchcore.testing import FaultyProxy, ScriptedServer, free_port, http_response
from couchcore._urls import split_credentials

from tests.helpers import member_db, unique_name

ENGINES = ["urllib3", "pycurl", "aio"]


def _skip_missing(engine: str) -> None:
    if engine == "pycurl":
        pytest.importorskip("pycurl")
    if engine == "aio":
        pytest.importorskip("tornado")


def sent(recorder: ScriptedServer) -> list[tuple[str, str]]:
    """``(method, target)`` of every request ``recorder`` received, in order."""
    return [(r.method, r.target) for r in recorder.requests]


#: the ``X-Recorder`` tag of the running test's recorder (see ``call``)
_current: list[str] = [""]


@pytest.fixture
def recorder():
    """Records each request; answers ``404`` to everything, tagged ``X-Recorder: <port>``
    so that ``call`` can tell an answer from another server (a request that reached
    something other than this test's recorder) from this recorder's own."""
    r = ScriptedServer()
    tag = f"{r.port}-{id(r):x}"
    r.script = lambda request, conn: http_response("404 Object Not Found", b'{"error":"not_found","reason":"missing"}',
                                                   headers={"X-Recorder": tag})
    _current[0] = tag
    yield r
    _current[0] = ""
    r.close()


def _from_recorder(exc: couchcore.HTTPError) -> None:
    """Fail at once, saying what answered, when ``exc`` is not the running test's recorder's 404."""
    tag = (exc.headers or {}).get("X-Recorder")
    if _current[0] and tag != _current[0]:
        raise AssertionError(f"answered by something other than this test's recorder {_current[0]}: "
                             f"{type(exc).__name__} {exc} (X-Recorder: {tag}, headers {dict(exc.headers or {})})")


def call(engine: str, url: str, fn: Callable[[Any], Any]) -> None:
    """``fn(db)`` on a Database at ``url`` on ``engine``; the recorder's 404 is expected
    (an answer from elsewhere fails the test, naming what answered). The Database's
    connections are closed after the call."""
    if engine == "aio":
        from couchcore import aio

        async def run() -> None:
            db = aio.Database(url, retries=0)
            try:
                result = fn(db)
                if hasattr(result, "__await__"):
                    await result
            finally:
                db.server.close()

        try:
            asyncio.run(run())
        except couchcore.HTTPError as exc:
            _from_recorder(exc)
        return
    db = couchcore.Database(url, backend=engine, retries=0)
    try:
        result = fn(db)
        if hasattr(result, "__iter__") and not isinstance(result, (dict, str, bytes)):
            list(result)
    except couchcore.HTTPError as exc:
        _from_recorder(exc)
    finally:
        db.server.close()


#: (document id, how it must appear in the path below /db/)
IDS = [
    ("..", "%2E%2E"),
    (".", "%2E"),
    ("../_config", "..%2F_config"),
    ("../../_node/_local/_config", "..%2F..%2F_node%2F_local%2F_config"),
    ("%2e%2e", "%252e%252e"),
    ("%2E%2E%2F_config", "%252E%252E%252F_config"),
    ("_design/..", "_design/%2E%2E"),
    ("_design/../x", "_design/..%2Fx"),
    ("_local/.", "_local/%2E"),
    ("a/b?c=d#e f", "a%2Fb%3Fc%3Dd%23e%20f"),
    ("é☃", "%C3%A9%E2%98%83"),
    ("...", "..."),
]


@pytest.mark.parametrize("docid,quoted", IDS, ids=[i for i, _ in IDS])
@pytest.mark.parametrize("engine", ENGINES)
def test_document_paths(recorder, engine, docid, quoted):
    _skip_missing(engine)
    url = recorder.url + "/db"
    call(engine, url, lambda db: db.get(docid))
    call(engine, url, lambda db: db.delete({"_id": docid, "_rev": "1-a"}))
    call(engine, url, lambda db: db.get_attachment(docid, "f"))
    call(engine, url, lambda db: db.put_attachment({"_id": docid, "_rev": "1-a"}, b"data", "f", "text/plain"))
    call(engine, url, lambda db: db.delete_attachment({"_id": docid, "_rev": "1-a"}, "f"))
    assert sent(recorder) == [
        ("GET", f"/db/{quoted}"),
        ("DELETE", f"/db/{quoted}?rev=1-a"),
        ("GET", f"/db/{quoted}/f"),
        ("PUT", f"/db/{quoted}/f?rev=1-a"),
        ("DELETE", f"/db/{quoted}/f?rev=1-a"),
    ]


#: (attachment name, how it must appear as the last path segment)
NAMES = [("..", "%2E%2E"), (".", "%2E"), ("../..", "..%2F.."), ("dir/file.txt", "dir%2Ffile.txt"),
         ("%2e%2e", "%252e%252e"), ("?rev=9-z", "%3Frev%3D9-z"), ("#x", "%23x"), ("ü ber", "%C3%BC%20ber")]


@pytest.mark.parametrize("name,quoted", NAMES, ids=[n for n, _ in NAMES])
@pytest.mark.parametrize("engine", ENGINES)
def test_attachment_paths(recorder, engine, name, quoted):
    _skip_missing(engine)
    url = recorder.url + "/db"
    call(engine, url, lambda db: db.get_attachment("doc", name))
    call(engine, url, lambda db: db.put_attachment({"_id": "doc", "_rev": "1-a"}, b"data", name, "text/plain"))
    call(engine, url, lambda db: db.delete_attachment({"_id": "doc", "_rev": "1-a"}, name))
    assert sent(recorder) == [
        ("GET", f"/db/doc/{quoted}"),
        ("PUT", f"/db/doc/{quoted}?rev=1-a"),
        ("DELETE", f"/db/doc/{quoted}?rev=1-a"),
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_design_function_and_index_paths(recorder, engine):
    """Design names, view/show/list/update function names and index names: one segment each."""
    _skip_missing(engine)
    url = recorder.url + "/db"
    call(engine, url, lambda db: db.view("_design/../_view/v"))
    call(engine, url, lambda db: db.view("_design/app/_view/.."))
    call(engine, url, lambda db: db.view("_design/a/../_view/v"))
    call(engine, url, lambda db: db.show("_design/dd/_show/..", ".."))
    call(engine, url, lambda db: db.update("_design/dd/_update/..", ".."))
    call(engine, url, lambda db: db.list("dd/..", ".."))
    call(engine, url, lambda db: db.delete_index("..", ".."))
    assert sent(recorder) == [
        ("GET", "/db/_design/%2E%2E/_view/v"),
        ("GET", "/db/_design/app/_view/%2E%2E"),
        ("GET", "/db/_design/a%2F../_view/v"),  # the long form's design name may hold slashes
        ("GET", "/db/_design/dd/_show/%2E%2E/%2E%2E"),
        ("PUT", "/db/_design/dd/_update/%2E%2E/%2E%2E"),  # with a document id: PUT
        ("GET", "/db/_design/dd/_list/%2E%2E/%2E%2E"),
        ("DELETE", "/db/_index/_design/%2E%2E/json/%2E%2E"),
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_partition_and_copy_paths(recorder, engine):
    _skip_missing(engine)
    url = recorder.url + "/db"
    call(engine, url, lambda db: db.partition("p").all_docs())
    call(engine, url, lambda db: db.copy("..", "dest"))
    assert sent(recorder)[0] == ("GET", "/db/_partition/p/_all_docs")
    assert sent(recorder)[1] == ("COPY", "/db/%2E%2E")


@pytest.mark.parametrize("docid", ["_session", "_config", "_all_docs", "_security", "_bulk_docs", "_compact",
                                   "_purge", "_design", "_local", "_design_docs", "_index", "_changes"])
@pytest.mark.parametrize("engine", ENGINES)
def test_reserved_ids_are_refused_before_sending(recorder, engine, docid):
    """A document id may start with ``_`` only as ``_design/...`` or ``_local/...``
    (https://docs.couchdb.org/en/stable/api/document/common.html): anything else would
    address a database endpoint (``PUT /db/_security``), so it is refused first."""
    _skip_missing(engine)
    url = recorder.url + "/db"
    for fn in (lambda db: db.get(docid), lambda db: db.delete({"_id": docid, "_rev": "1-a"}),
               lambda db: db.contains(docid), lambda db: db.copy(docid, "x"),
               lambda db: db.get_attachment(docid, "f"),
               lambda db: db.put_attachment({"_id": docid, "_rev": "1-a"}, b"x", "f", "text/plain")):
        with pytest.raises(couchcore.InvalidInput):
            call(engine, url, fn)
    assert sent(recorder) == []


@pytest.mark.parametrize("name", ["../_config", "_session", "..", "a/../../_config", "%2e%2e", "A", "_all_dbs",
                                  "db?x=1", "db#x", "db name"])
def test_bad_database_names_are_refused_before_sending(recorder, name):
    server = couchcore.Server(recorder.url, retries=0)
    for fn in (server.create, server.delete, lambda n: server.db(n)):
        with pytest.raises(couchcore.InvalidInput):
            fn(name)
    assert sent(recorder) == []


def test_database_name_with_slash_is_one_segment(recorder):
    server = couchcore.Server(recorder.url, retries=0)
    with pytest.raises(couchcore.HTTPError):
        server.create("a/b")
    assert sent(recorder) == [("PUT", "/a%2Fb")]


# -- on the real server: nothing else is reached ---------------------------------------------------


REAL_IDS = ["..", ".", "../_config", "%2e%2e", "_design/..", "_design/../x", "_local/..", "a/../../b", "...",
            "?x", "#y", "é☃"]


def test_dangerous_ids_and_names_stay_in_their_document(server, one_copy_db):
    """Each dangerous id is one document, readable, writable and deletable as itself;
    attachment names the same; the database and the server are untouched.
    (One copy of each shard: ``_all_docs`` and ``doc_count`` read one copy on a cluster,
    which may not have the last writes yet, https://docs.couchdb.org/en/stable/cluster/sharding.html#quorum.)"""
    db = one_copy_db
    before = server.all_dbs()
    for docid in REAL_IDS:
        doc = {"_id": docid, "kind": "probe"}
        db.save(doc)
        assert db.get(docid)["_id"] == docid
        if docid.startswith("_local/"):
            db.delete(db.get(docid))  # a local document has no attachments
            continue
        for name in ("..", ".", "../x", "a/b", "%2e%2e"):
            db.put_attachment(doc, b"payload " + name.encode(), name, "text/plain")
            assert db.get_attachment(docid, name) == b"payload " + name.encode()
        stored = db.get(docid)
        assert sorted(stored["_attachments"]) == sorted(["..", ".", "../x", "a/b", "%2e%2e"])
        for name in ("..", "."):
            db.delete_attachment(doc, name)
        assert db.exists(), f"the database was reached through {docid!r}"
    ids = sorted(row.id for row in db.view("_all_docs"))
    assert ids == sorted(i for i in REAL_IDS if not i.startswith("_local/"))
    for docid in REAL_IDS:
        if not docid.startswith("_local/"):
            db.delete(db.get(docid))
    assert db.exists() and db.info()["doc_count"] == 0
    # no database made or dropped through an id or a name; other clients of a shared server
    # may make and drop their own meanwhile, so only names our requests could reach count
    after = set(server.all_dbs())
    reachable = {seg for text in REAL_IDS + ["..", ".", "../x", "a/b", "%2e%2e"]
                 for seg in text.replace("%2e", ".").split("/") if seg} | {"_config", "_users", "_replicator"}
    assert {n for n in set(before) ^ after if n in reachable} == set(), (set(before) ^ after) & reachable


# -- passwords never leak ----------------------------------------------------------------------------

#: every character the issue names, and non-ASCII
PASSWORD = "p@ss:w/rd#50%?é☃"
USER = "leak-probe"


def forms(secret: str) -> list[str]:
    """The password as it could leak: itself, percent-encoded (both cases), in a Basic token."""
    encoded = quote(secret, safe="")
    token = base64.b64encode(f"{USER}:{secret}".encode()).decode()
    return [secret, encoded, encoded.lower(), token, secret.encode("utf-8").decode("latin-1")]


def assert_clean(*texts: object) -> None:
    for text in texts:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace") + text.decode("latin-1")
        text = str(text)
        for form in forms(PASSWORD):
            assert form not in text, f"password leaked ({form!r}) in {text[:300]!r}"


def texts_of(exc: BaseException) -> list[str]:
    out = []
    while exc is not None:
        out += [str(exc), repr(exc), *map(repr, exc.args)]
        out += [repr(v) for v in vars(exc).values()] if hasattr(exc, "__dict__") else []
        exc = exc.__cause__ or exc.__context__
    return out


@pytest.fixture(scope="module")
def login(couch_url):
    """A user ``USER`` with ``PASSWORD`` on the server, a member of one database."""
    base, user, password = split_credentials(couch_url)
    admin = couchcore.Server(couch_url)
    with member_db(admin, USER, PASSWORD, "leak") as db:
        probe = couchcore.Server(base, auth=(USER, PASSWORD))
        try:
            probe.db(db.name).info()
        except couchcore.HTTPError:
            pytest.skip("this server does not let a _users member into its database")
        finally:
            probe.close()
        yield base, db.name
    admin.close()


@pytest.mark.parametrize("how", ["url", "auth"])
@pytest.mark.parametrize("engine", ["urllib3", "pycurl"])
def test_no_password_in_errors_reprs_or_logs(login, engine, how, caplog):
    _skip_missing(engine)
    caplog.set_level(logging.DEBUG)
    for name in ("couchcore", "urllib3"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    base, name = login
    secret_url = base.replace("://", f"://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@")
    if how == "url":
        server = couchcore.Server(secret_url, backend=engine, retries=0)
        db = couchcore.Database(f"{secret_url}/{name}", backend=engine, retries=0)
    else:
        server = couchcore.Server(base, auth=(USER, PASSWORD), backend=engine, retries=0)
        db = couchcore.Database(f"{base}/{name}", auth=(USER, PASSWORD), backend=engine, retries=0)
    seen: list[object] = [repr(server), str(server), repr(db), str(db), repr(server.options)]
    mine = f"a-{engine}-{how}"
    db.save({"_id": mine, "v": 1})
    assert db.get(mine)["v"] == 1
    failures: list[Callable[[], Any]] = [
        lambda: db.get("missing"),  # 404
        lambda: db.save({"_id": mine, "v": 2}),  # 409
        lambda: db.view("nope/nope"),  # 404 on the design document
        lambda: couchcore.Database(f"{secret_url}/{name}-gone", backend=engine).info(),
    ]
    for fn in failures:
        with pytest.raises(couchcore.CouchcoreError) as exc:
            fn()
        seen += texts_of(exc.value)
    for fn in (server.config,):  # 401/403 on CouchDB: not an admin
        try:
            fn()
        except couchcore.CouchcoreError as error:
            seen += texts_of(error)
    # connection refused, a write whose outcome is unknown, a read timeout
    dead = f"http://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@127.0.0.1:{free_port()}"
    with pytest.raises(couchcore.ConnectError) as exc:
        couchcore.Server(dead, backend=engine, retries=0).version()
    seen += texts_of(exc.value)
    proxy = FaultyProxy(base)
    try:
        proxy_url = proxy.url.replace("://", f"://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@")
        proxy.cut_after_send("PUT", f"/{mine}/note")
        with pytest.raises(couchcore.OutcomeUnknown) as exc:
            couchcore.Database(f"{proxy_url}/{name}", backend=engine, retries=0).put_attachment(
                db.get(mine), b"text", "note", "text/plain")
        seen += texts_of(exc.value)
        proxy.delay("GET", f"/{mine}", seconds=2)
        with pytest.raises(couchcore.ReadTimeout) as exc:
            couchcore.Database(f"{proxy_url}/{name}", backend=engine, timeout=0.3).get(mine)
        seen += texts_of(exc.value)
    finally:
        proxy.close()
    # bad URLs: the password is never echoed
    for bad in (f"http://{USER}:{PASSWORD}@127.0.0.1:5984", f"http://{USER}:Ab&3#x@127.0.0.1:5984",
                f"http://{USER}:{PASSWORD}@[::1"):
        with pytest.raises(couchcore.InvalidInput) as exc:
            couchcore.Server(bad)
        seen += [t.replace("Ab&3#x", "") for t in texts_of(exc.value)]
    records = [r.getMessage() for r in caplog.records] + [repr(r.args) for r in caplog.records]
    assert_clean(*seen, caplog.text, *records)
    assert len(seen) > 30


def _cli(args: list[str], **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ, **env)
    full.pop("COUCHDB_URL", None)
    return subprocess.run([sys.executable, "-m", "couchcore.cli", *args], env=full, capture_output=True, timeout=120)


@pytest.mark.parametrize("how", ["url", "env"])
def test_no_password_in_load_and_dump_files_or_output(login, tmp_path, how):
    """``couchcore load`` with rejected lines (rejects file, checkpoint) and ``couchcore
    dump`` (output, stderr), credentials in the URL or in COUCHDB_USER/COUCHDB_PASSWORD;
    then a load into a missing database and a dump of one (the error paths)."""
    base, name = login
    env = {}
    if how == "url":
        url = base.replace("://", f"://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@") + "/" + name
    else:
        url, env = f"{base}/{name}", {"COUCHDB_USER": USER, "COUCHDB_PASSWORD": PASSWORD}
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"_id": f"{how}-{i}", "n": i}) + "\n" for i in range(50))
                      + "not json\n" + json.dumps({"_id": "_bad"}) + "\n" + json.dumps([1]) + "\n")
    rejects, checkpoint, out = tmp_path / "rejects.jsonl", tmp_path / "load.ckpt", tmp_path / "dump.jsonl"
    load = _cli(["load", url, str(source), "--rejects", str(rejects), "--resume", str(checkpoint)], **env)
    assert load.returncode == 1, load.stderr  # some lines rejected
    assert rejects.read_bytes().count(b"\n") == 3
    dump = _cli(["dump", url, str(out)], **env)
    assert dump.returncode == 0, dump.stderr
    assert out.read_bytes().count(b"\n") >= 50
    dump_stdout = _cli(["dump", url, "-"], **env)
    missing = url.replace(name, name + "-missing") if how == "url" else f"{base}/{name}-missing"
    load_missing = _cli(["load", missing, str(source)], **env)
    dump_missing = _cli(["dump", missing, "-"], **env)
    assert load_missing.returncode == 2 and dump_missing.returncode != 0
    assert_clean(rejects.read_bytes(), checkpoint.read_bytes(), out.read_bytes(), load.stdout, load.stderr,
                 dump.stdout, dump.stderr, dump_stdout.stdout, dump_stdout.stderr, load_missing.stderr,
                 dump_missing.stderr, load_missing.stdout)


# -- replication endpoints --------------------------------------------------------------------------


@pytest.mark.couchdb_only
def test_replication_body_carries_no_credentials_in_urls(login, couch_url):
    """``push`` between two databases reached with the probe user's password: the
    request CouchDB receives names each endpoint by a credential-free URL with the
    password in ``auth.basic`` (https://docs.couchdb.org/en/stable/json-structure.html#replication-settings),
    and the replication copies the documents."""
    base, name = login
    admin = couchcore.Server(couch_url)
    target = admin.create(unique_name("leak-target"))
    try:
        target.security({"admins": {"names": [], "roles": []}, "members": {"names": [USER], "roles": []}})
        proxy = FaultyProxy(base, capture=True)
        try:
            server = couchcore.Server(proxy.url, auth=(USER, PASSWORD))
            src = server.db(name)
            src.save({"_id": "replicated", "v": 1})
            # _replicate needs an admin on CouchDB 3: the same endpoints, sent by the admin
            couchcore.Server(proxy.url.replace("://", "://" + couch_url.split("://")[1].split("@")[0] + "@")) \
                .replicate(couchcore.Database(f"{base}/{name}", auth=(USER, PASSWORD)),
                           couchcore.Database(f"{base}/{target.name}", auth=(USER, PASSWORD)))
        finally:
            proxy.close()
        ((method, target_path, body),) = [b for b in proxy.bodies if b[1].startswith("/_replicate")]
        sent = json.loads(body)
        for side in ("source", "target"):
            assert isinstance(sent[side], dict) and "@" not in sent[side]["url"].split("//", 1)[1]
            assert sent[side]["auth"]["basic"] == {"username": USER, "password": PASSWORD}
        assert target.get("replicated")["v"] == 1
    finally:
        admin.delete(target.name)
