"""Paged iteration for the facades: ``db.iterview(...)`` and ``db.iterfind(...)``.

The paging rules are sans-I/O (:mod:`couchcore.protocol.paging`); this runs one
operation per page on the database's driver, sync (``for``) or async (``async for``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Generic, Iterator, Protocol, TypeVar

from ._drivers import Operation
from .errors import StreamConsumed, StreamMisuse

if TYPE_CHECKING:  # pragma: no cover
    from ._api import DatabaseAPI

__all__ = ["Paged", "AsyncPaged"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Pager(Protocol[T]):
    done: bool

    def next_options(self) -> dict[str, Any]: ...

    def accept(self, answer: Any) -> list[T]: ...


class Paged(Generic[T]):
    """Every item of a paged query, fetched a page at a time as the iteration needs
    them (one request per page; none after a short page). Iterate it once, with
    ``for`` on the sync facade and ``async for`` on the async one. :attr:`pages` counts
    the requests made so far. For type checkers this class is the sync facade's (``for``);
    the async facade's is declared as :class:`AsyncPaged` (``async for``)."""

    def __init__(self, db: "DatabaseAPI", pager: Pager[T], page_op: Callable[[dict[str, Any]], Operation[Any]]) -> None:
        self._db = db
        self._pager = pager
        self._page_op = page_op
        self._started = False
        self.pages = 0

    def _claim(self) -> None:
        if self._started:
            raise StreamConsumed("a paged query is iterated once; call iterview()/iterfind() again")
        self._started = True

    def __iter__(self) -> Iterator[T]:
        if getattr(self._db, "is_async", False):
            raise StreamMisuse("this paged query comes from an async Database: use 'async for'")
        self._claim()
        return self._iterate()

    def _iterate(self) -> Iterator[T]:
        pager = self._pager
        while not pager.done:
            answer = self._db._run(self._page_op(pager.next_options()))
            self.pages += 1
            yield from pager.accept(answer)

    if not TYPE_CHECKING:  # the async facade's (declared by AsyncPaged)
        def __aiter__(self) -> AsyncIterator[T]:
            if not getattr(self._db, "is_async", False):
                raise StreamMisuse("this paged query comes from a sync Database: use a plain 'for'")
            self._claim()
            return self._aiterate()

    async def _aiterate(self) -> AsyncIterator[T]:
        pager = self._pager
        while not pager.done:
            answer = await self._db._run(self._page_op(pager.next_options()))
            self.pages += 1
            for item in pager.accept(answer):
                yield item

    def __repr__(self) -> str:
        return f"<Paged {type(self._pager).__name__} pages={self.pages} done={self._pager.done}>"


class AsyncPaged(Protocol[T_co]):
    """A :class:`Paged` query of the async facade (``db.iterview(...)``,
    ``db.iterfind(...)``), as type checkers see it: iterate it with ``async for`` (a
    plain ``for`` raises ``TypeError`` there, so it is not declared). A protocol:
    for annotations, not ``isinstance``."""

    @property
    def pages(self) -> int:
        """Requests made so far."""
        ...

    def __aiter__(self) -> AsyncIterator[T_co]: ...
