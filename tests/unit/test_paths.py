"""couchcore.protocol.paths: the one place couchcore percent-encodes URL path parts and user info."""

from __future__ import annotations

import ast
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

import couchcore
from couchcore.protocol import paths

PACKAGE = Path(couchcore.__file__).resolve().parent


def test_quote_segment_escapes_every_reserved_character():
    assert paths.quote_segment("a/b+c?d#e%f@g h:i") == "a%2Fb%2Bc%3Fd%23e%25f%40g%20h%3Ai"
    assert paths.quote_segment("é") == "%C3%A9"


@given(st.text())
def test_quote_segment_round_trips_and_leaves_no_separator(text):
    quoted = paths.quote_segment(text)
    assert unquote(quoted) == text
    assert not set("/?#@+ ") & set(quoted)


def test_lone_surrogates_are_invalid_input_not_unicode_errors():
    # db.get("\udc80") raised a bare UnicodeEncodeError from urllib.parse.quote; the
    # message must not echo the text (quote_segment also encodes passwords)
    secret = "pw\udc80"
    for call in (lambda: paths.quote_segment(secret), lambda: paths.doc_path("db", secret),
                 lambda: paths.attachment_path("db", "doc", secret),
                 lambda: paths.url_with_credentials("http://h:5984", "admin", secret)):
        with pytest.raises(couchcore.InvalidInput) as info:
            call()
        assert "pw" not in str(info.value)
    db = couchcore.Database("http://127.0.0.1:9/db", retries=0)  # nothing listens: nothing may be sent
    with pytest.raises(couchcore.InvalidInput):
        db.get(secret)


def test_quote_segments_keeps_the_slashes():
    assert paths.quote_segments("couchdb/request_time") == "couchdb/request_time"
    assert paths.quote_segments("a b/c+d/e%") == "a%20b/c%2Bd/e%25"


def test_node_path_keeps_the_at_sign():
    assert paths.node_path("couchdb@127.0.0.1") == "/_node/couchdb@127.0.0.1"
    assert paths.node_path("n/1 x") == "/_node/n%2F1%20x"


def test_url_with_credentials_encodes_user_and_password():
    assert (paths.url_with_credentials("http://h:5984/db%2Fx", "a@b", "p/w:#%")
            == "http://a%40b:p%2Fw%3A%23%25@h:5984/db%2Fx")
    assert paths.url_with_credentials("https://h/db", "u", None) == "https://u:@h/db"


def test_document_and_design_paths():
    assert paths.doc_path("a/b", "x/y+z") == "/a%2Fb/x%2Fy%2Bz"
    assert paths.doc_path("db", "_design/app/v2") == "/db/_design/app%2Fv2"
    assert paths.doc_path("db", "_local/l?1") == "/db/_local/l%3F1"
    assert paths.attachment_path("db", "d", "a b/c.txt") == "/db/d/a%20b%2Fc.txt"
    assert paths.view_path("db", "_design/app/v2/_view/by n") == "/db/_design/app%2Fv2/_view/by%20n"


def _quote_calls(path: Path) -> list[str]:
    """The functions of ``path`` that call urllib's ``quote``/``quote_plus`` (``<module>`` at top level)."""
    found = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Call):
                func = child.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                if name in ("quote", "quote_plus"):
                    found.append(where)
            visit(child, where)

    visit(ast.parse(path.read_text(encoding="utf-8")), "<module>")
    return found


def test_paths_is_the_one_place_that_quotes():
    """Outside protocol/paths.py no module of couchcore percent-encodes URL parts itself; the one
    other caller is the query-string encoder of protocol/messages.py (``_quote``, handed to urlencode)."""
    found = {str(p.relative_to(PACKAGE)): calls for p in sorted(PACKAGE.rglob("*.py"))
             if p.name != "paths.py" and (calls := _quote_calls(p))}
    assert found == {"protocol/messages.py": ["_quote"]}


@pytest.mark.parametrize("text", ["admin:s3cret@127.0.0.1:5984/db", "//admin:s3cret@127.0.0.1:5984/db",
                                   "admin:s3cret@host"])
def test_a_url_without_its_scheme_taken_for_a_database_name_hides_the_password(text):
    with pytest.raises(couchcore.InvalidDatabaseName) as info:
        couchcore.Database(text)
    assert "s3cret" not in str(info.value) and "s3cret" not in repr(info.value)
    assert "***@" in str(info.value)


def test_couchdb_url_may_name_several_nodes(monkeypatch):
    monkeypatch.setenv("COUCHDB_URL", "http://admin:pa,ss@127.0.0.1:15984,http://admin:pa,ss@127.0.0.1:25984 "
                                      "http://admin:pa,ss@127.0.0.1:35984")
    server = couchcore.Server()
    assert server.urls == [f"http://127.0.0.1:{port}" for port in (15984, 25984, 35984)]
    assert server.credentials is not None and server.credentials.password == "pa,ss"
    monkeypatch.setenv("COUCHDB_URL", "http://127.0.0.1:5999")
    assert couchcore.Server().urls == ["http://127.0.0.1:5999"]
    monkeypatch.delenv("COUCHDB_URL")
    assert couchcore.Server().url == "http://127.0.0.1:5984"
