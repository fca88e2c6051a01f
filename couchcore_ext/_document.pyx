# cython: language_level=3, auto_pickle=False, annotation_typing=False, embedsignature=True, always_allow_keywords=True
"""``couchcore.models.Document`` as an extension type.

When this module is built, ``couchcore.models.Document`` *is* :class:`Document` below;
otherwise (or with ``COUCHCORE_ROWS_BACKEND=python``) it is the pure-Python class in
``couchcore/models.py`` (also kept as ``models._PyDocument``).  The two behave the same
(tests/unit/test_document_class.py runs one set of checks on both): a ``dict`` subclass,
constructed as ``dict`` is; ``doc.name`` reads ``doc["name"]`` when no attribute of that
name exists (``AttributeError`` when the key is missing too), ``doc.name = v`` and
``del doc.name`` write and delete items; the same ``repr``; ``copy()`` gives a
``Document``; no ``__dict__`` and no weak references; ``__slots__`` is ``()``; pickling and
``copy`` name ``couchcore.models.Document`` (the same pickle bytes); subclassing from Python.

Why: a dict subclass defined in Python reads ``doc[key]`` through a generic slot that
looks ``__getitem__`` up and calls it as a method (CPython gives a heap subclass of
``dict`` no direct ``mp_subscript``, because ``dict.__getitem__`` is a method, not a slot
wrapper): about 240 machine instructions per subscript, against about 40 for a ``dict``.
A static extension type inherits ``dict``'s C slots as they are, and its instances are
freed without ``subtype_dealloc``.  Every ``include_docs`` row, change and ``_find``
result is a Document.

Known differences, outside the documented interface: assigning ``doc.__class__`` is
refused (an extension type is immutable); ``Document.__getattr__`` and friends are slot
wrappers, not functions; CPython's own error messages name the type
``couchcore.models.Document``; ``object.__setattr__(doc, name, v)`` on an instance of a user's
subclass is refused (CPython will not skip a C-level ``__setattr__``): set such an instance
attribute through ``doc.__dict__[name] = v``, which works on both classes.
"""

from copyreg import _reconstructor

from cpython.object cimport PyObject_DelItem, PyObject_GetItem, PyObject_SetItem, PyTypeObject
from cpython.type cimport PyType_Modified


cdef class Document(dict):
    """A CouchDB document: an insertion-ordered ``dict`` with attribute access.

    ``doc.title`` reads ``doc["title"]``; ``doc._id`` and ``doc._rev`` work too.
    Missing attributes raise :class:`AttributeError`. A field named like a ``dict``
    method (``items``, ``keys``, ``values``, ``get``, ``copy``, ``update``, ``pop``, ...)
    is read as ``doc["items"]``: ``doc.items`` is the method, and ``doc.items = [...]``
    sets the field while ``doc.items`` stays the method.
    """

    __slots__ = ()

    def __getattr__(self, name):
        # called only when the ordinary lookup failed (as a Python class's __getattr__)
        try:
            return PyObject_GetItem(self, name)
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        PyObject_SetItem(self, name, value)

    def __delattr__(self, name):
        try:
            PyObject_DelItem(self, name)
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self):
        return f"Document({dict.__repr__(self)})"

    def copy(self):
        """A shallow copy, still a :class:`Document`."""
        return Document(self)

    def __reduce_ex__(self, protocol):
        # Protocols 0 and 1 reduce through copyreg._reduce_ex, which takes the first non-heap
        # type of the MRO as the base to rebuild from: this static type itself, which it then
        # refuses ("cannot pickle 'Document' object"). The pure-Python class's base is dict, so
        # reduce as copyreg does with base dict: the same pickle bytes as that class (and the
        # same for a user's subclass of either). Protocol 2+ and a __reduce__ of a subclass:
        # object's own reduction.
        if protocol >= 2 or type(self).__reduce__ is not object.__reduce__:
            return object.__reduce_ex__(self, protocol)
        cls = type(self)
        args = (cls, dict, dict(self))
        try:
            getstate = self.__getstate__
        except AttributeError:
            if getattr(self, "__slots__", None):
                raise TypeError(f"cannot pickle {cls.__name__!r} object: a class that defines "
                                f"__slots__ without defining __getstate__ cannot be pickled "
                                f"with protocol {protocol}") from None
            try:
                state = self.__dict__
            except AttributeError:
                state = None
        else:
            if getattr(cls, "__getstate__", None) is getattr(object, "__getstate__", 0) \
                    and getattr(self, "__slots__", None):
                raise TypeError("a class that defines __slots__ without defining __getstate__ "
                                "cannot be pickled")
            state = getstate()
        if state:
            return _reconstructor, args, state
        return _reconstructor, args


# Named where users find it (couchcore.models.Document): an extension type's __module__ and
# __qualname__ come from tp_name, and pickle records them, so a pickle made with this type
# loads where only the pure-Python class exists, and the other way round.
(<PyTypeObject*>Document).tp_name = b"couchcore.models.Document"
# dict's own tp_new (Cython's adds nothing here: no C fields): protocol 0/1 pickles rebuild with
# copyreg._reconstructor, i.e. dict.__new__(Document), which CPython refuses ("not safe") when
# the nearest static type's tp_new is not dict's; pickles of the pure-Python class need it too.
(<PyTypeObject*>Document).tp_new = (<PyTypeObject*>dict).tp_new
PyType_Modified(Document)
# Freed by dict's own tp_dealloc.  Cython's tp_dealloc for this type (which adds nothing: no C
# fields, no __dealloc__, no weak references) untracks the object, opens a trashcan, tracks it
# again and calls dict's tp_dealloc, which untracks it and opens a trashcan once more (~130
# instructions per Document, callgrind); dict_dealloc does all a Document needs by itself and
# frees a non-exact dict with tp_free (PyObject_GC_Del), never into the dict free list.  A
# static type that defines no tp_dealloc inherits dict's in the same way; a Python subclass
# still goes through subtype_dealloc, which calls this one.
(<PyTypeObject*>Document).tp_dealloc = (<PyTypeObject*>dict).tp_dealloc


def _dealloc_is_dicts():
    """True when Document instances are freed by dict's own tp_dealloc (for the tests)."""
    return (<PyTypeObject*>Document).tp_dealloc == (<PyTypeObject*>dict).tp_dealloc
