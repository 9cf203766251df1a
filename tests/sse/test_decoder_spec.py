"""The decoder against the WHATWG "interpreting an event stream" rules, as a table.

Cases come from the HTML Living Standard (server-sent events, "Parsing an event stream" and
"Interpreting an event stream") and from the web-platform-tests ``eventsource/format-*`` tests
(the wpt servers append ``\\n\\n`` and then ``\\n`` to a message unless ``newline=none``; the
streams below spell out the bytes those tests put on the wire).

Every case runs three ways: fed whole, fed one byte at a time, and fed at random split points
(several seeds); each ends with ``end()``.
"""

from __future__ import annotations

import json
import random
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamvisor.sse import Decoder, Event

M = "message"


class Case(NamedTuple):
    name: str
    stream: bytes
    # (id, event, data, last_event_id) for each dispatched event, in order.
    events: list[tuple[str | None, str, str, str | None]]
    last_event_id: str | None = None
    retry: int | None = None
    seed_id: str | None = None


LONG = b"x" * 2048

CASES = [
    # -- line endings ------------------------------------------------------------------------
    Case("LF ends a line", b"data: a\n\n", [(None, M, "a", None)]),
    Case("a lone CR ends a line", b"data: a\r\r", [(None, M, "a", None)]),
    Case("CRLF ends a line", b"data: a\r\n\r\n", [(None, M, "a", None)]),
    Case(
        "LF, CR and CRLF mix within one block",
        b"data: a\rdata: b\ndata: c\r\n\r\n",
        [(None, M, "a\nb\nc", None)],
    ),
    Case(
        "LF then CRLF is two line ends so the event dispatches",
        b"data: a\n\r\ndata: b\n\n",
        [(None, M, "a", None), (None, M, "b", None)],
    ),
    Case(
        "LF then CR is two line ends so the event dispatches",
        b"data: a\n\rdata: b\n\n",
        [(None, M, "a", None), (None, M, "b", None)],
    ),
    Case(
        "CRLF then CR is two line ends so the event dispatches",
        b"data: a\r\n\rdata: b\r\r",
        [(None, M, "a", None), (None, M, "b", None)],
    ),
    Case("CR then CRLF is two line ends", b"data: a\r\r\n", [(None, M, "a", None)]),
    Case(
        "wpt newline fest joins lines ended by CRLF, LF and CR",
        b"data:test\r\ndata\ndata:test\r\n\r",
        [(None, M, "test\n\ntest", None)],
    ),
    Case("a stream of only line ends dispatches nothing", b"\n\r\n\r\n\n\r\r\n", []),
    Case(
        "extra blank lines between events dispatch nothing",
        b"data: a\n\n\n\r\n\rdata: b\n\n",
        [(None, M, "a", None), (None, M, "b", None)],
    ),
    Case("an empty stream dispatches nothing", b"", []),
    # -- byte order mark -----------------------------------------------------------------------
    Case("a leading BOM is stripped", b"\xef\xbb\xbfdata: a\n\n", [(None, M, "a", None)]),
    Case(
        "wpt format-bom strips only the BOM at the start of the stream",
        b"\xef\xbb\xbfdata:1\n\n\xef\xbb\xbfdata:2\n\ndata:3\n\n\n",
        [(None, M, "1", None), (None, M, "3", None)],
    ),
    Case(
        "wpt format-bom-2 keeps a second BOM in the field name so that line is ignored",
        b"\xef\xbb\xbf\xef\xbb\xbfdata:1\n\ndata:2\n\ndata:3\n\n\n",
        [(None, M, "2", None), (None, M, "3", None)],
    ),
    Case(
        "a BOM after the first line is part of the field name",
        b"\n\xef\xbb\xbfdata: a\n\ndata: b\n\n",
        [(None, M, "b", None)],
    ),
    Case("a BOM inside a value is kept", b"data: \xef\xbb\xbfa\n\n", [(None, M, "\ufeffa", None)]),
    Case(
        "a BOM followed by a blank line dispatches nothing",
        b"\xef\xbb\xbf\ndata: a\n\n",
        [(None, M, "a", None)],
    ),
    Case(
        "a BOM before a CR line end is stripped",
        b"\xef\xbb\xbfdata: a\r\r",
        [(None, M, "a", None)],
    ),
    # -- characters that are not line ends ---------------------------------------------------
    Case(
        "U+2028 and U+2029 stay in the data",
        "data: a\u2028b\u2029c\n\n".encode(),
        [(None, M, "a\u2028b\u2029c", None)],
    ),
    Case("U+0085 stays in the data", "data: a\x85b\n\n".encode(), [(None, M, "a\x85b", None)]),
    Case(
        "vertical tab and form feed stay in the data",
        b"data: a\x0bb\x0cc\n\n",
        [(None, M, "a\x0bb\x0cc", None)],
    ),
    Case(
        "file, group and record separators stay in the data",
        b"data: a\x1cb\x1dc\x1ed\n\n",
        [(None, M, "a\x1cb\x1dc\x1ed", None)],
    ),
    Case(
        "wpt format-null-character keeps NUL in data", b"data:\x00\n\n", [(None, M, "\x00", None)]
    ),
    # -- UTF-8 ---------------------------------------------------------------------------------
    Case(
        "wpt format-utf-8 decodes UTF-8 whatever the charset",
        b"data:ok\xe2\x80\xa6\n\n",
        [(None, M, "ok\u2026", None)],
    ),
    Case(
        "a four-byte character survives any split",
        "data: \U0001f600 \u00e9\u4e2d\n\n".encode(),
        [(None, M, "\U0001f600 \u00e9\u4e2d", None)],
    ),
    Case("an invalid byte becomes U+FFFD", b"data: a\xffb\n\n", [(None, M, "a\ufffdb", None)]),
    Case(
        "a truncated sequence before the line end becomes one U+FFFD",
        b"data: \xe2\x82\n\n",
        [(None, M, "\ufffd", None)],
    ),
    Case(
        "each stray continuation byte becomes U+FFFD",
        b"data: \x80\x80\n\n",
        [(None, M, "\ufffd\ufffd", None)],
    ),
    Case(
        "an overlong encoding becomes U+FFFD per byte",
        b"data: \xc0\xaf\n\n",
        [(None, M, "\ufffd\ufffd", None)],
    ),
    Case(
        "an encoded surrogate becomes three U+FFFD",
        b"data: \xed\xa0\x80\n\n",
        [(None, M, "\ufffd\ufffd\ufffd", None)],
    ),
    Case(
        "an invalid byte in a field name makes the field unknown",
        b"da\xffta: x\n\n",
        [],
    ),
    Case(
        "an invalid byte in an id becomes U+FFFD in the id",
        b"id: \xff\ndata: a\n\n",
        [("\ufffd", M, "a", "\ufffd")],
        last_event_id="\ufffd",
    ),
    # -- data ----------------------------------------------------------------------------------
    Case(
        "wpt format-field-data dispatches empty data and a lone LF",
        b"data:\n\ndata\ndata\n\ndata:test\n\n\n",
        [(None, M, "", None), (None, M, "\n", None), (None, M, "test", None)],
    ),
    Case(
        "data lines are joined with LF",
        b"data: a\ndata: b\ndata: c\n\n",
        [(None, M, "a\nb\nc", None)],
    ),
    Case(
        "only one trailing LF is removed from the data buffer",
        b"data: a\ndata:\n\n",
        [(None, M, "a\n", None)],
    ),
    Case("a data line without a colon dispatches empty data", b"data\n\n", [(None, M, "", None)]),
    Case("exactly one leading space is removed", b"data:  a\n\n", [(None, M, " a", None)]),
    Case("a value with no leading space is kept whole", b"data:a\n\n", [(None, M, "a", None)]),
    Case("a leading tab is not removed", b"data:\ta\n\n", [(None, M, "\ta", None)]),
    Case("trailing spaces are kept", b"data: a  \n\n", [(None, M, "a  ", None)]),
    Case(
        "colons after the first belong to the value",
        b"data: a:b: c\n\n",
        [(None, M, "a:b: c", None)],
    ),
    Case("field names are case sensitive", b"Data: a\n\n", []),
    Case("a field name with a leading space is unknown", b" data: a\n\n", []),
    Case("a field name with a trailing space is unknown", b"data : a\n\n", []),
    Case(
        "wpt format-field-parsing keeps NUL, spaces and ignores near-miss names",
        b"data:\x00\ndata:  2\rData:1\ndata\x00:2\ndata:1\r\x00data:4\nda-ta:3\rdata_5\n"
        b"data:3\rdata:\r\n data:32\ndata:4\n\n",
        [(None, M, "\x00\n 2\n1\n3\n\n4", None)],
    ),
    Case(
        "wpt format-field-unknown ignores unknown fields and bare text",
        b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n\n",
        [(None, M, "test\n\ntest", None)],
    ),
    Case(
        "wpt format-comments ignores comments ended by any line end",
        b"data:1\r:\x00\n:\r\ndata:2\n:"
        + LONG
        + b"\rdata:3\n:data:fail\r:"
        + LONG
        + b"\ndata:4\n\n",
        [(None, M, "1\n2\n3\n4", None)],
    ),
    Case(
        "wpt format-data-before-final-empty-line drops the unterminated block",
        b"retry:1000\ndata:test1\n\nid:test\ndata:test2",
        [(None, M, "test1", None)],
        retry=1000,
    ),
    Case(
        "lines and data split over writes as in wpt message2",
        b"data:msg\ndata:msg\n\n:\nfalsedata:msg\n\ndata:\n\ndata:end\n\n",
        [(None, M, "msg\nmsg", None), (None, M, "", None), (None, M, "end", None)],
    ),
    Case("a block of only a comment dispatches nothing", b": hello\n\n", []),
    Case("an empty comment dispatches nothing", b":\n\n", []),
    Case(
        "a comment between data lines does not break the event",
        b"data: a\n: note\ndata: b\n\n",
        [(None, M, "a\nb", None)],
    ),
    Case(
        "an event type without data dispatches nothing and does not leak",
        b"event: x\n\ndata: a\n\n",
        [(None, M, "a", None)],
    ),
    # -- event -----------------------------------------------------------------------------------
    Case(
        "wpt format-field-event sets the type for one event only",
        b"event:test\ndata:x\n\ndata:x\n\n\n",
        [(None, "test", "x", None), (None, M, "x", None)],
    ),
    Case(
        "wpt format-field-event-empty falls back to message",
        b"event: \ndata:data\n\n\n",
        [(None, M, "data", None)],
    ),
    Case(
        "an event field without a colon falls back to message",
        b"event\ndata: a\n\n",
        [(None, M, "a", None)],
    ),
    Case(
        "the last event field in a block wins",
        b"event: a\nevent: b\ndata: x\n\n",
        [(None, "b", "x", None)],
    ),
    Case(
        "an event type keeps inner and trailing spaces",
        b"event:  spaced out \ndata: x\n\n",
        [(None, " spaced out ", "x", None)],
    ),
    # -- id --------------------------------------------------------------------------------------
    Case(
        "wpt format-field-id-3 an id persists to later events",
        b"id: 1\ndata: 1\n\ndata:2\n\n",
        [("1", M, "1", "1"), (None, M, "2", "1")],
        last_event_id="1",
    ),
    Case(
        "wpt format-field-id-3 an id changes and persists",
        b"id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n",
        [("1", M, "1", "1"), ("2", M, "2", "2"), (None, M, "3", "2")],
        last_event_id="2",
    ),
    Case(
        "wpt format-field-id-3 an empty id resets the last event id",
        b"id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",
        [("1", M, "1", "1"), ("", M, "2", ""), (None, M, "3", "")],
        last_event_id="",
    ),
    Case(
        "wpt format-field-id-null ignores an id containing NUL",
        b"id: 1\ndata: a\n\nid: \x00\x00\ndata: b\n\n",
        [("1", M, "a", "1"), (None, M, "b", "1")],
        last_event_id="1",
    ),
    Case(
        "an id with a NUL in the middle is ignored",
        b"id: a\x00b\ndata: x\n\n",
        [(None, M, "x", None)],
    ),
    Case(
        "an id-only block updates the last event id and dispatches nothing", b"id: 7\n\n", [], "7"
    ),
    Case(
        "an id-only block sets the last event id of the next event",
        b"id: 7\n\ndata: a\n\n",
        [(None, M, "a", "7")],
        last_event_id="7",
    ),
    Case(
        "an id field without a colon resets the last event id",
        b"id: 1\n\nid\ndata: a\n\n",
        [("", M, "a", "")],
        last_event_id="",
    ),
    Case(
        "the last id field in a block wins",
        b"id: 1\nid: 2\ndata: a\n\n",
        [("2", M, "a", "2")],
        last_event_id="2",
    ),
    Case(
        "wpt format-field-id-2 keeps a non-ASCII id",
        b"id: \xe2\x80\xa6\ndata: hello\n\n",
        [("\u2026", M, "hello", "\u2026")],
        last_event_id="\u2026",
    ),
    Case(
        "only one leading space is removed from an id",
        b"id:  x\ndata: a\n\n",
        [(" x", M, "a", " x")],
        last_event_id=" x",
    ),
    Case(
        "an id after the data in the same block applies to that event",
        b"data: a\nid: 9\n\n",
        [("9", M, "a", "9")],
        last_event_id="9",
    ),
    Case(
        "an id is the event's own id only in the block that carried it",
        b"id: 1\ndata: a\n\ndata: b\n\nid: 2\n\ndata: c\n\n",
        [("1", M, "a", "1"), (None, M, "b", "1"), (None, M, "c", "2")],
        last_event_id="2",
    ),
    # -- retry -----------------------------------------------------------------------------------
    Case("retry with one leading space is valid", b"retry: 100\n\n", [], retry=100),
    Case("retry without a space is valid", b"retry:100\n", [], retry=100),
    Case("retry with two leading spaces is ignored", b"retry:  100\n\n", []),
    Case("retry with a decimal point is ignored", b"retry: 1.5\n\n", []),
    Case("a negative retry is ignored", b"retry: -1\n\n", []),
    Case("retry with a plus sign is ignored", b"retry: +5\n\n", []),
    Case("retry with a trailing space is ignored", b"retry: 100 \n\n", []),
    Case(
        "wpt format-field-retry-bogus keeps the last valid retry",
        b"retry:2000\nretry:1000x\ndata:x\n\n\n",
        [(None, M, "x", None)],
        retry=2000,
    ),
    Case("retry in Arabic-Indic digits is ignored", "retry: \u0661\u0660\n\n".encode(), []),
    Case("retry in superscript digits is ignored", "retry: \u00b2\n\n".encode(), []),
    Case("an empty retry is ignored", b"retry:\nretry\n\n", []),
    Case("retry zero is valid", b"retry: 0\n", [], retry=0),
    Case("retry with leading zeros is read in base ten", b"retry: 007\n", [], retry=7),
    Case("the last valid retry wins", b"retry: 100\nretry: 200\n", [], retry=200),
    Case(
        "a huge retry is kept exactly",
        b"retry: 99999999999999999999\n",
        [],
        retry=99999999999999999999,
    ),
    Case(
        "retry in a block with data still dispatches the event",
        b"retry: 5\ndata: a\n\n",
        [(None, M, "a", None)],
        retry=5,
    ),
    Case(
        "retry applies even in a block that is never terminated",
        b"data: a\nretry: 300\n",
        [],
        retry=300,
    ),
    # -- end of input ----------------------------------------------------------------------------
    Case("end discards an unterminated block", b"data: a\n", []),
    Case("end discards an unterminated line", b"data: a", []),
    Case("end discards a block whose last line ended with a lone CR", b"data: a\r", []),
    Case(
        "end discards an unterminated block and its undispatched id",
        b"id: 1\ndata: a\n\nid: 2\ndata: b\n",
        [("1", M, "a", "1")],
        last_event_id="1",
    ),
    Case("end discards an undispatched id-only block", b"id: 5\n", []),
    # -- seeded last event id --------------------------------------------------------------------
    Case(
        "a seeded last event id is carried by events without an id",
        b"data: a\n\n",
        [(None, M, "a", "x")],
        last_event_id="x",
        seed_id="x",
    ),
    Case(
        "a seeded last event id is replaced by the server's id",
        b"data: a\n\nid: y\ndata: b\n\ndata: c\n\n",
        [(None, M, "a", "x"), ("y", M, "b", "y"), (None, M, "c", "y")],
        last_event_id="y",
        seed_id="x",
    ),
    Case(
        "a seeded last event id survives an undispatched id",
        b"id: y\n",
        [],
        last_event_id="x",
        seed_id="x",
    ),
    Case(
        "a seeded last event id can be reset by an empty id",
        b"id\n\n",
        [],
        last_event_id="",
        seed_id="x",
    ),
]

SEEDS = range(6)


def _as_tuples(events: list[Event]) -> list[tuple[str | None, str, str, str | None]]:
    assert all(e.stream == "" for e in events)
    return [(e.id, e.event, e.data, e.last_event_id) for e in events]


def _run(case: Case, chunks: list[bytes]) -> Decoder:
    decoder = Decoder(last_event_id=case.seed_id)
    events: list[Event] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    decoder.end()
    assert _as_tuples(events) == case.events
    assert decoder.last_event_id == case.last_event_id
    assert decoder.retry == case.retry
    return decoder


def _random_chunks(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    if len(data) < 2:
        return [data]
    cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, min(len(data) - 1, 12))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def test_the_table_holds_at_least_seventy_distinct_cases() -> None:
    assert len(CASES) >= 70
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_decodes_as_the_spec_says_when_fed_whole(case: Case) -> None:
    _run(case, [case.stream])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_decodes_as_the_spec_says_when_fed_one_byte_at_a_time(case: Case) -> None:
    _run(case, [case.stream[i : i + 1] for i in range(len(case.stream))])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_decodes_as_the_spec_says_when_fed_at_random_split_points(case: Case) -> None:
    for seed in SEEDS:
        _run(case, _random_chunks(case.stream, seed))


# -- behaviours that need more than "feed everything, then end" ------------------------------


def test_a_lone_cr_dispatches_at_once_without_waiting_for_more_bytes() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data: a\r\r") == [Event(data="a")]


def test_a_cr_at_the_end_of_a_chunk_and_lf_at_the_start_of_the_next_are_one_line_end() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"data: b\r") == []
    assert decoder.feed(b"\ndata: c\r") == []
    assert decoder.feed(b"\n\r") == [Event(data="a\nb\nc")]


def test_a_cr_at_the_end_of_a_chunk_followed_by_cr_dispatches() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [Event(data="a")]


def test_a_bom_split_across_three_chunks_is_still_stripped() -> None:
    decoder = Decoder()
    assert decoder.feed(b"\xef") == []
    assert decoder.feed(b"\xbb") == []
    assert decoder.feed(b"\xbfdata: a\n") == []
    assert decoder.feed(b"\n") == [Event(data="a")]


def test_a_bom_in_a_later_chunk_is_not_stripped() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data: a\n\n") == [Event(data="a")]
    assert decoder.feed(b"\xef\xbb\xbfdata: b\n\ndata: c\n\n") == [Event(data="c")]


def test_a_multibyte_character_split_across_chunks_is_decoded_once() -> None:
    decoder = Decoder()
    encoded = "data: \u20ac\n\n".encode()
    split = encoded.index(b"\xe2") + 1
    assert decoder.feed(encoded[:split]) == []
    assert decoder.feed(encoded[split:]) == [Event(data="\u20ac")]


def test_events_carry_the_stream_name_and_the_clock_time() -> None:
    decoder = Decoder("ticker", clock=lambda: 1234.5)
    (event,) = decoder.feed(b"id: 1\nevent: trade\ndata: x\n\n")
    assert event == Event("ticker", "1", "trade", "x", "1")
    assert event.received_at == 1234.5


def test_last_event_id_is_readable_between_feeds_and_moves_only_on_dispatch() -> None:
    decoder = Decoder()
    decoder.feed(b"id: 1\ndata: a\n")
    assert decoder.last_event_id is None
    decoder.feed(b"\n")
    assert decoder.last_event_id == "1"


def test_an_empty_feed_returns_no_events_and_changes_nothing() -> None:
    decoder = Decoder()
    decoder.feed(b"data: a\r")
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [Event(data="a")]


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=8),
    st.one_of(st.none(), st.text(max_size=8)),
    st.text(min_size=1, max_size=8),
    st.text(max_size=64),
    st.one_of(st.none(), st.text(max_size=8)),
)
def test_to_json_is_the_standard_librarys_json_with_line_breaks_escaped(
    stream: str, event_id: str | None, event_type: str, data: str, last: str | None
) -> None:
    event = Event(stream, event_id, event_type, data, last, 1795478075.5)
    line = event.to_json()
    assert json.loads(line) == event.to_dict()
    expected = json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("\u0085", "\\u0085"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        expected = expected.replace(char, escaped)
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in stream + (event_id or "") + data + (last or "")):
        assert line == expected
    assert "\n" not in line and "\u2028" not in line
