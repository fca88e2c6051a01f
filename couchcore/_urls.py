"""URL helpers: split credentials out of server URLs and hide them everywhere else."""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import InvalidInput, redact_url  # errors is the leaf: it imports nothing of couchcore

__all__ = ["redact_url", "split_credentials", "split_database_url", "ServerURL"]

_AUTHORITY_END = re.compile(r"[/?#]")

_ENCODE_HINT = (
    "percent-encode the user name and password in the URL "
    "(urllib.parse.quote(password, safe='')) or pass auth=(user, password)"
)


def _invalid(message: str) -> Exception:
    return InvalidInput(message)


def _check_authority(url: str) -> None:
    """Refuse a URL whose credentials :func:`urllib.parse.urlsplit` would misread.

    The authority ends at the first ``/``, ``?`` or ``#``; an ``@`` after that point
    means a password (or user name) holding one of those characters unencoded, which
    ``urlsplit`` silently turns into a host, port, path or fragment. The message never
    repeats the URL's user information.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return
    end = _AUTHORITY_END.search(rest)
    if end is None or "@" not in rest[end.start():]:
        return
    host = rest.rpartition("@")[2]
    host = _AUTHORITY_END.split(host, 1)[0]
    raise _invalid(
        f"the URL {scheme}://***@{host} has a user name or password containing "
        f"'/', '?', '#' or '@' that is not percent-encoded: {_ENCODE_HINT}"
    )


class ServerURL(NamedTuple):
    """A server base URL without credentials, and the credentials it carried."""

    base: str
    username: str | None
    password: str | None


def split_credentials(url: str) -> ServerURL:
    """Split ``http://user:pw@host:port/prefix`` into a clean base URL and credentials.

    The base keeps any path prefix (for servers mounted below ``/``) without a
    trailing slash. User name and password must be percent-encoded as RFC 3986 asks
    (``quote(password, safe='')``); they are decoded here. A URL that is not
    ``http(s)``, has no host, a bad port, a query or fragment, or credentials that
    cannot be read unambiguously raises :class:`~couchcore.errors.InvalidInput`, whose
    message never contains the password.
    """
    if not isinstance(url, str):
        raise _invalid(f"the server URL must be a str, not {type(url).__name__}")
    if re.search(r"[,\s]\s*https?://", url):  # "http://a:5984,http://b:5984" (as COUCHDB_URL may list them)
        raise _invalid("one URL holds several (separated by ',' or spaces): give a cluster's nodes as a "
                       "list, Server([url1, url2, ...])")
    _check_authority(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # bad port or IPv6 literal; its text may hold the password
        reason = "bad port" if "port" in str(exc).lower() else "malformed host"
        raise _invalid(f"not a valid http(s) URL ({reason}): {redact_url(url)!r}; if the "
                       f"password contains reserved characters, {_ENCODE_HINT}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid(f"not an http(s) URL: {redact_url(url)!r}")
    if parts.query or parts.fragment:
        raise _invalid(f"a server URL has no query or fragment: {redact_url(url)!r}")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return ServerURL(base, user, password)


def split_database_url(url: str) -> tuple[str, str]:
    """Split ``http://user:pw@host:5984/prefix/db%2Fname`` into the server URL (with
    its credentials, for :func:`split_credentials`) and the decoded database name.

    Raises :class:`~couchcore.errors.InvalidInput` (the message never holds the password)
    for what :func:`split_credentials` refuses, a URL whose path names no database
    (``http://host:5984/``) and a document's URL (``.../db/_design/app``); the name itself
    is the caller's to check (``validate_db_name``).
    """
    split_credentials(url)  # the same checks, before anything is taken apart
    parts = urlsplit(url)
    # the scheme and authority as written (the authority follows the '//': a host such as 's'
    # or 'http' also stands inside the scheme, where url.index(netloc) found it)
    origin = url[: url.index("//") + 2 + len(parts.netloc)]
    path = parts.path.rstrip("/")
    base_path, _, name = path.rpartition("/")
    if not name:
        raise InvalidInput(f"the URL names no database: {redact_url(url)} (expected http://host:5984/DBNAME)")
    segments = [unquote(seg) for seg in base_path.split("/")]
    if "_design" in segments or "_local" in segments:
        # http://host:5984/db/_design/app is a design document's URL: taken apart as the
        # database "app" under the path prefix /db/_design, whose HEAD (the document) said
        # it existed
        cut = segments.index("_design") if "_design" in segments else segments.index("_local")
        raise InvalidInput(f"{redact_url(url)!r} is a document's URL, not a database's: give the "
                           f"database's ({redact_url(origin)}"
                           f"{'/'.join(base_path.split('/')[:cut])}) and the document id to get()")
    server_url = origin + base_path
    return server_url, unquote(name)
