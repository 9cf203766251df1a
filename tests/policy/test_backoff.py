"""Reconnect delays and restart intensity: tables of scenario -> decision, with explicit times."""

from __future__ import annotations

import random

import pytest

from streamvisor.policy.backoff import (
    BackoffPolicy,
    RestartLimit,
    RestartWindow,
    base_delay,
    max_failures_within,
    next_delay,
)
from tests.support.randoms import FixedRandom

LOWEST = FixedRandom(0.0)  # no jitter taken off
HIGHEST = FixedRandom(0.999999)  # nearly all the jitter taken off

NO_JITTER = BackoffPolicy(initial=1.0, max=30.0, multiplier=2.0, jitter=0.0)


# -- the delay sequence ------------------------------------------------------------------------


def test_without_jitter_delays_double_from_initial_up_to_the_cap() -> None:
    delays = [next_delay(NO_JITTER, attempt, random.Random(1)) for attempt in range(9)]
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30, 30]


def test_base_delay_is_the_same_sequence_for_the_default_policy() -> None:
    assert [base_delay(BackoffPolicy(), a) for a in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_negative_attempt_is_treated_as_the_first_failure() -> None:
    assert base_delay(NO_JITTER, -3) == 1.0


def test_a_multiplier_of_one_keeps_the_delay_constant() -> None:
    policy = BackoffPolicy(initial=3.0, max=30.0, multiplier=1.0, jitter=0.0)
    assert [base_delay(policy, a) for a in (0, 1, 10, 10_000)] == [3.0, 3.0, 3.0, 3.0]


def test_a_zero_initial_delay_stays_zero() -> None:
    policy = BackoffPolicy(initial=0.0, max=30.0, jitter=0.0)
    assert [base_delay(policy, a) for a in (0, 1, 100)] == [0.0, 0.0, 0.0]


def test_the_cap_is_reached_exactly_when_it_is_a_power_of_the_multiplier() -> None:
    policy = BackoffPolicy(initial=1.0, max=8.0, multiplier=2.0, jitter=0.0)
    assert [base_delay(policy, a) for a in range(6)] == [1, 2, 4, 8, 8, 8]


@pytest.mark.parametrize("attempt", [64, 1_100, 10**6, 10**18, 10**100])
def test_huge_attempt_numbers_give_the_cap_without_overflowing(attempt: int) -> None:
    assert base_delay(BackoffPolicy(), attempt) == 30.0
    assert next_delay(NO_JITTER, attempt, random.Random(0)) == 30.0
    slow = BackoffPolicy(initial=0.001, max=1e300, multiplier=1.5, jitter=0.0)
    assert base_delay(slow, attempt) <= 1e300


# -- jitter ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_jitter_stays_between_the_reduced_base_and_the_base(seed: int) -> None:
    policy = BackoffPolicy(jitter=0.3)
    rng = random.Random(seed)
    for attempt in range(40):
        base = base_delay(policy, attempt)
        delay = next_delay(policy, attempt, rng)
        assert (1 - policy.jitter) * base <= delay <= base <= policy.max


def test_jitter_spreads_delays_instead_of_repeating_one_value() -> None:
    rng = random.Random(42)
    delays = {next_delay(BackoffPolicy(jitter=0.3), 3, rng) for _ in range(50)}
    assert len(delays) > 40


def test_a_random_draw_of_zero_gives_the_full_base_delay() -> None:
    policy = BackoffPolicy(jitter=0.5)
    assert [next_delay(policy, a, LOWEST) for a in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_random_draw_near_one_takes_off_nearly_the_whole_jitter_but_no_more() -> None:
    policy = BackoffPolicy(jitter=0.5)
    for attempt in range(7):
        base = base_delay(policy, attempt)
        delay = next_delay(policy, attempt, HIGHEST)
        assert 0.5 * base <= delay < 0.5 * base + 1e-5 * base


def test_full_jitter_can_go_down_to_zero_but_never_below() -> None:
    policy = BackoffPolicy(jitter=1.0)
    assert next_delay(policy, 5, LOWEST) == 30.0
    assert 0.0 <= next_delay(policy, 5, HIGHEST) < 1e-4


def test_the_same_seed_gives_the_same_delays() -> None:
    first = [next_delay(BackoffPolicy(), a, random.Random(9)) for a in range(10)]
    second = [next_delay(BackoffPolicy(), a, random.Random(9)) for a in range(10)]
    assert first == second


# -- server floors -----------------------------------------------------------------------------


def test_a_retry_hint_above_the_delay_is_a_floor() -> None:
    assert next_delay(NO_JITTER, 0, LOWEST, retry_hint=5.0) == 5.0


def test_a_retry_hint_below_the_delay_changes_nothing() -> None:
    assert next_delay(NO_JITTER, 4, LOWEST, retry_hint=5.0) == 16.0


def test_a_retry_hint_above_the_cap_is_still_honoured() -> None:
    assert next_delay(BackoffPolicy(), 10, HIGHEST, retry_hint=45.0) == 45.0


def test_retry_after_is_a_floor_even_with_jitter() -> None:
    policy = BackoffPolicy(jitter=0.3)
    for rng in (LOWEST, HIGHEST, random.Random(3)):
        assert next_delay(policy, 0, rng, retry_after=10.0) >= 10.0


def test_retry_after_is_spread_upwards_by_at_most_ten_percent() -> None:
    policy = BackoffPolicy(jitter=0.3)
    assert next_delay(policy, 0, LOWEST, retry_after=10.0) == 10.0
    assert 10.0 < next_delay(policy, 0, HIGHEST, retry_after=10.0) < 11.0


def test_retry_after_is_not_spread_when_jitter_is_zero() -> None:
    assert next_delay(NO_JITTER, 0, HIGHEST, retry_after=10.0) == 10.0


def test_retry_after_above_the_cap_is_honoured() -> None:
    assert next_delay(NO_JITTER, 20, LOWEST, retry_after=120.0) == 120.0


def test_retry_after_below_the_backoff_delay_leaves_the_backoff() -> None:
    assert next_delay(NO_JITTER, 3, LOWEST, retry_after=0.5) == 8.0


def test_the_larger_of_retry_hint_and_retry_after_wins() -> None:
    assert next_delay(NO_JITTER, 0, LOWEST, retry_hint=7.0, retry_after=3.0) == 7.0
    assert next_delay(NO_JITTER, 0, LOWEST, retry_hint=3.0, retry_after=7.0) == 7.0


# -- invalid policies --------------------------------------------------------------------------

INVALID_POLICIES = [
    ("a negative initial delay", {"initial": -1.0}),
    ("a negative cap", {"initial": 0.0, "max": -1.0}),
    ("a NaN initial delay", {"initial": float("nan")}),
    ("an infinite cap", {"max": float("inf")}),
    ("an infinite multiplier", {"multiplier": float("inf")}),
    ("a multiplier below one", {"multiplier": 0.5}),
    ("jitter above one", {"jitter": 1.5}),
    ("negative jitter", {"jitter": -0.1}),
    ("a cap below the initial delay", {"initial": 10.0, "max": 5.0}),
    ("a negative reset_after", {"reset_after": -1.0}),
    ("a string instead of a number", {"initial": "1"}),
    ("None instead of a number", {"max": None}),
]


@pytest.mark.parametrize(
    "fields", [f for _, f in INVALID_POLICIES], ids=[n for n, _ in INVALID_POLICIES]
)
def test_an_invalid_backoff_policy_raises_value_error(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        BackoffPolicy(**fields)  # type: ignore[arg-type]


def test_the_default_and_edge_policies_are_valid() -> None:
    assert BackoffPolicy() == BackoffPolicy(1.0, 30.0, 2.0, 0.3, 60.0)
    assert BackoffPolicy(initial=0, max=0, multiplier=1, jitter=0, reset_after=0).max == 0
    assert BackoffPolicy(initial=5, max=5, jitter=1).jitter == 1


@pytest.mark.parametrize(
    "fields",
    [{"count": -1}, {"count": 1.5}, {"within": 0}, {"within": -5.0}, {"within": "60"}],
    ids=["negative count", "fractional count", "zero window", "negative window", "text window"],
)
def test_an_invalid_restart_limit_raises_value_error(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="max_restarts"):
        RestartLimit(**fields)  # type: ignore[arg-type]


# -- restart intensity -------------------------------------------------------------------------


def test_the_window_trips_only_when_more_than_count_failures_fall_inside_it() -> None:
    window = RestartWindow(RestartLimit(count=3, within=10.0))
    assert [window.record(t) for t in (0.0, 1.0, 2.0)] == [False, False, False]
    assert window.record(3.0) is True
    assert len(window) == 4


def test_failures_older_than_the_window_expire() -> None:
    window = RestartWindow(RestartLimit(count=3, within=10.0))
    for t in (0.0, 1.0, 2.0):
        window.record(t)
    # At t=10 the failure at t=0 is exactly `within` old and no longer counts.
    assert window.record(10.0) is False
    assert len(window) == 3
    assert window.record(10.5) is True


def test_failures_spread_wider_than_the_window_never_trip() -> None:
    window = RestartWindow(RestartLimit(count=2, within=10.0))
    assert not any(window.record(t * 5.01) for t in range(100))


def test_a_count_of_zero_disables_the_limit() -> None:
    window = RestartWindow(RestartLimit(count=0, within=60.0))
    assert not any(window.record(0.0) for _ in range(1000))
    assert len(window) == 0


def test_a_count_of_one_trips_on_the_second_failure_in_the_window() -> None:
    window = RestartWindow(RestartLimit(count=1, within=60.0))
    assert window.record(0.0) is False
    assert window.record(59.0) is True


def test_clear_forgets_the_recorded_failures() -> None:
    window = RestartWindow(RestartLimit(count=2, within=60.0))
    window.record(0.0)
    window.record(1.0)
    window.clear()
    assert len(window) == 0
    assert window.record(2.0) is False


def test_the_default_policy_fails_at_most_seven_times_in_sixty_seconds() -> None:
    # Shortest delays (all jitter taken): 0.7, 1.4, 2.8, 5.6, 11.2, 21 -> failures at
    # t = 0, 0.7, 2.1, 4.9, 10.5, 21.7, 42.7; the next would be at 63.7.
    assert max_failures_within(BackoffPolicy(), 60.0) == 7
    # So the default restart limit of 20 in 60 s can never trip on back-off alone.
    assert max_failures_within(BackoffPolicy(), 60.0) < RestartLimit().count


def test_max_failures_within_matches_a_simulation_with_the_shortest_delays() -> None:
    policy = BackoffPolicy()
    now, failures, attempt = 0.0, 1, 0
    while True:
        now += next_delay(policy, attempt, HIGHEST)
        if now > 60.0:
            break
        failures += 1
        attempt += 1
    assert failures == max_failures_within(policy, 60.0)


def test_max_failures_within_without_jitter_counts_the_plain_sequence() -> None:
    # 1, 2, 4, 8, 16 -> failures at t = 0, 1, 3, 7, 15, 31; the next (t = 61) is outside.
    assert max_failures_within(NO_JITTER, 60.0) == 6


def test_max_failures_within_with_full_jitter_is_unbounded() -> None:
    assert max_failures_within(BackoffPolicy(jitter=1.0), 60.0) == 100_000


class _High(random.Random):
    """A random source stuck at the top of its range (the most jitter up)."""

    def random(self) -> float:
        return 0.999999


@pytest.mark.parametrize(
    ("retry_after", "cap", "expected"),
    [
        (3600.0, 3600.0, 3600.0),  # capped value: no jitter above the cap
        (3500.0, 3600.0, 3600.0),  # jitter up, but never past the cap
        (100.0, 3600.0, 110.0),  # far below the cap: up to 10 % more
    ],
)
def test_retry_after_jitter_never_goes_past_max_retry_after(
    retry_after: float, cap: float, expected: float
) -> None:
    policy = BackoffPolicy(initial=1.0, max=30.0, jitter=0.3, max_retry_after=cap)
    delay = next_delay(policy, 0, _High(), retry_after=retry_after)
    assert delay == pytest.approx(expected, rel=1e-4)
    assert delay <= max(retry_after, cap)
