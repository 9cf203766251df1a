"""``streamvisor tail`` flags of issue 10: every backoff key has a flag (``--backoff-multiplier``,
``--backoff-reset-after``, ``--max-retry-after``), and ``--max-event-size``. Delays are read
from the INFO log lines (jitter 0), not measured."""

from __future__ import annotations

import re

import pytest

from tests.support.sse_server import Close, Headers, Hold, Pause, Send, SSEServer, Status
from tests.support.tail import run_tail

pytestmark = pytest.mark.timeout(60)

DELAY = re.compile(r"reconnecting in (\d+\.\d+)s")


def delays(err: str) -> list[float]:
    return [float(m.group(1)) for m in DELAY.finditer(err)]


def test_backoff_multiplier_sets_the_growth_per_failure(
    sse_server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        sse_server.add_script(Status(503))
    sse_server.add_script(Headers(), Send(b"data: ok\n\n"), Hold())
    args = ("--backoff-initial", "0.05", "--backoff-max", "5", "--backoff-jitter", "0")

    run = run_tail(
        capsys,
        sse_server.url("/"),
        *args,
        "--backoff-multiplier",
        "3",
        "--max-events",
        "1",
        "--log-level",
        "info",
    )

    assert run.code == 0, run.err
    assert delays(run.err) == [0.05, 0.15, 0.45]


def test_backoff_reset_after_makes_a_quiet_connection_healthy(
    sse_server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sse_server.add_script(Status(503))
    sse_server.add_script(Status(503))
    sse_server.add_script(Headers(), Pause(0.5), Close())  # up 0.5 s, no event
    sse_server.add_script(Headers(), Send(b"data: ok\n\n"), Hold())
    args = ("--backoff-initial", "0.05", "--backoff-max", "5", "--backoff-jitter", "0")

    run = run_tail(
        capsys,
        sse_server.url("/"),
        *args,
        "--backoff-reset-after",
        "0.1",
        "--max-events",
        "1",
        "--log-level",
        "info",
    )

    assert run.code == 0, run.err
    # the quiet connection reset the count: the initial wait, not the third failure's 0.2 s
    assert delays(run.err) == [0.05, 0.1, 0.05]
    assert "server closed the stream; reconnecting" in run.err


def test_max_retry_after_caps_the_servers_retry_after_and_warns_above_backoff_max(
    sse_server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sse_server.add_script(Status(503, {"Retry-After": "3600"}))
    sse_server.add_script(Headers(), Send(b"data: ok\n\n"), Hold())

    run = run_tail(
        capsys,
        sse_server.url("/"),
        "--backoff-initial",
        "0.05",
        "--backoff-max",
        "0.1",
        "--backoff-jitter",
        "0",
        "--max-retry-after",
        "0.3",
        "--max-events",
        "1",
    )

    assert run.code == 0, run.err
    (line,) = [line for line in run.err_lines if " WARNING " in line]
    assert "capped at max_retry_after (0.3s)" in line and "above backoff.max (0.1s)" in line
    assert delays(line) == [0.3]


def test_the_servers_retry_hint_never_waits_longer_than_backoff_max(
    sse_server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sse_server.add_script(Headers(), Send(b"retry: 86400000\ndata: a\n\n"), Close())
    sse_server.add_script(Headers(), Send(b"data: b\n\n"), Hold())

    run = run_tail(
        capsys,
        sse_server.url("/"),
        "--backoff-initial",
        "0.1",
        "--backoff-max",
        "0.2",
        "--max-events",
        "2",
        "--log-level",
        "info",
    )

    assert run.code == 0, run.err
    assert delays(run.err) == [0.2]


def test_max_event_size_lets_a_bigger_event_through(
    sse_server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sse_server.add_script(Headers(), Send(b"data: " + b"z" * 300 + b"\n\n"), Hold())

    run = run_tail(capsys, sse_server.url("/"), "--max-event-size", "1000", "--max-events", "1")

    assert run.code == 0, run.err
    assert run.data == ["z" * 300]


def test_an_event_over_max_event_size_names_the_flag_to_raise(
    sse_server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sse_server.default = [Headers(), Send(b"data: " + b"z" * 300 + b"\n\n"), Close()]

    run = run_tail(
        capsys,
        sse_server.url("/"),
        "--max-event-size",
        "100",
        "--max-attempts",
        "2",
        "--backoff-initial",
        "0.01",
        "--backoff-max",
        "0.02",
    )

    assert run.code == 1
    (warning,) = [line for line in run.err_lines if " WARNING " in line]
    assert "max_event_size (100 bytes)" in warning and "--max-event-size" in warning
    assert "max_event_size" in run.err_lines[-1]


@pytest.mark.parametrize(
    "args",
    [
        ("--max-event-size", "63"),
        ("--max-event-size", "1k"),
        ("--backoff-multiplier", "0.5"),
        ("--backoff-reset-after", "-1"),
        ("--max-retry-after", "-5"),
        ("--max-retry-after", "nan"),
    ],
)
def test_bad_flag_values_are_usage_errors(
    capsys: pytest.CaptureFixture[str], args: tuple[str, str]
) -> None:
    run = run_tail(capsys, "http://127.0.0.1:9/", *args)
    assert run.code == 2
    assert len(run.err_lines) == 1 and args[0] in run.err_lines[0]
