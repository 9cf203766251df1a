"""``Hub``: the registry of subscribers, the streams' books, status and checkpoint positions.

Dedup and fan-out run in each stream's own thread (see ``outlets``); the hub only keeps what
they share. It is a passive, lock-protected object rather than an actor: every caller needs
an answer at once (a stream its routes, the daemon its positions), and a mailbox would only
add a hop to the per-event path. Routes are rebuilt on (un)subscribe and read without a lock:
a stream thread swaps in the new tuple on its next read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from streamvisor.actors.book import StreamBook
from streamvisor.actors.outlets import Outlet
from streamvisor.policy.flow import Position
from streamvisor.states import StreamState
from streamvisor.status import StreamStatus, SubscriberShare, SubscriberStatus

log = logging.getLogger(__name__)

_KEEP_GONE = 100
Positions = dict[str, tuple[str | None, tuple[tuple[str, str], ...]]]


class Hub:
    """Subscribers (outlets) and per-stream books.

    Args:
        dedup_window: the default dedup window size for a stream's book.
    """

    def __init__(self, dedup_window: int = 4096) -> None:
        self._lock = threading.Lock()
        self._default_window = dedup_window
        self._books: dict[str, StreamBook] = {}
        self._outlets: dict[str, Outlet] = {}
        self._routes: dict[str, tuple[Outlet, ...]] = {}
        self._gone: dict[str, Outlet] = {}  # the last few removed subscribers, for status
        self.removed = 0  # subscribers removed because they died or overflowed

    # -- books -------------------------------------------------------------------------
    def book(
        self, stream: str, size: int | None = None, seed: Iterable[tuple[str, str]] = ()
    ) -> StreamBook:
        """The book of ``stream``, made on first use (kept across remove/add)."""
        with self._lock:
            book = self._books.get(stream)
            if book is None:
                window = self._default_window if size is None else size
                book = self._books[stream] = StreamBook(window, seed)
            return book

    def seed(self, stream: str, size: int, recent: Iterable[tuple[str, str]]) -> None:
        """Seed a stream's dedup window (a checkpoint's recent ids)."""
        recent = tuple(recent)
        with self._lock:
            book = self._books.get(stream)
        if book is None:
            self.book(stream, size, recent)
        else:
            book.reseed(size, recent)

    # -- subscribers -------------------------------------------------------------------
    def add(self, outlet: Outlet) -> None:
        """Register a subscriber; streams use it from their next read.

        Raises:
            ValueError: the name is taken.
        """
        with self._lock:
            if outlet.name in self._outlets:
                raise ValueError(f"a subscriber named {outlet.name!r} exists already")
            outlet.on_removed = self._on_removed
            self._outlets[outlet.name] = outlet
            self._routes = {}

    def remove(self, name: str) -> Outlet | None:
        """Unregister a subscriber (it receives nothing more; a stream waiting for it goes
        on). Not counted as a removal: that counts subscribers that died or overflowed."""
        with self._lock:
            outlet = self._outlets.pop(name, None)
            self._routes = {}
        if outlet is not None:
            outlet.remove("unsubscribed")  # wakes a stream waiting for it
        return outlet

    def _on_removed(self, outlet: Outlet) -> None:
        with self._lock:
            if self._outlets.get(outlet.name) is outlet:
                del self._outlets[outlet.name]
                self._routes = {}
                self.removed += 1
                self._gone[outlet.name] = outlet
                while len(self._gone) > _KEEP_GONE:
                    del self._gone[next(iter(self._gone))]

    def routes(self, stream: str) -> tuple[Outlet, ...]:
        """The outlets that take ``stream`` (cached until the next (un)subscribe)."""
        routes = self._routes
        found = routes.get(stream)
        if found is None:
            with self._lock:
                found = tuple(o for o in self._outlets.values() if o.takes(stream))
                if routes is self._routes:
                    routes[stream] = found
        return found

    def outlets(self) -> list[Outlet]:
        """Every registered outlet."""
        with self._lock:
            return list(self._outlets.values())

    # -- checkpoints -------------------------------------------------------------------
    def positions(self) -> Positions:
        """Per stream: the Last-Event-ID that every sink taking it has written (or holds
        durably), and the dedup ``(id, digest)`` pairs at or before it."""
        with self._lock:
            books = list(self._books.items())
            acking = [o for o in self._outlets.values() if o.acks]
        result: Positions = {}
        for stream, book in books:
            pos: Position = book.committed
            for outlet in acking:
                if outlet.takes(stream):
                    floor = outlet.holds_back(stream)
                    if floor is not None and floor.seq < pos.seq:
                        pos = floor
            if pos.seq == 0 and pos.last_event_id is None:
                continue
            result[stream] = (pos.last_event_id, book.recent(pos.seq))
        return result

    # -- status ------------------------------------------------------------------------
    def snapshot(self) -> tuple[dict[str, StreamStatus], dict[str, SubscriberStatus]]:
        """Per stream, the hub's part of its status (events, dedup, last id, subscribers);
        per subscriber, its status (removed ones too, the last few)."""
        with self._lock:
            books = list(self._books.items())
            outlets = list(self._outlets.values())
            gone = [o for name, o in self._gone.items() if name not in self._outlets]
        streams: dict[str, StreamStatus] = {}
        for name, book in books:
            streams[name] = StreamStatus(
                name=name,
                state=StreamState.DISCONNECTED,
                last_event_id=book.committed.last_event_id,
                events=book.events,
                dedup_dropped=book.dedup_dropped,
                reused_ids=book.reused,
                last_event_at=book.last_at,
                subscribers={
                    o.name: SubscriberShare(o.depth(), o.dropped.get(name, 0), o.when_full.value)
                    for o in outlets
                    if o.takes(name)
                },
            )
        subscribers = {o.name: o.status() for o in [*gone, *outlets]}
        return streams, subscribers
