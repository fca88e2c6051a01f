"""URL helpers: split credentials out of server URLs and hide them everywhere else."""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit, urlunsplit

__all__ = ["redact_url", "split_credentials", "ServerURL"]

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/?#\s]*@)")


def redact_url(url: str) -> str:
    """Return ``url`` with any ``user:password@`` replaced by ``***@``."""
    return _USERINFO.sub(lambda m: m.group("scheme") + "***@", url)


class ServerURL(NamedTuple):
    """A server base URL without credentials, and the credentials it carried."""

    base: str
    username: str | None
    password: str | None


def split_credentials(url: str) -> ServerURL:
    """Split ``http://user:pw@host:port/prefix`` into a clean base URL and credentials.

    The base keeps any path prefix (for servers mounted below ``/``) without a
    trailing slash.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        from .errors import InvalidInput

        raise InvalidInput(f"not an http(s) URL: {redact_url(url)!r}")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return ServerURL(base, user, password)


def join_url(base: str, path: str) -> str:
    """Join a base URL (no trailing slash) with an already-quoted absolute path."""
    return base + path


def quote_segment(segment: str) -> str:
    """Percent-encode one path segment (``/``, ``+``, ``?``, ``#``, ``%`` all escaped)."""
    return quote(segment, safe="")
