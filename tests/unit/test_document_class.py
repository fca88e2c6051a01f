"""couchcore.models.Document: one set of behaviour checks run on both implementations.

``couchcore.models.Document`` is the extension type ``couchcore_ext._document.Document`` when
that is built (``doc[key]`` through dict's own C slot) and the pure-Python class
``couchcore.models._PyDocument`` otherwise.  Every test taking ``doc_cls`` runs on both (the
extension's parameter is skipped, with the reason, when it is not built).
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import sys
import weakref

import orjson
import pytest

from couchcore import codec, models
from couchcore._rows import make_parser

try:
    from couchcore_ext._document import Document as ExtDocument

    EXT_SKIP = None
except Exception as e:  # pragma: no cover - depends on the build
    ExtDocument = None
    EXT_SKIP = f"couchcore_ext._document is not built ({type(e).__name__}: {e}); run `python -m couchcore_ext.build`"

CLASSES = [
    pytest.param("python", id="python"),
    pytest.param("extension", id="extension", marks=pytest.mark.skipif(EXT_SKIP is not None, reason=EXT_SKIP or "")),
]


@pytest.fixture(params=CLASSES)
def doc_cls(request, monkeypatch):
    """The Document class under test, installed as couchcore.models.Document for the test
    (pickle finds classes by module and name)."""
    cls = models._PyDocument if request.param == "python" else ExtDocument
    monkeypatch.setattr(models, "Document", cls)
    return cls


def test_models_document_is_the_extension_when_built():
    if os.environ.get("COUCHCORE_ROWS_BACKEND", "").strip().lower() == "python" or ExtDocument is None:
        assert models.Document is models._PyDocument
    else:
        assert models.Document is ExtDocument


def test_construction_like_dict(doc_cls):
    assert doc_cls() == {} and type(doc_cls()) is doc_cls
    assert doc_cls({"a": 1}, b=2) == {"a": 1, "b": 2}
    assert doc_cls([("a", 1), ("b", 2)]) == {"a": 1, "b": 2}
    assert list(doc_cls(z=1, a=2)) == ["z", "a"]  # insertion order
    d = doc_cls(_id="x")
    assert isinstance(d, dict) and d == {"_id": "x"} and d != {"_id": "y"}
    with pytest.raises(TypeError):
        doc_cls(1)


def test_attribute_access(doc_cls):
    d = doc_cls(_id="a", _rev="1-x", title="T", keys="shadowed")
    assert (d._id, d._rev, d.title) == ("a", "1-x", "T")
    assert callable(d.keys)  # an attribute of dict wins over the item, as for any __getattr__
    assert d["keys"] == "shadowed"
    with pytest.raises(AttributeError) as exc:
        d.missing
    assert exc.value.args == ("missing",) and exc.value.__cause__ is None and exc.value.__suppress_context__
    with pytest.raises(AttributeError):
        d.__nothing__
    assert getattr(d, "missing", 5) == 5 and hasattr(d, "title") and not hasattr(d, "nope")
    d.title = "U"
    d.new = [1]
    assert d == {"_id": "a", "_rev": "1-x", "title": "U", "keys": "shadowed", "new": [1]}
    d.keys = "set"  # __setattr__ writes items, whatever the name
    assert d["keys"] == "set" and callable(d.keys)
    del d.new
    assert "new" not in d
    with pytest.raises(AttributeError) as exc:
        del d.new
    assert exc.value.args == ("new",)
    with pytest.raises(KeyError):
        d["new"]


def test_no_instance_dict_no_weakref_slots(doc_cls):
    d = doc_cls(a=1)
    assert doc_cls.__slots__ == ()
    assert not hasattr(d, "__dict__") or "__dict__" in d  # __getattr__ reads the item
    with pytest.raises(TypeError):
        vars(d)
    with pytest.raises(TypeError):
        weakref.ref(d)


def test_repr_copy_and_dict_methods(doc_cls):
    d = doc_cls(_id="a", n=[1, 2])
    assert repr(d) == "Document({'_id': 'a', 'n': [1, 2]})"
    assert str(d) == repr(d)
    c = d.copy()
    assert type(c) is doc_cls and c == d and c is not d and c["n"] is d["n"]
    assert type(dict.copy(d)) is dict
    assert d.get("_id") == "a" and d.get("x", 3) == 3 and d.setdefault("y", 4) == 4 and d.pop("y") == 4
    assert d | {"z": 1} == {"_id": "a", "n": [1, 2], "z": 1}
    d.update(z=2)
    assert list(d.items()) == [("_id", "a"), ("n", [1, 2]), ("z", 2)]
    assert json.loads(json.dumps(d)) == d and orjson.loads(orjson.dumps(d)) == d
    assert codec.loads(codec.dumps(d)) == d


def test_pickle_and_copy(doc_cls):
    d = doc_cls(_id="a", n=1, sub={"k": [1]})
    for proto in range(2, pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(d, proto)
        assert b"couchcore.models" in data and b"Document" in data
        back = pickle.loads(data)
        assert type(back) is doc_cls and back == d
    deep = copy.deepcopy(d)
    assert type(deep) is doc_cls and deep == d and deep["sub"] is not d["sub"]
    shallow = copy.copy(d)
    assert type(shallow) is doc_cls and shallow["sub"] is d["sub"]


@pytest.mark.skipif(EXT_SKIP is not None, reason=EXT_SKIP or "")
def test_the_same_pickle_bytes(monkeypatch):
    """A pickle made with one class loads with the other: both are couchcore.models.Document."""
    made = {}
    for cls in (models._PyDocument, ExtDocument):
        monkeypatch.setattr(models, "Document", cls)
        made[cls] = [pickle.dumps(cls(_id="a", n=1), proto) for proto in range(2, pickle.HIGHEST_PROTOCOL + 1)]
    assert made[models._PyDocument] == made[ExtDocument]
    for data in made[ExtDocument]:
        assert type(pickle.loads(data)) is ExtDocument
    monkeypatch.setattr(models, "Document", models._PyDocument)
    for data in made[ExtDocument]:
        assert type(pickle.loads(data)) is models._PyDocument


def test_subclassing_from_python(doc_cls):
    class Mine(doc_cls):
        def __getitem__(self, key):
            return ("mine", dict.__getitem__(self, key))

        def title_upper(self):
            return self["title"][1].upper()

    m = Mine(title="t")
    assert m.title_upper() == "T" and m["title"] == ("mine", "t")
    assert m.title == ("mine", "t")  # attribute reads go through the subclass's __getitem__
    m.other = 1
    assert dict(m) == {"title": "t", "other": 1}
    assert isinstance(m, models._PyDocument if doc_cls is models._PyDocument else ExtDocument)
    assert repr(m) == "Document({'title': 't', 'other': 1})"
    assert type(m.copy()) is doc_cls


def test_the_row_parser_makes_models_document():
    """Whichever class couchcore.models.Document is at import is what the parsers build."""
    body = b'{"total_rows":1,"offset":0,"rows":[{"id":"a","key":"a","value":{"rev":"1-x"},"doc":{"_id":"a","n":1}}]}'
    for backend in ("python", "cython"):
        try:
            p = make_parser("view", backend=backend)
        except Exception:
            continue
        rows = p.feed(body) + p.close()
        assert type(rows[0].doc) is models.Document and rows[0].doc == {"_id": "a", "n": 1}
        assert rows[0].doc.n == 1


class _UserDoc(models._PyDocument):
    """Stands in for a user's subclass; rebased on the class under test in the test below."""


@pytest.mark.parametrize("proto", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_every_protocol_and_user_subclass(doc_cls, proto, monkeypatch):
    """Protocols 0 and 1 too (pickle.dumps(doc, 0), shelve/multiprocessing users with an old
    protocol): the extension type is no heap type, so copyreg's protocol-0/1 reduction refused
    it ('cannot pickle Document object') while the pure-Python class pickled."""
    d = doc_cls(_id="a", n=1, sub={"k": [1]})
    back = pickle.loads(pickle.dumps(d, proto))
    assert type(back) is doc_cls and back == d

    class UserDoc(doc_cls):
        kind = "user"

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

    UserDoc.__qualname__ = "_UserDoc"
    monkeypatch.setattr(sys.modules[__name__], "_UserDoc", UserDoc)
    u = UserDoc(d)
    u.__dict__["tag"] = "t"  # an instance attribute in the subclass's __dict__
    back = pickle.loads(pickle.dumps(u, proto))
    assert type(back) is UserDoc and back == d and back.kind == "user" and back.__dict__ == {"tag": "t"}
    assert copy.deepcopy(u).__dict__ == {"tag": "t"}


@pytest.mark.skipif(EXT_SKIP is not None, reason=EXT_SKIP or "")
@pytest.mark.parametrize("proto", [0, 1])
def test_the_same_pickle_bytes_old_protocols(monkeypatch, proto):
    made = {}
    for cls in (models._PyDocument, ExtDocument):
        monkeypatch.setattr(models, "Document", cls)
        made[cls] = pickle.dumps(cls(_id="a", n=1), proto)
    assert made[models._PyDocument] == made[ExtDocument]
    assert type(pickle.loads(made[models._PyDocument])) is ExtDocument


@pytest.mark.skipif(EXT_SKIP is not None, reason=EXT_SKIP or "")
def test_extension_documents_freed_by_dicts_dealloc():
    # the extension type's instances are freed by dict's own tp_dealloc (Cython's wrapper
    # only untracked, retracked and called it): their values are released, cycles through
    # them are collected, a chain of 200,000 nested Documents is freed without a deep C
    # recursion (dict's trashcan), a Python subclass still runs its __del__ and clears its
    # weak references, and making and freeing many leaves no memory behind
    import gc
    import tracemalloc

    from couchcore_ext import _document

    assert _document._dealloc_is_dicts() is True
    freed = []

    class Probe:
        def __del__(self):
            freed.append(1)

    d = ExtDocument(a=Probe(), b=[Probe()], c={"x": Probe()})
    del d
    assert len(freed) == 3
    d = ExtDocument(p=Probe())
    d["self"] = d
    del d
    gc.collect()
    assert len(freed) == 4
    d = ExtDocument()
    for i in range(200_000):
        d = ExtDocument(x=d, n=i)
    del d

    class Sub(ExtDocument):
        __slots__ = ("__weakref__",)

        def __del__(self):
            freed.append(2)

    s = Sub(a=Probe())
    r = weakref.ref(s)
    del s
    assert r() is None and freed[-2:] in ([1, 2], [2, 1]) and len(freed) == 6
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(3):
            docs = [ExtDocument(_id="d%d" % i, n=i, tags=["a"]) for i in range(20_000)]
            del docs
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            docs = [ExtDocument(_id="d%d" % i, n=i, tags=["a"]) for i in range(20_000)]
            del docs
        assert tracemalloc.get_traced_memory()[0] - before < 100_000
    finally:
        tracemalloc.stop()
