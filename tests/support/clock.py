"""A clock that moves only when the test says so."""

from __future__ import annotations


class ManualClock:
    """A monotonic clock (call it for the time) that moves only by ``advance(seconds)`` or by
    ``sleep(seconds)``, an injectable sleep that never blocks: it records the delay in
    ``sleeps``, moves the clock, and returns False (it was not interrupted)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds``."""
        self.now += seconds

    def sleep(self, seconds: float) -> bool:
        """Record ``seconds`` and move the clock on by them; False (not interrupted)."""
        self.sleeps.append(seconds)
        self.now += seconds
        return False
