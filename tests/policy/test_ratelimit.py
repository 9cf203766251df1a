"""TokenBucket: a table of (time of a reservation -> expected wait) with a fake clock."""

from __future__ import annotations

import itertools

import pytest

from streamvisor.policy.ratelimit import TokenBucket
from tests.support.clock import ManualClock

CASES = [
    # (rate, burst, [(time of reserve, expected wait)])
    pytest.param(1.0, 1, [(0, 0), (0, 1.0), (0, 2.0), (0, 3.0)], id="reservations-queue-up"),
    pytest.param(2.0, 1, [(0, 0), (0.5, 0), (1.0, 0), (1.2, 0.3)], id="paced-requests-never-wait"),
    pytest.param(10.0, 3, [(0, 0), (0, 0), (0, 0), (0, 0.1), (0, 0.2)], id="burst-then-rate"),
    pytest.param(1.0, 2, [(0, 0), (0, 0), (100, 0), (100, 0), (100, 1.0)], id="refill-capped"),
    pytest.param(4.0, 1, [(0, 0), (0.1, 0.15)], id="partial-refill"),
    pytest.param(1.0, 1, [(5, 0), (4, 1.0)], id="clock-stepping-back-adds-nothing"),
]


@pytest.mark.parametrize(("rate", "burst", "steps"), CASES)
def test_reserve_returns_the_wait_for_each_request(
    rate: float, burst: float, steps: list[tuple[float, float]]
) -> None:
    clock = ManualClock(100.0)
    start = clock.now
    bucket = TokenBucket(rate, burst, clock)
    for at, expected in steps:
        clock.now = start + at
        assert bucket.reserve() == pytest.approx(expected)


def test_waiting_out_each_reservation_sends_at_the_rate() -> None:
    clock = ManualClock(100.0)
    bucket = TokenBucket(5.0, 1, clock)
    sent = []
    for _ in range(6):
        clock.now += bucket.reserve()
        sent.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert gaps == pytest.approx([0.2] * 5)


@pytest.mark.parametrize(
    ("rate", "burst"), [(0, 1), (-1, 1), (float("inf"), 1), (float("nan"), 1), (1, 0.5)]
)
def test_nonsense_rates_and_bursts_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)
