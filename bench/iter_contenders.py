"""Contenders of bench/iterators.py: plain loops over an SSE stream, sync and asyncio.

Each runner reads ``n`` events from ``url`` (bench/sse_source.py, ``burst`` mode) and returns
an ``IterRun``. The clock and the CPU clock (``time.process_time()``: every thread of this
process) run from just before the client or stream is created to the ``n``-th event in user
code; closing is outside. The loop body is the same in every contender: append the event's
id to a list and count (about 0.02 µs per event); the ids are checked after the clock stops
(every id ``1..n`` once, in order). A watchdog ends a stalled run after ``TIMEOUT`` seconds.

* ``run_ld``: ``for ev in client.events`` (launchdarkly-eventsource, stock 10 kB reads:
  flow.py's counting baseline); ``run_ld_read1``: the same parser fed by ``read1(65536)``;
* ``run_connect``: ``with streamvisor.connect(url) as stream: for event in stream`` (with
  ``StreamSpec`` options, e.g. ``dedup_window=0``);
* ``run_listener``: ``add_listener`` (the stream thread alone: the floor of ``connect()``);
* ``run_httpx_sse``: httpx-sse's README usage, ``async with httpx.AsyncClient() as client:
  async with aconnect_sse(client, "GET", url) as source: async for sse in
  source.aiter_sse()``, under ``asyncio.run``;
* ``run_aconnect``: ``async with streamvisor.aconnect(url) as stream: async for event in
  stream``, under ``asyncio.run``. Both async runners take ``uvloop=True`` (if installed).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ld_jsonl import ld_client

TIMEOUT = 60.0
READ_TIMEOUT = 30.0


@dataclass
class IterRun:
    """One run: ``lost`` counts missing ids plus duplicates and out-of-order positions."""

    seconds: float
    events: int
    last_id: str | None
    cpu: float
    lost: int = 0
    missing: int = 0
    duplicates: int = 0
    misordered: int = 0


def checked(n: int, ids: list[str | None], seconds: float, cpu: float) -> IterRun:
    """An ``IterRun`` from the ids the loop saw, checked against ``1..n`` in order."""
    expected = [str(i) for i in range(1, n + 1)]
    seen = set(ids)
    missing = sum(1 for x in expected if x not in seen)
    duplicates = len(ids) - len(seen)
    misordered = (
        0 if ids == expected else sum(1 for a, b in zip(ids, expected, strict=False) if a != b)
    )
    if missing or duplicates or misordered:
        seconds = float("inf")  # a wrong run is not a rate
    return IterRun(
        seconds,
        len(ids),
        ids[-1] if ids else None,
        cpu,
        missing + duplicates + misordered,
        missing,
        duplicates,
        misordered,
    )


def _ld(url: str, n: int, read1: bool) -> IterRun:
    ids: list[str | None] = []
    add = ids.append
    count = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    client = ld_client(url, read1=read1)
    timer = threading.Timer(TIMEOUT, client.close)
    timer.start()
    try:
        for ev in client.events:
            add(ev.id)
            count += 1
            if count >= n:
                break
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        timer.cancel()
        client.close()
    return checked(n, ids, elapsed, cpu)


def run_ld(url: str, n: int) -> IterRun:
    return _ld(url, n, read1=False)


def run_ld_read1(url: str, n: int) -> IterRun:
    return _ld(url, n, read1=True)


def run_connect(url: str, n: int, **options: Any) -> IterRun:
    import streamvisor

    ids: list[str | None] = []
    add = ids.append
    count = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    with streamvisor.connect(url, read_timeout=READ_TIMEOUT, **options) as stream:
        assert stream.handle is not None
        timer = threading.Timer(TIMEOUT, stream.handle.close)
        timer.start()
        try:
            for event in stream:
                add(event.id)
                count += 1
                if count >= n:
                    break
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        finally:
            timer.cancel()
    return checked(n, ids, elapsed, cpu)


def run_listener(url: str, n: int) -> IterRun:
    from streamvisor import StreamSpec, Streamvisor

    ids: list[str | None] = []
    done = threading.Event()

    def take(stream: str, events: Any) -> None:
        if done.is_set():
            return
        ids.extend(ev.id for ev in events)
        if len(ids) >= n:
            del ids[n:]
            done.set()

    sv = Streamvisor([StreamSpec(name="bench", url=url, read_timeout=READ_TIMEOUT)])
    sv.add_listener(take)
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        sv.start()
        done.wait(TIMEOUT)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        sv.stop(timeout=10)
    return checked(n, ids, elapsed, cpu)


async def _httpx_sse(url: str, n: int) -> IterRun:
    import httpx
    from httpx_sse import aconnect_sse

    ids: list[str | None] = []
    add = ids.append
    count = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    async with asyncio.timeout(TIMEOUT):
        async with httpx.AsyncClient() as client:  # noqa: SIM117 - httpx-sse's README usage
            async with aconnect_sse(client, "GET", url) as source:
                async for sse in source.aiter_sse():
                    add(sse.id)
                    count += 1
                    if count >= n:
                        break
                elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return checked(n, ids, elapsed, cpu)


async def _aconnect(url: str, n: int) -> IterRun:
    import streamvisor

    ids: list[str | None] = []
    add = ids.append
    count = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    async with asyncio.timeout(TIMEOUT):
        async with streamvisor.aconnect(url, read_timeout=READ_TIMEOUT) as stream:
            async for event in stream:
                add(event.id)
                count += 1
                if count >= n:
                    break
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return checked(n, ids, elapsed, cpu)


def _run(coro: Any, uvloop: bool) -> IterRun:
    if uvloop:
        import uvloop as uv

        result: IterRun = uv.run(coro)
        return result
    return asyncio.run(coro)


def run_httpx_sse(url: str, n: int, uvloop: bool = False) -> IterRun:
    return _run(_httpx_sse(url, n), uvloop)


def run_aconnect(url: str, n: int, uvloop: bool = False) -> IterRun:
    return _run(_aconnect(url, n), uvloop)


Runner = Callable[..., IterRun]


# -- the hand-off alone (section ``handoff``): no socket, no decoder ----------------------
HANDOFF_READ = 1024  # events per read: what a 256 KiB read of 256 B events holds


class _Control:
    """A ``PauseControl`` for a stream that is never stopped."""

    def abandoned(self) -> bool:
        return False

    def pause(self, outlet: str) -> None:
        pass

    def resume(self) -> None:
        pass


def _reads(n: int) -> list[list[Any]]:
    from streamvisor import Event

    def event(i: int) -> Any:
        return Event(
            stream="s",
            id=str(i),
            event="tick",
            data="x",
            last_event_id=str(i),
            received_at=0.0,
        )

    events = [event(i) for i in range(1, n + 1)]
    return [events[i : i + HANDOFF_READ] for i in range(0, n, HANDOFF_READ)]


def _feed(outlet: Any, reads: list[list[Any]]) -> threading.Thread:
    from streamvisor.policy.flow import Position

    def feed() -> None:
        start, control = Position(0, None), _Control()
        for read in reads:
            outlet.offer("s", read, start, start, control)
        outlet.finish()

    return threading.Thread(target=feed, name="feeder")


def handoff_sync(n: int) -> float:
    """CPU µs per event of the loop's thread: ``for event in stream`` over a ``QueueOutlet``
    that a thread fills with reads of ``HANDOFF_READ`` events (the loop body as above)."""
    from streamvisor.api.iterator import EventStream, QueueOutlet

    reads = _reads(n)
    outlet = QueueOutlet("handoff", None, None)
    stream: Any = EventStream(None, outlet, None, owned=False)  # type: ignore[arg-type]
    feeder = _feed(outlet, reads)
    ids: list[str | None] = []
    add = ids.append
    cpu0 = time.thread_time()
    feeder.start()
    for event in stream:
        add(event.id)
    cpu = time.thread_time() - cpu0
    feeder.join(TIMEOUT)
    assert checked(n, ids, cpu, cpu).lost == 0
    return cpu / n * 1e6


def handoff_async(n: int) -> float:
    """``handoff_sync`` for ``async for`` over ``aconnect()``'s ``LoopOutlet`` (asyncio.run)."""
    from streamvisor.api.aiterator import AsyncEventStream, LoopOutlet
    from streamvisor.spec import StreamSpec

    reads = _reads(n)

    async def main() -> float:
        outlet = LoopOutlet("handoff", None, None, 10_000, asyncio.get_running_loop())
        stream = AsyncEventStream(StreamSpec(name="s", url="http://127.0.0.1:9/"), 10_000)
        stream._outlet = outlet  # what __aenter__ sets up, without a stream
        feeder = _feed(outlet, reads)
        ids: list[str | None] = []
        add = ids.append
        cpu0 = time.thread_time()
        feeder.start()
        async for event in stream:
            add(event.id)
        cpu = time.thread_time() - cpu0
        feeder.join(TIMEOUT)
        assert checked(n, ids, cpu, cpu).lost == 0
        return cpu / n * 1e6

    return asyncio.run(main())
