"""Stream and breaker states, shared by the supervisor, status output and metrics. Pure."""

from __future__ import annotations

import enum


class StreamState(enum.Enum):
    """Lifecycle of one supervised stream."""

    DISCONNECTED = "disconnected"  # configured, not started yet
    CONNECTING = "connecting"  # first attempt under way
    CONNECTED = "connected"  # response accepted, reading events
    RECONNECTING = "reconnecting"  # waiting for, or making, another attempt
    FAILED = "failed"  # gave up (permanent error, restart intensity, retry budget)
    CLOSED = "closed"  # ended on purpose (close command, HTTP 204, stop)


class BreakerState(enum.Enum):
    """Per-stream circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
