"""The bulk loader's JSON Lines scanner (couchcore._scan: the Cython couchcore_ext._scan and its
pure-Python twin) and couchcore.bulk.JsonLines, on canned bytes (no server: the batches the
loader would send are compared with what the general per-line path builds)."""

from __future__ import annotations

import io
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import couchcore.bulk as bulk
from couchcore import codec
from couchcore.bulk import JsonLines, Loader
from couchcore.errors import CouchcoreError
from couchcore.protocol.bulk import BatchOutcome, PackedBodies, _all_ok
from couchcore._scan import FlightPy, count_ok_py, scan_jsonl_py

try:
    from couchcore_ext._scan import Flight as CyFlight
    from couchcore_ext._scan import count_ok as cy_count_ok
    from couchcore_ext._scan import scan_jsonl as cy_scan
except ImportError:  # the extension is not built here: only the pure-Python twin is tested
    cy_scan = CyFlight = cy_count_ok = None

SCANNERS = [pytest.param((scan_jsonl_py, FlightPy, "python"), id="python")]
if cy_scan is not None:
    SCANNERS.append(pytest.param((cy_scan, CyFlight, "cython"), id="cython"))

PREFIX = "0123456789abcdef012a"


@pytest.fixture(params=SCANNERS)
def scanner(request, monkeypatch):
    scan, flight, name = request.param
    monkeypatch.setattr(bulk, "_scan_jsonl", scan)
    monkeypatch.setattr(bulk, "_Flight", flight)
    monkeypatch.setattr(bulk, "_SCAN_ENGINE", name)
    return request.param


def flight_for(scan):
    """A fresh in-flight set of the scanner's own engine."""
    return CyFlight() if scan is cy_scan else FlightPy()


def listed(docs):
    """``(ids, bodies, lines)`` of packed documents."""
    return [docs.docid(i) for i in range(len(docs))], list(docs), docs.lines()


def gen(n: int) -> str:
    return PREFIX + "%012x" % n


def scan_all(scan, text: bytes, **kw):
    """One scan call over all of ``text`` (eof): (ids, bodies, lines, result)."""
    docs = PackedBodies()
    opts = dict(flight=flight_for(scan), need_rev=False, gen_ids=True, id_prefix=PREFIX.encode(), id_field=None)
    opts.update(kw)
    decode = codec.document_head_decoder(opts["id_field"].decode() if opts["id_field"] else None)
    result = scan(text, 0, True, 10 ** 6, 0, 0, opts["flight"], opts["need_rev"], opts["gen_ids"],
                  opts["id_prefix"], opts["id_field"], decode, docs)
    return (*listed(docs), result)


def batches(source, batch_size=3, **options):
    """What a Loader reads from ``source``: [(ids, bodies, lines)] and the rejects (no sending:
    the batches are settled by hand, as a load of all-ok answers would)."""
    rejected = []
    loader = Loader(types.SimpleNamespace(name="db", server=None), source, batch_size, 2,
                    on_reject=lambda r: rejected.append((r.line, r.id, r.error, r.reason, r.doc, r.text)), **options)
    out = []
    while True:
        batch = loader._released() or loader._fresh()
        if batch is None:
            break
        if batch is bulk._EMPTY:
            continue
        out.append(([batch.ids[i] for i in range(len(batch.ids))], list(batch.bodies), list(batch.lines)))
        outcome = BatchOutcome()
        outcome.written = len(batch.docs)
        loader._handle(batch, outcome, [])
    assert not len(loader._flight) and not loader._waiting  # every key left the in-flight set
    return out, rejected, loader.report.read


def general_path(text: bytes, **options):
    """The same input as ``(line, bytes)`` items: the loader's general path, line by line."""
    items = [(n, line) for n, line in enumerate(io.BytesIO(text), 1)]
    return batches(iter(items), **options)


@pytest.fixture(autouse=True)
def fixed_prefix(monkeypatch):
    monkeypatch.setattr(bulk, "_new_prefix", lambda: PREFIX)


# -- the scanner on its own ------------------------------------------------------------------


@pytest.mark.parametrize("line, docid", [
    (b'{"_id":"a","x":1}', "a"),
    (b'  {  "_id" :  "a" , "x" : [1, 2.5e-3, -0, true, false, null, {}] }  \r', "a"),
    (b'\t{"x":{"_id":"nested"},"_id":"top"}', "top"),
    (b'{"x":[{"_id":"nested"}],"y":{"z":{"_id":1}},"_id":"top"}', "top"),
    (b'{"_id":"\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80","s":"\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud800"}',
     "\u00e9\u2603\U0001F600"),
    (b'{"_rev":"1-a","_id":"r"}', "r"),
    (b'{"":1,"_id":"e"}', "e"),
])
def test_a_valid_line_with_a_top_level_id_is_settled_as_it_is(scanner, line, docid):
    scan = scanner[0]
    ids, bodies, lines, (pos, count, blanks, slow) = scan_all(scan, line + b"\n")
    assert (ids, bodies, lines) == ([docid], [line + b"\n"], [1])
    assert (pos, count, blanks, slow) == (len(line) + 1, 1, 0, -1)
    assert codec.document_head_decoder()(line).id == docid  # the reference agrees


def test_nested_ids_do_not_count_a_document_without_one_gets_a_generated_id(scanner):
    scan = scanner[0]
    ids, bodies, _, result = scan_all(scan, b'{"a":{"_id":"x"},"b":[{"_id":"y"}]}\n')
    assert result[3] == -1 and ids == [gen(1)]
    assert bodies == [b'{"_id":"' + PREFIX.encode() + b'000000000001","a":{"_id":"x"},"b":[{"_id":"y"}]}\n']


@pytest.mark.parametrize("line", [
    b'{"a":1', b'{"a":}', b"{'a':1}", b'{"a":1}}', b'{"a":1} x', b'{"a":1}{"b":2}', b'[1]', b'"s"', b'1', b'null',
    b'{"a":NaN}', b'{"a":Infinity}', b'{"a":-Infinity}', b'{"a":01}', b'{"a":1.}', b'{"a":.5}', b'{"a":1e}',
    b'{"a":+1}', b'{"a":"\x01"}', b'{"a":"\xff"}', b'{"a":"\xc0\xaf"}', b'{"a":"\xed\xa0\x80"}',
    b'{"a":"\xf4\x90\x80\x80"}', b'{"a":"\xe2\x98"}', b'\xef\xbb\xbf{"a":1}', b'{"a":1,}', b'{,}', b'{"a" 1}',
    b'{"a":[1,]}', b'{"a":[,1]}', b'{"a":tru}', b'{"a":"\\x"}', b'{"a":"\\u12g4"}', b'{"a":"x}', b'{"a":1}\x0c',
    b'{1:2}', b'{"a":1 "b":2}', b'{"a":[1 2]}', b'{"a":{"b":1]}', b'{"a":[1}]',
])
def test_malformed_lines_are_never_settled(scanner, line):
    scan = scanner[0]
    ids, bodies, lines, (pos, count, blanks, slow) = scan_all(scan, line + b"\n")
    assert (ids, count, pos, slow) == ([], 0, 0, len(line) + 1)
    with pytest.raises(CouchcoreError):
        codec.document_head_decoder()(line)


@pytest.mark.parametrize("line", [
    b'{"_id":null}', b'{"_id":1}', b'{"_id":""}', b'{"_id":["a"]}', b'{"_id":{"a":1}}', b'{"_load_error":{},"_id":"a"}',
    b'{"_rev":1,"_id":"a"}',
])
def test_lines_that_need_a_decision_stop_the_scan(scanner, line):
    scan = scanner[0]
    ids, _, _, (pos, count, _, slow) = scan_all(scan, b'{"_id":"before"}\n' + line + b'\n{"_id":"after"}\n')
    assert ids == ["before"] and count == 1 and slow == pos + len(line) + 1


def test_the_c_scanner_leaves_escaped_keys_and_ids_and_duplicate_ids_to_the_reference():
    if cy_scan is None:
        pytest.skip("the Cython extension is not built")
    for line in (b'{"\\u005fid":"x"}', b'{"_id":"\\u0078"}', b'{"_id":"a","_id":"b"}', b'{"\\u005fload_error":1}',
                 b'{"a":' + b"[" * 600 + b"]" * 600 + b"}", b'{"n":' + b"1" * 5000 + b"}"):
        assert scan_all(cy_scan, line + b"\n")[3][3] == len(line) + 1, line


def test_blank_lines_count_as_lines_not_records(scanner):
    scan = scanner[0]
    ids, _, lines, (pos, count, blanks, slow) = scan_all(scan, b'\n  \r\n{"_id":"a"}\n\t\n{"_id":"b"}')
    assert ids == ["a", "b"] and lines == [3, 5] and (count, blanks, slow) == (5, 3, -1)


@pytest.mark.parametrize("text", [
    b'{"_id":"a",\n"n":1}\n', b'{"_id":"a"\n}\n', b'{\n"_id":"a"}\n', b'{"_id":"a","n":[1,\n2]}\n',
    b'{"_id":"a","s":"x\ny"}\n', b'{"_id":"a","n":1\n}\n',
])
def test_a_record_never_spans_two_lines(scanner, text):
    """The C scanner finds each line's end while it validates it: a newline inside a value
    (where JSON allows whitespace, or in a string) ends the line, which is then not settled."""
    scan = scanner[0]
    ids, _, _, (pos, count, _, slow) = scan_all(scan, text)
    assert (ids, count, pos, slow) == ([], 0, 0, text.index(b"\n") + 1)


@pytest.mark.parametrize("tail", [b"", b" ", b"\r", b" \t\r"])
def test_a_buffer_that_ends_within_a_line_waits_for_the_rest(scanner, tail):
    scan = scanner[0]
    head = b'{"_id":"a"} \r\n'
    for text in (head + b'{"_id":"b"}' + tail, head + b'  ' + tail, head + b'{"_id":"b","n":1' + tail):
        docs = PackedBodies()
        result = scan(text, 0, False, 100, 0, 0, None, False, True, b"p", None, codec.document_head_decoder(), docs)
        assert listed(docs)[0] == ["a"] and result == (len(head), 1, 0, -1), text
    ids, _, lines, (pos, count, blanks, slow) = scan_all(scan, head + b'{"_id":"b"}' + tail)
    assert ids == ["a", "b"] and lines == [1, 2] and (count, slow) == (2, -1)


def test_without_eof_a_last_line_without_newline_waits(scanner):
    scan = scanner[0]
    docs = PackedBodies()
    result = scan(b'{"_id":"a"}\n{"_id":"b"}', 0, False, 100, 0, 0, None, False, True, b"p", None,
                  codec.document_head_decoder(), docs)
    assert listed(docs)[0] == ["a"] and result == (12, 1, 0, -1)


def test_max_lines_and_numbering_from_where_the_caller_is(scanner):
    scan = scanner[0]
    docs = PackedBodies()
    text = b'{"x":1}\n{"x":2}\n{"x":3}\n'
    result = scan(text, 8, True, 1, 41, 41, None, False, True, b"p", None, codec.document_head_decoder(), docs)
    assert result == (16, 1, 0, -1) and listed(docs) == (["p00000000002a"], [b'{"_id":"p00000000002a","x":2}\n'], [42])
    assert docs.mark(0) == (42, b"p00000000002a", 13, 0)  # a generated id is not in flight


def test_in_flight_ids_stop_the_scan_and_new_ones_are_recorded(scanner):
    scan, Flight = scanner[0], scanner[1]
    flight = Flight()
    assert flight.add(b"b", 7) == 0 and flight.add(b"b", 9) == 7 and flight.get(b"b") == 7
    docs = PackedBodies()
    result = scan(b'{"_id":"a"}\n{"_id":"b"}\n', 0, True, 100, 0, 0, flight, False, True, b"p", None,
                  codec.document_head_decoder(), docs)
    assert listed(docs)[0] == ["a"] and result[3] == 24 and len(flight) == 2 and flight.get(b"a") == 1
    assert docs.mark(0) == (1, b"a", 1, 1)
    assert flight.forget(docs) == [] and len(flight) == 1 and flight.get(b"a") == 0 and flight.get(b"b") == 7
    with pytest.raises(KeyError):  # forgotten twice: a bookkeeping error shows
        flight.forget(docs)


def test_the_in_flight_set_holds_releases_and_grows(scanner):
    """Both twins: held keys stay when forgotten (their index is returned), keys longer than a
    slot's inline room, many keys (the C table grows and reuses deleted slots), skip."""
    Flight = scanner[1]
    flight = Flight()
    keys = [b"k%d" % i + b"x" * (i % 70) for i in range(5000)]
    docs = PackedBodies()
    for n, key in enumerate(keys, 1):
        assert flight.add(key, n) == 0
        docs.append(b"{}", key, n, -1, 1)
    assert len(flight) == 5000 and all(flight.add(k, 1) == n for n, k in enumerate(keys, 1))
    flight.hold(keys[3])
    assert flight.held(keys[3]) and not flight.held(keys[4])
    assert flight.forget(docs, skip={10, 11}) == [3]
    assert len(flight) == 3 and flight.get(keys[10]) == 11 and flight.get(keys[3]) == 4
    flight.release(keys[3], 99, False)
    assert flight.get(keys[3]) == 99 and not flight.held(keys[3])
    flight.discard(keys[3])
    with pytest.raises(KeyError):
        flight.discard(keys[3])
    with pytest.raises(KeyError):
        flight.hold(b"nothing")
    with pytest.raises(ValueError):
        flight.add(b"zero", 0)
    for round_ in range(20):  # add and remove again and again: deleted slots are reused
        batch = PackedBodies()
        for n in range(500):
            key = b"r%d-%d" % (round_, n)
            assert flight.add(key, n + 1) == 0
            batch.append(b"{}", key, n + 1, -1, 1)
        assert flight.forget(batch) == []
    assert len(flight) == 2 and flight.add(b"", 5) == 0 and flight.get(b"") == 5


def test_new_edits_false_keys_are_id_and_rev(scanner):
    """With new_edits=False (need_rev) a key is the id, a NUL and the revision: two lines with
    one _id and two _revs are both settled; the same _id and _rev again stops the scan."""
    scan, Flight = scanner[0], scanner[1]
    flight = Flight()
    text = (b'{"_id":"a","_rev":"1-x"}\n{"_rev":"2-y","_id":"a","n":1}\n{"_id":"b","_rev":"1-x"}\n'
            b'{"_id":"a","_rev":"1-x","n":2}\n')
    docs = PackedBodies()
    result = scan(text, 0, True, 100, 0, 0, flight, True, False, b"p", None, codec.document_head_decoder(), docs)
    assert listed(docs)[0] == ["a", "a", "b"] and result[3] == len(text) and result[1] == 3
    assert [docs.key(i) for i in range(3)] == [b"a\0001-x", b"a\0002-y", b"b\0001-x"]
    assert docs.mark(1) == (2, b"a\0002-y", 1, 1) and flight.get(b"a\x001-x") == 1


def test_need_rev_and_id_field(scanner):
    scan = scanner[0]
    text = b'{"_id":"a","_rev":"1-x"}\n{"_id":"b"}\n'
    ids, _, _, result = scan_all(scan, text, flight=None, need_rev=True, gen_ids=False)
    assert ids == ["a"] and result[3] == len(text)
    ids, _, _, result = scan_all(scan, b'{"_id":"a","k":[1]}\n{"k":"x"}\n', id_field=b"k")
    assert ids == [] or ids == ["a"]  # the C scanner leaves the id field to the reference
    assert result[3] > 0  # a document that takes its id from the field is never settled here


# -- the loader: the same batches and rejects as the general path ----------------------------

TRICKY = b"\n".join([
    b'{"_id":"a","n":1}',
    b'',
    b'{"n":2}',
    b'{"\\u005fid":"esc","n":3}',
    b'{"_id":"\\u0078y","n":4}',
    b'{"_id":"dup1","_id":"dup2"}',
    b'{"_id":"a","n":"again"}',
    b'  { "n" : 5 }  ',
    b'{}',
    b'{ }',
    b'{"_id":null,"n":6}',
    b'{"_id":7}',
    b'[8]',
    b'{"n":9',
    b'\xef\xbb\xbf{"_id":"bom"}',
    b'{"_load_error":{"line":1,"error":"x","reason":"y"},"_id":"re","n":10}',
    b'{"nested":{"_id":"no"},"n":11}',
    b'{"_id":"\xc3\xa9","n":12}',
    b'{"_id":"bad","s":"\xff"}',
    b'   ',
    b'{"_id":"last"}',
])


@pytest.mark.parametrize("batch_size", [1, 2, 3, 1000])
@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 20])
def test_json_lines_give_the_batches_of_the_general_path(scanner, batch_size, chunk):
    expected = general_path(TRICKY, batch_size=batch_size)
    got = batches(JsonLines(io.BytesIO(TRICKY), chunk=chunk), batch_size=batch_size)
    assert got == expected
    errors = {11: "invalid_id", 12: "invalid_id", 13: "not_an_object", 14: "invalid_json", 15: "invalid_json", 19: "invalid_json"}
    if batch_size == 1000:  # line 1 is still in flight: the same _id again is a conflict
        errors[7] = "conflict"
    assert {r[0]: r[2] for r in got[1]} == errors


@pytest.mark.parametrize("options", [dict(new_edits=False), dict(id_field="n"), dict(upsert=True)])
def test_options_give_the_batches_of_the_general_path(scanner, options):
    text = TRICKY + b'\n{"_id":"r","_rev":"1-abc"}\n{"n":"key"}\n{"_id":"r","_rev":"2-abc"}\n{"_id":"r","_rev":"1-abc"}\n'
    assert batches(JsonLines(io.BytesIO(text), chunk=7), **options) == general_path(text, **options)


def test_a_bom_at_the_start_is_skipped_and_the_last_line_needs_no_newline(scanner):
    text = b'\xef\xbb\xbf{"_id":"a"}\n{"_id":"b"}'
    (batch,), rejected, read = batches(JsonLines(io.BytesIO(text), chunk=2), batch_size=10)
    assert batch[0] == ["a", "b"] and batch[2] == [1, 2] and not rejected and read == 2
    assert [line for _, line in JsonLines(io.BytesIO(text), chunk=2)] == [b'{"_id":"a"}\n', b'{"_id":"b"}']


@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
def test_skip_counts_lines(chunk):
    src = JsonLines(io.BytesIO(b'a\n\nb\nc'), chunk=chunk)
    assert src.skip(2) == 2 and src.buf[src.pos:src.pos + 1] in (b"b", b"")
    assert src.skip(5) == 2
    assert JsonLines(io.BytesIO(b""), chunk=chunk).skip(3) == 0


def test_a_resumed_load_skips_the_confirmed_lines(scanner, tmp_path):
    text = b"".join(b'{"n":%d}\n' % i for i in range(10))
    cp = bulk.Checkpoint(tmp_path / "cp.json")
    cp.records = cp.line = 4
    cp.id_prefix = PREFIX
    rejected = []
    loader = Loader(types.SimpleNamespace(name="db", server=None), JsonLines(io.BytesIO(text), chunk=5), 100, 1,
                    checkpoint=cp, on_reject=rejected.append)
    batch = loader._fresh()
    assert [batch.ids[i] for i in range(len(batch.ids))] == [gen(i) for i in range(5, 11)]
    assert batch.lines == [5, 6, 7, 8, 9, 10] and batch.bodies[0] == b'{"_id":"' + PREFIX.encode() + b'000000000005","n":4}\n'


# -- hypothesis: both scanners, the general path, the reference parser agree ------------------

_keys = st.sampled_from(["_id", "_rev", "a", "b", "\u00e9", "_x", "", "_load_error", "k"])
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 30, 10 ** 30),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(_keys, inner, max_size=3)), max_leaves=8)


@st.composite
def _object_text(draw) -> bytes:
    """A JSON object written by hand: any member order, duplicate keys, optional escapes
    in keys, whitespace variants; sometimes damaged."""
    members = draw(st.lists(st.tuples(_keys, st.one_of(_values, st.text(min_size=1, max_size=6))), max_size=5))
    if draw(st.booleans()):  # most documents have a string _id
        members.insert(draw(st.integers(0, len(members))), ("_id", draw(st.text(min_size=1, max_size=8))))
    ws = st.sampled_from(["", " ", "\t", "  ", "\r"])
    parts = []
    for key, value in members:
        k = codec.dumps(key).decode()
        if key and draw(st.integers(0, 5)) == 0:  # an escaped first character
            k = '"\\u%04x' % ord(key[0]) + k[2:]
        parts.append(draw(ws) + k + draw(ws) + ":" + draw(ws) + codec.dumps(value).decode() + draw(ws))
    text = (draw(ws) + "{" + ",".join(parts) + "}" + draw(ws)).encode("utf-8")
    damage = draw(st.integers(0, 9))
    if damage == 0 and text:
        cut = draw(st.integers(0, len(text) - 1))
        text = text[:cut] + text[cut + 1:]
    elif damage == 1:
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + draw(st.sampled_from([b",", b"}", b"\xff", b"\x01", b'"', b"NaN", b"[", b"\\"])) + text[pos:]
    return text.replace(b"\n", b"")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=_object_text())
def test_a_settled_line_is_what_the_reference_parser_reads(line):
    for scan in [s for s in (cy_scan, scan_jsonl_py) if s is not None]:
        ids, bodies, lines, (pos, count, blanks, slow) = scan_all(scan, line + b"\n")
        try:
            head = codec.document_head_decoder(engine="simplejson")(line)
        except CouchcoreError:
            head = None
        if slow >= 0 or blanks:
            continue
        assert head is not None, line  # never settles what the reference refuses
        assert head.load_error is codec.ABSENT
        if head.id is codec.ABSENT:
            assert ids == [gen(1)] and bodies[0].startswith(b'{"_id":"' + PREFIX.encode() + b'000000000001"')
            assert codec.loads(bodies[0]) == {"_id": PREFIX + "000000000001", **codec.loads(line)}
        else:
            assert ids == [head.id] and bodies == [line + b"\n"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(_object_text(), st.sampled_from([b"", b"  ", b'{"_id":"same"}', b"[1]"])),
                      max_size=12),
       batch_size=st.integers(1, 5), chunk=st.integers(1, 40))
def test_both_scanners_give_the_loads_of_the_general_path(monkeypatch, lines, batch_size, chunk):
    monkeypatch.setattr(bulk, "_new_prefix", lambda: PREFIX)
    text = b"\n".join(lines)
    expected = general_path(text, batch_size=batch_size)
    for scan, flight, name in [s.values[0] for s in SCANNERS]:
        monkeypatch.setattr(bulk, "_scan_jsonl", scan)
        monkeypatch.setattr(bulk, "_Flight", flight)
        monkeypatch.setattr(bulk, "_SCAN_ENGINE", name)
        assert batches(JsonLines(io.BytesIO(text), chunk=chunk), batch_size=batch_size) == expected, name


# -- reading _bulk_docs answers without decoding them -----------------------------------------


def test_all_ok_answers_are_counted_not_decoded():
    ok = b'[{"ok":true,"id":"a","rev":"1-x"},{"ok":true,"id":"b\\"ok\\":true","rev":"1-y"}]'
    assert _all_ok(ok, 2, True)
    assert not _all_ok(ok, 3, True)
    assert not _all_ok(b'[{"ok":true,"id":"a","rev":"1-x"},{"id":"b","error":"conflict","reason":"x"}]', 2, True)
    assert not _all_ok(b'[{"ok":true,"id":"a","rev":"1-x"}', 1, True)
    assert not _all_ok(b'{"ok":true}', 1, True)
    assert _all_ok(b"[]\n", 5, False) and not _all_ok(b"[]", 5, True)
    assert _all_ok(b' [{"ok":true,"id":"a","rev":"1-x"}]\n', 1, True)


@settings(max_examples=300, deadline=None)
@given(raw=st.lists(st.sampled_from([b'"ok":true', b'"error"', b'"', b"ok", b":", b"true", b"error", b"x", b"{", b"}",
                                     b",", b"[", b"]", b'\\"']), max_size=30).map(b"".join))
def test_count_ok_twins_agree_with_bytes_count(raw):
    expected_error = b'"error"' in raw
    assert count_ok_py(raw)[1] == expected_error
    if not expected_error:
        assert count_ok_py(raw)[0] == raw.count(b'"ok":true')
    if cy_count_ok is not None:
        assert cy_count_ok(raw) == count_ok_py(raw)


class _Trickle(io.RawIOBase):
    """A pipe that hands over at most ``step`` bytes per read (read1 included)."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.reads = data, step, 0

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        self.reads += 1
        piece, self.data = self.data[:min(n, self.step)], self.data[min(n, self.step):]
        return piece

    read = read1


def test_a_pipe_trickling_small_reads_and_a_huge_line(scanner):
    huge = b'{"_id":"big","s":"' + b"x" * 300_000 + b'"}'
    text = b'\xef\xbb\xbf{"_id":"a"}\n' + huge + b'\n{"n":1}\n'
    pipe = _Trickle(text, 4096)
    (batch,), rejected, read = batches(JsonLines(pipe, chunk=1 << 20), batch_size=10)
    assert batch[0][:2] == ["a", "big"] and batch[1][1] == huge + b"\n" and batch[2] == [1, 2, 3] and not rejected
    assert pipe.reads < 100  # one pass over the pieces, not one read per byte


class _Chunks(io.RawIOBase):
    """A stream handing over the given pieces, one per read (the very objects; then EOF)."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = list(pieces)

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""

    read = read1


def test_a_read_chunk_is_scanned_where_it_is_not_joined_to_the_cut_line():
    first = b'{"_id":"a"}\n{"_id":"b'
    second = b'"}\n{"_id":"c"}\n{"_id":"d"}\n'
    src = JsonLines(_Chunks([first, second]))
    assert src.fill() and src.buf is first and src.pos == 0
    src.pos = first.index(b"\n") + 1  # (as the scanner leaves it: the cut line is left)
    assert src.fill() and src.buf == b'{"_id":"b"}\n' and src.pos == 0  # the cut line alone, whole
    src.pos = len(src.buf)
    assert src.fill() and src.buf is second and src.buf[src.pos:] == b'{"_id":"c"}\n{"_id":"d"}\n'
    src.pos = len(src.buf)
    assert not src.fill() and src.eof


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.sampled_from([b'{"_id":"a"}', b"", b"  ", b'{"n":1}', b"x" * 40, b"\r"]), max_size=12),
       cuts=st.lists(st.integers(0, 300), max_size=8), trailing=st.booleans(), skip=st.integers(0, 14))
def test_json_lines_yield_every_line_however_the_reads_cut_the_input(lines, cuts, trailing, skip):
    text = b"\n".join(lines) + (b"\n" if trailing and lines else b"")
    bounds = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    parts = text.split(b"\n")
    expected = [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    assert list(JsonLines(_Chunks(pieces))) == list(enumerate(expected, 1))
    src = JsonLines(_Chunks(pieces))
    assert src.skip(skip) == min(skip, len(expected))
    assert [line for _, line in src] == expected[skip:]  # (numbered from the skip on)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(_object_text(), st.sampled_from([b"", b'{"_id":"same"}', b"[1]"])), max_size=10),
       cuts=st.lists(st.integers(0, 400), max_size=6), batch_size=st.integers(1, 4))
def test_both_scanners_give_the_general_path_loads_from_reads_cut_anywhere(monkeypatch, lines, cuts, batch_size):
    monkeypatch.setattr(bulk, "_new_prefix", lambda: PREFIX)
    text = b"\n".join(lines)
    bounds = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    expected = general_path(text, batch_size=batch_size)
    for scan, flight, name in [s.values[0] for s in SCANNERS]:
        monkeypatch.setattr(bulk, "_scan_jsonl", scan)
        monkeypatch.setattr(bulk, "_Flight", flight)
        monkeypatch.setattr(bulk, "_SCAN_ENGINE", name)
        assert batches(JsonLines(_Chunks(pieces)), batch_size=batch_size) == expected, name


# -- request bodies packed as they are read ------------------------------------------------------


def test_packed_bodies_are_the_request_body_of_their_documents():
    from couchcore.protocol.bulk import _payload

    docs = [b'{"_id":"a","n":1}\n', b'{"_id":"b"}', b'  {"_id":"c","s":"\xc3\xa9"}\r\n']
    for reserve in (0, 10, 1 << 16):
        packed = PackedBodies(reserve, docs=1)
        for doc in docs:
            packed.append(doc)
        assert len(packed) == 3 and list(packed) == docs and packed[-1] == docs[2]
        for suffix in (b"]}", b'],"new_edits":false}'):
            assert packed.payload(suffix) == _payload(docs, suffix)
            assert codec.loads(packed.payload(suffix))["docs"][2]["s"] == "\u00e9"
        packed[1] = b'{"_id":"b","_rev":"1-x"}'  # an upsert's new revision: the body follows it
        assert packed.payload(b"]}") == _payload([docs[0], b'{"_id":"b","_rev":"1-x"}', docs[2]], b"]}")
        with pytest.raises(IndexError):
            packed[3]
    assert PackedBodies().payload(b"]}") == b'{"docs":[]}'


@pytest.mark.parametrize("reserve", [0, 100, 1 << 20])
def test_the_scanner_packs_what_it_would_list(scanner, reserve):
    """The same lines, ids and bodies whether the scanner appends bodies to a list or packs
    them into a PackedBodies (growing it from any reserve), generated ids included."""
    from couchcore.protocol.bulk import _payload

    scan = scanner[0]
    text = b"".join(b'{"_id":"d%d","pad":"%s"}\n' % (i, b"x" * (i % 300)) if i % 3 else b'{"n":%d}\n' % i
                    for i in range(2000))
    expected = scan_all(scan, text)
    bodies = PackedBodies(reserve, docs=7)
    decode = codec.document_head_decoder(None)
    result = scan(text, 0, True, 10 ** 6, 0, 0, flight_for(scan), False, True, PREFIX.encode(), None, decode, bodies)
    assert (*listed(bodies), result) == expected
    assert expected[0] == [gen(i + 1) if i % 3 == 0 else "d%d" % i for i in range(2000)]
    assert expected[2] == list(range(1, 2001))
    assert bodies.payload(b"]}") == _payload(expected[1], b"]}")
    assert len(codec.loads(bodies.payload(b"]}"))["docs"]) == 2000


@pytest.mark.parametrize("seed", range(4))
def test_the_c_in_flight_set_behaves_as_its_twin_under_random_use(seed):
    """Random adds, lookups, removals (backward-shift deletion, wrapping around the table's
    end; growth) of the C set against the pure-Python twin: the same answers throughout."""
    if CyFlight is None:
        pytest.skip("the Cython extension is not built")
    import random

    rnd = random.Random(seed)
    c, py = CyFlight(), FlightPy()
    # keys of 2 to 53 bytes (the C set compares 8 to 16-byte keys as two words, copies keys of up
    # to 32 bytes into its entries, longer ones apart), many differing only in their middle
    universe = [b"." * rnd.choice((0, 0, 4, 9)) + b"k%d" % i + b"." * rnd.choice((0, 0, 3, 6, 10, 14, 20, 28, 40))
                for i in range(3000 if seed % 2 else 700)]
    present: set[bytes] = set()
    added: list[bytes] = []
    for step in range(30_000):
        key = rnd.choice(universe)
        op = rnd.random()
        if op < 0.5:
            line = step + 1
            assert c.add(key, line) == py.add(key, line), (step, key)
            present.add(key)
            added.append(key)
        elif op < 0.8:
            if op < 0.75 and added:
                key = added[rnd.randrange(len(added))]  # (most removals: of keys that are in)
            if key in present:
                c.discard(key)
                py.discard(key)
                present.discard(key)
            else:
                with pytest.raises(KeyError):
                    c.discard(key)
        else:
            assert c.get(key) == py.get(key), (step, key)
        assert len(c) == len(py) == len(present)
    assert all(c.get(k) == py.get(k) for k in universe)


@pytest.mark.parametrize("special", [b"\x00", b"\x01", b"\x1f", b"\x20", b"\x21", b"\x7f", b'\\"', b"\\n", b"\\u00e9", b"\\x",
                                     b"\\", b"\x80", b"\xc3\xa9", b"\xc3", b"\xe2\x98\x83", b"\xf0\x9f\x98\x80", b"\xff",
                                     b"#", b"[", b"\x5b\x5d", b"\x22"])
def test_every_kind_of_byte_at_every_offset_of_a_string(scanner, special):
    """The C scanner checks plain ASCII 8 bytes at a time: a byte that needs a look at any
    offset of the word (and of the tail) is seen, as by the reference parser."""
    scan = scanner[0]
    for at in range(0, 19):
        for length in (at, at + 1, at + 7, at + 9):
            s = b"a" * at + special + b"b" * (length - at)
            line = b'{"_id":"x","s":"' + s + b'","t":1}'
            ids, bodies, _, (pos, count, blanks, slow) = scan_all(scan, line + b"\n")
            try:
                codec.document_head_decoder(engine="simplejson")(line)
                ok = True
            except CouchcoreError:
                ok = False
            if ok:
                # settled by the scanner, or (C, an escape it leaves alone never here: values may have escapes)
                assert (ids, bodies) == (["x"], [line + b"\n"]), (at, length, special)
            else:
                assert ids == [] and slow == len(line) + 1, (at, length, special)


def test_packing_in_c_gives_the_bytes_of_the_python_extend(monkeypatch):
    """PackedBodies.extend with marks runs in C (couchcore_ext._scan.pack) when built: the same
    body, end offsets, keys and marks as the pure-Python extend, across growth."""
    import couchcore.protocol.bulk as pb

    if pb._pack is None:
        pytest.skip("the Cython extension is not built")
    bodies = [b'{"_id":"d%d","s":"%s"}' % (i, b"x" * (i % 90)) for i in range(700)]
    keys = [b"d%d" % i + (b"\0" + b"1-abc" if i % 5 == 0 else b"") for i in range(700)]
    lines = [i * 3 + 1 for i in range(700)]
    idlens = [len(b"d%d" % i) if i % 5 == 0 else -1 for i in range(700)]
    flags = [i % 2 for i in range(700)]
    got = PackedBodies(10, 3)
    got.append(b'{"first":1}', b"first", 1, -1, 1)
    got.extend(bodies, keys, lines, idlens, flags)
    monkeypatch.setattr(pb, "_pack", None)
    want = PackedBodies(10, 3)
    want.append(b'{"first":1}', b"first", 1, -1, 1)
    want.extend(bodies, keys, lines, idlens, flags)
    assert got.count == want.count == 701 and got.used == want.used and got.kused == want.kused
    assert got.buf[:got.used] == want.buf[:want.used] and got.keys[:got.kused] == want.keys[:want.kused]
    assert got.ends[:8 * 701] == want.ends[:8 * 701] and got.marks[:24 * 701] == want.marks[:24 * 701]
    assert [got.docid(i) for i in range(701)] == ["first"] + ["d%d" % i for i in range(700)]
    assert got.mark(6) == (16, b"d5\x001-abc", 2, 1) and got.payload(b"]}") == want.payload(b"]}")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.one_of(
    st.tuples(st.just("append"), st.binary(min_size=2, max_size=300)),
    st.tuples(st.just("extend"), st.lists(st.binary(min_size=2, max_size=50), max_size=30)),
    st.tuples(st.just("payload"), st.sampled_from([b"]}", b'],"new_edits":false}'])),
    st.tuples(st.just("subset"), st.just(b""))), max_size=14), reserve=st.sampled_from([0, 10, 5000]))
def test_a_sealed_body_is_the_packed_buffer_and_never_changes_afterwards(monkeypatch, ops, reserve):
    """With the extension, payload() hands out the buffer the documents were written into
    (couchcore_ext._scan.seal: no copy) -- the same bytes as the pure-Python join -- and a body
    handed out stays as it was whatever is added after it."""
    import couchcore.protocol.bulk as pb

    if pb._seal is None:
        pytest.skip("the Cython extension is not built")

    def run(c: bool) -> list:
        if not c:
            monkeypatch.setattr(pb, "_pack", None)
            monkeypatch.setattr(pb, "_seal", None)
        docs = PackedBodies(reserve, 4)
        handed: list[tuple[bytes, bytes]] = []
        seen = []
        n = 0
        for op, arg in ops:
            if op == "append":
                n += 1
                docs.append(arg, b"k%d" % n, n, -1, n % 2)
            elif op == "extend":
                keys = [b"k%d" % (n + j + 1) for j in range(len(arg))]
                docs.extend(arg, keys, list(range(n + 1, n + len(arg) + 1)), [-1] * len(arg), [1] * len(arg))
                n += len(arg)
            elif op == "subset":
                docs = docs.subset(list(range(0, len(docs), 2)))
            else:
                body = docs.payload(arg)
                if c and len(docs):
                    assert body is docs.buf and docs.payload(arg) is body  # no copy, and the same again
                handed.append((body, bytes(body)))
                seen.append(body)
            assert all(body == copy for body, copy in handed)  # a body handed out never changes
            seen.append([docs[i] for i in range(len(docs))] + [docs.mark(i) for i in range(len(docs))])
        seen.append(docs.payload(b"]}"))
        monkeypatch.undo()
        return seen

    assert run(True) == run(False)


def test_a_refused_pack_leaves_the_packed_bodies_as_they_were():
    """The C code holds a PackedBodies' body alone while it writes (``buf`` is ``None``
    meanwhile): a call refused before writing gives it back untouched."""
    import couchcore.protocol.bulk as pb

    if pb._pack is None:
        pytest.skip("the Cython extension is not built")
    docs = PackedBodies()
    docs.append(b'{"a":1}', b"k", 1)
    with pytest.raises(ValueError):
        pb._pack(docs, [b'{"b":2}'], [], [], [], [])
    assert docs.buf is not None and docs.payload(b"]}") == b'{"docs":[{"a":1}]}' and docs[0] == b'{"a":1}'
    docs.append(b'{"b":2}', b"j", 2)
    assert docs.payload(b"]}") == b'{"docs":[{"a":1},{"b":2}]}'


# -- the C scanner's fast paths (SSE2 runs of plain string bytes, the one-pass grammar walk) ----


def _reference_accepts(line: bytes) -> bool:
    try:
        codec.document_head_decoder(engine="simplejson")(line)
        return True
    except CouchcoreError:
        return False


def _settles_as_the_reference(scan, line: bytes, where: str, c_leaves: bool = False) -> None:
    """``line`` alone (newline-ended), last without newline (eof: the buffer ends right after it,
    so the last bytes are read without a 16-byte window) and followed by more lines (a window
    may reach past it): settled exactly when the reference parser accepts it (``c_leaves``: the
    C scanner leaves it to the reference whatever it is, e.g. an escape in a top-level key)."""
    ok = _reference_accepts(line) and not (c_leaves and scan is cy_scan)
    for text, tail in ((line + b"\n", b""), (line, b""), (line + b"\n", b'{"_id":"next"}\n' * 3)):
        ids, bodies, _, (pos, count, blanks, slow) = scan_all(scan, text + tail)
        if ok:
            assert ids[:1] == ["x"] and bodies[:1] == [text], (where, line)
        else:
            assert ids == [] and slow == len(text), (where, line)


@pytest.mark.parametrize("byte", [b for b in range(256) if b != 10])  # (a newline ends the record)
def test_every_byte_value_inside_a_string_at_every_offset_of_a_16_byte_window(scanner, byte):
    """Each of the 255 byte values but the newline, alone, at offsets 0..40 of a string value and of a key (so at
    every lane of the first, second and third 16-byte window and in the scalar tail), in a line
    that ends the buffer and in one that does not: settled exactly when the reference accepts."""
    scan = scanner[0]
    b = bytes([byte])
    for at in (0, 1, 7, 14, 15, 16, 17, 30, 31, 32, 33, 40):
        for after in (0, 1, 15, 16, 17):
            s = b"a" * at + b + b"b" * after
            _settles_as_the_reference(scan, b'{"_id":"x","s":"' + s + b'","t":1}', "value")
            _settles_as_the_reference(scan, b'{"_id":"x","' + s + b'":[0]}', "key", c_leaves=byte == 92)
            _settles_as_the_reference(scan, b'{"_id":"x","o":{"' + s + b'":0}}', "nested key")


@pytest.mark.parametrize("seq", [
    # valid UTF-8 at each length, and its edges
    b"\xc2\x80", b"\xdf\xbf", b"\xe0\xa0\x80", b"\xe1\x80\x80", b"\xec\xbf\xbf", b"\xed\x9f\xbf", b"\xee\x80\x80",
    b"\xef\xbf\xbf", b"\xf0\x90\x80\x80", b"\xf1\x80\x80\x80", b"\xf3\xbf\xbf\xbf", b"\xf4\x8f\xbf\xbf",
    # invalid: overlongs, surrogates, beyond U+10FFFF, lone continuation bytes, truncated sequences, bad continuations
    b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf0\x80\x80\x80",
    b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xff", b"\x80", b"\xbf",
    b"\xc3", b"\xe2\x98", b"\xf0\x9f\x98", b"\xc3\x28", b"\xe2\x28\xa1", b"\xe2\x82\x28", b"\xf0\x28\x8c\xbc",
    b"\xf0\x90\x28\xbc", b"\xf0\x90\x8c\x28",
    # escapes: every valid one, and bad ones
    b'\\"', b"\\\\", b"\\/", b"\\b", b"\\f", b"\\n", b"\\r", b"\\t", b"\\u0000", b"\\uFFFF", b"\\uabcd", b"\\ud83d\\ude00",
    b"\\ud800", b"\\a", b"\\x41", b"\\U0041", b"\\u", b"\\u1", b"\\u12", b"\\u123", b"\\u123g", b"\\ug123", b"\\u12G4",
    b"\\'", b"\\0", b"\\ ",
])
def test_utf8_and_escapes_at_window_edges_and_at_the_end_of_the_buffer(scanner, seq):
    """Multi-byte sequences and escapes that start at a 16-byte window's last lanes (so they
    cross into the next window or the scalar tail) and end the buffer: as the reference."""
    scan = scanner[0]
    for at in (0, 13, 14, 15, 16, 29, 31):
        s = b"a" * at + seq
        _settles_as_the_reference(scan, b'{"_id":"x","s":"' + s + b'"}', "value")
        _settles_as_the_reference(scan, b'{"_id":"x","s":["' + s + b'"]}', "array")


@pytest.mark.parametrize("number", [
    b"0", b"-0", b"1", b"-1", b"9", b"10", b"1234567890", b"-0.0", b"0.5", b"1.25e3", b"1E3", b"1e+3", b"1e-3",
    b"1.5E-07", b"-0e0", b"123456789012345678901234567890", b"1e999", b"0.000001",
    b"-", b"+1", b"01", b"-01", b"00", b"1.", b".5", b"1.e3", b"1e", b"1e+", b"1E-", b"1ee3", b"1e3.5", b"--1", b"-a",
    b"0x10", b"1_000", b"1.2.3", b"NaN", b"-Infinity", b"Infinity", b"0.", b"-.5", b"1e+-3", b"9" * 3999,
])
def test_numbers_at_the_edges(scanner, number):
    """A number as a top-level value, in an array (first, middle, last), as the last bytes of
    the buffer: settled exactly when the reference accepts it (3,999 digits still settled)."""
    scan = scanner[0]
    for line in (b'{"_id":"x","n":' + number + b"}", b'{"_id":"x","n":[' + number + b"]}",
                 b'{"_id":"x","n":[1,' + number + b",2]}", b'{"_id":"x","n":' + number + b' ,"m":true}',
                 b'{"n":' + number + b',"_id":"x"}'):
        _settles_as_the_reference(scan, line, "number")


@pytest.mark.parametrize("line", [
    b"{}", b"{ }", b'{"_id":"x"}', b'{"_id":"x","a":{}}', b'{"_id":"x","a":[]}', b'{"_id":"x","a":{ }}',
    b'{"_id":"x","a":[ ]}', b'{"_id":"x","a":[{}]}', b'{"_id":"x","a":[[]]}', b'{"_id":"x","a":{"b":{}}}',
    b'{"_id":"x","a":[{},[],{"c":[]}]}', b' { "_id" : "x" , "a" : [ 1 , { } , [ ] ] } ',
    b'{"_id":"x","a":{]}', b'{"_id":"x","a":[}]', b'{"_id":"x","a":{"b"}}', b'{"_id":"x","a":{"b":}}',
    b'{"_id":"x","a":[1,]}', b'{"_id":"x","a":{"b":1,}}', b'{"_id":"x",}', b'{,"_id":"x"}', b'{"_id":"x""a":1}',
    b'{"_id":"x","a":[1}', b'{"_id":"x","a":{"b":1]}', b'{"_id":"x"}}', b'{"_id":"x"]', b'{"_id":"x","a":[[]}',
    b'{"_id":"x","a":true,"b":false,"c":null}', b'{"_id":"x","a":tru}', b'{"_id":"x","a":nul}', b'{"_id":"x","a":fals}',
    b'{"_id":"x","a":True}', b'{"_id":"x","a"  :  1  }', b'{"_id":"x"\t,\t"a"\r:\r1}', b'{"_id":"x","a":1}\x0b',
])
def test_structure_empty_containers_and_separators(scanner, line):
    """Empty objects and arrays at each depth, whitespace around every separator, missing or
    extra commas, colons and closes, literals cut short: the one-pass walk agrees with the reference."""
    scan = scanner[0]
    if line.startswith((b"{}", b"{ }")):  # no _id: a generated one (the Python twin leaves {} to the general path)
        ids, bodies, _, result = scan_all(scan, line + b"\n")
        if scan is cy_scan or result[3] == -1:
            assert result[3] == -1 and ids == [gen(1)] and bodies == [b'{"_id":"' + PREFIX.encode() + b'000000000001"}\n']
        else:
            assert ids == [] and result[3] == len(line) + 1
        return
    _settles_as_the_reference(scan, line, "structure")


def test_count_ok_across_16_byte_windows_and_the_buffer_end():
    """The C ``count_ok`` walks from quote to quote 16 bytes at a time: every alignment of the
    texts it looks for, and answers that end right after them, count as ``bytes.count`` does."""
    if cy_count_ok is None:
        pytest.skip("the Cython extension is not built")
    for pad in range(0, 40):
        for body in (b'"ok":true', b'"ok":tru', b'"error"', b'"erro"', b'"ok":true"ok":true', b'x"ok":true,"error":1'):
            raw = b"x" * pad + body
            for text in (raw, raw + b"]", raw + b" " * 17):
                assert cy_count_ok(text) == count_ok_py(text), text
                if b'"error"' not in text:
                    assert cy_count_ok(text) == (text.count(b'"ok":true'), False)


# -- the report classes: dataclasses (asdict/replace/fields work on them) ------------------------


def test_the_report_classes_are_dataclasses():
    import dataclasses

    from couchcore.bulk import LoadReport, Rejected

    r = Rejected(3, "a", "conflict", "Document update conflict.", b'{"_id":"a"}\n')
    assert repr(r) == ("Rejected(line=3, id='a', error='conflict', reason='Document update conflict.', "
                       "doc=b'{\"_id\":\"a\"}\\n', text=None)")
    assert r == Rejected(line=3, id="a", error="conflict", reason="Document update conflict.", doc=b'{"_id":"a"}\n')
    assert r != Rejected(3, "a", "conflict", "Document update conflict.") and r != (3, "a")
    assert Rejected.__hash__ is None and Rejected.__match_args__ == ("line", "id", "error", "reason", "doc", "text")
    report = LoadReport(written=30, skipped=10, rejected=60)
    assert repr(report) == ("LoadReport(read=0, written=30, skipped=10, rejected=60, retried=0, batches=0, unsettled=0, "
                            "seconds=0.0, interrupted=False, failures=[], unknown=0, earlier={})")
    assert report == LoadReport(0, 30, 10, 60) and report != LoadReport(0, 30, 10, 61)
    assert LoadReport().failures == [] and LoadReport().failures is not LoadReport().failures
    assert LoadReport(failures=[r]).failures == [r] and LoadReport.__hash__ is None
    match report:
        case LoadReport(read, written, skipped):
            assert (read, written, skipped) == (0, 30, 10)
    assert dataclasses.asdict(report)["written"] == 30 and dataclasses.replace(r, line=4).line == 4
    assert [f.name for f in dataclasses.fields(Rejected)] == ["line", "id", "error", "reason", "doc", "text"]


@pytest.mark.parametrize("need_rev", [False, True])
def test_ids_of_every_length_around_the_key_copy_sizes_are_keyed_whole(scanner, need_rev):
    """Ids of 1 to 70 bytes (the key copy's size classes: under 8, 8-16, 16-32, over 32 --
    copied by fixed-size moves up to 32 bytes, by memcpy above), ASCII and multi-byte, with and
    without a ``_rev`` after them: each document's key is its id's bytes (then a NUL and the
    ``_rev`` when revisions are loaded as they are), its idlen the id's length, whatever bytes
    follow the id in the line or come before it in the keys buffer."""
    scan = scanner[0]
    ids = [("k" * (n - 1) + chr(48 + n % 10)).encode() for n in range(1, 71)]
    ids += [("\u00e9" * (n // 2) + "z" * (n % 2)).encode() for n in range(1, 71)]
    text = b"".join(b'{"_id":"%s","_rev":"%d-%s","x":"%s"}\n' % (i, k + 1, b"r" * (k % 40), b"y" * k)
                    for k, i in enumerate(ids))
    ids_out, bodies, lines, result = scan_all(scan, text, need_rev=need_rev)
    assert result == (len(text), len(ids), 0, -1)
    assert [i.encode() for i in ids_out] == ids
    assert bodies == text.splitlines(keepends=True)
    docs = PackedBodies()
    scan(text, 0, True, 10 ** 6, 0, 0, flight_for(scan), need_rev, True, PREFIX.encode(), None,
         codec.document_head_decoder(None), docs)
    for k, i in enumerate(ids):
        line, key, idlen, flags = docs.mark(k)
        assert (line, idlen, flags) == (k + 1, len(i), 1)
        assert key == (i + b"\0" + b"%d-%s" % (k + 1, b"r" * (k % 40)) if need_rev else i)


_SPACED = [b'{', b'"_id"', b':', b'"w1"', b',', b'"a"', b':', b'[', b'1', b',', b'{', b'"b"', b':', b'[', b']', b',',
           b'"c"', b':', b'{', b'}', b'}', b',', b'"s"', b',', b'-2.5e3', b',', b'true', b']', b',', b'"n"', b':',
           b'null', b'}']


@pytest.mark.skipif(cy_scan is None, reason="the extension is not built")
@pytest.mark.parametrize("ws", [b" ", b"\t", b"\r", b" \t\r ", b"\n", b"\x0b", b"\x00"])
def test_white_space_between_any_two_tokens_is_read_alike_by_both_scanners(ws):
    """White space (and bytes that are not JSON white space within a line: a newline, \\v, NUL)
    at every token boundary of a document with nested arrays and objects, one boundary at a time
    and all at once: the C scanner settles (or stops at) each line as its pure-Python twin does,
    and settles it exactly when the white space is JSON's (the C scanner skips it only where the
    expected byte is not found)."""
    texts = [b"".join(_SPACED[:k]) + ws + b"".join(_SPACED[k:]) for k in range(len(_SPACED) + 1)]
    texts.append(ws.join(_SPACED))
    for text in texts:
        got = [scan_all(scan, text + b"\n") for scan in (cy_scan, scan_jsonl_py)]
        assert got[0] == got[1], text
        ids, bodies, lines, (pos, count, blanks, slow) = got[0]
        if ws.strip(b" \t\r") == b"":  # JSON white space: settled whole
            assert (ids, bodies, slow) == (["w1"], [text + b"\n"], -1), text
        elif ws == b"\n" and text.count(ws) == 1 and (text.startswith(ws) or text.endswith(ws)):
            assert ids == ["w1"] and slow == -1, text  # a blank line before or after the document
        else:  # the first line is not one whole JSON object: the scan stops there
            assert ids == [] and slow >= 0, text
