"""Building a view index and waiting for it (sans-I/O).

A view's index is built (or brought up to date) when the view is queried. On a large
database the first query can outlast CouchDB's own request timeout (``500 timeout``, or
a ``timeout`` error inside a 200 body) or the client's read timeout, while the server
goes on building. :func:`build_view` queries the view with ``limit=0`` until a query
comes back whole, tolerating those timeouts, and reports progress between attempts from
``/_active_tasks`` (``indexer`` tasks: ``progress``, ``changes_done``,
``total_changes``, one per shard) or, where the server lists no such task, the design
document's ``_info`` (``view_index.updater_running``, ``update_seq``).

A view of a partitioned design document (the default in a partitioned database) can only be
queried through a partition (``/{db}/_partition/{p}/_design/...``; CouchDB answers ``400
query_parse_error`` "`partition` parameter is mandatory" otherwise), and such a query
updates the index of the shard range holding ``p`` only (CouchDB indexes each shard on its
own). :func:`build_view` then queries one partition of each shard range: ``GET
/{db}/_shards`` lists the ranges, ``GET /{db}/_shards/{p}:x`` says which range partition
``p`` falls in.

CouchDB: https://docs.couchdb.org/en/stable/api/ddoc/views.html ,
https://docs.couchdb.org/en/stable/partitioned-dbs/index.html ,
https://docs.couchdb.org/en/stable/api/database/shard.html ,
https://docs.couchdb.org/en/stable/api/server/common.html#active-tasks ,
https://docs.couchdb.org/en/stable/api/ddoc/common.html#db-design-design-doc-info
"""

from __future__ import annotations

import time
import zlib
from typing import Any, Callable, Generator, Mapping

from ..errors import HTTPError, IndexBuildTimeout, InvalidInput, ReadTimeout, ResponseError, TransportError
from .._results import ViewResult
from .messages import Request, Response
from .partitions import partition_view_request
from .paths import db_path, design_path, quote_segment, split_design_name
from .server import ServerContext
from .shapes import BuildViewResult
from .views import view_request

__all__ = ["build_view", "view_ddoc", "ProgressCallback"]

#: ``progress(status)``: see :func:`build_view` for the keys of ``status``.
ProgressCallback = Callable[[dict[str, Any]], Any]


def view_ddoc(name: str) -> tuple[str, str]:
    """``(ddoc, view)`` of ``"ddoc/view"`` or ``"_design/ddoc/_view/view"``."""
    if not isinstance(name, str):
        raise InvalidInput(f"view name must be a str, got {name!r}")
    split = split_design_name(name, "_view")  # design names may hold slashes: _design/app/v2/_view/v
    if split is None:
        raise InvalidInput(f"invalid view name {name!r}: use 'ddoc/view' or '_design/ddoc/_view/view'")
    ddoc, view = split
    if not ddoc or not view:
        raise InvalidInput(f"invalid view name {name!r}: empty design document or view name")
    return ddoc, view


def _positive(name: str, value: Any, allow_none: bool) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidInput(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _is_timeout(exc: HTTPError) -> bool:
    return exc.error == "timeout" or (exc.status == 500 and "timeout" in str(exc.reason or "").lower())


def _needs_partition(exc: HTTPError) -> bool:
    """CouchDB's refusal of a partitioned view queried without a partition (``400
    query_parse_error``: "`partition` parameter is mandatory for queries to this view.")."""
    return exc.status == 400 and exc.error == "query_parse_error" and "partition" in str(exc.reason or "")


def _range_of(value: int, ranges: dict[str, tuple[int, int]]) -> str | None:
    for key, (low, high) in ranges.items():
        if low <= value <= high:
            return key
    return None


def _partitions_per_range(db: str, deadline: float | None = None) -> Generator[Request, Response, list[str]]:
    """One partition name for each shard range of partitioned database ``db`` (sorted by
    range): querying a partitioned view through each of them builds the whole index.

    ``GET /{db}/_shards`` gives the ranges, ``GET /{db}/_shards/{p}:x`` the range of
    partition ``p`` (CouchDB's answer decides; names are picked so that the CRC-32 of the
    name, how CouchDB places a partition, falls in a range still without one, so it takes
    one request per range when that holds). Raises the ``HTTPError`` of a refused request,
    or :class:`~couchcore.errors.ResponseError` when the ranges cannot be read or covered.
    https://docs.couchdb.org/en/stable/api/database/shard.html"""
    def wait() -> float | None:
        return max(deadline - time.monotonic(), 0.05) if deadline is not None else None

    resp = yield Request("GET", db_path(db) + "/_shards", timeout=wait())
    resp.raise_for_status()
    listed = resp.json()
    ranges: dict[str, tuple[int, int]] = {}
    for key in (listed.get("shards") if isinstance(listed, Mapping) else None) or ():
        low, _, high = str(key).partition("-")
        try:
            ranges[key] = (int(low, 16), int(high, 16))
        except ValueError:
            raise ResponseError(f"cannot read the shard range {key!r} of GET /{db}/_shards") from None
    if not ranges:
        raise ResponseError(f"GET /{db}/_shards lists no shard range")
    found: dict[str, str] = {}
    asked = 0
    limit = 64 + 16 * len(ranges)
    candidate = 0
    while len(found) < len(ranges):
        if asked >= limit:
            raise ResponseError(
                f"view is partitioned: found a partition for {len(found)} of the {len(ranges)} shard ranges of {db!r} after {asked} "
                f"GET /{{db}}/_shards/{{docid}} requests; query the view through one partition of each range")
        # the next name CouchDB should place in a range still without one (any name if none does)
        for _ in range(100_000):
            name = f"b{candidate}"
            candidate += 1
            if _range_of(zlib.crc32(name.encode()), ranges) not in found:
                break
        asked += 1
        resp = yield Request("GET", db_path(db) + "/_shards/" + quote_segment(name + ":x"), timeout=wait())
        resp.raise_for_status()
        answer = resp.json()
        where = answer.get("range") if isinstance(answer, Mapping) else None
        if where in ranges and where not in found:
            found[where] = name
    return [found[key] for key in sorted(ranges, key=lambda k: ranges[k])]


def build_view(ctx: ServerContext, db: str, name: str, timeout: float | None = None,
               progress: ProgressCallback | None = None,
               poll: float = 2.0) -> Generator[Request, Response, BuildViewResult]:
    """Build (or bring up to date) the index of view ``name`` and wait until it is built.

    Queries the view with ``limit=0`` (which makes CouchDB update the index first) until
    one query comes back whole; a partitioned view (CouchDB's ``400 query_parse_error``,
    "`partition` parameter is mandatory") is then queried through one partition of each
    shard range (:func:`_partitions_per_range`), each until it comes back whole. A ``500
    timeout``, a ``timeout`` error in the body and a
    client read timeout all mean "still building": the server goes on, and the query is
    sent again. With ``progress``, each query waits at most ``poll`` seconds, and after
    each unfinished one ``progress(status)`` is called with ``status`` =
    ``{"view", "elapsed" (s), "attempts", "percent" (0-100 or None), "changes_done",
    "total_changes" (ints or None), "tasks" (indexer tasks seen), "updater_running"
    (bool or None)}``. ``timeout`` (seconds, ``None``: no limit) bounds the whole wait;
    when it expires :class:`IndexBuildTimeout` is raised (the server keeps building).
    Returns ``{"view", "elapsed", "attempts"}``. Other errors (a missing view:
    ``NotFound``; a broken map function) are raised as they are.
    """
    ddoc, _ = view_ddoc(name)
    timeout = _positive("timeout", timeout, allow_none=True)
    poll_s = _positive("poll", poll, allow_none=False)
    if progress is not None and not callable(progress):
        raise InvalidInput(f"progress must be a callable progress(status), not {type(progress).__name__}")
    start = time.monotonic()
    deadline = start + timeout if timeout is not None else None
    attempts = 0
    status: dict[str, Any] | None = None
    # what is still to be queried: the view (None), or, for a partitioned view, a partition of
    # each shard range not built yet
    todo: list[str | None] = [None]
    while True:
        attempts += 1
        waits = [w for w in (poll_s if progress is not None else None,
                             max(deadline - time.monotonic(), 0.05) if deadline is not None else None)
                 if w is not None]
        request = (view_request(db, name, {"limit": 0}, stream=False) if todo[0] is None
                   else partition_view_request(db, todo[0], name, {"limit": 0}, stream=False))
        request.timeout = min(waits) if waits else None
        built = False
        try:
            resp = yield request
            resp.raise_for_status()
            ViewResult(resp).all()  # a timeout reported inside the 200 body raises here
            built = True
        except ReadTimeout:
            pass
        except HTTPError as exc:
            if todo[0] is None and _needs_partition(exc):
                todo = list((yield from _partitions_per_range(db, deadline)))
                continue
            if not _is_timeout(exc):
                raise
        elapsed = time.monotonic() - start
        if built:
            todo.pop(0)
            if not todo:
                return {"view": name, "elapsed": elapsed, "attempts": attempts}
            continue  # the next shard range's partition, at once
        if progress is not None or (deadline is not None and time.monotonic() >= deadline):
            status = yield from _progress(ctx, db, ddoc, name, elapsed, attempts, poll_s)
            if progress is not None:
                progress(status)
        if deadline is not None and time.monotonic() >= deadline:
            pct = status.get("percent") if status else None
            done = f" ({pct:.0f}% done)" if pct is not None else ""
            expired = IndexBuildTimeout(
                f"the index of view {name!r} was not built within timeout={timeout:g}s{done}; "
                f"the server goes on building it (call build_view again to wait more)",
                None,
            )
            expired.status = status
            raise expired


def _progress(ctx: ServerContext, db: str, ddoc: str, name: str, elapsed: float,
              attempts: int, wait: float | None) -> Generator[Request, Response, dict[str, Any]]:
    """How far the index build of ``_design/ddoc`` in ``db`` is (best effort: missing
    permissions or endpoints, and a server too busy building to answer within ``wait``
    seconds or at all, leave the figures ``None``; the next view query reports real faults)."""
    status: dict[str, Any] = {"view": name, "elapsed": elapsed, "attempts": attempts, "percent": None,
                              "changes_done": None, "total_changes": None, "tasks": 0,
                              "updater_running": None}
    try:
        return (yield from _read_progress(db, ddoc, status, wait))
    except TransportError:
        return status


def _read_progress(db: str, ddoc: str, status: dict[str, Any],
                   wait: float | None) -> Generator[Request, Response, dict[str, Any]]:
    resp = yield Request("GET", "/_active_tasks", timeout=wait)
    tasks = []
    if resp.ok:
        try:
            listed = resp.json()
        except Exception:  # not JSON: no progress from here
            listed = []
        ddoc_id = "_design/" + ddoc
        tasks = [t for t in listed if isinstance(t, Mapping) and t.get("type") == "indexer"
                 and t.get("design_document") == ddoc_id and _same_db(t.get("database"), db)]
    if tasks:
        status["tasks"] = len(tasks)
        percents = [t["progress"] for t in tasks if isinstance(t.get("progress"), (int, float))]
        if percents:
            status["percent"] = sum(percents) / len(percents)
        done = [t["changes_done"] for t in tasks if isinstance(t.get("changes_done"), int)]
        total = [t["total_changes"] for t in tasks if isinstance(t.get("total_changes"), int)]
        if done:
            status["changes_done"] = sum(done)
        if total:
            status["total_changes"] = sum(total)
        status["updater_running"] = True
        return status
    resp = yield Request("GET", design_path(db, ddoc) + "/_info", timeout=wait)
    if not resp.ok:
        return status
    try:
        info = resp.json()
    except Exception:
        return status
    index = info.get("view_index") if isinstance(info, Mapping) else None
    if not isinstance(index, Mapping):  # e.g. PouchDB Server: a "not implemented" string
        return status
    running = index.get("updater_running")
    status["updater_running"] = running if isinstance(running, bool) else None
    index_seq = index.get("update_seq")
    if isinstance(index_seq, int) and not isinstance(index_seq, bool):
        # integer sequences (PouchDB, CouchDB 1.x) compare; CouchDB 2+'s are opaque strings
        resp = yield Request("GET", db_path(db), timeout=wait)
        if resp.ok:
            db_seq = resp.json().get("update_seq")
            if isinstance(db_seq, int) and not isinstance(db_seq, bool) and db_seq > 0:
                status["changes_done"], status["total_changes"] = index_seq, db_seq
                status["percent"] = min(100.0, 100.0 * index_seq / db_seq)
    return status


def _same_db(task_db: Any, db: str) -> bool:
    """Whether an active task's ``database`` (``db``, or a shard ``shards/RANGE/db.SUFFIX``) is ``db``."""
    if not isinstance(task_db, str):
        return False
    if task_db == db:
        return True
    if task_db.startswith("shards/"):
        rest = task_db.split("/", 2)[-1]
        return rest.rsplit(".", 1)[0] == db
    return False
