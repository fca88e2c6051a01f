"""reviewer-r29b LOW 7: a feed's read timeout is its own (not the Server's ``timeout``);
the ChangesFeed and ChangesFollower docstrings say how it is derived: these tests hold
the figures they quote to the code that derives it."""

from __future__ import annotations

import pytest

from couchcore._feeds import ChangesFeed
from couchcore._follow import DEFAULT_LONGPOLL_TIMEOUT, ChangesFollower
from couchcore.protocol.changes import changes_request


@pytest.mark.parametrize("options, seconds", [
    ({"feed": "continuous", "heartbeat": 30000}, 95.0),  # ChangesFeed's default heartbeat
    ({"feed": "continuous", "heartbeat": 5000}, 20.0),
    ({"feed": "continuous", "timeout": 1500}, 31.5),
    ({"feed": "longpoll", "timeout": DEFAULT_LONGPOLL_TIMEOUT}, 90.0),  # follow()'s default
    ({"feed": "longpoll", "heartbeat": 10000}, 35.0),
])
def test_the_feed_read_timeouts_the_docstrings_quote(options, seconds):
    assert changes_request("db", options, stream=True).timeout == seconds


def test_the_docstrings_quote_them():
    feed = " ".join((ChangesFeed.__doc__ or "").split())
    assert "3 heartbeats + 5 s" in feed and "95 s" in feed and "``5000``: 20 s" in feed
    assert "``timeout`` asked of the server + 30 s" in feed
    follower = " ".join((ChangesFollower.__doc__ or "").split())
    assert "longpoll ``timeout`` + 30 s (default 90 s)" in follower and "3 heartbeats + 5 s" in follower
    assert DEFAULT_LONGPOLL_TIMEOUT == 60_000
