"""Database-name validation and percent-encoding of the paths couchcore builds.

The one place where couchcore percent-encodes what goes into a URL path (database names,
document ids, attachment, design, view, function, index and node names) or into a URL's
user information; query strings are encoded by ``Request.target`` (protocol/messages.py).
"""

from __future__ import annotations

import re
from collections.abc import Sized
from urllib.parse import quote

from ..errors import InvalidDatabaseName, InvalidInput, redact_url

__all__ = ["validate_db_name", "quote_segment", "quote_segments", "db_path", "doc_path", "attachment_path",
           "design_path", "view_path", "node_path", "split_design_name", "url_with_credentials"]

# CouchDB: a lowercase letter, then lowercase letters, digits and _$()+-/ ; at most 238 chars.
_DB_NAME = re.compile(r"^[a-z][a-z0-9_$()+/-]*$")
_SYSTEM_DBS = frozenset({"_users", "_replicator", "_global_changes"})
_SYSTEM_SUFFIXES = ("/_users", "/_replicator")
MAX_DB_NAME = 238


def validate_db_name(name: object) -> str:
    """Return ``name`` if CouchDB accepts it as a database name, else raise.

    Raises :class:`InvalidDatabaseName` (a ``ValueError``).
    """
    if not isinstance(name, str):
        raise InvalidDatabaseName(f"database name must be a str, not {type(name).__name__}")
    if name in _SYSTEM_DBS:
        return name
    base = name
    for suffix in _SYSTEM_SUFFIXES:
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            break
    if not name or len(name) > MAX_DB_NAME or not _DB_NAME.match(base):
        raise InvalidDatabaseName(
            f"invalid database name {redact_url(name)!r}: it must start with a lowercase letter (a-z), "
            "contain only a-z, 0-9 and _ $ ( ) + - /, and be at most 238 characters"
        )
    return name


#: the characters quote() never escapes (RFC 3986's unreserved ones)
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"


def quote_segment(text: str) -> str:
    """Percent-encode ``text`` as one path segment: every reserved character escaped,
    ``/``, ``+``, ``?``, ``#``, ``%`` and ``@`` included (also right for a user name or
    password in a URL's user information). Text that is not valid Unicode (a lone
    surrogate) raises :class:`InvalidInput`, without echoing the text."""
    if not text.strip(_UNRESERVED):  # nothing to escape (most ids and names): quote() would return it as is
        return text
    try:
        return quote(text, safe="")
    except UnicodeEncodeError:
        raise InvalidInput("a document id, attachment name, database name, user name or password "
                           "holds a lone surrogate, which is no Unicode text (nothing was sent)") from None


def quote_segments(path: str) -> str:
    """Percent-encode each ``/``-separated part of ``path``; the slashes stay."""
    return "/".join(quote_segment(part) for part in path.split("/"))


def db_path(name: str) -> str:
    """``/name`` with every reserved character (including ``/``) escaped."""
    return "/" + quote_segment(name)


def node_path(node: str) -> str:
    """``/_node/{node}``: a cluster node's name (``couchdb@127.0.0.1``) keeps its ``@``."""
    return "/_node/" + quote(node, safe="@")


def url_with_credentials(url: str, username: str, password: str | None) -> str:
    """``url`` (``scheme://host...``, no credentials) with ``username:password@`` put in,
    both percent-encoded."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{quote_segment(username)}:{quote_segment(password or '')}@{rest}"


def _shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters with its type
    named: a misplaced attachment or document must not become a megabyte-long message."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" of length {len(value)}" if isinstance(value, Sized) else ""
    return f"{text[:limit]}... (a {type(value).__name__}{size})"


def doc_path(db: str, docid: str) -> str:
    """The path of a document; ``_design/`` and ``_local/`` prefixes keep their slash."""
    if not isinstance(docid, str) or not docid:
        raise InvalidInput(f"document id must be a non-empty str, got {_shown(docid)}")
    for prefix in ("_design/", "_local/"):
        if docid.startswith(prefix) and len(docid) > len(prefix):
            return f"{db_path(db)}/{prefix}{quote_segment(docid[len(prefix):])}"
    if docid.startswith("_"):
        # /db/_security, /db/_all_docs, ...: an endpoint, not a document
        raise InvalidInput(f"document id {docid!r} is reserved: ids may start with '_' only as "
                           "'_design/...' or '_local/...' "
                           "(https://docs.couchdb.org/en/stable/api/document/common.html)")
    return f"{db_path(db)}/{quote_segment(docid)}"


def attachment_path(db: str, docid: str, filename: str) -> str:
    if not isinstance(filename, str) or not filename:
        raise InvalidInput(f"attachment name must be a non-empty str, got {_shown(filename)}")
    return f"{doc_path(db, docid)}/{quote_segment(filename)}"


def design_path(db: str, ddoc: str) -> str:
    """Path of a design document given as ``name`` or ``_design/name``."""
    if not isinstance(ddoc, str):
        raise InvalidInput(f"design document name must be a str, got {_shown(ddoc)}")
    if ddoc.startswith("_design/"):
        ddoc = ddoc[len("_design/") :]
    if not ddoc:
        raise InvalidInput("design document name must not be empty")
    return f"{db_path(db)}/_design/{quote_segment(ddoc)}"


_SPECIAL_VIEWS = ("_all_docs", "_design_docs", "_local_docs")


def split_design_name(name: str, kind: str) -> tuple[str, str] | None:
    """``(ddoc, fn)`` of ``"_design/{ddoc}/{kind}/{fn}"`` or of ``"{ddoc}/{fn}"``, or ``None``.

    Design document names may hold slashes (``_design/app/v2``): in the long form the
    design name is everything between ``_design/`` and the first ``/{kind}/`` (so
    ``"_design/app/v2/_view/by_n"`` is view ``by_n`` of ``_design/app/v2``); the short
    form ``"ddoc/fn"`` has exactly one slash. Empty parts give ``None``, and so does
    ``"_design/{ddoc}"`` (a design document, not one of its functions).
    """
    marker = f"/{kind}/"
    if name.startswith("_design/") and marker in name[len("_design") :]:
        ddoc, _, fn = name[len("_design/") :].partition(marker)
        return (ddoc, fn) if ddoc and fn else None
    parts = name.split("/")
    if len(parts) == 2 and all(parts) and parts[0] != "_design":  # "_design/app" names no function
        return parts[0], parts[1]
    return None


def view_path(db: str, name: str, kind: str = "_view") -> str:
    """Resolve ``"ddoc/view"``, ``"_design/ddoc/_view/view"`` or ``"_all_docs"`` to a path.

    The design name of the long form may hold slashes (``"_design/app/v2/_view/by_n"``),
    percent-encoded in the path as CouchDB serves it: ``/db/_design/app%2Fv2/_view/by_n``.
    """
    if not isinstance(name, str):
        raise InvalidInput(f"view name must be a str, got {_shown(name)}")
    if kind == "_view" and name in _SPECIAL_VIEWS:
        return f"{db_path(db)}/{name}"
    split = split_design_name(name, kind)
    if split is None:
        raise InvalidInput(
            f"invalid view name {name!r}: use 'ddoc/view', '_design/ddoc/{kind}/view' or '_all_docs' "
            "(no empty parts; a design name with slashes needs the '_design/...' form)"
        )
    ddoc, view = split
    return f"{design_path(db, ddoc)}/{kind}/{quote_segment(view)}"
