"""Round 27: faults documented as left by earlier rounds, fixed. Each test failed before its
fix (see the commit that added it) and is checked against Apache CouchDB 3.5's answers
(https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-docs)."""

from __future__ import annotations

import decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import couchcore
from couchcore import codec
from couchcore.errors import InvalidDocument


@pytest.fixture
def db(one_copy_db):
    """One copy per shard (n=1): _all_docs right after a write sees it on a cluster too."""
    return one_copy_db


def _ids(db) -> list[str]:
    return [row.id for row in db.view("_all_docs")]


# -- 1. dict keys that collide once turned into strings -------------------------------------

_CLASHES = [
    {1: "a", "1": "b"},
    {True: 1, "true": 2},
    {None: 1, "null": 2},
    {0.5: 1, "0.5": 2},
    {decimal.Decimal("0.1"): 1, 0.1: 2},
    {10**30: 1, str(10**30): 2},  # beyond 64 bits: orjson hands the document to simplejson
    {"deep": [{"x": {"y": [{2: "a", "2": "b"}]}}]},
]


@pytest.fixture(params=codec.ENGINES)
def engine(request):
    previous = codec.use(request.param)
    yield request.param
    codec.use(previous)


@pytest.mark.parametrize("value", _CLASHES, ids=range(len(_CLASHES)))
def test_colliding_keys_are_refused_by_every_engine(engine, value):
    # {1: "a", "1": "b"} was encoded as {"1":"a","1":"b"}: the server keeps one of the two
    for encode in (codec.dumps, lambda v: codec.dumps_array([{"_id": "ok"}, v])):
        with pytest.raises(InvalidDocument, match="both become"):
            encode(value)


@pytest.mark.parametrize("value", [{1: "a", 2: "b"}, {True: 1, "false": 2}, {1: {"1": 2}}, {"1": [{1: 2}]}])
def test_distinct_non_str_keys_still_encode(engine, value):
    assert codec.loads(codec.dumps(value)) == codec.loads(codec.dumps(value).decode())


_keys = st.integers(-3, 3) | st.sampled_from(["0", "1", "-1", "true", "null", "2", "x"]) | st.booleans() | st.none()


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.integers(0, 3),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(_keys, c, max_size=4), max_leaves=10))
def test_engines_agree_on_key_collisions(value):
    # what is sent holds every value or nothing is sent; both engines decide alike
    outcomes = []
    for name in codec.ENGINES:
        previous = codec.use(name)
        try:
            outcomes.append(codec.dumps(value))
        except InvalidDocument:
            outcomes.append(InvalidDocument)
        finally:
            codec.use(previous)
    assert len(set(outcomes)) == 1
    if outcomes[0] is not InvalidDocument:
        def count(v):
            if isinstance(v, dict):
                return len(v) + sum(count(x) for x in v.values())
            if isinstance(v, list):
                return sum(count(x) for x in v)
            return 0
        assert count(codec.loads(outcomes[0])) == count(value)  # no key lost


def test_save_with_colliding_keys_sends_nothing(db):
    with pytest.raises(InvalidDocument):
        db.save([{"_id": "first"}, {"_id": "second", "n": {1: "a", "1": "b"}}])
    with pytest.raises(InvalidDocument):
        db.save({"_id": "single", 7: "a", "7": "b"})
    assert _ids(db) == []
