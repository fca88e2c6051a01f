"""The bulk loader and the `couchcore load` command against the real test server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import couchcore
from couchcore.bulk import load


def test_load_generator_in_batches(db):
    seen = []
    report = load(db, ({"i": i} for i in range(2500)), batch_size=300, concurrency=3, progress=seen.append)
    assert report.written == 2500 and not report.failed and report.batches == 9
    assert sum(seen) == 2500 and report.docs_per_second > 0
    assert db.info()["doc_count"] == 2500
    assert "2,500 written" in str(report)


def test_load_reports_every_failure(db):
    db.save({"_id": "taken"})
    docs = [{"_id": "a"}, {"_id": "taken"}, {"_id": "nan", "x": float("nan")}, ["not", "a", "doc"], {"_id": "b"},
            ValueError("unparsable input line")]
    report = load(db, docs, batch_size=2, concurrency=2)
    assert report.written == 2 and report.total == 6
    assert report.failed["taken"]["error"] == "conflict"
    assert report.failed["nan"]["error"] == "invalid"
    assert report.failed["#4"]["error"] == "invalid" and report.failed["#6"]["error"] == "ValueError"
    assert "a" in db and "b" in db and "nan" not in db


def test_load_transport_failure_marks_batch_failed():
    offline = couchcore.Server("http://127.0.0.1:9", retries=0)
    db = offline._database("nowhere")
    report = load(db, [{"_id": f"d{i}"} for i in range(5)], batch_size=2)
    assert report.written == 0 and set(report.failed) == {f"d{i}" for i in range(5)}
    assert all(f["error"] == "ConnectionError" for f in report.failed.values())


def test_load_rejects_bad_arguments(db):
    with pytest.raises(ValueError):
        load(db, [], batch_size=0)


def test_cli_load(tmp_path, couch_url, server):
    source = tmp_path / "docs.jsonl"
    lines = [json.dumps({"_id": f"l{i}", "i": i}) for i in range(120)] + ["{broken", ""]
    source.write_text("\n".join(lines) + "\n")
    name = "cli-" + tmp_path.name[-8:].lower().replace("_", "-")
    failures = tmp_path / "failures.jsonl"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "couchcore.cli", "load", f"{couch_url}/{name}", str(source), "--create",
             "--quiet", "--batch", "50", "--failures", str(failures)],
            capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 1, proc.stderr  # one bad line
        assert "120 written, 1 failed" in proc.stdout
        failed = [json.loads(line) for line in failures.read_text().splitlines()]
        assert failed[0]["key"] == "#121" and failed[0]["error"] == "ParseError"
        assert len(server.db(name)) == 120
        password = couch_url.split("@")[0].rsplit(":", 1)[-1] if "@" in couch_url else None
        if password:
            assert password not in proc.stdout + proc.stderr or password == "admin"
    finally:
        if name in server:
            server.delete(name)
