"""Your own pykka actor, subscribed to a supervised SSE stream through the Python API.

    python examples/subscriber_actor.py [URL] [--max-events N] [--timeout SECONDS]

Without a URL it starts a local demo source (``streamvisor.demo.source.DemoSource``) that
drops connections now and then, so you can watch streamvisor reconnect and resume. Prints
one line per ``tick`` event and exits 0 after ``--max-events`` events (1 if they did not
arrive within ``--timeout`` seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pykka

import streamvisor
from streamvisor import BackoffPolicy, StreamSpec, Streamvisor
from streamvisor.demo.source import Chaos, DemoSource


class Printer(pykka.ThreadingActor):
    """Prints each event it is told; sets ``done`` after ``limit`` events."""

    def __init__(self, limit: int, done: threading.Event) -> None:
        super().__init__()
        self.limit = limit
        self.done = done
        self.count = 0

    def on_receive(self, message: Any) -> None:
        if not isinstance(message, streamvisor.Event) or self.count >= self.limit:
            return
        self.count += 1
        print(f"{message.stream} #{message.id} {message.event}: {message.data}", flush=True)
        if self.count == self.limit:
            self.done.set()


@contextlib.contextmanager
def upstream(url: str | None) -> Iterator[str]:
    """The given URL, or the URL of a local flaky demo source started for the run."""
    if url is not None:
        yield url
        return
    # Seeded faults: the first four connections break (reset or clean close) after a few
    # events; streamvisor resumes each time with Last-Event-ID and drops replayed events.
    chaos = Chaos(clean_close=0.3, reset=0.3, replay=0.5, max_events_per_connection=5)
    with DemoSource(["ticker"], rate=50.0, chaos=chaos, seed=4) as source:
        yield source.url("ticker")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", nargs="?", help="SSE endpoint (default: a local demo source)")
    parser.add_argument("--max-events", type=int, default=20, help="stop after N events")
    parser.add_argument("--timeout", type=float, default=30.0, help="give up after SECONDS")
    args = parser.parse_args(argv)

    done = threading.Event()
    printer = Printer.start(args.max_events, done)
    try:
        with upstream(args.url) as url:
            spec = StreamSpec(
                name="ticker",
                url=url,
                backoff=BackoffPolicy(initial=0.05, max=2.0),  # reconnect quickly
            )
            sv = Streamvisor(streams=[spec])
            # Subscribing before start() means the actor sees the stream's first event.
            sv.subscribe(printer, streams=["ticker"], events=["tick"])
            with sv:
                arrived = done.wait(args.timeout)
                state = sv.status()["streams"]["ticker"]
            print(
                f"state {state['state']}, last id {state.get('last_event_id')}, "
                f"restarts {state.get('restarts', 0)}",
                file=sys.stderr,
            )
    finally:
        printer.stop()  # Streamvisor never stops your actors: that is yours to do
    return 0 if arrived else 1


if __name__ == "__main__":
    raise SystemExit(main())
