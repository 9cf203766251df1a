"""The JSONL file sink, the append helper it shares with dead-letter files, and ``read_jsonl``.

Rule: one Event JSON object per line, UTF-8, appended; every ``write`` is flushed to the OS
before it returns (``fsync=True`` also forces it to the disk). A file torn by a ``kill -9``
in mid-line is repaired on open by starting a new line: the torn fragment stays in the file
and readers (``read_jsonl``) skip it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import BinaryIO

from streamvisor.sinks.base import SinkError
from streamvisor.sse import Event

__all__ = ["FileSink", "open_jsonl_for_append", "read_jsonl"]

log = logging.getLogger(__name__)


def open_jsonl_for_append(path: str) -> BinaryIO:
    """Open a JSONL file for appending, creating parent folders.

    If the file does not end with a newline (a line torn by a crash), a newline is written
    first so that new lines are valid JSONL. The torn line itself is left as it is.

    Raises:
        OSError: the folder or file cannot be created or opened.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle = open(path, "a+b")  # noqa: SIM115 - the caller owns the handle
    try:
        size = handle.seek(0, os.SEEK_END)
        if size:
            handle.seek(size - 1)
            if handle.read(1) != b"\n":
                log.warning("%s: last line was torn (crash?); starting a new line", path)
                handle.write(b"\n")
                handle.flush()
    except BaseException:
        handle.close()
        raise
    return handle


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
        flush_interval: seconds the driver may hold events (this sink's ``max_wait``).
        fsync: also ``fsync`` after every write (always done on ``close``).
        name: the sink's name.
        max_batch: most events per ``write``.

    Raises:
        SinkError: the file cannot be opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        flush_interval: float = 1.0,
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
        self.stats: dict[str, int] = {"delivered": 0, "errors": 0}
        self._closed = False
        self._handle: BinaryIO | None = None
        self._reopen()

    def _reopen(self) -> BinaryIO:
        try:
            self._handle = open_jsonl_for_append(self.path)
        except OSError as exc:
            raise SinkError(f"sink {self.name}: cannot open {self.path}: {exc}") from exc
        return self._handle

    def write(self, events: Sequence[Event]) -> None:
        """Append the events and flush them to the OS (and to disk when ``fsync``).

        Raises:
            SinkError: the write failed (the file is reopened, and repaired, on the next one).
        """
        if self._closed:
            raise SinkError(f"sink {self.name}: write after close")
        if not events:
            return
        payload = "".join(event.to_json() + "\n" for event in events).encode("utf-8")
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
