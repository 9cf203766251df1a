"""Protocol-handler hooks: adapt a provider's quirks without forking streamvisor.

Pure interfaces. Hooks run in streamvisor's threads (``classify``, ``on_connect`` and
``on_disconnect`` in the stream's reader thread; ``should_retry`` in the supervisor), so
they must be quick and must not block. An exception in a hook is treated as a crash of
that connection (restarted with backoff), never as a silent stop.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamvisor.sse import Event


class EventClass(enum.Enum):
    """What an event means to the stream."""

    DATA = "data"  # publish it (the default)
    SYSTEM = "system"  # provider housekeeping (pings, acks): not published
    RETRY = "retry"  # the provider asks the client to reconnect: reconnect now
    UNKNOWN = "unknown"  # published, like DATA


class ProtocolHandler:
    """Subclass and override what you need; the defaults change nothing."""

    def on_connect(self, stream: str) -> None:
        """Called when a connection's response was accepted."""

    def on_disconnect(self, stream: str, error: BaseException | None) -> None:
        """Called when a connection ended (not when streamvisor stopped it)."""

    def should_retry(self, error: BaseException | None) -> bool | None:
        """Override the retry decision: True retry, False fail now, None default rules."""
        return None

    def classify(self, event: Event) -> EventClass:
        """Classify an event; the default publishes everything."""
        return EventClass.DATA
