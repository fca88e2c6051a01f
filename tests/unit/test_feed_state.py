"""Unit tests of the sans-I/O state of resuming changes feeds (couchcore.protocol.changes.FeedState)
on canned responses: no server, no socket. The feeds that drive it (ChangesFeed, ChangesFollower,
sync and async) are tested against the real server in test_changes.py and test_modern_api.py."""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator

import pytest

from couchcore.errors import (
    ConnectionError,
    InvalidOption,
    NotFound,
    ParseError,
    ReadTimeout,
    ServerError,
    TransportError,
)
from couchcore.protocol.changes import FeedState
from couchcore.protocol.messages import Headers, Request, Response
from couchcore.protocol.server import ServerContext

CTX = ServerContext()


def growing(failures: int) -> float:
    """The continuous feed's default shape: 0.1 s doubling, at most 1 s."""
    return min(0.1 * 2 ** (failures - 1), 1.0)


def continuous(**kw: Any) -> FeedState:
    options = kw.pop("options", {"heartbeat": 30000})
    kw.setdefault("backoff", growing)
    kw.setdefault("retry_on", (TransportError, ServerError))
    return FeedState("db", options, feed="continuous", **kw)


def follower(one_off: bool = True, **kw: Any) -> FeedState:
    options = kw.pop("options", {})
    kw.setdefault("backoff", growing)
    kw.setdefault("retry_on", (TransportError, ServerError))
    kw.setdefault("terminal", (NotFound,))
    return FeedState("db", options, feed="normal" if one_off else "longpoll", one_off=one_off, **kw)


def line(seq: str, doc_id: str) -> bytes:
    return json.dumps({"seq": seq, "id": doc_id, "changes": [{"rev": "1-x"}]}).encode() + b"\n"


def query(request: Request) -> dict[str, str]:
    return dict(request.query)


def open_round(state: FeedState, chunks: Iterable[bytes] | None = None, body: bytes | None = None
               ) -> tuple[list[Request], Any]:
    """Run ``state.open`` to its source, answering ``GET /db`` (since="now") with update_seq "9-now"
    and ``_changes`` with ``chunks`` (streamed) or ``body``."""
    sent: list[Request] = []
    op = state.open(CTX)
    request = next(op)
    try:
        while True:
            sent.append(request)
            if not request.path.endswith("/_changes"):
                answer = Response(200, Headers({"Content-Type": "application/json"}),
                                  body=b'{"db_name": "db", "update_seq": "9-now"}', method="GET", url="/db")
            elif chunks is not None:
                answer = Response(200, Headers({"Content-Type": "application/json"}), stream=iter(chunks),
                                  method="GET", url="/db/_changes")
            else:
                answer = Response(200, Headers({"Content-Type": "application/json"}), body=body,
                                  method="GET", url="/db/_changes")
            request = op.send(answer)
    except StopIteration as stop:
        return sent, stop.value


def read_round(state: FeedState, source: Any) -> list[dict[str, Any]]:
    """What a driver does with one answer (sync flavour): every change handed out."""
    got: list[dict[str, Any]] = []
    for item in state.items(source):
        got.extend(state.receive(item))
        if not state.reading:
            break
    return got


# -- continuous: resume, limit, backoff ---------------------------------------------------------


def test_resumes_from_the_last_change_delivered_after_a_lost_connection() -> None:
    state = continuous(since="0")
    sent, source = open_round(state, [line("1-a", "a") + line("2-b", "b")[:10]])
    assert query(sent[0])["since"] == "0" and query(sent[0])["feed"] == "continuous"
    got = read_round(state, source)
    assert [c["id"] for c in got] == ["a"]  # "b" was cut in the middle: not delivered
    with pytest.raises(ConnectionError) as lost:
        state.end(source)  # the stream ended without last_seq
    assert state.lost(lost.value) == pytest.approx(0.1)
    assert state.reconnects == 1 and not state.done
    sent, source = open_round(state, [line("2-b", "b"), b'{"last_seq":"2-b","pending":0}\n'])
    assert query(sent[0])["since"] == "1-a"
    assert [c["id"] for c in read_round(state, source)] == ["b"]
    # with a heartbeat and neither timeout nor limit CouchDB ends a feed only when the
    # database is deleted (or the node stops): go on from last_seq (a deleted db: 404)
    assert state.end(source) == 0 and not state.done and state.since == "2-b" and state.pending == 0


@pytest.mark.parametrize("options, limit, done", [
    ({"timeout": 1000}, None, True),  # the server's timeout asked for: ended
    ({}, None, True),  # no heartbeat: CouchDB's default timeout ended it
    ({"heartbeat": 30000}, 1, True),  # the limit reached
    ({"heartbeat": 30000}, 5, False),  # nothing asked for ends it: the db was deleted
    ({"heartbeat": 30000}, None, False),
])
def test_a_continuous_feed_the_server_ended_is_done_only_when_asked_for(options, limit, done) -> None:
    state = continuous(since="0", options=options, limit=limit)
    _, source = open_round(state, [line("1-a", "a"), b'{"last_seq":"1-a","pending":0}\n'])
    assert [c["id"] for c in read_round(state, source)] == ["a"]
    assert state.end(source) == 0 and state.done is done and state.since == "1-a"


def test_a_heartbeat_feed_ended_with_nothing_waits_before_asking_again() -> None:
    state = continuous(since="0")
    _, source = open_round(state, [b'{"last_seq":"0","pending":0}\n'])
    assert read_round(state, source) == []
    assert state.end(source) == pytest.approx(0.1) and not state.done  # backoff(1), no busy loop


def test_since_is_opaque_and_sent_back_unchanged() -> None:
    seq = "13-g1AAAAJTeJzLYWBgYMlgTmGQT0lKzi9KdUhJMtBLytVNTtZNSS3QTUlMzk8"
    state = continuous(since=seq)
    sent, source = open_round(state, [line(seq + "x", "a")])
    assert query(sent[0])["since"] == seq
    read_round(state, source)
    assert state.since == seq + "x"
    assert query(state.request())["since"] == seq + "x"


def test_since_now_is_pinned_to_update_seq_before_the_changes_request() -> None:
    state = continuous(since="now")
    sent, _ = open_round(state, [])
    assert [r.path for r in sent] == ["/db", "/db/_changes"]
    assert query(sent[1])["since"] == "9-now" and state.since == "9-now"


def test_limit_is_counted_across_reconnects() -> None:
    state = continuous(limit=5)
    sent, source = open_round(state, [line("1-a", "a") + line("2-b", "b")])
    assert query(sent[0])["limit"] == "5"
    assert len(read_round(state, source)) == 2
    with pytest.raises(ConnectionError) as lost:
        state.end(source)
    state.lost(lost.value)
    sent, source = open_round(state, [b"".join(line(f"{n}-x", f"d{n}") for n in range(3, 9))])
    assert query(sent[0])["limit"] == "3" and query(sent[0])["since"] == "2-b"
    got = read_round(state, source)
    assert [c["id"] for c in got] == ["d3", "d4", "d5"]  # stops at the limit, mid-chunk
    assert state.done and state.delivered == 5
    assert state.end(source) == 0.0


def test_limit_zero_sends_nothing() -> None:
    assert continuous(limit=0).done


def test_backoff_grows_with_failures_in_a_row_and_resets_on_data() -> None:
    state = continuous(max_retries=None)
    delays = [state.lost(ConnectionError("refused", "/db/_changes")) for _ in range(6)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    _, source = open_round(state, [b"\n"])  # a heartbeat: the connection works again
    read_round(state, source)
    assert state.failures == 0
    assert state.lost(ReadTimeout("no data", "/db/_changes")) == pytest.approx(0.1)
    assert state.reconnects == 7


def test_gives_up_after_max_retries_failures_in_a_row() -> None:
    state = continuous(max_retries=2)
    error = ConnectionError("refused", "/db/_changes")
    state.lost(error)
    state.lost(error)
    with pytest.raises(ConnectionError) as raised:
        state.lost(error)
    assert raised.value is error and state.done and state.reconnects == 2


def test_errors_not_retried_are_raised_at_once() -> None:
    state = continuous()
    with pytest.raises(ParseError):
        state.lost(ParseError("garbage"))
    assert state.done and state.reconnects == 0
    state = follower()
    with pytest.raises(NotFound):
        state.lost(NotFound(404, "not_found", "Database does not exist."))  # terminal


def test_a_request_couchcore_aborted_is_not_reconnected() -> None:
    """The transport was closed under the feed (``Server.close()``): raised, no new round."""
    for state in (continuous(), follower()):
        error = ConnectionError("request aborted (the transport was closed)", "/db/_changes")
        error.aborted = True
        with pytest.raises(ConnectionError) as raised:
            state.lost(error)
        assert raised.value is error and state.done and state.reconnects == 0


def test_stop_ends_quietly_whatever_the_closed_stream_raised() -> None:
    state = continuous()
    _, source = open_round(state, [line("1-a", "a"), line("2-b", "b")])
    items = iter(state.items(source))
    assert [c["id"] for c in state.receive(next(items))] == ["a"]
    state.stop()
    assert list(state.receive(next(items))) == []  # nothing handed out after stop()
    assert state.lost(ConnectionError("closed", "/db/_changes")) == 0.0 and state.done
    assert state.reconnects == 0


def test_a_server_error_inside_the_stream_is_raised_by_end() -> None:
    state = continuous()
    _, source = open_round(state, [b'{"error":"unknown_error","reason":"function_clause"}\n'])
    read_round(state, source)
    with pytest.raises(ServerError):
        state.end(source)


def test_bad_options_are_refused_before_anything_is_sent() -> None:
    with pytest.raises(InvalidOption):
        continuous(options={"heartbeat": -1})
    with pytest.raises(InvalidOption):
        continuous(limit=-2)
    with pytest.raises(InvalidOption):
        continuous(options={"no_such_option": 1})


# -- normal / longpoll (the follower) --------------------------------------------------------


def page(seqs: list[str], last_seq: str, pending: int | None) -> bytes:
    body: dict[str, Any] = {"results": [{"seq": s, "id": "d" + s, "changes": [{"rev": "1-x"}]} for s in seqs],
                            "last_seq": last_seq}
    if pending is not None:
        body["pending"] = pending
    return json.dumps(body).encode()


def test_one_off_ends_when_pending_is_zero() -> None:
    state = follower(one_off=True, since="0", options={"limit": 2})
    sent, source = open_round(state, body=page(["1-a", "2-b"], "2-b", 1))
    assert query(sent[0])["feed"] == "normal" and query(sent[0])["limit"] == "2"
    assert len(read_round(state, source)) == 2
    state.end(source)
    assert not state.done and state.pending == 1
    sent, source = open_round(state, body=page(["3-c"], "3-c", 0))
    assert query(sent[0])["since"] == "2-b"
    read_round(state, source)
    state.end(source)
    assert state.done and state.pending == 0 and state.delivered == 3 and state.since == "3-c"


def test_one_off_without_pending_ends_at_a_short_answer() -> None:
    state = follower(one_off=True, options={"limit": 2})
    _, source = open_round(state, body=page(["1-a", "2-b"], "2-b", None))
    read_round(state, source)
    state.end(source)
    assert not state.done and state.pending is None  # a full page: there may be more
    _, source = open_round(state, body=page(["3-c"], "3-c", None))
    read_round(state, source)
    state.end(source)
    assert state.done


def test_longpoll_never_ends_by_itself_and_resumes_from_last_seq() -> None:
    state = follower(one_off=False, since="5-e", options={"timeout": 60000})
    sent, source = open_round(state, body=page([], "7-g", 0))  # nothing new: last_seq moved on
    assert query(sent[0])["feed"] == "longpoll" and query(sent[0])["timeout"] == "60000"
    read_round(state, source)
    assert state.end(source) == 0.0 and not state.done
    assert query(state.request())["since"] == "7-g"


def test_idle_longpoll_read_timeout_asks_again_at_once() -> None:
    state = follower(one_off=False)
    state.lost(ConnectionError("refused", "/db/_changes"))
    assert state.failures == 1
    assert state.lost(ReadTimeout("no data", "/db/_changes")) == 0.0
    assert state.failures == 0 and state.reconnects == 2
    # a one-off follower counts it as a failure like any other
    one_off = follower(one_off=True)
    assert one_off.lost(ReadTimeout("no data", "/db/_changes")) == pytest.approx(0.1)


def test_a_failure_after_some_changes_starts_the_backoff_again() -> None:
    state = follower(one_off=False)
    for _ in range(3):
        state.lost(ConnectionError("refused", "/db/_changes"))
    body = page(["1-a", "2-b"], "2-b", 0)

    def cut() -> Iterator[bytes]:  # the connection breaks after the first change
        yield body[:body.index(b"}]},") + 4]
        raise ConnectionError("connection reset", "/db/_changes")

    _, source = open_round(state, cut())
    got: list[dict[str, Any]] = []
    with pytest.raises(ConnectionError) as reset:
        for item in state.items(source):
            got.extend(state.receive(item))
    assert [c["id"] for c in got] == ["d1-a"]
    assert state.lost(reset.value) == pytest.approx(0.1)
    assert query(state.request())["since"] == "1-a"


def test_since_now_is_pinned_once_and_reconnects_resume_from_the_pinned_seq() -> None:
    state = continuous(since="now")
    sent, _ = open_round(state, [])
    state.lost(ConnectionError("reset", "/db/_changes"))
    sent, _ = open_round(state, [])
    assert [r.path for r in sent] == ["/db/_changes"]  # no second GET /db
    assert query(sent[0])["since"] == "9-now"


def test_a_follower_without_max_retries_never_gives_up() -> None:
    state = follower(one_off=False, max_retries=None)
    for _ in range(50):
        state.lost(ServerError(503, "unavailable", "maintenance"))
    assert state.failures == 50 and not state.done and state.reconnects == 50
