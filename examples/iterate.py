"""A plain ``for`` loop over a supervised SSE stream (and the same with ``async for``).

    python examples/iterate.py [URL] [--max-events N] [--asyncio]

Switching from sseclient-py is a two-line change: ``streamvisor.connect(url)`` instead of
``SSEClient(...)``; reconnects, Last-Event-ID resume and dedup happen underneath, and the
loop reads only as fast as it consumes (nothing is dropped). Without a URL it starts a local
flaky demo source. Exits 0 after ``--max-events`` events.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator, Sequence

import streamvisor
from streamvisor.demo.source import Chaos, DemoSource

FAST = streamvisor.BackoffPolicy(initial=0.05, max=2.0)  # reconnect quickly for the demo


@contextlib.contextmanager
def upstream(url: str | None) -> Iterator[str]:
    """The given URL, or a local demo source that drops connections now and then."""
    if url is not None:
        yield url
        return
    chaos = Chaos(clean_close=0.3, reset=0.3, replay=0.5, max_events_per_connection=5)
    with DemoSource(["ticker"], rate=50.0, chaos=chaos, seed=4) as source:
        yield source.url("ticker")


def run_sync(url: str, limit: int) -> int:
    count = 0
    with streamvisor.connect(url, backoff=FAST) as stream:
        for event in stream:
            count += 1
            print(f"#{event.id} {event.event}: {event.data}", flush=True)
            if count == limit:
                assert stream.handle is not None
                print(f"restarts so far: {stream.handle.status().get('restarts')}", flush=True)
                break
    return count


async def run_async(url: str, limit: int) -> int:
    count = 0
    async with streamvisor.aconnect(url, backoff=FAST) as stream:
        async for event in stream:
            count += 1
            print(f"#{event.id} {event.event}: {event.data}", flush=True)
            if count == limit:
                break
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", nargs="?", help="SSE endpoint (default: a local demo source)")
    parser.add_argument("--max-events", type=int, default=20, help="stop after N events")
    parser.add_argument("--asyncio", action="store_true", help="use aconnect / async for")
    args = parser.parse_args(argv)
    with upstream(args.url) as url:
        if args.asyncio:
            count = asyncio.run(run_async(url, args.max_events))
        else:
            count = run_sync(url, args.max_events)
    return 0 if count == args.max_events else 1


if __name__ == "__main__":
    sys.exit(main())
