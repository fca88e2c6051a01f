"""Server-level operations (sans-I/O generators) and the state they share."""

from __future__ import annotations

import re
from collections import deque
from typing import Any, Generator, Iterable, Mapping, TypedDict

from .. import codec
from ..codec import NOT_GIVEN, view_query
from ..errors import InvalidInput, InvalidOption, NotFound, PreconditionFailed, ResponseError
from ..models import Document
from .messages import Operation, Request, Response
from .paths import db_path, node_path, quote_segment, quote_segments, url_with_credentials, validate_db_name

# imported at run time, not only for type checkers: typing.get_type_hints() of the public
# API (typeguard, pydantic, IDEs' runtime inspection) resolves these names in this module
from .shapes import Membership, ServerInfo, SessionInfo
from .._fork import forget_on_fork

__all__ = ["ServerContext"]


class ServerContext:
    """State shared by the operations of one server: the uuid cache and what was
    discovered about the server (its config/stats prefix, whether it has _temp_view).
    """

    def __init__(self, uuid_batch: int = 100, full_commit: bool | None = True) -> None:
        self.uuid_batch = uuid_batch
        self.uuids: deque[str] = deque()
        self.node_prefix: str | None = None
        self.temp_view: bool | None = None
        self.bulk_get: bool | None = None  # has the server POST /{db}/_bulk_get? (None: not probed yet)
        self.replicator_auth: str | None = None  # how _replicate takes credentials, see replicate()
        self.write_headers: dict[str, str] = {}
        if full_commit is not None:
            self.write_headers["X-Couch-Full-Commit"] = "true" if full_commit else "false"
        forget_on_fork(self)

    def after_fork_in_child(self) -> None:
        """A forked child hands out uuids of its own: the parent's cached ones are the
        parent's (two new documents with one ``_id`` otherwise)."""
        self.uuids.clear()


#: What an answer that fits a database's URL better than a server's adds to its error
#: (``Server("http://host:5984/somedb")``: every server path is then under the database)
SERVER_URL_HINT = "is the URL the server's, without a database name?"


# -- simple endpoints --------------------------------------------------------------


def _small_json(resp: Response) -> Any:
    """``resp.json()`` of a small answer a load reads before it starts (the welcome, a
    database's creation): the same value and errors, read without the JSON engine when it
    can be (``codec._loads_small``), so a ``couchcore load`` of JSON Lines that meets no
    error imports no JSON library (bulk-r27.md)."""
    body = resp.raise_for_status().body
    return codec._loads_small(body) if body is not None else resp.json()


def welcome(ctx: ServerContext, check: bool = True) -> Operation[ServerInfo]:
    """``GET /``; with ``check``, an answer without a ``"version"`` string raises
    :class:`ResponseError` (the URL is not a server's)."""
    resp = yield Request("GET", "/")
    data: ServerInfo = _small_json(resp)
    if check and (not isinstance(data, dict) or not isinstance(data.get("version"), str)):
        # e.g. Server("http://host:5984/db"): GET / is then the database's info
        raise ResponseError(f"GET {resp.url or '/'} is no CouchDB welcome (no \"version\"): "
                            f"{SERVER_URL_HINT}")
    return data


def version(ctx: ServerContext) -> Operation[str]:
    info = yield from welcome(ctx)
    return info["version"]


def all_dbs(ctx: ServerContext, limit: int | None = None, skip: int | None = None, start_key: Any = NOT_GIVEN,
            end_key: Any = NOT_GIVEN, descending: bool | None = None) -> Generator[Request, Response, list[str]]:
    """``GET /_all_dbs`` with its paging options (validated before sending): the names."""
    query, _ = view_query({"limit": limit, "skip": skip, "start_key": start_key, "end_key": end_key,
                           "descending": descending})
    resp = yield Request("GET", "/_all_dbs", query=query)
    names: list[str] = resp.json()
    return names


def session(ctx: ServerContext) -> Operation[SessionInfo]:
    """``GET /_session``: ``{"ok", "userCtx": {"name", "roles"}, "info": {...}}``."""
    resp = yield Request("GET", "/_session")
    data: SessionInfo = resp.json()
    return data


def tasks(ctx: ServerContext) -> Operation[list[dict[str, Any]]]:
    resp = yield Request("GET", "/_active_tasks")
    data: list[dict[str, Any]] = resp.json()
    return data


def membership(ctx: ServerContext) -> Operation[Membership]:
    resp = yield Request("GET", "/_membership")
    data: Membership = resp.json()
    return data


def uuids(ctx: ServerContext, count: int = 1) -> Operation[list[str]]:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidInput(f"count must be a positive int, got {count!r}")
    resp = yield Request("GET", "/_uuids", query=[("count", str(count))])
    fresh: list[str] = resp.json()["uuids"]
    return fresh


def take_uuids(ctx: ServerContext, n: int) -> Operation[list[str]]:
    """``n`` uuids from the cache, refilled from the server in batches."""
    out: list[str] = []
    while len(out) < n:
        try:
            out.append(ctx.uuids.popleft())  # atomic: operations may share the cache across threads
        except IndexError:
            need = n - len(out)
            fresh = yield from uuids(ctx, max(ctx.uuid_batch, need))
            out.extend(fresh[:need])  # (ours alone until cached: no other thread sees them)
            ctx.uuids.extend(fresh[need:])
    return out


# -- databases ---------------------------------------------------------------------


#: a document's ETag: its quoted revision (a database's HEAD has none)
_DOC_ETAG = re.compile(r'"\d+-[0-9a-f]+"')


def check_not_document(resp: Response) -> None:
    """Raise :class:`ResponseError` when a ``HEAD`` meant for a database answered a document.

    ``HEAD /{db}/{docid}`` answers 200 with the revision as ETag
    (https://docs.couchdb.org/en/stable/api/document/common.html#head--db-docid);
    ``HEAD /{db}`` has no ETag. A database URL that is a document's
    (``Database("http://host:5984/db/docid")``, or a server URL with a database in it)
    would otherwise say that the "database" exists.
    """
    etag = resp.headers.get("etag")
    if resp.ok and etag and _DOC_ETAG.fullmatch(str(etag).strip()):
        raise ResponseError(f"HEAD {resp.url or '?'} answered a document (ETag {etag}), not a database: "
                            "is the URL a database's (a server URL without a database name)?")


def db_exists(ctx: ServerContext, name: str) -> Operation[bool]:
    resp = yield Request("HEAD", db_path(validate_db_name(name)))
    if resp.status == 404:
        return False
    resp.raise_for_status()
    check_not_document(resp)
    return True


def create_db(ctx: ServerContext, name: str, /, **options: Any) -> Operation[str]:
    from ..codec import encode_query

    resp = yield Request("PUT", db_path(validate_db_name(name)), query=encode_query(options))
    if resp.status == 400:
        err = resp.error()
        if "json" in (err.reason or "").lower():
            # PUT /{db} sends no body, so a complaint about its JSON means the path named a
            # document: a Server URL with a database in it (PUT /somedb/{name}, "invalid
            # UTF-8 JSON"); nothing was written
            raise type(err)(err.status, err.error, f"{err.reason}; {SERVER_URL_HINT}", err.method, err.url,
                            err.headers, err.body)
    _small_json(resp)  # an error status raises; a body that is no JSON: ParseError
    return name


def open_db(ctx: ServerContext, name: str, create: bool = False) -> Operation[str]:
    """Check a database exists (creating it if asked); returns its name."""
    resp = yield Request("HEAD", db_path(validate_db_name(name)))
    if resp.ok:
        check_not_document(resp)
        return name
    if resp.status != 404:
        raise resp.error()
    if not create:
        raise NotFound(404, "not_found", "Database does not exist.", "HEAD", resp.url, resp.headers)
    try:
        yield from create_db(ctx, name)
    except PreconditionFailed:  # created concurrently: fine
        pass
    return name


def delete_db(ctx: ServerContext, name: str) -> Operation[bool]:
    resp = yield Request("DELETE", db_path(validate_db_name(name)))
    resp.json()
    return True


# -- config and stats, on the node-local endpoints with fallbacks -------------------


def node_prefix(ctx: ServerContext) -> Operation[str]:
    """``/_node/_local`` (CouchDB 2+), ``/_node/<name>`` or ``""`` (1.x), discovered once."""
    if ctx.node_prefix is None:
        resp = yield Request("GET", "/_node/_local/_config/couchdb")
        if resp.ok:
            ctx.node_prefix = "/_node/_local"
        elif resp.status in (401, 403):
            raise resp.error()
        else:
            resp = yield Request("GET", "/_membership")
            nodes = resp.json().get("all_nodes") if resp.ok else None
            ctx.node_prefix = node_path(nodes[0]) if nodes else ""
    return ctx.node_prefix


def _config_path(prefix: str, name: str | None) -> str:
    path = prefix + "/_config"
    if name:
        path += "/" + quote_segments(name)  # section, or section/key
    return path


def config(ctx: ServerContext, name: str | None = None, value: Any = None, delete: bool = False) -> Operation[Any]:
    if name is not None and (not isinstance(name, str) or name.count("/") > 1 or not all(name.split("/"))):
        raise InvalidInput(f"config name must be 'section' or 'section/key', got {name!r}")
    if (value is not None or delete) and (name is None or "/" not in name):
        raise InvalidInput("setting or deleting config needs a 'section/key' name")
    text = None
    if value is not None and not delete:
        from ..codec import encode_param

        try:  # checked before anything is sent (the node's name is asked for first)
            text = value if isinstance(value, str) else encode_param(value)
        except InvalidOption:
            raise InvalidInput(f"a config value is a str, int, float or bool, got {value!r}") from None
    prefix = yield from node_prefix(ctx)
    path = _config_path(prefix, name)
    if delete:
        resp = yield Request("DELETE", path)
        return resp.json()
    if text is not None:
        resp = yield Request("PUT", path, json=text)
        resp.json()
        return None
    resp = yield Request("GET", path)
    return resp.json()


def config_reload(ctx: ServerContext) -> Generator[Request, Response, bool]:
    """``POST {node}/_config/_reload``: re-read the node's ini files."""
    prefix = yield from node_prefix(ctx)
    resp = yield Request("POST", prefix + "/_config/_reload", headers={"Content-Type": "application/json"})
    return bool(resp.json().get("ok", False))


def stats(ctx: ServerContext, name: str | None = None) -> Operation[dict[str, Any]]:
    prefix = yield from node_prefix(ctx)
    path = prefix + "/_stats"
    if name:
        path += "/" + quote_segments(name.strip("/"))
    resp = yield Request("GET", path)
    if resp.status == 400:  # some servers answer a bad stats path with 400
        raise NotFound(404, "not_found", f"no such statistic: {name}", "GET", resp.url or path)
    data: dict[str, Any] = resp.json()
    if name and data is None:
        raise NotFound(404, "not_found", f"no such statistic: {name}", "GET", resp.url or path)
    return data


# -- replication -------------------------------------------------------------------


class Endpoint:
    """A database the replicator has to reach: its URL (without credentials), the
    credentials to log in with, and its name when it lives on this same server.

    :func:`replicate` renders it in the form the server understands; its repr never
    shows the password.
    """

    __slots__ = ("url", "username", "password", "local_name")

    def __init__(self, url: str, username: str | None = None, password: str | None = None,
                 local_name: str | None = None) -> None:
        self.url = url
        self.username = username
        self.password = password
        self.local_name = local_name

    def __repr__(self) -> str:
        who = f" as {self.username}" if self.username is not None else ""
        return f"<Endpoint {self.url}{who}>"


def replicator_auth(ctx: ServerContext) -> Operation[str]:
    """How this server's replicator takes endpoint credentials, discovered once:

    ``"auth"``: the ``{"url", "auth": {"basic": {"username", "password"}}}`` object
    (Apache CouchDB 3.2 and later); ``"headers"``: an ``Authorization`` header in the
    endpoint's ``headers`` (older CouchDB); ``"url"``: only credentials in the URL
    (servers that take no endpoint objects, such as PouchDB Server).
    https://docs.couchdb.org/en/stable/replication/replicator.html
    """
    if ctx.replicator_auth is None:
        info = yield from welcome(ctx, check=False)
        if isinstance(info, dict) and "couchdb" in info:
            try:
                major, minor = (int(p) for p in str(info.get("version", "")).split(".")[:2])
            except ValueError:
                major, minor = 3, 2  # unknown: assume a current CouchDB
            ctx.replicator_auth = "auth" if (major, minor) >= (3, 2) else "headers"
        else:
            ctx.replicator_auth = "url"
    return ctx.replicator_auth


def _render_endpoint(endpoint: Any, how: str) -> Any:
    if not isinstance(endpoint, Endpoint):
        return endpoint  # a URL or an endpoint object given by the caller, as it is
    if endpoint.username is None:
        return endpoint.url
    if how == "auth":
        return {"url": endpoint.url,
                "auth": {"basic": {"username": endpoint.username, "password": endpoint.password or ""}}}
    if how == "headers":
        import base64

        token = base64.b64encode(f"{endpoint.username}:{endpoint.password or ''}".encode("utf-8")).decode("ascii")
        return {"url": endpoint.url, "headers": {"Authorization": "Basic " + token}}
    if endpoint.local_name is not None:  # PouchDB Server: a database of its own, by name
        return endpoint.local_name
    # last resort: no other form is understood
    return url_with_credentials(endpoint.url, endpoint.username, endpoint.password)


# The replication fields of CouchDB 3.5 (POST /_replicate and _replicator documents):
# https://docs.couchdb.org/en/stable/replication/replicator.html
_REPLICATION_FIELDS = frozenset({
    "source", "target", "cancel", "continuous", "create_target", "create_target_params", "doc_ids",
    "filter", "query_params", "selector", "since_seq", "source_proxy", "target_proxy", "proxy",
    "use_checkpoints", "checkpoint_interval", "worker_processes", "worker_batch_size",
    "http_connections", "connection_timeout", "retries_per_request", "socket_options",
    "use_bulk_get", "winning_revs_only", "owner", "user_ctx",
})


def replicate(ctx: ServerContext, source: str | Mapping[str, Any] | Endpoint,
              target: str | Mapping[str, Any] | Endpoint, **options: Any) -> Operation[Document]:
    """``_replicate`` (one-shot or continuous), or a ``_replicator`` document with ``_id``.

    ``source`` and ``target`` are URLs, endpoint objects (passed as they are) or
    :class:`Endpoint` objects; an Endpoint with credentials becomes the endpoint
    object with ``auth.basic`` on CouchDB 3.2+ (credentials in a URL cannot carry
    every character; see :func:`replicator_auth`). CouchDB ignores fields it does not
    know, so an option name one typo away from a replication field (``continous``)
    raises :class:`~couchcore.errors.InvalidOption` before sending; other names pass.
    https://docs.couchdb.org/en/stable/api/server/common.html#replicate
    """
    import difflib  # here: only replicate() needs it (import cost of every start-up)

    doc_id = options.pop("_id", None)
    for name in options:
        near = [] if name in _REPLICATION_FIELDS else difflib.get_close_matches(name, _REPLICATION_FIELDS, 1, 0.8)
        if near:  # CouchDB ignores unknown fields: continous=True would run a one-shot replication
            raise InvalidOption(f"unknown replication option {name!r}: did you mean {near[0]!r}?")
    if doc_id is not None and "cancel" in options:
        raise InvalidInput("cancel= is for _replicate; delete the _replicator document instead")
    how = "url"
    if any(isinstance(e, Endpoint) and e.username is not None for e in (source, target)):
        how = yield from replicator_auth(ctx)
    body: dict[str, Any] = {"source": _render_endpoint(source, how), "target": _render_endpoint(target, how)}
    body.update(options)
    if doc_id is not None:
        from .paths import doc_path

        resp = yield Request("PUT", doc_path("_replicator", doc_id), json=body)
        return Document(resp.json())
    resp = yield Request("POST", "/_replicate", json=body, timeout=0 if not options.get("continuous") else None)
    if resp.status in (404, 405) and options.get("cancel"):
        raise resp.error()
    return Document(resp.json())


__all__ += [
    "welcome",
    "version",
    "all_dbs",
    "session",
    "config_reload",
    "tasks",
    "membership",
    "uuids",
    "take_uuids",
    "db_exists",
    "create_db",
    "open_db",
    "delete_db",
    "node_prefix",
    "config",
    "stats",
    "replicate",
    "replicator_auth",
    "Endpoint",
]


# -- status and cluster endpoints ----------------------------------------------------

def up(ctx: ServerContext) -> Generator[Request, Response, bool]:
    """``GET /_up``: ``True`` when the node answers 200 (``{"status": "ok"}``), ``False``
    for a 5xx (503: maintenance mode, or not ready) and when no connection can be made. A
    server without ``/_up`` (CouchDB 1.x, PouchDB Server: 404) is up if ``GET /`` answers.
    Credentials the server refuses (401, 403) raise :class:`~couchcore.errors.Unauthorized`
    / :class:`~couchcore.errors.Forbidden`: the node answered, so it is not "down". A URL
    that is no server root (``http://host:5984/somedb``: ``/_up`` and ``GET /`` give a 4xx,
    or ``GET /`` answers without a ``"version"``, e.g. a database's info) raises that
    error, or :class:`ResponseError`.
    https://docs.couchdb.org/en/stable/api/server/common.html#up
    """
    from ..errors import TransportError

    try:
        resp = yield Request("GET", "/_up")
        fallback = resp.status in (404, 405)
        if fallback:
            resp = yield Request("GET", "/")
    except TransportError:
        return False
    if resp.status in (401, 403) or (fallback and 400 <= resp.status < 500):
        # the node answered: refused credentials, or a URL that is no server root
        # (Server("http://host:5984/nosuchdb"): 404 on /_up and on GET /)
        raise resp.error()
    if fallback and resp.ok:
        data = resp.json()
        if not isinstance(data, dict) or not isinstance(data.get("version"), str):
            # Server("http://host:5984/somedb"): /somedb/_up is a missing document and
            # GET /somedb/ the database's info, which said True for a URL that is no server
            raise ResponseError(f"GET {resp.url or '/'} is no CouchDB welcome (no \"version\"): "
                                f"{SERVER_URL_HINT}")
    return resp.ok


class DbsInfoRow(TypedDict, total=False):
    """One entry of ``POST /_dbs_info``: ``info`` (as ``GET /{db}``) or ``error``."""

    key: str
    info: dict[str, Any]
    error: str


DBS_INFO_KEYS = 100  # CouchDB's default [chttpd] max_db_number_for_dbs_info_req


def dbs_info(ctx: ServerContext, names: "Iterable[str]") -> Generator[Request, Response, list[DbsInfoRow]]:
    """``POST /_dbs_info`` with ``{"keys": names}``: ``[{"key", "info"} | {"key", "error":
    "not_found"}]`` in order. CouchDB takes at most ``[chttpd]
    max_db_number_for_dbs_info_req`` keys a request (100 by default; more is refused with
    400 ``too_many_keys``), so the names go in requests of at most 100, fewer when the
    server refuses that many. Servers without it (404/405: CouchDB before 2.2, PouchDB
    Server) are asked ``GET /{db}`` for each name, with the same answer.
    https://docs.couchdb.org/en/stable/api/server/common.html#dbs-info
    """
    if isinstance(names, (str, bytes, Mapping)) or not hasattr(names, "__iter__"):
        raise InvalidInput(f"dbs_info takes a list of database names, got {type(names).__name__}")
    names = list(names)
    for name in names:
        if not isinstance(name, str):
            raise InvalidInput(f"database names are str, got {name!r}")
    if not names:
        return []
    rows: list[DbsInfoRow] = []
    start, size = 0, DBS_INFO_KEYS
    while start < len(names):
        keys = names[start:start + size]
        resp = yield Request("POST", "/_dbs_info", json={"keys": keys}, idempotent=True)
        if resp.status in (404, 405):
            break
        if resp.status == 400 and size > 1 and b"too_many_keys" in (resp.body or b""):
            size = max(1, size // 2)  # the server's limit is set lower than the default
            continue
        rows.extend(resp.json())
        start += len(keys)
    else:
        return rows
    rows = []
    for name in names:
        one = yield Request("GET", db_path(name))
        if one.status == 404:
            rows.append({"key": name, "error": "not_found"})
        else:
            rows.append({"key": name, "info": one.json()})
    return rows


def _paging_query(limit: int | None, skip: int | None) -> list[tuple[str, str]]:
    for what, value in (("limit", limit), ("skip", skip)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidInput(f"{what} must be a non-negative int, got {value!r}")
    return [(k, str(v)) for k, v in (("limit", limit), ("skip", skip)) if v is not None]


class SchedulerJobs(TypedDict):
    """``GET /_scheduler/jobs``: the running replication jobs."""

    total_rows: int
    offset: int
    jobs: list[dict[str, Any]]


class SchedulerDocs(TypedDict):
    """``GET /_scheduler/docs``: the replication documents and their states."""

    total_rows: int
    offset: int
    docs: list[dict[str, Any]]


def scheduler_jobs(ctx: ServerContext, limit: int | None = None,
                   skip: int | None = None) -> Generator[Request, Response, SchedulerJobs]:
    """https://docs.couchdb.org/en/stable/api/server/common.html#scheduler-jobs"""
    resp = yield Request("GET", "/_scheduler/jobs", query=_paging_query(limit, skip))
    data: SchedulerJobs = resp.json()
    return data


def scheduler_docs(ctx: ServerContext, replicator_db: str | None = None, limit: int | None = None,
                   skip: int | None = None) -> Generator[Request, Response, SchedulerDocs]:
    """``GET /_scheduler/docs`` (or ``/_scheduler/docs/{replicator_db}`` for another
    ``*/_replicator`` database). https://docs.couchdb.org/en/stable/api/server/common.html#scheduler-docs
    """
    path = "/_scheduler/docs"
    if replicator_db is not None:
        validate_db_name(replicator_db)
        path += "/" + quote_segment(replicator_db)
    resp = yield Request("GET", path, query=_paging_query(limit, skip))
    data: SchedulerDocs = resp.json()
    return data
