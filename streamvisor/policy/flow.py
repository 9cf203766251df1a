"""Flow control, as values and pure decisions: buffer settings, overflow plans, write progress.

The model is Vector's buffers (``when_full: block`` by default): every subscriber and sink
has a bounded buffer; when it is full the streams feeding it stop reading (TCP then slows the
upstream), unless the user chose a drop policy for a live-only view. No I/O, no threads and
no clock here: the caller passes ``now``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = [
    "BufferSettings",
    "DropLog",
    "PauseControl",
    "Position",
    "WhenFull",
    "WriteProgress",
    "plan_overflow",
]


class WhenFull(enum.Enum):
    """What a full buffer does with new events (Vector's ``when_full``, plus ``disconnect``).

    ``BLOCK`` (the default) pauses every stream feeding the buffer until there is room, so
    nothing is lost. The three others lose events and exist for live-only views: every drop
    is counted per subscriber and stream and logged.
    """

    BLOCK = "block"
    DROP_NEWEST = "drop_newest"
    DROP_OLDEST = "drop_oldest"
    DISCONNECT = "disconnect"  # remove the subscriber (it is told ``SubscriberOverflow``)

    @classmethod
    def parse(cls, value: str | WhenFull) -> WhenFull:
        """``WhenFull`` from its config word.

        Raises:
            ValueError: not one of block, drop_newest, drop_oldest, disconnect.
        """
        if isinstance(value, WhenFull):
            return value
        try:
            return cls(value)
        except ValueError:
            words = ", ".join(w.value for w in cls)
            raise ValueError(f"when_full must be one of {words}, got {value!r}") from None

    @property
    def drops(self) -> bool:
        """True for the policies that lose events."""
        return self is not WhenFull.BLOCK


WHEN_FULL_WORDS = tuple(w.value for w in WhenFull)

DEFAULT_MAX_EVENTS = 10_000
"""Memory buffer size in events (Vector's memory buffer defaults to 500; ours holds one
read's batch of 256 B events many times over)."""

DEFAULT_DISK_MAX_BYTES = 256 << 20
"""Disk buffer size (Vector's disk buffer minimum, 256 MiB)."""


@dataclass(frozen=True, slots=True)
class BufferSettings:
    """One subscriber's or sink's buffer (config: ``buffer: {type, max_events, max_bytes,
    when_full, path}``; ``buffer: N`` and ``overflow: POLICY`` are shorthand).

    Attributes:
        type: ``"memory"`` or ``"disk"`` (a SQLite file that survives ``kill -9``).
        max_events: most events held (memory); ``None`` for no count bound (disk default).
        max_bytes: most bytes held (event data plus id and type; approximate for memory);
            ``None`` for no byte bound (memory default).
        when_full: what happens when a bound is reached.
        path: the disk buffer's file (None: next to the checkpoint, chosen by the daemon).

    Raises:
        ValueError: a bound is not positive, an unknown type, or a disk buffer with neither
            bound.
    """

    type: str = "memory"
    max_events: int | None = DEFAULT_MAX_EVENTS
    max_bytes: int | None = None
    when_full: WhenFull = WhenFull.BLOCK
    path: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ("memory", "disk"):
            raise ValueError(f"buffer type must be memory or disk, got {self.type!r}")
        for name in ("max_events", "max_bytes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"buffer {name} must be >= 1, got {value}")
        if self.max_events is None and self.max_bytes is None:
            # a disk buffer too: the issue bounds it by max_bytes, never by the disk's size
            raise ValueError(f"a {self.type} buffer needs max_events or max_bytes")
        if not isinstance(self.when_full, WhenFull):
            object.__setattr__(self, "when_full", WhenFull.parse(self.when_full))

    @classmethod
    def disk(cls, max_bytes: int = DEFAULT_DISK_MAX_BYTES, **kwargs: object) -> BufferSettings:
        """A disk buffer bounded by ``max_bytes`` (no event-count bound by default)."""
        return cls(type="disk", max_events=None, max_bytes=max_bytes, **kwargs)  # type: ignore[arg-type]


class OverflowPlan(NamedTuple):
    """How to fit ``n`` new events into a buffer with ``room`` free places."""

    accept: int  # new events to add (the first ``accept`` of them)
    evict: int  # oldest buffered events to remove first (drop_oldest)
    wait: bool  # block: wait for room, then plan again
    disconnect: bool


def plan_overflow(room: int, n: int, when_full: WhenFull, held: int) -> OverflowPlan:
    """Decide what a buffer does with ``n`` new events (one read's batch, for one subscriber).

    Args:
        room: free places (may be negative when a byte bound was passed).
        n: new events offered.
        when_full: the buffer's policy.
        held: events the buffer holds now (what drop_oldest can evict).

    ``BLOCK`` takes a batch whole or waits: a batch is one read, so waiting for room for all
    of it keeps the batch in one piece and wakes the waiter once, not once per event. An
    empty buffer always takes a whole batch (a read can be larger than the buffer).
    """
    if n <= room or (held == 0 and when_full is WhenFull.BLOCK):
        return OverflowPlan(n, 0, False, False)
    if when_full is WhenFull.BLOCK:
        return OverflowPlan(0, 0, True, False)
    if when_full is WhenFull.DROP_NEWEST:
        return OverflowPlan(max(room, 0), 0, False, False)
    if when_full is WhenFull.DROP_OLDEST:
        evict = min(held, n - max(room, 0))
        return OverflowPlan(min(n, max(room, 0) + evict), evict, False, False)
    return OverflowPlan(0, 0, False, True)


class Position(NamedTuple):
    """How far a stream got: the hub sequence number of an event and its Last-Event-ID.

    ``seq`` counts the stream's accepted events in this process (0: none yet); it orders
    positions, which event ids cannot (they are opaque strings).
    """

    seq: int
    last_event_id: str | None


START = Position(0, None)


class WriteProgress:
    """Per stream: events handed to one sink and not yet written, and how far it wrote.

    A checkpoint may move to a stream's newest event only when no sink holds an unwritten
    event of it; otherwise it stays at the lowest ``floor`` of the sinks that do (DESIGN.md,
    "a checkpoint never passes an event a non-dropping sink has not written"). Not
    thread-safe: its owner locks.
    """

    __slots__ = ("_floor", "_outstanding")

    def __init__(self) -> None:
        self._outstanding: dict[str, int] = {}
        self._floor: dict[str, Position] = {}

    def handed(self, stream: str, count: int, before: Position) -> None:
        """``count`` events of ``stream`` were handed over; ``before`` is the stream's
        position just before them (the floor while they are unwritten)."""
        if count <= 0:
            return
        outstanding = self._outstanding.get(stream, 0)
        if outstanding == 0:
            self._floor[stream] = before
        self._outstanding[stream] = outstanding + count

    def written(self, stream: str, count: int, upto: Position) -> None:
        """``count`` events of ``stream`` were written (or dropped), the last at ``upto``."""
        left = self._outstanding.get(stream, 0) - count
        self._outstanding[stream] = max(left, 0)
        self._floor[stream] = upto

    def discount(self, stream: str, count: int) -> None:
        """``count`` events of ``stream`` were dropped from the middle of what is handed over
        (drop_oldest): they are done, but the floor stays where it is."""
        self._outstanding[stream] = max(self._outstanding.get(stream, 0) - count, 0)

    def holds_back(self, stream: str) -> Position | None:
        """The position this sink holds ``stream`` at, or None if it has written all."""
        if self._outstanding.get(stream, 0) > 0:
            return self._floor.get(stream, START)
        return None

    def outstanding(self, stream: str) -> int:
        """Events of ``stream`` handed over and not yet written."""
        return self._outstanding.get(stream, 0)


class DropLog:
    """Rate limit for drop warnings: at most one line per ``interval`` seconds, carrying
    the count since the last line (the first drop is always logged)."""

    __slots__ = ("_interval", "_last", "_pending")

    def __init__(self, interval: float = 10.0) -> None:
        self._interval = interval
        self._last: float | None = None
        self._pending = 0

    def add(self, count: int, now: float) -> int:
        """Record ``count`` drops; return how many to report now (0: stay quiet)."""
        self._pending += count
        if self._last is not None and now - self._last < self._interval:
            return 0
        self._last = now
        pending, self._pending = self._pending, 0
        return pending


class PauseControl(Protocol):
    """What a waiting buffer needs from the stream that waits (``StreamControl``)."""

    def abandoned(self) -> bool:
        """True when the stream is being stopped: stop waiting and give the batch up."""
        ...

    def pause(self, outlet: str) -> None:
        """The stream stops reading: ``outlet`` is full."""
        ...

    def resume(self) -> None:
        """The stream reads again."""
        ...
