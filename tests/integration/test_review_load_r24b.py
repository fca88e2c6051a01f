"""Round 24 review (second reviewer) of ``couchcore load``'s CSV reading: a row that is not
valid CSV loses nothing (benchmarks/results/reviewer-round-r24.md)."""

from __future__ import annotations

import io
import json


from tests.helpers import cli_db_fixtures, run_cli
from couchcore._load_cli import InputError, csv_records



admin, name = cli_db_fixtures("r24rev-")


def records(data: bytes):
    out = []
    for line, rec in csv_records(io.BytesIO(data)):
        out.append((line, ("rejected", rec.text) if isinstance(rec, InputError) else rec))
    return out


def test_csv_quote_left_open_rejects_its_line_and_the_rows_it_swallowed_load():
    # a quote left open took every later line into its field: those rows were neither written
    # nor in the rejects file (whose record had no input text, only the error message)
    assert records(b'_id,v\na,1\nb,"2\nc,3\nd,4\n') == [
        (2, {"_id": "a", "v": "1"}), (3, ("rejected", 'b,"2')), (4, {"_id": "c", "v": "3"}),
        (5, {"_id": "d", "v": "4"})]


def test_csv_error_on_a_later_line_of_a_field_keeps_the_lines_and_their_numbers():
    # the open quote ends at d's first quote, then '4"' is not valid CSV: b, c and d were one
    # rejected record without text
    assert records(b'_id,v\na,1\nb,"2\nc,3\nd,"4"\r\ne,"multi\nline"\nf,6\n') == [
        (2, {"_id": "a", "v": "1"}), (3, ("rejected", 'b,"2')), (4, {"_id": "c", "v": "3"}),
        (5, {"_id": "d", "v": "4"}), (6, {"_id": "e", "v": "multi\nline"}), (8, {"_id": "f", "v": "6"})]


def test_csv_text_after_a_closing_quote_is_in_the_rejects_record():
    assert records(b'_id,v\nr1,"x"y\nr2,2\n') == [(2, ("rejected", 'r1,"x"y')), (3, {"_id": "r2", "v": "2"})]


def test_csv_header_that_is_not_valid_csv_shows_its_text():
    [(line, (what, text))] = records(b'_id,"v"x\na,1\n')
    assert (line, what, text) == (1, "rejected", '_id,"v"x')


def test_csv_load_with_a_quote_left_open_loses_no_row(tmp_path, couch_url, admin, name):
    source = tmp_path / "docs.csv"
    source.write_bytes(b'_id,v\nq1,1\nq2,"unterminated\nq3,3\n')
    rej = tmp_path / "rejects.jsonl"
    proc = run_cli("load", f"{couch_url}/{name}", source, "--create", "--quiet", "--rejects", rej)
    assert proc.returncode == 1, proc.stderr
    assert sorted(row.id for row in admin[name].view("_all_docs")) == ["q1", "q3"]
    [bad] = [json.loads(line) for line in rej.read_bytes().splitlines()]
    assert bad["_load_error"]["line"] == 3 and bad["_load_error"]["text"] == 'q2,"unterminated'
