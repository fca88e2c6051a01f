"""couchcore: a fast, layered client for Apache CouchDB.

>>> import couchcore
>>> server = couchcore.Server("http://admin:secret@127.0.0.1:5984")
>>> db = server.db("events", create=True)
"""

__version__ = "0.1.0"  # first: the transports name it in their User-Agent

from . import errors as _errors
from .auth import JWTAuth, ProxyAuth, SessionAuth
from ._drivers import RetryPolicy, call_options
from .errors import *  # noqa: F401,F403 - the whole exception hierarchy is public
from ._feeds import ChangesFeed
from ._follow import ChangesFollower
from .models import ConflictResolution, Document, Result, Row, Status
from ._paging import Paged
from ._partition import Partition
from ._results import AttachmentStream, ChangesResult, StreamedResult, ViewResult
from ._rows import BACKEND as _ROW_PARSER
from ._sync import Couch, Database, Server

#: The row parser in use: ``"cython"`` (the compiled extension, when it is built) or
#: ``"python"`` (its pure-Python twin); ``COUCHCORE_ROWS_BACKEND=python|cython`` forces one
#: when couchcore is imported.
ROW_PARSER: str = _ROW_PARSER

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
    "ChangesFollower",
    "StreamedResult",
    "Partition",
    "Paged",
    "RetryPolicy",
    "ROW_PARSER",
    "AttachmentStream",
    "call_options",
    "SessionAuth",
    "JWTAuth",
    "ProxyAuth",
    *_errors.__all__,
]
