"""Outlets: where a stream's reader thread hands its events, one call per read.

Fan-out happens in the stream's own thread (no hub hop): after dedup, the stream offers the
read's events to each outlet that takes the stream. An outlet either accepts them, waits for
room (``block``, the default: the stream stops reading, so TCP slows the upstream), or drops
by the policy its user chose, counting and logging every drop.

- ``ActorOutlet`` (``actor_outlet``): a pykka actor subscriber; its inbox is its buffer. Events go
  straight into the inbox (one ``Event`` per message, or one ``EventBatch`` per read).
- ``SinkOutlet``: a built-in sink behind a ``SinkBuffer`` (memory or disk) drained by its
  ``SinkActor``; it acknowledges writes, so checkpoints only cover written events.
- ``ListenerOutlet``: a callback that must not block (the relay, iterators' adapters).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence

from streamvisor.buffers import SinkBuffer
from streamvisor.policy.flow import DropLog, PauseControl, Position, WhenFull
from streamvisor.sse import Event
from streamvisor.status import SubscriberStatus

log = logging.getLogger(__name__)


class Outlet:
    """Common part: name, filters, counters and the drop log.

    Attributes:
        name: the subscriber's name.
        streams: stream names taken (None: all).
        events: event types taken (None: all).
        when_full: the overflow policy.
        delivered: events handed over.
        dropped: events dropped, by stream.
        removed: why the outlet was removed ("dead", "disconnected") or None.
    """

    kind = "outlet"
    acks = False

    def __init__(
        self,
        name: str,
        streams: frozenset[str] | None,
        events: frozenset[str] | None,
        when_full: WhenFull,
    ) -> None:
        self.name = name
        self.streams = streams
        self.events = events
        self.when_full = when_full
        self.delivered = 0
        self.dropped: dict[str, int] = {}
        self.removed: str | None = None
        self._lock = threading.Lock()
        self._droplog = DropLog()
        self.on_removed: Callable[[Outlet], None] | None = None

    def takes(self, stream: str) -> bool:
        """True if this outlet takes events of ``stream``."""
        return self.streams is None or stream in self.streams

    def select(self, events: Sequence[Event]) -> Sequence[Event]:
        """The events whose type this outlet takes."""
        wanted = self.events
        if wanted is None:
            return events
        return [ev for ev in events if ev.event in wanted]

    def offer(
        self,
        stream: str,
        events: Sequence[Event],
        last: Position,
        before: Position,
        control: PauseControl,
    ) -> bool:
        """Hand over one read's (selected) events; False if given up because of a stop."""
        raise NotImplementedError

    def holds_back(self, stream: str) -> Position | None:
        """The checkpoint floor this outlet imposes on ``stream`` (None: none)."""
        return None

    def depth(self) -> int:
        """Events buffered for this outlet and not yet handled."""
        return 0

    def count_drops(self, stream: str, count: int) -> None:
        """Record ``count`` events of ``stream`` dropped by policy; WARNING, rate limited."""
        with self._lock:
            self.dropped[stream] = self.dropped.get(stream, 0) + count
            report = self._droplog.add(count, time.monotonic())
        if report:
            log.warning(
                # the count covers every stream since the last line, not only this one
                "subscriber %s is full: %d events dropped (when_full: %s) since the last "
                "report, the latest of stream %s",
                self.name,
                report,
                self.when_full.value,
                stream,
                extra={"subscriber": self.name, "stream": stream, "dropped": report},
            )

    def remove(self, reason: str) -> None:
        """Take the outlet out of the routes (once)."""
        if self.removed is not None:
            return
        self.removed = reason
        if self.on_removed is not None:
            self.on_removed(self)

    def status(self) -> SubscriberStatus:
        """Counters for ``status()``."""
        return SubscriberStatus(
            name=self.name,
            kind=self.kind,
            policy=self.when_full.value,
            queue_depth=self.depth(),
            delivered=self.delivered,
            dropped=sum(self.dropped.values()),
            removed=self.removed,
            streams=tuple(sorted(self.streams)) if self.streams is not None else None,
            events=tuple(sorted(self.events)) if self.events is not None else None,
        )


class SinkOutlet(Outlet):
    """A built-in sink: its ``SinkBuffer`` takes the events; its ``SinkActor`` writes them."""

    kind = "sink"
    acks = True

    def __init__(
        self,
        name: str,
        buffer: SinkBuffer,
        streams: frozenset[str] | None,
        events: frozenset[str] | None,
    ) -> None:
        super().__init__(name, streams, events, buffer.settings.when_full)
        self.buffer = buffer
        self.disk = buffer.settings.type == "disk"
        self._inherited = buffer.depth()[0]  # a disk buffer's rows from the last run

    def offer(
        self,
        stream: str,
        events: Sequence[Event],
        last: Position,
        before: Position,
        control: PauseControl,
    ) -> bool:
        if not self.buffer.put(stream, events, last, before, control):
            return False
        self.delivered += len(events)
        return True

    def holds_back(self, stream: str) -> Position | None:
        return self.buffer.holds_back(stream)

    def depth(self) -> int:
        return self.buffer.depth()[0]

    def status(self) -> SubscriberStatus:
        events, nbytes = self.buffer.depth()
        base = super().status()
        # written: handed over (and held at start), less what was dropped or is held
        return dataclasses.replace(
            base,
            delivered=self.delivered + self._inherited - base.dropped - events,
            extra={"buffer": self.buffer.settings.type, "buffer_bytes": nbytes},
        )


class ListenerOutlet(Outlet):
    """A callback ``fn(stream, events)`` called in the stream's thread; it must not block.

    An exception in the callback is logged (rate limited) and counted, never raised into
    the stream.
    """

    kind = "listener"

    def __init__(
        self,
        name: str,
        callback: Callable[[str, Sequence[Event]], None],
        streams: frozenset[str] | None,
        events: frozenset[str] | None,
    ) -> None:
        super().__init__(name, streams, events, WhenFull.BLOCK)
        self.callback = callback
        self.errors = 0
        self._errlog = DropLog()

    def offer(
        self,
        stream: str,
        events: Sequence[Event],
        last: Position,
        before: Position,
        control: PauseControl,
    ) -> bool:
        try:
            self.callback(stream, events)
        except Exception:
            self.errors += 1
            if self._errlog.add(1, time.monotonic()):
                log.exception("listener %s failed on stream %s", self.name, stream)
            return True
        self.delivered += len(events)
        return True
