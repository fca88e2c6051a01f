"""Bulk loading and concurrent gets: backends and concurrency levels compared in one run.

Runs against ``benchmarks/fake_couch.py`` (started here on a free loopback port), so the
figures measure the client, not a server; ratios are against the urllib3 backend with
one request in flight, measured in the same run. Each scenario runs in its own
subprocess so its peak RSS is its own.

    .venv/bin/python benchmarks/bulk_load.py [--docs 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from couchcore.testing import free_port  # noqa: E402


def scenario(url: str, kind: str, backend: str, concurrency: int, docs: int) -> dict:
    import resource

    import couchcore
    from couchcore.bulk import load

    db = couchcore.Server(url, backend=backend)._database("bench")
    start = time.perf_counter()
    if kind == "load":
        def generate():
            for i in range(docs):
                yield {"_id": f"doc{i:08d}", "type": "event", "value": i, "tags": ["a", "b", "c"]}

        report = load(db, generate(), batch_size=1000, concurrency=concurrency)
        assert report.written == docs and not report.failed
        done = report.written
    else:
        ids = [f"doc{i:08d}" for i in range(docs)]
        got = db.get_many(ids, concurrency=concurrency)
        assert len(got) == docs
        done = docs
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"per_s": done / seconds, "seconds": seconds, "peak_mb": peak_mb}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200_000, help="documents to load (default 200000)")
    parser.add_argument("--gets", type=int, default=5_000, help="documents to get one by one (default 5000)")
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        url, kind, backend, conc, n = json.loads(args.scenario)
        print(json.dumps(scenario(url, kind, backend, conc, n)))
        return 0

    port = free_port()
    fake = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_couch.py"), str(port)])
    try:
        time.sleep(1.0)
        url = f"http://127.0.0.1:{port}"
        rows = []
        plans = [("load", args.docs), ("load", args.docs * 5), ("get", args.gets)]
        for kind, n in plans:
            base = None
            for backend, conc in [("urllib3", 1), ("urllib3", 4), ("pycurl", 1), ("pycurl", 4), ("pycurl", 16)]:
                if kind == "load" and n > args.docs and (backend, conc) not in (("urllib3", 1), ("pycurl", 4)):
                    continue  # the large load only shows that memory stays flat
                out = subprocess.run([sys.executable, __file__, "--scenario",
                                      json.dumps([url, kind, backend, conc, n])],
                                     capture_output=True, text=True, check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                if base is None:
                    base = result["per_s"]
                rows.append((kind, n, backend, conc, result["per_s"], result["per_s"] / base, result["peak_mb"]))
                print(f"{kind:<5} {n:>9,} {backend:<8} x{conc:<3} {result['per_s']:>10,.0f}/s  "
                      f"{result['per_s'] / base:5.2f}x  peak RSS {result['peak_mb']:6.1f} MB", flush=True)
    finally:
        fake.terminate()
        fake.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
