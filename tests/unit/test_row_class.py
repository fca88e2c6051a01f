"""couchcore.models.Row: one set of behaviour checks run on both implementations.

``couchcore.models.Row`` is the extension type ``couchcore_ext._row.Row`` when that is built
(a free list for the row parser's allocations) and the pure-Python class
``couchcore.models._PyRow`` otherwise.  Every test taking ``row_cls`` runs on both (the
extension's parameter is skipped, with the reason, when it is not built); the subprocess
tests compare the two as ``couchcore.models.Row`` in one interpreter each (pickle bytes,
rows from both parser twins).
"""

from __future__ import annotations

import collections.abc
import copy
import gc
import inspect
import json
import os
import pickle
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

from couchcore import models
from couchcore.models import Document
from couchcore._rows import make_parser
from tests.helpers import CY_SKIP

ROOT = Path(__file__).resolve().parent.parent.parent

try:
    from couchcore_ext._row import Row as ExtRow

    EXT_SKIP = None
except Exception as e:  # pragma: no cover - depends on the build
    ExtRow = None
    EXT_SKIP = f"couchcore_ext._row is not built ({type(e).__name__}: {e}); run `python -m couchcore_ext.build`"

CLASSES = [
    pytest.param("python", id="python"),
    pytest.param("extension", id="extension", marks=pytest.mark.skipif(EXT_SKIP is not None, reason=EXT_SKIP or "")),
]
FIELDS = ("id", "key", "value", "doc", "error")


@pytest.fixture(params=CLASSES)
def row_cls(request, monkeypatch):
    """The Row class under test, installed as couchcore.models.Row for the test (pickle
    finds classes by module and name)."""
    cls = models._PyRow if request.param == "python" else ExtRow
    monkeypatch.setattr(models, "Row", cls)
    return cls


def test_models_row_is_the_extension_when_built():
    if os.environ.get("COUCHCORE_ROWS_BACKEND", "").strip().lower() == "python" or ExtRow is None:
        assert models.Row is models._PyRow
    else:
        assert models.Row is ExtRow
    assert models.Row.__module__ == "couchcore.models" and models.Row.__qualname__ == models.Row.__name__ == "Row"
    import couchcore

    assert couchcore.Row is models.Row


# -- construction and attributes ----------------------------------------------------------


def test_constructor(row_cls):
    r = row_cls()
    assert (r.id, r.key, r.value, r.doc, r.error) == (None,) * 5
    r = row_cls("a", [1, "k"], {"v": 2}, Document(_id="a"), "e")
    assert (r.id, r.key, r.value, r.doc, r.error) == ("a", [1, "k"], {"v": 2}, {"_id": "a"}, "e")
    r = row_cls(error="not_found", key="x")
    assert (r.id, r.key, r.value, r.doc, r.error) == (None, "x", None, None, "not_found")
    r = row_cls("a", value=3)
    assert (r.id, r.key, r.value) == ("a", None, 3)
    val = object()
    assert row_cls(value=val).value is val  # stored as given, not copied
    with pytest.raises(TypeError):
        row_cls(1, 2, 3, 4, 5, 6)
    with pytest.raises(TypeError):
        row_cls(foo=1)
    with pytest.raises(TypeError):
        row_cls("a", id="b")


def test_signature(row_cls):
    params = inspect.signature(row_cls).parameters
    assert list(params) == list(FIELDS)
    assert all(p.default is None for p in params.values())
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params.values())


def test_attributes_writable_and_deletable(row_cls):
    r = row_cls("a", 1, 2)
    for i, name in enumerate(FIELDS):
        setattr(r, name, [i])
        assert getattr(r, name) == [i]
    del r.key
    with pytest.raises(AttributeError):
        r.key
    with pytest.raises(AttributeError):
        del r.key
    assert not hasattr(r, "key")
    with pytest.raises(AttributeError):  # repr, ==, as_dict read the attribute
        repr(r)
    with pytest.raises(AttributeError):
        r == row_cls()
    r.key = "back"
    assert r.key == "back" and r == row_cls([0], "back", [2], [3], [4])


def test_no_dict_no_weakref_slots(row_cls):
    r = row_cls()
    assert row_cls.__slots__ == FIELDS
    assert not hasattr(r, "__dict__")
    with pytest.raises(AttributeError):
        r.other = 1
    with pytest.raises(TypeError):
        vars(r)
    with pytest.raises(TypeError):
        weakref.ref(r)
    assert set(FIELDS) <= set(dir(r))
    assert gc.is_tracked(r)


def test_docstrings_match():
    if ExtRow is None:
        pytest.skip(EXT_SKIP)
    assert inspect.getdoc(ExtRow) == inspect.getdoc(models._PyRow)
    assert inspect.getdoc(ExtRow.as_dict) == inspect.getdoc(models._PyRow.as_dict)


# -- repr, equality, hashing, as_dict -----------------------------------------------------


def test_repr(row_cls):
    assert repr(row_cls()) == "Row(id=None, key=None, value=None)"
    assert repr(row_cls("a", [1, "x"], {"v": 0.5})) == "Row(id='a', key=[1, 'x'], value={'v': 0.5})"
    assert repr(row_cls(key="x", error="not_found")) == "Row(id=None, key='x', value=None, error='not_found')"
    r = row_cls("a", "a", {"rev": "1-x"}, Document(_id="a"))
    assert repr(r) == "Row(id='a', key='a', value={'rev': '1-x'}, doc=Document({'_id': 'a'}))"
    assert str(r) == repr(r)
    r.value = r  # a row inside itself
    with pytest.raises(RecursionError):
        repr(r)


def test_equality(row_cls):
    a = row_cls("a", [1], {"v": 2}, Document(_id="a"))
    assert a == row_cls("a", [1], {"v": 2}, {"_id": "a"})
    assert not (a != row_cls("a", [1], {"v": 2}, {"_id": "a"}))
    for i in range(5):
        args = ["a", [1], {"v": 2}, {"_id": "a"}, None]
        args[i] = "other"
        assert a != row_cls(*args) and not (a == row_cls(*args))
    assert row_cls(value=1) == row_cls(value=1.0)
    assert a.__eq__(("a", [1], {"v": 2}, {"_id": "a"}, None)) is NotImplemented
    assert a != ("a", [1], {"v": 2}, {"_id": "a"}, None) and a != 1 and a != None  # noqa: E711

    class Other:
        def __eq__(self, other):
            return "other decides"

    assert (a == Other()) == "other decides"  # NotImplemented hands over to the other side


def test_unhashable(row_cls):
    assert row_cls.__hash__ is None
    with pytest.raises(TypeError):
        hash(row_cls())
    with pytest.raises(TypeError):
        {row_cls()}
    assert not isinstance(row_cls(), collections.abc.Hashable)


def test_as_dict(row_cls):
    assert row_cls("a", 1, 2).as_dict() == {"id": "a", "key": 1, "value": 2}
    assert row_cls(key=1, value=2).as_dict() == {"key": 1, "value": 2}
    assert row_cls(key="x", error="not_found").as_dict() == {"key": "x", "error": "not_found"}
    d = row_cls("a", "a", {"rev": "1"}, Document(_id="a")).as_dict()
    assert d == {"id": "a", "key": "a", "value": {"rev": "1"}, "doc": {"_id": "a"}}
    assert list(d) == ["id", "key", "value", "doc"] and type(d["doc"]) is Document


# -- pickle and copy ---------------------------------------------------------------------


def test_pickle_and_copy(row_cls):
    r = row_cls("a", ["k", 1], {"v": [1.5]}, Document(_id="a", n=None), None)
    for proto in range(2, pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(r, proto)
        assert b"couchcore.models" in data and b"couchcore_ext" not in data
        back = pickle.loads(data)
        assert type(back) is row_cls and back == r and type(back.doc) is Document
    for proto in (0, 1):  # a __slots__ class without __getstate__: refused, as for any such class
        with pytest.raises(TypeError):
            pickle.dumps(r, proto)
    c = copy.copy(r)
    assert type(c) is row_cls and c == r and c is not r and c.value is r.value
    d = copy.deepcopy(r)
    assert type(d) is row_cls and d == r and d.value is not r.value and type(d.doc) is Document
    assert r.__reduce_ex__(2)[1:3] == ((row_cls,), (None, dict(zip(FIELDS, ("a", ["k", 1], {"v": [1.5]}, {"_id": "a", "n": None}, None)))))
    del r.error  # a deleted attribute is left out of the state
    assert r.__reduce_ex__(2)[2] == (None, dict(zip(FIELDS[:4], ("a", ["k", 1], {"v": [1.5]}, {"_id": "a", "n": None}))))
    back = pickle.loads(pickle.dumps(r, 4))
    # the one documented difference: Row.__new__(Row) (what unpickling and copy call) leaves
    # the pure class's slots empty and sets the extension type's fields to None
    if row_cls is ExtRow:
        assert back.error is None and row_cls.__new__(row_cls).id is None
    else:
        assert not hasattr(back, "error") and not hasattr(row_cls.__new__(row_cls), "id")
    assert back.id == "a"


_SUBPROCESS = r"""
import json, pickle, sys
from couchcore import models
from couchcore._rows import make_parser
from couchcore.models import Document, Row
r = Row("a", ["k", 1], {"v": [1.5, None]}, Document(_id="a"), None)
body = b'{"total_rows":3,"rows":[{"id":"a","key":["k",1],"value":{"n":1,"score":0.5}},' \
       b'{"key":"x","error":"not_found"},{"id":"b","key":2,"value":null,"doc":{"_id":"b"}}]}'
rows = {}
for backend in sys.argv[2:]:
    p = make_parser("view", backend)
    got = p.feed(body) + p.close()
    assert all(type(x) is Row for x in got), [type(x) for x in got]
    rows[backend] = [repr(x) for x in got]
others = [pickle.loads(bytes.fromhex(h)) for h in sys.argv[1].split(",") if h]
print(json.dumps({
    "pure": Row is models._PyRow,
    "pickles": [pickle.dumps(r, p).hex() for p in range(2, pickle.HIGHEST_PROTOCOL + 1)],
    "others": [repr(o) for o in others], "others_type_ok": all(type(o) is Row for o in others),
    "rows": rows,
}))
"""


def _run(env_backend: str | None, other_pickle: str, backends: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("COUCHCORE_ROWS_BACKEND", None)
    if env_backend:
        env["COUCHCORE_ROWS_BACKEND"] = env_backend
    out = subprocess.run([sys.executable, "-c", _SUBPROCESS, other_pickle, *backends], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_both_classes_as_models_row_in_their_own_interpreter():
    """COUCHCORE_ROWS_BACKEND=python makes models.Row the pure class; a pickle made on either
    side loads on the other (protocols 2-3: the same bytes; 4-5 differ only in which strings
    are memoized, since the extension type's ``__module__`` is a new str each time); both parser
    twins make models.Row rows, and the same ones, whichever class it is."""
    if EXT_SKIP is not None or CY_SKIP is not None:
        pytest.skip(EXT_SKIP or CY_SKIP)
    want = "Row(id='a', key=['k', 1], value={'v': [1.5, None]}, doc=Document({'_id': 'a'}))"
    pure = _run("python", "", ["python"])
    ext = _run(None, ",".join(pure["pickles"]), ["python", "cython"])
    back = _run("python", ",".join(ext["pickles"]), ["python"])
    assert pure["pure"] is True and ext["pure"] is False
    assert ext["pickles"][:2] == pure["pickles"][:2]
    for side in (ext, back):
        assert side["others_type_ok"] and side["others"] == [want] * len(pure["pickles"])
    assert ext["rows"]["python"] == ext["rows"]["cython"] == pure["rows"]["python"]
    assert ext["rows"]["cython"][1] == "Row(id=None, key='x', value=None, error='not_found')"


def test_cython_parser_on_the_pure_class():
    """The extension parser fills the pure class's slots when that is models.Row."""
    if CY_SKIP is not None:
        pytest.skip(CY_SKIP)
    code = (
        "import couchcore_ext._rows as cy; from couchcore import models;"
        "assert models.Row is models._PyRow and cy._setup_row_fast() is True;"
        "p = cy.RowParser('view'); got = p.feed(b'{\"rows\":[{\"id\":\"a\",\"key\":1,\"value\":{\"v\":2}}]}');"
        "assert type(got[0]) is models.Row and got[0] == models.Row('a', 1, {'v': 2}), got; print('ok')"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), COUCHCORE_ROWS_BACKEND="python")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


# -- subclassing and isinstance ------------------------------------------------------------


def test_subclasses(row_cls):
    class WithDict(row_cls):
        pass

    w = WithDict("a", 1, value=2)
    w.extra = 5  # a subclass without __slots__ has a __dict__
    assert w.__dict__ == {"extra": 5} and isinstance(w, row_cls)
    assert w == row_cls("a", 1, 2) and row_cls("a", 1, 2) == w
    assert repr(w) == "Row(id='a', key=1, value=2)"
    weakref.ref(w)

    class Slotted(row_cls):
        __slots__ = ("score",)

        def __init__(self, *args, score=0.0, **kw):
            super().__init__(*args, **kw)
            self.score = score

        def __repr__(self):
            return f"Slotted({super().__repr__()}, {self.score})"

    s = Slotted("a", key=1, score=0.5)
    assert (s.id, s.key, s.value, s.score) == ("a", 1, None, 0.5)
    assert not hasattr(s, "__dict__") and repr(s) == "Slotted(Row(id='a', key=1, value=None), 0.5)"
    assert s.as_dict() == {"id": "a", "key": 1, "value": None}

    class Renamed(row_cls):
        __slots__ = ("seen",)

        @property
        def id(self):  # an override is what __init__, repr, == and as_dict go through
            return "always"

        @id.setter
        def id(self, v):
            self.seen = v

    n = Renamed("a")
    assert n.seen == "a" and repr(n).startswith("Row(id='always'") and n.as_dict()["id"] == "always"
    assert n == row_cls("always")

    class ReadOnly(row_cls):
        @property
        def key(self):
            return 1

    with pytest.raises(AttributeError):  # __init__ assigns key
        ReadOnly()
    assert {WithDict, Slotted, Renamed} <= set(row_cls.__subclasses__())
    assert copy.copy(s).score == 0.5 and copy.copy(w).__dict__ == {"extra": 5}


def test_cycles_through_a_row_are_collected(row_cls):
    class Marker:
        pass

    m = Marker()
    alive = weakref.ref(m)
    r = row_cls("a", value=[m])
    r.value.append(r)  # row -> list -> row
    del r, m
    was = gc.isenabled()
    gc.collect()
    assert alive() is None
    assert gc.isenabled() is was


@pytest.mark.parametrize("env_backend", ["python", ""])
def test_a_long_chain_of_rows_is_freed(env_backend):
    """A million Rows each holding the previous one (and subclass instances mixed in, and
    Rows each holding the previous one through a functools.partial, a type without a
    trashcan) are freed without deep C recursion: CPython's trashcan, as for the pure class
    (the extension type crashed with a segfault here before it was declared with
    ``@cython.trashcan``; its own tp_dealloc goes to the trashcan past 32 nested Rows).
    In a subprocess, so that a crash fails this test only."""
    if not env_backend and EXT_SKIP is not None:
        pytest.skip(EXT_SKIP)
    code = (
        "from couchcore import models\n"
        "from couchcore.models import Row\n"
        "assert (Row is models._PyRow) == (%r == 'python')\n"
        "class Sub(Row):\n    pass\n"
        "r = None\n"
        "for i in range(1000000):\n    r = Row(value=r)\n"
        "del r\n"
        "r = None\n"
        "for i in range(300000):\n    r = (Sub if i %% 2 else Row)(value=[r], doc={'d': r})\n"
        "del r\n"
        "import functools\n"
        "r = None\n"
        "for i in range(300000):\n    r = Row(value=functools.partial(print, r))\n"  # partial: no trashcan of its own
        "del r\n"
        "print('freed')\n" % env_backend
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), COUCHCORE_ROWS_BACKEND=env_backend)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "freed", (out.returncode, out.stderr[-2000:])


# -- rows from the parser ----------------------------------------------------------------


BODY = b'{"total_rows":4,"rows":[' + b",".join(
    b'{"id":"d%d","key":["u%d",%d],"value":{"n":%d,"score":0.%d}}' % (i, i % 7, i, i, i) for i in range(2000)
) + b"]}"


@pytest.mark.parametrize("backend", ["python", pytest.param("cython", marks=pytest.mark.skipif(CY_SKIP is not None, reason=CY_SKIP or ""))])
def test_parser_rows_kept_across_feeds_and_refcounts(backend):
    """Rows kept from one feed stay intact while later feeds reuse dead rows (the
    extension type's free list), and parsing leaks no reference (None's count is back)."""
    kept = []
    for rep in range(3):
        p = make_parser("view", backend)
        for i in range(0, len(BODY), 4096):
            got = p.feed(BODY[i:i + 4096])
            kept.extend(got[::97])  # keep a few, drop the rest
            del got
        p.close()
    for r in kept:
        assert type(r) is models.Row
        i = int(r.id[1:])
        assert r == models.Row(f"d{i}", [f"u{i % 7}", i], {"n": i, "score": float(f"0.{i}")})
    del kept
    gc.collect()
    before = sys.getrefcount(None)
    for rep in range(3):
        p = make_parser("view", backend)
        p.feed(b'{"rows":[' + b",".join([b'{"id":null,"key":null,"value":null,"doc":null,"error":null}'] * 3000) + b"]}")
        p.close()
        del p
    gc.collect()
    assert abs(sys.getrefcount(None) - before) < 50


@pytest.mark.parametrize("backend", ["python", pytest.param("cython", marks=pytest.mark.skipif(CY_SKIP is not None, reason=CY_SKIP or ""))])
def test_parser_rows_with_the_free_list_drained_and_refilled(backend):
    """More rows alive at once than the extension type keeps dead Rows for (2048): the
    parser's rows come from the free list and, once it is empty, from the type's own
    allocation (the two paths of _row's cc_row_make5); both are exact Rows, tracked by
    the GC, with the right fields; freed and parsed again, no reference to None leaks."""
    body = b'{"rows":[' + b",".join(
        b'{"id":"d%d","key":["u",%d],"value":{"n":%d},"error":null}' % (i, i, i) for i in range(6000)) + b"]}"
    gc.collect()
    before = sys.getrefcount(None)
    for rep in range(3):
        p = make_parser("view", backend)
        rows = []
        for i in range(0, len(body), 8192):
            rows.extend(p.feed(body[i:i + 8192]))
        rows.extend(p.close())
        assert len(rows) == 6000
        for i, r in enumerate(rows):
            assert type(r) is models.Row and gc.is_tracked(r)
            assert (r.id, r.key, r.value, r.doc, r.error) == (f"d{i}", ["u", i], {"n": i}, None, None)
        del rows, r, p
    gc.collect()
    assert abs(sys.getrefcount(None) - before) < 50


@pytest.mark.parametrize("backend", ["python", pytest.param("cython", marks=pytest.mark.skipif(CY_SKIP is not None, reason=CY_SKIP or ""))])
def test_parsed_rows_have_one_reference_each(backend):
    """A parsed Row (taken from the free list or newly allocated) starts with exactly the
    reference the list of rows holds: dropping the list leaves the caller's only; on
    the extension type, which is a static type (no reference to the type per instance)."""
    body = b'{"rows":[' + b",".join(b'{"id":"d%d","key":%d,"value":null}' % (i, i) for i in range(3000)) + b"]}"
    for rep in range(2):
        items = parse_rows(backend, body)
        mid, last = items[1500], items[-1]
        del items
        assert sys.getrefcount(mid) == 2 and sys.getrefcount(last) == 2
        del mid, last
    if backend == "cython":
        assert not models.Row.__flags__ & (1 << 9)  # Py_TPFLAGS_HEAPTYPE


def parse_rows(backend, body):
    p = make_parser("view", backend)
    out = p.feed(body)
    out.extend(p.close())
    return out


# -- couchcore_ext._row.Items: the iterator of a streamed result ---------------------------------


@pytest.mark.skipif(EXT_SKIP is not None, reason=EXT_SKIP or "")
def test_items_hands_over_every_list_in_order_then_the_error_then_stops():
    from couchcore_ext._row import Items

    log = []

    def batches():
        try:
            yield [1, 2, 3]
            yield []
            yield [4]
            yield [5, 6]
            raise ValueError("stream broke")
        finally:
            log.append("finally")

    it = Items(batches())
    assert iter(it) is it
    got = [next(it) for _ in range(6)]
    assert got == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="stream broke"):
        next(it)
    assert log == ["finally"]
    with pytest.raises(StopIteration):
        next(it)
    assert list(Items(iter([[], [7], [], [8, 9], []]))) == [7, 8, 9]
    assert list(Items(iter([]))) == []


@pytest.mark.skipif(EXT_SKIP is not None, reason=EXT_SKIP or "")
def test_items_close_closes_the_generator_and_returns_nothing_more():
    from couchcore_ext._row import Items

    log = []
    kept = weakref.WeakSet()

    class Item:
        pass

    def batches():
        try:
            for _ in range(3):
                batch = [Item() for _ in range(4)]
                kept.update(batch)
                yield batch
        finally:
            log.append("finally")

    it = Items(batches())
    first = next(it)
    assert isinstance(first, Item)
    it.close()
    assert log == ["finally"]
    with pytest.raises(StopIteration):
        next(it)
    del first
    gc.collect()
    assert len(kept) == 0  # the rest of the list being handed out is not held
    it.close()  # again: nothing happens
