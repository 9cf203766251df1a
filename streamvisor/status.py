"""Typed status values: what ``Streamvisor.status()`` returns and ``/streams`` serves.

Frozen values, built from the supervisor's and the hub's snapshots; ``to_dict()`` is the JSON
form served unchanged by the admin endpoint (and read by ``/metrics`` and ``streamvisor top``).
Layers above the core (the daemon's checkpoints, MCP sessions, cluster leases) add their
fields through ``extra``, which ``to_dict()`` merges in. For code written against the earlier
dict results, ``status["streams"]`` and ``stream["state"]`` still work (read-only).
No I/O here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from streamvisor.states import StreamState

__all__ = ["Status", "StreamStatus", "SubscriberShare", "SubscriberStatus"]


class _DictAccess:
    """Read-only ``obj["key"]`` / ``obj.get(key)`` over ``to_dict()`` (compatibility)."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        """``to_dict().get(key, default)``."""
        return self.to_dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def keys(self) -> Iterator[str]:
        """The keys of ``to_dict()``."""
        return iter(self.to_dict())


@dataclass(frozen=True, slots=True)
class SubscriberShare(_DictAccess):
    """One subscriber as seen from one stream.

    Attributes:
        queue_depth: events buffered for it (all streams).
        dropped: events of this stream it lost by its drop policy.
        reason: its policy (the ``reason`` label of the drop counter).
    """

    queue_depth: int = 0
    dropped: int = 0
    reason: str = "block"

    def to_dict(self) -> dict[str, Any]:
        """``{"queue_depth", "dropped", "reason"}``."""
        return {"queue_depth": self.queue_depth, "dropped": self.dropped, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class StreamStatus(_DictAccess):
    """One stream.

    Attributes:
        name: the stream's name.
        state: disconnected, connecting, connected, reconnecting, failed or closed.
        url: the URL, redacted.
        last_event_id: the Last-Event-ID of the last delivered event (None: none yet).
        events: new events delivered (after dedup).
        bytes: bytes read from the wire.
        restarts: reconnects scheduled by the supervisor (Erlang/OTP: restarts).
        failures: failed attempts by class (retry, rate_limited, permanent, crash).
        breaker: closed, open or half_open.
        last_error: the last failure's reason, redacted.
        last_failure: the last failure's class (retry, rate_limited, permanent, crash).
        connected_since: when the current connection was accepted (epoch seconds).
        last_event_at: when the last event was delivered (epoch seconds).
        dedup_dropped: replays dropped by dedup.
        reused_ids: events kept although their id was seen with other content.
        paused_on: the full subscriber the stream waits for (backpressure), or None.
        paused_seconds: seconds spent paused by backpressure.
        subscribers: per subscriber taking it, its depth and this stream's drops.
        extra: fields added by other layers (checkpoint, MCP, cluster), merged by to_dict().
    """

    name: str
    state: StreamState
    url: str = ""
    last_event_id: str | None = None
    events: int = 0
    bytes: int = 0
    restarts: int = 0
    failures: Mapping[str, int] = field(default_factory=dict)
    breaker: str = "closed"
    last_error: str | None = None
    last_failure: str | None = None
    connected_since: float | None = None
    last_event_at: float | None = None
    dedup_dropped: int = 0
    reused_ids: int = 0
    paused_on: str | None = None
    paused_seconds: float = 0.0
    subscribers: Mapping[str, SubscriberShare] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``/streams``): every field but ``name``, ``extra`` merged in."""
        result: dict[str, Any] = {
            "state": self.state.value,
            "url": self.url,
            "last_event_id": self.last_event_id,
            "events": self.events,
            "bytes": self.bytes,
            "restarts": self.restarts,
            "failures": dict(self.failures),
            "breaker": self.breaker,
            "last_error": self.last_error,
            "last_failure": self.last_failure,
            "connected_since": self.connected_since,
            "last_event_at": self.last_event_at,
            "dedup_dropped": self.dedup_dropped,
            "reused_ids": self.reused_ids,
            "paused_on": self.paused_on,
            "paused_seconds": self.paused_seconds,
            "subscribers": {name: s.to_dict() for name, s in self.subscribers.items()},
        }
        result.update(self.extra)
        return result

    def with_extra(self, **fields: Any) -> StreamStatus:
        """A copy with more ``extra`` fields."""
        return dataclasses.replace(self, extra={**self.extra, **fields})


@dataclass(frozen=True, slots=True)
class SubscriberStatus(_DictAccess):
    """One subscriber (user actor, sink, listener or iterator).

    Attributes:
        name: its name.
        kind: actor, sink, listener, iterator.
        policy: its ``when_full`` policy.
        queue_depth: events buffered for it and not yet handled.
        delivered: events handed to it (for a sink: written).
        dropped: events it lost by its drop policy.
        removed: why it was removed (dead, disconnected), or None while subscribed.
        streams: the streams it takes (None: all).
        events: the event types it takes (None: all).
        extra: more fields (a sink's buffer type and bytes).
    """

    name: str
    kind: str = "actor"
    policy: str = "block"
    queue_depth: int = 0
    delivered: int = 0
    dropped: int = 0
    removed: str | None = None
    streams: tuple[str, ...] | None = None
    events: tuple[str, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def alive(self) -> bool:
        """False once removed."""
        return self.removed is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every field but ``name``, plus ``alive``; ``extra`` merged in."""
        result: dict[str, Any] = {
            "kind": self.kind,
            "policy": self.policy,
            "queue_depth": self.queue_depth,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "removed": self.removed,
            "alive": self.alive,
            "streams": list(self.streams) if self.streams is not None else None,
            "events": list(self.events) if self.events is not None else None,
        }
        result.update(self.extra)
        return result


@dataclass(frozen=True, slots=True)
class Status(_DictAccess):
    """Everything ``status()`` reports.

    Attributes:
        streams: per stream name, its ``StreamStatus``.
        subscribers: per subscriber name, its ``SubscriberStatus``.
        extra: process-wide fields added by the daemon (reloads, started_at).
    """

    streams: Mapping[str, StreamStatus] = field(default_factory=dict)
    subscribers: Mapping[str, SubscriberStatus] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"streams": {name: ...}, "subscribers": {name: ...}, **extra}``: ``/streams``."""
        result: dict[str, Any] = {
            "streams": {name: s.to_dict() for name, s in self.streams.items()},
            "subscribers": {name: s.to_dict() for name, s in self.subscribers.items()},
        }
        result.update(self.extra)
        return result

    def with_extra(self, **fields: Any) -> Status:
        """A copy with more process-wide fields."""
        return dataclasses.replace(self, extra={**self.extra, **fields})


def merge_stream_status(
    name: str,
    book: StreamStatus | None,
    entry: Mapping[str, Any],
    extra: Mapping[str, Any],
) -> StreamStatus:
    """One stream's status from the hub's part (``book``: events, dedup, subscribers) and
    the supervisor's plain ``entry`` (state, URL, counters, last error, pause state)."""
    base = book if book is not None else StreamStatus(name, StreamState.DISCONNECTED)
    last_id = base.last_event_id if base.last_event_id is not None else entry.get("last_event_id")
    return dataclasses.replace(
        base,
        state=StreamState(entry["state"]),
        url=entry.get("url", ""),
        last_event_id=last_id,
        bytes=entry.get("bytes", 0),
        restarts=entry.get("restarts", 0),
        failures=entry.get("failures", {}),
        breaker=entry.get("breaker", "closed"),
        last_error=entry.get("last_error"),
        last_failure=entry.get("last_failure"),
        connected_since=entry.get("connected_since"),
        paused_on=entry.get("paused_on"),
        paused_seconds=entry.get("paused_seconds", 0.0),
        extra=extra,
    )
