"""What ``streamvisor top`` shows, computed from ``/streams`` snapshots. Pure: no I/O, no clock.

Rates come from successive snapshots (the ``events`` counter of each stream over the time
between two polls); a counter that went down (a daemon restart, a stream removed and added
again) starts over instead of showing a negative rate. The sparkline covers the last
``WINDOW`` seconds in fixed-width buckets, so its time axis does not depend on how regular
the polls were.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SPARK_CHARS",
    "WINDOW",
    "RateTracker",
    "Row",
    "Totals",
    "build_rows",
    "format_age",
    "format_rate",
    "matches",
    "sparkline",
    "totals",
]

WINDOW = 60.0
"""Seconds of history behind a sparkline."""

SPARK_CHARS = "▁▂▃▄▅▆▇█"
"""Eighth blocks, lowest to highest (a bucket without data is a space)."""


class RateTracker:
    """Events/s per stream from successive ``(time, events)`` samples.

    Args:
        window: seconds of history kept per stream.
    """

    def __init__(self, window: float = WINDOW) -> None:
        self._window = window
        self._last: dict[str, tuple[float, int]] = {}
        self._rates: dict[str, collections.deque[tuple[float, float]]] = {}

    def update(self, now: float, counts: Mapping[str, int]) -> None:
        """Record one snapshot taken at ``now`` (seconds) of each stream's event counter.

        Streams missing from ``counts`` are forgotten.
        """
        for name in self._last.keys() - counts.keys():
            del self._last[name]
            self._rates.pop(name, None)
        for name, events in counts.items():
            rates = self._rates.setdefault(name, collections.deque())
            last = self._last.get(name)
            self._last[name] = (now, events)
            if last is not None and now > last[0] and events >= last[1]:
                rates.append((now, (events - last[1]) / (now - last[0])))
            elif last is not None and events < last[1]:
                rates.clear()  # the counter started over
            while rates and rates[0][0] < now - self._window:
                rates.popleft()

    def rate(self, name: str) -> float:
        """The latest events/s of ``name`` (0.0 before two snapshots)."""
        rates = self._rates.get(name)
        return rates[-1][1] if rates else 0.0

    def history(self, name: str) -> list[tuple[float, float]]:
        """``(time, events/s)`` points of the last window, oldest first."""
        return list(self._rates.get(name, ()))


def sparkline(
    points: Sequence[tuple[float, float]], now: float, width: int, window: float = WINDOW
) -> str:
    """A ``width``-character sparkline of ``points`` over the ``window`` seconds before ``now``.

    Each character is one bucket of ``window / width`` seconds showing the highest rate in it,
    scaled to the highest bucket; a bucket without a point is a space.
    """
    if width <= 0:
        return ""
    buckets: list[float | None] = [None] * width
    span = window / width
    for when, value in points:
        age = now - when
        if age < 0 or age >= window:
            continue
        index = width - 1 - int(age / span)
        current = buckets[index]
        buckets[index] = value if current is None else max(current, value)
    peak = max((b for b in buckets if b is not None), default=0.0)
    levels = len(SPARK_CHARS)
    chars = []
    for bucket in buckets:
        if bucket is None:
            chars.append(" ")
        elif peak <= 0:
            chars.append(SPARK_CHARS[0])
        else:
            # Each character stands for one eighth of the peak: (0, 1/8] is the lowest.
            level = math.ceil(bucket / peak * levels) - 1
            chars.append(SPARK_CHARS[min(levels - 1, max(0, level))])
    return "".join(chars)


@dataclass(frozen=True, slots=True)
class Row:
    """One stream as ``top`` shows it.

    Attributes:
        name: the stream name.
        state: ``connected``, ``reconnecting``, ... (``unknown`` when missing).
        rate: events/s over the last poll interval.
        spark: the sparkline of the last minute.
        events: events published since the daemon started.
        age: seconds since the last event, or None (no event yet).
        last_event_id: the stream's Last-Event-ID, or None.
        restarts: reconnects so far.
        failure: the failure class of the last error (``retry``, ``permanent``, ...) or None.
        breaker: ``closed``, ``open`` or ``half_open`` (None when not reported).
        queue: the longest subscriber queue among the stream's subscribers (events).
        drops: events dropped for this stream by full subscriber queues.
        lag: seconds between the last event and the last checkpoint, or None.
        paused: the stream waits for a full subscriber (backpressure; not dead).
    """

    name: str
    state: str
    rate: float
    spark: str
    events: int
    age: float | None
    last_event_id: str | None
    restarts: int
    failure: str | None
    breaker: str | None
    queue: int
    drops: int
    lag: float | None
    paused: bool = False


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and math.isfinite(value) else 0


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def build_rows(
    streams: Mapping[str, Any], tracker: RateTracker, now: float, spark_width: int
) -> list[Row]:
    """Rows for every stream of a ``/streams`` body, sorted by name.

    Args:
        streams: the ``streams`` mapping of ``/streams``.
        tracker: rates (already updated with this snapshot).
        now: the time of the snapshot (epoch seconds, for ages).
        spark_width: characters per sparkline.
    """
    rows = []
    for name in sorted(streams):
        info = streams[name] if isinstance(streams[name], Mapping) else {}
        subscribers = info.get("subscribers")
        subs = [s for s in subscribers.values() if isinstance(s, Mapping)] if subscribers else []
        last_at = _float(info.get("last_event_at"))
        checkpoint_at = _float(info.get("checkpoint_at"))
        lag = None
        if last_at is not None and checkpoint_at is not None:
            lag = max(0.0, last_at - checkpoint_at)
        lid = info.get("last_event_id")
        rows.append(
            Row(
                name=name,
                state=str(info.get("state") or "unknown"),
                rate=tracker.rate(name),
                spark=sparkline(tracker.history(name), now, spark_width),
                events=_int(info.get("events")),
                age=max(0.0, now - last_at) if last_at is not None else None,
                last_event_id=None if lid is None else str(lid),
                restarts=_int(info.get("restarts")),
                failure=info.get("last_failure") or None,
                breaker=info.get("breaker") or None,
                queue=max((_int(s.get("queue_depth")) for s in subs), default=0),
                drops=sum(_int(s.get("dropped")) for s in subs),
                lag=lag,
                paused=bool(info.get("paused_on")),
            )
        )
    return rows


def matches(row: Row, text: str) -> bool:
    """The filter: every word of ``text`` is in the name, or is the state or failure class
    (case-insensitive); an empty filter matches every row."""
    name = row.name.lower()
    exact = {row.state.lower(), (row.failure or "").lower(), "paused" if row.paused else ""}
    return all(word in name or word in exact for word in text.lower().split())


@dataclass(frozen=True, slots=True)
class Totals:
    """The footer: how many streams in each state, and sums over all streams."""

    streams: int
    by_state: dict[str, int]
    rate: float
    events: int
    restarts: int
    drops: int


def totals(rows: Iterable[Row]) -> Totals:
    """Add up ``rows`` (all of them, not only the filtered or visible ones)."""
    by_state: dict[str, int] = {}
    count = events = restarts = drops = 0
    rate = 0.0
    for row in rows:
        count += 1
        by_state[row.state] = by_state.get(row.state, 0) + 1
        rate += row.rate
        events += row.events
        restarts += row.restarts
        drops += row.drops
    return Totals(count, dict(sorted(by_state.items())), rate, events, restarts, drops)


def format_age(seconds: float | None) -> str:
    """``"-"``, ``"12s"``, ``"5m"``, ``"3.2h"`` or ``"2.0d"``."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def format_rate(rate: float) -> str:
    """Events/s with one decimal below 10, none above, and k above 10,000."""
    if rate >= 10_000:
        return f"{rate / 1000:.0f}k"
    return f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"
