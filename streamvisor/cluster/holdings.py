"""``Holdings``: this instance's leases and per-stream counters, shared between the
coordinator's thread and the threads that write (sinks, the checkpoint writer).

It is the ``Fence`` the writers ask: a token for fenced writes, WRITE/WAIT/DROP for sinks
that Redis cannot fence. A ``threading.Condition`` guards the ``LeaseTable`` (the pure
arithmetic) and wakes waiting writers whenever a lease is confirmed or dropped. No I/O here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from streamvisor.cluster.lease import LeaseTable, LeaseTiming, WriteVerdict

__all__ = ["Holdings", "StreamStats"]


@dataclass(slots=True)
class StreamStats:
    """Counters of one stream on this instance."""

    failovers: int = 0  # acquired after the previous owner's lease expired
    handoffs: int = 0  # acquired after a clean release, or released cleanly by us
    lost: int = 0  # leases lost without a release (lapsed, taken, fenced)
    fenced_writes: int = 0  # writes Redis rejected because a newer token exists


class Holdings:
    """The leases held by member ``member`` (thread-safe; implements ``Fence``).

    Args:
        member: this process's member id.
        timing: lease timing.
        clock: monotonic seconds.
        wake: called after a write was fenced, so the coordinator stops the stream soon.
    """

    def __init__(
        self,
        member: str,
        timing: LeaseTiming,
        clock: Callable[[], float],
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.member = member
        self._clock = clock
        self._wake = wake
        self._cond = threading.Condition()
        self._table = LeaseTable(timing)
        self._fenced: set[str] = set()
        self._stats: dict[str, StreamStats] = {}

    # -- Fence protocol ----------------------------------------------------------------
    def token(self, stream: str) -> int | None:
        """The fencing token of our lease on ``stream``, or None."""
        with self._cond:
            return self._table.token(stream)

    def fenced(self, stream: str) -> None:
        """A write was rejected: drop the lease now; the coordinator stops the stream."""
        with self._cond:
            self._stat(stream).fenced_writes += 1
            if self._table.drop(stream) is not None:
                self._fenced.add(stream)
                self._stat(stream).lost += 1
            self._cond.notify_all()
        self._wake()

    def wait_writable(self, stream: str, timeout: float) -> WriteVerdict:
        """WRITE or DROP as soon as known; WAIT if ``timeout`` passed without an answer."""
        deadline = self._clock() + timeout
        with self._cond:
            while True:
                verdict = self._table.verdict(stream, self._clock())
                left = deadline - self._clock()
                if verdict is not WriteVerdict.WAIT or left <= 0:
                    return verdict
                self._cond.wait(min(left, 0.05))

    # -- the coordinator's side ----------------------------------------------------------
    def streams(self) -> list[str]:
        """The streams held now."""
        with self._cond:
            return self._table.streams()

    def next_deadline(self) -> float | None:
        """The earliest local deadline of a held lease."""
        with self._cond:
            return self._table.next_deadline()

    def grant(self, stream: str, token: int, sent_at: float, kind: str) -> None:
        """Record a lease won by an ``ACQUIRE`` sent at ``sent_at`` (kind: new, handoff or
        failover, from the previous holder's checkpoint record)."""
        with self._cond:
            self._table.grant(stream, token, sent_at)
            if kind == "failover":
                self._stat(stream).failovers += 1
            elif kind == "handoff":
                self._stat(stream).handoffs += 1
            self._cond.notify_all()

    def confirm(
        self, confirmed: Iterable[str], refused: Iterable[str], sent_at: float
    ) -> list[str]:
        """Apply a renewal sent at ``sent_at``; returns the refused streams that were still
        held (now dropped as lost)."""
        with self._cond:
            self._table.confirm(confirmed, sent_at)
            lost = [s for s in refused if self._table.drop(s) is not None]
            for stream in lost:
                self._stat(stream).lost += 1
            self._cond.notify_all()
        return lost

    def lapse(self, now: float) -> tuple[list[str], list[str]]:
        """Drop leases whose deadline passed; returns (lapsed, fenced since the last call):
        the streams the coordinator must stop."""
        with self._cond:
            lapsed = self._table.lapsed(now)
            for stream in lapsed:
                self._table.drop(stream)
                self._stat(stream).lost += 1
            fenced, self._fenced = sorted(self._fenced), set()
            if lapsed:
                self._cond.notify_all()
        return lapsed, fenced

    def release(self, streams: Iterable[str]) -> None:
        """Forget leases we are about to release (their streams are stopped already)."""
        with self._cond:
            for stream in streams:
                self._table.drop(stream)
            self._cond.notify_all()

    def released(self, stream: str) -> None:
        """Count a clean release of ``stream``."""
        with self._cond:
            self._stat(stream).handoffs += 1

    def status(self) -> dict[str, Any]:
        """Per stream held now or seen before: owner, token, lease expiry, counters."""
        now = self._clock()
        streams: dict[str, Any] = {}
        with self._cond:
            for stream in sorted(set(self._stats) | set(self._table.streams())):
                stats = self._stat(stream)
                remaining = self._table.remaining(stream, now)
                streams[stream] = {
                    "owner": self.member if remaining is not None else None,
                    "token": self._table.token(stream),
                    "lease_expires_in": None if remaining is None else max(0.0, remaining),
                    "failovers": stats.failovers,
                    "handoffs": stats.handoffs,
                    "lost": stats.lost,
                    "fenced_writes": stats.fenced_writes,
                }
        return streams

    def _stat(self, stream: str) -> StreamStats:
        stats = self._stats.get(stream)
        if stats is None:
            stats = self._stats[stream] = StreamStats()
        return stats
