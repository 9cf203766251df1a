"""Helpers for the sink-buffer tests: put events by id, take and acknowledge everything, and
record what a buffer's drop policy dropped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamvisor.buffers import SinkBuffer
from streamvisor.policy.flow import Position
from tests.support.events import make_events
from tests.support.flow import FakeControl, pos

Drops = list[tuple[str, int]]
"""``(stream, count)`` per ``on_drop`` call, in order."""
MakeBuffer = Callable[..., SinkBuffer]


def record(drops: Drops) -> Callable[[str, int], None]:
    """An ``on_drop`` callback that appends to ``drops``."""
    return lambda stream, count: drops.append((stream, count))


def put(buffer: SinkBuffer, stream: str, ids: range | list[int], control: Any = None) -> bool:
    """Put events ``ids`` of ``stream`` (positions: seq == id)."""
    events = make_events(stream, ids)
    before = Position(ids[0] - 1, str(ids[0] - 1) if ids[0] > 1 else None)
    return buffer.put(stream, events, pos(events, ids[-1]), before, control or FakeControl())


def taken_ids(chunks: list[Any]) -> list[str | None]:
    return [ev.id for chunk in chunks for ev in chunk.events]


def drain(buffer: SinkBuffer) -> list[str | None]:
    """Take and ack everything; the ids in order."""
    ids: list[str | None] = []
    while chunks := buffer.take(1000):
        ids += taken_ids(chunks)
        buffer.ack(chunks)
    return ids
