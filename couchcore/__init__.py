"""couchcore: a fast, layered client for Apache CouchDB.

>>> import couchcore
>>> server = couchcore.Server("http://admin:secret@127.0.0.1:5984")
>>> db = server.db("events", create=True)

The names below are imported on first use (PEP 562 module ``__getattr__``): ``import
couchcore`` loads only the exception hierarchy, so a program (or the ``couchcore``
command) that needs a few parts of the library does not pay for the others (the
transports, the feeds, the row parser, Tornado). ``couchcore.X``, ``from couchcore import
X``, ``dir(couchcore)`` and ``couchcore.__all__`` work as for eagerly imported names.
"""

from __future__ import annotations

__version__ = "0.1.0"  # first: the transports name it in their User-Agent

from typing import TYPE_CHECKING, Any

from . import errors as _errors
from .errors import *  # noqa: F401,F403 - the whole exception hierarchy is public (a leaf: cheap)

if TYPE_CHECKING:  # what type checkers and the docs see; at run time: __getattr__ below
    # ("X as X": an explicit re-export for mypy --strict, which cannot read the computed __all__)
    from ._drivers import RetryPolicy as RetryPolicy, call_options as call_options
    from ._feeds import ChangesFeed as ChangesFeed
    from ._follow import ChangesFollower as ChangesFollower
    from ._paging import Paged as Paged
    from ._partition import Partition as Partition
    from ._results import (AttachmentStream as AttachmentStream, ChangesResult as ChangesResult,
                           StreamedResult as StreamedResult, ViewResult as ViewResult)
    from ._sync import Couch as Couch, Database as Database, Server as Server
    from .auth import JWTAuth as JWTAuth, ProxyAuth as ProxyAuth, SessionAuth as SessionAuth
    from .models import (ConflictResolution as ConflictResolution, Document as Document, Result as Result,
                         Row as Row, Status as Status)

    #: The row parser in use: ``"cython"`` (the compiled extension, when it is built) or
    #: ``"python"`` (its pure-Python twin); ``COUCHCORE_ROWS_BACKEND=python|cython`` forces one
    #: when the row parser is first loaded (on first use of ``couchcore.ROW_PARSER`` or of a
    #: result that parses rows).
    ROW_PARSER: str

#: public name -> (private module, attribute there): what ``__getattr__`` loads on first use
_LAZY: dict[str, tuple[str, str]] = {
    "Server": ("._sync", "Server"),
    "Couch": ("._sync", "Couch"),
    "Database": ("._sync", "Database"),
    "Document": (".models", "Document"),
    "Row": (".models", "Row"),
    "Status": (".models", "Status"),
    "Result": (".models", "Result"),
    "ConflictResolution": (".models", "ConflictResolution"),
    "ViewResult": ("._results", "ViewResult"),
    "ChangesResult": ("._results", "ChangesResult"),
    "ChangesFeed": ("._feeds", "ChangesFeed"),
    "ChangesFollower": ("._follow", "ChangesFollower"),
    "StreamedResult": ("._results", "StreamedResult"),
    "Partition": ("._partition", "Partition"),
    "Paged": ("._paging", "Paged"),
    "RetryPolicy": ("._drivers", "RetryPolicy"),
    "ROW_PARSER": ("._rows", "BACKEND"),
    "AttachmentStream": ("._results", "AttachmentStream"),
    "call_options": ("._drivers", "call_options"),
    "SessionAuth": (".auth", "SessionAuth"),
    "JWTAuth": (".auth", "JWTAuth"),
    "ProxyAuth": (".auth", "ProxyAuth"),
}

__all__ = [*_LAZY, *_errors.__all__]


def __getattr__(name: str) -> Any:
    """Load a public name of :data:`_LAZY` (or a submodule) on first use; then it is a plain
    module global and this is not called for it again."""
    from importlib import import_module

    target = _LAZY.get(name)
    if target is None:  # a submodule not imported yet (``couchcore.codec``): as when all were eager
        if name.startswith("__"):
            raise AttributeError(f"module 'couchcore' has no attribute {name!r}")
        from importlib.util import find_spec

        if find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'couchcore' has no attribute {name!r}")
        return import_module(f"{__name__}.{name}")  # (the import sets the attribute)
    value = getattr(import_module(target[0], __name__), target[1])
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
