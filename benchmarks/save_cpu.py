"""Client CPU of ``db.save(list)`` against couchdb-python's ``db.update(list)``, and the codec.

    python benchmarks/save_cpu.py [--url URL] [--docs 20000] [--batch 1000] [--rounds 3] [--baseline DIR]
    python benchmarks/save_cpu.py --codec-only

Issue 7's ``db.save`` target: couchcore's client CPU per document at most half of
couchdb-python's, same server, same run. Each contender runs in its own fresh interpreter
(``--child``) against its own fresh database and writes the same ~250-byte documents as
``benchmarks/bulk.py`` (same generator, built while the clock runs), in batches of
``--batch``; CPU is user+system of the child (``resource.getrusage``) around the writes
only (imports, connection set-up and the database's creation are outside). The cost of
generating the documents is measured on its own and subtracted in the "net" column. Each
contender runs ``--rounds`` times, interleaved; the table shows the median.

Contenders: ``save urllib3``/``save pycurl`` (documents with ``_id``, as bulk.py),
``save urllib3 (no _id)`` (ids from the server's ``_uuids``, cached in batches), and
couchdb-python ``db.update`` (``pip install couchcore[bench]``; ``n/a`` without it).
``--baseline DIR`` adds the two ``save`` rows once more for the couchcore checkout in
``DIR`` (e.g. ``git worktree add /tmp/base <commit>``), imported from there in the same
interpreter and run interleaved with the others: before/after in one run.

The codec part (``--codec-only`` runs just that) times ``codec.dumps``/``codec.loads`` of
one generated document on each engine against bare ``orjson.dumps``/``orjson.loads``
(best of several ``timeit`` repeats, µs per call).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import timeit
import uuid
from pathlib import Path
from typing import Any, Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# a child measuring another checkout of couchcore (--baseline) imports it from there
TREE = os.environ.get("SAVE_CPU_TREE") or str(ROOT)
if TREE not in sys.path:
    sys.path.insert(0, TREE)

NOTE = "lorem ipsum dolor sit amet, consectetur adipiscing elit sed do eiusmod tempor " * 2


def make_doc(i: int, with_id: bool = True) -> dict:
    """Document ``i``: ~250 bytes of JSON (the generator of benchmarks/bulk.py)."""
    doc = {
        "_id": f"doc-{i:09d}",
        "type": "order",
        "customer": f"customer-{i % 9973:05d}",
        "amount": round((i % 100000) * 0.37, 2),
        "items": [i % 7, i % 11, i % 13],
        "paid": i % 3 == 0,
        "note": NOTE[: 60 + i % 40],
    }
    if not with_id:
        del doc["_id"]
    return doc


def batches(n: int, size: int, with_id: bool = True) -> Iterator[list[dict]]:
    for start in range(0, n, size):
        yield [make_doc(i, with_id) for i in range(start, min(n, start + size))]


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_child(spec: dict) -> dict:
    """One contender in this fresh process: ``{"docs", "cpu", "wall"}`` or ``{"error"}``."""
    kind, url, n, batch = spec["kind"], spec["url"], spec["docs"], spec["batch"]
    dbname = spec["db"]
    import couchcore

    out_tree = str(Path(couchcore.__file__).resolve().parent.parent)
    if out_tree != str(Path(TREE).resolve()):
        return {"error": f"imported couchcore from {out_tree}, not {TREE}"}
    admin = couchcore.Server(url)
    work: Any
    if kind == "generate":
        def work() -> None:
            for b in batches(n, batch):
                for _ in b:
                    pass
    elif kind == "save":
        admin.create(dbname)
        db = couchcore.Database(f"{url.rstrip('/')}/{dbname}", backend=spec["backend"])
        with_id = spec.get("with_id", True)
        db.info()  # connect outside the clock

        def work() -> None:
            for b in batches(n, batch, with_id):
                res = db.save(b)
                if res.pending:
                    raise SystemExit(f"{len(res.pending)} documents not written")
                if b[-1].get("_rev") is None:
                    raise SystemExit("documents not updated in place")
    elif kind == "couchdb":
        try:
            import couchdb
        except ImportError:
            return {"error": "couchdb-python not installed"}
        admin.create(dbname)
        db = couchdb.Server(url)[dbname]

        def work() -> None:
            for b in batches(n, batch):
                db.update(b)
    else:
        raise SystemExit(f"unknown contender {kind}")
    cpu0, t0 = _cpu(), time.perf_counter()
    work()
    cpu, wall = _cpu() - cpu0, time.perf_counter() - t0
    out = {"docs": n, "cpu": cpu, "wall": wall}
    if kind != "generate":
        count = admin.db(dbname).info()["doc_count"]
        admin.delete(dbname)
        if count != n:
            out["error"] = f"wrote {count} documents, expected {n}"
    return out


def spawn(spec: dict) -> dict:
    env = {**os.environ, "SAVE_CPU_TREE": spec.get("tree") or str(ROOT)}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
                          capture_output=True, text=True, timeout=3600, env=env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        from couchcore._urls import redact_url

        return {"error": redact_url((proc.stderr.strip().splitlines() or ["no output"])[-1])}
    return json.loads(lines[-1])


def codec_table() -> list[str]:
    from couchcore import codec

    doc = make_doc(12345)
    rows = ["| operation | µs per call |", "|---|---|"]

    def best(fn: Any, number: int = 20000) -> float:
        return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6

    try:
        import orjson
    except ImportError:
        orjson = None
    size = len(codec.dumps(doc))
    if orjson is not None:
        rows.append(f"| bare `orjson.dumps` ({size}-byte doc) | {best(lambda: orjson.dumps(doc)):.2f} |")
    previous = codec.ENGINE
    try:
        for engine in codec.ENGINES:
            codec.use(engine)
            rows.append(f"| `codec.dumps` ({engine}) | {best(lambda: codec.dumps(doc)):.2f} |")
        with_none = {**doc, "parent": None}
        for engine in codec.ENGINES:
            codec.use(engine)
            rows.append(f"| `codec.dumps` ({engine}), a doc holding `None` | {best(lambda: codec.dumps(with_none)):.2f} |")
        batch = [make_doc(i) for i in range(1000)]
        if orjson is not None:
            rows.append(f"| bare `orjson.dumps` of a 1000-doc list, per doc | "
                        f"{best(lambda: orjson.dumps(batch), 20) / 1000:.2f} |")
        for engine in codec.ENGINES:
            codec.use(engine)
            if hasattr(codec, "dumps_array"):
                rows.append(f"| `codec.dumps_array` ({engine}) of a 1000-doc list, per doc | "
                            f"{best(lambda: codec.dumps_array(batch), 20) / 1000:.2f} |")
            rows.append(f"| `[codec.dumps(d) for d in batch]` ({engine}), per doc | "
                        f"{best(lambda: [codec.dumps(d) for d in batch], 20) / 1000:.2f} |")
        raw = codec.dumps(doc)
        if orjson is not None:
            rows.append(f"| bare `orjson.loads` | {best(lambda: orjson.loads(raw)):.2f} |")
        for engine in codec.ENGINES:
            codec.use(engine)
            rows.append(f"| `codec.loads` ({engine}) | {best(lambda: codec.loads(raw)):.2f} |")
    finally:
        codec.use(previous)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("COUCHDB_URL"), help="server URL (default: $COUCHDB_URL)")
    ap.add_argument("--docs", type=int, default=20_000, help="documents per contender per round (20000)")
    ap.add_argument("--batch", type=int, default=1000, help="documents per save/update call (1000)")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each contender, interleaved (3)")
    ap.add_argument("--codec-only", action="store_true", help="only the codec micro-benchmark")
    ap.add_argument("--baseline", help="another couchcore checkout to measure db.save of as well (before/after)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return 0
    print("\n".join(codec_table()), flush=True)
    if args.codec_only:
        return 0
    if not args.url:
        raise SystemExit("give --url or COUCHDB_URL (an Apache CouchDB server)")
    import couchcore
    from couchcore import codec

    welcome = couchcore.Server(args.url).info()
    run_id = uuid.uuid4().hex[:8]
    contenders = {
        "generate": {"kind": "generate"},
        "couchcore `db.save(batch)` (urllib3)": {"kind": "save", "backend": "urllib3"},
        "couchcore `db.save(batch)` (pycurl)": {"kind": "save", "backend": "pycurl"},
        "couchcore `db.save(batch)` (urllib3, no `_id`)": {"kind": "save", "backend": "urllib3", "with_id": False},
        "couchdb-python `db.update(batch)`": {"kind": "couchdb"},
    }
    if args.baseline:
        tree = str(Path(args.baseline).resolve())
        contenders["baseline `db.save(batch)` (urllib3)"] = {"kind": "save", "backend": "urllib3", "tree": tree}
        contenders["baseline `db.save(batch)` (pycurl)"] = {"kind": "save", "backend": "pycurl", "tree": tree}
    results: dict[str, list[dict]] = {label: [] for label in contenders}
    for r in range(args.rounds):
        for i, (label, spec) in enumerate(contenders.items()):
            m = spawn({**spec, "url": args.url, "docs": args.docs, "batch": args.batch,
                       "db": f"bench-save-{run_id}-{r}-{i}"})
            results[label].append(m)
    print(f"\n{args.docs:,} documents x {args.rounds} rounds per contender, batches of {args.batch}, "
          f"Apache CouchDB {welcome.get('version')}, codec {codec.ENGINE}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f}\n")

    def us(m: dict) -> float:
        return m["cpu"] / m["docs"] * 1e6

    gen = statistics.median(us(m) for m in results["generate"])
    peer = None
    errors = [m for m in results["couchdb-python `db.update(batch)`"] if "error" in m]
    if not errors:
        peer = statistics.median(us(m) for m in results["couchdb-python `db.update(batch)`"]) - gen
    print("| contender | docs/s | client CPU µs/doc | net of generating | × couchdb-python (net) | runs (µs/doc) |")
    print("|---|---|---|---|---|---|")
    for label, ms in results.items():
        bad = [m for m in ms if "error" in m]
        if bad:
            print(f"| {label} | n/a | | | | {bad[0]['error'][:80]} |")
            continue
        cpu = statistics.median(us(m) for m in ms)
        rate = statistics.median(m["docs"] / m["wall"] for m in ms)
        net = cpu - gen if label != "generate" else cpu
        ratio = f"{net / peer:.2f}×" if peer and label != "generate" else ""
        runs = ", ".join(f"{us(m):.1f}" for m in ms)
        print(f"| {label} | {rate / 1000:,.1f}k | {cpu:.2f} | {net:.2f} | {ratio} | {runs} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
