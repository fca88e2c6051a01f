"""Streamed results: rows parsed while the response arrives."""

from __future__ import annotations

from typing import Any, AsyncIterator, Iterator

from . import rows as _rows
from .errors import HTTPError, ServerError, error_for_status
from .models import Row

__all__ = ["ViewResult", "StreamedResult", "raise_stream_error"]

_ERROR_STATUS = {"not_found": 404, "unauthorized": 401, "forbidden": 403, "bad_request": 400,
                 "query_parse_error": 400, "conflict": 409, "timeout": 500}


def raise_stream_error(meta: dict, method: str, url: str) -> None:
    """Raise the error a server reported inside a 200 body (mid-stream or trailing)."""
    error = meta.get("error")
    if error is None:
        return
    status = _ERROR_STATUS.get(error, 500) if isinstance(error, str) else 500
    cls: type[HTTPError] = error_for_status(status) if status != 500 else ServerError
    raise cls(status, str(error), None if meta.get("reason") is None else str(meta.get("reason")), method, url)


class StreamedResult:
    """Items parsed incrementally from a response body (sync or async).

    Iterate it once with ``for`` (sync backends) or ``async for`` (async backends);
    ``len()``, indexing and :meth:`all` read every item into memory first. Use it as
    a context manager (or call :meth:`close`) to release the connection early.
    """

    _shape = "view"

    def __init__(self, response: Any, shape: str | None = None) -> None:
        self._response = response
        self._parser = _rows.make_parser(shape or self._shape)
        self._items: list | None = None
        self._started = False

    # -- metadata ----------------------------------------------------------------
    @property
    def meta(self) -> dict:
        """Header and trailer fields seen so far (``total_rows``, ``offset``, ...)."""
        return self._parser.meta

    @property
    def headers(self) -> Any:
        return self._response.headers

    # -- sync --------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        if self._items is not None:
            return iter(self._items)
        if self._is_async():
            raise TypeError(
                f"this {type(self).__name__} comes from an async backend: iterate it with 'async for'"
            )
        self._claim()
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        resp = self._response
        try:
            if resp.body is not None:
                yield from self._parser.feed(resp.body)
            else:
                for chunk in resp.stream:
                    items = self._parser.feed(chunk)
                    if items:
                        yield from items
            yield from self._parser.close()
            raise_stream_error(self._parser.meta, resp.method, resp.url)
        finally:
            resp.close()

    def all(self) -> list:
        """Every item, read into a list (sync)."""
        if self._items is None:
            if self._is_async():
                raise TypeError(f"this {type(self).__name__} comes from an async backend: use 'await .aall()'")
            self._claim()
            self._items = [item for item in self._iterate()]
        return self._items

    def __len__(self) -> int:
        if self._items is None and self._started:
            # also what list(result) hits while it streams: TypeError makes it skip the hint
            raise TypeError(f"len() of a {type(self).__name__} that is being streamed; use .all() first")
        return len(self.all())

    def __getitem__(self, index: Any) -> Any:
        return self.all()[index]

    def __bool__(self) -> bool:
        return True

    # -- async -------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[Any]:
        if self._items is not None:
            return _aiter_list(self._items)
        if self._is_sync_stream():
            raise TypeError(
                f"this {type(self).__name__} comes from a sync backend: iterate it with a plain 'for'"
            )
        self._claim()
        return self._aiterate()

    async def _aiterate(self) -> AsyncIterator[Any]:
        resp = self._response
        try:
            if resp.body is not None:
                for item in self._parser.feed(resp.body):
                    yield item
            else:
                async for chunk in resp.stream:
                    for item in self._parser.feed(chunk):
                        yield item
            for item in self._parser.close():
                yield item
            raise_stream_error(self._parser.meta, resp.method, resp.url)
        finally:
            resp.close()

    async def aall(self) -> list:
        """Every item, read into a list (async)."""
        if self._items is None:
            if self._is_sync_stream():
                raise TypeError(f"this {type(self).__name__} comes from a sync backend: use .all()")
            self._claim()
            self._items = [item async for item in self._aiterate()]
        return self._items

    # -- common ------------------------------------------------------------------
    def _is_async(self) -> bool:
        stream = self._response.stream
        return stream is not None and hasattr(stream, "__aiter__") and not hasattr(stream, "__iter__")

    def _is_sync_stream(self) -> bool:
        return self._response.stream is not None and not self._is_async()

    def _claim(self) -> None:
        if self._started:
            raise RuntimeError(
                f"this {type(self).__name__} was already iterated (it streams); use .all() to keep the items"
            )
        self._started = True

    def close(self) -> None:
        """Release the connection without reading the rest of the body."""
        self._response.close()

    def __enter__(self) -> "StreamedResult":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "StreamedResult":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


async def _aiter_list(items: list) -> AsyncIterator[Any]:
    for item in items:
        yield item


class ViewResult(StreamedResult):
    """The rows of a view or ``_all_docs`` query, parsed as they stream in.

    ``total_rows``, ``offset`` and ``update_seq`` are ``None`` until the server has
    sent them (at the start of the body for CouchDB, at the end with ``sorted=false``).
    """

    _shape = "view"

    @property
    def total_rows(self) -> int | None:
        return self._parser.meta.get("total_rows")

    @property
    def offset(self) -> int | None:
        return self._parser.meta.get("offset")

    @property
    def update_seq(self) -> Any:
        return self._parser.meta.get("update_seq")

    @property
    def rows(self) -> list[Row]:
        """All rows as a list (reads the whole result)."""
        return self.all()

    def __repr__(self) -> str:
        state = f"{len(self._items)} rows" if self._items is not None else "streaming"
        return f"<ViewResult {state} total_rows={self.total_rows}>"


class AttachmentStream:
    """A streamed attachment: iterate it for byte chunks (``for`` or ``async for``),
    or :meth:`read` it whole. ``content_type`` and ``length`` come from the headers."""

    def __init__(self, response: Any) -> None:
        self._response = response

    @property
    def content_type(self) -> str | None:
        return self._response.headers.get("content-type")

    @property
    def length(self) -> int | None:
        value = self._response.headers.get("content-length")
        return int(value) if value is not None else None

    @property
    def headers(self) -> Any:
        return self._response.headers

    def __iter__(self) -> Iterator[bytes]:
        stream = self._response.stream
        if stream is None:
            body = self._response.body
            return iter([body] if body else [])
        if not hasattr(stream, "__iter__"):
            raise TypeError("this AttachmentStream comes from an async backend: use 'async for'")
        return self._iterate(stream)

    def _iterate(self, stream: Iterator[bytes]) -> Iterator[bytes]:
        try:
            yield from stream
        finally:
            self._response.close()

    def __aiter__(self) -> AsyncIterator[bytes]:
        stream = self._response.stream
        if stream is not None and not hasattr(stream, "__aiter__"):
            raise TypeError("this AttachmentStream comes from a sync backend: use a plain 'for'")
        return self._aiterate(stream)

    async def _aiterate(self, stream: Any) -> AsyncIterator[bytes]:
        try:
            if stream is None:
                if self._response.body:
                    yield self._response.body
                return
            async for chunk in stream:
                yield chunk
        finally:
            self._response.close()

    def read(self) -> bytes:
        """The whole content (sync)."""
        return b"".join(self)

    async def aread(self) -> bytes:
        """The whole content (async)."""
        return b"".join([c async for c in self])

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> "AttachmentStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
