"""Turn the log of an interrupted `python -m benchmarks run` into its report (complete scenarios only)."""
import re, sys, time, json
from pathlib import Path
sys.path.insert(0, "/tmp/bench/main")
from benchmarks import harness, report

log = Path("/tmp/bench/run.log").read_text().splitlines()
head = re.compile(r"^(\w+) ([\d,]+) \((.*)\): (\d+) clients x (\d+)$")
line = re.compile(r"^  (\S+)\s+(ok|error|wrong|n/a)(.*)$")
okre = re.compile(r"\s+([\d.]+)s\s+cpu ([\d.]+)s\s+peak ([\d.]+) MB")
blocks, cur = [], None
for l in log:
    m = head.match(l)
    if m:
        cur = {"scenario": m[1], "size": int(m[2].replace(",", "")), "server": m[3], "n": int(m[4]) * int(m[5]), "rows": []}
        blocks.append(cur)
        continue
    m = line.match(l)
    if m and cur is not None:
        cur["rows"].append((m[1], m[2], m[3]))
measurements, scenarios = [], []
for b in blocks:
    if len(b["rows"]) < b["n"]:
        print("incomplete, left out:", b["scenario"], b["size"], len(b["rows"]), "/", b["n"])
        continue
    if b["scenario"] not in scenarios:
        scenarios.append(b["scenario"])
    seen = {}
    for client, status, rest in b["rows"]:
        k = seen.get(client, 0); seen[client] = k + 1
        r = {"scenario": b["scenario"], "size": b["size"], "client": client, "run": k, "server": b["server"], "status": status}
        if status == "ok":
            w, c, p = okre.match(rest).groups()
            r.update(wall_s=float(w), cpu_s=float(c), peak_rss_mb=float(p))
        else:
            r["reason"] = rest.lstrip(": ").strip()
        measurements.append(r)
first = log[0] if log else ""
meta = {"machine": harness.machine(), "quick": False, "repeat": 2, "started": "2026-11-30T09:36:09Z",
        "clients": sorted({m["client"] for m in measurements}, key=[m["client"] for m in measurements].index),
        "scenarios": scenarios, "server": "Apache CouchDB 3.5.0",
        "replay_server": "couchcore benchmarks replay server, CouchDB 3.5.0 framing",
        "load_average": [8.3, harness._load()], "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "elapsed_s": time.time() - time.mktime(time.strptime("2026-11-30T09:36:09", "%Y-%m-%dT%H:%M:%S")),
        "interrupted": "the run was stopped during get_c16 at the end of the session; only complete scenarios are reported"}
paths = report.write_all(Path(sys.argv[1]), meta, measurements, harness.SCENARIOS)
print(paths)
