# cython: language_level=3, auto_pickle=False, annotation_typing=False, embedsignature=True, embedsignature.format=clinic, always_allow_keywords=True
"""``couchcore.models.Row`` as an extension type.

When this module is built, ``couchcore.models.Row`` *is* :class:`Row` below; otherwise it
is the pure-Python class in ``couchcore/models.py`` (also kept as ``models._PyRow``).  The
two behave the same (tests/unit/test_row_class.py runs one set of checks on both):
constructor ``Row(id=None, key=None, value=None, doc=None, error=None)``, the five
attributes writable and deletable (reading a deleted one raises ``AttributeError``), no
``__dict__`` and no weak references, ``__slots__`` listing the five names, the same
``repr``, ``==`` against any ``Row`` (``__hash__`` is ``None``: rows are unhashable),
``as_dict()``, pickling and ``copy`` through the slot state (the same pickle bytes, naming
``couchcore.models.Row``), and subclassing from Python.

Why: the row parser allocates one Row per row.  A heap type's instances are allocated
and freed through the generic allocator and ``subtype_dealloc``; this type keeps a free list
of dead instances (Cython's ``@cython.freelist``, used for exact ``Row`` instances only),
and the parser (``_rows.pyx``, which cimports the layout from ``_row.pxd``) fills the
fields of a new Row directly.

Known differences, all outside the documented interface: ``Row.__new__(Row)`` (what
unpickling and ``copy`` call before restoring the state) gives a Row whose five fields are
``None``, where the pure class leaves its slots empty (so a Row pickled after ``del row.x``
comes back with ``x`` ``None``); ``Row.id`` (the class attribute) is a ``getset_descriptor``
instead of a ``member_descriptor``; assigning ``row.__class__`` is refused (an extension
type is immutable); CPython's own error messages name the type ``couchcore.models.Row``
instead of ``Row``.
"""

cimport cython
from cpython.object cimport PyTypeObject

cdef object _UNSET = object()   # a field deleted with ``del row.attr``


cdef inline object _get(object v, str name):
    if v is _UNSET:
        raise AttributeError(f"'Row' object has no attribute '{name}'")
    return v


cdef inline void _del(object v, str name) except *:
    if v is _UNSET:
        raise AttributeError(name)


@cython.freelist(2048)
@cython.trashcan(True)   # as subtype_dealloc for the pure class: a long chain of Rows is freed without deep C recursion
cdef class Row:
    """Row(id=None, key=None, value=None, doc=None, error=None)
--

One row of a view, ``_all_docs`` or ``keys=`` query.

    ``id`` is ``None`` for reduce rows and for ``keys=`` rows that matched nothing
    (those carry ``error``, e.g. ``"not_found"``); ``doc`` is set only with
    ``include_docs``.
    """

    __slots__ = ("id", "key", "value", "doc", "error")
    __hash__ = None

    def __init__(self, id=None, key=None, value=None, doc=None, error=None):
        if type(self) is not Row:  # as the pure class: through the attributes a subclass may override
            setattr(self, "id", id)
            setattr(self, "key", key)
            setattr(self, "value", value)
            setattr(self, "doc", doc)
            setattr(self, "error", error)
            return
        self.f_id = id
        self.f_key = key
        self.f_value = value
        self.f_doc = doc
        self.f_error = error

    @property
    def id(self):
        return _get(self.f_id, "id")

    @id.setter
    def id(self, v):
        self.f_id = v

    @id.deleter
    def id(self):
        _del(self.f_id, "id")
        self.f_id = _UNSET

    @property
    def key(self):
        return _get(self.f_key, "key")

    @key.setter
    def key(self, v):
        self.f_key = v

    @key.deleter
    def key(self):
        _del(self.f_key, "key")
        self.f_key = _UNSET

    @property
    def value(self):
        return _get(self.f_value, "value")

    @value.setter
    def value(self, v):
        self.f_value = v

    @value.deleter
    def value(self):
        _del(self.f_value, "value")
        self.f_value = _UNSET

    @property
    def doc(self):
        return _get(self.f_doc, "doc")

    @doc.setter
    def doc(self, v):
        self.f_doc = v

    @doc.deleter
    def doc(self):
        _del(self.f_doc, "doc")
        self.f_doc = _UNSET

    @property
    def error(self):
        return _get(self.f_error, "error")

    @error.setter
    def error(self, v):
        self.f_error = v

    @error.deleter
    def error(self):
        _del(self.f_error, "error")
        self.f_error = _UNSET

    # the methods below read the attributes as the pure-Python class does (self.id, ...),
    # so a subclass that overrides one sees the same calls

    def __repr__(self):
        fields = [f"id={self.id!r}", f"key={self.key!r}", f"value={self.value!r}"]
        if self.doc is not None:
            fields.append(f"doc={self.doc!r}")
        if self.error is not None:
            fields.append(f"error={self.error!r}")
        return f"Row({', '.join(fields)})"

    def __eq__(self, other):
        if not isinstance(other, Row):
            return NotImplemented
        return (self.id, self.key, self.value, self.doc, self.error) == (
            other.id,
            other.key,
            other.value,
            other.doc,
            other.error,
        )

    def as_dict(self):
        """The row as CouchDB sent it (only the fields that were present)."""
        d = {}
        if self.id is not None:
            d["id"] = self.id
        d["key"] = self.key
        if self.error is not None:
            d["error"] = self.error
        else:
            d["value"] = self.value
        if self.doc is not None:
            d["doc"] = self.doc
        return d


# The type is named where users find it (couchcore.models.Row): its __module__ and
# __qualname__ come from tp_name for an extension type, and pickle records them, so a
# pickled Row loads with or without this extension built.
(<PyTypeObject*>Row).tp_name = b"couchcore.models.Row"
