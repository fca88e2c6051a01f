# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, embedsignature=True
"""The bulk loader's JSON Lines scanner (C speed); twin of :func:`couchcore._scan.scan_jsonl_py`.

:func:`scan_jsonl` walks whole lines of a read chunk in one call: for each line it
checks that the line is one valid JSON object (strict RFC 8259 grammar, UTF-8 validated
as strictly as CPython's codec, no NaN/Infinity, no control characters in strings) and
finds the object's *top-level* ``_id`` — members of nested objects do not count — without
building any Python value but the id. A line it *settles* becomes an entry of the
caller's ``ids``/``bodies``/``lines`` lists (its bytes are the body as they are; a
document without ``_id`` gets the loader's generated id spliced in after its ``{``).
It stops before the first line it does not settle -- input it cannot vouch for or that
needs a decision (malformed JSON, ``_id`` not a plain non-empty string, escapes in a
top-level key or in the id, a duplicate ``_id`` member, ``_load_error``, the
``id_field`` member, a ``_rev`` that is no string, a missing ``_rev`` when it is
needed, an id already in flight, nesting deeper than 512, a number of 4000+
characters) -- and the caller handles that line with its general (reference) path.
Settling is therefore conservative: a line settled here is settled the same way by the
reference parser (``couchcore.codec.document_head_decoder``).
"""

cimport cython
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memchr, memcpy, memcmp

from os import urandom

cdef enum:
    INLINE = 32      # keys up to this long are kept in the in-flight set's slots
    F_FLIGHT = 1     # a document's flag: its key is in the in-flight set
    MAX_DEPTH = 512
    MAX_NUMBER = 4000
    # line verdicts
    BLANK = 0
    OBJECT = 1
    SLOW = -1
    # what the parser expects next
    E_VALUE = 0
    E_VALUE_OR_CLOSE = 1
    E_KEY = 2
    E_KEY_OR_CLOSE = 3
    E_COLON = 4
    E_COMMA_OR_CLOSE = 5
    # the top-level member being read
    K_OTHER = 0
    K_ID = 1
    K_REV = 2


cdef struct Info:
    Py_ssize_t brace      # offset of the object's '{'
    Py_ssize_t empty_end  # offset of the '}' of an empty object, else -1
    Py_ssize_t id_start   # the _id string's contents (no escapes), when has_id
    Py_ssize_t id_len
    Py_ssize_t rev_start  # the _rev string's contents, when has_rev and not rev_escaped
    Py_ssize_t rev_len
    int has_id
    int has_rev
    int rev_escaped


# the class of each byte inside a string: 0 plain ASCII, 1 anything needing a look
cdef unsigned char STR_CLASS[256]
# JSON whitespace within a line (a newline ends the line: a record never spans two): 1
cdef unsigned char WS[256]
cdef int _c
for _c in range(256):
    STR_CLASS[_c] = 1 if (_c < 32 or _c == 34 or _c == 92 or _c >= 128) else 0
    WS[_c] = 1 if (_c == 32 or _c == 13 or _c == 9) else 0


cdef extern from *:
    """
    #if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
    #include <emmintrin.h>
    #define CC_SCAN_SSE2 1
    #if defined(_MSC_VER)
    #include <intrin.h>
    static __inline int cc_ctz(unsigned int m) { unsigned long r; _BitScanForward(&r, m); return (int)r; }
    #else
    #define cc_ctz(m) __builtin_ctz(m)
    #endif
    #endif

    /* The offset of the first byte at or after s[i] (i <= n) whose class in `cls` is not 0
       (inside a JSON string: a control character, a quote, a backslash or a non-ASCII byte), or n:
       16 bytes at a time with SSE2 while 16 are left (one signed compare with 0x20 finds
       both the control characters and the bytes >= 0x80), the table for the rest. */
    static CYTHON_INLINE Py_ssize_t cc_scan_plain(const unsigned char *s, Py_ssize_t i, Py_ssize_t n,
                                                  const unsigned char *cls) {
    #ifdef CC_SCAN_SSE2
        const __m128i quote = _mm_set1_epi8(0x22), bslash = _mm_set1_epi8(0x5C), space = _mm_set1_epi8(0x20);
        while (i + 16 <= n) {
            __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
            int m = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                                   _mm_cmplt_epi8(v, space)));
            if (m)
                return i + cc_ctz((unsigned int)m);
            i += 16;
        }
    #endif
        while (i < n && !cls[s[i]])  /* (cls[0] is not 0 either: the bound is for other callers) */
            i++;
        return i;
    }

    /* The offset of the first '"' at or after s[i] (i <= n), or n (memchr without the call). */
    static CYTHON_INLINE Py_ssize_t cc_scan_quote(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) {
    #ifdef CC_SCAN_SSE2
        const __m128i quote = _mm_set1_epi8(0x22);
        while (i + 16 <= n) {
            int m = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(s + i)), quote));
            if (m)
                return i + cc_ctz((unsigned int)m);
            i += 16;
        }
    #endif
        while (i < n && s[i] != 0x22)
            i++;
        return i;
    }

    /* count_ok's walk: the quotes of s[:n] followed by 'o' or 'e' in order (16 bytes at a time
       with SSE2: the block's mask of such pairs, from the block and the block one byte on, then
       each set bit; an answer has ~8 quotes per document and 1 such pair), skipping those
       inside a counted "ok":true. */
    static const char cc_ok_text[9] = {0x22, 'o', 'k', 0x22, ':', 't', 'r', 'u', 'e'};
    static const char cc_error_text[7] = {0x22, 'e', 'r', 'r', 'o', 'r', 0x22};
    static Py_ssize_t cc_count_ok(const char *s, Py_ssize_t n, int *error) {
        Py_ssize_t i = 0, next = 0, count = 0, q;
        *error = 0;
    #ifdef CC_SCAN_SSE2
        const __m128i quote = _mm_set1_epi8(0x22), o = _mm_set1_epi8('o'), e = _mm_set1_epi8('e');
        for (; i + 16 <= n; i += 16) {
            /* (the block one byte on ends at s[i + 16] <= s[n]: readable, a bytes object's NUL) */
            __m128i next_bytes = _mm_loadu_si128((const __m128i *)(s + i + 1));
            unsigned int m = (unsigned int)_mm_movemask_epi8(_mm_and_si128(
                _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(s + i)), quote),
                _mm_or_si128(_mm_cmpeq_epi8(next_bytes, o), _mm_cmpeq_epi8(next_bytes, e))));
            while (m) {
                q = i + cc_ctz(m);
                m &= m - 1;
                if (q < next)
                    continue;
                if (q + 9 <= n && memcmp(s + q, cc_ok_text, 9) == 0) {
                    count++;
                    next = q + 9;
                } else if (q + 7 <= n && memcmp(s + q, cc_error_text, 7) == 0) {
                    *error = 1;
                    return count;
                }
            }
        }
    #endif
        for (q = i > next ? i : next; q < n; q++) {
            if (s[q] != 0x22)
                continue;
            if (q + 9 <= n && memcmp(s + q, cc_ok_text, 9) == 0) {
                count++;
                q += 8;
            } else if (q + 7 <= n && memcmp(s + q, cc_error_text, 7) == 0) {
                *error = 1;
                return count;
            }
        }
        return count;
    }

    /* a[:n] == b[:n] for the in-flight set's keys: a typical id (8 to 16 bytes) is two 8-byte
       words (overlapping), no call of memcmp */
    static CYTHON_INLINE int cc_keq(const char *a, const char *b, Py_ssize_t n) {
        uint64_t x, y, x2, y2;
        if (n >= 8 && n <= 16) {
            memcpy(&x, a, 8); memcpy(&y, b, 8);
            memcpy(&x2, a + n - 8, 8); memcpy(&y2, b + n - 8, 8);
            return ((x ^ y) | (x2 ^ y2)) == 0;
        }
        return memcmp(a, b, (size_t)n) == 0;
    }

    /* dst[:n] = src[:n] for a key of up to 32 bytes (an entry's inline room): fixed-size
       overlapping copies, no call of memcpy */
    static CYTHON_INLINE void cc_kcopy(char *dst, const char *src, Py_ssize_t n) {
        uint64_t w1, w2, w3, w4;
        if (n >= 16) {
            memcpy(&w1, src, 8); memcpy(&w2, src + 8, 8);
            memcpy(&w3, src + n - 16, 8); memcpy(&w4, src + n - 8, 8);
            memcpy(dst, &w1, 8); memcpy(dst + 8, &w2, 8);
            memcpy(dst + n - 16, &w3, 8); memcpy(dst + n - 8, &w4, 8);
        } else if (n >= 8) {
            memcpy(&w1, src, 8); memcpy(&w2, src + n - 8, 8);
            memcpy(dst, &w1, 8); memcpy(dst + n - 8, &w2, 8);
        } else {
            while (n-- > 0)
                *dst++ = *src++;
        }
    }

    /* *slot (a bytes object we hold a reference to) made `size` bytes long, its first `keep`
       bytes kept: resized in place (realloc) when that reference is the only one, else
       replaced by a copy (a bytes object someone else sees never changes). -1 with an
       exception set on failure (*slot is then a valid bytes object still). */
    static int cc_body_resize(PyObject **slot, Py_ssize_t size, Py_ssize_t keep) {
        PyObject *b = *slot, *copy;
        if (Py_REFCNT(b) == 1 && PyBytes_CheckExact(b)) {
            if (_PyBytes_Resize(slot, size) == 0)
                return 0;
            *slot = PyBytes_FromStringAndSize(NULL, 0);  /* (b is gone: _PyBytes_Resize freed it) */
            return -1;
        }
        copy = PyBytes_FromStringAndSize(NULL, size);
        if (copy == NULL)
            return -1;
        if (keep > size)
            keep = size;
        memcpy(PyBytes_AS_STRING(copy), PyBytes_AS_STRING(b), (size_t)keep);
        Py_DECREF(b);
        *slot = copy;
        return 0;
    }
    """
    Py_ssize_t cc_scan_plain(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, const unsigned char* cls) noexcept nogil
    bint cc_keq(const char* a, const char* b, Py_ssize_t n) noexcept nogil
    void cc_kcopy(char* dst, const char* src, Py_ssize_t n) noexcept nogil
    Py_ssize_t cc_scan_quote(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil
    Py_ssize_t cc_count_ok(const char* s, Py_ssize_t n, int* error) noexcept nogil
    int cc_body_resize(PyObject** slot, Py_ssize_t size, Py_ssize_t keep) except -1


cdef inline Py_ssize_t _string(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, int* escaped) noexcept nogil:
    """``s[i]`` is just after an opening quote: the offset after the closing quote, or -1."""
    cdef unsigned char c, d
    cdef int k
    while True:
        i = cc_scan_plain(s, i, n, STR_CLASS)
        if i >= n:
            return -1
        c = s[i]
        if c == 34:  # "
            return i + 1
        if c == 92:  # backslash
            escaped[0] = 1
            if i + 1 >= n:
                return -1
            d = s[i + 1]
            if d == 117:  # u: four hex digits
                if i + 6 > n:
                    return -1
                for k in range(2, 6):
                    d = s[i + k]
                    if not ((48 <= d <= 57) or (65 <= d <= 70) or (97 <= d <= 102)):
                        return -1
                i += 6
            elif d == 34 or d == 92 or d == 47 or d == 98 or d == 102 or d == 110 or d == 114 or d == 116:
                i += 2
            else:
                return -1
        elif c < 128:  # a control character
            return -1
        elif 0xC2 <= c <= 0xDF:
            if i + 1 >= n or (s[i + 1] & 0xC0) != 0x80:
                return -1
            i += 2
        elif 0xE0 <= c <= 0xEF:
            if i + 2 >= n:
                return -1
            d = s[i + 1]
            if c == 0xE0:
                if not (0xA0 <= d <= 0xBF):
                    return -1
            elif c == 0xED:  # no UTF-8 encoded surrogates
                if not (0x80 <= d <= 0x9F):
                    return -1
            elif (d & 0xC0) != 0x80:
                return -1
            if (s[i + 2] & 0xC0) != 0x80:
                return -1
            i += 3
        elif 0xF0 <= c <= 0xF4:
            if i + 3 >= n:
                return -1
            d = s[i + 1]
            if c == 0xF0:
                if not (0x90 <= d <= 0xBF):
                    return -1
            elif c == 0xF4:
                if not (0x80 <= d <= 0x8F):
                    return -1
            elif (d & 0xC0) != 0x80:
                return -1
            if (s[i + 2] & 0xC0) != 0x80 or (s[i + 3] & 0xC0) != 0x80:
                return -1
            i += 4
        else:
            return -1


cdef inline Py_ssize_t _digits(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    while <unsigned char>(s[i] - 48) <= 9:  # (s[n] is NUL: the run ends there)
        i += 1
    return i


cdef inline Py_ssize_t _number(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """A JSON number starting at ``s[i]``: the offset after it, or -1 (``s[n]`` is NUL)."""
    cdef Py_ssize_t start = i
    if s[i] == 45:  # - (the caller saw a '-' or a digit at s[i])
        i += 1
    if s[i] == 48:  # 0
        i += 1
    elif <unsigned char>(s[i] - 49) <= 8:  # 1-9
        i = _digits(s, i + 1, n)
    else:
        return -1
    if s[i] == 46:  # .
        i += 1
        if <unsigned char>(s[i] - 48) > 9:
            return -1
        i = _digits(s, i + 1, n)
    if (s[i] | 32) == 101:  # e E
        i += 1
        if s[i] == 43 or s[i] == 45:
            i += 1
        if <unsigned char>(s[i] - 48) > 9:
            return -1
        i = _digits(s, i + 1, n)
    if i - start >= MAX_NUMBER:
        return -1
    return i


cdef int _line(const unsigned char* s, Py_ssize_t n, const unsigned char* idf, Py_ssize_t idf_len,
               Info* info, Py_ssize_t* line_end) noexcept nogil:
    """Check the line that begins at ``s`` (``s[:n]`` is the rest of the buffer): BLANK or
    OBJECT (``info`` filled; ``line_end``: the offset after its newline, or ``n`` when the
    buffer ends first: the caller decides whether the line is whole) or SLOW (``line_end``
    not set: the caller finds the line's end). The validation finds the newline itself: no
    separate search of each line for it.

    One pass, each token read where the grammar puts it: in an object a key, its colon and
    its value, then a comma or the close; in an array a value, then a comma or the close
    (no state variable dispatched on per token). ``s[n]`` must be readable and NUL (the end
    of a ``bytes`` object's buffer: CPython keeps a NUL after it): a NUL is no JSON token,
    so the walk stops there without comparing each offset with ``n`` first."""
    cdef char stack[MAX_DEPTH]
    cdef Py_ssize_t i = 0, j, key_start, klen
    cdef int depth, key, escaped
    cdef unsigned char c
    info.has_id = 0
    info.has_rev = 0
    info.rev_escaped = 0
    info.rev_start = 0
    info.rev_len = 0
    info.empty_end = -1
    info.brace = 0
    info.id_start = 0
    info.id_len = 0
    while WS[s[i]]:
        i += 1
    if i == n:
        line_end[0] = n
        return BLANK
    if s[i] == 10:
        line_end[0] = i + 1
        return BLANK
    if s[i] != 123:  # {
        return SLOW
    info.brace = i
    i += 1
    while WS[s[i]]:
        i += 1
    depth = 1
    stack[0] = 123
    key = K_OTHER
    if s[i] == 125:  # {}
        info.empty_end = i
        i += 1
        depth = 0
    while depth:
        # at the start of a member (in an object) or of an element (in an array)
        # (white space is skipped where the expected byte is not found: compact input, the common
        # case, pays one test per token, not a table lookup before it as well)
        if stack[depth - 1] == 123:
            if s[i] != 34:
                while WS[s[i]]:
                    i += 1
                if s[i] != 34:
                    return SLOW
            escaped = 0
            key_start = i + 1
            j = cc_scan_plain(s, key_start, n, STR_CLASS)  # the common key: plain ASCII, read here
            if s[j] == 34:  # (s[n] is NUL)
                j += 1
            else:
                j = _string(s, j, n, &escaped)
                if j < 0:
                    return SLOW
            if depth == 1:
                if escaped:  # "\u005fid" is "_id": the reference parser decides
                    return SLOW
                key = K_OTHER
                klen = j - key_start - 1
                if s[key_start] == 95:  # _
                    if klen == 3 and memcmp(s + key_start, b"_id", 3) == 0:
                        key = K_ID
                    elif klen == 4 and memcmp(s + key_start, b"_rev", 4) == 0:
                        key = K_REV
                    elif klen == 11 and memcmp(s + key_start, b"_load_error", 11) == 0:
                        return SLOW
                if key == K_OTHER and idf != NULL and klen == idf_len and memcmp(s + key_start, idf, idf_len) == 0:
                    return SLOW
            i = j
            if s[i] != 58:  # :
                while WS[s[i]]:
                    i += 1
                if s[i] != 58:
                    return SLOW
            i += 1
        # a value (in an object after its colon, in an array after '[' or a comma)
        while WS[s[i]]:
            i += 1
        c = s[i]
        if c == 34:  # "
            escaped = 0
            j = cc_scan_plain(s, i + 1, n, STR_CLASS)  # the common string: plain ASCII, read here
            if s[j] == 34:
                j += 1
            else:
                j = _string(s, j, n, &escaped)
                if j < 0:
                    return SLOW
            if depth == 1 and key != K_OTHER:
                if key == K_ID:
                    if escaped or j - i - 2 == 0 or info.has_id:
                        return SLOW
                    info.has_id = 1
                    info.id_start = i + 1
                    info.id_len = j - i - 2
                else:  # K_REV
                    if info.has_rev:  # two _rev members: the reference parser decides
                        return SLOW
                    info.has_rev = 1
                    info.rev_escaped = escaped
                    info.rev_start = i + 1
                    info.rev_len = j - i - 2
            i = j
        elif depth == 1 and key != K_OTHER:  # _id or _rev that is no string
            return SLOW
        elif c == 123 or c == 91:  # { [
            if depth >= MAX_DEPTH:
                return SLOW
            stack[depth] = c
            depth += 1
            i += 1
            while WS[s[i]]:
                i += 1
            if s[i] != c + 2:  # not empty: its first member or element
                continue
            depth -= 1  # {} or []
            i += 1
        elif c == 45 or <unsigned char>(c - 48) <= 9:
            i = _number(s, i, n)
            if i < 0:
                return SLOW
        elif c == 116:  # true
            if i + 4 > n or memcmp(s + i, b"true", 4) != 0:
                return SLOW
            i += 4
        elif c == 102:  # false
            if i + 5 > n or memcmp(s + i, b"false", 5) != 0:
                return SLOW
            i += 5
        elif c == 110:  # null
            if i + 4 > n or memcmp(s + i, b"null", 4) != 0:
                return SLOW
            i += 4
        else:
            return SLOW
        # after a value: a comma (then the next member or element) or the close of its container
        while True:
            c = s[i]
            if c == 44:  # , (the white space after it is skipped where the next member or element starts)
                i += 1
                break
            if c != stack[depth - 1] + 2:  # } for {, ] for [
                if WS[c]:
                    i += 1
                    while WS[s[i]]:
                        i += 1
                    continue
                return SLOW
            depth -= 1
            i += 1
            if depth == 0:
                break
    while WS[s[i]]:
        i += 1
    if i == n:
        line_end[0] = n
    elif s[i] == 10:
        line_end[0] = i + 1
    else:
        return SLOW
    return OBJECT


# -- the in-flight set ------------------------------------------------------------------------

cdef struct Mark:  # a document's marks in PackedBodies.marks (couchcore.protocol.bulk._MARK: "@qqii")
    long long line
    long long kend
    int idlen
    int flags


cdef struct Entry:     # a key in the set (a slot of the slab)
    long long line     # its line; for a free slot: the next free slot (-1: none)
    Py_ssize_t len     # -1 for a free slot
    int held
    char* ptr          # the key when longer than INLINE (malloc'd), else NULL
    char inl[INLINE]


cdef inline uint64_t _hash(const char* p, Py_ssize_t n, uint64_t seed) noexcept nogil:
    """A seeded 64-bit hash of ``p[:n]``, 8 bytes at a time."""
    cdef uint64_t h = seed ^ (<uint64_t>n * 0x9E3779B97F4A7C15ULL)
    cdef uint64_t w
    cdef Py_ssize_t k
    cdef bint long_key = n >= 8
    while n >= 8:
        memcpy(&w, p, 8)
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL
        h ^= h >> 31
        p += 8
        n -= 8
    if n > 0:
        if long_key:  # the last 8 bytes (overlapping the word before): no variable-length copy
            memcpy(&w, p + n - 8, 8)
        else:
            w = 0
            for k in range(n):
                w = (w << 8) | <unsigned char>p[k]
        h = (h ^ w) * 0x94D049BB133111EBULL
        h ^= h >> 29
    h ^= h >> 32
    h *= 0xD6E8FEB86659FD93ULL
    h ^= h >> 32
    return h


cdef inline const char* _ekey(Entry* e) noexcept nogil:
    return e.ptr if e.ptr != NULL else e.inl


@cython.final  # (its methods are called directly, some inlined: no vtable; couchcore._scan is private)
cdef class Flight:
    """The keys of the documents in flight (sent or about to be, not settled yet), each with
    its input line: how the loader finds a duplicate ``_id`` (or ``(_id, _rev)``) in one
    input without a Python object per document. A key is ``bytes`` (see
    :class:`couchcore.protocol.bulk.PackedBodies`); a *held* key has later duplicates
    waiting for it to settle. Twin of :class:`couchcore._scan.FlightPy`.

    Compact, as CPython's dict: an index of 8-byte slots (the low 32 bits of the hash, which
    give its home slot, and the slab slot + 1; open addressing, linear probing, at most half full, a removed key's slot
    filled by shifting the rest of its cluster back) and a slab of entries (key, line)
    reused through a free list; a few thousand keys in flight take ~100 KB of index, so a
    lookup stays in cache."""

    cdef uint64_t* index
    cdef Py_ssize_t cap
    cdef Entry* slab
    cdef Py_ssize_t slab_cap
    cdef Py_ssize_t free_head
    cdef Py_ssize_t live
    cdef uint64_t seed

    def __cinit__(self):
        self.cap = 1024
        self.index = <uint64_t*>calloc(self.cap, sizeof(uint64_t))
        self.slab_cap = 0
        self.slab = NULL
        self.free_head = -1
        if self.index == NULL:
            raise MemoryError()
        self.seed = <uint64_t>int.from_bytes(urandom(8), "little")

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.slab != NULL:
            for i in range(self.slab_cap):
                if self.slab[i].len >= 0 and self.slab[i].ptr != NULL:
                    free(self.slab[i].ptr)
            free(self.slab)
        if self.index != NULL:
            free(self.index)

    def __len__(self):
        return self.live

    cdef inline Py_ssize_t _find(self, const char* p, Py_ssize_t n, uint64_t h) noexcept:
        """The index position of key ``p[:n]`` (hash ``h``), or -1."""
        cdef Py_ssize_t mask = self.cap - 1
        cdef Py_ssize_t i = <Py_ssize_t>(h & <uint64_t>mask)
        cdef uint64_t tag = (h & 0xFFFFFFFFULL) << 32
        cdef uint64_t v
        cdef Entry* e
        while True:
            v = self.index[i]
            if v == 0:
                return -1
            if (v & 0xFFFFFFFF00000000ULL) == tag:
                e = &self.slab[<Py_ssize_t>(v & 0xFFFFFFFFULL) - 1]
                if e.len == n and cc_keq(_ekey(e), p, n):
                    return i
            i = (i + 1) & mask

    cdef inline Entry* _at(self, Py_ssize_t i) noexcept:
        return &self.slab[<Py_ssize_t>(self.index[i] & 0xFFFFFFFFULL) - 1]

    cdef int _grow(self) except -1:
        """A twice larger index, the same slab."""
        cdef Py_ssize_t cap = self.cap * 2, i, j, mask = cap - 1
        cdef uint64_t* index
        if cap > 0xFFFFFFFF:  # (a slot's home is the low 32 bits of its hash, kept in the index)
            raise MemoryError("too many keys in flight")
        index = <uint64_t*>calloc(cap, sizeof(uint64_t))
        if index == NULL:
            raise MemoryError()
        for i in range(self.cap):
            if self.index[i] != 0:
                j = <Py_ssize_t>((self.index[i] >> 32) & <uint64_t>mask)
                while index[j] != 0:
                    j = (j + 1) & mask
                index[j] = self.index[i]
        free(self.index)
        self.index = index
        self.cap = cap
        return 0

    cdef Py_ssize_t _slot(self) except -1:
        """A free slab slot (the slab grows by doubling; entries are never pointed to)."""
        cdef Py_ssize_t i, cap
        cdef Entry* slab
        if self.free_head < 0:
            cap = max(256, 2 * self.slab_cap)
            if cap >= 0xFFFFFFFF:
                raise MemoryError("too many keys in flight")
            slab = <Entry*>realloc(self.slab, cap * sizeof(Entry))
            if slab == NULL:
                raise MemoryError()
            self.slab = slab
            for i in range(cap - 1, self.slab_cap - 1, -1):
                slab[i].len = -1
                slab[i].ptr = NULL
                slab[i].line = self.free_head
                self.free_head = i
            self.slab_cap = cap
        i = self.free_head
        self.free_head = <Py_ssize_t>self.slab[i].line
        return i

    cdef inline long long _add(self, const char* p, Py_ssize_t n, long long line) except -1:
        """Add key ``p[:n]`` with its ``line`` (>= 1): 0, or the line of the key already in it."""
        cdef uint64_t h = _hash(p, n, self.seed)
        cdef uint64_t tag = (h & 0xFFFFFFFFULL) << 32
        cdef Py_ssize_t mask, i, slot
        cdef uint64_t v
        cdef Entry* e
        if 2 * (self.live + 1) > self.cap:
            self._grow()
        mask = self.cap - 1
        i = <Py_ssize_t>(h & <uint64_t>mask)
        while True:
            v = self.index[i]
            if v == 0:
                break
            if (v & 0xFFFFFFFF00000000ULL) == tag:
                e = &self.slab[<Py_ssize_t>(v & 0xFFFFFFFFULL) - 1]
                if e.len == n and cc_keq(_ekey(e), p, n):
                    return e.line
            i = (i + 1) & mask
        if self.free_head >= 0:  # (the common case of _slot, here)
            slot = self.free_head
            self.free_head = <Py_ssize_t>self.slab[slot].line
        else:
            slot = self._slot()
        e = &self.slab[slot]
        if n > INLINE:
            e.ptr = <char*>malloc(n)
            if e.ptr == NULL:
                self.slab[slot].line = self.free_head
                self.free_head = slot
                raise MemoryError()
            memcpy(e.ptr, p, n)
        else:
            e.ptr = NULL
            cc_kcopy(e.inl, p, n)
        e.len = n
        e.line = line
        e.held = 0
        self.index[i] = tag | <uint64_t>(slot + 1)
        self.live += 1
        return 0

    cdef inline int _remove(self, const char* p, Py_ssize_t n, bint keep_held) except -1:
        """Remove key ``p[:n]`` (``KeyError`` if it is not in): 1, or 0 when it is held and
        ``keep_held`` (then it stays)."""
        cdef Py_ssize_t i = self._find(p, n, _hash(p, n, self.seed))
        cdef Py_ssize_t j, k, slot, mask = self.cap - 1
        cdef Entry* e
        if i < 0:
            raise KeyError(PyBytes_FromStringAndSize(p, n))
        slot = <Py_ssize_t>(self.index[i] & 0xFFFFFFFFULL) - 1
        e = &self.slab[slot]
        if keep_held and e.held:
            return 0
        if e.ptr != NULL:
            free(e.ptr)
            e.ptr = NULL
        e.len = -1
        e.line = self.free_head
        self.free_head = slot
        # backward-shift deletion: an index slot after the hole whose key may live there moves into it
        j = i
        while True:
            j = (j + 1) & mask
            if self.index[j] == 0:
                break
            k = <Py_ssize_t>((self.index[j] >> 32) & <uint64_t>mask)  # its home slot
            if (i < j and i < k <= j) or (i > j and (k > i or k <= j)):
                continue  # its home is after the hole: it stays
            self.index[i] = self.index[j]
            i = j
        self.index[i] = 0
        self.live -= 1
        return 1

    cdef Entry* _entry(self, bytes key) except NULL:
        cdef Py_ssize_t i = self._find(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key),
                                       _hash(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key), self.seed))
        if i < 0:
            raise KeyError(key)
        return self._at(i)

    def add(self, bytes key, long long line):
        """Add ``key`` with its input ``line`` (>= 1); returns 0, or -- the key is in flight
        already, and stays as it was -- the line it is in flight with."""
        if line < 1:
            raise ValueError("line must be positive")
        return self._add(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key), line)

    def get(self, bytes key):
        """The line ``key`` is in flight with, or 0."""
        cdef Py_ssize_t i = self._find(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key),
                                       _hash(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key), self.seed))
        return self._at(i).line if i >= 0 else 0

    def held(self, bytes key):
        """Whether ``key`` (in flight: else ``KeyError``) is held."""
        return bool(self._entry(key).held)

    def hold(self, bytes key):
        """Mark ``key`` (in flight: else ``KeyError``) as held: later duplicates wait for it."""
        self._entry(key).held = 1

    def release(self, bytes key, long long line, bint held):
        """``key`` (in flight: else ``KeyError``) now belongs to the document of ``line``,
        held or not."""
        cdef Entry* e = self._entry(key)
        e.line = line
        e.held = held

    def discard(self, bytes key):
        """Remove ``key`` (``KeyError`` if it is not in flight)."""
        self._remove(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key), False)

    def forget(self, object docs, object skip=None):
        """The documents of ``docs`` (a ``PackedBodies``) are settled, but those whose index
        is in ``skip`` (a set, or ``None``): remove their keys (documents whose key is in
        flight, flag 1), all in C. A held key stays; the list of the indices of such
        documents is returned (usually empty). A key not in flight raises ``KeyError``."""
        cdef bytearray marks = docs.marks
        cdef bytearray keys = docs.keys
        cdef Py_ssize_t count = docs.count, i
        cdef long long start = 0
        cdef list held = []
        cdef const Mark* m
        cdef const char* k
        if PyByteArray_GET_SIZE(marks) < count * <Py_ssize_t>sizeof(Mark):
            raise ValueError("the documents' marks are incomplete")
        for i in range(count):
            m = (<const Mark*>PyByteArray_AS_STRING(marks)) + i
            if m.flags & F_FLIGHT and (skip is None or i not in skip):
                k = PyByteArray_AS_STRING(keys)
                if not self._remove(k + start, m.kend - start, True):
                    held.append(i)
            start = m.kend
        return held


# -- the scanner ---------------------------------------------------------------------------------


@cython.final  # (its methods are called directly, and inlined: no vtable)
cdef class _Out:
    """Where settled documents go: the ``couchcore.protocol.bulk.PackedBodies`` ``docs``:
    its ``buf`` (a ``bytes`` object: the request body to be, see :func:`seal`) and its
    ``ends``, ``keys`` and ``marks`` bytearrays, grown by doubling (the reserve after ``used``
    / ``count`` / ``kused`` stays theirs), written back to it by :meth:`done`.

    While the documents are written ``docs.buf`` is ``None`` and the body is held here alone,
    so that it grows in place (``_PyBytes_Resize``: realloc); a body someone else holds a
    reference to (a request body handed out by :func:`seal`) is copied first, never changed."""
    cdef object packed
    cdef PyObject* body  # (an owned reference)
    cdef bint own        # body is ours alone: it may be written
    cdef bytearray ends
    cdef bytearray keys
    cdef bytearray marks
    cdef Py_ssize_t used
    cdef Py_ssize_t count
    cdef Py_ssize_t kused
    cdef Py_ssize_t hint
    cdef Py_ssize_t docs

    def __cinit__(self, object packed):
        cdef object buf = packed.buf
        cdef Py_ssize_t used = packed.used
        if type(buf) is not bytes:  # (a bytearray from the pure-Python path: the C path writes bytes)
            buf = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(buf), PyByteArray_GET_SIZE(buf))
        if packed.sealed is not None and packed.count:  # handed out as a request body: ',' again after the last
            buf = PyBytes_FromStringAndSize(PyBytes_AS_STRING(buf), used)  # (sealed: at least used long)
            PyBytes_AS_STRING(buf)[used - 1] = 44
        packed.sealed = None
        self.packed = packed
        self.body = <PyObject*>buf
        Py_INCREF(buf)
        self.own = False
        self.ends = packed.ends
        self.keys = packed.keys
        self.marks = packed.marks
        self.used = packed.used
        self.count = packed.count
        self.kused = packed.kused
        self.hint = packed.reserve
        self.docs = packed.docs
        packed.buf = None  # (last: nothing above raises after it; put back by done(), which every user calls)

    def __dealloc__(self):
        Py_XDECREF(self.body)

    cdef inline char* reserve(self, Py_ssize_t n) except NULL:
        """Room for ``n`` more bytes (and one more end offset and mark): the place to write
        them (growth by doubling, at least to the packed bodies' ``reserve``; not zeroed).
        The common case (room enough, the body ours) is decided here, inlined; the rest in
        :meth:`_grow_for`."""
        if (self.own and self.used + n <= PyBytes_GET_SIZE(<object>self.body)
                and 8 * (self.count + 1) <= PyByteArray_GET_SIZE(self.ends)):
            return PyBytes_AS_STRING(<object>self.body) + self.used
        return self._grow_for(n)

    cdef char* _grow_for(self, Py_ssize_t n) except NULL:
        """:meth:`reserve` when the body must grow or be made ours, or the offsets grow."""
        cdef Py_ssize_t size = PyBytes_GET_SIZE(<object>self.body)
        if self.used + n > size:
            cc_body_resize(&self.body, max(2 * size, self.used + n + 4096, self.hint), self.used)
            self.own = True
        elif not self.own:
            cc_body_resize(&self.body, size, self.used)  # (a copy unless it is ours alone)
            self.own = True
        size = PyByteArray_GET_SIZE(self.ends)
        if 8 * (self.count + 1) > size:
            PyByteArray_Resize(self.ends, max(2 * size, 8 * 64, 8 * self.docs))
            PyByteArray_Resize(self.marks, max(2 * PyByteArray_GET_SIZE(self.marks), <Py_ssize_t>sizeof(Mark) * 64,
                                               <Py_ssize_t>sizeof(Mark) * self.docs))
        return PyBytes_AS_STRING(<object>self.body) + self.used

    cdef inline char* reserve_key(self, Py_ssize_t n) except NULL:
        """Room for a key of ``n`` bytes after the keys: where to write it (not yet taken)."""
        cdef Py_ssize_t size = PyByteArray_GET_SIZE(self.keys)
        if self.kused + n > size:
            PyByteArray_Resize(self.keys, max(2 * size, self.kused + n + 1024, 32 * self.docs))
        return PyByteArray_AS_STRING(self.keys) + self.kused

    cdef inline void wrote(self, Py_ssize_t n, Py_ssize_t klen, int idlen, long long line, int flags) noexcept:
        """``n`` bytes of one document's text were written at :meth:`reserve`'s place and its
        key of ``klen`` bytes at :meth:`reserve_key`'s: end it, with its marks."""
        cdef long long end = self.used + n
        cdef Mark* m
        PyBytes_AS_STRING(<object>self.body)[end] = 44  # ,
        memcpy(PyByteArray_AS_STRING(self.ends) + 8 * self.count, &end, 8)
        self.used = end + 1
        self.kused += klen
        m = (<Mark*>PyByteArray_AS_STRING(self.marks)) + self.count
        m.line = line
        m.kend = self.kused
        m.idlen = idlen
        m.flags = flags
        self.count += 1

    cdef done(self):
        self.packed.buf = <object>self.body
        self.packed.used = self.used
        self.packed.count = self.count
        self.packed.kused = self.kused


def seal(object docs, bytes suffix):
    """The request body of ``docs`` (a ``couchcore.protocol.bulk.PackedBodies`` with at least
    one document): its ``buf`` itself, ``suffix`` written over the comma after the last
    document and cut to length -- no copy of the documents (the body grew in place as they
    were written). ``docs.buf`` is that body from then on (``docs.sealed`` the suffix): a
    document added later goes into a copy (the body handed out never changes)."""
    cdef _Out out = _Out(docs)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(suffix)
    cdef Py_ssize_t size
    if out.count == 0 or n == 0:
        out.done()
        raise ValueError("no documents to seal, or no suffix")
    try:
        out.used -= 1  # (the comma after the last document: the suffix goes there)
        memcpy(out.reserve(n), PyBytes_AS_STRING(suffix), n)
        size = out.used + n
        cc_body_resize(&out.body, size, size)  # cut to length (shrinking in place: realloc)
        out.used += 1
    finally:
        out.done()
    docs.sealed = suffix
    return docs.buf


def pack(object docs, list bodies, list keys, list lines, list idlens, list flags):
    """Append documents to ``docs`` (a ``couchcore.protocol.bulk.PackedBodies``) in C: body
    ``bodies[i]`` (``bytes``) with its marks ``keys[i]`` (``bytes``), ``lines[i]``,
    ``idlens[i]`` (-1: the whole key) and ``flags[i]`` -- what ``PackedBodies.extend`` does."""
    cdef _Out out
    cdef Py_ssize_t i, n = len(bodies), bl, kl, idl
    cdef bytes body, key
    if len(keys) != n or len(lines) != n or len(idlens) != n or len(flags) != n:
        raise ValueError("bodies and marks of different lengths")
    out = _Out(docs)  # (from here on docs.buf is the _Out's until done())
    try:
        for i in range(n):
            body = bodies[i]
            key = keys[i]
            bl = PyBytes_GET_SIZE(body)
            kl = PyBytes_GET_SIZE(key)
            idl = idlens[i]
            if idl < 0:
                idl = kl
            memcpy(out.reserve(bl + 1), PyBytes_AS_STRING(body), bl)
            memcpy(out.reserve_key(kl), PyBytes_AS_STRING(key), kl)
            out.wrote(bl, kl, <int>idl, lines[i], flags[i])
    finally:
        out.done()


def scan_jsonl(bytes buf, Py_ssize_t pos, bint eof, Py_ssize_t max_lines, long long ordinal, long long line,
               Flight flight, bint need_rev, bint gen_ids, bytes id_prefix, bytes id_field, object decode,
               object docs):
    """Settle the lines of ``buf`` from offset ``pos``, at most ``max_lines`` of them.

    Returns ``(pos, count, blanks, slow_end)``: the offset after the last line taken,
    how many lines were taken (blank lines included: they are counted in ``blanks`` and
    give no document), and -- when the scan stopped before a line it does not settle --
    the offset after that line (``buf[pos:slow_end]``; the caller handles it), else -1.
    The scan also stops at the end of ``buf`` unless ``eof`` (then a last line without
    ``\\n`` is taken). ``ordinal`` and ``line`` are the numbers of the last record and
    line before ``pos``; each line taken adds one to both.

    A settled line is appended to ``docs`` (a ``couchcore.protocol.bulk.PackedBodies``):
    its body (the line's bytes, with ``"_id":"<id>"`` spliced in after the ``{`` for a
    document without ``_id`` when ``gen_ids``: the id is ``id_prefix`` and the ordinal of
    the record as 12 hex digits) and its marks: line number, key (the id's UTF-8 bytes;
    with ``need_rev``: the id, a NUL and the ``_rev``) and flags. With ``flight`` (a
    :class:`Flight`) a key already in it stops the scan (the caller decides about the
    duplicate), otherwise the key is added to it with the line (flag 1; a generated id is
    not added). With ``need_rev`` a document without ``_rev`` is not settled;
    ``id_field`` (``bytes`` or ``None``) is the loader's id field (such a member is not
    settled here). ``decode`` is unused (the pure-Python twin's head decoder).
    """
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t count = 0, blanks = 0, end, stop, rest
    cdef const unsigned char* nl
    cdef const unsigned char* idf = NULL
    cdef Py_ssize_t idf_len = 0
    cdef Info info
    cdef int verdict, flags
    cdef Py_ssize_t plen = 0, hlen, klen
    cdef char hexbuf[13]
    cdef unsigned long long v
    cdef int k
    cdef Py_ssize_t slow_end = -1
    cdef _Out out
    cdef char* dst
    cdef char* kp
    if id_field is not None:
        idf = <const unsigned char*>PyBytes_AS_STRING(id_field)
        idf_len = PyBytes_GET_SIZE(id_field)
    if gen_ids:
        plen = PyBytes_GET_SIZE(id_prefix)
    if pos < 0:
        pos = 0
    out = _Out(docs)  # (from here on docs.buf is the _Out's until done())
    try:
        while count < max_lines and pos < n:
            verdict = _line(s + pos, n - pos, idf, idf_len, &info, &end)
            if verdict == SLOW:  # its end is found apart (rare: the general path settles the line)
                nl = <const unsigned char*>memchr(s + pos, 10, n - pos)
                if nl == NULL:
                    if not eof:
                        break
                    end = n
                else:
                    end = (nl - s) + 1
                slow_end = end
                break
            end += pos
            if end == n and s[n - 1] != 10 and not eof:
                break  # the buffer ends within the line: settled once the rest is read
            if verdict == BLANK:
                count += 1
                blanks += 1
                ordinal += 1
                line += 1
                pos = end
                continue
            if info.has_id:
                if need_rev and (not info.has_rev or info.rev_escaped):
                    slow_end = end
                    break
                klen = info.id_len + (1 + info.rev_len if need_rev else 0)
                kp = out.reserve_key(klen)
                if info.id_len <= INLINE:  # (a typical id: fixed-size moves, no call of memcpy)
                    cc_kcopy(kp, <const char*>s + pos + info.id_start, info.id_len)
                else:
                    memcpy(kp, <const char*>s + pos + info.id_start, info.id_len)
                if need_rev:
                    kp[info.id_len] = 0
                    memcpy(kp + info.id_len + 1, <const char*>s + pos + info.rev_start, info.rev_len)
                flags = 0
                if flight is not None:
                    if flight._add(kp, klen, line + 1) != 0:  # in flight already: the caller decides
                        slow_end = end
                        break
                    flags = F_FLIGHT
                memcpy(out.reserve(end - pos + 1), <const char*>s + pos, end - pos)
                out.wrote(end - pos, klen, <int>info.id_len, line + 1, flags)
            else:
                if not gen_ids or idf != NULL:
                    slow_end = end
                    break
                # {"_id":"<prefix><12 hex digits>",<the rest after the '{'>  (or "} for {})
                v = <unsigned long long>(ordinal + 1)
                for k in range(11, -1, -1):
                    hexbuf[k] = b"0123456789abcdef"[v & 15]
                    v >>= 4
                if info.empty_end >= 0:
                    stop = info.empty_end
                else:
                    stop = info.brace + 1
                rest = (end - pos) - stop
                hlen = 8 + plen + 12 + 1 + (0 if info.empty_end >= 0 else 1)
                dst = out.reserve(hlen + rest + 1)
                memcpy(dst, b'{"_id":"', 8)
                memcpy(dst + 8, PyBytes_AS_STRING(id_prefix), plen)
                memcpy(dst + 8 + plen, hexbuf, 12)
                dst[8 + plen + 12] = 34  # "
                if info.empty_end < 0:
                    dst[8 + plen + 13] = 44  # ,
                memcpy(dst + hlen, <const char*>s + pos + stop, rest)
                kp = out.reserve_key(plen + 12)  # (the buffer reserved above may move: not read again)
                memcpy(kp, PyBytes_AS_STRING(id_prefix), plen)
                memcpy(kp + plen, hexbuf, 12)
                out.wrote(hlen + rest, plen + 12, <int>(plen + 12), line + 1, 0)
            count += 1
            ordinal += 1
            line += 1
            pos = end
    finally:
        out.done()
    return pos, count, blanks, slow_end


def count_ok(bytes raw):
    """``(n, error)`` for a ``_bulk_docs`` answer: how many times the text ``"ok":true``
    occurs (non-overlapping, as ``raw.count(b'"ok":true')``) and whether ``"error"``
    occurs (as ``b'"error"' in raw``); one pass, stopping at the first ``"error"``.
    (``memmem`` was tried: glibc's generic one costs more here than this walk from quote to
    quote, 16 bytes at a time with SSE2: each block's quotes from its bit mask.)"""
    cdef int error = 0
    cdef Py_ssize_t count = cc_count_ok(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), &error)
    return count, bool(error)


# ---- save(list): the common _bulk_docs answer, read without decoding it --------------------

from cpython.dict cimport PyDict_GetItem
from cpython.unicode cimport PyUnicode_DecodeASCII

cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL


cdef inline Py_ssize_t _skip_ws(const char *s, Py_ssize_t i, Py_ssize_t n) noexcept:
    while i < n and (s[i] == b' ' or s[i] == b'\n' or s[i] == b'\r' or s[i] == b'\t'):
        i += 1
    return i


def plain_ids(object docs, object document_cls):
    """The index of the first of ``docs`` (a ``list``; anything else: ``0``) that is not a ``dict`` or ``document_cls`` (exactly,
    not a subclass) whose ``_id`` is a ``str`` (exactly), non-empty and not starting with
    ``_``; ``len(docs)`` when all are. Reads only; for ``save_docs``' check of the ids."""
    cdef Py_ssize_t i, n
    cdef PyObject *docid
    if type(docs) is not list:
        return 0
    n = len(docs)
    for i in range(n):
        doc = docs[i]
        cls = type(doc)
        if cls is not dict and cls is not document_cls:
            return i
        docid = PyDict_GetItem(doc, "_id")
        if docid == NULL or type(<object>docid) is not str:
            return i
        if len(<object>docid) == 0 or (<str>docid)[0] == u"_":
            return i
    return n


def bulk_ok(object docs, object raw, object pending, object resolved, object settled, object failed_here):
    """Record the written ``docs`` of a ``_bulk_docs`` request from its answer ``raw``, when
    that answer is exactly the common one: a JSON array (JSON whitespace allowed only
    before and after it) of one ``{"ok":true,"id":"<id>","rev":"<rev>"}`` per document,
    in the request's order, members in that order with no whitespace (as CouchDB 3.5 and
    PouchDB Server send it), each ``id`` the UTF-8 bytes of that document's ``_id`` (a
    ``str``) with no escape or control character, each ``rev`` non-empty printable ASCII
    with no escape. Then, for each document in order, as ``_bulk_write`` does for a
    written one: ``doc["_rev"] = rev``; ``pending.pop(id)`` when ``pending`` is not
    empty and the id is not in ``failed_here``; ``settled.discard(id)`` when ``settled``
    is not empty; ``resolved[id] = doc``; and returns ``True``. For any other answer it
    changes nothing and returns ``False`` (the caller decodes the answer; so too when ``docs``
    is not a ``list`` or ``raw`` not ``bytes``)."""
    cdef const char *s
    cdef Py_ssize_t n, ndocs
    cdef Py_ssize_t i, k, j, start, idlen
    cdef const char *idp
    cdef unsigned char c
    if type(docs) is not list or type(raw) is not bytes:
        return False
    s = PyBytes_AS_STRING(raw)
    n = PyBytes_GET_SIZE(raw)
    ndocs = len(docs)
    if ndocs == 0:
        return False
    i = _skip_ws(s, 0, n)
    if i >= n or s[i] != b'[':
        return False
    i += 1
    objs = [None] * ndocs  # (the documents as read: a mapping's __getitem__ could change the list)
    ids = [None] * ndocs
    revs = [None] * ndocs
    for k in range(ndocs):
        if k:
            if i >= n or s[i] != b',':
                return False
            i += 1
        if n - i < 17 or memcmp(s + i, b'{"ok":true,"id":"', 17) != 0:
            return False
        i += 17
        doc = docs[k]
        try:
            docid = doc["_id"]
        except Exception:
            return False
        if type(docid) is not str:
            return False
        try:
            idp = PyUnicode_AsUTF8AndSize(docid, &idlen)
        except UnicodeError:  # (lone surrogates)
            return False
        if idlen == 0 or n - i < idlen + 1 or memcmp(s + i, idp, idlen) != 0 or s[i + idlen] != b'"':
            return False
        for j in range(idlen):
            c = <unsigned char>idp[j]
            if c < 0x20 or c == b'\\' or c == b'"':
                return False
        i += idlen + 1
        if n - i < 8 or memcmp(s + i, b',"rev":"', 8) != 0:
            return False
        i += 8
        start = i
        while i < n:
            c = <unsigned char>s[i]
            if c == b'"':
                break
            if c < 0x20 or c > 0x7e or c == b'\\':
                return False
            i += 1
        if i >= n or i == start or i + 1 >= n or s[i + 1] != b'}':
            return False
        objs[k] = doc
        ids[k] = docid
        revs[k] = PyUnicode_DecodeASCII(s + start, i - start, NULL)
        i += 2
    if i >= n or s[i] != b']':
        return False
    if _skip_ws(s, i + 1, n) != n:
        return False
    for k in range(ndocs):
        doc = objs[k]
        docid = ids[k]
        doc["_rev"] = revs[k]
        if pending and docid not in failed_here:
            pending.pop(docid, None)
        if settled:
            settled.discard(docid)
        resolved[docid] = doc
    return True
