"""Durable per-stream checkpoints: the last written Last-Event-ID and the dedup window.

``store`` holds the value, the ``CheckpointStore`` protocol and the in-memory store;
``sqlite`` the daemon's default store; ``redis`` the fenced store of cluster mode (it needs
the ``cluster`` extra and is imported only there).
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
