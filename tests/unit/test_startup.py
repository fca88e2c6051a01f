"""The start-up of the ``couchcore load`` process: it imports only what loading needs.

At 100,000 documents the interpreter's start-up and imports cost as much CPU as all the
per-document work (benchmarks/results/bulk-r22.md: callgrind, ~3,100 instructions per
document against ~270M instructions of start-up). Each module below is one the load path
does not use, or uses only on a rare branch (a retry, a conflict, a replication option,
a file attachment), and imports there: a module-level import of any of them again fails here.

The process runs as the ``couchcore`` console script does (``couchcore.cli.main()``, a fresh
interpreter) against a port nothing listens on: ``couchcore load`` imports everything it
needs to load (the facade, the loader, the pycurl backend) before its pre-flight request,
and exits 2 ("cannot reach"); tests/integration/test_load_cli.py checks a whole load the
same way, and ``python -m couchcore.cli``. The modules are read from ``sys.modules`` at the
end (``-X importtime`` does not list what ``importlib.import_module`` loads, e.g. the backend).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

import couchcore
from couchcore.testing import free_port

#: never imported by ``couchcore load`` of JSON Lines with ``--quiet`` (either JSON engine)
NOT_IMPORTED = (
    # the standard library: asynchronous or unused machinery, and what only a rare branch needs
    "asyncio", "concurrent.futures", "csv", "difflib", "email", "hashlib", "http", "logging", "mimetypes",
    "random", "ssl",  # (random: a retry's jitter; a load that retries nothing does not import it)
    "base64",  # (the Authorization header is made with binascii: bulk-r27.md)
    # a plain command line is parsed without argparse (and gettext, locale), the Ctrl-C handlers are
    # installed with _signal (signal.py converts signals and handlers to enums): bulk-r25.md
    "argparse", "gettext", "locale", "signal",
    # other backends, and the progress bar (not with --quiet)
    "urllib3", "tornado", "tqdm",
    # couchcore: what other commands and reads use (not protocol.shapes: typing.get_type_hints() of
    # the public API needs its TypedDicts at run time)
    "couchcore._build_view_cli", "couchcore.dump", "couchcore._results",
    "couchcore._rows", "couchcore._feeds", "couchcore._follow", "couchcore._paging", "couchcore.protocol.views",
    "couchcore.protocol.changes", "couchcore.protocol.bulk_get", "couchcore.transport.urllib3",
    "couchcore.transport.curlloop",
)
#: with the orjson engine, simplejson (the reference engine: big integers, Decimal, ...) is not needed
NOT_IMPORTED_WITH_ORJSON = ("simplejson", "decimal")


#: what the ``couchcore`` console script runs, then ``sys.modules`` as the last line of stdout
_MAIN = ("import sys\nfrom couchcore.cli import main\ntry:\n    rc = main(sys.argv[1:])\n"
         "except SystemExit as exc:  # --help\n    rc = exc.code\nnames = sorted(sys.modules)\n"
         "print('\\n' + repr(names))\nsys.exit(rc)")


def imported_modules(args: list[str], env: dict[str, str] | None = None, timeout: float = 120,
                     module: bool = False) -> tuple[set[str], subprocess.CompletedProcess[bytes]]:
    """The modules a fresh ``couchcore *args`` process holds when it ends (as the console
    script runs it; ``module``: as ``python -m couchcore.cli``, read from ``-X importtime``),
    and the finished process."""
    if module:
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "couchcore.cli", *args],
                              capture_output=True, timeout=timeout, env=env)
        names = set()
        for line in proc.stderr.decode("utf-8", "replace").splitlines():
            if line.startswith("import time:") and "|" in line:
                names.add(line.rsplit("|", 1)[1].strip())
        return names - {"imported package"}, proc
    proc = subprocess.run([sys.executable, "-c", _MAIN, *args], capture_output=True, timeout=timeout, env=env)
    last = proc.stdout.rstrip().rsplit(b"\n", 1)[-1]
    return set(ast.literal_eval(last.decode())), proc


def unexpected(names: set[str], engine: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """The modules of :data:`NOT_IMPORTED` (and for ``orjson`` :data:`NOT_IMPORTED_WITH_ORJSON`)
    but ``allowed`` among ``names``, a package's submodules included."""
    banned = [b for b in NOT_IMPORTED + (NOT_IMPORTED_WITH_ORJSON if engine == "orjson" else ()) if b not in allowed]
    return sorted(n for n in names if any(n == b or n.startswith(b + ".") for b in banned))


def load_env(engine: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUCHDB_")}
    env["COUCHCORE_JSON"] = engine
    return env


@pytest.mark.parametrize("engine", ["orjson", "simplejson"])
def test_load_imports_only_what_loading_needs(tmp_path, engine):
    pytest.importorskip("pycurl")
    if engine == "orjson":
        pytest.importorskip("orjson")
    source = tmp_path / "docs.jsonl"
    source.write_bytes(b'{"_id": "a", "n": 1}\n{"n": 2.5}\n')
    # nothing listens there: exit 2 after the imports (credentials: the Authorization header is made)
    url = f"http://user:secret@127.0.0.1:{free_port()}/db"
    names, proc = imported_modules(["load", url, str(source), "--create", "--quiet", "--backend", "pycurl"],
                                   env=load_env(engine))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert b"cannot reach" in proc.stderr, proc.stderr[-2000:]
    # the load path itself was imported (else the check below proves nothing)
    assert {"couchcore._load_cli", "couchcore.bulk", "couchcore._sync", "couchcore.transport.pycurl",
            "couchcore._scan", "couchcore.protocol.bulk", "pycurl"} <= names
    # (random: the pre-flight retries the refused connection, with a random back-off)
    assert unexpected(names, engine, allowed=("random",)) == []


#: never imported by a ``couchcore load`` of JSON Lines that meets no error, whichever the engine:
#: the bytes are checked by couchcore_ext and sent as they are, the _bulk_docs answers counted in
#: C, the server's welcome read by the interpreter's C scanner (codec._loads_small): no codec call
#: needs a JSON library (orjson's initialisation alone is ~20M instructions: bulk-r27.md)
NO_JSON_LIBRARY = ("orjson", "simplejson", "msgspec", "json", "decimal")


@pytest.mark.parametrize("engine", ["orjson", "simplejson"])
def test_a_clean_load_of_json_lines_imports_no_json_library(tmp_path, couch_url, db_name, engine):
    pytest.importorskip("pycurl")
    if engine == "orjson":
        pytest.importorskip("orjson")
    source = tmp_path / "docs.jsonl"
    source.write_bytes(b'{"_id": "a", "n": 1}\n{"n": 2.5, "s": "\\u00e9"}\n{"_id": "c", "big": 123456789012345678901234}\n')
    names, proc = imported_modules(["load", f"{couch_url}/{db_name}", str(source), "--create", "--quiet",
                                    "--backend", "pycurl"], env=load_env(engine))
    server = couchcore.Server(couch_url)
    try:
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert server[db_name].info()["doc_count"] == 3  # the load happened
    finally:
        server.delete(db_name)
        server.close()
    assert {"couchcore.bulk", "couchcore.transport.pycurl", "couchcore.protocol.server"} <= names
    assert sorted(n for n in names if n.split(".")[0] in NO_JSON_LIBRARY) == []


@pytest.mark.parametrize("module", [False, True])
def test_the_check_sees_what_is_imported(module):
    """Both ways of reading the modules find what ``couchcore --help`` imports (so an empty
    list above means something)."""
    names, proc = imported_modules(["--help"], env=load_env("simplejson"), module=module)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {"argparse", "couchcore.errors", "couchcore._load_cli", "couchcore._build_view_cli"} <= names
    assert unexpected({"random", "simplejson.decoder", "couchcore.dump", "randomness"}, "orjson") == [
        "couchcore.dump", "random", "simplejson.decoder"]


def test_shapes_annotations_are_evaluated():
    """``couchcore.protocol.shapes`` holds evaluated annotations, not strings: a TypedDict turns
    each string annotation into a ``ForwardRef`` and compiles it (~4M instructions of every
    ``couchcore load``: bulk-r24.md). Only the recursive ``others`` stays a string; the type
    hints the public API shows are the same."""
    import typing

    from couchcore.protocol import shapes

    typed = [getattr(shapes, n) for n in dir(shapes) if hasattr(getattr(shapes, n), "__required_keys__")]
    assert len(typed) >= 25
    refs = sorted(f"{cls.__name__}.{key}" for cls in typed
                  for key, hint in vars(cls).get("__annotations__", {}).items() if isinstance(hint, typing.ForwardRef))
    assert refs == ["PendingWrite.others", "_PendingWriteOthers.others"]  # (a TypedDict holds its bases' keys)
    hints = typing.get_type_hints(shapes.PendingWrite)
    assert hints == {"others": list[shapes.PendingWrite], "doc": dict[str, typing.Any], "error": str,
                     "reason": typing.Optional[str]}
    assert typing.get_type_hints(shapes.DatabaseInfo)["update_seq"] == typing.Union[str, int]
    assert shapes.DatabaseInfo.__required_keys__ == {"db_name", "update_seq", "doc_count"}


def test_load_parser_formats_no_usage(monkeypatch):
    """Building the ``couchcore load`` parser formats no usage text (argparse's
    ``add_subparsers`` without ``prog`` formats the parent's usage to find it, compiling
    four regular expressions on every load); the sub-command's name is as before."""
    import argparse

    from couchcore import cli

    def refuse(*args, **kwargs):
        raise AssertionError("usage formatted")

    monkeypatch.setattr(argparse.HelpFormatter, "_format_usage", refuse)
    for only in ("load", "dump", None):
        parser = cli._build_parser(only)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        assert {name: p.prog for name, p in sub.choices.items()} == {
            name: f"couchcore {name}" for name in (["load", "dump", "bench", "build-view"] if only is None else [only])}
