"""The benchmark harness: every scenario x client in its own process, repeated, checked,
reported (Markdown tables, one JSON file, PNG charts).

    python -m benchmarks run [--quick] [--url URL] [--scenarios ...] [--clients ...]
                             [--repeat N] [--out DIR]

Without ``--url`` a throw-away PouchDB Server is started (slow and memory-hungry: fine for
checking the harness, not for headline figures; use Apache CouchDB for those).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from couchcore.errors import CouchcoreError

from . import clients as _clients
from . import data
from .child import redact

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "latest"  # not tracked: committed runs are copied under their own name
MB = 1 << 20


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    unit: str                 # what throughput counts: docs, rows, changes, requests, MB
    full: tuple[int, ...]     # sizes of a full run
    quick: tuple[int, ...]    # sizes of a --quick run
    server: str = "server"    # "server" or "replay"


SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("bulk_load", "Bulk load (_bulk_docs, batches of 1,000)", "docs", (100_000,), (3_000,)),
    Scenario("view_replay", "Full view read from a replay server (client only)", "rows",
             (10_000, 100_000, 1_000_000), (10_000, 100_000), "replay"),
    Scenario("view_server", "Full view read from the server", "rows", (100_000,), (5_000,)),
    Scenario("all_docs", "_all_docs?include_docs=true", "rows", (200_000,), (5_000,)),
    Scenario("changes", "_changes (normal feed) read", "changes", (100_000,), (5_000,)),
    Scenario("get_seq", "Single-document GETs, one at a time", "requests", (10_000,), (100,)),
    Scenario("get_c16", "Single-document GETs, 16 in flight", "requests", (10_000,), (100,)),
    Scenario("att_up", "Attachment upload", "MB", (50 * MB,), (2 * MB,)),
    Scenario("att_down", "Attachment download", "MB", (50 * MB,), (2 * MB,)),
]}

DB_PREFIX = "couchcore-bench"


# -- the server side: datasets, per-run setup and the server-side checks ------------------------


class Bench:
    """Talks to the server under test for setup and verification (couchcore, untimed)."""

    def __init__(self, url: str, workdir: Path) -> None:
        import couchcore

        self.url = url.rstrip("/")
        self.server = couchcore.Server(self.url, timeout=3600)
        self.workdir = workdir
        self.created: set[str] = set()
        self.seeded: set[str] = set()
        self.att_files: dict[int, Path] = {}

    def info(self) -> dict[str, Any]:
        return dict(self.server.info())

    def fresh_db(self, name: str) -> Any:
        if self.server.exists(name):
            self.server.delete(name)
        db = self.server.create(name)
        self.created.add(name)
        return db

    def drop(self, name: str) -> None:
        try:
            self.server.delete(name)
        except Exception:  # noqa: BLE001 - best effort
            pass
        self.created.discard(name)

    def dataset(self, ndocs: int, with_view: bool) -> str:
        """A database holding the first ``ndocs`` benchmark documents (and the view), seeded once."""
        from couchcore.bulk import load

        name = f"{DB_PREFIX}-{'view' if with_view else 'docs'}-{ndocs}"
        if name in self.seeded:
            return name
        if self.reuse(name, ndocs, with_view):
            _log(f"  reusing {name} (left by an earlier --keep-data run)")
            self.seeded.add(name)
            self.created.add(name)
            return name
        db = self.fresh_db(name)
        backend = "pycurl" if _has("pycurl") else "urllib3"
        loader = type(db)(f"{self.url}/{name}", backend=backend, timeout=3600)
        t0 = time.perf_counter()
        report = load(loader, data.docs(ndocs), batch_size=1000, concurrency=4)
        if report.written != ndocs:
            raise RuntimeError(f"seeding {name}: {report}")
        if with_view:
            db.save(data.design_doc())
            list(db.view(f"bench/{data.VIEW}", limit=1))  # build the index before anything is timed
        _log(f"  seeded {name}: {ndocs:,} docs{' + view index' if with_view else ''} "
             f"in {time.perf_counter() - t0:.1f}s")
        self.seeded.add(name)
        return name

    def reuse(self, name: str, ndocs: int, with_view: bool) -> bool:
        """Whether ``name`` already holds exactly the dataset (a --keep-data run left it)."""
        if not self.server.exists(name):
            return False
        db = self.server.db(name)
        if db.info()["doc_count"] != ndocs + (1 if with_view else 0):
            return False
        if with_view:
            if db.get([data.DDOC_ID])[0] is None:
                return False
            list(db.view(f"bench/{data.VIEW}", limit=1))
        return self.check_loaded(name, ndocs, extra=1 if with_view else 0) == ""

    def att_file(self, size: int) -> Path:
        if size not in self.att_files:
            path = self.workdir / f"attachment-{size}.bin"
            path.write_bytes(data.attachment_bytes(size))
            self.att_files[size] = path
        return self.att_files[size]

    def att_doc(self, dbname: str, docid: str, size: int | None = None) -> dict[str, str]:
        """Create ``docid`` (with the attachment of ``size`` bytes if given); ``{_id, _rev}``."""
        db = self.server.db(dbname)
        doc: dict[str, Any] = {"_id": docid, "type": "holder"}
        db.save(doc)
        if size is not None:
            with open(self.att_file(size), "rb") as f:
                db.put_attachment(doc, f, data.ATTACHMENT_NAME, data.ATTACHMENT_TYPE)
        return {"_id": doc["_id"], "_rev": doc["_rev"]}

    # -- checks of what a writing client left on the server --
    def check_loaded(self, dbname: str, ndocs: int, extra: int = 0) -> str:
        db = self.server.db(dbname)
        count = db.info()["doc_count"] - extra
        if count != ndocs:
            return f"server holds {count} documents, expected {ndocs}"
        sample = data.gets_ids(min(50, ndocs), ndocs)
        got = db.get(sample)
        for docid, doc in zip(sample, got):
            want = data.make_doc(int(docid[3:]))
            if doc is None:
                return f"{docid} missing on the server"
            if {k: doc.get(k) for k in want} != want:
                return f"{docid} reads back different: {dict(doc)!r}"
        return ""

    def check_attachment(self, dbname: str, docid: str, size: int) -> str:
        doc = self.server.db(dbname).get(docid)
        stub = (doc.get("_attachments") or {}).get(data.ATTACHMENT_NAME)
        if not stub:
            return "no attachment on the server"
        if stub.get("length") == size and stub.get("digest") == data.attachment_md5_digest(size):
            return ""
        # stored differently (e.g. a gzip-encoded upload is kept encoded, and the stub then gives
        # the encoded length and digest): what matters is the content that reads back
        crc = length = 0
        for chunk in self.server.db(dbname).open_attachment(docid, data.ATTACHMENT_NAME):
            crc = zlib.crc32(chunk, crc)
            length += len(chunk)
        if length != size:
            return f"attachment reads back {length} bytes, expected {size}"
        if crc != zlib.crc32(data.attachment_bytes(size)):
            return "attachment reads back different bytes"
        return ""

    def cleanup(self) -> None:
        for name in sorted(self.created):
            self.drop(name)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- running one child --------------------------------------------------------------------------


@dataclass
class RunPlan:
    scenario: Scenario
    size: int
    ctx: dict[str, Any]
    before: Any = None   # callable(run index) -> ctx updates, per run
    after: Any = None    # callable(ctx, result) -> problem text ("" when fine)


def run_child(client: str, scenario: str, ctx: dict, timeout: float, plugin: str | None) -> dict[str, Any]:
    cls, _options, env_extra, _only = _clients.REGISTRY.get(client, (None, {}, {}, None))
    env = {k: v for k, v in os.environ.items() if k not in ("COUCHCORE_ROWS_BACKEND", "COUCHCORE_JSON")}
    env.update(env_extra)
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    spec = {"client": client, "scenario": scenario, "ctx": ctx, "plugin": plugin}
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.child", json.dumps(spec)], cwd=str(ROOT),
                              env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {timeout:.0f}s"}
    lines = proc.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "error", "reason": f"child exited {proc.returncode}: {tail[:300]}"}


# -- plans: what each scenario needs on the server, per size ---------------------------------------


def plans(bench: Bench | None, scenario: Scenario, size: int, replay_url: str | None) -> RunPlan:
    name = scenario.name
    base = {"size": size, "batch": 1000, "concurrency": 16}
    if name == "view_replay":
        assert replay_url is not None
        return RunPlan(scenario, size, {**base, "url": replay_url, "db": f"replay-{size}"})
    assert bench is not None
    ctx = {**base, "url": bench.url}
    if name == "bulk_load":
        def before(k: int) -> dict:
            db = f"{DB_PREFIX}-load"
            bench.fresh_db(db)
            return {"db": db}

        def after(c: dict, result: dict) -> str:
            try:
                return bench.check_loaded(c["db"], size) if result.get("status") == "ok" else ""
            finally:
                bench.drop(c["db"])
        return RunPlan(scenario, size, ctx, before, after)
    if name == "view_server":
        return RunPlan(scenario, size, {**ctx, "db": bench.dataset(size, with_view=True)})
    if name in ("all_docs", "changes"):
        return RunPlan(scenario, size, {**ctx, "db": bench.dataset(size, with_view=False)})
    if name in ("get_seq", "get_c16"):
        # distinct ids from a documents database seeded for another scenario if one is big enough
        seeded = sorted(int(have.rsplit("-", 1)[1]) for have in bench.seeded if have.startswith(f"{DB_PREFIX}-docs-"))
        ndocs = next((n for n in seeded if n >= size), 10 * size)
        return RunPlan(scenario, size, {**ctx, "db": bench.dataset(ndocs, with_view=False), "gets": [size, ndocs]})
    if name == "att_up":
        path = str(bench.att_file(size))

        def before_up(k: int) -> dict:
            db = f"{DB_PREFIX}-att-up"
            bench.fresh_db(db)
            return {"db": db, "att_doc": bench.att_doc(db, "upload")}

        def after_up(c: dict, result: dict) -> str:
            try:
                return bench.check_attachment(c["db"], "upload", size) if result.get("status") == "ok" else ""
            finally:
                bench.drop(c["db"])
        return RunPlan(scenario, size, {**ctx, "att_path": path, "att_name": data.ATTACHMENT_NAME,
                                        "att_type": data.ATTACHMENT_TYPE}, before_up, after_up)
    if name == "att_down":
        db = f"{DB_PREFIX}-att-down-{size}"
        bench.fresh_db(db)
        doc = bench.att_doc(db, "blob", size)
        return RunPlan(scenario, size, {**ctx, "db": db, "att_doc": doc, "att_name": data.ATTACHMENT_NAME,
                                        "att_type": data.ATTACHMENT_TYPE})
    raise KeyError(name)


# -- selection -------------------------------------------------------------------------------------


def select_clients(patterns: list[str] | None, quick: bool) -> list[str]:
    names = list(_clients.REGISTRY)
    if not patterns:
        # the codec a child uses without COUCHCORE_JSON (run_child drops it from the environment;
        # this process's couchcore.codec.ENGINE would follow the caller's COUCHCORE_JSON instead)
        default_codec = "orjson" if _has("orjson") else "simplejson"
        chosen = []
        for name in names:
            variant = name.partition("/")[2]
            if variant and variant == default_codec:
                continue  # the same as the plain client
            if quick and variant and not name.startswith("couchcore-urllib3/"):
                continue  # --quick: variants on one backend only
            chosen.append(name)
        return chosen
    chosen = []
    for pattern in patterns:
        expanded = list(_clients.PEERS) if pattern == "peers" else (
            names if pattern == "all" else [n for n in names if fnmatch.fnmatchcase(n, pattern)])
        if not expanded:
            expanded = [pattern]  # kept, so that run() names it (a typo must not measure nothing, silently)
        chosen += [n for n in expanded if n not in chosen]
    return chosen


def applies(client: str, scenario: str) -> bool:
    """Whether a client variant is meant for a scenario (variants only where they matter)."""
    entry = _clients.REGISTRY.get(client)
    return entry is None or entry[3] is None or scenario in entry[3]


# -- the machine -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mb": mem, "load_start": _load(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(), "os": f"{platform.system()} {platform.release()}"}


def _load() -> float:
    """The 1-minute load average (other work on the machine makes wall times noisy)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return 0.0


def describe_server(info: dict[str, Any]) -> str:
    version = info.get("version", "?")
    if "couchdb" in info:
        vendor = (info.get("vendor") or {}).get("name", "")
        if "replay" in vendor:
            return f"replay server ({vendor}, CouchDB {version} framing)"
        return f"Apache CouchDB {version}"
    if "express-pouchdb" in info:
        return f"PouchDB Server (express-pouchdb {version})"
    return f"{next(iter(info), 'server')} {version}"


# -- main ------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from . import report
    global DB_PREFIX
    DB_PREFIX = args.db_prefix

    scenario_names = args.scenarios or list(SCENARIOS)
    unknown = [s for s in scenario_names if s not in SCENARIOS]
    if unknown:
        _log(f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
        return 2
    if args.plugin:
        from .child import load_plugin

        load_plugin(args.plugin)
    client_names = select_clients(args.clients, args.quick)
    unknown = [c for c in client_names if c not in _clients.REGISTRY]
    if unknown:
        _log(f"unknown clients: {', '.join(unknown)} (known: {', '.join(_clients.REGISTRY)}; "
             "or a glob such as 'couchcore-*', 'peers', 'all')")
        return 2
    repeat = args.repeat or (2 if args.quick else 3)
    out_dir = Path(args.out) if args.out else RESULTS
    try:  # before anything runs: a run whose report cannot be written is lost
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / ".write-test").touch()
        (out_dir / ".write-test").unlink()
    except OSError as exc:
        _log(f"cannot write the report to {out_dir}: {exc.strerror or exc}")
        return 2
    timeout = args.timeout or (300.0 if args.quick else 1800.0)
    needs_server = any(SCENARIOS[s].server == "server" for s in scenario_names)
    sizes_override = args.sizes

    measurements: list[dict[str, Any]] = []
    started = time.time()
    meta: dict[str, Any] = {"machine": machine(), "quick": args.quick, "repeat": repeat,
                            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                            "clients": client_names, "scenarios": scenario_names}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="couchcore-bench-") as tmp:
        bench = None
        if needs_server:
            url = args.url
            if not url:
                from couchcore.testing import PouchDBServer

                _log("no --url: starting a throw-away PouchDB Server (not for headline figures)")
                url = stack.enter_context(PouchDBServer())
            try:
                bench = Bench(url, Path(tmp))
                meta["server"] = describe_server(bench.info())
            except CouchcoreError as exc:
                # one line, never the password (couchcore's messages carry none; redact() for the URL)
                _log(f"cannot use the server at {redact(url)}: {redact(str(exc))}")
                return 2
            if not args.keep_data:
                stack.callback(bench.cleanup)
        replay_url = None
        if "view_replay" in scenario_names:
            sizes = sizes_override or (SCENARIOS["view_replay"].quick if args.quick else SCENARIOS["view_replay"].full)
            proc = subprocess.Popen([sys.executable, "-m", "benchmarks.replay", *map(str, sizes)], cwd=str(ROOT),
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                    env={**os.environ, "PYTHONPATH": str(ROOT)})
            stack.callback(proc.wait, 10)
            stack.callback(proc.stdin.close)  # type: ignore[union-attr]
            port = json.loads(proc.stdout.readline())["port"]  # type: ignore[union-attr]
            replay_url = f"http://admin:admin@127.0.0.1:{port}"
            meta["replay_server"] = describe_server(_get_json(f"http://127.0.0.1:{port}/"))
        _log(f"machine: {meta['machine']['cpu']}, {meta['machine']['cores']} cores, Python {meta['machine']['python']}; "
             f"server: {meta.get('server', '-')}; clients: {', '.join(client_names)}")

        try:
            measure_all(args, scenario_names, client_names, repeat, timeout, bench, replay_url, meta, measurements)
        except KeyboardInterrupt:
            meta["interrupted"] = len(measurements)
            _log(f"interrupted: writing the report of the {len(measurements)} runs finished so far "
                 "(Ctrl-C again to skip it)")
        meta["load_average"] = [round(meta["machine"].get("load_start", 0.0), 2), _load()]
        meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        meta["elapsed_s"] = round(time.time() - started, 1)
    paths = report.write_all(out_dir, meta, measurements, SCENARIOS)
    _log(f"{'interrupted after' if 'interrupted' in meta else 'done in'} {meta['elapsed_s']:.0f}s; wrote "
         + ", ".join(str(p) for p in paths))
    return 130 if "interrupted" in meta else 0


def measure_all(args: argparse.Namespace, scenario_names: list[str], client_names: list[str], repeat: int,
                timeout: float, bench: Bench | None, replay_url: str | None, meta: dict[str, Any],
                measurements: list[dict[str, Any]]) -> None:
    """Every scenario x size x client, ``repeat`` rounds; appends each run to ``measurements``."""
    sizes_override = args.sizes
    for sname in scenario_names:
        scenario = SCENARIOS[sname]
        sizes = sizes_override or (scenario.quick if args.quick else scenario.full)
        for size in sizes:
            targets = [c for c in client_names if applies(c, sname)]
            try:
                plan = plans(bench, scenario, size, replay_url)
            except Exception as exc:  # noqa: BLE001 - a scenario that cannot be set up is reported
                _log(redact(f"{sname} {size:,}: setup failed: {exc}"))
                for c in targets:
                    measurements.append({"scenario": sname, "size": size, "client": c, "run": 0,
                                         "status": "error", "reason": redact(f"setup failed: {exc}")[:300]})
                continue
            server_label = meta.get("replay_server") if scenario.server == "replay" else meta.get("server")
            _log(f"{sname} {size:,} ({server_label}): {len(targets)} clients x {repeat}")
            skip: set[str] = set()
            for k in range(repeat):
                for c in targets:  # round robin: a noisy minute hurts every client alike
                    if c in skip:
                        continue
                    ctx = dict(plan.ctx)
                    try:
                        if plan.before:
                            ctx.update(plan.before(k))
                        result = run_child(c, sname, ctx, timeout, args.plugin)
                        if plan.after:
                            problem = plan.after(ctx, result)
                            if problem:
                                result["status"] = "wrong"
                                result["reason"] = "; ".join(filter(None, [result.get("reason"), problem]))
                    except CouchcoreError as exc:  # the server failed the untimed setup or check
                        result = {"status": "error",
                                  "reason": redact(f"server-side setup/check: {type(exc).__name__}: {exc}")[:300]}
                    result.update(scenario=sname, size=size, client=c, run=k, server=server_label)
                    if result.get("status") != "error":
                        result.pop("traceback", None)
                    measurements.append(result)
                    if result["status"] == "n/a":
                        skip.add(c)  # not installed / cannot do: the same on every repeat
                    _log(f"  {c:<28} {_short(result)}")


def _short(r: dict) -> str:
    if r.get("status") == "ok":
        return f"ok  {r['wall_s']:.3f}s  cpu {r['cpu_s']:.3f}s  peak {r['peak_rss_mb']:.0f} MB"
    return f"{r.get('status')}: {r.get('reason')}"


def _get_json(url: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def main(argv: list[str] | None = None, prog: str = "python -m benchmarks") -> int:
    """Run the harness's command line (``prog`` names it in usage and errors); the exit status."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.command == "list":
        for s in SCENARIOS.values():
            print(f"{s.name:<12} {s.title}; sizes {', '.join(map(str, s.full))} (quick: {', '.join(map(str, s.quick))})")
        for name, (cls, _o, env, only) in _clients.REGISTRY.items():
            extra = " ".join(f"{k}={v}" for k, v in env.items())
            print(f"{name:<28} {cls.family:<9} {extra}{' (only ' + ', '.join(sorted(only)) + ')' if only else ''}")
        return 0
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.sizes is not None and min(args.sizes) < 1:
        parser.error("--sizes must be at least 1")  # a size of 0 ran, then the report divided by it
    if args.timeout is not None and args.timeout <= 0:
        parser.error("--timeout must be positive")
    try:
        return run(args)
    except KeyboardInterrupt:  # before the first run (starting the servers, seeding): nothing to report
        _log("interrupted")
        return 130


def build_parser(prog: str = "python -m benchmarks") -> argparse.ArgumentParser:
    """The harness's argument parser (``python -m benchmarks``, ``couchcore bench``; the docs read it)."""
    parser = argparse.ArgumentParser(prog=prog, description=" ".join(__doc__.split("\n\n")[0].split()))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run scenarios x clients, write tables, JSON and charts")
    p.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    p.add_argument("--url", help="server to measure (credentials in the URL); default: a throw-away PouchDB Server")
    p.add_argument("--scenarios", nargs="+", metavar="NAME", help=f"default: all ({', '.join(SCENARIOS)})")
    p.add_argument("--clients", nargs="+", metavar="NAME",
                   help="names or globs (couchcore-* is every couchcore variant), 'peers', 'all'; default: every client, with the "
                        "couchcore variants (pure-Python rows, the other codec) on urllib3 only under --quick")
    p.add_argument("--repeat", type=int, metavar="N", help="runs per scenario x client (default 3; 2 with --quick)")
    p.add_argument("--out", metavar="DIR", help=f"output directory (default {RESULTS})")
    p.add_argument("--sizes", type=int, nargs="+", metavar="N", help="override every selected scenario's sizes")
    p.add_argument("--timeout", type=float, help="seconds per run (default 300 quick, 1800 full)")
    p.add_argument("--keep-data", action="store_true", help="leave the benchmark databases on the server")
    p.add_argument("--db-prefix", default=DB_PREFIX, help=f"names of the benchmark databases ({DB_PREFIX}-...)")
    p.add_argument("--plugin", help=argparse.SUPPRESS)  # a file registering extra clients (tests)
    sub.add_parser("list", help="list scenarios and clients")
    return parser


if __name__ == "__main__":
    sys.exit(main())
