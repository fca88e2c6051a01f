# The C layout of couchcore.models.Row as an extension type (see _row.pyx): the row parser
# (_rows.pyx) cimports it to allocate rows through the type's free list and fill the five
# fields directly.  The member-descriptor structs are declared here once for both modules:
# _row.pyx installs the five attributes as T_OBJECT_EX members, and _rows.pyx reads a
# member descriptor's offset to fill the pure-Python class's __slots__ the same way.

cdef extern from "structmember.h":
    ctypedef struct PyMemberDef:
        const char* name
        int type
        Py_ssize_t offset
        int flags
        const char* doc
    int T_OBJECT_EX
    int READONLY

cdef extern from "Python.h":
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member


cdef class Row:
    cdef object f_id
    cdef object f_key
    cdef object f_value
    cdef object f_doc
    cdef object f_error
