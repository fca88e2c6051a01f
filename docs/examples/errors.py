"""Errors and retries: the exception hierarchy, bad input caught early, timeouts and retries."""

import os
import socket
import uuid

import couchcore

server = couchcore.Server(os.environ.get("COUCHDB_URL", "http://127.0.0.1:5984"))
name = f"guide-errors-{uuid.uuid4().hex[:8]}"
db = server.db(name, create=True)
try:
    # the server's answer: an HTTPError subclass with status, error, reason and the URL
    try:
        db.get("nope")
    except couchcore.NotFound as exc:
        assert exc.status == 404 and exc.error == "not_found"
        print(type(exc).__name__, exc.status, exc.error, exc.reason)
    else:
        raise AssertionError("a missing document raises NotFound")
    # db[id] / server[name] raise NotFoundKeyError: a NotFound that is also a KeyError
    try:
        db["nope"]
    except KeyError as exc:
        assert isinstance(exc, couchcore.NotFoundKeyError) and isinstance(exc, couchcore.NotFound)
    else:
        raise AssertionError("db[missing id] raises a KeyError")

    # "create if absent": each writer's body differs (its own token), so the second create
    # conflicts on a cluster too (identical bodies can come back 202 ok there: see above)
    db.save({"_id": "a", "owner": uuid.uuid4().hex})
    try:
        db.save({"_id": "a", "owner": uuid.uuid4().hex})  # no _rev: a conflict
    except couchcore.HTTPError as exc:
        assert isinstance(exc, couchcore.Conflict) and exc.status == 409
    else:
        raise AssertionError("a write without the current _rev raises Conflict")

    # bad input raises InvalidInput (a ValueError) before anything is sent
    for bad in (lambda: server.create("Bad Name"),
                lambda: db.save({"x": float("nan")}),  # not strict JSON
                lambda: db.view("no-slash"),  # not ddoc/view
                lambda: db.view("_all_docs", limt=10)):  # unknown option
        try:
            bad()
        except couchcore.InvalidInput as exc:
            print("refused:", type(exc).__name__, exc)
        else:
            raise AssertionError("accepted bad input")

    # network failures are TransportError subclasses, and Python's own
    # ConnectionError / TimeoutError too; a port where nothing listens:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = couchcore.Server(f"http://127.0.0.1:{port}", retries=1, backoff=0.01, connect_timeout=2)
    try:
        dead.version()
    except ConnectionError as exc:  # couchcore.ConnectError is a builtins.ConnectionError
        assert isinstance(exc, couchcore.ConnectError) and isinstance(exc, couchcore.TransportError)
        print("unreachable:", type(exc).__name__)
    else:
        raise AssertionError("nothing listens there")
    dead.close()

    # timeouts and retries for some calls only (this thread or task)
    with couchcore.call_options(timeout=5, retries=0):
        assert db.get("a")._id == "a"
    print("errors: ok")
finally:
    server.delete(name)
    server.close()
