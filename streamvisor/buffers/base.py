"""The ``SinkBuffer`` interface and the ``Chunk`` it moves (one read's events for one sink)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from streamvisor.policy.flow import BufferSettings, PauseControl, Position
from streamvisor.sse import Event

__all__ = ["Chunk", "DropCallback", "SinkBuffer", "event_bytes"]

EVENT_OVERHEAD = 64
"""Bytes counted per event on top of its data, id and type (field names, framing): a byte
bound is approximate, as Vector's memory buffer's is."""

DropCallback = Callable[[str, int], None]
"""``on_drop(stream, count)``: the buffer dropped events by its ``when_full`` policy."""


def event_bytes(events: Sequence[Event]) -> int:
    """The bytes a byte bound counts for ``events`` (data, id, type plus a fixed overhead)."""
    return sum(len(ev.data) + len(ev.id or "") + len(ev.event) for ev in events) + (
        EVENT_OVERHEAD * len(events)
    )


class Chunk:
    """Events of one stream from one read, for one sink.

    Attributes:
        stream: the stream's name.
        events: the events, in order.
        last: the stream's position after the read (written once the chunk is written).
        nbytes: what a byte bound counts for them (0 when the buffer counts no bytes).
        key: the disk buffer's row id (0 in memory).
    """

    __slots__ = ("events", "key", "last", "nbytes", "stream")

    def __init__(
        self,
        stream: str,
        events: Sequence[Event],
        last: Position,
        nbytes: int = 0,
        key: int = 0,
    ) -> None:
        self.stream = stream
        self.events = events
        self.last = last
        self.nbytes = nbytes
        self.key = key

    def __len__(self) -> int:
        return len(self.events)


class SinkBuffer(Protocol):
    """A bounded, thread-safe queue of chunks: many producers (stream threads), one consumer.

    Attributes:
        settings: the bounds and the ``when_full`` policy.
        on_ready: called (outside the buffer's lock) at the first ``put`` after ``arm()``:
            the consumer's wake-up.
    """

    settings: BufferSettings
    on_ready: Callable[[], None] | None

    def put(
        self,
        stream: str,
        events: Sequence[Event],
        last: Position,
        before: Position,
        control: PauseControl,
    ) -> bool:
        """Add one read's events. Waits while full under ``block``; drops under a drop
        policy (reported through the buffer's drop callback).

        Args:
            stream: the stream they came from.
            events: the events (already filtered for this sink).
            last: the stream's position after them.
            before: the stream's position before them (the checkpoint floor meanwhile).
            control: the waiting stream (to give up when it is stopped).

        Returns:
            False when the wait was given up because the stream is stopping.
        """
        ...

    def take(self, max_events: int) -> list[Chunk]:
        """Up to ``max_events`` events in whole chunks (at least one chunk if any), oldest
        first; they stay counted until ``ack``. An empty result re-arms the wake-up."""
        ...

    def arm(self) -> None:
        """Call ``on_ready`` again at the next ``put`` (the consumer is idle or holding)."""
        ...

    def ack(self, chunks: Sequence[Chunk]) -> None:
        """The chunks were written: free their room and record the write."""
        ...

    def release(self, chunks: Sequence[Chunk]) -> None:
        """The chunks could not be written: put them back in front, to be taken again."""
        ...

    def holds_back(self, stream: str) -> Position | None:
        """The position the checkpoint of ``stream`` must not pass, or None."""
        ...

    def pending(self) -> int:
        """Events waiting to be taken (not counting taken, unacknowledged ones)."""
        ...

    def depth(self) -> tuple[int, int]:
        """(events, bytes) held: queued plus taken and not yet acknowledged."""
        ...

    def close(self) -> None:
        """Release resources and wake any waiting producer. Idempotent."""
        ...
