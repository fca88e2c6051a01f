"""The urllib3 backend sends a plain request-target straight to its host's connection pool
(not through ``PoolManager.urlopen``, which parses the whole URL again for every request):
the request line and the pool must be exactly what ``PoolManager.urlopen`` would use, and
anything ``parse_url`` would change must take the PoolManager's way."""

from __future__ import annotations

import random

import pytest
from urllib3.util import parse_url

from couchcore.protocol.messages import Request
from couchcore.protocol.paths import attachment_path, doc_path
from couchcore.transport.base import TransportOptions
from couchcore.transport.urllib3 import Urllib3Transport, _direct_route

BASES = ["http://127.0.0.1:5984", "http://LocalHost:5984", "https://couch.example.com", "http://[::1]:5984",
         "http://h:5984/couch", "http://h:5984/couch/", "http://h/a%20b", "http://h/a b", "http://h/x/../y",
         "http://h/p?q=1", "http://h#f", "http://u:p@h:5984", "ftp://h/x", "http://h/%2e"]
IDS = ["doc00000042", "a b", "é☃", "q?#%&+=", "..", ".", "_design/x", "a/b", "%2e", "%41", "x:y@z", "~!$'()*,;",
       "a%2fb", "\x00\x7f", "[]{}|\\^`\"<>"]


def targets() -> list[str]:
    out = []
    for docid in IDS:
        for db in ("db", "d$b(1)"):
            out.append(Request("GET", doc_path(db, docid)).target)
            out.append(Request("GET", doc_path(db, docid), query=[("rev", "1-abc"), ("k", docid)]).target)
            out.append(Request("PUT", attachment_path(db, docid, docid + ".txt")).target)
    rnd = random.Random(26)
    alphabet = "abcAZ09-._~!$&'()*+,;=:@/?%#[] é\"<>{}|\\^`"
    for _ in range(3000):  # raw targets: anything a caller-built path could hold
        out.append("/" + "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 12))))
        out.append("/" + "".join(rnd.choice("ab/.%2eE?") for _ in range(rnd.randint(0, 8))))
    return out


@pytest.mark.parametrize("base", BASES)
def test_a_target_sent_straight_to_the_pool_is_the_one_urllib3_would_send(base):
    transport = Urllib3Transport(base, None, TransportOptions())
    route = _direct_route(base)
    direct = 0
    for target in targets():
        pool, uri = transport._direct_pool(target)
        if pool is None:
            continue
        direct += 1
        parsed = parse_url(base + target)
        assert uri == parsed.request_uri, (base, target)
        assert pool is transport._pool.connection_from_url(base + target)  # the pool PoolManager picks
    if base in ("http://127.0.0.1:5984", "http://h:5984/couch"):
        assert direct > 100  # the usual requests do take the short way
    if route is None:
        assert direct == 0


def test_bases_urllib3_would_change_or_that_carry_more_than_a_path_take_the_pool_managers_way():
    for base in ("http://h/a b", "http://h/x/../y", "http://h/p?q=1", "http://h#f", "http://u:p@h:5984",
                 "ftp://h/x", "http://h/%2e"):
        assert _direct_route(base) is None, base
    assert _direct_route("http://h:5984/couch") == ("http", "h", 5984, "/couch")
    assert _direct_route("http://LocalHost:5984") == ("http", "localhost", 5984, "")


def test_after_close_requests_use_the_new_pool_the_pool_manager_makes():
    transport = Urllib3Transport("http://127.0.0.1:5984", None, TransportOptions())
    first, _ = transport._direct_pool("/db/doc")
    transport.close()  # PoolManager.clear(): the manager forgets its pools
    second, uri = transport._direct_pool("/db/doc")
    assert second is not first and uri == "/db/doc"
    assert second is transport._pool.connection_from_url("http://127.0.0.1:5984/db/doc")

