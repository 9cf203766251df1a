"""SinkActor: drains one built-in sink's buffer (memory or disk) into the sink.

Streams put each read's events into the sink's ``SinkBuffer``; the buffer wakes this actor
with ``Drain``. The actor takes whole chunks, writes them in batches of at most
``sink.max_batch`` (holding a small batch for up to ``sink.max_wait`` seconds), and only then
acknowledges them, which frees the buffer's room and lets the checkpoint pass them. A write
that fails is retried with backoff and its events stay in the buffer: the buffer fills and
the streams feeding it pause, so a broken sink loses nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pykka

from streamvisor.actors.inbox import SimpleInbox
from streamvisor.actors.messages import Drain
from streamvisor.actors.scheduler import tell_later
from streamvisor.buffers import Chunk, SinkBuffer
from streamvisor.policy.flow import DropLog
from streamvisor.sinks.base import Sink, SinkClosedError
from streamvisor.sse import Event

log = logging.getLogger(__name__)

RETRY_INITIAL = 0.5
RETRY_MAX = 30.0
STOP_DRAIN = 2.0
"""Seconds a stopping sink actor keeps writing what its buffer holds (a disk buffer keeps
the rest for the next start; a memory buffer's rest was never checkpointed)."""


class SinkActor(SimpleInbox, pykka.ThreadingActor):
    """Writes what a ``SinkBuffer`` holds to a ``Sink``; acknowledges written chunks.

    Args:
        sink: the sink.
        buffer: its buffer (this actor is its only consumer).
        schedule: the scheduler's ``call_later``.
    """

    # A sink stuck in I/O past the shutdown grace (a webhook receiver that never answers)
    # must not keep the process alive; what it has not acknowledged is not checkpointed.
    use_daemon_thread = True

    def __init__(
        self,
        sink: Sink,
        buffer: SinkBuffer,
        schedule: Callable[[float, Callable[[], None]], Any],
        on_closed: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self._on_closed = on_closed
        self._sink = sink
        self._buffer = buffer
        self._schedule = schedule
        self._timer = False
        self._retry_delay = 0.0
        self._retry_pending = False
        self._errors = DropLog(30.0)
        self._unfinished: tuple[list[Chunk], list[Event], int] | None = None
        self.written = 0
        self.failed = 0

    def on_start(self) -> None:
        if self._buffer.pending():  # a disk buffer left by the last run
            self.actor_ref.tell(Drain(force=True))

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Drain):
            if message.force:
                self._timer = False
                self._retry_pending = False
            self._drain(message.force)
        return None

    def on_stop(self) -> None:
        deadline = time.monotonic() + STOP_DRAIN
        while self._retry_delay == 0.0 and time.monotonic() < deadline:
            if not self._write_once():
                break
        try:
            self._sink.close()
        except Exception:
            log.exception("sink %s failed to close", self._sink.name)

    def on_failure(self, *exc_info: Any) -> None:
        try:
            self._sink.close()
        except Exception:
            log.exception("sink %s failed to close", self._sink.name)

    def _drain(self, force: bool) -> None:
        if self._retry_pending:
            return  # a failed write waits for its retry timer
        sink, buffer = self._sink, self._buffer
        if not force and sink.max_wait > 0:
            buffer.arm()  # first arm, then look: a put after this wakes us again
            if buffer.pending() < sink.max_batch:
                if buffer.pending() and not self._timer:
                    self._timer = True
                    tell_later(self._schedule, sink.max_wait, self.actor_ref, Drain(force=True))
                return
        if self._write_once():
            self.actor_ref.tell(Drain(force=force))  # more may be queued; take() re-arms

    def _write_once(self) -> bool:
        """Take, write and acknowledge one batch; False if there was nothing or it failed.

        A batch that fails part-way is kept, not given back to the buffer (its chunks stay
        unacknowledged), and its retry goes on after the last piece written: a chunk larger
        than ``max_batch`` is never written twice.
        """
        if self._unfinished is not None:
            chunks, events, done = self._unfinished
            self._unfinished = None
        else:
            try:
                chunks = self._buffer.take(max(self._sink.max_batch, 1))
            except Exception as exc:  # a disk buffer that cannot be read: retry, never die
                self._failed(0, exc)
                return False
            if not chunks:
                return False
            events = [ev for chunk in chunks for ev in chunk.events]
            done = 0
        size = max(1, self._sink.max_batch)
        try:
            while done < len(events):
                self._sink.write(events[done : done + size])
                done += size
        except Exception as exc:  # a sink must never take the pipeline down
            self._unfinished = (chunks, events, done)
            self._failed(len(events) - done, exc)
            return False
        try:
            self._buffer.ack(chunks)
        except Exception as exc:  # written: never again here (a disk buffer's rows may, at restart)
            log.error("sink %s: its buffer could not record a write: %s", self._sink.name, exc)
        self.written += len(events)
        if self._retry_delay:
            log.info("sink %s writes again", self._sink.name, extra={"sink": self._sink.name})
            self._retry_delay = 0.0
        return True

    def _failed(self, count: int, exc: Exception) -> None:
        if isinstance(exc, SinkClosedError) and self._on_closed is not None:
            on_closed, self._on_closed = self._on_closed, None  # once
            try:
                on_closed(self._sink.name)
            except Exception:
                log.exception("sink %s: the closed-destination callback failed", self._sink.name)
        self.failed += count
        self._retry_delay = min(max(self._retry_delay * 2, RETRY_INITIAL), RETRY_MAX)
        report = self._errors.add(1, time.monotonic())
        if report:
            log.error(
                "sink %s failed to %s: %s; retrying in %.1fs (the events stay "
                "in its buffer; when it is full, its streams pause)",
                self._sink.name,
                f"write {count} events" if count else "read its buffer",
                exc,
                self._retry_delay,
                extra={"sink": self._sink.name},
            )
        self._retry_pending = True
        tell_later(self._schedule, self._retry_delay, self.actor_ref, Drain(force=True))
