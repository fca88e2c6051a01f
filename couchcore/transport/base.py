"""What every backend shares: options, credentials, and the backend registry."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .. import __version__

__all__ = ["TransportOptions", "Credentials", "BaseTransport", "register", "get_backend", "is_file_like",
           "USER_AGENT", "BODY_METHODS", "DEFAULT_TIMEOUT", "DEFAULT_CONNECT_TIMEOUT"]

#: sent by every backend (``headers={"User-Agent": ...}`` in the transport options overrides it)
USER_AGENT = f"couchcore/{__version__}"
#: methods whose request always carries a body (``Content-Length: 0`` when it is empty)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


#: the defaults, in seconds (see :class:`TransportOptions`)
DEFAULT_TIMEOUT = 90.0
DEFAULT_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class TransportOptions:
    """Every network knob of a backend, in one frozen object (times in seconds).

    ``timeout`` (default 90): the read timeout, an *idle* timeout: the server must
    send something at least this often (``None``: wait forever). 90 s is a little
    over CouchDB's own 60 s cluster request timeout, so a slow view ends with
    CouchDB's ``timeout`` error rather than ours; feeds set their own from their
    ``heartbeat``/``timeout``. ``connect_timeout`` (default 10, or ``timeout`` when
    that is smaller): the TCP connect *and* the TLS handshake.
    ``retries`` (default 2): how many times a request is tried again, with
    exponential backoff and full jitter starting at ``backoff`` (default 0.25) and at
    most ``max_backoff`` (default 10), after a failure that is safe to retry: a
    connection that could not be made (nothing was sent), a GET/HEAD whose connection
    broke before the response, or a ``429 Too Many Requests`` (its ``Retry-After`` is
    honoured). Timeouts are never retried (a stalled server costs one read timeout,
    not several), nor is a write that may have been sent
    (:class:`~couchcore.errors.OutcomeUnknown`). ``deadline`` (default ``None``): no
    retry starts later than this after the first attempt.
    ``verify`` turns TLS verification on (the default) and ``ca_certs`` names a CA
    bundle; ``cert_file``/``key_file`` give a client certificate; ``maxsize`` is the
    connection-pool size per host; ``headers`` are added to every request;
    ``max_clients`` bounds requests in flight (async backend).
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

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "TransportOptions":
        """Options from keyword arguments, checked (:class:`~couchcore.errors.InvalidOption`)."""
        from ..errors import InvalidOption

        known = set(cls.__dataclass_fields__)
        unknown = set(kwargs) - known
        if unknown:
            raise InvalidOption(f"unknown transport option(s): {', '.join(sorted(unknown))}")
        for name in ("timeout", "connect_timeout", "deadline", "backoff", "max_backoff"):
            value = kwargs.get(name, 0)
            if value is None and name in ("timeout", "connect_timeout", "deadline"):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InvalidOption(f"{name} must be a non-negative number of seconds, got {value!r}")
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
        token = base64.b64encode(f"{self.username}:{self._password}".encode("utf-8")).decode("ascii")
        return "Basic " + token

    @property
    def password(self) -> str:
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

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

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
    return hasattr(body, "read") and callable(body.read)


_BACKENDS: dict[str, Callable[..., Any]] = {}


def register(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Class decorator registering a sync backend under ``name``."""

    def deco(cls: Callable[..., Any]) -> Callable[..., Any]:
        _BACKENDS[name] = cls
        return cls

    return deco


def get_backend(name: str) -> Callable[..., Any]:
    """The backend class registered as ``name`` (imported on first use)."""
    if name not in _BACKENDS:
        import importlib

        try:
            importlib.import_module(f"couchcore.transport.{name}")
        except ImportError as exc:
            from ..errors import InvalidOption

            raise InvalidOption(f"backend {name!r} is not available: {exc}") from None
    return _BACKENDS[name]
