"""Every guide's program (docs/examples/*.py) runs against the session's test server.

The guides include these files with ``literalinclude``, so the code a reader sees is the code
that ran here. Each example checks its own results with ``assert`` and exits non-zero when
anything differs; it reads the server from ``COUCHDB_URL`` (here: the ``couch_url`` fixture,
PouchDB Server by default, Apache CouchDB with ``COUCHDB_URL`` set).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = sorted((DOCS / "examples").glob("*.py"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 10, EXAMPLES


def test_every_example_is_in_a_guide_and_every_include_exists():
    """Each program is shown on a page, and each page shows programs that exist (and run below)."""
    included = set()
    for page in (DOCS / "guides").glob("*.rst"):
        for target in re.findall(r"^\.\. literalinclude:: (\S+)", page.read_text(), flags=re.M):
            path = (page.parent / target).resolve()
            assert path.is_file(), f"{page.name} includes {target}, which does not exist"
            included.add(path)
    assert {p.resolve() for p in EXAMPLES} <= included, "examples no guide shows"


@pytest.fixture(scope="session")
def one_node(couch_url: str, is_couchdb: bool) -> None:
    """The guides read views, ``_changes`` and ``doc_count`` right after writing, as on one node
    (or PouchDB Server); a cluster shows such writes eventually, not at once
    (https://docs.couchdb.org/en/stable/cluster/sharding.html#quorum), so they do not run there."""
    if not is_couchdb:
        return
    import couchcore

    with couchcore.Server(couch_url) as server:
        nodes = server.membership()["cluster_nodes"]
    if len(nodes) > 1:
        pytest.skip(f"the guides assume one node; this server is a cluster of {len(nodes)}")


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(example: Path, couch_url: str, tmp_path: Path, one_node: None):
    env = {k: v for k, v in os.environ.items() if k not in ("COUCHDB_USER", "COUCHDB_PASSWORD")}
    env["COUCHDB_URL"] = couch_url
    done = subprocess.run([sys.executable, str(example)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, f"{example.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    assert done.stdout.strip(), f"{example.name} printed nothing"
