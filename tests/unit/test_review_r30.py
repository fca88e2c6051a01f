"""Round 30 (benchmarks/results/reviewer-r30.md), what needs no server.

* 7 (LOW): the progress bars need tqdm, which only the ``dev`` extra installed while a comment
  spoke of a "cli" install: the ``cli`` extra installs it, and the docs name it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_extra_installs_tqdm():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.replace(" ", "").startswith("tqdm") for req in extras["cli"]), extras.get("cli")
    dev_tqdm = [req for req in extras["dev"] if req.startswith("tqdm")]
    cli_tqdm = [req for req in extras["cli"] if req.startswith("tqdm")]
    assert dev_tqdm == cli_tqdm  # one requirement for both


def test_the_docs_name_the_cli_extra():
    for path in ("README.md", "docs/guides/getting-started.rst", "docs/index.rst"):
        assert "[cli]" in (ROOT / path).read_text(), path
    comment = (ROOT / "couchcore/_build_view_cli.py").read_text()
    assert "dev/cli installs" not in comment and "cli (and dev) extra" in comment
