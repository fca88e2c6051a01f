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

``scan_jsonl(buf, pos, eof, max_lines, ordinal, line, inflight, need_rev, gen_ids,
id_prefix, id_field, decode, ids, bodies, lines) -> (pos, count, blanks, slow_end)``:
see ``couchcore_ext/_scan.pyx`` for the contract.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from .errors import CouchcoreError

__all__ = ["scan_jsonl", "scan_jsonl_py", "forget", "forget_py", "count_ok", "count_ok_py", "ENGINE"]

_WS = b" \t\r\n"
_WS_CLOSE = frozenset(b" \t\r\n}")


def scan_jsonl_py(buf: bytes, pos: int, eof: bool, max_lines: int, ordinal: int, line: int,
                  inflight: dict[str, Any] | None, need_rev: bool, gen_ids: bool, id_prefix: bytes,
                  id_field: bytes | None, decode: Callable[[bytes], Any],
                  ids: list[Any], bodies: Any, lines: list[Any]) -> tuple[int, int, int, int]:
    """The pure-Python :func:`scan_jsonl` (same arguments and result)."""
    if bodies.__class__ is list:
        return _scan_py(buf, pos, eof, max_lines, ordinal, line, inflight, need_rev, gen_ids, id_prefix, id_field,
                        decode, ids, bodies, lines)
    listed: list[Any] = []  # packed bodies (couchcore.protocol.bulk.PackedBodies): added at once
    try:
        return _scan_py(buf, pos, eof, max_lines, ordinal, line, inflight, need_rev, gen_ids, id_prefix, id_field,
                        decode, ids, listed, lines)
    finally:
        bodies.extend(listed)


def _scan_py(buf: bytes, pos: int, eof: bool, max_lines: int, ordinal: int, line: int,
             inflight: dict[str, Any] | None, need_rev: bool, gen_ids: bool, id_prefix: bytes,
             id_field: bytes | None, decode: Callable[[bytes], Any],
             ids: list[Any], bodies: list[Any], lines: list[Any]) -> tuple[int, int, int, int]:
    n = len(buf)
    count = blanks = 0
    absent = _absent()
    id_head = b'{"_id":"' + id_prefix + b'%012x",'
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
            if inflight is not None:
                if docid in inflight:
                    return pos, count, blanks, end
                inflight[docid] = line + 1
            ids.append(docid)
            bodies.append(data)
        elif docid is absent and gen_ids and id_field is None and data[0] == 123 and data[1] not in _WS_CLOSE:
            ids.append(ordinal + 1)
            bodies.append(id_head % (ordinal + 1) + data[1:])
        else:
            return pos, count, blanks, end
        lines.append(line + 1)
        count += 1
        ordinal += 1
        line += 1
        pos = end
    return pos, count, blanks, -1


def forget_py(inflight: dict[str, Any], ids: list[Any]) -> None:
    """Delete the ``str`` ids of ``ids`` from ``inflight`` (settled documents; ints are
    generated ids, never in it). A missing id raises ``KeyError``."""
    for docid in ids:
        if docid.__class__ is str:
            del inflight[docid]


def count_ok_py(raw: bytes) -> tuple[int, bool]:
    """``(n, error)`` for a ``_bulk_docs`` answer: how many times ``"ok":true`` occurs and
    whether ``"error"`` occurs (one pass in C with the extension)."""
    if b'"error"' in raw:
        return raw.split(b'"error"', 1)[0].count(b'"ok":true'), True
    return raw.count(b'"ok":true'), False


def _absent() -> Any:
    from .codec import ABSENT

    return ABSENT


def _pick() -> tuple[Any, Any, Any, str]:
    if os.environ.get("COUCHCORE_SCAN", "").lower() != "python":
        try:
            from couchcore_ext._scan import count_ok as cy_count_ok  # type: ignore[import-not-found]
            from couchcore_ext._scan import forget as cy_forget
            from couchcore_ext._scan import scan_jsonl as cy_scan
        except ImportError:
            pass
        else:
            return cy_scan, cy_forget, cy_count_ok, "cython"
    return scan_jsonl_py, forget_py, count_ok_py, "python"


#: the implementations in use and their name (``"cython"`` or ``"python"``)
scan_jsonl: Callable[..., tuple[int, int, int, int]]
forget: Callable[[dict[str, Any], list[Any]], None]
count_ok: Callable[[bytes], tuple[int, bool]]
scan_jsonl, forget, count_ok, ENGINE = _pick()
