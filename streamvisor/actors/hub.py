"""HubActor: per-stream dedup, then fan-out to subscribers through bounded buffers.

Every subscriber sits behind its own buffer with an overflow policy, and the hub never
blocks on a subscriber: it tells a subscriber only while the subscriber's inbox holds fewer
than ``window`` messages, and drains the rest on a timer tick. A slow or dead subscriber
therefore costs only its own events, never the stream's or the other subscribers'.

For checkpoints the hub also tracks, per stream, how far every acknowledging subscriber
(the daemon's sinks) has written: ``positions()`` answers "which Last-Event-ID is safe to
resume from", and which dedup ids may be seeded with it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pykka

from streamvisor.actors.inbox import SimpleInbox
from streamvisor.actors.messages import (
    Batch,
    Drain,
    Publish,
    SeedDedup,
    Snapshot,
    Subscribe,
    SubscriberOverflow,
    Unsubscribe,
    Written,
)
from streamvisor.actors.scheduler import tell_later
from streamvisor.dedup import DedupWindow, Verdict
from streamvisor.sse import Event

log = logging.getLogger(__name__)

OVERFLOW_POLICIES = ("drop_oldest", "drop_newest", "disconnect")
_ACTOR_WINDOW = 1024  # events in a user actor's inbox before the hub buffers instead
_BATCH_WINDOW = 4  # batches in a sink's inbox before the hub buffers instead
_MAX_BATCH = 2048
_DRAIN_INTERVAL = 0.01


class _Book:
    """Per-stream state: dedup window, counters, and the publish sequence."""

    __slots__ = ("dropped", "events", "last_at", "lid", "reused", "seq", "window")

    def __init__(self, size: int) -> None:
        self.window = DedupWindow(size)
        self.seq = 0  # sequence number of the last accepted event
        self.lid: str | None = None  # its last_event_id (the resume point)
        self.events = 0
        self.dropped = 0
        self.reused = 0
        self.last_at: float | None = None


class _Slot:
    """One subscriber: filter, buffer, policy, counters, and write progress for acks."""

    __slots__ = (
        "acks",
        "batch",
        "buffer",
        "capacity",
        "delivered",
        "dropped",
        "dropped_by_stream",
        "events",
        "floor",
        "name",
        "outstanding",
        "policy",
        "ref",
        "streams",
    )

    def __init__(self, msg: Subscribe) -> None:
        self.name = msg.name
        self.ref = msg.ref
        self.streams = msg.streams
        self.events = msg.events
        self.capacity = max(1, msg.buffer)
        self.policy = msg.overflow
        self.batch = msg.batch
        self.acks = msg.batch  # built-in sinks acknowledge what they wrote
        self.buffer: deque[tuple[Event, int]] = deque()
        self.delivered = 0
        self.dropped = 0
        self.dropped_by_stream: dict[str, int] = {}
        # acks: per stream, events handed over but not written, and the position before them
        self.outstanding: dict[str, int] = {}
        self.floor: dict[str, tuple[int, str | None]] = {}

    def takes(self, stream: str) -> bool:
        return self.streams is None or stream in self.streams


class HubActor(SimpleInbox, pykka.ThreadingActor):
    """Dedup and fan-out. Tell it ``Publish``; ask it ``Snapshot`` from outside only."""

    def __init__(
        self,
        schedule: Callable[[float, Callable[[], None]], Any],
        dedup_window: int = 4096,
    ) -> None:
        super().__init__()
        self._schedule = schedule
        self._default_window = dedup_window
        self._books: dict[str, _Book] = {}
        self._slots: dict[str, _Slot] = {}
        self._drain_pending = False

    # -- messages ----------------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Publish):
            self._publish(message.stream, message.events)
        elif isinstance(message, Drain):
            self._drain_pending = False
            self._deliver_all()
        elif isinstance(message, Written):
            self._written(message)
        elif isinstance(message, Subscribe):
            self._slots[message.name] = _Slot(message)
        elif isinstance(message, Unsubscribe):
            self._slots.pop(message.name, None)
        elif isinstance(message, SeedDedup):
            self._book(message.stream, message.size).window = DedupWindow(
                message.size, message.recent
            )
        elif isinstance(message, Snapshot):
            return self._snapshot()
        elif isinstance(message, _Positions):
            return self.positions()
        elif isinstance(message, _FlushAll):
            return self._flush_all()
        return None

    def on_stop(self) -> None:
        # Hand everything still buffered to the subscribers before they are stopped.
        self._flush_all()

    # -- publishing --------------------------------------------------------------------
    def _book(self, stream: str, size: int | None = None) -> _Book:
        book = self._books.get(stream)
        if book is None:
            book = self._books[stream] = _Book(self._default_window if size is None else size)
        return book

    def _publish(self, stream: str, events: Any) -> None:
        book = self._book(stream)
        check = book.window.check
        seq = book.seq
        accepted: list[tuple[Event, int]] = []
        for ev in events:
            if ev.id is not None:
                verdict = check(ev.id, ev.event, ev.data, seq + 1)
                if verdict is Verdict.DUPLICATE:
                    book.dropped += 1
                    continue
                if verdict is Verdict.REUSED:
                    book.reused += 1
            seq += 1
            accepted.append((ev, seq))
        if not accepted:
            return
        before = (book.seq, book.lid)
        book.seq = seq
        book.lid = accepted[-1][0].last_event_id
        book.events += len(accepted)
        book.last_at = time.time()
        for slot in list(self._slots.values()):
            if not slot.takes(stream):
                continue
            wanted = slot.events
            items = accepted if wanted is None else [p for p in accepted if p[0].event in wanted]
            if items:
                self._push(slot, stream, items, before)
                self._deliver(slot)

    def _push(
        self,
        slot: _Slot,
        stream: str,
        items: list[tuple[Event, int]],
        before: tuple[int, str | None],
    ) -> None:
        if slot.acks:
            if not slot.outstanding.get(stream):
                slot.floor[stream] = before
            slot.outstanding[stream] = slot.outstanding.get(stream, 0) + len(items)
        buffer = slot.buffer
        room = slot.capacity - len(buffer)
        if len(items) <= room:
            buffer.extend(items)
            return
        if slot.policy == "disconnect":
            self._disconnect(slot, len(items))
            return
        if slot.policy == "drop_newest":
            keep, lost = items[: max(room, 0)], items[max(room, 0) :]
            buffer.extend(keep)
            self._count_drops(slot, lost)
            return
        buffer.extend(items)  # drop_oldest
        lost = [buffer.popleft() for _ in range(len(buffer) - slot.capacity)]
        self._count_drops(slot, lost)

    def _count_drops(self, slot: _Slot, lost: list[tuple[Event, int]]) -> None:
        if not lost:
            return
        if slot.dropped == 0:
            log.warning(
                "subscriber %s is too slow: dropping events (%s)",
                slot.name,
                slot.policy,
                extra={"subscriber": slot.name},
            )
        slot.dropped += len(lost)
        for ev, _ in lost:
            slot.dropped_by_stream[ev.stream] = slot.dropped_by_stream.get(ev.stream, 0) + 1
            if slot.acks:
                slot.outstanding[ev.stream] -= 1  # a dropped event counts as done

    def _disconnect(self, slot: _Slot, extra: int) -> None:
        dropped = len(slot.buffer) + extra
        self._slots.pop(slot.name, None)
        log.warning(
            "subscriber %s disconnected: its buffer of %d events overflowed",
            slot.name,
            slot.capacity,
            extra={"subscriber": slot.name},
        )
        try:
            slot.ref.tell(SubscriberOverflow(slot.name, dropped))
        except pykka.ActorDeadError:
            pass

    # -- delivery ----------------------------------------------------------------------
    def _deliver(self, slot: _Slot) -> None:
        buffer = slot.buffer
        if not buffer:
            return
        inbox = getattr(slot.ref, "actor_inbox", None)
        qsize = getattr(inbox, "qsize", None)
        try:
            if slot.batch:
                while buffer and (qsize is None or qsize() < _BATCH_WINDOW):
                    n = min(len(buffer), _MAX_BATCH)
                    slot.ref.tell(_batch([buffer.popleft() for _ in range(n)]))
                    slot.delivered += n
            else:
                tell = slot.ref.tell
                room = _ACTOR_WINDOW - qsize() if qsize is not None else len(buffer)
                n = max(0, min(room, len(buffer)))  # an inbox past the window: send none
                for _ in range(n):
                    tell(buffer.popleft()[0])
                slot.delivered += n
        except pykka.ActorDeadError:
            log.warning("subscriber %s has stopped; removing it", slot.name)
            self._slots.pop(slot.name, None)
            return
        if buffer and not self._drain_pending:
            self._drain_pending = True
            tell_later(self._schedule, _DRAIN_INTERVAL, self.actor_ref, Drain())

    def _deliver_all(self) -> None:
        for slot in list(self._slots.values()):
            self._deliver(slot)

    def _flush_all(self) -> int:
        """Tell every buffered event now, ignoring inbox windows (shutdown)."""
        total = 0
        for slot in list(self._slots.values()):
            while slot.buffer:
                before = len(slot.buffer)
                if slot.batch:
                    items = list(slot.buffer)
                    slot.buffer.clear()
                    try:
                        slot.ref.tell(_batch(items))
                    except pykka.ActorDeadError:
                        break
                else:
                    try:
                        while slot.buffer:
                            slot.ref.tell(slot.buffer.popleft()[0])
                    except pykka.ActorDeadError:
                        break
                total += before
                slot.delivered += before
        return total

    # -- checkpoints -------------------------------------------------------------------
    def _written(self, msg: Written) -> None:
        slot = self._slots.get(msg.sink)
        if slot is None:
            return
        for stream, (seq, lid, count) in msg.upto.items():
            left = slot.outstanding.get(stream, 0) - count
            slot.outstanding[stream] = max(left, 0)
            slot.floor[stream] = (seq, lid)

    def positions(self) -> dict[str, tuple[str | None, tuple[tuple[str, str], ...]]]:
        """Per stream: the Last-Event-ID every acknowledging subscriber has written, and
        the dedup ids (with digests) at or before it."""
        result: dict[str, tuple[str | None, tuple[tuple[str, str], ...]]] = {}
        for stream, book in self._books.items():
            seq, lid = book.seq, book.lid
            for slot in self._slots.values():
                if slot.acks and slot.takes(stream) and slot.outstanding.get(stream):
                    fseq, flid = slot.floor.get(stream, (0, None))
                    if fseq < seq:
                        seq, lid = fseq, flid
            if seq == 0 and lid is None:
                continue
            result[stream] = (lid, book.window.recent(seq))
        return result

    def _snapshot(self) -> dict[str, Any]:
        streams: dict[str, Any] = {}
        for name, book in self._books.items():
            streams[name] = {
                "events": book.events,
                "dedup_dropped": book.dropped,
                "reused_ids": book.reused,
                "last_event_id": book.lid,
                "last_event_at": book.last_at,
                "subscribers": {
                    s.name: {
                        "queue_depth": len(s.buffer),
                        "dropped": s.dropped_by_stream.get(name, 0),
                    }
                    for s in self._slots.values()
                    if s.takes(name)
                },
            }
        subscribers = {
            s.name: {
                "alive": bool(getattr(s.ref, "is_alive", lambda: True)()),
                "policy": s.policy,
                "queue_depth": len(s.buffer),
                "dropped": s.dropped,
                "delivered": s.delivered,
                "streams": sorted(s.streams) if s.streams is not None else None,
                "events": sorted(s.events) if s.events is not None else None,
            }
            for s in self._slots.values()
        }
        return {"streams": streams, "subscribers": subscribers}


class _Positions:
    """Ask: checkpoint positions (``HubActor.positions``)."""


class _FlushAll:
    """Ask: deliver every buffered event now; answers how many."""


POSITIONS = _Positions()
FLUSH_ALL = _FlushAll()


def _batch(items: list[tuple[Event, int]]) -> Batch:
    """A sink batch, with per stream its last sequence, last id and event count."""
    upto: dict[str, tuple[int, str | None, int]] = {}
    for ev, seq in items:
        prev = upto.get(ev.stream)
        upto[ev.stream] = (seq, ev.last_event_id, (prev[2] if prev else 0) + 1)
    return Batch([ev for ev, _ in items], upto)
