"""The benchmark harness itself (benchmarks/): a tiny run end to end through the subprocess
runner, the correctness guard rejecting wrong results, and clients that cannot run
reported as n/a. Figures are not asserted (this machine is shared); shapes and statuses are.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("matplotlib")
pytest.importorskip("pycurl")

#: test-only clients, registered through the harness's --plugin hook
PLUGIN = textwrap.dedent('''
    from benchmarks import data
    from benchmarks.clients import Client, Couchcore, register


    class SwapsAKey(Couchcore):
        """Reads every row but reports one key wrong: right count, wrong checksum."""

        def view_replay(self, ctx):
            n = h = 0
            for row in self.db.view("bench/by_user"):
                key = row.key
                h ^= data.view_row_hash(row.id, key[0], key[1] + (1 if n == 7 else 0))
                n += 1
            return {"count": n, "digest": h}


    class DropsARow(Couchcore):
        def view_replay(self, ctx):
            result = Couchcore.view_replay(self, ctx)
            return {"count": result["count"] - 1, "digest": result["digest"]}


    class WritesWrongDocs(Couchcore):
        """Claims success but writes n+1 into every document: caught on the server."""

        def bulk_load(self, ctx):
            docs = [dict(d, n=d["n"] + 1) for d in data.docs(ctx["size"])]
            self.db.save(docs)
            return {"count": len(docs)}


    class NotInstalled(Client):
        requires = ("couchcore_no_such_module_for_tests",)

        def view_replay(self, ctx):
            raise AssertionError("never runs")


    register("test-swaps-a-key", SwapsAKey, {"backend": "urllib3"})
    register("test-drops-a-row", DropsARow, {"backend": "urllib3"})
    register("test-writes-wrong-docs", WritesWrongDocs, {"backend": "urllib3"})
    register("test-not-installed", NotInstalled)
''')


def harness(tmp_path: Path, *args: str, timeout: float = 240) -> dict:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "run", "--repeat", "1", "--out", str(out),
                           "--plugin", str(plugin), "--db-prefix", f"bench-test-{uuid.uuid4().hex[:8]}", *args],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    results["_md"] = (out / "results.md").read_text()
    results["_out"] = out
    results["_stderr"] = proc.stderr
    return results


def statuses(results: dict) -> dict[tuple[str, str], dict]:
    return {(m["scenario"], m["client"]): m for m in results["measurements"]}


def test_tiny_run_end_to_end_against_the_server(tmp_path, couch_url):
    results = harness(tmp_path, "--url", couch_url, "--scenarios", "bulk_load", "view_server",
                      "--sizes", "200", "--clients", "raw", "couchcore-urllib3", "test-writes-wrong-docs")
    runs = statuses(results)
    for scenario in ("bulk_load", "view_server"):
        for client in ("raw", "couchcore-urllib3"):
            m = runs[(scenario, client)]
            assert m["status"] == "ok", m
            assert m["wall_s"] > 0 and m["cpu_s"] >= 0 and m["peak_rss_mb"] > 5
            assert m["result"]["count"] == 200
    assert runs[("view_server", "couchcore-urllib3")]["result"]["digest"] == \
        runs[("view_server", "couchcore-urllib3")]["expected"]["digest"]
    # written documents are read back on the server: a client that writes wrong ones fails
    wrong = runs[("bulk_load", "test-writes-wrong-docs")]
    assert wrong["status"] == "wrong" and "reads back different" in wrong["reason"]
    meta = results["meta"]
    assert meta["machine"]["cores"] >= 1 and meta["machine"]["python"]
    assert meta["server"]  # what answered GET /
    md = results["_md"]
    assert "### Bulk load" in md and "### Full view read from the server: 200 rows" in md
    assert md.count("Machine: ") >= 2 and meta["server"] in md
    assert "| couchcore-urllib3 |" in md and "WRONG RESULT" in md
    for png in ("bulk_load-200.png", "view_server-200.png"):
        assert (results["_out"] / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # credentials never reach the files
    assert "admin:admin@" not in (results["_out"] / "results.json").read_text()


def test_guard_rejects_wrong_results_and_missing_clients_are_na(tmp_path):
    results = harness(tmp_path, "--scenarios", "view_replay", "--sizes", "1000", "--clients",
                      "couchcore-urllib3", "test-swaps-a-key", "test-drops-a-row", "test-not-installed",
                      "no-such-client")
    runs = statuses(results)
    assert runs[("view_replay", "couchcore-urllib3")]["status"] == "ok"
    swapped = runs[("view_replay", "test-swaps-a-key")]
    assert swapped["status"] == "wrong" and swapped["result"]["count"] == 1000
    assert "checksum" in swapped["reason"]
    dropped = runs[("view_replay", "test-drops-a-row")]
    assert dropped["status"] == "wrong" and "count 999" in dropped["reason"]
    missing = runs[("view_replay", "test-not-installed")]
    assert missing["status"] == "n/a" and "not installed" in missing["reason"]
    assert runs[("view_replay", "no-such-client")]["status"] == "n/a"
    summary = {e["client"]: e for e in results["summary"]}
    for name in ("test-swaps-a-key", "test-drops-a-row", "test-not-installed"):
        assert "throughput" not in summary[name]  # no figure, so never a win
    md = results["_md"]
    assert md.count("**WRONG RESULT**") == 2
    assert "| test-not-installed | n/a: not installed" in md
    assert (results["_out"] / "view_replay-1000.png").exists()
