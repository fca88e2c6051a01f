"""Value objects returned to users: Document, Row, Status, results of writes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Mapping, Protocol

from . import codec
from .errors import ParseError, _without_cookies
from .protocol.messages import Headers, Response

# imported at run time, not only for type checkers: typing.get_type_hints() of the public
# API (typeguard, pydantic, IDEs' runtime inspection) resolves these names in this module
from .protocol.shapes import PendingWrite

__all__ = ["Document", "Row", "Status", "ConflictResolution", "AsyncConflictResolution", "Result"]

#: what ``merge=`` of :meth:`ConflictResolution.merge` takes: ``fn(local, server)`` returns the
#: document to write, or ``None`` to skip it
MergeFunction = Callable[["Document", "Document"], "Mapping[str, Any] | None"]


class Document(dict[str, Any]):
    """A CouchDB document: an insertion-ordered ``dict`` with attribute access.

    ``doc.title`` reads ``doc["title"]``; ``doc._id`` and ``doc._rev`` work too.
    Missing attributes raise :class:`AttributeError`. A field named like a ``dict``
    method (``items``, ``keys``, ``values``, ``get``, ``copy``, ``update``, ``pop``, ...)
    is read as ``doc["items"]``: ``doc.items`` is the method, and ``doc.items = [...]``
    sets the field while ``doc.items`` stays the method.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"Document({dict.__repr__(self)})"

    def copy(self) -> "Document":
        """A shallow copy, still a :class:`Document`."""
        return Document(self)


#: the pure-Python Document above; ``Document`` is the extension type
#: ``couchcore_ext._document.Document`` instead when that is built (same behaviour; ``doc[key]``
#: through dict's own C slot, not a method call), unless ``COUCHCORE_ROWS_BACKEND=python`` asks
#: for no compiled row code
_PyDocument = Document

if not TYPE_CHECKING and os.environ.get("COUCHCORE_ROWS_BACKEND", "").strip().lower() != "python":
    try:
        from couchcore_ext._document import Document
    except Exception:  # not built, or a stale build (ImportError, ABI mismatch): the class above
        pass


class Row:
    """One row of a view, ``_all_docs`` or ``keys=`` query.

    ``id`` is ``None`` for reduce rows and for ``keys=`` rows that matched nothing
    (those carry ``error``, e.g. ``"not_found"``); ``doc`` is set only with
    ``include_docs``.
    """

    __slots__ = ("id", "key", "value", "doc", "error")

    def __init__(
        self,
        id: str | None = None,
        key: Any = None,
        value: Any = None,
        doc: "Document | None" = None,
        error: str | None = None,
    ) -> None:
        self.id = id
        self.key = key
        self.value = value
        self.doc = doc
        self.error = error

    def __repr__(self) -> str:
        fields = [f"id={self.id!r}", f"key={self.key!r}", f"value={self.value!r}"]
        if self.doc is not None:
            fields.append(f"doc={self.doc!r}")
        if self.error is not None:
            fields.append(f"error={self.error!r}")
        return f"Row({', '.join(fields)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _PyRow):
            return NotImplemented
        return (self.id, self.key, self.value, self.doc, self.error) == (
            other.id,
            other.key,
            other.value,
            other.doc,
            other.error,
        )

    __hash__ = None  # type: ignore[assignment]

    def as_dict(self) -> dict[str, Any]:
        """The row as CouchDB sent it (only the fields that were present)."""
        d: dict[str, Any] = {}
        if self.id is not None:
            d["id"] = self.id
        d["key"] = self.key
        if self.error is not None:
            d["error"] = self.error
        else:
            d["value"] = self.value
        if self.doc is not None:
            d["doc"] = self.doc
        return d


#: the pure-Python Row above; ``Row`` is the extension type ``couchcore_ext._row.Row``
#: instead when that is built (same behaviour, a free list for the row parser's allocations),
#: unless ``COUCHCORE_ROWS_BACKEND=python`` asks for no compiled row code
_PyRow = Row

if not TYPE_CHECKING and os.environ.get("COUCHCORE_ROWS_BACKEND", "").strip().lower() != "python":
    try:
        from couchcore_ext._row import Row
    except Exception:  # not built, or a stale build (ImportError, ABI mismatch): the class above
        pass


class Result:
    """The answer of a show, list or update function (any status below 400).

    * ``status``: the HTTP status (``200``, ``201``, ``202``, ``302``, ...);
    * ``headers``: the response headers, a case-insensitive mapping
      (``result.headers["Location"]``);
    * ``raw``: the body bytes exactly as received;
    * ``content_type``: the media type, lower-case, without parameters (``"text/html"``;
      ``""`` when the response has none);
    * ``charset``: the declared ``charset`` parameter, else ``"utf-8"`` for JSON (RFC 8259)
      and for textual types (``text/*``, XML, JavaScript: CouchDB's query server writes
      UTF-8), else ``None`` (binary output such as ``image/png``);
    * ``body``: the decoded JSON value when the content type is JSON *and* the body parses
      as JSON, otherwise ``raw`` (a list function that sends ``head...tail`` is labelled
      ``application/json`` by CouchDB unless it sets another type);
    * ``text``: the body decoded with ``charset`` (undecodable bytes replaced), ``None``
      when no charset is known.

    https://docs.couchdb.org/en/stable/api/ddoc/render.html
    """

    __slots__ = ("raw", "headers", "status", "content_type", "charset", "body")

    def __init__(self, raw: bytes, headers: Mapping[str, str] | Iterable[tuple[str, str]], status: int) -> None:
        self.raw: bytes = bytes(raw or b"")
        self.headers: Mapping[str, str] = headers if isinstance(headers, Headers) else Headers(headers)
        self.status = status
        content_type = self.headers.get("content-type", "")
        media, _, params = content_type.partition(";")
        self.content_type: str = media.strip().lower()
        self.charset: str | None = _charset(self.content_type, params)
        self.body: Any = self.raw
        if self.raw and _is_json(self.content_type):
            try:
                self.body = codec.loads(self.raw)
            except ParseError:
                pass  # labelled JSON but is not: the raw bytes

    @property
    def text(self) -> str | None:
        """The body as text, decoded with :attr:`charset`; ``None`` when no charset is known."""
        if self.charset is None:
            return None
        try:
            return self.raw.decode(self.charset, "replace")
        except LookupError:  # a charset Python does not know
            return None

    def __repr__(self) -> str:
        return f"Result(status={self.status}, content_type={self.content_type!r}, body={self.body!r})"


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


_TEXTUAL = ("application/javascript", "application/xml", "application/xhtml+xml", "application/ecmascript")


def _charset(media: str, params: str) -> str | None:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"'):
            return value.strip().strip('"').lower()
    if _is_json(media) or media.startswith("text/") or media in _TEXTUAL or media.endswith("+xml"):
        return "utf-8"
    return None


class Status:
    """The outcome of a request, handed to callbacks as ``callback(result, status)``.

    ``ok`` is true on success; ``code`` is the HTTP status (``None`` when no response
    arrived); ``error`` is the exception class (or ``None``) and ``exception`` the
    exception itself; ``headers`` (str to str, case-insensitive) and ``response`` (a
    :class:`~couchcore.protocol.messages.Response`, ``None`` when none arrived) describe
    the last response. A ``Set-Cookie`` value in ``headers`` is shown as ``<hidden>`` (CouchDB
    refreshes a session's ``AuthSession`` cookie on any answer, and a status is often logged or
    kept); ``response.headers`` has it as sent.
    """

    __slots__ = ("code", "exception", "headers", "response")

    def __init__(
        self,
        code: int | None = None,
        exception: BaseException | None = None,
        headers: Mapping[str, str] | None = None,
        response: Response | None = None,
    ) -> None:
        self.code = code
        self.exception = exception
        self.headers: dict[str, str] = _without_cookies(
            headers if isinstance(headers, Headers) else Headers(headers or {})
        )
        self.response = response

    @property
    def ok(self) -> bool:
        """True when the request succeeded (no exception)."""
        return self.exception is None

    @property
    def error(self) -> type[BaseException] | None:
        """The exception's class (e.g. :class:`~couchcore.errors.NotFound`), ``None`` on success."""
        return type(self.exception) if self.exception is not None else None

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        if self.ok:
            return f"Status(ok, code={self.code})"
        return f"Status(error={self.error.__name__}, code={self.code})"  # type: ignore[union-attr]


class ConflictResolution:
    """The result of :meth:`Database.save`.

    ``resolved`` maps ``_id`` to each document written (its ``_id``/``_rev`` updated in
    place); ``pending`` maps ``_id`` to ``{"doc": doc, "error": ..., "reason": ...}`` for
    every document that was not written (a ``str`` key always: a document whose ``_id`` is
    not a string, refused before sending, is keyed by ``"_id:"`` and that ``_id``'s JSON text, ``"_id:5"``). Nothing is dropped: every input document
    ends up in exactly one of the two (when one list holds the same ``_id`` twice and
    one of them was written and another not, that id is in both; ``pending`` keeps the
    failure; when several of them were refused, ``pending[id]`` holds the last and its
    ``others`` the earlier ones, see :class:`~couchcore.protocol.shapes.PendingWrite`).

    ``accepted`` holds the ids (all of them also in ``resolved``) that a CouchDB
    cluster stored on fewer copies than its write quorum (``202 Accepted``, ``"accepted":
    true``): written, and spread to the other copies by the cluster later, so a read
    through another copy may not see them yet. A write CouchDB accepted this way but
    that lost to another revision on the other copies is not resolved: it is pending
    as a ``conflict`` (see :func:`couchcore.protocol.documents.save_docs`). A create of
    an id the cluster already held with an identical body also comes back this way (the
    same body makes the same revision, so it is the caller's own): an id in ``accepted``
    holds the body sent, but it may have been there before, written by someone else (to
    claim an id, write a body of your own: see :meth:`Database.save`).
    CouchDB: https://docs.couchdb.org/en/stable/cluster/theory.html

    :meth:`resolve`, :meth:`overwrite` and :meth:`merge` write the pending documents
    again and return a new ConflictResolution; on the async facade they return an
    awaitable of it, and type checkers see that facade's resolutions as
    :class:`AsyncConflictResolution`. Several refused writes of one id (``others``) are
    treated as writing the list one document at a time would: :meth:`merge` merges each
    of them in turn, in the caller's order; :meth:`resolve` and :meth:`overwrite` write
    the last one, which supersedes the earlier ones (they leave ``pending`` once it is
    written, and stay in its ``others`` while it is refused).
    """

    def __init__(self, db: Any, resolved: dict[str, Any] | None = None, pending: dict[str, Any] | None = None) -> None:
        self._db = db
        self.resolved: dict[str, dict[str, Any]] = resolved if resolved is not None else {}
        self.pending: dict[str, PendingWrite] = pending if pending is not None else {}
        self.accepted: set[str] = set()
        self._unknown: dict[str, BaseException] = {}  # id -> the OutcomeUnknown of a pending "unknown_outcome"

    @property
    def ok(self) -> bool:
        """True when nothing is pending."""
        return not self.pending

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"<ConflictResolution resolved={len(self.resolved)} pending={len(self.pending)}>"

    def _docs(self) -> list[Any]:
        return [p["doc"] for p in self.pending.values()]

    def resolve(self) -> "ConflictResolution":
        """Retry the pending documents as they are (e.g. after editing them); returns the
        new resolution (an awaitable of it on the async facade). Of an id pending with
        ``others`` only the last document (``pending[id]["doc"]``) is sent: it supersedes
        the earlier ones, which leave ``pending`` once it is written and stay in its
        ``others`` while it is refused."""
        again: ConflictResolution = self._db._resolve(self, "retry")
        return again

    def overwrite(self) -> "ConflictResolution":
        """Replace the server's copy of every pending doc with the local one (its ``_rev``
        set to the server's current revision, or removed where the document is gone);
        returns the new resolution (an awaitable of it on the async facade). Of an id
        pending with ``others`` only the last document is written: it supersedes the
        earlier ones (last write wins, as writing the list one document at a time would),
        which leave ``pending`` once it is written and stay in its ``others`` while it is
        refused."""
        again: ConflictResolution = self._db._resolve(self, "overwrite")
        return again

    def merge(self, fn: MergeFunction) -> "ConflictResolution":
        """Call ``fn(local, server)`` per conflict (``server``: the current
        :class:`Document`, ``None`` where it is missing or deleted) and write what it
        returns at the server's current revision, into ``local`` (updated in place);
        ``None`` skips: that document stays pending. Returns the new resolution (an
        awaitable of it on the async facade).

        ``fn`` is called once per write of an id, in the caller's order: for an id pending
        with ``others`` (a list held it several times and each was refused) it gets the
        first with the server's document, then the next with what the previous call
        returned (``_id``/``_rev`` the server's), and so on; one document, the result of
        the last call, is written, into the last document ``fn`` did not skip. A write
        ``fn`` skips stays pending (also when the others are written); when the merged
        write is refused again the id is pending with it, the merged document."""
        again: ConflictResolution = self._db._resolve(self, "merge", fn)
        return again


class AsyncConflictResolution(Protocol):
    """A :class:`ConflictResolution` of the async facade (what ``await db.save(...)``
    gives), as type checkers see it: the same attributes, and :meth:`resolve`,
    :meth:`overwrite` and :meth:`merge` return an awaitable of the next resolution.
    At run time it is a ConflictResolution; this is a protocol (annotations only, not
    ``isinstance``)."""

    resolved: dict[str, dict[str, Any]]
    pending: dict[str, PendingWrite]
    accepted: set[str]

    @property
    def ok(self) -> bool:
        """True when nothing is pending."""
        ...

    def __bool__(self) -> bool: ...

    def resolve(self) -> Awaitable["AsyncConflictResolution"]:
        """Retry the pending documents as they are."""
        ...

    def overwrite(self) -> Awaitable["AsyncConflictResolution"]:
        """Replace the server's copy of every pending doc with the local one."""
        ...

    def merge(self, fn: MergeFunction) -> Awaitable["AsyncConflictResolution"]:
        """Call ``fn(local, server)`` per conflict; write what it returns, skip ``None``."""
        ...
