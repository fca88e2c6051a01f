"""ChangesFeed: a continuous ``_changes`` feed that survives dropped connections."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, AsyncIterator, Callable, Iterator

from . import rows as _rows
from .errors import CouchcoreError, ServerError, TooManyRequests, TransportError
from .protocol.changes import changes_request
from .results import raise_stream_error

__all__ = ["ChangesFeed"]

log = logging.getLogger("couchcore.changes")

_RETRYABLE = (TransportError, ServerError, TooManyRequests)


class ChangesFeed:
    """A continuous changes feed.

    Iterate it (``for change in feed`` on sync backends, ``async for`` on async
    ones) to receive change dicts as they happen; or pass ``callback(seq, changes)``
    to :meth:`Database.changes` and it is called with batches gathered over
    ``latency`` seconds. When the connection drops the feed reconnects from the last
    sequence it delivered, so nothing is lost or repeated; the feed ends when the
    server ends it (``last_seq``, e.g. after ``timeout`` or ``limit``) or on
    :meth:`stop`. ``last_seq`` is the sequence of the last change delivered.
    """

    def __init__(self, db: Any, options: dict[str, Any], max_retries: int = 10,
                 retry_delay: float = 0.1, max_delay: float = 10.0) -> None:
        self._db = db
        self._options = dict(options)
        self._options["feed"] = "continuous"
        if self._options.get("timeout") is None:
            # keep an idle feed open; not with a timeout, which CouchDB ignores once a heartbeat is set
            self._options.setdefault("heartbeat", 30000)
        changes_request(db.name, self._options)  # validate now, before anything is sent
        self.last_seq: Any = self._options.pop("since", None)
        self._limit = self._options.pop("limit", None)
        self.delivered = 0
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.max_delay = max_delay
        self.reconnects = 0
        self._stopped = False
        self._response: Any = None
        self._thread: threading.Thread | None = None
        self.meta: dict[str, Any] = {}
        self.error: BaseException | None = None  # why a callback-driven feed stopped

    # -- control -----------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """Stop the feed; a blocked iteration returns soon after."""
        self._stopped = True
        resp = self._response
        if resp is not None:
            try:
                resp.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass

    def _request(self):
        opts = dict(self._options)
        if self.last_seq is not None:
            opts["since"] = self.last_seq
        if self._limit is not None:
            opts["limit"] = max(self._limit - self.delivered, 0)
        return changes_request(self._db.name, opts, stream=True)

    def _open_op(self):
        if self.last_seq == "now":
            # pin "now" to a real sequence, so a reconnect before the first change loses nothing
            from .protocol.database import info

            self.last_seq = (yield from info(self._db._ctx, self._db.name))["update_seq"]
        resp = yield self._request()
        resp.raise_for_status()
        return resp

    def _accept(self, change: dict) -> None:
        if "seq" in change:
            self.last_seq = change["seq"]
        self.delivered += 1

    def _finished(self, parser: Any) -> bool:
        if parser.done:
            self.meta.update(parser.meta)
            raise_stream_error(parser.meta, "GET", self._db.name + "/_changes")
            if "last_seq" in parser.meta:
                self.last_seq = parser.meta["last_seq"]
            return True
        return self._limit is not None and self.delivered >= self._limit

    def _backoff(self, failures: int, exc: BaseException) -> float:
        if failures > self.max_retries:
            raise exc
        delay = min(self.retry_delay * (2 ** (failures - 1)), self.max_delay)
        log.warning("changes feed of %s interrupted (%s); reconnecting from %r in %.1fs",
                    self._db.name, type(exc).__name__, self.last_seq, delay)
        return delay

    def _ended_early(self) -> TransportError:
        from .errors import ConnectionError

        return ConnectionError("changes feed ended without last_seq", self._db.url + "/_changes")

    # -- sync --------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict]:
        if getattr(self._db, "is_async", False):
            raise TypeError("this ChangesFeed comes from an async Database: use 'async for'")
        failures = 0
        while not self._stopped:
            if self._limit is not None and self.delivered >= self._limit:
                return
            parser = _rows.make_parser("continuous")
            try:
                self._response = resp = self._db._run(self._open_op())
                try:
                    for chunk in resp.stream:
                        if self._stopped:  # e.g. a heartbeat after stop() on a backend that cannot abort
                            return
                        failures = 0  # data (a change or a heartbeat) arrived: the connection is healthy
                        for change in parser.feed(chunk):
                            self._accept(change)
                            yield change
                            if self._stopped or (self._limit is not None and self.delivered >= self._limit):
                                return
                        if parser.done:
                            break
                    if self._finished(parser):
                        return
                finally:
                    resp.close()
                    self._response = None
            except _RETRYABLE as exc:
                if self._stopped:
                    return
                failures += 1
                time.sleep(self._backoff(failures, exc))
                self.reconnects += 1
                continue
            if self._stopped:
                return
            # the server closed the connection without last_seq: reconnect from last_seq,
            # backing off like after a failure (no busy loop against a server that keeps closing)
            failures += 1
            time.sleep(self._backoff(failures, self._ended_early()))
            self.reconnects += 1

    # -- async -------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[dict]:
        if not getattr(self._db, "is_async", False):
            raise TypeError("this ChangesFeed comes from a sync Database: use a plain 'for'")
        return self._aiterate()

    async def _aiterate(self) -> AsyncIterator[dict]:
        import asyncio

        failures = 0
        while not self._stopped:
            if self._limit is not None and self.delivered >= self._limit:
                return
            parser = _rows.make_parser("continuous")
            try:
                self._response = resp = await self._db._run(self._open_op())
                try:
                    async for chunk in resp.stream:
                        failures = 0  # data (a change or a heartbeat) arrived
                        if self._stopped:  # e.g. a heartbeat after stop() on a backend that cannot abort
                            return
                        for change in parser.feed(chunk):
                            self._accept(change)
                            yield change
                            if self._stopped or (self._limit is not None and self.delivered >= self._limit):
                                return
                        if parser.done:
                            break
                    if self._finished(parser):
                        return
                finally:
                    resp.close()
                    self._response = None
            except _RETRYABLE as exc:
                if self._stopped:
                    return
                failures += 1
                await asyncio.sleep(self._backoff(failures, exc))
                self.reconnects += 1
                continue
            if self._stopped:
                return
            failures += 1
            await asyncio.sleep(self._backoff(failures, self._ended_early()))
            self.reconnects += 1

    # -- callback style (sync) -------------------------------------------------------
    def start(self, callback: Callable[[Any, list], Any], latency: float = 0.0) -> "ChangesFeed":
        """Deliver batches to ``callback(seq, changes)`` from a background thread.

        Changes arriving within ``latency`` seconds of the first one of a batch are
        delivered together. A callback that raises is logged; the feed goes on.
        """
        inbox: queue.Queue = queue.Queue()

        def reader() -> None:
            try:
                for change in self:
                    inbox.put(change)
            except CouchcoreError as exc:
                log.error("changes feed of %s stopped: %s", self._db.name, exc)
                self.error = exc
            finally:
                inbox.put(_END)

        def dispatcher() -> None:
            ended = False
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
                try:
                    callback(batch[-1].get("seq"), batch)
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
        state = "stopped" if self._stopped else "open"
        return f"<ChangesFeed {self._db.name} {state} last_seq={self.last_seq!r} delivered={self.delivered}>"


_END = object()
