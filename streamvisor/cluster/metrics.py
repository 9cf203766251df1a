"""Prometheus metrics of cluster mode, computed at scrape time from ``ClusterNode.status()``.

Labels are stream and sink names only (never URLs or member ids). Nothing here runs on the
per-event path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["ClusterCollector"]

_P = "streamvisor_cluster_"
_COUNTERS = (
    ("failovers", "Streams acquired after their previous owner's lease expired."),
    ("handoffs", "Streams acquired after a clean release, or released cleanly."),
    ("lost", "Leases lost without a release (lapsed, taken over, fenced)."),
    ("fenced_writes", "Writes Redis rejected because another instance holds a newer token."),
)


def _families() -> dict[str, Any]:
    s = ["stream"]
    families: dict[str, Any] = {
        "live": GaugeMetricFamily(_P + "live_instances", "Live instances seen last round."),
        "quota": GaugeMetricFamily(_P + "quota", "Streams this instance may own."),
        "owned": GaugeMetricFamily(_P + "owned_streams", "Streams this instance owns now."),
        "token": GaugeMetricFamily(_P + "token", "Fencing token of each owned stream.", labels=s),
        "expires": GaugeMetricFamily(
            _P + "lease_expires_in_seconds",
            "Seconds until each owned lease's local deadline.",
            labels=s,
        ),
        "guard": CounterMetricFamily(
            _P + "guard_dropped",
            "Events a gated sink did not write because another instance owns their stream.",
            labels=["sink"],
        ),
        "dups": CounterMetricFamily(
            _P + "sink_duplicates_dropped",
            "Events a fenced redis_streams sink found already written.",
            labels=["sink"],
        ),
    }
    for name, text in _COUNTERS:
        families[name] = CounterMetricFamily(_P + name, text, labels=s)
    return families


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class ClusterCollector:
    """A prometheus_client collector over a cluster status function.

    Args:
        status: returns ``ClusterNode.status()``; called once per scrape.
    """

    def __init__(self, status: Callable[[], Mapping[str, Any]]) -> None:
        self._status = status

    def describe(self) -> Iterable[Metric]:
        """The metric families without samples."""
        return list(_families().values())

    def collect(self) -> Iterator[Metric]:
        """One status read, every cluster metric family."""
        status = self._status()
        f = _families()
        f["live"].add_metric([], _number(status.get("live")))
        f["quota"].add_metric([], _number(status.get("quota")))
        f["owned"].add_metric([], _number(status.get("owned")))
        for stream, info in dict(status.get("streams") or {}).items():
            if info.get("owner") is not None:
                f["token"].add_metric([stream], _number(info.get("token")))
                f["expires"].add_metric([stream], _number(info.get("lease_expires_in")))
            for name, _ in _COUNTERS:
                f[name].add_metric([stream], _number(info.get(name)))
        for sink, info in dict(status.get("sinks") or {}).items():
            if info.get("mode") == "gated":
                f["guard"].add_metric([sink], _number(info.get("guard_dropped")))
            else:
                f["dups"].add_metric([sink], _number(info.get("duplicates_dropped")))
        yield from f.values()
