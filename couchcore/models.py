"""Value objects returned to users: Document, Row, Status, results of writes."""

from __future__ import annotations

from typing import Any, Callable, Mapping

__all__ = ["Document", "Row", "Status", "ConflictResolution", "Result"]


class Document(dict):
    """A CouchDB document: an insertion-ordered ``dict`` with attribute access.

    ``doc.title`` reads ``doc["title"]``; ``doc._id`` and ``doc._rev`` work too.
    Missing attributes raise :class:`AttributeError`.
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
        return Document(self)


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
        if not isinstance(other, Row):
            return NotImplemented
        return (self.id, self.key, self.value, self.doc, self.error) == (
            other.id,
            other.key,
            other.value,
            other.doc,
            other.error,
        )

    __hash__ = None  # type: ignore[assignment]

    def as_dict(self) -> dict:
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


class Result:
    """A non-JSON-only result (``list``, ``show``, ``update`` functions).

    ``body`` is decoded JSON when the response's content type is JSON, bytes otherwise;
    ``headers`` is a dict of response headers; ``status`` the HTTP status.
    """

    __slots__ = ("body", "headers", "status")

    def __init__(self, body: Any, headers: Mapping[str, str], status: int) -> None:
        self.body = body
        self.headers = dict(headers)
        self.status = status

    @property
    def text(self) -> str:
        """The body as text (JSON bodies re-serialised)."""
        if isinstance(self.body, bytes):
            return self.body.decode("utf-8", "replace")
        from .codec import dumps

        return dumps(self.body).decode("utf-8")

    def __repr__(self) -> str:
        return f"Result(status={self.status}, body={self.body!r})"


class Status:
    """The outcome of a request, handed to callbacks as ``callback(result, status)``.

    ``ok`` is true on success; ``code`` is the HTTP status (``None`` when no response
    arrived); ``error`` is the exception class (or ``None``) and ``exception`` the
    exception itself; ``headers`` and ``response`` describe the last response.
    """

    __slots__ = ("code", "exception", "headers", "response")

    def __init__(
        self,
        code: int | None = None,
        exception: BaseException | None = None,
        headers: Mapping[str, str] | None = None,
        response: Any = None,
    ) -> None:
        self.code = code
        self.exception = exception
        self.headers = dict(headers or {})
        self.response = response

    @property
    def ok(self) -> bool:
        return self.exception is None

    @property
    def error(self) -> type[BaseException] | None:
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
    every document that was not written. Nothing is dropped: every input document
    ends up in exactly one of the two.
    """

    def __init__(self, db: Any, resolved: dict | None = None, pending: dict | None = None) -> None:
        self._db = db
        self.resolved: dict[str, Document] = resolved if resolved is not None else {}
        self.pending: dict[str, dict] = pending if pending is not None else {}

    @property
    def ok(self) -> bool:
        """True when nothing is pending."""
        return not self.pending

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"<ConflictResolution resolved={len(self.resolved)} pending={len(self.pending)}>"

    def _docs(self) -> list:
        return [p["doc"] for p in self.pending.values()]

    def resolve(self) -> Any:
        """Retry the pending documents as they are (e.g. after editing them)."""
        return self._db._resolve(self, "retry")

    def overwrite(self) -> Any:
        """Replace the server's copy of every pending doc with the local one."""
        return self._db._resolve(self, "overwrite")

    def merge(self, fn: Callable[[Document, Document], Mapping | None]) -> Any:
        """Call ``fn(local, server)`` per conflict; write what it returns, skip ``None``."""
        return self._db._resolve(self, "merge", fn)

    def _absorb(self, other: "ConflictResolution") -> "ConflictResolution":
        """Fold the outcome of a retry into this resolution (in place) and return it."""
        for docid in other.resolved:
            self.pending.pop(docid, None)
        self.resolved.update(other.resolved)
        self.pending.update(other.pending)
        return self
