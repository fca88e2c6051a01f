"""The benchmark harness itself (benchmarks/): a tiny run end to end through the subprocess
runner, the correctness guard rejecting wrong results, and clients that cannot run
reported as n/a. Figures are not asserted (this machine is shared); shapes and statuses are.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

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


    class Slow(Couchcore):
        """Says it started (a file beside this plugin), then takes a minute: the Ctrl-C test interrupts it."""

        def view_replay(self, ctx):
            import pathlib, time
            pathlib.Path(__file__).with_name("slow-started").touch()
            time.sleep(60)
            return Couchcore.view_replay(self, ctx)


    register("test-slow", Slow, {"backend": "urllib3"})


    from benchmarks.clients import Cloudant


    class CloudantLosesItsSession(Cloudant):
        """cloudant whose session cookie stops being accepted mid-run (as when the server's auth
        secret changes): it must log in again, not fail the measurement with a 401."""

        def get_seq(self, ctx):
            session = self.client.r_session
            for cookie in list(session.cookies):
                if cookie.name == "AuthSession":
                    session.cookies.set("AuthSession", "YWRtaW46NjAwMDAwMDA6AAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                        domain=cookie.domain, path=cookie.path)
                    break
            else:
                raise AssertionError("cloudant holds no AuthSession cookie")
            return Cloudant.get_seq(self, ctx)


    register("test-cloudant-loses-session", CloudantLosesItsSession)
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
    # median with min-max of wall, client CPU and peak RSS, in the summary and the tables
    for entry in results["summary"]:
        if entry["status"] == "ok":
            for field in ("wall", "cpu", "rss"):
                assert entry[f"{field}_min"] <= entry[f"{field}_median"] <= entry[f"{field}_max"], entry
    assert "| client CPU s, median (min–max) |" in results["_md"]
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
                      "couchcore-urllib3", "test-swaps-a-key", "test-drops-a-row", "test-not-installed")
    runs = statuses(results)
    assert runs[("view_replay", "couchcore-urllib3")]["status"] == "ok"
    swapped = runs[("view_replay", "test-swaps-a-key")]
    assert swapped["status"] == "wrong" and swapped["result"]["count"] == 1000
    assert "checksum" in swapped["reason"]
    dropped = runs[("view_replay", "test-drops-a-row")]
    assert dropped["status"] == "wrong" and "count 999" in dropped["reason"]
    missing = runs[("view_replay", "test-not-installed")]
    assert missing["status"] == "n/a" and "not installed" in missing["reason"]
    summary = {e["client"]: e for e in results["summary"]}
    for name in ("test-swaps-a-key", "test-drops-a-row", "test-not-installed"):
        assert "throughput" not in summary[name]  # no figure, so never a win
    md = results["_md"]
    assert md.count("**WRONG RESULT**") == 2
    assert "| test-not-installed | n/a: not installed" in md
    assert (results["_out"] / "view_replay-1000.png").exists()


def _bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``couchcore bench ARGS`` through the CLI's entry point, as a user types it."""
    return subprocess.run([sys.executable, "-c", "import sys; from couchcore.cli import main; sys.exit(main())",
                           "bench", *args], cwd=str(ROOT), capture_output=True, text=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_arguments_fail_with_one_line_and_no_password(tmp_path, couch_url):
    out = str(tmp_path / "out")
    wrong = urlsplit(couch_url)._replace(netloc=f"admin:Wr0ngPassw0rd@{urlsplit(couch_url).hostname}:"
                                                f"{urlsplit(couch_url).port}").geturl()
    cases = {
        "unknown scenario": (["--scenarios", "no_such_scenario"], "unknown scenarios: no_such_scenario"),
        # a typo must not run nothing and exit 0 (it was reported as an n/a row)
        "unknown client": (["--clients", "couchcore-urlib3", "--scenarios", "view_replay"],
                           "unknown clients: couchcore-urlib3"),
        "server down": (["--url", f"http://admin:S3cretPassw0rd@127.0.0.1:{_free_port()}", "--scenarios", "get_seq"],
                        "cannot use the server at http://***@127.0.0.1:"),
        "wrong password": (["--url", wrong, "--scenarios", "get_seq"], "401"),
    }
    for case, (args, expected) in cases.items():
        proc = _bench("run", "--repeat", "1", "--out", out, *args)
        assert proc.returncode == 2, (case, proc.stderr[-2000:])
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (case, proc.stderr[-2000:])
        assert "S3cretPassw0rd" not in proc.stderr + proc.stdout
        assert "Wr0ngPassw0rd" not in proc.stderr + proc.stdout
        assert not (tmp_path / "out" / "results.json").exists(), case
    # a report that cannot be written, or sizes the report cannot divide by: refused before any run
    (tmp_path / "a-file").write_text("")
    proc = _bench("run", "--scenarios", "view_replay", "--out", str(tmp_path / "a-file" / "out"))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == \
        [f"cannot write the report to {tmp_path / 'a-file' / 'out'}: Not a directory"], proc.stderr[-2000:]
    proc = _bench("run", "--scenarios", "view_replay", "--sizes", "0", "--out", out)
    assert proc.returncode == 2 and "--sizes must be at least 1" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (tmp_path / "out" / "results.json").exists()
    # the CLI hands --help to the harness (argparse.REMAINDER used to refuse it)
    proc = _bench("--help")
    assert proc.returncode == 0 and "usage: couchcore bench" in proc.stdout, proc.stderr


def test_ctrl_c_keeps_the_runs_finished_so_far(tmp_path):
    """SIGINT to the whole process group, as Ctrl-C in a terminal sends it, while the second client
    runs: exit 130, one line saying so, the first client's runs in the report, no traceback, and
    the replay server gone."""
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks", "run", "--repeat", "1", "--out", str(out),
                             "--plugin", str(plugin), "--scenarios", "view_replay", "--sizes", "1000",
                             "--clients", "couchcore-urllib3", "test-slow"],
                            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    started = tmp_path / "slow-started"
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), "the slow client never started"
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "interrupted: writing the report of the 1 runs finished so far" in stderr
    results = json.loads((out / "results.json").read_text())
    assert results["meta"]["interrupted"] == 1
    assert [(m["client"], m["status"]) for m in results["measurements"]] == [("couchcore-urllib3", "ok")]
    md = (out / "results.md").read_text()
    assert "**Interrupted** (Ctrl-C) after 1 runs" in md and "| couchcore-urllib3 |" in md
    assert "test-slow" not in md
    # nothing of the run is left: the replay server (same process group) has exited
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.killpg(proc.pid, 0)
            time.sleep(0.1)


@pytest.mark.couchdb_only  # PouchDB Server accepts the request without a valid session cookie
def test_cloudant_logs_in_again_when_its_session_is_refused(tmp_path, couch_url):
    """A full run on CouchDB lost cloudant's get_seq figure to a 401 once: with its session cookie
    refused mid-run, cloudant (auto_renew=True) logs in again; without it every request is 401."""
    pytest.importorskip("cloudant")
    results = harness(tmp_path, "--url", couch_url, "--scenarios", "get_seq", "--sizes", "20",
                      "--clients", "test-cloudant-loses-session")
    run = statuses(results)[("get_seq", "test-cloudant-loses-session")]
    assert run["status"] == "ok", run


def test_default_variants_do_not_follow_the_callers_codec():
    """The children run without COUCHCORE_JSON, so the default variants are chosen for the codec
    they get (orjson when installed), whatever the caller's environment says."""
    pytest.importorskip("orjson")
    code = "from benchmarks import harness; print(' '.join(harness.select_clients(None, True)))"
    for env_codec in ("simplejson", "orjson", None):
        env = {k: v for k, v in os.environ.items() if k != "COUCHCORE_JSON"}
        if env_codec:
            env["COUCHCORE_JSON"] = env_codec
        chosen = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), env=env, capture_output=True,
                                text=True, check=True).stdout.split()
        assert "couchcore-urllib3/simplejson" in chosen and "couchcore-urllib3/orjson" not in chosen, (env_codec, chosen)
