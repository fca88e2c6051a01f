"""The pycurl backend: a CurlMulti engine that keeps many requests in flight.

``send`` runs one request through the engine (streamed responses are paused when the
reader falls behind, so memory stays flat); ``iter_many`` interleaves many protocol
operations on one multi handle. One engine per thread; easy handles (and so their
keep-alive connections) are reused.
"""

from __future__ import annotations

import math
import os
import threading
import time
import weakref
from collections import deque
from typing import Any, Callable, Generator, Iterable, Iterator

import pycurl

from .. import errors
from ..protocol.messages import Headers, Request, Response
from .base import BODY_METHODS, BaseTransport, Credentials, ErrorTable, TransportOptions, is_file_like, register, \
    translate

__all__ = ["PycurlTransport"]

try:
    if os.environ.get("COUCHCORE_DECHUNK", "").strip().lower() == "python":
        raise ImportError("COUCHCORE_DECHUNK=python")
    from couchcore_ext._dechunk import Dechunker as _Dechunker
except ImportError:
    _Dechunker = None
#: ``"cython"``: a streamed chunked body reaches couchcore still chunked (libcurl's
#: ``HTTP_TRANSFER_DECODING`` off) and ``couchcore_ext._dechunk.Dechunker`` decodes it;
#: ``"libcurl"`` (the extension not built, or ``COUCHCORE_DECHUNK=python``): libcurl decodes it
DECHUNK_BACKEND = "cython" if _Dechunker is not None else "libcurl"

HIGH_WATER = 1 << 20  # pause a streamed transfer when this much is buffered unread
TAKE_SIZE = 8 * 1024  # at most this much buffered body is joined into one piece for the reader
BUFFER_SIZE = 64 * 1024  # libcurl's receive buffer for a streamed body (its default: 16 kB)
#: libcurl's upload buffer for a body streamed from a file (its default: 64 kB): the file is
#: read in pieces of this size, one Python call and one trip round the engine's loop each
#: (50 MB attachment on CouchDB 3.5: 801 -> 101 reads, client CPU 0.035-0.044 -> 0.032-0.037 s)
UPLOAD_BUFFER_SIZE = 512 * 1024
_TLS_CODES = {35, 51, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91}
_WATCH_UPLOAD = 256 * 1024  # bodies larger than this report upload progress (see on_progress)
_CONNECT_CODES = {5, 6, 7}  # proxy or host not resolved, connection refused/unreachable: nothing sent


class _Transfer:
    """One request on the multi handle: its headers, buffered body chunks, and state."""

    __slots__ = ("curl", "request", "url", "status", "headers", "headers_done", "chunks", "on_data", "taken", "received",
                 "idle_timeout", "last_activity", "started", "uploaded",
                 "paused", "done", "error", "stream", "cancelled", "undecoded")

    def __init__(self, curl: pycurl.Curl, request: Request, url: str) -> None:
        self.curl = curl
        self.request = request
        self.url = url
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.headers_done = False
        # libcurl appends the body's pieces here itself (WRITEFUNCTION = chunks.append: no
        # Python frame per HTTP chunk, ~1.5 kB each in a CouchDB view); what is buffered is
        # ``received - taken`` (body bytes libcurl has handed over minus those given to the reader)
        self.chunks: deque[bytes] = deque()
        self.on_data = self.chunks.append  # libcurl's WRITEFUNCTION (see PycurlTransport.configure)
        self.taken = 0
        self.received = 0
        self.paused = False
        self.done = False
        self.error: errors.TransportError | None = None
        self.stream = request.stream
        self.idle_timeout: float | None = None
        self.last_activity = self.started = time.monotonic()
        self.uploaded = 0
        self.cancelled = False  # set by Response.close(), possibly from another thread
        # the body arrives as it is on the wire, its chunked framing included (libcurl still
        # parses the framing itself to find the body's end, and reports a body cut short):
        # a streamed body, decoded by the C de-chunker in CurlEngine.stream
        self.undecoded = False

    def on_header(self, line: bytes) -> None:
        self.last_activity = time.monotonic()
        text = line.decode("latin-1").rstrip("\r\n")
        if text.startswith("HTTP/"):
            parts = text.split(" ", 2)
            self.status = int(parts[1])
            self.headers = []
            self.headers_done = False
        elif not text:
            if self.status >= 200:  # not an interim 1xx response
                self.headers_done = True
        elif ":" in text:
            name, _, value = text.partition(":")
            self.headers.append((name.strip(), value.strip()))

    def on_progress(self, dltotal: int, dlnow: int, ultotal: int, ulnow: int) -> int:
        """libcurl's progress callback, set for large uploads: a body still being sent
        is activity, so the read (idle) timeout does not fire during a slow upload."""
        if ulnow != self.uploaded:
            self.uploaded = ulnow
            self.last_activity = time.monotonic()
        return 0

    @property
    def buffered(self) -> int:
        """Body bytes received and not yet taken by the reader (as of the last :meth:`CurlEngine.step`)."""
        return self.received - self.taken

    def take(self) -> bytes:
        """The buffered pieces, joined into one bytes object of up to TAKE_SIZE bytes (libcurl
        appends one piece per HTTP chunk of the body, ~1.5 kB for a CouchDB view: a parser
        fed one join of them does far fewer calls than one per piece; the cap keeps the
        join's copy small and its rows few, which is what the parser is fastest at)."""
        chunks = self.chunks
        first = chunks.popleft()
        size = len(first)
        if size >= TAKE_SIZE or not chunks or size + len(chunks[0]) > TAKE_SIZE:
            self.taken += size
            return first
        parts = [first]
        while chunks and size + len(chunks[0]) <= TAKE_SIZE:
            piece = chunks.popleft()
            parts.append(piece)
            size += len(piece)
        self.taken += size
        return b"".join(parts)

    def body(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


class CurlEngine:
    """A CurlMulti handle and a pool of reusable easy handles (one engine per thread)."""

    def __init__(self, transport: "PycurlTransport") -> None:
        self.transport = transport
        self.multi = pycurl.CurlMulti()
        self.idle: list[pycurl.Curl] = []
        self.active: dict[pycurl.Curl, _Transfer] = {}
        self.retired = False  # closed by the transport: its transfers finish, then it closes

    def retire(self) -> None:
        """The transport's close(): the idle handles (and their connections) close now;
        transfers still under way (a stream the thread is reading, a ``get_many`` being
        iterated) run to their end and then close their handles, and the multi handle goes
        with the engine (libcurl closes it when it is collected). The transport makes a new
        engine for the next request."""
        self.retired = True
        for curl in self.idle:
            curl.close()
        self.idle.clear()
        if not self.active:
            self.multi.close()

    # -- handles -------------------------------------------------------------------
    def start(self, request: Request) -> _Transfer:
        curl = self.idle.pop() if self.idle else pycurl.Curl()
        url = self.transport.base_url + request.target
        transfer = _Transfer(curl, request, url)
        try:
            self.transport.configure(curl, request, url, transfer)
        except Exception:
            curl.reset()
            self.idle.append(curl)
            raise
        self.multi.add_handle(curl)
        self.active[curl] = transfer
        return transfer

    def finish(self, transfer: _Transfer) -> None:
        """Detach a transfer (finished or abandoned) and keep its handle for reuse."""
        curl = transfer.curl
        if self.active.get(curl) is transfer:  # not a later transfer that reuses the handle
            del self.active[curl]
            try:
                self.multi.remove_handle(curl)
            except pycurl.error:  # the multi handle is already closed (engine closed, interpreter exit)
                curl.close()
                return
            if self.retired:  # the transport was closed: no connection is kept
                curl.close()
                return
            curl.reset()
            self.idle.append(curl)

    # -- driving -------------------------------------------------------------------
    def step(self, timeout: float = 1.0) -> None:
        while True:
            ret, _ = self.multi.perform()
            if ret != pycurl.E_CALL_MULTI_PERFORM:
                break
        while True:
            queued, ok_list, err_list = self.multi.info_read()
            for curl in ok_list:
                transfer = self.active.get(curl)
                if transfer is not None:
                    transfer.done = True
                    transfer.headers_done = True
            for curl, code, message in err_list:
                transfer = self.active.get(curl)
                if transfer is not None:
                    transfer.error = _translate(curl, code, message, transfer.url)
                    transfer.done = True
            if not queued:
                break
        now = time.monotonic()
        for transfer in self.active.values():
            # body bytes libcurl handed over so far (it appends them without a Python call):
            # activity for the idle timeout, and the reader's backlog
            try:
                received = int(transfer.curl.getinfo(pycurl.SIZE_DOWNLOAD_T))
            except pycurl.error:  # pragma: no cover - a handle being torn down
                received = transfer.received
            if received != transfer.received:
                transfer.received = received
                transfer.last_activity = now
            if (transfer.stream and not transfer.paused and not transfer.done
                    and received - transfer.taken >= HIGH_WATER):
                # the reader fell behind: libcurl stops reading the socket (TCP then stops
                # the server) until the reader took the buffer below HIGH_WATER / 2
                transfer.paused = True
                transfer.curl.pause(pycurl.PAUSE_RECV)
            # an idle timeout (no byte for `timeout` s), not curl's average-speed limit,
            # so a feed sending a heartbeat every 30 s stays open
            if (not transfer.done and not transfer.paused and transfer.idle_timeout
                    and now - transfer.last_activity > transfer.idle_timeout
                    and now - self._idle_since(transfer) > transfer.idle_timeout):
                transfer.error = errors.ReadTimeout(
                    f"no data for {transfer.idle_timeout:g}s (read timeout)", transfer.url)
                transfer.done = True

    def _idle_since(self, transfer: _Transfer) -> float:
        """When the read timeout of ``transfer`` started counting: once it is connected
        (TCP and TLS; libcurl's CONNECTTIMEOUT bounds connecting), or at its last byte."""
        try:
            ready = transfer.curl.getinfo(pycurl.PRETRANSFER_TIME)  # s from start to ready-to-send
        except pycurl.error:
            ready = 0.0
        if ready <= 0:
            limit = self.transport.options.connect_timeout
            if limit is None or time.monotonic() - transfer.started < limit + 1:
                return time.monotonic()  # still connecting
            ready = limit
        return float(max(transfer.last_activity, transfer.started + ready))

    def resume(self, transfer: _Transfer) -> None:
        transfer.paused = False
        transfer.last_activity = time.monotonic()  # time the reader held the stream does not count
        transfer.curl.pause(pycurl.PAUSE_CONT)

    def select(self, limit: float = 0.5) -> None:
        """Wait for socket activity, at most ``limit`` s and no longer than libcurl's own timer
        (``curl_multi_timeout``): a handle just added is started by the next ``perform`` at once,
        not after ``limit`` s behind the sockets of other transfers (a paused stream's)."""
        due = self.multi.timeout()  # ms; -1: libcurl has no timer set
        if due >= 0:
            limit = min(limit, due / 1000.0)
        if limit > 0:
            self.multi.select(limit)

    def wait(self, transfer: _Transfer, headers_only: bool = False) -> None:
        while not transfer.done and not (headers_only and transfer.headers_done):
            self.select()
            self.step()
        if transfer.error is not None and not (headers_only and transfer.headers_done and transfer.chunks):
            self.finish(transfer)
            raise transfer.error
        # (a stream whose headers and first body bytes came in the same step as its error, a
        # connection closed mid-body: the stream hands over those bytes, then raises the error,
        # as when the error comes a step later; with no body byte yet it is raised here)

    def stream(self, transfer: _Transfer) -> Generator[bytes, None, None]:
        """The body of a streamed transfer (its headers complete), as a generator of bytes;
        its end, an error or ``close()`` finishes the transfer (:meth:`finish`). A body
        libcurl hands over still chunked goes through :meth:`_dechunked`, returned as it is
        (no ``yield from`` layer: one generator resume per piece, not two)."""
        if transfer.undecoded and _is_chunked(transfer.headers):
            return self._dechunked(transfer)
        return self._plain(transfer)

    def _plain(self, transfer: _Transfer) -> Generator[bytes, None, None]:
        """:meth:`stream` for a body libcurl decoded itself (or that is not chunked)."""
        try:
            while not transfer.cancelled:
                while transfer.chunks:
                    chunk = transfer.take()
                    if transfer.paused and transfer.buffered < HIGH_WATER // 2:
                        self.resume(transfer)
                    yield chunk
                if transfer.error is not None:
                    raise transfer.error
                if transfer.done:
                    return
                if transfer.paused:
                    self.resume(transfer)
                self.select()
                self.step()
        finally:
            self.finish(transfer)

    def _dechunked(self, transfer: _Transfer) -> Generator[bytes, None, None]:
        """:meth:`stream` for a body libcurl hands over still chunked (``transfer.undecoded``): each
        of libcurl's writes goes through the C de-chunker, which returns its payload in pieces
        of ``PIECE_SIZE`` (8 kB) bytes, the last one of each write shorter. Broken framing:
        the payload before it, then :class:`errors.ConnectionError` (the connection is not
        reused: the transfer is dropped unfinished)."""
        try:
            assert _Dechunker is not None
            dech = _Dechunker()
            feed = dech.feed
            chunks = transfer.chunks
            while not transfer.cancelled:
                while chunks:
                    data = chunks.popleft()
                    transfer.taken += len(data)
                    pieces = feed(data)
                    if transfer.paused and transfer.buffered < HIGH_WATER // 2:
                        self.resume(transfer)
                    for piece in pieces:
                        yield piece
                    if dech.error is not None:
                        raise errors.ConnectionError(f"connection failed: {dech.error}", transfer.url)
                if transfer.error is not None:
                    raise transfer.error
                if transfer.done:
                    # libcurl read the body to its end (it parses the framing too): a body
                    # without payload (204, 304) may have had no chunk for the de-chunker at all
                    return
                if transfer.paused:
                    self.resume(transfer)
                self.select()
                self.step()
        finally:
            self.finish(transfer)

    def response(self, transfer: _Transfer) -> Response:
        return Response(transfer.status, Headers(transfer.headers), body=transfer.body(),
                        method=transfer.request.method, url=transfer.url,
                        auth_sent=self.transport.sends_credentials(transfer.request))

    def iter_many(self, ops: Iterable[Any], concurrency: int, policy: Any = None) -> Iterator[tuple[int, Any]]:
        """Run protocol operations with up to ``concurrency`` requests in flight.

        ``ops`` is consumed lazily; yields ``(index, result)`` as operations finish
        (an exception is yielded in place of the result of an operation that failed).
        ``policy`` (a :class:`couchcore._drivers.RetryPolicy`, supplied by the facade)
        decides which failed requests are sent again and when; this engine only
        schedules them. A request's ``delay`` (an operation's back-off, seconds) is
        waited for before it is sent, as the single-call driver does, while the other
        operations' transfers go on.
        """
        from .._drivers import answered  # the drivers' rule for Response.write

        source = enumerate(ops)
        exhausted = False
        flying: dict[_Transfer, tuple[int, Any, int, float]] = {}  # index, op, retries so far, first try
        later: list[tuple[float, int, Any, Request, int, float]] = []  # retries waiting for their time
        finished: deque[tuple[int, Any]] = deque()

        def launch(i: int, op: Any, request: Request, attempt: int, started: float) -> None:
            if policy is not None:
                policy.prepare(request)  # the call's read timeout, if it set one
            try:
                flying[self.start(request)] = (i, op, attempt, started)
            except Exception as error:
                advance(i, op, exc=error)

        def advance(i: int, op: Any, value: Any = None, exc: BaseException | None = None,
                    first: bool = False) -> None:
            try:
                if first:
                    request = next(op)
                elif exc is not None:
                    request = op.throw(exc)
                else:
                    request = op.send(value)
            except StopIteration as stop:
                finished.append((i, stop.value))
                return
            except Exception as error:
                finished.append((i, error))
                return
            request.stream = False  # bodies are read whole when many run at once
            if request.delay > 0:  # the operation backs off first: the others go on meanwhile
                when = time.monotonic() + request.delay
                later.append((when, i, op, request, 0, when))
            else:
                launch(i, op, request, 0, time.monotonic())

        # op index -> the 500 "No DB shards could be opened." that its GET /{db} probe
        # stands for (a CouchDB cluster right after a delete; see drivers._shards_gone)
        probing: dict[int, Response] = {}

        def settle(transfer: _Transfer, i: int, op: Any, attempt: int, started: float) -> None:
            request, error = transfer.request, transfer.error
            # (marked as the single-call driver marks an answer, also the 500 a probe stands for)
            response = answered(request, self.response(transfer)) if error is None else None
            if i in probing:  # the database is gone (404) or the 500 stands
                original = probing.pop(i)
                advance(i, op, response if response is not None and response.status == 404 else original)
                return
            if response is not None and response.status == 500:
                from .._drivers import _shards_gone  # the sync drivers' rule, not an operation

                probe = _shards_gone(request, response)
                if probe is not None:
                    probing[i] = response
                    launch(i, op, probe, 0, time.monotonic())
                    return
            if policy is not None and (error is not None or response.status == 429):  # type: ignore[union-attr]
                wait = policy.delay(request, attempt, started, error=error, response=response)
                if wait is not None:
                    later.append((time.monotonic() + wait, i, op, request, attempt + 1, started))
                    return
                if error is not None:
                    error = policy.final_error(request, error)
            if error is not None:
                advance(i, op, exc=error)
            else:
                advance(i, op, response)

        try:
            while True:
                while not exhausted and len(flying) + len(later) < concurrency:
                    try:
                        i, op = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    advance(i, op, first=True)
                while finished:
                    yield finished.popleft()
                now = time.monotonic()
                for item in [item for item in later if item[0] <= now]:
                    later.remove(item)
                    launch(*item[1:])
                if not flying:
                    if later:
                        time.sleep(max(0.0, min(item[0] for item in later) - time.monotonic()))
                        continue
                    if exhausted and not finished:
                        return
                    continue
                wait = 0.5 if not later else max(0.0, min(0.5, min(item[0] for item in later) - now))
                self.select(wait)
                self.step()
                for transfer in [t for t in flying if t.done]:
                    i, op, attempt, started = flying.pop(transfer)
                    self.finish(transfer)
                    settle(transfer, i, op, attempt, started)
        finally:
            for transfer in list(flying):
                self.finish(transfer)


#: CURLOPT_UPLOAD_BUFFERSIZE needs libcurl 7.62 (older builds upload with their own 64 kB buffer)
_HAS_UPLOAD_BUFFERSIZE = hasattr(pycurl, "UPLOAD_BUFFERSIZE")

#: a forked child's engines inherited from its parent, kept (never closed) for its life
_INHERITED: list[threading.local] = []


#: at most this many distinct header sets of body-less requests are kept per transport
_MAX_CACHED_HEADER_SETS = 64


def _header_lines(headers: dict[str, str]) -> list[bytes]:
    """``headers`` as libcurl's HTTPHEADER lines (Latin-1), with ``Expect:`` unless given
    (no ``100-continue`` wait); an empty value as ``Name:``, which libcurl sends empty
    rather than leaving the header out. ``headers`` is changed (``Expect`` added)."""
    headers.setdefault("Expect", "")
    return [(f"{k}: {v}" if v else f"{k}:").encode("latin-1") for k, v in headers.items()]


@register("pycurl")
class PycurlTransport(BaseTransport):
    """Sends :class:`Request` objects with libcurl; translates its errors."""

    def __init__(self, base_url: str, credentials: Credentials | None, options: TransportOptions) -> None:
        super().__init__(base_url, credentials, options)
        self._local = threading.local()
        # the header lines of a request without a body, per set of the request's own headers
        # (the transport's are fixed once __init__ is done): most requests send the same few
        # lines, built and encoded once rather than on every request (see configure)
        self._bodyless_lines: dict[tuple[tuple[str, str], ...], list[bytes]] = {}

    @property
    def engine(self) -> CurlEngine:
        engine = getattr(self._local, "engine", None)
        if engine is None:
            engine = self._local.engine = CurlEngine(self)
        return engine

    def after_fork_in_child(self) -> None:
        # the parent's handles are left alone, never closed here: libcurl would end a TLS
        # session (close_notify) on a socket the parent still reads; each thread of the
        # child makes its own engine
        _INHERITED.append(self._local)
        self._local = threading.local()

    def close(self) -> None:
        """Close the calling thread's idle connections (each thread has its own engine:
        other threads' are not touched). A stream this thread is still reading runs to its
        end on its own connection, which is closed then, as urllib3's pool does with a
        connection in use; the next request opens a new one."""
        engine = getattr(self._local, "engine", None)
        if engine is not None:
            self._local.engine = None
            engine.retire()

    def configure(self, c: pycurl.Curl, request: Request, url: str, transfer: _Transfer) -> None:
        opts = self.options
        c.setopt(pycurl.URL, url)
        # the path as couchcore built it: libcurl would otherwise squash dot segments,
        # %2E%2E included (DELETE /db/doc/%2E%2E became DELETE /db/)
        c.setopt(pycurl.PATH_AS_IS, 1)
        # libcurl silently re-sends a request whose reused connection breaks before an answer;
        # a write must never be sent twice, so it starts on a fresh connection
        c.setopt(pycurl.FRESH_CONNECT, 0 if request.idempotent else 1)
        c.setopt(pycurl.NOSIGNAL, 1)
        # no proxy from http_proxy/HTTPS_PROXY/ALL_PROXY: urllib3 and Tornado ignore them too, and the
        # credentials of a request must not travel to a place the Server was not given
        c.setopt(pycurl.PROXY, "")
        c.setopt(pycurl.HEADERFUNCTION, transfer.on_header)
        c.setopt(pycurl.WRITEFUNCTION, transfer.on_data)
        if request.stream:
            c.setopt(pycurl.BUFFERSIZE, BUFFER_SIZE)  # fewer, larger socket reads
            if _Dechunker is not None and request.method != "HEAD" and isinstance(transfer, _Transfer):
                # a chunked body is handed over still chunked, in libcurl's large writes, and
                # decoded in C (CurlEngine.stream): no Python call per HTTP chunk (~1.5 kB in a
                # CouchDB view) and no join of them. libcurl goes on parsing the framing, so a
                # body cut short is still its error and the connection is still reused.
                # (only for this module's engine: the async loop's exchanges decode as before)
                c.setopt(pycurl.HTTP_TRANSFER_DECODING, 0)
                transfer.undecoded = True
        if opts.connect_timeout is not None:
            c.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, math.ceil(opts.connect_timeout * 1000)))
        read = request.timeout if request.timeout is not None else opts.timeout
        transfer.idle_timeout = read if read and read > 0 else None  # enforced by CurlEngine.step
        if url.startswith("https:"):
            c.setopt(pycurl.SSL_VERIFYPEER, 1 if opts.verify else 0)
            c.setopt(pycurl.SSL_VERIFYHOST, 2 if opts.verify else 0)
            if opts.ca_certs:
                c.setopt(pycurl.CAINFO, opts.ca_certs)
            if opts.cert_file:
                c.setopt(pycurl.SSLCERT, opts.cert_file)
            if opts.key_file:
                c.setopt(pycurl.SSLKEY, opts.key_file)
        c.setopt(pycurl.FOLLOWLOCATION, 0)  # a redirect is the caller's answer, never followed
        body = request.body
        method = request.method
        if body is None and method not in BODY_METHODS:
            # no body (GET, HEAD, DELETE, COPY...): the header lines depend only on the
            # request's own headers, so lines built once for the same headers are reused
            try:
                key = tuple(request.headers.items())
                lines = self._bodyless_lines.get(key)
            except TypeError:  # an unhashable value: refused below as before, never cached
                key, lines = None, None
            if lines is None:
                lines = _header_lines({**self._headers, **request.headers})
                if key is not None:
                    if len(self._bodyless_lines) >= _MAX_CACHED_HEADER_SETS:
                        self._bodyless_lines.clear()
                    self._bodyless_lines[key] = lines
            if method == "HEAD":
                c.setopt(pycurl.NOBODY, 1)
            elif method != "GET":
                c.setopt(pycurl.CUSTOMREQUEST, method)
            c.setopt(pycurl.HTTPHEADER, lines)  # libcurl copies the lines: the list stays as it is
            return
        headers = {**self._headers, **request.headers}
        if body is None and method in BODY_METHODS:
            body = b""  # Content-Length: 0, as the other backends send
        if body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = ""  # no type unless the request has one (not libcurl's form type)
        if method == "HEAD":
            c.setopt(pycurl.NOBODY, 1)
        elif body is not None:
            c.setopt(pycurl.POST, 1)
            if isinstance(body, (bytes, bytearray, str)):
                data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
                c.setopt(pycurl.POSTFIELDSIZE_LARGE, len(data))
                c.setopt(pycurl.POSTFIELDS, data)  # pycurl keeps a reference; COPYPOSTFIELDS rejects NUL bytes
                if len(data) > _WATCH_UPLOAD:  # sending it may outlast the read timeout: progress counts
                    c.setopt(pycurl.NOPROGRESS, 0)
                    c.setopt(pycurl.XFERINFOFUNCTION, transfer.on_progress)
            else:
                c.setopt(pycurl.NOPROGRESS, 0)  # a streamed body: its progress keeps the transfer alive
                c.setopt(pycurl.XFERINFOFUNCTION, transfer.on_progress)
                c.setopt(pycurl.READFUNCTION, _reader(body))
                if is_file_like(body) and isinstance(transfer, _Transfer) and _HAS_UPLOAD_BUFFERSIZE:
                    # (only for this module's engine: the async loop's reader hands over 64 kB reads)
                    c.setopt(pycurl.UPLOAD_BUFFERSIZE, UPLOAD_BUFFER_SIZE)
                length = None
                for name in [k for k in headers if k.lower() == "content-length"]:
                    length = headers.pop(name)
                if length is not None:
                    c.setopt(pycurl.POSTFIELDSIZE_LARGE, int(length))
                else:
                    headers["Transfer-Encoding"] = "chunked"
            c.setopt(pycurl.CUSTOMREQUEST, method)
        elif method != "GET":
            c.setopt(pycurl.CUSTOMREQUEST, method)
        c.setopt(pycurl.HTTPHEADER, _header_lines(headers))

    def send(self, request: Request) -> Response:
        engine = self.engine
        transfer = engine.start(request)
        try:
            engine.wait(transfer, headers_only=request.stream)
        except BaseException:
            engine.finish(transfer)
            raise
        if request.stream and request.method != "HEAD":
            stream = engine.stream(transfer)
            owner = threading.get_ident()

            def close() -> None:
                transfer.cancelled = True  # another thread's stream sees it within one select()
                if threading.get_ident() == owner:
                    stream.close()
                    engine.finish(transfer)  # also when the stream was never started

            # a result dropped unread (never iterated, never closed) gives its handle back when
            # its stream is collected: a generator that never started runs no finally
            release = weakref.finalize(stream, _release, engine, transfer, owner)
            release.atexit = False

            return Response(transfer.status, Headers(transfer.headers), stream=stream,
                            method=request.method, url=transfer.url, close=close,
                            auth_sent=self.sends_credentials(request))
        engine.finish(transfer)
        return engine.response(transfer)

    def iter_many(self, ops: Iterable[Any], concurrency: int = 16, policy: Any = None) -> Iterator[tuple[int, Any]]:
        return self.engine.iter_many(ops, concurrency, policy)


def _release(engine: CurlEngine, transfer: _Transfer, owner: int) -> None:
    """Detach the transfer of a stream that was collected (on its engine's thread only)."""
    transfer.cancelled = True
    if threading.get_ident() == owner:
        engine.finish(transfer)


def _is_chunked(headers: list[tuple[str, str]]) -> bool:
    """Whether a response with these header fields has a chunked body (``chunked`` is the last
    transfer coding: RFC 9112 section 6.3; libcurl ignores the others, as couchcore asks for none)."""
    codings = [v for k, v in headers if k.lower() == "transfer-encoding"]
    if not codings:
        return False
    return ",".join(codings).rsplit(",", 1)[-1].strip().lower() == "chunked"


def _reader(body: Any) -> Callable[[int], bytes]:
    """libcurl's READFUNCTION for a streamed body: at most ``size`` bytes a call."""
    pending = bytearray()
    if is_file_like(body):
        def read(size: int) -> bytes:
            if pending:
                out = bytes(pending[:size])
                del pending[:size]
                return out
            data = body.read(size)
            if isinstance(data, str):  # a text-mode file: `size` characters are up to 4x the bytes
                data = data.encode("utf-8")
                if len(data) > size:
                    pending.extend(data[size:])
                    data = data[:size]
            return bytes(data) if data.__class__ is not bytes else data
        return read
    chunks = iter(body)

    def read_iter(size: int) -> bytes:
        while len(pending) < size:
            try:
                pending.extend(next(chunks))
            except StopIteration:
                break
        out = bytes(pending[:size])
        del pending[:size]
        return out

    return read_iter


def _translate(curl: pycurl.Curl, code: int, message: str, url: str) -> errors.TransportError:
    """couchcore's error for libcurl's ``code``/``message`` on ``curl`` (through
    :func:`~couchcore.transport.base.translate` and :data:`_ERRORS`); its ``__cause__``
    is the ``pycurl.error(code, message)``."""
    connected = None
    if code == pycurl.E_OPERATION_TIMEDOUT:
        try:  # we set no overall TIMEOUT: this is CONNECTTIMEOUT, unless the TCP/TLS set-up was done
            done = curl.getinfo(pycurl.APPCONNECT_TIME if url.startswith("https:") else pycurl.CONNECT_TIME)
            connected = done > 0 and curl.getinfo(pycurl.PRETRANSFER_TIME) > 0
        except pycurl.error:
            connected = False
    error = translate(pycurl.error(code, message), url, _ERRORS, connected=connected,
                      detail=f"curl error {code}: {message}")
    assert isinstance(error, errors.TransportError)  # the last row matches every pycurl.error
    return error


def _code(codes: frozenset[int]) -> Any:
    return lambda exc: bool(exc.args) and exc.args[0] in codes


#: libcurl's error codes -> couchcore's errors (the first match wins), see transport.base.translate
_ERRORS: ErrorTable = (
    (_code(frozenset({pycurl.E_OPERATION_TIMEDOUT})), errors.TimeoutError),  # connect or read: see _translate
    (_code(frozenset(_TLS_CODES)), errors.TLSError),
    (_code(frozenset(_CONNECT_CODES)), errors.ConnectError),
    (pycurl.error, errors.ConnectionError),
)
