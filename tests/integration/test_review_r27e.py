"""Round 27, reviewer-r27b.md finding 3: ``SessionAuth`` after its session cookie went stale.

A cookie goes stale here the way it does in the field, without touching the server's
configuration: the user's ``_users`` document is saved again with the same password, which
gives it a new salt, and CouchDB signs a session cookie with the user's salt, so every
cookie issued before is refused from then on and the request is served as anonymous
(https://docs.couchdb.org/en/stable/api/server/authn.html#cookie-authentication). Before the
fix a request with a streamed body (a file, a pipe) refused that way never led to a new
login: ``put_attachment(open(...))`` failed with ``401`` on every retry. Now the session is
renewed, a seekable file is sought back and sent again, and a stream read once raises
:class:`~couchcore.Unauthorized` saying so; a 401 the user earns with a valid session (a
non-admin writing a design document) is returned as CouchDB gave it, without a login.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.error
import urllib.request

import pytest

import couchcore
from couchcore._urls import split_credentials
from couchcore.protocol.messages import Request
from couchcore.testing import FaultyProxy
from tests.helpers import async_backends, member_db, unique_name, wait_until

PASSWORD = "pw-r27e"
DATA = os.urandom(3 * 1024 * 1024 + 17)  # several MB: more than one write of each backend


@pytest.fixture
def admin_server(couch_url):
    server = couchcore.Server(couch_url)
    yield server
    server.close()


@pytest.fixture
def member(admin_server):
    """(database name, user name): a database whose only member is a new ``_users`` account."""
    user = unique_name("r27e")
    with member_db(admin_server, user, PASSWORD, "r27e") as db:
        yield db.name, user


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    return path


def _base(couch_url: str) -> str:
    return split_credentials(couch_url)[0]


def _cookie_user(base: str, cookie: str | None) -> str | None:
    """The user CouchDB takes ``cookie`` for (``GET /_session``), ``None`` for anonymous."""
    request = urllib.request.Request(base + "/_session", headers={"Cookie": f"AuthSession={cookie}",
                                                                 "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        name: str | None = json.loads(answer.read())["userCtx"]["name"]
        return name


def _make_stale(admin_server, base: str, user: str, auth: couchcore.SessionAuth) -> None:
    """Save ``user``'s account again, same password (a new salt): ``auth``'s cookie is refused."""
    cookie = auth._cookie
    assert cookie and _cookie_user(base, cookie) == user
    users = admin_server.db("_users")
    doc = users.get(f"org.couchdb.user:{user}")
    doc["password"] = PASSWORD
    users.save(doc)
    wait_until(lambda: _cookie_user(base, cookie), lambda name: name is None, timeout=30.0)


def _pipe(data: bytes):
    """A pipe's reading end (not seekable) with ``data`` written into it by a thread."""
    r, w = os.pipe()

    def write() -> None:
        try:
            with os.fdopen(w, "wb") as out:
                out.write(data)
        except BrokenPipeError:  # the server refused the request before reading it all
            pass

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return os.fdopen(r, "rb"), thread


def _traffic(proxy: FaultyProxy, since: int) -> list[str]:
    return [f"{method} {target.split('?')[0].rsplit('/', 1)[-1] if 'att' in target else target}"
            for method, target in proxy.seen[since:]]


def test_stale_session_file_upload_is_rewound_and_sent_again(couch_url, admin_server, member, data_file, backend):
    """A seekable file refused with 401 for a stale cookie: one login, sent again from where it stood."""
    name, user = member
    base = _base(couch_url)
    proxy = FaultyProxy(base)  # takes the whole request before passing it on: CouchDB's 401 arrives
    auth = couchcore.SessionAuth(user, PASSWORD)
    server = couchcore.Server(proxy.url, auth=auth, backend=backend)
    try:
        db = server.db(name)
        doc = {"_id": "d"}
        db.save(doc)
        assert auth.logins == 1
        _make_stale(admin_server, base, user, auth)
        with open(data_file, "rb") as f:
            f.seek(7)  # sent from where the file stands, the second time too
            seen = len(proxy.seen)
            db.put_attachment(doc, f, "att.bin")
            assert f.tell() == len(DATA)
        # refused as anonymous, the session asked about, a login, the file sent again from byte 7
        assert _traffic(proxy, seen) == ["PUT att.bin", "GET /_session", "POST /_session", "PUT att.bin"]
        assert auth.logins == 2
        assert db.get_attachment("d", "att.bin") == DATA[7:]
        assert doc["_attachments"]["att.bin"]["length"] == len(DATA) - 7
        # the new session serves the next upload at once
        with open(data_file, "rb") as f:
            db.put_attachment(doc, f, "att2.bin")
        assert auth.logins == 2 and db.get_attachment("d", "att2.bin") == DATA
    finally:
        server.close()
        proxy.close()


def test_stale_session_stream_read_once_raises_and_a_retry_works(couch_url, admin_server, member, backend):
    """A pipe refused with 401 for a stale cookie: Unauthorized saying why, the session renewed."""
    name, user = member
    base = _base(couch_url)
    proxy = FaultyProxy(base)  # takes the whole request before passing it on: CouchDB's 401 arrives
    auth = couchcore.SessionAuth(user, PASSWORD)
    server = couchcore.Server(proxy.url, auth=auth, backend=backend)
    try:
        db = server.db(name)
        doc = {"_id": "d"}
        db.save(doc)
        _make_stale(admin_server, base, user, auth)
        body, writer = _pipe(DATA)
        seen = len(proxy.seen)
        with body, pytest.raises(couchcore.Unauthorized) as info:
            db.put_attachment(doc, body, "att.bin")
        writer.join(10)
        assert _traffic(proxy, seen) == ["PUT att.bin", "GET /_session", "POST /_session"]
        message = str(info.value)
        assert "session cookie had expired" in message and "cannot be rewound" in message
        assert "a retry now works" in message and PASSWORD not in message and PASSWORD not in repr(info.value)
        assert info.value.status == 401
        assert auth.logins == 2  # the session was renewed all the same
        assert _cookie_user(base, auth._cookie) == user
        # the caller's retry, with a new stream, goes through without another login
        body, writer = _pipe(DATA)
        with body:
            db.put_attachment(doc, body, "att.bin")
        writer.join(10)
        assert auth.logins == 2
        assert db.get_attachment("d", "att.bin") == DATA
    finally:
        server.close()
        proxy.close()


def _create_db_with_body(name: str, body):
    """``PUT /{name}`` (create a database: server admins only) with a streamed body."""
    response = yield Request("PUT", f"/{name}", body=body)
    return response.raise_for_status().json()


@pytest.mark.couchdb_only  # PouchDB Server lets any user create a database
def test_users_own_401_with_a_file_body_is_returned_without_a_login(couch_url, member, data_file, backend):
    """A valid session and a 401 all the same (a member creating a database: "You are not a
    server admin."): one ``GET /_session`` tells, the file is not sent twice, no login."""
    name, user = member
    proxy = FaultyProxy(_base(couch_url))
    auth = couchcore.SessionAuth(user, PASSWORD)
    server = couchcore.Server(proxy.url, auth=auth, backend=backend)
    try:
        assert server.db(name).info()["db_name"] == name
        seen = len(proxy.seen)
        with open(data_file, "rb") as f, pytest.raises(couchcore.Unauthorized) as info:
            server._run(_create_db_with_body(unique_name("r27e-no"), f))
        assert "expired" not in str(info.value) and "admin" in str(info.value)
        assert [m for m, _ in proxy.seen[seen:]] == ["PUT", "GET"]
        assert auth.logins == 1
    finally:
        server.close()
        proxy.close()


@pytest.mark.parametrize("async_backend", async_backends())
def test_stale_session_uploads_on_the_async_facade(couch_url, admin_server, member, data_file, async_backend):
    """The same flow under couchcore.aio (libcurl's loop engine, Tornado's client)."""
    name, user = member
    base = _base(couch_url)
    auth = couchcore.SessionAuth(user, PASSWORD)
    proxy = FaultyProxy(base)

    async def main() -> tuple[bytes, bytes, str, list[int]]:
        loop = asyncio.get_running_loop()
        logins = []
        async with couchcore.aio.Server(proxy.url, auth=auth, backend=async_backend) as server:
            db = await server.db(name)
            doc = {"_id": "d"}
            await db.save(doc)
            await loop.run_in_executor(None, _make_stale, admin_server, base, user, auth)
            with open(data_file, "rb") as f:
                await db.put_attachment(doc, f, "att.bin")  # sent again after a login
            logins.append(auth.logins)
            await loop.run_in_executor(None, _make_stale, admin_server, base, user, auth)
            body, writer = _pipe(DATA)
            message = "no error"
            try:
                with body:
                    await db.put_attachment(doc, body, "att2.bin")
            except couchcore.Unauthorized as exc:
                message = str(exc)
            await loop.run_in_executor(None, writer.join, 10)
            logins.append(auth.logins)
            body, writer = _pipe(DATA)
            with body:
                await db.put_attachment(doc, body, "att2.bin")  # the retry
            await loop.run_in_executor(None, writer.join, 10)
            logins.append(auth.logins)
            return (await db.get_attachment("d", "att.bin"), await db.get_attachment("d", "att2.bin"), message,
                    logins)

    try:
        first, second, message, logins = asyncio.run(main())
    finally:
        proxy.close()
    assert first == DATA and second == DATA
    assert "session cookie had expired" in message and "a retry now works" in message
    assert logins == [2, 3, 3]


BIG = 24 * 1024 * 1024


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(BIG))
    return path


def _outcome(exc: BaseException | None) -> str:
    """What an upload met, and that its error says what happened when it failed."""
    if exc is None:
        return "ok"
    message = str(exc)
    assert PASSWORD not in message
    if isinstance(exc, couchcore.Unauthorized):
        assert "session cookie had expired" in message and "a retry now works" in message
        return "401"
    # CouchDB refused the request before reading the body and closed the connection under it
    assert isinstance(exc, couchcore.OutcomeUnknown), repr(exc)
    assert "session cookie it carried had expired" in message and "a retry now works" in message
    return "break"


@pytest.mark.parametrize("kind", ["file", "pipe"])
def test_stale_session_large_upload_straight_to_the_server(couch_url, admin_server, member, big_file, backend, kind):
    """No proxy: CouchDB answers 401 at once and may close the connection before reading a
    large body, so the client sees a 401 or a broken connection. Either way the session is
    renewed and the caller's retry goes through (before: every retry failed)."""
    name, user = member
    base = _base(couch_url)
    auth = couchcore.SessionAuth(user, PASSWORD)
    server = couchcore.Server(base, auth=auth, backend=backend)
    data = big_file.read_bytes()
    try:
        db = server.db(name)
        doc = {"_id": "d"}
        db.save(doc)
        _make_stale(admin_server, base, user, auth)
        outcomes = []
        for _ in range(2):
            error = None
            body, writer = (open(big_file, "rb"), None) if kind == "file" else _pipe(data)
            try:
                with body:
                    db.put_attachment(doc, body, "att.bin")
            except couchcore.CouchcoreError as exc:
                error = exc
            if writer is not None:
                writer.join(30)
            outcomes.append(_outcome(error))
            if error is None:
                break
            doc = db.get("d")  # an upload cut short may or may not have been applied: read it back
        # a file: sent again after the 401 (one call), or the break reported and the retry sent;
        # a pipe: the 401 or the break reported, the retry sent
        assert outcomes in ((["ok"], ["break", "ok"]) if kind == "file" else (["401", "ok"], ["break", "ok"])), outcomes
        assert auth.logins == 2
        assert db.get_attachment("d", "att.bin") == data
    finally:
        server.close()


@pytest.mark.parametrize("async_backend", async_backends())
def test_stale_session_large_upload_on_the_async_facade(couch_url, admin_server, member, big_file, async_backend):
    """As the sync test above, under couchcore.aio (Tornado's client sees the break)."""
    name, user = member
    base = _base(couch_url)
    auth = couchcore.SessionAuth(user, PASSWORD)
    data = big_file.read_bytes()

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        outcomes = []
        async with couchcore.aio.Server(base, auth=auth, backend=async_backend) as server:
            db = await server.db(name)
            doc = {"_id": "d"}
            await db.save(doc)
            await loop.run_in_executor(None, _make_stale, admin_server, base, user, auth)
            for _ in range(2):
                error = None
                try:
                    with open(big_file, "rb") as f:
                        await db.put_attachment(doc, f, "att.bin")
                except couchcore.CouchcoreError as exc:
                    error = exc
                outcomes.append(_outcome(error))
                if error is None:
                    break
                doc = await db.get("d")
            assert await db.get_attachment("d", "att.bin") == data
        return outcomes

    outcomes = asyncio.run(main())
    assert outcomes in (["ok"], ["break", "ok"]), outcomes
    assert auth.logins == 2
