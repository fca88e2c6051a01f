"""The pycurl backends (sync, and the async CurlLoopTransport) build the header lines of a
request without a body once per set of the request's own headers and reuse them (round 29,
issue 9: ~3 us of client CPU per GET). These tests hold the requests on the wire to what a
fresh transport sends: the same heads whether the lines were built or reused, no header of
one request carried into the next, and the credentials flag of an error's reason right."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest

import couchcore
from couchcore import aio
from couchcore.testing import Received, ScriptedServer, http_response


def _script(request: Received, conn: Any) -> bytes:
    if request.target.startswith("/db/_design/f/_show/"):
        return http_response(200, b"shown", content_type="text/plain")
    if request.method == "HEAD":
        return http_response(200, b"", headers={"ETag": '"1-a"'})
    if request.method == "GET" and request.target.startswith("/db/a"):
        return http_response(200, b'{"_id":"a","_rev":"1-a","n":1}')
    if request.method == "POST" and request.target == "/db/_bulk_docs":
        return http_response(201, b'[{"ok":true,"id":"b","rev":"1-b"}]')
    if request.method == "DELETE":
        return http_response(200, b'{"ok":true,"id":"a","rev":"2-a"}')
    return http_response(404, b'{"error":"not_found","reason":"missing"}')


def _sequence(db: Any) -> list[Any]:
    """Body-less requests with and without headers of their own, around a write with a
    body (the path that does not reuse lines); sync calls."""
    return [
        db.get("a"),
        db.show("f/s", "a", headers={"x-a": "1", "accept": "text/plain"}),
        db.get("a"),
        db.contains("a"),
        db.save({"_id": "b", "n": 2}),
        db.get("a"),
        db.delete({"_id": "a", "_rev": "1-a"}),
        db.get("a", revs=True),
        db.show("f/s", "a", headers={"x-b": "2"}),
        db.get("a"),
    ]


async def _asequence(db: Any) -> list[Any]:
    return [
        await db.get("a"),
        await db.show("f/s", "a", headers={"x-a": "1", "accept": "text/plain"}),
        await db.get("a"),
        await db.contains("a"),
        await db.save({"_id": "b", "n": 2}),
        await db.get("a"),
        await db.delete({"_id": "a", "_rev": "1-a"}),
        await db.get("a", revs=True),
        await db.show("f/s", "a", headers={"x-b": "2"}),
        await db.get("a"),
    ]


def _run_sync(url: str, times: int) -> list[list[bytes]]:
    """The heads of ``times`` runs of the sequence on one sync pycurl Server (the later
    runs reuse the lines the first one built)."""
    server = couchcore.Server(url, backend="pycurl", retries=0)
    try:
        db = server._database("db")
        return [_heads_of(url, lambda: _sequence(db)) for _ in range(times)]
    finally:
        server.close()


_recorders: dict[str, ScriptedServer] = {}


def _heads_of(url: str, run: Callable[[], Any]) -> list[bytes]:
    recorder = _recorders[url]
    before = len(recorder.requests)
    run()
    return [r.head for r in recorder.requests[before:]]


def _run_async(url: str, times: int) -> list[list[bytes]]:
    async def main() -> list[list[bytes]]:
        server = aio.Server(url, retries=0)
        try:
            db = server._database("db")
            out = []
            for _ in range(times):
                recorder = _recorders[url]
                before = len(recorder.requests)
                await _asequence(db)
                out.append([r.head for r in recorder.requests[before:]])
            return out
        finally:
            server.close()

    return asyncio.run(main())


@pytest.fixture
def recorder() -> Any:
    """A ScriptedServer (see ``_script``) and its URL with credentials in it."""
    server = ScriptedServer(_script)
    url = server.url.replace("http://", "http://admin:secret@")
    _recorders[url] = server
    try:
        yield url, server
    finally:
        _recorders.pop(url, None)
        server.close()


@pytest.mark.parametrize("run", [_run_sync, _run_async], ids=["sync-pycurl", "async-pycurl"])
def test_reused_header_lines_send_what_a_fresh_transport_sends(recorder: Any, run: Any) -> None:
    """Three runs of the sequence on one transport (lines built, then reused) and one on a
    new transport send byte-identical heads, each with exactly its own headers."""
    url, server = recorder
    first, second, third = run(url, 3)  # the first run builds the lines, the others reuse them
    fresh = run(url, 1)[0]  # a new transport: every line built afresh
    assert first == second == third == fresh
    methods = [r.method for r in server.requests[:len(first)]]
    assert methods == ["GET", "GET", "GET", "HEAD", "POST", "GET", "DELETE", "GET", "GET", "GET"], methods
    for r in server.requests:
        names = [name for name, _ in r.header_lines]
        assert len(names) == len(set(names)), r.head  # no header twice
        assert names.count("authorization") == 1 and names.count("user-agent") == 1, r.head
        assert r.headers["accept-encoding"] == "identity"
        assert "expect" not in r.headers
        if r.target.startswith("/db/_design/f/_show/"):
            # a show's own headers go with it, the operation's Accept replaced by the caller's
            assert ("x-a" in r.headers) != ("x-b" in r.headers), r.head
            assert r.headers["accept"] == ("text/plain" if "x-a" in r.headers else "*/*")
        else:
            # no header of another request: the lines of a plain read are the plain ones
            assert not {"x-a", "x-b", "content-type", "content-length", "transfer-encoding"} & set(r.headers) \
                or r.method == "POST", r.head
            assert r.headers["accept"] == "application/json", r.head
        if r.method in ("GET", "HEAD", "DELETE"):
            assert r.body == b"" and "content-length" not in r.headers, r.head


def test_the_reused_lines_are_bounded() -> None:
    """One transport keeps the lines of at most 64 header sets (distinct own headers of
    body-less requests: a caller's varying header values must not grow memory)."""
    server = ScriptedServer(_script)
    try:
        client = couchcore.Server(server.url, backend="pycurl", retries=0)
        db = client._database("db")
        for i in range(200):
            assert db.show("f/s", "a", headers={"x-n": str(i)}) is not None
        assert [r.headers["x-n"] for r in server.requests] == [str(i) for i in range(200)]
        assert 0 < len(client._transport._bodyless_lines) <= 64  # type: ignore[attr-defined]
        client.close()
    finally:
        server.close()


@pytest.mark.parametrize("with_credentials", [True, False])
def test_async_401_reason_says_whether_credentials_were_sent(with_credentials: bool) -> None:
    """The async pycurl backend's shortcut for requests whose only own header is Accept
    (a document GET): a 401 without a body (couchcore words the reason) says which case
    it was."""
    server = ScriptedServer(lambda request, conn: http_response(401, b""))
    url = server.url.replace("http://", "http://admin:secret@") if with_credentials else server.url

    async def main() -> str:
        client = aio.Server(url, retries=0)
        try:
            db = client._database("db")
            with pytest.raises(couchcore.HTTPError) as info:
                await db.get("a")
            return str(info.value)
        finally:
            client.close()

    try:
        text = asyncio.run(main())
    finally:
        server.close()
    assert ("credentials were rejected" in text) == with_credentials, text
    assert ("no credentials were sent" in text) == (not with_credentials), text


def test_async_401_reason_counts_credentials_in_a_requests_own_headers() -> None:
    """No credentials in the URL, but a request's own Authorization header (next to its
    Accept): the reason says they were sent and rejected."""
    server = ScriptedServer(lambda request, conn: http_response(401, b""))

    async def main() -> str:
        client = aio.Server(server.url, retries=0)
        try:
            with pytest.raises(couchcore.HTTPError) as info:
                await client._database("db").show("f/s", "a", headers={"Authorization": "Bearer t"})
            return str(info.value)
        finally:
            client.close()

    try:
        text = asyncio.run(main())
    finally:
        server.close()
    assert server.requests[0].headers["authorization"] == "Bearer t"
    assert "credentials were rejected" in text, text
