"""Durable per-stream checkpoints: the last written Last-Event-ID and the dedup window.

``store`` holds the value, the ``CheckpointStore`` protocol and the in-memory store (pure);
``sqlite`` the daemon's default store. The fenced Redis store of cluster mode implements the
same protocol in ``streamvisor.cluster.checkpoint_store`` (it is fenced by cluster's leases
and Lua scripts, so it lives with them).
"""

from streamvisor.checkpoint.sqlite import SQLiteCheckpointStore
from streamvisor.checkpoint.store import (
    Checkpoint,
    CheckpointError,
    CheckpointStore,
    MemoryCheckpointStore,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointStore",
    "MemoryCheckpointStore",
    "SQLiteCheckpointStore",
]
