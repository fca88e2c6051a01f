"""Paging state (sans-I/O): what the next page of a view or a Mango query asks for.

A pager says which options the next request takes (:meth:`ViewPager.next_options`),
is handed the answer (:meth:`ViewPager.accept`) and returns the items to deliver;
:attr:`done` says when no further request is needed. The facades run one operation
per page (:func:`view_page`, :func:`find_page`), so every backend pages the same way.

Views page by key (CouchDB's recommended way, never ``skip``): each request asks for
``page_size + 1`` rows; the extra row is not delivered but becomes the next page's
``startkey`` (+ ``startkey_docid`` when the row has an id, so equal keys emitted by
different documents are not lost or repeated across pages). Rows of a reduce/group
query have no id: their keys are distinct, ``startkey`` alone is exact (descending with
``group_level``, a group's key is followed by ``{}`` so the group keeps the longer keys
it stands for, which sort after it). Should one
document emit the same key several times around a page boundary, the rows the next
page repeats are counted and dropped. A short page is the last: no extra request. A
server that ignores ``startkey_docid`` (PouchDB Server; noticed when a page does not
begin with the row asked for) is paged within a key with ``skip`` instead, so the rows
are still right there.
https://docs.couchdb.org/en/stable/ddocs/views/pagination.html

Mango queries page by ``bookmark``; a server that sends none (or one that does not
advance) is paged with ``skip`` over the same query instead.
https://docs.couchdb.org/en/stable/api/database/find.html#pagination
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Generator

from .. import codec
from ..codec import NOT_GIVEN
from ..errors import InvalidInput, InvalidOption
from ..models import Document, Row
from .._results import ViewResult
from .mango import check_selector, find_body
from .messages import Request, Response
from .paths import db_path, view_path

__all__ = ["ViewPager", "FindPager", "check_page_size", "view_page", "find_page"]

_ALL_DOCS = ("_all_docs", "_design_docs", "_local_docs")
_ALIASES = {"start_key": "startkey", "start_key_doc_id": "startkey_docid", "end_key": "endkey",
            "end_key_doc_id": "endkey_docid"}


def check_page_size(page_size: Any) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise InvalidInput(f"page_size must be an int >= 1, got {page_size!r}")
    return page_size


def _check_limit(limit: Any, name: str = "limit") -> int | None:
    """``limit`` (or the option ``name``, e.g. ``skip``): ``None`` or a non-negative int, else
    :class:`InvalidOption` naming that option."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidOption(f"{name} must be a non-negative int, got {limit!r}")
    return limit


def _same(a: Any, b: Any) -> bool:
    """JSON equality (``1`` and ``True`` are different keys to CouchDB)."""
    return codec.dumps(a) == codec.dumps(b)


class ViewPager:
    """Key-based paging of a view (``"ddoc/view"``, ``"_design/d/_view/v"``) or of
    ``_all_docs``/``_design_docs``/``_local_docs``.

    ``options`` are view options; ``limit`` caps the rows delivered in all, ``key``
    becomes ``startkey = endkey = key`` (``inclusive_end`` and ``endkey_docid`` still
    apply to that end, as in CouchDB's own ``key``), ``skip``, ``keys`` and ``sorted=False`` are
    refused (:class:`InvalidInput`): paging by key needs neither, and needs the rows in
    key order (https://docs.couchdb.org/en/stable/api/ddoc/views.html, ``sorted``).
    """

    def __init__(self, name: str, page_size: int, options: Mapping[str, Any]) -> None:
        self.page_size = check_page_size(page_size)
        opts = {_ALIASES.get(k, k): v for k, v in options.items()}
        if len(opts) != len(options):
            raise InvalidInput("give each of startkey/start_key, endkey/end_key, ... once")
        for name_ in ("skip", "keys"):
            if opts.get(name_) not in (None, 0, NOT_GIVEN):
                raise InvalidInput(f"iterview pages by key and takes no {name_!r} "
                                   f"(use startkey/endkey{', or view()' if name_ == 'keys' else ''})")
            opts.pop(name_, None)
        if opts.get("sorted") is False:
            # sorted=false answers the rows in no key order: a page that starts at the last
            # row's key would repeat some rows and lose others
            raise InvalidInput("iterview pages by key and needs the rows in key order: "
                               "no sorted=False (use view(..., sorted=False) for the unsorted rows)")
        self.remaining = _check_limit(opts.pop("limit", None))
        if "key" in opts:
            key = opts.pop("key")
            if key is not NOT_GIVEN:
                if opts.get("startkey", NOT_GIVEN) is not NOT_GIVEN or opts.get("endkey", NOT_GIVEN) is not NOT_GIVEN:
                    raise InvalidInput("iterview takes key= or startkey=/endkey=, not both")
                opts["startkey"] = opts["endkey"] = key
        codec.view_query(opts)  # unknown options and bad values fail before anything is sent
        view_path("db", name)  # and so does a bad view name
        self.name = name
        self._opts = opts
        self._by_id = name not in _ALL_DOCS
        self._drop = 0  # rows at the start of the next page that were delivered already
        self._expect: tuple[Any, str] | None = None  # (key, id) the next page must begin with
        self._run = 0  # delivered rows with the next page's startkey
        self._by_skip = False  # the server ignores startkey_docid: skip within a key instead
        self._fetch = 0
        self._last = False
        self.done = self.remaining == 0

    def next_options(self) -> dict[str, Any]:
        """The options of the next page's request."""
        if self.remaining is not None and self.remaining <= self.page_size:
            self._fetch, self._last = self.remaining + self._drop, True
        else:
            self._fetch, self._last = self.page_size + 1 + self._drop, False
        return {**self._opts, "limit": self._fetch}

    def accept(self, rows: list[Row]) -> list[Row]:
        """The rows of the page just read to deliver; sets up the next page (or :attr:`done`)."""
        if self._expect is not None and rows and not self._by_skip:
            key, docid = self._expect
            first = rows[0]
            if first.id != docid or not _same(first.key, key):
                # the server ignored startkey_docid (PouchDB Server): page through the rows of
                # this key with skip instead, and ask for this page again
                self._by_skip = True
                self._opts.pop("startkey_docid", None)
                self._opts["skip"] = self._run
                self._drop = 0
                return []
        fetched = len(rows)
        rows = rows[self._drop:]
        expected, self._expect = self._expect, None
        old_drop = self._drop
        if self._last or fetched < self._fetch:
            self.done = True
            out = rows
        else:
            boundary = rows[-1]
            out = rows[:-1]
            previous = self._opts.get("startkey", NOT_GIVEN)
            run = 0
            for row in reversed(out):  # delivered rows with the boundary's key, at the end
                if not _same(row.key, boundary.key):
                    break
                run += 1
            continues = run == len(out) and previous is not NOT_GIVEN and _same(previous, boundary.key)
            self._run = self._run + run if continues else run
            self._opts["startkey"] = self._group_start(boundary) if boundary.id is None else boundary.key
            self._drop = 0
            if self._by_skip:
                self._opts["skip"] = self._run
            elif self._by_id and boundary.id is not None:
                self._opts["startkey_docid"] = boundary.id
                self._expect = (boundary.key, boundary.id)
                same = 0
                for row in reversed(out):
                    if row.id != boundary.id or not _same(row.key, boundary.key):
                        break
                    same += 1
                if same == len(out) and expected is not None and expected[1] == boundary.id \
                        and _same(expected[0], boundary.key):
                    same += old_drop  # this page began inside the same run of repeated rows
                self._drop = same
            else:
                self._opts.pop("startkey_docid", None)
        if self.remaining is not None:
            out = out[: self.remaining]
            self.remaining -= len(out)
            if self.remaining <= 0:
                self.done = True
        return out


    def _group_start(self, boundary: Row) -> Any:
        """The ``startkey`` that begins a page at reduce row ``boundary``. Descending with
        ``group_level=n``, a group key of ``n`` items stands for every emitted key it
        begins, and those sort after it: ``startkey`` is the key followed by ``{}`` (which
        sorts after every value), or the group would lose them."""
        key, level = boundary.key, self._opts.get("group_level")
        if self._opts.get("descending") is True and isinstance(level, int) and isinstance(key, list) \
                and len(key) == level:
            return [*key, {}]
        return key


class FindPager:
    """Bookmark paging of a Mango query: ``page_size`` documents a request.

    ``options`` are ``_find`` options; ``limit`` caps the documents delivered in all,
    ``skip`` and ``bookmark`` say where to begin.
    """

    def __init__(self, selector: Mapping[str, Any], page_size: int, options: Mapping[str, Any]) -> None:
        check_selector(selector)
        self.page_size = check_page_size(page_size)
        opts = dict(options)
        self.remaining = _check_limit(opts.pop("limit", None))
        skip = opts.pop("skip", None)
        self._skip = _check_limit(skip, "skip") or 0
        self.bookmark: str | None = opts.pop("bookmark", None)
        if self.bookmark is not None and not isinstance(self.bookmark, str):
            raise InvalidOption(f"bookmark must be a str, got {self.bookmark!r}")
        self.selector = dict(selector)
        self._opts = opts
        self._by_skip = False  # the server gave no usable bookmark: page with skip
        self._delivered = 0
        self._fetch = 0
        self._pages = 0  # answers accepted so far
        self.done = self.remaining == 0

    def next_options(self) -> dict[str, Any]:
        self._fetch = self.page_size if self.remaining is None else min(self.page_size, self.remaining)
        opts = {**self._opts, "limit": self._fetch}
        if self._by_skip:
            opts["skip"] = self._skip + self._delivered
        else:
            if self._skip and self._pages == 0:
                # the first page skips (after the caller's bookmark, if any, as _find does);
                # the server's bookmarks of the next pages are past the skipped documents
                opts["skip"] = self._skip
            if self.bookmark is not None:
                opts["bookmark"] = self.bookmark
        return opts

    def accept(self, answer: Mapping[str, Any]) -> list[Document]:
        docs = list(answer.get("docs") or ())
        self._pages += 1
        self._delivered += len(docs)
        if self.remaining is not None:
            self.remaining -= len(docs)
        if len(docs) < self._fetch or (self.remaining is not None and self.remaining <= 0):
            self.done = True
        elif not self._by_skip:
            bookmark = answer.get("bookmark")
            if not isinstance(bookmark, str) or bookmark in ("", "nil") or bookmark == self.bookmark:
                self._by_skip = True  # no bookmarks here (PouchDB Server): same query, skip what was read
            else:
                self.bookmark = bookmark
        return docs


def view_page(request: Callable[[Mapping[str, Any]], Request],
              options: Mapping[str, Any]) -> Generator[Request, Response, list[Row]]:
    """One page of a view: the rows (read whole; a page is bounded)."""
    resp = yield request(options)
    resp.raise_for_status()
    return ViewResult(resp).all()


def find_request(db: str, selector: Mapping[str, Any], options: Mapping[str, Any],
                 prefix: str | None = None) -> Request:
    return Request("POST", f"{prefix or db_path(db)}/_find", json=find_body(selector, options), idempotent=True)


def find_page(request: Request) -> Generator[Request, Response, dict[str, Any]]:
    """One ``_find`` answer: ``{"docs": [Document, ...], "bookmark"?, "warning"?}``."""
    resp = yield request
    data: dict[str, Any] = resp.json()
    data["docs"] = [Document(d) for d in data.get("docs", ())]
    return data
