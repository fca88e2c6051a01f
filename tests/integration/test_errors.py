"""Errors a new user meets first: what they say, what they derive from, what they hide.

Issue 15 items 5 and 7, issue 11 faults a and b: refused requests without a body say
whether credentials were sent; every error names the full URL; transport errors are
also the builtin ``ConnectionError``/``TimeoutError``; the mapping dunders raise a
``NotFound`` that is also a ``KeyError``; a password urlsplit would misread is refused
with couchcore's own error (never echoing it); replication endpoints carry credentials
in the ``auth`` object, never in a URL.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import pickle
import time
import traceback
import uuid
from urllib.parse import quote

import pytest

import couchcore
from couchcore.testing import LoopbackServer, ScriptedServer, http_response, read_request_head
from couchcore._urls import split_credentials

from tests.helpers import unique_name

#: passwords with every character a URL treats specially, and non-ASCII ones
PASSWORDS = [
    "20#Zx-secret", "Ab&3#x-secret", "p@ss-secret", "pa:ss-secret", "sl/ash-secret", "qu?ery-secret",
    "50%off-secret", "@:/#%?-secret", "x@y#z/w?v-secret", "pässwörd-☃-秘密", "日本語@#-secret",
    "sp ace-secret", "%41%42-secret", "trail@", "#lead-secret", "a@b@c-secret", "+plus+-secret",
]


def texts_of(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(exc.args),
            str(getattr(exc, "url", ""))]


# -- issue 11 fault a: credentials urlsplit would misread -------------------------------------------


@pytest.mark.parametrize("password", ["20#Zx", "Ab&3#x"])
def test_the_reported_urls_raise_invalid_input_without_the_password(password):
    url = f"http://admin:{password}@127.0.0.1:5984"
    with pytest.raises(couchcore.InvalidInput) as exc:
        couchcore.Server(url)
    message = str(exc.value)
    assert "percent-encode" in message and "auth=" in message
    assert "127.0.0.1:5984" in message
    for text in texts_of(exc.value):
        assert password not in text and password.split("#")[0] + "#" not in text
    assert exc.value.__cause__ is None  # urlsplit's ValueError (it quoted the password) is not chained


@pytest.mark.parametrize("password", PASSWORDS)
def test_any_password_is_refused_or_read_exactly_and_never_shown(password):
    url = f"http://admin:{password}@127.0.0.1:5984"
    try:
        server = couchcore.Server(url)
    except couchcore.InvalidInput as exc:
        assert any(c in password for c in "/?#"), "only unencoded '/', '?' or '#' make a URL ambiguous"
        for text in texts_of(exc):
            assert password not in text
    else:
        # read as RFC 3986 says: percent-escapes are decoded
        from urllib.parse import unquote

        assert server.credentials.password == unquote(password)
        assert password not in repr(server) and password not in server.url
    # percent-encoded, every password works, exactly
    encoded = couchcore.Server(f"http://admin:{quote(password, safe='')}@127.0.0.1:5984")
    assert encoded.credentials.username == "admin" and encoded.credentials.password == password
    assert encoded.url == "http://127.0.0.1:5984"
    db = couchcore.Database(f"http://admin:{quote(password, safe='')}@127.0.0.1:5984/some%2Fdb")
    assert db.name == "some/db" and db.server.credentials.password == password
    # and so does auth=, unencoded
    assert couchcore.Server("http://127.0.0.1:5984", auth=("admin", password)).credentials.password == password


@pytest.mark.parametrize("password", [p for p in PASSWORDS if any(c in p for c in "/?#")])
def test_database_urls_are_checked_the_same_way(password):
    with pytest.raises(couchcore.InvalidInput) as exc:
        couchcore.Database(f"http://admin:{password}@127.0.0.1:5984/events")
    for text in texts_of(exc.value):
        assert password not in text


@pytest.mark.parametrize("url", ["http://admin:s3cretpw@host:99999", "http://admin:s3cretpw@host:port",
                                 "http://admin:s3cretpw@[::1", "http://admin:s3cretpw@host:5984/?q=1",
                                 "ftp://admin:s3cretpw@host"])
def test_malformed_urls_raise_invalid_input_not_value_error_text(url):
    with pytest.raises(couchcore.InvalidInput) as exc:
        couchcore.Server(url)
    for text in texts_of(exc.value):
        assert "s3cretpw" not in text


def test_urls_with_misread_credentials_are_redacted_in_messages():
    from couchcore._urls import redact_url

    assert redact_url("see http://admin:20#Zx@127.0.0.1:5984/db") == "see http://***@127.0.0.1:5984/db"
    assert redact_url("http://u:a@b?c@host/x") == "http://***@host/x"
    # an '@' in a path is no credential
    assert redact_url("http://h:5984/_node/node1@127.0.0.1/_config") == "http://h:5984/_node/node1@127.0.0.1/_config"


def test_a_password_with_reserved_characters_logs_in(couch_url, backend):
    """auth= and a percent-encoded URL both log in with a password full of reserved
    characters (a real user, created for the test)."""
    base, admin_user, admin_pw = split_credentials(couch_url)
    if admin_user is None:
        pytest.skip("the test server URL carries no credentials")
    admin = couchcore.Server(couch_url, backend=backend)
    user, password = f"u-{uuid.uuid4().hex[:8]}", "p@ss:w/rd#?%é-" + uuid.uuid4().hex[:6]
    admin.users.save({"_id": f"org.couchdb.user:{user}", "name": user, "password": password,
                      "roles": [], "type": "user"})
    try:
        for server in (couchcore.Server(base, auth=(user, password), backend=backend),
                       couchcore.Server(base.replace("://", f"://{quote(user, safe='')}:{quote(password, safe='')}@"),
                                        backend=backend)):
            info = server._run(_session_op())
            assert info["userCtx"]["name"] == user
    finally:
        admin.users.delete(admin.users.get(f"org.couchdb.user:{user}"))


def _session_op():
    from couchcore.protocol.messages import Request

    resp = yield Request("GET", "/_session")
    return resp.json()


# -- issue 15 item 7: builtin bases, KeyError from the mapping dunders ---------------------------


def test_transport_errors_derive_from_the_builtins():
    assert issubclass(couchcore.ConnectionError, builtins.ConnectionError)
    assert issubclass(couchcore.TimeoutError, builtins.TimeoutError)
    assert issubclass(couchcore.ReadTimeout, builtins.TimeoutError)
    assert issubclass(couchcore.ConnectTimeout, builtins.TimeoutError)
    assert issubclass(couchcore.ConnectTimeout, builtins.ConnectionError)
    assert issubclass(couchcore.TLSError, builtins.ConnectionError)
    assert not issubclass(couchcore.ReadTimeout, builtins.ConnectionError)
    for cls in (couchcore.ConnectionError, couchcore.ReadTimeout, couchcore.ConnectTimeout, couchcore.TLSError):
        exc = cls("it failed", "http://user:pw-secret@host:5984/db")
        assert str(exc) == "it failed (http://***@host:5984/db)" and exc.url == "http://***@host:5984/db"
        assert isinstance(exc, couchcore.TransportError) and isinstance(exc, couchcore.CouchcoreError)
        copy = pickle.loads(pickle.dumps(exc))
        assert type(copy) is cls and str(copy) == str(exc) and copy.url == exc.url


def test_stdlib_except_clauses_catch_connection_failures(backend, refused_url):
    server = couchcore.Server(refused_url, backend=backend, retries=0)
    with pytest.raises(builtins.ConnectionError) as exc:
        server.version()
    assert isinstance(exc.value, couchcore.ConnectError)
    try:
        server.all_dbs()
    except OSError as err:  # what code written for sockets catches
        assert isinstance(err, couchcore.TransportError)
    else:
        pytest.fail("no error")


def test_stdlib_except_clauses_catch_read_timeouts(backend):
    with LoopbackServer(lambda conn: (read_request_head(conn), time.sleep(10))) as silent:
        server = couchcore.Server(silent.url, backend=backend, timeout=0.3)
        with pytest.raises(builtins.TimeoutError) as exc:
            server.version()
    assert isinstance(exc.value, couchcore.ReadTimeout) and not isinstance(exc.value, builtins.ConnectionError)


def test_mapping_dunders_raise_a_not_found_that_is_a_key_error(server, db, is_couchdb):
    base = server.url
    missing = unique_name("missing")
    for action in (lambda: db["no-such-doc"], lambda: server[missing]):
        with pytest.raises(KeyError) as exc:
            action()
        assert isinstance(exc.value, couchcore.NotFound) and isinstance(exc.value, couchcore.NotFoundKeyError)
        with pytest.raises(couchcore.NotFound):
            action()
        text = str(exc.value)
        assert text.startswith("404 ") and not text.startswith(("'", '"')), text  # not KeyError's repr
        assert f"({exc.value.method} {base}/" in text and exc.value.url.startswith(base + "/")
    with pytest.raises(KeyError):
        del db["no-such-doc"]
    if is_couchdb:  # PouchDB Server answers DELETE of a missing database with 200
        with pytest.raises(KeyError):
            del server[missing]
    # a mapping's .get() idioms work
    db["there"] = {"v": 1}
    assert db["there"]["v"] == 1
    del db["there"]
    with pytest.raises(KeyError):
        db["there"]  # deleted: a missing key again
    # the plain methods keep raising plain NotFound
    with pytest.raises(couchcore.NotFound) as exc:
        db.get("no-such-doc")
    assert not isinstance(exc.value, KeyError)
    with pytest.raises(couchcore.NotFound) as exc:
        server.db(missing)
    assert not isinstance(exc.value, KeyError)


def test_a_document_key_of_a_missing_database_is_not_a_key_error(server):
    db = server._database(unique_name("gone"))
    with pytest.raises(couchcore.NotFound) as exc:
        db["anything"]
    assert not isinstance(exc.value, KeyError)


def test_async_mapping_dunders_raise_key_errors_too(couch_url, db):
    import couchcore.tornado as ct

    async def main():
        aserver = ct.Server(couch_url)
        try:
            adb = await aserver[db.name]
            with pytest.raises(KeyError) as exc:
                await adb["no-such-doc"]
            assert isinstance(exc.value, couchcore.NotFound) and str(exc.value).startswith("404 ")
            with pytest.raises(KeyError):
                await aserver[unique_name("missing")]
        finally:
            aserver.close()

    asyncio.run(main())


# -- issue 15 item 5: a reason for bodiless refusals, full URLs ----------------------------------


def status_server(status: int) -> ScriptedServer:
    """Answers every request with ``status`` and no body."""
    return ScriptedServer(lambda request, conn: http_response(f"{status} Refused", b"", content_type=None))


@pytest.mark.parametrize("status, cls", [(401, couchcore.Unauthorized), (403, couchcore.Forbidden)])
def test_a_refused_head_says_whether_credentials_were_sent(backend, status, cls):
    with status_server(status) as srv:
        anonymous = couchcore.Server(srv.url, backend=backend)
        with pytest.raises(cls) as exc:
            anonymous.db("nc-errors")
        assert b"authorization:" not in srv.heads[-1].lower()
        assert exc.value.reason and "no credentials were sent" in exc.value.reason
        assert str(exc.value) == f"{status}: {exc.value.reason} (HEAD {srv.url}/nc-errors)"
        with_creds = couchcore.Server(srv.url, auth=("someone", "pw-secret-1"), backend=backend)
        with pytest.raises(cls) as exc:
            with_creds.exists("nc-errors")
        assert b"authorization: basic" in srv.heads[-1].lower()
        assert "no credentials" not in exc.value.reason
        assert ("rejected" if status == 401 else "may not access") in exc.value.reason
        assert all("pw-secret-1" not in t for t in texts_of(exc.value))


def test_a_refused_head_on_the_test_server_has_a_reason(couch_url, backend, is_couchdb, db):
    base, _, _ = split_credentials(couch_url)
    if is_couchdb:  # CouchDB 3: databases are admin-only, so anonymous is refused
        with pytest.raises(couchcore.Unauthorized) as exc:
            couchcore.Server(base, backend=backend)[db.name]
        assert "no credentials were sent" in exc.value.reason
        assert exc.value.url == f"{base}/{db.name}"
    wrong = couchcore.Server(base, auth=(f"nobody-{uuid.uuid4().hex[:8]}", "wrong"), backend=backend)
    with pytest.raises(couchcore.Unauthorized) as exc:
        wrong.exists(db.name)
    assert exc.value.method == "HEAD" and exc.value.reason
    assert exc.value.url == f"{base}/{db.name}"


def test_every_error_names_the_full_url(server, db):
    base = server.url
    missing = unique_name("nc-nope")
    with pytest.raises(couchcore.NotFound) as exc:
        server.db(missing)
    assert exc.value.url == f"{base}/{missing}" and f"(HEAD {base}/{missing})" in str(exc.value)
    db.save({"_id": "c", "v": 1})
    with pytest.raises(couchcore.Conflict) as exc:
        db.save({"_id": "c", "v": 2})
    assert exc.value.url.startswith(base + "/") and base in str(exc.value)
    with pytest.raises(couchcore.NotFound) as exc:
        db.get("absent")
    assert exc.value.url == f"{db.url}/absent"
    with pytest.raises(couchcore.NotFound) as exc:
        server.stats("couchdb/no_such_statistic_at_all")
    assert exc.value.url.startswith(base + "/")
    assert "@" not in exc.value.url.split("//", 1)[1].split("/", 1)[0]  # never any user information


def test_many_requests_at_once_name_full_urls_too(server, db):
    results = server._run_many([_missing_doc(db.name, "a"), _missing_doc(db.name, "b")], 2, list)
    assert all(isinstance(r, couchcore.NotFound) and r.url.startswith(server.url + "/") for r in results)


def _missing_doc(db: str, docid: str):
    from couchcore.errors import NotFound
    from couchcore.protocol.messages import Request

    resp = yield Request("GET", f"/{db}/{docid}")
    assert resp.status == 404
    raise NotFound(404, "not_found", "missing", "GET", f"/{db}/{docid}")  # a path, as operations may


# -- issue 11 fault b: replication endpoints -------------------------------------------------------


def replicate_recorder(version: str = "3.5.0") -> ScriptedServer:
    """A fake CouchDB of ``version``: answers ``GET /`` with its welcome, and anything else
    (``POST /_replicate``, ``PUT /_replicator/...``) with ``ok``."""
    def script(request, conn):
        if (request.method, request.target) == ("GET", "/"):
            return http_response(200, json.dumps({"couchdb": "Welcome", "version": version}).encode())
        return http_response(200, b'{"ok":true,"id":"job","rev":"1-a"}')

    return ScriptedServer(script)


def replication_bodies(fake: ScriptedServer) -> list[dict]:
    """The JSON bodies of the requests ``fake`` recorded, the welcome reads left out."""
    return [json.loads(r.body) for r in fake.requests if (r.method, r.target) != ("GET", "/")]


@pytest.mark.parametrize("password", ["p@ss", "x@y#z/w?v:%-secret", "pässwörd-☃"])
def test_replication_endpoints_carry_credentials_in_the_auth_object(backend, password):
    with replicate_recorder() as fake:
        server = couchcore.Server(fake.url, auth=("repl", password), backend=backend)
        other = couchcore.Server(fake.url.replace("127.0.0.1", "localhost"), auth=("other", "pw2-secret"),
                                 backend=backend)
        src, tgt = server._database("src"), other._database("tgt")
        src.push(tgt)
        tgt.pull(src, _id="job-1")
        server.replicate("plain", f"http://u2:{quote('s@cr#t', safe='')}@127.0.0.1:9/remote%2Fdb", continuous=True)
        first, second, third = replication_bodies(fake)
    assert first["source"] == {"url": f"{fake.url}/src", "auth": {"basic": {"username": "repl", "password": password}}}
    assert first["target"] == {"url": f"{other.url}/tgt",
                               "auth": {"basic": {"username": "other", "password": "pw2-secret"}}}
    assert second["source"] == first["source"] and second["target"] == first["target"]
    assert third["source"]["url"] == f"{fake.url}/plain"
    assert third["target"] == {"url": "http://127.0.0.1:9/remote%2Fdb",
                               "auth": {"basic": {"username": "u2", "password": "s@cr#t"}}}
    assert third["continuous"] is True
    for body in replication_bodies(fake):  # no URL anywhere carries user information
        for endpoint in (body["source"], body["target"]):
            assert "@" not in endpoint["url"]


def test_older_couchdb_gets_an_authorization_header_and_anonymous_a_plain_url(backend):
    import base64

    with replicate_recorder(version="3.1.2") as fake:
        server = couchcore.Server(fake.url, auth=("repl", "p@ss"), backend=backend)
        server._database("a").push(server._database("b"))
        anonymous = couchcore.Server(fake.url, backend=backend)
        anonymous._database("a").push("b")
    token = base64.b64encode(b"repl:p@ss").decode()
    bodies = replication_bodies(fake)
    assert bodies[0]["source"] == {"url": f"{fake.url}/a", "headers": {"Authorization": f"Basic {token}"}}
    assert bodies[1] == {"source": f"{fake.url}/a", "target": f"{fake.url}/b"}


def test_endpoints_never_show_the_password():
    server = couchcore.Server("http://127.0.0.1:9", auth=("repl", "p@ss-secret"))
    endpoint = server._endpoint(server._database("db"))
    assert "p@ss-secret" not in repr(endpoint) and endpoint.url == "http://127.0.0.1:9/db"
    with pytest.raises(couchcore.InvalidInput) as exc:
        server._endpoint("http://u:a#b-secret@host:5984/db")
    assert "a#b-secret" not in str(exc.value)


@pytest.mark.couchdb_only  # PouchDB Server takes no endpoint objects (it replicates its own dbs by name)
def test_push_and_pull_with_an_at_sign_in_the_password(couch_url, backend):
    """Issue 11: between two Database objects of a server whose password holds '@',
    push and pull copy the documents on Apache CouchDB (credentials in a URL gave
    500 replication_auth_error)."""
    base, _, _ = split_credentials(couch_url)
    admin = couchcore.Server(couch_url, backend=backend)
    user, password = f"repl-{uuid.uuid4().hex[:8]}", "p@ss:w/rd#?%é"
    admin.users.save({"_id": f"org.couchdb.user:{user}", "name": user, "password": password,
                      "roles": [], "type": "user"})
    names = [unique_name("src"), unique_name("tgt")]
    try:
        for name in names:
            admin.create(name).security({"admins": {"names": [], "roles": []},
                                         "members": {"names": [user], "roles": []}})
        repl = couchcore.Server(base, auth=(user, password), backend=backend)
        src, tgt = repl.db(names[0]), repl.db(names[1])
        src.save([{"_id": f"s{i}"} for i in range(5)])
        tgt.save({"_id": "t0"})
        result = src.push(tgt)
        assert result.get("ok") is True, result
        tgt.pull(src)
        src.pull(tgt)
        assert all(d is not None for d in tgt.get([f"s{i}" for i in range(5)]))
        assert "t0" in src
    finally:
        for name in names:
            if admin.exists(name):
                admin.delete(name)
        admin.users.delete(admin.users.get(f"org.couchdb.user:{user}"))
