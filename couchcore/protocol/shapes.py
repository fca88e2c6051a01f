r"""The fixed JSON shapes CouchDB answers with, as :class:`~typing.TypedDict`\ s.

Operations return these dicts as the server sent them (plain ``dict`` at run time);
the classes only tell type checkers and IDEs which keys to expect. Keys every CouchDB
3.x and PouchDB Server send are required; keys only some servers or versions send are
optional (``total=False``), so read those with ``.get()``.
"""

# No ``from __future__ import annotations`` here: a TypedDict turns each string annotation into a
# ForwardRef, which compiles it (~75 compiles, ~7M instructions at import: every ``couchcore load``
# pays them); evaluated annotations are read as they are. Python >= 3.10, so ``str | None`` is fine.

from typing import Any, TypedDict, Union

__all__ = [
    "ServerInfo", "ServerVendor", "UserContext", "SessionInfo", "SessionAuthInfo", "LoginResult", "OkResult",
    "DatabaseInfo", "DatabaseSizes", "ClusterInfo", "DesignInfo", "CommitResult", "PurgeResult",
    "DocResult", "BulkDocsRow", "FindResult", "IndexCreated", "Membership", "BuildViewResult",
    "SecurityObject", "SecurityMembers", "ConfigSection", "PendingWrite", "Seq", "ChangesResponse",
]

#: An update sequence (``last_seq``, ``update_seq``, what ``since`` takes back): opaque, pass it
#: back as it came; a str on CouchDB 2+ (``"12-g1AAAA..."``), an int on PouchDB Server.
Seq = Union[str, int]

#: one section of the node's configuration: ``{key: value}``, every value a str
ConfigSection = dict[str, str]


class ServerVendor(TypedDict, total=False):
    """``vendor`` of ``GET /``: ``{"name", "version"?}``."""
    name: str
    version: str


class ServerInfo(TypedDict, total=False):
    """``GET /``: ``{"couchdb": "Welcome", "version", "git_sha", "uuid", "features",
    "vendor": {"name", "version"?}}``.
    https://docs.couchdb.org/en/stable/api/server/common.html#get--"""

    couchdb: str
    version: str
    git_sha: str
    uuid: str
    features: list[str]
    vendor: ServerVendor


class UserContext(TypedDict):
    """The ``userCtx`` of ``GET /_session``: ``name`` is ``None`` for an anonymous caller."""

    name: str | None
    roles: list[str]


class _SessionAuthRequired(TypedDict):
    authentication_handlers: list[str]


class SessionAuthInfo(_SessionAuthRequired, total=False):
    """``info`` of ``GET /_session``: the authentication handlers and the one that authenticated."""
    authenticated: str
    authentication_db: str


class SessionInfo(TypedDict):
    """``GET /_session``. https://docs.couchdb.org/en/stable/api/server/authn.html#get--_session"""

    ok: bool
    userCtx: UserContext
    info: SessionAuthInfo


class LoginResult(TypedDict):
    """``POST /_session``: ``{"ok": true, "name", "roles"}``.
    https://docs.couchdb.org/en/stable/api/server/authn.html#post--_session"""

    ok: bool
    name: str | None
    roles: list[str]


class OkResult(TypedDict):
    """``{"ok": true}``, e.g. of ``DELETE /_session`` or ``PUT /{db}/_security``."""

    ok: bool


class DatabaseSizes(TypedDict, total=False):
    """Bytes: ``file`` on disk, ``external`` uncompressed data, ``active`` live data."""

    file: int
    external: int
    active: int


class ClusterInfo(TypedDict):
    """``q`` shards, ``n`` replicas, ``w``/``r`` default write/read quorums."""

    q: int
    n: int
    w: int
    r: int


class _DatabaseInfoRequired(TypedDict):
    db_name: str
    doc_count: int
    update_seq: Seq  # opaque: a str on CouchDB 2+, an int on PouchDB Server


class DatabaseInfo(_DatabaseInfoRequired, total=False):
    """``GET /{db}``. https://docs.couchdb.org/en/stable/api/database/common.html#get--db"""

    doc_del_count: int  # (not sent by PouchDB Server)
    purge_seq: Seq
    sizes: DatabaseSizes
    disk_format_version: int
    compact_running: bool
    cluster: ClusterInfo
    instance_start_time: str
    props: dict[str, Any]


class DesignInfo(TypedDict):
    """``GET /{db}/_design/{ddoc}/_info``: ``{"name", "view_index": {"signature",
    "language", "sizes", "updater_running", "compact_running", "waiting_clients", ...}}``.
    https://docs.couchdb.org/en/stable/api/ddoc/common.html#get--db-_design-ddoc-_info"""

    name: str
    view_index: dict[str, Any]


class CommitResult(TypedDict, total=False):
    """``POST /{db}/_ensure_full_commit``: ``{"ok": true, "instance_start_time"}``."""

    ok: bool
    instance_start_time: str


class PurgeResult(TypedDict):
    """``POST /{db}/_purge``: ``{"purge_seq", "purged": {id: [rev, ...]}}``.
    https://docs.couchdb.org/en/stable/api/database/misc.html#db-purge"""

    purge_seq: Any
    purged: dict[str, list[str]]


class DocResult(TypedDict):
    """A write's answer: ``{"ok": true, "id", "rev"}`` (``PUT``/``DELETE`` of a document
    or an attachment). https://docs.couchdb.org/en/stable/api/document/common.html"""

    ok: bool
    id: str
    rev: str


class _BulkDocsRowRequired(TypedDict):
    id: str


class BulkDocsRow(_BulkDocsRowRequired, total=False):
    """A row of ``POST /{db}/_bulk_docs``' answer: ``{"ok": true, "id", "rev"}`` or
    ``{"id", "error", "reason"}``.
    https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-docs"""

    ok: bool
    rev: str
    error: str
    reason: str


class _PendingWriteOthers(TypedDict, total=False):
    others: "list[PendingWrite]"  # (PendingWrite is defined below)


class PendingWrite(_PendingWriteOthers):
    """A document :meth:`~couchcore.Database.save` did not write
    (:attr:`ConflictResolution.pending <couchcore.models.ConflictResolution.pending>` values):
    the document as given, and the ``error``/``reason`` of its ``_bulk_docs`` row
    (``"conflict"``, ``"forbidden"``, ...; ``reason`` may be ``None``). Two errors come from
    a cluster's ``202 Accepted`` (https://docs.couchdb.org/en/stable/cluster/theory.html)
    and are never written again by ``force``, ``merge``, ``resolve()`` or ``overwrite()``:
    ``"stored_as_conflict"`` (the write lost to a concurrent one and couchcore could not
    withdraw it: the edit is stored beside the other writer's as a conflicting revision)
    and ``"unknown_outcome"`` (the write is stored, but whether it lost could not be read);
    an id with such a write among ``others`` is not written again either; read the
    document with ``conflicts=True`` before writing it again. ``others`` (only
    when a list held its ``_id`` more than once and several of those were refused in one
    request): ``doc`` is the last of them, ``others`` the earlier ones in list order, each
    as such a dict. ``merge`` (``save(docs, merge=fn)`` and
    :meth:`ConflictResolution.merge <couchcore.models.ConflictResolution.merge>`) merges
    every one of them in turn, in list order (``fn(first, server)``, then ``fn(next,
    result so far)``, ...) and writes the result once; ``force``/``overwrite()`` and
    ``resolve()`` write ``doc``, the later write of that id, which supersedes the others
    (they leave ``pending`` once it is written, and stay in its ``others`` while it is
    refused)."""

    doc: dict[str, Any]
    error: str
    reason: str | None


class _FindResultRequired(TypedDict):
    docs: list[Any]  # Documents (or the selected fields of them)


class FindResult(_FindResultRequired, total=False):
    """``POST /{db}/_find``: ``{"docs": [Document, ...], "bookmark", "warning"?,
    "execution_stats"?}``. https://docs.couchdb.org/en/stable/api/database/find.html#db-find"""

    bookmark: str
    warning: str
    execution_stats: dict[str, Any]


class IndexCreated(TypedDict):
    """``POST /{db}/_index``: ``{"result": "created" | "exists", "id", "name"}``.
    https://docs.couchdb.org/en/stable/api/database/find.html#db-index"""

    result: str
    id: str
    name: str


class Membership(TypedDict):
    """``GET /_membership``: node names. https://docs.couchdb.org/en/stable/api/server/common.html#membership"""

    all_nodes: list[str]
    cluster_nodes: list[str]


class BuildViewResult(TypedDict):
    """What :meth:`~couchcore.Database.build_view` returns: the view, seconds waited, queries made."""

    view: str
    elapsed: float
    attempts: int


class SecurityMembers(TypedDict, total=False):
    """``admins`` / ``members`` of a security object: ``{"names": [...], "roles": [...]}``."""
    names: list[str]
    roles: list[str]


class SecurityObject(TypedDict, total=False):
    """``GET /{db}/_security``: ``{"admins": {"names", "roles"}, "members": {...}}``.
    https://docs.couchdb.org/en/stable/api/database/security.html"""

    admins: SecurityMembers
    members: SecurityMembers


class _ChangesResponseRequired(TypedDict):
    results: list[dict[str, Any]]
    last_seq: Seq


class ChangesResponse(_ChangesResponseRequired, total=False):
    """A normal or longpoll ``GET /{db}/_changes`` read whole (what
    :meth:`ChangesResult.as_dict <couchcore.ChangesResult.as_dict>` returns):
    ``{"results": [change, ...], "last_seq", "pending"?}``.
    https://docs.couchdb.org/en/stable/api/database/changes.html"""

    pending: int
