"""The JSONL file sink, the append helper it shares with dead-letter files, and ``read_jsonl``.

Rule: one Event JSON object per line, UTF-8, appended; every ``write`` is flushed to the OS
before it returns (``fsync=True`` also forces it to the disk). A file torn by a ``kill -9``
in mid-line is repaired on open by cutting the torn fragment off (it was never acknowledged,
so it is delivered again), so the file stays valid JSONL.

Exactly once across ``kill -9``: at start the sink reads back what it holds after each
stream's checkpoint (``recover``); the daemon resumes the stream from the last id in the file
when this sink is the only one taking it, and in any case the sink skips events it already
holds (matched by id and content digest). Events without an id cannot be matched: for them
the file is at-least-once.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import BinaryIO

from streamvisor.policy.dedup import digest
from streamvisor.sinks.base import SinkError
from streamvisor.sinks.readback import Held, read_back
from streamvisor.sse import Event, to_jsonl

__all__ = ["FileSink", "open_jsonl_for_append", "read_jsonl"]

log = logging.getLogger(__name__)

LOCK_WAIT = 2.0
"""Seconds to wait for another writer's lock on the file before giving up."""
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL})


def open_jsonl_for_append(path: str) -> BinaryIO:
    """Open a JSONL file for appending, creating parent folders.

    If the file does not end with a newline (a line torn by a crash), the torn line is cut
    off so that new lines are valid JSONL. The file is locked (``flock``) while the handle is
    open: a second writer, in this process or another, is refused.

    Raises:
        OSError: the folder or file cannot be created or opened, or another writer holds it.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle = open(path, "a+b")  # noqa: SIM115 - the caller owns the handle
    try:
        _lock(handle)
        size = handle.seek(0, os.SEEK_END)
        if size:
            handle.seek(size - 1)
            if handle.read(1) != b"\n":
                keep = _last_line_end(handle, size)
                handle.truncate(keep)
                handle.seek(keep)
                log.warning(
                    "%s: the last line was torn (a crash?): removed its %d bytes; its event "
                    "is delivered again",
                    path,
                    size - keep,
                )
    except BaseException:
        handle.close()
        raise
    return handle


def _lock(handle: BinaryIO) -> None:
    """One writer at a time: the lock goes with the process, also on ``kill -9``. A
    predecessor that is still being torn down gets ``LOCK_WAIT`` seconds to let go."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise OSError(
                    errno.EWOULDBLOCK,
                    "in use by another writer (another streamvisor with this file sink?)",
                ) from None
            time.sleep(0.05)
        except OSError as exc:
            if exc.errno in _NO_LOCKS:  # a file system without flock: write unguarded
                log.warning(
                    "%s: cannot lock the file (%s); writing without a lock", handle.name, exc
                )
                return
            raise


def _last_line_end(handle: BinaryIO, size: int) -> int:
    """The offset just after the last newline before ``size`` (0 if none)."""
    pos = size
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        handle.seek(pos)
        block = handle.read(step)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return pos + cut + 1
    return 0


def read_jsonl(path: str) -> list[Event]:
    """Read the Events of a JSONL file, skipping blank, torn or otherwise invalid lines.

    Extra keys (such as a dead-letter line's ``"error"``) are ignored.
    """
    events: list[Event] = []
    with open(path, "rb") as handle:
        for raw in handle:
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                continue
            if isinstance(obj, dict):
                events.append(Event.from_dict(obj))
    return events


class FileSink:
    """Appends each event as one JSON line to a file.

    Args:
        path: the file; parent folders are created.
        flush_interval: seconds a small batch may wait to fill before it is written (this
            sink's ``max_wait``; 0, the default: each read's events are written at once,
            in one write, measured 1.5x the throughput of a 1 s wait at the end of bursts).
        fsync: also ``fsync`` after every write (always done on ``close``).
        name: the sink's name.
        max_batch: most events per ``write``.

    Raises:
        SinkError: the file cannot be opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        flush_interval: float = 0.0,
        fsync: bool = False,
        *,
        name: str = "file",
        max_batch: int = 1000,
    ) -> None:
        self.path = os.fspath(path)
        self.name = name
        self.max_batch = max_batch
        self.max_wait = float(flush_interval)
        self.fsync = fsync
        self.stats: dict[str, int] = {"delivered": 0, "errors": 0, "skipped": 0}
        self.recovered: dict[str, Held] = {}
        self._held: dict[tuple[str, str], str] = {}
        self._closed = False
        self._handle: BinaryIO | None = None
        self._reopen()

    def _reopen(self) -> BinaryIO:
        try:
            self._handle = open_jsonl_for_append(self.path)
        except OSError as exc:
            raise SinkError(f"sink {self.name}: cannot open {self.path}: {exc}") from exc
        return self._handle

    exactly_once = True
    """This sink can tell what it holds (``recover``): exactly once for events with ids."""

    def recover(self, checkpoints: Mapping[str, str | None]) -> dict[str, Held]:
        """Read back what the file holds after each stream's checkpoint; remember those
        events so that ``write`` skips them when they come again.

        Args:
            checkpoints: per stream, the checkpoint's Last-Event-ID (None: none yet).

        Returns:
            Per stream with lines in the file: its last Last-Event-ID and held ids.
        """
        self.recovered = read_back(self.path, checkpoints)
        self._held = {
            (stream, event_id): dig
            for stream, info in self.recovered.items()
            for event_id, dig in info.ids
        }
        return self.recovered

    def _skip_held(self, events: Sequence[Event]) -> Sequence[Event]:
        held = self._held
        kept: list[Event] = []
        for ev in events:
            if ev.id and held.get((ev.stream, ev.id)) == digest(ev.event, ev.data):
                del held[(ev.stream, ev.id)]
                self.stats["skipped"] += 1
                continue
            kept.append(ev)
        return kept

    def write(self, events: Sequence[Event]) -> None:
        """Append the events and flush them to the OS (and to disk when ``fsync``).

        Events the file already held at start (``recover``) are skipped.

        Raises:
            SinkError: the write failed (the file is reopened, and repaired, on the next one).
        """
        if self._closed:
            raise SinkError(f"sink {self.name}: write after close")
        if self._held:
            events = self._skip_held(events)
        if not events:
            return
        payload = to_jsonl(events)
        handle = self._handle or self._reopen()
        try:
            handle.write(payload)
            handle.flush()
            if self.fsync:
                os.fsync(handle.fileno())
        except OSError as exc:
            # A partial write may have left a torn line: reopening repairs it.
            self.stats["errors"] += 1
            self._drop_handle()
            raise SinkError(f"sink {self.name}: cannot write {self.path}: {exc}") from exc
        self.stats["delivered"] += len(events)

    def flush(self) -> None:
        """Flush to the OS (and to disk when ``fsync``)."""
        handle = self._handle
        if handle is None:
            return
        try:
            handle.flush()
            if self.fsync:
                os.fsync(handle.fileno())
        except OSError as exc:
            raise SinkError(f"sink {self.name}: cannot flush {self.path}: {exc}") from exc

    def close(self) -> None:
        """Flush, fsync and close the file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as exc:
            raise SinkError(f"sink {self.name}: cannot flush {self.path}: {exc}") from exc
        finally:
            handle.close()

    def _drop_handle(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except OSError:
                log.debug("%s: close after a failed write also failed", self.path)
