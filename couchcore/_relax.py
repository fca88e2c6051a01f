"""``relax``: the seed's generator-based handlers on current Tornado (``doc = yield db.get(...)``)."""

from __future__ import annotations

import functools
import inspect
from typing import Any, AsyncIterable, Callable, cast

from tornado import gen

from ._paging import Paged
from ._results import AsyncStreamedResult, StreamedResult

__all__ = ["relax"]


def relax(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Let a generator-based method (e.g. a Tornado ``RequestHandler.get``) wait for the
    database with ``yield``::

        class DocHandler(tornado.web.RequestHandler):
            @relax
            def get(self, docid):
                doc = yield db.get(docid)          # NotFound raises right here
                rows = yield db.view("app/by_tag")  # a ViewResult, read whole
                self.write(doc)

    The seed chose between ``@asynchronous`` and ``@gen.engine``; on current Tornado
    the decorated function becomes a :func:`tornado.gen.coroutine` (it returns a
    Future, which Tornado awaits for a handler method and plain ``asyncio`` code can
    await). Anything awaitable may be yielded, also lists and dicts of them; a
    streamed result (a view, an ``open_attachment`` stream) is read whole first, as
    the seed's callbacks got it; ``iterview``/``iterfind`` give the list of every row or
    document (all pages read), as a callback gets them.
    ``async def`` functions are returned unchanged.
    """
    if inspect.iscoroutinefunction(fn):
        return fn
    if not inspect.isgeneratorfunction(fn):
        return gen.coroutine(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _relaxed(fn(*args, **kwargs))

    return gen.coroutine(wrapper)


def _relaxed(inner: Any) -> Any:
    """Proxy generator: what ``inner`` yields is made yieldable (and views read whole)."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            if error is not None:
                yielded = inner.throw(error)
            else:
                yielded = inner.send(value)
        except StopIteration as stop:
            return stop.value
        try:
            value, error = (yield _materialised(yielded)), None
        except GeneratorExit:
            inner.close()
            raise
        except BaseException as exc:
            value, error = None, exc


def _materialised(yielded: Any) -> Any:
    if isinstance(yielded, list):
        return [_materialised(item) for item in yielded]
    if isinstance(yielded, dict):
        return {key: _materialised(item) for key, item in yielded.items()}
    if isinstance(yielded, (StreamedResult, Paged)) or inspect.isawaitable(yielded):
        return _read_whole(yielded)
    return yielded


async def _read_whole(awaitable: Any) -> Any:
    from ._callbacks import buffered_attachment

    result = await awaitable if inspect.isawaitable(awaitable) else awaitable
    if isinstance(result, StreamedResult):
        await cast("AsyncStreamedResult[Any]", result).aall()  # plain 'for', len() and indexing work on it now
    if isinstance(result, Paged):  # iterview/iterfind (tornado's BadYieldError): every page, as a list
        return [item async for item in cast("AsyncIterable[Any]", result)]
    return await buffered_attachment(result)  # an open_attachment stream: read() and 'for' work on it
