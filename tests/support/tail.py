"""Helpers to run ``streamvisor tail`` in-process (``main(argv)``) or as a subprocess.

Rules: every run has a deadline. In-process, a watchdog interrupts the main thread at the
deadline (``main`` then returns 130 and the test fails on the exit code); a subprocess is
killed in a ``finally``. Logging handlers that ``main`` installs are removed after the run.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import logging
import os
import queue
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from streamvisor.cli.main import main

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
EVENT_KEYS = ["stream", "id", "event", "data", "last_event_id", "received_at"]


@dataclass(frozen=True)
class TailRun:
    """What one ``streamvisor tail`` run did."""

    code: int
    out: str
    err: str
    timed_out: bool = False

    @property
    def lines(self) -> list[str]:
        """stdout split at LF only (the JSONL line separator)."""
        return self.out.split("\n")[:-1] if self.out else []

    @property
    def events(self) -> list[dict[str, Any]]:
        """stdout parsed as JSONL."""
        return [json.loads(line) for line in self.lines]

    @property
    def data(self) -> list[str]:
        """The ``data`` of every printed event."""
        return [e["data"] for e in self.events]

    @property
    def err_lines(self) -> list[str]:
        """Non-empty stderr lines."""
        return [line for line in self.err.splitlines() if line.strip()]


def run_tail(capsys: pytest.CaptureFixture[str], *args: str, deadline: float = 10.0) -> TailRun:
    """``main(["tail", *args])`` in this process, stdout/stderr captured, with a deadline."""
    return run_cli(capsys, "tail", *args, deadline=deadline)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str, deadline: float = 10.0) -> TailRun:
    """``main(argv)`` (any command) in this process, stdout/stderr captured, with a deadline."""
    capsys.readouterr()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    fired = threading.Event()

    def interrupt() -> None:
        fired.set()
        _thread.interrupt_main()

    watchdog = threading.Timer(deadline, interrupt)
    watchdog.daemon = True
    watchdog.start()
    try:
        code = main(list(argv))
    finally:
        watchdog.cancel()
        watchdog.join()
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
    captured = capsys.readouterr()
    return TailRun(code, captured.out, captured.err, fired.is_set())


def tail_argv(*args: str) -> list[str]:
    """The command line of a ``streamvisor tail`` subprocess."""
    return [sys.executable, "-m", "streamvisor", "tail", *args]


class TailProcess:
    """A running ``streamvisor tail`` subprocess whose stdout lines are read by a thread."""

    def __init__(self, proc: subprocess.Popen[bytes], *, reader: bool = True) -> None:
        self.proc = proc
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="tail-stdout", daemon=True)
        if reader:
            self._reader.start()

    def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        with contextlib.suppress(ValueError, OSError):  # stdout closed by the test
            for line in iter(stdout.readline, b""):
                self._lines.put(line)

    def next_line(self, timeout: float = 10.0) -> bytes:
        """The next stdout line; fails the test at the deadline."""
        if not self._reader.is_alive() and self._reader.ident is None:
            return self._read_line_directly(timeout)
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no line on tail's stdout within {timeout}s")

    def _read_line_directly(self, timeout: float) -> bytes:
        # Without the reader thread (which would block ``close_stdout``): byte by byte,
        # so nothing past the line is taken from the pipe.
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                pytest.fail(f"no line on tail's stdout within {timeout}s")
            byte = os.read(fd, 1)
            if not byte:
                pytest.fail("tail's stdout ended before a whole line")
            line += byte
        return line

    def remaining_output(self, timeout: float = 10.0) -> bytes:
        """Every stdout byte not yet taken by ``next_line`` (call after the exit)."""
        self._reader.join(timeout)
        if self._reader.is_alive():
            pytest.fail(f"tail's stdout was not closed within {timeout}s")
        chunks = []
        while not self._lines.empty():
            chunks.append(self._lines.get_nowait())
        return b"".join(chunks)

    def close_stdout(self) -> None:
        """Close our end of the pipe, as ``head -1`` does after its line."""
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def wait(self, timeout: float = 10.0) -> int:
        """The exit code; fails the test at the deadline."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"tail did not exit within {timeout}s")

    def stderr(self) -> str:
        """All of stderr (call after the process exited)."""
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode("utf-8", "replace")


@contextlib.contextmanager
def tail_process(
    *args: str, env: dict[str, str] | None = None, reader: bool = True
) -> Iterator[TailProcess]:
    """Start ``streamvisor tail`` as a subprocess; it is always killed and reaped.

    With ``reader=False`` no thread reads stdout (needed to close it, as ``head`` does).
    """
    proc = subprocess.Popen(
        tail_argv(*args),
        stdin=subprocess.PIPE,  # held open and never written: tail must not read it
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        yield TailProcess(proc, reader=reader)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
