"""The async facade's default backend keeps its connections (issue 9 item 3).

``couchcore.tornado`` / ``couchcore.aio`` run on libcurl driven by the event loop
(:mod:`couchcore.transport.curlloop`): what the server sees is counted here by small
keep-alive servers on 127.0.0.1 (accepted connections, requests in flight at once),
and through a counting proxy in front of the real test server. Real sockets, no mocks.
"""

from __future__ import annotations

import asyncio
import gc
import os
import select
import socket
import threading
import time

import pytest

import couchcore
import couchcore.aio
import couchcore.tornado as ct
from couchcore.protocol.messages import Request
from couchcore.testing import RESET, ScriptedServer, TCPProxy, http_response
from tests.helpers import eventually, reset_on_write, unique_name

pytest.importorskip("pycurl")


@pytest.fixture
def db(couch_url):
    """A fresh database on the test server (a sync handle, one copy of each shard), dropped afterwards."""
    server = couchcore.Server(couch_url)
    database = server.create(unique_name("ka"), n=1)
    yield database
    try:
        server.delete(database.name)
    except couchcore.NotFound:
        pass
    server.close()


def arun(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def reply(body: bytes = b'{"couchdb":"Welcome","version":"9.9.9-test"}', status: str = "200 OK") -> bytes:
    return http_response(status, body)


def keep_alive(script=None, delay: float = 0.0) -> ScriptedServer:
    """An HTTP/1.1 server that keeps connections open and answers each request with
    ``script(request, conn)`` (:class:`couchcore.testing.ScriptedServer`); by default a welcome."""
    return ScriptedServer(script or (lambda request, conn: reply()), delay=delay)


def test_sequential_requests_share_one_connection():
    with keep_alive() as srv:
        async def main():
            server = ct.Server(srv.url)
            try:
                for _ in range(25):
                    assert await server.version() == "9.9.9-test"
            finally:
                server.close()

        arun(main())
        assert len(srv.heads) == 25
        assert srv.connections == 1


def test_sequential_requests_on_the_test_server_share_one_connection(couch_url, db):
    """The same seen from the server side of a proxy in front of the real server, on
    both facades: 30 gets and a streamed view, one TCP connection."""
    async def main(module):
        async with TCPProxy(couch_url) as proxy:
            server = module.Server(proxy.url)
            try:
                for _ in range(30):
                    assert isinstance(await server.version(), str)
                async for _ in await server._database(db.name).view("_all_docs"):
                    pass
                assert isinstance(await server.version(), str)  # after a streamed response, too
                assert proxy.total == 1
            finally:
                server.close()

    arun(main(ct))
    arun(main(couchcore.aio))


def test_concurrency_is_bounded_by_max_clients_and_connections_are_reused():
    with keep_alive(delay=0.03) as srv:
        async def main():
            server = ct.Server(srv.url, max_clients=4)
            try:
                got = await asyncio.gather(*(server.version() for _ in range(40)))
                assert got == ["9.9.9-test"] * 40
                assert server._transport.active == 0
            finally:
                server.close()

        arun(main())
        assert len(srv.heads) == 40
        assert srv.peak == 4  # reached, never exceeded
        assert srv.connections <= 4


@pytest.mark.skipif(not hasattr(select, "epoll") or not os.path.isdir("/proc/self/fd"),
                    reason="the engine's own epoll set is Linux only")
def test_the_loop_watches_one_epoll_set_for_every_libcurl_socket():
    """On Linux (curlloop): libcurl's sockets go into the engine's epoll set, and the loop
    watches only that set's fd; 6 requests in flight are 6 sockets in the set, none in
    the loop's selector; the connections are reused, and closing the server takes the
    set's fd off the loop and closes it."""
    with keep_alive(delay=0.6) as srv:
        async def main():
            loop = asyncio.get_running_loop()
            server = ct.Server(srv.url, max_clients=6)
            try:
                assert await server.version() == "9.9.9-test"
                engine = server._transport._states[loop]
                epoll = engine.epoll
                assert epoll is not None and not engine.watched  # the connection is idle: not watched
                before = set(loop._selector.get_map())  # (the selector's map: asyncio's own bookkeeping)
                assert epoll.fileno() in before
                calls = [asyncio.ensure_future(server.version()) for _ in range(6)]

                def sockets() -> int:  # (libcurl 8 also watches an eventfd of its own while transfers run)
                    return len([fd for fd in engine.watched if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")])

                for _ in range(40):  # all sent (the server answers each after 0.6 s)
                    if sockets() == 6:
                        break
                    await asyncio.sleep(0.01)
                assert sockets() == 6 and not any(call.done() for call in calls)
                assert set(loop._selector.get_map()) == before
                assert not set(engine.watched) & before
                assert await asyncio.gather(*calls) == ["9.9.9-test"] * 6
                assert not engine.watched
                assert await asyncio.gather(*(server.version() for _ in range(6))) == ["9.9.9-test"] * 6
                fd = epoll.fileno()
            finally:
                server.close()
            assert epoll.closed and fd not in loop._selector.get_map()

        arun(main())
        assert srv.connections == 6 and len(srv.heads) == 13


def chunked_view(conn: socket.socket, rows: int, stop_after: int | None = None) -> None:
    """Stream a view of ``rows`` rows, chunked, one row per chunk; with ``stop_after``,
    go silent (but keep the connection) after that many rows."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")

    def chunk(data: bytes) -> None:
        conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    chunk(b'{"total_rows":%d,"offset":0,"rows":[\r\n' % rows)
    for i in range(rows):
        if stop_after is not None and i == stop_after:
            time.sleep(30)
            return
        chunk((b",\r\n" if i else b"") + b'{"id":"r%07d","key":%d,"value":null}' % (i, i))
    chunk(b"\r\n]}\n")
    conn.sendall(b"0\r\n\r\n")


def endless_view(request, conn):
    """Script: ``_all_docs`` streams ten million rows (until the client goes away, which is
    what the tests want); anything else gets :func:`reply`."""
    if b"_all_docs" in request.head:
        try:
            chunked_view(conn, 10_000_000)
        except OSError:
            pass
        return None
    return reply()


def test_cancelling_a_streamed_view_midway_releases_its_connection():
    """The reader stops after 10 rows of an endless view: the server sees that
    connection closed, the slot is free (max_clients=1), and the next request goes out
    on a new connection and is answered."""
    with keep_alive(endless_view) as srv:
        async def main():
            server = ct.Server(srv.url, max_clients=1)
            try:
                assert await server.version() == "9.9.9-test"
                db = server._database("db")
                got = []

                async def consume():
                    async for row in await db.view("_all_docs"):
                        got.append(row.id)

                task = asyncio.ensure_future(consume())
                await eventually(lambda: len(got) >= 10)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                assert server._transport.active == 0
                assert await asyncio.wait_for(server.version(), 5) == "9.9.9-test"  # the slot is free
                # a loop that breaks out early closes its result the same way
                async for row in await db.view("_all_docs"):
                    if row.key == 5:
                        break
                await eventually(lambda: server._transport.active == 0)
                assert await server.version() == "9.9.9-test"
            finally:
                server.close()

        arun(main())
        # version, view (cut), version on a new connection, view (cut), version on a new one
        assert srv.connections == 3
        assert [h.split(b" ")[1] for h in srv.heads] == [b"/", b"/db/_all_docs", b"/", b"/db/_all_docs", b"/"]


def test_an_abandoned_streamed_view_releases_its_connection():
    with keep_alive(endless_view) as srv:
        async def main():
            server = ct.Server(srv.url, max_clients=1)
            try:
                result = await server._database("db").view("_all_docs")
                assert server._transport.active == 1
                del result
                gc.collect()
                await eventually(lambda: server._transport.active == 0)
                assert await asyncio.wait_for(server.version(), 5) == "9.9.9-test"
            finally:
                server.close()

        arun(main())
        assert srv.connections == 2


@pytest.mark.timing  # asserts a duration: deselected by default (make test-timing)
def test_idle_timeout_on_a_kept_alive_connection():
    """The second request on a kept-alive connection gets its head and three rows, then
    silence: a ReadTimeout after about the read timeout, not retried, and the next
    request is answered on a new connection."""
    def script(request, conn):
        if b"_all_docs" in request.head:
            chunked_view(conn, 100, stop_after=3)
            return None
        return reply()

    with keep_alive(script) as srv:
        async def main():
            server = ct.Server(srv.url, timeout=0.5, retries=3)
            try:
                assert await server.version() == "9.9.9-test"
                rows = []
                t0 = time.monotonic()
                with pytest.raises(couchcore.ReadTimeout):
                    async for row in await server._database("db").view("_all_docs"):
                        rows.append(row.key)
                elapsed = time.monotonic() - t0
                assert rows == [0, 1] or rows == [0, 1, 2]  # the third row waits for its separator
                assert 0.4 < elapsed < 2.5, elapsed
                assert server._transport.active == 0
                assert await server.version() == "9.9.9-test"
            finally:
                server.close()

        arun(main())
        assert [h.split(b" ")[1] for h in srv.heads].count(b"/db/_all_docs") == 1  # a timeout is not retried
        assert srv.connections == 2


def test_a_paused_reader_is_no_idle_timeout():
    """Time the reader holds a streamed body (backpressure on) does not count towards
    the read timeout; only the server's silence does."""
    def script(request, conn):
        chunked_view(conn, 60_000)  # ~2.5 MB: more than the buffer, so the transfer pauses
        return b""

    with keep_alive(script) as srv:
        async def main():
            server = ct.Server(srv.url, timeout=0.3)
            try:
                n = 0
                async for _ in await server._database("db").view("_all_docs"):
                    n += 1
                    if n == 10:
                        await asyncio.sleep(1.0)  # the consumer is busy: > 3 read timeouts
                assert n == 60_000
            finally:
                server.close()

        arun(main())
        assert srv.connections == 1


def reset_on_second() -> ScriptedServer:
    """Keeps its connections alive; the second request on the first connection is read
    and then the connection is reset (as a server that drops an idle keep-alive
    connection just as a request arrives)."""
    def script(request, conn):
        if request.connection == 1 and sum(r.connection == 1 for r in srv.requests) == 2:
            return RESET
        return reply(b'{"ok":true,"id":"d","rev":"1-a"}' if request.method == "PUT" else
                     b'{"couchdb":"Welcome","version":"9.9.9-test"}')

    srv = ScriptedServer(script)
    return srv


def _get_op():
    resp = yield Request("GET", "/_node/_local/_config/couchdb/x")
    return resp.json()


def _put_op():
    resp = yield Request("PUT", "/db/d", json={"v": 1})
    return resp.json()


def test_a_read_on_a_reset_keep_alive_connection_is_sent_again():
    with reset_on_second() as srv:
        async def main():
            server = ct.Server(srv.url, backoff=0.01)
            try:
                assert await server.version() == "9.9.9-test"
                assert await server.version() == "9.9.9-test"  # reset, then sent again
            finally:
                server.close()

        arun(main())
        assert [h.split(b" ")[0] for h in srv.heads] == [b"GET", b"GET", b"GET"]
        assert srv.connections == 2


def test_a_write_on_a_reset_connection_is_outcome_unknown_and_sent_once():
    """The same semantics as the sync backends (tests/integration/test_transport.py
    test_a_write_on_a_reused_connection_is_sent_once): a write the server read before the connection was reset
    may have been applied: OutcomeUnknown, never sent again, also with retries."""
    srv = reset_on_write()
    try:
        async def main():
            server = ct.Server(srv.url, retries=3, backoff=0.01)
            try:
                assert await server._run(_get_op()) == "1"  # a read first, on a kept-alive connection
                with pytest.raises(couchcore.OutcomeUnknown) as info:
                    await server._run(_put_op())
                assert info.value.method == "PUT"
            finally:
                server.close()

        arun(main())
    finally:
        srv.close()
    methods = [h.split(b" ")[0] for h in srv.heads]
    assert methods.count(b"PUT") == 1, methods


def test_a_write_after_the_server_closed_an_idle_connection_goes_out_once():
    def keep_alive_then_close(request, conn):
        body = b'{"ok":true,"id":"d","rev":"1-a"}' if request.method == "PUT" else \
            b'{"couchdb":"Welcome","version":"9.9.9-test"}'
        conn.sendall(reply(body))
        time.sleep(0.1)  # idle: the server gives up on the connection
        return None  # and closes it

    with ScriptedServer(keep_alive_then_close) as srv:
        async def main():
            server = ct.Server(srv.url, retries=0)
            try:
                assert await server.version() == "9.9.9-test"
                await asyncio.sleep(0.4)
                assert await server._run(_put_op()) == {"ok": True, "id": "d", "rev": "1-a"}
                await asyncio.sleep(0.4)
                assert await server.version() == "9.9.9-test"  # a read, too, on a new connection
            finally:
                server.close()

        arun(main())
        assert [r.method for r in srv.requests] == ["GET", "PUT", "GET"] and srv.connections == 3


def test_connections_are_kept_per_event_loop_and_closed_with_the_server():
    with keep_alive() as srv:
        server = ct.Server(srv.url)
        for _ in range(3):  # one loop after another: each keeps (at most) its own connection
            async def main():
                for _ in range(5):
                    assert await server.version() == "9.9.9-test"

            arun(main())
        assert srv.connections == 3 and len(srv.heads) == 15
        server.close()
        deadline = time.monotonic() + 5
        while srv.closed_by_client < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert srv.closed_by_client == 3  # close() closed the kept-alive connections


def test_the_tornado_backend_stays_selectable(couch_url, db):
    """``backend="tornado"``: Tornado's simple client (a connection per request), e.g.
    where pycurl is not installed; ``backend="pycurl"`` is the default."""
    from couchcore.transport.curlloop import CurlLoopTransport
    from couchcore.transport.tornado import TornadoTransport

    assert isinstance(ct.Server(couch_url)._transport, CurlLoopTransport)
    assert isinstance(couchcore.aio.Server(couch_url, backend="pycurl")._transport, CurlLoopTransport)
    with pytest.raises(couchcore.InvalidOption):
        ct.Server(couch_url, backend="urllib3")

    db.save({"_id": "a"})

    async def main():
        async with TCPProxy(couch_url) as proxy:
            server = ct.Server(proxy.url, backend="tornado")
            assert isinstance(server._transport, TornadoTransport)
            try:
                for _ in range(3):
                    assert isinstance(await server.version(), str)
                rows = [row async for row in await server._database(db.name).view("_all_docs")]
                assert [row.id for row in rows] == ["a"]
            finally:
                server.close()
            assert proxy.total == 4  # no keep-alive there

    arun(main())


@pytest.mark.timing  # asserts a duration: deselected by default (make test-timing)
def test_a_whole_response_that_keeps_trickling_does_not_time_out():
    """A response read whole (not streamed) whose bytes come slower than the read
    timeout in total, but never with a pause as long as it, is no timeout; one that
    stops is, after about the read timeout."""
    body = b'{"couchdb":"Welcome","version":"9.9.9-test"}'

    def trickle(request, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 4):
            if request.n == 1 and i >= 20:
                time.sleep(30)  # the second response stops halfway
                return None
            time.sleep(0.1)
            conn.sendall(body[i:i + 4])
        return b""

    with keep_alive(trickle) as srv:
        async def main():
            server = ct.Server(srv.url, timeout=0.5, retries=0)
            try:
                t0 = time.monotonic()
                assert await server.version() == "9.9.9-test"
                assert time.monotonic() - t0 > 1.0  # twice the read timeout, in all
                t0 = time.monotonic()
                with pytest.raises(couchcore.ReadTimeout):
                    await server.version()
                assert 0.4 < time.monotonic() - t0 < 2.5
            finally:
                server.close()

        arun(main())


def test_without_pycurl_the_async_facade_falls_back_to_tornado(tmp_path):
    """Where pycurl cannot be imported the default async backend is Tornado's simple
    client, and asking for ``backend="pycurl"`` is an InvalidOption."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['pycurl'] = None\n"
        "import couchcore, couchcore.tornado as ct\n"
        "from couchcore.transport.tornado import TornadoTransport\n"
        "assert ct.default_backend() == 'tornado'\n"
        "assert isinstance(ct.Server('http://127.0.0.1:9')._transport, TornadoTransport)\n"
        "try:\n"
        "    ct.Server('http://127.0.0.1:9', backend='pycurl')\n"
        "except couchcore.InvalidOption as exc:\n"
        "    print('refused:', exc)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "refused: async backend 'pycurl' is not available" in res.stdout


def test_async_request_bodies_wait_for_their_source_and_keep_the_connection():
    """A body from an async iterator that takes its time (the upload pauses meanwhile),
    and from a file object whose ``read`` is a coroutine, arrive whole; one connection."""
    got: list[bytes] = []

    def echo(request, conn):
        got.append(request.body)
        return reply(b'{"ok":true}', "201 Created")

    class AsyncFile:
        def __init__(self, data: bytes) -> None:
            self.data = data

        async def read(self, size: int = -1) -> bytes:
            await asyncio.sleep(0.01)
            out, self.data = self.data[:size], self.data[size:]
            return out

    async def slow_parts():
        for i in range(5):
            await asyncio.sleep(0.05)
            yield b"part%d;" % i

    with keep_alive(echo) as srv:
        async def main():
            server = ct.Server(srv.url, timeout=2)
            try:
                transport = server._transport
                for body in (slow_parts(), AsyncFile(b"y" * 200_000)):
                    resp = await transport.send(Request("PUT", "/db/doc/att", body=body,
                                                        headers={"Content-Type": "application/octet-stream"}))
                    assert resp.status == 201
                assert transport.active == 0
            finally:
                server.close()

        arun(main())
    assert got == [b"part0;part1;part2;part3;part4;", b"y" * 200_000]
    assert srv.connections == 2  # writes start on fresh connections (never re-sent by libcurl)


def test_an_async_body_that_fails_is_invalid_input_and_frees_its_slot():
    def echo(request, conn):
        if request.method == "GET":
            return reply()
        return reply(b'{"ok":true}', "201 Created")

    async def failing():
        yield b"first;"
        await asyncio.sleep(0.02)
        raise OSError("the disk went away")

    async def wrong_type():
        yield b"first;"
        yield 42

    with keep_alive(echo) as srv:
        async def main():
            server = ct.Server(srv.url, max_clients=1)
            try:
                for body, match in ((failing(), "disk went away"), (wrong_type(), "bytes")):
                    with pytest.raises(couchcore.InvalidInput, match=match):
                        await server._transport.send(Request("PUT", "/db/x", body=body))
                    assert server._transport.active == 0
                assert await asyncio.wait_for(server.version(), 5) == "9.9.9-test"  # the slot is free
            finally:
                server.close()

        arun(main())


def test_one_server_used_by_loops_in_two_threads_at_once():
    """Each running loop gets its own multi handle and connections (libcurl handles are
    never shared between threads); both finish, each on one kept-alive connection."""
    with keep_alive(delay=0.002) as srv:
        server = ct.Server(srv.url)
        results: list[object] = []

        def worker() -> None:
            async def main():
                return [await server.version() for _ in range(20)]

            try:
                results.append(asyncio.run(main()))
            except Exception as exc:  # reported by the assertion below
                results.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        server.close()
        assert results == [["9.9.9-test"] * 20] * 2
        assert srv.connections == 2 and len(srv.heads) == 40


@pytest.mark.parametrize("backend", ["pycurl", "tornado"])
def test_requests_waiting_for_a_slot_when_the_server_closes_are_aborted_not_retried(backend):
    """Closing the Server aborts the requests in flight and those still waiting for a
    max_clients slot alike: a couchcore ConnectionError marked ``aborted``, not retried
    (retries=3), nothing more sent."""
    def slow(request, conn):
        time.sleep(1.0)
        return reply()

    with keep_alive(slow) as srv:
        async def main():
            server = ct.Server(srv.url, backend=backend, max_clients=2, retries=3, backoff=0.01)
            tasks = [asyncio.ensure_future(server.version()) for _ in range(8)]
            await asyncio.sleep(0.3)
            server.close()
            return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)

        results = arun(main())
        assert all(isinstance(r, couchcore.ConnectionError) and r.aborted for r in results), results
        assert "transport was closed" in str(results[-1])
        time.sleep(0.3)
        assert len(srv.heads) == 2  # only the two that had a slot were sent
