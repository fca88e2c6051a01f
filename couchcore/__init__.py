"""couchcore: a fast, layered client for Apache CouchDB.

>>> import couchcore
>>> server = couchcore.Server("http://admin:secret@127.0.0.1:5984")
>>> db = server.db("events", create=True)
"""

from .errors import (
    BadRequest,
    Conflict,
    ConnectionError,
    ConnectTimeout,
    CouchcoreError,
    ExpectationFailed,
    Forbidden,
    Gone,
    HTTPError,
    InvalidDatabaseName,
    InvalidDocument,
    InvalidInput,
    InvalidOption,
    MethodNotAllowed,
    MissingRevision,
    NotAcceptable,
    NotFound,
    ParseError,
    PreconditionFailed,
    ReadTimeout,
    RequestEntityTooLarge,
    ResponseError,
    ServerError,
    TimeoutError,
    TLSError,
    TooManyRequests,
    TransportError,
    Unauthorized,
    UnsupportedMediaType,
)
from .feeds import ChangesFeed
from .models import ConflictResolution, Document, Result, Row, Status
from .results import AttachmentStream, ViewResult
from .sync import Couch, Database, Server

__version__ = "0.1.0"

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
    "ChangesFeed",
    "AttachmentStream",
    "CouchcoreError",
    "HTTPError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "MethodNotAllowed",
    "NotAcceptable",
    "Conflict",
    "Gone",
    "PreconditionFailed",
    "RequestEntityTooLarge",
    "UnsupportedMediaType",
    "ExpectationFailed",
    "TooManyRequests",
    "ServerError",
    "TransportError",
    "ConnectionError",
    "TimeoutError",
    "ConnectTimeout",
    "ReadTimeout",
    "TLSError",
    "InvalidInput",
    "InvalidDatabaseName",
    "InvalidDocument",
    "InvalidOption",
    "MissingRevision",
    "ResponseError",
    "ParseError",
]
