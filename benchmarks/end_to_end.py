"""End to end: ``db.view()`` over loopback versus merely downloading the same bytes.

A replay server (a separate process, 127.0.0.1) serves a 1M-row view body built from
the rows of a real Apache CouchDB 3.5 response (``view_10k_rows.body`` from the shared
fixtures, repeated; a generated body of the same framing when the fixtures are absent),
chunked, as CouchDB sends it. Each client run is a fresh subprocess; its time and peak
RSS are measured. The baseline is the same backend downloading the body and discarding
it (the transfer limit), measured in the same run.

    .venv/bin/python benchmarks/end_to_end.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

FIXTURE = Path(os.environ.get("COUCHCORE_FIXTURES", HERE.parent / "tests" / "data" / "couchdb-3.5.0"))


def build_body(rows: int) -> bytes:
    """A CouchDB-framed view body of ``rows`` rows (recorded rows, repeated)."""
    source = FIXTURE / "view_10k_rows.body"
    if source.exists():
        lines = source.read_bytes().split(b"\r\n")
        recorded = [line.rstrip(b",") for line in lines if line.startswith(b'{"id"')]
    else:
        recorded = [b'{"id":"b%05d","key":%d,"value":null}' % (i, i) for i in range(10_000)]
    picked = (recorded[i % len(recorded)] for i in range(rows))
    return b'{"total_rows":%d,"offset":0,"rows":[\r\n' % rows + b",\r\n".join(picked) + b"\r\n]}\n"


def serve(port: int, rows: int) -> None:
    body = build_body(rows)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(8)
    print("ready", flush=True)
    step = 64 * 1024
    while True:
        conn, _ = sock.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    break
                head += data
            if not head:
                continue
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            view = memoryview(body)
            for i in range(0, len(body), step):
                part = view[i:i + step]
                conn.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
            conn.sendall(b"0\r\n\r\n")


def client(url: str, backend: str, mode: str) -> dict:
    import couchcore
    from couchcore.drivers import run
    from couchcore.protocol.messages import Request

    server = couchcore.Server(url, backend=backend)
    db = server._database("replay")
    start = time.perf_counter()
    count = 0
    if mode == "download":
        resp = run(_download(Request), server._transport)
        for chunk in resp.stream:
            count += len(chunk)
    else:
        for _ in db.view("_all_docs"):
            count += 1
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "count": count,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "parser": couchcore.rows.BACKEND}


def _download(Request):
    resp = yield Request("GET", "/replay/_all_docs", stream=True)
    return resp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per contender; the best is kept")
    ap.add_argument("--backends", default="urllib3,pycurl")
    ap.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0
    if args.client:
        print(json.dumps(client(*args.client)))
        return 0

    from couchcore.testing import free_port

    port = free_port()
    srv = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(args.rows)],
                           stdout=subprocess.PIPE, text=True)
    try:
        srv.stdout.readline()  # "ready" once the body is built
        url = f"http://127.0.0.1:{port}"
        print(f"{args.rows:,}-row view body over loopback, best of {args.repeat}")
        print(f"{'backend':<8} {'mode':<9} {'seconds':>8} {'rows/s':>11} {'vs download':>12} {'peak RSS':>9}")
        for backend in args.backends.split(","):
            best: dict[str, dict] = {}
            for _ in range(args.repeat):
                for mode in ("download", "view"):
                    out = subprocess.run([sys.executable, __file__, "--client", url, backend, mode],
                                         capture_output=True, text=True, check=True)
                    result = json.loads(out.stdout)
                    if mode not in best or result["seconds"] < best[mode]["seconds"]:
                        best[mode] = result
            base = best["download"]["seconds"]
            for mode in ("download", "view"):
                r = best[mode]
                rate = f"{args.rows / r['seconds']:,.0f}" if mode == "view" else "-"
                print(f"{backend:<8} {mode:<9} {r['seconds']:>8.3f} {rate:>11} {r['seconds'] / base:>11.2f}x "
                      f"{r['peak_mb']:>7.1f}MB" + (f"  ({r['parser']} parser)" if mode == "view" else ""))
            assert best["view"]["count"] == args.rows
    finally:
        srv.terminate()
        srv.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
