"""SinkActor: drives a built-in ``Sink`` (stdout, file, webhook) as a hub subscriber.

It receives batches from the hub (or single events), writes them in batches of at most
``sink.max_batch`` at most ``sink.max_wait`` seconds after they arrive, and acknowledges
what was written so checkpoints only ever cover written events. A write that fails is
logged loudly and its streams stop advancing their checkpoint in this process, so a
restart delivers those events again rather than skipping them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pykka

from streamvisor.actors.inbox import SimpleInbox
from streamvisor.actors.messages import Batch, Flush, Written
from streamvisor.actors.scheduler import tell_later
from streamvisor.sinks.base import Sink
from streamvisor.sse import Event

log = logging.getLogger(__name__)


class SinkActor(SimpleInbox, pykka.ThreadingActor):
    """Buffers, batches and writes events to one sink; acknowledges to the hub."""

    # A sink stuck in I/O past the shutdown grace (a webhook receiver that never answers)
    # must not keep the process alive; what it has not acknowledged is not checkpointed.
    use_daemon_thread = True

    def __init__(
        self,
        sink: Sink,
        schedule: Callable[[float, Callable[[], None]], Any],
        hub: Callable[[], pykka.ActorRef[Any] | None] | None = None,
    ) -> None:
        super().__init__()
        self._sink = sink
        self._schedule = schedule
        self._hub = hub
        self._buffer: list[Event] = []
        self._upto: dict[str, tuple[int, str | None, int]] = {}
        self._timer = False
        self._failed_streams: set[str] = set()
        self.written = 0
        self.failed = 0

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Batch):
            self._buffer.extend(message.events)
            for stream, (seq, lid, count) in message.upto.items():
                prev = self._upto.get(stream)
                self._upto[stream] = (seq, lid, count + (prev[2] if prev else 0))
            self._maybe_write()
        elif isinstance(message, Event):
            self._buffer.append(message)
            self._maybe_write()
        elif isinstance(message, Flush):
            self._timer = False
            self._write()
        return None

    def on_stop(self) -> None:
        self._write()
        try:
            self._sink.close()
        except Exception:
            log.exception("sink %s failed to close", self._sink.name)

    def on_failure(self, *exc_info: Any) -> None:
        try:
            self._sink.close()
        except Exception:
            log.exception("sink %s failed to close", self._sink.name)

    def _maybe_write(self) -> None:
        if len(self._buffer) >= self._sink.max_batch or self._sink.max_wait <= 0:
            self._write()
        elif not self._timer:
            self._timer = True
            tell_later(self._schedule, self._sink.max_wait, self.actor_ref, Flush())

    def _write(self) -> None:
        if not self._buffer:
            return
        events, upto = self._buffer, self._upto
        self._buffer, self._upto = [], {}
        size = max(1, self._sink.max_batch)
        try:
            for start in range(0, len(events), size):
                self._sink.write(events[start : start + size])
        except Exception as exc:  # a sink must never take the pipeline down
            self.failed += len(events)
            self._failed_streams.update(upto)
            log.error(
                "sink %s failed to write %d events: %s; their streams' checkpoints are held "
                "back so a restart delivers them again",
                self._sink.name,
                len(events),
                exc,
                extra={"sink": self._sink.name},
            )
            return
        self.written += len(events)
        acked = {s: v for s, v in upto.items() if s not in self._failed_streams}
        hub = self._hub() if self._hub is not None else None
        if hub is not None and acked:
            try:
                hub.tell(Written(self._sink.name, acked))
            except pykka.ActorDeadError:
                pass
