"""``policy.override.decide``: the should_retry hook and the retry hint, as a table."""

from __future__ import annotations

import random

import pytest

from streamvisor.errors import ConnectError, EndOfStreamError, HTTPStatusError
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
from streamvisor.policy.override import MAX_RETRY_HINT, decide, retry_hint
from streamvisor.policy.supervision import Kind, Outcome, RestartPolicy
from streamvisor.spec import BreakerPolicy

BACKOFF = BackoffPolicy(initial=1.0, max=30.0, multiplier=2.0, jitter=0.0, reset_after=60)


def _policy() -> RestartPolicy:
    return RestartPolicy(
        BACKOFF, RestartLimit(count=0), BreakerPolicy(failures=0), None, random.Random(1)
    )


REFUSED_TOKEN = ConnectError("GET http://h/x?access_token=s3cr3t: refused")


@pytest.mark.parametrize(
    ("outcome", "retry_ms", "override", "kind", "delay", "failure_class"),
    [
        # the hook refuses: fail at once, whatever the error
        (Outcome(ConnectError("refused")), None, False, Kind.FAIL, 0.0, "permanent"),
        # no opinion: the policy's rules (a 404 is permanent, a refused connect retried)
        (Outcome(HTTPStatusError(404)), None, None, Kind.FAIL, 0.0, "permanent"),
        (Outcome(ConnectError("refused")), None, None, Kind.RESTART, 1.0, "retry"),
        # the hook insists: a 404 is retried like a failed connect
        (Outcome(HTTPStatusError(404)), None, True, Kind.RESTART, 1.0, "retry"),
        # the server's retry: is a floor, capped at backoff.max
        (Outcome(ConnectError("refused")), 5_000, None, Kind.RESTART, 5.0, "retry"),
        (Outcome(ConnectError("refused")), 10**12, None, Kind.RESTART, 30.0, "retry"),
        # a clean end after new events waits the reconnection time, not a failure
        (
            Outcome(EndOfStreamError(), connected=True, uptime=1.0, events=3),
            2_000,
            None,
            Kind.RESTART,
            2.0,
            None,
        ),
        # a reconnect command is obeyed at once, whatever the hook says
        (Outcome(None, requested=True), 5_000, None, Kind.RESTART, 0.0, None),
    ],
)
def test_the_decision_follows_the_hook_the_policy_and_the_hint(
    outcome: Outcome,
    retry_ms: int | None,
    override: bool | None,
    kind: Kind,
    delay: float,
    failure_class: str | None,
) -> None:
    decision = decide(_policy(), outcome, now=100.0, retry_ms=retry_ms, override=override)
    assert (decision.kind, decision.failure_class) == (kind, failure_class)
    assert decision.delay == pytest.approx(delay)


def test_a_refusal_reason_is_redacted() -> None:
    decision = decide(_policy(), Outcome(REFUSED_TOKEN), 0.0, None, override=False)
    assert "s3cr3t" not in decision.reason
    assert decision.reason.startswith("should_retry refused")


@pytest.mark.parametrize(
    ("retry_ms", "seconds"),
    [(None, None), (0, 0.0), (1500, 1.5), (86_400_000 * 3, MAX_RETRY_HINT)],
)
def test_a_retry_hint_is_read_in_seconds_and_never_past_a_day(
    retry_ms: int | None, seconds: float | None
) -> None:
    assert retry_hint(retry_ms) == seconds
