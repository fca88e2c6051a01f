"""atheris harness for the Cython row parser (``make fuzz``; needs ``pip install atheris``).

Each input picks a response shape and split points, and is fed to the Cython parser and to
the pure-Python twin. Either both raise :class:`~couchcore.errors.ParseError` or both
return the same rows, metadata and ``done`` flag; any other exception, a disagreement or a
crash of the extension is a finding (atheris stops and writes the input to ``crash-*``).

    python tests/fuzz_rows_atheris.py -atheris_runs=200000 [corpus_dir]

The extension is not built with libFuzzer instrumentation, so coverage guidance comes from
the Python code atheris instruments (the twin, couchcore._rows); the Cython parser is
exercised by every input and checked against the twin.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repository's tests package
from tests.helpers import canon  # noqa: E402 - the suite's strict comparison form

with atheris.instrument_imports():
    from couchcore import _rows as rows
    from couchcore.errors import ParseError

from couchcore_ext import _rows  # noqa: F401 - the extension must be built

SHAPES = rows.SHAPES
SEEDS = [
    b'{"total_rows":2,"offset":0,"rows":[\r\n{"id":"a","key":"a","value":{"rev":"1-x"}},\r\n'
    b'{"id":"b","key":[1,2.5,null],"value":1,"doc":{"_id":"b","x":"\\u00e9"}}\r\n]}\n',
    b'{"results":[{"seq":"1-g","id":"a","changes":[{"rev":"1-x"}],"deleted":true}],"last_seq":"1-g","pending":0}',
    b'{"seq":1,"id":"a","changes":[{"rev":"1-x"}]}\n\n{"last_seq":1,"pending":0}\n',
    b'{"results":[{"id":"a","docs":[{"ok":{"_id":"a"}},{"error":{"id":"a","error":"not_found"}}]}]}',
    b'{"docs":[{"_id":"a","n":1e400}],"bookmark":"g1","warning":"no index"}',
]


def parse(backend: str, shape: str, chunks: list[bytes]):
    p = rows.make_parser(shape, backend)
    try:
        out = []
        for c in chunks:
            out.extend(p.feed(c))
        out.extend(p.close())
        return canon(out), canon(p.meta), p.done
    except ParseError:
        return "ParseError"
    except RecursionError:  # the twin's documented limit on absurd nesting
        return "ParseError"


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    shape = SHAPES[fdp.ConsumeIntInRange(0, len(SHAPES) - 1)]
    cuts = sorted(fdp.ConsumeIntInRange(0, 4096) for _ in range(fdp.ConsumeIntInRange(0, 8)))
    if fdp.ConsumeBool():
        body = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)]
        at = fdp.ConsumeIntInRange(0, len(body))
        body = body[:at] + fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 8)) + body[at + fdp.ConsumeIntInRange(0, 4):]
    else:
        body = fdp.ConsumeBytes(fdp.remaining_bytes())
    chunks, prev = [], 0
    for c in cuts:
        c = min(c, len(body))
        chunks.append(body[prev:max(prev, c)])
        prev = max(prev, c)
    chunks.append(body[prev:])
    cy = parse("cython", shape, chunks)
    py = parse("python", shape, chunks)
    if cy != py:
        raise AssertionError(f"parsers disagree on {shape} {body!r} in {len(chunks)} pieces:\n{cy!r}\n{py!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
