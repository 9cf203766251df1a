"""RestartPolicy after issue 10: polite pacing, capped server hints, visible failures,
redacted reasons. Tables of scenario -> decision, with explicit ``now`` and a fixed rng."""

from __future__ import annotations

import random

import pytest

from streamvisor.errors import ConnectError, EndOfStreamError, HTTPStatusError, ReadTimeoutError
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
from streamvisor.policy.supervision import Kind, Outcome, RestartPolicy
from streamvisor.spec import BreakerPolicy
from tests.support.randoms import FixedRandom

EXACT = BackoffPolicy(initial=1.0, max=30.0, multiplier=2.0, jitter=0.0, reset_after=60.0)


def make_policy(backoff: BackoffPolicy = EXACT, rng: random.Random | None = None) -> RestartPolicy:
    return RestartPolicy(
        backoff, RestartLimit(count=0), BreakerPolicy(failures=0), None, rng or FixedRandom(0.0)
    )


# -- redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome(ConnectError("GET http://h/e?access_token=t0k3n-x: Connection refused")),
        Outcome(RuntimeError("hook saw http://u:pw-s3cret@h/e?access_token=t0k3n-x"), crashed=True),
    ],
    ids=["stream error", "crash"],
)
def test_a_decision_reason_never_carries_credentials(outcome: Outcome) -> None:
    reason = make_policy().decide(outcome, now=0.0).reason
    assert "t0k3n-x" not in reason and "pw-s3cret" not in reason
    assert "access_token=***" in reason


# -- pacing: every end of a response waits the reconnection time ---------------------------------

NEW_EVENTS_THEN_CLOSE = Outcome(EndOfStreamError(), connected=True, uptime=0.01, events=1)
NOTHING_NEW_THEN_CLOSE = Outcome(EndOfStreamError(), connected=True, uptime=0.01, events=0)
QUIET_LONG_THEN_CLOSE = Outcome(EndOfStreamError(), connected=True, uptime=60.0, events=0)
NEW_EVENTS_THEN_RESET = Outcome(ConnectError("reset"), connected=True, uptime=0.01, events=2)
REFUSED = Outcome(ConnectError("GET http://h/e: Connection refused"))
HTTP_500 = Outcome(HTTPStatusError(500, None, "Internal Server Error"))


def delays(
    policy: RestartPolicy, outcomes: list[Outcome], hint: float | None = None
) -> list[float]:
    return [policy.decide(o, now=100.0 + i, retry_hint=hint).delay for i, o in enumerate(outcomes)]


PACING = [
    # (scenario, backoff, outcomes, retry hint, expected delays)
    (
        "a one-shot server is polled every initial seconds, not hammered",
        EXACT,
        [NEW_EVENTS_THEN_CLOSE] * 4,
        None,
        [1.0] * 4,
    ),
    (
        "the initial wait after a healthy end is jittered downwards",
        BackoffPolicy(initial=1.0, max=30.0, jitter=0.5),
        [NEW_EVENTS_THEN_CLOSE] * 2,
        None,
        [0.75, 0.75],
    ),
    (
        "the server's retry: is the reconnection time after a healthy end",
        EXACT,
        [NEW_EVENTS_THEN_CLOSE] * 3,
        0.25,
        [0.25] * 3,
    ),
    (
        "retry: 0 reconnects at once while connections make progress",
        EXACT,
        [NEW_EVENTS_THEN_CLOSE] * 3,
        0.0,
        [0.0] * 3,
    ),
    (
        "retry: 0 without progress backs off exponentially",
        EXACT,
        [NOTHING_NEW_THEN_CLOSE] * 4,
        0.0,
        [1.0, 2.0, 4.0, 8.0],
    ),
    (
        "ends without new events back off even with a short retry: hint",
        EXACT,
        [NOTHING_NEW_THEN_CLOSE] * 3,
        0.5,
        [1.0, 2.0, 4.0],
    ),
    (
        "a connection that stayed up reset_after is healthy without events",
        EXACT,
        [REFUSED, REFUSED, QUIET_LONG_THEN_CLOSE, REFUSED],
        None,
        [1.0, 2.0, 1.0, 1.0],
    ),
    (
        "a connection broken after new events waits the reconnection time, then backs off",
        EXACT,
        [REFUSED, REFUSED, NEW_EVENTS_THEN_RESET, REFUSED, REFUSED],
        None,
        [1.0, 2.0, 1.0, 2.0, 4.0],
    ),
    (
        "a retry: above backoff.max is capped at backoff.max after a healthy end",
        EXACT,
        [NEW_EVENTS_THEN_CLOSE],
        86_400.0,
        [30.0],
    ),
    (
        "a retry: above backoff.max is capped at backoff.max after failures",
        EXACT,
        [REFUSED] * 3,
        3_600.0,
        [30.0] * 3,
    ),
    (
        "failed attempts back off 1, 2, 4, ... up to the cap",
        EXACT,
        [REFUSED] * 7,
        None,
        [1, 2, 4, 8, 16, 30, 30],
    ),
]


@pytest.mark.parametrize(
    ("backoff", "outcomes", "hint", "expected"),
    [row[1:] for row in PACING],
    ids=[row[0] for row in PACING],
)
def test_reconnect_pacing(
    backoff: BackoffPolicy, outcomes: list[Outcome], hint: float | None, expected: list[float]
) -> None:
    assert delays(make_policy(backoff, FixedRandom(0.5)), outcomes, hint) == pytest.approx(expected)


def test_a_healthy_clean_end_is_not_a_failure() -> None:
    decision = make_policy().decide(NEW_EVENTS_THEN_CLOSE, now=0.0)
    assert (decision.kind, decision.failure_class, decision.attempt, decision.loud) == (
        Kind.RESTART,
        None,
        0,
        False,
    )


# -- Retry-After: honoured up to max_retry_after ---------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "max_retry_after", "delay"),
    [
        (7.0, 3600.0, 7.0),
        (600.0, 3600.0, 600.0),  # above backoff.max (30 s): still honoured
        (7200.0, 3600.0, 3600.0),  # above the cap: capped
        (86_400.0, 60.0, 60.0),
        (5.0, 0.0, 1.0),  # a cap of 0 ignores Retry-After: plain backoff
    ],
)
def test_retry_after_is_honoured_up_to_max_retry_after(
    retry_after: float, max_retry_after: float, delay: float
) -> None:
    backoff = BackoffPolicy(initial=1.0, max=30.0, jitter=0.0, max_retry_after=max_retry_after)
    decision = make_policy(backoff).decide(Outcome(HTTPStatusError(503, retry_after)), now=0.0)
    assert decision.delay == pytest.approx(delay)
    if max_retry_after == 0:
        assert "Retry-After ignored (max_retry_after is 0)" in decision.reason
    elif retry_after > max_retry_after:
        assert f"capped at max_retry_after ({max_retry_after:g}s)" in decision.reason


def test_a_retry_after_longer_than_backoff_max_is_always_loud() -> None:
    policy = make_policy()
    outcome = Outcome(HTTPStatusError(503, 600.0, "Service Unavailable"))
    decisions = [policy.decide(outcome, now=float(i)) for i in range(5)]
    assert [d.loud for d in decisions] == [True] * 5
    assert "above backoff.max (30s)" in decisions[2].reason
    quiet = Outcome(HTTPStatusError(503, 10.0, "Service Unavailable"))
    policy = make_policy()
    assert [policy.decide(quiet, now=float(i)).loud for i in range(5)] == [
        True,
        True,
        False,
        True,
        False,
    ]


# -- failures a person can see -----------------------------------------------------------------


def test_repeated_failures_are_loud_at_attempts_1_2_4_8_16() -> None:
    policy = make_policy()
    decisions = [policy.decide(REFUSED, now=float(i)) for i in range(17)]
    assert [d.attempt for d in decisions] == list(range(1, 18))
    assert [d.attempt for d in decisions if d.loud] == [1, 2, 4, 8, 16]


def test_the_first_failure_of_each_kind_in_a_streak_is_loud() -> None:
    policy = make_policy()
    outcomes = [REFUSED] * 4 + [HTTP_500, HTTP_500, REFUSED, Outcome(ReadTimeoutError("quiet"))]
    loud = [policy.decide(o, now=float(i)).loud for i, o in enumerate(outcomes)]
    assert loud == [True, True, False, True, True, False, False, True]


def test_a_healthy_connection_starts_a_new_streak() -> None:
    policy = make_policy()
    outcomes = [REFUSED, REFUSED, REFUSED, NEW_EVENTS_THEN_CLOSE, REFUSED, REFUSED, REFUSED]
    decisions = [policy.decide(o, now=float(i)) for i, o in enumerate(outcomes)]
    assert [d.attempt for d in decisions] == [1, 2, 3, 0, 1, 2, 3]
    assert [d.loud for d in decisions] == [True, True, False, False, True, True, False]


def test_a_connection_broken_after_new_events_is_attempt_1_of_a_new_streak() -> None:
    policy = make_policy()
    decisions = [policy.decide(o, now=0.0) for o in [REFUSED, REFUSED, REFUSED]]
    decision = policy.decide(NEW_EVENTS_THEN_RESET, now=10.0)
    assert (decision.attempt, decision.loud, decision.failure_class) == (1, True, "retry")
    assert decisions[-1].attempt == 3


def test_a_failure_reason_names_the_real_cause() -> None:
    decision = make_policy().decide(HTTP_500, now=0.0)
    assert decision.reason == "HTTP 500 Internal Server Error"
