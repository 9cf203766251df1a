"""ChunkedDecoder: the chunked framing off, whatever the pieces (RFC 9112 section 7.1)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamvisor.upstream.chunked import MAX_LINE, ChunkedDecoder, ChunkedError


def frame(*chunks: bytes, ext: bytes = b"", eol: bytes = b"\r\n", end: bool = True) -> bytes:
    body = b"".join(b"%x%s%s%s%s" % (len(c), ext, eol, c, eol) for c in chunks)
    return body + (b"0" + eol + eol if end else b"")


def feed_all(decoder: ChunkedDecoder, pieces: list[bytes]) -> bytes:
    return b"".join(decoder.feed(p) for p in pieces)


def split(blob: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(blob) + 1) for c in cuts})
    edges = [0, *points, len(blob)]
    return [blob[a:b] for a, b in itertools.pairwise(edges)]


EVENTS = [
    b"id: 1\ndata: a\n\n",
    b"data: " + b"x" * 300 + b"\n\n",
    b": hb\n\n",
    b"data: \xff\x00\n\n",
]


def test_a_whole_body_in_one_piece() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(frame(*EVENTS)) == b"".join(EVENTS)
    assert decoder.done


def test_byte_by_byte() -> None:
    decoder = ChunkedDecoder()
    blob = frame(*EVENTS)
    assert feed_all(decoder, [blob[i : i + 1] for i in range(len(blob))]) == b"".join(EVENTS)
    assert decoder.done


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=30))
def test_any_split_gives_the_same_body(cuts: list[int]) -> None:
    blob = frame(*EVENTS, b"y" * 5000)
    decoder = ChunkedDecoder()
    assert feed_all(decoder, split(blob, cuts)) == b"".join([*EVENTS, b"y" * 5000])
    assert decoder.done


@pytest.mark.parametrize(
    ("blob", "body"),
    [
        (frame(b"abc", ext=b";name=value"), b"abc"),  # a chunk extension is ignored
        (frame(b"abc", ext=b' ; a="x;y"'), b"abc"),  # blanks before it too
        (frame(b"abc", eol=b"\n"), b"abc"),  # LF alone, as http.client accepts
        (b"  3\r\nabc\r\n0\r\n\r\n", b"abc"),  # blanks before the size
        (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),  # hex, upper case
        (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        (b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Trace: 1\r\n\r\n", b"abc"),  # trailers ignored
        (b"0\r\n\r\n", b""),
    ],
)
def test_framing_variants(blob: bytes, body: bytes) -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(blob) == body
    assert decoder.done


def test_not_done_until_the_trailer_section_ends() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"3\r\nabc\r\n0\r\n") == b"abc"
    assert not decoder.done
    assert decoder.feed(b"X-A: 1\r\n") == b""
    assert not decoder.done
    assert decoder.feed(b"\r\n") == b""
    assert decoder.done


def test_bytes_after_the_last_chunk_are_ignored() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(frame(b"abc") + b"HTTP/1.1 200 OK\r\n") == b"abc"
    assert decoder.feed(b"5\r\nextra\r\n") == b""
    assert decoder.done


def test_only_framing_gives_empty_bytes_and_keeps_going() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"1") == b""
    assert decoder.feed(b"0\r") == b""
    assert decoder.feed(b"\n") == b""
    assert decoder.feed(b"x" * 16) == b"x" * 16
    assert decoder.feed(b"\r") == b""
    assert decoder.feed(b"\n0\r\n\r\n") == b""
    assert decoder.done


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"zz\r\n", "invalid chunk size line b'zz'"),
        (b"0x3\r\nabc\r\n", "invalid chunk size line"),  # int(..., 16) would take it
        (b"1_0\r\n", "invalid chunk size line"),
        (b"-3\r\n", "invalid chunk size line"),
        (b"\r\n", "invalid chunk size line"),
        (b"1" * 17 + b"\r\n", "invalid chunk size line"),  # over 16 hex digits
        (b"3\r\nabcX0\r\n\r\n", "not followed by CRLF"),  # the size lied
        (b"3\r\nabc\rX", "not followed by CRLF"),
        (b"3\r\nabc\r\nzz\r\n", "invalid chunk size line b'zz'"),
    ],
)
def test_broken_framing_is_an_error(blob: bytes, message: str) -> None:
    decoder = ChunkedDecoder()
    with pytest.raises(ChunkedError, match=message.replace("(", r"\(")):
        decoder.feed(blob)  # raises here when no body came before the break
        decoder.check()


@pytest.mark.parametrize("head", [b"", b"3\r\nabc\r\n"])
def test_an_endless_size_line_is_an_error_not_a_growing_buffer(head: bytes) -> None:
    decoder = ChunkedDecoder()
    decoder.feed(head + b"1" + b";" + b"e" * 100)
    with pytest.raises(ChunkedError, match=f"longer than {MAX_LINE}"):
        for _ in range(MAX_LINE // 100 + 2):
            decoder.feed(b"e" * 100)


def test_an_endless_trailer_line_is_an_error() -> None:
    decoder = ChunkedDecoder()
    decoder.feed(b"0\r\nX-Long: ")
    with pytest.raises(ChunkedError, match="trailer line longer"):
        decoder.feed(b"v" * (MAX_LINE + 1))


GOOD = b"id: 1\ndata: ok\n\n"


@pytest.mark.parametrize(
    ("broken", "returned"),
    [
        (b"zz\r\n", b""),  # a size line that is not hex
        (b"2\r\nabc\r\n", b"ab"),  # a size that lies
        (b"3\r\nabcX", b"abc"),
    ],
)
def test_body_before_broken_framing_is_returned_then_the_error_comes(
    broken: bytes, returned: bytes
) -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(frame(GOOD, end=False) + broken) == GOOD + returned
    with pytest.raises(ChunkedError):
        decoder.check()
    with pytest.raises(ChunkedError):
        decoder.feed(b"0\r\n\r\n")  # and it stays broken
