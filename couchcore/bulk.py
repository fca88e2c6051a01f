"""The bulk loader: stream documents into a database in concurrent ``_bulk_docs`` batches.

>>> from couchcore.bulk import load
>>> report = load(db, ({"n": i} for i in range(100_000)), batch_size=1000, concurrency=4)
>>> print(report)          # read, written, skipped, rejected, retried, docs/s, elapsed

The input is read lazily and at most ``concurrency`` batches are in flight (on one
CurlMulti handle with the pycurl backend, on threads with urllib3), so memory stays
bounded by ``batch_size * concurrency`` documents whatever the input size (and, for
:class:`JsonLines` input, a batch ends at ~8 MB of request body: big documents go a few
per request).

Input items are documents (dicts, encoded once), JSON object text (``bytes``, sent
as it is: validated, ``_id`` found or added, never decoded and re-encoded) or
``(line_number, doc_or_bytes)`` pairs (the line number goes into the rejects); a
:class:`JsonLines` stream is scanned a read chunk at a time (in C with the extension). Every
document ends up written, skipped (``skip_existing``) or rejected — with the
reason — nothing is dropped, even when connections break:

* documents without ``_id`` get one on the client before the first send, so a
  batch sent again after a lost answer is recognisable: a ``409`` whose stored
  content equals ours counts as written (*reconciled*), not as a conflict;
* ``429`` (``Retry-After`` honoured), ``5xx`` and connection failures are retried
  with exponential back-off and full jitter, at most ``retries`` times per batch;
* a batch refused as a whole (``400`` ``illegal_docid``, ``413``) is split until the
  bad documents are isolated; only they are rejected;
* on a CouchDB cluster, a document answered ``202`` with ``"accepted": true`` (stored on
  fewer copies than the write quorum; also what a lagging copy answers for a write the
  others refuse as a conflict) is checked as ``save(list)`` checks it: one that lost to a
  concurrent write is withdrawn and settled as the ``409`` one node would have answered
  (rejected as a ``conflict``, the reason naming both revisions, unless ``upsert``,
  ``skip_existing`` or a reconcile settles it as any conflict), one that stands counts as
  written (see :func:`couchcore.protocol.bulk.write_batch`);
* the same ``_id`` twice in one input (the same ``_id`` and ``_rev`` with
  ``new_edits=False``, where one line per leaf revision is normal): while the earlier
  document is in flight the later one waits for it; when the earlier one was written the
  later one is rejected as a ``conflict`` naming the written line (``upsert``: it is
  written over it; ``skip_existing``: it is sent, and skipped if equal), when the earlier
  one was rejected the later one is sent and judged on its own;
* a rejected document is reported as a :class:`Rejected`, whose :meth:`~Rejected.record`
  is the document as it was sent plus a ``_load_error`` field, on one line — a rejects
  file of such lines can be loaded again as it is (the loader strips ``_load_error``);
* a :class:`Checkpoint` records how far the input is confirmed written (the
  contiguous prefix of settled batches), so a restarted load sends nothing already
  confirmed and loses nothing; a batch given up on after the retries is never confirmed,
  so a resumed load sends it again (reconciled), and a resumed load reports the rejections
  the earlier runs recorded (``LoadReport.earlier``, ``ok``).

CouchDB reference: https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-docs
"""

from __future__ import annotations

import heapq
import os
import re
import threading
import time
from dataclasses import field
from itertools import islice
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence, Union

from . import codec
from ._dataclass import FACTORY as _FACTORY, written_dataclass
from .errors import ConnectError, CouchcoreError, HTTPError, InvalidDocument, InvalidField, InvalidInput, TransportError
from .errors import _reduce_exception
from ._nodes import UNAVAILABLE
from .protocol.bulk import BatchOutcome, PackedBodies, write_batch
from ._scan import ENGINE as _SCAN_ENGINE
from ._scan import Flight as _Flight
from ._scan import scan_jsonl as _scan_jsonl

if TYPE_CHECKING:  # pragma: no cover
    from ._sync import Database, Server

__all__ = ["load", "Loader", "LoadReport", "Rejected", "Checkpoint", "Item", "JsonLines", "ERROR_FIELD",
           "LoadInputError", "UNKNOWN_OUTCOME"]

#: the field a rejects record carries its error in; stripped when a record is loaded again
ERROR_FIELD = "_load_error"

#: the ``error`` of a :class:`Rejected` document whose batch the load gave up on after an attempt
#: the server may have carried out (an answer lost, a 5xx other than 503): it may be written
UNKNOWN_OUTCOME = "unknown_outcome"

#: the reason of a document with ``"_id": null``: CouchDB refuses it (``400 illegal_docid``),
#: and a generated id would add the document again on every run of the same load
_NULL_ID = ("_id is null: CouchDB refuses that (illegal_docid); leave _id out for a generated id "
            "(or give id_field)")

#: what the loader takes: a document, JSON object text, or either with its line number
Item = Union[Mapping[str, Any], bytes, "tuple[int, Mapping[str, Any] | bytes | BaseException]"]

_WS = b" \t\r\n"
_WS_CLOSE = frozenset(b" \t\r\n}")
#: a JSON string (kept) or a run of JSON whitespace (dropped): squeezes a document's text onto one
#: line for a rejects record, every token as it was (raw CR/LF can only be whitespace in valid JSON)
#: (compiled on first use, by re's cache: a load that rejects nothing never compiles it)
_STRING_OR_WS = rb'("[^"\\]*(?:\\.[^"\\]*)*")|[ \t\r\n]+'


# -- JSON Lines input ------------------------------------------------------------------------


class JsonLines:
    """JSON Lines input for :func:`load`: a binary stream (``IO[bytes]``) read in chunks of
    ``chunk`` bytes (a longer line grows the buffer).

    The loader scans each chunk in one call (:mod:`couchcore._scan`: validated in C when
    the extension is built, ids found or generated, the lines' bytes sent as they are)
    instead of handling one line at a time; the result is the same as loading
    ``(line_number, line_bytes)`` items, which is also what iterating over it yields.
    A UTF-8 byte order mark at the start is skipped; blank lines are no records (but
    count as lines); the last line needs no newline.
    """

    def __init__(self, f: IO[bytes], chunk: int = 1 << 20) -> None:
        if chunk < 1:
            raise InvalidInput(f"chunk must be positive, got {chunk!r}")
        self.f = f
        # read1: what a pipe has now (up to chunk), so `dump | load` sends batches as the lines come
        self._read: Callable[[int], bytes] = getattr(f, "read1", None) or f.read
        self.chunk = chunk
        self.buf = b""
        self.pos = 0
        self.eof = False
        self._started = False
        # a read chunk whose head went into buf with the line it ended: the scan goes on in it
        # from _next_pos (no copy of the chunk to join it to the line before)
        self._next: bytes | None = None
        self._next_pos = 0

    def fill(self) -> bool:
        """Read more input after ``buf[pos:]`` (at least to the end of the next line, or of
        the input); False when nothing is left to scan.

        The line cut by the end of a read chunk is joined to the head of the next chunk (up
        to its first newline) alone: the rest of that chunk becomes ``buf`` at the next call,
        as it is (a chunk is not copied to join it to a partial line)."""
        rest = self.buf[self.pos:]
        nxt = self._next
        if nxt is not None:
            self._next = None
            if rest:  # (not left by the loader: it scans buf to its last newline first)
                self.buf = rest + nxt[self._next_pos:]
                self.pos = 0
            else:
                self.buf = nxt
                self.pos = self._next_pos
            return True
        if self.eof:
            return False
        pieces = [rest] if rest else []
        while True:
            more = self._read(self.chunk)
            if not more:
                self.eof = True
                break
            if not self._started:
                self._started = True
                while len(more) < 3 and _BOM.startswith(more):  # a short read inside the mark
                    extra = self._read(3 - len(more))
                    if not extra:
                        break
                    more += extra
                if more[:3] == _BOM:
                    more = more[3:]
            nl = more.find(b"\n")
            if nl >= 0 and pieces and nl + 1 < len(more):  # the cut line's end, then more lines
                pieces.append(more[:nl + 1])
                self._next, self._next_pos = more, nl + 1
                break
            pieces.append(more)
            if nl >= 0:  # a whole line at least (a long line is joined once, not regrown)
                break
        self.buf = b"".join(pieces) if len(pieces) != 1 else pieces[0]
        self.pos = 0
        return bool(self.buf)

    def skip(self, count: int) -> int:
        """Skip ``count`` lines (a resumed load's confirmed prefix); returns how many there were."""
        done = 0
        while done < count:
            nl = self.buf.find(b"\n", self.pos)
            if nl >= 0:
                self.pos = nl + 1
                done += 1
            elif not self.fill():
                if self.pos < len(self.buf):  # a last line without newline
                    self.pos = len(self.buf)
                    done += 1
                break
        return done

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        line = 0
        while True:
            buf, pos = self.buf, self.pos
            while True:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    break
                line += 1
                self.pos = nl + 1
                yield line, buf[pos:nl + 1]
                pos = nl + 1
            if not self.fill():
                if self.pos < len(self.buf):
                    line += 1
                    last = self.buf[self.pos:]
                    self.pos = len(self.buf)
                    yield line, last
                return


_BOM = b"\xef\xbb\xbf"
#: a JSON Lines batch ends once its request body holds this many bytes (8 MB), before ``batch_size``
#: documents (big documents, attachments inline: ``dump --attachments | load``), so memory and
#: request sizes stay bounded (a body may exceed it by one read chunk or one long line)
_BATCH_BYTES = 8 << 20


# -- validating JSON text without decoding it -------------------------------------------------

_UNSET: Any = codec.ABSENT


class _HeadReader:
    """Validate JSON object text and read its head (:func:`codec.document_head_decoder`:
    ``id``, ``rev``, ``load_error``, ``key``; absent ones are ``_UNSET``); raises :class:`_Bad`."""

    def __init__(self, id_field: str | None) -> None:
        self.id_field = id_field
        self._fast: Callable[[bytes], codec.DocumentHead] | None = None

    @property
    def fast(self) -> Callable[[bytes], codec.DocumentHead]:
        """The decoder itself, for the loader's hot loop (raises couchcore's errors, see
        _bad); made on first use (JSON Lines scanned in C may never need it, nor msgspec)."""
        if self._fast is None:
            self._fast = codec.document_head_decoder(self.id_field)
        return self._fast

    def __call__(self, data: bytes) -> codec.DocumentHead:
        try:
            return self.fast(data)
        except CouchcoreError as exc:
            raise _bad(exc) from None


class _Bad(Exception):
    """A document the loader rejects before sending: ``error`` and ``reason``."""

    def __init__(self, error: str, reason: str, docid: str | None = None, doc: Any = None) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason
        self.docid = docid  # the document's id and the document (a dict), where known
        self.doc = doc

    def __reduce__(self) -> tuple[Any, ...]:  # pickled like every couchcore error
        return _reduce_exception(self)


def _bad(exc: CouchcoreError) -> _Bad:
    """The loader's error for what :func:`codec.document_head_decoder` raised."""
    if isinstance(exc, InvalidField):
        return _Bad("invalid_rev" if exc.field == "_rev" else "invalid_id", str(exc))
    if isinstance(exc, InvalidDocument):
        return _Bad("not_an_object", str(exc))
    return _Bad("invalid_json", str(exc))


# -- reports --------------------------------------------------------------------------------


def _kept_string(match: re.Match[bytes]) -> bytes:
    """A JSON string matched by ``_STRING_OR_WS`` as it is; whitespace as nothing."""
    return match.group(1) or b""


@written_dataclass(init=False, repr=False, eq=False)
class Rejected:
    """A document the load could not write: its input ``line`` (or position), ``id``,
    CouchDB's ``error`` and ``reason`` (or the loader's: ``invalid_json``,
    ``not_an_object``, ``invalid_id``, ``conflict`` for a duplicate ``_id``,
    ``local_document`` for a ``_local/`` id without ``upsert``, ...), and
    ``doc``: the document as sent (JSON text ``bytes`` or a dict) or, for input that is
    no document, ``None`` with the input in ``text``.

    ``error`` :data:`UNKNOWN_OUTCOME` (``"unknown_outcome"``) is not a refusal: the load
    gave up on the document's batch after an attempt the server may have carried out (its
    answer was lost, or it answered 500/502/504), so it may be stored. Load such records
    again, as the reason says for the load's mode: a create-only load with
    ``skip_existing`` (``couchcore load --skip-existing``; without it a written one would be
    a ``conflict``), an ``upsert`` load with ``upsert`` again (``--upsert``; ``skip_existing``
    alone would refuse the documents that were not written over as conflicts), a
    ``new_edits=False`` load as it was (``--new-edits-false``). A document that was written
    is then skipped (same content; with ``new_edits=False`` CouchDB takes the revision it
    has again, nothing doubled), the others are written. Documents given up on after
    attempts the server surely did not carry out (no connection, ``429``, ``503``) carry
    the last error (e.g. ``ConnectError``, ``service_unavailable``): not written.

    On a CouchDB cluster a document answered ``202`` ``"accepted": true`` that lost to a
    concurrent write is rejected as ``conflict`` once couchcore withdrew its revision (the
    reason names both revisions), as ``stored_as_conflict`` when it could not be withdrawn
    (it is stored beside the other writer's: read it with ``conflicts=true`` and resolve
    the two; a resumed load does not send it again), and as :data:`UNKNOWN_OUTCOME` when
    the reads that decide it failed (it is stored; whether it lost is unknown; held like a
    batch given up on). https://docs.couchdb.org/en/stable/cluster/theory.html"""

    line: int | None
    id: str | None
    error: str
    reason: str | None
    doc: bytes | Mapping[str, Any] | None = None
    text: str | None = None

    def __init__(self, line: int | None, id: str | None, error: str, reason: str | None,  # noqa: A002
                 doc: bytes | Mapping[str, Any] | None = None, text: str | None = None) -> None:
        # (as @dataclass writes it, without compiling it at import: see couchcore._dataclass)
        self.line = line
        self.id = id
        self.error = error
        self.reason = reason
        self.doc = doc
        self.text = text

    def record(self) -> bytes:
        """One JSON line (no newline) for a rejects file: the document with the error in
        ``_load_error`` (``{"line", "error", "reason"}``, plus ``text`` for input that
        was no document). Loading the record again loads the document. A document given
        as JSON text is kept as it was when it is one line; text that spans lines (an
        element of an indented JSON array) loses the whitespace between its tokens, every
        token (string, number) kept as it was, so the record is still one line."""
        err: dict[str, Any] = {"line": self.line, "error": self.error, "reason": self.reason}
        if self.doc is None:
            err["text"] = self.text
            return codec.dumps({ERROR_FIELD: err})
        if isinstance(self.doc, (bytes, bytearray)):
            body = bytes(self.doc).strip(_WS)
            if b"\n" in body or b"\r" in body:  # an element of an indented JSON array: one line
                body = re.sub(_STRING_OR_WS, _kept_string, body, flags=re.DOTALL)
            inner = body[1:].lstrip(_WS)
            glue = b"" if inner[:1] == b"}" else b","
            return b'{"' + ERROR_FIELD.encode() + b'":' + codec.dumps(err) + glue + inner
        return codec.dumps({ERROR_FIELD: err, **{k: v for k, v in self.doc.items() if k != ERROR_FIELD}})

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "?"
        who = f" ({self.id})" if self.id else ""
        return f"{where}{who}: {self.error}: {self.reason}"


@written_dataclass(init=False, repr=False, eq=False)
class LoadReport:
    """What a load did. Counts: ``read`` (input records: documents and input that is no
    document), ``written``, ``skipped`` (already there with the same content),
    ``rejected``, ``retried`` (batch requests sent again), ``batches`` (first sends),
    ``unsettled`` (read but neither written nor rejected: the load was stopped);
    ``seconds`` taken, ``interrupted``; ``failures``: the :class:`Rejected` documents,
    kept here when the load had no ``on_reject`` callback; ``unknown``: how many of the
    ``rejected`` are :data:`UNKNOWN_OUTCOME` (may have been written, see :class:`Rejected`).
    These count this run only. ``earlier``: for a load resumed from a :class:`Checkpoint`,
    the counts (``read``, ``written``, ``skipped``, ``rejected``, ``unknown``) the earlier
    runs recorded for the part of the input it confirms (skipped by this run); empty
    otherwise. :attr:`ok` tells whether the whole load (this run and the earlier ones) wrote
    or skipped every document."""

    read: int = 0
    written: int = 0
    skipped: int = 0
    rejected: int = 0
    retried: int = 0
    batches: int = 0
    unsettled: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    failures: list[Rejected] = field(default_factory=list)
    unknown: int = 0
    earlier: dict[str, int] = field(default_factory=dict)

    def __init__(self, read: int = 0, written: int = 0, skipped: int = 0, rejected: int = 0, retried: int = 0,
                 batches: int = 0, unsettled: int = 0, seconds: float = 0.0, interrupted: bool = False,
                 failures: list[Rejected] = _FACTORY, unknown: int = 0, earlier: dict[str, int] = _FACTORY) -> None:
        # (as @dataclass writes it, without compiling it at import: see couchcore._dataclass)
        self.read = read
        self.written = written
        self.skipped = skipped
        self.rejected = rejected
        self.retried = retried
        self.batches = batches
        self.unsettled = unsettled
        self.seconds = seconds
        self.interrupted = interrupted
        self.failures = [] if failures is _FACTORY else failures
        self.unknown = unknown
        self.earlier = {} if earlier is _FACTORY else earlier

    @property
    def ok(self) -> bool:
        """Whether every document of the load is written or skipped: nothing rejected, not
        settled or interrupted in this run, and nothing rejected by the earlier runs a
        checkpoint recorded (``earlier``). False after a resumed run that sent nothing
        because the checkpoint was complete when it had recorded rejections: those
        documents are not in the database (see :class:`Checkpoint`)."""
        return not (self.rejected or self.unsettled or self.interrupted or self.earlier.get("rejected"))

    @property
    def failed(self) -> list[Rejected]:
        """Alias of :attr:`failures`."""
        return self.failures

    @property
    def total(self) -> int:
        """Documents settled: ``written + skipped + rejected``."""
        return self.written + self.skipped + self.rejected

    @property
    def docs_per_second(self) -> float:
        """Written and skipped documents per second of the load (0.0 before it ran)."""
        return (self.written + self.skipped) / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        text = (f"read {self.read:,}, written {self.written:,}, skipped {self.skipped:,}, "
                f"rejected {self.rejected:,}"
                + (f" ({self.unknown:,} of them outcome unknown: may have been written)" if self.unknown else "")
                + f", retried {self.retried:,}; "
                f"{self.docs_per_second:,.0f} docs/s, elapsed {self.seconds:.2f}s")
        if self.unsettled:
            text += f"; {self.unsettled:,} not settled"
        if self.interrupted:
            text += " (interrupted)"
        e = self.earlier
        if any(e.values()):
            text += (f"; before this run (checkpoint): read {e.get('read', 0):,}, written {e.get('written', 0):,}, "
                     f"skipped {e.get('skipped', 0):,}, rejected {e.get('rejected', 0):,}")
        return text


# -- checkpoint -----------------------------------------------------------------------------


class Checkpoint:
    """A resume file: how much of the input is confirmed (written, skipped or rejected for good).

    ``records`` input items form the confirmed prefix (``line`` is the input line of the
    last one); ``sent`` is an upper bound of the items ever handed to the server, so a
    restarted load reconciles items up to there; ``id_prefix`` makes the ids the loader
    gives documents without ``_id`` the same on every run; ``counts``: the ``read``,
    ``written``, ``skipped``, ``rejected`` and ``unknown`` (:class:`LoadReport`) of the
    confirmed prefix, over every run of the load so far (a resumed load's
    ``LoadReport.earlier``); ``complete``: the whole input is confirmed.

    A document given up on after the retries (rejected with its last error, or as
    :data:`UNKNOWN_OUTCOME`: it may have been written) is not confirmed: the prefix stops
    before its batch, and a load resumed from the checkpoint sends it again (with the
    documents after it), as a document that may have been sent before. That is right in
    every mode: a create-only load fetches the stored document on a ``409`` and counts
    equal content (``_rev`` aside) as written -- its own earlier write, never a false
    conflict --; ``skip_existing``, ``upsert`` and ``new_edits=False`` settle it as they do
    any document. So a load can be resumed until it reports nothing rejected. Rejections
    that are refusals (a conflict with another document, input that is no JSON, an invalid
    id) are confirmed, counted in ``counts["rejected"]``: a resumed load does not send
    them again and reports them (``LoadReport.earlier``, ``LoadReport.ok`` false), also
    when the checkpoint is ``complete`` and nothing is left to send.

    Give :func:`load` the object (``Checkpoint.open(path, ...)``), not a path.
    ``database`` and ``input``
    name what the checkpoint belongs to (no credentials), ``head`` the input file's first
    bytes (``"N:sha256"``, set by the caller). The file is JSON, replaced
    atomically; ``save`` writes at most every ``interval`` seconds unless forced.
    """

    def __init__(self, path: str | os.PathLike[str], database: str = "", input: str = "",
                 interval: float = 0.5) -> None:
        self.path = os.fspath(path)
        self.database = _portable(database)
        self.input = _portable(input)  # a file name may hold undecodable bytes
        self.interval = interval
        self.records = 0
        self.line = 0
        self.sent = 0
        self.id_prefix = _new_prefix()
        self.complete = False
        self.counts: dict[str, int] = {}
        #: ``"N:sha256-hex"`` of the input file's first N bytes ("" when not known, e.g. stdin)
        self.head = ""
        self.resumed = False
        self._saved_at = 0.0
        self._saved_sent = 0
        #: called before each save (e.g. to flush a rejects file the checkpoint vouches for)
        self.before_save: Callable[[], Any] | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str], database: str = "", input: str = "", interval: float = 0.5) -> "Checkpoint":
        """The checkpoint in ``path`` (a fresh one if the file does not exist, or records
        nothing sent). Raises :class:`InvalidInput` if the file is unreadable or belongs to
        another load."""
        cp = cls(path, database, input, interval)
        try:
            with open(cp.path, "rb") as f:
                data = codec.loads(f.read() or b"{}")
        except FileNotFoundError:
            return cp
        except (OSError, CouchcoreError) as exc:
            raise InvalidInput(f"cannot read checkpoint {cp.path}: {exc}") from None
        if not isinstance(data, dict) or data.get("version") != 1:
            raise InvalidInput(f"{cp.path} is not a couchcore load checkpoint")
        if not data.get("sent") and not data.get("records"):
            return cp  # nothing was ever sent (a load that could not start): no load to resume
        for name, mine in (("database", cp.database), ("input", cp.input)):
            theirs = data.get(name)
            if mine and theirs and mine != theirs:
                raise InvalidInput(f"checkpoint {cp.path} belongs to another load ({name} {theirs!r}, not {mine!r})")
        cp.records = int(data.get("records", 0))
        cp.line = int(data.get("line", 0))
        cp.sent = max(cp.records, int(data.get("sent", 0)))
        cp.id_prefix = str(data.get("id_prefix") or cp.id_prefix)
        cp.complete = bool(data.get("complete"))
        cp.counts = dict(data.get("counts") or {})
        cp.head = str(data.get("head") or "")
        cp.resumed = True
        cp._saved_sent = cp.sent
        return cp

    def sending(self, upto: int, ahead: int) -> None:
        """Items up to ``upto`` are about to be sent: persist a bound ``>= upto`` first."""
        if upto > self._saved_sent:
            self.sent = upto + ahead
            self.save(force=True)

    def confirm(self, records: int, line: int, counts: Mapping[str, int]) -> None:
        """Record that the first ``records`` input records (up to input ``line``) are settled,
        with the report's ``counts``; written to the file at most every ``interval`` seconds."""
        self.records, self.line = records, line
        self.counts = dict(counts)
        if time.monotonic() - self._saved_at >= self.interval:
            self.save()

    def save(self, force: bool = False) -> None:
        """Write the file now (atomically: a temporary file renamed over it)."""
        if self.before_save is not None:
            self.before_save()
        data = {"version": 1, "database": self.database, "input": self.input, "records": self.records,
                "line": self.line, "sent": max(self.sent, self.records), "id_prefix": self.id_prefix,
                "complete": self.complete, "counts": self.counts, "head": self.head}
        tmp = f"{self.path}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(codec.dumps(data))
            if force:
                f.flush()
        os.replace(tmp, self.path)
        self._saved_at = time.monotonic()
        self._saved_sent = int(data["sent"])  # type: ignore[call-overload]


def _portable(text: str) -> str:
    r"""``text`` with lone surrogates (``os.fsdecode`` of undecodable bytes) spelled as
    ``\xNN`` escapes, so that it can be written as JSON."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace")


# -- the loader -----------------------------------------------------------------------------


class _Batch:
    """Documents sent in one request: their bodies and marks (ids, input lines: one
    :class:`PackedBodies`), their checkpoint segment."""

    __slots__ = ("seg", "docs", "attempt", "reconcile", "due", "maybe_written")

    def __init__(self, seg: int, docs: PackedBodies, attempt: int = 0, reconcile: bool = False,
                 maybe_written: bool | None = None) -> None:
        self.seg = seg
        self.docs = docs
        self.attempt = attempt
        self.reconcile = reconcile
        self.due = 0.0
        #: an attempt (this run's or, resuming, an earlier run's) may have been carried out
        self.maybe_written = reconcile if maybe_written is None else maybe_written

    @property
    def ids(self) -> "_Ids":
        """The documents' ids (decoded one by one, when asked)."""
        return _Ids(self.docs)

    @property
    def bodies(self) -> PackedBodies:
        """The documents' JSON texts."""
        return self.docs

    @property
    def lines(self) -> list[int]:
        """The documents' input lines."""
        return self.docs.lines()

    def __lt__(self, other: "_Batch") -> bool:
        return (self.due, self.seg) < (other.due, other.seg)


class _Ids:
    """A batch's document ids, decoded from its documents' keys when asked (on the error
    paths: the documents of a batch all written are never looked at one by one)."""

    __slots__ = ("docs",)

    def __init__(self, docs: PackedBodies) -> None:
        self.docs = docs

    def __len__(self) -> int:
        return len(self.docs)

    def __getitem__(self, i: int) -> str:
        return self.docs.docid(i)


class _Segment:
    """A stretch of input items (one fresh batch): how many of its documents are unsettled,
    and its counts (added to the checkpoint's once the segment joins the confirmed prefix)."""

    __slots__ = ("pending", "last_record", "last_line", "read", "written", "skipped", "rejected")

    def __init__(self) -> None:
        self.pending = 0
        self.last_record = 0
        self.last_line = 0
        self.read = 0
        self.written = 0
        self.skipped = 0
        self.rejected = 0


def _rerun_advice(upsert: bool, new_edits: bool, flags: bool = False, resumable: bool = False) -> str:
    """How a load settles a document it rejected as :data:`UNKNOWN_OUTCOME`, for its mode:
    load it again as a create-only load with ``skip_existing``, an ``upsert`` load with
    ``upsert``, a ``new_edits=False`` load as it was; a written one is then skipped.
    ``flags``: name ``couchcore load``'s options (``--skip-existing``) instead;
    ``resumable``: the load has a checkpoint, which does not confirm the document, so
    resuming the load sends it again (reconciled): say that first."""
    if not new_edits:
        how = "as it was (--new-edits-false)" if flags else "as it was (new_edits=False)"
        advice = f"load it again {how} to settle it: a revision already stored is not stored twice"
    elif upsert:
        how = "--upsert" if flags else "upsert"
        advice = f"load it again with {how}, as this load, to settle it: one that was written is skipped"
    else:
        how = "--skip-existing" if flags else "skip_existing"
        advice = f"load it again with {how} to settle it: one that was written is skipped"
    if resumable:
        again = "run the same command again (--resume)" if flags else "resume the load with the same checkpoint"
        advice = (f"{again}: the checkpoint does not confirm it, so it is sent again and one that was written counts "
                  f"as written; or {advice}")
    return advice


class Loader:
    """A bulk load, ready to :meth:`run` (see :func:`load` for the arguments).

    :meth:`stop` (from another thread or a signal handler) stops reading input; the
    batches in flight are finished and :meth:`run` returns the report with
    ``interrupted`` set. ``report`` is readable at any time.
    """

    def __init__(
        self,
        db: "Database",
        docs: Iterable[Any],
        batch_size: int = 1000,
        concurrency: int = 4,
        *,
        upsert: bool = False,
        new_edits: bool = True,
        skip_existing: bool = False,
        id_field: str | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        nodes: Sequence["Server"] = (),
        checkpoint: Checkpoint | None = None,
        on_reject: Callable[[Rejected], Any] | None = None,
        progress: Callable[["LoadReport"], Any] | None = None,
    ) -> None:
        for name, value in (("batch_size", batch_size), ("concurrency", concurrency)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a positive int, got {value!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInput(f"retries must be a non-negative int, got {retries!r}")
        if upsert and not new_edits:
            raise InvalidInput("upsert and new_edits=False exclude each other")
        if isinstance(docs, (str, bytes, bytearray, memoryview)) or isinstance(docs, Mapping):
            # a path or one JSON text would be read one character (key) at a time
            raise InvalidInput(f"docs must be an iterable of documents or a JsonLines, not a {type(docs).__name__} "
                               "(for a file: bulk.JsonLines(open(path, 'rb')))")
        if id_field is not None and (not isinstance(id_field, str) or not id_field or id_field == "_id"):
            raise InvalidInput(f"id_field must be a field name other than '_id', got {id_field!r}")
        self.db = db
        self.name = db.name
        self.servers: list[Any] = [db.server, *nodes]
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.upsert = upsert
        self.new_edits = new_edits
        self.skip_existing = skip_existing
        self.id_field = id_field
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.checkpoint = checkpoint
        self.on_reject = on_reject
        self.progress = progress
        self.report = LoadReport()
        #: how to settle a document rejected as UNKNOWN_OUTCOME (the end of its reason)
        self.rerun_advice = _rerun_advice(upsert, new_edits, resumable=isinstance(checkpoint, Checkpoint))
        self._head = _HeadReader(id_field)
        self._jsonl = docs if isinstance(docs, JsonLines) else None
        #: what the input raised (the load sends what it read before, then raises LoadInputError)
        self._input_error: Exception | None = None
        self._items: Iterator[Any] = iter(docs) if self._jsonl is not None else self._guard(iter(docs))
        self._ordinal = 0
        self._exhausted = False
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._paused_until = 0.0
        # several nodes: a batch a node could not be reached for goes to the others (the
        # node is set aside for a while, doubling up to max_backoff while it stays down)
        self._orphans: list[_Batch] = []
        self._benched: dict[int, tuple[float, float]] = {}  # id(node) -> (until, seconds)
        self._flying = 0  # batches sent and not handled yet, on every node
        # the keys (_id, or _id and _rev with new_edits=False) of the documents not settled yet,
        # with their input lines: a C hash set with the extension (couchcore._scan)
        self._flight = _Flight()
        # key -> later duplicates of a document in flight, waiting for it to settle:
        # [(body, line, segment, idlen, sent before)]
        self._waiting: dict[bytes, list[tuple[bytes, int, int, int, bool]]] = {}
        self._ready: list[tuple[bytes, int, bytes, int, int, bool]] = []  # released duplicates
        self._segments: dict[int, _Segment] = {}
        self._body_size = 0  # bytes to reserve for the next batch's request body
        self._next_seg = 0
        self._confirm_seg = 0
        #: the segment whose documents a rejection counts in (set where documents are read or settled)
        self._cur_seg: _Segment | None = None
        #: documents given up on after the retries (rejected in this run's report): their segments
        #: are never confirmed, so a resumed load sends them again (see Checkpoint)
        self._held = 0
        #: counts of the segments confirmed by this run (the checkpoint's counts: these added to
        #: the earlier runs')
        self._prefix = {"read": 0, "written": 0, "skipped": 0, "rejected": 0, "unknown": 0}
        self._skip = 0
        self._reconcile_upto = 0
        self.id_prefix = _new_prefix()
        if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
            raise InvalidInput(f"checkpoint must be a bulk.Checkpoint, not a {type(checkpoint).__name__}: pass "
                               "Checkpoint.open(path) (it reads the file, if any, and checks it belongs to this load)")
        if checkpoint is not None:
            self._skip = checkpoint.records
            self._reconcile_upto = checkpoint.sent
            self.id_prefix = checkpoint.id_prefix
            self._confirmed = (checkpoint.records, checkpoint.line)
            self._base_counts = dict(checkpoint.counts)
            if checkpoint.resumed:  # what the earlier runs settled (the part of the input skipped now)
                self.report.earlier = {name: int(checkpoint.counts.get(name, 0)) for name in _COUNTS}
        else:
            self._base_counts = {}
            self._confirmed = (0, 0)
        self._id_fmt = self.id_prefix + "%012x"
        self._id_head = b'{"_id":"' + self.id_prefix.encode("ascii") + b'%012x",'

    def stop(self) -> None:
        """Stop reading input; batches in flight are finished."""
        self._stop.set()

    def _guard(self, items: Iterator[Any]) -> Iterator[Any]:
        """``items``, ending where they raise an ``Exception`` (kept in ``_input_error``)."""
        try:
            yield from items
        except Exception as exc:  # noqa: BLE001 - raised again by run(), as LoadInputError's cause
            self._input_error = exc

    # -- the input side ------------------------------------------------------------------
    def _reject(self, line: int | None, docid: str | None, error: str, reason: str | None,
                doc: Any = None, text: str | None = None) -> None:
        rejected = Rejected(line, docid, error, reason, doc, text)
        self.report.rejected += 1
        if self._cur_seg is not None:
            self._cur_seg.rejected += 1
        if self.on_reject is not None:
            self.on_reject(rejected)
        else:
            self.report.failures.append(rejected)

    def _fresh(self) -> _Batch | None:
        """Read the next batch from the input (called with the lock held).

        The loader's hot path: :class:`JsonLines` input is scanned a read chunk at a time
        in C (:mod:`couchcore._scan`); other input goes through :meth:`_take`, where JSON text
        with a string ``_id`` (or none) costs one head-decode (msgspec with couchcore[fast])
        and a few list appends per document.
        """
        if self._exhausted:
            return None
        docs = PackedBodies(self._body_size, self.batch_size)  # the request body, built as the input is read
        seg_no = self._next_seg
        seg = _Segment()
        items = self._items
        size = self.batch_size
        ordinal = self._ordinal
        line = self._confirmed[1]
        if self._skip:  # resuming: the confirmed prefix is not sent again
            if self._jsonl is not None:
                skipped = self._jsonl.skip(self._skip)
            else:
                skipped = 0
                for _ in items:
                    skipped += 1
                    if skipped >= self._skip:
                        break
            if skipped < self._skip and self._input_error is None:  # (a file rewritten since, another stream on stdin)
                raise InvalidInput(f"the input ends after {skipped:,} records, before the {self._skip:,} "
                                   f"the checkpoint confirms: it is not the input the checkpoint was made for")
            ordinal += skipped
            self._skip = 0
        start = ordinal
        full = False  # the batch reached _BATCH_BYTES before `size` documents
        self._cur_seg = seg  # the input's rejections count in this segment
        if self._jsonl is not None:
            ordinal, line, blanks, full = self._take_jsonl(size, ordinal, docs, seg_no, seg)
        else:
            ordinal, line, blanks = self._take(items, size, ordinal, line, docs, seg_no, seg)
        if ordinal - start < size and not full:
            self._exhausted = True
        self._ordinal = ordinal
        self.report.read += ordinal - start - blanks
        seg.read = ordinal - start - blanks
        if ordinal == start:
            return None  # nothing read at all
        self._body_size = docs.used + (docs.used >> 3) + 4096  # room for the next batch at once
        self._next_seg += 1
        seg.pending += len(docs)
        seg.last_record = ordinal
        seg.last_line = line
        self._segments[seg_no] = seg
        if not len(docs):
            self._settle(seg_no, 0)
            return _EMPTY
        batch = _Batch(seg_no, docs, reconcile=ordinal - len(docs) < self._reconcile_upto)
        if self.checkpoint is not None:
            self.checkpoint.sending(ordinal, ahead=size * (self.concurrency + 1) * 4)
        self.report.batches += 1
        return batch

    def _take_jsonl(self, size: int, ordinal: int, docs: PackedBodies, seg_no: int,
                    seg: "_Segment") -> tuple[int, int, int, bool]:
        """Read up to ``size`` lines of JSON Lines input into the batch's ``docs``: whole read
        chunks go through :func:`couchcore._scan.scan_jsonl` (many lines per call); a line it
        does not settle goes through :meth:`_take` (the general path). Stops early once the
        body holds :data:`_BATCH_BYTES`. Returns ``(ordinal, line, blanks, full)`` (``full``:
        stopped early); a JSON Lines record is a line, so the ordinal is the line number."""
        src = self._jsonl
        assert src is not None  # (JSON Lines input only)
        flight = self._flight
        need_rev = not self.new_edits
        gen_ids = self.new_edits and not self.id_field
        prefix = self.id_prefix.encode("ascii")
        id_field = self.id_field.encode("utf-8") if self.id_field else None
        decode = self._head.fast if _SCAN_ENGINE == "python" else None  # (the C scanner needs none)
        left = size
        blanks = 0
        line = ordinal
        while left:
            buf = src.buf
            pos, n, b, slow = _scan_jsonl(buf, src.pos, src.eof, left, ordinal, line, flight, need_rev, gen_ids,
                                         prefix, id_field, decode, docs)
            ordinal += n
            line += n
            blanks += b
            left -= n
            src.pos = pos
            if slow >= 0:
                src.pos = slow
                ordinal, line, b = self._take(((line + 1, buf[pos:slow]),), 1, ordinal, line, docs, seg_no, seg)
                blanks += b
                left -= 1
            elif left and not src.fill():
                break
            if left and docs.used >= _BATCH_BYTES:
                return ordinal, line, blanks, True
        return ordinal, line, blanks, False

    def _take(self, items: Iterable[Any], size: int, ordinal: int, line: int, docs: PackedBodies, seg_no: int,
              seg: "_Segment") -> tuple[int, int, int]:
        """Read up to ``size`` items into the batch's ``docs`` (the general path); returns
        ``(ordinal, line, blanks)``."""
        decode = self._head.fast
        flight = self._flight
        need_rev = not self.new_edits
        id_field = self.id_field
        id_head = self._id_head
        id_fmt = self._id_fmt
        dumps = codec.dumps
        error_field = ERROR_FIELD
        blanks = 0
        unset = _UNSET
        bodies: list[bytes] = []
        keys: list[bytes] = []
        lines: list[int] = []
        idlens: list[int] = []
        flags: list[int] = []
        for item in islice(items, size):  # a batch has at most `size` documents
            ordinal += 1
            if item.__class__ is tuple:
                line, data = item
            else:
                line, data = ordinal, item
            key = None
            if data.__class__ is bytes:
                try:
                    h = decode(data)
                except CouchcoreError as exc:  # ParseError / InvalidDocument / InvalidField
                    if not data.strip(_WS):
                        blanks += 1
                        continue  # a blank line is no record
                    bad = _bad(exc)
                    self._reject(line, None, bad.error, bad.reason, None, _text(data))
                    continue
                docid = h.id
                if docid.__class__ is str and docid and h.load_error is unset and not (need_rev and h.rev is unset):
                    key = _utf8(docid)
                    if need_rev:
                        idlen = len(key)
                        key += b"\0" + h.rev.encode("utf-8", "surrogatepass")
                elif docid is unset and h.load_error is unset and not id_field and not need_rev \
                        and data[0] == 123 and data[1] not in _WS_CLOSE:  # '{' then a member: splice
                    bodies.append(id_head % ordinal + data[1:])
                    keys.append((id_fmt % ordinal).encode("ascii"))
                    lines.append(line)
                    idlens.append(-1)
                    flags.append(0)  # a generated id is unique: not in the in-flight set
                    continue
            elif data.__class__ is dict and not need_rev and error_field not in data:
                docid = data.get("_id", unset)  # a plain dict: encoded once, here
                if docid is unset and not id_field:
                    docid = data["_id"] = id_fmt % ordinal
                if docid.__class__ is str and docid:
                    try:
                        data = dumps(data)
                    except CouchcoreError as exc:  # the id is good: the record says it, with the dict
                        self._reject(line, docid, "invalid", str(exc), data)
                        continue
                    key = _utf8(docid)
            if key is None:
                try:
                    data, docid = self._prepare(data, line, ordinal)
                except _Bad as bad:
                    if bad.doc is not None:
                        self._reject(line, bad.docid, bad.error, bad.reason, bad.doc)
                    else:
                        self._reject(line, None, bad.error, bad.reason, None, _text(data))
                    continue
                if data is None:
                    continue  # handled (a rejects record of input that is still no document)
                if docid.__class__ is not str:  # a generated id (an int: the input position)
                    docid = id_fmt % docid
                    bodies.append(data)
                    keys.append(docid.encode("ascii"))
                    lines.append(line)
                    idlens.append(-1)
                    flags.append(0)
                    continue
                key = _utf8(docid)
                if need_rev:
                    idlen = len(key)
                    key += b"\0" + self._head(data).rev.encode("utf-8", "surrogatepass")
            earlier = flight.add(key, line)
            if earlier:
                self._duplicate(key, idlen if need_rev else len(key), earlier, data, line, seg_no, seg, ordinal)
                continue
            bodies.append(data)
            keys.append(key)
            lines.append(line)
            idlens.append(idlen if need_rev else -1)
            flags.append(1)
        docs.extend(bodies, keys, lines, idlens, flags)
        return ordinal, line, blanks

    def _duplicate(self, key: bytes, idlen: int, earlier: int, data: bytes, line: int, seg_no: int,
                   seg: "_Segment", ordinal: int) -> None:
        """The document of ``line`` has the key of a document in flight (the one of line
        ``earlier``): it waits until that one is settled (see :meth:`_follow`)."""
        self._flight.hold(key)
        self._waiting.setdefault(key, []).append((data, line, seg_no, idlen, ordinal <= self._reconcile_upto))
        seg.pending += 1

    def _follow(self, docs: PackedBodies, i: int, rejected: bool) -> None:
        """Document ``i`` of ``docs`` is settled (``rejected`` or not) and later duplicates of
        it wait: with ``upsert`` or ``skip_existing``, or when it was rejected, the next one
        is sent (the server judges it on its own); when it was written, each is rejected as
        a ``conflict`` naming the line of the written one."""
        line, key, idlen, _ = docs.mark(i)
        queue = self._waiting.pop(key)
        if rejected or self.upsert or self.skip_existing:
            data, later, seg_no, idlen, sent = queue.pop(0)
            if queue:
                self._waiting[key] = queue
            self._flight.release(key, later, bool(queue))
            self._ready.append((key, idlen, data, later, seg_no, sent or self.upsert))
            return
        self._flight.discard(key)
        what = "_id" if self.new_edits else "_id and _rev"
        docid = key[:idlen].decode("utf-8", "surrogatepass")
        for data, later, seg_no, _, _ in queue:
            self._cur_seg = self._segments[seg_no]
            self._reject(later, docid, "conflict",
                         f"duplicate {what}: the document of line {line} has the same {what} and was written", data)
            self._settle(seg_no, 1)

    def _prepare(self, data: Any, line: int, ordinal: int) -> tuple[Any, Any]:
        """The slow path: ``(body, id)`` for any item (raises :class:`_Bad`)."""
        if data.__class__ is not bytes and isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data)
        if data.__class__ is not bytes:
            return self._encode(data, ordinal)
        h = self._head(data)  # raises _Bad (invalid UTF-8 included)
        docid: Any = h.id  # str, None or _UNSET; an int (input position) once generated
        if h.load_error is not _UNSET:
            return self._strip_error(data, line, ordinal)
        if docid is None:
            raise _Bad("invalid_id", _NULL_ID)
        if docid is _UNSET:
            key = h.key
            if not self.new_edits:
                raise _Bad("missing_id", "new_edits=false needs each document's _id and _rev")
            docid = self._new_id(key, ordinal)
            data = _splice_id(data, docid)
            if key is _UNSET or key is None:
                docid = ordinal  # a generated id (see _Batch.id)
        elif not docid:
            raise _Bad("invalid_id", "_id must not be empty")
        if not self.new_edits and h.rev is _UNSET:
            raise _Bad("missing_rev", "new_edits=false needs each document's _rev")
        return data, docid

    def _new_id(self, key: Any, ordinal: int) -> str:
        if key is not _UNSET and key is not None:
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise _Bad("invalid_id", f"id field {self.id_field!r} must be a string or integer")
            docid = str(key)
            if not docid:
                raise _Bad("invalid_id", f"id field {self.id_field!r} is empty")
            return docid
        if self.id_field:
            # the field is the document's key: a random id would add the row again on the
            # next run of the same load, where its key would have found it
            raise _Bad("invalid_id", f"no {self.id_field!r} field" if key is _UNSET
                       else f"id field {self.id_field!r} is null")
        # CouchDB's "sequential" uuid style: a random prefix per load and a counter —
        # the same on every run of a resumed load, and kind to the id B-tree
        return self._id_fmt % ordinal

    def _encode(self, doc: Any, ordinal: int) -> tuple[bytes, str]:
        if isinstance(doc, BaseException):
            raise _Bad("invalid_input", str(doc))
        if not isinstance(doc, Mapping):
            raise _Bad("not_an_object", f"a document must be a JSON object, not {type(doc).__name__}")
        if ERROR_FIELD in doc:
            doc = {k: v for k, v in doc.items() if k != ERROR_FIELD}
        docid = doc.get("_id", _UNSET)
        if docid is _UNSET:
            key = doc.get(self.id_field, _UNSET) if self.id_field else _UNSET
            docid = self._new_id(key, ordinal)
            if not isinstance(doc, dict):
                doc = dict(doc)
            doc["_id"] = docid
        elif docid is None:
            raise _Bad("invalid_id", _NULL_ID)
        elif not isinstance(docid, str) or not docid:
            raise _Bad("invalid_id", f"_id must be a non-empty string, got {docid!r}")
        if not self.new_edits and "_rev" not in doc:
            raise _Bad("missing_rev", "new_edits=false needs each document's _rev")
        try:
            return codec.dumps(doc), docid
        except CouchcoreError as exc:
            raise _Bad("invalid", str(exc), docid, doc) from None

    def _strip_error(self, data: bytes, line: int, ordinal: int) -> tuple[bytes | None, str]:
        """A rejects record loaded again: the document without ``_load_error``."""
        doc = codec.loads(data)
        err = doc.pop(ERROR_FIELD, None)
        if not doc and isinstance(err, dict) and isinstance(err.get("text"), str):
            if "\ufffd" in err["text"] and "UTF-8" in str(err.get("reason")):
                # input that was not UTF-8 is shown with U+FFFD for its bad bytes: loaded as it
                # is, those replacement characters would be stored in place of the input
                self._reject(line, None, str(err.get("error") or "invalid_json"),
                             "not valid UTF-8 (shown with U+FFFD for the bytes that were not): mend the text",
                             None, err["text"])
                return None, ""
            text = err["text"].encode("utf-8")  # input that was no document: try it again
            try:
                h = self._head(text)
            except _Bad as bad:
                self._reject(line, None, bad.error, bad.reason, None, err["text"])
                return None, ""
            docid = h.id
            if h.load_error is not _UNSET or docid is None or docid is _UNSET:
                doc = codec.loads(text)
            else:
                return text, docid
        return self._encode(doc, ordinal)

    # -- settling ---------------------------------------------------------------------------
    def _settle(self, seg_no: int, n: int) -> None:
        seg = self._segments[seg_no]
        seg.pending -= n
        if seg.pending or seg_no != self._confirm_seg:
            return
        segments = self._segments
        last = None
        prefix = self._prefix
        while True:
            head = segments.get(self._confirm_seg)
            if head is None or head.pending:
                break
            last = head
            prefix["read"] += head.read
            prefix["written"] += head.written
            prefix["skipped"] += head.skipped
            prefix["rejected"] += head.rejected
            del segments[self._confirm_seg]
            self._confirm_seg += 1
        if last is not None:
            self._confirmed = (last.last_record, last.last_line)
            if self.checkpoint is not None:
                self.checkpoint.confirm(last.last_record, last.last_line, self._counts())

    def _counts(self) -> dict[str, int]:
        """Counts for the checkpoint: those of the segments this run confirmed added to those
        of the runs before (the confirmed prefix's: documents given up on are never in it)."""
        base = self._base_counts
        prefix = self._prefix
        return {name: int(base.get(name, 0)) + prefix[name] for name in _COUNTS}

    def _handle(self, batch: _Batch, result: Any, retry_queue: list[Any], node: Any = None) -> None:
        report = self.report
        self._flying -= 1
        if isinstance(result, BatchOutcome):
            outcome = result
        else:  # the operation failed outright (an unexpected error): send it again
            outcome = BatchOutcome()
            outcome.unsettled = list(range(len(batch.docs)))
            outcome.error = result if isinstance(result, BaseException) else RuntimeError(repr(result))
        report.written += outcome.written
        report.skipped += outcome.skipped
        seg = self._cur_seg = self._segments[batch.seg]
        seg.written += outcome.written
        seg.skipped += outcome.skipped
        docs = batch.docs
        for i, error, reason in outcome.rejected:
            self._reject(docs.line(i), docs.docid(i), error, reason, docs[i])
        gave_up: list[int] = []
        if outcome.unknown:  # a cluster's 202 rows whose leaves could not be read (see _unknown)
            gave_up = self._unknown(docs, outcome.unknown)
        unsettled = outcome.unsettled
        if unsettled and not batch.maybe_written and _maybe_carried_out(outcome.error):
            batch.maybe_written = True
        failure = outcome.error
        handoff = (bool(unsettled) and node is not None and len(self.servers) > 1
                   and (isinstance(failure, HTTPError) and failure.status in UNAVAILABLE
                        or isinstance(failure, TransportError) and not isinstance(failure, HTTPError)))
        if handoff:  # the node is down, unreachable or unavailable: its batch goes to the other nodes
            until, seconds = self._benched.get(id(node), (0.0, 0.0))
            seconds = min(self.max_backoff, max(1.0, seconds * 2))
            self._benched[id(node)] = (time.monotonic() + seconds, seconds)
            if any(self._benched.get(id(s), (0.0, 0.0))[0] <= time.monotonic() for s in self.servers):
                batch.attempt -= 1  # another node is up: not an attempt of the batch's own
        if not handoff and node is not None and id(node) in self._benched and not outcome.error:
            del self._benched[id(node)]  # it answered: back in full service
        if unsettled and batch.attempt >= self.retries:
            exc = outcome.error
            reason = f"gave up after {batch.attempt + 1} attempts: {exc}"
            error = getattr(exc, "error", None) or type(exc).__name__
            if batch.maybe_written:  # not a refusal: say so (see Rejected)
                reason = (f"{reason} ({error}); the server may have written it (an answer was lost or a "
                          f"5xx came back): {self.rerun_advice}")
                error = UNKNOWN_OUTCOME
                report.unknown += len(unsettled)
            for i in unsettled:
                self._reject(docs.line(i), docs.docid(i), str(error), reason, docs[i])
            gave_up = gave_up + unsettled
            # not settled for the checkpoint: its segment is never confirmed, so a resumed load
            # sends these documents again (reconciled: one that was written counts as written)
            self._held += len(unsettled)
            unsettled = []
        keep = None
        if unsettled:
            import random  # here: only a retry needs it (import cost of every start-up)

            again = _Batch(batch.seg, docs.subset(unsettled), batch.attempt + 1, reconcile=True,
                           maybe_written=batch.maybe_written)
            delay = random.uniform(0, min(self.max_backoff, self.backoff * (2 ** batch.attempt)))
            if outcome.retry_after is not None:
                delay = max(delay, min(outcome.retry_after, self.max_backoff * 4))
                self._paused_until = max(self._paused_until, time.monotonic() + delay)
            again.due = time.monotonic() + (0.0 if handoff else delay)
            heapq.heappush(self._orphans if handoff else retry_queue, again)
            report.retried += 1
            keep = set(unsettled)
        # the settled documents' keys leave the in-flight set (in C with the extension: no
        # Python loop per document); a key whose later duplicates wait stays for them
        held = self._flight.forget(docs, keep)
        if held:
            rejected = {r[0] for r in outcome.rejected}.union(gave_up)
            for i in held:
                self._follow(docs, i, i in rejected)
        self._settle(batch.seg, len(docs) - (len(keep) if keep else 0) - len(gave_up))
        if self.progress is not None:
            self.progress(report)

    def _unknown(self, docs: PackedBodies, rows: list[tuple[int, str]]) -> list[int]:
        """Reject the documents of ``rows`` (``(index, reason)``) as :data:`UNKNOWN_OUTCOME`:
        a cluster answered them ``202`` with ``"accepted": true`` (stored on fewer copies
        than its write quorum) and the reads that decide whether another writer's revision
        won failed (:func:`couchcore.protocol.documents._accepted_lost`). Such a document is
        stored, maybe beside a concurrent one, so it is held as a batch given up on is
        (counted in ``report.unknown``, its segment never confirmed: a resumed load sends it
        again, reconciled); returns their indices."""
        held = [i for i, _ in rows]
        for i, reason in rows:
            self._reject(docs.line(i), docs.docid(i), UNKNOWN_OUTCOME, f"{reason}; {self.rerun_advice}", docs[i])
        self.report.unknown += len(held)
        self._held += len(held)
        return held

    def _released(self) -> _Batch | None:
        """A batch of duplicates whose earlier document is settled (one segment; see :meth:`_follow`)."""
        if not self._ready:
            return None
        seg = self._ready[0][4]
        take = [r for r in self._ready if r[4] == seg][: self.batch_size]
        for r in take:
            self._ready.remove(r)
        docs = PackedBodies(0, len(take))
        for key, idlen, data, line, _, _ in take:
            docs.append(data, key, line, idlen, 1)
        return _Batch(seg, docs, reconcile=any(r[5] for r in take))

    # -- driving ------------------------------------------------------------------------------
    def _ops(self, node: "Server", queue: list[Any], sent: dict[int, Any]) -> Iterator[Any]:
        index = 0
        ctx = node._ctx
        while not self._stop.is_set():
            wait = self._paused_until - time.monotonic()
            if wait > 0:  # the server asked for a pause (429): no new request before it ends
                time.sleep(min(wait, self.max_backoff * 4))
            benched = self._benched.get(id(node), (0.0, 0.0))[0] - time.monotonic()
            if benched > 0:  # set aside after a connection failure: the other nodes carry on
                if not self._work_left():
                    return
                self._stop.wait(min(benched, 0.2))
                continue
            with self._lock:
                if queue and queue[0].due <= time.monotonic():
                    batch = heapq.heappop(queue)
                elif self._orphans and self._orphans[0].due <= time.monotonic():
                    batch = heapq.heappop(self._orphans)
                else:
                    batch = self._released()
                    if batch is None:
                        batch = self._fresh()
                        while batch is _EMPTY:
                            batch = self._fresh()
                if batch is None:
                    return
            sent[index] = batch
            index += 1
            with self._lock:
                self._flying += 1
            yield write_batch(ctx, self.name, batch.ids, batch.bodies, batch.reconcile, self.upsert,
                              self.skip_existing, self.new_edits)

    def _drive(self, node: "Server") -> None:
        queue: list[_Batch] = []
        while True:
            sent: dict[int, _Batch] = {}
            for i, result in node._iter_many(self._ops(node, queue, sent), self.concurrency):
                with self._lock:
                    self._handle(sent.pop(i), result, queue, node)
            with self._lock:
                if self._stop.is_set():
                    self.report.unsettled += sum(len(b.docs) for b in queue)
                    if self.servers[0] is node:  # counted once
                        self.report.unsettled += sum(len(b.docs) for b in self._orphans)
                    return
                if queue:
                    wait = queue[0].due - time.monotonic()
                elif self._ready or not self._exhausted:
                    continue
                elif self._orphans or self._flying:  # another node's batch may come this way
                    wait = 0.05
                else:
                    return
            if wait > 0:
                self._stop.wait(wait)

    def _work_left(self) -> bool:
        """Whether any batch may still need sending (input left, batches queued or in flight)."""
        with self._lock:
            return bool(not self._exhausted or self._ready or self._orphans or self._flying)

    def run(self) -> LoadReport:
        """Run the load; returns the :class:`LoadReport`. ``KeyboardInterrupt`` is
        re-raised after the checkpoint (if any) is saved. When the input raises, what it
        gave before is loaded (batches in flight finish, retries included), the checkpoint
        saved (not complete) and :class:`LoadInputError` raised: ``.report`` is this
        report, the input's exception its ``__cause__``."""
        started = time.perf_counter()
        try:
            if len(self.servers) == 1:
                self._drive(self.servers[0])
            else:
                errors: list[BaseException] = []

                def worker(node: "Server") -> None:
                    try:
                        self._drive(node)
                    except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                        errors.append(exc)
                        self._stop.set()

                threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in self.servers]
                for t in threads:
                    t.start()
                try:
                    for t in threads:
                        while t.is_alive():
                            t.join(0.2)
                except KeyboardInterrupt:
                    self._stop.set()
                    for t in threads:
                        t.join()
                    raise
                if errors:
                    raise errors[0]
        except KeyboardInterrupt:
            self.report.interrupted = True
            raise
        finally:
            self._finish(started)
        if self._input_error is not None:
            raise LoadInputError(self.report, self._input_error) from self._input_error
        return self.report

    def _finish(self, started: float) -> None:
        report = self.report
        report.seconds = time.perf_counter() - started
        if self._stop.is_set():
            report.interrupted = True
        with self._lock:
            report.unsettled = max(0, report.read - report.written - report.skipped - report.rejected)
        if self.checkpoint is not None:
            cp = self.checkpoint
            cp.records, cp.line = self._confirmed
            cp.counts = self._counts()
            cp.complete = (self._exhausted and not report.unsettled and not report.interrupted
                           and self._input_error is None and not self._held)
            cp.save(force=True)


_EMPTY = _Batch(-1, PackedBodies())
#: the counts a checkpoint keeps (and LoadReport.earlier holds)
_COUNTS = ("read", "written", "skipped", "rejected", "unknown")


class LoadInputError(CouchcoreError):
    """The input of a load raised: what it gave before was loaded (or rejected) and
    ``report`` (a :class:`LoadReport`) says so; the input's exception is ``__cause__``
    (and ``error``). A :class:`Checkpoint` given to the load confirms what was settled:
    a run resumed with input that goes on from there sends nothing twice.

    It survives ``pickle`` (a load in a ``multiprocessing`` worker) with its
    ``report`` and ``error``; an ``error`` that pickle cannot carry (or not rebuild) comes
    back as a :class:`RuntimeError` of its ``repr()``."""

    def __init__(self, report: LoadReport, error: BaseException) -> None:
        super().__init__(f"the input raised {type(error).__name__}: {error} (after {report.read:,} records; "
                         f"{report})")
        self.report = report
        self.error = error

    def __reduce__(self) -> tuple[Any, ...]:
        # the input's exception is the caller's own: it travels pickled apart, so one pickle
        # cannot carry (a lock in it) or rebuild (an __init__ that takes other arguments than
        # its args) never makes this one fail to unpickle (a Pool's get() would wait for ever)
        import pickle

        try:
            error: bytes | None = pickle.dumps(self.error)
        except Exception:  # noqa: BLE001 - any failure of the caller's object: its repr goes instead
            error = None
        state = {k: v for k, v in self.__dict__.items() if k != "error"}
        return (_rebuild_load_input_error, (type(self), self.args, error, repr(self.error)), state)


def _rebuild_load_input_error(cls: type[LoadInputError], args: tuple[Any, ...], error: bytes | None,
                              error_repr: str) -> LoadInputError:
    import pickle

    exc = cls.__new__(cls, *args)
    exc.args = args
    cause: BaseException | None = None
    if error is not None:
        try:
            cause = pickle.loads(error)
        except Exception:  # noqa: BLE001 - as above
            cause = None
    exc.error = exc.__cause__ = cause if isinstance(cause, BaseException) else RuntimeError(error_repr)
    return exc


def _maybe_carried_out(exc: BaseException | None) -> bool:
    """May the server have carried out a request that ended in ``exc`` (left unsettled)?
    Not when no connection was made (:class:`ConnectError`) or when the server declined
    it (``429``, ``503``); anything else (an answer lost or unreadable, ``500``, ``502``,
    ``504``: on a cluster some shard copies may be written) may have been."""
    if isinstance(exc, ConnectError):
        return False
    return not (isinstance(exc, HTTPError) and exc.status in (429, 503))


def _new_prefix() -> str:
    """20 random hex characters for generated ids, ending in a letter: with the 12-digit
    counter after it an id never holds a run of 19+ digits, which would make
    :func:`couchcore.codec.loads` read the whole ``_bulk_docs`` answer with the slow engine
    (it keeps integers beyond 64 bits exact that way). From ``os.urandom``, as ``uuid.uuid4``
    draws them (``uuid`` and the ``platform`` it imports: ~11M instructions of start-up)."""
    rand = os.urandom(11)
    return rand.hex()[:19] + "abcdef"[rand[10] % 6]


def _utf8(text: str) -> bytes:
    """``text`` as UTF-8 (a lone surrogate, which an escape in JSON text may spell, as surrogatepass writes it)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _splice_id(data: bytes, docid: str) -> bytes:
    """JSON object text ``data`` with ``"_id":docid`` added after its opening brace."""
    pos = data.find(b"{")
    rest = data[pos + 1:]
    key = b'{"_id":' + (b'"%s"' % docid.encode() if docid.isalnum() and docid.isascii() else codec.dumps(docid))
    first = rest[:1]
    if first == b"}" or (first in (b" ", b"\t", b"\r", b"\n") and rest.lstrip(_WS)[:1] == b"}"):
        return key + rest.lstrip(_WS)
    return key + b"," + rest


def _text(data: Any) -> str:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data).decode("utf-8", "replace").rstrip("\r\n")
    if isinstance(data, BaseException):
        return str(getattr(data, "text", "")) or str(data)
    try:
        return codec.dumps(data).decode("utf-8")
    except CouchcoreError:
        return repr(data)


def load(
    db: "Database",
    docs: Iterable[Any],
    batch_size: int = 1000,
    concurrency: int = 4,
    *,
    upsert: bool = False,
    new_edits: bool = True,
    skip_existing: bool = False,
    id_field: str | None = None,
    retries: int = 5,
    backoff: float = 0.5,
    max_backoff: float = 30.0,
    nodes: Sequence["Server"] = (),
    checkpoint: Checkpoint | None = None,
    on_reject: Callable[[Rejected], Any] | None = None,
    progress: Callable[[LoadReport], Any] | None = None,
) -> LoadReport:
    """Write ``docs`` to ``db`` (a sync :class:`~couchcore.Database`); returns a :class:`LoadReport`.

    ``docs`` is any iterable, read lazily, of :data:`Item`: dicts (encoded once; a dict
    without ``_id`` gets one, in place), ``bytes`` holding one JSON object (sent as it
    is once validated; ``_id`` added to the text if missing), or ``(line, doc)`` pairs;
    an exception as ``doc`` is input that is no document (rejected with its message).
    ``"_id": null`` is rejected (``invalid_id``), as CouchDB refuses it (``400
    illegal_docid``), not given an id that a second run of the same load would add again
    (unlike :meth:`Database.save`, where ``None`` means "no id yet").
    ``docs`` may also be a :class:`JsonLines` (a binary stream of JSON Lines): the same
    load as its ``(line, bytes)`` items, scanned many lines per call.
    ``batch_size`` documents go in each ``_bulk_docs`` request, ``concurrency`` requests
    are in flight at once (per node).

    * ``upsert``: overwrite current revisions (default: create only; an existing id is a
      ``conflict``, unless ``skip_existing`` and its content is the same: then skipped).
      Documents whose content is already stored are not written again; a ``_rev`` of an
      id the database lacks (or has deleted) is dropped, the document created; one
      carrying ``_revisions`` (a line of ``couchcore dump``, which CouchDB reads as the
      revision being updated) is rejected as a ``conflict`` saying so. Without
      ``upsert`` a ``_local/`` document is rejected (``local_document``), never sent:
      CouchDB does no conflict detection on local documents, so create-only would
      overwrite one that exists (https://docs.couchdb.org/en/stable/api/local.html).
    * ``new_edits=False``: replicate revisions as they are (each document needs ``_id``
      and ``_rev``).
    * ``id_field``: a document without ``_id`` takes the value of this field as its id (a
      string, or an integer written in decimal); one without the field, or with ``null``
      or ``""`` there, is rejected (``invalid_id``), never given a random id that a second
      run of the same load would add again.
    * ``retries``, ``backoff``, ``max_backoff``: a batch that meets ``429``, ``5xx`` or a
      connection failure is sent again after ``uniform(0, min(max_backoff, backoff *
      2**attempt))`` seconds (at least ``Retry-After``), at most ``retries`` times; then
      its documents are rejected with the last error.
    * ``nodes``: more :class:`~couchcore.Server` objects of the same cluster; every node
      keeps ``concurrency`` batches in flight, taking the next batch when it has room. A
      batch that meets a connection failure (``TransportError``: the node is down or
      unreachable) or a ``502``/``503``/``504`` answer (the node, or the gateway in front
      of it, is unavailable) goes to the other nodes at once, without counting as an
      attempt while one of them is up, and that node is set aside (1 s, doubling up to
      ``max_backoff``) until it answers again; any other answer is retried as above.
    * ``checkpoint``: a :class:`Checkpoint` (``Checkpoint.open(path)``; a path is refused
      with :class:`~couchcore.InvalidInput`); items it confirms are skipped, progress is
      recorded in it. A batch given up on after the retries is not confirmed: a load
      resumed from the checkpoint sends it again (reconciled, in every mode: see
      :class:`Checkpoint`); the report's ``earlier`` holds the counts the checkpoint
      recorded, and ``ok`` is false when an earlier run rejected documents for good.
    * ``on_reject(rejected)`` is called for each rejected document (else they are kept
      in ``report.failures``); ``progress(report)`` after each batch.

    Raises :class:`~couchcore.InvalidInput` for bad arguments (before reading input),
    ``checkpoint`` given as a path included.
    Errors of single documents never raise: they are rejected. A batch given up on after
    the retries is rejected with its last error when the server surely did not write it
    (no connection, ``429``, ``503``), else with :data:`UNKNOWN_OUTCOME` (counted in
    ``report.unknown`` too): it may have been written; its reason says how to settle it
    for the load's mode (see :class:`Rejected`). On a CouchDB cluster a ``202`` answer's
    ``"accepted": true`` rows are checked (the reads and the withdrawal go to the node that
    answered, within the batch's operation, as ``save(list)`` does): a row that lost to
    a concurrent write is a ``conflict`` (or ``stored_as_conflict``, or
    :data:`UNKNOWN_OUTCOME` when its fate could not be read), never counted written
    (https://docs.couchdb.org/en/stable/cluster/theory.html). A ``KeyboardInterrupt``
    stops the load (the checkpoint is saved) and is raised again. When ``docs`` raises
    an exception, the documents it gave before are loaded (batches in flight finish,
    retries included), the checkpoint is saved (as not complete) and
    :class:`LoadInputError` is raised, its ``report`` the :class:`LoadReport` of the
    load, the input's exception its ``__cause__``.
    """
    return Loader(db, docs, batch_size, concurrency, upsert=upsert, new_edits=new_edits,
                  skip_existing=skip_existing, id_field=id_field, retries=retries, backoff=backoff,
                  max_backoff=max_backoff, nodes=nodes, checkpoint=checkpoint, on_reject=on_reject,
                  progress=progress).run()
