"""The default sync backend: one pooled, keep-alive urllib3 PoolManager per Server."""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Iterator

import urllib3
import urllib3.connection
from urllib3 import exceptions as u3

from .. import errors
from ..protocol.messages import Headers, Request, Response
from .base import BaseTransport, Credentials, TransportOptions, is_file_like, register

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
            raise _translate(exc, url) from None
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
        while True:
            try:
                chunk = resp.read1(CHUNK) if hasattr(resp, "read1") else resp.read(CHUNK)
            except Exception as exc:
                raise _translate(exc, url) from None
            if not chunk:
                return
            yield chunk
    finally:
        _release(resp)


def _release(resp: urllib3.BaseHTTPResponse) -> None:
    with contextlib.suppress(Exception):
        if resp.isclosed() or getattr(resp, "length_remaining", None) == 0:
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
    """Map urllib3's exceptions to couchcore's TransportError family."""
    if isinstance(exc, u3.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, errors.TransportError):
        return exc
    text = type(exc).__name__
    if isinstance(exc, u3.NewConnectionError):  # checked first: urllib3 derives it from ConnectTimeoutError
        return errors.ConnectError(f"cannot connect: {_strip(exc)}", url)
    if isinstance(exc, u3.ConnectTimeoutError):
        return errors.ConnectTimeout(f"connect timed out: {_detail(exc)}", url)
    if isinstance(exc, (u3.ReadTimeoutError, TimeoutError)):
        return errors.ReadTimeout(f"read timed out: {text}", url)
    if isinstance(exc, u3.SSLError):
        return errors.TLSError(f"TLS error: {_strip(exc)}", url)
    if isinstance(exc, (u3.ProtocolError, u3.HTTPError, OSError)):
        return errors.ConnectionError(f"connection failed: {_strip(exc)}", url)
    return errors.ConnectionError(f"request failed: {text}: {_strip(exc)}", url)


def _detail(exc: BaseException) -> str:
    """urllib3's message of an exception made as ``Error(connection, message)``."""
    message = exc.args[-1] if exc.args and isinstance(exc.args[-1], str) else type(exc).__name__
    from ..urls import redact_url

    return redact_url(message)


def _strip(exc: BaseException) -> str:
    """The exception text without any URL urllib3 put in it (it could hold a user name)."""
    from ..urls import redact_url

    return redact_url(str(exc))
