"""Every backend of couchcore.transport.base.BACKENDS, sync and async, through the same cases.

The table is the parameter: a backend added to it joins these tests with no edit here. Each
case builds a Server of the backend's flavour (couchcore.Server or couchcore.aio.Server) on a
URL that carries credentials, makes one call, and checks the couchcore error it ends with: its
class, that the backend's own exception is kept as the cause where there is one, and that the
password shows nowhere (message, repr, args, the whole cause chain, the formatted traceback, the
Server's and the transport's reprs). The misbehaving peers are couchcore.testing's LoopbackServer
(raw sockets) and FaultyProxy (in front of the real test server); TLS uses a throw-away CA made
with trustme.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import inspect
import json
import socket
import ssl
import traceback
from typing import Any, Callable, Iterator
from urllib.parse import quote

import pytest

import couchcore
import couchcore.aio
from couchcore.testing import FaultyProxy, LoopbackServer, read_request_head
from couchcore.transport.base import (
    BACKENDS,
    AsyncTransport,
    Backend,
    ConcurrentTransport,
    SyncTransport,
    find_backend,
    get_backend,
    map_exceptions,
    translate,
)

from tests.helpers import member_db

USER = "conf-user"
PASSWORD = "Pw-conf0rm/@:%é"  # characters a URL must percent-encode: every encoded form is searched too
AUTH = f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@"
WELCOME = b'{"couchdb":"Welcome","version":"3.5.0","vendor":{"name":"test"}}'


def flavour(row: Backend) -> str:
    return "async" if row.is_async else "sync"


@pytest.fixture(params=BACKENDS, ids=lambda row: f"{row.name}-{flavour(row)}")
def row(request: pytest.FixtureRequest) -> Backend:
    """One row of the backend table (skipped when its library is not installed)."""
    backend: Backend = request.param
    try:
        backend.load()
    except couchcore.InvalidOption as exc:
        pytest.skip(str(exc))
    return backend


def with_auth(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{AUTH}{rest}"


class Client:
    """A Server of the backend's flavour and one way to call it from a plain test."""

    def __init__(self, row: Backend, url: str, **options: Any) -> None:
        self.row = row
        options.setdefault("retries", 0)
        factory = couchcore.aio.Server if row.is_async else couchcore.Server
        self.server = factory(with_auth(url), backend=row.name, **options)

    def call(self, make: Callable[[Any], Any], stream: bool = False) -> Any:
        """``make(server)``'s result; with ``stream`` a streamed result, read whole (``for`` or
        ``async for``)."""
        if not self.row.is_async:
            out = make(self.server)
            return list(out) if stream else out

        async def main() -> Any:
            out = make(self.server)
            if stream:
                return [item async for item in out]
            return await out

        return asyncio.run(main())

    def fails(self, make: Callable[[Any], Any], expected: type[BaseException], stream: bool = False
              ) -> BaseException:
        with pytest.raises(expected) as info:
            self.call(make, stream)
        error = info.value
        assert_clean(error, self.server)
        return error

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def client(row: Backend) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(url: str, **options: Any) -> Client:
        c = Client(row, url, **options)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def leaks() -> list[str]:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    encoded = quote(PASSWORD, safe="")
    return [PASSWORD, encoded, encoded.lower(), token, PASSWORD.encode().decode("latin-1")]


def assert_clean(error: BaseException, server: Any) -> None:
    """No form of the password in anything the error or the Server shows."""
    texts = [repr(server), repr(server._transport), "".join(traceback.format_exception(error))]
    seen: set[int] = set()
    exc: BaseException | None = error
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        texts += [str(exc), repr(exc), *map(repr, exc.args), *(repr(v) for v in vars(exc).values())]
        exc = exc.__cause__ or exc.__context__
    for text in texts:
        for form in leaks():
            assert form not in text, f"password leaked ({form!r}) in {text[:300]!r}"


def assert_cause_kept(error: BaseException) -> None:
    """The backend's own exception is the cause (raise ... from exc), not a couchcore error."""
    assert error.__cause__ is not None, f"{error!r} has no cause"
    assert not isinstance(error.__cause__, couchcore.CouchcoreError)


def version(server: Any) -> Any:
    return server.version()


# -- the contract and the table ----------------------------------------------------------------


def test_every_backend_fulfils_its_flavours_contract(row: Backend) -> None:
    cls = row.load()
    transport = cls("http://127.0.0.1:5984", None, couchcore.transport.base.TransportOptions())
    try:
        assert isinstance(transport, AsyncTransport if row.is_async else SyncTransport)
        assert inspect.iscoroutinefunction(transport.send) == row.is_async
        if hasattr(transport, "iter_many"):
            assert isinstance(transport, ConcurrentTransport) and not row.is_async
        assert get_backend(row.name, row.is_async) is cls
    finally:
        transport.close()


def test_a_backend_of_the_other_flavour_is_refused_when_the_server_is_built(row: Backend) -> None:
    own = {b.name for b in BACKENDS if b.is_async == row.is_async}
    others = [b for b in BACKENDS if b.name not in own]  # names that exist in the other flavour only
    assert others, "every backend name exists in both flavours: nothing to refuse"
    factory = couchcore.aio.Server if row.is_async else couchcore.Server
    for other in others:
        with pytest.raises(couchcore.InvalidInput) as info:
            factory(with_auth("http://127.0.0.1:5984"), backend=other.name)
        message = str(info.value)
        assert repr(other.name) in message and ("async" in message and "sync" in message)
        assert PASSWORD not in message
    with pytest.raises(couchcore.InvalidInput, match="unknown backend"):
        factory("http://127.0.0.1:5984", backend="no-such-backend")
    assert find_backend(row.name, row.is_async) is row


def test_map_exceptions_keeps_the_cause_and_lets_programming_errors_through() -> None:
    table = ((ConnectionRefusedError, couchcore.ConnectionError), (OSError, couchcore.ConnectionError))
    url = "http://127.0.0.1:1/db"
    with pytest.raises(couchcore.ConnectError) as info:  # not connected yet: nothing was sent
        with map_exceptions(table, url, connected=False):
            raise ConnectionRefusedError(111, "refused by http://bob:hunter2@127.0.0.1:1/")
    assert isinstance(info.value.__cause__, ConnectionRefusedError) and "hunter2" not in str(info.value)
    with pytest.raises(TypeError):
        with map_exceptions(table, url):
            raise TypeError("a bug")
    own = couchcore.ReadTimeout("read timed out", url)
    with pytest.raises(couchcore.ReadTimeout) as kept:
        with map_exceptions(table, url):
            raise own
    assert kept.value is own


def test_every_backend_table_lets_programming_errors_through(row: Backend) -> None:
    module = importlib.import_module(row.module)
    tables = [value for name, value in vars(module).items() if name == "_ERRORS"]
    if not tables:  # a backend that reuses another's table (e.g. libcurl's codes on the event loop)
        tables = [getattr(importlib.import_module(b.module), "_ERRORS") for b in BACKENDS
                  if b.name == row.name and hasattr(importlib.import_module(b.module), "_ERRORS")]
    assert tables, f"{row.module} has no error table"
    for bug in (TypeError("bug"), AttributeError("bug"), KeyError("bug"), AssertionError("bug")):
        assert translate(bug, "http://127.0.0.1:1/", tables[0]) is bug


# -- failures before the response -----------------------------------------------------------------


def test_refused_connection(client: Callable[..., Client], refused_url: str) -> None:
    c = client(refused_url)
    error = c.fails(version, couchcore.ConnectError)
    assert not isinstance(error, (couchcore.TimeoutError, couchcore.TLSError))
    assert error.url == refused_url + "/"
    assert_cause_kept(error)


@pytest.fixture
def unanswered_url() -> Iterator[str]:
    """A listening port whose accept queue is full: a connect there is never answered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_connect_timeout(client: Callable[..., Client], unanswered_url: str) -> None:
    c = client(unanswered_url, connect_timeout=0.5, timeout=30)
    error = c.fails(version, couchcore.ConnectTimeout)
    assert isinstance(error, couchcore.ConnectError) and not isinstance(error, couchcore.ReadTimeout)


@pytest.fixture
def loopback() -> Iterator[Callable[[Any], LoopbackServer]]:
    servers: list[LoopbackServer] = []

    def make(handler: Any) -> LoopbackServer:
        s = LoopbackServer(handler)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def silent(conn: socket.socket) -> None:
    read_request_head(conn)
    conn.recv(1)  # until the client gives up


def test_read_timeout(client: Callable[..., Client], loopback: Callable[[Any], LoopbackServer]) -> None:
    server = loopback(silent)
    c = client(server.url, timeout=0.5)
    error = c.fails(version, couchcore.ReadTimeout)
    assert not isinstance(error, couchcore.ConnectError)


# -- TLS ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> Any:
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


@pytest.fixture
def tls_server(ca: Any, loopback: Callable[[Any], LoopbackServer]) -> Iterator[tuple[LoopbackServer, list[bytes]]]:
    """An HTTPS server for 127.0.0.1 (its certificate issued by ``ca``) answering the welcome."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    heads: list[bytes] = []

    def handle(conn: socket.socket) -> None:
        try:
            tls = context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused our certificate
        with tls:
            head = read_request_head(tls)
            if not head:  # the client checked the certificate after the handshake and hung up
                return
            heads.append(head)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(WELCOME) + WELCOME)

    server = loopback(handle)
    server.url = server.url.replace("http://", "https://")
    yield server, heads


def test_tls_refused_for_an_unknown_issuer(client: Callable[..., Client], tls_server: Any) -> None:
    server, heads = tls_server
    c = client(server.url)
    error = c.fails(version, couchcore.TLSError)
    assert isinstance(error, couchcore.ConnectError)  # the request was never sent
    assert_cause_kept(error)
    assert heads == []


def test_tls_accepted_with_the_issuers_certificate(client: Callable[..., Client], tls_server: Any,
                                                   ca: Any, tmp_path: Any) -> None:
    server, heads = tls_server
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    c = client(server.url, ca_certs=str(bundle))
    assert c.call(version) == "3.5.0"
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert len(heads) == 1 and f"Authorization: Basic {token}".encode() in heads[0]


# -- failures in the response ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def target(couch_url: str) -> Iterator[str]:
    """A database on the real test server, readable by ``USER`` (the credentials every case
    sends), with a large document and 400 small ones; its name."""
    admin = couchcore.Server(couch_url)
    try:
        with member_db(admin, USER, PASSWORD, "conformance") as db:
            db.save({"_id": "big", "blob": "x" * 50_000})
            db.save([{"_id": f"doc{i:04d}", "n": i} for i in range(400)])
            yield db.name
    finally:
        admin.close()


@pytest.fixture
def proxied(target: str, couch_url: str, client: Callable[..., Client]) -> Iterator[tuple[FaultyProxy, Client, Any]]:
    """A FaultyProxy in front of the test server, a client of it, and a function giving the
    test database of a Server."""
    proxy = FaultyProxy(couch_url)
    c = client(proxy.url)
    assert c.call(lambda s: s._database(target).get("doc0001"))["n"] == 1  # the way through works
    yield proxy, c, lambda server: server._database(target)
    proxy.close()


def test_a_truncated_body_is_a_connection_error(proxied: Any, target: str) -> None:
    proxy, c, db = proxied
    proxy.truncate("GET", f"/{target}/big", at=2000)
    error = c.fails(lambda s: db(s).get("big"), couchcore.ConnectionError)
    assert not isinstance(error, couchcore.ConnectError)  # the request was sent
    assert proxy.fired == 1


def test_a_reset_mid_stream_is_a_connection_error(proxied: Any, target: str) -> None:
    proxy, c, db = proxied
    assert len(c.call(lambda s: db(s).view("_all_docs"), stream=True)) == 401
    proxy.truncate("GET", f"/{target}/_all_docs", at=9000, reset=True)
    error = c.fails(lambda s: db(s).view("_all_docs"), couchcore.ConnectionError, stream=True)
    assert not isinstance(error, couchcore.ConnectError)
    assert proxy.fired == 1


def test_garbage_instead_of_http_is_a_transport_error(client: Callable[..., Client],
                                                      loopback: Callable[[Any], LoopbackServer]) -> None:
    def garbage(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n" * 4)

    server = loopback(garbage)
    c = client(server.url)
    c.fails(version, couchcore.TransportError)


def test_an_http_error_is_no_transport_error(client: Callable[..., Client],
                                             loopback: Callable[[Any], LoopbackServer]) -> None:
    body = json.dumps({"error": "unauthorized", "reason": "Name or password is incorrect."}).encode()

    def refuse(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)

    server = loopback(refuse)
    c = client(server.url)
    error = c.fails(version, couchcore.Unauthorized)
    assert not isinstance(error, couchcore.TransportError) and error.url == server.url + "/"


# -- the contract, statically ----------------------------------------------------------------------


def _program(rows: list[tuple[Backend, str]]) -> str:
    """A program assigning an instance of each backend class to a variable of ``protocol``."""
    lines = ["from couchcore.transport.base import AsyncTransport, ConcurrentTransport, SyncTransport, "
             "TransportOptions", "options = TransportOptions()"]
    for i, (backend, protocol) in enumerate(rows):
        lines.append(f"from {backend.module} import {backend.cls} as Backend{i}")
        lines.append(f"t{i}: {protocol} = Backend{i}('http://127.0.0.1:5984', None, options)")
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(600)
def test_every_backend_fulfils_its_protocol_for_mypy(tmp_path: Any) -> None:
    """mypy --strict agrees that each class of the table implements its flavour's Protocol (and
    pycurl's sync engine the concurrent one), and refuses a backend of the other flavour."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    rows = []
    for backend in BACKENDS:
        try:
            cls = backend.load()
        except couchcore.InvalidOption:
            continue
        protocol = "AsyncTransport" if backend.is_async else \
            "ConcurrentTransport" if hasattr(cls, "iter_many") else "SyncTransport"
        rows.append((backend, protocol))
    good = tmp_path / "good.py"
    good.write_text(_program(rows))
    swapped = [(b, "SyncTransport" if b.is_async else "AsyncTransport") for b, _ in rows]
    bad = tmp_path / "bad.py"
    bad.write_text(_program(swapped))

    def mypy(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mypy", "--strict", str(path)],
                              cwd=root, capture_output=True, text=True)

    done = mypy(good)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    refused = mypy(bad)
    errors = [line for line in refused.stdout.splitlines() if ": error: Incompatible types in assignment" in line]
    assert len(errors) == len(swapped), refused.stdout[-4000:]
