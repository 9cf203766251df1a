"""The supervisor's decision after a connection ended, with the stream's ``should_retry``
hook and the server's retry hint folded in. Pure: the hook's answer is passed in.

Rules (tested as a table in tests): a hook answering False fails the stream at once (as a
permanent failure); True makes an ending the policy would not retry a retryable one; None
leaves the policy's rules. The server's ``retry:`` (milliseconds) is a floor the policy caps
at ``backoff.max`` (README "Reconnect rules"); a value over a day is read as a day first.
"""

from __future__ import annotations

from streamvisor.errors import ConnectError
from streamvisor.policy.classify import FailureClass
from streamvisor.policy.redact import redact_text
from streamvisor.policy.supervision import Decision, Kind, Outcome, RestartPolicy

__all__ = ["MAX_RETRY_HINT", "decide"]

MAX_RETRY_HINT = 86_400.0
"""Seconds: a ``retry:`` hint is never read as longer than a day (the policy caps it further)."""


def retry_hint(retry_ms: int | None) -> float | None:
    """The server's ``retry:`` in seconds, at most ``MAX_RETRY_HINT``; None if never sent."""
    if retry_ms is None:
        return None
    return min(retry_ms / 1000.0, MAX_RETRY_HINT)


def decide(
    policy: RestartPolicy,
    outcome: Outcome,
    now: float,
    retry_ms: int | None,
    override: bool | None,
) -> Decision:
    """What to do after a connection ended.

    Args:
        policy: the stream's restart policy (it records the attempt).
        outcome: how the connection ended.
        now: the monotonic clock.
        retry_ms: the server's last ``retry:`` value, in milliseconds.
        override: the ``should_retry`` hook's answer (None: no hook or no opinion).

    Returns:
        The policy's ``Decision``, or a FAIL when the hook refused.
    """
    if override is False:
        reason = redact_text(f"should_retry refused: {outcome.error}")
        return Decision(Kind.FAIL, 0.0, reason, FailureClass.PERMANENT)
    hint = retry_hint(retry_ms)
    decision = policy.decide(outcome, now, hint)
    if override is True and decision.kind is not Kind.RESTART:
        retryable = ConnectError(f"{outcome.error} (retried by the should_retry hook)")
        decision = policy.decide(
            Outcome(retryable, outcome.connected, outcome.uptime, 0), now, hint
        )
    return decision
