"""The synchronous facade: :class:`Server` and :class:`Database` over a sync backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from ._api import DatabaseAPI, ServerAPI
from .auth import SessionAuth
from ._drivers import RetryPolicy, run
from .errors import HTTPError, InvalidInput
from .models import Document
from .transport.base import get_backend

__all__ = ["Server", "Database", "Couch"]

if TYPE_CHECKING:  # the typed methods, generated from api.py (tools/gen_facades.py)
    from ._facades import SyncDatabaseAPI as _DatabaseBase
    from ._facades import SyncServerAPI as _ServerBase
else:
    _DatabaseBase, _ServerBase = DatabaseAPI, ServerAPI


class Server(_ServerBase):
    """A CouchDB server, used synchronously.

    ``Server(url=None, auth=None, full_commit=True, backend="urllib3", **transport_options)``:
    ``url`` defaults to ``$COUCHDB_URL`` (several node URLs of one cluster separated by
    commas or spaces) or ``http://127.0.0.1:5984`` and may carry
    credentials (``http://user:pw@host:5984``, percent-encoded: a password holding
    ``/ ? #`` unencoded raises :class:`~couchcore.errors.InvalidInput`);
    ``auth=(user, password)`` overrides them and takes any password as it is (HTTP
    Basic: ``user`` a non-empty ``str`` without ``:``, ``password`` a ``str``, else
    :class:`~couchcore.errors.InvalidInput`; RFC 7617,
    https://docs.couchdb.org/en/stable/api/server/authn.html#basic-authentication); ``auth=`` also takes :class:`couchcore.SessionAuth` (cookie login through
    ``/_session``, :meth:`login`/:meth:`logout`), :class:`couchcore.JWTAuth` or
    :class:`couchcore.ProxyAuth`; anything else raises :class:`~couchcore.errors.InvalidInput`.
    ``url`` may be a list of node URLs of one cluster (one scheme, one path prefix):
    requests go round-robin, a node that refuses connections is set aside and the request
    goes to the next; one that answers 502/503/504 is set aside too, and a GET/HEAD goes
    to the next node while a write gets the :class:`~couchcore.errors.ServerError`; one
    whose answer does not come within the read timeout (a node that hangs) is set aside,
    and a read goes to the next node once while a write raises its
    :class:`~couchcore.errors.WriteTimeout` (see :mod:`couchcore._nodes`); ``server.urls``
    lists them.

    Timeouts (seconds; the same on every backend):

    * ``timeout=90``: the read timeout, an idle timeout (the server must send
      something at least every 90 s; ``None`` waits forever), a little over
      CouchDB's own 60 s request timeout. A stalled server costs one read timeout:
      timeouts are never retried. A write whose answer timed out raises
      :class:`~couchcore.errors.WriteTimeout`, also an ``OutcomeUnknown``: it may have
      been applied.
    * ``connect_timeout=10`` (or ``timeout`` when smaller): TCP connect and TLS
      handshake; ``https://`` to a port that never completes a handshake raises
      :class:`~couchcore.errors.ConnectTimeout` after it.

    Retries (one policy for every backend, see :class:`couchcore._drivers.RetryPolicy`):
    ``retries=2`` more attempts, exponential backoff with full jitter from
    ``backoff=0.25`` up to ``max_backoff=10``, none started after ``deadline=None``
    seconds; only a request that could not connect, a GET/HEAD whose connection broke,
    or a 429 (after its ``Retry-After``, if at most ``max_backoff``). A write that may
    have been sent is never re-sent: :class:`~couchcore.errors.OutcomeUnknown`.
    ``couchcore.call_options(timeout=..., retries=..., deadline=...)`` overrides them
    for the calls made inside a ``with`` block.

    Other transport options: ``verify`` (TLS verification, on by default),
    ``ca_certs``, ``cert_file``, ``key_file``, ``headers``, and ``maxsize`` (default
    10): the idle connections *kept* per host, not a cap on connections (threads
    beyond it open more, closed after use; what bounds connections is the number of
    requests in flight: see :class:`~couchcore.transport.base.TransportOptions`).
    Errors: :class:`~couchcore.errors.HTTPError` subclasses (with the full URL,
    credentials removed), :class:`~couchcore.errors.TransportError` subclasses (also
    Python's ``ConnectionError``/``TimeoutError``); ``server[name]`` on a missing
    database raises :class:`~couchcore.errors.NotFoundKeyError`, also a ``KeyError``.
    """

    def _make_transport(self, backend: str | None, url: str | None = None) -> Any:
        return get_backend(backend or "urllib3")(url or self.url, self.credentials, self.options)

    def _run(self, op: Any, post: Callable[[Any], Any] | None = None) -> Any:
        result = run(self._authed(op), self._transport)
        return post(result) if post is not None else result

    def _iter_many(self, ops: Iterable[Any], concurrency: int) -> Iterator[tuple[int, Any]]:
        """``(index, result)`` as operations finish, at most ``concurrency`` in flight;
        ``ops`` is consumed lazily and a failed operation yields its exception."""
        if isinstance(self.auth, SessionAuth) and not self.auth.logged_in:
            self.login()  # once, before many operations start at once in this thread
        ops = map(self._authed, ops)  # the auth flow around each request, on every engine
        iter_many = getattr(self._transport, "iter_many", None)
        if iter_many is not None:  # pycurl: one CurlMulti handle, many transfers in flight
            for i, result in iter_many(ops, concurrency, RetryPolicy.of(self._transport)):
                if isinstance(result, HTTPError):
                    result._rebase(self.url)
                yield i, result
            return
        yield from _threaded(ops, concurrency, lambda op: run(op, self._transport))

    def _run_many(self, ops: Iterable[Any], concurrency: int, post: Callable[[list[Any]], Any]) -> Any:
        done = dict(self._iter_many(ops, concurrency))
        return post([done[i] for i in range(len(done))])

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator[str]:
        """The database names (``str``), in name order: :meth:`all_dbs` (``GET /_all_dbs``)."""
        return iter(self.all_dbs())

    def __len__(self) -> int:
        """How many databases there are (``GET /_all_dbs``)."""
        return len(self.all_dbs())

    def __contains__(self, name: object) -> bool:
        """``name in server``: whether database ``name`` exists (``HEAD /{db}``); ``False``
        for a non-str or invalid name.
        https://docs.couchdb.org/en/stable/api/database/common.html#head--db
        """
        if not isinstance(name, str):
            return False
        try:
            return bool(self.exists(name))
        except InvalidInput:
            return False

    def __getitem__(self, name: str) -> "Database":
        """The database ``name``; :class:`~couchcore.errors.NotFoundKeyError` (both a
        ``NotFound`` and a ``KeyError``) if it does not exist."""
        return self._item(name)

    def __delitem__(self, name: str) -> None:
        """Delete database ``name``; ``NotFoundKeyError`` (a ``KeyError``) if missing."""
        self._del_item(name)


class Database(_DatabaseBase):
    """A CouchDB database, used synchronously.

    Build it with ``server.db(name)``, ``server[name]``, or directly from a URL:
    ``Database("http://user:pw@host:5984/events")``.
    """

    _server_class = Server

    def __contains__(self, docid: object) -> bool:
        """``docid in db``: whether the document exists and is not deleted (``HEAD
        /{db}/{docid}``, :meth:`contains`); ``False`` for a non-str id."""
        return isinstance(docid, str) and bool(self.contains(docid))

    def __getitem__(self, docid: str) -> Document:
        """The document ``docid``; :class:`~couchcore.errors.NotFoundKeyError` (both a
        ``NotFound`` and a ``KeyError``) if it is missing or deleted."""
        return self._item(docid)

    def __setitem__(self, docid: str, doc: dict[str, Any]) -> None:
        """``db[docid] = doc``: save the dict ``doc`` under ``docid`` (:meth:`save`: ``_id``
        and ``_rev`` are set on it; :class:`~couchcore.errors.Conflict` when its ``_rev``
        is not the current one; :class:`InvalidInput` for a non-dict)."""
        if not isinstance(doc, dict):
            raise InvalidInput("db[id] = doc needs a dict")
        doc["_id"] = docid
        self.save(doc)

    def __delitem__(self, docid: str) -> None:
        """Delete the current revision of ``docid``; ``NotFoundKeyError`` (a ``KeyError``)
        if it is missing. A document with conflicts keeps its other leaves: one of them
        becomes the current revision, so ``docid in db`` stays ``True`` until every leaf is
        deleted (see :meth:`delete`)."""
        self._del_item(docid)

    def __len__(self) -> int:
        """The number of documents, design documents included, deleted ones not
        (``doc_count`` of ``GET /{db}``)."""
        return int(self.info()["doc_count"])

    def __iter__(self) -> Iterator[str]:
        """The document ids (``str``), in id order, streamed from ``GET /{db}/_all_docs``."""
        for row in self.view("_all_docs"):
            if row.id is not None:  # (every _all_docs row has one)
                yield row.id


def _threaded(ops: Iterable[Any], concurrency: int, runner: Callable[[Any], Any]) -> Iterator[tuple[int, Any]]:
    """Run operations on a thread pool, bounded: at most ``concurrency`` submitted at once."""
    import contextvars
    import queue
    from concurrent.futures import Future, ThreadPoolExecutor

    def attempt(op: Any) -> Any:
        try:
            return runner(op)
        except Exception as exc:
            return exc

    # each future reports itself to one queue as it finishes: one put and one get per
    # operation (concurrent.futures.wait(FIRST_COMPLETED) adds and removes a waiter on
    # every future in flight for every one that finishes)
    finished: queue.SimpleQueue[tuple[int, Future[Any]]] = queue.SimpleQueue()

    def report(i: int) -> Callable[[Future[Any]], None]:
        return lambda future: finished.put((i, future))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        flying = 0
        for i, op in enumerate(ops):
            if flying >= concurrency:
                j, future = finished.get()
                flying -= 1
                yield j, future.result()
            # each in the caller's context, so couchcore.call_options(...) reaches the threads
            future = pool.submit(contextvars.copy_context().run, attempt, op)
            future.add_done_callback(report(i))
            flying += 1
        while flying:
            j, future = finished.get()
            flying -= 1
            yield j, future.result()


Server._database_class = Database
Couch = Server


