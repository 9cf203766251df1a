"""In-process contenders for bench/flow.py: bare launchdarkly loops and streamvisor's Python API.

Every runner reads ``n`` events from ``url`` and returns a ``Run``: seconds from just before
the first request to the ``n``-th event handled by user code, the events handled, the last
id seen, events lost by policy (streamvisor's ``dropped``), the process's CPU seconds over
the run and, with ``stamp=True``, one ``(time.time(), data)`` sample per event (latency). Counting is the only work user code
does, so the numbers show the cost of getting events to user code.

* ``ld``: ``for ev in client.events`` (launchdarkly-eventsource, stock 10 kB reads);
* ``ld_read1``: the same parser fed by ``read1(65536)`` reads (``ld_jsonl.ld_client``);
* ``sv_actor``: ``subscribe(ref)``: a pykka actor gets one ``Event`` per message (defaults:
  buffer 10000, ``when_full=block``);
* ``sv_batch``: ``subscribe(ref, batch=True)``: one ``EventBatch`` per read;
* ``sv_listener``: ``add_listener(fn)``: a callback in the stream's own thread (no hop to
  another thread: the floor of streamvisor's stream thread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ld_jsonl import ld_client

TIMEOUT = 60.0


@dataclass
class Run:
    seconds: float
    events: int
    last_id: str | None
    dropped: int = 0
    samples: list[tuple[float, str]] = field(default_factory=list)
    cpu: float = 0.0  # CPU seconds of this process (all threads) over the run


def _ld(url: str, n: int, stamp: bool, read1: bool) -> Run:
    samples: list[tuple[float, str]] = []
    add = samples.append
    now = time.time
    count = 0
    last = None
    cpu0, t0 = time.process_time(), time.perf_counter()
    client = ld_client(url, read1=read1)
    try:
        for ev in client.events:
            if stamp:
                add((now(), ev.data))
            count += 1
            if count >= n:
                last = ev.id
                break
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        client.close()
    return Run(elapsed, count, last, 0, samples, cpu)


def run_ld(url: str, n: int, stamp: bool = False) -> Run:
    return _ld(url, n, stamp, read1=False)


def run_ld_read1(url: str, n: int, stamp: bool = False) -> Run:
    return _ld(url, n, stamp, read1=True)


def _streamvisor(url: str, n: int, stamp: bool, shape: str) -> Run:
    import pykka

    from streamvisor import Event, EventBatch, StreamSpec, Streamvisor

    done = threading.Event()
    state: dict[str, Any] = {"count": 0, "last": None}
    samples: list[tuple[float, str]] = []
    add = samples.append
    now = time.time

    def take(events: Any) -> None:
        if stamp:
            t = now()
            for ev in events:
                add((t, ev.data))
        before = state["count"]
        state["count"] = before + len(events)
        if state["count"] >= n > before:
            state["last"] = events[n - before - 1].id  # the n-th event
            done.set()

    class PerEvent(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> Any:
            if isinstance(message, Event):
                if stamp:
                    add((now(), message.data))
                state["count"] += 1
                if state["count"] == n:
                    state["last"] = message.id
                    done.set()
            return None

    class Batched(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> Any:
            if isinstance(message, EventBatch):
                take(message.events)
            return None

    sv = Streamvisor([StreamSpec(name="bench", url=url, read_timeout=30.0)])
    ref = None
    if shape == "actor":
        ref = PerEvent.start()
        sub = sv.subscribe(ref)
    elif shape == "batch":
        ref = Batched.start()
        sub = sv.subscribe(ref, batch=True)
    else:
        sub = sv.add_listener(lambda stream, events: take(events))
    dropped = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        sv.start()
        done.wait(TIMEOUT)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        status = sv.status()
        dropped = int(status["subscribers"].get(sub, {}).get("dropped", 0))
        dropped += int(status["streams"]["bench"].get("dedup_dropped", 0) or 0)
    finally:
        sv.stop(timeout=10)
        if ref is not None:
            ref.stop(timeout=5)
    # events that came after the n-th are not part of the run
    return Run(elapsed, min(state["count"], n), state["last"], dropped, samples[:n], cpu)


def run_sv_actor(url: str, n: int, stamp: bool = False) -> Run:
    return _streamvisor(url, n, stamp, "actor")


def run_sv_batch(url: str, n: int, stamp: bool = False) -> Run:
    return _streamvisor(url, n, stamp, "batch")


def run_sv_listener(url: str, n: int, stamp: bool = False) -> Run:
    return _streamvisor(url, n, stamp, "listener")


Runner = Callable[..., Run]
