"""Round 24 review of ``couchcore load`` / ``couchcore dump`` as a new user runs them, on
inputs real users have. Each test failed before its fix (benchmarks/results/reviewer-cli-r24.md)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import cli_db_fixtures, run_cli



admin, name = cli_db_fixtures("r24cli-")


def stored(admin, name):
    return {row.id: row.doc for row in admin[name].view("_all_docs", include_docs=True)}


def rejects(path):
    return [json.loads(line) for line in path.read_bytes().splitlines()]


# -- JSON array input: text after the closing ']' -----------------------------------------

@pytest.mark.parametrize("after", [b"\n[{\"_id\": \"s2\"}]\n", b" trailing", b"\n{\"_id\": \"s2\"}\n"])
def test_text_after_the_json_array_is_rejected_not_ignored(tmp_path, couch_url, admin, name, after):
    # two arrays concatenated (`cat a.json b.json`) or an array followed by more input: the
    # loader stopped at the first ']' and exited 0, the rest silently never loaded
    source = tmp_path / "docs.json"
    source.write_bytes(b'[{"_id": "s1"}]' + after)
    rej = tmp_path / "rejects.jsonl"
    proc = run_cli("load", f"{couch_url}/{name}", source, "--create", "--quiet", "--rejects", rej)
    assert proc.returncode == 1, proc.stderr
    assert sorted(stored(admin, name)) == ["s1"]
    [bad] = rejects(rej)
    assert bad["_load_error"]["line"] == (1 if after == b" trailing" else 2)
    assert "after the JSON array" in bad["_load_error"]["reason"]


def test_white_space_after_the_json_array_is_fine(tmp_path, couch_url, admin, name):
    source = tmp_path / "docs.json"
    source.write_bytes(b'\xef\xbb\xbf[\r\n {"_id": "s1"}\r\n]\r\n\r\n  \t')
    proc = run_cli("load", f"{couch_url}/{name}", source, "--create", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert sorted(stored(admin, name)) == ["s1"]


# -- CSV input: a field over Python's csv limit (128 kB) ----------------------------------

def test_csv_field_of_a_megabyte_is_loaded(tmp_path, couch_url, admin, name):
    # csv's default field_size_limit is 131,072 characters: a 1 MB text field ended the load
    # with a traceback (_csv.Error) and exit 1, the rows before it not written either
    big = "y" * (1 << 20)
    source = tmp_path / "docs.csv"
    source.write_text(f'_id,p\ns1,x\nbig,"{big}"\ns2,y\n')
    proc = run_cli("load", f"{couch_url}/{name}", source, "--create", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr
    docs = stored(admin, name)
    assert sorted(docs) == ["big", "s1", "s2"]
    assert docs["big"]["p"] == big


# -- CSV input: a header naming a column twice ---------------------------------------------

def test_csv_columns_of_the_same_name_with_different_values_are_rejected_not_merged(tmp_path, couch_url, admin,
                                                                                    name):
    # `name,...,name`: each row became a dict keeping only the last 'name' value; the first
    # column's values were silently lost and the load exited 0. Rows whose columns of one name
    # agree (Excel's trailing empty columns, "a,b,,") load as before
    source = tmp_path / "docs.csv"
    source.write_bytes(b'\xef\xbb\xbf_id,name,n,name,,\r\nc1,"Smith, J",1,dup,,\r\nc2,same,2,same,,\r\n'
                       b'c3,x,3,x,,oops\r\n')
    rej = tmp_path / "rejects.jsonl"
    proc = run_cli("load", f"{couch_url}/{name}", source, "--create", "--quiet", "--rejects", rej)
    assert proc.returncode == 1, proc.stderr
    assert {k: {f: v for f, v in d.items() if f != "_rev"} for k, d in stored(admin, name).items()} == {
        "c2": {"_id": "c2", "name": "same", "n": "2", "": ""}}
    bad = {r["_load_error"]["line"]: r["_load_error"]["reason"] for r in rejects(rej)}
    assert sorted(bad) == [2, 4]
    assert "'name'" in bad[2] and "''" in bad[4]


# -- --resume: a load that could not start ---------------------------------------------------

def test_a_checkpoint_of_a_load_that_never_started_does_not_bind_the_next_one(tmp_path, couch_url, admin, name):
    # a typo in the database name with --resume: exit 2 (fine), but the checkpoint file it
    # left (0 records, nothing sent) named the typo; the corrected command then exited 2 with
    # "checkpoint ... belongs to another load" until the user deleted the file by hand
    source = tmp_path / "docs.jsonl"
    source.write_bytes(b'{"_id": "a"}\n{"_id": "b"}\n')
    checkpoint = tmp_path / "load.checkpoint"
    typo = run_cli("load", f"{couch_url}/{name}-typo", source, "--quiet", "--resume", checkpoint)
    assert typo.returncode == 2
    admin.create(name)
    proc = run_cli("load", f"{couch_url}/{name}", source, "--quiet", "--resume", checkpoint)
    assert proc.returncode == 0, proc.stderr
    assert sorted(stored(admin, name)) == ["a", "b"]
    # a checkpoint that did send something still belongs to its load
    other = run_cli("load", f"{couch_url}/{name}-typo", source, "--quiet", "--create", "--resume", checkpoint)
    assert other.returncode == 2 and b"belongs to another load" in other.stderr
    assert f"{name}-typo" not in admin


# -- a rejects file loaded again -------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_rejected_input_that_was_not_utf8_is_not_loaded_again_with_replacement_characters(
        tmp_path, couch_url, admin, name, suffix):
    # the rejects record of a line that is not UTF-8 shows its text with U+FFFD for the bad
    # bytes; loading the rejects file again "as it is" (--help) wrote that text as a document,
    # v: "\ufffd\ufffd" for the bytes ff fe, exit 0: the input silently changed
    source = tmp_path / "docs.jsonl"
    source.write_bytes(b'{"_id": "ok"}\n{"_id": "bad", "v": "\xff\xfe"}\n')
    rej = tmp_path / "rejects.jsonl"
    first = run_cli("load", f"{couch_url}/{name}", source, "--create", "--quiet", "--rejects", rej)
    assert first.returncode == 1
    [record] = rejects(rej)
    assert record["_load_error"]["text"] == '{"_id": "bad", "v": "\ufffd\ufffd"}'
    again = tmp_path / f"again{suffix}"
    if suffix == ".json":
        again.write_bytes(b"[" + rej.read_bytes() + b"]")
    else:
        again.write_bytes(rej.read_bytes())
    rej2 = tmp_path / "rejects2.jsonl"
    proc = run_cli("load", f"{couch_url}/{name}", again, "--quiet", "--rejects", rej2)
    assert proc.returncode == 1, proc.stderr
    assert sorted(stored(admin, name)) == ["ok"]
    [record2] = rejects(rej2)
    assert record2["_load_error"]["text"] == record["_load_error"]["text"]
    assert "UTF-8" in record2["_load_error"]["reason"]
    # once the text is mended, the record loads
    mended = tmp_path / "mended.jsonl"
    mended.write_bytes(rej.read_bytes().replace("\ufffd".encode(), b"x"))
    proc = run_cli("load", f"{couch_url}/{name}", mended, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert stored(admin, name)["bad"]["v"] == "xx"


# -- --resume and --rejects naming one file ----------------------------------------------------

@pytest.mark.parametrize("exists", [False, True])
def test_resume_and_rejects_naming_one_file_is_refused(tmp_path, couch_url, admin, name, exists, monkeypatch):
    # the checkpoint is replaced atomically (a temporary file renamed over it), so the rejects
    # written to the same file were lost: "5 rejected document(s) written to same" and the file
    # held only the checkpoint
    source = tmp_path / "docs.jsonl"
    source.write_bytes(b'{"_id": "ok"}\nnot json\n')
    both = tmp_path / "both"
    if exists:
        both.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    proc = run_cli("load", f"{couch_url}/{name}", source, "--create", "--quiet", "--resume", both,
                   "--rejects", "./both")
    assert proc.returncode == 2
    assert b"--rejects" in proc.stderr and b"--resume" in proc.stderr
    assert name not in admin


# -- CSV input: broken quoting -----------------------------------------------------------------

def test_csv_quote_left_open_does_not_swallow_the_rows_after_it(tmp_path, couch_url, admin, name):
    # csv's lenient mode ended a field left open by a missing closing quote at the end of the
    # input: row q2 was written with the rest of the file (row q3 included) as its value, q3
    # was never written nor rejected, exit 0 (and, strict, q3 was in neither until q2's line alone
    # was rejected and the lines after it read again)
    source = tmp_path / "docs.csv"
    source.write_bytes(b'_id,v\nq1,1\nq2,"unterminated\nq3,3\n')
    rej = tmp_path / "rejects.jsonl"
    proc = run_cli("load", f"{couch_url}/{name}", source, "--create", "--quiet", "--rejects", rej)
    assert proc.returncode == 1, proc.stderr
    assert sorted(stored(admin, name)) == ["q1", "q3"]
    [bad] = rejects(rej)
    assert bad["_load_error"]["line"] == 3
    assert "CSV" in bad["_load_error"]["reason"] and "end of data" in bad["_load_error"]["reason"]


def test_csv_text_after_a_closing_quote_rejects_that_row_only(tmp_path, couch_url, admin, name):
    # `"x"y` was read as the field 'xy' (a quote closed mid-field, the rest glued on)
    source = tmp_path / "docs.csv"
    source.write_bytes(b'_id,v\nr1,"x"y\nr2,"a ""quoted"" word"\nr3,\n')
    rej = tmp_path / "rejects.jsonl"
    proc = run_cli("load", f"{couch_url}/{name}", source, "--create", "--quiet", "--rejects", rej)
    assert proc.returncode == 1, proc.stderr
    docs = stored(admin, name)
    assert sorted(docs) == ["r2", "r3"] and docs["r2"]["v"] == 'a "quoted" word' and docs["r3"]["v"] == ""
    assert [r["_load_error"]["line"] for r in rejects(rej)] == [2]


# -- --resume with an input shorter than the checkpoint --------------------------------------

@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_resume_with_an_input_shorter_than_the_checkpoint_says_so(tmp_path, couch_url, admin, name, fmt):
    # `producer | couchcore load URL - --resume cp` run again with another (shorter) stream:
    # the loader skipped "the confirmed records" the new stream does not even have, wrote
    # nothing and exited 0 ("read 0, written 0")
    first = b"".join(b'{"_id": "a%d"}\n' % i for i in range(6))
    other = b'{"_id": "new1"}\n{"_id": "new2"}\n'
    if fmt == "json":
        first = b"[" + first.replace(b"}\n", b"},", 5) + b"]"
        other = b"[" + other.replace(b"}\n", b"},", 1) + b"]"
    checkpoint = tmp_path / "cp.json"
    proc = run_cli("load", f"{couch_url}/{name}", "-", "--create", "--quiet", "--resume", checkpoint, input=first)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("load", f"{couch_url}/{name}", "-", "--quiet", "--resume", checkpoint, input=other)
    assert proc.returncode == 2
    assert b"checkpoint" in proc.stderr and b"Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert sorted(stored(admin, name)) == [f"a{i}" for i in range(6)]
    # the same input again: nothing to do, exit 0
    proc = run_cli("load", f"{couch_url}/{name}", "-", "--quiet", "--resume", checkpoint, input=first)
    assert proc.returncode == 0, proc.stderr


# -- database URLs ---------------------------------------------------------------------------

def test_load_url_with_a_query_is_refused_as_dump_refuses_it(tmp_path, couch_url, admin, name):
    # `load URL/db?partitioned=true --create` created an ordinary database: the query was
    # dropped without a word (dump refuses it: "a server URL has no query or fragment")
    source = tmp_path / "docs.jsonl"
    source.write_bytes(b'{"_id": "a:1"}\n')
    proc = run_cli("load", f"{couch_url}/{name}?partitioned=true", source, "--create", "--quiet")
    assert proc.returncode == 2
    assert b"query" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert name not in admin


def test_load_url_with_an_unencoded_question_mark_in_the_password_says_so(tmp_path, couch_url, admin, name):
    # "the URL names no database: http://***@127.0.0.1:5984/DB": the password's '?' ended the
    # host part, so the URL's path looked empty; the library's message says what is wrong
    from urllib.parse import urlsplit

    parts = urlsplit(couch_url)
    url = f"{parts.scheme}://someone:pa?ss#zq9x@{parts.hostname}:{parts.port}/{name}"
    source = tmp_path / "docs.jsonl"
    source.write_bytes(b'{"_id": "a"}\n')
    proc = run_cli("load", url, source, "--create", "--quiet")
    assert proc.returncode == 2
    assert b"percent-encode" in proc.stderr and b"names no database" not in proc.stderr
    assert b"pa?ss" not in proc.stderr and b"zq9x" not in proc.stderr


def test_dump_url_with_an_unencoded_question_mark_in_the_password_says_so(couch_url, name):
    # the same for dump (it said "the URL names no database")
    from urllib.parse import urlsplit

    parts = urlsplit(couch_url)
    url = f"{parts.scheme}://someone:pa?ss#zq9x@{parts.hostname}:{parts.port}/{name}"
    proc = run_cli("dump", url, "--quiet")
    assert proc.returncode == 2 and proc.stdout == b""
    assert b"percent-encode" in proc.stderr and b"names no database" not in proc.stderr
    assert b"pa?ss" not in proc.stderr and b"zq9x" not in proc.stderr


# -- --create with a --node that cannot take part ------------------------------------------------

def test_a_database_created_for_a_load_that_cannot_start_is_removed_again(tmp_path, couch_url, admin, name):
    # `--create --node URL-of-another-server`: exit 2 "--node ...: database ... does not exist"
    # (right), but the database had been created on the first server and stayed, empty
    source = tmp_path / "docs.jsonl"
    source.write_bytes(b'{"_id": "a"}\n')
    from couchcore.testing import free_port

    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proc = run_cli("load", f"{couch_url}/{name}", source, "--create", "--quiet", "--node", down)
    assert proc.returncode == 2
    assert b"--node" in proc.stderr
    assert name not in admin
    # a database that existed before is left alone
    admin.create(name)
    proc = run_cli("load", f"{couch_url}/{name}", source, "--create", "--quiet", "--node", down)
    assert proc.returncode == 2
    assert name in admin
