"""``extract_mime_essence``: the Fetch standard's "extract a MIME type", as a table.

Source: https://fetch.spec.whatwg.org/#concept-header-extract-mime-type (with "get, decode,
and split" and "parse a MIME type" from https://mimesniff.spec.whatwg.org/).
"""

from __future__ import annotations

import pytest

from streamvisor.upstream.mime import extract_mime_essence, split_header_values

EVENT_STREAM = "text/event-stream"


@pytest.mark.parametrize(
    ("header", "essence"),
    [
        ("text/event-stream", EVENT_STREAM),
        ("TEXT/Event-Stream", EVENT_STREAM),
        ("text/event-stream; charset=utf-8", EVENT_STREAM),
        ("text/event-stream ;charset=utf-8", EVENT_STREAM),
        (" \ttext/event-stream\t ", EVENT_STREAM),
        # a list keeps the last valid value
        ("application/json, text/event-stream; charset=utf-8", EVENT_STREAM),
        ("text/event-stream, application/json", "application/json"),
        ("text/event-stream, */*", EVENT_STREAM),
        ("text/event-stream, nonsense", EVENT_STREAM),
        ("text/event-stream, ", EVENT_STREAM),
        ('text/plain, text/event-stream;x="a,b"', EVENT_STREAM),
        ('text/event-stream;x="a,text/html"', EVENT_STREAM),
        ('text/event-stream;x="a\\"b,text/html"', EVENT_STREAM),
        ('text/html;x="unterminated, text/event-stream', "text/html"),
        # invalid values
        ("", None),
        ("nonsense", None),
        ("text /event-stream", None),
        ("text/event stream", None),
        ("text/", None),
        ("/event-stream", None),
        ("*/*", None),
        ("text/event-stream\x00", None),
        ("tëxt/event-stream", None),
    ],
)
def test_the_essence_is_extracted_as_fetch_does(header: str, essence: str | None) -> None:
    assert extract_mime_essence(header) == essence


def test_no_header_has_no_essence() -> None:
    assert extract_mime_essence(None) is None


@pytest.mark.parametrize(
    ("header", "values"),
    [
        ("a, b", ["a", "b"]),
        ('a="x,y", b', ['a="x,y"', "b"]),
        ("a,,b", ["a", "", "b"]),
        ("", [""]),
        (' a ,\t"b', ["a", '"b']),
    ],
)
def test_a_header_is_split_at_commas_outside_quoted_strings(header: str, values: list[str]) -> None:
    assert split_header_values(header) == values
