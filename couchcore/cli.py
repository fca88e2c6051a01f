"""The ``couchcore`` command: one small function per subcommand.

* ``couchcore load DB_URL [FILE|-]`` — bulk-load JSON Lines, a JSON array or CSV
  (:mod:`couchcore._load_cli`, on :mod:`couchcore.bulk`);
* ``couchcore dump DB_URL [FILE|-]`` — the database out as JSON Lines.
* ``couchcore build-view DB_URL VIEW [--timeout S]`` — build a view's index and wait for it,
  with a progress bar (:mod:`couchcore._build_view_cli`);
* ``couchcore bench run [--quick] [--url URL] ...`` — the benchmark harness
  (``benchmarks/`` of the source checkout; ``python -m benchmarks`` there).

Each subcommand registers itself with ``_add_<name>_parser(sub)``, which sets
``run=<function(args) -> exit status>`` as the parser default; :func:`main` dispatches.
Heavy imports happen inside the subcommand, so ``couchcore --help`` stays quick; a plain
``couchcore load`` command line is parsed without argparse (:func:`couchcore._load_cli.parse_args`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

# (redact_url from errors, where couchcore._urls has it from: _urls imports urllib.parse and
# ipaddress, which a load imports later, while the collector is paused: see main)
from .errors import CouchcoreError, redact_url

if TYPE_CHECKING:
    import argparse

__all__ = ["build_parser", "main"]


def _help_width() -> int:
    """The help text's width as argparse finds it (``COLUMNS``, else the terminal's, else
    80; less 2), without ``shutil``: argparse imports it (and with it ``bz2`` and ``lzma``,
    ~7M instructions) for every formatter it makes, one per ``add_argument``."""
    import os

    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns if columns > 0 else 80) - 2


def _formatter(prog: str) -> argparse.HelpFormatter:
    import argparse

    return argparse.HelpFormatter(prog, width=_help_width())


def _parser_class() -> type[argparse.ArgumentParser]:
    """``ArgumentParser`` with :func:`_formatter` as its default help formatter (the
    sub-parsers are of the class of their parent, so they have it too); made on first use:
    ``couchcore load`` with a plain command line does not import argparse."""
    global _Parser
    if _Parser is None:
        import argparse

        class Parser(argparse.ArgumentParser):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs.setdefault("formatter_class", _formatter)
                super().__init__(*args, **kwargs)

        Parser.__name__ = Parser.__qualname__ = "_Parser"
        _Parser = Parser
    return _Parser


_Parser: type[argparse.ArgumentParser] | None = None


def build_parser() -> argparse.ArgumentParser:
    """The ``couchcore`` argument parser with every subcommand (the docs' CLI reference reads it)."""
    return _build_parser()


def _build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """:func:`build_parser`; with ``only``, that subcommand alone (``load`` and ``dump`` parse
    their arguments with their own sub-parser, see :func:`_parse`: the others need not be built,
    nor their modules imported)."""
    parser = _parser_class()(prog="couchcore", description="couchcore command-line tools")
    # prog given: argparse would otherwise format this parser's usage to find it ("couchcore": the
    # parser has no positional yet), compiling four regexes (~2M instructions every load pays)
    sub = parser.add_subparsers(dest="command", required=True, prog=parser.prog)
    for name, add in (("load", _add_load_parser), ("dump", _add_dump_parser), ("bench", _add_bench_parser),
                      ("build-view", _add_build_view_parser)):
        if only is None or name == only:
            add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``couchcore`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status
    (130 after Ctrl-C: a subcommand says how far it got, and Ctrl-C while the command is
    still starting, e.g. importing what it needs, prints one line, no traceback)."""
    try:
        # no argv: the process's own command line (the console script and ``python -m couchcore.cli``
        # call main() so, and exit when it returns; see couchcore._load_cli.pause_gc.exits)
        exits = argv is None
        argv = sys.argv[1:] if argv is None else argv
        if argv[:1] == ["bench"]:  # the rest is the harness's, --help too (argparse.REMAINDER refused it)
            return _run_bench(argv[1:])
        if argv[:1] == ["load"]:
            import gc

            if gc.isenabled():  # paused while the load starts (see couchcore._load_cli.pause_gc)
                gc.disable()
                try:
                    from ._load_cli import pause_gc

                    pause_gc.paused = True
                    pause_gc.exits = exits
                    try:
                        return _main_load(argv)
                    finally:
                        pause_gc.paused = pause_gc.exits = False
                finally:
                    gc.enable()
            from ._load_cli import pause_gc

            pause_gc.exits = exits
            try:
                return _main_load(argv)
            finally:
                pause_gc.exits = False
        args = _parse(_build_parser(argv[0] if argv[:1] in (["load"], ["dump"]) else None), argv)
        if getattr(args, "run", None) is None and args.command == "dump":
            return _run_dump(args)
        return int(args.run(args))
    except KeyboardInterrupt:
        print("couchcore: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports it (and couchcore load after start-up)


def _main_load(argv: list[str]) -> int:
    from ._load_cli import parse_args

    args = parse_args(argv[1:])  # the plain case, as argparse parses it; else None: argparse
    if args is None:
        args = _parse(_build_parser("load"), argv)
    return int(args.run(args))


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed; ``load`` and ``dump`` take their options before or after the optional
    FILE (``couchcore load URL --create docs.jsonl``): argparse alone binds an optional
    positional with the first positional and then refuses a FILE given after an option."""
    import argparse

    if argv[:1] == ["load"] or argv[:1] == ["dump"]:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        command: argparse.ArgumentParser = sub.choices[argv[0]]
        args = command.parse_intermixed_args(argv[1:])
        args.command = argv[0]
        return args
    return parser.parse_args(argv)


# -- couchcore load -----------------------------------------------------------------------


def _add_load_parser(sub: Any) -> None:
    from ._load_cli import add_parser

    add_parser(sub)  # sets run=couchcore._load_cli.run


# -- couchcore dump -----------------------------------------------------------------------


def _add_dump_parser(sub: Any) -> None:
    p = sub.add_parser(
        "dump", help="write a database out as JSON lines (every revision an exact copy needs)",
        description="Write every document of a database as JSON Lines, one document revision a line: each live "
                    "document's winning revision (with _rev and its _revisions history), then every other leaf "
                    "revision -- conflicts and deleted conflicts -- and the revisions of deleted documents "
                    "(tombstones), each with _revisions. Design documents are included; _local documents, the "
                    "_security object and _revs_limit are not. "
                    "'couchcore dump A --attachments | couchcore load B --new-edits-false --create' copies A's "
                    "documents exactly: same ids, revisions, histories, conflicts, deleted documents, bodies and "
                    "attachments. The database's creation options are not copied: --create makes a plain "
                    "database (not partitioned, the server's default q and n), so to copy a partitioned database "
                    "create B first (PUT /B?partitioned=true, or server.create(name, partitioned=True)) and load "
                    "without --create.")
    p.add_argument("db_url", help="database URL, e.g. http://admin:pw@127.0.0.1:5984/mydb")
    p.add_argument("file", nargs="?", default="-", help="output file (default: standard output)")
    p.add_argument("--attachments", action="store_true",
                   help="include attachment content inline (base64); without it attachments are stubs, which a "
                        "new database cannot take: use it to copy a database that has attachments")
    p.add_argument("--parallel", type=int, default=1, metavar="N",
                   help="read N id ranges at once, plus one _changes reader (1); the output holds the same lines: "
                        "live documents in id order, then conflicts and tombstones in _changes order (which a "
                        "database of several shards may vary from one read to the next)")
    p.add_argument("--no-history", dest="history", action="store_false",
                   help="write live documents' winning revisions without _revisions (faster: the server reads each once; the "
                        "copy then knows only each winner's own revision id, conflicts still come out whole)")
    p.add_argument("--no-deleted", dest="deleted", action="store_false",
                   help="leave deleted documents (tombstones) out (written by default: replication carries them)")
    p.add_argument("--backend", default=None, choices=["pycurl", "urllib3"],
                   help="HTTP backend (default: pycurl when installed, urllib3 otherwise)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=_run_dump)


def _dump_backend(name: str | None) -> str:
    if name is not None:
        return name
    try:
        import pycurl  # noqa: F401
    except ImportError:
        return "urllib3"
    return "pycurl"


def _env_auth(url: str) -> tuple[str, str] | None:
    """``(COUCHDB_USER, COUCHDB_PASSWORD)`` when the URL carries no credentials of its own."""
    import os

    from ._urls import split_credentials

    user = os.environ.get("COUCHDB_USER")
    if not user or split_credentials(url)[1] is not None:
        return None
    return user, os.environ.get("COUCHDB_PASSWORD", "")


def db_url_parts(url: str) -> tuple[str, str]:
    """``(server_url, db_name)`` of the database URL a command was given (``load``, ``dump``):
    the server URL keeps the credentials and any path prefix. Raises
    :class:`~couchcore.errors.InvalidInput` with one line that never holds the password: not an
    http(s) URL, a query or fragment, an unencoded ``?``/``#``/``@`` in the password, no database
    in the path, a document's URL, an invalid database name."""
    from ._urls import split_database_url
    from .protocol.paths import validate_db_name

    server_url, name = split_database_url(url)
    validate_db_name(name)
    return server_url, name


def _run_dump(args: argparse.Namespace) -> int:
    """Exit 0 when the whole database was written, 2 when the dump could not start (bad URL,
    unreachable server, wrong credentials, missing database, unwritable file: nothing was
    written), 1 when it failed part-way (the output holds whole lines only)."""
    import contextlib

    from ._sync import Database
    from .dump import dump

    if args.parallel < 1:
        print("couchcore dump: --parallel must be at least 1", file=sys.stderr)
        return 2
    from .errors import InvalidInput

    try:
        db_url_parts(args.db_url)
    except InvalidInput as exc:
        print(f"couchcore dump: {exc}", file=sys.stderr)
        return 2
    try:
        db = Database(args.db_url, auth=_env_auth(args.db_url), backend=_dump_backend(args.backend))
        info = db.info()  # fails here, before any output
        # lines to come: one per live and per deleted document (conflicting revisions come on top)
        doc_count = int(info.get("doc_count") or 0) + (int(info.get("doc_del_count") or 0) if args.deleted else 0)
        out = sys.stdout.buffer if args.file == "-" else open(args.file, "wb")
    except (CouchcoreError, OSError) as exc:
        print(f"couchcore dump: {redact_url(str(exc))}", file=sys.stderr)
        return 2
    bar = None
    if not args.quiet:
        try:
            from tqdm import tqdm

            bar = tqdm(total=doc_count, unit="lines", desc=f"dumping {db.name}", file=sys.stderr)
        except ImportError:
            bar = None
    try:
        with out if out is not sys.stdout.buffer else contextlib.nullcontext():
            report = dump(db, out, attachments=args.attachments, parallel=args.parallel,
                          progress=bar.update if bar is not None else None, history=args.history,
                          deleted=args.deleted)
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly
        if bar is not None:
            bar.close()
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    except (CouchcoreError, OSError) as exc:
        if bar is not None:
            bar.close()
        print(f"couchcore dump: incomplete: {redact_url(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        where = "standard output" if args.file == "-" else args.file
        print(f"couchcore dump: interrupted; {where} holds an incomplete dump", file=sys.stderr)
        return 130
    if bar is not None:
        bar.close()
    if not args.quiet:
        print(report, file=sys.stderr)
    return 0


# -- couchcore build-view ------------------------------------------------------------------


def _add_build_view_parser(sub: Any) -> None:
    from ._build_view_cli import add_parser

    add_parser(sub)  # sets run=couchcore._build_view_cli.run


# -- couchcore bench -----------------------------------------------------------------------


def _add_bench_parser(sub: Any) -> None:
    import argparse

    p = sub.add_parser("bench", help="the benchmark harness (needs the source checkout): "
                       "couchcore bench run [--quick] [--url URL] ...", add_help=False)
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for 'python -m benchmarks'")
    p.set_defaults(run=lambda args: _run_bench(args.bench_args))


def _run_bench(bench_args: list[str]) -> int:
    """Run the harness in ``benchmarks/`` of the source checkout this couchcore comes from."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    if not (root / "benchmarks" / "harness.py").is_file():
        print("couchcore bench: the benchmark harness lives in the source checkout (benchmarks/), which this "
              f"installation does not have ({root}); clone the repository and run 'couchcore bench' or "
              "'python -m benchmarks' from an editable install there", file=sys.stderr)
        return 2
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks.harness import main as bench_main

    return int(bench_main(bench_args, prog="couchcore bench"))


if __name__ == "__main__":
    sys.exit(main())
