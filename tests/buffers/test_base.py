"""Sink buffers (``MemoryBuffer`` and ``DiskBuffer``): put/take/ack/release, wake-ups, block,
abandon, drop policies with exact counts, byte bounds, checkpoint floors, and the disk
buffer's persistence across close, ``kill -9`` and a corrupted file.

A blocked ``put`` runs in a thread (``Spawner``) and is watched through a ``FakeControl``
whose ``pause()`` sets an Event: no sleeps, every wait has a deadline.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streamvisor.buffers import DiskBuffer, MemoryBuffer, SinkBuffer, event_bytes
from streamvisor.checkpoint.store import CheckpointError
from streamvisor.policy.flow import START, BufferSettings, Position, WhenFull
from streamvisor.sse import Event
from tests.support.flow import DEADLINE, FakeControl, Spawner, make_events, pos
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(60)

Drops = list[tuple[str, int]]
MakeBuffer = Callable[..., SinkBuffer]


@pytest.fixture
def spawn() -> Iterator[Spawner]:
    with Spawner() as spawner:
        yield spawner


@pytest.fixture
def drops() -> Drops:
    return []


@pytest.fixture(params=["memory", "disk"])
def make_buffer(
    request: pytest.FixtureRequest, tmp_path: Path, drops: Drops
) -> Iterator[MakeBuffer]:
    """Build buffers of the parametrized type; ``on_drop`` appends to ``drops``."""
    made: list[SinkBuffer] = []

    def make(
        max_events: int | None = 10,
        max_bytes: int | None = None,
        when_full: WhenFull = WhenFull.BLOCK,
        on_ready: Callable[[], None] | None = None,
    ) -> SinkBuffer:
        settings = BufferSettings(
            type=request.param, max_events=max_events, max_bytes=max_bytes, when_full=when_full
        )
        buffer: SinkBuffer
        if request.param == "disk":
            path = tmp_path / f"buffer{len(made)}.db"
            buffer = DiskBuffer(path, settings, on_ready=on_ready, on_drop=_record(drops))
        else:
            buffer = MemoryBuffer(settings, on_ready=on_ready, on_drop=_record(drops))
        made.append(buffer)
        return buffer

    try:
        yield make
    finally:
        for buffer in made:
            buffer.close()


def _record(drops: Drops) -> Callable[[str, int], None]:
    return lambda stream, count: drops.append((stream, count))


def put(buffer: SinkBuffer, stream: str, ids: range | list[int], control: Any = None) -> bool:
    """Put events ``ids`` of ``stream`` (positions: seq == id)."""
    events = make_events(stream, ids)
    before = Position(ids[0] - 1, str(ids[0] - 1) if ids[0] > 1 else None)
    return buffer.put(stream, events, pos(events, ids[-1]), before, control or FakeControl())


def taken_ids(chunks: list[Any]) -> list[str | None]:
    return [ev.id for chunk in chunks for ev in chunk.events]


def drain(buffer: SinkBuffer) -> list[str | None]:
    """Take and ack everything; the ids in order."""
    ids: list[str | None] = []
    while chunks := buffer.take(1000):
        ids += taken_ids(chunks)
        buffer.ack(chunks)
    return ids


# -- put, take, ack, release ---------------------------------------------------------------


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


# -- wake-ups ------------------------------------------------------------------------------


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


def test_a_put_before_the_wake_up_is_wired_still_wakes_once_it_is(tmp_path: Path) -> None:
    # The daemon wires ``on_ready`` after the sink's outlet is routed: a put in between must
    # not use up the wake-up that nobody received.
    buffer = MemoryBuffer(BufferSettings())
    put(buffer, "s", range(1, 3))
    woken: list[int] = []
    buffer.on_ready = lambda: woken.append(1)
    put(buffer, "s", range(3, 5))
    assert woken == [1]


# -- block ---------------------------------------------------------------------------------


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


# -- drop policies -------------------------------------------------------------------------


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


def test_memory_drop_oldest_evicts_queued_events_and_keeps_all_new_ones(drops: Drops) -> None:
    buffer = MemoryBuffer(
        BufferSettings(max_events=5, when_full=WhenFull.DROP_OLDEST), on_drop=_record(drops)
    )
    put(buffer, "s", range(1, 4))
    put(buffer, "s", range(4, 8))  # room for 2: the 2 oldest go
    assert drops == [("s", 2)]
    assert buffer.depth()[0] == 5
    assert drain(buffer) == ["3", "4", "5", "6", "7"]


def test_memory_drop_oldest_counts_evictions_per_stream(drops: Drops) -> None:
    buffer = MemoryBuffer(
        BufferSettings(max_events=5, when_full=WhenFull.DROP_OLDEST), on_drop=_record(drops)
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
        BufferSettings(max_events=4, when_full=WhenFull.DROP_OLDEST), on_drop=_record(drops)
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
        BufferSettings(max_events=3, when_full=WhenFull.DROP_OLDEST), on_drop=_record(drops)
    )
    put(buffer, "s", range(1, 8))
    assert drops == [("s", 4)]
    assert drain(buffer) == ["5", "6", "7"]


def test_a_disk_buffer_told_to_drop_oldest_drops_the_newest_instead(
    tmp_path: Path, drops: Drops
) -> None:
    # Rows on disk are never rewritten (config refuses drop_oldest for a disk buffer).
    settings = BufferSettings(type="disk", max_events=3, when_full=WhenFull.DROP_OLDEST)
    buffer = DiskBuffer(tmp_path / "b.db", settings, on_drop=_record(drops))
    try:
        put(buffer, "s", range(1, 3))
        put(buffer, "s", range(3, 6))
        assert drops == [("s", 2)]
        assert drain(buffer) == ["1", "2", "3"]
    finally:
        buffer.close()


# -- byte bounds ---------------------------------------------------------------------------


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
    buffer = MemoryBuffer(settings, on_drop=_record(drops))
    put(buffer, "s", range(1, 4))
    put(buffer, "s", range(4, 6))
    assert drops == [("s", 2)]
    assert buffer.depth() == (3, 3 * one)
    assert drain(buffer) == ["3", "4", "5"]


# -- checkpoint floors ---------------------------------------------------------------------


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


def test_a_disk_buffer_never_holds_a_stream_back(tmp_path: Path) -> None:
    buffer = DiskBuffer(tmp_path / "b.db", BufferSettings.disk())
    try:
        put(buffer, "s", range(1, 4))
        assert buffer.holds_back("s") is None  # a put is durable when it returns
    finally:
        buffer.close()


# -- disk persistence ----------------------------------------------------------------------


def test_a_reopened_disk_buffer_holds_what_was_not_acknowledged_in_order(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "b.db"  # parent folders are created
    buffer = DiskBuffer(path, BufferSettings.disk())
    put(buffer, "a", range(1, 4))
    put(buffer, "b", range(1, 3))
    put(buffer, "a", range(4, 6))
    put(buffer, "b", range(3, 4))
    buffer.ack(buffer.take(3))  # a1-a3 written
    taken = buffer.take(2)  # b1-b2 taken, not acknowledged: delivered again
    assert taken_ids(taken) == ["1", "2"]
    buffer.close()
    buffer.close()  # idempotent

    woken: list[int] = []
    again = DiskBuffer(path, BufferSettings.disk(), on_ready=lambda: woken.append(1))
    try:
        assert again.pending() == 5
        assert again.depth()[0] == 5
        chunks = again.take(100)
        assert [(c.stream, [e.id for e in c.events]) for c in chunks] == [
            ("b", ["1", "2"]),
            ("a", ["4", "5"]),
            ("b", ["3"]),
        ]
        assert chunks[1].events == make_events("a", range(4, 6))
        again.ack(chunks)
        put(again, "a", range(6, 7))  # appended after what was there
        assert woken == [1]
    finally:
        again.close()
    last = DiskBuffer(path, BufferSettings.disk())
    try:
        assert drain(last) == ["6"]
    finally:
        last.close()


def test_a_reopened_disk_buffer_counts_its_rows_against_the_bound(
    tmp_path: Path, spawn: Spawner
) -> None:
    path = tmp_path / "b.db"
    settings = BufferSettings(type="disk", max_events=3)
    buffer = DiskBuffer(path, settings)
    put(buffer, "s", range(1, 4))
    buffer.close()
    again = DiskBuffer(path, settings)
    try:
        control = FakeControl()
        job = spawn(lambda: put(again, "s", range(4, 5), control), control)
        assert control.paused.wait(DEADLINE)
        again.ack(again.take(10))
        assert job.result() is True
    finally:
        again.close()


_CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from streamvisor.buffers import DiskBuffer
    from streamvisor.policy.flow import BufferSettings, Position
    from tests.support.flow import FakeControl, make_events

    buffer = DiskBuffer(sys.argv[1], BufferSettings.disk())
    for first in range(1, 200, 10):
        events = make_events("s", range(first, first + 10))
        buffer.put("s", events, Position(first + 9, str(first + 9)), Position(0, None),
                   FakeControl())
    buffer.ack(buffer.take(25))  # whole chunks: the first 2 (20 events) were written
    buffer.take(10)  # taken and never acknowledged: delivered again
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_disk_buffer_survives_kill_9_with_every_unacknowledged_row(tmp_path: Path) -> None:
    path = str(tmp_path / "b.db")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH_SCRIPT, path],
        timeout=60,
        capture_output=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.returncode == -9, proc.stderr
    buffer = DiskBuffer(path, BufferSettings.disk())
    try:
        assert drain(buffer) == [str(i) for i in range(21, 201)]
    finally:
        buffer.close()


def test_a_file_that_is_not_a_database_is_a_checkpoint_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    path.write_bytes(b"not sqlite, just text\n" * 300)
    with pytest.raises(CheckpointError) as info:
        DiskBuffer(path, BufferSettings.disk())
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_a_database_with_damaged_pages_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    buffer = DiskBuffer(path, BufferSettings.disk())
    for first in range(1, 2000, 20):
        put(buffer, "s", range(first, first + 20))
    buffer.close()
    _checkpoint_wal(path)
    data = bytearray(path.read_bytes())
    assert len(data) > 8192
    data[4096:8192] = b"\xa5" * 4096  # the table's pages, not the file header
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as info:
        broken = DiskBuffer(path, BufferSettings.disk())
        try:
            drain(broken)
        finally:
            broken.close()
    assert info.value.path == str(path)


def test_a_buffer_table_of_another_shape_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE chunks (name TEXT)")
    conn.close()
    with pytest.raises(CheckpointError):
        DiskBuffer(path, BufferSettings.disk())


def test_an_unwritable_folder_is_a_checkpoint_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError) as info:
        DiskBuffer(blocker / "b.db", BufferSettings.disk())
    assert str(blocker / "b.db") in str(info.value)


def _checkpoint_wal(path: Path) -> None:
    """Move the WAL's pages into the main file (so damage to it is damage to the data)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
