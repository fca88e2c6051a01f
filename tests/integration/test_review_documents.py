"""Review of document writes and reads as a newcomer uses them (sync and ``couchcore.aio``),
against the real test server: silent wrong results found by probing. Each test failed
before its fix."""

from __future__ import annotations

import asyncio

import pytest

import couchcore
import couchcore.aio
from tests.helpers import async_backends as _async_backends, wait_until


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


def test_a_bare_id_rev_tuple_is_refused_not_read_as_two_ids(db):
    # get([(id, rev)]) reads that revision; get((id, rev)) -- the pair without its list --
    # was taken as the ids [id, rev]: it returned [the CURRENT revision, None], a plausible
    # answer with the wrong revision's content
    doc = {"_id": "r", "v": 1}
    db.save(doc)
    first = doc["_rev"]
    doc["v"] = 2
    db.save(doc)
    with pytest.raises(couchcore.InvalidInput) as info:
        db.get(("r", first))
    assert f"get('r', rev='{first}')" in str(info.value)
    assert db.get([("r", first)])[0]["v"] == 1 and db.get("r", rev=first)["v"] == 1
    # a tuple of ids still reads ids
    assert [d and d["_id"] for d in db.get(("r", "nope"))] == ["r", None]


@pytest.mark.parametrize("abackend", _async_backends())
def test_a_bare_id_rev_tuple_is_refused_not_read_as_two_ids_async(db, couch_url, abackend):
    doc = {"_id": "r", "v": 1}
    db.save(doc)
    first = doc["_rev"]
    db.save({**doc, "v": 2})

    async def main():
        adb = await couchcore.aio.Server(couch_url, backend=abackend).db(db.name)
        with pytest.raises(couchcore.InvalidInput):
            await adb.get(("r", first))
        return await adb.get([("r", first)])

    assert asyncio.run(main())[0]["v"] == 1


def test_a_filter_functions_query_parameters_go_in_params(one_copy_db):
    db = one_copy_db  # one copy per shard: a cluster's _changes right after a write sees it
    # CouchDB hands a filter function the request's query string (req.query):
    # https://docs.couchdb.org/en/stable/ddocs/ddocs.html#filter-functions. couchcore sends
    # them from params={...}, which no docstring named: filter="app/by_t", t="a" was refused
    # with a bare "unknown changes option(s): t" and left no way to find params
    db.save([{"_id": f"x{i}", "t": "a" if i % 2 else "b"} for i in range(6)])
    db.save({"_id": "_design/app", "filters": {"by_t": "function(doc, req) { return doc.t == req.query.t }"}})
    with pytest.raises(couchcore.InvalidOption) as info:
        db.changes(since=0, filter="app/by_t", t="a")
    assert "params={'t': ...}" in str(info.value)
    assert sorted(c["id"] for c in db.changes(since=0, filter="app/by_t", params={"t": "a"})) == ["x1", "x3", "x5"]
    assert sorted(c["id"] for c in db.follow(since=0, one_off=True, filter="app/by_t", params={"t": "b"})) \
        == ["x0", "x2", "x4"]
    assert "params=" in couchcore.Database.changes.__doc__


def test_copy_checks_the_destinations_rev_and_explains_a_missing_one(db):
    # a _rev that is not a string raised AttributeError from the URL quoting; a copy onto an
    # existing destination without its _rev got CouchDB's bare "Document update conflict.",
    # which reads like a concurrent writer
    db.save([{"_id": "a", "v": 1}, {"_id": "b", "v": 2}])
    for rev in (3, "", ["1-x"]):
        with pytest.raises(couchcore.InvalidInput, match="destination's _rev"):
            db.copy("a", {"_id": "b", "_rev": rev})
    with pytest.raises(couchcore.Conflict) as info:
        db.copy("a", "b")
    assert "'b' exists and no _rev was given" in str(info.value) and info.value.status == 409
    # on a cluster a lagging copy may accept the copy (202) while the others refuse it: it
    # returned a revision (a conflict branch left behind); now withdrawn and a Conflict too
    wait_until(lambda: db.get("b"), lambda b: b["v"] == 2 and "_conflicts" not in db.get("b", conflicts=True))
    dest = db.get("b")
    assert db.copy("a", dest).startswith("2-") and db.get("b")["v"] == 1


def test_open_revs_of_no_revision_is_an_empty_list(db, couch_url):
    # open_revs=[] made CouchDB answer the current document: get() returned a Document where
    # its type says a list, and a loop over it went through the document's keys
    db.save({"_id": "o", "v": 1})
    assert db.get("o", open_revs=[]) == [] and db.get("o", open_revs=()) == []
    assert [r["ok"]["v"] for r in db.get("o", open_revs="all")] == [1]
    with pytest.raises(couchcore.InvalidInput):
        db.get("", open_revs=[])

    async def main():
        adb = await couchcore.aio.Server(couch_url).db(db.name)
        return await adb.get("o", open_revs=[])

    assert asyncio.run(main()) == []


@pytest.mark.parametrize("abackend", _async_backends())
def test_an_async_attachment_stream_is_an_async_context_manager(db, couch_url, abackend):
    # `async with await adb.open_attachment(...) as stream` raised AttributeError (__aenter__):
    # the sync stream and every streamed result of the async facade have it
    db.save({"_id": "holder"})
    db.put_attachment(db.get("holder"), b"x" * 70000, "big.bin")

    async def main():
        adb = await couchcore.aio.Server(couch_url, backend=abackend).db(db.name)
        async with await adb.open_attachment("holder", "big.bin") as stream:
            first = await stream.__aiter__().__anext__()
        async with await adb.open_attachment("holder", "big.bin") as stream:
            whole = await stream.aread()
        return first, whole

    first, whole = asyncio.run(main())
    assert first and set(first) == {ord("x")} and whole == b"x" * 70000


def test_two_refused_documents_of_one_id_are_both_reported(db):
    # pending is keyed by _id: the second refused document of an id replaced the first's
    # entry, so one refused document was not reported at all. The last one keeps the entry
    # (force/merge write it again); the earlier ones are its others, in list order
    db.save({"_id": "t", "v": 0})
    first, second, third = {"_id": "t", "a": 1}, {"_id": "t", "b": 2}, {"_id": "t", "c": 2}
    result = db.save([first, second, {"_id": "u"}, third])
    assert not result.ok and "u" in result.resolved
    entry = result.pending["t"]
    assert entry["doc"] is third and entry["error"] == "conflict"
    assert [(o["doc"], o["error"], "others" in o) for o in entry["others"]] == [(first, "conflict", False),
                                                                                (second, "conflict", False)]
    # force writes the last one (the later write of the id supersedes the earlier)
    forced = db.save([{"_id": "t", "a": 1}, {"_id": "t", "b": 2}], force=True)
    assert forced.ok and forced.resolved["t"]["b"] == 2 and db.get("t")["b"] == 2 and "a" not in db.get("t")
    # one refused document of an id: no others
    assert "others" not in db.save([{"_id": "t", "c": 3}]).pending["t"]
