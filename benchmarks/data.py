"""The benchmark data: documents, the view, the replayed view body, and what every client
must get back (the correctness guard's expectations).

Everything is a pure function of the scenario size, so the parent (which seeds the server
and checks what was written) and the children (which check what they read) agree without
sharing anything but this module.

Documents are ``{"_id": "doc%08d", "type": "event", "user": "user<i % 100>", "n": i,
"score": <4-digit float>, "tags": ["a", "b", "c"]}``; the view ``bench/by_user`` emits
``[user, n] -> {"n": n, "score": score}``, which makes rows shaped like
``{"id":"doc00000017","key":["user17",17],"value":{"n":17,"score":0.8544}}`` (about 96
bytes; the shape measured in issue 9).
"""

from __future__ import annotations

import hashlib
import base64
import random
import zlib
from typing import Any, Iterator

USERS = 100
DDOC_ID = "_design/bench"
VIEW = "by_user"
MAP_FN = ("function (doc) { if (doc.type === 'event') "
          "{ emit([doc.user, doc.n], {n: doc.n, score: doc.score}); } }")
ATTACHMENT_NAME = "blob.bin"
ATTACHMENT_TYPE = "application/octet-stream"


def doc_id(i: int) -> str:
    return "doc%08d" % i


def score(i: int) -> float:
    return ((i * 7919) % 10000) / 10000


def make_doc(i: int) -> dict[str, Any]:
    return {"_id": doc_id(i), "type": "event", "user": "user%d" % (i % USERS), "n": i,
            "score": score(i), "tags": ["a", "b", "c"]}


def docs(n: int) -> Iterator[dict[str, Any]]:
    """The ``n`` benchmark documents, generated lazily."""
    return (make_doc(i) for i in range(n))


def design_doc() -> dict[str, Any]:
    return {"_id": DDOC_ID, "language": "javascript", "views": {VIEW: {"map": MAP_FN}}}


def gets_ids(count: int, ndocs: int) -> list[str]:
    """``count`` distinct ids spread over a database of ``ndocs`` documents."""
    step = max(1, ndocs // count)
    return [doc_id((k * step) % ndocs) for k in range(count)]


# -- per-row checksums: every client computes these (inline, as hash((...))) while it reads ----

def view_row_hash(rid: str, k0: str, k1: int) -> int:
    return hash((rid, k0, k1))


def doc_hash(did: str, n: int) -> int:
    return hash((did, n))


def expected(scenario: str, size: int, ids: list[str] | None = None) -> dict[str, Any]:
    """What a correct client reports for ``scenario`` at ``size`` (computed in the child,
    after the measurement: ``hash`` of str depends on the process's hash seed)."""
    if scenario in ("view_replay", "view_server"):
        h = 0
        for i in range(size):
            h ^= view_row_hash(doc_id(i), "user%d" % (i % USERS), i)
        return {"count": size, "digest": h}
    if scenario == "all_docs":
        h = 0
        for i in range(size):
            h ^= doc_hash(doc_id(i), i)
        return {"count": size, "digest": h}
    if scenario == "changes":
        h = 0
        for i in range(size):
            h ^= hash(doc_id(i))
        return {"count": size, "digest": h}
    if scenario in ("get_seq", "get_c16"):
        assert ids is not None
        h = 0
        for did in ids:
            h ^= doc_hash(did, int(did[3:]))
        return {"count": len(ids), "digest": h}
    if scenario == "att_down":
        return {"count": size, "digest": zlib.crc32(attachment_bytes(size))}
    if scenario in ("bulk_load", "att_up"):
        return {"count": size}  # checked on the server by the parent
    raise KeyError(scenario)


# -- the attachment ---------------------------------------------------------------------------

def attachment_bytes(size: int) -> bytes:
    """``size`` incompressible, reproducible bytes."""
    return random.Random(size).randbytes(size)


def attachment_md5_digest(size: int) -> str:
    """The ``digest`` CouchDB reports in the attachment stub."""
    return "md5-" + base64.b64encode(hashlib.md5(attachment_bytes(size)).digest()).decode()


# -- the replayed view body ------------------------------------------------------------------

#: CouchDB 3's view framing (see ``fixtures/couchdb-3.5.0/view_by_n_limit3.wire``): the
#: header line, rows joined by ``,\r\n``, ``\r\n]}`` then ``\n``; rows are buffered into
#: chunks of at least 1490 bytes (``couch_mrview_http``'s threshold) before each is sent.
CHUNK_THRESHOLD = 1490


def view_rows(n: int) -> Iterator[bytes]:
    """The rows of ``bench/by_user`` over ``n`` documents as CouchDB writes them, in key
    order (users in collation order, then ``n``)."""
    users = sorted(range(USERS), key=lambda u: "user%d" % u)
    for u in users:
        for i in range(u, n, USERS):
            yield (b'{"id":"%s","key":["user%d",%d],"value":{"n":%d,"score":%s}}'
                   % (doc_id(i).encode(), u, i, i, repr(score(i)).encode()))


def view_wire_body(n: int) -> bytes:
    """The chunked (``Transfer-Encoding: chunked``) body of the view, framed as CouchDB 3.5."""
    out: list[bytes] = []
    buf = [b'{"total_rows":%d,"offset":0,"rows":[\r\n' % n]
    size = len(buf[0])
    first = True
    for row in view_rows(n):
        piece = row if first else b",\r\n" + row
        first = False
        buf.append(piece)
        size += len(piece)
        if size >= CHUNK_THRESHOLD:
            data = b"".join(buf)
            out.append(b"%x\r\n%s\r\n" % (len(data), data))
            buf, size = [], 0
    buf.append(b"\r\n]}")
    data = b"".join(buf)
    out.append(b"%x\r\n%s\r\n" % (len(data), data))
    out.append(b"1\r\n\n\r\n0\r\n\r\n")
    return b"".join(out)
