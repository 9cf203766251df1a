"""``top``'s pure parts as tables: rates, sparklines, rows, filter, totals, formats."""

from __future__ import annotations

from typing import Any

import pytest

from streamvisor.views.model import (
    SPARK_CHARS,
    RateTracker,
    Row,
    build_rows,
    format_age,
    format_rate,
    matches,
    sparkline,
    totals,
)


@pytest.mark.parametrize(
    ("samples", "rate", "history"),
    [
        ([(0.0, 0)], 0.0, []),
        ([(0.0, 0), (1.0, 10)], 10.0, [(1.0, 10.0)]),
        ([(0.0, 0), (2.0, 10)], 5.0, [(2.0, 5.0)]),
        ([(0.0, 0), (1.0, 10), (2.0, 10)], 0.0, [(1.0, 10.0), (2.0, 0.0)]),
        # a counter that went down (daemon restarted) starts over, never a negative rate
        ([(0.0, 0), (1.0, 50), (2.0, 3)], 0.0, []),
        ([(0.0, 0), (1.0, 50), (2.0, 3), (3.0, 13)], 10.0, [(3.0, 10.0)]),
        # the same time twice (no time passed) gives no rate
        ([(0.0, 0), (0.0, 5)], 0.0, []),
        # points older than the window are forgotten
        ([(0.0, 0), (1.0, 1), (62.0, 62)], 1.0, [(62.0, 1.0)]),
    ],
)
def test_rates_come_from_successive_counters(
    samples: list[tuple[float, int]], rate: float, history: list[tuple[float, float]]
) -> None:
    tracker = RateTracker(window=60.0)
    for now, events in samples:
        tracker.update(now, {"a": events})
    assert tracker.rate("a") == rate
    assert tracker.history("a") == history


def test_a_stream_gone_from_the_snapshot_is_forgotten() -> None:
    tracker = RateTracker()
    tracker.update(0.0, {"a": 0, "b": 0})
    tracker.update(1.0, {"a": 5, "b": 5})
    tracker.update(2.0, {"b": 9})
    assert tracker.rate("a") == 0.0 and tracker.history("a") == []
    assert tracker.rate("b") == 4.0


@pytest.mark.parametrize(
    ("points", "now", "width", "expected"),
    [
        ([], 60.0, 4, "    "),
        ([(59.0, 0.0)], 60.0, 4, "   ▁"),
        ([(59.0, 8.0)], 60.0, 4, "   █"),
        ([(1.0, 2.0), (16.0, 4.0), (31.0, 6.0), (46.0, 8.0)], 60.0, 4, "▂▄▆█"),
        # several points in one bucket: the highest counts
        ([(50.0, 1.0), (55.0, 8.0), (59.0, 2.0)], 60.0, 4, "   █"),
        # outside the window, or in the future: left out
        ([(-1.0, 8.0), (61.0, 8.0), (59.0, 4.0)], 60.0, 4, "   █"),
        ([(59.0, 1.0)], 60.0, 0, ""),
    ],
)
def test_sparklines_bucket_the_last_minute(
    points: list[tuple[float, float]], now: float, width: int, expected: str
) -> None:
    assert sparkline(points, now, width, window=60.0) == expected


def test_a_sparkline_uses_every_level_from_lowest_to_highest() -> None:
    points = [(i + 0.5, float(i + 1)) for i in range(8)]
    assert sparkline(points, 8.0, 8, window=8.0) == SPARK_CHARS


STATUS: dict[str, Any] = {
    "b": {
        "state": "reconnecting",
        "events": 7,
        "last_event_id": 42,
        "last_event_at": 90.0,
        "restarts": 3,
        "last_failure": "retry",
        "breaker": "open",
        "checkpoint_at": 85.0,
        "subscribers": {
            "s1": {"queue_depth": 4, "dropped": 2},
            "s2": {"queue_depth": 9, "dropped": 1},
        },
    },
    "a": {"state": "connected"},
    "c": "garbage",
}


def test_rows_are_sorted_and_filled_from_the_snapshot_with_safe_defaults() -> None:
    tracker = RateTracker()
    tracker.update(99.0, {"b": 0})
    tracker.update(100.0, {"b": 7})
    a, b, c = build_rows(STATUS, tracker, 100.0, spark_width=3)
    assert a == Row("a", "connected", 0.0, "   ", 0, None, None, 0, None, None, 0, 0, None)
    assert b == Row("b", "reconnecting", 7.0, "  █", 7, 10.0, "42", 3, "retry", "open", 9, 3, 5.0)
    assert (c.name, c.state, c.events) == ("c", "unknown", 0)


def test_a_stream_waiting_for_a_full_subscriber_is_paused_and_found_by_the_filter() -> None:
    status = {"x": {"state": "connected", "paused_on": "archive"}, "y": {"state": "connected"}}
    x, y = build_rows(status, RateTracker(), 0.0, 0)
    assert (x.paused, y.paused) == (True, False)
    assert [r.name for r in (x, y) if matches(r, "paused")] == ["x"]


def test_a_checkpoint_newer_than_the_last_event_is_no_lag() -> None:
    status = {"x": {"last_event_at": 10.0, "checkpoint_at": 12.0}}
    [row] = build_rows(status, RateTracker(), 20.0, 0)
    assert row.lag == 0.0


def row(name: str, state: str = "connected", failure: str | None = None, **kw: Any) -> Row:
    values: dict[str, Any] = dict(
        rate=0.0,
        spark="",
        events=0,
        age=None,
        last_event_id=None,
        restarts=0,
        breaker=None,
        queue=0,
        drops=0,
        lag=None,
    )
    values.update(kw)
    return Row(name=name, state=state, failure=failure, **values)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["eu-ticker", "us-ticker", "us-news"]),
        ("ticker", ["eu-ticker", "us-ticker"]),
        ("TICK", ["eu-ticker", "us-ticker"]),
        ("us ticker", ["us-ticker"]),
        ("failed", ["us-news"]),
        ("permanent", ["us-news"]),
        ("fail", []),  # states and failure classes match whole, names by part
        ("nothing", []),
    ],
)
def test_the_filter_matches_names_by_part_and_states_whole(text: str, expected: list[str]) -> None:
    rows = [row("eu-ticker"), row("us-ticker"), row("us-news", "failed", "permanent")]
    assert [r.name for r in rows if matches(r, text)] == expected


def test_totals_add_up_every_row() -> None:
    rows = [
        row("a", rate=1.5, events=10, restarts=1, drops=0),
        row("b", "failed", rate=0.0, events=5, restarts=4, drops=2),
        row("c", rate=2.5, events=1),
    ]
    sums = totals(rows)
    assert (sums.streams, sums.by_state) == (3, {"connected": 2, "failed": 1})
    assert (sums.rate, sums.events, sums.restarts, sums.drops) == (4.0, 16, 5, 2)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.0, "0s"), (59.4, "59s"), (61, "1m"), (5400, "1.5h"), (172800, "2.0d")],
)
def test_ages_are_short(seconds: float | None, text: str) -> None:
    assert format_age(seconds) == text


@pytest.mark.parametrize(
    ("rate", "text"), [(0.0, "0.0"), (9.94, "9.9"), (12.4, "12"), (9999, "9999"), (25_400, "25k")]
)
def test_rates_are_short(rate: float, text: str) -> None:
    assert format_rate(rate) == text
