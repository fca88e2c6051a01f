"""The Server and Database API, written once for every driver.

:class:`ServerAPI` and :class:`DatabaseAPI` turn each call into a protocol
operation and hand it to ``self._run(op, post)``; the sync facade
(:mod:`couchcore.sync`) runs it at once and returns the result, the async facade
(:mod:`couchcore.tornado`) returns an awaitable. No operation is written per backend.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import quote, unquote, urlsplit

from .errors import InvalidInput
from .feeds import ChangesFeed
from .models import Document
from .protocol import attachments as _att
from .protocol import changes as _changes
from .protocol import database as _db
from .protocol import documents as _docs
from .protocol import server as _srv
from .protocol import views as _views
from .protocol.paths import validate_db_name
from .transport.base import Credentials, TransportOptions
from .urls import split_credentials

__all__ = ["ServerAPI", "DatabaseAPI", "DEFAULT_URL"]

DEFAULT_URL = "http://127.0.0.1:5984"


class ServerAPI:
    """A CouchDB server. See :class:`couchcore.Server` for the sync flavour."""

    is_async = False
    _database_class: type["DatabaseAPI"]

    def __init__(
        self,
        url: str | None = None,
        auth: tuple[str, str] | None = None,
        full_commit: bool | None = True,
        backend: str | None = None,
        uuid_batch: int = 100,
        **transport_options: Any,
    ) -> None:
        url = url or os.environ.get("COUCHDB_URL") or DEFAULT_URL
        base, user, password = split_credentials(url)
        if auth is not None:
            if not (isinstance(auth, (tuple, list)) and len(auth) == 2):
                raise InvalidInput("auth must be a (username, password) pair")
            user, password = auth
        self.url = base
        self.credentials = Credentials(user, password or "") if user is not None else None
        self.options = TransportOptions.from_kwargs(**transport_options)
        self._ctx = _srv.ServerContext(uuid_batch=uuid_batch, full_commit=full_commit)
        self._transport = self._make_transport(backend)

    # hooks of a concrete facade
    def _make_transport(self, backend: str | None) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _run(self, op: Any, post: Callable[[Any], Any] | None = None) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _run_many(self, ops: list, concurrency: int, post: Callable[[list], Any]) -> Any:  # pragma: no cover
        """Run operations concurrently; ``post`` gets results (exceptions in place) in order."""
        raise NotImplementedError

    def __repr__(self) -> str:
        who = f" as {self.credentials.username}" if self.credentials else ""
        return f"<{type(self).__name__} {self.url}{who}>"

    def close(self) -> None:
        """Close the transport's pooled connections."""
        self._transport.close()

    def _database(self, name: str) -> "DatabaseAPI":
        return self._database_class._bound(self, name)

    # -- server info ---------------------------------------------------------------
    def info(self) -> Any:
        """The welcome object of ``GET /``."""
        return self._run(_srv.welcome(self._ctx))

    def version(self) -> Any:
        """The server's version string."""
        return self._run(_srv.version(self._ctx))

    def all_dbs(self) -> Any:
        """Names of all databases."""
        return self._run(_srv.all_dbs(self._ctx))

    def uuids(self, count: int = 1) -> Any:
        """``count`` fresh uuids from the server."""
        return self._run(_srv.uuids(self._ctx, count))

    def config(self, name: str | None = None, value: Any = None, delete: bool = False) -> Any:
        """Whole config, a section (``"couchdb"``) or a key (``"couchdb/max_dbs_open"``).

        With ``value`` sets the key (returns ``None``); with ``delete=True`` removes it
        and returns the old value. Uses ``/_node/_local/_config`` on CouchDB 2+.
        """
        return self._run(_srv.config(self._ctx, name, value, delete))

    def stats(self, name: str | None = None) -> Any:
        """Server statistics, or one sub-path (``"couchdb/request_time"``)."""
        return self._run(_srv.stats(self._ctx, name))

    def tasks(self) -> Any:
        """Active tasks (``/_active_tasks``)."""
        return self._run(_srv.tasks(self._ctx))

    def membership(self) -> Any:
        """Cluster membership (``/_membership``)."""
        return self._run(_srv.membership(self._ctx))

    # -- databases -----------------------------------------------------------------
    def create(self, name: str, **options: Any) -> Any:
        """Create database ``name`` (``PreconditionFailed`` if it exists)."""
        validate_db_name(name)
        return self._run(_srv.create_db(self._ctx, name, **options), self._database)

    def db(self, name: str, create: bool = False) -> Any:
        """The database ``name``; ``NotFound`` if missing unless ``create``."""
        validate_db_name(name)
        return self._run(_srv.open_db(self._ctx, name, create), self._database)

    def delete(self, name: str) -> Any:
        """Delete database ``name`` (``NotFound`` if missing)."""
        return self._run(_srv.delete_db(self._ctx, name))

    def exists(self, name: str) -> Any:
        """Whether database ``name`` exists."""
        return self._run(_srv.db_exists(self._ctx, name))

    def replicate(self, source: Any, target: Any, **options: Any) -> Any:
        """Replicate ``source`` to ``target`` (URLs, names or Database objects).

        With ``_id=...`` a document in ``_replicator`` is written; otherwise
        ``_replicate`` is called (``continuous``, ``create_target``, ``doc_ids``,
        ``filter``, ``cancel``, ... pass through).
        """
        return self._run(_srv.replicate(self._ctx, self._endpoint(source), self._endpoint(target), **options))

    def _endpoint(self, db: Any) -> str:
        """A replication endpoint URL (with credentials: the server has to log in)."""
        if isinstance(db, DatabaseAPI):
            return db._server._url_with_credentials() + "/" + quote(db.name, safe="")
        if isinstance(db, str) and "://" not in db:
            validate_db_name(db)
            return self._url_with_credentials() + "/" + quote(db, safe="")
        if isinstance(db, (str, Mapping)):
            return db  # type: ignore[return-value]
        raise InvalidInput(f"replication endpoint must be a URL, name or Database, not {type(db).__name__}")

    def _url_with_credentials(self) -> str:
        if self.credentials is None:
            return self.url
        scheme, rest = self.url.split("://", 1)
        user = quote(self.credentials.username, safe="")
        pw = quote(self.credentials.password, safe="")
        return f"{scheme}://{user}:{pw}@{rest}"

    @property
    def users(self) -> Any:
        """The ``_users`` database."""
        return self._database("_users")

    @property
    def replicator(self) -> Any:
        """The ``_replicator`` database."""
        return self._database("_replicator")


class DatabaseAPI:
    """A CouchDB database. See :class:`couchcore.Database` for the sync flavour."""

    is_async = False
    _server_class: type[ServerAPI]
    _feed_class: type[ChangesFeed] = ChangesFeed
    name: str
    _server: ServerAPI

    def __init__(self, url_or_name: str, auth: tuple[str, str] | None = None, server: ServerAPI | None = None,
                 **server_options: Any) -> None:
        if "://" in url_or_name:
            parts = urlsplit(url_or_name)
            path = parts.path.rstrip("/")
            base_path, _, name = path.rpartition("/")
            name = unquote(name)
            server_url = url_or_name[: url_or_name.index(parts.netloc) + len(parts.netloc)] + base_path
            server = server or self._server_class(server_url, auth=auth, **server_options)
        else:
            name = url_or_name
            server = server or self._server_class(auth=auth, **server_options)
        self._bind(server, validate_db_name(name))

    @classmethod
    def _bound(cls, server: ServerAPI, name: str) -> "DatabaseAPI":
        self = cls.__new__(cls)
        self._bind(server, name)
        return self

    def _bind(self, server: ServerAPI, name: str) -> None:
        self._server = server
        self.name = name
        self._ctx = server._ctx

    @property
    def server(self) -> ServerAPI:
        return self._server

    @property
    def url(self) -> str:
        """The database URL (without credentials)."""
        return self._server.url + "/" + quote(self.name, safe="")

    def _run(self, op: Any, post: Callable[[Any], Any] | None = None) -> Any:
        return self._server._run(op, post)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DatabaseAPI) and (self.url, self.name) == (other.url, other.name)

    def __hash__(self) -> int:
        return hash(self.url)

    # -- database ------------------------------------------------------------------
    def info(self, ddoc: str | None = None) -> Any:
        """Database info, or the info of design document ``ddoc``."""
        return self._run(_db.info(self._ctx, self.name, ddoc))

    def exists(self) -> Any:
        """Whether the database exists."""
        return self._run(_db.exists(self._ctx, self.name))

    def compact(self, ddoc: str | None = None) -> Any:
        """Start compaction of the database (or of a design document's views)."""
        return self._run(_db.compact(self._ctx, self.name, ddoc))

    def cleanup(self) -> Any:
        """Remove index files no design document uses any more."""
        return self._run(_db.cleanup(self._ctx, self.name))

    def commit(self) -> Any:
        """Ask the server to commit recent changes to disk (``_ensure_full_commit``)."""
        return self._run(_db.commit(self._ctx, self.name))

    def purge(self, docs: Any) -> Any:
        """Purge revisions (``{purge_seq, purged}``); think thrice."""
        return self._run(_db.purge(self._ctx, self.name, docs))

    def security(self, value: Mapping | None = None) -> Any:
        """Get the security object, or set it to ``value``."""
        return self._run(_db.security(self._ctx, self.name, value))

    # -- documents -----------------------------------------------------------------
    def save(self, doc_or_docs: Any, merge: Callable | None = None, force: bool = False,
             retries: int = _docs.DEFAULT_RETRIES, **options: Any) -> Any:
        """Create or update one document or a list of them; returns a ConflictResolution.

        Documents are updated in place (``_id``, ``_rev``); those without ``_id`` get
        server uuids. A single document's conflict raises :class:`Conflict` (with the
        resolution in ``.resolution``) unless ``merge`` or ``force`` resolves it; for a
        list, failures are reported per document in ``.pending``.

        ``merge=fn`` calls ``fn(local, server)`` for each conflicting document (``local``
        a copy of the document as given, ``server`` the current :class:`Document` or
        ``None`` if deleted) and writes what it returns (``None`` skips it). When the
        merged write conflicts again because another writer got in between, the
        document is re-read and ``fn`` applied again, up to ``retries`` (default 10)
        times; ``force=True`` re-reads the current revision the same way. When the
        retries are used up, :class:`Conflict` says how many attempts were made.
        Options: ``new_edits``, ``all_or_nothing`` (``_bulk_docs`` body fields).
        CouchDB: https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-docs
        """
        single = isinstance(doc_or_docs, Mapping)
        if single:
            docs = [doc_or_docs]
        elif isinstance(doc_or_docs, (str, bytes)) or not isinstance(doc_or_docs, Iterable):
            raise InvalidInput("save takes a document (dict) or a list of documents")
        else:
            docs = list(doc_or_docs)
        return self._run(_docs.save_docs(self._ctx, self.name, docs, self, single, merge, force, retries,
                                         **options))

    def update_doc(self, docid: str, fn: Callable[[Document | None], Mapping | None],
                   retries: int = _docs.DEFAULT_RETRIES) -> Any:
        """Read-modify-write document ``docid`` without losing concurrent updates.

        ``fn(doc)`` gets the current :class:`Document` (``None`` if the document is
        missing or deleted, so ``fn`` can create it) and returns the document to write
        (``_id`` and ``_rev`` are filled in) or ``None`` to write nothing. If another
        writer changed the document in between (409), it is read again and ``fn`` called
        again, up to ``retries`` (default 10) times; then :class:`Conflict` is raised,
        saying how many attempts were made. ``fn`` is plain code run between requests
        (also on the async facade) and may be called several times. Returns the saved
        :class:`Document` with its new ``_rev``, or ``None`` when ``fn`` skipped.
        Bad input (``fn`` not callable, empty id, negative ``retries``) raises
        :class:`InvalidInput` before anything is sent; ``fn`` returning a non-dict
        raises :class:`InvalidDocument`.
        CouchDB: https://docs.couchdb.org/en/stable/api/document/common.html#put--db-docid
        """
        return self._run(_docs.update_doc(self._ctx, self.name, docid, fn, retries))

    def _resolve(self, resolution: Any, how: str, fn: Callable | None = None) -> Any:
        return self._run(_docs.resolve(self._ctx, self.name, resolution, how, fn))

    def get(self, id_or_ids: Any, **options: Any) -> Any:
        """A :class:`Document` (``NotFound`` if missing), or for a list of ids a list of
        Documents and ``None`` for missing ones, in order, in one request."""
        if isinstance(id_or_ids, str):
            return self._run(_docs.get_doc(self._ctx, self.name, id_or_ids, **options))
        if isinstance(id_or_ids, Iterable) and not isinstance(id_or_ids, (bytes, Mapping)):
            return self._run(_docs.get_docs(self._ctx, self.name, id_or_ids, **options))
        raise InvalidInput(f"get takes an id or a list of ids, not {type(id_or_ids).__name__}")

    def get_many(self, ids: Iterable[str], concurrency: int = 16, **options: Any) -> Any:
        """Fetch documents with one GET each, ``concurrency`` in flight at once.

        Returns Documents (``None`` for missing ids) in order. Use it when each document
        needs per-document options (``attachments``, ``open_revs``, ...); plain
        ``get([ids])`` needs only one request.
        """
        ids = list(ids)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidInput(f"concurrency must be a positive int, got {concurrency!r}")
        _docs.check_doc_options(options)  # fail before anything is sent
        for docid in ids:
            if not isinstance(docid, str) or not docid:
                raise InvalidInput(f"document ids must be non-empty str, got {docid!r}")
        ops = [_docs.get_doc_or_none(self._ctx, self.name, docid, **options) for docid in ids]
        return self._server._run_many(ops, concurrency, _raise_first)

    def contains(self, docid: str) -> Any:
        """Whether document ``docid`` exists."""
        return self._run(_docs.doc_exists(self._ctx, self.name, docid))

    def delete(self, doc: Mapping) -> Any:
        """Delete a document (it needs ``_id`` and ``_rev``); returns ``{ok, id, rev}``."""
        return self._run(_docs.delete_doc(self._ctx, self.name, doc))

    def copy(self, source: Any, dest: Any) -> Any:
        """Copy ``source`` to ``dest`` (ids or docs; a dest with ``_rev`` is overwritten).
        Returns the new revision."""
        return self._run(_docs.copy_doc(self._ctx, self.name, source, dest))

    def revisions(self, docid: str) -> Any:
        """Revision ids of a document, newest first."""
        return self._run(_docs.revisions(self._ctx, self.name, docid))

    # -- attachments ---------------------------------------------------------------
    def put_attachment(self, doc: Any, content: Any, filename: str | None = None,
                       content_type: str | None = None) -> Any:
        """Create or replace an attachment (file objects are streamed); updates ``doc["_rev"]``."""
        return self._run(_att.put_attachment(self._ctx, self.name, doc, content, filename, content_type))

    def get_attachment(self, id_or_doc: Any, filename: str) -> Any:
        """The attachment's content as bytes."""
        return self._run(_att.get_attachment(self._ctx, self.name, id_or_doc, filename))

    def open_attachment(self, id_or_doc: Any, filename: str) -> Any:
        """The attachment as a stream of byte chunks (see :class:`AttachmentStream`)."""
        from .results import AttachmentStream

        return self._run(_att.open_attachment(self._ctx, self.name, id_or_doc, filename), AttachmentStream)

    def delete_attachment(self, doc: Any, filename: str) -> Any:
        """Delete an attachment; updates ``doc["_rev"]``."""
        return self._run(_att.delete_attachment(self._ctx, self.name, doc, filename))

    # -- views and queries -------------------------------------------------------------
    def view(self, name: str, **options: Any) -> Any:
        """Query a view (``"ddoc/view"``, ``"_design/ddoc/_view/view"`` or ``"_all_docs"``).

        Returns a :class:`ViewResult` whose rows are parsed as they stream in.
        """
        return self._run(_views.view(self._ctx, self.name, name, **options))

    def query(self, map_src: str, reduce_src: str | None = None, language: str = "javascript",
              **options: Any) -> Any:
        """An ad-hoc (temporary) view."""
        return self._run(_views.temp_view(self._ctx, self.name, map_src, reduce_src, language, **options))

    def list(self, name: str, view: str, **options: Any) -> Any:
        """Format a view with a ``_list`` function; returns a :class:`Result`."""
        return self._run(_views.list_fn(self._ctx, self.name, name, view, **options))

    def show(self, name: str, id: str | None = None, **options: Any) -> Any:
        """Call a ``_show`` function; returns a :class:`Result`."""
        return self._run(_views.show_fn(self._ctx, self.name, name, id, **options))

    def update(self, name: str, id: str | None = None, body: Any = None, **options: Any) -> Any:
        """Call an ``_update`` handler; returns a :class:`Result`."""
        return self._run(_views.update_fn(self._ctx, self.name, name, id, body, **options))

    def find(self, selector: Mapping, **options: Any) -> Any:
        """A Mango query: ``{"docs": [Document, ...], "bookmark": ..., ...}``."""
        return self._run(_db.find(self._ctx, self.name, selector, **options))

    def create_index(self, fields: Sequence[Any], name: str | None = None, ddoc: str | None = None, **options: Any) -> Any:
        """Create a Mango index on ``fields``."""
        return self._run(_db.create_index(self._ctx, self.name, fields, name, ddoc, **options))

    # -- changes ---------------------------------------------------------------------
    def changes(self, callback: Callable | None = None, latency: float = 0.0, **options: Any) -> Any:
        """The ``_changes`` feed.

        ``feed="normal"``/``"longpoll"``: ``{"last_seq": ..., "results": [...]}``.
        ``feed="continuous"``: a :class:`ChangesFeed` to iterate; with ``callback``,
        ``callback(seq, changes)`` is called with batches gathered over ``latency`` s.
        """
        feed = options.get("feed")
        if feed == "continuous" or (callback is not None and feed is None):
            changes_feed = self._feed_class(self, options)
            if callback is not None:
                return changes_feed.start(callback, latency)
            return changes_feed
        if callback is not None:
            raise InvalidInput(f"callback(seq, changes) needs feed='continuous', not feed={feed!r}")
        return self._run(_changes.changes(self._ctx, self.name, **options))

    # -- replication -----------------------------------------------------------------
    def push(self, target: Any, **options: Any) -> Any:
        """Replicate this database to ``target``."""
        return self._server.replicate(self, target, **options)

    def pull(self, source: Any, **options: Any) -> Any:
        """Replicate ``source`` into this database."""
        return self._server.replicate(source, self, **options)


def _raise_first(results: list) -> list:
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


__all__ += ["Document"]
