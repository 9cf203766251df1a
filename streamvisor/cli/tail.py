"""``streamvisor tail URL``: one supervised stream printed to stdout, for a quick look.

Events go to stdout (JSONL, the Event JSON with ``stream`` = ``"tail"``, or text); logs go
to stderr. It exits 0 after ``--max-events`` or when the server ends the stream (HTTP
204), 1 on a permanent failure with one line on stderr, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
import threading
from collections.abc import Sequence
from typing import TextIO

from streamvisor.api.facade import Streamvisor
from streamvisor.daemon.logsetup import configure_logging
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
from streamvisor.policy.redact import Redactor, request_secrets
from streamvisor.spec import BreakerPolicy, StreamSpec
from streamvisor.sse import Event, to_jsonl
from streamvisor.states import StreamState
from streamvisor.upstream.connector import HTTPConnector

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class TailSink:
    """Prints events; counts them; signals when ``max_events`` were printed."""

    name = "tail"
    max_batch = 4096
    max_wait = 0.0

    def __init__(
        self, out: TextIO, fmt: str, max_events: int | None, done: threading.Event
    ) -> None:
        self._out = out
        self._format = fmt
        self._remaining = max_events
        self._done = done
        self.printed = 0
        self.broken = False
        self.error: str | None = None

    def write(self, events: Sequence[Event]) -> None:
        if self.broken or self.error or (self._remaining is not None and self._remaining <= 0):
            return
        if self._remaining is not None:
            events = events[: self._remaining]
            self._remaining -= len(events)
        if self._format == "jsonl":
            payload = to_jsonl(events)
        else:
            payload = "".join([_as_text(ev) for ev in events]).encode("utf-8")
        try:
            # Always UTF-8, whatever the locale says: an ASCII or Latin-1 stdout must not
            # turn the first non-ASCII event into an error (or a silent exit).
            binary = getattr(self._out, "buffer", None)
            if binary is not None:
                self._out.flush()
                binary.write(payload)
                binary.flush()
            else:
                self._out.write(payload.decode("utf-8"))
                self._out.flush()
        except (BrokenPipeError, ConnectionResetError):
            self._reader_left()
            return
        except ValueError:
            if not getattr(self._out, "closed", False):
                raise  # not "I/O operation on closed file": a real bug
            self._reader_left()
            return
        except OSError as exc:  # disk full, EIO, ...: tail cannot do its one job
            self.error = f"cannot write to stdout: {exc.strerror or exc}"
            self._done.set()
            return
        self.printed += len(events)
        if self._remaining is not None and self._remaining <= 0:
            self._done.set()

    def _reader_left(self) -> None:
        # The reader left (`| head`): a normal way to end, not an error.
        self.broken = True
        self._done.set()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _as_text(ev: Event) -> str:
    prefix = "" if ev.event == "message" else f"{ev.event}: "
    return f"{prefix}{ev.data}\n"


class _DropFinal(logging.Filter):
    """tail prints its own closing line; drop the supervisor's duplicate of it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "final", False)


def upstream_redactor(args: argparse.Namespace) -> Redactor:
    """A redactor knowing the secrets in the upstream options, as the config's reader does:
    secret header values (and their credentials without the scheme), the URL password and
    secret query values, so that a bare credential echoed by a server is masked too."""
    return Redactor(request_secrets(args.url, args.headers))


def upstream_spec(args: argparse.Namespace, name: str) -> StreamSpec:
    """The ``StreamSpec`` the upstream options describe (tail's and relay's).

    It retries for ever unless ``--max-attempts`` says otherwise, and never waits longer
    than ``--backoff-max``: no restart-intensity limit, no breaker cool-down.

    Raises:
        ValueError: an option value the spec rejects (e.g. a bad URL).
    """
    return StreamSpec(
        name=name,
        url=args.url,
        method=args.method or ("POST" if args.data is not None else "GET"),
        headers=dict(args.headers),
        body=args.data,
        last_event_id=args.last_event_id,
        read_timeout=args.read_timeout,
        connect_timeout=args.connect_timeout,
        backoff=BackoffPolicy(
            initial=args.backoff_initial,
            max=args.backoff_max,
            multiplier=args.backoff_multiplier,
            jitter=args.backoff_jitter,
            reset_after=args.backoff_reset_after,
            max_retry_after=args.max_retry_after,
        ),
        max_event_size=args.max_event_size,
        max_attempts=args.max_attempts,
        max_restarts=RestartLimit(count=0),
        breaker=BreakerPolicy(failures=0),
    )


def run_tail(args: argparse.Namespace) -> int:
    """Run ``streamvisor tail`` with parsed arguments; return the exit code."""
    redactor = upstream_redactor(args)
    handler = configure_logging(args.log_level, args.log_format, redactor=redactor)
    handler.addFilter(_DropFinal())
    mcp = getattr(args, "mcp", False)
    if mcp and (args.method not in (None, "GET") or args.data is not None):
        print(
            "streamvisor tail: --mcp makes its own requests (no --method/--data)", file=sys.stderr
        )
        return EXIT_USAGE
    try:
        spec = upstream_spec(args, "tail")
        if mcp:
            spec = dataclasses.replace(spec, kind="mcp")
    except ValueError as exc:
        print(f"streamvisor tail: {redactor.scrub(str(exc))}", file=sys.stderr)
        return EXIT_USAGE

    if sys.stdout is None:  # started with stdout closed (`>&-`): nowhere to print events
        print("streamvisor tail: cannot write to stdout: it is closed", file=sys.stderr)
        return EXIT_FAILURE

    done = threading.Event()
    ended: list[StreamState] = []

    def on_state(stream: str, state: StreamState) -> None:
        if state in (StreamState.FAILED, StreamState.CLOSED):
            ended.append(state)
            done.set()

    # As in the daemon and the API: cookies set by the server come back on every
    # reconnect, as with a browser's EventSource (one jar per stream).
    sink = TailSink(sys.stdout, args.format, args.max_events, done)
    sv = Streamvisor([spec], on_state=on_state, connect=HTTPConnector())
    sv.add_sink(sink)  # block: a slow terminal slows the stream, nothing is lost
    try:
        sv.start()
        while not done.wait(0.5):
            pass
        reason = None
        if ended and ended[0] is StreamState.FAILED:
            reason = sv.status()["streams"].get("tail", {}).get("last_error")
        sv.stop(timeout=5.0)
    except KeyboardInterrupt:
        sv.stop(timeout=2.0)
        return EXIT_INTERRUPTED
    if sink.broken:
        _silence_stdout()
        return EXIT_OK
    if sink.error is not None:
        print(f"streamvisor tail: {sink.error}", file=sys.stderr)
        return EXIT_FAILURE
    if args.max_events is not None and sink.printed >= args.max_events:
        return EXIT_OK
    if ended and ended[0] is StreamState.FAILED:
        print(f"streamvisor tail: {redactor.scrub(reason or 'stream failed')}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null after a broken pipe, so that the interpreter's final flush
    of what is still buffered cannot print "Exception ignored ... BrokenPipeError"."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return  # not a real file (tests capture stdout): nothing will flush at exit
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
