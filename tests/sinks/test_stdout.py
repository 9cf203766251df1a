"""StdoutSink: JSONL on a text stream, one flush per write, a broken pipe without traceback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from streamvisor.sinks import SinkError, StdoutSink
from streamvisor.sse import Event

EVENTS = [Event("s", "1", "message", "one", "1", 0.0), Event("s", "2", "x", "two", "2", 0.0)]


class _CountingStream(io.StringIO):
    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_each_event_is_one_json_line_and_each_write_flushes() -> None:
    out = _CountingStream()
    sink = StdoutSink(out)
    sink.write(EVENTS)
    assert out.flushes == 1
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["data"] for line in lines] == ["one", "two"]
    assert lines == [event.to_json() for event in EVENTS]
    assert sink.stats["delivered"] == 2
    sink.close()
    sink.close()


def test_the_default_stream_is_stdout_at_creation(capsys: pytest.CaptureFixture[str]) -> None:
    sink = StdoutSink()
    sink.write(EVENTS[:1])
    sink.close()
    assert capsys.readouterr().out == EVENTS[0].to_json() + "\n"


def test_a_broken_pipe_raises_one_clear_sink_error_then_keeps_failing_cleanly() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    stream = open(write_fd, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        sink = StdoutSink(stream)
        with pytest.raises(SinkError, match="broken pipe") as info:
            sink.write(EVENTS)
        assert info.value.__cause__ is None and info.value.__suppress_context__
        with pytest.raises(SinkError, match="broken pipe"):
            sink.write(EVENTS)
        sink.close()
        assert sink.broken
    finally:
        stream.close()


_PIPE_SCRIPT = """
from streamvisor.sinks import StdoutSink, SinkError
from streamvisor.sse import Event
sink = StdoutSink()
try:
    for i in range(100000):
        sink.write([Event("s", str(i), "message", "x" * 100)])
except SinkError as exc:
    import sys
    print("stopped:", exc, file=sys.stderr)
sink.close()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
def test_a_reader_that_goes_away_leaves_no_traceback_on_stderr() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _PIPE_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert json.loads(first)["id"] == "0"
    assert proc.returncode == 0
    text = err.decode()
    assert "stopped: sink stdout: output closed by the reader (broken pipe)" in text
    assert "Traceback" not in text and "Exception ignored" not in text
