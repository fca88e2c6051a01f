"""Async (Tornado) scenarios: many concurrent gets, and a 1M-row view via ``async for``.

    .venv/bin/python benchmarks/async_bench.py                 # both scenarios
    .venv/bin/python benchmarks/async_bench.py --gets 1000 --rows 1000000 --json out.json

1. *Concurrent gets*: N ``db.get`` calls through ``asyncio.gather`` on
   ``couchcore.tornado`` (for several ``max_clients``), against the sync facade doing the
   same gets one after another (urllib3, keep-alive), in the same run on the same
   server: ``$COUCHDB_URL``, or a throw-away PouchDB Server.
2. *Big view*: a local replay server (a subprocess on 127.0.0.1) streams a generated
   view of ``--rows`` rows framed as CouchDB frames it (chunked, one row per line).
   Each client scenario runs in its own process so its peak RSS is its own:
   ``download`` (the bytes through the same Tornado transport, parsed by nothing),
   ``async for`` over ``db.view`` with the default row parser and with the pure-Python
   one, the sync ``for`` (urllib3) for reference, and a consumer that awaits other
   work (1 ms per 1000 rows) with the transport's backpressure on and switched off:
   a consumer that never awaits anything else drains the buffer whenever the loop
   runs Tornado's reader, so memory stays flat either way; one that awaits other I/O
   lets the reader run meanwhile, and only backpressure keeps that bounded. Reported: seconds, rows/s, MB/s,
   RSS before the request and at peak (``VmHWM``), and time relative to the plain
   download.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import couchcore  # noqa: E402
from couchcore.testing import couch_url  # noqa: E402
import couchcore.tornado as ct  # noqa: E402


def rss_mb() -> float:
    """Current resident set size (Linux), MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process, MB: VmHWM, which (unlike ``ru_maxrss``,
    inherited across fork+exec) starts afresh in each exec'd client process."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- scenario 1: concurrent gets -------------------------------------------------------------


def bench_gets(n: int, client_counts: list[int], repeat: int) -> dict:
    with couch_url() as url:
        sync_server = couchcore.Server(url)
        name = f"couchcore-bench-{uuid.uuid4().hex[:8]}"
        db = sync_server.create(name)
        try:
            ndocs = 100
            db.save([{"_id": f"doc{i:04d}", "n": i, "text": "x" * 200} for i in range(ndocs)])
            ids = [f"doc{i % ndocs:04d}" for i in range(n)]
            out: dict = {"server": sync_server.version(), "gets": n, "runs": {}}

            def best(fn) -> tuple[float, float]:
                """(wall seconds, client CPU seconds) of the fastest of ``repeat`` runs."""
                times = []
                for _ in range(repeat):
                    t0, c0 = time.perf_counter(), time.process_time()
                    fn()
                    times.append((time.perf_counter() - t0, time.process_time() - c0))
                return min(times)

            for docid in ids[:50]:  # warm-up
                db.get(docid)
            out["runs"]["sync sequential (urllib3)"] = best(lambda: [db.get(docid) for docid in ids])
            try:
                curl = couchcore.Server(url, backend="pycurl")
                cdb = curl._database(name)
                cdb.get_many(ids[:50], concurrency=10)
                out["runs"]["sync get_many (pycurl, concurrency=10)"] = best(
                    lambda: cdb.get_many(ids, concurrency=10))
                curl.close()
            except couchcore.InvalidOption:  # no pycurl here
                pass

            for clients in client_counts:
                server = ct.Server(url, max_clients=clients)
                adb = server._database(name)

                async def gather_all():
                    docs = await asyncio.gather(*(adb.get(docid) for docid in ids))
                    assert len(docs) == n and docs[1]["n"] == 1

                async def run_repeated() -> tuple[float, float]:
                    await asyncio.gather(*(adb.get(docid) for docid in ids[:50]))  # warm-up
                    times = []
                    for _ in range(repeat):
                        t0, c0 = time.perf_counter(), time.process_time()
                        await gather_all()
                        times.append((time.perf_counter() - t0, time.process_time() - c0))
                    return min(times)

                out["runs"][f"async gather, max_clients={clients}"] = asyncio.run(run_repeated())
                server.close()
            return out
        finally:
            sync_server.delete(name)
            sync_server.close()


# -- scenario 2: the big view ----------------------------------------------------------------


def replay_server(rows: int, per_chunk: int) -> None:
    """Serve a generated view body, chunked, CouchDB framing; print the port; run forever."""
    parts = [b'{"total_rows":%d,"offset":0,"rows":[\r\n' % rows]
    for start in range(0, rows, per_chunk):
        block = b",\r\n".join(
            b'{"id":"doc%08d","key":["k",%d],"value":{"rev":"1-%032x","n":%d}}' % (i, i, i, i)
            for i in range(start, min(start + per_chunk, rows)))
        parts.append((b",\r\n" if start else b"") + block)
    parts.append(b"\r\n]}\n")
    chunks = [b"%x\r\n%s\r\n" % (len(p), p) for p in parts] + [b"0\r\n\r\n"]
    size = sum(len(p) for p in parts)

    async def serve(reader, writer):
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        print(json.dumps({"port": server.sockets[0].getsockname()[1], "bytes": size}), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def view_client(mode: str, url: str) -> dict:
    """One client scenario (run in its own process): seconds, rows, bytes, RSS."""
    import gc

    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    nbytes = rows = 0
    if mode == "download":
        from couchcore.protocol.messages import Request

        async def go():
            nonlocal nbytes
            server = ct.Server(url)
            resp = await server._transport.send(Request("GET", "/bench/_all_docs", stream=True))
            async for chunk in resp.stream:
                nbytes += len(chunk)

        asyncio.run(go())
    elif mode.startswith("async for"):
        if "backpressure off" in mode:  # what memory would do without it
            import couchcore.transport.tornado as tt

            tt.HIGH_WATER = 1 << 62

        pause = "awaits" in mode  # a consumer doing async work: 1 ms per 1000 rows

        async def go():
            nonlocal rows
            db = ct.Server(url)._database("bench")
            async for _row in await db.view("_all_docs"):
                rows += 1
                if pause and rows % 1000 == 0:
                    await asyncio.sleep(0.001)

        asyncio.run(go())
    elif mode == "sync for (urllib3)":
        db = couchcore.Server(url)._database("bench")
        for _row in db.view("_all_docs"):
            rows += 1
    secs = time.perf_counter() - t0
    return {"mode": mode, "seconds": secs, "rows": rows, "bytes": nbytes, "rss_before_mb": before,
            "peak_rss_mb": peak_rss_mb(), "parser": couchcore.rows.BACKEND}


def bench_view(rows: int, repeat: int) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--replay-server", str(rows)],
                            stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        url = f"http://127.0.0.1:{info['port']}"
        out: dict = {"rows": rows, "body_bytes": info["bytes"], "runs": {}}
        for mode in ("download", "async for", "async for (pure-Python parser)", "sync for (urllib3)",
                     "async for, consumer awaits 1 ms/1000 rows", "async for, consumer awaits, backpressure off"):
            env = dict(os.environ)
            if "pure-Python" in mode:
                env["COUCHCORE_ROWS_BACKEND"] = "python"
            results = []
            for _ in range(repeat):
                res = subprocess.run([sys.executable, __file__, "--view-client", mode, url],
                                     capture_output=True, text=True, env=env, check=True)
                results.append(json.loads(res.stdout.strip().splitlines()[-1]))
            best = min(results, key=lambda r: r["seconds"])
            best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results)
            if mode == "download":
                assert best["bytes"] == info["bytes"], best
            else:
                assert best["rows"] == rows, best
            out["runs"][mode] = best
        return out
    finally:
        proc.terminate()
        proc.wait()


# -- report ------------------------------------------------------------------------------------


def report(gets: dict | None, view: dict | None) -> str:
    lines = [f"machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}; "
             f"tornado {__import__('tornado').version}; row parser {couchcore.rows.BACKEND}", ""]
    if gets:
        n = gets["gets"]
        base = gets["runs"]["sync sequential (urllib3)"][0]
        lines += [f"### {n} gets of 100 small docs (server {gets['server']}; best of runs)", "",
                  "| client | seconds | gets/s | vs sync sequential | client CPU per get |",
                  "|---|---:|---:|---:|---:|"]
        for name, (secs, cpu) in gets["runs"].items():
            lines.append(f"| {name} | {secs:.3f} | {n / secs:,.0f} | {base / secs:.2f}x | {cpu / n * 1e3:.2f} ms |")
        lines.append("")
    if view:
        rows, size = view["rows"], view["body_bytes"]
        dl = view["runs"]["download"]["seconds"]
        lines += [f"### view of {rows:,} rows ({size / 2**20:.0f} MB body, chunked, local replay server)", "",
                  "| client | row parser | seconds | rows/s | MB/s | RSS before | peak RSS | time vs download |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for name, r in view["runs"].items():
            parsed = name != "download"
            lines.append(f"| {name} | {r['parser'] if parsed else '(none: bytes only)'} | {r['seconds']:.2f} "
                         f"| {rows / r['seconds'] if parsed else 0:,.0f} | {size / 2**20 / r['seconds']:.0f} "
                         f"| {r['rss_before_mb']:.0f} MB | {r['peak_rss_mb']:.0f} MB | {r['seconds'] / dl:.1f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gets", type=int, default=1000)
    parser.add_argument("--clients", default="10,50", help="max_clients values to try (default 10,50)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-gets", action="store_true")
    parser.add_argument("--skip-view", action="store_true")
    parser.add_argument("--json", help="also write the raw figures here")
    parser.add_argument("--replay-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--view-client", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.replay_server is not None:
        replay_server(args.replay_server, 1000)
        return 0
    if args.view_client:
        print(json.dumps(view_client(*args.view_client)))
        return 0
    gets = None if args.skip_gets else bench_gets(args.gets, [int(c) for c in args.clients.split(",")], args.repeat)
    view = None if args.skip_view else bench_view(args.rows, args.repeat)
    print(report(gets, view))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gets": gets, "view": view}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
