"""Review of document writes and reads as a newcomer uses them (sync and ``couchcore.aio``),
against the real test server: silent wrong results found by probing. Each test failed
before its fix."""

from __future__ import annotations

import asyncio

import pytest

import couchcore
import couchcore.aio


def _async_backends() -> list[str]:
    out = ["tornado"]
    try:
        import pycurl  # noqa: F401
    except ImportError:
        return out
    return ["pycurl", *out]


def test_a_refused_document_is_reported_when_a_later_one_with_its_id_is_written(db):
    # _bulk_docs answers each document of a list in order, also two with one id
    # (https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-docs): here the
    # first is refused (conflict: no _rev) and the second written. The write of the second
    # cleared the first's failure: nothing pending, result.ok True, a document silently lost
    first = {"_id": "m1", "v": 0}
    db.save(first)
    mine = {"_id": "m1", "mine": "no rev"}
    update = {"_id": "m1", "_rev": first["_rev"], "v": 1}
    result = db.save([mine, update])
    assert result.resolved["m1"] is update and update["_rev"].startswith("2-")
    assert result.pending["m1"]["error"] == "conflict" and result.pending["m1"]["doc"] is mine
    assert not result.ok and not result
    assert db.get("m1")["v"] == 1 and "mine" not in db.get("m1")
    # the other order said so already
    other = {"_id": "m2"}
    db.save(other)
    result = db.save([{"_id": "m2", "_rev": other["_rev"], "v": 1}, {"_id": "m2", "mine": "no rev"}])
    assert "m2" in result.resolved and result.pending["m2"]["error"] == "conflict"


@pytest.mark.parametrize("abackend", _async_backends())
def test_a_refused_document_is_reported_when_a_later_one_with_its_id_is_written_async(db, couch_url, abackend):
    first = {"_id": "m1", "v": 0}
    db.save(first)

    async def main():
        adb = await couchcore.aio.Server(couch_url, backend=abackend).db(db.name)
        return await adb.save([{"_id": "m1", "mine": "no rev"}, {"_id": "m1", "_rev": first["_rev"], "v": 1}])

    result = asyncio.run(main())
    assert "m1" in result.resolved and result.pending["m1"]["error"] == "conflict" and not result.ok
