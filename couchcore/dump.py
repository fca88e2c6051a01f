"""Dump a database as JSON Lines: every revision a copy needs, one a line, streamed, optionally in parallel ranges.

What is written, so that ``couchcore load B --new-edits-false`` (``new_edits=false``, as the
replicator writes) rebuilds the database exactly:

* **Live documents** (design documents included): the winning revision of each, with
  ``_id``, ``_rev``, the body and ``_revisions`` (its revision history), read from
  ``_all_docs`` then ``POST /{db}/_bulk_get?revs=true`` in batches of 200, in ``_id`` order
  (CouchDB's raw collation). ``history=False`` (``--no-history``) writes them without
  ``_revisions``, straight from ``_all_docs?include_docs=true``: faster, as the server
  reads each document once instead of twice (measured on CouchDB 3.5, one node, 20k
  documents of ~250 bytes, urllib3, the machine under load, three interleaved runs: one
  stream 3.2-3.7k lines/s with the history, 5.2-12.4k without; ``parallel=4`` 4.9-5.9k
  against 4.7-10.9k; the client's CPU is 23-25 against 15-16 µs a line: the difference is
  the server's ``_bulk_get``; ``couchcore dump`` on pycurl at a load average of 20-35,
  where the same command's time varied up to 6x between runs: 20k documents 4.2 s against
  3.0 s, 100k 85 s against 44 s). The copy has the same ids, winners, bodies and conflicts, but
  knows each winner's own revision only (``_revs_info`` and ``revs=true`` show one entry).
* **Conflicts**: every other leaf revision of a live document -- conflicting revisions
  (``_conflicts``) and deleted leaves (``_deleted_conflicts``) -- each as its own line with
  the same ``_id``, its ``_rev``, body and ``_revisions``, so the copy has the same branches,
  the same winner and the same ``_conflicts``.
* **Deleted documents** (tombstones): every leaf revision of each, ``{"_id", "_rev",
  "_deleted": true, "_revisions", ...}``. They are part of a database (the replicator
  carries them: a copy that lacked them would bring a deleted document back when it is
  replicated with a copy that still has it), so they are written by default;
  ``deleted=False`` (``--no-deleted``) leaves them out.

Conflicts and tombstones come from ``_changes?style=all_docs`` (one row per document with
all its leaf revisions; ``"deleted": true`` when the winner is a tombstone), read after the
ranges, and are fetched with ``_bulk_get?revs=true``: they follow the live documents, in
the feed's order (the winner of a document with conflicts, which the range readers
write, is left out as the server names it in ``POST /{db}/_all_docs`` with ``keys``:
CouchDB compares a 32-hex-digit revision id as the bytes it encodes, not as a string). The lines of one document need no particular order: ``new_edits=false``
merges each revision into the document's revision tree, and the tree's leaves decide the
winner (CouchDB's rule: not deleted first, then the longest history, then the greatest
revision id). ``_local`` documents are not written (neither ``_all_docs`` nor
``_changes`` lists them; the replicator does not copy them either), nor revisions that are
not leaves (their bodies are gone after compaction; ``_revisions`` keeps their ids), nor
what is not a document: the ``_security`` object, ``_revs_limit``, purge history, and the
database's creation options (``partitioned``, ``q``, ``n``): ``load --create`` makes a plain
database, so for a partitioned copy create it first (``Server.create(name,
partitioned=True)``) and load without ``--create``.
``attachments=True`` (``--attachments``) inlines attachment content as base64 ``data``
(``attachments=true``, https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-get);
without it attachments are stubs (``"stub": true``), which a new database cannot take
(CouchDB answers ``412 missing_stub``; ``couchcore load`` rejects just those documents and
writes the others): to copy a database with attachments, dump with ``attachments=True``.

Memory stays flat: ``_all_docs`` and ``_changes`` are read in pages of 5,000 rows (each
answer read whole before the revisions it lists are fetched, up to 200 at a time and about
8 MB of answer: the size of one batch's lines sets the next batch's count, and with
attachments inline the first batch is 2; with ``history=False`` the listing streams), and
lines are written out in chunks of 500 or about 1 MB, never the whole database
(``couchcore dump`` peak RSS, CouchDB 3.5: 35 MB for 20k and for 100k documents, 51-55 MB
with ``--parallel 4``; 40 documents with a 4 MB attachment each, ``--attachments``: 50 MB,
107 MB with ``--parallel 4``, where batches of 200 revisions and chunks of 500 lines took
705 MB).

**Parallel ranges** (``parallel=N``): the id space is cut into ``N`` ranges of about equal
document counts, read concurrently (``startkey``/``endkey`` with ``inclusive_end=false``), and
the ``_changes`` reader runs alongside them (``N + 1`` threads, ``N + 1`` requests in flight).
Everything is written in order -- range 1, ..., range N, then the conflicts and tombstones --
so the output holds the same lines as with ``parallel=1`` from the same database: the live
documents byte-for-byte in the same order, the conflicts and tombstones in the order
``_changes`` gives them (on a database of several shards that order may differ from one read
to the next, with or without ``parallel``: ``_changes`` has no global order across shards). The first
range streams straight to ``out``; the others are spooled to temporary files (flat memory,
disk up to the size of the dump) and appended when their turn comes.

The split points are found without ``skip`` (which costs the server O(skip) rows per
request). The first and last ids come from ``limit=1`` reads; keys are read as numbers, one
digit per character (base 128 when those ids are ASCII, else 0xD800, below the surrogates).
CouchDB reports, for ``_all_docs?startkey=K&limit=1``, the ``offset``: how many ids sort
before ``K`` -- a rank. Each split key is searched between the closest ranks known so far,
alternating interpolation and bisection steps, and after every probe the bounds move onto
the real ids next to the probe (the row that came back, or one ``descending=true&limit=1``
read), so the search closes in on ids rather than on empty key space. It stops within 2% of
a range's size or after ``max_probes`` (40) probes per split; measured on CouchDB 3.5: 13 to
26 small requests in all for three splits of 440 to 2,700 random, prefixed or non-ASCII ids. A server that does
not report real offsets (PouchDB Server always says 0) gets split keys evenly spaced between
the first and last id: balanced for random ids (CouchDB's own uuids), possibly unbalanced
for skewed ones. The output is complete and ordered either way.

A dump is not a snapshot: documents written while it runs may or may not appear.
"""

from __future__ import annotations

import functools
import io
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any, Callable

from . import codec
from .errors import InvalidInput

__all__ = ["DumpReport", "dump", "split_points"]

_CHUNK_DOCS = 500  # lines per write() and per progress() call, at most
_CHUNK_BYTES = 1 << 20  # bytes per write(), about (big documents: fewer lines than _CHUNK_DOCS)
_FETCH = 200  # revisions per _bulk_get request, at most
_FETCH_BYTES = 8 << 20  # the bytes one _bulk_get answer should hold, about (its size sets the next batch's)
_FETCH_FIRST_ATTACHMENTS = 2  # revisions in the first _bulk_get with attachments inline (sizes unknown)
_PAGE = 5000  # rows per _all_docs / _changes page when revisions are fetched (few requests, ~0.5 MB)
_BASE = 0xD800  # key digits: code points below the surrogates (UTF-8 and UTF-16 orders agree there)


@dataclass
class DumpReport:
    """What a dump did: ``docs`` live documents written (their winning revisions),
    ``conflicts`` other leaf revisions of live documents written (conflicts and deleted
    conflicts), ``deleted`` revisions of deleted documents written (tombstones),
    ``bytes`` written, the ``splits`` keys between the ranges (``[]`` for one stream),
    how they were found (``split_method``: ``"offset"``, ``"keyspace"`` or ``"none"``),
    live documents per range (``range_docs``) and ``seconds`` taken."""

    docs: int = 0
    bytes: int = 0
    splits: list[str] = field(default_factory=list)
    split_method: str = "none"
    range_docs: list[int] = field(default_factory=list)
    seconds: float = 0.0
    conflicts: int = 0
    deleted: int = 0

    @property
    def lines(self) -> int:
        """Lines written: ``docs + conflicts + deleted``."""
        return self.docs + self.conflicts + self.deleted

    @property
    def docs_per_second(self) -> float:
        """Lines (document revisions) written per second (0.0 before the dump ran)."""
        return self.lines / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        ranges = f" in {len(self.range_docs)} ranges" if len(self.range_docs) > 1 else ""
        return (f"{self.docs:,} docs, {self.conflicts:,} conflicting revisions, {self.deleted:,} deleted, "
                f"{self.bytes:,} bytes dumped{ranges}, {self.seconds:.2f}s ({self.docs_per_second:,.0f} lines/s)")


# -- split points ----------------------------------------------------------------------


def _to_number(key: str, width: int, base: int) -> int:
    n = 0
    for ch in key[:width].ljust(width, "\x00"):
        n = n * base + min(ord(ch), base - 1)
    return n


def _to_key(number: int, width: int, base: int) -> str:
    digits = []
    for _ in range(width):
        number, d = divmod(number, base)
        digits.append(chr(d))
    return "".join(reversed(digits)).rstrip("\x00")


def _edge_id(db: Any, descending: bool) -> str | None:
    for row in db.view("_all_docs", limit=1, descending=descending):
        found: str | None = row.id
        return found
    return None


def _probe(db: Any, key: str) -> tuple[int, str | None] | None:
    """``(rank, next_id)``: how many documents sort before ``key`` (the ``offset`` CouchDB
    reports for ``_all_docs?startkey=key&limit=1``) and the first id at or after ``key``."""
    result = db.view("_all_docs", startkey=key, limit=1)
    next_id = None
    for row in result:
        next_id = row.id
    offset = result.meta.get("offset")
    if not isinstance(offset, int) or isinstance(offset, bool):
        return None
    return offset, next_id


def _probe_before(db: Any, key: str) -> tuple[int, str] | None:
    """``(count, last_id)``: how many documents sort at or before ``key`` and the last of
    them (``_all_docs?startkey=key&descending=true&limit=1``: ``offset`` counts the ids
    after ``key``)."""
    result = db.view("_all_docs", startkey=key, descending=True, limit=1)
    prev_id = None
    for row in result:
        prev_id = row.id
    offset = result.meta.get("offset")
    total = result.meta.get("total_rows")
    if prev_id is None or not isinstance(offset, int) or not isinstance(total, int):
        return None
    return total - offset, prev_id


def split_points(db: Any, parallel: int, doc_count: int | None = None,
                 max_probes: int = 40) -> tuple[list[str], str]:
    """Up to ``parallel - 1`` increasing keys cutting ``db``'s ids into ranges of about equal
    size, and the method used (``"offset"``, ``"keyspace"`` or ``"none"``).

    ``db`` is a sync Database; ``doc_count`` defaults to ``db.info()["doc_count"]``. No
    ``skip`` is used (see the module docstring); at most ``max_probes`` small requests per
    split. Fewer keys come back for tiny databases.
    """
    if parallel < 2:
        return [], "none"
    if doc_count is None:
        doc_count = int(db.info()["doc_count"])
    first, last = _edge_id(db, False), _edge_id(db, True)
    if first is None or last is None or first >= last or doc_count < 2 * parallel:
        return [], "none"
    # one digit per character: ASCII ids get a radix of 128, others 0xD800 (below the surrogates)
    base = 0x80 if (first + last).isascii() else _BASE
    width = max(len(first), len(last)) + 2
    lo_n, hi_n = _to_number(first, width, base), _to_number(last, width, base)
    probe = _probe(db, last)
    if probe is None or probe[0] < 1:  # no real offsets (PouchDB Server): even key-space steps
        keys = [_to_key(lo_n + (hi_n - lo_n) * i // parallel, width, base) for i in range(1, parallel)]
        return _increasing(keys, first, last), "keyspace"
    total = probe[0] + 1
    tolerance = max(1, total // (parallel * 50))
    known = {lo_n: 0, hi_n: total - 1}  # probed keys (as numbers) and their ranks
    keys = []
    for i in range(1, parallel):
        target = total * i // parallel
        a = max(x for x, r in known.items() if r < target)
        b = min(x for x, r in known.items() if r >= target)
        best = b
        for step in range(max_probes):
            if b - a <= 1:
                break
            ra, rb = known[a], known[b]
            # interpolation (fast for evenly spread ids) alternating with bisection (at
            # least halves the interval every second probe)
            x = a + (b - a) * (target - ra) // (rb - ra) if step % 2 == 0 and rb > ra else (a + b) // 2
            x = min(max(x, a + 1), b - 1)
            found = _probe(db, _to_key(x, width, base))
            if found is None:
                break
            rank, next_id = found
            known[x] = rank
            if abs(rank - target) < abs(known[best] - target):
                best = x
            if abs(rank - target) <= tolerance:
                break
            # move each bound onto the real ids next to the probe, so the interval closes
            # in on ids rather than on empty key space
            if rank < target:
                a = x
                if next_id is not None:
                    n = _to_number(next_id, width, base)
                    if a < n < b and _to_key(n, width, base) <= next_id:
                        known[n] = rank
                        a = n
            else:
                b = x
                before = _probe_before(db, _to_key(x, width, base))
                if before is not None:
                    count, prev_id = before
                    n = _to_number(prev_id, width, base) + 1
                    if a < n < b and _to_key(n, width, base) > prev_id and count >= target:
                        known[n] = count
                        b = n
                        if abs(count - target) < abs(known[best] - target):
                            best = n
        keys.append(_to_key(best, width, base))
    return _increasing(keys, first, last), "offset"


def _increasing(keys: list[str], first: str, last: str) -> list[str]:
    out: list[str] = []
    for key in keys:
        if first < key <= last and (not out or key > out[-1]):
            out.append(key)
    return out


# -- the dump ----------------------------------------------------------------------------


class _Cancelled(Exception):
    pass


class _Writer:
    """Lines out to one target in chunks of :data:`_CHUNK_DOCS`; counts them by kind."""

    __slots__ = ("out", "stop", "progress", "lines", "written", "counts", "buffered", "added", "fetch")

    def __init__(self, out: IO[bytes], stop: threading.Event, progress: Callable[[int], Any] | None) -> None:
        self.out = out
        self.stop = stop
        self.progress = progress
        self.lines: list[bytes] = []
        self.written = 0
        self.counts = [0, 0, 0]  # live documents, other revisions of live documents, deleted documents' revisions
        self.buffered = 0  # bytes in ``lines``
        self.added = 0  # bytes of every line added
        self.fetch = _FETCH  # revisions per _bulk_get request: see :meth:`fetched`

    def add(self, doc: Any, kind: int) -> None:
        line = codec.dumps(doc)
        self.lines.append(line)
        self.buffered += len(line) + 1
        self.added += len(line) + 1
        self.counts[kind] += 1
        if len(self.lines) >= _CHUNK_DOCS or self.buffered >= _CHUNK_BYTES:
            self.check()
            self.flush()

    def fetched(self, before: tuple[int, int]) -> None:
        """Size the next ``_bulk_get`` from the lines written since ``before`` (``mark()``
        then): about :data:`_FETCH_BYTES` per answer (which is held whole), so big documents
        or attachments do not pile up in memory."""
        lines = sum(self.counts) - before[0]
        if lines > 0:
            per = max(1, (self.added - before[1]) // lines)
            self.fetch = max(1, min(_FETCH, _FETCH_BYTES // per))

    def mark(self) -> tuple[int, int]:
        """Lines and bytes added so far (for :meth:`fetched`)."""
        return sum(self.counts), self.added

    def check(self) -> None:
        """Raise :class:`_Cancelled` when another reader failed (``stop`` is set)."""
        if self.stop.is_set():
            raise _Cancelled()

    def flush(self) -> None:
        if self.lines:
            data = b"\n".join(self.lines) + b"\n"
            self.out.write(data)
            self.written += len(data)
            if self.progress is not None:
                self.progress(len(self.lines))
            self.lines = []
            self.buffered = 0


def _revisions(db: Any, pairs: list[tuple[str, str]], attachments: bool) -> list[Any]:
    """The revisions ``pairs`` names, each with ``_revisions`` (its history); ``None`` for
    one that is gone (``POST /{db}/_bulk_get?revs=true``; the ``open_revs`` GETs where a
    server has no ``_bulk_get``)."""
    if attachments:
        found: list[Any] = db.get(pairs, revs=True, attachments=True)
    else:
        found = db.get(pairs, revs=True)
    return found


def _read_range(db: Any, w: _Writer, start: str | None, end: str | None, attachments: bool, history: bool) -> None:
    """Write the winning revision of every live document of one ``[start, end)`` id range."""
    options: dict[str, Any] = {}
    if start is not None:
        options["startkey"] = start
    if end is not None:
        options["endkey"] = end
        options["inclusive_end"] = False
    if not history:  # the bodies come with the listing
        options["include_docs"] = True
        if attachments:
            options["attachments"] = True
        with db.view("_all_docs", **options) as result:
            for row in result:
                if row.doc is not None:  # not expected from a plain _all_docs read; never write "null"
                    w.add(row.doc, 0)
        return
    # the listing is read in pages (each answer read whole), so that no answer is left
    # half-read while the revisions are fetched: measured on the pycurl backend, a
    # ``_bulk_get`` sent while a streamed listing waited took ~0.3 s more each
    if attachments:  # their size is unknown until the first answer
        w.fetch = min(w.fetch, _FETCH_FIRST_ATTACHMENTS)
    pairs: list[tuple[str, str]] = []
    for row in db.iterview("_all_docs", page_size=_PAGE, **options):
        pairs.append((row.id, row.value["rev"]))
        if len(pairs) >= w.fetch:
            w.check()
            _write_winners(db, w, pairs, attachments)
            pairs = []
    if pairs:
        _write_winners(db, w, pairs, attachments)


def _write_winners(db: Any, w: _Writer, pairs: list[tuple[str, str]], attachments: bool) -> None:
    before = w.mark()
    for doc in _revisions(db, pairs, attachments):
        if doc is not None and not doc.get("_deleted"):  # None, a tombstone: gone since it was listed
            w.add(doc, 0)
    w.fetched(before)


def _rev_order(doc: Any) -> tuple[bool, int, str]:
    """An approximation of CouchDB's order of leaf revisions (not deleted first, then the
    longest history, then the greatest revision id), for a document whose winner
    ``_all_docs`` no longer names (changed since ``_changes`` listed it)."""
    pos, _, digest = str(doc.get("_rev", "")).partition("-")
    return (not doc.get("_deleted"), int(pos) if pos.isdigit() else 0, digest)


def _read_leaves(db: Any, w: _Writer, attachments: bool, deleted: bool) -> None:
    """Write what ``_all_docs`` does not list: the other leaf revisions of documents with
    more than one (conflicts and deleted conflicts), and with ``deleted`` the leaf
    revisions of deleted documents (``_changes?style=all_docs``, one row per document with
    every leaf revision, and ``"deleted": true`` when the winner is a tombstone)."""
    # read in pages of _PAGE changes (``since`` + ``limit``, each answer read whole before
    # the revisions of its rows are fetched, as the replicator does)
    if attachments:  # their size is unknown until the first answer
        w.fetch = min(w.fetch, _FETCH_FIRST_ATTACHMENTS)
    since: Any = None
    while True:
        w.check()
        groups: list[tuple[str, list[str]]] = []
        options: dict[str, Any] = {"style": "all_docs", "limit": _PAGE, "seq_interval": _PAGE}
        if since is not None:
            options["since"] = since
        rows = 0
        with db.changes(**options) as page:
            for change in page:
                rows += 1
                revs = [c["rev"] for c in change.get("changes") or () if isinstance(c, dict) and "rev" in c]
                if change.get("deleted") is True:
                    if not deleted:
                        continue
                elif len(revs) < 2:
                    continue  # one live leaf: the range readers wrote it
                groups.append((change["id"], revs))
            since = page.last_seq
        batch: list[tuple[str, list[str]]] = []
        size = 0
        for group in groups:
            batch.append(group)
            size += len(group[1])
            if size >= w.fetch:
                w.check()
                _write_leaves(db, w, batch, attachments)
                batch, size = [], 0
        if batch:
            _write_leaves(db, w, batch, attachments)
        if rows < _PAGE or since is None:
            return


def _winners(db: Any, ids: list[str]) -> dict[str, str]:
    """The winning revision of each of ``ids`` that is a live document, as the server
    decides it (``POST /{db}/_all_docs`` with ``keys``): CouchDB orders revision ids as
    stored, a 32-hex-digit id as the 16 bytes it encodes, so ``"2-zzzz"`` loses to
    ``"2-ffff..."`` although it sorts after it as a string."""
    if not ids:
        return {}
    winners: dict[str, str] = {}
    for row in db.view("_all_docs", keys=ids):
        value = row.value
        if row.id is not None and isinstance(value, dict) and not value.get("deleted") and "rev" in value:
            winners[row.id] = value["rev"]
    return winners


def _write_leaves(db: Any, w: _Writer, groups: list[tuple[str, list[str]]], attachments: bool) -> None:
    before = w.mark()
    found = iter(_revisions(db, [(docid, rev) for docid, revs in groups for rev in revs], attachments))
    winners = _winners(db, [docid for docid, revs in groups if len(revs) > 1])
    for docid, revs in groups:
        docs = [doc for doc in (next(found) for _ in revs) if doc is not None]
        if not docs:
            continue
        winner = winners.get(docid)
        if winner is None and not all(doc.get("_deleted") for doc in docs):  # gone or changed since _changes
            winner = max(docs, key=_rev_order)["_rev"]
        for doc in docs:
            if doc.get("_rev") == winner:
                continue  # a live document's winner: the range readers wrote it
            w.add(doc, 1 if winner is not None else 2)
    w.fetched(before)


def _binary(out: Any) -> IO[bytes]:
    if isinstance(out, io.TextIOBase):
        buffer = getattr(out, "buffer", None)
        if buffer is None:
            raise InvalidInput("dump() writes bytes: pass a binary file (open(path, 'wb'), sys.stdout.buffer)")
        out.flush()
        return buffer  # type: ignore[no-any-return]  # (a text file's binary buffer)
    if not hasattr(out, "write"):
        raise InvalidInput(f"dump() needs a binary file object to write to, not {type(out).__name__}")
    return out  # type: ignore[no-any-return]  # (anything with write(bytes))


def dump(db: Any, out: IO[bytes], attachments: bool = False, parallel: int = 1,
         progress: Callable[[int], Any] | None = None, *, history: bool = True,
         deleted: bool = True) -> DumpReport:
    """Write every revision ``db`` (a sync :class:`couchcore.Database`) needs to be copied
    exactly to ``out`` as JSON Lines, one document revision a line (see the module docstring).

    ``out`` is a binary file object (a text stream with a ``.buffer``, like ``sys.stdout``,
    is written through its buffer). ``attachments=True`` inlines attachment content as
    base64 (without it attachments are stubs, which a new database cannot take).
    ``history=False`` writes the winning revisions without ``_revisions`` (read with the
    listing: faster, see the module docstring; conflicting and deleted revisions keep theirs).
    ``deleted=False`` leaves deleted documents out (the deleted leaves of live documents
    stay). ``parallel=N`` reads N id ranges at once (see the module docstring); the
    output holds the same lines as with ``parallel=1`` (the live documents in the same
    order, the conflicts and tombstones in ``_changes`` order). ``progress(n)`` is called
    as ``n`` more lines are written (from reader threads when ``parallel > 1``).

    The database is checked (``GET /{db}``) before anything is written, so a missing
    database (:class:`~couchcore.errors.NotFound`), wrong credentials
    (:class:`~couchcore.errors.Unauthorized`) or an unreachable server
    (:class:`~couchcore.errors.TransportError`) raise with ``out`` untouched. A failure
    after that raises too, with ``out`` holding whole lines only; bad arguments raise
    :class:`~couchcore.errors.InvalidInput` first. Returns a :class:`DumpReport`.
    Reads ``_all_docs`` (https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-all-docs),
    ``_bulk_get?revs=true`` (https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-get)
    and ``_changes?style=all_docs`` (https://docs.couchdb.org/en/stable/api/database/changes.html).
    """
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise InvalidInput(f"parallel must be a positive int, got {parallel!r}")
    for name, flag in (("attachments", attachments), ("history", history), ("deleted", deleted)):
        if not isinstance(flag, bool):
            raise InvalidInput(f"{name} must be a bool, got {flag!r}")
    sink = _binary(out)
    started = time.perf_counter()
    info = db.info()  # raises before output starts
    report = DumpReport()
    if parallel > 1:
        report.splits, report.split_method = split_points(db, parallel, int(info.get("doc_count") or 0))
    bounds = [None, *report.splits, None]
    jobs: list[Callable[[_Writer], None]] = [
        functools.partial(_read_range, db, start=lo, end=hi, attachments=attachments, history=history)
        for lo, hi in zip(bounds[:-1], bounds[1:])]
    jobs.append(functools.partial(_read_leaves, db, attachments=attachments, deleted=deleted))
    stop = threading.Event()
    if parallel == 1:
        writers = [_Writer(sink, stop, progress)]
        for job in jobs:
            job(writers[0])
            writers[0].flush()
        range_docs = [writers[0].counts[0]]
    else:
        writers = _run_jobs(sink, jobs, stop, progress)
        range_docs = [w.counts[0] for w in writers[:-1]]
    sink.flush()
    report.bytes = sum(w.written for w in writers)
    report.range_docs = range_docs
    report.docs = sum(w.counts[0] for w in writers)
    report.conflicts = sum(w.counts[1] for w in writers)
    report.deleted = sum(w.counts[2] for w in writers)
    report.seconds = time.perf_counter() - started
    return report


def _run_jobs(sink: IO[bytes], jobs: list[Callable[[_Writer], None]], stop: threading.Event,
              progress: Callable[[int], Any] | None) -> list[_Writer]:
    """Run every job in its own thread: the first writes to ``sink``, the others to
    temporary files copied to ``sink`` in job order once the jobs before them are done."""
    spools: list[IO[bytes] | None] = [None] + [
        tempfile.SpooledTemporaryFile(max_size=1 << 20, prefix="couchcore-dump-") for _ in jobs[1:]
    ]
    writers = [_Writer(sink if i == 0 else spool, stop, progress)  # type: ignore[arg-type]
               for i, spool in enumerate(spools)]
    errors: list[BaseException | None] = [None] * len(jobs)

    def work(i: int) -> None:
        try:
            jobs[i](writers[i])
            writers[i].flush()
        except _Cancelled:
            pass
        except BaseException as exc:  # reported by the caller's thread
            errors[i] = exc
            stop.set()

    threads = [threading.Thread(target=work, args=(i,), name=f"couchcore-dump-{i}", daemon=True)
               for i in range(len(jobs))]
    for t in threads:
        t.start()
    try:
        for i, t in enumerate(threads):
            t.join()
            if stop.is_set():  # this job may have been cut short because another failed
                for other in threads:
                    other.join()
                failure = next((e for e in errors if e is not None), None)
                if failure is not None:
                    raise failure
            if errors[i] is not None:
                raise errors[i]  # type: ignore[misc]
            spool = spools[i]
            if spool is not None:
                spool.seek(0)
                shutil.copyfileobj(spool, sink, 1 << 20)
                spool.close()
                spools[i] = None
    finally:
        stop.set()
        for t in threads:
            t.join()
        for spool in spools:
            if spool is not None:
                spool.close()
    return writers
