"""Helpers for the flow-control tests: a fake ``PauseControl``, positions, ``offer``, and a spawner
that runs a blocking call (a ``put`` or an ``offer``) in a thread it always stops and joins.

Rules: every wait has a deadline; a spawned call whose control is given is abandoned at the
end of the test, so a test that fails half-way never leaves a thread blocked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from streamvisor.actors.outlets import Outlet
from streamvisor.policy.flow import Position
from streamvisor.sse import Event
from tests.support.events import make_events

DEADLINE = 5.0


class FakeControl:
    """A ``flow.PauseControl``: ``pause()`` sets ``paused``, ``resume()`` sets ``resumed``;
    ``stopping.set()`` makes ``abandoned()`` true (the stream is being stopped)."""

    def __init__(self) -> None:
        self.paused = threading.Event()
        self.resumed = threading.Event()
        self.stopping = threading.Event()
        self.pauses: list[str] = []
        self.resumes = 0

    def abandoned(self) -> bool:
        return self.stopping.is_set()

    def pause(self, outlet: str) -> None:
        self.pauses.append(outlet)
        self.resumed.clear()
        self.paused.set()

    def resume(self) -> None:
        self.resumes += 1
        self.resumed.set()


def offer(outlet: Outlet, stream: str, ids: range, control: FakeControl | None = None) -> bool:
    """Offer events ``ids`` of ``stream`` to ``outlet`` as one read (positions: seq == id)."""
    events = make_events(stream, ids)
    before = Position(ids[0] - 1, None)
    return outlet.offer(stream, events, pos(events, ids[-1]), before, control or FakeControl())


def pos(events: list[Event], seq: int) -> Position:
    """The position after ``events`` when the last of them has sequence ``seq``."""
    return Position(seq, events[-1].last_event_id)


class Background:
    """One call running in its own (non-daemon) thread."""

    def __init__(self, fn: Callable[[], Any], control: FakeControl | None) -> None:
        self.control = control
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self._fn = fn
        self.thread = threading.Thread(target=self._run, name="flow-test-producer")
        self.thread.start()

    def _run(self) -> None:
        try:
            self.value = self._fn()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def running(self) -> bool:
        return not self.done.is_set()

    def result(self, timeout: float = DEADLINE) -> Any:
        """The call's return value; fails the test if it is still running at the deadline."""
        assert self.done.wait(timeout), "the call is still blocked at the deadline"
        if self.error is not None:
            raise self.error
        return self.value

    def stop(self) -> None:
        if self.control is not None:
            self.control.stopping.set()
        self.thread.join(DEADLINE)


class Spawner:
    """Runs calls in threads; on exit abandons (through their control) and joins them all."""

    def __init__(self) -> None:
        self._started: list[Background] = []

    def __call__(self, fn: Callable[[], Any], control: FakeControl | None = None) -> Background:
        job = Background(fn, control)
        self._started.append(job)
        return job

    def __enter__(self) -> Spawner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for job in self._started:
            job.stop()
