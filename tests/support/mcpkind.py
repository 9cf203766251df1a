"""Helpers for the MCP tests: specs with fast backoff, event filters, JSON data."""

from __future__ import annotations

import json
from typing import Any

from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
from streamvisor.spec import BreakerPolicy, StreamSpec
from streamvisor.sse import Event

FAST = BackoffPolicy(initial=0.05, max=0.2, jitter=0.0)


def mcp_spec(url: str, name: str = "tools", **mcp: Any) -> StreamSpec:
    """A ``kind: mcp`` stream with test-speed backoff and timeouts."""
    options: dict[str, Any] = {"protocol_versions": ["2025-11-25", "2025-06-18"], **mcp}
    return StreamSpec(
        name=name,
        url=url,
        kind="mcp",
        mcp=options,
        backoff=FAST,
        # A test server that restarts (slowly, on a loaded machine) must not park or fail it.
        breaker=BreakerPolicy(failures=0),
        max_restarts=RestartLimit(count=0),
        read_timeout=10.0,
        connect_timeout=2.0,
    )


def of(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e.event == kind]


def data(event: Event) -> Any:
    return json.loads(event.data)


def seqs(events: list[Event], kind: str = "notifications/message") -> list[int]:
    """The ``params.data.n`` (or ``params.n``) sequence numbers of ``kind`` events."""
    out = []
    for e in of(events, kind):
        params = data(e).get("params", {})
        n = params.get("data", params).get("n") if isinstance(params, dict) else None
        if n is not None and n >= 0:  # negative: priming notifications
            out.append(n)
    return out
