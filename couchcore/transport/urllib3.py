"""The default sync backend: one pooled, keep-alive urllib3 PoolManager per Server."""

from __future__ import annotations

import contextlib
import os
import re
import http.client
import logging
import queue
import socket
import ssl
from typing import Any, Iterator

import urllib3
import urllib3.connection
from urllib3 import exceptions as u3

from .. import errors
from ..protocol.messages import Headers, Request, Response
from .base import BaseTransport, Credentials, ErrorTable, TransportOptions, is_file_like, register, translate

__all__ = ["Urllib3Transport", "PyDechunker"]

CHUNK = 64 * 1024
_log = logging.getLogger("couchcore.transport")


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    """urllib3's HTTPS connection, but a TLS handshake that times out is a *connect*
    timeout (urllib3 reports it as a read timeout): it is bounded by the connect
    timeout, and nothing was sent."""

    def connect(self) -> None:
        try:
            super().connect()
        except TimeoutError as exc:  # socket.timeout from the handshake (TCP: ConnectTimeoutError)
            raise u3.ConnectTimeoutError(
                self, f"TLS handshake with {self.host}:{self.port} timed out (connect timeout={self.timeout})"
            ) from exc


class _KeepAtMost:
    """A urllib3 pool that keeps at most ``maxsize`` idle connections per host and closes
    any further one quietly once it is done (logged at DEBUG on ``couchcore.transport``).
    ``maxsize`` is the number of connections *kept*, not a cap: more threads than that
    open more connections at once (``block=False``), and urllib3 logs a WARNING ("Connection
    pool is full, discarding connection") for each one it then closes, a flood under
    normal use that points at nothing wrong. Only the log level differs from urllib3's."""

    pool: Any
    host: str

    def _put_conn(self, conn: Any) -> None:
        pool = self.pool
        try:
            pool.put(conn, block=False)
            return
        except AttributeError:  # the pool was closed (self.pool is None)
            pass
        except queue.Full:
            _log.debug("%s keeps %d idle connections (maxsize): one more closed", self.host, pool.maxsize)
        if conn:
            conn.close()


class _HTTPConnectionPool(_KeepAtMost, urllib3.HTTPConnectionPool):
    pass


class _HTTPSConnectionPool(_KeepAtMost, urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


#: a forked child's pools inherited from its parent, kept (never closed) for its life
_INHERITED: list[urllib3.PoolManager] = []


@register("urllib3")
class Urllib3Transport(BaseTransport):
    """Sends :class:`Request` objects with urllib3; translates its exceptions."""

    def __init__(self, base_url: str, credentials: Credentials | None, options: TransportOptions) -> None:
        super().__init__(base_url, credentials, options)
        pool_kw: dict[str, Any] = {"maxsize": options.maxsize, "block": False}
        if base_url.startswith("https:"):
            pool_kw["cert_reqs"] = "CERT_REQUIRED" if options.verify else "CERT_NONE"
            if options.ca_certs:
                pool_kw["ca_certs"] = options.ca_certs
            if options.cert_file:
                pool_kw["cert_file"] = options.cert_file
                pool_kw["key_file"] = options.key_file
        self._pool_kw = pool_kw
        self._pool = self._new_pool()
        self._route = _direct_route(base_url)
        self._host_pool: Any = None  # the PoolManager's pool for base_url's host, once asked for

    def close(self) -> None:
        self._host_pool = None  # the next request asks the PoolManager again (a new pool, as before)
        self._pool.clear()

    def _new_pool(self) -> urllib3.PoolManager:
        pool = urllib3.PoolManager(**self._pool_kw)
        pool.pool_classes_by_scheme = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}
        return pool

    def after_fork_in_child(self) -> None:
        # the parent's pools are left alone, never closed or cleared here: that takes their
        # locks, which a thread of the parent may have held at the fork (the child would
        # hang); their sockets stay the parent's
        _INHERITED.append(self._pool)
        self._host_pool = None
        self._pool = self._new_pool()

    def _timeout(self, request: Request) -> urllib3.Timeout:
        read = request.timeout if request.timeout is not None else self.options.timeout
        if read is not None and read <= 0:
            read = None
        return urllib3.Timeout(connect=self.options.connect_timeout, read=read)

    def _direct_pool(self, target: str) -> tuple[Any, str] | tuple[None, None]:
        """The connection pool and request-target for ``target``, when it goes straight to
        the pool: what ``PoolManager.urlopen`` would do with ``base_url + target``, without
        parsing the URL and looking the pool up again for every request (a tenth of this
        backend's CPU per small GET). ``(None, None)``: let the PoolManager do it."""
        route = self._route
        if route is None:
            return None, None
        uri = route[3] + target
        if _PLAIN_TARGET(uri) is None or _DOT_SEGMENT(uri) is not None:
            return None, None  # urllib3 would re-encode or normalize it: its own way
        pool = self._host_pool
        if pool is None or pool.pool is None:  # not yet asked for (or forgotten by close()), or closed
            pool = self._host_pool = self._pool.connection_from_host(route[1], port=route[2], scheme=route[0])
        return pool, uri

    def send(self, request: Request) -> Response:
        target = request.target
        url = self.base_url + target
        headers = {**self._headers, **request.headers}
        body = request.body
        chunked = False
        if isinstance(body, (bytes, bytearray)) and len(body) > CHUNK:
            # in pieces: one sendall() of a big body is bounded *in total* by the socket
            # timeout, so a large upload over a slow link would time out while progressing
            headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
            headers["Content-Length"] = str(len(body))
            body = _pieces(body)
        elif body is not None and not isinstance(body, (bytes, bytearray, str)):
            if is_file_like(body):
                body = _file_chunks(body)
            chunked = "Content-Length" not in headers and "content-length" not in headers
        try:
            pool, uri = self._direct_pool(target)
            if pool is not None:
                # as PoolManager.urlopen calls it (assert_same_host=False, redirect=False)
                resp = pool.urlopen(
                    request.method,
                    uri,
                    body=body,
                    headers=headers,
                    timeout=self._timeout(request),
                    retries=False,  # retries are couchcore's, above the backends (drivers.RetryPolicy)
                    preload_content=not request.stream,
                    decode_content=True,
                    chunked=chunked,
                    redirect=False,
                    assert_same_host=False,
                )
            else:
                resp = self._pool.urlopen(
                    request.method,
                    url,
                    body=body,
                    headers=headers,
                    timeout=self._timeout(request),
                    retries=False,
                    preload_content=not request.stream,
                    decode_content=True,
                    chunked=chunked,
                    redirect=False,
                )
        except Exception as exc:
            raise _translate(exc, url) from exc
        if request.stream and request.method != "HEAD":
            return Response(
                resp.status,
                Headers(resp.headers.items()),
                stream=_stream(resp, url),
                method=request.method,
                url=url,
                close=lambda: _release(resp),
                auth_sent=self.sends_credentials(request),
            )
        return Response(resp.status, Headers(resp.headers.items()), body=resp.data, method=request.method, url=url,
                        auth_sent=self.sends_credentials(request))


#: a request-target (path and query) that urllib3's ``parse_url`` leaves as it is: only the
#: characters it allows unescaped (RFC 3986 pchar, and ``?`` in the query), every ``%`` an
#: escape with upper-case hex digits (it upper-cases them, or escapes a stray ``%``), no
#: fragment; see :data:`_DOT_SEGMENT` for the other thing it changes
_PLAIN_TARGET = re.compile(r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*"
                           r"(?:\?(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-F]{2})*)?").fullmatch
#: a ``.`` or ``..`` segment (``parse_url`` removes those from the path; one in the query only
#: makes the request take the PoolManager's way, which sends the query as it is)
_DOT_SEGMENT = re.compile(r"/\.\.?(?=/|\?|$)").search


def _direct_route(base_url: str) -> tuple[str, str, int | None, str] | None:
    """``(scheme, host, port, path prefix)`` of ``base_url`` as ``parse_url`` splits any
    ``base_url + target`` (the authority ends at the target's ``/``), or ``None`` when
    requests must go through ``PoolManager.urlopen`` (no http(s) scheme or host, a query,
    fragment or user info in the base URL, a prefix urllib3 would change)."""
    try:
        parsed = urllib3.util.parse_url(base_url)
    except u3.LocationParseError:
        return None
    scheme, sep, rest = base_url.partition("://")
    if not sep or parsed.scheme not in ("http", "https") or not parsed.host or parsed.auth or "@" in rest:
        return None
    slash = rest.find("/")
    prefix = rest[slash:] if slash >= 0 else ""
    if "?" in rest or "#" in rest or (prefix and (parsed.path != prefix or _PLAIN_TARGET(prefix) is None)):
        return None
    return parsed.scheme, parsed.host, parsed.port, prefix


def _pieces(data: bytes | bytearray) -> Iterator[memoryview]:
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        yield view[start:start + CHUNK]


def _file_chunks(f: Any) -> Iterator[bytes]:
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            return
        yield chunk.encode("utf-8") if isinstance(chunk, str) else chunk


def _stream(resp: urllib3.BaseHTTPResponse, url: str) -> Iterator[bytes]:
    try:
        raw = _raw_chunked(resp)
        if raw is not None:
            yield from _dechunk(raw, url)
            return
        while True:
            try:
                chunk = resp.read1(READ_SIZE) if hasattr(resp, "read1") else resp.read(READ_SIZE)
            except Exception as exc:
                raise _translate(exc, url) from exc
            if not chunk:
                return
            yield chunk
    finally:
        _release(resp)


READ_SIZE = 64 * 1024  # bytes asked of the socket per read of a streamed body
#: a de-chunked body is handed over in pieces of exactly this many payload bytes (the last
#: piece of each socket read shorter): the row parser is fastest on pieces of a few kB
#: (fewer rows alive at once), the socket on large reads
PIECE_SIZE = 8 * 1024
#: longest chunk size line or trailer line accepted (bytes, without its CRLF)
MAX_LINE = 65536


def _raw_chunked(resp: urllib3.BaseHTTPResponse) -> Any:
    """The http.client response under ``resp`` when its body can be de-chunked here.

    CouchDB sends views in HTTP chunks of ~1.5 kB; urllib3/http.client return at most
    one chunk per read, through several Python layers each.  For a chunked body that is
    not content-encoded and not yet read, :func:`_dechunk` reads the socket's buffered
    file in large reads instead.  ``None`` when any of that does not hold (then the
    ordinary ``read1`` loop runs).
    """
    hr = getattr(resp, "_fp", None)
    if not getattr(resp, "chunked", False) or hr is None:
        return None
    if resp.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        return None
    if (getattr(hr, "chunked", False) is not True or getattr(hr, "chunk_left", 0) is not None
            or getattr(hr, "fp", None) is None or not hasattr(hr.fp, "read1") or not hasattr(hr.fp, "readinto1")
            or not callable(getattr(hr, "_close_conn", None))):
        return None
    return hr


_SIZE_LINE = re.compile(rb"([0-9a-fA-F]{1,16})\r\n").match  # the usual size line, bare
#: a complete size line (without its CRLF): group 1 the size (leading zeros, then at most 16
#: significant digits: chunk-size = 1*HEXDIG, RFC 9112 section 7.1)
_FULL_SIZE_LINE = re.compile(rb"[ \t]*0*([0-9a-fA-F]{1,16})[ \t]*(?:;.*)?", re.S).fullmatch
#: the start of a size line that may still become valid (what the C twin accepts byte by byte)
_SIZE_LINE_START = re.compile(rb"[ \t]*(?:0*[0-9a-fA-F]{1,16}[ \t]*(?:\r|;.*)?)?", re.S).fullmatch


class PyDechunker:
    """Decodes one ``Transfer-Encoding: chunked`` body fed in pieces of any size: the
    pure-Python twin of ``couchcore_ext._dechunk.Dechunker`` (the same pieces and errors
    for the same input; see that module for the framing accepted).

    :meth:`feed` returns the payload of the bytes given as ``bytes`` pieces of exactly
    :data:`PIECE_SIZE` bytes, the last one of each call shorter.  Broken framing:
    ``feed`` returns the payload before it and sets :attr:`error` (a ``str``); a later
    ``feed`` raises ``ValueError``.  :attr:`done` is ``True`` once the last chunk and
    the trailer section have been read.
    """

    __slots__ = ("_pending", "_left", "_crlf", "_trailer", "done", "error")

    def __init__(self) -> None:
        self._pending = b""    # an incomplete size line, chunk CRLF or trailer line
        self._left = 0         # payload bytes left in the current chunk
        self._crlf = False     # the current chunk's payload is complete: its CRLF is next
        self._trailer = False  # the last chunk was seen: trailer lines until an empty one
        self.done = False
        self.error: str | None = None

    def feed(self, data: Any, n: int = -1) -> list[bytes]:
        """The payload in the first ``n`` bytes of ``data`` (all when ``n`` < 0)."""
        if self.error is not None:
            raise ValueError(self.error)
        if self.done:
            return []
        view = memoryview(data).cast("B")
        chunk = bytes(view if n < 0 or n >= len(view) else view[:n])
        if self._pending:
            chunk = self._pending + chunk
            self._pending = b""
        segs: list[memoryview] = []  # payload slices of the piece being gathered
        out: list[bytes] = []
        got = 0
        try:
            got = self._run(chunk, memoryview(chunk), segs, out, got)
        except ValueError as exc:
            self.error = str(exc)
        if segs:
            out.append(b"".join(segs))
        return out

    def _run(self, data: bytes, view: memoryview, segs: list[memoryview], out: list[bytes], got: int) -> int:
        n = len(data)
        pos = 0
        while pos < n:
            if self._left:
                end = min(n, pos + self._left)
                while pos < end:  # into pieces of exactly PIECE_SIZE bytes
                    step = min(end - pos, PIECE_SIZE - got)
                    segs.append(view[pos:pos + step])
                    got += step
                    pos += step
                    self._left -= step
                    if got == PIECE_SIZE:
                        out.append(b"".join(segs))
                        segs.clear()
                        got = 0
                self._crlf = self._left == 0
                continue
            if self._crlf:
                if data[pos] != 13:
                    raise ValueError("chunk not followed by CRLF")
                if n - pos < 2:
                    self._pending = data[pos:]
                    return got
                if data[pos + 1] != 10:
                    raise ValueError("chunk not followed by CRLF")
                pos += 2
                self._crlf = False
                continue
            if not self._trailer:
                # the usual chunk: a bare hex size line, then the whole payload and its CRLF
                # inside this read (and room in the piece); anything else: the steps below
                m = _SIZE_LINE(data, pos)
                if m is not None:
                    start = m.end()
                    end = start + int(m.group(1), 16)
                    if start < end and end + 2 <= n and end - start <= PIECE_SIZE - got \
                            and data.startswith(b"\r\n", end):
                        segs.append(view[start:end])
                        got += end - start
                        pos = end + 2
                        if got == PIECE_SIZE:
                            out.append(b"".join(segs))
                            segs.clear()
                            got = 0
                        continue
            # errors as the C twin meets them byte by byte: a size line's first MAX_LINE + 2
            # bytes (its CRLF counted) are checked, then its length
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                rest = data[pos:]
                if not self._trailer and _SIZE_LINE_START(rest[:MAX_LINE + 2]) is None:
                    raise ValueError("invalid chunk size line")
                if len(rest) > MAX_LINE + 2:
                    raise ValueError("chunk size or trailer line too long")
                self._pending = rest
                return got
            if eol - pos > MAX_LINE:
                if not self._trailer and _SIZE_LINE_START(data, pos, pos + MAX_LINE + 2) is None:
                    raise ValueError("invalid chunk size line")
                raise ValueError("chunk size or trailer line too long")
            if self._trailer:
                if eol == pos:  # the empty line closing the trailer section: the body is complete
                    self.done = True
                    return got
                pos = eol + 2  # a trailer field: ignored
                continue
            m = _FULL_SIZE_LINE(data, pos, eol)
            if m is None:
                raise ValueError("invalid chunk size line")
            size = int(m.group(1), 16)
            pos = eol + 2
            if size == 0:
                self._trailer = True
            else:
                self._left = size
        return got


try:
    if os.environ.get("COUCHCORE_DECHUNK", "").strip().lower() == "python":
        raise ImportError("COUCHCORE_DECHUNK=python")
    from couchcore_ext._dechunk import Dechunker as _CyDechunker
except ImportError:
    _CyDechunker = None
#: the decoder class the urllib3 backend uses: the C one when built (``COUCHCORE_DECHUNK=python``
#: forces the pure-Python twin)
Dechunker: Any = _CyDechunker if _CyDechunker is not None else PyDechunker
#: ``"cython"`` or ``"python"``: which :data:`Dechunker` is in use
DECHUNK_BACKEND = "cython" if _CyDechunker is not None else "python"


def _dechunk(hr: Any, url: str, decoder: Any = None) -> Iterator[bytes]:
    """The payload of a ``Transfer-Encoding: chunked`` body read from ``hr.fp``, with
    ``readinto1`` into one reused buffer of READ_SIZE bytes, decoded by ``decoder`` (a new
    :data:`Dechunker` by default), handed over in pieces of PIECE_SIZE bytes (the last of
    each read shorter).  Broken framing or a body cut short: :class:`errors.ConnectionError`
    after the payload before it.  At the end (the last chunk and the trailer section read)
    the http.client response is closed as http.client does itself, so urllib3 returns the
    connection to its pool."""
    dech = Dechunker() if decoder is None else decoder
    feed = dech.feed
    fp = hr.fp
    buf = bytearray(READ_SIZE)
    # The first read takes what http.client's buffered file holds after the headers (or does
    # one socket read); it leaves that buffer empty, and readinto1() of READ_SIZE (more than
    # the file's buffer) then reads the socket straight into buf, once per call.  readinto1()
    # on a non-empty buffer would copy it and then block in a second read for the rest.
    try:
        data = fp.read1(READ_SIZE)
    except Exception as exc:
        raise _translate(exc, url) from exc
    n = len(data)
    got = feed(data)
    readinto1 = fp.readinto1
    while True:
        if not n:
            raise errors.ConnectionError("connection failed: the response ended inside its chunked body", url)
        yield from got
        if dech.done:
            hr._close_conn()
            return
        if dech.error is not None:
            raise errors.ConnectionError(f"connection failed: {dech.error}", url)
        try:
            n = readinto1(buf)
        except Exception as exc:
            raise _translate(exc, url) from exc
        got = feed(buf, n)


def _release(resp: urllib3.BaseHTTPResponse) -> None:
    with contextlib.suppress(Exception):
        if resp.isclosed() or getattr(resp, "length_remaining", None) == 0:  # type: ignore[attr-defined]
            resp.release_conn()
        else:  # unread data: the connection cannot be reused
            _shutdown(resp)  # wakes a read blocked in another thread; close() alone waits for it
            resp.close()
            resp.release_conn()


def _shutdown(resp: urllib3.BaseHTTPResponse) -> None:
    sock = getattr(getattr(resp, "connection", None), "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            sock.shutdown(socket.SHUT_RDWR)


def _translate(exc: BaseException, url: str) -> errors.TransportError:
    """couchcore's error for urllib3's exception ``exc`` (through
    :func:`~couchcore.transport.base.translate` and :data:`_ERRORS`; raise it ``from exc``).
    An exception that is no network failure (``TypeError``: a bug) is raised again as it is."""
    if isinstance(exc, u3.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    error = translate(exc, url, _ERRORS)
    if error is exc:
        raise exc
    return error  # type: ignore[return-value]


#: urllib3's exceptions -> couchcore's (the first match wins), see transport.base.translate
_ERRORS: ErrorTable = (
    (u3.NewConnectionError, errors.ConnectError),  # first: urllib3 derives it from ConnectTimeoutError
    (u3.ConnectTimeoutError, errors.ConnectTimeout),
    ((u3.ReadTimeoutError, TimeoutError), errors.ReadTimeout),
    ((u3.SSLError, ssl.SSLError, ssl.CertificateError), errors.TLSError),
    ((u3.ProtocolError, u3.HTTPError, http.client.HTTPException, OSError), errors.ConnectionError),
)
