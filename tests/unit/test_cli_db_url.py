"""couchcore.cli.db_url_parts: the one check of a command's database URL (``load`` and ``dump``),
before anything is sent; its messages are one line and never hold the password."""

import pytest

import couchcore
from couchcore.cli import db_url_parts
from couchcore.errors import InvalidDatabaseName, InvalidInput


@pytest.mark.parametrize("url, server, name", [
    ("http://u:pw@h:5984/db", "http://u:pw@h:5984", "db"),
    ("http://h:5984/db/", "http://h:5984", "db"),
    ("https://h/prefix/couch/a%2Fb", "https://h/prefix/couch", "a/b"),
])
def test_a_database_url_is_split_into_server_and_name(url, server, name):
    assert db_url_parts(url) == (server, name)


@pytest.mark.parametrize("url, says", [
    ("http://u:s3cret@h:5984/", "names no database"),
    ("http://u:s3cret@h:5984", "names no database"),
    ("ftp://u:s3cret@h/db", "not an http(s) URL"),
    ("http://u:s3cret@h:5984/db?partitioned=true", "no query or fragment"),
    ("http://u:s3?cret@h:5984/db", "percent-encode"),
    ("http://u:s3cret@h:5984/db/_design/app", "a document's URL"),
    ("http://u:s3cret@h:5984/Bad", "invalid database name"),
])
def test_a_url_naming_no_database_is_refused_in_one_line_without_the_password(url, says):
    with pytest.raises(InvalidInput) as info:
        db_url_parts(url)
    message = str(info.value)
    assert says in message and "s3cret" not in message and "s3?cret" not in message
    assert "\n" not in message
    if says == "invalid database name":
        assert isinstance(info.value, InvalidDatabaseName)


def test_a_database_object_for_a_url_without_a_name_says_so():
    # it said: invalid database name '' (the empty path read as a name)
    with pytest.raises(InvalidInput, match="names no database"):
        couchcore.Database("http://h:5984/")


@pytest.mark.parametrize("url, server", [
    ("https://s/prefix/db", "https://s/prefix"),
    ("http://h/db", "http://h"),
    ("http://http/db", "http://http"),
    ("http://u:pw@t:5984/db", "http://u:pw@t:5984"),
])
def test_a_host_whose_name_stands_in_the_scheme_is_kept(url, server):
    # the server URL was cut where the host's name first stood in the URL: inside 'https'
    # ('https://s/prefix/db' -> 'https/prefix': "not an http(s) URL" for a good URL)
    assert db_url_parts(url)[0] == server
    assert couchcore.Database(url)._server.url == server.replace("u:pw@", "")
