"""urllib3's chunked-body decoder on canned bytes: the C ``couchcore_ext._dechunk.Dechunker``
and its pure-Python twin ``couchcore.transport.urllib3.PyDechunker`` give the payload, in the
same pieces, and report broken framing at the same byte (every split point, byte by byte,
hypothesis fuzz of valid and mutated framing)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from couchcore.transport import urllib3 as u3t
from couchcore.transport.urllib3 import MAX_LINE, PIECE_SIZE, PyDechunker

try:
    from couchcore_ext._dechunk import Dechunker as CyDechunker
except ImportError:  # the extension is not built here: only the pure-Python twin is tested
    CyDechunker = None

TWINS = [pytest.param(PyDechunker, id="python")]
if CyDechunker is not None:
    TWINS.append(pytest.param(CyDechunker, id="cython"))
BOTH = CyDechunker is not None


def run(cls, pieces, reuse=True):
    """Feed ``pieces`` (through one reused buffer, as the transport does); returns
    ``(list of the pieces each feed returned, done, error)``.  Stops at the first error."""
    d = cls()
    out = []
    buf = bytearray(max((len(p) for p in pieces), default=0) + 7)
    for p in pieces:
        if reuse:
            buf[:len(p)] = p
            got = d.feed(buf, len(p))
        else:
            got = d.feed(p)
        assert all(type(g) is bytes and g for g in got)
        out.append(got)
        if d.error is not None:
            with pytest.raises(ValueError, match=d.error):
                d.feed(b"1\r\nx\r\n")
            break
    return out, d.done, d.error


def payload(out):
    return b"".join(b"".join(g) for g in out)


def frame(payloads, ext=b"", trailer=b"", lead=b"", bws=b""):
    out = b"".join(b"%s%x%s%s\r\n%s\r\n" % (lead, len(p), bws, ext, p) for p in payloads)
    return out + b"%s0%s%s\r\n%s\r\n" % (lead, bws, ext, trailer)


PAYLOADS = [b'{"total_rows":3,"rows":[\r\n', b'{"id":"a"}', b",\r\n" + b"x" * 300, b"\r\n]}\n"]
VARIANTS = [
    dict(),
    dict(ext=b";name=value"),
    dict(ext=b';a="b\rc";d'),          # a bare CR inside an extension
    dict(trailer=b"X-Trailer: 1\r\nY: 2\r\n"),
    dict(trailer=b"\r\rX: 1\r\n"),      # trailer lines beginning with CR
    dict(bws=b" \t", ext=b" ; a=b", trailer=b"T: v\r\n"),
    dict(lead=b"  "),
    dict(lead=b"0" * 13),                # up to 16 hex digits with leading zeros
]


@pytest.mark.parametrize("cls", TWINS)
@pytest.mark.parametrize("variant", VARIANTS, ids=[str(i) for i in range(len(VARIANTS))])
def test_every_two_piece_split(cls, variant):
    wire = frame(PAYLOADS, **variant)
    want = b"".join(PAYLOADS)
    for i in range(len(wire) + 1):
        out, done, error = run(cls, [p for p in (wire[:i], wire[i:]) if p])
        assert (payload(out), done, error) == (want, True, None), i


@pytest.mark.parametrize("cls", TWINS)
def test_byte_by_byte_and_bytes_after_the_end_ignored(cls):
    wire = frame(PAYLOADS, ext=b";x=1", trailer=b"T: 1\r\n")
    out, done, error = run(cls, [wire[i:i + 1] for i in range(len(wire))])
    assert (payload(out), done, error) == (b"".join(PAYLOADS), True, None)
    out, done, error = run(cls, [wire + b"HTTP/1.1 200 OK\r\n", b"more"], reuse=False)
    assert (payload(out), done, error) == (b"".join(PAYLOADS), True, None)


@pytest.mark.parametrize("cls", TWINS)
def test_pieces_are_piece_size_except_the_last_of_each_feed(cls):
    payloads = [bytes([65 + i % 26]) * 1490 for i in range(40)]
    wire = frame(payloads)
    whole = b"".join(payloads)
    out, done, _ = run(cls, [wire])
    assert done and len(out) == 1
    assert [len(g) for g in out[0]] == [PIECE_SIZE] * (len(whole) // PIECE_SIZE) + [len(whole) % PIECE_SIZE]
    assert b"".join(out[0]) == whole
    # fed in two reads: each read's payload is cut on its own (nothing held back between reads)
    cut = len(wire) // 3
    out, done, _ = run(cls, [wire[:cut], wire[cut:]])
    assert done and payload(out) == whole
    for got in out:
        assert all(len(g) == PIECE_SIZE for g in got[:-1]) and 0 < len(got[-1]) <= PIECE_SIZE


@pytest.mark.parametrize("cls", TWINS)
def test_a_chunk_larger_than_the_reads(cls):
    big = bytes(range(256)) * 1000  # 256,000 bytes in one HTTP chunk
    wire = frame([big, b"tail"])
    pieces = [wire[i:i + 65536] for i in range(0, len(wire), 65536)]
    out, done, error = run(cls, pieces)
    assert (payload(out), done, error) == (big + b"tail", True, None)


BAD = [
    (b"zz\r\nab\r\n0\r\n\r\n", "invalid chunk size line"),     # not hex
    (b"-2\r\nab\r\n0\r\n\r\n", "invalid chunk size line"),     # signed
    (b"0x2\r\nab\r\n0\r\n\r\n", "invalid chunk size line"),    # int(..., 16) would take it; HTTP does not
    (b"+2\r\nab\r\n0\r\n\r\n", "invalid chunk size line"),
    (b"1 2\r\nab\r\n0\r\n\r\n", "invalid chunk size line"),    # space between digits
    (b"2\r\nabXY0\r\n\r\n", "chunk not followed by CRLF"),
    (b"2\r\nab\rX0\r\n\r\n", "chunk not followed by CRLF"),
    (b"2\r\nab\n\r0\r\n\r\n", "chunk not followed by CRLF"),
    (b"\r\nab\r\n0\r\n\r\n", "invalid chunk size line"),      # empty size line
    (b" \t\r\nab\r\n0\r\n\r\n", "invalid chunk size line"),   # blank size line
    (b";x\r\nab\r\n0\r\n\r\n", "invalid chunk size line"),     # extension without a size
    (b"2\rX\nab\r\n0\r\n\r\n", "invalid chunk size line"),     # bare CR after the size
    (b"2\n\r\nab\r\n0\r\n\r\n", "invalid chunk size line"),    # bare LF
    (b"11111111111111111\r\n", "invalid chunk size line"),     # 17 hex digits
    (b"2\r\nab\r\n1\r\nc\r\n2\r\nde\r\nq", "invalid chunk size line"),  # after good chunks
]


@pytest.mark.parametrize("cls", TWINS)
@pytest.mark.parametrize("wire,message", BAD)
def test_bad_framing_at_every_split(cls, wire, message):
    for i in range(len(wire) + 1):
        for pieces in ([p for p in (wire[:i], wire[i:]) if p], [wire[j:j + 1] for j in range(len(wire))]):
            out, done, error = run(cls, pieces)
            assert error == message and not done, (i, pieces)
            # the payload before the offending byte was handed over
            if wire.startswith(b"2\r\nab\r\n"):
                assert payload(out).startswith(b"ab")


@pytest.mark.parametrize("cls", TWINS)
def test_lines_longer_than_max_line(cls):
    ext = b";" + b"e" * (MAX_LINE - 2)  # a size line of exactly MAX_LINE bytes: accepted
    wire = b"2" + ext + b"\r\nab\r\n0\r\n\r\n"
    assert run(cls, [wire])[1:] == (True, None)
    assert run(cls, [b"2" + ext + b"e\r\nab\r\n0\r\n\r\n"])[1:] == (False, "chunk size or trailer line too long")
    trailer = b"T: " + b"v" * (MAX_LINE - 3)
    assert run(cls, [b"0\r\n" + trailer + b"\r\n\r\n"])[1:] == (True, None)
    assert run(cls, [b"0\r\n" + trailer + b"v\r\n\r\n"])[1:] == (False, "chunk size or trailer line too long")
    # an endless line is refused before it ends, whatever the reads
    for step in (1000, 16000, 70000):
        wire = b"1" + b";" * 200000
        out, done, error = run(cls, [wire[i:i + step] for i in range(0, len(wire), step)])
        assert error == "chunk size or trailer line too long"
        assert len(out) <= (MAX_LINE + 3) // step + 1
    # invalid at a byte before the limit wins over the length
    assert run(cls, [b" " * (MAX_LINE + 1) + b"z\r\n"])[2] == "invalid chunk size line"
    assert run(cls, [b" " * (MAX_LINE + 2) + b"z\r\n"])[2] == "chunk size or trailer line too long"


@pytest.mark.parametrize("cls", TWINS)
def test_cut_short_is_not_done(cls):
    for wire in (b"5\r\nab", b"2\r\nab\r\n", b"2\r\nab\r\n0\r\n", b"2\r\nab\r\n0\r\nT: 1\r\n", b"2\r\nab\r"):
        out, done, error = run(cls, [wire])
        assert (done, error) == (False, None)
        assert payload(out) == b"ab"


# -- the twins agree on anything -----------------------------------------------------------------


def _random_wire(rnd: random.Random) -> bytes:
    payloads = [bytes(rnd.randrange(256) for _ in range(rnd.choice((1, 2, 17, 300, 1490, 9000))))
                for _ in range(rnd.randrange(0, 6))]
    return frame(payloads, ext=rnd.choice((b"", b";a=1", b" ;b", b";\r")),
                 trailer=rnd.choice((b"", b"T: 1\r\n", b"\r\r\n")), lead=rnd.choice((b"", b" ", b"00")),
                 bws=rnd.choice((b"", b" ", b"\t ")))


@pytest.mark.skipif(not BOTH, reason="couchcore_ext._dechunk is not built")
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), mutations=st.lists(st.tuples(st.floats(0, 1), st.binary(max_size=3)), max_size=4),
       cuts=st.lists(st.floats(0, 1), max_size=6))
def test_twins_agree_on_mutated_framing(seed, mutations, cuts):
    rnd = random.Random(seed)
    wire = bytearray(_random_wire(rnd))
    for where, insert in mutations:  # replace a few bytes (framing or payload) by others
        i = int(where * len(wire))
        wire[i:i + len(insert)] = insert
    points = sorted({int(c * len(wire)) for c in cuts} | {0, len(wire)})
    pieces = [bytes(wire[a:b]) for a, b in zip(points, points[1:]) if b > a]
    assert run(PyDechunker, pieces) == run(CyDechunker, pieces)


@pytest.mark.skipif(not BOTH, reason="couchcore_ext._dechunk is not built")
@settings(max_examples=300, deadline=None)
@given(wire=st.binary(max_size=60), cut=st.integers(0, 60))
def test_twins_agree_on_arbitrary_bytes(wire, cut):
    for pieces in ([wire[:cut], wire[cut:]], [wire[i:i + 1] for i in range(len(wire))]):
        pieces = [p for p in pieces if p]
        assert run(PyDechunker, pieces) == run(CyDechunker, pieces)


def test_the_transport_uses_the_c_decoder_when_built():
    assert u3t.DECHUNK_BACKEND == ("cython" if BOTH else "python")
    assert u3t.Dechunker is (CyDechunker if BOTH else PyDechunker)
