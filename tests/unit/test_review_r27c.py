"""Round 27, fixes of reviewer-round-r27.md findings (the pure ones; the others are in
tests/integration/test_review_r27c.py). Each test failed before its fix (a tar copy of the
tree with the previous files) and passes after."""

from __future__ import annotations

import copy
import inspect
import pickle
import threading

import pytest

import couchcore.bulk as bulk
import couchcore.errors as errors

# -- 1. every exception class of couchcore.errors and couchcore.bulk round-trips through pickle --
# (a multiprocessing Pool sends a worker's exception to the parent as a pickle: one that could be
# pickled but not unpickled killed the parent's result thread and its get() waited for ever)


def _exception_classes() -> list[type[BaseException]]:
    found = []
    for mod in (errors, bulk):
        for cls in vars(mod).values():
            if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == mod.__name__:
                found.append(cls)
    return found


_URL = "http://admin:pw-r27c@127.0.0.1:5984/db/doc?rev=1-a"


def _report() -> bulk.LoadReport:
    return bulk.LoadReport(read=5, written=3, rejected=2, unknown=1, seconds=0.5, failures=[
        bulk.Rejected(2, "b", "conflict", "Document update conflict.", doc={"_id": "b", "x": [1, 2]}),
        bulk.Rejected(4, None, "invalid_json", "bad", doc=b"{x", text="{x")])


def _sample(cls: type[BaseException]) -> BaseException:
    """An instance of ``cls`` with every attribute it may carry set."""
    exc: BaseException
    if issubclass(cls, errors.HTTPError):
        exc = cls(None if cls is not errors.HTTPError else 418, "some_error", "some reason", "PUT", _URL,
                  {"Retry-After": "3", "Set-Cookie": "AuthSession=secret; Path=/"}, {"error": "some_error"})
        exc.resolution = {"pending": ["doc"]}
    elif issubclass(cls, errors.TransportError):
        exc = cls("connection reset", _URL, "POST") if cls is errors.OutcomeUnknown else cls("connection reset", _URL)
        exc.aborted = True
        if cls is errors.IndexBuildTimeout:
            exc.status = {"progress": 40}
    elif cls is errors.InvalidField:
        exc = cls("_rev is not a string", "_rev")
    elif cls is errors.WrongEventLoop:
        exc = cls("read on another loop", _URL)
    elif cls is bulk.LoadInputError:
        exc = cls(_report(), ValueError("bad input row"))
    elif cls is bulk._Bad:
        exc = cls("invalid_id", "_id is not a string")
    else:
        exc = cls("some message")
    exc.add_note("a note")
    return exc


def _state(exc: BaseException) -> tuple:
    def plain(value):
        if isinstance(value, BaseException):
            return (type(value), value.args)
        if isinstance(value, bulk.LoadReport):
            return repr(value)
        return value
    return (type(exc), exc.args, str(exc), {k: plain(v) for k, v in vars(exc).items()})


@pytest.mark.parametrize("cls", _exception_classes(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("how", ["pickle", "pickle0", "deepcopy"])
def test_every_exception_class_round_trips(cls, how):
    exc = _sample(cls)
    if how == "deepcopy":
        back = copy.deepcopy(exc)
    else:
        back = pickle.loads(pickle.dumps(exc, protocol=0 if how == "pickle0" else pickle.DEFAULT_PROTOCOL))
    assert _state(back) == _state(exc)
    assert "pw-r27c" not in str(back) and "pw-r27c" not in repr(back)


def test_load_input_error_keeps_report_and_error():
    exc = bulk.LoadInputError(_report(), ValueError("bad input row"))
    back = pickle.loads(pickle.dumps(exc))
    assert isinstance(back, bulk.LoadInputError) and isinstance(back, errors.CouchcoreError)
    assert back.report == exc.report and back.report.unknown == 1
    assert [f.doc for f in back.report.failures] == [{"_id": "b", "x": [1, 2]}, b"{x"]
    assert type(back.error) is ValueError and back.error.args == ("bad input row",)
    assert back.__cause__ is back.error
    assert str(back) == str(exc)


class _NotPicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()  # pickle refuses it


class _NotUnpicklable(Exception):
    """Pickles, but cannot be rebuilt: its __init__ takes two arguments (LoadInputError's own bug)."""

    def __init__(self, message: str, extra: int) -> None:
        super().__init__(message)
        self.extra = extra


@pytest.mark.parametrize("error", [_NotPicklable("locked input"), _NotUnpicklable("two args", 7)],
                         ids=["not-picklable", "not-unpicklable"])
def test_load_input_error_with_a_cause_pickle_cannot_carry(error):
    exc = bulk.LoadInputError(_report(), error)
    back = pickle.loads(pickle.dumps(exc))
    assert isinstance(back, bulk.LoadInputError) and back.report == exc.report
    # the cause degrades to a RuntimeError holding its repr, never an unpickling failure
    assert type(back.error) is RuntimeError and back.error.args == (repr(error),)
    assert back.__cause__ is back.error and str(back) == str(exc)
