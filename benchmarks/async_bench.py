"""Async scenarios: many concurrent gets, a 1M-row view via ``async for``, and GETs at
concurrency 16 against the peers.

    .venv/bin/python benchmarks/async_bench.py                 # scenarios 1 and 2
    .venv/bin/python benchmarks/async_bench.py --gets 1000 --rows 1000000 --json out.json
    .venv/bin/python benchmarks/async_bench.py --get16 --repeat 3   # scenario 3 only
    .venv/bin/python benchmarks/async_bench.py --get16 --anonymous  # scenario 3, no password checks

3. *GETs at concurrency 16* (``--get16``): 5,000 single-document GETs with 16 in
   flight, each client in its own process: couchcore.aio and couchcore.tornado on the
   default ``pycurl`` backend (libcurl on the event loop, connections kept alive),
   couchcore.tornado on the old ``tornado`` backend (a connection per request),
   aiocouch (aiohttp), and the sync pycurl ``get_many(concurrency=16)``. Reported:
   requests/s, the client process's CPU per request, and, from a separate run through a
   counting TCP proxy, the TCP connections each opened; ratios against aiocouch. Also,
   from the same timed runs: the latency of each get (p50/p90/p99/max; async clients),
   the server process's CPU per request (a server on this machine, found by its
   listening port), and how often per request the client slept (waited for the
   network) and was preempted.

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
import couchcore.aio  # noqa: E402,F401
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


# -- scenario 3: single-document GETs at concurrency 16, against the peers ---------------------

#: the clients of the comparison, each run in its own process (its CPU time is its own)
GET_CLIENTS = (
    "couchcore.aio, backend=pycurl (default)",
    "couchcore.tornado, backend=pycurl (default)",
    "couchcore.tornado, backend=tornado (old)",
    "aiocouch (aiohttp)",
    "couchcore sync get_many (pycurl)",
)


def get_client(client: str, url: str, name: str, n: int, concurrency: int) -> dict:
    """One client process: ``n`` GETs of the docs ``doc0000``..``doc0099`` with
    ``concurrency`` requests in flight (``concurrency`` tasks, each awaiting one get
    after another), after a warm-up of 2 x ``concurrency`` gets. Wall seconds and this
    process's CPU seconds (user + system) of the timed part; for the async clients the
    latency of each get (``perf_counter`` around each ``await``: one call more per
    request for every client alike) as percentiles; with ``$BENCH_SERVER_PID`` (a local
    server's process id) the server process's CPU seconds in the same window; the times
    this process slept (voluntary context switches: waits for the network) and was
    preempted (involuntary ones) in it."""
    ids = [f"doc{i % 100:04d}" for i in range(n)]
    warm = ids[:2 * concurrency]
    server_pid = os.environ.get("BENCH_SERVER_PID")
    lat: list[float] = []

    def switches() -> tuple[int, int]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_nvcsw, usage.ru_nivcsw

    def timed(secs: float, cpu: float, count: int, server0: float | None, switches0: tuple[int, int]) -> dict:
        voluntary, involuntary = switches()
        out = {"seconds": secs, "cpu": cpu, "count": count, "sleeps": voluntary - switches0[0],
               "preempted": involuntary - switches0[1]}
        if server0 is not None:
            out["server_cpu"] = process_cpu(int(server_pid)) - server0  # type: ignore[arg-type]
        if lat:
            lat.sort()
            out["latency_ms"] = {f"p{q}": lat[min(len(lat) - 1, int(len(lat) * q / 100))] * 1e3 for q in (50, 90, 99)}
            out["latency_ms"]["max"] = lat[-1] * 1e3
        return out

    def server_cpu() -> float | None:
        return process_cpu(int(server_pid)) if server_pid else None

    def check(doc_id: str, n_field: int) -> None:
        assert int(doc_id[3:]) == n_field, (doc_id, n_field)

    if client.startswith("couchcore sync"):
        db = couchcore.Server(url, backend="pycurl")._database(name)
        db.get_many(warm, concurrency=concurrency)
        s0, w0 = server_cpu(), switches()
        t0, c0 = time.perf_counter(), time.process_time()
        docs = db.get_many(ids, concurrency=concurrency)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        res = timed(secs, cpu, len(docs), s0, w0)
        for doc in docs:
            check(doc["_id"], doc["n"])
        db.server.close()
        return res

    async def workers(get, items: list[str], record: list[float] | None = None) -> int:
        it = iter(items)
        done = [0]
        clock = time.perf_counter

        async def worker() -> None:
            for doc_id in it:
                t = clock()
                doc = await get(doc_id)
                if record is not None:
                    record.append(clock() - t)
                check(doc_id, doc["n"])
                done[0] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done[0]

    async def main() -> dict:
        if client.startswith("aiocouch"):
            from aiocouch import CouchDB

            from benchmarks.clients import split_url

            base, user, password = split_url(url)
            couch = CouchDB(base, user=user, password=password)
            db = await couch[name]
            get = db.__getitem__
            close = couch.close
        else:
            module = couchcore.aio if client.startswith("couchcore.aio") else ct
            backend = "tornado" if "backend=tornado" in client else "pycurl"
            server = module.Server(url, max_clients=concurrency, backend=backend)
            db = await server.db(name)
            get = db.get

            async def close() -> None:
                server.close()
        await workers(get, warm)
        s0, w0 = server_cpu(), switches()
        t0, c0 = time.perf_counter(), time.process_time()
        count = await workers(get, ids, lat)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        res = timed(secs, cpu, count, s0, w0)
        await close()
        return res

    return asyncio.run(main())


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, its threads included) process ``pid`` used so far (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pid(port: int) -> int | None:
    """The id of the local process listening on TCP ``port`` (Linux; None if not found or
    not ours to see)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rpartition(":")[2], 16) == port:  # LISTEN
                        inodes.add(parts[9])
        except OSError:
            continue
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


class CountingProxy:
    """A TCP proxy on 127.0.0.1 (its own thread and event loop, in the parent process)
    counting the connections clients open: what the server would see."""

    def __init__(self, target: tuple[str, int]) -> None:
        import threading

        self.target = target
        self.accepted = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait()

    async def _handle(self, reader, writer) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return

        async def pipe(src, dst) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def bench_get16(n: int, concurrency: int, rounds: int, clients: tuple[str, ...] = GET_CLIENTS,
                baseline: str | None = None, anonymous: bool = False) -> dict:
    """Every client in ``clients``, ``rounds`` times in turn (interleaved, so a busy
    moment of the machine hits all of them), then once more each through a counting
    proxy for the number of TCP connections it opens. With ``baseline`` (the root of
    another couchcore tree, e.g. a ``git archive`` of an earlier commit with its
    extensions built), each couchcore client also runs from that tree right after
    running from this one (rows named ``... [baseline]``). With ``anonymous`` the
    database is made public (``_security`` with no members) and the clients send no
    credentials: the server then does no authentication per request (with Basic auth
    CouchDB 3.5 spends ~300 µs of CPU checking the password on every request, for every
    client alike, which bounds all of them)."""
    from urllib.parse import urlsplit, urlunsplit

    from benchmarks.clients import split_url

    with couch_url() as url:
        sync_server = couchcore.Server(url)
        name = f"couchcore-bench-{uuid.uuid4().hex[:8]}"
        db = sync_server.create(name)
        try:
            db.save([{"_id": f"doc{i:04d}", "n": i, "text": "x" * 200} for i in range(100)])
            target = url
            if anonymous:
                db.security({"admins": {"names": [], "roles": []}, "members": {"names": [], "roles": []}})
                target = split_url(url)[0]
            runs = [(c, None) for c in clients]
            if baseline:
                runs = [r for c in clients for r in ((c, None), (c, baseline)) if r[1] is None or "couchcore" in c]
            out: dict = {"server": sync_server.version(), "gets": n, "concurrency": concurrency,
                         "rounds": rounds, "runs": {_row(c, t): [] for c, t in runs}, "connections": {},
                         "baseline": baseline, "anonymous": anonymous}

            pid = server_pid(urlsplit(url).port or 5984) if urlsplit(url).hostname in ("127.0.0.1", "localhost") \
                else None
            out["server_pid_found"] = pid is not None

            def child(client: str, target: str, tree: str | None = None, measure_server: bool = False) -> dict:
                root = os.path.abspath(tree) if tree else os.path.dirname(HERE)
                env = dict(os.environ)
                env.pop("BENCH_SERVER_PID", None)
                if measure_server and pid is not None:
                    env["BENCH_SERVER_PID"] = str(pid)
                res = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "async_bench.py"), "--get-client",
                                      client, target, name, str(n), str(concurrency)], capture_output=True, text=True,
                                     cwd=root, env=env)
                if res.returncode != 0:
                    raise RuntimeError(f"{client} failed:\n{res.stderr[-3000:]}")
                result = json.loads(res.stdout.strip().splitlines()[-1])
                assert result["count"] == n, result
                return result

            for _ in range(rounds):
                for client, tree in runs:
                    out["runs"][_row(client, tree)].append(child(client, target, tree, measure_server=True))
            parts = urlsplit(target)
            proxy = CountingProxy((parts.hostname, parts.port))
            try:
                netloc = parts.netloc.rpartition("@")[0]
                proxied = urlunsplit((parts.scheme, (netloc + "@" if netloc else "") + f"127.0.0.1:{proxy.port}",
                                      parts.path, "", ""))
                for client, tree in runs:
                    before = proxy.accepted
                    try:
                        child(client, proxied, tree)
                    except RuntimeError as exc:  # the count is a side figure: report the failure, keep the rest
                        out["connections"][_row(client, tree)] = "failed"
                        print(f"connection count of {_row(client, tree)} failed: {str(exc)[-300:]}", file=sys.stderr)
                        continue
                    out["connections"][_row(client, tree)] = proxy.accepted - before
            finally:
                proxy.close()
            return out
        finally:
            sync_server.delete(name)
            sync_server.close()


def _row(client: str, tree: str | None) -> str:
    return client if tree is None else f"{client} [baseline]"


def report_get16(res: dict) -> str:
    import statistics

    n = res["gets"]
    med = {c: (statistics.median(r["seconds"] for r in runs), statistics.median(r["cpu"] for r in runs))
           for c, runs in res["runs"].items()}
    peer = med.get("aiocouch (aiohttp)")
    base = res.get("baseline")
    auth = ("anonymous reads of a public database" if res.get("anonymous")
            else "Basic auth on every request")
    lines = [f"### {n:,} single-document GETs, {res['concurrency']} in flight, {auth} (server {res['server']}; "
             f"median of {res['rounds']} interleaved rounds; connections counted by a proxy in a separate run)", "",
             "| client | requests/s | client CPU per request | TCP connections opened | requests/s vs aiocouch "
             "| CPU vs aiocouch |" + (" CPU vs baseline |" if base else ""),
             "|---|---:|---:|---:|---:|---:|" + ("---:|" if base else "")]
    for client, (secs, cpu) in med.items():
        rps, us = n / secs, cpu / n * 1e6
        vs = f"{peer[0] / secs:.2f}x" if peer else "-"
        cvs = f"{cpu / peer[1]:.2f}x" if peer else "-"
        row = f"| {client} | {rps:,.0f} | {us:.0f} µs | {res['connections'].get(client, '?')} | {vs} | {cvs} |"
        if base:
            old = med.get(_row(client, base))
            row += f" {cpu / old[1]:.2f}x |" if old and not client.endswith("[baseline]") else " |"
        lines.append(row)
    if base:
        lines += ["", f"baseline tree: {base}"]
    lat_rows = [(c, runs) for c, runs in res["runs"].items() if any("latency_ms" in r or "server_cpu" in r for r in runs)]
    if lat_rows:
        lines += ["", "Latency of each get (ms; medians over the rounds of each round's percentile), the server "
                  "process's CPU per request in the same window, and per request the times the client process "
                  "slept (waiting for the network) and was preempted (medians):", "",
                  "| client | p50 | p90 | p99 | max | server CPU per request | client sleeps | client preempted |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for client, runs in lat_rows:
            cells = []
            for q in ("p50", "p90", "p99", "max"):
                vals = [r["latency_ms"][q] for r in runs if "latency_ms" in r]
                cells.append(f"{statistics.median(vals):.2f}" if vals else "-")
            srv = [r["server_cpu"] for r in runs if "server_cpu" in r]
            cells.append(f"{statistics.median(srv) / n * 1e6:.0f} µs" if srv else "-")
            for key in ("sleeps", "preempted"):
                vals = [r[key] / n for r in runs if key in r]
                cells.append(f"{statistics.median(vals):.3f}" if vals else "-")
            lines.append(f"| {client} | " + " | ".join(cells) + " |")
    lines += ["", "Per-round figures (wall seconds, CPU seconds):", "",
              "| client | " + " | ".join(f"round {i + 1}" for i in range(res["rounds"])) + " |",
              "|---|" + "---|" * res["rounds"]]
    for client, runs in res["runs"].items():
        lines.append(f"| {client} | " + " | ".join(f"{r['seconds']:.2f} s, {r['cpu']:.2f} s" for r in runs) + " |")
    return "\n".join(lines)


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
            import couchcore.transport.curlloop as cl
            import couchcore.transport.tornado as tt

            tt.HIGH_WATER = cl.HIGH_WATER = 1 << 62

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
            "peak_rss_mb": peak_rss_mb(), "parser": couchcore._rows.BACKEND}


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
             f"tornado {__import__('tornado').version}; row parser {couchcore._rows.BACKEND}", ""]
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
    parser.add_argument("--get16", action="store_true",
                        help="only the GET comparison with the peers (--gets, default here 5000, "
                             "--concurrency, --repeat rounds)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--baseline", help="with --get16: also run each couchcore client from this couchcore tree "
                        "(interleaved with this one), e.g. a git archive of an earlier commit")
    parser.add_argument("--anonymous", action="store_true",
                        help="with --get16: make the database public and send no credentials (no password "
                        "check on the server per request)")
    parser.add_argument("--only", help="with --get16: only the clients whose name contains one of these "
                        "comma-separated words")
    parser.add_argument("--get-client", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--replay-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--view-client", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.replay_server is not None:
        replay_server(args.replay_server, 1000)
        return 0
    if args.view_client:
        print(json.dumps(view_client(*args.view_client)))
        return 0
    if args.get_client:
        client, url, name, n, conc = args.get_client
        print(json.dumps(get_client(client, url, name, int(n), int(conc))))
        return 0
    if args.get16:
        n = args.gets if "--gets" in (argv if argv is not None else sys.argv) else 5000
        clients = GET_CLIENTS
        if args.only:
            clients = tuple(c for c in GET_CLIENTS if any(w in c for w in args.only.split(",")))
        res = bench_get16(n, args.concurrency, args.repeat, clients, args.baseline, args.anonymous)
        print(report_get16(res))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"get16": res}, f, indent=2)
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
