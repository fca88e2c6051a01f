"""Round 31, the review's before-stop leftovers, against a server.

* ``Response.write`` (a ``502``/``504`` to a write is :class:`GatewayOutcomeUnknown`) is set
  by one helper, ``couchcore._drivers.answered``, in the single-call driver and in pycurl's
  concurrent engine (``iter_many``), which restated the rule: both give the same errors.
"""

from __future__ import annotations

import pytest

import couchcore
from couchcore.errors import GatewayOutcomeUnknown
from couchcore.protocol.messages import Request

from tests.helpers import proxied_db

BODY = b'{"error":"bad_gateway","reason":"upstream went away"}'


@pytest.fixture
def proxied(couch_url):
    yield from proxied_db(couch_url, "r31")


def _op(method, path, idempotent=None):
    """An operation sending one request and returning the error its answer makes."""
    body = b'{"v": 1}' if method in ("PUT", "POST") else None
    resp = yield Request(method, path, body=body, idempotent=idempotent,
                         headers={"Content-Type": "application/json"} if body else None)
    return resp.error() if not resp.ok else resp.status


@pytest.mark.parametrize("status", [502, 504])
def test_concurrent_and_single_calls_mark_write_answers_alike(proxied, status):
    pytest.importorskip("pycurl")
    proxy, name, auth, direct = proxied
    direct.save({"_id": "r"})
    cases = [("PUT", f"/{name}/w1", None), ("GET", f"/{name}/r", None), ("POST", f"/{name}/_find", True),
             ("DELETE", f"/{name}/w2", None)]
    expected = [GatewayOutcomeUnknown, couchcore.ServerError, couchcore.ServerError, GatewayOutcomeUnknown]
    for engine in ("many", "single"):
        for method, path, _ in cases:
            proxy.respond(method, path, status, BODY)
        server = couchcore.Server(proxy.url, auth=auth, backend="pycurl", retries=0)
        try:
            ops = [_op(*case) for case in cases]
            if engine == "many":
                results = dict(server._iter_many(ops, 4))
                got = [results[i] for i in range(len(cases))]
            else:
                got = [server._run(op) for op in ops]
        finally:
            server.close()
        assert [type(e) for e in got] == expected, (engine, got)
        assert all(e.status == status for e in got)
    assert proxy.fired == 2 * len(cases)
