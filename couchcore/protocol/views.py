"""View operations (sans-I/O): streamed views, temporary views, list/show/update functions."""

from __future__ import annotations

import uuid
from typing import Any, Mapping
from urllib.parse import quote

from .. import codec
from ..errors import InvalidInput
from ..models import Result
from ..results import ViewResult
from .messages import Request
from .paths import design_path, doc_path, view_path
from .server import ServerContext

__all__ = ["view", "temp_view", "list_fn", "show_fn", "update_fn", "view_request"]


def view_request(db: str, name: str, options: Mapping[str, Any], stream: bool = True) -> Request:
    """The request for a view: GET, or POST with ``{"keys": [...]}`` when ``keys`` is given."""
    path = view_path(db, name)
    query, body = codec.view_query(options)
    if body is not None:
        return Request("POST", path, query=query, json=body, stream=stream)
    return Request("GET", path, query=query, stream=stream)


def view(ctx: ServerContext, db: str, name: str, **options: Any):
    resp = yield view_request(db, name, options)
    resp.raise_for_status()
    return ViewResult(resp)


def temp_view(ctx: ServerContext, db: str, map_src: str, reduce_src: str | None = None,
              language: str = "javascript", **options: Any):
    """An ad-hoc view: ``_temp_view`` where the server has it, otherwise a throw-away
    design document that is always deleted again (the rows are read before that)."""
    if not isinstance(map_src, str) or not map_src.strip():
        raise InvalidInput("query needs the map function's source")
    fn: dict[str, Any] = {"map": map_src}
    if reduce_src:
        fn["reduce"] = reduce_src
    query, keys_body = codec.view_query(options)
    if ctx.temp_view is not False:
        body = {"language": language, **fn, **(keys_body or {})}
        resp = yield Request("POST", f"/{quote(db, safe='')}/_temp_view", query=query, json=body)
        if resp.status not in (404, 405, 410) or (resp.status == 404 and _is_db_missing(resp)):
            resp.raise_for_status()
            ctx.temp_view = True
            result = ViewResult(resp)
            result.all()
            return result
        ctx.temp_view = False
    ddoc_id = f"_design/couchcore-tmp-{uuid.uuid4().hex}"
    resp = yield Request("PUT", doc_path(db, ddoc_id), json={"language": language, "views": {"tmp": fn}})
    rev = resp.json()["rev"]
    try:
        resp = yield view_request(db, f"{ddoc_id}/_view/tmp", options, stream=False)
        resp.raise_for_status()
        result = ViewResult(resp)
        result.all()
        return result
    finally:
        yield Request("DELETE", doc_path(db, ddoc_id), query=[("rev", rev)])


def _is_db_missing(resp) -> bool:
    err = resp.error()
    return err.reason in ("no_db_file", "Database does not exist.")


def _result(resp) -> Result:
    resp.raise_for_status()
    body: Any = resp.body or b""
    if resp.is_json and body:
        body = codec.loads(body)
    return Result(body, resp.headers, resp.status)


def _split_fn(name: str, kind: str) -> tuple[str, str]:
    parts = name.split("/")
    if len(parts) == 4 and parts[0] == "_design" and parts[2] == kind:
        return parts[1], parts[3]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise InvalidInput(f"invalid {kind[1:]} function name {name!r}: use 'ddoc/name'")


def _fn_query(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(k, v if isinstance(v, str) else codec.dumps(v).decode("utf-8")) for k, v in options.items() if v is not None]


def list_fn(ctx: ServerContext, db: str, name: str, view_name: str, **options: Any):
    """``_list`` function ``ddoc/list`` applied to view ``view`` or ``other_ddoc/view``."""
    ddoc, fn = _split_fn(name, "_list")
    path = f"{design_path(db, ddoc)}/_list/{quote(fn, safe='')}/"
    path += "/".join(quote(p, safe="") for p in view_name.split("/"))
    known = {k: v for k, v in options.items() if k in codec.VIEW_OPTIONS}
    extra = {k: v for k, v in options.items() if k not in codec.VIEW_OPTIONS}
    query, body = codec.view_query(known)
    query += _fn_query(extra)
    if body is not None:
        resp = yield Request("POST", path, query=query, json=body, headers={"Accept": "*/*"})
    else:
        resp = yield Request("GET", path, query=query, headers={"Accept": "*/*"})
    return _result(resp)


def show_fn(ctx: ServerContext, db: str, name: str, docid: str | None = None, **options: Any):
    ddoc, fn = _split_fn(name, "_show")
    path = f"{design_path(db, ddoc)}/_show/{quote(fn, safe='')}"
    if docid is not None:
        path += "/" + quote(docid, safe="")
    resp = yield Request("GET", path, query=_fn_query(options), headers={"Accept": "*/*"})
    return _result(resp)


def update_fn(ctx: ServerContext, db: str, name: str, docid: str | None = None, body: Any = None, **options: Any):
    ddoc, fn = _split_fn(name, "_update")
    path = f"{design_path(db, ddoc)}/_update/{quote(fn, safe='')}"
    method = "POST"
    if docid is not None:
        path += "/" + quote(docid, safe="")
        method = "PUT"
    headers = {"Accept": "*/*"}
    if body is None:
        data = None
    elif isinstance(body, (bytes, str)):
        data = body.encode("utf-8") if isinstance(body, str) else body
    else:
        data = codec.dumps(body)
        headers["Content-Type"] = "application/json"
    resp = yield Request(method, path, query=_fn_query(options), body=data, headers=headers)
    return _result(resp)
