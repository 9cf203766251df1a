"""The ``Sink`` protocol every built-in subscriber implements, and ``SinkError``.

Rules: a sink is a plain object driven from one thread (its actor); it owns no threads and
batches nothing itself, since the driver batches up to ``max_batch`` events or ``max_wait``
seconds. When ``write`` returns, the events are durable in the sink's sense; otherwise it
raises ``SinkError``. Nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from streamvisor.errors import StreamvisorError
from streamvisor.sse import Event

__all__ = ["Sink", "SinkClosedError", "SinkError"]


class SinkError(StreamvisorError):
    """A sink could neither deliver a batch nor dead-letter it (message already redacted)."""


class SinkClosedError(SinkError):
    """The sink's destination is gone for good (the reader of a pipe left): retrying cannot
    help. The daemon stops gracefully when a sink raises it, as a Unix filter does."""


class Sink(Protocol):
    """A destination for events.

    Attributes:
        name: the sink's name from the config (used in logs and metrics).
        max_batch: the driver hands at most this many events to one ``write``.
        max_wait: seconds the driver may hold events before calling ``write``.
    """

    name: str
    max_batch: int
    max_wait: float

    def write(self, events: Sequence[Event]) -> None:
        """Write a batch; on return the events are durable in this sink's sense.

        Raises:
            SinkError: the batch could neither be delivered nor dead-lettered.
        """
        ...

    def flush(self) -> None:
        """Push anything buffered to its destination."""
        ...

    def close(self) -> None:
        """Flush and release resources. Idempotent."""
        ...
