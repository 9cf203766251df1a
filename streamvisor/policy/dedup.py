"""Bounded window of recently published event ids, for duplicate suppression. Pure.

A replayed event repeats an id with the same content and is dropped; an upstream that
restarted its counter reuses an id with new content, which is kept (and counted). The
content digest is a CRC-32 of the event type and data: stable across processes, so the
window can be checkpointed and seeded after a restart.
"""

from __future__ import annotations

import enum
import itertools
import zlib
from collections.abc import Iterable


class Verdict(enum.Enum):
    """What the window says about an event."""

    NEW = "new"
    DUPLICATE = "duplicate"
    REUSED = "reused"  # known id, different content: delivered


TYPE_SEEDS: dict[str, int] = {}
"""CRC-32 of each event type seen (a stream has few types), filled by ``type_seed``; read it
only to inline ``digest_value`` in a hot loop (``StreamBook.admit``)."""
_crc32 = zlib.crc32


def type_seed(event: str) -> int:
    """The CRC-32 of an event type, the seed of its events' digests (cached)."""
    seed = TYPE_SEEDS.get(event)
    if seed is None:
        seed = _crc32(event.encode("utf-8", "surrogatepass"))
        if len(TYPE_SEEDS) < 4096:
            TYPE_SEEDS[event] = seed
    return seed


def digest_value(event: str, data: str) -> int:
    """The digest as an int: CRC-32 of the data, seeded with the CRC-32 of the type (the
    type's CRC is cached: a stream has few types)."""
    return _crc32(data.encode("utf-8", "surrogatepass"), type_seed(event))


def digest(event: str, data: str) -> str:
    """A short, process-independent digest of an event's type and data (8 hex digits)."""
    return format(digest_value(event, data), "08x")


def _parse(dig: str) -> int:
    try:
        return int(dig, 16)
    except ValueError:
        return -1  # a malformed seed never matches a real digest


class DedupWindow:
    """The last ``size`` distinct ids seen on one stream, with their content digests.

    One dict, id -> (digest value, sequence): its insertion order is the window's order (a
    known id that is remembered again keeps its place), so the oldest id is the first key.
    Digests are kept as ints (``digest_value``) and formatted only for ``recent()``.
    """

    __slots__ = ("_digests", "_size")

    def __init__(self, size: int = 4096, seed: Iterable[tuple[str, str]] = ()) -> None:
        self._size = size
        self._digests: dict[str, tuple[int, int]] = {}
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

    @property
    def entries(self) -> dict[str, tuple[int, int]]:
        """Id -> (digest value, sequence): read-only use, for a caller's fast lookups."""
        return self._digests

    def remember(self, event_id: str, dig: int, seq: int = 0) -> None:
        """Remember ``event_id`` with content digest ``dig`` (``digest_value``) at sequence
        ``seq`` (a known id takes the new digest and keeps its place in the window)."""
        if self._size:
            self._remember(event_id, dig, seq)

    def add_new(self, ids: list[str], values: list[tuple[int, int]]) -> None:
        """Remember ``ids[i]`` with ``values[i]`` = (digest value, sequence), in order.

        The caller guarantees that no id is in the window and that the ids are distinct
        (``StreamBook.admit`` checked both); then this is ``remember`` for each, with one
        dict update and one eviction per call.
        """
        digests = self._digests
        if not self._size or not ids:
            return
        digests.update(zip(ids, values, strict=True))
        over = len(digests) - self._size
        if over > 0:  # the oldest ids are the first keys
            for event_id in list(itertools.islice(digests, over)):
                del digests[event_id]

    def _remember(self, event_id: str, dig: int, seq: int) -> None:
        digests = self._digests
        if event_id in digests:
            digests[event_id] = (dig, seq)
            return
        digests[event_id] = (dig, seq)
        if len(digests) > self._size:
            del digests[next(iter(digests))]

    def recent(self, upto: int | None = None) -> tuple[tuple[str, str], ...]:
        """The remembered (id, digest) pairs, oldest first (for checkpoints).

        Args:
            upto: only ids remembered with a sequence number at or below this one (a
                checkpoint must not seed ids that no sink has written yet).
        """
        return tuple(
            (i, format(dig, "08x"))
            for i, (dig, seq) in self._digests.items()
            if upto is None or seq <= upto
        )

    def __len__(self) -> int:
        return len(self._digests)
