"""The network layer on every sync backend: failures map to couchcore's TransportError
family, credentials never leak, authentication, TLS verification, streamed request
bodies and Database objects built from URLs.

Failure modes the test server cannot produce (refused connections, silent or broken
servers, TLS) are played by small servers on 127.0.0.1 started inside the tests.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import traceback

import pytest

import couchcore
from couchcore.testing import LoopbackServer, ScriptedServer, http_response, read_request_head
from tests.helpers import reset_on_write
from couchcore.protocol.messages import Request
from couchcore._urls import split_credentials

SECRET = "pa55-SECRET-w0rd"
USER = "sekrit-user"
TOKEN = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        s = str(text)
        assert SECRET not in s and TOKEN not in s, f"credentials leaked in: {s[:300]}"


def exception_texts(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc)), str(getattr(exc, "url", "")),
            repr(exc.args)]


# -- local servers ---------------------------------------------------------------------------


@pytest.fixture
def raw_server():
    servers = []

    def make(handler):
        s = LoopbackServer(handler, backlog=16)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def couch_echo(request, conn) -> bytes:
    """Answers like a CouchDB welcome (``GET /``), anything else with an echo of what was asked."""
    if request.target == "/":
        payload = {"couchdb": "Welcome", "version": "9.9.9-test"}
    else:
        payload = {"ok": True, "path": request.target, "method": request.method, "length": len(request.body)}
    data = json.dumps(payload).encode()
    answer = http_response(200, data)
    return answer[: len(answer) - len(data)] if request.method == "HEAD" else answer


@pytest.fixture
def recorder():
    s = ScriptedServer(couch_echo)
    yield s
    s.close()


# -- connection failures -------------------------------------------------------------------------


def test_connection_refused(backend, refused_url):
    url = refused_url
    server = couchcore.Server(url, backend=backend, retries=0)
    with pytest.raises(couchcore.ConnectionError) as exc:
        server.version()
    err = exc.value
    assert isinstance(err, couchcore.TransportError) and isinstance(err, couchcore.CouchcoreError)
    assert not isinstance(err, couchcore.TimeoutError)
    assert err.url == url + "/" and url in str(err)
    # the backend's own exception is kept as the cause (raise ... from exc); that it never holds
    # credentials is checked for every backend in test_transport_conformance.py
    assert err.__cause__ is not None and not isinstance(err.__cause__, couchcore.CouchcoreError)


def test_connection_refused_with_retries_still_fails_fast(backend, refused_url):
    server = couchcore.Server(refused_url, backend=backend, retries=3)
    t0 = time.monotonic()
    with pytest.raises(couchcore.ConnectionError):
        server.all_dbs()
    assert time.monotonic() - t0 < 10


def test_read_timeout_on_a_silent_server(raw_server, backend):
    silent = raw_server(lambda conn: (read_request_head(conn), time.sleep(30)))
    server = couchcore.Server(silent.url, backend=backend, timeout=0.5, retries=0)
    t0 = time.monotonic()
    with pytest.raises(couchcore.ReadTimeout) as exc:
        server.version()
    elapsed = time.monotonic() - t0
    assert isinstance(exc.value, couchcore.TimeoutError) and isinstance(exc.value, couchcore.TransportError)
    assert not isinstance(exc.value, couchcore.ConnectTimeout)
    assert 0.4 < elapsed < 5
    assert silent.connections == 1


@pytest.mark.parametrize("option", ["timeout", "connect_timeout"])
@pytest.mark.parametrize("value", [0, 0.0, -1, float("nan"), float("inf"), 1e9, "5", True])
def test_a_timeout_that_is_not_a_positive_number_is_refused_before_any_request(couch_url, backend, option, value):
    # 0 was let through: urllib3 then raised a bare ValueError at the first request and libcurl
    # read CONNECTTIMEOUT_MS=0 as its 300 s default (reviewer-r27 finding 3). None means no timeout.
    with pytest.raises(couchcore.InvalidOption, match=option):
        couchcore.Server(couch_url, backend=backend, **{option: value})
    with pytest.raises(couchcore.InvalidOption, match="timeout"):
        with couchcore.call_options(timeout=value):
            pass
    # (inf and 1e9 were let through: a bare OverflowError at the first request, reviewer-round-r27)
    for fine in (None, 1e6):
        assert couchcore.Server(couch_url, backend=backend, **{option: fine}).version()


def test_a_write_is_never_resent_after_a_timeout(raw_server, backend, tmp_path):
    silent = raw_server(lambda conn: (read_request_head(conn), time.sleep(30)))
    db = couchcore.Server(silent.url, backend=backend, timeout=0.5, retries=3)._database("db")
    with pytest.raises(couchcore.ReadTimeout):
        db.save({"_id": "once"})
    time.sleep(0.2)
    assert silent.connections == 1


def test_read_timeout_mid_stream(raw_server, backend):
    def trickle(conn):
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        row = b'{"total_rows":2,"offset":0,"rows":[\r\n{"id":"a","key":"a","value":1}'
        conn.sendall(b"%x\r\n%s\r\n" % (len(row), row))
        time.sleep(30)

    server = couchcore.Server(raw_server(trickle).url, backend=backend, timeout=0.5, retries=0)
    result = server._database("db").view("_all_docs")
    rows = []
    with pytest.raises(couchcore.ReadTimeout):
        for row in result:
            rows.append(row)
    assert [r.id for r in rows] == ["a"] and result.total_rows == 2


def test_truncated_response_is_a_connection_error(raw_server, backend):
    def truncated(conn):
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ok\":")
        conn.close()

    server = couchcore.Server(raw_server(truncated).url, backend=backend, retries=0)
    with pytest.raises(couchcore.ConnectionError):
        server.version()


def test_garbage_instead_of_http_is_a_transport_error(raw_server, backend):
    def garbage(conn):
        read_request_head(conn)
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        conn.close()

    server = couchcore.Server(raw_server(garbage).url, backend=backend, retries=0)
    with pytest.raises(couchcore.TransportError):
        server.version()


def test_connection_dropped_mid_view_stream(raw_server, backend):
    def drop(conn):
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        part = b'{"total_rows":3,"offset":0,"rows":[\r\n{"id":"a","key":"a","value":1},\r\n{"id":"b","ke'
        conn.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        time.sleep(0.1)
        conn.shutdown(socket.SHUT_RDWR)
        conn.close()

    server = couchcore.Server(raw_server(drop).url, backend=backend, retries=0)
    rows = []
    with pytest.raises((couchcore.ConnectionError, couchcore.ParseError)):
        for row in server._database("db").view("_all_docs"):
            rows.append(row.id)
    assert rows == ["a"]


# -- credentials never leak ---------------------------------------------------------------------


def test_no_credentials_in_connection_errors_or_logs(backend, caplog, capsys, refused_url):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    url = refused_url.replace("://", f"://{USER}:{SECRET}@")
    server = couchcore.Server(url, backend=backend, retries=1)
    assert_no_secret(repr(server), server.url, repr(server.credentials), repr(server._transport),
                     repr(server._database("somedb")), server._database("somedb").url)
    assert server.credentials.username == USER and server.credentials.password == SECRET
    with pytest.raises(couchcore.ConnectionError) as exc:
        server.version()
    assert_no_secret(*exception_texts(exc.value))
    with pytest.raises(couchcore.ConnectionError) as exc:
        couchcore.Database(url + "/somedb", backend=backend, retries=0).info()
    assert_no_secret(*exception_texts(exc.value))
    out = capsys.readouterr()
    if backend == "urllib3":  # the check below must have something to look at
        assert any(r.name.startswith("urllib3") for r in caplog.records)
    assert_no_secret(caplog.text, *(r.getMessage() for r in caplog.records), out.out, out.err)


def test_no_credentials_in_timeouts(raw_server, backend, caplog):
    caplog.set_level(logging.DEBUG)
    silent = raw_server(lambda conn: (read_request_head(conn), time.sleep(30)))
    base = silent.url.replace("http://", f"http://{USER}:{SECRET}@")
    server = couchcore.Server(base, backend=backend, timeout=0.3, retries=0)
    with pytest.raises(couchcore.ReadTimeout) as exc:
        server.all_dbs()
    assert_no_secret(*exception_texts(exc.value), caplog.text)


def test_no_credentials_in_http_errors_or_logs(couch_url, backend, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    base, _, _ = split_credentials(couch_url)
    wrong = base.replace("://", f"://{USER}:{SECRET}@")
    server = couchcore.Server(wrong, backend=backend)
    with pytest.raises(couchcore.Unauthorized) as exc:
        server.all_dbs()
    assert exc.value.status == 401 and exc.value.method == "GET"
    assert_no_secret(*exception_texts(exc.value), exc.value.headers, caplog.text)
    db = couchcore.Database(wrong + "/anydb", backend=backend)
    with pytest.raises(couchcore.Unauthorized) as exc:
        db.view("_all_docs")
    assert_no_secret(*exception_texts(exc.value), caplog.text, repr(db))
    if backend == "urllib3":
        assert any(r.name.startswith("urllib3") and r.levelno == logging.DEBUG for r in caplog.records)


def test_no_credentials_in_not_found(couch_url, backend):
    server = couchcore.Server(couch_url, backend=backend)
    _, user, password = split_credentials(couch_url)
    with pytest.raises(couchcore.NotFound) as exc:
        server.db("no-such-db-couchcore")
    assert exc.value.url.endswith("/no-such-db-couchcore")
    if password:
        for text in exception_texts(exc.value):
            assert f"{user}:{password}@" not in text


# -- authentication ----------------------------------------------------------------------------------


@pytest.fixture
def login(couch_url):
    base, user, password = split_credentials(couch_url)
    if user is None:
        pytest.skip("the test server URL carries no credentials")
    return base, user, password


def test_auth_from_url(login, backend):
    base, user, password = login
    server = couchcore.Server(base.replace("://", f"://{user}:{password}@"), backend=backend)
    assert isinstance(server.all_dbs(), list)
    assert server.credentials.username == user


def test_auth_argument(login, backend):
    base, user, password = login
    server = couchcore.Server(base, auth=(user, password), backend=backend)
    assert isinstance(server.all_dbs(), list)


def test_auth_argument_overrides_url_credentials(login, backend):
    base, user, password = login
    # never a wrong password for the real admin: CouchDB 3 locks the account after a few
    good = couchcore.Server(base.replace("://", f"://{nobody()}:wrong@"), auth=(user, password), backend=backend)
    assert isinstance(good.all_dbs(), list)
    bad = couchcore.Server(base.replace("://", f"://{user}:{password}@"), auth=(nobody(), "wrong"), backend=backend)
    with pytest.raises(couchcore.Unauthorized):
        bad.all_dbs()


def nobody() -> str:
    """A user name no server knows (wrong passwords for a real user lock it out on CouchDB 3)."""
    return f"nobody-{os.urandom(4).hex()}"


def test_wrong_password_is_unauthorized(login, backend):
    base, user, _ = login
    server = couchcore.Server(base, auth=(nobody(), "definitely-wrong"), backend=backend)
    with pytest.raises(couchcore.Unauthorized) as exc:
        server.version()
    assert exc.value.status == 401 and isinstance(exc.value, couchcore.HTTPError)
    with pytest.raises(couchcore.Unauthorized):
        couchcore.Server(base.replace("://", "://nobody-at-all:x@"), backend=backend).all_dbs()


@pytest.mark.couchdb_only  # PouchDB Server lets anonymous users read the config
def test_anonymous_is_unauthorized_for_admin_endpoints(login, backend):
    base, _, _ = login
    with pytest.raises(couchcore.Unauthorized):
        couchcore.Server(base, backend=backend).config()


def test_bad_auth_argument():
    with pytest.raises(couchcore.InvalidInput):
        couchcore.Server("http://127.0.0.1:9", auth="user:pw")
    with pytest.raises(couchcore.InvalidInput):
        couchcore.Server("http://127.0.0.1:9", auth=("a", "b", "c"))


def test_basic_auth_header_with_percent_encoded_url_credentials(recorder, backend):
    url = recorder.url.replace("://", "://us%40er:p%40ss%3Aw%2Frd%25@")
    server = couchcore.Server(url, backend=backend)
    assert server.version() == "9.9.9-test"
    sent = recorder.requests[-1].headers["authorization"]
    assert sent == "Basic " + base64.b64encode(b"us@er:p@ss:w/rd%").decode()
    server2 = couchcore.Server(recorder.url, auth=("é", "☃ pw"), backend=backend)
    server2.version()
    assert recorder.requests[-1].headers["authorization"] == \
        "Basic " + base64.b64encode("é:☃ pw".encode()).decode()
    couchcore.Server(recorder.url, backend=backend).version()
    assert "authorization" not in recorder.requests[-1].headers


def test_custom_headers_and_unknown_options(recorder, backend):
    server = couchcore.Server(recorder.url, backend=backend, headers={"X-Trace": "abc"})
    server.version()
    assert recorder.requests[-1].headers["x-trace"] == "abc"
    assert recorder.requests[-1].headers["accept"] == "application/json"
    with pytest.raises(couchcore.InvalidOption):
        couchcore.Server(recorder.url, backend=backend, no_such_option=1)
    with pytest.raises(couchcore.InvalidOption):
        couchcore.Server(recorder.url, backend="no-such-backend")


# -- TLS ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    """A self-signed certificate for IP 127.0.0.1 (and no host name)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    openssl = shutil.which("openssl")
    if openssl:
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", "2", "-subj", "/CN=couchcore-test", "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True,
        )
    else:
        crypto = pytest.importorskip("cryptography", reason="neither openssl nor cryptography available")
        del crypto
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        pkey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "couchcore-test")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(pkey.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(pkey, hashes.SHA256())
        )
        cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(pkey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert), str(key)


@pytest.fixture
def tls_server(tls_cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*tls_cert)
    s = ScriptedServer(couch_echo, tls_context=ctx)
    yield s
    s.close()


def test_tls_verification_is_on_by_default(tls_server, backend):
    server = couchcore.Server(tls_server.url, backend=backend, retries=0)
    assert server.options.verify is True
    with pytest.raises(couchcore.TLSError) as exc:
        server.version()
    assert isinstance(exc.value, couchcore.ConnectionError) and isinstance(exc.value, couchcore.TransportError)
    assert tls_server.requests == []  # nothing was sent over the unverified connection


def test_tls_error_does_not_leak_credentials(tls_server, backend, caplog):
    caplog.set_level(logging.DEBUG)
    url = tls_server.url.replace("://", f"://{USER}:{SECRET}@")
    with pytest.raises(couchcore.TLSError) as exc:
        couchcore.Server(url, backend=backend, retries=0).version()
    assert_no_secret(*exception_texts(exc.value), caplog.text)


def test_tls_with_ca_certs_works(tls_server, tls_cert, backend):
    server = couchcore.Server(tls_server.url, backend=backend, ca_certs=tls_cert[0], auth=("u", "p"))
    assert server.version() == "9.9.9-test"
    request = tls_server.requests[-1]
    assert request.target == "/" and request.headers["authorization"].startswith("Basic ")


def test_tls_host_name_is_checked(tls_server, tls_cert, backend):
    """The certificate names 127.0.0.1 only: the same server reached as 'localhost' fails."""
    url = tls_server.url.replace("127.0.0.1", "localhost")
    try:
        socket.getaddrinfo("localhost", 1)
    except OSError:
        pytest.skip("localhost does not resolve")
    with pytest.raises(couchcore.TLSError):
        couchcore.Server(url, backend=backend, ca_certs=tls_cert[0], retries=0).version()


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
def test_tls_verify_false_skips_verification(tls_server, backend):
    server = couchcore.Server(tls_server.url, backend=backend, verify=False)
    assert server.version() == "9.9.9-test"


def test_https_to_a_plain_http_server_is_a_tls_error(recorder, backend):
    with pytest.raises(couchcore.TransportError):
        couchcore.Server(recorder.url.replace("http:", "https:"), backend=backend, retries=0).version()


# -- streamed request bodies -----------------------------------------------------------------------------


def test_iterator_body_is_sent_chunked(recorder, backend):
    server = couchcore.Server(recorder.url, backend=backend)
    produced = []

    def chunks():
        for i in range(5):
            piece = f"part{i};".encode() * 1000
            produced.append(len(piece))
            yield piece

    resp = server._transport.send(Request("PUT", "/db/doc/att.bin", body=chunks(),
                                          headers={"Content-Type": "application/octet-stream"}))
    assert resp.status == 200
    got = recorder.requests[-1]
    assert got.headers.get("transfer-encoding", "").lower() == "chunked"
    assert got.body == b"".join(f"part{i};".encode() * 1000 for i in range(5))
    assert got.chunks >= 1 and len(produced) == 5


def test_iterator_body_against_the_test_server(db, backend):
    """An attachment uploaded as a generator of chunks (chunked transfer encoding)."""
    db.save({"_id": "holder"})
    rev = db.get("holder")["_rev"]
    data = [bytes([i]) * 50_000 for i in range(10)]
    path = f"/{db.name}/holder/gen.bin"
    resp = db.server._transport.send(Request("PUT", path, query=[("rev", rev)], body=iter(data),
                                             headers={"Content-Type": "application/octet-stream"}))
    assert resp.status == 201, resp.body
    assert db.get_attachment("holder", "gen.bin") == b"".join(data)


def test_file_body_with_length_is_not_chunked(recorder, backend, tmp_path):
    path = tmp_path / "body.bin"
    path.write_bytes(b"z" * 200_000)
    db = couchcore.Server(recorder.url, backend=backend)._database("db")
    with open(path, "rb") as f:
        db.put_attachment({"_id": "doc", "_rev": "1-a"}, f, "body.bin")
    got = recorder.requests[-1]
    assert got.method == "PUT" and got.target == "/db/doc/body.bin?rev=1-a"
    assert got.headers["content-length"] == "200000" and "transfer-encoding" not in got.headers
    assert got.body == b"z" * 200_000


# -- Database from a URL ---------------------------------------------------------------------------------


def test_database_from_full_url(couch_url, db, backend):
    db.save({"_id": "x", "v": 1})
    direct = couchcore.Database(f"{couch_url}/{db.name}", backend=backend)
    assert direct.name == db.name and direct.exists()
    assert direct.get("x")["v"] == 1
    assert direct.url == db.url
    _, user, password = split_credentials(couch_url)
    if password:
        assert f"{user}:{password}@" not in repr(direct) and f"{user}:{password}@" not in direct.url
    trailing = couchcore.Database(f"{couch_url}/{db.name}/", backend=backend)
    assert trailing.name == db.name and "x" in trailing


def test_database_from_url_with_auth_argument(login, db, backend):
    base, user, password = login
    direct = couchcore.Database(f"{base}/{db.name}", auth=(user, password), backend=backend)
    direct.save({"_id": "via-auth"})
    assert "via-auth" in db
    wrong = couchcore.Database(f"{base}/{db.name}", auth=(nobody(), "wrong"), backend=backend)
    with pytest.raises(couchcore.Unauthorized):
        wrong.info()


def test_database_from_url_with_encoded_name(server, couch_url, backend):
    name = "test-enc/sub+x"
    db = server.create(name, n=1)  # one copy: doc_count right after the write counts it (conftest.one_copy_db)
    try:
        db.save({"_id": "k"})
        direct = couchcore.Database(f"{couch_url}/test-enc%2Fsub%2Bx", backend=backend)
        assert direct.name == name and "k" in direct
        assert direct.info()["doc_count"] == 1 and direct.url.endswith("/test-enc%2Fsub%2Bx")
    finally:
        server.delete(name)


def test_database_from_url_keeps_a_path_prefix(recorder, backend):
    db = couchcore.Database(f"{recorder.url}/couch/prefix/mydb", backend=backend)
    assert db.name == "mydb" and db.server.url == f"{recorder.url}/couch/prefix"
    assert db.exists()  # (info() would refuse the echo: no "db_name")
    assert recorder.requests[-1].target == "/couch/prefix/mydb"


def test_database_from_bad_url_or_name():
    with pytest.raises(couchcore.InvalidDatabaseName):
        couchcore.Database("http://127.0.0.1:9/Bad Name")
    with pytest.raises(couchcore.InvalidInput):
        couchcore.Database("http://127.0.0.1:9/ok", auth="user:pw")


# -- timeouts and retries (issue 15 item 6, issue 11 fault c and item 1) ----------------------------


ALL_BACKENDS = ["urllib3", "pycurl", "tornado"]


def call(backend: str, url: str, method: str = "version", *args, **options):
    """``Server(url, **options).<method>(*args)`` on a sync backend or the async facade."""
    if backend == "tornado":
        import asyncio

        import couchcore.tornado as ct

        async def main():
            server = ct.Server(url, **options)
            try:
                return await getattr(server, method)(*args)
            finally:
                server.close()

        return asyncio.run(main())
    if backend == "pycurl":
        pytest.importorskip("pycurl")
    return getattr(couchcore.Server(url, backend=backend, **options), method)(*args)


def http_reply(body: bytes = b'{"couchdb":"Welcome","version":"9.9.9-test"}', status: str = "200 OK",
               extra: str = "") -> bytes:
    return http_response(status, body, headers=extra, close=True)


def scripted(script) -> ScriptedServer:
    """Answers the n-th request (from 0, one per connection) with ``script(n, head)``: the
    bytes to send, or ``None`` to close the connection without an answer."""
    return ScriptedServer(lambda request, conn: script(request.n, request.head), keep_alive=False)


def test_documented_defaults():
    from couchcore.transport.base import TransportOptions

    options = TransportOptions.from_kwargs()
    assert options.timeout == 90 and options.connect_timeout == 10 and options.retries == 2
    assert options.deadline is None
    doc = couchcore.Server.__doc__
    assert "90" in doc and "10" in doc and "read timeout" in doc and "connect" in doc and "retries" in doc
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md"), encoding="utf-8").read()
    assert "90 s" in readme and "10 s" in readme
    # a read timeout below the connect timeout's default also bounds connecting
    assert TransportOptions.from_kwargs(timeout=3).connect_timeout == 3
    assert TransportOptions.from_kwargs(timeout=3, connect_timeout=5).connect_timeout == 5
    assert TransportOptions.from_kwargs(timeout=None).connect_timeout == 10
    for bad in ({"timeout": -1}, {"timeout": "3"}, {"connect_timeout": True}, {"retries": -1},
                {"retries": 1.5}, {"deadline": -2}, {"backoff": None}):
        with pytest.raises(couchcore.InvalidOption):
            TransportOptions.from_kwargs(**bad)


@pytest.mark.timing  # asserts a duration: deselected by default (make test-timing)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_a_slow_response_times_out_once_with_default_retries(backend):
    """Issue 11: timeout=1 against a response that takes 4 s raises ReadTimeout after
    ~1 s on every backend (urllib3 used to send the GET three times: 3 s)."""
    slow = scripted(lambda n, head: (time.sleep(4), http_reply())[1])
    try:
        t0 = time.monotonic()
        with pytest.raises(couchcore.ReadTimeout):
            call(backend, slow.url, timeout=1.0)
        elapsed = time.monotonic() - t0
    finally:
        slow.close()
    assert 0.9 < elapsed < 2.5, elapsed
    assert len(slow.heads) == 1  # sent once


@pytest.mark.timing  # asserts a duration: deselected by default (make test-timing)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_a_server_that_never_answers_costs_one_read_timeout(backend):
    silent = LoopbackServer(lambda conn: (read_request_head(conn), time.sleep(10)))
    try:
        t0 = time.monotonic()
        with pytest.raises(couchcore.ReadTimeout) as exc:
            call(backend, silent.url, timeout=0.5, retries=5)
        elapsed = time.monotonic() - t0
    finally:
        silent.close()
    assert isinstance(exc.value, TimeoutError)  # the builtin
    assert elapsed < 2 and silent.connections == 1


@pytest.mark.timing  # asserts a duration: deselected by default (make test-timing)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_https_to_a_silent_plain_port_fails_within_the_connect_timeout(backend):
    """Issue 15: https:// to a plain-HTTP port that never answers the TLS handshake
    raised ReadTimeout after 30 s; now a connect error within the connect timeout."""
    blackhole = LoopbackServer(lambda conn: time.sleep(10))
    try:
        t0 = time.monotonic()
        with pytest.raises(couchcore.ConnectError) as exc:
            call(backend, blackhole.url.replace("http://", "https://"), timeout=3)
        elapsed = time.monotonic() - t0
    finally:
        blackhole.close()
    assert isinstance(exc.value, (couchcore.ConnectTimeout, couchcore.TLSError))
    assert not isinstance(exc.value, couchcore.ReadTimeout)
    assert 2.5 < elapsed < 4.5, elapsed
    assert blackhole.connections == 1  # a handshake timeout is not retried


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_a_refused_connection_is_retried_until_the_server_listens(backend):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    def serve_later():
        time.sleep(0.3)
        sock.listen(4)
        conn, _ = sock.accept()
        with conn:
            read_request_head(conn)
            conn.sendall(http_reply())

    thread = threading.Thread(target=serve_later, daemon=True)
    thread.start()
    try:
        assert call(backend, url, retries=8, backoff=0.2) == "9.9.9-test"
    finally:
        thread.join(5)
        sock.close()


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_a_read_whose_connection_broke_is_sent_again(backend):
    flaky = scripted(lambda n, head: None if n == 0 else http_reply())
    try:
        assert call(backend, flaky.url, backoff=0.01) == "9.9.9-test"
        assert len(flaky.heads) == 2
    finally:
        flaky.close()


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_a_write_whose_connection_broke_is_never_resent(backend):
    # the config write first finds the node prefix (a GET), then PUTs: that PUT is dropped
    flaky = scripted(lambda n, head: None if head.startswith(b"PUT") else http_reply(b'"1"'))
    try:
        with pytest.raises(couchcore.OutcomeUnknown) as exc:
            call(backend, flaky.url, "config", "couchdb/x", "1", retries=5, backoff=0.01)
    finally:
        flaky.close()
    assert [h.split(b" ")[0] for h in flaky.heads].count(b"PUT") == 1
    err = exc.value
    assert err.method == "PUT" and err.url.startswith(flaky.url) and isinstance(err, ConnectionError)
    assert isinstance(err.__cause__, couchcore.ConnectionError) and not isinstance(err.__cause__, couchcore.ConnectError)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_429_is_retried_after_retry_after(backend):
    busy = scripted(lambda n, head: http_reply(b'{"error":"too_many_requests","reason":"slow down"}',
                                               "429 Too Many Requests", "Retry-After: 1\r\n") if n == 0
                    else http_reply())
    try:
        assert call(backend, busy.url) == "9.9.9-test"
        assert len(busy.heads) == 2 and busy.requests[1].at - busy.requests[0].at >= 0.95
    finally:
        busy.close()


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_429_beyond_the_deadline_is_reported(backend):
    busy = scripted(lambda n, head: http_reply(b'{"error":"too_many_requests","reason":"slow down"}',
                                               "429 Too Many Requests", "Retry-After: 30\r\n"))
    try:
        t0 = time.monotonic()
        with pytest.raises(couchcore.TooManyRequests) as exc:
            call(backend, busy.url, deadline=5)
        assert time.monotonic() - t0 < 2 and len(busy.heads) == 1
        assert exc.value.reason == "slow down"
    finally:
        busy.close()


def test_retries_zero_sends_once(backend):
    flaky = scripted(lambda n, head: None if n == 0 else http_reply())
    try:
        with pytest.raises(couchcore.ConnectionError):
            call(backend, flaky.url, retries=0)
        assert len(flaky.heads) == 1
    finally:
        flaky.close()


def test_many_requests_at_once_are_retried_by_the_same_policy(backend):
    """get_many runs on pycurl's CurlMulti engine (and threads for urllib3): the first
    answer to each document is a 429, the second the document."""
    seen: set[bytes] = set()

    def script(n, head):
        path = head.split(b" ")[1]
        if path not in seen:
            seen.add(path)
            return http_reply(b'{"error":"too_many_requests"}', "429 Too Many Requests", "Retry-After: 0\r\n")
        docid = path.rsplit(b"/", 1)[1]
        return http_reply(b'{"_id":"%s","_rev":"1-a"}' % docid)

    srv = scripted(script)
    try:
        db = couchcore.Server(srv.url, backend=backend)._database("db")
        docs = db.get_many([f"d{i}" for i in range(6)], concurrency=3)
        assert [d["_id"] for d in docs] == [f"d{i}" for i in range(6)]
        assert len(srv.heads) == 12
    finally:
        srv.close()


def test_a_keep_alive_connection_the_server_closed_is_replaced_without_resending_a_write(backend):
    """The server answers on a keep-alive connection, then closes it while idle: the
    next request (a write) goes out once, on a new connection, without an error."""
    heads: list[bytes] = []

    def keep_alive_then_close(conn):
        head = read_request_head(conn)
        if not head:
            return
        heads.append(head)
        body = b'{"ok":true,"id":"d","rev":"1-a"}' if head.startswith(b"PUT") else \
            b'{"couchdb":"Welcome","version":"9.9.9-test"}'
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     b"Connection: keep-alive\r\n\r\n%s" % (len(body), body))
        time.sleep(0.1)  # idle: the server gives up on the connection
        conn.shutdown(socket.SHUT_RDWR)

    with LoopbackServer(keep_alive_then_close) as srv:
        server = couchcore.Server(srv.url, backend=backend, retries=0)
        assert server.version() == "9.9.9-test"
        time.sleep(0.4)
        db = server._database("db")
        assert db._run(_put_op()) == {"ok": True, "id": "d", "rev": "1-a"}
        assert [h.split(b" ")[0] for h in heads] == [b"GET", b"PUT"] and srv.connections == 2


def _put_op():
    resp = yield Request("PUT", "/db/d", json={"v": 1})
    return resp.json()


def test_a_read_only_post_marked_idempotent_is_sent_again(backend):
    flaky = scripted(lambda n, head: None if n in (0, 2) else http_reply(b'{"docs":[]}'))

    def find_op(idempotent):
        resp = yield Request("POST", "/db/_find", json={"selector": {}}, idempotent=idempotent)
        return resp.json()

    try:
        server = couchcore.Server(flaky.url, backend=backend, backoff=0.01)
        assert server._run(find_op(True)) == {"docs": []} and len(flaky.heads) == 2
        with pytest.raises(couchcore.OutcomeUnknown):
            server._run(find_op(None))  # a POST is a write unless its operation says otherwise
    finally:
        flaky.close()


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_call_options_set_a_calls_read_timeout_and_retries(backend):
    slow = scripted(lambda n, head: (time.sleep(2), http_reply())[1] if n == 0 else http_reply())
    try:
        with couchcore.call_options(timeout=0.5, retries=0):
            t0 = time.monotonic()
            with pytest.raises(couchcore.ReadTimeout):
                call(backend, slow.url, timeout=30)
            assert time.monotonic() - t0 < 1.5
        assert call(backend, slow.url, timeout=30) == "9.9.9-test"  # outside the block: the Server's
    finally:
        slow.close()
    flaky = scripted(lambda n, head: None if n == 0 else http_reply())
    try:
        with couchcore.call_options(retries=0), pytest.raises(couchcore.ConnectionError):
            call(backend, flaky.url, backoff=0.01)
        assert len(flaky.heads) == 1
    finally:
        flaky.close()
    with pytest.raises(couchcore.InvalidOption):
        with couchcore.call_options(timeout=-1):
            pass


def test_call_options_reach_many_requests_at_once(backend):
    slow = scripted(lambda n, head: (time.sleep(2), http_reply(b'{"_id":"x","_rev":"1-a"}'))[1])
    try:
        db = couchcore.Server(slow.url, backend=backend, timeout=30)._database("db")
        t0 = time.monotonic()
        with couchcore.call_options(timeout=0.5), pytest.raises(couchcore.ReadTimeout):
            db.get_many(["a", "b", "c"], concurrency=3)
        assert time.monotonic() - t0 < 1.5
    finally:
        slow.close()


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("streamed", [False, True])
def test_a_slow_upload_is_not_a_read_timeout(backend, streamed):
    """The read timeout is an idle timeout: a body the server takes longer than the read
    timeout to read, in bursts with pauses shorter than it, still goes through (pycurl
    counted only received bytes, so a slow upload died of a ReadTimeout)."""
    # bursts larger than what the kernel buffers on both sides, so the last burst follows
    # the client's last write by one pause at most
    size, burst = 24 * 1024 * 1024, 8 * 1024 * 1024
    received = []

    def slow_reader(conn):
        head = read_request_head(conn)
        head, _, got = head.partition(b"\r\n\r\n")
        chunked = b"transfer-encoding: chunked" in head.lower()
        total, tail = len(got), got[-5:]
        while not (total >= size and not chunked) and not (chunked and tail.endswith(b"0\r\n\r\n")):
            time.sleep(0.45)  # a pause shorter than the read timeout, then a burst
            want = total + burst
            while total < want:
                chunk = conn.recv(1024 * 1024)
                if not chunk:
                    break
                total += len(chunk)
                tail = (tail + chunk)[-5:]
                if (not chunked and total >= size) or (chunked and tail.endswith(b"0\r\n\r\n")):
                    break
            if not chunk:
                break
        received.append(total)
        conn.sendall(http_reply(b'{"ok":true}'))

    piece = 256 * 1024
    body = (b"x" * size) if not streamed else (b"x" * piece for _ in range(size // piece))
    srv = LoopbackServer(slow_reader)

    def op():
        resp = yield Request("PUT", "/db/doc/att", body=body,
                             headers={"Content-Type": "application/octet-stream"})
        return resp.json()

    try:
        t0 = time.monotonic()
        if backend == "tornado":
            import asyncio

            import couchcore.tornado as ct

            async def main():
                server = ct.Server(srv.url, timeout=1.0)
                try:
                    return await server._run(op())
                finally:
                    server.close()

            result = asyncio.run(main())
        else:
            if backend == "pycurl":
                pytest.importorskip("pycurl")
            result = couchcore.Server(srv.url, backend=backend, timeout=1.0)._run(op())
        assert result == {"ok": True} and time.monotonic() - t0 > 1.3  # longer than the read timeout
        assert received and received[0] >= size
    finally:
        srv.close()


def test_a_long_retry_after_is_left_to_the_caller(backend):
    busy = scripted(lambda n, head: http_reply(b'{"error":"too_many_requests","reason":"later"}',
                                               "429 Too Many Requests", "Retry-After: 3600\r\n"))
    try:
        t0 = time.monotonic()
        with pytest.raises(couchcore.TooManyRequests) as exc:
            call(backend, busy.url)
        assert time.monotonic() - t0 < 2 and len(busy.heads) == 1
        assert exc.value.headers["retry-after"] == "3600"
    finally:
        busy.close()


def test_retry_after_header_forms():
    from email.utils import formatdate

    from couchcore._drivers import retry_after

    assert retry_after("7") == 7.0 and retry_after(" 0 ") == 0.0
    assert 58 < retry_after(formatdate(time.time() + 60, usegmt=True)) <= 60
    assert retry_after(formatdate(time.time() - 60, usegmt=True)) == 0.0
    assert retry_after("soon") is None and retry_after("") is None and retry_after(None) is None


def test_pycurl_stream_closed_after_its_multi_handle(one_copy_db):
    """A streamed result closed after the CurlMulti handle is gone (as at interpreter
    exit) releases its easy handle without raising 'multi-stack is closed'."""
    pytest.importorskip("pycurl")
    db = one_copy_db  # a cluster's _all_docs reads one copy, which may lag the write
    db.save([{"_id": f"d{i}"} for i in range(3)])
    creds = db.server.credentials
    curl_db = couchcore.Database(db.url, auth=(creds.username, creds.password) if creds else None, backend="pycurl")
    rows = iter(curl_db.view("_all_docs"))
    assert next(rows).id == "d0"
    curl_db.server._transport.engine.multi.close()
    rows.close()  # used to raise pycurl.error from remove_handle
    curl_db.server.close()


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_a_write_on_a_reused_connection_is_sent_once(backend):
    """A write reset after it was sent on a reused keep-alive connection is not re-sent,
    by couchcore or by the backend itself (libcurl retries such a request on a fresh
    connection unless the write starts on one)."""
    server = reset_on_write()
    try:
        with pytest.raises(couchcore.OutcomeUnknown):
            call(backend, server.url, "config", "couchdb/x", "1", retries=0)
    finally:
        server.close()
    methods = [h.split(b" ")[0] for h in server.heads]
    assert methods.count(b"PUT") == 1, methods
    assert methods[0] == b"GET"  # the node-prefix read came first, on a kept-alive connection
    if backend == "urllib3":
        assert server.connections == 1  # the write did go out on the kept-alive connection


def test_many_operations_honour_request_delay_without_blocking_the_others(server, backend):
    """``Request.delay`` (an operation's back-off before a request, e.g. ``update_doc``
    re-reading a contended document) is honoured when many operations run at once
    (``Server._iter_many``: pycurl's one CurlMulti engine, urllib3's thread pool) as it is
    by the single-call driver; the wait holds only its own operation: the others'
    requests go on meanwhile."""
    t0 = time.monotonic()

    def delayed(delay):
        request = Request("GET", "/")
        request.delay = delay
        response = yield request
        return response.status, time.monotonic() - t0

    def busy(n):
        for _ in range(n):
            response = yield Request("GET", "/")
            assert response.status == 200
        return 200, time.monotonic() - t0

    done = dict(server._iter_many(iter([delayed(1.5), busy(5), busy(5), delayed(0.5)]), 4))
    assert all(status == 200 for status, _ in done.values()), done
    assert done[0][1] >= 1.5 and done[3][1] >= 0.5, done  # the back-offs were waited for
    assert done[0][1] < 6 and done[3][1] < done[0][1], done
    assert done[1][1] < 1.0 and done[2][1] < 1.0, done  # the others ran meanwhile (not after 1.5 s)
