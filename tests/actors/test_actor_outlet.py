"""``ActorOutlet`` with real pykka actors: per-event and batch delivery, capacity and block
(the stream waits until the actor drains), the drop policies and disconnect, dead and
unsubscribed actors, concurrent streams.

A blocked ``offer`` runs in a thread (``Spawner``) watched through a ``FakeControl``; the slow
subscriber is conftest's ``Blocker`` (it blocks on a gate in ``on_receive``).
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import pykka
import pytest

from streamvisor.actors.actor_outlet import ActorOutlet
from streamvisor.actors.hub import Hub
from streamvisor.actors.messages import EventBatch, SubscriberOverflow
from streamvisor.policy.flow import WhenFull
from tests.support.actors import BlockerHandle, CollectorHandle
from tests.support.events import make_events
from tests.support.flow import DEADLINE, FakeControl, Spawner, offer
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


# -- delivery ----------------------------------------------------------------------------


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


# -- block -------------------------------------------------------------------------------


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


# -- drop policies and disconnect --------------------------------------------------------


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
