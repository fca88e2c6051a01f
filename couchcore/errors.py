"""couchcore's exception hierarchy and the mapping from HTTP status to exception.

Every exception couchcore raises derives from :class:`CouchcoreError`.  Errors the
server reported derive from :class:`HTTPError`; network-level failures derive from
:class:`TransportError`; bad input detected before anything is sent derives from
:class:`InvalidInput` (which is also a :class:`ValueError`).
"""

from __future__ import annotations

from typing import Any, Mapping

from .urls import redact_url

__all__ = [
    "CouchcoreError",
    "InvalidInput",
    "InvalidDatabaseName",
    "InvalidDocument",
    "InvalidOption",
    "MissingRevision",
    "ResponseError",
    "ParseError",
    "HTTPError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "MethodNotAllowed",
    "NotAcceptable",
    "Conflict",
    "Gone",
    "PreconditionFailed",
    "RequestEntityTooLarge",
    "UnsupportedMediaType",
    "ExpectationFailed",
    "TooManyRequests",
    "ServerError",
    "TransportError",
    "ConnectionError",
    "TimeoutError",
    "ConnectTimeout",
    "ReadTimeout",
    "TLSError",
    "error_for_status",
]


class CouchcoreError(Exception):
    """Base class of every exception raised by couchcore."""


# -- bad input, detected before any request is sent -------------------------------


class InvalidInput(CouchcoreError, ValueError):
    """An argument cannot be turned into a valid CouchDB request."""


class InvalidDatabaseName(InvalidInput):
    """The database name does not match CouchDB's naming rules."""


class InvalidDocument(InvalidInput):
    """A document is not a JSON object or cannot be serialised as strict JSON."""


class InvalidOption(InvalidInput):
    """An unknown option, or a value of the wrong type, for a CouchDB endpoint."""


class MissingRevision(InvalidInput):
    """An operation needs the document's ``_rev`` and it has none."""


# -- malformed responses ------------------------------------------------------------


class ResponseError(CouchcoreError):
    """The server's answer could not be understood."""


class ParseError(ResponseError):
    """A response body is not the JSON it should be (truncated, garbage, bad UTF-8)."""


# -- errors reported by the server -------------------------------------------------


class HTTPError(CouchcoreError):
    """The server answered with an error status.

    Attributes: ``status`` (int), ``error`` and ``reason`` (CouchDB's fields, or
    ``None``), ``method`` and ``url`` (credentials removed), ``headers``.
    """

    status: int = 0

    def __init__(
        self,
        status: int | None = None,
        error: str | None = None,
        reason: str | None = None,
        method: str | None = None,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        if status is not None:
            self.status = status
        self.error = error
        self.reason = reason
        self.method = method
        self.url = redact_url(url) if url else url
        self.headers = dict(headers or {})
        self.body = body
        self.resolution: Any = None  # set on Conflict raised by Database.save
        super().__init__(self._message())

    @property
    def code(self) -> int:
        """Alias of :attr:`status`."""
        return self.status

    def _message(self) -> str:
        parts = [str(self.status)]
        if self.error:
            parts.append(str(self.error))
        msg = " ".join(parts)
        if self.reason:
            msg += f": {self.reason}"
        if self.method and self.url:
            msg += f" ({self.method} {self.url})"
        return msg

    def __reduce__(self):  # keep pickling working with the custom __init__
        return (
            self.__class__,
            (self.status, self.error, self.reason, self.method, self.url, self.headers, self.body),
        )


class BadRequest(HTTPError):
    status = 400


class Unauthorized(HTTPError):
    status = 401


class Forbidden(HTTPError):
    status = 403


class NotFound(HTTPError):
    status = 404


class MethodNotAllowed(HTTPError):
    status = 405


class NotAcceptable(HTTPError):
    status = 406


class Conflict(HTTPError):
    status = 409


class Gone(HTTPError):
    status = 410


class PreconditionFailed(HTTPError):
    status = 412


class RequestEntityTooLarge(HTTPError):
    status = 413


class UnsupportedMediaType(HTTPError):
    status = 415


class ExpectationFailed(HTTPError):
    status = 417


class TooManyRequests(HTTPError):
    status = 429


class ServerError(HTTPError):
    status = 500


_BY_STATUS: dict[int, type[HTTPError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        NotAcceptable,
        Conflict,
        Gone,
        PreconditionFailed,
        RequestEntityTooLarge,
        UnsupportedMediaType,
        ExpectationFailed,
        TooManyRequests,
    )
}


def error_for_status(status: int) -> type[HTTPError]:
    """The :class:`HTTPError` subclass for an HTTP status code."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return HTTPError


# -- transport failures ------------------------------------------------------------


class TransportError(CouchcoreError):
    """The request could not be completed at the network level."""

    def __init__(self, message: str, url: str | None = None) -> None:
        self.url = redact_url(url) if url else url
        if self.url:
            message = f"{message} ({self.url})"
        super().__init__(message)


class ConnectionError(TransportError):  # noqa: A001 - deliberate, namespaced
    """The connection could not be made, or was lost mid-request."""


class TimeoutError(TransportError):  # noqa: A001
    """A connect or read timeout expired."""


class ConnectTimeout(TimeoutError, ConnectionError):
    """Connecting took longer than the connect timeout."""


class ReadTimeout(TimeoutError):
    """The server did not send data within the read timeout."""


class TLSError(ConnectionError):
    """TLS handshake or certificate verification failed."""
