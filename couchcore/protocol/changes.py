"""``_changes`` operations (sans-I/O): one-shot feeds and the streamed continuous feed."""

from __future__ import annotations

from typing import Any, Mapping

from .. import codec
from ..errors import InvalidOption
from ..results import ChangesResult
from .messages import Request
from .paths import db_path
from .server import ServerContext

__all__ = ["changes", "changes_request", "CHANGES_OPTIONS"]

#: Options of ``_changes`` (besides ``params``, the query parameters of a filter function).
CHANGES_OPTIONS = frozenset({
    "feed", "since", "limit", "descending", "heartbeat", "timeout", "filter", "include_docs",
    "style", "view", "doc_ids", "selector", "conflicts", "attachments", "att_encoding_info",
    "seq_interval", "params",
})


def changes_request(db: str, options: Mapping[str, Any], stream: bool = False) -> Request:
    """Build the ``_changes`` request; ``doc_ids`` and ``selector`` go in a POST body."""
    unknown = set(options) - CHANGES_OPTIONS
    if unknown:
        raise InvalidOption(f"unknown changes option(s): {', '.join(sorted(unknown))}")
    opts = {k: v for k, v in options.items() if v is not None}
    feed = opts.get("feed", "normal")
    if feed not in ("normal", "longpoll", "continuous"):
        raise InvalidOption(f"feed must be 'normal', 'longpoll' or 'continuous', got {feed!r}")
    body: dict[str, Any] = {}
    if "doc_ids" in opts:
        doc_ids = opts.pop("doc_ids")
        if isinstance(doc_ids, (str, bytes)) or not hasattr(doc_ids, "__iter__"):
            raise InvalidOption("doc_ids must be a list of ids")
        body["doc_ids"] = list(doc_ids)
        opts.setdefault("filter", "_doc_ids")
    if "selector" in opts:
        body["selector"] = opts.pop("selector")
        opts.setdefault("filter", "_selector")
    params = opts.pop("params", None) or {}
    if opts.get("heartbeat") is True:
        opts["heartbeat"] = 30000
    if "since" in opts and not isinstance(opts["since"], str):
        opts["since"] = str(opts["since"])  # sequences are opaque strings since CouchDB 2
    for name in ("limit", "timeout", "heartbeat", "seq_interval"):
        value = opts.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidOption(f"changes option {name!r} must be a non-negative int, got {value!r}")
    query = codec.encode_query(opts)
    query += [(k, v if isinstance(v, str) else codec.dumps(v).decode("utf-8")) for k, v in params.items()]
    read_timeout = _read_timeout(feed, opts)
    path = f"{db_path(db)}/_changes"
    if body:
        return Request("POST", path, query=query, json=body, stream=stream, timeout=read_timeout)
    return Request("GET", path, query=query, stream=stream, timeout=read_timeout)


def _read_timeout(feed: str, opts: Mapping[str, Any]) -> float | None:
    """Read timeout for a feed that may legitimately stay silent (0 means wait forever)."""
    if feed == "normal":
        return None
    if opts.get("heartbeat"):
        return opts["heartbeat"] / 1000.0 * 3 + 5
    if opts.get("timeout") is not None:
        return opts["timeout"] / 1000.0 + 30
    return 0


def changes(ctx: ServerContext, db: str, **options: Any):
    """A normal or longpoll feed as a :class:`~couchcore.results.ChangesResult`: the
    change dicts are parsed as the body streams in; ``last_seq`` and ``pending`` once read.

    CouchDB: https://docs.couchdb.org/en/stable/api/database/changes.html
    """
    if options.get("feed") == "continuous":
        raise InvalidOption("use Database.changes(feed='continuous') for a ChangesFeed")
    resp = yield changes_request(db, options, stream=True)
    resp.raise_for_status()
    return ChangesResult(resp)
