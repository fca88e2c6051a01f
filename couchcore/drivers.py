"""Drivers: pump a protocol operation (a generator of Requests) over a transport.

An operation yields :class:`~couchcore.protocol.messages.Request` objects, receives
:class:`~couchcore.protocol.messages.Response` objects and returns its result. A
transport failure is thrown into the operation, so its ``try``/``finally`` blocks run
(and may still yield clean-up requests) before the error reaches the caller.
"""

from __future__ import annotations

from typing import Any, Generator

from .errors import HTTPError
from .protocol.messages import Request, Response

__all__ = ["Operation", "run", "run_async"]

Operation = Generator[Request, Response, Any]


def run(op: Operation, transport: Any) -> Any:
    """Run ``op`` to completion over a sync transport and return its result."""
    try:
        return _run(op, transport)
    except HTTPError as exc:
        exc._rebase(_base_url(transport))
        raise


def _run(op: Operation, transport: Any) -> Any:
    try:
        request = next(op)
        while True:
            try:
                response = transport.send(request)
                if response.stream is not None and not response.ok:
                    response.read()
            except BaseException as exc:  # give the operation its chance to clean up
                request = op.throw(exc)
                continue
            request = op.send(response)
    except StopIteration as stop:
        return stop.value


async def run_async(op: Operation, transport: Any) -> Any:
    """Run ``op`` to completion over an async transport (``await transport.send(req)``)."""
    try:
        return await _run_async(op, transport)
    except HTTPError as exc:
        exc._rebase(_base_url(transport))
        raise


async def _run_async(op: Operation, transport: Any) -> Any:
    try:
        request = next(op)
        while True:
            try:
                response = await transport.send(request)
                if response.stream is not None and not response.ok:
                    await response.aread()
            except BaseException as exc:
                request = op.throw(exc)
                continue
            request = op.send(response)
    except StopIteration as stop:
        return stop.value


def _base_url(transport: Any) -> str:
    """The base URL behind ``transport`` (or a proxy of it), for errors an operation
    raised with a path only: every error names the full URL."""
    while transport is not None:
        base = getattr(transport, "base_url", None)
        if isinstance(base, str):
            return base
        transport = getattr(transport, "_transport", None)
    return ""
