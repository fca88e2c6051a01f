"""The async facade: :class:`Server` and :class:`Database` on Tornado / asyncio.

Every operation of :class:`~couchcore._api.ServerAPI` and
:class:`~couchcore._api.DatabaseAPI` is available, unchanged, as an awaitable::

    import asyncio
    from couchcore.tornado import Server

    async def main():
        server = Server("http://admin:secret@127.0.0.1:5984", max_clients=20)
        db = await server.db("events", create=True)
        await db.save({"_id": "a", "n": 1})
        doc = await db.get("a")
        async for row in db.view("_all_docs"):     # rows parsed as chunks arrive (await optional)
            print(row.id)
        async for change in db.changes(feed="continuous", since="now"):
            ...

    asyncio.run(main())

The HTTP client is libcurl driven by the event loop (``backend="pycurl"``, the default
when pycurl is installed; connections are kept alive and reused) or Tornado's simple
client (``backend="tornado"``, a connection per request).

Called while an event loop runs, a method returns an :class:`asyncio.Task` that is
already under way (await it, ``yield`` it in a Tornado coroutine, cancel it, or
``asyncio.gather`` many); called with no loop running it returns the coroutine, so
``asyncio.run(server.version())`` works too. Cancelling closes the request's connection.

The seed's callback style works on every method: ``db.get("a", callback=fn)`` calls
``fn(result, status)`` with a :class:`~couchcore.models.Status`; a failure arrives as a
failed ``Status`` (``status.error``, ``status.exception``), never as an exception in the
loop, and a callback that raises is logged. Streamed results (views, an
``open_attachment`` stream) are read whole before a callback gets them, so it can
iterate them with a plain ``for`` (or ``read()`` the attachment); ``iterview`` and
``iterfind`` hand it the list of every row or document, all pages read.
``db.changes(callback=fn, latency=0.5)`` (no ``feed=``, or ``feed="continuous"``)
follows a continuous feed calling ``fn(seq, changes)`` from a task on the loop, and so
does ``db.follow(callback=fn)``; ``changes(feed="normal"|"longpoll", callback=fn)`` calls
``fn(result, status)`` once. A feed's callback gets changes only, never a ``Status`` (the
seed's ``ChangesFeed`` listener is called with changes): bad options raise at the call
(:class:`~couchcore.errors.InvalidOption`, :class:`~couchcore.errors.InvalidInput`), and an
error that ends a running feed (a missing ``filter``'s 404, a 401/403) does not call the
callback. It is logged on the ``couchcore.tornado`` logger and kept in ``feed.error``
(``follower.error``); ``await feed.wait()`` returns once the feed has ended, so check
``.error`` then.

:func:`relax` turns a generator-based handler into a coroutine in which
``doc = yield db.get(...)`` works, as the seed describes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import (TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Generator, Generic, Literal, NoReturn,
                    TypeVar, cast, overload)

from . import _feeds
from ._api import DatabaseAPI, ServerAPI
from ._drivers import run_async
from .errors import CouchcoreError, InvalidInput, StreamMisuse
from .models import AsyncConflictResolution, Document, Status
from .protocol import changes as _changes
from ._follow import AsyncChangesFollower
from ._paging import AsyncPaged
from ._results import AsyncAttachmentStream, AsyncStreamedResult, AsyncViewResult, ChangesResult
from .protocol.shapes import Seq
from ._callbacks import SINK, Recorder, Sink, add_callbacks, call_feed_callback, call_with_callback
from ._relax import relax
from .transport.base import get_backend

__all__ = ["Server", "Database", "Couch", "ChangesFeed", "ChangesTask", "StreamTask", "Status", "relax", "Closed",
           # how type checkers see the results of this facade (protocols: annotations only)
           "AsyncViewResult", "AsyncStreamedResult", "AsyncAttachmentStream", "AsyncConflictResolution",
           "AsyncPaged", "AsyncChangesFollower"]

if TYPE_CHECKING:  # the typed methods (awaitables), generated from api.py (tools/gen_facades.py)
    from ._facades import AsyncCall
    from ._facades import AsyncDatabaseAPI as _DatabaseBase
    from ._facades import AsyncServerAPI as _ServerBase
else:
    _DatabaseBase, _ServerBase = DatabaseAPI, ServerAPI

log = logging.getLogger("couchcore.tornado")

_S = TypeVar("_S", bound="Server")
_T = TypeVar("_T")


class StreamTask(asyncio.Task[_T], Generic[_T]):
    """A running call of the async facade: an :class:`asyncio.Task` (``await`` it,
    ``cancel()`` it, ``gather`` many) that can also be iterated at once when its result
    is streamed: ``async for row in db.view(...)`` is ``async for row in await
    db.view(...)``. Results that are not streamed (a dict, a Document) raise
    ``TypeError`` there; lists are iterated."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._items()

    async def _items(self) -> AsyncIterator[Any]:
        result = await self
        if hasattr(result, "__aiter__"):
            async for item in result:
                yield item
        elif isinstance(result, list):
            for item in result:
                yield item
        else:
            raise StreamMisuse(f"'async for' over {self.get_name()}: its result, a {type(result).__name__}, "
                            "is not streamed; use 'await'")


def default_backend() -> str:
    """The async backend used when ``Server(backend=...)`` is not given: ``"pycurl"``
    when pycurl can be imported, else ``"tornado"``."""
    global _DEFAULT_BACKEND
    if _DEFAULT_BACKEND is None:
        try:
            import pycurl  # noqa: F401
        except ImportError:
            _DEFAULT_BACKEND = "tornado"
        else:
            _DEFAULT_BACKEND = "pycurl"
    return _DEFAULT_BACKEND


_DEFAULT_BACKEND: str | None = None


def _start(coro: Any, name: str | None = None) -> Any:
    """A :class:`StreamTask` on the running loop, or the bare coroutine when no loop runs."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return coro
    return StreamTask(coro, loop=loop, name=name)


def _op_name(op: Any) -> str:
    return "couchcore." + getattr(op, "__name__", type(op).__name__)


class Closed:
    """What ``close()`` of an async facade's Server returns: an awaitable already done, so
    both ``server.close()`` and ``await server.close()`` (as with aiohttp or httpx) close
    it; awaiting it gives ``None``."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return iter(())  # type: ignore[return-value]  # (an iterator ends the await at once)

    def __bool__(self) -> bool:
        return False  # as falsy as the None the sync close() returns

    def __repr__(self) -> str:
        return "<couchcore.tornado.Closed>"


_CLOSED = Closed()


class Server(_ServerBase):
    """A CouchDB server, used asynchronously (on the running asyncio / Tornado loop).

    ``Server(url=None, auth=None, full_commit=True, max_clients=10, **transport_options)``
    takes the same arguments as :class:`couchcore.Server`; ``max_clients`` bounds the
    requests in flight at once (per event loop; the others wait for a free slot).
    ``backend="pycurl"`` (the default when pycurl is installed) runs libcurl on the
    event loop and keeps connections alive (see :mod:`couchcore.transport.curlloop`);
    ``backend="tornado"`` runs Tornado's simple HTTP client, which opens a connection
    per request.
    The server may be built outside any loop and used from several
    ``asyncio.run(...)`` calls in turn.
    """

    is_async = True

    def close(self) -> Closed:  # type: ignore[override]  # (sync's returns None)
        """Close the Server: everything still under way on it is aborted at once, on every
        event loop it used. An awaited read, a longpoll or a streamed result still
        arriving raises :class:`~couchcore.errors.ConnectionError` ("request aborted (the
        transport was closed)"); a write raises :class:`~couchcore.errors.OutcomeUnknown`
        instead: it may have been written or not, so read the document to know; a
        ``callback=`` gets a failed :class:`~couchcore.Status` with that error (see
        :meth:`couchcore.Server.close`). Returns :class:`Closed`, an awaitable already
        done, so ``await server.close()`` works as plain ``server.close()`` does."""
        super().close()
        return _CLOSED

    def _make_transport(self, backend: str | None, url: str | None = None) -> Any:
        """The async transport: ``backend="pycurl"`` (the default when pycurl is
        installed: libcurl on the event loop, connections kept alive) or ``"tornado"``
        (Tornado's simple HTTP client: no pycurl needed, a new connection per request)."""
        name = backend if backend is not None else default_backend()
        # the row of transport.base.BACKENDS (InvalidOption for a sync or unknown name)
        return get_backend(name, is_async=True)(url or self.url, self.credentials, self.options)

    # -- the driver hooks ----------------------------------------------------------------
    def _run(self, op: Any, post: Callable[[Any], Any] | None = None) -> Any:
        return _start(self._arun(op, post, SINK.get()), _op_name(op))

    @overload
    def db_updates(self, *, feed: Literal["continuous"], **options: Any) -> "ChangesFeed": ...
    @overload
    def db_updates(self, *, feed: Literal["normal", "longpoll"] = "normal",
                   **options: Any) -> "AsyncCall[ChangesResult, dict[str, Any]]": ...
    @overload
    def db_updates(self, *, feed: str,
                   **options: Any) -> "ChangesFeed | AsyncCall[ChangesResult, dict[str, Any]]": ...
    def db_updates(self, **options: Any) -> Any:
        """The server's feed of database events (``/_db_updates``; see
        :meth:`couchcore.Server.db_updates`). ``feed="normal"``/``"longpoll"``: a
        :class:`ChangesTask` (``async for event in server.db_updates(...)`` streams the
        ``{"db_name", "type", "seq"}`` events; ``await`` it for the whole
        :class:`~couchcore._results.ChangesResult`). ``feed="continuous"``: a
        :class:`ChangesFeed` to iterate with ``async for``.
        https://docs.couchdb.org/en/stable/api/server/common.html#db-updates
        """
        if options.get("feed") in (None, "normal", "longpoll"):
            op = _changes.db_updates(self._ctx, **options)
            return _changes_call(self._arun(op, None, SINK.get()), "couchcore.db_updates")
        return super().db_updates(**options)

    async def _arun(self, op: Any, post: Callable[[Any], Any] | None, sink: Sink | None) -> Any:
        transport = self._transport if sink is None else Recorder(self._transport, sink)
        result = await run_async(self._authed(op), transport)
        return post(result) if post is not None else result

    def _run_many(self, ops: Any, concurrency: int, post: Callable[[list[Any]], Any]) -> Any:
        return _start(self._arun_many(list(ops), concurrency, post, SINK.get()), "couchcore.run_many")

    async def _arun_many(self, ops: list[Any], concurrency: int, post: Callable[[list[Any]], Any], sink: Sink | None) -> Any:
        """Run ``ops`` with at most ``concurrency`` in flight; exceptions in place, in order."""
        transport = self._transport if sink is None else Recorder(self._transport, sink)
        results: list[Any] = [None] * len(ops)
        pending = iter(enumerate(ops))

        async def worker() -> None:
            for i, op in pending:
                try:
                    results[i] = await run_async(self._authed(op), transport)
                except Exception as exc:
                    results[i] = exc

        if ops:
            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(ops)))))
        return post(results)

    # -- Python protocols -------------------------------------------------------------------
    async def __aenter__(self: "_S") -> "_S":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._names()

    async def _names(self) -> AsyncIterator[str]:
        for name in await self.all_dbs():
            yield name

    def __getitem__(self, name: str) -> "Awaitable[Database]":
        """``await server[name]``: the database (``NotFoundKeyError``, a ``NotFound`` and a
        ``KeyError``, if missing)."""
        return self._item(name)

    if not TYPE_CHECKING:
        # These cannot await, so they raise at run time and are not declared for type checkers:
        # ``for name in server``, ``len(server)``, ``name in server`` and ``del server[name]``
        # on an async Server are type errors (tests/unit/test_typing.py).
        def __iter__(self) -> NoReturn:
            raise TypeError("an async Server: use 'async for name in server' or 'await server.all_dbs()'")

        def __len__(self) -> NoReturn:
            raise TypeError("an async Server: use 'len(await server.all_dbs())'")

        def __contains__(self, name: object) -> NoReturn:
            raise TypeError("an async Server: use 'await server.exists(name)'")

        def __delitem__(self, name: str) -> NoReturn:
            raise TypeError("an async Server: use 'await server.delete(name)'")


class Database(_DatabaseBase):
    """A CouchDB database, used asynchronously.

    Build it with ``await server.db(name)``, or directly (no request is sent) from a
    URL: ``Database("http://user:pw@host:5984/events")``.
    """

    is_async = True
    _server_class = Server

    @overload
    def changes(self, callback: None = None, latency: float = 0.0, *, feed: Literal["continuous"],
                **options: Any) -> "ChangesFeed": ...
    @overload
    def changes(self, callback: None = None, latency: float = 0.0, *,
                feed: Literal["normal", "longpoll"] = "normal",
                **options: Any) -> "AsyncCall[ChangesResult, dict[str, Any]]": ...
    @overload
    def changes(self, callback: Callable[[ChangesResult | None, Status], Any], latency: float = 0.0, *,
                feed: Literal["normal", "longpoll"], **options: Any) -> "asyncio.Task[ChangesResult | None]": ...
    @overload
    def changes(self, callback: Callable[[Any, list[dict[str, Any]]], Any], latency: float = 0.0, *,
                feed: Literal["continuous"] = "continuous", **options: Any) -> "ChangesFeed": ...
    @overload
    def changes(self, callback: None = None, latency: float = 0.0, *, feed: str,
                **options: Any) -> "ChangesFeed | AsyncCall[ChangesResult, dict[str, Any]]": ...
    def changes(self, callback: Callable[..., Any] | None = None, latency: float = 0.0, **options: Any) -> Any:
        """The ``_changes`` feed.

        ``feed="normal"``/``"longpoll"``: a :class:`ChangesTask`. ``async for change in
        db.changes(...)`` streams the changes through the row parser without keeping
        them (``.last_seq``/``.pending`` of the task once the loop has ended);
        ``result = await db.changes(...)`` reads the whole response into a
        :class:`~couchcore._results.ChangesResult` (``result["results"]``,
        ``result["last_seq"]``, ``result.last_seq``, plain ``for``). With ``callback``:
        ``callback(result, status)`` once. ``feed="continuous"``: a :class:`ChangesFeed`
        to iterate with ``async for``; with ``callback`` (also when ``feed`` is not given),
        a running feed calling ``callback(seq, changes)`` (batches gathered over ``latency``
        s). That callback gets changes only: an error that ends the feed (a missing
        ``filter``'s 404, a 401/403) never reaches it; it is logged and kept in the
        feed's ``.error`` (``await feed.wait()``, then check ``feed.error``). Bad options
        raise :class:`~couchcore.errors.InvalidOption` at the call.
        CouchDB: https://docs.couchdb.org/en/stable/api/database/changes.html
        """
        feed = options.get("feed")
        if callback is not None and feed in ("normal", "longpoll"):
            return call_with_callback(functools.partial(DatabaseAPI.changes, self, **options), callback)
        if callback is None and feed in (None, "normal", "longpoll"):
            op = _changes.changes(self._ctx, self.name, **options)
            server = self._server
            return _changes_call(server._arun(op, None, SINK.get()), f"couchcore.changes {self.name}")
        return super().changes(callback, latency, **options)

    def follow(self, since: Seq = "now", one_off: bool = False, max_retries: int | None = None,
               callback: Callable[[Any, list[dict[str, Any]]], Any] | None = None, latency: float = 0.0,
               **changes_options: Any) -> AsyncChangesFollower:
        """A :class:`~couchcore._follow.ChangesFollower` (see the sync ``Database.follow``)
        to iterate with ``async for``. With ``callback``, as ``changes(feed="continuous",
        callback=fn)``: a task on the running loop calls ``callback(seq, changes)`` with the
        changes gathered over ``latency`` seconds (a coroutine function is awaited; one
        that raises is logged and the follower goes on) until
        :meth:`~couchcore.ChangesFollower.stop`, the end of a ``one_off`` follower or an
        error that ends it (logged, in ``.error``); returns the
        follower (``await follower.wait()`` waits for its end).
        :class:`~couchcore.errors.InvalidInput` if ``callback`` is not callable,
        ``RuntimeError`` outside a running loop.
        CouchDB: https://docs.couchdb.org/en/stable/api/database/changes.html
        """
        if callback is not None and not callable(callback):
            raise InvalidInput("callback must be callable")
        follower = super().follow(since, one_off, max_retries, **changes_options)
        if callback is None:
            return follower
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("a callback-driven follower needs a running event loop") from None

        def failed(exc: BaseException) -> None:
            follower.error = follower.error or exc

        # kept on the follower: the loop holds its tasks only weakly
        follower._task = loop.create_task(  # type: ignore[attr-defined]
            _pump_batches(follower, self.name, callback, latency, failed), name=f"couchcore.follow {self.name}")
        return follower

    # -- Python protocols -------------------------------------------------------------------
    def __getitem__(self, docid: str) -> "Awaitable[Document]":
        """``await db[docid]``: the document (``NotFoundKeyError``, a ``NotFound`` and a
        ``KeyError``, if missing or deleted)."""
        return self._item(docid)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._ids()

    async def _ids(self) -> AsyncIterator[str]:
        result = await self.view("_all_docs")
        async for row in result:
            if row.id is not None:  # (every _all_docs row has one)
                yield row.id

    if not TYPE_CHECKING:
        # These cannot await, so they raise at run time and are not declared for type checkers:
        # ``db[id] = doc``, ``del db[id]``, ``id in db``, ``len(db)`` and ``for id in db`` on an
        # async Database are type errors (tests/unit/test_typing.py).
        def __setitem__(self, docid: str, doc: dict[str, Any]) -> NoReturn:
            raise TypeError("an async Database: use 'await db.save(doc)'")

        def __delitem__(self, docid: str) -> NoReturn:
            raise TypeError("an async Database: use 'await db.delete(doc)'")

        def __contains__(self, docid: object) -> NoReturn:
            raise TypeError("an async Database: use 'await db.contains(docid)'")

        def __len__(self) -> NoReturn:
            raise TypeError("an async Database: use '(await db.info())[\"doc_count\"]'")

        def __iter__(self) -> NoReturn:
            raise TypeError("an async Database: use 'async for docid in db'")


Server._database_class = Database
Couch = Server


# -- normal / longpoll changes: streamed or whole -------------------------------------------


class _ChangesState:
    __slots__ = ("streaming", "result")

    def __init__(self) -> None:
        self.streaming = False
        self.result: ChangesResult | None = None


async def _changes_body(started: Any, state: _ChangesState) -> ChangesResult:
    result: ChangesResult = await started
    state.result = result
    if not state.streaming:  # awaited: hand over the whole response, as before
        await _streamed_changes(result).aall()  # then it is what ChangesResult declares (plain for, [...])
    return result


def _streamed_changes(result: ChangesResult) -> "AsyncStreamedResult[dict[str, Any]]":
    """A ChangesResult of an async backend not read whole yet: what type checkers should see."""
    return cast("AsyncStreamedResult[dict[str, Any]]", result)


class ChangesTask(StreamTask[ChangesResult]):
    """A running normal/longpoll ``_changes`` request of the async facade.

    ``await`` it (or its ``result()`` once done) for the whole
    :class:`~couchcore._results.ChangesResult` (read into memory: plain ``for``,
    ``result["last_seq"]``), or iterate it at once with ``async for change in
    db.changes(...)`` to stream the changes without keeping them; :attr:`last_seq` and
    :attr:`pending` are known when that loop has ended. It is an :class:`asyncio.Task`: ``cancel()``
    closes the connection, ``done()`` says whether the response has arrived whole.
    """

    _changes_state: _ChangesState

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        self._changes_state.streaming = True  # in time unless the task has begun reading it whole
        return self._changes()

    async def _changes(self) -> AsyncIterator[dict[str, Any]]:
        result = await self
        async for change in _streamed_changes(result):
            yield change

    @property
    def last_seq(self) -> Seq | None:
        """The response's ``last_seq`` once read (``None`` before); opaque: a str on
        CouchDB 2+, an int on PouchDB Server."""
        result = self._changes_state.result
        seq: Seq | None = result.meta.get("last_seq") if result is not None else None
        return seq

    @property
    def pending(self) -> int | None:
        """The response's ``pending`` once read, when the server sends it."""
        result = self._changes_state.result
        pending: int | None = result.meta.get("pending") if result is not None else None
        return pending


def _changes_call(started: Any, name: str) -> Any:
    """A :class:`ChangesTask` on the running loop, or a coroutine of the whole result."""
    state = _ChangesState()
    body = _changes_body(started, state)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return body
    task = ChangesTask(body, loop=loop, name=name)
    task._changes_state = state
    return task


# -- continuous changes on the loop ---------------------------------------------------------


_END = object()


class ChangesFeed(_feeds.ChangesFeed):
    """A continuous changes feed of an async :class:`Database`.

    ``async for change in feed`` delivers change dicts; after a dropped connection the
    feed reconnects from the last sequence it delivered. With :meth:`start` (what
    ``db.changes(callback=fn)`` does) a task on the loop calls ``fn(seq, changes)``;
    a callback that raises (or whose coroutine raises) is logged and the feed goes on.
    :meth:`stop` ends either; ``await feed.wait()`` waits for a started feed to end.
    An error that ends a started feed (a missing ``filter``'s 404, a 401/403) is not
    passed to ``fn``: it is logged on the ``couchcore.tornado`` logger and kept in
    :attr:`error` (``None`` while the feed runs or when it ended without one).
    """

    _task: asyncio.Task[Any] | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    if TYPE_CHECKING:  # async for, not for: a plain for raises TypeError on this feed
        def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...
        __iter__: None  # type: ignore[assignment]

    def start(self, callback: Callable[[Any, list[Any]], Any], latency: float = 0.0) -> "ChangesFeed":
        """Run the feed as a task on the running loop, calling ``callback(seq, changes)`` with
        batches gathered over ``latency`` seconds (it may be a coroutine function); returns the
        feed. :class:`~couchcore.errors.InvalidInput` if ``callback`` is not callable,
        ``RuntimeError`` outside a running loop. ``callback`` only ever gets changes: an
        error that ends the feed is logged and kept in :attr:`error` (see the class)."""
        if not callable(callback):
            raise InvalidInput("callback must be callable")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("a callback-driven async changes feed needs a running event loop") from None
        self.error = None
        self._loop = loop
        self._task = loop.create_task(self._pump(callback, latency), name=f"couchcore.changes {self._db.name}")
        return self

    def stop(self) -> None:
        """End the feed (from any thread)."""
        super().stop()
        task, loop = self._task, self._loop
        if task is not None and loop is not None and not task.done():
            from .transport._loop import call_in_loop

            call_in_loop(loop, task.cancel)

    async def wait(self) -> None:
        """Wait until a started feed has ended (after :meth:`stop` or the server's last_seq)."""
        if self._task is not None:
            try:
                await asyncio.shield(self._task)
            except asyncio.CancelledError:
                if not self._task.cancelled():
                    raise

    def join(self, timeout: float | None = None) -> None:
        """Not for an async feed: raises :class:`StreamMisuse` (a ``TypeError``; use
        ``await feed.wait()``)."""
        raise StreamMisuse("an async ChangesFeed: use 'await feed.wait()'")

    async def _pump(self, callback: Callable[[Any, list[Any]], Any], latency: float) -> None:
        def failed(exc: BaseException) -> None:
            self.error = exc

        await _pump_batches(self, self._db.name, callback, latency, failed)


async def _pump_batches(source: Any, name: str, callback: Callable[[Any, list[Any]], Any], latency: float,
                        failed: Callable[[BaseException], None]) -> None:
    """Read ``source`` (an async iterable of changes: a feed or a follower) and call
    ``callback(seq, changes)`` with the changes gathered over ``latency`` seconds; an error
    that ends ``source`` is logged and handed to ``failed``."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue(maxsize=10_000)

    async def reader() -> None:
        try:
            async for change in source:
                await inbox.put(change)
        except CouchcoreError as exc:
            log.error("changes feed of %s stopped: %s", name, exc)
            failed(exc)
        except Exception as exc:  # pragma: no cover - a bug, but never silently
            log.exception("changes feed of %s failed", name)
            failed(exc)
        finally:
            try:
                inbox.put_nowait(_END)
            except asyncio.QueueFull:
                loop.create_task(inbox.put(_END))

    reading = loop.create_task(reader(), name=f"couchcore.changes-reader {name}")
    try:
        ended = False
        while not ended:
            item = await inbox.get()
            if item is _END:
                return
            batch = [item]
            deadline = loop.time() + latency
            while True:
                if inbox.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(inbox.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                else:
                    item = inbox.get_nowait()
                if item is _END:
                    ended = True
                    break
                batch.append(item)
            await call_feed_callback(callback, batch)
    finally:
        reading.cancel()


Database._feed_class = ChangesFeed

# the seed's callback style: every operation of the facade takes callback= (couchcore._callbacks)
add_callbacks(Server)
add_callbacks(Database)
