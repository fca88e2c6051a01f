"""Database-level operations (sans-I/O): info, maintenance, security, purge, Mango."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generator, overload

from ..errors import Forbidden, InvalidInput, ParseError, ResponseError
from ..models import Document
from .mango import check_selector, find_body
from .messages import Operation, Request, Response
from .paths import db_path, design_path, quote_segment
from .server import ServerContext, check_not_document

# imported at run time, not only for type checkers: typing.get_type_hints() of the public
# API (typeguard, pydantic, IDEs' runtime inspection) resolves these names in this module
from .shapes import CommitResult, DatabaseInfo, DesignInfo, FindResult, IndexCreated, OkResult, PurgeResult

__all__ = ["info", "exists", "compact", "cleanup", "commit", "purge", "security", "find", "create_index",
           "revs_limit"]


@overload
def info(ctx: ServerContext, db: str, ddoc: None = None) -> Operation[DatabaseInfo]: ...
@overload
def info(ctx: ServerContext, db: str, ddoc: str) -> Operation[DesignInfo]: ...
def info(ctx: ServerContext, db: str, ddoc: str | None = None) -> Operation[DatabaseInfo | DesignInfo]:
    path = db_path(db) if ddoc is None else design_path(db, ddoc) + "/_info"
    resp = yield Request("GET", path)
    data: DatabaseInfo | DesignInfo = resp.json()
    if ddoc is None and (not isinstance(data, dict) or not isinstance(data.get("db_name"), str)):
        # Database("http://host:5984/db/docid"): GET answers the document, not the info
        raise ResponseError(f"GET {resp.url or path} is no database info (no \"db_name\"): is the URL "
                            "a database's, not a document's?")
    return data


def exists(ctx: ServerContext, db: str) -> Operation[bool]:
    resp = yield Request("HEAD", db_path(db))
    if resp.status == 404:
        return False
    resp.raise_for_status()
    check_not_document(resp)
    return True


def doc_count(ctx: ServerContext, db: str) -> Operation[int]:
    data = yield from info(ctx, db)
    return data["doc_count"]


def compact(ctx: ServerContext, db: str, ddoc: str | None = None) -> Operation[bool]:
    """``POST /{db}/_compact``, or ``/{db}/_compact/{ddoc}`` (the views of design document
    ``ddoc``, named with or without ``_design/``). An empty design name is refused: CouchDB
    answers ``POST /{db}/_compact/`` by compacting the whole database.
    https://docs.couchdb.org/en/stable/api/database/compact.html"""
    path = f"{db_path(db)}/_compact"
    if ddoc is not None:
        if not isinstance(ddoc, str):
            raise InvalidInput(f"compact: ddoc must be a design document name (str), got {type(ddoc).__name__}")
        name = ddoc[len("_design/") :] if ddoc.startswith("_design/") else ddoc
        if not name:
            raise InvalidInput(f"compact: empty design document name {ddoc!r} (compact() with no "
                               "argument compacts the database)")
        path += "/" + quote_segment(name)
    resp = yield Request("POST", path, headers={"Content-Type": "application/json"})
    return bool(resp.json().get("ok", False))


def cleanup(ctx: ServerContext, db: str) -> Operation[bool]:
    resp = yield Request("POST", f"{db_path(db)}/_view_cleanup", headers={"Content-Type": "application/json"})
    return bool(resp.json().get("ok", False))


def commit(ctx: ServerContext, db: str) -> Operation[CommitResult]:
    resp = yield Request("POST", f"{db_path(db)}/_ensure_full_commit", headers={"Content-Type": "application/json"})
    data: CommitResult = resp.json()
    return data


def purge(ctx: ServerContext, db: str, docs: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> Operation[PurgeResult]:
    """Purge revisions: ``docs`` is a list of ``{_id, _rev}`` docs or a ``{id: [revs]}`` mapping."""
    body: dict[str, list[str]] = {}
    if isinstance(docs, Mapping) and "_id" not in docs:
        for docid, revs in docs.items():
            revs = [revs] if isinstance(revs, str) else list(revs) if isinstance(revs, (list, tuple)) else []
            if not isinstance(docid, str) or not revs or not all(isinstance(r, str) for r in revs):
                raise InvalidInput("purge takes {id: [rev, ...]} with string ids and revisions")
            body[docid] = revs
    else:
        if isinstance(docs, Mapping):
            docs = [docs]
        for doc in docs:
            if not isinstance(doc, Mapping) or not doc.get("_id") or not doc.get("_rev"):
                raise InvalidInput("purge needs documents with _id and _rev")
            body.setdefault(doc["_id"], []).append(doc["_rev"])
    resp = yield Request("POST", f"{db_path(db)}/_purge", json=body)
    if resp.status == 400:
        err = resp.error()
        limit = _PURGE_LIMITS.get(err.reason or "")
        if limit:  # CouchDB's bare "Exceeded maximum number of documents."
            raise type(err)(err.status, err.error, f"{err.reason} This server purges at most [purge] {limit} a "
                            f"request (this one had {len(body)} ids, {sum(map(len, body.values()))} revisions): "
                            "purge in smaller batches", err.method, err.url, err.headers, err.body)
    data: PurgeResult = resp.json()
    return data


#: CouchDB 3's refusals of a ``_purge`` too big for its ``[purge]`` settings, and the setting
#: (https://docs.couchdb.org/en/stable/cluster/purging.html#config-settings)
_PURGE_LIMITS = {"Exceeded maximum number of documents.": "max_document_id_number (default 100) documents",
                 "Exceeded maximum number of revisions.": "max_revisions_number (default 1000) revisions"}


def _check_security(value: Any) -> None:
    """Refuse what CouchDB's ``couch_db:validate_security_object`` refuses: ``admins`` and
    ``members`` (or, when there is no ``members``, the old ``readers``) must be objects whose
    ``names`` and ``roles`` are lists of strings. CouchDB 3 answers such an object with
    ``500 no_majority``, which reads like a cluster outage; it ignores ``readers`` next to
    ``members`` (and any other member), so those are not checked here either.
    https://docs.couchdb.org/en/stable/api/database/security.html"""
    if not isinstance(value, Mapping):
        raise InvalidInput("the security object must be a dict")
    for part in ("admins", "members", "readers"):
        if part not in value or (part == "readers" and "members" in value):
            continue
        group = value[part]
        if not isinstance(group, Mapping):
            raise InvalidInput(f"security object: {part!r} must be a dict like {{'names': [...], 'roles': [...]}}, "
                               f"got {type(group).__name__}")
        for key in ("names", "roles"):
            items = group.get(key, [])
            if not isinstance(items, (list, tuple)) or not all(isinstance(x, str) for x in items):
                raise InvalidInput(f"security object: {part}.{key} must be a list of strings, got {items!r:.80}")


def security(ctx: ServerContext, db: str, value: Mapping[str, Any] | None = None) -> Operation[Document | OkResult]:
    path = f"{db_path(db)}/_security"
    if value is None:
        resp = yield Request("GET", path)
        return Document(resp.json())
    _check_security(value)
    resp = yield Request("PUT", path, json=dict(value))
    if resp.status == 500 and resp.error().reason == "no_majority":
        # every shard copy refused it: CouchDB 3 answers a user who is no admin of the
        # database this way (the object itself was checked above)
        err = resp.error()
        raise type(err)(err.status, err.error, "no_majority: no copy of the database took the security object; "
                        "CouchDB answers so when the user is not an admin of the database (setting _security needs "
                        "a server or database admin), or when too few of its nodes are up",
                        err.method, err.url, err.headers, err.body)
    done: OkResult = resp.json()
    return done


def revs_limit(ctx: ServerContext, db: str, limit: int | None = None) -> Generator[Request, Response, int | None]:
    """``GET /{db}/_revs_limit`` (an int), or ``PUT`` a new positive limit (``None``)."""
    path = f"{db_path(db)}/_revs_limit"
    if limit is None:
        resp = yield Request("GET", path)
        value = resp.json()
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParseError(f"_revs_limit is not an integer: {value!r}")
        return value
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput(f"revs_limit must be a positive int, got {limit!r}")
    resp = yield Request("PUT", path, json=limit)
    if resp.status == 500:
        # CouchDB 3 answers a user who is no admin of the database with
        # 500 badmatch {error,{forbidden,<<"You are not a db or server admin.">>}}
        err = resp.error()
        forbidden = _ERLANG_FORBIDDEN.search(err.reason or "")
        if forbidden:
            raise Forbidden(403, "forbidden", forbidden.group(1), err.method, err.url, err.headers, err.body)
    resp.json()
    return None


#: ``{forbidden,<<"reason">>}`` inside an Erlang term CouchDB put in a 500's reason
_ERLANG_FORBIDDEN = re.compile(r'\{forbidden,<<"([^"]*)">>\}')


def find(ctx: ServerContext, db: str, selector: Mapping[str, Any], /, **options: Any) -> Operation[FindResult]:
    """Mango query: ``{"docs": [...], "bookmark": ..., "warning": ...}`` as a dict of Documents."""
    check_selector(selector)
    resp = yield Request("POST", f"{db_path(db)}/_find", json=find_body(selector, options), idempotent=True)
    data: FindResult = resp.json()
    data["docs"] = [Document(d) for d in data.get("docs", ())]
    return data


#: Options of :func:`create_index` that belong in the ``index`` object of ``POST /{db}/_index``
#: (https://docs.couchdb.org/en/stable/api/database/find.html#db-index): a partial index's
#: selector, and a text index's settings; ``ddoc``, ``name``, ``type``, ``partitioned`` stay
#: at the top.
_INDEX_FIELDS = ("partial_filter_selector", "default_analyzer", "default_field", "selector",
                 "index_array_lengths")


def create_index(ctx: ServerContext, db: str, fields: Sequence[Any], name: str | None = None, ddoc: str | None = None,
                 **options: Any) -> Operation[IndexCreated]:
    if isinstance(fields, (str, bytes, Mapping)) or not fields:
        raise InvalidInput("fields must be a non-empty list, e.g. ['name'] or [{'age': 'desc'}]")
    index: dict[str, Any] = {"fields": list(fields)}
    for key in _INDEX_FIELDS:  # fields of the index object, not of the request
        if key in options:
            index[key] = options.pop(key)
    body: dict[str, Any] = {"index": index, "type": options.pop("type", "json")}
    if name:
        body["name"] = name
    if ddoc:
        body["ddoc"] = ddoc
    body.update(options)
    resp = yield Request("POST", f"{db_path(db)}/_index", json=body)
    created: IndexCreated = resp.json()
    return created
