"""The relay's SSE encoding, checked by decoding it again with our WHATWG decoder."""

from __future__ import annotations

import json

import pytest

from streamvisor.relay.encoder import (
    GAP_EVENT,
    encode_comment,
    encode_event,
    encode_gap,
    encode_retry,
)
from streamvisor.sse import Decoder, Event

CASES = [
    ("message", "hello"),
    ("message", ""),
    ("tick", "two\nlines"),
    ("tick", "crlf\r\nand\rcr"),
    ("message", " leading space"),
    ("message", "ends with newline\n"),
    ("update", "unicode é 😀 \u2028 kept"),
    ("message", "form\x0cfeed and \x0bvtab stay"),
]


@pytest.mark.parametrize(("kind", "data"), CASES)
def test_an_encoded_event_decodes_to_the_same_type_and_data_with_the_relay_id(
    kind: str, data: str
) -> None:
    frame = encode_event(Event("s", "upstream-7", kind, data), "abc-42")
    (decoded,) = Decoder().feed(frame)
    expected = data.replace("\r\n", "\n").replace("\r", "\n")
    assert (decoded.id, decoded.event, decoded.data) == ("abc-42", kind, expected)


def test_the_default_type_is_left_out_and_other_types_are_written() -> None:
    assert b"event:" not in encode_event(Event(data="x"), "e-1")
    assert b"event: tick\n" in encode_event(Event(event="tick", data="x"), "e-1")


def test_a_type_with_a_line_break_cannot_inject_fields() -> None:
    frame = encode_event(Event(event="a\ndata: injected", data="x"), "e-1")
    (decoded,) = Decoder().feed(frame)
    assert decoded.data == "x"


def test_retry_and_comment_blocks_dispatch_nothing_but_set_the_retry() -> None:
    decoder = Decoder()
    assert decoder.feed(encode_retry(2500) + encode_comment() + encode_comment("a\nb")) == []
    assert decoder.retry == 2500


def test_the_gap_event_carries_json_with_the_three_keys() -> None:
    frame = encode_gap("ep-9", 'odd"id\n', "ep-10", "expired")
    (decoded,) = Decoder().feed(frame)
    assert decoded.event == GAP_EVENT
    assert decoded.id == "ep-9"
    assert json.loads(decoded.data) == {
        "last_event_id": 'odd"id\n',
        "oldest_retained": "ep-10",
        "reason": "expired",
    }
