"""``DiskBuffer``: a sink's buffer in a SQLite file that survives ``kill -9``.

Vector's disk buffer is the model: a sink whose receiver is slow or down for an hour neither
pauses its streams (until ``max_bytes``) nor loses events nor grows memory. One row per chunk
(one read's events for this sink, as JSON), in a WAL-mode SQLite file with
``synchronous=NORMAL``: every committed ``put`` survives a crash of the process (a power cut may
lose the last few; ``synchronous=FULL`` would fsync each one). A put is durable when it
returns, so the checkpoint may pass it at once; rows are deleted when the sink acknowledges
them, and what a killed process left is delivered after restart.

Why SQLite: it is in the standard library, its WAL commit costs tens of microseconds without
an fsync, and a torn write is rolled back by its journal (no framing of our own to repair).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence

import orjson

from streamvisor.buffers.base import Chunk, DropCallback
from streamvisor.buffers.memory import WAIT_SLICE
from streamvisor.checkpoint.store import CheckpointError
from streamvisor.policy.flow import BufferSettings, PauseControl, Position, WhenFull, plan_overflow
from streamvisor.sse import Event

__all__ = ["DiskBuffer"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS chunks ("
    " key INTEGER PRIMARY KEY AUTOINCREMENT,"
    " stream TEXT NOT NULL,"
    " count INTEGER NOT NULL,"
    " events TEXT NOT NULL)"  # JSON: [[id, event, data, last_event_id, received_at], ...]
)
_NO_POSITION = Position(0, None)


def _encode(events: Sequence[Event]) -> bytes:
    """The chunk's events as UTF-8 JSON (``max_bytes`` counts these bytes)."""
    rows = [ev[1:] for ev in events]
    try:
        return orjson.dumps(rows)
    except TypeError:  # a lone surrogate (only from code, never from the decoder)
        return json.dumps(rows, separators=(",", ":")).encode("ascii")


class _Row:
    __slots__ = ("count", "key", "nbytes", "stream")

    def __init__(self, key: int, stream: str, count: int, nbytes: int) -> None:
        self.key, self.stream, self.count, self.nbytes = key, stream, count, nbytes


class DiskBuffer:
    """A ``SinkBuffer`` in one SQLite file.

    Args:
        path: the file (parent folders are created).
        settings: bounds (``max_bytes`` counts the JSON stored) and policy.
        on_ready: called at the first ``put`` after ``arm()`` (the sink actor drains).
        on_drop: called with (stream, count) for events a drop policy removed.

    Raises:
        CheckpointError: the file cannot be opened or is not a buffer database.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        settings: BufferSettings,
        on_ready: Callable[[], None] | None = None,
        on_drop: DropCallback | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.settings = settings
        self.on_ready = on_ready
        self.on_drop = on_drop
        self._cond = threading.Condition(threading.Lock())
        self._index: deque[_Row] = deque()  # rows not yet taken, oldest first
        self._queued = 0
        self._held = 0
        self._held_bytes = 0
        self._armed = True
        self._closed = False
        self._conn = self._open()
        try:
            rows = self._conn.execute(
                "SELECT key, stream, count, length(events) FROM chunks ORDER BY key"
            ).fetchall()
        except sqlite3.Error as exc:  # damaged pages, or a table of another shape
            self._conn.close()
            raise CheckpointError(self.path, f"not a readable disk buffer: {exc}") from exc
        for key, stream, count, nbytes in rows:
            self._index.append(_Row(key, stream, count, nbytes))
            self._queued += count
            self._held_bytes += nbytes
        self._held = self._queued

    def _open(self) -> sqlite3.Connection:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise CheckpointError(self.path, f"cannot open disk buffer: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchone()
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            conn.close()
            raise CheckpointError(self.path, f"not a readable disk buffer: {exc}") from exc
        return conn

    # -- producers ---------------------------------------------------------------------
    def put(
        self,
        stream: str,
        events: Sequence[Event],
        last: Position,
        before: Position,
        control: PauseControl,
    ) -> bool:
        """Store one read's events durably; see ``SinkBuffer.put``."""
        n = len(events)
        if not n:
            return True
        payload = _encode(events)
        nbytes = len(payload)
        paused = False
        dropped: list[tuple[str, int]] = []
        when_full = self.settings.when_full
        if when_full is WhenFull.DROP_OLDEST:
            when_full = WhenFull.DROP_NEWEST  # rows on disk are not rewritten: documented
        try:
            with self._cond:
                while True:
                    if self._closed:
                        return False
                    plan = plan_overflow(self._room(nbytes, n), n, when_full, self._held)
                    if not plan.wait:
                        break
                    if control.abandoned():
                        return False
                    if not paused:
                        paused = True
                        control.pause("disk buffer")
                    self._cond.wait(WAIT_SLICE)
                if plan.accept < n:
                    dropped.append((stream, n - plan.accept))
                    if plan.accept == 0:
                        return True
                    events = events[: plan.accept]
                    payload = _encode(events)
                    nbytes = len(payload)
                try:
                    cur = self._conn.execute(
                        "INSERT INTO chunks (stream, count, events) VALUES (?, ?, ?)",
                        (stream, len(events), payload),
                    )
                except sqlite3.Error as exc:
                    raise CheckpointError(self.path, f"cannot write disk buffer: {exc}") from exc
                assert cur.lastrowid is not None
                self._index.append(_Row(cur.lastrowid, stream, len(events), nbytes))
                self._queued += len(events)
                self._held += len(events)
                self._held_bytes += nbytes
                wake = self._armed and self.on_ready is not None
                if wake:
                    self._armed = False
        finally:
            if paused:
                control.resume()
            if dropped and self.on_drop is not None:
                for name, count in dropped:
                    self.on_drop(name, count)
        if wake and self.on_ready is not None:
            self.on_ready()
        return True

    def _room(self, nbytes: int, n: int) -> int:
        room = (self.settings.max_events - self._held) if self.settings.max_events else n
        max_bytes = self.settings.max_bytes
        if max_bytes is not None and self._held_bytes + nbytes > max_bytes and self._held:
            room = min(room, 0)
        return room

    # -- the consumer ------------------------------------------------------------------
    def take(self, max_events: int) -> list[Chunk]:
        """Whole chunks, oldest first, up to ``max_events`` events (at least one chunk)."""
        with self._cond:
            index = self._index
            if not index:
                self._armed = True
                return []
            rows = [index.popleft()]
            count = rows[0].count
            while index and count + index[0].count <= max_events:
                row = index.popleft()
                rows.append(row)
                count += row.count
            self._queued -= count
            keys = [row.key for row in rows]
            try:
                marks = ",".join("?" * len(keys))
                found = dict(
                    self._conn.execute(
                        f"SELECT key, events FROM chunks WHERE key IN ({marks})", keys
                    ).fetchall()
                )
            except sqlite3.Error as exc:
                for row in reversed(rows):
                    index.appendleft(row)
                self._queued += count
                raise CheckpointError(self.path, f"cannot read disk buffer: {exc}") from exc
        chunks = []
        for row in rows:
            events = [Event(row.stream, *item) for item in orjson.loads(found[row.key])]
            chunks.append(Chunk(row.stream, events, _NO_POSITION, row.nbytes, row.key))
        return chunks

    def arm(self) -> None:
        """Call ``on_ready`` at the next ``put``."""
        with self._cond:
            self._armed = True

    def ack(self, chunks: Sequence[Chunk]) -> None:
        """Delete written chunks from the file and free their room.

        Raises:
            CheckpointError: the rows could not be deleted (they will be delivered again
                after a restart: at-least-once).
        """
        keys = [chunk.key for chunk in chunks]
        with self._cond:
            for chunk in chunks:
                self._held -= len(chunk.events)
                self._held_bytes -= chunk.nbytes
            self._cond.notify_all()
            try:
                self._conn.execute(
                    f"DELETE FROM chunks WHERE key IN ({','.join('?' * len(keys))})", keys
                )
            except sqlite3.Error as exc:
                raise CheckpointError(self.path, f"cannot update disk buffer: {exc}") from exc

    def release(self, chunks: Sequence[Chunk]) -> None:
        """Put chunks that could not be written back in front, to be taken again."""
        with self._cond:
            for chunk in reversed(chunks):
                self._index.appendleft(_Row(chunk.key, chunk.stream, len(chunk), chunk.nbytes))
                self._queued += len(chunk.events)

    # -- status ------------------------------------------------------------------------
    def holds_back(self, stream: str) -> Position | None:
        """Never: a put is durable when it returns, so the checkpoint may pass it."""
        return None

    def pending(self) -> int:
        """Events stored and not yet taken."""
        return self._queued

    def depth(self) -> tuple[int, int]:
        """(events, bytes of JSON) stored until acknowledged."""
        return self._held, self._held_bytes

    def close(self) -> None:
        """Close the file (what it holds stays for the next start). Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
