"""The demo source's fault plan: which fault strikes a connection, when, and what it replays.

Pure: a seeded ``random.Random`` per channel and connection makes a run reproducible given
the same request sequence (``source`` serves what this plans).
"""

from __future__ import annotations

import dataclasses
import itertools
import random

__all__ = ["DEMO_CHAOS", "DEMO_FAULTS", "ChannelStats", "Chaos", "plan_connection"]

_FAULTS = ("clean_closes", "resets", "cut_events")  # ChannelStats fields, in Chaos order


@dataclasses.dataclass(frozen=True, slots=True)
class Chaos:
    """Per-connection fault probabilities; all zero (the default) is a well-behaved source.

    ``clean_close``, ``reset`` and ``cut_event`` exclude each other (their sum is at most 1)
    and strike after 1..``max_events_per_connection`` new events on the connection.
    ``replay`` re-sends 1..5 events at or before a resumed Last-Event-ID first.
    ``unavailable_once`` answers each channel's very first request with 503 + Retry-After.
    """

    clean_close: float = 0.0
    reset: float = 0.0
    cut_event: float = 0.0
    replay: float = 0.0
    unavailable_once: bool = False
    retry_after_seconds: int = 1
    max_events_per_connection: int = 40

    def __post_init__(self) -> None:
        odds = (self.clean_close, self.reset, self.cut_event, self.replay)
        if any(not 0.0 <= p <= 1.0 for p in odds) or sum(odds[:3]) > 1.0:
            raise ValueError(f"chaos probabilities must be in [0, 1] and sum to <= 1: {self}")
        if self.max_events_per_connection < 1 or self.retry_after_seconds < 0:
            raise ValueError(f"invalid chaos limits: {self}")


DEMO_CHAOS = Chaos(clean_close=0.1, reset=0.1, cut_event=0.1, replay=0.3, unavailable_once=True)
"""The faults of ``--chaos`` and of ``streamvisor demo``: about one connection in three breaks."""

DEMO_FAULTS = Chaos(
    clean_close=0.3,
    reset=0.3,
    cut_event=0.3,
    replay=0.7,
    unavailable_once=True,
    max_events_per_connection=25,
)


@dataclasses.dataclass(slots=True)
class ChannelStats:
    """Counters of one channel (``DemoSource.stats`` hands out copies)."""

    connections: int = 0
    unavailable: int = 0  # 503 answers
    clean_closes: int = 0
    resets: int = 0
    cut_events: int = 0
    replays: int = 0  # connections that began with duplicates
    events_sent: int = 0  # complete events written (or being written), duplicates included


def plan_connection(chaos: Chaos, rng: random.Random, last: int) -> tuple[str | None, int, int]:
    """The plan of one connection resuming after event ``last`` (0: from the start).

    Returns:
        (fault, after, first): the fault (a ``ChannelStats`` field name: clean_closes,
        resets, cut_events) or None; the number of new events before it strikes; the first
        event to send (at or before ``last`` when the connection replays duplicates).
    """
    roll, after = rng.random(), rng.randint(1, chaos.max_events_per_connection)
    edges = itertools.accumulate((chaos.clean_close, chaos.reset, chaos.cut_event))
    fault = next((kind for kind, edge in zip(_FAULTS, edges, strict=True) if roll < edge), None)
    replay = rng.random() < chaos.replay and last > 0
    first = max(1, last - rng.randint(1, 5) + 1) if replay else last + 1
    return fault, after, first
