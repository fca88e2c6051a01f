"""The bulk loader on a CouchDB cluster: one node URL vs batches spread over every node
(``couchcore load --node``), and one node stopped mid-load (issue 12 item 2).

Each run is one ``couchcore load`` process (the CLI a user runs) into a fresh database;
the figures are its wall time (docs/s) and its CPU time (user + system, from the child's
rusage: the client's cost, not the server's), and the database's ``doc_count`` once
settled (a cluster reads it from one copy of each shard: it is awaited).

    python -m benchmarks.cluster_load FILE.jsonl URL1 URL2 URL3 [--rounds 2] \\
        [--stop-node 'CMD' --start-node 'CMD' --stop-after SECONDS]

The URLs are nodes of one cluster, with credentials. ``--stop-node``/``--start-node`` are
shell commands that stop and restart one node other than the first (e.g. ``kill`` of its
pid); with them a last run spreads over every node, stops that node ``--stop-after``
seconds in, and restarts it once the load has finished.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
import uuid

import couchcore


def count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def run_load(path: str, urls: list[str], name: str, nodes: list[str], stop: str | None = None,
             start: str | None = None, stop_after: float = 0.0) -> dict:
    admin = couchcore.Server(urls[0])
    admin.create(name)
    cli = os.path.join(os.path.dirname(sys.executable), "couchcore")  # the installed script
    cmd = [cli, "load", "--quiet", "--backend", "pycurl",
           f"{urls[0]}/{name}", path]
    for node in nodes:
        cmd[-2:-2] = ["--node", node]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stopped_at = None
    if stop:
        time.sleep(stop_after)
        subprocess.run(stop, shell=True, check=True)
        stopped_at = time.perf_counter() - t0
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if start:
        subprocess.run(start, shell=True, check=True)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    expected = count_lines(path)
    deadline = time.monotonic() + 60
    while True:  # a cluster's doc_count reads one copy of each shard: wait for it to settle
        count = admin.db(name).info()["doc_count"]
        if count == expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    admin.delete(name)
    admin.close()
    return {"nodes": 1 + len(nodes), "exit": proc.returncode, "wall": wall, "cpu": cpu,
            "docs_per_s": expected / wall, "doc_count": count, "expected": expected,
            "stopped_at": stopped_at, "stderr": err.decode(errors="replace")[-500:]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file")
    p.add_argument("urls", nargs="+")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--stop-node")
    p.add_argument("--start-node")
    p.add_argument("--stop-after", type=float, default=5.0)
    args = p.parse_args(argv)
    results = []
    for r in range(args.rounds):  # interleaved, so both see the same load on the machine
        for nodes in ([], args.urls[1:]):
            res = run_load(args.file, args.urls, f"bench-load-{uuid.uuid4().hex[:8]}", nodes)
            results.append(res)
            print(f"round {r + 1}: {res['nodes']} node(s): {res['docs_per_s']:,.0f} docs/s, "
                  f"wall {res['wall']:.1f} s, client CPU {res['cpu']:.1f} s, exit {res['exit']}, "
                  f"doc_count {res['doc_count']}/{res['expected']}", flush=True)
    if args.stop_node:
        res = run_load(args.file, args.urls, f"bench-load-{uuid.uuid4().hex[:8]}", args.urls[1:],
                       args.stop_node, args.start_node, args.stop_after)
        print(f"node stopped at {res['stopped_at']:.1f} s: {res['docs_per_s']:,.0f} docs/s, wall {res['wall']:.1f} s, "
              f"client CPU {res['cpu']:.1f} s, exit {res['exit']}, doc_count {res['doc_count']}/{res['expected']}",
              flush=True)
        if res["exit"] != 0:
            print(res["stderr"])


if __name__ == "__main__":
    main()
