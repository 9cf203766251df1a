"""The decoder's safety limits, its cost growth, split invariance and agreement with sseclient-py.

The linearity checks compare the time for a small and a four times larger input (a ratio, never
an absolute time), so a slow machine does not fail them but a quadratic decoder does.
"""

from __future__ import annotations

import random
import time

import pytest
import sseclient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamvisor.errors import LineTooLongError, StreamProtocolError
from streamvisor.sse import Decoder, Event

_SINGLE_BYTES = [bytes([i]) for i in range(256)]


def _feed_bytewise(decoder: Decoder, data: bytes) -> list[Event]:
    events: list[Event] = []
    feed = decoder.feed
    for byte in data:
        got = feed(_SINGLE_BYTES[byte])
        if got:
            events.extend(got)
    return events


# -- size limits -------------------------------------------------------------------------------


def test_line_too_long_error_is_a_stream_protocol_error() -> None:
    assert issubclass(LineTooLongError, StreamProtocolError)
    assert LineTooLongError(10).limit == 10


def test_a_line_longer_than_max_size_raises_when_fed_in_one_piece() -> None:
    decoder = Decoder(max_size=100)
    with pytest.raises(LineTooLongError) as caught:
        decoder.feed(b"data: " + b"x" * 200)
    assert caught.value.limit == 100
    assert decoder.buffered == 0


def test_a_complete_line_longer_than_max_size_raises_when_fed_in_one_piece() -> None:
    decoder = Decoder(max_size=100)
    with pytest.raises(LineTooLongError):
        decoder.feed(b"data: " + b"x" * 200 + b"\n\n")


def test_a_line_longer_than_max_size_raises_when_fed_one_byte_at_a_time() -> None:
    decoder = Decoder(max_size=100)
    line = b": " + b"x" * 200
    with pytest.raises(LineTooLongError):
        _feed_bytewise(decoder, line)
    assert decoder.buffered == 0


def test_a_line_of_exactly_max_size_is_accepted() -> None:
    decoder = Decoder(max_size=100)
    line = b"data: " + b"x" * 94
    assert len(line) == 100
    assert _feed_bytewise(decoder, line + b"\n\n") == [Event(data="x" * 94)]


def test_an_event_whose_data_adds_up_past_max_size_raises() -> None:
    decoder = Decoder(max_size=100)
    with pytest.raises(LineTooLongError):
        decoder.feed(b"data: 0123456789\n" * 20 + b"\n")


def test_an_event_whose_data_adds_up_past_max_size_raises_when_fed_one_byte_at_a_time() -> None:
    decoder = Decoder(max_size=100)
    with pytest.raises(LineTooLongError):
        _feed_bytewise(decoder, b"data: 0123456789\n" * 20 + b"\n")


def test_many_small_events_never_trip_the_limit() -> None:
    decoder = Decoder(max_size=100)
    events = decoder.feed(b"data: 0123456789\n\n" * 1000)
    assert len(events) == 1000


def test_buffered_data_plus_a_pending_line_may_not_exceed_max_size() -> None:
    decoder = Decoder(max_size=100)
    decoder.feed(b"data: " + b"a" * 70 + b"\n")
    assert decoder.buffered <= 100
    with pytest.raises(LineTooLongError):
        decoder.feed(b"data: " + b"b" * 60)


def test_buffered_never_exceeds_max_size_on_any_feed_that_returns() -> None:
    rng = random.Random(7)
    limit = 64
    stream = b"".join(
        rng.choice([b"data: ", b": ", b"id: ", b"event: "])
        + b"y" * rng.randrange(0, 40)
        + rng.choice([b"\n", b"\r", b"\r\n", b"\n\n", b"\r\n\r\n"])
        for _ in range(3000)
    )
    decoder = Decoder(max_size=limit)
    returned = raised = 0
    pos = 0
    while pos < len(stream):
        step = rng.randrange(1, 50)
        try:
            decoder.feed(stream[pos : pos + step])
            returned += 1
        except LineTooLongError:
            raised += 1
            decoder = Decoder(max_size=limit)
        assert decoder.buffered <= limit
        pos += step
    assert returned > 100
    assert raised > 0


def test_a_failed_feed_leaves_last_event_id_at_the_last_event_returned() -> None:
    decoder = Decoder(max_size=100)
    assert decoder.feed(b"id: 1\ndata: a\n\n") == [Event(id="1", data="a", last_event_id="1")]
    with pytest.raises(LineTooLongError):
        # Event 2 completes in the same feed that then overflows: it is never returned, so a
        # reconnect must resume from id 1 and replay it.
        decoder.feed(b"id: 2\ndata: b\n\ndata: " + b"x" * 200 + b"\n")
    assert decoder.last_event_id == "1"
    assert decoder.buffered == 0


def test_a_failed_feed_on_a_pending_line_leaves_last_event_id_at_the_last_event_returned() -> None:
    decoder = Decoder(max_size=100)
    with pytest.raises(LineTooLongError):
        decoder.feed(b"id: 2\ndata: b\n\ndata: " + b"x" * 200)
    assert decoder.last_event_id is None


def test_a_retry_too_long_for_int_is_ignored_instead_of_raising() -> None:
    decoder = Decoder()
    assert decoder.feed(b"retry: 250\n") == []
    assert decoder.feed(b"retry: " + b"9" * 5000 + b"\ndata: a\n\n") == [Event(data="a")]
    assert decoder.retry == 250


# -- cost growth -------------------------------------------------------------------------------


def _bytewise_seconds(total: int, line: bytes) -> tuple[float, int]:
    data = line * (total // len(line))
    assert len(data) == total
    decoder = Decoder(max_size=16 << 20)
    start = time.thread_time()
    count = len(_feed_bytewise(decoder, data))
    return time.thread_time() - start, count


def test_feeding_one_byte_at_a_time_costs_linear_time_in_the_input_size() -> None:
    line = b"data: " + b"x" * 4088 + b"\n\n"  # one event of 4 KiB
    small, small_count = _bytewise_seconds(2 << 20, line)
    large, large_count = _bytewise_seconds(8 << 20, line)
    assert large_count == 4 * small_count
    # Four times the bytes: ~4x when linear, ~16x when quadratic.
    assert large / small < 8, f"2 MB took {small:.2f}s, 8 MB took {large:.2f}s"


def test_one_long_line_fed_one_byte_at_a_time_costs_linear_time() -> None:
    def seconds(size: int) -> float:
        decoder = Decoder(max_size=16 << 20)
        start = time.thread_time()
        events = _feed_bytewise(decoder, b"data: " + b"z" * size + b"\n\n")
        elapsed = time.thread_time() - start
        assert len(events) == 1
        assert len(events[0].data) == size
        return elapsed

    small = min(seconds(512 << 10) for _ in range(2))
    large = seconds(2 << 20)
    assert large / small < 8, f"512 KiB took {small:.2f}s, 2 MiB took {large:.2f}s"


# -- any split gives the same events -----------------------------------------------------------

_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"), max_size=12
)
_field_names = st.sampled_from(["data", "data", "data", "event", "id", "retry", "dat", "", "x"])
_separators = st.sampled_from([":", ": ", ":  ", ""])
_line_ends = st.sampled_from([b"\n", b"\r", b"\r\n"])
_invalid = st.sampled_from([b"\xff", b"\x80", b"\xe2\x82", b"\xf0\x9f", b"\xc0\xaf", b"\xed\xa0"])
_retry_values = st.sampled_from(["100", " 5", "1.5", "-1", "", "007", "\u0661"])


@st.composite
def _lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["field", "field", "field", "blank", "comment", "retry"]))
    if kind == "blank":
        body = b""
    elif kind == "comment":
        body = b":" + draw(_text).encode()
    elif kind == "retry":
        body = b"retry:" + draw(_retry_values).encode()
    else:
        body = (draw(_field_names) + draw(_separators) + draw(_text)).encode()
        if draw(st.integers(0, 5)) == 0:
            at = draw(st.integers(0, len(body)))
            body = body[:at] + draw(_invalid) + body[at:]
    return body + draw(_line_ends)


@st.composite
def _streams(draw: st.DrawFn) -> bytes:
    bom = draw(st.sampled_from([b"", b"", b"\xef\xbb\xbf", b"\xef\xbb\xbf\xef\xbb\xbf"]))
    return bom + b"".join(draw(st.lists(_lines(), max_size=40)))


def _decode(chunks: list[bytes]) -> tuple[list[Event], str | None, int | None]:
    decoder = Decoder()
    events: list[Event] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    decoder.end()
    return events, decoder.last_event_id, decoder.retry


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=_streams(), data=st.data())
def test_any_split_of_a_stream_gives_the_same_events_as_feeding_it_whole(
    stream: bytes, data: st.DataObject
) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert b"".join(chunks) == stream
    assert _decode(chunks) == _decode([stream])
    assert _decode([stream[i : i + 1] for i in range(len(stream))]) == _decode([stream])


# -- agreement with sseclient-py where sseclient-py is right -----------------------------------

_value = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\r\n\x00"),
    max_size=20,
)


@st.composite
def _plain_events(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str]]]:
    """LF-only, valid UTF-8 streams of complete events: sseclient-py handles these right."""
    parts: list[str] = []
    expected: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(0, 8))):
        lines: list[str] = []
        if draw(st.booleans()):
            lines.append(": " + draw(_value))
        event = draw(st.one_of(st.just(None), _value))
        if event is not None:
            lines.append("event: " + event)
        if draw(st.booleans()):
            lines.append("id: " + draw(_value))
        data_lines = draw(st.lists(_value, min_size=1, max_size=4))
        lines.extend("data: " + value for value in data_lines)
        parts.append("".join(line + "\n" for line in lines) + "\n")
        expected.append((event or "message", "\n".join(data_lines)))
    return "".join(parts).encode(), expected


CORPUS = [
    b"data: hello\n\n",
    b'event: trade\nid: 1\ndata: {"px": 1}\n\n',
    b"data: a\ndata: b\n\n: keepalive\n\nevent: x\ndata: c\n\n",
    "id: \u2026\ndata: caf\u00e9 \U0001f600\n\n".encode(),
    b"data:no space\ndata:  two spaces\n\n",
    b"data: colon: inside\n\nevent:\ndata: empty type\n\n",
]


def _ours(chunks: list[bytes]) -> list[tuple[str, str]]:
    decoder = Decoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    return [(e.event, e.data) for e in events]


def _theirs(chunks: list[bytes]) -> list[tuple[str, str]]:
    return [(e.event, e.data) for e in sseclient.SSEClient(iter(chunks)).events()]


@pytest.mark.parametrize("stream", CORPUS)
def test_the_decoder_agrees_with_sseclient_py_on_plain_lf_streams(stream: bytes) -> None:
    expected = _theirs([stream])
    assert expected  # the corpus only holds streams that carry events
    assert _ours([stream]) == expected
    assert _ours([stream[i : i + 3] for i in range(0, len(stream), 3)]) == expected


@settings(max_examples=200, deadline=None)
@given(generated=_plain_events(), data=st.data())
def test_the_decoder_agrees_with_sseclient_py_on_generated_plain_streams(
    generated: tuple[bytes, list[tuple[str, str]]], data: st.DataObject
) -> None:
    stream, expected = generated
    cuts = sorted(data.draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    chunks = [chunk for chunk in chunks if chunk]
    assert _theirs(chunks) == expected
    assert _ours(chunks) == expected
