"""The Server and Database API, written once for every driver.

:class:`ServerAPI` and :class:`DatabaseAPI` turn each call into a protocol
operation and hand it to ``self._run(op, post)``; the sync facade
(:mod:`couchcore._sync`) runs it at once and returns the result, the async facade
(:mod:`couchcore.tornado`) returns an awaitable. No operation is written per backend.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Literal, Sequence, TypeVar, overload

from .errors import InvalidInput, InvalidOption, NotFound, NotFoundKeyError
from .models import ConflictResolution, Document, Result
from .protocol import attachments as _att
from .protocol import database as _db
from .protocol import documents as _docs
from .protocol import server as _srv
from .protocol import mango as _mango
from .protocol import revs as _revs
from .protocol.messages import Operation
# at run time, not only for type checkers: typing.get_type_hints() of the public API resolves these here
from .protocol.shapes import (BuildViewResult, CommitResult, ConfigSection, DatabaseInfo, DesignInfo, DocResult,
                              FindResult, IndexCreated, LoginResult, Membership, OkResult, PurgeResult, Seq,
                              ServerInfo, SessionInfo)
from .codec import NOT_GIVEN
from .protocol.paths import db_path, url_with_credentials, validate_db_name
from .auth import Auth, SessionAuth, authed, is_unauthenticated, unauthenticated
from ._nodes import AsyncNodePool, NodePool, check_nodes
from .transport.base import Credentials, TransportOptions, check_transport, find_backend
from ._urls import split_credentials, split_database_url

#: a revision id (``N-hex``), to catch ``db.get((id, rev))``
_REV_SHAPE = re.compile(r"[1-9][0-9]*-[0-9a-f]+")

if TYPE_CHECKING:
    from ._feeds import ChangesFeed
    from ._follow import ChangesFollower
    from .models import Row
    from ._paging import Paged
    from ._partition import Partition
    from ._results import AttachmentStream, ChangesResult, ViewResult
    from .protocol import bulk_get as _bulk_get
    from .protocol import changes as _changes
    from .protocol import indexes as _indexes
    from .protocol import paging as _paging
    from .protocol import views as _views
else:
    class _Deferred:
        """A module of the reading operations (feeds, views, results, the row parser), imported
        when first used and then bound in this module's globals in its place: ``couchcore load``
        and other write-only programs never import it (start-up time)."""

        __slots__ = ("_alias", "_name")

        def __init__(self, alias, name):
            self._alias = alias
            self._name = name

        def __getattr__(self, attr):
            module = importlib.import_module(self._name, __package__)
            globals()[self._alias] = module
            return getattr(module, attr)

    _bulk_get = _Deferred("_bulk_get", ".protocol.bulk_get")
    _changes = _Deferred("_changes", ".protocol.changes")
    _indexes = _Deferred("_indexes", ".protocol.indexes")
    _paging = _Deferred("_paging", ".protocol.paging")
    _views = _Deferred("_views", ".protocol.views")

__all__ = ["ServerAPI", "DatabaseAPI", "DEFAULT_URL"]

DEFAULT_URL = "http://127.0.0.1:5984"

# (DatabaseAPI has a method named ``list``: these keep the builtin visible in its annotations)
_IndexList = list[_mango.IndexInfo]
_RevLists = dict[str, list[str]]
_Changes = list[dict[str, Any]]  # a batch of change dicts
_OpenRevs = list[dict[str, Any]]  # open_revs: [{"ok": Document} | {"missing": rev}, ...]

T = TypeVar("T")
R = TypeVar("R")


class _ServerConfig:
    """The arguments a Server was built with, for :meth:`ServerAPI.__reduce__`; its repr
    shows no URL (they may carry credentials) and no auth."""

    __slots__ = ("url", "auth", "full_commit", "backend", "uuid_batch", "options")

    def __init__(self, url: str | list[str], auth: Any, full_commit: bool | None, backend: str | None,
                 uuid_batch: int, options: dict[str, Any]) -> None:
        self.url = url
        self.auth = auth
        self.full_commit = full_commit
        self.backend = backend
        self.uuid_batch = uuid_batch
        self.options = options

    def __repr__(self) -> str:
        return f"<server configuration, backend={self.backend!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return _ServerConfig, (self.url, self.auth, self.full_commit, self.backend, self.uuid_batch, self.options)


class _CredentialsArgs(tuple[str, str]):
    """A :class:`Credentials`' arguments in a pickle (see :meth:`ServerAPI.__reduce__`)."""


def _rebuild_server(cls: "type[ServerAPI]", config: _ServerConfig, now: dict[str, Any] | None = None) -> "ServerAPI":
    """A Server of class ``cls`` built from ``config``, then given the public attributes
    ``now`` (unpickling, ``copy.deepcopy``)."""
    server = cls(config.url, auth=config.auth, full_commit=config.full_commit, backend=config.backend,
                 uuid_batch=config.uuid_batch, **config.options)
    for name, value in (now or {}).items():
        setattr(server, name, Credentials(*value) if isinstance(value, _CredentialsArgs) else value)
    return server


def _rebuild_database(cls: "type[DatabaseAPI]", server: "ServerAPI", name: str) -> "DatabaseAPI":
    """Database ``name`` of ``server``, of class ``cls`` (unpickling, ``copy.deepcopy``)."""
    return cls._bound(server, name)


def _session_call(method: Callable[[Any], R]) -> Callable[[Any], R]:
    """``login``/``logout``, which take no arguments, saying so when given some: the
    credentials are the Server's ``auth`` (couchdb-python's ``login(name, password)``
    and ``logout(token)`` took them; a bare ``TypeError`` named the class, not what to
    do). The arguments are never shown (they may be a password). The method's own
    signature stays what ``inspect.signature`` shows and type checkers see."""
    import functools

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> R:
        if args or kwargs:
            given = len(args) + len(kwargs)
            del args, kwargs  # not in the traceback's frame either (reporters that show locals)
            raise TypeError(
                f"{type(self).__name__}.{method.__name__}() takes no arguments ({given} given): the credentials "
                "are the Server's: couchcore.Server(url, auth=couchcore.SessionAuth(user, password)) logs in on "
                "first use (with the cookie kept and renewed); login() logs in now, logout() ends the session")
        return method(self)

    return call


class ServerAPI:
    """A CouchDB server. See :class:`couchcore.Server` for the sync flavour."""

    is_async = False
    _database_class: type["DatabaseAPI"]

    def __init__(
        self,
        url: str | Sequence[str] | None = None,
        auth: "tuple[str, str] | Auth | None" = None,
        full_commit: bool | None = True,
        backend: str | None = None,
        uuid_batch: int = 100,
        **transport_options: Any,
    ) -> None:
        if url is None or url == "":
            # several nodes of one cluster: separated by commas or spaces, as couchcore.testing reads it
            env = re.split(r"[\s,]+(?=https?://)", (os.environ.get("COUCHDB_URL") or "").strip())
            url = [u for u in env if u] or DEFAULT_URL
            if len(url) == 1:
                url = url[0]
        urls = [url] if isinstance(url, str) else list(url) if isinstance(url, (list, tuple)) else None
        if urls is None or not all(isinstance(u, str) and u for u in urls):
            raise InvalidInput("url must be a str or a non-empty list of str (one per node)")
        check_nodes(urls)  # one scheme, one path prefix (several nodes of one cluster)
        splits = [split_credentials(u) for u in urls]
        bases = [base for base, _, _ in splits]
        users = {(u, p) for _, u, p in splits if u is not None}
        if len(users) > 1:
            raise InvalidInput("the node URLs carry different credentials")
        user, password = next(iter(users)) if users else (None, None)
        self.auth: Auth | None = None
        if isinstance(auth, Auth):
            self.auth = auth
            user = password = None
        elif auth is not None:
            if not (isinstance(auth, (tuple, list)) and len(auth) == 2):
                raise InvalidInput("auth must be a (username, password) pair, SessionAuth, JWTAuth or ProxyAuth, "
                                   f"not {type(auth).__name__}")
            user, password = auth
            # HTTP Basic (RFC 7617): a user id without ':' (the server splits at the first
            # one) and a password, both str. A None user sent nothing at all (anonymous
            # requests), bytes or an int were sent as their repr ("b'admin'"): a 401 saying
            # the password is wrong, or none when anonymous access is allowed
            if not isinstance(user, str) or not user or ":" in user or not isinstance(password, str):
                raise InvalidInput("auth=(user, password) takes a non-empty str user without ':' and a str "
                                   f"password, got a {type(user).__name__} user and a "
                                   f"{type(password).__name__} password")  # (neither echoed)
        elif user is not None and ":" in user:
            raise InvalidInput("the user name in the URL contains ':' (HTTP Basic cannot send it)")
        # what a pickle or deepcopy rebuilds the Server from (see __reduce__): the URLs as given
        # (credentials included), auth, the options; no connection, lock or session
        self._config: _ServerConfig = _ServerConfig(urls[0] if len(urls) == 1 else list(urls), auth, full_commit, backend,
                                     uuid_batch, dict(transport_options))
        self.url: str = bases[0]
        self.urls: list[str] = bases
        self.credentials: Credentials | None = Credentials(user, password or "") if user is not None else None
        self.options: TransportOptions = TransportOptions.from_kwargs(**transport_options)
        self._ctx: _srv.ServerContext = _srv.ServerContext(uuid_batch=uuid_batch, full_commit=full_commit)
        self._transport: Any
        if backend is not None:  # unknown, or of the other flavour: InvalidOption (an InvalidInput) now
            find_backend(backend, self.is_async)
        transports = [self._make_transport(backend, base) for base in bases]
        for transport in transports:  # the sync/async contract of the facade (transport.base)
            check_transport(transport, self.is_async)
        if len(bases) == 1:
            self._transport = transports[0]
        else:
            self._transport = (AsyncNodePool if self.is_async else NodePool)(transports)

    def _authed(self, op: Operation[T]) -> Operation[T]:
        """``op`` with the auth object's flow around each request (or ``op`` itself)."""
        if self.auth is None or is_unauthenticated(op):
            return op
        return authed(op, self.auth)

    # hooks of a concrete facade
    def _make_transport(self, backend: str | None, url: str | None = None) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @overload
    def _run(self, op: Operation[T]) -> T: ...
    @overload
    def _run(self, op: Operation[T], post: Callable[[T], R]) -> R: ...
    def _run(self, op: Operation[Any], post: Callable[[Any], Any] | None = None) -> Any:  # pragma: no cover
        """Run ``op``; return ``post(result)`` (or the result). Sync: the value; async: an awaitable of it."""
        raise NotImplementedError

    def _run_many(self, ops: list[Operation[Any]], concurrency: int,
                  post: Callable[[list[Any]], R]) -> R:  # pragma: no cover
        """Run operations concurrently; ``post`` gets results (exceptions in place) in order."""
        raise NotImplementedError

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickling (``multiprocessing``, ``ProcessPoolExecutor``) and ``copy.deepcopy``: the
        copy is a new Server of the same class built in the receiving process from this
        one's configuration (URLs, ``auth``, ``full_commit``, ``backend``, transport
        options), with its own connections and locks; a :class:`SessionAuth` logs in again
        there. Then this Server's public attributes as they are now are set on it
        (``auth``, ``credentials``, ``url``, ``urls``, ``options``, and those a subclass
        adds): an ``auth`` replaced after the Server was made is the copy's ``auth`` too.
        The pickle holds the credentials (as the URL and ``auth`` gave them): it is data
        for the caller's own workers. ``copy.copy`` shares this Server's connections.
        The copy is built as ``cls(url, auth=..., full_commit=..., backend=...,
        uuid_batch=..., **transport_options)``: a subclass whose ``__init__`` takes other
        arguments must define its own ``__reduce__``."""
        now = {name: value for name, value in vars(self).items() if not name.startswith("_")}
        if type(now.get("credentials")) is Credentials:  # (its __slots__: no pickle protocol 0 or 1)
            now["credentials"] = _CredentialsArgs((now["credentials"].username, now["credentials"].password))
        return _rebuild_server, (type(self), self._config, now)

    def __copy__(self) -> "ServerAPI":
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __repr__(self) -> str:
        who = f" as {self.credentials.username}" if self.credentials else ""
        if self.auth is not None:
            who = f" with {self.auth!r}"
        where = self.url if len(self.urls) == 1 else ", ".join(self.urls)
        return f"<{type(self).__name__} {where}{who}>"

    def close(self) -> None:
        """Close the transport's pooled connections; continuous feeds and followers made
        through this Server stop (their iterations end, also in other threads). The
        Server stays usable: the next request opens a new connection. Returns ``None``
        (on ``couchcore.aio`` and ``couchcore.tornado``: :class:`couchcore.tornado.Closed`,
        an awaitable already done, so ``await server.close()`` works there too).

        What happens to requests already under way differs by facade:

        * sync ``couchcore.Server`` (urllib3 and pycurl): nothing under way is cut. Only
          idle connections close; a call, a save or a streamed result (view, ``_changes``,
          attachment) being read runs to its end, in this thread or another. urllib3 then
          closes its connection. With pycurl each thread has its own connections:
          ``close()`` closes the calling thread's (a stream it still reads keeps its own
          until the end), and other threads keep theirs, idle ones too, until they call
          ``close()`` themselves or end.
        * ``couchcore.aio`` and ``couchcore.tornado`` (pycurl and tornado backends):
          everything under way on this Server is aborted at once, on every event loop it
          used. An awaited read, a longpoll, a call still waiting for a ``max_clients``
          slot, and a streamed result whose body has not all arrived (when read on) raise
          :class:`~couchcore.errors.ConnectionError` ("request aborted (the transport was
          closed)"), never retried. A write (``save``, ``delete``, ``put_attachment``,
          ``copy``, ...) raises :class:`~couchcore.errors.OutcomeUnknown` instead: it may
          have been written or not (both happen), so read the document to know. A
          ``callback=`` gets a failed :class:`~couchcore.Status` with that error. To let
          them finish, await them (``await asyncio.gather(*tasks)``) before ``close()``.
        """
        feeds = sys.modules.get(f"{__package__}._feeds")  # not imported: no feed to stop
        if feeds is not None:
            feeds.stop_feeds(self)
        self._transport.close()

    def _database(self, name: str) -> "DatabaseAPI":
        return self._database_class._bound(self, name)

    # -- server info ---------------------------------------------------------------
    def info(self) -> ServerInfo:
        """The welcome object of ``GET /``: ``{"couchdb", "version", "uuid", "vendor", ...}``;
        :class:`ResponseError` when the answer has no ``"version"`` (the URL is not a
        server's, e.g. it names a database).
        https://docs.couchdb.org/en/stable/api/server/common.html#get--
        """
        return self._run(_srv.welcome(self._ctx))

    def version(self) -> str:
        """The server's version string (``"3.5.0"``), from ``GET /``; :class:`ResponseError`
        when the answer has none (the URL is not a server's).
        https://docs.couchdb.org/en/stable/api/server/common.html#get--
        """
        return self._run(_srv.version(self._ctx))

    def all_dbs(self, limit: int | None = None, skip: int | None = None, start_key: Any = NOT_GIVEN,
                end_key: Any = NOT_GIVEN, descending: bool | None = None) -> list[str]:
        """Names of the databases (``list[str]``), in name order.

        ``start_key``/``end_key`` bound the names (inclusive; JSON values, so ``None`` is
        ``null``, and leaving them out means no bound), ``limit`` and ``skip`` (non-negative
        ints) page, ``descending=True`` reverses the order (then ``start_key`` is the
        largest name). Bad values raise :class:`InvalidOption` before anything is sent.
        https://docs.couchdb.org/en/stable/api/server/common.html#all-dbs
        """
        return self._run(_srv.all_dbs(self._ctx, limit=limit, skip=skip, start_key=start_key,
                                      end_key=end_key, descending=descending))

    def uuids(self, count: int = 1) -> list[str]:
        """``count`` fresh uuids (a list of hex ``str``) from ``GET /_uuids``.
        https://docs.couchdb.org/en/stable/api/server/common.html#uuids
        """
        return self._run(_srv.uuids(self._ctx, count))

    @overload
    def config(self, name: None = None) -> dict[str, ConfigSection]: ...
    @overload
    def config(self, name: str, value: None = None, delete: Literal[False] = False) -> ConfigSection | str: ...
    @overload
    def config(self, name: str, value: str | int | float | bool, delete: Literal[False] = False) -> None: ...
    @overload
    def config(self, name: str, value: None = None, *, delete: Literal[True]) -> str: ...
    def config(self, name: str | None = None, value: Any = None,
               delete: bool = False) -> dict[str, ConfigSection] | ConfigSection | str | None:
        """Whole config, a section (``"couchdb"``) or a key (``"couchdb/max_dbs_open"``).

        With ``value`` sets the key (returns ``None``); with ``delete=True`` removes it
        and returns the old value. Uses ``/_node/_local/_config`` on CouchDB 2+: the
        configuration is each node's own, so a :class:`Server` over several nodes reads
        and sets the first node's (the first URL given; never another node in its place),
        and a setting for the whole cluster is set through each node's own Server.
        https://docs.couchdb.org/en/stable/api/server/configuration.html
        """
        result: dict[str, ConfigSection] | ConfigSection | str | None = self._run(
            _srv.config(self._ctx, name, value, delete))
        return result

    def stats(self, name: str | None = None) -> dict[str, Any]:
        """The node's statistics (a dict), or one sub-path (``"couchdb/request_time"``):
        ``GET /_node/_local/_stats`` (``/_stats`` on servers without it); a missing
        statistic raises :class:`NotFound`. On a :class:`Server` over several nodes:
        the first node's.
        https://docs.couchdb.org/en/stable/api/server/common.html#node-node-name-stats
        """
        return self._run(_srv.stats(self._ctx, name))

    def tasks(self) -> list[dict[str, Any]]:
        """The running tasks (indexing, compaction, replication): ``GET /_active_tasks``,
        a list of dicts. Needs admin rights.
        https://docs.couchdb.org/en/stable/api/server/common.html#active-tasks
        """
        return self._run(_srv.tasks(self._ctx))

    def membership(self) -> Membership:
        """The cluster's nodes: ``GET /_membership``, ``{"all_nodes", "cluster_nodes"}``.
        https://docs.couchdb.org/en/stable/api/server/common.html#membership
        """
        return self._run(_srv.membership(self._ctx))

    def config_reload(self) -> bool:
        """Reload the node's configuration from its ini files; ``True`` on success.

        ``POST /_node/_local/_config/_reload`` (the node prefix is discovered as for
        :meth:`config`; the first node of a :class:`Server` over several); servers without the endpoint raise :class:`NotFound` (or
        :class:`MethodNotAllowed`).
        https://docs.couchdb.org/en/stable/api/server/configuration.html#node-node-name-config-reload
        """
        return self._run(_srv.config_reload(self._ctx))

    def session(self) -> SessionInfo:
        """Who the server thinks the caller is: ``GET /_session`` as a dict,
        ``{"ok": True, "userCtx": {"name": str | None, "roles": [...]}, "info":
        {"authenticated": ..., "authentication_handlers": [...], ...}}``.
        https://docs.couchdb.org/en/stable/api/server/authn.html#get--_session
        """
        return self._run(_srv.session(self._ctx))

    @_session_call
    def login(self) -> LoginResult:
        """Log in now with the Server's :class:`~couchcore.auth.SessionAuth`
        (``POST /_session``) and keep the cookie; returns ``{"ok": True, "name": str,
        "roles": [...]}``. :class:`~couchcore.errors.Unauthorized` on a wrong password;
        :class:`InvalidInput` when the Server has no ``SessionAuth``. It takes no
        arguments: the credentials are given as ``Server(url,
        auth=couchcore.SessionAuth(user, password))`` (couchdb-python's ``login(name,
        password)`` raises a ``TypeError`` saying so).
        https://docs.couchdb.org/en/stable/api/server/authn.html#post--_session
        """
        result: LoginResult = self._run_unauthed(self._session_auth().login_flow())
        return result

    @_session_call
    def logout(self) -> OkResult:
        """End the cookie session (``DELETE /_session``) and forget the cookie; the
        next request logs in again. Returns ``{"ok": True}``; :class:`InvalidInput`
        when the Server has no ``SessionAuth``.
        https://docs.couchdb.org/en/stable/api/server/authn.html#delete--_session
        """
        result: OkResult = self._run_unauthed(self._session_auth().logout_flow())
        return result

    def _session_auth(self) -> SessionAuth:
        if not isinstance(self.auth, SessionAuth):
            raise InvalidInput("login()/logout() need auth=couchcore.SessionAuth(user, password)")
        return self.auth

    def _run_unauthed(self, op: Operation[T]) -> T:
        return self._run(unauthenticated(op))

    # -- databases -----------------------------------------------------------------
    def create(self, name: str, partitioned: bool = False, q: int | None = None, n: int | None = None,
               **options: Any) -> "DatabaseAPI":
        """Create database ``name`` and return its Database (``PreconditionFailed`` if it
        exists; a bad name raises ``InvalidDatabaseName`` before anything is sent).

        ``partitioned=True`` makes a partitioned database (ids ``"{partition}:{id}"``, see
        :meth:`DatabaseAPI.partition`); ``q`` (shards) and ``n`` (replicas) are positive
        ints, the server's defaults when left out.
        https://docs.couchdb.org/en/stable/api/database/common.html#put--db
        """
        validate_db_name(name)
        if not isinstance(partitioned, bool):
            raise InvalidInput(f"partitioned must be a bool, got {partitioned!r}")
        for what, value in (("q", q), ("n", n)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidInput(f"{what} must be a positive int, got {value!r}")
        if partitioned:
            options["partitioned"] = True
        options.update({k: v for k, v in (("q", q), ("n", n)) if v is not None})
        return self._run(_srv.create_db(self._ctx, name, **options), self._database)

    def db(self, name: str, create: bool = False) -> "DatabaseAPI":
        """The database ``name`` (``GET /{db}`` checks it exists): :class:`NotFound` if it is
        missing, unless ``create`` (then ``PUT /{db}`` creates it); a bad name raises
        :class:`InvalidDatabaseName` before anything is sent.
        https://docs.couchdb.org/en/stable/api/database/common.html
        """
        validate_db_name(name)
        return self._run(_srv.open_db(self._ctx, name, create), self._database)

    def delete(self, name: str) -> bool:
        """Delete database ``name`` (``DELETE /{db}``); returns ``True``, :class:`NotFound` if missing.
        https://docs.couchdb.org/en/stable/api/database/common.html#delete--db
        """
        return self._run(_srv.delete_db(self._ctx, name))

    def exists(self, name: str) -> bool:
        """Whether database ``name`` exists (``HEAD /{db}``).
        https://docs.couchdb.org/en/stable/api/database/common.html#head--db
        """
        return self._run(_srv.db_exists(self._ctx, name))

    def replicate(self, source: "str | DatabaseAPI | Mapping[str, Any]", target: "str | DatabaseAPI | Mapping[str, Any]",
                  **options: Any) -> Document:
        """Replicate ``source`` to ``target`` (URLs, names or Database objects).

        With ``_id=...`` a document in ``_replicator`` is written; otherwise
        ``_replicate`` is called (``continuous``, ``create_target``, ``doc_ids``,
        ``filter``, ``cancel``, ... pass through). The replicator logs in to each
        endpoint with the credentials of its Server (or of its URL), sent in the
        endpoint's ``auth`` object on CouchDB 3.2+, never in a URL, so any password
        works. A ``dict`` endpoint is sent as it is. CouchDB ignores option names it
        does not know, so a name one typo away from a replication field
        (``continous=True``) raises :class:`~couchcore.errors.InvalidOption` before sending.
        https://docs.couchdb.org/en/stable/replication/replicator.html
        """
        return self._run(_srv.replicate(self._ctx, self._endpoint(source), self._endpoint(target), **options))

    def _endpoint(self, db: Any) -> Any:
        """A replication endpoint: an :class:`~couchcore.protocol.server.Endpoint` (URL
        without credentials, the credentials beside it) or a caller's dict."""
        if isinstance(db, DatabaseAPI):
            server = db._server
            return self._endpoint_on(server, db.name)
        if isinstance(db, str) and "://" not in db:
            return self._endpoint_on(self, validate_db_name(db))
        if isinstance(db, str):
            server_url, name = split_database_url(db)
            base, user, password = split_credentials(server_url)
            url = base + db_path(name)
            local = name if base == self.url else None
            return _srv.Endpoint(url, user, password if user is not None else None, local)
        if isinstance(db, Mapping):
            return db
        raise InvalidInput(f"replication endpoint must be a URL, name or Database, not {type(db).__name__}")

    def _endpoint_on(self, server: "ServerAPI", name: str) -> Any:
        creds = server.credentials
        user, password = (creds.username, creds.password) if creds else (None, None)
        if isinstance(server.auth, SessionAuth):  # the replicator logs in with the same user
            user, password = server.auth.username, server.auth._password
        return _srv.Endpoint(server.url + db_path(name), user, password,
                             name if server.url == self.url else None)

    def _url_with_credentials(self) -> str:
        if self.credentials is None:
            return self.url
        return url_with_credentials(self.url, self.credentials.username, self.credentials.password)

    # -- the mapping protocol (``server[name]``, ``del server[name]``) ----------------
    def _item(self, name: str) -> "DatabaseAPI":
        """``server[name]``: like :meth:`db`, but a missing database raises
        :class:`NotFoundKeyError` (a ``NotFound`` that is also a ``KeyError``)."""
        validate_db_name(name)
        return self._run(_key_error(_srv.open_db(self._ctx, name, False)), self._database)

    def _del_item(self, name: str) -> bool:
        """``del server[name]``: like :meth:`delete`, ``NotFoundKeyError`` if missing."""
        return self._run(_key_error(_srv.delete_db(self._ctx, name)))

    @property
    def users(self) -> "DatabaseAPI":
        """The ``_users`` database."""
        return self._database("_users")

    @property
    def replicator(self) -> "DatabaseAPI":
        """The ``_replicator`` database."""
        return self._database("_replicator")

    # -- status, cluster and replication scheduler (issue 10) ------------------------------
    def up(self) -> bool:
        """Whether the node is up: ``GET /_up`` answers 200 (``False`` for 503, e.g. in
        maintenance mode, and when no connection can be made; a server without
        ``/_up`` is up when ``GET /`` answers with a welcome). Refused credentials raise
        :class:`Unauthorized`/:class:`Forbidden`; a URL that is no server root (with a
        database name) raises :class:`NotFound` or :class:`ResponseError`.
        https://docs.couchdb.org/en/stable/api/server/common.html#up
        """
        result: bool = self._run(_srv.up(self._ctx))
        return result

    def dbs_info(self, names: Sequence[str]) -> list[_srv.DbsInfoRow]:
        """Info of several databases in one request (``POST /_dbs_info``):
        ``[{"key": name, "info": {...}} | {"key": name, "error": "not_found"}]`` in order
        (``GET /{db}`` each where the server lacks the endpoint).
        https://docs.couchdb.org/en/stable/api/server/common.html#dbs-info
        """
        result: list[_srv.DbsInfoRow] = self._run(_srv.dbs_info(self._ctx, names))
        return result

    def scheduler_jobs(self, limit: int | None = None, skip: int | None = None) -> _srv.SchedulerJobs:
        """The replication jobs running now: ``{"total_rows", "offset", "jobs": [{"id",
        "database", "doc_id", "source", "target", "pid", "start_time", "history", ...}]}``.
        https://docs.couchdb.org/en/stable/api/server/common.html#scheduler-jobs
        """
        result: _srv.SchedulerJobs = self._run(_srv.scheduler_jobs(self._ctx, limit, skip))
        return result

    def scheduler_docs(self, replicator_db: str | None = None, limit: int | None = None,
                       skip: int | None = None) -> _srv.SchedulerDocs:
        """Replication documents and their states (``_replicator``, or ``replicator_db``):
        ``{"total_rows", "offset", "docs": [{"doc_id", "state", "id", "source", "target",
        "info", "error_count", ...}]}``.
        https://docs.couchdb.org/en/stable/api/server/common.html#scheduler-docs
        """
        result: _srv.SchedulerDocs = self._run(_srv.scheduler_docs(self._ctx, replicator_db, limit, skip))
        return result

    # -- database events -------------------------------------------------------------
    @overload
    def db_updates(self, *, feed: Literal["continuous"], **options: Any) -> ChangesFeed: ...
    @overload
    def db_updates(self, *, feed: Literal["normal", "longpoll"] = "normal", **options: Any) -> ChangesResult: ...
    @overload
    def db_updates(self, *, feed: str, **options: Any) -> ChangesResult | ChangesFeed: ...
    def db_updates(self, **options: Any) -> ChangesResult | ChangesFeed:
        """The server's feed of database events (``/_db_updates``, admins only; CouchDB
        keeps it in the ``_global_changes`` database, which must exist).

        Each event is ``{"db_name": str, "type": "created" | "updated" | "deleted",
        "seq": str}``. ``options``: ``feed`` (``"normal"``, ``"longpoll"``,
        ``"continuous"``), ``since`` (a ``seq``/``last_seq`` from before, ``0`` or
        ``"now"``), ``limit``, ``descending``, ``timeout`` and ``heartbeat`` (ms).
        ``feed="normal"``/``"longpoll"``: a :class:`~couchcore._results.ChangesResult`
        (``for event in result``, then ``result.last_seq``). ``feed="continuous"``: a
        :class:`~couchcore._feeds.ChangesFeed` of events (``for`` / ``async for``) that
        reconnects from the last ``seq`` it delivered after a dropped connection, as
        :meth:`Database.changes`'s does (heartbeat 5 s unless given: CouchDB sends the
        answer's head only with the first event or heartbeat, and on a sync backend
        :meth:`ChangesFeed.stop` takes effect once it came). Other options raise :class:`InvalidOption`
        before anything is sent; CouchDB without ``_global_changes`` raises
        :class:`NotFound` (a server without the endpoint another :class:`HTTPError`).
        https://docs.couchdb.org/en/stable/api/server/common.html#db-updates
        """
        if options.get("feed") == "continuous":
            feed_class = self._database_class._feed_class
            if feed_class is None:
                from ._feeds import ChangesFeed
                feed_class = ChangesFeed
            if options.get("timeout") is None:
                # CouchDB sends this answer's head with the first event or heartbeat only: until
                # then a sync stop() cannot end the request, so keep that wait short
                options = {"heartbeat": 5000, **{k: v for k, v in options.items() if v is not None}}
            return feed_class(self, options, endpoint=_changes.DB_UPDATES)
        return self._run(_changes.db_updates(self._ctx, **options))


class DatabaseAPI:
    """A CouchDB database. See :class:`couchcore.Database` for the sync flavour."""

    is_async = False
    _server_class: type[ServerAPI]
    #: the continuous feed's class (None: couchcore._feeds.ChangesFeed, imported when first needed)
    _feed_class: ClassVar[type[ChangesFeed] | None] = None
    name: str
    _server: ServerAPI

    def __init__(self, url_or_name: str, auth: "tuple[str, str] | Auth | None" = None, server: ServerAPI | None = None,
                 **server_options: Any) -> None:
        if "://" in url_or_name:
            server_url, name = split_database_url(url_or_name)
            if server is None:  # not 'server or': bool(server) is len(server), GET /_all_dbs
                server = self._server_class(server_url, auth=auth, **server_options)
        else:
            name = url_or_name
            if server is None:
                server = self._server_class(auth=auth, **server_options)
        self._bind(server, validate_db_name(name))

    @classmethod
    def _bound(cls, server: ServerAPI, name: str) -> "DatabaseAPI":
        self = cls.__new__(cls)
        self._bind(server, name)
        return self

    def _bind(self, server: ServerAPI, name: str) -> None:
        self._server = server
        self.name = name
        self._ctx: _srv.ServerContext = server._ctx

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickling and ``copy.deepcopy``: the database ``name`` of a copy of its Server
        (see :meth:`ServerAPI.__reduce__`: rebuilt from its configuration, with connections
        of its own); ``copy.copy`` shares the Server."""
        return _rebuild_database, (type(self), self._server, self.name)

    def __copy__(self) -> "DatabaseAPI":
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    @property
    def server(self) -> ServerAPI:
        """The :class:`Server` this database belongs to (no request is sent)."""
        return self._server

    @property
    def url(self) -> str:
        """The database URL (without credentials)."""
        return self._server.url + db_path(self.name)

    @overload
    def _run(self, op: Operation[T]) -> T: ...
    @overload
    def _run(self, op: Operation[T], post: Callable[[T], R]) -> R: ...
    def _run(self, op: Operation[Any], post: Callable[[Any], Any] | None = None) -> Any:
        return self._server._run(op) if post is None else self._server._run(op, post)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DatabaseAPI) and (self.url, self.name) == (other.url, other.name)

    def __hash__(self) -> int:
        return hash(self.url)

    # -- database ------------------------------------------------------------------
    @overload
    def info(self, ddoc: None = None) -> DatabaseInfo: ...
    @overload
    def info(self, ddoc: str) -> DesignInfo: ...
    def info(self, ddoc: str | None = None) -> DatabaseInfo | DesignInfo:
        """Database info (``GET /{db}``: ``{"db_name", "doc_count", "update_seq", "sizes", ...}``),
        or the info of design document ``ddoc`` (``{"name", "view_index": {...}}``).
        https://docs.couchdb.org/en/stable/api/database/common.html#get--db"""
        if ddoc is None:
            return self._run(_db.info(self._ctx, self.name))
        return self._run(_db.info(self._ctx, self.name, ddoc))

    def exists(self) -> bool:
        """Whether the database exists (``HEAD /{db}``).
        https://docs.couchdb.org/en/stable/api/database/common.html#head--db
        """
        return self._run(_db.exists(self._ctx, self.name))

    def compact(self, ddoc: str | None = None) -> bool:
        """Start compaction of the database, or of design document ``ddoc``'s view indexes
        (``POST /{db}/_compact[/{ddoc}]``); ``True`` once started (it runs in the background).
        ``ddoc`` is a design name with or without ``_design/``; an empty one raises
        :class:`InvalidInput` (CouchDB would compact the whole database instead).
        https://docs.couchdb.org/en/stable/api/database/compact.html
        """
        return self._run(_db.compact(self._ctx, self.name, ddoc))

    def cleanup(self) -> bool:
        """Remove index files no design document uses any more (``POST /{db}/_view_cleanup``);
        ``True`` once started.
        https://docs.couchdb.org/en/stable/api/database/compact.html#db-view-cleanup
        """
        return self._run(_db.cleanup(self._ctx, self.name))

    def commit(self) -> CommitResult:
        """Ask the server to commit recent changes to disk (``POST /{db}/_ensure_full_commit``);
        returns ``{"ok", "instance_start_time"}``.
        https://docs.couchdb.org/en/stable/api/database/compact.html#db-ensure-full-commit
        """
        return self._run(_db.commit(self._ctx, self.name))

    def purge(self, docs: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> PurgeResult:
        """Purge revisions for good (``POST /{db}/_purge``): ``docs`` is a list of documents
        with ``_id`` and ``_rev``, or a ``{id: [revs]}`` mapping; returns ``{"purge_seq",
        "purged": {id: [revs]}}``. Purged revisions are not replicated away: think thrice.
        CouchDB 3 takes at most ``[purge] max_document_id_number`` (default 100) documents
        and ``max_revisions_number`` (1000) revisions a request: more raise
        :class:`BadRequest` saying so (nothing is purged); send smaller batches.
        https://docs.couchdb.org/en/stable/api/database/misc.html#db-purge
        """
        return self._run(_db.purge(self._ctx, self.name, docs))

    @overload
    def security(self, value: None = None) -> Document: ...
    @overload
    def security(self, value: Mapping[str, Any]) -> OkResult: ...
    def security(self, value: Mapping[str, Any] | None = None) -> Document | OkResult:
        """Get the security object (``{"admins": {"names", "roles"}, "members": {...}}``),
        or set it to ``value`` (returns ``{"ok": True}``). A ``value`` CouchDB refuses
        (``admins``/``members`` not objects, ``names``/``roles`` not lists of strings) raises
        :class:`InvalidInput` before sending; setting it needs a server or database admin
        (CouchDB 3 answers anyone else ``500 no_majority``: a :class:`ServerError` saying so).
        https://docs.couchdb.org/en/stable/api/database/security.html"""
        return self._run(_db.security(self._ctx, self.name, value))

    @overload
    def revs_limit(self, limit: None = None) -> int: ...
    @overload
    def revs_limit(self, limit: int) -> None: ...
    def revs_limit(self, limit: int | None = None) -> int | None:
        """The revision limit (an ``int``: how many old revisions' ids are remembered),
        or with ``limit`` (a positive ``int``) set it and return ``None``. A bad
        ``limit`` raises :class:`InvalidInput` before anything is sent; setting it as a
        user who is no admin of the database raises :class:`Forbidden` (CouchDB 3 answers
        ``500 badmatch {forbidden, ...}``).
        https://docs.couchdb.org/en/stable/api/database/misc.html#db-revs-limit
        """
        return self._run(_db.revs_limit(self._ctx, self.name, limit))

    # -- documents -----------------------------------------------------------------
    def save(self, doc_or_docs: Mapping[str, Any] | Iterable[Mapping[str, Any]],
             merge: Callable[[Document, Document | None], Mapping[str, Any] | None] | None = None,
             force: bool = False, retries: int = _docs.DEFAULT_RETRIES, **options: Any) -> ConflictResolution:
        """Create or update one document or a list of them; returns a ConflictResolution.

        Documents are updated in place (``_id``, ``_rev``); those without ``_id`` (or
        with ``"_id": None``) get server uuids. A document that is not strict JSON (for a
        list: any of them) raises :class:`InvalidDocument` before anything is sent, and so
        does a single document whose ``_id`` is not a non-empty string or begins with ``_``
        other than ``_design/...`` and ``_local/...``; in a list such a document is not sent
        and is pending with ``error`` ``"illegal_docid"`` (keyed by a ``str``, as every key of
        ``.pending``: a string ``_id`` as given, any other by ``"_id:"`` and its JSON text, ``5``
        as ``"_id:5"``, ``True`` as ``"_id:true"``, never a legal id; :meth:`ConflictResolution.resolve`, ``overwrite`` and ``merge``
        leave it pending, unsent), the others are written. A single document's conflict raises :class:`Conflict` (with the
        resolution in ``.resolution``) unless ``merge`` or ``force`` resolves it; for a
        list, failures are reported per document in ``.pending`` (``{"doc", "error",
        "reason"}``), and the others are written. Where CouchDB refuses a whole request
        for one document, that document alone is pending (the list is sent again in
        halves until it stands alone, with the server's ``error`` and ``reason``): a
        document CouchDB cannot take at all (``400``: a ``_rev`` that is no revision,
        ``"bad_request"`` "Invalid rev format"; an unknown top-level member beginning with
        ``_`` or a special member of the wrong type, ``"doc_validation"``), a document over
        ``max_document_size`` (``413``: ``error`` ``"document_too_large"``), an attachment stub that names nothing
        (``412``: ``"missing_stub"``; CouchDB may have stored the other documents even so,
        and couchcore finds out which). A single document raises the matching
        :class:`HTTPError` (:class:`BadRequest`, :class:`RequestEntityTooLarge`, :class:`PreconditionFailed`).
        The cost of such a refusal: after a ``400`` couchcore first settles what it can
        tell itself, with CouchDB's error and reason (a ``_rev`` CouchDB cannot parse,
        ``None`` included, which CouchDB does not take for "no revision",
        ``"bad_request"`` "Invalid rev format"; in a partitioned database, known from one
        ``GET /{db}`` made only then, an id without a valid ``partition:`` prefix,
        ``"illegal_docid"``/``"illegal_partition"``) and sends the others once more: a list
        where only those are refused costs 2 requests and that GET. Each document refused
        for another reason costs about 2·log2(N) more requests to single out, so N
        documents that are all refused for reasons couchcore cannot tell cost 2N−1
        requests (the worst case); ``413`` refusals are singled out the same way.

        On a CouchDB cluster a create (no ``_rev``) of an id that already exists does not
        always raise :class:`Conflict`: when the body is identical to the stored one, a
        copy that has not received the first write yet accepts it (``202``), and as a
        revision id is a hash of the body it is the very same revision; couchcore finds it
        the only leaf, its own, and reports the document written (in ``resolved`` and
        ``accepted``): it cannot tell that the document was there already. It happens to
        one writer saving twice in a row, no concurrency needed. A single node always
        answers ``409``. So "create if absent" (a lock, an idempotency key, a unique name)
        must write a body that differs per writer, e.g. ``{"_id": key, "owner": token}``
        with the writer's own token: a second create of that id then raises
        :class:`Conflict` on a cluster too (a ``202`` beside another live revision is
        withdrawn). CouchDB:
        https://docs.couchdb.org/en/stable/cluster/theory.html,
        https://docs.couchdb.org/en/stable/replication/conflicts.html

        ``merge=fn`` calls ``fn(local, server)`` for each conflicting document (``local``
        a copy of the document as given, ``server`` the current :class:`Document` or
        ``None`` if deleted) and writes what it returns (``None`` skips it: the document
        stays in ``.pending``, and a single document raises :class:`Conflict` saying the
        merge skipped it). A list that holds an id several times, each refused: ``fn`` is
        called once per document of that id, in list order, each time with the result of
        the previous call as ``server``, and the result is written once (see
        :meth:`ConflictResolution.merge`); ``force`` writes the last of them, which
        supersedes the earlier ones. When the
        merged write conflicts again because another writer got in between, the
        document is re-read and ``fn`` applied again, up to ``retries`` (default 100)
        times, after a random back-off (full jitter from 10 ms doubling, at most 1 s);
        ``force=True`` re-reads the current revision the same way. When the retries
        are used up, :class:`Conflict` says how many attempts were made.
        ``_local/`` documents have no conflict detection in CouchDB: a write with any
        ``_rev`` (stale, made up) or none replaces the stored one, so no :class:`Conflict`
        ever comes for them, a stale write overwrites a newer one, and ``merge`` with a
        ``_local/`` id among the documents raises :class:`InvalidOption` before anything
        is sent (https://docs.couchdb.org/en/stable/api/local.html).
        Options: ``new_edits``, ``all_or_nothing`` (``_bulk_docs`` body fields; CouchDB 2+
        refuses ``all_or_nothing``: 417 ``not_implemented``), and on a
        cluster ``w`` (write quorum, a positive int: the answer waits for ``w`` copies;
        ``w`` = the database's ``n`` makes the write visible to the next view, ``_changes``
        or ``_all_docs`` read, which read one copy,
        https://docs.couchdb.org/en/stable/cluster/sharding.html#quorum).
        When the answer is lost or times out, :class:`~couchcore.errors.OutcomeUnknown`
        (or :class:`~couchcore.errors.WriteTimeout`) is raised: the documents may or may
        not be written. They hold their ids already (given before sending), so saving the
        same list again writes nothing twice, but each document the first request wrote is
        then pending with ``error`` ``"conflict"``: one whose stored document equals the one
        sent (apart from ``_rev``) was written by that first request (the "Errors and
        retries" guide shows the code).
        CouchDB: https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-docs
        """
        single = isinstance(doc_or_docs, Mapping)
        docs: list[Any]
        if single:
            docs = [doc_or_docs]
        elif isinstance(doc_or_docs, (str, bytes)) or not isinstance(doc_or_docs, Iterable):
            raise InvalidInput("save takes a document (dict) or a list of documents")
        else:
            docs = list(doc_or_docs)
        if merge is not None:
            local = next((d["_id"] for d in docs if isinstance(d, Mapping) and isinstance(d.get("_id"), str)
                          and d["_id"].startswith("_local/")), None)
            if local is not None:  # CouchDB never answers 409 for it: merge would never be called
                raise InvalidOption(f"merge= cannot protect {local!r}: CouchDB does no conflict detection on "
                                    "_local documents (any _rev, or none, overwrites), so no conflict ever comes "
                                    "to merge; save it without merge=")
        return self._run(_docs.save_docs(self._ctx, self.name, docs, self, single, merge, force, retries,
                                         **options))

    def update_doc(self, docid: str, fn: Callable[[Document | None], Mapping[str, Any] | None],
                   retries: int = _docs.DEFAULT_RETRIES) -> Document | None:
        """Read-modify-write document ``docid`` without losing concurrent updates.

        ``fn(doc)`` gets the current :class:`Document` (``None`` if the document is
        missing or deleted, so ``fn`` can create it) and returns the document to write
        (``_id`` and ``_rev`` are filled in) or ``None`` to write nothing. If another
        writer changed the document in between (409), it is read again and ``fn`` called
        again, up to ``retries`` (default 100) times, after a random back-off (full
        jitter from 10 ms doubling, at most 1 s); then :class:`Conflict` is raised,
        saying how many attempts were made. ``fn`` is plain code run between requests
        (also on the async facade) and may be called several times. Returns the saved
        :class:`Document` with its new ``_rev``, or ``None`` when ``fn`` skipped.
        Bad input (``fn`` not callable, empty id, negative ``retries``) raises
        :class:`InvalidInput` before anything is sent, and so does a ``_local/`` id:
        CouchDB does no conflict detection on local documents (any ``_rev``, or none, is
        accepted; never ``409``), so a read-modify-write there cannot be made safe
        (https://docs.couchdb.org/en/stable/api/local.html); ``fn`` returning a non-dict
        raises :class:`InvalidDocument`. On a CouchDB cluster two writers through different
        nodes can each have a write accepted by some copies (``202``); couchcore withdraws
        the one that lost, but when both sides have been built on already, both branches
        live on as a conflict that hides the losing branch's updates (merge its
        ``_conflicts``). Identical edits of one revision make one revision (its id is a
        hash of the parent and the body) that CouchDB can accept from both writers: no
        conflict is left and one update is lost, through any node (a counter's ``n + 1``
        from two writers). Writers on a cluster that must not lose an update make their
        edits differ, e.g. by recording a token of their own in the document; then the
        loser is detected and ``fn`` re-applied.
        CouchDB: https://docs.couchdb.org/en/stable/api/document/common.html#put--db-docid,
        https://docs.couchdb.org/en/stable/replication/conflicts.html
        """
        return self._run(_docs.update_doc(self._ctx, self.name, docid, fn, retries))

    def _resolve(self, resolution: ConflictResolution, how: str,
                 fn: Callable[..., Any] | None = None) -> ConflictResolution:
        return self._run(_docs.resolve(self._ctx, self.name, resolution, how, fn))

    @overload
    def get(self, id_or_ids: str, *, open_revs: str | Sequence[str], **options: Any) -> _OpenRevs: ...
    @overload
    def get(self, id_or_ids: str, **options: Any) -> Document: ...
    @overload
    def get(self, id_or_ids: Iterable[str | tuple[str, str]], **options: Any) -> list[Document | None]: ...
    def get(self, id_or_ids: str | Iterable[str | tuple[str, str]], *default: Any,
            **options: Any) -> Document | _OpenRevs | list[Document | None]:
        """A :class:`Document` (``NotFound`` if missing), or for a list a list of
        Documents and ``None`` for missing ones, in order, in one request. With
        ``open_revs`` (``"all"`` or a list of revs) a list of ``{"ok": Document}`` /
        ``{"missing": rev}``; an empty list of revs gives ``[]`` without a request.

        The list may hold ids and ``(id, rev)`` pairs (those revisions; a missing revision
        is ``None``; with ``latest=True`` the latest leaf descending from the revision, as
        ``get(id, rev=rev, latest=True)`` gives). Where the server has
        ``POST /{db}/_bulk_get`` (probed with the first call, remembered per Server) it
        is used, otherwise ``_all_docs?keys`` (and one ``open_revs`` GET per document for
        revisions); ``_local/`` ids, which neither serves, are read with one GET each.
        Options of a list: ``revs``, ``attachments``, ``latest``, ``conflicts``, ...
        (``_bulk_get``'s), or view options (they read through ``_all_docs``; those that
        select or reorder rows, ``skip``, ``limit``, ``descending``, ``startkey``, ...,
        raise :class:`InvalidOption`); ``revs_info``, ``local_seq`` and ``meta``, which
        CouchDB's ``_bulk_get`` leaves out of its answer, read the ids with one GET each
        (:meth:`get_many` runs those concurrently). A non-str id or rev, an id reserved
        for an endpoint (``"_all_docs"``), or a bare ``(id, rev)`` tuple (which would read
        two ids; put the pair in a list) raises :class:`InvalidInput` before anything is
        sent. There is no ``default``: couchdb-python's ``get(id, default)`` raises a
        ``TypeError`` saying what to use (catch :class:`NotFound`, or ``get([id])[0]``,
        ``None`` when missing).
        https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-get
        """
        if default:  # not in the signatures (the overloads above): a message for migrators
            raise TypeError(f"{type(self).__name__}.get() takes one id or a list of ids and has no default "
                            "(couchdb-python's get(id, default)): catch couchcore.NotFound, or use "
                            "get([id])[0], which is None for a missing id")
        if isinstance(id_or_ids, str):
            return self._run(_docs.get_doc(self._ctx, self.name, id_or_ids, **options))
        if (isinstance(id_or_ids, tuple) and len(id_or_ids) == 2 and isinstance(id_or_ids[0], str)
                and isinstance(id_or_ids[1], str) and _REV_SHAPE.fullmatch(id_or_ids[1])):
            # get(("a", "2-abc")) is the list of ids ["a", "2-abc"]: a's CURRENT revision and
            # None, silently, where get([("a", "2-abc")]) (a pair in a list) was meant
            docid, rev = id_or_ids[0], id_or_ids[1]
            raise InvalidInput(f"get({id_or_ids!r}) would read two documents, {docid!r} and {rev!r}: for "
                               f"that revision use get({docid!r}, rev={rev!r}) or get([({docid!r}, {rev!r})]) "
                               "(a list of ids and (id, rev) pairs)")
        if isinstance(id_or_ids, Iterable) and not isinstance(id_or_ids, (bytes, Mapping)):
            return self._run(_bulk_get.get_many(self._ctx, self.name, id_or_ids, **options))
        raise InvalidInput(f"get takes an id or a list of ids, not {type(id_or_ids).__name__}")

    @overload
    def get_many(self, ids: Iterable[str], concurrency: int = 16, *, open_revs: str | Sequence[str],
                 **options: Any) -> list[_OpenRevs | None]: ...
    @overload
    def get_many(self, ids: Iterable[str], concurrency: int = 16, **options: Any) -> list[Document | None]: ...
    def get_many(self, ids: Iterable[str], concurrency: int = 16,
                 **options: Any) -> list[_OpenRevs | None] | list[Document | None]:
        """Fetch documents with one GET each, ``concurrency`` in flight at once.

        Returns Documents (``None`` for missing ids) in order. Use it when each document
        needs per-document options (``attachments``, ``open_revs``, ...); plain
        ``get([ids])`` needs only one request. ``ids`` is a list, tuple or other iterable of
        non-empty str ids; a ``str`` (``get_many("abc")`` would read ``"a"``, ``"b"`` and
        ``"c"``), ``bytes`` or a mapping (its keys) raises :class:`InvalidInput` before
        anything is sent, as does a ``concurrency`` that is no positive int.
        https://docs.couchdb.org/en/stable/api/document/common.html#get--db-docid
        """
        if isinstance(ids, (str, bytes, bytearray, memoryview, Mapping)) or not isinstance(ids, Iterable):
            raise InvalidInput(_not_a_list_of_ids("get_many", ids))
        ids = list(ids)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidInput(f"concurrency must be a positive int, got {concurrency!r}")
        _docs.check_doc_options(options)  # fail before anything is sent
        for docid in ids:
            if not isinstance(docid, str) or not docid:
                raise InvalidInput(f"document ids must be non-empty str, got {docid!r}")
        ops = [_docs.get_doc_or_none(self._ctx, self.name, docid, **options) for docid in ids]
        return self._server._run_many(ops, concurrency, _raise_first)

    def _item(self, docid: str) -> Document:
        """``db[docid]``: like :meth:`get`, but a missing or deleted document raises
        :class:`NotFoundKeyError` (a ``NotFound`` that is also a ``KeyError``)."""
        if not isinstance(docid, str):
            raise InvalidInput(f"document ids are str, not {type(docid).__name__}")
        return self._run(_key_error(_docs.get_doc(self._ctx, self.name, docid), docs_only=True),
                         _one_document)

    def _del_item(self, docid: str) -> Document:
        """``del db[docid]``: delete the current revision; ``NotFoundKeyError`` if missing."""
        return self._run(_key_error(_docs.delete_id(self._ctx, self.name, docid), docs_only=True))

    def contains(self, docid: str) -> bool:
        """Whether document ``docid`` exists and is not deleted (``HEAD /{db}/{docid}``).
        https://docs.couchdb.org/en/stable/api/document/common.html#head--db-docid
        """
        return self._run(_docs.doc_exists(self._ctx, self.name, docid))

    def delete(self, doc: Mapping[str, Any]) -> Document:
        """Delete a document (``DELETE /{db}/{docid}?rev=``); it needs ``_id`` and ``_rev``
        (:class:`MissingRevision` otherwise, before anything is sent); returns ``{"ok", "id",
        "rev"}``; :class:`Conflict` when ``_rev`` is not the current revision.
        It deletes that one leaf: a document with conflicts (``get(id, conflicts=True)``
        lists them in ``_conflicts``) then has another leaf as its current revision and is
        still there; delete each conflicting revision too (or resolve them) to remove it.
        https://docs.couchdb.org/en/stable/api/document/common.html#delete--db-docid ,
        https://docs.couchdb.org/en/stable/replication/conflicts.html
        """
        return self._run(_docs.delete_doc(self._ctx, self.name, doc))

    def copy(self, source: str | Mapping[str, Any], dest: str | Mapping[str, Any]) -> str:
        """Copy ``source`` to ``dest`` (ids or docs; a dest with ``_rev`` is overwritten,
        a source with ``_rev`` copies that revision) with ``COPY /{db}/{docid}``.
        Returns the new revision (a dict ``dest`` gets it as ``_rev``). Raises
        :class:`InvalidInput` for a missing id or a ``_rev`` that is not a revision
        string, :class:`Conflict` when ``dest`` exists and no (or a stale) ``_rev`` was given.
        https://docs.couchdb.org/en/stable/api/document/common.html#copy--db-docid
        """
        return self._run(_docs.copy_doc(self._ctx, self.name, source, dest))

    def revisions(self, docid: str) -> list[str]:
        """Revision ids of a document, newest first (``GET /{db}/{docid}?revs=true``);
        :class:`NotFound` if it is missing.
        https://docs.couchdb.org/en/stable/api/document/common.html#getting-a-list-of-revisions
        """
        return self._run(_docs.revisions(self._ctx, self.name, docid))

    # -- attachments ---------------------------------------------------------------
    def put_attachment(self, doc: str | Mapping[str, Any], content: bytes | bytearray | memoryview | str | IO[bytes],
                       filename: str | None = None,
                       content_type: str | None = None) -> DocResult:
        """Create or replace an attachment (``content``: bytes, str or a binary file object,
        streamed); updates ``doc["_rev"]``; returns ``{"ok", "id", "rev"}``. A str is sent
        as UTF-8, and so is what a text-mode file reads (its encoding decoded and its line
        ends translated by Python, as ``open()`` was told): open a file with ``"rb"`` to
        store its bytes as they are.
        ``filename`` defaults to a named file's base name. ``content_type`` defaults to
        the type guessed from ``filename``, for str with ``;charset=utf-8`` when it is a
        text type (``"<p>"`` as ``index.html``: ``text/html;charset=utf-8``; Python's own
        table, the same on every host) and ``text/plain;charset=utf-8`` when the name gives
        none or one that is not text; for bytes and files the
        guessed type (a compressed ``.gz``, ``.bz2`` or ``.xz`` file is ``application/gzip``,
        ``application/x-bzip2``, ``application/x-xz``), else ``application/octet-stream``;
        a given ``content_type`` that is no ASCII media type (control characters, a
        line break) raises :class:`InvalidInput` before sending. A bare id (or a dict
        without ``_rev``) creates the document; for an existing one it raises
        :class:`Conflict` saying the current ``_rev`` is needed.
        An :class:`AttachmentStream` (from :meth:`open_attachment`, to copy an attachment;
        ``filename`` is then required; ``content_type`` defaults to the stream's) is read
        first, into memory up to 8 MiB, into a
        temporary file beyond (closed once sent), then sent with its length: its connection
        may be the one the upload needs (libcurl's engine cannot read one transfer from
        inside another's upload). A stream already read (or begun, or closed) raises
        :class:`~couchcore.errors.StreamConsumed` before anything is sent: open the
        attachment again to retry.
        ``PUT /{db}/{docid}/{attname}?rev=``:
        https://docs.couchdb.org/en/stable/api/document/attachments.html#put--db-docid-attname
        """
        from ._results import AttachmentStream

        if isinstance(content, AttachmentStream):
            if filename is None:
                raise InvalidInput("filename is required when content is an AttachmentStream")
            _att.check_put_attachment(self.name, doc, filename, content_type)  # before the stream is read
            content_type = content_type or content.content_type
            spool = _spooled(content)
            try:
                result = self._run(_att.put_attachment(self._ctx, self.name, doc, spool, filename, content_type))
            except BaseException:
                if not isinstance(spool, bytes):
                    spool.close()
                raise
            if isinstance(spool, bytes):
                return result
            when_done = getattr(result, "add_done_callback", None)
            if when_done is not None:  # an async facade's task: close the file when it is done
                when_done(lambda _: spool.close())
            elif not hasattr(result, "__await__"):
                spool.close()
            return result
        return self._run(_att.put_attachment(self._ctx, self.name, doc, content, filename, content_type))

    def get_attachment(self, id_or_doc: str | Mapping[str, Any], filename: str, rev: str | None = None) -> bytes:
        """The attachment's content as bytes, as it is in revision ``rev``.

        Without ``rev``, a document's ``_rev`` is the revision read (an attachment a
        later revision replaced or deleted is still readable until compaction); a bare
        id reads the current revision. ``NotFound`` if the document, the revision or the
        attachment is missing. ``GET /{db}/{docid}/{attname}?rev=``:
        https://docs.couchdb.org/en/stable/api/document/attachments.html#get--db-docid-attname
        """
        return self._run(_att.get_attachment(self._ctx, self.name, id_or_doc, filename, rev))

    def open_attachment(self, id_or_doc: str | Mapping[str, Any], filename: str,
                        rev: str | None = None) -> AttachmentStream:
        """The attachment as a stream of byte chunks (an :class:`AttachmentStream`: iterate
        it, or ``read()`` it whole; ``.length`` is its ``Content-Length`` in bytes). ``rev`` and
        a document's ``_rev`` select the revision as for :meth:`get_attachment`;
        :class:`NotFound` if the document, the revision or the attachment is missing.

        The stream is read once, as the chunks arrive: a second iteration or ``read()``
        raises :class:`~couchcore.errors.StreamConsumed`, also after one that stopped early
        (``break``, an exception, ``close()``, the end of a ``with`` block), instead of giving
        fewer bytes than the attachment holds; open it again to read it again. (The
        ``callback=`` style of ``couchcore.tornado`` hands over the attachment read whole,
        which can be read any number of times.) For the bytes in one call, use
        :meth:`get_attachment`.
        https://docs.couchdb.org/en/stable/api/document/attachments.html#get--db-docid-attname
        """
        from ._results import AttachmentStream
        return self._run(_att.open_attachment(self._ctx, self.name, id_or_doc, filename, rev), AttachmentStream)

    def delete_attachment(self, doc: str | Mapping[str, Any], filename: str) -> DocResult:
        """Delete an attachment; updates ``doc["_rev"]``; returns ``{"ok", "id", "rev"}``.
        ``DELETE /{db}/{docid}/{attname}?rev=``:
        https://docs.couchdb.org/en/stable/api/document/attachments.html#delete--db-docid-attname
        """
        return self._run(_att.delete_attachment(self._ctx, self.name, doc, filename))

    # -- views and queries -------------------------------------------------------------
    def view(self, name: str, **options: Any) -> ViewResult:
        """Query a view (``"ddoc/view"``, ``"_design/ddoc/_view/view"`` or ``"_all_docs"``).

        Returns a :class:`ViewResult` whose rows are parsed as they stream in.
        JSON-valued options (``key``, ``keys`` items, ``startkey``/``start_key``,
        ``endkey``/``end_key``) are sent as JSON, ``None`` as ``null`` (``key=None``
        selects the rows emitted with a ``null`` key); leave an option out for "not
        given". The other options (``limit``, ``skip``, ``descending``, ...) have no
        ``null``: ``None`` leaves them out. ``update`` is ``True``, ``False`` or
        ``"lazy"`` (also ``"true"``/``"false"``). Unknown options or wrong types raise
        :class:`InvalidOption` before anything is sent. A built-in reducer that cannot
        reduce the values (``_sum`` of strings) is not an HTTP error: CouchDB answers 200
        with the row's ``value`` an object such as ``{"error": "builtin_reduce_error",
        "reason": ...}``, which the row carries as it came. A JavaScript reduce whose
        output does not shrink gets an error row from CouchDB in place of its result
        (``reduce_overflow_error``, ``[query_server_config] reduce_limit``,
        https://docs.couchdb.org/en/stable/config/query-servers.html#query_server_config/reduce_limit):
        reading the result then raises :class:`ServerError` (``error`` and ``reason`` as
        CouchDB sent them) after the rows before it; a ``keys=`` key that matched nothing
        is a row with ``error="not_found"``. A query whose URL would be longer than about
        4 KB (a long ``key``/``startkey``/``endkey``; CouchDB refuses request lines over about
        8 KB) goes as ``POST`` with those options in the JSON body, which CouchDB reads as
        the query string (https://docs.couchdb.org/en/stable/api/ddoc/views.html#post--db-_design-ddoc-_view-view).
        ``keys`` that repeat a key in a
        reduce query (``group=True``) on a database of more than one shard sometimes get
        wrong values from CouchDB 3.5 itself for that key's rows (seen on ``q=2``: 4 of 150
        identical requests), so give each key once.
        https://docs.couchdb.org/en/stable/api/ddoc/views.html
        """
        return self._run(_views.view(self._ctx, self.name, name, **options))

    def build_view(self, name: str, timeout: float | None = None,
                   progress: Callable[[dict[str, Any]], Any] | None = None,
                   poll: float = 2.0) -> BuildViewResult:
        """Build the index of view ``name`` (``"ddoc/view"``) and wait until it is built.

        Use it after saving a design document, before the first real query on a large
        database (which could otherwise fail with ``500 timeout`` while the index
        builds). Queries the view with ``limit=0`` until one query comes back whole;
        CouchDB's ``500 timeout``, a ``timeout`` in the body and a client read timeout
        count as "still building" (the server goes on). A view of a partitioned design
        document (the default in a partitioned database), which CouchDB answers only
        through a partition and indexes shard by shard, is queried through one partition
        of each shard range (found with ``GET /{db}/_shards`` and ``GET
        /{db}/_shards/{docid}``), so the whole index is built. ``progress(status)``, if
        given, is called every ``poll`` seconds (or when a query ends unfinished) with
        ``{"view", "elapsed" (s), "attempts", "percent" (0-100 or None), "changes_done",
        "total_changes", "tasks", "updater_running"}`` from ``/_active_tasks`` (needs
        admin rights) or the design document's ``_info``. ``timeout`` (s; ``None``:
        wait as long as it takes) bounds the whole wait: on expiry
        :class:`IndexBuildTimeout` (a :class:`couchcore.TimeoutError`) is raised, its
        ``.status`` the last progress seen. Returns ``{"view", "elapsed", "attempts"}``.
        Bad arguments raise :class:`InvalidInput` before anything is sent.
        CouchDB: https://docs.couchdb.org/en/stable/api/ddoc/views.html ,
        https://docs.couchdb.org/en/stable/api/server/common.html#active-tasks ,
        https://docs.couchdb.org/en/stable/partitioned-dbs/index.html ,
        https://docs.couchdb.org/en/stable/api/database/shard.html
        """
        return self._run(_indexes.build_view(self._ctx, self.name, name, timeout, progress, poll))

    def query(self, map_src: str, reduce_src: str | None = None, language: str = "javascript",
              **options: Any) -> ViewResult:
        """An ad-hoc (temporary) view: a materialised :class:`ViewResult`; options as
        for :meth:`view` (``key=None`` is ``key=null``).

        Where the server has ``POST /{db}/_temp_view`` (CouchDB 1.x) that is used. CouchDB
        2+ has none (410 Gone): there each call writes a throw-away design document
        ``_design/couchcore-tmp-<uuid>`` (database admin rights needed), reads the rows,
        deletes it, then asks ``POST /{db}/_view_cleanup`` to remove the index files no
        design document uses (the one just built among them; that cleanup covers every
        deleted or changed design document of the database, and its failure is not
        reported). The deleted design document stays in the database for good: a tombstone
        counted in ``doc_del_count``, seen by ``_changes`` (``changes()``, ``follow()``,
        replication, ``couchcore dump``) as a design document written and deleted. Only
        ``_purge`` would remove it, which CouchDB 3 allows server admins alone, and which
        cannot reach copies already replicated elsewhere, so couchcore leaves it. Each call
        also indexes the whole database anew: for a query made more than once, save a real
        design document and use :meth:`view`.
        https://docs.couchdb.org/en/stable/api/database/compact.html#db-view-cleanup ,
        https://docs.couchdb.org/en/stable/api/database/misc.html#db-purge
        """
        return self._run(_views.temp_view(self._ctx, self.name, map_src, reduce_src, language, **options))

    def list(self, name: str, /, view: str, *, headers: Mapping[str, str] | None = None, **options: Any) -> Result:
        """Format view ``view`` (or ``"other_ddoc/view"``, or ``"_design/ddoc/_view/view"``,
        the form for names holding slashes, of this or another design document) with list
        function ``name`` (``"ddoc/list"`` or ``"_design/ddoc/_list/list"``); returns a
        :class:`Result` (raw body, text, content type, and the decoded JSON only when the
        output is JSON).

        View options are encoded as for :meth:`view` (``key=None`` sends ``key=null``);
        other options become the function's ``req.query`` (any name but ``view`` and
        ``headers``, and ``callback`` on the async facades; ``name`` is positional). ``headers`` are sent with the
        request (``Accept`` chooses among the function's ``provides()``; default
        ``*/*``), replacing couchcore's own whatever their case; a malformed header
        (a name that is no token, a value with control characters or beyond Latin-1),
        ``Content-Type`` or a framing header (``Content-Length``, ``Transfer-Encoding``,
        ``Connection``, ...) raises :class:`InvalidInput` before sending. Any status
        below 400 is a Result; 4xx/5xx raise. A list function that throws after it began
        sending is not an error status: CouchDB has sent ``200`` and its headers already,
        and ends the body with its error (``{"code":500,"error":...,"reason":...}``), which
        the Result's body then holds.
        https://docs.couchdb.org/en/stable/api/ddoc/render.html#db-design-design-doc-list-list-name-view-name
        """
        return self._run(_views.list_fn(self._ctx, self.name, name, view, headers, options))

    def show(self, name: str, /, id: str | None = None, *, headers: Mapping[str, str] | None = None,
             **options: Any) -> Result:
        """Call show function ``name`` (``"ddoc/show"``) for document ``id`` (or none);
        returns a :class:`Result`. ``options`` become ``req.query`` (any name but ``id``
        and ``headers``, and ``callback`` on the async facades; ``name`` is positional); ``headers`` as for :meth:`list`. Any status below 400 is a Result; 4xx/5xx raise.
        https://docs.couchdb.org/en/stable/api/ddoc/render.html#db-design-design-doc-show-show-name
        """
        return self._run(_views.show_fn(self._ctx, self.name, name, id, headers, options))

    def update(self, name: str, /, id: str | None = None, body: Any = None, *, form: Any = None,
               content_type: str | None = None, headers: Mapping[str, str] | None = None,
               **options: Any) -> Result:
        """Call update handler ``name`` (``"ddoc/update"``): ``PUT`` for document ``id``,
        ``POST`` without one. Returns a :class:`Result` for any status below 400 (a
        handler answering ``302`` with a ``Location`` has applied the update; redirects
        are never followed); 4xx/5xx raise.

        ``body``: ``str``/``bytes`` are sent as they are, with ``content_type`` if given
        and no ``Content-Type`` otherwise; other values are JSON (``application/json``,
        or form-encoded when ``content_type`` is ``application/x-www-form-urlencoded``).
        ``form``: a dict or ``(name, value)`` pairs of str, sent form-encoded (the
        handler's ``req.form``). ``headers`` are added (e.g. ``Accept``; checked as for
        :meth:`list`, the body's type is ``content_type=``); ``options``
        become ``req.query`` (any name but the parameters above, and ``callback`` on the
        async facades; ``name`` is positional). Bad arguments raise :class:`InvalidInput` before sending.
        https://docs.couchdb.org/en/stable/api/ddoc/render.html#db-design-design-doc-update-update-name
        """
        return self._run(_views.update_fn(self._ctx, self.name, name, id, body, form, content_type, headers,
                                          options))

    def find(self, selector: Mapping[str, Any], **options: Any) -> FindResult:
        """A Mango query (``POST /{db}/_find``): ``{"docs": [Document, ...], "bookmark": ...,
        "warning"?, "execution_stats"?}``; ``options`` are ``_find``'s (``fields``, ``sort``,
        ``limit``, ``skip``, ``use_index``, ``bookmark``, ...; ``None`` leaves an option out,
        as for views: no ``_find`` field takes ``null``). Without ``limit`` CouchDB
        returns at most 25 documents (its default), not every match: :meth:`iterfind`
        reads them all, page by page. ``selector`` is the selector only: couchdb-python's
        whole query (``{"selector": {...}, "limit": ...}``) raises :class:`InvalidInput`
        before anything is sent (CouchDB would match no document); to query a document
        field that is really named ``selector`` (alone or beside fields named like
        ``_find`` options), wrap it: ``{"$and": [{"selector": {...}}, {"limit": 5}]}``.
        https://docs.couchdb.org/en/stable/api/database/find.html
        """
        return self._run(_db.find(self._ctx, self.name, selector, **options))

    def create_index(self, fields: Sequence[Any], name: str | None = None, ddoc: str | None = None,
                     **options: Any) -> IndexCreated:
        """Create a Mango index on ``fields``: ``{"result": "created" | "exists", "id", "name"}``.
        ``options``: ``type`` (``"json"``), ``partitioned``, and the index object's
        ``partial_filter_selector`` (a partial index; sent inside ``"index"``, as are a
        text index's ``default_analyzer``, ``default_field``, ``selector``,
        ``index_array_lengths``).
        https://docs.couchdb.org/en/stable/api/database/find.html#db-index"""
        return self._run(_db.create_index(self._ctx, self.name, fields, name, ddoc, **options))

    # -- changes ---------------------------------------------------------------------
    @overload
    def changes(self, callback: Callable[[Any, _Changes], Any], latency: float = 0.0,
                **options: Any) -> ChangesFeed: ...
    @overload
    def changes(self, callback: None = None, latency: float = 0.0, *, feed: Literal["continuous"],
                **options: Any) -> ChangesFeed: ...
    @overload
    def changes(self, callback: None = None, latency: float = 0.0, *,
                feed: Literal["normal", "longpoll"] = "normal", **options: Any) -> ChangesResult: ...
    @overload
    def changes(self, callback: None = None, latency: float = 0.0, *, feed: str,
                **options: Any) -> ChangesResult | ChangesFeed: ...
    def changes(self, callback: Callable[[Any, _Changes], Any] | None = None, latency: float = 0.0,
                **options: Any) -> ChangesResult | ChangesFeed:
        """The ``_changes`` feed.

        ``feed="normal"``/``"longpoll"``: a :class:`~couchcore._results.ChangesResult`
        streamed through the row parser: ``for change in result`` yields the change
        dicts without keeping them (memory flat in the number of changes), then
        ``result.last_seq`` / ``result.pending`` are known; ``result["results"]``,
        ``result["last_seq"]``, ``dict(result)`` and ``.all()`` read the whole response
        (the dict ``{"results", "last_seq", "pending"}`` of earlier versions).
        ``feed="continuous"``: a :class:`ChangesFeed` to iterate; with ``callback``,
        ``callback(seq, changes)`` is called with batches gathered over ``latency`` s.
        ``timeout`` (ms) ends a quiet ``longpoll``/``continuous`` answer, but not one with
        ``heartbeat`` (ms) too: CouchDB's heartbeat overrides the timeout, so such a feed
        runs until stopped.
        A filter function's own query parameters (its ``req.query``) go in
        ``params={name: value}`` (``filter="app/by_type", params={"type": "a"}``; a
        non-str value is sent as JSON). Unknown options raise :class:`InvalidOption`
        before anything is sent.
        CouchDB: https://docs.couchdb.org/en/stable/api/database/changes.html,
        https://docs.couchdb.org/en/stable/ddocs/ddocs.html#filter-functions
        """
        feed = options.get("feed")
        if feed == "continuous" or (callback is not None and feed is None):
            feed_class = self._feed_class
            if feed_class is None:
                from ._feeds import ChangesFeed
                feed_class = ChangesFeed
            changes_feed = feed_class(self, options)
            if callback is not None:
                return changes_feed.start(callback, latency)
            return changes_feed
        if callback is not None:
            raise InvalidInput(f"callback(seq, changes) needs feed='continuous', not feed={feed!r}")
        return self._run(_changes.changes(self._ctx, self.name, **options))

    # -- replication -----------------------------------------------------------------
    def push(self, target: "str | DatabaseAPI | Mapping[str, Any]", **options: Any) -> Document:
        """Replicate this database to ``target`` (see :meth:`Server.replicate`); returns
        the replication's answer.
        https://docs.couchdb.org/en/stable/api/server/common.html#replicate
        """
        return self._server.replicate(self, target, **options)

    def pull(self, source: "str | DatabaseAPI | Mapping[str, Any]", **options: Any) -> Document:
        """Replicate ``source`` into this database (see :meth:`Server.replicate`); returns
        the replication's answer.
        https://docs.couchdb.org/en/stable/api/server/common.html#replicate
        """
        return self._server.replicate(source, self, **options)

    # -- partitions, paging, following, Mango and revision helpers (issue 10) -------------
    def partition(self, key: str) -> Partition:
        """The partition ``key`` of this (partitioned) database: ``info()``, ``view()``,
        ``all_docs()``, ``find()``, ``explain()``, ``iterview()``, ``iterfind()`` scoped to
        ``/{db}/_partition/{key}/...``. No request is sent; a key that is empty, holds
        ``:`` or begins with ``_`` raises :class:`InvalidInput`.
        https://docs.couchdb.org/en/stable/api/partitioned-dbs.html
        """
        from ._partition import Partition
        return Partition(self, key)

    def iterview(self, name: str, page_size: int = 1000, **options: Any) -> Paged[Row]:
        """Every row of a view (``"ddoc/view"``, ``"_design/d/_view/v"``) or of
        ``"_all_docs"``, fetched ``page_size`` rows a request as the iteration goes.

        Pages by key, never ``skip``: ``page_size + 1`` rows are asked for and the extra
        one starts the next page (``startkey`` + ``startkey_docid``), so duplicate keys,
        reduce/group views (rows without id), ``descending`` and null keys page exactly;
        a short page is the last (no extra request). ``options``: view options;
        ``limit`` caps the rows in all, ``key`` is ``startkey = endkey = key``; ``skip``,
        ``keys`` and ``sorted=False`` (rows in no key order) are refused. Returns a
        :class:`~couchcore._paging.Paged` of :class:`Row` (``for``; ``async for`` on the
        async facade). ``page_size < 1``
        and bad options raise :class:`InvalidInput` before anything is sent.
        https://docs.couchdb.org/en/stable/ddocs/views/pagination.html
        """
        from ._paging import Paged
        pager = _paging.ViewPager(name, page_size, options)
        db = self.name
        return Paged(self, pager, lambda opts: _paging.view_page(
            lambda o: _views.view_request(db, name, o, stream=False), opts))

    def iterfind(self, selector: Mapping[str, Any], page_size: int = 1000, **options: Any) -> Paged[Document]:
        """Every document matching a Mango ``selector``, ``page_size`` a request, paged by
        ``bookmark`` (no extra request after a short page). ``options``: ``_find``'s
        (``fields``, ``sort``, ``use_index``, ...; ``limit`` caps the documents in all,
        ``skip``/``bookmark`` say where to begin). A server that sends no bookmark
        (PouchDB Server) is paged with ``skip`` instead. Returns a
        :class:`~couchcore._paging.Paged` of :class:`Document`.
        https://docs.couchdb.org/en/stable/api/database/find.html#pagination
        """
        from ._paging import Paged
        pager = _paging.FindPager(selector, page_size, options)
        db = self.name
        return Paged(self, pager, lambda opts: _paging.find_page(_paging.find_request(db, pager.selector, opts)))

    def follow(self, since: Seq = "now", one_off: bool = False, max_retries: int | None = None,
               **changes_options: Any) -> ChangesFollower:
        """A :class:`~couchcore._follow.ChangesFollower`: every change from ``since``
        (``"now"``, ``0`` or a sequence from an earlier ``.since``; opaque), read by a
        longpoll loop that retries transient failures with full-jitter backoff and ends
        on 400/401/403/404 (raising it). ``one_off=True`` ends once caught up
        (``pending == 0``; ``feed=normal`` requests, no longpoll wait). Iterate it with
        ``for`` (``async for`` on the async facade); ``.since``, ``.stop()``.
        ``changes_options``: as for :meth:`changes` (not ``feed``/``descending``).
        ``since="now"`` is read when the iteration starts, not by this call: to follow
        from this moment, pass ``since=db.info()["update_seq"]``. With a ``filter`` and a
        ``limit``, an answer cut by the limit is resumed from its last change's ``seq``,
        not from ``last_seq`` (which can be past changes not yet sent: apache/couchdb#1221);
        ``seq_interval`` leaves no such ``seq``, so a filter, a limit and ``seq_interval``
        together raise :class:`~couchcore.errors.InvalidOption`.
        https://docs.couchdb.org/en/stable/api/database/changes.html
        """
        from ._follow import ChangesFollower
        return ChangesFollower(self, since, one_off, max_retries, **changes_options)

    def explain(self, selector: Mapping[str, Any], **options: Any) -> dict[str, Any]:
        """How CouchDB would run ``find(selector, **options)``: ``{"dbname", "index",
        "selector", "opts", "limit", "skip", "fields", "range"?, ...}``.
        https://docs.couchdb.org/en/stable/api/database/find.html#db-explain
        """
        result: dict[str, Any] = self._run(_mango.explain(self.name, selector, options))
        return result

    def indexes(self) -> "_IndexList":
        """The Mango indexes: ``[{"ddoc", "name", "type", "def": {"fields": [...]}}, ...]``
        (the special ``_all_docs`` index first, ``ddoc`` ``None``).
        https://docs.couchdb.org/en/stable/api/database/find.html#get--db-_index
        """
        result: _IndexList = self._run(_mango.indexes(self.name))
        return result

    def delete_index(self, ddoc: str, name: str, type: str = "json") -> bool:
        """Delete Mango index ``name`` of design document ``ddoc`` (with or without
        ``_design/``); ``True`` on success, :class:`NotFound` if there is none.
        https://docs.couchdb.org/en/stable/api/database/find.html#delete--db-_index-designdoc-json-name
        """
        result: bool = self._run(_mango.delete_index(self.name, ddoc, name, type))
        return result

    def revs_diff(self, revs: Mapping[str, Sequence[str]]) -> dict[str, _revs.RevsDiffEntry]:
        """Which of ``{id: [rev, ...]}`` the database lacks: ``{id: {"missing": [...],
        "possible_ancestors": [...]}}`` (documents lacking nothing are left out).
        https://docs.couchdb.org/en/stable/api/database/misc.html#db-revs-diff
        """
        result: dict[str, _revs.RevsDiffEntry] = self._run(_revs.revs_diff(self.name, revs))
        return result

    def missing_revs(self, revs: Mapping[str, Sequence[str]]) -> "_RevLists":
        """Which of ``{id: [rev, ...]}`` the database lacks: ``{id: [rev, ...]}``.
        https://docs.couchdb.org/en/stable/api/database/misc.html#db-missing-revs
        """
        result: _RevLists = self._run(_revs.missing_revs(self.name, revs))
        return result

    def design_docs(self, **options: Any) -> ViewResult:
        """``GET /{db}/_design_docs``: the design documents as rows (view options, e.g.
        ``include_docs=True``), streamed.
        https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-design-docs
        """
        result: ViewResult = self._run(_views.view(self._ctx, self.name, "_design_docs", **options))
        return result

    def local_docs(self, **options: Any) -> ViewResult:
        """``GET /{db}/_local_docs``: the local (non-replicating) documents as rows,
        streamed. https://docs.couchdb.org/en/stable/api/local.html#db-local-docs
        """
        result: ViewResult = self._run(_views.view(self._ctx, self.name, "_local_docs", **options))
        return result


def _spooled(stream: "AttachmentStream") -> "bytes | IO[bytes]":
    """``stream``'s bytes: as bytes up to 8 MiB, else in a temporary file (at its start).
    :class:`StreamConsumed` for a stream already read, begun or closed (nothing read)."""
    import tempfile

    from .errors import StreamConsumed

    response = stream._response
    if response.stream is None:  # a buffered body (couchcore.tornado's callback= style)
        return bytes(response.body or b"")
    if not hasattr(response.stream, "__iter__"):
        raise InvalidInput("an AttachmentStream of an async facade cannot be read here as put_attachment's content: "
                           "pass its bytes (await stream.aread()) or write it to a file first")
    if stream._started or stream._closed:
        raise StreamConsumed("this AttachmentStream was already read, begun or closed: open the attachment again "
                             "to put it")
    limit = 8 * 1024 * 1024
    head = bytearray()
    while len(head) <= limit:
        chunk = stream.read(64 * 1024)
        if not chunk:
            return bytes(head)
        head += chunk
    spool = tempfile.TemporaryFile()
    try:
        spool.write(head)
        del head
        while True:
            chunk = stream.read(1024 * 1024)
            if not chunk:
                break
            spool.write(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


def _not_a_list_of_ids(method: str, ids: object) -> str:
    """The message for ``method(ids)`` given one value where a list of ids belongs: a str
    would be read one document per character, a mapping one per key."""
    import reprlib

    shown = reprlib.repr(ids)
    if isinstance(ids, str):
        return (f"{method} takes a list of ids, not a str: {method}({shown}) would read one document per "
                f"character; for the document {shown} use get({shown}) or {method}([{shown}])")
    if isinstance(ids, Mapping):
        return (f"{method} takes a list of ids, not a {type(ids).__name__} (it would read one document per "
                f"key); pass list(...) of the ids you mean")
    return f"{method} takes a list of str ids, not {type(ids).__name__} {shown}"


def _key_error(op: Operation[T], docs_only: bool = False) -> Operation[T]:
    """Run ``op``; the :class:`NotFound` it raises for a missing key becomes a
    :class:`NotFoundKeyError`. With ``docs_only`` only a missing or deleted document
    counts (a missing database stays a plain ``NotFound``)."""
    try:
        return (yield from op)
    except NotFound as exc:
        if isinstance(exc, NotFoundKeyError) or (docs_only and exc.reason not in ("missing", "deleted")):
            raise
        raise NotFoundKeyError.from_error(exc) from None


def _one_document(found: Document | _OpenRevs) -> Document:
    assert isinstance(found, Document)  # no open_revs: one document
    return found


def _raise_first(results: list[Any]) -> list[Any]:
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


__all__ += ["Document"]
