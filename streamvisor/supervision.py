"""Per-stream restart decisions: backoff, restart intensity, retry budget, circuit breaker.

Pure: no I/O, no threads, no clock reads (``now`` is a parameter) and the ``random.Random``
is injected. The supervisor actor feeds it how each connection ended and waits for the
delay it returns.

Rules (see README "Reconnect rules"):

* HTTP 204 ends the stream (DONE); a permanent error (4xx other than 408/429, wrong
  content type) fails it at once.
* A connection *made progress* when it delivered at least one event, and was *healthy*
  when it made progress or stayed up ``backoff.reset_after``. Health resets the failure
  count, the restart-intensity window and the breaker.
* A clean close after progress reconnects at once (or after the server's ``retry:`` hint).
* Every other ending is a *failed attempt*: it waits ``next_delay`` (server ``retry:`` and
  ``Retry-After`` are floors), counts against ``max_restarts`` (a sliding window of failed
  attempts and crashes), against the optional ``max_attempts`` budget, and towards opening
  the breaker (after ``breaker.failures`` in a row: wait ``breaker.cooldown``, then one
  half-open probe).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from streamvisor.backoff import BackoffPolicy, RestartLimit, RestartWindow, next_delay
from streamvisor.errors import Action, EndOfStreamError, HTTPStatusError, classify
from streamvisor.redact import redact_text
from streamvisor.spec import BreakerPolicy
from streamvisor.states import BreakerState


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one connection attempt ended.

    Attributes:
        error: the failure; None or ``EndOfStreamError`` for a clean close.
        connected: the response was accepted (200, right content type).
        uptime: seconds from acceptance to the end (0 if never accepted).
        events: events dispatched on this connection.
        crashed: the attempt ended by a bug (an unexpected exception), not a stream error.
        requested: it ended because of a reconnect command.
    """

    error: BaseException | None = None
    connected: bool = False
    uptime: float = 0.0
    events: int = 0
    crashed: bool = False
    requested: bool = False


class Kind(enum.Enum):
    """What to do with the stream."""

    RESTART = "restart"
    FAIL = "fail"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Decision:
    """The supervisor's next step for a stream."""

    kind: Kind
    delay: float = 0.0
    reason: str = ""
    failure_class: str | None = None  # "retry" | "rate_limited" | "permanent" | "crash"


class RestartPolicy:
    """Mutable restart bookkeeping for one stream; pure functions of its inputs."""

    __slots__ = (
        "_backoff",
        "_breaker",
        "_max_attempts",
        "_rng",
        "_window",
        "attempt",
        "breaker",
        "consecutive_failures",
    )

    def __init__(
        self,
        backoff: BackoffPolicy,
        max_restarts: RestartLimit,
        breaker: BreakerPolicy,
        max_attempts: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._backoff = backoff
        self._breaker = breaker
        self._max_attempts = max_attempts
        self._rng = rng or random.Random()
        self._window = RestartWindow(max_restarts)
        self.attempt = 0
        self.consecutive_failures = 0
        self.breaker = BreakerState.CLOSED

    def on_connected(self) -> None:
        """A response was accepted: a half-open breaker closes."""
        if self.breaker is BreakerState.HALF_OPEN:
            self.breaker = BreakerState.CLOSED

    def decide(self, outcome: Outcome, now: float, retry_hint: float | None = None) -> Decision:
        """Decide what follows ``outcome``.

        Args:
            outcome: how the connection ended.
            now: monotonic time, for the restart-intensity window.
            retry_hint: the server's ``retry:`` value in seconds, if any.
        """
        error = outcome.error
        if outcome.requested:
            return Decision(Kind.RESTART, 0.0, "reconnect requested")
        action = Action.RETRY if outcome.crashed else classify(error)
        if action is Action.DONE:
            return Decision(Kind.DONE, 0.0, "server ended the stream (HTTP 204)")
        if action is Action.PERMANENT:
            return Decision(
                Kind.FAIL, 0.0, f"permanent error: {_describe(error, False)}", "permanent"
            )

        healthy = outcome.connected and (
            outcome.events > 0 or outcome.uptime >= self._backoff.reset_after
        )
        if healthy:
            self.attempt = 0
            self.consecutive_failures = 0
            if not outcome.crashed:
                # A crash after events is still a crash: keep counting them, or a hook that
                # raises on every connection's first event would restart for ever.
                self._window.clear()
            self.breaker = BreakerState.CLOSED
        clean = error is None or isinstance(error, EndOfStreamError)
        if healthy and clean and not outcome.crashed:
            return Decision(Kind.RESTART, retry_hint or 0.0, "server closed the stream")

        failure_class = (
            "crash"
            if outcome.crashed
            else ("rate_limited" if action is Action.RATE_LIMITED else "retry")
        )
        reason = _describe(error, outcome.crashed)
        retry_after = error.retry_after if isinstance(error, HTTPStatusError) else None
        delay = next_delay(self._backoff, self.attempt, self._rng, retry_hint, retry_after)
        if healthy:
            # It delivered, then broke: retry soon, but back off if it keeps breaking.
            self.attempt = 1
            if outcome.crashed and self._window.record(now):
                return Decision(
                    Kind.FAIL, 0.0, f"restart intensity exceeded (last: {reason})", failure_class
                )
            return Decision(Kind.RESTART, delay, reason, failure_class)

        self.attempt += 1
        self.consecutive_failures += 1
        if self._window.record(now):
            return Decision(
                Kind.FAIL, 0.0, f"restart intensity exceeded (last: {reason})", failure_class
            )
        if self._max_attempts is not None and self.consecutive_failures >= self._max_attempts:
            return Decision(
                Kind.FAIL,
                0.0,
                f"retries exhausted after {self.consecutive_failures} attempts (last: {reason})",
                failure_class,
            )
        if self.breaker is BreakerState.HALF_OPEN or (
            self._breaker.failures and self.consecutive_failures >= self._breaker.failures
        ):
            self.breaker = BreakerState.OPEN
            delay = max(delay, self._breaker.cooldown)
        return Decision(Kind.RESTART, delay, reason, failure_class)

    def probe_due(self) -> None:
        """The restart after an open breaker's cool-down is a half-open probe."""
        if self.breaker is BreakerState.OPEN:
            self.breaker = BreakerState.HALF_OPEN


def _describe(error: BaseException | None, crashed: bool) -> str:
    """The reason shown in logs and status: always through the one redactor."""
    if error is None:
        return "server closed the stream before sending an event"
    if crashed:
        return f"crash: {type(error).__name__}: {redact_text(str(error))}"
    return redact_text(str(error)) or type(error).__name__
