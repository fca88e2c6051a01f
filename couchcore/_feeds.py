"""ChangesFeed: a continuous ``_changes`` feed that survives dropped connections."""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator

from .errors import CouchcoreError, ServerError, StreamMisuse, TooManyRequests, TransportError
from .protocol.changes import FeedState
from .protocol.shapes import Seq

__all__ = ["ChangesFeed", "ResumingFeed", "stop_feeds"]

log = logging.getLogger("couchcore.changes")

_RETRYABLE = (TransportError, ServerError, TooManyRequests)

# the feeds made through each Server (weakly held both ways), stopped by its close()
_OPEN: "weakref.WeakKeyDictionary[Any, weakref.WeakSet[ResumingFeed]]" = weakref.WeakKeyDictionary()
_OPEN_LOCK = threading.Lock()


def stop_feeds(server: Any) -> None:
    """Stop every feed made through ``server`` (any thread): each one's iteration ends
    as after :meth:`ResumingFeed.stop`, instead of reconnecting to a closed Server."""
    with _OPEN_LOCK:
        feeds = list(_OPEN.pop(server, ()))
    for feed in feeds:
        feed.stop()


class ResumingFeed:
    """What :class:`ChangesFeed` and :class:`~couchcore._follow.ChangesFollower` share:
    a :class:`~couchcore.protocol.changes.FeedState` (the reconnect, ``since``, limit
    and backoff logic, written once) and the two thin loops that drive it, one sync
    and one async, plus :meth:`stop` from any thread."""

    _state: FeedState
    _db: Any

    def _init_driver(self) -> None:
        self._source: Any = None  # the response (or ChangesResult) being read, closed by stop()
        self._opening: Any = None  # the asyncio task sending the request, cancelled by stop()
        self._opening_loop: Any = None
        self._lock = threading.Lock()
        self.error: BaseException | None = None  # the error that ended the feed, if any
        # the Server whose close() stops the feed (see stop_feeds): the database's, or the
        # Server itself for its /_db_updates feed
        server = getattr(self._db, "_server", None) if self._state.endpoint is None else self._db
        if server is not None:
            with _OPEN_LOCK:
                _OPEN.setdefault(server, weakref.WeakSet()).add(self)

    # -- state, as attributes -------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        """Whether the feed has ended (stopped, or the server's last change delivered)."""
        return self._state.stopped

    @property
    def delivered(self) -> int:
        """Changes delivered so far (across reconnects)."""
        return self._state.delivered

    @property
    def reconnects(self) -> int:
        """Requests made again after a lost connection or a failure."""
        return self._state.reconnects

    @property
    def max_retries(self) -> int | None:
        """Consecutive failures tolerated before the last one is raised (``None``: no end)."""
        return self._state.max_retries

    @max_retries.setter
    def max_retries(self, value: int | None) -> None:
        self._state.max_retries = value

    @property
    def meta(self) -> dict[str, Any]:
        """The metadata (``last_seq``, ``pending``) of the last complete answer."""
        return self._state.meta

    def stop(self) -> None:
        """Stop the feed (from any thread); a blocked iteration returns soon after."""
        self._state.stop()
        with self._lock:
            source, task, loop = self._source, self._opening, self._opening_loop
        if source is not None:
            try:
                source.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass
        if task is not None and loop is not None and not task.done():
            from .transport._loop import call_in_loop

            call_in_loop(loop, task.cancel)

    def _hold(self, source: Any) -> None:
        with self._lock:
            self._source = source
        if source is not None and self._state.stopped:  # stop() came while the request was on its way
            source.close()

    # -- the drivers -------------------------------------------------------------------------
    def _iterate(self) -> Iterator[dict[str, Any]]:
        state = self._state
        try:
            while not state.done:
                try:
                    source = self._db._run(state.open(self._db._ctx))
                    self._hold(source)
                    try:
                        for item in state.items(source):
                            yield from state.receive(item)
                            if not state.reading:
                                break
                        delay = state.end(source)
                    finally:
                        self._hold(None)
                        source.close()
                except Exception as exc:
                    delay = state.lost(exc)
                if delay:
                    time.sleep(delay)
        except Exception as exc:
            self.error = exc
            raise

    async def _aiterate(self) -> AsyncIterator[dict[str, Any]]:
        import asyncio  # here, not at module level: only the async path needs it (import cost)

        state = self._state
        self._opening_loop = asyncio.get_running_loop()
        try:
            while not state.done:
                try:
                    task = asyncio.ensure_future(self._db._run(state.open(self._db._ctx)))
                    with self._lock:
                        self._opening = task
                    try:
                        source = await task
                    except asyncio.CancelledError:
                        if state.stopped and task.cancelled():
                            return
                        raise
                    finally:
                        with self._lock:
                            self._opening = None
                    self._hold(source)
                    try:
                        async for item in state.items(source):
                            for change in state.receive(item):
                                yield change
                            if not state.reading:
                                break
                        delay = state.end(source)
                    finally:
                        self._hold(None)
                        source.close()
                except Exception as exc:
                    delay = state.lost(exc)
                if delay:
                    await asyncio.sleep(delay)
        except Exception as exc:
            self.error = exc
            raise


class ChangesFeed(ResumingFeed):
    """A continuous changes feed.

    Iterate it (``for change in feed`` on sync backends, ``async for`` on async
    ones) to receive change dicts as they happen; or pass ``callback(seq, changes)``
    to :meth:`Database.changes` and it is called with batches gathered over
    ``latency`` seconds. When the connection drops the feed reconnects from the last
    sequence it delivered, so nothing is lost or repeated; the feed ends when the
    server ends it after the ``timeout`` or ``limit`` asked for, or on :meth:`stop`
    (CouchDB also ends a feed whose database is deleted: the feed asks again and
    raises :class:`~couchcore.errors.NotFound`). ``last_seq`` is the sequence of the last change delivered.
    ``since="now"`` is read when the iteration starts (or :meth:`start`), not when the feed
    is made: nothing is sent before, so a change written in between is not delivered;
    pass ``since=db.info()["update_seq"]`` to start from the moment of the call.
    ``limit`` counts across reconnects; ``descending=True`` raises
    :class:`~couchcore.errors.InvalidOption` (CouchDB ignores ``since`` when descending: a
    reconnect could not resume; ``db.changes(descending=True)``, a normal feed, lists the
    changes newest first). After a failure the feed waits ``retry_delay``
    seconds, doubling with each further failure in a row up to ``max_delay``, and gives
    up after ``max_retries`` failures in a row (the last one is raised).

    A feed may stay silent for long, so its read timeout is its own, not the Server's
    ``timeout``: 3 heartbeats + 5 s (the default ``heartbeat=30000`` ms: 95 s), or the
    ``timeout`` asked of the server + 30 s when one is given without a heartbeat. A
    connection that dies silently (a NAT or load balancer dropping an idle flow: no FIN,
    no RST) is noticed after that long, then the feed reconnects from ``last_seq``; pass
    a shorter ``heartbeat`` (e.g. ``5000``: 20 s) to notice sooner.
    """

    def __init__(self, db: Any, options: dict[str, Any], max_retries: int = 10,
                 retry_delay: float = 0.1, max_delay: float = 10.0, endpoint: str | None = None) -> None:
        self._db = db
        options = dict(options)
        options.pop("feed", None)
        if options.get("timeout") is None:
            # keep an idle feed open; not with a timeout, which CouchDB ignores once a heartbeat is set
            options.setdefault("heartbeat", 30000)
        since = options.pop("since", None)
        limit = options.pop("limit", None)
        self.retry_delay = retry_delay
        self.max_delay = max_delay
        # db: a Database, or a Server for its feed of database events (endpoint=DB_UPDATES)
        self._state = FeedState("" if endpoint else db.name, options, feed="continuous", since=since,
                                limit=limit, max_retries=max_retries, backoff=self._backoff,
                                retry_on=_RETRYABLE, url=db.url, logger=log, endpoint=endpoint)
        self._init_driver()
        self._thread: threading.Thread | None = None

    @property
    def last_seq(self) -> Seq | None:
        """The sequence of the last change delivered (then the server's ``last_seq``); the
        ``since`` given until then (``None`` without one). Opaque: a str on CouchDB 2+,
        an int on PouchDB Server."""
        seq: Seq | None = self._state.since
        return seq

    def _backoff(self, failures: int) -> float:
        return float(min(self.retry_delay * (2 ** (failures - 1)), self.max_delay))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if getattr(self._db, "is_async", False):
            raise StreamMisuse("this ChangesFeed comes from an async Database: use 'async for'")
        return self._iterate()

    if not TYPE_CHECKING:  # the async facade's feed declares it (couchcore.tornado.ChangesFeed)
        def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
            if not getattr(self._db, "is_async", False):
                raise StreamMisuse("this ChangesFeed comes from a sync Database: use a plain 'for'")
            return self._aiterate()

    # -- callback style (sync) -------------------------------------------------------
    def start(self, callback: Callable[[Any, list[Any]], Any], latency: float = 0.0) -> "ChangesFeed":
        """Deliver batches to ``callback(seq, changes)`` from a background thread.

        Changes arriving within ``latency`` seconds of the first one of a batch are
        delivered together; ``seq`` is the last non-null ``seq`` of the batch (with
        ``seq_interval`` CouchDB sends ``"seq": null`` on most changes: then the last one
        known). A callback that raises is logged; the feed goes on.
        """
        inbox: queue.Queue[Any] = queue.Queue()

        def reader() -> None:
            try:
                for change in self:
                    inbox.put(change)
            except CouchcoreError as exc:
                log.error("feed %s stopped: %s", self._state.where, exc)
                self.error = exc
            finally:
                inbox.put(_END)

        def dispatcher() -> None:
            ended = False
            seq = self._state.since  # the last non-null seq (seq_interval: null on most changes)
            while not ended:
                item = inbox.get()
                if item is _END:
                    return
                batch = [item]
                deadline = time.monotonic() + latency
                while True:
                    wait = deadline - time.monotonic()
                    try:
                        item = inbox.get(timeout=wait) if wait > 0 else inbox.get_nowait()
                    except queue.Empty:
                        break
                    if item is _END:
                        ended = True
                        break
                    batch.append(item)
                seq = next((c["seq"] for c in reversed(batch) if c.get("seq") is not None), seq)
                try:
                    callback(seq, batch)
                except Exception:
                    log.exception("changes callback raised; the feed goes on")

        threading.Thread(target=reader, name="couchcore-changes-reader", daemon=True).start()
        self._thread = threading.Thread(target=dispatcher, name="couchcore-changes", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        """Wait for a callback-driven feed to end (after :meth:`stop` or the server's last_seq)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def __repr__(self) -> str:
        state = "stopped" if self.stopped else "open"
        return f"<{type(self).__name__} {self._state.where} {state} last_seq={self.last_seq!r} delivered={self.delivered}>"


_END = object()
