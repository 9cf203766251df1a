"""Shared fixtures: actor and thread hygiene, the scripted SSE server, a collecting actor.

Rules: every wait has a deadline (``wait_until`` polls in short ``Event.wait`` steps), and
everything a test starts is stopped in a ``finally``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pykka
import pytest

from streamvisor.api.facade import Streamvisor
from streamvisor.spec import StreamSpec
from streamvisor.sse import Event
from tests.support.sse_server import SSEServer

THREAD_EXIT_DEADLINE = 5.0


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.005) -> bool:
    """True as soon as ``predicate()`` holds; False once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: wait() is an interruptible, bounded pause
    while True:
        if predicate():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        pause.wait(min(step, left))


def _non_daemon_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if not t.daemon and t.is_alive()}


@pytest.fixture(autouse=True)
def _no_leaked_actors_or_threads() -> Iterator[None]:
    """After each test: stop every pykka actor still running, then assert that no
    non-daemon thread the test started is still alive."""
    before = _non_daemon_threads()
    yield
    pykka.ActorRegistry.stop_all(timeout=THREAD_EXIT_DEADLINE)

    def leaked() -> set[threading.Thread]:
        return _non_daemon_threads() - before

    wait_until(lambda: not leaked(), THREAD_EXIT_DEADLINE)
    names = sorted(t.name for t in leaked())
    assert not names, f"non-daemon threads leaked by the test: {names}"


@pytest.fixture
def sse_server() -> Iterator[SSEServer]:
    """A started scripted SSE server (no scripts yet: add them with ``add_script``)."""
    server = SSEServer().start()
    try:
        yield server
    finally:
        server.stop()


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


@pytest.fixture
def make_collector() -> Iterator[Callable[[], CollectorHandle]]:
    """Start any number of collectors; all are stopped at the end of the test."""
    started: list[CollectorHandle] = []

    def make() -> CollectorHandle:
        handle = CollectorHandle()
        started.append(handle)
        return handle

    try:
        yield make
    finally:
        for handle in started:
            handle.ref.stop(block=True, timeout=THREAD_EXIT_DEADLINE)


@pytest.fixture
def collector(make_collector: Callable[[], CollectorHandle]) -> CollectorHandle:
    """One started collector (stopped at the end of the test)."""
    return make_collector()


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


@pytest.fixture
def blocker() -> Iterator[BlockerHandle]:
    """A subscriber stuck until ``blocker.gate.set()``; the gate opens at the end anyway."""
    handle = BlockerHandle()
    try:
        yield handle
    finally:
        handle.gate.set()
        handle.ref.stop(block=True, timeout=THREAD_EXIT_DEADLINE)


@pytest.fixture
def make_sv() -> Iterator[Callable[..., Streamvisor]]:
    """Build ``Streamvisor(streams, **kwargs)`` objects; each is stopped at the end."""
    made: list[Streamvisor] = []

    def make(streams: Sequence[StreamSpec], **kwargs: Any) -> Streamvisor:
        sv = Streamvisor(streams, **kwargs)
        made.append(sv)
        return sv

    try:
        yield make
    finally:
        for sv in made:
            sv.stop(timeout=THREAD_EXIT_DEADLINE)
