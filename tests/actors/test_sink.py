"""SinkActor with a real pykka actor, a real buffer, a fake sink and a fake scheduler: it
drains when woken, batches by ``max_batch`` and holds small batches for ``max_wait``,
retries a failing sink with backoff while acknowledging nothing (the buffer fills and the
producer blocks), drains on stop, and writes what a disk buffer kept from the last run.

Timers never run by themselves: the test fires them (``FakeScheduler.fire``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pykka
import pytest

from streamvisor.actors.messages import Drain
from streamvisor.actors.sink import RETRY_INITIAL, RETRY_MAX, SinkActor
from streamvisor.buffers import DiskBuffer, MemoryBuffer, SinkBuffer
from streamvisor.checkpoint.store import CheckpointError
from streamvisor.policy.flow import START, BufferSettings, Position, WhenFull
from streamvisor.sinks.base import SinkError
from streamvisor.sse import Event
from tests.support.events import make_events
from tests.support.flow import DEADLINE, FakeControl, Spawner, pos

pytestmark = pytest.mark.timeout(60)


class FakeScheduler:
    """``call_later(delay, callback)`` that only records; the test fires the callbacks."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.calls: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> None:
        with self.cond:
            self.calls.append((delay, callback))
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float = DEADLINE) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.calls) >= n, timeout)

    def delays(self) -> list[float]:
        with self.cond:
            return [delay for delay, _ in self.calls]

    def fire(self, index: int = -1) -> None:
        with self.cond:
            _, callback = self.calls[index]
        callback()


class FakeSink:
    """Records each ``write``; fails while ``failing`` is set."""

    def __init__(self, max_batch: int = 100, max_wait: float = 0.0) -> None:
        self.name = "fake"
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.failing = threading.Event()
        self.closed = threading.Event()
        self.cond = threading.Condition()
        self.batches: list[list[str | None]] = []
        self.attempts = 0
        self.fail_attempts: set[int] = set()  # these attempts (1, 2, ...) fail

    def write(self, events: Sequence[Event]) -> None:
        with self.cond:
            self.attempts += 1
            self.cond.notify_all()
            if self.failing.is_set() or self.attempts in self.fail_attempts:
                raise SinkError("sink fake: receiver down")
            self.batches.append([e.id for e in events])
            self.cond.notify_all()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed.set()

    def ids(self) -> list[str | None]:
        with self.cond:
            return [i for batch in self.batches for i in batch]

    def wait_for(self, n: int, timeout: float = DEADLINE) -> bool:
        """True once ``n`` events were written."""
        with self.cond:
            return self.cond.wait_for(lambda: sum(map(len, self.batches)) >= n, timeout)

    def wait_attempts(self, n: int, timeout: float = DEADLINE) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.attempts >= n, timeout)


class Rig:
    """A started SinkActor wired as the api wires it (``on_ready`` tells it ``Drain``)."""

    def __init__(self, sink: FakeSink, buffer: SinkBuffer) -> None:
        self.sink = sink
        self.buffer = buffer
        self.scheduler = FakeScheduler()
        self.ref: pykka.ActorRef[SinkActor] = SinkActor.start(sink, buffer, self.scheduler)
        ref = self.ref

        def wake() -> None:
            try:
                ref.tell(Drain())
            except pykka.ActorDeadError:
                pass

        buffer.on_ready = wake

    def put(self, ids: range, control: FakeControl | None = None) -> bool:
        events = make_events("s", ids)
        before = Position(ids[0] - 1, str(ids[0] - 1) if ids[0] > 1 else None)
        return self.buffer.put("s", events, pos(events, ids[-1]), before, control or FakeControl())

    def flushed(self) -> None:
        """Wait until the actor has handled every message told so far."""
        self.ref.ask(_Ping(), timeout=DEADLINE)  # answered after what is queued before it


class _Ping:
    pass


@pytest.fixture
def rigs() -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(sink: FakeSink, buffer: SinkBuffer | None = None) -> Rig:
        rig = Rig(sink, buffer or MemoryBuffer(BufferSettings(max_events=100)))
        made.append(rig)
        return rig

    try:
        yield make
    finally:
        for rig in made:
            rig.sink.failing.clear()
            try:
                rig.ref.stop(block=True, timeout=DEADLINE)
            except pykka.ActorDeadError:
                pass
            rig.buffer.close()


# -- draining ------------------------------------------------------------------------------


def test_a_put_wakes_the_actor_which_writes_and_acknowledges(rigs: Callable[..., Rig]) -> None:
    rig = rigs(FakeSink())
    rig.put(range(1, 4))
    assert rig.sink.wait_for(3)
    assert rig.sink.ids() == ["1", "2", "3"]
    rig.flushed()
    assert rig.buffer.depth() == (0, 0)
    assert rig.buffer.holds_back("s") is None
    rig.put(range(4, 6))  # the actor re-armed the wake-up when it found nothing more
    assert rig.sink.wait_for(5)
    assert rig.sink.ids() == ["1", "2", "3", "4", "5"]
    assert rig.scheduler.delays() == []  # no holding without max_wait


def test_a_chunk_larger_than_max_batch_is_written_in_max_batch_pieces(
    rigs: Callable[..., Rig],
) -> None:
    rig = rigs(FakeSink(max_batch=2))
    rig.put(range(1, 6))
    assert rig.sink.wait_for(5)
    assert rig.sink.batches == [["1", "2"], ["3", "4"], ["5"]]


def test_whole_chunks_are_taken_up_to_max_batch_per_write() -> None:
    buffer = MemoryBuffer(BufferSettings(max_events=100))
    for first in (1, 3, 5):
        events = make_events("s", range(first, first + 2))
        buffer.put("s", events, pos(events, first + 1), START, FakeControl())
    sink = FakeSink(max_batch=3)
    ref = SinkActor.start(sink, buffer, FakeScheduler())  # drains what it finds at start
    try:
        assert sink.wait_for(6)
        assert sink.batches == [["1", "2"], ["3", "4"], ["5", "6"]]
    finally:
        ref.stop(block=True, timeout=DEADLINE)


# -- max_wait ------------------------------------------------------------------------------


def test_a_small_batch_is_held_for_max_wait(rigs: Callable[..., Rig]) -> None:
    rig = rigs(FakeSink(max_batch=10, max_wait=1.5))
    rig.put(range(1, 4))
    assert rig.scheduler.wait_for(1)
    rig.flushed()
    assert rig.scheduler.delays() == [1.5]
    assert rig.sink.batches == []
    assert rig.buffer.holds_back("s") == START  # held, not written: no checkpoint past it
    rig.put(range(4, 6))  # still below max_batch: held, no second timer
    rig.flushed()
    assert rig.scheduler.delays() == [1.5]
    rig.scheduler.fire()
    assert rig.sink.wait_for(5)
    assert rig.sink.batches == [["1", "2", "3", "4", "5"]]


def test_a_held_batch_is_written_as_soon_as_it_reaches_max_batch(rigs: Callable[..., Rig]) -> None:
    rig = rigs(FakeSink(max_batch=10, max_wait=60.0))
    rig.put(range(1, 4))
    assert rig.scheduler.wait_for(1)
    rig.put(range(4, 11))  # 10 events: a full batch
    assert rig.sink.wait_for(10)
    assert rig.sink.batches == [[str(i) for i in range(1, 11)]]


def test_a_full_batch_is_written_at_once_without_a_timer(rigs: Callable[..., Rig]) -> None:
    rig = rigs(FakeSink(max_batch=4, max_wait=60.0))
    rig.put(range(1, 5))
    assert rig.sink.wait_for(4)
    rig.flushed()
    assert rig.scheduler.delays() == []


# -- failures ------------------------------------------------------------------------------


def test_a_failing_sink_is_retried_with_backoff_and_nothing_is_acknowledged(
    rigs: Callable[..., Rig], caplog: pytest.LogCaptureFixture
) -> None:
    sink = FakeSink()
    sink.failing.set()
    rig = rigs(sink)
    with caplog.at_level(logging.ERROR, logger="streamvisor.actors.sink"):
        rig.put(range(1, 3))
        assert rig.scheduler.wait_for(1)
        for n in range(2, 5):
            rig.scheduler.fire()
            assert rig.scheduler.wait_for(n)
    assert rig.scheduler.delays() == [RETRY_INITIAL * 2**i for i in range(4)]
    assert sink.attempts == 4
    assert sink.batches == []
    assert rig.buffer.depth()[0] == 2
    assert rig.buffer.holds_back("s") == START
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # rate limited
    assert "sink fake failed to write 2 events" in errors[0]
    assert "receiver down" in errors[0]
    sink.failing.clear()
    rig.scheduler.fire()
    assert sink.wait_for(2)
    rig.flushed()
    assert rig.buffer.depth()[0] == 0
    assert rig.buffer.holds_back("s") is None


def test_the_retry_delay_stops_growing_at_its_cap(rigs: Callable[..., Rig]) -> None:
    sink = FakeSink()
    sink.failing.set()
    rig = rigs(sink)
    rig.put(range(1, 2))
    for n in range(1, 12):
        assert rig.scheduler.wait_for(n)
        rig.scheduler.fire()
    assert rig.scheduler.wait_for(12)
    assert rig.scheduler.delays()[-1] == RETRY_MAX
    assert max(rig.scheduler.delays()) == RETRY_MAX


def test_a_broken_sink_fills_its_buffer_and_the_producer_blocks_until_it_recovers(
    rigs: Callable[..., Rig], spawn: Spawner
) -> None:
    sink = FakeSink()
    sink.failing.set()
    rig = rigs(sink, MemoryBuffer(BufferSettings(max_events=4)))
    rig.put(range(1, 3))
    assert rig.scheduler.wait_for(1)  # the write failed; a retry is due
    rig.put(range(3, 5))  # the buffer is now full
    control = FakeControl()
    job = spawn(lambda: rig.put(range(5, 7), control), control)
    assert control.paused.wait(DEADLINE)
    assert job.running()
    rig.scheduler.fire()  # still failing
    assert rig.scheduler.wait_for(2)
    assert job.running()
    assert rig.buffer.depth()[0] == 4
    sink.failing.clear()
    rig.scheduler.fire()
    assert job.result() is True
    assert sink.wait_for(6)
    assert sink.ids() == [str(i) for i in range(1, 7)]  # nothing lost, nothing twice


@pytest.mark.parametrize(
    ("when_full", "survivors"),
    [
        (WhenFull.DROP_NEWEST, ["1", "2", "3", "4"]),  # 5-6 found no room
        (WhenFull.DROP_OLDEST, ["1", "2", "5", "6"]),  # 3-4 evicted; 1-2 were being written
    ],
)
def test_a_broken_sink_behind_a_drop_policy_never_pauses_its_streams_and_writes_the_survivors(
    rigs: Callable[..., Rig], when_full: WhenFull, survivors: list[str]
) -> None:
    sink = FakeSink()
    sink.failing.set()
    drops: list[tuple[str, int]] = []
    buffer = MemoryBuffer(
        BufferSettings(max_events=4, when_full=when_full),
        on_drop=lambda stream, count: drops.append((stream, count)),
    )
    rig = rigs(sink, buffer)
    rig.put(range(1, 3))
    assert rig.scheduler.wait_for(1)  # 1-2 taken, the write failed; a retry is due
    control = FakeControl()
    assert rig.put(range(3, 5), control) is True  # now full
    assert rig.put(range(5, 7), control) is True  # over the bound: a drop, not a wait
    assert control.pauses == []
    assert drops == [("s", 2)]
    sink.failing.clear()
    rig.scheduler.fire()
    assert sink.wait_for(4)
    rig.flushed()
    assert sink.ids() == survivors
    assert rig.buffer.depth() == (0, 0)
    assert rig.buffer.holds_back("s") is None


def test_a_chunk_that_failed_half_way_is_not_written_twice(rigs: Callable[..., Rig]) -> None:
    sink = FakeSink(max_batch=2)
    sink.fail_attempts = {2}  # 1-2 are written, then 3-4 fail
    rig = rigs(sink)
    rig.put(range(1, 6))
    assert rig.scheduler.wait_for(1)
    assert rig.buffer.holds_back("s") == START  # the chunk is not written yet
    rig.scheduler.fire()
    assert sink.wait_for(5)
    assert sink.batches == [["1", "2"], ["3", "4"], ["5"]]
    rig.flushed()
    assert rig.buffer.depth()[0] == 0
    assert rig.buffer.holds_back("s") is None


def test_a_wake_up_during_a_retry_wait_does_not_write_early(rigs: Callable[..., Rig]) -> None:
    sink = FakeSink()
    sink.failing.set()
    rig = rigs(sink)
    rig.put(range(1, 2))
    assert rig.scheduler.wait_for(1)
    rig.ref.tell(Drain())  # as a put would (if the buffer were armed)
    rig.flushed()
    assert sink.attempts == 1  # the retry timer decides when to try again


# -- stopping and restarting ---------------------------------------------------------------


def test_stopping_writes_what_is_held_then_closes_the_sink(rigs: Callable[..., Rig]) -> None:
    rig = rigs(FakeSink(max_batch=10, max_wait=60.0))
    rig.put(range(1, 4))
    assert rig.scheduler.wait_for(1)
    assert rig.sink.batches == []
    rig.ref.stop(block=True, timeout=DEADLINE)
    assert rig.sink.ids() == ["1", "2", "3"]
    assert rig.sink.closed.is_set()
    assert rig.buffer.depth()[0] == 0


def test_stopping_with_a_failing_sink_gives_up_at_once_and_keeps_the_events(
    rigs: Callable[..., Rig],
) -> None:
    sink = FakeSink()
    sink.failing.set()
    rig = rigs(sink)
    rig.put(range(1, 4))
    assert rig.scheduler.wait_for(1)
    rig.ref.stop(block=True, timeout=DEADLINE)
    assert sink.attempts == 1  # no retries while stopping
    assert sink.closed.is_set()
    assert rig.buffer.depth()[0] == 3
    assert rig.buffer.holds_back("s") == START


def test_what_a_disk_buffer_kept_from_the_last_run_is_written_at_start(
    tmp_path: Path, rigs: Callable[..., Rig]
) -> None:
    path = tmp_path / "sink.db"
    first = DiskBuffer(path, BufferSettings.disk())
    for start in (1, 4):
        events = make_events("s", range(start, start + 3))
        first.put("s", events, pos(events, start + 2), START, FakeControl())
    first.close()
    rig = rigs(FakeSink(max_wait=60.0), DiskBuffer(path, BufferSettings.disk()))
    assert rig.sink.wait_for(6)  # forced: no waiting for max_wait
    assert rig.sink.ids() == [str(i) for i in range(1, 7)]
    rig.flushed()
    assert rig.buffer.depth()[0] == 0
    rig.ref.stop(block=True, timeout=DEADLINE)
    rig.buffer.close()
    again = DiskBuffer(path, BufferSettings.disk())
    try:
        assert again.pending() == 0  # acknowledged rows are gone
    finally:
        again.close()


def test_a_sink_that_fails_to_close_still_stops(rigs: Callable[..., Rig]) -> None:
    sink = FakeSink()

    def broken_close() -> None:
        raise SinkError("cannot flush")

    sink.close = broken_close  # type: ignore[method-assign]
    rig = rigs(sink)
    rig.ref.stop(block=True, timeout=DEADLINE)
    assert not rig.ref.is_alive()


class FlakyBuffer(MemoryBuffer):
    """A memory buffer whose ``take`` and ``ack`` fail the first time (a disk buffer whose
    file cannot be read or updated for a moment)."""

    def __init__(self, fail: set[str]) -> None:
        super().__init__(BufferSettings(max_events=100))
        self.fail = fail

    def take(self, max_events: int) -> list[Any]:
        if "take" in self.fail:
            self.fail.discard("take")
            raise CheckpointError("b.db", "cannot read disk buffer: disk I/O error")
        return super().take(max_events)

    def ack(self, chunks: Sequence[Any]) -> None:
        super().ack(chunks)
        if "ack" in self.fail:
            self.fail.discard("ack")
            raise CheckpointError("b.db", "cannot update disk buffer: disk I/O error")


def test_a_buffer_that_cannot_be_read_is_retried_and_never_kills_the_actor(
    rigs: Callable[..., Rig], caplog: pytest.LogCaptureFixture
) -> None:
    rig = rigs(FakeSink(), FlakyBuffer({"take"}))
    with caplog.at_level(logging.ERROR, logger="streamvisor.actors.sink"):
        rig.put(range(1, 3))
        assert rig.scheduler.wait_for(1)
    assert rig.ref.is_alive()
    assert rig.scheduler.delays() == [RETRY_INITIAL]
    assert any("disk I/O error" in r.getMessage() for r in caplog.records)
    rig.scheduler.fire()
    assert rig.sink.wait_for(2)
    assert rig.sink.ids() == ["1", "2"]


def test_a_failed_acknowledgement_is_logged_and_never_kills_the_actor(
    rigs: Callable[..., Rig], caplog: pytest.LogCaptureFixture
) -> None:
    rig = rigs(FakeSink(), FlakyBuffer({"ack"}))
    with caplog.at_level(logging.ERROR, logger="streamvisor.actors.sink"):
        rig.put(range(1, 3))
        assert rig.sink.wait_for(2)
        rig.flushed()
    assert rig.ref.is_alive()
    assert any("disk I/O error" in r.getMessage() for r in caplog.records)
    rig.put(range(3, 4))
    assert rig.sink.wait_for(3)
    assert rig.sink.ids() == ["1", "2", "3"]  # written once: not retried
