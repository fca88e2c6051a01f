"""Revision bookkeeping (sans-I/O): ``_revs_diff`` and ``_missing_revs``, what a
replicator asks before it sends documents.
https://docs.couchdb.org/en/stable/api/database/misc.html#db-revs-diff
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generator, TypedDict

from ..errors import InvalidInput
from .messages import Request, Response
from .paths import db_path

__all__ = ["RevsDiffEntry", "revs_diff", "missing_revs", "check_revs"]


class RevsDiffEntry(TypedDict, total=False):
    """What ``_revs_diff`` says of one document: the revisions the database lacks,
    and those it has that could be their ancestors."""

    missing: list[str]
    possible_ancestors: list[str]


def check_revs(revs: Any) -> dict[str, list[str]]:
    """``{id: [rev, ...]}`` (a rev may be given alone) as a JSON body, or :class:`InvalidInput`."""
    if not isinstance(revs, Mapping):
        raise InvalidInput(f"revs must be a dict of id -> [rev, ...], got {type(revs).__name__}")
    body: dict[str, list[str]] = {}
    for docid, value in revs.items():
        items = [value] if isinstance(value, str) else value
        if not isinstance(docid, str) or not docid or isinstance(items, (bytes, Mapping)) \
                or not isinstance(items, Sequence) \
                or not all(isinstance(r, str) and r for r in items):
            raise InvalidInput(f"revs must map non-empty str ids to lists of str revisions, got {docid!r}: {value!r}")
        body[docid] = list(items)
    return body


def revs_diff(db: str, revs: Mapping[str, Sequence[str]]) -> Generator[Request, Response, dict[str, RevsDiffEntry]]:
    """``POST /{db}/_revs_diff``: ``{id: {"missing": [...], "possible_ancestors": [...]}}``
    for the documents with revisions the database lacks (others are left out)."""
    body = check_revs(revs)
    resp = yield Request("POST", f"{db_path(db)}/_revs_diff", json=body, idempotent=True)
    data: dict[str, RevsDiffEntry] = resp.json()
    return data


def missing_revs(db: str, revs: Mapping[str, Sequence[str]]) -> Generator[Request, Response, dict[str, list[str]]]:
    """``POST /{db}/_missing_revs``: ``{id: [missing rev, ...]}`` (the body's ``missing_revs``).
    https://docs.couchdb.org/en/stable/api/database/misc.html#db-missing-revs
    """
    body = check_revs(revs)
    resp = yield Request("POST", f"{db_path(db)}/_missing_revs", json=body, idempotent=True)
    data: dict[str, list[str]] = resp.json().get("missing_revs", {})
    return data
