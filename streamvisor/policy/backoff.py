"""Reconnect delay and restart-intensity policies: frozen values and pure functions.

No I/O, no threads, no clock reads: the caller passes the attempt number, the time and the
``random.Random``. The supervisor waits; this module only computes.

Delay for failure number ``attempt`` (0 for the first failure)::

    base  = min(max, initial * multiplier ** attempt)
    delay = base * (1 - jitter * r)        r uniform in [0, 1)   ("equal-ish" jitter downwards)
    delay = max(delay, retry_hint, retry_after)                   (server floors)

Jitter only ever shortens the delay, so the cap is never exceeded by jitter. Server
``retry:`` hints and ``Retry-After`` are floors; ``Retry-After`` is itself jittered upwards a
little (up to ``jitter`` of 10 %) so that clients rejected together do not return in lockstep.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How long to wait before reconnecting.

    Attributes:
        initial: delay after the first failure, seconds.
        max: cap on the delay, seconds (before server floors).
        multiplier: growth factor per consecutive failure.
        jitter: fraction in [0, 1]; the delay is reduced by up to this fraction at random.
        reset_after: a connection that stayed up this long resets the failure count.
        max_retry_after: cap on a server's ``Retry-After`` (429/503), seconds; one hour by
            default. ``Retry-After`` may exceed ``max`` (the server asked), up to this.
    """

    initial: float = 1.0
    max: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.3
    reset_after: float = 60.0
    max_retry_after: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("initial", "max", "multiplier", "jitter", "reset_after", "max_retry_after"):
            value = getattr(self, name)
            # Infinity is rejected too: an unbounded max lets multiplier ** attempt overflow.
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"backoff.{name} must be a finite number >= 0, got {value!r}")
        if self.multiplier < 1:
            raise ValueError(f"backoff.multiplier must be >= 1, got {self.multiplier!r}")
        if self.jitter > 1:
            raise ValueError(f"backoff.jitter must be between 0 and 1, got {self.jitter!r}")
        if self.max < self.initial:
            raise ValueError(
                f"backoff.max ({self.max!r}) must not be less than backoff.initial "
                f"({self.initial!r})"
            )


def base_delay(policy: BackoffPolicy, attempt: int) -> float:
    """The un-jittered delay for failure number ``attempt`` (0-based), capped at ``max``."""
    if attempt <= 0:
        return min(policy.initial, policy.max)
    if policy.multiplier == 1 or policy.initial == 0:
        return min(policy.initial, policy.max)
    # Avoid float overflow on huge attempt counts: compare exponents instead of multiplying.
    limit = math.log(policy.max / policy.initial) / math.log(policy.multiplier)
    if attempt >= limit:
        return policy.max
    return min(policy.max, policy.initial * policy.multiplier**attempt)


def next_delay(
    policy: BackoffPolicy,
    attempt: int,
    rng: random.Random,
    retry_hint: float | None = None,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before the next connection attempt.

    Args:
        policy: the backoff policy.
        attempt: number of consecutive failures before this one (0 for the first failure).
        rng: the random source (seed it in tests).
        retry_hint: the server's ``retry:`` value in seconds, a floor.
        retry_after: the ``Retry-After`` header in seconds, a floor (jittered up by at most
            10 %, never past ``policy.max_retry_after``: a cap is a ceiling).
    """
    delay = base_delay(policy, attempt)
    if policy.jitter:
        delay *= 1.0 - policy.jitter * rng.random()
    if retry_hint is not None and retry_hint > delay:
        delay = retry_hint
    if retry_after is not None:
        spread = retry_after * min(policy.jitter, 0.1) * rng.random()
        ceiling = max(retry_after, policy.max_retry_after)
        delay = max(delay, min(retry_after + spread, ceiling))
    return delay


@dataclass(frozen=True, slots=True)
class RestartLimit:
    """Restart intensity: at most ``count`` failed restarts within ``within`` seconds.

    A restart counts when the connection it replaces did not stay up ``reset_after`` (a
    "failed attempt"); crashes (bugs inside streamvisor or a hook) always count. ``count`` of
    0 disables the limit.
    """

    count: int = 20
    within: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.count, int) or self.count < 0:
            raise ValueError(f"max_restarts.count must be an integer >= 0, got {self.count!r}")
        if not isinstance(self.within, int | float) or self.within <= 0:
            raise ValueError(f"max_restarts.within must be a number > 0, got {self.within!r}")


class RestartWindow:
    """Sliding window of failure times for one stream (Erlang's ``add_restart``).

    Pure bookkeeping: the caller passes the monotonic time.
    """

    __slots__ = ("_limit", "_times")

    def __init__(self, limit: RestartLimit) -> None:
        self._limit = limit
        # A list, not a deque: it holds one window of failures, and an empty deque costs
        # about 600 bytes per stream (1000 idle streams, bench/memory.py).
        self._times: list[float] = []

    def record(self, now: float) -> bool:
        """Record a failure at ``now``; return True when the limit is exceeded."""
        if self._limit.count == 0:
            return False
        self._times.append(now)
        horizon = now - self._limit.within
        stale = 0
        while stale < len(self._times) and self._times[stale] <= horizon:
            stale += 1
        if stale:
            del self._times[:stale]
        return len(self._times) > self._limit.count

    def clear(self) -> None:
        """Forget all recorded failures (after a healthy connection)."""
        self._times.clear()

    def __len__(self) -> int:
        return len(self._times)


def max_failures_within(policy: BackoffPolicy, window: float) -> int:
    """How many failures back-to-back attempts can produce within ``window`` seconds.

    Uses the shortest possible delays (full jitter) and ignores connect time, so it is an
    upper bound. ``streamvisor check`` uses it to warn about limits that can never trip.
    """
    elapsed = 0.0
    failures = 1  # the first failure happens at t=0
    attempt = 0
    while failures < 100_000:
        delay = base_delay(policy, attempt) * (1.0 - policy.jitter)
        if delay <= 0:
            return 100_000
        elapsed += delay
        if elapsed > window:
            return failures
        failures += 1
        attempt += 1
    return failures
