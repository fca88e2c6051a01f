"""``TransportOptions`` and ``Backend`` are the frozen dataclasses ``@dataclass(frozen=True)``
makes, and the bulk loader's ``Rejected`` and ``LoadReport`` the dataclasses ``@dataclass`` makes,
though they write their ``__init__`` out and get ``__repr__``/``__eq__`` (frozen: ``__hash__``,
``__setattr__``, ``__delattr__``) from ``couchcore._dataclass.written_dataclass`` (the decorator
compiles each method from source: ~1M instructions each of every couchcore process's start-up,
benchmarks/results/bulk-r27.md).

Each is compared with a twin made by the plain decorator from the same fields: signature,
repr, equality, hashing, frozenness, ``dataclasses`` functions, pickling, subclassing."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field
from typing import Any, Mapping

import pytest

from couchcore.bulk import LoadReport, Rejected
from couchcore.transport.base import (BACKENDS, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Backend,
                                      TransportOptions)


@dataclass(frozen=True)
class TransportOptions_:  # noqa: N801 - the twin's name differs by the underscore alone
    timeout: float | None = DEFAULT_TIMEOUT
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT
    verify: bool = True
    ca_certs: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    maxsize: int = 10
    retries: int = 2
    backoff: float = 0.25
    max_backoff: float = 10.0
    deadline: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    max_clients: int = 10


@dataclass(frozen=True)
class Backend_:  # noqa: N801
    name: str
    is_async: bool
    module: str
    cls: str
    extra: str


PAIRS = [
    (TransportOptions, TransportOptions_, [(), (3,), (None, 2.5, False), ((), {"headers": {"X-A": "b"}}),
                                           ((), {"headers": None, "max_clients": 3})]),
    (Backend, Backend_, [("a", True, "m", "C", "e"), ((), {"name": "b", "is_async": False, "module": "m",
                                                           "cls": "C", "extra": "x"})]),
]
CASES = [(ours, twin, args) for ours, twin, calls in PAIRS for args in calls]


def _twin(cls: Any) -> Any:
    """The dataclass ``@dataclass`` makes from ``cls``'s fields (names, annotations, defaults)."""
    return dataclasses.make_dataclass(f"{cls.__name__}_", [
        (f.name, f.type, field(default=f.default, default_factory=f.default_factory)) for f in dataclasses.fields(cls)])


Rejected_, LoadReport_ = _twin(Rejected), _twin(LoadReport)


#: the (not frozen) dataclasses of couchcore.bulk
MUTABLE_PAIRS = [
    (Rejected, Rejected_, [(3, "a", "conflict", "Document update conflict."), (None, None, "invalid_json", "x", None, "{"),
                           ((), {"line": 1, "id": "b", "error": "e", "reason": None, "doc": {"_id": "b"}})]),
    (LoadReport, LoadReport_, [(), (1, 2, 3), ((), {"failures": [Rejected(1, "a", "e", "r")], "seconds": 1.5}),
                               ((), {"failures": None, "unknown": 2})]),
]
MUTABLE_CASES = [(ours, twin, args) for ours, twin, calls in MUTABLE_PAIRS for args in calls]


def _make(cls: Any, args: Any) -> Any:
    if len(args) == 2 and isinstance(args[1], dict):
        return cls(*args[0], **args[1])
    return cls(*args)


def _same_repr(ours: Any, twin: Any) -> str:
    return repr(twin).replace(type(twin).__qualname__, type(ours).__qualname__, 1)


@pytest.mark.parametrize("ours,twin", [(o, t) for o, t, _ in PAIRS + MUTABLE_PAIRS])
def test_the_class_is_the_decorators_dataclass(ours: Any, twin: Any) -> None:
    assert dataclasses.is_dataclass(ours)
    assert str(inspect.signature(ours)) == str(inspect.signature(twin))
    assert ours.__init__.__annotations__ == twin.__init__.__annotations__
    assert [(f.name, f.type, f.default, f.default_factory, f.init, f.repr, f.compare, f.hash)
            for f in dataclasses.fields(ours)] == \
        [(f.name, f.type, f.default, f.default_factory, f.init, f.repr, f.compare, f.hash)
         for f in dataclasses.fields(twin)]
    assert repr(ours.__dataclass_params__) == repr(twin.__dataclass_params__)
    assert ours.__match_args__ == twin.__match_args__
    for name in ("__repr__", "__eq__", "__init__") + (("__hash__",) if twin.__dataclass_params__.frozen else ()):
        assert getattr(ours, name).__qualname__ == f"{ours.__qualname__}.{name}"


@pytest.mark.parametrize("ours,twin,args", CASES)
def test_instances_behave_as_the_decorators(ours: Any, twin: Any, args: Any) -> None:
    a, b = _make(ours, args), _make(twin, args)
    assert repr(a) == _same_repr(a, b)
    assert dataclasses.asdict(a) == dataclasses.asdict(b)
    assert dataclasses.astuple(a) == dataclasses.astuple(b)
    same = _make(ours, args)
    assert a == same and not (a != same)
    assert a != b and b != a  # another class: NotImplemented both ways, as between two dataclasses
    other = dataclasses.replace(a, **{dataclasses.fields(a)[0].name: "changed"})
    assert other != a and type(other) is ours
    try:
        expected: Any = hash(b)
    except TypeError as exc:  # (a dict of headers: unhashable, as the decorator's)
        expected = str(exc)
    try:
        got: Any = hash(a)
    except TypeError as exc:
        got = str(exc)
    assert got == expected
    first = dataclasses.fields(a)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError, match=f"cannot assign to field '{first}'"):
        setattr(a, first, 1)
    with pytest.raises(dataclasses.FrozenInstanceError, match=f"cannot delete field '{first}'"):
        delattr(a, first)
    assert pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a and copy.copy(a) == a


@pytest.mark.parametrize("ours,twin,args", MUTABLE_CASES)
def test_report_instances_behave_as_the_decorators(ours: Any, twin: Any, args: Any) -> None:
    """Repr, dataclasses functions, equality, unhashability, assignment, pickling: as the twin's."""
    a, b = _make(ours, args), _make(twin, args)
    assert repr(a) == _same_repr(a, b) and str(a) != repr(a)  # (each class's own __str__ is kept)
    assert dataclasses.asdict(a) == dataclasses.asdict(b) and dataclasses.astuple(a) == dataclasses.astuple(b)
    same = _make(ours, args)
    assert a == same and not (a != same)
    assert a != b and b != a
    first = dataclasses.fields(a)[0].name
    other = dataclasses.replace(a, **{first: 99})
    assert other != a and type(other) is ours
    assert ours.__hash__ is None and twin.__hash__ is None
    with pytest.raises(TypeError, match=f"unhashable type: '{ours.__name__}'"):
        hash(a)
    for obj in (a, b):  # not frozen: fields and other names assigned and deleted alike
        setattr(obj, first, 7)
        obj.other = 1
        del obj.other
    assert getattr(a, first) == getattr(b, first) == 7 and a != _make(ours, args)
    assert pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a and copy.copy(a) == a


def test_each_report_gets_its_own_failures_list() -> None:
    """The factory default, an explicit ``None``, and a subclass made by the plain decorator."""
    first, second = LoadReport(), LoadReport()
    assert first.failures == [] and first.failures is not second.failures
    assert LoadReport(failures=None).failures is None  # (an explicit value is kept, as the decorator's)

    @dataclass
    class More(LoadReport):
        extra: int = 0

    more = More(5, extra=3)
    assert more.read == 5 and more.extra == 3 and more.failures == [] and more == More(5, extra=3)
    assert repr(more).startswith(f"{More.__qualname__}(read=5,") and repr(more).endswith("unknown=0, earlier={}, extra=3)")


def test_each_options_object_gets_its_own_headers_dict() -> None:
    first, second = TransportOptions(), TransportOptions()
    assert first.headers == {} and first.headers is not second.headers
    assert TransportOptions(headers=None).headers is None  # (an explicit value is kept, as the decorator's)


def test_a_recursive_repr_is_cut_as_the_decorators() -> None:
    headers: dict[str, Any] = {}
    options, twin = TransportOptions(headers=headers), TransportOptions_(headers=headers)
    headers["self"] = options
    assert "..." in repr(options)
    headers["self"] = twin
    assert repr(twin).count("...") == 1


@pytest.mark.parametrize("ours,twin", [(o, t) for o, t, _ in PAIRS])
def test_frozenness_of_other_names_and_of_plain_subclasses(ours: Any, twin: Any) -> None:
    args = () if ours is TransportOptions else ("a", True, "m", "C", "e")
    outcomes = []
    for cls in (ours, twin):
        class Plain(cls):  # type: ignore[valid-type,misc]
            pass

        seen = []
        for obj in (cls(*args), Plain(*args)):
            for action in (lambda o: setattr(o, "other", 1), lambda o: delattr(o, "other"),
                           lambda o: setattr(o, dataclasses.fields(o)[0].name, 1)):
                try:
                    action(obj)
                    seen.append("ok")
                except (dataclasses.FrozenInstanceError, AttributeError) as exc:
                    seen.append(f"{type(exc).__name__}: {exc}")
        outcomes.append(seen)
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][3] == "ok" and outcomes[0][0].startswith("FrozenInstanceError")


def test_a_subclass_made_by_the_decorator_works() -> None:
    @dataclass(frozen=True)
    class More(TransportOptions):
        extra: int = 0

    more = More(5, extra=3)
    assert more.timeout == 5 and more.extra == 3 and more.headers == {}
    assert more == More(5, extra=3) and more != More(5, extra=4)
    assert repr(more).startswith(f"{More.__qualname__}(timeout=5,") and repr(more).endswith("extra=3)")


def test_the_backends_rows_and_from_kwargs() -> None:
    assert [b.name for b in BACKENDS] == ["urllib3", "pycurl", "pycurl", "tornado"]
    assert BACKENDS[1] == Backend("pycurl", False, "couchcore.transport.pycurl", "PycurlTransport", "pycurl")
    assert len({*BACKENDS}) == 4
    assert TransportOptions.from_kwargs(timeout=3) == TransportOptions(timeout=3, connect_timeout=3)
