"""One timer thread for the whole process: runs callbacks when they are due.

Actors never sleep; they ask the scheduler to ``tell`` them a message later. Handles are
cancellable, and messages carry generations so a late timer is harmless anyway.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pykka

log = logging.getLogger(__name__)

_MAX_WAIT = 3600.0


class TimerHandle:
    """A scheduled call; ``cancel()`` prevents it if it has not run yet."""

    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run this call."""
        self.cancelled = True


class Scheduler:
    """A heap of (due, seq, callback) served by one daemon thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, name: str = "sv-timer") -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, TimerHandle, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> None:
        """Start the timer thread (idempotent)."""
        with self._cond:
            if self._started:
                return
            self._started = True
        self._thread.start()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` in the timer thread after ``delay`` seconds.

        The callback must be quick and must not raise (it typically calls ``tell``).
        """
        handle = TimerHandle()
        with self._cond:
            if self._stopped:
                handle.cancelled = True
                return handle
            heapq.heappush(
                self._heap, (self._clock() + max(delay, 0.0), next(self._seq), handle, callback)
            )
            self._cond.notify()
        return handle

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread; pending calls are dropped."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
        if self._started and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if self._heap:
                        wait = self._heap[0][0] - self._clock()
                        if wait <= 0:
                            break
                        # Capped: a huge delay (a backoff of 1e300 s) would overflow the
                        # lock's timeout and kill the thread; waking early just loops.
                        self._cond.wait(wait if wait < _MAX_WAIT else _MAX_WAIT)
                    else:
                        self._cond.wait()
                if self._stopped:
                    return
                _, _, handle, callback = heapq.heappop(self._heap)
            if handle.cancelled:
                continue
            try:
                callback()
            except Exception:  # a timer must never kill the timer thread
                log.exception("timer callback failed")


Schedule = Callable[[float, Callable[[], None]], Any]


def tell_later(schedule: Schedule, delay: float, ref: pykka.ActorRef[Any], message: Any) -> Any:
    """Tell ``ref`` ``message`` after ``delay`` seconds; a stopped actor is ignored.

    Returns the scheduler's handle (``cancel()`` it to call the timer off).
    """

    def fire() -> None:
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            pass

    return schedule(delay, fire)
