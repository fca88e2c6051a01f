"""``ViewResult.total_rows`` / ``offset`` / ``update_seq`` before iterating (issue 15, item 9).

Reading them reads just far enough into the stream; the rows parsed on the way are still
yielded by the iteration afterwards, in order.
"""

from __future__ import annotations

import asyncio

import pytest

import couchcore
import couchcore.tornado as ct
from couchcore.testing import RowReplayServer

DDOC = {"_id": "_design/m", "views": {"by_n": {"map": "function(d){ if (d.n !== undefined) emit(d.n, null) }",
                                               "reduce": "_count"}}}


@pytest.fixture
def db(one_copy_db):
    """One copy of each shard: a cluster reads views and _all_docs from one copy, which may
    lag behind acknowledged writes (see conftest.one_copy_db)."""
    return one_copy_db


@pytest.fixture
def filled(db):
    assert db.save([{"_id": f"d{i:03d}", "n": i} for i in range(30)] + [dict(DDOC)]).ok
    return db


def test_total_rows_and_offset_before_iterating(filled):
    result = filled.view("_all_docs")
    assert result.total_rows == 31  # 30 docs + the design doc, known before any row was taken
    assert result.offset == 0
    assert [row.id for row in result] == sorted([f"d{i:03d}" for i in range(30)] + ["_design/m"])
    assert result.total_rows == 31


def test_offset_and_update_seq_of_a_map_view(filled):
    result = filled.view("m/by_n", reduce=False, skip=10, update_seq=True)
    assert result.offset == 10 and result.total_rows == 30
    assert result.update_seq is not None
    assert [row.key for row in result] == list(range(10, 30))


def test_reading_meta_in_the_middle_keeps_every_row(filled):
    result = filled.view("m/by_n", reduce=False)
    it = iter(result)
    first = [next(it).key for _ in range(3)]
    assert result.total_rows == 30
    assert first + [row.key for row in it] == list(range(30))


def test_reduce_query_has_no_total_rows_and_still_iterates(filled):
    result = filled.view("m/by_n")
    assert result.total_rows is None and result.offset is None
    assert [row.value for row in result] == [30]


def test_meta_reads_only_the_start_of_a_large_view():
    """A 200k-row body: total_rows is known while the replay server is still sending."""
    n = 200_000
    with RowReplayServer() as replay:
        db = couchcore.Database(f"{replay.url}/rows-{n}")
        result = db.view("_all_docs")
        assert result.total_rows == n and result.offset == 0
        assert not replay.done.is_set() and replay.sent < replay.body_size(n) / 2
        count = 0
        for row in result:
            assert row.id == "doc%08d" % count
            count += 1
        assert count == n


def test_async_ameta_reads_ahead_and_iteration_keeps_the_rows(couch_url, filled, backend):
    # each sync backend stands for an async one: Tornado's client, libcurl on the loop
    abackend = "tornado" if backend == "urllib3" else "pycurl"
    async def main():
        server = ct.Server(couch_url, backend=abackend)
        adb = server._database(filled.name)
        result = await adb.view("m/by_n", reduce=False, skip=5)
        meta = await result.ameta("total_rows", "offset")
        assert meta["total_rows"] == 30 and meta["offset"] == 5
        assert result.total_rows == 30 and result.offset == 5
        assert [row.key async for row in result] == list(range(5, 30))
        head = await (await adb.view("_all_docs")).ameta()  # no names: what precedes the rows
        assert head["total_rows"] == 31
        server.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_sync_and_async_read_ahead_refuse_the_other_kind(couch_url, filled):
    result = filled.view("_all_docs")
    with pytest.raises(TypeError, match="read_meta"):
        asyncio.run(result.ameta())
    result.close()

    async def main():
        server = ct.Server(couch_url)
        aresult = await server._database(filled.name).view("_all_docs")
        with pytest.raises(TypeError, match="ameta"):
            aresult.read_meta()
        aresult.close()
        server.close()

    asyncio.run(main())


def test_a_failure_met_while_reading_ahead_is_raised_by_the_iteration():
    """The body breaks off before ``total_rows`` arrives: reading it gives None, and the
    iteration then raises (never a quietly short result)."""
    from couchcore.testing import LoopbackServer, read_request_head

    def handler(conn):
        import time

        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n")
        time.sleep(0.2)  # the client has the headers: it returns the result, then reads the body
        conn.sendall(b'{"rows":[{"id":"a","key":"a","value":1},')
        time.sleep(0.2)  # then the connection closes, 460 bytes short

    with LoopbackServer(handler) as broken:
        for backend in ("urllib3", "pycurl"):
            db = couchcore.Database(f"{broken.url}/x", backend=backend, retries=0)
            result = db.view("_all_docs")
            assert result.total_rows is None
            with pytest.raises(couchcore.CouchcoreError):
                list(result)
