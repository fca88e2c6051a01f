"""Authentication above the backends: objects that wrap each request of an operation.

An auth object's :meth:`Auth.flow` is a small generator, like an httpx ``Auth`` flow:
it receives the operation's :class:`~couchcore.protocol.messages.Request`, may yield
other requests first (a ``POST /_session`` login), yields the request itself (with its
credentials added) and returns the :class:`~couchcore.protocol.messages.Response` the
operation gets. :func:`authed` wraps a whole operation that way, so every driver (sync,
async, libcurl's ``iter_many``) runs it unchanged; no backend knows about it.

Plain ``auth=(user, password)`` stays HTTP Basic, sent by the backends themselves.
CouchDB: https://docs.couchdb.org/en/stable/api/server/authn.html
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Generator, Sequence, TypeVar

from .errors import ConnectError, ConnectionError, InvalidInput, TimeoutError, TransportError
from .protocol.messages import Request, Response

__all__ = ["Auth", "SessionAuth", "JWTAuth", "ProxyAuth", "authed"]

Flow = Generator[Request, Response, Response]

# patterns, compiled by ``re`` on first use (only cookie sessions read them: start-up cost)
_COOKIE = r"AuthSession=([^;,\s]*)"
_MAX_AGE = r"(?i);\s*Max-Age=(\d+)"  # of the AuthSession Set-Cookie


class Auth:
    """Base class: an object adding credentials to every request of an operation."""

    def flow(self, request: Request) -> Flow:
        """Send ``request`` (with credentials added): yield it, return its response."""
        response = yield request
        return response


_T = TypeVar("_T")


def authed(op: Generator[Request, Response, _T], auth: Auth) -> Generator[Request, Response, _T]:
    """``op`` with each of its requests passed through ``auth.flow``: same result,
    same exceptions; an exception the driver throws in (a transport failure) reaches
    ``op`` after the flow has seen it."""
    try:
        request = next(op)
    except StopIteration as stop:
        first: _T = stop.value
        return first
    while True:
        try:
            response = yield from auth.flow(request)
        except GeneratorExit:
            op.close()
            raise
        except BaseException as exc:
            try:
                request = op.throw(exc)
            except StopIteration as stop:
                result: _T = stop.value
                return result
            continue
        try:
            request = op.send(response)
        except StopIteration as stop:
            last: _T = stop.value
            return last


def unauthenticated(op: Generator[Request, Response, _T]) -> Generator[Request, Response, _T]:
    """``op`` marked to run without the Server's auth flow (the login itself)."""
    return (yield from op)


def is_unauthenticated(op: Any) -> bool:
    return getattr(op, "gi_code", None) is unauthenticated.__code__


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{name} must be a non-empty str")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"{name} must not hold control characters")
    return value


#: what :func:`_rewind_point` gives for a body that cannot be sent again
_ONCE: Any = object()


def _rewind_point(request: Request) -> Any:
    """How ``request``'s body can be sent again: ``None`` when it is sent whole (bytes, str
    or none), the position to ``seek()`` back to (its ``tell()`` now, before sending) for a
    seekable file object, or ``_ONCE`` for a stream read only once (an iterator, a pipe, an
    async file, a file that cannot tell its position)."""
    body: Any = request.body
    if body is None or isinstance(body, (bytes, bytearray, memoryview, str)):
        return None
    if hasattr(body, "__aiter__") or not callable(getattr(body, "seek", None)):
        return _ONCE  # an iterator, an async file (its seek is a coroutine)
    try:
        if body.seekable() is not True:
            return _ONCE
        position = body.tell()
    except (AttributeError, OSError, ValueError):
        return _ONCE
    return position if isinstance(position, int) else _ONCE


def _rewind(request: Request, point: Any) -> bool:
    """Seek ``request``'s body back to ``point`` (from :func:`_rewind_point`); whether it
    can now be sent again."""
    if point is _ONCE:
        return False
    if point is None:
        return True
    body: Any = request.body
    try:
        body.seek(point)
    except (AttributeError, OSError, ValueError):  # closed meanwhile
        return False
    return True


class SessionAuth(Auth):
    """Cookie authentication through ``POST /_session``.

    ``SessionAuth(user, password)`` (non-empty ``str``; otherwise
    :class:`~couchcore.errors.InvalidInput`). Logs in on the first request, sends
    ``Cookie: AuthSession=...`` with every request, keeps the refreshed cookie of every
    ``Set-Cookie`` the server sends back, and when a request is refused with ``401`` or
    ``403 credentials_expired`` logs in again and sends it once more. CouchDB serves a
    request with an expired cookie as anonymous, without a 401 where anonymous users may
    read (``GET /_session``, public databases), so the cookie's ``Max-Age`` (600 s by
    default, renewed by every refreshed cookie) is kept and, once it has passed, a login
    is made before the next request. A wrong password raises
    :class:`~couchcore.errors.Unauthorized` from the login, once: nothing is retried.
    A request the user may not make at all (CouchDB's 401 for a non-admin on an
    admin-only endpoint) costs one more login before its ``Unauthorized`` is raised.

    A request whose body is a stream (a file object, an iterator) and is refused with
    ``401`` costs one ``GET /_session`` with the cookie it carried: when CouchDB still
    knows the user by it, the ``401`` is the user's own and is returned as it is (no
    login, the body not sent again). Otherwise (the cookie had expired or was revoked:
    a password change, a new ``[chttpd_auth] secret``) SessionAuth logs in again, then
    a seekable file is sought back to where it stood before sending (its ``tell()``) and
    sent once more; a stream that cannot be rewound (an iterator, a pipe, an async file)
    raises :class:`~couchcore.errors.Unauthorized` saying the session had expired and the
    body could not be sent again: the session is renewed, so sending it again works.
    CouchDB may also close the connection before reading a large body it refuses: when
    the connection breaks under a request with a body, the same ``GET /_session`` is
    made and a lost session renewed; the error (e.g.
    :class:`~couchcore.errors.OutcomeUnknown`) is raised as it was, its message saying
    the session had expired and a retry now works (the request is not sent again).

    One login at a time per object: threads wait for a login another thread runs;
    tasks of one event loop (the async facade, libcurl's ``iter_many``) cannot block,
    so they poll (``GET /`` every 20 ms) until it is done. ``logins`` counts the
    logins made. The repr shows the user only.
    https://docs.couchdb.org/en/stable/api/server/authn.html#cookie-authentication
    """

    POLL = 0.02  # seconds between checks while another task of the loop logs in

    def __init__(self, user: str, password: str) -> None:
        self.username = _text("SessionAuth user", user)
        if not isinstance(password, str):
            raise InvalidInput("SessionAuth password must be a str")
        self._password = password
        self._cookie: str | None = None
        self._expires: float | None = None  # time.monotonic() when the cookie expires (Max-Age)
        self._epoch = 0  # bumped by every login
        self._login_lock = threading.Lock()
        self._owner: int | None = None  # the thread running the login
        self.logins = 0

    def __repr__(self) -> str:
        return f"SessionAuth({self.username!r}, '***')"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickling and ``copy.deepcopy`` give ``SessionAuth(user, password)``: not logged
        in, with a lock of its own (the pickle holds the password; no cookie)."""
        return type(self), (self.username, self._password)

    @property
    def logged_in(self) -> bool:
        """Whether a session cookie is held (it may have expired on the server)."""
        return self._cookie is not None

    # -- the login, one at a time ---------------------------------------------------
    def _acquire(self) -> Generator[Request, Response, None]:
        me = threading.get_ident()
        while not self._login_lock.acquire(blocking=False):
            if self._owner != me:
                self._login_lock.acquire()  # another thread logs in: wait for it
                break
            probe = Request("GET", "/")  # another task of this thread: must not block its loop
            probe.delay = self.POLL
            response = yield probe
            response.close()
        self._owner = me

    def _release(self) -> None:
        self._owner = None
        self._login_lock.release()

    def login_flow(self, since: int | None = None) -> Generator[Request, Response, Any]:
        """Log in (``POST /_session`` with a JSON body) and keep the cookie; returns the
        server's answer (``{"ok": True, "name": ..., "roles": [...]}``), or ``None``
        when ``since`` (an epoch) is given and another flow logged in after it.
        Raises :class:`~couchcore.errors.Unauthorized` on a wrong password."""
        yield from self._acquire()
        try:
            if since is not None and self._epoch != since and self._cookie is not None:
                return None
            # safe to repeat (a login creates no data: CouchDB issues another cookie), so a
            # connection broken under it is retried like a GET's, never reported as a write of
            # unknown outcome (the caller's own request is not sent yet)
            request = Request("POST", "/_session", json={"name": self.username, "password": self._password},
                              idempotent=True)
            response = yield request
            if not response.ok:
                if response.stream is not None:
                    response.read()
                self._cookie = None
                raise response.error()
            body = response.json()
            self._take(response)
            if self._cookie is None:
                from .errors import ResponseError

                raise ResponseError("POST /_session answered without an AuthSession cookie")
            self._epoch += 1
            self.logins += 1
            return body
        finally:
            self._release()

    def logout_flow(self) -> Generator[Request, Response, Any]:
        """``DELETE /_session`` and forget the cookie; returns the server's answer."""
        request = Request("DELETE", "/_session")
        if self._cookie is not None:
            request.headers["Cookie"] = f"AuthSession={self._cookie}"
        self._cookie = self._expires = None
        response = yield request
        return response.raise_for_status().json()

    def _take(self, response: Response) -> None:
        value = response.headers.get("set-cookie")
        if value:
            match = re.search(_COOKIE, value)
            if match:
                self._cookie = match.group(1) or None
                age = re.compile(_MAX_AGE).search(value, match.end())  # this cookie's, not an earlier one's
                # a little early: the server's clock started before the answer came back
                self._expires = (time.monotonic() + int(age.group(1)) * 0.95 - 1
                                 if age and self._cookie else None)

    def flow(self, request: Request) -> Flow:
        """Send ``request`` with the ``AuthSession`` cookie, logging in first when there is none
        or its ``Max-Age`` has passed; on a 401 (or 403 ``credentials_expired``) log in again
        and send it once more. A streamed body is first asked about: see the class docstring.
        Returns the final response; raises :class:`~couchcore.errors.Unauthorized` when the
        session had expired and the body could not be sent again."""
        if self._cookie is None or (self._expires is not None and time.monotonic() >= self._expires):
            yield from self.login_flow(since=self._epoch)
        epoch = self._epoch
        point = _rewind_point(request)  # before sending: where the body starts
        sent = self._cookie
        request.headers["Cookie"] = f"AuthSession={sent}"
        try:
            response = yield request
        except ConnectionError as exc:
            # CouchDB answers a request it refuses at once and may close the connection before
            # reading a large body: the client sees the break, not the 401 (Tornado's client
            # from a few MB, libcurl at tens of MB). Renew a lost session, so a retry works.
            # (not after a timeout: a stalled server would cost a second timeout for nothing)
            if request.body is not None and not isinstance(exc, (ConnectError, TimeoutError)) and not exc.aborted:
                yield from self._renew_after_break(sent, epoch, exc)
            raise
        self._take(response)
        if not _refused(response):
            return response
        if point is not None and response.status == 401:
            # a stream: re-sending costs a whole upload, and a body read once cannot be re-sent,
            # so ask CouchDB whether the session was the reason (GET /_session with the cookie sent:
            # its userCtx is anonymous once the cookie is refused); the user's own 401 (a
            # non-admin creating a database) is returned as it is, without a login
            if (yield from self._session_holds(sent)):
                return response
        yield from self.login_flow(since=epoch)
        if not _rewind(request, point):
            if response.stream is not None:
                response.read()
            raise _expired_error(response)
        response.close()
        request.headers["Cookie"] = f"AuthSession={self._cookie}"
        response = yield request
        self._take(response)
        return response

    def _renew_after_break(self, sent: str | None, epoch: int, exc: TransportError) -> Generator[Request, Response, None]:
        """After the connection broke under a request with a body: when CouchDB no longer
        takes the cookie it carried, log in again and say so in ``exc``'s message (the
        request is not sent again: whether it was applied is unknown to the driver). A
        failure here (the server unreachable) leaves ``exc`` as it is."""
        try:
            if (yield from self._session_holds(sent)):
                return
            yield from self.login_flow(since=epoch)
        except Exception:
            return
        exc.detail = (f"{exc.detail}; the session cookie it carried had expired or been revoked (CouchDB "
                      "refuses such a request with 401 and may close the connection before reading the body): "
                      "SessionAuth has logged in again, a retry now works")
        exc.args = (f"{exc.detail} ({exc.url})" if exc.url else exc.detail,)

    def _session_holds(self, cookie: str | None) -> Generator[Request, Response, bool]:
        """Whether CouchDB still takes ``cookie`` for this user (``GET /_session``:
        https://docs.couchdb.org/en/stable/api/server/authn.html#get--_session)."""
        probe = Request("GET", "/_session", headers={"Cookie": f"AuthSession={cookie}"})
        answer = yield probe
        try:
            if answer.stream is not None:
                answer.read()
            if not answer.ok:
                return False
            user = answer.json().get("userCtx") or {}
            return bool(user.get("name") == self.username)
        except Exception:  # not CouchDB's JSON: take the session as lost
            return False
        finally:
            answer.close()


def _expired_error(response: Response) -> Exception:
    """The :class:`~couchcore.errors.Unauthorized` for a request refused because its session
    cookie had expired, whose streamed body could not be sent again after the new login."""
    err = response.error()
    reason = ("the session cookie had expired or been revoked (a password change, a new [chttpd_auth] "
              "secret, [chttpd_auth] timeout) and CouchDB refused the request"
              + (f" ({err.reason})" if err.reason else "")
              + "; SessionAuth has logged in again, but the request body is a stream that was read once "
              "and cannot be rewound, so it was not sent again: send the request again with a new stream "
              "(a retry now works)")
    return type(err)(err.status, err.error, reason, err.method, err.url, err.headers, err.body)


def _refused(response: Response) -> bool:
    if response.status == 401:
        return True
    if response.status != 403:
        return False
    if response.stream is not None:
        response.read()
    return b"credentials_expired" in (response.body or b"")


class JWTAuth(Auth):
    """``Authorization: Bearer <token>`` on every request (CouchDB's JWT handler must be
    enabled: ``[chttpd] authentication_handlers`` with ``jwt_authentication_handler``).
    ``token``: a non-empty ``str``. The repr never shows it.
    https://docs.couchdb.org/en/stable/api/server/authn.html#jwt-authentication
    """

    def __init__(self, token: str) -> None:
        self._token = _text("JWTAuth token", token)

    def __repr__(self) -> str:
        return "JWTAuth('***')"

    def flow(self, request: Request) -> Flow:
        """Send ``request`` with ``Authorization: Bearer <token>``; returns its response."""
        request.headers["Authorization"] = "Bearer " + self._token
        response = yield request
        return response


class ProxyAuth(Auth):
    """Proxy authentication: ``X-Auth-CouchDB-UserName``, ``X-Auth-CouchDB-Roles``
    (comma-separated) and, when ``secret`` is given, ``X-Auth-CouchDB-Token``: the hex
    HMAC of the user name keyed with the secret (``[chttpd_auth] secret``), with hash
    ``hash`` (``"sha256"`` by default, one of ``[chttpd_auth] hash_algorithms``;
    ``"sha"``/``"sha1"`` for CouchDB before 3.3). ``user`` and each role are non-empty
    ``str`` without commas (roles) or control characters. The repr never shows the secret.
    https://docs.couchdb.org/en/stable/api/server/authn.html#proxy-authentication
    """

    def __init__(self, user: str, roles: Sequence[str] = (), secret: str | None = None,
                 hash: str = "sha256") -> None:
        self.username = _text("ProxyAuth user", user)
        if isinstance(roles, str) or not isinstance(roles, (list, tuple)):
            raise InvalidInput("ProxyAuth roles must be a list or tuple of str")
        for role in roles:
            if "," in _text("ProxyAuth role", role):
                raise InvalidInput("ProxyAuth roles must not contain commas")
        self.roles = tuple(roles)
        if secret is not None:
            _text("ProxyAuth secret", secret)
        import hashlib  # here: only ProxyAuth needs them (OpenSSL's start-up cost for every program)
        import hmac

        algorithm = {"sha": "sha1"}.get(hash, hash)
        if algorithm not in hashlib.algorithms_available:
            raise InvalidInput(f"ProxyAuth hash: unknown algorithm {hash!r}")
        self._headers = {"X-Auth-CouchDB-UserName": self.username}
        if self.roles:
            self._headers["X-Auth-CouchDB-Roles"] = ",".join(self.roles)
        if secret is not None:
            self._headers["X-Auth-CouchDB-Token"] = hmac.new(secret.encode("utf-8"), self.username.encode("utf-8"),
                                                             algorithm).hexdigest()

    def __repr__(self) -> str:
        return f"ProxyAuth({self.username!r}, roles={list(self.roles)!r})"

    def flow(self, request: Request) -> Flow:
        """Send ``request`` with the ``X-Auth-CouchDB-*`` headers; returns its response."""
        request.headers.update(self._headers)
        response = yield request
        return response
