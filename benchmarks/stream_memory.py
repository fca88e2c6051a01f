"""Streaming a large view: rows/s and peak memory for 100k and 1M rows.

A replay server (a thread of this process, 127.0.0.1) generates a CouchDB 3-framed
``_all_docs`` body on the fly (chunked, one row per line, never held in memory). Each
measurement runs in a fresh subprocess that iterates ``db.view("_all_docs")`` through
couchcore and reports rows/s and its RSS: at start (after imports), the sampled peak
while iterating, and ``ru_maxrss``. A materialising run (``.all()``) is the reference
for what keeping the rows would cost.

    .venv/bin/python benchmarks/stream_memory.py [--rows 100000,1000000] [--backends urllib3,pycurl]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from couchcore.testing import RowReplayServer as ReplayServer  # noqa: E402



# -- the replay server (parent process) -------------------------------------------------------


# -- one measurement (child process) ------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(url: str, rows: int, backend: str, mode: str) -> None:
    import couchcore
    import couchcore._rows

    db = couchcore.Database(f"{url}/rows-{rows}", backend=backend)
    list(couchcore.Database(f"{url}/rows-10", backend=backend).view("_all_docs"))  # imports, pool
    base = peak = _rss()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    count = 0
    if mode == "stream":
        for row in db.view("_all_docs"):
            count += 1
    else:
        count = len(db.view("_all_docs").all())
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    peak = max(peak, _rss())
    assert count == rows, (count, rows)
    print(json.dumps({
        "rows": rows, "backend": backend, "mode": mode, "seconds": seconds, "rows_per_s": rows / seconds,
        "rss_base_mb": base / 1e6, "rss_peak_mb": peak / 1e6, "growth_mb": (peak - base) / 1e6,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
        "parser": couchcore._rows.BACKEND,
    }))


# -- driver ---------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="100000,1000000")
    ap.add_argument("--backends", default="urllib3,pycurl")
    ap.add_argument("--no-reference", action="store_true", help="skip the materialising .all() run")
    ap.add_argument("--child", nargs=4, metavar=("URL", "ROWS", "BACKEND", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        url, rows, backend, mode = args.child
        child(url, int(rows), backend, mode)
        return

    server = ReplayServer()
    sizes = [int(x) for x in args.rows.split(",") if x]
    backends = [b for b in args.backends.split(",") if b]
    runs = [(n, b, "stream") for b in backends for n in sizes]
    if not args.no_reference:
        runs.append((min(sizes), backends[0], "all"))
    print(f"{'backend':8} {'mode':7} {'rows':>9} {'rows/s':>11} {'seconds':>8} {'RSS start':>10} "
          f"{'RSS peak':>9} {'growth':>8} {'maxrss':>8}  parser")
    for n, backend, mode in runs:
        proc = subprocess.run([sys.executable, __file__, "--child", server.url, str(n), backend, mode],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["?"])[-1]
            print(f"{backend:8} {mode:7} {n:>9,} failed: {reason}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{backend:8} {mode:7} {n:>9,} {r['rows_per_s']:>11,.0f} {r['seconds']:>8.2f} "
              f"{r['rss_base_mb']:>8.1f}MB {r['rss_peak_mb']:>7.1f}MB {r['growth_mb']:>+6.1f}MB "
              f"{r['ru_maxrss_mb']:>6.1f}MB  {r['parser']}")


if __name__ == "__main__":
    main()
