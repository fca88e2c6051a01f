"""Test rig: a real CouchDB-compatible server for the whole session.

With ``COUCHDB_URL`` set (e.g. ``http://admin:admin@127.0.0.1:5984``) the suite runs
against that server; otherwise it starts the pinned PouchDB Server (``npm ci``) on a
free loopback port, in memory, and stops it at the end. Tests of behaviour PouchDB
Server gets wrong carry ``@pytest.mark.couchdb_only`` and are skipped there.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import couchcore
from couchcore.testing import PouchDBServer
from tests.helpers import FIXTURES, node_urls, unique_name

# `make fuzz`: HYPOTHESIS_PROFILE=fuzz, COUCHCORE_FUZZ_EXAMPLES examples per property test
# (tests/integration/test_fuzz.py); `make test` keeps Hypothesis' default profile
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("COUCHCORE_FUZZ_EXAMPLES", "20000")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])

# A run started in the background (`make test &`, nohup) inherits SIGINT ignored, and so would
# every `couchcore` process the Ctrl-C tests start: give them the default disposition back
# (a Python handler here is reset to SIG_DFL in a child at exec; an ignored signal is not).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _welcome(url: str) -> dict:
    from couchcore._urls import split_credentials

    base, _, _ = split_credentials(url)
    with urllib.request.urlopen(base + "/", timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="session")
def couch_url():
    """The server every ordinary fixture talks to: the first URL in ``COUCHDB_URL``, or a
    throw-away PouchDB Server when it is unset."""
    urls = node_urls(os.environ.get("COUCHDB_URL"))
    if urls:
        yield urls[0]
        return
    server = PouchDBServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def couch_urls(couch_url) -> list[str]:
    """Every node URL of ``COUCHDB_URL`` (first = ``couch_url``), for tests that need
    several nodes of one cluster; skipped unless it names at least two."""
    urls = node_urls(os.environ.get("COUCHDB_URL"))
    if len(urls) < 2:
        pytest.skip("needs several nodes of one CouchDB cluster: "
                    "COUCHDB_URL='http://admin:admin@127.0.0.1:15984 http://admin:admin@127.0.0.1:25984 ...'")
    return urls


@pytest.fixture(scope="session")
def is_couchdb(couch_url) -> bool:
    """True for Apache CouchDB (its welcome has a "couchdb" key), False for PouchDB Server."""
    return "couchdb" in _welcome(couch_url)


@pytest.fixture(autouse=True)
def _couchdb_only(request):
    if request.node.get_closest_marker("couchdb_only"):
        if not request.getfixturevalue("is_couchdb"):
            pytest.skip("PouchDB Server deviates from CouchDB here; runs with COUCHDB_URL=<Apache CouchDB>")


#: the sync backends every integration test runs on
BACKENDS = [b for b in os.environ.get("COUCHCORE_TEST_BACKENDS", "urllib3,pycurl").split(",") if b]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    if request.param == "pycurl":
        pytest.importorskip("pycurl")
    return request.param


@pytest.fixture(scope="session")
def server(couch_url, backend):
    s = couchcore.Server(couch_url, backend=backend)
    yield s
    s.close()


@pytest.fixture
def refused_url():
    """A URL whose port is bound but not listening: connecting is refused (nothing is
    sent), and no other process can take the port while the test runs."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def db_name():
    return unique_name()


def _fresh_db(server, name, **create_options):
    """Create database ``name`` for a test, yield it, and delete it after (if still there)."""
    database = server.create(name, **create_options)
    yield database
    try:
        server.delete(name)
    except couchcore.NotFound:
        pass


@pytest.fixture
def db(server, db_name):
    yield from _fresh_db(server, db_name)


@pytest.fixture
def one_copy_db(server, db_name):
    """A fresh database with ONE copy of each shard (``n=1``; PouchDB Server ignores it).
    A cluster reads views, ``_all_docs``, ``_changes``, ``doc_count`` and ``_security``
    from one copy of each shard, whatever the quorum, and that copy may not have applied a
    write the others acknowledged yet
    (https://docs.couchdb.org/en/stable/cluster/sharding.html#quorum): with one copy they
    see every acknowledged write. For tests about what couchcore does with those answers,
    not about replication (tests/integration/test_cluster.py tests the replicated defaults). A module
    whose tests all need it overrides ``db`` with a fixture that returns it."""
    yield from _fresh_db(server, db_name, n=1)


@pytest.fixture
def one_shard_db(server, db_name):
    """A fresh database with ONE shard and ONE copy of it (``q=1, n=1``; PouchDB Server
    ignores both): its ``_changes`` is in insertion order (CouchDB merges several shards'
    feeds in no particular order, https://docs.couchdb.org/en/stable/api/database/changes.html:
    "partially ordered") and holds every acknowledged write (one copy: see ``one_copy_db``)."""
    yield from _fresh_db(server, db_name, q=1, n=1)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The recorded CouchDB responses; they are part of the repository, so missing ones fail."""
    if not (FIXTURES / "index.json").is_file():
        pytest.fail(f"recorded CouchDB responses not found at {FIXTURES} (re-record: tests/record_fixtures.py)")
    return FIXTURES
