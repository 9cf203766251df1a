"""Which streams this instance should claim or release next: bounded-load rendezvous. Pure.

Every instance runs ``plan`` on the same survey (lease holders and live members read from
Redis in one call) and reaches the same quotas, so the cluster converges without a leader:

- **Quotas.** With M streams and L live instances each instance may own ``floor(M/L)`` or
  ``ceil(M/L)`` streams; the ``M mod L`` ceil slots go to the instances that already hold
  the most (ties by name). Nobody exceeds ``ceil(M/L)`` (the issue's cap), and once every
  stream is held the loads are within one of even.
- **Gentle moves.** An instance at or under its quota keeps every stream it has; one above
  it releases only the excess; both claims and releases are capped at ``max_moves`` per
  round. Only new, removed or surplus streams move (Kafka Connect's incremental cooperative
  rebalancing, KIP-415, is the model).
- **Stable placement.** Which streams to claim and which to give up are ranked by rendezvous
  (highest random weight) hashing of (instance name, stream), so an instance that restarts
  under the same name tends to get the same streams back, and instances racing for free
  streams prefer different ones.

Rule of this module: no I/O, no clock, no randomness beyond the hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["MEMBER_SEPARATOR", "Plan", "instance_name", "plan", "quotas", "weight"]

MEMBER_SEPARATOR = "#"
"""A member id is ``<instance name>#<pid>-<nonce>``: unique per process, named per instance."""


def instance_name(member: str) -> str:
    """The configured instance name inside a member id (the whole id if it has no ``#``)."""
    name, sep, _ = member.rpartition(MEMBER_SEPARATOR)
    return name if sep else member


def weight(stream: str, instance: str) -> int:
    """The rendezvous weight of ``stream`` on ``instance``: a stable 64-bit hash.

    Args:
        stream: the stream name.
        instance: the instance *name* (not the member id, so it survives restarts).
    """
    digest = hashlib.blake2b(
        instance.encode("utf-8", "surrogatepass")
        + b"\x00"
        + stream.encode("utf-8", "surrogatepass"),
        digest_size=8,
    ).digest()
    return int.from_bytes(digest, "big")


def quotas(loads: Mapping[str, int], total: int) -> dict[str, int]:
    """Each live member's quota: ``total // L``, plus one for the ``total % L`` members that
    hold the most streams now (ties broken by member id).

    Args:
        loads: streams held now, per live member (at least one member).
        total: the number of streams to place.

    Raises:
        ValueError: ``loads`` is empty.
    """
    if not loads:
        raise ValueError("quotas need at least one live member")
    base, extra = divmod(total, len(loads))
    order = sorted(loads, key=lambda member: (-loads[member], member))
    return {member: base + (1 if rank < extra else 0) for rank, member in enumerate(order)}


@dataclass(frozen=True, slots=True)
class Plan:
    """What one instance does this round.

    Attributes:
        release: streams to stop and hand back, lowest rendezvous weight first.
        claim: free streams to try, best first; trying stops once ``want`` were won.
        want: how many of ``claim`` to win at most.
        quota: this instance's quota in this round.
        live: how many members were counted live.
    """

    release: tuple[str, ...]
    claim: tuple[str, ...]
    want: int
    quota: int
    live: int


def plan(
    streams: Sequence[str],
    owners: Mapping[str, str | None],
    me: str,
    live: Collection[str],
    max_moves: int,
) -> Plan:
    """Decide this round's releases and claims for member ``me``.

    Args:
        streams: every stream the cluster runs (the config's enabled streams).
        owners: stream -> member id holding its lease, or None when free (streams missing
            from the mapping count as free).
        me: this process's member id; it counts as live even if the survey missed it.
        live: member ids whose heartbeat has not expired.
        max_moves: at most this many releases and at most this many claims this round.

    Returns:
        The plan; ``release`` and ``claim`` never both hold streams.
    """
    live_set = set(live) | {me}
    mine = [s for s in streams if owners.get(s) == me]
    loads = dict.fromkeys(live_set, 0)
    for stream in streams:
        holder = owners.get(stream)
        if holder is not None and holder in loads:
            loads[holder] += 1
    quota = quotas(loads, len(streams))[me]
    name = instance_name(me)
    moves = max(0, max_moves)
    if len(mine) > quota:
        surplus = sorted(mine, key=lambda s: (weight(s, name), s))
        return Plan(tuple(surplus[: min(len(mine) - quota, moves)]), (), 0, quota, len(loads))
    free = [s for s in streams if owners.get(s) is None]
    free.sort(key=lambda s: (-weight(s, name), s))
    want = min(quota - len(mine), moves)
    return Plan((), tuple(free), want, quota, len(loads))
