"""Partitioned databases (sans-I/O): queries scoped to ``/{db}/_partition/{key}/...``.

In a database created with ``partitioned=true`` every document id is
``"{partition}:{rest}"``; a partition's info, ``_all_docs``, views (of design documents
with ``options.partitioned`` true, the default there) and Mango queries read only that
partition's shard range. A partition key is a non-empty string without ``:`` that does
not begin with ``_``.
https://docs.couchdb.org/en/stable/partitioned-dbs/index.html ,
https://docs.couchdb.org/en/stable/api/partitioned-dbs.html
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generator, TypedDict

from ..errors import InvalidInput
from .._results import ViewResult
from .messages import Request, Response
from .mango import check_selector
from .paging import find_page, find_request
from .paths import db_path, quote_segment
from .server import ServerContext
from .views import view_request

__all__ = ["PartitionInfo", "PartitionSizes", "validate_partition", "partition_path", "info", "view",
           "partition_view_request", "find"]


class PartitionSizes(TypedDict):
    active: int
    external: int


class PartitionInfo(TypedDict):
    """``GET /{db}/_partition/{partition}``."""

    db_name: str
    partition: str
    doc_count: int
    doc_del_count: int
    sizes: PartitionSizes


def validate_partition(key: object) -> str:
    """``key`` if it can name a partition, else :class:`InvalidInput`."""
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"a partition key is a non-empty str, got {key!r}")
    if ":" in key:
        raise InvalidInput(f"a partition key cannot contain ':' (it ends the partition in a document id): {key!r}")
    if key.startswith("_"):
        raise InvalidInput(f"a partition key cannot begin with '_': {key!r}")
    return key


def partition_path(db: str, key: str) -> str:
    return f"{db_path(db)}/_partition/{quote_segment(validate_partition(key))}"


def info(ctx: ServerContext, db: str, key: str) -> Generator[Request, Response, PartitionInfo]:
    resp = yield Request("GET", partition_path(db, key))
    data: PartitionInfo = resp.json()
    return data


def partition_view_request(db: str, key: str, name: str, options: Mapping[str, Any],
                           stream: bool = True) -> Request:
    """The request of view ``name`` (or ``"_all_docs"``) of partition ``key``."""
    prefix = partition_path(db, key)
    request = view_request(db, name, options, stream=stream)
    request.path = prefix + request.path[len(db_path(db)):]
    return request


def view(ctx: ServerContext, db: str, key: str, name: str, /,
         **options: Any) -> Generator[Request, Response, ViewResult]:
    resp = yield partition_view_request(db, key, name, options)
    resp.raise_for_status()
    return ViewResult(resp)


def find(ctx: ServerContext, db: str, key: str, selector: Mapping[str, Any], /,
         **options: Any) -> Generator[Request, Response, dict[str, Any]]:
    """A Mango query on one partition: ``{"docs": [Document, ...], "bookmark", ...}``."""
    check_selector(selector)
    data = yield from find_page(find_request(db, selector, options, prefix=partition_path(db, key)))
    return data
