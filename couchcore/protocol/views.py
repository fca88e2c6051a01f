"""View operations (sans-I/O): streamed views, temporary views, list/show/update functions."""

from __future__ import annotations

import re
import uuid
from typing import Any, Generator, Iterable, Mapping
from urllib.parse import urlencode

from .. import codec
from ..errors import CouchcoreError, InvalidInput, InvalidOption
from ..models import Result
from .._results import ViewResult
from .messages import Operation, Request, Response, check_media_type
from .paths import (db_path, design_path, doc_path, quote_segment, quote_segments, split_design_name,
                    view_path)
from .server import ServerContext

__all__ = ["view", "temp_view", "list_fn", "show_fn", "update_fn", "view_request"]


#: A view query whose request target (path and query string) would be longer than this
#: many bytes goes as POST with its key options in the JSON body: CouchDB refuses a request
#: line over about 8 KB with a bodiless 400 (seen on 3.5: a 5,000-character key works in
#: the URL, a 9,000-character one does not); room is left for a partition's prefix.
MAX_VIEW_TARGET = 4000

#: the options that move into a POST body when the URL would be too long (the long ones:
#: keys and document ids); the others stay in the query string, which CouchDB reads too
_BODY_OPTIONS = frozenset(("key", "startkey", "start_key", "endkey", "end_key", "startkey_docid",
                           "start_key_doc_id", "endkey_docid", "end_key_doc_id"))


def view_request(db: str, name: str, options: Mapping[str, Any], stream: bool = True) -> Request:
    """The request for a view: GET, or POST with ``{"keys": [...]}`` when ``keys`` is given,
    and with the key options (``key``, ``startkey``, ``endkey``, their aliases and the
    ``*_docid`` ones) in the body when the URL would be longer than :data:`MAX_VIEW_TARGET`
    bytes. CouchDB takes every view parameter in a POST body as in the query string:
    https://docs.couchdb.org/en/stable/api/ddoc/views.html#post--db-_design-ddoc-_view-view ,
    https://docs.couchdb.org/en/stable/api/database/bulk-api.html#post--db-_all_docs"""
    path = view_path(db, name)
    query, body = codec.view_query(options)
    if body is None:
        request = Request("GET", path, query=query, stream=stream)
        if len(request.target) <= MAX_VIEW_TARGET:
            return request
    elif len(Request("POST", path, query=query).target) <= MAX_VIEW_TARGET:
        return Request("POST", path, query=query, json=body, stream=stream, idempotent=True)
    body = dict(body or {})
    for name_, _ in query:
        if name_ in _BODY_OPTIONS:
            body[name_] = options[name_]  # encoded in the body as the query string had it
    query = [(name_, value) for name_, value in query if name_ not in _BODY_OPTIONS]
    return Request("POST", path, query=query, json=body, stream=stream, idempotent=True)


def view(ctx: ServerContext, db: str, name: str, /, **options: Any) -> Operation[ViewResult]:
    resp = yield view_request(db, name, options)
    resp.raise_for_status()
    return ViewResult(resp)


def temp_view(ctx: ServerContext, db: str, map_src: str, reduce_src: str | None = None,
              language: str = "javascript", **options: Any) -> Operation[ViewResult]:
    """An ad-hoc view: ``_temp_view`` where the server has it, otherwise a throw-away
    design document that is always deleted again (the rows are read before that), then
    ``POST /{db}/_view_cleanup`` so that CouchDB removes the index files no design
    document uses any more (those of the throw-away one among them): see
    :func:`_clean_up_index_files`."""
    if not isinstance(map_src, str) or not map_src.strip():
        raise InvalidInput("query needs the map function's source")
    fn: dict[str, Any] = {"map": map_src}
    if reduce_src:
        fn["reduce"] = reduce_src
    query, keys_body = codec.view_query(options)
    if ctx.temp_view is not False:
        body = {"language": language, **fn, **(keys_body or {})}
        resp = yield Request("POST", f"{db_path(db)}/_temp_view", query=query, json=body,
                             idempotent=True)
        if resp.status not in (404, 405, 410) or (resp.status == 404 and _is_db_missing(resp)):
            resp.raise_for_status()
            ctx.temp_view = True
            result = ViewResult(resp)
            result.all()
            return result
        ctx.temp_view = False
    ddoc_id = f"_design/couchcore-tmp-{uuid.uuid4().hex}"
    # "partitioned": false: on a partitioned database a design document is partitioned by
    # default, and its views answer only under /_partition/{key}/ (400 "`partition`
    # parameter is mandatory"); the view of every document is a global one
    # https://docs.couchdb.org/en/stable/partitioned-dbs/index.html
    resp = yield Request("PUT", doc_path(db, ddoc_id), json={"language": language, "views": {"tmp": fn},
                                                             "options": {"partitioned": False}})
    resp.raise_for_status()
    rev = resp.json()["rev"]
    try:
        for attempt in range(_TMP_DDOC_ATTEMPTS):
            request = view_request(db, f"{ddoc_id}/_view/tmp", options, stream=False)
            request.delay = min(1.0, 0.05 * 2 ** attempt) if attempt else 0.0
            resp = yield request
            # On a cluster the copies of the new design document arrive one by one: a
            # query that meets a copy without it answers 404 (not_found, "Design document
            # was updated or deleted." or "missing") although the write succeeded.
            if resp.status != 404 or _is_db_missing(resp):
                break
        resp.raise_for_status()
        result = ViewResult(resp)
        result.all()
        return result
    finally:
        deleted = yield Request("DELETE", doc_path(db, ddoc_id), query=[("rev", rev)])
        if deleted.status < 300:
            yield from _clean_up_index_files(db)


def _clean_up_index_files(db: str) -> Generator[Request, Response, None]:
    """``POST /{db}/_view_cleanup`` after a throw-away design document is deleted: its
    index (one ``.view`` file per shard, named by the functions' signature) would stay on
    the server's disk until someone asks, as CouchDB removes unused index files only then
    (https://docs.couchdb.org/en/stable/api/database/compact.html#db-view-cleanup). It
    needs the database admin rights the design document's PUT needed already, and removes
    the files of every design document deleted or changed since, as that endpoint always
    does. The rows are read by then: a failed cleanup (an error status, a lost
    connection) is left unreported."""
    try:
        yield Request("POST", f"{db_path(db)}/_view_cleanup", headers={"Content-Type": "application/json"})
    except CouchcoreError:
        pass


_TMP_DDOC_ATTEMPTS = 10  # waits of 0.05 s doubling to 1 s between them: ~7 s in all


def _is_db_missing(resp: Response) -> bool:
    err = resp.error()
    return err.reason in ("no_db_file", "Database does not exist.")


def _result(resp: Response) -> Result:
    """A :class:`Result` for any status below 400 (a 302 of an update handler is an
    answer, not an error: the update was applied); 4xx and 5xx raise."""
    if resp.status >= 400:
        raise resp.error()
    return Result(resp.body or b"", resp.headers, resp.status)


def _split_fn(name: str, kind: str) -> tuple[str, str]:
    if not isinstance(name, str):
        raise InvalidInput(f"{kind[1:]} function name must be a str, got {name!r}")
    split = split_design_name(name, kind)
    if split is None:
        raise InvalidInput(f"invalid {kind[1:]} function name {name!r}: use 'ddoc/name' "
                           f"or '_design/ddoc/{kind}/name' (a design name with slashes needs the latter)")
    return split


def _fn_query(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Query parameters of a show/list/update function (``req.query``): strings as they
    are, other values JSON-encoded. The function sees strings only, so ``None`` (like
    :data:`~couchcore.codec.NOT_GIVEN`) leaves a parameter out rather than sending the
    string ``"null"``."""
    query = []
    for name, value in options.items():
        if value is None or value is codec.NOT_GIVEN:
            continue
        if isinstance(value, str):
            query.append((name, value))
        else:
            try:
                query.append((name, codec.dumps(value).decode("utf-8")))
            except InvalidInput as exc:
                raise InvalidOption(f"query parameter {name!r}: {exc}") from None
    return query


# RFC 9110 5.1/5.5: a field name is a token; a value is visible Latin-1 characters,
# spaces and tabs inside, none at either end (what every backend sends unchanged)
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_HEADER_VALUE = re.compile(r"([!-~\x80-\xff]([ \t!-~\x80-\xff]*[!-~\x80-\xff])?)?\Z")
# how the request is framed is couchcore's (and its backend's) to decide
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "te", "upgrade",
                              "keep-alive", "expect", "trailer"})


def _request_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """``Accept: */*`` (a function may answer any type) plus the caller's headers,
    checked (a token name, a Latin-1 value without control characters or surrounding
    blanks, no framing header) and with canonical names (``accept`` -> ``Accept``), so
    they replace couchcore's own headers, whatever their case, on every backend."""
    out = {"Accept": "*/*"}
    if headers is None:
        return out
    if not isinstance(headers, Mapping):
        raise InvalidInput(f"headers must be a dict of str to str, got {type(headers).__name__}")
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name) or not isinstance(value, str) \
                or not _HEADER_VALUE.match(value):
            # the value is not echoed: it may be a credential
            raise InvalidInput(f"invalid request header {name!r}: the name must be a token, the value a str "
                               "of Latin-1 text without control characters or blanks at either end")
        if name.lower() in _FRAMING_HEADERS:
            raise InvalidInput(f"request header {name!r} is couchcore's to set (it frames the request)")
        canonical = "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))
        for existing in [k for k in out if k.lower() == name.lower()]:
            del out[existing]
        out[canonical] = value
    return out


def _no_body_type(headers: Mapping[str, str]) -> None:
    """show and list send no body of the caller's (a list's ``keys`` go as JSON): their
    Content-Type is couchcore's."""
    if any(name.lower() == "content-type" for name in headers):
        raise InvalidInput("show and list send no body of yours: a Content-Type header is couchcore's to set")


FORM_TYPE = "application/x-www-form-urlencoded"


def _form_pairs(form: Any) -> list[tuple[str, str]]:
    if isinstance(form, Mapping):
        pairs = list(form.items())
    elif isinstance(form, (str, bytes)) or not isinstance(form, Iterable):
        raise InvalidInput(f"form must be a dict or a list of (name, value) pairs, got {type(form).__name__}")
    else:
        pairs = list(form)
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise InvalidInput(f"form fields must be (str, str) pairs, got {pair!r}")
    return pairs


def _update_body(body: Any, form: Any, content_type: str | None,
                 headers: dict[str, str]) -> tuple[bytes | None, str | None]:
    """The request body of an update handler and its content type (``None``: no
    ``Content-Type`` header is sent, by any backend)."""
    if content_type is not None:
        check_media_type(content_type)
    if any(k.lower() == "content-type" for k in headers):
        raise InvalidInput("give the body's type as content_type=, not as a Content-Type header")
    if form is not None:
        if body is not None:
            raise InvalidInput("update takes body= or form=, not both")
        if content_type is not None and content_type.split(";")[0].strip().lower() != FORM_TYPE:
            raise InvalidInput(f"form= is sent as {FORM_TYPE}, not {content_type!r}")
        return urlencode(_form_pairs(form)).encode("ascii"), content_type or FORM_TYPE  # (its parameters kept)
    if body is None:
        if content_type is not None:
            raise InvalidInput("content_type= without a body")
        return None, None
    if isinstance(body, str):
        return body.encode("utf-8"), content_type
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), content_type
    if content_type is not None and content_type.split(";")[0].strip().lower() == FORM_TYPE:
        return urlencode(_form_pairs(body)).encode("ascii"), content_type
    return codec.dumps(body), content_type or "application/json"


def list_fn(ctx: ServerContext, db: str, name: str, view_name: str,
            headers: Mapping[str, str] | None = None,
            options: Mapping[str, Any] | None = None) -> Generator[Request, Response, Result]:
    """``_list`` function ``ddoc/list`` applied to view ``view`` or ``other_ddoc/view``.

    View ``options`` are encoded as for :func:`view` (``key=None`` is ``key=null``); the
    others become the function's ``req.query`` (a mapping, so that any name can be one).
    """
    options = options or {}
    ddoc, fn = _split_fn(name, "_list")
    path = f"{design_path(db, ddoc)}/_list/{quote_segment(fn)}/{_list_view(ddoc, view_name)}"
    known = {k: v for k, v in options.items() if k in codec.VIEW_OPTIONS}
    extra = {k: v for k, v in options.items() if k not in codec.VIEW_OPTIONS}
    query, body = codec.view_query(known)
    query += _fn_query(extra)
    request_headers = _request_headers(headers)
    _no_body_type(request_headers)
    if body is not None:
        resp = yield Request("POST", path, query=query, json=body, headers=request_headers,
                             idempotent=True)  # a list function cannot write
    else:
        resp = yield Request("GET", path, query=query, headers=request_headers)
    return _result(resp)


def _list_view(ddoc: str, view_name: Any) -> str:
    """The view part of a ``_list`` path: ``view`` (of the list's design document) or
    ``other_ddoc/view``; or the long form ``_design/{ddoc}/_view/{view}``, where either
    name may hold slashes (sent as ``%2F``; the list's own design document needs no name)."""
    if isinstance(view_name, str) and view_name.startswith("_design/"):
        split = split_design_name(view_name, "_view")
        if split is None:
            raise InvalidInput(f"invalid view name {view_name!r}: use 'view', 'other_ddoc/view' or "
                               "'_design/ddoc/_view/view'")
        other, view = split
        if other == ddoc:
            return quote_segment(view)
        return f"{quote_segment(other)}/{quote_segment(view)}"
    if not isinstance(view_name, str) or not all(view_name.split("/")) or view_name.count("/") > 1:
        raise InvalidInput(f"invalid view name {view_name!r}: use 'view', 'other_ddoc/view' or "
                           "'_design/ddoc/_view/view' (a name with slashes needs the latter)")
    return quote_segments(view_name)


def show_fn(ctx: ServerContext, db: str, name: str, docid: str | None = None,
            headers: Mapping[str, str] | None = None,
            options: Mapping[str, Any] | None = None) -> Generator[Request, Response, Result]:
    """``GET`` show function ``ddoc/show`` for document ``docid`` (or none); ``options``
    become ``req.query``."""
    ddoc, fn = _split_fn(name, "_show")
    path = f"{design_path(db, ddoc)}/_show/{quote_segment(fn)}"
    if docid is not None:
        path += "/" + _docid(docid)
    request_headers = _request_headers(headers)
    _no_body_type(request_headers)
    resp = yield Request("GET", path, query=_fn_query(options or {}), headers=request_headers)
    return _result(resp)


def update_fn(ctx: ServerContext, db: str, name: str, docid: str | None = None, body: Any = None,
              form: Any = None, content_type: str | None = None,
              headers: Mapping[str, str] | None = None,
              options: Mapping[str, Any] | None = None) -> Generator[Request, Response, Result]:
    """``POST`` (no ``docid``) or ``PUT`` (``docid``) to an update handler.

    ``body``: ``str``/``bytes`` sent as they are, with ``content_type`` when given and
    no ``Content-Type`` otherwise; any other value JSON-encoded (``application/json``
    unless ``content_type`` says otherwise; a dict or pairs with the form type is
    form-encoded). ``form``: a dict or ``(name, value)`` pairs of str, sent as
    ``application/x-www-form-urlencoded`` (the handler's ``req.form``). ``options``
    become ``req.query``.
    """
    ddoc, fn = _split_fn(name, "_update")
    path = f"{design_path(db, ddoc)}/_update/{quote_segment(fn)}"
    method = "POST"
    if docid is not None:
        path += "/" + _docid(docid)
        method = "PUT"
    request_headers = _request_headers(headers)
    data, media = _update_body(body, form, content_type, request_headers)
    if media is not None:
        request_headers["Content-Type"] = media
    if data is None:
        data = b""  # an empty body, Content-Length: 0, the same from every backend
    resp = yield Request(method, path, query=_fn_query(options or {}), body=data, headers=request_headers)
    return _result(resp)


def _docid(docid: Any) -> str:
    if not isinstance(docid, str) or not docid:
        raise InvalidInput(f"document id must be a non-empty str, got {docid!r}")
    return quote_segment(docid)
