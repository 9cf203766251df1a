"""A POST stream, MCP "streamable HTTP" style: a JSON-RPC request answered with an SSE stream.

    python examples/mcp_post_stream.py [URL] [--max-events N] [--timeout SECONDS]

Every connection attempt re-sends the same JSON-RPC body and asks ``fresh_headers()`` for a
new bearer token (a callable ``headers`` is called once per attempt), and a reconnect carries
``Last-Event-ID`` so the server can resume the stream. Without a URL it POSTs to a local demo
source. Prints each event's data and exits 0 after ``--max-events`` events (1 on timeout).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import secrets
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pykka

from streamvisor import BackoffPolicy, Event, StreamSpec, Streamvisor
from streamvisor.demo.source import DemoSource

REQUEST: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "watch", "arguments": {"topic": "ticker"}},
}


class TokenSource:
    """Stands in for an OAuth client: a new short-lived token on every call."""

    def __init__(self) -> None:
        self.attempts = itertools.count(1)

    def fresh_headers(self) -> Mapping[str, str]:
        attempt = next(self.attempts)
        print(f"attempt {attempt}: new token", file=sys.stderr, flush=True)
        return {
            "Authorization": f"Bearer {secrets.token_urlsafe(16)}",
            "Accept": "application/json, text/event-stream",
        }


class Printer(pykka.ThreadingActor):
    """Prints each event's data; sets ``done`` after ``limit`` events."""

    def __init__(self, limit: int, done: threading.Event) -> None:
        super().__init__()
        self.limit, self.done, self.count = limit, done, 0

    def on_receive(self, message: Any) -> None:
        if isinstance(message, Event) and self.count < self.limit:
            self.count += 1
            print(f"#{message.id} {message.event}: {message.data}", flush=True)
            if self.count == self.limit:
                self.done.set()


@contextlib.contextmanager
def endpoint(url: str | None) -> Iterator[str]:
    """The given URL, or a local demo source (it accepts the POST and streams ticks)."""
    if url is not None:
        yield url
        return
    with DemoSource(["mcp"], rate=20.0) as source:
        yield source.url("mcp")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", nargs="?", help="MCP endpoint (default: a local demo source)")
    parser.add_argument("--max-events", type=int, default=5, help="stop after N events")
    parser.add_argument("--timeout", type=float, default=30.0, help="give up after SECONDS")
    args = parser.parse_args(argv)

    done = threading.Event()
    printer = Printer.start(args.max_events, done)
    tokens = TokenSource()
    try:
        with endpoint(args.url) as url:
            spec = StreamSpec(
                name="mcp",
                url=url,
                method="POST",
                body=REQUEST,  # sent as JSON on every attempt
                headers=tokens.fresh_headers,  # called on every attempt
                backoff=BackoffPolicy(initial=0.05, max=2.0),
            )
            sv = Streamvisor(streams=[spec])
            sv.subscribe(printer, streams=["mcp"])
            with sv:
                arrived = done.wait(args.timeout)
    finally:
        printer.stop()
    return 0 if arrived else 1


if __name__ == "__main__":
    raise SystemExit(main())
