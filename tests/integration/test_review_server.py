"""Review of the server-level operations on every facade (sync, ``couchcore.aio``,
``couchcore.tornado``'s callbacks): bugs found by probing them as a newcomer would,
against the real test server. Each test failed before its fix."""

from __future__ import annotations

import asyncio

import pytest

import couchcore
import couchcore.aio
from couchcore._urls import split_credentials
from tests.helpers import async_backends as _async_backends, unique_name


def _wrong_credentials(couch_url: str) -> tuple[str, tuple[str, str]]:
    base, _, _ = split_credentials(couch_url)
    # an unknown user: wrong passwords for the real admin lock it out on CouchDB 3
    return base, (unique_name("nobody"), "definitely-wrong")


def test_up_with_rejected_credentials_raises_unauthorized(couch_url, backend):
    # GET /_up answers 401 to credentials CouchDB rejects: the node is up, but up() said
    # False ("down"), sending the user to look for a dead server instead of a bad password
    # https://docs.couchdb.org/en/stable/api/server/common.html#up (200 up, 503 down)
    base, auth = _wrong_credentials(couch_url)
    server = couchcore.Server(base, auth=auth, backend=backend, retries=0)
    with pytest.raises(couchcore.Unauthorized) as info:
        server.up()
    assert "definitely-wrong" not in str(info.value) and "definitely-wrong" not in repr(info.value)
    assert couchcore.Server(couch_url, backend=backend).up() is True


@pytest.mark.parametrize("backend", _async_backends())
def test_up_with_rejected_credentials_raises_unauthorized_async(couch_url, backend):
    base, auth = _wrong_credentials(couch_url)

    async def main():
        server = couchcore.aio.Server(base, auth=auth, backend=backend, retries=0)
        with pytest.raises(couchcore.Unauthorized):
            await server.up()
        assert await couchcore.aio.Server(couch_url, backend=backend).up() is True

    asyncio.run(main())


def test_up_is_false_when_nothing_listens(refused_url, backend):
    assert couchcore.Server(refused_url, backend=backend, retries=0).up() is False


def test_dbs_info_of_more_names_than_one_request_may_carry(server, db):
    # CouchDB refuses POST /_dbs_info with more than [chttpd] max_db_number_for_dbs_info_req
    # keys (100 by default): 400 too_many_keys, so dbs_info(server.all_dbs()) failed on any
    # server with over 100 databases. The names go in requests of at most 100, in order.
    # https://docs.couchdb.org/en/stable/api/server/common.html#dbs-info
    names = [db.name, "no-such-db-" + db.name] * 80 + [db.name]
    rows = server.dbs_info(names)
    assert [row["key"] for row in rows] == names
    assert all(("info" in row) == (i % 2 == 0) for i, row in enumerate(rows))
    assert all(row["info"]["db_name"] == db.name for row in rows if "info" in row)
    assert all(row["error"] == "not_found" for row in rows if "info" not in row)


@pytest.mark.parametrize("async_backend", _async_backends())
def test_dbs_info_of_many_names_async(couch_url, async_backend, db):
    names = [db.name] * 250

    async def main():
        server = couchcore.aio.Server(couch_url, backend=async_backend)
        return await server.dbs_info(names)

    rows = asyncio.run(main())
    assert [row["key"] for row in rows] == names and all("info" in row for row in rows)


class _LaterClock:
    """``time`` for couchcore.auth, ``seconds`` ahead of the real monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def monotonic(self) -> float:
        import time

        return time.monotonic() + self.seconds


@pytest.mark.couchdb_only
def test_session_auth_logs_in_again_when_the_cookie_has_expired(couch_url, backend, monkeypatch):
    # CouchDB serves a request whose AuthSession cookie has expired as ANONYMOUS, silently:
    # GET /_session answers 200 with userCtx.name null, a public database is read and
    # written as nobody (checked by hand on CouchDB 3.5 with [chttpd_auth] timeout = 2); only
    # admin/member-only resources answer 401 (which made SessionAuth log in again). So
    # after Max-Age seconds idle (600 by default, sent in every Set-Cookie) session() said
    # "not logged in" and public requests ran without the user. The cookie's Max-Age is
    # kept and a login made before a request once it has passed.
    # https://docs.couchdb.org/en/stable/api/server/authn.html#cookie-authentication
    base, user, password = split_credentials(couch_url)
    auth = couchcore.SessionAuth(user, password)
    server = couchcore.Server(base, auth=auth, backend=backend)
    assert server.session()["userCtx"]["name"] == user and auth.logins == 1
    monkeypatch.setattr(couchcore.auth, "time", _LaterClock(601), raising=False)
    assert server.session()["userCtx"]["name"] == user
    assert auth.logins == 2
    assert server.session()["userCtx"]["name"] == user and auth.logins == 2  # the new cookie is fresh


@pytest.mark.couchdb_only
@pytest.mark.parametrize("async_backend", _async_backends())
def test_session_auth_logs_in_again_when_the_cookie_has_expired_async(couch_url, async_backend, monkeypatch):
    base, user, password = split_credentials(couch_url)
    auth = couchcore.SessionAuth(user, password)

    async def main():
        server = couchcore.aio.Server(base, auth=auth, backend=async_backend)
        assert (await server.session())["userCtx"]["name"] == user and auth.logins == 1
        monkeypatch.setattr(couchcore.auth, "time", _LaterClock(601), raising=False)
        names = await asyncio.gather(*[server.session() for _ in range(5)])
        assert [info["userCtx"]["name"] for info in names] == [user] * 5
        assert auth.logins == 2  # one login for the five

    asyncio.run(main())


@pytest.mark.couchdb_only
def test_continuous_feed_of_a_deleted_database_raises_not_found(couch_url, backend):
    # CouchDB ends a continuous feed whose database is deleted with a plain last_seq line
    # (curl: '{"last_seq":"0-g1...","pending":0}' and a clean end), just as it ends one
    # after the timeout asked for. With a heartbeat and no timeout nor limit (the feed's
    # default) nothing else ends it, yet the feed took it for "done" and the loop ended
    # quietly, as if the database had simply had no more changes (follow() raises
    # NotFound there). It goes on from last_seq instead, where the deleted database
    # answers 404. https://docs.couchdb.org/en/stable/api/database/changes.html
    import threading

    admin = couchcore.Server(couch_url)
    name = unique_name("deleted-feed")
    admin.create(name)
    feed = couchcore.Server(couch_url, backend=backend)[name].changes(feed="continuous", since="now")
    timer = threading.Timer(0.5, admin.delete, (name,))
    timer.start()
    try:
        with pytest.raises(couchcore.NotFound):
            for _ in feed:
                pass
    finally:
        timer.join()
        feed.stop()


@pytest.mark.couchdb_only
@pytest.mark.parametrize("async_backend", _async_backends())
def test_continuous_feed_of_a_deleted_database_raises_not_found_async(couch_url, async_backend):
    admin = couchcore.Server(couch_url)
    name = unique_name("deleted-feed")
    admin.create(name)

    async def main():
        server = couchcore.aio.Server(couch_url, backend=async_backend)
        db = await server.db(name)

        async def consume():
            async for _ in db.changes(feed="continuous", since="now"):
                pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.5)
        await server.delete(name)
        with pytest.raises(couchcore.NotFound):
            await asyncio.wait_for(task, 10)

    asyncio.run(main())


@pytest.mark.couchdb_only  # PouchDB Server keeps a continuous feed open past its timeout
def test_continuous_feed_with_a_timeout_still_ends_when_the_server_ends_it(couch_url, backend, db):
    feed = db.changes(feed="continuous", since="now", timeout=300)
    assert list(feed) == []


def test_up_of_a_url_with_a_database_name_is_no_answer(server, db, couch_url, backend):
    # Server("http://host:5984/somedb").up() said True: /somedb/_up is a missing document
    # (404), and the fallback GET /somedb/ answered the database's info, taken for a server's
    # welcome; a URL with a missing database said False ("down") while the node was up
    prefixed = couchcore.Server(couch_url.rstrip("/") + "/" + db.name, backend=backend, retries=0)
    with pytest.raises(couchcore.ResponseError):
        prefixed.up()
    missing = couchcore.Server(couch_url.rstrip("/") + "/" + unique_name("nodb"), backend=backend, retries=0)
    with pytest.raises(couchcore.NotFound):
        missing.up()
    assert server.up() is True


@pytest.mark.parametrize("async_backend", _async_backends())
def test_up_of_a_url_with_a_database_name_is_no_answer_async(couch_url, async_backend):
    db = couchcore.Server(couch_url).create(unique_name("upprefix"))

    async def main():
        prefixed = couchcore.aio.Server(couch_url.rstrip("/") + "/" + db.name, backend=async_backend, retries=0)
        with pytest.raises(couchcore.ResponseError):
            await prefixed.up()
        assert await couchcore.aio.Server(couch_url, backend=async_backend).up() is True

    try:
        asyncio.run(main())
    finally:
        couchcore.Server(couch_url).delete(db.name)


def test_a_document_url_is_no_database(server, db, couch_url, backend):
    # Database("http://host:5984/db/_design/app") became the database "app" under the path
    # prefix /db/_design: exists() said True (HEAD answered the design document) and info()
    # returned the design document; a plain document's URL (or a server URL with a database
    # name: server.db("docid"), "docid" in server) did the same
    db.save({"_id": "_design/app", "views": {}})
    db.save({"_id": "plain", "v": 1})
    root = couch_url.rstrip("/")
    with pytest.raises(couchcore.InvalidInput) as info:
        couchcore.Database(f"{root}/{db.name}/_design/app", backend=backend)
    assert f"/{db.name})" in str(info.value)
    with pytest.raises(couchcore.InvalidInput):
        couchcore.Database(f"{root}/{db.name}/_local/x", backend=backend)
    with pytest.raises(couchcore.ResponseError):
        couchcore.Database(f"{root}/{db.name}/plain", backend=backend).info()
    good = couchcore.Database(f"{root}/{db.name}", backend=backend)
    assert good.exists() is True and good.info()["db_name"] == db.name


@pytest.mark.couchdb_only  # PouchDB Server's HEAD of a document has no revision ETag
def test_a_document_url_does_not_exist_as_a_database(server, db, couch_url, backend):
    # https://docs.couchdb.org/en/stable/api/document/common.html#head--db-docid: ETag is
    # the document's revision; HEAD /{db} has none
    db.save({"_id": "plain", "v": 1})
    root = couch_url.rstrip("/")
    with pytest.raises(couchcore.ResponseError):
        couchcore.Database(f"{root}/{db.name}/plain", backend=backend).exists()
    prefixed = couchcore.Server(f"{root}/{db.name}", backend=backend)
    for call in (lambda: prefixed.db("plain"), lambda: prefixed.exists("plain"), lambda: "plain" in prefixed):
        with pytest.raises(couchcore.ResponseError):
            call()
    assert "nope" not in prefixed  # a missing document still says "no such database"
    good = couchcore.Database(f"{root}/{db.name}", backend=backend)
    assert good.exists() is True and good.info()["db_name"] == db.name
    assert server.db(db.name).exists() and db.name in server
