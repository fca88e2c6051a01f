"""The Tornado transport against small local HTTP servers whose behaviour the tests
control: silence, slow or huge streams, cut connections, a scripted changes feed.

This is where what *the server* sees is checked: that cancelling or closing closes the
connection, that a paused ``async for`` stops the download (backpressure), that an
abandoned stream does not hold a slot. Real sockets throughout, nothing mocked.
"""

from __future__ import annotations

import asyncio
import gc
import json
from urllib.parse import parse_qs, urlsplit

import pytest

import couchcore
import couchcore.tornado as ct
from couchcore.testing import AsyncLoopbackServer
from couchcore.transport import tornado as tt
from tests.helpers import eventually, nothing_in_flight


def arun(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))




class LocalServer(AsyncLoopbackServer):
    """An HTTP/1.1 server on a free loopback port; ``handler(conn, method, target, headers)``
    writes the response. Counts connections (``open``, ``peak``, ``total``), records the
    request targets, and sets ``closed`` each time a client connection ends."""

    def __init__(self, handler) -> None:
        super().__init__()
        self.handler = handler
        self.targets: list[str] = []

    @property
    def url(self) -> str:
        return f"http://user:s3cret@127.0.0.1:{self.port}"

    async def handle(self, reader, writer) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            if "content-length" in headers:
                await reader.readexactly(int(headers["content-length"]))
            self.targets.append(target)
            await self.handler(Conn(reader, writer), method, target, headers)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


class Conn:
    def __init__(self, reader, writer) -> None:
        self.reader, self.writer = reader, writer
        self.sent = 0

    async def head(self, status: int = 200, headers: dict | None = None, chunked: bool = True) -> None:
        lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json", "Connection: close"]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()

    async def chunk(self, data: bytes) -> None:
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await self.writer.drain()  # blocks while the client does not read
        self.sent += len(data)

    async def end(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()

    async def until_client_closes(self) -> None:
        while await self.reader.read(1024):
            pass


def view_rows(n: int, start: int = 0) -> list[bytes]:
    return [b'{"id":"r%07d","key":%d,"value":{"n":%d,"s":"row %d"}}' % (i, i, i, i) for i in range(start, start + n)]


async def stream_view(conn: Conn, rows_total: int, per_chunk: int = 500) -> None:
    """A view body framed as CouchDB frames it (a row per line, ``,\\r\\n``)."""
    await conn.head()
    await conn.chunk(b'{"total_rows":%d,"offset":0,"rows":[\r\n' % rows_total)
    for start in range(0, rows_total, per_chunk):
        rows = view_rows(min(per_chunk, rows_total - start), start)
        sep = b"" if start == 0 else b",\r\n"
        await conn.chunk(sep + b",\r\n".join(rows))
    await conn.chunk(b"\r\n]}\n")
    await conn.end()


# -- cancellation and closing, seen from the server ----------------------------------------------


def test_cancelling_await_get_closes_the_connection():
    async def silent(conn, method, target, headers):
        await conn.until_client_closes()

    async def main():
        async with LocalServer(silent) as local:
            db = ct.Server(local.url)._database("db")
            task = asyncio.ensure_future(db.get("doc"))
            await eventually(lambda: local.open == 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(local.closed.wait(), 2)
            assert local.open == 0
            transport = db.server._transport
            assert transport.active == 0
            assert nothing_in_flight(transport)

    arun(main())


def test_cancelling_async_for_over_a_view_closes_the_connection():
    async def endless(conn, method, target, headers):
        await conn.head()
        await conn.chunk(b'{"total_rows":1000000,"offset":0,"rows":[\r\n' + b",\r\n".join(view_rows(10)))
        await conn.until_client_closes()

    async def main():
        async with LocalServer(endless) as local:
            db = ct.Server(local.url)._database("db")
            got = []

            async def consume():
                async for row in await db.view("_all_docs"):
                    got.append(row.id)

            task = asyncio.ensure_future(consume())
            await eventually(lambda: len(got) >= 9)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.wait_for(local.closed.wait(), 2)
            assert db.server._transport.active == 0

    arun(main())


def test_an_abandoned_stream_is_closed_and_its_slot_freed():
    async def endless(conn, method, target, headers):
        await conn.head()
        await conn.chunk(b'{"total_rows":5,"offset":0,"rows":[\r\n')
        await conn.until_client_closes()

    async def main():
        async with LocalServer(endless) as local:
            server = ct.Server(local.url, max_clients=1)
            result = await server._database("db").view("_all_docs")
            assert server._transport.active == 1
            del result
            gc.collect()
            await asyncio.wait_for(local.closed.wait(), 2)
            await eventually(lambda: server._transport.active == 0)

    arun(main())


def test_closing_the_server_aborts_requests_and_streams_in_flight():
    welcomes = []

    async def handler(conn, method, target, headers):
        if target == "/":
            welcomes.append(target)
            if len(welcomes) > 1:  # the second welcome is answered
                body = b'{"version":"9.9"}'
                await conn.head(chunked=False, headers={"Content-Length": len(body)})
                conn.writer.write(body)
                await conn.writer.drain()
                return
        if "_all_docs" in target:
            await conn.head()
            await conn.chunk(b'{"total_rows":5,"offset":0,"rows":[\r\n')
        await conn.until_client_closes()

    async def main():
        async with LocalServer(handler) as local:
            server = ct.Server(local.url)
            task = asyncio.ensure_future(server.version())
            result = await server._database("db").view("_all_docs")
            await eventually(lambda: local.open == 2)
            server.close()
            with pytest.raises(couchcore.ConnectionError, match="transport was closed"):
                await task
            with pytest.raises(couchcore.ConnectionError, match="transport was closed"):
                async for _ in result:
                    pass
            await eventually(lambda: local.open == 0)
            assert await server.version() == "9.9"  # the server object is usable again

    arun(main())


# -- flow control, limits, timeouts --------------------------------------------------------------


def test_a_paused_consumer_stops_the_download():
    """The server can push only about the buffer's worth (plus socket buffers) while
    ``async for`` is paused; reading on fetches the rest, all of it, in order."""
    total = 48 * 1024 * 1024
    block = bytes(range(256)) * 256  # 64 KB
    state = {}

    async def big(conn, method, target, headers):
        state["conn"] = conn
        await conn.head(chunked=False, headers={"Content-Length": total})
        for _ in range(total // len(block)):
            conn.writer.write(block)
            await conn.writer.drain()
            conn.sent += len(block)
        await conn.until_client_closes()

    async def main():
        async with LocalServer(big) as local:
            db = ct.Server(local.url)._database("db")
            stream = await db.open_attachment("doc", "big.bin")
            it = stream.__aiter__()
            received = len(await it.__anext__())
            await asyncio.sleep(0.5)  # the consumer is busy elsewhere
            paused_at = state["conn"].sent
            assert paused_at < 24 * 1024 * 1024, paused_at  # not the 48 MB: the socket was paused
            await asyncio.sleep(0.3)
            assert state["conn"].sent == paused_at  # and it stays paused
            async for chunk in it:
                received += len(chunk)
            assert received == total
            return paused_at

    paused_at = arun(main())
    assert paused_at >= tt.HIGH_WATER


def test_max_clients_bounds_the_connections_the_server_sees():
    async def slow(conn, method, target, headers):
        await asyncio.sleep(0.05)
        body = b'{"couchdb":"Welcome","version":"3.5.0"}'
        await conn.head(chunked=False, headers={"Content-Length": len(body)})
        conn.writer.write(body)
        await conn.writer.drain()

    async def main():
        async with LocalServer(slow) as local:
            server = ct.Server(local.url, max_clients=3)
            results = await asyncio.gather(*(server.info() for _ in range(24)))
            assert results == [{"couchdb": "Welcome", "version": "3.5.0"}] * 24
            assert local.total == 24 and local.peak == 3

    arun(main())


def test_idle_read_timeout_is_a_read_timeout_and_closes_the_connection():
    async def silent(conn, method, target, headers):
        await conn.until_client_closes()

    async def main():
        async with LocalServer(silent) as local:
            server = ct.Server(local.url, timeout=0.3)
            started = asyncio.get_running_loop().time()
            with pytest.raises(couchcore.ReadTimeout) as info:
                await server.version()
            assert asyncio.get_running_loop().time() - started < 2
            assert "s3cret" not in str(info.value) and "user" not in str(info.value)
            await asyncio.wait_for(local.closed.wait(), 2)

    arun(main())


def test_a_stream_that_keeps_trickling_does_not_time_out():
    async def trickle(conn, method, target, headers):
        await conn.head()
        await conn.chunk(b'{"total_rows":6,"offset":0,"rows":[\r\n')
        for i, row in enumerate(view_rows(6)):
            await asyncio.sleep(0.15)
            await conn.chunk((b",\r\n" if i else b"") + row)
        await conn.chunk(b"\r\n]}\n")
        await conn.end()

    async def main():
        async with LocalServer(trickle) as local:
            db = ct.Server(local.url, timeout=0.4)._database("db")
            return [row.key async for row in await db.view("_all_docs")]  # 0.9 s in all

    assert arun(main()) == list(range(6))


def test_a_short_read_timeout_fires_while_a_longer_one_is_in_flight():
    """One timer checks every transfer's read timeout: a request with a shorter timeout
    (call_options) than the one already in flight must still time out on time."""
    async def silent(conn, method, target, headers):
        await conn.until_client_closes()

    async def main():
        async with LocalServer(silent) as local:
            server = ct.Server(local.url, timeout=20)
            long_wait = server.version()
            await eventually(lambda: local.total == 1)
            started = asyncio.get_running_loop().time()
            with couchcore.call_options(timeout=0.3):
                with pytest.raises(couchcore.ReadTimeout):
                    await server.version()
            assert asyncio.get_running_loop().time() - started < 3
            assert not long_wait.done()  # its own timeout (20 s) has not come
            long_wait.cancel()
            await eventually(lambda: local.open == 0)
            assert nothing_in_flight(server._transport)

    arun(main())


def test_a_cancelled_wait_for_a_slot_passes_the_slot_on():
    """max_clients=1: B waits behind A and is cancelled; C, waiting behind B, gets the slot
    when A is done (B's request is never sent), and the slot is still there afterwards."""
    async def slow(conn, method, target, headers):
        await asyncio.sleep(0.2)
        body = b'{"couchdb":"Welcome","version":"3.5.0"}'
        await conn.head(chunked=False, headers={"Content-Length": len(body)})
        conn.writer.write(body)
        await conn.writer.drain()

    async def main():
        async with LocalServer(slow) as local:
            server = ct.Server(local.url, max_clients=1)
            a, b, c = server.info(), server.info(), server.info()
            await eventually(lambda: local.total == 1)
            b.cancel()
            assert (await a)["version"] == "3.5.0" and (await c)["version"] == "3.5.0"
            with pytest.raises(asyncio.CancelledError):
                await b
            assert local.total == 2  # B never reached the server
            for _ in range(2):  # the one slot was given back
                assert (await asyncio.wait_for(server.info(), 5))["version"] == "3.5.0"
            assert nothing_in_flight(server._transport)

    arun(main())


def test_connection_refused_is_a_connection_error_without_credentials():
    async def main():
        async with LocalServer(None) as local:
            url = local.url
        with pytest.raises(couchcore.ConnectionError) as info:
            await ct.Server(url, connect_timeout=2).version()
        assert "s3cret" not in str(info.value)
        assert isinstance(info.value, couchcore.TransportError)

    arun(main())


def test_a_body_cut_short_raises_connection_error_from_async_for():
    async def cut(conn, method, target, headers):
        await conn.head()
        await conn.chunk(b'{"total_rows":100,"offset":0,"rows":[\r\n' + b",\r\n".join(view_rows(5)))
        await asyncio.sleep(0.1)  # abort() drops what is still buffered
        conn.writer.transport.abort()

    async def main():
        async with LocalServer(cut) as local:
            db = ct.Server(local.url)._database("db")
            got = []
            # Tornado: "connection lost"; libcurl: "transfer closed with outstanding read data"
            with pytest.raises(couchcore.ConnectionError, match="connection lost|transfer closed"):
                async for row in await db.view("_all_docs"):
                    got.append(row)
            assert len(got) in (4, 5)  # the fifth row is incomplete until its separator

    arun(main())


def test_tls_to_a_plain_http_server_is_a_tls_error():
    async def plain(reader, writer):  # answers the TLS ClientHello in plain HTTP
        await reader.read(1024)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(plain, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(couchcore.TLSError):
                await ct.Server(f"https://user:s3cret@127.0.0.1:{port}", connect_timeout=5).version()
        finally:
            server.close()

    arun(main())


def test_garbage_instead_of_http_is_a_connection_error():
    async def garbage(conn, method, target, headers):
        conn.writer.write(b"this is not HTTP at all\r\n\r\n")
        await conn.writer.drain()

    async def main():
        async with LocalServer(garbage) as local:
            with pytest.raises(couchcore.ConnectionError):
                await ct.Server(local.url).version()

    arun(main())


def test_http_error_mid_stream_and_error_statuses_on_streams():
    async def handler(conn, method, target, headers):
        if "missing" in target:
            body = b'{"error":"not_found","reason":"missing"}'
            await conn.head(404, chunked=False, headers={"Content-Length": len(body)})
            conn.writer.write(body)
            return
        await conn.head()
        await conn.chunk(b'{"total_rows":3,"offset":0,"rows":[\r\n' + view_rows(1)[0])
        await conn.chunk(b'\r\n],\r\n"error":"timeout","reason":"The request could not be processed"}\n')
        await conn.end()

    async def main():
        async with LocalServer(handler) as local:
            db = ct.Server(local.url)._database("db")
            with pytest.raises(couchcore.NotFound):
                await db.view("missing/view")
            with pytest.raises(couchcore.ServerError):
                async for _ in await db.view("t/v"):
                    pass

    arun(main())


# -- a view streamed as CouchDB frames it ------------------------------------------------------


def test_async_for_parses_a_chunked_couchdb_view_incrementally():
    async def handler(conn, method, target, headers):
        await stream_view(conn, 20_000, per_chunk=333)

    async def main():
        async with LocalServer(handler) as local:
            db = ct.Server(local.url)._database("db")
            result = await db.view("_all_docs")
            count = 0
            async for row in result:
                assert row.key == count and row.value["n"] == count
                count += 1
            assert result.total_rows == 20_000
            return count

    assert arun(main()) == 20_000


# -- the continuous feed, scripted --------------------------------------------------------------


def test_feed_reconnects_from_the_last_delivered_seq_across_a_split_line():
    """First connection: changes 1-5, then half of change 6, then the connection dies.
    The feed must reconnect with since=5 (the last *delivered* seq), and the second
    connection's 6-10 plus last_seq end it: 1-10 exactly once, in order."""
    sinces = []

    def line(seq: int) -> bytes:
        return json.dumps({"seq": f"{seq}-opaque", "id": f"doc{seq}", "changes": [{"rev": "1-x"}]}).encode() + b"\n"

    async def feed(conn, method, target, headers):
        query = parse_qs(urlsplit(target).query)
        sinces.append(query.get("since", [None])[0])
        assert query["feed"] == ["continuous"]
        await conn.head()
        if len(sinces) == 1:
            await conn.chunk(b"".join(line(i) for i in range(1, 6)) + line(6)[:20])
            await asyncio.sleep(0.1)
            conn.writer.transport.abort()
            return
        await conn.chunk(b"\n")  # a heartbeat
        await conn.chunk(b"".join(line(i) for i in range(6, 11)))
        await conn.chunk(b'{"last_seq":"10-opaque","pending":0}\n')
        await conn.end()

    async def main():
        async with LocalServer(feed) as local:
            db = ct.Server(local.url)._database("db")
            changes = db.changes(feed="continuous", heartbeat=1000, limit=10)  # the limit ends it
            seen = [c["id"] async for c in changes]
            assert changes.last_seq == "10-opaque" and changes.reconnects == 1
            return seen

    assert arun(main()) == [f"doc{i}" for i in range(1, 11)]
    assert sinces == [None, "5-opaque"]


def test_stop_ends_a_callback_feed_promptly_even_while_reconnecting():
    attempts = []

    async def flaky(conn, method, target, headers):
        attempts.append(target)
        conn.writer.transport.abort()  # every attempt fails: the feed backs off and retries

    async def main():
        async with LocalServer(flaky) as local:
            db = ct.Server(local.url)._database("db")
            feed = db.changes(callback=lambda seq, changes: None)
            feed.max_delay = 5.0
            await eventually(lambda: len(attempts) >= 3)
            started = asyncio.get_running_loop().time()
            feed.stop()
            await asyncio.wait_for(feed.wait(), 2)
            assert asyncio.get_running_loop().time() - started < 0.5

    arun(main())


# -- translation unit checks --------------------------------------------------------------------


def test_exception_translation_table():
    import ssl

    from tornado.simple_httpclient import HTTPStreamClosedError, HTTPTimeoutError

    url = "http://127.0.0.1:1/x"
    assert isinstance(tt._translate(HTTPTimeoutError("Timeout while connecting"), url, False), couchcore.ConnectTimeout)
    assert isinstance(tt._translate(TimeoutError(), url, True), couchcore.ReadTimeout)
    assert isinstance(tt._translate(ssl.SSLError("bad"), url, False), couchcore.TLSError)
    assert isinstance(tt._translate(HTTPStreamClosedError("Stream closed"), url, True), couchcore.ConnectionError)
    assert isinstance(tt._translate(ConnectionRefusedError(111, "refused"), url, False), couchcore.ConnectionError)
    leaky = tt._translate(OSError("failed for http://bob:pw@host/"), url, False)
    assert "pw" not in str(leaky) and isinstance(leaky, couchcore.ConnectionError)
