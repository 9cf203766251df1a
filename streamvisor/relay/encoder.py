"""SSE wire encoding for the relay: an ``Event`` plus the relay's id in, frame bytes out.

Pure: no I/O. Every frame is built once and the same ``bytes`` object is written to every
client (measured in ``shared/research/relay.md``: per-client encoding is the cost to avoid).
The field rules follow the WHATWG HTML standard, section 9.2.6 "Interpreting an event
stream": lines end with LF, a blank line dispatches, a line starting with ``:`` is a comment,
and a ``data`` value is split into one ``data:`` line per line break (CRLF, CR or LF).
"""

from __future__ import annotations

import json
import re

from streamvisor.sse import Event

__all__ = ["GAP_EVENT", "encode_comment", "encode_event", "encode_gap", "encode_retry"]

GAP_EVENT = "streamvisor.gap"
"""Event type of the gap signal sent when a requested id cannot be resumed."""

_BREAKS = re.compile(r"\r\n|\r|\n")


def _lines(text: str) -> list[str]:
    # str.splitlines() also splits on \v, \f, U+2028 ... which SSE treats as text.
    if "\r" in text:
        return _BREAKS.split(text)
    return text.split("\n")


def encode_event(event: Event, relay_id: str) -> bytes:
    """One event as SSE bytes carrying ``relay_id`` as its ``id``.

    Args:
        event: the upstream event; its own ``id`` is replaced by ``relay_id`` (upstream ids
            may repeat or be missing, the relay's always resolve).
        relay_id: an id without CR, LF or NUL (see ``ring.format_id``).

    Returns:
        ``id: ...\\n`` [``event: ...\\n``] ``data: ...\\n`` (one per data line) ``\\n``,
        UTF-8. The type ``message`` is left out (it is the default).
    """
    kind = event.event
    head = f"id: {relay_id}\n"
    if kind and kind != "message":
        head += "event: " + "".join(_lines(kind)) + "\n"
    data = event.data
    if "\n" in data or "\r" in data:
        body = "".join(["data: " + line + "\n" for line in _lines(data)])
    else:
        body = "data: " + data + "\n"
    return (head + body + "\n").encode("utf-8")


def encode_retry(milliseconds: int) -> bytes:
    """The ``retry:`` field alone (the client's reconnection time), then a blank line."""
    return b"retry: %d\n\n" % max(0, int(milliseconds))


def encode_comment(text: str = "") -> bytes:
    """A comment block (a heartbeat): ignored by clients, keeps intermediaries awake."""
    return (":" + " ".join(_lines(text)) + "\n\n").encode("utf-8")


def encode_gap(
    relay_id: str, last_event_id: str, oldest_retained: str | None, reason: str
) -> bytes:
    """The ``streamvisor.gap`` event: replay from ``last_event_id`` is impossible.

    Args:
        relay_id: the id the gap event carries: the position just before the oldest retained
            event, so a client that drops right after the gap resumes with everything retained.
        last_event_id: the id the client asked to resume from.
        oldest_retained: id of the oldest event still held (None when none is held).
        reason: ``expired`` (older than the history) or ``unknown`` (never issued here).

    Returns:
        SSE bytes; the data is one line of JSON with those three keys.
    """
    data = json.dumps(
        {"last_event_id": last_event_id, "oldest_retained": oldest_retained, "reason": reason},
        separators=(",", ":"),
    )
    return f"id: {relay_id}\nevent: {GAP_EVENT}\ndata: {data}\n\n".encode()
