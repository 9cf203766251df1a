"""Messages between streamvisor's actors: frozen, slotted dataclasses.

Facts are in the past tense, commands are imperative. Messages about a connection carry
its generation, so late messages from a replaced connection are recognised and dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streamvisor.sse import Event


# --- stream actor -> supervisor -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Connected:
    """Generation ``gen`` of ``stream`` had its response accepted."""

    stream: str
    gen: int


@dataclass(frozen=True, slots=True)
class Exited:
    """Generation ``gen`` of ``stream`` ended; everything the supervisor needs to go on."""

    stream: str
    gen: int
    error: BaseException | None
    connected: bool
    uptime: float
    events: int
    last_event_id: str | None
    retry_ms: int | None
    crashed: bool = False
    requested: bool = False
    stopping: bool = False


# --- stream actor -> hub --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Publish:
    """Events decoded from one read of ``stream`` (one message per read, not per event)."""

    stream: str
    events: Sequence[Event]


# --- supervisor <-> itself (timers) ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class RestartDue:
    """The backoff delay for ``stream`` after generation ``gen`` is over."""

    stream: str
    gen: int


@dataclass(frozen=True, slots=True)
class Sweep:
    """Periodic liveness check of the stream actors."""


# --- commands -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Reconnect:
    """Drop the stream's connection and reconnect at once (resuming)."""

    stream: str


@dataclass(frozen=True, slots=True)
class Close:
    """End the stream for good (state closed)."""

    stream: str


@dataclass(frozen=True, slots=True)
class AddStream:
    """Start supervising a stream (used at start and on reload)."""

    spec: Any  # StreamSpec
    last_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class RemoveStream:
    """Stop and forget a stream (reload)."""

    stream: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Ask: return the status of the receiver (used only from outside the actor system)."""


@dataclass(frozen=True, slots=True)
class StopStreams:
    """Ask: interrupt and stop every stream; answers the refs to wait for."""


# --- hub ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Subscribe:
    """Add a subscriber slot to the hub."""

    name: str
    ref: Any  # pykka.ActorRef
    streams: frozenset[str] | None
    events: frozenset[str] | None
    buffer: int
    overflow: str
    batch: bool  # True for built-in sinks: deliver lists of events


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Remove a subscriber slot."""

    name: str


@dataclass(frozen=True, slots=True)
class Drain:
    """Push buffered events towards subscribers (a timer tick)."""


@dataclass(frozen=True, slots=True)
class SeedDedup:
    """Seed a stream's dedup window, e.g. from a checkpoint."""

    stream: str
    recent: tuple[tuple[str, str], ...]
    size: int


# --- sinks ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Batch:
    """Several events for a built-in sink (internal hop: one message, many events).

    ``upto`` maps each stream in the batch to (hub sequence of its last event there, that
    event's last_event_id, how many of the batch's events are from that stream).
    """

    events: Sequence[Event]
    upto: dict[str, tuple[int, str | None, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Flush:
    """Write out buffered events now (a timer tick, or shutdown)."""


@dataclass(frozen=True, slots=True)
class Written:
    """A sink wrote the events of one or more batches (their merged ``upto``)."""

    sink: str
    upto: dict[str, tuple[int, str | None, int]]


@dataclass(frozen=True, slots=True)
class SubscriberOverflow:
    """Told to a subscriber that was disconnected by the ``disconnect`` overflow policy."""

    name: str
    dropped: int
