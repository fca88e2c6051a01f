# The C layout of couchcore.models.Row as an extension type (see _row.pyx): the row parser
# (_rows.pyx) cimports it to allocate rows through the type's free list and fill the five
# fields directly.
cdef class Row:
    cdef object f_id
    cdef object f_key
    cdef object f_value
    cdef object f_doc
    cdef object f_error
