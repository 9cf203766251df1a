"""The ``SinkBuffer`` contract, run against both buffers (``MemoryBuffer`` and ``DiskBuffer``,
the ``make_buffer`` fixture): put/take/ack/release, wake-ups, block and abandon, drop_newest
with exact counts, byte bounds.

A blocked ``put`` runs in a thread (``spawn``) and is watched through a ``FakeControl``
whose ``pause()`` sets an Event: no sleeps, every wait has a deadline.
"""

from __future__ import annotations

import pytest

from streamvisor.buffers import SinkBuffer
from streamvisor.policy.flow import START, Position, WhenFull
from streamvisor.sse import Event
from tests.support.buffers import Drops, MakeBuffer, drain, put, taken_ids
from tests.support.flow import DEADLINE, FakeControl, Spawner
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(60)


# -- put, take, ack, release -------------------------------------------------------------


def test_take_returns_whole_chunks_oldest_first_up_to_max_events(make_buffer: MakeBuffer) -> None:
    buffer = make_buffer(max_events=100)
    put(buffer, "a", range(1, 4))  # 3 events
    put(buffer, "b", range(1, 3))  # 2 events
    put(buffer, "a", range(4, 8))  # 4 events
    first = buffer.take(5)
    assert [(c.stream, len(c)) for c in first] == [("a", 3), ("b", 2)]
    assert taken_ids(first) == ["1", "2", "3", "1", "2"]
    second = buffer.take(2)  # a chunk larger than max_events is still taken whole
    assert [(c.stream, len(c)) for c in second] == [("a", 4)]
    assert buffer.take(5) == []


def test_taken_events_stay_counted_until_acknowledged(make_buffer: MakeBuffer) -> None:
    buffer = make_buffer(max_events=100)
    put(buffer, "s", range(1, 4))
    put(buffer, "s", range(4, 6))
    assert (buffer.pending(), buffer.depth()[0]) == (5, 5)
    chunks = buffer.take(3)
    assert (buffer.pending(), buffer.depth()[0]) == (2, 5)
    buffer.ack(chunks)
    assert (buffer.pending(), buffer.depth()[0]) == (2, 2)


def test_released_chunks_are_taken_again_first_in_their_order(make_buffer: MakeBuffer) -> None:
    buffer = make_buffer(max_events=100)
    put(buffer, "s", range(1, 3))
    put(buffer, "s", range(3, 5))
    put(buffer, "s", range(5, 7))
    chunks = buffer.take(4)
    assert taken_ids(chunks) == ["1", "2", "3", "4"]
    buffer.release(chunks)
    assert buffer.pending() == 6
    assert drain(buffer) == [str(i) for i in range(1, 7)]
    assert buffer.depth()[0] == 0


def test_an_empty_put_changes_nothing(make_buffer: MakeBuffer) -> None:
    woken: list[int] = []
    buffer = make_buffer(on_ready=lambda: woken.append(1))
    assert buffer.put("s", [], START, START, FakeControl()) is True
    assert buffer.pending() == 0
    assert woken == []


def test_events_come_back_equal_with_their_fields(make_buffer: MakeBuffer) -> None:
    buffer = make_buffer(max_events=100)
    events = [
        Event("s", "7", "trade", "line one\nline two", "7", 1234.5),
        Event("s", None, "message", "ünïcödé ✓", "7", 1235.0),
        Event("s", "", "reset", "", None, 1236.0),
    ]
    buffer.put("s", events, Position(3, None), START, FakeControl())
    (chunk,) = buffer.take(10)
    assert list(chunk.events) == events
    assert [ev.received_at for ev in chunk.events] == [1234.5, 1235.0, 1236.0]
    assert chunk.stream == "s"


# -- wake-ups ----------------------------------------------------------------------------


def test_the_first_put_wakes_the_consumer_and_later_ones_do_not(make_buffer: MakeBuffer) -> None:
    woken: list[int] = []
    buffer = make_buffer(max_events=100, on_ready=lambda: woken.append(1))
    put(buffer, "s", range(1, 3))
    put(buffer, "s", range(3, 5))
    assert woken == [1]


def test_an_empty_take_re_arms_the_wake_up(make_buffer: MakeBuffer) -> None:
    woken: list[int] = []
    buffer = make_buffer(max_events=100, on_ready=lambda: woken.append(1))
    put(buffer, "s", range(1, 3))
    buffer.ack(buffer.take(10))
    put(buffer, "s", range(3, 5))
    assert woken == [1]  # a take that found events does not re-arm
    buffer.ack(buffer.take(10))
    assert buffer.take(10) == []
    put(buffer, "s", range(5, 7))
    assert woken == [1, 1]


def test_arm_makes_the_next_put_wake_the_consumer(make_buffer: MakeBuffer) -> None:
    woken: list[int] = []
    buffer = make_buffer(max_events=100, on_ready=lambda: woken.append(1))
    put(buffer, "s", range(1, 3))
    buffer.arm()
    put(buffer, "s", range(3, 5))
    put(buffer, "s", range(5, 7))
    assert woken == [1, 1]


def test_the_wake_up_is_called_outside_the_lock_so_it_may_take(make_buffer: MakeBuffer) -> None:
    taken: list[str | None] = []
    holder: list[SinkBuffer] = []

    def on_ready() -> None:
        chunks = holder[0].take(10)  # would deadlock if called under the buffer's lock
        taken.extend(taken_ids(chunks))
        holder[0].ack(chunks)

    buffer = make_buffer(max_events=100, on_ready=on_ready)
    holder.append(buffer)
    put(buffer, "s", range(1, 4))
    assert taken == ["1", "2", "3"]


# -- block -------------------------------------------------------------------------------


def test_a_full_buffer_blocks_the_producer_until_an_ack_makes_room(
    make_buffer: MakeBuffer, spawn: Spawner
) -> None:
    buffer = make_buffer(max_events=4)
    put(buffer, "s", range(1, 4))  # 3 of 4
    control = FakeControl()
    job = spawn(lambda: put(buffer, "s", range(4, 6), control), control)  # 2 more: no room
    assert control.paused.wait(DEADLINE)
    assert job.running()
    assert buffer.pending() == 3
    chunks = buffer.take(10)  # taken but not acknowledged: still no room
    assert job.running()
    buffer.ack(chunks)
    assert job.result() is True
    assert control.resumed.is_set()
    assert control.pauses and control.resumes == 1
    assert drain(buffer) == ["4", "5"]


def test_a_producer_blocked_under_block_is_released_as_soon_as_the_batch_fits(
    make_buffer: MakeBuffer, spawn: Spawner
) -> None:
    buffer = make_buffer(max_events=4)
    put(buffer, "s", range(1, 3))
    put(buffer, "s", range(3, 5))
    control = FakeControl()
    job = spawn(lambda: put(buffer, "s", range(5, 7), control), control)
    assert control.paused.wait(DEADLINE)
    (first,) = buffer.take(2)
    buffer.ack([first])  # frees 2: the batch of 2 fits
    assert job.result() is True
    assert buffer.depth()[0] == 4


def test_an_empty_buffer_takes_a_batch_larger_than_itself_under_block(
    make_buffer: MakeBuffer,
) -> None:
    buffer = make_buffer(max_events=3)
    control = FakeControl()
    assert put(buffer, "s", range(1, 8), control) is True
    assert not control.pauses
    assert buffer.depth()[0] == 7
    assert drain(buffer) == [str(i) for i in range(1, 8)]


def test_a_blocked_put_is_abandoned_when_its_stream_stops(
    make_buffer: MakeBuffer, spawn: Spawner
) -> None:
    buffer = make_buffer(max_events=2)
    put(buffer, "s", range(1, 3))
    control = FakeControl()
    job = spawn(lambda: put(buffer, "s", range(3, 4), control), control)
    assert control.paused.wait(DEADLINE)
    control.stopping.set()
    assert job.result() is False
    assert control.resumed.is_set()
    assert drain(buffer) == ["1", "2"]  # the abandoned batch was not added


def test_closing_the_buffer_releases_a_blocked_producer(
    make_buffer: MakeBuffer, spawn: Spawner
) -> None:
    buffer = make_buffer(max_events=2)
    put(buffer, "s", range(1, 3))
    control = FakeControl()
    job = spawn(lambda: put(buffer, "s", range(3, 4), control), control)
    assert control.paused.wait(DEADLINE)
    buffer.close()
    assert job.result() is False
    assert put(buffer, "s", range(4, 5)) is False  # refused after close


def test_several_blocked_producers_all_get_in_once_there_is_room(
    make_buffer: MakeBuffer, spawn: Spawner
) -> None:
    buffer = make_buffer(max_events=2)
    put(buffer, "x", range(1, 3))
    controls = [FakeControl() for _ in range(3)]
    jobs = [
        spawn(lambda c=c, name=name: put(buffer, name, range(1, 2), c), c)  # type: ignore[misc]
        for c, name in zip(controls, ["a", "b", "c"], strict=True)
    ]
    for control in controls:
        assert control.paused.wait(DEADLINE)
    got: list[tuple[str, str | None]] = []

    def drained_everything() -> bool:
        chunks = buffer.take(10)
        got.extend((c.stream, ev.id) for c in chunks for ev in c.events)
        buffer.ack(chunks)
        return not any(job.running() for job in jobs) and not buffer.pending()

    assert wait_until(drained_everything, DEADLINE)
    assert all(job.result() is True for job in jobs)
    assert sorted(got) == [("a", "1"), ("b", "1"), ("c", "1"), ("x", "1"), ("x", "2")]


# -- drop_newest -------------------------------------------------------------------------


def test_drop_newest_keeps_the_first_events_and_counts_the_rest(
    make_buffer: MakeBuffer, drops: Drops
) -> None:
    buffer = make_buffer(max_events=5, when_full=WhenFull.DROP_NEWEST)
    control = FakeControl()
    assert put(buffer, "s", range(1, 4), control) is True
    assert put(buffer, "s", range(4, 8), control) is True  # room for 2 of 4
    assert put(buffer, "t", range(1, 3), control) is True  # full: both dropped
    assert not control.pauses  # a drop policy never pauses the stream
    assert drops == [("s", 2), ("t", 2)]
    assert drain(buffer) == ["1", "2", "3", "4", "5"]


def test_drop_newest_on_an_empty_buffer_keeps_the_bound(
    make_buffer: MakeBuffer, drops: Drops
) -> None:
    buffer = make_buffer(max_events=3, when_full=WhenFull.DROP_NEWEST)
    put(buffer, "s", range(1, 8))
    assert drops == [("s", 4)]
    assert drain(buffer) == ["1", "2", "3"]


# -- byte bounds -------------------------------------------------------------------------


def _chunk_bytes(make_buffer: MakeBuffer) -> int:
    """What the buffer type counts for one chunk of two events (measured, not assumed)."""
    probe = make_buffer(max_events=None, max_bytes=1 << 30)
    put(probe, "s", range(10, 12))
    return probe.depth()[1]


def test_a_byte_bound_blocks_when_the_next_chunk_would_pass_it(
    make_buffer: MakeBuffer, spawn: Spawner
) -> None:
    size = _chunk_bytes(make_buffer)
    assert size > 0
    buffer = make_buffer(max_events=None, max_bytes=2 * size)
    put(buffer, "s", range(10, 12))
    put(buffer, "s", range(12, 14))  # exactly at the bound: fits
    assert buffer.depth() == (4, 2 * size)
    control = FakeControl()
    job = spawn(lambda: put(buffer, "s", range(14, 16), control), control)
    assert control.paused.wait(DEADLINE)
    buffer.ack(buffer.take(2))
    assert job.result() is True
    assert buffer.depth() == (4, 2 * size)


def test_a_byte_bound_drops_under_drop_newest(make_buffer: MakeBuffer, drops: Drops) -> None:
    size = _chunk_bytes(make_buffer)
    buffer = make_buffer(
        max_events=None, max_bytes=size + size // 2, when_full=WhenFull.DROP_NEWEST
    )
    put(buffer, "s", range(10, 12))
    put(buffer, "s", range(12, 14))
    assert drops == [("s", 2)]
    assert buffer.depth() == (2, size)


def test_an_empty_buffer_takes_a_chunk_larger_than_its_byte_bound(make_buffer: MakeBuffer) -> None:
    size = _chunk_bytes(make_buffer)
    buffer = make_buffer(max_events=None, max_bytes=size // 2)
    control = FakeControl()
    assert put(buffer, "s", range(10, 12), control) is True
    assert not control.pauses
    assert buffer.depth() == (2, size)
