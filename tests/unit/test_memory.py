"""Iterating a large view does not grow memory: rows are parsed while the body streams in.

A replay server (a thread on 127.0.0.1) generates a CouchDB-framed ``_all_docs`` body on
the fly, chunked, one row per line as CouchDB 3 sends it, without ever holding the body.
The number of rows is taken from the database name (``rows-200000``). See
``benchmarks/stream_memory.py`` for the figures at 100k and 1M rows.
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc

import pytest

import couchcore
from couchcore.testing import RowReplayServer as ReplayServer

psutil = pytest.importorskip("psutil")

BIG = 200_000
SMALL = BIG // 10
BOUND_MB = 20


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
    """The control: the same measurement sees the rows when they are all kept (all BIG of
    them: memory the warm-up freed is reused first, and equal long strings are shared, so
    100k kept rows grew RSS by 26-34 MB only, too close to the bound on a busy machine)."""
    db = couchcore.Database(f"{replay.url}/rows-{BIG}")
    iterate(db, BIG)  # warm up
    with PeakRSS() as kept:
        rows = db.view("_all_docs").all()
        assert len(rows) == BIG
    del rows
    assert kept.growth_mb > BOUND_MB, f"keeping {BIG // 2} rows grew RSS by only {kept.growth_mb:.1f} MB"


CHANGES = 250_000


def iterate_changes(db: couchcore.Database, n: int) -> None:
    """Stream every change of a normal feed, checking order, without keeping any."""
    result = db.changes()
    count = 0
    for change in result:
        assert change["id"] == "doc%08d" % count
        count += 1
    assert count == n and result.last_seq.startswith(f"{n}-") and result.pending == 0


@pytest.mark.parametrize("backend_name", ["urllib3", "pycurl"])
def test_a_large_normal_changes_feed_does_not_grow_memory(replay, backend_name):
    """250k changes (issue 15: a whole-dict normal feed cost 230 MB): flat while streaming,
    and the control — keeping them with ``.all()`` — does grow."""
    if backend_name == "pycurl":
        pytest.importorskip("pycurl")
    small_db = couchcore.Database(f"{replay.url}/rows-{CHANGES // 10}", backend=backend_name)
    big_db = couchcore.Database(f"{replay.url}/rows-{CHANGES}", backend=backend_name)
    iterate_changes(small_db, CHANGES // 10)  # warm up
    with PeakRSS() as small:
        iterate_changes(small_db, CHANGES // 10)
    with PeakRSS() as big:
        iterate_changes(big_db, CHANGES)
    with PeakRSS() as kept:
        whole = big_db.changes()
        assert len(whole["results"]) == CHANGES
    del whole
    print(f"\n{backend_name}: {CHANGES // 10} changes +{small.growth_mb:.1f} MB, {CHANGES} changes "
          f"+{big.growth_mb:.1f} MB peak RSS streamed, +{kept.growth_mb:.1f} MB kept whole")
    assert big.growth_mb < BOUND_MB, f"{CHANGES} changes grew RSS by {big.growth_mb:.1f} MB"
    assert big.growth_mb < small.growth_mb + BOUND_MB / 2
    assert kept.growth_mb > BOUND_MB, f"keeping {CHANGES} changes grew RSS by only {kept.growth_mb:.1f} MB"
