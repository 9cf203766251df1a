"""Failures a person can see (issue 10): at the default log level, ``streamvisor tail``
shows a stream that keeps failing at WARNING, on the first failure of each kind and then at
attempts 1, 2, 4, 8, ...; each line names the stream, the redacted URL, the real cause, the
attempt and the delay. INFO keeps every attempt."""

from __future__ import annotations

import re

import pytest

from tests.support.sse_server import Headers, Hold, Send, SSEServer, Status
from tests.support.tail import run_tail

pytestmark = pytest.mark.timeout(60)

FAST = ("--backoff-initial", "0.01", "--backoff-max", "0.02", "--backoff-jitter", "0")
TOKEN = "qtok-Vis1bLesEcReT"
ATTEMPT = re.compile(r"attempt (\d+), reconnecting in (\d+\.\d+)s")


def warnings_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if " WARNING " in line]


@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        ("refused", "Connection refused"),
        ("503", "HTTP 503 Service Unavailable"),
        ("silent", "no data for 0.5s"),
        ("too many headers", "too many header lines"),
    ],
)
def test_a_stream_that_keeps_failing_is_visible_at_the_default_level(
    sse_server: SSEServer,
    capsys: pytest.CaptureFixture[str],
    refusing_port: int,
    failure: str,
    cause: str,
) -> None:
    if failure == "refused":
        url = f"http://127.0.0.1:{refusing_port}/events?access_token={TOKEN}"
    else:
        if failure == "503":
            sse_server.default = [Status(503)]
        elif failure == "silent":
            sse_server.default = [Headers(), Hold()]
        else:
            head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            head += "".join(f"X-Debug-{i}: {i}\r\n" for i in range(1001))
            sse_server.default = [Send(head.encode() + b"\r\ndata: x\n\n")]
        url = sse_server.url(f"/events?access_token={TOKEN}")

    # A silent stream costs a read timeout per attempt: fewer attempts, and a timeout long
    # enough that a loaded machine still delivers the response headers within it.
    tries, expected = ("5", [1, 2, 4]) if failure == "silent" else ("9", [1, 2, 4, 8])
    run = run_tail(capsys, url, *FAST, "--read-timeout", "0.5", "--max-attempts", tries)

    assert run.code == 1
    lines = warnings_of(run.err)
    attempts = [int(m.group(1)) for line in lines if (m := ATTEMPT.search(line))]
    assert attempts == expected, run.err
    for line in lines:
        assert "stream tail" in line and cause in line, line
        assert "access_token=***" in line
    assert TOKEN not in run.err
    assert run.err_lines[-1].startswith("streamvisor tail: ")  # the one closing line
    assert cause in run.err_lines[-1]


def test_info_keeps_every_attempt(
    sse_server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sse_server.default = [Status(503)]

    run = run_tail(capsys, sse_server.url("/"), *FAST, "--max-attempts", "6", "--log-level", "info")

    assert run.code == 1
    attempts = [int(m.group(1)) for line in run.err_lines if (m := ATTEMPT.search(line))]
    assert attempts == [1, 2, 3, 4, 5]
    levels = [line.split()[1] for line in run.err_lines if ATTEMPT.search(line)]
    assert levels == ["WARNING", "WARNING", "INFO", "WARNING", "INFO"]


def test_a_change_of_cause_is_visible_at_once(
    sse_server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(4):
        sse_server.add_script(Status(503))
    sse_server.add_script(Status(502))  # attempt 5: a new kind
    sse_server.default = [Status(502)]

    run = run_tail(capsys, sse_server.url("/"), *FAST, "--max-attempts", "7")

    assert run.code == 1
    shown = [
        (int(m.group(1)), "502" in line)
        for line in warnings_of(run.err)
        if (m := ATTEMPT.search(line))
    ]
    assert shown == [(1, False), (2, False), (4, False), (5, True)]
