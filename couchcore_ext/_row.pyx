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
of dead instances (its own ``tp_new`` and ``tp_dealloc`` in C, below; exact ``Row``
instances only), and the parser (``_rows.pyx``, which cimports the layout from ``_row.pxd``) fills the
fields of a new Row directly.

Known differences, all outside the documented interface: ``Row.__new__(Row)`` (what
unpickling and ``copy`` call before restoring the state) gives a Row whose five fields are
``None``, where the pure class leaves its slots empty (so a Row pickled after ``del row.x``
comes back with ``x`` ``None``); assigning ``row.__class__`` is refused (an extension
type is immutable); CPython's own error messages name the type ``couchcore.models.Row``
instead of ``Row``.
"""

cimport cython
from cpython.object cimport PyObject, PyTypeObject
from cpython.pycapsule cimport PyCapsule_New
from cpython.ref cimport Py_INCREF, Py_XDECREF

cdef extern from "Python.h":
    object PyDescr_NewMember(PyTypeObject* type, PyMemberDef* member)
    void PyType_Modified(PyTypeObject* type)
    ctypedef struct _TypeDict "PyTypeObject":
        PyObject* tp_dict


cdef Py_ssize_t _OFF[5]   # where the five fields are in a Row (found by _install_members)


# Allocation and deallocation of exact Rows at C speed: the row parser (_rows.pyx) makes one
# Row per row with tp_new and the digest loop frees it a moment later, so both run a
# million times for a million rows.  Cython's own free list (@cython.freelist) goes through
# its tp_new wrapper (argument tuple -> vectorcall), a memset of the whole object,
# PyObject_INIT and a call that sets the five fields to None one by one (~107 instructions
# per Row, callgrind); the tp_new below takes a dead Row from its own free list, sets the
# five fields to None with one reference count update and tracks it (~74 with the calls).
# tp_dealloc puts exact Rows back on the free list (subclass instances and a full list go
# to tp_free); a long chain of Rows is still freed without deep C recursion: past 32
# nested Row deallocs, CPython's trashcan (whose bookkeeping, ~25 instructions, the
# common case skips).
cdef extern from *:
    """
    #define CC_ROW_FREE_MAX 2048
    static PyObject* cc_row_free[CC_ROW_FREE_MAX];
    static int cc_row_nfree = 0;
    static PyTypeObject* cc_row_type = NULL;
    static newfunc cc_row_base_new = NULL;
    static void cc_row_dealloc(PyObject* o);
    /* the five fields follow the object header (_row.pxd; checked by _install_members) */
    #define CC_ROW_FIELDS(o) ((PyObject**)((char*)(o) + sizeof(PyObject)))

    static PyObject* cc_row_new(PyTypeObject* t, PyObject* a, PyObject* k) {
        PyObject* o;
        PyObject** f;
        if (t == cc_row_type && cc_row_nfree > 0) {
            o = cc_row_free[--cc_row_nfree];
            (void)PyObject_Init(o, t);  /* reference count 1 (tracemalloc told), type kept */
            f = CC_ROW_FIELDS(o);
            f[0] = f[1] = f[2] = f[3] = f[4] = Py_None;
            Py_SET_REFCNT(Py_None, Py_REFCNT(Py_None) + 5);
            PyObject_GC_Track(o);
            return o;
        }
        return cc_row_base_new(t, a, k);
    }

    /* The row parser's constructor (couchcore_ext._rows calls it through the capsule
       _MAKE5): a new exact Row of the five references v[0..4] (stolen, none NULL), a dead
       Row from the free list with its fields set at once (tp_new's path sets them to None,
       which the parser then replaced); with the free list empty, tp_new's own allocation.
       NULL on error (exception set, v[] released). */
    static PyObject* cc_row_empty_args = NULL;
    static PyObject* cc_row_make5(PyObject** v) {
        PyObject* o;
        PyObject** f;
        PyObject* old;
        int i;
        if (cc_row_nfree > 0) {
            o = cc_row_free[--cc_row_nfree];
    #if PY_VERSION_HEX < 0x030C0000 && !defined(Py_GIL_DISABLED)
            /* reference count 1 (tracemalloc told), the type kept: PyObject_Init without its
               call (the type is static: no reference to it to take) */
            if (cc_row_type->tp_flags & Py_TPFLAGS_HEAPTYPE) (void)PyObject_Init(o, cc_row_type);
            else _Py_NewReference(o);
    #else
            (void)PyObject_Init(o, cc_row_type);  /* reference count 1 (tracemalloc told), type kept */
    #endif
            f = CC_ROW_FIELDS(o);
            f[0] = v[0]; f[1] = v[1]; f[2] = v[2]; f[3] = v[3]; f[4] = v[4];
            PyObject_GC_Track(o);
            return o;
        }
        o = cc_row_base_new(cc_row_type, cc_row_empty_args, NULL);
        if (o == NULL) {
            for (i = 0; i < 5; i++) Py_DECREF(v[i]);
            return NULL;
        }
        f = CC_ROW_FIELDS(o);
        for (i = 0; i < 5; i++) {
            old = f[i];
            f[i] = v[i];
            Py_XDECREF(old);
        }
        return o;
    }

    static inline void cc_row_clear_free(PyObject* o) {
        PyObject** f = CC_ROW_FIELDS(o);
        Py_CLEAR(f[0]);
        Py_CLEAR(f[1]);
        Py_CLEAR(f[2]);
        Py_CLEAR(f[3]);
        Py_CLEAR(f[4]);
        if (Py_TYPE(o) == cc_row_type && cc_row_nfree < CC_ROW_FREE_MAX) {
            cc_row_free[cc_row_nfree++] = o;
        } else {
            Py_TYPE(o)->tp_free(o);
        }
    }
    /* Rows being freed inside one another right now (all threads: under the GIL a count
       that other threads' deallocs add to is only ever too high).  Up to CC_ROW_NEST deep
       an exact Row is freed directly; deeper, or a subclass instance, goes through
       CPython's trashcan, which defers what is deeper still. */
    #define CC_ROW_NEST 32
    static int cc_row_nest = 0;
    static void cc_row_dealloc(PyObject* o) {
        PyObject_GC_UnTrack(o);
    #ifndef Py_GIL_DISABLED
        if (cc_row_nest < CC_ROW_NEST && Py_TYPE(o) == cc_row_type) {
            cc_row_nest++;
            cc_row_clear_free(o);
            cc_row_nest--;
            return;
        }
    #endif
        Py_TRASHCAN_BEGIN(o, cc_row_dealloc)
        cc_row_clear_free(o);
        Py_TRASHCAN_END
    }

    /* install the two slots on the (ready) Row type; off: the five fields' offsets */
    static int cc_row_install(PyTypeObject* t, const Py_ssize_t* off) {
        int i;
        for (i = 0; i < 5; i++)
            if (off[i] != (Py_ssize_t)(sizeof(PyObject) + i * sizeof(PyObject*))) return -1;
        if (cc_row_empty_args == NULL) {
            cc_row_empty_args = PyTuple_New(0);
            if (cc_row_empty_args == NULL) { PyErr_Clear(); return -1; }
        }
        cc_row_type = t;
        cc_row_base_new = t->tp_new;
        t->tp_new = cc_row_new;
        t->tp_dealloc = cc_row_dealloc;
        return 0;
    }
    """
    int cc_row_install(PyTypeObject* t, const Py_ssize_t* off)
    PyObject* cc_row_make5(PyObject** v)


cdef inline void _store(object row, int i, object value):
    """Field ``i`` of ``row`` = ``value`` (the field may be NULL after ``del row.attr``)."""
    cdef PyObject** slot = <PyObject**>((<char*><PyObject*>row) + _OFF[i])
    cdef PyObject* old = slot[0]
    Py_INCREF(value)
    slot[0] = <PyObject*>value
    Py_XDECREF(old)


@cython.trashcan(True)   # as subtype_dealloc for the pure class (replaced by cc_row_dealloc, which keeps it)
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
        _store(self, 0, id)
        _store(self, 1, key)
        _store(self, 2, value)
        _store(self, 3, doc)
        _store(self, 4, error)

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


# The five attributes are member descriptors over the fields, as __slots__ gives the pure
# class (T_OBJECT_EX: reading a deleted one raises AttributeError, deleting it twice too):
# CPython's interpreter reads those inline (LOAD_ATTR_SLOT), where a property costs a call.
cdef PyMemberDef _MEMBERS[5]


cdef _install_members():
    # the fields follow the object header in declaration order (_row.pxd): checked on an instance
    cdef Row probe = Row.__new__(Row)
    cdef int i
    marks = (object(), object(), object(), object(), object())
    probe.f_id, probe.f_key, probe.f_value, probe.f_doc, probe.f_error = marks
    for i in range(5):
        _OFF[i] = <Py_ssize_t>sizeof(PyObject) + i * <Py_ssize_t>sizeof(PyObject*)
        if (_OFF[i] + <Py_ssize_t>sizeof(PyObject*) > Row.__basicsize__
                or (<PyObject**>((<char*><PyObject*>probe) + _OFF[i]))[0] != <PyObject*>marks[i]):
            raise ImportError("couchcore_ext._row: unexpected layout of Row")
    names = (b"id", b"key", b"value", b"doc", b"error")
    type_dict = <dict><object>(<_TypeDict*>Row).tp_dict
    for i in range(5):
        _MEMBERS[i].name = names[i]   # bytes literals: static, they live as long as the module
        _MEMBERS[i].type = T_OBJECT_EX
        _MEMBERS[i].offset = _OFF[i]
        _MEMBERS[i].flags = 0
        _MEMBERS[i].doc = NULL
        type_dict[names[i].decode()] = PyDescr_NewMember(<PyTypeObject*>Row, &_MEMBERS[i])
    PyType_Modified(<PyTypeObject*>Row)
    if cc_row_install(<PyTypeObject*>Row, _OFF) != 0:
        raise ImportError("couchcore_ext._row: unexpected layout of Row")


_install_members()

#: the row parser's constructor (cc_row_make5 above), taken by couchcore_ext._rows
_MAKE5 = PyCapsule_New(<void*>cc_row_make5, b"couchcore_ext._row.make5", NULL)


@cython.final
cdef class Items:
    """Items(batches) -- the iterator of a streamed result (``couchcore._results``).

    ``batches`` is a generator of lists (one per parsed chunk); iterating an ``Items``
    returns their items in order, each from C (``tp_iternext``: a bounds check and a
    reference, no Python frame per item), and resumes the generator only when a list runs
    out (empty lists are skipped).  An exception from the generator propagates; after
    its end, or after :meth:`close`, iteration stops.  ``close()`` closes the generator
    (its ``finally`` releases the connection) and drops the list being handed out, so no
    further item is returned.
    """

    cdef list _cur        # the list being handed out (None between lists)
    cdef Py_ssize_t _i    # the index of its next item
    cdef object _gen
    cdef object _next     # _gen.__next__

    def __cinit__(self, batches):
        self._cur = None
        self._i = 0
        self._gen = batches
        self._next = batches.__next__

    def __iter__(self):
        return self

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def __next__(self):
        cdef list cur = self._cur
        cdef Py_ssize_t i = self._i
        if cur is not None and i < len(cur):
            self._i = i + 1
            return cur[i]
        return self._refill()

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef object _refill(self):
        cdef list cur
        self._cur = None  # the list handed out is released before the next one is parsed
        while True:
            cur = self._next()  # StopIteration at the end: iteration stops
            if len(cur) > 0:
                self._cur = cur
                self._i = 1
                return cur[0]

    def close(self):
        """Stop: close the generator (releasing the connection); no further item is returned."""
        self._cur = None
        self._gen.close()


# Items' tp_iternext: the common case (an item left in the current list) in plain C, ~10
# instructions; Cython's __next__ (kept as the fallback, which refills) takes a reference
# to the list and checks it again (~25 per item, callgrind).  The two fields' offsets are
# found on an instance, as the Row fields' are.
cdef extern from *:
    """
    static Py_ssize_t cc_items_cur_off = 0, cc_items_i_off = 0;
    static iternextfunc cc_items_slow = NULL;
    static PyObject* cc_items_next(PyObject* self) {
        PyObject* cur = *(PyObject**)((char*)self + cc_items_cur_off);
        Py_ssize_t* ip = (Py_ssize_t*)((char*)self + cc_items_i_off);
        Py_ssize_t i = *ip;
        PyObject* item;
        if (cur != Py_None && i < PyList_GET_SIZE(cur)) {
            *ip = i + 1;
            item = PyList_GET_ITEM(cur, i);
            Py_INCREF(item);
            return item;
        }
        return cc_items_slow(self);
    }
    static void cc_items_install(PyTypeObject* t, Py_ssize_t cur_off, Py_ssize_t i_off) {
        cc_items_cur_off = cur_off;
        cc_items_i_off = i_off;
        cc_items_slow = t->tp_iternext;
        t->tp_iternext = cc_items_next;
    }
    """
    void cc_items_install(PyTypeObject* t, Py_ssize_t cur_off, Py_ssize_t i_off)


cdef _install_items_next():
    cdef Items probe = Items(iter(()))
    cdef Py_ssize_t off, cur_off = -1, i_off = -1
    cdef Py_ssize_t size = Items.__basicsize__
    marker = []
    probe._cur = marker
    probe._i = 0x5A5A5A5A
    off = <Py_ssize_t>sizeof(PyObject)
    while off + <Py_ssize_t>sizeof(PyObject*) <= size:
        if (<PyObject**>((<char*><PyObject*>probe) + off))[0] == <PyObject*>marker:
            cur_off = off
        if (<Py_ssize_t*>((<char*><PyObject*>probe) + off))[0] == 0x5A5A5A5A:
            i_off = off
        off += <Py_ssize_t>sizeof(PyObject*)
    if cur_off < 0 or i_off < 0:
        raise ImportError("couchcore_ext._row: unexpected layout of Items")
    cc_items_install(<PyTypeObject*>Items, cur_off, i_off)


_install_items_next()
