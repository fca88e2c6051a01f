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
``couchcore.models.Document``.
"""

from cpython.object cimport PyObject_DelItem, PyObject_GetItem, PyObject_SetItem, PyTypeObject


cdef class Document(dict):
    """A CouchDB document: an insertion-ordered ``dict`` with attribute access.

    ``doc.title`` reads ``doc["title"]``; ``doc._id`` and ``doc._rev`` work too.
    Missing attributes raise :class:`AttributeError`.
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


# Named where users find it (couchcore.models.Document): an extension type's __module__ and
# __qualname__ come from tp_name, and pickle records them, so a pickle made with this type
# loads where only the pure-Python class exists, and the other way round.
(<PyTypeObject*>Document).tp_name = b"couchcore.models.Document"
