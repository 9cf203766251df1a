"""The stdout sink: one Event JSON per line on standard output, flushed per write.

Rule: stdout carries data only (logs go to stderr). A closed pipe (``| head``) becomes one
``SinkError`` with a clear message, never a traceback, and later writes fail the same way.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from streamvisor.sinks.base import SinkClosedError, SinkError
from streamvisor.sse import Event, to_jsonl

__all__ = ["StdoutSink"]

log = logging.getLogger(__name__)


class StdoutSink:
    """Writes each event as one JSON line to a text stream.

    Args:
        stream: where to write; ``sys.stdout`` as it is when the sink is made, if None.
        name: the sink's name.
        max_batch: most events per ``write``.
        max_wait: seconds the driver may hold events.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        name: str = "stdout",
        max_batch: int = 500,
        max_wait: float = 0.0,
    ) -> None:
        self.stream = sys.stdout if stream is None else stream
        self.name = name
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.stats: dict[str, int] = {"delivered": 0, "errors": 0}
        self.broken = False
        self._closed = False

    def write(self, events: Sequence[Event]) -> None:
        """Write and flush the events.

        Raises:
            SinkError: the reader went away (broken pipe) or the stream failed.
        """
        if self.broken:
            raise SinkClosedError(f"sink {self.name}: output closed by the reader (broken pipe)")
        if self._closed:
            raise SinkError(f"sink {self.name}: write after close")
        if not events:
            return
        try:
            self.stream.write(to_jsonl(events).decode("utf-8"))
            self.stream.flush()
        except BrokenPipeError:
            self._mark_broken()
            raise SinkClosedError(
                f"sink {self.name}: output closed by the reader (broken pipe)"
            ) from None
        except (OSError, ValueError) as exc:  # ValueError: write to a closed file
            self.stats["errors"] += 1
            raise SinkError(f"sink {self.name}: cannot write: {exc}") from None
        self.stats["delivered"] += len(events)

    def flush(self) -> None:
        """Flush the stream (a broken pipe is already reported by ``write``)."""
        if self.broken:
            return
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._mark_broken()
        except (OSError, ValueError) as exc:
            raise SinkError(f"sink {self.name}: cannot flush: {exc}") from None

    def close(self) -> None:
        """Flush; the stream itself is left open (it is not ours). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        except SinkError as exc:
            log.warning("%s", exc)

    def _mark_broken(self) -> None:
        self.broken = True
        self.stats["errors"] += 1
        # Python's docs: point the dead descriptor at devnull, or the interpreter's final
        # flush of stdout prints another BrokenPipeError traceback at exit.
        try:
            fd = self.stream.fileno()
        except (OSError, ValueError, AttributeError):
            return
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, fd)
            finally:
                os.close(devnull)
        except OSError:
            log.debug("could not redirect the broken output to %s", os.devnull)
