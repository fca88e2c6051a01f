"""Streamed results: rows parsed while the response arrives."""

from __future__ import annotations

from collections import deque
from itertools import chain
from typing import (TYPE_CHECKING, Any, AsyncIterator, Generator, Generic, ItemsView, Iterator, KeysView, Literal,
                    Mapping, Protocol, SupportsIndex, TypeVar, ValuesView, cast, overload)

from . import _rows

try:  # the iterator that hands the items over from C (couchcore_ext._row.Items), if built
    from couchcore_ext._row import Items as _CItems
except ImportError:  # pragma: no cover - the extension is not built
    _CItems = None
from .errors import CouchcoreError, HTTPError, ServerError, StreamConsumed, StreamMisuse, error_for_status
from .models import Row
from .protocol.shapes import ChangesResponse, Seq

__all__ = ["ViewResult", "ChangesResult", "StreamedResult", "AttachmentStream", "AsyncStreamedResult",
           "AsyncViewResult", "AsyncAttachmentStream", "raise_stream_error"]

_ERROR_STATUS = {"not_found": 404, "unauthorized": 401, "forbidden": 403, "bad_request": 400,
                 "query_parse_error": 400, "conflict": 409, "timeout": 500}


def raise_stream_error(meta: dict[str, Any], method: str, url: str) -> None:
    """Raise the error a server reported inside a 200 body (mid-stream or trailing)."""
    exc = _stream_error(meta, method, url)
    if exc is not None:
        raise exc


def _stream_error(meta: dict[str, Any], method: str, url: str) -> HTTPError | None:
    """The exception for ``meta``'s ``error``/``reason`` (``None`` without an ``error``):
    the class of the status CouchDB gives that error elsewhere, else :class:`ServerError`."""
    error = meta.get("error")
    if error is None:
        return None
    status = _ERROR_STATUS.get(error, 500) if isinstance(error, str) else 500
    cls: type[HTTPError] = error_for_status(status) if status != 500 else ServerError
    return cls(status, str(error), None if meta.get("reason") is None else str(meta.get("reason")), method, url)


def docs_of_rows(rows: list[Row], method: str, url: str) -> list[Any]:
    """The ``doc`` of each row of an ``_all_docs?keys&include_docs`` answer, ``None`` for a
    ``keys=`` miss (or a deleted document); a row with another ``error`` (a document
    CouchDB could not open) raises its :class:`HTTPError`, as :class:`ViewResult` does."""
    for row in rows:
        if row.error is not None and row.error != _DATA_ROW_ERROR:
            raise cast(HTTPError, _stream_error({"error": row.error, "reason": row.value}, method, url))
    return [row.doc if row.error is None and row.doc is not None else None for row in rows]


#: The error of a view row that is data: a ``keys=`` key that matched nothing.
_DATA_ROW_ERROR = "not_found"


_I = TypeVar("_I")  # the items: Row of a view, the change dicts of _changes
_D = TypeVar("_D")
_P = TypeVar("_P")


class StreamedResult(Generic[_I]):
    """Items parsed incrementally from a response body (sync or async).

    Iterate it once with ``for`` (sync backends) or ``async for`` (async backends);
    ``len()``, indexing and :meth:`all` read every item into memory first, and so only
    before the iteration has begun (during it, ``len()`` raises :class:`StreamMisuse`);
    a second iteration raises :class:`StreamConsumed` (the items were read once: keep
    them with :meth:`all`). Use it as a context manager (or call :meth:`close`) to
    release the connection early.

    Metadata (the body's top-level fields other than the items) can be read ahead of
    the items: the items parsed on the way are kept and still yielded, in order, by
    the iteration (see :meth:`read_meta` and :meth:`ameta`).

    For type checkers this class is the sync flavour's result (``for``, ``len()``,
    :meth:`all`, :meth:`read_meta`); a result of the async facade is declared as
    :class:`AsyncStreamedResult` (``async for``, :meth:`aall`, :meth:`ameta`), so using
    the other flavour's methods, which raise :class:`StreamMisuse` (a ``TypeError``) at
    run time, is a type error.
    """

    _shape = "view"

    def __init__(self, response: Any, shape: str | None = None) -> None:
        self._response = response
        self._parser = _rows.make_parser(shape or self._shape)
        self._items: list[Any] | None = None
        self._started = False
        self._ahead: deque[Any] = deque()  # items parsed while reading ahead, not yet yielded
        self._chunks: Any = None  # the body's chunk iterator once reading has begun
        self._finished = False  # the whole body has been parsed
        self._closed = False
        self._error: BaseException | None = None  # a stream error, raised after the items before it
        self._with_docs: bool | None = None  # ViewResult: include_docs=true was asked (known at the first rows)

    # -- metadata ----------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        """Header and trailer fields seen so far (``total_rows``, ``offset``, ...)."""
        return self._parser.meta

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers (a case-insensitive mapping of str to str)."""
        headers: Mapping[str, str] = self._response.headers
        return headers

    def read_meta(self, *names: str) -> dict[str, Any]:
        """Read ahead (sync) until every field in ``names`` is known, or to the end of the body.

        With no ``names``: until the first item has arrived (everything the server
        sends before the items is known then). Items parsed on the way are kept and
        yielded later by the iteration. Returns :attr:`meta`. Fields that come after
        the items (or never) make this read the whole body into memory.
        """
        if self._is_async():
            raise StreamMisuse(f"this {type(self).__name__} comes from an async backend: use 'await .ameta()'")
        while not self._meta_known(names):
            items = self._pull()
            if items is None:
                break
            self._ahead.extend(items)
        return self._parser.meta

    if not TYPE_CHECKING:  # the async flavour's (declared by AsyncStreamedResult)
        async def ameta(self, *names: str) -> dict[str, Any]:
            """Async :meth:`read_meta`: ``meta = await result.ameta("total_rows")``."""
            if self._is_sync_stream():
                raise StreamMisuse(f"this {type(self).__name__} comes from a sync backend: use .read_meta()")
            while not self._meta_known(names):
                items = await self._apull()
                if items is None:
                    break
                self._ahead.extend(items)
            return self._parser.meta

    def _meta_known(self, names: tuple[Any, ...]) -> bool:
        if self._finished or self._closed or self._items is not None:
            return True
        meta = self._parser.meta
        if names:
            return all(name in meta for name in names)
        return bool(self._ahead) or "error" in meta

    def _meta_value(self, name: str) -> Any:
        """``meta[name]``, reading ahead for it on a sync stream (``None`` if never sent)."""
        meta = self._parser.meta
        if name not in meta and not self._is_async() and not self._finished and not self._closed:
            try:
                self.read_meta(name)
            except CouchcoreError:
                pass  # a transport or parse failure is raised by the iteration, where it belongs
        return meta.get(name)

    # -- reading the body ----------------------------------------------------------
    def _begin(self) -> None:
        resp = self._response
        if resp.body is not None:
            self._chunks = iter((resp.body,))
        else:
            self._chunks = iter(resp.stream)

    def _pull(self) -> list[Any] | None:
        """Parse the next chunk (sync): its items, or ``None`` once the body has ended."""
        if self._finished or self._closed:
            return None
        if self._chunks is None:
            self._begin()
        try:
            chunk = next(self._chunks, None)
            if chunk is not None:
                return self._feed(chunk)
            return self._end()
        except BaseException as exc:
            self._fail(exc)
            raise

    async def _apull(self) -> list[Any] | None:
        """Parse the next chunk (async): its items, or ``None`` once the body has ended."""
        if self._finished or self._closed:
            return None
        resp = self._response
        try:
            if self._chunks is None:
                self._chunks = resp.body if resp.body is not None else resp.stream.__aiter__()
                if resp.body is not None:
                    return self._feed(resp.body)
            if isinstance(self._chunks, bytes):
                return self._end()
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                return self._end()
            return self._feed(chunk)
        except BaseException as exc:
            self._fail(exc)
            raise

    #: whether a row carrying an ``error`` other than ``"not_found"`` raises (ViewResult)
    _screen_error_rows = False

    def _feed(self, chunk: Any) -> list[Any]:
        items: list[Any] = self._parser.feed(chunk)
        if self._screen_error_rows:
            return self._screen(items)
        return items

    def _screen(self, items: list[Any]) -> list[Any]:
        """``items`` up to the first error row that is not data (a ``keys=`` miss); at
        such a row (CouchDB's ``reduce_overflow_error`` row, a document include_docs
        could not open) reading stops and the iteration raises its error after the rows
        before it. Only the answers that can hold such rows are looked at row by row: a
        reduce result (CouchDB sends it without ``total_rows``; a map result sends
        ``total_rows`` before its rows) and an ``include_docs=true`` query (fabric's
        ``{"key": id, "error": reason}`` for a document it could not open); a plain map
        or ``_all_docs`` result costs one dict lookup per chunk."""
        if not items:
            return items
        if "total_rows" in self._parser.meta:
            if self._with_docs is None:
                self._with_docs = "include_docs=true" in (getattr(self._response, "url", None) or "")
            if not self._with_docs:
                return items
        for i, row in enumerate(items):
            error = row.error
            if error is not None and error != _DATA_ROW_ERROR:
                resp = self._response
                exc = _stream_error({"error": error, "reason": row.value}, resp.method, resp.url)
                self._fail(cast(HTTPError, exc))
                return items[:i]
        return items

    def _fail(self, exc: BaseException) -> None:
        """Reading the body failed: no more reading; the iteration raises ``exc`` after the
        items parsed before it (also when a read-ahead for metadata met it first)."""
        self._finished = True
        if isinstance(exc, Exception) and self._error is None:
            self._error = exc
        self._response.close()

    def _end(self) -> list[Any]:
        self._finished = True
        resp = self._response
        try:
            items = self._parser.close()
            if self._screen_error_rows:
                items = self._screen(items)
            try:
                raise_stream_error(self._parser.meta, resp.method, resp.url)
            except HTTPError as exc:  # raised after the items that came before it
                self._error = exc
            return items
        finally:
            resp.close()

    # -- sync --------------------------------------------------------------------
    def __iter__(self) -> Iterator[_I]:
        if self._items is not None:
            return iter(self._items)
        if self._is_async():
            raise StreamMisuse(
                f"this {type(self).__name__} comes from an async backend: iterate it with 'async for'"
            )
        self._claim()
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        # the rows of each parsed chunk are handed over by a C iterator: no per-row Python
        # frame (a generator resume per row cost ~0.1-0.2 us); couchcore_ext._row.Items,
        # else chain's (~15 instructions more per row, callgrind)
        if _CItems is not None:
            return cast(Iterator[Any], _CItems(self._batches(None)))
        current: list[list[Any]] = []
        batches = self._batches(current)
        items = cast(_Items, _Items.from_iterable(batches))
        items._batches, items._current = batches, current
        return items

    def _batches(self, current: list[list[Any]] | None) -> Generator[list[Any], None, None]:
        """The items, one list per parsed chunk (items read ahead for metadata first);
        ``current`` (chain's iterator only) holds the list being handed out (see
        :meth:`_Items.close`)."""
        ahead = self._ahead
        try:
            while True:
                if ahead:
                    items = list(ahead)
                    ahead.clear()
                    if current is not None:
                        current[:] = [items]
                    yield items
                    continue
                # _pull() and _feed() inline (one Python frame per chunk fewer, two for
                # a map view: callgrind, ~1.3k instructions per 8 kB piece)
                if self._finished or self._closed:
                    break
                chunks = self._chunks
                if chunks is None:
                    self._begin()
                    chunks = self._chunks
                try:
                    chunk = next(chunks, None)
                    if chunk is None:
                        pulled = self._end()
                    else:
                        pulled = self._parser.feed(chunk)
                        if pulled and self._screen_error_rows and (
                                self._with_docs is not False or "total_rows" not in self._parser.meta):
                            pulled = self._screen(pulled)
                except BaseException as exc:
                    self._fail(exc)
                    raise
                if pulled:
                    if current is not None:
                        current[:] = [pulled]
                    yield pulled
            if self._error is not None:
                raise self._error
        finally:
            self.close()

    def all(self) -> list[_I]:
        """Every item, read into a list (sync)."""
        if self._items is None:
            if self._is_async():
                raise StreamMisuse(f"this {type(self).__name__} comes from an async backend: use 'await .aall()'")
            self._claim()
            self._items = list(self._iterate())
        return self._items

    def __len__(self) -> int:
        if self._items is None and self._started:
            # also what list(result) hits while it streams: TypeError makes it skip the hint
            raise StreamMisuse(f"len() of a {type(self).__name__} that is being streamed; use .all() first")
        return len(self.all())

    @overload
    def __getitem__(self, index: SupportsIndex) -> _I: ...
    @overload
    def __getitem__(self, index: slice) -> list[_I]: ...
    def __getitem__(self, index: SupportsIndex | slice) -> _I | list[_I]:
        return self.all()[index]

    def __bool__(self) -> bool:
        """Whether there is at least one item, as ``len(result) > 0`` but without reading
        everything: a sync stream reads ahead until its first item (kept for the iteration)
        or the end of the body. Raises :class:`StreamMisuse` (a ``TypeError``) while the result is being iterated and
        on an async backend's result not read yet (``await result.aall()`` first), where the
        answer is not known without I/O; raises the stream's error if it came before any item.
        """
        if self._items is not None:
            return bool(self._items)
        if self._ahead:
            return True
        if self._started:
            raise StreamMisuse(f"bool() of a {type(self).__name__} that is being streamed; use .all() first")
        if self._is_async():
            if self._finished:
                return False
            raise StreamMisuse(f"bool() of a {type(self).__name__} of an async backend before it is read: "
                            "use 'await .aall()' first")
        self.read_meta()
        if not self._ahead and self._error is not None:
            raise self._error
        return bool(self._ahead)

    # -- async -------------------------------------------------------------------
    if not TYPE_CHECKING:  # the async flavour's (declared by AsyncStreamedResult)
        def __aiter__(self) -> AsyncIterator[_I]:
            if self._items is not None:
                return _aiter_list(self._items)
            if self._is_sync_stream():
                raise StreamMisuse(
                    f"this {type(self).__name__} comes from a sync backend: iterate it with a plain 'for'"
                )
            self._claim()
            return self._aiterate()

        async def aall(self) -> list[_I]:
            """Every item, read into a list (async)."""
            if self._items is None:
                if self._is_sync_stream():
                    raise StreamMisuse(f"this {type(self).__name__} comes from a sync backend: use .all()")
                self._claim()
                self._items = [item async for item in self._aiterate()]
            return self._items

    async def _aiterate(self) -> AsyncIterator[Any]:
        ahead = self._ahead
        try:
            while True:
                while ahead:
                    yield ahead.popleft()
                items = await self._apull()
                if items is None:
                    break
                for item in items:
                    yield item
            if self._error is not None:
                raise self._error
        finally:
            self.close()

    # -- common ------------------------------------------------------------------
    def _is_async(self) -> bool:
        stream = self._response.stream
        return stream is not None and hasattr(stream, "__aiter__") and not hasattr(stream, "__iter__")

    def _is_sync_stream(self) -> bool:
        return self._response.stream is not None and not self._is_async()

    def _claim(self) -> None:
        if self._started:
            raise StreamConsumed(
                f"this {type(self).__name__} was already iterated (it streams); use .all() to keep the items"
            )
        self._started = True

    def close(self) -> None:
        """Release the connection without reading the rest of the body."""
        self._closed = True
        self._response.close()

    def __reduce__(self) -> tuple[Any, ...]:
        """``pickle`` and ``copy.copy``/``copy.deepcopy`` of a result read whole (:meth:`all`
        / :meth:`aall`): its items, metadata, headers, method and URL; the copy is a result
        read whole too. One not read whole (it streams) raises :class:`StreamMisuse`."""
        if self._items is None:
            raise StreamMisuse(f"a {type(self).__name__} that streams cannot be pickled or copied: "
                               "read it whole first (.all(), or 'await .aall()' on an async backend)")
        from .errors import Headers, _without_cookies

        resp = self._response
        headers = dict(_without_cookies(Headers(resp.headers)))  # a session cookie is no result
        return (_read_result, (type(self), list(self._items), dict(self._parser.meta), headers,
                               getattr(resp, "method", None), getattr(resp, "url", None)))

    def __enter__(self) -> "StreamedResult[_I]":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "StreamedResult[_I]":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class _Items(chain[Any]):
    """The iterator of a streamed result: ``itertools.chain`` over the parsed batches (its
    ``__next__`` stays C code), with ``close()`` as a generator has it: the reading stops,
    the connection is released, and no further item is returned."""

    __slots__ = ("_batches", "_current")
    _batches: Generator[list[Any], None, None]
    _current: list[list[Any]]

    def close(self) -> None:
        self._batches.close()
        for batch in self._current:
            batch.clear()  # the rest of the batch being handed out (a list only we hold)
        self._current.clear()


class _ReadResponse:
    """The response of a result rebuilt from a pickle or a copy (read whole: no body left)."""

    body = None
    stream = None

    def __init__(self, headers: dict[str, str], method: str | None, url: str | None) -> None:
        from .errors import Headers

        self.headers = Headers(headers)
        self.method = method
        self.url = url

    def close(self) -> None:
        pass


class _ReadParser:
    """The parser of a result rebuilt from a pickle or a copy: only its metadata."""

    done = True

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta


def _read_result(cls: type[StreamedResult[Any]], items: list[Any], meta: dict[str, Any],
                 headers: dict[str, str], method: str | None, url: str | None) -> StreamedResult[Any]:
    """A result read whole, as :meth:`StreamedResult.__reduce__` describes it."""
    result = cls.__new__(cls)
    result.__init__(_ReadResponse(headers, method, url))  # type: ignore[misc]
    result._parser = cast(Any, _ReadParser(meta))
    result._items = items
    result._started = result._finished = result._closed = True
    return result


async def _aiter_list(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


class ViewResult(StreamedResult[Row]):
    """The rows of a view or ``_all_docs`` query, parsed as they stream in.

    ``total_rows``, ``offset`` and ``update_seq`` read just far enough into the body to
    know them (sync backends): CouchDB sends them before the rows, so that is the first
    chunk; rows parsed on the way are kept and still yielded by the iteration. Where
    they follow the rows (``sorted=false``) or are never sent (``total_rows`` of a
    reduce query) reading one of them reads the whole body. On the async facade they
    are ``None`` until known: ``await result.ameta("total_rows")`` reads ahead for them.

    A row CouchDB sends in place of a result, with an ``error`` other than ``"not_found"``,
    is never an item: the iteration (and :meth:`all`, ``len()``, ...) yields the rows before
    it and then raises :class:`~couchcore.errors.ServerError` (``status`` 500, ``error`` and
    ``reason`` as CouchDB sent them; the HTTP status was 200). CouchDB 3.5 sends such a row,
    ``{"key":null,"error":"reduce_overflow_error","reason":"Reduce output must shrink more
    rapidly: ..."}``, for a reduce function whose output does not shrink (``[query_server_config]
    reduce_limit``, on by default:
    https://docs.couchdb.org/en/stable/config/query-servers.html#query_server_config/reduce_limit).
    A ``keys=`` key that matched nothing, ``{"key":k,"error":"not_found"}``, is data: a
    :class:`~couchcore.models.Row` with ``error="not_found"``.
    CouchDB: https://docs.couchdb.org/en/stable/api/ddoc/views.html
    """

    _shape = "view"
    _screen_error_rows = True

    @property
    def total_rows(self) -> int | None:
        """``total_rows`` as CouchDB sent it: the rows of the whole view (``None`` for
        reduce queries). On a partition (``db.partition(p).view(...)``) CouchDB 3.5 sends the
        row count of the shard the partition lives on, not the partition's.
        https://docs.couchdb.org/en/stable/partitioned-dbs/index.html"""
        total: int | None = self._meta_value("total_rows")
        return total

    @property
    def offset(self) -> int | None:
        """Position of the first returned row in the view (``None`` for reduce queries)."""
        offset: int | None = self._meta_value("offset")
        return offset

    @property
    def update_seq(self) -> Seq | None:
        """The database sequence the index was read at (only with ``update_seq=True``;
        ``None`` otherwise). Opaque: a str on CouchDB 2+, an int on PouchDB Server."""
        seq: Seq | None = self._meta_value("update_seq")
        return seq

    @property
    def rows(self) -> list[Row]:
        """All rows as a list (reads the whole result)."""
        return self.all()

    @overload
    def __getitem__(self, index: SupportsIndex) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...
    def __getitem__(self, index: SupportsIndex | slice) -> Row | list[Row]:
        """``result[i]`` / ``result[i:j]``: rows by position (reads the whole result).

        A ViewResult is not indexed by key: ``result["k"]`` and ``result["a":"z"]``
        (couchdb-python's idioms) raise :class:`StreamMisuse` (a ``TypeError``) naming the
        query to make instead, ``view(name, key="k")`` or ``view(name, startkey="a",
        endkey="z")``, before anything is read.
        CouchDB: https://docs.couchdb.org/en/stable/api/ddoc/views.html"""
        if isinstance(index, slice):
            bounds = (index.start, index.stop, index.step)
            if any(b is not None and not hasattr(type(b), "__index__") for b in bounds):
                raise StreamMisuse(f"a ViewResult is a list of rows, not sliced by key: for the rows from key "
                                   f"{index.start!r} to {index.stop!r} query view(name, startkey={index.start!r}, "
                                   f"endkey={index.stop!r})")
        elif not hasattr(type(index), "__index__"):
            raise StreamMisuse(f"a ViewResult is a list of rows, not indexed by key: for the rows of key {index!r} "
                               f"query view(name, key={index!r}); rows by position are result[0], result[1:3]")
        return self.all()[index]

    def __repr__(self) -> str:
        state = f"{len(self._items)} rows" if self._items is not None else "streaming"
        return f"<ViewResult {state} total_rows={self._parser.meta.get('total_rows')}>"


class ChangesResult(StreamedResult[dict[str, Any]]):
    """A normal or longpoll ``_changes`` response, parsed as it streams in.

    Iterating it yields the change dicts (``{"seq", "id", "changes", "deleted"?,
    "doc"?}``; ``doc`` a :class:`~couchcore.models.Document`) one by one without keeping
    them, so memory stays flat however many changes there are. ``last_seq`` and
    ``pending`` come after the results: they are known once the iteration has ended
    (reading either before that reads the rest of the body and keeps the changes for
    the iteration). For the whole response at once, :meth:`all` (the changes) or the
    mapping view of the old dict result: ``result["results"]``, ``result["last_seq"]``,
    ``result.get("pending")``, ``dict(result)`` read everything into memory. It is not a
    ``dict``: for ``json.dumps`` pass :meth:`as_dict` (or ``dict(result)``). Read whole, it
    pickles and copies (see :meth:`StreamedResult.__reduce__`).
    CouchDB: https://docs.couchdb.org/en/stable/api/database/changes.html
    """

    _shape = "changes"

    @property
    def last_seq(self) -> Seq | None:
        """The sequence to pass as ``since`` next time (opaque: a str on CouchDB 2+, an
        int on PouchDB Server; ``None`` only if the server sent none)."""
        seq: Seq | None = self._meta_value("last_seq")
        return seq

    @property
    def pending(self) -> int | None:
        """Changes left after this response (``limit``), when the server says."""
        pending: int | None = self._meta_value("pending")
        return pending

    @property
    def results(self) -> list[dict[str, Any]]:
        """All changes as a list (reads the whole result)."""
        return self.all()

    # -- the old dict result -------------------------------------------------------
    def as_dict(self) -> ChangesResponse:
        """``{"results": [...], "last_seq": ..., "pending"?: ...}`` (reads the whole result;
        a :class:`~couchcore.protocol.shapes.ChangesResponse`)."""
        items = self.all()
        whole = cast(ChangesResponse, {"results": items, **self._parser.meta})  # (checked: test_declared_types)
        return whole

    def keys(self) -> KeysView[str]:
        """Keys of :meth:`as_dict` (so ``dict(result)`` works)."""
        return self.as_dict().keys()

    def values(self) -> ValuesView[object]:
        """Values of :meth:`as_dict`."""
        return self.as_dict().values()

    def items(self) -> ItemsView[str, object]:
        """Items of :meth:`as_dict`."""
        return self.as_dict().items()

    @overload
    def get(self, key: Literal["results"]) -> list[dict[str, Any]]: ...
    @overload
    def get(self, key: Literal["results"], default: object) -> list[dict[str, Any]]: ...
    @overload
    def get(self, key: Literal["last_seq"]) -> Seq | None: ...
    @overload
    def get(self, key: Literal["last_seq"], default: _D) -> Seq | _D: ...
    @overload
    def get(self, key: Literal["pending"]) -> int | None: ...
    @overload
    def get(self, key: Literal["pending"], default: _D) -> int | _D: ...
    @overload
    def get(self, key: str) -> object: ...
    @overload
    def get(self, key: str, default: object) -> object: ...
    def get(self, key: str, default: object = None) -> object:
        """``as_dict().get(key, default)``: ``"results"`` (the change dicts), ``"last_seq"``,
        ``"pending"``."""
        whole: Mapping[str, object] = self.as_dict()
        return whole.get(key, default)

    @overload
    def __getitem__(self, key: Literal["results"]) -> list[dict[str, Any]]: ...
    @overload
    def __getitem__(self, key: Literal["last_seq"]) -> Seq: ...
    @overload
    def __getitem__(self, key: Literal["pending"]) -> int: ...
    @overload
    def __getitem__(self, key: str) -> object: ...
    @overload
    def __getitem__(self, key: SupportsIndex) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, key: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, key: str | SupportsIndex | slice) -> object:
        """``result["results"]``, ``result["last_seq"]``, ``result["pending"]`` (as in
        :meth:`as_dict`; ``KeyError`` when absent), or ``result[i]`` / ``result[i:j]``:
        the changes (reads the whole result)."""
        if isinstance(key, str):
            whole: Mapping[str, object] = self.as_dict()
            return whole[key]
        return self.all()[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return key in self.as_dict()
        return key in self.all()

    def __repr__(self) -> str:
        state = f"{len(self._items)} changes" if self._items is not None else "streaming"
        return f"<ChangesResult {state} last_seq={self._parser.meta.get('last_seq')!r}>"


class _SizedReader:
    """``read(size)`` over an iterator of byte chunks: what a file object's reader does.
    An error of the iterator (a connection cut mid-way) is raised again by every later
    call, never taken for the end of the bytes."""

    __slots__ = ("_chunks", "_buffer", "_error", "done")

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks: Iterator[bytes] | None = chunks
        self._buffer = bytearray()
        self._error: BaseException | None = None
        self.done = False  # every byte handed out

    def _more(self) -> bool:
        if self._error is not None:
            raise self._error
        if self._chunks is None:
            return False
        try:
            chunk = next(self._chunks, None)
        except BaseException as exc:
            self._error, self._chunks = exc, None
            raise
        if chunk is None:
            self._chunks = None
            return False
        self._buffer += chunk
        return True

    def read(self, size: int) -> bytes:
        buffer = self._buffer
        while len(buffer) < size and self._more():
            pass
        if self._error is not None:
            raise self._error
        out = bytes(buffer[:size])
        del buffer[:size]
        if not buffer and self._chunks is None:
            self.done = True
        return out

    def rest(self) -> bytes:
        while self._more():
            pass
        out = bytes(self._buffer)
        self._buffer.clear()
        self.done = True
        return out


class AttachmentStream:
    """A streamed attachment (what :meth:`~couchcore.Database.open_attachment` gives):
    iterate it for byte chunks (``for``, or ``async for`` on an async facade) or
    :meth:`read` it whole (``await .aread()`` on an async facade). ``content_type``,
    ``length`` (``Content-Length``, in bytes) and ``headers`` come from the response
    headers and stay readable at any time.

    The chunks are read once, as they arrive (memory does not grow with the size of
    the attachment): **one** iteration or one :meth:`read`/``aread()`` per stream, on
    every backend (urllib3, pycurl, ``couchcore.aio`` and ``couchcore.tornado`` awaited).
    A second one raises :class:`~couchcore.errors.StreamConsumed` (a ``RuntimeError``)
    instead of returning fewer bytes than the attachment holds, also when the first one
    stopped early: a ``break`` or an exception in the loop, :meth:`close` (and so the end
    of a ``with``/``async with`` block), or reading after a partial iteration. The
    chunks a stopped iteration did not deliver are not kept: to read the attachment
    again, open it again. While one iteration runs, its own iterator may go on
    (``it = iter(stream); next(it); ...; for chunk in it``).

    A stream whose bytes were already read into memory (what a ``callback=`` of
    ``couchcore.tornado`` gets, and what a :func:`~couchcore.tornado.relax` handler
    gets from ``yield db.open_attachment(...)``) holds the whole attachment: there
    :meth:`read` and iteration give all the bytes every time, also after :meth:`close`.

    For type checkers this class is the sync flavour's stream (``for``, :meth:`read`);
    one of the async facade is declared as :class:`AsyncAttachmentStream` (``async for``,
    :meth:`aread`).
    CouchDB: https://docs.couchdb.org/en/stable/api/document/attachments.html#get--db-docid-attname
    """

    def __init__(self, response: Any) -> None:
        self._response = response
        self._started = False  # an iteration (or read) of the live stream has begun
        self._closed = False  # close() was called
        self._reader: _SizedReader | None = None  # the pass read(size) reads from

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` header (``None`` if absent)."""
        value: str | None = self._response.headers.get("content-type")
        return value

    @property
    def length(self) -> int | None:
        """The ``Content-Length`` header as an int, in bytes (``None`` if absent)."""
        value = self._response.headers.get("content-length")
        return int(value) if value is not None else None

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers (a case-insensitive mapping of str to str)."""
        headers: Mapping[str, str] = self._response.headers
        return headers

    def _claim(self) -> None:
        """Begin the one pass over a live stream; :class:`StreamConsumed` if it was
        begun or closed before (a buffered body may be read any number of times)."""
        if self._response.stream is None:
            return
        if self._started:
            raise StreamConsumed(
                "this AttachmentStream was already read or iterated (its chunks are read once, as they arrive; "
                "a stopped iteration drops the rest): keep the bytes of the first read(), or open the "
                "attachment again")
        if self._closed:
            raise StreamConsumed(
                "this AttachmentStream was closed (close(), or the end of its 'with' block) before it was read: "
                "open the attachment again")
        self._started = True

    def __iter__(self) -> Iterator[bytes]:
        stream = self._response.stream
        if stream is None:
            body = self._response.body
            return iter([body] if body else [])
        if not hasattr(stream, "__iter__"):
            raise StreamMisuse("this AttachmentStream comes from an async backend: use 'async for'")
        self._claim()
        return self._iterate(stream)

    def _iterate(self, stream: Iterator[bytes]) -> Iterator[bytes]:
        try:
            yield from stream
        finally:
            self._response.close()

    if not TYPE_CHECKING:  # the async flavour's (declared by AsyncAttachmentStream)
        def __aiter__(self) -> AsyncIterator[bytes]:
            stream = self._response.stream
            if stream is not None and not hasattr(stream, "__aiter__"):
                raise StreamMisuse("this AttachmentStream comes from a sync backend: use a plain 'for'")
            self._claim()
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

    def read(self, size: int | None = -1) -> bytes:
        """The whole content (sync), as bytes. :class:`StreamConsumed` if this stream was
        read, iterated or closed before (see the class); ``TypeError`` on an async
        backend's stream (``await .aread()``); :class:`~couchcore.errors.TransportError`
        if the connection fails mid-way.

        ``read(size)`` (``size`` >= 0, in bytes) reads like a binary file instead: up to
        ``size`` bytes at a time (fewer only at the end), ``b""`` once the attachment is
        read, each call going on where the last stopped, in the stream's one pass (the
        first such call begins it; a plain :meth:`read` after some then gives the rest).
        So the stream is a file object for :meth:`~couchcore.Database.put_attachment`:
        ``db.put_attachment(other, db.open_attachment(doc, "a.bin"), "a.bin")`` copies an
        attachment without holding it in memory."""
        if size is not None and size >= 0:
            if self._reader is None:
                self._reader = _SizedReader(iter(self))
            return self._reader.read(size)
        if self._response.stream is None:  # a buffered body: all of it every time
            body: bytes = self._response.body or b""
            return body
        if self._reader is not None:
            if self._reader.done:
                raise StreamConsumed("this AttachmentStream was read to its end by read(size): keep those bytes, "
                                     "or open the attachment again")
            return self._reader.rest()
        chunks = iter(self)  # (here, not inside join(), which would hide the TypeError's message)
        return b"".join(chunks)

    if not TYPE_CHECKING:  # the async flavour's (declared by AsyncAttachmentStream)
        async def aread(self) -> bytes:
            """The whole content (async), as bytes; :class:`StreamConsumed` if this stream
            was read, iterated or closed before (see the class)."""
            chunks = self.__aiter__()  # (here: its errors are raised before any await)
            return b"".join([c async for c in chunks])

    def close(self) -> None:
        """Release the connection without reading the rest. A later :meth:`read` or
        iteration of a live stream raises :class:`StreamConsumed` (the unread chunks are
        gone); closing after a complete read changes nothing."""
        self._closed = True
        self._response.close()

    def __enter__(self) -> "AttachmentStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "AttachmentStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


# -- the async flavour, as type checkers see it ----------------------------------------------


class AsyncStreamedResult(Protocol[_I]):
    """A :class:`StreamedResult` of the async facade, as type checkers see it.

    At run time it is the same class; this protocol declares only what works on a
    result of an async backend: ``async for``, :meth:`aall`, :meth:`ameta`, the metadata
    and :meth:`close`. Plain ``for``, ``len()``, indexing, ``.all()`` and ``.read_meta()``
    raise ``TypeError`` there, so they are not declared (a type error, not a run-time one).
    It is a protocol: annotate with it, but ``isinstance`` needs :class:`StreamedResult`.
    """

    @property
    def meta(self) -> dict[str, Any]:
        """Header and trailer fields seen so far (``total_rows``, ``offset``, ...)."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers (a case-insensitive mapping of str to str)."""
        ...

    def __aiter__(self) -> AsyncIterator[_I]: ...

    async def aall(self) -> list[_I]:
        """Every item, read into a list."""
        ...

    async def ameta(self, *names: str) -> dict[str, Any]:
        """Read ahead until every field in ``names`` is known (see :meth:`StreamedResult.read_meta`)."""
        ...

    def close(self) -> None:
        """Release the connection without reading the rest of the body."""
        ...

    async def __aenter__(self: _P) -> _P: ...
    async def __aexit__(self, *exc: Any) -> None: ...
    def __enter__(self: _P) -> _P: ...
    def __exit__(self, *exc: Any) -> None: ...


class AsyncViewResult(AsyncStreamedResult[Row], Protocol):
    """A :class:`ViewResult` of the async facade (what ``await db.view(...)`` gives), as
    type checkers see it: rows with ``async for`` or ``await result.aall()``.
    ``total_rows``, ``offset`` and ``update_seq`` are ``None`` until known
    (``await result.ameta("total_rows")`` reads ahead for them).
    CouchDB: https://docs.couchdb.org/en/stable/api/ddoc/views.html
    """

    @property
    def total_rows(self) -> int | None:
        """Rows in the whole view (``None`` for reduce queries, or while not yet read)."""
        ...

    @property
    def offset(self) -> int | None:
        """Position of the first returned row (``None`` for reduce queries, or while not yet read)."""
        ...

    @property
    def update_seq(self) -> Seq | None:
        """The database sequence the index was read at (only with ``update_seq=True``)."""
        ...


class AsyncAttachmentStream(Protocol):
    """An :class:`AttachmentStream` of the async facade, as type checkers see it: byte
    chunks with ``async for``, or ``await stream.aread()``. Plain ``for`` and
    ``.read()`` raise ``TypeError`` there, so they are not declared. It is read once: a
    second ``async for`` or ``aread()`` raises :class:`~couchcore.errors.StreamConsumed`,
    also after one that stopped early (``break``, an exception, ``close()``, the end of an
    ``async with`` block); open the attachment again to read it again."""

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` header (``None`` if absent)."""
        ...

    @property
    def length(self) -> int | None:
        """The ``Content-Length`` header as an int (``None`` if absent)."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers (a case-insensitive mapping of str to str)."""
        ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes:
        """The whole content, as bytes; :class:`~couchcore.errors.StreamConsumed` if the
        stream was read, iterated or closed before."""
        ...

    def close(self) -> None:
        """Release the connection without reading the rest (a later ``aread()`` or
        ``async for`` raises :class:`~couchcore.errors.StreamConsumed`)."""
        ...

    async def __aenter__(self: _P) -> _P: ...
    async def __aexit__(self, *exc: Any) -> None: ...
    def __enter__(self: _P) -> _P: ...
    def __exit__(self, *exc: Any) -> None: ...
