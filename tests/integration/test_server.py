"""Server API against the real test server."""

from __future__ import annotations

import time

import pytest

import couchcore
from tests.helpers import unique_name


def test_version_and_info(server):
    version = server.version()
    assert isinstance(version, str) and version[0].isdigit()
    assert server.info()["version"] == version


def test_version_of_a_url_that_is_no_server_raises(server, db):
    # Server("http://host:5984/somedb"): GET / is the database's info, which has no
    # "version"; version() returned the string 'None'
    creds = server.credentials
    wrong = couchcore.Server(db.url, auth=(creds.username, creds.password) if creds else None)
    with pytest.raises(couchcore.ResponseError) as info:
        wrong.version()
    assert db.url in str(info.value)


def test_all_dbs_and_dunders(server, db):
    names = server.all_dbs()
    assert db.name in names
    assert db.name in list(server)
    # Other clients of a shared server may create or delete databases between two calls:
    # compare len(server) with a listing that did not change around it.
    seen = []
    for _ in range(20):
        before = server.all_dbs()
        count = len(server)
        after = server.all_dbs()
        seen.append((len(before), count, len(after)))
        if before == after and count == len(before):
            break
    else:
        pytest.fail(f"len(server) never matched an unchanged all_dbs(): {seen}")
    assert db.name in server
    assert "no-such-db-" + db.name not in server
    assert "Bad Name" not in server  # invalid names are simply not there
    assert server[db.name] == db


def test_uuids(server):
    ids = server.uuids(5)
    assert len(ids) == 5 and len(set(ids)) == 5 and all(isinstance(u, str) for u in ids)
    assert len(server.uuids()) == 1
    with pytest.raises(couchcore.InvalidInput):
        server.uuids(0)


def test_create_and_delete(server):
    name = unique_name("create")
    db = server.create(name)
    assert isinstance(db, couchcore.Database) and db.name == name and db.exists()
    with pytest.raises(couchcore.PreconditionFailed):
        server.create(name)
    server.delete(name)
    assert not db.exists() and name not in server


def test_del_item(server):
    name = unique_name("delitem")
    server.create(name)
    del server[name]
    assert name not in server


@pytest.mark.couchdb_only  # PouchDB Server answers 200 for a missing database
def test_delete_missing_raises(server):
    with pytest.raises(couchcore.NotFound):
        server.delete(unique_name("missing"))


@pytest.mark.parametrize("name", ["Bad Name", "UPPER", "1digit", "_secret", "a.b", ""])
def test_bad_names_rejected_before_any_request(name):
    # a server on a port nobody listens on: a request would raise ConnectionError
    offline = couchcore.Server("http://127.0.0.1:9", retries=0)
    for call in (offline.create, offline.db, offline.delete):
        with pytest.raises(couchcore.InvalidDatabaseName):
            call(name)
    with pytest.raises(ValueError):
        offline.create(name)


def test_db_open_and_create(server):
    name = unique_name("open")
    with pytest.raises(couchcore.NotFound):
        server.db(name)
    with pytest.raises(couchcore.NotFound):
        server[name]
    db = server.db(name, create=True)
    try:
        assert db.exists()
        assert server.db(name, create=True) == db  # existing: fine
    finally:
        server.delete(name)


@pytest.mark.parametrize("prefix", [
    "a$b(c)+d-e_f",
    pytest.param("a/b", marks=pytest.mark.couchdb_only),  # PouchDB Server drops the "/" from names
])
def test_special_characters_in_db_name(server, prefix):
    name = unique_name(prefix)
    db = server.create(name)
    try:
        assert db.info()["db_name"] == name
        db.save({"_id": "x"})
        assert db.get("x")["_id"] == "x"
        assert name in server.all_dbs()
    finally:
        server.delete(name)


def test_config_section_and_key(server):
    section = server.config("couchdb")
    assert isinstance(section, dict) and "uuid" in section or section
    full = server.config()
    assert isinstance(full, dict)


def test_config_set_and_delete(server):
    key = "couchcore_test/" + unique_name("k")
    assert server.config(key, "value-1") is None
    assert server.config(key) == "value-1"
    assert server.config(key, delete=True) == "value-1"
    with pytest.raises(couchcore.NotFound):
        server.config(key)


def test_config_bad_name_raises_before_sending(server):
    with pytest.raises(couchcore.InvalidInput):
        server.config("a/b/c")


def test_stats(server):
    stats = server.stats()
    assert isinstance(stats, dict)


@pytest.mark.couchdb_only  # PouchDB Server's /_stats is a placeholder
def test_stats_sub_path_and_bad_path(server):
    data = server.stats("couchdb/request_time")
    assert "value" in data
    with pytest.raises(couchcore.NotFound):
        server.stats("nope/nothing")


def test_tasks(server):
    assert isinstance(server.tasks(), list)


def test_users_and_replicator(server):
    assert server.users.name == "_users" and server.replicator.name == "_replicator"
    assert server.users.exists()


def test_replicate_one_shot(server, db):
    db.save([{"_id": f"d{i}", "n": i} for i in range(10)])
    target_name = unique_name("target")
    try:
        result = server.replicate(db, target_name, create_target=True)
        assert result.get("ok") is True
        target = server.db(target_name)
        assert sorted(d["_id"] for d in target.get([f"d{i}" for i in range(10)])) == [f"d{i}" for i in range(10)]
    finally:
        if target_name in server:
            server.delete(target_name)


def test_push_and_pull(server, db):
    other = server.create(unique_name("other"))
    try:
        db.save({"_id": "mine"})
        other.save({"_id": "theirs"})
        db.push(other)
        db.pull(other)
        assert "theirs" in db and "mine" in other
    finally:
        server.delete(other.name)


def test_replicate_via_replicator_document(server, db):
    db.save({"_id": "r1"})
    target_name = unique_name("reptarget")
    job = unique_name("job")
    try:
        result = server.replicate(db, target_name, _id=job, create_target=True)
        assert result["id"] == job
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if target_name in server and "r1" in server.db(target_name):
                break
            time.sleep(0.3)
        else:
            pytest.fail("replication via _replicator did not copy the document")
        # a job deleted while still running may be restarted by the scheduler and, with
        # create_target, create the target again after the cleanup below: let it finish first
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if server.replicator.get(job).get("_replication_state") in ("completed", "failed"):
                break
            time.sleep(0.3)
    finally:
        # the replicator itself may rewrite the job document (its state) between our read and
        # delete: a Conflict there means "read it again", a few times at most
        for _ in range(5):
            try:
                server.replicator.delete(server.replicator.get(job))
                break
            except couchcore.NotFound:
                break
            except couchcore.Conflict:
                time.sleep(0.2)
        if target_name in server:
            server.delete(target_name)


def test_unauthorized_with_wrong_password(couch_url):
    from couchcore._urls import split_credentials

    base, _, _ = split_credentials(couch_url)
    # an unknown user: wrong passwords for the real admin lock it out on CouchDB 3
    bad = couchcore.Server(base, auth=(unique_name("nobody"), "definitely-wrong"))
    with pytest.raises(couchcore.Unauthorized) as info:
        bad.all_dbs()
    assert "definitely-wrong" not in str(info.value)


def test_server_from_environment(monkeypatch, couch_url):
    monkeypatch.setenv("COUCHDB_URL", couch_url)
    assert couchcore.Server().version() == couchcore.Couch(couch_url).version()
