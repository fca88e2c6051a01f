"""The JSON codec (simplejson, strict) and query-parameter encoding, in one place."""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import simplejson

from .errors import InvalidDocument, InvalidOption, ParseError

__all__ = ["dumps", "loads", "encode_param", "encode_query", "VIEW_OPTIONS", "view_query"]

_encoder = simplejson.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    separators=(",", ":"),
    use_decimal=True,
    namedtuple_as_object=False,
    tuple_as_array=True,
    iterable_as_array=False,
    bigint_as_string=False,
)
_decoder = simplejson.JSONDecoder(allow_nan=False)


def dumps(obj: Any) -> bytes:
    """Serialise ``obj`` as strict, compact UTF-8 JSON.

    Raises :class:`InvalidDocument` for values JSON cannot represent (sets,
    objects, NaN, Infinity, non-string keys that are not str/int/float/bool/None).
    """
    try:
        return _encoder.encode(obj).encode("utf-8")
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidDocument(f"cannot serialise as JSON: {exc}") from None
    except RecursionError:
        raise InvalidDocument("cannot serialise as JSON: structure too deep or cyclic") from None


def loads(data: bytes | str) -> Any:
    """Parse a JSON body; raises :class:`ParseError` on malformed input."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"not valid UTF-8: {exc}") from None
    try:
        return _decoder.decode(data)
    except (ValueError, RecursionError) as exc:
        snippet = data[:80]
        raise ParseError(f"not valid JSON ({exc}): {snippet!r}") from None


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


def encode_query(params: Mapping[str, Any], json_keys: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Turn ``params`` into ``(name, value)`` pairs; names in ``json_keys`` are JSON-encoded.

    ``None`` values are dropped.
    """
    json_keys = set(json_keys)
    out = []
    for name, value in params.items():
        if value is None:
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
    "update": _STR,
    "update_seq": _BOOL,
    "conflicts": _BOOL,
    "attachments": _BOOL,
    "att_encoding_info": _BOOL,
    "sorted": _BOOL,
    "stable": _BOOL,
}


def _check(name: str, kind: str, value: Any) -> None:
    if kind == _BOOL and not isinstance(value, bool):
        raise InvalidOption(f"view option {name!r} must be a bool, not {type(value).__name__}")
    if kind == _INT and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidOption(f"view option {name!r} must be a non-negative int, got {value!r}")
    if kind == _STR and not isinstance(value, str):
        raise InvalidOption(f"view option {name!r} must be a str, got {value!r}")


def _json_option(name: str, value: Any) -> bytes:
    """A JSON-encoded option value; a value JSON cannot represent is an InvalidOption."""
    try:
        return dumps(value)
    except InvalidDocument as exc:
        raise InvalidOption(f"view option {name!r}: {exc}") from None


def view_query(options: Mapping[str, Any]) -> tuple[list[tuple[str, str]], dict | None]:
    """Validate and encode view options.

    Returns the query pairs and, when ``keys`` is given, the POST body ``{"keys": [...]}``.
    Raises :class:`InvalidOption` for unknown options or values of the wrong type.
    """
    query: list[tuple[str, str]] = []
    body = None
    for name, value in options.items():
        kind = VIEW_OPTIONS.get(name)
        if kind is None:
            raise InvalidOption(f"unknown view option {name!r}; known: {', '.join(sorted(VIEW_OPTIONS))}")
        if value is None:
            continue
        if name == "keys":
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
                raise InvalidOption("view option 'keys' must be a list of keys")
            body = {"keys": list(value)}
            _json_option(name, body)  # fail early on unserialisable keys
            continue
        if kind == _JSON:
            query.append((name, _json_option(name, value).decode("utf-8")))
            continue
        _check(name, kind, value)
        query.append((name, encode_param(value)))
    return query, body
