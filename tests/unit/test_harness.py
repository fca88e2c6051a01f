"""The test suite's own loopback servers (couchcore.testing): what the tests rely on them for."""

from __future__ import annotations

import socket
import time

import pytest

import couchcore
from couchcore.testing import FaultyProxy, ScriptedServer


class SlowResetProxy(FaultyProxy):
    """A FaultyProxy whose relaying threads are slow to reset a connection, as they are
    on a loaded machine (the thread waits for a core)."""

    @staticmethod
    def _rst(conn: socket.socket) -> None:
        time.sleep(0.3)
        FaultyProxy._rst(conn)


def _kept_alive_client(proxy: FaultyProxy) -> socket.socket:
    """A raw client connection through ``proxy`` that has had one whole exchange and is kept alive."""
    client = socket.create_connection(("127.0.0.1", proxy.port))
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    client.settimeout(5)
    answer = b""
    while b'{"ok":true}' not in answer:
        answer += client.recv(65536)
    return client


def test_stop_forwarding_returns_once_every_open_connection_is_reset():
    # A node that went down has no connections left: a client's next request finds its kept-alive
    # connection closed and connects anew (refused: a ConnectError, which fails over to another node).
    # stop_forwarding returned before the relaying threads had reset the connections, so a client
    # sent its next request on a connection that was reset after it was sent (urllib3, the
    # downprobe of the 3-node cluster test: 117 of 200 requests right after stop_forwarding)
    upstream = ScriptedServer()
    proxy = SlowResetProxy(upstream.url)
    try:
        client = _kept_alive_client(proxy)
        proxy.stop_forwarding()
        client.setblocking(False)
        with pytest.raises(ConnectionResetError):
            client.recv(1)  # reset already (before: BlockingIOError, still open)
        client.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5).close()
        proxy.resume_forwarding()
        client = _kept_alive_client(proxy)
        client.close()
    finally:
        proxy.close()
        upstream.close()


@pytest.mark.parametrize("backend", ["urllib3", "pycurl"])
def test_a_request_after_stop_forwarding_is_refused_not_reset(backend):
    """Through couchcore: the request after stop_forwarding is a ConnectError (nothing sent)."""
    if backend == "pycurl":
        pytest.importorskip("pycurl")
    upstream = ScriptedServer()
    proxy = SlowResetProxy(upstream.url)
    server = couchcore.Server(proxy.url, retries=0, backend=backend)
    try:
        server._run(_get_root())  # a kept-alive connection through the proxy
        proxy.stop_forwarding()
        with pytest.raises(couchcore.ConnectError):
            server._run(_get_root())
    finally:
        server.close()
        proxy.close()
        upstream.close()


def _get_root():
    from couchcore.protocol.messages import Request

    response = yield Request("GET", "/")
    return response.raise_for_status().json()
