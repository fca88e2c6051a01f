"""Request and Response value objects: what operations yield and what drivers send back."""

from __future__ import annotations

import re

from typing import Any, AsyncIterator, Callable, Generator, Iterable, Iterator, Mapping, TypeVar, Union

from .. import codec
from ..errors import Headers, HTTPError, InvalidInput, TransportError, error_for_status, redact_url

__all__ = ["Request", "Response", "Headers", "Body", "Operation", "resend_on_5xx"]

#: A request body: bytes, a binary file object (streamed), or an iterable of byte chunks.
Body = Union[bytes, Any, Iterable[bytes], None]

JSON_TYPE = "application/json"


# a media type (RFC 6838 4.2: ASCII) with its parameters: visible ASCII, spaces and tabs inside
_MEDIA_TYPE = re.compile(r"[!-~]([ \t!-~]*[!-~])?\Z")


def check_media_type(value: object, name: str = "content_type") -> str:
    """``value`` if it can be sent as a ``Content-Type`` (a media type such as
    ``text/plain; charset=utf-8``: ASCII without control characters), else
    :class:`~couchcore.errors.InvalidInput`: a CR/LF would end the header (pycurl sends
    the rest as a header of its own), a character beyond Latin-1 raised the backend's
    ``UnicodeEncodeError``, one beyond ASCII is stored mangled."""
    if not isinstance(value, str) or not _MEDIA_TYPE.match(value):
        shown = repr(value) if len(repr(value)) <= 60 else f"a {type(value).__name__}"
        raise InvalidInput(f"{name} must be a media type such as 'text/plain' or 'image/png' "
                           f"(ASCII, no control characters), got {shown}")
    return value


#: a whole path segment that is "." or ".." (see Request.target)
_DOT_SEGMENT = re.compile(r"(?<=/)\.\.?(?=/|$)")


class Request:
    """One HTTP request, independent of any transport.

    ``path`` is the percent-encoded absolute path below the server's base URL;
    ``query`` a list of already-encoded ``(name, value)`` pairs; ``body`` bytes, a
    file object or an iterator of chunks. With ``stream=True`` the transport returns
    the response body as an iterator of chunks instead of bytes. ``timeout`` overrides
    the read timeout (``None``: the transport's default). ``idempotent`` tells the
    retry policy whether sending the request twice is harmless (default: for GET, HEAD
    and OPTIONS; an operation sets it for a read-only POST such as ``_find``). ``delay``
    (seconds, default 0) is how long the driver waits before sending it: an operation
    backing off, e.g. before re-reading a document other writers keep changing.
    """

    __slots__ = ("method", "path", "query", "headers", "body", "stream", "timeout", "idempotent", "delay")

    def __init__(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        json: Any = None,
        stream: bool = False,
        timeout: float | None = None,
        idempotent: bool | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query = list(query or ())
        self.headers: dict[str, str] = {"Accept": JSON_TYPE}
        if json is not None:
            body = codec.dumps(json)
            self.headers["Content-Type"] = JSON_TYPE
        for name, value in (headers or {}).items():  # names are case-insensitive: one of each
            for existing in [k for k in self.headers if k.lower() == name.lower()]:
                del self.headers[existing]
            self.headers[name] = value
        self.body = body
        self.stream = stream
        self.timeout = timeout
        self.idempotent = method in ("GET", "HEAD", "OPTIONS") if idempotent is None else idempotent
        self.delay = 0.0

    @property
    def replayable(self) -> bool:
        """Whether the body can be sent again as it is (none, bytes or text): a file object
        or an iterator of chunks is consumed by the first send, so such a request is never
        retried nor sent to another node."""
        return self.body is None or isinstance(self.body, (bytes, bytearray, str))

    @property
    def target(self) -> str:
        """Path plus encoded query string.

        A path segment that is exactly ``.`` or ``..`` (an id, attachment or function
        name) is sent as ``%2E`` / ``%2E%2E``: urllib3 and libcurl would otherwise remove
        dot segments (RFC 3986 section 5.2.4), so that ``DELETE /db/doc/..`` became
        ``DELETE /db/``. CouchDB decodes the escapes back to the same name.
        """
        path = self.path
        if "/." in path:
            path = _DOT_SEGMENT.sub(lambda m: "%2E" * len(m.group()), path)
        if not self.query:
            return path
        from urllib.parse import urlencode

        return path + "?" + urlencode(self.query, safe="", quote_via=_quote)  # type: ignore[arg-type]  # (typeshed: an overloaded protocol)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target}>"


def _missing_reason(status: int, auth_sent: bool | None) -> str | None:
    """The reason couchcore gives an error response that had none (a HEAD has no body)."""
    if status == 401:
        if auth_sent is False:
            return "authentication required: no credentials were sent (pass auth=(user, password))"
        if auth_sent:
            return "credentials were rejected: wrong user name or password"
        return "authentication required"
    if status == 403:
        if auth_sent is False:
            return "forbidden: no credentials were sent, and anonymous access is not allowed here"
        if auth_sent:
            return "forbidden: the credentials were accepted, but this user may not access it"
        return "forbidden"
    try:
        from http import HTTPStatus

        return HTTPStatus(status).phrase
    except ValueError:
        return None


#: a request target longer than this many bytes that gets a bodiless 400 was refused for
#: its length (CouchDB: request lines over about 8 KB; 5,000-character ids pass on 3.5)
LONG_TARGET = 4000


def _long_line_reason(method: str, url: str) -> str | None:
    """The reason for a bodiless 400 to a request whose target is long: CouchDB's HTTP
    layer refused the request line (``None`` for a short one)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    target = len(parts.path) + (len(parts.query) + 1 if parts.query else 0)
    if target <= LONG_TARGET:
        return None
    return (f"the request line is {len(method) + target + 10:,} bytes; CouchDB refuses request lines over "
            "about 8 KB: this document id, attachment name or key is too long for a URL")


#: at most this many characters of an error body's text go into an exception's ``reason``
BODY_TEXT_LIMIT = 200
_SPACES = re.compile(r"\s+")


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _strip_tags(text: str) -> str:
    """``text`` without HTML markup, each tag, comment and script/style element made one
    space, in one pass (a regex with lazy ``.*?`` takes quadratic time on many unclosed
    ``<!--``); an unclosed comment or script/style element drops the rest, an unclosed
    tag is kept as text."""
    low = text.translate(_ASCII_LOWER)  # str.lower() may change the length ('\u0130')
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("<", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        out.append(" ")
        element = next((name for name in ("script", "style") if low.startswith("<" + name, j)
                        and not low[j + 1 + len(name):j + 2 + len(name)].isalnum()), None)
        if low.startswith("<!--", j):
            end = text.find("-->", j + 4)
            i = n if end < 0 else end + 3
        elif element is not None:
            close = low.find("</" + element, j)
            end = -1 if close < 0 else text.find(">", close)
            i = n if end < 0 else end + 1
        else:
            end = text.find(">", j + 1)
            if end < 0:  # no '>' anywhere after: the rest is text
                out[-1] = text[j:]
                break
            i = end + 1
    return "".join(out)


def _body_text(body: bytes) -> str | None:
    """The text of an error response's non-JSON (or non-error JSON) body for ``reason``:
    decoded (UTF-8, bad bytes replaced), HTML tags dropped, whitespace runs made one
    space, credentials in URLs hidden, cut to :data:`BODY_TEXT_LIMIT` characters (saying
    how long it was); ``None`` if nothing is left."""
    import html

    text = bytes(body[:64 * 1024]).decode("utf-8", "replace")
    if "<" in text:
        text = html.unescape(_strip_tags(text))
    text = _SPACES.sub(" ", text).strip()
    if not text:
        return None
    text = redact_url(text)
    if len(text) > BODY_TEXT_LIMIT or len(body) > 64 * 1024:
        return text[:BODY_TEXT_LIMIT].rstrip() + f"... (body of {len(body)} bytes, cut)"
    return text


def _quote(s: str, safe: str = "", encoding: Any = None, errors: Any = None) -> str:
    from urllib.parse import quote

    return quote(s, safe=safe)


class Response:
    """An HTTP response as handed back by a transport.

    ``body`` holds the whole body (bytes) unless the request asked to stream, in
    which case ``stream`` is an iterator (sync transports) or async iterator (async
    transports) of byte chunks and ``body`` is ``None``. Drivers always read the body
    of an error response, so operations can inspect it. ``write`` is true when the
    request was a write (not idempotent): :meth:`error` then makes a ``502``/``504`` a
    :class:`~couchcore.errors.GatewayOutcomeUnknown`.
    """

    __slots__ = ("status", "headers", "body", "stream", "method", "url", "_close", "auth_sent", "write")

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes | None = None,
        stream: Iterator[bytes] | AsyncIterator[bytes] | None = None,
        method: str = "",
        url: str = "",
        close: Any = None,
        auth_sent: bool | None = None,
    ) -> None:
        self.status = status
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = body
        self.stream = stream
        self.method = method
        self.url = url
        self._close = close
        self.auth_sent = auth_sent  # did the request carry credentials? (None: unknown)
        self.write = False  # the answer to a write (not idempotent): set by the drivers

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        """The media type of ``Content-Type``, lower-case, without parameters (``""`` if absent)."""
        return str(self.headers.get("content-type", "")).split(";")[0].strip().lower()

    @property
    def is_json(self) -> bool:
        """Whether the body is labelled JSON."""
        ct = self.content_type
        return ct == JSON_TYPE or ct.endswith("+json")

    def close(self) -> None:
        """Release the connection of a streamed response (idempotent)."""
        close, self._close = self._close, None
        if close is not None:
            close()

    def read(self) -> bytes:
        """Read a streamed body to the end (sync) and return it."""
        if self.body is None:
            try:
                self.body = b"".join(self.stream or ())  # type: ignore[arg-type]
            finally:
                self.stream = None
                self.close()
        return self.body

    async def aread(self) -> bytes:
        """Read a streamed body to the end (async) and return it."""
        if self.body is None:
            chunks = []
            try:
                async for chunk in self.stream:  # type: ignore[union-attr]
                    chunks.append(chunk)
            finally:
                self.stream = None
                self.close()
            self.body = b"".join(chunks)
        return self.body

    def error(self) -> HTTPError:
        """The couchcore exception describing this (error) response."""
        error = reason = None
        data: Any = self.body
        if self.body:
            try:
                data = codec.loads(self.body)
            except Exception:
                data = self.body
            # a list of per-document errors (CouchDB's 417 to _bulk_docs with
            # all_or_nothing): the first says what the server refused
            first = data[0] if isinstance(data, list) and data else None
            if isinstance(first, dict) and "error" in first:
                error = first.get("error")
                reason = first.get("reason")
            elif isinstance(data, dict):
                error = data.get("error")
                reason = data.get("reason")
            if error is not None and not isinstance(error, str):
                error = str(error)
            if reason is not None and not isinstance(reason, str):
                reason = str(reason)
        if reason is None and error is None and self.body:
            # a body that is not CouchDB's {"error","reason"} (a show/update/list function's
            # plain text, a proxy's HTML page): its own words, not a guess
            reason = _body_text(self.body)
        if reason is None and self.status == 400 and error is None:
            reason = _long_line_reason(self.method, self.url)
        if reason is None:  # no body (HEAD): say what we know
            reason = _missing_reason(self.status, self.auth_sent)
        cls = error_for_status(self.status, self.write)
        return cls(self.status, error, reason, self.method, self.url, self.headers, data)

    def raise_for_status(self) -> "Response":
        """Return the response, or raise the :class:`~couchcore.errors.HTTPError` for its error status."""
        if not self.ok:
            raise self.error()
        return self

    def json(self) -> Any:
        """The decoded JSON body; raises the matching :class:`HTTPError` for an error status."""
        if not self.ok:
            raise self.error()
        if self.body is None:
            raise RuntimeError("json() on a streamed response; read it first")
        return codec.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.method} {self.url}>"


_T = TypeVar("_T")

#: A protocol operation returning ``T``: a generator that yields :class:`Request`,
#: receives :class:`Response` and returns its result (data: dicts, Documents,
#: streamed results), run unchanged by every driver, sync or async.
Operation = Generator[Request, Response, _T]


def resend_on_5xx(build: Callable[[], Request], attempts: int, step: float = 0.25,
                  transport_errors: bool = False, wait: float = 0.0) -> Operation[Response]:
    """Sub-operation: send the request ``build()`` makes, and a fresh one again after a
    ``5xx`` or ``429`` answer (with ``transport_errors``, also after a
    :class:`~couchcore.errors.TransportError` that couchcore did not abort itself),
    ``attempts`` (at least 1) in all, the n-th resend ``step * n`` seconds after the previous answer (``Request.delay``,
    which every driver honours). Returns the last answer, whatever its status (the
    caller reads it; a retried one is closed), or raises the last ``TransportError``
    (the first one, without ``transport_errors``). For requests that are safe to send
    twice only (a read, or a write that stores the same revision each time); these
    resends are the operation's own, on top of the driver's
    :class:`~couchcore._drivers.RetryPolicy` (which resends a ``429`` and a broken
    connection as the Server's ``retries`` allow, never a ``5xx``). ``wait``: seconds
    before the first send."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts!r}")
    attempt = 0
    while True:
        request = build()
        request.delay = step * attempt if attempt else wait
        attempt += 1
        try:
            response = yield request
        except TransportError as exc:
            if not transport_errors or attempt == attempts or exc.aborted:
                raise  # (aborted: couchcore itself ended it, e.g. the Server was closed)
            continue
        if attempt == attempts or not (response.status >= 500 or response.status == 429):
            return response
        response.close()
