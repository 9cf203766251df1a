"""Prometheus families for ``kind: mcp`` streams, computed at scrape time from the ``mcp``
entry ``Streamvisor.status()`` gives each MCP stream (the scrape's one snapshot). Labels:
stream, outcome, method (known server-request methods, else ``other``) and listen state;
never session ids or URLs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from streamvisor.upstream.mcp.session import ListenPhase

__all__ = ["mcp_families"]

_P = "streamvisor_mcp_"
_LISTEN_STATES = tuple(phase.value for phase in ListenPhase)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def mcp_families(status: Mapping[str, Any]) -> list[Metric]:
    """The MCP metric families of one status snapshot (see ``metrics.StatusCollector``)."""
    f = _Families()
    streams = status.get("streams")
    for name, info in streams.items() if isinstance(streams, Mapping) else ():
        mcp = info.get("mcp") if isinstance(info, Mapping) else None
        if isinstance(mcp, Mapping):
            f.add(str(name), mcp)
    return f.all()


class _Families:
    def __init__(self) -> None:
        s = ["stream"]
        self.init = CounterMetricFamily(_P + "initialize", "Sessions initialized.", labels=s)
        self.expired = CounterMetricFamily(
            _P + "session_expired", "Sessions the server expired (404).", labels=s
        )
        self.resume = CounterMetricFamily(
            _P + "resume", "Listening-stream resumes by outcome.", labels=["stream", "outcome"]
        )
        self.requests = CounterMetricFamily(
            _P + "server_requests",
            "Server-to-client requests answered.",
            labels=["stream", "method"],
        )
        self.listens = CounterMetricFamily(
            _P + "listen_opened", "Listening streams opened.", labels=s
        )
        self.rtt = GaugeMetricFamily(
            _P + "last_ping_rtt_seconds", "Round trip of the last ping request.", labels=s
        )
        self.ready = GaugeMetricFamily(
            _P + "session_ready", "1 while the session is ready.", labels=s
        )
        self.listen = GaugeMetricFamily(
            _P + "listen_state", "1 for the listening channel's state.", labels=["stream", "state"]
        )

    def all(self) -> list[Metric]:
        return list(vars(self).values())

    def add(self, name: str, mcp: Mapping[str, Any]) -> None:
        label = [name]
        self.init.add_metric(label, _num(mcp.get("initializations")))
        self.expired.add_metric(label, _num(mcp.get("session_expiries")))
        resumes = mcp.get("resumes")
        resumes = resumes if isinstance(resumes, Mapping) else {}
        for outcome in ("ok", "failed"):
            self.resume.add_metric([*label, outcome], _num(resumes.get(outcome)))
        requests = mcp.get("server_requests")
        for method, count in requests.items() if isinstance(requests, Mapping) else ():
            self.requests.add_metric([*label, str(method)], _num(count))
        self.listens.add_metric(label, _num(mcp.get("listens")))
        rtt = mcp.get("last_ping_rtt")
        if isinstance(rtt, int | float):
            self.rtt.add_metric(label, float(rtt))
        self.ready.add_metric(label, 1.0 if mcp.get("session") == "ready" else 0.0)
        for state in _LISTEN_STATES:
            self.listen.add_metric([*label, state], 1.0 if mcp.get("listen") == state else 0.0)
