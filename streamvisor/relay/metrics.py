"""Prometheus metrics of the relay, read from its per-stream counters at scrape time.

Rule (as in ``streamvisor.daemon.metrics``): nothing here runs on the per-event path; the relay
only increments plain integers, and a scrape turns them into metric families. Labels are
stream names only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

__all__ = ["RouteCounters", "build_relay_registry"]

_P = "streamvisor_relay_"


@dataclass(slots=True)
class RouteCounters:
    """One stream's relay counters (mutated only in the relay's loop thread)."""

    clients: int = 0
    connections: int = 0
    events: int = 0
    deliveries: int = 0
    replayed: int = 0
    gaps: int = 0
    cuts: int = 0
    retained: int = 0


# (attribute, metric name, help, counter?)
_SERIES = (
    ("clients", "clients", "Downstream clients connected.", False),
    ("connections", "connections", "Downstream connections accepted.", True),
    ("events", "events", "Events received from the stream and encoded.", True),
    ("deliveries", "deliveries", "Live events written to clients (events x clients).", True),
    ("replayed", "replayed_events", "Events sent as replay after a Last-Event-ID.", True),
    ("gaps", "gaps", "Resumes that could not continue exactly (gap signal sent).", True),
    ("cuts", "slow_client_cuts", "Clients disconnected for unsent bytes over the bound.", True),
    ("retained", "retained_events", "Events held for replay.", False),
)


class RelayCollector:
    """A collector over ``snapshot()``: stream name -> ``RouteCounters``."""

    def __init__(self, snapshot: Callable[[], Mapping[str, RouteCounters]]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterable[Metric]:
        """The families without samples."""
        return self._families({})

    def collect(self) -> Iterator[Metric]:
        """One snapshot, as metric families (one series per stream)."""
        yield from self._families(self._snapshot())

    @staticmethod
    def _families(routes: Mapping[str, RouteCounters]) -> list[Metric]:
        families: list[Metric] = []
        for attr, name, text, counter in _SERIES:
            kind = CounterMetricFamily if counter else GaugeMetricFamily
            family = kind(_P + name, text, labels=["stream"])
            for stream, counters in routes.items():
                family.add_metric([stream], float(getattr(counters, attr)))
            families.append(family)
        return families


def build_relay_registry(
    snapshot: Callable[[], Mapping[str, RouteCounters]],
) -> CollectorRegistry:
    """A new registry (never the global one) holding the relay's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RelayCollector(snapshot))
    return registry
