"""What the two async backends share (libcurl on the loop, :mod:`.curlloop`, and Tornado,
:mod:`.tornado`): state per event loop, calls into a loop from any thread, the iterator
of a streamed response body, and the checks of options and request bodies.

Imports no HTTP engine, so couchcore's feeds can use :func:`call_in_loop` without Tornado
or pycurl installed.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any, AsyncIterator, Callable, Generic, Protocol, TypeVar

from .. import errors
from .._urls import redact_url
from .base import BaseTransport, Credentials, TransportOptions

__all__ = ["LoopTransport", "LoopState", "BufferedExchange", "ChunkStream", "call_in_loop", "closed_error", "encode_chunk",
           "body_type_error", "HIGH_WATER", "LOW_WATER", "CHUNK"]

# each backend module imports these as its own globals (a benchmark may set one backend's)
#: A streamed response stops reading from the socket when this many bytes wait unread...
HIGH_WATER = 1024 * 1024
#: ...and resumes once the consumer has taken the buffer below this.
LOW_WATER = 256 * 1024
#: the largest piece of a request body written (or read from a file) at once
CHUNK = 64 * 1024


def call_in_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], Any], *, when_closed: bool = False) -> None:
    """Run ``fn`` now if we are on ``loop``'s thread (or it is not running), else schedule
    it there (any thread). A closed ``loop`` gets ``fn`` run at once with
    ``when_closed=True`` (clean-up that must happen anyway), else not at all."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop or not loop.is_running():
        if when_closed or not loop.is_closed():
            fn()
        return
    try:
        loop.call_soon_threadsafe(fn)
    except RuntimeError:  # closed meanwhile
        if when_closed:
            fn()


def closed_error(url: str) -> errors.ConnectionError:
    """What a request gets that the closing of its transport cut short (or that was still
    waiting for a slot then): aborted by couchcore, so never retried."""
    error = errors.ConnectionError("request aborted (the transport was closed)", url)
    error.aborted = True
    return error


def encode_chunk(chunk: Any) -> bytes:
    """A streamed request body's chunk as bytes (a str as UTF-8); anything else that is not
    bytes-like raises :class:`~couchcore.errors.InvalidInput`."""
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise errors.InvalidInput(f"request body chunks must be bytes, not {type(chunk).__name__}")


def body_type_error(body: Any) -> errors.InvalidInput:
    """The error for a request body of a type no backend can send."""
    return errors.InvalidInput(
        f"request body must be bytes, str, a file object or an iterable of bytes, not {type(body).__name__}")


class LoopState(Protocol):
    """One event loop's share of a :class:`LoopTransport` (its HTTP engine and slots)."""

    loop: asyncio.AbstractEventLoop

    @property
    def in_flight(self) -> int:
        """Requests in flight (a streamed response counts until its body has arrived or it
        was closed)."""

    def close(self) -> None:
        """Abort what is in flight and let the engine and its connections go."""


S = TypeVar("S", bound=LoopState)


class LoopTransport(BaseTransport, Generic[S]):
    """An async backend with one state (``S``) per event loop that sends through it, made
    by :meth:`_new_state` when a loop first sends; the states of loops that have closed
    are let go when any loop sends."""

    is_async = True
    #: whether :meth:`close` closes the state of a loop that has already closed
    _close_closed_loops = True

    def __init__(self, base_url: str, credentials: Credentials | None, options: TransportOptions) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise errors.InvalidOption(f"not an http(s) URL: {redact_url(base_url)!r}")
        if isinstance(options.max_clients, bool) or not isinstance(options.max_clients, int) \
                or options.max_clients < 1:
            raise errors.InvalidOption(f"max_clients must be a positive int, got {options.max_clients!r}")
        super().__init__(base_url, credentials, options)
        self._states: dict[asyncio.AbstractEventLoop, S] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url} max_clients={self.options.max_clients}>"

    def _new_state(self, loop: asyncio.AbstractEventLoop) -> S:  # pragma: no cover - abstract
        raise NotImplementedError

    def _state(self) -> S:
        """The running loop's state (made on first use)."""
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None or len(self._states) > 1:
            with self._lock:
                # the engines (and kept-alive connections) of loops that have closed, e.g.
                # another thread's asyncio.run(), are let go as soon as any loop sends
                for old in [lp for lp in self._states if lp.is_closed()]:
                    self._states.pop(old).close()
                state = self._states.get(loop)
                if state is None:
                    state = self._states[loop] = self._new_state(loop)
        return state

    @property
    def active(self) -> int:
        """Requests in flight (a streamed response counts until its body has arrived or it
        was closed) on the running loop, or on every loop outside one."""
        try:
            state = self._states.get(asyncio.get_running_loop())
        except RuntimeError:
            return sum(s.in_flight for s in list(self._states.values()))
        return state.in_flight if state is not None else 0

    def close(self) -> None:
        """Abort what is in flight (readers get a ConnectionError) and close every loop's
        engine and its connections (any thread). The transport stays usable."""
        with self._lock:
            states, self._states = list(self._states.values()), {}
        for state in states:
            call_in_loop(state.loop, state.close, when_closed=self._close_closed_loops)


class BufferedExchange:
    """The reader's side of one streamed exchange, as both async backends keep it: the body
    chunks that arrived (``chunks``, ``buffered`` bytes), the future the reader waits on
    (``waiter``, set by the backend when a chunk arrives or the exchange ends) and how it
    ended (``finished``, ``error``, ``abort_reason``). :meth:`_make_room` is the backend's
    flow control: let a held transfer go on (return ``True`` if it did)."""

    loop: asyncio.AbstractEventLoop
    chunks: deque[bytes]
    buffered: int
    waiter: asyncio.Future[Any] | None
    finished: bool
    error: BaseException | None
    abort_reason: str | None
    url: str

    def _make_room(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def next_chunk(self) -> bytes:
        """The next body chunk; ``StopAsyncIteration`` at the end (or once the reader
        closed the response), the transfer's error if it failed."""
        while not self.chunks:
            if self.abort_reason in ("close", "cancel"):
                raise StopAsyncIteration  # the reader itself gave up on the body
            if self.finished:
                if self.error is not None:
                    raise self.error
                raise StopAsyncIteration
            if self._make_room():  # a held transfer goes on (and may have handed data over)
                continue
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self.buffered <= LOW_WATER:
            self._make_room()
        return chunk


class ChunkStream:
    """The async iterator of body chunks of a streamed
    :class:`~couchcore.protocol.messages.Response`; dropping it unread (e.g. an abandoned
    ``ViewResult``) closes the connection. It is read on the event loop that sent the
    request: on another one it raises :class:`~couchcore.errors.WrongEventLoop` (and can
    still be read on its own loop)."""

    __slots__ = ("_exchange", "__weakref__")

    def __init__(self, exchange: BufferedExchange) -> None:
        self._exchange = exchange

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        exchange = self._exchange
        if asyncio.get_running_loop() is not exchange.loop:
            raise errors.WrongEventLoop(
                "a streamed response (a view, changes or attachment result) is read on another event loop than "
                "the one that sent its request: read it (async for, aall(), aread()) on that loop", exchange.url)
        return await exchange.next_chunk()

    def __del__(self) -> None:
        exchange = self._exchange
        if not exchange.finished and exchange.abort_reason is None:
            exchange.close()
