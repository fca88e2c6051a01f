"""``couchcore load DB_URL [FILE|-]``: bulk-load JSON Lines, a JSON array or CSV into a database.

The input is streamed (memory stays flat whatever its size). JSON text goes into the
request bodies as it is (validated, ``_id`` added when missing); CSV rows (header row
first) become documents of string values. Exit status: 0 every document was written
(or skipped with ``--skip-existing``), 1 some were rejected (listed in ``--rejects``),
2 the load could not start (bad URL, unreachable server, rejected credentials, missing
database without ``--create``, unreadable input or unwritable rejects/checkpoint file),
detected before any input is read; 130 when stopped with Ctrl-C (or SIGTERM): the
batches in flight are finished, the summary (and with ``--resume`` the checkpoint) is
written; a second Ctrl-C stops at once (the checkpoint is still consistent).

With ``--resume`` the checkpoint holds the contiguous prefix of the input that is settled
(written, skipped or in the rejects file, which is flushed first); a restarted load skips
that prefix, sends the rest, and reconciles documents that may have been sent before. A
batch given up on after the retries (rejected with its last error, or as ``unknown_outcome``)
is not settled for the checkpoint: running the same command again sends it again (a
document that was written counts as written, in every mode), so a network incident is
settled by re-running until exit 0. On resuming, the rejects file drops the records of
input lines after the checkpoint's (this run settles them again). A resumed load whose
checkpoint recorded rejections (settled refusals: conflicts, invalid documents) exits 1 and
says so, also when it has nothing left to send: those documents are not in the database.
"""

from __future__ import annotations

import io
import os
import re
import stat
import sys
from typing import IO, TYPE_CHECKING, Any, Iterator

from . import codec

if TYPE_CHECKING:  # (argparse is imported by add_parser: a load parsed by parse_args below does without it)
    import argparse

__all__ = ["add_parser", "parse_args", "run", "jsonl_records", "json_array_records", "csv_records", "detect_format"]

BOM = b"\xef\xbb\xbf"
EXIT_OK, EXIT_REJECTED, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 130


class Fatal(Exception):
    """The load cannot run: one line for the user (never with a password in it)."""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``load`` on an ``add_subparsers()`` object; returns the sub-parser (a plain
    command line is parsed by :func:`parse_args` without it: keep the two alike)."""
    p: argparse.ArgumentParser = sub.add_parser(
        "load", help="bulk-load JSON Lines, a JSON array or CSV into a database",
        description="Load documents into DB_URL from FILE (or standard input), streamed. Exit status: 0 all "
                    "written, 1 some rejected, 2 could not start (checked before reading input), 130 interrupted.")
    p.add_argument("db_url", help="database URL, e.g. http://admin:pw@127.0.0.1:5984/mydb "
                                  "(or credentials from COUCHDB_USER/COUCHDB_PASSWORD)")
    p.add_argument("file", nargs="?", default="-", help="input file, '-' for standard input (the default)")
    p.add_argument("--format", choices=["auto", "jsonl", "json", "csv"], default="auto",
                   help="input format (auto: .csv is CSV, otherwise '[' starts a JSON array, else JSON Lines)")
    p.add_argument("--batch-size", type=int, default=1000, metavar="N", help="documents per _bulk_docs request (1000)")
    p.add_argument("--concurrency", type=int, default=4, metavar="N", help="requests in flight per node (4)")
    p.add_argument("--create", action="store_true", help="create the database if it is missing (a plain one: not partitioned, the server's default q and n; create any other kind first)")
    p.add_argument("--rejects", metavar="FILE",
                   help="write rejected documents here as JSON Lines (one line each, whatever the input's "
                        "layout, with a _load_error field: line, error, reason); the file can be loaded again "
                        "as it is")
    p.add_argument("--resume", metavar="FILE",
                   help="checkpoint file: records how far the input is confirmed; a restarted load with the "
                        "same file sends nothing already confirmed (an input file whose first 64 KiB are not "
                        "the ones the checkpoint was made with is refused). Documents given up on after the "
                        "retries (a network incident: rejected, outcome unknown) are not confirmed: the same "
                        "command run again sends them again (one that was written counts as written); it exits "
                        "0 only when the whole load, earlier runs included, rejected nothing")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--upsert", action="store_true", help="overwrite current revisions (default: create only)")
    mode.add_argument("--new-edits-false", action="store_true",
                      help="store the documents' revisions as they are (new_edits=false; for dump | load)")
    p.add_argument("--skip-existing", action="store_true",
                   help="a document that already exists with the same content is skipped, not rejected")
    p.add_argument("--id-field", metavar="NAME", help="a document without _id takes its id from field NAME (rejected without it)")
    p.add_argument("--node", action="append", default=[], metavar="URL",
                   help="another node of the same cluster (repeatable); batches are spread over all nodes")
    p.add_argument("--retries", type=int, default=5, metavar="N",
                   help="send a batch again at most N times after 429, 5xx or a broken connection (5)")
    p.add_argument("--backend", choices=["pycurl", "urllib3"], default=None,
                   help="HTTP backend (default: pycurl when installed, urllib3 otherwise)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, start line or summary")
    p.set_defaults(run=run)
    return p


#: ``couchcore load``'s options as :func:`add_parser` declares them (tests/unit/test_load_args.py
#: holds the two to each other): the flags (``store_true``), then the options taking a value:
#: option -> (dest, int or None, choices or None)
_FLAGS = {"--create": "create", "--upsert": "upsert", "--new-edits-false": "new_edits_false",
          "--skip-existing": "skip_existing", "--quiet": "quiet"}
_VALUED: dict[str, tuple[str, Any, tuple[str, ...] | None]] = {
    "--format": ("format", None, ("auto", "jsonl", "json", "csv")),
    "--batch-size": ("batch_size", int, None),
    "--concurrency": ("concurrency", int, None),
    "--rejects": ("rejects", None, None),
    "--resume": ("resume", None, None),
    "--id-field": ("id_field", None, None),
    "--node": ("node", None, None),  # (append)
    "--retries": ("retries", int, None),
    "--backend": ("backend", None, ("pycurl", "urllib3")),
}
_DEFAULTS: dict[str, Any] = {"file": "-", "format": "auto", "batch_size": 1000, "concurrency": 4, "create": False,
                             "rejects": None, "resume": None, "upsert": False, "new_edits_false": False,
                             "skip_existing": False, "id_field": None, "node": None, "retries": 5, "backend": None,
                             "quiet": False}


def parse_args(argv: list[str]) -> Any:
    """``couchcore load``'s arguments (``argv`` after ``load``) as the sub-parser of
    :func:`add_parser` parses them (``parse_intermixed_args``: the same attributes and values,
    ``command="load"``, ``run=run``), without argparse (its import, the parser's construction
    and the usage text ``parse_intermixed_args`` formats cost ~25M instructions, ~10% of the
    start-up of a load: bulk-r25.md), or ``None`` for anything but the plain case: options
    spelled in full (``--opt VALUE`` or ``--opt=VALUE``), one or two positionals, valid values.
    ``--help``, an abbreviation, a value that is empty or starts with ``-``, ``--``, a
    bad value or any other error is left to argparse (``None``), which says what it says."""
    values: dict[str, Any] = dict(_DEFAULTS, node=[])
    positionals: list[str] = []
    i, n = 0, len(argv)
    while i < n:
        token = argv[i]
        i += 1
        if not token.startswith("-") or token == "-":
            if not token:
                return None
            positionals.append(token)
            continue
        option, eq, value = token.partition("=")
        if option in _FLAGS and not eq:
            values[_FLAGS[option]] = True
            continue
        spec = _VALUED.get(option)
        if spec is None:
            return None
        if not eq:
            if i == n:
                return None
            value = argv[i]
            i += 1
        if not value or value.startswith("-"):
            return None
        dest, kind, choices = spec
        if kind is not None:
            try:
                value = kind(value)
            except ValueError:
                return None
        if choices is not None and value not in choices:
            return None
        if dest == "node":
            values["node"].append(value)
        else:
            values[dest] = value
    if not 1 <= len(positionals) <= 2 or (values["upsert"] and values["new_edits_false"]):
        return None
    values["db_url"] = positionals[0]
    if len(positionals) == 2:
        values["file"] = positionals[1]
    from types import SimpleNamespace

    return SimpleNamespace(**values, run=run, command="load")


# -- input ----------------------------------------------------------------------------------


def jsonl_records(f: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(line_number, line)`` for every line of a binary stream (the loader skips blank ones)."""
    peek = getattr(f, "peek", None)
    if peek is not None and peek(3)[:3] == BOM:
        f.read(3)
    return enumerate(f, 1)


_SPACE = rb"[\s,]*"  # compiled by json_array_records (only a JSON array needs them: start-up cost)
_WHITE = rb"\s*"


class InputError(ValueError):
    """Input that is no document (a bad CSV row, an unclosed JSON array); ``text`` is the input."""

    def __init__(self, message: str, text: str = "") -> None:
        super().__init__(message)
        self.text = text


def json_array_records(f: IO[bytes], chunk: int = 1 << 20) -> Iterator[tuple[int, Any]]:
    """``(line_number, element_text)`` for every element of a JSON array, streamed.

    Elements are cut out of the text, not decoded (the loader validates them); the line
    is where the element starts. Input that is no array, an array that is not closed, or
    text after the array, yields an :class:`InputError` in place of an element; an element
    cut off by the end of the input is yielded as it is (the loader rejects it as malformed).
    """
    buf = f.read(max(chunk, 3))
    eof = not buf
    if buf.startswith(BOM):
        buf = buf[3:]
    pos = 0
    counted = 0  # buf[:counted] is accounted for in `line`
    line = 1

    def line_at(p: int) -> int:
        nonlocal line, counted
        line += buf.count(b"\n", counted, p)
        counted = p
        return line

    def refill(keep: int, want: int) -> None:
        """Drop ``buf[:keep]`` (counting its lines) and read at least ``want`` more bytes."""
        nonlocal buf, pos, counted, eof
        line_at(keep)
        more = f.read(max(chunk, want))
        eof = not more
        buf = buf[keep:] + more
        pos -= keep
        counted = 0

    space, white = re.compile(_SPACE), re.compile(_WHITE)
    started = False
    while True:
        pos = (space if started else white).match(buf, pos).end()  # type: ignore[union-attr]
        if pos >= len(buf):
            if eof:
                if started:
                    yield line_at(pos), InputError("the JSON array is not closed")
                return  # (empty input: no records)
            refill(pos, 0)
            continue
        if not started:
            if buf[pos] != 0x5B:  # [
                yield line_at(pos), InputError("the input is not a JSON array",
                                               buf[pos:pos + 80].decode("utf-8", "replace"))
                return
            started = True
            pos += 1
            continue
        if buf[pos] == 0x5D:  # ]: only white space may follow (not a second array, not more documents)
            pos += 1
            while True:
                pos = white.match(buf, pos).end()  # type: ignore[union-attr]
                if pos < len(buf):
                    yield line_at(pos), InputError("text after the JSON array's closing ']' (one array per input)",
                                                   buf[pos:pos + 80].decode("utf-8", "replace"))
                    return
                if eof:
                    return
                refill(pos, 0)
        end = codec.value_end(buf, pos, eof)
        if end < 0:  # the element goes on beyond what is read
            if eof:
                yield line_at(pos), buf[pos:]
                return
            refill(pos, 2 * (len(buf) - pos))  # growing reads: a huge element costs linear time
            continue
        yield line_at(pos), buf[pos:end]
        pos = end


def csv_records(f: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """``(line_number, document)`` for every row of CSV with a header row: the values
    are strings (an empty ``_id`` or ``_rev`` is left out); a row with a different
    number of fields than the header, different values in columns of the same name, or
    quoting that is not valid CSV, yields an :class:`InputError`."""
    import csv

    # a field may be as long as a document (csv's default limit, 131,072 characters, raised
    # _csv.Error out of the load); 2**31 - 1 fits a C long everywhere
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    # bytes that are not UTF-8 become lone surrogates, found per row below (a strict decoder
    # would fail the whole load at the chunk holding them)
    text = io.TextIOWrapper(f, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        yield from _csv_rows(_Lines(text))
    finally:
        text.detach()  # a collected wrapper closes what it wraps: the input stays the caller's


class _Lines:
    """The input's lines for csv.reader, each kept (``taken``) until the row it belongs to
    is read, so that a row that is not valid CSV can be rejected with its text and the
    lines after its first one read again (see :func:`_csv_rows`)."""

    def __init__(self, text: Iterator[str]) -> None:
        self._text = text
        self._again: list[str] = []  # lines to read again, the next one last
        self.taken: list[str] = []  # the lines of the row being read

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        line = self._again.pop() if self._again else next(self._text)
        self.taken.append(line)
        return line

    def again(self, lines: list[str]) -> None:
        self._again.extend(reversed(lines))


def _shown(line: str) -> str:
    """A line of CSV input as a rejects record shows it (bytes that were not UTF-8: U+FFFD)."""
    return line.rstrip("\r\n").encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _csv_rows(lines: _Lines) -> Iterator[tuple[int, Any]]:
    import csv

    # strict: a quote left open, or text after a closing quote, is an error for that row (lenient
    # csv glued '"x"y' into 'xy', and a quote left open swallowed the rest of the input into one field)
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield 1, InputError(f"the CSV header is not valid CSV: {exc}", _shown(lines.taken[0]))
        return
    # a column named twice (say Excel's trailing empty columns, "a,b,,"): a row is one dict, so a
    # row holding different values under one name is rejected, not silently cut to the last value
    twice = {i: header.index(name) for i, name in enumerate(header) if header.index(name) != i}
    width = len(header)
    done = len(lines.taken)  # the lines read for good
    lines.taken.clear()
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # the row's first line is rejected with its text, the lines after it are read again: a
            # quote left open took them in, the rows there are loaded (or rejected), never lost
            first, *rest = lines.taken
            lines.taken.clear()
            lines.again(rest)
            done += 1
            yield done, InputError(f"not valid CSV: {exc}", _shown(first))
            continue
        start = done + 1
        done += len(lines.taken)
        lines.taken.clear()
        if not row:
            continue
        problem = None
        if len(row) != width:
            problem = f"CSV row has {len(row)} fields, the header has {width}"
        elif not _utf8(row):
            problem = "CSV row is not valid UTF-8"
        elif twice and any(row[i] != row[j] for i, j in twice.items()):
            named = next(header[i] for i, j in twice.items() if row[i] != row[j])
            problem = (f"the CSV header names column {named!r} more than once and this row holds different "
                       f"values in them")
        if problem is not None:
            out = io.StringIO()
            csv.writer(out).writerow(row)
            shown = out.getvalue().rstrip("\r\n").encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            yield start, InputError(problem, shown)
            continue
        doc = dict(zip(header, row))
        for meta in ("_id", "_rev"):
            if doc.get(meta) == "":
                del doc[meta]
        yield start, doc


def _utf8(row: list[str]) -> bool:
    """Whether no field holds a byte that was not UTF-8 (a lone surrogate)."""
    try:
        "".join(row).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def detect_format(f: IO[bytes], name: str, fmt: str) -> str:
    """``jsonl``, ``json`` or ``csv``: as asked, by extension, or by the first byte."""
    if fmt != "auto":
        return fmt
    lower = name.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    head = f.peek(4096)[:4096] if hasattr(f, "peek") else b""
    head = head[3:] if head.startswith(BOM) else head
    first = head.lstrip()[:1]
    if first == b"[":
        return "json"
    if first in (b"{", b""):
        return "jsonl"
    return "csv"


def records(f: IO[bytes], fmt: str) -> Iterator[Any]:
    if fmt == "jsonl":  # scanned a read chunk at a time by the loader (couchcore._scan)
        from .bulk import JsonLines

        return JsonLines(f)  # type: ignore[return-value]
    if fmt == "json":
        return json_array_records(f)
    return csv_records(f)


# -- pre-flight -----------------------------------------------------------------------------


def _split_db_url(url: str) -> tuple[str, str]:
    """``(server_url, db_name)``; :class:`Fatal` when the URL names no database (:func:`couchcore.cli.db_url_parts`)."""
    from .cli import db_url_parts
    from .errors import InvalidInput

    try:
        return db_url_parts(url)
    except InvalidInput as exc:
        raise Fatal(str(exc)) from None


def _node_base(url: str, name: str) -> str:
    """A ``--node`` URL as a server URL: a trailing ``/DBNAME`` of the loaded database is
    dropped (the node given the way the database URL is written)."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return url  # Server() says what is wrong with it
    base, _, last = parts.path.rstrip("/").rpartition("/")
    if unquote(last) != name:
        return url
    return urlunsplit((parts.scheme, parts.netloc, base, parts.query, parts.fragment))


def _env_auth(url: str) -> tuple[str, str] | None:
    """``(COUCHDB_USER, COUCHDB_PASSWORD)`` when the URL carries no user of its own."""
    from ._urls import split_credentials

    user = os.environ.get("COUCHDB_USER")
    if not user or split_credentials(url).username is not None:
        return None
    return user, os.environ.get("COUCHDB_PASSWORD", "")


def _default_backend() -> str:
    try:
        import pycurl  # noqa: F401
    except ImportError:
        return "urllib3"
    return "pycurl"


def preflight(server: Any, name: str, create: bool) -> bool:
    """Check the server answers, accepts the credentials and has database ``name``
    (creating it with ``create``); :class:`Fatal` otherwise. True when it created it."""
    from .errors import Forbidden, HTTPError, PreconditionFailed, ResponseError, TransportError, Unauthorized

    user = server.credentials.username if server.credentials else None

    def refused(exc: HTTPError, what: str) -> Fatal:
        # a 401 after ``GET /`` took the credentials is a right the user lacks (CouchDB answers
        # 401 "You are not a server admin." to a member creating a database), not a bad password
        if isinstance(exc, Unauthorized) and (user is None or what == "connect"):
            if user is None:
                return Fatal(f"{server.url} requires a login: put user:password in the URL or set "
                             f"COUCHDB_USER/COUCHDB_PASSWORD")
            return Fatal(f"{server.url} rejected the credentials of user {user!r}")
        if isinstance(exc, (Forbidden, Unauthorized)):
            return Fatal(f"user {user or '(anonymous)'!r} may not {what} on {server.url}: {exc.reason or exc.error}")
        return Fatal(f"cannot {what}: {exc}")

    try:
        server.info()
    except TransportError as exc:
        raise Fatal(f"cannot reach {server.url}: {exc}") from None
    except HTTPError as exc:
        raise refused(exc, "connect") from None
    except ResponseError as exc:  # no CouchDB welcome there: the URL names a database or a document
        raise Fatal(f"{server.url} is not a CouchDB server's URL ({exc})") from None
    try:
        exists = server.exists(name)
    except HTTPError as exc:
        raise refused(exc, f"open database {name!r}") from None
    except ResponseError as exc:  # HEAD answered a document: the URL names a document, not a database
        raise Fatal(str(exc)) from None
    except TransportError as exc:
        raise Fatal(f"cannot reach {server.url}: {exc}") from None
    if exists:
        return False
    if not create:
        raise Fatal(f"database {name!r} does not exist on {server.url} (use --create to create it)")
    try:
        server.create(name)
    except PreconditionFailed:
        return False  # created meanwhile
    except HTTPError as exc:
        raise refused(exc, f"create database {name!r}") from None
    return True


# -- progress -------------------------------------------------------------------------------


class _Progress:
    """A tqdm bar: bytes read with percent and time left when the input size is known,
    documents otherwise; docs/s either way (written and skipped documents per second, as in
    the final summary: rejected documents are counted apart)."""

    def __init__(self, name: str, fd: int | None, size: int | None) -> None:
        from tqdm import tqdm

        self.fd = fd
        self.size = size
        if size:
            self.bar = tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=f"loading {name}",
                            file=sys.stderr, dynamic_ncols=True,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                       "[{elapsed}<{remaining}{postfix}]")
        else:
            self.bar = tqdm(unit=" docs", desc=f"loading {name}", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, report: Any) -> None:
        # written and skipped documents, as the summary's docs/s counts them; rejected ones apart
        done = report.written + report.skipped
        rejected = f"{report.rejected:,} rejected" if report.rejected else ""
        if self.size:
            try:
                pos = os.lseek(self.fd, 0, os.SEEK_CUR)  # type: ignore[arg-type]
            except OSError:
                pos = int(self.bar.n)
            elapsed = self.bar.format_dict.get("elapsed") or 0
            rate = done / elapsed if elapsed else 0
            self.bar.set_postfix_str(f"{done:,} docs, {rate:,.0f} docs/s" + (", " + rejected if rejected else ""),
                                     refresh=False)
            self.bar.update(max(0, min(pos, self.size) - self.bar.n))
        else:
            if rejected:
                self.bar.set_postfix_str(rejected, refresh=False)
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


# -- the command ----------------------------------------------------------------------------


class pause_gc:
    """``paused``: True while :func:`couchcore.cli.main` runs a load with the cyclic garbage
    collector disabled from its start (the imports, the parse and the pre-flight make objects that
    live to the end, ~35 collections of them cost ~10M instructions: bulk-r25.md); :func:`run`
    enables it (after ``gc.freeze()``) just before the documents are read.

    ``exits``: True while :func:`couchcore.cli.main` runs the process's own command line
    (called without ``argv``, as the console script and ``python -m couchcore.cli`` do: the
    process exits when it returns). The objects frozen for the load are then thawed at the
    next collection (:func:`_thaw_at_next_collection`), not when the load ends, and not by the
    collections of the process's exit, which then do not visit the ~21,000 start-up objects
    again (~21M instructions, ~8% of a small load's start-up: bulk-r26.md); a program
    that goes on after ``main()`` has them thawed before its next collection starts."""

    paused = False
    exits = False


#: the ``pending`` list of the last :func:`_thaw_at_next_collection` (empty once it fired)
_armed: list[list[Any]] = []


def _still_armed() -> bool:
    """Whether the last load's objects are still frozen waiting for the next collection, with
    no ``gc.freeze()`` of the caller's since (its probe still among the youngest objects):
    a load started now takes them over (it thaws them with its own)."""
    import gc

    pending = _armed[0] if _armed else None
    if not pending:
        return False
    probe = pending[0]
    taken = any(obj is probe for obj in gc.get_objects(0))
    pending.clear()  # the earlier callback does nothing now, whatever the answer
    return taken


def _thaw_at_next_collection() -> None:
    """``gc.unfreeze()`` when the next collection starts (a ``gc.callbacks`` entry) -- not the
    full collection the interpreter's exit starts with (``sys.is_finalizing()``: the process
    ends; the exit's later collections run no callbacks) -- unless
    the caller froze objects itself by then (``gc.freeze()``: everything stays frozen, as when
    a caller had frozen objects before the load; told by a probe, a list made now, that is no
    longer among the youngest generation's objects then). The callback leaves ``gc.callbacks``
    at the end of a collection where it is the last entry (removing it from the middle while
    the collector walks the list would skip the entry after it), a no-op until then."""
    import gc

    # the youngest generation collected now: ~700 allocations before the next automatic
    # collection (one right after the load, with the exit's few allocations, would thaw at once)
    gc.collect(0)
    probe: list[Any] = []  # tracked, in the youngest generation until a collection or a freeze moves it
    pending = [probe]
    _armed[:] = [pending]

    def thaw(phase: str, info: dict[str, int]) -> None:
        if pending and not sys.is_finalizing():  # (the exit's full collection: the process ends)
            pending.clear()
            if any(obj is probe for obj in gc.get_objects(0)):
                gc.unfreeze()
        if phase == "stop" and gc.callbacks and gc.callbacks[-1] is thaw:
            gc.callbacks.pop()

    gc.callbacks.append(thaw)


def run(args: argparse.Namespace) -> int:
    """Run ``couchcore load`` with parsed arguments; returns the exit status."""
    try:
        return _run(args)
    except Fatal as exc:
        from ._urls import redact_url

        print(f"couchcore load: {redact_url(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:  # during the pre-flight
        print("couchcore load: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


_HEAD = 65536  # bytes of the input file a checkpoint fingerprints


def _check_head(checkpoint: Any, fd: int, size: int) -> None:
    """Fingerprint the input file's first bytes in a new checkpoint; on a resume, refuse an
    input whose first bytes are not the ones the checkpoint was made with (a file rewritten
    since: its first records would be skipped as confirmed without having been loaded)."""
    import hashlib

    if checkpoint.resumed and checkpoint.head:
        n_text, _, digest = checkpoint.head.partition(":")
        n = int(n_text) if n_text.isdigit() else 0
        if size < n or hashlib.sha256(os.pread(fd, n, 0)).hexdigest() != digest:
            raise Fatal(f"{checkpoint.path}: the input's first {n:,} bytes are not the ones this checkpoint "
                        "was made with (the file was changed): give the original input, or another --resume file")
    elif not checkpoint.resumed:
        n = min(size, _HEAD)
        checkpoint.head = f"{n}:{hashlib.sha256(os.pread(fd, n, 0)).hexdigest()}"


def _run(args: argparse.Namespace) -> int:
    from .bulk import ERROR_FIELD, Checkpoint, Loader, Rejected, _rerun_advice
    from .errors import CouchcoreError, InvalidInput
    from ._sync import Server
    from ._urls import redact_url

    for flag in ("batch_size", "concurrency"):
        if getattr(args, flag) < 1:
            raise Fatal(f"--{flag.replace('_', '-')} must be at least 1")
    if args.retries < 0:
        raise Fatal("--retries must not be negative")
    server_url, name = _split_db_url(args.db_url)
    backend = args.backend or _default_backend()
    auth = _env_auth(args.db_url)
    try:
        server = Server(server_url, auth=auth, backend=backend)
        nodes = []
        for node_url in args.node:
            node_auth = auth if auth is not None else None
            from ._urls import split_credentials

            if split_credentials(node_url).username is None and server.credentials is not None:
                node_auth = (server.credentials.username, server.credentials.password)
            nodes.append(Server(_node_base(node_url, name), auth=node_auth, backend=backend))
    except CouchcoreError as exc:
        raise Fatal(str(exc)) from None
    db_url = redact_url(server.url + "/" + name)

    # the input, the rejects file and the checkpoint are opened before anything is read
    if args.file == "-":
        source: IO[bytes] = sys.stdin.buffer
        input_name = "-"
    else:
        try:
            source = open(args.file, "rb")
        except OSError as exc:
            raise Fatal(f"cannot read {args.file}: {exc.strerror or exc}") from None
        input_name = os.path.abspath(args.file)
    size = None
    fd = None
    try:
        fd = source.fileno()
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise Fatal(f"cannot read {args.file}: it is a directory")
        if stat.S_ISREG(st.st_mode):
            size = st.st_size
    except (OSError, io.UnsupportedOperation):
        fd = None
    for flag, path in (("--resume", args.resume), ("--rejects", args.rejects)):
        if path and fd is not None and _same_file(path, fd):
            raise Fatal(f"{flag} {path} is the input file (it would be overwritten): give another file")
    if args.resume and args.rejects and os.path.realpath(args.resume) == os.path.realpath(args.rejects):
        # the checkpoint is replaced by renaming a new file over it: the rejects would be lost
        raise Fatal(f"--resume and --rejects name the same file ({args.rejects}): give two files")
    checkpoint = None
    if args.resume:
        try:
            checkpoint = Checkpoint.open(args.resume, database=db_url, input=input_name)
            if size is not None and fd is not None:
                _check_head(checkpoint, fd, size)
            checkpoint.save(force=True)  # writable?
        except InvalidInput as exc:
            raise Fatal(str(exc)) from None
        except OSError as exc:
            raise Fatal(f"cannot write checkpoint {args.resume}: {exc.strerror or exc}") from None
    was_complete = checkpoint is not None and checkpoint.resumed and checkpoint.complete
    rejects_file = None
    if args.rejects:
        try:
            rejects_file = open(args.rejects, "ab")  # emptied once the load can start (below)
        except OSError as exc:
            raise Fatal(f"cannot write {args.rejects}: {exc.strerror or exc}") from None

    created = False
    for node in [server, *nodes]:
        try:
            created = preflight(node, name, args.create and node is server) or created
        except Fatal as exc:
            if node is server:
                raise
            if created:  # the load cannot start: the (empty) database it created goes again
                try:
                    server.delete(name)
                except CouchcoreError:
                    pass
            raise Fatal(f"--node {node.url}: {exc} (--node takes another node of the same cluster, "
                        f"http://host:port)".replace(" (use --create to create it)", "")) from None
        node.close()  # the load starts on fresh connections (see couchcore.protocol.bulk)
    db = server._database(name)
    if rejects_file is not None and not (checkpoint is not None and checkpoint.resumed):
        rejects_file.truncate(0)  # a fresh load's rejects file starts empty
    elif rejects_file is not None and checkpoint is not None:
        # resuming: the records of lines after the checkpoint's are settled again by this run
        # (given up on earlier, or rejected after the last checkpoint): not listed twice
        try:
            rejects_file.close()
            _prune_rejects(args.rejects, checkpoint.line)
            rejects_file = open(args.rejects, "ab")
        except OSError as exc:
            raise Fatal(f"cannot write {args.rejects}: {exc.strerror or exc}") from None

    if not args.quiet:
        where = db_url + (f" (+{len(nodes)} node{'s' if len(nodes) > 1 else ''})" if nodes else "")
        resumed = ""
        if checkpoint is not None and checkpoint.resumed:
            resumed = f", resuming after record {checkpoint.records:,} (line {checkpoint.line:,})"
        print(f"couchcore load: {where} with the {backend} backend, batches of {args.batch_size:,}, "
              f"{args.concurrency} in flight{resumed}", file=sys.stderr)

    shown: list[Rejected] = []
    revised = [0]  # conflicts of documents that carry a _rev (couchcore dump's lines), without --new-edits-false

    def on_reject(rejected: Rejected) -> None:
        if rejects_file is not None:
            rejects_file.write(rejected.record() + b"\n")
        if len(shown) < 10:
            shown.append(rejected)
        if rejected.error == "conflict" and not args.new_edits_false and _carries_rev(rejected.doc):
            revised[0] += 1

    if checkpoint is not None and rejects_file is not None:
        checkpoint.before_save = rejects_file.flush  # a confirmed reject is on disk first

    fmt = detect_format(source, args.file, args.format)
    progress = None
    if not args.quiet:
        try:
            progress = _Progress(name, fd, size)
        except ImportError:
            progress = None
    try:
        loader = Loader(db, records(source, fmt), args.batch_size, args.concurrency, upsert=args.upsert,
                        new_edits=not args.new_edits_false, skip_existing=args.skip_existing,
                        id_field=args.id_field, retries=args.retries, nodes=nodes, checkpoint=checkpoint,
                        on_reject=on_reject, progress=progress)
    except InvalidInput as exc:
        raise Fatal(str(exc)) from None
    # this command's options
    loader.rerun_advice = _rerun_advice(args.upsert, not args.new_edits_false, flags=True, resumable=bool(args.resume))

    presses = []

    def on_signal(signum: int, frame: Any) -> None:
        presses.append(signum)
        if len(presses) > 1:
            raise KeyboardInterrupt
        loader.stop()
        if not args.quiet:
            print("\ncouchcore load: stopping after the batches in flight (Ctrl-C again to stop at once)",
                  file=sys.stderr)

    previous = {}
    if _main_thread():
        # _signal: the C module signal.py wraps, which converts the signals and handlers to enums
        # (3 IntEnum conversions, ~3.4M instructions at start-up); the handlers get the same ints
        import _signal  # type: ignore[import-not-found]

        for sig in (_signal.SIGINT, _signal.SIGTERM):
            previous[sig] = _signal.signal(sig, on_signal)
    interrupted = False
    import gc

    # the objects of start-up live to the end: collections need not visit them again (undone at
    # the end unless the caller froze objects itself: cli.main may run inside a longer program;
    # when main() runs the process's command line, at its next collection: see pause_gc)
    thaw = gc.get_freeze_count() == 0 or _still_armed()
    gc.freeze()
    if pause_gc.paused:
        gc.enable()  # (cli.main disables it again at the end)
    try:
        report = loader.run()
    except KeyboardInterrupt:
        report = loader.report
        interrupted = True
    except InvalidInput as exc:  # the input is not the one the checkpoint was made for
        raise Fatal(f"{args.resume}: {exc}") from None
    finally:
        for sig, handler in previous.items():
            _signal.signal(sig, handler)
        if progress is not None:
            progress.close()
        if rejects_file is not None:
            rejects_file.close()
        if source is not sys.stdin.buffer:
            source.close()
        for s in [server, *nodes]:
            s.close()
        if thaw:
            if pause_gc.exits:
                _thaw_at_next_collection()
            else:
                gc.unfreeze()
    interrupted = interrupted or report.interrupted
    if not args.quiet:
        print(f"couchcore load: {report}", file=sys.stderr)
    if report.rejected:
        if args.rejects:
            print(f"couchcore load: {report.rejected:,} rejected document(s) written to {args.rejects}",
                  file=sys.stderr)
        else:
            for rejected in shown:
                print(f"  rejected: {rejected}", file=sys.stderr)
            if report.rejected > len(shown):
                print(f"  ... {report.rejected - len(shown):,} more (use --rejects FILE to keep them)", file=sys.stderr)
    if revised[0]:
        print(f"couchcore load: {_dump_hint(revised[0], args.upsert)}", file=sys.stderr)
    earlier = report.earlier.get("rejected", 0)
    if earlier:  # (printed with --quiet too: the exit status alone would not say why)
        where = f"listed in {args.rejects}" if args.rejects else "listed in the earlier run's rejects file"
        done = " and this load has nothing left to send" if was_complete else ""
        print(f"couchcore load: the checkpoint {args.resume} records {earlier:,} document(s) rejected by earlier "
              f"runs of this load{done}: they are not in the database ({where}, each with its reason in "
              f"{ERROR_FIELD}); mend them and load that file (with --skip-existing if some may be written)",
              file=sys.stderr)
    if report.unknown and checkpoint is not None and not interrupted:
        print(f"couchcore load: {report.unknown:,} document(s) may or may not be written (outcome unknown): the "
              f"checkpoint does not confirm them; run the same command again to send them again", file=sys.stderr)
    if interrupted:
        if checkpoint is not None:
            print(f"couchcore load: interrupted; run the same command again to resume from {args.resume}",
                  file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_REJECTED if report.rejected or report.unsettled or earlier else EXIT_OK


def _prune_rejects(path: str, line: int) -> None:
    """Drop the records of input lines after ``line`` from the rejects file ``path`` (a
    resumed load settles those lines again); the file is replaced atomically. A record
    whose line cannot be told is kept."""
    from .bulk import ERROR_FIELD

    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return
    head = re.compile(rb'\{"' + ERROR_FIELD.encode() + rb'":\{"line":(\d+)')
    kept = []
    dropped = 0
    for record in data.splitlines(keepends=True):
        m = head.match(record)
        if m is not None and int(m.group(1)) > line:
            dropped += 1
        else:
            kept.append(record)
    if not dropped:
        return
    if kept and not kept[-1].endswith(b"\n"):
        kept[-1] += b"\n"
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.writelines(kept)
    os.replace(tmp, path)


def _carries_rev(doc: Any) -> bool:
    """Whether a rejected document (JSON text or a dict) has a top-level ``_rev``."""
    if isinstance(doc, dict):
        return isinstance(doc.get("_rev"), str)
    if not isinstance(doc, (bytes, bytearray)) or b'"_rev"' not in doc:  # (the key as dump writes it)
        return False
    global _head_decoder
    if _head_decoder is None:
        _head_decoder = codec.document_head_decoder()
    try:
        return isinstance(_head_decoder(bytes(doc)).rev, str)
    except Exception:  # not one JSON object: not a dump's line
        return False


_head_decoder: Any = None


def _dump_hint(count: int, upsert: bool) -> str:
    """What to do when ``count`` documents carrying a ``_rev`` were refused as conflicts by a
    load without ``--new-edits-false``: ``couchcore dump`` writes each document with its
    revision (``_rev``, ``_revisions``), which a plain ``_bulk_docs`` reads as the revision
    being updated, so a document the target lacks is a 409 conflict (new_edits=true:
    https://docs.couchdb.org/en/stable/api/database/bulk-api.html#db-bulk-docs)."""
    what = "this --upsert load" if upsert else "--upsert"
    return (f"{count:,} of the rejected documents carry a _rev and were refused as conflicts: without "
            "--new-edits-false CouchDB reads a _rev as the revision being updated, and refuses it unless it "
            "is the document's current revision in this database (a document it lacks included). To copy a database's documents (the lines of couchcore dump), load them with "
            "--new-edits-false: their revisions and history are stored as they are, conflicts and deletions "
            f"too. ({what} does not take a dump's lines either: CouchDB reads their _revisions as the "
            "revision being updated, whatever the _rev.)")


def _same_file(path: str, fd: int) -> bool:
    """Whether ``path`` names the open file ``fd`` (a path that does not exist does not)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    other = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
