"""Bulk loading and dumping, all contenders in one run against one server (issue 7's table).

    python benchmarks/bulk.py [--url URL] [--docs N | --quick] [--batch 1000] [--out FILE]

Without ``--url`` (or ``COUCHDB_URL``) a throw-away PouchDB Server is started through
``couchcore.testing`` -- slow and memory-hungry: use ``--quick`` there, headline figures
come from Apache CouchDB. Every contender runs in its own fresh interpreter
(``python benchmarks/bulk.py --child SPEC``) against its own fresh database, writing the
same generated documents (~250 bytes of JSON each, ids included, built lazily while the
clock runs, the same generator for everyone: its cost is shown as its own row).

Contenders:

* ``limit cN``: the server's limit -- ``_bulk_docs`` bodies encoded before the clock starts,
  N in flight on one pycurl CurlMulti handle, responses read but not parsed;
* ``bulk.load cN (codec)``: ``couchcore.bulk.load(db, docs, concurrency=N)`` on pycurl, with
  ``COUCHCORE_JSON=orjson`` and ``simplejson``;
* ``couchcore load c4 (codec)``: the command on a JSON Lines file, run as the ``couchcore``
  console script runs it (whole process: interpreter start, imports, reading and splicing
  the file);
* ``db.save(batch)``: sequential, on the urllib3 and pycurl backends;
* peers: couchdb-python ``db.update``, cloudant ``db.bulk_docs``, pycouchdb
  ``db.save_bulk``, ibmcloudant ``post_bulk_docs`` (``n/a`` when not installed:
  ``pip install couchcore[bench]``);
* dump: ``couchcore.dump.dump`` (1 and 4 ranges, to /dev/null; ``history=False``: the
  winning revisions as ``_all_docs`` has them, and the default ``history=True``: each with
  ``_revisions``, fetched with ``_bulk_get``) against one raw
  ``_all_docs?include_docs=true`` stream (pycurl, bytes discarded).

Reported: docs/s (wall), client CPU µs per document (user+system of the child process,
``resource.getrusage``), peak RSS of the child (``VmHWM``; ``ru_maxrss`` for the CLI), and
the ratio to the pre-encoded limit at the same concurrency (sequential clients: c1). The
Markdown table goes to stdout and ``benchmarks/results/bulk.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NOTE = "lorem ipsum dolor sit amet, consectetur adipiscing elit sed do eiusmod tempor " * 2


# -- the documents ---------------------------------------------------------------------


def make_doc(i: int) -> dict:
    """Document ``i`` of the run: ~250 bytes of JSON, deterministic."""
    return {
        "_id": f"doc-{i:09d}",
        "type": "order",
        "customer": f"customer-{i % 9973:05d}",
        "amount": round((i % 100000) * 0.37, 2),
        "items": [i % 7, i % 11, i % 13],
        "paid": i % 3 == 0,
        "note": NOTE[: 60 + i % 40],
    }


def docs(n: int) -> Iterator[dict]:
    return (make_doc(i) for i in range(n))


def batches(n: int, size: int) -> Iterator[list[dict]]:
    for start in range(0, n, size):
        yield [make_doc(i) for i in range(start, min(n, start + size))]


# -- measuring in a child process -------------------------------------------------------


def _vmhwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _split(url: str) -> tuple[str, str | None, str | None]:
    from couchcore._urls import split_credentials

    return split_credentials(url)


def _curl_multi_post(base: str, user: str | None, password: str | None, dbname: str, bodies: Iterator[bytes],
                     concurrency: int) -> int:
    """POST bodies to _bulk_docs, ``concurrency`` in flight; returns the number of 201s."""
    import pycurl

    multi = pycurl.CurlMulti()
    free = []
    for _ in range(concurrency):
        c = pycurl.Curl()
        c.setopt(pycurl.URL, f"{base}/{dbname}/_bulk_docs")
        c.setopt(pycurl.POST, 1)
        c.setopt(pycurl.HTTPHEADER, ["Content-Type: application/json", "Accept: application/json", "Expect:"])
        if user is not None:
            c.setopt(pycurl.USERPWD, f"{user}:{password or ''}")
        c.setopt(pycurl.WRITEFUNCTION, lambda data: None)
        free.append(c)
    ok = 0
    active = 0
    it = iter(bodies)
    exhausted = False
    while True:
        while free and not exhausted:
            body = next(it, None)
            if body is None:
                exhausted = True
                break
            c = free.pop()
            c.setopt(pycurl.POSTFIELDS, body)
            multi.add_handle(c)
            active += 1
        if active == 0:
            break
        while True:
            status, _ = multi.perform()
            if status != pycurl.E_CALL_MULTI_PERFORM:
                break
        _, done, failed = multi.info_read()
        if not done and not failed:
            multi.select(1.0)
            continue
        for c in done:
            ok += c.getinfo(pycurl.RESPONSE_CODE) == 201
            multi.remove_handle(c)
            free.append(c)
            active -= 1
        for c, _errno, msg in failed:
            multi.remove_handle(c)
            free.append(c)
            active -= 1
            raise RuntimeError(f"transfer failed: {msg}")
    return ok


def run_child(spec: dict) -> dict:
    """Run one contender (in this fresh process); returns the measurement."""
    kind, url, n, batch = spec["kind"], spec["url"], spec["docs"], spec["batch"]
    conc = spec.get("concurrency", 1)
    base, user, password = _split(url)
    dbname = spec["db"]
    out: dict[str, Any] = {"docs": n}
    import couchcore

    admin = couchcore.Server(url)
    if kind not in ("dump", "raw_all_docs", "generate"):
        admin.create(dbname)
    work: Any
    if kind == "limit":
        from couchcore import codec

        bodies = [codec.join_documents([codec.dumps(d) for d in b]) for b in batches(n, batch)]
        work = lambda: _curl_multi_post(base, user, password, dbname, iter(bodies), conc)  # noqa: E731
    elif kind == "generate":
        work = lambda: sum(1 for b in batches(n, batch) for _ in b)  # noqa: E731
    elif kind == "bulk_load":
        from couchcore.bulk import load

        db = couchcore.Database(f"{url.rstrip('/')}/{dbname}", backend="pycurl")
        work = lambda: load(db, docs(n), batch_size=batch, concurrency=conc)  # noqa: E731
    elif kind == "save":
        db = couchcore.Database(f"{url.rstrip('/')}/{dbname}", backend=spec["backend"])

        def work() -> None:
            for b in batches(n, batch):
                db.save(b)
    elif kind == "couchdb":
        import couchdb

        db = couchdb.Server(url)[dbname]

        def work() -> None:
            for b in batches(n, batch):
                db.update(b)
    elif kind == "cloudant":
        from cloudant.client import CouchDB

        client = CouchDB(user, password, url=base, connect=True)
        db = client[dbname]

        def work() -> None:
            for b in batches(n, batch):
                db.bulk_docs(b)
    elif kind == "pycouchdb":
        import pycouchdb

        db = pycouchdb.Server(url).database(dbname)

        def work() -> None:
            for b in batches(n, batch):
                db.save_bulk(b, transaction=False)
    elif kind == "ibmcloudant":
        from ibm_cloud_sdk_core.authenticators import BasicAuthenticator, NoAuthAuthenticator
        from ibmcloudant.cloudant_v1 import BulkDocs, CloudantV1, Document

        auth = BasicAuthenticator(user, password) if user else NoAuthAuthenticator()
        service = CloudantV1(authenticator=auth)
        service.set_service_url(base)

        def work() -> None:
            for b in batches(n, batch):
                service.post_bulk_docs(db=dbname, bulk_docs=BulkDocs(docs=[Document.from_dict(d) for d in b]))
    elif kind == "dump":
        from couchcore.dump import dump

        db = couchcore.Database(f"{url.rstrip('/')}/{spec['source']}", backend="pycurl")
        sink = open(os.devnull, "wb")
        history = spec.get("history", True)
        work = lambda: dump(db, sink, parallel=conc, history=history)  # noqa: E731
    elif kind == "raw_all_docs":
        import pycurl

        def work() -> None:
            c = pycurl.Curl()
            c.setopt(pycurl.URL, f"{base}/{spec['source']}/_all_docs?include_docs=true")
            c.setopt(pycurl.HTTPHEADER, ["Accept: application/json"])
            if user is not None:
                c.setopt(pycurl.USERPWD, f"{user}:{password or ''}")
            c.setopt(pycurl.WRITEFUNCTION, lambda data: None)
            c.perform()
            c.close()
    else:
        raise SystemExit(f"unknown contender {kind}")
    cpu0, t0 = _cpu(), time.perf_counter()
    result = work()
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    out.update(wall=wall, cpu=cpu, rss_mb=_vmhwm_mb())
    if kind == "bulk_load" and result.failed:
        out["error"] = f"{len(result.failed)} documents failed"
    if kind not in ("dump", "raw_all_docs", "generate"):
        count = admin.db(dbname).info()["doc_count"]
        if count != n:
            out["error"] = f"wrote {count} documents, expected {n}"
        if not spec.get("keep"):
            admin.delete(dbname)
    return out


# -- the parent ---------------------------------------------------------------------------


PEERS = {"couchdb": "couchdb", "cloudant": "cloudant", "pycouchdb": "pycouchdb", "ibmcloudant": "ibmcloudant"}


def child_env(extra: dict | None = None) -> dict:
    """The environment of a measured child: as a user's, with bytecode caching on (an
    installed couchcore has its ``.pyc`` files; ``PYTHONDONTWRITEBYTECODE=1`` would make
    every child compile couchcore's sources again, ~0.1 s of CPU charged to each row)."""
    env = {**os.environ, **(extra or {})}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def warm_bytecode() -> None:
    """Compile couchcore's modules once before any measurement (see :func:`child_env`)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "couchcore"), str(HERE)],
                   env=child_env(), check=False, stdout=subprocess.DEVNULL)


def spawn(spec: dict, env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
                          capture_output=True, text=True, env=child_env(env), timeout=3600)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": _redact(tail)}
    return json.loads(lines[-1])


def _redact(text: str) -> str:
    from couchcore._urls import redact_url

    return redact_url(text)


#: what the ``couchcore`` console script that pip installs runs (``from couchcore.cli import
#: main``), so the command is measured as a user types it; ``python -m couchcore.cli`` costs
#: ~18M instructions more at start-up (runpy, and couchcore.cli imported a second time)
CONSOLE_SCRIPT = "import sys; from couchcore.cli import main; sys.argv[0] = 'couchcore'; sys.exit(main())"


def run_cli(url: str, dbname: str, path: str, concurrency: int, batch: int, n: int, engine: str,
            tree: str | None = None, extra_env: dict | None = None) -> dict:
    """``couchcore load`` as a user runs it: the whole process is measured (wait4).
    ``tree``: run the couchcore of another checkout (its root directory) instead."""
    import couchcore

    target = f"{url.rstrip('/')}/{dbname}"
    cmd = [sys.executable, "-c", CONSOLE_SCRIPT, "load", target, path, "--create", "--quiet",
           "--concurrency", str(concurrency), "--batch-size", str(batch)]
    env = child_env({"COUCHCORE_JSON": engine, **(extra_env or {})})
    if tree:
        env["PYTHONPATH"] = tree
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tree or None)
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out: dict[str, Any] = {"docs": n, "wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024}
    admin = couchcore.Server(url)
    if proc.returncode != 0:
        out["error"] = f"exit {proc.returncode}: {_redact(stderr.decode(errors='replace').strip()[-200:])}"
    else:
        count = admin.db(dbname).info()["doc_count"]
        if count != n:
            out["error"] = f"wrote {count} documents, expected {n}"
    try:
        admin.delete(dbname)
    except couchcore.NotFound:
        pass
    return out


def repeated(n: int, measure: Any) -> dict:
    """``measure()`` run ``n`` times: see :func:`median_of`."""
    return median_of([measure() for _ in range(max(1, n))])


def median_of(runs: list[dict]) -> dict:
    """The median wall time and the median CPU time (each its own median) of ``runs``, the
    highest peak RSS; ``runs`` says how many there were (the first error if any failed)."""
    ok = [m for m in runs if "error" not in m]
    if len(ok) < len(runs):
        return next(m for m in runs if "error" in m)
    if len(ok) == 1:
        return ok[0]
    mid = len(ok) // 2
    return {**ok[0], "wall": sorted(m["wall"] for m in ok)[mid], "cpu": sorted(m["cpu"] for m in ok)[mid],
            "rss_mb": max(m["rss_mb"] for m in ok), "runs": len(ok),
            "cpus": [round(m["cpu"] / m["docs"] * 1e6, 2) for m in ok]}


def cpu_per_doc(m: dict) -> float | None:
    return None if "error" in m else m["cpu"] / m["docs"] * 1e6


def fmt_row(label: str, m: dict, limit: dict | None, input_cpu: float | None = None) -> str:
    """One table row; ``input_cpu`` (µs/doc spent generating the input, part of the row's
    CPU) is subtracted in the "net" column."""
    if "error" in m:
        return f"| {label} | n/a | | | | | {m['error'][:80]} |"
    rate = m["docs"] / m["wall"]
    cpu_us = m["cpu"] / m["docs"] * 1e6
    net = f"{cpu_us - input_cpu:,.2f}" if input_cpu is not None else f"{cpu_us:,.2f}"
    ratio = ""
    if limit and "error" not in limit:
        ratio = f"{rate / (limit['docs'] / limit['wall']):.2f}×"
    note = ""
    if m.get("runs", 1) > 1:
        note = f"median of {m['runs']} (CPU µs/doc of each: {', '.join(f'{c:.2f}' for c in m['cpus'])})"
    return f"| {label} | {rate / 1000:,.1f}k | {cpu_us:,.2f} | {net} | {m['rss_mb']:,.0f} | {ratio} | {note} |"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("COUCHDB_URL"), help="server URL (default: start PouchDB Server)")
    ap.add_argument("--docs", type=int, default=100_000, help="documents per contender (100000)")
    ap.add_argument("--quick", action="store_true", help="20000 documents")
    ap.add_argument("--batch", type=int, default=1000, help="documents per _bulk_docs request (1000)")
    ap.add_argument("--concurrency", default="1,2,4,8", help="loader concurrencies (1,2,4,8)")
    ap.add_argument("--out", default=str(HERE / "results" / "bulk.md"), help="Markdown output file")
    ap.add_argument("--baseline-tree", metavar="DIR",
                    help="also run `couchcore load` from this other checkout (e.g. `git archive` of an older "
                         "commit), in the same run, for before/after rows")
    ap.add_argument("--rss-docs", type=int, default=0, metavar="N",
                    help="also run `couchcore load --concurrency 4` on N documents (peak RSS against the main size)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run the key rows (the limit at the command's concurrency and every `couchcore load` row) "
                         "N times and report the medians (1)")
    ap.add_argument("--key-rows", action="store_true",
                    help="only the key rows, interleaved round by round (--repeat rounds): the limit at the "
                         "command's concurrency and `couchcore load` with each engine (and of --baseline-tree), so "
                         "that a busy server slows them alike and the ratios compare like with like")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return 0
    n = 20_000 if args.quick else args.docs
    levels = [int(c) for c in args.concurrency.split(",")]
    server_ctx: Any = None
    url = args.url
    if not url:
        from couchcore.testing import PouchDBServer

        server_ctx = PouchDBServer()
        url = server_ctx.start()
    try:
        if args.key_rows:
            return _run_key(url, n, args.batch, levels[-1] if 4 not in levels else 4, Path(args.out),
                            args.baseline_tree, args.repeat)
        return _run(url, n, args.batch, levels, Path(args.out), args.baseline_tree, args.rss_docs, args.repeat)
    finally:
        if server_ctx is not None:
            server_ctx.stop()


def _run_key(url: str, n: int, batch: int, c: int, out_path: Path, baseline: str | None, rounds: int) -> int:
    """The key rows only, interleaved: each round runs every contender once, in turn."""
    import couchcore
    from couchcore import codec

    admin = couchcore.Server(url)
    welcome = admin.info()
    server_name = (f"Apache CouchDB {welcome.get('version')}" if "couchdb" in welcome
                   else f"PouchDB Server {welcome.get('version')}")
    run_id = uuid.uuid4().hex[:8]
    base = dict(url=url, docs=n, batch=batch)
    warm_bytecode()
    if baseline:
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(baseline, "couchcore")],
                       env=child_env(), check=False, stdout=subprocess.DEVNULL)
    load0 = " ".join(f"{x:.1f}" for x in os.getloadavg())
    engines = list(codec.ENGINES)
    tag = os.path.basename(baseline) if baseline else ""
    with tempfile.TemporaryDirectory(prefix="couchcore-bench-") as tmp:
        path = os.path.join(tmp, "docs.jsonl")
        with open(path, "wb") as f:
            for d in docs(n):
                f.write(codec.dumps(d) + b"\n")
        contenders: list[tuple[str, Any]] = [(f"pre-encoded bodies, {c} in flight (the server's limit)",
                                              lambda: spawn({**base, "kind": "limit", "concurrency": c,
                                                             "db": f"bench-key-{run_id}-limit"}))]
        for engine in engines:
            contenders.append((f"`couchcore load --concurrency {c}` (whole process, JSON Lines file), {engine}",
                               lambda engine=engine: run_cli(url, f"bench-key-{run_id}-{engine}", path, c, batch, n,
                                                             engine)))
            if baseline:
                contenders.append((f"before: `couchcore load --concurrency {c}` of {tag}, {engine}",
                                   lambda engine=engine: run_cli(url, f"bench-key-{run_id}-b{engine}", path, c, batch,
                                                                 n, engine, tree=baseline)))
        runs: dict[str, list[dict]] = {label: [] for label, _ in contenders}
        for r in range(max(1, rounds)):
            for label, measure in contenders:
                runs[label].append(measure())
                print(f"round {r + 1}: {label}: {fmt_row(label, runs[label][-1], None)}", file=sys.stderr, flush=True)
    limit = median_of(runs[contenders[0][0]])
    rows = [fmt_row(label, median_of(runs[label]), None if i == 0 else limit) for i, (label, _) in enumerate(contenders)]
    text = "\n".join([
        f"# Bulk load, key rows: {n:,} documents (~250 bytes), batches of {batch}, {rounds} interleaved rounds",
        "",
        f"{server_name} at {_redact(admin.url)}; client: Python {platform.python_version()}, {_cpu_model()}, "
        f"{os.cpu_count()} cores (shared with the server); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Load average {load0} at the start, {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end.",
        "Each round runs every row once, in turn (one fresh process and database each); a row is the median",
        "of its rounds (docs/s and CPU each their own median). `× limit` compares the medians. Generated by",
        "`benchmarks/bulk.py --key-rows`.",
        "",
        "| client | docs/s | client CPU µs/doc | CPU net of input µs/doc | peak RSS MB | × limit | note |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ])
    print(text)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text, encoding="utf-8")
    return 0


def _cpu_model() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        return cpu


def _run(url: str, n: int, batch: int, levels: list[int], out_path: Path, baseline: str | None = None,
         rss_docs: int = 0, repeat: int = 1) -> int:
    import couchcore
    from couchcore import codec

    admin = couchcore.Server(url)
    welcome = admin.info()
    server_name = (f"Apache CouchDB {welcome.get('version')}" if "couchdb" in welcome
                   else f"PouchDB Server {welcome.get('version')}")
    run_id = uuid.uuid4().hex[:8]
    base = dict(url=url, docs=n, batch=batch)
    rows: list[str] = []
    limits: dict[int, dict] = {}

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def name(tag: str) -> str:
        return f"bench-bulk-{run_id}-{tag}"

    warm_bytecode()
    load0 = " ".join(f"{x:.1f}" for x in os.getloadavg())
    say(f"{n:,} documents per contender against {server_name}")
    cli_c = 4 if 4 in levels else levels[-1]
    for c in levels:
        limits[c] = repeated(repeat if c == cli_c else 1,
                             lambda: spawn({**base, "kind": "limit", "concurrency": c, "db": name(f"limit{c}")}))
        rows.append(fmt_row(f"pre-encoded bodies, {c} in flight (the server's limit)", limits[c], None))
        say(rows[-1])
    gen = spawn({**base, "kind": "generate", "db": name("gen")})
    rows.append(fmt_row("(generating the documents only: part of the library rows below)", gen, None))
    g = cpu_per_doc(gen)
    engines = list(codec.ENGINES)
    for engine in engines:
        for c in levels:
            m = spawn({**base, "kind": "bulk_load", "concurrency": c, "db": name(f"load{engine}{c}")},
                      env={"COUCHCORE_JSON": engine})
            rows.append(fmt_row(f"`couchcore.bulk.load` concurrency {c}, {engine}", m, limits.get(c), g))
            say(rows[-1])
    with tempfile.TemporaryDirectory(prefix="couchcore-bench-") as tmp:
        path = os.path.join(tmp, "docs.jsonl")
        with open(path, "wb") as f:
            for d in docs(n):
                f.write(codec.dumps(d) + b"\n")
        c = cli_c
        for engine in engines:
            m = repeated(repeat, lambda: run_cli(url, name(f"cli{engine}"), path, c, batch, n, engine))
            rows.append(fmt_row(f"`couchcore load --concurrency {c}` (whole process, JSON Lines file), {engine}", m,
                                limits.get(c)))
            say(rows[-1])
        m = run_cli(url, name("clipyscan"), path, c, batch, n, codec.ENGINE, extra_env={"COUCHCORE_SCAN": "python"})
        rows.append(fmt_row(f"`couchcore load --concurrency {c}`, {codec.ENGINE}, pure-Python scanner "
                            "(COUCHCORE_SCAN=python: no C extension)", m, limits.get(c)))
        say(rows[-1])
        if baseline:
            subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(baseline, "couchcore")],
                           env=child_env(), check=False, stdout=subprocess.DEVNULL)
            for engine in engines:
                m = repeated(repeat, lambda: run_cli(url, name(f"clibase{engine}"), path, c, batch, n, engine,
                                                     tree=baseline))
                rows.append(fmt_row(f"before: `couchcore load --concurrency {c}` of {os.path.basename(baseline)}, "
                                    f"{engine}", m, limits.get(c)))
                say(rows[-1])
    if rss_docs:
        with tempfile.TemporaryDirectory(prefix="couchcore-bench-") as tmp:
            path = os.path.join(tmp, "docs.jsonl")
            with open(path, "wb") as f:
                for d in docs(rss_docs):
                    f.write(codec.dumps(d) + b"\n")
            c = cli_c
            for engine in engines:
                m = run_cli(url, name(f"clirss{engine}"), path, c, batch, rss_docs, engine)
                rows.append(fmt_row(f"`couchcore load --concurrency {c}`, {engine}, **{rss_docs:,} documents** "
                                    f"(peak RSS against the {n:,} row)", m, limits.get(c)))
                say(rows[-1])
            if baseline:
                for engine in engines:
                    m = run_cli(url, name(f"clirssbase{engine}"), path, c, batch, rss_docs, engine, tree=baseline)
                    rows.append(fmt_row(f"before: `couchcore load --concurrency {c}` of {os.path.basename(baseline)}, "
                                        f"{engine}, **{rss_docs:,} documents**", m, limits.get(c)))
                    say(rows[-1])
    seq_limit = limits.get(1)
    for backend in ("urllib3", "pycurl"):
        m = spawn({**base, "kind": "save", "backend": backend, "db": name(f"save{backend}")})
        rows.append(fmt_row(f"couchcore `db.save(batch)` sequential ({backend}, {codec.ENGINE})", m, seq_limit, g))
        say(rows[-1])
    labels = {"couchdb": "couchdb-python `db.update(batch)`", "cloudant": "cloudant `db.bulk_docs(batch)`",
              "pycouchdb": "pycouchdb `db.save_bulk(batch)`", "ibmcloudant": "ibmcloudant `post_bulk_docs`"}
    for peer, label in labels.items():
        m = spawn({**base, "kind": peer, "db": name(peer)})
        rows.append(fmt_row(label, m, seq_limit, g))
        say(rows[-1])
    # dump: a database of n documents, read back
    source = name("dumpsrc")
    src = spawn({**base, "kind": "limit", "concurrency": 4, "db": source, "keep": True})
    dump_rows = []
    if "error" in src:
        dump_rows.append(fmt_row("(loading the dump source)", src, None))
    else:
        spawn({**base, "kind": "raw_all_docs", "source": source, "db": source})  # warm the server's caches
        raw = spawn({**base, "kind": "raw_all_docs", "source": source, "db": source})
        dump_rows.append(fmt_row("raw `_all_docs?include_docs=true`, one stream (bytes discarded)", raw, None))
        for history in (False, True):  # the winners as _all_docs has them; with _revisions (_bulk_get)
            for c in (1, 4):
                m = spawn({**base, "kind": "dump", "source": source, "concurrency": c, "db": source,
                           "history": history})
                label = f"`couchcore.dump.dump(parallel={c}, history={history})` to /dev/null ({codec.ENGINE})"
                dump_rows.append(fmt_row(label, m, raw))
        for r in dump_rows:
            say(r)
        try:
            admin.delete(source)
        except couchcore.NotFound:
            pass
    header = ("| client | docs/s | client CPU µs/doc | CPU net of input µs/doc | peak RSS MB | × limit | note |\n"
              "|---|---|---|---|---|---|---|")
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        model = cpu
    text = "\n".join([
        f"# Bulk load and dump: {n:,} documents (~250 bytes), batches of {batch}",
        "",
        f"{server_name} at {_redact(admin.url)}; client: Python {platform.python_version()}, "
        f"{model}, {os.cpu_count()} cores (shared with the server); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Load average {load0} at the start, {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end.",
        "Each row is one fresh process writing into its own fresh database. `× limit` compares with the",
        "pre-encoded bodies at the same concurrency (sequential clients: 1 in flight). The library rows",
        "build their documents while the clock runs (the generator's own CPU is the 'generating' row and",
        "is taken off in the 'net' column); the `couchcore load` rows read a JSON Lines file and count",
        "the whole process (start-up included). Generated by `benchmarks/bulk.py`.",
        "",
        header,
        *rows,
        "",
        "## Dump",
        "",
        "| reader | docs/s | client CPU µs/doc | CPU net µs/doc | peak RSS MB | × raw stream | note |\n|---|---|---|---|---|---|---|",
        *dump_rows,
        "",
    ])
    print(text)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
