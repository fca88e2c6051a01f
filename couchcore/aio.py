"""The async facade for asyncio programs: ``couchcore.aio.Server`` / ``Database``.

It runs on plain :mod:`asyncio` — ``asyncio.run(main())``, no Tornado ``IOLoop`` to start
or manage — with the same methods as the sync :class:`couchcore.Server` /
:class:`couchcore.Database`, each returning an awaitable (an :class:`asyncio.Task` when
called inside a running loop, a coroutine outside one)::

    import asyncio
    import couchcore.aio

    async def main():
        async with couchcore.aio.Server("http://admin:secret@127.0.0.1:5984") as server:
            db = await server.db("events", create=True)
            await db.save({"_id": "a", "n": 1})
            await db.update_doc("a", lambda doc: {**doc, "n": doc["n"] + 1})
            async for row in await db.view("_all_docs"):      # rows parsed as chunks arrive
                print(row.id)
            async for change in db.changes(since=0):           # streamed normal feed
                print(change["id"])

    asyncio.run(main())

The HTTP client underneath is libcurl driven by the running loop (``backend="pycurl"``,
the default when pycurl is installed: connections kept alive, see
:mod:`couchcore.transport.curlloop`), or Tornado's simple ``AsyncHTTPClient``
(``backend="tornado"``: a connection per request). Install with
``pip install 'couchcore[aio]'`` (Tornado, which the facade builds on) and
``'couchcore[pycurl]'``. These are the classes of :mod:`couchcore.tornado` under asyncio
names; that module stays for the seed's ``callback=`` style and
:func:`couchcore.tornado.relax` generator handlers.
"""

from __future__ import annotations

try:
    import tornado as _tornado_package  # noqa: F401 - the HTTP engine underneath
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("couchcore.aio runs on Tornado's asyncio HTTP client: pip install 'couchcore[aio]'") from exc

from typing import TYPE_CHECKING, Awaitable

from . import tornado as _tornado
from ._follow import AsyncChangesFollower
from ._paging import AsyncPaged
from ._results import AsyncAttachmentStream, AsyncStreamedResult, AsyncViewResult
from .models import AsyncConflictResolution
from .tornado import ChangesFeed, ChangesTask

if TYPE_CHECKING:  # methods naming the asyncio classes, generated (tools/gen_facades.py)
    from ._facades import AioDatabaseAPI as _DatabaseBase
    from ._facades import AioServerAPI as _ServerBase
else:
    _DatabaseBase, _ServerBase = _tornado.Database, _tornado.Server

__all__ = ["Server", "Database", "Couch", "ChangesFeed", "ChangesTask",
           # how type checkers see the results of these facades (protocols: annotations only)
           "AsyncViewResult", "AsyncStreamedResult", "AsyncAttachmentStream", "AsyncConflictResolution",
           "AsyncPaged", "AsyncChangesFollower"]


class Server(_ServerBase):
    """A CouchDB server for asyncio code.

    ``Server(url=None, auth=None, full_commit=True, max_clients=10, **transport_options)``:
    the arguments of :class:`couchcore.Server`; ``max_clients`` bounds the requests in
    flight at once per event loop. Every method returns an awaitable of what the sync
    method returns; ``await server.db(name)`` gives a :class:`Database`.
    """

    if TYPE_CHECKING:
        def __getitem__(self, name: str) -> Awaitable[Database]: ...


class Database(_DatabaseBase):
    """A CouchDB database for asyncio code: ``await server.db(name)``, or built directly
    (no request is sent) from a URL: ``Database("http://user:pw@host:5984/events")``."""

    _server_class = Server


Server._database_class = Database
Couch = Server
