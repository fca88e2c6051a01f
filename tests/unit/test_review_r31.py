"""Round 31, the review's before-stop leftovers (no server: operations driven by hand).

* ``resend_on_5xx``: the one "send again on 5xx/429, 0.25 s x attempt later" of the
  protocol layer, used by the withdrawal of a lost 202 write and the leaf reads
  (``couchcore.protocol.documents._withdraw``/``_leaf_paths``, which hand-rolled it twice).
* ``server.login("name", "pw")`` (couchdb-python's) says how to log in instead of a bare
  ``TypeError`` naming ``ServerAPI``; the signature stays ``login(self)``.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest

import couchcore
import couchcore.aio
from couchcore.errors import ConnectError, ConnectionError
from couchcore.protocol.messages import Request, Response, resend_on_5xx


def _pump(op, outcomes):
    """Drive ``op`` with ``outcomes`` (a status, or an exception to throw in); returns the
    requests it sent (with their delays) and its result, or the exception it raised."""
    sent, closed = [], []
    try:
        request = next(op)
        for outcome in outcomes:
            sent.append((request.method, request.delay))
            if isinstance(outcome, BaseException):
                request = op.throw(outcome)
            else:
                response = Response(outcome, {}, body=b"{}", close=lambda n=len(sent): closed.append(n))
                request = op.send(response)
        raise AssertionError(f"the operation sent more than {len(outcomes)} requests")
    except StopIteration as stop:
        return sent, stop.value, closed
    except ConnectionError as exc:
        return sent, exc, closed


def _get():
    return Request("GET", "/db/doc")


@pytest.mark.parametrize("outcomes, sends, last", [
    ([200], 1, 200),
    ([404], 1, 404),  # not a 5xx: the caller's
    ([409], 1, 409),
    ([503, 200], 2, 200),
    ([429, 500, 201], 3, 201),
    ([502, 503, 504], 3, 504),  # all attempts used: the last answer, for the caller to read
])
def test_resend_on_5xx_sends_again_after_a_5xx_or_429_only(outcomes, sends, last):
    sent, result, closed = _pump(resend_on_5xx(_get, 3), outcomes)
    assert [d for _m, d in sent] == [0.0, 0.25, 0.5][:sends]  # 0.25 s x attempt (Request.delay)
    assert isinstance(result, Response) and result.status == last
    assert closed == list(range(1, sends))  # each answer sent again is closed, the last is not


def test_resend_on_5xx_leaves_transport_errors_to_the_caller_unless_asked():
    error = ConnectionError("reset", "http://x/db/doc")
    sent, result, _ = _pump(resend_on_5xx(_get, 3), [error])
    assert result is error and len(sent) == 1
    sent, result, _ = _pump(resend_on_5xx(_get, 3, transport_errors=True), [error, 503, 201])
    assert isinstance(result, Response) and result.status == 201 and len(sent) == 3
    last = ConnectError("refused", "http://x/db/doc")
    sent, result, _ = _pump(resend_on_5xx(_get, 3, transport_errors=True), [error, 500, last])
    assert result is last and len(sent) == 3  # the last attempt's error is raised


def test_resend_on_5xx_never_resends_what_couchcore_aborted():
    """reviewer-round-r31b LOW 3: after server.close() the withdrawal was sent again."""
    error = ConnectionError("closed", "http://x/db/doc")
    error.aborted = True
    sent, result, _ = _pump(resend_on_5xx(_get, 3, transport_errors=True), [error])
    assert result is error and len(sent) == 1


def test_resend_on_5xx_builds_a_fresh_request_each_time():
    built = []

    def build():
        built.append(Request("POST", "/db/_bulk_docs", body=b"{}", idempotent=True))
        return built[-1]

    _pump(resend_on_5xx(build, 2), [503, 503])
    assert len(built) == 2 and built[0] is not built[1]
    with pytest.raises(ValueError):
        next(resend_on_5xx(build, 0))


# -- login("name", "pw") -------------------------------------------------------------------------


def _hint_checks(exc: BaseException, cls: str, method: str) -> None:
    text = str(exc)
    assert isinstance(exc, TypeError)
    assert text.startswith(f"{cls}.{method}() takes no arguments"), text
    assert "auth=couchcore.SessionAuth(user, password)" in text, text
    assert "ServerAPI" not in text
    assert "s3cret" not in text and "alice" not in text and "s3cret" not in repr(exc)


@pytest.mark.parametrize("method", ["login", "logout"])
def test_login_with_credentials_says_how_to_log_in(method):
    server = couchcore.Server("http://127.0.0.1:9")  # nothing is sent
    for args, kwargs in ((("alice", "s3cret"), {}), ((), {"name": "alice", "password": "s3cret"}), (("s3cret",), {})):
        with pytest.raises(TypeError) as info:
            getattr(server, method)(*args, **kwargs)
        _hint_checks(info.value, "Server", method)
    # the public signature is the method's own: no *args
    assert str(inspect.signature(getattr(server, method))) in ("() -> 'LoginResult'", "() -> 'OkResult'")
    assert not any(p.kind is p.VAR_POSITIONAL for p in inspect.signature(getattr(couchcore.Server, method)).parameters.values())


def test_the_arguments_are_not_in_the_tracebacks_frames():
    """reviewer-round-r31b LOW 2: the wrapper's frame kept them as a local, which reporters
    that show locals (Sentry, capture_locals) print."""
    server = couchcore.Server("http://127.0.0.1:9")
    with pytest.raises(TypeError) as info:
        server.login("alice", "s3cret")
    tb = info.value.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    assert frames and not any("s3cret" in repr(f.f_locals) for f in frames[1:]), [f.f_code.co_name for f in frames]


def test_login_without_arguments_still_logs_in_or_says_it_needs_session_auth():
    server = couchcore.Server("http://127.0.0.1:9")
    with pytest.raises(couchcore.InvalidInput, match=r"SessionAuth"):
        server.login()


def test_login_with_credentials_on_the_async_facades():
    tornado = pytest.importorskip("couchcore.tornado")

    async def main() -> None:
        for module in (couchcore.aio, tornado):
            async with module.Server("http://127.0.0.1:9") as server:
                with pytest.raises(TypeError) as info:
                    server.login("alice", "s3cret")
                _hint_checks(info.value, "Server", "login")
                assert str(inspect.signature(server.logout)) == "() -> 'OkResult'"
        async with tornado.Server("http://127.0.0.1:9") as server:
            with pytest.raises(TypeError) as info:  # callback= is the facade's, the rest is not
                server.login("alice", "s3cret", callback=lambda result, status: None)
            _hint_checks(info.value, "Server", "login")

    asyncio.run(main())


# -- reviewer-round-r31c LOW 1: a leaf read of another shape is no "no rival" ------------------------------

_LEAF = {"ok": {"_id": "k", "_rev": "1-a", "_revisions": {"start": 1, "ids": ["a"]}}}


def _accepted_check(body: bytes):
    """``_accepted_lost`` of a 202 write ``1-a`` of a new document, its leaf read answered
    ``200`` with ``body``: its result, or the exception it raised."""
    from couchcore.protocol.documents import _accepted_lost

    ctx = couchcore.Server("http://127.0.0.1:9")._ctx
    op = _accepted_lost(ctx, "db", "k", "1-a", None, ("PUT", "/db/k"))
    try:
        request = next(op)
        assert request.method == "GET" and ("open_revs", "all") in list(request.query)
        op.send(Response(200, {}, body=body, close=lambda: None))
    except StopIteration as stop:
        return stop.value
    except couchcore.CouchcoreError as exc:
        return exc
    raise AssertionError("the check sent a second request")


@pytest.mark.parametrize("body", [b"{}", b"[]", b"3", b'"x"', b'{"error":"x","reason":"y"}', b"[3]",
                                  b'[{"missing":"1-a"}]', b'[{"ok":{"_rev":"1-a"}}]',
                                  b'[{"ok":{"_rev":"1-a","_revisions":{"start":"1","ids":["a"]}}}]',
                                  b'[{"ok":{"_rev":"1-a","_revisions":{"start":1,"ids":[1]}}}]'])
def test_a_leaf_read_of_another_shape_leaves_the_outcome_unknown(body):
    result = _accepted_check(body)
    assert isinstance(result, couchcore.OutcomeUnknown), result
    assert "conflicts=true" in str(result) and result.method == "PUT"


def test_a_leaf_read_of_the_right_shape_decides():
    import json

    assert _accepted_check(json.dumps([_LEAF]).encode()) is None  # ours alone: it stands
    assert _accepted_check(json.dumps([_LEAF, {"missing": "1-z"}]).encode()) is None
