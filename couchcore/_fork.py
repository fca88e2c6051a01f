"""What must not cross ``os.fork()``: a forked child (``multiprocessing`` with the fork
start method, gunicorn ``--preload``, Celery prefork) inherits its parent's kept-alive
sockets and cached uuids. Two processes reading answers from one socket get each other's
responses, and two processes handing out one uuid cache give two new documents the same
``_id``. Objects registered here are told, in the child only, to forget that state: the
next request opens the child's own connections, the next ``save`` fetches its own uuids.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol

__all__ = ["forget_on_fork"]


class _Forgets(Protocol):
    def after_fork_in_child(self) -> None: ...


_registered: weakref.WeakSet[_Forgets] = weakref.WeakSet()


def forget_on_fork(obj: _Forgets) -> None:
    """Call ``obj.after_fork_in_child()`` in every child forked while ``obj`` lives."""
    _registered.add(obj)


def _after_fork_in_child() -> None:
    for obj in list(_registered):
        obj.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
