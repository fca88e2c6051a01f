"""Round 30, the lead's own leftovers of round 29.

* reviewer-round-r29 MEDIUM 1: a ``502``/``504`` answer to a write (a gateway or proxy in
  front of CouchDB, which may have forwarded it) raised a plain ``ServerError``; it is now
  :class:`~couchcore.errors.GatewayOutcomeUnknown`, both a ``ServerError`` and an
  ``OutcomeUnknown``, on every backend and facade. A read-only ``POST`` (``_find``, keys
  queries) and a ``503`` stay plain ``ServerError``; nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import copy
import pickle

import pytest

import couchcore
from couchcore.errors import GatewayOutcomeUnknown, error_for_status

from tests.helpers import async_backends, proxied_db

SYNC = ["urllib3", "pycurl"]
ASYNC = [("aio", b) for b in async_backends()] + [("tornado", b) for b in async_backends()]
BODY = b'{"error":"bad_gateway","reason":"upstream went away"}'


def _skip_missing(backend: str) -> None:
    if backend == "pycurl":
        pytest.importorskip("pycurl")


@pytest.fixture
def proxied(couch_url):
    yield from proxied_db(couch_url, "r30")


def _check(exc: BaseException, status: int, method: str, name: str, auth) -> None:
    assert type(exc) is GatewayOutcomeUnknown, repr(exc)
    assert isinstance(exc, couchcore.ServerError) and isinstance(exc, couchcore.OutcomeUnknown)
    assert isinstance(exc, couchcore.ConnectionError) and isinstance(exc, ConnectionError)
    assert exc.status == status and exc.method == method
    assert exc.error == "bad_gateway" and exc.reason == "upstream went away"
    assert exc.url and f"/{name}" in exc.url and "@" not in exc.url
    if auth:
        assert auth[1] not in str(exc) and auth[1] not in repr(exc)
    for again in (pickle.loads(pickle.dumps(exc)), copy.deepcopy(exc)):
        assert type(again) is GatewayOutcomeUnknown
        assert (again.status, again.method, again.url, again.reason) == (exc.status, exc.method, exc.url, exc.reason)


@pytest.mark.parametrize("backend", SYNC)
@pytest.mark.parametrize("status", [502, 504])
@pytest.mark.parametrize("what", ["save", "save_list", "put_attachment", "delete"])
def test_a_gateway_answer_to_a_write_is_outcome_unknown(proxied, backend, status, what):
    _skip_missing(backend)
    proxy, name, auth, direct = proxied
    doc = {"_id": "g1"}
    direct.save(doc)
    method, path = {"save": ("POST", f"/{name}"), "save_list": ("POST", f"/{name}/_bulk_docs"),
                    "put_attachment": ("PUT", f"/{name}/g1/a.txt"), "delete": ("DELETE", f"/{name}/g1")}[what]
    proxy.respond(method, path, status, BODY)
    db = couchcore.Server(proxy.url, auth=auth, backend=backend, retries=3).db(name)
    with pytest.raises(couchcore.OutcomeUnknown) as info:
        if what == "save":
            db.save(dict(doc, v=2))
        elif what == "save_list":
            db.save([dict(doc, v=2)])
        elif what == "put_attachment":
            db.put_attachment(doc, b"abc", "a.txt", "text/plain")
        else:
            db.delete(doc)
    _check(info.value, status, method, name, auth)
    assert proxy.fired == 1
    assert [m for m, _ in proxy.seen].count(method) == 1  # never sent again


@pytest.mark.parametrize("backend", SYNC)
def test_a_503_to_a_write_stays_a_plain_server_error(proxied, backend):
    _skip_missing(backend)
    proxy, name, auth, direct = proxied
    proxy.respond("POST", f"/{name}", 503, b'{"error":"unavailable","reason":"maintenance"}')
    db = couchcore.Server(proxy.url, auth=auth, backend=backend).db(name)
    with pytest.raises(couchcore.ServerError) as info:
        db.save({"_id": "g2"})
    assert not isinstance(info.value, couchcore.OutcomeUnknown), repr(info.value)
    assert info.value.status == 503


@pytest.mark.parametrize("backend", SYNC)
@pytest.mark.parametrize("what", ["get", "find", "get_many_ids"])
def test_a_gateway_answer_to_a_read_stays_a_plain_server_error(proxied, backend, what):
    """A read (a GET, or a read-only POST: _find, _bulk_get) changed nothing."""
    _skip_missing(backend)
    proxy, name, auth, direct = proxied
    direct.save({"_id": "r1"})
    method, path = {"get": ("GET", f"/{name}/r1"), "find": ("POST", f"/{name}/_find"),
                    "get_many_ids": ("POST", f"/{name}/_")}[what]  # _bulk_get or _all_docs
    proxy.respond(method, path, 502, BODY)
    db = couchcore.Server(proxy.url, auth=auth, backend=backend).db(name)
    with pytest.raises(couchcore.ServerError) as info:
        if what == "get":
            db.get("r1")
        elif what == "find":
            list(db.find({"_id": "r1"}))
        else:
            db.get(["r1", "r2"])
    assert not isinstance(info.value, couchcore.OutcomeUnknown), repr(info.value)
    assert info.value.status == 502 and proxy.fired == 1


@pytest.mark.parametrize("facade, engine", ASYNC)
def test_a_gateway_answer_to_a_write_on_the_async_facades(proxied, facade, engine):
    proxy, name, auth, direct = proxied
    proxy.respond("POST", f"/{name}", 504, BODY)
    module = couchcore.aio if facade == "aio" else pytest.importorskip("couchcore.tornado")

    async def main() -> BaseException:
        async with module.Server(proxy.url, auth=auth, backend=engine, retries=3) as server:
            db = await server.db(name)
            try:
                await db.save({"_id": "g3", "v": 3})
            except couchcore.CouchcoreError as exc:
                return exc
            raise AssertionError("the save returned")

    _check(asyncio.run(main()), 504, "POST", name, auth)
    assert [m for m, _ in proxy.seen].count("POST") == 1


def test_error_for_status_tells_writes_from_reads():
    assert error_for_status(502, write=True) is GatewayOutcomeUnknown
    assert error_for_status(504, write=True) is GatewayOutcomeUnknown
    assert error_for_status(502) is couchcore.ServerError
    assert error_for_status(503, write=True) is couchcore.ServerError
    assert error_for_status(500, write=True) is couchcore.ServerError
    assert error_for_status(409, write=True) is couchcore.Conflict
