"""``ActorOutlet``: a pykka actor subscriber whose inbox is its buffer.

Events go straight into the actor's inbox: one ``Event`` per message (many envelopes put
under the inbox's lock at once, a fraction of ``tell()``'s cost, measured) or one
``EventBatch`` per read. ``block`` polls the inbox (pykka signals nothing when an actor takes
a message) with a growing pause; ``drop_oldest`` evicts our oldest events from the inbox.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from streamvisor.actors.messages import EventBatch, SubscriberOverflow
from streamvisor.actors.outlets import Outlet
from streamvisor.policy.flow import PauseControl, Position, WhenFull, plan_overflow
from streamvisor.sse import Event

__all__ = ["ActorOutlet"]

log = logging.getLogger(__name__)

_Envelope: Any
try:  # pykka's envelope: putting many at once into an inbox costs a fraction of tell()
    from pykka._envelope import Envelope as _Envelope
except ImportError:  # pragma: no cover - another pykka layout: fall back to tell()
    _Envelope = None

_POLL_FIRST = 0.0005  # a full actor inbox is polled (pykka signals nothing on a get)
_POLL_MAX = 0.01


class ActorOutlet(Outlet):
    """A pykka actor subscriber whose inbox holds at most ``capacity`` of our events.

    Args:
        ref: the subscriber actor.
        capacity: most events (per-event mode) or events in batches (``batch``) waiting in
            its inbox.
        batch: deliver one ``EventBatch`` per read instead of one ``Event`` per message.
    """

    kind = "actor"

    def __init__(
        self,
        name: str,
        ref: pykka.ActorRef[Any],
        streams: frozenset[str] | None,
        events: frozenset[str] | None,
        when_full: WhenFull,
        capacity: int,
        batch: bool = False,
    ) -> None:
        super().__init__(name, streams, events, when_full)
        self.ref = ref
        self.capacity = max(1, capacity)
        self.batch = batch
        inbox = getattr(ref, "actor_inbox", None)
        # queue.Queue: bulk put under its mutex, and drop_oldest can evict. Anything else
        # (a custom inbox) gets tell() and drop_oldest acts as drop_newest.
        self._queue: queue.Queue[Any] | None = (
            inbox if type(inbox) is queue.Queue and _Envelope is not None else None
        )
        self._qsize: Callable[[], int] = inbox.qsize if inbox is not None else (lambda: 0)
        self._sizes: deque[int] = deque()  # batch mode: events in each batch sent
        self._in_batches = 0
        self._sizes_lock = threading.Lock()  # streams send at once: tell+count is one step

    def _pending(self) -> int:
        """Our events still in the inbox (batch mode: counted through batch sizes)."""
        if not self.batch:
            return self._qsize()
        sizes = self._sizes
        with self._sizes_lock:
            qsize = self._qsize()  # read under the lock: no batch is half-sent
            while len(sizes) > qsize:
                self._in_batches -= sizes.popleft()
            return self._in_batches

    def depth(self) -> int:
        return self._pending()

    def offer(
        self,
        stream: str,
        events: Sequence[Event],
        last: Position,
        before: Position,
        control: PauseControl,
    ) -> bool:
        if self.removed is not None:
            return True
        if not self.ref.is_alive():
            self._dead()
            return True
        n = len(events)
        pending = self._pending()
        plan = plan_overflow(self.capacity - pending, n, self.when_full, pending)
        if plan.wait:
            if not self._wait_for_room(n, control):
                return False
            if self.removed is not None:  # died or unsubscribed meanwhile
                return True
            if not self.ref.is_alive():  # stopped, its inbox emptied: that ended the wait
                self._dead()
                return True
            plan = plan_overflow(n, n, self.when_full, 0)
        if plan.disconnect:
            self._disconnect(stream, n)  # its inbox is still delivered: this read is lost
            return True
        accept = plan.accept
        if plan.evict:  # drop_oldest: make room in the inbox
            evicted = self._evict(plan.evict)
            for name, count in evicted.items():
                self.count_drops(name, count)
            room = self.capacity - (pending - sum(evicted.values()))
            accept = min(n, max(room, 0))
        # drop_oldest keeps the newest of the batch, drop_newest the oldest
        kept = events[n - accept :] if self.when_full is WhenFull.DROP_OLDEST else events[:accept]
        if accept < n:
            self.count_drops(stream, n - accept)
        if kept:
            self._send(stream, kept)
        return True

    def _send(self, stream: str, events: Sequence[Event]) -> None:
        try:
            if self.batch:
                message: Any = EventBatch(stream, tuple(events))
                with self._sizes_lock:
                    self.ref.tell(message)
                    self._sizes.append(len(events))
                    self._in_batches += len(events)
            elif self._queue is not None:
                q = self._queue
                envelopes = [_Envelope(ev) for ev in events]
                with q.mutex:
                    q.queue.extend(envelopes)
                    q.unfinished_tasks += len(envelopes)
                    q.not_empty.notify()
            else:
                tell = self.ref.tell
                for ev in events:
                    tell(ev)
        except pykka.ActorDeadError:
            self._dead()
            return
        self.delivered += len(events)

    def _wait_for_room(self, n: int, control: PauseControl) -> bool:
        """Block until the inbox has drained to half (or room for ``n``); pykka signals
        nothing when an actor takes a message, so the inbox is polled, backing off."""
        low = min(self.capacity // 2, max(self.capacity - n, 0))
        delay = _POLL_FIRST
        control.pause(self.name)
        try:
            while self._pending() > low:
                if control.abandoned():
                    return False
                if self.removed is not None:  # unsubscribed: the stream goes on without it
                    return True
                if not self.ref.is_alive():
                    self._dead()
                    return True
                time.sleep(delay)
                delay = min(delay * 2, _POLL_MAX)
        finally:
            control.resume()
        return True

    def _evict(self, count: int) -> dict[str, int]:
        """Remove up to ``count`` of our oldest events from the inbox (drop_oldest); a
        custom inbox or batch mode evicts nothing (then drop_oldest drops the newest)."""
        q = self._queue
        removed: dict[str, int] = {}
        if q is None or self.batch:
            return removed
        total = 0
        with q.mutex:
            kept: deque[Any] = deque()
            while q.queue and total < count:
                envelope = q.queue.popleft()
                message = getattr(envelope, "message", None)
                if isinstance(message, Event):
                    removed[message.stream] = removed.get(message.stream, 0) + 1
                    total += 1
                else:
                    kept.append(envelope)
            q.queue.extendleft(reversed(kept))
            q.unfinished_tasks -= total
        self.delivered -= total
        return removed

    def _dead(self) -> None:
        if self.removed is None:
            log.warning(
                "subscriber %s has stopped; removing it (it no longer holds back any stream)",
                self.name,
                extra={"subscriber": self.name},
            )
        self.remove("dead")

    def _disconnect(self, stream: str, dropped: int) -> None:
        log.warning(
            "subscriber %s disconnected: its buffer of %d events overflowed",
            self.name,
            self.capacity,
            extra={"subscriber": self.name, "stream": stream},
        )
        with self._lock:
            self.dropped[stream] = self.dropped.get(stream, 0) + dropped
        self.remove("disconnected")
        try:
            self.ref.tell(SubscriberOverflow(self.name, dropped))
        except pykka.ActorDeadError:
            pass
