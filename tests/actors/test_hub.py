"""The hub with real outlets and pykka actors: routes follow (un)subscribes, also from other
threads while streams read them; books; checkpoint positions held back by sinks (and never by
actors or listeners); status of live and removed subscribers.
"""

from __future__ import annotations

import threading

import pytest

from streamvisor.actors.actor_outlet import ActorOutlet
from streamvisor.actors.book import StreamBook
from streamvisor.actors.hub import Hub
from streamvisor.actors.outlets import ListenerOutlet, SinkOutlet
from streamvisor.buffers import MemoryBuffer
from streamvisor.policy.flow import START, BufferSettings, Position, WhenFull
from tests.support.actors import CollectorHandle
from tests.support.events import make_events
from tests.support.flow import DEADLINE, FakeControl

pytestmark = pytest.mark.timeout(60)


def _listener(name: str, streams: set[str] | None = None) -> ListenerOutlet:
    return ListenerOutlet(name, lambda s, e: None, frozenset(streams) if streams else None, None)


def test_routes_are_the_outlets_taking_a_stream_and_follow_add_and_remove() -> None:
    hub = Hub()
    a, b = _listener("a"), _listener("b", {"t"})
    hub.add(a)
    assert hub.routes("s") == (a,)
    assert hub.routes("s") is hub.routes("s")  # cached
    hub.add(b)
    assert hub.routes("s") == (a,)
    assert hub.routes("t") == (a, b)
    assert hub.remove("a") is a
    assert hub.routes("s") == ()
    assert hub.routes("t") == (b,)
    assert hub.remove("nobody") is None


def test_a_subscriber_name_is_taken_once() -> None:
    hub = Hub()
    hub.add(_listener("a"))
    with pytest.raises(ValueError, match="'a'"):
        hub.add(_listener("a"))


def test_an_outlet_removed_by_itself_leaves_the_routes() -> None:
    hub = Hub()
    a = _listener("a")
    hub.add(a)
    assert hub.routes("s") == (a,)
    a.remove("dead")
    a.remove("disconnected")  # once
    assert a.removed == "dead"
    assert hub.routes("s") == ()
    assert hub.removed == 1


def test_a_stream_keeps_its_book_across_remove_and_add() -> None:
    hub = Hub(dedup_window=8)
    book = hub.book("s")
    assert hub.book("s") is book
    hub.seed("s", 8, [("1", "abcd1234")])
    assert hub.book("s") is book
    assert book.recent(0) == (("1", "abcd1234"),)
    hub.seed("new", 8, [("2", "ffff0000")])
    assert hub.book("new").recent(0) == (("2", "ffff0000"),)


def _committed(book: StreamBook, ids: range) -> None:
    events = make_events("s", ids)
    book.admit(events)
    book.commit()


def test_positions_are_the_committed_ones_when_no_sink_holds_back() -> None:
    hub = Hub()
    hub.add(_listener("l"))  # listeners do not acknowledge: they never hold back
    _committed(hub.book("s"), range(1, 6))
    hub.book("idle")
    positions = hub.positions()
    assert set(positions) == {"s"}
    last, recent = positions["s"]
    assert last == "5"
    assert [i for i, _ in recent] == ["1", "2", "3", "4", "5"]


def test_positions_stop_at_the_lowest_floor_of_the_sinks_taking_a_stream() -> None:
    hub = Hub()
    slow = MemoryBuffer(BufferSettings())
    slower = MemoryBuffer(BufferSettings())
    other = MemoryBuffer(BufferSettings())
    hub.add(SinkOutlet("slow", slow, None, None))
    hub.add(SinkOutlet("slower", slower, None, None))
    hub.add(SinkOutlet("other", other, frozenset({"t"}), None))
    book = hub.book("s")
    _committed(book, range(1, 11))
    control = FakeControl()
    events = make_events("s", range(1, 11))
    slow.put("s", events[7:], Position(10, "10"), Position(7, "7"), control)
    slower.put("s", events[4:], Position(10, "10"), Position(4, "4"), control)
    other.put("t", events, Position(10, "10"), START, control)  # another stream
    last, recent = hub.positions()["s"]
    assert last == "4"
    assert [i for i, _ in recent] == ["1", "2", "3", "4"]  # no id past the floor
    slower.ack(slower.take(100))
    assert hub.positions()["s"][0] == "7"
    slow.ack(slow.take(100))
    assert hub.positions()["s"][0] == "10"


def test_a_stream_held_back_at_its_start_has_no_position_to_save() -> None:
    hub = Hub()
    buffer = MemoryBuffer(BufferSettings())
    hub.add(SinkOutlet("sink", buffer, None, None))
    book = hub.book("s")
    _committed(book, range(1, 4))
    events = make_events("s", range(1, 4))
    buffer.put("s", events, Position(3, "3"), START, FakeControl())
    assert hub.positions() == {}  # the saved checkpoint stays as it was


def test_status_lists_streams_subscribers_and_removed_ones() -> None:
    hub = Hub()
    live, gone = _listener("live"), _listener("gone")
    hub.add(live)
    hub.add(gone)
    hub.add(_listener("bye"))
    _committed(hub.book("s"), range(1, 3))
    live.count_drops("s", 2)
    gone.remove("dead")
    hub.remove("bye")
    streams, subscribers = hub.snapshot()
    assert hub.removed == 1
    assert set(subscribers) == {"live", "gone"}
    assert subscribers["gone"].removed == "dead"
    assert not subscribers["gone"].alive
    assert subscribers["live"].dropped == 2
    stream = streams["s"]
    assert (stream.events, stream.last_event_id) == (2, "2")
    assert set(stream.subscribers) == {"live"}
    share = stream.subscribers["live"]
    assert (share.queue_depth, share.dropped, share.reason) == (0, 2, "block")


def test_a_subscriber_added_again_under_a_removed_name_is_listed_once() -> None:
    hub = Hub()
    first = _listener("a")
    hub.add(first)
    first.remove("dead")
    again = _listener("a")
    hub.add(again)
    _, subscribers = hub.snapshot()
    assert list(subscribers) == ["a"]
    assert subscribers["a"].removed is None


def test_a_subscriber_added_after_a_stream_read_its_routes_is_in_its_next_routes() -> None:
    hub = Hub()
    a, b = _listener("a"), _listener("b")
    hub.add(a)
    before = hub.routes("s")  # cached for the stream's next reads
    hub.add(b)
    assert hub.routes("s") == (a, b)
    assert before == (a,)  # a tuple a stream holds is never changed under it


def test_removed_subscribers_stay_listed_in_status_up_to_the_last_hundred() -> None:
    hub = Hub()
    outlets = [_listener(f"l{i:03}") for i in range(105)]
    for outlet in outlets:
        hub.add(outlet)
    for outlet in outlets:
        outlet.remove("dead")
    _, subscribers = hub.snapshot()
    assert hub.removed == 105
    assert sorted(subscribers) == [f"l{i:03}" for i in range(5, 105)]  # the oldest forgotten
    assert {status.removed for status in subscribers.values()} == {"dead"}
    assert hub.outlets() == []


def test_a_subscriber_that_takes_other_streams_has_no_share_in_this_one(
    collector: CollectorHandle,
) -> None:
    hub = Hub()
    hub.add(ActorOutlet("all", collector.ref, None, None, WhenFull.DROP_NEWEST, 10))
    hub.add(_listener("only-t", {"t"}))
    _committed(hub.book("s"), range(1, 2))
    _committed(hub.book("t"), range(1, 2))
    streams, subscribers = hub.snapshot()
    assert set(streams["s"].subscribers) == {"all"}
    assert set(streams["t"].subscribers) == {"all", "only-t"}
    assert streams["s"].subscribers["all"].reason == "drop_newest"
    assert subscribers["only-t"].streams == ("t",)


def test_actor_subscribers_never_hold_a_position_back_and_a_removed_sink_no_longer_does(
    collector: CollectorHandle,
) -> None:
    hub = Hub()
    buffer = MemoryBuffer(BufferSettings())
    hub.add(ActorOutlet("actor", collector.ref, None, None, WhenFull.BLOCK, 1))
    hub.add(SinkOutlet("sink", buffer, None, None))
    _committed(hub.book("s"), range(1, 6))
    events = make_events("s", range(3, 6))
    buffer.put("s", events, Position(5, "5"), Position(2, "2"), FakeControl())  # 3-5 unwritten
    assert hub.positions()["s"][0] == "2"
    assert hub.remove("sink") is not None
    assert hub.positions()["s"][0] == "5"  # the full actor inbox counts for nothing


def test_routes_stay_right_while_subscribers_come_and_go_in_other_threads() -> None:
    hub = Hub()
    steady = _listener("steady")
    hub.add(steady)
    stop = threading.Event()
    seen_bad: list[tuple[str, ...]] = []
    errors: list[BaseException] = []

    def churn(prefix: str) -> None:
        try:
            for i in range(300):
                outlet = _listener(f"{prefix}{i}")
                hub.add(outlet)
                if i % 2:
                    hub.remove(outlet.name)
                else:
                    outlet.remove("dead")  # removed by itself, as a dead actor is
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                names = tuple(o.name for o in hub.routes("s"))
                if "steady" not in names:
                    seen_bad.append(names)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(p,)) for p in "ab"]
    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in [*readers, *threads]:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    stop.set()
    for thread in readers:
        thread.join(DEADLINE)
    assert not any(t.is_alive() for t in [*threads, *readers])
    assert errors == [] and seen_bad == []
    assert hub.routes("s") == (steady,)  # no stale route survives the last change
    assert [o.name for o in hub.outlets()] == ["steady"]
