"""A Tornado web app on couchcore.tornado: serves documents and a live changes stream.

    .venv/bin/python examples/tornado_app.py [--port 8888] [--db notes]

Runs against $COUCHDB_URL when set; otherwise starts the repository's PouchDB Server on
a free loopback port for as long as the app runs. Then try::

    curl -X PUT localhost:8888/docs/hello -d '{"text": "hi"}'
    curl localhost:8888/docs/hello
    curl localhost:8888/
    curl -N localhost:8888/changes          # live, as Server-Sent Events

Endpoints
    ``GET /``              the document ids (``async for`` over ``_all_docs``, streamed out)
    ``GET /docs/<id>``     the document, 404 if missing — written in the seed's generator
                           style with ``@relax`` (``doc = yield db.get(id)``)
    ``PUT /docs/<id>``     save the JSON body (``_rev`` in it to update); ``{"id", "rev"}``,
                           409 on a conflict — a native ``async def``
    ``GET /changes``       live changes as Server-Sent Events: ``id:`` is the sequence, so a
                           browser's ``EventSource`` resumes where it left off
                           (``Last-Event-ID``); ``?since=`` picks the start (default ``now``),
                           ``?include_docs=true`` adds the documents. Each stream follows
                           one continuous feed, stopped when the client goes away.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import tornado.web
from tornado.iostream import StreamClosedError

import couchcore
from couchcore.testing import couch_url
from couchcore import codec
from couchcore.tornado import Database, Server, relax


class Base(tornado.web.RequestHandler):
    def initialize(self, db: Database) -> None:
        self.db = db

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(codec.dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, couchcore.HTTPError):  # the database's verdict, passed on
            self.set_status(exc.status)
            self.finish({"error": exc.error, "reason": exc.reason})
        else:
            self.finish({"error": self._reason})

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, couchcore.HTTPError):  # 404/409 from CouchDB are not bugs
            super().log_exception(typ, value, tb)


class IndexHandler(Base):
    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.write('{"ids": [')
        count = 0
        async for docid in self.db:  # rows parsed as they arrive, written out as they come
            self.write((", " if count else "") + codec.dumps(docid).decode())
            count += 1
            if count % 1000 == 0:
                await self.flush()
        self.finish("]}")


class DocHandler(Base):
    @relax
    def get(self, docid: str):
        doc = yield self.db.get(docid)  # NotFound raises here -> write_error -> 404
        self.write_json(doc)

    async def put(self, docid: str) -> None:
        try:
            doc = codec.loads(self.request.body or b"{}")
        except (ValueError, couchcore.ParseError):
            self.write_json({"error": "bad_request", "reason": "the body must be JSON"}, 400)
            return
        if not isinstance(doc, dict):
            self.write_json({"error": "bad_request", "reason": "the body must be a JSON object"}, 400)
            return
        doc["_id"] = docid
        await self.db.save(doc)  # Conflict raises -> 409
        self.write_json({"id": doc["_id"], "rev": doc["_rev"]}, 201)


class ChangesHandler(Base):
    feed: Any = None

    async def get(self) -> None:
        since = self.request.headers.get("Last-Event-ID") or self.get_argument("since", "now")
        include_docs = self.get_argument("include_docs", "false") == "true"
        self.feed = self.db.changes(feed="continuous", since=since, include_docs=include_docs, heartbeat=10_000)
        feeds: set = self.application.settings["live_feeds"]
        feeds.add(self.feed)
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        try:
            self.write(": following changes\n\n")
            await self.flush()
            async for change in self.feed:
                self.write(f"id: {change['seq']}\ndata: {codec.dumps(change).decode()}\n\n")
                await self.flush()
        except StreamClosedError:
            pass  # the client went away
        finally:
            self.feed.stop()
            feeds.discard(self.feed)
        if not self.request.connection.stream.closed():
            self.finish()

    def on_connection_close(self) -> None:
        if self.feed is not None:
            self.feed.stop()  # ends the 'async for' above and closes the feed's connection


def make_app(db: Database) -> tornado.web.Application:
    """The application; ``app.settings["live_feeds"]`` holds the changes feeds being served."""
    return tornado.web.Application(
        [
            (r"/", IndexHandler, {"db": db}),
            (r"/docs/(.+)", DocHandler, {"db": db}),
            (r"/changes", ChangesHandler, {"db": db}),
        ],
        live_feeds=set(),
    )


def stop_feeds(app: tornado.web.Application) -> None:
    for feed in list(app.settings["live_feeds"]):
        feed.stop()


async def serve(url: str, name: str, port: int) -> None:
    server = Server(url)
    db = await server.db(name, create=True)
    app = make_app(db)
    http = app.listen(port, "127.0.0.1")
    print(f"serving database {name!r} of {server.url} on http://127.0.0.1:{port}/  (Ctrl-C stops)")
    try:
        await asyncio.Event().wait()
    finally:
        stop_feeds(app)
        http.stop()
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--db", default="couchcore-tornado-example")
    args = parser.parse_args(argv)
    with couch_url() as url:
        try:
            asyncio.run(serve(url, args.db, args.port))
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
