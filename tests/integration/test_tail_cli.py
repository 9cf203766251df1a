"""``streamvisor tail`` against the scripted server: output form, exit codes, reconnects.

The contract (DESIGN "Command line"): JSONL Events with ``stream`` = ``"tail"``; exit 0 after
``--max-events`` or on HTTP 204, 1 on a permanent failure with one stderr line, 2 on usage
errors, 130 on Ctrl-C; logs on stderr only. Most runs are in-process through ``main(argv)``;
signals, pipes and the locale need a real subprocess.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from tests.support.sse_server import Close, Headers, Hold, Send, SSEServer, Status, Step, WaitFor
from tests.support.tail import EVENT_KEYS, RFC3339_UTC, run_tail, tail_argv, tail_process

pytestmark = pytest.mark.timeout(60)

FAST = ("--backoff-initial", "0.02", "--backoff-max", "0.05")
THE_END: list[Step] = [Status(204)]


@pytest.fixture
def server(sse_server: SSEServer) -> SSEServer:
    """The scripted server (conftest): started, and always stopped."""
    return sse_server


def _stream(
    *steps: Send | Hold | Close | WaitFor, content_type: str = "text/event-stream"
) -> list[Step]:
    return [Headers(content_type=content_type), *steps]


# -- output form ---------------------------------------------------------------------------
def test_each_event_is_one_json_line_with_exactly_the_event_keys(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_script(
        *_stream(Send(b"id: 7\nevent: tick\ndata: a\ndata: b\n\n"), Send(b"data: c\n\n"), Close())
    )
    server.add_script(*THE_END)
    before = dt.datetime.now(dt.UTC)

    run = run_tail(capsys, server.url("/"))

    assert run.code == 0, run.err
    assert [list(json.loads(line)) for line in run.lines] == [EVENT_KEYS, EVENT_KEYS]
    first, second = run.events
    assert {k: first[k] for k in EVENT_KEYS[:5]} == {
        "stream": "tail",
        "id": "7",
        "event": "tick",
        "data": "a\nb",
        "last_event_id": "7",
    }
    assert {k: second[k] for k in EVENT_KEYS[:5]} == {
        "stream": "tail",
        "id": None,
        "event": "message",
        "data": "c",
        "last_event_id": "7",
    }
    for event in run.events:
        assert RFC3339_UTC.match(event["received_at"]), event["received_at"]
        when = dt.datetime.fromisoformat(event["received_at"].replace("Z", "+00:00"))
        assert when.utcoffset() == dt.timedelta(0)
        assert before - dt.timedelta(seconds=1) <= when <= dt.datetime.now(dt.UTC)


def test_text_format_prints_the_data_prefixed_by_a_non_default_event_type(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_script(*_stream(Send(b"event: tick\ndata: x\n\ndata: y\ndata: z\n\n"), Close()))
    server.add_script(*THE_END)

    run = run_tail(capsys, server.url("/"), "--format", "text")

    assert run.code == 0, run.err
    assert run.out == "tick: x\ny\nz\n"


def test_max_events_exits_after_exactly_n_lines_when_one_chunk_carries_more(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_script(*_stream(Send(b"".join(b"data: %d\n\n" % i for i in range(10))), Hold()))

    run = run_tail(capsys, server.url("/"), "--max-events", "3")

    assert run.code == 0, run.err
    assert run.data == ["0", "1", "2"]
    assert len(server.requests) == 1


def test_every_event_before_a_clean_close_is_printed_before_exit(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    many = b"".join(b"id: %d\ndata: %d\n\n" % (i, i) for i in range(20000))
    server.add_script(*_stream(Send(many), Close()))
    server.add_script(*THE_END)

    run = run_tail(capsys, server.url("/"), deadline=30)

    assert run.code == 0, run.err
    assert run.data == [str(i) for i in range(20000)]


def test_a_replay_after_reconnect_is_printed_once(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_script(*_stream(Send(b"id: 1\ndata: a\n\nid: 2\ndata: b\n\n"), Close()))
    server.add_script(*_stream(Send(b"id: 2\ndata: b\n\nid: 3\ndata: c\n\n"), Close()))
    server.add_script(*THE_END)

    run = run_tail(capsys, server.url("/"))

    assert run.code == 0, run.err
    assert [e["id"] for e in run.events] == ["1", "2", "3"]
    assert server.requests[1].headers.get("Last-Event-ID") == "2"


def test_non_ascii_data_is_printed_as_utf8_and_line_separators_do_not_split_lines() -> None:
    body = "data: ok\u2026 a\u2028b\u2029c\u0085d\n\n".encode()
    script: list[list[Step]] = [_stream(Send(body), Close()), THE_END]
    with SSEServer([*script, *script]) as server:
        for fmt, expected in [("jsonl", None), ("text", "ok\u2026 a\u2028b\u2029c\u0085d\n")]:
            with tail_process(
                server.url("/"), "--format", fmt, env={"PYTHONIOENCODING": "ascii"}
            ) as tail:
                assert tail.wait() == 0, tail.stderr()
                out = tail.remaining_output()
            if expected is None:
                (line,) = out.decode("utf-8").splitlines()  # U+2028 etc. are escaped
                assert json.loads(line)["data"] == "ok\u2026 a\u2028b\u2029c\u0085d"
            else:
                assert out.decode("utf-8") == expected


# -- ending --------------------------------------------------------------------------------
def test_http_204_exits_0_without_output(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_script(Status(204, {"Content-Type": "text/event-stream"}))

    run = run_tail(capsys, server.url("/"))

    assert (run.code, run.out, run.err) == (0, "", "")
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [401, 404, 410])
def test_a_permanent_status_exits_1_with_one_line_naming_it_after_one_request(
    server: SSEServer, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    server.add_script(Status(status, {"Content-Type": "text/event-stream"}, b"data: no\n\n"))

    run = run_tail(capsys, server.url("/"), *FAST)

    assert run.code == 1
    assert run.out == ""
    assert len(run.err_lines) == 1, run.err
    assert str(status) in run.err_lines[0]
    assert "Traceback" not in run.err
    assert len(server.requests) == 1


def test_a_wrong_content_type_exits_1_with_one_line(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_script(*_stream(Send(b"data: no\n\n"), Close(), content_type="text/plain"))

    run = run_tail(capsys, server.url("/"), *FAST)

    assert run.code == 1
    assert run.out == ""
    assert len(run.err_lines) == 1, run.err
    assert "content-type" in run.err_lines[0]
    assert len(server.requests) == 1


def test_max_attempts_against_a_server_that_always_fails_exits_1_retries_exhausted(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_script(Status(500))

    run = run_tail(capsys, server.url("/"), *FAST, "--max-attempts", "2")

    assert run.code == 1
    # The failed attempt before the last is shown at WARNING (issue 10), then one closing line.
    *warnings, last = run.err_lines
    assert [" WARNING " in line and "attempt 1," in line for line in warnings] == [True], run.err
    assert "retries exhausted" in last
    assert "500" in last
    assert len(server.requests) == 2


def test_connection_refused_with_max_attempts_exits_1_with_one_line(
    refusing_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_tail(capsys, f"http://127.0.0.1:{refusing_port}/", *FAST, "--max-attempts", "2")

    assert run.code == 1
    *warnings, last = run.err_lines
    assert [" WARNING " in line and "Connection refused" in line for line in warnings] == [True]
    assert "refused" in last.lower()
    assert "Traceback" not in run.err


def test_many_failures_in_a_row_are_retried_within_backoff_max_without_max_attempts(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """No restart-intensity limit and no breaker cool-down: "retry for ever" means it."""
    for _ in range(25):
        server.add_script(Status(503))
    server.add_script(*_stream(Send(b"data: finally\n\n"), Hold()))

    run = run_tail(capsys, server.url("/"), *FAST, "--max-events", "1", deadline=20)

    assert run.code == 0, run.err
    assert run.data == ["finally"]
    assert len(server.requests) == 26


# -- reconnecting --------------------------------------------------------------------------
def test_reconnect_after_a_close_sends_the_last_event_id(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_script(*_stream(Send(b"id: 1\ndata: a\n\n"), Close()))
    server.add_script(*_stream(Send(b"data: b\n\n"), Hold()))

    run = run_tail(capsys, server.url("/"), "--max-events", "2")

    assert run.code == 0, run.err
    assert [(e["data"], e["last_event_id"]) for e in run.events] == [("a", "1"), ("b", "1")]
    assert "Last-Event-ID" not in server.requests[0].headers
    assert server.requests[1].headers["Last-Event-ID"] == "1"


def test_last_event_id_option_is_sent_first_and_again_after_a_close(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_script(*_stream(Send(b"data: a\n\n"), Close()))
    server.add_script(*_stream(Send(b"data: b\n\n"), Hold()))

    run = run_tail(capsys, server.url("/"), "--last-event-id", "41", "--max-events", "2")

    assert run.code == 0, run.err
    assert [r.headers.get("Last-Event-ID") for r in server.requests] == ["41", "41"]
    assert [e["last_event_id"] for e in run.events] == ["41", "41"]


def test_an_empty_id_resets_and_the_next_request_has_no_last_event_id(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_script(*_stream(Send(b"id: 1\ndata: a\n\nid:\ndata: b\n\n"), Close()))
    server.add_script(*_stream(Send(b"data: c\n\n"), Hold()))

    run = run_tail(capsys, server.url("/"), "--max-events", "3")

    assert run.code == 0, run.err
    assert [e["last_event_id"] for e in run.events] == ["1", "", ""]
    assert "Last-Event-ID" not in server.requests[1].headers


def test_the_retry_field_sets_the_reconnect_delay(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_script(*_stream(Send(b"retry: 400\ndata: a\n\n"), Close()))
    server.add_script(*_stream(Send(b"data: b\n\n"), Hold()))

    run = run_tail(capsys, server.url("/"), "--max-events", "2")

    assert run.code == 0, run.err
    gap = server.requests[1].time - server.requests[0].time
    assert 0.4 <= gap < 2.0


def test_a_clean_close_after_events_waits_the_initial_delay_not_the_growing_backoff(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # After any end of a response, wait the reconnection time (issue 10): a one-shot server
    # is polled every --backoff-initial seconds, never hammered, and never backed off.
    server.default = _stream(Send(b"data: a\n\n"), Close())
    args = ("--backoff-initial", "0.3", "--backoff-jitter", "0", "--max-events", "4")

    run = run_tail(capsys, server.url("/"), *args, "--log-level", "info")

    assert run.code == 0, run.err
    gaps = [b.time - a.time for a, b in zip(server.requests, server.requests[1:], strict=False)]
    assert len(gaps) >= 3
    assert all(gap >= 0.3 for gap in gaps[:3]), gaps  # polled, not hammered
    planned = re.findall(r"server closed the stream; reconnecting in (\d+\.\d+)s", run.err)
    assert planned[:3] == ["0.30"] * 3  # and never backed off


def test_a_clean_close_after_events_waits_the_servers_retry_instead_of_the_initial_delay(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_script(*_stream(Send(b"retry: 100\ndata: a\n\n"), Close()))
    server.add_script(*_stream(Send(b"data: b\n\n"), Hold()))

    run = run_tail(capsys, server.url("/"), "--backoff-initial", "5", "--max-events", "2")

    assert run.code == 0, run.err
    assert 0.1 <= server.requests[1].time - server.requests[0].time < 2.5


def test_headers_method_and_body_are_sent_on_every_attempt(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_script(*_stream(Send(b"data: a\n\n"), Close()))
    server.add_script(Status(502))
    server.add_script(*_stream(Send(b"data: b\n\n"), Hold()))

    run = run_tail(
        capsys,
        server.url("/feed"),
        *FAST,
        "-H",
        "X-Token: abc",
        "-H",
        "X-Other:  two words ",
        "--method",
        "post",
        "--data",
        '{"q": 1}',
        "--max-events",
        "2",
    )

    assert run.code == 0, run.err
    assert len(server.requests) == 3
    for request in server.requests:
        assert (request.method, request.path, request.body) == ("POST", "/feed", b'{"q": 1}')
        assert request.headers["X-Token"] == "abc"
        assert request.headers["X-Other"] == "two words"
        assert request.headers["Accept"] == "text/event-stream"
        assert request.headers["Cache-Control"] == "no-cache"


def test_cookies_set_by_the_server_come_back_on_the_reconnect(
    server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_script(
        Headers(extra={"Set-Cookie": "session=s1; Path=/"}), Send(b"data: a\n\n"), Close()
    )
    server.add_script(*_stream(Send(b"data: b\n\n"), Hold()))

    run = run_tail(capsys, server.url("/"), "--max-events", "2")

    assert run.code == 0, run.err
    assert "Cookie" not in server.requests[0].headers
    assert server.requests[1].headers["Cookie"] == "session=s1"


# -- usage ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["--backoff-jitter", "2", "http://127.0.0.1:9/"],
        ["-H", "no colon here", "http://127.0.0.1:9/"],
        ["-H", "Bad Name: x", "http://127.0.0.1:9/"],
        [],
        ["--max-events", "0", "http://127.0.0.1:9/"],
        ["--no-such-option", "http://127.0.0.1:9/"],
        ["ftp://127.0.0.1:9/"],
        ["--method", "PUT", "http://127.0.0.1:9/"],
        ["--read-timeout", "-1", "http://127.0.0.1:9/"],
    ],
    ids=[
        "jitter-2",
        "header-without-colon",
        "header-name-with-space",
        "missing-url",
        "max-events-0",
        "unknown-option",
        "ftp-url",
        "method-put",
        "negative-timeout",
    ],
)
def test_a_usage_error_exits_2_with_one_line_and_no_traceback(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    run = run_tail(capsys, *args)

    assert run.code == 2
    assert run.out == ""
    assert len(run.err_lines) == 1, run.err
    assert "Traceback" not in run.err


# -- as a subprocess -----------------------------------------------------------------------
def test_a_subprocess_prints_jsonl_and_exits_0_at_the_end_of_the_stream(
    server: SSEServer,
) -> None:
    server.add_script(*_stream(Send(b"id: 1\ndata: one\n\ndata: two\n\n"), Close()))
    server.add_script(*THE_END)

    with tail_process(server.url("/")) as tail:
        first, second = tail.next_line(), tail.next_line()
        assert tail.wait() == 0
        assert tail.stderr() == ""

    assert [json.loads(first)["data"], json.loads(second)["data"]] == ["one", "two"]
    assert json.loads(first)["stream"] == "tail"


def test_ctrl_c_exits_130_promptly_without_a_traceback(server: SSEServer) -> None:
    server.add_script(*_stream(Send(b"data: one\n\n"), Hold()))

    with tail_process(server.url("/")) as tail:
        assert json.loads(tail.next_line())["data"] == "one"
        sent = time.monotonic()
        tail.proc.send_signal(signal.SIGINT)
        assert tail.wait(timeout=5) == 130
        assert time.monotonic() - sent < 3
        err = tail.stderr()

    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err


def test_ctrl_c_while_waiting_to_reconnect_exits_130(server: SSEServer) -> None:
    server.add_script(Status(503))

    with tail_process(server.url("/"), "--backoff-initial", "30") as tail:
        assert server.wait_for_requests(1, timeout=10)
        tail.proc.send_signal(signal.SIGINT)
        assert tail.wait(timeout=5) == 130
        assert "Traceback" not in tail.stderr()


def test_a_reader_that_leaves_after_one_line_ends_tail_quietly_with_exit_0(
    server: SSEServer,
) -> None:
    more = threading.Event()
    flood = b"".join(b"data: %d\n\n" % i for i in range(5000))
    server.add_script(*_stream(Send(b"data: first\n\n"), WaitFor(more), Send(flood), Hold()))

    with tail_process(server.url("/"), reader=False) as tail:
        assert json.loads(tail.next_line())["data"] == "first"
        tail.close_stdout()  # like `| head -1`
        more.set()
        assert tail.wait() == 0
        err = tail.stderr()

    assert "Traceback" not in err
    assert "BrokenPipe" not in err
    assert "Exception ignored" not in err


def test_a_closed_stdout_exits_1_with_one_line_instead_of_retrying_for_ever(
    server: SSEServer,
) -> None:
    # `streamvisor tail URL >&-`: Python starts with sys.stdout = None.
    server.add_script(*_stream(Send(b"data: one\n\n"), Hold()))

    run = subprocess.run(
        tail_argv(server.url("/")),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.close(1),
        timeout=10,
        check=False,
    )

    err = run.stderr.decode()
    assert run.returncode == 1, err
    assert err.splitlines() == ["streamvisor tail: cannot write to stdout: it is closed"]


def test_logs_go_to_stderr_and_every_stdout_line_is_json(server: SSEServer) -> None:
    server.add_script(*_stream(Send(b"id: 1\ndata: a\n\n"), Close()))
    server.add_script(Status(500))
    server.add_script(*_stream(Send(b"data: b\n\n"), Close()))
    server.add_script(*THE_END)

    with tail_process(server.url("/"), *FAST, "--log-level", "debug") as tail:
        assert tail.wait() == 0
        err = tail.stderr()
        out = tail.remaining_output()

    assert [json.loads(line)["data"] for line in out.decode().splitlines()] == ["a", "b"]
    assert "reconnecting" in err  # the logs are there, on stderr
