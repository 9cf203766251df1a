"""A token bucket that says how long to wait: pure, the clock is a parameter.

Rule: no sleeping and no threads here; ``reserve()`` takes a token and returns the delay
the caller must wait (interruptibly) before sending.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """At most ``rate`` requests per second on average, bursts of up to ``burst``.

    The bucket starts full. A reservation always takes its token, even ahead of time, so
    reservations queue up in order: the n-th reservation past the burst waits n / rate.

    Args:
        rate: tokens added per second (> 0).
        burst: bucket size (>= 1).
        clock: monotonic seconds (``time.monotonic``).

    Raises:
        ValueError: rate or burst out of range.
    """

    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate")

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"rate_limit.rate must be a number > 0, got {rate!r}")
        if not isinstance(burst, int | float) or not math.isfinite(burst) or burst < 1:
            raise ValueError(f"rate_limit.burst must be a number >= 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()

    def reserve(self) -> float:
        """Take a token; return the seconds to wait before the request may go (0 if none)."""
        now = self._clock()
        elapsed = max(0.0, now - self._last)  # a clock that steps back adds nothing
        self._last = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate) - 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate
