"""The scripted test server itself: scripts in order, recording, framing, clean stop."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.support.sse_server import Close, Headers, Hold, Reset, Send, SSEServer, Status, WaitFor

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def server(sse_server: SSEServer) -> SSEServer:
    """The shared scripted server (conftest), started and always stopped."""
    return sse_server


def exchange(server: SSEServer, request: bytes) -> bytes:
    """Send a raw request and read the whole response (until the server closes)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


GET = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"


def test_connections_get_the_scripts_in_order_and_the_last_one_repeats(server):
    server.add_script(Status(200, body=b"first"))
    server.add_script(Status(200, body=b"second"))
    bodies = [exchange(server, GET).partition(b"\r\n\r\n")[2] for _ in range(3)]
    assert bodies == [b"first", b"second", b"second"]


def test_the_default_script_serves_connections_past_the_queue():
    with SSEServer([[Status(201)]], default=[Status(404)]) as srv:
        first, second = (exchange(srv, GET) for _ in range(2))
    assert first.startswith(b"HTTP/1.1 201 Created\r\n")
    assert second.startswith(b"HTTP/1.1 404 Not Found\r\n")


def test_requests_are_recorded_with_method_path_headers_body_and_time(server):
    server.add_script(Status(204))
    before = time.monotonic()
    raw = b"POST /in?a=1 HTTP/1.1\r\nHost: t\r\nX-Id: \xc3\xa9\r\nContent-Length: 3\r\n\r\nabc"
    exchange(server, raw)
    assert server.wait_for_requests(1)
    request = server.requests[0]
    assert (request.method, request.path, request.body) == ("POST", "/in?a=1", b"abc")
    assert request.headers["x-id"] == "\xc3\xa9"  # Latin-1 view
    assert request.raw_header("X-ID") == b"\xc3\xa9"
    assert before <= request.time <= time.monotonic()


def test_wait_for_requests_gives_up_at_its_deadline(server):
    started = time.monotonic()
    assert server.wait_for_requests(1, timeout=0.2) is False
    assert time.monotonic() - started >= 0.2


def test_a_chunked_response_is_framed_and_terminated(server):
    server.add_script(Headers(chunked=True), Send(b"data: a\n\n"), Send(b""), Close())
    response = exchange(server, GET)
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert b"Content-Type: text/event-stream" in head
    assert body == b"9\r\ndata: a\n\n\r\n0\r\n\r\n"


def test_reset_aborts_the_connection(server):
    server.add_script(Headers(), Send(b"x"), Reset())
    with pytest.raises(ConnectionResetError):
        exchange(server, GET)


def test_stop_ends_held_and_waiting_connections_and_joins_every_thread():
    never = threading.Event()
    srv = SSEServer([[Headers(), Hold()], [WaitFor(never, timeout=60)]]).start()
    clients = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(2)]
    try:
        for client in clients:
            client.sendall(GET)
        assert srv.wait_for_requests(2)
        started = time.monotonic()
        srv.stop(timeout=2)
        assert time.monotonic() - started < 2
        assert srv.open_connections == 0
        assert not [t for t in threading.enumerate() if t.name.startswith("sse-")]
        for client in clients:
            while client.recv(65536):  # the server ended both connections
                pass
    finally:
        for client in clients:
            client.close()


def test_a_client_that_leaves_mid_stream_ends_its_handler_quietly(server, capfd):
    server.add_script(Headers(), *[Send(b"data: spam\n\n")] * 2000, Hold())
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
        client.sendall(GET)
        assert client.recv(10)
    assert server.wait_for_idle()
    assert "Traceback" not in capfd.readouterr().err
