"""Lease arithmetic: when a held lease may be written under, when it is due, when it lapsed. Pure.

A lease's TTL runs on the Redis server's clock from the moment Redis *received* the ``SET``
or ``PEXPIRE``. The local deadline is ``sent_at + ttl`` where ``sent_at`` is the monotonic
clock read *before* the request was sent, so the local deadline can only come before the
server's expiry (given clocks that tick at the same rate; ``margin`` absorbs drift). The
monotonic clock keeps running through ``SIGSTOP``, so a resumed process sees at once that its
leases may have lapsed, before its lease thread gets to run (research note §3 and §4.5;
Kleppmann, "How to do distributed locking", 2016). A renewal whose answer never came leaves
the deadline of the last *confirmed* one in place.

``LeaseTable`` holds this instance's leases. It is a plain value holder with the clock as a
parameter: the coordinator owns it and guards it with its lock.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Lease", "LeaseTable", "LeaseTiming", "WriteVerdict"]


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    """The timing rules of one cluster.

    Attributes:
        ttl: lease and heartbeat lifetime on the server, seconds.
        margin: writes stop this long before the local deadline (clock drift and the time
            a write takes to reach Redis), seconds.
    """

    ttl: float
    margin: float

    @classmethod
    def for_ttl(cls, ttl: float) -> LeaseTiming:
        """The default timing for ``ttl``: a margin of a tenth of it (research note §3)."""
        if not ttl > 0:
            raise ValueError(f"lease ttl must be > 0, got {ttl!r}")
        return cls(ttl=ttl, margin=ttl / 10)

    @property
    def renew_every(self) -> float:
        """Seconds between renewals: a third of the TTL, so two may fail before a lapse."""
        return self.ttl / 3

    @property
    def ttl_ms(self) -> int:
        """The TTL in whole milliseconds, as ``PX`` and ``PEXPIRE`` take it."""
        return max(1, round(self.ttl * 1000))

    def deadline(self, sent_at: float) -> float:
        """The local deadline of a lease granted or renewed by a request sent at ``sent_at``."""
        return sent_at + self.ttl


@dataclass(frozen=True, slots=True)
class Lease:
    """One held lease.

    Attributes:
        token: the fencing token (``INCR`` of the stream's fence key when it was acquired).
        deadline: monotonic time after which the lease may have expired on the server.
    """

    token: int
    deadline: float


class WriteVerdict(enum.Enum):
    """May a sink write a stream's events now?"""

    WRITE = "write"  # the lease is held with time to spare
    WAIT = "wait"  # held, but too close to its deadline: wait for the next renewal
    DROP = "drop"  # not held: another instance owns the stream (or will), drop the events


class LeaseTable:
    """This instance's leases by stream. Not thread-safe; every method is O(1) but ``lapsed``.

    Args:
        timing: the cluster's timing rules.
    """

    def __init__(self, timing: LeaseTiming) -> None:
        self.timing = timing
        self._leases: dict[str, Lease] = {}

    def __contains__(self, stream: object) -> bool:
        return stream in self._leases

    def __len__(self) -> int:
        return len(self._leases)

    def streams(self) -> list[str]:
        """The streams held, in grant order."""
        return list(self._leases)

    def get(self, stream: str) -> Lease | None:
        """The lease on ``stream``, or None."""
        return self._leases.get(stream)

    def token(self, stream: str) -> int | None:
        """The fencing token of the lease on ``stream``, or None when not held."""
        lease = self._leases.get(stream)
        return lease.token if lease is not None else None

    def grant(self, stream: str, token: int, sent_at: float) -> Lease:
        """Record a lease won by a request sent at ``sent_at`` (monotonic seconds)."""
        lease = self._leases[stream] = Lease(token, self.timing.deadline(sent_at))
        return lease

    def confirm(self, streams: Iterable[str], sent_at: float) -> None:
        """Extend the leases a renewal sent at ``sent_at`` confirmed (unknown streams are
        ignored: they were dropped while the renewal was in flight)."""
        deadline = self.timing.deadline(sent_at)
        for stream in streams:
            lease = self._leases.get(stream)
            if lease is not None and deadline > lease.deadline:
                self._leases[stream] = Lease(lease.token, deadline)

    def drop(self, stream: str) -> Lease | None:
        """Forget the lease on ``stream``; returns it (None when it was not held)."""
        return self._leases.pop(stream, None)

    def lapsed(self, now: float) -> list[str]:
        """Streams whose deadline has passed at ``now``: their leases may be gone."""
        return [s for s, lease in self._leases.items() if now >= lease.deadline]

    def next_deadline(self) -> float | None:
        """The earliest deadline of any held lease, or None when none is held."""
        return min((lease.deadline for lease in self._leases.values()), default=None)

    def verdict(self, stream: str, now: float) -> WriteVerdict:
        """Whether a sink may write ``stream``'s events at ``now``.

        WRITE while ``now < deadline - margin``; WAIT after that while the lease is still
        recorded (the coordinator either confirms a renewal or drops it at the deadline);
        DROP once it is not held.
        """
        lease = self._leases.get(stream)
        if lease is None:
            return WriteVerdict.DROP
        if now < lease.deadline - self.timing.margin:
            return WriteVerdict.WRITE
        return WriteVerdict.WAIT

    def remaining(self, stream: str, now: float) -> float | None:
        """Seconds until the local deadline of ``stream``'s lease (None when not held)."""
        lease = self._leases.get(stream)
        return None if lease is None else lease.deadline - now
