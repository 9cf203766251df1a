"""Lease arithmetic as tables, with a fake clock (plain numbers)."""

from __future__ import annotations

import pytest

from streamvisor.cluster.lease import LeaseTable, LeaseTiming, WriteVerdict

TIMING = LeaseTiming.for_ttl(3.0)  # margin 0.3 s, renew every 1 s


def test_timing_defaults_follow_the_ttl() -> None:
    assert TIMING.margin == pytest.approx(0.3)
    assert TIMING.renew_every == pytest.approx(1.0)
    assert TIMING.ttl_ms == 3000
    assert LeaseTiming.for_ttl(0.0004).ttl_ms == 1


def test_a_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ttl"):
        LeaseTiming.for_ttl(0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (100.0, WriteVerdict.WRITE),  # the instant the acquire was sent
        (102.69, WriteVerdict.WRITE),  # just inside deadline - margin
        (102.7, WriteVerdict.WAIT),  # deadline - margin: stop writing, wait for a renewal
        (102.99, WriteVerdict.WAIT),
        (103.0, WriteVerdict.WAIT),  # lapsed, but only the coordinator drops a lease
        (110.0, WriteVerdict.WAIT),  # e.g. resumed after SIGSTOP: still never WRITE
    ],
)
def test_verdict_of_a_lease_acquired_at_100(now: float, expected: WriteVerdict) -> None:
    table = LeaseTable(TIMING)
    table.grant("s", 7, sent_at=100.0)
    assert table.verdict("s", now) is expected


def test_a_stream_not_held_is_dropped() -> None:
    table = LeaseTable(TIMING)
    assert table.verdict("s", 0.0) is WriteVerdict.DROP
    table.grant("s", 1, 0.0)
    assert table.drop("s") is not None
    assert table.verdict("s", 0.0) is WriteVerdict.DROP
    assert table.drop("s") is None


@pytest.mark.parametrize(
    ("renew_sent_at", "confirmed", "deadline"),
    [
        (101.0, True, 104.0),  # the deadline counts from when the renewal was sent
        (101.0, False, 103.0),  # no answer: the last confirmed deadline stays
        (99.0, True, 103.0),  # an older renewal never moves a deadline back
    ],
)
def test_confirm_extends_from_the_send_time(
    renew_sent_at: float, confirmed: bool, deadline: float
) -> None:
    table = LeaseTable(TIMING)
    table.grant("s", 1, sent_at=100.0)
    if confirmed:
        table.confirm(["s"], renew_sent_at)
    lease = table.get("s")
    assert lease is not None and lease.deadline == pytest.approx(deadline)


def test_confirm_ignores_streams_dropped_while_the_renewal_was_in_flight() -> None:
    table = LeaseTable(TIMING)
    table.confirm(["gone"], 5.0)
    assert "gone" not in table


def test_lapsed_and_next_deadline() -> None:
    table = LeaseTable(TIMING)
    assert table.next_deadline() is None
    table.grant("a", 1, 100.0)
    table.grant("b", 2, 101.0)
    assert table.next_deadline() == pytest.approx(103.0)
    assert table.lapsed(102.9) == []
    assert table.lapsed(103.0) == ["a"]
    assert table.lapsed(104.5) == ["a", "b"]
    assert table.remaining("b", 102.0) == pytest.approx(2.0)
    assert table.remaining("c", 102.0) is None
    assert table.token("b") == 2 and table.token("c") is None
    assert table.streams() == ["a", "b"] and len(table) == 2
