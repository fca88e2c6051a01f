"""couchcore's exception hierarchy and the mapping from HTTP status to exception.

Every exception couchcore raises derives from :class:`CouchcoreError`.  Errors the
server reported derive from :class:`HTTPError`; network-level failures derive from
:class:`TransportError`; bad input detected before anything is sent derives from
:class:`InvalidInput` (which is also a :class:`ValueError`).
"""

from __future__ import annotations

import builtins
import re
from typing import Any, Iterable, Mapping

__all__ = [
    "CouchcoreError",
    "InvalidInput",
    "InvalidDatabaseName",
    "InvalidDocument",
    "InvalidField",
    "InvalidOption",
    "MissingRevision",
    "ResponseError",
    "ParseError",
    "WrongEventLoop",
    "StreamConsumed",
    "StreamMisuse",
    "HTTPError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "NotFoundKeyError",
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
    "ConnectError",
    "OutcomeUnknown",
    "GatewayOutcomeUnknown",
    "TimeoutError",
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "IndexBuildTimeout",
    "TLSError",
    "error_for_status",
]


# A leaf module: nothing of couchcore is imported here (couchcore._urls imports from it).
# userinfo runs to the last "@" before the first "/": a password with an unencoded "#"
# or "?" is still hidden ("http://u:20#Zx@host" -> "http://***@host"), while an "@" in a
# path ("/_node/node1@127.0.0.1") is not taken for one; a URL given without its scheme
# ("admin:pw@host/db", "//admin:pw@host/db", quoted back in "not an http(s) URL") is
# hidden too when it starts the text or follows a bare "//"
# The scheme is matched from the start of its run of scheme characters only (the
# lookbehind; leading digits, "+", "." or "-" of the run are kept as they are): tried at
# every letter, a run of n of them cost n**2 steps, and the URL of a view queried with a
# key of 100k characters (refused by CouchDB with a 400) took minutes to redact
_USERINFO = re.compile(r"(?P<scheme>(?<![a-zA-Z0-9+.-])[0-9+.-]*[a-zA-Z][a-zA-Z0-9+.-]*://|(?<![:\w])//|^)"
                       r"(?P<userinfo>[^/\s]*@)")


def redact_url(url: str) -> str:
    """Return ``url`` (or any text holding URLs) with each ``user:password@`` replaced by ``***@``."""
    return _USERINFO.sub(lambda m: m.group("scheme") + "***@", url)


def _rebuild_exception(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    """An exception of ``cls`` made from its ``args`` without calling ``__init__`` (whose
    signature may differ from ``args``): what ``_reduce_exception`` rebuilds with."""
    exc = cls.__new__(cls, *args)
    exc.args = args
    return exc


def _reduce_exception(exc: BaseException) -> tuple[Any, ...]:
    """``__reduce__`` for an exception whose ``__init__`` does not take its ``args`` back
    (``BaseException``'s own calls ``cls(*args)``): rebuilt with the same ``args``
    (message) and attributes (``__dict__``, notes included), by pickle and
    ``copy.deepcopy`` alike."""
    return (_rebuild_exception, (type(exc), exc.args), exc.__dict__ or None)


class CouchcoreError(Exception):
    """Base class of every exception raised by couchcore.

    Each of them survives ``pickle`` and ``copy.deepcopy`` (e.g. raised in a
    ``multiprocessing`` worker and handed to the parent) with its message and all its
    attributes; ``__init__`` is not called again.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce_exception(self)


# -- bad input, detected before any request is sent -------------------------------


class InvalidInput(CouchcoreError, ValueError):
    """An argument cannot be turned into a valid CouchDB request."""


class InvalidDatabaseName(InvalidInput):
    """The database name does not match CouchDB's naming rules."""


class InvalidDocument(InvalidInput):
    """A document is not a JSON object or cannot be serialised as strict JSON."""


class InvalidField(InvalidDocument):
    """A document field has a value of the wrong type (e.g. a numeric ``_id``); ``field``
    names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidOption(InvalidInput):
    """An unknown option, or a value of the wrong type, for a CouchDB endpoint."""


class MissingRevision(InvalidInput):
    """An operation needs the document's ``_rev`` and it has none."""


# -- malformed responses ------------------------------------------------------------


class ResponseError(CouchcoreError):
    """The server's answer could not be understood."""


class ParseError(ResponseError):
    """A response body is not the JSON it should be (truncated, garbage, bad UTF-8)."""


# -- async use ------------------------------------------------------------------------


class WrongEventLoop(CouchcoreError, RuntimeError):
    """A streamed result of the async facade (a view, changes or attachment stream) was
    read on another asyncio event loop than the one that sent its request; read it on
    that loop. ``url``: the request's (credentials removed). Also a ``RuntimeError``,
    which asyncio raises for the same mistake."""

    def __init__(self, message: str, url: str | None = None) -> None:
        self.url = redact_url(url) if url else url
        super().__init__(f"{message} ({self.url})" if self.url else message)


# -- streamed results ---------------------------------------------------------------


class StreamConsumed(CouchcoreError, RuntimeError):
    """A streamed result (a view, ``_changes``, ``iterview``/``iterfind``) iterated a
    second time: its items are read once, as they arrive; keep them with ``.all()`` (or
    ``await .aall()``), or ask again. Also an ``open_attachment`` stream
    (:class:`~couchcore.AttachmentStream`) read or iterated a second time, or after
    ``close()``: keep the bytes of the first ``read()``, or open it again. Also a
    ``RuntimeError``."""


class StreamMisuse(CouchcoreError, TypeError):
    """A streamed result asked for what is not known while it streams (``len()`` or
    ``bool()`` during its iteration: use ``.all()`` first), used through the other
    flavour's API (a plain ``for`` over an async backend's result, ``async for`` over a sync
    one's), or indexed by key (``db.view(name)["k"]``, couchdb-python's idiom: a
    :class:`~couchcore.ViewResult` holds rows by position; ask ``view(name, key="k")``).
    Also a ``TypeError``, so ``list(result)`` still skips its length hint."""


# -- errors reported by the server -------------------------------------------------


class Headers(dict[str, str]):
    """A case-insensitive (lower-cased keys) header mapping: ``headers["Retry-After"]`` and
    ``headers.get("retry-after")`` find the same header, on every backend."""

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        pairs = items.items() if isinstance(items, Mapping) else items
        for k, v in pairs:
            self[k] = v

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        """The header ``key`` (any case), or ``default``."""
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    # every other way in or out of the dict by name goes through the lower-cased key too
    # (dict's own methods bypass __getitem__/__setitem__: update({"X-A": ..}) stored "X-A",
    # which get("X-A") then missed; copy() gave a plain dict)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key.lower())

    def pop(self, key: str, *default: Any) -> Any:
        """Remove the header ``key`` (any case) and return its value (or ``default``)."""
        return super().pop(key.lower(), *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        """The header ``key`` (any case), set to ``default`` first when missing."""
        return super().setdefault(key.lower(), default)

    def update(self, *args: Any, **kwargs: str) -> None:
        """Add headers (a mapping or ``(name, value)`` pairs, and keywords), names in any case."""
        for items in (*args, kwargs):
            if hasattr(items, "keys"):  # as dict.update: anything with keys() is a mapping
                for k in items.keys():
                    self[k] = items[k]
            else:
                for k, v in items:
                    self[k] = v

    def copy(self) -> Headers:
        """A case-insensitive copy."""
        return Headers(self)

    def __or__(self, other: Any) -> Headers:  # type: ignore[override]
        if not isinstance(other, Mapping):
            return NotImplemented
        new = self.copy()
        new.update(other)
        return new

    def __ior__(self, other: Any) -> Headers:  # type: ignore[override]
        self.update(other)
        return self


#: a cookie's value in a ``Set-Cookie`` header (``AuthSession=<token>; Version=1; ...``)
_COOKIE_VALUE = re.compile(r"(?P<name>^|,)(?P<pre>\s*[^=;,\s]+=)[^;,]*")


def _without_cookies(headers: Headers) -> Headers:
    """``headers``, or a copy whose ``Set-Cookie`` values are hidden: CouchDB refreshes a
    session's ``AuthSession`` cookie on any answer, errors too, and that cookie logs anyone
    in; an exception is logged, pickled and stored (its response's headers are untouched)."""
    cookie = headers.get("set-cookie")
    if not cookie:
        return headers
    hidden = headers.copy()
    hidden["set-cookie"] = _COOKIE_VALUE.sub(lambda m: m.group("name") + m.group("pre") + "<hidden>", cookie)
    return hidden


#: URLs longer than this many characters are shortened in exception messages (the
#: ``url`` attribute keeps the whole URL): a 9,000-character id made a 9 KB message
MESSAGE_URL_LIMIT = 240


def _short_url(url: str) -> str:
    """``url`` for a message: its head and tail around a note of how much was cut when
    longer than :data:`MESSAGE_URL_LIMIT`."""
    if len(url) <= MESSAGE_URL_LIMIT:
        return url
    head, tail = url[:120], url[-60:]
    return f"{head}...[{len(url) - len(head) - len(tail):,} characters cut]...{tail}"


class HTTPError(CouchcoreError):
    """The server answered with an error status.

    Attributes: ``status`` (int), ``error`` and ``reason`` (CouchDB's fields; for a
    body that is not CouchDB's ``{"error", "reason"}`` JSON -- a show/update/list
    function's plain text, a proxy's HTML page -- ``reason`` is that body's text, HTML
    tags dropped, credentials in URLs hidden, cut to 200 characters, and ``body`` the
    bytes; for a response without a body, such as the answer to a ``HEAD``, ``reason``
    is couchcore's own explanation, e.g. whether credentials were sent with a refused
    request; render functions: https://docs.couchdb.org/en/stable/ddocs/ddocs.html),
    ``method`` and ``url`` (the full URL, credentials removed; the message shows a URL
    over 240 characters shortened), ``headers`` (the response
    headers, a case-insensitive mapping: ``headers.get("Retry-After")``).
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
        self.headers = _without_cookies(headers if isinstance(headers, Headers) else Headers(headers or {}))
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
            msg += f" ({self.method} {_short_url(self.url)})"
        return msg

    def __str__(self) -> str:  # never KeyError's repr() of the message (see NotFoundKeyError)
        return self._message()

    def _rebase(self, base_url: str) -> None:
        """Make a path-only ``url`` (``/db/doc``) absolute, below ``base_url``."""
        if base_url and self.url and self.url.startswith("/"):
            self.url = redact_url(base_url.rstrip("/") + self.url)
            self.args = (self._message(),)


class BadRequest(HTTPError):
    """400: the request was malformed (``bad_request``, ``query_parse_error``, an invalid
    JSON body, an illegal database name or document id)."""

    status = 400


class Unauthorized(HTTPError):
    """401: no credentials, or wrong ones (``unauthorized``)."""

    status = 401


class Forbidden(HTTPError):
    """403: the credentials were accepted but lack the right (``forbidden``, also a
    validation function's verdict)."""

    status = 403


class NotFound(HTTPError):
    """404: the database, document, revision, attachment or design function is missing
    (``not_found``; ``reason`` says which, e.g. ``missing``, ``deleted``, ``Database does not exist.``)."""

    status = 404


class NotFoundKeyError(NotFound, KeyError):
    """A :class:`NotFound` raised by a mapping operation (``db[id]``, ``server[name]``,
    ``del db[id]``, ``del server[name]``), so ``except KeyError`` catches it as it does
    for every other Python mapping; ``except NotFound`` catches it too. Its text is
    the readable message of any :class:`HTTPError`, not ``KeyError``'s quoted repr.
    """

    @classmethod
    def from_error(cls, exc: NotFound) -> "NotFoundKeyError":
        """The same error (status, fields, URL, resolution) as a :class:`NotFoundKeyError`."""
        new = cls(exc.status, exc.error, exc.reason, exc.method, exc.url, exc.headers, exc.body)
        new.resolution = exc.resolution
        return new


class MethodNotAllowed(HTTPError):
    """405: the endpoint does not take this HTTP method (``method_not_allowed``)."""

    status = 405


class NotAcceptable(HTTPError):
    """406: the server cannot answer in a content type the request accepts."""

    status = 406


class Conflict(HTTPError):
    """409: the document was changed by another writer: the ``_rev`` sent is not the
    current one (``conflict``). Raised by :meth:`couchcore.Database.save` with the
    :class:`~couchcore.ConflictResolution` in ``resolution``."""

    status = 409


class Gone(HTTPError):
    """410: the resource existed once and was removed (e.g. a deleted replication job)."""

    status = 410


class PreconditionFailed(HTTPError):
    """412: a precondition failed: the database exists already (``file_exists``), an
    attachment stub is missing (``missing_stub``), or a header did not match."""

    status = 412


class RequestEntityTooLarge(HTTPError):
    """413: the request body is larger than the server accepts (``too_large``; CouchDB's
    ``[chttpd] max_http_request_size``, ``[couchdb] max_document_size``)."""

    status = 413


class UnsupportedMediaType(HTTPError):
    """415: the request's ``Content-Type`` is not one the endpoint takes (``bad_content_type``)."""

    status = 415


class ExpectationFailed(HTTPError):
    """417: a ``_bulk_docs`` request failed as a whole (CouchDB documents it for a
    document rejected by a validation function)."""

    status = 417


class TooManyRequests(HTTPError):
    """429: the server is rate-limiting this client; couchcore retries it after
    ``Retry-After`` (see ``retries``/``max_backoff``) before raising it."""

    status = 429


class ServerError(HTTPError):
    """A 5xx answer: the server failed (``unknown_error``, ``timeout`` while an index
    builds, a cluster without quorum, ...). A ``502``/``504`` answer to a write raises
    :class:`GatewayOutcomeUnknown`, a ``ServerError`` and an :class:`OutcomeUnknown`."""

    status = 500


#: a gateway's answers after which a write may have been forwarded (502, 504)
GATEWAY_STATUSES = frozenset({502, 504})

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


def error_for_status(status: int, write: bool = False) -> type[HTTPError]:
    """The :class:`HTTPError` subclass for an HTTP status code; ``write``: the answer is to
    a write (not idempotent), so a ``502``/``504`` is a :class:`GatewayOutcomeUnknown`."""
    if write and status in GATEWAY_STATUSES:
        return GatewayOutcomeUnknown
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return HTTPError


# -- transport failures ------------------------------------------------------------


class TransportError(CouchcoreError):
    """The request could not be completed at the network level.

    ``url`` (credentials removed), ``detail`` (the message without the URL), and
    ``aborted``: true when couchcore itself ended the request (the transport was
    closed, the call cancelled) rather than the network; such a request is not retried.
    """

    aborted: bool = False

    def __init__(self, message: str, url: str | None = None) -> None:
        self.url = redact_url(url) if url else url
        self.detail = message  # the message without the URL
        if self.url:
            message = f"{message} ({self.url})"
        super().__init__(message)


    def _rebase(self, base_url: str) -> None:
        """Make a path-only ``url`` (``/db/doc``: an operation's own) absolute, below ``base_url``."""
        if base_url and self.url and self.url.startswith("/"):
            self.url = redact_url(base_url.rstrip("/") + self.url)
            self.args = (f"{self.detail} ({self.url})",)


class ConnectionError(TransportError, builtins.ConnectionError):  # noqa: A001 - namespaced
    """The connection could not be made, or was lost mid-request.

    Also a Python :class:`builtins.ConnectionError` (and so an :class:`OSError`):
    ``except ConnectionError:`` written for the standard library catches it.
    """


class ConnectError(ConnectionError):
    """No connection could be established (refused, unresolvable host, unreachable
    network, TLS handshake failed or timed out): the request was certainly not sent,
    so it is always safe to try it again."""


class OutcomeUnknown(ConnectionError):
    """A write (``POST``, ``PUT``, ``DELETE``, ``COPY``) was sent, or may have been, and
    the connection broke before its response: the server may or may not have applied
    it. couchcore never re-sends such a write blindly (a re-sent write could meet its
    own success as a 409 ``Conflict``); read the document back to find out. A write
    whose answer did not come within the read timeout raises :class:`WriteTimeout`, an
    ``OutcomeUnknown`` too. Sending it again yourself: a ``409`` whose stored document
    equals the one you sent (apart from ``_rev``) was your first write, applied (take
    the stored ``_rev``); ``save(list)`` reports such documents in ``.pending`` with
    ``error`` ``"conflict"`` (see the "Errors and retries" guide).
    ``method`` and ``url`` name the request; ``__cause__`` is the transport error.
    """

    def __init__(self, message: str, url: str | None = None, method: str | None = None) -> None:
        super().__init__(message, url)
        self.method = method


class GatewayOutcomeUnknown(ServerError, OutcomeUnknown):
    """A ``502 Bad Gateway`` or ``504 Gateway Timeout`` answer to a write (``POST``,
    ``PUT``, ``DELETE``, ``COPY``; not a read-only ``POST`` such as ``_find``): a gateway
    or proxy in front of CouchDB answered, and it may have forwarded the write, which
    CouchDB may have applied. Both a :class:`ServerError` (``status``, ``error``,
    ``reason``, ``method``, ``url``, ``headers``, ``body`` as for every
    :class:`HTTPError`) and an :class:`OutcomeUnknown` (so also a
    :class:`ConnectionError`): ``except OutcomeUnknown:`` catches every write whose
    outcome is unknown. Never re-sent; read the document back to find out (see
    :class:`OutcomeUnknown`). A ``503`` is a plain :class:`ServerError`: the gateway
    usually did not forward the request.
    """

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
        # HTTPError.__init__ reaches OutcomeUnknown.__init__ with the message alone
        # (url, method None): set them again afterwards
        HTTPError.__init__(self, status, error, reason, method, url, headers, body)
        self.url = redact_url(url) if url else url
        self.method = method


class TimeoutError(TransportError, builtins.TimeoutError):  # noqa: A001
    """A connect or read timeout expired. Also a Python :class:`builtins.TimeoutError`."""


class ConnectTimeout(TimeoutError, ConnectError):
    """Connecting (TCP connect and TLS handshake) took longer than the connect timeout."""


class ReadTimeout(TimeoutError):
    """The server sent nothing for the read timeout (an idle timeout, in seconds)."""


class WriteTimeout(ReadTimeout, OutcomeUnknown):
    """A write (``POST``, ``PUT``, ``DELETE``, ``COPY``) was sent and its answer did not
    come within the read timeout: the server may or may not have applied it (CouchDB
    goes on with a request whose client stopped waiting). Both a :class:`ReadTimeout`
    (so also a :class:`TimeoutError` and Python's ``TimeoutError``) and an
    :class:`OutcomeUnknown` (so also a :class:`ConnectionError`): ``except
    OutcomeUnknown:`` catches every write whose outcome is unknown, timed out or cut.
    Never retried; read the document back to find out (a ``409`` when the same write is
    sent again, with a stored body equal to the one sent, means it was applied).
    ``method`` and ``url`` name the request; ``__cause__`` is the :class:`ReadTimeout`.
    """


class IndexBuildTimeout(TimeoutError):
    """:meth:`Database.build_view` gave up waiting: the view's index was not built within
    its ``timeout``. The server goes on building it; ``status`` holds the last progress
    seen (the dict handed to the ``progress`` callback)."""

    status: dict[str, Any] | None = None


class TLSError(ConnectError):
    """TLS handshake or certificate verification failed."""
