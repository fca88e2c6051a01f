"""The bulk loader: stream documents into a database in concurrent ``_bulk_docs`` batches.

Memory stays bounded by ``batch_size * concurrency`` documents whatever the input size:
the input is read lazily and at most ``concurrency`` batches are in flight. Every
document ends up counted as written or listed in :attr:`LoadReport.failed` with the
reason — nothing is dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Mapping

from . import codec
from .errors import CouchcoreError
from .protocol.documents import save_docs

__all__ = ["LoadReport", "load"]


@dataclass
class LoadReport:
    """What a load did: ``written`` documents, ``failed`` ones by id (or input position)
    with ``{"doc", "error", "reason"}``, ``batches`` sent and ``seconds`` taken."""

    written: int = 0
    failed: dict[str, dict] = field(default_factory=dict)
    batches: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.written + len(self.failed)

    @property
    def docs_per_second(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        return (f"{self.written:,} written, {len(self.failed):,} failed in {self.batches:,} batches, "
                f"{self.seconds:.2f}s ({self.docs_per_second:,.0f} docs/s)")


def _fail(report: LoadReport, key: str, entry: dict) -> None:
    """Record a failure under ``key``, never overwriting an earlier one (duplicate ids)."""
    unique, n = key, 1
    while unique in report.failed:
        n += 1
        unique = f"{key}#{n}"
    report.failed[unique] = entry


def _batches(docs: Iterable[Any], size: int, report: LoadReport) -> Iterator[list[dict]]:
    """Lazily cut the input into batches; documents that cannot be sent become failures."""
    position = 0
    it = iter(docs)
    while True:
        chunk = list(islice(it, size))
        if not chunk:
            return
        batch = []
        for doc in chunk:
            position += 1
            if isinstance(doc, BaseException):  # e.g. an unparsable input line, passed through
                _fail(report, f"#{position}", {"doc": None, "error": type(doc).__name__, "reason": str(doc)})
                continue
            try:
                if not isinstance(doc, Mapping):
                    raise TypeError(f"not a JSON object: {type(doc).__name__}")
                codec.dumps(doc)
            except (TypeError, CouchcoreError) as exc:
                docid = doc.get("_id") if isinstance(doc, Mapping) else None
                key = docid if isinstance(docid, str) else f"#{position}"
                _fail(report, key, {"doc": doc, "error": "invalid", "reason": str(exc)})
                continue
            batch.append(doc if isinstance(doc, dict) else dict(doc))
        if batch:
            yield batch


def load(db: Any, docs: Iterable[Any], batch_size: int = 1000, concurrency: int = 4,
         progress: Callable[[int], Any] | None = None, **options: Any) -> LoadReport:
    """Write ``docs`` (any iterable of dicts, read lazily) to ``db`` (a sync Database).

    ``concurrency`` batches are in flight at once (on one CurlMulti handle with the
    pycurl backend, on threads otherwise). ``progress(n)`` is called after each batch
    with the number of documents it settled. Extra ``options`` go into each
    ``_bulk_docs`` body (e.g. ``new_edits=False``).
    """
    if batch_size < 1 or concurrency < 1:
        raise ValueError("batch_size and concurrency must be positive")
    report = LoadReport()
    in_flight: dict[int, list[dict]] = {}
    started = time.perf_counter()

    def operations() -> Iterator[Any]:
        for i, batch in enumerate(_batches(docs, batch_size, report)):
            in_flight[i] = batch
            yield save_docs(db._ctx, db.name, batch, db, False, **options)

    for i, result in db.server._iter_many(operations(), concurrency):
        batch = in_flight.pop(i)
        report.batches += 1
        if isinstance(result, BaseException):
            for j, doc in enumerate(batch):
                docid = doc.get("_id")
                _fail(report, docid if isinstance(docid, str) else f"batch{i}#{j}",
                      {"doc": doc, "error": type(result).__name__, "reason": str(result)})
        else:
            report.written += len(result.resolved)
            for key, entry in result.pending.items():
                _fail(report, key, entry)
        if progress is not None:
            progress(len(batch))
    report.seconds = time.perf_counter() - started
    return report
