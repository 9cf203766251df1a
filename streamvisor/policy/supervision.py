"""Per-stream restart decisions: backoff, restart intensity, retry budget, circuit breaker.

Pure: no I/O, no threads, no clock reads (``now`` is a parameter) and the ``random.Random``
is injected. The supervisor actor feeds it how each connection ended and waits for the
delay it returns.

Rules (see README "Reconnect rules"):

* HTTP 204 ends the stream (DONE); a permanent error (4xx other than 408/429, a 3xx not
  followed, wrong content type, a request that cannot be built) fails it at once.
* A connection *made progress* when it delivered at least one *new* event (``events``
  counts events after dedup), and was *healthy* when it made progress or stayed up
  ``backoff.reset_after``. Health resets the failure count, the restart-intensity window
  and the breaker.
* After **any** end of a healthy connection the stream waits the *reconnection time*, as
  browsers do (WHATWG HTML "reestablish the connection"): the server's ``retry:`` if it
  sent one, else ``backoff.initial`` with jitter. A one-shot server is polled, not
  hammered; ``retry: 0`` reconnects at once only while connections make progress.
* Every other ending is a *failed attempt*: it waits ``next_delay`` (server ``retry:`` and
  ``Retry-After`` are floors), counts against ``max_restarts`` (a sliding window of failed
  attempts and crashes), against the optional ``max_attempts`` budget, and towards opening
  the breaker (after ``breaker.failures`` in a row: wait ``breaker.cooldown``, then one
  half-open probe).
* Server hints are capped: ``retry:`` at ``backoff.max`` (``tail --help`` promises never
  to wait longer), ``Retry-After`` at ``backoff.max_retry_after`` (one hour by default).
* Failures a person can see: a decision is *loud* (the supervisor logs it at WARNING,
  every other one at INFO) for the first failure of each kind in a streak of failed
  attempts, at attempts 1, 2, 4, 8, ..., and when ``Retry-After`` exceeds ``backoff.max``.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from streamvisor.errors import EndOfStreamError, HTTPStatusError
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit, RestartWindow, next_delay
from streamvisor.policy.classify import Action, FailureClass, classify
from streamvisor.policy.redact import redact_text
from streamvisor.spec import BreakerPolicy
from streamvisor.states import BreakerState


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one connection attempt ended.

    Attributes:
        error: the failure; None or ``EndOfStreamError`` for a clean close.
        connected: the response was accepted (200, right content type).
        uptime: seconds from acceptance to the end (0 if never accepted).
        events: new events this connection delivered (after dedup: replays do not count).
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
    """The supervisor's next step for a stream.

    Attributes:
        kind: restart, fail or done.
        delay: seconds to wait before the restart.
        reason: why, redacted (the real cause: "HTTP 503 Service Unavailable", ...).
        failure_class: the ``FailureClass`` it counts under; None when the
            connection ended without failing.
        attempt: failed attempts in a row, this one included (0 when not a failure).
        loud: log it at WARNING (else INFO); see the module's rules.
    """

    kind: Kind
    delay: float = 0.0
    reason: str = ""
    failure_class: FailureClass | None = None
    attempt: int = 0
    loud: bool = False


class RestartPolicy:
    """Mutable restart bookkeeping for one stream; pure functions of its inputs."""

    __slots__ = (
        "_backoff",
        "_breaker",
        "_kinds",
        "_max_attempts",
        "_rng",
        "_streak",
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
        self._streak = 0  # failed attempts in a row, for visibility (crashes included)
        self._kinds: tuple[str, ...] = ()  # kinds of failure seen in this streak

    def on_connected(self) -> None:
        """A response was accepted: a half-open breaker closes."""
        if self.breaker is BreakerState.HALF_OPEN:
            self.breaker = BreakerState.CLOSED

    def decide(self, outcome: Outcome, now: float, retry_hint: float | None = None) -> Decision:
        """Decide what follows ``outcome``.

        Args:
            outcome: how the connection ended.
            now: monotonic time, for the restart-intensity window.
            retry_hint: the server's ``retry:`` value in seconds, if any (capped here at
                ``backoff.max``).
        """
        error = outcome.error
        if outcome.requested:
            return Decision(Kind.RESTART, 0.0, "reconnect requested")
        action = Action.RETRY if outcome.crashed else classify(error)
        if action is Action.DONE:
            return Decision(Kind.DONE, 0.0, "server ended the stream (HTTP 204)")
        if action is Action.PERMANENT:
            reason = f"permanent error: {_describe(error, False)}"
            return Decision(Kind.FAIL, 0.0, reason, FailureClass.PERMANENT, self._streak + 1, True)

        backoff = self._backoff
        hint = min(retry_hint, backoff.max) if retry_hint is not None else None
        healthy = outcome.connected and (
            outcome.events > 0 or outcome.uptime >= backoff.reset_after
        )
        if healthy:
            self.attempt = 0
            self.consecutive_failures = 0
            self._streak = 0
            self._kinds = ()
            if not outcome.crashed:
                # A crash after events is still a crash: keep counting them, or a hook that
                # raises on every connection's first event would restart for ever.
                self._window.clear()
            self.breaker = BreakerState.CLOSED
        clean = error is None or isinstance(error, EndOfStreamError)
        if healthy and clean and not outcome.crashed:
            return Decision(Kind.RESTART, self._reconnection_time(hint), "server closed the stream")

        failure_class = (
            FailureClass.CRASH
            if outcome.crashed
            else (
                FailureClass.RATE_LIMITED if action is Action.RATE_LIMITED else FailureClass.RETRY
            )
        )
        reason = _describe(error, outcome.crashed)
        if clean and not outcome.crashed and outcome.connected:
            reason = "server closed the stream without a new event"
        retry_after = error.retry_after if isinstance(error, HTTPStatusError) else None
        beyond_max = False
        if retry_after is not None:
            if backoff.max_retry_after <= 0:
                reason += "; Retry-After ignored (max_retry_after is 0)"
                retry_after = None
            elif retry_after > backoff.max_retry_after:
                reason += f"; Retry-After capped at max_retry_after ({backoff.max_retry_after:g}s)"
                retry_after = backoff.max_retry_after
        if retry_after is not None and retry_after > backoff.max:
            reason += f"; waiting the server's Retry-After, above backoff.max ({backoff.max:g}s)"
            beyond_max = True
        attempt, loud = self._count(error, outcome.crashed)
        loud = loud or beyond_max
        if healthy:
            # It delivered, then broke: wait the reconnection time, back off if it keeps
            # breaking.
            self.attempt = 1
            delay = max(self._reconnection_time(hint), retry_after or 0.0)
            if outcome.crashed:
                delay = next_delay(backoff, 0, self._rng, hint, retry_after)
                if self._window.record(now):
                    return Decision(
                        Kind.FAIL,
                        0.0,
                        f"restart intensity exceeded (last: {reason})",
                        failure_class,
                        attempt,
                        True,
                    )
            return Decision(Kind.RESTART, delay, reason, failure_class, attempt, loud)

        delay = next_delay(backoff, self.attempt, self._rng, hint, retry_after)
        self.attempt += 1
        self.consecutive_failures += 1
        if self._window.record(now):
            return Decision(
                Kind.FAIL,
                0.0,
                f"restart intensity exceeded (last: {reason})",
                failure_class,
                attempt,
                True,
            )
        if self._max_attempts is not None and self.consecutive_failures >= self._max_attempts:
            return Decision(
                Kind.FAIL,
                0.0,
                f"retries exhausted after {self.consecutive_failures} attempts (last: {reason})",
                failure_class,
                attempt,
                True,
            )
        if self.breaker is BreakerState.HALF_OPEN or (
            self._breaker.failures and self.consecutive_failures >= self._breaker.failures
        ):
            self.breaker = BreakerState.OPEN
            delay = max(delay, self._breaker.cooldown)
        return Decision(Kind.RESTART, delay, reason, failure_class, attempt, loud)

    def _reconnection_time(self, hint: float | None) -> float:
        """The wait after a healthy end: the server's ``retry:``, else jittered initial."""
        if hint is not None:
            return hint
        return next_delay(self._backoff, 0, self._rng)

    def _count(self, error: BaseException | None, crashed: bool) -> tuple[int, bool]:
        """Count a failed attempt in the streak; return its number and whether it is loud
        (first of its kind in the streak, or attempt 1, 2, 4, 8, ...)."""
        self._streak += 1
        kind = _kind(error, crashed)
        new_kind = kind not in self._kinds
        if new_kind and len(self._kinds) < 16:
            self._kinds += (kind,)
        streak = self._streak
        return streak, new_kind or streak & (streak - 1) == 0

    def probe_due(self) -> None:
        """The restart after an open breaker's cool-down is a half-open probe."""
        if self.breaker is BreakerState.OPEN:
            self.breaker = BreakerState.HALF_OPEN


def _kind(error: BaseException | None, crashed: bool) -> str:
    """A failure's kind, for "first of each kind": type, HTTP status or short cause."""
    if crashed:
        return f"crash:{type(error).__name__}"
    if isinstance(error, HTTPStatusError):
        return f"http:{error.status}"
    return f"{type(error).__name__}:{getattr(error, 'cause', '')}"


def _describe(error: BaseException | None, crashed: bool) -> str:
    """The reason shown in logs and status: always through the one redactor."""
    if error is None:
        return "server closed the stream before sending a new event"
    if crashed:
        return f"crash: {type(error).__name__}: {redact_text(str(error))}"
    return redact_text(str(error)) or type(error).__name__
