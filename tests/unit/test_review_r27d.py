"""Round 27, reviewer-r27b.md finding 2, on canned answers (no server): where a normal or
longpoll round of a follower resumes. An answer cut by the ``limit`` per request resumes
from its last change's ``seq`` (CouchDB's ``last_seq`` may lie past filtered changes the
limit held back, apache/couchdb#1221); any other answer from its ``last_seq``. The real
servers are in tests/integration/test_review_r27d.py."""

from __future__ import annotations

import json
from typing import Any

from couchcore.errors import NotFound, ServerError, TransportError
from couchcore.protocol.changes import FeedState
from couchcore.protocol.messages import Headers, Response
from couchcore.protocol.server import ServerContext

CTX = ServerContext()


def follower(one_off: bool, limit: int | None, since: Any = "0", **options: Any) -> FeedState:
    if limit is not None:
        options["limit"] = limit
    return FeedState("db", options, feed="normal" if one_off else "longpoll", since=since, one_off=one_off,
                     backoff=lambda n: 0.1, retry_on=(TransportError, ServerError), terminal=(NotFound,))


def round_trip(state: FeedState, seqs: list[str | None], last_seq: str, pending: int | None
               ) -> tuple[dict[str, str], list[str]]:
    """One round: the query sent, then the ids handed out of an answer with ``seqs``."""
    op = state.open(CTX)
    request = next(op)
    body: dict[str, Any] = {"results": [{"seq": s, "id": f"d{i}", "changes": [{"rev": "1-x"}]}
                                        for i, s in enumerate(seqs)], "last_seq": last_seq}
    if pending is not None:
        body["pending"] = pending
    answer = Response(200, Headers({"Content-Type": "application/json"}), body=json.dumps(body).encode(),
                      method="GET", url="/db/_changes")
    try:
        op.send(answer)
    except StopIteration as stop:
        source = stop.value
    got = []
    for item in state.items(source):
        got.extend(c["id"] for c in state.receive(item))
        if not state.reading:
            break
    state.end(source)
    return dict(request.query), got


def test_an_answer_cut_by_the_limit_resumes_from_its_last_change_not_last_seq() -> None:
    state = follower(one_off=False, limit=2)
    round_trip(state, ["3-c", "5-e"], "9-past-held-back", 4)
    assert state.since == "5-e"
    query, _ = round_trip(state, ["6-f"], "9-i", 0)
    assert query["since"] == "5-e"
    assert state.since == "9-i"  # shorter than the limit: complete, last_seq is right


def test_an_empty_answer_with_a_limit_moves_on_to_last_seq() -> None:
    """A filter that drops a long stretch: no change, so nothing to resume from but last_seq
    (staying put would ask the same question for ever)."""
    state = follower(one_off=False, limit=3, since="2-b")
    round_trip(state, [], "40-x", 0)
    assert state.since == "40-x"


def test_an_answer_without_a_limit_resumes_from_last_seq() -> None:
    state = follower(one_off=False, limit=None)
    round_trip(state, ["3-c", "5-e"], "9-i", 0)
    assert state.since == "9-i"


def test_with_seq_interval_a_cut_answer_whose_last_change_has_no_seq_uses_last_seq() -> None:
    """seq_interval: CouchDB sends a seq on the first of each seq_interval changes only;
    going back to an earlier change would hand the same changes out again every round."""
    state = follower(one_off=False, limit=3, seq_interval=3)
    round_trip(state, ["3-c", None, None], "9-i", 5)
    assert state.since == "9-i"


def test_a_one_off_follower_asks_again_after_a_cut_answer_even_with_pending_zero() -> None:
    state = follower(one_off=True, limit=2)
    round_trip(state, ["3-c", "5-e"], "9-past-held-back", 0)
    assert not state.done and state.since == "5-e"
    query, got = round_trip(state, ["7-g"], "9-i", 0)
    assert query["since"] == "5-e" and got == ["d0"]
    assert state.done and state.since == "9-i" and state.delivered == 3


def test_a_one_off_follower_without_pending_ends_at_a_short_answer() -> None:
    state = follower(one_off=True, limit=2)
    round_trip(state, ["3-c", "5-e"], "9-x", None)
    assert not state.done
    round_trip(state, [], "9-x", None)
    assert state.done and state.since == "9-x"


# -- finding 5: `couchcore dump --help` names what a dump | load --create copy does not copy --------


def test_dump_help_says_the_partitioned_property_and_q_n_are_not_copied(capsys) -> None:
    import pytest

    from couchcore import cli

    with pytest.raises(SystemExit):
        cli.main(["dump", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "creation options are not copied" in text
    assert "--create makes a plain database (not partitioned, the server's default q and n)" in text
    assert "partitioned=True" in text
