"""ChangesFollower: every change of a database, from a longpoll loop that keeps going.

``db.follow(since="now")`` asks ``_changes?feed=longpoll&since=...`` again and again,
each time from where the last answer ended (its ``last_seq``; the ``seq`` of its last
change when the ``limit`` per request cut it), so no change is lost or repeated. A
request that fails for a transient reason (no connection, a broken or timed-out read,
5xx, 429, ...) is retried after a full-jitter backoff (the Server's ``backoff`` /
``max_backoff``, see :class:`couchcore._drivers.RetryPolicy`); 400, 401, 403 and 404
end the follower with that error. ``one_off=True`` reads with ``feed=normal`` until the
server says nothing is pending and ends: it never waits out a longpoll timeout.
CouchDB: https://docs.couchdb.org/en/stable/api/database/changes.html
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, AsyncIterator, Generator, Iterator, Protocol, TypeVar

from ._drivers import RetryPolicy
from .errors import (
    BadRequest,
    Forbidden,
    HTTPError,
    InvalidInput,
    InvalidOption,
    NotFound,
    StreamConsumed,
    StreamMisuse,
    TransportError,
    Unauthorized,
)
from ._feeds import ResumingFeed
from .protocol.changes import FeedState
from .protocol.shapes import Seq

if TYPE_CHECKING:  # pragma: no cover
    from ._api import DatabaseAPI

__all__ = ["ChangesFollower", "AsyncChangesFollower", "TERMINAL_ERRORS", "DEFAULT_LONGPOLL_TIMEOUT"]

_F = TypeVar("_F")

log = logging.getLogger("couchcore.follow")

#: Errors that end a follower at once (retrying cannot help).
TERMINAL_ERRORS: tuple[type[HTTPError], ...] = (BadRequest, Unauthorized, Forbidden, NotFound)

#: The longpoll ``timeout`` (ms) asked of the server when none is given; the read
#: timeout is 30 s longer, so the server always answers first.
DEFAULT_LONGPOLL_TIMEOUT = 60_000

_OWN_OPTIONS = frozenset({"feed", "since", "descending"})


class ChangesFollower(ResumingFeed):
    """Follows a database's ``_changes``; iterate it (``for``, or ``async for`` on the
    async facade) for the change dicts (``{"seq", "id", "changes", "deleted"?, "doc"?}``).

    * :attr:`since`: the sequence to resume from, opaque (a str on CouchDB 2+; never
      parsed): the ``seq`` of the last change delivered, then, once an answer is read to
      its end, that answer's ``last_seq`` -- unless the answer holds as many changes as
      the ``limit`` per request: then it stays the last change's ``seq``, because CouchDB
      can send a ``last_seq`` past filtered changes the limit held back
      (apache/couchdb#1221; see :class:`~couchcore.protocol.changes.FeedState`), and a
      ``one_off`` follower asks again even if that answer said ``pending == 0``.
      ``since="now"`` (the default) is read when the iteration starts, not when
      ``db.follow()`` is called (nothing is sent before the first ``next()``; the async
      facade's ``follow()`` cannot send anything): the first request pins it to the
      database's ``update_seq``, so a reconnect loses nothing, but a change written between
      ``db.follow()`` and the first ``next()`` is not delivered. To follow from the moment
      of the call, pass ``since=db.info()["update_seq"]`` (``(await db.info())[...]`` on
      the async facade).
    * :meth:`stop` (from any thread, or from the loop body) ends the iteration: at once
      when a response is streaming or on the async facade, otherwise when the pending
      longpoll returns (at most its ``timeout``).
    * ``one_off=True``: ends once caught up: ``pending == 0`` (or, where the server sends
      no ``pending``, an answer shorter than ``limit``, or any answer without ``limit``).
    * ``changes_options``: those of ``Database.changes`` (``filter``, ``doc_ids``,
      ``selector``, ``include_docs``, ``limit`` per request (>= 1), ``timeout`` in ms: the
      server's longpoll timeout, default 60000, ...); ``feed`` and ``descending`` are
      the follower's own. Bad options raise :class:`InvalidInput` / ``InvalidOption``
      before anything is sent.
    * ``max_retries``: consecutive transient failures tolerated before the last one is
      raised (default: without end for a follower, 10 for ``one_off``).
    * A longpoll request's read timeout is its own, not the Server's ``timeout``: the
      longpoll ``timeout`` + 30 s (default 90 s), or 3 heartbeats + 5 s when a
      ``heartbeat`` is given; a connection that dies silently (no FIN, no RST) is noticed
      after that long and the request is sent again from :attr:`since`.
    * :attr:`error`: the error that ended it, if any (also raised by the iteration).
    """

    def __init__(self, db: "DatabaseAPI", since: Seq = "now", one_off: bool = False,
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
        if changes_options.get("limit") == 0 and not isinstance(changes_options["limit"], bool):
            # limit is per request: every answer would be empty, so the follower would ask
            # again for ever (one_off: hundreds of requests a second) and deliver nothing
            raise InvalidOption("follow()'s limit is the changes asked per request: give at least 1 "
                                "(or None), not 0")
        filtered = any(changes_options.get(k) is not None for k in ("filter", "doc_ids", "selector"))
        if filtered and changes_options.get("limit") is not None and changes_options.get("seq_interval") is not None:
            # a filtered answer cut by the limit is resumed from its last change's seq, not from
            # last_seq (which can be past changes the limit held back: apache/couchdb#1221); with
            # seq_interval that seq is null, so changes would be lost
            raise InvalidOption("follow() with a filter and a limit cannot take seq_interval: CouchDB sends the "
                                "seq that resuming needs on every seq_interval-th change only, and its last_seq "
                                "can be past filtered changes the limit held back (apache/couchdb#1221): drop "
                                "seq_interval or the limit")
        self._db = db
        self.one_off = one_off
        options = dict(changes_options)
        if not one_off and options.get("timeout") is None and not options.get("heartbeat"):
            options["timeout"] = DEFAULT_LONGPOLL_TIMEOUT
        self._state = FeedState(db.name, options, feed="normal" if one_off else "longpoll", since=since,
                                one_off=one_off,
                                max_retries=(10 if one_off else None) if max_retries is None else max_retries,
                                backoff=self._backoff, retry_on=(HTTPError, TransportError),
                                terminal=TERMINAL_ERRORS, url=db.url, logger=log)
        self._init_driver()
        self._started = False

    @property
    def since(self) -> Seq:
        """The sequence to resume from (opaque: a str on CouchDB 2+, an int on PouchDB
        Server, ``"now"`` or ``0`` as given until the first answer; see the class docstring)."""
        since: Seq = self._state.since
        return since

    @property
    def pending(self) -> int | None:
        """The last answer's ``pending`` (``None`` before, or from a server without it)."""
        return self._state.pending

    def _backoff(self, failures: int) -> float:
        return RetryPolicy.of(self._db._server._transport)._backoff(failures - 1)

    # -- control -----------------------------------------------------------------------
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
        state = "stopped" if self.stopped else "open"
        return f"<ChangesFollower {self._db.name} {mode} {state} since={self.since!r} delivered={self.delivered}>"

    def _claim(self) -> None:
        if self._started:
            raise StreamConsumed("this ChangesFollower is already being iterated; make another with db.follow()")
        self._started = True

    # -- sync --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, Any]]:
        if getattr(self._db, "is_async", False):
            raise StreamMisuse("this ChangesFollower comes from an async Database: use 'async for'")
        self._claim()
        return self._iterate()

    # -- async -------------------------------------------------------------------------
    if not TYPE_CHECKING:  # the async facade's (declared by AsyncChangesFollower)
        async def wait(self) -> None:
            """Wait until a follower started with ``callback=`` on the async facade has ended
            (:meth:`stop`, a ``one_off`` follower caught up, or an error, then in ``.error``);
            returns at once for one without a callback."""
            import asyncio

            task = getattr(self, "_task", None)
            if task is not None:
                try:
                    await asyncio.shield(task)
                except asyncio.CancelledError:
                    if not task.cancelled():
                        raise

        def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
            if not getattr(self._db, "is_async", False):
                raise StreamMisuse("this ChangesFollower comes from a sync Database: use a plain 'for'")
            self._claim()
            return self._aiterate()


class AsyncChangesFollower(Protocol):
    """A :class:`ChangesFollower` of the async facade (``db.follow(...)``), as type
    checkers see it: the same attributes and :meth:`stop`, iterated with ``async for``
    (a plain ``for`` raises ``TypeError`` there, so it is not declared). A protocol: for
    annotations, not ``isinstance``."""

    one_off: bool
    error: BaseException | None
    max_retries: int | None

    @property
    def since(self) -> Seq:
        """The sequence to resume from (opaque)."""
        ...

    @property
    def pending(self) -> int | None:
        """The last answer's ``pending`` (``None`` before, or from a server without it)."""
        ...

    @property
    def stopped(self) -> bool:
        """Whether the follower has ended."""
        ...

    @property
    def delivered(self) -> int:
        """Changes delivered so far."""
        ...

    @property
    def reconnects(self) -> int:
        """Requests made again after a lost connection or a failure."""
        ...

    @property
    def meta(self) -> dict[str, Any]:
        """The metadata (``last_seq``, ``pending``) of the last complete answer."""
        ...

    def stop(self) -> None:
        """End the iteration (from any thread, or from the loop body)."""
        ...

    async def wait(self) -> None:
        """Wait until a follower started with ``callback=`` has ended."""
        ...

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...
    async def __aenter__(self: _F) -> _F: ...
    async def __aexit__(self, *exc: Any) -> None: ...
    def __enter__(self: _F) -> _F: ...
    def __exit__(self, *exc: Any) -> None: ...
    def __await__(self: _F) -> Generator[Any, None, _F]: ...
