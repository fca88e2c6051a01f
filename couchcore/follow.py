"""ChangesFollower: every change of a database, from a longpoll loop that keeps going.

``db.follow(since="now")`` asks ``_changes?feed=longpoll&since=...`` again and again,
each time from the last sequence it delivered, so no change is lost or repeated. A
request that fails for a transient reason (no connection, a broken or timed-out read,
5xx, 429, ...) is retried after a full-jitter backoff (the Server's ``backoff`` /
``max_backoff``, see :class:`couchcore.drivers.RetryPolicy`); 400, 401, 403 and 404
end the follower with that error. ``one_off=True`` reads with ``feed=normal`` until the
server says nothing is pending and ends: it never waits out a longpoll timeout.
CouchDB: https://docs.couchdb.org/en/stable/api/database/changes.html
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, AsyncIterator, Generator, Iterator

from .drivers import RetryPolicy
from .errors import BadRequest, Forbidden, HTTPError, InvalidInput, NotFound, ReadTimeout, TransportError, \
    Unauthorized
from .protocol import changes as _changes
from .protocol import database as _db
from .protocol.messages import Request, Response
from .results import ChangesResult

if TYPE_CHECKING:  # pragma: no cover
    import asyncio

    from .api import DatabaseAPI

__all__ = ["ChangesFollower", "TERMINAL_ERRORS", "DEFAULT_LONGPOLL_TIMEOUT"]

log = logging.getLogger("couchcore.follow")

#: Errors that end a follower at once (retrying cannot help).
TERMINAL_ERRORS: tuple[type[HTTPError], ...] = (BadRequest, Unauthorized, Forbidden, NotFound)

#: The longpoll ``timeout`` (ms) asked of the server when none is given; the read
#: timeout is 30 s longer, so the server always answers first.
DEFAULT_LONGPOLL_TIMEOUT = 60_000

_OWN_OPTIONS = frozenset({"feed", "since", "descending"})


class ChangesFollower:
    """Follows a database's ``_changes``; iterate it (``for``, or ``async for`` on the
    async facade) for the change dicts (``{"seq", "id", "changes", "deleted"?, "doc"?}``).

    * :attr:`since`: the sequence to resume from, opaque (a str on CouchDB 2+; never
      parsed): the ``seq`` of the last change delivered, then the ``last_seq`` of each
      answer. ``since="now"`` is pinned to the database's ``update_seq`` before the
      first request, so a reconnect loses nothing.
    * :meth:`stop` (from any thread, or from the loop body) ends the iteration: at once
      when a response is streaming or on the async facade, otherwise when the pending
      longpoll returns (at most its ``timeout``).
    * ``one_off=True``: ends once caught up: ``pending == 0`` (or, where the server sends
      no ``pending``, an answer shorter than ``limit``, or any answer without ``limit``).
    * ``changes_options``: those of ``Database.changes`` (``filter``, ``doc_ids``,
      ``selector``, ``include_docs``, ``limit`` per request, ``timeout`` in ms: the
      server's longpoll timeout, default 60000, ...); ``feed`` and ``descending`` are
      the follower's own. Bad options raise :class:`InvalidInput` / ``InvalidOption``
      before anything is sent.
    * ``max_retries``: consecutive transient failures tolerated before the last one is
      raised (default: without end for a follower, 10 for ``one_off``).
    * :attr:`error`: the error that ended it, if any (also raised by the iteration).
    """

    def __init__(self, db: "DatabaseAPI", since: Any = "now", one_off: bool = False,
                 max_retries: int | None = None, **changes_options: Any) -> None:
        own = _OWN_OPTIONS & set(changes_options)
        if own:
            raise InvalidInput(f"follow() sets {', '.join(sorted(own))} itself (since= is its own argument)")
        if not isinstance(one_off, bool):
            raise InvalidInput(f"one_off must be a bool, got {one_off!r}")
        if max_retries is not None and (isinstance(max_retries, bool) or not isinstance(max_retries, int)
                                        or max_retries < 0):
            raise InvalidInput(f"max_retries must be a non-negative int or None, got {max_retries!r}")
        if since is None or isinstance(since, bool) or not isinstance(since, (str, int)):
            raise InvalidInput(f"since must be a sequence (str), 0 or 'now', got {since!r}")
        self._db = db
        self.one_off = one_off
        self.since: Any = since
        self.max_retries = (10 if one_off else None) if max_retries is None else max_retries
        options = dict(changes_options)
        if not one_off and options.get("timeout") is None and not options.get("heartbeat"):
            options["timeout"] = DEFAULT_LONGPOLL_TIMEOUT
        self._options = options
        _changes.changes_request(db.name, self._request_options())  # validate before anything is sent
        self.pending: int | None = None
        self.error: BaseException | None = None
        self.delivered = 0
        self.reconnects = 0
        self._stopped = False
        self._started = False
        self._result: ChangesResult | None = None
        self._task: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    # -- control -----------------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """End the iteration (see the class docstring for how soon)."""
        self._stopped = True
        with self._lock:
            result, task, loop = self._result, self._task, self._loop
        if result is not None:
            try:
                result.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass
        if task is not None and loop is not None and not task.done():
            from .transport.tornado import _call_in_loop

            _call_in_loop(loop, task.cancel)

    def __enter__(self) -> "ChangesFollower":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    async def __aenter__(self) -> "ChangesFollower":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.stop()

    def __await__(self) -> Generator[Any, None, "ChangesFollower"]:
        """``follower = await db.follow(...)`` works as well (nothing is sent yet)."""
        return self._itself().__await__()

    async def _itself(self) -> "ChangesFollower":
        return self

    def __repr__(self) -> str:
        mode = "one-off" if self.one_off else "longpoll"
        state = "stopped" if self._stopped else "open"
        return f"<ChangesFollower {self._db.name} {mode} {state} since={self.since!r} delivered={self.delivered}>"

    # -- the protocol ------------------------------------------------------------------
    def _request_options(self) -> dict[str, Any]:
        return {**self._options, "feed": "normal" if self.one_off else "longpoll", "since": self.since}

    def _op(self) -> Generator[Request, Response, ChangesResult]:
        if self.since == "now":  # pin it: a reconnect after a failure must not skip changes
            info = yield from _db.info(self._db._ctx, self._db.name)
            self.since = info["update_seq"]
        result: ChangesResult = yield from _changes.changes(self._db._ctx, self._db.name, **self._request_options())
        return result

    def _deliver(self, change: dict[str, Any]) -> None:
        if "seq" in change:
            self.since = change["seq"]
        self.delivered += 1

    def _page_done(self, result: ChangesResult, count: int) -> bool:
        """Note the answer's ``last_seq``/``pending``; whether a one-off follower is done."""
        meta = result.meta
        if meta.get("last_seq") is not None:
            self.since = meta["last_seq"]
        pending = meta.get("pending")
        self.pending = pending if isinstance(pending, int) else None
        if not self.one_off:
            return False
        if self.pending is not None:
            return self.pending == 0
        limit = self._options.get("limit")
        return limit is None or count < limit

    def _failed(self, exc: BaseException, failures: int) -> float:
        """Seconds to wait before the next attempt, or raise ``exc`` (terminal, or too many)."""
        if isinstance(exc, TERMINAL_ERRORS) or not isinstance(exc, (HTTPError, TransportError)):
            self.error = exc
            raise exc
        if self.max_retries is not None and failures > self.max_retries:
            self.error = exc
            raise exc
        policy = RetryPolicy.of(self._db._server._transport)
        wait = policy._backoff(failures - 1)
        log.warning("changes follower of %s: %s; retrying from %r in %.2fs", self._db.name,
                    type(exc).__name__, self.since, wait)
        return wait

    def _claim(self) -> None:
        if self._started:
            raise RuntimeError("this ChangesFollower is already being iterated; make another with db.follow()")
        self._started = True

    # -- sync --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, Any]]:
        if getattr(self._db, "is_async", False):
            raise TypeError("this ChangesFollower comes from an async Database: use 'async for'")
        self._claim()
        return self._iterate()

    def _iterate(self) -> Iterator[dict[str, Any]]:
        failures = 0
        while not self._stopped:
            count = 0
            try:
                result: ChangesResult = self._db._run(self._op())
                with self._lock:
                    self._result = result
                try:
                    for change in result:
                        count += 1
                        self._deliver(change)
                        yield change
                        if self._stopped:
                            return
                    done = self._page_done(result, count)
                finally:
                    with self._lock:
                        self._result = None
                    result.close()
            except Exception as exc:
                if self._stopped:  # stop() closed the response under the reader: whatever it raised
                    return
                if not isinstance(exc, (HTTPError, TransportError)):
                    self.error = exc
                    raise
                if isinstance(exc, ReadTimeout) and not self.one_off and not count:
                    # an idle longpoll outlived its read timeout (a server that ignores timeout=):
                    # ask again at once; a hung server costs one read timeout a round, no busy loop
                    self.reconnects += 1
                    failures = 0
                    continue
                failures = 1 if count else failures + 1
                wait = self._failed(exc, failures)
                self.reconnects += 1
                if wait:
                    time.sleep(wait)
                continue
            failures = 0
            if done:
                return

    # -- async -------------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        if not getattr(self._db, "is_async", False):
            raise TypeError("this ChangesFollower comes from a sync Database: use a plain 'for'")
        self._claim()
        return self._aiterate()

    async def _aiterate(self) -> AsyncIterator[dict[str, Any]]:
        import asyncio  # here, not at module level: only the async path needs it (import cost)

        self._loop = asyncio.get_running_loop()
        failures = 0
        while not self._stopped:
            count = 0
            try:
                task = asyncio.ensure_future(self._db._run(self._op()))
                with self._lock:
                    self._task = task
                try:
                    result: ChangesResult = await task
                except asyncio.CancelledError:
                    if self._stopped and task.cancelled():
                        return
                    raise
                finally:
                    with self._lock:
                        self._task = None
                with self._lock:
                    self._result = result
                try:
                    async for change in result:
                        count += 1
                        self._deliver(change)
                        yield change
                        if self._stopped:
                            return
                    done = self._page_done(result, count)
                finally:
                    with self._lock:
                        self._result = None
                    result.close()
            except Exception as exc:
                if self._stopped:  # stop() closed the response under the reader: whatever it raised
                    return
                if not isinstance(exc, (HTTPError, TransportError)):
                    self.error = exc
                    raise
                if isinstance(exc, ReadTimeout) and not self.one_off and not count:
                    # an idle longpoll outlived its read timeout (a server that ignores timeout=):
                    # ask again at once; a hung server costs one read timeout a round, no busy loop
                    self.reconnects += 1
                    failures = 0
                    continue
                failures = 1 if count else failures + 1
                wait = self._failed(exc, failures)
                self.reconnects += 1
                if wait:
                    await asyncio.sleep(wait)
                continue
            failures = 0
            if done:
                return
