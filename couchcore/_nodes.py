"""Several nodes of one cluster behind one Server, above the backends.

:class:`NodePool` holds one transport per node (any backend) and looks like one
transport to the drivers: each request goes to the next node in turn (round-robin);
a node that cannot be connected to (:class:`~couchcore.errors.ConnectError`: nothing
was sent) is set aside for a while (1 s, doubling with each further failure, at most
60 s) and the request goes to the next node at once. A node that answers ``502 Bad
Gateway``, ``503 Service Unavailable`` or ``504 Gateway Timeout`` (a load balancer or
proxy in front of it, a node shutting down) is set aside the same way; a request that
only reads (GET, HEAD, or one marked ``Request.idempotent``, with a body that can be
sent again) then goes to the next node at once, while a write gets that answer
(:class:`~couchcore.errors.ServerError`: it is never sent twice; after a ``502`` or
``504`` the gateway may have forwarded it: its outcome is unknown). A node whose answer
does not come within the read timeout (:class:`~couchcore.errors.ReadTimeout`: a node
that hangs, e.g. stopped or overloaded) is set aside the same way, so that the requests
after it go to the others; a request that only reads then goes to the next node once
(a second timeout is raised, and sets that node aside no more: a query slower than the
timeout would be as slow on every node), a write raises (its outcome is unknown). The last node tried
gives its answer whatever it is. A node set aside is tried again
once its time is up, or sooner when every node is set aside. A streamed response
(a view, a continuous changes feed) is read from the node that answered; the next
request (a feed's reconnect) may go to another one. Requests about "the node that
answers" (``/_node/_local/...``: config, stats) always go to the first node.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

from .errors import ConnectError, InvalidInput, ReadTimeout, TLSError
from .protocol.messages import Request, Response

__all__ = ["NodePool", "AsyncNodePool", "check_nodes"]

#: the path prefix of requests about the node that answers them
LOCAL_NODE = "/_node/_local/"
BENCH = 1.0  # seconds a node is set aside after its first failed connect
MAX_BENCH = 60.0
#: answers that say "this node cannot serve now" (a gateway or a node going down), not
#: "this request failed": another node may serve it
UNAVAILABLE = frozenset({502, 503, 504})


def check_nodes(urls: Sequence[str]) -> None:
    """The node base URLs of one cluster: at least one, one scheme, one path prefix
    (:class:`~couchcore.errors.InvalidInput` otherwise)."""
    if not urls:
        raise InvalidInput("Server needs at least one node URL")
    from ._urls import split_credentials

    for url in urls:  # a URL urlsplit misreads: InvalidInput that never shows the password
        split_credentials(url)
    parts = [urlsplit(url) for url in urls]
    schemes = {p.scheme for p in parts}
    if len(schemes) != 1:
        raise InvalidInput(f"the node URLs mix schemes: {', '.join(sorted(schemes))}")
    paths = {p.path.rstrip("/") for p in parts}
    if len(paths) != 1:
        raise InvalidInput("the node URLs have different path prefixes")
    if len({(p.hostname, p.port) for p in parts}) != len(parts):
        raise InvalidInput("the node URLs name the same node twice")


class _Node:
    __slots__ = ("transport", "failures", "until")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.failures = 0
        self.until = 0.0  # monotonic time before which the node is set aside


class NodePool:
    """One transport per node, used as one (sync ``send``)."""

    def __init__(self, transports: Sequence[Any]) -> None:
        self.nodes = [_Node(t) for t in transports]
        self._turn = itertools.count()
        self._lock = threading.Lock()
        first = transports[0]
        self.base_url = first.base_url
        self.options = first.options
        self.credentials = getattr(first, "credentials", None)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {', '.join(n.transport.base_url for n in self.nodes)}>"

    def order(self) -> list[_Node]:
        """The nodes to try for the next request: those not set aside, starting with
        the next in turn, then those set aside, the soonest back first."""
        now = time.monotonic()
        with self._lock:
            start = next(self._turn) % len(self.nodes)
        turn = self.nodes[start:] + self.nodes[:start]
        ready = [n for n in turn if n.until <= now]
        benched = sorted((n for n in turn if n.until > now), key=lambda n: n.until)
        return ready + benched

    def _failed(self, node: _Node) -> None:
        with self._lock:
            node.until = time.monotonic() + min(MAX_BENCH, BENCH * 2 ** node.failures)
            node.failures += 1

    def _worked(self, node: _Node) -> None:
        if node.failures:
            with self._lock:
                node.failures = 0
                node.until = 0.0

    @classmethod
    def _fails_over(cls, request: Request, error: BaseException) -> bool:
        return isinstance(error, ConnectError) and not isinstance(error, TLSError) and request.replayable

    def _answered(self, node: _Node, request: Request, response: Response, last: bool) -> bool:
        """Whether ``response`` is the one to return. A 502/503/504 sets ``node`` aside
        (not for a request about the node that answers: it has no other); an idempotent,
        replayable request then goes to the next node (``False``: the response is closed),
        unless ``node`` was the last. Any other answer brings the node back."""
        if response.status not in UNAVAILABLE or request.path.startswith(LOCAL_NODE):
            self._worked(node)
            return True
        self._failed(node)
        if last or not request.idempotent or not request.replayable:
            return True
        response.close()
        return False

    def _tries(self, request: Request) -> Iterator[tuple[_Node, bool]]:
        """The nodes to send the next request to, in order, each with whether it is the last.
        A request about the node that answers (``/_node/_local/...``: its config, stats)
        goes to the first node only, never failing over: another node would read or set
        its own settings, not the first one's."""
        if request.path.startswith(LOCAL_NODE):
            yield self.nodes[0], True
            return
        nodes = self.order()
        for i, node in enumerate(nodes):
            yield node, i == len(nodes) - 1

    @contextlib.contextmanager
    def _attempt(self, node: _Node, request: Request, last: bool, timeouts: list[int]) -> Iterator[None]:
        """Around one send to ``node``: a connect failure that may fail over sets the node
        aside and is suppressed (the caller goes on to the next node) unless ``node`` was
        the last; a request's first read timeout (``timeouts[0]`` counts them) sets the
        node aside, and is suppressed for a request that only reads; a second one is
        raised and sets no node aside (the query is slow); anything else
        goes through (an answer: see :meth:`_answered`)."""
        try:
            yield
        except ConnectError as exc:
            if not self._fails_over(request, exc):
                raise
            self._failed(node)
            if last:
                raise
        except ReadTimeout:
            if request.path.startswith(LOCAL_NODE):
                raise  # about that node only: it has no other
            timeouts[0] += 1
            if timeouts[0] > 1:
                raise  # the read timed out on the node before too: the query is slow, not this node
            self._failed(node)
            if last or not request.idempotent or not request.replayable:
                raise

    def send(self, request: Request) -> Response:
        timeouts = [0]
        for node, last in self._tries(request):
            with self._attempt(node, request, last, timeouts):
                response: Response = node.transport.send(request)
                if self._answered(node, request, response, last):
                    return response
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        for node in self.nodes:
            node.transport.close()

    @property
    def active(self) -> int:
        """Requests in flight on every node (async backends)."""
        return sum(getattr(n.transport, "active", 0) for n in self.nodes)


class AsyncNodePool(NodePool):
    """One async transport per node, used as one (``await send``)."""

    async def send(self, request: Request) -> Response:  # type: ignore[override]
        timeouts = [0]
        for node, last in self._tries(request):
            with self._attempt(node, request, last, timeouts):
                response: Response = await node.transport.send(request)
                if self._answered(node, request, response, last):
                    return response
        raise AssertionError("unreachable")  # pragma: no cover
