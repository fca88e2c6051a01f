"""The per-row work every benchmark client does while reading (:mod:`benchmarks.clients`,
``benchmarks/end_to_end.py``): count and digest the rows, the same loop for all.

Kept apart from :mod:`benchmarks.clients` so that a measured process can use them without
importing what the clients need (asyncio, threads: several MB of peak RSS).
"""

from __future__ import annotations

from typing import Any, Iterable

Result = dict[str, Any]


# The per-row work every client does while reading, the same for all (one function call
# per scenario, the loop inside it), so a wrong answer is caught and no client pays more
# per row than another. Rows come as objects (``row.key``) or as dicts (``row["key"]``).


def view_digest(rows: Iterable[Any]) -> Result:
    """Count and digest of view rows with attributes (``row.id``, ``row.key``)."""
    n = h = 0
    for row in rows:
        key = row.key
        h ^= hash((row.id, key[0], key[1]))
        n += 1
    return {"count": n, "digest": h}


def view_digest_dicts(rows: Iterable[Any]) -> Result:
    """Count and digest of view rows as dicts (``row["id"]``, ``row["key"]``)."""
    n = h = 0
    for row in rows:
        key = row["key"]
        h ^= hash((row["id"], key[0], key[1]))
        n += 1
    return {"count": n, "digest": h}


def docs_digest(rows: Iterable[Any]) -> Result:
    """Count and digest of ``include_docs`` rows with attributes (``row.doc``)."""
    n = h = 0
    for row in rows:
        doc = row.doc
        h ^= hash((doc["_id"], doc["n"]))
        n += 1
    return {"count": n, "digest": h}


def docs_digest_dicts(rows: Iterable[Any]) -> Result:
    """Count and digest of ``include_docs`` rows as dicts (``row["doc"]``)."""
    n = h = 0
    for row in rows:
        doc = row["doc"]
        h ^= hash((doc["_id"], doc["n"]))
        n += 1
    return {"count": n, "digest": h}


def changes_digest(changes: Iterable[Any]) -> Result:
    """Count and digest of change dicts (``change["id"]``)."""
    n = h = 0
    for change in changes:
        h ^= hash(change["id"])
        n += 1
    return {"count": n, "digest": h}


def gets_digest(get: Any, ids: list[str]) -> Result:
    """Count and digest of the documents ``get(docid)`` returns, one request at a time."""
    h = 0
    for docid in ids:
        doc = get(docid)
        h ^= hash((doc["_id"], doc["n"]))
    return {"count": len(ids), "digest": h}


async def view_digest_async(rows: Any) -> Result:
    """:func:`view_digest` over an async iterator."""
    n = h = 0
    async for row in rows:
        key = row.key
        h ^= hash((row.id, key[0], key[1]))
        n += 1
    return {"count": n, "digest": h}


async def docs_digest_async(rows: Any) -> Result:
    """:func:`docs_digest` over an async iterator."""
    n = h = 0
    async for row in rows:
        doc = row.doc
        h ^= hash((doc["_id"], doc["n"]))
        n += 1
    return {"count": n, "digest": h}


async def changes_digest_async(changes: Any) -> Result:
    """:func:`changes_digest` over an async iterator."""
    n = h = 0
    async for change in changes:
        h ^= hash(change["id"])
        n += 1
    return {"count": n, "digest": h}
