"""The supervisor's state of one stream (``Entry``) and its restart log lines."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import pykka

from streamvisor.actors.stream import StreamControl
from streamvisor.policy.classify import FailureClass
from streamvisor.policy.redact import redact_url
from streamvisor.policy.supervision import Decision, RestartPolicy
from streamvisor.spec import StreamSpec
from streamvisor.states import StreamState

__all__ = ["Entry", "log_restart"]

log = logging.getLogger("streamvisor.actors.supervisor")  # the supervisor's log lines


class Entry:
    """Supervisor-side state of one stream."""

    __slots__ = (
        "connected_since",
        "control",
        "failures",
        "gen",
        "last_error",
        "last_event_id",
        "last_failure",
        "policy",
        "ref",
        "restarts",
        "retry_ms",
        "spec",
        "state",
        "timer",
        "url",
    )

    def __init__(self, spec: StreamSpec, last_event_id: str | None, rng: random.Random) -> None:
        self.spec = spec
        self.url = redact_url(spec.url)
        self.state = StreamState.DISCONNECTED
        self.gen = 0
        self.ref: pykka.ActorRef[Any] | None = None
        self.control = StreamControl()
        self.policy = RestartPolicy(
            spec.backoff, spec.max_restarts, spec.breaker, spec.max_attempts, rng
        )
        self.last_event_id = last_event_id if last_event_id is not None else spec.last_event_id
        self.retry_ms: int | None = None
        self.restarts = 0
        self.failures: dict[str, int] = dict.fromkeys(FailureClass, 0)
        self.last_error: str | None = None
        self.last_failure: str | None = None  # the failure class of last_error
        self.connected_since: float | None = None
        self.timer: Any = None

    def snapshot(self) -> dict[str, Any]:
        """The supervisor's part of the stream's status (plain values)."""
        control = self.control
        paused = control.paused_total
        if control.paused_since:
            paused += time.monotonic() - control.paused_since
        return {
            "state": self.state.value,
            "url": self.url,
            "last_event_id": self.last_event_id,
            "bytes": control.bytes,
            "paused_on": control.paused_on,
            "paused_seconds": round(paused, 3),
            "restarts": self.restarts,
            "failures": dict(self.failures),
            "breaker": self.policy.breaker.value,
            "last_error": self.last_error,
            "last_failure": self.last_failure,
            "connected_since": self.connected_since,
            "gen": self.gen,
        }


def log_restart(name: str, url: str, decision: Decision) -> None:
    """INFO for every restart; WARNING for the loud failures the policy picks (first of a
    kind, attempts 1, 2, 4, 8, ...): each with stream, redacted URL, cause, attempt, delay."""
    extra: dict[str, Any] = {"stream": name, "url": url, "reason": decision.reason}
    extra.update(delay=round(decision.delay, 3), attempt=decision.attempt)
    if decision.failure_class is None:
        log.info(
            "stream %s (%s): %s; reconnecting in %.2fs",
            name,
            url,
            decision.reason,
            decision.delay,
            extra=extra,
        )
        return
    log.log(
        logging.WARNING if decision.loud else logging.INFO,
        "stream %s (%s): %s; attempt %d, reconnecting in %.2fs",
        name,
        url,
        decision.reason,
        decision.attempt,
        decision.delay,
        extra=extra,
    )
