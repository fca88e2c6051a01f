# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, embedsignature=True
"""HTTP/1.1 ``Transfer-Encoding: chunked`` decoding at C speed; twin of
:class:`couchcore.transport.urllib3.PyDechunker` (same pieces, same errors, tested on both).

The urllib3 backend reads a chunked body from the socket in large reads into one reused
buffer and passes each read to :meth:`Dechunker.feed`, which returns the payload bytes of
that read as ``bytes`` objects of exactly :data:`PIECE_SIZE` bytes (the last one of each
call shorter): the row parser is fastest on pieces of a few kB. No Python work per HTTP
chunk (CouchDB sends ~1.5 kB chunks).

Framing accepted (RFC 9112 section 7.1): a size line is optional SP/HTAB, hex digits
(leading zeros, then at most 16 significant ones), optional SP/HTAB, optionally ``;`` and chunk extensions (ignored), then CRLF; the
payload is followed by CRLF; the last chunk (size 0) is followed by trailer field lines
(ignored) and an empty line. A size or trailer line longer than :data:`MAX_LINE` bytes is
refused. Input that breaks these rules is reported as soon as the offending byte is seen:
:meth:`~Dechunker.feed` returns the payload before it and sets :attr:`~Dechunker.error`;
a later ``feed`` raises ``ValueError``.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

cdef extern from "Python.h":
    # raw forms: the piece being filled is a bytes object this module owns alone until it is
    # handed over, so a short last piece can be shrunk in place (_PyBytes_Resize needs that)
    PyObject* _new_bytes "PyBytes_FromStringAndSize"(const char* v, Py_ssize_t size) except NULL
    char* _bytes_buf "PyBytes_AS_STRING"(PyObject* b)
    int _PyBytes_Resize(PyObject** b, Py_ssize_t newsize) except -1

cdef enum:
    _PIECE = 8192
    _MAX_LINE = 65536
    _MAX_DIGITS = 16

#: payload bytes per piece handed over (the last piece of each feed may be shorter)
PIECE_SIZE = _PIECE
#: longest size line or trailer line accepted, in bytes without its CRLF
MAX_LINE = _MAX_LINE

cdef enum State:
    S_LEAD        # size line: SP/HTAB before the digits
    S_DIGITS      # size line: hex digits
    S_AFTER       # size line: SP/HTAB after the digits
    S_EXT         # size line: after ';' (extensions, ignored)
    S_EXT_CR      # size line: a CR in the extensions
    S_SIZE_LF     # size line: CR seen before any ';': LF must follow
    S_DATA        # payload
    S_DATA_CR     # the CR after the payload
    S_DATA_LF     # the LF after the payload
    S_TR_START    # the start of a trailer line (or of the empty line that ends the body)
    S_TR_FIRST_CR # a trailer line began with CR
    S_TR_LINE     # inside a trailer field line
    S_TR_CR       # a CR inside a trailer field line
    S_DONE        # the body is complete


cdef inline int _hexval(unsigned char c):
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


cdef class Dechunker:
    """Decodes one chunked body, fed in pieces of any size; see the module docstring."""

    cdef State _state
    cdef uint64_t _left       # payload bytes left in the current chunk / the size being read
    cdef int _digits          # hex digits read on the current size line
    cdef Py_ssize_t _line     # bytes of the current size/trailer line seen (its CRLF included)
    cdef object _error        # str once the framing broke

    def __cinit__(self):
        self._state = S_LEAD
        self._left = 0
        self._digits = 0
        self._line = 0
        self._error = None

    @property
    def done(self):
        """``True`` once the last chunk and the trailer section have been read (what
        follows them in a fed buffer is ignored)."""
        return self._state == S_DONE and self._error is None

    @property
    def error(self):
        """``None``, or what was wrong with the framing (``str``)."""
        return self._error

    def feed(self, data, Py_ssize_t n=-1):
        """Decode the first ``n`` bytes of ``data`` (a bytes-like object; all of it when
        ``n`` is negative); returns their payload as a list of ``bytes`` (``[]`` when none).

        ``data`` is not kept: the caller may reuse its buffer. Raises ``ValueError`` when a
        previous call found broken framing (see :attr:`error`)."""
        cdef Py_buffer view
        if self._error is not None:
            raise ValueError(self._error)
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            if n < 0 or n > view.len:
                n = view.len
            return self._run(<const unsigned char*>view.buf, n)
        finally:
            PyBuffer_Release(&view)

    cdef list _run(self, const unsigned char* p, Py_ssize_t n):
        cdef list out = []
        cdef PyObject* cur = NULL   # the piece being filled: a new bytes of _PIECE bytes, owned here
        cdef Py_ssize_t cur_len = 0
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t take
        cdef unsigned char c
        cdef int h
        cdef State st = self._state
        try:
            while pos < n:
                if st == S_DATA:
                    if cur == NULL:
                        cur = _new_bytes(NULL, _PIECE)
                        cur_len = 0
                    take = n - pos
                    if <uint64_t>take > self._left:
                        take = <Py_ssize_t>self._left
                    if take > _PIECE - cur_len:
                        take = _PIECE - cur_len
                    memcpy(_bytes_buf(cur) + cur_len, p + pos, take)
                    cur_len += take
                    pos += take
                    self._left -= <uint64_t>take
                    if cur_len == _PIECE:
                        out.append(<object>cur)
                        Py_DECREF(<object>cur)
                        cur = NULL
                    if self._left == 0:
                        st = S_DATA_CR
                    continue
                c = p[pos]
                pos += 1
                if st == S_DATA_CR:
                    if c != 13:
                        self._fail("chunk not followed by CRLF")
                        break
                    st = S_DATA_LF
                elif st == S_DATA_LF:
                    if c != 10:
                        self._fail("chunk not followed by CRLF")
                        break
                    st = S_LEAD
                    self._line = 0
                    self._digits = 0
                    self._left = 0
                elif st == S_DONE:
                    break
                else:
                    self._line += 1  # bytes of the line with its CR and LF
                    if self._line > _MAX_LINE + 2:
                        self._fail("chunk size or trailer line too long")
                        break
                    if st == S_LEAD:
                        h = _hexval(c)
                        if h >= 0:
                            self._left = <uint64_t>h
                            self._digits = 1
                            st = S_DIGITS
                        elif c != 32 and c != 9:
                            self._fail("invalid chunk size line")
                            break
                    elif st == S_DIGITS:
                        h = _hexval(c)
                        if h >= 0:
                            # 16 significant digits at most (64 bits); leading zeros are
                            # free (chunk-size = 1*HEXDIG, RFC 9112 section 7.1)
                            if self._left >> 60:
                                self._fail("invalid chunk size line")
                                break
                            self._left = (self._left << 4) | <uint64_t>h
                            self._digits += 1
                        elif c == 32 or c == 9:
                            st = S_AFTER
                        elif c == 59:  # ';'
                            st = S_EXT
                        elif c == 13:
                            st = S_SIZE_LF
                        else:
                            self._fail("invalid chunk size line")
                            break
                    elif st == S_AFTER:
                        if c == 59:
                            st = S_EXT
                        elif c == 13:
                            st = S_SIZE_LF
                        elif c != 32 and c != 9:
                            self._fail("invalid chunk size line")
                            break
                    elif st == S_EXT:
                        if c == 13:
                            st = S_EXT_CR
                    elif st == S_EXT_CR:
                        if c == 10:
                            st = self._size_done()
                        elif c != 13:
                            st = S_EXT
                    elif st == S_SIZE_LF:
                        if c != 10:
                            self._fail("invalid chunk size line")
                            break
                        st = self._size_done()
                    elif st == S_TR_START:
                        st = S_TR_FIRST_CR if c == 13 else S_TR_LINE
                    elif st == S_TR_FIRST_CR:
                        if c == 10:
                            st = S_DONE
                            break
                        st = S_TR_CR if c == 13 else S_TR_LINE
                    elif st == S_TR_LINE:
                        if c == 13:
                            st = S_TR_CR
                    elif st == S_TR_CR:
                        if c == 10:
                            st = S_TR_START
                            self._line = 0
                        elif c != 13:
                            st = S_TR_LINE
            if self._error is None:
                self._state = st
            if cur != NULL:
                if cur_len:
                    if cur_len < _PIECE:
                        _PyBytes_Resize(&cur, cur_len)  # frees it and sets NULL on failure
                    out.append(<object>cur)
                Py_DECREF(<object>cur)
                cur = NULL
            return out
        finally:
            if cur != NULL:  # an exception (MemoryError) on the way
                Py_DECREF(<object>cur)

    cdef State _size_done(self):
        """A size line ended: the chunk's payload next, or the trailer section."""
        self._line = 0
        if self._left == 0:
            return S_TR_START
        return S_DATA

    cdef _fail(self, str message):
        self._error = message
        self._state = S_DONE
