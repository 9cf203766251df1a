"""Outlets with real pykka actors: per-event and batch delivery, capacity and block (the
stream waits until the actor drains), the drop policies and disconnect, dead and
unsubscribed actors, sink and listener outlets. The hub's own tests are in ``test_hub.py``.

A blocked ``offer`` runs in a thread (``Spawner``) watched through a ``FakeControl``; the slow
subscriber is conftest's ``Blocker`` (it blocks on a gate in ``on_receive``).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pykka
import pytest

from streamvisor.actors.actor_outlet import ActorOutlet
from streamvisor.actors.hub import Hub
from streamvisor.actors.messages import EventBatch, SubscriberOverflow
from streamvisor.actors.outlets import ListenerOutlet, Outlet, SinkOutlet
from streamvisor.buffers import DiskBuffer, MemoryBuffer
from streamvisor.policy.flow import START, BufferSettings, DropLog, Position, WhenFull
from streamvisor.sse import Event
from tests.support.actors import BlockerHandle, CollectorHandle
from tests.support.events import make_events
from tests.support.flow import DEADLINE, FakeControl, Spawner, pos
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(60)


def actor_outlet(
    ref: pykka.ActorRef[Any],
    when_full: WhenFull = WhenFull.BLOCK,
    capacity: int = 100,
    *,
    batch: bool = False,
    name: str = "sub",
    streams: frozenset[str] | None = None,
    events: frozenset[str] | None = None,
) -> ActorOutlet:
    return ActorOutlet(name, ref, streams, events, when_full, capacity, batch=batch)


def offer(outlet: Outlet, stream: str, ids: range, control: FakeControl | None = None) -> bool:
    events = make_events(stream, ids)
    before = Position(ids[0] - 1, None)
    return outlet.offer(stream, events, pos(events, ids[-1]), before, control or FakeControl())


def stuck_after_first(blocker: BlockerHandle, outlet: ActorOutlet) -> None:
    """Offer event 1 and wait until the blocker has taken it (and is stuck on its gate)."""
    assert offer(outlet, "s", range(1, 2))
    assert wait_until(lambda: outlet.depth() == 0, DEADLINE)


class Crasher(pykka.ThreadingActor):
    """A subscriber that waits on ``gate`` and then fails (pykka stops it)."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self._gate = gate

    def on_receive(self, message: Any) -> Any:
        self._gate.wait(30.0)
        raise RuntimeError("subscriber bug")

    def on_failure(self, *exc_info: Any) -> None:
        pass  # expected: keep the test output quiet


# -- ActorOutlet delivery ------------------------------------------------------------------


def test_an_actor_gets_one_event_per_message_in_order(collector: CollectorHandle) -> None:
    outlet = actor_outlet(collector.ref)
    assert offer(outlet, "s", range(1, 4))
    assert offer(outlet, "t", range(1, 3))
    assert collector.wait_for(5, DEADLINE)
    assert [(e.stream, e.id) for e in collector.events] == [
        ("s", "1"),
        ("s", "2"),
        ("s", "3"),
        ("t", "1"),
        ("t", "2"),
    ]
    assert outlet.delivered == 5
    assert collector.others == []


def test_a_batch_actor_gets_one_event_batch_per_read(collector: CollectorHandle) -> None:
    outlet = actor_outlet(collector.ref, batch=True)
    assert offer(outlet, "s", range(1, 4))
    assert offer(outlet, "t", range(1, 3))
    assert wait_until(lambda: len(collector.others) == 2, DEADLINE)
    first, second = collector.others
    assert isinstance(first, EventBatch) and isinstance(second, EventBatch)
    assert (first.stream, len(first), [e.id for e in first]) == ("s", 3, ["1", "2", "3"])
    assert first.events == tuple(make_events("s", range(1, 4)))
    assert (second.stream, [e.id for e in second]) == ("t", ["1", "2"])
    assert collector.events == []
    assert outlet.delivered == 5
    assert wait_until(lambda: outlet.depth() == 0, DEADLINE)


def test_an_outlet_takes_only_its_streams_and_event_types(collector: CollectorHandle) -> None:
    outlet = actor_outlet(collector.ref, streams=frozenset({"s"}), events=frozenset({"trade"}))
    assert outlet.takes("s") and not outlet.takes("t")
    mixed = [
        *make_events("s", [1], kind="trade"),
        *make_events("s", [2], kind="quote"),
        *make_events("s", [3], kind="trade"),
    ]
    assert [e.id for e in outlet.select(mixed)] == ["1", "3"]
    everything = actor_outlet(collector.ref, name="all")
    assert everything.takes("anything")
    assert everything.select(mixed) is mixed


# -- block ---------------------------------------------------------------------------------


def test_a_full_actor_pauses_the_stream_until_it_drains(
    blocker: BlockerHandle, spawn: Spawner
) -> None:
    outlet = actor_outlet(blocker.ref, capacity=2)
    stuck_after_first(blocker, outlet)
    assert offer(outlet, "s", range(2, 4))  # fills the inbox: no wait
    assert outlet.depth() == 2
    control = FakeControl()
    job = spawn(lambda: offer(outlet, "s", range(4, 5), control), control)
    assert control.paused.wait(DEADLINE)
    assert job.running()
    assert control.pauses == ["sub"]
    blocker.gate.set()
    assert job.result() is True
    assert control.resumed.is_set()
    assert blocker.wait_for(4, DEADLINE)
    assert [e.id for e in blocker.events] == ["1", "2", "3", "4"]
    assert outlet.dropped == {}


def test_a_full_batch_actor_pauses_the_stream_until_it_drains(
    blocker: BlockerHandle, spawn: Spawner
) -> None:
    outlet = actor_outlet(blocker.ref, capacity=3, batch=True)
    stuck_after_first(blocker, outlet)
    assert offer(outlet, "s", range(2, 5))  # 3 events in one batch: full
    assert outlet.depth() == 3
    control = FakeControl()
    job = spawn(lambda: offer(outlet, "s", range(5, 7), control), control)
    assert control.paused.wait(DEADLINE)
    blocker.gate.set()
    assert job.result() is True
    assert wait_until(lambda: len(blocker.others) == 3, DEADLINE)
    assert [[e.id for e in batch] for batch in blocker.others] == [
        ["1"],
        ["2", "3", "4"],
        ["5", "6"],
    ]


def test_a_stopping_stream_gives_up_waiting_for_a_full_actor(
    blocker: BlockerHandle, spawn: Spawner
) -> None:
    outlet = actor_outlet(blocker.ref, capacity=1)
    stuck_after_first(blocker, outlet)
    assert offer(outlet, "s", range(2, 3))
    control = FakeControl()
    job = spawn(lambda: offer(outlet, "s", range(3, 4), control), control)
    assert control.paused.wait(DEADLINE)
    control.stopping.set()
    assert job.result() is False
    assert control.resumed.is_set()
    assert outlet.delivered == 2


def test_an_actor_that_dies_while_a_stream_waits_releases_the_stream(spawn: Spawner) -> None:
    gate = threading.Event()
    ref = Crasher.start(gate)
    hub = Hub()
    outlet = actor_outlet(ref, capacity=1)
    hub.add(outlet)
    try:
        assert offer(outlet, "s", range(1, 2))
        assert wait_until(lambda: outlet.depth() == 0, DEADLINE)
        assert offer(outlet, "s", range(2, 3))
        control = FakeControl()
        job = spawn(lambda: offer(outlet, "s", range(3, 4), control), control)
        assert control.paused.wait(DEADLINE)
        gate.set()  # the actor fails on its message and stops
        assert job.result() is True
        assert outlet.removed == "dead"
        assert hub.routes("s") == ()
        assert hub.removed == 1
    finally:
        gate.set()
        ref.stop(block=False)


def test_an_unsubscribed_actor_no_longer_pauses_a_waiting_stream(
    blocker: BlockerHandle, spawn: Spawner
) -> None:
    hub = Hub()
    outlet = actor_outlet(blocker.ref, capacity=1)
    hub.add(outlet)
    stuck_after_first(blocker, outlet)
    assert offer(outlet, "s", range(2, 3))
    control = FakeControl()
    job = spawn(lambda: offer(outlet, "s", range(3, 4), control), control)
    assert control.paused.wait(DEADLINE)
    assert hub.remove("sub") is outlet
    assert job.result() is True  # the stream goes on without it
    assert hub.routes("s") == ()
    assert hub.removed == 0  # unsubscribing is not a failure
    assert offer(outlet, "s", range(4, 5))  # a late read sends nothing
    blocker.ref.tell("marker")  # handled after anything sent before it
    blocker.gate.set()
    assert wait_until(lambda: blocker.others == ["marker"], DEADLINE)
    assert [e.id for e in blocker.events] == ["1", "2"]


# -- drop policies and disconnect ----------------------------------------------------------


def test_drop_newest_keeps_what_fits_and_counts_the_rest(
    blocker: BlockerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    outlet = actor_outlet(blocker.ref, WhenFull.DROP_NEWEST, capacity=2)
    stuck_after_first(blocker, outlet)
    control = FakeControl()
    with caplog.at_level(logging.WARNING, logger="streamvisor.actors.outlets"):
        assert offer(outlet, "s", range(2, 5), control)  # room for 2 of 3
        assert offer(outlet, "t", range(1, 3), control)  # full: both dropped
    assert not control.pauses
    assert outlet.dropped == {"s": 1, "t": 2}
    assert outlet.delivered == 3
    assert outlet.status().dropped == 3
    blocker.gate.set()
    assert blocker.wait_for(3, DEADLINE)
    assert [e.id for e in blocker.events] == ["1", "2", "3"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # rate limited: the first drop is logged at once
    assert "sub" in warnings[0].getMessage() and "drop_newest" in warnings[0].getMessage()


def test_drop_oldest_evicts_the_oldest_queued_events_and_counts_them(
    blocker: BlockerHandle,
) -> None:
    outlet = actor_outlet(blocker.ref, WhenFull.DROP_OLDEST, capacity=2)
    stuck_after_first(blocker, outlet)
    assert offer(outlet, "s", range(2, 4))
    assert offer(outlet, "s", range(4, 7))  # evicts 2-3; of 4-6 only the newest 2 fit
    assert outlet.dropped == {"s": 3}
    assert outlet.delivered == 3
    assert outlet.depth() == 2
    blocker.gate.set()
    assert blocker.wait_for(3, DEADLINE)
    assert [e.id for e in blocker.events] == ["1", "5", "6"]


def test_drop_oldest_leaves_other_messages_in_the_inbox(blocker: BlockerHandle) -> None:
    outlet = actor_outlet(blocker.ref, WhenFull.DROP_OLDEST, capacity=3)
    stuck_after_first(blocker, outlet)
    blocker.ref.tell("hello")  # takes a place in the inbox too
    assert offer(outlet, "s", range(2, 3))
    assert offer(outlet, "s", range(3, 5))  # evicts 2 (not "hello"), keeps 3-4
    blocker.gate.set()
    assert blocker.wait_for(3, DEADLINE)
    assert [e.id for e in blocker.events] == ["1", "3", "4"]
    assert blocker.others == ["hello"]
    assert outlet.dropped == {"s": 1}


def test_disconnect_removes_the_actor_and_tells_it_how_many_events_it_lost(
    blocker: BlockerHandle,
) -> None:
    hub = Hub()
    outlet = actor_outlet(blocker.ref, WhenFull.DISCONNECT, capacity=2)
    hub.add(outlet)
    stuck_after_first(blocker, outlet)
    assert offer(outlet, "s", range(2, 4))
    assert offer(outlet, "s", range(4, 5))  # overflows: disconnected
    assert outlet.removed == "disconnected"
    assert hub.routes("s") == ()
    assert hub.removed == 1
    assert offer(outlet, "s", range(5, 6))  # nothing more is sent
    blocker.gate.set()
    assert wait_until(lambda: len(blocker.others) == 1, DEADLINE)
    # what was already in its inbox is still delivered; the event that overflowed is lost
    assert [e.id for e in blocker.events] == ["1", "2", "3"]
    assert blocker.others == [SubscriberOverflow("sub", 1)]
    assert outlet.dropped == {"s": 1}
    status = hub.snapshot()[1]["sub"]
    assert (status.removed, status.dropped, status.policy) == (
        "disconnected",
        1,
        "disconnect",
    )


def test_a_dead_actor_is_removed_at_the_next_read(collector: CollectorHandle) -> None:
    hub = Hub()
    outlet = actor_outlet(collector.ref)
    hub.add(outlet)
    collector.ref.stop(block=True, timeout=DEADLINE)
    assert offer(outlet, "s", range(1, 3)) is True
    assert outlet.removed == "dead"
    assert outlet.delivered == 0
    assert hub.outlets() == []
    assert hub.snapshot()[1]["sub"].removed == "dead"


def test_drop_warnings_are_rate_limited_per_subscriber(caplog: pytest.LogCaptureFixture) -> None:
    outlet = ListenerOutlet("l", lambda s, e: None, None, None)
    with caplog.at_level(logging.WARNING, logger="streamvisor.actors.outlets"):
        outlet.count_drops("s", 3)
        outlet.count_drops("s", 4)
        outlet.count_drops("t", 1)
    assert outlet.dropped == {"s": 7, "t": 1}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "subscriber l is full: 3 events dropped (when_full: block)" in lines[0]
    assert "the latest of stream s" in lines[0]


class ScriptedDropLog(DropLog):
    """A 10 s ``DropLog`` that sees the given times instead of the real clock."""

    def __init__(self, times: list[float]) -> None:
        super().__init__(10.0)
        self._times = iter(times)

    def add(self, count: int, now: float) -> int:
        return super().add(count, next(self._times))


def test_a_drop_warning_does_not_give_other_streams_drops_to_the_latest_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outlet = ListenerOutlet("l", lambda s, e: None, None, None)
    outlet._droplog = ScriptedDropLog([100.0, 101.0, 200.0])
    with caplog.at_level(logging.WARNING, logger="streamvisor.actors.outlets"):
        outlet.count_drops("s", 3)  # reported at once
        outlet.count_drops("s", 5)  # quiet
        outlet.count_drops("t", 1)  # the interval is over: 6 since the last line
    second = caplog.records[-1].getMessage()
    assert len(caplog.records) == 2
    assert "6 events dropped" in second
    assert "6 events of stream t" not in second


def test_concurrent_streams_keep_a_batch_actors_depth_exact(make_collector: Any) -> None:
    collector = make_collector()
    outlet = actor_outlet(collector.ref, capacity=10_000, batch=True)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: races show up
    errors: list[BaseException] = []

    def feed(stream: str) -> None:
        try:
            for first in range(1, 400, 2):
                offer(outlet, stream, range(first, first + 2))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=feed, args=(f"s{i}",)) for i in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE * 4)
    finally:
        sys.setswitchinterval(old)
    assert errors == []
    assert wait_until(lambda: len(collector.others) == 4 * 200, DEADLINE)
    assert outlet.delivered == 4 * 400
    assert wait_until(lambda: outlet.depth() == 0, DEADLINE)


# -- SinkOutlet ----------------------------------------------------------------------------


def test_a_sink_outlet_puts_into_its_buffer_and_holds_the_stream_back() -> None:
    buffer = MemoryBuffer(BufferSettings(max_events=10))
    outlet = SinkOutlet("file", buffer, None, None)
    assert outlet.acks and outlet.kind == "sink"
    assert offer(outlet, "s", range(1, 4))
    assert outlet.depth() == 3
    assert outlet.holds_back("s") == Position(0, None)
    status = outlet.status()
    assert (status.extra["buffer"], status.delivered, status.queue_depth) == ("memory", 0, 3)
    buffer.ack(buffer.take(10))
    assert outlet.holds_back("s") is None
    assert outlet.status().delivered == 3


def test_a_sink_outlet_gives_up_with_its_stream(spawn: Spawner) -> None:
    buffer = MemoryBuffer(BufferSettings(max_events=2))
    outlet = SinkOutlet("file", buffer, None, None)
    assert offer(outlet, "s", range(1, 3))
    control = FakeControl()
    job = spawn(lambda: offer(outlet, "s", range(3, 4), control), control)
    assert control.paused.wait(DEADLINE)
    control.stopping.set()
    assert job.result() is False
    assert outlet.delivered == 2


def test_a_sink_outlets_status_does_not_count_dropped_events_as_delivered() -> None:
    box: list[SinkOutlet] = []
    buffer = MemoryBuffer(
        BufferSettings(max_events=2, when_full=WhenFull.DROP_NEWEST),
        on_drop=lambda stream, count: box[0].count_drops(stream, count),
    )
    outlet = SinkOutlet("file", buffer, None, None)
    box.append(outlet)
    assert offer(outlet, "s", range(1, 6))  # 2 kept, 3 dropped
    buffer.ack(buffer.take(10))
    status = outlet.status()
    assert (status.dropped, status.delivered, status.queue_depth) == (3, 2, 0)


def test_a_sink_outlet_counts_rows_a_disk_buffer_kept_from_the_last_run(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    old = DiskBuffer(path, BufferSettings.disk())
    events = make_events("s", range(1, 4))
    old.put("s", events, pos(events, 3), START, FakeControl())
    old.close()
    buffer = DiskBuffer(path, BufferSettings.disk())
    try:
        outlet = SinkOutlet("file", buffer, None, None)
        assert outlet.status().delivered == 0  # not negative: nothing written yet
        assert offer(outlet, "s", range(4, 6))
        buffer.ack(buffer.take(100))
        status = outlet.status()
        assert (status.delivered, status.queue_depth, status.extra["buffer"]) == (5, 0, "disk")
    finally:
        buffer.close()


# -- ListenerOutlet ------------------------------------------------------------------------


def test_a_listener_is_called_in_the_streams_thread_with_each_read() -> None:
    calls: list[tuple[str, list[str | None], str]] = []

    def listen(stream: str, events: Sequence[Event]) -> None:
        calls.append((stream, [e.id for e in events], threading.current_thread().name))

    outlet = ListenerOutlet("l", listen, None, None)
    assert offer(outlet, "s", range(1, 3))
    assert offer(outlet, "t", range(1, 2))
    me = threading.current_thread().name
    assert calls == [("s", ["1", "2"], me), ("t", ["1"], me)]
    assert outlet.delivered == 3


def test_a_failing_listener_is_counted_and_logged_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def listen(stream: str, events: Sequence[Event]) -> None:
        raise ValueError("listener bug")

    outlet = ListenerOutlet("l", listen, None, None)
    with caplog.at_level(logging.ERROR, logger="streamvisor.actors.outlets"):
        assert offer(outlet, "s", range(1, 3)) is True
        assert offer(outlet, "s", range(3, 4)) is True
    assert outlet.errors == 2
    assert outlet.delivered == 0
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # rate limited
    assert "listener l failed on stream s" in errors[0].getMessage()
    assert errors[0].exc_info is not None
