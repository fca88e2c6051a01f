"""Reading many documents (or given revisions) in one request: ``POST /{db}/_bulk_get``.

``_bulk_get`` (CouchDB 2.0+) answers ``{"results": [{"id", "docs": [{"ok": doc} |
{"error": {"id", "rev", "error", "reason"}}]}, ...]}`` with one result per requested
``{"id", "rev"?}``, in order. Where the server has no ``_bulk_get`` the ids are read with
``_all_docs?keys`` (and given revisions with one ``open_revs`` GET per document); whether
it has one is probed with the first call and remembered in the :class:`ServerContext`.
https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-get
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generator, Union

from .. import codec
from .. import _rows
from ..errors import InvalidInput, InvalidOption, error_for_status
from ..models import Document
from .messages import Request, Response
from .paths import db_path, doc_path
from .server import ServerContext

__all__ = ["get_many", "DocRef", "BULK_GET_OPTIONS", "PER_DOCUMENT_OPTIONS", "ROW_OPTIONS", "check_refs"]

#: An id, or an ``(id, rev)`` pair naming one revision.
DocRef = Union[str, tuple[str, str]]

#: Query options of ``_bulk_get`` (the document-read options CouchDB accepts there).
BULK_GET_OPTIONS = frozenset({"revs", "attachments", "att_encoding_info", "latest", "conflicts",
                              "deleted_conflicts", "revs_info", "local_seq", "meta"})

#: Options CouchDB's ``_bulk_get`` takes but leaves out of its answer (3.5 answers
#: ``?revs_info=true``, ``?local_seq=true`` and ``?meta=true`` without ``_revs_info`` /
#: ``_local_seq``, which ``GET /{db}/{id}`` has): with one of them the ids are read with
#: one GET each, as a server without ``_bulk_get`` reads them.
PER_DOCUMENT_OPTIONS = frozenset({"revs_info", "local_seq", "meta"})

#: View options that select, reorder or reduce the rows of ``_all_docs?keys``: with them
#: the answer would no longer be one entry per id, in order (``descending=True`` gave
#: ``[None, b, a]`` for ``["a", "b", "zz"]``), so :func:`get_many` refuses them.
ROW_OPTIONS = frozenset({"skip", "limit", "descending", "key", "keys", "startkey", "start_key", "endkey",
                         "end_key", "startkey_docid", "start_key_doc_id", "endkey_docid", "end_key_doc_id",
                         "inclusive_end", "group", "group_level", "reduce"})

# statuses that say "no _bulk_get here" (CouchDB 1.x treats it as a document id)
_ABSENT = (400, 404, 405, 501)
# per-document errors of a _bulk_get answer, as HTTP statuses
_ERROR_STATUS = {"bad_request": 400, "unauthorized": 401, "forbidden": 403}


def check_refs(refs: Iterable[Any]) -> list[DocRef]:
    """The refs as a list; raises :class:`InvalidInput` for anything but non-empty str
    ids and ``(id, rev)`` pairs of non-empty str, and for ids reserved for endpoints
    (``_all_docs``, ``_bad``: only ``_design/...`` and ``_local/...`` may begin with ``_``)."""
    out: list[DocRef] = []
    for ref in refs:
        if isinstance(ref, str):
            if not ref:
                raise InvalidInput("document ids must be non-empty str")
            doc_path("db", ref)  # a reserved id raises InvalidInput, as a single get does
            out.append(ref)
        elif isinstance(ref, tuple) and len(ref) == 2:
            docid, rev = ref
            if not isinstance(docid, str) or not docid:
                raise InvalidInput(f"document ids must be non-empty str, got {docid!r} in {ref!r}")
            if not isinstance(rev, str) or not rev:
                raise InvalidInput(f"revisions must be non-empty str, got {rev!r} in {ref!r}")
            doc_path("db", docid)
            out.append((docid, rev))
        else:
            raise InvalidInput(f"get takes ids (str) or (id, rev) pairs, got {ref!r}")
    return out


def _key(ref: DocRef) -> tuple[str, str | None]:
    return (ref, None) if isinstance(ref, str) else ref


def get_many(ctx: ServerContext, db: str, refs: Iterable[Any],
             **options: Any) -> Generator[Request, Response, list[Document | None]]:
    """Documents for ``refs`` (ids, or ``(id, rev)`` pairs for given revisions), in
    order, ``None`` where a document or revision is missing (a deleted document asked
    for by id is missing; a deleted revision asked for by ``(id, rev)`` is its tombstone).

    ``options``: with only :data:`BULK_GET_OPTIONS` ``_bulk_get`` is used where the
    server has it; view options (``conflicts``, ``attachments``, ``stale``, ...) read the
    ids through ``_all_docs?keys`` (not with revisions; not those that select or
    reorder rows, :data:`ROW_OPTIONS`, which would break one entry per id);
    ``revs_info``, ``local_seq`` and ``meta``, which ``_bulk_get`` leaves out of its
    answer, read each id with one GET
    (:data:`PER_DOCUMENT_OPTIONS`; a revision read so has none of them, as
    ``GET /{db}/{id}?rev=`` has none). Bad input raises
    :class:`InvalidInput` / :class:`InvalidOption` before anything is sent.
    """
    refs = check_refs(refs)
    has_revs = any(not isinstance(ref, str) for ref in refs)
    bulk_ok = set(options) <= BULK_GET_OPTIONS
    if not bulk_ok:
        if "rev" in options or "open_revs" in options:
            raise InvalidOption(f"get([ids]) takes no {'rev' if 'rev' in options else 'open_revs'}=: for given "
                                "revisions pass (id, rev) pairs, get([(id, rev), ...]); for one document, "
                                "get(id, rev=...)")
        unknown = sorted(set(options) - BULK_GET_OPTIONS - set(codec.VIEW_OPTIONS))
        if unknown:
            raise InvalidOption(f"unknown get([ids]) option {unknown[0]!r}; known: {', '.join(sorted(BULK_GET_OPTIONS))}, "
                                "and view options (read through _all_docs?keys): "
                                f"{', '.join(sorted(set(codec.VIEW_OPTIONS) - ROW_OPTIONS - BULK_GET_OPTIONS))}")
        if has_revs:
            raise InvalidOption(f"get([(id, rev), ...]) takes only {', '.join(sorted(BULK_GET_OPTIONS))}")
        moving = sorted(ROW_OPTIONS & set(options))
        if moving:
            raise InvalidOption(f"get([ids]) answers one entry per id, in order: no {', '.join(map(repr, moving))} "
                                "(a view option for ranges of rows; use view('_all_docs', ...) for those)")
        codec.view_query(options)  # fail before sending
    else:
        _bulk_query(options)
    if not refs:
        return []
    if any(_key(ref)[0].startswith(_LOCAL) for ref in refs) and (has_revs or bulk_ok):
        # _bulk_get and open_revs do not serve _local documents (CouchDB answers "missing"):
        # one GET each for those, the rest as below
        local = list(dict.fromkeys(ref for ref in refs if _key(ref)[0].startswith(_LOCAL)))
        found_local = yield from _get_local(db, local)
        others = [ref for ref in refs if not _key(ref)[0].startswith(_LOCAL)]
        found_others = (yield from get_many(ctx, db, others, **options)) if others else []
        by_ref = dict(zip((_key(ref) for ref in others), found_others))
        by_ref.update(zip((_key(ref) for ref in local), found_local))
        return [by_ref[_key(ref)] for ref in refs]
    if bulk_ok and ctx.bulk_get is not False and not any(options.get(name) for name in PER_DOCUMENT_OPTIONS):
        found = yield from _bulk_get(ctx, db, refs, options)
        if found is not None:
            return found
    if not has_revs and set(options) <= set(codec.VIEW_OPTIONS):
        docs = yield from _all_docs(db, refs, options)
        return docs
    docs = yield from _open_revs(db, refs, options)
    return docs


_LOCAL = "_local/"


def _get_local(db: str, refs: list[DocRef]) -> Generator[Request, Response, list[Document | None]]:
    """``_local`` documents by one ``GET`` each: ``None`` when missing, or (for an
    ``(id, rev)`` pair) when the document has another revision."""
    out: list[Document | None] = []
    for ref in refs:
        docid, rev = _key(ref)
        resp = yield Request("GET", doc_path(db, docid))
        if resp.status == 404 and not _db_missing(resp):
            out.append(None)
            continue
        resp.raise_for_status()
        doc = Document(resp.json())
        out.append(doc if rev is None or doc.get("_rev") == rev else None)
    return out


def _bulk_query(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    for name, value in options.items():
        if value is not None and not isinstance(value, bool):
            raise InvalidOption(f"option {name!r} must be a bool, not {type(value).__name__}")
    return codec.encode_query(options)


def _bulk_get(ctx: ServerContext, db: str, refs: list[DocRef],
              options: Mapping[str, Any]) -> Generator[Request, Response, list[Document | None] | None]:
    """The documents by ``_bulk_get``, or ``None`` when the server has none (remembered)
    or its answer does not match the request (then another path must answer)."""
    wanted = list(dict.fromkeys(_key(ref) for ref in refs))  # each (id, rev) once
    body = {"docs": [{"id": docid} if rev is None else {"id": docid, "rev": rev} for docid, rev in wanted]}
    resp = yield Request("POST", f"{db_path(db)}/_bulk_get", query=_bulk_query(options), json=body,
                         idempotent=True)
    if resp.status in _ABSENT and not _db_missing(resp):
        ctx.bulk_get = False
        return None
    resp.raise_for_status()
    ctx.bulk_get = True
    parser = _rows.make_parser("bulk_get")
    results = parser.feed(resp.body or b"") + parser.close()
    found = _match(db, wanted, results, bool(options.get("latest")))
    if found is None:
        return None
    return [found[_key(ref)] for ref in refs]


def _match(db: str, wanted: list[tuple[str, str | None]], results: list[dict[str, Any]],
           latest: bool = False) -> dict[tuple[str, str | None], Document | None] | None:
    """``{(id, rev): Document | None}``, or ``None`` when ``results`` is not one entry per
    request, in order, each with one answer for that request (PouchDB Server merges
    repeated ids and may answer another revision). With ``latest`` the answer to
    ``(id, rev)`` is the latest leaf descending from ``rev``: its own ``_rev``."""
    if len(results) != len(wanted):
        return None
    out: dict[tuple[str, str | None], Document | None] = {}
    for (docid, rev), result in zip(wanted, results):
        docs = result.get("docs")
        if result.get("id") != docid or not isinstance(docs, list) or len(docs) != 1 \
                or not isinstance(docs[0], dict):
            return None
        entry = docs[0]
        doc = entry.get("ok")
        if isinstance(doc, Document):
            if doc.get("_id") != docid or (rev is not None and not latest and doc.get("_rev") != rev):
                return None
            out[(docid, rev)] = None if rev is None and doc.get("_deleted") else doc
        elif "ok" in entry:
            return None
        else:  # {"error": {...}} (CouchDB), {"missing": rev} or {} (PouchDB Server): not there
            error = entry.get("error")
            if isinstance(error, dict) and error.get("error") not in (None, "not_found"):
                # a per-document error other than "missing" (e.g. 400 "Invalid rev format"):
                # raised as a GET of that document would raise it
                name = str(error.get("error"))
                status = _ERROR_STATUS.get(name, 500)
                reason = error.get("reason")
                raise error_for_status(status)(status, name, None if reason is None else str(reason), "POST",
                                               f"{db_path(db)}/_bulk_get")
            out[(docid, rev)] = None
    return out


def _db_missing(resp: Response) -> bool:
    if resp.status != 404:
        return False
    return resp.error().reason in ("no_db_file", "Database does not exist.")


def _all_docs(db: str, ids: Sequence[DocRef],
              options: Mapping[str, Any]) -> Generator[Request, Response, list[Document | None]]:
    query, _ = codec.view_query({**options, "include_docs": True})
    resp = yield Request("POST", f"{db_path(db)}/_all_docs", query=query, json={"keys": ids}, idempotent=True)
    resp.raise_for_status()
    parser = _rows.make_parser("view")
    rows = parser.feed(resp.body or b"") + parser.close()
    from .._results import docs_of_rows

    return docs_of_rows(rows, resp.method, resp.url)  # a miss: None; another error row raises


def _open_revs(db: str, refs: list[DocRef],
               options: Mapping[str, Any]) -> Generator[Request, Response, list[Document | None]]:
    """Without ``_bulk_get``: ids through ``_all_docs`` (one GET each with options it
    does not take), revisions with one ``GET /{db}/{id}?open_revs=[...]`` per document."""
    ids = list(dict.fromkeys(ref for ref in refs if isinstance(ref, str)))
    by_id: dict[tuple[str, str | None], Document | None] = {}
    if ids and set(options) <= set(codec.VIEW_OPTIONS):
        docs = yield from _all_docs(db, ids, options)
        by_id.update(zip(((docid, None) for docid in ids), docs))
    else:  # options _all_docs does not take (revs, latest, ...): one GET each
        for docid in ids:
            resp = yield Request("GET", doc_path(db, docid), query=codec.encode_query(options))
            if resp.status == 404:
                by_id[(docid, None)] = None
            else:
                by_id[(docid, None)] = Document(resp.json())
    if options.get("latest"):
        # latest=true answers the leaves descending from each revision asked for, under
        # their own revision ids: one GET ?rev=...&latest=true a revision (the one
        # GET /{db}/{id}?rev= answers, the winner of those leaves)
        for pair in dict.fromkeys(ref for ref in refs if not isinstance(ref, str)):
            docid, rev = pair
            resp = yield Request("GET", doc_path(db, docid), query=[("rev", rev)] + codec.encode_query(options))
            if resp.status == 404 and not _db_missing(resp):
                by_id[pair] = None
            else:
                by_id[pair] = Document(resp.json())
        return [by_id[_key(ref)] for ref in refs]
    revs: dict[str, list[str]] = {}
    for ref in refs:
        if not isinstance(ref, str):
            revs.setdefault(ref[0], [])
            if ref[1] not in revs[ref[0]]:
                revs[ref[0]].append(ref[1])
    for docid, wanted in revs.items():
        query = [("open_revs", codec.dumps(wanted).decode("utf-8"))] + codec.encode_query(options)
        resp = yield Request("GET", doc_path(db, docid), query=query)
        if resp.status == 404:
            for rev in wanted:
                by_id[(docid, rev)] = None
            continue
        for item in resp.json():
            doc = item.get("ok") if isinstance(item, dict) else None
            if isinstance(doc, dict):
                by_id[(docid, doc.get("_rev"))] = Document(doc)
        for rev in wanted:
            by_id.setdefault((docid, rev), None)
    return [by_id[_key(ref)] for ref in refs]
