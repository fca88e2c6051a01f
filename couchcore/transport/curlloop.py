"""The async backend on libcurl: couchcore's CurlMulti engine driven by the event loop.

:class:`CurlLoopTransport` sends one :class:`~couchcore.protocol.messages.Request` per
``await transport.send(request)`` and returns a
:class:`~couchcore.protocol.messages.Response`, like the sync pycurl backend, whose
request set-up (:meth:`couchcore.transport.pycurl.PycurlTransport.configure`) and error
mapping it shares. What differs is who waits: a ``pycurl.CurlMulti`` per event loop
tells the loop which sockets to watch (``CURLMOPT_SOCKETFUNCTION`` ->
``loop.add_reader``/``add_writer``; on Linux into an epoll set of the engine's own,
whose one fd the loop watches) and when to wake it (``CURLMOPT_TIMERFUNCTION`` ->
``loop.call_later``), and the loop hands the events back with
``multi.socket_action``. Only public asyncio and pycurl APIs are used, so it runs on
plain asyncio and under Tornado (whose IOLoop is the asyncio loop) alike; it needs a
loop with ``add_reader`` (any selector loop: not Windows' proactor loop).

Connections
    libcurl keeps the connections of one multi handle alive and reuses them: a loop's
    requests to one host share at most ``max(maxsize, max_clients)`` kept-alive
    connections (``CURLMOPT_MAXCONNECTS``), so N sequential requests use one TCP
    connection. A write (a request that is not idempotent) starts on a fresh
    connection, as on the sync pycurl backend: libcurl silently re-sends a request
    whose reused connection breaks before the answer, and a write must never be sent
    twice (the connection then joins the pool for later reads).

Flow control, timeouts, cancellation
    * at most ``max_clients`` requests are in flight per event loop (an
      ``asyncio.Semaphore``; waiting for a slot is cancellable and sends nothing);
    * a streamed body is queued up to ``HIGH_WATER`` bytes; above it the transfer is
      paused (``CURL_WRITEFUNC_PAUSE``: libcurl stops reading the socket, TCP flow
      control stops the server) until the consumer drained it below ``LOW_WATER``;
    * ``connect_timeout`` is libcurl's (TCP and TLS); the read timeout is an idle
      timeout (no byte for ``timeout`` seconds once connected, not counting time the
      consumer holds the stream paused; upload progress counts as activity);
      ``Request.timeout`` overrides it and ``0`` disables it;
    * cancelling the awaiting task, closing the response, or dropping an unread
      streamed response removes the transfer from the multi handle, which closes its
      connection (an unfinished HTTP/1.1 exchange cannot be reused), and frees its slot.
"""

from __future__ import annotations

import asyncio
import inspect
import select
import time
from collections import deque
from typing import Any, Awaitable

import pycurl

from .. import errors
from ..protocol.messages import Headers, Request, Response
from .._urls import redact_url
from ._loop import (CHUNK, HIGH_WATER, LOW_WATER, BufferedExchange, ChunkStream, LoopTransport, body_type_error,
                    call_in_loop, closed_error, encode_chunk)
from .base import Credentials, TransportOptions, is_file_like
from .pycurl import PycurlTransport, _translate

__all__ = ["CurlLoopTransport", "HIGH_WATER", "LOW_WATER"]

_IN, _OUT = pycurl.POLL_IN, pycurl.POLL_OUT
_CSELECT_IN, _CSELECT_OUT, _CALL_MULTI_PERFORM = pycurl.CSELECT_IN, pycurl.CSELECT_OUT, pycurl.E_CALL_MULTI_PERFORM
#: the engine's own epoll set (Linux), see _LoopEngine; elsewhere the loop watches each socket
_EPOLL: Any = getattr(select, "epoll", None)
if _EPOLL is not None:
    _EPOLLIN, _EPOLLOUT = select.EPOLLIN, select.EPOLLOUT
    _NOT_EPOLLIN, _NOT_EPOLLOUT = ~select.EPOLLIN, ~select.EPOLLOUT
    # libcurl's POLL_IN / POLL_OUT / POLL_INOUT -> epoll's interest bits
    _EPOLL_MASK = {pycurl.POLL_IN: _EPOLLIN, pycurl.POLL_OUT: _EPOLLOUT, pycurl.POLL_INOUT: _EPOLLIN | _EPOLLOUT,
                   pycurl.POLL_NONE: 0}
_NO_BODY = (bytes, bytearray, str)
_ACCEPT_ONLY = frozenset({"Accept"})  # a request's own headers that never carry credentials


class CurlLoopTransport(LoopTransport["_LoopEngine"]):
    """Sends :class:`Request` objects with libcurl on the running event loop; keeps
    connections alive per loop; translates libcurl's errors into couchcore's
    :class:`~couchcore.errors.TransportError` family. :meth:`close` aborts what is in
    flight (readers get a ConnectionError) and closes every loop's multi handle and its
    connections; the transport stays usable."""

    def __init__(self, base_url: str, credentials: Credentials | None, options: TransportOptions) -> None:
        super().__init__(base_url, credentials, options)
        # the request set-up (URL, headers, body, TLS, timeouts) is the sync backend's
        self._curl_setup = PycurlTransport(base_url, credentials, options)
        # whether a request with no headers of its own carries credentials (most requests)
        self._plain_auth_sent = self.sends_credentials(Request("GET", "/"))

    def _new_state(self, loop: asyncio.AbstractEventLoop) -> "_LoopEngine":
        return _LoopEngine(self, loop)

    # -- sending ------------------------------------------------------------------------
    async def send(self, request: Request) -> Response:
        state = self._state()
        url = self.base_url + request.target
        body = request.body
        upload = None if body is None else _upload_for(body)  # bad body types: InvalidInput before a slot is taken
        if state.free > 0 and not state.queue:
            state.free -= 1
        else:
            await state.wait_for_slot()  # cancellable; nothing has been sent yet
        try:
            exchange = state.start(request, url, upload)
        except BaseException as exc:
            state.release()
            if isinstance(exc, (errors.CouchcoreError, asyncio.CancelledError)):
                raise
            raise errors.ConnectionError(f"request failed: {type(exc).__name__}: {redact_url(str(exc))}",
                                         url) from None
        try:
            await exchange.ready
        except BaseException:
            exchange.abort("cancel")
            raise
        own = request.headers
        # most requests carry only the operation's Accept: credentials as with no headers
        auth_sent = self._plain_auth_sent if not own or own.keys() == _ACCEPT_ONLY else self.sends_credentials(request)
        if exchange.stream:
            return Response(exchange.status, _headers(exchange.headers), stream=ChunkStream(exchange),
                            method=request.method, url=url, close=exchange.close, auth_sent=auth_sent)
        head = exchange.head
        return Response(exchange.status, head if head is not None else _headers(exchange.headers),
                        body=exchange.body(), method=request.method, url=url, auth_sent=auth_sent)


def _parse_head(lines: list[bytes]) -> tuple[int, Headers]:
    """Status and headers (lower-cased names; a repeated name: the last value) of the last
    response head in ``lines`` (raw header lines as libcurl hands them over; an interim
    1xx head comes first)."""
    start = 0
    if lines[0][9:10] == b"1" and len(lines) > 1:  # 1xx: the final head follows
        start = max(i for i, line in enumerate(lines) if line.startswith(b"HTTP/"))
    headers = _new_headers(Headers)  # (Headers() checks its argument: nothing to check here)
    for line in b"".join(lines[start + 1:]).decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            _set_header(headers, name.strip().lower(), value.strip())
    return int(lines[start].split(b" ", 2)[1]), headers


_new_headers = Headers.__new__
_set_header = dict.__setitem__


def _headers(pairs: list[tuple[str, str]]) -> Headers:
    """A :class:`Headers` (lower-cased names; a repeated name: the last value)."""
    headers = _new_headers(Headers)
    dict.update(headers, [(name.lower(), value) for name, value in pairs])
    return headers


def _socket_action(multi: pycurl.CurlMulti, fd: int, event: int) -> None:
    """``socket_action(fd, event)`` until libcurl no longer asks to be called again."""
    ret = _CALL_MULTI_PERFORM
    while ret == _CALL_MULTI_PERFORM:
        ret = multi.socket_action(fd, event)[0]


class _LoopEngine:
    """One event loop's CurlMulti handle, its reusable easy handles, the sockets libcurl
    asked the loop to watch, its timer, the ``max_clients`` slots (``free`` of them, and
    the requests waiting for one in ``queue``, first come first served) and the timer
    that checks the read (idle) timeouts of the transfers in flight."""

    def __init__(self, transport: CurlLoopTransport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        opts = transport.options
        self.free = opts.max_clients
        self.queue: deque[asyncio.Future[None]] = deque()
        # one timer for every transfer's read timeout (not one per request): it fires at
        # ``sweep_at``, no later than the earliest transfer's ``check_at``
        self.sweep: asyncio.TimerHandle | None = None
        self.sweep_at = 0.0
        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self.multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self.multi.setopt(pycurl.M_MAXCONNECTS, max(opts.maxsize, opts.max_clients))
        self.idle: list[pycurl.Curl] = []
        self.active: dict[pycurl.Curl, _Exchange] = {}
        self.watched: dict[int, int] = {}  # fd -> what it is watched for (POLL_* bits with the loop, EPOLL* in epoll)
        # Linux: libcurl's sockets are watched by an epoll set of this engine's own, whose
        # one fd the loop watches (add_reader once): a request's socket is then added and
        # removed with one epoll_ctl each, not through the loop's add_reader/remove_reader
        # (a Handle, selector bookkeeping and two KeyErrors raised and caught per add)
        self.epoll: Any = None
        if _EPOLL is not None:
            try:
                self.epoll = _EPOLL()
                loop.add_reader(self.epoll.fileno(), self._on_epoll)
            except (OSError, NotImplementedError, RuntimeError):  # a loop without add_reader: the loop's own
                if self.epoll is not None:
                    self.epoll.close()
                self.epoll = None
        self.timer: asyncio.Handle | None = None
        self.timer_at: float | None = None  # when ``timer`` fires (None: at once, call_soon)
        self.in_curl = False  # inside socket_action: libcurl callbacks may run, no remove_handle
        self.adding = False  # inside add_handle (start): a timer due at once is run by start itself...
        self.kick = False  # ...when libcurl asked for one
        self.closed = False

    @property
    def in_flight(self) -> int:
        return len(self.active)

    # -- the max_clients slots ---------------------------------------------------------------
    async def wait_for_slot(self) -> None:
        """Wait for a free slot (taken when this returns); cancelling the wait takes none."""
        if self.free > 0 and not self.queue:
            self.free -= 1
            return
        waiter: asyncio.Future[None] = self.loop.create_future()
        self.queue.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot as the wait was cancelled: the next one gets it
            raise

    def release(self) -> None:
        """Give a slot back: to the first request still waiting, else to the free ones."""
        queue = self.queue
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1

    # -- read (idle) timeouts ----------------------------------------------------------------
    def watch_idle(self, at: float) -> None:
        """Make the sweep fire no later than ``at`` (``time.monotonic()`` seconds)."""
        if self.sweep is not None:
            if self.sweep_at <= at:
                return
            self.sweep.cancel()
        if self.closed or self.loop.is_closed():
            self.sweep = None
            return
        self.sweep_at = at
        self.sweep = self.loop.call_later(max(0.0, at - time.monotonic()), self._sweep)

    def _sweep(self) -> None:
        self.sweep = None
        if self.closed:
            return
        now = time.monotonic()
        due = [exchange for exchange in self.active.values() if exchange.check_at <= now]
        for exchange in due:
            exchange.check_idle(now)
        later = [exchange.check_at for exchange in self.active.values() if exchange.check_at]
        if later:
            self.watch_idle(min(later))

    # -- libcurl -> loop -------------------------------------------------------------------
    def _on_socket(self, what: int, fd: int, multi: Any, data: Any) -> None:
        """CURLMOPT_SOCKETFUNCTION: watch ``fd`` for what libcurl waits for."""
        epoll = self.epoll
        if epoll is not None:
            self._on_socket_epoll(what, fd, epoll)
            return
        loop = self.loop
        if loop.is_closed():
            self.watched.pop(fd, None)
            return
        old = self.watched.get(fd, 0)
        new = 0 if what == pycurl.POLL_REMOVE else what
        if old & _IN and not new & _IN:
            loop.remove_reader(fd)
        if old & _OUT and not new & _OUT:
            loop.remove_writer(fd)
        if new & _IN and not old & _IN:
            loop.add_reader(fd, self._act, fd, pycurl.CSELECT_IN)
        if new & _OUT and not old & _OUT:
            loop.add_writer(fd, self._act, fd, pycurl.CSELECT_OUT)
        if new:
            self.watched[fd] = new
        else:
            self.watched.pop(fd, None)

    def _on_socket_epoll(self, what: int, fd: int, epoll: Any) -> None:
        """:meth:`_on_socket` on the engine's own epoll set. libcurl announces the removal
        of a socket before closing it; a closed socket leaves an epoll set by itself (its
        number may then come back as a new socket: registered afresh)."""
        watched = self.watched
        new = _EPOLL_MASK[what] if what != pycurl.POLL_REMOVE else 0
        old = watched.get(fd, 0)
        if new == old:
            return
        try:
            if not new:
                del watched[fd]
                epoll.unregister(fd)
            elif not old:
                watched[fd] = new
                try:
                    epoll.register(fd, new)
                except FileExistsError:  # pragma: no cover - never unregistered: change it
                    epoll.modify(fd, new)
            else:
                watched[fd] = new
                try:
                    epoll.modify(fd, new)
                except FileNotFoundError:  # pragma: no cover - the number came back as a new socket
                    epoll.register(fd, new)
        except (OSError, ValueError):  # closed already (the socket, or the set on close()): nothing to watch
            pass

    def _on_epoll(self) -> None:
        """The engine's epoll set has ready sockets: hand each to libcurl (read and write
        readiness in one ``socket_action``), then finish what completed."""
        epoll = self.epoll
        if self.closed or epoll is None:
            return
        try:
            events = epoll.poll(0)
        except (OSError, ValueError):  # pragma: no cover - closed meanwhile
            return
        if not events:
            return
        watched = self.watched
        multi = self.multi
        self.in_curl = True
        try:
            for fd, ev in events:
                interest = watched.get(fd, 0)
                # as the loop's selector reads them: an error or hang-up is both readable and writable
                mask = (_CSELECT_IN if ev & _NOT_EPOLLOUT and interest & _EPOLLIN else 0) | \
                    (_CSELECT_OUT if ev & _NOT_EPOLLIN and interest & _EPOLLOUT else 0)
                if mask:
                    _socket_action(multi, fd, mask)
        except pycurl.error:  # pragma: no cover - the multi handle failed as a whole
            pass
        finally:
            self.in_curl = False
        self._collect()

    def _on_timer(self, timeout_ms: int) -> None:
        """CURLMOPT_TIMERFUNCTION: call ``socket_action(TIMEOUT)`` in ``timeout_ms``
        (``-1``: no timer). Never calls libcurl from here (not reentrant). A timer due
        no later than asked for is kept: firing early is harmless (libcurl then asks
        again), and most requests would otherwise replace it several times."""
        timer = self.timer
        if timeout_ms < 0:
            if timer is not None:
                timer.cancel()
                self.timer = None
            return
        loop = self.loop
        if loop.is_closed() or self.closed:
            return
        if timeout_ms == 0:
            if self.adding:  # a transfer was just added: start() runs socket_action right after
                self.kick = True
                return
            if timer is not None and self.timer_at is None:  # already due at once
                return
            if timer is not None:
                timer.cancel()
            self.timer, self.timer_at = loop.call_soon(self._on_timeout), None
            return
        when = loop.time() + timeout_ms / 1000.0
        if timer is not None and (self.timer_at is None or self.timer_at <= when):
            return
        if timer is not None:
            timer.cancel()
        self.timer, self.timer_at = loop.call_at(when, self._on_timeout), when

    def _on_timeout(self) -> None:
        self.timer = None
        self._act(pycurl.SOCKET_TIMEOUT, 0)

    def _act(self, fd: int, event: int) -> None:
        if self.closed:
            return
        self.in_curl = True
        try:
            _socket_action(self.multi, fd, event)
        except pycurl.error:  # pragma: no cover - the multi handle failed as a whole
            pass
        finally:
            self.in_curl = False
        self._collect()

    def _collect(self) -> None:
        """Finish the transfers libcurl reports done."""
        while True:
            queued, ok_list, err_list = self.multi.info_read()
            for curl in ok_list:
                exchange = self.active.get(curl)
                if exchange is not None:
                    exchange.finish(None)
            for curl, code, message in err_list:
                exchange = self.active.get(curl)
                if exchange is not None:
                    error: BaseException = _translate(curl, code, message, exchange.url)
                    if exchange.upload is not None and exchange.upload.error is not None:
                        error = exchange.upload.error
                    exchange.finish(error)
            if not queued:
                break

    # -- transfers -------------------------------------------------------------------------
    def start(self, request: Request, url: str, upload: "_Upload | None") -> "_Exchange":
        if self.closed:  # closed while the request waited for a slot: aborted, never retried
            raise closed_error(url)
        curl = self.idle.pop() if self.idle else pycurl.Curl()
        exchange = _Exchange(self, curl, request, url, upload)
        try:
            if upload is not None:
                # the sync set-up of a streamed body (chunked or Content-Length), then
                # couchcore's reader, which can wait for async sources
                placeholder = _copy(request, iter(()))
                self.transport._curl_setup.configure(curl, placeholder, url, exchange)  # type: ignore[arg-type]
                curl.setopt(pycurl.READFUNCTION, upload.read)
            else:
                self.transport._curl_setup.configure(curl, request, url, exchange)  # type: ignore[arg-type]
            if exchange.stream:
                curl.setopt(pycurl.BUFFERSIZE, CHUNK)  # chunks of up to 64 KB to the reader (default 16 KB)
            else:
                # a whole response: libcurl appends straight to lists (no Python frame per
                # header line or chunk); the idle timer watches the byte counts instead
                curl.setopt(pycurl.HEADERFUNCTION, exchange.raw.append)
                curl.setopt(pycurl.WRITEFUNCTION, exchange.chunks.append)
        except Exception:
            curl.reset()
            self.idle.append(curl)
            raise
        self.active[curl] = exchange
        exchange.arm_timer()
        # libcurl asks for a timer due at once: the transfer starts here (the request is
        # sent now), not from a callback on the loop's next iteration
        self.adding = not self.in_curl
        try:
            self.multi.add_handle(curl)
        finally:
            self.adding = False
        if self.kick:
            self.kick = False
            self._act(pycurl.SOCKET_TIMEOUT, 0)
        return exchange

    def detach(self, exchange: "_Exchange") -> None:
        """Take ``exchange``'s handle off the multi (closing its connection unless the
        exchange completed) and keep the handle for reuse."""
        curl = exchange.curl
        if self.active.pop(curl, None) is None:
            return
        try:
            self.multi.remove_handle(curl)
        except pycurl.error:  # the multi handle is closed already
            curl.close()
            return
        curl.reset()
        if not self.closed:
            self.idle.append(curl)
        else:
            curl.close()

    def close(self) -> None:
        """Abort every transfer ("the transport was closed") and close the handles and
        their connections."""
        if self.closed:
            return
        if self.loop.is_closed():  # nobody can wait for these any more: just let go
            for exchange in list(self.active.values()):
                exchange.finished = True
                self.detach(exchange)
        for exchange in list(self.active.values()):
            exchange.abort("shutdown", now=True)
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.sweep is not None:
            self.sweep.cancel()
            self.sweep = None
        epoll = self.epoll
        if epoll is not None:
            if not self.loop.is_closed():
                self.loop.remove_reader(epoll.fileno())
        elif not self.loop.is_closed():
            for fd in list(self.watched):
                self.loop.remove_reader(fd)
                self.loop.remove_writer(fd)
        self.watched.clear()
        for curl in self.idle:
            curl.close()
        self.idle.clear()
        self.multi.close()  # may still announce removals (to the set, closed right after)
        if epoll is not None:
            epoll.close()


class _Exchange(BufferedExchange):
    """One request on a loop's multi handle: the response head, the body chunks waiting
    for the reader, flow control, the idle timer and how it ended."""

    __slots__ = ("engine", "loop", "curl", "request", "url", "upload", "stream", "status", "headers", "raw",
                 "chunks", "buffered", "paused", "ready", "waiter", "finished", "error",
                 "abort_reason", "idle_timeout", "last_activity", "started", "uploaded", "check_at", "seen", "head")

    def __init__(self, engine: _LoopEngine, curl: pycurl.Curl, request: Request, url: str,
                 upload: "_Upload | None") -> None:
        self.engine = engine
        self.loop = engine.loop
        self.curl = curl
        self.request = request
        self.url = url
        self.upload = upload
        if upload is not None:
            upload.exchange = self
        self.stream = bool(request.stream) and request.method != "HEAD"
        self.status = 0
        self.headers: list[tuple[str, str]] = []  # a streamed response's head, as on_header parsed it
        self.raw: list[bytes] = []  # header lines of a whole (not streamed) response, parsed at the end...
        self.head: Headers | None = None  # ...into this
        self.seen = -1  # bytes received when the idle timer last looked (whole responses)
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.ready: asyncio.Future[Any] = engine.loop.create_future()  # head (streamed) or whole response
        self.waiter: asyncio.Future[Any] | None = None  # the stream's reader waits for a chunk
        self.finished = False
        self.error: BaseException | None = None
        self.abort_reason: str | None = None  # "cancel", "close", "timeout" or "shutdown"
        self.idle_timeout: float | None = None  # set by PycurlTransport.configure
        self.last_activity = self.started = time.monotonic()
        self.uploaded = 0
        self.check_at = 0.0  # when the engine's sweep next looks at the read timeout (0: never)

    # -- libcurl callbacks (inside socket_action) --------------------------------------------
    def on_header(self, line: bytes) -> None:
        self.last_activity = time.monotonic()
        text = line.decode("latin-1").rstrip("\r\n")
        if text.startswith("HTTP/"):
            self.status = int(text.split(" ", 2)[1])
            self.headers = []
        elif not text:
            if self.status >= 200 and self.stream and not self.ready.done():  # not an interim 1xx
                self.ready.set_result(None)
        elif ":" in text:
            name, _, value = text.partition(":")
            self.headers.append((name.strip(), value.strip()))

    def on_data(self, data: bytes) -> int | None:
        self.last_activity = time.monotonic()
        if self.stream:
            if self.buffered >= HIGH_WATER:
                self.paused = True
                return pycurl.WRITEFUNC_PAUSE  # libcurl hands the same data again after resuming
            self.buffered += len(data)
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        self.chunks.append(data)
        return None

    def on_progress(self, dltotal: int, dlnow: int, ultotal: int, ulnow: int) -> int:
        """A body still being sent is activity: a slow upload is no read timeout."""
        if ulnow != self.uploaded:
            self.uploaded = ulnow
            self.last_activity = time.monotonic()
        return 0

    # -- the end -------------------------------------------------------------------------------
    def finish(self, error: BaseException | None) -> None:
        """The transfer is over (complete, failed or aborted): free its handle and slot,
        wake whoever waits."""
        if self.finished:
            return
        self.finished = True
        self.error = error
        self.check_at = 0.0
        engine = self.engine
        if self.raw:
            self.status, self.head = _parse_head(self.raw)
        engine.detach(self)
        engine.release()
        ready = self.ready
        if not ready.done():
            if error is not None:
                ready.set_exception(error)
                ready.exception()  # its awaiter may be gone (cancelled): no "never retrieved" warning
            else:
                ready.set_result(None)
        self._wake()
        if self.upload is not None:
            self.upload.cancel()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def abort(self, reason: str, now: bool = False) -> None:
        """End the transfer early (cancelled, closed, timed out, transport closed); its
        connection is closed. Safe from libcurl callbacks (deferred to the loop)."""
        if self.finished or self.abort_reason is not None:
            return
        self.abort_reason = reason
        self._wake()
        if self.engine.in_curl and not now:
            self.engine.loop.call_soon(self._abort_now)
        else:
            self._abort_now()

    def _abort_now(self) -> None:
        if self.finished:
            return
        reason = self.abort_reason
        if reason == "timeout":
            error: BaseException = errors.ReadTimeout(f"no data for {self.idle_timeout:g}s (read timeout)", self.url)
        else:
            why = "the transport was closed" if reason == "shutdown" else reason
            error = errors.ConnectionError(f"request aborted ({why})", self.url)
            error.aborted = True  # by us (closed, cancelled): no network failure, never retried
        self.finish(error)

    # -- idle (read) timeout -------------------------------------------------------------------
    def arm_timer(self) -> None:
        if self.idle_timeout:
            self.check_at = self.started + self.idle_timeout
            self.engine.watch_idle(self.check_at)

    def check_idle(self, now: float) -> None:
        """The engine's sweep at ``now``: abort the transfer if no byte came for
        ``idle_timeout`` seconds (not counting connecting, or time the reader holds the
        stream paused), else set when to look again (``check_at``)."""
        self.check_at = 0.0
        limit = self.idle_timeout
        if self.finished or self.abort_reason is not None or not limit:
            return
        if self.paused:  # the reader holds the stream: not the server's fault
            self.check_at = now + limit
            return
        try:
            ready = self.curl.getinfo(pycurl.PRETRANSFER_TIME)  # s from start to connected and ready
        except pycurl.error:
            ready = 0.0
        if ready <= 0:  # still connecting: libcurl's CONNECTTIMEOUT bounds that
            self.check_at = now + limit
            return
        if not self.stream:  # no callback marks activity: the byte counts do
            try:
                got = int(self.curl.getinfo(pycurl.SIZE_DOWNLOAD_T)) + len(self.raw)
            except pycurl.error:
                got = self.seen
            if got != self.seen:
                self.seen = got
                self.last_activity = now if got else self.last_activity
        idle = now - max(self.last_activity, self.started + ready)
        if idle >= limit:
            self.abort("timeout")
        else:
            self.check_at = now + limit - idle

    # -- the reader ----------------------------------------------------------------------------
    def body(self) -> bytes:
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks.clear()
        return data

    def _make_room(self) -> bool:
        """Resume a transfer paused at ``HIGH_WATER`` (the reader took the buffer below
        ``LOW_WATER``, or all of it)."""
        if not self.paused:
            return False
        self._resume()
        return True

    def _resume(self) -> None:
        self.paused = False
        self.last_activity = time.monotonic()  # time the reader held the stream does not count
        if self.finished:
            return
        try:
            self.curl.pause(pycurl.PAUSE_CONT)  # may hand data over right here (on_data)
        except pycurl.error as exc:  # pragma: no cover - the transfer failed meanwhile
            self.abort_reason = self.abort_reason or "close"
            self.finish(errors.ConnectionError(f"resuming the transfer failed: {exc}", self.url))

    def close(self) -> None:
        """The reader is done with the response: abort it unless it is complete (any
        thread)."""
        call_in_loop(self.engine.loop, self._close, when_closed=True)

    def _close(self) -> None:
        self.chunks.clear()
        self.buffered = 0
        self.abort("close")


# -- streamed request bodies ------------------------------------------------------------------


def _upload_for(body: Any) -> "_Upload | None":
    """A reader for a streamed body (a file, an iterable or an async iterable of
    chunks; ``None`` for bytes/str or no body); anything else is InvalidInput."""
    if body is None or isinstance(body, _NO_BODY):
        return None
    if isinstance(body, memoryview):
        return _Upload(iter((bytes(body),)))
    if is_file_like(body) or hasattr(body, "__aiter__") or hasattr(body, "__iter__"):
        return _Upload(body)
    raise body_type_error(body)


_END = object()


class _Upload:
    """libcurl's READFUNCTION for a streamed body. A sync source is read right in the
    callback; an async one (``async for``, or a file whose ``read`` is a coroutine) is
    awaited in a task while the upload is paused (``CURL_READFUNC_PAUSE``)."""

    __slots__ = ("body", "source", "pending", "eof", "task", "error", "exchange")

    def __init__(self, body: Any) -> None:
        self.body = body
        self.source: Any = None
        self.pending = bytearray()
        self.eof = False
        self.task: asyncio.Task[Any] | None = None
        self.error: BaseException | None = None
        self.exchange: _Exchange | None = None

    def _next(self, size: int) -> Any:
        """The next chunk (bytes), ``_END``, or an awaitable of either."""
        body = self.body
        if is_file_like(body):
            chunk = body.read(min(size, CHUNK))
            if inspect.isawaitable(chunk):
                return _file_chunk(chunk)
            return chunk if chunk else _END
        if self.source is None:
            self.source = body.__aiter__() if hasattr(body, "__aiter__") else iter(body)
        if hasattr(self.source, "__anext__"):
            return _async_chunk(self.source)
        return next(self.source, _END)

    def read(self, size: int) -> Any:
        try:
            while len(self.pending) < size and not self.eof and self.task is None:
                chunk = self._next(size)
                if inspect.isawaitable(chunk):
                    self.task = asyncio.ensure_future(self._wait(chunk))
                    break
                if type(chunk) is bytes and len(chunk) == size and not self.pending:
                    # the usual case (a file read of the size libcurl asks for): handed over as
                    # it is, not copied into pending, sliced and copied out again (3 copies)
                    if self.exchange is not None:
                        self.exchange.last_activity = time.monotonic()
                    return chunk
                self._take(chunk)
        except Exception as exc:
            self._fail(exc)
            return pycurl.READFUNC_ABORT
        if self.pending:
            out = bytes(self.pending[:size])
            del self.pending[:size]
            if self.exchange is not None:
                self.exchange.last_activity = time.monotonic()
            return out
        if self.eof:
            return b""
        return pycurl.READFUNC_PAUSE  # resumed by _wait once the async source answered

    def _take(self, chunk: Any) -> None:
        if chunk is _END:
            self.eof = True
        elif chunk:
            self.pending += encode_chunk(chunk)

    async def _wait(self, awaitable: Awaitable[Any]) -> None:
        try:
            self._take(await awaitable)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)
        finally:
            self.task = None
        exchange = self.exchange
        if exchange is None or exchange.finished:
            return
        if self.error is not None:
            exchange.abort_reason = "body"
            exchange.finish(self.error)
            return
        try:
            exchange.curl.pause(pycurl.PAUSE_CONT)  # libcurl asks for the body again
        except pycurl.error:  # pragma: no cover - the transfer ended meanwhile
            pass

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc if isinstance(exc, errors.CouchcoreError) else \
                errors.InvalidInput(f"reading the request body failed: {type(exc).__name__}: {exc}")

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()


async def _file_chunk(awaitable: Awaitable[Any]) -> Any:
    chunk = await awaitable
    return chunk if chunk else _END


async def _async_chunk(source: Any) -> Any:
    try:
        return await source.__anext__()
    except StopAsyncIteration:
        return _END


def _copy(request: Request, body: Any) -> Request:
    """``request`` with another body (what the sync set-up sees of a streamed one)."""
    clone = Request.__new__(Request)
    for name in Request.__slots__:
        setattr(clone, name, getattr(request, name))
    clone.body = body
    return clone
