"""The per-stream replay ring: encoded frames bounded by count and age, and relay ids.

Pure: no I/O, no clock of its own (``now`` is a parameter, in seconds since the epoch).

Relay ids have the form ``<epoch>-<seq>``: ``epoch`` names one history (base 36 of the
millisecond it was created; it survives restarts only with a persistent store) and ``seq``
counts the stream's events from 1. Because the position is inside the id, resolving an id
is arithmetic: O(1), no scan and no id-to-position dict to keep (Mercure caps its linear
scan at 10,000 entries; a dict would cost memory per retained event). An id from another
epoch, one that was never issued, or one older than the history gets a ``Gap`` instead of a
silent live start.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from streamvisor.policy.dedup import digest
from streamvisor.sse import Event

__all__ = [
    "Gap",
    "ReplayRing",
    "Resume",
    "event_key",
    "format_id",
    "new_epoch",
    "parse_id",
    "skip_stored",
]

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_epoch(now: float) -> str:
    """An epoch name for a history created at ``now`` (base 36 of its milliseconds)."""
    n = max(0, int(now * 1000))
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


def format_id(epoch: str, seq: int) -> str:
    """The relay id of event ``seq`` of history ``epoch``."""
    return f"{epoch}-{seq}"


def parse_id(text: str) -> tuple[str, int] | None:
    """``(epoch, seq)`` of a relay id, or None when ``text`` is not one."""
    epoch, sep, digits = text.rpartition("-")
    if not sep or not epoch or not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        return None
    return epoch, int(digits)


def event_key(event: Event) -> str | None:
    """What identifies an upstream event across a relay restart: its id and content digest
    (the dedup rule: a replay repeats both), or None when it has no id."""
    if event.id is None:
        return None
    return f"{event.id}\x00{digest(event.event, event.data)}"


@dataclass(frozen=True, slots=True)
class Gap:
    """Why a resume cannot continue exactly where the client left off.

    Attributes:
        last_event_id: the id the client sent.
        oldest_retained: the relay id of the oldest event still held, or None.
        reason: ``expired`` (the id is older than the history) or ``unknown`` (not issued by
            this history: another epoch, a future sequence, or not a relay id at all).
        resume_id: the id to give the gap event: just before the oldest retained event.
    """

    last_event_id: str
    oldest_retained: str | None
    reason: str
    resume_id: str


@dataclass(frozen=True, slots=True)
class Resume:
    """What a resuming client gets: an optional gap, then ``frames`` (oldest first)."""

    gap: Gap | None
    frames: list[bytes]


class ReplayRing:
    """The last ``max_events`` frames of one stream, none older than ``max_age`` seconds.

    Args:
        max_events: how many events to retain (>= 1).
        max_age: seconds an event is retained (> 0).
        epoch: the history's name (see ``new_epoch``).
        last_seq: the sequence of the last event issued before this ring existed (a
            restored history continues counting from there).
    """

    __slots__ = ("_cap", "_first", "_frames", "_last", "_times", "epoch", "max_age")

    def __init__(self, max_events: int, max_age: float, epoch: str, last_seq: int = 0) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be >= 1, got {max_events}")
        if not max_age > 0:
            raise ValueError(f"max_age must be > 0, got {max_age}")
        self._cap = max_events
        self.max_age = float(max_age)
        self.epoch = epoch
        self._frames: list[bytes | None] = [None] * max_events
        self._times = [0.0] * max_events
        self._last = last_seq
        self._first = last_seq + 1  # first > last: empty

    @property
    def last_seq(self) -> int:
        """Sequence of the newest event issued (0 before the first)."""
        return self._last

    @property
    def first_seq(self) -> int:
        """Sequence of the oldest event retained (``last_seq + 1`` when empty)."""
        return self._first

    def __len__(self) -> int:
        return self._last - self._first + 1

    def next_id(self) -> str:
        """The id the next ``append`` will assign."""
        return format_id(self.epoch, self._last + 1)

    def append(self, frame: bytes, now: float) -> int:
        """Retain ``frame`` (already carrying ``next_id()``); returns its sequence."""
        seq = self._last = self._last + 1
        i = seq % self._cap
        self._frames[i] = frame
        self._times[i] = now
        if seq - self._first >= self._cap:
            self._first = seq - self._cap + 1
        return seq

    def restore(self, rows: Iterable[tuple[int, float, bytes]]) -> None:
        """Load persisted ``(seq, at, frame)`` rows, oldest first.

        Rows at or below ``last_seq`` are ignored; after a hole in the sequence only the
        rows that follow it are kept (a ring holds a contiguous run).
        """
        for seq, at, frame in rows:
            if seq <= self._last:
                continue
            if seq != self._last + 1:  # a hole: only what follows it is contiguous
                self._frames = [None] * self._cap
                self._first, self._last = seq, seq - 1
            self.append(frame, at)

    def expire(self, now: float) -> int:
        """Drop events older than ``max_age``; returns how many were dropped."""
        horizon = now - self.max_age
        cap, times, frames = self._cap, self._times, self._frames
        dropped = 0
        while self._first <= self._last and times[self._first % cap] < horizon:
            frames[self._first % cap] = None
            self._first += 1
            dropped += 1
        return dropped

    def since(self, last_event_id: str, now: float) -> Resume:
        """Everything retained after ``last_event_id``, or a gap and everything retained.

        Args:
            last_event_id: what the client sent (header or query); any text.
            now: the current time (expired events are dropped first).

        Returns:
            ``Resume(None, frames)`` when the id is this history's and nothing after it was
            dropped (``frames`` may be empty: the client is up to date), else
            ``Resume(Gap(...), every retained frame)``.
        """
        self.expire(now)
        parsed = parse_id(last_event_id)
        first, last = self._first, self._last
        if parsed is not None and parsed[0] == self.epoch and first - 1 <= parsed[1] <= last:
            return Resume(None, self._slice(parsed[1] + 1))
        expired = parsed is not None and parsed[0] == self.epoch and parsed[1] < first - 1
        gap = Gap(
            last_event_id=last_event_id,
            oldest_retained=format_id(self.epoch, first) if first <= last else None,
            reason="expired" if expired else "unknown",
            resume_id=format_id(self.epoch, first - 1),
        )
        return Resume(gap, self._slice(first))

    def _slice(self, start: int) -> list[bytes]:
        cap, frames = self._cap, self._frames
        out: list[bytes] = []
        for seq in range(max(start, self._first), self._last + 1):
            frame = frames[seq % cap]
            assert frame is not None
            out.append(frame)
        return out


def skip_stored(
    stored: set[str], events: Sequence[Event]
) -> tuple[Sequence[Event], list[str | None]]:
    """Drop the upstream's replay of events restored from the history (after a relay
    restart the upstream may resume from an older checkpoint); the first event that is not
    one of them ends the replay. Returns the events to relay and their keys."""
    keys = [event_key(event) for event in events]
    if not stored:
        return events, keys
    kept: list[Event] = []
    kept_keys: list[str | None] = []
    for event, key in zip(events, keys, strict=True):
        if stored and key is not None and key in stored:
            stored.discard(key)
            continue
        stored.clear()
        kept.append(event)
        kept_keys.append(key)
    return kept, kept_keys
