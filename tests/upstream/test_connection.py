"""``Connection`` against the real scripted server: bytes, headers, errors, interrupts."""

from __future__ import annotations

import gzip
import json
import ssl
import subprocess
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from streamvisor.errors import (
    ConnectError,
    ContentTypeError,
    HTTPStatusError,
    ReadTimeoutError,
    RedirectError,
)
from streamvisor.spec import StreamSpec
from streamvisor.upstream.connection import Connection
from tests.support.sse_server import (
    Close,
    Headers,
    Hold,
    Pause,
    Reset,
    Send,
    SSEServer,
    Status,
    WaitFor,
    redirect,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def server(sse_server: SSEServer) -> SSEServer:
    """The shared scripted server (conftest), started and always stopped."""
    return sse_server


def spec_for(server: SSEServer, path: str = "/events", **kwargs: Any) -> StreamSpec:
    return StreamSpec(name="test", url=server.url(path), **kwargs)


def read_all(conn: Connection, limit: int = 1000) -> bytes:
    out = b""
    for _ in range(limit):
        chunk = conn.read()
        if not chunk:
            return out
        out += chunk
    raise AssertionError("stream did not end")


def start_reader(conn: Connection) -> tuple[threading.Thread, threading.Event, list[object]]:
    """A thread that reads until b"" or an error; ``done`` is set when it leaves.

    ``results`` collects each chunk, then b"" or the exception that ended the reads.
    """
    done = threading.Event()
    results: list[object] = []

    def run() -> None:
        try:
            while chunk := conn.read():
                results.append(chunk)
            results.append(b"")
        except Exception as exc:
            results.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True, name="test-reader")
    thread.start()
    return thread, done, results


def client_threads() -> int:
    """Live threads, not counting the test server's own."""
    return sum(1 for t in threading.enumerate() if not t.name.startswith("sse-"))


# --- bytes ---------------------------------------------------------------------------


def test_a_close_delimited_stream_yields_every_byte_then_empty_bytes(server, opened):
    server.add_script(Headers(), Send(b"data: one\n\n"), Send(b"data: two\n\n"), Close())
    conn = opened(spec_for(server))
    assert conn.status == 200
    assert conn.content_type == "text/event-stream"
    assert read_all(conn) == b"data: one\n\ndata: two\n\n"
    assert conn.read() == b""


def test_each_chunk_is_handed_out_as_soon_as_it_arrives(server, opened):
    sent = threading.Event()
    server.add_script(Headers(), Send(b"data: first\n\n"), WaitFor(sent), Send(b"data: 2\n\n"))
    conn = opened(spec_for(server))
    assert conn.read() == b"data: first\n\n"  # would block forever if read waited for more
    sent.set()
    assert read_all(conn) == b"data: 2\n\n"


def test_a_chunked_stream_is_decoded_chunk_by_chunk(server, opened):
    step = threading.Event()
    server.add_script(
        Headers(chunked=True), Send(b"data: a\n\n"), WaitFor(step), Send(b"data: b\n\n"), Close()
    )
    conn = opened(spec_for(server))
    assert conn.read() == b"data: a\n\n"
    step.set()
    assert read_all(conn) == b"data: b\n\n"


def test_a_gzip_encoded_stream_is_decoded_as_it_arrives(server, opened):
    compressor = zlib.compressobj(wbits=31)  # gzip container
    first = compressor.compress(b"data: zipped\n\n") + compressor.flush(zlib.Z_SYNC_FLUSH)
    rest = compressor.compress(b"data: more\n\n") + compressor.flush()
    step = threading.Event()
    server.add_script(
        Headers(extra={"Content-Encoding": "gzip"}), Send(first), WaitFor(step), Send(rest)
    )
    conn = opened(spec_for(server))
    assert conn.read() == b"data: zipped\n\n"
    step.set()
    assert read_all(conn) == b"data: more\n\n"
    assert gzip.decompress(first + rest) == b"data: zipped\n\ndata: more\n\n"


# --- request headers and body ---------------------------------------------------------


def test_accept_and_cache_control_are_sent(server, opened):
    server.add_script(Headers())
    opened(spec_for(server))
    assert server.wait_for_requests(1)
    request = server.requests[0]
    assert request.method == "GET"
    assert request.path == "/events"
    assert request.headers["Accept"] == "text/event-stream"
    assert request.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("last_event_id", [None, ""])
def test_no_last_event_id_header_is_sent_without_an_id(server, opened, last_event_id):
    server.add_script(Headers())
    opened(spec_for(server), last_event_id)
    assert server.wait_for_requests(1)
    assert server.requests[0].raw_header("Last-Event-ID") is None


@pytest.mark.parametrize("last_event_id", ["42", "évènement", "日本-7", "emoji-😀"])
def test_the_last_event_id_is_sent_as_utf8_bytes(server, opened, last_event_id):
    server.add_script(Headers())
    opened(spec_for(server), last_event_id)
    assert server.wait_for_requests(1)
    assert server.requests[0].raw_header("last-event-id") == last_event_id.encode("utf-8")


def test_a_post_body_and_its_content_type_are_sent_identically_on_every_attempt(server):
    server.add_script(Headers())
    spec = spec_for(server, method="POST", body={"subscribe": ["a", "b"]})
    for _ in range(2):
        conn = Connection(spec)
        try:
            conn.open()
        finally:
            conn.close()
    assert server.wait_for_requests(2)
    first, second = server.requests
    for request in (first, second):
        assert request.method == "POST"
        assert json.loads(request.body) == {"subscribe": ["a", "b"]}
        assert request.headers["Content-Type"] == "application/json"
    assert first.body == second.body


def test_a_header_callable_is_called_again_for_each_attempt(server):
    server.add_script(Headers())
    tokens = iter(["token-1", "token-2"])
    spec = spec_for(server, headers=lambda: {"Authorization": f"Bearer {next(tokens)}"})
    for _ in range(2):
        conn = Connection(spec)
        try:
            conn.open()
        finally:
            conn.close()
    assert server.wait_for_requests(2)
    sent = [r.headers["Authorization"] for r in server.requests]
    assert sent == ["Bearer token-1", "Bearer token-2"]


# --- status and content type ---------------------------------------------------------


def test_a_204_means_the_server_wants_no_stream(server):
    server.add_script(Status(204))
    with pytest.raises(HTTPStatusError) as info:
        Connection(spec_for(server)).open()
    assert info.value.status == 204
    assert info.value.retry_after is None


@pytest.mark.parametrize(
    ("code", "headers", "retry_after"),
    [(404, {}, None), (503, {"Retry-After": "12"}, 12.0), (429, {"Retry-After": "x"}, None)],
)
def test_an_error_status_carries_its_code_and_retry_after(server, code, headers, retry_after):
    server.add_script(Status(code, headers, b"nope"))
    conn = Connection(spec_for(server))
    with pytest.raises(HTTPStatusError) as info:
        conn.open()
    assert (info.value.status, info.value.retry_after) == (code, retry_after)
    assert conn.status == code
    assert server.wait_for_idle()  # the response was released


@pytest.mark.parametrize("content_type", ["text/html", None, "text/event-streams"])
def test_a_wrong_content_type_is_refused(server, content_type):
    server.add_script(Headers(content_type=content_type), Send(b"<html>"))
    with pytest.raises(ContentTypeError) as info:
        Connection(spec_for(server)).open()
    assert info.value.content_type == content_type
    assert server.wait_for_idle()


def test_the_content_type_essence_is_compared_case_insensitively(server, opened):
    server.add_script(Headers(content_type=" Text/Event-Stream ; charset=utf-8"), Send(b"x"))
    assert read_all(opened(spec_for(server))) == b"x"


# --- redirects -----------------------------------------------------------------------


def test_a_307_redirect_is_followed_with_the_same_method_and_body(server, opened):
    server.add_script(redirect("/moved", 307))
    server.add_script(Headers(), Send(b"data: here\n\n"))
    conn = opened(spec_for(server, method="POST", body="hello"))
    assert read_all(conn) == b"data: here\n\n"
    assert [(r.method, r.path, r.body) for r in server.requests] == [
        ("POST", "/events", b"hello"),
        ("POST", "/moved", b"hello"),
    ]


def test_a_redirect_loop_is_a_redirect_error(server):
    server.add_script(redirect("/events", 302))
    with pytest.raises(RedirectError, match=r"more than 3 redirects \(a redirect loop\?\)"):
        Connection(spec_for(server, max_redirects=3)).open()
    assert len(server.requests) == 4
    assert server.wait_for_idle()


def test_max_redirects_zero_refuses_any_redirect(server):
    server.add_script(redirect("/elsewhere", 301))
    with pytest.raises(RedirectError, match="more than 0 redirects"):
        Connection(spec_for(server, max_redirects=0)).open()


# --- timeouts and broken connections ---------------------------------------------------


def test_a_silent_server_causes_a_read_timeout(server, opened):
    server.add_script(Headers(), Send(b": hi\n\n"), Hold())
    conn = opened(spec_for(server, read_timeout=0.3))
    assert conn.read() == b": hi\n\n"
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        conn.read()
    assert 0.25 <= time.monotonic() - started < 2.0


def test_headers_that_never_come_cause_a_read_timeout_in_open(server):
    never = threading.Event()
    server.add_script(WaitFor(never), Headers())
    with pytest.raises(ReadTimeoutError):
        Connection(spec_for(server, read_timeout=0.3)).open()


def test_comments_keep_a_slow_stream_alive(server, opened):
    pings = [step for _ in range(6) for step in (Pause(0.1), Send(b": ping\n"))]
    server.add_script(Headers(), *pings, Send(b"data: end\n\n"), Close())
    conn = opened(spec_for(server, read_timeout=0.5))
    assert read_all(conn) == b": ping\n" * 6 + b"data: end\n\n"


def test_a_refused_connection_is_a_connect_error(refusing_port: int):
    spec = StreamSpec(name="t", url=f"http://127.0.0.1:{refusing_port}/", connect_timeout=2)
    with pytest.raises(ConnectError, match="refused"):
        Connection(spec).open()


def test_a_missing_ca_bundle_is_named_not_just_oserror(refusing_port: int, tmp_path: Path):
    missing = tmp_path / "ca.pem"
    spec = StreamSpec(name="t", url=f"https://127.0.0.1:{refusing_port}/", verify=str(missing))
    with pytest.raises(ConnectError, match="CA certificate bundle, invalid path") as info:
        Connection(spec).open()
    assert str(missing) in str(info.value)


def test_a_reset_mid_stream_ends_the_stream_or_raises_connect_error(server, opened):
    server.add_script(Headers(), Send(b"data: a\n\n"), Reset())
    conn = opened(spec_for(server))
    assert conn.read() == b"data: a\n\n"
    try:
        tail = read_all(conn)
    except ConnectError:
        return
    assert tail == b""


def test_a_truncated_chunked_body_is_a_connect_error(server, opened):
    # framed by hand: a whole chunk, then a chunk cut short by a reset
    server.add_script(
        Headers(extra={"Transfer-Encoding": "chunked"}),
        Send(b"9\r\ndata: a\n\n\r\n"),
        Send(b"5\r\nab"),
        Reset(),
    )
    conn = opened(spec_for(server))
    with pytest.raises(ConnectError):
        read_all(conn)


# --- interrupt and close -----------------------------------------------------------------


# The socket sits in different places: http.client takes it over for close-delimited
# bodies and for "Connection: close"; urllib3 keeps it for a keep-alive chunked body.
FRAMINGS = {
    "close-delimited": Headers(),
    "chunked-close": Headers(chunked=True),
    "chunked-keep-alive": Headers(chunked=True, extra={"Connection": "keep-alive"}),
}


@pytest.mark.parametrize("framing", FRAMINGS)
def test_interrupt_unblocks_a_read_in_another_thread_which_then_ends_cleanly(
    server, opened, framing
):
    server.add_script(FRAMINGS[framing], Send(b"data: a\n\n"), Hold())
    conn = opened(spec_for(server))
    assert conn.read() == b"data: a\n\n"
    thread, done, results = start_reader(conn)
    assert not done.wait(0.2)  # the server is silent: the reader is blocked
    started = time.monotonic()
    conn.interrupt()
    assert done.wait(1.0), "interrupt() did not unblock the read within 1 s"
    assert time.monotonic() - started < 1.0
    thread.join(1.0)
    assert results == [b""]
    assert conn.interrupted
    assert conn.read() == b""
    conn.close()
    assert server.wait_for_idle()


def test_close_from_another_thread_also_ends_a_blocked_read_cleanly(server, opened):
    server.add_script(Headers(), Hold())
    conn = opened(spec_for(server))
    thread, done, results = start_reader(conn)
    closer = threading.Thread(target=conn.close)
    closer.start()
    assert done.wait(1.0)
    closer.join(1.0)
    thread.join(1.0)
    assert not closer.is_alive()
    assert results == [b""]
    conn.close()  # idempotent


def test_interrupt_before_open_means_no_request_and_an_empty_read(server):
    server.add_script(Headers(), Send(b"x"))
    conn = Connection(spec_for(server))
    conn.interrupt()
    conn.open()
    assert conn.read() == b""
    assert not server.wait_for_requests(1, timeout=0.2)
    conn.close()


def test_interrupt_while_open_waits_for_headers_makes_open_return_quietly(server):
    answer = threading.Event()
    server.add_script(WaitFor(answer), Headers(), Send(b"data: late\n\n"), Hold())
    conn = Connection(spec_for(server))
    errors: list[BaseException] = []
    finished = threading.Event()

    def run_open() -> None:
        try:
            conn.open()
        except BaseException as exc:
            errors.append(exc)
        finally:
            finished.set()

    opener = threading.Thread(target=run_open)
    opener.start()
    try:
        assert server.wait_for_requests(1)
        conn.interrupt()
        answer.set()
        assert finished.wait(2.0)
    finally:
        answer.set()
        opener.join(2.0)
    assert errors == []
    assert conn.read() == b""
    conn.close()
    assert server.wait_for_idle()


def test_open_twice_and_read_before_open_are_programming_errors(server):
    server.add_script(Headers())
    conn = Connection(spec_for(server))
    with pytest.raises(RuntimeError):
        conn.read()
    try:
        conn.open()
        with pytest.raises(RuntimeError):
            conn.open()
    finally:
        conn.close()


def test_fifty_open_interrupt_close_cycles_leak_no_thread_and_no_connection(server):
    server.add_script(Headers(), Send(b"data: a\n\n"), Hold())
    baseline = client_threads()
    for _ in range(50):
        conn = Connection(spec_for(server))
        conn.open()
        thread, done, _results = start_reader(conn)
        conn.interrupt()
        assert done.wait(1.0)
        thread.join(1.0)
        conn.close()
    assert server.wait_for_requests(50)
    assert server.wait_for_idle(), f"{server.open_connections} connections still open"
    assert server.connections_accepted == 50
    assert client_threads() == baseline


# --- secrets ---------------------------------------------------------------------------


def test_url_credentials_never_appear_in_error_messages(server):
    server.add_script(redirect("/events", 302))
    url = server.url("/events").replace("http://", "http://alice:s3cret-pw@")
    errors: list[BaseException] = []
    for spec in (
        StreamSpec(name="t", url=url, max_redirects=1),
        StreamSpec(name="t", url="http://alice:s3cret-pw@127.0.0.1:1/x", connect_timeout=2),
    ):
        with pytest.raises((ConnectError, RedirectError)) as info:
            Connection(spec).open()
        errors.append(info.value)
    for error in errors:
        assert "s3cret-pw" not in str(error)
        assert "s3cret-pw" not in repr(error)
        assert "alice:***@" in str(error)
    assert server.requests[0].headers["Authorization"].startswith("Basic ")


# --- TLS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
                *("-addext", "subjectAltName=IP:127.0.0.1"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl cannot make a test certificate: {exc}")
    return cert, key


def test_interrupt_unblocks_a_read_over_tls(tls_files):
    cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with SSEServer([[Headers(), Send(b"data: secure\n\n"), Hold()]], ssl_context=context) as srv:
        conn = Connection(StreamSpec(name="t", url=srv.url("/"), verify=str(cert)))
        try:
            conn.open()
            assert conn.read() == b"data: secure\n\n"
            thread, done, results = start_reader(conn)
            conn.interrupt()
            assert done.wait(1.0)
            thread.join(1.0)
            assert results == [b""]
        finally:
            conn.close()
        assert srv.wait_for_idle()
