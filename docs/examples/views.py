"""Views and streaming: rows parsed as they arrive, flat memory, paging with iterview."""

import os
import tracemalloc
import uuid

import couchcore

server = couchcore.Server(os.environ.get("COUCHDB_URL", "http://127.0.0.1:5984"))
name = f"guide-views-{uuid.uuid4().hex[:8]}"
db = server.db(name, create=True)
try:
    kinds = ["click", "view", "buy"]
    db.save([{"_id": f"e{i:05d}", "kind": kinds[i % 3], "n": i, "pad": "x" * 1000} for i in range(3000)])
    db.save({"_id": "_design/ev", "views": {
        "by_kind": {"map": "function (d) { if (d.kind) emit([d.kind, d.n], d.n) }", "reduce": "_sum"}}})

    # streamed: each row is handed over as soon as the parser has it, then dropped
    tracemalloc.start()
    total = 0
    for row in db.view("ev/by_kind", reduce=False, include_docs=True):
        total += row.doc["n"]
    _, streamed_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    kept = db.view("ev/by_kind", reduce=False, include_docs=True).all()  # a list: every row in memory
    _, kept_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == sum(range(3000)) and len(kept) == 3000
    print(f"peak traced memory: streamed {streamed_peak / 1e6:.1f} MB, kept {kept_peak / 1e6:.1f} MB")
    assert streamed_peak < kept_peak / 2  # bounded by a socket read, not by the number of rows
    del kept

    # metadata reads just the start of the stream
    result = db.view("_all_docs", limit=10)
    assert result.total_rows == 3001  # 3000 documents and the design document

    # JSON-valued options are sent as JSON; reduce and group work as in CouchDB
    clicks = db.view("ev/by_kind", startkey=["click"], endkey=["click", {}], reduce=False, limit=3).all()
    assert [r.key for r in clicks] == [["click", 0], ["click", 3], ["click", 6]]
    sums = {r.key[0]: r.value for r in db.view("ev/by_kind", group_level=1)}
    assert sums["click"] == sum(range(0, 3000, 3))

    # paging: iterview asks for page_size + 1 rows and starts the next page at the extra
    # one (startkey + startkey_docid): never skip, so deep pages cost the same as the first
    seen = [row.id for row in db.iterview("ev/by_kind", page_size=1000, reduce=False)]
    assert len(seen) == 3000 and len(set(seen)) == 3000

    # Mango queries page by bookmark
    buys = list(db.iterfind({"kind": "buy"}, page_size=500, fields=["_id", "n"]))
    assert len(buys) == 1000
    print("views: ok")
finally:
    server.delete(name)
    server.close()
