r"""The JSON codec and query-parameter encoding, in one place.

Two engines sit behind one seam: `orjson <https://github.com/ijl/orjson>`_ when it is
installed (``pip install couchcore[fast]``) and `simplejson` otherwise.
``COUCHCORE_JSON=orjson|simplejson`` forces one at import time; :func:`use` switches at
run time and :data:`ENGINE` names the engine in use. Nothing else in couchcore imports a
JSON library. Each engine's library is imported on the first call that needs it, not with
this module (a ``couchcore load`` of JSON Lines that meets no error imports none).

**The two engines give the same results.** simplejson, configured as below, defines the
behaviour; orjson is an accelerator that must produce identical bytes and values or step
aside for that one call:

* Encoding is compact (``,`` and ``:``), raw UTF-8 (``ensure_ascii=False``; control
  characters escaped as ``\u00XX``), keys in insertion order, floats as Python's
  ``repr`` (shortest round-trip digits; orjson writes ``1e-6``/``0.00001`` where ``repr``
  writes ``1e-06``/``1e-05``, so such output is re-encoded by simplejson), tuples and
  ``list``/``dict``/``str``/``int`` subclasses (e.g. :class:`~couchcore.models.Document`)
  as their base type, ``Decimal`` as its exact decimal string, integers of any size exactly
  (orjson stops at 64 bits: the document goes to simplejson), ``enum.Enum`` members as their
  value and ``uuid.UUID`` as its hyphenated string (orjson does both natively; simplejson is
  taught the same). Non-string dict keys are treated as simplejson always has: ``str``,
  ``int``, ``float``, ``bool``, ``None`` and ``Decimal`` keys become strings (``1`` ->
  ``"1"``, ``True`` -> ``"true"``, ``None`` -> ``"null"``), any other key type is
  :class:`InvalidDocument`, and so is a dict whose keys collide once turned into strings
  (``{1: "a", "1": "b"}`` would be sent as ``{"1":"a","1":"b"}`` and one value lost), at
  any depth. ``bytes`` are decoded as UTF-8 strings (simplejson's rule).
* Rejected, before anything is sent (:class:`InvalidDocument`): NaN and ±Infinity
  (floats and ``Decimal``; orjson would silently write ``null``), sets, datetimes,
  dataclasses, arbitrary objects, strings with lone surrogates, cyclic or absurdly deep
  structures.
* Decoding is strict: NaN/Infinity literals, invalid UTF-8, control characters inside
  strings, trailing commas and trailing garbage raise :class:`ParseError`. Integers are
  exact at any size (orjson turns integers beyond 64 bits into floats, so a body with a
  run of 19 or more digits is parsed by simplejson), floats are correctly rounded by
  both, duplicate keys keep the last value, a leading UTF-8 BOM is skipped, ``\ud800``-style
  lone surrogate escapes become lone surrogates (simplejson's rule).

Many documents are encoded at once with :func:`dumps_array` (one orjson call for a whole
``_bulk_docs`` batch, a per-document fallback only for the documents that need one).
orjson's output is checked in one pass by ``couchcore_ext._codec.json_flags`` (C, built
with the extension; a pure-Python twin otherwise) for what it cannot be trusted with: a
``null`` (then the value is searched for NaN/Infinity), a float formatted unlike
``repr``, and, before decoding, an integer of 19 or more digits.

For the bulk path, :func:`validate_document` and :func:`add_id` let already-encoded
document bytes be checked and spliced into a request body without being decoded into
Python values and re-encoded (see :func:`join_documents`). The bulk loader reads input
text with :func:`document_head_decoder` (checks one JSON object, reads ``_id``, ``_rev``,
``_load_error`` and an id field) and cuts JSON arrays into elements with
:func:`value_end`. With the fast engine these use `msgspec <https://jcristharif.com/msgspec/>`_
when it is installed (``couchcore[fast]`` installs both; msgspec is imported on first
use), else orjson; with ``COUCHCORE_JSON=simplejson`` simplejson. Every engine gives the
same heads and errors (see :data:`HEAD_ENGINES`; ``engine=`` picks one explicitly).
"""

from __future__ import annotations

import enum
import importlib.util
import math
import os
import re
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, NamedTuple, Protocol, TypeVar

from .errors import InvalidDocument, InvalidField, InvalidOption, ParseError

__all__ = [
    "ENGINE", "ENGINES", "use", "dumps", "dumps_array", "loads", "validate_document", "add_id", "join_documents",
    "encode_param", "encode_query", "VIEW_OPTIONS", "view_query", "check_flags",
    "ABSENT", "HEAD_ENGINES", "DocumentHead", "document_head_decoder", "value_end",
]


def _installed(name: str) -> bool:
    """Is the module ``name`` importable (found on the path; not imported here)?"""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # e.g. sys.modules[name] = None
        return False


#: Is orjson, the optional fast engine (``couchcore[fast]``), installed? It is imported on the
#: first call that needs it (:func:`_import_orjson`), not with this module: its initialisation
#: imports uuid, platform, datetime and json (~20M instructions), and a ``couchcore load`` of
#: JSON Lines that meets no error calls no codec function that needs it (bulk-r27.md).
_ORJSON_INSTALLED: bool = _installed("orjson")
#: the orjson module once imported (``None`` before); outside this module ``codec._orjson`` is
#: the module when installed (imported then), else ``None`` (see :func:`__getattr__`)
_orjson_module: Any = None


class _NotRaised(Exception):
    """Stands for orjson's exception classes until orjson is imported (nothing raises it)."""


def _orjson_dumps_first(obj: Any, default: Any = None, option: Any = None) -> bytes:
    # every caller passes option=_OR_OPTIONS, read before orjson was imported: the real value
    _import_orjson()
    return _orjson_dumps(obj, default=default, option=_OR_OPTIONS)


def _orjson_loads_first(data: Any) -> Any:
    _import_orjson()
    return _orjson_loads(data)


#: orjson.dumps / orjson.loads and its exception classes, set by :func:`_import_orjson`; until
#: then functions that import orjson and call it, and a class nothing raises (an ``except``
#: clause reads the global when an exception is raised, so after the import)
_orjson_dumps: Callable[..., bytes] = _orjson_dumps_first
_orjson_loads: Callable[[Any], Any] = _orjson_loads_first
_JSONEncodeError: type[Exception] = _NotRaised
_JSONDecodeError: type[Exception] = _NotRaised


def _import_orjson() -> Any:
    """Import orjson (installed: :data:`_ORJSON_INSTALLED`) and set the globals that use it;
    return the module. A race imports it in two threads: alike."""
    global _orjson_module, _orjson_dumps, _orjson_loads, _JSONEncodeError, _JSONDecodeError, _OR_OPTIONS
    if _orjson_module is None:
        try:
            import orjson
        except ImportError as exc:  # found on the path at import, yet broken (a wheel of another platform...)
            raise ImportError(f"orjson is installed but cannot be imported ({exc}): reinstall it, or set "
                              "COUCHCORE_JSON=simplejson") from exc

        # datetimes and dataclasses go to default (and are refused, as simplejson does)
        _OR_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
        _JSONEncodeError = orjson.JSONEncodeError
        _JSONDecodeError = orjson.JSONDecodeError
        _orjson_loads = orjson.loads
        _orjson_dumps = orjson.dumps  # (after _OR_OPTIONS: a caller that reads it reads the options after)
        _orjson_module = orjson
    return _orjson_module


if not TYPE_CHECKING:  # (type checkers: no Any for every unknown name of this module)
    def __getattr__(name: str) -> Any:
        """``codec._orjson``: the orjson module (imported now) when installed, else ``None``."""
        if name == "_orjson":
            return _import_orjson() if _ORJSON_INSTALLED else None
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- simplejson: the reference engine ---------------------------------------------------


def _default(obj: Any) -> Any:
    """The types orjson encodes natively that plain simplejson would refuse."""
    if isinstance(obj, enum.Enum):
        return obj.value
    uuid = sys.modules.get("uuid")  # a UUID exists only once its module is imported: not imported here
    if uuid is not None and isinstance(obj, uuid.UUID):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


#: simplejson's ``(encoder, decoder)``, made by :func:`_sj_codec` on first use: simplejson
#: (with ``decimal``, ~13M instructions) is imported only by a process that needs it: with
#: orjson, one that writes a big integer, a ``Decimal``, ... (``couchcore load`` does not)
_sj: tuple[Any, Any] | None = None


def _sj_codec() -> tuple[Any, Any]:
    global _sj
    if _sj is None:
        import simplejson

        encoder = simplejson.JSONEncoder(
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
            use_decimal=True,
            namedtuple_as_object=False,
            tuple_as_array=True,
            iterable_as_array=False,
            bigint_as_string=False,
            default=_default,
        )
        _sj = (encoder, simplejson.JSONDecoder(allow_nan=False))
    return _sj


def _sj_dumps(obj: Any) -> bytes:
    try:
        text: str = (_sj or _sj_codec())[0].encode(obj)
        return text.encode("utf-8")
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidDocument(f"cannot serialise as JSON: {exc}") from None
    except RecursionError:
        raise InvalidDocument("cannot serialise as JSON: structure too deep or cyclic") from None


def _key_clash(obj: Any) -> None:
    """Raise :class:`InvalidDocument` when a dict inside ``obj`` has two keys that become
    one string (``{1: "a", "1": "b"}`` -> ``{"1":"a","1":"b"}``: the server would keep
    one value and drop the other silently).

    ``obj`` has been encoded by simplejson already (no cycles, only JSON-able types). Only
    a dict with a key that is not a ``str`` is looked at closely; its keys are turned into
    strings by simplejson itself (its rules: ``1`` -> ``"1"``, ``True`` -> ``"true"``,
    ``None`` -> ``"null"``, ``Decimal``/``float`` as written), so the verdict matches the
    bytes that would be sent.
    """
    stack = [obj]
    pop, push = stack.pop, stack.extend
    join = "".join
    while stack:
        o = pop()
        cls = o.__class__
        if cls is str or cls is int or cls is float or cls is bool or o is None:
            continue
        if cls is dict or isinstance(o, dict):
            try:
                join(o)  # every key a str (the common case, checked in C)
            except TypeError:
                names: dict[str, Any] = {}
                for key in o:
                    name = key if isinstance(key, str) else next(iter(_sj_loads(_sj_dumps({key: 0}))))
                    if name in names:
                        raise InvalidDocument(f"cannot serialise as JSON: the keys {names[name]!r} and {key!r} of one "
                                              f"object both become {name!r}: one value would be lost") from None
                    names[name] = key
            push(o.values())
        elif cls is list or cls is tuple or isinstance(o, (list, tuple)):
            push(o)
        elif isinstance(o, enum.Enum):
            stack.append(o.value)


def _sj_engine_dumps(obj: Any) -> bytes:
    """The simplejson encoding of ``obj``, refusing keys that collide (:func:`_key_clash`).

    The collision check walks ``obj`` only when it may have a non-str key: a walk in C
    (:data:`_all_keys_str`) says so first, or without the extension orjson when installed
    (it refuses any non-str key, ~7x faster than the encode); otherwise every value is
    walked in Python."""
    out = _sj_dumps(obj)
    if _all_keys_str is not None:
        if _all_keys_str(obj):
            return out
    elif _ORJSON_INSTALLED:
        try:
            _orjson_dumps(obj, default=_or_default, option=_OR_OPTIONS)
            return out
        except (TypeError, _JSONEncodeError):
            pass
    _key_clash(obj)
    return out


def _c_all_keys_str() -> Callable[[Any], bool] | None:
    if os.environ.get("COUCHCORE_CODEC_SCAN", "").strip().lower() == "python":
        return None
    try:
        from couchcore_ext._codec import all_keys_str  # (compiled)
    except ImportError:  # the extension is not built (or an older build without it)
        return None
    return all_keys_str  # type: ignore[no-any-return]


#: ``all_keys_str(obj) -> bool`` (C, couchcore_ext): ``True`` when no dict inside ``obj`` can
#: have colliding keys (only str keys and JSON's own types met), so :func:`_key_clash` need not
#: walk it; ``None`` without the extension (then orjson is asked, when installed)
_all_keys_str: Callable[[Any], bool] | None = _c_all_keys_str()


def _sj_loads(data: bytes | bytearray | memoryview | str) -> Any:
    if not isinstance(data, str):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"not valid UTF-8: {exc}") from None
    try:
        return (_sj or _sj_codec())[1].decode(data)
    except RecursionError:
        raise ParseError(f"JSON nested deeper than the interpreter's recursion limit allows (about 1000 levels; "
                         f"couchcore cannot read it): {data[:80]!r}") from None
    except ValueError as exc:
        snippet = data[:80]
        raise ParseError(f"not valid JSON ({exc}): {snippet!r}") from None


# -- orjson: the accelerator ------------------------------------------------------------

#: orjson's options (set by :func:`_import_orjson`)
_OR_OPTIONS = 0


def _or_default(obj: Any) -> Any:
    raise TypeError("left to simplejson")


#: digits 1-9 -> "0", so a run of 19+ digits is a run of b"0" (integers orjson would round)
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def _float_format_differs(out: bytes) -> bool:
    """True when orjson's output may hold a float formatted unlike ``repr()``.

    orjson writes ``0.00001234`` for 1.234e-05 and ``1.5e-7`` for 1.5e-07 (Python pads
    the exponent to two digits); other floats come out as ``repr`` does (checked at import
    by :func:`_orjson_floats_match`). A false positive (the pattern inside a string) only
    costs a re-encode.
    """
    if b"0.0000" in out:
        return True
    i = out.find(b"e-")
    while i != -1:
        nxt = out[i + 3:i + 4]
        if out[i + 2:i + 3].isdigit() and not nxt.isdigit():
            return True
        i = out.find(b"e-", i + 2)
    return False


def _has_nonfinite(obj: Any) -> bool:
    """True when a float inside ``obj`` is NaN or infinite (what orjson writes as null)."""
    stack = [obj]
    pop, push = stack.pop, stack.extend
    isfinite = math.isfinite
    while stack:
        o = pop()
        cls = o.__class__
        if cls is str or cls is int or cls is bool or o is None:  # the common leaves, by class
            continue
        if cls is float:
            if not isfinite(o):
                return True
        elif cls is dict:
            push(o.values())
        elif cls is list or cls is tuple:
            push(o)
        elif isinstance(o, float):
            if not isfinite(o):
                return True
        elif isinstance(o, dict):
            push(o.values())
        elif isinstance(o, (list, tuple)):
            push(o)
        elif isinstance(o, enum.Enum):
            stack.append(o.value)
    return False


_NONFINITE = "cannot serialise as JSON: Out of range float values are not JSON compliant"

# what json_flags reports (bit flags)
_F_NULL = 1      # a null literal (orjson writes NaN/Infinity as null)
_F_FLOAT = 2     # a number orjson may format unlike repr() (see _float_format_differs)
_F_LONG_INT = 4  # a number with 19+ integer digits (orjson may not read it exactly)


def _json_flags_py(data: bytes, mask: int = 7) -> int:
    """The pure-Python twin of ``couchcore_ext._codec.json_flags``: which of the flags in
    ``mask`` the JSON text ``data`` may have. It searches the bytes, strings included,
    so it says yes more often than the C scanner (a string holding ``null``), never less."""
    flags = 0
    if mask & _F_NULL and b"null" in data:
        flags |= _F_NULL
    if mask & _F_FLOAT and (b"0.0000" in data or b"e-" in data) and _float_format_differs(data):
        flags |= _F_FLOAT
    if mask & _F_LONG_INT and _long_integer(data.translate(_DIGITS)):
        flags |= _F_LONG_INT
    return flags


def _c_json_flags() -> Callable[..., int] | None:
    if os.environ.get("COUCHCORE_CODEC_SCAN", "").strip().lower() == "python":
        return None
    try:
        from couchcore_ext._codec import json_flags  # (compiled)
    except ImportError:  # the extension is not built: the twin
        return None
    return json_flags  # type: ignore[no-any-return]


#: ``json_flags(data: bytes, mask=7) -> int``: C when couchcore_ext is built (one pass that
#: skips strings), else :func:`_json_flags_py`; ``COUCHCORE_CODEC_SCAN=python`` forces the twin.
_json_flags: Callable[..., int] = _c_json_flags() or _json_flags_py
#: ``"cython"`` or ``"python"``: which json_flags is in use
FLAGS_ENGINE = "python" if _json_flags is _json_flags_py else "cython"


def _or_dumps(obj: Any) -> bytes:
    try:
        out = _orjson_dumps(obj, default=_or_default, option=_OR_OPTIONS)
    except (TypeError, _JSONEncodeError):
        # big ints, Decimal, non-str keys, bytes, ...: simplejson decides (and colliding keys are refused)
        out = _sj_dumps(obj)
        _key_clash(obj)
        return out
    flags = _json_flags(out, _F_NULL | _F_FLOAT)
    if flags:
        # orjson writes NaN/Infinity as null: only output holding null pays for the check
        if flags & _F_NULL and _has_nonfinite(obj):
            raise InvalidDocument(_NONFINITE)
        if flags & _F_FLOAT and (_ORJSON_FLOATS_MATCH or _floats_match()):
            return _sj_dumps(obj)
    if not (_ORJSON_FLOATS_MATCH or _floats_match()) and _has_float(obj):
        return _sj_dumps(obj)
    return out


def _sj_dumps_array(values: list[Any] | tuple[Any, ...]) -> bytes:
    return _sj_engine_dumps(values)


def _or_dumps_array(values: list[Any] | tuple[Any, ...]) -> bytes:
    """One orjson call for the whole array (much cheaper than one per element, which
    allocates a buffer per call); the elements orjson cannot encode exactly as simplejson
    does are encoded one by one, the others stay on orjson."""
    try:
        out = _orjson_dumps(values, default=_or_default, option=_OR_OPTIONS)
    except (TypeError, _JSONEncodeError):
        return b"[" + b",".join([_or_dumps(v) for v in values]) + b"]"
    flags = _json_flags(out, _F_NULL | _F_FLOAT)
    if flags:
        if flags & _F_NULL and _has_nonfinite(values):
            raise InvalidDocument(_NONFINITE)
        if flags & _F_FLOAT and (_ORJSON_FLOATS_MATCH or _floats_match()):
            return b"[" + b",".join([_or_dumps(v) for v in values]) + b"]"
    if not (_ORJSON_FLOATS_MATCH or _floats_match()) and _has_float(values):
        return _sj_dumps(values)
    return out


def _has_float(obj: Any) -> bool:
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, float):
            return True
        if isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, (list, tuple)):
            stack.extend(o)
        elif isinstance(o, enum.Enum):
            stack.append(o.value)
    return False


def _long_integer(digits: bytes) -> bool:
    """May ``digits`` (JSON text with every digit turned into ``0`` by ``_DIGITS``) hold
    an integer of 19 or more digits (one orjson may not read exactly)?

    A run of 19 digits is a candidate; it is a number unless the character before it
    (before its ``-``, if any) cannot precede a JSON number: revision hashes
    (``"1-9876543210987654321abc..."``) and ids with long digit runs are strings, and
    are not sent to the slow parser. Anything else (a run after ``[ , :`` or whitespace,
    inside a string or not) says yes: a false "yes" only costs a slower parse.
    """
    i = digits.find(_LONG_RUN)
    n = len(digits)
    while i != -1:
        start = i
        while start and digits[start - 1] == 0x30:
            start -= 1
        if start and digits[start - 1] == 0x2D:  # -
            start -= 1
        if not start or digits[start - 1] in _BEFORE_NUMBER:
            return True
        end = i + 19
        while end < n and digits[end] == 0x30:
            end += 1
        i = digits.find(_LONG_RUN, end)
    return False


#: the bytes after which a JSON number can start (JSON whitespace and , : [)
_BEFORE_NUMBER = frozenset(b" \t\r\n,:[")


def _or_loads(data: bytes | bytearray | memoryview | str) -> Any:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _json_flags(raw if raw.__class__ is bytes else bytes(raw), _F_LONG_INT) & _F_LONG_INT:
        return _sj_loads(data)  # an integer beyond 64 bits may be in there: keep it exact
    try:
        return _orjson_loads(data)
    except _JSONDecodeError:
        # lone surrogate escapes, a BOM, very deep nesting: simplejson decides (and
        # raises ParseError for what is really malformed)
        return _sj_loads(data)


def _orjson_floats_match() -> bool:
    """Does :func:`_float_format_differs` catch every float orjson formats unlike repr()?"""
    if not _ORJSON_INSTALLED:
        return False
    probes = [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 9007199254740993.0]
    # every exponent where the formats switch (plain/exponent, 1 or 2 exponent digits),
    # every 7th elsewhere: repr() of extreme floats is slow and this runs at import
    for exp in [e for e in range(-320, 309) if -40 <= e <= 40 or e % 7 == 0 or e < -300 or e > 300]:
        for mant in (1.0, 3.0000000000000004, 1.2345678901234567):
            probes.append(mant * 10.0 ** exp if -300 < exp < 300 else float(f"{mant}e{exp}"))
    values = [v for f in probes for v in (f, -f) if math.isfinite(v)]
    # one orjson call for all of them (import time: ~4x cheaper than one call each); a
    # float's text holds no comma, so the array splits back into one text per value
    outs = _import_orjson().dumps(values)[1:-1].split(b",")
    if len(outs) != len(values):
        return False
    for v, out in zip(values, outs):
        if out != repr(v).encode() and not (_float_format_differs(out) and _json_flags(b"[" + out + b"]") & _F_FLOAT):
            return False
    return True


#: :func:`_orjson_floats_match`, checked on the first orjson encode (:func:`_floats_match`), not
#: at import: ~1,300 floats formatted twice, a cost a process that never encodes (``couchcore
#: load``) need not pay; ``None`` until then (a false value: ``_floats_match()`` is consulted)
_ORJSON_FLOATS_MATCH: bool | None = None


def _floats_match() -> bool:
    """:data:`_ORJSON_FLOATS_MATCH`, computed on first call (a race computes it twice, alike)."""
    global _ORJSON_FLOATS_MATCH
    if _ORJSON_FLOATS_MATCH is None:
        _ORJSON_FLOATS_MATCH = _orjson_floats_match()
    return _ORJSON_FLOATS_MATCH


# -- the switch -------------------------------------------------------------------------


# (the functional form: the class form's annotations are strings here, each compiled into a
# typing.ForwardRef when the class is made: ~1.8M instructions of every process's start-up)
_Engine = NamedTuple("_Engine", [("name", str), ("dumps", Callable[[Any], bytes]), ("loads", Callable[[Any], Any]),
                                 ("dumps_array", Callable[[Any], bytes])])


_ENGINES: dict[str, _Engine] = {"simplejson": _Engine("simplejson", _sj_engine_dumps, _sj_loads, _sj_dumps_array)}
if _ORJSON_INSTALLED:
    _ENGINES["orjson"] = _Engine("orjson", _or_dumps, _or_loads, _or_dumps_array)

#: The engines available in this process (``"orjson"`` only when it is installed).
ENGINES: tuple[str, ...] = tuple(sorted(_ENGINES))

_lock = threading.Lock()
_engine: _Engine = _ENGINES["simplejson"]
#: The engine in use: ``"orjson"`` or ``"simplejson"``.
ENGINE: str = "simplejson"


def use(engine: str | None = None) -> str:
    """Switch the JSON engine for the whole process and return the previous one's name.

    ``engine`` is ``"orjson"``, ``"simplejson"`` or ``None`` (the default choice: the
    ``COUCHCORE_JSON`` environment variable if set, else orjson when installed). The
    switch is atomic: every :func:`dumps`/:func:`loads` call runs entirely on one engine,
    in every thread. Raises :class:`InvalidOption` for an unknown or uninstalled engine.
    """
    global _engine, ENGINE
    if engine is None:
        engine = os.environ.get("COUCHCORE_JSON") or ("orjson" if _ORJSON_INSTALLED else "simplejson")
    chosen = _ENGINES.get(engine)
    if chosen is None:
        if engine == "orjson":
            raise InvalidOption("COUCHCORE_JSON=orjson but orjson is not installed (pip install couchcore[fast])")
        raise InvalidOption(f"unknown JSON engine {engine!r}; known: orjson, simplejson")
    with _lock:
        previous = _engine.name
        _engine = chosen
        ENGINE = chosen.name
    return previous


use()


def dumps(obj: Any) -> bytes:
    """Serialise ``obj`` as strict, compact UTF-8 JSON (``bytes``), identical on both engines.

    Raises :class:`InvalidDocument` for values JSON cannot represent (NaN, Infinity, sets,
    arbitrary objects, unsupported key types, keys that collide once turned into strings
    such as ``1`` and ``"1"``, lone surrogates, cycles); see the module
    docstring for the exact rules.
    """
    return _engine.dumps(obj)


def dumps_array(values: list[Any] | tuple[Any, ...]) -> bytes:
    """Serialise the ``list`` (or ``tuple``) ``values`` as a JSON array: the same bytes
    as :func:`dumps` of it, and as ``b"[" + b",".join(dumps(v) for v in values) + b"]"``.

    For many documents at once (a ``_bulk_docs`` body): with orjson the array is
    encoded in one call, and the elements orjson cannot encode as simplejson does
    (integers beyond 64 bits, ``Decimal``, non-string keys, floats it formats
    differently) are encoded one by one, so one such document does not slow down the
    rest. Raises :class:`InvalidDocument` as :func:`dumps` does (NaN and ±Infinity
    anywhere in any element included) and :class:`TypeError` when ``values`` is not a
    list or tuple.
    """
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"dumps_array needs a list or tuple, not {type(values).__name__}")
    return _engine.dumps_array(values)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse one JSON value (UTF-8 ``bytes`` or ``str``); identical values on both engines.

    Integers are exact at any size. Raises :class:`ParseError` on malformed input
    (invalid UTF-8, NaN/Infinity literals, trailing data, ...).
    """
    return _engine.loads(data)


class _ScanContext:
    """What ``_json.make_scanner`` reads: strict strings, exact integers, floats as
    ``float()``, NaN/Infinity refused (simplejson's ``allow_nan=False``)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")


#: the interpreter's own C JSON scanner, made by :func:`_loads_small` on first use
_small_scanner: Any = None


def _loads_small(data: bytes) -> Any:
    """:func:`loads` of a small body read once, such as the server's welcome (``GET /``),
    without the engine when it can: the same value, the same errors.

    The text is read by the interpreter's C scanner (``_json``, loaded in ~0.3M
    instructions, where orjson's initialisation takes ~20M and simplejson's with decimal
    ~13M: a ``couchcore load`` of JSON Lines needs no other JSON reading, bulk-r27.md).
    On any text it reads to the end, that scanner gives the value both engines give
    (strict strings, integers exact, floats correctly rounded, the last of duplicate
    keys, lone surrogate escapes kept); everything else (not UTF-8, a BOM, NaN or
    Infinity, control characters in strings, trailing data, too deep, not ``bytes``) goes
    to :func:`loads`, which decides as always.
    """
    global _small_scanner
    try:
        if _small_scanner is None:
            import _json

            context: Any = _ScanContext()  # (typeshed types the context as a scanner)
            _small_scanner = _json.make_scanner(context)
        text = data.decode("utf-8")
        start = len(text) - len(text.lstrip(" \t\n\r"))
        value, end = _small_scanner(text, start)
        if end == len(text) or not text[end:].strip(" \t\n\r"):
            return value
    except Exception:  # StopIteration, ValueError, RecursionError, ...: the engine decides
        pass
    return loads(data)


def validate_document(raw: bytes) -> dict[str, Any]:
    r"""Check that ``raw`` is one JSON object and return it parsed, *for inspection only*.

    Meant for splicing already-encoded documents into a ``_bulk_docs`` body (send ``raw``
    itself, see :func:`add_id` and :func:`join_documents`): the returned dict tells the
    caller the ``_id``/``_rev`` and that the bytes are valid JSON, but with orjson an
    integer beyond 64 bits in it may come back as a float, so never re-encode it in place
    of ``raw``. Leading/trailing JSON whitespace (a line's ``\n``) is allowed; a UTF-8
    byte order mark is not (``loads`` skips one, but it cannot be spliced into a body).

    Raises :class:`ParseError` for malformed JSON (NaN/Infinity literals and invalid UTF-8
    included) and :class:`InvalidDocument` when the value is not an object.
    """
    if raw[:3] == b"\xef\xbb\xbf" or raw.lstrip(b" \t\r\n")[:3] == b"\xef\xbb\xbf":
        raise ParseError("a UTF-8 byte order mark cannot go into a request body")
    if _engine.name == "orjson":
        try:
            value = _orjson_loads(raw)
        except _JSONDecodeError:
            value = _sj_loads(raw)  # raises ParseError, or accepts what simplejson accepts
    else:
        value = _sj_loads(raw)
    if value.__class__ is not dict:
        raise InvalidDocument(f"a document must be a JSON object, not {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def add_id(raw: bytes, docid: str) -> bytes:
    """Return the encoded JSON object ``raw`` with ``"_id": docid`` inserted as its first member.

    ``raw`` must be a valid JSON object without an ``_id`` (check with
    :func:`validate_document` first); its other bytes are kept as they are. Surrounding
    whitespace is dropped.
    """
    body = raw.strip(b" \t\r\n")
    if not body.startswith(b"{") or not body.endswith(b"}"):
        raise InvalidDocument("add_id needs an encoded JSON object")
    head = b'{"_id":' + dumps(docid)
    inner = body[1:-1].strip(b" \t\r\n")
    return head + b"}" if not inner else head + b"," + inner + b"}"


def join_documents(encoded: Iterable[bytes], **fields: Any) -> bytes:
    """A ``_bulk_docs`` body from already-encoded documents: ``{"docs":[...],<fields>}``.

    ``encoded`` are JSON objects as bytes (from :func:`dumps`, or input bytes checked with
    :func:`validate_document`); ``fields`` (e.g. ``new_edits=False``) are encoded with
    :func:`dumps`, ``None`` values skipped. See
    https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-docs
    """
    body = bytearray(b'{"docs":[')
    body += b",".join(encoded)
    body += b"]"
    for name, value in fields.items():
        if value is not None:
            body += b"," + dumps(name) + b":" + dumps(value)
    body += b"}"
    return bytes(body)


def encode_param(value: Any) -> str:
    """Encode one plain (non-JSON) query parameter: booleans as ``true``/``false``."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise InvalidOption(f"cannot encode {value!r} as a query parameter")


class _Sentinel:
    """A false, one-instance-per-class marker whose repr (and pickle) is its global name."""

    _name: str = ""

    def __new__(cls: "type[_S]") -> "_S":
        instance: _S | None = cls.__dict__.get("_instance")  # this class's own, not a base's
        if instance is None:
            instance = super().__new__(cls)
            setattr(cls, "_instance", instance)
        return instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name


_S = TypeVar("_S", bound=_Sentinel)  # (after the class: a bound given as a string is compiled at import)


class NotGiven(_Sentinel):
    """The type of :data:`NOT_GIVEN`: "this option was not given".

    ``None`` cannot say that for a JSON-valued option, because ``None`` is JSON's
    ``null``, a value CouchDB collates first and a view may emit (``key=None`` must send
    ``key=null``). Parameters that take a JSON value default to :data:`NOT_GIVEN`.
    """

    _name = "NOT_GIVEN"


#: "Not given" for options whose value may be JSON ``null`` (see :class:`NotGiven`).
NOT_GIVEN = NotGiven()


def encode_query(params: Mapping[str, Any], json_keys: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Turn ``params`` into ``(name, value)`` pairs; names in ``json_keys`` are JSON-encoded.

    For options that have no ``null`` value (all of this function's callers: document,
    changes and database-creation options). :data:`NOT_GIVEN` and ``None`` both leave
    an option out. JSON-valued *view* options go through :func:`view_query`, where
    ``None`` is sent as ``null``.
    """
    json_keys = set(json_keys)
    out = []
    for name, value in params.items():
        if value is None or value is NOT_GIVEN:
            continue
        if name in json_keys:
            out.append((name, dumps(value).decode("utf-8")))
        else:
            out.append((name, encode_param(value)))
    return out


# -- view parameters ---------------------------------------------------------------

_JSON = "json"
_BOOL = "bool"
_INT = "int"
_STR = "str"

#: Every view / _all_docs query option couchcore accepts, and how it is encoded.
VIEW_OPTIONS: dict[str, str] = {
    "key": _JSON,
    "keys": _JSON,
    "startkey": _JSON,
    "start_key": _JSON,
    "endkey": _JSON,
    "end_key": _JSON,
    "startkey_docid": _STR,
    "start_key_doc_id": _STR,
    "endkey_docid": _STR,
    "end_key_doc_id": _STR,
    "inclusive_end": _BOOL,
    "descending": _BOOL,
    "limit": _INT,
    "skip": _INT,
    "group": _BOOL,
    "group_level": _INT,
    "reduce": _BOOL,
    "include_docs": _BOOL,
    "stale": _STR,
    "update": "update",  # true, false (a bool or its text) or "lazy"
    "update_seq": _BOOL,
    "conflicts": _BOOL,
    "attachments": _BOOL,
    "att_encoding_info": _BOOL,
    "sorted": _BOOL,
    "stable": _BOOL,
}


def check_flags(opts: Mapping[str, Any], names: Iterable[str], what: str,
                error: type[Exception] = InvalidOption) -> None:
    """Each of the boolean options ``names`` present in ``opts`` is a ``bool`` or the text
    ``"true"``/``"false"`` (``None``: not given); anything else raises ``error``
    ("``{what} option 'x' must be a bool, got ...``"). CouchDB reads only ``true`` as true:
    ``include_docs=1`` or ``conflicts="yes"`` would silently be false."""
    for name in names:
        value = opts.get(name)
        if value is not None and not isinstance(value, bool) and value not in ("true", "false"):
            raise error(f"{what} option {name!r} must be a bool, got {value!r}")


def _check(name: str, kind: str, value: Any) -> None:
    if kind == _BOOL and not isinstance(value, bool):
        raise InvalidOption(f"option {name!r} must be a bool, not {type(value).__name__}")
    if kind == _INT and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidOption(f"option {name!r} must be a non-negative int, got {value!r}")
    if kind == _STR and not isinstance(value, str):
        raise InvalidOption(f"option {name!r} must be a str, got {value!r}")
    if kind == "update" and not (isinstance(value, bool) or value in ("true", "false", "lazy")):
        raise InvalidOption(f"option {name!r} must be True, False, 'true', 'false' or 'lazy', got {value!r}")


def _json_option(name: str, value: Any) -> bytes:
    """A JSON-encoded option value; a value JSON cannot represent is an InvalidOption."""
    try:
        return dumps(value)
    except InvalidDocument as exc:
        raise InvalidOption(f"option {name!r}: {exc}") from None


def view_query(options: Mapping[str, Any]) -> tuple[list[tuple[str, str]], dict[str, Any] | None]:
    """Validate and encode view options (views, ``_all_docs``, temporary views, lists).

    Returns the query pairs and, when ``keys`` is given, the POST body ``{"keys": [...]}``.
    JSON-valued options (``key``, ``startkey``/``start_key``, ``endkey``/``end_key``)
    are JSON-encoded, ``None`` included: ``key=None`` sends ``key=null``. Only
    :data:`NOT_GIVEN` leaves them out. The plain options (``limit``, ``skip``,
    ``descending``, ``startkey_docid``, ...) have no ``null`` value, so for them ``None``
    means "not given" as well. ``keys`` must be a list (its items may be ``None``).
    Raises :class:`InvalidOption` for unknown options, values of the wrong type, or an
    option given together with its alias (``startkey`` and ``start_key``, ...).
    https://docs.couchdb.org/en/stable/api/ddoc/views.html#get--db-_design-ddoc-_view-view
    """
    query: list[tuple[str, str]] = []
    body = None
    for name, value in options.items():
        kind = VIEW_OPTIONS.get(name)
        if kind is None:
            raise InvalidOption(f"unknown view option {name!r}; known: {', '.join(sorted(VIEW_OPTIONS))}")
        if value is NOT_GIVEN:
            continue
        if name == "keys":
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
                raise InvalidOption(f"view option 'keys' must be a list of keys, got {value!r}")
            body = {"keys": list(value)}
            _json_option(name, body)  # fail early on unserialisable keys
            continue
        if kind == _JSON:
            query.append((name, _json_option(name, value).decode("utf-8")))
            continue
        if value is None:
            continue
        _check(name, kind, value)
        query.append((name, encode_param(value)))
    given = {name for name, _ in query}
    for name, alias in _VIEW_ALIASES:
        if name in given and alias in given:  # CouchDB would read whichever comes last
            raise InvalidOption(f"view options {name!r} and its alias {alias!r} both given: give one")
    return query, body


_VIEW_ALIASES = (("startkey", "start_key"), ("endkey", "end_key"),
                 ("startkey_docid", "start_key_doc_id"), ("endkey_docid", "end_key_doc_id"))


# -- the bulk loader's readers: document heads and value boundaries ---------------------
#
# The loader sends input JSON text as it is; it only needs to know that the text is one
# valid JSON object and the few fields it acts on. msgspec (``couchcore[fast]``) checks the
# text and reads those fields without building the rest of the document; without it the
# text is parsed by the engine in use and the fields picked from the result.

def _msgspec_installed() -> bool:
    """Is msgspec (the bulk loader's accelerator, ``couchcore[fast]``) importable? It is
    imported on first use only: ``import couchcore`` does not pay for it."""
    return _installed("msgspec")


_msgspec: Any = None


def _import_msgspec() -> Any:
    global _msgspec
    if _msgspec is None:
        import msgspec

        _msgspec = msgspec
    return _msgspec


class _Absent(_Sentinel):
    """The type of :data:`ABSENT`."""

    _name = "ABSENT"


#: A :class:`DocumentHead` field the document does not have (compare with ``is``).
ABSENT: Any = _Absent()

#: The head decoders available here: ``"msgspec"`` (when installed), ``"orjson"`` (when
#: installed) and ``"simplejson"``; see :func:`document_head_decoder`.
HEAD_ENGINES: tuple[str, ...] = tuple(
    name for name, ok in (("msgspec", _msgspec_installed()), ("orjson", _ORJSON_INSTALLED), ("simplejson", True))
    if ok)

_BOM = b"\xef\xbb\xbf"


class DocumentHead(Protocol):
    """What :func:`document_head_decoder` reads from a document: its ``_id`` (``str``,
    ``None`` for ``"_id": null``, or :data:`ABSENT`), ``_rev`` (``str`` or ABSENT),
    ``_load_error`` (any JSON value, or ABSENT: the error field of a bulk loader rejects
    record) and ``key``, the value of the ``id_field`` (``str``, ``int``, ``None``, or
    ABSENT; always ABSENT without an ``id_field``)."""

    id: str | None
    rev: str
    load_error: Any
    key: str | int | None


class _Head:
    __slots__ = ("id", "rev", "load_error", "key")

    def __init__(self, id: Any, rev: Any, load_error: Any, key: Any) -> None:  # noqa: A002
        self.id, self.rev, self.load_error, self.key = id, rev, load_error, key

    def __repr__(self) -> str:
        return f"DocumentHead(id={self.id!r}, rev={self.rev!r}, load_error={self.load_error!r}, key={self.key!r})"


def _pick_head(doc: Any, id_field: str | None) -> _Head:
    """The head of a parsed document; raises InvalidDocument/InvalidField."""
    if doc.__class__ is not dict:
        raise InvalidDocument(f"a document must be a JSON object, not {_json_type(doc)}")
    get = doc.get
    docid = get("_id", ABSENT)
    rev = get("_rev", ABSENT)
    key = get(id_field, ABSENT) if id_field else ABSENT
    if docid is not ABSENT and docid is not None and docid.__class__ is not str:
        raise InvalidField(f"_id must be a string, not {_json_type(docid)}", "_id")
    if rev is not ABSENT and rev.__class__ is not str:
        raise InvalidField(f"_rev must be a string, not {_json_type(rev)}", "_rev")
    if key is not ABSENT and key is not None and key.__class__ is not str and key.__class__ is not int:
        raise InvalidField(f"id field {id_field!r} must be a string or an integer, not {_json_type(key)}",
                           id_field)  # type: ignore[arg-type]
    return _Head(docid, rev, get("_load_error", ABSENT), key)


def _reference_head(data: bytes, id_field: str | None) -> _Head:
    """The verdict every head decoder gives (simplejson's parse): a head or an error."""
    if data.lstrip(b" \t\r\n")[:3] == _BOM:
        raise ParseError("a UTF-8 byte order mark cannot go into a request body")
    return _pick_head(_sj_loads(data), id_field)


def _msgspec_head_decoder(id_field: str | None) -> Callable[[bytes], DocumentHead] | None:
    from typing import Union

    try:
        msgspec = _import_msgspec()
    except ImportError:  # found but broken: the next engine
        return None
    field = msgspec.field
    fields: list[Any] = [
        ("id", Union[str, None], field(default=ABSENT, name="_id")),
        ("rev", str, field(default=ABSENT, name="_rev")),
        ("load_error", Any, field(default=ABSENT, name="_load_error")),
    ]
    namespace = {}
    if id_field:
        fields.append(("key", Union[str, int, None], field(default=ABSENT, name=id_field)))
    else:
        namespace["key"] = ABSENT
    try:  # gc=False: a head holds no containers worth tracking
        struct = msgspec.defstruct("DocumentHead", fields, gc=False, namespace=namespace)
    except ValueError:  # an id_field named like a field read anyway ("_id", ...)
        return None
    fast = msgspec.json.Decoder(struct).decode

    def decode(data: bytes) -> DocumentHead:
        try:
            head: DocumentHead = fast(data)
        except Exception:  # DecodeError, ValidationError, RecursionError: the reference decides
            return _reference_head(data, id_field)
        if not data.isascii():  # msgspec does not check UTF-8 inside the strings it skips
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ParseError(f"not valid UTF-8: {exc}") from None
        return head

    decode.engine = "msgspec"  # type: ignore[attr-defined]
    return decode


def _orjson_head_decoder(id_field: str | None) -> Callable[[bytes], DocumentHead]:
    fast = _import_orjson().loads

    def decode(data: bytes) -> DocumentHead:
        try:
            head = _pick_head(fast(data), id_field)
        except Exception:  # malformed, or a field orjson reads differently (a 65-bit key): the reference decides
            return _reference_head(data, id_field)
        if head.load_error is not ABSENT and _has_float(head.load_error):
            return _reference_head(data, id_field)  # a float there may be a 65-bit integer orjson rounded
        return head

    decode.engine = "orjson"  # type: ignore[attr-defined]
    return decode


def _simplejson_head_decoder(id_field: str | None) -> Callable[[bytes], DocumentHead]:
    def decode(data: bytes) -> DocumentHead:
        return _reference_head(data, id_field)

    decode.engine = "simplejson"  # type: ignore[attr-defined]
    return decode


def _head_engine(engine: str | None) -> str:
    if engine is None:
        if ENGINE == "simplejson":
            return "simplejson"
        return "msgspec" if "msgspec" in HEAD_ENGINES else "orjson"
    if engine not in HEAD_ENGINES:
        raise InvalidOption(f"head decoder engine {engine!r} is not available here; available: {', '.join(HEAD_ENGINES)}")
    return engine


def document_head_decoder(id_field: str | None = None, *,
                          engine: str | None = None) -> Callable[[bytes], DocumentHead]:
    r"""A function that checks JSON object text and reads its head (see :class:`DocumentHead`).

    For the bulk loader, which sends the text itself (see :func:`add_id`): the returned
    ``decode(data: bytes) -> DocumentHead`` reads ``_id``, ``_rev``, ``_load_error`` and
    the ``id_field`` member without decoding the rest into Python values (with msgspec).
    Every engine gives the same heads and the same errors, simplejson's parse being the
    reference (any text a faster engine stumbles on is handed to it):

    * :class:`ParseError`: not one valid JSON value (invalid UTF-8 anywhere, NaN or
      Infinity literals, control characters in strings, trailing data, too deep), or a
      UTF-8 byte order mark (it could not be sent in a request body). Leading and trailing
      JSON whitespace is allowed; blank text is a ParseError.
    * :class:`InvalidDocument`: the value is not an object.
    * :class:`InvalidField` (an InvalidDocument) with ``field`` set: ``_id`` neither a
      string nor ``null``, ``_rev`` not a string, or the ``id_field`` value neither a
      string, an integer (any size) nor ``null``.

    The decoder's ``engine`` attribute names the engine it runs on. Duplicate keys keep
    the last value; ``\ud800``-style lone surrogate escapes are
    accepted (simplejson's rule, as :func:`loads`).

    ``engine`` is ``"msgspec"``, ``"orjson"`` or ``"simplejson"`` (see
    :data:`HEAD_ENGINES`); by default it follows :data:`ENGINE` at the time of the call:
    with the fast engine (orjson) msgspec when installed, else orjson; with simplejson
    (``COUCHCORE_JSON=simplejson``) simplejson. Raises :class:`InvalidOption` for an
    engine that is not available.
    https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-docs
    """
    name = _head_engine(engine)
    if name == "msgspec":
        decoder = _msgspec_head_decoder(id_field)
        if decoder is not None:
            return decoder
        name = "orjson" if _ORJSON_INSTALLED else "simplejson"
    if name == "orjson":
        return _orjson_head_decoder(id_field)
    return _simplejson_head_decoder(id_field)


# value boundaries: cutting the elements of a JSON array out of its text

_STRING = rb'"(?:[^"\\]|\\.)*"'
#: (tokens, one string, a scalar's end, msgspec's "trailing characters" message): compiled on
#: first use by :func:`_value_end_re` (only a JSON array input is cut into values: start-up cost)
_VALUE_END_RE: tuple[re.Pattern[bytes], re.Pattern[bytes], re.Pattern[bytes], re.Pattern[str]] | None = None


def _value_end_re() -> tuple[re.Pattern[bytes], re.Pattern[bytes], re.Pattern[bytes], re.Pattern[str]]:
    global _VALUE_END_RE
    if _VALUE_END_RE is None:
        _VALUE_END_RE = (re.compile(_STRING + rb'|"|[{}\[\]]', re.S), re.compile(_STRING, re.S),
                         re.compile(rb"[,\]\s]"), re.compile(r"trailing characters \(byte (\d+)\)"))
    return _VALUE_END_RE

_RAW_VALUE: Any = None  # msgspec's decoder of a Raw value, made on first use


def value_end(buf: bytes, pos: int, eof: bool = False, *, engine: str | None = None) -> int:
    """Where the JSON value starting at ``buf[pos]`` ends (an offset into ``buf``), or -1
    when ``buf`` may end before it does.

    For cutting the elements of a JSON array out of its text without decoding them.
    ``eof`` says that nothing follows ``buf`` (then a number or literal running to the
    end of ``buf`` is complete). A malformed value is not an error here: its end is where
    its brackets and strings balance (a scan of the text), so a caller can cut it out and
    have it rejected later (e.g. by :func:`document_head_decoder`). A well-formed value
    gets the same end from every engine; msgspec, when it is the head engine (see
    :func:`document_head_decoder`), finds it in C, the others by the scan. ``engine``
    as there.
    """
    global _RAW_VALUE
    if _head_engine(engine) == "msgspec":
        if _RAW_VALUE is None:
            msgspec = _import_msgspec()
            _RAW_VALUE = msgspec.json.Decoder(msgspec.Raw)
        rest = memoryview(buf)[pos:]
        try:
            _RAW_VALUE.decode(rest)
        except _msgspec.DecodeError as exc:
            message = str(exc)
            m = _value_end_re()[3].search(message)
            if m:  # "byte N": the 1-based position of the first character after the value
                end = pos + int(m.group(1)) - 1
                if pos < end < len(buf) and buf[end] not in b" \t\r\n":
                    while buf[end - 1] in b" \t\r\n":  # msgspec counts the whitespace after the value
                        end -= 1
                    return end
                return _scan_end(buf, pos)
            if "truncated" in message:
                return -1
            return _scan_end(buf, pos)
        except RecursionError:
            return _scan_end(buf, pos)
        finally:
            rest.release()
        if eof or buf[pos] in (0x7B, 0x5B, 0x22):  # a complete object, array or string
            return len(buf)
        return -1  # a number or literal may go on in the next read
    end = _scan_end(buf, pos)
    if end < 0 and eof and buf[pos] not in (0x7B, 0x5B, 0x22):
        return len(buf)  # a number or literal running to the end of the input
    return end


def _scan_end(buf: bytes, pos: int) -> int:
    c = buf[pos]
    if c == 0x7B or c == 0x5B:  # { or [
        depth = 0
        for tok in (_VALUE_END_RE or _value_end_re())[0].finditer(buf, pos):
            t = tok.group()
            first = t[0]
            if first == 0x22:  # "
                if len(t) == 1:
                    return -1  # a string cut off by the end of the buffer
                continue
            depth += 1 if first == 0x7B or first == 0x5B else -1
            if depth == 0:
                return tok.end()
        return -1
    if c == 0x22:
        m = (_VALUE_END_RE or _value_end_re())[1].match(buf, pos)
        return m.end() if m else -1
    m = (_VALUE_END_RE or _value_end_re())[2].search(buf, pos)
    return m.start() if m else -1
