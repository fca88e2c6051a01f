"""The bulk loader's JSON Lines scanner: :func:`scan_jsonl` settles many lines per call.

Two implementations share one signature: the Cython ``couchcore_ext._scan.scan_jsonl``
(a C validator of each line, used when the extension is built) and the pure-Python
:func:`scan_jsonl_py` here, which checks each line with the head decoder it is given
(:func:`couchcore.codec.document_head_decoder`). Both stop before the first line they do
not settle and leave it to the caller's general path; the C scanner is the more
conservative of the two (it also leaves escaped keys and ids, duplicate ``_id`` members,
very deep nesting and very long numbers to the caller), so the two may stop at
different lines, but a line settled by either is settled the same way (same id, same
body) and the load built from them is the same. ``COUCHCORE_SCAN=python`` forces the
pure-Python twin.

``scan_jsonl(buf, pos, eof, max_lines, ordinal, line, flight, need_rev, gen_ids,
id_prefix, id_field, decode, docs) -> (pos, count, blanks, slow_end)``: see
``couchcore_ext/_scan.pyx`` for the contract. The settled documents go into ``docs`` (a
:class:`couchcore.protocol.bulk.PackedBodies`: bodies, keys, lines), their keys into the
in-flight set ``flight`` (:class:`Flight`: a C hash set with the extension, else
:class:`FlightPy`), so the loader makes no Python object per document; it looks at a
document one by one only when it comes back with an error.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from .errors import CouchcoreError

__all__ = ["scan_jsonl", "scan_jsonl_py", "Flight", "FlightPy", "count_ok", "count_ok_py", "pack", "seal", "ENGINE",
           "bulk_ok", "plain_ids"]

_WS = b" \t\r\n"
_WS_CLOSE = frozenset(b" \t\r\n}")
_IN_FLIGHT = 1  # a document's flag: its key is in the in-flight set


class FlightPy:
    """The pure-Python :class:`Flight` (same methods and results): the keys of the documents
    in flight, each with its input line (``>= 1``) and whether it is *held* (later
    duplicates wait for it to settle)."""

    __slots__ = ("_d",)

    def __init__(self) -> None:
        self._d: dict[bytes, list[Any]] = {}  # key -> [line, held]

    def __len__(self) -> int:
        return len(self._d)

    def add(self, key: bytes, line: int) -> int:
        """Add ``key`` with its input ``line``; returns 0, or the line it is in flight with
        already (then it stays as it was)."""
        if line < 1:
            raise ValueError("line must be positive")
        entry = self._d.get(key)
        if entry is not None:
            return int(entry[0])
        self._d[key] = [line, False]
        return 0

    def get(self, key: bytes) -> int:
        """The line ``key`` is in flight with, or 0."""
        entry = self._d.get(key)
        return int(entry[0]) if entry is not None else 0

    def held(self, key: bytes) -> bool:
        """Whether ``key`` (in flight: else ``KeyError``) is held."""
        return bool(self._d[key][1])

    def hold(self, key: bytes) -> None:
        """Mark ``key`` (in flight: else ``KeyError``) as held."""
        self._d[key][1] = True

    def release(self, key: bytes, line: int, held: bool) -> None:
        """``key`` (in flight: else ``KeyError``) now belongs to the document of ``line``."""
        entry = self._d[key]
        entry[0] = line
        entry[1] = bool(held)

    def discard(self, key: bytes) -> None:
        """Remove ``key`` (``KeyError`` if it is not in flight)."""
        del self._d[key]

    def forget(self, docs: Any, skip: Any = None) -> list[int]:
        """Remove the keys of the settled documents of ``docs`` (a ``PackedBodies``) but those
        at the indices in ``skip``; a held key stays and its document's index is returned."""
        held = []
        d = self._d
        for i in range(len(docs)):
            _, key, _, flags = docs.mark(i)
            if flags & _IN_FLIGHT and (skip is None or i not in skip):
                if d[key][1]:
                    held.append(i)
                else:
                    del d[key]
        return held


def scan_jsonl_py(buf: bytes, pos: int, eof: bool, max_lines: int, ordinal: int, line: int,
                  flight: FlightPy | None, need_rev: bool, gen_ids: bool, id_prefix: bytes,
                  id_field: bytes | None, decode: Callable[[bytes], Any], docs: Any) -> tuple[int, int, int, int]:
    """The pure-Python :func:`scan_jsonl` (same arguments and result)."""
    n = len(buf)
    count = blanks = 0
    absent = _absent()
    id_head = b'{"_id":"' + id_prefix + b'%012x",'
    append = docs.append
    while count < max_lines and pos < n:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            if not eof:
                break
            end = n
        else:
            end = nl + 1
        data = buf[pos:end]
        try:
            h = decode(data)
        except CouchcoreError:
            if data.strip(_WS):
                return pos, count, blanks, end
            count += 1
            blanks += 1
            ordinal += 1
            line += 1
            pos = end
            continue
        docid = h.id
        if h.load_error is not absent:
            return pos, count, blanks, end
        if docid.__class__ is str and docid and not (need_rev and h.rev is absent):
            key = docid.encode("utf-8", "surrogatepass")
            idlen = len(key)
            if need_rev:
                key += b"\0" + h.rev.encode("utf-8", "surrogatepass")
            flags = 0
            if flight is not None:
                if flight.add(key, line + 1):
                    return pos, count, blanks, end
                flags = _IN_FLIGHT
            append(data, key, line + 1, idlen, flags)
        elif docid is absent and gen_ids and id_field is None and data[0] == 123 and data[1] not in _WS_CLOSE:
            key = id_prefix + b"%012x" % (ordinal + 1)
            append(id_head % (ordinal + 1) + data[1:], key, line + 1, len(key), 0)
        else:
            return pos, count, blanks, end
        count += 1
        ordinal += 1
        line += 1
        pos = end
    return pos, count, blanks, -1


def count_ok_py(raw: bytes) -> tuple[int, bool]:
    """``(n, error)`` for a ``_bulk_docs`` answer: how many times ``"ok":true`` occurs and
    whether ``"error"`` occurs (one pass in C with the extension)."""
    if b'"error"' in raw:
        return raw.split(b'"error"', 1)[0].count(b'"ok":true'), True
    return raw.count(b'"ok":true'), False


def _absent() -> Any:
    from .codec import ABSENT

    return ABSENT


def _pick() -> tuple[Any, Any, Any, Any, Any, str]:
    if os.environ.get("COUCHCORE_SCAN", "").lower() != "python":
        try:
            from couchcore_ext._scan import Flight as cy_flight
            from couchcore_ext._scan import count_ok as cy_count_ok
            from couchcore_ext._scan import pack as cy_pack
            from couchcore_ext._scan import scan_jsonl as cy_scan
            from couchcore_ext._scan import seal as cy_seal
        except ImportError:
            pass
        else:
            return cy_scan, cy_flight, cy_count_ok, cy_pack, cy_seal, "cython"
    return scan_jsonl_py, FlightPy, count_ok_py, None, None, "python"


#: the implementations in use and their name (``"cython"`` or ``"python"``); ``Flight`` is the
#: in-flight set's class (the C one with the extension, :class:`FlightPy` otherwise); ``pack``
#: appends documents and their marks to a ``PackedBodies`` in C, ``seal`` makes its request body
#: of the body it was written into (no copy; both ``None`` without the extension)
scan_jsonl: Callable[..., tuple[int, int, int, int]]
Flight: Any
count_ok: Callable[[bytes], tuple[int, bool]]
pack: Callable[..., None] | None
seal: Callable[[Any, bytes], bytes] | None
scan_jsonl, Flight, count_ok, pack, seal, ENGINE = _pick()


def _pick_save() -> tuple[Any, Any]:
    if ENGINE == "cython":
        try:
            from couchcore_ext._scan import bulk_ok as cy_bulk_ok
            from couchcore_ext._scan import plain_ids as cy_plain_ids
        except ImportError:  # (an extension built before these were added)
            pass
        else:
            return cy_bulk_ok, cy_plain_ids
    return None, None


#: ``save(list)``'s fast paths in C (``None`` without the extension or with ``COUCHCORE_SCAN=python``:
#: then ``couchcore.protocol.documents`` takes its Python path alone): ``bulk_ok(docs, raw, pending,
#: resolved, settled, failed_here)`` records a ``_bulk_docs`` answer of the common shape (every
#: document ``{"ok":true,"id":...,"rev":...}`` in order) without decoding it, or changes nothing
#: and returns ``False``; ``plain_ids(docs, Document)`` is the index of the first document that is
#: not a ``dict``/``Document`` with a plain ``str`` ``_id`` (``len(docs)`` when all are)
bulk_ok: Callable[[list[Any], bytes | None, Any, Any, Any, Any], bool] | None
plain_ids: Callable[[list[Any], type], int] | None
bulk_ok, plain_ids = _pick_save()
