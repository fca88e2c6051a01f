"""End to end: reading a whole view over loopback, couchcore against the download limit,
the best pure-Python pipeline and the peers (issue 9's view table), in one run.

A replay server (a separate process on 127.0.0.1, :mod:`benchmarks.replay`) sends the exact
bytes Apache CouchDB 3.5 sends, chunked as CouchDB chunks them (~1.5 kB HTTP chunks), for two
shapes:

* ``view``: ``bench/by_user`` over N documents, rows like
  ``{"id":"doc00000017","key":["user17",17],"value":{"n":17,"score":0.8544}}`` (issue 9's
  held-out shape: keys ``[str, int]``, values ``{int, float}``);
* ``docs``: ``_all_docs?include_docs=true`` over N/5 documents (``benchmarks.data.make_doc``).

Contenders, each run in a fresh process (its own peak RSS), taking turns (round-robin) so load
changes hit all alike; every run's row count and digest are checked against
``benchmarks.data.expected``:

  download/<backend>     couchcore's transport reading the body and discarding it (the limit)
  couchcore/<backend>    ``for row in db.view(...)``
  couchcore@base/<b.>    the same with an older couchcore tree (``--baseline-tree DIR``, e.g. a
                         ``git archive`` of an earlier commit with its extension built): before/after
  urllib3+orjson/line    urllib3 stream, split on CouchDB's line breaks, orjson per line, Row
  <peer>                 the peers of ``benchmarks.clients`` that are installed (bench extra)

Reported per contender: best wall seconds, rows/s (wall), process CPU seconds of that run,
peak RSS; then the issue's ratios.  Written to ``benchmarks/results/end_to_end.md``.

    .venv/bin/python benchmarks/end_to_end.py [--rows 1000000] [--doc-rows 200000] [--repeat 3]
        [--peer-repeat N (default: --repeat)] [--shapes view,docs] [--no-peers] [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
RESULTS = HERE / "results"

PEERS = ("pycouchdb", "cloudant", "couchdb-python", "ibmcloudant", "aiocouch")


# -- the include_docs body ------------------------------------------------------------------------


def docs_wire_body(n: int) -> bytes:
    """``_all_docs?include_docs=true`` over ``n`` benchmark documents, chunked as CouchDB 3.5."""
    from benchmarks import data

    def rows():
        for i in range(n):
            d = data.make_doc(i)
            rev = "1-%032x" % ((i * 2654435761) % 2**128)
            doc = {"_id": d["_id"], "_rev": rev, **{k: v for k, v in d.items() if k != "_id"}}
            yield json.dumps({"id": d["_id"], "key": d["_id"], "value": {"rev": rev}, "doc": doc},
                             separators=(",", ":")).encode()

    out: list[bytes] = []
    buf = [b'{"total_rows":%d,"offset":0,"rows":[\r\n' % n]
    size = len(buf[0])
    first = True
    for row in rows():
        piece = row if first else b",\r\n" + row
        first = False
        buf.append(piece)
        size += len(piece)
        if size >= data.CHUNK_THRESHOLD:
            chunk = b"".join(buf)
            out.append(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            buf, size = [], 0
    buf.append(b"\r\n]}")
    chunk = b"".join(buf)
    out.append(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    out.append(b"1\r\n\n\r\n0\r\n\r\n")
    return b"".join(out)


def serve(view_rows: int, doc_rows: int) -> None:
    """The replay server process: prints {"port": P}, serves until stdin closes."""
    from benchmarks import replay

    class Server(replay.ViewReplayServer):
        def __init__(self) -> None:
            self.docs = {doc_rows: docs_wire_body(doc_rows)} if doc_rows else {}
            super().__init__([view_rows] if view_rows else [])

        def route(self, conn, method, target):
            path = target.split("?", 1)[0]
            m = re.match(r"^/replay-(\d+)/_all_docs$", path)
            if m and int(m.group(1)) in self.docs:
                body = self.docs[int(m.group(1))]
                conn.sendall(b"HTTP/1.1 200 OK\r\n%sTransfer-Encoding: chunked\r\n\r\n" % replay.HEADERS)
                if method != "HEAD":
                    view = memoryview(body)
                    for i in range(0, len(view), 1 << 20):
                        conn.sendall(view[i:i + (1 << 20)])
                return None
            m = re.match(r"^/replay-(\d+)/?$", path)
            if m and int(m.group(1)) in self.docs and int(m.group(1)) not in self.bodies:
                info = {"db_name": f"replay-{m.group(1)}", "doc_count": int(m.group(1)), "doc_del_count": 0,
                        "update_seq": m.group(1), "purge_seq": "0", "compact_running": False,
                        "sizes": {"active": 0, "external": 0, "file": 0}, "instance_start_time": "0"}
                return self.respond(conn, "200 OK", json.dumps(info).encode(), method == "HEAD")
            return super().route(conn, method, target)

    server = Server()
    print(json.dumps({"port": server.port}), flush=True)
    try:
        sys.stdin.read()
    finally:
        server.close()


# -- the contenders (run in the child process) -----------------------------------------------------


def _download(server: Any, path: str) -> dict:
    from couchcore._drivers import run
    from couchcore.protocol.messages import Request

    def op():
        resp = yield Request("GET", path, stream=True)
        return resp

    resp = run(op(), server._transport)
    size = 0
    for chunk in resp.stream:
        size += len(chunk)
    return {"count": None, "bytes": size}


def _orjson_lines(url: str, path: str, shape: str) -> dict:
    import orjson
    import urllib3

    from benchmarks.digests import docs_digest, view_digest
    from couchcore.models import Document, Row

    pool = urllib3.PoolManager()
    resp = pool.request("GET", url + path, preload_content=False)
    loads = orjson.loads
    rows = []
    tail = b""
    dig = view_digest if shape == "view" else docs_digest
    total = {"count": 0, "digest": 0}
    for c in resp.stream(1 << 16):
        lines = (tail + c).split(b"\n")
        tail = lines.pop()
        rows.clear()
        for line in lines:
            line = line.rstrip(b"\r,")
            if not line.startswith(b'{"id"'):
                continue
            d = loads(line)
            doc = d.get("doc")
            rows.append(Row(d.get("id"), d.get("key"), d.get("value"), Document(doc) if doc is not None else None,
                            d.get("error")))
        r = dig(rows)
        total["count"] += r["count"]
        total["digest"] ^= r["digest"]
    resp.release_conn()
    return total


def client(name: str, url: str, shape: str, size: int) -> dict:
    """Run one contender once; returns its measurements (JSON-able)."""
    # the per-row work every client of benchmarks/ does (benchmarks.digests, not benchmarks.clients:
    # that one imports asyncio and threads, +2-7 MB of peak RSS; here, not at module level: the
    # parent stays small, and its children inherit its peak RSS on Linux)
    from benchmarks.digests import docs_digest, view_digest

    db = f"replay-{size}"
    path = f"/{db}/_design/bench/_view/by_user" if shape == "view" else f"/{db}/_all_docs?include_docs=true"
    if name.startswith("couchcore@base/"):
        sys.path.insert(0, os.environ["E2E_BASELINE_TREE"])
        name = name.replace("@base", "")
        import couchcore

        assert couchcore.__file__.startswith(os.environ["E2E_BASELINE_TREE"]), couchcore.__file__
    database = None
    if name.startswith("couchcore/") or name.startswith("download/"):
        # imported before the clock starts, like every contender's modules (couchcore imports its
        # parts on first use: the view path's are named here), and the Database made before it as
        # each peer's client and database objects are (in connect())
        import couchcore
        import couchcore._drivers  # noqa: F401
        import couchcore._results  # noqa: F401
        import couchcore._rows  # noqa: F401
        import couchcore.protocol.messages  # noqa: F401
        import couchcore.protocol.views  # noqa: F401

        if name.startswith("couchcore/"):
            database = couchcore.Database(f"{url}/{db}", backend=name.split("/", 1)[1])
        else:
            server = couchcore.Server(url, backend=name.split("/", 1)[1])
    elif name == "urllib3+orjson/line":
        import orjson  # noqa: F401
        import urllib3  # noqa: F401
    peer = None
    if name in PEERS:
        from benchmarks import clients

        cls, options, _env, _only = clients.REGISTRY[name]
        peer = cls(**options)
        ctx = {"url": url, "db": db, "size": size, "scenario": "view_replay" if shape == "view" else "all_docs"}
        if peer.is_async:
            import asyncio

            loop = asyncio.new_event_loop()
            loop.run_until_complete(peer.connect(ctx))
        else:
            peer.connect(ctx)
    t0, c0 = time.perf_counter(), time.process_time()
    if name.startswith("download/"):
        result = _download(server, path)
    elif database is not None:
        if shape == "view":
            result = view_digest(database.view("bench/by_user"))
        else:
            result = docs_digest(database.view("_all_docs", include_docs=True))
    elif name == "urllib3+orjson/line":
        result = _orjson_lines(url, path, shape)
    else:
        method = getattr(peer, "view_replay" if shape == "view" else "all_docs")
        result = loop.run_until_complete(method(ctx)) if peer.is_async else method(ctx)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if peer is not None:
        closing = peer.close()
        if peer.is_async:
            loop.run_until_complete(closing)
    out = {"seconds": wall, "cpu": cpu, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "count": result.get("count"), "digest_ok": None}
    if result.get("count") is not None:
        from benchmarks import data

        want = data.expected("view_replay" if shape == "view" else "all_docs", size)
        out["digest_ok"] = result["count"] == want["count"] and result.get("digest") == want["digest"]
    if name.startswith("couchcore/"):
        import couchcore

        out["parser"] = couchcore._rows.BACKEND
    return out


# -- driver ---------------------------------------------------------------------------------------


def _installed(name: str) -> bool:
    """Whether a peer's modules are installed (looked up, not imported: the children this
    process starts inherit its peak RSS on Linux, so it stays small)."""
    import importlib.util

    from benchmarks import clients

    cls = clients.REGISTRY[name][0]
    try:
        return all(importlib.util.find_spec(mod) is not None for mod in cls.requires)
    except (ImportError, ValueError):
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the view shape")
    ap.add_argument("--doc-rows", type=int, default=200_000, help="rows of the include_docs shape")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each couchcore/baseline contender (best kept)")
    ap.add_argument("--peer-repeat", type=int, default=None,
                    help="runs of each peer (default: --repeat, so that every contender's best is of as many "
                    "tries; fewer favours couchcore)")
    ap.add_argument("--backends", default="pycurl,urllib3")
    ap.add_argument("--shapes", default="view,docs")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--baseline-tree", metavar="DIR", help="an older couchcore tree: contenders couchcore@base/*")
    ap.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer_repeat is None:
        args.peer_repeat = args.repeat
    if args.serve:
        serve(*args.serve)
        return 0
    if args.client:
        name, url, shape, size = args.client
        print(json.dumps(client(name, url, shape, int(size))))
        return 0

    shapes = [s for s in args.shapes.split(",") if s]
    backends = [b for b in args.backends.split(",") if b]
    base = [f"download/{b}" for b in backends] + [f"couchcore/{b}" for b in backends]
    if args.baseline_tree:
        os.environ["E2E_BASELINE_TREE"] = str(Path(args.baseline_tree).resolve())
        base += [f"couchcore@base/{b}" for b in backends]
    base += ["urllib3+orjson/line"]
    peers = [] if args.no_peers else [p for p in PEERS if _installed(p)]
    sizes = {"view": args.rows, "docs": args.doc_rows}
    srv = subprocess.Popen([sys.executable, __file__, "--serve", str(args.rows if "view" in shapes else 0),
                            str(args.doc_rows if "docs" in shapes else 0)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    lines = [
        "# End to end: a whole view over loopback (replay server, CouchDB 3.5 bytes and chunking)",
        "",
        f"`benchmarks/end_to_end.py --shapes {','.join(shapes)}"
        + (f" --rows {args.rows}" if "view" in shapes else "")
        + (f" --doc-rows {args.doc_rows}" if "docs" in shapes else "")
        + f" --repeat {args.repeat} --peer-repeat {args.peer_repeat}` on Python {platform.python_version()}, "
        f"{platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f}. Each run is a fresh process; "
        "contenders take turns; best wall time kept (CPU = process CPU of that run). Every run's row count "
        "and digest are checked.",
        "",
    ]
    try:
        port = json.loads(srv.stdout.readline())["port"]
        url = f"http://127.0.0.1:{port}"
        for shape in shapes:
            n = sizes[shape]
            label = (f"{n:,}-row view (keys [str, int], values {{int, float}})" if shape == "view"
                     else f"{n:,}-row _all_docs?include_docs=true")
            print(f"\n{label}", flush=True)
            best: dict[str, dict] = {}
            order = base + peers
            for rep in range(max(args.repeat, args.peer_repeat)):
                for name in order:
                    if rep >= (args.peer_repeat if name in PEERS else args.repeat):
                        continue
                    proc = subprocess.run([sys.executable, __file__, "--client", name, url, shape, str(n)],
                                          capture_output=True, text=True, cwd=ROOT)
                    if proc.returncode != 0:
                        print(f"  {name}: failed: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
                        best.setdefault(name, {"failed": proc.stderr.strip()[-300:]})
                        continue
                    r = json.loads(proc.stdout)
                    if r["count"] is not None:
                        assert r["count"] == n and r["digest_ok"], (name, r)
                    print(f"  {name:<22} {r['seconds']:7.3f} s  cpu {r['cpu']:6.3f} s  {r['peak_mb']:6.1f} MB", flush=True)
                    if name not in best or "failed" in best[name] or r["seconds"] < best[name]["seconds"]:
                        best[name] = r
            lines += [f"## {label}", "", "| contender | seconds | rows/s | CPU s | rows/s per CPU s | peak RSS MB |",
                      "|---|---:|---:|---:|---:|---:|"]
            for name in order:
                r = best.get(name)
                if r is None:
                    continue
                if "failed" in r:
                    lines.append(f"| {name} | failed | | | | |")
                    continue
                lines.append(f"| {name} | {r['seconds']:.3f} | {n / r['seconds']:,.0f} | {r['cpu']:.3f} | "
                             f"{n / r['cpu']:,.0f} | {r['peak_mb']:.1f} |")
            lines.append("")
            ok = {k: v for k, v in best.items() if "failed" not in v}
            notes = []
            if "couchcore/pycurl" in ok:
                rate = n / ok["couchcore/pycurl"]["seconds"]

                def target(text: str, ok_: bool, shape: str = shape) -> str:
                    # issue 9 sets its targets for the view shape only
                    return f" (target {text}: {'met' if ok_ else 'NOT met'})" if shape == "view" else ""

                notes.append(f"couchcore/pycurl {rate:,.0f} rows/s{target('>= 2,000,000', rate >= 2e6)}, peak RSS "
                             f"{ok['couchcore/pycurl']['peak_mb']:.1f} MB"
                             f"{target('<= 40', ok['couchcore/pycurl']['peak_mb'] <= 40)}")
                if "couchcore/urllib3" in ok:
                    q = ok["couchcore/urllib3"]["seconds"] / ok["couchcore/pycurl"]["seconds"]
                    notes.append(f"urllib3/pycurl time = {q:.2f}x{target('<= 1.25', q <= 1.25)}")
                peer_times = [ok[p]["seconds"] for p in peers if p in ok]
                if peer_times:
                    q = min(peer_times) / ok["couchcore/pycurl"]["seconds"]
                    notes.append(f"best peer / couchcore-pycurl time = {q:.2f}x{target('>= 8', q >= 8)}")
                for b in backends:
                    if f"couchcore@base/{b}" in ok and f"couchcore/{b}" in ok:
                        notes.append(f"couchcore/{b} now / before: time {ok[f'couchcore/{b}']['seconds'] / ok[f'couchcore@base/{b}']['seconds']:.2f}x, "
                                     f"CPU {ok[f'couchcore/{b}']['cpu'] / ok[f'couchcore@base/{b}']['cpu']:.2f}x")
                if "download/pycurl" in ok:
                    notes.append(f"couchcore/pycurl vs download only: "
                                 f"{ok['couchcore/pycurl']['seconds'] / ok['download/pycurl']['seconds']:.2f}x")
                if "urllib3+orjson/line" in ok:
                    notes.append(f"urllib3+orjson/line / couchcore-pycurl time = "
                                 f"{ok['urllib3+orjson/line']['seconds'] / ok['couchcore/pycurl']['seconds']:.2f}x")
            lines += ["Ratios: " + "; ".join(notes), ""]
    finally:
        srv.stdin.close()
        srv.wait()
    text = "\n".join(lines)
    print("\n" + text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "end_to_end.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
