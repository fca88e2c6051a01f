"""Pytest plugin (``-p tests.tornado_default_backend``): the async facades' default backend is
Tornado's simple client (``backend="tornado"``) in this run, as where pycurl is not installed, so
that tests written for the default backend (tests/integration/test_tornado.py, ...) exercise
couchcore/transport/tornado.py. ``make test-tornado-versions`` loads it; pycurl stays importable
for the sync backends."""

import couchcore.tornado


def pytest_configure(config):  # noqa: ARG001 - pytest's hook signature
    """Before collection: ``couchcore.tornado.Server(url)`` without ``backend=`` is Tornado's."""
    couchcore.tornado._DEFAULT_BACKEND = "tornado"
    assert couchcore.tornado.default_backend() == "tornado"
