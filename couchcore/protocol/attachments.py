"""Attachment operations (sans-I/O): upload streamed from files, download whole or streamed."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Mapping
from typing import Any, Generator

from ..errors import InvalidDocument, InvalidInput, MissingRevision
from .documents import refuse_lost_accepted
from .messages import _MEDIA_TYPE, Operation, Request, Response, check_media_type
from .paths import attachment_path
from .server import ServerContext

# imported at run time, not only for type checkers: typing.get_type_hints() of the public
# API (typeguard, pydantic, IDEs' runtime inspection) resolves these names in this module
from .shapes import DocResult

__all__ = ["put_attachment", "get_attachment", "open_attachment", "delete_attachment"]


def _doc_id(doc: Any) -> str:
    if isinstance(doc, str):
        return doc
    if isinstance(doc, Mapping) and isinstance(doc.get("_id"), str):
        return str(doc["_id"])
    raise InvalidDocument("need a document id or a document with an _id")


def check_put_attachment(db: str, doc: Any, filename: str, content_type: str | None) -> None:
    """Refuse what :func:`put_attachment` would refuse of its arguments other than the
    content (:class:`InvalidDocument`, :class:`InvalidInput`): for a caller that must check
    them before it reads a content that can be read only once."""
    attachment_path(db, _doc_id(doc), filename)
    _check_content_type(content_type)


def put_attachment(ctx: ServerContext, db: str, doc: Any, content: Any, filename: str | None = None,
                   content_type: str | None = None) -> Operation[DocResult]:
    """Create or replace an attachment; ``content`` is bytes, str or a binary file object
    (streamed, never read whole; a text-mode file is sent as the UTF-8 of what it reads,
    like a str). Updates ``doc["_rev"]`` and puts the attachment's stub
    in ``doc["_attachments"]``, so ``save(doc)`` afterwards keeps it (CouchDB removes an
    attachment a written document has no stub of). Raises :class:`~couchcore.Conflict`
    for a stale ``_rev`` — also when a cluster answers ``202 Accepted`` because one lagging
    copy took it while the others refused it (the revision is withdrawn; see
    :func:`.documents.refuse_lost_accepted`)."""
    docid = _doc_id(doc)
    if filename is None:
        name = getattr(content, "name", None)
        if not isinstance(name, str):
            raise InvalidInput("filename is required unless content is a named file")
        own = _unwrap(content)
        if _file_io(own.buffer if isinstance(own, io.TextIOWrapper) else own) is None:
            # gzip.open("a.json.gz"), a tar member: named after the file they decode
            raise InvalidInput(f"filename is required: a {type(content).__name__} reads other bytes than "
                               "the file it is named after")
        filename = os.path.basename(name)
    path = attachment_path(db, docid, filename)  # a bad name is refused before its type is guessed
    _check_content_type(content_type)
    headers: dict[str, str] = dict(ctx.write_headers)
    if isinstance(content, str):
        content = content.encode("utf-8")
        content_type = content_type or _text_type(filename)
    if isinstance(content, (bytes, bytearray, memoryview)):
        body: Any = bytes(content)
    elif hasattr(content, "read"):
        body = content
        size = _remaining_size(content)
        if size is not None:
            headers["Content-Length"] = str(size)
    else:
        raise InvalidInput(f"attachment content must be bytes, str or a file object, not {type(content).__name__}")
    headers["Content-Type"] = content_type or _guess_type(filename)
    length = len(body) if isinstance(body, bytes) else headers.get("Content-Length")
    query = []
    rev = doc.get("_rev") if isinstance(doc, Mapping) else None
    if rev:
        query.append(("rev", rev))
    resp = yield Request("PUT", path, query=query, body=body, headers=headers)
    if resp.status == 409 and not rev:
        err = resp.error()  # CouchDB's bare "Document update conflict.": no revision was sent
        raise type(err)(err.status, err.error, f"{err.reason} Document {docid!r} exists and no _rev was given: "
                        "pass the document with its current _rev (put_attachment(db.get(id), ...)), not only "
                        "its id", err.method, err.url, err.headers, err.body)
    result: DocResult = resp.json()
    # a cluster answers 202 when one lagging copy took a stale rev the others refused
    yield from refuse_lost_accepted(ctx, db, docid, resp, rev or None)
    if isinstance(doc, dict) and result.get("rev"):
        doc["_rev"] = result["rev"]
        doc.setdefault("_id", docid)
        _put_stub(doc, filename, headers["Content-Type"], length, result["rev"])
    return result


def _put_stub(doc: dict[str, Any], filename: str, content_type: str, length: Any, rev: str) -> None:
    """Put the stub of attachment ``filename``, just written as revision ``rev``, in
    ``doc["_attachments"]`` (a stub is all a later write of the document needs to keep it;
    https://docs.couchdb.org/en/stable/api/document/common.html#attachments)."""
    atts = doc.get("_attachments")
    if not isinstance(atts, dict):
        if atts is not None:
            return  # not a dict of the caller's: left as it is
        atts = doc["_attachments"] = {}
    stub: dict[str, Any] = {"content_type": content_type}
    generation = rev.split("-", 1)[0]
    if generation.isdigit():
        stub["revpos"] = int(generation)
    if length is not None:
        stub["length"] = int(length)
    stub["stub"] = True
    atts[filename] = stub


def _check_content_type(content_type: Any) -> None:
    """``None``/``""`` (guess it) or a header-safe media type, else :class:`InvalidInput`:
    a CR/LF would end the header (pycurl sent the rest as another header, urllib3 raised
    its own ``ValueError``), a non-ASCII character is stored mangled (``text/\ufffd``)."""
    if content_type is None or content_type == "":
        return
    check_media_type(content_type)


# what a compressed file is (mimetypes names the type of what is inside: "a.json.gz" is
# ("application/json", "gzip"))
_ENCODED_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz",
                  "compress": "application/x-compress", "br": "application/x-brotli"}


def _guess_type(filename: str) -> str:
    """The content type of a file named ``filename``: a compressed file (``.gz``, ``.bz2``,
    ``.xz``, ...) is the compressed format, not the type of its contents."""
    import mimetypes  # here: only a file attachment needs it (import cost of every start-up)

    content_type, encoding = _guessed(mimetypes, filename)
    if encoding is not None:
        return _ENCODED_TYPES.get(encoding, "application/octet-stream")
    return content_type or "application/octet-stream"


#: media types outside text/* that hold text, whose str content gets ``;charset=utf-8``
_TEXTUAL = ("application/json", "application/javascript", "application/xml", "application/xhtml+xml",
            "application/ecmascript", "application/x-sh", "application/sql", "image/svg+xml")


def _text_type(filename: str) -> str:
    """The content type of str content stored as ``filename`` (sent as UTF-8): the type
    guessed from the name by Python's own table (the same on every host, unlike the
    system's ``mime.types``: ``index.html`` is ``text/html``), with ``;charset=utf-8``;
    ``text/plain;charset=utf-8`` when the name gives no type, a type that is not text
    (``pic.png``: str content is text) or a compressed one."""
    global _TEXT_TYPES
    if _TEXT_TYPES is None:
        import mimetypes

        _TEXT_TYPES = mimetypes.MimeTypes(filenames=())  # Python's table only, no system files
    guessed, encoding = _guessed(_TEXT_TYPES, filename)
    if guessed is not None and encoding is None and (
            guessed.startswith("text/") or guessed in _TEXTUAL or guessed.endswith(("+json", "+xml"))):
        return str(guessed) + ";charset=utf-8"
    return "text/plain;charset=utf-8"


_TEXT_TYPES: Any = None


def _guessed(table: Any, filename: str) -> tuple[str | None, str | None]:
    """``table.guess_type`` of ``filename`` as a file name, never as a URL: ``guess_type``
    reads a ``data:<type>,...`` URL's type from the name itself, and a name such as
    ``"data:text/plain\r\nX-Header: 1,a.txt"`` (a user's upload) put a header of its own in
    the request; a guess that is no header-safe media type counts as none."""
    guessed, encoding = table.guess_type("./" + filename)
    if guessed is not None and not _MEDIA_TYPE.match(guessed):
        guessed = None
    return guessed, encoding


def _unwrap(f: Any) -> Any:
    """The file object inside ``tempfile.NamedTemporaryFile``'s wrapper (its ``.file``, of
    the same name), else ``f``."""
    inner = getattr(f, "file", None)
    if isinstance(inner, io.IOBase) and getattr(inner, "name", None) == getattr(f, "name", None):
        return inner
    return f


def _file_io(f: Any) -> io.FileIO | None:
    """The file ``f`` reads the bytes of as they are (``open(path, "rb")``: a FileIO or a
    buffered reader over one), else ``None`` (``gzip.open``, a tar or zip member, ...)."""
    raw = f.raw if isinstance(f, (io.BufferedReader, io.BufferedRandom)) else f
    return raw if isinstance(raw, io.FileIO) else None


def _remaining_size(f: Any) -> int | None:
    """The bytes left to read in ``f`` when they are a regular file's own bytes (``open(path,
    "rb")``), else ``None`` (sent without a length): what ``gzip.open``, ``tarfile``,
    ``zipfile``, a text file or a pipe gives is not what the file's size on disk counts."""
    raw = _file_io(_unwrap(f))
    if raw is None:
        return None
    try:
        st = os.fstat(raw.fileno())
        if not stat.S_ISREG(st.st_mode):  # a pipe, socket or device: st_size means nothing
            return None
        return max(st.st_size - int(f.tell()), 0)
    except (OSError, ValueError):
        return None


def _read_request(db: str, doc: Any, filename: str, rev: str | None, stream: bool) -> Request:
    """``GET /{db}/{docid}/{attname}``, with ``?rev=`` from ``rev`` or else from a
    document's ``_rev`` (a bare id reads the current revision)."""
    if rev is None and isinstance(doc, Mapping):
        rev = doc.get("_rev") or None
    if rev is not None and (not isinstance(rev, str) or not rev):
        raise InvalidInput(f"rev must be a non-empty str, got {rev!r}")
    query = [("rev", rev)] if rev is not None else []
    return Request("GET", attachment_path(db, _doc_id(doc), filename), query=query,
                   headers={"Accept": "*/*"}, stream=stream)


def get_attachment(ctx: ServerContext, db: str, doc: Any, filename: str,
                   rev: str | None = None) -> Generator[Request, Response, bytes]:
    """An attachment's bytes as it is in revision ``rev`` (or the document's ``_rev``)."""
    resp = yield _read_request(db, doc, filename, rev, stream=False)
    resp.raise_for_status()
    return resp.body or b""


def open_attachment(ctx: ServerContext, db: str, doc: Any, filename: str,
                    rev: str | None = None) -> Generator[Request, Response, Response]:
    """The streamed response of an attachment (its ``stream`` yields byte chunks)."""
    resp = yield _read_request(db, doc, filename, rev, stream=True)
    resp.raise_for_status()
    return resp


def delete_attachment(ctx: ServerContext, db: str, doc: Any, filename: str) -> Operation[DocResult]:
    docid = _doc_id(doc)
    rev = doc.get("_rev") if isinstance(doc, Mapping) else None
    if not rev:
        raise MissingRevision(f"deleting an attachment needs the document's _rev (document {docid!r})")
    resp = yield Request("DELETE", attachment_path(db, docid, filename), query=[("rev", rev)],
                         headers=ctx.write_headers)
    result: DocResult = resp.json()
    yield from refuse_lost_accepted(ctx, db, docid, resp, rev)  # a cluster's 202 for a stale rev
    if isinstance(doc, dict) and result.get("rev"):
        doc["_rev"] = result["rev"]
        atts = doc.get("_attachments")
        if isinstance(atts, dict):
            atts.pop(filename, None)  # a stub of it would make save(doc) answer 412 missing_stub
    return result
