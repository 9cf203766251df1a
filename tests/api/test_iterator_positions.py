"""Where ``connect()``'s and ``aconnect()``'s iterators stand after a ``break``, a failure or
a cancelled wait: the next loop goes on from the next event, nothing is skipped or repeated.

The outlets are fed directly (no server): ``offer()`` as the stream's thread calls it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from streamvisor.api.aiterator import AsyncEventStream, LoopOutlet
from streamvisor.api.iterator import EventStream, QueueOutlet
from streamvisor.errors import StreamFailedError
from streamvisor.policy.flow import Position
from streamvisor.spec import StreamSpec
from streamvisor.sse import Event

START = Position(0, None)


class _Control:
    """A ``PauseControl`` for a stream that is never stopped."""

    def abandoned(self) -> bool:
        return False

    def pause(self, outlet: str) -> None:
        pass

    def resume(self) -> None:
        pass


def _events(*ids: int) -> list[Event]:
    return [
        Event(
            stream="s",
            id=str(i),
            event="message",
            data=f"d{i}",
            last_event_id=str(i),
            received_at=0.0,
        )
        for i in ids
    ]


def _ids(events: Sequence[Event]) -> list[int]:
    return [int(ev.id or 0) for ev in events]


def _sync_stream(*reads: list[Event]) -> tuple[EventStream, QueueOutlet]:
    outlet = QueueOutlet("it", None, None, capacity=100)
    for read in reads:
        assert outlet.offer("s", read, START, START, _Control())
    # the iterator needs no Streamvisor until close(), which these tests do not call
    return EventStream(None, outlet, None, owned=False), outlet  # type: ignore[arg-type]


def test_a_loop_that_breaks_mid_read_is_resumed_by_the_next_loop_and_by_next() -> None:
    stream, outlet = _sync_stream(_events(1, 2, 3, 4, 5), _events(6, 7, 8))
    outlet.finish()
    first: list[Event] = []
    for event in stream:
        first.append(event)
        if len(first) == 2:
            break
    third = next(stream)
    rest = list(stream)
    assert _ids(first) + _ids([third]) + _ids(rest) == [1, 2, 3, 4, 5, 6, 7, 8]
    with pytest.raises(StopIteration):
        next(stream)
    assert list(stream) == []


def test_a_failure_comes_after_the_queued_events_and_again_to_every_later_loop() -> None:
    stream, outlet = _sync_stream(_events(1, 2))
    outlet.finish(StreamFailedError("s", "HTTP 404"))
    got: list[Event] = []
    with pytest.raises(StreamFailedError, match="HTTP 404"):
        for event in stream:
            got.append(event)
    assert _ids(got) == [1, 2]
    with pytest.raises(StreamFailedError):
        next(stream)
    with pytest.raises(StreamFailedError):
        list(stream)


async def _async_stream() -> tuple[AsyncEventStream, LoopOutlet]:
    outlet = LoopOutlet("it", None, None, 100, asyncio.get_running_loop())
    stream = AsyncEventStream(StreamSpec(name="s", url="http://127.0.0.1:9/"), 100)
    stream._outlet = outlet  # what __aenter__ sets up, without starting a stream
    return stream, outlet


def test_an_async_loop_that_breaks_or_whose_wait_is_cancelled_loses_nothing() -> None:
    async def main() -> list[int]:
        stream, outlet = await _async_stream()
        outlet.offer("s", _events(1, 2, 3), START, START, _Control())
        got: list[Event] = []
        async for event in stream:
            got.append(event)
            if len(got) == 2:
                break
        got.append(await anext(stream))
        with pytest.raises(TimeoutError):  # nothing queued: the wait is cancelled
            await asyncio.wait_for(anext(stream), 0.05)
        outlet.offer("s", _events(4, 5), START, START, _Control())
        outlet.finish()
        got += [event async for event in stream]
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        return _ids(got)

    assert asyncio.run(main()) == [1, 2, 3, 4, 5]


def test_an_async_failure_comes_after_the_queued_events_and_again_later() -> None:
    async def main() -> list[int]:
        stream, outlet = await _async_stream()
        outlet.offer("s", _events(1, 2), START, START, _Control())
        outlet.finish(StreamFailedError("s", "HTTP 404"))
        got: list[Event] = []
        with pytest.raises(StreamFailedError, match="HTTP 404"):
            async for event in stream:
                got.append(event)
        with pytest.raises(StreamFailedError):
            await anext(stream)
        return _ids(got)

    assert asyncio.run(main()) == [1, 2]
