"""The ``couchcore`` command: ``couchcore load DB_URL [FILE]`` bulk-loads JSON lines."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Iterator, TextIO

from . import codec
from .bulk import load
from .errors import CouchcoreError, ParseError
from .sync import Database
from .urls import redact_url


def _read_lines(stream: TextIO) -> Iterator[Any]:
    """One JSON document per line; a bad line is passed on as its error (reported, not dropped)."""
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            yield codec.loads(line)
        except ParseError as exc:
            yield ParseError(f"line {number}: {exc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="couchcore", description="couchcore command-line tools")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("load", help="bulk-load JSON lines (one document per line) into a database")
    p.add_argument("db_url", help="database URL, e.g. http://admin:pw@127.0.0.1:5984/mydb")
    p.add_argument("file", nargs="?", default="-", help="input file (default: standard input)")
    p.add_argument("--batch", type=int, default=1000, help="documents per _bulk_docs request (1000)")
    p.add_argument("--concurrency", type=int, default=4, help="batches in flight at once (4)")
    p.add_argument("--backend", default="pycurl", choices=["pycurl", "urllib3"], help="HTTP backend (pycurl)")
    p.add_argument("--create", action="store_true", help="create the database if it is missing")
    p.add_argument("--failures", metavar="FILE", help="write failed documents here as JSON lines")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    try:
        db = Database(args.db_url, backend=args.backend)
        if args.create:
            db.server.db(db.name, create=True)
        source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
        bar = None
        if not args.quiet:
            try:
                from tqdm import tqdm

                bar = tqdm(unit="docs", desc=f"loading {db.name}", file=sys.stderr)
            except ImportError:
                bar = None
        with source:
            report = load(db, _read_lines(source), batch_size=args.batch, concurrency=args.concurrency,
                          progress=bar.update if bar is not None else None)
        if bar is not None:
            bar.close()
    except (CouchcoreError, OSError) as exc:
        print(f"couchcore: {redact_url(str(exc))}", file=sys.stderr)
        return 2
    print(report)
    if report.failed:
        if args.failures:
            with open(args.failures, "w", encoding="utf-8") as out:
                for key, failure in report.failed.items():
                    out.write(codec.dumps({"key": key, **failure}).decode("utf-8") + "\n")
            print(f"failures written to {args.failures}", file=sys.stderr)
        else:
            for key, failure in list(report.failed.items())[:10]:
                print(f"  {key}: {failure['error']}: {failure.get('reason')}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
