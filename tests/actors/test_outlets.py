"""The outlets other than actors (``SinkOutlet``, ``ListenerOutlet``) and what every outlet
shares: drop counts and their rate-limited warnings. ``ActorOutlet`` is in
``test_actor_outlet.py``, the hub in ``test_hub.py``.

A blocked ``offer`` runs in a thread (``Spawner``) watched through a ``FakeControl``; the slow
subscriber is conftest's ``Blocker`` (it blocks on a gate in ``on_receive``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from streamvisor.actors.outlets import ListenerOutlet, SinkOutlet
from streamvisor.buffers import DiskBuffer, MemoryBuffer
from streamvisor.policy.flow import START, BufferSettings, DropLog, Position, WhenFull
from streamvisor.sse import Event
from tests.support.events import make_events
from tests.support.flow import DEADLINE, FakeControl, Spawner, offer, pos

pytestmark = pytest.mark.timeout(60)


# -- drop warnings -----------------------------------------------------------------------


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


# -- SinkOutlet --------------------------------------------------------------------------


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


# -- ListenerOutlet ----------------------------------------------------------------------


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
