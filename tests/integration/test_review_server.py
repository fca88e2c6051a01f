"""Review of the server-level operations on every facade (sync, ``couchcore.aio``,
``couchcore.tornado``'s callbacks): bugs found by probing them as a newcomer would,
against the real test server. Each test failed before its fix."""

from __future__ import annotations

import asyncio

import pytest

import couchcore
import couchcore.aio
from couchcore._urls import split_credentials
from tests.helpers import unique_name


def _async_backends() -> list[str]:
    out = ["tornado"]
    try:
        import pycurl  # noqa: F401
    except ImportError:
        return out
    return ["pycurl", *out]


def _wrong_credentials(couch_url: str) -> tuple[str, tuple[str, str]]:
    base, _, _ = split_credentials(couch_url)
    # an unknown user: wrong passwords for the real admin lock it out on CouchDB 3
    return base, (unique_name("nobody"), "definitely-wrong")


def test_up_with_rejected_credentials_raises_unauthorized(couch_url, backend):
    # GET /_up answers 401 to credentials CouchDB rejects: the node is up, but up() said
    # False ("down"), sending the user to look for a dead server instead of a bad password
    # https://docs.couchdb.org/en/stable/api/server/common.html#up (200 up, 503 down)
    base, auth = _wrong_credentials(couch_url)
    server = couchcore.Server(base, auth=auth, backend=backend, retries=0)
    with pytest.raises(couchcore.Unauthorized) as info:
        server.up()
    assert "definitely-wrong" not in str(info.value) and "definitely-wrong" not in repr(info.value)
    assert couchcore.Server(couch_url, backend=backend).up() is True


@pytest.mark.parametrize("backend", _async_backends())
def test_up_with_rejected_credentials_raises_unauthorized_async(couch_url, backend):
    base, auth = _wrong_credentials(couch_url)

    async def main():
        server = couchcore.aio.Server(base, auth=auth, backend=backend, retries=0)
        with pytest.raises(couchcore.Unauthorized):
            await server.up()
        assert await couchcore.aio.Server(couch_url, backend=backend).up() is True

    asyncio.run(main())


def test_up_is_false_when_nothing_listens(refused_url, backend):
    assert couchcore.Server(refused_url, backend=backend, retries=0).up() is False
