"""couchcore: a fast, layered client for Apache CouchDB.

>>> import couchcore
>>> server = couchcore.Server("http://admin:secret@127.0.0.1:5984")
>>> db = server.db("events", create=True)
"""

__version__ = "0.1.0"  # first: the transports name it in their User-Agent

from . import errors as _errors
from .auth import JWTAuth, ProxyAuth, SessionAuth
from .drivers import call_options
from .errors import *  # noqa: F401,F403 - the whole exception hierarchy is public
from .feeds import ChangesFeed
from .models import ConflictResolution, Document, Result, Row, Status
from .results import AttachmentStream, ChangesResult, ViewResult
from .sync import Couch, Database, Server


__all__ = [
    "Server",
    "Couch",
    "Database",
    "Document",
    "Row",
    "Status",
    "Result",
    "ConflictResolution",
    "ViewResult",
    "ChangesResult",
    "ChangesFeed",
    "AttachmentStream",
    "call_options",
    "SessionAuth",
    "JWTAuth",
    "ProxyAuth",
    *_errors.__all__,
]
