"""Incremental parser for CouchDB's row-streaming responses.

A parser is made for one response *shape* and fed the body's bytes as they arrive::

    p = make_parser("view")
    for chunk in body_chunks:
        for row in p.feed(chunk):
            ...
    rest = p.close()         # raises ParseError if the body was truncated/malformed
    p.meta                   # {"total_rows": ..., "offset": ..., ...}

Shapes and the items they produce:

``"view"``
    views and ``_all_docs``: ``{"total_rows":N,"offset":M,"rows":[...]}`` (keys in any order,
    metadata may follow the rows or be absent).  Items are :class:`~couchcore.models.Row`;
    ``Row.doc`` is a :class:`~couchcore.models.Document` (``None`` when absent or null).
    A ``keys=`` row that matched nothing, ``{"key":k,"error":"not_found"}``, becomes
    ``Row(id=None, key=k, error="not_found")``.  A row that carries ``error`` and no
    ``value`` gets its ``reason`` (if any) as ``value``, so ``{"error":e,"reason":r}`` rows
    are not lost: ``Row(error=e, value=r)`` (the parsers yield every such row; the
    ``ViewResult`` reading them raises ``ServerError`` at one whose error is not
    ``"not_found"``, e.g. CouchDB's ``reduce_overflow_error``).  Other keys of a row are ignored.
``"changes"``
    normal/longpoll ``_changes``: ``{"results":[...],"last_seq":..,"pending":..}``.  Items
    are the change dicts, their ``doc`` (when present and not null) a ``Document``.
``"continuous"``
    newline-delimited JSON.  Blank lines are heartbeats.  A line with ``last_seq`` goes
    to ``meta`` and sets ``done``; a line with ``error`` and no ``seq`` goes to ``meta``.
    Other lines are change dicts as for ``"changes"``.  At ``close()`` a non-blank tail
    without its newline is accepted if it is one complete JSON object, else ParseError.
``"bulk_get"``
    ``{"results":[{"id":..,"docs":[{"ok":{..}}|{"error":{..}}]}]}``.  Items are the result
    entries (dicts); every ``ok`` document is a ``Document``.
``"find"``
    ``{"docs":[...],"bookmark":..,"warning":..}``.  Items are ``Document`` objects.

Everything at the top level of the body other than the row array goes into ``meta`` as
soon as it is parsed (including a server error body ``{"error":..,"reason":..}``, which the
parser does not raise for).  A row array element (or a continuous line) that is not a JSON
object, and any malformed, truncated or non-UTF-8 input, or non-whitespace after the
top-level value, raises :class:`~couchcore.errors.ParseError`; after that the parser is
unusable (every further call raises).  ``NaN``/``Infinity`` are rejected.  Parsed values equal
what ``simplejson.loads`` returns for the same JSON.  Like ``simplejson``, both parsers
refuse absurdly deep nesting with ParseError: the Cython parser beyond 1000 levels, the
twin where the ``json`` scanner hits the interpreter's recursion limit (a little below
1000 levels on Python 3.10-3.11, depending on the caller's stack depth; from 3.12 the
interpreter's C recursion limit, several thousand levels).  A leading UTF-8 BOM is rejected.
For malformed input both raise ParseError, but not necessarily from the same call: the
Cython parser notices most errors at the offending byte, the twin sometimes only when
the enclosing value is complete (or at ``close()``).

Two implementations share this interface: the Cython ``couchcore_ext._rows.RowParser``
and the pure-Python :class:`PyRowParser` below.  :data:`BACKEND` names the one
:func:`make_parser` uses by default; the environment variable
``COUCHCORE_ROWS_BACKEND=python|cython`` forces a choice at import time (``python`` also
keeps ``couchcore.models.Row`` the pure-Python class instead of the extension type
``couchcore_ext._row.Row``, which both parsers otherwise make their rows of).

Both implementations switch CPython's cyclic garbage collector off for the duration of a
``feed()``/``close()`` call (they allocate many containers, none of them cyclic) and restore
the caller's setting before returning.
"""

from __future__ import annotations

import codecs
import gc
import json
import os
import re
from typing import Any, Callable, Protocol

from .errors import ParseError
from .models import Document, Row

__all__ = ["BACKEND", "SHAPES", "make_parser", "PyRowParser", "ParseError", "RowParser"]


class RowParser(Protocol):
    """What both parser twins (:class:`PyRowParser`, ``couchcore_ext._rows.RowParser``) offer."""

    meta: dict[str, Any]
    done: bool

    def feed(self, chunk: bytes) -> list[Any]: ...
    def close(self) -> list[Any]: ...

SHAPES = ("view", "changes", "continuous", "bulk_get", "find")

#: Name of the top-level key holding the row array, per shape.
ROWS_KEY = {"view": "rows", "changes": "results", "bulk_get": "results", "find": "docs"}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# strict=True (no raw control characters in strings); NaN/Infinity rejected.
_decoder = json.JSONDecoder(parse_constant=_reject_constant)
_scan: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]
_decode = _decoder.decode

# (these two patterns match everywhere, possibly empty: never None)
_WS: Callable[[str, int], re.Match[str]] = re.compile(r"[ \t\n\r]*").match  # type: ignore[assignment]
_NUMCHARS: Callable[[str, int], re.Match[str]] = re.compile(r"[-+.eE0-9]*").match  # type: ignore[assignment]
_SCALAR_END = re.compile(r"[^-+.0-9a-zA-Z]").search  # first char that ends a number/literal
_STRUCT = re.compile(r'[{}\[\]"]').search
_STR_SPECIAL = re.compile(r'["\\]').search
_JSON_WS = " \t\n\r"

# parser states
_START, _OBJ_FIRST, _OBJ_KEY, _COLON, _VALUE, _AFTER_VALUE, _END = range(7)
_ROWS_FIRST, _ROWS_NEXT, _ROWS_AFTER = 7, 8, 9
_LINES = 10


#: Benchmark hook: pause the cyclic GC during feed()/close() (see the module docstring).
_PAUSE_GC = True


def _fail(msg: str, cause: BaseException | None = None) -> ParseError:
    if isinstance(cause, RecursionError):  # too deep, not "malformed" (the Cython
        # parser says "JSON nested deeper than 1000 levels"; json's scanner stops about there)
        snippet = msg.split(": ", 1)[1] if ": " in msg else msg.partition(" at ")[2]
        msg = ("JSON nested deeper than about 1000 levels (the pure-Python parser stops at the interpreter's "
               f"recursion limit: couchcore cannot read it): {snippet}")
    err = ParseError(msg)
    if cause is not None:
        err.__cause__ = cause
    return err


# -- per-shape conversion of a parsed array element into an item --------------------------


def _view_items(lst: list[Any]) -> list[Any]:
    out: list[Any] = []
    app = out.append
    for d in lst:
        if d.__class__ is not dict:
            raise _fail(f"view row is not a JSON object: {d!r:.80}")
        g = d.get
        doc = g("doc")
        if doc is not None and doc.__class__ is dict:
            doc = Document(doc)
        err = g("error")
        if err is None:
            app(Row(g("id"), g("key"), g("value"), doc))
        else:
            app(Row(g("id"), g("key"), g("value") if "value" in d else g("reason"), doc, err))
    return out


def _change_items(lst: list[Any]) -> list[Any]:
    for d in lst:
        if d.__class__ is not dict:
            raise _fail(f"change is not a JSON object: {d!r:.80}")
        doc = d.get("doc")
        if doc is not None and doc.__class__ is dict:
            d["doc"] = Document(doc)
    return lst


def _bulk_get_items(lst: list[Any]) -> list[Any]:
    for d in lst:
        if d.__class__ is not dict:
            raise _fail(f"_bulk_get result is not a JSON object: {d!r:.80}")
        docs = d.get("docs")
        if docs.__class__ is list:
            for entry in docs:
                if entry.__class__ is dict:
                    ok = entry.get("ok")
                    if ok.__class__ is dict:
                        entry["ok"] = Document(ok)
    return lst


def _find_items(lst: list[Any]) -> list[Any]:
    out: list[Any] = []
    app = out.append
    for d in lst:
        if d.__class__ is not dict:
            raise _fail(f"_find doc is not a JSON object: {d!r:.80}")
        app(Document(d))
    return out


_CONVERT = {
    "view": _view_items,
    "changes": _change_items,
    "continuous": _change_items,
    "bulk_get": _bulk_get_items,
    "find": _find_items,
}


class PyRowParser:
    """Pure-Python incremental row parser (same interface as the Cython ``RowParser``).

    Strategy: the body is decoded with an incremental UTF-8 decoder; complete array
    elements are decoded by the C scanner of the stdlib ``json`` module — in one call for
    all complete rows of a chunk when the last ``},`` of the chunk is a row boundary (the
    parse of ``"[" + rows + "]"`` succeeds only then), else one call per row.  A value
    that is not complete yet is kept as a list of pieces while a small resumable scanner
    (strings, escapes, nesting) watches only the new text for its end, so a huge row fed
    in tiny chunks costs linear time, and memory never holds more than the unfinished
    value plus one chunk.
    """

    def __init__(self, shape: str) -> None:
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
        self.shape = shape
        self.meta: dict[str, Any] = {}
        self.done = False
        self._rows_key = ROWS_KEY.get(shape)
        self._convert = _CONVERT[shape]
        self._udec = codecs.getincrementaldecoder("utf-8")("strict")
        self._buf = ""  # unconsumed text
        self._pos = 0
        self._state = _LINES if shape == "continuous" else _START
        self._key: str | None = None
        # incomplete value being collected
        self._pieces: list[Any] | None = None
        self._t_depth = 0
        self._t_str = False
        self._t_esc = False
        self._t_scalar = False
        self._broken: ParseError | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<PyRowParser shape={self.shape!r} done={self.done}>"

    # -- public API -------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[Any]:
        """Feed the next bytes of the body; return the items they complete."""
        self._check_usable()
        if not chunk:
            return []
        gc_was = _PAUSE_GC and gc.isenabled()
        if gc_was:
            gc.disable()
        try:
            try:
                text = self._udec.decode(chunk)
            except UnicodeDecodeError as e:
                raise _fail(f"invalid UTF-8 in response body: {e}", e) from None
            except TypeError as e:
                raise TypeError(f"feed() needs bytes, not {type(chunk).__name__}") from e
            if not text:
                return []
            if self._state == _LINES:
                return self._lines(text)
            return self._feed_text(text)
        except ParseError as e:
            self._broken = e
            raise
        finally:
            if gc_was:
                gc.enable()

    def close(self) -> list[Any]:
        """Signal the end of the body; return the last items or raise ParseError."""
        self._check_usable()
        self._closed = True
        gc_was = _PAUSE_GC and gc.isenabled()
        if gc_was:
            gc.disable()
        try:
            try:
                text = self._udec.decode(b"", True)
            except UnicodeDecodeError as e:
                raise _fail(f"response body ends inside a UTF-8 sequence: {e}", e) from None
            if self._state == _LINES:
                out = self._lines(text) if text else []
                tail = "".join(self._pieces) if self._pieces else ""
                self._pieces = None
                tail = tail.strip(_JSON_WS)
                if tail:
                    out.extend(self._line_items([tail]))
                return out
            out = self._feed_text(text) if text else []
            if self._pieces is not None:
                raise _fail("response body truncated inside a value")
            if not self.done:
                raise _fail("response body truncated (top-level JSON value not complete)")
            return out
        except ParseError as e:
            self._broken = e
            raise
        finally:
            if gc_was:
                gc.enable()

    def _check_usable(self) -> None:
        if self._broken is not None:
            raise ParseError(f"parser unusable after an earlier error: {self._broken}")
        if self._closed:
            raise ParseError("parser already closed")

    # -- continuous (newline-delimited) -----------------------------------------------

    def _lines(self, text: str) -> list[Any]:
        nl = text.rfind("\n")
        if nl < 0:
            if self._pieces is None:
                self._pieces = [text]
            else:
                self._pieces.append(text)
            return []
        head = text[:nl]
        if self._pieces:
            self._pieces.append(head)
            head = "".join(self._pieces)
        rest = text[nl + 1 :]
        self._pieces = [rest] if rest else None
        return self._line_items(head.split("\n"))

    def _line_items(self, lines: list[Any]) -> list[Any]:
        out = []
        meta = self.meta
        for line in lines:
            line = line.strip(_JSON_WS)
            if not line:
                continue  # heartbeat
            try:
                d, end = _scan(line, 0)
            except (StopIteration, ValueError, RecursionError) as e:
                raise _fail(f"malformed line in continuous feed: {line!r:.100}", e) from None
            if end != len(line):
                raise _fail(f"trailing data in continuous feed line: {line!r:.100}")
            if d.__class__ is not dict:
                raise _fail(f"continuous feed line is not a JSON object: {line!r:.100}")
            if self.done:
                raise _fail(f"data after the last_seq line: {line!r:.100}")
            doc = d.get("doc")
            if doc is not None and doc.__class__ is dict:
                d["doc"] = Document(doc)
            if "last_seq" in d:
                meta.update(d)
                self.done = True
            elif "error" in d and "seq" not in d:
                meta.update(d)
            else:
                out.append(d)
        return out

    # -- object-shaped bodies -----------------------------------------------------------

    def _feed_text(self, text: str) -> list[Any]:
        if self._pieces is not None:
            end = self._track(text, 0)
            self._pieces.append(text)
            if end < 0:
                return []
            buf = "".join(self._pieces)
            self._pieces = None
        elif self._pos < len(self._buf):
            buf = self._buf[self._pos :] + text
        else:
            buf = text
        self._buf = buf
        self._pos = 0
        return self._run()

    def _run(self) -> list[Any]:
        buf = self._buf
        pos = self._pos
        n = len(buf)
        st = self._state
        out: list[Any] = []
        convert = self._convert
        last_cut = buf.rfind("},")  # candidate end of the last complete row in buf
        try:
            while True:
                pos = _WS(buf, pos).end()
                if pos >= n:
                    break
                c = buf[pos]
                if st == _ROWS_AFTER:
                    if c == ",":
                        st = _ROWS_NEXT
                    elif c == "]":
                        st = _AFTER_VALUE
                    else:
                        raise _fail(f"expected ',' or ']' after a row at {buf[pos:pos + 40]!r}")
                    pos += 1
                elif st == _ROWS_NEXT or st == _ROWS_FIRST:
                    if c == "]" and st == _ROWS_FIRST:
                        st = _AFTER_VALUE
                        pos += 1
                        continue
                    # fast path: all complete rows up to the last "}," in one C call
                    cut = last_cut
                    if cut > pos:
                        try:
                            lst = _decode("[" + buf[pos : cut + 1] + "]")
                        except (ValueError, RecursionError):
                            last_cut = -1  # not a row boundary (or bad data): go row by row
                        else:
                            out.extend(convert(lst))
                            pos = cut + 1
                            st = _ROWS_AFTER
                            continue
                    r = self._value(buf, pos)
                    if r is None:
                        pos = n
                        break
                    out.extend(convert([r[0]]))
                    pos = r[1]
                    st = _ROWS_AFTER
                elif st == _AFTER_VALUE:
                    if c == ",":
                        st = _OBJ_KEY
                    elif c == "}":
                        st = _END
                        self.done = True
                    else:
                        raise _fail(f"expected ',' or '}}' at {buf[pos:pos + 40]!r}")
                    pos += 1
                elif st == _VALUE:
                    key = self._key
                    if key == self._rows_key:
                        if c != "[":
                            raise _fail(f"{key!r} is not an array")
                        st = _ROWS_FIRST
                        pos += 1
                        continue
                    r = self._value(buf, pos)
                    if r is None:
                        pos = n
                        break
                    self.meta[key] = r[0]  # type: ignore[index]  # (a key was read before a value)
                    pos = r[1]
                    st = _AFTER_VALUE
                elif st == _OBJ_KEY or st == _OBJ_FIRST:
                    if c == "}" and st == _OBJ_FIRST:
                        st = _END
                        self.done = True
                        pos += 1
                        continue
                    if c != '"':
                        raise _fail(f"expected a key at {buf[pos:pos + 40]!r}")
                    r = self._value(buf, pos)
                    if r is None:
                        pos = n
                        break
                    self._key = r[0]
                    pos = r[1]
                    st = _COLON
                elif st == _COLON:
                    if c != ":":
                        raise _fail(f"expected ':' at {buf[pos:pos + 40]!r}")
                    pos += 1
                    st = _VALUE
                elif st == _START:
                    if c != "{":
                        raise _fail(
                            f"expected a JSON object for a {self.shape!r} response, "
                            f"got {buf[pos:pos + 40]!r}"
                        )
                    pos += 1
                    st = _OBJ_FIRST
                else:  # _END
                    raise _fail(f"trailing data after the JSON body: {buf[pos:pos + 40]!r}")
        finally:
            self._state = st
        if self._pieces is not None:
            self._buf = ""
            self._pos = 0
        else:
            self._buf = buf
            self._pos = pos
        return out

    def _value(self, buf: str, pos: int) -> tuple[Any, int] | None:
        """Decode the JSON value at ``buf[pos]``; ``None`` if it is not complete yet.

        When incomplete, the unfinished text is moved to ``self._pieces`` and the
        tracker state is primed so that later text is only scanned once.
        """
        c = buf[pos]
        n = len(buf)
        if c == "-" or "0" <= c <= "9":
            q = _NUMCHARS(buf, pos).end()
            if q >= n:  # a number can only end at a delimiter
                self._incomplete(buf, pos)  # (running to the end of buf, it is never complete yet)
                return None
            try:
                val, end = _scan(buf, pos)
            except (StopIteration, ValueError, RecursionError) as e:
                raise _fail(f"invalid number at {buf[pos:pos + 40]!r}", e) from None
            if end != q:
                raise _fail(f"invalid number at {buf[pos:pos + 40]!r}")
            return val, end
        try:
            return _scan(buf, pos)
        except (StopIteration, ValueError, RecursionError) as e:
            r = self._incomplete(buf, pos)
            if r is None:
                return None
            raise _fail(f"malformed JSON at {buf[pos:pos + 60]!r}", e) from None

    def _incomplete(self, buf: str, pos: int) -> None | bool:
        """Start tracking an unfinished value; return True if it is in fact complete."""
        c = buf[pos]
        self._t_esc = False
        if c == "{" or c == "[":
            self._t_depth, self._t_str, self._t_scalar = 0, False, False
        elif c == '"':
            self._t_depth, self._t_str, self._t_scalar = 0, False, False
        else:
            self._t_depth, self._t_str, self._t_scalar = 0, False, True
        if self._track(buf, pos) >= 0:
            return True
        self._pieces = [buf[pos:]]
        return None

    def _track(self, s: str, i: int) -> int:
        """Scan ``s[i:]`` for the end of the value being tracked; index after it, or -1."""
        n = len(s)
        if self._t_scalar:
            m = _SCALAR_END(s, i)
            return m.start() if m else -1
        depth = self._t_depth
        in_str = self._t_str
        try:
            if self._t_esc:
                if i >= n:
                    return -1
                self._t_esc = False
                i += 1
            while i < n:
                if in_str:
                    m = _STR_SPECIAL(s, i)
                    if m is None:
                        return -1
                    i = m.end()
                    if s[i - 1] == "\\":
                        if i >= n:
                            self._t_esc = True
                            return -1
                        i += 1
                    else:
                        in_str = False
                        if depth <= 0:
                            return i
                else:
                    m = _STRUCT(s, i)
                    if m is None:
                        return -1
                    i = m.end()
                    c = s[i - 1]
                    if c == '"':
                        in_str = True
                    elif c == "{" or c == "[":
                        depth += 1
                    else:
                        depth -= 1
                        if depth <= 0:
                            return i
            return -1
        finally:
            self._t_depth = depth
            self._t_str = in_str


# -- backend selection ------------------------------------------------------------------

try:  # pragma: no cover - depends on the build
    from couchcore_ext._rows import RowParser as _CyRowParser
except Exception:  # ImportError, or an ABI mismatch of a stale build
    _CyRowParser = None

_forced = os.environ.get("COUCHCORE_ROWS_BACKEND", "").strip().lower()
if _forced == "python":
    BACKEND = "python"
elif _forced == "cython":
    if _CyRowParser is None:
        raise ImportError(
            "COUCHCORE_ROWS_BACKEND=cython but the couchcore_ext._rows extension is not built"
        )
    BACKEND = "cython"
elif _forced:
    raise ImportError(f"COUCHCORE_ROWS_BACKEND must be 'python' or 'cython', not {_forced!r}")
else:
    BACKEND = "cython" if _CyRowParser is not None else "python"


def make_parser(shape: str, backend: str | None = None) -> RowParser:
    """A new incremental parser for ``shape`` (one of :data:`SHAPES`).

    ``backend`` ``None`` uses :data:`BACKEND`; ``"python"`` or ``"cython"`` forces one
    (``ValueError`` if the Cython extension is not built).
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    if backend is None:
        backend = BACKEND
    if backend == "python":
        return PyRowParser(shape)
    if backend == "cython":
        if _CyRowParser is None:
            raise ValueError("the Cython row parser (couchcore_ext._rows) is not built")
        parser: RowParser = _CyRowParser(shape)
        return parser
    raise ValueError(f"unknown backend {backend!r}; expected 'python' or 'cython'")
