"""``streamvisor relay URL``: the one stdout line, serving, exit codes, graceful signals.

Usage and failure exits run in-process through ``main(argv)``; the listening line, signals
and the served stream need a real subprocess (always killed in a ``finally``).
"""

from __future__ import annotations

import logging
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamvisor.cli.main import main
from streamvisor.demo.source import DemoSource
from tests.support.relay import ClientPool, seqs
from tests.support.sse_server import SSEServer, Status

pytestmark = pytest.mark.timeout(60)

LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)\n")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``main()`` configures the root logger (INFO for relay); leave it as it was."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


@pytest.fixture
def source() -> Iterator[DemoSource]:
    with DemoSource(["t"], rate=200.0, heartbeat=0) as src:
        yield src


def read_line(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> str:
    """The first stdout line of ``proc`` ('' if none came within ``timeout``)."""
    box: list[bytes] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return box[0].decode() if box else ""


def test_the_relay_prints_one_line_serves_the_stream_and_exits_0_on_sigterm(
    source: DemoSource, tmp_path: Path
) -> None:
    err = tmp_path / "stderr"
    command = [sys.executable, "-m", "streamvisor", "relay", source.url("t")]
    command += ["--listen", "127.0.0.1:0", "--name", "ticks", "--heartbeat", "0.2"]
    with open(err, "wb") as err_file:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err_file)
    pool = ClientPool()
    try:
        line = read_line(proc)
        match = LISTENING.fullmatch(line)
        assert match, f"unexpected first line {line!r}; stderr: {err.read_text()}"
        client = pool.get(int(match.group(1)), "/streams/ticks")
        assert client.wait(lambda d: len(d.events) >= 5 and b":\n\n" in d.body, 10.0)
        got = seqs(client.events)
        assert got == list(range(got[0], got[0] + len(got)))
        health = pool.get(int(match.group(1)), "/health")
        assert health.wait_closed() and health.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert client.wait_closed()
        assert proc.stdout is not None and proc.stdout.read() == b""  # nothing but the line
    finally:
        pool.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "nowhere"], "--listen: expected HOST:PORT"),
        (["--name", "a/b"], "--name: expected a name without '/'"),
        (["--history-events", "0"], "expected a whole number >= 1"),
        (["--heartbeat", "-1"], "expected a number > 0"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = main(["relay", "http://127.0.0.1:9/events", *args])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_an_address_in_use_exits_1_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code = main(["relay", "http://127.0.0.1:9/events", "--listen", f"127.0.0.1:{port}"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert f"cannot listen on 127.0.0.1:{port}" in err


def test_a_permanent_upstream_failure_exits_1_after_the_listening_line(
    sse_server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sse_server.add_script(Status(404))
    code = main(["relay", sse_server.url("/gone"), "--listen", "127.0.0.1:0", "--token", "sekrit"])
    out, err = capsys.readouterr()
    assert code == 1
    assert LISTENING.fullmatch(out)
    assert "404" in err.strip().splitlines()[-1]
    assert "sekrit" not in err
