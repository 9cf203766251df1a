"""The checkpoint value, the ``CheckpointStore`` protocol and the in-memory store.

Stores share one small interface (``load``, ``save``, ``close``): ``MemoryCheckpointStore``
here (tests, embedded use), ``sqlite.SQLiteCheckpointStore`` for the daemon,
``redis.RedisCheckpointStore`` (fenced) in cluster mode. Rules: no threads and no clock
reads (the caller stamps ``updated_at``); a save is all or nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from streamvisor.errors import StreamvisorError

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointStore",
    "MemoryCheckpointStore",
]


class CheckpointError(StreamvisorError):
    """The checkpoint store cannot be opened, read or written.

    Attributes:
        path: the store's file path ("" for stores without one).
        reason: what went wrong.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"checkpoint store {path}: {reason}" if path else reason)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where one stream stands: the value saved per stream.

    Attributes:
        last_event_id: id of the last event every sink taking the stream has written, or None.
        recent: ``(event id, digest)`` pairs, oldest first: the dedup window to seed after a
            restart so that a replay is dropped.
        updated_at: wall clock (seconds since the epoch) when the caller made this checkpoint.
    """

    last_event_id: str | None
    recent: tuple[tuple[str, str], ...] = ()
    updated_at: float = 0.0


class CheckpointStore(Protocol):
    """Where checkpoints live. Called from one thread at a time."""

    def load(self) -> dict[str, Checkpoint]:
        """Return every stored checkpoint by stream name."""
        ...

    def save(self, checkpoints: Mapping[str, Checkpoint]) -> None:
        """Store these streams' checkpoints atomically (all or nothing).

        Streams not in ``checkpoints`` keep what they had.
        """
        ...

    def close(self) -> None:
        """Release the store. Idempotent."""
        ...


class MemoryCheckpointStore:
    """A ``CheckpointStore`` in a dict: nothing survives the process."""

    def __init__(self) -> None:
        self._data: dict[str, Checkpoint] = {}
        self._closed = False

    def load(self) -> dict[str, Checkpoint]:
        """Return a copy of every checkpoint by stream name."""
        self._check_open()
        return dict(self._data)

    def save(self, checkpoints: Mapping[str, Checkpoint]) -> None:
        """Replace the checkpoints of the given streams (all or nothing)."""
        self._check_open()
        staged = dict(checkpoints)  # iterate fully before touching the data
        self._data.update(staged)

    def close(self) -> None:
        """Mark the store closed. Idempotent."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise CheckpointError("", "checkpoint store is closed")
