"""Drivers: pump a protocol operation (a generator of Requests) over a transport.

An operation yields :class:`~couchcore.protocol.messages.Request` objects, receives
:class:`~couchcore.protocol.messages.Response` objects and returns its result. A
transport failure is thrown into the operation, so its ``try``/``finally`` blocks run
(and may still yield clean-up requests) before the error reaches the caller.

Retries live here, once, above every backend (:class:`RetryPolicy`): a backend sends
one request and reports what happened; the driver decides whether sending it again is
safe, and when.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from typing import Any, Generator, Iterator, TypeVar, Union

from .errors import (
    ConnectError,
    ConnectionError,
    HTTPError,
    OutcomeUnknown,
    ReadTimeout,
    TimeoutError,
    TLSError,
    TransportError,
    WriteTimeout,
)
from .protocol.messages import Operation, Request, Response

__all__ = ["Operation", "RetryPolicy", "call_options", "run", "run_async", "send", "send_async"]

T = TypeVar("T")

#: methods that read only: sending them twice is harmless
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})

# per-call overrides of the Server's timeout/retries/deadline (see call_options)
_CALL_OPTIONS: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("couchcore_call_options",
                                                                               default={})
_UNSET: Any = object()


@contextlib.contextmanager
def call_options(*, timeout: float | None = _UNSET, retries: int = _UNSET,
                 deadline: float | None = _UNSET) -> Iterator[None]:
    """Override the Server's ``timeout`` (read, seconds; ``None`` waits forever),
    ``retries`` and ``deadline`` for the calls made inside the block, in this thread
    or asyncio task only::

        with couchcore.call_options(timeout=5, retries=0):
            db.view("ev/by_kind")

    Feeds keep the read timeouts they derive from ``heartbeat``/``timeout``; the
    connect timeout stays the Server's. Bad values raise
    :class:`~couchcore.errors.InvalidOption`.
    """
    from .transport.base import TransportOptions

    given = {k: v for k, v in (("timeout", timeout), ("retries", retries), ("deadline", deadline))
             if v is not _UNSET}
    TransportOptions.from_kwargs(**given)  # the same checks as the Server's options
    token = _CALL_OPTIONS.set({**_CALL_OPTIONS.get(), **given})
    try:
        yield
    finally:
        _CALL_OPTIONS.reset(token)


class RetryPolicy:
    """When a request may be sent again, and after how long.

    ``retries`` more attempts at most; the *n*-th waits a random time in
    ``[0, min(max_backoff, backoff * 2**n)]`` ("full jitter", so clients that failed
    together do not retry together); no retry starts later than ``deadline`` seconds
    after the first attempt. Retried: a :class:`~couchcore.errors.ConnectError` (no
    connection, so nothing was sent; not a connect timeout or a TLS failure, which a
    retry would only repeat), an idempotent request (GET, HEAD, OPTIONS, or one marked
    ``Request.idempotent``) whose connection broke before the response, and a
    ``429 Too Many Requests`` after its ``Retry-After`` (when that is at most
    ``max_backoff`` and fits in the deadline; a longer one is the caller's to decide,
    so :class:`~couchcore.errors.TooManyRequests` is raised with the header). Never
    retried: timeouts, and a write that may have been sent (it becomes
    :class:`~couchcore.errors.OutcomeUnknown`; one whose answer timed out
    :class:`~couchcore.errors.WriteTimeout`, both an ``OutcomeUnknown`` and a
    ``ReadTimeout``). A request whose body is a stream (a
    file, an iterator) is sent once: it cannot be replayed.
    """

    __slots__ = ("retries", "backoff", "max_backoff", "deadline", "timeout")

    def __init__(self, retries: int = 2, backoff: float = 0.25, max_backoff: float = 10.0,
                 deadline: float | None = None, timeout: float | None = _UNSET) -> None:
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.deadline = deadline
        self.timeout = timeout  # a call's read timeout (call_options), or _UNSET

    def prepare(self, request: Request) -> Request:
        """Apply the call's read timeout (from :func:`call_options`) to ``request``,
        unless the operation chose one itself (feeds)."""
        if self.timeout is not _UNSET and request.timeout is None:
            request.timeout = self.timeout or 0  # 0: no read timeout
        return request

    @classmethod
    def of(cls, transport: Any) -> "RetryPolicy":
        """The policy configured in ``transport.options`` (or in a proxy's transport)."""
        options = _find(transport, "options")
        overrides = _CALL_OPTIONS.get()
        timeout = overrides.get("timeout", _UNSET)
        if options is None:
            return cls(retries=overrides.get("retries", 0), deadline=overrides.get("deadline"), timeout=timeout)
        return cls(overrides.get("retries", getattr(options, "retries", 2)), getattr(options, "backoff", 0.25),
                   getattr(options, "max_backoff", 10.0), overrides.get("deadline", getattr(options, "deadline", None)),
                   timeout)

    def delay(self, request: Request, attempt: int, started: float, error: BaseException | None = None,
              response: Response | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts retries
        made so far), or ``None``: do not retry."""
        if attempt >= self.retries or not request.replayable:
            return None
        if error is not None:
            if not retryable_error(request, error):
                return None
            wait = self._backoff(attempt)
        elif response is not None and response.status == 429:
            after = retry_after(response.headers.get("retry-after"))
            if after is not None and after > self.max_backoff:
                return None
            wait = after if after is not None else self._backoff(attempt)
        else:
            return None
        if self.deadline is not None and time.monotonic() - started + wait > self.deadline:
            return None
        return wait

    def final_error(self, request: Request, error: BaseException) -> BaseException:
        """The error to report for ``request`` when it is not retried: a write whose
        connection broke after it may have been sent becomes
        :class:`~couchcore.errors.OutcomeUnknown`, one whose answer did not come within
        the read timeout :class:`~couchcore.errors.WriteTimeout` (its ``__cause__`` the
        original)."""
        unknown = _outcome_unknown(request, error)
        if unknown is not error:
            unknown.__cause__ = error
        return unknown

    def _backoff(self, attempt: int) -> float:
        import random  # here: only a retry needs it (import cost of every start-up)

        return random.uniform(0, min(self.max_backoff, self.backoff * (2 ** attempt)))


def retryable_error(request: Request, error: BaseException) -> bool:
    """Whether sending ``request`` again after ``error`` is safe (and may help)."""
    if not isinstance(error, TransportError) or isinstance(error, (TimeoutError, TLSError)) or error.aborted:
        return False
    if isinstance(error, ConnectError):
        return True  # no connection: nothing was sent
    return isinstance(error, ConnectionError) and _idempotent(request)


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # here: an HTTP-date Retry-After is rare, the module costs every start-up

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _idempotent(request: Request) -> bool:
    flag = getattr(request, "idempotent", None)
    return request.method in IDEMPOTENT if flag is None else bool(flag)


def answered(request: Request, response: Response) -> Response:
    """``response``, marked as the answer to ``request``: :attr:`Response.write` is true
    for a write (a request that is not idempotent), so that its ``502``/``504`` is a
    :class:`~couchcore.errors.GatewayOutcomeUnknown`. The one rule of every driver: the
    plan here (:func:`_send_plan`) and pycurl's concurrent engine (``iter_many``) call
    it on each answer they hand to an operation."""
    response.write = not _idempotent(request)
    return response


def _outcome_unknown(request: Request, error: BaseException) -> BaseException:
    """A write whose connection broke after it may have been sent, or whose answer did not
    come within the read timeout (:class:`~couchcore.errors.WriteTimeout`, both a
    ``ReadTimeout`` and an ``OutcomeUnknown``): say so."""
    if _idempotent(request) or isinstance(error, (ConnectError, OutcomeUnknown)):
        return error
    if isinstance(error, ReadTimeout):
        return WriteTimeout(f"{request.method} may or may not have been applied: the answer did not come within "
                            f"the read timeout ({error.detail}); the server may still apply it: read the document "
                            f"back to find out, never send it again blindly", error.url, request.method)
    if isinstance(error, ConnectionError):
        return OutcomeUnknown(f"{request.method} may or may not have been applied: {error.detail}",
                              error.url, request.method)
    return error


#: a CouchDB cluster's 500 reason while the shards of a database deleted a moment ago
#: disappear (the coordinating node still has the database's shard map cached)
NO_SHARDS = "No DB shards could be opened."


def _shards_gone(request: Request, response: Response) -> Request | None:
    """The ``GET /{db}`` that tells a deleted database from a broken one, when ``response``
    is a cluster's ``500`` "No DB shards could be opened." for a request on a database.

    Sending it is left to the driver: when it answers ``404`` the database is gone and
    the caller gets that ``404`` (:class:`~couchcore.errors.NotFound`, "Database does not
    exist.") instead of a 500 (seen on CouchDB 3.5.0 clusters right after a delete; a
    single node answers 404 at once). Any other answer keeps the original 500: then the
    shards really could not be opened (e.g. the nodes holding them are down).
    CouchDB: https://docs.couchdb.org/en/stable/api/database/common.html#delete--db
    """
    if not response.body or b"No DB shards" not in response.body:
        return None
    try:
        from . import codec

        reason = codec.loads(response.body).get("reason")
    except Exception:
        return None
    db = request.path.split("/")[1] if request.path.startswith("/") else ""
    if reason != NO_SHARDS or not db:
        return None
    return Request("GET", "/" + db)


# -- the driver, written once: a plan of steps, and one executor per flavour --------------------


class _Send:
    """Step: send ``request`` over the transport; the plan receives the Response (or
    the transport's exception, thrown in)."""

    __slots__ = ("request",)

    def __init__(self, request: Request) -> None:
        self.request = request


class _Sleep:
    """Step: wait ``seconds`` (a backoff)."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class _Read:
    """Step: read the rest of a streamed ``response`` (an error body)."""

    __slots__ = ("response",)

    def __init__(self, response: Response) -> None:
        self.response = response


_Step = Union[_Send, _Sleep, _Read]
#: what the executors run: steps out, outcomes in, a result at the end
Plan = Generator[_Step, Any, T]


def _send_plan(request: Request, policy: RetryPolicy) -> Plan[Response]:
    """Sending one request, retrying as ``policy`` allows (no I/O: see :class:`_Send`...)."""
    policy.prepare(request)
    if request.delay > 0:  # the operation backs off (e.g. before re-reading a contended document)
        yield _Sleep(request.delay)
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            response: Response = yield _Send(request)
        except TransportError as exc:
            wait = policy.delay(request, attempt, started, error=exc)
            if wait is None:
                unknown = _outcome_unknown(request, exc)
                if unknown is exc:
                    raise
                raise unknown from exc
        else:
            wait = policy.delay(request, attempt, started, response=response) if response.status == 429 else None
            if wait is None:
                answered(request, response)
                if response.status == 500:
                    if response.stream is not None:
                        yield _Read(response)
                    probe = _shards_gone(request, response)
                    if probe is not None:
                        try:
                            gone: Response = yield _Send(probe)
                        except TransportError:
                            return response
                        if gone.stream is not None:
                            yield _Read(gone)
                        return gone if gone.status == 404 else response
                return response
            response.close()
        yield _Sleep(wait)
        attempt += 1


def _run_plan(op: Operation[T], policy: RetryPolicy) -> Plan[T]:
    """Running ``op`` to its result: each request it yields sent by :func:`_send_plan`, a
    failure thrown into ``op`` (so its ``try``/``finally`` blocks run and may still send)."""
    try:
        request = next(op)
        while True:
            try:
                response = yield from _send_plan(request, policy)
                if response.stream is not None and not response.ok:
                    yield _Read(response)
            except GeneratorExit:
                raise
            except BaseException as exc:  # give the operation its chance to clean up
                request = op.throw(exc)
                continue
            request = op.send(response)
    except StopIteration as stop:
        result: T = stop.value
        return result


def _execute(plan: Plan[T], transport: Any) -> T:
    """Run ``plan``'s steps over a sync transport."""
    outcome: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = plan.send(outcome) if error is None else plan.throw(error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        outcome = error = None
        try:
            if isinstance(step, _Send):
                outcome = transport.send(step.request)
            elif isinstance(step, _Sleep):
                time.sleep(step.seconds)
            else:
                step.response.read()
        except BaseException as exc:
            error = exc


async def _execute_async(plan: Plan[T], transport: Any) -> T:
    """Run ``plan``'s steps over an async transport (``await transport.send(req)``)."""
    import asyncio  # here, not at module level: only the async path needs it (import cost)

    outcome: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = plan.send(outcome) if error is None else plan.throw(error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        outcome = error = None
        try:
            if isinstance(step, _Send):
                outcome = await transport.send(step.request)
            elif isinstance(step, _Sleep):
                await asyncio.sleep(step.seconds)
            else:
                await step.response.aread()
        except BaseException as exc:
            error = exc


def send(transport: Any, request: Request, policy: RetryPolicy | None = None) -> Response:
    """Send ``request`` over a sync transport, retrying as ``policy`` allows."""
    return _execute(_send_plan(request, policy or RetryPolicy.of(transport)), transport)


async def send_async(transport: Any, request: Request, policy: RetryPolicy | None = None) -> Response:
    """Send ``request`` over an async transport, retrying as ``policy`` allows."""
    return await _execute_async(_send_plan(request, policy or RetryPolicy.of(transport)), transport)


def run(op: Operation[T], transport: Any) -> T:
    """Run ``op`` to completion over a sync transport and return its result."""
    try:
        return _execute(_run_plan(op, RetryPolicy.of(transport)), transport)
    except (HTTPError, TransportError) as exc:
        exc._rebase(_base_url(transport))
        raise


async def run_async(op: Operation[T], transport: Any) -> T:
    """Run ``op`` to completion over an async transport (``await transport.send(req)``)."""
    try:
        return await _execute_async(_run_plan(op, RetryPolicy.of(transport)), transport)
    except (HTTPError, TransportError) as exc:
        exc._rebase(_base_url(transport))
        raise


def _find(transport: Any, name: str) -> Any:
    """Attribute ``name`` of ``transport`` or of the transport a proxy wraps."""
    while transport is not None:
        value = getattr(transport, name, None)
        if value is not None:
            return value
        transport = getattr(transport, "_transport", None)
    return None


def _base_url(transport: Any) -> str:
    """The base URL behind ``transport``, for errors an operation raised with a path
    only: every error names the full URL."""
    base = _find(transport, "base_url")
    return base if isinstance(base, str) else ""
