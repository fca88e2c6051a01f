"""One bulk-loader batch over ``_bulk_docs`` (sans-I/O): write, bisect, reconcile, upsert.

:func:`write_batch` sends documents that are already JSON text (``bodies``, one
``bytes`` object per document, each with its ``_id``) in one ``POST /db/_bulk_docs``
and sorts every document into written, skipped, rejected or *unsettled* (to be sent
again by the caller, after a back-off):

* a request refused as a whole (``400`` e.g. ``illegal_docid``, ``413`` too large) is
  split in halves until the documents the server refuses are isolated; only they are
  rejected (https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-docs);
  so is a ``412 missing_stub`` (an attachment stub the database has no data for), which
  CouchDB answers after writing every *other* document of the request: those come back
  ``409`` when sent again and count as written when the stored content is theirs;
* ``429``, ``5xx``, a connection failure or an unreadable answer leave the remaining
  documents unsettled, with the error and the ``Retry-After`` delay if the server sent one;
* a ``409 conflict`` is looked at closer when the caller asks for it: with
  ``reconcile`` (this batch may have been written by an earlier attempt whose answer
  was lost), ``skip_existing`` or ``upsert`` the current documents are fetched
  (``_all_docs?include_docs=true``) and compared with ours, ``_rev`` aside. Equal
  content counts as written (``reconcile``: it was our earlier attempt) or skipped;
  with ``upsert`` a different document is sent again with the current ``_rev``;
* on a CouchDB cluster, a ``202 Accepted`` answer's ``"accepted": true`` rows (stored on
  fewer copies than the write quorum) are checked as ``save(list)`` checks them
  (:func:`couchcore.protocol.documents._accepted_lost`): a write that lost to a concurrent
  one is withdrawn and treated as the ``409`` one node would have answered, one that
  stands counts as written (see :func:`write_batch`).

Operations yield :class:`Request` objects and receive :class:`Response` objects;
transport errors are thrown in by the driver.
"""

from __future__ import annotations

import struct
import sys
from itertools import accumulate
from operator import add
from typing import Any, Generator, Iterator, Sequence, Union

from .. import codec
from ..errors import CouchcoreError, TransportError
from .._scan import count_ok as _count_ok
from .._scan import pack as _pack
from .._scan import seal as _seal
from .messages import Request, Response
from .paths import db_path
from .server import ServerContext

__all__ = ["BatchOutcome", "PackedBodies", "write_batch", "same_content", "with_rev"]

#: fields of a stored document that are metadata, not content
_META = ("_rev", "_revisions", "_conflicts", "_deleted_conflicts", "_local_seq", "_revs_info")


class BatchOutcome:
    """What became of a batch: ``written`` and ``skipped`` counts, ``rejected``
    ``[(index, error, reason)]``, ``unsettled`` indices to send again, the ``error``
    that left them unsettled and the server's ``retry_after`` (seconds) if it gave one;
    ``unknown`` ``[(index, reason)]``: documents a cluster stored (``202``, ``"accepted":
    true``) whose fate could not be read (whether another writer's revision won: see
    :func:`write_batch`).
    Indices are positions in the ``ids``/``bodies`` lists given to :func:`write_batch`."""

    __slots__ = ("written", "skipped", "rejected", "unsettled", "unknown", "error", "retry_after", "requests")

    def __init__(self) -> None:
        self.written = 0
        self.skipped = 0
        self.rejected: list[tuple[int, str, str | None]] = []
        self.unsettled: list[int] = []
        self.unknown: list[tuple[int, str]] = []
        self.error: BaseException | None = None
        self.retry_after: float | None = None
        self.requests = 0

    def __repr__(self) -> str:
        return (f"<BatchOutcome written={self.written} skipped={self.skipped} rejected={len(self.rejected)} "
                f"unsettled={len(self.unsettled)} unknown={len(self.unknown)}>")


_PREFIX = b'{"docs":['


class PackedBodies:
    """The documents of one batch packed into their ``_bulk_docs`` request body as they are
    added: ``{"docs":[`` then each document's JSON text followed by ``,`` -- so the request
    body is one copy of ``buf`` (with the closing suffix), not a join of one ``bytes`` object
    per document. A list of ``bytes`` as far as :func:`write_batch` is concerned: ``len()``,
    ``bodies[i]`` (the text of document ``i``, ``bytes``; made on demand, on the error
    paths), ``bodies[i] = text`` (an upsert's new revision) and :meth:`append`.

    Each document also carries the loader's *marks* (never sent): its ``key`` (the UTF-8
    bytes of its ``_id``, or of ``_id``, a NUL and ``_rev`` when revisions are loaded as
    they are: what identifies a duplicate), how many of the key's bytes are the id
    (``idlen``), its input ``line`` and ``flags`` (``1``: the key is in the loader's
    in-flight set, :class:`couchcore._scan.Flight`). They are read one document at a time
    on the error paths only (:meth:`docid`, :meth:`line`, :meth:`key`).

    The C scanner (``couchcore_ext._scan.scan_jsonl``) appends to it directly: ``buf`` may
    hold unused bytes after ``used`` (its growth reserve). With the extension ``buf`` is a
    ``bytes`` object the C code grows in place and :meth:`payload` hands out as the request
    body itself (``couchcore_ext._scan.seal``: the suffix written over the last comma, no copy
    of the documents; ``sealed`` is that suffix, and a document added later goes into a copy);
    without it a ``bytearray`` (the body is one copy of it). ``ends`` holds, as native
    ``int64`` (``count`` of them, maybe followed by reserve), the offset in ``buf`` just
    after each document's text; ``keys`` the keys back to back (``kused`` bytes), ``marks``
    one native ``(line int64, key end int64, idlen int32, flags int32)`` per document.
    """

    __slots__ = ("buf", "used", "ends", "count", "reserve", "docs", "_changed", "keys", "kused", "marks", "sealed")

    def __init__(self, reserve: int = 0, docs: int = 0) -> None:
        """``reserve``: the bytes the scanner sets aside for the body at its first growth
        (e.g. the size of the batch before), ``docs``: for as many end offsets (no memory
        is zeroed for them); both grow as needed."""
        self.buf: bytes | bytearray = bytearray(_PREFIX) if _pack is None else _PREFIX  # (C: copied at the first write)
        self.sealed: bytes | None = None
        self.used = len(_PREFIX)
        self.ends = bytearray()
        self.count = 0
        self.reserve = reserve
        self.docs = docs
        self._changed: dict[int, bytes] | None = None
        self.keys = bytearray()
        self.kused = 0
        self.marks = bytearray()

    def append(self, body: bytes, key: bytes = b"", line: int = 0, idlen: int = -1, flags: int = 0) -> None:
        """Add one document's JSON object text (as it is: it is sent as it is) and its marks
        (``idlen`` -1: the whole key is the id)."""
        if _pack is not None:
            _pack(self, [body], [key], [line], [idlen], [flags])
            return
        buf = self._writable()
        used = self.used
        end = used + len(body)
        buf[used:end] = body
        buf[end:end + 1] = b","
        self.used = end + 1
        at = self.count * 8
        self.ends[at:at + 8] = end.to_bytes(8, _BYTEORDER, signed=True)
        kend = self.kused + len(key)
        self.keys[self.kused:kend] = key
        self.kused = kend
        at = self.count * _MARK.size
        self.marks[at:at + _MARK.size] = _MARK.pack(line, kend, len(key) if idlen < 0 else idlen, flags)
        self.count += 1

    def extend(self, bodies: list[bytes], keys: list[bytes] | None = None, lines: list[int] | None = None,
               idlens: list[int] | None = None, flags: list[int] | None = None) -> None:
        """:meth:`append` each of ``bodies`` with the marks of the same index in the other
        lists (one join and one copy for all of them; ``idlens``: ``None`` or -1 entries
        for whole keys)."""
        if not bodies:
            return
        if _pack is not None and keys is not None and lines is not None and idlens is not None and flags is not None:
            _pack(self, bodies, keys, lines, idlens, flags)  # in C: no Python work per document
            return
        n = len(bodies)
        buf = self._writable()
        used = self.used
        joined = b",".join(bodies)
        end = used + len(joined)
        buf[used:end] = joined
        buf[end:end + 1] = b","
        self.used = end + 1
        # the end of body i: used + its length and those before it, plus a comma after each before it
        sums = accumulate(map(len, bodies), initial=used - 1)
        next(sums)
        at = self.count * 8
        self.ends[at:at + 8 * n] = struct.pack(f"{n}q", *map(add, sums, range(1, n + 1)))
        keys = keys if keys is not None else [b""] * n
        kends = list(accumulate(map(len, keys), initial=self.kused))[1:]
        self.keys[self.kused:kends[-1]] = b"".join(keys)
        self.kused = kends[-1]
        lines = lines if lines is not None else [0] * n
        idlens = [len(k) if idlens is None or idlens[j] < 0 else idlens[j] for j, k in enumerate(keys)]
        flags = flags if flags is not None else [0] * n
        at = self.count * _MARK.size
        self.marks[at:at + _MARK.size * n] = b"".join(map(_MARK.pack, lines, kends, idlens, flags))
        self.count += n

    def _writable(self) -> bytearray:
        """``buf`` as a ``bytearray`` for the pure-Python appends (a ``bytes`` body, made by
        the C path, is copied: a request body handed out never changes)."""
        buf = self.buf
        if buf.__class__ is not bytearray:
            buf = bytearray(buf)
            if self.sealed is not None and self.count:
                buf[self.used - 1] = 0x2C  # the comma the suffix was written over
            self.buf = buf
        self.sealed = None
        return buf

    def __len__(self) -> int:
        return self.count

    def _span(self, i: int) -> tuple[int, int]:
        ends = self.ends
        start = int.from_bytes(ends[8 * i - 8:8 * i], _BYTEORDER, signed=True) + 1 if i else len(_PREFIX)
        return start, int.from_bytes(ends[8 * i:8 * i + 8], _BYTEORDER, signed=True)

    def _index(self, i: int) -> int:
        if i < 0:
            i += self.count
        if not 0 <= i < self.count:
            raise IndexError("document index out of range")
        return i

    def __getitem__(self, i: int) -> bytes:
        i = self._index(i)
        if self._changed is not None and i in self._changed:
            return self._changed[i]
        start, end = self._span(i)
        with memoryview(self.buf) as view:
            return bytes(view[start:end])

    def __setitem__(self, i: int, body: bytes) -> None:
        if not 0 <= i < self.count:
            raise IndexError("document index out of range")
        if self._changed is None:
            self._changed = {}
        self._changed[i] = body

    def __iter__(self) -> Iterator[bytes]:
        return (self[i] for i in range(self.count))

    def mark(self, i: int) -> tuple[int, bytes, int, int]:
        """``(line, key, idlen, flags)`` of document ``i``."""
        i = self._index(i)
        line, kend, idlen, flags = _MARK.unpack_from(self.marks, i * _MARK.size)
        kstart = _MARK.unpack_from(self.marks, (i - 1) * _MARK.size)[1] if i else 0
        return line, bytes(self.keys[kstart:kend]), idlen, flags

    def key(self, i: int) -> bytes:
        """The key of document ``i`` (its id's UTF-8 bytes, with a NUL and ``_rev`` when keyed so)."""
        return self.mark(i)[1]

    def line(self, i: int) -> int:
        """The input line of document ``i``."""
        return int(_MARK.unpack_from(self.marks, self._index(i) * _MARK.size)[0])

    def docid(self, i: int) -> str:
        """The ``_id`` of document ``i``."""
        _, key, idlen, _ = self.mark(i)
        return key[:idlen].decode("utf-8", "surrogatepass")

    def lines(self) -> list[int]:
        """Every document's input line."""
        return [m[0] for m in _MARK.iter_unpack(self.marks[:self.count * _MARK.size])]

    def subset(self, idx: Sequence[int]) -> "PackedBodies":
        """The documents at ``idx`` (their current bodies and their marks), packed anew."""
        out = PackedBodies(0, len(idx))
        for i in idx:
            line, key, idlen, flags = self.mark(i)
            out.append(self[i], key, line, idlen, flags)
        return out

    def payload(self, suffix: bytes) -> bytes:
        """The request body of all the documents: ``{"docs":[...`` + ``suffix`` (``]}``...)."""
        if self._changed is not None:
            return _payload(list(self), suffix)
        if not self.count:
            return _PREFIX + suffix
        if _seal is not None and self.buf.__class__ is bytes:  # the body it was written into: no copy
            return self.buf if self.sealed == suffix else _seal(self, suffix)
        with memoryview(self.buf) as view:
            return b"".join((view[:self.used - 1], suffix))  # (without the last ",")


#: a document's marks in :attr:`PackedBodies.marks` (native, as the C scanner writes them)
_MARK = struct.Struct("@qqii")
_BYTEORDER = sys.byteorder  # the C scanner writes native int64

#: the document texts of a batch: a list, or packed into the request body as they were read
Bodies = Union[list[bytes], PackedBodies]


def write_batch(
    ctx: ServerContext,
    db: str,
    ids: Sequence[str],
    bodies: Bodies,
    reconcile: bool = False,
    upsert: bool = False,
    skip_existing: bool = False,
    new_edits: bool = True,
    rounds: int = 3,
) -> Generator[Request, Response, BatchOutcome]:
    """Write one batch of pre-encoded documents; returns a :class:`BatchOutcome`.

    ``bodies[i]`` is the JSON object text of the document whose id is ``ids[i]``; it is
    sent as it is. With ``upsert`` a document may be re-encoded with a new ``_rev``
    (``bodies`` is updated in place). ``rounds`` bounds the upsert re-sends per document.

    A CouchDB cluster answers ``202 Accepted`` when it stored a document on fewer copies
    than its write quorum (its rows carry ``"accepted": true``), which also happens when a
    copy that had not got an earlier write accepted one the other copies refused as a
    conflict (https://docs.couchdb.org/en/stable/cluster/theory.html). Each such row
    (``new_edits`` true; a ``201`` answer has none) is decided by
    :func:`couchcore.protocol.documents._accepted_lost`, the check ``save(list)`` makes,
    with its requests yielded by this operation (so they go to the node that answered):
    a write that stands counts as written; one that lost and was withdrawn is the ``409
    conflict`` one node would have answered (create-only: rejected as ``conflict`` with the
    check's reason; ``reconcile``/``skip_existing``/``upsert``: compared with the current
    document as any conflict); one whose revision could not be withdrawn is rejected as
    ``stored_as_conflict`` (it is stored beside the other writer's: never written again);
    one whose leaves could not be read goes to ``unknown`` with the reason. ``201`` answers
    cost nothing more.
    """
    out = BatchOutcome()
    suffix = b"]}" if new_edits else b'],"new_edits":false}'
    state = _State(ctx, db, ids, bodies, reconcile, upsert, skip_existing, new_edits, suffix, out, rounds)
    idx: Sequence[int] = range(len(ids))  # (a range: no int object per document)
    if new_edits and not upsert and _may_hold_local(ids, bodies):
        # CouchDB does no conflict detection on _local documents: any _rev or none
        # overwrites one that exists, so "create only" (and skip_existing, which relies on
        # the 409) would silently replace it; such documents are refused, not sent
        local = [i for i in idx if ids[i].startswith("_local/")]
        if local:
            out.rejected.extend((i, LOCAL_DOCUMENT, _LOCAL_REASON) for i in local)
            refused = set(local)
            idx = [i for i in idx if i not in refused]
            if not idx:
                return out
    yield from state.write(idx, 0)
    return out


#: the error of a ``_local/`` document refused by :func:`write_batch` without ``upsert``
LOCAL_DOCUMENT = "local_document"
_LOCAL_REASON = ("a _local document: CouchDB does no conflict detection on _local documents (a write with "
                 "any _rev, or none, replaces one that exists), so it cannot be loaded create-only or with "
                 "skip_existing without overwriting; load it with upsert to overwrite")


def _may_hold_local(ids: Sequence[str], bodies: Bodies) -> bool:
    """Whether any of ``ids`` may begin with ``_local/``: one search of the packed keys (the
    UTF-8 of the ids back to back) for a whole batch, each id only for other bodies."""
    if isinstance(bodies, PackedBodies):
        return bodies.keys.find(b"_local/", 0, bodies.kused) >= 0
    return any(i.startswith("_local/") for i in ids)


class _State:
    __slots__ = ("ctx", "db", "path", "ids", "bodies", "reconcile", "upsert", "skip_existing", "new_edits",
                 "suffix", "out", "headers", "rounds", "partial", "lost")

    def __init__(self, ctx: ServerContext, db: str, ids: Sequence[str], bodies: Bodies, reconcile: bool,
                 upsert: bool, skip_existing: bool, new_edits: bool, suffix: bytes, out: BatchOutcome,
                 rounds: int) -> None:
        self.rounds = rounds
        self.ctx = ctx
        self.db = db
        self.path = db_path(db)
        self.ids = ids
        self.bodies = bodies
        self.reconcile = reconcile
        self.upsert = upsert
        self.skip_existing = skip_existing
        self.new_edits = new_edits
        self.suffix = suffix
        self.out = out
        self.partial: set[int] = set()  # sent in a request refused with 412 yet partly written
        #: the reasons of accepted (202) writes that lost and were withdrawn, by index (see accepted())
        self.lost: dict[int, str] | None = None
        # a fresh connection per request: libcurl silently sends a request again when the
        # kept-alive connection it reused breaks before any answer byte — for a write whose
        # answer was lost that is a blind re-send, which must be the loader's decision
        self.headers = {"Content-Type": "application/json", "Connection": "close", **ctx.write_headers}

    def write(self, idx: Sequence[int], round_: int) -> Generator[Request, Response, None]:
        out = self.out
        bodies = self.bodies
        if len(idx) == len(bodies):  # the whole batch: (packed bodies are one copy)
            payload = bodies.payload(self.suffix) if isinstance(bodies, PackedBodies) else _payload(bodies, self.suffix)
        else:
            payload = _payload([bodies[i] for i in idx], self.suffix)
        out.requests += 1
        try:
            resp = yield Request("POST", self.path + "/_bulk_docs", body=payload, headers=self.headers)
        except TransportError as exc:  # the answer was lost: the caller sends again and reconciles
            self.leave(idx, exc)
            return
        status = resp.status
        if status == 201 or status == 202:
            raw = resp.body or b""
            # (a 202 of new_edits has "accepted": true rows, each checked in sort: never this shortcut)
            if _all_ok(raw, len(idx), self.new_edits) and (status == 201 or not self.new_edits):
                out.written += len(idx)  # the common case, read without decoding
                return
            try:
                results = codec.loads(raw)
            except CouchcoreError as exc:
                self.leave(idx, exc)
                return
            if not isinstance(results, list):
                self.leave(idx, resp.error() if not resp.ok else _Unreadable(resp))
                return
            yield from self.sort(idx, results, resp.body or b"", round_,
                                 (resp.method, resp.url) if status == 202 and self.new_edits else None)
        elif status in (400, 412, 413) and len(idx) > 1:  # refused as a whole: find the culprits
            if status == 412:  # missing_stub: CouchDB wrote the other documents all the same
                self.partial.update(idx)
            half = len(idx) // 2
            yield from self.write(idx[:half], round_)
            if out.error is not None:  # the server went away meanwhile: leave the rest too
                out.unsettled.extend(idx[half:])
                return
            yield from self.write(idx[half:], round_)
        elif status == 429 or status >= 500:
            self.leave(idx, resp.error(), _retry_after(resp))
        else:  # 400/413 for one document, 401, 403, 404, ...: every document is refused
            err = resp.error()
            error = err.error or _STATUS_ERRORS.get(status, f"http_{status}")
            for i in idx:
                out.rejected.append((i, error, err.reason))

    def leave(self, idx: Sequence[int], exc: BaseException, retry_after: float | None = None) -> None:
        self.out.unsettled.extend(idx)
        self.out.error = exc
        if retry_after is not None:
            self.out.retry_after = retry_after

    def sort(self, idx: Sequence[int], results: list[Any], raw: bytes, round_: int,
             write: tuple[str, str] | None = None) -> Generator[Request, Response, None]:
        """Sort the documents ``idx`` by their rows in a ``_bulk_docs`` answer; ``write``:
        the method and URL of a ``202`` answer, whose ``"accepted": true`` rows are checked
        (:meth:`accepted`)."""
        out = self.out
        if write is None and len(results) == len(idx) and b'"error"' not in raw:  # the common case: all written
            out.written += len(idx)
            return
        if not self.new_edits and not results:
            out.written += len(idx)
            return
        ids = self.ids
        where: dict[str, list[int]] = {}
        for i in idx:
            where.setdefault(ids[i], []).append(i)
        answered: set[int] = set()
        conflicts: list[int] = []
        accepted: list[tuple[int, str]] = []  # (index, the revision the row names)
        for result in results:
            if not isinstance(result, dict):
                continue
            slots = where.get(result.get("id"))  # type: ignore[arg-type]
            if not slots:
                continue
            i = slots.pop(self._slot_of(slots, result.get("rev")) if len(slots) > 1 else 0)
            answered.add(i)
            error = result.get("error")
            if error is None:
                if write is not None and result.get("accepted") is True and isinstance(result.get("rev"), str):
                    accepted.append((i, result["rev"]))  # decided below, after reading its leaves
                else:
                    out.written += 1
            elif error == "conflict" and self.new_edits:
                conflicts.append(i)
            else:
                reason = result.get("reason")
                out.rejected.append((i, str(error), reason if isinstance(reason, str) or reason is None else str(reason)))
        missing = [i for i in idx if i not in answered]
        if missing:
            if not self.new_edits:  # CouchDB answers new_edits=false with the failures only
                out.written += len(missing)
            else:
                for i in missing:
                    out.rejected.append((i, "unknown", "the server's answer did not mention this document"))
        if accepted and write is not None:
            yield from self.accepted(accepted, write, conflicts)
        if conflicts:
            yield from self.conflicts(conflicts, round_)

    def accepted(self, rows: list[tuple[int, str]], write: tuple[str, str],
                 conflicts: list[int]) -> Generator[Request, Response, None]:
        """Decide the documents a cluster answered ``"accepted": true`` (``rows``: index and
        the revision the row names; ``write``: the method and URL of that answer) with
        :func:`~couchcore.protocol.documents._accepted_lost`, as ``save(list)`` does
        (``_settle_accepted``): a write that stands counts as written; one that lost and was
        withdrawn joins ``conflicts`` (its reason kept in :attr:`lost`: what a create-only
        rejection says); one whose revision could not be withdrawn is rejected as
        ``stored_as_conflict``; one whose leaves could not be read goes to ``out.unknown``.
        One row at a time (:func:`~couchcore.protocol.documents._accepted_checks`): each
        check reads every copy's leaves of its document."""
        from ..errors import OutcomeUnknown
        from .documents import STORED_AS_CONFLICT, _accepted_checks

        out = self.out
        checks = yield from _accepted_checks(
            self.ctx, self.db, [(self.ids[i], rev, self._parent(i)) for i, rev in rows], write)
        for (i, _rev), lost in zip(rows, checks):
            if isinstance(lost, OutcomeUnknown):  # stored; whether it lost could not be read
                out.unknown.append((i, lost.detail))
            elif lost is None:
                out.written += 1
            elif lost.withdrawn:  # the 409 one node would have answered
                if self.lost is None:
                    self.lost = {}
                self.lost[i] = lost.reason
                conflicts.append(i)
            else:  # stored beside the other writer's revision: never written again
                out.rejected.append((i, STORED_AS_CONFLICT, lost.reason))

    def _parent(self, i: int) -> str | None:
        """The revision document ``i`` was written on (its ``_revisions`` head, else its
        ``_rev``; ``None`` for a create), as CouchDB reads the document."""
        try:
            doc = codec.loads(self.bodies[i])
        except CouchcoreError:
            return None
        if not isinstance(doc, dict):
            return None
        history = doc.get("_revisions")
        if isinstance(history, dict) and isinstance(history.get("start"), int) and history.get("ids"):
            ids = history["ids"]
            if isinstance(ids, list) and isinstance(ids[0], str):
                return f"{history['start']}-{ids[0]}"
        rev = doc.get("_rev")
        return rev if isinstance(rev, str) else None

    def _conflict(self, i: int) -> str:
        """The reason of document ``i``'s conflict: CouchDB's, or the check's for a lost
        accepted write (:meth:`accepted`)."""
        lost = self.lost
        return lost.get(i, _CONFLICT) if lost is not None else _CONFLICT

    def _slot_of(self, slots: list[int], rev: Any) -> int:
        """Which of several documents with one id an answer is for: with new_edits=false
        they are several revisions of the document (a dump's conflicts), and CouchDB's
        answer names the revision (``{"id", "rev", "error", ...}``); the first one when it
        does not (PouchDB Server) or no body has that ``_rev``. Only answers that are
        errors come here in practice, so decoding those few bodies costs nothing."""
        if not self.new_edits and isinstance(rev, str):
            for n, i in enumerate(slots):
                try:
                    doc = codec.loads(self.bodies[i])
                except CouchcoreError:
                    continue
                if isinstance(doc, dict) and doc.get("_rev") == rev:
                    return n
        return 0

    def conflicts(self, idx: list[int], round_: int) -> Generator[Request, Response, None]:
        out = self.out
        partial = self.partial
        if not (self.reconcile or self.skip_existing or self.upsert):
            for i in idx:  # create-only: a conflict is a rejection, unless our 412'd request wrote it
                if i not in partial:
                    out.rejected.append((i, "conflict", self._conflict(i)))
            idx = [i for i in idx if i in partial]
            if not idx:
                return
        keys = [self.ids[i] for i in idx]
        out.requests += 1
        try:
            resp = yield Request("POST", self.path + "/_all_docs", query=[("include_docs", "true")],
                                 body=codec.dumps({"keys": keys}), idempotent=True,  # a read
                                 headers={"Content-Type": "application/json", "Connection": "close"})
            if resp.status == 429 or resp.status >= 500:
                self.leave(idx, resp.error(), _retry_after(resp))
                return
            rows = resp.json().get("rows", [])
        except (TransportError, CouchcoreError) as exc:
            self.leave(idx, exc)
            return
        current: dict[str, Any] = {}
        for row in rows:
            if isinstance(row, dict) and isinstance(row.get("doc"), dict):
                current[row.get("key")] = row["doc"]  # type: ignore[index]
        again: list[int] = []
        for i in idx:
            theirs = current.get(self.ids[i])
            try:
                if self.upsert and b'"_revisions"' in self.bodies[i] and _has_revisions(self.bodies[i]):
                    out.rejected.append((i, "conflict", _REVISIONS_REASON))
                elif theirs is not None and same_content(self.bodies[i], theirs):
                    if self.reconcile or i in partial:
                        out.written += 1
                    else:
                        out.skipped += 1
                elif theirs is None:  # missing, deleted or purged: a create goes through now
                    if self.upsert and b'"_rev"' in self.bodies[i]:
                        # a _rev the target lacks would conflict every time: create the document
                        self.bodies[i] = with_rev(self.bodies[i], None)
                    again.append(i)
                elif self.upsert:
                    self.bodies[i] = with_rev(self.bodies[i], theirs.get("_rev"))
                    again.append(i)
                else:
                    out.rejected.append((i, "conflict", self._conflict(i)))
            except CouchcoreError as exc:  # this document's text cannot be decoded or re-encoded
                out.rejected.append((i, "invalid", str(exc)))
        if again:
            if self.lost is not None:  # sent again: its own answer decides now
                for i in again:
                    self.lost.pop(i, None)
            if round_ >= self.rounds:
                for i in again:
                    out.rejected.append((i, "conflict", f"Document update conflict (still, after {round_ + 1} attempts)."))
                return
            yield from self.write(again, round_ + 1)


def _payload(bodies: list[bytes], suffix: bytes) -> bytes:
    """``{"docs":[<bodies, comma-separated><suffix>`` built with one copy of the bodies
    (the opening and the suffix ride on the first and last body)."""
    if len(bodies) <= 1:
        return b'{"docs":[' + (bodies[0] if bodies else b"") + suffix
    return b",".join([b'{"docs":[' + bodies[0], *bodies[1:-1], bodies[-1] + suffix])


def _all_ok(raw: bytes, count: int, new_edits: bool) -> bool:
    """Whether a ``_bulk_docs`` answer says that all ``count`` documents were written, read
    without decoding it: a JSON array with ``count`` ``"ok":true`` members and no
    ``"error"`` anywhere (with ``new_edits=false`` CouchDB answers ``[]`` when all went
    in). The text ``"ok":true`` cannot occur inside a JSON string (a quote in a string is
    escaped), so it counts results; any other answer is decoded and read in full."""
    if not new_edits and raw.strip() == b"[]":
        return True
    if not ((raw[:1] == b"[" or raw.lstrip()[:1] == b"[") and raw.rstrip()[-1:] == b"]"):
        return False
    ok, error = _count_ok(raw)
    return ok == count and not error


#: CouchDB's reason of a ``_bulk_docs`` conflict
_CONFLICT = "Document update conflict."

_STATUS_ERRORS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                  413: "too_large", 415: "bad_content_type"}


class _Unreadable(CouchcoreError):
    def __init__(self, resp: Response) -> None:
        super().__init__(f"unexpected _bulk_docs answer ({resp.status} {resp.method} {resp.url})")


def _retry_after(resp: Response) -> float | None:
    """``Retry-After`` in seconds (the delta-seconds form; an HTTP date is ignored)."""
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


#: why an ``upsert`` rejects a document that carries ``_revisions`` (a line of ``couchcore dump``)
_REVISIONS_REASON = ("Document update conflict: the document carries _revisions (a line of couchcore dump), "
                     "which CouchDB reads as the revision being updated whatever its _rev, so it cannot be "
                     "written over the current revision; load a dump with new_edits=False (--new-edits-false), "
                     "or remove _rev and _revisions to write its content as a new revision")


def _has_revisions(body: bytes) -> bool:
    """Whether JSON object ``body`` has a top-level ``_revisions`` member."""
    try:
        doc = codec.loads(body)
    except CouchcoreError:
        return False
    return isinstance(doc, dict) and "_revisions" in doc


def with_rev(body: bytes, rev: str | None) -> bytes:
    """``body`` (a JSON object) re-encoded with ``_rev`` set to ``rev`` (removed for ``None``)."""
    doc = codec.loads(body)
    if rev is None:
        doc.pop("_rev", None)
    else:
        doc["_rev"] = rev
    return codec.dumps(doc)


def same_content(body: bytes | dict[str, Any], stored: dict[str, Any]) -> bool:
    """Whether document ``body`` (JSON text or a dict) has the content of ``stored`` (a
    document as CouchDB returns it): every field equal except revision metadata, and the
    same attachments (names, content types and MD5 digests; inline ``data`` is digested)."""
    ours = codec.loads(body) if isinstance(body, (bytes, bytearray)) else dict(body)
    theirs = dict(stored)
    for name in _META:
        ours.pop(name, None)
        theirs.pop(name, None)
    ours_att = _attachments(ours.pop("_attachments", None))
    theirs_att = _attachments(theirs.pop("_attachments", None))
    return ours == theirs and ours_att == theirs_att


def _attachments(atts: Any) -> dict[str, Any] | None:
    if not isinstance(atts, dict) or not atts:
        return None
    import base64  # here: only a conflict with attachments needs them (import cost of the loader)
    import hashlib
    out = {}
    for name, att in atts.items():
        if not isinstance(att, dict):
            return {"?": atts}
        digest = att.get("digest")
        if "data" in att and isinstance(att["data"], str):
            try:
                raw = base64.b64decode(att["data"])
            except ValueError:
                return {"?": atts}
            digest = "md5-" + base64.b64encode(hashlib.md5(raw).digest()).decode("ascii")
        out[name] = (att.get("content_type"), digest)
    return out
