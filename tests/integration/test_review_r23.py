"""Review, round 23: attachments, ``_security``, ``_revs_limit``, ``_compact`` and the
errors' headers, probed as a newcomer would on the real test server (and on Apache
CouchDB 3.5 with ``COUCHDB_URL``). Each test failed before its fix."""

from __future__ import annotations

import asyncio

import pytest

import couchcore
import couchcore.aio
import couchcore.tornado
from tests.helpers import async_backends as _async_backends, member_db, unique_name


# -- attachments: the content type is a header -------------------------------------------

@pytest.mark.parametrize("content_type", ["text/plain\r\nX-Evil: 1", "text/plain\n", "text/\u00e9", "a\x00b",
                                          " text/plain", 1, b"text/plain"])
def test_put_attachment_refuses_a_content_type_that_is_no_header_value(db, content_type):
    # "text/plain\r\nX-Evil: 1": pycurl sent X-Evil as a header of its own and the attachment
    # was stored as text/plain; urllib3 raised its own ValueError. "text/\u00e9" was stored as
    # "text/\ufffd" (sent as Latin-1, read back as UTF-8), 1 as "1". A media type is ASCII:
    # https://www.rfc-editor.org/rfc/rfc6838#section-4.2 ,
    # https://docs.couchdb.org/en/stable/api/document/attachments.html#put--db-docid-attname
    doc = {"_id": "a"}
    with pytest.raises(couchcore.InvalidInput, match="content_type"):
        db.put_attachment(doc, b"x", "f.txt", content_type=content_type)
    assert "a" not in db  # nothing was sent
    assert "_rev" not in doc


def test_put_attachment_keeps_a_media_type_with_parameters(db):
    doc = {"_id": "a"}
    db.put_attachment(doc, b"x", "f", content_type="text/plain; charset=iso-8859-1")
    db.put_attachment(doc, b"y", "g")  # no type: guessed
    stubs = db.get("a")["_attachments"]
    assert stubs["f"]["content_type"] == "text/plain; charset=iso-8859-1"
    assert stubs["g"]["content_type"] == "application/octet-stream"


@pytest.mark.parametrize("filename", [1, b"f.txt", ""])
def test_put_attachment_refuses_a_bad_filename_with_invalid_input(db, filename):
    # 1 and b"f.txt" raised TypeError from mimetypes (guessing the type came first)
    with pytest.raises(couchcore.InvalidInput, match="attachment name"):
        db.put_attachment({"_id": "a"}, b"x", filename)
    assert "a" not in db


@pytest.mark.parametrize("async_backend", _async_backends())
def test_put_attachment_refuses_a_header_breaking_content_type_async(couch_url, db, async_backend):
    async def main():
        adb = couchcore.aio.Database(f"{couch_url}/{db.name}", backend=async_backend)
        with pytest.raises(couchcore.InvalidInput, match="content_type"):
            await adb.put_attachment({"_id": "a"}, b"x", "f", content_type="text/plain\r\nX-Evil: 1")

    asyncio.run(main())
    assert "a" not in db


# -- compaction of a design document ---------------------------------------------------------

@pytest.mark.parametrize("ddoc", ["", "_design/"])
def test_compact_refuses_an_empty_design_name(db, ddoc):
    # POST /{db}/_compact/ is answered by compacting the whole database: compact("") said
    # True for a view compaction that never happened
    # https://docs.couchdb.org/en/stable/api/database/compact.html#db-compact-design-doc
    with pytest.raises(couchcore.InvalidInput, match="empty design document name"):
        db.compact(ddoc)


@pytest.mark.parametrize("call", ["compact", "info"])
def test_a_design_name_of_the_wrong_type_is_invalid_input(db, call):
    # AttributeError: 'int' object has no attribute 'startswith'
    with pytest.raises(couchcore.InvalidInput):
        getattr(db, call)(1)


# -- the security object -------------------------------------------------------------

@pytest.mark.parametrize("value", [
    {"admins": {"names": "bob"}},                           # a str, not a list
    {"members": ["bob"]},                                   # a list, not an object
    {"members": {"names": ["bob"], "roles": "r"}},
    {"admins": {"names": [1], "roles": []}},
    {"readers": {"roles": [None]}},
])
def test_security_refuses_what_couchdb_refuses_before_sending(db, value):
    # CouchDB 3.5 answers each of these with "500 error: no_majority", which reads like a
    # cluster outage (couch_db:validate_security_object: admins and members are objects
    # whose names and roles are lists of strings)
    # https://docs.couchdb.org/en/stable/api/database/security.html
    before = db.security()
    with pytest.raises(couchcore.InvalidInput, match="security object"):
        db.security(value)
    assert db.security() == before


def test_security_accepts_the_documented_shapes(one_copy_db):
    db = one_copy_db  # a cluster reads _security / _find from one copy per shard
    value = {"admins": {"names": [], "roles": ["boss"]}, "members": {"names": ["bob"], "roles": []}}
    assert db.security(value)["ok"] is True
    assert db.security()["members"] == {"names": ["bob"], "roles": []}
    assert db.security({"members": {"roles": ["r"]}, "admins": {}, "extra": 1})["ok"] is True


@pytest.mark.couchdb_only
def test_a_member_setting_security_is_told_it_needs_an_admin(server, couch_url, backend):
    # CouchDB 3.5 answers a member's PUT /{db}/_security with "500 error: no_majority"
    # (curl says the same): the message now names the likely cause
    user, password = unique_name("member"), "pw-r23"
    with member_db(server, user, password, "sec") as db:
        base = couch_url.split("://", 1)[1].split("@")[-1]
        member = couchcore.Database(f"http://{base}/{db.name}", auth=(user, password), backend=backend)
        with pytest.raises(couchcore.ServerError) as info:
            member.security({"members": {"names": [], "roles": []}})
        assert "no_majority" in str(info.value) and "admin" in str(info.value)
        assert password not in str(info.value)
        assert db.security()["members"]["names"] == [user]


@pytest.mark.couchdb_only
def test_a_member_setting_revs_limit_gets_forbidden(server, couch_url, backend):
    # CouchDB 3.5: 500 badmatch {error,{forbidden,<<"You are not a db or server admin.">>}}
    # came out as ServerError; it is a 403 in all but status
    user, password = unique_name("member"), "pw-r23"
    with member_db(server, user, password, "revs") as db:
        base = couch_url.split("://", 1)[1].split("@")[-1]
        member = couchcore.Database(f"http://{base}/{db.name}", auth=(user, password), backend=backend)
        assert member.revs_limit() == db.revs_limit()
        with pytest.raises(couchcore.Forbidden, match="not a db or server admin"):
            member.revs_limit(5)
        assert db.revs_limit() != 5


# -- the headers of an error ---------------------------------------------------------

def test_an_errors_headers_are_found_in_any_case(db):
    # e.headers was a plain dict of lower-cased names: e.headers.get("Content-Type") and
    # e.headers["Retry-After"] found nothing although the server sent them
    with pytest.raises(couchcore.NotFound) as info:
        db.get("missing")
    headers = info.value.headers
    assert headers.get("Content-Type") == headers.get("content-type")
    assert headers["Content-Type"].startswith("application/json")
    assert "CONTENT-TYPE" in headers


@pytest.mark.parametrize("async_backend", _async_backends())
def test_a_callbacks_status_headers_are_found_in_any_case(couch_url, db, async_backend):
    async def main():
        tdb = couchcore.tornado.Database(f"{couch_url}/{db.name}", backend=async_backend)
        done = asyncio.get_running_loop().create_future()
        tdb.get("missing", callback=lambda result, status: done.set_result(status))
        status = await done
        assert status.code == 404
        assert status.headers.get("Content-Type", "").startswith("application/json")
        assert status.exception.headers["Content-Type"] == status.headers["content-type"]

    asyncio.run(main())


# -- purge ---------------------------------------------------------------------------

@pytest.mark.couchdb_only
def test_a_purge_beyond_the_servers_limit_says_which_limit(one_copy_db):
    db = one_copy_db  # one copy per shard: len(db) (doc_count) right after the writes
    # CouchDB 3.5 refuses more than [purge] max_document_id_number (100 by default) ids with
    # a bare "400 bad_request: Exceeded maximum number of documents." (no number, no setting)
    # https://docs.couchdb.org/en/stable/cluster/purging.html#config-settings
    docs = [{"_id": f"d{i:03}"} for i in range(101)]
    assert db.save(docs).ok
    with pytest.raises(couchcore.BadRequest) as info:
        db.purge(docs)
    assert "max_document_id_number" in str(info.value) and "101 ids" in str(info.value)
    assert len(db) == 101  # nothing purged
    assert set(db.purge(docs[:100])["purged"]) == {d["_id"] for d in docs[:100]}


# -- an attachment stream handed to plain code ---------------------------------------------

@pytest.mark.parametrize("async_backend", _async_backends())
def test_a_callback_can_read_the_attachment_open_attachment_gives_it(couch_url, db, async_backend):
    # the callback got the stream still open on the loop: read() and a plain 'for' raised
    # TypeError ("use 'async for'"), which a plain callback cannot do (views were read whole)
    content = bytes(range(256)) * 1000
    doc = {"_id": "a/b"}
    db.put_attachment(doc, content, "x/y.bin")
    got = {}

    async def main():
        tdb = couchcore.tornado.Database(f"{couch_url}/{db.name}", backend=async_backend)
        done = asyncio.get_running_loop().create_future()

        def callback(stream, status):
            got["read"] = stream.read()
            got["for"] = b"".join(stream)
            got["type"] = stream.content_type
            done.set_result(status)

        tdb.open_attachment("a/b", "x/y.bin", callback=callback)
        status = await asyncio.wait_for(done, 30)
        assert status.ok

    asyncio.run(main())
    assert got["read"] == content and got["for"] == content
    assert got["type"] == "application/octet-stream"


@pytest.mark.parametrize("async_backend", _async_backends())
def test_relax_reads_an_attachment_stream_whole(couch_url, db, async_backend):
    content = b"z" * 100_000
    doc = {"_id": "a"}
    db.put_attachment(doc, content, "f.bin")

    @couchcore.tornado.relax
    def handler(tdb):
        stream = yield tdb.open_attachment("a", "f.bin")
        return stream.read()

    async def main():
        tdb = couchcore.tornado.Database(f"{couch_url}/{db.name}", backend=async_backend)
        return await handler(tdb)

    assert asyncio.run(main()) == content


@pytest.mark.parametrize("content_type", ["text/\u20ac", "text/plain\x01", "text/plain\r\nX: 1", ""])
def test_an_update_handlers_content_type_is_a_media_type(db, content_type):
    # "text/\u20ac" raised the backends' UnicodeEncodeError (not couchcore's), "\x01" was sent
    # https://docs.couchdb.org/en/stable/api/ddoc/render.html#db-design-design-doc-update-update-name
    with pytest.raises(couchcore.InvalidInput, match="content_type"):
        db.update("app/u", "x", body="hello", content_type=content_type)


# -- Mango paging ----------------------------------------------------------------------

@pytest.mark.couchdb_only  # PouchDB Server has no bookmarks
def test_iterfind_skips_after_the_callers_bookmark_as_find_does(one_copy_db):
    db = one_copy_db  # a cluster reads _security / _find from one copy per shard
    # iterfind(bookmark=b, skip=5, limit=3) dropped skip when a bookmark was given: it
    # delivered the 3 documents right after the bookmark, where _find with the same
    # options (curl too) answers the 3 after skipping 5 of them
    # https://docs.couchdb.org/en/stable/api/database/find.html#pagination
    db.save([{"_id": f"d{i:03}", "n": i} for i in range(40)])
    # sorted by _id: the special _all_docs index (a new index may not be usable at once on
    # every node of a cluster)
    selector, sort = {"_id": {"$gt": None}, "n": {"$gte": 0}}, [{"_id": "asc"}]
    bookmark = db.find(selector, sort=sort, limit=10)["bookmark"]
    want = [d["n"] for d in db.find(selector, sort=sort, bookmark=bookmark, skip=5, limit=3)["docs"]]
    assert want == [15, 16, 17]
    for page_size in (1, 2, 50):
        got = [d["n"] for d in db.iterfind(selector, sort=sort, bookmark=bookmark, skip=5, limit=3,
                                           page_size=page_size)]
        assert got == want, page_size
    # and the whole rest after the bookmark, skipping 5: every later page follows on
    rest = [d["n"] for d in db.iterfind(selector, sort=sort, bookmark=bookmark, skip=5, page_size=4)]
    assert rest == list(range(15, 40))


def test_iterfind_with_skip_alone_still_skips_once(one_copy_db):
    db = one_copy_db  # a cluster reads _security / _find from one copy per shard
    db.save([{"_id": f"d{i:03}", "n": i} for i in range(30)])
    got = [d["_id"] for d in db.iterfind({"n": {"$gte": 0}}, skip=7, page_size=4)]
    assert got == [f"d{i:03}" for i in range(7, 30)]


@pytest.mark.parametrize("async_backend", _async_backends())
def test_a_callback_of_iterfind_and_iterview_gets_every_item(couch_url, one_copy_db, async_backend):
    # the callback got the async Paged, which only 'async for' reads ("use 'async for'" in a
    # plain callback); a view handed to a callback was read whole already. One copy (n=1):
    # a cluster's _all_docs reads one copy per shard, which may lag behind the save
    db = one_copy_db
    db.save([{"_id": f"d{i:02}", "n": i} for i in range(12)])
    got = {}

    async def main():
        tdb = couchcore.tornado.Database(f"{couch_url}/{db.name}", backend=async_backend)
        loop = asyncio.get_running_loop()
        found, viewed = loop.create_future(), loop.create_future()
        tdb.iterfind({"n": {"$gte": 3}}, page_size=4,
                     callback=lambda docs, status: found.set_result((sorted(d["n"] for d in docs), status.ok)))
        tdb.iterview("_all_docs", page_size=5, limit=7,
                     callback=lambda rows, status: viewed.set_result(([r.id for r in rows], status.ok)))
        got["find"] = await asyncio.wait_for(found, 30)
        got["view"] = await asyncio.wait_for(viewed, 30)

    asyncio.run(main())
    assert got["find"] == (list(range(3, 12)), True)
    assert got["view"] == ([f"d{i:02}" for i in range(7)], True)


@pytest.mark.parametrize("as_id", [True, False])
def test_put_attachment_without_a_rev_on_an_existing_document_says_why(db, as_id):
    # API.md: put_attachment(doc, ...) takes an id too; on an existing document CouchDB says a
    # bare "409 Document update conflict." although nobody else wrote: no _rev was sent
    doc = {"_id": "a/b", "v": 1}
    db.save(doc)
    with pytest.raises(couchcore.Conflict, match="no _rev was given") as info:
        db.put_attachment("a/b" if as_id else {"_id": "a/b"}, b"x", "f.txt")
    assert "a/b" in str(info.value)
    assert db.get("a/b")["_rev"] == doc["_rev"]
    db.put_attachment(doc, b"x", "f.txt")  # with the current _rev it works
    assert db.get_attachment("a/b", "f.txt") == b"x"
