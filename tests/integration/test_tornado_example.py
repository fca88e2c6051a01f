"""The example Tornado web app (``examples/tornado_app.py``) against the real test server."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from pathlib import Path

import pytest
import tornado.httpclient

import couchcore
import couchcore.tornado as ct
from couchcore import codec
from tests.helpers import eventually

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tornado_app.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("tornado_app_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def db_name(couch_url):
    name = "ct-app-" + os.urandom(6).hex()
    yield name
    server = couchcore.Server(couch_url)
    try:
        server.delete(name)
    except couchcore.NotFound:
        pass
    server.close()




class EventStream:
    """A raw-socket HTTP client for the SSE endpoint, so that the test can hang up."""

    def __init__(self, port: int, path: str, headers: dict | None = None) -> None:
        self.port, self.path, self.headers = port, path, headers or {}
        self.received = bytearray()

    async def __aenter__(self) -> "EventStream":
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        self.writer.write(f"GET {self.path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
        self._task = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        while data := await self.reader.read(65536):
            self.received += data

    @property
    def events(self) -> list[dict]:
        return parse_events(bytes(self.received).partition(b"\r\n\r\n")[2])

    async def __aexit__(self, *exc) -> None:
        self.writer.transport.abort()  # the client goes away
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def parse_events(data: bytes) -> list[dict]:
    events = []
    for block in data.decode().split("\n\n"):  # (chunk-size lines of the framing are skipped)
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "data" in fields:
            events.append({"id": fields.get("id"), "change": codec.loads(fields["data"])})
    return events


def test_example_app_serves_documents_and_a_live_changes_stream(example, couch_url, db_name):
    async def main():
        server = ct.Server(couch_url)
        db = await server.db(db_name, create=True)
        app = example.make_app(db)
        http = app.listen(0, "127.0.0.1")
        port = next(iter(http._sockets.values())).getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        client = tornado.httpclient.AsyncHTTPClient(force_instance=True)

        async def call(method, path, body=None, **kw):
            return await client.fetch(base + path, method=method, body=body, raise_error=False, **kw)

        try:
            # documents: PUT, GET (the @relax generator handler), 404, 409, 400
            created = await call("PUT", "/docs/hello", b'{"text": "hi"}')
            assert created.code == 201
            rev = codec.loads(created.body)["rev"]
            got = await call("GET", "/docs/hello")
            assert got.code == 200 and codec.loads(got.body) == {"_id": "hello", "_rev": rev, "text": "hi"}
            missing = await call("GET", "/docs/nope")
            assert missing.code == 404 and codec.loads(missing.body)["error"] == "not_found"
            conflict = await call("PUT", "/docs/hello", b'{"text": "no rev"}')
            assert conflict.code == 409
            assert (await call("PUT", "/docs/bad", b"[1, 2")).code == 400
            updated = await call("PUT", "/docs/hello", codec.dumps({"_rev": rev, "text": "hi again"}))
            assert updated.code == 201
            index = await call("GET", "/")
            assert codec.loads(index.body) == {"ids": ["hello"]}

            # the live changes stream: a change made after connecting arrives as an event
            async with EventStream(port, "/changes?include_docs=true") as stream:
                await eventually(lambda: b"following changes" in stream.received)
                await eventually(lambda: len(app.settings["live_feeds"]) == 1)
                await db.save({"_id": "live-1", "n": 1})
                await eventually(lambda: len(stream.events) == 1)
                event = stream.events[0]
                assert b"text/event-stream" in stream.received
                assert event["change"]["id"] == "live-1" and event["change"]["doc"]["n"] == 1
                assert event["id"] == str(event["change"]["seq"])

            # the client went away: the app stopped its feed and its connection to the database
            await eventually(lambda: not app.settings["live_feeds"])
            await eventually(lambda: server._transport.active == 0)

            # resuming with Last-Event-ID: only what happened since that event
            await db.save({"_id": "live-2"})
            async with EventStream(port, "/changes", {"Last-Event-ID": event["id"]}) as stream:
                await eventually(lambda: len(stream.events) >= 1)
                assert [e["change"]["id"] for e in stream.events] == ["live-2"]
                example.stop_feeds(app)  # the app's shutdown path ends open streams
                await eventually(lambda: stream.received.endswith(b"\r\n0\r\n\r\n"))  # response finished
            await eventually(lambda: server._transport.active == 0)
        finally:
            client.close()
            http.stop()
            server.close()

    asyncio.run(asyncio.wait_for(main(), 30))
