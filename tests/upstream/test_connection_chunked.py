"""Chunked bodies against the real scripted server: read in bulk, framing checked.

The framing is written by hand (``Transfer-Encoding: chunked`` as an extra header, the
server unaware), so each test decides where the pieces fall on the wire.
"""

from __future__ import annotations

import itertools
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from streamvisor.errors import ConnectError
from streamvisor.sse import Decoder
from streamvisor.upstream.connection import Connection
from tests.support.sse_server import Close, Headers, Hold, Reset, Send, SSEServer, WaitFor
from tests.upstream.test_connection import read_all, spec_for

pytestmark = pytest.mark.timeout(30)

Opened = Callable[..., Connection]
CHUNKED = Headers(extra={"Transfer-Encoding": "chunked"})


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(i: int) -> bytes:
    return b"id: %d\nevent: tick\ndata: %s\n\n" % (i, b"x" * 200)


def test_one_read_takes_every_chunk_that_has_arrived(sse_server: SSEServer, opened: Opened) -> None:
    # 50 events, one chunk each, in one write: http.client's read1 would hand out one
    # chunk per call; the body reader takes what arrived in one go.
    burst = b"".join(chunk(event(i)) for i in range(1, 51))
    sse_server.add_script(CHUNKED, Send(burst), Hold())
    conn = opened(spec_for(sse_server))
    reads, body = 0, b""
    while body.count(b"\n\n") < 50:
        data = conn.read()
        assert data, "the body ended early"
        reads += 1
        body += data
    assert body == b"".join(event(i) for i in range(1, 51))
    assert reads <= 5, f"{reads} reads for 50 chunks that came in one write"


def test_framing_split_anywhere_on_the_wire(sse_server: SSEServer, opened: Opened) -> None:
    blob = chunk(b"id: 1\ndata: a\n\n") + chunk(b"id: 2\ndata: b\n\n") + b"0\r\n\r\n"
    # cut in the size line, between CR and LF, in the data, in the trailing CRLFs
    cuts = [0, 1, 3, 4, 5, 20, 21, 22, 23, len(blob) - 3, len(blob)]
    pieces = [blob[a:b] for a, b in itertools.pairwise(cuts)]
    gates = [threading.Event() for _ in pieces]
    script: list[Any] = [CHUNKED]
    for piece, gate in zip(pieces, gates, strict=True):
        script += [WaitFor(gate), Send(piece)]
    sse_server.add_script(*script, Hold())
    conn = opened(spec_for(sse_server))
    for gate in gates:
        gate.set()
    decoder = Decoder()
    events = [e for data in iter(conn.read, b"") for e in decoder.feed(data)]
    assert [(e.id, e.data) for e in events] == [("1", "a"), ("2", "b")]


def test_the_last_chunk_ends_the_body_while_the_connection_stays_open(
    sse_server: SSEServer, opened: Opened
) -> None:
    sse_server.add_script(CHUNKED, Send(chunk(b"data: a\n\n") + b"0\r\n\r\n"), Hold())
    conn = opened(spec_for(sse_server, read_timeout=20))
    assert read_all(conn) == b"data: a\n\n"  # no wait for the read timeout


def test_a_body_cut_before_its_last_chunk_is_a_connect_error(
    sse_server: SSEServer, opened: Opened
) -> None:
    sse_server.add_script(CHUNKED, Send(chunk(b"data: a\n\n")), Reset())
    conn = opened(spec_for(sse_server))
    with pytest.raises(ConnectError, match=r"before its last chunk|Connection reset") as caught:
        read_all(conn)
    assert caught.value.cause


def test_a_clean_close_before_the_last_chunk_is_a_connect_error(
    sse_server: SSEServer, opened: Opened
) -> None:
    sse_server.add_script(CHUNKED, Send(chunk(b"data: a\n\n")))  # then the server closes
    conn = opened(spec_for(sse_server))
    assert conn.read() == b"data: a\n\n"
    with pytest.raises(ConnectError, match="the chunked body ended before its last chunk"):
        conn.read()


def test_broken_framing_is_a_connect_error_naming_it(sse_server: SSEServer, opened: Opened) -> None:
    sse_server.add_script(CHUNKED, Send(b"5\r\ndata: a\n\n\r\n"), Hold())  # the size lies
    conn = opened(spec_for(sse_server))
    with pytest.raises(ConnectError, match="invalid chunked body: chunk data is not followed"):
        read_all(conn)


def test_a_gzip_chunked_body_is_decoded_as_it_arrives(
    sse_server: SSEServer, opened: Opened
) -> None:
    compressor = zlib.compressobj(wbits=31)
    first = compressor.compress(b"data: zipped\n\n") + compressor.flush(zlib.Z_SYNC_FLUSH)
    rest = compressor.compress(b"data: more\n\n") + compressor.flush()
    step = threading.Event()
    sse_server.add_script(
        Headers(chunked=True, extra={"Content-Encoding": "gzip"}),
        Send(first),
        WaitFor(step),
        Send(rest),
        Close(),
    )
    conn = opened(spec_for(sse_server))
    assert conn.read() == b"data: zipped\n\n"
    step.set()
    assert read_all(conn) == b"data: more\n\n"


def test_events_before_broken_framing_are_read_then_the_error_comes_at_once(
    sse_server: SSEServer, opened: Opened
) -> None:
    good = chunk(b"id: 1\ndata: ok\n\n")
    sse_server.add_script(CHUNKED, Send(good + b"zz\r\n"), Hold())  # one write, then silence
    conn = opened(spec_for(sse_server, read_timeout=20))
    assert conn.read() == b"id: 1\ndata: ok\n\n"
    started = time.monotonic()
    with pytest.raises(ConnectError, match="invalid chunk size line b'zz'"):
        conn.read()
    assert time.monotonic() - started < 5, "waited for more bytes on a broken body"
