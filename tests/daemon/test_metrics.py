"""Metrics computed from a status snapshot, read back through the text exposition format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamvisor.daemon.metrics import STREAM_STATES, StatusCollector, build_registry
from streamvisor.states import BreakerState, StreamState

URL = "http://user:***@upstream.example/x"

SNAPSHOT: dict[str, Any] = {
    "streams": {
        "ticker": {
            "state": "connected",
            "url": URL,
            "last_event_id": "42",
            "events": 1200,
            "bytes": 345678,
            "restarts": 3,
            "failures": {"retry": 2, "rate_limited": 1, "permanent": 0, "crash": 0},
            "dedup_dropped": 5,
            "reused_ids": 1,
            "breaker": "half_open",
            "last_error": "HTTP 503 (Retry-After 1s)",
            "connected_since": 1795478071.6,
            "last_event_at": 1795478075.5,
            "checkpoint_id": "40",
            "checkpoint_at": 1795478070.0,
            "subscribers": {"archive": {"queue_depth": 3, "dropped": 7, "delivered": 1200}},
        }
    },
    "subscribers": {
        "archive": {
            "alive": True,
            "policy": "drop_newest",
            "queue_depth": 3,
            "dropped": 7,
            "delivered": 1200,
        }
    },
    "reloads": {"ok": 1, "failed": 2},
    "started_at": 1795478000.0,
}

Key = tuple[str, frozenset[tuple[str, str]]]


def scrape(snapshot: Mapping[str, Any]) -> dict[Key, float]:
    """Return every exposed sample as {(name, labels): value}."""
    text = generate_latest(build_registry(lambda: snapshot)).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def key(name: str, **labels: str) -> Key:
    return ("streamvisor_" + name, frozenset(labels.items()))


@pytest.mark.parametrize(
    ("name", "labels", "value"),
    [
        ("events_total", {"stream": "ticker"}, 1200),
        ("bytes_total", {"stream": "ticker"}, 345678),
        ("restarts_total", {"stream": "ticker"}, 3),
        ("failures_total", {"stream": "ticker", "class": "retry"}, 2),
        ("failures_total", {"stream": "ticker", "class": "rate_limited"}, 1),
        ("failures_total", {"stream": "ticker", "class": "permanent"}, 0),
        ("failures_total", {"stream": "ticker", "class": "crash"}, 0),
        ("dedup_dropped_total", {"stream": "ticker"}, 5),
        ("reused_ids_total", {"stream": "ticker"}, 1),
        (
            "overflow_dropped_total",
            {"stream": "ticker", "subscriber": "archive", "reason": "drop_newest"},
            7,
        ),
        ("stream_paused", {"stream": "ticker"}, 0),
        ("subscriber_queue_depth", {"subscriber": "archive"}, 3),
        ("subscriber_delivered_total", {"subscriber": "archive"}, 1200),
        ("subscriber_alive", {"subscriber": "archive"}, 1),
        ("breaker_open", {"stream": "ticker"}, 1),
        ("last_event_timestamp_seconds", {"stream": "ticker"}, 1795478075.5),
        ("checkpoint_lag_seconds", {"stream": "ticker"}, 5.5),
        ("config_reloads_total", {"result": "ok"}, 1),
        ("config_reloads_total", {"result": "failed"}, 2),
        ("up", {}, 1),
        ("start_time_seconds", {}, 1795478000.0),
    ],
)
def test_a_snapshot_becomes_the_expected_sample(
    name: str, labels: dict[str, str], value: float
) -> None:
    assert scrape(SNAPSHOT)[key(name, **labels)] == pytest.approx(value)


def test_stream_state_is_one_for_the_current_state_and_zero_for_the_other_five() -> None:
    samples = scrape(SNAPSHOT)
    states = {s: samples[key("stream_state", stream="ticker", state=s)] for s in STREAM_STATES}
    assert states == {s: (1.0 if s == "connected" else 0.0) for s in STREAM_STATES}
    assert len(states) == 6


@pytest.mark.parametrize(("breaker", "expected"), [("closed", 0), ("open", 1), ("half_open", 1)])
def test_breaker_open_is_one_only_while_the_breaker_is_not_closed(
    breaker: str, expected: float
) -> None:
    snapshot = {"streams": {"s": {"breaker": breaker}}}
    assert scrape(snapshot)[key("breaker_open", stream="s")] == expected


def test_states_given_as_enums_count_like_their_values() -> None:
    snapshot = {"streams": {"s": {"state": StreamState.FAILED, "breaker": BreakerState.OPEN}}}
    samples = scrape(snapshot)
    assert samples[key("stream_state", stream="s", state="failed")] == 1
    assert samples[key("breaker_open", stream="s")] == 1


def test_an_empty_snapshot_still_exposes_up_and_zero_reloads() -> None:
    samples = scrape({})
    assert samples == {
        key("up"): 1.0,
        key("config_reloads_total", result="ok"): 0.0,
        key("config_reloads_total", result="failed"): 0.0,
    }


def test_missing_stream_keys_count_as_zero_and_timestamps_are_left_out() -> None:
    samples = scrape({"streams": {"bare": {}}, "subscribers": {"s": None}})
    assert samples[key("events_total", stream="bare")] == 0
    assert samples[key("failures_total", stream="bare", **{"class": "crash"})] == 0
    assert samples[key("stream_state", stream="bare", state="disconnected")] == 0
    assert samples[key("subscriber_queue_depth", subscriber="s")] == 0
    names = {name for name, _ in samples}
    assert "streamvisor_last_event_timestamp_seconds" not in names
    assert "streamvisor_checkpoint_lag_seconds" not in names
    assert "streamvisor_start_time_seconds" not in names


def test_malformed_values_count_as_zero_instead_of_failing_the_scrape() -> None:
    snapshot = {"streams": {"odd": {"events": "many", "failures": None, "bytes": float("nan")}}}
    samples = scrape(snapshot)
    assert samples[key("events_total", stream="odd")] == 0
    assert samples[key("bytes_total", stream="odd")] == 0
    assert samples[key("failures_total", stream="odd", **{"class": "retry"})] == 0


def test_checkpoint_lag_needs_both_times_and_is_never_negative() -> None:
    only_event = {"streams": {"a": {"last_event_at": 10.0, "checkpoint_at": None}}}
    assert key("checkpoint_lag_seconds", stream="a") not in scrape(only_event)
    ahead = {"streams": {"a": {"last_event_at": 10.0, "checkpoint_at": 12.0}}}
    assert scrape(ahead)[key("checkpoint_lag_seconds", stream="a")] == 0


def test_an_unknown_failure_class_is_exported_alongside_the_known_ones() -> None:
    snapshot = {"streams": {"a": {"failures": {"novel": 4}}}}
    assert scrape(snapshot)[key("failures_total", stream="a", **{"class": "novel"})] == 4


def test_no_created_series_are_exposed() -> None:
    assert not [name for name, _ in scrape(SNAPSHOT) if name.endswith("_created")]


def test_the_redacted_url_and_error_text_never_become_labels() -> None:
    text = generate_latest(build_registry(lambda: SNAPSHOT)).decode()
    assert URL not in text
    assert "HTTP 503" not in text
    label_values = {v for _, labels in scrape(SNAPSHOT) for _, v in labels}
    assert label_values <= {
        "ticker",
        "archive",
        "drop_newest",
        "ok",
        "failed",
        "retry",
        "rate_limited",
        "permanent",
        "crash",
        *STREAM_STATES,
    }


def test_each_scrape_takes_a_fresh_snapshot() -> None:
    calls: list[int] = []

    def snapshot() -> Mapping[str, Any]:
        calls.append(1)
        return {"streams": {"a": {"events": len(calls)}}}

    registry = build_registry(snapshot)
    assert calls == []  # registering takes no snapshot
    generate_latest(registry)
    text = generate_latest(registry).decode()
    assert 'streamvisor_events_total{stream="a"} 2.0' in text


def test_the_collector_raises_what_the_snapshot_raises() -> None:
    def broken() -> Mapping[str, Any]:
        raise TimeoutError("status ask timed out")

    with pytest.raises(TimeoutError):
        list(StatusCollector(broken).collect())


def test_two_registries_do_not_clash() -> None:
    first = build_registry(lambda: SNAPSHOT)
    second = build_registry(lambda: {})
    assert b"streamvisor_events_total" in generate_latest(first)
    assert b"streamvisor_events_total{" not in generate_latest(second)
