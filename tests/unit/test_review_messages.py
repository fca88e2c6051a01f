"""Error messages about a value of the wrong type stay short.

put_attachment(doc, "name", data) with content and filename swapped, or a whole document
given where an id goes, put the value's repr in the InvalidInput message: a 5 MB
attachment became a 20 MB exception message (and log line), the content of a document
went into logs. The message shows the type and the start of the value.
"""

from __future__ import annotations

import pytest

import couchcore
from couchcore.protocol.paths import attachment_path, doc_path, view_path


@pytest.mark.parametrize("call", [
    lambda big: attachment_path("db", "doc", big),
    lambda big: doc_path("db", big),
    lambda big: view_path("db", big),
])
def test_a_wrong_value_is_shown_short(call):
    big = b"\xbe" * 5_000_000
    with pytest.raises(couchcore.InvalidInput) as info:
        call(big)
    message = str(info.value)
    assert len(message) < 300, len(message)
    assert "bytes" in message  # the type is named


def test_a_whole_document_for_an_id_is_not_dumped():
    doc = {"_id": "a", "secret_field": "x" * 10_000}
    with pytest.raises(couchcore.InvalidInput) as info:
        doc_path("db", doc)  # type: ignore[arg-type]
    assert len(str(info.value)) < 300 and "dict" in str(info.value)


def test_a_short_wrong_value_is_shown_whole():
    with pytest.raises(couchcore.InvalidInput, match=r"got 42"):
        doc_path("db", 42)  # type: ignore[arg-type]
    with pytest.raises(couchcore.InvalidInput, match=r"got ''"):
        attachment_path("db", "doc", "")
