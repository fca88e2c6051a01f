# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, embedsignature=True
"""Incremental CouchDB row parser (C speed).

``RowParser(shape)`` has the interface documented in :mod:`couchcore._rows` (feed, close,
meta, done) and produces the same items as the pure-Python twin ``PyRowParser``.

How it works: one resumable JSON tokenizer walks each chunk's bytes exactly once.  An
explicit stack of frames (object/array, plus a *role* such as "view row", "rows array",
"document") replaces recursion, so a chunk may end anywhere: between tokens nothing is
kept but the stack; inside a string or number the bytes of that one token are copied to
a growable buffer and the scan resumes there with the next chunk (linear time for a
huge string fed in tiny chunks).  Values are built directly from the bytes:

* a complete container value inside the current chunk (typically a whole row) is parsed
  by a recursive-descent fast path that keeps its state in C locals; if the value runs
  past the chunk end it gives up and the frame machine (always correct) parses it --
  at most once per ``feed()`` call, so the extra work stays bounded and linear;
* the common case of a complete value goes further, into plain C (``cc_view_row`` for a
  view row, ``cc_container`` for the dicts/lists/documents below rows): strings without
  escapes (non-ASCII ones through CPython's strict UTF-8 decoder), numbers on the exact
  paths below, literals; on anything else (escapes, odd numbers, malformed input, the
  chunk's end) it drops what it built and the Cython fast path parses the value instead;
* short ASCII string values (<= 16 bytes) and ints of <= 18 digits go through small
  direct-mapped caches, so a value repeated across rows is shared, not re-allocated;
* view rows never become dicts: ``id``/``key``/``value``/``doc``/``error``/``reason`` go
  into C slots and a ``Row`` is made when the row's ``}`` arrives (allocated with
  ``Row.__new__`` and its slot descriptors, without a Python-level ``__init__`` call);
* documents (``doc`` of a row or change, ``ok`` of ``_bulk_get``, ``_find`` docs) are
  created as ``Document`` directly, everything below them as plain ``dict``/``list``;
* object keys that are short ASCII go through a small global cache (bytes -> str; keys of up
  to 8 bytes are looked up as one word);
* a string's end (or its first escape, control or non-ASCII byte) is found 16 bytes at a
  time with SSE2 where the compiler targets it, else 8 at a time (SWAR), then byte by byte;
* in the C path a scalar value is parsed inline where it occurs (a call only for a nested
  dict/list);
* strings without escapes or non-ASCII bytes are copied straight into a 1-byte str;
  others are decoded (UTF-8 validated as strictly as CPython's codec, ``\\u`` escapes
  and surrogate pairs as ``json``/``simplejson`` do);
* numbers are scanned once in C (``cc_number``): ints of up to 18 digits are accumulated
  in an int64 with no per-digit checks, longer ones use ``PyLong_FromString``; floats with
  a mantissa of at most 2**53 and a decimal exponent within +-22 take Clinger's exact fast
  path (one correctly rounded multiply/divide by an exact power of ten), all others use
  ``PyOS_string_to_double`` (the function behind ``float(str)``, which is what
  ``simplejson`` uses), so values are bit-identical to ``float(text)``.

CPython's cyclic GC is switched off while a ``feed()``/``close()`` call runs (the parser
allocates many containers, none of them part of a cycle) and the caller's setting is
restored before returning, also on error.
"""

cimport cython
from cpython.object cimport PyObject, PyTypeObject, Py_TYPE
from cpython.ref cimport Py_INCREF, Py_DECREF, Py_XDECREF
from cpython.mem cimport PyMem_Malloc, PyMem_Realloc, PyMem_Free
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.conversion cimport PyOS_string_to_double
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.string cimport memcpy, memcmp, memset
from libc.stdint cimport uint32_t, uint64_t

from couchcore.errors import ParseError
from couchcore.models import Document, Row
from couchcore_ext._row cimport Row as _CRow, PyMemberDef, PyMemberDescrObject, T_OBJECT_EX, READONLY

cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, uint32_t maxchar)
    void* PyUnicode_DATA(object)
    object PyUnicode_DecodeUTF8(const char* s, Py_ssize_t size, const char* errors)
    object PyUnicode_FromKindAndData(int kind, const void* buf, Py_ssize_t size)
    int PyUnicode_4BYTE_KIND
    object PyLong_FromLongLong(long long v)
    object PyLong_FromString(const char* s, char** pend, int base)
    object PyFloat_FromDouble(double v)
    int PyDict_SetItem(object d, object k, object v) except -1
    int PyList_Append(object l, object v) except -1
    object PyList_New(Py_ssize_t n)
    void PyList_SET_ITEM(object l, Py_ssize_t i, PyObject* v)
    int PyGC_Enable()
    int PyGC_Disable()

cdef extern from "Python.h":
    ctypedef struct _AllocType "PyTypeObject":
        PyObject* (*tp_alloc)(PyTypeObject*, Py_ssize_t)
    PyObject* Py_None

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__SSE2__)
    #include <emmintrin.h>
    /* Bit i of the result is set when byte i of d[0:16] ends a plain string run: '"', '\\',
       a control byte (< 0x20) or a byte >= 0x80 (as a signed byte, < 0x20 covers both). */
    static inline int cc_stop16(const unsigned char* d) {
        __m128i v = _mm_loadu_si128((const __m128i*)d);
        __m128i s = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8(92)));
        return _mm_movemask_epi8(_mm_or_si128(s, _mm_cmplt_epi8(v, _mm_set1_epi8(0x20))));
    }
    #endif
    /* Skip bytes while none is '"', '\\', < 0x20 or >= 0x80: 16 at a time (SSE2), then 8
       (SWAR).  Returns the first such byte's index, or an index < n from which fewer than 8
       bytes remain or a word with such a byte starts (the caller scans on byte by byte). */
    static inline Py_ssize_t cc_skip_plain8(const unsigned char* d, Py_ssize_t q, Py_ssize_t n) {
    #if defined(__SSE2__)
        while (q + 16 <= n) {
            int m = cc_stop16(d + q);
            if (m) return q + __builtin_ctz((unsigned)m);
            q += 16;
        }
    #endif
        while (q + 8 <= n) {
            uint64_t w, x1, x2, m;
            memcpy(&w, d + q, 8);
            x1 = w ^ 0x2222222222222222ULL;
            x2 = w ^ 0x5c5c5c5c5c5c5c5cULL;
            m = ((x1 - 0x0101010101010101ULL) & ~x1)
              | ((x2 - 0x0101010101010101ULL) & ~x2)
              | ((w - 0x2020202020202020ULL) & ~w)
              | w;
            if (m & 0x8080808080808080ULL) break;
            q += 8;
        }
        return q;
    }
    """
    Py_ssize_t cc_skip_plain8(const unsigned char* d, Py_ssize_t q, Py_ssize_t n) noexcept nogil

cdef extern from *:
    """
    /* Key cache: short ASCII keys (<= 32 bytes) -> str, compared as zero-padded words.
       A key seen again (a hit) is interned then, once (``interned`` set): the str constants
       of Python code are interned, so a lookup with a literal key (doc["_id"]) finds a
       repeated field's key by identity instead of comparing the text.  A key met once
       (a miss) is not: interning costs a hash and a table insert per distinct key.
       Only before CPython 3.12: from 3.12 on an interned str is immortal, so interning every
       key that repeats would keep each distinct one forever (a long stream of documents
       keyed by dates would grow without bound); there the keys stay plain str. */
    /* next: the entry of the key that followed this one in the last dict the C path
       filled (a guess for the next dict of the same shape: cc_dict_key) */
    typedef struct cc_kentry_s { PyObject* s; int kid; int length; uint64_t w[4]; int interned; struct cc_kentry_s* next; } cc_kentry;
    static cc_kentry CC_KCACHE[1024];
    /* the entry's str interned (once per entry: kept out of line, so that the inlined hit
       path stays a flag test) */
    #if defined(__GNUC__)
    __attribute__((noinline, cold, unused))
    #endif
    static void cc_kintern(cc_kentry* e) {
        PyObject* u = e->s;
        Py_INCREF(u);
        PyUnicode_InternInPlace(&u);   /* u: the interned equal str (maybe another object) */
        if (u != e->s) {
            Py_DECREF(e->s);
            e->s = u;
        } else {
            Py_DECREF(u);
        }
        e->interned = 1;
    }
    /* the entry's str (a new reference), interned at its first hit */
    static inline PyObject* cc_kuse(cc_kentry* e) {
    #if PY_VERSION_HEX < 0x030C0000
        if (!e->interned) cc_kintern(e);
    #endif
        Py_INCREF(e->s);
        return e->s;
    }
    /* s[0:n] is the key; s[0:avail] may be read.  With 32 readable bytes (the usual case
       inside a chunk) the words are loaded whole and the bytes past the key masked off,
       instead of a variable-length byte copy that the word reads below would stall on. */
    static inline cc_kentry* cc_kslot(const unsigned char* s, Py_ssize_t n, Py_ssize_t avail, uint64_t* w) {
        uint64_t h;
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (avail >= 32) {
            /* the word holding the key's end keeps its n % 8 low bytes, the words after it
               are zero (most keys are short: one branch) */
            memcpy(w, s, 32);
            if (n < 8) { w[0] &= (1ULL << (8 * n)) - 1; w[1] = w[2] = w[3] = 0; }
            else if (n < 16) { w[1] &= (1ULL << (8 * (n - 8))) - 1; w[2] = w[3] = 0; }
            else if (n < 24) { w[2] &= (1ULL << (8 * (n - 16))) - 1; w[3] = 0; }
            else if (n < 32) { w[3] &= (1ULL << (8 * (n - 24))) - 1; }
        } else
    #endif
        {
            w[0] = w[1] = w[2] = w[3] = 0;
            memcpy(w, s, (size_t)n);
        }
        h = (w[0] * 0x9E3779B97F4A7C15ULL) ^ (w[1] * 0xC2B2AE3D27D4EB4FULL)
          ^ ((w[2] ^ (w[3] << 7)) * 0x165667B19E3779F9ULL) ^ (uint64_t)n;
        h ^= h >> 31;
        h *= 0x94D049BB133111EBULL;
        return &CC_KCACHE[h >> 54];
    }
    static inline int cc_khit(const cc_kentry* e, Py_ssize_t n, const uint64_t* w) {
        return e->s != NULL && e->length == (int)n &&
               ((e->w[0] ^ w[0]) | (e->w[1] ^ w[1]) | (e->w[2] ^ w[2]) | (e->w[3] ^ w[3])) == 0;
    }
    """
    ctypedef struct cc_kentry:
        PyObject* s
        int kid
        int length
        uint64_t w[4]
        int interned
    cc_kentry* cc_kslot(const unsigned char* s, Py_ssize_t n, Py_ssize_t avail, uint64_t* w) noexcept nogil
    int cc_khit(const cc_kentry* e, Py_ssize_t n, const uint64_t* w) noexcept nogil
    PyObject* cc_kuse(cc_kentry* e) noexcept

cdef extern from *:
    """
    /* New str objects of the compact kinds the parser makes most (plain ASCII; 1-byte
       non-ASCII from cc_utf8), allocated here instead of by PyUnicode_New (CC_STRNEW).
       PyUnicode_New works out the kind, struct size and size limit and fills the header
       field by field (~55 instructions a str besides the allocation, callgrind); here the
       header after PyObject_HEAD is copied from a template str that PyUnicode_New made at
       import (hash -1; state: interned 0, the kind, compact 1, ascii, ready on 3.10/3.11,
       statically_allocated 0 on 3.12/3.13; wstr/utf8 NULL), then the length and the terminating NUL are set, and PyObject_Init
       sets the type and the reference count as PyUnicode_New does (_PyObject_Init).
       Checked at import (cc_strnew_check): strs of 13 lengths made both ways must have the
       same header fields and bytes, compare and hash equal; the path stays off unless they
       do.  CPython 3.10-3.13 only (the fields compared), not free-threaded or PyPy. */
    #if !defined(Py_GIL_DISABLED) && !defined(PYPY_VERSION) && !defined(Py_LIMITED_API) \
        && PY_VERSION_HEX >= 0x030A0000 && PY_VERSION_HEX < 0x030E0000
    #define CC_STRNEW 1
    #else
    #define CC_STRNEW 0
    #endif
    static int CC_STRNEW_ON = 0;
    #if CC_STRNEW
    static PyASCIIObject CC_ASCII_HDR;            /* template: a plain ASCII str's header */
    static PyCompactUnicodeObject CC_LATIN1_HDR;  /* template: a 1-byte non-ASCII str's */
    #endif
    /* a new str of n characters, all <= 127 (ascii) or <= 255 with one >= 128 (!ascii),
       its data left to the caller (the NUL after it written); NULL on error */
    static inline PyObject* cc_str_new(Py_ssize_t n, int ascii) {
    #if CC_STRNEW
        if (CC_STRNEW_ON && n > 0 && n < ((Py_ssize_t)1 << 30)) {
            PyObject* u;
            if (ascii) {
                u = (PyObject*)PyObject_Malloc(sizeof(PyASCIIObject) + (size_t)n + 1);
                if (u == NULL) return PyErr_NoMemory();
                memcpy((char*)u + sizeof(PyObject), (const char*)&CC_ASCII_HDR + sizeof(PyObject),
                       sizeof(PyASCIIObject) - sizeof(PyObject));
                ((PyASCIIObject*)u)->length = n;
                ((char*)((PyASCIIObject*)u + 1))[n] = 0;
            } else {
                u = (PyObject*)PyObject_Malloc(sizeof(PyCompactUnicodeObject) + (size_t)n + 1);
                if (u == NULL) return PyErr_NoMemory();
                memcpy((char*)u + sizeof(PyObject), (const char*)&CC_LATIN1_HDR + sizeof(PyObject),
                       sizeof(PyCompactUnicodeObject) - sizeof(PyObject));
                ((PyASCIIObject*)u)->length = n;
                ((char*)((PyCompactUnicodeObject*)u + 1))[n] = 0;
            }
    #if PY_VERSION_HEX < 0x030C0000
            /* _PyObject_Init for a static type, without PyObject_Init's call (3.10/3.11,
               where _Py_NewReference is exported) */
            Py_SET_TYPE(u, &PyUnicode_Type);
            _Py_NewReference(u);
            return u;
    #else
            return PyObject_Init(u, &PyUnicode_Type);
    #endif
        }
    #endif
        return PyUnicode_New(n, ascii ? 127 : 255);
    }
    /* the header fields of two strs of the same kind equal (field by field: the state's
       unnamed bits and the padding after it are left as malloc gave them) */
    static int cc_str_fields_equal(PyObject* a, PyObject* b, int ascii) {
        PyASCIIObject* x = (PyASCIIObject*)a;
        PyASCIIObject* y = (PyASCIIObject*)b;
        if (x->length != y->length || x->hash != y->hash || x->state.interned != y->state.interned
                || x->state.kind != y->state.kind || x->state.compact != y->state.compact
                || x->state.ascii != y->state.ascii)
            return 0;
    #if PY_VERSION_HEX < 0x030C0000
        if (x->state.ready != y->state.ready || x->wstr != y->wstr) return 0;
    #else
        if (x->state.statically_allocated != y->state.statically_allocated) return 0;
    #endif
        if (!ascii) {
            PyCompactUnicodeObject* cx = (PyCompactUnicodeObject*)a;
            PyCompactUnicodeObject* cy = (PyCompactUnicodeObject*)b;
            if (cx->utf8 != cy->utf8 || cx->utf8_length != cy->utf8_length) return 0;
    #if PY_VERSION_HEX < 0x030C0000
            if (cx->wstr_length != cy->wstr_length) return 0;
    #endif
        }
        return 1;
    }
    /* The import-time check of cc_str_new (see above): fills the templates, then compares
       strs made both ways.  Returns 1 and switches the path on when all agree; 0 otherwise
       (it stays off). */
    static int cc_strnew_check(void) {
    #if CC_STRNEW
        static const Py_ssize_t lens[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 1000};
        PyObject* t;
        size_t i;
        int ok = 1, ascii;
        CC_STRNEW_ON = 0;
        t = PyUnicode_New(3, 127);
        if (t == NULL) { PyErr_Clear(); return 0; }
        if (!PyUnicode_IS_COMPACT_ASCII(t)) { Py_DECREF(t); return 0; }
        memcpy(&CC_ASCII_HDR, t, sizeof(PyASCIIObject));
        Py_DECREF(t);
        t = PyUnicode_New(3, 255);
        if (t == NULL) { PyErr_Clear(); return 0; }
        if (!PyUnicode_IS_COMPACT(t) || PyUnicode_IS_ASCII(t) || PyUnicode_KIND(t) != PyUnicode_1BYTE_KIND) {
            Py_DECREF(t);
            return 0;
        }
        memcpy(&CC_LATIN1_HDR, t, sizeof(PyCompactUnicodeObject));
        Py_DECREF(t);
        for (i = 0; ok && i < sizeof(lens) / sizeof(lens[0]); i++) {
            for (ascii = 0; ok && ascii < 2; ascii++) {
                Py_ssize_t n = lens[i], j;
                size_t hs = ascii ? sizeof(PyASCIIObject) : sizeof(PyCompactUnicodeObject);
                PyObject* a = PyUnicode_New(n, ascii ? 127 : 255);
                PyObject* b;
                if (a == NULL) { PyErr_Clear(); return 0; }
                CC_STRNEW_ON = 1;
                b = cc_str_new(n, ascii);
                CC_STRNEW_ON = 0;
                if (b == NULL) { PyErr_Clear(); Py_DECREF(a); return 0; }
                for (j = 0; j < n; j++) {
                    Py_UCS1 c = (Py_UCS1)(ascii ? 32 + (j * 7) % 95 : 160 + (j * 7) % 96);
                    PyUnicode_1BYTE_DATA(a)[j] = c;
                    PyUnicode_1BYTE_DATA(b)[j] = c;
                }
                ok = Py_TYPE(a) == Py_TYPE(b) && Py_REFCNT(a) == 1 && Py_REFCNT(b) == 1
                     && cc_str_fields_equal(a, b, ascii)
                     && memcmp((char*)a + hs, (char*)b + hs, (size_t)n + 1) == 0
                     && PyUnicode_GET_LENGTH(b) == n && PyUnicode_KIND(b) == PyUnicode_1BYTE_KIND
                     && (PyUnicode_IS_ASCII(b) != 0) == (ascii != 0)
                     && PyUnicode_DATA(b) == (void*)((char*)b + hs)
                     && PyUnicode_Compare(a, b) == 0 && PyObject_Hash(a) == PyObject_Hash(b);
                if (PyErr_Occurred()) { PyErr_Clear(); ok = 0; }
                Py_DECREF(a);
                Py_DECREF(b);
            }
        }
        CC_STRNEW_ON = ok;
        return ok;
    #else
        return 0;
    #endif
    }
    static int cc_strnew_on(void) { return CC_STRNEW_ON; }
    static void cc_strnew_set(int on) { CC_STRNEW_ON = on && CC_STRNEW; }
    """
    int cc_strnew_check()
    int cc_strnew_on()
    void cc_strnew_set(int on)

cdef extern from *:
    """
    /* Value caches (strings and ints are immutable: sharing one object between rows is
       safe and gives equal values).  Short ASCII string values (<= 16 bytes, no escapes)
       and int values of <= 18 digits go through small direct-mapped tables: a value that
       repeats across rows (a type or user name, a status, a number emitted twice) is one
       INCREF instead of an allocation now and a deallocation when the row dies.  A miss
       costs a hash and replaces the entry (the old object is released). */
    typedef struct { PyObject* s; Py_ssize_t length; uint64_t w0, w1; } cc_sentry;
    static cc_sentry CC_SCACHE[2048];
    typedef struct { PyObject* o; long long v; } cc_ientry;
    static cc_ientry CC_ICACHE[1024];
    /* one-character ASCII strs: CPython's own shared ones (PyUnicode_FromOrdinal gives the
       interpreter's 1-character singletons, the strs json.loads returns too), one reference
       each kept here, taken when first needed */
    static PyObject* CC_CHR1[128];
    #if defined(__GNUC__)
    #define CC_UNLIKELY(x) __builtin_expect(!!(x), 0)
    #else
    #define CC_UNLIKELY(x) (x)
    #endif
    /* s[0:n] (n <= 16) is the string's content, s[0:avail] may be read (avail >= n). */
    static inline PyObject* cc_short_ascii(const unsigned char* s, Py_ssize_t n, Py_ssize_t avail) {
        uint64_t w0 = 0, w1 = 0, h;
        cc_sentry* e;
        PyObject* u;
        if (CC_UNLIKELY(n == 1) && s[0] < 128) {
            u = CC_CHR1[s[0]];
            if (u == NULL) {
                u = PyUnicode_FromOrdinal(s[0]);
                if (u == NULL) return NULL;
                CC_CHR1[s[0]] = u;
            }
            Py_INCREF(u);
            return u;
        }
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (avail >= 16) {
            memcpy(&w0, s, 8);
            memcpy(&w1, s + 8, 8);
            if (n < 8) { w0 &= n ? (~0ULL >> (8 * (8 - n))) : 0; w1 = 0; }
            else if (n < 16) { w1 &= n > 8 ? (~0ULL >> (8 * (16 - n))) : 0; }
        } else
    #endif
        {
            unsigned char b[16] = {0};
            memcpy(b, s, (size_t)n);
            memcpy(&w0, b, 8);
            memcpy(&w1, b + 8, 8);
        }
        h = (w0 * 0x9E3779B97F4A7C15ULL) ^ (w1 * 0xC2B2AE3D27D4EB4FULL) ^ (uint64_t)n;
        h ^= h >> 29;
        h *= 0x94D049BB133111EBULL;
        e = &CC_SCACHE[h >> 53];
        if (e->s != NULL && e->length == n && e->w0 == w0 && e->w1 == w1) {
            Py_INCREF(e->s);
            return e->s;
        }
        u = cc_str_new(n, 1);
        if (u == NULL) return NULL;
        memcpy(PyUnicode_DATA(u), s, (size_t)n);
        Py_XDECREF(e->s);
        Py_INCREF(u);
        e->s = u;
        e->length = n;
        e->w0 = w0;
        e->w1 = w1;
        return u;
    }
    #if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000 && !defined(Py_GIL_DISABLED) && PyLong_SHIFT == 30
    #if defined(__GNUC__)
    __attribute__((noinline))
    #endif
    static PyObject* cc_long_new(long long v) {
        PyLongObject* o;
        if ((v <= 256 && v >= -5) || v >= (1LL << 30) || v <= -(1LL << 30)) return PyLong_FromLongLong(v);
        o = (PyLongObject*)PyObject_Malloc(offsetof(PyLongObject, ob_digit) + sizeof(digit));
        if (o == NULL) return PyErr_NoMemory();
        Py_SET_TYPE(o, &PyLong_Type);
        Py_SET_SIZE(o, v < 0 ? -1 : 1);
        _Py_NewReference((PyObject*)o);
        o->ob_digit[0] = (digit)(v < 0 ? -v : v);
        return (PyObject*)o;
    }
    #else
    #define cc_long_new(v) PyLong_FromLongLong(v)
    #endif
    #if defined(__GNUC__)
    __attribute__((always_inline))   /* GCC's own choice varies with its callers' size */
    #endif
    static inline PyObject* cc_int(long long v) {
        cc_ientry* e = &CC_ICACHE[((uint64_t)v * 0x9E3779B97F4A7C15ULL) >> 54];
        PyObject* o;
        if (e->o != NULL && e->v == v) {
            Py_INCREF(e->o);
            return e->o;
        }
        o = cc_long_new(v);
        if (o == NULL) return NULL;
        Py_XDECREF(e->o);
        Py_INCREF(o);
        e->o = o;
        e->v = v;
        return o;
    }
    """
    object cc_short_ascii(const unsigned char* s, Py_ssize_t n, Py_ssize_t avail)
    object cc_int(long long v)

cdef extern from *:
    """
    #include <float.h>
    /* Exact powers of ten: 10^k for k <= 22 is exactly representable in a double. */
    static const double CC_P10[23] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    /* A JSON number token s[0:n] (already delimited).  Returns
         -1  not a JSON number (grammar),
          1  an integer of <= 18 digits, in *iv (accumulated without overflow checks),
          2  a float, in *dv, by Clinger's exact fast path: mantissa m <= 2^53 (so exactly a
             double) and a decimal exponent e with |e| <= 22 (10^|e| exactly a double):
             one IEEE multiply or divide of two exact doubles is correctly rounded, i.e. the
             same double float(text) gives; also m * 10^(e-22) <= 2^53 for 22 < e <= 37,
          0  valid, but it needs the correctly rounded general conversion (*isf says float).
       Only on targets that evaluate doubles in double precision (FLT_EVAL_METHOD 0);
       elsewhere (x87) every float takes the general conversion. */
    /* cc_number_scan: the same for the number that starts at s[0], where s[0:n] may be
       read and the token's end is not known yet: the scan stops at the first byte that
       cannot continue the number's grammar and puts the length scanned in *len.  The
       result is the one for the token s[0:*len]; it is only that token if s[*len] (when
       *len < n) cannot continue a number or literal token at all (the caller checks). */
    /* always inlined: its callers (cc_plain_value above all) use only some of its results,
       and a call would cost more than its common case (a short int) */
    #if defined(__GNUC__)
    #define CC_NUM_INLINE static inline __attribute__((always_inline))
    #else
    #define CC_NUM_INLINE static inline
    #endif
    CC_NUM_INLINE int cc_number_scan(const unsigned char* s, Py_ssize_t n, Py_ssize_t* len,
                                     long long* iv, double* dv, int* isf);
    /* The run of decimal digits at s[i:] (s[0:n] readable), accumulated into *mp as the
       digit-by-digit loop m = m * 10 + digit does (modulo 2^64: the callers look at the
       digit counts before trusting m); returns the index of the first byte after the run.
       Eight bytes at a time where they are readable (little-endian targets): the bytes
       that are no digit are flagged -- a byte b is a digit exactly when b & 0xF0 == 0x30
       and (b + 6) & 0xF0 == 0x30; the add may carry into the byte above a byte >= 0xFA,
       never into a lower one, so the lowest flagged byte is exactly the first non-digit --
       and the k digits before it are converted together (SWAR: pairs, then fours, then
       eights; moved to the word's top first, the bytes below them reading as leading
       zeros), m becoming m * 10^k + their value: the same number modulo 2^64. */
    static const uint64_t CC_U10[9] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL,
                                       1000000ULL, 10000000ULL, 100000000ULL};
    CC_NUM_INLINE uint64_t cc_swar8(uint64_t w) {
        w = ((w & 0x0F0F0F0F0F0F0F0FULL) * 2561) >> 8;
        w = ((w & 0x00FF00FF00FF00FFULL) * 6553601) >> 16;
        return ((w & 0x0000FFFF0000FFFFULL) * 42949672960001ULL) >> 32;
    }
    CC_NUM_INLINE Py_ssize_t cc_digits(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, uint64_t* mp) {
        uint64_t m = *mp;
    #if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        while (i + 8 <= n) {
            uint64_t w, t;
            int k;
            memcpy(&w, s + i, 8);
            t = ((w & 0xF0F0F0F0F0F0F0F0ULL) ^ 0x3030303030303030ULL)
              | (((w + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) ^ 0x3030303030303030ULL);
            if (t == 0) {
                m = m * 100000000ULL + cc_swar8(w);
                i += 8;
                continue;
            }
            k = __builtin_ctzll(t) >> 3;
            if (k) {
                m = m * CC_U10[k] + cc_swar8(w << (8 * (8 - k)));
                i += k;
            }
            *mp = m;
            return i;
        }
    #endif
        while (i < n && (unsigned)(s[i] - '0') < 10u) { m = m * 10u + (unsigned)(s[i] - '0'); i++; }
        *mp = m;
        return i;
    }
    static inline int cc_number(const unsigned char* s, Py_ssize_t n,
                                long long* iv, double* dv, int* isf) {
        Py_ssize_t len;
        int r = cc_number_scan(s, n, &len, iv, dv, isf);
        return (r >= 0 && len != n) ? -1 : r;
    }
    CC_NUM_INLINE int cc_number_scan(const unsigned char* s, Py_ssize_t n, Py_ssize_t* len,
                                     long long* iv, double* dv, int* isf) {
        Py_ssize_t i = 0, start, nd, fd = 0;
        int neg = 0, eneg = 0;
        long e = 0, ee;
        uint64_t m = 0;
        double d;
        *isf = 0;
        if (s[0] == '-') { neg = 1; i = 1; }
        start = i;
        if (i >= n) return -1;
        if (s[i] == '0') {
            i++;
        } else if (s[i] >= '1' && s[i] <= '9') {
            i = cc_digits(s, i, n, &m);
        } else {
            return -1;
        }
        nd = i - start;
        if (i < n && s[i] == '.') {
            Py_ssize_t fs = ++i;
            i = cc_digits(s, i, n, &m);
            if (i == fs) return -1;
            fd = i - fs;
            *isf = 1;
        }
        if (i < n && (s[i] | 0x20) == 'e') {
            Py_ssize_t es;
            i++;
            if (i < n && (s[i] == '+' || s[i] == '-')) { eneg = s[i] == '-'; i++; }
            es = i;
            while (i < n && (unsigned)(s[i] - '0') < 10u) {
                if (e < 100000) e = e * 10 + (s[i] - '0');
                i++;
            }
            if (i == es) return -1;
            *isf = 1;
        }
        *len = i;
        if (!*isf) {
            if (nd <= 18) { *iv = neg ? -(long long)m : (long long)m; return 1; }
            return 0;
        }
    #if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
        if (nd + fd > 19) return 0;          /* m may have wrapped: general conversion */
        if (m == 0) { *dv = neg ? -0.0 : 0.0; return 2; }   /* 0e999, -0.0, 0.000e-5 */
        if (m > (1ULL << 53)) return 0;
        ee = (eneg ? -e : e) - (long)fd;
        d = (double)m;
        if (ee < 0) {
            if (ee < -22) return 0;
            d = d / CC_P10[-ee];
        } else if (ee <= 22) {
            d = d * CC_P10[ee];
        } else {
            if (ee > 22 + 15) return 0;
            for (long k = ee - 22; k > 0; k--) {
                m *= 10u;
                if (m > (1ULL << 53)) return 0;
            }
            d = (double)m * CC_P10[22];
        }
        *dv = neg ? -d : d;
        return 2;
    #else
        return 0;
    #endif
    }
    """
    int cc_number(const unsigned char* s, Py_ssize_t n, long long* iv, double* dv, int* isf) noexcept nogil
    int cc_number_scan(const unsigned char* s, Py_ssize_t n, Py_ssize_t* len, long long* iv, double* dv, int* isf) noexcept nogil

cdef extern from *:
    """
    /* Plain values in C: a dict/list below a row (a view row's key/value, anything inside
       a document) whose text is entirely inside the chunk and uses only the common
       grammar -- strings without escapes or non-ASCII bytes, numbers that
       cc_number_scan converts exactly, true/false/null, nesting up to CC_PLAIN_DEPTH.
       It builds exactly the objects the Cython fast path builds (same key cache, value
       caches, number conversion, list sizing).  Anything else -- escapes, non-ASCII,
       long or odd numbers, malformed input, the end of the chunk, a line break in a
       continuous feed -- makes it give up: it drops what it built and returns
       CC_GIVEUP (a new reference), and the caller parses the value the usual way from
       its first byte (which also raises the right error for malformed input).  NULL
       means an exception (out of memory). */
    #define CC_PLAIN_DEPTH 24
    #if defined(__GNUC__)
    #define CC_HOT __attribute__((hot, aligned(64)))
    #else
    #define CC_HOT
    #endif
    #if !defined(PYPY_VERSION) && !defined(Py_LIMITED_API)
    #define CC_PRESIZE 1
    #else
    #define CC_PRESIZE 0
    #endif
    static PyObject* CC_GIVEUP = NULL;
    /* key ids, as the enum of _rows.pyx (checked at import) */
    #define CC_K_OTHER 0
    #define CC_K_ID 1
    #define CC_K_KEY 2
    #define CC_K_VALUE 3
    #define CC_K_DOC 4
    #define CC_K_ERROR 5
    #define CC_K_REASON 6
    #define CC_K_DOCS 7
    #define CC_K_OK 8
    #define CC_K_ROWS 9
    #define CC_K_RESULTS 10
    #define CC_K_LAST_SEQ 11
    #define CC_K_SEQ 12
    static int cc_classify(const unsigned char* s, Py_ssize_t n) {
        switch (n) {
        case 2:
            if (s[0] == 'i' && s[1] == 'd') return CC_K_ID;
            if (s[0] == 'o' && s[1] == 'k') return CC_K_OK;
            break;
        case 3:
            if (memcmp(s, "key", 3) == 0) return CC_K_KEY;
            if (memcmp(s, "doc", 3) == 0) return CC_K_DOC;
            if (memcmp(s, "seq", 3) == 0) return CC_K_SEQ;
            break;
        case 4:
            if (memcmp(s, "docs", 4) == 0) return CC_K_DOCS;
            if (memcmp(s, "rows", 4) == 0) return CC_K_ROWS;
            break;
        case 5:
            if (memcmp(s, "value", 5) == 0) return CC_K_VALUE;
            if (memcmp(s, "error", 5) == 0) return CC_K_ERROR;
            break;
        case 6:
            if (memcmp(s, "reason", 6) == 0) return CC_K_REASON;
            break;
        case 7:
            if (memcmp(s, "results", 7) == 0) return CC_K_RESULTS;
            break;
        case 8:
            if (memcmp(s, "last_seq", 8) == 0) return CC_K_LAST_SEQ;
            break;
        }
        return CC_K_OTHER;
    }
    /* bytes that may continue a number/literal token: [-+.0-9A-Za-z] */
    static inline int cc_scalar_char(unsigned char c) {
        /* a bit a byte: '+' '-' '.' '0'-'9' (first word), 'A'-'Z' 'a'-'z' (second) */
        static const uint64_t bits[4] = {0x03ff680000000000ULL, 0x07fffffe07fffffeULL, 0, 0};
        return (int)((bits[c >> 6] >> (c & 63)) & 1);
    }
    static inline Py_ssize_t cc_ws(const unsigned char* d, Py_ssize_t p, Py_ssize_t n, int lines) {
        while (p < n) {
            unsigned char c = d[p];
            if (c == ' ' || c == 9 || c == 13 || (c == 10 && !lines)) p++;
            else break;
        }
        return p;
    }
    /* The content of a string starting at d[q]: index of its closing quote, or -1 when it
       has an escape or a control byte, or does not end inside the chunk; *high is set when
       it has bytes >= 0x80. */
    static inline Py_ssize_t cc_plain_str(const unsigned char* d, Py_ssize_t q, Py_ssize_t n, int* high) {
        unsigned char c;
        *high = 0;
        for (;;) {
    #if defined(__SSE2__)
            while (q + 16 <= n) {
                int m16 = cc_stop16(d + q);
                if (m16) { q += __builtin_ctz((unsigned)m16); goto found; }
                q += 16;
            }
    #endif
    #if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            /* 8 bytes at a time; the lowest flagged byte of the SWAR mask is exact (a
               borrow can only flag bytes above a true match), so ctz finds it */
            while (q + 8 <= n) {
                uint64_t w, x1, x2, m;
                memcpy(&w, d + q, 8);
                x1 = w ^ 0x2222222222222222ULL;
                x2 = w ^ 0x5c5c5c5c5c5c5c5cULL;
                m = (((x1 - 0x0101010101010101ULL) & ~x1)
                   | ((x2 - 0x0101010101010101ULL) & ~x2)
                   | ((w - 0x2020202020202020ULL) & ~w)
                   | w) & 0x8080808080808080ULL;
                if (m) { q += __builtin_ctzll(m) >> 3; goto found; }
                q += 8;
            }
    #endif
            while (q < n) {
                c = d[q];
                if (c == '"' || c < 0x20 || c == 92 || c >= 0x80) goto found;
                q++;
            }
            return -1;
        found:
            c = d[q];
            if (c == '"') return q;
            if (c < 0x80) return -1;      /* an escape or a control byte */
            *high = 1;
            q++;
        }
    }
    /* a string value s[0:n] with bytes >= 0x80 (no escapes): decoded in two passes --
       validate with CPython's strict UTF-8 rules (the rules of RowParser._unescape: no
       overlong forms, no surrogates, nothing above U+10FFFF) while counting code points
       and finding the largest, then fill a str of exactly that kind (the canonical form
       PyUnicode_DecodeUTF8 gives too).  Invalid UTF-8 gives up (the Cython code raises). */
    #define CC_UTF8_BUF 64
    static PyObject* cc_utf8(const unsigned char* s, Py_ssize_t n) {
        Py_ssize_t i = 0, count = 0;
        uint32_t maxc = 0, u;
        unsigned char c, c1, c2, c3;
        PyObject* r;
        int kind;
        void* data;
        /* a short value (most): its code points kept in buf[] by the first pass, which the
           str is then filled from (a narrowing copy instead of decoding again) */
        uint32_t buf[CC_UTF8_BUF];
        int keep = n <= CC_UTF8_BUF;
        if (keep) {
            /* the most common case first: every character <= U+00FF (Latin-1 text: the
               non-ASCII bytes are all 0xC2/0xC3 leads, each followed by a continuation
               byte), decoded in one pass straight into the 1-byte characters, then copied
               into the str; on any other byte this drops what it decoded and the general
               loop below starts again from the first byte */
            unsigned char o1[CC_UTF8_BUF];
            Py_ssize_t o = 0;
            int hi = 0;
            while (i < n) {
                c = s[i];
                if (c < 0x80) {
                    o1[o++] = c;
                    i++;
                } else if ((c == 0xC2 || c == 0xC3) && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
                    o1[o++] = (unsigned char)(((c & 0x1F) << 6) | (s[i + 1] & 0x3F));
                    hi = 1;
                    i += 2;
                } else {
                    break;
                }
            }
            if (i == n && hi) {   /* hi: a character >= U+0080, so not the ASCII kind */
                r = cc_str_new(o, 0);
                if (r == NULL) return NULL;
                memcpy(PyUnicode_1BYTE_DATA(r), o1, (size_t)o);
                return r;
            }
            i = 0;
        }
        while (i < n) {
            c = s[i];
            if (c < 0x80) { u = c; i++; }
            else if (c >= 0xC2 && c <= 0xDF) {
                if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) goto giveup;
                u = ((uint32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F);
                if (u > maxc) maxc = u;
                i += 2;
            } else if (c >= 0xE0 && c <= 0xEF) {
                if (i + 2 >= n) goto giveup;
                c1 = s[i + 1]; c2 = s[i + 2];
                if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80) goto giveup;
                if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F)) goto giveup;
                u = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(c1 & 0x3F) << 6) | (c2 & 0x3F);
                if (u > maxc) maxc = u;
                i += 3;
            } else if (c >= 0xF0 && c <= 0xF4) {
                if (i + 3 >= n) goto giveup;
                c1 = s[i + 1]; c2 = s[i + 2]; c3 = s[i + 3];
                if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80 || (c3 & 0xC0) != 0x80) goto giveup;
                if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) goto giveup;
                u = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(c1 & 0x3F) << 12)
                  | ((uint32_t)(c2 & 0x3F) << 6) | (c3 & 0x3F);
                if (u > maxc) maxc = u;
                i += 4;
            } else {
                goto giveup;
            }
            if (keep) buf[count] = u;
            count++;
        }
        r = maxc < 256 ? cc_str_new(count, 0) : PyUnicode_New(count, maxc);   /* maxc >= 0x80 */
        if (r == NULL) return NULL;
        kind = PyUnicode_KIND(r);
        data = PyUnicode_DATA(r);
        if (keep) {
            if (kind == PyUnicode_1BYTE_KIND) {
                Py_UCS1* o = (Py_UCS1*)data;
                for (i = 0; i < count; i++) o[i] = (Py_UCS1)buf[i];
            } else if (kind == PyUnicode_2BYTE_KIND) {
                Py_UCS2* o = (Py_UCS2*)data;
                for (i = 0; i < count; i++) o[i] = (Py_UCS2)buf[i];
            } else {
                memcpy(data, buf, (size_t)count * sizeof(Py_UCS4));
            }
            return r;
        }
        i = 0;
        count = 0;
        while (i < n) {
            c = s[i];
            if (c < 0x80) { u = c; i++; }
            else if (c <= 0xDF) { u = ((uint32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F); i += 2; }
            else if (c <= 0xEF) {
                u = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
                i += 3;
            } else {
                u = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12)
                  | ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
                i += 4;
            }
            PyUnicode_WRITE(kind, data, count, u);
            count++;
        }
        return r;
    giveup:
        Py_INCREF(CC_GIVEUP);
        return CC_GIVEUP;
    }
    static inline PyObject* cc_ascii(const unsigned char* s, Py_ssize_t n) {
        PyObject* u = cc_str_new(n, 1);
        if (u != NULL) memcpy(PyUnicode_DATA(u), s, (size_t)n);
        return u;
    }
    /* A string value s[0:n] of 17..CC_LONG_MAX plain ASCII bytes: equal to the previous
       such value, it is that str again (one INCREF instead of an allocation now and a
       deallocation later).  The common case is a value that a row repeats: an
       include_docs row's "value": {"rev": R} and its document's "_rev": R (34+ bytes).
       A miss costs a length compare (and a memcmp when the lengths are equal); the one
       str kept is the last one made. */
    #define CC_LONG_MAX 256
    static PyObject* CC_LAST_LONG = NULL;
    static inline PyObject* cc_long_ascii(const unsigned char* s, Py_ssize_t n) {
        PyObject* u = CC_LAST_LONG;
        if (u != NULL && PyUnicode_GET_LENGTH(u) == n && memcmp(PyUnicode_DATA(u), s, (size_t)n) == 0) {
            Py_INCREF(u);
            return u;
        }
        u = cc_ascii(s, n);
        if (u == NULL) return NULL;
        if (n <= CC_LONG_MAX) {
            Py_INCREF(u);
            Py_XSETREF(CC_LAST_LONG, u);
        }
        return u;
    }
    /* a key string s[0:n] (plain ASCII), through the key cache; s[0:avail] readable;
       *ep: its cache entry (NULL for a key of more than 32 bytes) */
    static inline PyObject* cc_plain_key(const unsigned char* s, Py_ssize_t n, Py_ssize_t avail, cc_kentry** ep) {
        uint64_t w[4];
        cc_kentry* e;
        PyObject* u;
        *ep = NULL;
        if (n > 32) return cc_ascii(s, n);
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (n <= 8 && avail >= 8) {
            /* a short key (most are): one word; the slot and the entry are the ones
               cc_kslot and cc_khit give (their other words are zero) */
            uint64_t w0, h;
            memcpy(&w0, s, 8);
            if (n < 8) w0 &= (1ULL << (8 * n)) - 1;
            h = (w0 * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)n;
            h ^= h >> 31;
            h *= 0x94D049BB133111EBULL;
            e = &CC_KCACHE[h >> 54];
            *ep = e;
            if (e->s != NULL && e->length == (int)n && e->w[0] == w0)   /* its words after the first are zero */
                return cc_kuse(e);
            w[0] = w0; w[1] = w[2] = w[3] = 0;
        } else
    #endif
        {
            e = cc_kslot(s, n, avail, w);
            *ep = e;
            if (cc_khit(e, n, w)) return cc_kuse(e);
        }
        u = cc_ascii(s, n);
        if (u == NULL) return NULL;
        Py_XDECREF(e->s);
        Py_INCREF(u);
        e->s = u;
        e->length = (int)n;
        memcpy(e->w, w, sizeof(w));
        e->interned = 0;
        e->kid = cc_classify(s, n);
        return u;
    }
    /* The key whose text starts at d[p] (after its '"'), when it is the one guessed: the
       key of cache entry g (of g->length <= 32 bytes) followed by its closing '"'.  A dict
       of the same shape as the last one (a stream's documents, a view's values) has its
       keys in the same order: each entry remembers the one that followed it (next), so the
       key is found by comparing its bytes with the guess (one to four words) instead of
       scanning for its end, hashing it and looking it up.  The bytes compared are the
       whole key up to its closing quote, and the entry's bytes are plain ASCII (no quote,
       backslash or control byte), so a match is exactly that key.  Returns the str (a new
       reference) and sets *qp to the closing quote's index, or NULL (no match: the caller
       takes the usual path).  Needs 33 readable bytes from d[p]. */
    static inline PyObject* cc_guess_key(const unsigned char* d, Py_ssize_t p, Py_ssize_t n,
                                         const cc_kentry* g, Py_ssize_t* qp) {
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        Py_ssize_t len;
        uint64_t w;
        if (g == NULL || p + 33 > n) return NULL;   /* a linked entry is a filled one (never emptied) */
        len = g->length;
        if (d[p + len] != '"') return NULL;
        memcpy(&w, d + p, 8);
        if (len < 8) {
            if ((w & ((1ULL << (8 * len)) - 1)) != g->w[0]) return NULL;
        } else {
            uint64_t w1, w2, w3;
            if (w != g->w[0]) return NULL;
            memcpy(&w1, d + p + 8, 8);
            if (len < 16) {
                if ((w1 & ((1ULL << (8 * (len - 8))) - 1)) != g->w[1]) return NULL;
            } else {
                if (w1 != g->w[1]) return NULL;
                memcpy(&w2, d + p + 16, 8);
                if (len < 24) {
                    if ((w2 & ((1ULL << (8 * (len - 16))) - 1)) != g->w[2]) return NULL;
                } else {
                    if (w2 != g->w[2]) return NULL;
                    memcpy(&w3, d + p + 24, 8);
                    if (len < 32) {
                        if ((w3 & ((1ULL << (8 * (len - 24))) - 1)) != g->w[3]) return NULL;
                    } else if (w3 != g->w[3]) return NULL;
                }
            }
        }
        *qp = p + len;
        return cc_kuse((cc_kentry*)g);
    #else
        (void)d; (void)p; (void)n; (void)g; (void)qp;
        return NULL;
    #endif
    }
    /* the first key of the last dict filled, by kind of dict: plain (0) or Document (1),
       at nesting depth 1, 2, 3+ (the guess for the next such dict's first key) */
    static cc_kentry* CC_FIRST_KEY[2][4];
    static PyTypeObject* CC_DOC_TYPE = NULL;
    static PyObject* CC_EMPTY_TUPLE = NULL;
    static PyObject* cc_container(const unsigned char* d, Py_ssize_t p, Py_ssize_t n,
                                  int lines, int depth, int as_doc, Py_ssize_t* endp);
    static PyObject* cc_plain_container(const unsigned char* d, Py_ssize_t p, Py_ssize_t n,
                                        int lines, int depth, Py_ssize_t* endp);
    /* the value at d[p] (p < n); inlined into its callers, so that a scalar (most values)
       costs no call: only a nested dict/list is a call (to cc_container) */
    #if defined(__GNUC__)
    #define CC_INLINE static inline __attribute__((always_inline))
    #else
    #define CC_INLINE static inline
    #endif
    CC_INLINE PyObject* cc_plain_value(const unsigned char* d, Py_ssize_t p, Py_ssize_t n,
                                           int lines, int depth, Py_ssize_t* endp) {
        unsigned char c = d[p];
        Py_ssize_t q, ln;
        if (c == '{' || c == '[') return cc_container(d, p, n, lines, depth + 1, 0, endp);
        if (c == '"') {
            int high;
            q = cc_plain_str(d, p + 1, n, &high);
            if (q < 0) goto giveup;
            *endp = q + 1;
            if (high) return cc_utf8(d + p + 1, q - p - 1);
            if (q - p - 1 <= 16) return cc_short_ascii(d + p + 1, q - p - 1, n - p - 1);
            return cc_long_ascii(d + p + 1, q - p - 1);
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            long long iv;
            double dv;
            int isf, r = cc_number_scan(d + p, n - p, &ln, &iv, &dv, &isf);
            q = p + ln;
            if (r <= 0 || q >= n || cc_scalar_char(d[q])) goto giveup;
            *endp = q;
            if (r == 2) return PyFloat_FromDouble(dv);
            return cc_int(iv);
        }
        if (c == 't' && p + 4 < n && memcmp(d + p, "true", 4) == 0 && !cc_scalar_char(d[p + 4])) {
            *endp = p + 4;
            Py_RETURN_TRUE;
        }
        if (c == 'f' && p + 5 < n && memcmp(d + p, "false", 5) == 0 && !cc_scalar_char(d[p + 5])) {
            *endp = p + 5;
            Py_RETURN_FALSE;
        }
        if (c == 'n' && p + 4 < n && memcmp(d + p, "null", 4) == 0 && !cc_scalar_char(d[p + 4])) {
            *endp = p + 4;
            Py_RETURN_NONE;
        }
    giveup:
        Py_INCREF(CC_GIVEUP);
        return CC_GIVEUP;
    }
    /* A list of the k >= 1 owned references items[0..k-1] (stolen, also on failure).
       PyList_New(k) zero-fills its item array (PyMem_Calloc: a memset call, ~60
       instructions for a 2-item list) only for the caller to overwrite it; here the
       array is PyMem_Malloc'd and filled, then given to an empty list (ob_item/allocated
       are the documented PyListObject fields; list_dealloc and list_resize free/resize
       ob_item with PyMem_Free/PyMem_Realloc, as PyList_New's array).  Not on the
       free-threaded build, whose lists keep their item arrays in another allocation. */
    CC_INLINE PyObject* cc_list_steal(PyObject** items, Py_ssize_t k) {
        PyObject* lst;
        Py_ssize_t i;
    #if !defined(Py_GIL_DISABLED)
        PyObject** a;
        lst = PyList_New(0);
        if (lst == NULL) goto fail;
        a = (PyObject**)PyMem_Malloc((size_t)k * sizeof(PyObject*));
        if (a == NULL) { Py_DECREF(lst); PyErr_NoMemory(); goto fail; }
        for (i = 0; i < k; i++) a[i] = items[i];
        ((PyListObject*)lst)->ob_item = a;
        ((PyListObject*)lst)->allocated = k;
        Py_SET_SIZE(lst, k);
        return lst;
    #else
        lst = PyList_New(k);
        if (lst == NULL) goto fail;
        for (i = 0; i < k; i++) PyList_SET_ITEM(lst, i, items[i]);
        return lst;
    #endif
    fail:
        for (i = 0; i < k; i++) Py_DECREF(items[i]);
        return NULL;
    }
    /* Documents built as plain dicts and then given their type (CC_DOC_AS_DICT, set by
       cc_set_types): a Document is a dict subclass with no fields of its own (same size,
       no __dict__, no weak references, freed by PyObject_GC_Del as a dict is), so a dict
       from PyDict_New/_PyDict_NewPresized whose ob_type is then Document is the object
       Document's tp_new (dict_new: PyType_GenericAlloc + memset) makes, tracked by the
       GC as that one is.  dict_dealloc frees a non-exact dict with tp_free
       (PyObject_GC_Del), never into the dict free list.  Not on the free-threaded build. */
    static int CC_DOC_AS_DICT = 0;
    /* the number of pairs of the last Document built: the next one is made with a table
       for as many (a stream's documents tend to have the same keys), so that its 6th
       insert does not resize the table (a dict's first table holds 5); more pairs than
       that resize as usual, fewer leave slots unused */
    #define CC_DOC_HINT_MAX 64
    static Py_ssize_t CC_DOC_HINT = 0;
    static PyObject* cc_dict_sized(Py_ssize_t n);
    /* a new empty Document, with a table for CC_DOC_HINT pairs */
    CC_INLINE PyObject* cc_new_doc(void) {
        PyObject* dict;
        if (!CC_DOC_AS_DICT)
            return CC_DOC_TYPE->tp_new(CC_DOC_TYPE, CC_EMPTY_TUPLE, NULL);
    #if CC_PRESIZE
        /* _PyDict_NewPresized: what Cython uses for dict displays (3.10-3.13); it gives
           PyDict_New() for <= 5; on 3.11 a unicode table of the same size (cc_dict_sized) */
        dict = cc_dict_sized(CC_DOC_HINT);
    #else
        dict = PyDict_New();
    #endif
        if (dict == NULL) return NULL;
        if (CC_DOC_TYPE->tp_flags & Py_TPFLAGS_HEAPTYPE) Py_INCREF(CC_DOC_TYPE);
        Py_SET_TYPE(dict, CC_DOC_TYPE);
        if (!PyObject_GC_IsTracked(dict)) PyObject_GC_Track(dict);
        return dict;
    }
    /* PyDict_SetItem for a key that is an exact str (the parser's keys): with its cached
       hash when it has one, through _PyDict_SetItem_KnownHash (exported on 3.10-3.13;
       declared in cpython/dictobject.h up to 3.12) */
    #if CC_PRESIZE
    #if PY_VERSION_HEX >= 0x030D0000
    PyAPI_FUNC(int) _PyDict_SetItem_KnownHash(PyObject* mp, PyObject* key, PyObject* item, Py_hash_t hash);
    #endif
    CC_INLINE int cc_setitem_str(PyObject* dict, PyObject* key, PyObject* v) {
        Py_hash_t h = ((PyASCIIObject*)key)->hash;
        if (h == -1) return PyDict_SetItem(dict, key, v);
        return _PyDict_SetItem_KnownHash(dict, key, v, h);
    }
    #else
    #define cc_setitem_str PyDict_SetItem
    #endif
    /* A parsed pair put into the dict the parser is filling (CPython 3.11 only: CC_DICTFILL).
       What insertdict does for a key that is not in the table yet, without its call chain
       (PyDict_SetItem -> insertdict -> _Py_dict_lookup -> find_empty_slot, ~160
       instructions an insert): probe the index table from the key's cached hash as
       find_empty_slot does (i = hash & mask, then i = i*5 + perturb + 1 with perturb
       shifted by 5), store the entry at dk_entries[dk_nentries] and its index in that slot,
       and count it (dk_usable, dk_nentries, ma_used; dk_version reset), tracking the dict
       as MAINTAIN_TRACKING does. The resulting table is the one insertdict makes: the
       same slots, entries and order.  The layout of the keys object (Include/internal/
       pycore_dict.h, not part of the public headers) is mirrored by cc_dk311 and checked
       at import against dicts filled by PyDict_SetItem (cc_dictfill_check); the fast path
       is off unless the check passes.  Anything unusual takes PyDict_SetItem's path: a key
       without a cached hash, a probed entry of the same hash (the same key again, or a
       collision: PyDict_SetItem compares and replaces), a full table (it resizes), the
       empty shared table of a new dict (dk_usable 0), a general-but-odd table, tables of
       more than 128 slots (wider indices).  The dicts filled here are never split tables
       (PyDict_New, _PyDict_NewPresized, cc_dict_sized and dict_new for a Document make
       combined ones: ma_values NULL), so only the first pair's test looks at ma_values.
       ma_version_tag keeps the value the dict got when it was made (the global version
       counter is not exported; the dict is not visible to anyone before the parser
       returns it). */
    #if CC_PRESIZE && PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000 && !defined(Py_GIL_DISABLED)
    #define CC_DICTFILL 1
    typedef struct {
        Py_ssize_t dk_refcnt;
        uint8_t dk_log2_size;
        uint8_t dk_log2_index_bytes;
        uint8_t dk_kind;
        uint32_t dk_version;
        Py_ssize_t dk_usable;
        Py_ssize_t dk_nentries;
        char dk_indices[];
    } cc_dk311;
    typedef struct { Py_hash_t me_hash; PyObject* me_key; PyObject* me_value; } cc_dke311;
    typedef struct { PyObject* me_key; PyObject* me_value; } cc_dku311;
    #define CC_DK_GENERAL 0
    #define CC_DK_UNICODE 1
    #else
    #define CC_DICTFILL 0
    #endif
    static int CC_DICTFILL_ON = 0;
    static int CC_DICTSIZED_ON = 0;
    /* An empty dict with a table for n pairs: _PyDict_NewPresized(n) (a general table: 24
       bytes an entry, memset), but on 3.11 with the direct fill on, for 6 <= n <= 85, the
       table of the same size of the unicode kind, the kind a dict of str keys gets when
       filled from empty (16 bytes an entry, and the lookups for str keys): made as
       new_keys_object makes it (PyObject_Malloc'd, indices DKIX_EMPTY, entries zeroed) and
       put in place of the shared empty table of a PyDict_New() dict (whose reference
       PyDict_New took is given back; checked at import: cc_dictfill_check). */
    static PyObject* cc_dict_sized(Py_ssize_t n) {
    #if CC_DICTFILL
        if (CC_DICTSIZED_ON && n > 5 && n <= 85) {
            Py_ssize_t est = (n * 3 + 1) >> 1, size, usable;
            uint8_t log2 = 3;
            cc_dk311* k;
            PyObject* d;
            while (((Py_ssize_t)1 << log2) < est) log2++;     /* calculate_log2_keysize */
            size = (Py_ssize_t)1 << log2;
            usable = (size << 1) / 3;                           /* USABLE_FRACTION */
            k = (cc_dk311*)PyObject_Malloc(sizeof(cc_dk311) + (size_t)size + (size_t)usable * sizeof(cc_dku311));
            if (k == NULL) return PyErr_NoMemory();
            k->dk_refcnt = 1;
            k->dk_log2_size = log2;
            k->dk_log2_index_bytes = log2;                      /* 1-byte indices below 256 slots */
            k->dk_kind = CC_DK_UNICODE;
            k->dk_version = 0;
            k->dk_usable = usable;
            k->dk_nentries = 0;
            memset(k->dk_indices, 0xff, (size_t)size);
            memset(k->dk_indices + size, 0, (size_t)usable * sizeof(cc_dku311));
            d = PyDict_New();
            if (d == NULL) { PyObject_Free(k); return NULL; }
            ((cc_dk311*)((PyDictObject*)d)->ma_keys)->dk_refcnt--;
            ((PyDictObject*)d)->ma_keys = (PyDictKeysObject*)k;
            return d;
        }
    #endif
        return _PyDict_NewPresized(n);
    }
    #if CC_DICTFILL
    /* the shared empty table of PyDict_New() dicts (set by cc_dictfill_check when the first
       insert may go through cc_dict_put, else NULL) */
    static cc_dk311* CC_EMPTY_KEYS = NULL;
    /* the table insert_to_emptydict gives a dict's first str key (new_keys_object(
       PyDict_LOG_MINSIZE, unicode): 8 slots, 5 usable, of the size of the ones on the
       keys free list, which free_keys_object may put it on) */
    static cc_dk311* cc_new_keys8(void) {
        cc_dk311* k = (cc_dk311*)PyObject_Malloc(sizeof(cc_dk311) + 8 + 5 * sizeof(cc_dku311));
        if (k == NULL) { PyErr_NoMemory(); return NULL; }
        k->dk_refcnt = 1;
        k->dk_log2_size = 3;
        k->dk_log2_index_bytes = 3;
        k->dk_kind = CC_DK_UNICODE;
        k->dk_version = 0;
        k->dk_usable = 5;
        k->dk_nentries = 0;
        memset(k->dk_indices, 0xff, 8);
        memset(k->dk_indices + 8, 0, 5 * sizeof(cc_dku311));
        return k;
    }
    #endif
    /* dict[key] = v for an exact str key (the parser's keys); steals both references, also
       on failure (-1, exception set) */
    CC_INLINE int cc_dict_put(PyObject* dict, PyObject* key, PyObject* v) {
        int r;
    #if CC_DICTFILL
        Py_hash_t h = ((PyASCIIObject*)key)->hash;
        PyDictObject* mp = (PyDictObject*)dict;
        cc_dk311* k = (cc_dk311*)mp->ma_keys;
        if (k == CC_EMPTY_KEYS && h != -1 && mp->ma_values == NULL) {
            /* the dict's first pair (PyDict_New: the shared empty table): its own table
               made here, as insert_to_emptydict makes it, then filled as below */
            cc_dk311* nk = cc_new_keys8();
            if (nk == NULL) { Py_DECREF(key); Py_DECREF(v); return -1; }
            k->dk_refcnt--;              /* dictkeys_decref(Py_EMPTY_KEYS): never reaches 0 */
            mp->ma_keys = (PyDictKeysObject*)nk;
            k = nk;
        }
        if (CC_DICTFILL_ON && h != -1 && k->dk_usable > 0 && k->dk_log2_size < 8) {
            size_t mask = ((size_t)1 << k->dk_log2_size) - 1, i = (size_t)h & mask, perturb = (size_t)h;
            int8_t* ind = (int8_t*)k->dk_indices;
            char* ents = k->dk_indices + ((size_t)1 << k->dk_log2_index_bytes);
            Py_ssize_t ix, at = k->dk_nentries;
            if (k->dk_kind == CC_DK_UNICODE) {
                cc_dku311* e = (cc_dku311*)ents;
                while ((ix = ind[i]) >= 0) {
                    if (((PyASCIIObject*)e[ix].me_key)->hash == h) goto slow;
                    perturb >>= 5;
                    i = (i * 5 + perturb + 1) & mask;
                }
                if (ix != -1) goto slow;
                e[at].me_key = key;
                e[at].me_value = v;
            } else if (k->dk_kind == CC_DK_GENERAL) {
                cc_dke311* e = (cc_dke311*)ents;
                while ((ix = ind[i]) >= 0) {
                    if (e[ix].me_hash == h) goto slow;
                    perturb >>= 5;
                    i = (i * 5 + perturb + 1) & mask;
                }
                if (ix != -1) goto slow;
                e[at].me_hash = h;
                e[at].me_key = key;
                e[at].me_value = v;
            } else {
                goto slow;
            }
            ind[i] = (int8_t)at;
            k->dk_version = 0;
            k->dk_usable--;
            k->dk_nentries = at + 1;
            mp->ma_used++;
            /* MAINTAIN_TRACKING: PyObject_IS_GC(v) inline (a scalar: one flag test) */
            if (PyType_HasFeature(Py_TYPE(v), Py_TPFLAGS_HAVE_GC)
                    && (Py_TYPE(v)->tp_is_gc == NULL || Py_TYPE(v)->tp_is_gc(v))
                    && !PyObject_GC_IsTracked(dict)
                    && (!PyTuple_CheckExact(v) || PyObject_GC_IsTracked(v)))
                PyObject_GC_Track(dict);
            return 0;
        }
    slow:
    #endif
        r = cc_setitem_str(dict, key, v);
        Py_DECREF(key);
        Py_DECREF(v);
        return r;
    }
    /* The import-time check of CC_DICTFILL's layout assumptions: dicts filled by
       PyDict_SetItem (one starting empty: a unicode table; one made by _PyDict_NewPresized:
       a general table) are compared with the same pairs put by cc_dict_put (after a first
       PyDict_SetItem, as the parser's first insert into an empty dict): the keys objects'
       fields, index bytes and entries must be equal.  Returns 1 and switches the fast path
       on when they are; 0 otherwise (the fast path stays off). */
    static int cc_dictfill_check(PyObject* keys) {
    #if CC_DICTFILL
        int ok = 0, pass, kind;
        Py_ssize_t i, nk;
        PyObject* a = NULL;
        PyObject* b = NULL;
        CC_DICTFILL_ON = 0;
        CC_EMPTY_KEYS = NULL;
        for (pass = 0; pass < 2; pass++) {
            cc_dk311* ka;
            cc_dk311* kb;
            size_t isz, esz;
            if (PyList_GET_SIZE(keys) < 6 || PyList_GET_SIZE(keys) > 80) goto done;
            nk = pass ? PyList_GET_SIZE(keys) : 5;   /* 5: the most a new dict's first table holds */
            a = pass ? _PyDict_NewPresized(nk) : PyDict_New();
            b = pass ? _PyDict_NewPresized(nk) : PyDict_New();
            if (a == NULL || b == NULL) goto done;
            for (i = 0; i < nk; i++) {
                PyObject* key = PyList_GET_ITEM(keys, i);
                PyObject* v = PyLong_FromSsize_t(i);
                if (v == NULL) goto done;
                if (!PyUnicode_CheckExact(key) || PyObject_Hash(key) == -1 || PyDict_SetItem(a, key, v) < 0) { Py_DECREF(v); goto done; }
                Py_INCREF(key);
                if (i == 0 && !pass) {
                    if (PyDict_SetItem(b, key, v) < 0) { Py_DECREF(key); Py_DECREF(v); goto done; }
                    Py_DECREF(key); Py_DECREF(v);
                } else {
                    CC_DICTFILL_ON = 1;
                    if (cc_dict_put(b, key, v) < 0) { CC_DICTFILL_ON = 0; goto done; }
                    CC_DICTFILL_ON = 0;
                }
            }
            ka = (cc_dk311*)((PyDictObject*)a)->ma_keys;
            kb = (cc_dk311*)((PyDictObject*)b)->ma_keys;
            kind = pass ? CC_DK_GENERAL : CC_DK_UNICODE;
            if (ka->dk_kind != kind || kb->dk_kind != kind || ka->dk_log2_size != kb->dk_log2_size
                    || ka->dk_log2_size >= 8 || ka->dk_log2_index_bytes != ka->dk_log2_size
                    || kb->dk_log2_index_bytes != ka->dk_log2_index_bytes
                    || ka->dk_usable != kb->dk_usable || ka->dk_nentries != nk || kb->dk_nentries != nk
                    || ka->dk_refcnt != 1 || kb->dk_refcnt != 1
                    || ((PyDictObject*)a)->ma_used != nk || ((PyDictObject*)b)->ma_used != nk
                    || ((PyDictObject*)a)->ma_values != NULL || ((PyDictObject*)b)->ma_values != NULL)
                goto done;
            if (pass == 0 && (ka->dk_log2_size != 3 || ka->dk_usable != 5 - nk)) goto done;
            isz = (size_t)1 << ka->dk_log2_index_bytes;
            esz = (size_t)nk * (pass ? sizeof(cc_dke311) : sizeof(cc_dku311));
            if (memcmp(ka->dk_indices, kb->dk_indices, isz + esz) != 0) goto done;
            for (i = 0; i < nk; i++) {
                PyObject* key = PyList_GET_ITEM(keys, i);
                PyObject* ek = pass ? ((cc_dke311*)(ka->dk_indices + isz))[i].me_key
                                    : ((cc_dku311*)(ka->dk_indices + isz))[i].me_key;
                if (ek != key) goto done;
            }
            Py_CLEAR(a);
            Py_CLEAR(b);
        }
        ok = 1;
        /* cc_dict_sized: PyDict_New() takes a reference to the shared empty table (the
           count must go up by one a dict, and back when it dies); a sized table of the
           9 keys (16 slots) filled by cc_dict_put must equal the one PyDict_SetItem grows
           to from empty (5 pairs, then a resize to 16 slots) */
        {
            Py_ssize_t r0, r1, r2;
            cc_dk311* e;
            cc_dk311* ka;
            cc_dk311* kb;
            CC_DICTSIZED_ON = 0;
            a = PyDict_New();
            if (a == NULL) goto done;
            e = (cc_dk311*)((PyDictObject*)a)->ma_keys;
            r0 = e->dk_refcnt;
            b = PyDict_New();
            if (b == NULL) goto done;
            r1 = e->dk_refcnt;
            Py_CLEAR(b);
            r2 = e->dk_refcnt;
            if (r1 != r0 + 1 || r2 != r0 || e->dk_usable != 0 || e->dk_nentries != 0
                    || ((cc_dk311*)((PyDictObject*)a)->ma_keys) != e)
                goto sized_done;
            nk = PyList_GET_SIZE(keys);
            if (nk != 9) goto sized_done;
            CC_DICTSIZED_ON = 1;
            b = cc_dict_sized(nk);
            CC_DICTSIZED_ON = 0;
            if (b == NULL) goto done;
            if (e->dk_refcnt != r0) goto sized_done;
            CC_DICTFILL_ON = 1;
            for (i = 0; i < nk; i++) {
                PyObject* key = PyList_GET_ITEM(keys, i);
                PyObject* v = PyLong_FromSsize_t(i);
                if (v == NULL) { CC_DICTFILL_ON = 0; goto done; }
                if (PyDict_SetItem(a, key, v) < 0) { Py_DECREF(v); CC_DICTFILL_ON = 0; goto done; }
                Py_INCREF(key);
                if (cc_dict_put(b, key, v) < 0) { CC_DICTFILL_ON = 0; goto done; }
            }
            CC_DICTFILL_ON = 0;
            ka = (cc_dk311*)((PyDictObject*)a)->ma_keys;
            kb = (cc_dk311*)((PyDictObject*)b)->ma_keys;
            if (ka->dk_kind != CC_DK_UNICODE || kb->dk_kind != CC_DK_UNICODE
                    || ka->dk_log2_size != 4 || kb->dk_log2_size != 4 || kb->dk_log2_index_bytes != 4
                    || ka->dk_usable != kb->dk_usable || ka->dk_nentries != nk || kb->dk_nentries != nk
                    || memcmp(ka->dk_indices, kb->dk_indices, 16 + (size_t)nk * sizeof(cc_dku311)) != 0
                    || _PyDict_SizeOf((PyDictObject*)a) != _PyDict_SizeOf((PyDictObject*)b))
                goto sized_done;
            CC_DICTSIZED_ON = 1;
            /* a dict's first pair put by cc_dict_put into its own 8-slot table: 5 keys as
               PyDict_SetItem puts them (from insert_to_emptydict on) */
            Py_CLEAR(a);
            Py_CLEAR(b);
            r0 = e->dk_refcnt;
            a = PyDict_New();
            b = PyDict_New();
            if (a == NULL || b == NULL) goto done;
            CC_EMPTY_KEYS = e;
            CC_DICTFILL_ON = 1;
            for (i = 0; i < 5; i++) {
                PyObject* key = PyList_GET_ITEM(keys, i);
                PyObject* v = PyLong_FromSsize_t(i);
                if (v == NULL) { CC_DICTFILL_ON = 0; CC_EMPTY_KEYS = NULL; goto done; }
                if (PyDict_SetItem(a, key, v) < 0) { Py_DECREF(v); CC_DICTFILL_ON = 0; CC_EMPTY_KEYS = NULL; goto done; }
                Py_INCREF(key);
                if (cc_dict_put(b, key, v) < 0) { CC_DICTFILL_ON = 0; CC_EMPTY_KEYS = NULL; goto done; }
            }
            CC_DICTFILL_ON = 0;
            ka = (cc_dk311*)((PyDictObject*)a)->ma_keys;
            kb = (cc_dk311*)((PyDictObject*)b)->ma_keys;
            if (e->dk_refcnt != r0 || ka == e || kb == e || kb->dk_kind != CC_DK_UNICODE
                    || ka->dk_kind != CC_DK_UNICODE || ka->dk_log2_size != 3 || kb->dk_log2_size != 3
                    || ka->dk_log2_index_bytes != 3 || ka->dk_usable != 0 || kb->dk_usable != 0
                    || ka->dk_nentries != 5 || kb->dk_nentries != 5 || kb->dk_refcnt != 1
                    || memcmp(ka->dk_indices, kb->dk_indices, 8 + 5 * sizeof(cc_dku311)) != 0
                    || _PyDict_SizeOf((PyDictObject*)a) != _PyDict_SizeOf((PyDictObject*)b))
                CC_EMPTY_KEYS = NULL;
        sized_done:
            Py_CLEAR(a);
            Py_CLEAR(b);
        }
    done:
        Py_XDECREF(a);
        Py_XDECREF(b);
        if (PyErr_Occurred()) PyErr_Clear();
        CC_DICTFILL_ON = ok;
        if (!ok) CC_DICTSIZED_ON = 0;
        if (!CC_DICTSIZED_ON) CC_EMPTY_KEYS = NULL;
        return ok;
    #else
        (void)keys;
        return 0;
    #endif
    }
    static int cc_dictfill_on(void) {
    #if CC_DICTFILL
        return CC_DICTFILL_ON + 2 * CC_DICTSIZED_ON + 4 * (CC_EMPTY_KEYS != NULL);
    #else
        return 0;
    #endif
    }
    static void cc_dictfill_set(int on) {
        CC_DICTFILL_ON = on && CC_DICTFILL;
        if (!CC_DICTFILL_ON) {
            CC_DICTSIZED_ON = 0;
    #if CC_DICTFILL
            CC_EMPTY_KEYS = NULL;
    #endif
        }
    }
    /* the dict or list at d[p] ('{' or '[') */
    static PyObject* cc_plain_container(const unsigned char* d, Py_ssize_t p, Py_ssize_t n,
                                        int lines, int depth, Py_ssize_t* endp) {
        return cc_container(d, p, n, lines, depth, 0, endp);
    }
    /* the dict (a Document when as_doc) or list at d[p] ('{' or '[') */
    CC_HOT static PyObject* cc_container(const unsigned char* d, Py_ssize_t p, Py_ssize_t n,
                                  int lines, int depth, int as_doc, Py_ssize_t* endp) {
        PyObject* v;
        PyObject* key;
        Py_ssize_t q;
        unsigned char c;
        int high;
        if (depth > CC_PLAIN_DEPTH) goto giveup_nothing;
        if (d[p] == '{') {
            PyObject* dict = as_doc ? cc_new_doc() : PyDict_New();
            if (dict == NULL) return NULL;
            p++;
            if (p >= n || d[p] <= 32) p = cc_ws(d, p, n, lines);
            if (p >= n) goto giveup_dict;
            if (d[p] == '}') { *endp = p + 1; return dict; }
            {
            /* link: where the entry of the next key is remembered (the dict kind's first
               key, then the previous key's entry's next; NULL after an uncached key) */
            cc_kentry** link = &CC_FIRST_KEY[as_doc != 0][depth < 3 ? depth : 3];
            cc_kentry* e;
            for (;;) {
                if (d[p] != '"') goto giveup_dict;
                key = link != NULL ? cc_guess_key(d, p + 1, n, *link, &q) : NULL;
                if (key != NULL) {
                    e = *link;
                } else {
                    q = cc_plain_str(d, p + 1, n, &high);
                    if (q < 0 || high) goto giveup_dict;
                    key = cc_plain_key(d + p + 1, q - p - 1, n - p - 1, &e);
                    if (key == NULL) { Py_DECREF(dict); return NULL; }
                    if (link != NULL) *link = e;
                }
                link = e != NULL ? &e->next : NULL;
                p = q + 1;
                if (p < n && d[p] == ':') p++;
                else {
                    p = cc_ws(d, p, n, lines);
                    if (p >= n || d[p] != ':') { Py_DECREF(key); goto giveup_dict; }
                    p++;
                }
                if (p >= n || d[p] <= 32) {
                    p = cc_ws(d, p, n, lines);
                    if (p >= n) { Py_DECREF(key); goto giveup_dict; }
                }
                v = cc_plain_value(d, p, n, lines, depth, &q);
                if (v == NULL || v == CC_GIVEUP) {
                    Py_DECREF(key);
                    Py_DECREF(dict);
                    return v;           /* NULL (error) or CC_GIVEUP (a new reference) */
                }
                if (cc_dict_put(dict, key, v) < 0) {     /* takes key and v */
                    Py_DECREF(dict);
                    return NULL;
                }
                p = q;
                if (p >= n || d[p] <= 32) {
                    p = cc_ws(d, p, n, lines);
                    if (p >= n) goto giveup_dict;
                }
                c = d[p];
                if (c == ',') {
                    p++;
                    if (p >= n || d[p] <= 32) {
                        p = cc_ws(d, p, n, lines);
                        if (p >= n) goto giveup_dict;
                    }
                    continue;
                }
                if (c == '}') {
                    *endp = p + 1;
                    if (as_doc) {
                        Py_ssize_t u = PyDict_GET_SIZE(dict);
                        CC_DOC_HINT = u <= CC_DOC_HINT_MAX ? u : CC_DOC_HINT_MAX;
                    }
                    return dict;
                }
                goto giveup_dict;
            }
            }
        giveup_dict:
            Py_DECREF(dict);
            goto giveup_nothing;
        } else {
            PyObject* items[8];
            PyObject* lst = NULL;
            Py_ssize_t k = 0, i;
            p++;
            if (p >= n || d[p] <= 32) p = cc_ws(d, p, n, lines);
            if (p >= n) goto giveup_nothing;
            if (d[p] == ']') { *endp = p + 1; return PyList_New(0); }
            for (;;) {
                v = cc_plain_value(d, p, n, lines, depth, &q);
                if (v == NULL || v == CC_GIVEUP) {
                    for (i = 0; i < k; i++) Py_DECREF(items[i]);
                    Py_XDECREF(lst);
                    return v;
                }
                if (lst != NULL) {
                    if (PyList_Append(lst, v) < 0) { Py_DECREF(v); Py_DECREF(lst); return NULL; }
                    Py_DECREF(v);
                } else if (k < 8) {
                    items[k++] = v;      /* owned */
                } else {
                    lst = cc_list_steal(items, k);
                    k = 0;
                    if (lst == NULL) { Py_DECREF(v); return NULL; }
                    if (PyList_Append(lst, v) < 0) { Py_DECREF(v); Py_DECREF(lst); return NULL; }
                    Py_DECREF(v);
                }
                p = q;
                if (p >= n || d[p] <= 32) {
                    p = cc_ws(d, p, n, lines);
                    if (p >= n) goto giveup_list;
                }
                c = d[p];
                if (c == ',') {
                    p++;
                    if (p >= n || d[p] <= 32) {
                        p = cc_ws(d, p, n, lines);
                        if (p >= n) goto giveup_list;
                    }
                    continue;
                }
                if (c == ']') {
                    *endp = p + 1;
                    if (lst == NULL) return cc_list_steal(items, k);   /* k >= 1 */
                    return lst;
                }
                goto giveup_list;
            }
        giveup_list:
            for (i = 0; i < k; i++) Py_DECREF(items[i]);
            Py_XDECREF(lst);
            goto giveup_nothing;
        }
    giveup_nothing:
        Py_INCREF(CC_GIVEUP);
        return CC_GIVEUP;
    }
    /* A view row object at d[p] ('{'): its fields into f[0..5] (id, key, value, doc, error,
       reason; new references, NULL where absent), like RowParser._fast_rowv: other keys
       are parsed and dropped, a later duplicate replaces an earlier one, "doc" objects are
       Documents.  Returns 1 (done, *endp set), 0 (gave up: f[] all NULL), -1 (error). */
    /* The keys of the last view row, in order (up to CC_ROWK_N of <= 8 bytes): the next
       row's keys are guessed from them (rows of a view all look alike) -- a key whose bytes
       up to its closing quote equal the guess (one masked word) is that key, without the
       scan for its end and cc_classify.  mask: the bytes of a key of len bytes in a word
       (0 and w = 1 for no guess: no masked word equals 1). */
    #define CC_ROWK_N 8
    typedef struct { uint64_t mask; uint64_t w; int len; int kid; } cc_rowk;
    static cc_rowk CC_ROWK[CC_ROWK_N] = {{0, 1, 0, 0}, {0, 1, 0, 0}, {0, 1, 0, 0}, {0, 1, 0, 0},
                                         {0, 1, 0, 0}, {0, 1, 0, 0}, {0, 1, 0, 0}, {0, 1, 0, 0}};
    CC_HOT static int cc_view_row(const unsigned char* d, Py_ssize_t p, Py_ssize_t n, int lines,
                           PyObject** f, Py_ssize_t* endp) {
        Py_ssize_t q;
        PyObject* v;
        int kid, high, i, ki = 0;
        unsigned char c;
        for (i = 0; i < 6; i++) f[i] = NULL;
        p++;
        if (p >= n || d[p] <= 32) p = cc_ws(d, p, n, lines);
        if (p >= n) goto giveup;
        if (d[p] == '}') { *endp = p + 1; return 1; }
        for (;;) {
            if (d[p] != '"') goto giveup;
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            if (ki < CC_ROWK_N && p + 10 <= n) {
                /* 8 bytes after the quote and the byte after the guessed key readable
                   (len <= 8: p + 1 + len <= p + 9 < n) */
                const cc_rowk* g = &CC_ROWK[ki];
                uint64_t w;
                memcpy(&w, d + p + 1, 8);
                if ((w & g->mask) == g->w && d[p + 1 + g->len] == '"') {
                    kid = g->kid;
                    q = p + 1 + g->len;
                    goto key_done;
                }
            }
    #endif
            q = cc_plain_str(d, p + 1, n, &high);
            if (q < 0 || high) goto giveup;
            kid = cc_classify(d + p + 1, q - p - 1);
            if (ki < CC_ROWK_N) {
                Py_ssize_t len = q - p - 1;
                if (len <= 8) {
                    uint64_t w = 0;
                    memcpy(&w, d + p + 1, (size_t)len);
                    CC_ROWK[ki].mask = len == 8 ? ~0ULL : (1ULL << (8 * len)) - 1;
                    CC_ROWK[ki].w = w;
                    CC_ROWK[ki].kid = kid;
                    CC_ROWK[ki].len = (int)len;
                } else {
                    CC_ROWK[ki].mask = 0;
                    CC_ROWK[ki].w = 1;
                    CC_ROWK[ki].len = 0;
                }
            }
        key_done:
            ki++;
            p = q + 1;
            if (p < n && d[p] == ':') p++;
            else {
                p = cc_ws(d, p, n, lines);
                if (p >= n || d[p] != ':') goto giveup;
                p++;
            }
            if (p >= n || d[p] <= 32) {
                p = cc_ws(d, p, n, lines);
                if (p >= n) goto giveup;
            }
            if (CC_UNLIKELY(kid == CC_K_KEY && d[p] == '"') && f[0] != NULL
                    && PyUnicode_CheckExact(f[0]) && PyUnicode_IS_COMPACT_ASCII(f[0])) {
                /* a key that is the row's id again (_all_docs rows, include_docs views
                   keyed by id): the id is an ASCII str made here from a plain string
                   (cc_plain_value gives up on escapes and control bytes; no quote inside),
                   so a key whose bytes up to its closing quote are the id's characters is a
                   str equal to it: the id's str, shared */
                Py_ssize_t len = PyUnicode_GET_LENGTH(f[0]);
                if (p + 1 + len < n && d[p + 1 + len] == '"'
                        && memcmp(PyUnicode_DATA(f[0]), d + p + 1, (size_t)len) == 0) {
                    v = f[0];
                    Py_INCREF(v);
                    q = p + 2 + len;
                    goto have_value;
                }
            }
            if (kid == CC_K_DOC && d[p] == '{')
                v = cc_container(d, p, n, lines, 1, 1, &q);
            else
                v = cc_plain_value(d, p, n, lines, 0, &q);
            if (v == NULL) goto error;
            if (v == CC_GIVEUP) { Py_DECREF(v); goto giveup; }
        have_value:
            if (kid >= CC_K_ID && kid <= CC_K_REASON) {
                Py_XDECREF(f[kid - 1]);
                f[kid - 1] = v;
            } else {
                Py_DECREF(v);
            }
            p = q;
            if (p >= n || d[p] <= 32) {
                p = cc_ws(d, p, n, lines);
                if (p >= n) goto giveup;
            }
            c = d[p];
            if (c == ',') {
                p++;
                if (p >= n || d[p] <= 32) {
                    p = cc_ws(d, p, n, lines);
                    if (p >= n) goto giveup;
                }
                continue;
            }
            if (c == '}') { *endp = p + 1; return 1; }
            goto giveup;
        }
    giveup:
        for (i = 0; i < 6; i++) Py_CLEAR(f[i]);
        return 0;
    error:
        for (i = 0; i < 6; i++) Py_CLEAR(f[i]);
        return -1;
    }
    /* Rows made in C (checked by _setup_row_fast): Row is either the extension type of
       couchcore_ext._row (CC_ROW_NEW: made with its tp_new, which takes a dead Row from the
       type's free list, and the five fields, None after tp_new, replaced) or the plain
       __slots__ class (allocated with tp_alloc); the five fields are at CC_ROW_OFF. */
    static PyTypeObject* CC_ROW_TYPE = NULL;
    static Py_ssize_t CC_ROW_OFF[5];
    static int CC_ROW_NEW = 0;
    /* couchcore_ext._row's constructor for exact Rows (its capsule _MAKE5; NULL: none) */
    typedef PyObject* (*cc_make5_fn)(PyObject**);
    static cc_make5_fn CC_ROW_MAKE5 = NULL;
    static void cc_set_row_make5(void* f) { CC_ROW_MAKE5 = (cc_make5_fn)f; }
    /* a Row of the five owned references v[0..4] (stolen, none NULL); NULL on error */
    static inline PyObject* cc_new_row5(PyObject** v) {
        PyObject* r;
        PyObject** slot;
        int i;
        if (CC_ROW_MAKE5 != NULL) return CC_ROW_MAKE5(v);   /* steals v[] also on failure */
        if (CC_ROW_NEW) {
            r = CC_ROW_TYPE->tp_new(CC_ROW_TYPE, CC_EMPTY_TUPLE, NULL);
            if (r == NULL) goto fail;
            /* tp_new set the five fields to None (a cdef class's object fields start as None):
               the five references to None it took are given back at once, not one by one */
            for (i = 0; i < 5; i++) {
                slot = (PyObject**)((char*)r + CC_ROW_OFF[i]);
                *slot = v[i];
            }
            Py_SET_REFCNT(Py_None, Py_REFCNT(Py_None) - 5);
            return r;
        }
        r = CC_ROW_TYPE->tp_alloc(CC_ROW_TYPE, 0);
        if (r == NULL) goto fail;
        for (i = 0; i < 5; i++) *(PyObject**)((char*)r + CC_ROW_OFF[i]) = v[i];
        return r;
    fail:
        for (i = 0; i < 5; i++) Py_DECREF(v[i]);
        return NULL;
    }
    /* the Row of fields f[0..5] (owned, NULL = absent; stolen), as _row_from_owned */
    static PyObject* cc_make_row(PyObject** f) {
        PyObject* v[5];
        PyObject* r;
        int i;
        v[0] = f[0]; v[1] = f[1]; v[2] = f[2]; v[3] = f[3]; v[4] = f[4];
        if (v[2] == NULL && v[4] != NULL && v[4] != Py_None) {
            v[2] = f[5];          /* {"error": e, "reason": r} -> Row(error=e, value=r) */
        } else {
            Py_XDECREF(f[5]);
        }
        for (i = 0; i < 5; i++) {
            if (v[i] == NULL) { Py_INCREF(Py_None); v[i] = Py_None; }
        }
        return cc_new_row5(v);
    }
    /* View rows from d[p] (just after a row of the row array): while "," and another row
       object complete in the chunk follow, parse the row and append its Row to out.
       *endp is where the caller continues: after the last row parsed (expecting ',' or
       ']', return 1) or at the '{' of a row the C code gave up on (after its ',', return
       2).  -1: error (exception set). */
    static int cc_view_rows(const unsigned char* d, Py_ssize_t p, Py_ssize_t n, PyObject* out,
                            Py_ssize_t* endp) {
        PyObject* f[6];
        PyObject* row;
        Py_ssize_t q, s;
        int r;
        for (;;) {
            *endp = p;
            q = p < n && d[p] == ',' ? p : cc_ws(d, p, n, 0);
            if (q >= n || d[q] != ',') return 1;
            s = cc_ws(d, q + 1, n, 0);
            if (s >= n || d[s] != '{') return 1;
            r = cc_view_row(d, s, n, 0, f, &q);
            if (r < 0) return -1;
            if (r == 0) { *endp = s; return 2; }
            row = cc_make_row(f);
            if (row == NULL) return -1;
    #if !defined(Py_GIL_DISABLED)
            /* out.append(row), taking the reference: into the list's spare room when it
               has some (ob_item/allocated: the documented PyListObject fields; what
               PyList_Append's own fast path does), else PyList_Append (which resizes) */
            {
                Py_ssize_t m = PyList_GET_SIZE(out);
                if (m < ((PyListObject*)out)->allocated) {
                    PyList_SET_ITEM(out, m, row);
                    Py_SET_SIZE(out, m + 1);
                    p = q;
                    continue;
                }
            }
    #endif
            if (PyList_Append(out, row) < 0) { Py_DECREF(row); return -1; }
            Py_DECREF(row);
            p = q;
        }
    }
    static void cc_set_row(PyObject* row_type, Py_ssize_t* off, int use_new) {
        int i;
        Py_INCREF(row_type);
        Py_XDECREF((PyObject*)CC_ROW_TYPE);
        CC_ROW_TYPE = (PyTypeObject*)row_type;
        for (i = 0; i < 5; i++) CC_ROW_OFF[i] = off[i];
        CC_ROW_NEW = use_new;
    }
    static void cc_set_types(PyObject* doc_type, PyObject* empty_tuple) {
        Py_INCREF(doc_type);
        Py_INCREF(empty_tuple);
        CC_DOC_TYPE = (PyTypeObject*)doc_type;
        CC_EMPTY_TUPLE = empty_tuple;
    #if !defined(Py_GIL_DISABLED)
        {
            PyTypeObject* t = CC_DOC_TYPE;
            CC_DOC_AS_DICT = t->tp_base == &PyDict_Type
                && t->tp_basicsize == PyDict_Type.tp_basicsize && t->tp_itemsize == 0
                && t->tp_dictoffset == 0 && t->tp_weaklistoffset == 0
                && t->tp_free == PyObject_GC_Del && t->tp_new == PyDict_Type.tp_new
    #ifdef Py_TPFLAGS_MANAGED_DICT
                && !(t->tp_flags & Py_TPFLAGS_MANAGED_DICT)
    #endif
    #ifdef Py_TPFLAGS_MANAGED_WEAKREF
                && !(t->tp_flags & Py_TPFLAGS_MANAGED_WEAKREF)
    #endif
                ;
        }
    #endif
    }
    static int cc_doc_as_dict(void) { return CC_DOC_AS_DICT; }
    static Py_ssize_t cc_doc_hint(void) { return CC_DOC_HINT; }
    /* An empty list (from []: no item array) given room for k items, so that the rows of a
       feed() are appended without the list growing step by step (PyList_Append's
       list_resize: a PyMem_Realloc and a copy every ~1/8 growth, ~30 instructions a row
       over a feed of ~100 rows, callgrind).  The array is PyMem_Malloc'd as list_resize
       makes it (ob_item/allocated: the documented PyListObject fields); the list stays
       empty.  Out of memory: the list is left as it was (it grows as usual).  Not on the
       free-threaded build. */
    static void cc_list_reserve(PyObject* lst, Py_ssize_t k) {
    #if !defined(Py_GIL_DISABLED)
        PyListObject* l = (PyListObject*)lst;
        PyObject** a;
        if (k <= 0 || l->ob_item != NULL || l->allocated != 0 || Py_SIZE(l) != 0) return;
        a = (PyObject**)PyMem_Malloc((size_t)k * sizeof(PyObject*));
        if (a == NULL) return;
        l->ob_item = a;
        l->allocated = k;
    #else
        (void)lst; (void)k;
    #endif
    }
    static void cc_set_giveup(PyObject* o) {
        Py_INCREF(o);
        Py_XDECREF(CC_GIVEUP);
        CC_GIVEUP = o;
    }
    """
    object cc_plain_container(const unsigned char* d, Py_ssize_t p, Py_ssize_t n, int lines, int depth, Py_ssize_t* endp)
    void cc_list_reserve(list lst, Py_ssize_t k)
    void cc_set_giveup(object o)
    void cc_set_types(object doc_type, object empty_tuple)
    int cc_doc_as_dict()
    int cc_dictfill_check(object keys)
    int cc_dictfill_on()
    void cc_dictfill_set(int on)
    Py_ssize_t cc_doc_hint()
    void cc_set_row(object row_type, Py_ssize_t* off, int use_new)
    void cc_set_row_make5(void* f)
    PyObject* cc_new_row5(PyObject** v)
    int cc_view_rows(const unsigned char* d, Py_ssize_t p, Py_ssize_t n, object out, Py_ssize_t* endp) except -1
    int cc_view_row(const unsigned char* d, Py_ssize_t p, Py_ssize_t n, int lines, PyObject** f, Py_ssize_t* endp) except -1
    int CC_K_OTHER, CC_K_ID, CC_K_KEY, CC_K_VALUE, CC_K_DOC, CC_K_ERROR, CC_K_REASON
    int CC_K_DOCS, CC_K_OK, CC_K_ROWS, CC_K_RESULTS, CC_K_LAST_SEQ, CC_K_SEQ
    int CC_PLAIN_DEPTH

# ---------------------------------------------------------------------------------------
# constants

DEF MAX_DEPTH = 1000        # nesting limit, about where json/simplejson hit the recursion limit
DEF FAST_DEPTH = 48         # recursion depth of the fast path (deeper: frame machine)

# shapes
cdef enum:
    SH_VIEW = 0
    SH_CHANGES = 1
    SH_CONTINUOUS = 2
    SH_BULK_GET = 3
    SH_FIND = 4

# well-known keys
cdef enum:
    K_OTHER = 0
    K_ID = 1
    K_KEY = 2
    K_VALUE = 3
    K_DOC = 4
    K_ERROR = 5
    K_REASON = 6
    K_DOCS = 7
    K_OK = 8
    K_ROWS = 9
    K_RESULTS = 10
    K_LAST_SEQ = 11
    K_SEQ = 12

# frame roles
cdef enum:
    R_PLAIN = 0      # dict / list
    R_DOCUMENT = 1   # Document (its children plain)
    R_META = 2       # top-level object: container is self.meta
    R_ROWS = 3       # the row array: elements go to the output list
    R_ROWV = 4       # a view row: fields in C slots, becomes a Row
    R_ROWD = 5       # a change (dict; "doc" -> Document)
    R_BGROW = 6      # a _bulk_get result (dict; "docs" array -> R_BGDOCS)
    R_BGDOCS = 7     # list; object elements -> R_BGENTRY
    R_BGENTRY = 8    # dict; "ok" object -> Document
    R_LINE = 9       # a continuous-feed line (dict; "doc" -> Document)

# what a frame expects next
cdef enum:
    EX_VALUE = 0
    EX_VALUE_OR_END = 1
    EX_KEY = 2
    EX_KEY_OR_END = 3
    EX_COLON = 4
    EX_COMMA_OR_END = 5

# top level (depth 0) state
cdef enum:
    TS_START = 0     # object shapes: expecting '{'
    TS_DONE = 1      # object shapes: only whitespace may follow
    TS_LINES = 2     # continuous

# pending token kinds
cdef enum:
    TOK_NONE = 0
    TOK_STR = 1
    TOK_SCALAR = 2

# string flags
cdef enum:
    SF_ESC = 1
    SF_HIGH = 2

cdef struct Frame:
    int role
    int expect
    int is_obj
    int kid
    PyObject* container   # owned (NULL for R_ROWV, R_ROWS)
    PyObject* key         # owned, current key of an object (NULL when none)

# byte classes
cdef unsigned char STR_STOP[256]   # 1: '"' or '\\' or control; 2: >= 0x80
cdef unsigned char SCALAR[256]     # chars that may continue a number/literal token
cdef unsigned char HEXVAL[256]     # 0..15, 255 = not hex

cdef void _init_tables():
    cdef int i
    for i in range(256):
        STR_STOP[i] = 0
        SCALAR[i] = 0
        HEXVAL[i] = 255
        if i < 0x20 or i == 34 or i == 92:
            STR_STOP[i] = 1
        elif i >= 0x80:
            STR_STOP[i] = 2
        if (48 <= i <= 57) or (65 <= i <= 90) or (97 <= i <= 122) or i == 43 or i == 45 or i == 46:
            SCALAR[i] = 1
    for i in range(10):
        HEXVAL[48 + i] = i
    for i in range(6):
        HEXVAL[65 + i] = 10 + i
        HEXVAL[97 + i] = 10 + i

_init_tables()

# Row construction without a Python-level __init__ call.  When Row is the plain
# __slots__ class of couchcore.models (object.__new__, five writable object slots), rows
# are allocated with tp_alloc and the references stored straight into the slots -- what
# Row.__init__ does, minus the interpreter.  Otherwise Row(...) is called.
cdef object _empty_tuple = ()
# sentinel for JSON null inside _scalar (None there means "invalid token")
cdef object _NULL = object()
cdef Py_ssize_t _ROW_OFF[5]
cdef bint _gc_pause = True
cdef bint _fast_enabled = True
cdef bint _plain_enabled = True
# what cc_plain_container returns when it gives up (the caller then parses the value itself)
cdef object _GIVEUP = object()
cc_set_giveup(_GIVEUP)
cc_set_types(Document, _empty_tuple)
# the direct dict fill (CPython 3.11): on only if its layout check passes
cc_dictfill_check(["_id", "_rev", "type", "n", "score", "name", "tags", "owner", "note"])
# new str objects allocated by cc_str_new itself: on only if its check passes
cc_strnew_check()
# the key ids of the C code are the enum's
assert (CC_K_OTHER, CC_K_ID, CC_K_KEY, CC_K_VALUE, CC_K_DOC, CC_K_ERROR, CC_K_REASON, CC_K_DOCS,
        CC_K_OK, CC_K_ROWS, CC_K_RESULTS, CC_K_LAST_SEQ, CC_K_SEQ) == (
        K_OTHER, K_ID, K_KEY, K_VALUE, K_DOC, K_ERROR, K_REASON, K_DOCS,
        K_OK, K_ROWS, K_RESULTS, K_LAST_SEQ, K_SEQ)


def _set_fast_path(bint flag):
    """Test hook: use the recursive fast path for complete values (default True)."""
    global _fast_enabled
    _fast_enabled = flag


def _set_plain_path(bint flag):
    """Test hook: parse plain dicts/lists below rows in C (``cc_plain_container``, default True)."""
    global _plain_enabled
    _plain_enabled = flag


def _doc_state():
    """Test hook: (whether the C path makes Documents as sized dicts given Document's type,
    the number of pairs the next one is sized for)."""
    return bool(cc_doc_as_dict()), cc_doc_hint()


def _dictfill_state():
    """Test hook: (whether the C path fills dicts directly, whether it makes Documents'
    sized tables itself, whether it makes a dict's first table itself) -- CPython 3.11,
    after the import-time layout check."""
    cdef int s = cc_dictfill_on()
    return bool(s & 1), bool(s & 2), bool(s & 4)


def _strnew_state():
    """True when new str objects are made by cc_str_new's own allocation (for the tests)."""
    return bool(cc_strnew_on())


def _set_strnew(bint flag):
    """Switch cc_str_new's own allocation on (only if its import check passes again) or
    off; returns the previous state (for the tests)."""
    cdef bint was = cc_strnew_on()
    if flag:
        cc_strnew_check()
    else:
        cc_strnew_set(0)
    return was


def _set_dictfill(bint flag):
    """Test hook: switch the direct dict fill off (False) or back on (True: only if the
    import-time layout check passed). Returns the state before."""
    cdef bint was = cc_dictfill_on() & 1
    if flag:
        cc_dictfill_check(["_id", "_rev", "type", "n", "score", "name", "tags", "owner", "note"])
    else:
        cc_dictfill_set(0)
    return was


def _set_gc_pause(bint flag):
    """Benchmark hook: pause the cyclic GC during feed()/close() (default True)."""
    global _gc_pause
    _gc_pause = flag
cdef bint _row_fast = False


def _setup_row_fast():
    """(Re)check whether Row allows the direct slot path; returns the decision.

    Row is either the extension type of couchcore_ext._row (rows made with its ``tp_new``,
    which uses the type's free list, and their five fields filled in place) or the plain
    ``__slots__`` class of couchcore.models (rows allocated with ``tp_alloc``).
    """
    global _row_fast
    cdef PyMemberDef* m
    cdef int i
    cdef PyObject* r
    _row_fast = False
    cc_set_row_make5(NULL)
    if Row is _CRow:
        # the fields follow the object header in declaration order (_row.pxd); checked on
        # a real instance before it is relied on
        probe = (object(), object(), object(), object(), object())
        row = _CRow(*probe)
        r = <PyObject*>row
        for i in range(5):
            _ROW_OFF[i] = <Py_ssize_t>sizeof(PyObject) + i * <Py_ssize_t>sizeof(PyObject*)
            if _ROW_OFF[i] + <Py_ssize_t>sizeof(PyObject*) > _CRow.__basicsize__:
                return False
            if (<PyObject**>((<char*>r) + _ROW_OFF[i]))[0] != <PyObject*>probe[i]:
                return False
        cc_set_row(Row, _ROW_OFF, 1)
        # exact Rows straight from the type's free list, their fields set at once
        from couchcore_ext import _row as _row_module
        cc_set_row_make5(PyCapsule_GetPointer(_row_module._MAKE5, b"couchcore_ext._row.make5"))
        _row_fast = True
        return True
    member_descriptor = type(type("_T", (), {"__slots__": ("x",)}).x)
    if Row.__new__ is not object.__new__ or Row.__bases__ != (object,):
        return False
    if tuple(Row.__dict__.get("__slots__", ())) != ("id", "key", "value", "doc", "error"):
        return False
    for i, name in enumerate(("id", "key", "value", "doc", "error")):
        d = Row.__dict__.get(name)
        if type(d) is not member_descriptor:
            return False
        m = (<PyMemberDescrObject*>d).d_member
        if m.type != T_OBJECT_EX or (m.flags & READONLY):
            return False
        if m.offset < <Py_ssize_t>sizeof(PyObject) or m.offset + <Py_ssize_t>sizeof(PyObject*) > Row.__basicsize__:
            return False
        _ROW_OFF[i] = m.offset
    cc_set_row(Row, _ROW_OFF, 0)
    _row_fast = True
    return True


_setup_row_fast()


cdef object _new_row(PyObject* id_, PyObject* key, PyObject* value, PyObject* doc, PyObject* error):
    """A Row from five *owned* references (stolen; NULL means None)."""
    cdef PyObject* r
    cdef PyObject* v[5]
    cdef int i
    cdef object row
    v[0] = id_; v[1] = key; v[2] = value; v[3] = doc; v[4] = error
    for i in range(5):
        if v[i] == NULL:
            Py_INCREF(None)
            v[i] = Py_None
    if _row_fast:
        r = cc_new_row5(v)
        if r == NULL:
            raise MemoryError()
        row = <object>r
        Py_DECREF(row)   # <object> added a reference to the one cc_new_row5 returned
        return row
    try:
        return Row(<object>v[0], <object>v[1], <object>v[2], <object>v[3], <object>v[4])
    finally:
        for i in range(5):
            Py_DECREF(<object>v[i])


cdef object _ABSENT = object()   # a view-row field that did not occur


cdef object _row_from(object id_, object key, object value, object doc, object error, object reason):
    """A Row from the fields of a view row (``_ABSENT`` where a field did not occur)."""
    if value is _ABSENT:
        value = reason if (error is not _ABSENT and error is not None and reason is not _ABSENT) else None
    if id_ is _ABSENT:
        id_ = None
    if key is _ABSENT:
        key = None
    if doc is _ABSENT:
        doc = None
    if error is _ABSENT:
        error = None
    Py_INCREF(id_)
    Py_INCREF(key)
    Py_INCREF(value)
    Py_INCREF(doc)
    Py_INCREF(error)
    return _new_row(<PyObject*>id_, <PyObject*>key, <PyObject*>value, <PyObject*>doc, <PyObject*>error)


cdef object _row_from_owned(PyObject** f):
    """A Row from the six fields of a view row (id, key, value, doc, error, reason) as
    *owned* references, NULL where absent (stolen), as RowParser._build_row does."""
    cdef PyObject* value = f[2]
    cdef PyObject* reason = f[5]
    cdef PyObject* error = f[4]
    if value == NULL and error != NULL and error != Py_None:
        value = reason        # {"error": e, "reason": r} -> Row(error=e, value=r)
    elif reason != NULL:
        Py_DECREF(<object>reason)
    if error == Py_None:
        error = NULL
        Py_DECREF(None)
    return _new_row(f[0], f[1], value, f[3], error)


cdef inline object _new_document():
    cdef PyTypeObject* t = <PyTypeObject*>Document
    return t.tp_new(Document, <PyObject*>_empty_tuple, NULL)


cdef int _classify(const unsigned char* s, Py_ssize_t n) noexcept:
    if n == 2:
        if s[0] == b'i' and s[1] == b'd':
            return K_ID
        if s[0] == b'o' and s[1] == b'k':
            return K_OK
    elif n == 3:
        if memcmp(s, b"key", 3) == 0:
            return K_KEY
        if memcmp(s, b"doc", 3) == 0:
            return K_DOC
        if memcmp(s, b"seq", 3) == 0:
            return K_SEQ
    elif n == 4:
        if memcmp(s, b"docs", 4) == 0:
            return K_DOCS
        if memcmp(s, b"rows", 4) == 0:
            return K_ROWS
    elif n == 5:
        if memcmp(s, b"value", 5) == 0:
            return K_VALUE
        if memcmp(s, b"error", 5) == 0:
            return K_ERROR
    elif n == 6:
        if memcmp(s, b"reason", 6) == 0:
            return K_REASON
    elif n == 7:
        if memcmp(s, b"results", 7) == 0:
            return K_RESULTS
    elif n == 8:
        if memcmp(s, b"last_seq", 8) == 0:
            return K_LAST_SEQ
    return K_OTHER


cdef inline int _child_role(int role, int kid, int is_obj) noexcept:
    """Role of a container value, from its parent's role and key."""
    if role == R_ROWV or role == R_ROWD or role == R_LINE:
        return R_DOCUMENT if (is_obj and kid == K_DOC) else R_PLAIN
    if role == R_BGROW:
        return R_BGDOCS if (not is_obj and kid == K_DOCS) else R_PLAIN
    if role == R_BGDOCS:
        return R_BGENTRY if is_obj else R_PLAIN
    if role == R_BGENTRY:
        return R_DOCUMENT if (is_obj and kid == K_OK) else R_PLAIN
    return R_PLAIN


cdef inline object _ascii_str(const unsigned char* s, Py_ssize_t n):
    cdef object u = PyUnicode_New(n, 127)
    memcpy(PyUnicode_DATA(u), s, n)
    return u


cdef inline object _ascii_val(const unsigned char* s, Py_ssize_t n, Py_ssize_t avail):
    """A string value without escapes or non-ASCII bytes (short ones through the value
    cache); ``s[0:avail]`` is readable (``avail >= n``)."""
    if n <= 16:
        return cc_short_ascii(s, n, avail)
    return _ascii_str(s, n)


cdef inline object _fquick(const unsigned char* d, Py_ssize_t p, Py_ssize_t n, Py_ssize_t* endp):
    """The common scalar at d[p] inside the fast path, without the call to ``_fval``: a
    string without escapes or non-ASCII bytes, or a number that ``cc_number_scan``
    converts exactly, followed by a delimiter inside the chunk.  Sets endp[0] past it;
    endp[0] = -2 (and returns None) for anything else: the caller then calls ``_fval``,
    which parses (or rejects) the value from the start."""
    cdef unsigned char c = d[p]
    cdef Py_ssize_t q, ln
    cdef int r, isf
    cdef long long iv
    cdef double dv
    if c == b'"':
        q = cc_skip_plain8(d, p + 1, n)
        while q < n and STR_STOP[d[q]] == 0:
            q += 1
        if q < n and d[q] == b'"':
            endp[0] = q + 1
            return _ascii_val(d + p + 1, q - p - 1, n - p - 1)
    elif c == b'-' or (b'0' <= c <= b'9'):
        r = cc_number_scan(d + p, n - p, &ln, &iv, &dv, &isf)
        q = p + ln
        if r > 0 and q < n and not SCALAR[d[q]]:
            endp[0] = q
            if r == 2:
                return PyFloat_FromDouble(dv)
            return cc_int(iv)
    endp[0] = -2
    return None


@cython.final
cdef class RowParser:
    """Incremental parser for one CouchDB response body (see :mod:`couchcore._rows`)."""

    cdef readonly str shape
    cdef dict _meta
    cdef bint _done
    cdef int _shape
    cdef int _rows_kid
    cdef int _top
    cdef bint _lines
    # frames
    cdef Frame* _stack
    cdef int _depth
    cdef int _cap
    # view row slots: id, key, value, doc, error, reason
    cdef PyObject* _slot[6]
    # pending token
    cdef unsigned char* _tok
    cdef Py_ssize_t _tok_len
    cdef Py_ssize_t _tok_cap
    cdef int _tok_kind
    cdef int _tok_flags
    cdef bint _tok_esc
    cdef bint _tok_key
    # continuous: a finished line waiting for its newline
    cdef object _pending
    cdef list _out
    cdef Py_ssize_t _last_n   # items the last feed() returned: room reserved in the next one's list
    cdef bint _closed
    cdef object _broken

    def __cinit__(self, str shape not None):
        cdef int i
        self._stack = NULL
        self._tok = NULL
        for i in range(6):
            self._slot[i] = NULL
        if shape == "view":
            self._shape = SH_VIEW
            self._rows_kid = K_ROWS
        elif shape == "changes":
            self._shape = SH_CHANGES
            self._rows_kid = K_RESULTS
        elif shape == "continuous":
            self._shape = SH_CONTINUOUS
            self._rows_kid = -1
        elif shape == "bulk_get":
            self._shape = SH_BULK_GET
            self._rows_kid = K_RESULTS
        elif shape == "find":
            self._shape = SH_FIND
            self._rows_kid = K_DOCS
        else:
            raise ValueError(
                f"unknown shape {shape!r}; expected one of "
                "('view', 'changes', 'continuous', 'bulk_get', 'find')"
            )
        self.shape = shape
        self._meta = {}
        self._done = False
        self._lines = self._shape == SH_CONTINUOUS
        self._top = TS_LINES if self._lines else TS_START
        self._cap = 16
        self._stack = <Frame*>PyMem_Malloc(self._cap * sizeof(Frame))
        if self._stack == NULL:
            raise MemoryError()
        self._depth = 0
        self._tok_cap = 256
        self._tok = <unsigned char*>PyMem_Malloc(self._tok_cap)
        if self._tok == NULL:
            raise MemoryError()
        self._tok_len = 0
        self._tok_kind = TOK_NONE
        self._pending = None
        self._out = None
        self._last_n = 0
        self._closed = False
        self._broken = None

    def __dealloc__(self):
        self._release()
        if self._stack != NULL:
            PyMem_Free(self._stack)
            self._stack = NULL
        if self._tok != NULL:
            PyMem_Free(self._tok)
            self._tok = NULL

    cdef void _release(self) noexcept:
        """Drop every partially built value (after an error, at dealloc)."""
        cdef int i
        if self._stack != NULL:
            while self._depth > 0:
                self._depth -= 1
                Py_XDECREF(self._stack[self._depth].container)
                Py_XDECREF(self._stack[self._depth].key)
        for i in range(6):
            Py_XDECREF(self._slot[i])
            self._slot[i] = NULL

    @property
    def meta(self):
        """Top-level fields other than the row array, as soon as they are parsed."""
        return self._meta

    @property
    def done(self):
        """True once the top-level JSON value (continuous: a ``last_seq`` line) is complete."""
        return self._done

    def __repr__(self):
        return f"<RowParser shape={self.shape!r} done={self._done}>"

    # -- public API ---------------------------------------------------------------------

    def feed(self, chunk):
        """Feed the next bytes of the body; return the items they complete."""
        cdef Py_buffer view
        cdef int gc_was
        cdef list out
        self._check_usable()
        PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE)
        try:
            if view.len == 0:
                return []
            out = []
            # a body's feeds tend to complete as many rows each (pieces of one size, rows
            # alike): room for the last feed's count and a little more (at most 4096)
            if self._last_n > 0:
                cc_list_reserve(out, min(self._last_n + (self._last_n >> 3) + 4, 4096))
            self._out = out
            gc_was = PyGC_Disable() if _gc_pause else 0
            try:
                self._run(<const unsigned char*>view.buf, view.len)
            except BaseException as e:
                self._fail(e)
                raise
            finally:
                self._out = None
                if gc_was:
                    PyGC_Enable()
            self._last_n = len(out)
            return out
        finally:
            PyBuffer_Release(&view)

    def close(self):
        """Signal the end of the body; return the last items or raise ParseError."""
        cdef int gc_was
        cdef list out = []
        self._check_usable()
        self._closed = True
        gc_was = PyGC_Disable() if _gc_pause else 0
        self._out = out
        try:
            if self._lines:
                if self._tok_kind != TOK_NONE or self._depth > 0:
                    raise ParseError("continuous feed ends inside a line")
                self._flush_line()
            elif self._tok_kind != TOK_NONE or self._depth > 0 or not self._done:
                raise ParseError("response body truncated (top-level JSON value not complete)")
            return out
        except BaseException as e:
            self._fail(e)
            raise
        finally:
            self._out = None
            if gc_was:
                PyGC_Enable()

    cdef _check_usable(self):
        if self._broken is not None:
            raise ParseError(f"parser unusable after an earlier error: {self._broken}")
        if self._closed:
            raise ParseError("parser already closed")

    cdef _fail(self, e):
        self._broken = e
        self._release()
        self._pending = None
        self._tok_kind = TOK_NONE

    # -- errors -------------------------------------------------------------------------

    cdef int _err(self, msg, const unsigned char* d, Py_ssize_t p, Py_ssize_t n) except -1:
        cdef Py_ssize_t e = p + 40
        if e > n:
            e = n
        if p < 0:
            p = 0
        ctx = (<bytes>(<char*>d)[p:e]) if p < e else b""
        raise ParseError(f"{msg} at {ctx!r}")

    # -- token buffer ---------------------------------------------------------------------

    cdef int _tok_append(self, const unsigned char* s, Py_ssize_t n) except -1:
        cdef Py_ssize_t need = self._tok_len + n + 1
        cdef Py_ssize_t cap
        cdef unsigned char* nb
        if need > self._tok_cap:
            cap = self._tok_cap * 2
            while cap < need:
                cap *= 2
            nb = <unsigned char*>PyMem_Realloc(self._tok, cap)
            if nb == NULL:
                raise MemoryError()
            self._tok = nb
            self._tok_cap = cap
        memcpy(self._tok + self._tok_len, s, n)
        self._tok_len += n
        return 0

    # -- frames ---------------------------------------------------------------------------

    cdef int _push(self, int role, int is_obj) except -1:
        cdef Frame* f
        cdef Frame* ns
        cdef object c
        if self._depth >= MAX_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels")
        if self._depth >= self._cap:
            ns = <Frame*>PyMem_Realloc(self._stack, self._cap * 2 * sizeof(Frame))
            if ns == NULL:
                raise MemoryError()
            self._stack = ns
            self._cap *= 2
        if role == R_ROWV or role == R_ROWS:
            c = None
        elif role == R_DOCUMENT:
            c = _new_document()
        elif role == R_META:
            c = self._meta
        elif is_obj:
            c = {}
        else:
            c = []
        f = &self._stack[self._depth]
        f.role = role
        f.is_obj = is_obj
        f.kid = K_OTHER
        f.key = NULL
        if c is None:
            f.container = NULL
        else:
            Py_INCREF(c)
            f.container = <PyObject*>c
        f.expect = EX_KEY_OR_END if is_obj else EX_VALUE_OR_END
        self._depth += 1
        return 0

    cdef inline int _child_role(self, Frame* f, int is_obj) noexcept:
        return _child_role(f.role, f.kid, is_obj)

    cdef inline int _row_role(self) noexcept:
        if self._shape == SH_VIEW:
            return R_ROWV
        if self._shape == SH_BULK_GET:
            return R_BGROW
        if self._shape == SH_FIND:
            return R_DOCUMENT
        return R_ROWD

    cdef int _deliver(self, object v) except -1:
        """Hand a finished value to the frame on top of the stack."""
        cdef Frame* f = &self._stack[self._depth - 1]
        cdef int k
        cdef PyObject* old
        if f.is_obj:
            if f.role == R_ROWV:
                k = f.kid
                if K_ID <= k <= K_REASON:
                    old = self._slot[k - 1]
                    Py_INCREF(v)
                    self._slot[k - 1] = <PyObject*>v
                    Py_XDECREF(old)
            else:
                PyDict_SetItem(<object>f.container, <object>f.key, v)
            Py_XDECREF(f.key)
            f.key = NULL
        elif f.role == R_ROWS:
            PyList_Append(self._out, v)
        else:
            PyList_Append(<object>f.container, v)
        f.expect = EX_COMMA_OR_END
        return 0

    cdef object _build_row(self):
        cdef PyObject* value = self._slot[2]
        cdef PyObject* reason = self._slot[5]
        cdef PyObject* error = self._slot[4]
        cdef object row
        cdef int i
        if value == NULL and error != NULL and error != Py_None:
            value = reason        # {"error": e, "reason": r} -> Row(error=e, value=r)
        elif reason != NULL:
            Py_DECREF(<object>reason)
        if error == Py_None:
            error = NULL
            Py_DECREF(None)
        row = _new_row(self._slot[0], self._slot[1], value, self._slot[3], error)
        for i in range(6):
            self._slot[i] = NULL
        return row

    cdef int _close_frame(self) except -1:
        """Pop the top frame and deliver its value to the parent."""
        cdef Frame* f
        cdef int role
        cdef object v
        self._depth -= 1
        f = &self._stack[self._depth]
        role = f.role
        Py_XDECREF(f.key)
        f.key = NULL
        if role == R_ROWV:
            v = self._build_row()
        elif role == R_ROWS:
            # the row array ends: the meta frame's key is done
            f = &self._stack[self._depth - 1]
            Py_XDECREF(f.key)
            f.key = NULL
            f.expect = EX_COMMA_OR_END
            return 0
        elif role == R_META:
            Py_XDECREF(f.container)
            f.container = NULL
            self._done = True
            self._top = TS_DONE
            return 0
        else:
            v = <object>f.container   # new reference owned by v
            Py_DECREF(v)              # drop the frame's reference
            f.container = NULL
        if self._depth > 0:
            return self._deliver(v)
        # a continuous-feed line is complete: wait for its newline
        self._pending = v
        return 0

    cdef int _flush_line(self) except -1:
        cdef object d = self._pending
        if d is None:
            return 0
        self._pending = None
        if "last_seq" in d:
            self._meta.update(d)
            self._done = True
        elif "error" in d and "seq" not in d:
            self._meta.update(d)
        else:
            PyList_Append(self._out, d)
        return 0

    # -- scalars and strings ---------------------------------------------------------------

    cdef object _scalar(self, const unsigned char* s, Py_ssize_t n):
        """A number or literal token (already delimited) -> value (None: invalid token)."""
        cdef unsigned char c = s[0]
        cdef char small[80]
        cdef long long iv
        cdef double dv
        cdef int isf, r
        if c == b'-' or (b'0' <= c <= b'9'):
            r = cc_number(s, n, &iv, &dv, &isf)
            if r == 2:
                return PyFloat_FromDouble(dv)
            if r == 1:
                return cc_int(iv)
            if r < 0:
                return None  # signals error
            # long integers, and floats outside the exact fast path: correctly rounded
            if n < 80:
                memcpy(small, s, n)
                small[n] = 0
                if isf:
                    dv = PyOS_string_to_double(small, NULL, NULL)
                    return PyFloat_FromDouble(dv)
                return PyLong_FromString(small, NULL, 10)
            return self._long_number(s, n, isf)
        if n == 4:
            if memcmp(s, b"null", 4) == 0:
                return _NULL
            if memcmp(s, b"true", 4) == 0:
                return True
        elif n == 5 and memcmp(s, b"false", 5) == 0:
            return False
        return None

    cdef object _long_number(self, const unsigned char* s, Py_ssize_t n, bint is_float):
        cdef char* tmp = <char*>PyMem_Malloc(n + 1)
        cdef double dv
        if tmp == NULL:
            raise MemoryError()
        try:
            memcpy(tmp, s, n)
            tmp[n] = 0
            if is_float:
                dv = PyOS_string_to_double(tmp, NULL, NULL)
                return PyFloat_FromDouble(dv)
            return PyLong_FromString(tmp, NULL, 10)
        except ValueError as e:  # an int longer than sys.get_int_max_str_digits()
            raise ParseError(f"invalid number: {e}") from None
        finally:
            PyMem_Free(tmp)

    cdef object _string(self, const unsigned char* s, Py_ssize_t n, int flags):
        """The content of a complete JSON string -> str."""
        if flags == 0:
            return _ascii_str(s, n)
        # escapes and/or non-ASCII: one pass into UCS4 (CPython's strict UTF-8 rules)
        return self._unescape(s, n)

    cdef object _unescape(self, const unsigned char* s, Py_ssize_t n):
        cdef uint32_t stackbuf[256]
        cdef uint32_t* out = stackbuf
        cdef Py_ssize_t i = 0, o = 0
        cdef unsigned char c, c1, c2, c3
        cdef uint32_t u, u2
        cdef int h0, h1, h2, h3
        if n > 256:
            out = <uint32_t*>PyMem_Malloc(n * sizeof(uint32_t))
            if out == NULL:
                raise MemoryError()
        try:
            while i < n:
                c = s[i]
                if c == b'\\':
                    # the scanner guarantees a byte follows a backslash inside a string
                    c = s[i + 1]
                    i += 2
                    if c == b'"' or c == b'\\' or c == b'/':
                        out[o] = c
                    elif c == b'n':
                        out[o] = 10
                    elif c == b't':
                        out[o] = 9
                    elif c == b'r':
                        out[o] = 13
                    elif c == b'b':
                        out[o] = 8
                    elif c == b'f':
                        out[o] = 12
                    elif c == b'u':
                        if i + 4 > n:
                            raise ParseError("invalid \\uXXXX escape in a string")
                        h0 = HEXVAL[s[i]]; h1 = HEXVAL[s[i + 1]]; h2 = HEXVAL[s[i + 2]]; h3 = HEXVAL[s[i + 3]]
                        if h0 == 255 or h1 == 255 or h2 == 255 or h3 == 255:
                            raise ParseError("invalid \\uXXXX escape in a string")
                        u = (h0 << 12) | (h1 << 8) | (h2 << 4) | h3
                        i += 4
                        if 0xD800 <= u <= 0xDBFF and i + 6 <= n and s[i] == b'\\' and s[i + 1] == b'u':
                            h0 = HEXVAL[s[i + 2]]; h1 = HEXVAL[s[i + 3]]; h2 = HEXVAL[s[i + 4]]; h3 = HEXVAL[s[i + 5]]
                            if h0 == 255 or h1 == 255 or h2 == 255 or h3 == 255:
                                raise ParseError("invalid \\uXXXX escape in a string")
                            u2 = (h0 << 12) | (h1 << 8) | (h2 << 4) | h3
                            if 0xDC00 <= u2 <= 0xDFFF:
                                u = 0x10000 + (((u - 0xD800) << 10) | (u2 - 0xDC00))
                                i += 6
                        out[o] = u
                    else:
                        raise ParseError(f"invalid escape \\{chr(c)} in a string")
                    o += 1
                elif c < 0x80:
                    out[o] = c
                    o += 1
                    i += 1
                else:
                    # strict UTF-8, same acceptance as CPython's codec
                    if 0xC2 <= c <= 0xDF:
                        if i + 1 >= n:
                            raise ParseError("invalid UTF-8 in a string")
                        c1 = s[i + 1]
                        if (c1 & 0xC0) != 0x80:
                            raise ParseError("invalid UTF-8 in a string")
                        out[o] = ((c & 0x1F) << 6) | (c1 & 0x3F)
                        i += 2
                    elif 0xE0 <= c <= 0xEF:
                        if i + 2 >= n:
                            raise ParseError("invalid UTF-8 in a string")
                        c1 = s[i + 1]
                        c2 = s[i + 2]
                        if (c1 & 0xC0) != 0x80 or (c2 & 0xC0) != 0x80:
                            raise ParseError("invalid UTF-8 in a string")
                        if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 > 0x9F):
                            raise ParseError("invalid UTF-8 in a string")
                        out[o] = ((c & 0x0F) << 12) | ((c1 & 0x3F) << 6) | (c2 & 0x3F)
                        i += 3
                    elif 0xF0 <= c <= 0xF4:
                        if i + 3 >= n:
                            raise ParseError("invalid UTF-8 in a string")
                        c1 = s[i + 1]
                        c2 = s[i + 2]
                        c3 = s[i + 3]
                        if (c1 & 0xC0) != 0x80 or (c2 & 0xC0) != 0x80 or (c3 & 0xC0) != 0x80:
                            raise ParseError("invalid UTF-8 in a string")
                        if (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 > 0x8F):
                            raise ParseError("invalid UTF-8 in a string")
                        out[o] = ((c & 0x07) << 18) | ((c1 & 0x3F) << 12) | ((c2 & 0x3F) << 6) | (c3 & 0x3F)
                        i += 4
                    else:
                        raise ParseError("invalid UTF-8 in a string")
                    o += 1
            return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out, o)
        finally:
            if out != stackbuf:
                PyMem_Free(out)

    cdef object _key_str(self, const unsigned char* s, Py_ssize_t n, int flags, int* kid, Py_ssize_t avail):
        """A complete key string -> str (cached when short ASCII); sets the key id.
        ``s[0:avail]`` is readable memory (``avail >= n``)."""
        cdef uint64_t w[4]
        cdef cc_kentry* e
        cdef object u
        if flags == 0 and n <= 32:
            e = cc_kslot(s, n, avail, w)
            if cc_khit(e, n, w):
                kid[0] = e.kid
                u = <object>cc_kuse(e)   # cc_kuse's reference is given back: u holds one
                Py_DECREF(u)
                return u
            u = _ascii_str(s, n)
            Py_XDECREF(e.s)
            Py_INCREF(u)
            e.s = <PyObject*>u
            e.length = <int>n
            memcpy(e.w, w, sizeof(w))
            e.interned = 0
            e.kid = _classify(s, n)
            kid[0] = e.kid
            return u
        u = self._string(s, n, flags)
        b = (<str>u).encode("utf-8", "surrogatepass")
        kid[0] = _classify(<const unsigned char*><char*>b, len(b)) if len(b) <= 8 else K_OTHER
        return u

    # -- values ----------------------------------------------------------------------------

    cdef int _got_string(self, const unsigned char* s, Py_ssize_t n, int flags, Py_ssize_t avail) except -1:
        """A string token finished: it is a key or a value of the top frame."""
        cdef Frame* f
        cdef int kid = K_OTHER
        cdef object u
        if self._tok_key:
            f = &self._stack[self._depth - 1]
            if f.role == R_ROWV and flags == 0:
                # view row keys only select a slot: no str needed
                f.kid = _classify(s, n)
                f.expect = EX_COLON
                return 0
            u = self._key_str(s, n, flags, &kid, avail)
            f.kid = kid
            if f.role != R_ROWV:
                Py_INCREF(u)
                f.key = <PyObject*>u
            f.expect = EX_COLON
            return 0
        return self._deliver(self._string(s, n, flags))

    cdef int _got_scalar(self, const unsigned char* s, Py_ssize_t n) except -1:
        cdef object v
        if n == 4 and s[0] == b'n' and s[1] == b'u' and s[2] == b'l' and s[3] == b'l':
            return self._deliver(None)
        v = self._scalar(s, n)
        if v is None:
            raise ParseError(f"invalid JSON value {(<bytes>(<char*>s)[:min(n, 40)])!r}")
        if v is _NULL:
            v = None
        return self._deliver(v)

    # -- fast path: a complete container value inside the current chunk --------------------
    #
    # Recursive descent over d[p:n] for a value that starts with '{' or '['.  It builds
    # exactly what the frame machine below would build (same roles, key cache, checks)
    # but keeps its state in C locals.  If the value does not end inside the chunk (or is
    # nested more than FAST_DEPTH levels below its start) it gives up, returning with
    # endp[0] = -1, and the caller parses the value with the resumable frame machine
    # instead -- at most once per feed() call, so the wasted work stays linear.

    cdef inline Py_ssize_t _fws(self, const unsigned char* d, Py_ssize_t p, Py_ssize_t n) except -2:
        cdef unsigned char c
        while p < n:
            c = d[p]
            if c == b' ' or c == b'\r' or c == b'\t':
                p += 1
            elif c == b'\n':
                if self._lines:
                    self._err("line break inside a continuous-feed line", d, p, n)
                p += 1
            else:
                break
        return p

    cdef inline Py_ssize_t _fstr(self, const unsigned char* d, Py_ssize_t q, Py_ssize_t n, int* flags) except -2:
        """End of the string whose content starts at d[q]: index of its closing quote, or -1."""
        cdef unsigned char c
        cdef int fl = 0
        while True:
            q = cc_skip_plain8(d, q, n)
            while q < n and STR_STOP[d[q]] == 0:
                q += 1
            if q >= n:
                return -1
            c = d[q]
            if STR_STOP[c] == 2:
                fl |= SF_HIGH
                q += 1
            elif c == b'\\':
                fl |= SF_ESC
                q += 2
                if q >= n:
                    return -1
            elif c == b'"':
                flags[0] = fl
                return q
            else:
                self._err("control character in a string", d, q, n)

    cdef object _fval(self, const unsigned char* d, Py_ssize_t p, Py_ssize_t n, int role, int kid, int depth, int rel, Py_ssize_t* endp):
        """Any value at d[p] (p < n) whose parent has ``role`` and key id ``kid``."""
        cdef unsigned char c = d[p]
        cdef Py_ssize_t q, ln
        cdef int flags, r, isf
        cdef long long iv
        cdef double dv
        cdef object v
        if c == b'"':
            q = self._fstr(d, p + 1, n, &flags)
            if q < 0:
                endp[0] = -1
                return None
            endp[0] = q + 1
            if flags == 0:
                return _ascii_val(d + p + 1, q - p - 1, n - p - 1)
            return self._unescape(d + p + 1, q - p - 1)
        if c == b'{' or c == b'[':
            r = _child_role(role, kid, c == b'{')
            if r == R_PLAIN and _plain_enabled and depth + CC_PLAIN_DEPTH <= MAX_DEPTH:
                # the common case in C (gives up on anything unusual: then the code below)
                v = cc_plain_container(d, p, n, self._lines, 1, &q)
                if v is not _GIVEUP:
                    endp[0] = q
                    return v
            return self._fast(d, p, n, r, depth + 1, rel + 1, endp)
        if c == b'-' or (b'0' <= c <= b'9'):
            # one pass: scan and convert; the usual number (an int of <= 18 digits or a
            # float on the exact fast path, followed by a delimiter) is done here
            r = cc_number_scan(d + p, n - p, &ln, &iv, &dv, &isf)
            q = p + ln
            if r > 0 and q < n and not SCALAR[d[q]]:
                endp[0] = q
                if r == 2:
                    return PyFloat_FromDouble(dv)
                return cc_int(iv)
        if c == b'-' or (b'0' <= c <= b'9') or (b'a' <= c <= b'z'):
            q = p + 1
            while q < n and SCALAR[d[q]]:
                q += 1
            if q >= n:
                endp[0] = -1
                return None
            endp[0] = q
            if q - p == 4 and c == b'n' and d[p + 1] == b'u' and d[p + 2] == b'l' and d[p + 3] == b'l':
                return None
            v = self._scalar(d + p, q - p)
            if v is None:
                raise ParseError(f"invalid JSON value {(<bytes>(<char*>d)[p:min(q, p + 40)])!r}")
            if v is _NULL:
                return None
            return v
        self._err("expected a JSON value", d, p, n)

    cdef object _fast(self, const unsigned char* d, Py_ssize_t p, Py_ssize_t n, int role, int depth, int rel, Py_ssize_t* endp):
        """Parse the container at d[p]; endp[0] = position after it, or -1 to give up."""
        cdef unsigned char c
        cdef Py_ssize_t q
        cdef int flags, kid = K_OTHER
        cdef bint is_obj
        cdef unsigned char close_c
        cdef object container, key = None, v
        cdef PyObject* f[6]
        endp[0] = -1
        if depth > MAX_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels")
        if rel > FAST_DEPTH:
            return None
        if role == R_ROWV:
            if _plain_enabled and cc_view_row(d, p, n, self._lines, f, &q) == 1:
                endp[0] = q
                return _row_from_owned(f)
            return self._fast_rowv(d, p, n, depth, rel, endp)
        is_obj = d[p] == b'{'
        if not is_obj:
            return self._fast_array(d, p, n, role, depth, rel, endp)
        close_c = 125 if is_obj else 93   # '}' / ']'
        if role == R_DOCUMENT:
            container = _new_document()
        elif is_obj:
            container = {}
        else:
            container = []
        p = self._fws(d, p + 1, n)
        if p >= n:
            return None
        c = d[p]
        if c == close_c:
            endp[0] = p + 1
            return container
        while True:
            if is_obj:
                if c != b'"':
                    self._err("expected a key", d, p, n)
                q = self._fstr(d, p + 1, n, &flags)
                if q < 0:
                    return None
                key = self._key_str(d + p + 1, q - p - 1, flags, &kid, n - p - 1)
                p = q + 1
                if p < n and d[p] == b':':
                    p += 1
                else:
                    p = self._fws(d, p, n)
                    if p >= n:
                        return None
                    if d[p] != b':':
                        self._err("expected ':'", d, p, n)
                    p += 1
                if p < n and d[p] > 32:
                    pass
                else:
                    p = self._fws(d, p, n)
                    if p >= n:
                        return None
                v = _fquick(d, p, n, &q)
                if q == -2:
                    v = self._fval(d, p, n, role, kid, depth, rel, &q)
                if q < 0:
                    return None
                PyDict_SetItem(container, key, v)
            else:
                v = self._fval(d, p, n, role, kid, depth, rel, &q)
                if q < 0:
                    return None
                PyList_Append(container, v)
            p = q
            if p < n and d[p] > 32:
                c = d[p]
            else:
                p = self._fws(d, p, n)
                if p >= n:
                    return None
                c = d[p]
            if c == b',':
                p += 1
                if p < n and d[p] > 32:
                    c = d[p]
                else:
                    p = self._fws(d, p, n)
                    if p >= n:
                        return None
                    c = d[p]
                continue
            if c == close_c:
                endp[0] = p + 1
                return container
            self._err("expected ',' or the end of the " + ("object" if is_obj else "array"), d, p, n)

    cdef object _fast_array(self, const unsigned char* d, Py_ssize_t p, Py_ssize_t n, int role, int depth, int rel, Py_ssize_t* endp):
        """The array at d[p] (the fast path's checks done): its first items are held in C
        and the list is made at its full size at the end (no append/realloc per item)."""
        cdef PyObject* items[8]
        cdef Py_ssize_t k = 0, i, q
        cdef unsigned char c
        cdef object lst = None, v
        endp[0] = -1
        p = self._fws(d, p + 1, n)
        if p >= n:
            return None
        if d[p] == b']':
            endp[0] = p + 1
            return []
        try:
            while True:
                v = _fquick(d, p, n, &q)
                if q == -2:
                    v = self._fval(d, p, n, role, K_OTHER, depth, rel, &q)
                if q < 0:
                    return None
                if lst is not None:
                    PyList_Append(lst, v)
                elif k < 8:
                    Py_INCREF(v)
                    items[k] = <PyObject*>v
                    k += 1
                else:
                    lst = PyList_New(k)
                    for i in range(k):
                        PyList_SET_ITEM(lst, i, items[i])   # steals
                    k = 0
                    PyList_Append(lst, v)
                p = q
                if p < n and d[p] > 32:
                    c = d[p]
                else:
                    p = self._fws(d, p, n)
                    if p >= n:
                        return None
                    c = d[p]
                if c == b',':
                    p += 1
                    if p >= n or d[p] <= 32:
                        p = self._fws(d, p, n)
                        if p >= n:
                            return None
                    continue
                if c == b']':
                    endp[0] = p + 1
                    if lst is None:
                        lst = PyList_New(k)
                        for i in range(k):
                            PyList_SET_ITEM(lst, i, items[i])   # steals
                        k = 0
                    return lst
                self._err("expected ',' or the end of the array", d, p, n)
        finally:
            for i in range(k):
                Py_XDECREF(items[i])

    cdef object _fast_rowv(self, const unsigned char* d, Py_ssize_t p, Py_ssize_t n, int depth, int rel, Py_ssize_t* endp):
        """A view row object at d[p] -> Row (fields kept in locals, never a dict)."""
        cdef unsigned char c
        cdef Py_ssize_t q
        cdef int flags, kid
        cdef object v, unused
        cdef object f_id = _ABSENT, f_key = _ABSENT, f_value = _ABSENT
        cdef object f_doc = _ABSENT, f_error = _ABSENT, f_reason = _ABSENT
        p = self._fws(d, p + 1, n)
        if p >= n:
            return None
        c = d[p]
        if c != b'}':
            while True:
                if c != b'"':
                    self._err("expected a key", d, p, n)
                q = self._fstr(d, p + 1, n, &flags)
                if q < 0:
                    return None
                if flags == 0:
                    kid = _classify(d + p + 1, q - p - 1)
                else:
                    unused = self._key_str(d + p + 1, q - p - 1, flags, &kid, n - p - 1)
                p = q + 1
                if p < n and d[p] == b':':
                    p += 1
                else:
                    p = self._fws(d, p, n)
                    if p >= n:
                        return None
                    if d[p] != b':':
                        self._err("expected ':'", d, p, n)
                    p += 1
                if p >= n or d[p] <= 32:
                    p = self._fws(d, p, n)
                    if p >= n:
                        return None
                v = _fquick(d, p, n, &q)
                if q == -2:
                    v = self._fval(d, p, n, R_ROWV, kid, depth, rel, &q)
                if q < 0:
                    return None
                if kid == K_ID:
                    f_id = v
                elif kid == K_KEY:
                    f_key = v
                elif kid == K_VALUE:
                    f_value = v
                elif kid == K_DOC:
                    f_doc = v
                elif kid == K_ERROR:
                    f_error = v
                elif kid == K_REASON:
                    f_reason = v
                p = q
                if p >= n or d[p] <= 32:
                    p = self._fws(d, p, n)
                    if p >= n:
                        return None
                c = d[p]
                if c == b',':
                    p += 1
                    if p >= n or d[p] <= 32:
                        p = self._fws(d, p, n)
                        if p >= n:
                            return None
                    c = d[p]
                    continue
                if c == b'}':
                    break
                self._err("expected ',' or the end of the object", d, p, n)
        endp[0] = p + 1
        return _row_from(f_id, f_key, f_value, f_doc, f_error, f_reason)

    cdef Py_ssize_t _resume(self, const unsigned char* d, Py_ssize_t n) except -2:
        """Continue a token cut by the previous chunk; position after it, or -1 (more needed)."""
        cdef Py_ssize_t q = 0
        cdef unsigned char c, k
        if self._tok_kind == TOK_SCALAR:
            while q < n and SCALAR[d[q]]:
                q += 1
            self._tok_append(d, q)
            if q >= n:
                return -1
            self._tok_kind = TOK_NONE
            self._got_scalar(self._tok, self._tok_len)
            return q
        # string
        if self._tok_esc:
            q = 1
            self._tok_esc = False
        while True:
            q = cc_skip_plain8(d, q, n)
            while q < n and STR_STOP[d[q]] == 0:
                q += 1
            if q >= n:
                self._tok_append(d, n)
                return -1
            c = d[q]
            k = STR_STOP[c]
            if k == 2:
                self._tok_flags |= SF_HIGH
                q += 1
            elif c == b'\\':
                self._tok_flags |= SF_ESC
                if q + 1 >= n:
                    self._tok_append(d, n)
                    self._tok_esc = True
                    return -1
                q += 2
            elif c == b'"':
                self._tok_append(d, q)
                self._tok_kind = TOK_NONE
                self._got_string(self._tok, self._tok_len, self._tok_flags, self._tok_cap)
                return q + 1
            else:
                self._err("control character in a string", d, q, n)

    cdef int _run(self, const unsigned char* d, Py_ssize_t n) except -1:
        cdef Py_ssize_t p = 0, q
        cdef unsigned char c, k
        cdef Frame* f
        cdef int ex, flags, role
        cdef bint lines = self._lines
        cdef bint fast = _fast_enabled
        cdef object v

        if self._tok_kind != TOK_NONE:
            p = self._resume(d, n)
            if p < 0:
                return 0

        while True:
            # whitespace
            while p < n:
                c = d[p]
                if c == b' ' or c == b'\r' or c == b'\t':
                    p += 1
                elif c == b'\n':
                    if lines:
                        if self._depth > 0:
                            self._err("line break inside a continuous-feed line", d, p, n)
                        self._flush_line()
                    p += 1
                else:
                    break
            if p >= n:
                return 0

            if self._depth == 0:
                if self._top == TS_START:
                    if c != b'{':
                        self._err(f"expected a JSON object for a {self.shape!r} response", d, p, n)
                    self._push(R_META, 1)
                    p += 1
                    continue
                if self._top == TS_LINES:
                    if self._pending is not None:
                        self._err("more than one JSON value on a continuous-feed line", d, p, n)
                    if self._done:
                        self._err("data after the last_seq line", d, p, n)
                    if c != b'{':
                        self._err("continuous-feed line is not a JSON object", d, p, n)
                    if fast:
                        v = self._fast(d, p, n, R_LINE, 1, 1, &q)
                        if q >= 0:
                            self._pending = v
                            p = q
                            continue
                        fast = False
                    self._push(R_LINE, 1)
                    p += 1
                    continue
                self._err("trailing data after the JSON body", d, p, n)

            f = &self._stack[self._depth - 1]
            ex = f.expect

            if ex == EX_COMMA_OR_END:
                if c == b',':
                    f.expect = EX_KEY if f.is_obj else EX_VALUE
                    p += 1
                elif c == b'}' and f.is_obj:
                    p += 1
                    self._close_frame()
                elif c == b']' and not f.is_obj:
                    p += 1
                    self._close_frame()
                else:
                    self._err("expected ',' or the end of the " + ("object" if f.is_obj else "array"), d, p, n)
                continue

            if ex == EX_KEY_OR_END or ex == EX_KEY:
                if c == b'"':
                    self._tok_key = True
                    # fall through to the string scanner below
                elif c == b'}' and ex == EX_KEY_OR_END:
                    p += 1
                    self._close_frame()
                    continue
                else:
                    self._err("expected a key", d, p, n)
            elif ex == EX_COLON:
                if c != b':':
                    self._err("expected ':'", d, p, n)
                f.expect = EX_VALUE
                p += 1
                continue
            else:
                # a value (or ']' right after '[')
                if c == b']' and ex == EX_VALUE_OR_END:
                    p += 1
                    self._close_frame()
                    continue
                role = f.role
                if role == R_ROWS:
                    if c != b'{':
                        self._err("row is not a JSON object", d, p, n)
                    if fast:
                        v = self._fast(d, p, n, self._row_role(), self._depth + 1, 1, &q)
                        if q >= 0:
                            PyList_Append(self._out, v)
                            f = &self._stack[self._depth - 1]
                            f.expect = EX_COMMA_OR_END
                            p = q
                            if self._shape == SH_VIEW and _row_fast and _plain_enabled:
                                # the rows that follow in this chunk, in C; a row the C
                                # code gives up on (its ',' consumed) goes to _fast_rowv,
                                # or, when it does not end in this chunk, to the frames
                                while cc_view_rows(d, p, n, self._out, &q) == 2:
                                    p = q
                                    q = -1   # (_fast_rowv sets it only when it completes)
                                    v = self._fast_rowv(d, p, n, self._depth + 1, 1, &q)
                                    if q < 0:
                                        f = &self._stack[self._depth - 1]
                                        f.expect = EX_VALUE
                                        fast = False
                                        break
                                    PyList_Append(self._out, v)
                                    p = q
                                else:
                                    p = q
                            continue
                        fast = False
                    self._push(self._row_role(), 1)
                    p += 1
                    continue
                if role == R_META and f.kid == self._rows_kid:
                    if c != b'[':
                        self._err("the row array is not an array", d, p, n)
                    self._push(R_ROWS, 0)
                    p += 1
                    continue
                if c == b'{' or c == b'[':
                    if fast:
                        v = self._fast(d, p, n, self._child_role(f, c == b'{'), self._depth + 1, 1, &q)
                        if q >= 0:
                            self._deliver(v)
                            p = q
                            continue
                        fast = False
                        f = &self._stack[self._depth - 1]
                    self._push(self._child_role(f, c == b'{'), c == b'{')
                    p += 1
                    continue
                if c != b'"':
                    if c == b'-' or (b'0' <= c <= b'9') or (b'a' <= c <= b'z'):
                        q = p + 1
                        while q < n and SCALAR[d[q]]:
                            q += 1
                        if q >= n:
                            self._tok_len = 0
                            self._tok_append(d + p, n - p)
                            self._tok_kind = TOK_SCALAR
                            return 0
                        self._got_scalar(d + p, q - p)
                        p = q
                        continue
                    self._err("expected a JSON value", d, p, n)
                self._tok_key = False

            # a string token starting at d[p] == '"' (key or value)
            q = p + 1
            flags = 0
            while True:
                q = cc_skip_plain8(d, q, n)
                while q < n and STR_STOP[d[q]] == 0:
                    q += 1
                if q >= n:
                    self._tok_len = 0
                    self._tok_append(d + p + 1, n - p - 1)
                    self._tok_kind = TOK_STR
                    self._tok_flags = flags
                    self._tok_esc = False
                    return 0
                c = d[q]
                k = STR_STOP[c]
                if k == 2:
                    flags |= SF_HIGH
                    q += 1
                elif c == b'\\':
                    flags |= SF_ESC
                    if q + 1 >= n:
                        self._tok_len = 0
                        self._tok_append(d + p + 1, n - p - 1)
                        self._tok_kind = TOK_STR
                        self._tok_flags = flags
                        self._tok_esc = True
                        return 0
                    q += 2
                elif c == b'"':
                    break
                else:
                    self._err("control character in a string", d, q, n)
            self._got_string(d + p + 1, q - p - 1, flags, n - p - 1)
            p = q + 1

