"""Servers for tests and demos: a throw-away PouchDB Server, and fake ones on 127.0.0.1.

>>> with PouchDBServer() as url:      # starts on a free 127.0.0.1 port, in memory
...     server = couchcore.Server(url)

The server runs in its own temporary directory (it writes ``config.json`` and
``log.txt`` there), with an admin account, and is stopped (its whole process group)
when the context exits, also on errors and Ctrl-C. With ``on_disk=True`` (or a
``data_dir``) its databases are files that outlive the process: :meth:`PouchDBServer.kill`
ends it abruptly (SIGKILL) and :meth:`PouchDBServer.restart` starts it again on the same
port over the same data, as a crashed server comes back.

The fake servers and proxies (the test suite's only ones): :class:`LoopbackServer` hands each
accepted connection to a function; :class:`ScriptedServer` reads each HTTP request whole,
records it (:class:`Received`) and answers what a script returns (:func:`http_response`,
:data:`RESET`, or nothing); :class:`RowReplayServer` streams generated view rows and changes;
:class:`FaultyProxy` forwards to a real server and misbehaves on cue (cut, drop, delay,
truncate, go down); :class:`AsyncLoopbackServer` hands each connection to a coroutine on the
running asyncio loop, and :class:`TCPProxy`, one of those, relays bytes and can cut every
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, TypeVar

from . import codec

__all__ = ["PouchDBServer", "find_pouchdb_server", "free_port", "couch_url", "LoopbackServer", "FaultyProxy",
           "RowReplayServer", "ScriptedServer", "Received", "RESET", "http_response", "reset", "read_request_head", "TCPProxy",
           "AsyncLoopbackServer"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_pouchdb_server(start: str | os.PathLike[str] | None = None) -> str:
    """The ``pouchdb-server`` executable installed by ``npm ci`` in the repository."""
    env = os.environ.get("POUCHDB_SERVER")
    if env:
        return env
    here = Path(start or Path(__file__).resolve().parent)
    for folder in [here, *here.parents]:
        candidate = folder / "node_modules" / ".bin" / "pouchdb-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("pouchdb-server")
    if found:
        return found
    raise FileNotFoundError("pouchdb-server not found: run 'npm ci --ignore-scripts' in the repository")


class PouchDBServer:
    """Start PouchDB Server on a free loopback port; ``url`` includes the admin login."""

    def __init__(self, admin: tuple[str, str] = ("admin", "admin"), port: int | None = None,
                 executable: str | None = None, startup_timeout: float = 30.0, on_disk: bool = False,
                 data_dir: str | os.PathLike[str] | None = None) -> None:
        """``on_disk``: keep the databases in files (``data_dir``, default a ``data``
        folder in the server's temporary directory) instead of memory; ``port``: a fixed
        port (default: a free one, chosen at the first start and kept by :meth:`restart`)."""
        self.admin = admin
        self.port = port
        self.executable = executable
        self.startup_timeout = startup_timeout
        self.on_disk = on_disk or data_dir is not None
        self.data_dir: str | None = os.fspath(data_dir) if data_dir is not None else None
        self.process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        user, password = self.admin
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"<PouchDBServer 127.0.0.1:{self.port} running={self.running}>"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, _same_port: bool = False) -> str:
        exe = self.executable or find_pouchdb_server()
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="couchcore-pouchdb-")
        workdir = self._tmp.name
        user, password = self.admin
        with open(os.path.join(workdir, "config.json"), "wb") as f:
            f.write(codec.dumps({"admins": {user: password}, "log": {"level": "error"}}))
        if self.on_disk:
            if self.data_dir is None:
                self.data_dir = os.path.join(workdir, "data")
            os.makedirs(self.data_dir, exist_ok=True)
            storage = ["--dir", self.data_dir]
        else:
            storage = ["--in-memory"]
        env = dict(os.environ)
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " --unhandled-rejections=warn").strip()
        for attempt in range(5):
            port = self.port or free_port()
            self.process = subprocess.Popen(
                [exe, *storage, "-n", "-o", "127.0.0.1", "-p", str(port), "-c", "config.json"],
                cwd=workdir,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(workdir, "stderr.txt"), "wb"),
                start_new_session=True,
            )
            self.port = port
            if self._wait_ready():
                return self.url
            self.stop(keep_tmp=True)
            if _same_port:
                time.sleep(0.5)  # the old process's port may still be closing: same port again
            elif self.port is not None and attempt < 4:
                self.port = None  # the port may have been taken: try another
        raise RuntimeError(f"PouchDB Server did not start: {self._stderr()}")

    def kill(self) -> None:
        """End the server abruptly (SIGKILL to its process group), as a crash would;
        its temporary directory and data stay for :meth:`restart`."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def restart(self, kill: bool = True) -> str:
        """Stop the server (SIGKILL when ``kill``, else SIGTERM) and start it again on the
        same port over the same data; returns :attr:`url` once it answers again."""
        if kill:
            self.kill()
        else:
            self.stop(keep_tmp=True)
        return self.start(_same_port=True)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        return False

    def _stderr(self) -> str:
        if self._tmp is None:
            return ""
        try:
            return Path(self._tmp.name, "stderr.txt").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self, keep_tmp: bool = False) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        if self._tmp is not None and not keep_tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# -- small loopback servers for tests and benchmarks ---------------------------------------------


def read_request_head(conn: socket.socket) -> bytes:
    """Read an HTTP request's head (up to the blank line) from a raw connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class LoopbackServer:
    """Accepts TCP connections on 127.0.0.1 and hands each to ``handler(conn)`` in a thread.

    ``url`` is its base URL, ``connections`` counts accepted connections; :meth:`close`
    stops listening and closes every connection it accepted.
    """

    def __init__(self, handler: Any = None, backlog: int = 64) -> None:
        if handler is not None:
            self.handle = handler  # type: ignore[method-assign]  # (a handler given instead of a subclass)
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: list[socket.socket] = []
        threading.Thread(target=self._loop, daemon=True).start()

    def handle(self, conn: socket.socket) -> None:  # pragma: no cover - replaced or overridden
        raise NotImplementedError

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            with conn:
                self.handle(conn)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for conn in self._open:
            conn.close()

    def __enter__(self) -> "LoopbackServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Received(NamedTuple):
    """One request as a :class:`ScriptedServer` read it."""

    n: int  #: its place in arrival order, from 0
    method: str
    target: str  #: as sent: path and query, percent-encoding kept
    headers: dict[str, str]  #: lowercased names; the last one of repeated names
    header_lines: list[tuple[str, str]]  #: ``(lowercased name, value)`` as sent, repeats kept
    body: bytes  #: the payload (chunked framing removed)
    head: bytes  #: the raw request line and headers, up to the blank line
    connection: int  #: which accepted connection carried it (from 1)
    at: float  #: ``time.monotonic()`` when its head arrived
    chunks: int = 0  #: how many chunks a chunked body came in (0: not chunked)


#: what a :class:`ScriptedServer` script returns to reset the connection (TCP RST) without answering
RESET = b"\x00reset"


def http_response(status: int | str = 200, body: bytes = b'{"ok":true}', *, headers: str | dict[str, str] = "",
                  content_type: str | None = "application/json", close: bool = False) -> bytes:
    """The bytes of a whole HTTP/1.1 response with ``Content-Length``: ``status`` is a code
    (its standard reason phrase added) or a status line's tail (``"429 Too Many Requests"``);
    ``headers`` extra header lines (a dict, or ``"Name: value\\r\\n"`` text)."""
    if isinstance(status, int):
        import http

        try:
            status = f"{status} {http.HTTPStatus(status).phrase}"
        except ValueError:
            status = f"{status} Unknown"
    if isinstance(headers, dict):
        headers = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = f"HTTP/1.1 {status}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    head += f"Content-Length: {len(body)}\r\n"
    if close:
        head += "Connection: close\r\n"
    return (head + headers + "\r\n").encode("latin-1") + body


class ScriptedServer(LoopbackServer):
    """A fake HTTP/1.1 server on 127.0.0.1 that answers what a script says, for tests of what
    a client sends and how it copes with what comes back.

    Each request is read whole (``Content-Length`` or chunked body; ``Expect: 100-continue``
    is answered), recorded in ``requests`` (:class:`Received`), and answered with
    ``script(request, conn)``: bytes to send (see :func:`http_response`); ``None`` to close
    the connection without an answer (an orderly close); :data:`RESET` to reset it (TCP RST).
    A script may also write to ``conn`` itself (a streamed body) and return ``b""``. The
    connection is kept alive for the next request unless ``keep_alive=False`` (one request
    per connection, then it is closed) or the request asked ``Connection: close``.
    ``delay`` seconds are waited before each script call. ``connections`` counts accepted
    connections, ``peak`` the most requests in flight at once, ``closed_by_client`` the
    connections the client closed between requests. The default script answers
    ``{"ok":true}``. With ``tls_context`` (an :class:`ssl.SSLContext` with the server's
    certificate) it speaks HTTPS; handshakes that fail are kept in ``handshake_errors``.
    """

    def __init__(self, script: Any = None, keep_alive: bool = True, delay: float = 0.0,
                 tls_context: Any = None) -> None:
        self.script = script or (lambda request, conn: http_response())
        self.keep_alive = keep_alive
        self.delay = delay
        self.tls_context = tls_context
        self.handshake_errors: list[BaseException] = []
        self.requests: list[Received] = []
        self.inflight = self.peak = self.closed_by_client = 0
        self.lock = threading.Lock()
        super().__init__()
        if tls_context is not None:
            self.url = self.url.replace("http://", "https://")

    @property
    def heads(self) -> list[bytes]:
        """The raw head of every request so far, in arrival order."""
        return [r.head for r in self.requests]

    def handle(self, conn: socket.socket) -> None:
        connection = self.connections
        if self.tls_context is not None:
            import ssl

            conn.settimeout(5)
            try:
                conn = self.tls_context.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.handshake_errors.append(exc)
                return
            conn.settimeout(None)
        f = conn.makefile("rb")
        while True:
            head = _read_head(f)
            if not head:
                with self.lock:
                    self.closed_by_client += 1
                return
            at = time.monotonic()
            request_line, *lines = head.rstrip(b"\r\n").decode("latin-1").split("\r\n")
            method, target = (request_line.split(" ") + ["", ""])[:2]
            header_lines = []
            for line in lines:
                name, _, value = line.partition(":")
                header_lines.append((name.strip().lower(), value.strip()))
            headers = dict(header_lines)
            if headers.get("expect", "").lower() == "100-continue":
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            try:
                raw = _read_body(f, head, request=True)
                body = _decode_body(head, raw)
            except ValueError:  # the connection ended inside a chunked body: no request
                return
            chunks = 0
            if headers.get("transfer-encoding", "").lower() == "chunked":
                chunks = _chunk_count(raw)
            with self.lock:
                request = Received(len(self.requests), method, target, headers, header_lines, body, head,
                                   connection, at, chunks)
                self.requests.append(request)
                self.inflight += 1
                self.peak = max(self.peak, self.inflight)
            try:
                if self.delay:
                    time.sleep(self.delay)
                out = self.script(request, conn)
            finally:
                with self.lock:
                    self.inflight -= 1
            if out is None:
                conn.shutdown(socket.SHUT_RDWR)
                return
            if out == RESET:
                reset(conn)
                return
            conn.sendall(out)
            if not self.keep_alive or headers.get("connection", "").lower() == "close":
                return


def reset(conn: socket.socket) -> None:
    """Close ``conn`` with a TCP reset (RST) instead of an orderly close (FIN)."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


#: one generated ``_all_docs`` row, as CouchDB 3 writes it
ROW = b'{"id":"doc%08d","key":"doc%08d","value":{"rev":"1-967a00dff5e02add41819138abb3284d"}}'


#: one generated normal-feed change (seq, id number, rev number), as CouchDB 3 writes it
CHANGE = (b'{"seq":"%d-g1AAAAB1eJzLYWBgYMpgTmHgz8tPSTV0MDQy","id":"doc%08d",'
          b'"changes":[{"rev":"1-967a00dff5e02add41819138abb3%04d"}]}')


class RowReplayServer(LoopbackServer):
    """Serves ``GET /rows-N/_all_docs`` as a CouchDB 3-framed body of N generated rows,
    chunked, one row per line, generated on the fly (never held in memory), and
    ``GET /rows-N/_changes`` as a normal feed of N generated changes the same way.

    ``sent`` counts the body bytes written on the latest connection; ``done`` is set
    when it has been written completely.
    """

    def __init__(self, rows_per_chunk: int = 1000) -> None:
        self.rows_per_chunk = rows_per_chunk
        self.sent = 0
        self.done = threading.Event()
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        import re

        match = re.match(rb"GET /rows-(\d+)/(_all_docs|_changes)[ ?]", read_request_head(conn))
        if not match:
            body = b'{"error":"not_found","reason":"missing"}'
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            return
        if match.group(2) == b"_changes":
            self.stream_changes(conn, int(match.group(1)))
        else:
            self.stream(conn, int(match.group(1)))

    def stream(self, conn: socket.socket, n: int) -> None:
        """An ``_all_docs`` body of N generated rows, framed as CouchDB 3 sends it."""
        self._stream(conn, n, b'{"total_rows":%d,"offset":0,"rows":[\r\n' % n,
                     lambda start, stop: [ROW % (i, i) for i in range(start, stop)], b",\r\n", b"\r\n]}\n")

    def stream_changes(self, conn: socket.socket, n: int) -> None:
        """A normal ``_changes`` body of N generated changes, framed as CouchDB 3 sends it."""
        self._stream(conn, n, b'{"results":[\n',
                     lambda start, stop: [CHANGE % (i + 1, i, i) for i in range(start, stop)], b",\n",
                     b'\n],\n"last_seq":"%d-g1AAAAB1eJzLYWBgYMpgTmHgz8tPSTV0MDQy",\n"pending":0}\n' % n)

    def _stream(self, conn: socket.socket, n: int, head: bytes, items: Callable[[int, int], list[bytes]],
                sep: bytes, tail: bytes) -> None:
        """A chunked answer: ``head``, then ``items(start, stop)`` joined by ``sep``,
        ``rows_per_chunk`` of them a chunk, then ``tail``."""
        self.sent = 0
        self.done.clear()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")

        def chunk(data: bytes) -> None:
            conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            self.sent += len(data)

        chunk(head)
        step = self.rows_per_chunk
        for start in range(0, n, step):
            stop = min(n, start + step)
            chunk(sep.join(items(start, stop)) + (sep if stop < n else b""))
        chunk(tail)
        conn.sendall(b"0\r\n\r\n")
        self.done.set()

    @staticmethod
    def body_size(n: int) -> int:
        row = len(ROW % (0, 0))
        return len(b'{"total_rows":%d,"offset":0,"rows":[\r\n' % n) + n * row + (n - 1) * 3 + len(b"\r\n]}\n")


@contextlib.contextmanager
def couch_url() -> Iterator[str]:
    """``$COUCHDB_URL`` if set, else the URL of a throw-away PouchDB Server for the block.
    ``$COUCHDB_URL`` may name several nodes of one cluster (separated by spaces or commas,
    the test suite's ``cluster`` profile): the first one is used."""
    urls = (os.environ.get("COUCHDB_URL") or "").replace(",", " ").split()
    if urls:
        yield urls[0]
        return
    print("COUCHDB_URL not set: starting a throw-away PouchDB Server ...")
    with PouchDBServer() as started:
        yield started


# -- a transparent proxy on the running event loop --------------------------------------------------


_Listener = TypeVar("_Listener", bound="AsyncLoopbackServer")


class AsyncLoopbackServer:
    """The asyncio twin of :class:`LoopbackServer`: accepts TCP connections on a free
    127.0.0.1 port on the running loop (``async with AsyncLoopbackServer(handler) as
    srv``) and hands each to the coroutine ``handler(reader, writer)`` (or a subclass's
    :meth:`handle`). ``open``/``peak``/``total`` count connections (open now, most at
    once, all); ``closed`` (an :class:`asyncio.Event`) is set each time one has ended;
    ``url`` is its base URL. Leaving the block stops listening.
    """

    def __init__(self, handler: Any = None) -> None:
        if handler is not None:
            self.handle = handler  # type: ignore[method-assign]  # (a handler given instead of a subclass)
        self.open = self.peak = self.total = 0
        self.port = 0
        self.closed = asyncio.Event()
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self: _Listener) -> _Listener:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.close()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:{port}``."""
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:  # pragma: no cover - replaced or overridden
        raise NotImplementedError

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.total += 1
        self.peak = max(self.peak, self.open)
        try:
            await self.handle(reader, writer)
        finally:
            self.open -= 1
            self.closed.set()


class TCPProxy(AsyncLoopbackServer):
    """A transparent TCP proxy on a free 127.0.0.1 port in front of ``upstream`` (a base URL,
    whose credentials :attr:`url` keeps), running on the current asyncio loop:
    ``async with TCPProxy(url) as proxy``. ``open``/``peak``/``total`` count client
    connections (open now, most at once, all); :meth:`cut` aborts every open one.
    """

    def __init__(self, upstream: str) -> None:
        from urllib.parse import urlsplit

        super().__init__()
        parts = urlsplit(upstream)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.userinfo = parts.netloc.rpartition("@")[0]
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    async def __aexit__(self, *exc: Any) -> None:
        await super().__aexit__(*exc)
        self.cut()
        for _ in range(100):  # let the handlers finish rather than be cancelled at loop end
            if not self.open:
                break
            await asyncio.sleep(0.01)

    @property
    def url(self) -> str:
        """The proxy's base URL, with the upstream URL's credentials."""
        auth = self.userinfo + "@" if self.userinfo else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._pairs.discard(pair)

    def cut(self) -> None:
        """Abort every open connection, both sides (a network failure)."""
        for client, upstream in list(self._pairs):
            client.transport.abort()
            upstream.transport.abort()


# -- a proxy that misbehaves on purpose ------------------------------------------------------------


class FaultyProxy(LoopbackServer):
    """An HTTP/1.1 proxy on 127.0.0.1 in front of ``upstream`` (a base URL; credentials in it
    are ignored) that forwards requests one at a time per connection, streams the answers
    back as they arrive (a continuous feed passes through), and misbehaves on cue.

    Per request (a rule matches when the request's method equals ``method`` and ``path``
    is a substring of its target; it fires ``count`` times):

    * :meth:`cut_after_send` — forward the request, wait for the upstream's complete
      answer, then close the client's connection without passing it on: the request took
      effect, the client cannot know (the "connection broke after the body was sent" case).
    * :meth:`respond` — answer the request itself (e.g. ``503`` or ``429`` with
      ``Retry-After``) without forwarding it.
    * :meth:`drop` — close the client's connection without forwarding the request (with
      ``reset=True`` a TCP reset instead of an orderly close): the server never sees it.
    * :meth:`delay` — forward the request and hold the answer ``seconds`` before passing
      it on (a stalled server; the upstream has answered long before).
    * :meth:`truncate` — pass on the answer's head and only the first ``at`` bytes of its
      body as the upstream framed them, then close (``reset=True``: reset) the connection;
      with ``clean=True`` the first ``at`` bytes of the decoded body are sent as a complete,
      well-framed message (``Content-Length``) instead: only the JSON is cut short.
    * :meth:`cut_before` — pass on the answer as it arrives (a continuous feed too) and
      close the connection just before the ``occurrence``-th ``marker`` in its body: the
      client got everything before it (e.g. k whole changes and part of the next one);
      ``pause`` seconds pass between the last bytes and the close, so that a client reads
      them before it learns of the failure (without it, a client may see the failure while
      it is still opening the answer and send the request again as if nothing arrived).

    For the whole proxy: :meth:`cut` closes every open connection (a network failure; the
    proxy goes on listening); :meth:`stop_forwarding` resets every open connection and stops
    listening (new connections are refused), as a server that went down;
    :meth:`resume_forwarding` listens on the same port again. ``seen`` lists
    ``(method, target)`` of every request, ``fired`` counts the rules that fired; with
    ``capture=True`` ``bodies`` lists ``(method, target, body)`` of every request with a body
    and ``answers`` ``(method, target, body)`` of every answer passed on as it arrived, its
    body as relayed so far (chunked framing kept).
    """

    def __init__(self, upstream: str, capture: bool = False) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rules: list[dict[str, Any]] = []
        self.seen: list[tuple[str, str]] = []
        self.fired = 0
        self.capture = capture
        self.bodies: list[tuple[str, str, bytes]] = []
        self.answers: list[tuple[str, str, bytearray]] = []
        self.forwarding = True
        self._lock = threading.Lock()
        self._gone = threading.Condition(self._lock)  # notified when a connection's handler is done with it
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._reset: set[socket.socket] = set()
        super().__init__()

    # -- rules ------------------------------------------------------------------------------------

    def _add(self, kind: str, method: str, path: str, count: int, **extra: Any) -> None:
        with self._lock:
            self.rules.append({"kind": kind, "method": method, "path": path, "count": count, **extra})

    def cut_after_send(self, method: str, path: str, count: int = 1) -> None:
        self._add("cut", method, path, count)

    def respond(self, method: str, path: str, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                count: int = 1) -> None:
        self._add("respond", method, path, count, status=status, body=body, headers=dict(headers or {}))

    def drop(self, method: str, path: str, count: int = 1, reset: bool = False) -> None:
        self._add("drop", method, path, count, reset=reset)

    def delay(self, method: str, path: str, seconds: float, count: int = 1) -> None:
        self._add("delay", method, path, count, seconds=seconds)

    def truncate(self, method: str, path: str, at: int, count: int = 1, reset: bool = False,
                 clean: bool = False) -> None:
        self._add("truncate", method, path, count, at=at, reset=reset, clean=clean)

    def cut_before(self, method: str, path: str, marker: bytes, occurrence: int = 1, count: int = 1,
                   pause: float = 0.0) -> None:
        self._add("cut_before", method, path, count, marker=marker, occurrence=occurrence, pause=pause)

    def clear(self) -> None:
        """Forget the rules that have not fired yet."""
        with self._lock:
            self.rules.clear()

    def _rule(self, method: str, target: str) -> dict[str, Any] | None:
        with self._lock:
            self.seen.append((method, target))
            for rule in self.rules:
                if rule["count"] > 0 and rule["method"] == method and rule["path"] in target:
                    rule["count"] -= 1
                    self.fired += 1
                    return rule
        return None

    # -- the whole proxy ---------------------------------------------------------------------------

    def cut(self) -> None:
        """Close every open connection, both sides (the network failed); new connections are
        accepted and forwarded as before."""
        with self._lock:
            pairs = list(self._pairs)
        for client, up in pairs:
            for s in (up, client):  # wakes the relaying thread, which lets both go
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop_forwarding(self, timeout: float = 10.0) -> None:
        """Reset every open connection and refuse new ones until :meth:`resume_forwarding`.

        Returns once every connection open at the call has been reset (at most ``timeout``
        seconds; :class:`TimeoutError` after that), as the connections of a server that went
        down are gone at once: a client's next request finds its kept-alive connection
        closed, as it would (the relaying threads reset them; returning before they had done
        so let a client send on a connection the proxy was about to reset).
        """
        self.forwarding = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with self._lock:
            pairs = list(self._pairs)
            self._reset.update(client for client, _ in pairs)
        for client, up in pairs:
            for s in (up, client):  # wakes the relaying thread, which resets the client
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RD)
        deadline = time.monotonic() + timeout
        with self._lock:
            while any(pair in self._pairs for pair in pairs):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"FaultyProxy: {len(pairs)} connections not reset within {timeout:g}s")
                self._gone.wait(left)

    def resume_forwarding(self, timeout: float = 10.0) -> None:
        """Listen on the same port again (after :meth:`stop_forwarding`)."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    sock.close()
                    raise
                time.sleep(0.05)
        sock.listen(64)
        self.sock = sock
        self.forwarding = True
        threading.Thread(target=self._loop, daemon=True).start()

    # -- relaying ----------------------------------------------------------------------------------

    @staticmethod
    def _rst(conn: socket.socket) -> None:
        reset(conn)

    def handle(self, conn: socket.socket) -> None:
        try:
            up = socket.create_connection(self.upstream)
        except OSError:
            self._rst(conn)
            return
        pair = (conn, up)
        with self._lock:
            self._pairs.add(pair)
        try:
            self._serve(conn, up)
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                reset = conn in self._reset
                self._reset.discard(conn)
            up.close()
            if reset or not self.forwarding:
                self._rst(conn)
            with self._lock:  # (after the reset: stop_forwarding waits for it)
                self._pairs.discard(pair)
                self._gone.notify_all()

    def _hang_up(self, conn: socket.socket, reset: bool) -> None:
        """End the client's connection: a TCP reset (sent by :meth:`handle` on the way
        out) or an orderly close."""
        if reset:
            with self._lock:
                self._reset.add(conn)
        else:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _serve(self, conn: socket.socket, up: socket.socket) -> None:
        client = conn.makefile("rb")
        server = up.makefile("rb")
        while True:
            head = _read_head(client)
            if not head or not self.forwarding:
                return
            method, target = head.split(b" ", 2)[:2]
            body = _read_body(client, head, request=True)
            rule = self._rule(method.decode(), target.decode("latin-1"))
            if self.capture and body:
                with self._lock:
                    self.bodies.append((method.decode(), target.decode("latin-1"), body))
            kind = rule["kind"] if rule is not None else None
            if kind == "respond":
                assert rule is not None
                extra = "".join(f"{k}: {v}\r\n" for k, v in rule["headers"].items())
                conn.sendall(f"HTTP/1.1 {rule['status']} Injected\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(rule['body'])}\r\n{extra}\r\n".encode() + rule["body"])
                continue
            if kind == "drop":
                assert rule is not None
                self._hang_up(conn, rule["reset"])
                return
            up.sendall(head + body)
            answer = _read_head(server)
            if not answer:
                return
            head_only = method == b"HEAD"
            if kind in ("cut", "truncate") or (kind == "delay"):
                assert rule is not None
                whole = _read_body(server, answer, request=False, head_only=head_only)
                if kind == "cut":  # the server did the work, the client never hears of it
                    self._hang_up(conn, False)
                    return
                if kind == "delay":
                    time.sleep(rule["seconds"])
                    conn.sendall(answer + whole)
                    continue
                if rule["clean"]:
                    payload = _decode_body(answer, whole)[: rule["at"]]
                    conn.sendall(_reframe(answer, payload) + payload)
                    continue
                conn.sendall(answer + whole[: rule["at"]])
                self._hang_up(conn, rule["reset"])
                return
            record = None
            if self.capture:
                record = bytearray()
                with self._lock:
                    self.answers.append((method.decode(), target.decode("latin-1"), record))
            conn.sendall(answer)
            cut = (rule["marker"], rule["occurrence"]) if kind == "cut_before" and rule is not None else None
            if not _relay_body(server, conn, answer, head_only, record=record, cut_before=cut) or cut:
                if cut and rule is not None and rule["pause"]:
                    time.sleep(rule["pause"])
                return


def _headers(head: bytes) -> dict[bytes, bytes]:
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return headers


def _decode_body(head: bytes, raw: bytes) -> bytes:
    """The payload of a body read by :func:`_read_body` (chunked framing removed)."""
    if _headers(head).get(b"transfer-encoding", b"").lower() != b"chunked":
        return raw
    out, rest = [], raw
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2:]
    return b"".join(out)


def _chunk_count(raw: bytes) -> int:
    """How many (non-empty) chunks the chunked body ``raw`` (framing kept) holds."""
    count, rest = 0, raw
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        count += 1
        rest = rest[size + 2:]
    return count


def _reframe(head: bytes, payload: bytes) -> bytes:
    """``head`` with its framing replaced by ``Content-Length: len(payload)``."""
    lines = [line for line in head.rstrip(b"\r\n").split(b"\r\n")
             if not line.lower().startswith((b"transfer-encoding:", b"content-length:"))]
    lines.append(b"Content-Length: %d" % len(payload))
    return b"\r\n".join(lines) + b"\r\n\r\n"


class _Marks:
    """Finds the ``occurrence``-th ``marker`` in a body fed to it piece by piece."""

    def __init__(self, marker: bytes, occurrence: int) -> None:
        self.marker, self.left = marker, occurrence
        self.tail = b""  # the end of the previous piece: a marker may straddle two

    def find(self, piece: bytes) -> int | None:
        """Where in ``piece`` the wanted marker starts (``None``: not in it)."""
        text = self.tail + piece
        start = 0
        while True:
            at = text.find(self.marker, start)
            if at < 0:
                break
            self.left -= 1
            if self.left == 0:
                return max(0, at - len(self.tail))
            start = at + 1
        self.tail = text[-(len(self.marker) - 1):] if len(self.marker) > 1 else b""
        return None


def _relay_body(src: Any, dst: socket.socket, head: bytes, head_only: bool, record: bytearray | None = None,
                cut_before: tuple[bytes, int] | None = None) -> bool:
    """Copy the body of the message whose head is ``head`` from ``src`` to ``dst`` as it
    arrives; False when the connection cannot carry another message (read to close, or
    the upstream closed mid-body, or ``cut_before=(marker, n)`` stopped it just before the
    n-th ``marker`` of the body). ``record`` gets the bytes as they are passed on."""
    marks = _Marks(*cut_before) if cut_before is not None else None

    def send(data: bytes, payload: slice = slice(None)) -> bool:
        """Pass ``data`` on, unless the wanted marker is in ``data[payload]``: then only
        what comes before it, and False."""
        if marks is not None:
            at = marks.find(data[payload])
            if at is not None:
                data = data[:(payload.start or 0) + at]
                dst.sendall(data)
                if record is not None:
                    record.extend(data)
                return False
        dst.sendall(data)
        if record is not None:
            record.extend(data)
        return True

    headers = _headers(head)
    status = int(head.split(b" ", 2)[1])
    if head_only or status in (204, 304) or 100 <= status < 200:
        return True
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            size_line = src.readline()
            if not size_line:
                return False
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                out = [size_line]
                while True:
                    trailer = src.readline()
                    out.append(trailer)
                    if trailer in (b"\r\n", b"\n", b""):
                        send(b"".join(out), slice(0, 0))
                        return bool(trailer)
            data = src.read(size + 2)
            if not send(size_line + data, slice(len(size_line), len(size_line) + size)):
                return False
            if len(data) < size + 2:
                return False
    if b"content-length" in headers:
        left = int(headers[b"content-length"])
        while left > 0:
            data = src.read1(min(left, 65536))
            if not data or not send(data):
                return False
            left -= len(data)
        return True
    while True:
        data = src.read1(65536)
        if not data or not send(data):
            return False


def _read_head(f: Any) -> bytes:
    lines = []
    while True:
        line = f.readline()
        if not line:
            return b""
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _read_body(f: Any, head: bytes, request: bool, head_only: bool = False) -> bytes:
    """The raw body (chunked framing kept) of the message whose head is ``head``."""
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if not request:
        status = int(head.split(b" ", 2)[1])
        if head_only or status in (204, 304) or 100 <= status < 200:
            return b""
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        out = []
        while True:
            size_line = f.readline()
            out.append(size_line)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while True:  # trailers up to the blank line
                    trailer = f.readline()
                    out.append(trailer)
                    if trailer in (b"\r\n", b"\n", b""):
                        return b"".join(out)
            out.append(f.read(size + 2))
    if b"content-length" in headers:
        return bytes(f.read(int(headers[b"content-length"])))
    return b"" if request else f.read()
