"""Prometheus metrics computed at scrape time from a status snapshot.

Rule: nothing here runs on the per-event path. A scrape calls the snapshot function once and
turns the mapping it returns (the shape of ``Streamvisor.status()``) into metric families.
Missing or malformed keys count as 0 (counters) or leave the series out (timestamps). Labels
are stream, subscriber, failure class, state and reload result names only: never URLs or
error texts, which may carry secrets or explode cardinality.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

from streamvisor.policy.classify import FailureClass
from streamvisor.states import BreakerState, StreamState

__all__ = ["FAILURE_CLASSES", "STREAM_STATES", "StatusCollector", "build_registry"]

STREAM_STATES = tuple(state.value for state in StreamState)
"""Every state a stream can be in; ``stream_state`` has one series per state."""

FAILURE_CLASSES = tuple(FailureClass)
"""Failure classes always exported (as 0 when absent), so rates work from the first scrape."""

_OPEN_BREAKER_STATES = frozenset({BreakerState.OPEN.value, BreakerState.HALF_OPEN.value})
_RELOAD_RESULTS = ("ok", "failed")
_P = "streamvisor_"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    """Return ``value`` as a finite float, or None when it is missing or not a number."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        result = float(value)
        return result if math.isfinite(result) else None
    return None


def _plain(value: Any) -> Any:
    """Accept a state given as its enum or as the enum's value."""
    return value.value if isinstance(value, enum.Enum) else value


def _count(value: Any) -> float:
    number = _number(value)
    return number if number is not None else 0.0


class _Families:
    """The metric families of one scrape, created empty."""

    def __init__(self) -> None:
        s = ["stream"]
        self.events = CounterMetricFamily(_P + "events", "Events published after dedup.", labels=s)
        self.bytes = CounterMetricFamily(_P + "bytes", "Bytes read from the wire.", labels=s)
        self.restarts = CounterMetricFamily(
            _P + "restarts",
            "Reconnects the supervisor scheduled (restarts, as status() and /streams say).",
            labels=s,
        )
        self.failures = CounterMetricFamily(
            _P + "failures", "Failed connection attempts by class.", labels=["stream", "class"]
        )
        self.dedup_dropped = CounterMetricFamily(
            _P + "dedup_dropped", "Replayed events dropped by dedup.", labels=s
        )
        self.reused_ids = CounterMetricFamily(
            _P + "reused_ids",
            "Events kept although their id was seen with other content.",
            labels=s,
        )
        self.overflow_dropped = CounterMetricFamily(
            _P + "overflow_dropped",
            "Events dropped by a full subscriber buffer, by the drop policy its user chose "
            "(reason: drop_newest, drop_oldest, disconnect).",
            labels=["stream", "subscriber", "reason"],
        )
        self.paused = GaugeMetricFamily(
            _P + "stream_paused",
            "1 while a full subscriber or sink pauses the stream (backpressure).",
            labels=s,
        )
        self.paused_seconds = CounterMetricFamily(
            _P + "backpressure_seconds",
            "Seconds the stream spent paused by backpressure.",
            labels=s,
        )
        self.queue_depth = GaugeMetricFamily(
            _P + "subscriber_queue_depth",
            "Events waiting in a subscriber queue.",
            labels=["subscriber"],
        )
        self.delivered = CounterMetricFamily(
            _P + "subscriber_delivered", "Events delivered to a subscriber.", labels=["subscriber"]
        )
        self.alive = GaugeMetricFamily(
            _P + "subscriber_alive", "1 while a subscriber is alive.", labels=["subscriber"]
        )
        self.state = GaugeMetricFamily(
            _P + "stream_state", "1 for the stream's current state.", labels=["stream", "state"]
        )
        self.breaker = GaugeMetricFamily(
            _P + "breaker_open", "1 while the circuit breaker is open or half open.", labels=s
        )
        self.last_event = GaugeMetricFamily(
            _P + "last_event_timestamp_seconds", "When the last event arrived (epoch).", labels=s
        )
        self.checkpoint_lag = GaugeMetricFamily(
            _P + "checkpoint_lag_seconds",
            "Seconds between the last event and the last checkpoint.",
            labels=s,
        )
        self.reloads = CounterMetricFamily(
            _P + "config_reloads", "Configuration reloads by result.", labels=["result"]
        )
        self.up = GaugeMetricFamily(_P + "up", "1 while streamvisor is running.")
        self.start_time = GaugeMetricFamily(
            _P + "start_time_seconds", "When streamvisor started (epoch)."
        )

    def all(self) -> list[Metric]:
        return list(vars(self).values())


def _add_stream(f: _Families, name: str, info: Mapping[str, Any]) -> None:
    f.events.add_metric([name], _count(info.get("events")))
    f.bytes.add_metric([name], _count(info.get("bytes")))
    f.restarts.add_metric([name], _count(info.get("restarts")))
    failures = _mapping(info.get("failures"))
    for cls in (*FAILURE_CLASSES, *(str(k) for k in failures if k not in FAILURE_CLASSES)):
        f.failures.add_metric([name, cls], _count(failures.get(cls)))
    f.dedup_dropped.add_metric([name], _count(info.get("dedup_dropped")))
    f.reused_ids.add_metric([name], _count(info.get("reused_ids")))
    for sub, sub_info in _mapping(info.get("subscribers")).items():
        sub_info = _mapping(sub_info)
        reason = str(sub_info.get("reason") or "drop_newest")
        f.overflow_dropped.add_metric([name, str(sub), reason], _count(sub_info.get("dropped")))
    f.paused.add_metric([name], 1.0 if info.get("paused_on") else 0.0)
    f.paused_seconds.add_metric([name], _count(info.get("paused_seconds")))
    current = _plain(info.get("state"))
    for state in STREAM_STATES:
        f.state.add_metric([name, state], 1.0 if current == state else 0.0)
    f.breaker.add_metric(
        [name], 1.0 if _plain(info.get("breaker")) in _OPEN_BREAKER_STATES else 0.0
    )
    last_event_at = _number(info.get("last_event_at"))
    if last_event_at is not None:
        f.last_event.add_metric([name], last_event_at)
        checkpoint_at = _number(info.get("checkpoint_at"))
        if checkpoint_at is not None:
            # A checkpoint written after the last event means nothing is waiting: no lag.
            f.checkpoint_lag.add_metric([name], max(0.0, last_event_at - checkpoint_at))


def _add_subscriber(f: _Families, name: str, info: Mapping[str, Any]) -> None:
    f.queue_depth.add_metric([name], _count(info.get("queue_depth")))
    f.delivered.add_metric([name], _count(info.get("delivered")))
    alive = info.get("alive", info.get("removed") is None)
    f.alive.add_metric([name], 1.0 if alive else 0.0)


class StatusCollector:
    """A prometheus_client collector that reads a status snapshot at each scrape.

    Args:
        snapshot: returns the mapping described by ``Streamvisor.status()``. It is called once
            per scrape; an exception it raises propagates to the caller of ``collect()``.
    """

    def __init__(self, snapshot: Callable[[], Mapping[str, Any]]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterable[Metric]:
        """Return the metric families without samples (names only; no snapshot is taken)."""
        return _Families().all()

    def collect(self) -> Iterator[Metric]:
        """Take one snapshot and yield every metric family computed from it."""
        status = _mapping(self._snapshot())
        f = _Families()
        for name, info in _mapping(status.get("streams")).items():
            _add_stream(f, str(name), _mapping(info))
        for name, info in _mapping(status.get("subscribers")).items():
            _add_subscriber(f, str(name), _mapping(info))
        reloads = _mapping(status.get("reloads"))
        for result in (*_RELOAD_RESULTS, *(str(k) for k in reloads if k not in _RELOAD_RESULTS)):
            f.reloads.add_metric([result], _count(reloads.get(result)))
        f.up.add_metric([], 1.0)
        started_at = _number(status.get("started_at"))
        if started_at is not None:
            f.start_time.add_metric([], started_at)
        yield from f.all()
        from streamvisor.upstream.mcp.metrics import mcp_families

        yield from mcp_families(status)  # kind: mcp streams, from the same snapshot


def build_registry(snapshot: Callable[[], Mapping[str, Any]]) -> CollectorRegistry:
    """Return a new registry (never the global one) holding a ``StatusCollector``.

    Args:
        snapshot: passed to ``StatusCollector``.

    Returns:
        A ``CollectorRegistry`` for ``generate_latest`` or the admin server.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(snapshot))
    return registry
