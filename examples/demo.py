"""couchcore demo: load 20,000 documents, build a view, stream it back, clean up.

Runs against $COUCHDB_URL when set; otherwise starts the repository's PouchDB Server
on a free loopback port for the duration of the demo.

    make demo                 # or: .venv/bin/python examples/demo.py [--docs N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid

from tqdm import tqdm

import couchcore
from couchcore.testing import couch_url

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()


def generate(n: int, rng: random.Random):
    for i in range(n):
        yield {
            "_id": f"doc-{i:06d}",
            "type": "event",
            "kind": rng.choice(WORDS),
            "value": rng.randint(0, 1000),
            "tags": rng.sample(WORDS, 3),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000, help="documents to load (default 20000)")
    parser.add_argument("--batch", type=int, default=1_000, help="documents per _bulk_docs request")
    args = parser.parse_args(argv)

    with couch_url() as url:
        server = couchcore.Server(url)
        print(f"server: {server.url}  version {server.version()}  row parser: {couchcore.ROW_PARSER}")
        name = f"couchcore-demo-{uuid.uuid4().hex[:8]}"
        db = server.create(name)
        try:
            rng = random.Random(42)
            docs = list(generate(args.docs, rng))
            t0 = time.perf_counter()
            with tqdm(total=len(docs), unit="docs", desc="loading") as bar:
                for start in range(0, len(docs), args.batch):
                    batch = docs[start:start + args.batch]
                    result = db.save(batch)
                    if result.pending:
                        print(f"{len(result.pending)} documents failed: {list(result.pending.items())[:3]}")
                        return 1
                    bar.update(len(batch))
            load_s = time.perf_counter() - t0
            print(f"loaded {len(docs):,} docs in {load_s:.2f}s: {len(docs) / load_s:,.0f} docs/s")

            db.save({"_id": "_design/demo", "views": {
                "by_kind": {"map": "function(doc){ if (doc.type === 'event') emit([doc.kind, doc.value], 1); }",
                            "reduce": "_count"}}})
            t0 = time.perf_counter()
            db.view("demo/by_kind", limit=1, reduce=False).all()  # builds the index
            print(f"view index built in {time.perf_counter() - t0:.2f}s")

            t0 = time.perf_counter()
            count = 0
            for row in db.view("demo/by_kind", reduce=False):
                count += 1
            stream_s = time.perf_counter() - t0
            print(f"streamed {count:,} view rows in {stream_s:.2f}s: {count / stream_s:,.0f} rows/s")

            print("top kinds:")
            per_kind = sorted(db.view("demo/by_kind", group_level=1), key=lambda r: -r.value)
            for row in per_kind[:3]:
                print(f"  {row.key[0]:<8} {row.value:>6}")

            t0 = time.perf_counter()
            n = sum(1 for _ in db.view("_all_docs", include_docs=True))
            s = time.perf_counter() - t0
            print(f"streamed _all_docs?include_docs=true: {n:,} rows in {s:.2f}s: {n / s:,.0f} rows/s")
        finally:
            server.delete(name)
            print(f"deleted database {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
