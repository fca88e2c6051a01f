# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, embedsignature=True
"""The codec's output/input check (C speed); twin of :func:`couchcore.codec._json_flags_py`.

:func:`json_flags` reads JSON text once and says, with bit flags, what
:mod:`couchcore.codec` must look at more closely before it trusts orjson:

* ``NULL`` (1): a ``null`` literal outside strings (orjson writes NaN and ±Infinity as
  ``null``, so the document is then checked for them);
* ``FLOAT`` (2): a number outside strings that orjson may format unlike Python's
  ``repr`` (``0.0000...`` or an exponent ``e-D`` of one digit: the same test as
  ``couchcore.codec._float_format_differs``, on the number alone);
* ``LONG_INT`` (4): a number outside strings whose integer part has 19 or more digits
  (an integer orjson may not read exactly).

Text inside strings is skipped (a string holding ``"null"`` or a long run of digits, a
revision hash, sets no flag), which is what makes it both faster and more precise than
searching the bytes. It never reads outside ``data``; text that is not well-formed
(an unterminated string, say) gets every flag, so the caller takes its careful path.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memchr

cdef enum:
    NULL_LITERAL = 1
    FLOAT = 2
    LONG_INT = 4
    ALL = 7


cdef inline bint _digit(unsigned char c) nogil:
    return c >= 48 and c <= 57


cdef int _number(const unsigned char* p, Py_ssize_t start, Py_ssize_t end) nogil:
    """The flags of the number token p[start:end]."""
    cdef int flags = 0
    cdef Py_ssize_t k = start
    cdef Py_ssize_t run = 0
    if p[k] == 45:  # -
        k += 1
    while k < end and _digit(p[k]):
        k += 1
        run += 1
    if run >= 19:
        flags |= LONG_INT
    for k in range(start, end):
        if p[k] == 46:  # "0.0000"
            if k > start and p[k - 1] == 48 and k + 4 < end and p[k + 1] == 48 and p[k + 2] == 48 \
                    and p[k + 3] == 48 and p[k + 4] == 48:
                flags |= FLOAT
        elif p[k] == 101:  # "e-D" with D the last character
            if k + 3 == end and p[k + 1] == 45 and _digit(p[k + 2]):
                flags |= FLOAT
    return flags


def json_flags(bytes data not None, int mask=7) -> int:
    """The flags (NULL 1, FLOAT 2, LONG_INT 4) of the JSON text ``data``; see the module.
    ``mask`` (the flags the caller wants) is accepted for the twin's sake: one pass finds
    them all."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t i = 0, j, k, start
    cdef int flags = 0
    cdef unsigned char c
    cdef const unsigned char* q
    while i < n:
        c = p[i]
        if c == 34:  # a string: skip to its closing quote
            i += 1
            while True:
                q = <const unsigned char*>memchr(p + i, 34, n - i)
                if q == NULL:
                    return ALL  # unterminated: not JSON
                j = q - p
                k = j
                while k > i and p[k - 1] == 92:  # backslashes before the quote
                    k -= 1
                i = j + 1
                if (j - k) % 2 == 0:
                    break
        elif c == 110:  # n: null
            flags |= NULL_LITERAL
            i += 1
        elif c == 45 or _digit(c):
            start = i
            i += 1
            while i < n:
                c = p[i]
                if _digit(c) or c == 46 or c == 101 or c == 69 or c == 43 or c == 45:
                    i += 1
                else:
                    break
            flags |= _number(p, start, i)
        else:
            i += 1
    return flags


from cpython.dict cimport PyDict_Next
from cpython.object cimport PyObject


def all_keys_str(obj) -> bool:
    """``True`` when every dict inside ``obj`` (dicts, lists and tuples, walked without
    recursion) has only ``str`` keys and nothing else than JSON's own types is met (str,
    int, float, bool, None): then no two keys can become one string. ``False`` means "look
    closer" (:func:`couchcore.codec._key_clash` decides): a non-str key, a dict, list or
    tuple subclass, or any other object (an Enum, a Decimal, ...)."""
    cdef list stack = [obj]
    cdef object o
    cdef type cls
    cdef Py_ssize_t pos
    cdef PyObject* key
    cdef PyObject* value
    cdef type vcls
    while stack:
        o = stack.pop()
        cls = type(o)
        if cls is dict:
            pos = 0
            while PyDict_Next(o, &pos, &key, &value):
                if type(<object>key) is not str:
                    return False
                vcls = type(<object>value)
                if vcls is str or vcls is int or vcls is float or vcls is bool or <object>value is None:
                    continue
                stack.append(<object>value)
        elif cls is list or cls is tuple:
            for v in o:
                vcls = type(v)
                if vcls is str or vcls is int or vcls is float or vcls is bool or v is None:
                    continue
                stack.append(v)
        elif cls is str or cls is int or cls is float or cls is bool or o is None:
            continue
        else:
            return False
    return True
