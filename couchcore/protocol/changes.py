"""``_changes`` operations (sans-I/O): one-shot feeds and the streamed continuous feed."""

from __future__ import annotations

import logging
from typing import Any, Callable, Generator, Iterator, Literal, Mapping

from .. import codec
from .. import _rows
from ..errors import InvalidOption, ReadTimeout
from .._results import ChangesResult, raise_stream_error
from .messages import Operation, Request, Response
from .paths import db_path
from .server import ServerContext

__all__ = ["changes", "changes_request", "db_updates", "CHANGES_OPTIONS", "DB_UPDATES_OPTIONS", "DB_UPDATES",
           "FeedState", "FeedMode"]

#: Options of ``_changes`` (besides ``params``, the query parameters of a filter function).
CHANGES_OPTIONS = frozenset({
    "feed", "since", "limit", "descending", "heartbeat", "timeout", "filter", "include_docs",
    "style", "view", "doc_ids", "selector", "conflicts", "attachments", "att_encoding_info",
    "seq_interval", "params",
})


#: The server-wide feed of database events (created, updated, deleted), shaped as a
#: ``_changes`` answer: https://docs.couchdb.org/en/stable/api/server/common.html#db-updates
DB_UPDATES = "/_db_updates"

#: Options of ``/_db_updates``.
DB_UPDATES_OPTIONS = frozenset({"feed", "since", "limit", "descending", "heartbeat", "timeout"})


#: Boolean options: ``True``/``False`` (or the text ``"true"``/``"false"``); CouchDB takes
#: any other value (``1``, ``"yes"``) as false without an error
_BOOL_OPTIONS = frozenset({"descending", "include_docs", "conflicts", "attachments", "att_encoding_info"})


def changes_request(db: str, options: Mapping[str, Any], stream: bool = False,
                    endpoint: str | None = None) -> Request:
    """Build the ``_changes`` request; ``doc_ids`` and ``selector`` go in a POST body.
    With ``endpoint=DB_UPDATES`` (``db`` ignored) the ``/_db_updates`` request, whose
    options are :data:`DB_UPDATES_OPTIONS`.

    Raises :class:`InvalidOption` for an unknown option or a value CouchDB would
    misread or ignore: ``doc_ids``, ``selector`` or ``view`` with a ``filter`` other than
    their own (``_doc_ids``, ``_selector``, ``_view``: the default when one is given), a
    boolean option (``include_docs``, ``descending``, ``conflicts``, ...) that
    is not a bool (CouchDB reads ``include_docs=1`` as false, silently), a ``style``
    other than ``"main_only"``/``"all_docs"``, a ``since`` that is not a str or an int,
    ``params`` that is not a dict, a negative ``limit``/``timeout``/``heartbeat``.
    CouchDB: https://docs.couchdb.org/en/stable/api/database/changes.html"""
    allowed, what = (CHANGES_OPTIONS, "changes") if endpoint is None else (DB_UPDATES_OPTIONS, "db_updates")
    unknown = set(options) - allowed
    if unknown:
        hint = ""
        if endpoint is None and isinstance(options.get("filter"), str) and not options["filter"].startswith("_"):
            # filter="app/by_type", type="a": CouchDB hands a filter function the request's
            # query (req.query.type); they go in params, not as options of their own
            hint = (f"; the query parameters of filter {options['filter']!r} (its req.query) go in "
                    f"params={{{', '.join(repr(k) + ': ...' for k in sorted(unknown))}}}")
        raise InvalidOption(f"unknown {what} option(s): {', '.join(sorted(unknown))}{hint}")
    opts = {k: v for k, v in options.items() if v is not None}
    feed = opts.get("feed", "normal")
    if feed not in ("normal", "longpoll", "continuous"):
        raise InvalidOption(f"feed must be 'normal', 'longpoll' or 'continuous', got {feed!r}")
    body: dict[str, Any] = {}
    if "doc_ids" in opts:
        doc_ids = opts.pop("doc_ids")
        # a str would be its characters and a mapping its keys, silently
        if isinstance(doc_ids, (str, bytes, bytearray, Mapping)) or not hasattr(doc_ids, "__iter__"):
            raise InvalidOption(f"doc_ids must be a list of ids, got {type(doc_ids).__name__}")
        body["doc_ids"] = list(doc_ids)
        opts.setdefault("filter", "_doc_ids")
    if "selector" in opts:
        body["selector"] = opts.pop("selector")
        opts.setdefault("filter", "_selector")
    if "view" in opts:
        # CouchDB reads view= only with filter=_view: without it every change came back
        opts.setdefault("filter", "_view")
    for name, builtin in (("doc_ids", "_doc_ids"), ("selector", "_selector"), ("view", "_view")):
        if name in options and options[name] is not None and opts.get("filter") != builtin:
            raise InvalidOption(f"changes option {name!r} works with filter={builtin!r} only (CouchDB ignores "
                                f"it with filter={opts.get('filter')!r}), got both")
    params = opts.pop("params", None) or {}
    if not isinstance(params, Mapping):
        raise InvalidOption(f"params (a filter function's query parameters) must be a dict, got {params!r}")
    codec.check_flags(opts, _BOOL_OPTIONS, what)
    if "style" in opts and opts["style"] not in ("main_only", "all_docs"):
        # CouchDB 3.5 answers any other style with 500 function_clause
        raise InvalidOption(f"changes option 'style' must be 'main_only' or 'all_docs', got {opts['style']!r}")
    if "since" in opts and (isinstance(opts["since"], bool) or not isinstance(opts["since"], (str, int))):
        raise InvalidOption(f"{what} option 'since' must be a sequence (str), 0 or 'now', got {opts['since']!r}")
    if opts.get("heartbeat") is True:
        opts["heartbeat"] = 30000
    if "since" in opts and not isinstance(opts["since"], str):
        opts["since"] = str(opts["since"])  # sequences are opaque strings since CouchDB 2
    for name in ("limit", "timeout", "heartbeat", "seq_interval"):
        value = opts.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidOption(f"{what} option {name!r} must be a non-negative int, got {value!r}")
    if opts.get("heartbeat") == 0:
        # CouchDB's _changes answers 400; its /_db_updates sends newlines without pause and
        # never ends the answer (timeout ignored): leave heartbeat out for none
        raise InvalidOption(f"{what} option 'heartbeat' must be a positive number of ms "
                            "(leave it out for no heartbeat), got 0")
    query = codec.encode_query(opts)
    query += [(k, v if isinstance(v, str) else codec.dumps(v).decode("utf-8")) for k, v in params.items()]
    read_timeout = _read_timeout(feed, opts)
    path = endpoint or f"{db_path(db)}/_changes"
    if body:
        return Request("POST", path, query=query, json=body, stream=stream, timeout=read_timeout,
                       idempotent=True)
    return Request("GET", path, query=query, stream=stream, timeout=read_timeout)


def _read_timeout(feed: str, opts: Mapping[str, Any]) -> float | None:
    """Read timeout for a feed that may legitimately stay silent (0 means wait forever)."""
    if feed == "normal":
        return None
    if opts.get("heartbeat"):
        return float(opts["heartbeat"]) / 1000.0 * 3 + 5
    if opts.get("timeout") is not None:
        return float(opts["timeout"]) / 1000.0 + 30
    return 0


def changes(ctx: ServerContext, db: str, /, **options: Any) -> Operation[ChangesResult]:
    """A normal or longpoll feed as a :class:`~couchcore._results.ChangesResult`: the
    change dicts are parsed as the body streams in; ``last_seq`` and ``pending`` once read.

    CouchDB: https://docs.couchdb.org/en/stable/api/database/changes.html
    """
    if options.get("feed") == "continuous":
        raise InvalidOption("use Database.changes(feed='continuous') for a ChangesFeed")
    resp = yield changes_request(db, options, stream=True)
    resp.raise_for_status()
    return ChangesResult(resp)


def db_updates(ctx: ServerContext, /, **options: Any) -> Operation[ChangesResult]:
    """A normal or longpoll ``/_db_updates`` answer as a
    :class:`~couchcore._results.ChangesResult` of ``{"db_name", "type", "seq"}`` dicts
    (``type``: ``"created"``, ``"updated"``, ``"deleted"``), then ``last_seq``.

    CouchDB: https://docs.couchdb.org/en/stable/api/server/common.html#db-updates
    """
    if options.get("feed") == "continuous":
        raise InvalidOption("use Server.db_updates(feed='continuous') for a ChangesFeed")
    resp = yield changes_request("", options, stream=True, endpoint=DB_UPDATES)
    resp.raise_for_status()
    return ChangesResult(resp)


# -- a feed that resumes: its state, sans I/O ------------------------------------------------

FeedMode = Literal["continuous", "longpoll", "normal"]


class FeedState:
    """Everything a resuming ``_changes`` feed remembers between requests, without I/O.

    :class:`~couchcore._feeds.ChangesFeed` (``feed="continuous"``) and
    :class:`~couchcore._follow.ChangesFollower` (``longpoll``, or ``normal`` for a one-off
    follower) drive one of these, from a sync or an async loop alike:

    1. ``op = state.open(ctx)``: the :data:`~couchcore._drivers.Operation` of the next
       round (pins ``since="now"`` to the database's ``update_seq`` first, then sends
       :meth:`request`); its result is the source to read: the streamed
       :class:`~couchcore.protocol.messages.Response` of a continuous feed, a
       :class:`~couchcore._results.ChangesResult` otherwise. ``state.items(source)`` is
       what to iterate (``for``/``async for``): body chunks or change dicts.
    2. ``for change in state.receive(item)``: the changes to hand out (each noted as
       delivered: :attr:`since` becomes its ``seq``) -- stops at :meth:`stop` and when
       ``limit`` changes were delivered; stop reading once :attr:`reading` is false.
    3. ``delay = state.end(source)`` when the answer is over: notes ``last_seq`` and
       ``pending``; raises :class:`~couchcore.errors.ConnectionError` when a continuous
       answer ended without ``last_seq`` (a lost connection, see 4).
    4. ``delay = state.lost(exc)`` for an exception of steps 1-3: seconds to wait before
       the next round, or ``exc`` raised again (not in ``retry_on``, in ``terminal``, or
       more than ``max_retries`` failures in a row).
    5. Repeat while not :attr:`done`.

    :attr:`since` stays opaque: a ``seq``/``last_seq`` received, sent back unchanged.
    With ``seq_interval=N`` CouchDB computes the ``seq`` of every Nth change only and sends
    ``"seq": null`` for the others: :attr:`since` keeps the last ``seq`` that was sent, so a
    reconnect (or a resume from it) may deliver again up to ``N - 1`` changes, never skip
    one (https://docs.couchdb.org/en/stable/api/database/changes.html, ``seq_interval``).
    ``limit`` (continuous) is counted across reconnects: each request asks for what is
    left. A continuous ``_changes`` feed cannot be ``descending`` (:class:`InvalidOption`):
    CouchDB ignores ``since`` when descending, so no round could resume where the last
    one ended. ``backoff(n)`` gives the wait after the ``n``-th failure in a row (1-based);
    any data received (a change or, on a continuous feed, a heartbeat) resets the count.
    ``one_off`` (normal/longpoll): done once an answer that the ``limit`` per request did
    not cut says ``pending == 0`` (without ``pending``: an answer shorter than that
    ``limit``, or any answer without a ``limit``).

    Where a normal/longpoll round resumes: from the answer's ``last_seq`` ("Last change
    update sequence", https://docs.couchdb.org/en/stable/api/database/changes.html),
    except when the answer was cut by the ``limit`` per request (as many changes as the
    limit): then from the ``seq`` of its last change. CouchDB (3.5, any database of more
    than one shard, the single node's default ``q=2`` too) can answer a filtered request
    (a design-document filter, ``_selector``) with a ``limit`` with a ``last_seq`` past
    changes that passed the filter but were not sent because the limit was reached
    (apache/couchdb#1221; its collector kept moving a shard's position on the rows that
    did not pass the filter after the limit): resuming from it lost them (measured on a
    ``q=4`` database, 67 of 200 changes passing the filter, one-off followers with a limit
    of 1-5: 21 of 25 runs lost 2-21 changes on the single node, 25 of 25 lost 8-46 on the
    3-node cluster; none since). The last change's ``seq`` covers only what was handed out. An answer shorter than the
    limit is complete (``last_seq`` is then right and moves past a stretch of changes the
    filter drops, so an empty answer still advances), and with ``seq_interval`` the last
    change carries ``"seq": null`` (CouchDB sends a ``seq`` on the first of each
    ``seq_interval`` changes only): then ``last_seq`` too, as resuming from an earlier
    change would hand out the same changes again round after round.
    CouchDB: https://docs.couchdb.org/en/stable/api/database/changes.html
    """

    def __init__(self, db: str, options: Mapping[str, Any], *, feed: FeedMode, since: Any = None,
                 limit: int | None = None, one_off: bool = False, max_retries: int | None = 10,
                 backoff: Callable[[int], float], retry_on: tuple[type[BaseException], ...],
                 terminal: tuple[type[BaseException], ...] = (), url: str = "",
                 logger: logging.Logger | None = None, endpoint: str | None = None) -> None:
        if feed not in ("continuous", "longpoll", "normal"):
            raise InvalidOption(f"feed must be 'normal', 'longpoll' or 'continuous', got {feed!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidOption(f"changes option 'limit' must be a non-negative int, got {limit!r}")
        if feed == "continuous" and endpoint is None and options.get("descending") in (True, "true"):
            # CouchDB answers a descending continuous _changes with every change, newest first,
            # then last_seq (the oldest), heartbeat or not, and ignores since when descending:
            # each reconnect delivered every change again, without end
            raise InvalidOption("a continuous changes feed cannot be descending (CouchDB lists the changes once, "
                                "newest first, and ignores since): use changes(descending=True), a normal feed")
        self.db = db
        self.endpoint = endpoint  # DB_UPDATES: the server's feed of database events, not db's _changes
        self.feed: FeedMode = feed
        self.options = {k: v for k, v in options.items() if k not in ("since", "feed")}
        self.since: Any = since
        self.limit = limit
        self.one_off = one_off
        self.max_retries = max_retries
        self.backoff = backoff
        self.retry_on = retry_on
        self.terminal = terminal
        self.url = url or db
        self.log = logger or logging.getLogger("couchcore.changes")
        self.delivered = 0  # changes handed out, in every round
        self.count = 0  # changes handed out in this round
        self.failures = 0  # failures in a row (reset by any data received)
        self.reconnects = 0
        self.pending: int | None = None
        self.meta: dict[str, Any] = {}  # the metadata of the last complete answer
        self.complete = False  # this round's answer was read to its end (last_seq)
        self.last_row_seq: Any = None  # the seq of the last change handed out this round (None: null or none)
        self.stopped = False
        self.done = limit == 0
        self._parser: Any = None
        self.request()  # bad options: InvalidOption before anything is sent

    # -- what to send --------------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        opts = {**self.options, "feed": self.feed}
        if self.since is not None:
            opts["since"] = self.since
        if self.limit is not None:
            opts["limit"] = max(self.limit - self.delivered, 0)
        return opts

    def request(self) -> Request:
        """The ``_changes`` request of the next round (streamed), from :attr:`since`
        with the ``limit`` left."""
        return changes_request(self.db, self._options(), stream=True, endpoint=self.endpoint)

    @property
    def where(self) -> str:
        """The feed's path, for messages: ``db/_changes`` or ``/_db_updates``."""
        return self.endpoint or self.db + "/_changes"

    def open(self, ctx: ServerContext) -> Generator[Request, Response, Any]:
        """The operation of the next round; returns the source to read (see the class)."""
        if self.since == "now":  # pin it: a reconnect after a failure must not lose changes
            if self.endpoint is not None:  # the server's current last_seq, from an empty answer
                resp = yield changes_request(self.db, {"since": "now"}, endpoint=self.endpoint)
                resp.raise_for_status()
                self.since = resp.json()["last_seq"]
            else:
                from .database import info

                self.since = (yield from info(ctx, self.db))["update_seq"]
        resp = yield self.request()
        resp.raise_for_status()
        self.count = 0
        self.complete = False
        self.last_row_seq = None
        if self.feed == "continuous":
            self._parser = _rows.make_parser("continuous")
            return resp
        return ChangesResult(resp)

    def items(self, source: Any) -> Any:
        """What to iterate of the source :meth:`open` returned: the body chunks of a
        continuous feed's response, the change dicts of a ChangesResult."""
        return source.stream if self.feed == "continuous" else source

    # -- what arrived --------------------------------------------------------------------
    @property
    def reading(self) -> bool:
        """Whether to go on reading this round's answer."""
        return not (self.done or self.complete)

    def receive(self, item: Any) -> Iterator[dict[str, Any]]:
        """The changes in ``item`` (a body chunk of a continuous feed, else one change),
        each noted as delivered just before it is handed out."""
        if self.stopped:  # e.g. a heartbeat after stop() on a backend that cannot abort
            return
        self.failures = 0  # data arrived: the connection is healthy
        changes = self._parser.feed(item) if self.feed == "continuous" else (item,)
        for change in changes:
            self.last_row_seq = change.get("seq")
            if self.last_row_seq is not None:  # seq_interval=N: null but on every Nth change
                self.since = self.last_row_seq
            self.delivered += 1
            self.count += 1
            if self.limit is not None and self.delivered >= self.limit:
                self.done = True
            yield change
            if self.stopped or self.done:
                self.done = True
                return
        if self.feed == "continuous" and self._parser.done:
            self.complete = True

    def end(self, source: Any) -> float:
        """This round's answer is over: note its metadata; the seconds to wait before the
        next round (0). Raises :class:`~couchcore.errors.ConnectionError` for a
        continuous answer that ended without ``last_seq`` (give it to :meth:`lost`)."""
        if self.stopped or self.done:
            self.done = True
            return 0.0
        if self.feed == "continuous":
            parser = self._parser
            meta = parser.meta
            raise_stream_error(meta, "GET", self.where)  # the server's error, if it sent one
            if not parser.done:
                from ..errors import ConnectionError

                raise ConnectionError("changes feed ended without last_seq",
                                      self.url + (self.endpoint or "/_changes"))
        else:
            meta = source.meta
        self.meta.update(meta)
        self.complete = True
        self.failures = 0
        per_request = self.options.get("limit") if self.feed != "continuous" else None
        # cut by the limit: CouchDB's last_seq may lie past filtered changes it did not send
        # (see the class docstring); the last change's seq covers only what was handed out
        cut = per_request is not None and self.count >= per_request
        if meta.get("last_seq") is not None and not (cut and self.last_row_seq is not None):
            self.since = meta["last_seq"]
        pending = meta.get("pending")
        self.pending = pending if isinstance(pending, int) and not isinstance(pending, bool) else None
        if self.feed == "continuous":
            # the server ended the feed: after the timeout asked for (CouchDB's default one
            # when no heartbeat is sent) or the limit. With a heartbeat and neither, CouchDB
            # ends it only when the database is deleted (a plain last_seq line, as after a
            # timeout) or the node stops: go on from last_seq, where a deleted database
            # answers 404 (raised) and a restarted node resumes the feed.
            self.done = (not self.options.get("heartbeat") or self.options.get("timeout") is not None
                         or (self.limit is not None and self.delivered >= self.limit))
            if not self.done and not self.count:
                return self.backoff(1)  # nothing came: not a busy loop if a server ends feeds at once
        elif self.one_off:
            # an answer the limit cut is not the end, whatever its pending says: the changes
            # CouchDB held back may be after the position pending is counted from
            self.done = not cut and (self.pending == 0 if self.pending is not None else True)
        return 0.0

    def lost(self, exc: BaseException) -> float:
        """A round failed with ``exc``: the seconds to wait before the next one, or
        ``exc`` raised again when retrying cannot help (see the class)."""
        if self.stopped:  # stop() closed the response under the reader: whatever it raised
            self.done = True
            return 0.0
        if (not isinstance(exc, self.retry_on) or isinstance(exc, self.terminal)
                or getattr(exc, "aborted", False)):  # couchcore ended it (Server closed): no reconnect
            self.done = True
            raise exc
        if (self.feed == "longpoll" and not self.one_off and not self.count
                and isinstance(exc, ReadTimeout)):
            # an idle longpoll outlived its read timeout (a server that ignores timeout=):
            # ask again at once; a hung server costs one read timeout a round, no busy loop
            self.reconnects += 1
            self.failures = 0
            return 0.0
        self.failures += 1
        if self.max_retries is not None and self.failures > self.max_retries:
            self.done = True
            raise exc
        delay = self.backoff(self.failures)
        self.log.warning("feed %s interrupted (%s); resuming from %r in %.2fs",
                         self.where, type(exc).__name__, self.since, delay)
        self.reconnects += 1
        return delay

    def stop(self) -> None:
        """End the feed: nothing more is handed out or sent."""
        self.stopped = True
        self.done = True

    def __repr__(self) -> str:
        state = "done" if self.done else "open"
        return (f"<FeedState {self.where} {self.feed} {state} since={self.since!r} delivered={self.delivered} "
                f"failures={self.failures}>")
