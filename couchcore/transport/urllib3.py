"""The default sync backend: one pooled, keep-alive urllib3 PoolManager per Server."""

from __future__ import annotations

import contextlib
import re
import http.client
import socket
import ssl
from typing import Any, Iterator

import urllib3
import urllib3.connection
from urllib3 import exceptions as u3

from .. import errors
from ..protocol.messages import Headers, Request, Response
from .base import BaseTransport, Credentials, ErrorTable, TransportOptions, is_file_like, register, translate

__all__ = ["Urllib3Transport"]

CHUNK = 64 * 1024


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


class _HTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


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
        self._pool = urllib3.PoolManager(**pool_kw)
        self._pool.pool_classes_by_scheme = {**self._pool.pool_classes_by_scheme, "https": _HTTPSConnectionPool}

    def close(self) -> None:
        self._pool.clear()

    def _timeout(self, request: Request) -> urllib3.Timeout:
        read = request.timeout if request.timeout is not None else self.options.timeout
        if read is not None and read <= 0:
            read = None
        return urllib3.Timeout(connect=self.options.connect_timeout, read=read)

    def send(self, request: Request) -> Response:
        url = self.base_url + request.target
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
            resp = self._pool.urlopen(
                request.method,
                url,
                body=body,
                headers=headers,
                timeout=self._timeout(request),
                retries=False,  # retries are couchcore's, above the backends (drivers.RetryPolicy)
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
#: a de-chunked body is handed over in pieces of about this size (a ~1.5 kB HTTP chunk more at
#: most): the row parser is fastest on pieces of a few kB (fewer rows alive at once), the
#: socket on large reads
PIECE_SIZE = 8 * 1024


def _raw_chunked(resp: urllib3.BaseHTTPResponse) -> Any:
    """The http.client response under ``resp`` when its body can be de-chunked here.

    CouchDB sends views in HTTP chunks of ~1.5 kB; urllib3/http.client return at most
    one chunk per read, through several Python layers each.  For a chunked body that is
    not content-encoded and not yet read, :func:`_dechunk` reads the socket's buffered
    file in large pieces instead.  ``None`` when any of that does not hold (then the
    ordinary ``read1`` loop runs).
    """
    hr = getattr(resp, "_fp", None)
    if not getattr(resp, "chunked", False) or hr is None:
        return None
    if resp.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        return None
    if (getattr(hr, "chunked", False) is not True or getattr(hr, "chunk_left", 0) is not None
            or getattr(hr, "fp", None) is None or not hasattr(hr.fp, "read1")
            or not callable(getattr(hr, "_close_conn", None))):
        return None
    return hr


_HEX = frozenset(b"0123456789abcdefABCDEF")
_SIZE_LINE = re.compile(rb"([0-9a-fA-F]{1,16})\r\n").match


def _chunk_size(line: bytes, url: str) -> int:
    text = line.split(b";", 1)[0].strip(b" \t")
    if not text or len(text) > 16 or not _HEX.issuperset(text):
        raise errors.ConnectionError(f"connection failed: invalid chunk size line {line[:40]!r}", url)
    return int(text, 16)


def _dechunk(hr: Any, url: str) -> Iterator[bytes]:
    """The payload of a ``Transfer-Encoding: chunked`` body read from ``hr.fp`` in reads of
    up to READ_SIZE bytes, handed over as joined bytes objects of about PIECE_SIZE bytes
    (at least one per read that carried payload).  At the end (the last chunk
    and the trailer section read) the http.client response is closed as http.client does
    itself, so urllib3 returns the connection to its pool."""
    read1 = hr.fp.read1
    pending = b""    # an incomplete size line, chunk CRLF or trailer line from the last read
    left = 0         # payload bytes left in the current chunk
    crlf = False     # the current chunk's payload is complete: its CRLF is next
    trailer = False  # the last chunk was seen: trailer lines until an empty one
    while True:
        try:
            data = read1(READ_SIZE)
        except Exception as exc:
            raise _translate(exc, url) from exc
        if not data:
            raise errors.ConnectionError("connection failed: the response ended inside its chunked body", url)
        if pending:
            data = pending + data
            pending = b""
        n = len(data)
        view = memoryview(data)
        out: list[memoryview] = []
        got = 0  # payload bytes in out
        pos = 0
        while pos < n:
            if got >= PIECE_SIZE:
                yield b"".join(out)
                out = []
                got = 0
            if left:
                end = pos + left
                if end > n:
                    end = n
                out.append(view[pos:end])
                got += end - pos
                left -= end - pos
                pos = end
                crlf = left == 0
                continue
            if crlf:
                if n - pos < 2:
                    pending = data[pos:]
                    break
                if data[pos:pos + 2] != b"\r\n":
                    raise errors.ConnectionError("connection failed: chunk not followed by CRLF", url)
                pos += 2
                crlf = False
                continue
            if not trailer:
                # the usual chunk: a bare hex size line, then the whole payload and its CRLF
                # inside this read; anything else goes through the general steps below
                m = _SIZE_LINE(data, pos)
                if m is not None:
                    start = m.end()
                    end = start + int(m.group(1), 16)
                    if start < end and end + 2 <= n and data.startswith(b"\r\n", end):
                        out.append(view[start:end])
                        got += end - start
                        pos = end + 2
                        continue
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                pending = data[pos:]
                if len(pending) > 65536:
                    raise errors.ConnectionError("connection failed: chunk size or trailer line too long", url)
                break
            if trailer:
                if eol == pos:  # the empty line closing the trailer section: the body is complete
                    if out:
                        yield b"".join(out)
                    hr._close_conn()
                    return
                pos = eol + 2  # a trailer field: ignored
                continue
            size = _chunk_size(data[pos:eol], url)
            pos = eol + 2
            if size == 0:
                trailer = True
            else:
                left = size
        if out:
            yield b"".join(out)


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
