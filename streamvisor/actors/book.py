"""``StreamBook``: one stream's dedup window, sequence numbers and committed position.

It outlives the stream's connection attempts (and a reload's remove/add), so replays after
any reconnect are recognised. The stream's reader thread is its only writer (one attempt
runs at a time); status and checkpoint readers take the lock. A batch is *admitted* (dedup,
provisional sequence numbers), handed to every subscriber, then *committed*: the committed
position is what checkpoints and resumes may use, so a batch abandoned half-way (a stop while
a subscriber was full) is never counted as delivered.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Iterable, Sequence

from streamvisor.policy.dedup import TYPE_SEEDS, DedupWindow, digest_value, type_seed
from streamvisor.policy.flow import START, Position
from streamvisor.sse import Event

__all__ = ["StreamBook"]

# admitted, not yet committed: ids, their (digest value, sequence), and the window they were
# all found new in (None: some were known, so commit() remembers them one by one)
_Admitted = tuple[list[str], list[tuple[int, int]], DedupWindow | None]
_NOTHING: _Admitted = ([], [], None)


class StreamBook:
    """Per-stream bookkeeping shared by the stream's reader thread and status readers.

    Args:
        size: dedup window size (ids remembered).
        seed: ``(id, digest)`` pairs to remember from the start (a checkpoint's window).
    """

    __slots__ = (
        "_counts",
        "_lock",
        "_pending",
        "_remember",
        "_size",
        "_window",
        "committed",
        "dedup_dropped",
        "events",
        "last_at",
        "reused",
    )

    def __init__(self, size: int = 4096, seed: Iterable[tuple[str, str]] = ()) -> None:
        self._lock = threading.Lock()
        self._window = DedupWindow(size, seed)
        self._size = size
        self._remember: _Admitted = _NOTHING
        self._counts = (0, 0)
        self._pending: Position = START  # last admitted, not yet committed
        self.committed: Position = START
        self.events = 0  # accepted (new) events, committed
        self.dedup_dropped = 0
        self.reused = 0
        self.last_at: float | None = None

    def reseed(self, size: int, seed: Iterable[tuple[str, str]]) -> None:
        """Replace the dedup window (a stream added again with a checkpoint)."""
        with self._lock:
            self._window = DedupWindow(size, seed)
            self._size = size

    def admit(self, events: Sequence[Event]) -> tuple[list[Event], int]:
        """Drop replayed duplicates; return the new events and the sequence number before
        them (event ``i`` of the result has sequence ``first + 1 + i``).

        Nothing is remembered until ``commit()``: a batch that is abandoned (stop) leaves the
        window as it was, so its events are not taken for replays when they come again.
        The common read (all ids new, none twice) takes one pass with the digest inlined;
        a read with a replay or a repeated id takes ``_admit_slowly``.
        """
        first = seq = self.committed.seq
        ids: list[str] = []
        values: list[tuple[int, int]] = []
        replay = False
        reused = 0
        dedup = self._size > 0
        crc32, seeds = zlib.crc32, TYPE_SEEDS.get
        with self._lock:
            window = self._window
            known = window.entries.get
            for ev in events:
                eid = ev[1]
                if eid and dedup:
                    seed = seeds(ev[2])
                    if seed is None:
                        seed = type_seed(ev[2])
                    dig = crc32(ev[3].encode("utf-8", "surrogatepass"), seed)  # digest_value
                    entry = known(eid)
                    if entry is not None:
                        if entry[0] == dig:
                            replay = True
                            break
                        reused += 1
                    seq += 1
                    ids.append(eid)
                    values.append((dig, seq))
                else:
                    seq += 1
        if replay or len(set(ids)) != len(ids):
            return self._admit_slowly(events, first)
        kept = list(events)
        self._counts = (0, reused)  # counted at commit: an abandoned batch comes again
        # all ids new to this window: commit() adds them in one go
        self._remember = (ids, values, window if not reused else None)
        self._pending = Position(seq, kept[-1].last_event_id) if kept else self.committed
        return kept, first

    def _admit_slowly(self, events: Sequence[Event], first: int) -> tuple[list[Event], int]:
        """``admit`` for a read with a replay or a repeated id: each event is compared with
        the window as it was before the read and with the events before it in the read."""
        seq = first
        known = self._window.known
        kept: list[Event] = []
        ids: list[str] = []
        values: list[tuple[int, int]] = []
        batch: dict[str, int] = {}
        dropped = reused = 0
        dedup = self._size > 0
        with self._lock:
            for ev in events:
                eid = ev[1]
                if eid and dedup:
                    dig = digest_value(ev[2], ev[3])
                    seen = batch.get(eid)
                    if seen is None:
                        seen = known(eid)
                    if seen == dig:
                        dropped += 1
                        continue
                    if seen is not None:
                        reused += 1
                    batch[eid] = dig
                    ids.append(eid)
                    values.append((dig, seq + 1))
                seq += 1
                kept.append(ev)
        self._counts = (dropped, reused)  # counted at commit: an abandoned batch comes again
        self._remember = (ids, values, None)
        self._pending = Position(seq, kept[-1].last_event_id) if kept else self.committed
        return kept, first

    def commit(self) -> None:
        """The admitted batch reached every subscriber: it counts as delivered, and its ids
        join the dedup window."""
        ids, values, fresh_in = self._remember
        if ids:
            with self._lock:
                window = self._window
                if fresh_in is window:  # still the window admit() found them all new in
                    window.add_new(ids, values)
                else:
                    remember = window.remember
                    for eid, (dig, seq) in zip(ids, values, strict=True):
                        remember(eid, dig, seq)
            self._remember = _NOTHING
        dropped, reused = self._counts
        if dropped or reused:
            self.dedup_dropped += dropped
            self.reused += reused
            self._counts = (0, 0)
        pending = self._pending
        if pending.seq > self.committed.seq:
            self.events += pending.seq - self.committed.seq
            self.committed = pending
            self.last_at = time.time()

    def abandon(self) -> None:
        """Forget the admitted batch (it did not reach every subscriber)."""
        self._remember = _NOTHING
        self._counts = (0, 0)
        self._pending = self.committed

    def recent(self, upto: int) -> tuple[tuple[str, str], ...]:
        """The dedup ``(id, digest)`` pairs of events at or before sequence ``upto``."""
        with self._lock:
            return self._window.recent(upto)
