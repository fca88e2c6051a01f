"""Choosing a backend: the same calls on urllib3, pycurl and the asyncio facade."""

import asyncio
import os
import uuid

import couchcore
import couchcore.aio

URL = os.environ.get("COUCHDB_URL", "http://127.0.0.1:5984")
name = f"guide-backends-{uuid.uuid4().hex[:8]}"

setup = couchcore.Server(URL)
db = setup.db(name, create=True)
db.save([{"_id": f"doc-{i:03d}", "n": i} for i in range(200)])

try:
    # urllib3: the default, pure Python; get_many keeps requests in flight on threads
    with couchcore.Server(URL, backend="urllib3", maxsize=8) as server:
        docs = server[name].get_many([f"doc-{i:03d}" for i in range(50)], concurrency=8)
        assert [d.n for d in docs] == list(range(50))

    # pycurl: libcurl's CurlMulti, many transfers on one thread (pip install 'couchcore[pycurl]')
    try:
        import pycurl  # noqa: F401
    except ImportError:
        has_pycurl = False
        print("pycurl is not installed: skipped")
    else:
        has_pycurl = True
        with couchcore.Server(URL, backend="pycurl") as server:
            docs = server[name].get_many([f"doc-{i:03d}" for i in range(50)], concurrency=16)
            assert [d.n for d in docs] == list(range(50))
            rows = sum(1 for _ in server[name].view("_all_docs"))
            assert rows == 200

    # the asyncio facade (pip install 'couchcore[aio]'): libcurl on the event loop when pycurl
    # is installed (backend="pycurl", the default), or Tornado's simple client (backend="tornado")
    async def main(backend: str) -> list:
        async with couchcore.aio.Server(URL, max_clients=20, backend=backend) as server:
            adb = await server.db(name)
            return await asyncio.gather(*(adb.get(f"doc-{i:03d}") for i in range(50)))

    for backend in ("pycurl", "tornado") if has_pycurl else ("tornado",):
        docs = asyncio.run(main(backend))
        assert [d.n for d in docs] == list(range(50))

    # the same options on every backend: timeouts in seconds, retries with backoff
    with couchcore.Server(URL, timeout=30, connect_timeout=5, retries=3, backoff=0.1) as server:
        assert server[name].info()["doc_count"] == 200
    print("every backend read the same documents")
finally:
    setup.delete(name)
    setup.close()
