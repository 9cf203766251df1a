"""RestartPolicy: tables of scenario -> decision, with explicit ``now`` values and a fixed rng."""

from __future__ import annotations

import random

import pytest

from streamvisor.errors import (
    ConnectError,
    ContentTypeError,
    EndOfStreamError,
    HTTPStatusError,
    ReadTimeoutError,
)
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
from streamvisor.policy.supervision import Decision, Kind, Outcome, RestartPolicy
from streamvisor.spec import BreakerPolicy
from streamvisor.states import BreakerState
from tests.support.randoms import FixedRandom

EXACT = BackoffPolicy(initial=1.0, max=30.0, multiplier=2.0, jitter=0.0, reset_after=60.0)
NO_LIMIT = RestartLimit(count=0)
NO_BREAKER = BreakerPolicy(failures=0)

# Outcomes -----------------------------------------------------------------------------------
REFUSED = Outcome(ConnectError("connection refused"))
HTTP_500 = Outcome(HTTPStatusError(500))
CLEAN_AFTER_EVENTS = Outcome(EndOfStreamError(), connected=True, uptime=0.5, events=3)
CLEAN_NO_EVENTS = Outcome(EndOfStreamError(), connected=True, uptime=0.5, events=0)
RESET_AFTER_EVENTS = Outcome(ConnectError("reset"), connected=True, uptime=0.5, events=3)
CRASH = Outcome(RuntimeError("bug"), crashed=True)


def make_policy(
    backoff: BackoffPolicy = EXACT,
    max_restarts: RestartLimit = NO_LIMIT,
    breaker: BreakerPolicy = NO_BREAKER,
    max_attempts: int | None = None,
    rng: random.Random | None = None,
) -> RestartPolicy:
    return RestartPolicy(backoff, max_restarts, breaker, max_attempts, rng or FixedRandom(0.0))


def run(policy: RestartPolicy, outcomes: list[Outcome], start: float = 100.0) -> list[Decision]:
    """Feed outcomes one second apart (now = start, start + 1, ...)."""
    return [policy.decide(o, now=start + i) for i, o in enumerate(outcomes)]


# -- terminal decisions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "kind"),
    [
        (Outcome(HTTPStatusError(204)), Kind.DONE),
        (Outcome(HTTPStatusError(401)), Kind.FAIL),
        (Outcome(HTTPStatusError(403)), Kind.FAIL),
        (Outcome(HTTPStatusError(404)), Kind.FAIL),
        (Outcome(HTTPStatusError(410)), Kind.FAIL),
        (Outcome(ContentTypeError("text/html")), Kind.FAIL),
        (Outcome(HTTPStatusError(408)), Kind.RESTART),
        (Outcome(HTTPStatusError(429)), Kind.RESTART),
        (Outcome(HTTPStatusError(500)), Kind.RESTART),
        (Outcome(HTTPStatusError(503, retry_after=2.0)), Kind.RESTART),
        (Outcome(ReadTimeoutError("silent")), Kind.RESTART),
        (REFUSED, Kind.RESTART),
    ],
    ids=lambda v: (
        v.error.__class__.__name__ + getattr(v.error, "status", "").__str__()
        if isinstance(v, Outcome)
        else v.value
    ),
)
def test_the_first_ending_of_a_stream_maps_to_the_documented_kind(
    outcome: Outcome, kind: Kind
) -> None:
    assert make_policy().decide(outcome, now=0.0).kind is kind


@pytest.mark.parametrize("status", [401, 404, 410])
def test_a_permanent_status_fails_at_once_even_with_retry_budget_left(status: int) -> None:
    policy = make_policy(max_restarts=RestartLimit(count=100, within=60), max_attempts=50)
    decision = policy.decide(Outcome(HTTPStatusError(status)), now=0.0)
    assert decision.kind is Kind.FAIL
    assert decision.failure_class == "permanent"
    assert str(status) in decision.reason
    assert policy.attempt == 0  # no retry was scheduled or counted


def test_http_204_is_done_and_not_a_failure() -> None:
    decision = make_policy().decide(Outcome(HTTPStatusError(204)), now=0.0)
    assert decision == Decision(Kind.DONE, 0.0, decision.reason, None)


# -- clean closes and backoff -----------------------------------------------------------------


def test_a_clean_close_after_events_waits_the_initial_delay_as_browsers_do() -> None:
    decision = make_policy().decide(CLEAN_AFTER_EVENTS, now=0.0)
    assert (decision.kind, decision.delay, decision.failure_class) == (Kind.RESTART, 1.0, None)


def test_a_clean_close_after_events_waits_exactly_the_servers_retry_hint() -> None:
    decision = make_policy().decide(CLEAN_AFTER_EVENTS, now=0.0, retry_hint=0.25)
    assert (decision.kind, decision.delay) == (Kind.RESTART, 0.25)


def test_clean_closes_after_events_never_back_off_however_many_there_are() -> None:
    decisions = run(
        make_policy(max_restarts=RestartLimit(count=3, within=10)), [CLEAN_AFTER_EVENTS] * 20
    )
    assert {(d.kind, d.delay) for d in decisions} == {(Kind.RESTART, 1.0)}


def test_a_clean_close_without_events_is_a_failed_attempt_with_backoff() -> None:
    decisions = run(make_policy(), [CLEAN_NO_EVENTS] * 3)
    assert [d.delay for d in decisions] == [1.0, 2.0, 4.0]
    assert all(d.failure_class == "retry" for d in decisions)


def test_failures_without_events_back_off_1_2_4_up_to_the_cap() -> None:
    decisions = run(make_policy(), [REFUSED] * 8)
    assert [d.kind for d in decisions] == [Kind.RESTART] * 8
    assert [d.delay for d in decisions] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_jitter_only_shortens_the_delay_by_the_drawn_fraction() -> None:
    policy = make_policy(BackoffPolicy(initial=1.0, max=30.0, jitter=0.5), rng=FixedRandom(0.5))
    delays = [d.delay for d in run(policy, [REFUSED] * 3)]
    assert delays == pytest.approx([0.75, 1.5, 3.0])


def test_a_seeded_rng_gives_the_same_jittered_sequence_every_time() -> None:
    backoff = BackoffPolicy(initial=1.0, max=30.0, jitter=0.3)
    first = [d.delay for d in run(make_policy(backoff, rng=random.Random(7)), [REFUSED] * 6)]
    again = [d.delay for d in run(make_policy(backoff, rng=random.Random(7)), [REFUSED] * 6)]
    assert first == again
    for attempt, delay in enumerate(first):
        base = min(30.0, 2.0**attempt)
        assert base * 0.7 <= delay <= base


def test_a_healthy_connection_resets_the_backoff_to_initial() -> None:
    policy = make_policy()
    decisions = run(policy, [REFUSED, REFUSED, REFUSED, CLEAN_AFTER_EVENTS, REFUSED, REFUSED])
    assert [d.delay for d in decisions] == [1, 2, 4, 1, 1, 2]


def test_a_connection_that_stayed_up_reset_after_is_healthy_even_without_events() -> None:
    quiet_but_long = Outcome(EndOfStreamError(), connected=True, uptime=60.0, events=0)
    decisions = run(make_policy(), [REFUSED, REFUSED, quiet_but_long, REFUSED])
    assert [d.delay for d in decisions] == [1, 2, 1, 1]


def test_a_short_connection_without_events_does_not_reset_the_backoff() -> None:
    flapping = Outcome(EndOfStreamError(), connected=True, uptime=59.0, events=0)
    decisions = run(make_policy(), [REFUSED, flapping, REFUSED])
    assert [d.delay for d in decisions] == [1, 2, 4]


def test_a_broken_connection_after_events_retries_soon_then_backs_off_if_it_keeps_breaking() -> (
    None
):
    decisions = run(make_policy(), [REFUSED, REFUSED, RESET_AFTER_EVENTS, REFUSED, REFUSED])
    assert [d.delay for d in decisions] == [1, 2, 1, 2, 4]
    assert decisions[2].failure_class == "retry"


# -- server floors ----------------------------------------------------------------------------


def test_retry_after_is_a_floor_over_a_shorter_backoff() -> None:
    decision = make_policy().decide(Outcome(HTTPStatusError(503, retry_after=7.0)), now=0.0)
    assert (decision.kind, decision.delay, decision.failure_class) == (
        Kind.RESTART,
        7.0,
        "rate_limited",
    )


def test_retry_after_does_not_shorten_a_longer_backoff() -> None:
    policy = make_policy()
    run(policy, [REFUSED] * 4)  # next backoff: 16 s
    decision = policy.decide(Outcome(HTTPStatusError(429, retry_after=1.0)), now=200.0)
    assert decision.delay == 16.0


def test_retry_after_is_jittered_upwards_by_at_most_ten_percent() -> None:
    policy = make_policy(BackoffPolicy(initial=0.01, max=1.0, jitter=0.5), rng=FixedRandom(0.99))
    decision = policy.decide(Outcome(HTTPStatusError(503, retry_after=10.0)), now=0.0)
    assert 10.0 <= decision.delay <= 11.0


def test_the_retry_hint_is_a_floor_for_failures() -> None:
    decision = make_policy().decide(REFUSED, now=0.0, retry_hint=5.0)
    assert decision.delay == 5.0


def test_a_retry_hint_below_the_backoff_does_not_shorten_it() -> None:
    policy = make_policy()
    decisions = [policy.decide(REFUSED, now=float(i), retry_hint=1.5) for i in range(3)]
    assert [d.delay for d in decisions] == [1.5, 2.0, 4.0]


# -- restart intensity and retry budget -------------------------------------------------------

FAST = BackoffPolicy(initial=0.01, max=0.05, multiplier=2.0, jitter=0.0, reset_after=60.0)


def test_restart_intensity_trips_on_the_fourth_failure_within_the_window() -> None:
    policy = make_policy(FAST, max_restarts=RestartLimit(count=3, within=10))
    decisions = [policy.decide(HTTP_500, now=t) for t in (0.0, 0.01, 0.03, 0.07)]
    assert [d.kind for d in decisions] == [Kind.RESTART] * 3 + [Kind.FAIL]
    assert "restart intensity" in decisions[-1].reason
    assert "HTTP 500" in decisions[-1].reason


def test_restart_intensity_forgets_failures_older_than_the_window() -> None:
    policy = make_policy(FAST, max_restarts=RestartLimit(count=3, within=10))
    decisions = [policy.decide(HTTP_500, now=t) for t in (0.0, 1.0, 2.0, 10.5, 11.0)]
    assert [d.kind for d in decisions] == [Kind.RESTART] * 5


def test_a_healthy_connection_clears_the_restart_intensity_window() -> None:
    policy = make_policy(FAST, max_restarts=RestartLimit(count=3, within=10))
    outcomes = [HTTP_500] * 3 + [CLEAN_AFTER_EVENTS] + [HTTP_500] * 3
    assert [d.kind for d in run(policy, outcomes, start=0.0)] == [Kind.RESTART] * 7


def test_restart_intensity_of_zero_never_trips() -> None:
    policy = make_policy(FAST, max_restarts=RestartLimit(count=0, within=10))
    assert {d.kind for d in run(policy, [HTTP_500] * 500)} == {Kind.RESTART}


def test_the_max_attempts_budget_fails_on_the_last_allowed_attempt() -> None:
    policy = make_policy(FAST, max_attempts=3)
    decisions = run(policy, [REFUSED] * 3)
    assert [d.kind for d in decisions] == [Kind.RESTART, Kind.RESTART, Kind.FAIL]
    assert "retries exhausted after 3 attempts" in decisions[-1].reason


def test_a_healthy_connection_refills_the_max_attempts_budget() -> None:
    policy = make_policy(FAST, max_attempts=3)
    decisions = run(policy, [REFUSED, REFUSED, CLEAN_AFTER_EVENTS, REFUSED, REFUSED])
    assert [d.kind for d in decisions] == [Kind.RESTART] * 5


# -- crashes ----------------------------------------------------------------------------------


def test_a_crash_is_restarted_with_backoff_and_classed_as_a_crash() -> None:
    decisions = run(make_policy(), [CRASH, CRASH])
    assert [(d.kind, d.delay, d.failure_class) for d in decisions] == [
        (Kind.RESTART, 1.0, "crash"),
        (Kind.RESTART, 2.0, "crash"),
    ]
    assert "RuntimeError" in decisions[0].reason


def test_crashes_count_against_restart_intensity() -> None:
    policy = make_policy(FAST, max_restarts=RestartLimit(count=3, within=10))
    decisions = [policy.decide(CRASH, now=t) for t in (0.0, 0.1, 0.2, 0.3)]
    assert [d.kind for d in decisions] == [Kind.RESTART] * 3 + [Kind.FAIL]


def test_crashes_after_events_still_count_against_restart_intensity() -> None:
    # A hook that raises on every connection after the first events is a crash loop too.
    crash_after_events = Outcome(
        RuntimeError("hook bug"), connected=True, uptime=0.1, events=2, crashed=True
    )
    policy = make_policy(FAST, max_restarts=RestartLimit(count=3, within=10))
    decisions = [policy.decide(crash_after_events, now=t) for t in (0.0, 0.1, 0.2, 0.3)]
    assert [d.kind for d in decisions] == [Kind.RESTART] * 3 + [Kind.FAIL]


def test_a_crash_with_a_clean_error_is_not_mistaken_for_a_clean_close() -> None:
    crashed_clean = Outcome(EndOfStreamError(), connected=True, uptime=0.1, events=2, crashed=True)
    decision = make_policy().decide(crashed_clean, now=0.0)
    assert (decision.kind, decision.failure_class) == (Kind.RESTART, "crash")


# -- requested reconnects ---------------------------------------------------------------------


def test_a_requested_reconnect_restarts_at_once_without_counting() -> None:
    policy = make_policy(FAST, max_restarts=RestartLimit(count=1, within=10), max_attempts=1)
    requested = Outcome(ConnectError("interrupted"), requested=True)
    decisions = run(policy, [requested] * 10)
    assert {(d.kind, d.delay, d.failure_class) for d in decisions} == {(Kind.RESTART, 0.0, None)}
    assert (policy.attempt, policy.consecutive_failures) == (0, 0)
    assert policy.decide(REFUSED, now=200.0).kind is Kind.FAIL  # the budget was untouched: 1


def test_a_requested_reconnect_wins_over_a_permanent_looking_error() -> None:
    decision = make_policy().decide(
        Outcome(HTTPStatusError(404), requested=True), now=0.0, retry_hint=3.0
    )
    assert (decision.kind, decision.delay) == (Kind.RESTART, 0.0)


# -- circuit breaker --------------------------------------------------------------------------

BREAKER = BreakerPolicy(failures=3, cooldown=120.0)


def test_the_breaker_opens_after_n_consecutive_failures_and_waits_the_cooldown() -> None:
    policy = make_policy(breaker=BREAKER)
    decisions = run(policy, [REFUSED] * 3)
    assert policy.breaker is BreakerState.OPEN
    assert [d.delay for d in decisions[:2]] == [1.0, 2.0]
    assert decisions[2].kind is Kind.RESTART
    assert decisions[2].delay >= 120.0


def test_the_breaker_stays_closed_below_the_threshold() -> None:
    policy = make_policy(breaker=BREAKER)
    run(policy, [REFUSED] * 2)
    assert policy.breaker is BreakerState.CLOSED


def test_after_the_cooldown_the_next_attempt_is_a_half_open_probe() -> None:
    policy = make_policy(breaker=BREAKER)
    run(policy, [REFUSED] * 3)
    policy.probe_due()
    assert policy.breaker is BreakerState.HALF_OPEN


def test_probe_due_does_nothing_while_the_breaker_is_closed() -> None:
    policy = make_policy(breaker=BREAKER)
    policy.probe_due()
    assert policy.breaker is BreakerState.CLOSED


def test_a_probe_that_connects_closes_the_breaker() -> None:
    policy = make_policy(breaker=BREAKER)
    run(policy, [REFUSED] * 3)
    policy.probe_due()
    policy.on_connected()
    assert policy.breaker is BreakerState.CLOSED


def test_a_probe_that_fails_reopens_the_breaker_for_another_cooldown() -> None:
    policy = make_policy(breaker=BREAKER)
    run(policy, [REFUSED] * 3)
    policy.probe_due()
    decision = policy.decide(REFUSED, now=500.0)
    assert policy.breaker is BreakerState.OPEN
    assert (decision.kind, decision.delay >= 120.0) == (Kind.RESTART, True)


def test_a_healthy_probe_resets_the_breaker_count_entirely() -> None:
    policy = make_policy(breaker=BREAKER)
    run(policy, [REFUSED] * 3)
    policy.probe_due()
    policy.on_connected()
    decisions = run(policy, [CLEAN_AFTER_EVENTS, REFUSED, REFUSED], start=600.0)
    assert policy.breaker is BreakerState.CLOSED
    assert [d.delay for d in decisions] == [1.0, 1.0, 2.0]


def test_a_breaker_of_zero_failures_never_opens() -> None:
    policy = make_policy(breaker=BreakerPolicy(failures=0, cooldown=120.0))
    decisions = run(policy, [REFUSED] * 20)
    assert policy.breaker is BreakerState.CLOSED
    assert max(d.delay for d in decisions) == 30.0
