"""The async backend: Tornado's ``SimpleAsyncHTTPClient`` on the running asyncio loop.

:class:`TornadoTransport` sends one :class:`~couchcore.protocol.messages.Request` per
``await transport.send(request)`` and returns a
:class:`~couchcore.protocol.messages.Response`. It knows nothing about CouchDB.

Why the *simple* client and not ``curl_httpclient``
    * it is pure Python on the asyncio loop: nothing to compile, and the same code path
      wherever Tornado runs;
    * request bodies can be streamed (``body_producer``), which ``curl_httpclient`` does
      not support — attachments uploaded from files are never read whole;
    * real backpressure for streamed responses: the streaming callback returns an
      awaitable and Tornado's HTTP/1 reader waits for it before reading more from the
      socket, so a slow ``async for`` consumer stops the download (TCP flow control)
      instead of buffering it (``curl_httpclient`` hands chunks over with
      ``add_callback`` and cannot be paused);
    * cancellation can close the very connection of a request (see ``_Connection``).
    The price: no keep-alive (the simple client sends ``Connection: close``), so every
    request opens a TCP (and TLS) connection. On a LAN that costs well under a
    millisecond; the benchmark in ``benchmarks/async_bench.py`` measures it.

Flow control, timeouts, cancellation
    * at most ``max_clients`` requests are in flight per event loop (an
      ``asyncio.Semaphore``; waiting for a slot is cancellable and sends nothing);
    * a streamed body is queued in a buffer of at most ``HIGH_WATER`` bytes; above it
      the connection stops reading until the consumer drained it below ``LOW_WATER``;
    * ``connect_timeout`` is Tornado's; the read timeout is an idle timeout (no byte for
      ``timeout`` seconds — not counting time the consumer holds the stream paused),
      like the sync backends' socket read timeout; ``Request.timeout`` overrides it and
      ``0`` disables it (continuous feeds with heartbeats);
    * cancelling the awaiting task, closing the response, or dropping an unread
      streamed response closes the connection at once and frees its slot.

Private Tornado names, and the Tornado releases this module is tested on
    Tornado's public client API has no way to reach the connection of a request, so this
    module subclasses private names of ``tornado.simple_httpclient`` and
    ``tornado.http1connection`` (and uses their attributes ``final_callback``, ``stream``,
    ``request``):

    * ``SimpleAsyncHTTPClient._connection_class``: the client's requests use ``_Connection``;
    * ``_HTTPConnection`` (the per-request connection), to abort one request's connection
      (cancellation, close, idle timeout: its ``_handle_exception``), to return the
      streaming callback's awaitable to the HTTP/1 reader (backpressure; 6.6 does so
      itself), to finish a request whose connection was reset with that error
      (``on_connection_close``), and to finish one whose response does not parse, which
      Tornado before 6.6 leaves waiting for its timeout (``_write_body``);
    * ``_HTTPConnection._create_connection``, to drop the ``Content-Type`` Tornado adds to
      a POST without one, and to give the connection the reader below;
    * ``HTTP1Connection._parse_headers``, to read a response carrying both
      ``Transfer-Encoding: chunked`` and ``Content-Length`` as chunked (PouchDB Server's
      ``_list`` answers) as http.client and libcurl do, instead of dropping it.

    Any Tornado release may change these, so ``pyproject.toml`` pins ``tornado>=6.3,<6.7``:
    ``make test-tornado-versions`` (run by CI) runs this backend's tests on the oldest
    (6.3.3) and the newest (6.6.1) release of that range. Raise the upper bound only after
    it passes on the new release. The default async backend
    (``couchcore/transport/curlloop.py``) uses no Tornado internals.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import socket
import ssl
from collections import deque
from typing import Any, Callable

from tornado import httputil, netutil
from tornado.http1connection import HTTP1Connection
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError
from tornado.simple_httpclient import HTTPStreamClosedError, HTTPTimeoutError, SimpleAsyncHTTPClient, _HTTPConnection

from .. import errors
from ..protocol.messages import Headers, Request, Response
from .._urls import redact_url
from ._loop import (CHUNK, HIGH_WATER, LOW_WATER, BufferedExchange, ChunkStream, LoopTransport, body_type_error,
                    call_in_loop, closed_error, encode_chunk)
from .base import ErrorTable, is_file_like, translate

__all__ = ["TornadoTransport", "HIGH_WATER", "LOW_WATER"]

#: Largest body accepted (Tornado's default, 100 MB, would cut off big views).
MAX_BODY = 1 << 62
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _Aborted(Exception):
    """Internal: the request was aborted by couchcore (cancel, close, idle timeout)."""


class _LenientHTTP1Connection(HTTP1Connection):
    """Tornado's HTTP/1 reader, but a response carrying both ``Transfer-Encoding:
    chunked`` and ``Content-Length`` is read as chunked (RFC 7230 section 3.3.3, what
    http.client and libcurl do) instead of being dropped as "Connection closed".
    PouchDB Server answers ``_list`` functions that way."""

    def _parse_headers(self, data: bytes) -> tuple[str, httputil.HTTPHeaders]:
        start_line, headers = super()._parse_headers(data)
        if "Transfer-Encoding" in headers and "Content-Length" in headers:
            del headers["Content-Length"]
        return start_line, headers


class _Connection(_HTTPConnection):
    """Tornado's per-request connection, made reachable from its :class:`_Exchange`
    so that couchcore can abort it (cancellation, idle timeout), and passing the
    streaming callback's awaitable back to the HTTP/1 reader on every Tornado 6.x
    (6.6 does so itself) so that a full buffer pauses the socket."""

    def __init__(self, client: Any, request: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(client, request, *args, **kwargs)
        self.couchcore_exchange = getattr(request, "couchcore_exchange", None)
        if self.couchcore_exchange is not None:
            self.couchcore_exchange.attach(self)

    def _create_connection(self, stream: Any) -> HTTP1Connection:
        # Tornado has just added its default headers; a POST without a type got
        # "application/x-www-form-urlencoded": the request decides, so drop it
        if getattr(self.request, "couchcore_untyped", False):
            self.request.headers.pop("Content-Type", None)
        connection = super()._create_connection(stream)
        connection.__class__ = _LenientHTTP1Connection  # same state, one method differs
        if self.couchcore_exchange is not None:
            self.couchcore_exchange.connected()
        return connection

    def data_received(self, chunk: bytes) -> Any:
        callback = self.request.streaming_callback
        if callback is not None:
            return callback(chunk)
        return super().data_received(chunk)

    async def _write_body(self, start_read: bool) -> None:
        await super()._write_body(start_read)
        if start_read and self.final_callback is not None:
            # the response was read and the request is not finished: Tornado before 6.6
            # drops a response whose start line or headers do not parse (e.g. a server that
            # does not speak HTTP) without telling the request, which then waited for its
            # read timeout; 6.6 finishes it as a closed connection: do the same
            self.on_connection_close()

    def on_connection_close(self) -> None:
        # Tornado (6.x) raises the stream's own error here (e.g. ECONNRESET: a reset in
        # the middle of a body) instead of finishing the request, so the fetch never
        # completed and the reader waited for its read timeout: finish it with the error
        if self.final_callback is not None and self.stream.error is not None:
            error = self.stream.error
            self._handle_exception(type(error), error, error.__traceback__)
            return
        super().on_connection_close()


class _Resolver(netutil.Resolver):
    """Answers IP literals at once; names go to Tornado's default (a thread-pool
    ``getaddrinfo``). Saves a thread hop per request to ``127.0.0.1`` and the like."""

    def initialize(self) -> None:
        self._names = netutil.DefaultLoopResolver()

    async def resolve(self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC) -> list[Any]:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            found: list[Any] = await self._names.resolve(host, port, family)
            return found
        if ip.version == 6:
            return [(socket.AF_INET6, (host, port, 0, 0))]
        return [(socket.AF_INET, (host, port))]

    def close(self) -> None:
        self._names.close()


class _Client(SimpleAsyncHTTPClient):
    def _connection_class(self) -> type:
        return _Connection


class _LoopState:
    """The Tornado client and the ``max_clients`` slots of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_clients: int) -> None:
        self.loop = loop
        # our semaphore admits at most max_clients, so Tornado's own queue stays empty
        self.resolver = _Resolver()
        self.client = _Client(force_instance=True, max_clients=max_clients, max_body_size=MAX_BODY,
                              resolver=self.resolver)
        self.slots = asyncio.Semaphore(max_clients)
        self.exchanges: set[_Exchange] = set()
        self.closed = False

    @property
    def in_flight(self) -> int:
        return len(self.exchanges)

    def close(self) -> None:
        self.closed = True  # requests still waiting for a slot fail (see TornadoTransport.send)
        for exchange in list(self.exchanges):
            exchange.abort("shutdown")  # readers of open streams get a ConnectionError
        try:
            self.client.close()
            self.resolver.close()
        except Exception:  # pragma: no cover - closing is best effort
            pass


class TornadoTransport(LoopTransport[_LoopState]):
    """Sends :class:`Request` objects with Tornado's simple HTTP client; translates its
    exceptions into couchcore's :class:`~couchcore.errors.TransportError` family.
    :meth:`close` aborts what is in flight and closes the Tornado client(s)."""

    _close_closed_loops = False  # a closed loop's Tornado client cannot be closed any more

    def _new_state(self, loop: asyncio.AbstractEventLoop) -> _LoopState:
        return _LoopState(loop, self.options.max_clients)

    # -- sending --------------------------------------------------------------------
    async def send(self, request: Request) -> Response:
        state = self._state()
        url = self.base_url + request.target
        stream = bool(request.stream) and request.method != "HEAD"
        read_timeout = request.timeout if request.timeout is not None else self.options.timeout
        if read_timeout is not None and read_timeout <= 0:
            read_timeout = None

        await state.slots.acquire()  # cancellable; nothing has been sent yet
        if state.closed:  # the transport was closed while this request waited for a slot
            state.slots.release()
            raise closed_error(url)
        exchange = _Exchange(state, url, request.method, stream, read_timeout, self.options.connect_timeout)
        try:
            hreq = self._http_request(request, url, exchange)
            hreq.couchcore_exchange = exchange  # type: ignore[attr-defined]
            hreq.couchcore_untyped = "Content-Type" not in hreq.headers  # type: ignore[attr-defined]
            future = state.client.fetch(hreq, raise_error=False)
        except BaseException as exc:
            exchange.fail_to_start()
            error = _translate(exc, url, False)
            if error is exc:  # couchcore's own, a cancellation, or a bug (TypeError...): as it is
                raise
            raise error from exc
        future.add_done_callback(exchange.on_done)
        try:
            if stream:
                await exchange.headers_ready
                return Response(exchange.status, exchange.headers, stream=ChunkStream(exchange),
                                method=request.method, url=url, close=exchange.close,
                                auth_sent=self.sends_credentials(request))
            await exchange.done
        except BaseException:
            exchange.abort()
            raise
        return Response(exchange.status, exchange.headers, body=bytes(exchange.body),
                        method=request.method, url=url, auth_sent=self.sends_credentials(request))

    def _http_request(self, request: Request, url: str, exchange: "_Exchange") -> HTTPRequest:
        headers = httputil.HTTPHeaders()
        # as http.client (and so urllib3) does: a compressing server or proxy would
        # buffer a continuous feed until its compressor flushes
        headers["Accept-Encoding"] = "identity"
        for name, value in self._headers.items():
            headers[name] = value
        for name, value in request.headers.items():
            headers[name] = value
        body: Any = request.body
        producer = None
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif isinstance(body, (bytearray, memoryview)):
            body = bytes(body)
        elif body is not None and not isinstance(body, bytes):
            producer = _body_producer(body, exchange)
            body = None
        if isinstance(body, bytes) and len(body) > CHUNK:
            # written in pieces, so a slow upload counts as activity for the read timeout
            headers["Content-Length"] = str(len(body))
            producer = _body_producer(_pieces(body), exchange)
            body = None
        if body is None and producer is None and request.method in _BODY_METHODS:
            body = b""  # Content-Length: 0, as http.client sends
        opts = self.options
        return HTTPRequest(
            url,
            method=request.method,
            headers=headers,
            body=body,
            body_producer=producer,
            connect_timeout=opts.connect_timeout or 0,
            request_timeout=0,  # the idle (read) timeout is ours, see _Exchange
            follow_redirects=False,
            decompress_response=False,
            allow_nonstandard_methods=True,  # COPY, and POST without a body
            validate_cert=opts.verify,
            ca_certs=opts.ca_certs,
            client_cert=opts.cert_file,
            client_key=opts.key_file,
            header_callback=exchange.on_header_line,
            streaming_callback=exchange.on_chunk,
        )


class _Exchange(BufferedExchange):
    """One request/response in flight: headers, the buffered body chunks, the
    consumer's and the producer's wake-ups, the idle timer and the connection."""

    def __init__(self, state: _LoopState, url: str, method: str, stream: bool,
                 read_timeout: float | None, connect_timeout: float | None) -> None:
        self.state = state
        self.loop = loop = state.loop
        self.url = url
        self.method = method
        self.stream = stream
        self.read_timeout = read_timeout
        self.status = 0
        self.headers = Headers()
        self.headers_ready: asyncio.Future[Any] = loop.create_future()
        self.done: asyncio.Future[Any] = loop.create_future()
        self.body = bytearray()
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.waiter: asyncio.Future[Any] | None = None  # the consumer waits for a chunk
        self.space: asyncio.Future[Any] | None = None  # Tornado's reader waits for room
        self.finished = False
        self.error: BaseException | None = None
        self.conn: _Connection | None = None
        self.abort_reason: str | None = None  # "cancel", "close", "timeout" or "shutdown"
        self.producer_error: BaseException | None = None
        self._released = False
        self._got_headers = False
        self._connected = False  # TCP (and TLS) up: from here on the request may have been sent
        self._timer: asyncio.TimerHandle | None = None
        self.last_activity = loop.time()
        state.exchanges.add(self)
        if read_timeout is not None:
            self._timer = loop.call_later(read_timeout + (connect_timeout or 0), self._check_idle)

    # -- the connection side (called by Tornado) ------------------------------------------
    def attach(self, conn: _Connection) -> None:
        self.conn = conn
        if self.abort_reason is not None:
            self._abort_conn()

    def connected(self) -> None:
        """The TCP (and TLS) connection is up: the read timeout counts from now."""
        self._connected = True
        self.last_activity = self.loop.time()
        if self._timer is not None and self.read_timeout is not None:
            self._timer.cancel()
            self._timer = self.loop.call_later(self.read_timeout, self._check_idle)

    def on_header_line(self, line: str) -> None:
        self.last_activity = self.loop.time()
        if line.startswith("HTTP/"):
            self.status = int(line.split(None, 2)[1])
            return
        if line in ("\r\n", "\n", ""):
            self._got_headers = True
            if not self.headers_ready.done():
                self.headers_ready.set_result(None)
            return
        name, _, value = line.partition(":")
        self.headers[name.strip()] = value.strip()

    def on_chunk(self, chunk: bytes) -> Any:
        self.last_activity = self.loop.time()
        if not self.stream:
            self.body += chunk
            return None
        if self.abort_reason is not None:
            return None
        self.chunks.append(chunk)
        self.buffered += len(chunk)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.buffered >= HIGH_WATER:
            self.space = self.loop.create_future()
            return self.space
        return None

    def on_done(self, future: asyncio.Future[Any]) -> None:
        """Tornado's fetch finished (completely, or with an error): its connection is
        closed, so the slot is free again."""
        exc = None if future.cancelled() else future.exception()
        if self.producer_error is not None:
            error: BaseException | None = self.producer_error
        elif exc is None:
            error = None
        elif self.abort_reason == "timeout":
            error = errors.ReadTimeout(f"no data for {self.read_timeout:g}s", self.url)
        elif self.abort_reason is not None:
            why = "the transport was closed" if self.abort_reason == "shutdown" else self.abort_reason
            error = errors.ConnectionError(f"request aborted ({why})", self.url)
            error.aborted = True  # by us (closed, cancelled): no network failure, not retried
        else:
            error = _translate(exc, self.url, self._got_headers, self._connected)
        self.finished = True
        self.error = error
        for fut in (self.headers_ready, self.done):
            if not fut.done():
                if error is not None:
                    fut.set_exception(error)
                    fut.exception()  # nobody may await it any more: not worth a warning
                else:
                    fut.set_result(None)
        self._wake()
        self._release()

    # -- the consumer side -------------------------------------------------------------
    def _make_room(self) -> bool:
        """Let Tornado's reader go on when it waits for room (the consumer took the buffer
        below ``LOW_WATER``)."""
        space = self.space
        if space is None:
            return False
        self.space = None
        self.last_activity = self.loop.time()
        if not space.done():
            space.set_result(None)
        return True

    def close(self) -> None:
        """The consumer is done with the response: abort it unless it is complete."""
        call_in_loop(self.loop, self._close)

    def _close(self) -> None:
        self.chunks.clear()
        self.buffered = 0
        if not self.finished:
            self.abort("close")

    # -- aborting ------------------------------------------------------------------------
    def abort(self, reason: str = "cancel") -> None:
        if self.finished or self.abort_reason is not None:
            return
        self.abort_reason = reason
        self._wake()
        if self.conn is not None:
            self._abort_conn()

    def _abort_conn(self) -> None:
        conn = self.conn
        if conn is not None and conn.final_callback is not None:
            # what Tornado itself does on a request timeout: answer the fetch with an
            # error, release its slot, and close the stream (or drop it once connected)
            conn._handle_exception(_Aborted, _Aborted(self.abort_reason), None)

    def fail_to_start(self) -> None:
        self.finished = True
        self._release()

    def _check_idle(self) -> None:
        self._timer = None
        if self.finished or self.abort_reason is not None or self.read_timeout is None:
            return
        if self.space is not None:  # paused by the consumer: not the server's fault
            self._timer = self.loop.call_later(self.read_timeout, self._check_idle)
            return
        idle = self.loop.time() - self.last_activity
        if idle >= self.read_timeout:
            self.abort("timeout")
        else:
            self._timer = self.loop.call_later(self.read_timeout - idle, self._check_idle)

    def _wake(self) -> None:
        for fut in (self.waiter, self.space):
            if fut is not None and not fut.done():
                fut.set_result(None)
        self.space = None

    def _release(self) -> None:
        """Give the slot back (once: the connection is closed or complete)."""
        if self._released:
            return
        self._released = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.state.exchanges.discard(self)
        self.state.slots.release()


def _pieces(data: bytes) -> Any:
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        yield view[start:start + CHUNK]


def _body_producer(body: Any, exchange: _Exchange) -> Callable[[Callable[[bytes], Any]], Any]:
    """Stream a file object, an iterable or an async iterable of byte chunks."""

    async def produce(write: Callable[[bytes], Any]) -> None:
        try:
            if is_file_like(body):
                while True:
                    chunk = body.read(CHUNK)
                    if inspect.isawaitable(chunk):
                        chunk = await chunk
                    if not chunk:
                        return
                    await write(encode_chunk(chunk))
                    exchange.last_activity = exchange.loop.time()
            elif hasattr(body, "__aiter__"):
                async for chunk in body:
                    if chunk:
                        await write(encode_chunk(chunk))
                        exchange.last_activity = exchange.loop.time()
            else:
                for chunk in body:
                    if chunk:
                        await write(encode_chunk(chunk))
                        exchange.last_activity = exchange.loop.time()
        except (StreamClosedError, HTTPStreamClosedError):
            raise
        except Exception as exc:
            if exchange.producer_error is None:
                exchange.producer_error = exc if isinstance(exc, errors.CouchcoreError) else \
                    errors.InvalidInput(f"reading the request body failed: {type(exc).__name__}: {exc}")
            raise

    if not (is_file_like(body) or hasattr(body, "__iter__") or hasattr(body, "__aiter__")):
        raise body_type_error(body)
    return produce


def _translate(exc: BaseException, url: str, got_headers: bool, connected: bool = True) -> BaseException:
    """couchcore's error for Tornado's (or the socket layer's) exception ``exc`` (through
    :func:`~couchcore.transport.base.translate` and :data:`_ERRORS`, ``__cause__`` set):
    a timeout before the response headers is a :class:`~couchcore.errors.ConnectTimeout`
    (Tornado's own timeouts are connect timeouts: the read timeout is couchcore's), a
    connection failure before the connection was up a
    :class:`~couchcore.errors.ConnectError` (nothing was sent). ``exc`` itself when it is
    no network failure (couchcore's own, a cancellation, a bug)."""
    if isinstance(exc, StreamClosedError) and exc.real_error is not None:
        exc = exc.real_error
    if isinstance(exc, (HTTPTimeoutError, TimeoutError)):
        return translate(exc, url, _ERRORS, connected=got_headers)
    if isinstance(exc, (HTTPStreamClosedError, StreamClosedError)):
        phase = "connection lost" if got_headers else "connection closed before the response"
        return translate(exc, url, _ERRORS, connected=None if connected else False,
                         detail=f"{phase}: {exc}")
    return translate(exc, url, _ERRORS, connected=None if connected else False)


#: Tornado's exceptions -> couchcore's (the first match wins), see transport.base.translate
_ERRORS: ErrorTable = (
    ((HTTPTimeoutError, TimeoutError), errors.TimeoutError),  # connect or read: see _translate
    ((ssl.SSLError, ssl.CertificateError), errors.TLSError),
    ((HTTPStreamClosedError, StreamClosedError, OSError, httputil.HTTPInputError, HTTPClientError),
     errors.ConnectionError),
)
