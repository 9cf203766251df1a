"""HTTP edge cases from real servers (issue 10), against the scripted server on 127.0.0.1:
several Content-Type lines, many response headers, odd redirects, ids that cannot be sent
as a header, events larger than 1 MiB, cookies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from streamvisor.connection import Connection
from streamvisor.spec import StreamSpec
from tests.sse_server import Send, SSEServer

pytestmark = pytest.mark.timeout(30)


def raw_response(*header_lines: str, body: bytes = b"data: x\n\n") -> Send:
    head = "HTTP/1.1 200 OK\r\n" + "".join(f"{line}\r\n" for line in header_lines)
    return Send(head.encode("latin-1") + b"Connection: close\r\n\r\n" + body)


def spec_for(server: SSEServer, path: str = "/events", **kwargs: Any) -> StreamSpec:
    return StreamSpec(name="edge", url=server.url(path), **kwargs)


@pytest.fixture
def opened() -> Iterator[Callable[..., Connection]]:
    made: list[Connection] = []

    def make(spec: StreamSpec, last_event_id: str | None = None) -> Connection:
        conn = Connection(spec, last_event_id)
        made.append(conn)
        conn.open()
        return conn

    try:
        yield make
    finally:
        for conn in made:
            conn.close()


def read_all(conn: Connection) -> bytes:
    out = b""
    while chunk := conn.read():
        out += chunk
    return out


def test_two_content_type_lines_are_read_as_one_list_whose_last_value_wins(
    sse_server: SSEServer, opened: Callable[..., Connection]
) -> None:
    sse_server.add_script(
        raw_response("Content-Type: application/json", "Content-Type: text/event-stream")
    )
    assert read_all(opened(spec_for(sse_server))) == b"data: x\n\n"
