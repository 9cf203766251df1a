"""HTTP edge cases from real servers (issue 10), against the scripted server on 127.0.0.1:
several Content-Type lines, many response headers, odd redirects, ids that cannot be sent
as a header, events larger than 1 MiB, cookies."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamvisor.api.facade import Streamvisor
from streamvisor.errors import ConnectError
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
from streamvisor.spec import BreakerPolicy, StreamSpec
from streamvisor.upstream.connection import MAX_RESPONSE_HEADERS, Connection
from streamvisor.upstream.connector import HTTPConnector
from tests.support.actors import CollectorHandle
from tests.support.daemon import running_daemon
from tests.support.sse_server import (
    Close,
    Headers,
    Hold,
    Send,
    SSEServer,
    Status,
    Step,
    WaitFor,
    redirect,
)
from tests.support.tail import run_tail
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(30)

DEADLINE = 5.0
FAST = BackoffPolicy(initial=0.01, max=0.05, multiplier=2.0, jitter=0.0, reset_after=60.0)


def stream(server: SSEServer, path: str = "/events", **kwargs: Any) -> StreamSpec:
    """A supervised stream with fast, exact backoff and no limits that could trip."""
    kwargs.setdefault("backoff", FAST)
    kwargs.setdefault("max_restarts", RestartLimit(count=0))
    kwargs.setdefault("breaker", BreakerPolicy(failures=0))
    kwargs.setdefault("read_timeout", 5.0)
    return StreamSpec(name=kwargs.pop("name", "s"), url=server.url(path), **kwargs)


def status(sv: Streamvisor, name: str = "s") -> dict[str, Any]:
    return dict(sv.status()["streams"][name])


def raw_response(*header_lines: str, body: bytes = b"data: x\n\n") -> Send:
    head = "HTTP/1.1 200 OK\r\n" + "".join(f"{line}\r\n" for line in header_lines)
    return Send(head.encode("latin-1") + b"Connection: close\r\n\r\n" + body)


def spec_for(server: SSEServer, path: str = "/events", **kwargs: Any) -> StreamSpec:
    return StreamSpec(name="edge", url=server.url(path), **kwargs)


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


# -- ids that cannot be sent as they are -----------------------------------------------------


def test_an_id_with_surrounding_whitespace_is_sent_trimmed_on_the_reconnect(
    sse_server: SSEServer, make_sv: Callable[..., Streamvisor]
) -> None:
    sse_server.add_script(Headers(), Send(b"id:  7 \ndata: x\n\n"), Close())
    sse_server.add_script(Headers(), Hold())
    sv = make_sv([stream(sse_server)])
    sv.start()
    assert sse_server.wait_for_requests(2, DEADLINE), "the reconnect never reached the server"
    assert sse_server.requests[1].raw_header("Last-Event-ID") == b"7"


def test_an_id_with_control_characters_is_left_out_with_one_warning(
    sse_server: SSEServer, make_sv: Callable[..., Streamvisor], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="streamvisor")
    sse_server.default = [Headers(), Send(b"id: a\x01b\ndata: x\n\n"), Close()]
    sv = make_sv([stream(sse_server)])
    sv.start()
    assert sse_server.wait_for_requests(4, DEADLINE), "reconnects never reached the server"
    assert [r.raw_header("Last-Event-ID") for r in sse_server.requests[1:4]] == [None] * 3
    warnings = [r for r in caplog.records if "Last-Event-ID" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "control characters" in warnings[0].getMessage()


def test_a_header_that_cannot_be_sent_fails_the_stream_at_once_as_a_local_error(
    sse_server: SSEServer, make_sv: Callable[..., Streamvisor]
) -> None:
    sse_server.default = [Headers(), Hold()]
    sv = make_sv([stream(sse_server, headers={"X-Token": "tok\x01en-secret"})])
    sv.start()
    assert wait_until(lambda: status(sv)["state"] == "failed", DEADLINE)
    error = status(sv)["last_error"]
    assert "cannot build the request" in error and "X-Token" in error
    assert "en-secret" not in error
    assert sse_server.requests == []  # nothing was sent, and nothing was retried
    assert status(sv)["restarts"] == 0


# -- many response headers -------------------------------------------------------------------


def test_a_response_with_more_than_100_headers_is_accepted(
    sse_server: SSEServer, opened: Callable[..., Connection]
) -> None:
    many = [f"X-Debug-{i}: {i}" for i in range(300)]
    sse_server.add_script(raw_response("Content-Type: text/event-stream", *many))
    conn = opened(spec_for(sse_server))
    assert read_all(conn) == b"data: x\n\n"


def test_a_response_past_the_header_limit_names_the_cause(sse_server: SSEServer) -> None:
    too_many = [f"X-Debug-{i}: {i}" for i in range(MAX_RESPONSE_HEADERS + 1)]
    sse_server.add_script(raw_response("Content-Type: text/event-stream", *too_many))
    with pytest.raises(ConnectError, match="too many header lines") as info:
        Connection(spec_for(sse_server)).open()
    assert str(MAX_RESPONSE_HEADERS) in str(info.value)


# -- redirects that cannot be followed -------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Status(302), "HTTP 302 Found redirect with no Location header"),
        (Status(307, {"Location": ""}), "HTTP 307 Temporary Redirect redirect with an empty"),
        (Status(301, {"Location": "   "}), "redirect with an empty Location"),
        (Status(302, {"Location": "ftp://files.example/x"}), "unusable Location"),
        (Status(308, {"Location": "http://"}), "unusable Location"),
        (Status(302, {"Location": "http://127.0.0.1:99999/x"}), "unusable Location"),
    ],
    ids=["missing", "empty", "blank", "ftp", "no host", "bad port"],
)
def test_a_redirect_without_a_usable_location_fails_the_stream_for_good(
    sse_server: SSEServer, make_sv: Callable[..., Streamvisor], answer: Status, reason: str
) -> None:
    sse_server.default = [answer]
    sv = make_sv([stream(sse_server)])
    sv.start()
    assert wait_until(lambda: status(sv)["state"] == "failed", DEADLINE)
    assert reason in status(sv)["last_error"]
    assert len(sse_server.requests) == 1  # no retry loop


def test_a_redirect_loop_fails_the_stream_with_a_clear_reason(
    sse_server: SSEServer, make_sv: Callable[..., Streamvisor]
) -> None:
    sse_server.default = [redirect("/a", 302)]
    sv = make_sv([stream(sse_server, max_redirects=3)])
    sv.start()
    assert wait_until(lambda: status(sv)["state"] == "failed", DEADLINE)
    assert "more than 3 redirects (a redirect loop?)" in status(sv)["last_error"]
    assert len(sse_server.requests) == 4


# -- cookies: one jar per stream ---------------------------------------------------------------


def cookie_script(name: str, value: str) -> list[Step]:
    return [Headers(extra={"Set-Cookie": f"{name}={value}; Path=/"}), Send(b"data: x\n\n"), Close()]


def test_each_stream_sends_back_only_its_own_cookies_across_reconnects(
    sse_server: SSEServer, make_sv: Callable[..., Streamvisor]
) -> None:
    sse_server.default = [Headers(), Hold()]
    one, two = SSEServer().start(), SSEServer().start()
    try:
        one.add_script(*cookie_script("lb", "backend-1"))
        one.add_script(Headers(), Hold())
        two.add_script(*cookie_script("lb", "backend-2"))
        two.add_script(Headers(), Hold())
        # Both on 127.0.0.1: same cookie domain, so only separate jars keep them apart.
        sv = make_sv([stream(one, name="one"), stream(two, name="two")])
        sv.start()
        assert one.wait_for_requests(2, DEADLINE) and two.wait_for_requests(2, DEADLINE)
        assert one.requests[0].headers.get("Cookie") is None
        assert one.requests[1].headers.get("Cookie") == "lb=backend-1"
        assert two.requests[1].headers.get("Cookie") == "lb=backend-2"
    finally:
        one.stop()
        two.stop()


def test_a_cookie_set_by_a_redirect_is_sent_on_the_next_hop_and_the_reconnect(
    sse_server: SSEServer, make_sv: Callable[..., Streamvisor]
) -> None:
    sse_server.add_script(Status(302, {"Location": "/real", "Set-Cookie": "sid=abc; Path=/"}))
    sse_server.add_script(Headers(), Send(b"data: x\n\n"), Close())
    sse_server.add_script(Headers(), Hold())
    sv = make_sv([stream(sse_server)])
    sv.start()
    assert sse_server.wait_for_requests(3, DEADLINE)
    assert [r.headers.get("Cookie") for r in sse_server.requests] == [None, "sid=abc", "sid=abc"]


def test_a_connector_makes_no_cookie_jar_for_a_stream_that_never_gets_a_cookie(
    sse_server: SSEServer,
) -> None:
    sse_server.add_script(Headers(), Send(b"data: x\n\n"))
    connector = HTTPConnector()
    conn = connector(spec_for(sse_server), None)
    try:
        conn.open()
        assert read_all(conn) == b"data: x\n\n"
    finally:
        conn.close()
    assert connector.cookie_jar("edge") is None


# -- big events --------------------------------------------------------------------------------


def test_a_5_mib_event_is_delivered_with_the_default_limit(
    sse_server: SSEServer, make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    big = "x" * (5 << 20)
    sse_server.add_script(Headers(), Send(f"id: 1\ndata: {big}\n\n".encode()), Hold())
    sv = make_sv([stream(sse_server)])
    sv.subscribe(collector.ref)
    sv.start()
    assert collector.wait_for(1, 20.0)
    assert len(collector.events[0].data) == len(big)


def test_an_event_over_max_event_size_fails_the_connection_loudly_and_is_never_skipped(
    sse_server: SSEServer,
    make_sv: Callable[..., Streamvisor],
    collector: CollectorHandle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="streamvisor")
    too_big = Send(b"id: 2\ndata: " + b"y" * 2048 + b"\n\n")
    gate = threading.Event()
    sse_server.add_script(Headers(), Send(b"id: 1\ndata: small\n\n"), WaitFor(gate), too_big)
    sse_server.default = [Headers(), too_big, Close()]
    sv = make_sv([stream(sse_server, max_event_size=1024)])
    sv.subscribe(collector.ref)
    sv.start()
    assert collector.wait_for(1, DEADLINE)
    gate.set()
    assert sse_server.wait_for_requests(3, DEADLINE)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings, "the over-size event was not reported at WARNING"
    assert "max_event_size (1024 bytes)" in warnings[0] and "raise max_event_size" in warnings[0]
    # never skipped: each reconnect resumes before it, so it is asked for again
    assert [r.headers.get("Last-Event-ID") for r in sse_server.requests[1:3]] == ["1", "1"]
    assert collector.ids() == ["1"]


# -- tail: local and redirect failures end it at once ----------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("X-Token: a\x01b-secret", "the value of header X-Token holds control characters"),
        ("X-Name: \u20ac-secret", "the value of header X-Name is not Latin-1 text"),
    ],
)
def test_tail_refuses_a_header_it_cannot_send_as_a_usage_error_before_any_request(
    sse_server: SSEServer, capsys: pytest.CaptureFixture[str], header: str, reason: str
) -> None:
    run = run_tail(capsys, sse_server.url("/"), "-H", header)
    assert run.code == 2
    assert run.err_lines == [f"streamvisor tail: error: argument -H/--header: {reason}"]
    assert "secret" not in run.err
    assert sse_server.requests == []


def test_tail_exits_1_on_a_redirect_without_location(
    sse_server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sse_server.default = [Status(302)]
    run = run_tail(capsys, sse_server.url("/"))
    assert run.code == 1
    assert run.err_lines[-1].endswith("HTTP 302 Found redirect with no Location header")
    assert len(sse_server.requests) == 1


def test_the_daemon_keeps_each_streams_cookies_across_reconnects(
    tmp_path: Path, sse_server: SSEServer
) -> None:
    sse_server.add_script(*cookie_script("lb", "backend-7"))
    sse_server.add_script(Headers(), Hold())
    config = {
        "streams": [
            {"name": "sticky", "url": sse_server.url("/e"), "backoff": {"initial": 0.05}},
            {"name": "other", "url": sse_server.url("/o"), "enabled": False},
        ]
    }
    with running_daemon(tmp_path, config, wait_ready=False) as daemon:
        daemon.wait_for(lambda: len(sse_server.requests) >= 2, "the reconnect")
    assert [r.headers.get("Cookie") for r in sse_server.requests[:2]] == [None, "lb=backend-7"]
