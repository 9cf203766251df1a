"""Events for tests, numbered by id: SSE blocks as the wire carries them, and ``Event`` values.

Defaults are the suite's conventions: event ``i`` has id ``str(i)`` and data ``d{i}`` (wire
blocks and ``event``), ``price {i}`` (``trades``) or ``{i}:xxx...`` (``make_events``, sized).
"""

from __future__ import annotations

from collections.abc import Iterable

from streamvisor.sse import Event
from tests.support.sse_server import Send

RECEIVED_AT = 1_700_000_000.0
"""The ``received_at`` of built events (a fixed wall-clock second, 2023-11-14)."""


def sse_block(i: int | str, data: str | None = None, event: str | None = None) -> bytes:
    """Event ``i`` on the wire: ``id: i``, an ``event:`` line if given, one ``data:`` line
    (``d{i}`` by default) and the blank line that ends it."""
    kind = f"event: {event}\n" if event else ""
    return f"id: {i}\n{kind}data: {data if data is not None else f'd{i}'}\n\n".encode()


def send_events(*ids: int) -> Send:
    """A scripted-server step that sends events ``ids`` (``sse_block`` each) in one write."""
    return Send(b"".join(sse_block(i) for i in ids))


def event(
    stream: str,
    i: int,
    *,
    kind: str = "message",
    data: str | None = None,
    received_at: float = RECEIVED_AT,
) -> Event:
    """Event ``i`` of ``stream`` as a stream delivers it: id and Last-Event-ID ``str(i)``,
    data ``d{i}`` by default."""
    return Event(stream, str(i), kind, data if data is not None else f"d{i}", str(i), received_at)


def trades(ids: Iterable[int], stream: str = "ticker") -> list[Event]:
    """``trade`` events ``ids`` of ``stream`` with data ``price {i}``, received one second
    apart (what a sink writes)."""
    return [
        event(stream, i, kind="trade", data=f"price {i}", received_at=RECEIVED_AT + i) for i in ids
    ]


def make_events(
    stream: str, ids: Iterable[int], *, size: int = 8, kind: str = "message"
) -> list[Event]:
    """Events ``ids`` of ``stream`` with data of ``size`` characters each (``{i}:`` padded
    with ``x``), received at ``1000 + i`` (what flow-control tests count and weigh)."""
    return [
        Event(stream, str(i), kind, f"{i}:".ljust(size, "x"), str(i), received_at=1000.0 + i)
        for i in ids
    ]
