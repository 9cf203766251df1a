"""The coordinator's two interfaces. Pure: protocols only.

``Fence`` is what fenced writers (the Redis checkpoint store, the ``redis_streams`` sink, the
gate in front of other sinks) need from the lease holder; the coordinator implements it
(tests: a dict). ``StreamRunner`` is what the coordinator drives: the daemon's streams.
"""

from __future__ import annotations

from typing import Protocol

from streamvisor.checkpoint.store import Checkpoint
from streamvisor.cluster.lease import WriteVerdict

__all__ = ["Fence", "StreamRunner"]


class Fence(Protocol):
    """This instance's view of which streams it may write, and with which token.

    Attributes:
        member: this process's member id (``<instance>#<pid>-<nonce>``), written as the owner.
    """

    member: str

    def token(self, stream: str) -> int | None:
        """The fencing token of our lease on ``stream``, or None when we do not hold it."""
        ...

    def fenced(self, stream: str) -> None:
        """Redis rejected a write for ``stream``: another instance holds a newer token. Stop
        the stream at once (without releasing: the lease is not ours)."""
        ...

    def wait_writable(self, stream: str, timeout: float) -> WriteVerdict:
        """Wait (at most ``timeout`` seconds) until ``stream``'s events may be written (WRITE)
        or must be dropped because another instance owns it (DROP). WAIT means the timeout
        passed with the lease still unconfirmed; the caller must not write."""
        ...


class StreamRunner(Protocol):
    """The streams the coordinator starts and stops (called from its thread only)."""

    def start(self, stream: str, checkpoint: Checkpoint | None) -> None:
        """Start reading ``stream``, resuming from ``checkpoint`` (None: from the start)."""
        ...

    def stop(self, stream: str) -> Checkpoint | None:
        """Stop reading ``stream``; return the checkpoint to save before the lease goes."""
        ...
