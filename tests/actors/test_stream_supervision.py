"""Supervision with real actors and a scripted fake connection (``Streamvisor(connect=...)``).

The fake connection plays one ``Attempt`` per connection: chunks of bytes, exceptions to
raise, or ``BLOCK`` (a read that blocks until ``interrupt()``). The factory records the
Last-Event-ID each attempt was given.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from streamvisor.actors.stream import ConnectionLike
from streamvisor.api.facade import Streamvisor
from streamvisor.errors import ConnectError, HTTPStatusError
from streamvisor.hooks import EventClass, ProtocolHandler
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
from streamvisor.spec import BreakerPolicy, StreamSpec
from streamvisor.sse import Event
from streamvisor.states import StreamState
from tests.support.actors import BlockerHandle, CollectorHandle
from tests.support.events import sse_block
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(60)

DEADLINE = 5.0
FAST = BackoffPolicy(initial=0.005, max=0.02, multiplier=2.0, jitter=0.0, reset_after=60.0)
MANY = RestartLimit(count=10_000, within=60.0)


class _Block:
    """A read that blocks until the connection is interrupted (then ``linger`` seconds more,
    like a connection still in the middle of its connect)."""

    def __init__(self, linger: float = 0.0) -> None:
        self.linger = linger


BLOCK = _Block()
Chunk = bytes | BaseException | _Block


@dataclass
class Attempt:
    """What one connection does: raise in the factory or in ``open()``, or play chunks."""

    chunks: Sequence[Chunk] = ()
    open_error: BaseException | None = None
    factory_error: BaseException | None = None
    open_blocks: bool = False  # open() waits for interrupt(), then returns (as Connection)


class FakeConnection:
    """A ``ConnectionLike`` playing one ``Attempt``; thread-safe ``interrupt``/``close``."""

    def __init__(self, attempt: Attempt) -> None:
        self._chunks = list(attempt.chunks)
        self._open_error = attempt.open_error
        self._open_blocks = attempt.open_blocks
        self.interrupted = threading.Event()
        self.closed = threading.Event()
        self.opened = False

    def open(self) -> None:
        if self._open_error is not None:
            raise self._open_error
        if self._open_blocks:  # a server that never answers: only an interrupt ends it
            self.interrupted.wait(30.0)
            return
        self.opened = True

    def read(self) -> bytes:
        if self.interrupted.is_set() or not self._chunks:
            return b""
        item = self._chunks.pop(0)
        if isinstance(item, _Block):
            self.interrupted.wait(30.0)  # far past every test deadline: never hangs a run
            if item.linger:
                threading.Event().wait(item.linger)
            return b""
        if isinstance(item, BaseException):
            raise item
        return item

    def interrupt(self) -> None:
        self.interrupted.set()

    def close(self) -> None:
        self.interrupted.set()
        self.closed.set()


class FakeFactory:
    """Connection factory: ``script(n, last_event_id)`` gives attempt number n (0-based)."""

    def __init__(self, script: Callable[[int, str | None], Attempt]) -> None:
        self._script = script
        self._lock = threading.Lock()
        self.last_ids: list[str | None] = []  # per stream-agnostic attempt, in call order
        self.calls: list[tuple[str, str | None]] = []
        self.connections: list[FakeConnection] = []

    @classmethod
    def playing(cls, attempts: Sequence[Attempt], then: Attempt | None = None) -> FakeFactory:
        """Play ``attempts`` in order, then ``then`` (default: block for ever)."""
        rest = then if then is not None else Attempt([BLOCK])
        return cls(lambda n, _lid: attempts[n] if n < len(attempts) else rest)

    def __call__(self, spec: StreamSpec, last_event_id: str | None) -> ConnectionLike:
        with self._lock:
            n = len(self.calls)
            self.calls.append((spec.name, last_event_id))
            self.last_ids.append(last_event_id)
        attempt = self._script(n, last_event_id)
        if attempt.factory_error is not None:
            raise attempt.factory_error
        conn = FakeConnection(attempt)
        with self._lock:
            self.connections.append(conn)
        return conn

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.calls)


def resuming(per_connection: int, total: int) -> Callable[[int, str | None], Attempt]:
    """An upstream with events 1..total: each connection sends the next ``per_connection``
    after its Last-Event-ID and closes cleanly; once all are sent it blocks."""

    def script(_n: int, last_event_id: str | None) -> Attempt:
        start = int(last_event_id or 0) + 1
        if start > total:
            return Attempt([BLOCK])
        end = min(total, start + per_connection - 1)
        return Attempt([sse_block(i) for i in range(start, end + 1)])

    return script


def spec(name: str = "s", **kwargs: Any) -> StreamSpec:
    kwargs.setdefault("backoff", FAST)
    kwargs.setdefault("max_restarts", MANY)
    kwargs.setdefault("breaker", BreakerPolicy(failures=0))
    return StreamSpec(name=name, url=f"http://fake.invalid/{name}", **kwargs)


class StateLog:
    """Records ``on_state`` callbacks (called in the supervisor's thread)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.changes: list[tuple[str, StreamState]] = []

    def __call__(self, name: str, state: StreamState) -> None:
        with self._cond:
            self.changes.append((name, state))
            self._cond.notify_all()

    def states(self, name: str = "s") -> list[StreamState]:
        with self._cond:
            return [s for n, s in self.changes if n == name]


def state_of(sv: Streamvisor, name: str = "s") -> str:
    return str(sv.status()["streams"][name]["state"])


def wait_state(sv: Streamvisor, state: str, name: str = "s", timeout: float = DEADLINE) -> bool:
    return wait_until(lambda: state_of(sv, name) == state, timeout)


# -- Last-Event-ID hand-off -------------------------------------------------------------------


def test_each_new_connection_is_given_the_last_event_id_of_the_previous_one(
    make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    factory = FakeFactory(resuming(per_connection=2, total=6))
    sv = make_sv([spec()], connect=factory)
    sv.subscribe(collector.ref)
    sv.start()

    assert collector.wait_for(6, DEADLINE)
    assert wait_until(lambda: factory.count >= 4, DEADLINE)
    assert factory.last_ids[:4] == [None, "2", "4", "6"]
    assert collector.ids() == ["1", "2", "3", "4", "5", "6"]
    assert sv.status()["streams"]["s"]["last_event_id"] == "6"


def test_the_first_connection_is_given_the_specs_last_event_id(
    make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    factory = FakeFactory(resuming(per_connection=10, total=12))
    sv = make_sv([spec(last_event_id="10")], connect=factory)
    sv.subscribe(collector.ref)
    sv.start()

    assert collector.wait_for(2, DEADLINE)
    assert factory.last_ids[0] == "10"
    assert collector.ids() == ["11", "12"]


def test_after_an_id_reset_the_next_connection_is_given_no_id(
    make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    factory = FakeFactory.playing([Attempt([sse_block(1), b"id:\ndata: after reset\n\n"])])
    sv = make_sv([spec()], connect=factory)
    sv.subscribe(collector.ref)
    sv.start()

    assert wait_until(lambda: factory.count >= 2, DEADLINE)
    assert not factory.last_ids[1]  # None or "": either way no Last-Event-ID header
    assert collector.wait_for(2, DEADLINE)
    assert [e.last_event_id for e in collector.events] == ["1", ""]


def test_a_partial_event_cut_by_a_drop_is_discarded_and_the_next_connection_resumes(
    make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    factory = FakeFactory.playing(
        [
            Attempt([sse_block(1), b"id: 2\ndata: half", ConnectError("connection reset")]),
            Attempt([sse_block(2), sse_block(3)]),
        ]
    )
    sv = make_sv([spec()], connect=factory)
    sv.subscribe(collector.ref)
    sv.start()

    assert collector.wait_for(3, DEADLINE)
    assert factory.last_ids[1] == "1"
    assert [(e.id, e.data) for e in collector.events] == [("1", "d1"), ("2", "d2"), ("3", "d3")]


# -- crashes ----------------------------------------------------------------------------------


def test_a_connection_factory_that_raises_is_restarted_as_a_crash(
    make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    factory = FakeFactory.playing(
        [Attempt(factory_error=RuntimeError("factory bug")), Attempt([sse_block(1), BLOCK])]
    )
    sv = make_sv([spec()], connect=factory)
    sv.subscribe(collector.ref)
    sv.start()

    assert collector.wait_for(1, DEADLINE)
    assert wait_state(sv, "connected")
    status = sv.status()["streams"]["s"]
    assert status["failures"]["crash"] == 1
    assert status["restarts"] == 1
    assert "RuntimeError" in status["last_error"]
    assert "factory bug" in status["last_error"]


class RaisingHook(ProtocolHandler):
    """``classify`` raises once, on the event with id ``fail_on``; counts connects."""

    def __init__(self, fail_on: str) -> None:
        self.fail_on = fail_on
        self.raised = threading.Event()
        self.connects = 0

    def on_connect(self, stream: str) -> None:
        self.connects += 1

    def classify(self, event: Event) -> EventClass:
        if event.id == self.fail_on and not self.raised.is_set():
            self.raised.set()
            raise ValueError("hook bug")
        return EventClass.DATA


def test_a_hook_that_raises_is_restarted_and_no_event_is_lost(
    make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    def script(_n: int, last_event_id: str | None) -> Attempt:
        start = int(last_event_id or 0) + 1
        return Attempt([*(sse_block(i) for i in range(start, 6)), BLOCK])  # one event per read

    hook = RaisingHook(fail_on="3")
    factory = FakeFactory(script)
    sv = make_sv([spec(handler=hook)], connect=factory)
    sv.subscribe(collector.ref)
    sv.start()

    assert collector.wait_for(5, DEADLINE), collector.ids()
    assert hook.raised.is_set()
    assert collector.ids() == ["1", "2", "3", "4", "5"]
    assert factory.last_ids[:2] == [None, "2"]  # resumed before the event that crashed
    assert sv.status()["streams"]["s"]["failures"]["crash"] == 1


def test_an_on_connect_hook_that_raises_is_restarted(
    make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    class FailFirstConnect(ProtocolHandler):
        def __init__(self) -> None:
            self.calls = 0

        def on_connect(self, stream: str) -> None:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("on_connect bug")

    factory = FakeFactory.playing([], then=Attempt([sse_block(1), BLOCK]))
    sv = make_sv([spec(handler=FailFirstConnect())], connect=factory)
    sv.subscribe(collector.ref)
    sv.start()

    assert collector.wait_for(1, DEADLINE)
    assert factory.count == 2
    assert sv.status()["streams"]["s"]["failures"]["crash"] == 1


def test_a_hook_that_always_raises_trips_restart_intensity(
    make_sv: Callable[..., Streamvisor],
) -> None:
    class AlwaysRaises(ProtocolHandler):
        def classify(self, event: Event) -> EventClass:
            raise RuntimeError("always")

    factory = FakeFactory.playing([], then=Attempt([sse_block(1)]))
    limit = RestartLimit(count=3, within=30)
    sv = make_sv([spec(handler=AlwaysRaises(), max_restarts=limit)], connect=factory)
    sv.start()

    assert wait_state(sv, "failed")
    assert factory.count == 4
    status = sv.status()["streams"]["s"]
    assert status["failures"]["crash"] == 4
    assert "restart intensity" in status["last_error"]


# -- states and commands ----------------------------------------------------------------------


def test_state_changes_are_visible_in_status_and_reported_in_order(
    make_sv: Callable[..., Streamvisor],
) -> None:
    states = StateLog()

    def script(n: int, _lid: str | None) -> Attempt:
        if n == 0:
            return Attempt(open_error=ConnectError("refused"))
        if n == 1:
            return Attempt([sse_block(1), BLOCK])
        return Attempt([BLOCK])

    factory = FakeFactory(script)
    sv = make_sv([spec()], connect=factory, on_state=states)
    assert state_of(sv) == "disconnected"
    sv.start()

    assert wait_state(sv, "connected")
    assert factory.count == 2
    assert sv.close("s")
    assert state_of(sv) == "closed"
    assert states.states() == [
        StreamState.CONNECTING,
        StreamState.RECONNECTING,
        StreamState.CONNECTED,
        StreamState.CLOSED,
    ]


def test_an_attempt_interrupted_before_the_server_answered_never_counts_as_connected(
    make_sv: Callable[..., Streamvisor],
) -> None:
    # Before: open() returning on the interrupt was taken for a connection (state connected,
    # "stream s connected" logged, the daemon's /ready satisfied) by a server never reached.
    states = StateLog()
    factory = FakeFactory.playing([Attempt(open_blocks=True)], then=Attempt(open_blocks=True))
    sv = make_sv([spec()], connect=factory, on_state=states)
    sv.start()
    assert wait_until(lambda: factory.count == 1, DEADLINE)
    assert sv.reconnect("s")
    assert wait_until(lambda: factory.count == 2, DEADLINE)
    assert sv.close("s")
    assert state_of(sv) == "closed"
    assert StreamState.CONNECTED not in states.states()


def test_close_ends_a_blocked_stream_for_good(make_sv: Callable[..., Streamvisor]) -> None:
    factory = FakeFactory.playing([Attempt([sse_block(1), BLOCK])])
    sv = make_sv([spec()], connect=factory)
    sv.start()
    assert wait_state(sv, "connected")

    started = time.monotonic()
    assert sv.close("s") is True
    assert factory.connections[0].closed.wait(1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0

    assert not wait_until(lambda: factory.count > 1, 0.2)  # no reconnect follows
    assert state_of(sv) == "closed"


def test_close_of_an_unknown_stream_returns_false(make_sv: Callable[..., Streamvisor]) -> None:
    sv = make_sv([spec()], connect=FakeFactory.playing([]))
    sv.start()
    assert sv.close("nope") is False
    assert sv.reconnect("nope") is False


def test_close_cancels_a_pending_backoff_restart(make_sv: Callable[..., Streamvisor]) -> None:
    slow = BackoffPolicy(initial=0.3, max=0.3, jitter=0.0)
    factory = FakeFactory.playing([], then=Attempt(open_error=HTTPStatusError(500)))
    sv = make_sv([spec(backoff=slow)], connect=factory)
    sv.start()
    assert wait_until(lambda: factory.count == 1, DEADLINE)
    assert wait_state(sv, "reconnecting")

    assert sv.close("s")
    assert not wait_until(lambda: factory.count > 1, 0.6)  # the timer's restart never comes
    assert state_of(sv) == "closed"


def test_reconnect_drops_the_connection_and_resumes_at_once(
    make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    slow = BackoffPolicy(initial=10.0, max=10.0, jitter=0.0)  # any backoff would show
    factory = FakeFactory.playing(
        [Attempt([sse_block(1), sse_block(2), BLOCK]), Attempt([sse_block(3), BLOCK])]
    )
    sv = make_sv([spec(backoff=slow)], connect=factory)
    sv.subscribe(collector.ref)
    sv.start()
    assert collector.wait_for(2, DEADLINE)

    assert sv.reconnect("s") is True
    assert collector.wait_for(3, DEADLINE)
    assert factory.last_ids[:2] == [None, "2"]
    assert factory.connections[0].closed.is_set()
    status = sv.status()["streams"]["s"]
    assert status["state"] == "connected"
    assert sum(status["failures"].values()) == 0  # a requested reconnect is no failure


def test_reconnect_restarts_a_failed_stream_with_a_fresh_policy(
    make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    factory = FakeFactory.playing(
        [Attempt(open_error=HTTPStatusError(404))], then=Attempt([sse_block(1), BLOCK])
    )
    sv = make_sv([spec()], connect=factory)
    sv.subscribe(collector.ref)
    sv.start()
    assert wait_state(sv, "failed")
    assert factory.count == 1

    assert sv.reconnect("s") is True
    assert collector.wait_for(1, DEADLINE)
    assert wait_state(sv, "connected")


def test_reconnect_right_after_close_starts_the_stream_again(
    make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    slow_to_end = _Block(linger=0.2)  # the closed connection reports back after reconnect
    factory = FakeFactory.playing(
        [Attempt([sse_block(1), slow_to_end]), Attempt([sse_block(2), BLOCK])]
    )
    sv = make_sv([spec()], connect=factory)
    sv.subscribe(collector.ref)
    sv.start()
    assert collector.wait_for(1, DEADLINE)

    assert sv.close("s")
    assert sv.reconnect("s")  # before the closed connection has even reported back
    assert collector.wait_for(2, DEADLINE), collector.ids()
    assert wait_state(sv, "connected")
    assert factory.last_ids[:2] == [None, "1"]


def test_a_server_that_ends_the_stream_with_204_is_closed_without_reconnecting(
    make_sv: Callable[..., Streamvisor],
) -> None:
    factory = FakeFactory.playing([], then=Attempt(open_error=HTTPStatusError(204)))
    sv = make_sv([spec()], connect=factory)
    sv.start()
    assert wait_state(sv, "closed")
    assert not wait_until(lambda: factory.count > 1, 0.2)


# -- resources --------------------------------------------------------------------------------


def test_a_hundred_restarts_leave_the_thread_count_at_its_baseline(
    make_sv: Callable[..., Streamvisor],
) -> None:
    def script(n: int, _lid: str | None) -> Attempt:
        if n == 0 or n > 100:
            return Attempt([BLOCK])
        return Attempt([sse_block(n)])  # one event, then a clean close: an immediate restart

    factory = FakeFactory(script)
    sv = make_sv([spec()], connect=factory)
    sv.start()
    assert wait_state(sv, "connected")
    baseline = threading.active_count()

    assert sv.reconnect("s")
    assert wait_until(lambda: factory.count == 102, DEADLINE)
    assert wait_state(sv, "connected")
    assert wait_until(lambda: threading.active_count() == baseline, DEADLINE), (
        threading.active_count(),
        baseline,
    )
    status = sv.status()["streams"]["s"]
    assert status["restarts"] == 101
    assert status["gen"] == 102
    assert all(c.closed.is_set() for c in factory.connections[:-1])


def test_stop_of_200_streams_blocked_in_read_returns_quickly(
    make_sv: Callable[..., Streamvisor],
) -> None:
    factory = FakeFactory.playing([], then=Attempt([BLOCK]))
    names = [f"s{i}" for i in range(200)]
    sv = make_sv([spec(n) for n in names], connect=factory)
    sv.start()

    def all_connected() -> bool:
        streams = sv.status()["streams"]
        return len(streams) == 200 and all(s["state"] == "connected" for s in streams.values())

    assert wait_until(all_connected, 10.0, step=0.05)
    started = time.monotonic()
    sv.stop(timeout=10.0)
    elapsed = time.monotonic() - started
    print(f"stop() of 200 blocked streams took {elapsed * 1000:.1f} ms")
    assert elapsed < 5.0
    assert factory.count == 200
    assert all(c.closed.is_set() for c in factory.connections)


# -- hub behaviour with scripted streams ------------------------------------------------------


def test_subscribers_get_only_the_streams_and_event_types_they_asked_for(
    make_sv: Callable[..., Streamvisor], make_collector: Callable[[], CollectorHandle]
) -> None:
    def script(n: int, _lid: str | None) -> Attempt:
        return Attempt(
            [
                sse_block(1, event="trade"),
                sse_block(2, event="quote"),
                sse_block(3, event="trade"),
                BLOCK,
            ]
        )

    factory = FakeFactory(script)
    everything, trades_of_a = make_collector(), make_collector()
    sv = make_sv([spec("a"), spec("b")], connect=factory)
    sv.subscribe(everything.ref)
    sv.subscribe(trades_of_a.ref, streams=["a"], events=["trade"])
    sv.start()

    assert everything.wait_for(6, DEADLINE)
    assert trades_of_a.wait_for(2, DEADLINE)
    assert [(e.stream, e.id) for e in trades_of_a.events] == [("a", "1"), ("a", "3")]
    assert not trades_of_a.wait_for(3, 0.1)
    assert sorted((e.stream, e.id) for e in everything.events) == [
        (s, i) for s in "ab" for i in "123"
    ]


def test_replayed_events_after_a_restart_reach_subscribers_once(
    make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    factory = FakeFactory.playing(
        [
            Attempt([sse_block(1), sse_block(2), sse_block(3)]),
            Attempt([sse_block(2), sse_block(3), sse_block(4), BLOCK]),
        ]
    )
    sv = make_sv([spec()], connect=factory)
    sv.subscribe(collector.ref)
    sv.start()

    assert collector.wait_for(4, DEADLINE)
    assert not collector.wait_for(5, 0.1)
    assert collector.ids() == ["1", "2", "3", "4"]
    assert sv.status()["streams"]["s"]["dedup_dropped"] == 2


def test_a_reused_id_with_new_content_is_delivered_and_counted(
    make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    factory = FakeFactory.playing(
        [Attempt([sse_block(1, "first")]), Attempt([sse_block(1, "counter restarted"), BLOCK])]
    )
    sv = make_sv([spec()], connect=factory)
    sv.subscribe(collector.ref)
    sv.start()

    assert collector.wait_for(2, DEADLINE)
    assert [e.data for e in collector.events] == ["first", "counter restarted"]
    assert sv.status()["streams"]["s"]["reused_ids"] == 1


def test_a_subscriber_with_a_crowded_inbox_pauses_the_stream_until_it_catches_up(
    make_sv: Callable[..., Streamvisor], blocker: BlockerHandle
) -> None:
    factory = FakeFactory.playing([Attempt([sse_block(1), sse_block(2), sse_block(3), BLOCK])])
    sv = make_sv([spec()], connect=factory)
    name = sv.subscribe(blocker.ref, buffer=10)
    crowd = 20
    for i in range(crowd):  # the subscriber's inbox is already past its buffer
        blocker.ref.tell(f"own message {i}")
    sv.start()

    def stream() -> dict[str, Any]:
        return dict(sv.status()["streams"]["s"])

    assert wait_until(lambda: stream()["paused_on"] == name, DEADLINE)
    assert sv.status()["subscribers"][name]["delivered"] == 0
    blocker.gate.set()
    assert blocker.wait_for(3, DEADLINE)
    assert wait_until(lambda: stream()["paused_on"] is None, DEADLINE)
    assert sv.status()["subscribers"][name]["delivered"] == 3
    assert sv.status()["subscribers"][name]["dropped"] == 0
    assert stream()["paused_seconds"] > 0
    assert len(blocker.others) == crowd


# -- pitfalls (research §3.7) -----------------------------------------------------------------


def test_actors_never_ask_and_never_wait_on_a_future_without_a_timeout() -> None:
    import re
    from pathlib import Path

    import streamvisor.actors

    folder = Path(streamvisor.actors.__file__).parent
    for path in sorted(folder.glob("*.py")):
        if path.name == "system.py":
            continue  # ActorSystem is the outside's handle: it asks, always with a timeout
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"\.ask\(", source), f"{path.name}: actors must only tell"
        assert not re.search(r"\.get\(\s*\)", source), f"{path.name}: get() without a timeout"
        assert "block=True)" not in source, f"{path.name}: a blocking call without a timeout"
