"""``couchcore load``'s command line parsed without argparse (couchcore._load_cli.parse_args)
gives what the argparse sub-parser gives, or leaves the command line to it (``None``)."""

from __future__ import annotations

import argparse
import itertools

import pytest

from couchcore import _load_cli, cli


def argparse_load(argv: list[str]) -> dict[str, object] | None:
    """What ``couchcore load ARGV`` parses to with argparse (``None``: argparse exits)."""
    parser = cli._build_parser("load")
    try:
        args = cli._parse(parser, ["load", *argv])
    except SystemExit:
        return None
    return vars(args)


def test_the_tables_are_the_parser():
    """Every option of the argparse sub-parser is in parse_args' tables, with its dest, type,
    choices and default, and nothing else is."""
    parser = cli._build_parser("load")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    seen = set()
    for action in sub.choices["load"]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if not action.option_strings:  # db_url, file
            assert action.dest in ("db_url", "file")
            if action.dest == "file":
                assert action.nargs == "?" and action.default == _load_cli._DEFAULTS["file"]
            continue
        (option,) = action.option_strings
        seen.add(option)
        if isinstance(action, argparse._StoreTrueAction):
            assert _load_cli._FLAGS[option] == action.dest
        else:
            assert isinstance(action, (argparse._StoreAction, argparse._AppendAction)), option
            assert isinstance(action, argparse._AppendAction) == (option == "--node")
            dest, kind, choices = _load_cli._VALUED[option]
            assert (dest, kind, choices) == (action.dest, action.type,
                                             tuple(action.choices) if action.choices else None)
            assert action.nargs is None
        expected = [] if option == "--node" else _load_cli._DEFAULTS[action.dest]
        assert action.default == expected, option
    assert seen == set(_load_cli._FLAGS) | set(_load_cli._VALUED)
    assert sub.choices["load"].get_default("run") is _load_cli.run


PLAIN = [
    ["http://h:5984/db"],
    ["http://h:5984/db", "docs.jsonl"],
    ["http://h:5984/db", "-"],
    ["http://admin:admin@127.0.0.1:5984/db", "/tmp/x.jsonl", "--create", "--quiet", "--concurrency", "4",
     "--batch-size", "1000"],
    ["--create", "http://h/db", "--quiet", "f.csv"],
    ["http://h/db", "--create", "f.jsonl"],
    ["http://h/db", "--batch-size=10", "--concurrency=2", "--retries", "0", "--format", "csv", "f"],
    ["http://h/db", "--node", "http://h2:5984", "--node=http://h3:5984/db", "--upsert"],
    ["http://h/db", "--new-edits-false", "--skip-existing", "--id-field", "sku", "--rejects", "r.jsonl",
     "--resume", "ck.json", "--backend", "urllib3"],
    ["http://h/db", "--backend=pycurl", "--format=json", "--format", "jsonl"],  # (the last one counts)
    ["http://h/db", "--batch-size", "1_000", "--concurrency", " 3"],  # (int() as argparse's type=int)
    ["http://h/db", "--create", "--create", "--upsert", "--upsert"],
    ["http://h/db", "--batch-size", "0", "--concurrency", "+2"],
    ["http://h/db", "--id-field", "a=b"],
]

LEFT_TO_ARGPARSE = [
    [], ["--help"], ["-h"], ["http://h/db", "--help"], ["http://h/db", "--crea"], ["http://h/db", "--batch", "5"],
    ["http://h/db", "--retries", "-1"], ["http://h/db", "--retries=-1"], ["http://h/db", "--batch-size", "x"],
    ["http://h/db", "--batch-size"], ["http://h/db", "--format", "yaml"], ["http://h/db", "--backend", "tornado"],
    ["http://h/db", "--upsert", "--new-edits-false"], ["http://h/db", "a", "b"], ["http://h/db", "--", "f"],
    ["http://h/db", "--create=1"], ["http://h/db", "--id-field", ""], ["http://h/db", "--id-field="],
    ["http://h/db", ""], ["http://h/db", "-x"], ["http://h/db", "--bogus"], ["--create"],
    ["http://h/db", "--rejects", "-"], ["http://h/db", "-5"], ["http://h/db", "--batch-size", "1.5"],
]


@pytest.mark.parametrize("argv", PLAIN)
def test_a_plain_command_line_parses_as_argparse_parses_it(argv):
    fast = _load_cli.parse_args(argv)
    assert fast is not None
    assert vars(fast) == argparse_load(argv)


@pytest.mark.parametrize("argv", LEFT_TO_ARGPARSE)
def test_anything_else_is_left_to_argparse(argv):
    assert _load_cli.parse_args(argv) is None


def test_every_order_of_a_command_line():
    """Options and positionals in any order (argparse's parse_intermixed_args)."""
    parts = [["http://h/db"], ["f.jsonl"], ["--create"], ["--batch-size", "7"], ["--node", "http://n"],
             ["--quiet"]]
    count = 0
    for order in itertools.permutations(parts):
        argv = [t for p in order for t in p]
        fast = _load_cli.parse_args(argv)
        expected = argparse_load(argv)
        if order.index(["http://h/db"]) > order.index(["f.jsonl"]):  # then f.jsonl is the URL
            assert vars(fast) == expected  # (argparse binds them in order too)
        else:
            assert fast is not None and vars(fast) == expected
        count += 1
    assert count == 720


def test_help_leaves_the_collector_enabled(capsys):
    """cli.main pauses the cyclic collector while a load starts; --help (SystemExit) ends with it enabled."""
    import gc

    with pytest.raises(SystemExit):
        cli.main(["load", "--help"])
    assert gc.isenabled() and not _load_cli.pause_gc.paused
    assert "usage: couchcore load" in capsys.readouterr().out
