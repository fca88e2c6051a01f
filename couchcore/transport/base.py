"""What every backend shares: options, credentials, and the backend registry."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .. import __version__

__all__ = ["TransportOptions", "Credentials", "BaseTransport", "register", "get_backend", "is_file_like",
           "USER_AGENT", "BODY_METHODS"]

#: sent by every backend (``headers={"User-Agent": ...}`` in the transport options overrides it)
USER_AGENT = f"couchcore/{__version__}"
#: methods whose request always carries a body (``Content-Length: 0`` when it is empty)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class TransportOptions:
    """Every network knob of a backend, in one frozen object.

    ``timeout`` is the read timeout in seconds (``None``: wait forever),
    ``connect_timeout`` the connect timeout; ``verify`` turns TLS verification on
    (the default) and ``ca_certs`` names a CA bundle; ``cert_file``/``key_file`` give a
    client certificate; ``maxsize`` is the connection-pool size per host;
    ``retries`` is how often an idempotent request (GET/HEAD) is retried after a
    connection failure (a write is never re-sent blindly); ``headers`` are added to
    every request.
    """

    timeout: float | None = 300.0
    connect_timeout: float | None = 10.0
    verify: bool = True
    ca_certs: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    maxsize: int = 10
    retries: int = 2
    headers: Mapping[str, str] = field(default_factory=dict)
    max_clients: int = 10

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "TransportOptions":
        known = set(cls.__dataclass_fields__)
        unknown = set(kwargs) - known
        if unknown:
            from ..errors import InvalidOption

            raise InvalidOption(f"unknown transport option(s): {', '.join(sorted(unknown))}")
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
        self._headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **options.headers}
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
