"""Messages between streamvisor's actors: frozen, slotted dataclasses.

Facts are in the past tense, commands are imperative. Messages about a connection carry
its generation, so late messages from a replaced connection are recognised and dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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


# --- stream -> subscriber actors (public) ---------------------------------------------
@dataclass(frozen=True, slots=True)
class EventBatch:
    """The events of one read of one stream, for a ``subscribe(..., batch=True)`` actor.

    Iterable and sized like the tuple it carries.

    Attributes:
        stream: the stream's name.
        events: the events, in order (deduplicated, filtered for this subscriber).
    """

    stream: str
    events: tuple[Event, ...]

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)


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


# --- sinks ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Drain:
    """Sink actor: take what its buffer holds and write it (``force``: ignore max_wait)."""

    force: bool = False


@dataclass(frozen=True, slots=True)
class SubscriberOverflow:
    """Told to a subscriber that was disconnected by the ``disconnect`` overflow policy."""

    name: str
    dropped: int
