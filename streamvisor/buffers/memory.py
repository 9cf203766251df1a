"""``MemoryBuffer``: a sink's bounded in-memory queue (the default buffer).

Bounded by events and optionally bytes. Events stay counted from ``put`` until the sink
acknowledges them, so a full buffer means "the sink is behind", whether the events are queued
or being written. Under ``block`` a producer waits on a condition that ``ack`` signals (no
polling), checking every ``WAIT_SLICE`` seconds whether its stream is being stopped.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence

from streamvisor.buffers.base import Chunk, DropCallback, event_bytes
from streamvisor.policy.flow import (
    BufferSettings,
    PauseControl,
    Position,
    WhenFull,
    WriteProgress,
    plan_overflow,
)
from streamvisor.sse import Event

__all__ = ["WAIT_SLICE", "MemoryBuffer"]

WAIT_SLICE = 0.05
"""Seconds between checks of a blocked producer for a stop request."""


class MemoryBuffer:
    """A ``SinkBuffer`` in memory.

    Args:
        settings: bounds and policy (``type`` must be ``memory``).
        on_ready: called (outside the lock) at the first ``put`` after ``arm()``; the sink
            actor passes a function that tells itself to drain.
        on_drop: called with (stream, count) for events a drop policy removed.
    """

    def __init__(
        self,
        settings: BufferSettings,
        on_ready: Callable[[], None] | None = None,
        on_drop: DropCallback | None = None,
    ) -> None:
        self.settings = settings
        self.on_ready = on_ready
        self.on_drop = on_drop
        self._max_events = settings.max_events
        self._max_bytes = settings.max_bytes
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Chunk] = deque()
        self._queued = 0  # events in _queue
        self._held = 0  # events put and not yet acknowledged (queued + taken)
        self._held_bytes = 0
        self._progress = WriteProgress()
        self._taken: dict[str, int] = {}  # chunks taken and not yet acknowledged, by stream
        self._armed = True
        self._closed = False

    # -- producers ---------------------------------------------------------------------
    def put(
        self,
        stream: str,
        events: Sequence[Event],
        last: Position,
        before: Position,
        control: PauseControl,
    ) -> bool:
        """Add one read's events; see ``SinkBuffer.put``."""
        n = len(events)
        if not n:
            return True
        nbytes = event_bytes(events) if self._max_bytes is not None else 0
        cond = self._cond
        paused = False
        dropped: list[tuple[str, int]] = []
        try:
            with cond:
                when_full = self.settings.when_full
                while True:
                    if self._closed:
                        return False
                    # drop_oldest can evict only what is queued, not what is being written
                    held = self._queued if when_full is WhenFull.DROP_OLDEST else self._held
                    plan = plan_overflow(self._room(nbytes, n), n, when_full, held)
                    if not plan.wait:
                        break
                    if control.abandoned():
                        return False
                    if not paused:
                        paused = True
                        control.pause("buffer")
                    cond.wait(WAIT_SLICE)
                if plan.evict:
                    dropped = self._evict(plan.evict)
                accept = plan.accept
                if accept < n:
                    dropped.append((stream, n - accept))
                    if accept == 0:
                        return True
                    # drop_newest keeps the first events, drop_oldest the last ones
                    oldest = when_full is WhenFull.DROP_OLDEST
                    keep = events[n - accept :] if oldest else events[:accept]
                    events, nbytes = keep, event_bytes(keep) if nbytes else 0
                self._progress.handed(stream, len(events), before)
                self._queue.append(Chunk(stream, events, last, nbytes))
                self._queued += len(events)
                self._held += len(events)
                self._held_bytes += nbytes
                # nobody to wake yet (wired after the outlet was routed): stay armed
                wake = self._armed and self.on_ready is not None
                if wake:
                    self._armed = False
        finally:
            if paused:
                control.resume()
            if dropped and self.on_drop is not None:
                for name, count in dropped:
                    self.on_drop(name, count)
        if wake and self.on_ready is not None:
            self.on_ready()
        return True

    def _room(self, nbytes: int, n: int) -> int:
        """Free places in events; byte bound folded in (0 or less when bytes are full)."""
        room = (self._max_events - self._held) if self._max_events is not None else n
        if self._max_bytes is not None and self._held_bytes + nbytes > self._max_bytes:
            room = min(room, 0) if self._held else room
        return room

    def _evict(self, count: int) -> list[tuple[str, int]]:
        """Remove ``count`` of the oldest queued events (drop_oldest); caller holds the lock."""
        dropped: dict[str, int] = {}
        while count > 0 and self._queue:
            chunk = self._queue[0]
            k = min(count, len(chunk.events))
            if k == len(chunk.events):
                self._queue.popleft()
                upto: Position | None = chunk.last
                freed_bytes = chunk.nbytes
            else:
                rest = chunk.events[k:]
                freed_bytes = chunk.nbytes - (event_bytes(rest) if chunk.nbytes else 0)
                chunk.events, chunk.nbytes = rest, chunk.nbytes - freed_bytes
                upto = None  # the rest of the chunk still holds the floor
            self._queued -= k
            self._held -= k
            self._held_bytes -= freed_bytes
            # A fully evicted chunk moves the floor past it only if no older chunk of its
            # stream is being written (taken, not acknowledged): that one holds the floor.
            if upto is not None and not self._taken.get(chunk.stream):
                self._progress.written(chunk.stream, k, upto)
            else:
                self._progress.discount(chunk.stream, k)
            dropped[chunk.stream] = dropped.get(chunk.stream, 0) + k
            count -= k
        return list(dropped.items())

    # -- the consumer ------------------------------------------------------------------
    def take(self, max_events: int) -> list[Chunk]:
        """Whole chunks, up to ``max_events`` events (at least one chunk); see SinkBuffer."""
        with self._cond:
            queue = self._queue
            if not queue:
                self._armed = True
                return []
            taken = [queue.popleft()]
            count = len(taken[0].events)
            while queue and count + len(queue[0].events) <= max_events:
                chunk = queue.popleft()
                taken.append(chunk)
                count += len(chunk.events)
            self._queued -= count
            in_flight = self._taken
            for chunk in taken:
                in_flight[chunk.stream] = in_flight.get(chunk.stream, 0) + 1
            return taken

    def arm(self) -> None:
        """Call ``on_ready`` at the next ``put``."""
        with self._cond:
            self._armed = True

    def ack(self, chunks: Sequence[Chunk]) -> None:
        """The chunks were written: free their room, move the write progress, wake producers."""
        with self._cond:
            for chunk in chunks:
                n = len(chunk.events)
                self._held -= n
                self._held_bytes -= chunk.nbytes
                self._progress.written(chunk.stream, n, chunk.last)
                self._untake(chunk.stream)
            self._cond.notify_all()

    def release(self, chunks: Sequence[Chunk]) -> None:
        """Put chunks that could not be written back in front of the queue."""
        with self._cond:
            for chunk in reversed(chunks):
                self._queue.appendleft(chunk)
                self._queued += len(chunk.events)
                self._untake(chunk.stream)

    def _untake(self, stream: str) -> None:
        """One taken chunk of ``stream`` came back (acknowledged or released); caller locks."""
        left = self._taken.get(stream, 0) - 1
        if left > 0:
            self._taken[stream] = left
        else:
            self._taken.pop(stream, None)

    # -- status ------------------------------------------------------------------------
    def holds_back(self, stream: str) -> Position | None:
        """The floor of ``stream`` while this sink holds unwritten events of it."""
        with self._cond:
            return self._progress.holds_back(stream)

    def pending(self) -> int:
        """Events queued and not yet taken."""
        return self._queued

    def depth(self) -> tuple[int, int]:
        """(events, bytes) held until acknowledged."""
        return self._held, self._held_bytes

    def close(self) -> None:
        """Wake waiting producers; further puts are refused. Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
