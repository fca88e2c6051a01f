"""``Database(url_or_name, server=server)`` binds to the given Server as it is: no request, and
the same Server for a sync or an async one (a raw listening socket counts connections; no mocks)."""

from __future__ import annotations

import socket
import threading

import pytest

import couchcore
import couchcore.aio


@pytest.fixture
def empty_server():
    """A raw HTTP server with no databases: every request gets ``[]`` (GET /_all_dbs)."""
    sock = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(65536)
                seen.append(data.split(b"\r\n", 1)[0])
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                             b"Connection: close\r\n\r\n[]")

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", seen
    sock.close()


@pytest.mark.parametrize("form", ["name", "url"])
def test_sync_database_keeps_the_given_server_without_a_request(empty_server, form):
    """bool(server) is len(server) (GET /_all_dbs): 'server or Server(...)' sent a request and,
    on a server with no databases, dropped the given Server (its auth and options) for a new one."""
    url, seen = empty_server
    server = couchcore.Server(url, auth=("admin", "secret"))
    db = couchcore.Database("db" if form == "name" else url + "/db", server=server)
    assert db.server is server and db.name == "db"
    assert seen == []


@pytest.mark.parametrize("form", ["name", "url"])
def test_async_database_accepts_an_async_server(empty_server, form):
    """An async Server's len() is a TypeError: Database(name, server=async_server) raised it."""
    url, seen = empty_server
    server = couchcore.aio.Server(url, auth=("admin", "secret"))
    db = couchcore.aio.Database("db" if form == "name" else url + "/db", server=server)
    assert db.server is server and db.name == "db"
    assert seen == []
