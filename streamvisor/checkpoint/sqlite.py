"""``SQLiteCheckpointStore``: the daemon's checkpoints in one SQLite file (WAL).

Rules: a save is one transaction, all or nothing; a file that cannot be read raises
``CheckpointError`` naming the path, never a raw ``sqlite3`` traceback; no threads of its own.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Mapping

from streamvisor.checkpoint.store import Checkpoint, CheckpointError

__all__ = ["SCHEMA_VERSION", "SQLiteCheckpointStore"]

SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS checkpoints ("
    " stream TEXT PRIMARY KEY,"
    " last_event_id TEXT,"
    " recent TEXT NOT NULL DEFAULT '[]',"  # JSON: [[id, digest], ...], oldest first
    " updated_at REAL NOT NULL DEFAULT 0)",
)


class SQLiteCheckpointStore:
    """A ``CheckpointStore`` in one SQLite file (WAL journal, ``synchronous=NORMAL``).

    WAL keeps every committed save across a ``kill -9`` of the process (a power cut may lose
    the last few). The connection may be used from any one thread at a time; a lock makes
    overlapping calls wait rather than fail.

    Args:
        path: the database file; parent folders are created. ``":memory:"`` works for tests.

    Raises:
        CheckpointError: the file is not a database, is corrupted, unreadable, or comes
            from a newer streamvisor.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if self.path != ":memory:":
            folder = os.path.dirname(os.path.abspath(self.path))
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                raise CheckpointError(self.path, f"cannot create folder: {exc}") from exc
        try:
            conn = sqlite3.connect(
                self.path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise CheckpointError(self.path, f"cannot open: {exc}") from exc
        try:
            self._init_schema(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise CheckpointError(self.path, f"not a readable checkpoint database: {exc}") from exc
        except CheckpointError:
            conn.close()
            raise
        self._conn = conn

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        # The first statement reads the header: a non-database file fails here.
        conn.execute("PRAGMA journal_mode=WAL").fetchone()
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = row[0] if row else None
            if version is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif not isinstance(version, int) or version > SCHEMA_VERSION:
                raise CheckpointError(
                    self.path,
                    f"schema version {version!r} is newer than this streamvisor supports "
                    f"({SCHEMA_VERSION})",
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def load(self) -> dict[str, Checkpoint]:
        """Return every stored checkpoint by stream name.

        Raises:
            CheckpointError: the file cannot be read or a row is malformed.
        """
        with self._lock:
            conn = self._open_conn()
            try:
                rows = conn.execute(
                    "SELECT stream, last_event_id, recent, updated_at FROM checkpoints"
                ).fetchall()
            except sqlite3.Error as exc:
                raise CheckpointError(self.path, f"cannot read checkpoints: {exc}") from exc
        return {str(row[0]): self._decode(row) for row in rows}

    def save(self, checkpoints: Mapping[str, Checkpoint]) -> None:
        """Write the given streams' checkpoints in one transaction (all or nothing).

        Streams not in ``checkpoints`` keep what they had.

        Raises:
            CheckpointError: the write failed; nothing of this save was stored.
        """
        # Encode everything before the transaction so a bad value cannot leave half a save.
        rows = [
            (
                stream,
                cp.last_event_id,
                json.dumps([list(pair) for pair in cp.recent], separators=(",", ":")),
                float(cp.updated_at),
            )
            for stream, cp in checkpoints.items()
        ]
        with self._lock:
            conn = self._open_conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(
                        "INSERT OR REPLACE INTO checkpoints"
                        " (stream, last_event_id, recent, updated_at) VALUES (?, ?, ?, ?)",
                        rows,
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise CheckpointError(self.path, f"cannot write checkpoints: {exc}") from exc

    def close(self) -> None:
        """Close the database (checkpointing the WAL). Idempotent."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as exc:
                raise CheckpointError(self.path, f"cannot close: {exc}") from exc

    def _open_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise CheckpointError(self.path, "checkpoint store is closed")
        return self._conn

    def _decode(self, row: tuple[object, ...]) -> Checkpoint:
        stream, last_id, recent_text, updated_at = row
        try:
            raw = json.loads(str(recent_text))
            if not isinstance(raw, list) or not all(
                isinstance(pair, list) and len(pair) == 2 for pair in raw
            ):
                raise ValueError("expected a list of [id, digest] pairs")
            recent = tuple((str(pair[0]), str(pair[1])) for pair in raw)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise CheckpointError(
                self.path, f"stream {stream!r}: malformed dedup window: {exc}"
            ) from exc
        return Checkpoint(
            last_event_id=None if last_id is None else str(last_id),
            recent=recent,
            updated_at=float(updated_at) if isinstance(updated_at, int | float) else 0.0,
        )
