"""Bounded window of recently published event ids, for duplicate suppression. Pure.

A replayed event repeats an id with the same content and is dropped; an upstream that
restarted its counter reuses an id with new content, which is kept (and counted). The
content digest is a CRC-32 of the event type and data: stable across processes, so the
window can be checkpointed and seeded after a restart.
"""

from __future__ import annotations

import enum
import zlib
from collections import deque
from collections.abc import Iterable


class Verdict(enum.Enum):
    """What the window says about an event."""

    NEW = "new"
    DUPLICATE = "duplicate"
    REUSED = "reused"  # known id, different content: delivered


_type_crcs: dict[str, int] = {}
_crc32 = zlib.crc32


def digest_value(event: str, data: str) -> int:
    """The digest as an int: CRC-32 of the data, seeded with the CRC-32 of the type (the
    type's CRC is cached: a stream has few types)."""
    seed = _type_crcs.get(event)
    if seed is None:
        seed = _crc32(event.encode("utf-8", "surrogatepass"))
        if len(_type_crcs) < 4096:
            _type_crcs[event] = seed
    return _crc32(data.encode("utf-8", "surrogatepass"), seed)


def digest(event: str, data: str) -> str:
    """A short, process-independent digest of an event's type and data (8 hex digits)."""
    return format(digest_value(event, data), "08x")


def _parse(dig: str) -> int:
    try:
        return int(dig, 16)
    except ValueError:
        return -1  # a malformed seed never matches a real digest


class DedupWindow:
    """The last ``size`` distinct ids seen on one stream, with their content digests."""

    __slots__ = ("_digests", "_order", "_size")

    def __init__(self, size: int = 4096, seed: Iterable[tuple[str, str]] = ()) -> None:
        self._size = size
        self._digests: dict[str, tuple[int, int]] = {}
        self._order: deque[str] = deque()
        for event_id, dig in seed:
            self._remember(event_id, _parse(dig), 0)

    def check(self, event_id: str | None, event: str, data: str, seq: int = 0) -> Verdict:
        """Classify an event and remember it. Events without an id (or with an empty one,
        an id reset) are always NEW.

        Args:
            event_id: the event's ``id`` field (None: no id).
            event: the event type.
            data: the event data.
            seq: the caller's sequence number for the event, kept for ``recent(upto)``.
        """
        if not event_id or self._size == 0:  # "" is an id reset: the event has no id
            return Verdict.NEW
        dig = digest_value(event, data)
        known = self._digests.get(event_id)
        if known is None:
            self._remember(event_id, dig, seq)
            return Verdict.NEW
        if known[0] == dig:
            return Verdict.DUPLICATE
        self._digests[event_id] = (dig, seq)
        return Verdict.REUSED

    def known(self, event_id: str) -> int | None:
        """The digest (``digest_value``) remembered for ``event_id``, or None."""
        entry = self._digests.get(event_id)
        return entry[0] if entry is not None else None

    def remember(self, event_id: str, dig: int, seq: int = 0) -> None:
        """Remember ``event_id`` with content digest ``dig`` (``digest_value``) at sequence
        ``seq`` (a known id takes the new digest and keeps its place in the window)."""
        if self._size:
            self._remember(event_id, dig, seq)

    def _remember(self, event_id: str, dig: int, seq: int) -> None:
        if event_id in self._digests:
            self._digests[event_id] = (dig, seq)
            return
        self._digests[event_id] = (dig, seq)
        self._order.append(event_id)
        if len(self._order) > self._size:
            del self._digests[self._order.popleft()]

    def recent(self, upto: int | None = None) -> tuple[tuple[str, str], ...]:
        """The remembered (id, digest) pairs, oldest first (for checkpoints).

        Args:
            upto: only ids remembered with a sequence number at or below this one (a
                checkpoint must not seed ids that no sink has written yet).
        """
        digests = self._digests
        return tuple(
            (i, format(digests[i][0], "08x"))
            for i in self._order
            if upto is None or digests[i][1] <= upto
        )

    def __len__(self) -> int:
        return len(self._order)
