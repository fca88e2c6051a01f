"""The Tornado release running the tests is one pyproject.toml allows.

couchcore/transport/tornado.py (``backend="tornado"``) subclasses private Tornado names, so
pyproject.toml pins the range ``make test-tornado-versions`` tests: the oldest (the last patch of
the lower bound's minor release) and the newest. That target runs this module on both, with
``COUCHCORE_TEST_TORNADO_VERSION`` naming the release it put first on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import tornado

ROOT = Path(__file__).resolve().parents[2]


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def pinned_range() -> tuple[str, str]:
    """(lower, upper) of every ``tornado>=lower,<upper`` requirement in pyproject.toml, which must all agree."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    specs = {req[len("tornado"):].replace(" ", "") for req in requirements if re.match(r"tornado\b", req)}
    assert len(specs) == 1, f"pyproject.toml names tornado with different ranges: {sorted(specs)}"
    match = re.fullmatch(r">=([\d.]+),<([\d.]+)", specs.pop())
    assert match, "tornado must be pinned as tornado>=OLDEST,<NEXT (both bounds)"
    return match[1], match[2]


def test_the_running_tornado_is_within_the_pinned_range():
    """``tornado.version`` is within ``tornado>=lower,<upper``."""
    lower, upper = pinned_range()
    assert _release(lower) <= _release(tornado.version) < _release(upper), (tornado.version, lower, upper)


def test_the_makefile_tests_the_lower_bounds_release():
    """``TORNADO_OLDEST`` (what the target installs) is a patch of the lower bound's release."""
    lower, _ = pinned_range()
    oldest = re.search(r"^TORNADO_OLDEST \?= ([\d.]+)$", (ROOT / "Makefile").read_text(), re.M)
    assert oldest, "Makefile: TORNADO_OLDEST ?= X.Y.Z"
    assert _release(oldest[1])[:2] == _release(lower)[:2]


def test_the_release_the_run_asked_for_is_the_one_imported():
    """Under ``make test-tornado-versions``: the release installed for the run is the one imported."""
    wanted = os.environ.get("COUCHCORE_TEST_TORNADO_VERSION")
    if not wanted:
        pytest.skip("COUCHCORE_TEST_TORNADO_VERSION not set (make test-tornado-versions sets it)")
    assert tornado.version == wanted, (tornado.version, tornado.__file__)
