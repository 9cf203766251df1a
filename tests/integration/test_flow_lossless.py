"""Lossless flow control through the Python API, against a real loopback source.

The cases from issue 8: a subscriber slower than its upstream gets every event with the
default settings (the stream pauses, TCP slows the server); a stalled subscriber keeps memory
flat; a paused stream is not a dead connection; drop policies are the user's choice and are
counted.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import pykka
import pytest

import streamvisor
from streamvisor.api.facade import Streamvisor
from streamvisor.spec import StreamSpec
from streamvisor.sse import Event
from tests.support.actors import BlockerHandle
from tests.support.burst_server import EVENT_SIZE, BurstServer
from tests.support.wait import wait_until

DEADLINE = 60.0


class QueueSubscriber(pykka.ThreadingActor):
    """The issue's subscriber: ``on_receive`` only puts each event on a ``queue.Queue``."""

    def __init__(self, out: queue.Queue[Any]) -> None:
        super().__init__()
        self.out = out

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Event | streamvisor.EventBatch):
            self.out.put(message)
        return None


def _drain(out: queue.Queue[Any], want: int, deadline: float) -> list[int]:
    """Ids received until ``want`` events arrived or ``deadline`` seconds passed."""
    ids: list[int] = []
    end = threading.Event()
    timer = threading.Timer(deadline, end.set)
    timer.start()
    try:
        while len(ids) < want and not end.is_set():
            try:
                message = out.get(timeout=0.2)
            except queue.Empty:
                continue
            items = message.events if isinstance(message, streamvisor.EventBatch) else [message]
            ids.extend(int(ev.id) for ev in items)
    finally:
        timer.cancel()
    return ids


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.fixture
def subscriber() -> Any:
    out: queue.Queue[Any] = queue.Queue()
    ref = QueueSubscriber.start(out)
    try:
        yield ref, out
    finally:
        ref.stop(block=True, timeout=5.0)


@pytest.mark.parametrize("batch", [False, True], ids=["per-event", "batch"])
def test_a_subscriber_slower_than_its_upstream_gets_every_event_with_default_settings(
    make_sv: Callable[..., Streamvisor], subscriber: Any, batch: bool
) -> None:
    total = 200_000
    ref, out = subscriber
    with BurstServer(total) as server:
        sv = make_sv([StreamSpec(name="s", url=server.url)])
        name = sv.subscribe(ref, batch=batch)
        sv.start()
        ids = _drain(out, total, DEADLINE)
        status = sv.status()

    assert ids == list(range(1, total + 1))
    assert status["subscribers"][name]["dropped"] == 0
    assert status["streams"]["s"]["restarts"] == 0
    assert status["streams"]["s"]["events"] == total


def test_a_stalled_subscriber_pauses_the_upstream_and_keeps_memory_flat(
    make_sv: Callable[..., Streamvisor], blocker: BlockerHandle
) -> None:
    total = 400_000  # ~100 MB on the wire: far more than every buffer on the way
    with BurstServer(total) as server:
        sv = make_sv([StreamSpec(name="s", url=server.url)])
        sv.subscribe(blocker.ref, buffer=1000)
        rss_before = _rss_kib()
        sv.start()
        assert wait_until(lambda: sv.status()["streams"]["s"].get("paused_on"), DEADLINE)
        sent = server.sent
        # TCP pushes back: the server cannot hand more than the socket buffers hold.
        assert not wait_until(lambda: server.sent > sent + 20_000, 1.0)
        assert server.sent < total // 4
        grown_mib = (_rss_kib() - rss_before) / 1024
        assert grown_mib < 30, f"RSS grew by {grown_mib:.1f} MiB while the subscriber stalled"

        blocker.gate.set()
        assert blocker.wait_for(total, DEADLINE)
        assert server.sent == total
    assert [int(e.id or 0) for e in blocker.events] == list(range(1, total + 1))


def test_a_paused_stream_is_not_a_dead_connection_for_the_read_timeout(
    make_sv: Callable[..., Streamvisor], blocker: BlockerHandle
) -> None:
    total = 20_000
    with BurstServer(total) as server:
        sv = make_sv([StreamSpec(name="s", url=server.url, read_timeout=0.3)])
        sv.subscribe(blocker.ref, buffer=100)
        sv.start()
        assert wait_until(lambda: sv.status()["streams"]["s"].get("paused_on"), DEADLINE)
        # Paused for several read timeouts: no byte is read, and that is the stream's choice.
        assert not wait_until(lambda: sv.status()["streams"]["s"]["restarts"] > 0, 1.5)
        blocker.gate.set()
        assert blocker.wait_for(total, DEADLINE)
        status = sv.status()["streams"]["s"]
        # Once drained, the held-open connection goes quiet: only then may a timeout fire.
        assert len(server.requests) >= 1
    assert [int(e.id or 0) for e in blocker.events] == list(range(1, total + 1))
    assert status["paused_seconds"] >= 1.0


def test_an_upstream_that_closes_while_the_stream_is_paused_resumes_without_loss_or_repeats(
    make_sv: Callable[..., Streamvisor], blocker: BlockerHandle
) -> None:
    total = 1_000  # 256 KB
    # A 1 MiB send buffer holds all of it whatever the reader's window, so the server can
    # always finish and close while the stream is paused (the kernel caps, never fails).
    with BurstServer(total, close_after=True, sndbuf=1 << 20) as server:
        sv = make_sv([StreamSpec(name="s", url=server.url)])
        sv.subscribe(blocker.ref, buffer=10)
        sv.start()
        assert wait_until(lambda: server.sent == total, DEADLINE)  # closed behind our back
        blocker.gate.set()
        assert blocker.wait_for(total, DEADLINE)
        assert wait_until(lambda: len(server.requests) >= 2, DEADLINE)
        assert server.requests[1] == str(total)  # resumed after the last event handed on
    assert [int(e.id or 0) for e in blocker.events] == list(range(1, total + 1))


def test_one_slow_subscriber_pauses_only_the_streams_it_takes(
    make_sv: Callable[..., Streamvisor], blocker: BlockerHandle, subscriber: Any
) -> None:
    ref, out = subscriber
    with BurstServer(50_000) as slow_source, BurstServer(3_000) as other_source:
        sv = make_sv(
            [
                StreamSpec(name="slow", url=slow_source.url),
                StreamSpec(name="other", url=other_source.url),
            ]
        )
        sv.subscribe(blocker.ref, streams=["slow"], buffer=10)
        sv.subscribe(ref, streams=["other"])
        sv.start()
        assert wait_until(lambda: sv.status()["streams"]["slow"].get("paused_on"), DEADLINE)
        assert _drain(out, 3_000, DEADLINE) == list(range(1, 3_001))
        assert sv.status()["streams"]["other"]["paused_on"] is None


def test_a_dead_subscriber_is_removed_and_never_pauses_a_stream_for_ever(
    make_sv: Callable[..., Streamvisor], subscriber: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ref, out = subscriber
    total = 30_000
    dead_out: queue.Queue[Any] = queue.Queue()
    doomed = QueueSubscriber.start(dead_out)
    with BurstServer(total) as server:
        sv = make_sv([StreamSpec(name="s", url=server.url)])
        doomed_name = sv.subscribe(doomed, buffer=10)
        sv.subscribe(ref)
        doomed.stop(block=True, timeout=5.0)
        sv.start()
        ids = _drain(out, total, DEADLINE)
        status = sv.status()["subscribers"][doomed_name]
    assert ids == list(range(1, total + 1))
    assert status["removed"] == "dead"
    assert any("has stopped; removing it" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest"])
def test_a_drop_policy_chosen_by_the_user_drops_and_counts_every_drop(
    make_sv: Callable[..., Streamvisor],
    blocker: BlockerHandle,
    policy: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    total = 5_000
    with BurstServer(total) as server:
        sv = make_sv([StreamSpec(name="s", url=server.url)])
        name = sv.subscribe(blocker.ref, buffer=100, when_full=policy)
        sv.start()
        assert wait_until(lambda: sv.status()["streams"]["s"]["events"] == total, DEADLINE)
        info = sv.status()["subscribers"][name]
        assert info["dropped"] > 0
        assert info["dropped"] + info["delivered"] == total
        assert sv.status()["streams"]["s"]["subscribers"][name]["dropped"] == info["dropped"]
        blocker.gate.set()
        assert blocker.wait_for(info["delivered"], DEADLINE)
    ids = [int(e.id or 0) for e in blocker.events]
    assert ids == sorted(ids)
    if policy == "drop_oldest":
        assert ids[-1] == total
    else:
        assert ids[0] == 1
    warnings = [r for r in caplog.records if "dropped (when_full" in r.getMessage()]
    assert 1 <= len(warnings) <= 3  # rate limited, with the count since the last line
    assert EVENT_SIZE == 256
