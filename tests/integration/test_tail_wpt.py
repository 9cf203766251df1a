"""web-platform-tests ``eventsource/`` and WHATWG "server-sent events" cases through ``tail``.

Each case serves the bytes the WPT handler (``resources/message.py`` and friends) would send,
through the scripted server, and checks what ``streamvisor tail`` prints. ``message.py``
writes ``message + newline + "\\n"`` and ends the response; a browser then reconnects and
sees the same body again. Here the reconnect gets HTTP 204 instead, so tail exits 0 after
exactly one copy and the whole output can be compared. Every body is also played one byte
per write, so the decoder sees it split at every point the socket happens to cut it.

Where a browser and a non-browser client must differ, the test says so in its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.sse_server import Close, Headers, Hold, Send, SSEServer, Status, Step, redirect
from tests.support.tail import run_tail

pytestmark = pytest.mark.timeout(60)

M = "message"
FAST = ("--backoff-initial", "0.02", "--backoff-max", "0.05")


@pytest.fixture
def server(sse_server: SSEServer) -> SSEServer:
    """The scripted server (conftest): started, and always stopped."""
    return sse_server


@dataclass(frozen=True)
class Case:
    """A body and the events (id, event, data, last_event_id) a browser dispatches."""

    name: str
    body: bytes
    expected: list[tuple[str | None, str, str, str | None]]
    content_type: str = "text/event-stream"


def _msg(message: bytes, newline: bytes = b"\n\n") -> bytes:
    """What WPT ``resources/message.py`` writes: message, newline, then one more LF."""
    return message + newline + b"\n"


LONG = b"x" * 2048
CASES = [
    Case("eventsource-onmessage", _msg(b"data: data"), [(None, M, "data", None)]),
    Case(
        "format-bom",
        _msg(b"\xef\xbb\xbfdata:1\n\n\xef\xbb\xbfdata:2\n\ndata:3"),
        [(None, M, "1", None), (None, M, "3", None)],
    ),
    Case(
        "format-bom-2",
        _msg(b"\xef\xbb\xbf\xef\xbb\xbfdata:1\n\ndata:2\n\ndata:3"),
        [(None, M, "2", None), (None, M, "3", None)],
    ),
    Case(
        "format-comments",
        _msg(
            b"data:1\r:\x00\n:\r\ndata:2\n:"
            + LONG
            + b"\rdata:3\n:data:fail\r:"
            + LONG
            + b"\ndata:4\n",
            b"",
        ),
        [(None, M, "1\n2\n3\n4", None)],
    ),
    Case(
        "format-field-data",
        _msg(b"data:\n\ndata\ndata\n\ndata:test"),
        [(None, M, "", None), (None, M, "\n", None), (None, M, "test", None)],
    ),
    Case(
        "format-field-event",
        _msg(b"event:test\ndata:x\n\ndata:x"),
        [(None, "test", "x", None), (None, M, "x", None)],
    ),
    Case("format-field-event-empty", _msg(b"event: \ndata:data"), [(None, M, "data", None)]),
    Case(
        "format-field-id-3-persists",
        b"id: 1\ndata: 1\n\ndata:2\n\n",
        [("1", M, "1", "1"), (None, M, "2", "1")],
    ),
    Case(
        "format-field-id-3-changes-and-persists",
        b"id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n",
        [("1", M, "1", "1"), ("2", M, "2", "2"), (None, M, "3", "2")],
    ),
    Case(
        "format-field-id-3-resets",
        b"id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",
        [("1", M, "1", "1"), ("", M, "2", ""), (None, M, "3", "")],
    ),
    Case(
        "format-field-parsing",
        _msg(
            b"data:\x00\ndata:  2\rData:1\ndata\x00:2\ndata:1\r\x00data:4\nda-ta:3\rdata_5\n"
            b"data:3\rdata:\r\n data:32\ndata:4\n"
        ),
        [(None, M, "\x00\n 2\n1\n3\n\n4", None)],
    ),
    Case("format-field-retry-empty", _msg(b"retry\ndata:test"), [(None, M, "test", None)]),
    Case(
        "format-field-unknown",
        _msg(b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test"),
        [(None, M, "test\n\ntest", None)],
    ),
    Case(
        "format-leading-space",
        _msg(b"data:\ttest\rdata: \ndata:test"),
        [(None, M, "\ttest\n\ntest", None)],
    ),
    Case(
        "format-newlines",
        _msg(b"data:test\r\ndata\ndata:test\r\n\r", b""),
        [(None, M, "test\n\ntest", None)],
    ),
    Case("format-null-character", _msg(b"data:\x00\n\n"), [(None, M, "\x00", None)]),
    Case(
        "format-utf-8 (charset is ignored)",
        _msg("data:ok\u2026".encode()),
        [(None, M, "ok\u2026", None)],
        "text/event-stream;charset=windows-1252",
    ),
    Case(
        "format-mime-trailing-semicolon",
        _msg(b"data: data"),
        [(None, M, "data", None)],
        "text/event-stream;",
    ),
    Case(
        "content type is case-insensitive",
        _msg(b"data: data"),
        [(None, M, "data", None)],
        "Text/Event-Stream; charset=utf-8",
    ),
    Case(
        "event-data (message2.py, one round)",
        b"data:msg\ndata: msg\n\n:\nfalsefield:msg\n\nfalsefield:msg\nData:data\n\n"
        b"data\n\ndata:end\n\n",
        [(None, M, "msg\nmsg", None), (None, M, "", None), (None, M, "end", None)],
    ),
    Case(
        "format-data-before-final-empty-line",
        _msg(b"retry:100\ndata:test1\n\nid:test\ndata:test2", b""),
        [(None, M, "test1", None)],
    ),
    Case(
        "format-field-id-null (id with NUL is ignored)",
        b"id: \x00\x00\ndata: hello\n\n",
        [(None, M, "hello", None)],
    ),
    Case(
        "invalid utf-8 becomes U+FFFD",
        b"data: \xff\xfe ok\n\ndata: \xe2\x82\n\ndata: \xf0\x80\x80!\n\n",
        [
            (None, M, "\ufffd\ufffd ok", None),
            (None, M, "\ufffd", None),
            (None, M, "\ufffd" * 3 + "!", None),
        ],
    ),
    Case(
        "CR-only line ends",
        b"data: a\r\rid: 2\rdata: b\r\r",
        [(None, M, "a", None), ("2", M, "b", "2")],
    ),
    Case(
        "mixed line ends, LF CR LF is two line ends",
        b"data: a\r\n\r\ndata: b\n\r\ndata: c\r\rdata: d\n\n",
        [(None, M, "a", None), (None, M, "b", None), (None, M, "c", None), (None, M, "d", None)],
    ),
    Case(
        "WHATWG example: stock ticker",
        b"data: YHOO\ndata: +2\ndata: 10\n\n",
        [(None, M, "YHOO\n+2\n10", None)],
    ),
    Case(
        "WHATWG example: id and a final unterminated block",
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n",
        [("1", M, "first event", "1"), ("", M, "second event", "")],
    ),
    Case(
        "WHATWG example: empty data lines",
        b"data\n\ndata\ndata\n\ndata:",
        [(None, M, "", None), (None, M, "\n", None)],
    ),
    Case(
        "WHATWG example: one leading space is removed",
        b"data:test\n\ndata: test\n\ndata:  test\n\n",
        [(None, M, "test", None), (None, M, "test", None), (None, M, " test", None)],
    ),
    Case(
        "WHATWG example: event types",
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
        [
            (None, "add", "73857293", None),
            (None, "remove", "2153", None),
            (None, "add", "113411", None),
        ],
    ),
    Case(
        "a BOM only at the very start, split across writes",
        b"\xef\xbb\xbfdata: a\n\n\xef\xbb\xbfdata: b\n\ndata: c\n\n",
        [(None, M, "a", None), (None, M, "c", None)],
    ),
]


def _as_tuples(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["id"], e["event"], e["data"], e["last_event_id"]) for e in events]


@pytest.mark.parametrize("split", ["whole", "byte-by-byte"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_wpt_and_whatwg_cases_print_what_a_browser_dispatches(
    server: SSEServer, capsys: pytest.CaptureFixture[str], case: Case, split: str
) -> None:
    if split == "whole":
        sends = [Send(case.body)]
    else:
        sends = [Send(case.body[i : i + 1]) for i in range(len(case.body))]
    server.add_script(Headers(content_type=case.content_type), *sends, Close())
    server.add_script(Status(204))

    run = run_tail(capsys, server.url("/"))

    assert run.code == 0, run.err
    assert _as_tuples(run.events) == case.expected


def test_format_data_before_final_empty_line_discards_the_unfinished_id(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """WPT format-data-before-final-empty-line: the browser's second ``test1`` has
    lastEventId "" because ``id:test`` sat in a block the close cut off."""
    body = _msg(b"retry:100\ndata:test1\n\nid:test\ndata:test2", b"")
    server.add_script(Headers(), Send(body), Close())
    server.add_script(Headers(), Send(body), Close())
    server.add_script(Status(204))

    run = run_tail(capsys, server.url("/"))

    assert run.code == 0, run.err
    assert _as_tuples(run.events) == [(None, M, "test1", None)] * 2
    assert all("Last-Event-ID" not in r.headers for r in server.requests)


def test_format_field_id_sends_a_non_ascii_last_event_id_as_utf8(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """WPT format-field-id / format-field-id-2 (resources/last-event-id.py): the id
    U+2026 comes back as the UTF-8 bytes of ``Last-Event-ID``; the server echoes it."""
    server.add_script(Headers(), Send("id: \u2026\nretry: 200\ndata: hello\n\n".encode()), Close())
    server.add_script(Headers(), Send("data: \u2026\n\n".encode()), Close())
    server.add_script(Headers(), Send("data: \u2026\n\n".encode()), Hold())

    run = run_tail(capsys, server.url("/"), "--max-events", "3")

    assert run.code == 0, run.err
    assert _as_tuples(run.events) == [
        ("\u2026", M, "hello", "\u2026"),
        (None, M, "\u2026", "\u2026"),
        (None, M, "\u2026", "\u2026"),
    ]
    assert [r.raw_header("Last-Event-ID") for r in server.requests] == [
        None,
        "\u2026".encode(),
        "\u2026".encode(),
    ]


def test_format_field_id_null_sends_no_last_event_id(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """WPT format-field-id-null: ``id`` with U+0000 is ignored, so the reconnect has no
    Last-Event-ID and the server says hello again (lastEventId "" in a browser, null here:
    the Event contract's "never set")."""
    script: list[Step] = [Headers(), Send(b"id: \x00\x00\nretry: 200\ndata: hello\n\n"), Close()]
    server.add_script(*script)
    server.add_script(*script)
    server.add_script(Status(204))

    run = run_tail(capsys, server.url("/"))

    assert run.code == 0, run.err
    assert _as_tuples(run.events) == [(None, M, "hello", None)] * 2
    assert all(r.raw_header("Last-Event-ID") is None for r in server.requests)


@pytest.mark.parametrize(
    ("name", "message", "expected_gap"),
    [
        ("format-field-retry (leading zero is decimal)", b"retry:0300\ndata:x", 0.3),
        ("format-field-retry-bogus (1000x is ignored)", b"retry:300\nretry:1000x\ndata:x", 0.3),
    ],
)
def test_the_retry_field_sets_the_reconnect_delay_like_a_browser(
    server: SSEServer,
    capsys: pytest.CaptureFixture[str],
    name: str,
    message: bytes,
    expected_gap: float,
) -> None:
    """WPT format-field-retry{,-bogus} with 2000 ms scaled to 300 ms: the reconnect comes
    the retry value after the close (WPT allows 10 %; the bound here allows for load)."""
    server.add_script(Headers(), Send(_msg(message)), Close())
    server.add_script(Headers(), Send(_msg(message)), Hold())

    run = run_tail(capsys, server.url("/"), "--max-events", "2")

    assert run.code == 0, run.err
    gap = server.requests[1].time - server.requests[0].time
    assert expected_gap * 0.95 <= gap < expected_gap + 1.0


def test_request_accept_and_cache_control_are_sent_on_every_request(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """WPT request-accept, request-cache-control (both run twice in WPT)."""
    server.add_script(Headers(), Send(b"data: one\n\n"), Close())
    server.add_script(Headers(), Send(b"data: two\n\n"), Hold())

    run = run_tail(capsys, server.url("/"), "--max-events", "2")

    assert run.code == 0, run.err
    for request in server.requests:
        assert request.headers["Accept"] == "text/event-stream"
        assert request.headers["Cache-Control"] == "no-cache"


def test_request_credentials_analogue_headers_are_sent_on_every_reconnect(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """WPT request-credentials checks that credentials go out again on the reconnect.
    tail's credentials are ``-H`` headers and URL userinfo: both are on every request."""
    server.add_script(Headers(), Send(b"id: 1\nretry: 10\ndata: first\n\n"), Close())
    server.add_script(Headers(), Send(b"id: 2\ndata: second\n\n"), Hold())
    url = server.url("/").replace("http://", "http://user:pw@")

    run = run_tail(capsys, url, "-H", "X-Api-Key: k1", "--max-events", "2")

    assert run.code == 0, run.err
    assert run.data == ["first", "second"]
    for request in server.requests:
        assert request.headers["X-Api-Key"] == "k1"
        assert request.headers["Authorization"] == "Basic dXNlcjpwdw=="


def test_eventsource_reconnect_status_reconnect_with_a_cookie(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """WPT eventsource-reconnect (resources/status-reconnect.py?status=200&ok_first): the
    first answer sets a cookie and says ``ok``; the reconnect carries the cookie and gets
    ``data``. tail keeps cookies for its one stream, as the browser does."""
    server.add_script(
        Headers(extra={"Set-Cookie": "request2=200; HttpOnly"}),
        Send(b"retry: 2\ndata: ok\n\n"),
        Close(),
    )
    server.add_script(Headers(), Send(b"data: data\n\n"), Hold())

    run = run_tail(capsys, server.url("/"), "--max-events", "2")

    assert run.code == 0, run.err
    assert run.data == ["ok", "data"]
    assert server.requests[1].headers["Cookie"] == "request2=200"


def test_reconnect_fail_ends_cleanly_on_204_after_reconnecting(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """WPT resources/reconnect-fail.py: opened, reconnected, then 204 (its body is never
    seen): the browser closes; tail exits 0."""
    server.add_script(Headers(), Send(b"retry: 2\ndata: opened\n\n"), Close())
    server.add_script(Headers(), Send(b"data: reconnected\n\n"), Close())
    server.add_script(Status(204, {"Content-Type": "text/event-stream"}, b"data: closed\n\n"))

    run = run_tail(capsys, server.url("/"))

    assert run.code == 0, run.err
    assert run.data == ["opened", "reconnected"]


@pytest.mark.parametrize("status", [205, 210, 299, 404, 410])
def test_request_status_error_fails_with_exit_1_and_prints_no_event(
    server: SSEServer, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    """WPT request-status-error: the body ``data: data`` of a non-200 answer is never
    dispatched and the source closes (tail: exit 1, one stderr line, one request)."""
    server.add_script(Status(status, {"Content-Type": "text/event-stream"}, b"data: data\n\n"))

    run = run_tail(capsys, server.url("/"), *FAST)

    assert run.code == 1
    assert run.out == ""
    assert len(run.err_lines) == 1 and str(status) in run.err_lines[0], run.err
    assert len(server.requests) == 1


def test_request_status_error_204_closes_with_exit_0(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """WPT request-status-error (204): the source closes; for tail that is the normal end."""
    server.add_script(Status(204, {"Content-Type": "text/event-stream"}))

    run = run_tail(capsys, server.url("/"))

    assert (run.code, run.out, run.err) == (0, "", "")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_is_retried_unlike_a_browser(
    server: SSEServer, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    """Deliberate difference. WHATWG fails the connection on any status but 200, and WPT
    request-status-error expects a 503 to close the EventSource for good. DESIGN.md makes
    5xx retryable: a daemon (and tail, which runs the same supervision) must ride out a
    restarting upstream. The 5xx body is never printed; the reconnect's events are."""
    server.add_script(Status(status, {"Content-Type": "text/event-stream"}, b"data: data\n\n"))
    server.add_script(Headers(), Send(b"data: back\n\n"), Hold())

    run = run_tail(capsys, server.url("/"), *FAST, "--max-events", "1")

    assert run.code == 0, run.err
    assert run.data == ["back"]
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("format-mime-valid-bogus", "text/x-bogus"),
        ("format-mime-bogus", "x/x"),
        ("no content type", None),
        ("event-stream as a parameter only", "text/plain; x=text/event-stream"),
    ],
)
def test_a_wrong_content_type_fails_and_prints_no_event(
    server: SSEServer, capsys: pytest.CaptureFixture[str], name: str, content_type: str | None
) -> None:
    server.add_script(Headers(content_type=content_type), Send(_msg(b"data: data")), Close())

    run = run_tail(capsys, server.url("/"), *FAST)

    assert run.code == 1
    assert run.out == ""
    assert len(run.err_lines) == 1, run.err
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_request_redirect_is_followed(
    server: SSEServer, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    """WPT request-redirect: the source opens at the redirect's target."""
    server.add_script(redirect("/target", status))
    server.add_script(Headers(), Send(_msg(b"data: data")), Hold())

    run = run_tail(capsys, server.url("/start"), "--max-events", "1")

    assert run.code == 0, run.err
    assert run.data == ["data"]
    assert [r.path for r in server.requests] == ["/start", "/target"]
