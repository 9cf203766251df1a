"""Subscriber actors for tests: a ``Collector`` that records what it is told, and a
``Blocker`` that holds every message until its gate opens (a slow consumer).

Rule: whoever starts one stops it (the ``make_collector``, ``collector`` and ``blocker``
fixtures in ``tests/conftest.py`` do).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pykka

from streamvisor.sse import Event


class Collected:
    """Events received by a ``Collector``, shared with the test thread (thread-safe)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self._events: list[Event] = []
        self._others: list[Any] = []

    def add(self, message: Any) -> None:
        with self.cond:
            if isinstance(message, Event):
                self._events.append(message)
            else:
                self._others.append(message)
            self.cond.notify_all()

    @property
    def events(self) -> list[Event]:
        """A copy of the events received so far, in order."""
        with self.cond:
            return list(self._events)

    @property
    def others(self) -> list[Any]:
        """Messages that were not events (e.g. ``SubscriberOverflow``)."""
        with self.cond:
            return list(self._others)

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        """True once at least ``n`` events arrived; False at the deadline."""
        with self.cond:
            return self.cond.wait_for(lambda: len(self._events) >= n, timeout)

    def wait_until(self, predicate: Callable[[list[Event]], bool], timeout: float = 5.0) -> bool:
        """True once ``predicate(events)`` holds; False at the deadline."""
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self._events), timeout)


class Collector(pykka.ThreadingActor):
    """A subscriber actor that appends every message it is told to a ``Collected``."""

    def __init__(self, collected: Collected) -> None:
        super().__init__()
        self._collected = collected

    def on_receive(self, message: Any) -> Any:
        self._collected.add(message)
        return None


class CollectorHandle(Collected):
    """A started ``Collector``: ``ref`` to subscribe it, and what it received."""

    def __init__(self) -> None:
        super().__init__()
        self.ref: pykka.ActorRef[Collector] = Collector.start(self)

    def ids(self, stream: str | None = None) -> list[str | None]:
        """The ids of the events received (of one stream, or all), in order."""
        return [e.id for e in self.events if stream is None or e.stream == stream]


class Blocker(pykka.ThreadingActor):
    """A subscriber that blocks on ``gate`` before handling each message (a slow consumer)."""

    def __init__(self, gate: threading.Event, collected: Collected) -> None:
        super().__init__()
        self._gate = gate
        self._collected = collected

    def on_receive(self, message: Any) -> Any:
        self._gate.wait(30.0)  # far past every test deadline; the fixture opens the gate
        self._collected.add(message)
        return None


class BlockerHandle(Collected):
    """A started ``Blocker``: ``ref`` to subscribe it, ``gate`` to let it go on."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.ref: pykka.ActorRef[Blocker] = Blocker.start(self.gate, self)
