"""The timer thread (``Scheduler``) and ``tell_later``: order, cancel, stop, failures.

The scheduler reads a ``ManualClock``: calls are scheduled (often before ``start()``), then
the clock is moved and the thread runs what is due. Nothing waits on real time except for
the callbacks' own ``threading.Event``s, each with a deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from streamvisor.actors.scheduler import Scheduler, tell_later
from tests.support.actors import CollectorHandle
from tests.support.clock import ManualClock
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(30)

DEADLINE = 5.0


class Calls:
    """Callbacks that record their name, in the order the timer thread runs them."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, name: str) -> Callable[[], None]:
        def callback() -> None:
            with self._cond:
                self.names.append(name)
                self._cond.notify_all()

        return callback

    def wait_for(self, name: str) -> bool:
        """True once ``name`` has run; False at the deadline."""
        with self._cond:
            return self._cond.wait_for(lambda: name in self.names, DEADLINE)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(0.0)


@pytest.fixture
def scheduler(clock: ManualClock) -> Iterator[Scheduler]:
    timer = Scheduler(clock=clock, name="test-timer")
    try:
        yield timer
    finally:
        timer.stop()


def nudge(scheduler: Scheduler, calls: Calls, name: str = "nudge") -> None:
    """Schedule a call due now and wait until it ran: the timer thread has looked at the
    clock again and run everything due before it."""
    scheduler.call_later(0.0, calls(name))
    assert calls.wait_for(name)


def test_calls_run_in_order_of_due_time_and_ties_in_order_of_scheduling(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    calls = Calls()
    for name, delay in [("c", 3.0), ("a", 1.0), ("b1", 2.0), ("b2", 2.0), ("d", 4.0)]:
        scheduler.call_later(delay, calls(name))
    clock.advance(10.0)
    scheduler.start()
    assert calls.wait_for("d")
    assert calls.names == ["a", "b1", "b2", "c", "d"]


def test_a_call_runs_once_it_is_due_and_not_before(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    calls = Calls()
    scheduler.start()
    scheduler.call_later(5.0, calls("later"))
    nudge(scheduler, calls, "first")
    assert calls.names == ["first"]  # "later" is due at 5.0; the clock says 0.0
    clock.advance(5.0)
    nudge(scheduler, calls, "second")
    assert calls.names == ["first", "later", "second"]


def test_a_negative_delay_is_due_at_once(scheduler: Scheduler) -> None:
    calls = Calls()
    scheduler.start()
    scheduler.call_later(-1.0, calls("now"))
    assert calls.wait_for("now")


@pytest.mark.parametrize("delay", [1e308, float("inf")])
def test_a_huge_delay_does_not_kill_the_timer_thread(scheduler: Scheduler, delay: float) -> None:
    # A backoff of 1e300 s, or a Retry-After capped at a huge max_retry_after: the thread's
    # wait must not overflow (the thread serves every stream's reconnects).
    calls = Calls()
    scheduler.start()
    scheduler.call_later(delay, calls("never"))
    nudge(scheduler, calls, "first")
    time.sleep(0.2)  # the thread is now waiting for the huge delay
    nudge(scheduler, calls, "after")
    assert calls.names == ["first", "after"]


def test_a_cancelled_call_never_runs(scheduler: Scheduler, clock: ManualClock) -> None:
    calls = Calls()
    scheduler.call_later(1.0, calls("cancelled")).cancel()
    kept = scheduler.call_later(1.0, calls("kept"))
    clock.advance(1.0)
    scheduler.start()
    assert calls.wait_for("kept")
    assert calls.names == ["kept"]
    kept.cancel()  # after it ran: harmless
    assert kept.cancelled


def test_stop_joins_the_thread_and_drops_pending_calls(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    calls = Calls()
    scheduler.start()
    scheduler.call_later(5.0, calls("pending"))
    nudge(scheduler, calls)
    scheduler.stop(timeout=DEADLINE)
    assert not any(t.name == "test-timer" for t in threading.enumerate())
    clock.advance(10.0)
    late = scheduler.call_later(0.0, calls("after stop"))
    assert late.cancelled  # refused: nothing runs after stop
    assert calls.names == ["nudge"]
    scheduler.stop()  # again: a no-op


def test_a_callback_may_stop_the_scheduler_from_the_timer_thread(scheduler: Scheduler) -> None:
    calls = Calls()
    scheduler.start()
    scheduler.call_later(0.0, scheduler.stop)  # must not join its own thread
    scheduler.call_later(0.0, calls("dropped"))
    assert wait_until(lambda: not any(t.name == "test-timer" for t in threading.enumerate()))
    assert calls.names == []


def test_start_twice_starts_one_thread(scheduler: Scheduler) -> None:
    scheduler.start()
    scheduler.start()
    assert [t.name for t in threading.enumerate()].count("test-timer") == 1


def test_a_raising_callback_is_logged_and_the_thread_goes_on(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls()

    def broken() -> None:
        raise RuntimeError("timer bug")

    scheduler.call_later(0.0, broken)
    scheduler.call_later(0.0, calls("after"))
    scheduler.start()
    assert calls.wait_for("after")
    nudge(scheduler, calls)  # still serving new calls
    failures = [r for r in caplog.records if r.getMessage() == "timer callback failed"]
    assert len(failures) == 1
    assert failures[0].levelno == logging.ERROR and failures[0].exc_info is not None


def test_tell_later_tells_the_actor_once_the_delay_is_over(
    scheduler: Scheduler, clock: ManualClock, collector: CollectorHandle
) -> None:
    calls = Calls()
    scheduler.start()
    tell_later(scheduler.call_later, 2.0, collector.ref, "wake up")
    nudge(scheduler, calls, "early")
    clock.advance(2.0)
    nudge(scheduler, calls, "late")
    assert collector.wait_until(lambda _: collector.others == ["wake up"], DEADLINE)


def test_tell_later_can_be_cancelled_through_its_handle(
    scheduler: Scheduler, clock: ManualClock, collector: CollectorHandle
) -> None:
    calls = Calls()
    handle = tell_later(scheduler.call_later, 1.0, collector.ref, "never")
    handle.cancel()
    tell_later(scheduler.call_later, 1.0, collector.ref, "once")
    clock.advance(1.0)
    scheduler.start()
    nudge(scheduler, calls)
    assert collector.wait_until(lambda _: collector.others == ["once"], DEADLINE)
    assert collector.others == ["once"]


def test_tell_later_to_an_actor_that_has_stopped_is_ignored(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls()
    gone = CollectorHandle()
    gone.ref.stop(block=True, timeout=DEADLINE)
    assert not gone.ref.is_alive()
    tell_later(scheduler.call_later, 0.0, gone.ref, "hello?")
    scheduler.start()
    nudge(scheduler, calls)  # the tell ran before this, and raised nothing
    assert gone.others == []
    assert not [r for r in caplog.records if r.name == "streamvisor.actors.scheduler"]
