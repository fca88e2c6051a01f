"""couchcore's benchmarks.

``python -m benchmarks run [--quick] [--url URL] ...`` (also ``couchcore bench`` and ``make
bench``) is the harness: couchcore's backends and the other Python CouchDB clients side by
side, each scenario x client in a fresh process, repeated, checked for correctness, written
to ``benchmarks/results/`` as Markdown tables, one JSON file and PNG charts. See
:mod:`benchmarks.harness`.

The single-purpose scripts next to it (``parse.py``, ``end_to_end.py``, ``stream_memory.py``,
``async_bench.py``, ``bulk_load.py``) measure couchcore against itself and still run on
their own.
"""
