#!/usr/bin/env python3
"""Record the Apache CouchDB responses that the protocol and row-parser tests replay.

Usage::

    python tests/record_fixtures.py [URL] [--out DIR] [--keep]

``URL`` defaults to ``$COUCHDB_URL`` (e.g. ``http://admin:admin@127.0.0.1:5984``; the
credentials must be a server admin's). The script builds the data itself in a database
``fx`` (which must not hold anything you want to keep: an existing ``fx`` is deleted first
and the database is deleted again at the end unless ``--keep``), sends each request below
over a plain socket with ``Accept: application/json`` and writes, into
``tests/data/couchdb-<version>/`` (or ``--out``):

* ``<name>.body``: the response body as received, de-chunked, byte for byte;
* ``<name>.wire``: for the two raw recordings, the response bytes exactly as they came off
  the socket (status line, headers, chunked framing);
* ``index.json``: the server (welcome body, ``Server`` header), the recording time, and for
  each response the request (method, path, body, extra headers, whether it was
  authenticated), the status, reason and headers as sent, the file, and a note;
* ``README.md``: the same summary for people.

Nothing recorded is edited afterwards. The admin credentials are sent as an
``Authorization`` header and never written anywhere.

The data (deterministic, so document revisions are the same on every run):

* ``000``-``029``: ``grp`` = n % 3, ``n``, ``name`` = "é<n> ☃", ``f`` = n / 7, ``big`` = n
  (2**70 + 5 in ``005``), ``nested`` = {"a": [1, 2, {"b": null}], "t": true};
* ``_design/d``: views ``by_n`` (map only), ``by_name`` (values with escapes and an astral
  character), ``by_grp`` (``_sum``) and ``stats`` (``_stats``); no Mango index, so ``_find``
  answers with its "no matching index" warning;
* ``att``: one text attachment ``hello.txt``;
* later ``hb_doc`` (written while a continuous feed is open), ``new1`` (from the partial
  ``_bulk_docs`` failure) and ``b00000``-``b09999`` (``n`` = i, ``s`` = "x" * (i % 40)) for
  the 10k-row responses.

The database is created with ``q=2`` so that row, change and ``sorted=false`` orders are those
of a sharded database.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import select
import shutil
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union
from urllib.parse import quote, unquote, urlsplit

JSON = Union[None, bool, int, float, str, list, dict]

DB = "fx"
HERE = Path(__file__).resolve().parent
USER_AGENT = "couchcore-tests-record_fixtures"
#: headers every request carries (besides Host, Authorization and the body's framing)
DEFAULT_HEADERS = {"Accept": "application/json", "User-Agent": USER_AGENT}
#: sent by the 401 recording: a user that does not exist, so no real credential is involved
WRONG_AUTH = "Basic " + base64.b64encode(b"nobody:wrong").decode()

SMALL_DOCS = 30
BIG_DOCS = 10_000


# -- HTTP/1.1 over a plain socket -----------------------------------------------------------


@dataclass
class Exchange:
    """One request and the response to it, with the response bytes exactly as received."""

    method: str
    path: str
    request_body: JSON
    request_headers: dict[str, str]
    authenticated: bool
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    raw: bytes = b""
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self) -> JSON:
        return json.loads(self.body)


class Server:
    """Where to connect, and the admin's ``Authorization`` header (kept out of every file)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SystemExit("the CouchDB URL must look like http://user:password@host:port")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        self.auth: str | None = None
        if parts.username is not None:
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.auth = "Basic " + base64.b64encode(userinfo.encode()).decode()
        # for messages: never the password
        self.shown = f"{parts.scheme}://{self.host}:{self.port}{self.prefix}"

    def connect(self, timeout: float) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        if self.tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        return sock


class Connection:
    """A persistent HTTP/1.1 connection that keeps every response byte it reads."""

    def __init__(self, server: Server, timeout: float = 300.0) -> None:
        self.server = server
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.pos = 0

    # .. sending

    def send_request(
        self,
        method: str,
        path: str,
        body: JSON | bytes = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Exchange:
        """Send one request; returns the Exchange the response will be read into."""
        extra = dict(headers or {})
        hdrs = {"Host": f"{self.server.host}:{self.server.port}", **DEFAULT_HEADERS}
        if auth and self.server.auth and "Authorization" not in extra:
            hdrs["Authorization"] = self.server.auth
        if isinstance(body, bytes):
            payload: bytes | None = body
            recorded_body: JSON = body.decode("utf-8", "replace")
        elif body is None:
            payload = b"" if method in ("POST", "PUT") else None
            recorded_body = None
        else:
            payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            recorded_body = body
            hdrs["Content-Type"] = "application/json"
        hdrs.update(extra)
        if payload is not None:
            hdrs["Content-Length"] = str(len(payload))
        head = f"{method} {self.server.prefix}{path} HTTP/1.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        if self.sock is None:
            self.sock = self.server.connect(self.timeout)
            self.buf.clear()
            self.pos = 0
        self.sock.sendall(head.encode("latin-1") + (payload or b""))
        return Exchange(method, path, recorded_body, extra, auth and self.server.auth is not None)

    def request(self, method: str, path: str, body: JSON | bytes = None,
                headers: dict[str, str] | None = None, auth: bool = True) -> Exchange:
        ex = self.send_request(method, path, body, headers, auth)
        self.read_response(ex)
        return ex

    # .. receiving

    def _fill(self, timeout: float | None = None) -> bool:
        """Read more bytes into the buffer; False at end of stream (or timeout, if given)."""
        assert self.sock is not None
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            if timeout is None:
                raise
            return False
        self.buf += data
        return bool(data)

    def _read_until(self, marker: bytes) -> bytes:
        while True:
            i = self.buf.find(marker, self.pos)
            if i >= 0:
                out = bytes(self.buf[self.pos : i])
                self.pos = i + len(marker)
                return out
            if not self._fill():
                raise ConnectionError(f"connection closed while waiting for {marker!r}")

    def _read_exactly(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n:
            if not self._fill():
                raise ConnectionError("connection closed in the middle of a body")
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def read_head(self, ex: Exchange) -> None:
        start = self.pos
        status_line, *lines = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        version, status, reason = (status_line.split(" ", 2) + [""])[:3]
        if not version.startswith("HTTP/1."):
            raise ConnectionError(f"not an HTTP/1.x response: {status_line!r}")
        ex.status, ex.reason = int(status), reason
        for line in lines:
            name, _, value = line.partition(":")
            ex.headers.append((name, value.strip()))
        ex.raw = bytes(self.buf[start : self.pos])

    def read_response(self, ex: Exchange) -> None:
        """Read the status line, headers and the whole body (Content-Length, chunked or EOF)."""
        self.read_head(ex)
        start = self.pos - len(ex.raw)
        te = (ex.header("Transfer-Encoding") or "").lower()
        length = ex.header("Content-Length")
        until_eof = False
        if ex.method == "HEAD" or ex.status in (204, 304) or 100 <= ex.status < 200:
            body = b""
        elif "chunked" in te:
            parts = []
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    while self._read_until(b"\r\n"):  # trailers, then the empty line
                        pass
                    break
                parts.append(self._read_exactly(size))
                if self._read_exactly(2) != b"\r\n":
                    raise ConnectionError("bad chunk framing")
            body = b"".join(parts)
        elif length is not None:
            body = self._read_exactly(int(length))
        else:
            while self._fill():
                pass
            body = bytes(self.buf[self.pos :])
            self.pos = len(self.buf)
            until_eof = True
        ex.body = body
        ex.raw = bytes(self.buf[start : self.pos])
        del self.buf[: self.pos]
        self.pos = 0
        if until_eof or (ex.header("Connection") or "").lower() == "close":
            self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def complete_chunks(data: bytes) -> bool:
    """True when ``data`` (a chunked body without its head) ends on a chunk boundary."""
    rest = data
    while rest:
        size_line, sep, after = rest.partition(b"\r\n")
        if not sep:
            return False
        size = int(size_line.split(b";")[0], 16)
        if len(after) < size + 2:
            return False
        rest = after[size + 2 :]
        if size == 0:
            return True
    return True


# -- the data -----------------------------------------------------------------------------


def small_doc(n: int) -> dict:
    return {
        "_id": "%03d" % n,
        "grp": n % 3,
        "n": n,
        "name": f"é{n} ☃",
        "f": n / 7,
        "big": 2**70 + n if n == 5 else n,
        "nested": {"a": [1, 2, {"b": None}], "t": True},
    }


def big_doc(i: int) -> dict:
    return {"_id": "b%05d" % i, "n": i, "s": "x" * (i % 40)}


DESIGN = {
    "_id": "_design/d",
    "language": "javascript",
    "views": {
        "by_n": {"map": "function (doc) { if (doc.n !== undefined) emit(doc.n, doc.grp === undefined ? null : doc.grp); }"},
        "by_name": {
            "map": 'function (doc) { if (doc.name) emit(doc.name, {s: "q\\"uote\\\\back\\nnl", u: "\\ud83d\\ude00"}); }'
        },
        "by_grp": {"map": "function (doc) { if (doc.grp !== undefined) emit([doc.grp, doc.n], doc.n); }", "reduce": "_sum"},
        "stats": {"map": "function (doc) { if (doc.grp !== undefined) emit(doc.grp, doc.n); }", "reduce": "_stats"},
    },
}


#: the end of the b-prefixed ids' range
B_END = "b\ufff0"


def q(value: JSON) -> str:
    """A JSON value as a query-string parameter."""
    return quote(json.dumps(value, ensure_ascii=False, separators=(",", ":")), safe="")


# -- recording ----------------------------------------------------------------------------


class Recorder:
    def __init__(self, server: Server, out: Path) -> None:
        self.server = server
        self.out = out
        self.conn = Connection(server)
        self.entries: list[dict] = []
        self.names: set[str] = set()

    def _entry(self, name: str, ex: Exchange, note: str) -> dict:
        if name in self.names:
            raise ValueError(f"recorded twice: {name}")
        self.names.add(name)
        entry = {
            "name": name,
            "method": ex.method,
            "path": ex.path,
            "request_body": ex.request_body,
            "request_headers": ex.request_headers,
            "authenticated": ex.authenticated,
            "status": ex.status,
            "reason": ex.reason,
            "headers": [list(h) for h in ex.headers],
        }
        self.entries.append(entry)
        print(f"  {ex.status} {ex.method} {ex.path} -> {name}", file=sys.stderr)
        return entry

    def body(self, name: str, ex: Exchange, expect: int, note: str = "") -> Exchange:
        """Keep a finished exchange as ``<name>.body``; its status must be ``expect``."""
        if ex.status != expect:
            raise SystemExit(f"{name}: expected HTTP {expect}, got {ex.status} {ex.body[:300]!r}")
        (self.out / f"{name}.body").write_bytes(ex.body)
        entry = self._entry(name, ex, note)
        entry["body_file"] = f"{name}.body"
        entry["note"] = note
        return ex

    def record(self, name: str, method: str, path: str, body: JSON | bytes = None,
               headers: dict[str, str] | None = None, expect: int = 200, note: str = "",
               auth: bool = True) -> Exchange:
        return self.body(name, self.conn.request(method, path, body, headers, auth), expect, note)

    def wire(self, name: str, file: str, ex: Exchange, note: str) -> None:
        (self.out / file).write_bytes(ex.raw)
        entry = self._entry(name, ex, note)
        entry["wire_file"] = file
        entry["note"] = note

    # .. helpers that are not recorded

    def setup(self, method: str, path: str, body: JSON | bytes = None,
              headers: dict[str, str] | None = None, ok: tuple[int, ...] = (200, 201, 202)) -> Exchange:
        ex = self.conn.request(method, path, body, headers)
        if ex.status not in ok:
            raise SystemExit(f"setup {method} {path}: HTTP {ex.status} {ex.body[:300]!r}")
        return ex


def record_continuous_heartbeat(rec: Recorder) -> None:
    """Open a continuous feed, write one document 0.5 s later, cut the bytes after 1.5 s."""
    path = f"/{DB}/_changes?feed=continuous&since=now&heartbeat=300"
    feed = Connection(rec.server, timeout=30)
    ex = feed.send_request("GET", path)
    t0 = time.monotonic()
    written = False
    while True:
        now = time.monotonic() - t0
        if not written and now >= 0.5:
            rec.setup("PUT", f"/{DB}/hb_doc", {"written": "0.5 s after the feed was opened"})
            written = True
        if now >= 1.5:
            break
        wait = (0.5 if not written else 1.5) - now
        assert feed.sock is not None
        readable, _, _ = select.select([feed.sock], [], [], max(wait, 0))
        if readable and not feed._fill():
            raise SystemExit("the continuous feed closed early")
    # stop reading at a chunk boundary, never in the middle of a chunk
    head_end = feed.buf.find(b"\r\n\r\n")
    deadline = time.monotonic() + 5
    while head_end < 0 or not complete_chunks(bytes(feed.buf[head_end + 4 :])):
        if time.monotonic() > deadline or not feed._fill(timeout=1.0):
            raise SystemExit("the continuous feed stopped in the middle of a chunk")
        head_end = feed.buf.find(b"\r\n\r\n")
    raw = bytes(feed.buf)
    feed.read_head(ex)
    feed.close()
    ex.raw = raw
    if ex.status != 200 or b'"hb_doc"' not in raw:
        raise SystemExit(f"continuous feed: HTTP {ex.status}, hb_doc not seen: {raw[:300]!r}")
    rec.wire(
        "changes_continuous_heartbeat", "changes_continuous_heartbeat.wire", ex,
        "raw HTTP bytes incl. headers and chunked framing, cut after 1.5 s at a chunk boundary "
        "(the feed is still open: no terminating chunk); one change (hb_doc) written 0.5 s after "
        "the request; heartbeats are newline-only chunks",
    )


def record_active_indexer(rec: Recorder) -> None:
    """Poll /_active_tasks while the by_n index catches up with 10k new documents."""
    done = threading.Event()

    def build() -> None:
        conn = Connection(rec.server)
        try:
            conn.request("GET", f"/{DB}/_design/d/_view/by_n?limit=0")
        finally:
            conn.close()
            done.set()

    threading.Thread(target=build, daemon=True).start()
    last = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ex = rec.conn.request("GET", "/_active_tasks")
        last = ex
        tasks = ex.json() if ex.status == 200 else []
        if any(t.get("type") == "indexer" and f"/{DB}." in t.get("database", "") for t in tasks):
            rec.body("active_tasks", ex, 200, "polled while the view index of _design/d was being built")
            done.wait(120)
            return
        if done.is_set():
            break
        time.sleep(0.02)
    assert last is not None
    done.wait(120)
    rec.body("active_tasks", last, 200, "no indexer was caught running: the index was built between two polls")


def record_all(rec: Recorder) -> dict:
    r = rec.record
    db = f"/{DB}"
    ddoc = f"{db}/_design/d"

    welcome = r("welcome", "GET", "/")
    info = welcome.json()
    if not isinstance(info, dict) or "couchdb" not in info:
        raise SystemExit("not Apache CouchDB (its welcome has no 'couchdb' key)")

    # -- setup: 30 documents, the design document and the attachment (32 documents) -----------
    if rec.conn.request("HEAD", db).status == 200:
        rec.setup("DELETE", db)
    rec.setup("PUT", f"{db}?q=2")
    res = rec.setup("POST", f"{db}/_bulk_docs", {"docs": [small_doc(n) for n in range(SMALL_DOCS)]}).json()
    assert isinstance(res, list) and all(x.get("ok") for x in res), res
    rec.setup("PUT", f"{db}/_design/d", DESIGN)
    rec.setup("PUT", f"{db}/att/hello.txt", b"hello world", {"Content-Type": "text/plain"})

    # -- server ------------------------------------------------------------------------------
    r("all_dbs", "GET", "/_all_dbs", note="whatever databases the server held at the time")
    r("uuids", "GET", "/_uuids?count=3")
    r("db_info", "GET", db)

    # -- _all_docs and views (32 documents) --------------------------------------------------
    r("all_docs", "GET", f"{db}/_all_docs")
    r("all_docs_include_docs", "GET", f"{db}/_all_docs?include_docs=true&limit=5")
    r("all_docs_keys_missing", "POST", f"{db}/_all_docs", {"keys": ["001", "nope", "002"]},
      note="error row without id")
    r("all_docs_keys_missing_include_docs", "POST", f"{db}/_all_docs?include_docs=true", {"keys": ["001", "nope"]})
    r("view_by_n_limit5", "GET", f"{ddoc}/_view/by_n?limit=5")
    r("view_by_n_include_docs", "GET", f"{ddoc}/_view/by_n?include_docs=true&limit=3")
    r("view_by_n_update_seq", "GET", f"{ddoc}/_view/by_n?update_seq=true&limit=2")
    r("view_by_n_sorted_false", "GET", f"{ddoc}/_view/by_n?sorted=false&limit=4",
      note="metadata may come after rows; rows in shard order")
    r("view_by_n_keys", "POST", f"{ddoc}/_view/by_n", {"keys": [3, 99, 1]}, note="key 99 has no row")
    r("view_by_name_unicode_escapes", "GET", f"{ddoc}/_view/by_name?limit=3")
    r("view_reduce_all", "GET", f"{ddoc}/_view/by_grp")
    r("view_reduce_group_level1", "GET", f"{ddoc}/_view/by_grp?group_level=1")
    r("view_stats_group", "GET", f"{ddoc}/_view/stats?group=true")
    r("view_empty", "GET", f"{ddoc}/_view/by_n?startkey=1000")

    # -- _changes ----------------------------------------------------------------------------
    r("changes_normal", "GET", f"{db}/_changes?limit=5")
    r("changes_include_docs", "GET", f"{db}/_changes?include_docs=true&limit=2")
    r("changes_style_all_docs", "GET", f"{db}/_changes?style=all_docs&limit=2")
    r("changes_longpoll_empty", "GET", f"{db}/_changes?feed=longpoll&since=now&timeout=1000",
      note="nothing changed within the 1 s timeout")
    r("changes_continuous_limit3", "GET", f"{db}/_changes?feed=continuous&limit=3",
      note="one JSON object per line, then last_seq")

    # -- documents, _bulk_get, _find, attachment ---------------------------------------------
    r("bulk_get", "POST", f"{db}/_bulk_get", {"docs": [{"id": "001"}, {"id": "nope"}, {"id": "002", "rev": "9-deadbeef"}]})
    r("find", "POST", f"{db}/_find", {"selector": {"grp": 1}, "limit": 3, "fields": ["_id", "n"]},
      note="no Mango index exists: the answer carries a warning")
    r("doc", "GET", f"{db}/005", note="big is 2**70 + 5")
    r("doc_revs_info", "GET", f"{db}/005?revs_info=true")
    r("doc_open_revs_all", "GET", f"{db}/005?open_revs=all")
    r("attachment", "GET", f"{db}/att/hello.txt", headers={"Accept": "*/*"})

    # -- node --------------------------------------------------------------------------------
    r("stats_request_time", "GET", "/_node/_local/_stats/couchdb/request_time")
    r("config_section", "GET", "/_node/_local/_config/couchdb")
    r("scheduler_jobs", "GET", "/_scheduler/jobs")

    # -- errors ------------------------------------------------------------------------------
    if rec.conn.request("HEAD", "/nodb_here").status != 404:
        raise SystemExit("a database 'nodb_here' exists: the 404 cannot be recorded")
    r("err_missing_doc", "GET", f"{db}/nope", expect=404)
    r("err_missing_db", "GET", "/nodb_here", expect=404)
    r("err_db_exists", "PUT", db, expect=412)
    r("err_bad_db_name", "PUT", "/Bad%20Name", expect=400)
    r("err_conflict", "PUT", f"{db}/001", {"x": 1}, expect=409, note="no _rev: the document exists")
    r("err_missing_view", "GET", f"{ddoc}/_view/nope", expect=404)
    r("err_temp_view_gone", "POST", f"{db}/_temp_view", {"map": "function(d){emit(null,null)}"}, expect=410)
    r("err_bad_startkey", "GET", f"{ddoc}/_view/by_n?startkey=notjson", expect=400)
    r("err_reduce_on_map_only", "GET", f"{ddoc}/_view/by_n?reduce=true", expect=400)
    r("err_unauthorized", "GET", "/_all_dbs", headers={"Authorization": WRONG_AUTH}, auth=False, expect=401,
      note="Basic credentials of a user that does not exist")
    r("err_compact_no_content_type", "POST", f"{db}/_compact", expect=415, note="no Content-Type header")
    r("err_bad_json_body", "POST", db, b"{not json", {"Content-Type": "application/json"}, expect=400)

    # -- raw bytes on the wire ----------------------------------------------------------------
    conn = Connection(rec.server)
    ex = conn.request("GET", f"{ddoc}/_view/by_n?limit=3", headers={"Connection": "close"})
    conn.close()
    if ex.status != 200:
        raise SystemExit(f"view_by_n_limit3_wire: HTTP {ex.status}")
    rec.wire("view_by_n_limit3_wire", "view_by_n_limit3.wire", ex, "raw HTTP bytes incl. headers and chunked framing")
    record_continuous_heartbeat(rec)  # writes hb_doc

    # -- writes ------------------------------------------------------------------------------
    r("bulk_docs_conflict", "POST", f"{db}/_bulk_docs", {"docs": [{"_id": "001"}, {"_id": "new1"}]}, expect=201,
      note="001 exists (conflict), new1 is created")

    # -- 10k rows ----------------------------------------------------------------------------
    for start in range(0, BIG_DOCS, 2000):
        res = rec.setup("POST", f"{db}/_bulk_docs", {"docs": [big_doc(i) for i in range(start, start + 2000)]}).json()
        assert isinstance(res, list) and all(x.get("ok") for x in res), res
    record_active_indexer(rec)
    r("view_10k_rows", "GET", f"{ddoc}/_view/by_n?startkey=0", note="10k+ rows")
    b_range = f"startkey={q('b')}&endkey={q(B_END)}"
    r("all_docs_10k_include_docs", "GET", f"{db}/_all_docs?include_docs=true&{b_range}", note="10k rows with documents")
    r("changes_10k", "GET", f"{db}/_changes", note="10k+ changes")
    return info


README = """\
# Recorded Apache CouchDB {version} responses

Recorded {recorded} by `tests/record_fixtures.py` from a single node answering
`Server: {server_header}`, with `Accept: application/json`. Do not edit these files:
re-record them instead, against a running CouchDB (server admin credentials; the script
creates and deletes database `fx`):

    python tests/record_fixtures.py http://admin:password@127.0.0.1:5984

`index.json` lists each request (method, path, body, extra headers, whether it was
authenticated), the status, reason and response headers, and the file holding the body
(`*.body`, de-chunked) or the bytes on the wire (`*.wire`: status line, headers and chunked
framing exactly as received). `tests/unit/test_protocol.py` and `tests/unit/test_rows.py` replay them.
See the script's docstring for the data.
"""


def dump_index(index: dict) -> str:
    """index.json: one key per line, but each header pair and request body on one line."""

    def compact(value: JSON) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = ["{"]
    top = [(k, v) for k, v in index.items() if k != "responses"]
    for k, v in top:
        lines.append(f" {compact(k)}: {compact(v)},")
    lines.append(' "responses": [')
    for i, entry in enumerate(index["responses"]):
        lines.append("  {")
        items = list(entry.items())
        for j, (k, v) in enumerate(items):
            comma = "," if j < len(items) - 1 else ""
            if k == "headers":
                lines.append(f"   {compact(k)}: [")
                lines += [f"    {compact(h)}" + ("," if n < len(v) - 1 else "") for n, h in enumerate(v)]
                lines.append("   ]" + comma)
            else:
                lines.append(f"   {compact(k)}: {compact(v)}{comma}")
        lines.append("  }" + ("," if i < len(index["responses"]) - 1 else ""))
    lines += [" ]", "}", ""]
    text = "\n".join(lines)
    assert json.loads(text) == index
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", nargs="?", default=os.environ.get("COUCHDB_URL"),
                    help="CouchDB URL with admin credentials (default: $COUCHDB_URL)")
    ap.add_argument("--out", type=Path, help="output directory (default: tests/data/couchdb-<version>)")
    ap.add_argument("--keep", action="store_true", help=f"keep the database {DB!r} afterwards")
    args = ap.parse_args(argv)
    if not args.url:
        ap.error("give a CouchDB URL or set COUCHDB_URL")
    server = Server(args.url)
    tmp = HERE / "data" / ".recording"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    rec = Recorder(server, tmp)
    print(f"recording from {server.shown}", file=sys.stderr)
    recorded = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    try:
        info = record_all(rec)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if not args.keep:
            try:
                gone = rec.conn.request("DELETE", f"/{DB}").status in (200, 202, 404)
            except OSError:
                gone = False
            if not gone:
                print(f"could not delete the database {DB!r}: delete it by hand", file=sys.stderr)
        rec.conn.close()
    version = str(info["version"])
    server_header = next((v for k, v in rec.entries[0]["headers"] if k.lower() == "server"), "")
    index = {
        "server": f"Apache CouchDB {version}",
        "server_header": server_header,
        "welcome": info,
        "recorded": recorded.isoformat().replace("+00:00", "Z"),
        "recorded_by": "tests/record_fixtures.py",
        "database": DB,
        "default_request_headers": DEFAULT_HEADERS,
        "responses": rec.entries,
    }
    (tmp / "index.json").write_text(dump_index(index), encoding="utf-8")
    (tmp / "README.md").write_text(
        README.format(version=version, recorded=index["recorded"], server_header=server_header),
        encoding="utf-8",
    )
    out = args.out or HERE / "data" / f"couchdb-{version}"
    if out.exists():
        if not (out / "index.json").is_file():
            shutil.rmtree(tmp)
            raise SystemExit(f"{out} exists and is not a previous recording: not replacing it")
        shutil.rmtree(out)
    shutil.move(str(tmp), str(out))
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"{len(rec.entries)} responses, {total / 1e6:.1f} MB in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
