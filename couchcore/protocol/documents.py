"""Document operations (sans-I/O): read, write in bulk with conflict handling, delete, copy."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Callable, Iterable, NamedTuple, cast

from .. import codec
from .._scan import bulk_ok as _bulk_ok
from .._scan import plain_ids as _plain_ids
from ..errors import (
    CouchcoreError,
    HTTPError,
    InvalidDocument,
    InvalidInput,
    MissingRevision,
    OutcomeUnknown,
    ParseError,
    TransportError,
    error_for_status,
)
from ..models import ConflictResolution, Document
from .messages import Operation, Request, Response, resend_on_5xx
from .paths import db_path, doc_path, quote_segment
from .server import ServerContext, take_uuids

# imported at run time, not only for type checkers: typing.get_type_hints() of the public
# API (typeguard, pydantic, IDEs' runtime inspection) resolves these names in this module
from .shapes import PendingWrite

__all__ = [
    "get_doc",
    "get_docs",
    "doc_exists",
    "save_docs",
    "delete_doc",
    "copy_doc",
    "revisions",
    "current_revs",
    "update_doc",
    "DEFAULT_RETRIES",
]

#: Options of GET /db/doc; the JSON-valued ones are JSON-encoded.
GET_OPTIONS = {
    "rev": False,
    "revs": False,
    "revs_info": False,
    "open_revs": True,
    "conflicts": False,
    "deleted_conflicts": False,
    "attachments": False,
    "att_encoding_info": False,
    "atts_since": True,
    "latest": False,
    "local_seq": False,
    "meta": False,
    "r": False,  # cluster read quorum: copies that must agree (default n div 2 + 1)
}

#: options of a _bulk_docs request body
_BULK_OPTIONS = frozenset({"new_edits", "all_or_nothing", "w"})

# error strings CouchDB puts in per-document _bulk_docs results
#: the pending errors of 202 writes that no round may write again (see _settle_accepted): one
#: whose lost revision could not be withdrawn (it is stored, beside the other writer's), and
#: one whose fate could not be read (it is stored; whether it lost is unknown)
STORED_AS_CONFLICT = "stored_as_conflict"
UNKNOWN_OUTCOME = "unknown_outcome"
_NOT_RESOLVABLE = frozenset({STORED_AS_CONFLICT, UNKNOWN_OUTCOME})

_BULK_ERROR_STATUS = {"conflict": 409, STORED_AS_CONFLICT: 409, "forbidden": 403, "unauthorized": 401, "not_found": 404, "missing_stub": 412,
                      "document_too_large": 413, "too_large": 413,
                      # a whole request refused with 400 for one document (see _bulk_write)
                      "bad_request": 400, "illegal_docid": 400, "doc_validation": 400,
                      # a design document CouchDB cannot use (PUT /{db}/_design/{ddoc} answers 400)
                      "compilation_error": 400, "invalid_design_doc": 400}


#: the boolean ones: CouchDB reads only ``true`` as true (``conflicts=1`` is false, silently)
_BOOL_GET_OPTIONS = frozenset({"revs", "revs_info", "conflicts", "deleted_conflicts", "attachments",
                               "att_encoding_info", "latest", "local_seq", "meta"})


def check_doc_options(opts: Mapping[str, Any]) -> None:
    """The options of ``GET /{db}/{docid}``: known names, a bool (or ``"true"``/``"false"``)
    for the boolean ones, a str ``rev``, revision lists, a positive ``r``; else
    :class:`InvalidInput` before anything is sent.
    https://docs.couchdb.org/en/stable/api/document/common.html#get--db-docid"""
    unknown = set(opts) - set(GET_OPTIONS)
    if unknown:
        hint = (" (get() has no default, unlike couchdb-python's: catch couchcore.NotFound, or use "
                "get([id])[0], which is None for a missing id)") if "default" in unknown else ""
        raise InvalidInput(f"unknown document option(s): {', '.join(sorted(unknown))}{hint}")
    codec.check_flags(opts, _BOOL_GET_OPTIONS, "document", InvalidInput)
    if opts.get("rev") is not None and not isinstance(opts["rev"], str):
        raise InvalidInput(f"document option 'rev' must be a revision str, got {opts['rev']!r}")
    if "r" in opts:
        check_quorum("r", opts["r"])
    for name in ("open_revs", "atts_since"):
        if name in opts and not (name == "open_revs" and opts[name] == "all"):
            _rev_list(name, opts[name])


def _rev_list(name: str, value: Any) -> list[str]:
    """``open_revs`` / ``atts_since``: revision strings in a list, tuple or set (a set in sorted
    order), else InvalidInput. CouchDB: https://docs.couchdb.org/en/stable/api/document/common.html"""
    if isinstance(value, (set, frozenset)):
        value = sorted(value, key=str)
    if not isinstance(value, (list, tuple)) or not all(isinstance(rev, str) for rev in value):
        what = '"all" or ' if name == "open_revs" else ""
        raise InvalidInput(f"{name} must be {what}a list of revision strings, got {value!r}")
    return list(value)


def check_quorum(name: str, value: Any) -> int:
    """A cluster's read (``r``) or write (``w``) quorum: a positive int, else InvalidInput.
    CouchDB: https://docs.couchdb.org/en/stable/cluster/sharding.html#quorum"""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{name} (a cluster quorum: how many copies) must be a positive int, got {value!r}")
    return value


def _doc_query(opts: Mapping[str, Any]) -> list[tuple[str, str]]:
    if not opts:  # (most calls)
        return []
    check_doc_options(opts)
    json_keys = [k for k, is_json in GET_OPTIONS.items() if is_json and not (k == "open_revs" and opts.get(k) == "all")]
    if any(isinstance(opts.get(k), (set, frozenset)) for k in ("open_revs", "atts_since")):
        opts = {k: _rev_list(k, v) if k in ("open_revs", "atts_since") else v for k, v in opts.items()}
    return codec.encode_query(opts, json_keys)


def _wrap(value: Any) -> Any:
    return Document(value) if isinstance(value, dict) else value


def _no_revisions_asked(db: str, docid: str, opts: Mapping[str, Any]) -> bool:
    """``open_revs`` is an empty list or set: no request is needed (CouchDB would answer the
    current document instead of a list); a bad id is still refused."""
    revs = opts.get("open_revs")
    if isinstance(revs, (list, tuple, set, frozenset)) and not revs:
        doc_path(db, docid)
        return True
    return False


def get_doc(ctx: ServerContext, db: str, docid: str, /, **opts: Any) -> Operation[Document | list[dict[str, Any]]]:
    query = _doc_query(opts)
    if _no_revisions_asked(db, docid, opts):
        return []
    resp = yield Request("GET", doc_path(db, docid), query=query)
    return _decode_doc(resp, opts)


def _decode_doc(resp: Any, opts: Mapping[str, Any]) -> Document | list[dict[str, Any]]:
    data = resp.json()
    if "open_revs" in opts and isinstance(data, list):  # [{"ok": doc} | {"missing": rev}]
        return [{k: _wrap(v) for k, v in item.items()} for item in data]
    return Document(data)


def doc_exists(ctx: ServerContext, db: str, docid: str) -> Operation[bool]:
    resp = yield Request("HEAD", doc_path(db, docid))
    if resp.status == 404:
        return False
    resp.raise_for_status()
    return True


def get_docs(ctx: ServerContext, db: str, ids: Iterable[str], /, **opts: Any) -> Operation[list[Document | None]]:
    """Many documents in one ``_all_docs?keys`` request: Documents (or ``None``), in order."""
    ids = list(ids)
    for docid in ids:
        if not isinstance(docid, str):
            raise InvalidInput(f"document ids must be str, got {docid!r}")
    opts = {**opts, "include_docs": True}
    opts.pop("keys", None)
    query, _ = codec.view_query(opts)
    resp = yield Request("POST", f"{db_path(db)}/_all_docs", query=query, json={"keys": ids},
                         idempotent=True)
    from .. import _rows

    parser = _rows.make_parser("view")
    resp.raise_for_status()
    found = parser.feed(resp.body or b"") + parser.close()
    from .._results import docs_of_rows

    return docs_of_rows(found, resp.method, resp.url)  # a miss: None; another error row raises


def current_revs(ctx: ServerContext, db: str, ids: list[str]) -> Operation[dict[str, str]]:
    """``{id: rev}`` of the current (non-deleted) revision of each existing id."""
    resp = yield Request("POST", f"{db_path(db)}/_all_docs", json={"keys": ids}, idempotent=True)
    revs = {}
    for row in resp.json().get("rows", ()):
        value = row.get("value")
        if row.get("error") is None and isinstance(value, dict) and not value.get("deleted"):
            revs[row["id"]] = value["rev"]
    return revs


# -- saving ------------------------------------------------------------------------

#: How many times ``save(merge=/force=)`` and ``update_doc`` re-read and re-write a
#: document that conflicted because another writer changed it in between. Writers that
#: just won re-enter at once, so with k busy writers each attempt wins with about 1/k:
#: 20 retries ran out in 6 of 6 runs of 4 threads x 300 increments on CouchDB 3.5
#: (0.75**21 = 0.2% per update); 100 make that negligible, at most ~90 s of back-off.
DEFAULT_RETRIES = 100


def backoff(retry: int) -> float:
    """Seconds to wait before the ``retry``-th re-read of a contended document (0 for the
    first attempt): "full jitter" from 10 ms doubling up to 1 s, so writers that keep
    colliding spread out instead of one of them losing every round."""
    if retry <= 0:
        return 0.0
    import random  # here: only a contended update needs it (import cost of every start-up)

    return random.uniform(0.0, min(1.0, 0.01 * 2 ** retry))


def _delayed(op: Any, delay: float) -> Operation[Any]:
    """Run sub-operation ``op`` with its first request sent after ``delay`` seconds."""
    try:
        request = next(op)
    except StopIteration as stop:
        return stop.value
    request.delay = delay
    while True:
        try:
            response = yield request
        except BaseException as exc:  # a transport failure: the sub-operation's to handle
            try:
                request = op.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            request = op.send(response)
        except StopIteration as stop:
            return stop.value


def check_retries(retries: Any) -> int:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InvalidInput(f"retries must be a non-negative int, got {retries!r}")
    return retries




def _reserved_id(docid: str) -> str:
    return (f"_id {docid!r} is reserved: ids may start with '_' only as '_design/...' "
            "or '_local/...' (https://docs.couchdb.org/en/stable/api/document/common.html)")


def _check_doc(doc: Any, single: bool = True) -> str | None:
    """Check one document before sending; the reason when its ``_id`` is one CouchDB refuses
    (``illegal_docid``: not a string, empty, or reserved), which raises
    :class:`InvalidDocument` when ``single``; ``None`` when it may be sent."""
    if not isinstance(doc, Mapping):
        raise InvalidDocument(f"a document must be a dict, not {type(doc).__name__}")
    docid = doc.get("_id")
    reason = None
    if "_id" in doc and docid is None and isinstance(doc, dict):
        del doc["_id"]  # None means "no id yet": one is assigned below
    elif docid is not None and (not isinstance(docid, str) or not docid):
        if single:
            raise InvalidDocument(f"_id must be a non-empty str, got {docid!r}")
        # CouchDB's own reasons (https://docs.couchdb.org/en/stable/api/document/common.html)
        reason = "Document id must not be empty" if docid == "" else "Document id must be a string"
    elif isinstance(docid, str) and docid.startswith("_") and not (
            docid.startswith(("_design/", "_local/")) and docid not in ("_design/", "_local/")):
        if single:
            raise InvalidDocument(_reserved_id(docid))
        reason = _reserved_id(docid)
    # in a list: CouchDB would refuse the whole _bulk_docs request (400 illegal_docid) for it
    return reason


def _pending_key(docid: Any) -> str:
    """The key of a document refused for its ``_id`` in ``pending`` (a ``str``, as every
    key of ``pending``): a string ``_id`` itself, any other (a number, a bool, a list, an
    object) ``"_id:"`` and its JSON text (``5`` -> ``"_id:5"``, ``True`` -> ``"_id:true"``):
    a key no document CouchDB accepts can have (``"5"`` is another document's id)."""
    if isinstance(docid, str):
        return docid
    return "_id:" + codec.dumps(docid).decode()


def _id_refused(docid: Any) -> bool:
    """Whether CouchDB refuses ``docid`` (400 ``illegal_docid``): not a non-empty string, or
    reserved (see :func:`_check_doc`)."""
    if not isinstance(docid, str) or not docid:
        return True
    return docid.startswith("_") and not (docid.startswith(("_design/", "_local/"))
                                          and docid not in ("_design/", "_local/"))


def save_docs(
    ctx: ServerContext,
    db: str,
    docs: list[Any],
    facade: Any,
    single: bool,
    merge: Callable[[Document, Document | None], Mapping[str, Any] | None] | None = None,
    force: bool = False,
    retries: int = DEFAULT_RETRIES,
    **options: Any,
) -> Operation[ConflictResolution]:
    """Write ``docs`` with ``_bulk_docs`` and report each in a :class:`ConflictResolution`.

    Docs are updated in place (``_id``, ``_rev``). Conflicts are resolved with
    ``force`` (take the server's rev and overwrite) or ``merge`` (``fn(local, server)``);
    a document that conflicts again (someone else wrote in between) is re-read and
    ``fn`` re-applied to a copy of the original local document, up to ``retries`` times
    after the first write; whatever is not written stays in ``.pending``. With
    ``single=True`` a conflict (or any other error) raises, carrying the resolution;
    the message says how many attempts were made. On a CouchDB cluster, writes answered
    ``"accepted": true`` are settled by :func:`_settle_accepted` and a whole-request
    ``412 missing_stub`` by :func:`_recover_missing_stub`. ``options``: ``new_edits`` and
    ``all_or_nothing`` (bools), ``w`` (a positive int); anything else raises
    :class:`InvalidInput` before anything is sent.
    https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-docs
    """
    unknown = set(options) - _BULK_OPTIONS
    if unknown:
        raise InvalidInput(f"unknown save option(s): {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(sorted(_BULK_OPTIONS))}")
    check_retries(retries)
    if options.get("w") is not None:
        check_quorum("w", options["w"])
    for name in ("new_edits", "all_or_nothing"):
        # CouchDB 3.5 answers new_edits=0 or "false" in the body with 500 function_clause
        if options.get(name) is not None and not isinstance(options[name], bool):
            raise InvalidInput(f"save option {name!r} must be a bool, got {options[name]!r}")
    if merge is not None and not callable(merge):
        raise InvalidInput(f"merge must be a callable fn(local, server), not {type(merge).__name__}")
    missing: list[int] = []
    illegal: dict[int, str] = {}  # (a list's) documents with an _id CouchDB refuses: pending, not sent
    # (in C: the leading documents that are dicts with a plain str _id, which the loop passes over)
    for i in range(_plain_ids(docs, Document) if _plain_ids is not None else 0, len(docs)):
        doc = docs[i]
        cls = doc.__class__
        if cls is dict or cls is Document:  # the common cases: a str _id, or none
            docid = doc.get("_id")
            if docid.__class__ is str and docid and docid[0] != "_":
                continue
            if docid is None:
                if "_id" in doc:
                    del doc["_id"]  # None means "no id yet"
                missing.append(i)
                continue
        refused = _check_doc(doc, single)
        if refused is not None:
            illegal[i] = refused
        elif "_id" not in doc:
            missing.append(i)
    encoded = codec.dumps_array(docs)  # fail on bad docs before sending anything
    if missing:
        new_ids = yield from take_uuids(ctx, len(missing))
        for i, docid in zip(missing, new_ids):
            docs[i]["_id"] = docid
        encoded = codec.dumps_array(docs)
    resolution = ConflictResolution(facade)
    failed_here: set[str] = set()
    sent = docs
    if illegal:  # CouchDB would refuse the whole request (400 illegal_docid) for any of them
        for i, why in illegal.items():
            _refused(resolution.pending, failed_here, _pending_key(docs[i]["_id"]),
                     {"doc": docs[i], "error": "illegal_docid", "reason": why})
        sent = [doc for i, doc in enumerate(docs) if i not in illegal]
        encoded = codec.dumps_array(sent)
    if sent:
        yield from _bulk_write(ctx, db, sent, encoded, resolution, options, failed_here=failed_here,
                               order=_Order(docs))
    attempts: dict[str, int] = {}
    skipped: set[str] = set()  # the merge function returned None for these
    if resolution.pending and (force or merge is not None):
        attempts = {doc["_id"]: 1 for doc in sent}
        how = "merge" if merge is not None else "overwrite"
        # re-apply to the documents as the caller gave them, not to an earlier merge's output;
        # every write of an id, in the caller's order (a list may hold an id more than once)
        groups = {docid: [e["doc"] for e in _edits(p)] for docid, p in resolution.pending.items()}
        originals = {id(doc): copy.deepcopy(doc) for docs_ in groups.values() for doc in docs_}
        retry = _conflicted(resolution, list(groups))
        for round_no in range(1, retries + 1):
            if not retry:
                break
            written = yield from _resolve_round(ctx, db, resolution, how, merge, options, retry, originals,
                                                delay=backoff(round_no - 1), groups=groups)
            for docid in written:
                attempts[docid] += 1
            if merge is not None:
                skipped.update(set(retry) - set(written))
            # the ids whose write was refused again as a conflict
            retry = []
            for docid, doc in written.items():
                failure = _failed_write(resolution, docid, doc)
                if failure is not None and failure["error"] == "conflict" and _resolvable(failure):
                    retry.append(docid)
    if single and resolution.pending:
        (docid, failure), = resolution.pending.items()
        status = _BULK_ERROR_STATUS.get(failure["error"], 500)
        reason = failure.get("reason")
        if failure["error"] == "conflict" and docid in skipped:
            reason = (f"{(reason or 'Document update conflict').rstrip('.')}. The merge returned None for "
                      f"{docid!r}: not written")
        elif failure["error"] == "conflict" and (force or merge is not None):
            tried = attempts.get(docid, 1)
            reason = (f"{reason or 'Document update conflict.'} Gave up after {tried} attempts "
                      f"(1 write + {tried - 1} re-reads with {'merge' if merge is not None else 'force'}; "
                      f"retries={retries}): other writers kept changing {docid!r}")
        if failure["error"] == UNKNOWN_OUTCOME:
            outcome = resolution._unknown.get(docid) or OutcomeUnknown(
                reason or "the write's outcome is unknown", f"{db_path(db)}/_bulk_docs", "POST")
            outcome.resolution = resolution  # type: ignore[attr-defined]
            raise outcome
        exc = error_for_status(status)(status, failure["error"], reason, "POST", f"{db_path(db)}/_bulk_docs")
        exc.resolution = resolution
        raise exc
    return resolution


def _conflicted(resolution: ConflictResolution, ids: Iterable[str]) -> list[str]:
    """The ids among ``ids`` still pending because of a conflict (worth another round)."""
    pending = resolution.pending
    return [docid for docid in ids
            if docid in pending and pending[docid].get("error") == "conflict" and _resolvable(pending[docid])]


def _resolvable(entry: PendingWrite) -> bool:
    """Whether a round may write ``entry``'s id again: not when any of its writes (a list
    may hold the id several times) is stored already or of unknown fate (a cluster's 202:
    :data:`STORED_AS_CONFLICT`, :data:`UNKNOWN_OUTCOME`), which a merge would apply twice."""
    return all(e.get("error") not in _NOT_RESOLVABLE for e in (*entry.get("others", ()), entry))


def _bulk_write(ctx: ServerContext, db: str, docs: list[Any], encoded: bytes, resolution: ConflictResolution, options: Mapping[str, Any],
                recover_stubs: bool = True, failed_here: set[str] | None = None, checked: bool = False,
                order: _Order | None = None) -> Operation[None]:
    """POST ``docs`` (``encoded``: their JSON array, from :func:`codec.dumps_array`) to
    ``_bulk_docs`` and record each document's outcome in ``resolution``: written ones
    get their new ``_rev`` in place and go to ``resolved``, the others to ``pending``
    (one that the answer does not mention as ``"unknown"``: never dropped).
    ``failed_here``: the ids refused so far in this request (shared by the parts a
    refused request is split into); ``checked``: :func:`_known_refusals` has looked at
    these documents already; ``order``: the documents of the whole request, in the
    caller's order (``docs`` by default), which decides the entry ``pending`` keeps for
    an ``_id`` refused twice (see :func:`_refused`)."""
    if failed_here is None:
        failed_here = set()
    if order is None:
        order = _Order(docs)
    parts = [b'{"docs":', encoded]
    for name, value in options.items():
        if value is not None:
            parts.append(b"," + codec.dumps(name) + b":" + codec.dumps(value))
    parts.append(b"}")
    resp = yield Request(
        "POST",
        f"{db_path(db)}/_bulk_docs",
        body=b"".join(parts),  # (one copy of the documents' bytes)
        headers={"Content-Type": "application/json", **ctx.write_headers},
    )
    new_edits = options.get("new_edits") is not False
    stub_refused = resp.status == 412 and recover_stubs and resp.error().error == "missing_stub"
    if stub_refused and new_edits:
        yield from _recover_missing_stub(ctx, db, docs, resolution, options, resp, failed_here, order)
        return
    if (resp.status in (400, 413) or stub_refused) and not options.get("all_or_nothing"):
        # CouchDB refuses the whole request for one document, writing none of them: 400
        # for a document it cannot take at all (a _rev that is no revision: "Invalid rev
        # format"; an unknown top-level member starting with "_": doc_validation; an
        # illegal _id), 413 for one over [couchdb] max_document_size (or the body over
        # [chttpd] max_http_request_size), or, replicating (new_edits=false, which writes a
        # revision once however often it is sent), a stub that names nothing (the other
        # shards' documents may be stored): the halves are sent until each refused
        # document stands alone, pending with the server's error and reason. A 400 for
        # every document would cost 2N-1 requests that way: what the client can tell
        # itself is settled first, the rest sent once more, and only that halved
        if len(docs) > 1:
            if resp.status == 400 and not checked:
                known = yield from _known_refusals(db, docs)
                checked = True
                if known:
                    for i, (error_, reason_) in known.items():
                        _refused(resolution.pending, failed_here, docs[i]["_id"],
                                 {"doc": docs[i], "error": error_, "reason": reason_}, order)
                    rest = [doc for i, doc in enumerate(docs) if i not in known]
                    if rest:
                        yield from _bulk_write(ctx, db, rest, codec.dumps_array(rest), resolution, options,
                                               recover_stubs, failed_here, checked, order)
                    return
            half = len(docs) // 2
            for part in (docs[:half], docs[half:]):
                yield from _bulk_write(ctx, db, part, codec.dumps_array(part), resolution, options, recover_stubs,
                                       failed_here, checked, order)
            return
        error = resp.error()
        _refused(resolution.pending, failed_here, docs[0]["_id"],
                 {"doc": docs[0], "error": error.error or ("bad_request" if resp.status == 400 else "too_large"),
                  "reason": error.reason}, order)
        return
    if (_bulk_ok is not None and resp.ok
            and _bulk_ok(docs, resp.body, resolution.pending, resolution.resolved, resolution.accepted, failed_here)):
        return  # every document written, the answer in its common shape (read in C, not decoded)
    results = resp.json()
    if not new_edits and not results:
        for doc in docs:
            resolution.resolved[doc["_id"]] = doc
        return
    if not isinstance(results, list):
        results = []
    matched = _match_results(docs, results)
    accepted: list[tuple[Any, str]] = []  # (document, the revision the answer names)
    pending, resolved, settled = resolution.pending, resolution.resolved, resolution.accepted
    # failed_here: ids that failed in THIS request: a later document with the same id that
    # was written must not clear the earlier one's failure (save([{"_id": "a"}, {"_id": "a",
    # "_rev": r}]) reported nothing pending while the first was refused as a conflict)
    for doc, result in zip(docs, matched):
        docid = doc["_id"]
        if result is None:  # never drop a document silently
            _refused(pending, failed_here, docid, {"doc": doc, "error": "unknown",
                                                   "reason": "the server's answer did not mention this document"}, order)
        elif "rev" in result and result.get("error") is None:
            if new_edits and result.get("accepted") is True:
                accepted.append((doc, result["rev"]))  # decided below, after a quorum read
                continue
            doc["_rev"] = result["rev"]
            if pending and docid not in failed_here:
                pending.pop(docid, None)
            if settled:
                settled.discard(docid)
            resolved[docid] = doc
        else:
            _refused(pending, failed_here, docid,
                     {"doc": doc, "error": result.get("error", "unknown"), "reason": result.get("reason")}, order)
    if accepted:
        yield from _settle_accepted(ctx, db, accepted, resolution, failed_here, order, (resp.method, resp.url))


_REV_REFUSED = ("bad_request", "Invalid rev format")
_HEX_OR_SIGN = frozenset("0123456789abcdefABCDEF+-")


def _rev_refused(rev: Any) -> bool:
    """Whether CouchDB refuses ``rev`` as a ``_rev`` (``400 bad_request`` "Invalid rev
    format", for the whole request): not a string (``null`` too: CouchDB 3.5 does not take
    ``"_rev": null`` for "no revision"), no ``N-`` (``N`` an integer) before its id, or a
    32-byte id that is not hex (couch_doc:parse_rev). Only what CouchDB 3.5 surely
    refuses: ``"0-x"`` and other doubtful ones are left to it. (A document without a
    ``_rev`` member is not asked about.)"""
    if not isinstance(rev, str):
        return True
    pos, dash, revid = rev.partition("-")
    digits = pos[1:] if pos[:1] == "+" else pos
    if not dash or not digits or not digits.isascii() or not digits.isdigit():
        return True
    return len(revid.encode("utf-8", "surrogatepass")) == 32 and not set(revid) <= _HEX_OR_SIGN


def _partition_refused(docid: Any) -> tuple[str, str] | None:
    """CouchDB's refusal of ``docid`` in a partitioned database (``None``: accepted), for an
    id that is otherwise valid: ``_design/`` and ``_local/`` ids take no partition, any
    other needs ``partition:id`` with both parts non-empty and the id part not starting
    with ``_`` (couch_partition:validate_docid;
    https://docs.couchdb.org/en/stable/partitioned-dbs/index.html)."""
    if not isinstance(docid, str) or docid.startswith(("_design/", "_local/")):
        return None
    partition, colon, rest = docid.partition(":")
    if not colon:
        return ("illegal_docid", "Doc id must be of form partition:id")
    if not partition:
        return ("illegal_partition", "Partition must not be empty")
    if not rest:
        return ("illegal_docid", "Document id must not be empty")
    if rest.startswith("_") and not rest.startswith(("_design/", "_local/")):
        return ("illegal_docid", "Only reserved document ids may start with underscore.")
    return None


def _known_refusals(db: str, docs: list[Any]) -> Operation[dict[int, tuple[str, str]]]:
    """The documents of a ``_bulk_docs`` request CouchDB refused as a whole (``400``) that
    the client can tell are refused, by index, with CouchDB's ``(error, reason)``: a
    ``_rev`` it cannot parse (:func:`_rev_refused`, ``"_rev": null`` included) and, when the database is
    partitioned (``props.partitioned`` of one ``GET /db``, asked only when an id lacks a
    valid ``partition:`` prefix, and not kept: a database of that name may be made again
    otherwise), an id without one (:func:`_partition_refused`). Nothing else is judged
    here: what CouchDB might take is sent."""
    known = {i: _REV_REFUSED for i, doc in enumerate(docs) if "_rev" in doc and _rev_refused(doc["_rev"])}
    unprefixed = {i: why for i, doc in enumerate(docs)
                  if i not in known and (why := _partition_refused(doc.get("_id"))) is not None}
    if unprefixed:
        try:
            resp = yield Request("GET", db_path(db))
            info = resp.json() if resp.status == 200 else None
        except CouchcoreError:  # (the request that follows meets the same trouble, and says so)
            info = None
        props = info.get("props") if isinstance(info, dict) else None
        if isinstance(props, dict) and props.get("partitioned") is True:
            known.update(unprefixed)
    return known


class _Order:
    """The documents of one save request in the caller's order: ``rank(doc)`` is its index
    (``-1`` for a document not among them). The index is built at the first call only: it
    is needed only when one ``_id`` is refused twice."""

    __slots__ = ("docs", "_index")

    def __init__(self, docs: list[Any]) -> None:
        self.docs = docs
        self._index: dict[int, int] | None = None

    def rank(self, doc: Any) -> int:
        if self._index is None:
            self._index = {id(d): i for i, d in enumerate(self.docs)}
        return self._index.get(id(doc), -1)


def _refused(pending: dict[str, PendingWrite], failed_here: set[str], docid: str, entry: PendingWrite,
             order: _Order | None = None) -> None:
    """Record a document of one request as not written. ``pending`` is keyed by ``_id``: when
    another document of that id was refused in the same request, the later one takes the
    entry (the one ``force`` and ``resolve()`` write again, as a list's later document of an
    id is its later write: once it is written the earlier ones count as superseded; ``merge``
    merges them all in turn, see :func:`_resolve_round`) and the earlier ones go to its
    ``others``. "Later" is the caller's order,
    given by ``order`` (the refusals are not always recorded in it: those the client tells
    itself after a ``400`` come before the others are sent again, a cluster's withdrawn
    ``202`` is decided after the rest); without ``order``, the order of the calls."""
    earlier = pending.get(docid) if docid in failed_here else None
    if earlier is not None:
        group = [*earlier.pop("others", []), earlier, entry]
        if order is not None:
            group.sort(key=lambda e: order.rank(e["doc"]))
        entry = group[-1]
        entry["others"] = group[:-1]
    pending[docid] = entry
    failed_here.add(docid)


def _match_results(docs: list[Any], results: list[Any]) -> list[Any]:
    """The ``_bulk_docs`` result (a dict, or ``None`` when there is none) of each document,
    in the order of ``docs``: matched by id, as some servers reorder them (the n-th
    result with an id goes to the n-th document with that id), else by position for a
    result without an id. CouchDB answers in request order: that is checked first."""
    try:
        if len(results) == len(docs) and [r["id"] for r in results] == [d["_id"] for d in docs]:
            return results
    except (TypeError, KeyError, IndexError):  # a result that is not a dict, or has no id
        pass
    by_id: dict[str, list[int]] = {}
    for i, doc in enumerate(docs):
        by_id.setdefault(doc["_id"], []).append(i)
    matched: list[dict[str, Any] | None] = [None] * len(docs)
    for pos, result in enumerate(results):
        if not isinstance(result, dict):
            continue
        slots = by_id.get(result.get("id"))  # type: ignore[arg-type]
        if slots:
            matched[slots.pop(0)] = result
        elif pos < len(docs) and matched[pos] is None and "id" not in result:
            matched[pos] = result
    return matched


def _recover_missing_stub(ctx: ServerContext, db: str, docs: list[Any], resolution: ConflictResolution, options: Mapping[str, Any],
                          failed: Any, failed_here: set[str], order: _Order | None = None) -> Operation[None]:
    """Finish a ``_bulk_docs`` that CouchDB refused whole with ``412 missing_stub``.

    Every copy of a shard checks an attachment stub (``"stub": true``) against its own
    copy of the document. One document whose stub names nothing, or (on a cluster) one
    copy that has not yet received the revision that added the attachment, fails the
    whole request, although the other shards, or the copies that have it, may have
    stored the other writes, even after the answer (seen on CouchDB 3.5.0, one node
    too). For each document couchcore reads the current revision with a quorum read: a
    write that landed (the current revision is a child of the one sent, with the same
    body) is resolved; one that did not is sent once more with its stubs replaced by
    the attachments' data read from the revision it names, which every copy can store;
    a document with a stub that no revision can fill (no ``_rev``, or an attachment
    that revision lacks) is pending with ``missing_stub`` and not sent again (it would
    fail the others again); anything else is pending.
    CouchDB: https://docs.couchdb.org/en/stable/api/document/common.html#attachments
    """
    again = []
    for doc in docs:
        docid = doc["_id"]
        current = yield from _current_with_revs(db, docid)
        sent_rev = doc.get("_rev")
        if _is_write_of(current, doc, sent_rev):
            doc["_rev"] = current["_rev"]  # type: ignore[index]
            _written(resolution, failed_here, doc)
            continue
        if (current is None and sent_rev is None) or (current is not None and current.get("_rev") == sent_rev):
            again.append(doc)
            continue
        _refused(resolution.pending, failed_here, docid,
                 {"doc": doc, "error": "conflict" if current is not None else "missing_stub",
                  "reason": failed.error().reason}, order)
    inlined = []
    resent = []
    for doc in again:
        stubs = {name for name, att in (doc.get("_attachments") or {}).items()
                 if isinstance(att, Mapping) and att.get("stub")}
        copy_ = dict(doc)
        if stubs and doc.get("_rev"):
            resp = yield Request("GET", doc_path(db, doc["_id"]),
                                 query=[("rev", doc["_rev"]), ("attachments", "true")])
            stored = (resp.json().get("_attachments") or {}) if resp.status == 200 else {}
            atts = dict(doc["_attachments"])
            for name in stubs:
                data = stored.get(name)
                if isinstance(data, Mapping) and "data" in data:
                    atts[name] = {"content_type": data.get("content_type"), "data": data["data"]}
            copy_["_attachments"] = atts
        if any(isinstance(att, Mapping) and att.get("stub") for att in (copy_.get("_attachments") or {}).values()):
            # a stub of nothing (no revision, or an attachment it does not have): this is
            # the document CouchDB refused; sent again it would fail the others again
            _refused(resolution.pending, failed_here, doc["_id"],
                     {"doc": doc, "error": "missing_stub", "reason": failed.error().reason}, order)
            continue
        resent.append(doc)
        inlined.append(copy_)
    if not resent:
        return
    sent = ConflictResolution(resolution._db)
    yield from _bulk_write(ctx, db, inlined, codec.dumps_array(inlined), sent, options, recover_stubs=False)
    for doc, copy_ in zip(resent, inlined):  # each document's own outcome (an id may come twice)
        docid = doc["_id"]
        if sent.resolved.get(docid) is copy_:
            doc["_rev"] = copy_["_rev"]
            _written(resolution, failed_here, doc)
            if docid in sent.accepted:
                resolution.accepted.add(docid)
            continue
        entry = sent.pending.get(docid)
        own = next((e for e in ([entry, *entry.get("others", [])] if entry else []) if e["doc"] is copy_), None)
        failure: dict[str, Any] = {k: v for k, v in (own or {"error": "missing_stub",
                                                           "reason": failed.error().reason}).items() if k != "others"}
        if failure.get("error") == "conflict":
            # the first request did land, on copies that had not applied it when the
            # quorum read above was served: the same revision is there now
            current = yield from _current_with_revs(db, docid)
            if _is_write_of(current, doc, doc.get("_rev")):
                doc["_rev"] = current["_rev"]  # type: ignore[index]
                _written(resolution, failed_here, doc)
                continue
        failure["doc"] = doc
        _refused(resolution.pending, failed_here, docid, cast("PendingWrite", failure), order)
        if docid in sent._unknown:  # what save(doc) raises for it (see _settle_accepted)
            resolution._unknown[docid] = sent._unknown[docid]


def _written(resolution: ConflictResolution, failed_here: set[str], doc: Any) -> None:
    """Record ``doc`` (its ``_rev`` set) as written; an earlier document of its id refused in
    the same request stays pending (its write is not this one)."""
    docid = doc["_id"]
    if docid not in failed_here:
        resolution.pending.pop(docid, None)
    resolution.resolved[docid] = doc


def _current_with_revs(db: str, docid: str) -> Operation[dict[str, Any] | None]:
    """The current revision of ``docid`` with its ``_revisions`` (a quorum read), or ``None``."""
    resp = yield Request("GET", doc_path(db, docid), query=[("revs", "true")])
    current = resp.json() if resp.status == 200 else None
    return current if isinstance(current, dict) else None


def _is_write_of(current: Mapping[str, Any] | None, doc: Mapping[str, Any], sent_rev: str | None) -> bool:
    """Whether ``current`` (from :func:`_current_with_revs`) is ``doc`` written on ``sent_rev``:
    a child of that revision with the same body."""
    if current is None or current.get("_rev") == sent_rev:
        return False
    history = current.get("_revisions") or {}
    ids = history.get("ids") or []
    parent = f"{history.get('start', 0) - 1}-{ids[1]}" if len(ids) > 1 else None
    return parent == sent_rev and _same_body(current, doc)


def _same_body(stored: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
    """The same document content, apart from ``_rev``/``_revisions`` and attachment details."""
    def content(d: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if not k.startswith("_") or k == "_deleted"}

    return content(stored) == content(doc) and set(stored.get("_attachments") or ()) == set(
        doc.get("_attachments") or ())


def _settle_accepted(ctx: ServerContext, db: str, accepted: list[tuple[Any, str]],
                     resolution: ConflictResolution, failed_here: set[str],
                     order: _Order | None = None, write: tuple[str, str] = ("POST", "")) -> Operation[None]:
    """Decide the writes a CouchDB cluster answered with ``"accepted": true``
    (``accepted``: each such document with the revision the answer names, in request order;
    ``failed_here``: the ids refused in the same request, whose failure stays pending).

    A cluster answers ``202 Accepted`` when fewer copies than the write quorum stored a
    write (https://docs.couchdb.org/en/stable/cluster/theory.html). That also happens
    when one copy had not yet applied an earlier write and accepted a write the other
    copies refused as a conflict: the revision is stored, but beside another writer's
    (a lost update waiting to happen). couchcore checks each such write with
    :func:`_accepted_lost`: a lost one is withdrawn and pending as a ``conflict``
    (``force``/``merge`` then resolve it like any conflict); the others are resolved and
    listed in ``resolution.accepted``. Each answer belongs to its own document: two
    documents with one ``_id`` in a request are settled apart (the revision of one went
    to both).
    """
    checks = yield from _accepted_checks(ctx, db, [(doc["_id"], rev, doc.get("_rev")) for doc, rev in accepted],
                                         (write[0], write[1] or f"{db_path(db)}/_bulk_docs"))
    for (doc, rev), lost in zip(accepted, checks):
        docid = doc["_id"]
        failure: PendingWrite | None = None
        if isinstance(lost, OutcomeUnknown):  # stored; whether it lost could not be read
            failure = {"doc": doc, "error": UNKNOWN_OUTCOME, "reason": lost.detail}
            resolution._unknown[docid] = lost  # what save(doc) raises for it
        elif lost is not None:
            failure = {"doc": doc, "error": lost.error, "reason": lost.reason}
        if failure is not None:
            _refused(resolution.pending, failed_here, docid, failure, order)
            if resolution.resolved.get(docid) is doc:
                del resolution.resolved[docid]
                resolution.accepted.discard(docid)
        else:
            doc["_rev"] = rev
            if docid not in failed_here:
                resolution.pending.pop(docid, None)
            resolution.resolved[docid] = doc
            resolution.accepted.add(docid)


def _lost_reason(rev: str, other: str, kept: str | None = None) -> str:
    """The reason of a ``202 Accepted`` write that lost to ``other``; ``kept``: why its
    revision could not be withdrawn (``None``: it was)."""
    reason = (f"Document update conflict: the cluster stored revision {rev} on fewer copies than its write "
              f"quorum (202 Accepted) while the others hold {other}; ")
    if kept is None:
        return reason + f"couchcore withdrew {rev}"
    return (reason + f"couchcore could not withdraw {rev} ({kept}): your edit is stored, beside {other}, as a "
            f"conflicting revision; it is not written again: read the document with conflicts=true and resolve "
            f"the two")


#: attempts at withdrawing a lost revision (a 5xx or a broken connection: sent again)
_WITHDRAW_ATTEMPTS = 3


class LostWrite(NamedTuple):
    """What :func:`_accepted_lost` found of a ``202 Accepted`` write that lost (a tuple,
    so ``reason, withdrawn = lost`` works)."""

    #: the reason to report it with (names both revisions; says whether it was withdrawn)
    reason: str
    #: whether its revision was withdrawn (else it stays, beside the other writer's)
    withdrawn: bool

    @property
    def error(self) -> str:
        """Its ``error``: ``"conflict"`` once withdrawn (writing it again is safe), else
        :data:`STORED_AS_CONFLICT` (never written again)."""
        return "conflict" if self.withdrawn else STORED_AS_CONFLICT


def _accepted_lost(ctx: ServerContext, db: str, docid: str, rev: str, parent: str | None,
                   write: tuple[str, str]) -> Operation[LostWrite | None]:
    """Whether a write answered ``202 Accepted`` lost to a concurrent one: a
    :class:`LostWrite` (the reason to report it with, whether its revision was
    withdrawn), ``None`` when the write stands. Raises
    :class:`~couchcore.errors.OutcomeUnknown` when the leaves could not be read (the
    write is stored; whether it lost is unknown).

    Reads every leaf revision with its history (``open_revs=all&revs=true&r=3``: ``r``
    at least the number of copies, 3 by default, makes CouchDB merge the leaves of every
    copy, where a quorum could miss a leaf only one copy has; with fewer copies it reads
    them all). The write lost when, and no live leaf builds on ours, another live leaf
    was written on the same parent (or, for a new document, another live leaf exists),
    or the parent itself got a deleted child: it was deleted, or withdrawn by a writer
    whose ``202`` lost, and one node would have refused the write with ``409`` as well.
    Concurrent writers whose writes were all answered ``202`` agree on one of them: ours
    loses at once to a sibling that ranks above it (a deletion of the parent, then
    CouchDB's own choice of the winner: the longer history, then the greater revision id;
    :func:`_rank`); a sibling that ranks below it is
    read again for up to 1.5 s (:data:`_RIVAL_WAITS`): its writer's own check withdraws
    it, while one still live then was stored by a quorum (``201``), and ours loses to it.
    A lost revision is withdrawn: a deleted child is written on its branch with
    ``new_edits=false`` (https://docs.couchdb.org/en/stable/api/database/bulk-api.html),
    which every copy merges into its revision tree at once, also a copy that has not got
    the lost revision yet (a plain delete would be refused there as a conflict and the
    lost revision could stay current on it until internal replication brought the
    deletion), so that the other writer's revision stays the current one. The
    withdrawal is the same revision each time it is sent, so a ``5xx`` or a broken
    connection sends it again (:data:`_WITHDRAW_ATTEMPTS` in all); a revision that could
    not be withdrawn is still reported lost, its reason saying it stays as a conflict.
    """
    what = f"was stored as {rev}, but whether it lost to a concurrent write"
    leaves = yield from _leaf_paths_or_unknown(db, docid, write, what)
    other, below = _standing(leaves, rev, parent)
    for wait in _RIVAL_WAITS:
        # a live sibling that ranks below ours: if it is another writer's 202, its own
        # check withdraws it (it lost to ours); one still live after the waits was stored
        # by a quorum (201), and ours gives way to it, as one node would have refused ours
        if below is None:
            break
        leaves = yield from _leaf_paths_or_unknown(db, docid, write, what, wait)
        other, below = _standing(leaves, rev, parent)
    other = other or below
    if other is None:
        return None
    import uuid  # here: only a withdrawn conflict needs it (import cost of every start-up)

    tomb = f"{_rank(rev)[1] + 1}-{uuid.uuid4().hex}"
    kept = yield from _withdraw(ctx, db, docid, rev, parent, tomb)
    # Another writer may have read our revision and built on it (201) before the
    # withdrawal: then it stays in a live history and the write stands (reporting it as a
    # conflict would make the caller apply its edit a second time). Our own leaf, still
    # live when the withdrawal failed, is no such writer, nor a write on top of our
    # withdrawal (a create of the deleted document continues that branch).
    leaves = yield from _leaf_paths_or_unknown(
        db, docid, write, f"was stored as {rev} and lost to {other}; " + (
            f"couchcore withdrew {rev}, but whether another writer built on it first" if kept is None else
            f"couchcore could not withdraw it ({kept}), and whether it stays"))
    if any(not leaf.get("_deleted") and leaf.get("_rev") != rev and rev in path and tomb not in path
           for leaf, path in leaves):
        return None
    if kept is not None and not any(not leaf.get("_deleted") and leaf.get("_rev") == rev for leaf, _ in leaves):
        kept = None  # its answer was lost, but the withdrawal was applied
    return LostWrite(_lost_reason(rev, other, kept), kept is None)


def _accepted_checks(ctx: ServerContext, db: str, rows: list[tuple[str, str, str | None]],
                     write: tuple[str, str]) -> Operation[list[LostWrite | OutcomeUnknown | None]]:
    """:func:`_accepted_lost` of each ``202`` write of one answer (``rows``: the id, the
    revision stored and its parent of each), in their order, an
    :class:`~couchcore.errors.OutcomeUnknown` where the leaves could not be read.

    One row at a time, each to its end. Checking the rows together (their waits shared;
    the losers withdrawn in one request) was tried and measured
    (benchmarks/results/reviewer-round-r32.md, -r32b.md): with any such schedule the
    writers' checks sweep an answer's rows at different paces, and a lower writer reaching
    a row just as the top one gives way makes both withdraw (documents lost in lock-step
    runs and in a two-writer race), which the one-row-at-a-time order has not shown."""
    results: list[LostWrite | OutcomeUnknown | None] = []
    for docid, rev, parent in rows:
        try:
            results.append((yield from _accepted_lost(ctx, db, docid, rev, parent, write)))
        except OutcomeUnknown as exc:
            results.append(exc)
    return results


def _rank(rev: str, deleted: bool = False) -> tuple[bool, int, str]:
    """``rev``'s place in the order concurrent ``202`` checks agree on: a deletion of the
    parent first (a write on a deleted revision loses to the deletion, as one node would
    have refused it), then CouchDB's own choice of the winner among live leaves: the
    longer history, then the greater revision id."""
    pos, _, rid = rev.partition("-")
    return deleted, (int(pos) if pos.isdigit() else 0), rid


def _standing(leaves: list[Any], rev: str, parent: str | None) -> tuple[str | None, str | None]:
    """From the leaves (:func:`_leaf_paths`): the revision our write ``rev`` lost to (a
    sibling that ranks above ours: a live leaf on the same parent, or of a new document,
    or a deleted child of the parent itself, a deletion), and else the first such sibling
    that ranks below ours; ``(None, None)`` when a live leaf builds on ours (it is in the
    history) or there is no sibling. Every writer's check orders the siblings alike
    (:func:`_rank`), so that concurrent checks agree on the one that stands."""
    other: str | None = None
    below: str | None = None
    ours = _rank(rev, any(leaf.get("_rev") == rev and bool(leaf.get("_deleted")) for leaf, _ in leaves))
    for leaf, path in leaves:
        if leaf.get("_rev") == rev:
            continue
        if rev in path:
            return None, None  # someone already built on our revision: it is part of the history
        deleted = bool(leaf.get("_deleted"))
        if deleted:
            # our parent itself was deleted meanwhile (a sibling branch that was withdrawn,
            # e.g. by a writer who saw ours, does not count: its parent is that sibling)
            if parent is None or path[1:2] != [parent]:
                continue
        elif parent is not None and parent not in path:
            continue
        if _rank(leaf["_rev"], deleted) > ours:
            other = leaf["_rev"]
        else:
            below = below or leaf["_rev"]
    return other, (None if other else below)


#: seconds between the reads of the leaves while a live sibling that ranks below ours
#: may still be withdrawn by its own writer's check (1.5 s in all)
_RIVAL_WAITS = (0.2, 0.3, 0.5, 0.5)


def _withdraw(ctx: ServerContext, db: str, docid: str, rev: str, parent: str | None,
              tomb: str) -> Operation[str | None]:
    """Write the deleted child ``tomb`` (a revision one position after ``rev``) that
    withdraws ``rev`` (see :func:`_accepted_lost`); ``None`` once it is stored, else what
    the last attempt met."""
    pos, _, rid = rev.partition("-")
    ids = [tomb.partition("-")[2], rid] + ([parent.partition("-")[2]] if parent else [])
    withdraw = codec.dumps({"new_edits": False, "docs": [{
        "_id": docid, "_rev": tomb, "_deleted": True,
        "_revisions": {"start": int(pos) + 1, "ids": ids}}]})
    try:
        # the same revision every time: sending it twice is harmless (idempotent)
        done = yield from resend_on_5xx(lambda: Request(
            "POST", f"{db_path(db)}/_bulk_docs", body=withdraw, idempotent=True,
            headers={"Content-Type": "application/json", **ctx.write_headers}), _WITHDRAW_ATTEMPTS,
            transport_errors=True)
    except TransportError as exc:
        return f"{type(exc).__name__}: {getattr(exc, 'detail', exc)}"
    done.close()
    if 200 <= done.status < 300:
        # new_edits=false answers 201 with [] when stored, or with the document's own
        # refusal (a validate_doc_update's forbidden, ...) in the list: not sent again
        # (it would get the same)
        try:
            results = codec.loads(done.body or b"[]")
        except CouchcoreError:
            results = None
        refused = [r for r in results if isinstance(r, dict) and r.get("error")] if isinstance(
            results, list) else [{"error": "unreadable answer"}]
        if not refused:
            return None
        return f"{refused[0].get('error')}: {refused[0].get('reason')}"
    return f"{done.status} answer"


def _leaf_paths_or_unknown(db: str, docid: str, write: tuple[str, str], what: str,
                           wait: float = 0.0) -> Operation[list[Any]]:
    """:func:`_leaf_paths`, its failure raised as :class:`~couchcore.errors.OutcomeUnknown`
    naming ``write`` (the method and path of the write answered ``202``): the write is
    stored, but ``what`` (what the leaves would have told) is unknown. Also an answer
    that is no JSON (:class:`~couchcore.errors.ParseError`): the write stands either way."""
    try:
        return (yield from _leaf_paths(db, docid, wait))
    except (HTTPError, TransportError, ParseError) as exc:
        raise OutcomeUnknown(
            f"the write of {docid!r} (202 Accepted: fewer copies than the write quorum) {what} could not be read "
            f"({exc}): read the document back with conflicts=true before writing it again", write[1],
            write[0]) from exc


#: attempts at reading the leaves of a document a 202 write touched (a 5xx: read again)
_LEAF_READS = 3


def _leaf_paths(db: str, docid: str, wait: float = 0.0) -> Operation[list[Any]]:
    """``[(leaf, [its rev, its parent's, ...])]`` of every leaf revision, deleted ones too,
    merged from every copy (``open_revs=all&revs=true&r=3``; ``[]`` for a missing document).
    A ``5xx``/``429`` is read again (:data:`_LEAF_READS` in all), then raised, as any other
    error answer is, and an answer that holds no leaf or is of another shape raises
    :class:`~couchcore.errors.ParseError`: deciding whether a write lost needs the leaves,
    never a guess.
    """
    resp = yield from resend_on_5xx(lambda: Request(
        "GET", doc_path(db, docid), query=[("open_revs", "all"), ("revs", "true"), ("r", "3")]), _LEAF_READS,
        wait=wait)
    if resp.status == 404:
        return []
    answer = resp.json()  # an error answer raises its HTTPError
    found = []
    for item in answer if isinstance(answer, list) else [None]:
        leaf = item.get("ok") if isinstance(item, dict) else None
        if isinstance(leaf, dict) and isinstance(leaf.get("_rev"), str):
            history = leaf.get("_revisions")
            start, ids = (history.get("start"), history.get("ids")) if isinstance(history, dict) else (None, None)
            if isinstance(start, int) and isinstance(ids, list) and all(isinstance(rid, str) for rid in ids):
                found.append((leaf, [f"{start - i}-{rid}" for i, rid in enumerate(ids)]))
                continue
        elif isinstance(item, dict) and isinstance(item.get("missing"), str):
            continue
        # an answer of another shape would read as "no rival": the write's fate is unknown
        raise ParseError(f"the leaves of {docid!r} came as something else than a list of revisions with their "
                         f"history (a {type(answer).__name__} holding a {type(item).__name__})")
    if not found:
        raise ParseError(f"the answer for the leaves of {docid!r} holds none")
    return found


def refuse_lost_accepted(ctx: ServerContext, db: str, docid: str, resp: Response,
                         parent: str | None) -> Operation[None]:
    """For a single-document write (``PUT``/``DELETE`` of a document or an attachment) that
    a cluster answered ``202 Accepted``: raise :class:`~couchcore.Conflict` when it lost
    to a concurrent writer (:func:`_accepted_lost` withdraws it), as one node would have
    answered ``409``; any other answer is left to the caller.
    CouchDB: https://docs.couchdb.org/en/stable/cluster/theory.html
    """
    if resp.status != 202:
        return
    rev = resp.json().get("rev")
    if not isinstance(rev, str):
        return
    lost = yield from _accepted_lost(ctx, db, docid, rev, parent, (resp.method, resp.url))
    if lost is not None:
        raise error_for_status(409)(409, lost.error, lost.reason, resp.method, resp.url)


def resolve(ctx: ServerContext, db: str, resolution: ConflictResolution, how: str, fn: Any = None,
            options: Mapping[str, Any] | None = None) -> Operation[ConflictResolution]:
    """Retry the pending documents of ``resolution`` once (``retry``, ``overwrite`` or ``merge``)."""
    if resolution.pending:
        yield from _resolve_round(ctx, db, resolution, how, fn, options, list(resolution.pending))
    return resolution


def _edits(entry: PendingWrite) -> list[PendingWrite]:
    """The pending writes of one ``_id`` in the caller's order (``others`` first, ``entry``
    last), each without ``others``."""
    return [cast("PendingWrite", {k: v for k, v in e.items() if k != "others"})
            for e in (*entry.get("others", ()), entry)]


def _failed_write(resolution: ConflictResolution, docid: str, doc: Any) -> PendingWrite | None:
    """The pending entry of ``doc`` (written under ``docid`` in a round), ``None`` if it was written."""
    entry = resolution.pending.get(docid)
    if entry is None:
        return None
    return next((e for e in (entry, *entry.get("others", ())) if e["doc"] is doc), None)


def _resolve_round(ctx: ServerContext, db: str, resolution: ConflictResolution, how: str, fn: Any, options: Mapping[str, Any] | None,
                   ids: list[str], originals: Mapping[int, Mapping[str, Any]] | None = None,
                   delay: float = 0.0, groups: dict[str, list[Any]] | None = None) -> Operation[dict[str, Any]]:
    """One round over the pending documents ``ids``; returns ``{id: the document sent}``
    (a merge returning ``None`` for every write of an id skips it: it stays pending). The
    re-read is sent after ``delay`` seconds (the back-off between rounds).

    An id pending with ``others`` (a list held it several times and CouchDB refused each):
    ``retry``/``overwrite`` send the last one, which supersedes the earlier ones (gone from
    ``pending`` once it is written; still there when it is refused again). ``merge`` calls
    ``fn`` once per write of the id in the caller's order, each time on the result so far
    (``fn(first, server)``, then ``fn(second, that result)``, ...) and sends the result
    once, in the last document ``fn`` did not skip; a write ``fn`` skips (``None``) stays
    pending. ``groups`` (save's rounds): the documents of each id to merge, kept up to date
    here (the skipped ones dropped); ``originals``: ``id(document)`` -> a copy of it as the
    caller gave it, which ``fn`` gets instead of the document."""
    options = dict(options or {})
    # a document whose _id CouchDB refuses stays pending as it is, not sent: it would fail
    # the whole request (400 illegal_docid), and its key is not its _id (a non-str _id's JSON text)
    pending = {docid: resolution.pending[docid] for docid in ids
               if docid in resolution.pending and not _id_refused(resolution.pending[docid]["doc"].get("_id"))
               and _resolvable(resolution.pending[docid])}
    if not pending:
        return {}
    ids = list(pending)
    to_write = []
    # per id sent: its pending writes before the round, and those to keep pending after it
    # whether the write succeeds (merge: the skipped ones) or only when it fails
    before: dict[str, list[PendingWrite]] = {docid: _edits(p) for docid, p in pending.items()}
    kept: dict[str, list[PendingWrite]] = {}
    kept_if_failed: dict[str, list[PendingWrite]] = {}
    if how == "retry":
        to_write = [p["doc"] for p in pending.values()]
    elif how == "overwrite":
        revs = yield from _delayed(current_revs(ctx, db, ids), delay)
        for docid, p in pending.items():
            doc = p["doc"]
            if docid in revs:
                doc["_rev"] = revs[docid]
            else:
                doc.pop("_rev", None)  # deleted or gone on the server: write afresh
            to_write.append(doc)
    elif how == "merge":
        if not callable(fn):
            raise InvalidInput("merge needs a callable fn(local, server)")
        server_docs = yield from _delayed(get_docs(ctx, db, ids), delay)
        for docid, server in zip(ids, server_docs):
            docs = groups[docid] if groups is not None and docid in groups else [e["doc"] for e in before[docid]]
            merged: Any = None
            used: list[Any] = []
            for doc in docs:
                theirs = server
                if used:  # the result so far, as the server would hold it after the earlier writes
                    theirs = Document(copy.deepcopy(dict(merged)))
                    theirs["_id"] = docid
                    if server is not None:
                        theirs["_rev"] = server["_rev"]
                    else:
                        theirs.pop("_rev", None)
                original = originals.get(id(doc)) if originals else None
                out = fn(copy.deepcopy(original) if original is not None else doc, theirs)
                if out is None:
                    continue  # skipped: stays pending
                if not isinstance(out, Mapping):
                    raise InvalidDocument(f"merge function must return a dict or None, got {type(out).__name__}")
                merged = out
                used.append(doc)
            if groups is not None:
                groups[docid] = used
            if not used:
                continue  # every write of the id skipped: pending as it was
            local = used[-1]
            if merged is not local:
                local.clear()
                local.update(merged)
            local["_id"] = docid
            if server is not None:
                local["_rev"] = server["_rev"]
            else:
                local.pop("_rev", None)
            to_write.append(local)
            # the other merged writes are in ``local`` now, written or pending with it
            kept[docid] = [e for e in before[docid] if not any(e["doc"] is d for d in used)]
    else:  # pragma: no cover - internal misuse
        raise ValueError(how)
    if how != "merge":
        kept_if_failed = {docid: entries[:-1] for docid, entries in before.items() if len(entries) > 1}
    if to_write:
        yield from _bulk_write(ctx, db, to_write, codec.dumps_array(to_write), resolution, options)
    sent = {d["_id"]: d for d in to_write}
    for docid, doc in sent.items():
        failure = _failed_write(resolution, docid, doc)
        keep = kept.get(docid, []) + (kept_if_failed.get(docid, []) if failure is not None else [])
        if not keep:
            continue
        rank = {id(e["doc"]): i for i, e in enumerate(before[docid])}
        group = keep + ([cast("PendingWrite", {k: v for k, v in failure.items() if k != "others"})]
                        if failure is not None else [])
        group.sort(key=lambda e: rank.get(id(e["doc"]), len(rank)))
        entry = group[-1]
        if len(group) > 1:
            entry["others"] = group[:-1]
        resolution.pending[docid] = entry
    return sent


def update_doc(ctx: ServerContext, db: str, docid: str, fn: Callable[[Document | None], Mapping[str, Any] | None],
               retries: int = DEFAULT_RETRIES) -> Operation[Document | None]:
    """Read-modify-write one document until it sticks (python-cloudant's ``update_field``).

    Reads ``docid`` (``GET``), calls ``fn(doc)`` with the current :class:`Document`
    (``None`` when it is missing or deleted, so ``fn`` can create it) and writes what
    ``fn`` returns with ``PUT`` at the revision that was read. When another writer got
    there first (409) it reads again and calls ``fn`` again, up to ``retries`` times
    after the first attempt (waiting a random back-off of up to 10 ms x 2**n, at most
    1 s, before the n-th re-read), then raises :class:`Conflict` saying how many
    attempts were made. ``fn`` returning ``None`` skips the write. Returns the written
    :class:`Document` (with its new ``_rev``), or ``None`` when skipped. On a cluster a
    ``202 Accepted`` write that lost to a concurrent writer (:func:`_accepted_lost`) is
    withdrawn and retried like a 409, so no update is lost as long as the edits differ
    (identical edits on one revision are one revision).
    CouchDB: https://docs.couchdb.org/en/stable/api/document/common.html#put--db-docid
    """
    if not isinstance(docid, str) or not docid:
        raise InvalidInput(f"document id must be a non-empty str, got {docid!r}")
    if docid.startswith("_local/"):
        # CouchDB 3 accepts any _rev (stale, made up, none) for a _local document and never
        # answers 409: a concurrent update would be overwritten without notice
        raise InvalidInput(f"update_doc cannot update {docid!r} safely: CouchDB does no conflict detection on "
                           "_local documents (any _rev, or none, overwrites), so a read-modify-write there can "
                           "lose concurrent updates; read and save it yourself if one writer is enough")
    if not callable(fn):
        raise InvalidInput(f"update_doc needs a callable fn(doc), not {type(fn).__name__}")
    check_retries(retries)
    attempts = 0
    while True:
        attempts += 1
        current = yield from _delayed(get_doc_or_none(ctx, db, docid), backoff(attempts - 1))
        new = fn(current)
        if new is None:
            return None
        if not isinstance(new, Mapping):
            raise InvalidDocument(f"update_doc's fn must return a dict or None, got {type(new).__name__}")
        doc = Document(new)
        if doc.get("_id", docid) != docid:
            raise InvalidDocument(f"update_doc's fn changed _id from {docid!r} to {doc['_id']!r}")
        doc["_id"] = docid
        if current is not None:
            doc["_rev"] = current["_rev"]
        else:
            doc.pop("_rev", None)
        body = codec.dumps(doc)  # InvalidDocument for NaN, sets, ... before sending
        resp = yield Request("PUT", doc_path(db, docid), body=body,
                             headers={"Content-Type": "application/json", **ctx.write_headers})
        if resp.status == 202:  # stored on fewer copies than the write quorum: did it lose?
            rev = resp.json()["rev"]
            lost = yield from _accepted_lost(ctx, db, docid, rev, doc.get("_rev"), (resp.method, resp.url))
            if lost is not None:  # a lost update on a cluster: a conflict
                if attempts <= retries and lost.withdrawn:
                    continue
                # (not withdrawn: our edit stays as a conflicting revision, and applying fn
                # again on a re-read could build on it: the edit would be made twice)
                raise error_for_status(409)(
                    409, lost.error, f"{lost.reason}; gave up after {attempts} attempts "
                    f"(1 + retries={retries} re-reads)", "PUT", doc_path(db, docid))
        if resp.status == 409 and attempts <= retries:
            continue
        if resp.status == 409:
            err = resp.error()
            reason = (f"{err.reason or 'Document update conflict.'} Gave up after {attempts} attempts "
                      f"(1 + retries={retries} re-reads): other writers kept changing {docid!r}")
            raise type(err)(err.status, err.error, reason, err.method, err.url, err.headers, err.body)
        result = resp.json()
        doc["_rev"] = result["rev"]
        return doc


# -- delete / copy / revisions -----------------------------------------------------


def _id_and_rev(doc: Any, action: str) -> tuple[str, str]:
    if not isinstance(doc, Mapping):
        raise InvalidDocument(f"{action} needs a document (dict with _id and _rev), got {type(doc).__name__}")
    docid, rev = doc.get("_id"), doc.get("_rev")
    if not docid:
        raise InvalidDocument(f"{action} needs a document with an _id")
    if not rev:
        raise MissingRevision(f"{action} needs the document's _rev (document {docid!r} has none)")
    return docid, rev


def delete_doc(ctx: ServerContext, db: str, doc: Mapping[str, Any]) -> Operation[Document]:
    docid, rev = _id_and_rev(doc, "delete")
    resp = yield Request("DELETE", doc_path(db, docid), query=[("rev", rev)], headers=ctx.write_headers)
    result = resp.json()
    yield from refuse_lost_accepted(ctx, db, docid, resp, rev)  # a cluster's 202 for a stale rev
    if isinstance(doc, dict) and result.get("rev"):
        doc["_rev"] = result["rev"]
    return Document(result)


def copy_doc(ctx: ServerContext, db: str, source: str | Mapping[str, Any],
             dest: str | Mapping[str, Any]) -> Operation[str]:
    query = []
    if isinstance(source, Mapping):
        src_id = source.get("_id")
        if source.get("_rev"):
            query.append(("rev", source["_rev"]))
    else:
        src_id = source
    if isinstance(dest, Mapping):
        dest_id, dest_rev = dest.get("_id"), dest.get("_rev")
    else:
        dest_id, dest_rev = dest, None
    if not isinstance(src_id, str) or not src_id or not isinstance(dest_id, str) or not dest_id:
        raise InvalidInput("copy needs source and destination ids (or docs with _id)")
    if dest_rev is not None and (not isinstance(dest_rev, str) or not dest_rev):
        raise InvalidInput(f"the destination's _rev must be a revision string such as '1-abc...', got {dest_rev!r}")
    # CouchDB percent-decodes the Destination header (``+`` included) after splitting off "?rev="
    destination = quote_segment(dest_id)
    if dest_rev:
        destination += "?rev=" + quote_segment(dest_rev)
    resp = yield Request(
        "COPY", doc_path(db, src_id), query=query, headers={"Destination": destination, **ctx.write_headers}
    )
    if resp.status == 409 and not dest_rev:
        raise _without_rev(resp.error(), dest_id)  # CouchDB's bare "Document update conflict."
    try:  # a cluster answers 202 when one lagging copy took the write the others refused
        yield from refuse_lost_accepted(ctx, db, dest_id, resp, dest_rev or None)
    except HTTPError as err:
        raise (err if dest_rev else _without_rev(err, dest_id)) from None
    result = resp.json()
    rev: str | None = result.get("rev")
    if rev is None:  # some servers answer {"ok": true} only: look the new revision up
        resp = yield Request("GET", doc_path(db, dest_id))
        rev = resp.json()["_rev"]
    if isinstance(dest, dict):
        dest["_rev"] = rev
    return rev


def _without_rev(err: HTTPError, dest_id: str) -> HTTPError:
    """``err`` (a conflict of a copy sent without the destination's ``_rev``) saying so."""
    return type(err)(err.status, err.error, f"{(err.reason or 'Document update conflict').rstrip('.')}. The destination {dest_id!r} exists and no _rev was "
                     "given for it: to overwrite it pass the destination as a document with its current _rev "
                     "(copy(source, db.get(dest)))", err.method, err.url, err.headers, err.body)


def revisions(ctx: ServerContext, db: str, docid: str) -> Operation[list[str]]:
    """Revision ids of a document, newest first (from ``_revisions``)."""
    resp = yield Request("GET", doc_path(db, docid), query=[("revs", "true")])
    info = resp.json().get("_revisions") or {}
    start = info.get("start", 0)
    return [f"{start - i}-{rid}" for i, rid in enumerate(info.get("ids", ()))]


def delete_id(ctx: ServerContext, db: str, docid: str) -> Operation[Document]:
    """Delete the current revision of a document known only by id (``del db[id]``)."""
    doc = yield from get_doc(ctx, db, docid)
    assert isinstance(doc, Document)  # without open_revs: the one document
    return (yield from delete_doc(ctx, db, doc))


def get_doc_or_none(ctx: ServerContext, db: str, docid: str,
                    **opts: Any) -> Operation[Document | list[dict[str, Any]] | None]:
    """Like :func:`get_doc`, but ``None`` for a missing document."""
    query = _doc_query(opts)
    if _no_revisions_asked(db, docid, opts):
        return []
    resp = yield Request("GET", doc_path(db, docid), query=query)
    if resp.status == 404 and resp.error().reason in ("missing", "deleted"):
        return None  # (a missing database is a 404 too: that one raises)
    return _decode_doc(resp, opts)
