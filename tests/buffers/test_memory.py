"""``MemoryBuffer``: drop_oldest (evictions counted per stream, never what is being
written), byte counts, and the checkpoint floor it holds a stream back at."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamvisor.buffers import MemoryBuffer, event_bytes
from streamvisor.policy.flow import START, BufferSettings, Position, WhenFull
from tests.support.buffers import Drops, drain, put, record, taken_ids
from tests.support.events import make_events
from tests.support.flow import FakeControl, pos

pytestmark = pytest.mark.timeout(60)


# -- wake-ups ----------------------------------------------------------------------------


def test_a_put_before_the_wake_up_is_wired_still_wakes_once_it_is(tmp_path: Path) -> None:
    # The daemon wires ``on_ready`` after the sink's outlet is routed: a put in between must
    # not use up the wake-up that nobody received.
    buffer = MemoryBuffer(BufferSettings())
    put(buffer, "s", range(1, 3))
    woken: list[int] = []
    buffer.on_ready = lambda: woken.append(1)
    put(buffer, "s", range(3, 5))
    assert woken == [1]


# -- drop_oldest -------------------------------------------------------------------------


def test_memory_drop_oldest_evicts_queued_events_and_keeps_all_new_ones(drops: Drops) -> None:
    buffer = MemoryBuffer(
        BufferSettings(max_events=5, when_full=WhenFull.DROP_OLDEST), on_drop=record(drops)
    )
    put(buffer, "s", range(1, 4))
    put(buffer, "s", range(4, 8))  # room for 2: the 2 oldest go
    assert drops == [("s", 2)]
    assert buffer.depth()[0] == 5
    assert drain(buffer) == ["3", "4", "5", "6", "7"]


def test_memory_drop_oldest_counts_evictions_per_stream(drops: Drops) -> None:
    buffer = MemoryBuffer(
        BufferSettings(max_events=5, when_full=WhenFull.DROP_OLDEST), on_drop=record(drops)
    )
    put(buffer, "a", range(1, 4))
    put(buffer, "b", range(1, 3))
    put(buffer, "c", range(1, 5))  # evicts a1-a3 and b1
    assert sorted(drops) == [("a", 3), ("b", 1)]
    assert [(c.stream, [e.id for e in c.events]) for c in buffer.take(10)] == [
        ("b", ["2"]),
        ("c", ["1", "2", "3", "4"]),
    ]


def test_memory_drop_oldest_never_evicts_events_being_written(drops: Drops) -> None:
    buffer = MemoryBuffer(
        BufferSettings(max_events=4, when_full=WhenFull.DROP_OLDEST), on_drop=record(drops)
    )
    put(buffer, "s", range(1, 4))
    in_flight = buffer.take(10)
    put(buffer, "s", range(4, 7))  # held 3 (taken) + 3: nothing queued to evict but 4-6
    assert taken_ids(in_flight) == ["1", "2", "3"]
    buffer.ack(in_flight)
    assert sum(count for _, count in drops) == 2
    assert drain(buffer) == ["6"]


def test_memory_drop_oldest_with_a_batch_larger_than_the_buffer_keeps_its_newest(
    drops: Drops,
) -> None:
    buffer = MemoryBuffer(
        BufferSettings(max_events=3, when_full=WhenFull.DROP_OLDEST), on_drop=record(drops)
    )
    put(buffer, "s", range(1, 8))
    assert drops == [("s", 4)]
    assert drain(buffer) == ["5", "6", "7"]


# -- byte counts -------------------------------------------------------------------------


def test_memory_byte_counts_follow_event_bytes() -> None:
    buffer = MemoryBuffer(BufferSettings(max_events=None, max_bytes=10_000))
    events = make_events("s", range(1, 4), size=100)
    buffer.put("s", events, pos(events, 3), START, FakeControl())
    assert buffer.depth() == (3, event_bytes(events))
    buffer.ack(buffer.take(10))
    assert buffer.depth() == (0, 0)


def test_memory_drop_oldest_frees_the_bytes_of_what_it_evicts(drops: Drops) -> None:
    one = event_bytes(make_events("s", [1]))
    settings = BufferSettings(max_events=None, max_bytes=3 * one, when_full=WhenFull.DROP_OLDEST)
    buffer = MemoryBuffer(settings, on_drop=record(drops))
    put(buffer, "s", range(1, 4))
    put(buffer, "s", range(4, 6))
    assert drops == [("s", 2)]
    assert buffer.depth() == (3, 3 * one)
    assert drain(buffer) == ["3", "4", "5"]


# -- checkpoint floors -------------------------------------------------------------------


def test_memory_buffer_holds_a_stream_back_at_the_position_before_its_unwritten_events() -> None:
    buffer = MemoryBuffer(BufferSettings())
    assert buffer.holds_back("s") is None
    put(buffer, "s", range(1, 4))  # before: seq 0
    put(buffer, "s", range(4, 6))  # before: seq 3
    put(buffer, "t", range(1, 2))
    assert buffer.holds_back("s") == Position(0, None)
    first = buffer.take(3)
    assert buffer.holds_back("s") == Position(0, None)  # taken is not written
    buffer.ack(first)
    assert buffer.holds_back("s") == Position(3, "3")
    rest = buffer.take(10)
    buffer.ack(rest)
    assert buffer.holds_back("s") is None
    assert buffer.holds_back("t") is None


def test_a_failed_write_keeps_the_stream_held_back() -> None:
    buffer = MemoryBuffer(BufferSettings())
    put(buffer, "s", range(1, 4))
    buffer.release(buffer.take(10))
    assert buffer.holds_back("s") == Position(0, None)


def test_drop_newest_drops_do_not_hold_the_stream_back() -> None:
    buffer = MemoryBuffer(BufferSettings(max_events=2, when_full=WhenFull.DROP_NEWEST))
    put(buffer, "s", range(1, 3))
    put(buffer, "s", range(3, 5))  # dropped
    buffer.ack(buffer.take(10))
    assert buffer.holds_back("s") is None


def test_drop_oldest_moves_the_floor_past_a_fully_evicted_chunk() -> None:
    buffer = MemoryBuffer(BufferSettings(max_events=4, when_full=WhenFull.DROP_OLDEST))
    put(buffer, "s", range(1, 3))
    put(buffer, "s", range(3, 5))
    put(buffer, "s", range(5, 7))  # evicts the chunk 1-2: it is done
    assert buffer.holds_back("s") == Position(2, "2")


def test_drop_oldest_keeps_the_floor_of_a_partly_evicted_chunk() -> None:
    buffer = MemoryBuffer(BufferSettings(max_events=4, when_full=WhenFull.DROP_OLDEST))
    put(buffer, "s", range(1, 5))
    put(buffer, "s", range(5, 6))  # evicts event 1 of the chunk 1-4: 2-4 still unwritten
    assert buffer.holds_back("s") == Position(0, None)


def test_drop_oldest_never_moves_the_floor_past_a_chunk_being_written() -> None:
    buffer = MemoryBuffer(BufferSettings(max_events=4, when_full=WhenFull.DROP_OLDEST))
    put(buffer, "s", range(1, 3))
    in_flight = buffer.take(10)  # 1-2 are being written
    put(buffer, "s", range(3, 5))
    put(buffer, "s", range(5, 7))  # evicts 3-4 (queued); 1-2 are still unwritten
    floor = buffer.holds_back("s")
    assert floor is not None and floor.seq <= 0
    buffer.ack(in_flight)
    floor = buffer.holds_back("s")
    assert floor is not None and floor.seq <= 4  # 5-6 are still unwritten
    buffer.ack(buffer.take(10))
    assert buffer.holds_back("s") is None
