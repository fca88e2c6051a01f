"""Iterating a large view does not grow memory: rows are parsed while the body streams in.

A replay server (a thread on 127.0.0.1) generates a CouchDB-framed ``_all_docs`` body on
the fly, chunked, one row per line as CouchDB 3 sends it, without ever holding the body.
The number of rows is taken from the database name (``rows-200000``). See
``benchmarks/stream_memory.py`` for the figures at 100k and 1M rows.
"""

from __future__ import annotations

import gc
import re
import socket
import threading
import time
import tracemalloc

import pytest

import couchcore

psutil = pytest.importorskip("psutil")

ROW = b'{"id":"doc%08d","key":"doc%08d","value":{"rev":"1-967a00dff5e02add41819138abb3284d"}}'
BIG = 200_000
SMALL = BIG // 10
BOUND_MB = 20


class ReplayServer:
    """Serves ``GET /rows-N/_all_docs`` as a generated, chunked CouchDB body of N rows.

    ``sent`` is the number of body bytes written so far on the latest connection and
    ``total`` its final size once done.
    """

    def __init__(self, rows_per_chunk: int = 1000) -> None:
        self.rows_per_chunk = rows_per_chunk
        self.sent = 0
        self.done = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.recv(65536)
                    if not data:
                        return
                    head += data
                match = re.match(rb"GET /rows-(\d+)/_all_docs[ ?]", head)
                if not match:
                    body = b'{"error":"not_found","reason":"missing"}'
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                    return
                self.stream(conn, int(match.group(1)))
        except OSError:
            pass

    def stream(self, conn: socket.socket, n: int) -> None:
        self.sent = 0
        self.done.clear()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")

        def chunk(data: bytes) -> None:
            conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            self.sent += len(data)

        chunk(b'{"total_rows":%d,"offset":0,"rows":[\r\n' % n)
        step = self.rows_per_chunk
        for start in range(0, n, step):
            stop = min(n, start + step)
            block = b",\r\n".join([ROW % (i, i) for i in range(start, stop)])
            chunk(block + (b",\r\n" if stop < n else b""))
        chunk(b"\r\n]}\n")
        conn.sendall(b"0\r\n\r\n")
        self.done.set()

    @staticmethod
    def body_size(n: int) -> int:
        row = len(ROW % (0, 0))
        return len(b'{"total_rows":%d,"offset":0,"rows":[\r\n' % n) + n * row + (n - 1) * 3 + len(b"\r\n]}\n")

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class PeakRSS:
    """Samples the process RSS in a thread; ``growth`` is peak minus the starting value."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.proc = psutil.Process()

    def __enter__(self) -> "PeakRSS":
        gc.collect()
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self.peak = max(self.peak, self.proc.memory_info().rss)
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 1e6


@pytest.fixture(scope="module")
def replay():
    server = ReplayServer()
    yield server
    server.close()


def iterate(db: couchcore.Database, n: int, on_first=None) -> None:
    """Stream every row, checking order and content without keeping any."""
    result = db.view("_all_docs")
    count = 0
    for row in result:
        if count == 0 and on_first is not None:
            on_first()
        assert row.id == "doc%08d" % count
        count += 1
    assert count == n and result.total_rows == n


@pytest.mark.parametrize("backend_name", ["urllib3", "pycurl"])
def test_iterating_a_large_view_does_not_grow_memory(replay, backend_name):
    if backend_name == "pycurl":
        pytest.importorskip("pycurl")
    small_db = couchcore.Database(f"{replay.url}/rows-{SMALL}", backend=backend_name)
    big_db = couchcore.Database(f"{replay.url}/rows-{BIG}", backend=backend_name)
    iterate(small_db, SMALL)  # warm up: imports, connection pool, parser caches

    with PeakRSS() as small:
        iterate(small_db, SMALL)
    sent_at_first_row = []
    t0 = time.monotonic()
    with PeakRSS() as big:
        iterate(big_db, BIG, on_first=lambda: sent_at_first_row.append(replay.sent))
    elapsed = time.monotonic() - t0

    print(f"\n{backend_name}: {SMALL} rows +{small.growth_mb:.1f} MB, {BIG} rows +{big.growth_mb:.1f} MB "
          f"peak RSS, {BIG / elapsed:,.0f} rows/s")
    assert big.growth_mb < BOUND_MB, f"{BIG} rows grew RSS by {big.growth_mb:.1f} MB"
    assert big.growth_mb < small.growth_mb + BOUND_MB / 2
    # rows arrived while the server was still generating the body (it was not buffered whole)
    total = replay.body_size(BIG)
    assert sent_at_first_row and sent_at_first_row[0] < total / 2, (sent_at_first_row, total)


def test_streaming_python_heap_stays_small(replay):
    """tracemalloc's peak of Python allocations while 100k rows stream through (sync, urllib3)."""
    n = 100_000
    db = couchcore.Database(f"{replay.url}/rows-{n}")
    iterate(db, n)  # warm up
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        iterate(db, n)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (peak - base) / 1e6 < 8, f"peak Python heap grew {(peak - base) / 1e6:.1f} MB"


def test_materialising_does_grow_memory(replay):
    """The control: the same measurement sees the rows when they are all kept."""
    db = couchcore.Database(f"{replay.url}/rows-{BIG // 2}")
    iterate(db, BIG // 2)  # warm up
    with PeakRSS() as kept:
        rows = db.view("_all_docs").all()
        assert len(rows) == BIG // 2
    del rows
    assert kept.growth_mb > BOUND_MB, f"keeping {BIG // 2} rows grew RSS by only {kept.growth_mb:.1f} MB"
