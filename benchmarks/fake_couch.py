"""A minimal, fast CouchDB stand-in for client benchmarks (run as a subprocess).

It answers just enough of the protocol to measure the client side: ``GET /``,
``HEAD``/``PUT``/``GET /db``, ``GET /_uuids``, ``POST /db/_bulk_docs`` (every document
accepted, results in order), ``GET /db/<id>`` (a small generated document) and
``GET /db/_all_docs`` / views (a generated CouchDB-framed body of ``?rows=N`` rows,
streamed chunked). It stores nothing, so its cost per request is tiny and constant.

    python benchmarks/fake_couch.py PORT
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from urllib.parse import parse_qs, urlsplit

import orjson

ROW = b'{"id":"doc%08d","key":"doc%08d","value":{"rev":"1-967a00dff5e02add41819138abb3284d"}}'


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readline()
    return b""


def respond(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
    writer.write(b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (status, len(body)))
    writer.write(body)


async def stream_rows(writer: asyncio.StreamWriter, n: int) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")

    def chunk(data: bytes) -> None:
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))

    chunk(b'{"total_rows":%d,"offset":0,"rows":[\r\n' % n)
    batch = []
    for i in range(n):
        batch.append(ROW % (i, i))
        if len(batch) == 1000:
            chunk(b",\r\n".join(batch) + (b",\r\n" if i + 1 < n else b""))
            batch = []
            await writer.drain()
    if batch:
        chunk(b",\r\n".join(batch))
    chunk(b"\r\n]}\n")
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers = {}
            while True:
                h = await reader.readline()
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            body = await read_body(reader, headers)
            url = urlsplit(target)
            parts = [p for p in url.path.split("/") if p]
            query = parse_qs(url.query)
            if not parts:
                respond(writer, 200, b'{"couchdb":"Welcome","version":"3.5.0"}')
            elif parts[0] == "_uuids":
                count = int(query.get("count", ["1"])[0])
                respond(writer, 200, orjson.dumps({"uuids": [uuid.uuid4().hex for _ in range(count)]}))
            elif len(parts) == 1:
                if method == "HEAD":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                else:
                    respond(writer, 201 if method == "PUT" else 200, b'{"ok":true,"db_name":"%s","doc_count":0}' % parts[0].encode())
            elif parts[1] == "_bulk_docs":
                docs = orjson.loads(body)["docs"]
                respond(writer, 201, orjson.dumps(
                    [{"ok": True, "id": d.get("_id"), "rev": "1-967a00dff5e02add41819138abb3284d"} for d in docs]))
            elif parts[1] == "_all_docs" or "_view" in parts:
                await stream_rows(writer, int(query.get("rows", ["1000"])[0]))
            else:
                respond(writer, 200, orjson.dumps({"_id": parts[-1], "_rev": "1-abc", "value": 42, "tags": ["a", "b"]}))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
