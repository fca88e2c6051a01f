"""What every backend shares: options, credentials, and the backend registry."""

from __future__ import annotations

import contextlib
from binascii import b2a_base64
from dataclasses import field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence, Union, \
    runtime_checkable

from .. import __version__
from .._dataclass import FACTORY as _FACTORY, written_dataclass
from .._fork import forget_on_fork
from ..protocol.messages import Operation, Request, Response

if TYPE_CHECKING:  # pragma: no cover
    from .._drivers import RetryPolicy

__all__ = ["TransportOptions", "Credentials", "BaseTransport", "register", "get_backend", "is_file_like",
           "USER_AGENT", "BODY_METHODS", "DEFAULT_TIMEOUT", "DEFAULT_CONNECT_TIMEOUT",
           "SyncTransport", "AsyncTransport", "ConcurrentTransport", "Backend", "BACKENDS", "find_backend",
           "check_transport", "ErrorTable", "translate", "map_exceptions"]

#: sent by every backend (``headers={"User-Agent": ...}`` in the transport options overrides it)
USER_AGENT = f"couchcore/{__version__}"
#: methods whose request always carries a body (``Content-Length: 0`` when it is empty)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


#: the defaults, in seconds (see :class:`TransportOptions`)
DEFAULT_TIMEOUT = 90.0
DEFAULT_CONNECT_TIMEOUT = 10.0
#: the longest ``timeout``/``connect_timeout`` (s, ~11.6 days; longer ones overflow in the backends)
MAX_TIMEOUT = 1e6


@written_dataclass(frozen=True, init=False, repr=False, eq=False)
class TransportOptions:
    """Every network knob of a backend, in one frozen object (times in seconds).

    ``timeout`` (default 90): the read timeout, an *idle* timeout: the server must
    send something at least this often (``None``: wait forever). 90 s is a little
    over CouchDB's own 60 s cluster request timeout, so a slow view ends with
    CouchDB's ``timeout`` error rather than ours; feeds set their own from their
    ``heartbeat``/``timeout``. ``connect_timeout`` (default 10, or ``timeout`` when
    that is smaller): the TCP connect *and* the TLS handshake. Both are positive and at
    most 10**6 s (``0`` is refused: ``None`` means no timeout) and the same on every backend (libcurl
    counts in whole milliseconds: a shorter one is 1 ms there).
    ``retries`` (default 2): how many times a request is tried again, with
    exponential backoff and full jitter starting at ``backoff`` (default 0.25) and at
    most ``max_backoff`` (default 10), after a failure that is safe to retry: a
    connection that could not be made (nothing was sent), a GET/HEAD whose connection
    broke before the response, or a ``429 Too Many Requests`` (its ``Retry-After`` is
    honoured). Timeouts are never retried (a stalled server costs one read timeout,
    not several), nor is a write that may have been sent
    (:class:`~couchcore.errors.OutcomeUnknown`; a write whose answer timed out raises
    :class:`~couchcore.errors.WriteTimeout`, both an ``OutcomeUnknown`` and a
    ``ReadTimeout``). ``deadline`` (default ``None``): no
    retry starts later than this after the first attempt.
    ``verify`` turns TLS verification on (the default) and ``ca_certs`` names a CA
    bundle; ``cert_file``/``key_file`` give a client certificate; ``headers`` are
    added to every request; ``max_clients`` bounds requests in flight (async backend).
    ``maxsize`` (default 10) is how many idle connections are *kept* per host for
    reuse, not a limit on the connections open: on urllib3, each thread sending while
    ``maxsize`` connections are busy opens one more, closed after its answer (quietly:
    urllib3's "Connection pool is full, discarding connection" warning is logged at
    DEBUG on ``couchcore.transport``); sync pycurl keeps each thread's connections with
    that thread (``maxsize`` is not used); the async pycurl backend keeps
    ``max(maxsize, max_clients)``. What bounds the connections open at once is the
    number of requests in flight: your threads (and ``concurrency=`` of ``get_many``,
    ``bulk.load``) on the sync backends, ``max_clients`` on the async ones.
    """

    timeout: float | None = DEFAULT_TIMEOUT
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT
    verify: bool = True
    ca_certs: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    maxsize: int = 10
    retries: int = 2
    backoff: float = 0.25
    max_backoff: float = 10.0
    deadline: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    max_clients: int = 10

    def __init__(self, timeout: float | None = DEFAULT_TIMEOUT,
                 connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT, verify: bool = True,
                 ca_certs: str | None = None, cert_file: str | None = None, key_file: str | None = None,
                 maxsize: int = 10, retries: int = 2, backoff: float = 0.25, max_backoff: float = 10.0,
                 deadline: float | None = None, headers: Mapping[str, str] = _FACTORY,
                 max_clients: int = 10) -> None:
        # (as @dataclass(frozen=True) writes it: see couchcore._dataclass)
        put = object.__setattr__
        put(self, "timeout", timeout)
        put(self, "connect_timeout", connect_timeout)
        put(self, "verify", verify)
        put(self, "ca_certs", ca_certs)
        put(self, "cert_file", cert_file)
        put(self, "key_file", key_file)
        put(self, "maxsize", maxsize)
        put(self, "retries", retries)
        put(self, "backoff", backoff)
        put(self, "max_backoff", max_backoff)
        put(self, "deadline", deadline)
        put(self, "headers", {} if headers is _FACTORY else headers)
        put(self, "max_clients", max_clients)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "TransportOptions":
        """Options from keyword arguments, checked (:class:`~couchcore.errors.InvalidOption`)."""
        from ..errors import InvalidOption

        known = set(cls.__dataclass_fields__)
        unknown = set(kwargs) - known
        if unknown:
            raise InvalidOption(f"unknown transport option(s): {', '.join(sorted(unknown))}")
        for name in ("timeout", "connect_timeout", "deadline", "backoff", "max_backoff"):
            value = kwargs.get(name, 1)
            if value is None and name in ("timeout", "connect_timeout", "deadline"):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise InvalidOption(f"{name} must be a non-negative number of seconds, got {value!r}")
            if name in ("timeout", "connect_timeout") and not 0 < value <= MAX_TIMEOUT:  # None: no timeout
                raise InvalidOption(f"{name} must be a positive number of seconds up to {MAX_TIMEOUT:g} "
                                    f"or None, got {value!r}")
        retries = kwargs.get("retries", 0)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidOption(f"retries must be a non-negative int, got {retries!r}")
        timeout = kwargs.get("timeout", DEFAULT_TIMEOUT)
        if "connect_timeout" not in kwargs and timeout and timeout < DEFAULT_CONNECT_TIMEOUT:
            kwargs["connect_timeout"] = timeout  # Server(url, timeout=3): nothing waits 10 s
        return cls(**kwargs)


class Credentials:
    """Basic-auth credentials; their repr never shows the password."""

    __slots__ = ("username", "_password")

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._password = password

    @property
    def authorization(self) -> str:
        """The ``Authorization: Basic ...`` header value."""
        # (base64.b64encode is this call: binascii, without importing base64 for it)
        token = b2a_base64(f"{self.username}:{self._password}".encode("utf-8"), newline=False).decode("ascii")
        return "Basic " + token

    @property
    def password(self) -> str:
        """The password (never part of the repr)."""
        return self._password

    def __repr__(self) -> str:
        return f"Credentials({self.username!r}, '***')"


class BaseTransport:
    """What every backend keeps: its base URL, credentials, options, and the headers
    sent with every request (``Authorization`` included)."""

    def __init__(self, base_url: str, credentials: Credentials | None, options: TransportOptions) -> None:
        self.base_url = base_url
        self.credentials = credentials
        self.options = options
        # headers a backend would otherwise choose itself (urllib3, libcurl and Tornado
        # each send their own User-Agent and Accept-Encoding): decided once, here
        # names in canonical case (``user-agent`` -> ``User-Agent``, as the protocol layer
        # spells them), so one replaces another however the caller wrote it: urllib3 and
        # libcurl would otherwise send both of two differently cased names
        if not isinstance(options.headers, Mapping):
            from ..errors import InvalidOption

            raise InvalidOption(f"transport option headers must be a dict, got {type(options.headers).__name__}")
        self._headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity",
                         **{_canonical(name): value for name, value in options.headers.items()}}
        if credentials is not None:
            self._headers["Authorization"] = credentials.authorization
        forget_on_fork(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

    def after_fork_in_child(self) -> None:
        """In a forked child: drop the connections inherited from the parent, without a
        byte on the wire (they stay the parent's); the next request opens the child's own.
        Each backend that keeps connections says how (:mod:`couchcore._fork`)."""

    def sends_credentials(self, request: Any) -> bool:
        """Whether ``request`` goes out with credentials (Basic, bearer or proxy headers,
        or a session cookie): an error response's reason says which case it was."""
        names = {k.lower() for k in self._headers} | {k.lower() for k in request.headers}
        if names & _CREDENTIAL_HEADERS:
            return True
        cookie = next((v for k, v in {**self._headers, **request.headers}.items() if k.lower() == "cookie"), "")
        return "AuthSession=" in cookie


def _canonical(name: Any) -> str:
    if not isinstance(name, str) or not name:
        from ..errors import InvalidOption

        raise InvalidOption(f"transport option headers: names must be non-empty str, got {name!r}")
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


_CREDENTIAL_HEADERS = frozenset({"authorization", "x-auth-couchdb-username"})


def is_file_like(body: Any) -> bool:
    """Whether ``body`` is a file object (has a callable ``read``), streamed rather than sent whole."""
    return hasattr(body, "read") and callable(body.read)


# -- the backends: one contract per flavour, one fixed table ------------------------------------


@runtime_checkable
class SyncTransport(Protocol):
    """The contract of a sync backend: send one request, blocking, and return its
    response (streamed when ``request.stream``: ``response.stream`` iterates bytes);
    a network failure raises a :class:`~couchcore.errors.TransportError` (through
    :func:`map_exceptions`), an HTTP error status is a normal response. Retries,
    backoff and the node pool live above it (:mod:`couchcore._drivers`,
    :mod:`couchcore._nodes`)."""

    base_url: str
    options: TransportOptions

    def send(self, request: Request) -> Response:
        """Send ``request`` and return its :class:`~couchcore.protocol.messages.Response`
        (blocking); a network failure raises a :class:`~couchcore.errors.TransportError`."""

    def close(self) -> None:
        """Close the connections (the transport is not used afterwards)."""


@runtime_checkable
class AsyncTransport(Protocol):
    """The contract of an async backend: as :class:`SyncTransport`, but ``send`` is a
    coroutine (``response.stream`` an async iterator of bytes), run on the running
    asyncio loop."""

    base_url: str
    options: TransportOptions

    async def send(self, request: Request) -> Response:
        """Send ``request`` on the running loop and return its response (see :meth:`SyncTransport.send`)."""

    def close(self) -> None:
        """Close the connections (the transport is not used afterwards)."""


@runtime_checkable
class ConcurrentTransport(SyncTransport, Protocol):
    """A sync backend that also runs many operations at once in one thread (pycurl's
    CurlMulti): ``iter_many(ops, concurrency, policy)`` yields ``(index, result)`` as
    operations finish, an exception in place of the result of one that failed;
    ``policy`` (a :class:`~couchcore._drivers.RetryPolicy`) decides the retries."""

    def iter_many(self, ops: Iterable[Operation[Any]], concurrency: int = 16,
                  policy: RetryPolicy | None = None) -> Iterator[tuple[int, Any]]:
        """``(index, result)`` for each of ``ops`` as it finishes, at most ``concurrency`` in flight."""


@written_dataclass(frozen=True, init=False, repr=False, eq=False)
class Backend:
    """A row of :data:`BACKENDS`: a backend's name, flavour and where its class lives
    (imported on first use: a backend's library is only needed when it is chosen)."""

    name: str
    is_async: bool
    module: str
    cls: str
    #: the pip extra that installs what it needs
    extra: str

    def __init__(self, name: str, is_async: bool, module: str, cls: str, extra: str) -> None:
        # (as @dataclass(frozen=True) writes it: see couchcore._dataclass)
        put = object.__setattr__
        put(self, "name", name)
        put(self, "is_async", is_async)
        put(self, "module", module)
        put(self, "cls", cls)
        put(self, "extra", extra)

    def load(self) -> type:
        """The backend's class, its module imported now; :class:`~couchcore.errors.InvalidOption`
        when its library is not installed (naming the pip extra)."""
        import importlib

        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            from ..errors import InvalidOption

            flavour = "async" if self.is_async else "sync"
            raise InvalidOption(f"{flavour} backend {self.name!r} is not available: {exc} "
                                f"(pip install 'couchcore[{self.extra}]')") from None
        cls: type = getattr(module, self.cls)
        return cls


#: Every backend, sync and async: the names ``Server(backend=...)`` takes. The same
#: name may exist in both flavours (``pycurl``: the CurlMulti engine blocking, or on the
#: event loop).
BACKENDS: tuple[Backend, ...] = (
    Backend("urllib3", False, "couchcore.transport.urllib3", "Urllib3Transport", "urllib3"),
    Backend("pycurl", False, "couchcore.transport.pycurl", "PycurlTransport", "pycurl"),
    Backend("pycurl", True, "couchcore.transport.curlloop", "CurlLoopTransport", "pycurl"),
    Backend("tornado", True, "couchcore.transport.tornado", "TornadoTransport", "tornado"),
)


def find_backend(name: str, is_async: bool = False) -> Backend:
    """The row of :data:`BACKENDS` for ``name`` in the flavour of the facade
    (:class:`~couchcore.errors.InvalidOption`, an :class:`~couchcore.errors.InvalidInput`,
    for an unknown name or one of the other flavour: a sync ``Server`` cannot await an
    async backend, nor the async ``Server`` block on a sync one)."""
    from ..errors import InvalidOption

    rows = [b for b in BACKENDS if b.name == name]
    for row in rows:
        if row.is_async == is_async:
            return row
    own = sorted({b.name for b in BACKENDS if b.is_async == is_async})
    if rows:
        if is_async:
            raise InvalidOption(f"backend {name!r} is sync: the async Server (couchcore.aio, couchcore.tornado) "
                                f"runs on {', '.join(own)}; use couchcore.Server for {name!r}")
        raise InvalidOption(f"backend {name!r} is async: use couchcore.aio.Server (or couchcore.tornado.Server) "
                            f"for it; the sync couchcore.Server runs on {', '.join(own)}")
    raise InvalidOption(f"unknown backend {name!r}: the {'async' if is_async else 'sync'} Server runs on "
                        f"{', '.join(own)}")


def get_backend(name: str, is_async: bool = False) -> type:
    """The backend class named ``name`` in the given flavour (imported on first use);
    :class:`~couchcore.errors.InvalidOption` when it is unknown, of the other flavour,
    or its library is not installed."""
    return find_backend(name, is_async).load()


def check_transport(transport: Any, is_async: bool) -> None:
    """Refuse a transport whose flavour is not the facade's (``send`` a coroutine
    function or not), with :class:`~couchcore.errors.InvalidInput`."""
    import inspect

    from ..errors import InvalidInput

    send = getattr(transport, "send", None)
    if not callable(send) or not callable(getattr(transport, "close", None)):
        raise InvalidInput(f"{type(transport).__name__} is not a transport (no send()/close())")
    if inspect.iscoroutinefunction(send) != is_async:
        want, got = ("async", "sync") if is_async else ("sync", "async")
        raise InvalidInput(f"{type(transport).__name__} is a {got} transport; this Server needs a {want} one")


def register(name: str) -> Callable[[type], type]:
    """Class decorator kept for the backend modules: checks that ``name`` is a row of
    :data:`BACKENDS` naming this class (the table is fixed; add a row to add a backend)."""

    def deco(cls: type) -> type:
        if not any(b.name == name and b.cls == cls.__name__ and b.module == cls.__module__ for b in BACKENDS):
            raise RuntimeError(f"{cls.__module__}.{cls.__name__} is not in couchcore.transport.base.BACKENDS "
                               f"as {name!r}")
        return cls

    return deco


# -- one translation of every backend's exceptions ----------------------------------------------

#: How a backend's exceptions map to couchcore's: ``(match, error class)`` rows, the first
#: match wins; ``match`` is an exception type, a tuple of types, or a predicate.
ErrorTable = Sequence[tuple[Union[type, tuple[type, ...], Callable[[BaseException], bool]], type]]

#: the text each couchcore error starts with
_PREFIX = {"ConnectError": "cannot connect", "ConnectTimeout": "connect timed out",
           "ReadTimeout": "read timed out", "TimeoutError": "timed out", "TLSError": "TLS error",
           "ConnectionError": "connection failed", "OutcomeUnknown": "outcome unknown"}


def translate(exc: BaseException, url: str, table: ErrorTable, *, connected: bool | None = None,
              detail: str | None = None) -> BaseException:
    """The :class:`~couchcore.errors.TransportError` couchcore raises for a backend's exception
    ``exc`` on ``url``, from the backend's ``table`` (see :data:`ErrorTable`), with
    ``exc`` as its ``__cause__``; ``exc`` itself when it is couchcore's already, a
    cancellation, or matches no row (a programming error such as ``TypeError`` is
    never disguised as a network failure).

    ``connected`` says how far the exchange got, when the backend knows: ``False``
    (not connected yet: nothing was sent) turns a generic
    :class:`~couchcore.errors.TimeoutError` row into
    :class:`~couchcore.errors.ConnectTimeout` and a plain
    :class:`~couchcore.errors.ConnectionError` into
    :class:`~couchcore.errors.ConnectError`; ``True`` makes a generic timeout a
    :class:`~couchcore.errors.ReadTimeout`. The message is ``detail`` (default: the
    exception's text), any credentials in a URL in it removed.
    """
    from .. import errors
    from .._urls import redact_url

    if isinstance(exc, errors.CouchcoreError) or not isinstance(exc, Exception):
        return exc  # couchcore's own, or CancelledError/KeyboardInterrupt/GeneratorExit
    target: type | None = None
    for match, cls in table:
        hit = isinstance(exc, match) if isinstance(match, (type, tuple)) else match(exc)
        if hit:
            target = cls
            break
    if target is None:
        return exc
    if target is errors.TimeoutError and connected is not None:
        target = errors.ReadTimeout if connected else errors.ConnectTimeout
    elif target is errors.ConnectionError and connected is False:
        target = errors.ConnectError
    if detail is None:
        args = exc.args
        if len(args) > 1 and isinstance(args[-1], str) and not isinstance(args[0], (int, str)):
            detail = args[-1]  # an exception made as Error(connection, message) (urllib3)
        else:
            detail = str(exc) or type(exc).__name__
    text = redact_url(detail)
    error: errors.TransportError = target(f"{_PREFIX.get(target.__name__, 'failed')}: {text}", url)
    error.__cause__ = exc
    return error


@contextlib.contextmanager
def map_exceptions(table: ErrorTable, url: str, *, connected: bool | None = None) -> Iterator[None]:
    """Run the block, raising couchcore's error for a backend exception it raises
    (:func:`translate`; ``raise ... from exc``) and letting every other exception through."""
    try:
        yield
    except Exception as exc:
        error = translate(exc, url, table, connected=connected)
        if error is exc:
            raise
        raise error from exc
