"""A replay server for the client-only view scenario (run as its own process).

It serves ``bench/by_user`` of database ``replay-N`` as the exact bytes Apache CouchDB 3.5
sends for that view over N benchmark documents (framing and chunking as recorded in
``fixtures/couchdb-3.5.0``; see :func:`benchmarks.data.view_wire_body`), built once in memory
and written with ``sendall``, so what is measured is the client. It also answers the few
requests clients make around a view read (``GET /``, ``/_session``, ``HEAD``/``GET /db``,
the design document), with keep-alive.

    python -m benchmarks.replay 10000 100000 1000000    # prints {"port": P} when ready
"""

from __future__ import annotations

import json
import re
import socket
import sys
from typing import Any

from couchcore.testing import LoopbackServer

from . import data

HEADERS = (b"Cache-Control: must-revalidate\r\nContent-Type: application/json\r\n"
           b"Server: CouchDB/3.5.0 (Erlang OTP/25)\r\n")
WELCOME = (b'{"couchdb":"Welcome","version":"3.5.0","git_sha":"replay","uuid":"replay",'
           b'"features":[],"vendor":{"name":"couchcore benchmarks replay server"}}')


class ViewReplayServer(LoopbackServer):
    """Serves prebuilt view bodies for ``/replay-N/_design/bench/_view/by_user``."""

    def __init__(self, sizes: list[int]) -> None:
        self.bodies = {n: data.view_wire_body(n) for n in sizes}
        super().__init__()

    def respond(self, conn: socket.socket, status: str, body: bytes, head_only: bool = False,
                extra: bytes = b"") -> None:
        conn.sendall(b"HTTP/1.1 %s\r\n%s%sContent-Length: %d\r\n\r\n%s"
                     % (status.encode(), HEADERS, extra, len(body), b"" if head_only else body))

    def handle(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            method, target, _ = lines[0].split(b" ", 2)
            length = 0
            chunked = False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
                elif name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                buf = self._drain_chunked(conn, buf)
            else:
                while len(buf) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                buf = buf[length:]
            self.route(conn, method.decode(), target.decode())

    @staticmethod
    def _drain_chunked(conn: socket.socket, buf: bytes) -> bytes:
        while True:
            while b"\r\n" not in buf:
                buf += conn.recv(65536)
            size_line, _, buf = buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(buf) < size + 2:
                buf += conn.recv(65536)
            buf = buf[size + 2:]
            if size == 0:
                return buf

    def route(self, conn: socket.socket, method: str, target: str) -> None:
        path = target.split("?", 1)[0]
        head_only = method == "HEAD"
        if path in ("", "/"):
            return self.respond(conn, "200 OK", WELCOME, head_only)
        if path.startswith("/_session"):
            return self.respond(conn, "200 OK", b'{"ok":true,"name":"admin","roles":["_admin"],'
                                b'"userCtx":{"name":"admin","roles":["_admin"]},"info":{}}', head_only,
                                b"Set-Cookie: AuthSession=cmVwbGF5; Version=1; Path=/; HttpOnly\r\n")
        match = re.match(r"^/replay-(\d+)(/.*)?$", path)
        if not match or int(match.group(1)) not in self.bodies:
            return self.respond(conn, "404 Object Not Found", b'{"error":"not_found","reason":"missing"}', head_only)
        n, rest = int(match.group(1)), match.group(2) or ""
        if rest in ("", "/"):
            info: dict[str, Any] = {"db_name": f"replay-{n}", "doc_count": n + 1, "doc_del_count": 0,
                                    "update_seq": str(n + 1), "purge_seq": "0", "compact_running": False,
                                    "sizes": {"active": 0, "external": 0, "file": 0}, "instance_start_time": "0"}
            return self.respond(conn, "200 OK", json.dumps(info).encode(), head_only)
        if rest in ("/_design/bench", "/_design%2Fbench"):
            ddoc = dict(data.design_doc(), _rev="1-00000000000000000000000000000000")
            return self.respond(conn, "200 OK", json.dumps(ddoc).encode(), head_only)
        if rest == "/_design/bench/_view/by_user":
            head = b"HTTP/1.1 200 OK\r\n%sTransfer-Encoding: chunked\r\n\r\n" % HEADERS
            if head_only:
                conn.sendall(head)
                return None
            body = self.bodies[n]
            step = 1 << 20
            conn.sendall(head + body[:step])
            view = memoryview(body)
            for i in range(step, len(view), step):
                conn.sendall(view[i:i + step])
            return None
        return self.respond(conn, "404 Object Not Found", b'{"error":"not_found","reason":"missing"}', head_only)


def main(argv: list[str]) -> int:
    server = ViewReplayServer([int(a) for a in argv])
    print(json.dumps({"port": server.port}), flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the harness reports it
        return 130
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
