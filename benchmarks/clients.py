"""The clients under test, each used the way its own documentation shows.

A client is a class with ``connect(ctx)`` (untimed: build the client object, no data
requests) and one method per scenario it can do (timed); a scenario without a method is
reported "n/a". Sync methods return, async ones (``is_async``) are awaited. Each returns
``{"count": ..., "digest": ...}`` computed while reading, with the same per-row work for
every client (:mod:`benchmarks.data`'s hashes), so a wrong answer is caught.

``ctx`` (a dict): ``url`` (server base URL with credentials), ``db``, ``size``,
``batch`` (bulk batch size), ``concurrency``, ``ids`` (for the gets), ``att_path``,
``att_doc`` (``{"_id", "_rev"}`` of the attachment's document), ``att_name``, ``att_type``.

The library a client uses is imported in ``connect`` (never at module level), so the
parent can list clients without importing any of them.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Iterator
from urllib.parse import quote, urlsplit


Result = dict[str, Any]


def split_url(url: str) -> tuple[str, str | None, str | None]:
    """``(base URL without credentials, user, password)``."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}", parts.username, parts.password


def batches(docs: Iterable[dict], size: int) -> Iterator[list[dict]]:
    it = iter(docs)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


# The per-row digest loops live in benchmarks.digests (importable without this module's imports).
from benchmarks.digests import (  # noqa: E402,F401  (re-exported: clients use them by these names)
    view_digest,
    view_digest_dicts,
    docs_digest,
    docs_digest_dicts,
    changes_digest,
    gets_digest,
    view_digest_async,
    docs_digest_async,
    changes_digest_async,
)


class Client:
    """Base class: a client's name, the distributions it needs, how it is used."""

    is_async = False
    family = "peer"
    #: import names that must be importable for the client to run at all
    requires: tuple[str, ...] = ()
    #: the distribution whose version is reported
    dist: str | None = None
    #: "full": count and digest are checked; "count": only the count (raw baseline)
    checks = "full"
    #: scenario -> one line saying how the client does it (shown under the tables)
    how: dict[str, str] = {}

    def __init__(self, **options: Any) -> None:
        self.options = options

    def connect(self, ctx: dict) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> Any:
        return None


# -- couchcore ---------------------------------------------------------------------------------


class Couchcore(Client):
    family = "couchcore"
    requires = ("couchcore",)
    dist = "couchcore"
    how = {
        "bulk_load": "couchcore.bulk.load(db, docs, batch_size=1000) (4 batches in flight)",
        "view_replay": "for row in db.view('bench/by_user') (streamed)",
        "view_server": "for row in db.view('bench/by_user') (streamed)",
        "all_docs": "for row in db.view('_all_docs', include_docs=True) (streamed)",
        "changes": "for change in db.changes() (streamed)",
        "get_seq": "db.get(id) in a loop",
        "get_c16": "db.get_many(ids, concurrency=16)",
        "att_up": "db.put_attachment(doc, open(file, 'rb'), ...) (streamed upload)",
        "att_down": "for chunk in db.open_attachment(id, name) (streamed)",
    }

    def connect(self, ctx: dict) -> None:
        import couchcore

        self.db = couchcore.Database(f"{ctx['url']}/{quote(ctx['db'], safe='')}",
                                     backend=self.options["backend"])

    def close(self) -> None:
        self.db.server.close()

    def bulk_load(self, ctx: dict) -> Result:
        from couchcore.bulk import load

        from .data import docs

        report = load(self.db, docs(ctx["size"]), batch_size=ctx["batch"])
        return {"count": report.written, "failed": len(report.failed)}

    def view_replay(self, ctx: dict) -> Result:
        return view_digest(self.db.view("bench/by_user"))

    view_server = view_replay

    def all_docs(self, ctx: dict) -> Result:
        return docs_digest(self.db.view("_all_docs", include_docs=True))

    def changes(self, ctx: dict) -> Result:
        return changes_digest(self.db.changes())

    def get_seq(self, ctx: dict) -> Result:
        return gets_digest(self.db.get, ctx["ids"])

    def get_c16(self, ctx: dict) -> Result:
        h = n = 0
        for doc in self.db.get_many(ctx["ids"], concurrency=ctx["concurrency"]):
            h ^= hash((doc["_id"], doc["n"]))
            n += 1
        return {"count": n, "digest": h}

    def att_up(self, ctx: dict) -> Result:
        doc = dict(ctx["att_doc"])
        with open(ctx["att_path"], "rb") as f:
            self.db.put_attachment(doc, f, ctx["att_name"], ctx["att_type"])
        return {"count": ctx["size"]}

    def att_down(self, ctx: dict) -> Result:
        crc = n = 0
        for chunk in self.db.open_attachment(ctx["att_doc"]["_id"], ctx["att_name"]):
            crc = zlib.crc32(chunk, crc)
            n += len(chunk)
        return {"count": n, "digest": crc}


class CouchcoreTornado(Client):
    family = "couchcore"
    is_async = True
    requires = ("couchcore", "tornado")
    dist = "couchcore"
    how = {
        "bulk_load": "await db.save(batch) per batch of 1000",
        "view_replay": "async for row in await db.view('bench/by_user') (streamed)",
        "view_server": "async for row in await db.view('bench/by_user') (streamed)",
        "all_docs": "async for row in await db.view('_all_docs', include_docs=True)",
        "changes": "async for change in db.changes() (streamed)",
        "get_seq": "await db.get(id) in a loop",
        "get_c16": "await db.get_many(ids, concurrency=16)",
        "att_up": "await db.put_attachment(doc, open(file, 'rb'), ...)",
        "att_down": "async for chunk in await db.open_attachment(id, name)",
    }

    async def connect(self, ctx: dict) -> None:
        import couchcore.tornado as ct

        self.db = ct.Database(f"{ctx['url']}/{quote(ctx['db'], safe='')}")

    async def close(self) -> None:
        self.db.server.close()

    async def bulk_load(self, ctx: dict) -> Result:
        from .data import docs

        written = failed = 0
        for batch in batches(docs(ctx["size"]), ctx["batch"]):
            resolution = await self.db.save(batch)
            failed += len(resolution.pending)
            written += len(batch) - len(resolution.pending)
        return {"count": written, "failed": failed}

    async def view_replay(self, ctx: dict) -> Result:
        return await view_digest_async(await self.db.view("bench/by_user"))

    view_server = view_replay

    async def all_docs(self, ctx: dict) -> Result:
        return await docs_digest_async(await self.db.view("_all_docs", include_docs=True))

    async def changes(self, ctx: dict) -> Result:
        return await changes_digest_async(self.db.changes())

    async def get_seq(self, ctx: dict) -> Result:
        h = 0
        for docid in ctx["ids"]:
            doc = await self.db.get(docid)
            h ^= hash((doc["_id"], doc["n"]))
        return {"count": len(ctx["ids"]), "digest": h}

    async def get_c16(self, ctx: dict) -> Result:
        h = n = 0
        for doc in await self.db.get_many(ctx["ids"], concurrency=ctx["concurrency"]):
            h ^= hash((doc["_id"], doc["n"]))
            n += 1
        return {"count": n, "digest": h}

    async def att_up(self, ctx: dict) -> Result:
        doc = dict(ctx["att_doc"])
        with open(ctx["att_path"], "rb") as f:
            await self.db.put_attachment(doc, f, ctx["att_name"], ctx["att_type"])
        return {"count": ctx["size"]}

    async def att_down(self, ctx: dict) -> Result:
        crc = n = 0
        async for chunk in await self.db.open_attachment(ctx["att_doc"]["_id"], ctx["att_name"]):
            crc = zlib.crc32(chunk, crc)
            n += len(chunk)
        return {"count": n, "digest": crc}


# -- the raw baseline: the same HTTP traffic, pre-encoded bodies, nothing parsed ------------------


class _RowCounter:
    """Counts ``"id":`` in a byte stream split anywhere (one per row or change)."""

    needle = b'"id":'

    def __init__(self) -> None:
        self.count = 0
        self.tail = b""
        self.nbytes = 0

    def write(self, data: bytes) -> None:
        self.nbytes += len(data)
        joined = self.tail + data
        self.count += joined.count(self.needle)
        # keep a tail too short to hold the needle, so no match is counted twice
        self.tail = joined[-(len(self.needle) - 1):]


class Raw(Client):
    """pycurl with pre-encoded request bodies; responses are counted, never parsed."""

    family = "raw"
    requires = ("pycurl",)
    dist = "pycurl"
    checks = "count"
    how = {
        "bulk_load": "POST pre-encoded _bulk_docs bodies, 4 in flight (threads)",
        "view_replay": "GET the view, count rows in the bytes",
        "view_server": "GET the view, count rows in the bytes",
        "all_docs": "GET _all_docs?include_docs=true, count rows in the bytes",
        "changes": "GET _changes, count rows in the bytes",
        "get_seq": "GET each document on one keep-alive handle",
        "get_c16": "16 threads, one keep-alive handle each",
        "att_up": "PUT the file streamed from disk",
        "att_down": "GET, crc32 of the bytes",
    }

    def connect(self, ctx: dict) -> None:
        import pycurl

        self.pycurl = pycurl
        self.base, self.user, self.password = split_url(ctx["url"])
        self.dburl = f"{self.base}/{quote(ctx['db'], safe='')}"
        self.local = threading.local()
        if "bulk_load" == ctx.get("scenario"):
            import json

            from .data import docs

            # pre-encoded bodies: built before the clock starts
            self.bodies = [json.dumps({"docs": b}, separators=(",", ":")).encode()
                           for b in batches(docs(ctx["size"]), ctx["batch"])]

    def _curl(self) -> Any:
        c = getattr(self.local, "curl", None)
        if c is None:
            c = self.local.curl = self.pycurl.Curl()
            if self.user is not None:
                c.setopt(self.pycurl.USERPWD, f"{self.user}:{self.password or ''}")
            c.setopt(self.pycurl.HTTPHEADER, ["Accept: application/json", "Content-Type: application/json"])
        return c

    def _request(self, method: str, url: str, sink: Any, body: bytes | None = None, upload: Any = None,
                 headers: list[str] | None = None) -> int:
        pycurl = self.pycurl
        c = self._curl()
        c.setopt(pycurl.URL, url)
        c.setopt(pycurl.WRITEFUNCTION, sink)
        c.setopt(pycurl.UPLOAD, 0)
        c.setopt(pycurl.POST, 0)
        c.setopt(pycurl.CUSTOMREQUEST, method)
        if headers:
            c.setopt(pycurl.HTTPHEADER, headers)
        if body is not None:
            c.setopt(pycurl.POSTFIELDS, body)
        if upload is not None:
            c.setopt(pycurl.UPLOAD, 1)
            c.setopt(pycurl.READFUNCTION, upload[0].read)
            c.setopt(pycurl.INFILESIZE_LARGE, upload[1])
        c.perform()
        status = c.getinfo(pycurl.RESPONSE_CODE)
        if status >= 400:
            raise RuntimeError(f"{method} {url.rsplit('/', 1)[-1]}: HTTP {status}")
        return status

    def bulk_load(self, ctx: dict) -> Result:
        pending = iter(self.bodies)
        lock = threading.Lock()
        docs_sent = [0]

        def worker() -> None:
            while True:
                with lock:
                    body = next(pending, None)
                if body is None:
                    return
                self._request("POST", f"{self.dburl}/_bulk_docs", lambda b: None, body=body)
                with lock:
                    docs_sent[0] += body.count(b'"_id":')

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"count": docs_sent[0]}

    def _count_rows(self, url: str) -> Result:
        counter = _RowCounter()
        self._request("GET", url, counter.write)
        return {"count": counter.count, "bytes": counter.nbytes}

    def view_replay(self, ctx: dict) -> Result:
        return self._count_rows(f"{self.dburl}/_design/bench/_view/by_user")

    view_server = view_replay

    def all_docs(self, ctx: dict) -> Result:
        return self._count_rows(f"{self.dburl}/_all_docs?include_docs=true")

    def changes(self, ctx: dict) -> Result:
        return self._count_rows(f"{self.dburl}/_changes")

    def get_seq(self, ctx: dict) -> Result:
        n = 0
        for docid in ctx["ids"]:
            self._request("GET", f"{self.dburl}/{quote(docid, safe='')}", lambda b: None)
            n += 1
        return {"count": n}

    def get_c16(self, ctx: dict) -> Result:
        ids = iter(ctx["ids"])
        lock = threading.Lock()
        done = [0]

        def worker() -> None:
            while True:
                with lock:
                    docid = next(ids, None)
                if docid is None:
                    return
                self._request("GET", f"{self.dburl}/{quote(docid, safe='')}", lambda b: None)
                with lock:
                    done[0] += 1

        threads = [threading.Thread(target=worker) for _ in range(ctx["concurrency"])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"count": done[0]}

    def _att_url(self, ctx: dict) -> str:
        doc = ctx["att_doc"]
        return f"{self.dburl}/{quote(doc['_id'], safe='')}/{quote(ctx['att_name'], safe='')}?rev={doc['_rev']}"

    def att_up(self, ctx: dict) -> Result:
        import os

        with open(ctx["att_path"], "rb") as f:
            self._request("PUT", self._att_url(ctx), lambda b: None, upload=(f, os.path.getsize(ctx["att_path"])),
                          headers=[f"Content-Type: {ctx['att_type']}", "Accept: application/json"])
        return {"count": ctx["size"]}

    def att_down(self, ctx: dict) -> Result:
        state = [0, 0]

        def sink(data: bytes) -> None:
            state[0] = zlib.crc32(data, state[0])
            state[1] += len(data)

        self._request("GET", self._att_url(ctx), sink, headers=["Accept: */*"])
        return {"count": state[1], "digest": state[0]}


# -- peers ------------------------------------------------------------------------------------------


def _threaded_gets(get: Any, ids: list[str], concurrency: int) -> Result:
    h = n = 0
    with ThreadPoolExecutor(concurrency) as pool:
        for doc in pool.map(get, ids):
            h ^= hash((doc["_id"], doc["n"]))
            n += 1
    return {"count": n, "digest": h}


class CouchDBPython(Client):
    """couchdb-python (``pip install CouchDB``), as in its documentation."""

    requires = ("couchdb",)
    dist = "CouchDB"
    how = {
        "bulk_load": "db.update(batch) per batch of 1000",
        "view_replay": "for row in db.view('bench/by_user')",
        "view_server": "for row in db.view('bench/by_user')",
        "all_docs": "for row in db.view('_all_docs', include_docs=True)",
        "changes": "db.changes()['results']",
        "get_seq": "db[id] in a loop",
        "get_c16": "db[id] from 16 threads (ThreadPoolExecutor)",
        "att_up": "db.put_attachment(doc, open(file, 'rb'), ...)",
        "att_down": "db.get_attachment(id, name).read()",
    }

    def connect(self, ctx: dict) -> None:
        import couchdb

        self.server = couchdb.Server(ctx["url"])
        self.db = couchdb.Database(f"{ctx['url']}/{quote(ctx['db'], safe='')}", session=self.server.resource.session)

    def bulk_load(self, ctx: dict) -> Result:
        from .data import docs

        written = failed = 0
        for batch in batches(docs(ctx["size"]), ctx["batch"]):
            for ok, _docid, _rev in self.db.update(batch):
                written += bool(ok)
                failed += not ok
        return {"count": written, "failed": failed}

    def view_replay(self, ctx: dict) -> Result:
        return view_digest(self.db.view("bench/by_user"))

    view_server = view_replay

    def all_docs(self, ctx: dict) -> Result:
        return docs_digest(self.db.view("_all_docs", include_docs=True))

    def changes(self, ctx: dict) -> Result:
        return changes_digest(self.db.changes()["results"])

    def get_seq(self, ctx: dict) -> Result:
        return gets_digest(self.db.__getitem__, ctx["ids"])

    def get_c16(self, ctx: dict) -> Result:
        return _threaded_gets(self.db.__getitem__, ctx["ids"], ctx["concurrency"])

    def att_up(self, ctx: dict) -> Result:
        doc = dict(ctx["att_doc"])
        with open(ctx["att_path"], "rb") as f:
            self.db.put_attachment(doc, f, ctx["att_name"], ctx["att_type"])
        return {"count": ctx["size"]}

    def att_down(self, ctx: dict) -> Result:
        body = self.db.get_attachment(ctx["att_doc"]["_id"], ctx["att_name"])
        data = body.read()
        return {"count": len(data), "digest": zlib.crc32(data)}


class PyCouchDB(Client):
    requires = ("pycouchdb",)
    dist = "pycouchdb"
    how = {
        "bulk_load": "db.save_bulk(batch, transaction=False) per batch of 1000",
        "view_replay": "for row in db.query('bench/by_user')",
        "view_server": "for row in db.query('bench/by_user')",
        "all_docs": "for row in db.all() (include_docs by default)",
        "changes": "db.changes_list()",
        "get_seq": "db.get(id) in a loop",
        "get_c16": "db.get(id) from 16 threads (ThreadPoolExecutor)",
        "att_up": "db.put_attachment(doc, open(file, 'rb'), ...)",
        "att_down": "db.get_attachment(doc, name, stream=True)",
    }

    def connect(self, ctx: dict) -> None:
        import pycouchdb

        self.server = pycouchdb.Server(ctx["url"] + "/")
        self.db = self.server.database(ctx["db"])

    def bulk_load(self, ctx: dict) -> Result:
        from .data import docs

        written = 0
        for batch in batches(docs(ctx["size"]), ctx["batch"]):
            saved = self.db.save_bulk(batch, transaction=False)
            written += sum(1 for d in saved if "_rev" in d)
        return {"count": written}

    def view_replay(self, ctx: dict) -> Result:
        return view_digest_dicts(self.db.query("bench/by_user"))

    view_server = view_replay

    def all_docs(self, ctx: dict) -> Result:
        return docs_digest_dicts(self.db.all())

    def changes(self, ctx: dict) -> Result:
        _last_seq, results = self.db.changes_list()
        return changes_digest(results)

    def get_seq(self, ctx: dict) -> Result:
        return gets_digest(self.db.get, ctx["ids"])

    def get_c16(self, ctx: dict) -> Result:
        return _threaded_gets(self.db.get, ctx["ids"], ctx["concurrency"])

    def att_up(self, ctx: dict) -> Result:
        with open(ctx["att_path"], "rb") as f:
            self.db.put_attachment(dict(ctx["att_doc"]), f, ctx["att_name"], ctx["att_type"])
        return {"count": ctx["size"]}

    def att_down(self, ctx: dict) -> Result:
        stream = self.db.get_attachment(dict(ctx["att_doc"]), ctx["att_name"], stream=True)
        crc = n = 0
        for chunk in stream.iter_content(1 << 16):
            crc = zlib.crc32(chunk, crc)
            n += len(chunk)
        return {"count": n, "digest": crc}


class Cloudant(Client):
    """python-cloudant (``cloudant``), its CouchDB client class, with cookie authentication as
    documented; ``auto_renew=True`` (its documented switch) logs in again when the server
    answers 401: a long run lost a whole cloudant measurement to a 401 once (the session cookie
    no longer accepted, e.g. after the server's auth secret or timeout changed mid-run; the other
    clients send basic auth with every request and cannot lose a session)."""

    requires = ("cloudant",)
    dist = "cloudant"
    how = {
        "bulk_load": "db.bulk_docs(batch) per batch of 1000",
        "view_replay": "db.get_view_result('_design/bench', 'by_user', raw_result=True)['rows']",
        "view_server": "db.get_view_result('_design/bench', 'by_user', raw_result=True)['rows']",
        "all_docs": "db.all_docs(include_docs=True)['rows']",
        "changes": "for change in db.changes()",
        "get_seq": "db[id] in a loop (HEAD + GET per document, cached)",
        "get_c16": "db[id] from 16 threads (ThreadPoolExecutor)",
        "att_up": "Document.put_attachment(name, type, open(file, 'rb'))",
        "att_down": "Document.get_attachment(name, attachment_type='binary')",
    }

    def connect(self, ctx: dict) -> None:
        from cloudant.client import CouchDB
        from cloudant.database import CouchDatabase

        base, user, password = split_url(ctx["url"])
        self.client = CouchDB(user, password, url=base, connect=True, auto_renew=True)
        self.db = CouchDatabase(self.client, ctx["db"])

    def close(self) -> None:
        self.client.disconnect()

    def bulk_load(self, ctx: dict) -> Result:
        from .data import docs

        written = failed = 0
        for batch in batches(docs(ctx["size"]), ctx["batch"]):
            for status in self.db.bulk_docs(batch):
                if "error" in status:
                    failed += 1
                else:
                    written += 1
        return {"count": written, "failed": failed}

    def view_replay(self, ctx: dict) -> Result:
        return view_digest_dicts(self.db.get_view_result("_design/bench", "by_user", raw_result=True)["rows"])

    view_server = view_replay

    def all_docs(self, ctx: dict) -> Result:
        return docs_digest_dicts(self.db.all_docs(include_docs=True)["rows"])

    def changes(self, ctx: dict) -> Result:
        return changes_digest(self.db.changes())

    def get_seq(self, ctx: dict) -> Result:
        return gets_digest(self.db.__getitem__, ctx["ids"])

    def get_c16(self, ctx: dict) -> Result:
        return _threaded_gets(self.db.__getitem__, ctx["ids"], ctx["concurrency"])

    def att_up(self, ctx: dict) -> Result:
        from cloudant.document import Document

        doc = Document(self.db, ctx["att_doc"]["_id"])
        with open(ctx["att_path"], "rb") as f:
            doc.put_attachment(ctx["att_name"], ctx["att_type"], f)
        return {"count": ctx["size"]}

    def att_down(self, ctx: dict) -> Result:
        from cloudant.document import Document

        doc = Document(self.db, ctx["att_doc"]["_id"])
        data = doc.get_attachment(ctx["att_name"], attachment_type="binary")
        return {"count": len(data), "digest": zlib.crc32(data)}


class IBMCloudant(Client):
    """The IBM Cloudant SDK (``ibmcloudant``), CloudantV1 with basic authentication."""

    requires = ("ibmcloudant", "ibm_cloud_sdk_core")
    dist = "ibmcloudant"
    how = {
        "bulk_load": "service.post_bulk_docs(db, BulkDocs(docs=[Document.from_dict(d), ...])) per batch of 1000",
        "view_replay": "service.post_view(db, 'bench', 'by_user').get_result()['rows']",
        "view_server": "service.post_view(db, 'bench', 'by_user').get_result()['rows']",
        "all_docs": "service.post_all_docs(db, include_docs=True).get_result()['rows']",
        "changes": "service.post_changes(db).get_result()['results']",
        "get_seq": "service.get_document(db, id).get_result() in a loop",
        "get_c16": "service.get_document(...) from 16 threads (ThreadPoolExecutor)",
        "att_up": "service.put_attachment(db, id, name, open(file, 'rb'), type, rev=...)",
        "att_down": "service.get_attachment(db, id, name).get_result().content",
    }

    def connect(self, ctx: dict) -> None:
        from ibm_cloud_sdk_core.authenticators import BasicAuthenticator
        from ibmcloudant.cloudant_v1 import CloudantV1

        base, user, password = split_url(ctx["url"])
        self.service = CloudantV1(authenticator=BasicAuthenticator(user or "", password or ""))
        self.service.set_service_url(base)
        self.dbname = ctx["db"]

    def bulk_load(self, ctx: dict) -> Result:
        from ibmcloudant.cloudant_v1 import BulkDocs, Document

        from .data import docs

        written = failed = 0
        for batch in batches(docs(ctx["size"]), ctx["batch"]):
            models = [Document.from_dict(d) for d in batch]
            for status in self.service.post_bulk_docs(db=self.dbname, bulk_docs=BulkDocs(docs=models)).get_result():
                if status.get("ok"):
                    written += 1
                else:
                    failed += 1
        return {"count": written, "failed": failed}

    def view_replay(self, ctx: dict) -> Result:
        return view_digest_dicts(self.service.post_view(db=self.dbname, ddoc="bench", view="by_user").get_result()["rows"])

    view_server = view_replay

    def all_docs(self, ctx: dict) -> Result:
        return docs_digest_dicts(self.service.post_all_docs(db=self.dbname, include_docs=True).get_result()["rows"])

    def changes(self, ctx: dict) -> Result:
        return changes_digest(self.service.post_changes(db=self.dbname).get_result()["results"])

    def _get(self, docid: str) -> dict:
        return self.service.get_document(db=self.dbname, doc_id=docid).get_result()

    def get_seq(self, ctx: dict) -> Result:
        return gets_digest(self._get, ctx["ids"])

    def get_c16(self, ctx: dict) -> Result:
        return _threaded_gets(self._get, ctx["ids"], ctx["concurrency"])

    def att_up(self, ctx: dict) -> Result:
        doc = ctx["att_doc"]
        with open(ctx["att_path"], "rb") as f:
            self.service.put_attachment(db=self.dbname, doc_id=doc["_id"], attachment_name=ctx["att_name"],
                                        attachment=f, content_type=ctx["att_type"], rev=doc["_rev"])
        return {"count": ctx["size"]}

    def att_down(self, ctx: dict) -> Result:
        doc = ctx["att_doc"]
        result = self.service.get_attachment(db=self.dbname, doc_id=doc["_id"],
                                             attachment_name=ctx["att_name"]).get_result()
        data = result.content if hasattr(result, "content") else result
        return {"count": len(data), "digest": zlib.crc32(data)}


class AioCouch(Client):
    """aiocouch (aiohttp), as in its documentation."""

    is_async = True
    requires = ("aiocouch", "aiohttp")
    dist = "aiocouch"
    how = {
        "bulk_load": "async with db.create_docs() as bulk: bulk.create(id, data=...) per batch of 1000",
        "view_replay": "(await db.view('bench', 'by_user').get()).rows",
        "view_server": "(await db.view('bench', 'by_user').get()).rows",
        "all_docs": "async for doc in db.docs()",
        "changes": "async for event in db.changes()",
        "get_seq": "await db[id] in a loop",
        "get_c16": "await db[id] in 16 tasks (asyncio.gather)",
        "att_up": "await doc.attachment(name).save(data, type) (bytes)",
        "att_down": "await doc.attachment(name).fetch()",
    }

    async def connect(self, ctx: dict) -> None:
        from aiocouch import CouchDB

        base, user, password = split_url(ctx["url"])
        self.couch = CouchDB(base, user=user, password=password)
        self.db = await self.couch[ctx["db"]]

    async def close(self) -> None:
        await self.couch.close()

    async def bulk_load(self, ctx: dict) -> Result:
        from .data import docs

        written = failed = 0
        for batch in batches(docs(ctx["size"]), ctx["batch"]):
            async with self.db.create_docs() as bulk:
                for d in batch:
                    bulk.create(d["_id"], data={k: v for k, v in d.items() if k != "_id"})
            written += len(bulk.ok or [])
            failed += len(bulk.error or [])
        return {"count": written, "failed": failed}

    async def view_replay(self, ctx: dict) -> Result:
        response = await self.db.view("bench", "by_user").get()
        return view_digest_dicts(response.rows)

    view_server = view_replay

    async def all_docs(self, ctx: dict) -> Result:
        n = h = 0
        async for doc in self.db.docs():
            h ^= hash((doc.id, doc["n"]))
            n += 1
        return {"count": n, "digest": h}

    async def changes(self, ctx: dict) -> Result:
        n = h = 0
        async for event in self.db.changes():
            h ^= hash(event.id)
            n += 1
        return {"count": n, "digest": h}

    async def get_seq(self, ctx: dict) -> Result:
        h = 0
        for docid in ctx["ids"]:
            doc = await self.db[docid]
            h ^= hash((doc.id, doc["n"]))
        return {"count": len(ctx["ids"]), "digest": h}

    async def get_c16(self, ctx: dict) -> Result:
        ids = iter(ctx["ids"])
        state = [0, 0]

        async def worker() -> None:
            for docid in ids:
                doc = await self.db[docid]
                state[0] ^= hash((doc.id, doc["n"]))
                state[1] += 1

        await asyncio.gather(*(worker() for _ in range(ctx["concurrency"])))
        return {"count": state[1], "digest": state[0]}

    async def att_up(self, ctx: dict) -> Result:
        doc = await self.db[ctx["att_doc"]["_id"]]
        with open(ctx["att_path"], "rb") as f:
            data = f.read()
        await doc.attachment(ctx["att_name"]).save(data, ctx["att_type"])
        return {"count": ctx["size"]}

    async def att_down(self, ctx: dict) -> Result:
        doc = await self.db[ctx["att_doc"]["_id"]]
        data = await doc.attachment(ctx["att_name"]).fetch()
        return {"count": len(data), "digest": zlib.crc32(data)}


# -- the registry -----------------------------------------------------------------------------------

#: client name -> (class, constructor options, extra environment, scenarios it is meant for or None)
REGISTRY: dict[str, tuple[type[Client], dict[str, Any], dict[str, str], frozenset[str] | None]] = {}

ROW_SCENARIOS = frozenset({"view_replay", "view_server", "all_docs", "changes"})
CODEC_SCENARIOS = frozenset({"bulk_load", "get_seq", "get_c16"})


def register(name: str, cls: type[Client], options: dict | None = None, env: dict | None = None,
             only: Iterable[str] | None = None) -> None:
    REGISTRY[name] = (cls, dict(options or {}), dict(env or {}), frozenset(only) if only is not None else None)


register("raw", Raw)
for _backend in ("urllib3", "pycurl"):
    register(f"couchcore-{_backend}", Couchcore, {"backend": _backend})
    # the variants only where they change anything: the row parser for row reads, the codec for documents
    register(f"couchcore-{_backend}/pyrows", Couchcore, {"backend": _backend},
             {"COUCHCORE_ROWS_BACKEND": "python"}, ROW_SCENARIOS)
    for _codec in ("orjson", "simplejson"):
        register(f"couchcore-{_backend}/{_codec}", Couchcore, {"backend": _backend},
                 {"COUCHCORE_JSON": _codec}, CODEC_SCENARIOS)
register("couchcore-tornado", CouchcoreTornado)
register("couchcore-tornado/pyrows", CouchcoreTornado, {}, {"COUCHCORE_ROWS_BACKEND": "python"}, ROW_SCENARIOS)
for _codec in ("orjson", "simplejson"):
    register(f"couchcore-tornado/{_codec}", CouchcoreTornado, {}, {"COUCHCORE_JSON": _codec}, CODEC_SCENARIOS)
register("couchdb-python", CouchDBPython)
register("pycouchdb", PyCouchDB)
register("cloudant", Cloudant)
register("ibmcloudant", IBMCloudant)
register("aiocouch", AioCouch)

PEERS = ("couchdb-python", "pycouchdb", "cloudant", "ibmcloudant", "aiocouch")
