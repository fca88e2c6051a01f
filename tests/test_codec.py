"""couchcore.codec: both JSON engines (orjson, simplejson) give the same bytes and values.

Every test that takes the ``engine`` fixture runs once per installed engine; the
cross-engine property tests compare the two directly (skipped when orjson is missing).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import math
import os
import re
import subprocess
import sys
import threading
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from couchcore import codec
from couchcore.errors import InvalidDocument, InvalidOption, ParseError
from couchcore.models import Document

FIXTURE_SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
both_engines = pytest.mark.skipif(len(codec.ENGINES) < 2, reason="orjson is not installed")


@pytest.fixture(params=codec.ENGINES)
def engine(request):
    previous = codec.use(request.param)
    assert codec.ENGINE == request.param
    yield request.param
    codec.use(previous)


def encode_with(name, obj):
    previous = codec.use(name)
    try:
        return codec.dumps(obj)
    except InvalidDocument as exc:
        return exc.__class__
    finally:
        codec.use(previous)


def decode_with(name, data):
    previous = codec.use(name)
    try:
        return codec.loads(data)
    except ParseError as exc:
        return exc.__class__
    finally:
        codec.use(previous)


def typed(value):
    """A structure that compares types and float signs too (1 != 1.0, 0.0 != -0.0)."""
    if isinstance(value, dict):
        return ("dict", [(k, typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


# -- strategies ----------------------------------------------------------------------

floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [1e-05, 1.5e-07, 2.5e-09, 1e16, 1e22, 5e-324, -0.0, 0.1, 1e-4, 1.7976931348623157e308, 123456.789e-12]
)
ints = st.integers() | st.integers(min_value=2**63 - 4, max_value=2**64 + 4) | st.integers(
    min_value=-(2**63) - 4, max_value=-(2**63) + 4) | st.integers(min_value=-(10**40), max_value=10**40)
texts = st.text() | st.text(alphabet=st.characters(max_codepoint=0x3F)) | st.sampled_from(
    ["e-5", "0.00001", "1e-7 in a string", "null", "\u2028\u2029\x7f", "é\U0001F600", "\x00\x1f\"\\"])
scalars = st.none() | st.booleans() | ints | floats | texts
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(texts, children, max_size=5),
    max_leaves=30,
)
documents = st.dictionaries(texts, json_values, max_size=8)


# -- encoding ------------------------------------------------------------------------


def test_compact_raw_utf8(engine):
    assert codec.dumps({"a": "é\U0001F600", "b": [1, 2.5, None, True, False], "c": {}}) == \
        '{"a":"é\U0001F600","b":[1,2.5,null,true,false],"c":{}}'.encode()
    assert codec.dumps("\x00\x1f\n\t\"\\/\u2028\x7f") == b'"\\u0000\\u001f\\n\\t\\"\\\\/\xe2\x80\xa8\x7f"'


@pytest.mark.parametrize("value", [1e-05, 1.234e-05, 1e-06, 1.5e-07, 2.5e-09, 1e-10, 1e16, 1.5e300, 5e-324, -0.0,
                                   0.1, 1e-4, 9007199254740993.0, 1.7976931348623157e308, 12345.678, -1e-05])
def test_floats_as_repr(engine, value):
    assert codec.dumps(value) == repr(value).encode()
    assert codec.dumps({"x": [value]}) == b'{"x":[' + repr(value).encode() + b"]}"
    # a string that looks like a number format changes nothing
    assert codec.dumps(["1e-7", value, "0.00001"]) == b'["1e-7",' + repr(value).encode() + b',"0.00001"]'


class Odd(enum.Enum):
    NAN = float("nan")
    NESTED = (None, float("inf"))


@pytest.mark.parametrize("bad", [
    float("nan"), float("inf"), -float("inf"), [1, float("nan")], {"a": None, "b": [None, {"c": float("inf")}]},
    (None, float("nan")), Document(x=None, y=float("-inf")), Decimal("NaN"), Decimal("Infinity"), Decimal("sNaN"),
    {float("nan"): 1}, [None, Odd.NAN], {"e": Odd.NESTED},
])
def test_nan_and_infinity_rejected(engine, bad):
    with pytest.raises(InvalidDocument):
        codec.dumps(bad)


@pytest.mark.parametrize("value, expected", [
    (2**64, b"18446744073709551616"), (2**64 - 1, b"18446744073709551615"), (-(2**63) - 1, b"-9223372036854775809"),
    (10**100, b"1" + b"0" * 100), ({"n": [2**70, 1]}, b'{"n":[1180591620717411303424,1]}'),
    (Decimal("1.10"), b"1.10"), (Decimal("1E+2"), b"1E+2"), (Decimal("-0"), b"-0"),
    (Decimal("3.141592653589793238462643383279"), b"3.141592653589793238462643383279"),
    ({"price": Decimal("0.1"), "n": 1.5}, b'{"price":0.1,"n":1.5}'),
])
def test_exact_numbers(engine, value, expected):
    assert codec.dumps(value) == expected


def test_non_string_keys_become_strings(engine):
    value = {2: "a", True: "b", None: "c", 1.5: "d", Decimal("2.50"): "e", "s": "f", -(2**70): "g"}
    assert codec.dumps(value) == b'{"2":"a","true":"b","null":"c","1.5":"d","2.50":"e","s":"f","-1180591620717411303424":"g"}'
    class K(str):
        pass
    assert codec.dumps({K("k"): 1}) == b'{"k":1}'
    with pytest.raises(InvalidDocument):
        codec.dumps({(1, 2): "tuple key"})
    with pytest.raises(InvalidDocument):
        codec.dumps({frozenset(): 1})


class Color(enum.Enum):
    RED = "red"
    LEVEL = {"n": 2}


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


class Count(int):
    pass


class Ratio(float):
    pass


Point = collections.namedtuple("Point", "x y")


@dataclasses.dataclass
class Data:
    a: int = 1


def test_containers_subclasses_and_extras(engine):
    assert codec.dumps((1, (2, 3), [])) == b"[1,[2,3],[]]"
    assert codec.dumps(Point(1, 2)) == b"[1,2]"
    assert codec.dumps(Document(_id="x", n=Count(5), s=Name("y"), r=Ratio(0.5))) == \
        b'{"_id":"x","n":5,"s":"y","r":0.5}'
    assert codec.dumps(collections.OrderedDict(b=1, a=2)) == b'{"b":1,"a":2}'
    assert codec.dumps([Color.RED, Color.LEVEL, Level.HIGH]) == b'["red",{"n":2},3]'
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert codec.dumps({"u": u}) == b'{"u":"12345678-1234-5678-1234-567812345678"}'
    assert codec.dumps(b"bytes") == b'"bytes"'


@pytest.mark.parametrize("bad", [
    {1, 2}, datetime.date(2020, 1, 2), datetime.datetime(2020, 1, 2, 3, 4), Data(), object(), 1 + 2j,
    "\ud800", {"k": ["ok", "\udfff"]}, {"\ud800": 1}, b"\xff", range(3), bytearray(b"x"),
])
def test_unencodable_rejected(engine, bad):
    with pytest.raises(InvalidDocument):
        codec.dumps(bad)


def test_cycles_and_deep_nesting_rejected(engine):
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(InvalidDocument):
        codec.dumps(cyclic)
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(InvalidDocument):
        codec.dumps(deep)


@FIXTURE_SETTINGS
@given(documents)
def test_round_trip(engine, doc):
    data = codec.dumps(doc)
    assert typed(codec.loads(data)) == typed(doc)
    assert codec.dumps(codec.loads(data)) == data


@both_engines
@settings(max_examples=400, deadline=None)
@given(documents)
def test_engines_give_identical_bytes_and_values(doc):
    a, b = encode_with("orjson", doc), encode_with("simplejson", doc)
    assert a == b
    assert typed(decode_with("orjson", a)) == typed(decode_with("simplejson", b)) == typed(doc)


@both_engines
@settings(max_examples=300, deadline=None)
@given(st.recursive(scalars | st.decimals(allow_nan=True) | st.just(float("nan")) | st.just(float("inf"))
                    | st.tuples(ints, floats) | st.builds(uuid.UUID, st.uuids().map(str)),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(texts | ints | st.booleans(), c, max_size=4),
                    max_leaves=12))
def test_engines_agree_on_awkward_values(value):
    """Decimals (NaN included), NaN/inf floats, tuples, UUIDs, int/bool keys: same bytes or both refuse."""
    assert encode_with("orjson", value) == encode_with("simplejson", value)


# -- decoding ------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    (b"18446744073709551616", 18446744073709551616), (b"-9223372036854775809", -9223372036854775809),
    (b"[123456789012345678901234567890,1]", [123456789012345678901234567890, 1]),
    (b'{"a":{"b":99999999999999999999}}', {"a": {"b": 99999999999999999999}}),
    ("[1000000000000000000000]", [10**21]),
    (b"1.0", 1.0), (b"-0", 0), (b"1E2", 100.0), (b"0.1", 0.1), (b"1e-05", 1e-05),
    (b'{"a":1,"a":2}', {"a": 2}), (b' {"x" : [ ] } \n', {"x": []}),
    (b'"\\u00e9\\ud83d\\ude00"', "é\U0001F600"), (b'"\\ud800"', "\ud800"),
    (b"\xef\xbb\xbf{}", {}), ("\u00e9".join('""').encode(), "é"),
])
def test_decoding(engine, text, expected):
    value = codec.loads(text)
    assert typed(value) == typed(expected)


@pytest.mark.parametrize("bad", [
    b"NaN", b"[Infinity]", b"-Infinity", b'{"a":NaN}', b"\xff", b'"\xc3("', b'["\xed\xa0\x80"]', b"[1,]",
    b'{"a":1,}', b"{} x", b"", b"'a'", b'"\x01"', b"[1 2]", b"{1:2}", b"01", b"tru", "[1,]",
])
def test_malformed_rejected(engine, bad):
    with pytest.raises(ParseError):
        codec.loads(bad)


def test_deep_nesting_parse_error(engine):
    with pytest.raises(ParseError):
        codec.loads(b"[" * 100_000 + b"]" * 100_000)


@FIXTURE_SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["{!r}", "{:.17e}", "{:.3e}", "{:.20f}"]))
def test_float_decoding_correctly_rounded(engine, value, fmt):
    text = fmt.format(value)
    assert typed(codec.loads(text.encode())) == typed(float(text))


@both_engines
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40) | documents.map(lambda d: encode_with("simplejson", d)))
def test_engines_decode_alike(data):
    """Arbitrary bytes (mostly malformed) and real documents: same value, or ParseError from both."""
    a, b = decode_with("orjson", data), decode_with("simplejson", data)
    if a is ParseError or b is ParseError:
        assert a is b
    else:
        assert typed(a) == typed(b)


# -- splicing helpers ----------------------------------------------------------------


def test_validate_document(engine):
    raw = b'{"_id":"a","n":123456789012345678901234567890,"x":[1.5]}\n'
    doc = codec.validate_document(raw)
    assert doc["_id"] == "a" and doc["x"] == [1.5]
    for bad in (b"[1]", b'"s"', b"null", b"3"):
        with pytest.raises(InvalidDocument):
            codec.validate_document(bad)
    for bad in (b'{"a":NaN}', b"{", b'{"a":1} {}', b'{"\xff":1}', b"\xef\xbb\xbf{}", b" \xef\xbb\xbf{}"):
        with pytest.raises(ParseError):
            codec.validate_document(bad)


def test_add_id_and_join(engine):
    assert codec.add_id(b' {"a": 1}\n', "x\u00e9") == '{"_id":"x\u00e9","a": 1}'.encode()
    assert codec.add_id(b"{ }", "y") == b'{"_id":"y"}'
    with pytest.raises(InvalidDocument):
        codec.add_id(b"[1]", "z")
    body = codec.join_documents([b'{"_id":"a"}', codec.add_id(b'{"n":2}', "b")], new_edits=False, skip=None)
    assert codec.loads(body) == {"docs": [{"_id": "a"}, {"_id": "b", "n": 2}], "new_edits": False}
    assert codec.join_documents([]) == b'{"docs":[]}'


# -- the switch ----------------------------------------------------------------------


def test_use_rejects_unknown_engine():
    with pytest.raises(InvalidOption):
        codec.use("ujson")
    assert codec.ENGINE in codec.ENGINES


@both_engines
def test_switch_is_atomic_across_threads():
    """Threads encode while the engine flips: every result is the canonical bytes."""
    doc = {"a": [1e-05, 2**70, "é", None, 1.5e-07], "b": Decimal("1.10"), 3: True}
    expected = encode_with("simplejson", doc)
    stop = threading.Event()
    bad: list = []

    def work():
        while not stop.is_set():
            out = codec.dumps(doc)
            if out != expected:
                bad.append(out)

    previous = codec.ENGINE
    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(2000):
            codec.use(codec.ENGINES[i % 2])
    finally:
        stop.set()
        for t in threads:
            t.join()
        codec.use(previous)
    assert bad == []


@pytest.mark.parametrize("name", codec.ENGINES)
def test_environment_variable_forces_engine(name):
    env = {**os.environ, "COUCHCORE_JSON": name}
    out = subprocess.run([sys.executable, "-c", "import couchcore.codec as c; print(c.ENGINE)"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == name


def test_environment_variable_unknown_engine_fails_loudly():
    env = {**os.environ, "COUCHCORE_JSON": "nope"}
    out = subprocess.run([sys.executable, "-c", "import couchcore"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "unknown JSON engine 'nope'" in out.stderr


def test_default_engine_prefers_orjson():
    env = {k: v for k, v in os.environ.items() if k != "COUCHCORE_JSON"}
    out = subprocess.run([sys.executable, "-c", "import couchcore.codec as c; print(c.ENGINE)"],
                         env=env, capture_output=True, text=True, check=True)
    try:
        import orjson  # noqa: F401
        assert out.stdout.strip() == "orjson"
    except ImportError:
        assert out.stdout.strip() == "simplejson"


def test_no_other_module_imports_a_json_library():
    """The seam: only codec.py imports a JSON library (rows.py's pure-Python twin
    parser uses the stdlib scanner for incremental parsing, a parser internal)."""
    root = Path(codec.__file__).resolve().parent
    pattern = re.compile(r"^\s*(import|from)\s+(json|simplejson|orjson|msgspec|ujson|rapidjson)\b", re.M)
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "codec.py" or path == root / "rows.py":
            continue
        if pattern.search(path.read_text(encoding="utf-8")):
            offenders.append(str(path.relative_to(root)))
    assert offenders == []
