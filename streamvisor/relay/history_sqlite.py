"""Optional SQLite history for the relay: replay across relay restarts.

One file holds, per stream, the history's epoch, the last sequence issued and the last
``max_events`` encoded frames with their time. Reads happen once per stream when the relay
starts; writes go through one writer thread (batched, one transaction per batch), so the
relay's loop never waits on the disk. WAL with ``synchronous=NORMAL``: a power cut may lose
the last batch, never the file. A file that cannot be opened raises ``HistoryError``
naming the path; a failed write is logged (once per outage) and the relay goes on.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Sequence

from streamvisor.errors import StreamvisorError
from streamvisor.relay.ring import ReplayRing, new_epoch

__all__ = ["HistoryError", "SQLiteHistory"]

log = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS relay_streams ("
    " stream TEXT PRIMARY KEY, epoch TEXT NOT NULL, last_seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS relay_events ("
    " stream TEXT NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL, frame BLOB NOT NULL,"
    " key TEXT, PRIMARY KEY (stream, seq)) WITHOUT ROWID",
)
_STOP = object()
Row = tuple[int, float, bytes]


class HistoryError(StreamvisorError):
    """The history file cannot be opened or read."""


class SQLiteHistory:
    """Per-stream relay history in one SQLite file.

    Args:
        path: the database file (created with its folder when missing).
        max_events: frames kept per stream (older ones are deleted as new ones arrive).
        max_age: seconds; older frames are not loaded.
    """

    def __init__(self, path: str, max_events: int, max_age: float) -> None:
        self.path = path
        self._max_events = max_events
        self._max_age = max_age
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._failing = False
        try:
            folder = os.path.dirname(os.path.abspath(path))
            os.makedirs(folder, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"relay history {path}: {exc}") from None
        self._thread = threading.Thread(
            target=self._write_loop, name="streamvisor-relay-history", daemon=True
        )
        self._thread.start()

    def load(self, stream: str, now: float) -> tuple[str | None, int, list[Row], set[str]]:
        """``(epoch, last_seq, rows, keys)`` of ``stream``: rows not older than ``max_age``,
        oldest first, and their events' ``event_key``; ``(None, 0, [], set())`` for a
        stream never stored.

        Raises:
            HistoryError: the file cannot be read.
        """
        try:
            with self._lock:
                meta = self._db.execute(
                    "SELECT epoch, last_seq FROM relay_streams WHERE stream = ?", (stream,)
                ).fetchone()
                if meta is None:
                    return None, 0, [], set()
                rows = self._db.execute(
                    "SELECT seq, at, frame, key FROM relay_events WHERE stream = ? AND at >= ?"
                    " ORDER BY seq DESC LIMIT ?",
                    (stream, now - self._max_age, self._max_events),
                ).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"relay history {self.path}: {exc}") from None
        rows.reverse()
        keys = {str(k) for *_, k in rows if k is not None}
        restored = [(int(s), float(a), bytes(f)) for s, a, f, _ in rows]
        return str(meta[0]), int(meta[1]), restored, keys

    def open_ring(self, stream: str, now: float) -> tuple[ReplayRing, set[str]]:
        """The replay ring of ``stream`` (its stored history, or a new one, stored), and
        the ``event_key`` of each restored event: an upstream that resumes from an older
        checkpoint replays them, and the relay must not issue them again.

        Raises:
            HistoryError: the file cannot be read.
        """
        epoch, last_seq, rows, keys = self.load(stream, now)
        if epoch is None:
            epoch = new_epoch(now)
            self.create(stream, epoch)
        ring = ReplayRing(
            self._max_events, self._max_age, epoch, rows[0][0] - 1 if rows else last_seq
        )
        ring.restore(rows)
        return ring, keys

    def create(self, stream: str, epoch: str) -> None:
        """Start a new history for ``stream`` (its old rows, if any, are dropped)."""
        self._queue.put(("create", stream, epoch))

    def append(
        self,
        stream: str,
        first_seq: int,
        at: float,
        frames: Sequence[bytes],
        keys: Sequence[str | None],
    ) -> None:
        """Store ``frames`` (sequences ``first_seq``...) and their events' keys in the
        background. Thread-safe."""
        self._queue.put(("append", stream, first_seq, at, frames, keys))

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, stop the writer and close the file. Idempotent."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)
        with self._lock:
            self._db.close()

    # -- writer thread -----------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = _STOP in batch
            self._write([item for item in batch if item is not _STOP])
            if stop:
                return

    def _write(self, batch: list[object]) -> None:
        if not batch:
            return
        last: dict[str, int] = {}
        with self._lock:
            try:
                self._write_batch(batch, last)
            except sqlite3.Error as exc:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if not self._failing:
                    log.error("relay history %s: write failed: %s", self.path, exc)
                self._failing = True
                return
        if self._failing:
            log.info("relay history %s: writes work again", self.path)
            self._failing = False

    def _write_batch(self, batch: list[object], last: dict[str, int]) -> None:
        db = self._db
        db.execute("BEGIN")
        for item in batch:
            assert isinstance(item, tuple)
            if item[0] == "create":
                _, stream, epoch = item
                db.execute("DELETE FROM relay_events WHERE stream = ?", (stream,))
                db.execute("INSERT OR REPLACE INTO relay_streams VALUES (?, ?, 0)", (stream, epoch))
                continue
            _, stream, first, at, frames, keys = item
            rows = zip(range(first, first + len(frames)), frames, keys, strict=True)
            db.executemany(
                "INSERT OR REPLACE INTO relay_events VALUES (?, ?, ?, ?, ?)",
                [(stream, seq, at, frame, key) for seq, frame, key in rows],
            )
            last[stream] = first + len(frames) - 1
        for stream, seq in last.items():
            db.execute("UPDATE relay_streams SET last_seq = ? WHERE stream = ?", (seq, stream))
            db.execute(
                "DELETE FROM relay_events WHERE stream = ? AND seq <= ?",
                (stream, seq - self._max_events),
            )
        db.execute("COMMIT")
