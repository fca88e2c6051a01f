"""Mango (sans-I/O): query plans and the list and removal of indexes.

``_find`` and ``_index`` creation live in :mod:`.database`; paging by bookmark in
:mod:`.paging`. https://docs.couchdb.org/en/stable/api/database/find.html
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generator, TypedDict

from ..errors import InvalidInput
from .messages import Request, Response
from .paths import db_path, quote_segment

__all__ = ["IndexInfo", "explain", "indexes", "delete_index"]


#: The fields of a ``_find`` request body other than ``selector``
#: (https://docs.couchdb.org/en/stable/api/database/find.html#db-find)
FIND_FIELDS = frozenset({"limit", "skip", "sort", "fields", "use_index", "bookmark", "r", "conflicts",
                         "execution_stats", "stable", "update", "allow_fallback"})


def check_selector(selector: object) -> None:
    """Refuse, before anything is sent, what cannot be a ``_find`` selector.

    ``selector`` must be a mapping (:class:`~couchcore.errors.InvalidInput` otherwise). A
    mapping shaped like a whole ``_find`` body, as couchdb-python's ``db.find(query)`` took
    it (a ``"selector"`` key holding a dict, alone or next to other ``_find`` fields such
    as ``limit``, ``sort`` or ``fields`` only), raises :class:`~couchcore.errors.InvalidInput`
    too: CouchDB would read it as a selector on a document field named ``selector`` and
    answer ``200`` with no documents, silently. A real field named ``selector`` (or
    ``limit``, ``sort``, ...) is still queried when wrapped, e.g.
    ``{"$and": [{"selector": {...}}, {"limit": 5}]}``.
    https://docs.couchdb.org/en/stable/api/database/find.html#db-find
    """
    if not isinstance(selector, Mapping):
        raise InvalidInput("selector must be a dict")
    if _whole_query(selector):
        extra = sorted(k for k in selector if k in FIND_FIELDS)
        beside = f"next to {', '.join(repr(k) for k in extra)}" if extra else "alone"
        raise InvalidInput(
            f"the selector looks like a whole _find query (a 'selector' dict {beside}): pass the selector as "
            "the first argument and the rest as keyword options, e.g. find(query['selector'], limit=...); to "
            "match a document field that is really named 'selector', wrap the conditions: "
            "{'$and': [{'selector': {...}}, {...}]}")


#: the only ``$`` keys a whole selector can start with (CouchDB refuses the others there,
#: ``$elemMatch`` and ``$all`` included: "missing a field name")
_COMBINATIONS = frozenset({"$and", "$or", "$not", "$nor"})


def _whole_query(selector: Mapping[str, Any]) -> bool:
    """Whether ``selector`` reads as a whole ``_find`` body: a ``"selector"`` dict that could
    be a selector (no condition operator such as ``$exists`` at its top: that is a
    condition on a field named ``selector``), beside nothing but ``_find`` fields whose
    values are no dicts (a dict is a condition on a field of that name)."""
    inner = selector.get("selector")
    if not isinstance(inner, Mapping):
        return False
    if any(isinstance(k, str) and k.startswith("$") and k not in _COMBINATIONS for k in inner):
        return False
    return all(k == "selector" or (k in FIND_FIELDS and not isinstance(v, Mapping)) for k, v in selector.items())


#: One entry of ``GET /{db}/_index``: ``ddoc`` is ``None`` for the special ``_all_docs``
#: index; ``def`` holds ``fields`` (and ``partial_filter_selector``).
IndexInfo = TypedDict("IndexInfo", {"ddoc": str | None, "name": str, "type": str, "def": dict[str, Any],
                                    "partitioned": bool}, total=False)


def find_body(selector: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of ``_find``/``_explain``: ``selector`` and the ``options`` not ``None``.

    Every ``_find`` body field is typed (an integer, a list, a bool, a str) and CouchDB
    refuses ``null`` for each (``400``), so ``None`` leaves an option out, as it does for
    the view, document and changes options.
    https://docs.couchdb.org/en/stable/api/database/find.html#db-find
    """
    body: dict[str, Any] = {"selector": dict(selector)}
    body.update((k, v) for k, v in options.items() if v is not None)
    return body


def explain(db: str, selector: Mapping[str, Any], options: Mapping[str, Any],
            prefix: str | None = None) -> Generator[Request, Response, dict[str, Any]]:
    """``POST /{db}/_explain``: the plan of a ``_find`` query (``index``, ``selector``,
    ``opts``, ``limit``, ``skip``, ``fields``, ``range``, ...).
    https://docs.couchdb.org/en/stable/api/database/find.html#db-explain
    """
    check_selector(selector)
    resp = yield Request("POST", f"{prefix or db_path(db)}/_explain", json=find_body(selector, options),
                         idempotent=True)
    data: dict[str, Any] = resp.json()
    return data


def indexes(db: str) -> Generator[Request, Response, list[IndexInfo]]:
    """``GET /{db}/_index``: every index (the special ``_all_docs`` one first).
    https://docs.couchdb.org/en/stable/api/database/find.html#get--db-_index
    """
    resp = yield Request("GET", f"{db_path(db)}/_index")
    data = resp.json()
    found: list[IndexInfo] = list(data.get("indexes", ()))
    return found


def delete_index(db: str, ddoc: str, name: str, type: str = "json") -> Generator[Request, Response, bool]:
    """``DELETE /{db}/_index/{ddoc}/{type}/{name}``; ``True`` when the server says ok.
    ``ddoc`` with or without its ``_design/`` prefix.
    https://docs.couchdb.org/en/stable/api/database/find.html#delete--db-_index-designdoc-json-name
    """
    for what, value in (("ddoc", ddoc), ("name", name), ("type", type)):
        if not isinstance(value, str) or not value:
            raise InvalidInput(f"delete_index: {what} must be a non-empty str, got {value!r}")
    if ddoc.startswith("_design/"):
        ddoc = ddoc[len("_design/"):]
        if not ddoc:
            raise InvalidInput("delete_index: empty design document name")
    path = f"{db_path(db)}/_index/_design/{quote_segment(ddoc)}/{quote_segment(type)}/{quote_segment(name)}"
    resp = yield Request("DELETE", path)
    return bool(resp.json().get("ok", False))
