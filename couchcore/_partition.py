"""A partition of a partitioned database: ``db.partition("sensor-1")``.

Queries through the handle read only that partition (``/{db}/_partition/{key}/...``),
which CouchDB answers from one shard range instead of asking every shard.
https://docs.couchdb.org/en/stable/api/partitioned-dbs.html
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .models import Document, Row
from ._paging import Paged
from .protocol import mango as _mango
from .protocol import paging as _paging
from .protocol import partitions as _partitions
from ._results import ViewResult

if TYPE_CHECKING:  # pragma: no cover
    from ._api import DatabaseAPI

__all__ = ["Partition"]


class Partition:
    """The partition ``key`` of database ``db`` (no request is made to build it).

    On the async facade every method returns an awaitable of what is documented here,
    except :meth:`iterview`/:meth:`iterfind` (iterate them with ``async for``).
    A key with ``:`` or beginning with ``_`` raises :class:`InvalidInput`.
    """

    def __init__(self, db: "DatabaseAPI", key: str) -> None:
        self.key: str = _partitions.validate_partition(key)
        self.db = db
        self._path: str = _partitions.partition_path(db.name, key)

    def __repr__(self) -> str:
        return f"<Partition {self.key!r} of {self.db.name}>"

    def info(self) -> _partitions.PartitionInfo:
        """``{"db_name", "partition", "doc_count", "doc_del_count", "sizes": {"active",
        "external"}}`` (bytes). https://docs.couchdb.org/en/stable/api/partitioned-dbs.html#get--db-_partition-partition"""
        result: _partitions.PartitionInfo = self.db._run(_partitions.info(self.db._ctx, self.db.name, self.key))
        return result

    def view(self, name: str, /, **options: Any) -> ViewResult:
        """A view (``"ddoc/view"``, ``"_design/ddoc/_view/view"``) of this partition, streamed;
        options as for :meth:`Database.view`. The design document must be partitioned
        (the default in a partitioned database).
        https://docs.couchdb.org/en/stable/api/partitioned-dbs.html#get--db-_partition-partition-_design-ddoc-_view-view"""
        result: ViewResult = self.db._run(_partitions.view(self.db._ctx, self.db.name, self.key, name, **options))
        return result

    def all_docs(self, **options: Any) -> ViewResult:
        """``_all_docs`` of this partition (ids ``"{key}:..."``), streamed; view options.
        https://docs.couchdb.org/en/stable/api/partitioned-dbs.html#get--db-_partition-partition-_all_docs"""
        return self.view("_all_docs", **options)

    def find(self, selector: Mapping[str, Any], **options: Any) -> dict[str, Any]:
        """A Mango query on this partition: ``{"docs": [Document, ...], "bookmark", "warning"?}``.
        https://docs.couchdb.org/en/stable/api/partitioned-dbs.html#post--db-_partition-partition_id-_find"""
        result: dict[str, Any] = self.db._run(_partitions.find(self.db._ctx, self.db.name, self.key, selector,
                                                               **options))
        return result

    def explain(self, selector: Mapping[str, Any], **options: Any) -> dict[str, Any]:
        """The plan of :meth:`find` (``POST /{db}/_partition/{key}/_explain``)."""
        result: dict[str, Any] = self.db._run(_mango.explain(self.db.name, selector, options, prefix=self._path))
        return result

    def iterview(self, name: str, page_size: int = 1000, **options: Any) -> Paged[Row]:
        """Every row of a view (or ``"_all_docs"``) of this partition, paged by key as
        :meth:`Database.iterview` does."""
        pager = _paging.ViewPager(name, page_size, options)
        db, key = self.db.name, self.key
        return Paged(self.db, pager, lambda opts: _paging.view_page(
            lambda o: _partitions.partition_view_request(db, key, name, o, stream=False), opts))

    def iterfind(self, selector: Mapping[str, Any], page_size: int = 1000, **options: Any) -> Paged[Document]:
        """Every match of a Mango query on this partition, paged by bookmark as
        :meth:`Database.iterfind` does."""
        pager = _paging.FindPager(selector, page_size, options)
        return Paged(self.db, pager, lambda opts: _paging.find_page(
            _paging.find_request(self.db.name, pager.selector, opts, prefix=self._path)))
